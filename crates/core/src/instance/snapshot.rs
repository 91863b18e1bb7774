//! Snapshots: saved copies of an instance's datadir.
//!
//! Consistency: a snapshot is taken with a brief clean stop of the server
//! (SIGTERM, InnoDB's normal shutdown), a reflink clone of the datadir and a
//! start on the same port. Pausing the container instead would be faster
//! but leaves a crash image: every restore and branch would pay crash
//! recovery, and non-transactional tables (MyISAM, which dumps may hold)
//! could be torn. The stop costs about a second; restores start clean.

use std::fs;
use std::io;
use std::time::Instant;

use chrono::{DateTime, Utc};
use dolly_types::v1::{DiskUsage, DiskUse, InstanceState};
use dolly_types::{InstanceName, SnapshotName, TemplateName, VersionName};
use serde::{Deserialize, Serialize};
use tracing::{info, info_span, Instrument};

use super::{io_ctx, InstanceError, Manager};
use crate::clone::{remove_tree, tree_size};
use crate::layout::list_names;
use crate::template;

/// `instances/T/N/snapshots/S/meta.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub name: SnapshotName,
    pub created_at: DateTime<Utc>,
    pub message: Option<String>,
    pub size_bytes: u64,
    pub template_version: VersionName,
    pub pause_seconds: f64,
}

impl Manager {
    pub(super) fn snapshot_meta(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        s: &SnapshotName,
    ) -> Result<SnapshotMeta, InstanceError> {
        let not_found = || InstanceError::SnapshotNotFound(t.clone(), n.clone(), s.clone());
        let bytes = fs::read(self.ctx.layout.snapshot_meta(t, n, s)).map_err(|_| not_found())?;
        serde_json::from_slice(&bytes).map_err(|_| not_found())
    }

    /// Saves the instance's datadir as `s`.
    pub async fn snapshot(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        s: &SnapshotName,
        message: Option<String>,
    ) -> Result<SnapshotMeta, InstanceError> {
        let span = info_span!("snapshot", template = %t, instance = %n, snapshot = %s);
        async {
            let lock = self.key_lock(t, n);
            let _guard = lock.lock().await;
            let mut meta = self.ready_meta(t, n)?;
            let dir = self.ctx.layout.snapshot(t, n, s);
            fs::create_dir_all(self.ctx.layout.snapshots(t, n))
                .map_err(io_ctx("create the snapshots folder"))?;
            match fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(InstanceError::SnapshotExists(
                        t.clone(),
                        n.clone(),
                        s.clone(),
                    ));
                }
                Err(e) => return Err(io_ctx("create the snapshot folder")(e)),
            }
            let running = self.view(meta.clone()).await?.state == InstanceState::Running;
            let paused = Instant::now();
            if running {
                self.ctx.engine.stop(&meta.container, 120).await?;
            }
            let data = self.ctx.layout.instance_data(t, n);
            let cloned = self
                .clone_into(data, &self.ctx.layout.snapshot_data(t, n, s))
                .await;
            let restarted = if running {
                let port = meta.port;
                self.start_container(&mut meta, port).await.map(|_| ())
            } else {
                Ok(())
            };
            let pause_seconds = paused.elapsed().as_secs_f64();
            if let Err(e) = cloned.and(restarted) {
                let _ = remove_tree(&dir);
                return Err(e);
            }
            let snap = SnapshotMeta {
                name: s.clone(),
                created_at: Utc::now(),
                message,
                size_bytes: tree_size(&self.ctx.layout.snapshot_data(t, n, s)),
                template_version: meta.version.clone(),
                pause_seconds,
            };
            let text = serde_json::to_vec_pretty(&snap).map_err(|e| InstanceError::Io {
                context: "serialize snapshot metadata".into(),
                source: io::Error::other(e),
            })?;
            fs::write(self.ctx.layout.snapshot_meta(t, n, s), text)
                .map_err(io_ctx("write snapshot metadata"))?;
            info!(pause_ms = (pause_seconds * 1000.0) as u64, "snapshot taken");
            Ok(snap)
        }
        .instrument(span)
        .await
    }

    /// The instance's snapshots, oldest first.
    pub fn snapshots(
        &self,
        t: &TemplateName,
        n: &InstanceName,
    ) -> Result<Vec<SnapshotMeta>, InstanceError> {
        let names = list_names(&self.ctx.layout.snapshots(t, n), |s| {
            SnapshotName::parse(s).ok()
        })
        .map_err(io_ctx("list snapshots"))?;
        let mut out: Vec<SnapshotMeta> = names
            .iter()
            .filter_map(|s| self.snapshot_meta(t, n, s).ok())
            .collect();
        out.sort_by_key(|s| s.created_at);
        Ok(out)
    }

    /// The snapshots of a ready instance.
    pub fn list_snapshots(
        &self,
        t: &TemplateName,
        n: &InstanceName,
    ) -> Result<Vec<SnapshotMeta>, InstanceError> {
        self.ready_meta(t, n)?;
        self.snapshots(t, n)
    }

    pub async fn remove_snapshot(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        s: &SnapshotName,
    ) -> Result<(), InstanceError> {
        let lock = self.key_lock(t, n);
        let _guard = lock.lock().await;
        self.ready_meta(t, n)?;
        self.snapshot_meta(t, n, s)?;
        let dir = self.ctx.layout.snapshot(t, n, s);
        tokio::task::spawn_blocking(move || remove_tree(&dir))
            .await
            .map_err(|e| io_ctx("remove")(io::Error::other(e)))?
            .map_err(io_ctx("remove the snapshot"))?;
        info!(template = %t, instance = %n, snapshot = %s, "snapshot removed");
        Ok(())
    }

    /// Disk used by template versions, instances and snapshots (apparent
    /// sizes: blocks shared through reflinks count in each owner).
    pub async fn disk_usage(&self) -> Result<DiskUsage, InstanceError> {
        let ctx = std::sync::Arc::clone(&self.ctx);
        let mut entries = Vec::new();
        for t in template::list(&ctx).map_err(io_ctx("list templates"))? {
            for v in template::versions(&ctx, &t).map_err(io_ctx("list versions"))? {
                entries.push(DiskUse {
                    kind: "template".into(),
                    name: format!("{t}@{}", v.version),
                    apparent_bytes: v.size_bytes,
                });
            }
        }
        for (t, n) in self.instance_dirs(None)? {
            let data = self.ctx.layout.instance_data(&t, &n);
            let size = tokio::task::spawn_blocking(move || tree_size(&data))
                .await
                .unwrap_or(0);
            entries.push(DiskUse {
                kind: "instance".into(),
                name: format!("{t}/{n}"),
                apparent_bytes: size,
            });
            for s in self.snapshots(&t, &n)? {
                entries.push(DiskUse {
                    kind: "snapshot".into(),
                    name: format!("{t}/{n}@{}", s.name),
                    apparent_bytes: s.size_bytes,
                });
            }
        }
        let (free, total) = filesystem_space(self.ctx.layout.root());
        Ok(DiskUsage {
            entries,
            filesystem_free_bytes: free,
            filesystem_total_bytes: total,
        })
    }
}

/// Free and total bytes of the filesystem holding `path`.
pub fn filesystem_space(path: &std::path::Path) -> (u64, u64) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return (0, 0);
    };
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a valid buffer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return (0, 0);
    }
    let frsize = st.f_frsize;
    (st.f_bavail * frsize, st.f_blocks * frsize)
}
