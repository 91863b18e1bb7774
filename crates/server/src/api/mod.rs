//! The HTTP API: myaas-compatible routes, `/api/v1`, health and readiness.
//!
//! Invariant: this layer knows nothing of the container engine's API; it
//! talks to [`instance::Manager`] and [`template`], parses every path
//! segment into a name type before anything else happens, and turns errors
//! into answers only through [`crate::error::ApiError`].

mod access;
mod caller;
mod cli;
mod conformance;
mod myaas;
mod push;
mod v1;

use crate::error::ApiError;
use crate::wire::ToWire;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest, HttpResponse};
use dolly_core::instance::Instance;
use dolly_core::users::Resolved;
use dolly_types::v1::{ErrorDetail, Readiness};
use dolly_types::{InstanceName, TemplateName};
use serde::Serialize;

pub use access::{Admin, AppState, OwnedInstance, OwnedSnapshot};
pub use caller::{reload_users_on_sighup, Caller};
pub use conformance::{head_as_get, json_errors, version_header};
pub use v1::ApiDoc;

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Routes anyone may call, token or not: the probes, and the download of
/// the CLI (public by design, see [`cli`]).
const OPEN_ROUTES: [&str; 4] = ["/healthz", "/readyz", cli::ROUTES[0], cli::ROUTES[1]];

/// With a configured token or users, every other route needs
/// `Authorization: Bearer TOKEN`, compared in constant time. The caller it
/// stands for goes into the request's extensions ([`Caller`]), and every
/// state change is logged with the caller's name (never the token) and
/// counted by user.
pub async fn require_token(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if OPEN_ROUTES.contains(&req.path()) {
        return next.call(req).await;
    }
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Err(ApiError::Unauthorized.into());
    };
    let given = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let caller = match state.users.resolve(given) {
        Resolved::Open => Caller::open(),
        Resolved::Actor(a) => Caller::user(a),
        Resolved::Refused if is_scraper(&state, req.path(), given) => Caller::metrics_scraper(),
        Resolved::Refused => return Err(ApiError::Unauthorized.into()),
    };
    actix_web::HttpMessage::extensions_mut(&req).insert(caller.clone());
    let method = req.method().clone();
    let res = next.call(req).await?;
    caller::audit(&state, &caller, &method, &res);
    Ok(res)
}

/// `GET /metrics` with the `metrics_token` (compared in constant time).
fn is_scraper(state: &AppState, path: &str, given: Option<&str>) -> bool {
    let wanted = state.settings().metrics_token.as_ref();
    match (path, wanted, given) {
        ("/metrics", Some(w), Some(g)) => bool::from(subtle::ConstantTimeEq::ct_eq(
            w.expose().as_bytes(),
            g.as_bytes(),
        )),
        _ => false,
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(BODY_LIMIT)
            .error_handler(|e, _| bad_request(e.to_string())),
    )
    .app_data(web::PayloadConfig::new(BODY_LIMIT))
    .app_data(web::QueryConfig::default().error_handler(|e, _| bad_request(e.to_string())))
    .app_data(web::PathConfig::default().error_handler(|e, _| bad_request(e.to_string())))
    .configure(|cfg| {
        crate::routes::Routes::new(cfg, "")
            .get("/healthz", healthz)
            .get("/readyz", readyz)
            .get("/metrics", metrics);
    })
    .configure(cli::configure)
    .configure(myaas::configure)
    .service(web::scope("/api/v1").configure(v1::configure))
    .default_service(web::to(not_found));
}

fn bad_request(message: String) -> actix_web::Error {
    ApiError::BadRequest(message).into()
}

/// Parses raw path segments into names: the only door from input to names.
fn names(t: &str, n: &str) -> Result<(TemplateName, InstanceName), ApiError> {
    Ok((TemplateName::parse(t)?, InstanceName::parse(n)?))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let r = state.readiness().await;
    let engine = match r.engine {
        Ok(()) => "ok".to_owned(),
        Err(e) => e.to_string(),
    };
    let data_dir = match r.data_dir {
        Ok(()) => "ok".to_owned(),
        Err(e) => format!("data folder not writable: {e}"),
    };
    let ready = engine == "ok" && data_dir == "ok";
    let body = Readiness {
        ready,
        engine,
        data_dir,
    };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus text format: admins only (or the `metrics_token`), since
/// it counts every user's instances and operations by name.
async fn metrics(admin: Admin) -> Result<HttpResponse, ApiError> {
    let mut snap = dolly_core::metrics::Snapshot::default();
    for i in admin.manager().list(None).await? {
        let state = crate::wire::state_name(i.state).to_owned();
        *snap
            .instances
            .entry((i.meta.template.to_string(), state))
            .or_default() += 1;
    }
    let (free_disk, templates) = admin.manager().template_figures().await?;
    snap.free_disk = free_disk;
    snap.templates = templates;
    for t in &mut snap.templates {
        if let Ok(name) = dolly_types::TemplateName::parse(&t.name) {
            let pool = admin.manager().pool_status(&name).await?;
            (t.pool_size, t.pool_ready) = (pool.size, pool.ready);
        }
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(admin.manager().metrics().render(snap)))
}

#[derive(Serialize)]
struct NotFoundBody {
    status: &'static str,
    error: ErrorDetail,
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    HttpResponse::NotFound().json(NotFoundBody {
        status: "Not found",
        error: ErrorDetail {
            code: "not_found".into(),
            message: format!("no route for {} {}", req.method(), req.path()),
        },
    })
}

/// The host clients connect to.
fn public_host(state: &AppState) -> &str {
    &state.settings().public_host
}

fn v1_instance(state: &AppState, i: Instance) -> dolly_types::v1::Instance {
    let standby_status = standby_status(&i.meta, i.standby_memory);
    let sleep_after = i.meta.forward.as_ref().and_then(|f| f.sleep_after);
    dolly_types::v1::Instance {
        template: i.meta.template,
        name: i.meta.name,
        template_version: i.meta.version,
        host: public_host(state).to_owned(),
        port: i.port.unwrap_or(0),
        user: dolly_core::instance::USER.to_owned(),
        password: i.meta.password,
        database: i.meta.database,
        state: i.state.to_wire(),
        created_at: i.meta.created_at,
        expires_at: i.meta.expires_at,
        protected: i.meta.protected,
        owner: i.meta.owner,
        stopped_reason: i.meta.stopped_reason,
        problem: i.meta.broken,
        standby: i.via_standby,
        standby_status,
        sleep_after,
    }
}

/// The standby of an instance that keeps one.
fn standby_status(
    m: &dolly_core::instance::InstanceMeta,
    memory_bytes: Option<u64>,
) -> Option<dolly_types::v1::StandbyStatus> {
    let f = m.forward.as_ref().filter(|f| f.standby)?;
    Some(dolly_types::v1::StandbyStatus {
        ready: f.spare.as_ref().is_some_and(|s| s.ready),
        memory_bytes,
    })
}
