//! An instance's server container: started on its datadir with the init
//! file that sets its password, then polled with an authenticated
//! `SELECT 1` until it answers.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use dolly_engine::{EngineError, RunState};
use dolly_names::{InstanceName, TemplateName};
use tracing::{debug, warn};

use super::{
    Instance, InstanceError, InstanceMeta, Manager, LABEL_CREATED, LABEL_EXPIRES, LABEL_NAME,
    LABEL_TEMPLATE, LABEL_VERSION,
};
use crate::clone::Owner;
use crate::dbserver::{self, init_sql};

/// A server to start: its container, datadir, password and labels.
pub(super) struct Server {
    pub container: String,
    pub datadir: std::path::PathBuf,
    pub password: String,
    pub labels: std::collections::BTreeMap<String, String>,
    /// `T/N` or `T pool member M`, for messages.
    pub what: String,
}

/// Where a server's port comes from.
pub(super) enum Placement<'a> {
    /// Its own container publishes it (`Some`: this host port).
    Published(Option<u16>),
    /// A forwarder publishes `host_port` and relays to the server on
    /// `inner_port` of its namespace once the target file of `target`
    /// says so.
    Behind {
        forwarder: &'a str,
        inner_port: u16,
        host_port: u16,
        target: (TemplateName, InstanceName),
    },
}

/// What the init file holds once the password is set.
pub(super) const INIT_DONE: &[u8] = b"-- dolly: the password was set at the first start\n";

/// The user instances hand out.
pub const USER: &str = "root";

impl Manager {
    /// Starts a container on the instance's datadir (which must exist), on
    /// `port` when given (so stop/start and reset keep it; a port taken
    /// meanwhile gets a new one, logged), sets the password through the
    /// init file and waits for `SELECT 1`. Records the port and readiness.
    pub(super) async fn start_container(
        &self,
        meta: &mut InstanceMeta,
        port: Option<u16>,
    ) -> Result<Instance, InstanceError> {
        let (t, n) = (meta.template.clone(), meta.name.clone());
        let mut labels = self.ctx.labels("instance");
        labels.extend([
            (LABEL_TEMPLATE.to_owned(), t.to_string()),
            (LABEL_VERSION.to_owned(), meta.version.to_string()),
            (LABEL_NAME.to_owned(), n.to_string()),
            (
                LABEL_CREATED.to_owned(),
                meta.created_at.timestamp().to_string(),
            ),
        ]);
        if let Some(e) = meta.expires_at {
            labels.insert(LABEL_EXPIRES.to_owned(), e.timestamp().to_string());
        }
        let server = Server {
            container: meta.container.clone(),
            datadir: self.ctx.store.instance_data(&t, &n),
            password: meta.password.clone(),
            labels,
            what: format!("{t}/{n}"),
        };
        let started = if meta.forward.is_some() {
            self.start_behind(meta, &server).await
        } else {
            self.start_server(&server, Placement::Published(port)).await
        };
        let port = match started {
            Ok(port) => port,
            Err(e) => {
                // A ready instance whose server did not answer is reported
                // broken (its container is gone), never running.
                if let Some(problem) = e.server_problem().filter(|_| meta.ready) {
                    warn!(template = %t, instance = %n, problem, "the instance's server did not answer: it is reported broken until a start, reset or restore answers");
                    meta.broken = Some(problem);
                    self.write_meta(meta).await?;
                }
                return Err(e);
            }
        };
        meta.port = Some(port);
        meta.ready = true;
        meta.stopped = false;
        meta.stopped_reason = None;
        meta.broken = None;
        if let Some(f) = meta.forward.as_mut() {
            f.sleeping = false;
        }
        self.write_meta(meta).await?;
        if meta.forward.as_ref().is_some_and(|f| f.standby) {
            self.standby_wanted();
        }
        self.view(meta.clone()).await
    }

