//! `dolly`: the command-line client of dollyd, for people at a terminal and
//! for CI scripts. It talks only to dollyd's REST API (`/api/v1`).

mod args;
mod client;
mod commands;
mod connection;
mod error;
mod markdown;
mod output;
mod pipeline;
mod shell;
mod version;

use clap::Parser;

fn main() {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version are "errors" that go to stdout: exit 0.
        Err(e) => {
            let _ = e.print();
            std::process::exit(if e.use_stderr() {
                error::exit::USAGE
            } else {
                error::exit::OK
            });
        }
    };
    let code = match commands::run(cli) {
        Ok(code) => code,
        Err(error::Error::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            error::exit::FAILURE
        }
        Err(error::Error::Usage(e)) => {
            let _ = e.print();
            error::exit::USAGE
        }
        Err(e) => {
            eprintln!("dolly: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}
