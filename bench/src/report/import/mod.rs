//! The import figures (issue 12): dolly against the default-configuration
//! baseline, the ablation, the unchanged skip and the physical import;
//! their targets and their Markdown.

use std::fmt::Write as _;

use serde::Serialize;

mod ablation;
mod masking;
mod physical;
mod skip;

pub use ablation::ImportVariant;
pub use masking::Masking;
pub use physical::{windows, Physical};
pub use skip::Skip;

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
    /// What masking costs (`--masking`), on the first dump.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masking: Option<Masking>,
    pub physical: Vec<Physical>,
}

pub(super) fn same(d: &Option<Vec<String>>) -> &'static str {
    match d {
        Some(d) if d.is_empty() => "identical",
        Some(_) => "DIFFER",
        None => "not checked",
    }
}

pub(super) fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

pub(super) fn pass_str(p: bool) -> &'static str {
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
            t.push(skip::target(i, s));
        }
        for p in &i.physical {
            t.extend(physical::targets(i, p));
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
    ablation::markdown(imports, s);
    skip::markdown(imports, s);
    masking::markdown(imports, s);
    physical::markdown(imports, s);
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
