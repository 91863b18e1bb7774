//! `dolly push`: Move a snapshot to another dolly server, server to server

use chrono::Utc;
use dolly_types::{InstanceName, TemplateName};

use super::*;
use crate::args::{parse_snap_ref, SnapRef};
use crate::error::{exit, Error};
use crate::output;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The template of the instance.
    #[arg(value_name = "TEMPLATE")]
    pub template: TemplateName,
    /// The instance and its snapshot.
    #[arg(value_name = "NAME@SNAP", value_parser = parse_snap_ref)]
    pub from: SnapRef,
    /// The other dolly server's URL.
    #[arg(long, value_name = "URL")]
    pub remote: String,
    /// A token the other server accepts.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "DOLLY_REMOTE_TOKEN",
        default_value = ""
    )]
    pub remote_token: String,
    /// The instance's name there (default: the same).
    #[arg(long = "as", value_name = "NAME")]
    pub as_name: Option<InstanceName>,
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<i32, Error> {
        let client = &ctx.client;
        let mode = ctx.mode;
        let Self {
            template,
            from,
            remote,
            remote_token,
            as_name,
        } = self;

        let mut body = serde_json::json!({ "remote": remote, "token": remote_token });
        if let Some(n) = &as_name {
            body["name"] = n.as_str().into();
        }
        let a = slow(
            mode,
            format!("pushing {template}/{from} to {remote}"),
            || client.push(&template, &from.name, &from.snapshot, body),
        )?;
        if mode.json {
            print(&output::json(&a.raw))?;
        } else if !mode.quiet {
            print(&format!(
                "pushed {} in {:.1} s to {}\n\n{}",
                dolly_types::human::bytes(a.value.bytes),
                a.value.seconds,
                a.value.remote,
                output::created(&a.value.instance, Utc::now())
            ))?;
        }
        Ok(exit::OK)
    }
}
