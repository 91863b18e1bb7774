//! Faults against the real engine: the engine unreachable (through a
//! wrapper that can be switched off), disk full during a clone (a small
//! loop-mounted XFS), an import that hangs (import_timeout), and the server
//! inside an instance killed.
//!
//! Figures from these tests are in RELIABILITY.md.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::{creds, scalar, simple_dump, TestApp};
use dolly_engine::{
    ContainerInfo, ContainerSpec, Engine, EngineError, ExecOutput, Stdin, StdoutWatch,
};
use dolly_server::startup::Application;
use serde_json::Value;

// ---------------------------------------------------------------------------
// (a) The engine unreachable

/// An engine that can be switched off: every call fails with
/// `Unavailable`, as when the socket is gone, until it is switched on again.
struct Flaky {
    inner: Arc<dyn Engine>,
    down: AtomicBool,
}

impl Flaky {
    fn check(&self) -> Result<(), EngineError> {
        if self.down.load(Ordering::SeqCst) {
            Err(EngineError::Unavailable(
                "test: engine switched off (connection refused)".into(),
            ))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Engine for Flaky {
    async fn ping(&self) -> Result<(), EngineError> {
        self.check()?;
        self.inner.ping().await
    }
    async fn ensure_image(&self, image: &str) -> Result<String, EngineError> {
        self.check()?;
        self.inner.ensure_image(image).await
    }
    async fn run(&self, spec: &ContainerSpec) -> Result<String, EngineError> {
        self.check()?;
        self.inner.run(spec).await
    }
    async fn inspect(&self, name: &str) -> Result<Option<ContainerInfo>, EngineError> {
        self.check()?;
        self.inner.inspect(name).await
    }
    async fn inspect_raw(&self, name: &str) -> Result<Option<Value>, EngineError> {
        self.check()?;
        self.inner.inspect_raw(name).await
    }
    async fn list(
        &self,
        labels: &BTreeMap<String, String>,
    ) -> Result<Vec<ContainerInfo>, EngineError> {
        self.check()?;
        self.inner.list(labels).await
    }
    async fn stop(&self, name: &str, timeout_secs: u32) -> Result<(), EngineError> {
        self.check()?;
        self.inner.stop(name, timeout_secs).await
    }
    async fn rename(&self, name: &str, new_name: &str) -> Result<(), EngineError> {
        self.check()?;
        self.inner.rename(name, new_name).await
    }

    async fn start(&self, name: &str) -> Result<(), EngineError> {
        self.check()?;
        self.inner.start(name).await
    }
    async fn remove(&self, name: &str) -> Result<(), EngineError> {
        self.check()?;
        self.inner.remove(name).await
    }
    async fn kill(&self, name: &str) -> Result<(), EngineError> {
        self.check()?;
        self.inner.kill(name).await
    }
    async fn memory_usage(&self, name: &str) -> Result<Option<u64>, EngineError> {
        self.check()?;
        self.inner.memory_usage(name).await
    }
    async fn wait(&self, name: &str) -> Result<i64, EngineError> {
        self.check()?;
        self.inner.wait(name).await
    }
    async fn logs_tail(&self, name: &str, lines: usize) -> Result<String, EngineError> {
        self.check()?;
        self.inner.logs_tail(name, lines).await
    }
    async fn exec(
        &self,
        name: &str,
        cmd: Vec<String>,
        user: Option<String>,
        stdin: Option<Stdin>,
    ) -> Result<ExecOutput, EngineError> {
        self.check()?;
        self.inner.exec(name, cmd, user, stdin).await
    }
    async fn exec_watched(
        &self,
        name: &str,
        cmd: Vec<String>,
        user: Option<String>,
        stdin: Option<Stdin>,
        watch: StdoutWatch,
    ) -> Result<ExecOutput, EngineError> {
        self.check()?;
        self.inner.exec_watched(name, cmd, user, stdin, watch).await
    }
}

async fn status_and_json(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("status {status}: body is not JSON ({e}): {text:?}"));
    (status, body)
}

#[tokio::test]
async fn engine_unreachable_gives_503_and_recovers_by_itself() {
    let app = TestApp::new_stopped(|_| {}).await;
    app.write_dump("shop.sql", simple_dump("t", 10).as_bytes());
    app.update_ok(&["shop"]).await;

    let flaky = Arc::new(Flaky {
        inner: Arc::clone(&app.engine),
        down: AtomicBool::new(false),
    });
    let engine: Arc<dyn Engine> = flaky.clone();
    let server = Application::build_with_engine(app.settings.clone(), engine)
        .await
        .expect("dollyd starts");
    let url = format!("http://{}", server.address());
    let handle = tokio::spawn(server.run_until_stopped());
    let client = &app.client;

    // Up: one instance exists before the outage.
    let r = client
        .post(format!("{url}/db/shop/before"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    flaky.down.store(true, Ordering::SeqCst);
    let (status, body) =
        status_and_json(client.get(format!("{url}/readyz")).send().await.unwrap()).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["ready"], false, "{body}");
    assert!(
        body["engine"]
            .as_str()
            .unwrap_or("")
            .contains("unreachable"),
        "{body}"
    );

    // Creates through both APIs: 503, engine_unavailable, a clear message.
    let (status, body) = status_and_json(
        client
            .post(format!("{url}/db/shop/during"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "engine_unavailable", "{body}");
    let (status, body) = status_and_json(
        client
            .post(format!("{url}/api/v1/templates/shop/instances/during"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "engine_unavailable", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("unreachable"),
        "{body}"
    );
    // Listing needs the engine too: 503, not a 500 or a wrong answer.
    let (status, body) = status_and_json(
        client
            .get(format!("{url}/api/v1/instances"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    // Nothing half-made from the failed creates.
    assert!(
        !app.data_dir().join("instances/shop/during").exists(),
        "instances/shop/during left behind"
    );

    // The engine returns: no restart of dollyd needed.
    flaky.down.store(false, Ordering::SeqCst);
    let r = client.get(format!("{url}/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .post(format!("{url}/db/shop/during"))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    assert_eq!(status, 201, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    let (port, pw, db) = creds(&body);
    assert_eq!(scalar(port, &pw, &db, "SELECT COUNT(*) FROM t").await, "10");
    // The instance made before the outage is still there and listed.
    let (status, body) = status_and_json(
        client
            .get(format!("{url}/api/v1/instances"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["instances"].as_array().map(Vec::len),
        Some(2),
        "{body}"
    );
    handle.abort();
}

// ---------------------------------------------------------------------------
// (b) Disk full during a clone

/// A loop-mounted XFS, unmounted and removed on drop (even on a panic).
struct LoopFs {
    image: PathBuf,
    mount: PathBuf,
}

impl LoopFs {
    fn new(size: &str) -> Self {
        let base = common::test_base_dir();
        let id = common::random_suffix();
        let image = base.join(format!("dolly-loop-{}.img", &id[..8]));
        let mount = base.join(format!("dolly-loop-{}", &id[..8]));
        std::fs::create_dir_all(&mount).expect("mount point");
        let fs = Self { image, mount };
        run("truncate", &["-s", size, fs.image.to_str().unwrap()]);
        run("mkfs.xfs", &["-q", fs.image.to_str().unwrap()]);
        run(
            "mount",
            &[
                "-o",
                "loop",
                fs.image.to_str().unwrap(),
                fs.mount.to_str().unwrap(),
            ],
        );
        fs
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let m = self.mount.to_str().unwrap_or_default();
        let ok = Command::new("umount")
            .arg(m)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").args(["-l", m]).status();
        }
        let _ = std::fs::remove_dir(&self.mount);
        let _ = std::fs::remove_file(&self.image);
    }
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e} (these tests run as root with xfsprogs)"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Free bytes on the filesystem holding `path`.
fn free_bytes(path: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(path)
        .output()
        .expect("df");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .expect("df output")
}

/// Bytes allocated on disk under `path` (`du`).
fn allocated_bytes(path: &Path) -> u64 {
    let out = Command::new("du")
        .args(["-s", "--block-size=1"])
        .arg(path.join("."))
        .output()
        .expect("du");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .expect("du output")
}

/// Apparent size of every file under `path`.
fn tree_size(path: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(path).expect("read_dir").flatten() {
        let meta = entry.metadata().expect("metadata");
        if meta.is_dir() {
            total += tree_size(&entry.path());
        } else {
            total += meta.len();
        }
    }
    total
}

#[tokio::test]
async fn disk_full_during_a_clone_fails_cleanly_and_keeps_serving() {
    let fs = LoopFs::new("400M");
    let mount = fs.mount.clone();
    let mut app = TestApp::new_stopped(|s| {
        s.data_dir = mount.clone();
        // Full copies: a reflink clone would need almost no space.
        s.force_copy = true;
        // Bound the wait should the copy fit and the server fail instead.
        s.ready_timeout = Duration::from_secs(15);
    })
    .await;
    app.write_dump("shop.sql", simple_dump("t", 10).as_bytes());
    app.update_ok(&["shop"]).await;
    app.start().await;
    let first = app.create("shop", "fits").await;

    let template = app.data_dir().join("templates/shop/current");
    let template_size = tree_size(&template);
    let template_blocks = allocated_bytes(&template);
    // Leave far less free than the template's allocated blocks.
    // (The copy keeps holes, so it needs far less than the template's
    // apparent size: leave almost nothing.)
    let leave = 256 * 1024;
    let free = free_bytes(app.data_dir());
    assert!(free > leave, "loop fs too small: {free} free");
    let filler = app.data_dir().join("filler");
    run(
        "fallocate",
        &["-l", &(free - leave).to_string(), filler.to_str().unwrap()],
    );
    let free_now = free_bytes(app.data_dir());
    eprintln!("template {template_size} bytes ({template_blocks} allocated); free before fill {free}, after {free_now}");

    let started = Instant::now();
    let r = app.post("/db/shop/nospace").await;
    let (status, body) = status_and_json(r).await;
    eprintln!(
        "create on a full disk: {status} in {:.1}s: {body}",
        started.elapsed().as_secs_f64()
    );
    assert!((500..600).contains(&status), "{status}: {body}");
    assert!(body["error"]["code"].is_string(), "{body}");
    // Nothing half-made: no folder, no container, no leftovers in tmp/.
    assert!(
        !app.data_dir().join("instances/shop/nospace").exists(),
        "instances/shop/nospace left behind"
    );
    let names: Vec<String> = app.containers().await.into_iter().map(|c| c.name).collect();
    assert!(
        !names.iter().any(|n| n.ends_with("shop.nospace")),
        "{names:?}"
    );
    assert_eq!(names.len(), 1, "{names:?}");
    let tmp = app.tmp_entries("");
    assert!(tmp.is_empty(), "tmp/ not empty: {tmp:?}");

    // Still serving, and the instance made before still answers.
    let r = app.get("/db").await;
    assert_eq!(r.status(), 200);
    let (port, pw, db) = creds(&first);
    assert_eq!(scalar(port, &pw, &db, "SELECT COUNT(*) FROM t").await, "10");

    // Space back: the same name can be created.
    std::fs::remove_file(&filler).expect("remove filler");
    app.create("shop", "nospace").await;
    app.stop();
    drop(app);
    drop(fs);
}

// ---------------------------------------------------------------------------
// (c) An import that hangs

#[tokio::test]
async fn hanging_import_times_out_and_is_cleaned_up() {
    let mut app = TestApp::new_stopped(|s| s.import_timeout = Duration::from_secs(3)).await;
    app.write_dump(
        "slow.sql",
        b"-- MariaDB dump 10.19\nSELECT SLEEP(60);\n-- Dump completed on 2026-11-23\n",
    );
    let started = Instant::now();
    let outcomes = app.update(&["slow"]).await;
    let elapsed = started.elapsed();
    assert_eq!(outcomes.len(), 1);
    let err = outcomes[0]
        .result
        .as_ref()
        .err()
        .map(|e| e.to_string())
        .expect("the import must fail");
    eprintln!(
        "hanging import failed after {:.1}s: {err}",
        elapsed.as_secs_f64()
    );
    assert!(err.contains("import_timeout"), "{err}");
    assert!(elapsed < Duration::from_secs(50), "took {elapsed:?}");

    let leftovers = app.tmp_entries("import");
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let containers: Vec<String> = app.containers().await.into_iter().map(|c| c.name).collect();
    assert!(
        containers.is_empty(),
        "import container left: {containers:?}"
    );
    assert!(!app.data_dir().join("templates/slow/current").exists());

    // A fixed dump imports fine afterwards (the lock was released), given
    // the time a loaded machine needs for a server's start and slow
    // shutdown (3 s was too short once with two builds beside the run).
    app.settings.import_timeout = Duration::from_secs(120);
    app.write_dump("slow.sql", simple_dump("t", 3).as_bytes());
    app.update_ok(&["slow"]).await;
}

// ---------------------------------------------------------------------------
// (d) The server inside an instance killed

async fn instance_state(app: &TestApp, path: &str) -> String {
    let body = app.get_json(path).await;
    body["state"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn killed_server_shows_as_not_running_and_start_brings_it_back() {
    let app = TestApp::spawn_with(|s| s.reap_interval = Duration::from_millis(500)).await;
    app.write_dump("shop.sql", simple_dump("t", 10).as_bytes());
    app.update_ok(&["shop"]).await;
    let body = app.create("shop", "x").await;
    let (port, pw, db) = creds(&body);
    let path = "/api/v1/templates/shop/instances/x";
    assert_eq!(instance_state(&app, path).await, "running");
    let container = app
        .containers()
        .await
        .into_iter()
        .find(|c| c.name.ends_with("shop.x"))
        .expect("container")
        .name;

    // 1. A crash: SIGKILL to the server's host process. dolly's reaper pass
    //    starts it again by itself, on the same port.
    let raw = app.engine.inspect_raw(&container).await.unwrap().unwrap();
    let pid = raw["State"]["Pid"].as_i64().expect("pid");
    run("kill", &["-9", &pid.to_string()]);
    let started = Instant::now();
    let mut seen = Vec::new();
    loop {
        let state = instance_state(&app, path).await;
        if seen.last() != Some(&state) {
            seen.push(state.clone());
        }
        if seen.len() > 1 && state == "running" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not restarted: states {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "after kill -9: states {seen:?}, running again after {:.1}s",
        started.elapsed().as_secs_f64()
    );
    // The port handed out at create still works.
    let now = app.get_json(path).await;
    assert_eq!(now["port"].as_u64(), Some(u64::from(port)), "{now}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(out) =
            tokio::time::timeout(Duration::from_secs(5), try_count(port, &pw, &db)).await
        {
            if out.as_deref() == Some("10") {
                break;
            }
        }
        if Instant::now() >= deadline {
            let logs = app
                .engine
                .logs_tail(&container, 30)
                .await
                .unwrap_or_default();
            let now = app.get_json(path).await;
            panic!("server did not answer on port {port} after the restart: instance {now}; logs:\n{logs}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // 2. The server gone for good (the engine stopped it behind dolly's
    //    back): shown as dead, and POST .../start brings it back.
    // A clean stop (exit 0): not a crash, so dolly does not start it again.
    app.engine.stop(&container, 30).await.unwrap();
    let state = instance_state(&app, path).await;
    assert_eq!(state, "dead");
    let listed = app.get_json("/api/v1/instances").await;
    eprintln!("listed after stop behind dolly's back: {listed}");
    let started = Instant::now();
    let r = app.post(&format!("{path}/start")).await;
    let (status, body) = status_and_json(r).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "running", "{body}");
    eprintln!("start after dead: {:.1}s", started.elapsed().as_secs_f64());
    // start puts the server back on the port recorded at create.
    let port = body["port"].as_u64().expect("port") as u16;
    assert_eq!(scalar(port, &pw, &db, "SELECT COUNT(*) FROM t").await, "10");
}

async fn try_count(port: u16, pw: &str, db: &str) -> Option<String> {
    use mysql_async::prelude::Queryable;
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some("root"))
        .pass(Some(pw.to_owned()))
        .db_name(Some(db.to_owned()))
        .prefer_socket(false);
    let mut conn = mysql_async::Conn::new(opts).await.ok()?;
    let v: Option<String> = conn.query_first("SELECT COUNT(*) FROM t").await.ok()?;
    let _ = conn.disconnect().await;
    v
}

/// A crashed server started again keeps the port the client was given.
#[tokio::test]
async fn crash_restart_keeps_the_port() {
    let app = TestApp::spawn_with(|s| s.reap_interval = Duration::from_millis(500)).await;
    app.write_dump("shop.sql", simple_dump("t", 1).as_bytes());
    app.update_ok(&["shop"]).await;
    let (port, _, _) = creds(&app.create("shop", "x").await);
    let container = app.containers().await[0].name.clone();
    let raw = app.engine.inspect_raw(&container).await.unwrap().unwrap();
    let pid = raw["State"]["Pid"].as_i64();
    run("kill", &["-9", &pid.unwrap().to_string()]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // None for a moment: dolly re-creates the container.
        let raw = app.engine.inspect_raw(&container).await.unwrap();
        if let Some(raw) = raw {
            if raw["State"]["Pid"].as_i64() != pid && raw["State"]["Running"] == true {
                break;
            }
        }
        assert!(Instant::now() < deadline, "not restarted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let now = app.get_json("/api/v1/templates/shop/instances/x").await;
    assert_eq!(now["port"].as_u64(), Some(u64::from(port)), "{now}");
}
