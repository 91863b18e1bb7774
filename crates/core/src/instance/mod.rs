//! Instances: a container running on a clone of a template version.
//!
//! Invariants:
//! - dolly's state is the engine's labels plus the store's
//!   `instances/T/N/meta.json`; there is no other database;
//! - an instance exists once the store claimed its name (`create_dir`):
//!   that is the arbiter of same-name races, across tasks and processes;
//! - `meta.json` (mode 0600) is the only place a password is written, apart
//!   from the init file: written at every start of the server (so a
//!   datadir that lacks the account, such as a fresh clone, gets it), and
//!   emptied once the server answered with the credentials;
//! - an instance reported `running` answered an authenticated `SELECT 1`
//!   with its credentials on its datadir; one whose start failed is
//!   `broken` (with the reason) and has no container;
//! - only `ready` instances are visible; a ready instance is never removed
//!   by housekeeping ([`reconcile`]): a lost container is re-created, and
//!   unreadable metadata sends the folder to quarantine.
//!
//! Submodules: [`create`] (create and clone), [`server`] (the container and
//! its readiness), [`reconcile`] (start-up matching and healing),
//! [`removal`] (delete and reap), [`lifecycle`], [`snapshot`], [`archive`],
//! [`idle`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dolly_engine::{ContainerInfo, EngineError, RunState};
use dolly_names::{InstanceName, SnapshotName, TemplateName, VersionName};

use crate::context::Context;
use crate::store::StoreError;
use crate::template::ImportError;

mod archive;
mod create;
mod diff;
mod disk;
mod door;
mod forward;
mod forwarder;
mod idle;
mod lifecycle;
mod owner;
mod pool;
mod reconcile;
mod removal;
mod server;
mod sleep;
mod snapshot;

pub use crate::store::{InstanceMeta, Quarantined, SnapshotMeta};
pub use archive::Manifest;
pub use create::Source;
pub use diff::{ExplainStep, SchemaDiff, SchemaExplain};
pub use door::Readiness;
pub use forward::CreateOptions;
pub use lifecycle::ResetTarget;
pub use pool::PoolStatus;
pub use reconcile::ReconcileReport;
pub use removal::{Reap, ReapReport, Reaped};
pub use server::{ping, MysqlProber, ProbeError, Prober, USER};
pub use snapshot::{DiskUsage, DiskUse, UsageKind};

/// No lease is longer than this: a larger `ttl` is a mistake, not a wish
/// (`0` asks for no expiry).
pub const TTL_CEILING: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

pub const LABEL_TEMPLATE: &str = "dolly.template";
pub const LABEL_VERSION: &str = "dolly.template-version";
pub const LABEL_NAME: &str = "dolly.name";
pub const LABEL_CREATED: &str = "dolly.created";
pub const LABEL_EXPIRES: &str = "dolly.expires-at";

