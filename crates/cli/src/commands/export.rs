//! `dolly export`: Save a snapshot as an archive file, to import on another dollyd

use std::path::PathBuf;

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
    /// Where to write the archive, or `-` for stdout.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<i32, Error> {
        let client = &ctx.client;
        let mode = ctx.mode;
        let Self {
            template,
            from,
            file,
        } = self;
        export(client, &template, &from, &file, mode)?;
        Ok(exit::OK)
    }
}
