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

use super::v1::snapshot_names;
use super::{AppState, Caller};
use crate::error::ApiError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/version", web::get().to(version)).route(
        "/templates/{template}/instances/{name}/snapshots/{snapshot}/push",
        web::post().to(push),
    );
}

/// dolly's version and the database server's: what a push checks first.
#[utoipa::path(get, path = "/api/v1/version", responses((status = 200, body = ServerVersion), (status = 400, body = ErrorBody)))]
pub async fn version(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(server_version(&state).await?))
}

async fn server_version(state: &AppState) -> Result<ServerVersion, ApiError> {
    let ctx = state.manager.context();
    let image = ctx
        .image()
        .await
        .map_err(dolly_core::instance::InstanceError::from)?;
    Ok(ServerVersion {
        dolly: env!("CARGO_PKG_VERSION").to_owned(),
        server_version: image.version.clone(),
        image: ctx.settings.image.clone(),
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
    caller: Caller,
    path: web::Path<(String, String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (t, n, s) = snapshot_names(&path)?;
    caller.check(&state, &t, &n).await?;
    let request: Push = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
    let remote = request.remote.trim_end_matches('/').to_owned();
    if !(remote.starts_with("http://") || remote.starts_with("https://")) {
        return Err(ApiError::BadRequest(format!(
            "remote {remote:?} is not an http:// or https:// URL"
        )));
    }
    let to_t = request.template.unwrap_or_else(|| t.clone());
    let to_n = request.name.unwrap_or_else(|| n.clone());
    crate::install_crypto_provider();
    let http = reqwest::Client::builder()
        .user_agent(concat!("dollyd/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ApiError::Remote(format!("cannot make an HTTP client: {e}")))?;

    // 1. The same server version, or nothing moves.
    let here = server_version(&state).await?;
    let there: ServerVersion = answer(
        http.get(format!("{remote}/api/v1/version"))
            .bearer_auth(&request.token)
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
    let rx = state.manager.export(&t, &n, &s).await?;
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
        http.post(format!(
            "{remote}/api/v1/templates/{to_t}/instances/{to_n}/import"
        ))
        .bearer_auth(&request.token)
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await,
        &remote,
    )
    .await?;
    tracing::info!(template = %t, instance = %n, snapshot = %s, remote, bytes = sent.load(Ordering::Relaxed), "snapshot pushed");
    Ok(HttpResponse::Created().json(PushResult {
        remote,
        bytes: sent.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
        instance,
    }))
}

/// The other server's JSON answer, or its error as ours (502 with its
/// message).
async fn answer<T: serde::de::DeserializeOwned>(
    sent: Result<reqwest::Response, reqwest::Error>,
    remote: &str,
) -> Result<T, ApiError> {
    let r = sent.map_err(|e| ApiError::Remote(format!("cannot reach {remote}: {e}")))?;
    let status = r.status();
    let text = r.text().await.map_err(|e| {
        ApiError::Remote(format!(
            "{remote} answered {status} but the body failed: {e}"
        ))
    })?;
    if !status.is_success() {
        let message = serde_json::from_str::<ErrorBody>(&text)
            .map(|b| format!("{} ({})", b.error.message, b.error.code))
            .unwrap_or(text);
        return Err(ApiError::Remote(format!(
            "{remote} answered {status}: {message}"
        )));
    }
    serde_json::from_str(&text).map_err(|e| {
        ApiError::Remote(format!(
            "{remote} answered something that is not dolly's: {e}"
        ))
    })
}
