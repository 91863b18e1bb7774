//! The caller of a request ([`Caller`], put in the request's extensions by
//! [`super::require_token`]), the audit of state changes, and the reload
//! of `users_file` on SIGHUP.

use std::future::{ready, Ready};
use std::sync::Arc;

use actix_web::dev::{Payload, ServiceResponse};
use actix_web::http::Method;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use dolly_core::users::{Actor, Users};
use tracing::{error, info};

use super::AppState;
use crate::error::ApiError;

/// Who is calling: a user, the `auth_token`'s admin, or (no auth
/// configured) anyone, who acts as an admin and owns nothing.
#[derive(Debug, Clone)]
pub struct Caller(Option<Actor>);

impl Caller {
    pub fn open() -> Self {
        Caller(None)
    }

    pub fn user(actor: Actor) -> Self {
        Caller(Some(actor))
    }

    /// The holder of the `metrics_token` on `GET /metrics` (the only route
    /// it is accepted on): an admin there, named `metrics`.
    pub fn metrics_scraper() -> Self {
        Caller(Some(Actor {
            name: "metrics".to_owned(),
            role: dolly_core::users::Role::Admin,
            max_instances: Some(0),
            max_snapshots: Some(0),
        }))
    }

    /// The actor, `None` when no auth is configured.
    pub fn actor(&self) -> Option<&Actor> {
        self.0.as_ref()
    }

    /// The name the audit log and metrics use.
    pub fn name(&self) -> &str {
        self.0.as_ref().map_or("anonymous", |a| a.name.as_str())
    }

    pub fn is_admin(&self) -> bool {
        self.0.as_ref().is_none_or(Actor::is_admin)
    }

    /// Whether this caller sees an instance owned by `owner`.
    pub fn may_access(&self, owner: Option<&str>) -> bool {
        self.0.as_ref().is_none_or(|a| a.may_access(owner))
    }

    /// Refuses (403) what only admins may do.
    pub fn require_admin(&self, what: &str) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "only admins may {what} (user '{}' is a member)",
                self.name()
            )))
        }
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Caller>()
                .cloned()
                .ok_or(ApiError::Unauthorized),
        )
    }
}

/// Logs a state change (any method but GET/HEAD/OPTIONS) with the
/// caller's name and its outcome; counts the successful ones by user.
pub(super) fn audit<B>(
    state: &AppState,
    caller: &Caller,
    method: &Method,
    res: &ServiceResponse<B>,
) {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return;
    }
    let path = res.request().path().to_owned();
    let pattern = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| path.clone());
    let op = operation(method, &pattern);
    let status = res.status().as_u16();
    let ok = res.status().is_success() || res.status().is_redirection();
    if ok {
        state.metrics().by_user(caller.name(), &op);
    }
    info!(
        target: "dolly::audit",
        user = caller.name(),
        operation = %op,
        %method,
        %path,
        status,
        ok,
        "audit"
    );
}

/// A short operation name from a route pattern: `create`, `delete`,
/// `snapshot`, `snapshot_delete`, or the route's last word (`extend`,
/// `reset`, `push`, ...).
pub(super) fn operation(method: &Method, pattern: &str) -> String {
    let segments: Vec<&str> = pattern.trim_matches('/').split('/').collect();
    let ui = segments.first() == Some(&"ui");
    let last = segments.last().copied().unwrap_or("");
    let op = if last.starts_with('{') {
        // The last word before the trailing placeholders.
        let kind = segments
            .iter()
            .rev()
            .find(|s| !s.starts_with('{'))
            .copied()
            .unwrap_or("");
        match (method, kind) {
            (&Method::POST, "instances" | "db") => "create".to_owned(),
            (&Method::DELETE, "instances" | "db") => "delete".to_owned(),
            (&Method::POST, "snapshots") => "snapshot".to_owned(),
            (&Method::DELETE, "snapshots") => "snapshot_delete".to_owned(),
            _ => format!("{} {kind}", method.as_str().to_lowercase()),
        }
    } else if last.is_empty() {
        method.as_str().to_lowercase()
    } else {
        last.to_owned()
    };
    if ui {
        format!("ui_{op}")
    } else {
        op
    }
}

/// Reads `users_file` again on every SIGHUP (beside the TLS reload, which
/// has its own listener). A bad file keeps the users being served.
pub async fn reload_users_on_sighup(users: Arc<Users>) {
    let Some(file) = users.file().map(|f| f.display().to_string()) else {
        return;
    };
    let mut hangups = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            error!("cannot listen for SIGHUP; users_file will not be reloaded: {e}");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        match users.reload() {
            Ok(count) => info!(users_file = %file, users = count, "SIGHUP: users reloaded"),
            Err(e) => error!("SIGHUP: users not reloaded, still serving the previous ones: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_named_from_routes() {
        let cases = [
            (
                Method::POST,
                "/api/v1/templates/{template}/instances/{name}",
                "create",
            ),
            (
                Method::DELETE,
                "/api/v1/templates/{template}/instances/{name}",
                "delete",
            ),
            (Method::POST, "/db/{template}/{name}", "create"),
            (Method::DELETE, "/db/{template}/{name}", "delete"),
            (
                Method::POST,
                "/api/v1/templates/{template}/instances/{name}/snapshots/{snapshot}",
                "snapshot",
            ),
            (
                Method::POST,
                "/api/v1/templates/{template}/instances/{name}/snapshots/{snapshot}/push",
                "push",
            ),
            (
                Method::POST,
                "/api/v1/templates/{template}/instances/{name}/reset",
                "reset",
            ),
            (Method::PUT, "/api/v1/templates/{template}/pool", "pool"),
        ];
        for (m, p, want) in cases {
            assert_eq!(operation(&m, p), want, "{m} {p}");
        }
    }
}
