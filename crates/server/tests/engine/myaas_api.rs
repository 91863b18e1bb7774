//! Every myaas route, with its status codes, bodies and field types, so
//! myaas's clients keep working against dolly.

use crate::common;

use common::{creds, scalar, TestApp};
use serde_json::Value;

async fn app_with_shop() -> TestApp {
    let app = TestApp::spawn().await;
    app.write_dump("shop.sql", &common::shop_dump());
    app.update_ok(&[]).await;
    app
}

#[tokio::test]
async fn myaas_routes_answer_as_myaas_did() {
    let app = app_with_shop().await;

    // GET /
    let index = app.get_json("/").await;
    assert_eq!(index["status"], "Service is running");
    assert_eq!(index["templates"], serde_json::json!(["shop"]));
    assert_eq!(index["databases"], serde_json::json!([]));

    // GET /templates
    assert_eq!(
        app.get_json("/templates").await,
        serde_json::json!({"templates": ["shop"]})
    );

    // POST with a form ttl: 201 with the GET body.
    let r = app
        .client
        .post(app.url("/db/shop/alice"))
        .form(&[("ttl", "3600")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    for key in [
        "database",
        "host",
        "name",
        "port",
        "user",
        "password",
        "running",
        "status",
        "created",
        "expires_at",
    ] {
        assert!(created.get(key).is_some(), "missing {key} in {created}");
    }
    assert_eq!(created["database"], "default");
    assert_eq!(created["name"], "alice");
    assert_eq!(created["user"], "root");
    assert_eq!(created["running"], true);
    assert!(created["port"].is_string(), "port is a string as in myaas");
    assert!(created["created"].is_i64(), "created is Unix seconds");
    let expires: i64 = created["expires_at"].as_str().unwrap().parse().unwrap();
    let made = created["created"].as_i64().unwrap();
    assert!((3599..=3601).contains(&(expires - made)), "ttl honoured");

    // The credentials work and see the dump.
    let (port, pw, db) = creds(&created);
    assert_eq!(
        scalar(port, &pw, &db, "SELECT COUNT(*) FROM customers").await,
        "3"
    );

    // POST again: 304, no body.
    let r = app.post("/db/shop/alice").await;
    assert_eq!(r.status(), 304);
    assert!(r.bytes().await.unwrap().is_empty());

    // POST with a JSON ttl.
    let r = app
        .client
        .post(app.url("/db/shop/bob"))
        .json(&serde_json::json!({"ttl": 60}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // GET /db/{t}/{n}
    let got = app.get_json("/db/shop/alice").await;
    assert_eq!(got["password"], created["password"]);
    assert_eq!(got["port"], created["port"]);
    assert_eq!(got["running"], true);

    // ?all=1: the engine's inspection.
    let all = app.get_json("/db/shop/alice?all=1").await;
    assert!(all["container"]["Id"].is_string(), "{all}");

    // GET /db
    let list = app.get_json("/db").await;
    let dbs = list["databases"].as_array().unwrap();
    assert_eq!(dbs.len(), 2);
    let alice = dbs.iter().find(|d| d["name"] == "alice").unwrap();
    assert_eq!(alice["template"], "shop");
    assert!(alice["state"].as_str().unwrap().starts_with("Up"));
    assert!(alice["created"].is_i64());
    assert!(alice["expires_at"].is_string());

    // /metrics counts them, in Prometheus text.
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"dolly_instances{template="shop",state="running"} 2"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"dolly_operations_total{operation="create",outcome="ok"} 2"#));
    assert!(metrics.contains("dolly_create_to_ready_seconds_count 2"));
    assert!(metrics.contains(r#"dolly_last_successful_import_timestamp_seconds{template="shop"}"#));

    // GET / lists "template,name".
    let index = app.get_json("/").await;
    let mut names: Vec<String> = index["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["shop,alice", "shop,bob"]);

    // DELETE: 204, then 404 with myaas's body.
    let r = app.delete("/db/shop/alice").await;
    assert_eq!(r.status(), 204);
    let r = app.delete("/db/shop/alice").await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        serde_json::json!({"status": "Not found"})
    );
    let r = app.get("/db/shop/alice").await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        serde_json::json!({"status": "Not found"})
    );
    assert!(!app.data_dir().join("instances/shop/alice").exists());

    // Unknown template: 404.
    let r = app.post("/db/nope/x").await;
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert!(body["status"].as_str().unwrap().contains("nope"));
}

// Hostile names, the error envelope, health, readiness and the OpenAPI
// document need no database server: the fast tier (tests/fast/surface.rs).
