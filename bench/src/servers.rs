//! `--only servers`: dolly's create, reset and idle memory on each image
//! of `--images` (MariaDB 10.11, MariaDB 11.8 and MySQL 9 by default), one
//! image after the other in one run, each against its own floor: the
//! same small dump imported on that image, then rounds of one bare start
//! (the floor) and one create through dollyd, interleaved so both see the
//! same load.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use dolly_core::clone::{clone_tree, remove_tree, CloneMode};
use dolly_core::dbserver::ImageInfo;
use mysql_async::prelude::Queryable;
use serde::Serialize;

use crate::bench::{Bench, DumpSpec};
use crate::dollyd::{connect, Dollyd};
use crate::report::Summary;
use crate::util::{log, MIB};
use crate::{bench_labels, dumpgen, sweep, sys};

/// The images `--only servers` compares when `--images` is not given.
pub const DEFAULT_IMAGES: [&str; 3] =
    ["dolly-mariadb:10.11", "dolly-mariadb:11.8", "dolly-mysql:9"];

/// Idle instances whose memory is taken, per image.
const IDLE: usize = 3;

/// One image's figures.
#[derive(Debug, Clone, Serialize)]
pub struct ServerRow {
    pub image: String,
    pub version: String,
    pub import_s: f64,
    /// Bare engine starts on a reflink clone until an authenticated ping.
    pub floor: Summary,
    /// Creates through dollyd's API (pool 0), interleaved with the floor.
    pub create: Summary,
    /// create p50 / floor p50.
    pub ratio: f64,
    pub reset: Summary,
    /// Median `docker stats` figure of idle instances (after one query and
    /// 3 s idle), and their total_rss.
    pub idle_mib: f64,
    pub idle_rss_mib: f64,
    pub floor_ms: Vec<f64>,
    pub create_ms: Vec<f64>,
    pub reset_ms: Vec<f64>,
    pub idle_mibs: Vec<f64>,
}

impl Bench {
    /// Every image of `--images` in turn; an image that fails is an error
    /// in the report, and the next one still runs.
    pub async fn servers(&mut self, d: &DumpSpec) -> anyhow::Result<()> {
        let images: Vec<String> = match self.args.images() {
            Some(v) => v.to_vec(),
            None => DEFAULT_IMAGES.iter().map(|s| s.to_string()).collect(),
        };
        for (i, image) in images.iter().enumerate() {
            let r = self.server_row(d, image, i).await;
            let _ = sweep(self.engine.as_ref()).await;
            match r {
                Ok(row) => self.report.servers.push(row),
                Err(e) => {
                    log(format!("{image}: {e:#}"));
                    self.report.errors.push(format!("{image}: {e:#}"));
                }
            }
        }
        if self.report.servers.is_empty() {
            bail!("no image could be measured");
        }
        Ok(())
    }

    /// Switches the bench to `image` on an emptied data folder and imports
    /// `d` there with dolly's update; returns the import's seconds.
    pub(crate) async fn import_on(&mut self, d: &DumpSpec, image: &str) -> anyhow::Result<f64> {
        self.use_image(image, d).await?;
        let template = d.template;
        log(format!("{image}: dolly update {template}"));
        let started = Instant::now();
        let t = dolly_types::TemplateName::parse(template)?;
        let ctx = std::sync::Arc::new(dolly_core::context::Context::new(
            self.settings.clone(),
            std::sync::Arc::clone(&self.engine),
        )?);
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
        drop(ctx);
        Ok(started.elapsed().as_secs_f64())
    }

    /// Switches the bench to `image` on an emptied data folder.
    async fn use_image(&mut self, image: &str, d: &DumpSpec) -> anyhow::Result<()> {
        self.engine.ensure_image(image).await.with_context(|| {
            format!("image {image} is missing: docker/build-server-image.sh {image}")
        })?;
        self.image = ImageInfo::probe(
            self.engine.as_ref(),
            image,
            &format!("{}probe", self.settings.container_prefix),
            bench_labels(),
        )
        .await?;
        self.settings.image = image.to_owned();
        remove_tree(&self.data)?;
        std::fs::create_dir_all(self.data.join("dumps"))?;
        self.generate(d).await?;
        // The same dump for every image: listed once.
        self.report
            .dumps
            .dedup_by(|a, b| a.template == b.template && a.bytes == b.bytes);
        Ok(())
    }

