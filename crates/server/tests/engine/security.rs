//! The bearer token and the limits that protect a shared server.

use crate::common;

use common::{simple_dump, TestApp};
use dolly_core::config::Settings;
use serde_json::Value;

#[tokio::test]
async fn a_configured_token_guards_every_route_but_the_probes() {
    let token = "s3cret-token-for-tests";
    let mut settings_token = None;
    let app = TestApp::spawn_with(|s: &mut Settings| {
        let mut with =
            Settings::from_lookup(|k| (k == "auth_token").then(|| token.to_owned())).unwrap();
        std::mem::swap(&mut s.auth_token, &mut with.auth_token);
        settings_token = s.auth_token.clone();
    })
    .await;
    assert!(settings_token.is_some());
    assert!(
        !format!("{:?}", app.settings).contains(token),
        "Debug never shows it"
    );

    for path in [
        "/",
        "/db",
        "/templates",
        "/api/v1/templates",
        "/api/v1/openapi.json",
    ] {
        let r = app.get(path).await;
        assert_eq!(r.status(), 401, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
        let r = app
            .client
            .get(app.url(path))
            .header("authorization", "Bearer wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let r = app
            .client
            .get(app.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let r = app.post("/db/shop/x").await;
    assert_eq!(r.status(), 401);
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.get("/readyz").await.status(), 200);
}

#[tokio::test]
async fn max_instances_and_min_free_disk_refuse_creates() {
    let app = TestApp::spawn_with(|s| s.max_instances = Some(1)).await;
    app.write_dump("shop.sql", simple_dump("t", 1).as_bytes());
    app.update_ok(&[]).await;
    app.create("shop", "one").await;
    let r = app.post("/api/v1/templates/shop/instances/two").await;
    assert_eq!(r.status(), 429);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_instances");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("max_instances"));
    assert!(!app.data_dir().join("instances/shop/two").exists());

    // Asking for more free space than any disk has: 507, for creates and imports.
    let mut app = app;
    app.settings.max_instances = None;
    app.settings.min_free_disk = u64::MAX / 2;
    app.start().await;
    let r = app.post("/api/v1/templates/shop/instances/two").await;
    assert_eq!(r.status(), 507);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "insufficient_storage");
    // A changed dump (an unchanged one is skipped before any import).
    app.write_dump("shop.sql", simple_dump("t", 2).as_bytes());
    let outcomes = app.update(&["shop"]).await;
    let err = outcomes[0].result.as_ref().unwrap_err().to_string();
    assert!(err.contains("min_free_disk"), "{err}");
}
