//! `dolly new`: Create an instance and print how to connect to it (fab db.new)

use std::time::Duration;

use chrono::Utc;
use dolly_types::human::parse_ttl;

use super::*;
use crate::args::{parse_snap_ref, SnapRef, Target};
use crate::error::{exit, Error};
use crate::output;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// When it expires: 30s, 15m, 2h, 3d, 1h30m, seconds, or never (where
    /// dollyd's max_ttl allows); dollyd's default when absent.
    #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
    pub ttl: Option<Duration>,
    /// Branch from a snapshot of another instance of the same template:
    /// the new instance starts with that data, and has its own port and
    /// password.
    #[arg(long, value_name = "NAME@SNAP", value_parser = parse_snap_ref)]
    pub from: Option<SnapRef>,
    /// Keep a standby server on a fresh clone, so `dolly reset` takes
    /// milliseconds (it uses a server's memory); dollyd's `standby` setting
    /// when absent.
    #[arg(long)]
    pub standby: bool,
    /// Stop its server after this long without clients (30m, 2h, ...); the
    /// next connection wakes it, a little slower. `0`/`never`: never;
    /// dollyd's `sleep_after` setting when absent.
    #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
    pub sleep_after: Option<Duration>,
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<i32, Error> {
        let client = &ctx.client;
        let mode = ctx.mode;
        let Self {
            target,
            ttl,
            from,
            standby,
            sleep_after,
        } = self;
        let keep = crate::client::Keep {
            standby: standby.then_some(true),
            sleep_after: sleep_after.map(whole_seconds),
        };

        let a = create(client, &target, ttl, from.as_ref(), &keep, mode)?;
        if mode.json {
            print(&output::json(&a.raw))?;
        } else if !mode.quiet {
            print(&output::created(&a.value, Utc::now()))?;
        }
        Ok(exit::OK)
    }
}
