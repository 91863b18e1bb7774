//! How people read and write times and sizes, the same in the CLI and the
//! web UI: one duration parser (`--ttl`, the UI's TTL field) and one set of
//! formatters (relative times, binary sizes).

mod duration;
mod format;

pub use duration::{parse_ttl, whole_seconds};
pub use format::*;
