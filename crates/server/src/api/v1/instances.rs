//! Instances: list, create, inspect, lease, stop/start, reset, delete.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use dolly_core::instance::{Instance as DomainInstance, ResetTarget};
use dolly_types::v1::{
    CreateInstance, ErrorBody, Extend, Instance, InstanceList, InstanceSummary, Reset,
};
use dolly_types::{InstanceName, SnapshotName, TemplateName};
use serde::Deserialize;

use super::super::{names, v1_instance, AppState, Caller, OwnedInstance};
use super::*;
use crate::error::ApiError;
use crate::wire::ToWire;

pub(super) fn summary(i: DomainInstance) -> InstanceSummary {
    let standby_status = super::super::standby_status(&i.meta, None);
    let sleep_after = i.meta.forward.as_ref().and_then(|f| f.sleep_after);
    InstanceSummary {
        template: i.meta.template,
        name: i.meta.name,
        template_version: i.meta.version,
        port: i.port,
        state: i.state.to_wire(),
        created_at: i.meta.created_at,
        expires_at: i.meta.expires_at,
        protected: i.meta.protected,
        owner: i.meta.owner,
        standby_status,
        sleep_after,
        stopped_reason: i.meta.stopped_reason,
        problem: i.meta.broken,
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    /// Only instances of this template.
    template: Option<String>,
}

/// Every instance, without credentials.
#[utoipa::path(
    get,
    path = "/api/v1/instances",
    params(ListQuery),
    responses((status = 200, body = InstanceList), (status = 400, body = ErrorBody))
)]
pub(super) async fn list_instances(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let only = query
        .template
        .as_deref()
        .map(TemplateName::parse)
        .transpose()?;
    let instances = state.visible(&caller, only.as_ref()).await?;
    Ok(HttpResponse::Ok().json(InstanceList {
        instances: instances.into_iter().map(summary).collect(),
    }))
}

/// The instances of one template.
#[utoipa::path(
    get,
    path = "/api/v1/templates/{template}/instances",
    params(("template" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63)),
    responses((status = 200, body = InstanceList), (status = 400, body = ErrorBody))
)]
pub(super) async fn list_template_instances(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let t = TemplateName::parse(&path)?;
    let instances = state.visible(&caller, Some(&t)).await?;
    Ok(HttpResponse::Ok().json(InstanceList {
        instances: instances.into_iter().map(summary).collect(),
    }))
}

/// Creates an instance; answers once it accepts its credentials.
#[utoipa::path(
    post,
    path = "/api/v1/templates/{template}/instances/{name}",
    params(("template" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63), ("name" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63)),
    request_body(content = Option<CreateInstance>),
    responses(
        (status = 201, body = Instance),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
        (status = 423, body = ErrorBody),
        (status = 429, body = ErrorBody),
        (status = 503, body = ErrorBody),
        (status = 504, body = ErrorBody),
        (status = 507, body = ErrorBody)
    )
)]
pub(super) async fn create_instance(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (t, n) = names(&path.0, &path.1)?;
    let request: CreateInstance = json_body(&body)?;
    let ttl = request.ttl.map(Duration::from_secs);
    let options = state.create_options(request.standby, request.sleep_after);
    let i = match request.from.as_deref() {
        None => state.create(&caller, &t, &n, ttl, options).await?,
        Some(f) => {
            let (src, snap) = f
                .split_once('@')
                .ok_or_else(|| ApiError::BadRequest(format!("from {f:?} is not NAME@SNAPSHOT")))?;
            let (src, snap) = (InstanceName::parse(src)?, SnapshotName::parse(snap)?);
            // A branch follows its source's owner: another's is absent.
            let source = state.owned(&caller, t.clone(), src).await?;
            source.branch(&n, snap, ttl).await?
        }
    };
    Ok(HttpResponse::Created().json(v1_instance(&state, i)))
}

/// One instance with its credentials.
#[utoipa::path(
    get,
    path = "/api/v1/templates/{template}/instances/{name}",
    params(("template" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63), ("name" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63)),
    responses((status = 200, body = Instance), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody))
)]
pub(super) async fn get_instance(
    state: web::Data<AppState>,
    owned: OwnedInstance,
) -> Result<HttpResponse, ApiError> {
    let i = owned.get().await?;
    Ok(HttpResponse::Ok().json(v1_instance(&state, i)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(super) struct DeleteQuery {
    /// Remove even a protected instance.
    force: Option<bool>,
}

/// Removes an instance: its container, its data and its snapshots.
#[utoipa::path(
    delete,
    path = "/api/v1/templates/{template}/instances/{name}",
    params(("template" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63), ("name" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63), DeleteQuery),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody))
)]
pub(super) async fn delete_instance(
    owned: OwnedInstance,
    query: web::Query<DeleteQuery>,
) -> Result<HttpResponse, ApiError> {
    owned.delete(query.force.unwrap_or(false)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The container engine's inspection of the instance's container.
#[utoipa::path(
    get,
    path = "/api/v1/templates/{template}/instances/{name}/container",
    params(("template" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63), ("name" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63)),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody))
)]
pub(super) async fn inspect_container(owned: OwnedInstance) -> Result<HttpResponse, ApiError> {
    let c = owned.inspect_container().await?;
    Ok(HttpResponse::Ok().json(c))
}

