//! Instances: a container running on a clone of a template version.
//!
//! Invariants:
//! - dolly's state is the engine's labels plus `instances/T/N/meta.json`;
//!   there is no other database;
//! - an instance exists once `create_dir(instances/T/N)` succeeded: that is
//!   the arbiter of same-name races, across tasks and processes;
//! - `meta.json` (mode 0600) is the only place a password is written, apart
//!   from the init file the server reads once and that is then removed;
//! - an instance answered to a client (`ready`) has a container and a
//!   datadir; anything else found at start is half-made and removed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use dolly_types::v1::{InstanceState, Reap, ReapReport, Reaped};
use dolly_types::{InstanceName, SnapshotName, TemplateName, VersionName};
use serde::{Deserialize, Serialize};
use tracing::{debug, info, info_span, warn, Instrument};

use crate::clone::{clone_tree, remove_tree};
use crate::context::{Context, LABEL_KIND};
use crate::dbserver::{self, init_sql};
use crate::layout::list_names;
use crate::template;
use dolly_engine::{ContainerInfo, EngineError, RunState};

mod archive;
mod idle;
mod lifecycle;
pub use lifecycle::ResetTarget;
mod snapshot;

pub use archive::Manifest;
pub use snapshot::{filesystem_space, SnapshotMeta};

pub const LABEL_TEMPLATE: &str = "dolly.template";
pub const LABEL_VERSION: &str = "dolly.template-version";
pub const LABEL_NAME: &str = "dolly.name";
pub const LABEL_CREATED: &str = "dolly.created";
pub const LABEL_EXPIRES: &str = "dolly.expires-at";

/// What the init file holds once the password is set.
const INIT_DONE: &[u8] = b"-- dolly: the password was set at the first start\n";

/// The user instances hand out.
pub const USER: &str = "root";

#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error("template '{name}' does not exist{}", known_list(.known))]
    TemplateNotFound {
        name: TemplateName,
        known: Vec<TemplateName>,
    },
    #[error("template '{0}' is being imported for the first time; try again when it is done")]
    TemplateImporting(TemplateName),
    #[error("instance '{0}/{1}' already exists")]
    AlreadyExists(TemplateName, InstanceName),
    #[error("instance '{0}/{1}' does not exist")]
    NotFound(TemplateName, InstanceName),
    #[error("instance '{template}/{name}' did not answer within {timeout:?}; server log:\n{log}")]
    NotReady {
        template: TemplateName,
        name: InstanceName,
        timeout: Duration,
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
    #[error("template version '{0}@{1}' no longer exists; reset to the latest version instead")]
    VersionGone(TemplateName, VersionName),
    #[error("{0}")]
    Conflict(String),
    #[error("dolly already runs {0} instances, its max_instances; remove some first")]
    TooMany(usize),
    #[error("only {} free in the data folder, below min_free_disk ({})", bytesize::ByteSize(*.free), bytesize::ByteSize(*.min))]
    DiskFull { free: u64, min: u64 },
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

fn known_list(known: &[TemplateName]) -> String {
    if known.is_empty() {
        " (no templates yet)".to_owned()
    } else {
        let names: Vec<&str> = known.iter().map(|t| t.as_str()).collect();
        format!(" (known: {})", names.join(", "))
    }
}

fn io_ctx(context: impl Into<String>) -> impl FnOnce(io::Error) -> InstanceError {
    let context = context.into();
    move |source| InstanceError::Io { context, source }
}

/// `instances/T/N/meta.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceMeta {
    pub template: TemplateName,
    pub name: InstanceName,
    pub version: VersionName,
    pub password: String,
    pub database: String,
    pub container: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The host port the engine gave it.
    #[serde(default)]
    pub port: Option<u16>,
    /// Set once the instance answered `SELECT 1`.
    pub ready: bool,
    /// Never reaped nor removed by cleanup.
    #[serde(default)]
    pub protected: bool,
    /// Stopped on purpose (`stop`): not dead.
    #[serde(default)]
    pub stopped: bool,
}

/// An instance as dolly sees it: its metadata and its container.
#[derive(Debug, Clone)]
pub struct Instance {
    pub meta: InstanceMeta,
    pub state: InstanceState,
    /// The engine's human status (`Up 3 minutes`), or `missing`.
    pub status: String,
    pub port: Option<u16>,
}

