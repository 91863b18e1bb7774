//! dolly's domain: the data folder, templates and their imports, instances
//! and their lifecycle. No HTTP here; the engine only through
//! [`dolly_engine::Engine`].
//!
//! See ARCHITECTURE.md for the bird's-eye view.

pub mod clone;
pub mod config;
pub mod context;
pub mod dbserver;
pub mod disk_limit;
pub mod dump;
pub mod events;
/// Named crash points (they live in the engine crate, which has one too).
pub use dolly_engine::faultpoint;
#[cfg(any(test, feature = "testing"))]
pub mod fake;
pub mod instance;
pub mod mask;

pub mod metrics;
pub mod remote;
pub mod schema;
pub mod store;
pub mod template;
pub mod users;

pub use dolly_names as names;
