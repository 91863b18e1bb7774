//! Teams: users with tokens, roles, ownership and quotas (both API
//! surfaces and the CLI), the users file reloaded on SIGHUP, and signed
//! webhooks delivered with retries.

use crate::common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cli::dolly_run;
use common::{simple_dump, TestApp};
use dolly_core::config::Settings;
use dolly_core::users::token_sha256;
use serde_json::Value;

const ADMIN: &str = "admin-token-of-the-tests";
const ALICE: &str = "alice-token";
const BOB: &str = "bob-token";
const CAROL: &str = "carol-token";

fn users_toml(extra: &str) -> String {
    format!(
        "[[users]]\nname = \"alice\"\ntoken_sha256 = \"{}\"\nrole = \"member\"\nmax_instances = 2\n\n\
         [[users]]\nname = \"bob\"\ntoken_sha256 = \"{}\"\nrole = \"member\"\n\n\
         [[users]]\nname = \"root\"\ntoken_sha256 = \"{}\"\nrole = \"admin\"\n{extra}",
        token_sha256(ALICE),
        token_sha256(BOB),
        token_sha256("root-token"),
    )
}

fn with_token(s: &mut Settings, token: &str) {
    let mut with =
        Settings::from_lookup(|k| (k == "auth_token").then(|| token.to_owned())).unwrap();
    std::mem::swap(&mut s.auth_token, &mut with.auth_token);
}

async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn get(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    call(app, reqwest::Method::GET, path, token, None).await
}

async fn post(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    call(app, reqwest::Method::POST, path, token, None).await
}

async fn delete(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    call(app, reqwest::Method::DELETE, path, token, None).await
}

