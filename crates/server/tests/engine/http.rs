//! HTTP conformance: HEAD, JSON errors everywhere, absurd values, a second
//! dollyd on the same data folder.

use crate::common;

use common::{simple_dump, test_settings, TestApp};
use dolly_server::startup::Application;
use serde_json::Value;

#[tokio::test]
async fn head_answers_wherever_get_does_without_a_body() {
    let app = TestApp::spawn().await;
    for path in [
        "/healthz",
        "/readyz",
        "/",
        "/db",
        "/api/v1/templates",
        "/metrics",
    ] {
        let r = app.client.head(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "HEAD {path}");
        assert!(
            r.bytes().await.unwrap().is_empty(),
            "HEAD {path} has a body"
        );
    }
}

#[tokio::test]
async fn errors_actix_makes_itself_are_json_too() {
    let app = TestApp::spawn().await;
    app.write_dump("shop.sql", simple_dump("t", 1).as_bytes());
    app.update_ok(&[]).await;
    // A body over the limit.
    let r = app
        .client
        .post(app.url("/api/v1/templates/shop/instances/big"))
        .header("content-type", "application/json")
        .body(vec![b' '; 200 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.expect("413 is JSON");
    assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
    // A method no route has.
    let r = app.client.put(app.url("/db/shop/x")).send().await.unwrap();
    assert!(r.status().is_client_error());
    let body: Value = r.json().await.expect("JSON");
    assert!(body["error"]["code"].is_string(), "{body}");
}

#[tokio::test]
async fn an_absurd_ttl_is_a_400_with_a_message() {
    let app = TestApp::spawn().await;
    app.write_dump("shop.sql", simple_dump("t", 1).as_bytes());
    app.update_ok(&[]).await;
    let r = app
        .client
        .post(app.url("/api/v1/templates/shop/instances/forever"))
        .json(&serde_json::json!({"ttl": 9223372036854775807u64}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("100 years"),
        "{body}"
    );
    assert!(!app.data_dir().join("instances/shop/forever").exists());
}

#[tokio::test]
async fn a_second_dollyd_on_the_same_data_folder_is_refused_before_any_cleanup() {
    let app = TestApp::spawn().await;
    app.write_dump("shop.sql", simple_dump("t", 1).as_bytes());
    app.update_ok(&[]).await;
    let keep = app.create("shop", "keep").await;
    // Something a live server has in flight: a create's claimed folder.
    std::fs::create_dir_all(app.data_dir().join("instances/shop/inflight")).unwrap();

    let mut settings = test_settings(app.data_dir());
    settings.listen = "127.0.0.1:0".parse().unwrap();
    let second = Application::build_with_engine(settings, common::require_engine().await).await;
    let err = match second {
        Ok(_) => panic!("a second dollyd started on the same data folder"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("in use by dollyd serve (pid"), "{err}");
    assert!(
        app.data_dir().join("instances/shop/inflight").exists(),
        "the second start cleaned up the live one's work"
    );
    // The first one serves undisturbed.
    let r = app.get("/api/v1/templates/shop/instances/keep").await;
    assert_eq!(r.status(), 200);
    // (myaas's answer gives the port as a string, v1's as a number.)
    let port = r.json::<Value>().await.unwrap()["port"].to_string();
    assert_eq!(
        port.trim_matches('"'),
        keep["port"].to_string().trim_matches('"')
    );
}

#[test]
fn contradictory_settings_stop_the_start_naming_both_keys() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dollyd"))
        .arg("serve")
        .env("DOLLY_DATA_DIR", dir.path())
        .env("DOLLY_LISTEN", "127.0.0.1:0")
        .env("DOLLY_DEFAULT_TTL", "24h")
        .env("DOLLY_MAX_TTL", "1h")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("max_ttl") && stderr.contains("default_ttl"),
        "{stderr}"
    );
}
