//! The floor: what a bare engine start of dolly's instance server on a
//! reflink clone costs (alone and many at once), and what each instance
//! setting buys in idle memory (the ablation).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use dolly_core::clone::{clone_tree, remove_tree, CloneMode};
use dolly_core::dbserver;
use dolly_engine::{ContainerSpec, Publish};
use futures_util::future::join_all;
use mysql_async::prelude::Queryable;

use crate::bench::Bench;
use crate::dollyd::{connect, Creds};
use crate::report::{median, Ablation, Concurrency, Floor, Summary};
use crate::util::{log, ms, random_hex, MIB};
use crate::{dumpgen, sys};

impl Bench {
    /// The floor: a reflink clone (timed apart), then a bare engine start
    /// with dolly's instance command, until an authenticated ping answers.
    pub async fn floor(&mut self, template: &str) -> anyhow::Result<Floor> {
        log(format!("floor for {template}"));
        let src = self.template_dir(template)?;
        let mode = CloneMode::detect(&self.data.join("tmp"))?;
        let mut start_ms = Vec::new();
        let mut clone_ms = Vec::new();
        let mut remove_ms = Vec::new();
        let mut remove_absent_ms = Vec::new();
        let mut kill_ms = Vec::new();
        let mut remove_stopped_ms = Vec::new();
        for i in 0..self.args.samples {
            let dst = self.data.join("tmp").join(format!("floor-{template}-{i}"));
            remove_tree(&dst)?;
            let t0 = Instant::now();
            let (s, d, owner) = (src.clone(), dst.clone(), self.image.owner);
            tokio::task::spawn_blocking(move || clone_tree(&s, &d, mode, owner)).await??;
            clone_ms.push(ms(t0));
            let name = format!("{}floor-{template}-{i}", self.settings.container_prefix);
            let r = self.bare_start(&dst, self.instance_spec(&name, &dst)).await;
            // What discarding the running server costs (a forced remove,
            // as a reset does), then a remove of a container that is gone.
            // Every other sample: a stop with no grace (SIGKILL at once,
            // the port released) first, then the remove of what is left.
            if i % 2 == 1 {
                let t0 = Instant::now();
                self.engine.stop(&name, 0).await?;
                kill_ms.push(ms(t0));
                let t0 = Instant::now();
                self.engine.remove(&name).await?;
                remove_stopped_ms.push(ms(t0));
            } else {
                let t0 = Instant::now();
                self.engine.remove(&name).await?;
                remove_ms.push(ms(t0));
            }
            let t0 = Instant::now();
            self.engine.remove(&name).await?;
            remove_absent_ms.push(ms(t0));
            remove_tree(&dst)?;
            let (ms_ready, _) = r?;
            start_ms.push(ms_ready);
        }
        Ok(Floor {
            template: template.to_owned(),
            clone_mode: mode.as_str().to_owned(),
            start: Summary::of(&start_ms),
            clone: Summary::of(&clone_ms),
            remove: Summary::of(&remove_ms),
            remove_absent: Summary::of(&remove_absent_ms),
            kill: Summary::of(&kill_ms),
            remove_stopped: Summary::of(&remove_stopped_ms),
            start_ms,
            clone_ms,
            remove_ms,
            remove_absent_ms,
            kill_ms,
            remove_stopped_ms,
        })
    }

    /// dolly's instance container on `datadir`, as a create runs it.
    pub(crate) fn instance_spec(&self, name: &str, datadir: &Path) -> ContainerSpec {
        self.image.instance_spec(
            self.server(name, datadir),
            self.settings.instance_bind,
            None,
            self.settings.instance_memory,
        )
    }

    /// The same container with `cmd` as the server's command (the
    /// ablation's variants of dolly's instance command).
    fn variant_spec(&self, name: &str, datadir: &Path, cmd: Vec<String>) -> ContainerSpec {
        let publish = Publish {
            container_port: dbserver::PORT,
            host_ip: self.settings.instance_bind,
            host_port: None,
        };
        self.image.server_spec(
            self.server(name, datadir),
            cmd,
            Some(publish),
            Some(self.settings.instance_memory),
        )
    }