impl Instance {
    fn new(meta: InstanceMeta, container: Option<&ContainerInfo>) -> Self {
        let (state, status, port) = match container {
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
            None => (InstanceState::Missing, "missing".to_owned(), meta.port),
        };
        Self {
            meta,
            state,
            status,
            port,
        }
    }
}

type InstanceKey = (TemplateName, InstanceName);

/// What a new instance is cloned from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The template's current version.
    Template,
    /// A snapshot of another instance of the same template (a branch).
    Snapshot(InstanceName, SnapshotName),
    /// A datadir unpacked from an exported archive.
    Archive {
        data: PathBuf,
        version: VersionName,
        database: String,
    },
}

/// Creates, finds and removes instances.
pub struct Manager {
    ctx: Arc<Context>,
    /// One lock per (template, name): same-name requests queue, others run
    /// in parallel.
    locks: Mutex<HashMap<InstanceKey, Arc<tokio::sync::Mutex<()>>>>,
    /// For `idle_ttl`: per instance, the server's `Connections` counter at
    /// the last look and when a client was last seen.
    activity: Mutex<HashMap<InstanceKey, idle::Activity>>,
}

impl Manager {
    pub fn new(ctx: Arc<Context>) -> Self {
        Self {
            ctx,
            locks: Mutex::new(HashMap::new()),
            activity: Mutex::new(HashMap::new()),
        }
    }

    pub fn context(&self) -> &Context {
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

    fn read_meta(&self, t: &TemplateName, n: &InstanceName) -> Option<InstanceMeta> {
        let bytes = fs::read(self.ctx.layout.instance_meta(t, n)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn write_meta(&self, meta: &InstanceMeta) -> Result<(), InstanceError> {
        let path = self.ctx.layout.instance_meta(&meta.template, &meta.name);
        let staging = path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(meta).map_err(|e| InstanceError::Io {
            context: "serialize instance metadata".into(),
            source: io::Error::other(e),
        })?;
        let mut f = fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&staging)
            .map_err(io_ctx(format!("write {}", staging.display())))?;
        f.write_all(&text)
            .and_then(|()| f.sync_all())
            .map_err(io_ctx(format!("write {}", staging.display())))?;
        fs::rename(&staging, &path).map_err(io_ctx(format!("write {}", path.display())))
    }

    /// Creates `t/n` from the current version of `t` (or, with `from`, from
    /// a snapshot of another instance of `t`) and waits until it answers
    /// `SELECT 1` with its own credentials.
    pub async fn create(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        ttl: Option<Duration>,
        source: Source,
    ) -> Result<Instance, InstanceError> {
        let span = info_span!("create", template = %t, instance = %n);
        async {
            let lease = self.lease_for(ttl)?;
            self.check_limits()?;
            let lock = self.key_lock(t, n);
            let _guard = lock.lock().await;
            let started = Instant::now();
            let (version, database) = match &source {
                Source::Archive {
                    version, database, ..
                } => (version.clone(), database.clone()),
                Source::Template => {
                    let v = self.resolve_template(t)?;
                    let db = template::version_meta(&self.ctx, t, &v)
                        .map(|m| m.database)
                        .unwrap_or_else(|| self.ctx.settings.database.clone());
                    (v, db)
                }
                Source::Snapshot(src, snap) => {
                    let m = self.ready_meta(t, src)?;
                    let s = self.snapshot_meta(t, src, snap)?;
                    (s.template_version, m.database)
                }
            };
            let dir = self.ctx.layout.instance(t, n);
            let parent = self.ctx.layout.instance_parent(t);
            fs::create_dir_all(&parent).map_err(io_ctx(format!("create {}", parent.display())))?;
            match fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(InstanceError::AlreadyExists(t.clone(), n.clone()));
                }
                Err(e) => return Err(io_ctx(format!("create {}", dir.display()))(e)),
            }
            let created_at = Utc::now();
            let expires_at =
                lease.and_then(|d| chrono::Duration::from_std(d).ok().map(|d| created_at + d));
            let meta = InstanceMeta {
                template: t.clone(),
                name: n.clone(),
                version,
                password: new_password(),
                database,
                container: self.container_name(t, n),
                created_at,
                expires_at,
                port: None,
                ready: false,
                protected: false,
                stopped: false,
            };
            let result = self.build(meta, source).await;
            self.ctx.metrics.operation("create", result.is_ok());
            if result.is_ok() {
                self.ctx
                    .metrics
                    .create_ready(started.elapsed().as_secs_f64());
            }
            match &result {
                Ok(_) => info!(
                    ms = started.elapsed().as_millis() as u64,
                    clone = self.ctx.clone_mode.as_str(),
                    "instance created"
                ),
                Err(e) => {
                    warn!(error = %e, "create failed; removing what was made");
                    self.teardown(t, n).await;
                }
            }
            result
        }
        .instrument(span)
        .await
    }

