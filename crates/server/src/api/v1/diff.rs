//! Schema diffs of an instance against its template or a snapshot.

use actix_web::{web, HttpResponse};
use dolly_types::v1::{ErrorBody, SchemaDiff, SchemaExplain};
use dolly_types::SnapshotName;
use serde::Deserialize;

use super::super::OwnedInstance;
use crate::error::ApiError;
use crate::wire::ToWire;

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(super) struct DiffQuery {
    /// Compare against this snapshot instead of the template version.
    against: Option<String>,
}

/// What the instance's schema changed against its template version (or a
/// snapshot): tables, columns, indexes, foreign keys, options, views,
/// triggers, routines, events; and the DDL that replays it.
#[utoipa::path(
    get,
    path = "/api/v1/templates/{template}/instances/{name}/diff",
    params(("template" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63), ("name" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63), DiffQuery),
    responses((status = 200, body = SchemaDiff), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody))
)]
pub(super) async fn diff_instance(
    owned: OwnedInstance,
    query: web::Query<DiffQuery>,
) -> Result<HttpResponse, ApiError> {
    let against = query
        .against
        .as_deref()
        .map(SnapshotName::parse)
        .transpose()?;
    Ok(HttpResponse::Ok().json(owned.diff(against).await?.to_wire()))
}

/// Runs each statement of the diff's SQL on a throwaway clone of the
/// template version (or the snapshot) with the full data: per `ALTER
/// TABLE`, the algorithm the server could use and how long it took.
#[utoipa::path(
    post,
    path = "/api/v1/templates/{template}/instances/{name}/diff/explain",
    params(("template" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63), ("name" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63), DiffQuery),
    responses((status = 200, body = SchemaExplain), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody))
)]
pub(super) async fn explain_diff(
    owned: OwnedInstance,
    query: web::Query<DiffQuery>,
) -> Result<HttpResponse, ApiError> {
    let against = query
        .against
        .as_deref()
        .map(SnapshotName::parse)
        .transpose()?;
    Ok(HttpResponse::Ok().json(owned.explain(against).await?.to_wire()))
}
