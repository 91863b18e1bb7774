//! The import figures (issue 12): dolly against the default-configuration
//! baseline, the ablation, the unchanged skip and the physical import;
//! their targets and their Markdown.

use std::fmt::Write as _;

use serde::Serialize;

use super::{Summary, Target};
use crate::sys::CpuSplit;

/// What a server holds after a load: rows, `CHECKSUM TABLE` and `SHOW
/// CREATE TABLE` of every table, in table order.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct TableState {
    pub rows: Vec<(String, u64)>,
    pub checksums: Vec<(String, String)>,
    pub create_tables: Vec<(String, String)>,
}

impl TableState {
    /// What differs between `self` (named `a`) and `other` (named `b`),
    /// one line per difference; empty when identical.
    pub fn differences(&self, other: &TableState, a: &str, b: &str) -> Vec<String> {
        let mut out = Vec::new();
        if self.rows != other.rows {
            out.push(format!("rows: {a} {:?}, {b} {:?}", self.rows, other.rows));
        }
        if self.checksums != other.checksums {
            out.push(format!(
                "CHECKSUM TABLE: {a} {:?}, {b} {:?}",
                self.checksums, other.checksums
            ));
        }
        let names = |s: &TableState| s.create_tables.iter().map(|(t, _)| t.clone()).collect();
        let (na, nb): (Vec<String>, Vec<String>) = (names(self), names(other));
        if na != nb {
            out.push(format!("tables: {a} {na:?}, {b} {nb:?}"));
        }
        for ((t, x), (_, y)) in self.create_tables.iter().zip(&other.create_tables) {
            if x != y {
                // The first line that differs says enough.
                let (lx, ly) = x
                    .lines()
                    .zip(y.lines())
                    .find(|(p, q)| p != q)
                    .unwrap_or((x.as_str(), y.as_str()));
                out.push(format!(
                    "SHOW CREATE TABLE {t}: {a} `{}`, {b} `{}`",
                    lx.trim(),
                    ly.trim()
                ));
            }
        }
        out
    }
}

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

/// A `mariadb-backup --stream=xbstream` of the baseline's server imported
/// as a template (`dumps/NAMEphys.xbstream`).
#[derive(Debug, Clone, Serialize, Default)]
pub struct Physical {
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
}

#[derive(Debug, Serialize)]
pub struct Import {
    pub template: String,
    pub dump_bytes: u64,
    /// Whether this is the ~1 GB dump (the 5x target).
    pub one_gb: bool,
    pub samples: usize,
    /// dolly's import with its defaults (`template::update`), from call to
    /// return: server start, load, slow shutdown, publish.
    pub dolly: Summary,
    pub dolly_s: Vec<f64>,
    /// `dolly.p50`.
    pub dolly_update_s: f64,
    pub dolly_mb_s: f64,
    pub dolly_template_bytes: u64,
    /// The first sample's CPU (the sampler reads `/proc` every 200 ms).
    pub dolly_cpu: CpuSplit,
    /// CPU of the process running the update (reading, splitting and
    /// streaming the dump to the engine): the bench's own process.
    pub dolly_feed_cpu_s: f64,
    /// CPU of dockerd/containerd/shims/fuse-overlayfs during the update.
    pub dolly_engine_cpu_s: f64,
    /// Machine-wide busy cores during the update (other users included).
    pub dolly_busy_cores: f64,
    /// The `mariadb < dump` part alone, each sample.
    pub baseline: Summary,
    pub baseline_s: Vec<f64>,
    /// `baseline.p50`.
    pub baseline_load_s: f64,
    /// Initialisation, server start and load (first sample).
    pub baseline_total_s: f64,
    pub baseline_mb_s: f64,
    pub baseline_cpu: CpuSplit,
    pub baseline_engine_cpu_s: f64,
    pub baseline_busy_cores: f64,
    /// baseline load p50 / dolly p50 (dolly's figure includes its start and
    /// slow shutdown, so this is conservative).
    pub speedup: f64,
    pub target_speedup: f64,
    pub baseline_state: TableState,
    /// dolly's template through an instance; `None` until checked.
    pub dolly_state: Option<TableState>,
    pub differences: Option<Vec<String>>,
    pub rows_match_generator: bool,
    pub ablation: Vec<ImportVariant>,
    pub skip: Option<Skip>,
    pub physical: Option<Physical>,
}

