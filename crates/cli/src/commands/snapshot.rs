//! `dolly snapshot [rm] TEMPLATE NAME SNAP`: take a snapshot, or remove one.

use super::*;
use crate::args::{SnapshotAction, SnapshotArgs};
use crate::error::{exit, Error};
use crate::output;

impl SnapshotArgs {
    pub fn run(self, ctx: &Ctx) -> Result<i32, Error> {
        let client = &ctx.client;
        let mode = ctx.mode;
        match self.action()? {
            SnapshotAction::Take {
                target,
                snapshot,
                message,
            } => {
                let a = slow(mode, format!("saving {}@{snapshot}", at(&target)), || {
                    client.snapshot(
                        &target.template,
                        &target.name,
                        &snapshot,
                        message.as_deref(),
                    )
                })?;
                answer(&a, mode, || {
                    output::snapshot_taken(target.template.as_str(), target.name.as_str(), &a.value)
                })?;
            }
            SnapshotAction::Remove { target, snapshot } => {
                client.delete_snapshot(&target.template, &target.name, &snapshot)?;
                if !mode.quiet && !mode.json {
                    print(&format!("removed snapshot {}@{snapshot}\n", at(&target)))?;
                }
            }
        }
        Ok(exit::OK)
    }
}
