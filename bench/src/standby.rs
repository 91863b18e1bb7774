//! `--only standby` (issue 27, items 1 and 2): on each image of `--images`
//! (default MariaDB 10.11 and MySQL 9), one run each:
//! - resets of an ordinary instance (today's path) and of one keeping a
//!   standby, interleaved, each from the reset request to the first
//!   authenticated query answered on the reset data (a fresh connection,
//!   as a test suite makes after its reset); the standby samples wait
//!   (untimed) for the standby to be ready first, and count the answers
//!   that took the cloning path;
//! - the standby's memory (`docker stats` of its container, as the API
//!   reports it);
//! - 50 instances with `sleep_after`: their memory asleep (every container
//!   of theirs), beside the same instances awake; then wake-ups (a client's
//!   connect and first query on a sleeping instance), interleaved with bare
//!   starts (the floor).

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use dolly_core::clone::{clone_tree, remove_tree, CloneMode};
use mysql_async::prelude::Queryable;
use serde::Serialize;

use crate::bench::{Bench, DumpSpec};
use crate::dollyd::{connect, Creds, Dollyd};
use crate::report::{median, Summary};
use crate::util::{log, ms, MIB};
use crate::{dumpgen, sweep, sys};

/// The images `--only standby` runs on when `--images` is not given.
pub const DEFAULT_IMAGES: [&str; 2] = ["dolly-mariadb:10.11", "dolly-mysql:9"];

/// Sleeping instances whose memory is taken.
const SLEEPERS: usize = 50;
/// Seconds idle before they sleep.
const SLEEP_AFTER: u64 = 2;

#[derive(Debug, Clone, Serialize)]
pub struct StandbyRow {
    pub image: String,
    pub version: String,
    /// Today's reset, request to first query on the reset data.
    pub reset: Summary,
    /// Through the standby, the same.
    pub standby_reset: Summary,
    /// Answers of the standby samples that said `"standby": false`.
    pub fallbacks: usize,
    /// The standby's container (`docker stats` figure via the API), MiB.
    pub standby_mib: f64,
    /// An awake idle instance behind a forwarder (server + forwarder).
    pub awake_mib: f64,
    /// One sleeping instance (its forwarder), median, and all of them.
    pub sleeping_mib: f64,
    pub sleeping_total_mib: f64,
    pub sleepers: usize,
    /// A client's connect and first query on a sleeping instance.
    pub wake: Summary,
    /// Bare engine starts until an authenticated query, interleaved.
    pub floor: Summary,
    pub wake_ratio: f64,
    pub reset_ms: Vec<f64>,
    pub standby_reset_ms: Vec<f64>,
    pub wake_ms: Vec<f64>,
    pub floor_ms: Vec<f64>,
}

/// The dollyd child finds the forwarders' relay next to this binary
/// (`forward_path`'s default) unless `DOLLY_FORWARD_PATH` says otherwise:
/// say how to build it before anything is measured.
fn forwarder_relay_built() -> anyhow::Result<()> {
    if std::env::var_os("DOLLY_FORWARD_PATH").is_some() {
        return Ok(());
    }
    let relay = std::env::current_exe()?.with_file_name("dolly-forward");
    if !relay.is_file() {
        bail!(
            "{} is missing: build it with `cargo build --release -p dolly-server` (or set DOLLY_FORWARD_PATH)",
            relay.display()
        );
    }
    Ok(())
}

/// The table the resets write a marker into (gone after a reset).
const MARK: &str = "CREATE TABLE IF NOT EXISTS bench_mark (id INT PRIMARY KEY)";

impl Bench {
    pub async fn standby(&mut self, d: &DumpSpec) -> anyhow::Result<()> {
        forwarder_relay_built()?;
        let images: Vec<String> = match self.args.images() {
            Some(v) => v.to_vec(),
            None => DEFAULT_IMAGES.iter().map(|s| s.to_string()).collect(),
        };
        for (i, image) in images.iter().enumerate() {
            let r = self.standby_row(d, image, i).await;
            let _ = sweep(self.engine.as_ref()).await;
            match r {
                Ok(row) => self.report.standby.push(row),
                Err(e) => {
                    log(format!("{image}: {e:#}"));
                    self.report.errors.push(format!("{image}: {e:#}"));
                }
            }
        }
        if self.report.standby.is_empty() {
            bail!("no image could be measured");
        }
        Ok(())
    }

    async fn standby_row(
        &mut self,
        d: &DumpSpec,
        image: &str,
        index: usize,
    ) -> anyhow::Result<StandbyRow> {
        self.import_on(d, image).await?;
        let mode: &'static str = Box::leak(format!("standby-{index}").into_boxed_str());
        let mut dollyd = Dollyd::spawn_with_env(
            self,
            &self.data,
            mode,
            &[("DOLLY_POOL_SIZE", "0"), ("DOLLY_REAP_INTERVAL", "1s")],
        )
        .await?;
        let r = self.measure_standby(&dollyd, d.template, image).await;
        dollyd.stop_mut().await;
        r
    }

