//! Import speed (issue 12): dolly's `update` in-process against the same
//! dump piped into `mariadb` on a server with its default configuration
//! (`baseline`), what each part of dolly's import buys (`ablation`), the
//! unchanged skip (`skip`), a physical backup of the baseline's server
//! imported as a template (`physical`), and the check that they all hold
//! the same tables (`verify`).

mod ablation;
mod baseline;
mod masking;
mod physical;
mod skip;
mod verify;

use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail};
use dolly_core::context::Context;
use dolly_core::template::{NothingInUse, UpdateOptions, VersionMeta};
use dolly_types::TemplateName;

use crate::bench::{Bench, DumpSpec};
use crate::dollyd::Dollyd;
use crate::report::{Import, Summary};
use crate::util::log;
use crate::{dumpgen, sys};

use ablation::Variant;

/// One `template::update_with` call.
struct Timed {
    seconds: f64,
    meta: VersionMeta,
    /// Nothing was imported: the dump was unchanged.
    unchanged: bool,
}

/// Where the first sample's CPU went (see `report::Import`).
#[derive(Default)]
struct CpuFigures {
    cpu: sys::CpuSplit,
    feed_cpu_s: f64,
    engine_cpu_s: f64,
    busy_cores: f64,
}

impl Bench {
    /// A fresh context, as each `dollyd update` process has.
    fn context(&self) -> anyhow::Result<Arc<Context>> {
        Ok(Arc::new(Context::new(
            self.settings.clone(),
            Arc::clone(&self.engine),
        )?))
    }

    /// Samples per import figure of `d`.
    fn import_samples(&self, d: &DumpSpec) -> usize {
        self.args
            .import_samples
            .unwrap_or(if d.is_1g() { 1 } else { 3 })
    }

