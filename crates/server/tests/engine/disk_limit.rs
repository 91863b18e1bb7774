//! `instance_max_disk` on btrfs with quotas, against the real engine: an
//! instance filled from inside with SQL stops at its limit ("Disk quota
//! exceeded" / "table is full") while another instance keeps accepting
//! writes and dollyd keeps answering. Also times create and reset on
//! btrfs and on the XFS test folder (printed; README keeps the figures).
//!
//! The btrfs filesystem is a loop file the test mounts itself at
//! `/srv/dolly-btrfs-test` with `scripts/btrfs-fs.sh` (root; idempotent).

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{creds, simple_dump, test_base_dir, TestApp};
use mysql_async::prelude::Queryable;

const LIMIT: u64 = 40 * 1024 * 1024;

/// Mounts (or finds) the btrfs test filesystem with quotas enabled.
fn btrfs_dir() -> PathBuf {
    let dir = std::env::var_os("DOLLY_TEST_BTRFS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/srv/dolly-btrfs-test"));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/btrfs-fs.sh");
    let out = std::process::Command::new(script)
        .arg(&dir)
        .arg("4G")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
    assert!(
        out.status.success(),
        "this test needs a btrfs filesystem with quotas at {} (root, btrfs-progs, loop devices): {} {}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

async fn conn(body: &serde_json::Value) -> mysql_async::Conn {
    let (port, password, db) = creds(body);
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some("root"))
        .pass(Some(password))
        .db_name(Some(db))
        .prefer_socket(false);
    mysql_async::Conn::new(opts).await.expect("connect")
}

const TABLE: &str =
    "CREATE TABLE fill (id INT AUTO_INCREMENT PRIMARY KEY, b LONGBLOB) ENGINE=InnoDB";
/// One row of 1 MiB of bytes that do not compress.
const ROW: &str = "INSERT INTO fill (b) SELECT REPEAT(MD5(RAND()), 32768)";

/// Whether a server error says the disk (or quota) is full.
fn is_disk_full(e: &str) -> bool {
    let e = e.to_ascii_lowercase();
    e.contains("quota")
        || e.contains("is full")
        || e.contains("disk full")
        || e.contains("no space")
}