    /// Starts `server` (a container on its datadir) on `port` when given
    /// (a port taken meanwhile gets a new one, logged), sets the password
    /// through the init file, waits for `SELECT 1` and empties the init
    /// file. Returns the host port. Instances and pool members both start
    /// here.
    pub(super) async fn start_server(
        &self,
        server: &Server,
        placement: Placement<'_>,
    ) -> Result<u16, InstanceError> {
        let ctx = &self.ctx;
        let image = ctx.image().await?.clone();
        let init = server.datadir.join(dbserver::INIT_FILE);
        let (init2, sql, owner) = (init.clone(), init_sql(&server.password), image.owner);
        crate::context::blocking_io(move || write_private(&init2, sql.as_bytes(), Some(owner)))
            .await
            .map_err(InstanceError::datadir("write the init file"))?;
        let port = match placement {
            Placement::Published(port) => port,
            Placement::Behind {
                forwarder,
                inner_port,
                host_port,
                target,
            } => {
                let (init, owner) = (init.clone(), owner);
                return self
                    .start_server_behind(
                        server,
                        forwarder,
                        inner_port,
                        host_port,
                        target,
                        (init, owner),
                    )
                    .await;
            }
        };
        let spec_of = |port: Option<u16>| {
            image.instance_spec(
                dbserver::ServerContainer {
                    name: server.container.clone(),
                    image: ctx.settings.image.clone(),
                    datadir: ctx.store.for_engine(&server.datadir),
                    labels: server.labels.clone(),
                },
                ctx.settings.instance_bind,
                port,
                ctx.settings.instance_memory,
            )
        };
        ctx.engine.remove(&server.container).await?;
        if let Err(e) = ctx.engine.run(&spec_of(port)).await {
            // The old port was taken meanwhile: take any. (A conflict is
            // about the name, not the port: no reason to change ports.)
            if port.is_none() || matches!(e, EngineError::Conflict(_)) {
                return Err(e.into());
            }
            warn!(error = %e, port, "cannot publish the previous port; taking a new one");
            ctx.engine.remove(&server.container).await?;
            ctx.engine.run(&spec_of(None)).await?;
        }
        let info = ctx
            .engine
            .inspect(&server.container)
            .await?
            .ok_or_else(|| EngineError::NotFound(server.container.clone()))?;
        let port = info
            .host_port
            .ok_or_else(|| EngineError::NoPort(server.container.clone()))?;
        crate::faultpoint::hit("server.running");
        if let Err(e) = self.wait_ready(server, port).await {
            // Nothing that does not answer with its credentials stays up;
            // the password leaves the init file (the next start writes it
            // again).
            if let Err(e) = ctx.engine.remove(&server.container).await {
                warn!(error = %e, container = server.container, "cannot remove a server that did not answer");
            }
            let _ = crate::context::blocking_io(move || empty_init_file(&init, owner)).await;
            return Err(e);
        }
        crate::faultpoint::hit("server.answered");
        // The server reads this file at every start: keep it, emptied.
        crate::context::blocking_io(move || empty_init_file(&init, owner))
            .await
            .map_err(InstanceError::datadir("empty the init file"))?;
        Ok(port)
    }

