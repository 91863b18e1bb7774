//! What a snapshot, a reset and a restore guarantee about the files they
//! make, against the real engine: whole datadirs or a clear refusal,
//! private modes, and the space they may take.

use crate::common;

use std::os::unix::fs::PermissionsExt;

use common::{simple_dump, TestApp};
use serde_json::Value;

async fn app() -> TestApp {
    let app = TestApp::spawn().await;
    app.write_dump("shop.sql", simple_dump("t", 3).as_bytes());
    app.update_ok(&[]).await;
    app
}

#[tokio::test]
async fn a_table_file_outside_the_datadir_fails_the_snapshot_with_its_name() {
    let app = app().await;
    let body = app.create("shop", "myisam").await;
    let db = body["database"].as_str().unwrap().to_owned();
    // What MyISAM's DATA DIRECTORY leaves: a symlink to a file elsewhere.
    let elsewhere = app.data_dir().join("elsewhere.MYD");
    std::fs::write(&elsewhere, b"rows").unwrap();
    let link = app
        .data_dir()
        .join(format!("instances/shop/myisam/data/{db}/far.MYD"));
    std::os::unix::fs::symlink(&elsewhere, &link).unwrap();

    let r = app
        .post("/api/v1/templates/shop/instances/myisam/snapshots/s1")
        .await;
    assert!(r.status().is_server_error(), "{}", r.status());
    let e: Value = r.json().await.unwrap();
    let message = e["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("far.MYD") && message.contains("symbolic link"),
        "{e}"
    );
    // Nothing half-made, and the instance still answers.
    let list: Value = app
        .get_json("/api/v1/templates/shop/instances/myisam/snapshots")
        .await;
    assert_eq!(list["snapshots"], Value::Array(vec![]));
    let i = app
        .get_json("/api/v1/templates/shop/instances/myisam")
        .await;
    assert_eq!(i["state"], "running");
}

#[tokio::test]
async fn a_restored_datadir_keeps_its_files_private() {
    let app = app().await;
    app.create("shop", "priv").await;
    let r = app
        .post("/api/v1/templates/shop/instances/priv/snapshots/s1")
        .await;
    assert_eq!(r.status(), 201);
    let r = app
        .post("/api/v1/templates/shop/instances/priv/snapshots/s1/restore")
        .await;
    assert_eq!(r.status(), 200);
    let data = app.data_dir().join("instances/shop/priv/data");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data.join(".dolly-init.sql")), 0o600);
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("ibdata1")), 0o600);
    let meta = app.data_dir().join("instances/shop/priv/meta.json");
    assert_eq!(mode(&meta), 0o600);
}

#[tokio::test]
async fn snapshot_reset_and_promote_answer_507_below_min_free_disk() {
    let mut app = app().await;
    app.create("shop", "full").await;
    let r = app
        .post("/api/v1/templates/shop/instances/full/snapshots/s0")
        .await;
    assert_eq!(r.status(), 201);
    app.halt().await;
    app.settings.min_free_disk = u64::MAX / 2;
    app.start().await;
    for (path, body) in [
        ("/api/v1/templates/shop/instances/full/snapshots/s1", None),
        ("/api/v1/templates/shop/instances/full/reset", None),
        (
            "/api/v1/templates/shop/instances/full/snapshots/s0/promote",
            Some(serde_json::json!({"template": "blog"})),
        ),
    ] {
        let mut req = app.client.post(app.url(path));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 507, "{path}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], "insufficient_storage", "{path}: {e}");
    }
    // The instance is untouched.
    let i = app.get_json("/api/v1/templates/shop/instances/full").await;
    assert_eq!(i["state"], "running");
}
