//! `dolly show`: Show an instance's connection, state and expiry (fab db.info)

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
        let mode = ctx.mode;
        let now = ctx.now;
        let Self { target } = self;

        let a = client.instance(&target.template, &target.name)?;
        if mode.json {
            print(&output::json(&a.raw))?;
        } else {
            print(&output::instance(&a.value, now))?;
        }
        Ok(exit::OK)
    }
}