    /// The lease of an instance asking for `ttl` (`Some(0)`: none), within
    /// `max_ttl`.
    fn lease_for(&self, ttl: Option<Duration>) -> Result<Option<Duration>, InstanceError> {
        let settings = &self.ctx.settings;
        let ttl = match ttl {
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
            None => settings.default_ttl,
        };
        match (ttl, settings.max_ttl) {
            (None, Some(max)) => Err(InstanceError::TtlTooLong(max)),
            (Some(d), Some(max)) if d > max => Err(InstanceError::TtlTooLong(max)),
            (d, _) => Ok(d),
        }
    }

    /// `max_instances` and `min_free_disk`.
    fn check_limits(&self) -> Result<(), InstanceError> {
        let settings = &self.ctx.settings;
        if let Some(max) = settings.max_instances {
            let count = self.instance_dirs(None)?.len();
            if count >= max {
                return Err(InstanceError::TooMany(max));
            }
        }
        let (free, _) = snapshot::filesystem_space(self.ctx.layout.root());
        if free < settings.min_free_disk {
            return Err(InstanceError::DiskFull {
                free,
                min: settings.min_free_disk,
            });
        }
        Ok(())
    }

    fn resolve_template(&self, t: &TemplateName) -> Result<VersionName, InstanceError> {
        match template::current_version(&self.ctx, t) {
            Some(v) => Ok(v),
            None if template::is_importing(&self.ctx, t) => {
                Err(InstanceError::TemplateImporting(t.clone()))
            }
            None => Err(InstanceError::TemplateNotFound {
                name: t.clone(),
                known: template::list(&self.ctx).unwrap_or_default(),
            }),
        }
    }

    /// The metadata of a ready instance, or `NotFound`.
    fn ready_meta(
        &self,
        t: &TemplateName,
        n: &InstanceName,
    ) -> Result<InstanceMeta, InstanceError> {
        self.read_meta(t, n)
            .filter(|m| m.ready)
            .ok_or_else(|| InstanceError::NotFound(t.clone(), n.clone()))
    }

    async fn build(
        &self,
        mut meta: InstanceMeta,
        source: Source,
    ) -> Result<Instance, InstanceError> {
        let (t, n) = (meta.template.clone(), meta.name.clone());
        self.write_meta(&meta)?;
        let data = self.ctx.layout.instance_data(&t, &n);
        match source {
            Source::Archive { data: src, .. } => self.clone_into(src, &data).await?,
            Source::Snapshot(src, snap) => {
                let source = self.ctx.layout.snapshot_data(&t, &src, &snap);
                self.clone_into(source, &data).await?;
            }
            Source::Template => {
                // If an update removed the version meanwhile, take the new one.
                let source = self.ctx.layout.template_version(&t, &meta.version);
                match self.clone_into(source, &data).await {
                    Err(InstanceError::Io { source, .. })
                        if source.kind() == io::ErrorKind::NotFound =>
                    {
                        let _ = remove_tree(&data);
                        meta.version = self.resolve_template(&t)?;
                        self.write_meta(&meta)?;
                        let source = self.ctx.layout.template_version(&t, &meta.version);
                        self.clone_into(source, &data).await?;
                    }
                    other => other?,
                }
            }
        }
        debug!(version = %meta.version, "cloned");
        self.start_container(&mut meta, None).await
    }

    /// Clones a datadir (template version or snapshot) to `dst`, owned by
    /// the image's mysql user.
    async fn clone_into(&self, src: PathBuf, dst: &Path) -> Result<(), InstanceError> {
        let owner = self.ctx.image().await?.owner;
        let (dst, mode) = (dst.to_path_buf(), self.ctx.clone_mode);
        tokio::task::spawn_blocking(move || clone_tree(&src, &dst, mode, owner))
            .await
            .map_err(|e| io_ctx("clone")(io::Error::other(e)))?
            .map_err(io_ctx("clone the datadir"))
    }

