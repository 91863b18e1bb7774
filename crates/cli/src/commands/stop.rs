//! `dolly stop`: Stop an instance's server; its data, port and password stay

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

        let a = slow(mode, format!("stopping {}", at(&target)), || {
            client.act(&target.template, &target.name, "stop", None)
        })?;
        answer(&a, mode, || {
            format!(
                "stopped {} (its data, port and password stay; dolly start {} {})\n",
                at(&target),
                target.template,
                target.name
            )
        })?;
        Ok(exit::OK)
    }
}
