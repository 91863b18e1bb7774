//! Named points where a test can make dollyd die as `kill -9` would.
//!
//! `DOLLY_CRASH_AT=reset.swapped dollyd serve` aborts the process (no
//! destructor, no flush, no cleanup: what SIGKILL does) the first time
//! execution reaches `faultpoint::hit("reset.swapped")`. Without the
//! variable, a point costs one comparison. The crash-safety tests
//! (`crates/server/tests/crash.rs`) use it to stop an operation between
//! any two of its steps, then restart dollyd and check what is left.

use std::sync::OnceLock;

fn target() -> Option<&'static str> {
    static TARGET: OnceLock<Option<String>> = OnceLock::new();
    TARGET
        .get_or_init(|| {
            std::env::var("DOLLY_CRASH_AT")
                .ok()
                .filter(|s| !s.is_empty())
        })
        .as_deref()
}

/// Dies here when `DOLLY_CRASH_AT` names this point.
pub fn hit(name: &str) {
    if target() == Some(name) {
        eprintln!("dollyd: DOLLY_CRASH_AT={name}: aborting as kill -9 would");
        std::process::abort();
    }
}