    /// Starts a container on the instance's datadir (which must exist), on
    /// `port` when given (so stop/start and reset keep it), sets the
    /// password through the init file and waits for `SELECT 1`.
    async fn start_container(
        &self,
        meta: &mut InstanceMeta,
        port: Option<u16>,
    ) -> Result<Instance, InstanceError> {
        let ctx = &self.ctx;
        let image = ctx.image().await?.clone();
        let (t, n) = (meta.template.clone(), meta.name.clone());
        let data = ctx.layout.instance_data(&t, &n);
        let init = data.join(dbserver::INIT_FILE);
        write_private(
            &init,
            init_sql(&meta.password).as_bytes(),
            Some(image.owner),
        )
        .map_err(io_ctx("write the init file"))?;

        let mut labels = ctx.labels("instance");
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
        let server = dbserver::ServerContainer {
            name: meta.container.clone(),
            image: ctx.settings.image.clone(),
            datadir: ctx.layout.for_engine(&data),
            labels,
        };
        let mut spec = image.instance_spec(
            server,
            ctx.settings.instance_bind,
            port,
            ctx.settings.instance_memory,
        );
        ctx.engine.remove(&meta.container).await?;
        if let Err(e) = ctx.engine.run(&spec).await {
            // The old port was taken meanwhile: take any.
            if port.is_none() {
                return Err(e.into());
            }
            warn!(error = %e, port, "cannot publish the previous port; taking a new one");
            ctx.engine.remove(&meta.container).await?;
            if let Some(p) = spec.publish.as_mut() {
                p.host_port = None;
            }
            ctx.engine.run(&spec).await?;
        }
        let info = ctx
            .engine
            .inspect(&meta.container)
            .await?
            .ok_or_else(|| EngineError::NotFound(meta.container.clone()))?;
        let port = info.host_port.ok_or_else(|| {
            EngineError::Other(format!("{} has no published port", meta.container))
        })?;
        self.wait_ready(meta, port).await?;
        // The server reads this file at every start: keep it, emptied.
        write_private(&init, INIT_DONE, Some(image.owner))
            .map_err(io_ctx("empty the init file"))?;
        meta.port = Some(port);
        meta.ready = true;
        meta.stopped = false;
        self.write_meta(meta)?;
        self.view(meta.clone()).await
    }

