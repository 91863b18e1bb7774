//! Instances: isolation, same-name races, parallel creates, expiry, the v1
//! API, and what the engine sees of them.

use crate::common;

use std::collections::HashSet;
use std::time::Duration;

use common::{creds, query, scalar, simple_dump, TestApp};
use serde_json::Value;

async fn app_with(configure: impl FnOnce(&mut dolly_core::config::Settings)) -> TestApp {
    let app = TestApp::spawn_with(configure).await;
    app.write_dump("shop.sql", simple_dump("t", 10).as_bytes());
    app.update_ok(&[]).await;
    app
}

#[tokio::test]
async fn clones_of_one_template_are_isolated() {
    let app = app_with(|_| {}).await;
    let a = app.create("shop", "a").await;
    let b = app.create("shop", "b").await;
    let (pa, pwa, db) = creds(&a);
    let (pb, pwb, _) = creds(&b);
    assert_ne!(pa, pb, "own ports");
    assert_ne!(pwa, pwb, "own passwords");
    assert_eq!(pwa.len(), 48, "192 random bits, hex");

    query(pa, &pwa, &db, "DELETE FROM t WHERE id <= 5").await;
    query(pa, &pwa, &db, "CREATE TABLE only_a (x INT)").await;
    assert_eq!(scalar(pa, &pwa, &db, "SELECT COUNT(*) FROM t").await, "5");
    assert_eq!(scalar(pb, &pwb, &db, "SELECT COUNT(*) FROM t").await, "10");
    let tables = query(pb, &pwb, &db, "SHOW TABLES LIKE 'only_a'").await;
    assert!(tables.is_empty());

    // One instance's password does not open another.
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(pb)
        .user(Some("root"))
        .pass(Some(pwa.clone()));
    assert!(mysql_async::Conn::new(opts).await.is_err());

    // A new clone still sees the template, untouched.
    let c = app.create("shop", "c").await;
    let (pc, pwc, _) = creds(&c);
    assert_eq!(scalar(pc, &pwc, &db, "SELECT COUNT(*) FROM t").await, "10");
}

#[tokio::test]
async fn concurrent_creates_of_one_name_make_exactly_one_instance() {
    let app = app_with(|_| {}).await;
    let requests = (0..8).map(|_| app.post("/db/shop/contended"));
    let statuses: Vec<u16> = futures_util::future::join_all(requests)
        .await
        .into_iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 304).count(),
        7,
        "{statuses:?}"
    );
    let containers: Vec<_> = app
        .containers()
        .await
        .into_iter()
        .filter(|c| c.name.ends_with("shop.contended"))
        .collect();
    assert_eq!(containers.len(), 1);
}

#[tokio::test]
async fn different_names_are_created_in_parallel() {
    let app = app_with(|_| {}).await;
    let names = ["p1", "p2", "p3", "p4"];
    let paths: Vec<String> = names.iter().map(|n| format!("/db/shop/{n}")).collect();
    let requests = paths.iter().map(|p| app.post(p));
    let responses = futures_util::future::join_all(requests).await;
    let mut ports = HashSet::new();
    for r in responses {
        assert_eq!(r.status(), 201);
        let body: Value = r.json().await.unwrap();
        let (port, pw, db) = creds(&body);
        assert!(ports.insert(port), "distinct ports");
        assert_eq!(scalar(port, &pw, &db, "SELECT COUNT(*) FROM t").await, "10");
    }
}

