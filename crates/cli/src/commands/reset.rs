//! `dolly reset`: Put an instance back to its template's data (or a snapshot's)

use chrono::Utc;
use dolly_types::SnapshotName;

use super::*;
use crate::args::Target;
use crate::client::reset_body;
use crate::error::{exit, Error};
use crate::output;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// To the template's current version.
    #[arg(long, conflicts_with = "to")]
    pub latest: bool,
    /// To this snapshot of the instance (as `dolly restore`).
    #[arg(long, value_name = "SNAP")]
    pub to: Option<SnapshotName>,
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<i32, Error> {
        let client = &ctx.client;
        let mode = ctx.mode;
        let Self { target, latest, to } = self;

        let a = slow(mode, format!("resetting {}", at(&target)), || {
            client.act(
                &target.template,
                &target.name,
                "reset",
                Some(reset_body(latest, to.as_ref())),
            )
        })?;
        answer(&a, mode, || {
            let how = match a.value.standby {
                Some(true) => "reset through its standby (a ready server on a fresh clone)\n\n",
                Some(false) => "reset by a fresh clone (its standby was not ready)\n\n",
                None => "",
            };
            format!("{how}{}", output::instance(&a.value, Utc::now()))
        })?;
        Ok(exit::OK)
    }
}
