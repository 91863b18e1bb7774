//! The command line of `dolly-forward`.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::{Config, Limits, LISTEN, TARGET_FILE, WAKE_REQUEST};

pub const USAGE: &str = "usage: dolly-forward [--listen ADDR] [--target FILE] [--wake FILE]\n\
  --listen ADDR  where to listen (default 0.0.0.0:3306)\n\
  --target FILE  the target file: a port, starting, sleeping or stopped (default /run/dolly-forward/target)\n\
  --wake FILE    the wake-up request left while sleeping (default /run/dolly-wake/request)\n";

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    Relay(Config),
    Help,
    Version,
}

#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    #[error("{0} needs a value")]
    Missing(&'static str),
    #[error("--listen: {0:?} is not an address (IP:PORT)")]
    Address(OsString),
    #[error("unknown argument {0:?}")]
    Unknown(OsString),
}

/// Parses the arguments (without the program's name).
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, ArgsError> {
    let mut config = Config {
        listen: LISTEN
            .parse()
            .map_err(|_| ArgsError::Address(LISTEN.into()))?,
        target_file: PathBuf::from(TARGET_FILE),
        wake_request: PathBuf::from(WAKE_REQUEST),
        limits: Limits::default(),
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--listen") => {
                let v = args.next().ok_or(ArgsError::Missing("--listen"))?;
                config.listen = v
                    .to_str()
                    .and_then(|s| s.parse::<SocketAddr>().ok())
                    .ok_or(ArgsError::Address(v))?;
            }
            Some("--target") => {
                config.target_file = args.next().ok_or(ArgsError::Missing("--target"))?.into();
            }
            Some("--wake") => {
                config.wake_request = args.next().ok_or(ArgsError::Missing("--wake"))?.into();
            }
            Some("--help" | "-h") => return Ok(Command::Help),
            Some("--version" | "-V") => return Ok(Command::Version),
            _ => return Err(ArgsError::Unknown(arg)),
        }
    }
    Ok(Command::Relay(config))
}
