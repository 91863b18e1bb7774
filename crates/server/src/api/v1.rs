//! `/api/v1`: typed JSON, RFC 3339 times, JSON errors, an OpenAPI document
//! generated from these handlers.

use std::time::Duration;

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
use dolly_types::{InstanceName, SnapshotName, TemplateName};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use utoipa::OpenApi;

use super::{names, v1_instance, Admin, AppState, Caller, OwnedInstance, OwnedSnapshot};
use crate::error::ApiError;
use crate::routes::Routes;
use dolly_core::instance::{Instance as DomainInstance, ResetTarget, SnapshotMeta};
use dolly_core::template;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "dolly",
        description = "Throwaway copy-on-write MySQL/MariaDB databases"
    ),
    paths(
        list_templates,
        get_template,
        set_pool,
        list_instances,
        list_template_instances,
        create_instance,
        get_instance,
        delete_instance,
        inspect_container,
        extend_instance,
        protect_instance,
        unprotect_instance,
        stop_instance,
        start_instance,
        reset_instance,
        list_snapshots,
        create_snapshot,
        delete_snapshot,
        restore_snapshot,
        promote_snapshot,
        disk_usage,
        diff_instance,
        explain_diff,
        super::push::version,
        super::push::push,
        quarantine,
        reap,
        export_snapshot,
        import_archive
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
        .get("/templates", list_templates)
        .get("/templates/{template}", get_template)
        .put("/templates/{template}/pool", set_pool)
        .get("/instances", list_instances)
        .get("/templates/{template}/instances", list_template_instances)
        .post("/templates/{template}/instances/{name}", create_instance)
        .get("/templates/{template}/instances/{name}", get_instance)
        .delete("/templates/{template}/instances/{name}", delete_instance)
        .get(
            "/templates/{template}/instances/{name}/container",
            inspect_container,
        )
        .post(
            "/templates/{template}/instances/{name}/extend",
            extend_instance,
        )
        .post(
            "/templates/{template}/instances/{name}/protect",
            protect_instance,
        )
        .post(
            "/templates/{template}/instances/{name}/unprotect",
            unprotect_instance,
        )
        .post("/templates/{template}/instances/{name}/stop", stop_instance)
        .post(
            "/templates/{template}/instances/{name}/start",
            start_instance,
        )
        .post(
            "/templates/{template}/instances/{name}/reset",
            reset_instance,
        )
        .get(
            "/templates/{template}/instances/{name}/snapshots",
            list_snapshots,
        )
        .post(
            "/templates/{template}/instances/{name}/snapshots/{snapshot}",
            create_snapshot,
        )
        .delete(
            "/templates/{template}/instances/{name}/snapshots/{snapshot}",
            delete_snapshot,
        )
        .post(
            "/templates/{template}/instances/{name}/snapshots/{snapshot}/restore",
            restore_snapshot,
        )
        .post(
            "/templates/{template}/instances/{name}/snapshots/{snapshot}/promote",
            promote_snapshot,
        )
        .get(
            "/templates/{template}/instances/{name}/snapshots/{snapshot}/export",
            export_snapshot,
        )
        .post(
            "/templates/{template}/instances/{name}/import",
            import_archive,
        )
        .get("/templates/{template}/instances/{name}/diff", diff_instance)
        .post(
            "/templates/{template}/instances/{name}/diff/explain",
            explain_diff,
        )
        .get("/df", disk_usage)
        .get("/quarantine", quarantine)
        .post("/reap", reap);
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

fn v1_snapshot(s: SnapshotMeta) -> Snapshot {
    Snapshot {
        name: s.name,
        created_at: s.created_at,
        message: s.message,
        size_bytes: s.size_bytes,
        template_version: s.template_version,
        pause_seconds: s.pause_seconds,
    }
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

/// Every template with its versions.
#[utoipa::path(get, path = "/api/v1/templates", responses((status = 400, body = ErrorBody), (status = 200, body = TemplateList)))]
async fn list_templates(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let ctx = state.context();
    let mut templates = Vec::new();
    for t in template::list_all(ctx).await? {
        let mut described = template::describe(ctx, &t).await?;
        described.pool = Some(pool(&state, &t).await?);
        templates.push(described);
    }
    Ok(HttpResponse::Ok().json(TemplateList { templates }))
}

/// One template: versions, sizes, source dump, last import.
#[utoipa::path(
    get,
    path = "/api/v1/templates/{template}",
    params(("template" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63)),
    responses((status = 200, body = Template), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody))
)]
async fn get_template(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.context();
    let t = TemplateName::parse(&path)?;
    let mut described = template::describe(ctx, &t).await?;
    described.pool = Some(pool(&state, &t).await?);
    if described.versions.is_empty() && described.last_import.is_none() && !described.importing {
        return Err(dolly_core::instance::InstanceError::TemplateNotFound {
            name: t,
            known: template::list(ctx).await.unwrap_or_default(),
        }
        .into());
    }
    Ok(HttpResponse::Ok().json(described))
}

async fn pool(state: &AppState, t: &TemplateName) -> Result<TemplatePool, ApiError> {
    let p = state.pool_status(t).await?;
    Ok(TemplatePool {
        size: p.size,
        ready: p.ready,
    })
}