/// The physical import's target over the SQL import.
pub const PHYSICAL_TARGET: f64 = 10.0;
/// The unchanged skip's target, seconds.
pub const SKIP_TARGET_S: f64 = 1.0;

fn same(d: &Option<Vec<String>>) -> &'static str {
    match d {
        Some(d) if d.is_empty() => "identical",
        Some(_) => "DIFFER",
        None => "not checked",
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn pass_str(p: bool) -> &'static str {
    if p {
        "held"
    } else {
        "missed"
    }
}

impl Import {
    /// Rows, checksums and `SHOW CREATE TABLE` equal to the baseline's.
    pub fn identical(&self) -> Option<bool> {
        self.differences.as_ref().map(|d| d.is_empty())
    }

    fn size(&self) -> String {
        format!("{}, {:.0} MB", self.template, mb(self.dump_bytes))
    }
}

/// The targets of issue 12, from the figures.
pub fn targets(imports: &[Import]) -> Vec<Target> {
    let mut t = Vec::new();
    for i in imports {
        t.push(Target {
            target: format!(
                "import >= {}x default-config `mariadb < dump` ({})",
                i.target_speedup,
                i.size()
            ),
            measured: format!(
                "baseline load {:.1} s / dolly {:.1} s = {:.2}x (p50 of {})",
                i.baseline_load_s, i.dolly_update_s, i.speedup, i.samples
            ),
            pass: Some(i.speedup >= i.target_speedup),
        });
        t.push(Target {
            target: format!(
                "identical rows, CHECKSUM TABLE and SHOW CREATE TABLE of every table ({})",
                i.size()
            ),
            measured: match &i.differences {
                Some(d) if d.is_empty() => "identical".into(),
                Some(d) => d.join("; ").replace('|', "/"),
                None => "not checked (the run stopped before)".into(),
            },
            pass: i.identical(),
        });
        if let Some(s) = &i.skip {
            let without_hash = s.total.p50 - s.hash.p50;
            t.push(Target {
                target: format!(
                    "unchanged dump skipped in < {SKIP_TARGET_S} s, hash cost aside ({})",
                    i.size()
                ),
                measured: format!(
                    "{:.2} s in all = hash {:.2} s ({:.0} MB/s) + image probe {:.2} s + rest {:.2} s",
                    s.total.p50, s.hash.p50, s.hash_mb_s, s.probe.p50, s.rest_s
                ),
                pass: Some(without_hash < SKIP_TARGET_S),
            });
        }
        if let Some(p) = &i.physical {
            let target = format!(
                "physical import >= {PHYSICAL_TARGET}x dolly's SQL import ({})",
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
                            "physical template identical to the SQL template ({})",
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
        }
    }
    t
}

/// The import sections of the report.
pub fn markdown(imports: &[Import], s: &mut String) {
    let _ = writeln!(s, "\n### Import (issue 12)\n");
    let _ = writeln!(
        s,
        "dolly: `template::update` in-process with its defaults, from call to return (server start, load, slow shutdown, publish). Baseline: a default-configuration server of the same image, the same dump piped into `mariadb`, its load alone. Medians of the samples.\n"
    );
    let _ = writeln!(
        s,
        "| Dump | Size | n | dolly import p50 | dolly MB/s | baseline load p50 | baseline MB/s | ratio | target | verdict | rows, CHECKSUM TABLE, SHOW CREATE TABLE |\n|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for i in imports {
        let _ = writeln!(
            s,
            "| {} | {:.0} MB | {} | {:.1} s | {:.1} | {:.1} s | {:.1} | {:.2}x | >= {}x | {} | {}{} |",
            i.template,
            mb(i.dump_bytes),
            i.samples,
            i.dolly_update_s,
            i.dolly_mb_s,
            i.baseline_load_s,
            i.baseline_mb_s,
            i.speedup,
            i.target_speedup,
            pass_str(i.speedup >= i.target_speedup),
            same(&i.differences),
            if i.rows_match_generator {
                ""
            } else {
                " (baseline rows differ from the generator's!)"
            }
        );
    }
    for i in imports {
        for d in i.differences.iter().flatten().take(8) {
            let _ = writeln!(s, "\n{}: {}", i.template, d.replace('|', "/"));
        }
    }
    let _ = writeln!(
        s,
        "\nWhere the import time goes (first sample; CPU seconds from /proc of the container's processes, sampled every 200 ms; 2 cores = 2 CPU-s per s; dolly's client is the longest-lived session):\n"
    );
    let _ = writeln!(
        s,
        "| Import | wall | before load | load window | after load | server CPU | client CPU | feeder CPU (dump reader + splitter + stream, in-process) | engine CPU (dockerd, containerd, shims) | machine busy cores |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    for i in imports {
        let c = &i.dolly_cpu;
        let wall = i.dolly_s.first().copied().unwrap_or(0.0);
        let _ = writeln!(
            s,
            "| dolly {} | {:.1} s | {:.1} s | {:.1} s | {:.1} s | {:.1} s | {:.1} s | {:.1} s | {:.1} s | {:.2} |",
            i.template,
            wall,
            c.load_started_s,
            c.load_window_s,
            (wall - c.load_started_s - c.load_window_s).max(0.0),
            c.server_cpu_s,
            c.client_cpu_s,
            i.dolly_feed_cpu_s,
            i.dolly_engine_cpu_s,
            i.dolly_busy_cores
        );
        let b = &i.baseline_cpu;
        let _ = writeln!(
            s,
            "| baseline {} | {:.1} s | {:.1} s | {:.1} s | - | {:.1} s | {:.1} s | - | {:.1} s (load) | {:.2} (load) |",
            i.template,
            i.baseline_total_s,
            b.load_started_s,
            b.load_window_s,
            b.server_cpu_s,
            b.client_cpu_s,
            i.baseline_engine_cpu_s,
            i.baseline_busy_cores
        );
    }
    ablation_markdown(imports, s);
    skip_markdown(imports, s);
    physical_markdown(imports, s);
}

fn ablation_markdown(imports: &[Import], s: &mut String) {
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

fn skip_markdown(imports: &[Import], s: &mut String) {
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

fn physical_markdown(imports: &[Import], s: &mut String) {
    if imports.iter().all(|i| i.physical.is_none()) {
        return;
    }
    let _ = writeln!(s, "\n#### Physical backup against the SQL dump\n");
    let _ = writeln!(
        s,
        "After the baseline's last load, `mariadb-backup --backup --stream=xbstream` in its container writes `dumps/NAMEphys.xbstream`; `template::update` imports it (extract, prepare, start, slow shutdown, publish). Ratio: dolly's SQL import p50 / the physical import p50. Results: the physical template against dolly's SQL template, both through an instance.\n"
    );
    let _ = writeln!(
        s,
        "| Dump | backup | backup time | n | physical import p50 | SQL import p50 | ratio | target | verdict | results vs SQL template |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    for i in imports {
        let Some(p) = &i.physical else { continue };
        match (&p.error, p.ratio, &p.import) {
            (None, Some(r), Some(imp)) => {
                let _ = writeln!(
                    s,
                    "| {} | {:.0} MB | {:.1} s | {} | {:.1} s | {:.1} s | {r:.1}x | >= {PHYSICAL_TARGET}x | {} | {} |",
                    i.template,
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
                    "| {} | {:.0} MB | {:.1} s | - | not available: {} | {:.1} s | - | >= {PHYSICAL_TARGET}x | - | - |",
                    i.template,
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
        for d in p.differences.iter().flatten().take(8) {
            let _ = writeln!(s, "\n{}: {}", p.template, d.replace('|', "/"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(sum: &str, create: &str) -> TableState {
        TableState {
            rows: vec![("t".into(), 3)],
            checksums: vec![("t".into(), sum.into())],
            create_tables: vec![("t".into(), create.into())],
        }
    }

    #[test]
    fn differences_name_what_differs() {
        let a = state("1", "CREATE TABLE `t` (\n  `id` int,\n  KEY `k` (`id`)\n)");
        assert!(a.differences(&a.clone(), "a", "b").is_empty());
        let b = state("2", "CREATE TABLE `t` (\n  `id` int,\n  KEY `j` (`id`)\n)");
        let d = a.differences(&b, "dolly", "baseline");
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].starts_with("CHECKSUM TABLE"));
        assert!(
            d[1].contains("KEY `k`") && d[1].contains("KEY `j`"),
            "{d:?}"
        );
    }
}
