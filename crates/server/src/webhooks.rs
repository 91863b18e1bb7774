//! Webhooks: every domain event ([`dolly_core::events`]) POSTed as JSON to
//! each of `webhook_urls`, signed `X-Dolly-Signature: sha256=<hex
//! HMAC-SHA256 of the body with webhook_secret>`.
//!
//! Delivery runs in the background: events wait in a bounded queue (a full
//! queue drops the event, logged and counted), each delivery is retried
//! with a doubling backoff a bounded number of times, and no API answer
//! ever waits for it. Outcomes are counted in
//! `dolly_webhook_deliveries_total{outcome}`.

use std::sync::Arc;
use std::time::Duration;

use dolly_core::context::Context;
use dolly_core::events::Event;
use dolly_core::metrics::WebhookCounter;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

/// Events waiting for delivery at most.
const QUEUE: usize = 1024;
/// Deliveries in flight at most.
const PARALLEL: usize = 16;

/// How hard a delivery tries.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts in all (the first and the retries).
    pub attempts: u32,
    /// The wait after the first failure, doubled after each.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// One attempt's time limit.
    pub timeout: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 8,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
        }
    }
}

/// The signature header's value for `body`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length (RFC 2104): this cannot fail.
    #[allow(clippy::expect_used)]
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(body);
    format!(
        "sha256={}",
        dolly_core::users::hex(&mac.finalize().into_bytes())
    )
}

/// Starts delivering the context's events when `webhook_urls` is set.
/// The returned task ends once the context is gone and the queue drained.
pub fn start(ctx: &Context) -> Option<JoinHandle<()>> {
    start_with(ctx, Retry::default())
}

pub fn start_with(ctx: &Context, retry: Retry) -> Option<JoinHandle<()>> {
    let urls = ctx.settings().webhook_urls.clone();
    let secret = ctx.settings().webhook_secret.clone()?;
    if urls.is_empty() {
        return None;
    }
    let (tx, rx) = mpsc::channel(QUEUE);
    if !ctx.events().subscribe(tx) {
        return None;
    }
    info!(urls = urls.len(), "webhooks on");
    let counter = ctx.metrics().webhooks();
    Some(tokio::spawn(deliver_all(
        rx,
        Arc::new(urls),
        Arc::new(secret.expose().as_bytes().to_vec()),
        counter,
        retry,
    )))
}

fn client(timeout: Duration) -> reqwest::Client {
    crate::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("dollyd/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

async fn deliver_all(
    mut rx: mpsc::Receiver<Event>,
    urls: Arc<Vec<String>>,
    secret: Arc<Vec<u8>>,
    counter: WebhookCounter,
    retry: Retry,
) {
    let http = client(retry.timeout);
    let slots = Arc::new(Semaphore::new(PARALLEL));
    let mut running = tokio::task::JoinSet::new();
    while let Some(event) = rx.recv().await {
        let body = match serde_json::to_vec(&event) {
            Ok(b) => b,
            Err(e) => {
                warn!(error = %e, "webhook event not serializable; dropped");
                continue;
            }
        };
        let sig = signature(&secret, &body);
        for url in urls.iter() {
            let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
                return;
            };
            let (http, url, body, sig, counter) = (
                http.clone(),
                url.clone(),
                body.clone(),
                sig.clone(),
                counter.clone(),
            );
            let name = event.event.as_str();
            running.spawn(async move {
                deliver(&http, &url, name, body, &sig, &counter, retry).await;
                drop(permit);
            });
        }
        // Reap finished deliveries as we go.
        while running.try_join_next().is_some() {}
    }
    while running.join_next().await.is_some() {}
}

async fn deliver(
    http: &reqwest::Client,
    url: &str,
    event: &str,
    body: Vec<u8>,
    sig: &str,
    counter: &WebhookCounter,
    retry: Retry,
) {
    let mut backoff = retry.first_backoff;
    // What a log line may show of the URL: no user, password or query.
    let shown = dolly_core::remote::redact_url(url);
    let url_shown = shown.as_str();
    for attempt in 1..=retry.attempts {
        let result = http
            .post(url)
            .header("content-type", "application/json")
            .header("x-dolly-signature", sig)
            .header("x-dolly-event", event)
            .body(body.clone())
            .send()
            .await;
        let why = match result {
            Ok(r) if r.status().is_success() => {
                counter.inc("ok");
                debug!(url = url_shown, event, attempt, "webhook delivered");
                return;
            }
            Ok(r) => format!("answered {}", r.status()),
            // reqwest's text quotes the URL, secrets and all.
            Err(e) if e.is_timeout() => "no answer in time".to_owned(),
            Err(e) if e.is_connect() => "cannot connect".to_owned(),
            Err(_) => "the request failed".to_owned(),
        };
        if attempt == retry.attempts {
            counter.inc("failed");
            warn!(
                url = url_shown,
                event,
                attempts = attempt,
                "webhook not delivered, giving up: {why}"
            );
            return;
        }
        counter.inc("retried");
        warn!(url = url_shown, event, attempt, retry_in = ?backoff, "webhook delivery failed, will retry: {why}");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(retry.max_backoff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_rfc_4231_hmac_sha256() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
