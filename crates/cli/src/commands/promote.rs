//! `dolly promote`: Publish a snapshot as the new current version of a template

use dolly_types::TemplateName;

use super::*;
use crate::args::{parse_snap_ref, SnapRef};
use crate::error::{exit, Error};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The template of the instance.
    #[arg(value_name = "TEMPLATE")]
    pub template: TemplateName,
    /// The instance and its snapshot.
    #[arg(value_name = "NAME@SNAP", value_parser = parse_snap_ref)]
    pub from: SnapRef,
    /// The template to publish it as.
    #[arg(value_name = "NEWTEMPLATE")]
    pub to: TemplateName,
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<i32, Error> {
        let client = &ctx.client;
        let mode = ctx.mode;
        let Self { template, from, to } = self;

        let a = slow(
            mode,
            format!("promoting {template}/{from} as template {to}"),
            || client.promote(&template, &from.name, &from.snapshot, &to),
        )?;
        answer(&a, mode, || {
            let version = a
                .value
                .current_version
                .as_ref()
                .map_or_else(|| "?".to_owned(), |v| v.to_string());
            format!(
                "promoted {template}/{from} as template {to}, version {version}; clone it with: dolly new {to} NAME\n"
            )
        })?;
        Ok(exit::OK)
    }
}