fn names(list: &Value) -> Vec<String> {
    let mut v: Vec<String> = list["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_see_and_touch_only_their_own_instances_admins_see_all() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.toml");
    std::fs::write(&users, users_toml("")).unwrap();
    let mut app = TestApp::new_stopped(|s| {
        with_token(s, ADMIN);
        s.users_file = Some(users.clone());
    })
    .await;
    app.write_dump("shop.sql", simple_dump("t", 3).as_bytes());
    app.update_ok(&[]).await;
    app.start().await;

    // Unknown tokens are refused; templates are everyone's.
    assert_eq!(get(&app, "/api/v1/instances", "nobody").await.0, 401);
    // The web UI serves members too (their own instances only).
    let r = app
        .client
        .get(app.url("/ui/"))
        .header("cookie", format!("dolly_token={ALICE}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .client
        .get(app.url("/ui/"))
        .header("cookie", format!("dolly_token={ADMIN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(get(&app, "/api/v1/templates", ALICE).await.0, 200);

    // alice creates through /api/v1, bob through myaas.
    let (s, a1) = post(&app, "/api/v1/templates/shop/instances/a1", ALICE).await;
    assert_eq!(s, 201, "{a1}");
    assert_eq!(a1["owner"], "alice");
    let (s, b1) = post(&app, "/db/shop/b1", BOB).await;
    assert_eq!(s, 201, "{b1}");

    // Each member lists only their own; the admin (both the auth_token
    // and a users_file admin) sees all, with owners.
    assert_eq!(
        names(&get(&app, "/api/v1/instances", ALICE).await.1),
        ["a1"]
    );
    assert_eq!(names(&get(&app, "/api/v1/instances", BOB).await.1), ["b1"]);
    let (_, all) = get(&app, "/api/v1/instances", ADMIN).await;
    assert_eq!(names(&all), ["a1", "b1"]);
    let owners: Vec<&str> = all["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["owner"].as_str().unwrap())
        .collect();
    assert_eq!(owners, ["alice", "bob"]);
    assert_eq!(
        names(&get(&app, "/api/v1/instances", "root-token").await.1),
        ["a1", "b1"]
    );
    let (_, dbs) = get(&app, "/db", BOB).await;
    let listed: Vec<&str> = dbs["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["b1"]);
    let (_, index) = get(&app, "/", ALICE).await;
    assert_eq!(index["databases"], serde_json::json!(["shop,a1"]));

    // Another member's instance is absent, on every route, and untouched.
    let (s, body) = get(&app, "/api/v1/templates/shop/instances/a1", BOB).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (404, Some("instance_not_found"))
    );
    let absent = get(&app, "/api/v1/templates/shop/instances/zz", BOB).await;
    assert_eq!(
        absent.1["error"]["message"]
            .as_str()
            .map(|m| m.replace("zz", "a1")),
        body["error"]["message"].as_str().map(str::to_owned)
    );
    for path in ["/extend", "/protect", "/stop", "/reset", "/snapshots/s1"] {
        let (s, _) = post(
            &app,
            &format!("/api/v1/templates/shop/instances/a1{path}"),
            BOB,
        )
        .await;
        assert_eq!(s, 404, "POST a1{path} as bob");
    }
    assert_eq!(
        get(&app, "/api/v1/templates/shop/instances/a1/snapshots", BOB)
            .await
            .0,
        404
    );
    assert_eq!(
        delete(&app, "/api/v1/templates/shop/instances/a1", BOB)
            .await
            .0,
        404
    );
    let (s, body) = get(&app, "/db/shop/a1", BOB).await;
    assert_eq!((s, body), (404, serde_json::json!({"status": "Not found"})));
    assert_eq!(delete(&app, "/db/shop/a1", BOB).await.0, 404);
    assert_eq!(
        get(&app, "/api/v1/templates/shop/instances/a1", ALICE)
            .await
            .0,
        200
    );
    // A branch from another's snapshot is refused as absent too.
    assert_eq!(
        post(
            &app,
            "/api/v1/templates/shop/instances/a1/snapshots/s1",
            ALICE
        )
        .await
        .0,
        201
    );
    let (s, _) = call(
        &app,
        reqwest::Method::POST,
        "/api/v1/templates/shop/instances/b2",
        BOB,
        Some(serde_json::json!({"from": "a1@s1"})),
    )
    .await;
    assert_eq!(s, 404);
    // Admins act on anyone's.
    assert_eq!(
        get(&app, "/api/v1/templates/shop/instances/b1", ADMIN)
            .await
            .0,
        200
    );

    // Server-wide operations are the admins'.
    let (s, body) = call(
        &app,
        reqwest::Method::PUT,
        "/api/v1/templates/shop/pool",
        ALICE,
        Some(serde_json::json!({"size": 1})),
    )
    .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    assert_eq!(post(&app, "/api/v1/reap", BOB).await.0, 403);

    // Quota: alice may own 2 (a1 and the next), then 429 naming it.
    assert_eq!(post(&app, "/db/shop/a2", ALICE).await.0, 201);
    let (s, body) = post(&app, "/api/v1/templates/shop/instances/a3", ALICE).await;
    assert_eq!(s, 429, "{body}");
    assert_eq!(body["error"]["code"], "quota_reached");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_instances"),
        "{body}"
    );
    assert!(
        body["error"]["message"].as_str().unwrap().contains('2'),
        "{body}"
    );
    assert_eq!(post(&app, "/db/shop/a3", ALICE).await.0, 429);
    // bob has no quota of his own.
    assert_eq!(post(&app, "/db/shop/b3", BOB).await.0, 201);

    // The CLI: alice's ls is hers; the admin's shows owners.
    let url = app.url("");
    let r = dolly_run(&url, &["ls"], &[("DOLLY_TOKEN", ALICE)], None).await;
    assert!(r.stdout.contains("a1") && r.stdout.contains("a2"), "{r:#?}");
    assert!(!r.stdout.contains("b1"), "{r:#?}");
    let r = dolly_run(&url, &["ls"], &[("DOLLY_TOKEN", ADMIN)], None).await;
    assert!(
        r.stdout.contains("OWNER") && r.stdout.contains("bob"),
        "{r:#?}"
    );
    let r = dolly_run(&url, &["rm", "shop", "a1"], &[("DOLLY_TOKEN", BOB)], None).await;
    assert_ne!(r.code, 0, "{r:#?}");
    let r = dolly_run(
        &url,
        &["show", "shop", "b1"],
        &[("DOLLY_TOKEN", ALICE)],
        None,
    )
    .await;
    assert_ne!(r.code, 0, "{r:#?}");
    let r = dolly_run(
        &url,
        &["rm", "shop", "a1", "--force"],
        &[("DOLLY_TOKEN", ALICE)],
        None,
    )
    .await;
    assert_eq!(r.code, 0, "{r:#?}");

    // Audit: counted by user, never a token.
    let (_, _) = get(&app, "/metrics", ADMIN).await;
    let text = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("dolly_operations_by_user_total{user=\"alice\",operation=\"create\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("dolly_operations_by_user_total{user=\"bob\",operation=\"create\"} 2"),
        "{text}"
    );
    assert!(!text.contains(ALICE) && !text.contains(BOB));
}

/// A free port: bind, read, release.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Dollyd(std::process::Child);

impl Drop for Dollyd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_users_file_and_a_bad_file_keeps_the_users() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.toml");
    std::fs::write(&users, users_toml("")).unwrap();
    let app = TestApp::new_stopped(|_| {}).await;
    app.write_dump("shop.sql", simple_dump("t", 2).as_bytes());
    app.update_ok(&[]).await;
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_dollyd"))
        .arg("serve")
        .envs(app.env())
        .env("DOLLY_LISTEN", format!("127.0.0.1:{port}"))
        .env("DOLLY_USERS_FILE", &users)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn dollyd");
    let pid = child.id() as i32;
    let _d = Dollyd(child);
    let url = format!("http://127.0.0.1:{port}");
    let status = |token: &'static str| {
        let client = app.client.clone();
        let url = url.clone();
        async move {
            client
                .get(format!("{url}/api/v1/instances"))
                .bearer_auth(token)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while status(ALICE).await != 200 {
        assert!(Instant::now() < deadline, "dollyd did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status(CAROL).await, 401);
    let hup = || unsafe { libc::kill(pid, libc::SIGHUP) };

    // carol added, bob gone: after a SIGHUP.
    let carol = format!(
        "[[users]]\nname = \"carol\"\ntoken_sha256 = \"{}\"\nrole = \"member\"\n",
        token_sha256(CAROL)
    );
    std::fs::write(
        &users,
        format!(
            "[[users]]\nname = \"alice\"\ntoken_sha256 = \"{}\"\nrole = \"member\"\n{carol}",
            token_sha256(ALICE)
        ),
    )
    .unwrap();
    hup();
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(CAROL).await != 200 {
        assert!(Instant::now() < deadline, "carol never accepted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status(BOB).await, 401);

    // A broken file: the users stay as they were, and dollyd keeps serving.
    std::fs::write(
        &users,
        "[[users]]\nname = \"x\"\ntoken_sha256 = \"nothex\"\nrole = \"member\"\n",
    )
    .unwrap();
    hup();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(status(CAROL).await, 200);
    assert_eq!(status(ALICE).await, 200);
    assert_eq!(
        app.client
            .get(format!("{url}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// A webhook receiver on loopback: answers 200 to every POST and hands
/// over (signature header, body).
async fn receiver(
    listener: tokio::net::TcpListener,
    tx: tokio::sync::mpsc::UnboundedSender<(String, Vec<u8>)>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head_end, length) = loop {
                let n = sock.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    break (i + 4, length);
                }
            };
            while buf.len() < head_end + length {
                let n = sock.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
            let sig = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("x-dolly-signature")
                        .then(|| v.trim().to_owned())
                })
                .unwrap_or_default();
            let _ = sock
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await;
            let _ = tx.send((sig, buf[head_end..head_end + length].to_vec()));
        });
    }
}

fn verify(secret: &str, sig: &str, body: &[u8]) -> bool {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    sig == format!("sha256={hex}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_and_retried_until_the_receiver_is_back() {
    const SECRET: &str = "webhook-secret-of-the-tests";
    let port = free_port();
    let hook = format!("http://127.0.0.1:{port}/hook");
    let mut app = TestApp::new_stopped(|s| {
        let mut with = Settings::from_lookup(|k| match k {
            "webhook_urls" => Some(hook.clone()),
            "webhook_secret" => Some(SECRET.to_owned()),
            _ => None,
        })
        .unwrap();
        std::mem::swap(&mut s.webhook_urls, &mut with.webhook_urls);
        std::mem::swap(&mut s.webhook_secret, &mut with.webhook_secret);
    })
    .await;
    app.write_dump("shop.sql", simple_dump("t", 2).as_bytes());
    app.update_ok(&[]).await;
    app.start().await;

    // The receiver is down: the create answers at once all the same.
    let started = Instant::now();
    app.create("shop", "w1").await;
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(
        app.post("/api/v1/templates/shop/instances/w1/snapshots/s1")
            .await
            .status(),
        201
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Back up: the retried events arrive, signed.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(receiver(listener, tx));
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < 3 {
        let left = deadline.saturating_duration_since(Instant::now());
        if seen.len() == 2 {
            // Both retried ones are in: make one more, live.
            assert_eq!(app.delete("/db/shop/w1").await.status(), 204);
        }
        let (sig, body) = tokio::time::timeout(left, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("only {seen:?} arrived"))
            .unwrap();
        assert!(verify(SECRET, &sig, &body), "bad signature {sig}");
        assert!(!verify("another secret", &sig, &body));
        let event: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(event["template"], "shop");
        assert!(event["at"].is_string());
        seen.push(event["event"].as_str().unwrap().to_owned());
    }
    seen.sort();
    assert_eq!(
        seen,
        ["instance.created", "instance.deleted", "snapshot.created"]
    );

    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("dolly_webhook_deliveries_total{outcome=\"retried\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("dolly_webhook_deliveries_total{outcome=\"ok\"} 3"),
        "{metrics}"
    );

    // `dollyd update`, its own process, reports its import through the
    // same events core emits (a forced re-import: import.succeeded).
    let mut env = app.env();
    env.push(("DOLLY_WEBHOOK_URLS".into(), hook.clone()));
    env.push(("DOLLY_WEBHOOK_SECRET".into(), SECRET.into()));
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_dollyd"))
        .args(["update", "--force", "shop"])
        .envs(env)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (sig, body) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("the update's event arrives")
        .unwrap();
    assert!(verify(SECRET, &sig, &body), "bad signature {sig}");
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["event"], "import.succeeded", "{event}");
    assert_eq!(event["template"], "shop");
    assert!(event["version"].is_string(), "{event}");
}

/// Quotas against the real engine: a member with 3 of 5 instances sends
/// 20 creates at once and ends with 5; 10 snapshots at once over her
/// instances end at her `max_snapshots`.
#[tokio::test]
async fn twenty_concurrent_creates_and_snapshots_never_pass_a_quota() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.toml");
    std::fs::write(
        &users,
        format!(
            "[[users]]\nname = \"carol\"\ntoken_sha256 = \"{}\"\nrole = \"member\"\nmax_instances = 5\nmax_snapshots = 3\n",
            token_sha256(CAROL)
        ),
    )
    .unwrap();
    let mut app = TestApp::new_stopped(|s| s.users_file = Some(users.clone())).await;
    app.write_dump("shop.sql", simple_dump("t", 2).as_bytes());
    app.update_ok(&[]).await;
    app.start().await;
    for i in 0..3 {
        let (s, b) = post(
            &app,
            &format!("/api/v1/templates/shop/instances/c{i}"),
            CAROL,
        )
        .await;
        assert_eq!(s, 201, "{b}");
    }
    let started = Instant::now();
    let burst = futures_util::future::join_all((0..20).map(|i| {
        let app = &app;
        async move {
            post(
                app,
                &format!("/api/v1/templates/shop/instances/burst{i}"),
                CAROL,
            )
            .await
        }
    }))
    .await;
    let made = burst.iter().filter(|(s, _)| *s == 201).count();
    for (s, b) in &burst {
        assert!(
            *s == 201 || (*s == 429 && b["error"]["code"] == "quota_reached"),
            "{s} {b}"
        );
    }
    assert_eq!(made, 2, "{burst:?}");
    let (_, list) = get(&app, "/api/v1/instances", CAROL).await;
    assert_eq!(list["instances"].as_array().unwrap().len(), 5, "{list}");
    eprintln!(
        "20 concurrent creates over a quota: {:.2?}",
        started.elapsed()
    );

    let snaps = futures_util::future::join_all((0..10).map(|i| {
        let app = &app;
        async move {
            post(
                app,
                &format!("/api/v1/templates/shop/instances/c{}/snapshots/s{i}", i % 3),
                CAROL,
            )
            .await
        }
    }))
    .await;
    let taken = snaps.iter().filter(|(s, _)| *s == 201).count();
    for (s, b) in &snaps {
        assert!(
            *s == 201 || (*s == 429 && b["error"]["code"] == "snapshot_quota_reached"),
            "{s} {b}"
        );
    }
    assert_eq!(taken, 3, "{snaps:?}");
}