/// Sets how many ready instances of the template's current version are kept
/// warm (0: none); kept in the data folder.
#[utoipa::path(
    put,
    path = "/api/v1/templates/{template}/pool",
    params(("template" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63)),
    request_body = TemplatePool,
    responses((status = 200, body = TemplatePool), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody))
)]
async fn set_pool(
    admin: Admin,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let t = TemplateName::parse(&path)?;
    let request: TemplatePool = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
    if request.size > MAX_POOL {
        return Err(ApiError::BadRequest(format!(
            "a pool of {} is more than {MAX_POOL}",
            request.size
        )));
    }
    let p = admin.manager().set_pool_size(&t, request.size).await?;
    Ok(HttpResponse::Ok().json(TemplatePool {
        size: p.size,
        ready: p.ready,
    }))
}

/// The largest pool a template may ask for (each member is a running server).
const MAX_POOL: usize = 256;

fn summary(i: DomainInstance) -> InstanceSummary {
    let standby_status = super::standby_status(&i.meta, None);
    let sleep_after = i.meta.forward.as_ref().and_then(|f| f.sleep_after);
    InstanceSummary {
        template: i.meta.template,
        name: i.meta.name,
        template_version: i.meta.version,
        port: i.port,
        state: i.state,
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
struct ListQuery {
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
async fn list_instances(
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
async fn list_template_instances(
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
async fn create_instance(
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
async fn get_instance(
    state: web::Data<AppState>,
    owned: OwnedInstance,
) -> Result<HttpResponse, ApiError> {
    let i = owned.get().await?;
    Ok(HttpResponse::Ok().json(v1_instance(&state, i)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
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
async fn delete_instance(
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
async fn inspect_container(owned: OwnedInstance) -> Result<HttpResponse, ApiError> {
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
async fn extend_instance(
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
async fn protect_instance(
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
async fn unprotect_instance(
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
async fn stop_instance(
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
async fn start_instance(
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
async fn reset_instance(
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

/// The instance's snapshots, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/templates/{template}/instances/{name}/snapshots",
    params(("template" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63), ("name" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63)),
    responses((status = 400, body = ErrorBody), (status = 200, body = SnapshotList), (status = 404, body = ErrorBody))
)]
async fn list_snapshots(owned: OwnedInstance) -> Result<HttpResponse, ApiError> {
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
async fn create_snapshot(snap: OwnedSnapshot, body: web::Bytes) -> Result<HttpResponse, ApiError> {
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
async fn delete_snapshot(snap: OwnedSnapshot) -> Result<HttpResponse, ApiError> {
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
async fn restore_snapshot(
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
async fn promote_snapshot(
    state: web::Data<AppState>,
    admin: Admin,
    snap: OwnedSnapshot,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let request: Promote = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
    snap.promote(&admin, &request.template).await?;
    let described = template::describe(state.context(), &request.template).await?;
    Ok(HttpResponse::Created().json(described))
}

/// Disk used by template versions, instances and snapshots (apparent sizes).
#[utoipa::path(get, path = "/api/v1/df", responses((status = 400, body = ErrorBody), (status = 200, body = DiskUsage)))]
async fn disk_usage(admin: Admin) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(admin.manager().disk_usage().await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct DiffQuery {
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
async fn diff_instance(
    owned: OwnedInstance,
    query: web::Query<DiffQuery>,
) -> Result<HttpResponse, ApiError> {
    let against = query
        .against
        .as_deref()
        .map(SnapshotName::parse)
        .transpose()?;
    Ok(HttpResponse::Ok().json(owned.diff(against).await?))
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
async fn explain_diff(
    owned: OwnedInstance,
    query: web::Query<DiffQuery>,
) -> Result<HttpResponse, ApiError> {
    let against = query
        .against
        .as_deref()
        .map(SnapshotName::parse)
        .transpose()?;
    Ok(HttpResponse::Ok().json(owned.explain(against).await?))
}

/// Instance folders set aside because their metadata could not be read
/// (kept, never deleted by dolly): fix or remove them by hand.
#[utoipa::path(get, path = "/api/v1/quarantine", responses((status = 200, body = QuarantineList), (status = 400, body = ErrorBody)))]
async fn quarantine(admin: Admin) -> Result<HttpResponse, ApiError> {
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
async fn reap(admin: Admin, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let request: Reap = json_body(&body)?;
    Ok(HttpResponse::Ok().json(admin.manager().reap(&request).await?))
}

/// The snapshot as a portable archive (tar + zstd, manifest first), streamed.
#[utoipa::path(
    get,
    path = "/api/v1/templates/{template}/instances/{name}/snapshots/{snapshot}/export",
    params(("template" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63), ("name" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63), ("snapshot" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", max_length = 63)),
    responses((status = 400, body = ErrorBody), (status = 200, content_type = "application/zstd"), (status = 404, body = ErrorBody))
)]
async fn export_snapshot(snap: OwnedSnapshot) -> Result<HttpResponse, ApiError> {
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
struct ImportQuery {
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
async fn import_archive(
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
