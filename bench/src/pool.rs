//! The warm pool (issue 13), against the floor measured in the same run:
//! the cold path (pool 0), creates served from the pool (sequential, the
//! pool refilled between them), bursts of 8 and 32 with a pool at least as
//! large, and reset.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use futures_util::future::join_all;

use crate::bench::{Bench, DumpSpec};
use crate::dollyd::Dollyd;
use crate::report::{Concurrency, Floor, PoolReport, Summary};
use crate::util::{log, ms};

/// The largest burst, and so the pool size.
const BURSTS: [usize; 2] = [8, 32];

impl Bench {
    /// `--only pool`: the small dump imported (no baseline), the floor, then
    /// the pool measurements.
    pub async fn only_pool(&mut self, d: &DumpSpec) -> anyhow::Result<()> {
        self.generate(d).await?;
        log(format!("dolly update {}", d.template));
        let t = dolly_types::TemplateName::parse(d.template)?;
        let ctx = std::sync::Arc::new(dolly_core::context::Context::new(
            self.settings.clone(),
            std::sync::Arc::clone(&self.engine),
        )?);
        let started = Instant::now();
        for o in dolly_core::template::update(
            &ctx,
            std::slice::from_ref(&t),
            &dolly_core::template::NothingInUse,
        )
        .await?
        {
            if let Err(e) = o.result {
                bail!("import of {} failed: {e}", o.template);
            }
        }
        log(format!(
            "dolly update {}: {:.1} s",
            d.template,
            started.elapsed().as_secs_f64()
        ));
        self.warm_pool(d.template).await
    }

    /// The pool measurements, with a dollyd of their own on the run's data
    /// folder (no other dollyd may serve it meanwhile).
    pub async fn warm_pool(&mut self, template: &str) -> anyhow::Result<()> {
        let floor = match self.report.floors.iter().find(|f| f.template == template) {
            Some(f) => f.start.p50,
            None => {
                let f: Floor = self.floor(template).await?;
                let p50 = f.start.p50;
                self.report.floors.push(f);
                p50
            }
        };
        let size = *BURSTS.iter().max().unwrap_or(&32);
        let mut dollyd =
            Dollyd::spawn_with_env(self, &self.data, "pool", &[("DOLLY_POOL_SIZE", "0")]).await?;
        let result = self.measure_pool(&dollyd, template, size, floor).await;
        dollyd.stop_mut().await;
        let report = result?;
        self.report.pool = Some(report);
        Ok(())
    }