    /// Writes an init file with a new password into `datadir`, starts
    /// `spec` (an instance container on `datadir`), and polls an
    /// authenticated `SELECT 1` every 10 ms. Returns the time from the
    /// engine call to the answer, and the port.
    pub(crate) async fn bare_start(
        &self,
        datadir: &Path,
        spec: ContainerSpec,
    ) -> anyhow::Result<(f64, u16)> {
        let name = spec.name.as_str();
        let password = random_hex(32);
        let init = datadir.join(dbserver::INIT_FILE);
        std::fs::write(&init, dbserver::init_sql(&password))?;
        std::os::unix::fs::chown(
            &init,
            Some(self.image.owner.uid),
            Some(self.image.owner.gid),
        )?;
        let t0 = Instant::now();
        self.engine.run(&spec).await?;
        let port = self
            .engine
            .inspect(name)
            .await?
            .and_then(|i| i.host_port)
            .ok_or_else(|| anyhow!("{name} has no published port"))?;
        // Bounded: 60 s at 10 ms.
        for _ in 0..6000 {
            if dolly_core::instance::ping("127.0.0.1", port, &password)
                .await
                .is_ok()
            {
                return Ok((ms(t0), port));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let logs = self.engine.logs_tail(name, 20).await.unwrap_or_default();
        bail!("{name} did not answer within 60 s: {logs}")
    }

    /// The floor for `n` starts at once: `n` prepared reflink clones, then
    /// `n` bare engine starts together, each until its ping answers.
    pub async fn concurrent_floor(&mut self, template: &str, n: usize) -> anyhow::Result<()> {
        log(format!("floor: {n} bare starts of {template} at once"));
        let src = self.template_dir(template)?;
        let mode = CloneMode::detect(&self.data.join("tmp"))?;
        let mut dirs = Vec::new();
        for i in 0..n {
            let dst = self.data.join("tmp").join(format!("cfloor-{i}"));
            remove_tree(&dst)?;
            let (s, d, owner) = (src.clone(), dst.clone(), self.image.owner);
            tokio::task::spawn_blocking(move || clone_tree(&s, &d, mode, owner)).await??;
            dirs.push(dst);
        }
        let names: Vec<String> = (0..n)
            .map(|i| format!("{}cfloor-{i}", self.settings.container_prefix))
            .collect();
        let t0 = Instant::now();
        let starts = names
            .iter()
            .zip(&dirs)
            .map(|(name, dir)| self.bare_start(dir, self.instance_spec(name, dir)));
        let results = join_all(starts).await;
        let total_ms = ms(t0);
        for (name, dir) in names.iter().zip(&dirs) {
            self.engine.remove(name).await?;
            remove_tree(dir)?;
        }
        let mut times = Vec::new();
        let mut errors = Vec::new();
        for r in results {
            match r {
                Ok((t, _)) => times.push(t),
                Err(e) => errors.push(format!("{e:#}")),
            }
        }
        self.report.concurrent_floors.push(Concurrency {
            template: template.to_owned(),
            n,
            ok: times.len(),
            total_ms,
            create: Summary::of(&times),
            create_ms: times,
            errors,
        });
        Ok(())
    }

    /// What each instance setting buys: idle memory of 3 instances per
    /// variant of dolly's instance command, started directly.
    pub async fn ablation(&mut self, template: &str) -> anyhow::Result<()> {
        log("memory settings ablation");
        let base = self.image.instance_command();
        let replace = |from: &str, to: &str| -> Vec<String> {
            base.iter()
                .map(|a| {
                    if a.starts_with(from) {
                        to.to_owned()
                    } else {
                        a.clone()
                    }
                })
                .collect()
        };
        let without = |drop: &[&str]| -> Vec<String> {
            base.iter()
                .filter(|a| !drop.iter().any(|d| a.starts_with(d)))
                .cloned()
                .collect()
        };
        let caches = [
            "--innodb-log-buffer-size",
            "--key-buffer-size",
            "--table-open-cache",
            "--table-definition-cache",
            "--thread-cache-size",
            "--max-connections",
            "--query-cache-size",
            "--aria-pagecache-buffer-size",
            "--sort-buffer-size",
        ];
        let mut all_defaults: Vec<&str> = caches.to_vec();
        all_defaults.extend([
            "--innodb-buffer-pool-size",
            "--performance-schema",
            "--innodb-buffer-pool-dump-at-shutdown",
            "--innodb-buffer-pool-load-at-startup",
        ]);
        let variants: Vec<(&str, Vec<String>)> = vec![
            ("dolly's instance settings", base.clone()),
            (
                "buffer pool 128M (default) instead of 8M",
                replace(
                    "--innodb-buffer-pool-size",
                    "--innodb-buffer-pool-size=128M",
                ),
            ),
            (
                "performance_schema ON",
                replace("--performance-schema", "--performance-schema=1"),
            ),
            ("default caches and buffers", without(&caches)),
            ("MariaDB defaults for all of these", without(&all_defaults)),
        ];
        let src = self.template_dir(template)?;
        let mode = CloneMode::detect(&self.data.join("tmp"))?;
        for (label, cmd) in variants {
            let mut mems = Vec::new();
            let mut ready = Vec::new();
            for i in 0..3 {
                let dst = self.data.join("tmp").join(format!("abl-{i}"));
                remove_tree(&dst)?;
                let (s, d, owner) = (src.clone(), dst.clone(), self.image.owner);
                tokio::task::spawn_blocking(move || clone_tree(&s, &d, mode, owner)).await??;
                let name = format!("{}abl-{i}", self.settings.container_prefix);
                let r = async {
                    let (t, port) = self
                        .bare_start(&dst, self.variant_spec(&name, &dst, cmd.clone()))
                        .await?;
                    ready.push(t);
                    let pw = std::fs::read_to_string(dst.join(dbserver::INIT_FILE))?;
                    let pw = pw
                        .split("IDENTIFIED BY '")
                        .nth(1)
                        .and_then(|s| s.split('\'').next())
                        .unwrap_or_default()
                        .to_owned();
                    let creds = Creds {
                        port,
                        password: pw,
                        database: dumpgen::DATABASE.to_owned(),
                    };
                    let mut conn = connect(&creds).await?;
                    let _: Option<u64> =
                        conn.query_first("SELECT COUNT(*) FROM `customers`").await?;
                    let _ = conn.disconnect().await;
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    let id = self
                        .engine
                        .inspect(&name)
                        .await?
                        .map(|i| i.id)
                        .ok_or_else(|| anyhow!("{name} is gone"))?;
                    sys::container_memory(&id).ok_or_else(|| anyhow!("no cgroup for {name}"))
                }
                .await;
                self.engine.remove(&name).await?;
                remove_tree(&dst)?;
                mems.push(r?);
            }
            let stats: Vec<f64> = mems.iter().map(|m| m.stats_bytes as f64 / MIB).collect();
            let rss: Vec<f64> = mems.iter().map(|m| m.rss_bytes as f64 / MIB).collect();
            self.report.ablation.push(Ablation {
                variant: label.to_owned(),
                stats_mib: median(&stats),
                rss_mib: median(&rss),
                ready_ms: median(&ready),
            });
        }
        Ok(())
    }
}
