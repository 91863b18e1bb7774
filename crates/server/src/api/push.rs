//! Moving a saved state to another dolly server, server to server: the
//! snapshot's archive (the `export` stream) is streamed into the other
//! server's archive import, after its server version was checked, so
//! nothing moves that the other side could not open.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use actix_web::{web, HttpResponse};
use dolly_types::v1::{ErrorBody, Instance, Push, PushResult, ServerVersion};
use futures_util::StreamExt;

use dolly_core::remote::Origin;

use super::{AppState, OwnedSnapshot};
use crate::error::ApiError;
use crate::routes::Routes;

pub fn configure(r: &mut Routes<'_>) {
    r.get("/version", version).post(
        "/templates/{template}/instances/{name}/snapshots/{snapshot}/push",
        push,
    );
}

/// dolly's version and the database server's: what a push checks first.
#[utoipa::path(get, path = "/api/v1/version", responses((status = 200, body = ServerVersion), (status = 400, body = ErrorBody)))]
pub async fn version(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(server_version(&state).await?))
}

async fn server_version(state: &AppState) -> Result<ServerVersion, ApiError> {
    let (server_version, image) = state.server_version().await?;
    Ok(ServerVersion {
        dolly: env!("CARGO_PKG_VERSION").to_owned(),
        server_version,
        image,
    })
}

/// Streams the snapshot to another dolly server, which creates an instance
/// from it (its `import` route). A server version mismatch is refused
/// before any data moves.
#[utoipa::path(
    post,
    path = "/api/v1/templates/{template}/instances/{name}/snapshots/{snapshot}/push",
    params(("template" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63), ("name" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63), ("snapshot" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63)),
    request_body = Push,
    responses((status = 201, body = PushResult), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 502, body = ErrorBody))
)]
pub async fn push(
    state: web::Data<AppState>,
    snap: OwnedSnapshot,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (t, n, s) = (
        snap.instance().template().clone(),
        snap.instance().name().clone(),
        snap.name().clone(),
    );
    let request: Push = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
    let remote = allowed_remote(&state.settings().push_remotes, &request.remote)?;
    let to_t = request.template.unwrap_or_else(|| t.clone());
    let to_n = request.name.unwrap_or_else(|| n.clone());
    crate::install_crypto_provider();
    let http = reqwest::Client::builder()
        .user_agent(concat!("dollyd/", env!("CARGO_PKG_VERSION")))
        // A redirect could lead anywhere: it is an answer, not a hop.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| ApiError::Remote(format!("cannot make an HTTP client: {e}")))?;

    // 1. The same server version, or nothing moves.
    let here = server_version(&state).await?;
    let there: ServerVersion = answer(
        http.get(remote.join("/api/v1/version"))
            .bearer_auth(&request.token)
            .timeout(std::time::Duration::from_secs(30))
            .send()
            .await,
        &remote,
    )
    .await?;
    if there.server_version != here.server_version {
        return Err(ApiError::RemoteMismatch(format!(
            "{remote} runs {:?}, this server {:?}: a datadir only opens on the server version that wrote it",
            there.server_version, here.server_version
        )));
    }

    // 2. The archive, streamed as it is made.
    let started = Instant::now();
    let rx = snap.export().await?;
    let sent = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&sent);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    })
    .map(move |chunk| {
        if let Ok(bytes) = &chunk {
            counter.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        }
        chunk
    });
    let instance: Instance = answer(
        http.post(remote.join(&format!("/api/v1/templates/{to_t}/instances/{to_n}/import")))
            .bearer_auth(&request.token)
            .header("content-type", "application/octet-stream")
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await,
        &remote,
    )
    .await?;
    let remote = remote.to_string();
    tracing::info!(template = %t, instance = %n, snapshot = %s, remote, bytes = sent.load(Ordering::Relaxed), "snapshot pushed");
    Ok(HttpResponse::Created().json(PushResult {
        remote,
        bytes: sent.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
        instance,
    }))
}