    async fn measure_pool(
        &self,
        d: &Dollyd,
        template: &str,
        size: usize,
        floor: f64,
    ) -> anyhow::Result<PoolReport> {
        let samples = self.args.samples;
        // 1. The cold path: no pool.
        log(format!(
            "pool: {samples} cold creates of {template} (pool 0)"
        ));
        let mut cold_ms = Vec::new();
        for i in 0..=samples {
            let name = format!("cold-{i}");
            let c = d.create(&self.http, template, &name).await?;
            d.delete(&self.http, template, &name).await?;
            if i > 0 {
                cold_ms.push(c.ms); // the first is a warm-up
            }
        }

        // 2. Fill the pool: its size is the largest burst.
        log(format!("pool: size {size}, filling"));
        let t0 = Instant::now();
        set_pool(self, d, template, size).await?;
        wait_pool(self, d, template, size, Duration::from_secs(600)).await?;
        let fill_s = t0.elapsed().as_secs_f64();
        log(format!("pool: {size} ready in {fill_s:.1} s"));

        // 3. Sequential creates, the pool full again before each.
        log(format!("pool: {samples} sequential creates from the pool"));
        let mut create_ms = Vec::new();
        let mut refill_ms = Vec::new();
        for i in 0..samples {
            let name = format!("warm-{i}");
            let c = d.create(&self.http, template, &name).await?;
            create_ms.push(c.ms);
            let t0 = Instant::now();
            wait_pool(self, d, template, size, Duration::from_secs(120)).await?;
            refill_ms.push(ms(t0));
            d.delete(&self.http, template, &name).await?;
        }

        // 4. Bursts, the pool full before each.
        let mut bursts = Vec::new();
        for n in BURSTS {
            wait_pool(self, d, template, size, Duration::from_secs(600)).await?;
            log(format!("pool: {n} creates at once from a pool of {size}"));
            let t0 = Instant::now();
            let names: Vec<String> = (0..n).map(|i| format!("b{n}-{i}")).collect();
            let results = join_all(names.iter().map(|name| {
                let http = self.http.clone();
                async move { d.create(&http, template, name).await }
            }))
            .await;
            let total_ms = ms(t0);
            let mut times = Vec::new();
            let mut errors = Vec::new();
            for r in results {
                match r {
                    Ok(c) => times.push(c.ms),
                    Err(e) => errors.push(format!("{e:#}")),
                }
            }
            for chunk in names.chunks(8) {
                let _ = join_all(chunk.iter().map(|n| d.delete(&self.http, template, n))).await;
            }
            bursts.push(Concurrency {
                template: template.to_owned(),
                n,
                ok: times.len(),
                total_ms,
                create: Summary::of(&times),
                create_ms: times,
                errors,
            });
        }

        // 5. Reset of an instance (handed out from the pool), the pool full.
        wait_pool(self, d, template, size, Duration::from_secs(600)).await?;
        log(format!("pool: {samples} resets"));
        d.create(&self.http, template, "r").await?;
        let mut reset_ms = Vec::new();
        for _ in 0..=samples {
            reset_ms.push(reset(self, d, template, "r").await?);
        }
        reset_ms.remove(0); // a warm-up
        d.delete(&self.http, template, "r").await?;

        // 6. Memory of the idle members (what a pool costs).
        let member_mib = self.member_memory().await;
        Ok(PoolReport {
            template: template.to_owned(),
            size,
            floor_p50_ms: floor,
            fill_s,
            cold: Summary::of(&cold_ms),
            create: Summary::of(&create_ms),
            refill: Summary::of(&refill_ms),
            reset: Summary::of(&reset_ms),
            bursts,
            member_mib,
            cold_ms,
            create_ms,
            refill_ms,
            reset_ms,
        })
    }

    /// Median docker-stats memory of the pool members now running (None
    /// when the cgroup figures are not there).
    async fn member_memory(&self) -> Option<f64> {
        let list = self.engine.list(&crate::bench_labels()).await.ok()?;
        let mut mibs: Vec<f64> = list
            .iter()
            .filter(|c| c.name.contains("pool."))
            .filter_map(|c| crate::sys::container_memory(&c.id))
            .map(|m| m.stats_bytes as f64 / crate::util::MIB)
            .collect();
        if mibs.is_empty() {
            return None;
        }
        mibs.sort_by(f64::total_cmp);
        Some(crate::report::median(&mibs))
    }
}

async fn set_pool(b: &Bench, d: &Dollyd, template: &str, size: usize) -> anyhow::Result<()> {
    let r = b
        .http
        .put(d.url(&format!("/api/v1/templates/{template}/pool")))
        .json(&serde_json::json!({ "size": size }))
        .send()
        .await?;
    let status = r.status();
    if status != 200 {
        bail!(
            "PUT .../pool answered {status}: {}",
            r.text().await.unwrap_or_default()
        );
    }
    Ok(())
}

/// Waits (bounded) until `size` members are ready.
async fn wait_pool(
    b: &Bench,
    d: &Dollyd,
    template: &str,
    size: usize,
    limit: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let v: serde_json::Value = b
            .http
            .get(d.url(&format!("/api/v1/templates/{template}")))
            .send()
            .await?
            .json()
            .await?;
        let ready = v["pool"]["ready"]
            .as_u64()
            .ok_or_else(|| anyhow!("no pool.ready in {v}"))?;
        if ready as usize >= size {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the pool has {ready} of {size} ready after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `POST .../reset {}` until its answer; the time.
pub(crate) async fn reset(
    b: &Bench,
    d: &Dollyd,
    template: &str,
    name: &str,
) -> anyhow::Result<f64> {
    let t0 = Instant::now();
    let r = b
        .http
        .post(d.url(&format!(
            "/api/v1/templates/{template}/instances/{name}/reset"
        )))
        .json(&serde_json::json!({}))
        .send()
        .await
        .context("reset")?;
    let status = r.status();
    let body = r.text().await?;
    let took = ms(t0);
    if status != 200 {
        bail!("reset of {template}/{name} answered {status}: {body}");
    }
    Ok(took)
}
