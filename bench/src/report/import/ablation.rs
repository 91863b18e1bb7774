//! The ablation's rows: dolly's import with one part at a time.

use std::fmt::Write as _;

use serde::Serialize;

use super::Import;
use crate::report::Summary;

/// One variant of dolly's import (`UpdateOptions`) in the ablation.
#[derive(Debug, Clone, Serialize)]
pub struct ImportVariant {
    pub variant: String,
    /// Client sessions (the `import_jobs` setting when not forced).
    pub jobs: usize,
    pub defer_indexes: bool,
    pub cached_init: bool,
    /// `template::update_with` from call to return, seconds.
    pub seconds: Summary,
    pub samples_s: Vec<f64>,
    /// Baseline load p50 / this p50.
    pub vs_baseline: f64,
    /// "none" p50 / this p50.
    pub vs_none: Option<f64>,
}

/// The table of this part, for every dump that has it.
pub fn markdown(imports: &[Import], s: &mut String) {
    if imports.iter().all(|i| i.ablation.len() < 2) {
        return;
    }
    let _ = writeln!(s, "\n#### What each part of the import buys\n");
    let _ = writeln!(
        s,
        "`template::update_with` with `UpdateOptions {{ force: true, jobs, defer_indexes, cached_init }}`; the samples of all variants are taken in rounds (one of each per round, \"all together\" last, so the template left is the default one); \"all together\" is the import of the table above. Ratios of medians.\n"
    );
    let _ = writeln!(
        s,
        "| Dump | Variant | sessions | deferred indexes | cached init | n | p50 | min | max | vs baseline load | vs none |\n|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for i in imports.iter().filter(|i| i.ablation.len() >= 2) {
        for v in &i.ablation {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {:.1} s | {:.1} s | {:.1} s | {:.2}x | {} |",
                i.template,
                v.variant,
                v.jobs,
                if v.defer_indexes { "on" } else { "off" },
                if v.cached_init { "on" } else { "off" },
                v.seconds.n,
                v.seconds.p50,
                v.seconds.min,
                v.seconds.max,
                v.vs_baseline,
                v.vs_none.map(|r| format!("{r:.2}x")).unwrap_or_default()
            );
        }
    }
}
