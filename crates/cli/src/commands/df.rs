//! `dolly df`: Disk used by template versions, instances and snapshots

use super::*;
use crate::error::{exit, Error};
use crate::output;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<i32, Error> {
        let client = &ctx.client;
        let mode = ctx.mode;

        let a = client.df()?;
        if mode.json {
            print(&output::json(&a.raw))?;
        } else if !mode.quiet {
            print(&output::disk_usage(&a.value))?;
        }
        Ok(exit::OK)
    }
}
