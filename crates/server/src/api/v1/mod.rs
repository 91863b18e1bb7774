//! `/api/v1`: typed JSON, RFC 3339 times, JSON errors, an OpenAPI document
//! generated from these handlers.

use actix_web::{web, HttpResponse};
use dolly_types::v1::{
    CreateInstance, CreateSnapshot, DiskUsage, DiskUse, ErrorBody, Extend, ImportResult, Instance,
    InstanceList, InstanceState, InstanceSummary, Masking, Promote, QuarantineList,
    QuarantinedInstance, Readiness, Reap, ReapReport, Reaped, Reset, Snapshot, SnapshotList,
    Template, TemplateList, TemplatePool, TemplateVersion,
};
use dolly_types::v1::{
    ExplainStep, SchemaChange, SchemaChangeKind, SchemaDiff, SchemaExplain, SchemaObject,
};
use serde::de::DeserializeOwned;
use utoipa::OpenApi;

mod admin;
mod diff;
mod instances;
mod snapshots;
mod templates;

use crate::error::ApiError;
use crate::routes::Routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "dolly",
        description = "Throwaway copy-on-write MySQL/MariaDB databases"
    ),
    paths(
        templates::list_templates,
        templates::get_template,
        templates::set_pool,
        instances::list_instances,
        instances::list_template_instances,
        instances::create_instance,
        instances::get_instance,
        instances::delete_instance,
        instances::inspect_container,
        instances::extend_instance,
        instances::protect_instance,
        instances::unprotect_instance,
        instances::stop_instance,
        instances::start_instance,
        instances::reset_instance,
        snapshots::list_snapshots,
        snapshots::create_snapshot,
        snapshots::delete_snapshot,
        snapshots::restore_snapshot,
        snapshots::promote_snapshot,
        admin::disk_usage,
        diff::diff_instance,
        diff::explain_diff,
        super::push::version,
        super::push::push,
        admin::quarantine,
        admin::reap,
        snapshots::export_snapshot,
        snapshots::import_archive
    ),
    components(schemas(
        dolly_types::v1::StandbyStatus,
        ErrorBody,
        Template,
        TemplateList,
        TemplatePool,
        TemplateVersion,
        Masking,
        ImportResult,
        Instance,
        InstanceList,
        InstanceSummary,
        InstanceState,
        CreateInstance,
        Readiness,
        Extend,
        Reset,
        CreateSnapshot,
        Snapshot,
        SnapshotList,
        Promote,
        Reap,
        Reaped,
        ReapReport,
        DiskUse,
        DiskUsage,
        QuarantineList,
        QuarantinedInstance,
        SchemaDiff,
        SchemaChange,
        SchemaObject,
        SchemaChangeKind,
        SchemaExplain,
        ExplainStep,
        dolly_types::v1::Push,
        dolly_types::v1::PushResult,
        dolly_types::v1::ServerVersion
    ))
)]
pub struct ApiDoc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    let mut r = Routes::new(cfg, "/api/v1");
    r.get("/openapi.json", openapi)
        .get("/templates", templates::list_templates)
        .get("/templates/{template}", templates::get_template)
        .put("/templates/{template}/pool", templates::set_pool)
        .get("/instances", instances::list_instances)
        .get(
            "/templates/{template}/instances",
            instances::list_template_instances,
        )
        .post(
            "/templates/{template}/instances/{name}",
            instances::create_instance,
        )
        .get(
            "/templates/{template}/instances/{name}",
            instances::get_instance,
        )
        .delete(
            "/templates/{template}/instances/{name}",
            instances::delete_instance,
        )
        .get(
            "/templates/{template}/instances/{name}/container",
            instances::inspect_container,
        )
        .post(
            "/templates/{template}/instances/{name}/extend",
            instances::extend_instance,
        )
        .post(
            "/templates/{template}/instances/{name}/protect",
            instances::protect_instance,
        )
        .post(
            "/templates/{template}/instances/{name}/unprotect",
            instances::unprotect_instance,
        )
        .post(
            "/templates/{template}/instances/{name}/stop",
            instances::stop_instance,
        )
        .post(
            "/templates/{template}/instances/{name}/start",
            instances::start_instance,
        )
        .post(
            "/templates/{template}/instances/{name}/reset",
            instances::reset_instance,
        )
        .get(
            "/templates/{template}/instances/{name}/snapshots",
            snapshots::list_snapshots,
        )
        .post(
            "/templates/{template}/instances/{name}/snapshots/{snapshot}",
            snapshots::create_snapshot,
        )
        .delete(
            "/templates/{template}/instances/{name}/snapshots/{snapshot}",
            snapshots::delete_snapshot,
        )
        .post(
            "/templates/{template}/instances/{name}/snapshots/{snapshot}/restore",
            snapshots::restore_snapshot,
        )
        .post(
            "/templates/{template}/instances/{name}/snapshots/{snapshot}/promote",
            snapshots::promote_snapshot,
        )
        .get(
            "/templates/{template}/instances/{name}/snapshots/{snapshot}/export",
            snapshots::export_snapshot,
        )
        .post(
            "/templates/{template}/instances/{name}/import",
            snapshots::import_archive,
        )
        .get(
            "/templates/{template}/instances/{name}/diff",
            diff::diff_instance,
        )
        .post(
            "/templates/{template}/instances/{name}/diff/explain",
            diff::explain_diff,
        )
        .get("/df", admin::disk_usage)
        .get("/quarantine", admin::quarantine)
        .post("/reap", admin::reap);
    super::push::configure(&mut r);
}

/// A JSON body, or the default when the body is empty.
fn json_body<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
