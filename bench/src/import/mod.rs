//! Import speed: dolly's `update` in-process against the same dump piped
//! into `mariadb` on a server with its default configuration (the
//! baseline), the parallel-load experiment, and the check that both give
//! the same rows and checksums.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use dolly_core::clone::{own_tree, remove_tree};
use dolly_core::context::Context;
use dolly_core::dbserver;
use dolly_types::TemplateName;
use futures_util::future::join_all;
use mysql_async::prelude::Queryable;

use crate::bench::{Bench, DumpSpec};
use crate::dollyd::{connect, Dollyd};
use crate::dumps::split_dump;
use crate::report::{Import, ParallelExperiment};
use crate::util::log;
use crate::{dumpgen, sys};

/// What a load on a bare server measured.
struct Baseline {
    total_s: f64,
    load_s: f64,
    /// CPU of the engine's processes during the load.
    engine_cpu_s: f64,
    /// Machine-wide busy cores during the load (includes other users).
    busy_cores: f64,
    cpu: sys::CpuSplit,
    rows: Vec<(String, u64)>,
    checksums: Vec<(String, String)>,
}

impl Bench {
    fn context(&self) -> anyhow::Result<Arc<Context>> {
        Ok(Arc::new(Context::new(
            self.settings.clone(),
            Arc::clone(&self.engine),
        )?))
    }

    pub async fn import(&mut self, d: &DumpSpec, counts: &dumpgen::Counts) -> anyhow::Result<()> {
        let dump_file = self.data.join("dumps").join(format!("{}.sql", d.template));
        let dump_bytes = std::fs::metadata(&dump_file)?.len();
        let t = TemplateName::parse(d.template)?;

        // dolly's update, in-process, as `dollyd update NAME` runs it.
        log(format!("dolly update {}", d.template));
        let ctx = self.context()?;
        let sampler = sys::CpuSampler::start(
            Arc::clone(&self.engine),
            format!("{}{}._import", self.settings.container_prefix, t),
        );
        let cpu0 = sys::self_cpu();
        let engine0 = sys::engine_cpu();
        let jiffies0 = sys::machine_jiffies();
        let started = Instant::now();
        let outcomes = dolly_core::template::update(
            &ctx,
            std::slice::from_ref(&t),
            &dolly_core::template::NothingInUse,
        )
        .await?;
        let dolly_s = started.elapsed().as_secs_f64();
        let feed_cpu = sys::self_cpu() - cpu0;
        let engine_cpu = sys::engine_cpu() - engine0;
        let busy = sys::busy_cores(jiffies0, sys::machine_jiffies());
        let dolly_cpu = sys::split(&sampler.finish().await);
        let meta = match outcomes.into_iter().next().map(|o| o.result) {
            Some(Ok(m)) => m,
            Some(Err(e)) => bail!("dolly's import of {} failed: {e}", d.template),
            None => bail!("dolly's update imported nothing for {}", d.template),
        };
        log(format!("dolly update {}: {dolly_s:.1} s", d.template));

        // The baseline: the same dump piped into `mariadb` on a server with
        // its default configuration.
        log(format!("baseline import {}", d.template));
        let baseline = self.baseline(d.template, &dump_file).await?;
        log(format!(
            "baseline import {}: load {:.1} s",
            d.template, baseline.load_s
        ));
        let mut parallel = Vec::new();
        for (label, strip) in [
            ("2 sessions by table, dump as is", false),
            (
                "2 sessions by table, LOCK/UNLOCK TABLES lines removed",
                true,
            ),
        ] {
            log(format!("experiment {}: {label}", d.template));
            let p = self
                .parallel_experiment(d.template, &dump_file, 2, strip)
                .await?;
            log(format!("experiment {}: load {:.1} s", d.template, p.load_s));
            parallel.push((label, p));
        }
        let expected: Vec<(String, u64)> = counts.tables();
        let rows_match_generator = baseline.rows == expected;
        self.report.imports.push(Import {
            template: d.template.to_owned(),
            dump_bytes,
            dolly_update_s: dolly_s,
            dolly_mb_s: dump_bytes as f64 / 1e6 / dolly_s,
            dolly_template_bytes: meta.size_bytes,
            dolly_cpu,
            dolly_feed_cpu_s: feed_cpu,
            dolly_engine_cpu_s: engine_cpu,
            dolly_busy_cores: busy,
            baseline_engine_cpu_s: baseline.engine_cpu_s,
            baseline_busy_cores: baseline.busy_cores,
            baseline_total_s: baseline.total_s,
            baseline_load_s: baseline.load_s,
            baseline_mb_s: dump_bytes as f64 / 1e6 / baseline.load_s,
            baseline_cpu: baseline.cpu,
            speedup: baseline.load_s / dolly_s,
            baseline_rows: baseline.rows.clone(),
            baseline_checksums: baseline.checksums.clone(),
            dolly_rows: vec![],
            dolly_checksums: vec![],
            rows_match_generator,
            identical: false,
            parallel: parallel
                .into_iter()
                .map(|(label, p)| ParallelExperiment {
                    variant: label.to_owned(),
                    sessions: 2,
                    total_s: p.total_s,
                    load_s: p.load_s,
                    mb_s: dump_bytes as f64 / 1e6 / p.load_s,
                    speedup_vs_baseline: baseline.load_s / p.load_s,
                    identical: p.rows == baseline.rows && p.checksums == baseline.checksums,
                    engine_cpu_s: p.engine_cpu_s,
                    busy_cores: p.busy_cores,
                    cpu: p.cpu,
                })
                .collect(),
        });
        Ok(())
    }

