//! `dolly pool`: Show or set a template's warm pool: ready instances handed out at once

use dolly_types::TemplateName;

use super::*;
use crate::client::Answer;
use crate::error::{exit, Error};
use crate::output;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The template.
    #[arg(value_name = "TEMPLATE")]
    pub template: TemplateName,
    /// The pool size to set (0: no pool).
    #[arg(value_name = "N")]
    pub size: Option<usize>,
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<i32, Error> {
        let client = &ctx.client;
        let mode = ctx.mode;
        let Self { template, size } = self;

        let pool = match size {
            Some(n) => client.set_pool(&template, n)?,
            None => {
                let a = client.template(&template)?;
                let pool = a.value.pool.unwrap_or_default();
                let raw = serde_json::to_value(pool).unwrap_or_default();
                Answer { value: pool, raw }
            }
        };
        answer(&pool, mode, || {
            output::pool(&template, &pool.value, size.is_some())
        })?;
        Ok(exit::OK)
    }
}