#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error("template '{name}' does not exist{}", known_list(.known))]
    TemplateNotFound {
        name: TemplateName,
        known: Vec<TemplateName>,
    },
    #[error("template '{0}' is being imported for the first time; try again when it is done")]
    TemplateImporting(TemplateName),
    #[error("template '{0}' is being updated; try again when the update is done")]
    TemplateBusy(TemplateName),
    #[error("instance '{0}/{1}' already exists")]
    AlreadyExists(TemplateName, InstanceName),
    #[error("instance '{0}/{1}' does not exist")]
    NotFound(TemplateName, InstanceName),
    #[error("instance '{what}' {}; server log:\n{log}", if *.exited { format!("exited before it answered (after {:.1?})", .waited) } else { format!("did not answer within {:?}", .waited) })]
    NotReady {
        what: String,
        /// How long dolly waited.
        waited: Duration,
        /// The server's container stopped (or vanished) meanwhile.
        exited: bool,
        log: String,
    },
    #[error("snapshot '{0}/{1}@{2}' does not exist")]
    SnapshotNotFound(TemplateName, InstanceName, SnapshotName),
    #[error("snapshot '{0}/{1}@{2}' already exists")]
    SnapshotExists(TemplateName, InstanceName, SnapshotName),
    #[error("instance '{0}/{1}' is protected: unprotect it or remove it with force")]
    Protected(TemplateName, InstanceName),
    #[error("the time to live may not exceed max_ttl ({})", humantime::format_duration(*.0))]
    TtlTooLong(Duration),
    #[error("the time to live may not exceed 100 years")]
    TtlOutOfRange,
    #[error("template version '{0}@{1}' no longer exists; reset to the latest version instead")]
    VersionGone(TemplateName, VersionName),
    #[error("not a dolly archive, or a damaged one: {0}")]
    ArchiveDamaged(String),
    #[error("the archive was made by {archive:?}; this server runs {server:?}")]
    ArchiveServerMismatch { archive: String, server: String },
    #[error("dolly already runs {0} instances, its max_instances; remove some first")]
    TooMany(usize),
    #[error("user '{user}' already has {max} instances, their max_instances; remove some first")]
    QuotaReached { user: String, max: usize },
    #[error("dolly already keeps {0} snapshots, its max_snapshots; remove some first")]
    TooManySnapshots(usize),
    #[error("user '{user}' already has {max} snapshots, their max_snapshots; remove some first")]
    SnapshotQuotaReached { user: String, max: usize },
    #[error("only {} free in the data folder, below min_free_disk ({})", bytesize::ByteSize(*.free), bytesize::ByteSize(*.min))]
    DiskFull { free: u64, min: u64 },
    #[error("the data folder is full: {0}")]
    OutOfSpace(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Store(StoreError),
    #[error("cannot {what}: {source}")]
    Datadir {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("promote: {0}")]
    Promote(ImportError),
    #[error("instance '{0}/{1}' is not running: start it first")]
    NotRunning(TemplateName, InstanceName),
    #[error("cannot read the schema: {0}")]
    Schema(String),
    /// An instance with `standby` or `sleep_after` needs a forwarder, and
    /// the forwarder runs the `dolly-forward` relay.
    #[error("the forwarder relay {} is missing ({source}): install dolly-forward next to dollyd or set forward_path", .path.display())]
    ForwarderMissing {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl From<StoreError> for InstanceError {
    fn from(e: StoreError) -> Self {
        if e.is_disk_full() {
            InstanceError::OutOfSpace(e.to_string())
        } else {
            InstanceError::Store(e)
        }
    }
}

impl InstanceError {
    /// A short reason when a server started but did not answer with the
    /// instance's credentials (what `broken` instances report).
    pub(crate) fn server_problem(&self) -> Option<String> {
        match self {
            InstanceError::NotReady { waited, exited, .. } => {
                Some(if *exited {
                    format!("its server exited before it answered (after {waited:.1?}); see dollyd's log")
                } else {
                    format!("its server did not answer with the instance's credentials within {waited:.1?}; see dollyd's log")
                })
            }
            InstanceError::OutOfSpace(m) => Some(m.clone()),
            _ => None,
        }
    }

    /// A datadir operation (clone, chown) failed; a full disk says so.
    pub(crate) fn datadir(what: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| {
            if matches!(
                source.raw_os_error(),
                Some(libc::ENOSPC) | Some(libc::EDQUOT)
            ) {
                InstanceError::OutOfSpace(format!("cannot {what}: {source}"))
            } else {
                InstanceError::Datadir { what, source }
            }
        }
    }
}

fn known_list(known: &[TemplateName]) -> String {
    if known.is_empty() {
        " (no templates yet)".to_owned()
    } else {
        let names: Vec<&str> = known.iter().map(|t| t.as_str()).collect();
        format!(" (known: {})", names.join(", "))
    }
}

/// What an instance's server is doing, as dolly and the engine see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceState {
    Running,
    Stopped,
    Restarting,
    /// The server exited on its own.
    Dead,
    /// dolly has the data but the engine has no container for it.
    Missing,
    /// Its server did not answer with the instance's credentials at its
    /// last start (`problem` says why).
    Broken,
    /// Idle for `sleep_after`: its server is stopped; a connection to its
    /// port wakes it.
    Sleeping,
}

/// An instance as dolly sees it: its metadata and its container.
#[derive(Debug, Clone)]
pub struct Instance {
    pub meta: InstanceMeta,
    pub state: InstanceState,
    /// The engine's human status (`Up 3 minutes`), or `missing`.
    pub status: String,
    pub port: Option<u16>,
    /// In a reset's answer: whether it went through the standby.
    pub via_standby: Option<bool>,
    /// The memory its standby's server uses now (read for one instance's
    /// view, not for lists).
    pub standby_memory: Option<u64>,
}

impl Instance {
    pub fn new(meta: InstanceMeta, container: Option<&ContainerInfo>) -> Self {
        let (state, status, port) = match container {
            // Not answering with its credentials at its last start: never
            // reported as running, whatever the engine says.
            _ if meta.broken.is_some() => (
                InstanceState::Broken,
                meta.broken.clone().unwrap_or_default(),
                meta.port,
            ),
            // Its forwarder holds the port; the next connection wakes it.
            _ if meta.forward.as_ref().is_some_and(|f| f.sleeping) => {
                (InstanceState::Sleeping, "sleeping".to_owned(), meta.port)
            }
            Some(c) => (
                match c.state {
                    RunState::Running | RunState::Paused => InstanceState::Running,
                    RunState::Restarting => InstanceState::Restarting,
                    RunState::Created => InstanceState::Stopped,
                    // Stopped through dolly; anything else that exited is dead.
                    RunState::Exited if meta.stopped => InstanceState::Stopped,
                    RunState::Exited | RunState::Dead | RunState::Other => InstanceState::Dead,
                },
                c.status.clone(),
                c.host_port.or(meta.port),
            ),
            // A stopped instance needs no container: `start` makes one.
            None if meta.stopped => (InstanceState::Stopped, "stopped".to_owned(), meta.port),
            None => (InstanceState::Missing, "missing".to_owned(), meta.port),
        };
        // Stopped by dolly on its own: the status says why.
        let status = match &meta.stopped_reason {
            Some(reason) if state == InstanceState::Stopped => reason.clone(),
            _ => status,
        };
        // A server behind a forwarder publishes nothing itself.
        let port = port.or(meta.port);
        Self {
            meta,
            state,
            status,
            port,
            via_standby: None,
            standby_memory: None,
        }
    }
}

pub(crate) type InstanceKey = (TemplateName, InstanceName);

/// Creates, finds and removes instances.
pub struct Manager {
    ctx: Arc<Context>,
    /// One lock per (template, name): same-name requests queue, others run
    /// in parallel.
    locks: Mutex<HashMap<InstanceKey, Arc<tokio::sync::Mutex<()>>>>,
    /// For `idle_ttl`: per instance, the server's `Connections` counter at
    /// the last look and when a client was last seen.
    activity: Mutex<HashMap<InstanceKey, idle::Activity>>,
    /// Held while a create counts instances and claims its name.
    create_gate: tokio::sync::Mutex<()>,
    /// Creates under way, by owner (quotas count them).
    creating: owner::Reservations<InstanceKey>,
    /// Held while a snapshot counts snapshots and takes its reservation.
    snapshot_gate: tokio::sync::Mutex<()>,
    /// Snapshots being taken, by owner.
    snapshotting: owner::Reservations<owner::SnapshotKey>,
    /// The warm pool's ready members.
    pools: pool::Pools,
    /// Wakes the task that prepares standbys.
    standby_wake: tokio::sync::Notify,
    /// Set when an instance went to sleep (or a wake failed): the waker
    /// reads the sleeping instances from the store again.
    sleepers_changed: std::sync::atomic::AtomicBool,
}

impl Manager {
    pub fn new(ctx: Arc<Context>) -> Self {
        Self {
            ctx,
            locks: Mutex::new(HashMap::new()),
            activity: Mutex::new(HashMap::new()),
            create_gate: tokio::sync::Mutex::new(()),
            creating: owner::Reservations::default(),
            snapshot_gate: tokio::sync::Mutex::new(()),
            snapshotting: owner::Reservations::default(),
            pools: pool::Pools::default(),
            standby_wake: tokio::sync::Notify::new(),
            sleepers_changed: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// The context (core's own tests reach the store and the engine).
    #[cfg(test)]
    pub(crate) fn context(&self) -> &Context {
        &self.ctx
    }

    fn key_lock(&self, t: &TemplateName, n: &InstanceName) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        // Forget locks nobody holds, so the map stays small.
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        Arc::clone(locks.entry((t.clone(), n.clone())).or_default())
    }

    fn container_name(&self, t: &TemplateName, n: &InstanceName) -> String {
        // Names never contain '.', so "T.N" is unambiguous.
        format!("{}{}.{}", self.ctx.settings.container_prefix, t, n)
    }

    /// The metadata of `t/n` as stored (off the async workers).
    async fn read_meta(
        &self,
        t: &TemplateName,
        n: &InstanceName,
    ) -> Result<Option<InstanceMeta>, StoreError> {
        let (t, n) = (t.clone(), n.clone());
        self.ctx.store.read_instance(&t, &n).await
    }

    async fn write_meta(&self, meta: &InstanceMeta) -> Result<(), StoreError> {
        let meta = meta.clone();
        self.ctx.store.write_instance(&meta).await
    }

    /// The metadata of a ready instance, or `NotFound`. Damaged metadata
    /// is an error, not "not found".
    async fn ready_meta(
        &self,
        t: &TemplateName,
        n: &InstanceName,
    ) -> Result<InstanceMeta, InstanceError> {
        self.read_meta(t, n)
            .await?
            .filter(|m| m.ready)
            .ok_or_else(|| InstanceError::NotFound(t.clone(), n.clone()))
    }

    /// An instance with its container's state as the engine reports it now.
    async fn view(&self, meta: InstanceMeta) -> Result<Instance, InstanceError> {
        let info = self.ctx.engine.inspect(&meta.container).await?;
        Ok(Instance::new(meta, info.as_ref()))
    }

    /// One instance with its container's state.
    pub async fn get(&self, t: &TemplateName, n: &InstanceName) -> Result<Instance, InstanceError> {
        let meta = self.ready_meta(t, n).await?;
        let memory = self.standby_memory(&meta).await;
        let mut i = self.view(meta).await?;
        i.standby_memory = memory;
        Ok(i)
    }

    /// The engine's own inspection document of an instance's container
    /// (myaas's `?all=1`): the one place raw engine JSON leaves dolly.
    pub async fn inspect_container(
        &self,
        t: &TemplateName,
        n: &InstanceName,
    ) -> Result<serde_json::Value, InstanceError> {
        let meta = self.ready_meta(t, n).await?;
        self.ctx
            .engine
            .inspect_raw(&meta.container)
            .await?
            .ok_or_else(|| InstanceError::NotFound(t.clone(), n.clone()))
    }

    /// Every ready instance (of `only` when given): one engine call. An
    /// instance whose metadata cannot be read is left out and logged (the
    /// next start sets it aside).
    pub async fn list(&self, only: Option<&TemplateName>) -> Result<Vec<Instance>, InstanceError> {
        let containers = self.containers().await?;
        let metas = self.ctx.store.ready_instances(only).await?;
        Ok(metas
            .into_iter()
            .map(|m| {
                let c = containers.get(&m.container);
                Instance::new(m, c)
            })
            .collect())
    }

    /// Containers of this dolly's instances, by name (all of ours: a
    /// container handed out from the pool keeps its `pool` kind label).
    async fn containers(&self) -> Result<BTreeMap<String, ContainerInfo>, InstanceError> {
        let list = self.ctx.engine.list(&self.ctx.ownership_labels()).await?;
        Ok(list.into_iter().map(|c| (c.name.clone(), c)).collect())
    }

    /// What is in quarantine: instance folders set aside because their
    /// metadata could not be read.
    pub async fn quarantined(&self) -> Result<Vec<Quarantined>, InstanceError> {
        Ok(self.ctx.store.quarantined().await?)
    }
}

#[async_trait::async_trait]
impl crate::template::VersionsInUse for Manager {
    /// Template versions that instances of `t` or their snapshots come
    /// from. Any metadata it cannot read is an error: an update then keeps
    /// every version.
    async fn versions_in_use(&self, t: &TemplateName) -> Result<HashSet<VersionName>, StoreError> {
        self.ctx.store.versions_in_use(t).await
    }
}

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
