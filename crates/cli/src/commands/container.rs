//! `dolly container`: Print the engine's inspection of an instance's container (fab db.container)

use super::*;
use crate::args::Target;
use crate::error::{exit, Error};
use crate::output;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<i32, Error> {
        let client = &ctx.client;
        let Self { target } = self;

        let a = client.container(&target.template, &target.name)?;
        print(&output::json(&a.raw))?;
        Ok(exit::OK)
    }
}
