//! The figures, their JSON form and the Markdown report with the targets
//! of issues 5, 12 (`import`) and 13.

mod create;
mod import;
mod memory;
mod pool;
pub mod servers;
pub mod standby;

use std::fmt::Write as _;

use serde::Serialize;

pub use create::{Concurrency, Creates, Floor};
pub use import::{windows, Import, ImportVariant, Masking, Physical, Skip, TableState};
pub use memory::{Ablation, DollydReport, ListCost, MemoryReport};
pub use pool::PoolReport;

const MIB: f64 = 1024.0 * 1024.0;

/// The median of `v` (0 when empty).
pub fn median(v: &[f64]) -> f64 {
    percentile(v, 50.0)
}

/// Nearest-rank percentile (0 when empty).
pub fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1]
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Summary {
    pub n: usize,
    pub p50: f64,
    pub p95: f64,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    pub fn of(v: &[f64]) -> Self {
        Self {
            n: v.len(),
            p50: median(v),
            p95: percentile(v, 95.0),
            min: v.iter().copied().fold(f64::INFINITY, f64::min).min(1e300),
            max: v.iter().copied().fold(0.0, f64::max),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct DumpInfo {
    pub template: String,
    pub bytes: u64,
    pub rows: Vec<(String, u64)>,
    /// `None` when taken from the cache of an earlier run.
    pub generate_s: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Decompression {
    pub form: String,
    pub input_bytes: u64,
    pub output_bytes: u64,
    pub seconds: f64,
    pub output_mb_s: f64,
}

#[derive(Debug, Serialize)]
pub struct Target {
    pub target: String,
    pub measured: String,
    pub pass: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub quick: bool,
    /// `--only import`: the import sections alone.
    pub only_import: bool,
    /// `--only servers`: the servers table alone.
    pub only_servers: bool,
    /// `--only standby`: the standby table alone.
    pub only_standby: bool,
    pub started_at: String,
    pub finished_at: String,
    pub machine: serde_json::Value,
    pub dumps: Vec<DumpInfo>,
    pub decompression: Vec<Decompression>,
    pub imports: Vec<Import>,
    pub creates: Vec<Creates>,
    pub floors: Vec<Floor>,
    pub concurrency: Vec<Concurrency>,
    /// Bare engine starts at once: the floor for concurrency.
    pub concurrent_floors: Vec<Concurrency>,
    pub memory: Option<MemoryReport>,
    pub ablation: Vec<Ablation>,
    pub dollyd: DollydReport,
    pub pool: Option<PoolReport>,
    /// `--only servers`: one row per image.
    pub servers: Vec<crate::servers::ServerRow>,
    /// `--only standby`: one row per image.
    pub standby: Vec<crate::standby::StandbyRow>,
    pub targets: Vec<Target>,
    pub errors: Vec<String>,
}

fn verdict(p: Option<bool>) -> &'static str {
    match p {
        Some(true) => "PASS",
        Some(false) => "MISS",
        None => "n/a",
    }
}

impl Report {
    pub fn new(quick: bool, machine: serde_json::Value) -> Self {
        Self {
            quick,
            only_import: false,
            only_servers: false,
            only_standby: false,
            started_at: chrono::Utc::now().to_rfc3339(),
            finished_at: String::new(),
            machine,
            dumps: vec![],
            decompression: vec![],
            imports: vec![],
            creates: vec![],
            floors: vec![],
            concurrency: vec![],
            concurrent_floors: vec![],
            memory: None,
            ablation: vec![],
            dollyd: DollydReport::default(),
            pool: None,
            servers: vec![],
            standby: vec![],
            targets: vec![],
            errors: vec![],
        }
    }

    fn create(&self, template: &str, mode: &str) -> Option<&Creates> {
        self.creates
            .iter()
            .find(|c| c.template == template && c.mode == mode)
    }

    fn floor(&self, template: &str) -> Option<&Floor> {
        self.floors.iter().find(|f| f.template == template)
    }

    /// Computes the targets.
    pub fn finish(&mut self) {
        self.finished_at = chrono::Utc::now().to_rfc3339();
        let mut t = Vec::new();
        for name in ["small", "large"] {
            if let (Some(c), Some(f)) = (self.create(name, "auto"), self.floor(name)) {
                let r = c.create.p50 / f.start.p50;
                t.push(Target {
                    target: format!("create-to-ready p50 <= 1.25x floor ({name})"),
                    measured: format!("{:.0} ms / {:.0} ms = {r:.2}x", c.create.p50, f.start.p50),
                    pass: Some(r <= 1.25),
                });
            }
        }
        if let (Some(s), Some(l)) = (self.create("small", "auto"), self.create("large", "auto")) {
            let r = l.create.p50 / s.create.p50;
            t.push(Target {
                target: "large template create p50 within 1.1x of small".into(),
                measured: format!("{:.0} ms / {:.0} ms = {r:.2}x", l.create.p50, s.create.p50),
                pass: Some(r <= 1.1),
            });
        }
        for c in self.concurrency.iter().filter(|c| c.n == 32) {
            if let Some(seq) = self.create(&c.template, "auto") {
                let r = c.create.p95 / seq.create.p50;
                t.push(Target {
                    target: format!(
                        "32 concurrent creates all succeed, p95 < 3x sequential p50 ({})",
                        c.template
                    ),
                    measured: format!(
                        "{}/{} ok; {:.0} ms / {:.0} ms = {r:.2}x",
                        c.ok, c.n, c.create.p95, seq.create.p50
                    ),
                    pass: Some(c.ok == c.n && r < 3.0),
                });
            }
        }
        if let Some(m) = &self.memory {
            t.push(Target {
                target: format!(
                    "idle instance <= 48 MiB resident (median of {})",
                    m.instances
                ),
                measured: format!(
                    "{:.1} MiB (docker-stats figure; anon RSS {:.1} MiB, mariadbd VmRSS {:.1} MiB)",
                    m.stats_mib_median, m.rss_mib_median, m.server_vmrss_mib_median
                ),
                pass: Some(m.stats_mib_median <= 48.0),
            });
        }
        t.extend(import::targets(&self.imports));
        let fastest_import = self
            .imports
            .iter()
            .map(|i| i.dolly_mb_s)
            .fold(0.0, f64::max);
        let slowest_reader = self
            .decompression
            .iter()
            .map(|d| d.output_mb_s)
            .fold(f64::INFINITY, f64::min);
        if fastest_import > 0.0 && slowest_reader.is_finite() {
            t.push(Target {
                target: "decompression is not the bottleneck (slowest reader >= 3x import rate)"
                    .into(),
                measured: format!(
                    "slowest reader {slowest_reader:.0} MB/s vs import {fastest_import:.1} MB/s"
                ),
                pass: Some(slowest_reader >= 3.0 * fastest_import),
            });
        }
        if let Some(most) = self.dollyd.list_ms.iter().max_by_key(|l| l.instances) {
            if most.instances > 0 {
                t.push(Target {
                    target: format!(
                        "GET /db with {} instances listed: one engine call (bench's bar: p50 < 100 ms)",
                        most.instances
                    ),
                    measured: format!(
                        "{:.1} ms p50 (0 instances: {:.1} ms); dollyd RSS idle {:.1} MiB",
                        most.p50_ms,
                        self.dollyd
                            .list_ms
                            .first()
                            .map(|l| l.p50_ms)
                            .unwrap_or(0.0),
                        self.dollyd.idle_rss_mib
                    ),
                    pass: Some(most.p50_ms < 100.0),
                });
            }
        }
        if let Some(p) = &self.pool {
            t.extend(p.targets());
        }
        self.targets = t;
    }

    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let m = &self.machine;
        let _ = writeln!(
            s,
            "## dolly benchmark{}\n",
            if self.quick { " (--quick)" } else { "" }
        );
        let _ = writeln!(
            s,
            "Machine: {} cores ({}), {} GiB memory, kernel {}; data on {}; reflinks: {}; image {}. Run {} to {}.\n",
            m["nproc"],
            m["cpu"].as_str().unwrap_or("?"),
            m["mem_gib"],
            m["kernel"].as_str().unwrap_or("?"),
            m["filesystem"].as_str().unwrap_or("?"),
            m["reflinks"],
            m["image"].as_str().unwrap_or("?"),
            self.started_at,
            self.finished_at
        );
        if let Some(p) = self.pool.as_ref().filter(|_| self.imports.is_empty()) {
            // `--only pool`: the pool's targets, its table and the floor.
            self.targets_table(&mut s, "issue 13");
            self.pool_only(p, &mut s);
            self.dumps_and_errors(&mut s);
            return s;
        }
        if !self.standby.is_empty() || self.only_standby {
            standby::markdown(&self.standby, &mut s);
            self.dumps_and_errors(&mut s);
            return s;
        }
        if !self.servers.is_empty() || self.only_servers {
            servers::markdown(&self.servers, &mut s);
            self.dumps_and_errors(&mut s);
            return s;
        }
        if self.only_import {
            self.targets_table(&mut s, "issue 12");
            import::markdown(&self.imports, &mut s);
            self.dumps_and_errors(&mut s);
            return s;
        }
        self.targets_table(&mut s, "issues 5, 12 and 13");
        import::markdown(&self.imports, &mut s);
        let _ = writeln!(
            s,
            "\nReading the dump (dolly's reader: decompression and scan, from page cache):\n"
        );
        let _ = writeln!(
            s,
            "| Form | in | out | time | out MB/s |\n|---|---|---|---|---|"
        );
        for d in &self.decompression {
            let _ = writeln!(
                s,
                "| {} | {:.0} MB | {:.0} MB | {:.2} s | {:.0} |",
                d.form,
                d.input_bytes as f64 / 1e6,
                d.output_bytes as f64 / 1e6,
                d.seconds,
                d.output_mb_s
            );
        }

        self.creates_markdown(&mut s);
        if let Some(p) = &self.pool {
            p.markdown(&mut s);
        }
        self.memory_markdown(&mut s);
        self.dumps_and_errors(&mut s);
        s
    }

    fn targets_table(&self, s: &mut String, issues: &str) {
        let _ = writeln!(s, "### Targets ({issues})\n");
        let _ = writeln!(s, "| Target | Measured | Verdict |\n|---|---|---|");
        for t in &self.targets {
            let _ = writeln!(s, "| {} | {} | {} |", t.target, t.measured, verdict(t.pass));
        }
    }

    /// `--only pool`: the pool's table and the floor.
    fn pool_only(&self, p: &PoolReport, s: &mut String) {
        p.markdown(s);
        for f in &self.floors {
            let _ = writeln!(
                s,
                "\nFloor ({}): a bare engine start of dolly's instance container on a prepared {} clone until an authenticated `SELECT 1` answers (polled every 10 ms), n = {}: p50 {:.0} ms, p95 {:.0} ms, min {:.0} ms, max {:.0} ms; the clone itself p50 {:.1} ms. The engine's forced remove of that running server: p50 {:.0} ms, p95 {:.0} ms; a remove of a container already gone: p50 {:.1} ms. Instead, a stop with no grace (SIGKILL; releases the port): p50 {:.0} ms, then the remove of the stopped container: p50 {:.0} ms (n = {} each).",
                f.template, f.clone_mode, f.start.n, f.start.p50, f.start.p95, f.start.min, f.start.max, f.clone.p50, f.remove.p50, f.remove.p95, f.remove_absent.p50, f.kill.p50, f.remove_stopped.p50, f.kill.n
            );
            let _ = writeln!(
                s,
                "\nA reset is a clone, a forced remove of the running server and a start: clone p50 + remove p50 + floor p50 = {:.0} ms, against reset p50 {:.0} ms.",
                f.clone.p50 + f.remove.p50 + f.start.p50,
                p.reset.p50
            );
        }
    }

    fn dumps_and_errors(&self, s: &mut String) {
        let _ = writeln!(s, "\n### Dumps\n");
        let _ = writeln!(s, "| Template | bytes | rows per table |\n|---|---|---|");
        for du in &self.dumps {
            let rows: Vec<String> = du.rows.iter().map(|(t, n)| format!("{t} {n}")).collect();
            let _ = writeln!(
                s,
                "| {} | {} | {} |",
                du.template,
                du.bytes,
                rows.join(", ")
            );
        }
        if !self.errors.is_empty() {
            let _ = writeln!(s, "\n### Errors\n");
            for e in &self.errors {
                let _ = writeln!(s, "- {}", e.replace('\n', " "));
            }
        }
    }
}