    /// `template::update_with` of `template` on a fresh context, timed from
    /// call to return; an import that fails is an error.
    async fn timed_update(&self, template: &str, opts: &UpdateOptions) -> anyhow::Result<Timed> {
        let t = TemplateName::parse(template)?;
        let ctx = self.context()?;
        let started = Instant::now();
        let outcomes =
            dolly_core::template::update_with(&ctx, std::slice::from_ref(&t), &NothingInUse, opts)
                .await?;
        let seconds = started.elapsed().as_secs_f64();
        let outcome = outcomes
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("dolly's update imported nothing for {template}"))?;
        match outcome.result {
            Ok(meta) => Ok(Timed {
                seconds,
                meta,
                unchanged: outcome.unchanged,
            }),
            Err(e) => bail!("dolly's import of {template} failed: {e}"),
        }
    }

    /// [`Self::timed_update`] with the CPU of the import container, of this
    /// process and of the engine sampled meanwhile.
    async fn sampled_update(
        &self,
        template: &str,
        opts: &UpdateOptions,
    ) -> anyhow::Result<(Timed, CpuFigures)> {
        let sampler = sys::CpuSampler::start(
            Arc::clone(&self.engine),
            format!("{}{template}._import", self.settings.container_prefix),
        );
        let cpu0 = sys::self_cpu();
        let engine0 = sys::engine_cpu();
        let jiffies0 = sys::machine_jiffies();
        let r = self.timed_update(template, opts).await;
        let figures = CpuFigures {
            feed_cpu_s: sys::self_cpu() - cpu0,
            engine_cpu_s: sys::engine_cpu() - engine0,
            busy_cores: sys::busy_cores(jiffies0, sys::machine_jiffies()),
            cpu: sys::split(&sampler.finish().await),
        };
        Ok((r?, figures))
    }

    /// Everything the import section measures on one dump: rounds of the
    /// baseline and dolly's variants, then the unchanged skip, then (on
    /// the largest dump) the physical import of a backup of the baseline.
    pub async fn import(&mut self, d: &DumpSpec, counts: &dumpgen::Counts) -> anyhow::Result<()> {
        let dump_file = self.data.join("dumps").join(format!("{}.sql", d.template));
        let dump_bytes = std::fs::metadata(&dump_file)?.len();
        let tables: Vec<String> = counts.tables().into_iter().map(|(t, _)| t).collect();
        let samples = self.import_samples(d);
        let variants = if self.args.spread_ablation {
            Variant::spread()
        } else if !d.is_1g() || self.args.ablation_1g {
            Variant::all()
        } else {
            vec![Variant::defaults()]
        };
        let physical = self.wants_physical(d) && !self.args.spread_ablation;

        // Rounds: the baseline, then each variant once ("all together"
        // last, so the template left is dolly's default import).
        let mut baselines = Vec::new();
        let mut baseline_state = None;
        let mut backup = Vec::new();
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
        let mut first: Option<(Timed, CpuFigures)> = None;
        for round in 0..samples {
            let last = round + 1 == samples;
            log(format!(
                "baseline import {} ({}/{samples})",
                d.template,
                round + 1
            ));
            let b = self
                .baseline(d.template, &dump_file, &tables, last, physical && last)
                .await?;
            log(format!(
                "baseline import {}: load {:.1} s",
                d.template, b.load_s
            ));
            if let Some(s) = b.state.clone() {
                baseline_state = Some(s);
            }
            if !b.backup.is_empty() {
                backup = b.backup.clone();
            }
            baselines.push(b);
            for (k, v) in variants.iter().enumerate() {
                log(format!(
                    "dolly update {} [{}] ({}/{samples})",
                    d.template,
                    v.name,
                    round + 1
                ));
                let timed = if v.is_defaults() && first.is_none() {
                    let (timed, cpu) = self.sampled_update(d.template, &v.options()).await?;
                    let s = timed.seconds;
                    first = Some((timed, cpu));
                    s
                } else {
                    self.timed_update(d.template, &v.options()).await?.seconds
                };
                log(format!(
                    "dolly update {} [{}]: {timed:.1} s",
                    d.template, v.name
                ));
                times[k].push(timed);
            }
        }
        let (first, cpu) = first.ok_or_else(|| anyhow!("no import of {}", d.template))?;
        let baseline_s: Vec<f64> = baselines.iter().map(|b| b.load_s).collect();
        let baseline = Summary::of(&baseline_s);
        let dolly_s = times.last().cloned().unwrap_or_default();
        let dolly = Summary::of(&dolly_s);
        let b0 = &baselines[0];
        let mut imp = Import {
            template: d.template.to_owned(),
            dump_bytes,
            one_gb: d.is_1g(),
            samples,
            dolly_update_s: dolly.p50,
            dolly_mb_s: dump_bytes as f64 / 1e6 / dolly.p50,
            dolly: dolly.clone(),
            dolly_s,
            dolly_template_bytes: first.meta.size_bytes,
            dolly_cpu: cpu.cpu,
            dolly_feed_cpu_s: cpu.feed_cpu_s,
            dolly_engine_cpu_s: cpu.engine_cpu_s,
            dolly_busy_cores: cpu.busy_cores,
            baseline_load_s: baseline.p50,
            baseline_mb_s: dump_bytes as f64 / 1e6 / baseline.p50,
            baseline: baseline.clone(),
            baseline_s,
            baseline_total_s: b0.total_s,
            baseline_cpu: b0.cpu.clone(),
            baseline_engine_cpu_s: b0.engine_cpu_s,
            baseline_busy_cores: b0.busy_cores,
            speedup: baseline.p50 / dolly.p50,
            target_speedup: if d.is_1g() { 5.0 } else { 2.0 },
            rows_match_generator: baseline_state
                .as_ref()
                .is_some_and(|s| s.rows == counts.tables()),
            baseline_state: baseline_state.unwrap_or_default(),
            dolly_state: None,
            differences: None,
            ablation: ablation::rows(&variants, &times, baseline.p50, &self.settings),
            skip: None,
            masking: None,
            physical: Vec::new(),
        };

        log(format!("unchanged skip {}", d.template));
        imp.skip = Some(self.skip(d.template, &dump_file, samples.max(3)).await?);
        if self.args.masking
            && self
                .dumps()
                .first()
                .is_some_and(|f| f.template == d.template)
        {
            imp.masking = Some(self.masking(d.template, samples).await?);
        }
        for b in backup {
            let p = self.physical(d, b, dolly.p50, samples).await;
            imp.physical.push(p);
        }
        self.report.imports.push(imp);
        Ok(())
    }

    /// The physical comparison runs on the largest dump of the run.
    fn wants_physical(&self, d: &DumpSpec) -> bool {
        self.dumps()
            .last()
            .is_some_and(|l| l.template == d.template)
    }

    /// `--only import`: the dumps, the import section, then dolly's
    /// templates checked through instances of a dollyd.
    pub async fn only_import(&mut self, specs: &[DumpSpec]) -> anyhow::Result<()> {
        let mut counts = Vec::new();
        for d in specs {
            counts.push(self.generate(d).await?);
        }
        for (d, c) in specs.iter().zip(&counts) {
            self.import(d, c).await?;
        }
        let dollyd = Dollyd::spawn(self, &self.data, false, "auto").await?;
        let mut r = Ok(());
        for (d, c) in specs.iter().zip(&counts) {
            r = self.verify(&dollyd, d.template, c).await;
            if r.is_err() {
                break;
            }
        }
        dollyd.stop().await;
        r
    }
}
