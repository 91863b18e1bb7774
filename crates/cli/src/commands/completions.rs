//! `dolly completions`: Print a shell completion script (bash, zsh, fish, ...)

use clap_complete::Shell;

use super::*;
use crate::error::{exit, Error};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[arg(value_name = "SHELL")]
    pub shell: Shell,
}

impl Args {
    /// Needs no dollyd: the script goes to stdout.
    pub fn run(self) -> Result<i32, Error> {
        let mut buf = Vec::new();
        clap_complete::generate(
            self.shell,
            &mut crate::args::Cli::command(),
            "dolly",
            &mut buf,
        );
        std::io::stdout().lock().write_all(&buf)?;
        Ok(exit::OK)
    }
}
