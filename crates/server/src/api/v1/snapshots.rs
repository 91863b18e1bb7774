//! Snapshots: take, list, restore, promote, remove; export and import archives.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use dolly_core::instance::SnapshotMeta;
use dolly_types::v1::{
    CreateSnapshot, ErrorBody, Instance, Promote, Snapshot, SnapshotList, Template,
};
use serde::Deserialize;

use super::super::{names, v1_instance, Admin, AppState, Caller, OwnedInstance, OwnedSnapshot};
use super::*;
use crate::error::ApiError;

pub(super) fn v1_snapshot(s: SnapshotMeta) -> Snapshot {
    Snapshot {
        name: s.name,
        created_at: s.created_at,
        message: s.message,
        size_bytes: s.size_bytes,
        template_version: s.template_version,
        pause_seconds: s.pause_seconds,
    }
}

/// The instance's snapshots, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/templates/{template}/instances/{name}/snapshots",
    params(("template" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63), ("name" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63)),
    responses((status = 400, body = ErrorBody), (status = 200, body = SnapshotList), (status = 404, body = ErrorBody))
)]
pub(super) async fn list_snapshots(owned: OwnedInstance) -> Result<HttpResponse, ApiError> {
    let snapshots = owned.snapshots().await?;
    Ok(HttpResponse::Ok().json(SnapshotList {
        snapshots: snapshots.into_iter().map(v1_snapshot).collect(),
    }))
}

/// Saves the instance's datadir (a brief clean stop, then a clone).
#[utoipa::path(
    post,
    path = "/api/v1/templates/{template}/instances/{name}/snapshots/{snapshot}",
    params(("template" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63), ("name" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63), ("snapshot" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63)),
    request_body(content = Option<CreateSnapshot>),
    responses((status = 400, body = ErrorBody), (status = 201, body = Snapshot), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody))
)]
pub(super) async fn create_snapshot(
    snap: OwnedSnapshot,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let request: CreateSnapshot = json_body(&body)?;
    let made = snap
        .instance()
        .snapshot(snap.name(), request.message)
        .await?;
    Ok(HttpResponse::Created().json(v1_snapshot(made)))
}

/// Removes a snapshot.
#[utoipa::path(
    delete,
    path = "/api/v1/templates/{template}/instances/{name}/snapshots/{snapshot}",
    params(("template" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63), ("name" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63), ("snapshot" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63)),
    responses((status = 400, body = ErrorBody), (status = 204), (status = 404, body = ErrorBody))
)]
pub(super) async fn delete_snapshot(snap: OwnedSnapshot) -> Result<HttpResponse, ApiError> {
    snap.delete().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Resets the instance to the snapshot (as `reset` with `to`).
#[utoipa::path(
    post,
    path = "/api/v1/templates/{template}/instances/{name}/snapshots/{snapshot}/restore",
    params(("template" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63), ("name" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63), ("snapshot" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63)),
    responses((status = 400, body = ErrorBody), (status = 200, body = Instance), (status = 404, body = ErrorBody))
)]
pub(super) async fn restore_snapshot(
    state: web::Data<AppState>,
    snap: OwnedSnapshot,
) -> Result<HttpResponse, ApiError> {
    let i = snap.restore().await?;
    Ok(HttpResponse::Ok().json(v1_instance(&state, i)))
}

/// Publishes the snapshot as the new current version of a template.
#[utoipa::path(
    post,
    path = "/api/v1/templates/{template}/instances/{name}/snapshots/{snapshot}/promote",
    params(("template" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63), ("name" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63), ("snapshot" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63)),
    request_body = Promote,
    responses((status = 400, body = ErrorBody), (status = 201, body = Template), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody))
)]
pub(super) async fn promote_snapshot(
    state: web::Data<AppState>,
    admin: Admin,
    snap: OwnedSnapshot,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let request: Promote = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
    snap.promote(&admin, &request.template).await?;
    let described = state.describe_template(&request.template).await?;
    Ok(HttpResponse::Created().json(described))
}

/// The snapshot as a portable archive (tar + zstd, manifest first), streamed.
#[utoipa::path(
    get,
    path = "/api/v1/templates/{template}/instances/{name}/snapshots/{snapshot}/export",
    params(("template" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63), ("name" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63), ("snapshot" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63)),
    responses((status = 400, body = ErrorBody), (status = 200, content_type = "application/zstd"), (status = 404, body = ErrorBody))
)]
pub(super) async fn export_snapshot(snap: OwnedSnapshot) -> Result<HttpResponse, ApiError> {
    let rx = snap.export().await?;
    let (t, n, s) = (
        snap.instance().template(),
        snap.instance().name(),
        snap.name(),
    );
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Ok(HttpResponse::Ok()
        .content_type("application/zstd")
        .insert_header((
            "content-disposition",
            format!("attachment; filename=\"{t}-{n}-{s}.tar.zst\""),
        ))
        .streaming(stream))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(super) struct ImportQuery {
    /// Seconds until the new instance expires.
    ttl: Option<u64>,
}

/// Creates an instance from an archive made by `export` (the request body,
/// streamed). The archive's server version must be this server's.
#[utoipa::path(
    post,
    path = "/api/v1/templates/{template}/instances/{name}/import",
    params(("template" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63), ("name" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63), ImportQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 400, body = ErrorBody), (status = 201, body = Instance), (status = 409, body = ErrorBody))
)]
pub(super) async fn import_archive(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    query: web::Query<ImportQuery>,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    use futures_util::StreamExt;
    let (t, n) = names(&path.0, &path.1)?;
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    // Feed the body to the unpacking thread as it arrives.
    actix_web::rt::spawn(async move {
        while let Some(chunk) = payload.next().await {
            let item = chunk.map_err(|e| std::io::Error::other(e.to_string()));
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                break;
            }
        }
    });
    let ttl = query.ttl.map(Duration::from_secs);
    let i = state.import_archive(&caller, &t, &n, ttl, rx).await?;
    Ok(HttpResponse::Created().json(v1_instance(&state, i)))
}