    /// [`Manager::start_server`] behind a forwarder: the target file holds
    /// connections while the server starts, then lets them through.
    async fn start_server_behind(
        &self,
        server: &Server,
        forwarder: &str,
        inner_port: u16,
        host_port: u16,
        (t, n): (TemplateName, InstanceName),
        (init, owner): (std::path::PathBuf, Owner),
    ) -> Result<u16, InstanceError> {
        let ctx = &self.ctx;
        let image = ctx.image().await?.clone();
        let container = dbserver::ServerContainer {
            name: server.container.clone(),
            image: ctx.settings.image.clone(),
            datadir: ctx.store.for_engine(&server.datadir),
            labels: server.labels.clone(),
        };
        // Connections wait while the server starts; they are let through
        // once it accepts them.
        self.set_target(&t, &n, crate::store::Target::Starting)
            .await?;
        ctx.engine.remove(&server.container).await?;
        let spec = image.behind_spec(
            container,
            forwarder,
            inner_port,
            ctx.settings.instance_memory,
        );
        ctx.engine.run(&spec).await?;
        crate::faultpoint::hit("server.running");
        let alive = async {
            let secs = ctx.settings.ready_timeout.as_secs().clamp(1, 3600) as u32;
            self.wait_alive(&server.container, secs).await?;
            self.set_target(&t, &n, crate::store::Target::Port(inner_port))
                .await?;
            self.wait_ready(server, host_port).await
        };
        if let Err(e) = alive.await {
            if let Err(e) = ctx.engine.remove(&server.container).await {
                warn!(error = %e, container = server.container, "cannot remove a server that did not answer");
            }
            let _ = crate::context::blocking_io(move || empty_init_file(&init, owner)).await;
            return Err(e);
        }
        crate::faultpoint::hit("server.answered");
        crate::context::blocking_io(move || empty_init_file(&init, owner))
            .await
            .map_err(InstanceError::datadir("empty the init file"))?;
        Ok(host_port)
    }

    /// Polls with a real authenticated `SELECT 1`, backing off from 20 ms;
    /// fails fast when the server exits.
    async fn wait_ready(&self, server: &Server, port: u16) -> Result<(), InstanceError> {
        self.wait_answer_as(server, port, self.ctx.settings.ready_timeout)
            .await
    }

    /// [`Manager::wait_ready`] for a container found running, within `timeout`.
    pub(super) async fn wait_answer(
        &self,
        container: &str,
        password: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<(), InstanceError> {
        let server = Server {
            container: container.to_owned(),
            datadir: std::path::PathBuf::new(),
            password: password.to_owned(),
            labels: Default::default(),
            what: container.to_owned(),
        };
        self.wait_answer_as(&server, port, timeout).await
    }

    async fn wait_answer_as(
        &self,
        server: &Server,
        port: u16,
        timeout: Duration,
    ) -> Result<(), InstanceError> {
        let started = Instant::now();
        let deadline = started + timeout;
        let mut delay = Duration::from_millis(20);
        let mut last_state_check = Instant::now();
        loop {
            match self
                .ctx
                .prober
                .ping(&self.ctx.settings.connect_host, port, &server.password)
                .await
            {
                Ok(()) => return Ok(()),
                Err(e) => debug!(error = %e, "not ready yet"),
            }
            let now = Instant::now();
            let exited = if now.duration_since(last_state_check) > Duration::from_millis(500) {
                last_state_check = now;
                let info = self.ctx.engine.inspect(&server.container).await?;
                !info.is_some_and(|i| i.state == RunState::Running)
            } else {
                false
            };
            if exited || now >= deadline {
                let log = self
                    .ctx
                    .engine
                    .logs_tail(&server.container, 20)
                    .await
                    .unwrap_or_default();
                if log.contains("errno: 28") || log.contains("No space left on device") {
                    return Err(InstanceError::OutOfSpace(format!(
                        "the server of '{}' could not write its datadir",
                        server.what
                    )));
                }
                return Err(InstanceError::NotReady {
                    what: server.what.clone(),
                    waited: started.elapsed(),
                    exited,
                    log,
                });
            }
            tokio::time::sleep(delay).await;
            // Short steps: a server that needs ~1 s (MySQL) is seen at once.
            delay = (delay * 3 / 2).min(Duration::from_millis(50));
        }
    }

    /// Removes the container and the folder of a half-made instance (or of
    /// one a user removes), whatever is left of them.
    pub(super) async fn teardown(&self, t: &TemplateName, n: &InstanceName) {
        if let Err(e) = self.remove_all_containers(t, n).await {
            warn!(error = %e, "cannot remove the instance's containers");
        }
        let (t, n) = (t.clone(), n.clone());
        if let Err(e) = self.ctx.store.remove_instance(&t, &n).await {
            warn!(error = %e, "cannot remove the instance's folder");
        }
    }
}

/// 192 random bits, hex: nothing to quote anywhere.
pub(super) fn new_password() -> String {
    let bytes: [u8; 24] = rand::random();
    hex::encode(bytes)
}

/// Empties the init file of a datadir (the server reads it at every
/// start, so it stays, holding no password). Blocking.
pub(super) fn empty_init_file(init: &Path, owner: Owner) -> io::Result<()> {
    write_private(init, INIT_DONE, Some(owner))
}

/// Whether the init file at `init` still holds a password: a start that
/// has not seen its server answer yet, or was interrupted. Blocking.
pub(super) fn init_file_unsettled(init: &Path) -> bool {
    fs::metadata(init).is_ok_and(|m| m.len() > INIT_DONE.len() as u64)
}

/// Writes a 0600 file, owned by `owner` when given. Blocking.
pub(super) fn write_private(path: &Path, data: &[u8], owner: Option<Owner>) -> io::Result<()> {
    let mut f = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)?;
    // `mode` only applies to a new file: an existing one (a restored
    // datadir's, 0640) is made private too.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(data)?;
    if let Some(o) = owner {
        std::os::unix::fs::chown(path, Some(o.uid), Some(o.gid))?;
    }
    Ok(())
}

