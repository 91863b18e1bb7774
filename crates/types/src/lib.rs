//! The wire types of dolly's REST API, shared by `dollyd` and the `dolly` CLI.
//!
//! Serde only: this crate never pulls in the server's dependencies. The
//! `openapi` feature derives OpenAPI schemas for the server's document.

pub mod myaas;
pub mod names;
pub mod v1;

pub use names::{InstanceName, NameError, SnapshotName, TemplateName, VersionName};
