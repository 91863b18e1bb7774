//! Small helpers shared by the measurements.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::dumpgen;

pub const MIB: f64 = 1024.0 * 1024.0;

/// A progress line on standard error.
pub fn log(msg: impl AsRef<str>) {
    eprintln!(
        "[{}] {}",
        chrono::Utc::now().format("%H:%M:%S"),
        msg.as_ref()
    );
}

/// `n` hex digits from a generator seeded by the clock and the pid (the
/// run's container name prefix, bare starts' passwords).
pub fn random_hex(n: usize) -> String {
    let mut rng = dumpgen::Rng::new(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            ^ u64::from(std::process::id()),
    );
    (0..n)
        .map(|_| char::from(b"0123456789abcdef"[rng.below(16) as usize]))
        .collect()
}

/// The workspace's root (where `target/` and `scripts/` are).
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Milliseconds since `t0`.
pub fn ms(t0: Instant) -> f64 {
    t0.elapsed().as_secs_f64() * 1000.0
}
