//! `dolly snapshots`: List an instance's snapshots: name, when, message, size

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

        let a = client.snapshots(&target.template, &target.name)?;
        let list = &a.value.snapshots;
        if mode.json {
            print(&output::json(&a.raw))?;
        } else if mode.quiet {
            let names: String = list.iter().map(|s| format!("{}\n", s.name)).collect();
            print(&names)?;
        } else if list.is_empty() {
            mode.note(&format!(
                "{} has no snapshots; take one with: dolly snapshot {} {} SNAP",
                at(&target),
                target.template,
                target.name
            ));
        } else {
            print(&output::snapshots(list, now))?;
        }
        Ok(exit::OK)
    }
}
