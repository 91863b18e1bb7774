//! `push`: a snapshot moves from one dollyd to another, server to server,
//! against the real engine (two dollyds on one machine, each with its own
//! data folder).

use crate::common;

use common::cli::dolly;
use common::{creds, query, scalar, simple_dump, TestApp};
use serde_json::{json, Value};

async fn server() -> TestApp {
    server_pushing_to(&[]).await
}

/// A dollyd that may push to `remotes` (origins).
async fn server_pushing_to(remotes: &[String]) -> TestApp {
    let list = remotes.join(",");
    let app = TestApp::spawn_with(move |s| {
        s.push_remotes = dolly_core::remote::parse_origins(&list).expect("origins");
    })
    .await;
    app.write_dump("shop.sql", simple_dump("t", 3).as_bytes());
    app.update_ok(&[]).await;
    app
}

#[tokio::test]
async fn a_pushed_snapshot_becomes_an_instance_on_the_other_server() {
    let there = server().await;
    let here = server_pushing_to(&[there.url("")]).await;
    let body = here.create("shop", "alice").await;
    let (port, pw, db) = creds(&body);
    query(port, &pw, &db, "INSERT INTO t VALUES (100, 'pushed')").await;
    let r = here
        .post("/api/v1/templates/shop/instances/alice/snapshots/s1")
        .await;
    assert_eq!(r.status(), 201);
    // Written after the snapshot: must not travel.
    query(port, &pw, &db, "INSERT INTO t VALUES (200, 'later')").await;

    let r = here
        .client
        .post(here.url("/api/v1/templates/shop/instances/alice/snapshots/s1/push"))
        .json(&json!({"remote": there.url(""), "token": "unused", "name": "copy"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let pushed: Value = r.json().await.unwrap();
    assert!(pushed["bytes"].as_u64().unwrap() > 0, "{pushed}");
    assert_eq!(pushed["instance"]["name"], "copy");

    // The other server has it, with the snapshot's rows and its own password.
    let copy = there
        .get_json("/api/v1/templates/shop/instances/copy")
        .await;
    let (p2, pw2, db2) = (
        copy["port"].as_u64().unwrap() as u16,
        copy["password"].as_str().unwrap().to_owned(),
        copy["database"].as_str().unwrap().to_owned(),
    );
    assert_ne!(pw2, pw);
    assert_eq!(
        scalar(p2, &pw2, &db2, "SELECT COUNT(*) FROM t WHERE id = 100").await,
        "1"
    );
    assert_eq!(
        scalar(p2, &pw2, &db2, "SELECT COUNT(*) FROM t WHERE id = 200").await,
        "0"
    );

    // The CLI does the same.
    let url = here.url("");
    let r = dolly(
        url.trim_end_matches('/'),
        &[
            "push",
            "shop",
            "alice@s1",
            "--remote",
            &there.url(""),
            "--as",
            "cli-copy",
        ],
    )
    .await;
    r.ok();
    assert!(r.stdout.contains("pushed"), "{}", r.stdout);
    assert_eq!(
        there
            .get("/api/v1/templates/shop/instances/cli-copy")
            .await
            .status(),
        200
    );

    // A name taken there: the other server's own refusal, as 502.
    let r = here
        .client
        .post(here.url("/api/v1/templates/shop/instances/alice/snapshots/s1/push"))
        .json(&json!({"remote": there.url(""), "token": "x", "name": "copy"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    let e: Value = r.json().await.unwrap();
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already exists"),
        "{e}"
    );
}

#[tokio::test]
async fn another_server_version_is_refused_before_any_data_moves() {
    use actix_web::{web, App, HttpResponse, HttpServer};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    // A "remote" that runs another server version and counts imports.
    let imports = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&imports);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let remote = HttpServer::new(move || {
        let seen = Arc::clone(&seen);
        App::new()
            .route(
                "/api/v1/version",
                web::get().to(|| async {
                    HttpResponse::Ok().json(json!({
                        "dolly": "9.9.9", "server_version": "mysqld Ver 9.7.4", "image": "other"
                    }))
                }),
            )
            .default_service(web::to(move || {
                seen.fetch_add(1, Ordering::SeqCst);
                async { HttpResponse::Created().finish() }
            }))
    })
    .listen(listener)
    .unwrap()
    .run();
    let handle = remote.handle();
    tokio::spawn(remote);
    let here = server_pushing_to(&[format!("http://{addr}")]).await;
    here.create("shop", "alice").await;
    let r = here
        .post("/api/v1/templates/shop/instances/alice/snapshots/s1")
        .await;
    assert_eq!(r.status(), 201);

    let r = here
        .client
        .post(here.url("/api/v1/templates/shop/instances/alice/snapshots/s1/push"))
        .json(&json!({"remote": format!("http://{addr}"), "token": "t"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "server_version_mismatch");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("9.7.4"),
        "{e}"
    );
    assert_eq!(imports.load(Ordering::SeqCst), 0, "no data moved");
    handle.stop(false).await;
}
