//! The core flow on whatever server image `DOLLY_TEST_IMAGE` names
//! (MariaDB 10.11 by default; CI runs it on `dolly-mysql:9` and
//! `dolly-mariadb:11.8` too): import of a mysqldump with triggers,
//! routines and a view; create; correct answers; snapshot/restore;
//! stop/start; export/import; delete.
//!
//! MySQL 8+ cannot load a MariaDB dump (`NO_AUTO_CREATE_USER` in its
//! `sql_mode`), so on MySQL the same shop is loaded from MySQL 9's own
//! mysqldump (`examples/dumps-mysql/shop.sql`, with its GTID and
//! `SQL_LOG_BIN` lines).

use crate::common;

use std::collections::BTreeMap;

use common::{query, scalar, test_image, TestApp};
use dolly_core::dbserver::{Flavor, ImageInfo};
use serde_json::{json, Value};

async fn flavor(app: &TestApp) -> ImageInfo {
    let labels = BTreeMap::from([
        ("dolly-test".to_owned(), common::test_run()),
        (
            dolly_core::context::LABEL_ROOT.to_owned(),
            app.data_dir().display().to_string(),
        ),
    ]);
    let name = format!("{}probe", app.settings.container_prefix);
    ImageInfo::probe(app.engine.as_ref(), &test_image(), &name, labels)
        .await
        .expect("probe the image")
}

fn dump_for(flavor: Flavor) -> Vec<u8> {
    let path = match flavor {
        Flavor::MariaDb => "examples/dumps/shop.sql",
        Flavor::MySql => "examples/dumps-mysql/shop.sql",
    };
    std::fs::read(format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"))).expect(path)
}

/// The shop's answers: utf8mb4 and binary data byte for byte, the view,
/// the function, the procedure and its trigger.
async fn check_shop(port: u16, pw: &str, db: &str) {
    assert_eq!(
        scalar(port, pw, db, "SELECT HEX(name) FROM customers WHERE id = 2").await,
        "4A6F73C3A9204EC3BAC3B1657A20F09F90AC",
        "utf8mb4 text (an emoji) survives"
    );
    assert_eq!(
        scalar(
            port,
            pw,
            db,
            "SELECT HEX(avatar) FROM customers WHERE id = 1"
        )
        .await,
        "89504E470D0A1A0A00FF"
    );
    assert_eq!(
        scalar(
            port,
            pw,
            db,
            "SELECT HEX(avatar) FROM customers WHERE id = 3"
        )
        .await,
        "000A0D5C27"
    );
    assert_eq!(scalar(port, pw, db, "SELECT order_total(1)").await, "2499");
    assert_eq!(
        scalar(
            port,
            pw,
            db,
            "SELECT total_cents FROM customer_totals WHERE name = 'O''Brien'"
        )
        .await,
        "42"
    );
}

#[tokio::test]
async fn core_flow_on_the_test_image() {
    let app = TestApp::spawn().await;
    let info = flavor(&app).await;
    eprintln!(
        "image {} runs {:?}: {}",
        test_image(),
        info.flavor,
        info.version
    );
    app.write_dump("shop.sql", &dump_for(info.flavor));
    app.update_ok(&[]).await;
    let t = app.get_json("/api/v1/templates/shop").await;
    assert_eq!(t["last_import"]["ok"], true, "{t}");

    // Create: its own password, the data answers through SQL.
    let base = "/api/v1/templates/shop/instances/dev";
    let (status, i) = app.post_json(base, json!({})).await;
    assert_eq!(status, 201, "{i}");
    let port = i["port"].as_u64().unwrap() as u16;
    let pw = i["password"].as_str().unwrap().to_owned();
    let db = i["database"].as_str().unwrap().to_owned();
    check_shop(port, &pw, &db).await;
    let charset = query(
        port,
        &pw,
        &db,
        "SELECT @@character_set_server, @@skip_name_resolve, @@performance_schema",
    )
    .await;
    assert_eq!(
        charset[0],
        [Some("utf8mb4".into()), Some("1".into()), Some("0".into())]
    );
    // The trigger fires, the procedure runs.
    query(port, &pw, &db, "CALL add_order(2, 1)").await;
    assert_eq!(
        scalar(port, &pw, &db, "SELECT COUNT(*) FROM order_audit").await,
        "1"
    );

    // Snapshot, change, restore: exactly the snapshot's state.
    let (status, snap) = app
        .post_json(&format!("{base}/snapshots/one"), json!({}))
        .await;
    assert_eq!(status, 201, "{snap}");
    query(port, &pw, &db, "DELETE FROM order_audit").await;
    query(port, &pw, &db, "CALL add_order(3, 7)").await;
    let (status, restored) = app
        .post_json(&format!("{base}/snapshots/one/restore"), json!({}))
        .await;
    assert_eq!(status, 200, "{restored}");
    assert_eq!(restored["port"], port);
    assert_eq!(
        scalar(port, &pw, &db, "SELECT COUNT(*) FROM orders").await,
        "5"
    );
    assert_eq!(
        scalar(port, &pw, &db, "SELECT note FROM order_audit").await,
        "created for 1"
    );

    // Stop and start: same port and password, data kept.
    let (status, stopped) = app.post_json(&format!("{base}/stop"), json!({})).await;
    assert_eq!(status, 200, "{stopped}");
    assert!(dolly_core::instance::ping("127.0.0.1", port, &pw)
        .await
        .is_err());
    let (status, started) = app.post_json(&format!("{base}/start"), json!({})).await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["port"], port);
    assert_eq!(started["password"], pw.as_str());
    assert_eq!(
        scalar(port, &pw, &db, "SELECT COUNT(*) FROM orders").await,
        "5"
    );

    // Reset: the dump's state.
    let (status, reset) = app.post_json(&format!("{base}/reset"), json!({})).await;
    assert_eq!(status, 200, "{reset}");
    check_shop(port, &pw, &db).await;
    assert_eq!(
        scalar(port, &pw, &db, "SELECT COUNT(*) FROM orders").await,
        "4"
    );

    // Export a snapshot, import it as another instance with its own password.
    let r = app.get(&format!("{base}/snapshots/one/export")).await;
    assert_eq!(r.status(), 200);
    let archive = r.bytes().await.unwrap();
    let r = app
        .client
        .post(app.url("/api/v1/templates/shop/instances/copy/import"))
        .header("content-type", "application/zstd")
        .body(archive)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let copy: Value = r.json().await.unwrap();
    let (cport, cpw) = (
        copy["port"].as_u64().unwrap() as u16,
        copy["password"].as_str().unwrap().to_owned(),
    );
    assert_ne!(cpw, pw);
    assert_eq!(
        scalar(cport, &cpw, &db, "SELECT COUNT(*) FROM orders").await,
        "5"
    );

    // Delete: gone, its container too.
    for name in ["dev", "copy"] {
        let r = app
            .delete(&format!(
                "/api/v1/templates/shop/instances/{name}?force=true"
            ))
            .await;
        assert_eq!(r.status(), 204, "delete {name}");
        assert_eq!(
            app.get(&format!("/api/v1/templates/shop/instances/{name}"))
                .await
                .status(),
            404
        );
    }
    assert!(app
        .containers()
        .await
        .iter()
        .all(|c| !c.name.contains("shop.dev") && !c.name.contains("shop.copy")));
}
