//! `push` goes only where the operator allows (`push_remotes`), follows
//! no redirect, and tells the caller a remote's status and dolly error,
//! never an arbitrary body nor why a connection failed. The remotes are
//! loopback servers that record every connection and request.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::harness::{Body, FastApp, ALICE};

/// A loopback HTTP server answering each request with `answer(request
/// line)`, recording every connection's first bytes.
struct Recorder {
    origin: String,
    seen: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Recorder {
    async fn start(answer: fn(&str) -> String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let origin = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut got = Vec::new();
                    // Headers, then what of the body arrives within a moment.
                    loop {
                        let read = tokio::time::timeout(
                            std::time::Duration::from_millis(300),
                            conn.read(&mut buf),
                        )
                        .await;
                        match read {
                            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
                            _ => break,
                        }
                        if got.len() > 4 * 1024 * 1024 {
                            break;
                        }
                    }
                    let text = String::from_utf8_lossy(&got).into_owned();
                    let line = text.lines().next().unwrap_or("").to_owned();
                    log.lock().unwrap().push(text);
                    let _ = conn.write_all(answer(&line).as_bytes()).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        Recorder { origin, seen, task }
    }

    fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn http(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

const SECRET: &str = "INTERNAL-SECRET-DATA: db_password=hunter2";

/// A remote that looks like a dolly of the same server version, then
/// answers the archive with `import`.
fn dolly_like(line: &str, import: String) -> String {
    if line.starts_with("GET /api/v1/version") {
        http(
            "200 OK",
            "application/json",
            r#"{"dolly":"0.1.0","server_version":"fake 11.8","image":"x"}"#,
        )
    } else {
        import
    }
}

async fn app_with_snapshot(remotes: &[&str]) -> FastApp {
    let list = remotes.join(",");
    let app = FastApp::spawn_with(move |s| {
        s.push_remotes = dolly_core::remote::parse_origins(&list).expect("origins");
    })
    .await;
    let v1 = "/api/v1/templates/shop/instances";
    app.ok(ALICE, "POST", &format!("{v1}/aaa"), Body::None, 201)
        .await;
    app.ok(
        ALICE,
        "POST",
        &format!("{v1}/aaa/snapshots/s1"),
        Body::None,
        201,
    )
    .await;
    app
}

async fn push(app: &FastApp, remote: &str) -> (u16, Value) {
    let a = app
        .call(
            ALICE,
            "POST",
            "/api/v1/templates/shop/instances/aaa/snapshots/s1/push",
            Body::Json(json!({"remote": remote, "token": "remote-token"})),
        )
        .await;
    (
        a.status,
        serde_json::from_str(&a.body).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_push_outside_push_remotes_makes_no_connection() {
    let target = Recorder::start(|_| http("200 OK", "application/json", "{}")).await;
    let allowed = Recorder::start(|_| http("200 OK", "application/json", "{}")).await;
    let app = app_with_snapshot(&[&allowed.origin]).await;
    let port = target.origin.rsplit(':').next().unwrap().to_owned();
    for remote in [
        target.origin.clone(),
        format!("{}/any/path#", target.origin),
        format!("http://localhost:{port}"),
        format!("http://user:pw@127.0.0.1:{port}"),
        // The allowed origin with a path: 400, nothing sent either.
        format!("{}/any/path#", allowed.origin),
        format!("{}/?x=1", allowed.origin),
    ] {
        let (status, body) = push(&app, &remote).await;
        assert!(matches!(status, 403 | 400), "{remote}: {status} {body}");
        if status == 403 {
            assert_eq!(body["error"]["code"], "forbidden", "{body}");
        }
    }
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert!(target.requests().is_empty(), "{:?}", target.requests());
    assert!(allowed.requests().is_empty(), "{:?}", allowed.requests());

    // With push_remotes empty, push is off.
    let off = app_with_snapshot(&[]).await;
    let (status, body) = push(&off, &allowed.origin).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("push is off"),
        "{body}"
    );
    assert!(allowed.requests().is_empty());
}

#[tokio::test]
async fn a_remote_is_told_by_status_and_dolly_error_never_by_its_body() {
    // An arbitrary non-2xx body is not quoted.
    let leaky = Recorder::start(|_| http("500 Internal Server Error", "text/plain", SECRET)).await;
    // A redirect is an answer, not a hop.
    let elsewhere = Recorder::start(|_| http("200 OK", "application/json", "{}")).await;
    let redirect = {
        // The redirect's target is `elsewhere`, known only at run time:
        // answer from a second recorder that redirects to a fixed loopback
        // port would need it; write the Location from an env-free static.
        static TARGET: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let _ = TARGET.set(elsewhere.origin.clone());
        Recorder::start(|_| {
            format!(
                "HTTP/1.1 302 Found\r\nlocation: {}/api/v1/version\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                TARGET.get().unwrap()
            )
        })
        .await
    };
    // A dolly remote's own refusal is reported with its code and message.
    let refusing = Recorder::start(|line| {
        dolly_like(
            line,
            http(
                "409 Conflict",
                "application/json",
                r#"{"error":{"code":"instance_exists","message":"instance 'shop/aaa' already exists"}}"#,
            ),
        )
    })
    .await;
    // A remote that takes the archive but answers with a secret.
    let secret_import = Recorder::start(|line| {
        dolly_like(
            line,
            http("500 Internal Server Error", "text/plain", SECRET),
        )
    })
    .await;
    // A listed origin nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let app = app_with_snapshot(&[
        &leaky.origin,
        &redirect.origin,
        &refusing.origin,
        &secret_import.origin,
        &closed,
    ])
    .await;

    let (status, body) = push(&app, &leaky.origin).await;
    assert_eq!(status, 502, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        !message.contains("hunter2") && !message.contains("SECRET"),
        "{body}"
    );
    assert!(message.contains("500"), "{body}");

    let (status, body) = push(&app, &redirect.origin).await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("302"),
        "{body}"
    );
    assert_eq!(redirect.requests().len(), 1);
    assert!(elsewhere.requests().is_empty(), "the redirect was followed");

    let (status, body) = push(&app, &refusing.origin).await;
    assert_eq!(status, 502, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("409")
            && message.contains("already exists")
            && message.contains("instance_exists"),
        "{body}"
    );

    let (status, body) = push(&app, &secret_import.origin).await;
    assert_eq!(status, 502, "{body}");
    assert!(!body.to_string().contains("hunter2"), "{body}");
    // What the remote received: the version check, then the archive, with
    // the caller's token, at the allowed origin's own paths.
    let got = secret_import.requests();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got[0].starts_with("GET /api/v1/version HTTP/1.1"),
        "{}",
        got[0]
    );
    assert!(got[0]
        .to_lowercase()
        .contains("authorization: bearer remote-token"));
    assert!(
        got[1].starts_with("POST /api/v1/templates/shop/instances/aaa/import HTTP/1.1"),
        "{}",
        got[1]
    );

    let (status, body) = push(&app, &closed).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(
        body["error"]["message"].as_str().unwrap(),
        format!(
            "{} is unreachable",
            closed.replace("localhost", "127.0.0.1")
        ),
        "{body}"
    );
}
