//! `dolly restore`: Put an instance back to one of its snapshots (reset --to SNAP)

use chrono::Utc;
use dolly_types::SnapshotName;

use super::*;
use crate::args::Target;
use crate::error::{exit, Error};
use crate::output;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// The snapshot.
    #[arg(value_name = "SNAP")]
    pub snapshot: SnapshotName,
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<i32, Error> {
        let client = &ctx.client;
        let mode = ctx.mode;
        let Self { target, snapshot } = self;

        let a = slow(
            mode,
            format!("restoring {}@{snapshot}", at(&target)),
            || client.restore(&target.template, &target.name, &snapshot),
        )?;
        answer(&a, mode, || output::instance(&a.value, Utc::now()))?;
        Ok(exit::OK)
    }
}
