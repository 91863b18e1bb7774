//! Log setup: human lines by default, JSON with `DOLLY_LOG_FORMAT=json`;
//! `RUST_LOG` filters (default `info`).

use std::io::IsTerminal;

use tracing_subscriber::{fmt, EnvFilter};

use dolly_core::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal: a container's log, a file or
    // a pipe gets plain text that grep and log shippers read as written.
    let ansi = std::io::stderr().is_terminal();
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    // Already initialised (tests): keep the first one.
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
