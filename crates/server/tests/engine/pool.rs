//! The warm pool against the real engine: creates served from ready
//! members (the member's own container, renamed, no restart), refill after
//! a hand-out, members of an older version retired after an update, the
//! pool off by default, the per-template override, reset keeping port and
//! password, and the real dollyd killed (`DOLLY_CRASH_AT`) in the middle
//! of a hand-out.

use crate::common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{creds, query, scalar, simple_dump, TestApp};
use serde_json::{json, Value};

const SHOP: &str = "/api/v1/templates/shop";

/// A running dollyd with a `shop` template of `rows` rows and
/// `pool_size` set in its settings.
async fn pooled(pool_size: usize, rows: usize) -> TestApp {
    let app = TestApp::spawn_with(|s| s.pool_size = pool_size).await;
    app.write_dump("shop.sql", simple_dump("t", rows).as_bytes());
    app.update_ok(&[]).await;
    app
}

/// `pool: {size, ready}` of `shop`.
async fn pool_of(app: &TestApp) -> (u64, u64) {
    let t = app.get_json(SHOP).await;
    (
        t["pool"]["size"].as_u64().expect("pool.size"),
        t["pool"]["ready"].as_u64().expect("pool.ready"),
    )
}

/// Waits (bounded) until `shop`'s pool has `ready` members.
async fn wait_ready(app: &TestApp, ready: u64, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let (_, now) = pool_of(app).await;
        if now == ready {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the pool has {now} ready members, not {ready}, after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// This app's pool members' containers: name -> id.
async fn pool_containers(app: &TestApp) -> BTreeMap<String, String> {
    app.containers()
        .await
        .into_iter()
        .filter(|c| c.name.contains("pool."))
        .map(|c| (c.name, c.id))
        .collect()
}

/// The id of the container named `...shop.{name}`, if there is one.
async fn container_of(app: &TestApp, name: &str) -> Option<String> {
    let suffix = format!("shop.{name}");
    app.containers()
        .await
        .into_iter()
        .find(|c| c.name.ends_with(&suffix) && !c.name.contains("pool."))
        .map(|c| c.id)
}

/// What `docker inspect` prints for a container.
fn docker_inspect(id: &str) -> String {
    let out = Command::new("docker")
        .args(["inspect", id])
        .output()
        .expect("docker inspect runs");
    assert!(out.status.success(), "docker inspect {id}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn the_pool_is_off_by_default() {
    let app = pooled(0, 3).await;
    // Two refill ticks (one a second) with nothing to do.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(pool_of(&app).await, (0, 0));
    assert!(pool_containers(&app).await.is_empty());
    assert!(
        !app.data_dir().join("pool/shop").is_dir()
            || std::fs::read_dir(app.data_dir().join("pool/shop"))
                .unwrap()
                .next()
                .is_none()
    );
    // A create goes the cold way and works.
    let body = app.create("shop", "cold").await;
    let (port, pw, db) = creds(&body);
    assert_eq!(scalar(port, &pw, &db, "SELECT COUNT(*) FROM t").await, "3");
    assert!(pool_containers(&app).await.is_empty());
}

#[tokio::test]
async fn a_create_is_served_from_the_pool_by_the_members_own_container() {
    let app = pooled(2, 3).await;
    wait_ready(&app, 2, Duration::from_secs(90)).await;
    let members = pool_containers(&app).await;
    assert_eq!(members.len(), 2, "{members:?}");
    let member_ids: Vec<&String> = members.values().collect();

    let t0 = Instant::now();
    let a = app.create("shop", "a").await;
    let a_ms = t0.elapsed().as_millis();
    let a_id = container_of(&app, "a").await.expect("a's container");
    assert!(
        member_ids.contains(&&a_id),
        "a's container {a_id} is one of the members {members:?}"
    );
    let t0 = Instant::now();
    let b = app.create("shop", "b").await;
    let b_ms = t0.elapsed().as_millis();
    let b_id = container_of(&app, "b").await.expect("b's container");
    assert!(member_ids.contains(&&b_id), "b's container was a member");
    assert_ne!(a_id, b_id);
    eprintln!("hand-outs answered in {a_ms} ms and {b_ms} ms");
    // The answer comes without a server start (a start is ~300 ms and more).
    assert!(a_ms < 2000 && b_ms < 2000, "{a_ms} ms, {b_ms} ms");

    let (pa, pwa, db) = creds(&a);
    let (pb, pwb, _) = creds(&b);
    assert_ne!(pwa, pwb, "own passwords");
    assert_ne!(pa, pb, "own ports");
    assert_eq!(pwa.len(), 48);
    assert_eq!(scalar(pa, &pwa, &db, "SELECT COUNT(*) FROM t").await, "3");
    assert_eq!(scalar(pb, &pwb, &db, "SELECT COUNT(*) FROM t").await, "3");
    // One's password does not open the other.
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(pb)
        .user(Some("root"))
        .pass(Some(pwa.clone()));
    assert!(mysql_async::Conn::new(opts).await.is_err());

    // The engine never saw a password: not in env, labels nor args.
    for (id, pw) in [(&a_id, &pwa), (&b_id, &pwb)] {
        let inspection = docker_inspect(id);
        assert!(
            !inspection.contains(pw.as_str()),
            "password in docker inspect"
        );
    }
    let via_api = app.get_json("/db/shop/a?all=1").await.to_string();
    assert!(
        !via_api.contains(&pwa),
        "password in the engine's inspection"
    );
    eprintln!(
        "a handed-out container's labels: {}",
        app.get_json("/db/shop/a?all=1").await["container"]["Config"]["Labels"]
    );
    // The init file that carried it was emptied once the member was up.
    let init = std::fs::read_to_string(
        app.data_dir()
            .join("instances/shop/a/data")
            .join(dolly_core::dbserver::INIT_FILE),
    )
    .unwrap_or_default();
    assert!(!init.contains(&pwa));

    // They are instances like any other: listed, and the port stays.
    let got = app.get_json(&format!("{SHOP}/instances/a")).await;
    assert_eq!(got["state"], "running");
    assert_eq!(got["port"].as_u64(), Some(u64::from(pa)));
    assert_eq!(got["password"].as_str(), Some(pwa.as_str()));
    let list = app.get_json("/api/v1/instances?template=shop").await;
    let names: Vec<&str> = list["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "members are not listed: {names:?}");
    assert_eq!(
        app.delete(&format!("{SHOP}/instances/a")).await.status(),
        204
    );
    assert!(container_of(&app, "a").await.is_none());
}

#[tokio::test]
async fn the_pool_refills_after_a_hand_out() {
    let app = pooled(1, 3).await;
    wait_ready(&app, 1, Duration::from_secs(90)).await;
    let before = pool_containers(&app).await;
    app.create("shop", "taken").await;
    let taken = container_of(&app, "taken").await.expect("container");
    assert_eq!(before.values().next(), Some(&taken));
    // Back to size within a bounded wait, with a new member.
    wait_ready(&app, 1, Duration::from_secs(60)).await;
    let after = pool_containers(&app).await;
    assert_eq!(after.len(), 1, "{after:?}");
    assert!(!after.values().any(|id| *id == taken));
    // The refilled member serves the next create.
    app.create("shop", "next").await;
    let next = container_of(&app, "next").await.expect("container");
    assert_eq!(after.values().next(), Some(&next));
}

#[tokio::test]
async fn members_of_an_older_version_are_retired_after_an_update() {
    let app = pooled(1, 3).await;
    wait_ready(&app, 1, Duration::from_secs(90)).await;
    let old = pool_containers(&app).await;
    let old_version = app.get_json(SHOP).await["current_version"].clone();

    app.write_dump("shop.sql", simple_dump("t", 7).as_bytes());
    app.update_ok(&[]).await;
    let new_version = app.get_json(SHOP).await["current_version"].clone();
    assert_ne!(old_version, new_version);

    // Right after the update, before any refill pass: the new data.
    let body = app.create("shop", "fresh").await;
    let (port, pw, db) = creds(&body);
    assert_eq!(scalar(port, &pw, &db, "SELECT COUNT(*) FROM t").await, "7");
    let fresh = container_of(&app, "fresh").await.expect("container");
    assert!(
        !old.values().any(|id| *id == fresh),
        "the old version's member was handed out"
    );
    // The old member goes; a member of the new version takes its place
    // and is handed out with the new data.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = pool_containers(&app).await;
        let (_, ready) = pool_of(&app).await;
        if ready == 1 && now.len() == 1 && !now.keys().any(|k| old.contains_key(k)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "old member not replaced: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let member = pool_containers(&app).await;
    let body = app.create("shop", "warm").await;
    assert_eq!(
        container_of(&app, "warm").await.as_ref(),
        member.values().next(),
        "served from the new member"
    );
    let (port, pw, db) = creds(&body);
    assert_eq!(scalar(port, &pw, &db, "SELECT COUNT(*) FROM t").await, "7");
    let got = app.get_json(&format!("{SHOP}/instances/warm")).await;
    assert_eq!(got["template_version"], new_version);
}

#[tokio::test]
async fn the_per_template_override_is_kept_and_applied() {
    let mut app = pooled(0, 3).await;
    assert_eq!(pool_of(&app).await, (0, 0));
    let put = |size: Value| {
        app.client
            .put(app.url(&format!("{SHOP}/pool")))
            .json(&size)
            .send()
    };
    let r = put(json!({"size": 2})).await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["size"], 2);
    assert_eq!(pool_of(&app).await.0, 2);
    wait_ready(&app, 2, Duration::from_secs(90)).await;
    assert_eq!(pool_containers(&app).await.len(), 2);

    // Refused: too large, wrong shape, unknown template.
    for bad in [json!({"size": 100000}), json!({"size": "x"}), json!({})] {
        let r = put(bad.clone()).await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
    let r = app
        .client
        .put(app.url("/api/v1/templates/nope/pool"))
        .json(&json!({"size": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Kept in the data folder: a restart refills to the override.
    app.start().await;
    assert_eq!(pool_of(&app).await.0, 2);
    wait_ready(&app, 2, Duration::from_secs(90)).await;
    assert_eq!(pool_containers(&app).await.len(), 2);

    // Shrinking to 0 retires every member.
    let r = app
        .client
        .put(app.url(&format!("{SHOP}/pool")))
        .json(&json!({"size": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pool_containers(&app).await.is_empty() {
        assert!(Instant::now() < deadline, "members still running");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(pool_of(&app).await, (0, 0));
}

#[tokio::test]
async fn reset_of_a_handed_out_instance_keeps_port_and_password() {
    let app = pooled(1, 3).await;
    wait_ready(&app, 1, Duration::from_secs(90)).await;
    let r = app
        .client
        .post(app.url(&format!("{SHOP}/instances/r")))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let i: Value = r.json().await.unwrap();
    let port = i["port"].as_u64().unwrap() as u16;
    let pw = i["password"].as_str().unwrap().to_owned();
    let db = i["database"].as_str().unwrap().to_owned();
    query(port, &pw, &db, "INSERT INTO t VALUES (100, 'mine')").await;
    assert_eq!(scalar(port, &pw, &db, "SELECT COUNT(*) FROM t").await, "4");

    for round in 0..2 {
        let t0 = Instant::now();
        let r = app
            .client
            .post(app.url(&format!("{SHOP}/instances/r/reset")))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        let took = t0.elapsed().as_millis();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
        let after: Value = r.json().await.unwrap();
        eprintln!("reset {round} answered in {took} ms");
        assert_eq!(after["port"].as_u64(), Some(u64::from(port)), "same port");
        assert_eq!(
            after["password"].as_str(),
            Some(pw.as_str()),
            "same password"
        );
        assert_eq!(scalar(port, &pw, &db, "SELECT COUNT(*) FROM t").await, "3");
        query(port, &pw, &db, "INSERT INTO t VALUES (100, 'again')").await;
    }
    let got = app.get_json(&format!("{SHOP}/instances/r")).await;
    assert_eq!(got["port"].as_u64(), Some(u64::from(port)));
    assert_eq!(got["state"], "running");
}

/// The real `dollyd` on an app's data folder, in its own process.
struct Dollyd {
    child: Child,
    url: String,
    client: reqwest::Client,
    log: PathBuf,
}

impl Dollyd {
    async fn start(app: &TestApp, logs: &tempfile::TempDir, crash_at: Option<&str>) -> Self {
        let log = logs
            .path()
            .join(format!("dollyd-{}.log", crash_at.unwrap_or("normal")));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dollyd"));
        cmd.arg("serve")
            .envs(app.env())
            .env("DOLLY_LISTEN", format!("127.0.0.1:{port}"))
            .env("DOLLY_MIN_FREE_DISK", "0")
            .env("DOLLY_POOL_SIZE", "1")
            .env_remove("DOLLY_CRASH_AT")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"));
        if let Some(point) = crash_at {
            cmd.env("DOLLY_CRASH_AT", point);
        }
        let mut child = cmd.spawn().expect("spawn dollyd");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                panic!(
                    "dollyd exited at start ({status}):\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            if let Ok(r) = app.client.get(format!("{url}/healthz")).send().await {
                if r.status() == 200 {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "dollyd did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            child,
            url,
            client: app.client.clone(),
            log,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.client.get(self.url(path)).send().await.expect("GET");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn create(&self, name: &str) -> reqwest::Result<reqwest::Response> {
        self.client
            .post(self.url(&format!("{SHOP}/instances/{name}")))
            .json(&json!({}))
            .send()
            .await
    }

    async fn wait_ready(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let (_, t) = self.get(SHOP).await;
            if t["pool"]["ready"] == 1 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "pool not ready: {t}\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits (bounded) for the process to die at its fault point.
    fn wait_crash(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            assert!(Instant::now() < deadline, "dollyd did not die");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(!status.success(), "dollyd exited cleanly: {status}");
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        assert!(
            log.contains("DOLLY_CRASH_AT="),
            "died without reaching its fault point:\n{log}"
        );
    }
}

impl Drop for Dollyd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "===== {} =====\n{}",
                self.log.display(),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

/// Kills the real dollyd at `point` while a create takes a pool member,
/// starts it again, and checks the name is a complete instance or absent,
/// never half, and that only the refilled member is left in the pool.
async fn hand_out_crash(point: &str) -> &'static str {
    let app = TestApp::new_stopped(|_| {}).await;
    app.write_dump("shop.sql", simple_dump("t", 3).as_bytes());
    app.update_ok(&[]).await;
    let logs = tempfile::tempdir().expect("log dir");

    let mut d = Dollyd::start(&app, &logs, Some(point)).await;
    d.wait_ready(Duration::from_secs(90)).await;
    let member = pool_containers(&app).await;
    assert_eq!(member.len(), 1);
    if let Ok(r) = d.create("i1").await {
        let status = r.status();
        panic!(
            "the create answered {status} ({}) instead of dying at {point}",
            r.text().await.unwrap_or_default()
        );
    }
    d.wait_crash();
    drop(d);

    let d = Dollyd::start(&app, &logs, None).await;
    let (status, body) = d.get(&format!("{SHOP}/instances/i1")).await;
    let outcome = match status {
        200 => {
            assert_eq!(body["state"], "running", "{body}");
            let port = body["port"].as_u64().expect("port") as u16;
            let pw = body["password"].as_str().expect("password");
            let db = body["database"].as_str().expect("database");
            assert_eq!(scalar(port, pw, db, "SELECT COUNT(*) FROM t").await, "3");
            "complete"
        }
        404 => {
            assert!(
                container_of(&app, "i1").await.is_none(),
                "a container is left"
            );
            assert!(!app.data_dir().join("instances/shop/i1").exists());
            let r = d.create("i1").await.expect("create again");
            assert_eq!(r.status(), 201);
            let body: Value = r.json().await.unwrap();
            let port = body["port"].as_u64().expect("port") as u16;
            let pw = body["password"].as_str().expect("password");
            let db = body["database"].as_str().expect("database");
            assert_eq!(scalar(port, pw, db, "SELECT COUNT(*) FROM t").await, "3");
            "absent"
        }
        other => panic!("i1 is neither complete nor absent: {other} {body}"),
    };
    eprintln!("after a kill at {point}: i1 was {outcome}");
    // One container for i1; in the pool, only what the new process started.
    let i1: Vec<_> = app
        .containers()
        .await
        .into_iter()
        .filter(|c| c.name.ends_with("shop.i1") && !c.name.contains("pool."))
        .collect();
    assert_eq!(i1.len(), 1, "{i1:?}");
    d.wait_ready(Duration::from_secs(90)).await;
    // The pool refills to one member. A fill the killed dollyd had asked
    // the engine for may complete after the restart's reconcile; the
    // reaper's pass (every 5 s) sweeps it, so allow one pass.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let pool = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let pool = pool_containers(&app).await;
        if pool.len() == 1 || std::time::Instant::now() > deadline {
            break pool;
        }
    };
    if pool.len() != 1 {
        let states: Vec<_> = app
            .containers()
            .await
            .into_iter()
            .map(|c| format!("{} {:?}", c.name, c.state))
            .collect();
        panic!("stray pool containers after a reaper pass: {states:?}");
    }
    assert!(
        !pool.keys().any(|k| member.contains_key(k)),
        "the old member survived the restart: {pool:?}"
    );
    let (_, t) = d.get(SHOP).await;
    assert_eq!(t["pool"]["ready"], 1);
    let members: Vec<_> = std::fs::read_dir(app.data_dir().join("pool/shop"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert_eq!(members.len(), 1, "pool folders: {members:?}");
    outcome
}

#[tokio::test]
async fn a_hand_out_killed_after_the_container_rename_leaves_no_half_instance() {
    hand_out_crash("pool.renamed").await;
}

#[tokio::test]
async fn a_hand_out_killed_after_the_folder_move_leaves_no_half_instance() {
    hand_out_crash("pool.moved").await;
}
