//! Crash safety proven by random kills (issue 25). For each operation that
//! changes state, the real `dollyd` runs it and is killed with SIGKILL at a
//! moment drawn at random over the operation's whole duration (measured
//! first; the moment is uniform over `[0, 1.1 × duration]` from the
//! request's start), or the instance's container (the import container for
//! `update`) is killed with `docker kill` instead. Then dollyd starts again
//! and every invariant of RELIABILITY.md ("Invariants after a crash") is
//! checked:
//!
//! 1. every instance is absent or usable with its own credentials (an
//!    authenticated query as its user and password on its port) and holds
//!    exactly the data of before or of after the operation (a marker row);
//!    none is `broken`, `dead` or `missing` once `serve` has started;
//! 2. its protection, lease, port and password are kept (or are the
//!    operation's new ones);
//! 3. every snapshot listed is complete and restorable (a branch from it
//!    holds its marker), and no snapshot folder is unlisted;
//! 4. `tmp/` holds nothing, nothing is quarantined, no instance folder is
//!    unlisted, no init file still holds a password, and the engine has no
//!    container of ours that belongs to nothing;
//! 5. a template version is published whole (listed, its folder and its
//!    metadata present, instances made from it hold its data) or not at
//!    all.
//!
//! Each trial prints its seed; `DOLLY_CRASH_SEED=<seed>` with
//! `DOLLY_CRASH_OPS=<op>` replays it. `DOLLY_CRASH_TRIALS` trials per
//! operation (default 1: CI); `scripts/crash-soak.sh N` runs N.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use common::dollyd::{Dollyd, Harness};
use dolly_core::context::LABEL_KIND;
use futures_util::FutureExt;
use serde_json::{json, Value};

const INSTANCES: &str = "/api/v1/templates/shop/instances";
/// The marker of `i` when snapshot `s0` is taken, and after.
const M0: &str = "m0";
const M1: &str = "m1";

