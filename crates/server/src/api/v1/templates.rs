//! Templates: list, describe, the warm pool's size.

use actix_web::{web, HttpResponse};
use dolly_types::v1::{ErrorBody, Template, TemplateList, TemplatePool};
use dolly_types::TemplateName;

use super::super::{Admin, AppState};
use crate::error::ApiError;

/// Every template with its versions.
#[utoipa::path(get, path = "/api/v1/templates", responses((status = 400, body = ErrorBody), (status = 200, body = TemplateList)))]
pub(super) async fn list_templates(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut templates = Vec::new();
    for t in state.all_templates().await? {
        let mut described = state.describe_template(&t).await?;
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
pub(super) async fn get_template(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let t = TemplateName::parse(&path)?;
    let mut described = state.describe_template(&t).await?;
    described.pool = Some(pool(&state, &t).await?);
    if described.versions.is_empty() && described.last_import.is_none() && !described.importing {
        return Err(dolly_core::instance::InstanceError::TemplateNotFound {
            name: t,
            known: state.templates().await.unwrap_or_default(),
        }
        .into());
    }
    Ok(HttpResponse::Ok().json(described))
}

pub(super) async fn pool(state: &AppState, t: &TemplateName) -> Result<TemplatePool, ApiError> {
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
pub(super) async fn set_pool(
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
