//! dolly's promise against the real engine: housekeeping never deletes what
//! a user saved.
//!
//! - containers removed behind dolly's back (`docker rm -f`) while dollyd
//!   is down: at start, a ready instance is kept and its container
//!   re-created on its saved port with its password; a stopped one stays
//!   stopped until `start`; snapshots and protection are kept;
//! - a damaged `meta.json`: the folder is set aside in `quarantine/` (listed
//!   by `GET /api/v1/quarantine`), never deleted, and dollyd keeps serving;
//! - `docker rm -f` while dollyd runs: the reaper's pass re-creates the
//!   container on the same port with the same password.
//!
//! dollyd is restarted on the same data folder with [`TestApp::start`]
//! (the in-process server is dropped and `Application` built again with
//! the same settings). Dropping the old server closes its listener, but
//! the reaper task it spawned is detached, not stopped: the tests that
//! restart use a reap interval of an hour so that the old reaper (whose
//! first, immediate pass ran at its start) cannot heal anything in the
//! meantime and the new dollyd's reconcile is what is tested.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{query, TestApp};
use serde_json::{json, Value};

const SHOP: &str = "/api/v1/templates/shop/instances";

/// A dollyd whose reaper never runs a second pass during the test.
async fn app_without_reaper() -> TestApp {
    let app = TestApp::spawn_with(|s| s.reap_interval = Duration::from_secs(3600)).await;
    app.write_dump("shop.sql", common::simple_dump("t", 3).as_bytes());
    app.update_ok(&["shop"]).await;
    app
}

/// Creates `shop/name` through v1; returns (port, password, database, body).
async fn create(app: &TestApp, name: &str) -> (u16, String, String, Value) {
    let (status, i) = app.post_json(&format!("{SHOP}/{name}"), json!({})).await;
    assert_eq!(status, 201, "create shop/{name}: {i}");
    (
        i["port"].as_u64().expect("port") as u16,
        i["password"].as_str().expect("password").to_owned(),
        i["database"].as_str().expect("database").to_owned(),
        i,
    )
}

/// The ids in table `t`, in order, comma-separated.
async fn ids(port: u16, pw: &str, db: &str) -> String {
    common::scalar(port, pw, db, "SELECT GROUP_CONCAT(id ORDER BY id) FROM t").await
}

/// As [`ids`], or `None` while the server does not answer.
async fn try_ids(port: u16, pw: &str, db: &str) -> Option<String> {
    use mysql_async::prelude::Queryable;
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some("root"))
        .pass(Some(pw.to_owned()))
        .db_name(Some(db.to_owned()))
        .prefer_socket(false);
    let attempt = async {
        let mut conn = mysql_async::Conn::new(opts).await.ok()?;
        let v: Option<String> = conn
            .query_first("SELECT GROUP_CONCAT(id ORDER BY id) FROM t")
            .await
            .ok()?;
        let _ = conn.disconnect().await;
        v
    };
    tokio::time::timeout(Duration::from_secs(5), attempt)
        .await
        .ok()
        .flatten()
}

/// The name of the container of `shop/name`, if the engine has one.
async fn container_of(app: &TestApp, name: &str) -> Option<String> {
    let suffix = format!("shop.{name}");
    app.containers()
        .await
        .into_iter()
        .map(|c| c.name)
        .find(|n| n.ends_with(&suffix))
}