    async fn measure_standby(
        &self,
        dollyd: &Dollyd,
        template: &str,
        image: &str,
    ) -> anyhow::Result<StandbyRow> {
        let samples = self.args.samples;
        let base = format!("/api/v1/templates/{template}/instances");
        let plain = self
            .v1_create(dollyd, &base, "plain", serde_json::json!({}))
            .await?;
        let sb = self
            .v1_create(dollyd, &base, "sb", serde_json::json!({"standby": true}))
            .await?;
        log(format!(
            "{image}: {samples} resets each, today's and through the standby"
        ));
        let (mut reset_ms, mut standby_ms, mut fallbacks) = (Vec::new(), Vec::new(), 0);
        let mut standby_mib = Vec::new();
        for i in 0..=samples {
            let (t, _) = self.timed_reset(dollyd, &base, "plain", &plain, i).await?;
            let status = self.wait_standby(dollyd, &format!("{base}/sb")).await?;
            if let Some(b) = status["standby_status"]["memory_bytes"].as_u64() {
                standby_mib.push(b as f64 / MIB);
            }
            let (s, via) = self.timed_reset(dollyd, &base, "sb", &sb, i).await?;
            if i > 0 {
                reset_ms.push(t);
                standby_ms.push(s);
                if !via {
                    fallbacks += 1;
                }
            }
        }
        for n in ["plain", "sb"] {
            dollyd.delete(&self.http, template, n).await?;
        }
        let (awake_mib, sleeping_mib, sleeping_total_mib, wake_ms, floor_ms) =
            self.sleepers(dollyd, template, &base, image).await?;
        let (wake, floor) = (Summary::of(&wake_ms), Summary::of(&floor_ms));
        Ok(StandbyRow {
            image: image.to_owned(),
            version: self.image.version.clone(),
            reset: Summary::of(&reset_ms),
            standby_reset: Summary::of(&standby_ms),
            fallbacks,
            standby_mib: median(&standby_mib),
            awake_mib,
            sleeping_mib,
            sleeping_total_mib,
            sleepers: SLEEPERS,
            wake_ratio: wake.p50 / floor.p50,
            wake,
            floor,
            reset_ms,
            standby_reset_ms: standby_ms,
            wake_ms,
            floor_ms,
        })
    }

    async fn v1_create(
        &self,
        dollyd: &Dollyd,
        base: &str,
        name: &str,
        body: serde_json::Value,
    ) -> anyhow::Result<Creds> {
        let r = self
            .http
            .post(dollyd.url(&format!("{base}/{name}")))
            .json(&body)
            .send()
            .await?;
        let status = r.status();
        let v: serde_json::Value = r.json().await?;
        if status != 201 {
            bail!("create {name} answered {status}: {v}");
        }
        let creds = Creds {
            port: v["port"].as_u64().ok_or_else(|| anyhow!("no port: {v}"))? as u16,
            password: v["password"].as_str().unwrap_or_default().to_owned(),
            database: v["database"].as_str().unwrap_or_default().to_owned(),
        };
        let mut c = connect(&creds).await?;
        c.query_drop(MARK).await?;
        let _ = c.disconnect().await;
        Ok(creds)
    }

    /// Writes a marker row, then times the reset and a new connection's
    /// first query, which must not see the marker. Returns the time and
    /// whether the answer said it went through the standby.
    async fn timed_reset(
        &self,
        dollyd: &Dollyd,
        base: &str,
        name: &str,
        c: &Creds,
        i: usize,
    ) -> anyhow::Result<(f64, bool)> {
        {
            let mut conn = connect(c).await?;
            conn.query_drop(MARK).await?;
            conn.query_drop(format!("INSERT INTO bench_mark VALUES ({i})"))
                .await?;
            let _ = conn.disconnect().await;
        }
        let t0 = Instant::now();
        let r = self
            .http
            .post(dollyd.url(&format!("{base}/{name}/reset")))
            .json(&serde_json::json!({}))
            .send()
            .await
            .context("reset")?;
        let status = r.status();
        let body: serde_json::Value = r.json().await?;
        if status != 200 {
            bail!("reset of {name} answered {status}: {body}");
        }
        let mut conn = connect(c).await?;
        let marks: Option<u64> = conn
            .query_first(format!(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '{}' AND table_name = 'bench_mark'",
                c.database
            ))
            .await?;
        let took = ms(t0);
        let _ = conn.disconnect().await;
        if marks != Some(0) {
            bail!("after the reset of {name}, the marker table is still there");
        }
        Ok((took, body["standby"] == true))
    }