    /// Polls with a real authenticated `SELECT 1`, backing off from 20 ms.
    async fn wait_ready(&self, meta: &InstanceMeta, port: u16) -> Result<(), InstanceError> {
        let timeout = self.ctx.settings.ready_timeout;
        let deadline = Instant::now() + timeout;
        let mut delay = Duration::from_millis(20);
        let mut last_state_check = Instant::now();
        loop {
            match ping(&self.ctx.settings.connect_host, port, &meta.password).await {
                Ok(()) => return Ok(()),
                Err(e) => debug!(error = %e, "not ready yet"),
            }
            let now = Instant::now();
            let exited = if now.duration_since(last_state_check) > Duration::from_millis(500) {
                last_state_check = now;
                let info = self.ctx.engine.inspect(&meta.container).await?;
                !info.is_some_and(|i| i.state == RunState::Running)
            } else {
                false
            };
            if exited || now >= deadline {
                let log = self
                    .ctx
                    .engine
                    .logs_tail(&meta.container, 20)
                    .await
                    .unwrap_or_default();
                if log.contains("errno: 28") || log.contains("No space left on device") {
                    let (free, _) = filesystem_space(self.ctx.layout.root());
                    return Err(InstanceError::DiskFull {
                        free,
                        min: self.ctx.settings.min_free_disk,
                    });
                }
                return Err(InstanceError::NotReady {
                    template: meta.template.clone(),
                    name: meta.name.clone(),
                    timeout,
                    log,
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 3 / 2).min(Duration::from_millis(250));
        }
    }

    /// Removes a container and a datadir, whatever is left of them.
    async fn teardown(&self, t: &TemplateName, n: &InstanceName) {
        let container = self.container_name(t, n);
        if let Err(e) = self.ctx.engine.remove(&container).await {
            warn!(error = %e, container, "cannot remove container");
        }
        let dir = self.ctx.layout.instance(t, n);
        let ok = tokio::task::spawn_blocking(move || remove_tree(&dir)).await;
        if let Ok(Err(e)) = ok {
            warn!(error = %e, "cannot remove the instance's folder");
        }
    }

    /// An instance with its container's state as the engine reports it now.
    async fn view(&self, meta: InstanceMeta) -> Result<Instance, InstanceError> {
        let info = self.ctx.engine.inspect(&meta.container).await?;
        Ok(Instance::new(meta, info.as_ref()))
    }

    /// One instance with its container's state.
    pub async fn get(&self, t: &TemplateName, n: &InstanceName) -> Result<Instance, InstanceError> {
        let meta = self.ready_meta(t, n)?;
        self.view(meta).await
    }

    /// The engine's inspection of an instance's container.
    pub async fn inspect_container(
        &self,
        t: &TemplateName,
        n: &InstanceName,
    ) -> Result<serde_json::Value, InstanceError> {
        let meta = self.ready_meta(t, n)?;
        self.ctx
            .engine
            .inspect_raw(&meta.container)
            .await?
            .ok_or_else(|| InstanceError::NotFound(t.clone(), n.clone()))
    }

    /// Every ready instance (of `only` when given): one engine call.
    pub async fn list(&self, only: Option<&TemplateName>) -> Result<Vec<Instance>, InstanceError> {
        let containers = self.containers().await?;
        let mut out = Vec::new();
        for (t, n) in self.instance_dirs(only)? {
            if let Some(meta) = self.read_meta(&t, &n).filter(|m| m.ready) {
                let c = containers.get(&meta.container);
                out.push(Instance::new(meta, c));
            }
        }
        Ok(out)
    }

    /// Containers of this dolly's instances, by name.
    async fn containers(&self) -> Result<BTreeMap<String, ContainerInfo>, InstanceError> {
        let mut labels = self.ctx.ownership_labels();
        labels.insert(LABEL_KIND.to_owned(), "instance".to_owned());
        let list = self.ctx.engine.list(&labels).await?;
        Ok(list.into_iter().map(|c| (c.name.clone(), c)).collect())
    }

    fn instance_dirs(
        &self,
        only: Option<&TemplateName>,
    ) -> Result<Vec<(TemplateName, InstanceName)>, InstanceError> {
        let templates = match only {
            Some(t) => vec![t.clone()],
            None => list_names(&self.ctx.layout.instances(), |s| {
                TemplateName::parse(s).ok()
            })
            .map_err(io_ctx("list instances"))?,
        };
        let mut out = Vec::new();
        for t in templates {
            let names = list_names(&self.ctx.layout.instance_parent(&t), |s| {
                InstanceName::parse(s).ok()
            })
            .map_err(io_ctx("list instances"))?;
            out.extend(names.into_iter().map(|n| (t.clone(), n)));
        }
        Ok(out)
    }

    /// Removes the container and the datadir of `t/n` (and its
    /// snapshots). A protected instance needs `force`.
    pub async fn delete(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        force: bool,
    ) -> Result<(), InstanceError> {
        let span = info_span!("delete", template = %t, instance = %n);
        async {
            let lock = self.key_lock(t, n);
            let _guard = lock.lock().await;
            let dir = self.ctx.layout.instance(t, n);
            let container = self.container_name(t, n);
            if self.read_meta(t, n).is_some_and(|m| m.protected) && !force {
                return Err(InstanceError::Protected(t.clone(), n.clone()));
            }
            let exists = self.ctx.engine.inspect(&container).await?.is_some();
            if !dir.exists() && !exists {
                return Err(InstanceError::NotFound(t.clone(), n.clone()));
            }
            let removed = self.ctx.engine.remove(&container).await;
            self.ctx.metrics.operation("delete", removed.is_ok());
            removed?;
            let d = dir.clone();
            tokio::task::spawn_blocking(move || remove_tree(&d))
                .await
                .map_err(|e| io_ctx("remove")(io::Error::other(e)))?
                .map_err(io_ctx(format!("remove {}", dir.display())))?;
            info!("instance removed");
            Ok(())
        }
        .instrument(span)
        .await
    }

    /// Template versions that instances or their snapshots come from.
    pub fn versions_in_use(&self, t: &TemplateName) -> HashSet<VersionName> {
        let mut used = HashSet::new();
        for (t, n) in self.instance_dirs(Some(t)).unwrap_or_default() {
            if let Some(m) = self.read_meta(&t, &n) {
                used.insert(m.version);
            }
            for s in self.snapshots(&t, &n).unwrap_or_default() {
                used.insert(s.template_version);
            }
        }
        used
    }

    /// What `serve` does every `reap_interval`: removes expired instances.
    pub async fn reap_expired(&self) -> Result<usize, InstanceError> {
        let report = self
            .reap(&Reap {
                expired: true,
                ..Reap::default()
            })
            .await?;
        self.heal(false).await?;
        if self.ctx.settings.idle_ttl.is_some() {
            self.stop_idle().await?;
        }
        Ok(report.instances.iter().filter(|r| r.removed).count())
    }

    /// Starts again, on their own port, instances whose server crashed
    /// (exited non-zero) without a `stop`; with `all`, any that exited
    /// (at dollyd's start: the engine may have been restarted meanwhile).
    pub async fn heal(&self, all: bool) -> Result<usize, InstanceError> {
        let containers = self.containers().await?;
        let mut healed = 0;
        for (t, n) in self.instance_dirs(None)? {
            let Some(meta) = self.read_meta(&t, &n).filter(|m| m.ready && !m.stopped) else {
                continue;
            };
            let Some(c) = containers.get(&meta.container) else {
                continue;
            };
            let crashed = match c.state {
                RunState::Exited => all || c.exit_code.is_some_and(|code| code != 0),
                RunState::Dead => true,
                _ => false,
            };
            if !crashed {
                continue;
            }
            warn!(template = %t, instance = %n, status = %c.status, "server exited: starting it again on its port");
            match self.start(&t, &n).await {
                Ok(_) => healed += 1,
                Err(e) => warn!(template = %t, instance = %n, error = %e, "cannot start it again"),
            }
        }
        Ok(healed)
    }

    /// Removes (or with `dry_run`, lists) instances that are expired, dead
    /// (exited without a `stop`) or unhealthy (running, not answering).
    /// Protected instances are never reaped.
    pub async fn reap(&self, what: &Reap) -> Result<ReapReport, InstanceError> {
        let now = Utc::now();
        let mut out = Vec::new();
        for i in self.list(None).await? {
            let m = &i.meta;
            if m.protected {
                continue;
            }
            let reason = if what.expired && m.expires_at.is_some_and(|e| e <= now) {
                Some("expired")
            } else if what.dead
                && !m.stopped
                && matches!(i.state, InstanceState::Dead | InstanceState::Missing)
            {
                Some("dead")
            } else if what.unhealthy
                && i.state == InstanceState::Running
                && self.unhealthy(&i).await
            {
                Some("unhealthy")
            } else {
                None
            };
            let Some(reason) = reason else { continue };
            let removed = if what.dry_run {
                false
            } else {
                match self.delete(&m.template, &m.name, false).await {
                    Ok(()) => {
                        self.ctx.metrics.reaped(reason);
                        info!(template = %m.template, instance = %m.name, reason, "instance reaped");
                        true
                    }
                    Err(e) => {
                        warn!(template = %m.template, instance = %m.name, error = %e, "cannot reap");
                        false
                    }
                }
            };
            out.push(Reaped {
                template: m.template.clone(),
                name: m.name.clone(),
                reason: reason.to_owned(),
                removed,
            });
        }
        Ok(ReapReport { instances: out })
    }

    /// Running but not answering `SELECT 1`, twice, a second apart.
    async fn unhealthy(&self, i: &Instance) -> bool {
        let Some(port) = i.port else { return true };
        for attempt in 0..2 {
            if ping(&self.ctx.settings.connect_host, port, &i.meta.password)
                .await
                .is_ok()
            {
                return false;
            }
            if attempt == 0 {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        true
    }

    /// At start: matches containers with datadirs and removes what is
    /// half-made or orphaned (logged). Every ready instance is kept, with
    /// its port and credentials.
    pub async fn reconcile(&self) -> Result<ReconcileReport, InstanceError> {
        let mut report = ReconcileReport::default();
        let all = self.ctx.engine.list(&self.ctx.ownership_labels()).await?;
        let mut seen = HashSet::new();
        for c in &all {
            let kind = c.labels.get(LABEL_KIND).map(String::as_str);
            match kind {
                Some("instance") => {
                    let key = c
                        .labels
                        .get(LABEL_TEMPLATE)
                        .and_then(|t| TemplateName::parse(t).ok())
                        .zip(
                            c.labels
                                .get(LABEL_NAME)
                                .and_then(|n| InstanceName::parse(n).ok()),
                        );
                    let meta = key.as_ref().and_then(|(t, n)| self.read_meta(t, n));
                    match meta {
                        Some(m) if m.ready && m.container == c.name => {
                            seen.insert((m.template, m.name));
                            report.kept += 1;
                        }
                        _ => {
                            warn!(container = %c.name, "removing container with no complete instance");
                            self.ctx.engine.remove(&c.id).await?;
                            report.removed_containers += 1;
                        }
                    }
                }
                Some("import") => {
                    let importing = c
                        .labels
                        .get(LABEL_TEMPLATE)
                        .and_then(|t| TemplateName::parse(t).ok())
                        .is_some_and(|t| template::is_importing(&self.ctx, &t));
                    if !importing {
                        warn!(container = %c.name, "removing interrupted import container");
                        self.ctx.engine.remove(&c.id).await?;
                        report.removed_containers += 1;
                    }
                }
                _ => {
                    if c.state != RunState::Running {
                        self.ctx.engine.remove(&c.id).await?;
                    }
                }
            }
        }
        for (t, n) in self.instance_dirs(None)? {
            if !seen.contains(&(t.clone(), n.clone())) {
                warn!(template = %t, instance = %n, "removing instance folder with no container (half-made or orphaned)");
                self.teardown(&t, &n).await;
                report.removed_folders += 1;
            } else {
                // A crash between readiness and emptying the init file.
                let init = self
                    .ctx
                    .layout
                    .instance_data(&t, &n)
                    .join(dbserver::INIT_FILE);
                if fs::metadata(&init).is_ok_and(|m| m.len() > INIT_DONE.len() as u64) {
                    let _ = fs::write(&init, INIT_DONE);
                }
            }
        }
        let imports =
            template::clean_interrupted_imports(&self.ctx).map_err(io_ctx("clean tmp"))?;
        for path in &imports {
            warn!(path = %path.display(), "removed interrupted import");
        }
        report.removed_imports = imports.len();
        info!(
            kept = report.kept,
            removed_containers = report.removed_containers,
            removed_folders = report.removed_folders,
            removed_imports = report.removed_imports,
            "state reconciled with the engine"
        );
        Ok(report)
    }
}

#[derive(Debug, Default, Clone)]
pub struct ReconcileReport {
    pub kept: usize,
    pub removed_containers: usize,
    pub removed_folders: usize,
    pub removed_imports: usize,
}

/// 192 random bits, hex: nothing to quote anywhere.
fn new_password() -> String {
    let bytes: [u8; 24] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a 0600 file, owned by `owner` when given.
fn write_private(path: &Path, data: &[u8], owner: Option<crate::clone::Owner>) -> io::Result<()> {
    let mut f = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)?;
    if let Some(o) = owner {
        std::os::unix::fs::chown(path, Some(o.uid), Some(o.gid))?;
    }
    Ok(())
}

/// Connection options for an instance's root user over TCP.
fn connect_opts(host: &str, port: u16, password: &str) -> mysql_async::OptsBuilder {
    mysql_async::OptsBuilder::default()
        .ip_or_hostname(host.to_owned())
        .tcp_port(port)
        .user(Some(USER))
        .pass(Some(password.to_owned()))
        .prefer_socket(false)
}

/// One authenticated `SELECT 1` over TCP, bounded in time.
pub async fn ping(host: &str, port: u16, password: &str) -> Result<(), String> {
    use mysql_async::prelude::Queryable;
    let opts = connect_opts(host, port, password);
    let attempt = async {
        let mut conn = mysql_async::Conn::new(opts).await?;
        conn.query_drop("SELECT 1").await?;
        conn.disconnect().await
    };
    match tokio::time::timeout(Duration::from_secs(2), attempt).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".to_owned()),
    }
}
