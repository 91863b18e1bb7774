//! The one mapping from domain errors to HTTP: status, stable code, message.
//!
//! Every error answer is `{"error": {"code", "message"}}`. The
//! myaas-compatible routes use the same status and code, and shape the body
//! as myaas did ([`crate::api`]'s `myaas` module).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use dolly_core::instance::InstanceError;
use dolly_core::store::StoreError;
use dolly_core::template::ImportError;
use dolly_engine::EngineError;
use dolly_types::v1::{ErrorBody, ErrorDetail};
use dolly_types::NameError;

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
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("missing or wrong bearer token (Authorization: Bearer ...)")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    /// Another dolly server (a push's remote) refused or failed.
    #[error("{0}")]
    Remote(String),
    /// A push's remote runs another database server version.
    #[error("{0}")]
    RemoteMismatch(String),
    #[error("{0}")]
    BadGateway(String),
    /// `GET /cli/dolly`: no binary to serve (the path is logged, not told).
    #[error("this dollyd has no dolly CLI to serve: its operator installs `dolly` next to dollyd or sets cli_path")]
    CliUnavailable,
}

impl ApiError {
    /// The status and the stable, machine-readable code: the one mapping.
    pub fn classify(&self) -> (StatusCode, &'static str) {
        use StatusCode as S;
        match self {
            ApiError::BadName(_) => (S::BAD_REQUEST, "invalid_name"),
            ApiError::BadRequest(_) => (S::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized => (S::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (S::FORBIDDEN, "forbidden"),
            ApiError::Remote(_) => (S::BAD_GATEWAY, "remote_error"),
            ApiError::RemoteMismatch(_) => (S::CONFLICT, "server_version_mismatch"),
            ApiError::BadGateway(_) => (S::BAD_GATEWAY, "remote_failed"),
            ApiError::CliUnavailable => (S::NOT_FOUND, "cli_not_found"),
            ApiError::Engine(e) => engine(e),
            ApiError::Store(e) => store(e),
            ApiError::Instance(e) => match e {
                InstanceError::TemplateNotFound { .. } => (S::NOT_FOUND, "template_not_found"),
                InstanceError::NotFound(..) => (S::NOT_FOUND, "instance_not_found"),
                InstanceError::SnapshotNotFound(..) => (S::NOT_FOUND, "snapshot_not_found"),
                InstanceError::TemplateImporting(_) => (S::LOCKED, "template_importing"),
                InstanceError::TemplateBusy(_) => (S::CONFLICT, "template_busy"),
                InstanceError::AlreadyExists(..) => (S::CONFLICT, "instance_exists"),
                InstanceError::SnapshotExists(..) => (S::CONFLICT, "snapshot_exists"),
                InstanceError::Protected(..) => (S::CONFLICT, "instance_protected"),
                InstanceError::VersionGone(..) => (S::CONFLICT, "version_gone"),
                InstanceError::ArchiveServerMismatch { .. } => {
                    (S::CONFLICT, "archive_server_mismatch")
                }
                InstanceError::ArchiveDamaged(_) => (S::BAD_REQUEST, "archive_damaged"),
                InstanceError::TtlTooLong(_) => (S::BAD_REQUEST, "ttl_too_long"),
                InstanceError::TtlOutOfRange => (S::BAD_REQUEST, "bad_request"),
                InstanceError::TooMany(_) => (S::TOO_MANY_REQUESTS, "too_many_instances"),
                InstanceError::QuotaReached { .. } => (S::TOO_MANY_REQUESTS, "quota_reached"),
                InstanceError::TooManySnapshots(_) => (S::TOO_MANY_REQUESTS, "too_many_snapshots"),
                InstanceError::SnapshotQuotaReached { .. } => {
                    (S::TOO_MANY_REQUESTS, "snapshot_quota_reached")
                }
                InstanceError::DiskFull { .. } | InstanceError::OutOfSpace(_) => {
                    (S::INSUFFICIENT_STORAGE, "insufficient_storage")
                }
                InstanceError::NotReady { .. } => (S::GATEWAY_TIMEOUT, "instance_not_ready"),
                InstanceError::Engine(e) => engine(e),
                InstanceError::Store(e) => store(e),
                InstanceError::Datadir { .. } => (S::INTERNAL_SERVER_ERROR, "io_error"),
                InstanceError::Promote(e) => import(e),
                InstanceError::NotRunning(..) => (S::CONFLICT, "instance_not_running"),
                InstanceError::Schema(_) => (S::BAD_GATEWAY, "schema_unreadable"),
                InstanceError::ForwarderMissing { .. } => {
                    (S::INTERNAL_SERVER_ERROR, "forwarder_missing")
                }
            },
        }
    }

    /// The engine failed (whatever the operation): what
    /// `dolly_engine_errors_total` counts.
    pub fn engine_error(&self) -> Option<&EngineError> {
        match self {
            ApiError::Engine(e)
            | ApiError::Instance(InstanceError::Engine(e))
            | ApiError::Instance(InstanceError::Promote(ImportError::Engine(e))) => Some(e),
            _ => None,
        }
    }

    pub fn code(&self) -> &'static str {
        self.classify().1
    }

    /// The answer's body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: self.to_string(),
            },
        }
    }
}