#[tokio::test]
async fn an_instance_filling_its_disk_stops_at_its_limit_and_the_others_keep_working() {
    let base = btrfs_dir();
    let app = {
        let mut app = TestApp::new_stopped_in(&base, |s| {
            s.instance_max_disk = Some(LIMIT);
            s.reap_interval = Duration::from_secs(1);
        })
        .await;
        app.write_dump("shop.sql", simple_dump("t", 10).as_bytes());
        app.update_ok(&[]).await;
        app.start().await;
        app
    };
    let full = app.create("shop", "full").await;
    let other = app.create("shop", "other").await;

    // The datadir is a subvolume with its own limit.
    let data = app.data_dir().join("instances/shop/full/data");
    let show = std::process::Command::new("btrfs")
        .args(["subvolume", "show"])
        .arg(&data)
        .output()
        .expect("btrfs");
    assert!(
        show.status.success(),
        "{} is not a subvolume",
        data.display()
    );

    let started = Instant::now();
    let mut c = conn(&full).await;
    c.query_drop(TABLE).await.expect("create table");
    let mut written = 0u64;
    let error = loop {
        assert!(
            written < 4 * LIMIT,
            "{written} bytes went into an instance limited to {LIMIT}"
        );
        match c.query_drop(ROW).await {
            Ok(()) => written += 1 << 20,
            Err(e) => break e.to_string(),
        }
    };
    eprintln!(
        "full: {} MiB accepted, then {error:?} after {:.1?}",
        written >> 20,
        started.elapsed()
    );
    // Either the statement fails ("table is full", "Disk quota exceeded"),
    // or InnoDB, refused a redo log write (EDQUOT, error 122), ends the
    // server: MariaDB treats a failed redo write as fatal. Either way the
    // instance stopped at its limit and nothing else was touched.
    if !is_disk_full(&error) {
        let logs = std::process::Command::new("docker")
            .args([
                "logs",
                "--tail",
                "80",
                &format!("{}shop.full", app.settings.container_prefix),
            ])
            .output()
            .expect("docker logs");
        let said = String::from_utf8_lossy(&logs.stderr);
        // InnoDB writes "IO Error: 122 during write" or "error 122".
        let lower = said.to_ascii_lowercase();
        let edquot = lower.contains("error 122") || lower.contains("error: 122");
        assert!(
            edquot || is_disk_full(&said),
            "not a disk-full error: {error}; the server said: {said}"
        );
        // The next reaper pass marks it stopped, with why, instead of
        // starting it again.
        let path = "/api/v1/templates/shop/instances/full";
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let i = app.get_json(path).await;
            if i["state"] == "stopped" {
                let reason = i["stopped_reason"].as_str().unwrap_or_default();
                assert!(reason.contains("instance_max_disk"), "{i}");
                eprintln!("full: {reason}");
                break;
            }
            assert!(Instant::now() < deadline, "not stopped with a reason: {i}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    assert!(written >= 5 << 20, "stopped too early: {written} bytes");

    // The other instance (same limit, its own) keeps accepting writes.
    let mut o = conn(&other).await;
    o.query_drop(TABLE).await.expect("create table");
    for _ in 0..8 {
        o.query_drop(ROW).await.expect("the other instance writes");
    }
    let rows: u64 = o
        .query_first("SELECT COUNT(*) FROM fill")
        .await
        .expect("count")
        .expect("a row");
    assert_eq!(rows, 8);
    drop(o);
    // dollyd answers, and the full instance is still served by its API.
    assert_eq!(app.get("/healthz").await.status(), 200);
    let listed = app.get_json("/api/v1/instances").await;
    assert!(listed.to_string().contains("\"full\""), "{listed}");
    // A reset gives the full instance its room back.
    drop(c);
    let r = app
        .client
        .post(app.url("/api/v1/templates/shop/instances/full/reset"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("reset");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let mut c = conn(&full).await;
    c.query_drop(TABLE).await.expect("create table after reset");
    c.query_drop(ROW).await.expect("a write after reset");
    // The other instance was made after the first: cleanup removes both
    // subvolumes (rmdir of an empty subvolume).
    for n in ["full", "other"] {
        let r = app
            .delete(&format!("/api/v1/templates/shop/instances/{n}"))
            .await;
        assert!(r.status().is_success(), "delete {n}: {}", r.status());
    }
    assert!(!data.exists());
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Five creates and five resets on `base`: medians of each.
async fn time_create_and_reset(base: &Path, limit: Option<u64>) -> (Duration, Duration) {
    let mut app = TestApp::new_stopped_in(base, |s| s.instance_max_disk = limit).await;
    app.write_dump("shop.sql", simple_dump("t", 1000).as_bytes());
    app.update_ok(&[]).await;
    app.start().await;
    let (mut creates, mut resets) = (Vec::new(), Vec::new());
    for i in 0..5 {
        let name = format!("t{i}");
        let t = Instant::now();
        app.create("shop", &name).await;
        creates.push(t.elapsed());
        let t = Instant::now();
        let r = app
            .client
            .post(app.url(&format!("/api/v1/templates/shop/instances/{name}/reset")))
            .json(&serde_json::json!({}))
            .send()
            .await
            .expect("reset");
        assert_eq!(r.status(), 200);
        resets.push(t.elapsed());
    }
    for i in 0..5 {
        app.delete(&format!("/api/v1/templates/shop/instances/t{i}"))
            .await;
    }
    (median(creates), median(resets))
}

#[tokio::test]
async fn create_and_reset_times_on_btrfs_and_xfs() {
    let btrfs = btrfs_dir();
    let (bc, br) = time_create_and_reset(&btrfs, Some(LIMIT)).await;
    let (xc, xr) = time_create_and_reset(&test_base_dir(), None).await;
    eprintln!(
        "medians of 5 (machine shared, loaded): btrfs+qgroup limit create {} ms reset {} ms; XFS ({}) create {} ms reset {} ms",
        bc.as_millis(),
        br.as_millis(),
        test_base_dir().display(),
        xc.as_millis(),
        xr.as_millis()
    );
    // Bounded: a create or reset is well under the ready timeout.
    assert!(bc < Duration::from_secs(20) && br < Duration::from_secs(20));
}