    async fn baseline(&self, template: &str, dump_file: &Path) -> anyhow::Result<Baseline> {
        let datadir = dbserver::DATADIR;
        let socket = dbserver::SOCKET;
        let script = format!(
            "set -e; mariadb-install-db --no-defaults --datadir={datadir} \
             --auth-root-authentication-method=normal --skip-test-db >/tmp/init.log 2>&1 \
             || {{ cat /tmp/init.log; exit 1; }}; \
             exec mariadbd --no-defaults --datadir={datadir} --socket={socket} \
             --pid-file=/run/mysqld/mysqld.pid"
        );
        let cmd = vec!["sh".into(), "-c".into(), script];
        self.load("baseline", template, cmd, &[dump_file.to_path_buf()])
            .await
    }

    /// An experiment for the core owner: dolly's own import server
    /// (`ImageInfo::import_command`), the dump split by table into
    /// `sessions` client sessions that load at once (each gets the dump's
    /// header, so its session settings hold).
    async fn parallel_experiment(
        &self,
        template: &str,
        dump_file: &Path,
        sessions: usize,
        strip_locks: bool,
    ) -> anyhow::Result<Baseline> {
        let parts = split_dump(dump_file, &self.data, template, sessions, strip_locks)?;
        let cmd = self
            .image
            .import_command(self.settings.import_buffer_pool, dbserver::Init::Here);
        let r = self.load("parallel", template, cmd, &parts).await;
        for p in &parts {
            let _ = std::fs::remove_file(p);
        }
        r
    }

