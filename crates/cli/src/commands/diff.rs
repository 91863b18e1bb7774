//! `dolly diff`: what an instance's schema changed against its template (a
//! migration rehearsal).

use dolly_types::SnapshotName;

use super::*;
use crate::args::Target;
use crate::error::{exit, Error};
use crate::output;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// Compare against this snapshot of the instance.
    #[arg(long, value_name = "SNAP")]
    pub against: Option<SnapshotName>,
    /// Print the SQL that turns the template's schema into the instance's.
    #[arg(long, conflicts_with = "explain")]
    pub sql: bool,
    /// Rehearse that SQL on a throwaway clone of the full data.
    #[arg(long)]
    pub explain: bool,
    /// Print the diff as GitHub/GitLab-flavoured markdown for a pull
    /// request comment, the SQL in a collapsed block (with --explain:
    /// each statement's algorithm and time too).
    #[arg(long, conflicts_with = "sql")]
    pub markdown: bool,
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<i32, Error> {
        let (client, mode) = (&ctx.client, ctx.mode);
        let Self {
            target,
            against,
            sql,
            explain,
            markdown,
        } = self;
        if markdown {
            let d = client.diff(&target.template, &target.name, against.as_ref())?;
            // Nothing to rehearse when nothing changed.
            let e = if explain && !d.value.changes.is_empty() {
                Some(slow(
                    mode,
                    format!("rehearsing the changes of {} on a clone", at(&target)),
                    || client.explain(&target.template, &target.name, against.as_ref()),
                )?)
            } else {
                None
            };
            print(&crate::markdown::diff(
                &d.value,
                e.as_ref().map(|e| &e.value),
            ))?;
        } else if explain {
            let a = slow(
                mode,
                format!("rehearsing the changes of {} on a clone", at(&target)),
                || client.explain(&target.template, &target.name, against.as_ref()),
            )?;
            answer(&a, mode, || output::explain(&a.value))?;
        } else {
            let a = client.diff(&target.template, &target.name, against.as_ref())?;
            if sql && !mode.json {
                print(&output::diff_sql(&a.value.sql))?;
            } else {
                answer(&a, mode, || output::diff(&a.value))?;
            }
        }
        Ok(exit::OK)
    }
}
