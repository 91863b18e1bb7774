//! The relay of an instance's forwarder container (`dolly-forward`).
//!
//! The forwarder holds the instance's published port for the instance's
//! whole life. For each client connection it reads the target file (a
//! port, `starting`, `sleeping` or `stopped`; dollyd swaps it by one
//! rename), connects to that port on 127.0.0.1 of its network namespace
//! and relays bytes both ways until both sides are done. `sleeping` leaves
//! a wake-up request and waits; `starting` waits; `stopped` closes.
//!
//! One thread per connection direction (std only, no process per
//! connection): the connection's thread resolves the target, connects and
//! relays server to client, a second thread relays client to server.
//!
//! Invariants, and what enforces them (the unit tests in `tests.rs`):
//! - every wait is bounded: a connection waits at most [`Limits::wait`]
//!   for a port, a connect at most [`Limits::connect`], and once one side
//!   closed the other gets [`Limits::linger`] before both are closed;
//! - a close propagates: a side's end of stream shuts down the write half
//!   of the other side, an error closes both;
//! - the target is read at each connection, never cached: a rename by
//!   dollyd takes effect for the next connection;
//! - at most [`Limits::max_connections`] connections at once: beyond it a
//!   new connection is closed at once (the container's memory limit is
//!   never reached by threads).

pub mod args;
mod relay;
mod target;
#[cfg(test)]
mod tests;

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

pub use target::{Refusal, Target};

/// Inside the forwarder container: the port it listens on.
pub const LISTEN: &str = "0.0.0.0:3306";
/// Inside the forwarder container: the target file (mounted read-only).
pub const TARGET_FILE: &str = "/run/dolly-forward/target";
/// Inside the forwarder container: the wake-up request a connection to a
/// sleeping instance leaves (its folder is writable).
pub const WAKE_REQUEST: &str = "/run/dolly-wake/request";

/// Stack of a connection's threads: each copies through an 8 KiB buffer.
const STACK: usize = 128 * 1024;
/// Pause after a failed `accept` (out of file descriptors, say).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The bounds of every wait.
#[derive(Debug, Clone)]
pub struct Limits {
    /// How long a connection waits for the target to name a port.
    pub wait: Duration,
    /// How often a waiting connection reads the target again.
    pub poll: Duration,
    /// How long a connect to the server may take.
    pub connect: Duration,
    /// Once one side closed, how long the other may still send.
    pub linger: Duration,
    /// Connections relayed at once; more are closed at once.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            wait: Duration::from_secs(60),
            poll: Duration::from_millis(10),
            connect: Duration::from_secs(5),
            linger: Duration::from_secs(1),
            // Servers take 100 (`--max-connections`); 500 relayed
            // connections measured 20 MiB of the relay's memory plus the
            // kernel's 16 KiB per thread, within the forwarder's 64 MiB.
            max_connections: 512,
        }
    }
}

/// What the relay listens on and reads.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub target_file: PathBuf,
    pub wake_request: PathBuf,
    pub limits: Limits,
}

/// Why the relay cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: io::Error },
}

/// A bound relay: [`Relay::run`] serves its connections.
pub struct Relay {
    listener: TcpListener,
    config: Arc<Config>,
    open: Arc<AtomicUsize>,
}

impl Relay {
    /// Listens on `config.listen`.
    pub fn bind(config: Config) -> Result<Self, ForwardError> {
        let listener = TcpListener::bind(config.listen).map_err(|source| ForwardError::Listen {
            addr: config.listen,
            source,
        })?;
        Ok(Self {
            listener,
            config: Arc::new(config),
            open: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Where it listens (the port the system picked for port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts connections forever, each on its own thread.
    pub fn run(self) -> ! {
        loop {
            match self.listener.accept() {
                Ok((client, _)) => self.dispatch(client),
                Err(e) => {
                    eprintln!("dolly-forward: accept: {e}");
                    thread::sleep(ACCEPT_BACKOFF);
                }
            }
        }
    }

    /// Hands `client` to a thread of its own, unless too many are open.
    fn dispatch(&self, client: TcpStream) {
        let open = OpenConnection::claim(&self.open, self.config.limits.max_connections);
        let Some(open) = open else {
            return;
        };
        let config = Arc::clone(&self.config);
        // A failed spawn drops the closure: the client and the claim go.
        let _ = thread::Builder::new().stack_size(STACK).spawn(move || {
            let _open = open;
            serve(&config, client);
        });
    }
}

/// One connection: to the target's server, then relayed until both sides
/// are done.
fn serve(config: &Config, client: TcpStream) {
    match target::connect(config) {
        Ok(server) => {
            if let Err(e) = relay::relay(client, server, config.limits.linger) {
                eprintln!("dolly-forward: {e}");
            }
        }
        Err(Refusal::Stopped) => {}
        Err(e) => eprintln!("dolly-forward: {e}"),
    }
}

/// A counted open connection (uncounted when dropped).
struct OpenConnection(Arc<AtomicUsize>);

impl OpenConnection {
    fn claim(open: &Arc<AtomicUsize>, max: usize) -> Option<Self> {
        if open.fetch_add(1, Ordering::AcqRel) >= max {
            open.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Self(Arc::clone(open)))
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// SIGTERM and SIGINT end the relay at once. It runs as PID 1 of its
/// container, where a signal with no handler is ignored: without this
/// `docker stop` would wait for its timeout, then kill.
pub fn exit_on_signals() {
    extern "C" fn leave(_: libc::c_int) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(0) }
    }
    let handler = leave as extern "C" fn(libc::c_int) as libc::sighandler_t;
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: installs a handler that only calls an
        // async-signal-safe function.
        unsafe {
            libc::signal(sig, handler);
        }
    }
}
