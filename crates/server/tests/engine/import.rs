//! `dollyd update`: dumps of every format become templates that clones
//! answer from; failures leave the previous version serving.

use crate::common;

use std::io::Write;

use common::{creds, query, scalar, simple_dump, TestApp};
use dolly_core::template::{self, ImportError};
use dolly_types::TemplateName;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

fn tpl(name: &str) -> TemplateName {
    TemplateName::parse(name).unwrap()
}

#[tokio::test]
async fn imports_plain_gzip_zstd_and_folder_dumps() {
    let app = TestApp::spawn().await;
    app.write_dump("plain.sql", simple_dump("t", 3).as_bytes());
    app.write_dump("gz.sql.gz", &gzip(simple_dump("t", 4).as_bytes()));
    app.write_dump("zst.sql.zst", &zstd(simple_dump("t", 5).as_bytes()));
    // A folder: schema then data, in lexical order, mixed compression.
    app.write_dump(
        "folder/01-schema.sql",
        b"CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(50));\n",
    );
    app.write_dump(
        "folder/02-data.sql.zst",
        &zstd(b"INSERT INTO t VALUES (1,'a'),(2,'b'),(3,'c'),(4,'d'),(5,'e'),(6,'f');\n"),
    );
    // A dump that creates its own database, as `mysqldump --databases`.
    app.write_dump(
        "owndb.sql",
        b"CREATE DATABASE /*!32312 IF NOT EXISTS*/ `inventory` /*!40100 DEFAULT CHARACTER SET utf8mb4 */;\n\
          USE `inventory`;\n\
          CREATE TABLE items (id INT PRIMARY KEY);\nINSERT INTO items VALUES (1),(2);\n",
    );
    app.write_dump("notes.txt", b"not a dump");
    app.update_ok(&[]).await;

    let templates = app.get_json("/templates").await;
    assert_eq!(
        templates["templates"],
        serde_json::json!(["folder", "gz", "owndb", "plain", "zst"])
    );
    for (t, rows) in [("plain", 3), ("gz", 4), ("zst", 5), ("folder", 6)] {
        let body = app.create(t, "c").await;
        let (port, pw, db) = creds(&body);
        assert_eq!(db, "default");
        assert_eq!(
            scalar(port, &pw, &db, "SELECT COUNT(*) FROM t").await,
            rows.to_string(),
            "{t}"
        );
    }
    let body = app.create("owndb", "c").await;
    let (port, pw, db) = creds(&body);
    assert_eq!(db, "inventory", "the first database the dump created");
    assert_eq!(
        scalar(port, &pw, &db, "SELECT COUNT(*) FROM items").await,
        "2"
    );
    let dbs = query(port, &pw, &db, "SHOW DATABASES LIKE 'default'").await;
    assert!(dbs.is_empty(), "the unused default database is dropped");

    // The v1 view of a template.
    let t = app.get_json("/api/v1/templates/zst").await;
    assert_eq!(t["versions"].as_array().unwrap().len(), 1);
    let v = &t["versions"][0];
    assert_eq!(v["current"], true);
    assert!(v["size_bytes"].as_u64().unwrap() > 1_000_000);
    assert!(v["source_dump"].as_str().unwrap().ends_with("zst.sql.zst"));
    assert_eq!(t["last_import"]["ok"], true);
}

#[tokio::test]
async fn mysqldump_constructs_answer_in_a_clone() {
    let app = TestApp::spawn().await;
    app.write_dump("shop.sql", &common::shop_dump());
    // A multi-megabyte single INSERT, as mysqldump writes with big rows.
    let mut big = String::from(
        "-- MariaDB dump 10.19\nCREATE TABLE blobs (id INT PRIMARY KEY, payload LONGTEXT);\nINSERT INTO blobs VALUES ",
    );
    let rows: Vec<String> = (1..=6)
        .map(|i| format!("({i},'{}')", "x".repeat(1_000_000)))
        .collect();
    big.push_str(&rows.join(","));
    big.push_str(";\n-- Dump completed on 2026-11-23\n");
    app.write_dump("big.sql.gz", &gzip(big.as_bytes()));
    app.update_ok(&[]).await;

    let body = app.create("shop", "constructs").await;
    let (port, pw, db) = creds(&body);
    // utf8mb4 text and binary blobs survive byte for byte.
    assert_eq!(
        scalar(
            port,
            &pw,
            &db,
            "SELECT HEX(name) FROM customers WHERE id = 2"
        )
        .await,
        "4A6F73C3A9204EC3BAC3B1657A20F09F90AC"
    );
    assert_eq!(
        scalar(
            port,
            &pw,
            &db,
            "SELECT HEX(avatar) FROM customers WHERE id = 1"
        )
        .await,
        "89504E470D0A1A0A00FF"
    );
    assert_eq!(
        scalar(
            port,
            &pw,
            &db,
            "SELECT HEX(avatar) FROM customers WHERE id = 3"
        )
        .await,
        "000A0D5C27"
    );
    // A routine (function), a procedure, a trigger with a DEFINER, a view.
    assert_eq!(
        scalar(port, &pw, &db, "SELECT order_total(1)").await,
        "2499"
    );
    query(port, &pw, &db, "CALL add_order(2, 7)").await;
    assert_eq!(
        scalar(port, &pw, &db, "SELECT note FROM order_audit").await,
        "created for 7",
        "the trigger fires in the clone"
    );
    assert_eq!(
        scalar(
            port,
            &pw,
            &db,
            "SELECT DEFINER FROM information_schema.TRIGGERS"
        )
        .await,
        "root@localhost"
    );
    assert_eq!(
        scalar(
            port,
            &pw,
            &db,
            "SELECT total_cents FROM customer_totals WHERE name = 'O''Brien'"
        )
        .await,
        "42"
    );

    let body = app.create("big", "c").await;
    let (port, pw, db) = creds(&body);
    assert_eq!(
        scalar(port, &pw, &db, "SELECT SUM(LENGTH(payload)) FROM blobs").await,
        "6000000"
    );
}

