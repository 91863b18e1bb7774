//! Snapshots: saved copies of an instance's datadir.
//!
//! Consistency: a snapshot is taken with a brief clean stop of the server
//! (SIGTERM, InnoDB's normal shutdown), a reflink clone of the datadir and a
//! start on the same port. Pausing the container instead would be faster
//! but leaves a crash image: every restore and branch would pay crash
//! recovery, and non-transactional tables (MyISAM, which dumps may hold)
//! could be torn. The stop costs about a second; restores start clean.

use std::time::Instant;

use chrono::Utc;
use dolly_names::{InstanceName, SnapshotName, TemplateName};
use tracing::{info, info_span, Instrument};

use super::{InstanceError, InstanceState, Manager, SnapshotMeta};
use crate::clone::tree_size;
use crate::store::StoreError;

/// What one owner of disk space is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageKind {
    Template,
    Instance,
    Snapshot,
    Quarantine,
}

impl UsageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Template => "template",
            Self::Instance => "instance",
            Self::Snapshot => "snapshot",
            Self::Quarantine => "quarantine",
        }
    }
}

/// One owner of disk space: `shop@VERSION`, `shop/alice`, `shop/alice@before`.
#[derive(Debug, Clone)]
pub struct DiskUse {
    pub kind: UsageKind,
    pub name: String,
    /// Apparent size: blocks shared by reflinks are counted in each owner.
    pub apparent_bytes: u64,
}

/// The data folder's owners of space, and the filesystem's free space.
#[derive(Debug, Clone)]
pub struct DiskUsage {
    pub entries: Vec<DiskUse>,
    pub filesystem_free_bytes: u64,
    pub filesystem_total_bytes: u64,
}

impl Manager {
    /// The metadata of snapshot `s`, or `SnapshotNotFound`.
    pub(super) async fn snapshot_meta(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        s: &SnapshotName,
    ) -> Result<SnapshotMeta, InstanceError> {
        self.ctx
            .store
            .read_snapshot(t, n, s)
            .await?
            .ok_or_else(|| InstanceError::SnapshotNotFound(t.clone(), n.clone(), s.clone()))
    }

    /// Saves the instance's datadir as `s`.
    pub async fn snapshot(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        s: &SnapshotName,
        message: Option<String>,
    ) -> Result<SnapshotMeta, InstanceError> {
        self.snapshot_for(t, n, s, message, None).await
    }

    /// As [`Manager::snapshot`], within `max_snapshots` and the instance's
    /// owner's quota (when `actor` is that owner).
    pub async fn snapshot_for(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        s: &SnapshotName,
        message: Option<String>,
        actor: Option<&crate::users::Actor>,
    ) -> Result<SnapshotMeta, InstanceError> {
        let span = info_span!("snapshot", template = %t, instance = %n, snapshot = %s);
        async {
            let lock = self.key_lock(t, n);
            let _guard = lock.lock().await;
            let mut meta = self.ready_meta(t, n).await?;
            if self.ctx.store.snapshot_exists(t, n, s).await {
                return Err(InstanceError::SnapshotExists(
                    t.clone(),
                    n.clone(),
                    s.clone(),
                ));
            }
            self.space_above_minimum().await?;
            // Counted and reserved under one gate: concurrent snapshots
            // cannot pass a quota together.
            let _reserved = {
                let _gate = self.snapshot_gate.lock().await;
                self.check_snapshot_quota(meta.owner.as_deref(), actor)
                    .await?;
                self.snapshotting
                    .reserve((t.clone(), n.clone(), s.clone()), meta.owner.clone())
            };
            // Built in tmp/ and published by one rename: a crash at any
            // step leaves a complete snapshot or none.
            let scratch = self.ctx.store.snapshot_scratch(t, n, s).await?;
            let running = self.view(meta.clone()).await?.state == InstanceState::Running;
            let paused = Instant::now();
            if running {
                self.ctx.engine.stop(&meta.container, 120).await?;
            }
            crate::faultpoint::hit("snapshot.stopped");
            let data = self.ctx.store.instance_data(t, n);
            let cloned = self.clone_into(data, &scratch.join("data")).await;
            crate::faultpoint::hit("snapshot.cloned");
            let restarted = if running {
                let port = meta.port;
                self.start_container(&mut meta, port).await.map(|_| ())
            } else {
                Ok(())
            };
            let pause_seconds = paused.elapsed().as_secs_f64();
            let (t2, n2, s2, sc) = (t.clone(), n.clone(), s.clone(), scratch.clone());
            let saved = match cloned.and(restarted) {
                Ok(()) => {
                    let version = meta.version.clone();
                    self.ctx
                        .store
                        .run(move |st| {
                            let snap = SnapshotMeta {
                                name: s2,
                                created_at: Utc::now(),
                                message,
                                size_bytes: tree_size(&sc.join("data")),
                                template_version: version,
                                pause_seconds,
                            };
                            st.publish_snapshot(&t2, &n2, &snap, &sc).map(|()| snap)
                        })
                        .await
                        .map_err(|e| match e {
                            StoreError::Exists(_) => {
                                InstanceError::SnapshotExists(t.clone(), n.clone(), s.clone())
                            }
                            other => other.into(),
                        })
                }
                Err(e) => Err(e),
            };
            if saved.is_err() {
                let _ =
                    tokio::task::spawn_blocking(move || crate::clone::remove_tree(&scratch)).await;
            }
            let snap = saved?;
            self.ctx.events.emit(
                crate::events::Event::instance(crate::events::EventKind::SnapshotCreated, &meta)
                    .message(s.to_string()),
            );
            info!(pause_ms = (pause_seconds * 1000.0) as u64, "snapshot taken");
            Ok(snap)
        }
        .instrument(span)
        .await
    }

