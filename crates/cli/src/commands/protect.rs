//! `dolly protect`: Keep an instance from the reaper and from cleanup

use super::*;
use crate::args::Target;
use crate::error::{exit, Error};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<i32, Error> {
        let client = &ctx.client;
        let mode = ctx.mode;
        let Self { target } = self;

        let a = client.act(&target.template, &target.name, "protect", None)?;
        answer(&a, mode, || format!("protected {}\n", at(&target)))?;
        Ok(exit::OK)
    }
}