#[tokio::test]
async fn a_failing_dump_leaves_the_previous_version_serving() {
    let app = TestApp::spawn().await;
    app.write_dump("shop.sql", simple_dump("t", 2).as_bytes());
    app.update_ok(&[]).await;
    let before = context(&app)
        .store()
        .current_version(&tpl("shop"))
        .unwrap()
        .unwrap();

    // Broken SQL, plus a good dump in the same run.
    app.write_dump(
        "shop.sql",
        b"CREATE TABLE t (id INT PRIMARY KEY);\nINSERT INTO t VALUES (1);\nTHIS IS NOT SQL;\n",
    );
    app.write_dump("other.sql", simple_dump("o", 1).as_bytes());
    let outcomes = app.update(&[]).await;
    let shop = outcomes
        .iter()
        .find(|o| o.template.as_str() == "shop")
        .unwrap();
    let err = shop.result.as_ref().unwrap_err().to_string();
    assert!(err.contains("shop.sql"), "names the dump: {err}");
    assert!(
        err.contains("ERROR 1064") && err.contains("at line 3"),
        "quotes the server: {err}"
    );
    let other = outcomes
        .iter()
        .find(|o| o.template.as_str() == "other")
        .unwrap();
    assert!(other.result.is_ok(), "the other dumps still import");

    // The previous version keeps serving, with its data.
    assert_eq!(
        context(&app).store().current_version(&tpl("shop")).unwrap(),
        Some(before.clone())
    );
    let body = app.create("shop", "after-failure").await;
    let (port, pw, db) = creds(&body);
    assert_eq!(scalar(port, &pw, &db, "SELECT COUNT(*) FROM t").await, "2");

    // Truncated and empty dumps fail too.
    let full = simple_dump("t", 1000);
    app.write_dump("shop.sql", &full.as_bytes()[..full.len() / 2]);
    let outcomes = app.update(&["shop"]).await;
    let err = only_error(&outcomes);
    assert!(
        matches!(err, ImportError::Truncated(_) | ImportError::Server { .. }),
        "{err}"
    );
    app.write_dump("shop.sql", b"");
    let outcomes = app.update(&["shop"]).await;
    let err = only_error(&outcomes);
    assert!(matches!(err, ImportError::Empty(_)), "{err}");
    let gz = gzip(full.as_bytes());
    std::fs::remove_file(app.dumps_dir().join("shop.sql")).unwrap();
    app.write_dump("shop.sql.gz", &gz[..gz.len() / 2]);
    let outcomes = app.update(&["shop"]).await;
    let err = only_error(&outcomes);
    let msg = err.to_string();
    assert!(
        msg.contains("shop.sql.gz") && msg.contains("cannot read the dump"),
        "{msg}"
    );

    // Nothing half-made is left: no work folders, no import containers.
    let tmp = app.tmp_entries("import.");
    assert!(tmp.is_empty(), "{tmp:?}");
    assert!(app
        .containers()
        .await
        .iter()
        .all(|c| !c.name.ends_with("._import")));
    assert_eq!(
        context(&app).store().current_version(&tpl("shop")).unwrap(),
        Some(before)
    );
    let last = app.get_json("/api/v1/templates/shop").await;
    assert_eq!(last["last_import"]["ok"], false);

    // The binary's exit status is non-zero when an import failed.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dollyd"))
        .arg("update")
        .envs(app.env())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("shop: FAILED"), "{stdout}");
    // `other` was imported above from the same dump: skipped as unchanged.
    assert!(stdout.contains("other: unchanged"), "{stdout}");
}

fn only_error(outcomes: &[template::ImportOutcome]) -> &ImportError {
    assert_eq!(outcomes.len(), 1);
    outcomes[0].result.as_ref().unwrap_err()
}