    /// Starts a server with `cmd` on a fresh datadir, pipes each of `parts`
    /// into its own `mariadb` client at once, then reads row counts and
    /// checksums.
    async fn load(
        &self,
        kind: &str,
        template: &str,
        cmd: Vec<String>,
        parts: &[PathBuf],
    ) -> anyhow::Result<Baseline> {
        let dir = self.data.join(format!("{kind}-{template}"));
        remove_tree(&dir)?;
        std::fs::create_dir_all(&dir)?;
        own_tree(&dir, self.image.owner, true)?;
        let name = format!("{}{kind}-{template}", self.settings.container_prefix);
        let socket = dbserver::SOCKET;
        let spec = self
            .image
            .server_spec(self.server(&name, &dir), cmd, None, None);
        let sampler = sys::CpuSampler::start(Arc::clone(&self.engine), name.clone());
        let started = Instant::now();
        self.engine.run(&spec).await?;
        let up = self
            .engine
            .exec(&name, self.image.wait_socket_command(120), None, None)
            .await?;
        if up.exit_code != 0 {
            let logs = self.engine.logs_tail(&name, 30).await.unwrap_or_default();
            bail!("the {kind} server did not start: {logs}");
        }
        let client = vec![
            "mariadb".to_owned(),
            "--no-defaults".to_owned(),
            format!("--socket={socket}"),
            "-uroot".to_owned(),
        ];
        let mut stdins = Vec::new();
        for p in parts {
            stdins.push(tokio::fs::File::open(p).await?);
        }
        let engine0 = sys::engine_cpu();
        let jiffies0 = sys::machine_jiffies();
        let load_started = Instant::now();
        let execs = stdins.into_iter().map(|f| {
            self.engine.exec(
                &name,
                client.clone(),
                Some(self.image.user()),
                Some(Box::pin(f)),
            )
        });
        let outs = tokio::time::timeout(Duration::from_secs(3 * 3600), join_all(execs))
            .await
            .map_err(|_| anyhow!("the {kind} load of {template} took over 3 h"))?;
        let load_s = load_started.elapsed().as_secs_f64();
        let total_s = started.elapsed().as_secs_f64();
        let engine_cpu_s = sys::engine_cpu() - engine0;
        let busy_cores = sys::busy_cores(jiffies0, sys::machine_jiffies());
        let cpu = sys::split(&sampler.finish().await);
        for out in outs {
            let out = out?;
            if out.exit_code != 0 {
                bail!(
                    "the {kind} load of {template} failed ({}): {}",
                    out.exit_code,
                    out.stderr
                );
            }
        }
        let tables = ["customers", "order_items", "orders", "products"];
        let db = dumpgen::DATABASE;
        let mut sql: Vec<String> = tables
            .iter()
            .map(|t| format!("SELECT '{t}', COUNT(*) FROM `{db}`.`{t}`;"))
            .collect();
        sql.push(format!(
            "CHECKSUM TABLE {};",
            tables
                .iter()
                .map(|t| format!("`{db}`.`{t}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let q = self
            .engine
            .exec(
                &name,
                vec![
                    "mariadb".into(),
                    "--no-defaults".into(),
                    format!("--socket={socket}"),
                    "-uroot".into(),
                    "-N".into(),
                    "-B".into(),
                    "-e".into(),
                    sql.join(" "),
                ],
                None,
                None,
            )
            .await?;
        if q.exit_code != 0 {
            bail!("{kind} check query failed: {}", q.stderr);
        }
        let mut rows = Vec::new();
        let mut checksums = Vec::new();
        for line in q.stdout.lines() {
            let mut f = line.split('\t');
            let (Some(a), Some(b)) = (f.next(), f.next()) else {
                continue;
            };
            if let Some(t) = a.strip_prefix(&format!("{db}.")) {
                checksums.push((t.to_owned(), b.to_owned()));
            } else {
                rows.push((a.to_owned(), b.parse().unwrap_or(0)));
            }
        }
        self.engine.remove(&name).await?;
        remove_tree(&dir)?;
        Ok(Baseline {
            total_s,
            load_s,
            engine_cpu_s,
            busy_cores,
            cpu,
            rows,
            checksums,
        })
    }

    /// Row counts and checksums of a template, through a real instance.
    pub async fn verify(
        &mut self,
        dollyd: &Dollyd,
        template: &str,
        counts: &dumpgen::Counts,
    ) -> anyhow::Result<()> {
        log(format!("verifying template {template}"));
        let created = dollyd.create(&self.http, template, "verify").await?;
        let creds = created.creds.clone();
        let result = async {
            let mut conn = connect(&creds).await?;
            let mut rows = Vec::new();
            for (t, _) in counts.tables() {
                let n: Option<u64> = conn
                    .query_first(format!(
                        "SELECT COUNT(*) FROM `{}`.`{t}`",
                        dumpgen::DATABASE
                    ))
                    .await?;
                rows.push((t, n.unwrap_or(0)));
            }
            let list = counts
                .tables()
                .iter()
                .map(|(t, _)| format!("`{}`.`{t}`", dumpgen::DATABASE))
                .collect::<Vec<_>>()
                .join(", ");
            let sums: Vec<(String, Option<String>)> =
                conn.query(format!("CHECKSUM TABLE {list}")).await?;
            let _ = conn.disconnect().await;
            let prefix = format!("{}.", dumpgen::DATABASE);
            let checksums: Vec<(String, String)> = sums
                .into_iter()
                .map(|(t, c)| {
                    (
                        t.strip_prefix(&prefix).unwrap_or(&t).to_owned(),
                        c.unwrap_or_else(|| "NULL".into()),
                    )
                })
                .collect();
            Ok::<_, anyhow::Error>((rows, checksums))
        }
        .await;
        dollyd.delete(&self.http, template, "verify").await?;
        let (rows, checksums) = result?;
        if let Some(imp) = self
            .report
            .imports
            .iter_mut()
            .find(|i| i.template == template)
        {
            imp.identical = rows == imp.baseline_rows && checksums == imp.baseline_checksums;
            imp.dolly_rows = rows;
            imp.dolly_checksums = checksums;
        }
        Ok(())
    }
}
