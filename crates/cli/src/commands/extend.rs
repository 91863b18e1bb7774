//! `dolly extend`: Push an instance's expiry back: `dolly extend shop alice 1h`

use std::time::Duration;

use chrono::Utc;
use dolly_types::human::{parse_ttl, whole_seconds};

use super::*;
use crate::args::Target;
use crate::client::extend_body;
use crate::error::{exit, Error};
use crate::output;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// 30s, 15m, 2h, 3d, 1h30m, seconds, or 0/none/never.
    #[arg(value_name = "DURATION", value_parser = parse_ttl)]
    pub duration: Duration,
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<i32, Error> {
        let client = &ctx.client;
        let mode = ctx.mode;
        let Self { target, duration } = self;

        let a = client.act(
            &target.template,
            &target.name,
            "extend",
            Some(extend_body(whole_seconds(duration))),
        )?;
        answer(&a, mode, || output::extended(&a.value, Utc::now()))?;
        Ok(exit::OK)
    }
}
