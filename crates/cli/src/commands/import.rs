//! `dolly import`: Create an instance from an archive made by `dolly export`

use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use dolly_types::human::parse_ttl;

use super::*;
use crate::args::Target;
use crate::error::{exit, Error};
use crate::output;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The archive, or `-` for stdin.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub target: Target,
    /// When it expires: 30s, 15m, 2h, 3d, 1h30m, seconds, or never (where
    /// dollyd's max_ttl allows); dollyd's default when absent.
    #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
    pub ttl: Option<Duration>,
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<i32, Error> {
        let client = &ctx.client;
        let mode = ctx.mode;
        let Self { file, target, ttl } = self;

        let a = import(client, &file, &target, ttl, mode)?;
        if mode.json {
            print(&output::json(&a.raw))?;
        } else if !mode.quiet {
            print(&output::created(&a.value, Utc::now()))?;
        }
        Ok(exit::OK)
    }
}
