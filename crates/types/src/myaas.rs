//! Bodies of the myaas-compatible routes, field for field as myaas sends them.
//!
//! myaas took `created` from the engine's container list (Unix seconds), the
//! port from the engine's `HostPort` (a string) and `expires_at` from a label
//! (a string of Unix seconds); clients depend on those types.

use serde::{Deserialize, Serialize};

/// `GET /`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Index {
    pub status: String,
    pub templates: Vec<String>,
    /// `"template,name"` for every instance.
    pub databases: Vec<String>,
}

/// `GET /templates`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Templates {
    pub templates: Vec<String>,
}

/// One entry of `GET /db`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatabaseSummary {
    pub template: String,
    pub name: String,
    /// The engine's human status, e.g. `Up 3 minutes`.
    pub state: String,
    /// Unix seconds.
    pub created: i64,
    /// Unix seconds, as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// `GET /db`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Databases {
    pub databases: Vec<DatabaseSummary>,
}

/// `GET /db/{template}/{name}` and the body of a 201 from `POST`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Database {
    /// The database name inside the server.
    pub database: String,
    pub host: String,
    /// The instance's name.
    pub name: String,
    /// The host port, as a string (the engine's `HostPort`).
    pub port: String,
    pub user: String,
    pub password: String,
    pub running: bool,
    pub status: String,
    /// Unix seconds.
    pub created: i64,
    /// Unix seconds, as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// `{"status": "..."}`: myaas's 404 body and its other status messages.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Status {
    pub status: String,
}

/// `POST /db/{template}/{name}` body (form or JSON).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateForm {
    /// Seconds until the instance expires; a number or a numeric string.
    #[serde(default)]
    pub ttl: Option<serde_json::Value>,
}