/// The dump of template `shop`: its marker row says which import it is.
fn dump(marker: &str) -> String {
    format!(
        "-- MariaDB dump 10.19\n\
         CREATE TABLE `marker` (id INT PRIMARY KEY, v VARCHAR(64)) ENGINE=InnoDB;\n\
         INSERT INTO `marker` VALUES (1,'{marker}');\n\
         CREATE TABLE `filler` (id INT PRIMARY KEY, v VARCHAR(200)) ENGINE=InnoDB;\n\
         INSERT INTO `filler` VALUES {};\n\
         -- Dump completed on 2026-12-07\n",
        (1..=200)
            .map(|i| format!("({i},'{}')", "x".repeat(150)))
            .collect::<Vec<_>>()
            .join(",")
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Create,
    CreatePool,
    Delete,
    Stop,
    Start,
    Reset,
    Restore,
    Snapshot,
    DeleteSnapshot,
    Branch,
    Promote,
    ArchiveImport,
    PushReceive,
    Extend,
    Protect,
    Update,
    /// A reset of an instance keeping a standby, once it is ready: the
    /// handover (issue 27).
    StandbyReset,
}

const ALL: [Op; 17] = [
    Op::Create,
    Op::CreatePool,
    Op::Delete,
    Op::Stop,
    Op::Start,
    Op::Reset,
    Op::Restore,
    Op::Snapshot,
    Op::DeleteSnapshot,
    Op::Branch,
    Op::Promote,
    Op::ArchiveImport,
    Op::PushReceive,
    Op::Extend,
    Op::Protect,
    Op::Update,
    Op::StandbyReset,
];

/// Operations during which an instance's container runs (or the import
/// container, for `update`): those killed with `docker kill`.
const WITH_CONTAINER: [Op; 10] = [
    Op::Create,
    Op::Start,
    Op::Reset,
    Op::Restore,
    Op::Snapshot,
    Op::Branch,
    Op::ArchiveImport,
    Op::Stop,
    Op::Update,
    Op::StandbyReset,
];

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::CreatePool => "create_pool",
            Op::Delete => "delete",
            Op::Stop => "stop",
            Op::Start => "start",
            Op::Reset => "reset",
            Op::Restore => "restore",
            Op::Snapshot => "snapshot",
            Op::DeleteSnapshot => "delete_snapshot",
            Op::Branch => "branch",
            Op::Promote => "promote",
            Op::ArchiveImport => "archive_import",
            Op::PushReceive => "push_receive",
            Op::Extend => "extend",
            Op::Protect => "protect",
            Op::Update => "update",
            Op::StandbyReset => "standby_reset",
        }
    }

    /// Whether the set-up takes snapshot `s0` of `i` (at marker `m0`).
    fn needs_s0(self) -> bool {
        matches!(
            self,
            Op::Restore | Op::DeleteSnapshot | Op::Branch | Op::Promote | Op::ArchiveImport
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kill {
    /// SIGKILL to dollyd (`serve`, or `dollyd update`).
    Dollyd,
    /// `docker kill` of the instance's container (the import container
    /// for `update`); dollyd is restarted after the operation answered.
    Container,
}

impl Kill {
    fn name(self) -> &'static str {
        match self {
            Kill::Dollyd => "dollyd",
            Kill::Container => "container",
        }
    }
}

struct Config {
    trials: usize,
    ops: Vec<Op>,
    seed: Option<u64>,
    /// Soak: a failing trial is reported and the next one runs on a fresh
    /// data folder; the test fails at the end.
    keep_going: bool,
}

fn config(default_ops: &[Op]) -> Config {
    let ops = match std::env::var("DOLLY_CRASH_OPS") {
        Ok(list) if !list.trim().is_empty() => {
            let wanted: Vec<&str> = list.split(',').map(str::trim).collect();
            for w in &wanted {
                assert!(
                    ALL.iter().any(|o| o.name() == *w),
                    "DOLLY_CRASH_OPS: unknown operation {w:?}; known: {:?}",
                    ALL.map(Op::name)
                );
            }
            default_ops
                .iter()
                .copied()
                .filter(|o| wanted.contains(&o.name()))
                .collect()
        }
        _ => default_ops.to_vec(),
    };
    let seed = std::env::var("DOLLY_CRASH_SEED")
        .ok()
        .map(|s| s.parse().expect("DOLLY_CRASH_SEED: a number"));
    let trials = match seed {
        Some(_) => 1,
        None => std::env::var("DOLLY_CRASH_TRIALS")
            .ok()
            .map(|s| s.parse().expect("DOLLY_CRASH_TRIALS: a number"))
            .unwrap_or(1),
    };
    Config {
        trials,
        ops,
        seed,
        keep_going: std::env::var("DOLLY_CRASH_KEEP_GOING").is_ok_and(|v| v == "1"),
    }
}

/// The kill moment's fraction of `1.1 × duration` drawn from `seed`
/// (splitmix64: a replay draws the same).
fn fraction(seed: u64) -> f64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

// ---------------------------------------------------------------- SQL

#[derive(Debug, Clone, PartialEq)]
struct Creds {
    port: u16,
    password: String,
    database: String,
}

fn creds(body: &Value) -> Result<Creds, String> {
    Ok(Creds {
        port: body["port"].as_u64().ok_or(format!("no port: {body}"))? as u16,
        password: body["password"]
            .as_str()
            .ok_or(format!("no password: {body}"))?
            .to_owned(),
        database: body["database"]
            .as_str()
            .ok_or(format!("no database: {body}"))?
            .to_owned(),
    })
}

/// Runs `sql` as the instance's user with its password; the first column
/// of the first row.
async fn sql(c: &Creds, statement: &str) -> Result<Option<String>, String> {
    use mysql_async::prelude::Queryable;
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(c.port)
        .user(Some("root"))
        .pass(Some(c.password.clone()))
        .db_name(Some(c.database.clone()))
        .prefer_socket(false);
    let attempt = async {
        let mut conn = mysql_async::Conn::new(opts).await?;
        let v: Option<Option<String>> = conn.query_first(statement).await?;
        conn.disconnect().await?;
        Ok::<_, mysql_async::Error>(v.flatten())
    };
    match tokio::time::timeout(Duration::from_secs(15), attempt).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{statement} on port {}: {e}", c.port)),
        Err(_) => Err(format!("{statement} on port {}: timed out", c.port)),
    }
}

async fn marker(c: &Creds) -> Result<String, String> {
    sql(c, "SELECT v FROM marker WHERE id = 1")
        .await?
        .ok_or_else(|| "no marker row".to_owned())
}

async fn set_marker(c: &Creds, v: &str) {
    sql(c, &format!("UPDATE marker SET v = '{v}' WHERE id = 1"))
        .await
        .expect("set the marker");
}

// ---------------------------------------------------------------- expectations

/// What a user sees of an instance, before or after an operation.
#[derive(Debug, Clone, PartialEq)]
struct Expect {
    marker: String,
    running: bool,
    protected: bool,
    /// Exactly this lease, or (extend) any later one.
    expires: Expires,
    /// Snapshot name → the marker it holds.
    snapshots: BTreeMap<String, String>,
    /// Port and password (of an instance that existed before).
    creds: Option<Creds>,
    /// Who owns it (as the API says; `null` without users).
    owner: Value,
}

#[derive(Debug, Clone, PartialEq)]
enum Expires {
    Is(Value),
    LaterThan(Value),
    Any,
}

/// The two acceptable states of an instance (`None`: absent).
#[derive(Debug, Clone)]
struct Alternatives {
    before: Option<Expect>,
    after: Option<Expect>,
}

/// What an operation's trial does and may leave.
struct Plan {
    action: Action,
    instances: BTreeMap<String, Alternatives>,
    /// The instance whose container a `docker kill` hits.
    victim: Option<String>,
    /// A template the operation may publish, and the marker it would hold.
    publishes: Option<(String, String)>,
}

