//! Leases and the life of an instance: extend, protect, stop, start, reset.
//!
//! Stop, start and reset keep the name, port and credentials: the
//! container is re-created on the same host port (ports an engine picks
//! change at every start), on the same or a freshly cloned datadir.

use std::fs;
use std::io;
use std::time::{Duration, Instant};

use chrono::Utc;
use dolly_types::{InstanceName, SnapshotName, TemplateName};
use tracing::{info, info_span, Instrument};

use super::{io_ctx, Instance, InstanceError, Manager};
use crate::clone::remove_tree;
use crate::template;

/// Where a reset takes an instance back to.
#[derive(Debug, Clone)]
pub enum ResetTarget {
    /// The template version it was cloned from.
    Original,
    /// The template's current version.
    Latest,
    /// One of its snapshots.
    Snapshot(SnapshotName),
}

impl Manager {
    /// Adds `add` to the expiry (from now if it already passed); zero
    /// removes the expiry where `max_ttl` allows.
    pub async fn extend(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        add: Duration,
    ) -> Result<Instance, InstanceError> {
        let lock = self.key_lock(t, n);
        let _guard = lock.lock().await;
        let mut meta = self.ready_meta(t, n)?;
        let now = Utc::now();
        meta.expires_at = if add.is_zero() {
            if let Some(max) = self.ctx.settings.max_ttl {
                return Err(InstanceError::TtlTooLong(max));
            }
            None
        } else {
            let base = meta.expires_at.filter(|e| *e > now).unwrap_or(now);
            let add = chrono::Duration::from_std(add)
                .map_err(|_| InstanceError::Conflict("ttl out of range".to_owned()))?;
            let new = base + add;
            if let Some(max) = self.ctx.settings.max_ttl {
                if chrono::Duration::from_std(max).is_ok_and(|m| new - now > m) {
                    return Err(InstanceError::TtlTooLong(max));
                }
            }
            Some(new)
        };
        self.write_meta(&meta)?;
        info!(template = %t, instance = %n, expires_at = ?meta.expires_at, "instance lease extended");
        self.view(meta).await
    }

    /// Marks an instance as never to be reaped (or lifts that).
    pub async fn protect(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        protected: bool,
    ) -> Result<Instance, InstanceError> {
        let lock = self.key_lock(t, n);
        let _guard = lock.lock().await;
        let mut meta = self.ready_meta(t, n)?;
        meta.protected = protected;
        self.write_meta(&meta)?;
        info!(template = %t, instance = %n, protected, "instance protection changed");
        self.view(meta).await
    }

    /// Stops the server cleanly; the datadir, port and password stay.
    pub async fn stop(
        &self,
        t: &TemplateName,
        n: &InstanceName,
    ) -> Result<Instance, InstanceError> {
        let lock = self.key_lock(t, n);
        let _guard = lock.lock().await;
        let mut meta = self.ready_meta(t, n)?;
        meta.stopped = true;
        self.write_meta(&meta)?;
        self.ctx.engine.stop(&meta.container, 120).await?;
        info!(template = %t, instance = %n, "instance stopped");
        self.view(meta).await
    }

    /// Starts a stopped (or dead) instance on its port; a running one is
    /// left alone.
    pub async fn start(
        &self,
        t: &TemplateName,
        n: &InstanceName,
    ) -> Result<Instance, InstanceError> {
        let lock = self.key_lock(t, n);
        let _guard = lock.lock().await;
        let mut meta = self.ready_meta(t, n)?;
        let current = self.view(meta.clone()).await?;
        if current.state == dolly_types::v1::InstanceState::Running {
            return Ok(current);
        }
        let port = meta.port;
        let started = Instant::now();
        let i = self
            .start_container(&mut meta, port)
            .instrument(info_span!("start", template = %t, instance = %n))
            .await?;
        info!(template = %t, instance = %n, ms = started.elapsed().as_millis() as u64, "instance started");
        Ok(i)
    }

    /// Puts a fresh clone under the instance (same name, port, password).
    pub async fn reset(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        target: ResetTarget,
    ) -> Result<Instance, InstanceError> {
        let span = info_span!("reset", template = %t, instance = %n);
        async {
            let lock = self.key_lock(t, n);
            let _guard = lock.lock().await;
            let started = Instant::now();
            let mut meta = self.ready_meta(t, n)?;
            let source = match &target {
                ResetTarget::Original => {
                    let path = self.ctx.layout.template_version(t, &meta.version);
                    if !path.is_dir() {
                        return Err(InstanceError::VersionGone(t.clone(), meta.version.clone()));
                    }
                    path
                }
                ResetTarget::Latest => {
                    meta.version = self.resolve_template(t)?;
                    self.ctx.layout.template_version(t, &meta.version)
                }
                ResetTarget::Snapshot(s) => {
                    let snap = self.snapshot_meta(t, n, s)?;
                    meta.version = snap.template_version;
                    self.ctx.layout.snapshot_data(t, n, s)
                }
            };
            // The old datadir goes aside first, and away once the new one runs.
            self.ctx.engine.remove(&meta.container).await?;
            let data = self.ctx.layout.instance_data(t, n);
            let trash = self
                .ctx
                .layout
                .tmp()
                .join(format!("trash.{t}.{n}.{}", super::new_password()));
            fs::rename(&data, &trash).map_err(io_ctx("move the old datadir aside"))?;
            if let Err(e) = self.clone_into(source, &data).await {
                // Put the old one back, so the instance stays whole.
                let _ = remove_tree(&data);
                let _ = fs::rename(&trash, &data);
                let port = meta.port;
                let _ = self.start_container(&mut meta, port).await;
                return Err(e);
            }
            self.write_meta(&meta)?;
            let port = meta.port;
            let result = self.start_container(&mut meta, port).await;
            self.ctx.metrics.operation("reset", result.is_ok());
            tokio::task::spawn_blocking(move || remove_tree(&trash));
            let i = result?;
            info!(
                target_state = ?target,
                version = %meta.version,
                ms = started.elapsed().as_millis() as u64,
                "instance reset"
            );
            Ok(i)
        }
        .instrument(span)
        .await
    }

    /// Creates a template version from a snapshot: `promote`.
    pub async fn promote(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        s: &SnapshotName,
        to: &TemplateName,
    ) -> Result<template::VersionMeta, InstanceError> {
        let meta = self.ready_meta(t, n)?;
        self.snapshot_meta(t, n, s)?;
        let src = self.ctx.layout.snapshot_data(t, n, s);
        template::publish_datadir(
            &self.ctx,
            to,
            &src,
            format!("snapshot {t}/{n}@{s}"),
            meta.database,
        )
        .await
        .map_err(|e| match e {
            template::ImportError::Busy(..) => InstanceError::Conflict(e.to_string()),
            template::ImportError::Engine(e) => InstanceError::Engine(e),
            other => InstanceError::Io {
                context: "promote".to_owned(),
                source: io::Error::other(other.to_string()),
            },
        })
    }
}
