//! `dolly shell`: Open the mariadb (or mysql) client on an instance (fab db.shell)

use std::ffi::OsString;

use super::*;
use crate::args::{Obtain, Target};
use crate::error::Error;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub obtain: Obtain,
    #[command(flatten)]
    pub target: Target,
    /// Passed to the client as they are.
    #[arg(
        value_name = "CLIENT_ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<OsString>,
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<i32, Error> {
        let client = &ctx.client;
        let mode = ctx.mode;
        let Self {
            obtain,
            target,
            args,
        } = self;

        let a = obtain_instance(client, &target, &obtain, mode)?;
        let c = connection(&a.value)?;
        crate::shell::run(&c, &args)
    }
}
