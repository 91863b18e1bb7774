//! Named points where a test can make dollyd die as `kill -9` would.
//!
//! `DOLLY_CRASH_AT=reset.swapped dollyd serve` aborts the process (no
//! destructor, no flush, no cleanup: what SIGKILL does) the first time
//! execution reaches `faultpoint::hit("reset.swapped")`;
//! `DOLLY_CRASH_AT=server.running#3` the third time (points shared by
//! several operations, such as a server's start, are reached by the set-up
//! first). Without the variable, a point costs one comparison. The
//! crash-safety tests (`crates/server/tests/engine/crash.rs`) use it to stop an
//! operation between any two of its steps, then restart dollyd and check
//! what is left.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The point to die at and at which of its hits (1: the first).
fn target() -> Option<&'static (String, usize)> {
    static TARGET: OnceLock<Option<(String, usize)>> = OnceLock::new();
    TARGET
        .get_or_init(|| {
            let v = std::env::var("DOLLY_CRASH_AT").ok()?;
            parse(&v)
        })
        .as_ref()
}

/// `name` or `name#N` (N ≥ 1).
fn parse(v: &str) -> Option<(String, usize)> {
    if v.is_empty() {
        return None;
    }
    match v.rsplit_once('#') {
        Some((name, n)) => match n.parse::<usize>() {
            Ok(n) if n >= 1 && !name.is_empty() => Some((name.to_owned(), n)),
            _ => Some((v.to_owned(), 1)),
        },
        None => Some((v.to_owned(), 1)),
    }
}

/// Dies here when `DOLLY_CRASH_AT` names this point (at its Nth hit).
pub fn hit(name: &str) {
    static HITS: AtomicUsize = AtomicUsize::new(0);
    let Some((point, nth)) = target() else {
        return;
    };
    if point != name {
        return;
    }
    if HITS.fetch_add(1, Ordering::SeqCst) + 1 == *nth {
        eprintln!("dollyd: DOLLY_CRASH_AT={name}#{nth}: aborting as kill -9 would");
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn a_point_is_named_with_an_optional_ordinal() {
        assert_eq!(parse(""), None);
        assert_eq!(parse("reset.swapped"), Some(("reset.swapped".into(), 1)));
        assert_eq!(
            parse("server.running#3"),
            Some(("server.running".into(), 3))
        );
        assert_eq!(parse("odd#0"), Some(("odd#0".into(), 1)));
    }
}