enum Action {
    Http(Box<reqwest::RequestBuilder>),
    Update,
}

fn http(r: reqwest::RequestBuilder) -> Action {
    Action::Http(Box::new(r))
}

// ---------------------------------------------------------------- the world

/// A data folder with template `shop`, reused by the trials of a test.
struct World {
    h: Harness,
    kill: Kill,
    /// What the current version of `shop` holds.
    template_marker: String,
    /// An export of `i@s0` (marker `m0`), for archive imports.
    archive: Option<Vec<u8>>,
    /// A second dolly holding `i@s0`, pushing to the one under test, and
    /// the dolly it is allowed to push to (`push_remotes`).
    source: Option<(Harness, Dollyd, String)>,
    trials: usize,
}

impl World {
    async fn new(kill: Kill) -> Self {
        Self {
            h: Harness::with_dump(dump("tpl-0").as_bytes()).await,
            kill,
            template_marker: "tpl-0".to_owned(),
            archive: None,
            source: None,
            trials: 0,
        }
    }

    fn env(&self, op: Op) -> Vec<(&'static str, String)> {
        let mut env = vec![("DOLLY_REAP_INTERVAL", "1h".to_owned())];
        if op == Op::CreatePool {
            env.push(("DOLLY_POOL_SIZE", "1".to_owned()));
        }
        env
    }

    async fn start(&mut self, op: Op) -> Dollyd {
        let env = self.env(op);
        let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, v.clone())).collect();
        self.h.start(None, &env).await
    }
}

async fn create(d: &Dollyd, name: &str, body: Value) -> Creds {
    let b = d
        .post_expect(&format!("{INSTANCES}/{name}"), body, 201)
        .await;
    creds(&b).expect("credentials")
}

/// What `i` looks like now, as an expectation.
async fn expect_of(d: &Dollyd, name: &str, marker: &str) -> Expect {
    let b = d.get_json(&format!("{INSTANCES}/{name}")).await;
    let snaps = d.get_json(&format!("{INSTANCES}/{name}/snapshots")).await;
    let snapshots = snaps["snapshots"]
        .as_array()
        .expect("snapshots")
        .iter()
        .map(|s| {
            let n = s["name"].as_str().expect("name").to_owned();
            let m = if n == "s0" { M0 } else { M1 };
            (n, m.to_owned())
        })
        .collect();
    Expect {
        marker: marker.to_owned(),
        running: b["state"] == "running",
        protected: b["protected"].as_bool().unwrap_or(false),
        expires: Expires::Is(b["expires_at"].clone()),
        snapshots,
        creds: Some(creds(&b).expect("credentials")),
        owner: b["owner"].clone(),
    }
}

/// A fresh instance of the operation's making (credentials unknown).
fn fresh(marker: &str, expires: Expires) -> Expect {
    Expect {
        marker: marker.to_owned(),
        running: true,
        protected: false,
        expires,
        snapshots: BTreeMap::new(),
        creds: None,
        owner: Value::Null,
    }
}

