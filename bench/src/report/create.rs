//! Create-to-ready through the API, the floor (bare starts on clones) and
//! concurrent creates: figures and tables.

use std::fmt::Write as _;

use serde::Serialize;

use super::{Report, Summary};

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

impl Report {
    /// Sequential creates, the floor, concurrent creates and the floor at the same concurrency.
    pub(super) fn creates_markdown(&self, s: &mut String) {
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
    }
}
