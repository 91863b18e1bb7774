//! The one mapping from domain errors to HTTP: status, stable code, message.
//!
//! Every error answer is `{"error": {"code", "message"}}`, except on the
//! myaas-compatible routes, whose 404 keeps myaas's `{"status": "Not found"}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use dolly_types::v1::{ErrorBody, ErrorDetail};
use dolly_types::NameError;

use dolly_core::instance::InstanceError;
use dolly_engine::EngineError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    BadName(#[from] NameError),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Instance(#[from] InstanceError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("{0}")]
    Internal(String),
    #[error("missing or wrong bearer token (Authorization: Bearer ...)")]
    Unauthorized,
}

impl ApiError {
    /// A stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadName(_) => "invalid_name",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Instance(e) => match e {
                InstanceError::TemplateNotFound { .. } => "template_not_found",
                InstanceError::TemplateImporting(_) => "template_importing",
                InstanceError::AlreadyExists(..) => "instance_exists",
                InstanceError::NotFound(..) => "instance_not_found",
                InstanceError::NotReady { .. } => "instance_not_ready",
                InstanceError::SnapshotNotFound(..) => "snapshot_not_found",
                InstanceError::SnapshotExists(..) => "snapshot_exists",
                InstanceError::Protected(..) => "instance_protected",
                InstanceError::TtlTooLong(_) => "ttl_too_long",
                InstanceError::VersionGone(..) => "version_gone",
                InstanceError::Conflict(_) => "conflict",
                InstanceError::TooMany(_) => "too_many_instances",
                InstanceError::DiskFull { .. } => "insufficient_storage",
                InstanceError::Engine(e) => engine_code(e),
                InstanceError::Io { .. } => "io_error",
            },
            ApiError::Engine(e) => engine_code(e),
            ApiError::Internal(_) => "internal",
            ApiError::Unauthorized => "unauthorized",
        }
    }

    /// Whether this is a "not found" of any kind.
    pub fn is_not_found(&self) -> bool {
        self.status_code() == StatusCode::NOT_FOUND
    }
}

fn engine_code(e: &EngineError) -> &'static str {
    match e {
        EngineError::Unavailable(_) => "engine_unavailable",
        EngineError::ImageMissing(_) => "image_missing",
        _ => "engine_error",
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadName(_) | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Instance(e) => match e {
                InstanceError::TemplateNotFound { .. }
                | InstanceError::NotFound(..)
                | InstanceError::SnapshotNotFound(..) => StatusCode::NOT_FOUND,
                InstanceError::SnapshotExists(..)
                | InstanceError::Protected(..)
                | InstanceError::VersionGone(..)
                | InstanceError::Conflict(_) => StatusCode::CONFLICT,
                InstanceError::TtlTooLong(_) => StatusCode::BAD_REQUEST,
                InstanceError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
                InstanceError::DiskFull { .. } => StatusCode::INSUFFICIENT_STORAGE,
                InstanceError::TemplateImporting(_) => StatusCode::LOCKED,
                InstanceError::AlreadyExists(..) => StatusCode::CONFLICT,
                InstanceError::NotReady { .. } => StatusCode::GATEWAY_TIMEOUT,
                InstanceError::Engine(e) => engine_status(e),
                InstanceError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::Engine(e) => engine_status(e),
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(code = self.code(), error = %self, "request failed");
        }
        if self.code().starts_with("engine") {
            dolly_core::metrics::ENGINE_ERRORS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        HttpResponse::build(status).json(ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: self.to_string(),
            },
        })
    }
}

fn engine_status(e: &EngineError) -> StatusCode {
    match e {
        EngineError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_GATEWAY,
    }
}