/// Connection options for an instance's root user over TCP.
pub(crate) fn connect_opts(host: &str, port: u16, password: &str) -> mysql_async::OptsBuilder {
    mysql_async::OptsBuilder::default()
        .ip_or_hostname(host.to_owned())
        .tcp_port(port)
        .user(Some(USER))
        .pass(Some(password.to_owned()))
        .prefer_socket(false)
}

/// Why a server did not answer a probe.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The server (or the connection to it) said no: refused, closed,
    /// wrong credentials, an error to the query.
    #[error(transparent)]
    Server(#[from] mysql_async::Error),
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    /// A fake engine's server does not accept these credentials (tests).
    #[error("no server accepts these credentials on port {0}")]
    Refused(u16),
}

/// How long one probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// How dolly asks a server whether it accepts an instance's credentials:
/// the seam that lets the logic above run over a fake engine.
#[async_trait::async_trait]
pub trait Prober: Send + Sync {
    /// One authenticated `SELECT 1`, bounded in time.
    async fn ping(&self, host: &str, port: u16, password: &str) -> Result<(), ProbeError>;
}

/// The real probe: MySQL's protocol through mysql_async.
pub struct MysqlProber;

#[async_trait::async_trait]
impl Prober for MysqlProber {
    async fn ping(&self, host: &str, port: u16, password: &str) -> Result<(), ProbeError> {
        ping(host, port, password).await
    }
}

/// The ping's client-side packet limit (the protocol's minimum is 1 KiB).
const PING_MAX_PACKET: usize = 1 << 20;
/// The ping's idea of the server's `wait_timeout`, in seconds (it lives
/// for two at most).
const PING_WAIT_TIMEOUT: usize = 60;

/// One authenticated `SELECT 1` over TCP, bounded in time.
pub async fn ping(host: &str, port: u16, password: &str) -> Result<(), ProbeError> {
    use mysql_async::prelude::Queryable;
    // Known values instead of asking the server for them at connect (one
    // round trip less: the ping is on a reset's path). Nothing larger
    // than `SELECT 1`'s answer is read on this connection.
    let opts = connect_opts(host, port, password)
        .max_allowed_packet(Some(PING_MAX_PACKET))
        .wait_timeout(Some(PING_WAIT_TIMEOUT));
    let attempt = async {
        let mut conn = mysql_async::Conn::new(opts).await?;
        conn.query_drop("SELECT 1").await?;
        conn.disconnect().await
    };
    match tokio::time::timeout(PROBE_TIMEOUT, attempt).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(ProbeError::TimedOut(PROBE_TIMEOUT)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_192_random_bits_in_hex() {
        let a = new_password();
        assert_eq!(a.len(), 48);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, new_password());
    }

    #[test]
    fn private_files_are_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("init.sql");
        write_private(&path, b"x", None).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