fn context(app: &TestApp) -> dolly_core::context::Context {
    dolly_core::context::Context::new(app.settings.clone(), app.engine.clone()).unwrap()
}

#[tokio::test]
async fn an_update_never_touches_running_instances() {
    let app = TestApp::spawn().await;
    app.write_dump("shop.sql", simple_dump("t", 2).as_bytes());
    app.update_ok(&[]).await;
    let v1 = context(&app)
        .store()
        .current_version(&tpl("shop"))
        .unwrap()
        .unwrap();
    let old = app.create("shop", "old").await;
    let (port, pw, db) = creds(&old);
    query(port, &pw, &db, "INSERT INTO t VALUES (100, 'mine')").await;
    let container_before = app.get_json("/db/shop/old?all=1").await["container"]["Id"].clone();

    app.write_dump("shop.sql", simple_dump("t", 7).as_bytes());
    app.update_ok(&[]).await;
    let v2 = context(&app)
        .store()
        .current_version(&tpl("shop"))
        .unwrap()
        .unwrap();
    assert_ne!(v1, v2);

    // The running instance kept its server, port and data.
    let again = app.get_json("/db/shop/old").await;
    assert_eq!(again["port"], old["port"]);
    assert_eq!(
        app.get_json("/db/shop/old?all=1").await["container"]["Id"],
        container_before
    );
    assert_eq!(scalar(port, &pw, &db, "SELECT COUNT(*) FROM t").await, "3");
    // New instances get the new version.
    let new = app.create("shop", "new").await;
    let (p2, pw2, db2) = creds(&new);
    assert_eq!(scalar(p2, &pw2, &db2, "SELECT COUNT(*) FROM t").await, "7");

    // v1 stays while an instance was cloned from it, and goes after.
    let ctx = context(&app);
    let versions = |ctx: &dolly_core::context::Context| {
        ctx.store()
            .versions(&tpl("shop"))
            .unwrap()
            .into_iter()
            .map(|m| m.version)
            .collect::<Vec<_>>()
    };
    assert!(versions(&ctx).contains(&v1));
    assert_eq!(app.delete("/db/shop/old").await.status(), 204);
    app.write_dump("shop.sql", simple_dump("t", 9).as_bytes());
    app.update_ok(&[]).await;
    let left = versions(&ctx);
    assert!(!left.contains(&v1), "{left:?}");
    assert!(left.contains(&v2), "v2 is used by 'new': {left:?}");
}

#[tokio::test]
async fn removing_a_version_under_a_reflink_clone_is_safe() {
    let app = TestApp::spawn().await;
    app.write_dump("shop.sql", simple_dump("t", 50).as_bytes());
    app.update_ok(&[]).await;
    let ctx = context(&app);
    let v1 = ctx.store().current_version(&tpl("shop")).unwrap().unwrap();
    let body = app.create("shop", "survivor").await;
    let (port, pw, db) = creds(&body);

    // Remove the version the instance was cloned from, blocks and all.
    std::fs::remove_dir_all(ctx.store().version_data(&tpl("shop"), &v1)).unwrap();
    assert_eq!(scalar(port, &pw, &db, "SELECT COUNT(*) FROM t").await, "50");
    query(port, &pw, &db, "INSERT INTO t VALUES (51, 'x')").await;
    // Even a restart of its server reads only its own files.
    let container = format!("{}shop.survivor", app.settings.container_prefix);
    app.engine.stop(&container, 30).await.unwrap();
    app.engine.start(&container).await.unwrap();
    let info = app.engine.inspect(&container).await.unwrap().unwrap();
    let port = info.host_port.unwrap();
    let mut ok = false;
    for _ in 0..100 {
        if dolly_core::instance::ping("127.0.0.1", port, &pw)
            .await
            .is_ok()
        {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ok, "the instance restarts without its template version");
    assert_eq!(scalar(port, &pw, &db, "SELECT COUNT(*) FROM t").await, "51");
}

#[tokio::test]
async fn one_import_per_template_at_a_time() {
    let app = TestApp::spawn().await;
    app.write_dump("shop.sql", simple_dump("t", 1).as_bytes());
    let ctx = context(&app);
    // Another update holds the lock (as a second `dollyd update` would).
    let lock = ctx.store().lock_import(&tpl("shop")).unwrap();
    let err = only_error(&app.update(&["shop"]).await).to_string();
    assert!(
        err.contains("another update of template 'shop' is running"),
        "{err}"
    );

    // Meanwhile, with no version yet, creates answer 423 (myaas) / 423 (v1).
    let r = app.post("/db/shop/early").await;
    assert_eq!(r.status(), 423);
    let r = app.post("/api/v1/templates/shop/instances/early").await;
    assert_eq!(r.status(), 423);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "template_importing");

    drop(lock);
    app.update_ok(&["shop"]).await;
    app.create("shop", "later").await;
}
