//! dollyd: the HTTP API over [`dolly_core`], and the binary's building blocks.
//!
//! See ARCHITECTURE.md for the bird's-eye view. The binary (`src/main.rs`) is
//! a thin shell over [`startup::Application`] and [`dolly_core::template::update`].

pub mod api;
pub mod error;
pub mod routes;
pub mod startup;
pub mod telemetry;
pub mod tls;
pub mod ui;
pub mod webhooks;
pub mod wire;

pub use dolly_core as core;
pub use dolly_engine as engine;
pub use dolly_types as types;

/// Installs ring as the process's rustls crypto provider (idempotent).
/// rustls needs one per process; where the workspace's builds unify
/// reqwest's `rustls-no-provider` feature (the CLI's) into dollyd's and its
/// tests' clients, building a client without one panics.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
