//! The physical import against the SQL import: figures, targets, table.

use std::fmt::Write as _;

use serde::Serialize;

use super::{mb, pass_str, same, Import, TableState};
use crate::report::{Summary, Target};
use crate::sys::SeenProcess;

/// A `mariadb-backup --stream=xbstream` of the baseline's server imported
/// as a template (`dumps/NAMEphys.xbstream`).
#[derive(Debug, Clone, Serialize, Default)]
pub struct Physical {
    /// "stream" (`.xbstream`) or "folder" (`--target-dir`).
    pub form: String,
    pub template: String,
    pub backup_bytes: u64,
    /// `mariadb-backup --backup` in the baseline container.
    pub backup_s: f64,
    /// Why there is no figure ("not available").
    pub error: Option<String>,
    pub import: Option<Summary>,
    pub samples_s: Vec<f64>,
    pub template_bytes: u64,
    /// dolly's SQL import p50 of the same data.
    pub sql_s: f64,
    /// SQL import p50 / physical import p50.
    pub ratio: Option<f64>,
    pub state: Option<TableState>,
    /// Against dolly's SQL template; `None` until checked.
    pub differences: Option<Vec<String>>,
    /// The first physical import's processes by name (extraction,
    /// prepare, server), from the CPU sampler.
    pub processes: Vec<ProcessWindow>,
    /// That first import's wall time.
    pub first_s: f64,
}

/// When processes of one name ran during an import, and their CPU.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ProcessWindow {
    pub comm: String,
    pub count: usize,
    /// Seconds from the start of sampling (the update call).
    pub first_seen_s: f64,
    pub last_seen_s: f64,
    pub cpu_s: f64,
}

/// The sampled processes grouped by name, in order of appearance; the
/// shell and readiness probes are left out.
pub fn windows(processes: &[SeenProcess]) -> Vec<ProcessWindow> {
    let mut out: Vec<ProcessWindow> = Vec::new();
    let mut sorted = processes.to_vec();
    sorted.sort_by(|a, b| a.first_seen_s.total_cmp(&b.first_seen_s));
    for p in sorted {
        if matches!(p.comm.as_str(), "sh" | "sleep" | "mariadb-admin") {
            continue;
        }
        match out.iter_mut().find(|w| w.comm == p.comm) {
            Some(w) => {
                w.count += 1;
                w.first_seen_s = w.first_seen_s.min(p.first_seen_s);
                w.last_seen_s = w.last_seen_s.max(p.last_seen_s);
                w.cpu_s += p.cpu_s;
            }
            None => out.push(ProcessWindow {
                comm: p.comm,
                count: 1,
                first_seen_s: p.first_seen_s,
                last_seen_s: p.last_seen_s,
                cpu_s: p.cpu_s,
            }),
        }
    }
    out
}

/// The physical import's target over the SQL import.
pub const PHYSICAL_TARGET: f64 = 10.0;

/// The physical import's targets: its ratio and identical results.
pub fn targets(i: &Import, p: &Physical) -> Vec<Target> {
    let mut t = Vec::new();
    let target = format!(
        "physical import ({}) >= {PHYSICAL_TARGET}x dolly's SQL import ({})",
        p.form,
        i.size()
    );
    match (&p.error, p.ratio) {
        (None, Some(r)) => {
            t.push(Target {
                target,
                measured: format!(
                    "SQL {:.1} s / physical {:.1} s = {r:.1}x",
                    p.sql_s,
                    p.import.as_ref().map(|s| s.p50).unwrap_or(0.0)
                ),
                pass: Some(r >= PHYSICAL_TARGET),
            });
            t.push(Target {
                target: format!(
                    "physical template ({}) identical to the SQL template ({})",
                    p.form,
                    i.size()
                ),
                measured: match &p.differences {
                    Some(d) if d.is_empty() => "identical".into(),
                    Some(d) => d.join("; ").replace('|', "/"),
                    None => "not checked".into(),
                },
                pass: p.differences.as_ref().map(|d| d.is_empty()),
            });
        }
        (e, _) => t.push(Target {
            target,
            measured: format!(
                "not available: {}",
                e.as_deref().unwrap_or("no figure").replace('|', "/")
            ),
            pass: None,
        }),
    }
    t
}

/// The table of this part, for every dump that has it.
pub fn markdown(imports: &[Import], s: &mut String) {
    if imports.iter().all(|i| i.physical.is_empty()) {
        return;
    }
    let _ = writeln!(s, "\n#### Physical backup against the SQL dump\n");
    let _ = writeln!(
        s,
        "After the baseline's last load, `mariadb-backup --backup --stream=xbstream` in its container writes `dumps/NAMEphys.xbstream` (form `stream`), and `mariadb-backup --backup --target-dir` writes `dumps/NAMEphysdir/` (form `folder`); `template::update` imports each (stream: extract by `mbstream`; folder: reflink clone; then prepare, start, slow shutdown, publish). Ratio: dolly's SQL import p50 / the physical import p50. Results: the physical template against dolly's SQL template, both through an instance.\n"
    );
    let _ = writeln!(
        s,
        "| Dump | form | backup | backup time | n | physical import p50 | SQL import p50 | ratio | target | verdict | results vs SQL template |\n|---|---|---|---|---|---|---|---|---|---|---|"
    );
    // Rows first, then what each import's processes did: a note between
    // rows would end the table.
    let mut notes = Vec::new();
    for i in imports {
        for p in &i.physical {
            match (&p.error, p.ratio, &p.import) {
                (None, Some(r), Some(imp)) => {
                    let _ = writeln!(
                    s,
                    "| {} | {} | {:.0} MB | {:.1} s | {} | {:.1} s | {:.1} s | {r:.1}x | >= {PHYSICAL_TARGET}x | {} | {} |",
                    i.template,
                    p.form,
                    mb(p.backup_bytes),
                    p.backup_s,
                    imp.n,
                    imp.p50,
                    p.sql_s,
                    pass_str(r >= PHYSICAL_TARGET),
                    same(&p.differences)
                );
                }
                (e, _, _) => {
                    let _ = writeln!(
                    s,
                    "| {} | {} | {:.0} MB | {:.1} s | - | not available: {} | {:.1} s | - | >= {PHYSICAL_TARGET}x | - | - |",
                    i.template,
                    p.form,
                    mb(p.backup_bytes),
                    p.backup_s,
                    e.as_deref()
                        .unwrap_or("no figure")
                        .replace('|', "/")
                        .replace('\n', " "),
                    p.sql_s
                );
                }
            }
            if !p.processes.is_empty() {
                let parts: Vec<String> = p
                    .processes
                    .iter()
                    .map(|w| {
                        format!(
                            "`{}`{} {:.1}-{:.1} s ({:.1} CPU-s)",
                            w.comm,
                            if w.count > 1 {
                                format!(" x{}", w.count)
                            } else {
                                String::new()
                            },
                            w.first_seen_s,
                            w.last_seen_s,
                            w.cpu_s
                        )
                    })
                    .collect();
                notes.push(format!(
                "Where the first physical import of {} went ({:.1} s; processes in its containers, seen every 200 ms, from the call): {}.",
                p.template,
                p.first_s,
                parts.join(", ")
            ));
            }
            for d in p.differences.iter().flatten().take(8) {
                notes.push(format!("{}: {}", p.template, d.replace('|', "/")));
            }
        }
    }
    for n in notes {
        let _ = writeln!(s, "\n{n}");
    }
}