/// Builds `i` (with `s0` at `m0` when the operation needs it, then `m1`)
/// and what the operation may leave.
async fn setup(w: &mut World, op: Op, d: &Dollyd) -> Plan {
    w.trials += 1;
    let i = if op == Op::StandbyReset {
        create(d, "i", json!({"ttl": 3600, "standby": true})).await
    } else {
        create(d, "i", json!({"ttl": 3600})).await
    };
    if op.needs_s0() {
        set_marker(&i, M0).await;
        d.post_expect(&format!("{INSTANCES}/i/snapshots/s0"), json!({}), 201)
            .await;
    }
    set_marker(&i, M1).await;
    if op == Op::Start {
        d.post_expect(&format!("{INSTANCES}/i/stop"), json!({}), 200)
            .await;
    }
    if op == Op::CreatePool {
        wait_pool(d).await;
    }
    if op == Op::StandbyReset {
        wait_standby(d).await;
    }
    let before = expect_of(d, "i", M1).await;
    let mut after = before.clone();
    let mut instances = BTreeMap::new();
    let url = |p: &str| d.url(&format!("{INSTANCES}/{p}"));
    let c = &d.client;
    let mut victim = Some("i".to_owned());
    let mut publishes = None;
    let mut keep_i = true;
    let action = match op {
        Op::Create | Op::CreatePool => {
            victim = Some("n".to_owned());
            instances.insert(
                "n".to_owned(),
                Alternatives {
                    before: None,
                    after: Some(fresh(&w.template_marker, Expires::Any)),
                },
            );
            http(c.post(url("n")).json(&json!({"ttl": 3600})))
        }
        Op::Delete => {
            keep_i = false;
            instances.insert(
                "i".to_owned(),
                Alternatives {
                    before: Some(before.clone()),
                    after: None,
                },
            );
            http(c.delete(url("i")))
        }
        Op::Stop => {
            after.running = false;
            http(c.post(url("i/stop")).json(&json!({})))
        }
        Op::Start => {
            after.running = true;
            http(c.post(url("i/start")).json(&json!({})))
        }
        Op::Reset | Op::StandbyReset => {
            after.marker = w.template_marker.clone();
            http(c.post(url("i/reset")).json(&json!({})))
        }
        Op::Restore => {
            after.marker = M0.to_owned();
            http(c.post(url("i/snapshots/s0/restore")).json(&json!({})))
        }
        Op::Snapshot => {
            after.snapshots.insert("s1".to_owned(), M1.to_owned());
            http(c.post(url("i/snapshots/s1")).json(&json!({})))
        }
        Op::DeleteSnapshot => {
            after.snapshots.remove("s0");
            http(c.delete(url("i/snapshots/s0")))
        }
        Op::Branch => {
            victim = Some("b".to_owned());
            instances.insert(
                "b".to_owned(),
                Alternatives {
                    before: None,
                    after: Some(fresh(M0, Expires::Any)),
                },
            );
            http(c.post(url("b")).json(&json!({"from": "i@s0", "ttl": 3600})))
        }
        Op::Promote => {
            let to = format!("p{}", w.trials);
            publishes = Some((to.clone(), M0.to_owned()));
            http(
                c.post(url("i/snapshots/s0/promote"))
                    .json(&json!({"template": to})),
            )
        }
        Op::ArchiveImport => {
            if w.archive.is_none() {
                let r = d.get(&format!("{INSTANCES}/i/snapshots/s0/export")).await;
                assert_eq!(r.status(), 200, "export");
                w.archive = Some(r.bytes().await.expect("archive").to_vec());
            }
            victim = Some("imp".to_owned());
            instances.insert(
                "imp".to_owned(),
                Alternatives {
                    before: None,
                    after: Some(fresh(M0, Expires::Any)),
                },
            );
            http(
                c.post(url("imp/import"))
                    .header("content-type", "application/octet-stream")
                    .body(w.archive.clone().unwrap_or_default()),
            )
        }
        Op::PushReceive => {
            let source = push_source(w, &d.url).await;
            victim = Some("pushed".to_owned());
            instances.insert(
                "pushed".to_owned(),
                Alternatives {
                    before: None,
                    after: Some(fresh(M0, Expires::Any)),
                },
            );
            http(
                source
                    .client
                    .post(source.url(&format!("{INSTANCES}/i/snapshots/s0/push")))
                    .json(&json!({"remote": d.url, "token": "unused", "name": "pushed"})),
            )
        }
        Op::Extend => {
            let Expires::Is(e) = &before.expires else {
                unreachable!()
            };
            after.expires = Expires::LaterThan(e.clone());
            http(c.post(url("i/extend")).json(&json!({"ttl": 7200})))
        }
        Op::Protect => {
            after.protected = true;
            http(c.post(url("i/protect")).json(&json!({})))
        }
        Op::Update => {
            let next = format!("tpl-{}", w.trials);
            w.h.app.write_dump("shop.sql", dump(&next).as_bytes());
            publishes = Some(("shop".to_owned(), next));
            Action::Update
        }
    };
    if keep_i {
        instances.insert(
            "i".to_owned(),
            Alternatives {
                before: Some(before),
                after: Some(after),
            },
        );
    }
    Plan {
        action,
        instances,
        victim,
        publishes,
    }
}

/// Until the standby of `i` is ready.
async fn wait_standby(d: &Dollyd) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let i = d.get_json(&format!("{INSTANCES}/i")).await;
        if i["standby_status"]["ready"] == true {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the standby never became ready: {i}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_pool(d: &Dollyd) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let t = d.get_json("/api/v1/templates/shop").await;
        if t["pool"]["ready"] == 1 {
            return;
        }
        assert!(Instant::now() < deadline, "the pool never filled: {t}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The dolly a push comes from (made once): `i@s0` holds `m0`. It may
/// push only to `remote` (`push_remotes`): when the dolly under test moved
/// to another port, the source is started again allowing that one.
async fn push_source<'a>(w: &'a mut World, remote: &str) -> &'a Dollyd {
    let allow = [("DOLLY_PUSH_REMOTES", remote.to_owned())];
    match w.source.take() {
        None => {
            let mut h = Harness::with_dump(dump("tpl-0").as_bytes()).await;
            let d = h.start(None, &allow).await;
            let i = create(&d, "i", json!({"ttl": 0})).await;
            set_marker(&i, M0).await;
            d.post_expect(&format!("{INSTANCES}/i/snapshots/s0"), json!({}), 201)
                .await;
            w.source = Some((h, d, remote.to_owned()));
        }
        Some((mut h, d, allowed)) if allowed != remote => {
            d.kill9();
            let d = h.start(None, &allow).await;
            w.source = Some((h, d, remote.to_owned()));
        }
        kept => w.source = kept,
    }
    &w.source.as_ref().expect("source").1
}

