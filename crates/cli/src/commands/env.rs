//! `dolly env`: Print shell export lines for the instance, creating it if needed

use super::*;
use crate::args::{Obtain, Target};
use crate::error::{exit, Error};
use crate::output;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub obtain: Obtain,
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<i32, Error> {
        let client = &ctx.client;
        let mode = ctx.mode;
        let Self { target, obtain } = self;

        let a = obtain_instance(client, &target, &obtain, mode)?;
        if mode.json {
            print(&output::json(&a.raw))?;
        } else {
            print(&connection(&a.value)?.env_lines())?;
        }
        Ok(exit::OK)
    }
}
