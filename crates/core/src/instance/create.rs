//! Creating an instance: claim the name, clone the datadir, start the
//! server and wait until it answers with the instance's own credentials.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use dolly_names::{InstanceName, SnapshotName, TemplateName, VersionName};
use tracing::{debug, info, info_span, warn, Instrument};

use super::server::new_password;
use super::{CreateOptions, Instance, InstanceError, InstanceMeta, Manager};
use crate::clone::{clone_tree_limited, remove_tree};
use crate::store::StoreError;
use crate::template;

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

impl Manager {
    /// Creates `t/n` from `source` and waits until it answers `SELECT 1`
    /// with its own credentials. Anything made on the way is removed when
    /// it fails.
    pub async fn create(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        ttl: Option<Duration>,
        source: Source,
    ) -> Result<Instance, InstanceError> {
        self.create_for(t, n, ttl, source, None).await
    }

    /// As [`Manager::create`], owned by `actor` (within its quota), with
    /// the server's default standby and sleep settings.
    pub async fn create_for(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        ttl: Option<Duration>,
        source: Source,
        actor: Option<&crate::users::Actor>,
    ) -> Result<Instance, InstanceError> {
        let options = self.default_options();
        self.create_with(t, n, ttl, source, actor, &options).await
    }

    /// The standby and sleep settings a create gets when it asks for none.
    pub fn default_options(&self) -> CreateOptions {
        CreateOptions {
            standby: self.ctx.settings.standby,
            sleep_after: self.ctx.settings.sleep_after,
        }
    }

