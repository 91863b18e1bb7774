//! `dolly templates`: List templates: version, size, last import (fab db.templates)

use dolly_types::TemplateName;

use super::*;
use crate::error::{exit, Error};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Show this template's versions.
    #[arg(value_name = "TEMPLATE")]
    pub template: Option<TemplateName>,
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<i32, Error> {
        let client = &ctx.client;
        let mode = ctx.mode;
        let Self { template } = self;
        templates(client, template.as_ref(), mode)?;
        Ok(exit::OK)
    }
}
