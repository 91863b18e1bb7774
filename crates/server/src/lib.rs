//! dollyd: the HTTP API over [`dolly_core`], and the binary's building blocks.
//!
//! See ARCHITECTURE.md for the bird's-eye view. The binary (`src/main.rs`) is
//! a thin shell over [`startup::Application`] and [`dolly_core::template::update`].

pub mod api;
pub mod error;
pub mod startup;
pub mod telemetry;
pub mod tls;
pub mod ui;
pub mod webhooks;

pub use dolly_core as core;
pub use dolly_core::types;
pub use dolly_engine as engine;