    /// The snapshots of a ready instance, oldest first.
    pub async fn list_snapshots(
        &self,
        t: &TemplateName,
        n: &InstanceName,
    ) -> Result<Vec<SnapshotMeta>, InstanceError> {
        self.ready_meta(t, n).await?;
        let (t, n) = (t.clone(), n.clone());
        Ok(self.ctx.store.snapshots(&t, &n).await?)
    }

    pub async fn remove_snapshot(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        s: &SnapshotName,
    ) -> Result<(), InstanceError> {
        let lock = self.key_lock(t, n);
        let _guard = lock.lock().await;
        self.ready_meta(t, n).await?;
        self.snapshot_meta(t, n, s).await?;
        self.ctx.store.remove_snapshot(t, n, s).await?;
        info!(template = %t, instance = %n, snapshot = %s, "snapshot removed");
        Ok(())
    }

    /// Disk used by template versions, instances and snapshots (apparent
    /// sizes: blocks shared through reflinks count in each owner), free
    /// space, and what is in quarantine. Walks datadirs on the blocking
    /// pool.
    pub async fn disk_usage(&self) -> Result<DiskUsage, InstanceError> {
        let usage = self
            .ctx
            .store
            .run(|s| {
                let mut entries = Vec::new();
                for t in s.template_names()? {
                    for v in s.versions(&t)? {
                        entries.push(DiskUse {
                            kind: UsageKind::Template,
                            name: format!("{t}@{}", v.version),
                            apparent_bytes: v.size_bytes,
                        });
                    }
                }
                for (t, n) in s.instance_names(None)? {
                    entries.push(DiskUse {
                        kind: UsageKind::Instance,
                        name: format!("{t}/{n}"),
                        apparent_bytes: tree_size(&s.instance_data(&t, &n)),
                    });
                    for snap in s.snapshots(&t, &n)? {
                        entries.push(DiskUse {
                            kind: UsageKind::Snapshot,
                            name: format!("{t}/{n}@{}", snap.name),
                            apparent_bytes: snap.size_bytes,
                        });
                    }
                }
                for q in s.quarantined()? {
                    entries.push(DiskUse {
                        kind: UsageKind::Quarantine,
                        name: format!("{}/{}", q.template, q.name),
                        apparent_bytes: tree_size(&q.path),
                    });
                }
                let space = s.space()?;
                Ok::<_, StoreError>(DiskUsage {
                    entries,
                    filesystem_free_bytes: space.free,
                    filesystem_total_bytes: space.total,
                })
            })
            .await?;
        Ok(usage)
    }
}
