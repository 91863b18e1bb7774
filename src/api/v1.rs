//! `/api/v1`: typed JSON, RFC 3339 times, JSON errors, an OpenAPI document
//! generated from these handlers.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use dolly_types::v1::{
    CreateInstance, ErrorBody, ImportResult, Instance, InstanceList, InstanceState,
    InstanceSummary, Readiness, Template, TemplateList, TemplateVersion,
};
use dolly_types::TemplateName;
use serde::Deserialize;
use utoipa::OpenApi;

use super::{names, v1_instance, AppState};
use crate::error::ApiError;
use crate::instance::Instance as DomainInstance;
use crate::template;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "dolly",
        description = "Throwaway copy-on-write MySQL/MariaDB databases"
    ),
    paths(
        list_templates,
        get_template,
        list_instances,
        list_template_instances,
        create_instance,
        get_instance,
        delete_instance,
        inspect_container
    ),
    components(schemas(
        ErrorBody,
        Template,
        TemplateList,
        TemplateVersion,
        ImportResult,
        Instance,
        InstanceList,
        InstanceSummary,
        InstanceState,
        CreateInstance,
        Readiness
    ))
)]
pub struct ApiDoc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(openapi))
        .route("/templates", web::get().to(list_templates))
        .route("/templates/{template}", web::get().to(get_template))
        .route("/instances", web::get().to(list_instances))
        .route(
            "/templates/{template}/instances",
            web::get().to(list_template_instances),
        )
        .route(
            "/templates/{template}/instances/{name}",
            web::post().to(create_instance),
        )
        .route(
            "/templates/{template}/instances/{name}",
            web::get().to(get_instance),
        )
        .route(
            "/templates/{template}/instances/{name}",
            web::delete().to(delete_instance),
        )
        .route(
            "/templates/{template}/instances/{name}/container",
            web::get().to(inspect_container),
        );
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

fn io_err(e: std::io::Error) -> ApiError {
    ApiError::Internal(format!("cannot read the data folder: {e}"))
}

/// Every template with its versions.
#[utoipa::path(get, path = "/api/v1/templates", responses((status = 200, body = TemplateList)))]
async fn list_templates(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let ctx = state.manager.context();
    let templates = template::list(ctx)
        .map_err(io_err)?
        .iter()
        .map(|t| template::describe(ctx, t))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io_err)?;
    Ok(HttpResponse::Ok().json(TemplateList { templates }))
}

/// One template: versions, sizes, source dump, last import.
#[utoipa::path(
    get,
    path = "/api/v1/templates/{template}",
    params(("template" = String, Path)),
    responses((status = 200, body = Template), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody))
)]
async fn get_template(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.manager.context();
    let t = TemplateName::parse(&path)?;
    let described = template::describe(ctx, &t).map_err(io_err)?;
    if described.versions.is_empty() && described.last_import.is_none() && !described.importing {
        return Err(crate::instance::InstanceError::TemplateNotFound {
            name: t,
            known: template::list(ctx).unwrap_or_default(),
        }
        .into());
    }
    Ok(HttpResponse::Ok().json(described))
}

fn summary(i: DomainInstance) -> InstanceSummary {
    InstanceSummary {
        template: i.meta.template,
        name: i.meta.name,
        template_version: i.meta.version,
        port: i.port,
        state: i.state,
        created_at: i.meta.created_at,
        expires_at: i.meta.expires_at,
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
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let only = query
        .template
        .as_deref()
        .map(TemplateName::parse)
        .transpose()?;
    let instances = state.manager.list(only.as_ref()).await?;
    Ok(HttpResponse::Ok().json(InstanceList {
        instances: instances.into_iter().map(summary).collect(),
    }))
}

/// The instances of one template.
#[utoipa::path(
    get,
    path = "/api/v1/templates/{template}/instances",
    params(("template" = String, Path)),
    responses((status = 200, body = InstanceList), (status = 400, body = ErrorBody))
)]
async fn list_template_instances(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let t = TemplateName::parse(&path)?;
    let instances = state.manager.list(Some(&t)).await?;
    Ok(HttpResponse::Ok().json(InstanceList {
        instances: instances.into_iter().map(summary).collect(),
    }))
}

/// Creates an instance; answers once it accepts its credentials.
#[utoipa::path(
    post,
    path = "/api/v1/templates/{template}/instances/{name}",
    params(("template" = String, Path), ("name" = String, Path)),
    request_body(content = Option<CreateInstance>),
    responses(
        (status = 201, body = Instance),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
        (status = 423, body = ErrorBody),
        (status = 503, body = ErrorBody),
        (status = 504, body = ErrorBody)
    )
)]
async fn create_instance(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (t, n) = names(&path.0, &path.1)?;
    let request: CreateInstance = if body.iter().all(u8::is_ascii_whitespace) {
        CreateInstance::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?
    };
    let ttl = request.ttl.map(Duration::from_secs);
    let i = state.manager.create(&t, &n, ttl).await?;
    Ok(HttpResponse::Created().json(v1_instance(&state, i)))
}

/// One instance with its credentials.
#[utoipa::path(
    get,
    path = "/api/v1/templates/{template}/instances/{name}",
    params(("template" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = Instance), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody))
)]
async fn get_instance(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (t, n) = names(&path.0, &path.1)?;
    let i = state.manager.get(&t, &n).await?;
    Ok(HttpResponse::Ok().json(v1_instance(&state, i)))
}

/// Removes an instance: its container and its data.
#[utoipa::path(
    delete,
    path = "/api/v1/templates/{template}/instances/{name}",
    params(("template" = String, Path), ("name" = String, Path)),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody))
)]
async fn delete_instance(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (t, n) = names(&path.0, &path.1)?;
    state.manager.delete(&t, &n).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The container engine's inspection of the instance's container.
#[utoipa::path(
    get,
    path = "/api/v1/templates/{template}/instances/{name}/container",
    params(("template" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody))
)]
async fn inspect_container(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (t, n) = names(&path.0, &path.1)?;
    let c = state.manager.inspect_container(&t, &n).await?;
    Ok(HttpResponse::Ok().json(c))
}