    /// As [`Manager::create_for`], with `options`.
    pub async fn create_with(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        ttl: Option<Duration>,
        source: Source,
        actor: Option<&crate::users::Actor>,
        options: &CreateOptions,
    ) -> Result<Instance, InstanceError> {
        let span = info_span!("create", template = %t, instance = %n);
        async {
            let lease = self.lease_for(ttl)?;
            let created_at = Utc::now();
            let expires_at = match lease {
                None => None,
                Some(d) => Some(
                    chrono::Duration::from_std(d)
                        .ok()
                        .and_then(|d| created_at.checked_add_signed(d))
                        .ok_or(InstanceError::TtlOutOfRange)?,
                ),
            };
            let lock = self.key_lock(t, n);
            let _guard = lock.lock().await;
            let started = Instant::now();
            let (version, database) = match &source {
                Source::Archive {
                    version, database, ..
                } => (version.clone(), database.clone()),
                Source::Template => {
                    let v = self.resolve_template(t).await?;
                    let db = template::version_meta(&self.ctx, t, &v)
                        .await?
                        .map(|m| m.database)
                        .unwrap_or_else(|| self.ctx.settings.database.clone());
                    (v, db)
                }
                Source::Snapshot(src, snap) => {
                    let m = self.ready_meta(t, src).await?;
                    let s = self.snapshot_meta(t, src, snap).await?;
                    (s.template_version, m.database)
                }
            };
            // Counting, claiming and reserving under one gate: concurrent
            // creates cannot both pass `max_instances`, and this one counts
            // for its owner's quota until its metadata does.
            let _reserved = {
                let _gate = self.create_gate.lock().await;
                if self.ctx.store.instance_exists(t, n).await {
                    return Err(InstanceError::AlreadyExists(t.clone(), n.clone()));
                }
                self.check_limits().await?;
                self.check_quota(actor).await?;
                match self.ctx.store.claim_instance(t, n).await {
                    Ok(()) => {}
                    Err(StoreError::Exists(_)) => {
                        return Err(InstanceError::AlreadyExists(t.clone(), n.clone()))
                    }
                    Err(e) => return Err(e.into()),
                }
                self.creating
                    .reserve((t.clone(), n.clone()), actor.map(|a| a.name.clone()))
            };
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
                stopped_reason: None,
                pending: None,
                owner: actor.map(|a| a.name.clone()),
                broken: None,
                forward: options.forward(),
            };
            // A ready member of the pool, when there is one; else cold.
            // (Pool members publish their own port: not for an instance
            // behind a forwarder.)
            let warm = match source {
                Source::Template if meta.forward.is_none() => self.hand_out(&meta).await,
                _ => Ok(None),
            };
            let result = match warm {
                Ok(Some(i)) => Ok(i),
                Ok(None) => self.build(meta, source).await,
                Err(e) => Err(e),
            };
            self.ctx.metrics.operation("create", result.is_ok());
            match &result {
                Ok(i) => {
                    self.ctx.events.emit(crate::events::Event::instance(
                        crate::events::EventKind::InstanceCreated,
                        &i.meta,
                    ));
                    self.ctx
                        .metrics
                        .create_ready(started.elapsed().as_secs_f64());
                    info!(
                        ms = started.elapsed().as_millis() as u64,
                        clone = self.ctx.clone_mode.as_str(),
                        "instance created"
                    );
                }
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
    pub(super) fn lease_for(
        &self,
        ttl: Option<Duration>,
    ) -> Result<Option<Duration>, InstanceError> {
        let settings = &self.ctx.settings;
        let ttl = match ttl {
            Some(d) if d.is_zero() => None,
            Some(d) if d > super::TTL_CEILING => return Err(InstanceError::TtlOutOfRange),
            Some(d) => Some(d),
            None => settings.default_ttl,
        };
        match (ttl, settings.max_ttl) {
            (None, Some(max)) => Err(InstanceError::TtlTooLong(max)),
            (Some(d), Some(max)) if d > max => Err(InstanceError::TtlTooLong(max)),
            (d, _) => Ok(d),
        }
    }

    /// `max_instances` and `min_free_disk`. Free space that cannot be read
    /// is an error, never "zero free".
    async fn check_limits(&self) -> Result<(), InstanceError> {
        let count = self.ctx.store.instance_names(None).await?.len();
        let space = self.ctx.store.space().await?;
        let settings = &self.ctx.settings;
        if let Some(max) = settings.max_instances {
            if count >= max {
                return Err(InstanceError::TooMany(max));
            }
        }
        if space.free < settings.min_free_disk {
            return Err(InstanceError::DiskFull {
                free: space.free,
                min: settings.min_free_disk,
            });
        }
        Ok(())
    }

    /// Bytes free in the data folder above `min_free_disk`; `DiskFull`
    /// when there are none. Guards everything that writes datadirs.
    pub(super) async fn space_above_minimum(&self) -> Result<u64, InstanceError> {
        let space = self.ctx.store.space().await?;
        let min = self.ctx.settings.min_free_disk;
        if space.free < min {
            return Err(InstanceError::DiskFull {
                free: space.free,
                min,
            });
        }
        Ok(space.free - min)
    }

    /// `VersionGone` unless version `v` of `t` still has its datadir.
    pub(super) async fn ensure_version(
        &self,
        t: &TemplateName,
        v: &VersionName,
    ) -> Result<(), InstanceError> {
        if self.ctx.store.version_exists(t, v).await {
            Ok(())
        } else {
            Err(InstanceError::VersionGone(t.clone(), v.clone()))
        }
    }

    /// The current version of `t`, or why there is none.
    pub(super) async fn resolve_template(
        &self,
        t: &TemplateName,
    ) -> Result<VersionName, InstanceError> {
        if let Some(v) = template::current_version(&self.ctx, t).await? {
            return Ok(v);
        }
        if self.ctx.store.is_importing(t).await {
            return Err(InstanceError::TemplateImporting(t.clone()));
        }
        Err(InstanceError::TemplateNotFound {
            name: t.clone(),
            known: template::list(&self.ctx).await.unwrap_or_default(),
        })
    }

    async fn build(
        &self,
        mut meta: InstanceMeta,
        source: Source,
    ) -> Result<Instance, InstanceError> {
        let (t, n) = (meta.template.clone(), meta.name.clone());
        self.write_meta(&meta).await?;
        let data = self.ctx.store.instance_data(&t, &n);
        match source {
            Source::Archive { data: src, .. } => self.clone_datadir(src, &data).await?,
            Source::Snapshot(src, snap) => {
                let source = self.ctx.store.snapshot_data(&t, &src, &snap);
                self.clone_datadir(source, &data).await?;
            }
            Source::Template => {
                // If an update removed the version meanwhile, take the new one.
                let source = self.ctx.store.version_data(&t, &meta.version);
                match self.clone_datadir(source, &data).await {
                    Err(InstanceError::Datadir { source, .. })
                        if source.kind() == std::io::ErrorKind::NotFound =>
                    {
                        let d = data.clone();
                        let _ = tokio::task::spawn_blocking(move || remove_tree(&d)).await;
                        meta.version = self.resolve_template(&t).await?;
                        self.write_meta(&meta).await?;
                        let source = self.ctx.store.version_data(&t, &meta.version);
                        self.clone_datadir(source, &data).await?;
                    }
                    other => other?,
                }
            }
        }
        debug!(version = %meta.version, "cloned");
        self.start_container(&mut meta, None).await
    }

    /// Clones a datadir (template version or snapshot) to `dst`, owned by
    /// the image's mysql user, on the blocking pool.
    pub(super) async fn clone_into(&self, src: PathBuf, dst: &Path) -> Result<(), InstanceError> {
        self.clone_limited(src, dst, None).await
    }

    /// [`Manager::clone_into`] for an instance's own datadir: where btrfs
    /// enforces `instance_max_disk`, `dst` becomes a subvolume limited to it.
    pub(super) async fn clone_datadir(
        &self,
        src: PathBuf,
        dst: &Path,
    ) -> Result<(), InstanceError> {
        let limit = match self.ctx.disk_limit {
            crate::disk_limit::DiskLimit::Subvolume(bytes) => Some(bytes),
            _ => None,
        };
        self.clone_limited(src, dst, limit).await
    }

    async fn clone_limited(
        &self,
        src: PathBuf,
        dst: &Path,
        limit: Option<u64>,
    ) -> Result<(), InstanceError> {
        let owner = self.ctx.image().await?.owner;
        let (dst, mode) = (dst.to_path_buf(), self.ctx.clone_mode);
        crate::context::blocking_io(move || clone_tree_limited(&src, &dst, mode, owner, limit))
            .await
            .map_err(InstanceError::datadir("clone the datadir"))
    }
}
