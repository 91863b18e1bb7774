//! `dolly-forward`: the relay of an instance's forwarder container (see
//! the `dolly-forward` crate). dollyd mounts this binary read-only into
//! each forwarder, which runs it as `nobody` in the server image: it is
//! built in this package so it sits next to `dollyd` (where dollyd looks
//! for it by default) and integration tests find it
//! (`CARGO_BIN_EXE_dolly-forward`). It uses nothing of dollyd.

use std::process::ExitCode;

use dolly_forward::args::{self, Command};

fn main() -> ExitCode {
    dolly_forward::exit_on_signals();
    let config = match args::parse(std::env::args_os().skip(1)) {
        Ok(Command::Relay(config)) => config,
        Ok(Command::Help) => {
            print!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("dolly-forward {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprint!("dolly-forward: {e}\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    match dolly_forward::Relay::bind(config) {
        Ok(relay) => relay.run(),
        Err(e) => {
            eprintln!("dolly-forward: {e}");
            ExitCode::FAILURE
        }
    }
}
