//! dollyd: throwaway copy-on-write MySQL/MariaDB databases from nightly dumps.
//!
//! See ARCHITECTURE.md for the bird's-eye view. The binary (`src/main.rs`) is
//! a thin shell over [`startup::Application`] and [`template::update`].

pub mod api;
pub mod clone;
pub mod config;
pub mod context;
pub mod dbserver;
pub mod dump;
pub mod engine;
pub mod error;
pub mod instance;
pub mod layout;
pub mod metrics;
pub mod startup;
pub mod telemetry;
pub mod template;

pub use dolly_types as types;
