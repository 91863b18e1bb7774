//! Identical results: dolly's template, through a real instance, against
//! the baseline's server (rows, `CHECKSUM TABLE`, `SHOW CREATE TABLE` of
//! every table), and the physical template against dolly's SQL one.

use mysql_async::prelude::Queryable;

use crate::bench::Bench;
use crate::dollyd::{connect, Dollyd};
use crate::dumpgen;
use crate::report::TableState;
use crate::util::log;

impl Bench {
    /// Checks the template of `template` (and its physical twin, when it
    /// was imported) and records the differences in the report.
    pub async fn verify(
        &mut self,
        dollyd: &Dollyd,
        template: &str,
        counts: &dumpgen::Counts,
    ) -> anyhow::Result<()> {
        let tables: Vec<String> = counts.tables().into_iter().map(|(t, _)| t).collect();
        let state = self.template_state(dollyd, template, &tables).await?;
        let physical: Vec<String> = self
            .report
            .imports
            .iter()
            .find(|i| i.template == template)
            .map(|i| {
                i.physical
                    .iter()
                    .filter(|p| p.error.is_none())
                    .map(|p| p.template.clone())
                    .collect()
            })
            .unwrap_or_default();
        let mut physical_states = Vec::new();
        for p in physical {
            let ps = self.template_state(dollyd, &p, &tables).await?;
            physical_states.push((p, ps));
        }
        if let Some(imp) = self
            .report
            .imports
            .iter_mut()
            .find(|i| i.template == template)
        {
            imp.differences = Some(state.differences(&imp.baseline_state, "dolly", "baseline"));
            for (name, ps) in physical_states {
                if let Some(p) = imp.physical.iter_mut().find(|p| p.template == name) {
                    p.differences = Some(ps.differences(&state, "physical", "SQL"));
                    p.state = Some(ps);
                }
            }
            imp.dolly_state = Some(state);
        }
        Ok(())
    }

    /// Rows, checksums and `SHOW CREATE TABLE` of `tables` in a template,
    /// through an instance created by `dollyd` (deleted afterwards).
    async fn template_state(
        &self,
        dollyd: &Dollyd,
        template: &str,
        tables: &[String],
    ) -> anyhow::Result<TableState> {
        log(format!("verifying template {template}"));
        let created = dollyd.create(&self.http, template, "verify").await?;
        let creds = created.creds.clone();
        let db = dumpgen::DATABASE;
        let result = async {
            let mut conn = connect(&creds).await?;
            let mut state = TableState::default();
            for t in tables {
                let n: Option<u64> = conn
                    .query_first(format!("SELECT COUNT(*) FROM `{db}`.`{t}`"))
                    .await?;
                state.rows.push((t.clone(), n.unwrap_or(0)));
            }
            let list = tables
                .iter()
                .map(|t| format!("`{db}`.`{t}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let sums: Vec<(String, Option<String>)> =
                conn.query(format!("CHECKSUM TABLE {list}")).await?;
            let prefix = format!("{db}.");
            state.checksums = sums
                .into_iter()
                .map(|(t, c)| {
                    (
                        t.strip_prefix(&prefix).unwrap_or(&t).to_owned(),
                        c.unwrap_or_else(|| "NULL".into()),
                    )
                })
                .collect();
            for t in tables {
                let row: Option<(String, String)> = conn
                    .query_first(format!("SHOW CREATE TABLE `{db}`.`{t}`"))
                    .await?;
                if let Some(row) = row {
                    state.create_tables.push(row);
                }
            }
            let _ = conn.disconnect().await;
            Ok::<_, anyhow::Error>(state)
        }
        .await;
        dollyd.delete(&self.http, template, "verify").await?;
        result
    }
}