    async fn server_row(
        &mut self,
        d: &DumpSpec,
        image: &str,
        index: usize,
    ) -> anyhow::Result<ServerRow> {
        let import_s = self.import_on(d, image).await?;
        let template = d.template;
        let mode: &'static str = Box::leak(format!("servers-{index}").into_boxed_str());
        let mut dollyd =
            Dollyd::spawn_with_env(self, &self.data, mode, &[("DOLLY_POOL_SIZE", "0")]).await?;
        let r = self.measure_server(&dollyd, template).await;
        dollyd.stop_mut().await;
        let (floor_ms, create_ms, reset_ms, idle) = r?;
        let floor = Summary::of(&floor_ms);
        let create = Summary::of(&create_ms);
        let idle_mibs: Vec<f64> = idle.iter().map(|m| m.0).collect();
        let rss: Vec<f64> = idle.iter().map(|m| m.1).collect();
        Ok(ServerRow {
            image: image.to_owned(),
            version: self.image.version.clone(),
            import_s,
            ratio: create.p50 / floor.p50,
            floor,
            create,
            reset: Summary::of(&reset_ms),
            idle_mib: crate::report::median(&idle_mibs),
            idle_rss_mib: crate::report::median(&rss),
            floor_ms,
            create_ms,
            reset_ms,
            idle_mibs,
        })
    }

    /// Rounds of (one floor sample, one create), a warm-up of each first;
    /// then resets of one instance; then the memory of idle instances.
    #[allow(clippy::type_complexity)]
    async fn measure_server(
        &self,
        dollyd: &Dollyd,
        template: &str,
    ) -> anyhow::Result<(Vec<f64>, Vec<f64>, Vec<f64>, Vec<(f64, f64)>)> {
        let samples = self.args.samples;
        let src = self.template_dir(template)?;
        let mode = CloneMode::detect(&self.data.join("tmp"))?;
        log(format!(
            "{}: {samples} rounds of a bare start and a create",
            self.settings.image
        ));
        let (mut floor_ms, mut create_ms) = (Vec::new(), Vec::new());
        for i in 0..=samples {
            let dst = self.data.join("tmp").join(format!("sfloor-{i}"));
            remove_tree(&dst)?;
            let (s, dd, owner) = (src.clone(), dst.clone(), self.image.owner);
            tokio::task::spawn_blocking(move || clone_tree(&s, &dd, mode, owner)).await??;
            let name = format!("{}sfloor-{i}", self.settings.container_prefix);
            let r = self.bare_start(&dst, self.instance_spec(&name, &dst)).await;
            self.engine.remove(&name).await?;
            remove_tree(&dst)?;
            let (f, _) = r?;
            let iname = format!("c-{i}");
            let c = dollyd.create(&self.http, template, &iname).await?;
            dollyd.delete(&self.http, template, &iname).await?;
            if i > 0 {
                // Round 0 is a warm-up.
                floor_ms.push(f);
                create_ms.push(c.ms);
            }
        }
        log(format!("{}: {samples} resets", self.settings.image));
        dollyd.create(&self.http, template, "r").await?;
        let mut reset_ms = Vec::new();
        for _ in 0..=samples {
            reset_ms.push(crate::pool::reset(self, dollyd, template, "r").await?);
        }
        reset_ms.remove(0);
        dollyd.delete(&self.http, template, "r").await?;
        log(format!("{}: {IDLE} idle instances", self.settings.image));
        let mut idle = Vec::new();
        let names: Vec<String> = (0..IDLE).map(|i| format!("idle-{i}")).collect();
        let r = async {
            let mut made = Vec::new();
            for n in &names {
                made.push(dollyd.create(&self.http, template, n).await?);
            }
            for c in &made {
                let mut conn = connect(&c.creds).await?;
                let _: Option<u64> = conn
                    .query_first(format!(
                        "SELECT COUNT(*) FROM `{}`.`customers`",
                        dumpgen::DATABASE
                    ))
                    .await?;
                let _ = conn.disconnect().await;
            }
            tokio::time::sleep(Duration::from_secs(3)).await;
            for n in &names {
                let cname = format!("{}{template}.{n}", self.settings.container_prefix);
                let id = self
                    .engine
                    .inspect(&cname)
                    .await?
                    .map(|i| i.id)
                    .ok_or_else(|| anyhow!("container {cname} is missing"))?;
                let m = sys::container_memory(&id)
                    .ok_or_else(|| anyhow!("no cgroup v1 memory figures for {cname}"))?;
                idle.push((m.stats_bytes as f64 / MIB, m.rss_bytes as f64 / MIB));
            }
            Ok::<_, anyhow::Error>(())
        }
        .await;
        for n in &names {
            let _ = dollyd.delete(&self.http, template, n).await;
        }
        r?;
        Ok((floor_ms, create_ms, reset_ms, idle))
    }
}
