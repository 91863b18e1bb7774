//! The real `dollyd` binary killed with SIGKILL and started again: every
//! instance is found with the same port and credentials; half-made and
//! orphaned things are cleaned up.

use crate::common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{creds, query, scalar, simple_dump, TestApp};
use serde_json::Value;

struct Dollyd {
    child: Child,
    url: String,
}

impl Dollyd {
    async fn start(app: &TestApp) -> Self {
        // A free port: bind, read, release.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_dollyd"))
            .arg("serve")
            .envs(app.env())
            .env("DOLLY_LISTEN", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn dollyd");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = app.client.get(format!("{url}/healthz")).send().await {
                if r.status() == 200 {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "dollyd did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { child, url }
    }

    fn kill9(mut self) {
        // SIGKILL: no cleanup of any kind.
        self.child.kill().expect("kill");
        let _ = self.child.wait();
    }
}

impl Drop for Dollyd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn kill_9_then_restart_finds_every_instance_and_cleans_orphans() {
    let app = TestApp::new_stopped(|_| {}).await;
    app.write_dump("shop.sql", simple_dump("t", 5).as_bytes());
    app.update_ok(&[]).await;

    let d = Dollyd::start(&app).await;
    let post = |name: &str| app.client.post(format!("{}/db/shop/{name}", d.url)).send();
    let r = post("keep").await.unwrap();
    assert_eq!(r.status(), 201);
    let keep: Value = r.json().await.unwrap();
    let (port, pw, db) = creds(&keep);
    query(
        port,
        &pw,
        &db,
        "INSERT INTO t VALUES (6, 'written before the crash')",
    )
    .await;
    assert_eq!(post("orphan").await.unwrap().status(), 201);

    // A create in flight when the process dies.
    let inflight = tokio::spawn(
        app.client
            .post(format!("{}/db/shop/inflight", d.url))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    d.kill9();
    let _ = inflight.await;

    // Damage while it is down: an orphan container (its folder gone) and a
    // half-made folder (no container, never ready).
    std::fs::remove_dir_all(app.data_dir().join("instances/shop/orphan")).unwrap();
    let half = app.data_dir().join("instances/shop/half");
    std::fs::create_dir_all(half.join("data")).unwrap();
    std::fs::write(half.join("data/ibdata1"), b"partial").unwrap();
    // An interrupted import's work folder.
    std::fs::create_dir_all(app.data_dir().join("tmp/import.shop.20260101t000000z")).unwrap();

    let d = Dollyd::start(&app).await;
    let get = |path: String| app.client.get(format!("{}{path}", d.url)).send();

    // The instance is whole: same port, same password, its data.
    let again: Value = get("/db/shop/keep".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["port"], keep["port"]);
    assert_eq!(again["password"], keep["password"]);
    assert_eq!(again["running"], true);
    assert_eq!(scalar(port, &pw, &db, "SELECT COUNT(*) FROM t").await, "6");

    // The in-flight create is whole and answering, or entirely gone.
    let r = get("/db/shop/inflight".into()).await.unwrap();
    let container_exists = app
        .containers()
        .await
        .iter()
        .any(|c| c.name.ends_with("shop.inflight"));
    if r.status() == 200 {
        let body: Value = r.json().await.unwrap();
        let (p, pw, db) = creds(&body);
        assert_eq!(scalar(p, &pw, &db, "SELECT COUNT(*) FROM t").await, "5");
        assert!(container_exists);
    } else {
        assert_eq!(r.status(), 404);
        assert!(!container_exists, "no container without its instance");
        assert!(!app.data_dir().join("instances/shop/inflight").exists());
    }

    // Orphans are gone.
    assert_eq!(get("/db/shop/orphan".into()).await.unwrap().status(), 404);
    assert!(app
        .containers()
        .await
        .iter()
        .all(|c| !c.name.ends_with("shop.orphan")));
    assert!(!half.exists(), "half-made folder removed");
    assert!(!app
        .data_dir()
        .join("tmp/import.shop.20260101t000000z")
        .exists());

    // And the service works on.
    let r = app
        .client
        .post(format!("{}/db/shop/after", d.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn sigterm_shuts_down_gracefully_and_instances_keep_running() {
    let app = TestApp::new_stopped(|_| {}).await;
    app.write_dump("shop.sql", simple_dump("t", 2).as_bytes());
    app.update_ok(&[]).await;
    let mut d = Dollyd::start(&app).await;
    let r = app
        .client
        .post(format!("{}/db/shop/survivor", d.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    let (port, pw, db) = creds(&body);

    // SAFETY: signalling our own child process.
    unsafe { libc::kill(d.child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(40);
    let status = loop {
        if let Some(status) = d.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "dollyd did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "clean exit: {status:?}");
    // The instance outlives the service.
    assert_eq!(scalar(port, &pw, &db, "SELECT COUNT(*) FROM t").await, "2");
}

#[tokio::test]
async fn kill_9_during_an_import_leaves_nothing_half_published() {
    let app = TestApp::new_stopped(|_| {}).await;
    // Big enough to be mid-load when the kill comes.
    app.write_dump("shop.sql", simple_dump("t", 400_000).as_bytes());
    let mut update = Command::new(env!("CARGO_BIN_EXE_dollyd"))
        .arg("update")
        .envs(app.env())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn dollyd update");
    // Wait until the import is under way (its work folder exists).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let busy = !app.tmp_entries("import.").is_empty();
        if busy {
            break;
        }
        assert!(Instant::now() < deadline, "the import never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    update.kill().expect("kill -9");
    let _ = update.wait();

    // A restart of the service cleans the interrupted import up.
    let d = Dollyd::start(&app).await;
    let leftovers = app.tmp_entries("import.");
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(app
        .containers()
        .await
        .iter()
        .all(|c| !c.name.ends_with("._import")));
    assert!(
        !app.data_dir().join("templates/shop/current").exists(),
        "no version half-published"
    );
    let r = app
        .client
        .post(format!("{}/db/shop/x", d.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    drop(d);

    // And the import can run again.
    app.write_dump("shop.sql", simple_dump("t", 10).as_bytes());
    app.update_ok(&["shop"]).await;
}
