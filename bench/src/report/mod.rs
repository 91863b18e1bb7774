//! The figures, their JSON form and the Markdown report with the targets
//! of issues 5, 12 (`import`) and 13.

mod import;
mod pool;

use std::fmt::Write as _;

use serde::Serialize;

use crate::sys::ContainerMemory;
pub use import::{Import, ImportVariant, Physical, Skip, TableState};
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
pub struct Creates {
    pub template: String,
    /// `auto` (reflinks), `copy` (`DOLLY_CLONE=copy` on the reflink data
    /// folder) or `copy-ext4` (a data folder with no reflinks).
    pub mode: String,
    /// The warm-up create, not in the figures.
    pub first_ms: f64,
    pub create: Summary,
    pub delete: Summary,
    pub create_ms: Vec<f64>,
    pub delete_ms: Vec<f64>,
}

#[derive(Debug, Serialize)]
pub struct Floor {
    pub template: String,
    pub clone_mode: String,
    /// Engine run call until an authenticated `SELECT 1` answers.
    pub start: Summary,
    /// The clone of the template datadir (before the start).
    pub clone: Summary,
    /// The engine's forced remove of the running bare server.
    pub remove: Summary,
    /// A remove of a container that is already gone (one engine call).
    pub remove_absent: Summary,
    /// A stop with no grace period (SIGKILL) of the running bare server
    /// (every other sample), then the remove of the stopped container.
    pub kill: Summary,
    pub remove_stopped: Summary,
    pub start_ms: Vec<f64>,
    pub clone_ms: Vec<f64>,
    pub remove_ms: Vec<f64>,
    pub remove_absent_ms: Vec<f64>,
    pub kill_ms: Vec<f64>,
    pub remove_stopped_ms: Vec<f64>,
}

