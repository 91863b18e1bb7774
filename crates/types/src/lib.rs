//! The wire types of dolly's REST API, shared by `dollyd` and the `dolly` CLI.
//!
//! Serde only: this crate never pulls in the server's dependencies. The
//! `openapi` feature derives OpenAPI schemas for the server's document.

pub mod human;
pub mod myaas;
pub mod v1;

/// The names, re-exported so the CLI and the server name them as the wire does.
pub use dolly_names as names;
pub use dolly_names::{InstanceName, NameError, SnapshotName, TemplateName, VersionName};

/// The response header in which dollyd gives its version (every answer of
/// its own), so the CLI can warn when it is another version than its own
/// without a request of its own.
pub const VERSION_HEADER: &str = "x-dolly-version";
