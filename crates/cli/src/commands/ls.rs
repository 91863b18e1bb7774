//! `dolly ls`: List instances, of every template or of one (fab db.ls)

use dolly_types::TemplateName;

use super::*;
use crate::error::{exit, Error};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Only the instances of this template.
    #[arg(value_name = "TEMPLATE")]
    pub template: Option<TemplateName>,
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<i32, Error> {
        let client = &ctx.client;
        let mode = ctx.mode;
        let Self { template } = self;
        list(client, template.as_ref(), mode)?;
        Ok(exit::OK)
    }
}