#[derive(Debug, Serialize)]
pub struct Concurrency {
    pub template: String,
    pub n: usize,
    pub ok: usize,
    pub total_ms: f64,
    pub create: Summary,
    pub create_ms: Vec<f64>,
    pub errors: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct MemoryReport {
    pub template: String,
    pub instances: usize,
    pub source: &'static str,
    pub stats_mib_median: f64,
    pub stats_mib_max: f64,
    pub rss_mib_median: f64,
    pub usage_mib_median: f64,
    pub server_vmrss_mib_median: f64,
    pub each: Vec<ContainerMemory>,
}

impl MemoryReport {
    pub fn of(template: &str, mems: &[ContainerMemory]) -> Self {
        let f = |g: fn(&ContainerMemory) -> u64| -> Vec<f64> {
            mems.iter().map(|m| g(m) as f64 / MIB).collect()
        };
        let stats = f(|m| m.stats_bytes);
        Self {
            template: template.to_owned(),
            instances: mems.len(),
            source:
                "cgroup v1 /sys/fs/cgroup/memory/docker/<id>/ (memory.usage_in_bytes, memory.stat) \
                     and /proc/<mariadbd pid>/status; the engine trait has no stats call",
            stats_mib_median: median(&stats),
            stats_mib_max: stats.iter().copied().fold(0.0, f64::max),
            rss_mib_median: median(&f(|m| m.rss_bytes)),
            usage_mib_median: median(&f(|m| m.usage_bytes)),
            server_vmrss_mib_median: median(&f(|m| m.server_vmrss_bytes)),
            each: mems.to_vec(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Ablation {
    pub variant: String,
    pub stats_mib: f64,
    pub rss_mib: f64,
    pub ready_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct ListCost {
    pub instances: usize,
    pub p50_ms: f64,
}

#[derive(Debug, Serialize, Default)]
pub struct DollydReport {
    pub idle_rss_mib: f64,
    pub rss_30_mib: f64,
    pub rss_many_mib: f64,
    pub rss_end_mib: f64,
    pub list_ms: Vec<ListCost>,
    pub many_create_s: Option<f64>,
    pub many_note: Option<String>,
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

        let _ = writeln!(s, "\n### Create-to-ready through the API (sequential)\n");
        let _ = writeln!(
            s,
            "| Template | clones | n | p50 | p95 | min | max | first (warm-up, not counted) | delete p50 |\n|---|---|---|---|---|---|---|---|---|"
        );
        for c in &self.creates {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms |",
                c.template,
                match c.mode.as_str() {
                    "copy" => "DOLLY_CLONE=copy on the XFS data folder",
                    "copy-ext4" => "full copy (data folder on ext4)",
                    _ => "auto (reflink)",
                },
                c.create.n,
                c.create.p50,
                c.create.p95,
                c.create.min,
                c.create.max,
                c.first_ms,
                c.delete.p50
            );
        }
        let _ = writeln!(
            s,
            "\nFloor: a bare engine start of the same image and command on a prepared clone, until an authenticated `SELECT 1` answers (polled every 10 ms):\n"
        );
        let _ = writeln!(
            s,
            "| Template | n | floor p50 | floor p95 | clone p50 ({}) | create p50 / floor p50 | full copy p50 / reflink p50 |\n|---|---|---|---|---|---|---|",
            self.floors
                .first()
                .map(|f| f.clone_mode.as_str())
                .unwrap_or("?")
        );
        for f in &self.floors {
            let auto = self.create(&f.template, "auto").map(|c| c.create.p50);
            let copy = self.create(&f.template, "copy-ext4").map(|c| c.create.p50);
            let _ = writeln!(
                s,
                "| {} | {} | {:.0} ms | {:.0} ms | {:.1} ms | {} | {} |",
                f.template,
                f.start.n,
                f.start.p50,
                f.start.p95,
                f.clone.p50,
                auto.map(|a| format!("{:.2}x", a / f.start.p50))
                    .unwrap_or_default(),
                auto.zip(copy)
                    .map(|(a, c)| format!("{:.1}x", c / a))
                    .unwrap_or_default()
            );
        }

        let _ = writeln!(s, "\n### Concurrent creates\n");
        let _ = writeln!(
            s,
            "| Template | at once | succeeded | total | p50 | p95 | p95 / sequential p50 |\n|---|---|---|---|---|---|---|"
        );
        for c in &self.concurrency {
            let seq = self
                .create(&c.template, "auto")
                .map(|x| x.create.p50)
                .unwrap_or(0.0);
            let _ = writeln!(
                s,
                "| {} | {} | {}/{} | {:.0} ms | {:.0} ms | {:.0} ms | {:.2}x |",
                c.template,
                c.n,
                c.ok,
                c.n,
                c.total_ms,
                c.create.p50,
                c.create.p95,
                if seq > 0.0 { c.create.p95 / seq } else { 0.0 }
            );
            for e in c.errors.iter().take(3) {
                let _ = writeln!(s, "|  | error: {} | | | | | |", e.replace('|', "/"));
            }
        }
        if !self.concurrent_floors.is_empty() {
            let _ = writeln!(
                s,
                "\nThe floor at the same concurrency: bare engine starts of prepared reflink clones, all at once:\n"
            );
            let _ = writeln!(
                s,
                "| Template | at once | succeeded | total | p50 | p95 | dolly p95 / floor p95 |\n|---|---|---|---|---|---|---|"
            );
            for f in &self.concurrent_floors {
                let dolly = self
                    .concurrency
                    .iter()
                    .find(|c| c.template == f.template && c.n == f.n)
                    .map(|c| format!("{:.2}x", c.create.p95 / f.create.p95))
                    .unwrap_or_default();
                let _ = writeln!(
                    s,
                    "| {} | {} | {}/{} | {:.0} ms | {:.0} ms | {:.0} ms | {} |",
                    f.template, f.n, f.ok, f.n, f.total_ms, f.create.p50, f.create.p95, dolly
                );
            }
        }

        if let Some(p) = &self.pool {
            p.markdown(&mut s);
        }
        if let Some(mem) = &self.memory {
            let _ = writeln!(s, "\n### Memory of idle instances\n");
            let _ = writeln!(
                s,
                "{} idle instances of `{}`, one query each, 3 s later. Source: {}.\n",
                mem.instances, mem.template, mem.source
            );
            let _ = writeln!(
                s,
                "| Figure (median per instance) | MiB |\n|---|---|\n| usage - inactive_file (what `docker stats` shows) | {:.1} (max {:.1}) |\n| anonymous RSS (memory.stat total_rss) | {:.1} |\n| usage incl. page cache | {:.1} |\n| mariadbd VmRSS (incl. shared libraries) | {:.1} |",
                mem.stats_mib_median,
                mem.stats_mib_max,
                mem.rss_mib_median,
                mem.usage_mib_median,
                mem.server_vmrss_mib_median
            );
        }
        if !self.ablation.is_empty() {
            let _ = writeln!(
                s,
                "\nWhat each instance setting buys (3 instances per variant, started directly on clones, one query, median):\n"
            );
            let _ = writeln!(
                s,
                "| Variant | docker-stats MiB | anon RSS MiB | ready ms |\n|---|---|---|---|"
            );
            for a in &self.ablation {
                let _ = writeln!(
                    s,
                    "| {} | {:.1} | {:.1} | {:.0} |",
                    a.variant, a.stats_mib, a.rss_mib, a.ready_ms
                );
            }
        }

        let d = &self.dollyd;
        let _ = writeln!(s, "\n### dollyd itself\n");
        let _ = writeln!(
            s,
            "| Figure | Value |\n|---|---|\n| RSS idle after start | {:.1} MiB |\n| RSS with 30 instances | {:.1} MiB |",
            d.idle_rss_mib, d.rss_30_mib
        );
        if d.rss_many_mib > 0.0 {
            let _ = writeln!(
                s,
                "| RSS with the most instances | {:.1} MiB |",
                d.rss_many_mib
            );
        }
        let _ = writeln!(s, "| RSS at the end | {:.1} MiB |", d.rss_end_mib);
        for l in &d.list_ms {
            let _ = writeln!(
                s,
                "| GET /db p50 with {} instances (20 requests) | {:.1} ms |",
                l.instances, l.p50_ms
            );
        }
        if let Some(secs) = d.many_create_s {
            let _ = writeln!(
                s,
                "| time to create the listed instances sequentially | {secs:.0} s |"
            );
        }
        if let Some(n) = &d.many_note {
            let _ = writeln!(s, "\nNote: {n}");
        }

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
