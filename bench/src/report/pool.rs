//! The warm pool's figures (issue 13), its targets against the floor of
//! the same run, and its table.

use std::fmt::Write as _;

use serde::Serialize;

use super::{Concurrency, Summary, Target};

/// The warm pool (issue 13), against the floor of the same run.
#[derive(Debug, Serialize)]
pub struct PoolReport {
    pub template: String,
    /// The pool's size: at least the largest burst.
    pub size: usize,
    pub floor_p50_ms: f64,
    /// From `PUT .../pool` to all members ready.
    pub fill_s: f64,
    /// Creates with pool 0 (today's path), sequential.
    pub cold: Summary,
    /// Creates served from a full pool, sequential.
    pub create: Summary,
    /// From a hand-out's answer until the pool is full again.
    pub refill: Summary,
    /// `POST .../reset` of an instance, sequential, the pool full.
    pub reset: Summary,
    pub bursts: Vec<Concurrency>,
    /// Median docker-stats memory of an idle member.
    pub member_mib: Option<f64>,
    pub cold_ms: Vec<f64>,
    pub create_ms: Vec<f64>,
    pub refill_ms: Vec<f64>,
    pub reset_ms: Vec<f64>,
}

impl PoolReport {
    /// The targets of issue 13.
    pub(super) fn targets(&self) -> Vec<Target> {
        let f = self.floor_p50_ms;
        let ratio = |what: &str, v: f64, max: f64| {
            let r = v / f;
            Target {
                target: format!("{what} <= {max}x floor p50"),
                measured: format!("{v:.0} ms / {f:.0} ms = {r:.2}x"),
                pass: Some(r <= max),
            }
        };
        let mut t = vec![ratio(
            &format!("pool create p50 (sequential, pool of {})", self.size),
            self.create.p50,
            0.2,
        )];
        for b in &self.bursts {
            let mut target = ratio(
                &format!("burst of {} p95 (pool of {})", b.n, self.size),
                b.create.p95,
                1.0,
            );
            target.measured = format!("{}/{} ok; {}", b.ok, b.n, target.measured);
            target.pass = target.pass.map(|p| p && b.ok == b.n);
            t.push(target);
        }
        t.push(ratio("reset p50", self.reset.p50, 1.5));
        t.push(ratio("cold path (pool 0) create p50", self.cold.p50, 1.1));
        t
    }

    pub(super) fn markdown(&self, s: &mut String) {
        let f = self.floor_p50_ms;
        let _ = writeln!(s, "\n### Warm pool (issue 13)\n");
        let _ = writeln!(
            s,
            "Template `{}`; one dollyd, pool size {} (PUT /api/v1/templates/{}/pool); the floor p50 of this run: {f:.0} ms. Filling {} members from empty took {:.1} s{}.\n",
            self.template,
            self.size,
            self.template,
            self.size,
            self.fill_s,
            self.member_mib
                .map(|m| format!("; an idle member holds {m:.1} MiB (docker-stats figure)"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            s,
            "| Measurement | n | p50 | p95 | min | max | p50 / floor p50 | p95 / floor p50 |\n|---|---|---|---|---|---|---|---|"
        );
        let mut row = |what: String, x: &Summary| {
            let _ = writeln!(
                s,
                "| {what} | {} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {:.2}x | {:.2}x |",
                x.n,
                x.p50,
                x.p95,
                x.min,
                x.max,
                x.p50 / f,
                x.p95 / f
            );
        };
        row("cold create (pool 0), sequential".into(), &self.cold);
        row(
            "create from the pool, sequential (pool full before each)".into(),
            &self.create,
        );
        for b in &self.bursts {
            row(
                format!("{} creates at once (pool of {})", b.n, self.size),
                &b.create,
            );
        }
        row("reset (POST .../reset), sequential".into(), &self.reset);
        row(
            "refill after a hand-out (answer to pool full again)".into(),
            &self.refill,
        );
        for b in &self.bursts {
            for e in b.errors.iter().take(3) {
                let _ = writeln!(s, "\nburst of {}: error: {}", b.n, e.replace('|', "/"));
            }
        }
    }
}
