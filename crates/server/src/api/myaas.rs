//! myaas's routes, with its bodies, types and status codes, so its clients
//! (the fabfile, CI scripts) keep working unchanged.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use dolly_core::instance::InstanceState;
use dolly_types::myaas::{CreateForm, Database, DatabaseSummary, Databases, Index, Templates};
use serde::Deserialize;
use serde_json::json;

use super::{names, public_host, AppState, Caller, OwnedInstance};
use crate::error::ApiError;
use crate::routes::Routes;
use dolly_core::instance::{Instance, InstanceError};

pub fn configure(cfg: &mut web::ServiceConfig) {
    Routes::new(cfg, "")
        .get("/", index)
        .get("/templates", templates)
        .get("/db", databases)
        .get("/db/{template}/{name}", inspect)
        .post("/db/{template}/{name}", create)
        .delete("/db/{template}/{name}", remove);
}

/// myaas's error shape through the one mapping ([`ApiError::classify`]):
/// a missing instance is myaas's bare `{"status": "Not found"}`; bad input
/// is dolly's JSON error; anything else is dolly's error object plus
/// myaas's `status` message.
fn myaas_error(e: ApiError) -> HttpResponse {
    let (status, _) = e.classify();
    if matches!(e, ApiError::Instance(InstanceError::NotFound(..))) {
        return HttpResponse::NotFound().json(json!({"status": "Not found"}));
    }
    if status.is_client_error() && status != StatusCode::NOT_FOUND && status != StatusCode::LOCKED {
        return e.error_response();
    }
    let message = match &e {
        ApiError::Instance(InstanceError::TemplateImporting(_)) => {
            "Database not available, content is being imported.".to_owned()
        }
        ApiError::Instance(InstanceError::TemplateNotFound { name, .. }) => {
            format!("Template \"{name}\" does not exist.")
        }
        other => other.to_string(),
    };
    if status.is_server_error() {
        // Logged and counted as every other error answer.
        let _ = e.error_response();
    }
    let mut body = serde_json::to_value(e.body()).unwrap_or_else(|_| json!({}));
    body["status"] = json!(message);
    HttpResponse::build(status).json(body)
}

async fn template_names(state: &AppState) -> Result<Vec<String>, ApiError> {
    let list = state.templates().await?;
    Ok(list.into_iter().map(String::from).collect())
}

async fn index(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let templates = template_names(&state).await?;
    let databases = state
        .visible(&caller, None)
        .await?
        .into_iter()
        .map(|i| format!("{},{}", i.meta.template, i.meta.name))
        .collect();
    Ok(HttpResponse::Ok().json(Index {
        status: "Service is running".to_owned(),
        templates,
        databases,
    }))
}

async fn templates(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(Templates {
        templates: template_names(&state).await?,
    }))
}

async fn databases(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let databases = state
        .visible(&caller, None)
        .await?
        .into_iter()
        .map(|i| DatabaseSummary {
            template: i.meta.template.to_string(),
            name: i.meta.name.to_string(),
            state: i.status,
            created: i.meta.created_at.timestamp(),
            expires_at: i.meta.expires_at.map(|e| e.timestamp().to_string()),
        })
        .collect();
    Ok(HttpResponse::Ok().json(Databases { databases }))
}

fn database(state: &AppState, i: Instance) -> Database {
    Database {
        database: i.meta.database,
        host: public_host(state).to_owned(),
        name: i.meta.name.to_string(),
        port: i.port.map(|p| p.to_string()).unwrap_or_default(),
        user: dolly_core::instance::USER.to_owned(),
        password: i.meta.password,
        running: i.state == InstanceState::Running,
        status: i.status,
        created: i.meta.created_at.timestamp(),
        expires_at: i.meta.expires_at.map(|e| e.timestamp().to_string()),
    }
}

#[derive(Deserialize)]
struct InspectQuery {
    all: Option<String>,
}

async fn inspect(
    state: web::Data<AppState>,
    owned: Result<OwnedInstance, ApiError>,
    query: web::Query<InspectQuery>,
) -> HttpResponse {
    let result = async {
        let owned = owned?;
        // myaas: any non-empty `all` asks for the engine's inspection.
        if query.all.as_deref().is_some_and(|a| !a.is_empty()) {
            let container = owned.inspect_container().await?;
            return Ok(HttpResponse::Ok().json(json!({ "container": container })));
        }
        let i = owned.get().await?;
        Ok::<_, ApiError>(HttpResponse::Ok().json(database(&state, i)))
    }
    .await;
    result.unwrap_or_else(myaas_error)
}

/// `ttl` from a form field or a JSON body: a number or a numeric string.
fn parse_ttl(req: &HttpRequest, body: &[u8]) -> Result<Option<Duration>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let form: CreateForm = if content_type.starts_with("application/json") {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?
    } else {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|e| ApiError::BadRequest(format!("invalid form body: {e}")))?;
        CreateForm {
            ttl: pairs
                .into_iter()
                .find(|(k, _)| k == "ttl")
                .map(|(_, v)| serde_json::Value::String(v)),
        }
    };
    let secs = match form.ttl {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) if s.is_empty() => return Ok(None),
        Some(serde_json::Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(_) => None,
    };
    match secs {
        Some(s) => Ok(Some(Duration::from_secs(s))),
        None => Err(ApiError::BadRequest(
            "ttl must be a whole number of seconds".to_owned(),
        )),
    }
}

async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let result = async {
        let (t, n) = names(&path.0, &path.1)?;
        let ttl = parse_ttl(&req, &body)?;
        match state
            .create(&caller, &t, &n, ttl, state.create_options(None, None))
            .await
        {
            Ok(i) => Ok(HttpResponse::Created().json(database(&state, i))),
            // myaas: 304 with no body when it exists.
            Err(InstanceError::AlreadyExists(..)) => Ok(HttpResponse::NotModified().finish()),
            Err(e) => Err(ApiError::from(e)),
        }
    }
    .await;
    result.unwrap_or_else(myaas_error)
}

async fn remove(owned: Result<OwnedInstance, ApiError>) -> HttpResponse {
    let result = async {
        owned?.delete(false).await?;
        Ok::<_, ApiError>(HttpResponse::NoContent().finish())
    }
    .await;
    result.unwrap_or_else(myaas_error)
}
