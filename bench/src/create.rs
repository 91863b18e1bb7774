//! Creates through dollyd's API: create-to-ready and delete in a row,
//! concurrent creates, idle memory of instances, and dollyd's own cost
//! (`GET /db` with many instances).

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use futures_util::future::join_all;
use mysql_async::prelude::Queryable;

use crate::bench::Bench;
use crate::dollyd::{connect, Dollyd};
use crate::report::{median, Concurrency, Creates, ListCost, MemoryReport, Summary};
use crate::util::{log, ms};
use crate::{dumpgen, sys};

impl Bench {
    pub async fn sequential(
        &mut self,
        dollyd: &Dollyd,
        template: &str,
        tag: &str,
    ) -> anyhow::Result<Creates> {
        log(format!(
            "{} sequential creates of {template} ({} clones)",
            self.args.samples, dollyd.mode
        ));
        // One warm-up create, reported apart.
        let warm = dollyd
            .create(&self.http, template, &format!("{tag}-warm"))
            .await?;
        dollyd
            .delete(&self.http, template, &format!("{tag}-warm"))
            .await?;
        let mut create_ms = Vec::new();
        let mut delete_ms = Vec::new();
        for i in 0..self.args.samples {
            let name = format!("{tag}-{i}");
            let c = dollyd.create(&self.http, template, &name).await?;
            create_ms.push(c.ms);
            delete_ms.push(dollyd.delete(&self.http, template, &name).await?);
        }
        Ok(Creates {
            template: template.to_owned(),
            mode: dollyd.mode.to_owned(),
            first_ms: warm.ms,
            create: Summary::of(&create_ms),
            delete: Summary::of(&delete_ms),
            create_ms,
            delete_ms,
        })
    }

    pub async fn concurrent(
        &mut self,
        dollyd: &Dollyd,
        template: &str,
        n: usize,
    ) -> anyhow::Result<Concurrency> {
        log(format!("{n} concurrent creates of {template}"));
        let t0 = Instant::now();
        let futures = (0..n).map(|i| {
            let name = format!("c{n}-{i}");
            let http = self.http.clone();
            async move { dollyd.create(&http, template, &name).await }
        });
        let results = join_all(futures).await;
        let total_ms = ms(t0);
        let mut times = Vec::new();
        let mut errors = Vec::new();
        for r in &results {
            match r {
                Ok(c) => times.push(c.ms),
                Err(e) => errors.push(format!("{e:#}")),
            }
        }
        let names: Vec<String> = (0..n).map(|i| format!("c{n}-{i}")).collect();
        self.delete_all(dollyd, template, &names).await;
        Ok(Concurrency {
            template: template.to_owned(),
            n,
            ok: times.len(),
            total_ms,
            create: Summary::of(&times),
            create_ms: times,
            errors,
        })
    }

    /// Deletes names, 8 at a time; errors (like a name never created) are
    /// ignored: the sweep at the end removes anything left.
    async fn delete_all(&self, dollyd: &Dollyd, template: &str, names: &[String]) {
        for chunk in names.chunks(8) {
            let futures = chunk.iter().map(|n| dollyd.delete(&self.http, template, n));
            let _ = join_all(futures).await;
        }
    }

    pub async fn memory(&mut self, dollyd: &Dollyd, template: &str) -> anyhow::Result<()> {
        let n = 30;
        log(format!("{n} idle instances of {template}"));
        let names: Vec<String> = (0..n).map(|i| format!("idle-{i}")).collect();
        let mut made = Vec::new();
        let result = async {
            for name in &names {
                let c = dollyd.create(&self.http, template, name).await?;
                made.push(c);
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
            let mut mems = Vec::new();
            for name in &names {
                let cname = format!("{}{template}.{name}", self.settings.container_prefix);
                let info = self
                    .engine
                    .inspect(&cname)
                    .await?
                    .ok_or_else(|| anyhow!("container {cname} is missing"))?;
                let m = sys::container_memory(&info.id).ok_or_else(|| {
                    anyhow!("no cgroup v1 memory figures for {cname} under /sys/fs/cgroup/memory")
                })?;
                mems.push(m);
            }
            let list = self.list_p50(dollyd).await?;
            self.report.dollyd.list_ms.push(ListCost {
                instances: n,
                p50_ms: list,
            });
            self.report.dollyd.rss_30_mib = dollyd.rss_mib();
            Ok::<_, anyhow::Error>(mems)
        }
        .await;
        self.delete_all(dollyd, template, &names).await;
        let mems = result?;
        self.report.memory = Some(MemoryReport::of(template, &mems));
        Ok(())
    }

    pub async fn list_p50(&self, dollyd: &Dollyd) -> anyhow::Result<f64> {
        let mut times = Vec::new();
        for _ in 0..20 {
            let t0 = Instant::now();
            let r = self.http.get(dollyd.url("/db")).send().await?;
            let status = r.status();
            let _ = r.bytes().await?;
            if status != 200 {
                bail!("GET /db answered {status}");
            }
            times.push(ms(t0));
        }
        Ok(median(&times))
    }

    pub async fn many(&mut self, dollyd: &Dollyd, template: &str, n: usize) -> anyhow::Result<()> {
        log(format!("{n} instances for GET /db"));
        let budget = Duration::from_secs(20 * 60);
        let t0 = Instant::now();
        let mut names = Vec::new();
        let mut note = None;
        for i in 0..n {
            if t0.elapsed() > budget {
                note = Some(format!("stopped at {i} instances: 20 min budget spent"));
                break;
            }
            let name = format!("l-{i}");
            match dollyd.create(&self.http, template, &name).await {
                Ok(_) => names.push(name),
                Err(e) => {
                    note = Some(format!("stopped at {i} instances: {e:#}"));
                    names.push(name);
                    break;
                }
            }
            if (i + 1) % 50 == 0 {
                log(format!("{} instances", i + 1));
            }
        }
        let count = if note.is_some() {
            names.len().saturating_sub(1)
        } else {
            names.len()
        };
        let result = async {
            let p50 = self.list_p50(dollyd).await?;
            let body: serde_json::Value = self
                .http
                .get(dollyd.url("/db"))
                .send()
                .await?
                .json()
                .await?;
            let listed = body["databases"].as_array().map(|a| a.len()).unwrap_or(0);
            Ok::<_, anyhow::Error>((p50, listed))
        }
        .await;
        self.report.dollyd.rss_many_mib = dollyd.rss_mib();
        self.report.dollyd.many_create_s = Some(t0.elapsed().as_secs_f64());
        log("removing them");
        self.delete_all(dollyd, template, &names).await;
        let (p50, listed) = result?;
        self.report.dollyd.list_ms.push(ListCost {
            instances: listed.max(count),
            p50_ms: p50,
        });
        self.report.dollyd.many_note = note;
        Ok(())
    }
}
