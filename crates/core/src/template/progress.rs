//! Progress of a running import: in the store every second (the API of a
//! `serve` process reads it: `dollyd update` is another process), in the log
//! every 5 s.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::store::ImportProgress;
use chrono::{DateTime, Utc};
use dolly_names::TemplateName;
use tracing::{debug, info};

use crate::store::AsyncStore;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Phase {
    Load = 0,
    Indexes = 1,
    Post = 2,
    Publish = 3,
    /// A physical backup's `mariadb-backup --prepare` (the stream is read).
    Prepare = 4,
    /// The dump read once for its fingerprint, before the import proper.
    Hash = 5,
}

impl Phase {
    fn name(v: u8) -> &'static str {
        match v {
            0 => "load",
            1 => "indexes",
            2 => "post",
            4 => "prepare",
            5 => "hash",
            _ => "publish",
        }
    }
}

/// What the import shares with its reporter.
#[derive(Clone)]
pub(super) struct Tracker {
    pub read: Arc<AtomicU64>,
    pub phase: Arc<AtomicU8>,
    total: Arc<AtomicU64>,
    source: String,
    started: Instant,
    started_at: DateTime<Utc>,
}

impl Tracker {
    /// An import of `source`, hashing it first.
    pub fn new(source: String) -> Self {
        Self {
            read: Arc::new(AtomicU64::new(0)),
            phase: Arc::new(AtomicU8::new(Phase::Hash as u8)),
            total: Arc::new(AtomicU64::new(0)),
            source,
            started: Instant::now(),
            started_at: Utc::now(),
        }
    }

    /// Bytes the load reads in all.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// The hash is done: the size to read, and the load begins.
    pub fn loading(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
        self.set(Phase::Load);
    }

    /// The load starts again from the dump's first byte (the plain load
    /// after a failed split load).
    pub fn restart(&self) {
        self.read.store(0, Ordering::Relaxed);
        self.set(Phase::Load);
    }

    pub fn set(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> ImportProgress {
        let done = self.read.load(Ordering::Relaxed);
        let total = self.total.load(Ordering::Relaxed);
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = done as f64 / secs;
        let phase = self.phase.load(Ordering::Relaxed);
        ImportProgress {
            phase: Phase::name(phase).to_owned(),
            source: self.source.clone(),
            elapsed_seconds: self.started.elapsed().as_secs(),
            bytes_read: done,
            bytes_total: total,
            percent: (percent(done, total) * 10.0).round() / 10.0,
            mb_per_s: (rate / 1e5).round() / 10.0,
            eta_seconds: (phase == Phase::Load as u8)
                .then(|| eta_secs(done, total, rate))
                .flatten(),
            started_at: self.started_at,
            updated_at: Utc::now(),
        }
    }
}

/// The progress of one import in the store while it lives: dropped, the
/// reporter stops and the progress goes.
pub(super) struct Reporting {
    task: tokio::task::JoinHandle<()>,
    store: AsyncStore,
    template: TemplateName,
}

impl Reporting {
    pub fn start(store: AsyncStore, t: TemplateName, tracker: Tracker) -> Self {
        use tracing::Instrument;
        let dump = tracker.source.clone();
        let task = tokio::spawn(report(store.clone(), t.clone(), tracker, dump).in_current_span());
        Self {
            task,
            store,
            template: t,
        }
    }
}

impl Drop for Reporting {
    fn drop(&mut self) {
        self.task.abort();
        let (s, t) = (self.store.clone(), self.template.clone());
        drop(tokio::spawn(
            async move { s.remove_import_progress(&t).await },
        ));
    }
}

/// Writes the progress of the import of `t` every second and logs it every
/// 5 s, until aborted.
async fn report(store: AsyncStore, t: TemplateName, tracker: Tracker, dump: String) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut n = 0u64;
    loop {
        tick.tick().await;
        let p = tracker.snapshot();
        if let Err(e) = store.write_import_progress(&t, &p).await {
            debug!(error = %e, "cannot write the import's progress");
        }
        if n > 0 && n.is_multiple_of(5) {
            info!(
                dump,
                phase = p.phase,
                read_mb = format!("{:.1}", p.bytes_read as f64 / 1e6),
                percent = format!("{:.1}", p.percent),
                mb_per_s = format!("{:.1}", p.mb_per_s),
                eta = p
                    .eta_seconds
                    .map(|s| humantime::format_duration(Duration::from_secs(s)).to_string())
                    .unwrap_or_else(|| "-".to_owned()),
                "importing"
            );
        }
        n += 1;
    }
}

fn percent(done: u64, total: u64) -> f64 {
    if total > 0 {
        (100.0 * done as f64 / total as f64).min(100.0)
    } else {
        0.0
    }
}

fn eta_secs(done: u64, total: u64, rate: f64) -> Option<u64> {
    (rate > 0.0 && total > done).then(|| ((total - done) as f64 / rate) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_of_an_unknown_total_is_zero() {
        assert_eq!(percent(10, 0), 0.0);
        assert_eq!(percent(50, 200), 25.0);
    }

    #[test]
    fn eta_from_the_rate() {
        assert_eq!(eta_secs(50, 150, 10.0), Some(10));
        assert_eq!(eta_secs(150, 150, 10.0), None);
        assert_eq!(eta_secs(0, 150, 0.0), None);
    }

    #[test]
    fn a_snapshot_names_its_phase() {
        let t = Tracker::new("dumps/shop.sql".into());
        assert_eq!(t.snapshot().phase, "hash");
        assert_eq!(t.snapshot().source, "dumps/shop.sql");
        t.loading(200);
        t.read.store(50, Ordering::Relaxed);
        assert_eq!(t.snapshot().phase, "load");
        assert_eq!(t.snapshot().percent, 25.0);
        t.set(Phase::Post);
        let s = t.snapshot();
        assert_eq!((s.phase.as_str(), s.eta_seconds), ("post", None));
    }
}
