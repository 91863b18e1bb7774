//! The container engine, behind a small trait.
//!
//! Invariant: only this module (and only `engine::docker`) imports bollard.
//! Callers speak in [`ContainerSpec`] and [`ContainerInfo`]; another runtime
//! (local processes, Kubernetes) implements [`Engine`] without touching the
//! API layer.

mod docker;
#[cfg(feature = "fake")]
pub mod fake;
pub mod faultpoint;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::pin::Pin;

use async_trait::async_trait;
use tokio::io::AsyncRead;

pub use docker::DockerEngine;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The engine cannot be reached (socket missing, connection refused or
    /// cut, timeout).
    #[error("the container engine is unreachable: {0}")]
    Unavailable(String),
    /// The engine answered 404.
    #[error("no such container: {0}")]
    NotFound(String),
    /// The engine answered 409 (a name in use, a container being removed).
    #[error("the container engine reports a conflict: {0}")]
    Conflict(String),
    #[error("image {0} is not available and cannot be pulled")]
    ImageMissing(String),
    /// The image runs but lacks what the caller needs.
    #[error("image {image} cannot be used: {reason}")]
    ImageUnusable { image: String, reason: String },
    /// The engine refused the request with this HTTP status (a port
    /// already allocated, a bad mount, an internal error).
    #[error("the container engine refused the request ({status}): {message}")]
    Rejected { status: u16, message: String },
    /// A container that should publish a port has none.
    #[error("container {0} has no published port")]
    NoPort(String),
    /// The engine's answer was not what its API promises.
    #[error("unexpected answer from the container engine: {0}")]
    Protocol(String),
}

/// A bind mount: a host folder (as the engine sees it) into the container.
#[derive(Debug, Clone)]
pub struct Bind {
    pub host: PathBuf,
    pub container: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    No,
    UnlessStopped,
}

/// A container's TCP port published on the host.
#[derive(Debug, Clone, Copy)]
pub struct Publish {
    pub container_port: u16,
    pub host_ip: IpAddr,
    /// `None`: the engine picks a free port (no races).
    pub host_port: Option<u16>,
}

/// Everything needed to create and start one container.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    /// Command and arguments, run directly (no shell, no image entrypoint).
    pub cmd: Vec<String>,
    /// `uid:gid` to run as.
    pub user: Option<String>,
    pub binds: Vec<Bind>,
    pub publish: Option<Publish>,
    pub labels: BTreeMap<String, String>,
    pub memory_bytes: Option<u64>,
    pub restart: RestartPolicy,
    /// Join the network namespace of this (running) container instead of
    /// getting one: the container then publishes nothing of its own.
    pub network_of: Option<String>,
}

/// The engine's view of a container's run state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Created,
    Running,
    Paused,
    Restarting,
    Exited,
    Dead,
    Other,
}

#[derive(Debug, Clone)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub state: RunState,
    /// The engine's human status, e.g. `Up 3 minutes`.
    pub status: String,
    /// Unix seconds.
    pub created: i64,
    /// Host port of the first published port, if any.
    pub host_port: Option<u16>,
    pub exit_code: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    pub exit_code: i64,
    pub stdout: String,
    /// The last few KiB of standard error.
    pub stderr: String,
    /// Reading the standard input given failed (the process saw it end
    /// early).
    pub stdin_error: Option<StdinError>,
}

/// Why feeding an exec'd process its standard input stopped, with the
/// error's kind kept: a [`io::ErrorKind::BrokenPipe`] only means the
/// process stopped reading (its own output says why); anything else is the
/// input's fault (an unreadable or corrupt file).
#[derive(Debug, Clone)]
pub struct StdinError {
    pub kind: std::io::ErrorKind,
    pub message: String,
}

impl StdinError {
    pub fn from_io(e: &std::io::Error) -> Self {
        Self {
            kind: e.kind(),
            message: e.to_string(),
        }
    }

    /// The process closed its input: not the input's fault.
    pub fn is_broken_pipe(&self) -> bool {
        self.kind == std::io::ErrorKind::BrokenPipe
    }
}

impl std::fmt::Display for StdinError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Standard input streamed into an exec'd process.
pub type Stdin = Pin<Box<dyn AsyncRead + Send>>;

/// Sees an exec'd process's standard output as it comes, piece by piece;
/// dropped when the process has ended.
pub type StdoutWatch = Box<dyn FnMut(&[u8]) + Send>;

#[async_trait]
pub trait Engine: Send + Sync + 'static {
    /// Checks the engine answers.
    async fn ping(&self) -> Result<(), EngineError>;

    /// Makes sure `image` is present (pulls it where a registry is
    /// reachable); returns its id (`sha256:…`), which changes whenever the
    /// tag is rebuilt.
    async fn ensure_image(&self, image: &str) -> Result<String, EngineError>;

    /// Creates and starts a container; returns its id.
    async fn run(&self, spec: &ContainerSpec) -> Result<String, EngineError>;

    /// One container, by name or id; `None` when it does not exist.
    async fn inspect(&self, name: &str) -> Result<Option<ContainerInfo>, EngineError>;

    /// The engine's own inspection document, untouched.
    async fn inspect_raw(&self, name: &str) -> Result<Option<serde_json::Value>, EngineError>;

    /// Every container (running or not) carrying all of `labels`: one call.
    async fn list(
        &self,
        labels: &BTreeMap<String, String>,
    ) -> Result<Vec<ContainerInfo>, EngineError>;

    /// Stops a container, waiting up to `timeout_secs` before killing it.
    async fn stop(&self, name: &str, timeout_secs: u32) -> Result<(), EngineError>;

    /// Renames a container, running or not, without restarting it.
    async fn rename(&self, name: &str, new_name: &str) -> Result<(), EngineError>;

    /// Starts an existing, stopped container.
    async fn start(&self, name: &str) -> Result<(), EngineError>;

    /// Removes a container, killing it if it runs; a missing one is fine.
    async fn remove(&self, name: &str) -> Result<(), EngineError>;

    /// Sends SIGKILL to a running container and returns without waiting
    /// for it to exit (its processes die at once, closing their sockets);
    /// a missing or stopped one is fine.
    async fn kill(&self, name: &str) -> Result<(), EngineError>;

    /// The container's memory use as `docker stats` shows it (usage less
    /// inactive page cache); `None` when it is not running or the engine
    /// has no figure.
    async fn memory_usage(&self, name: &str) -> Result<Option<u64>, EngineError>;

    /// Waits for a container to exit; returns its exit code.
    async fn wait(&self, name: &str) -> Result<i64, EngineError>;

    /// The last `lines` lines of the container's output.
    async fn logs_tail(&self, name: &str, lines: usize) -> Result<String, EngineError>;

    /// Runs `cmd` in a running container as `user`, streaming `stdin` into
    /// it; returns when the process exits.
    async fn exec(
        &self,
        name: &str,
        cmd: Vec<String>,
        user: Option<String>,
        stdin: Option<Stdin>,
    ) -> Result<ExecOutput, EngineError>;

    /// [`Engine::exec`], with the standard output also given to `watch`
    /// as the process writes it. An engine that cannot stream gives it
    /// whole when the process has ended.
    async fn exec_watched(
        &self,
        name: &str,
        cmd: Vec<String>,
        user: Option<String>,
        stdin: Option<Stdin>,
        mut watch: StdoutWatch,
    ) -> Result<ExecOutput, EngineError> {
        let out = self.exec(name, cmd, user, stdin).await?;
        watch(out.stdout.as_bytes());
        Ok(out)
    }
}
