//! This CLI's version against the dollyd it talks to: every answer of
//! dollyd carries its version ([`dolly_types::VERSION_HEADER`]), so the
//! check costs no request. Another version is a warning on stderr, once per
//! run: the call still goes ahead (the API is versioned by its path).

use std::sync::atomic::{AtomicBool, Ordering};

/// This CLI's version (dollyd and the CLI share the workspace's).
pub const OURS: &str = env!("CARGO_PKG_VERSION");

static WARNED: AtomicBool = AtomicBool::new(false);

/// What to say about dollyd's version `theirs` (`None`: the header was
/// missing from an answer that `is_dolly`'s), if anything.
pub fn warning(url: &str, theirs: Option<&str>, is_dolly: bool) -> Option<String> {
    let fix =
        format!("get the matching CLI with: curl -fsSL -o dolly {url}/cli/dolly && chmod +x dolly");
    match theirs {
        Some(v) if v.trim() == OURS => None,
        Some(v) => Some(format!(
            "dolly: warning: this dolly is {OURS} but dollyd at {url} is {}; {fix}",
            v.trim()
        )),
        None if is_dolly => Some(format!(
            "dolly: warning: dollyd at {url} does not say its version (older than this dolly {OURS}?); {fix}"
        )),
        None => None,
    }
}

/// Prints [`warning`] to stderr, at most once per run.
pub fn check(url: &str, theirs: Option<&str>, is_dolly: bool) {
    if let Some(w) = warning(url, theirs, is_dolly) {
        if !WARNED.swap(true, Ordering::Relaxed) {
            eprintln!("{w}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_another_version_is_a_warning() {
        assert_eq!(warning("http://d:5001", Some(OURS), true), None);
        assert_eq!(warning("http://d:5001", None, false), None);
        let w = warning("http://d:5001", Some("9.9.9"), true).expect("warning");
        assert!(w.contains(&format!(
            "this dolly is {OURS} but dollyd at http://d:5001 is 9.9.9"
        )));
        assert!(
            w.contains("curl -fsSL -o dolly http://d:5001/cli/dolly"),
            "{w}"
        );
        assert_eq!(w.lines().count(), 1);
        let w = warning("http://d:5001", None, true).expect("warning");
        assert!(w.contains("does not say its version"), "{w}");
    }
}