#[tokio::test]
async fn expired_instances_are_removed_by_serve() {
    let app = app_with(|s| s.reap_interval = Duration::from_millis(500)).await;
    let r = app
        .client
        .post(app.url("/db/shop/short"))
        .form(&[("ttl", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    app.create("shop", "long").await; // default ttl: a day
    let mut gone = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if app.get("/db/shop/short").await.status() == 404 {
            gone = true;
            break;
        }
    }
    assert!(gone, "the expired instance was reaped");
    assert!(!app.data_dir().join("instances/shop/short").exists());
    // The instance is gone once its folder leaves `instances/`; its
    // container is removed right after (removal.rs), so give it a moment.
    let mut container_gone = false;
    for _ in 0..20 {
        if app
            .containers()
            .await
            .iter()
            .all(|c| !c.name.ends_with("shop.short"))
        {
            container_gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        container_gone,
        "the expired instance's container was removed"
    );
    assert_eq!(app.get("/db/shop/long").await.status(), 200);
}

#[tokio::test]
async fn v1_api_creates_inspects_lists_and_deletes() {
    let app = app_with(|_| {}).await;
    let r = app
        .client
        .post(app.url("/api/v1/templates/shop/instances/v1"))
        .json(&serde_json::json!({"ttl": 120}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let i: Value = r.json().await.unwrap();
    assert!(i["port"].is_u64(), "a number in v1");
    assert_eq!(i["state"], "running");
    assert_eq!(i["user"], "root");
    let created = chrono::DateTime::parse_from_rfc3339(i["created_at"].as_str().unwrap()).unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(i["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!((expires - created).num_seconds(), 120);
    let version = app.get_json("/api/v1/templates/shop").await["current_version"].clone();
    assert_eq!(i["template_version"], version);

    // Exists: 409 in v1 (myaas's 304 stays on the myaas route).
    let r = app.post("/api/v1/templates/shop/instances/v1").await;
    assert_eq!(r.status(), 409);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "instance_exists");

    // Unknown fields and wrong types are 400, never 500.
    for body in [r#"{"ttl": "x"}"#, r#"{"tll": 5}"#, "not json"] {
        let r = app
            .client
            .post(app.url("/api/v1/templates/shop/instances/bad"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
    }

    let got = app.get_json("/api/v1/templates/shop/instances/v1").await;
    assert_eq!(got["password"], i["password"]);
    let list = app.get_json("/api/v1/instances?template=shop").await;
    assert_eq!(list["instances"].as_array().unwrap().len(), 1);
    assert!(
        list["instances"][0].get("password").is_none(),
        "lists carry no passwords"
    );
    let container = app
        .get_json("/api/v1/templates/shop/instances/v1/container")
        .await;
    assert!(container["Id"].is_string());

    // Unknown template: 404 with the known ones.
    let r = app.post("/api/v1/templates/nope/instances/x").await;
    assert_eq!(r.status(), 404);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "template_not_found");
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("known: shop"));

    assert_eq!(
        app.delete("/api/v1/templates/shop/instances/v1")
            .await
            .status(),
        204
    );
    let r = app.get("/api/v1/templates/shop/instances/v1").await;
    assert_eq!(r.status(), 404);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "instance_not_found");
}

#[tokio::test]
async fn the_engine_never_sees_a_password() {
    let app = app_with(|_| {}).await;
    let body = app.create("shop", "secret").await;
    let password = body["password"].as_str().unwrap();
    let inspection = app.get_json("/db/shop/secret?all=1").await.to_string();
    assert!(
        !inspection.contains(password),
        "password in the engine's inspection"
    );
    let labels = &app.get_json("/db/shop/secret?all=1").await["container"]["Config"]["Labels"];
    assert_eq!(labels["managed-by"], "dolly");
    assert_eq!(labels["dolly.template"], "shop");
    assert_eq!(labels["dolly.name"], "secret");
    assert!(labels["dolly.template-version"].is_string());
    assert!(labels["dolly.created"].is_string());
    assert!(labels["dolly.expires-at"].is_string());
    // The metadata file holding it is the owner's only.
    use std::os::unix::fs::PermissionsExt;
    let meta = app.data_dir().join("instances/shop/secret/meta.json");
    let mode = std::fs::metadata(meta).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // The init file that carried it is emptied once the server is up.
    let init = std::fs::read_to_string(
        app.data_dir()
            .join("instances/shop/secret/data")
            .join(dolly_core::dbserver::INIT_FILE),
    )
    .unwrap();
    assert!(!init.contains(password));
}

#[tokio::test]
async fn a_server_that_does_not_come_up_is_removed_with_its_log() {
    // 8 MiB is far too little for mariadbd: the kernel kills it at start.
    let app = app_with(|s| {
        s.instance_memory = 8 * 1024 * 1024;
        s.ready_timeout = Duration::from_secs(20);
    })
    .await;
    let r = app.post("/api/v1/templates/shop/instances/doomed").await;
    assert!(r.status().is_server_error(), "{}", r.status());
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "instance_not_ready", "{e}");
    assert!(!app.data_dir().join("instances/shop/doomed").exists());
    assert!(app
        .containers()
        .await
        .iter()
        .all(|c| !c.name.ends_with("shop.doomed")));
}

#[tokio::test]
async fn plain_copies_work_where_reflinks_do_not() {
    let app = app_with(|s| s.force_copy = true).await;
    let body = app.create("shop", "copied").await;
    let (port, pw, db) = creds(&body);
    assert_eq!(scalar(port, &pw, &db, "SELECT COUNT(*) FROM t").await, "10");
}
