//! What masking costs: the table.

use std::fmt::Write as _;

use serde::Serialize;

use super::Import;
use crate::report::Summary;

/// The same dump imported three ways, forced, in rounds.
#[derive(Debug, Clone, Serialize)]
pub struct Masking {
    /// dolly's defaults, nothing masked.
    pub plain: Summary,
    pub plain_s: Vec<f64>,
    /// A post script masking the customers, then the clean-up.
    pub post_script: Summary,
    pub post_script_s: Vec<f64>,
    /// A rules file masking the same columns as the rows stream in.
    pub rules: Summary,
    pub rules_s: Vec<f64>,
    pub post_script_overhead_s: f64,
    pub rules_overhead_s: f64,
    pub post_script_template_bytes: u64,
}

pub fn markdown(imports: &[Import], s: &mut String) {
    if imports.iter().all(|i| i.masking.is_none()) {
        return;
    }
    let _ = writeln!(s, "\n#### Masking (issue 23)\n");
    let _ = writeln!(
        s,
        "`update --force` of the same dump: as it is; with `NAME.post.sql` masking the customers' email, name and notes (then the clean-up: every table rebuilt, undo purged, a new redo log); with `NAME.mask.toml` masking the same columns as the rows stream in (email, fake name, null).\n"
    );
    let _ = writeln!(
        s,
        "| Dump | n | plain p50 | post script p50 | cost | rules p50 | cost |\n|---|---|---|---|---|---|---|"
    );
    for i in imports {
        if let Some(m) = &i.masking {
            let _ = writeln!(
                s,
                "| {} | {} | {:.1} s | {:.1} s | {:+.1} s ({:+.0} %) | {:.1} s | {:+.1} s ({:+.0} %) |",
                i.template,
                m.plain.n,
                m.plain.p50,
                m.post_script.p50,
                m.post_script_overhead_s,
                100.0 * m.post_script_overhead_s / m.plain.p50,
                m.rules.p50,
                m.rules_overhead_s,
                100.0 * m.rules_overhead_s / m.plain.p50,
            );
        }
    }
}
