//! Physical against SQL: the `mariadb-backup` stream of the baseline's
//! server (`baseline::stream_backup`) imported through the same
//! `template::update` as the SQL dump.

use dolly_core::template::UpdateOptions;

use super::baseline::Backup;
use crate::bench::{Bench, DumpSpec};
use crate::report::{windows, Physical, Summary};
use crate::util::log;

impl Bench {
    /// `samples` imports of the backup (forced after the first), against
    /// dolly's SQL import p50 `sql_s`. Never fails the run: an import that
    /// fails (a dolly without physical imports says the dump is unknown)
    /// is reported as "not available".
    pub(super) async fn physical(
        &self,
        d: &DumpSpec,
        backup: Result<Backup, String>,
        sql_s: f64,
        samples: usize,
    ) -> Physical {
        let backup = match backup {
            Ok(b) => b,
            Err(e) => {
                log(format!("physical import of {}: no backup: {e}", d.template));
                return Physical {
                    template: super::baseline::physical_template(d.template, "stream"),
                    error: Some(format!("the backup failed: {e}")),
                    sql_s,
                    ..Physical::default()
                };
            }
        };
        let mut p = Physical {
            form: backup.form.to_owned(),
            template: backup.template.clone(),
            backup_bytes: backup.bytes,
            backup_s: backup.seconds,
            sql_s,
            ..Physical::default()
        };
        let opts = UpdateOptions {
            force: true,
            ..UpdateOptions::default()
        };
        for k in 0..samples {
            log(format!(
                "dolly update {} (physical, {}/{samples})",
                p.template,
                k + 1
            ));
            let r = if k == 0 {
                self.sampled_update(&p.template, &opts)
                    .await
                    .map(|(t, cpu)| {
                        p.processes = windows(&cpu.cpu.processes);
                        p.first_s = t.seconds;
                        t
                    })
            } else {
                self.timed_update(&p.template, &opts).await
            };
            match r {
                Ok(t) => {
                    log(format!("dolly update {}: {:.1} s", p.template, t.seconds));
                    p.samples_s.push(t.seconds);
                    p.template_bytes = t.meta.size_bytes;
                }
                Err(e) => {
                    log(format!("physical import of {}: {e:#}", p.template));
                    p.error = Some(format!("{e:#}"));
                    p.samples_s.clear();
                    break;
                }
            }
        }
        if p.error.is_none() {
            let s = Summary::of(&p.samples_s);
            p.ratio = Some(sql_s / s.p50);
            p.import = Some(s);
        }
        // The template holds the data now; the backup is ~ the datadir.
        let dumps = self.data.join("dumps");
        let _ = std::fs::remove_file(dumps.join(format!("{}.xbstream", p.template)));
        let _ = dolly_core::clone::remove_tree(&dumps.join(&p.template));
        p
    }
}
