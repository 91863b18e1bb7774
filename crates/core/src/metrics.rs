//! Prometheus metrics, served at `/metrics` in the text format.
//!
//! Counters and the create histogram are updated where things happen;
//! gauges (instances by state, free disk, imports) are read at scrape time
//! from the engine (one call) and the data folder.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// Engine errors seen by the API (counted where errors become answers).
pub static ENGINE_ERRORS: AtomicU64 = AtomicU64::new(0);

pub struct Metrics {
    registry: Registry,
    operations: Family<Labels, Counter>,
    create_seconds: Histogram,
    reaped: Family<Labels, Counter>,
    engine_errors: Counter,
    instances: Family<Labels, Gauge>,
    free_disk: Gauge,
    last_import: Family<Labels, Gauge>,
    import_seconds: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    import_bytes: Family<Labels, Gauge>,
    pool_size: Family<Labels, Gauge>,
    pool_ready: Family<Labels, Gauge>,
    by_user: Family<Labels, Counter>,
    webhooks: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("dolly");
        let m = Metrics {
            operations: Family::default(),
            create_seconds: Histogram::new(exponential_buckets(0.05, 2.0, 12)),
            reaped: Family::default(),
            engine_errors: Counter::default(),
            instances: Family::default(),
            free_disk: Gauge::default(),
            last_import: Family::default(),
            import_seconds: Family::default(),
            import_bytes: Family::default(),
            pool_size: Family::default(),
            pool_ready: Family::default(),
            by_user: Family::default(),
            webhooks: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "operations",
            "Instance operations (create, delete, reset, ...) by outcome",
            m.operations.clone(),
        );
        registry.register(
            "create_to_ready_seconds",
            "Time from a create request until the instance answered SELECT 1",
            m.create_seconds.clone(),
        );
        registry.register(
            "reaped",
            "Instances removed by the reaper, by reason",
            m.reaped.clone(),
        );
        registry.register(
            "engine_errors",
            "Container engine errors answered to clients",
            m.engine_errors.clone(),
        );
        registry.register(
            "instances",
            "Instances by template and state",
            m.instances.clone(),
        );
        registry.register(
            "data_dir_free_bytes",
            "Free space in the data folder",
            m.free_disk.clone(),
        );
        registry.register(
            "last_successful_import_timestamp_seconds",
            "When the current version of each template was imported",
            m.last_import.clone(),
        );
        registry.register(
            "import_duration_seconds",
            "Duration of the import of each template's current version",
            m.import_seconds.clone(),
        );
        registry.register(
            "import_dump_bytes",
            "Size of the dump each template's current version came from",
            m.import_bytes.clone(),
        );
        registry.register(
            "pool_size",
            "Warm pool target size per template",
            m.pool_size.clone(),
        );
        registry.register(
            "pool_ready",
            "Warm pool members ready to hand out, per template",
            m.pool_ready.clone(),
        );
        registry.register(
            "operations_by_user",
            "State changes through the API, by user and operation",
            m.by_user.clone(),
        );
        registry.register(
            "webhook_deliveries",
            "Webhook deliveries by outcome (ok, retried, failed, dropped)",
            m.webhooks.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts one operation (`create`, `delete`, `reset`, ...) and its outcome.
    pub fn operation(&self, op: &str, ok: bool) {
        self.operations
            .get_or_create(&vec![
                ("operation".to_owned(), op.to_owned()),
                (
                    "outcome".to_owned(),
                    if ok { "ok" } else { "error" }.to_owned(),
                ),
            ])
            .inc();
    }

    /// Counts one state change made by `user` (audit).
    pub fn by_user(&self, user: &str, op: &str) {
        self.by_user
            .get_or_create(&vec![
                ("user".to_owned(), user.to_owned()),
                ("operation".to_owned(), op.to_owned()),
            ])
            .inc();
    }

    /// A handle on the webhook delivery counter (for background tasks).
    pub fn webhooks(&self) -> WebhookCounter {
        WebhookCounter(self.webhooks.clone())
    }

    pub fn create_ready(&self, seconds: f64) {
        self.create_seconds.observe(seconds);
    }

    pub fn reaped(&self, reason: &str) {
        self.reaped
            .get_or_create(&vec![("reason".to_owned(), reason.to_owned())])
            .inc();
    }

    /// Sets the scrape-time gauges and renders everything.
    pub fn render(&self, snapshot: Snapshot) -> String {
        self.instances.clear();
        for ((template, state), count) in snapshot.instances {
            self.instances
                .get_or_create(&vec![
                    ("template".to_owned(), template),
                    ("state".to_owned(), state),
                ])
                .set(count);
        }
        self.free_disk.set(snapshot.free_disk as i64);
        for t in snapshot.templates {
            let l = vec![("template".to_owned(), t.name)];
            self.last_import.get_or_create(&l).set(t.imported_at);
            self.import_seconds.get_or_create(&l).set(t.import_seconds);
            self.import_bytes.get_or_create(&l).set(t.dump_bytes as i64);
            self.pool_size.get_or_create(&l).set(t.pool_size as i64);
            self.pool_ready.get_or_create(&l).set(t.pool_ready as i64);
        }
        let errors = ENGINE_ERRORS.load(Ordering::Relaxed);
        let seen = self.engine_errors.get();
        if errors > seen {
            self.engine_errors.inc_by(errors - seen);
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Counts webhook deliveries by outcome.
#[derive(Clone)]
pub struct WebhookCounter(Family<Labels, Counter>);

impl WebhookCounter {
    pub fn inc(&self, outcome: &str) {
        self.0
            .get_or_create(&vec![("outcome".to_owned(), outcome.to_owned())])
            .inc();
    }
}

/// What a scrape reads from the engine and the data folder.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub instances: std::collections::BTreeMap<(String, String), i64>,
    pub free_disk: u64,
    pub templates: Vec<TemplateFigures>,
}

#[derive(Debug)]
pub struct TemplateFigures {
    pub name: String,
    pub imported_at: i64,
    pub import_seconds: f64,
    pub dump_bytes: u64,
    pub pool_size: usize,
    pub pool_ready: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new();
        m.operation("create", true);
        m.create_ready(0.4);
        m.by_user("alice", "create");
        m.webhooks().inc("failed");
        let mut snap = Snapshot {
            free_disk: 1234,
            ..Snapshot::default()
        };
        snap.instances.insert(("shop".into(), "running".into()), 3);
        let text = m.render(snap);
        assert!(
            text.contains("dolly_operations_total{operation=\"create\",outcome=\"ok\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("dolly_instances{template=\"shop\",state=\"running\"} 3"),
            "{text}"
        );
        assert!(text.contains("dolly_data_dir_free_bytes 1234"), "{text}");
        assert!(
            text.contains("dolly_operations_by_user_total{user=\"alice\",operation=\"create\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("dolly_webhook_deliveries_total{outcome=\"failed\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("dolly_create_to_ready_seconds_bucket"),
            "{text}"
        );
    }
}
