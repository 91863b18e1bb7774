//! Memory of idle instances, the instance settings' ablation and
//! dollyd's own cost: figures and tables.

use std::fmt::Write as _;

use serde::Serialize;

use super::{median, Report, MIB};
use crate::sys::ContainerMemory;

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

impl Report {
    /// Idle instances' memory, the settings' ablation, dollyd itself.
    pub(super) fn memory_markdown(&self, s: &mut String) {
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
    }
}
