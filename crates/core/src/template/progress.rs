//! Progress of a running import, in the log every few seconds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::info;

/// Logs how much of `total` bytes of `dump` were read, the rate and the
/// time left, every 5 s until aborted.
pub(super) async fn report(read: Arc<AtomicU64>, total: u64, dump: String) {
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.tick().await;
    loop {
        tick.tick().await;
        let done = read.load(Ordering::Relaxed);
        let secs = started.elapsed().as_secs_f64().max(0.001);
        let rate = done as f64 / secs;
        info!(
            dump,
            read_mb = format!("{:.1}", done as f64 / 1e6),
            percent = format!("{:.1}", percent(done, total)),
            mb_per_s = format!("{:.1}", rate / 1e6),
            eta = eta(done, total, rate),
            "importing"
        );
    }
}

fn percent(done: u64, total: u64) -> f64 {
    if total > 0 {
        100.0 * done as f64 / total as f64
    } else {
        0.0
    }
}

fn eta(done: u64, total: u64, rate: f64) -> String {
    if rate > 0.0 && total > done {
        humantime::format_duration(Duration::from_secs(((total - done) as f64 / rate) as u64))
            .to_string()
    } else {
        "-".to_owned()
    }
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
        assert_eq!(eta(50, 150, 10.0), "10s");
        assert_eq!(eta(150, 150, 10.0), "-");
        assert_eq!(eta(0, 150, 0.0), "-");
    }
}
