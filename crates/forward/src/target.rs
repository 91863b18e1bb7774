//! The target file and the connect to the server it names.

use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::Config;

/// What the target file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The server listening on this port of 127.0.0.1.
    Port(u16),
    /// A server is starting: wait.
    Starting,
    /// Asleep: leave a wake-up request and wait.
    Sleeping,
    /// No server: close.
    Stopped,
    /// Missing, unreadable or unknown (being written for the first
    /// time): wait.
    Unknown,
}

impl Target {
    /// The target in `text` (its first line).
    pub fn parse(text: &str) -> Self {
        let word = text.lines().next().unwrap_or("").trim();
        match word {
            "starting" => Target::Starting,
            "sleeping" => Target::Sleeping,
            "stopped" => Target::Stopped,
            _ => match word.parse::<u16>() {
                Ok(port) if port > 0 => Target::Port(port),
                _ => Target::Unknown,
            },
        }
    }

    /// What `path` says now.
    pub fn read(path: &Path) -> Self {
        fs::read_to_string(path).map_or(Target::Unknown, |t| Self::parse(&t))
    }
}

/// Why a connection is closed without reaching a server.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("the instance is stopped")]
    Stopped,
    #[error("no server to relay to within {0:?}")]
    TimedOut(Duration),
    #[error("cannot connect to the server on port {port}: {source}")]
    Connect { port: u16, source: io::Error },
}

/// Connects to the server the target names, waiting (bounded) while it
/// says `starting` or `sleeping` (which leaves a wake-up request). A
/// refused connect reads the target again: a target swapped meanwhile (a
/// reset's handover) is tried; the same port again is an error.
pub(crate) fn connect(config: &Config) -> Result<TcpStream, Refusal> {
    let limits = &config.limits;
    let deadline = Instant::now() + limits.wait;
    let mut failed: Option<(u16, io::Error)> = None;
    loop {
        match Target::read(&config.target_file) {
            Target::Port(port) => {
                if let Some((p, source)) = failed.take() {
                    if p == port {
                        return Err(Refusal::Connect { port, source });
                    }
                }
                let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
                match TcpStream::connect_timeout(&addr, limits.connect) {
                    Ok(server) => return Ok(server),
                    Err(e) => {
                        failed = Some((port, e));
                        continue;
                    }
                }
            }
            Target::Stopped => return Err(Refusal::Stopped),
            Target::Sleeping => ask_to_wake(&config.wake_request),
            Target::Starting | Target::Unknown => {}
        }
        failed = None;
        if Instant::now() >= deadline {
            return Err(Refusal::TimedOut(limits.wait));
        }
        thread::sleep(limits.poll);
    }
}

/// Leaves the wake-up request (once: dollyd removes it when it wakes the
/// server). A failure is only a later wake: the connection waits anyway.
fn ask_to_wake(request: &Path) {
    if !request.exists() {
        let _ = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(request);
    }
}