    /// Waits (bounded) until the instance at `path` has its standby ready.
    async fn wait_standby(&self, dollyd: &Dollyd, path: &str) -> anyhow::Result<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let v: serde_json::Value = self.http.get(dollyd.url(path)).send().await?.json().await?;
            if v["standby_status"]["ready"] == true {
                return Ok(v);
            }
            if Instant::now() > deadline {
                bail!("the standby of {path} was not ready within 300 s: {v}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Memory of `SLEEPERS` instances awake and asleep, then wake-ups
    /// interleaved with the floor.
    async fn sleepers(
        &self,
        dollyd: &Dollyd,
        template: &str,
        base: &str,
        image: &str,
    ) -> anyhow::Result<(f64, f64, f64, Vec<f64>, Vec<f64>)> {
        log(format!(
            "{image}: {SLEEPERS} instances with sleep_after {SLEEP_AFTER}s"
        ));
        let names: Vec<String> = (0..SLEEPERS).map(|i| format!("z{i}")).collect();
        let mut creds = Vec::new();
        let r = async {
            // Awake: three, measured after a query and 3 s idle (as the
            // servers table's idle figure); 50 awake MySQL servers would
            // exhaust the kernel's AIO contexts (fs.aio-max-nr) here.
            let awake_names = &names[..3];
            for n in awake_names {
                self.v1_create(dollyd, base, n, serde_json::json!({"sleep_after": 3600}))
                    .await?;
            }
            tokio::time::sleep(Duration::from_secs(3)).await;
            let awake: Vec<f64> = self.instance_memory(awake_names).await?;
            for n in awake_names {
                dollyd.delete(&self.http, template, n).await?;
            }
            // Asleep: 50 with a short sleep_after (each sleeps 2 s after
            // its create's query, so few are ever awake at once).
            for n in &names {
                creds.push(
                    self.v1_create(
                        dollyd,
                        base,
                        n,
                        serde_json::json!({"sleep_after": SLEEP_AFTER}),
                    )
                    .await?,
                );
            }
            self.wait_asleep(dollyd, base, &names).await?;
            tokio::time::sleep(Duration::from_secs(2)).await;
            let asleep = self.instance_memory(&names).await?;
            let total: f64 = asleep.iter().sum();
            log(format!(
                "{image}: {SLEEPERS} sleeping instances use {total:.1} MiB in all"
            ));
            // Wake-ups, interleaved with bare starts.
            let samples = self.args.samples.min(SLEEPERS - 1);
            let src = self.template_dir(template)?;
            let mode = CloneMode::detect(&self.data.join("tmp"))?;
            let (mut wake_ms, mut floor_ms) = (Vec::new(), Vec::new());
            for (i, c) in creds.iter().enumerate().take(samples + 1) {
                let dst = self.data.join("tmp").join(format!("wfloor-{i}"));
                remove_tree(&dst)?;
                let (s, dd, owner) = (src.clone(), dst.clone(), self.image.owner);
                tokio::task::spawn_blocking(move || clone_tree(&s, &dd, mode, owner)).await??;
                let fname = format!("{}wfloor-{i}", self.settings.container_prefix);
                let f = self
                    .bare_start(&dst, self.instance_spec(&fname, &dst))
                    .await;
                self.engine.remove(&fname).await?;
                remove_tree(&dst)?;
                let (f, _) = f?;
                let t0 = Instant::now();
                let mut conn = connect(c).await?;
                let _: Option<u64> = conn
                    .query_first(format!(
                        "SELECT COUNT(*) FROM `{}`.`customers`",
                        dumpgen::DATABASE
                    ))
                    .await?;
                let w = ms(t0);
                let _ = conn.disconnect().await;
                if i > 0 {
                    floor_ms.push(f);
                    wake_ms.push(w);
                }
            }
            Ok::<_, anyhow::Error>((median(&awake), median(&asleep), total, wake_ms, floor_ms))
        }
        .await;
        for n in &names {
            let _ = dollyd.delete(&self.http, template, n).await;
        }
        r
    }

    /// Waits until every instance of `names` reports `sleeping`.
    async fn wait_asleep(
        &self,
        dollyd: &Dollyd,
        base: &str,
        names: &[String],
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(600);
        for n in names {
            loop {
                let v: serde_json::Value = self
                    .http
                    .get(dollyd.url(&format!("{base}/{n}")))
                    .send()
                    .await?
                    .json()
                    .await?;
                if v["state"] == "sleeping" {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("{n} did not go to sleep: {v}");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Ok(())
    }

    /// Per instance of `names`, the memory of all its containers (cgroup
    /// v1 `docker stats` figure), MiB.
    async fn instance_memory(&self, names: &[String]) -> anyhow::Result<Vec<f64>> {
        let all = self
            .engine
            .list(&crate::bench_labels())
            .await
            .context("list containers")?;
        let mut out = Vec::new();
        for n in names {
            let mut total = 0.0;
            for c in all.iter().filter(|c| {
                c.labels.get("dolly.name") == Some(n) && c.state == dolly_engine::RunState::Running
            }) {
                let m = sys::container_memory(&c.id)
                    .ok_or_else(|| anyhow!("no cgroup v1 memory figures for {}", c.name))?;
                total += m.stats_bytes as f64 / MIB;
            }
            out.push(total);
        }
        Ok(out)
    }
}
