//! The unchanged skip's figures, target and table.

use std::fmt::Write as _;

use serde::Serialize;

use super::{mb, pass_str, Import};
use crate::report::{Summary, Target};

/// `update` without `--force` on the unchanged dump.
#[derive(Debug, Clone, Serialize)]
pub struct Skip {
    /// `template::update` from call to return on a fresh context, as
    /// `dollyd update NAME` runs it (the image is probed once per process).
    pub total: Summary,
    pub total_s: Vec<f64>,
    /// The image probe alone (a fresh context's `image()`).
    pub probe: Summary,
    /// `dump::hash_file` of the dump alone.
    pub hash: Summary,
    pub hashed_bytes: u64,
    pub hash_mb_s: f64,
    /// total p50 - probe p50 - hash p50: the store (lock, metadata), the
    /// post scripts' hashes, the last-import record.
    pub rest_s: f64,
}

/// The unchanged skip's target, seconds.
pub const SKIP_TARGET_S: f64 = 1.0;

/// The unchanged skip's target (issue 12: "hash cost aside").
pub fn target(i: &Import, s: &Skip) -> Target {
    let without_hash = s.total.p50 - s.hash.p50;
    Target {
        target: format!(
            "unchanged dump skipped in < {SKIP_TARGET_S} s, hash cost aside ({})",
            i.size()
        ),
        measured: format!(
            "{:.2} s in all = hash {:.2} s ({:.0} MB/s) + image probe {:.2} s + rest {:.2} s",
            s.total.p50, s.hash.p50, s.hash_mb_s, s.probe.p50, s.rest_s
        ),
        pass: Some(without_hash < SKIP_TARGET_S),
    }
}

/// The skip's table.
pub fn markdown(imports: &[Import], s: &mut String) {
    if imports.iter().all(|i| i.skip.is_none()) {
        return;
    }
    let _ = writeln!(s, "\n#### Unchanged dump: `update` without `--force`\n");
    let _ = writeln!(
        s,
        "Each sample on a fresh context, as `dollyd update NAME` runs it: the image probe (one container run per process), the SHA-256 of the dump (`dump::hash_file`, measured apart on the same file), then the store (lock, current version's metadata, last-import record).\n"
    );
    let _ = writeln!(
        s,
        "| Dump | n | skip p50 | hash p50 | hash MB/s | image probe p50 | rest | < {SKIP_TARGET_S} s in all | < {SKIP_TARGET_S} s hash aside |\n|---|---|---|---|---|---|---|---|---|"
    );
    for i in imports {
        if let Some(k) = &i.skip {
            let _ = writeln!(
                s,
                "| {} | {} | {:.2} s | {:.2} s ({:.0} MB) | {:.0} | {:.2} s | {:.2} s | {} | {} |",
                i.template,
                k.total.n,
                k.total.p50,
                k.hash.p50,
                mb(k.hashed_bytes),
                k.hash_mb_s,
                k.probe.p50,
                k.rest_s,
                pass_str(k.total.p50 < SKIP_TARGET_S),
                pass_str(k.total.p50 - k.hash.p50 < SKIP_TARGET_S)
            );
        }
    }
}
