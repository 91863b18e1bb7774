//! Secrets in configured URLs (a user and password, a query token) never
//! reach a log line: a failing webhook delivery logs the URL redacted.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{Body, FastApp, ALICE};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn a_failing_webhook_is_logged_without_its_secrets() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // This thread's: the delivery task runs on the test's runtime.
    let _guard = tracing::subscriber::set_default(subscriber);
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://hookuser:hunter2@127.0.0.1:{closed}/in?token=s3cret");
    let app = FastApp::spawn_with(move |s| {
        let secret = dolly_core::config::Settings::from_lookup(|k| match k {
            "webhook_urls" => Some(url.clone()),
            "webhook_secret" => Some("signing-key".to_owned()),
            _ => None,
        })
        .expect("settings");
        s.webhook_urls = secret.webhook_urls;
        s.webhook_secret = secret.webhook_secret;
    })
    .await;
    app.ok(
        ALICE,
        "POST",
        "/api/v1/templates/shop/instances/hooked",
        Body::None,
        201,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !logs.text().contains("webhook delivery failed") {
        assert!(
            Instant::now() < deadline,
            "no failed delivery logged:\n{}",
            logs.text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = logs.text();
    for secret in ["hunter2", "s3cret", "hookuser"] {
        assert!(!text.contains(secret), "{secret} logged:\n{text}");
    }
    assert!(
        text.contains(&format!("http://***@127.0.0.1:{closed}/in?***")),
        "{text}"
    );
}
