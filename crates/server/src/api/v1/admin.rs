//! Admin-only housekeeping: disk usage, quarantine, the reaper.

use actix_web::{web, HttpResponse};
use dolly_types::v1::{
    DiskUsage, ErrorBody, QuarantineList, QuarantinedInstance, Reap, ReapReport,
};

use super::super::Admin;
use super::*;
use crate::error::ApiError;
use crate::wire::ToWire;

/// Disk used by template versions, instances and snapshots (apparent sizes).
#[utoipa::path(get, path = "/api/v1/df", responses((status = 400, body = ErrorBody), (status = 200, body = DiskUsage)))]
pub(super) async fn disk_usage(admin: Admin) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(admin.manager().disk_usage().await?.to_wire()))
}

/// Instance folders set aside because their metadata could not be read
/// (kept, never deleted by dolly): fix or remove them by hand.
#[utoipa::path(get, path = "/api/v1/quarantine", responses((status = 200, body = QuarantineList), (status = 400, body = ErrorBody)))]
pub(super) async fn quarantine(admin: Admin) -> Result<HttpResponse, ApiError> {
    let quarantined = admin
        .manager()
        .quarantined()
        .await?
        .into_iter()
        .map(|q| QuarantinedInstance {
            template: q.template,
            name: q.name,
            reason: q.reason,
            quarantined_at: q.at,
            path: q.path.display().to_string(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(QuarantineList { quarantined }))
}

/// Removes expired, dead or unhealthy instances (or lists them: `dry_run`).
#[utoipa::path(
    post,
    path = "/api/v1/reap",
    request_body(content = Option<Reap>),
    responses((status = 200, body = ReapReport), (status = 400, body = ErrorBody))
)]
pub(super) async fn reap(admin: Admin, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let request: Reap = json_body(&body)?;
    let report = admin.manager().reap(&crate::wire::reap(&request)).await?;
    Ok(HttpResponse::Ok().json(report.to_wire()))
}
