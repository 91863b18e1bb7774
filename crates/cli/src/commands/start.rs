//! `dolly start`: Start a stopped instance again, on the same port with the same password

use chrono::Utc;

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
        let Self { target } = self;

        let a = slow(mode, format!("starting {}", at(&target)), || {
            client.act(&target.template, &target.name, "start", None)
        })?;
        answer(&a, mode, || output::instance(&a.value, Utc::now()))?;
        Ok(exit::OK)
    }
}
