//! `dolly rm`: Remove instances, their containers and data (fab db.rm)

use dolly_types::{InstanceName, TemplateName};

use super::*;
use crate::error::Error;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The template of the instances.
    #[arg(value_name = "TEMPLATE")]
    pub template: TemplateName,
    /// One or more instance names.
    #[arg(value_name = "NAME", required = true, num_args = 1..)]
    pub names: Vec<InstanceName>,
    /// Remove protected instances too, and succeed for instances that
    /// do not exist (exit 0 instead of 3).
    #[arg(short, long)]
    pub force: bool,
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<i32, Error> {
        let client = &ctx.client;
        let mode = ctx.mode;
        let Self {
            template,
            names,
            force,
        } = self;
        remove(client, &template, &names, force, mode)
    }
}
