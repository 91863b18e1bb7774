//! The life of an instance: snapshot, restore, branch, promote, reset,
//! stop/start, leases, protection and the reaper.

use crate::common;

use std::time::{Duration, Instant};

use common::{query, scalar, simple_dump, TestApp};
use serde_json::{json, Value};

async fn app() -> TestApp {
    let app = TestApp::spawn().await;
    app.write_dump("shop.sql", simple_dump("t", 3).as_bytes());
    app.update_ok(&[]).await;
    app
}

/// Creates through v1; returns (port, password, database, body).
async fn create(app: &TestApp, name: &str, body: Value) -> (u16, String, String, Value) {
    let (status, i) = app
        .post_json(&format!("/api/v1/templates/shop/instances/{name}"), body)
        .await;
    assert_eq!(status, 201, "{i}");
    (
        i["port"].as_u64().unwrap() as u16,
        i["password"].as_str().unwrap().to_owned(),
        i["database"].as_str().unwrap().to_owned(),
        i,
    )
}

async fn ids(port: u16, pw: &str, db: &str) -> String {
    scalar(port, pw, db, "SELECT GROUP_CONCAT(id ORDER BY id) FROM t").await
}

#[tokio::test]
async fn snapshot_restore_branch_promote_reset() {
    let app = app().await;
    let base = "/api/v1/templates/shop/instances/dev";
    let (port, pw, db, _) = create(&app, "dev", json!({})).await;

    query(port, &pw, &db, "INSERT INTO t VALUES (10, 'first')").await;
    let (status, snap) = app
        .post_json(
            &format!("{base}/snapshots/first"),
            json!({"message": "one row added"}),
        )
        .await;
    assert_eq!(status, 201, "{snap}");
    assert_eq!(snap["message"], "one row added");
    assert!(snap["size_bytes"].as_u64().unwrap() > 0);
    // Taken with a brief stop, the instance answers again on its port.
    query(port, &pw, &db, "INSERT INTO t VALUES (11, 'second')").await;
    assert_eq!(ids(port, &pw, &db).await, "1,2,3,10,11");

    // Same name again: 409.
    let (status, _) = app
        .post_json(&format!("{base}/snapshots/first"), json!({}))
        .await;
    assert_eq!(status, 409);
    let list = app.get_json(&format!("{base}/snapshots")).await;
    assert_eq!(list["snapshots"][0]["name"], "first");

    // Restore: exactly the first state, same port and password.
    let t0 = Instant::now();
    let (status, restored) = app
        .post_json(&format!("{base}/snapshots/first/restore"), json!({}))
        .await;
    eprintln!("restore took {:?}", t0.elapsed());
    assert_eq!(status, 200, "{restored}");
    assert_eq!(restored["port"], port);
    assert_eq!(restored["password"], pw.as_str());
    assert_eq!(ids(port, &pw, &db).await, "1,2,3,10");

    // Branch: a new instance from the snapshot, its own port and password.
    let (bport, bpw, _, branch) = create(&app, "branch", json!({"from": "dev@first"})).await;
    assert_ne!(bport, port);
    assert_ne!(bpw, pw);
    assert_eq!(branch["template_version"], restored["template_version"]);
    assert_eq!(ids(bport, &bpw, &db).await, "1,2,3,10");
    let (status, e) = app
        .post_json(
            "/api/v1/templates/shop/instances/x",
            json!({"from": "dev@nope"}),
        )
        .await;
    assert_eq!(status, 404, "{e}");
    assert_eq!(e["error"]["code"], "snapshot_not_found");

    // Promote the snapshot to a new template; clones of it see its data.
    let (status, tpl) = app
        .post_json(
            &format!("{base}/snapshots/first/promote"),
            json!({"template": "bugrepro"}),
        )
        .await;
    assert_eq!(status, 201, "{tpl}");
    assert_eq!(tpl["name"], "bugrepro");
    let r = app.post("/db/bugrepro/alice").await;
    assert_eq!(r.status(), 201);
    let alice: Value = r.json().await.unwrap();
    let (aport, apw, adb) = common::creds(&alice);
    assert_eq!(ids(aport, &apw, &adb).await, "1,2,3,10");
    assert_ne!(apw, pw, "promoted clones get their own password");

    // Reset to the template: the dump's state, same port and password.
    let t0 = Instant::now();
    let (status, reset) = app.post_json(&format!("{base}/reset"), json!({})).await;
    eprintln!("reset took {:?}", t0.elapsed());
    assert_eq!(status, 200, "{reset}");
    assert_eq!(reset["port"], port);
    assert_eq!(ids(port, &pw, &db).await, "1,2,3");

    // Reset --latest after a new import moves to the new version.
    app.write_dump("shop.sql", simple_dump("t", 5).as_bytes());
    app.update_ok(&["shop"]).await;
    let (status, latest) = app
        .post_json(&format!("{base}/reset"), json!({"latest": true}))
        .await;
    assert_eq!(status, 200, "{latest}");
    assert_ne!(latest["template_version"], reset["template_version"]);
    assert_eq!(ids(port, &pw, &db).await, "1,2,3,4,5");

    // Snapshots go with `snapshot rm`.
    assert_eq!(
        app.delete(&format!("{base}/snapshots/first"))
            .await
            .status(),
        204
    );
    assert_eq!(
        app.delete(&format!("{base}/snapshots/first"))
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn stop_and_start_keep_port_and_credentials() {
    let app = app().await;
    let base = "/api/v1/templates/shop/instances/sleepy";
    let (port, pw, db, _) = create(&app, "sleepy", json!({})).await;
    query(port, &pw, &db, "INSERT INTO t VALUES (7, 'kept')").await;

    let (status, stopped) = app.post_json(&format!("{base}/stop"), json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(stopped["state"], "stopped");
    assert!(dolly_core::instance::ping("127.0.0.1", port, &pw)
        .await
        .is_err());
    // A stopped instance is not dead: the reaper leaves it.
    let (_, reaped) = app.post_json("/api/v1/reap", json!({"dead": true})).await;
    assert_eq!(reaped["instances"], json!([]));

    let (status, started) = app.post_json(&format!("{base}/start"), json!({})).await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["state"], "running");
    assert_eq!(started["port"], port);
    assert_eq!(started["password"], pw.as_str());
    assert_eq!(ids(port, &pw, &db).await, "1,2,3,7");
}

#[tokio::test]
async fn leases_protection_and_the_reaper() {
    let app = TestApp::spawn_with(|s| s.reap_interval = Duration::from_millis(500)).await;
    app.write_dump("shop.sql", simple_dump("t", 3).as_bytes());
    app.update_ok(&[]).await;

    // Extend adds to the expiry.
    let (_, _, _, i) = create(&app, "leased", json!({"ttl": 60})).await;
    let before = chrono::DateTime::parse_from_rfc3339(i["expires_at"].as_str().unwrap()).unwrap();
    let (status, e) = app
        .post_json(
            "/api/v1/templates/shop/instances/leased/extend",
            json!({"ttl": 3600}),
        )
        .await;
    assert_eq!(status, 200);
    let after = chrono::DateTime::parse_from_rfc3339(e["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!((after - before).num_seconds(), 3600);
    let (status, e) = app
        .post_json(
            "/api/v1/templates/shop/instances/leased/extend",
            json!({"ttl": 0}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(e["expires_at"].is_null(), "ttl 0: no expiry");

    // A protected instance outlives its expiry; an unprotected one does not.
    create(&app, "kept", json!({"ttl": 5})).await;
    let (status, p) = app
        .post_json("/api/v1/templates/shop/instances/kept/protect", json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(p["protected"], true);
    let (_, _, _, short) = create(&app, "short", json!({"ttl": 5})).await;
    let expires =
        chrono::DateTime::parse_from_rfc3339(short["expires_at"].as_str().unwrap()).unwrap();
    let mut gone_after = None;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if app
            .get("/api/v1/templates/shop/instances/short")
            .await
            .status()
            == 404
        {
            gone_after = Some(chrono::Utc::now().signed_duration_since(expires));
            break;
        }
    }
    let late = gone_after.expect("the 5 s instance was reaped");
    assert!(late.num_seconds() < 5, "reaped {late} after its expiry");
    assert!(!app.data_dir().join("instances/shop/short").exists());
    assert_eq!(
        app.get("/api/v1/templates/shop/instances/kept")
            .await
            .status(),
        200
    );

    // rm of a protected instance needs force.
    let r = app.delete("/api/v1/templates/shop/instances/kept").await;
    assert_eq!(r.status(), 409);
    let r = app
        .delete("/api/v1/templates/shop/instances/kept?force=true")
        .await;
    assert_eq!(r.status(), 204);
}

#[tokio::test]
async fn reap_on_demand_dead_and_dry_run() {
    let mut app = app().await;
    create(&app, "victim", json!({})).await;
    create(&app, "fine", json!({})).await;
    // The server dies behind dolly's back (the engine stops it).
    let container = format!("{}shop.victim", app.settings.container_prefix);
    app.engine.stop(&container, 10).await.unwrap();
    let i = app
        .get_json("/api/v1/templates/shop/instances/victim")
        .await;
    assert_eq!(i["state"], "dead");

    // --dry-run changes nothing.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dollyd"))
        .args(["reap", "--dead", "--dry-run"])
        .envs(app.env())
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("would remove shop/victim (dead)"),
        "{stdout}"
    );
    assert!(!stdout.contains("fine"));
    assert_eq!(
        app.get("/api/v1/templates/shop/instances/victim")
            .await
            .status(),
        200
    );

    // The real thing is refused while a dollyd serves the data folder...
    let env = app.env();
    let reap = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_dollyd"))
            .args(["reap", "--dead"])
            .envs(env.clone())
            .output()
            .unwrap()
    };
    let out = reap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("in use by dollyd serve (pid"), "{stderr}");
    assert!(stderr.contains("POST /api/v1/reap"), "{stderr}");
    // ... and works once it is stopped.
    app.halt().await;
    let out = reap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    app.start().await;
    assert_eq!(
        app.get("/api/v1/templates/shop/instances/victim")
            .await
            .status(),
        404
    );
    assert_eq!(
        app.get("/api/v1/templates/shop/instances/fine")
            .await
            .status(),
        200
    );
    assert!(!app.data_dir().join("instances/shop/victim").exists());

    // df lists what is left, labelled apparent.
    let df = app.get_json("/api/v1/df").await;
    let names: Vec<&str> = df["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"shop/fine"), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("shop@")), "{names:?}");
    assert!(df["filesystem_free_bytes"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn export_then_import_round_trips_the_data() {
    let app = app().await;
    let base = "/api/v1/templates/shop/instances/origin";
    let (port, pw, db, _) = create(&app, "origin", json!({})).await;
    query(port, &pw, &db, "INSERT INTO t VALUES (42, 'travels')").await;
    let (status, _) = app
        .post_json(&format!("{base}/snapshots/share"), json!({}))
        .await;
    assert_eq!(status, 201);

    let r = app.get(&format!("{base}/snapshots/share/export")).await;
    assert_eq!(r.status(), 200);
    let archive = r.bytes().await.unwrap();
    assert!(archive.len() > 1000);

    let r = app
        .client
        .post(app.url("/api/v1/templates/shop/instances/copy/import?ttl=600"))
        .header("content-type", "application/zstd")
        .body(archive.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let i: Value = r.json().await.unwrap();
    let (cport, cpw) = (
        i["port"].as_u64().unwrap() as u16,
        i["password"].as_str().unwrap(),
    );
    assert_ne!(cpw, pw, "its own password");
    assert_eq!(ids(cport, cpw, &db).await, "1,2,3,42");

    // A damaged archive is refused and leaves nothing behind.
    let r = app
        .client
        .post(app.url("/api/v1/templates/shop/instances/broken/import"))
        .body(archive.slice(..archive.len() / 2))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a damaged archive is a bad request");
    assert!(!app.data_dir().join("instances/shop/broken").exists());
    let leftovers = app.tmp_entries("archive.");
    assert!(leftovers.is_empty());
}

#[tokio::test]
async fn idle_instances_are_stopped_when_idle_ttl_is_set() {
    let app = TestApp::spawn_with(|s| {
        s.reap_interval = Duration::from_millis(500);
        s.idle_ttl = Some(Duration::from_secs(3));
    })
    .await;
    app.write_dump("shop.sql", simple_dump("t", 3).as_bytes());
    app.update_ok(&[]).await;
    create(&app, "idle", json!({})).await;
    let (port, pw, db, _) = create(&app, "busy", json!({})).await;
    // A client keeps a connection open to `busy`.
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some("root"))
        .pass(Some(pw.clone()))
        .db_name(Some(db));
    let conn = mysql_async::Conn::new(opts).await.unwrap();

    let mut stopped = false;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let i = app.get_json("/api/v1/templates/shop/instances/idle").await;
        if i["state"] == "stopped" {
            stopped = true;
            break;
        }
    }
    assert!(stopped, "the idle instance was stopped");
    let busy = app.get_json("/api/v1/templates/shop/instances/busy").await;
    assert_eq!(busy["state"], "running", "an instance in use keeps running");
    drop(conn);
}