/// Adds `ttl` seconds to the expiry; `0` removes it (where `max_ttl` allows).
#[utoipa::path(
    post,
    path = "/api/v1/templates/{template}/instances/{name}/extend",
    params(("template" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63), ("name" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63)),
    request_body = Extend,
    responses((status = 200, body = Instance), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody))
)]
pub(super) async fn extend_instance(
    state: web::Data<AppState>,
    owned: OwnedInstance,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let request: Extend = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
    let i = owned.extend(Duration::from_secs(request.ttl)).await?;
    Ok(HttpResponse::Ok().json(v1_instance(&state, i)))
}

/// Never reap nor clean up this instance.
#[utoipa::path(
    post,
    path = "/api/v1/templates/{template}/instances/{name}/protect",
    params(("template" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63), ("name" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63)),
    responses((status = 400, body = ErrorBody), (status = 200, body = Instance), (status = 404, body = ErrorBody))
)]
pub(super) async fn protect_instance(
    state: web::Data<AppState>,
    owned: OwnedInstance,
) -> Result<HttpResponse, ApiError> {
    let i = owned.protect(true).await?;
    Ok(HttpResponse::Ok().json(v1_instance(&state, i)))
}

/// Lifts `protect`.
#[utoipa::path(
    post,
    path = "/api/v1/templates/{template}/instances/{name}/unprotect",
    params(("template" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63), ("name" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63)),
    responses((status = 400, body = ErrorBody), (status = 200, body = Instance), (status = 404, body = ErrorBody))
)]
pub(super) async fn unprotect_instance(
    state: web::Data<AppState>,
    owned: OwnedInstance,
) -> Result<HttpResponse, ApiError> {
    let i = owned.protect(false).await?;
    Ok(HttpResponse::Ok().json(v1_instance(&state, i)))
}

/// Stops the server; datadir, port and credentials stay.
#[utoipa::path(
    post,
    path = "/api/v1/templates/{template}/instances/{name}/stop",
    params(("template" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63), ("name" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63)),
    responses((status = 400, body = ErrorBody), (status = 200, body = Instance), (status = 404, body = ErrorBody))
)]
pub(super) async fn stop_instance(
    state: web::Data<AppState>,
    owned: OwnedInstance,
) -> Result<HttpResponse, ApiError> {
    let i = owned.stop().await?;
    Ok(HttpResponse::Ok().json(v1_instance(&state, i)))
}

/// Starts a stopped instance on its port.
#[utoipa::path(
    post,
    path = "/api/v1/templates/{template}/instances/{name}/start",
    params(("template" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63), ("name" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63)),
    responses((status = 400, body = ErrorBody), (status = 200, body = Instance), (status = 404, body = ErrorBody), (status = 504, body = ErrorBody))
)]
pub(super) async fn start_instance(
    state: web::Data<AppState>,
    owned: OwnedInstance,
) -> Result<HttpResponse, ApiError> {
    let i = owned.start().await?;
    Ok(HttpResponse::Ok().json(v1_instance(&state, i)))
}

/// A fresh clone under the same name, port and password: of the version it
/// was cloned from, the template's latest, or one of its snapshots.
#[utoipa::path(
    post,
    path = "/api/v1/templates/{template}/instances/{name}/reset",
    params(("template" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63), ("name" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63)),
    request_body(content = Option<Reset>),
    responses((status = 400, body = ErrorBody), (status = 200, body = Instance), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody))
)]
pub(super) async fn reset_instance(
    state: web::Data<AppState>,
    owned: OwnedInstance,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let request: Reset = json_body(&body)?;
    let target = match (request.to, request.latest) {
        (Some(_), true) => {
            return Err(ApiError::BadRequest(
                "give either `to` or `latest`, not both".to_owned(),
            ))
        }
        (Some(s), false) => ResetTarget::Snapshot(s),
        (None, true) => ResetTarget::Latest,
        (None, false) => ResetTarget::Original,
    };
    let i = owned.reset(target).await?;
    Ok(HttpResponse::Ok().json(v1_instance(&state, i)))
}