/// The origin of `remote` when the operator allows pushes there
/// (`push_remotes`); 403 for anything else, 400 for what is not an
/// origin. Decided from the text alone: no connection is made here.
fn allowed_remote(allowed: &[Origin], remote: &str) -> Result<Origin, ApiError> {
    let url = reqwest::Url::parse(remote.trim())
        .map_err(|_| ApiError::BadRequest("remote is not an http:// or https:// URL".to_owned()))?;
    let refused = || {
        ApiError::Forbidden(if allowed.is_empty() {
            "push is off on this server (push_remotes is empty)".to_owned()
        } else {
            "remote is not one of this server's push_remotes".to_owned()
        })
    };
    let origin = Origin::of(&url).map_err(|_| refused())?;
    if !allowed.contains(&origin) {
        return Err(refused());
    }
    if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        return Err(ApiError::BadRequest(format!(
            "remote must be an origin ({origin}), without a path, query or fragment"
        )));
    }
    Ok(origin)
}

/// Most bytes of a remote's answer read (a version, an instance, an error).
const ANSWER_LIMIT: usize = 256 * 1024;

/// The other server's JSON answer, or why not (502). A non-2xx answer is
/// reported by its status, plus its `{error: {code, message}}` when it is
/// a dolly server's: never an arbitrary body. A connection that fails is
/// "unreachable", no more (not which port refused or why).
async fn answer<T: serde::de::DeserializeOwned>(
    sent: Result<reqwest::Response, reqwest::Error>,
    remote: &Origin,
) -> Result<T, ApiError> {
    let mut r = sent.map_err(|e| {
        tracing::debug!(%remote, timeout = e.is_timeout(), connect = e.is_connect(), "push: remote unreachable");
        ApiError::Remote(format!("{remote} is unreachable"))
    })?;
    let status = r.status();
    let mut body = Vec::new();
    loop {
        match r.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk);
                if body.len() > ANSWER_LIMIT {
                    return Err(ApiError::Remote(format!(
                        "{remote} answered {status} with more than a dolly server would"
                    )));
                }
            }
            Ok(None) => break,
            Err(_) => {
                return Err(ApiError::Remote(format!(
                    "{remote} answered {status}, then broke off"
                )))
            }
        }
    }
    if !status.is_success() {
        let detail = serde_json::from_slice::<ErrorBody>(&body)
            .ok()
            .filter(|b| is_code(&b.error.code))
            .map(|b| format!(": {} ({})", clip(&b.error.message), b.error.code))
            .unwrap_or_default();
        return Err(ApiError::Remote(format!(
            "{remote} answered {status}{detail}"
        )));
    }
    serde_json::from_slice(&body).map_err(|_| {
        ApiError::Remote(format!(
            "{remote} answered {status} with something that is not a dolly server's answer"
        ))
    })
}

/// A dolly error code: `snake_case`, short.
fn is_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())
}

/// A remote's message, at most 500 characters, on one line.
fn clip(message: &str) -> String {
    let one_line: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(500)
        .collect();
    one_line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_origins_pass() {
        let allowed = vec![Origin::parse("http://127.0.0.1:5001").unwrap()];
        assert!(allowed_remote(&allowed, "http://127.0.0.1:5001").is_ok());
        assert!(allowed_remote(&allowed, "http://127.0.0.1:5001/").is_ok());
        for (remote, status) in [
            ("http://127.0.0.1:5002", 403),
            ("https://127.0.0.1:5001", 403),
            ("http://user:pw@127.0.0.1:5001", 403),
            ("http://localhost:5001", 403),
            ("http://127.0.0.1:5001/any/path#", 400),
            ("http://127.0.0.1:5001/?x=1", 400),
            ("file:///etc/passwd", 403),
            ("127.0.0.1:5001", 400),
            ("not a url", 400),
        ] {
            let e = allowed_remote(&allowed, remote).unwrap_err();
            assert_eq!(e.classify().0.as_u16(), status, "{remote}: {e}");
        }
        let e = allowed_remote(&[], "http://127.0.0.1:5001").unwrap_err();
        assert!(e.to_string().contains("push is off"), "{e}");
    }
}