// ---------------------------------------------------------------- a trial

/// Runs the operation of `plan` and kills at `delay` (`None`: never, to
/// measure). Returns whether it answered with success before the kill, and
/// how long it took when it did.
async fn fire(
    w: &mut World,
    d: Dollyd,
    plan: &Plan,
    action: Action,
    delay: Option<Duration>,
) -> (bool, Option<Duration>) {
    let started = Instant::now();
    let container_of = |name: &str| format!("{}shop.{name}", w.h.app.settings.container_prefix);
    match action {
        Action::Http(request) => {
            let task = tokio::spawn(async move {
                let r = (*request).send().await.ok()?;
                let status = r.status().as_u16();
                let _ = r.bytes().await;
                Some((status, started.elapsed()))
            });
            let Some(delay) = delay else {
                let (status, took) = task.await.expect("task").expect("the operation answers");
                assert!(status < 300, "the operation answered {status}");
                d.kill9();
                return (true, Some(took));
            };
            tokio::time::sleep(delay).await;
            match w.kill {
                Kill::Dollyd => {
                    d.kill9();
                    let done = match tokio::time::timeout(Duration::from_secs(5), task).await {
                        Ok(Ok(Some((s, _)))) => s < 300,
                        _ => false,
                    };
                    (done, None)
                }
                Kill::Container => {
                    if let Some(v) = &plan.victim {
                        docker_kill(&container_of(v));
                    }
                    let done = match tokio::time::timeout(Duration::from_secs(180), task).await {
                        Ok(Ok(Some((s, _)))) => s < 300,
                        _ => false,
                    };
                    d.kill9();
                    (done, None)
                }
            }
        }
        Action::Update => {
            let log = w.h.log_file("update");
            let mut child =
                w.h.command(&["update"], &log)
                    .spawn()
                    .expect("spawn dollyd update");
            let Some(delay) = delay else {
                let status = child.wait().expect("update");
                assert!(status.success(), "dollyd update failed");
                d.kill9();
                return (true, Some(started.elapsed()));
            };
            tokio::time::sleep(delay).await;
            match w.kill {
                Kill::Dollyd => {
                    let _ = child.kill();
                }
                Kill::Container => {
                    for c in w.h.app.containers().await {
                        if c.labels.get(LABEL_KIND).map(String::as_str) == Some("import") {
                            docker_kill(&c.name);
                        }
                    }
                }
            }
            let deadline = Instant::now() + Duration::from_secs(180);
            let status = loop {
                if let Some(s) = child.try_wait().expect("try_wait") {
                    break s;
                }
                assert!(Instant::now() < deadline, "dollyd update did not end");
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            d.kill9();
            (status.success(), None)
        }
    }
}

/// The engine's state of a container, for a failure's message.
fn docker_state(name: &str) -> String {
    std::process::Command::new("docker")
        .args([
            "inspect",
            "-f",
            "{{.State.Status}} exit={{.State.ExitCode}} started={{.State.StartedAt}} finished={{.State.FinishedAt}}",
            name,
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn docker_kill(name: &str) {
    let out = std::process::Command::new("docker")
        .args(["kill", name])
        .output()
        .expect("the docker CLI is needed to kill containers");
    if !out.status.success() {
        eprintln!(
            "  (docker kill {name}: {})",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
}

/// One trial: set up, run, kill at `delay`, restart, check, clean up.
/// Returns which state the operation's instance was found in.
async fn trial(w: &mut World, op: Op, delay: Option<Duration>) -> Result<Outcome, String> {
    let d = w.start(op).await;
    let mut plan = setup(w, op, &d).await;
    let action = std::mem::replace(&mut plan.action, Action::Update);
    let (done, took) = fire(w, d, &plan, action, delay).await;
    let d = w.start(op).await;
    let result = check(w, &d, &plan, done).await;
    cleanup(&d).await;
    d.kill9();
    result.map(|mut o| {
        o.took = took;
        o
    })
}

#[derive(Debug, Default)]
struct Outcome {
    /// `before` or `after` per instance the operation touched.
    states: Vec<String>,
    took: Option<Duration>,
}

// ---------------------------------------------------------------- the invariants

/// What an instance is found to be after the restart.
async fn observe(d: &Dollyd, name: &str) -> Result<Option<(Expect, Value)>, String> {
    let r = d.get(&format!("{INSTANCES}/{name}")).await;
    if r.status() == 404 {
        return Ok(None);
    }
    let status = r.status();
    let b: Value = r.json().await.map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("GET {name}: {status} {b}"));
    }
    let state = b["state"].as_str().unwrap_or_default().to_owned();
    let running = match state.as_str() {
        "running" => true,
        "stopped" => false,
        other => {
            return Err(format!(
                "{name} is {other} once serve started ({})",
                b["problem"]
            ))
        }
    };
    let c = creds(&b)?;
    let marker = if running {
        marker(&c).await.map_err(|e| {
            format!("{name} is listed running but not usable with its credentials: {e}")
        })?
    } else {
        String::new()
    };
    let snaps = d.get_json(&format!("{INSTANCES}/{name}/snapshots")).await;
    let snapshots = snaps["snapshots"]
        .as_array()
        .ok_or("no snapshots")?
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or_default().to_owned(),
                String::new(),
            )
        })
        .collect();
    Ok(Some((
        Expect {
            marker,
            running,
            protected: b["protected"].as_bool().unwrap_or(false),
            expires: Expires::Is(b["expires_at"].clone()),
            snapshots,
            creds: Some(c),
            owner: b["owner"].clone(),
        },
        b,
    )))
}

/// Whether what was seen is `e` (markers of a stopped instance and of
/// snapshots are checked afterwards).
fn matches(seen: &Expect, e: &Expect) -> bool {
    let Expires::Is(got) = &seen.expires else {
        return false;
    };
    let expires_ok = match &e.expires {
        Expires::Is(v) => v == got,
        Expires::LaterThan(v) => {
            let t = |v: &Value| {
                v.as_str()
                    .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            };
            matches!((t(got), t(v)), (Some(a), Some(b)) if a > b)
        }
        Expires::Any => true,
    };
    let creds_ok = match &e.creds {
        Some(c) => seen.creds.as_ref() == Some(c),
        None => true,
    };
    expires_ok
        && creds_ok
        && seen.owner == e.owner
        && seen.running == e.running
        && seen.protected == e.protected
        && (!e.running || seen.marker == e.marker)
        && seen.snapshots.keys().eq(e.snapshots.keys())
}

fn dir_names(p: &Path) -> BTreeSet<String> {
    std::fs::read_dir(p)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

async fn check(w: &mut World, d: &Dollyd, plan: &Plan, done: bool) -> Result<Outcome, String> {
    let data = w.h.data().to_path_buf();
    let mut outcome = Outcome::default();
    // Listed instances: only those the plan knows.
    let list = d.get_json("/api/v1/templates/shop/instances").await;
    let listed: BTreeSet<String> = list["instances"]
        .as_array()
        .ok_or("no instances")?
        .iter()
        .map(|i| i["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    for n in &listed {
        if !plan.instances.contains_key(n) {
            return Err(format!("an unexpected instance is listed: {n}"));
        }
    }
    // Nothing stranded on disk.
    let left = w.h.tmp_leftovers();
    if !left.is_empty() {
        return Err(format!("tmp/ holds leftovers: {left:?}"));
    }
    let q = d.get_json("/api/v1/quarantine").await;
    if q["quarantined"] != json!([]) {
        return Err(format!("something was quarantined: {q}"));
    }
    let folders = dir_names(&data.join("instances/shop"));
    if folders != listed {
        return Err(format!(
            "instance folders {folders:?} are not the listed instances {listed:?}"
        ));
    }
    // Each instance: before or after, whole.
    let mut to_branch = Vec::new();
    for (name, alts) in &plan.instances {
        let seen = observe(d, name).await?;
        let which = match (&seen, &alts.before, &alts.after) {
            (None, None, _) => "before",
            (None, _, None) => "after",
            (None, _, _) => return Err(format!("{name} is gone")),
            (Some((s, _)), b, a) => {
                let after_ok = a.as_ref().is_some_and(|e| matches(s, e));
                let before_ok = !done && b.as_ref().is_some_and(|e| matches(s, e));
                if after_ok {
                    "after"
                } else if before_ok {
                    "before"
                } else {
                    let engine =
                        docker_state(&format!("{}shop.{name}", w.h.app.settings.container_prefix));
                    return Err(format!(
                        "{name} is neither as before nor as after the operation{}:\n  seen   {s:?}\n  before {b:?}\n  after  {a:?}\n  engine {engine}",
                        if done { " (which answered success)" } else { "" }
                    ));
                }
            }
        };
        let which = if alts.before == alts.after {
            "same"
        } else {
            which
        };
        outcome.states.push(format!("{name}:{which}"));
        let Some((s, _)) = seen else { continue };
        let e = if which != "before" {
            alts.after.clone()
        } else {
            alts.before.clone()
        }
        .ok_or("no expectation")?;
        if let Err(m) = std::fs::read_to_string(
            data.join(format!("instances/shop/{name}/data"))
                .join(dolly_core::dbserver::INIT_FILE),
        )
        .map(|t| {
            if t.contains("IDENTIFIED BY") {
                Err(format!("{name}'s init file still holds its password"))
            } else {
                Ok(())
            }
        }) {
            return Err(format!("{name}: init file: {m}"));
        }
        let snap_dirs = dir_names(&data.join(format!("instances/shop/{name}/snapshots")));
        let snap_listed: BTreeSet<String> = s.snapshots.keys().cloned().collect();
        if snap_dirs != snap_listed {
            return Err(format!(
                "{name}: snapshot folders {snap_dirs:?} are not the listed snapshots {snap_listed:?}"
            ));
        }
        // A stopped instance is usable once started.
        if !s.running {
            let r = d
                .post_expect(&format!("{INSTANCES}/{name}/start"), json!({}), 200)
                .await;
            let got = marker(&creds(&r)?).await?;
            if got != e.marker {
                return Err(format!("{name} started holds {got}, not {}", e.marker));
            }
        }
        for (snap, m) in &e.snapshots {
            to_branch.push((name.clone(), snap.clone(), m.clone()));
        }
    }
    // Containers: one per running instance, nothing else (pool members
    // excepted).
    let prefix = &w.h.app.settings.container_prefix;
    for c in w.h.app.containers().await {
        let kind = c.labels.get(LABEL_KIND).cloned().unwrap_or_default();
        // `shop.N`, or `shop.N.fwd` / `shop.N.gG` (forwarder, standby).
        let owner = c
            .name
            .strip_prefix(&format!("{prefix}shop."))
            .map(|o| o.split('.').next().unwrap_or(o).to_owned());
        let ok = match kind.as_str() {
            "pool" => {
                c.name.contains("pool.") || owner.as_ref().is_some_and(|o| listed.contains(o))
            }
            _ => owner.as_ref().is_some_and(|o| listed.contains(o)),
        };
        if !ok {
            return Err(format!(
                "an orphan container: {} (kind {kind}, {:?})",
                c.name, c.state
            ));
        }
    }
    for n in &listed {
        // An instance behind a forwarder (standby): one forwarder, its
        // server and at most a standby; any other instance: one container.
        let all_mine: Vec<String> =
            w.h.app
                .containers()
                .await
                .into_iter()
                .map(|c| c.name)
                .filter(|c| {
                    c.strip_prefix(&format!("{prefix}shop."))
                        .is_some_and(|o| o.split('.').next() == Some(n.as_str()))
                })
                .collect();
        let forwarders = all_mine.iter().filter(|c| c.ends_with(".fwd")).count();
        let servers = all_mine.len() - forwarders;
        let fine = match forwarders {
            0 => w.h.containers_of(n).await.len() == 1,
            1 => (1..=2).contains(&servers),
            _ => false,
        };
        if !fine {
            return Err(format!(
                "{n} has {} containers: {all_mine:?}",
                all_mine.len()
            ));
        }
    }
    // Snapshots are restorable: a branch holds what they saved.
    for (name, snap, m) in to_branch {
        let r = d
            .post(
                &format!("{INSTANCES}/chk"),
                json!({"from": format!("{name}@{snap}")}),
            )
            .await;
        let status = r.status().as_u16();
        let b: Value = r.json().await.unwrap_or(Value::Null);
        if status != 201 {
            return Err(format!("a branch from {name}@{snap}: {status} {b}"));
        }
        let got = marker(&creds(&b)?).await?;
        if got != m {
            return Err(format!("{name}@{snap} holds {got}, not {m}"));
        }
        let r = d.delete(&format!("{INSTANCES}/chk")).await;
        if r.status() != 204 {
            return Err(format!("delete chk: {}", r.status()));
        }
    }
    // Template versions: whole or absent.
    if let Some((t, m)) = &plan.publishes {
        let found = check_template(d, &data, t, m, &w.template_marker).await?;
        if done && found != "after" {
            return Err(format!(
                "the operation succeeded but {t} does not hold its new version"
            ));
        }
        outcome.states.push(format!("template {t}:{found}"));
        if t == "shop" && found == "after" {
            w.template_marker = m.clone();
        }
    }
    Ok(outcome)
}

/// Template `t` is published whole (its current version answers with
/// `new` or, for `shop`, `old`) or not at all. Returns `before`/`after`.
async fn check_template(
    d: &Dollyd,
    data: &Path,
    t: &str,
    new: &str,
    old: &str,
) -> Result<&'static str, String> {
    let r = d.get(&format!("/api/v1/templates/{t}")).await;
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    let dir = data.join(format!("templates/{t}"));
    if status == 404 {
        let versions: Vec<String> = dir_names(&dir)
            .into_iter()
            .filter(|n| !n.ends_with(".json") && n != "current")
            .collect();
        if !versions.is_empty() {
            return Err(format!("{t} is not listed but has versions {versions:?}"));
        }
        return Ok("before");
    }
    if status != 200 {
        return Err(format!("GET template {t}: {status} {body}"));
    }
    let listed: BTreeSet<String> = body["versions"]
        .as_array()
        .ok_or("no versions")?
        .iter()
        .map(|v| v["version"].as_str().unwrap_or_default().to_owned())
        .collect();
    let on_disk: BTreeSet<String> = dir_names(&dir)
        .into_iter()
        .filter(|n| {
            !n.contains('.')
                && n != "current"
                && !n.starts_with("last-")
                && !n.starts_with("import-")
        })
        .filter(|n| dir.join(n).is_dir())
        .collect();
    if listed != on_disk {
        return Err(format!(
            "{t}: listed versions {listed:?}, folders {on_disk:?}"
        ));
    }
    for v in &listed {
        if !dir.join(format!("{v}.json")).exists() {
            return Err(format!("{t}@{v} has no metadata"));
        }
    }
    let path = format!("/api/v1/templates/{t}/instances/tplchk");
    let r = d.post(&path, json!({})).await;
    let status = r.status().as_u16();
    let b: Value = r.json().await.unwrap_or(Value::Null);
    if status != 201 {
        return Err(format!("an instance of {t}: {status} {b}"));
    }
    let got = marker(&creds(&b)?).await?;
    let _ = d.delete(&path).await;
    if got == new {
        Ok("after")
    } else if got == old && t == "shop" {
        Ok("before")
    } else {
        Err(format!(
            "{t}'s current version holds {got}, neither {old} nor {new}"
        ))
    }
}

/// Removes every instance (protected ones too).
async fn cleanup(d: &Dollyd) {
    let list = d.get_json("/api/v1/instances").await;
    for i in list["instances"].as_array().into_iter().flatten() {
        let (t, n) = (
            i["template"].as_str().unwrap_or_default(),
            i["name"].as_str().unwrap_or_default(),
        );
        let _ = d
            .client
            .delete(d.url(&format!("/api/v1/templates/{t}/instances/{n}?force=true")))
            .send()
            .await;
    }
}

// ---------------------------------------------------------------- the runs

async fn run(kill: Kill, default_ops: &[Op]) {
    let cfg = config(default_ops);
    let mut w = World::new(kill).await;
    let mut failures = Vec::new();
    let mut summary = Vec::new();
    for &op in &cfg.ops {
        let measured = match caught(trial(&mut w, op, None)).await {
            Ok(Ok(o)) => o.took.unwrap_or(Duration::from_secs(1)),
            Ok(Err(e)) => panic!("{} without a kill already fails: {e}", op.name()),
            Err(p) => {
                w.h.print_logs();
                std::panic::resume_unwind(p)
            }
        };
        eprintln!(
            "crash-op op={} kill={} duration_ms={}",
            op.name(),
            kill.name(),
            measured.as_millis()
        );
        let (mut ok, mut failed) = (0usize, 0usize);
        let mut states: BTreeMap<String, usize> = BTreeMap::new();
        for _ in 0..cfg.trials {
            let seed = cfg.seed.unwrap_or_else(rand::random);
            let delay = measured.mul_f64(1.1 * fraction(seed));
            let started = Instant::now();
            let result = caught(trial(&mut w, op, Some(delay))).await;
            let result = match result {
                Ok(r) => r,
                Err(p) => Err(format!(
                    "panicked: {}",
                    p.downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_default()
                )),
            };
            let line = format!(
                "crash-trial op={} kill={} seed={seed} delay_ms={} of_ms={} trial_s={:.1}",
                op.name(),
                kill.name(),
                delay.as_millis(),
                measured.as_millis(),
                started.elapsed().as_secs_f64()
            );
            match result {
                Ok(o) => {
                    ok += 1;
                    for s in &o.states {
                        *states.entry(s.clone()).or_default() += 1;
                    }
                    eprintln!("{line} result=ok states={}", o.states.join(","));
                }
                Err(e) => {
                    failed += 1;
                    eprintln!("{line} result=FAILED\n  {e}\n  replay: DOLLY_CRASH_SEED={seed} DOLLY_CRASH_OPS={}", op.name());
                    w.h.print_logs();
                    failures.push(format!("{line}: {e}"));
                    if !cfg.keep_going {
                        panic!("{line}: {e}");
                    }
                    // The next trial starts on a fresh data folder.
                    w = World::new(kill).await;
                }
            }
        }
        summary.push(format!(
            "crash-summary op={} kill={} trials={} ok={ok} failed={failed} duration_ms={} states={states:?}",
            op.name(),
            kill.name(),
            cfg.trials,
            measured.as_millis()
        ));
    }
    for s in &summary {
        eprintln!("{s}");
    }
    assert!(
        failures.is_empty(),
        "failed trials:\n{}",
        failures.join("\n")
    );
}

/// A trial's result, or its panic (a failed assertion in a helper).
async fn caught<F: std::future::Future>(f: F) -> std::thread::Result<F::Output> {
    std::panic::AssertUnwindSafe(f).catch_unwind().await
}

#[tokio::test]
async fn random_sigkills_of_dollyd_leave_every_invariant_true() {
    run(Kill::Dollyd, &ALL).await;
}

#[tokio::test]
async fn random_kills_of_the_containers_leave_every_invariant_true() {
    run(Kill::Container, &WITH_CONTAINER).await;
}