fn engine(e: &EngineError) -> (StatusCode, &'static str) {
    match e {
        EngineError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "engine_unavailable"),
        EngineError::ImageMissing(_) | EngineError::ImageUnusable { .. } => {
            (StatusCode::BAD_GATEWAY, "image_missing")
        }
        EngineError::NotFound(_)
        | EngineError::Conflict(_)
        | EngineError::Rejected { .. }
        | EngineError::NoPort(_)
        | EngineError::Protocol(_) => (StatusCode::BAD_GATEWAY, "engine_error"),
    }
}

fn store(e: &StoreError) -> (StatusCode, &'static str) {
    match e {
        _ if e.is_disk_full() => (StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage"),
        StoreError::Corrupt { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "metadata_damaged"),
        StoreError::NewerFormat { .. } => {
            (StatusCode::INTERNAL_SERVER_ERROR, "metadata_newer_format")
        }
        StoreError::Exists(_) => (StatusCode::CONFLICT, "conflict"),
        StoreError::Locked(_) => (StatusCode::CONFLICT, "template_busy"),
        StoreError::InUse { .. } => (StatusCode::CONFLICT, "data_folder_in_use"),
        StoreError::Io { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "io_error"),
    }
}

fn import(e: &ImportError) -> (StatusCode, &'static str) {
    match e {
        ImportError::Busy(..) => (StatusCode::CONFLICT, "template_busy"),
        ImportError::DiskFull { .. } => (StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage"),
        ImportError::Engine(e) => engine(e),
        ImportError::Store(e) => store(e),
        ImportError::Dump(_)
        | ImportError::Server { .. }
        | ImportError::PostScript { .. }
        | ImportError::Empty(_)
        | ImportError::Truncated(_)
        | ImportError::Timeout(..)
        | ImportError::Mask { .. }
        | ImportError::Scrub(_)
        | ImportError::ServerStart(_)
        | ImportError::VersionMismatch { .. }
        | ImportError::PhysicalUnsupported { .. }
        | ImportError::Backup { .. }
        | ImportError::Datadir { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "import_failed"),
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.classify().0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, code) = self.classify();
        if status.is_server_error() {
            tracing::error!(code, error = %self, "request failed");
        }
        if self.engine_error().is_some() {
            dolly_core::metrics::ENGINE_ERRORS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        HttpResponse::build(status).json(self.body())
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use dolly_types::{InstanceName, TemplateName};

    use super::*;

    fn t() -> TemplateName {
        TemplateName::parse("shop").unwrap()
    }
    fn n() -> InstanceName {
        InstanceName::parse("a").unwrap()
    }

    #[test]
    fn each_domain_error_has_its_status_and_code() {
        let cases: Vec<(ApiError, u16, &str)> = vec![
            (
                InstanceError::NotFound(t(), n()).into(),
                404,
                "instance_not_found",
            ),
            (
                InstanceError::TemplateNotFound {
                    name: t(),
                    known: vec![],
                }
                .into(),
                404,
                "template_not_found",
            ),
            (
                InstanceError::AlreadyExists(t(), n()).into(),
                409,
                "instance_exists",
            ),
            (
                InstanceError::Protected(t(), n()).into(),
                409,
                "instance_protected",
            ),
            (
                InstanceError::TemplateImporting(t()).into(),
                423,
                "template_importing",
            ),
            (
                InstanceError::TemplateBusy(t()).into(),
                409,
                "template_busy",
            ),
            (InstanceError::TooMany(3).into(), 429, "too_many_instances"),
            (
                InstanceError::QuotaReached {
                    user: "alice".into(),
                    max: 2,
                }
                .into(),
                429,
                "quota_reached",
            ),
            (
                InstanceError::TooManySnapshots(3).into(),
                429,
                "too_many_snapshots",
            ),
            (
                InstanceError::SnapshotQuotaReached {
                    user: "alice".into(),
                    max: 2,
                }
                .into(),
                429,
                "snapshot_quota_reached",
            ),
            (ApiError::Forbidden("x".into()), 403, "forbidden"),
            (
                InstanceError::DiskFull { free: 1, min: 2 }.into(),
                507,
                "insufficient_storage",
            ),
            (
                InstanceError::OutOfSpace("x".into()).into(),
                507,
                "insufficient_storage",
            ),
            (
                InstanceError::ArchiveDamaged("x".into()).into(),
                400,
                "archive_damaged",
            ),
            (
                InstanceError::ForwarderMissing {
                    path: "/x/dolly-forward".into(),
                    source: std::io::ErrorKind::NotFound.into(),
                }
                .into(),
                500,
                "forwarder_missing",
            ),
            (
                InstanceError::ArchiveServerMismatch {
                    archive: "a".into(),
                    server: "b".into(),
                }
                .into(),
                409,
                "archive_server_mismatch",
            ),
            (
                EngineError::Unavailable("down".into()).into(),
                503,
                "engine_unavailable",
            ),
            (
                InstanceError::Engine(EngineError::Rejected {
                    status: 500,
                    message: "port is already allocated".into(),
                })
                .into(),
                502,
                "engine_error",
            ),
            (ApiError::Unauthorized, 401, "unauthorized"),
            (ApiError::BadRequest("x".into()), 400, "bad_request"),
        ];
        for (e, status, code) in cases {
            assert_eq!(e.classify().0.as_u16(), status, "{e}");
            assert_eq!(e.code(), code, "{e}");
        }
    }

    #[test]
    fn damaged_metadata_is_a_server_error_not_a_not_found() {
        let e: ApiError = InstanceError::Store(StoreError::Corrupt {
            path: PathBuf::from("/d/instances/shop/a/meta.json"),
            reason: "EOF".into(),
        })
        .into();
        assert_eq!(
            e.classify(),
            (StatusCode::INTERNAL_SERVER_ERROR, "metadata_damaged")
        );
    }

    #[test]
    fn a_full_disk_during_promote_is_507() {
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        let e: ApiError = InstanceError::from(StoreError::Io {
            action: "write",
            path: PathBuf::from("/d"),
            source: full,
        })
        .into();
        assert_eq!(e.classify().0, StatusCode::INSUFFICIENT_STORAGE);
        let e: ApiError = InstanceError::Promote(ImportError::DiskFull { free: 0, min: 1 }).into();
        assert_eq!(e.classify().0, StatusCode::INSUFFICIENT_STORAGE);
    }

    #[test]
    fn the_body_carries_code_and_message() {
        let e: ApiError = InstanceError::NotFound(t(), n()).into();
        let body = serde_json::to_value(e.body()).unwrap();
        assert_eq!(body["error"]["code"], "instance_not_found");
        assert_eq!(body["error"]["message"], "instance 'shop/a' does not exist");
    }
}