/// `docker rm -f NAME`, as a user (or a cleanup script) would.
fn docker_rm_f(container: &str) {
    let out = Command::new("docker")
        .args(["rm", "-f", container])
        .output()
        .unwrap_or_else(|e| panic!("these tests need the docker CLI: docker rm -f: {e}"));
    assert!(
        out.status.success(),
        "docker rm -f {container}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Removes the container of `shop/name` behind dolly's back.
async fn remove_behind_dollys_back(app: &TestApp, name: &str) {
    let container = container_of(app, name)
        .await
        .unwrap_or_else(|| panic!("shop/{name} has no container to remove"));
    docker_rm_f(&container);
    assert_eq!(
        container_of(app, name).await,
        None,
        "docker rm -f left the container of shop/{name}"
    );
}

/// Stops the in-process dollyd and lets the runtime drop it.
async fn stop_dollyd(app: &mut TestApp) {
    app.stop();
    tokio::time::sleep(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn a_lost_container_loses_nothing() {
    let mut app = app_without_reaper().await;

    // keep: a row, a snapshot of it, protection, and a row after the snapshot.
    let (port, pw, db, _) = create(&app, "keep").await;
    query(
        port,
        &pw,
        &db,
        "INSERT INTO t VALUES (4, 'saved by a user')",
    )
    .await;
    let (status, snap) = app
        .post_json(&format!("{SHOP}/keep/snapshots/saved"), json!({}))
        .await;
    assert_eq!(status, 201, "snapshot: {snap}");
    query(
        port,
        &pw,
        &db,
        "INSERT INTO t VALUES (5, 'after the snapshot')",
    )
    .await;
    let (status, protected) = app
        .post_json(&format!("{SHOP}/keep/protect"), json!({}))
        .await;
    assert_eq!(status, 200, "protect: {protected}");
    assert_eq!(protected["protected"], true, "{protected}");
    assert_eq!(ids(port, &pw, &db).await, "1,2,3,4,5");

    // paused: a row, then stopped on purpose.
    let (pport, ppw, pdb, _) = create(&app, "paused").await;
    query(pport, &ppw, &pdb, "INSERT INTO t VALUES (7, 'paused row')").await;
    let (status, stopped) = app
        .post_json(&format!("{SHOP}/paused/stop"), json!({}))
        .await;
    assert_eq!(status, 200, "stop: {stopped}");
    assert_eq!(stopped["state"], "stopped", "{stopped}");

    // dollyd goes down; both containers are removed behind its back.
    stop_dollyd(&mut app).await;
    remove_behind_dollys_back(&app, "keep").await;
    remove_behind_dollys_back(&app, "paused").await;

    let started = Instant::now();
    app.start().await;
    eprintln!(
        "restart with two lost containers: {:.1}s",
        started.elapsed().as_secs_f64()
    );

    // keep: running again on its port, with its password, its data.
    let keep = app.get_json(&format!("{SHOP}/keep")).await;
    assert_eq!(keep["state"], "running", "{keep}");
    assert_eq!(
        keep["port"].as_u64(),
        Some(u64::from(port)),
        "same port: {keep}"
    );
    assert_eq!(keep["password"], pw.as_str(), "same password: {keep}");
    assert_eq!(keep["protected"], true, "still protected: {keep}");
    assert!(
        container_of(&app, "keep").await.is_some(),
        "keep's container was re-created"
    );
    assert_eq!(
        ids(port, &pw, &db).await,
        "1,2,3,4,5",
        "keep's rows, before and after the snapshot"
    );

    // Its snapshot is listed and holds what was saved.
    let snaps = app.get_json(&format!("{SHOP}/keep/snapshots")).await;
    let names: Vec<&str> = snaps["snapshots"]
        .as_array()
        .unwrap_or_else(|| panic!("snapshots: {snaps}"))
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["saved"], "{snaps}");
    let (status, branch) = app
        .post_json(&format!("{SHOP}/fromsaved"), json!({"from": "keep@saved"}))
        .await;
    assert_eq!(status, 201, "branch from keep@saved: {branch}");
    let (bport, bpw) = (
        branch["port"].as_u64().expect("port") as u16,
        branch["password"].as_str().expect("password"),
    );
    assert_eq!(ids(bport, bpw, &db).await, "1,2,3,4", "the snapshot's data");

    // paused: still stopped, no container made for it; start brings it back.
    let paused = app.get_json(&format!("{SHOP}/paused")).await;
    assert_eq!(paused["state"], "stopped", "{paused}");
    assert_eq!(paused["port"].as_u64(), Some(u64::from(pport)), "{paused}");
    assert_eq!(
        container_of(&app, "paused").await,
        None,
        "a stopped instance needs no container until start"
    );
    let (status, restarted) = app
        .post_json(&format!("{SHOP}/paused/start"), json!({}))
        .await;
    assert_eq!(status, 200, "start: {restarted}");
    assert_eq!(restarted["state"], "running", "{restarted}");
    assert_eq!(
        restarted["port"].as_u64(),
        Some(u64::from(pport)),
        "{restarted}"
    );
    assert_eq!(restarted["password"], ppw.as_str(), "{restarted}");
    assert_eq!(ids(pport, &ppw, &pdb).await, "1,2,3,7");

    // Nothing was set aside.
    let q = app.get_json("/api/v1/quarantine").await;
    assert_eq!(q["quarantined"], json!([]), "{q}");
}

#[tokio::test]
async fn damaged_metadata_is_set_aside_not_deleted() {
    const MARK: &str = "user data written before the damage";
    let mut app = app_without_reaper().await;
    let (port, pw, db, _) = create(&app, "hurt").await;
    query(
        port,
        &pw,
        &db,
        &format!("INSERT INTO t VALUES (4, '{MARK}')"),
    )
    .await;

    stop_dollyd(&mut app).await;
    let folder = app.data_dir().join("instances/shop/hurt");
    let meta = folder.join("meta.json");
    assert!(meta.is_file(), "{} missing", meta.display());
    std::fs::write(&meta, b"{\"template\": \"shop\", \"na\x00\xff garbage")
        .expect("damage meta.json");

    let started = Instant::now();
    app.start().await;
    eprintln!(
        "restart with a damaged meta.json: {:.1}s",
        started.elapsed().as_secs_f64()
    );

    // Listed in quarantine, with a reason that names the damage.
    let q = app.get_json("/api/v1/quarantine").await;
    let list = q["quarantined"]
        .as_array()
        .unwrap_or_else(|| panic!("quarantine: {q}"));
    assert_eq!(list.len(), 1, "{q}");
    let entry = &list[0];
    assert_eq!(entry["template"], "shop", "{q}");
    assert_eq!(entry["name"], "hurt", "{q}");
    let reason = entry["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("damaged") && reason.contains("meta.json"),
        "the reason names the damage: {reason:?}"
    );
    assert!(entry["quarantined_at"].is_string(), "{q}");

    // The folder is under DATA/quarantine/ with its datadir, not deleted.
    let path = std::path::PathBuf::from(entry["path"].as_str().expect("path"));
    let quarantine = app.data_dir().join("quarantine");
    assert!(
        path.starts_with(&quarantine),
        "{} is not under {}",
        path.display(),
        quarantine.display()
    );
    assert!(path.is_dir(), "{} missing", path.display());
    let data = path.join("data");
    assert!(data.join("ibdata1").is_file(), "{}/ibdata1", data.display());
    // The container was stopped cleanly before the move: the user's row
    // was flushed into the table's file (a killed server with
    // innodb-flush-log-at-trx-commit=0 may not even have it in its log).
    let ibd = data.join(&db).join("t.ibd");
    let table = std::fs::read(&ibd).unwrap_or_else(|e| panic!("{}: {e}", ibd.display()));
    assert!(
        table.windows(MARK.len()).any(|w| w == MARK.as_bytes()),
        "the row written before the damage is not in {}",
        ibd.display()
    );
    assert_eq!(
        std::fs::read(path.join("meta.json")).expect("the damaged meta.json is kept"),
        b"{\"template\": \"shop\", \"na\x00\xff garbage",
    );
    assert!(!folder.exists(), "{} still in instances/", folder.display());

    // The instance is no longer served.
    let r = app.get(&format!("{SHOP}/hurt")).await;
    assert_eq!(r.status(), 404, "GET shop/hurt");
    let listed = app.get_json("/api/v1/instances").await;
    assert!(
        listed["instances"]
            .as_array()
            .is_some_and(|l| l.iter().all(|i| i["name"] != "hurt")),
        "{listed}"
    );

    // And dollyd keeps serving: a new instance works.
    let (nport, npw, ndb, _) = create(&app, "fresh").await;
    assert_eq!(ids(nport, &npw, &ndb).await, "1,2,3");
    // Still there after that.
    assert!(data.join("ibdata1").is_file());
}

#[tokio::test]
async fn rm_f_while_serving_is_healed_by_the_reaper() {
    // The reaper loop of `run_until_stopped` (TestApp runs it) every 500 ms.
    let app = TestApp::spawn_with(|s| s.reap_interval = Duration::from_millis(500)).await;
    app.write_dump("shop.sql", common::simple_dump("t", 3).as_bytes());
    app.update_ok(&["shop"]).await;
    let (port, pw, db, _) = create(&app, "live").await;
    query(port, &pw, &db, "INSERT INTO t VALUES (4, 'written live')").await;

    remove_behind_dollys_back(&app, "live").await;
    let removed = Instant::now();

    let deadline = removed + Duration::from_secs(30);
    loop {
        if try_ids(port, &pw, &db).await.as_deref() == Some("1,2,3,4") {
            break;
        }
        if Instant::now() >= deadline {
            let now = app.get(&format!("{SHOP}/live")).await;
            let status = now.status();
            let body = now.text().await.unwrap_or_default();
            panic!(
                "shop/live does not answer on port {port} 30 s after docker rm -f: \
                 GET {status} {body}; container: {:?}",
                container_of(&app, "live").await
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!(
        "healed {:.1}s after docker rm -f",
        removed.elapsed().as_secs_f64()
    );

    let live = app.get_json(&format!("{SHOP}/live")).await;
    assert_eq!(live["state"], "running", "{live}");
    assert_eq!(live["port"].as_u64(), Some(u64::from(port)), "{live}");
    assert_eq!(live["password"], pw.as_str(), "{live}");
    let q = app.get_json("/api/v1/quarantine").await;
    assert_eq!(q["quarantined"], json!([]), "{q}");
}
