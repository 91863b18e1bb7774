//! Leases and the life of an instance: extend, protect, stop, start, reset.
//!
//! Stop, start and reset keep the name, port and credentials: the
//! container is re-created on the same host port (ports an engine picks
//! change at every start), on the same or a freshly cloned datadir.

use std::time::{Duration, Instant};

use chrono::Utc;
use dolly_types::{InstanceName, SnapshotName, TemplateName};
use tracing::{info, info_span, Instrument};

use super::{Instance, InstanceError, Manager};
use crate::template::{self, ImportError};

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
        let mut meta = self.ready_meta(t, n).await?;
        let now = Utc::now();
        meta.expires_at = if add.is_zero() {
            if let Some(max) = self.ctx.settings.max_ttl {
                return Err(InstanceError::TtlTooLong(max));
            }
            None
        } else {
            let base = meta.expires_at.filter(|e| *e > now).unwrap_or(now);
            let add = chrono::Duration::from_std(add).map_err(|_| InstanceError::TtlOutOfRange)?;
            let new = base
                .checked_add_signed(add)
                .ok_or(InstanceError::TtlOutOfRange)?;
            if let Some(max) = self.ctx.settings.max_ttl {
                if chrono::Duration::from_std(max).is_ok_and(|m| new - now > m) {
                    return Err(InstanceError::TtlTooLong(max));
                }
            }
            Some(new)
        };
        self.write_meta(&meta).await?;
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
        let mut meta = self.ready_meta(t, n).await?;
        meta.protected = protected;
        self.write_meta(&meta).await?;
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
        let mut meta = self.ready_meta(t, n).await?;
        // A lost container is stopped already: a stopped instance needs
        // none until `start`.
        match self.ctx.engine.stop(&meta.container, 120).await {
            Ok(()) | Err(dolly_engine::EngineError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        meta.stopped = true;
        self.write_meta(&meta).await?;
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
        let mut meta = self.ready_meta(t, n).await?;
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
            let mut meta = self.ready_meta(t, n).await?;
            let source = match &target {
                ResetTarget::Original => {
                    let path = self.ctx.store.version_data(t, &meta.version);
                    if !path.is_dir() {
                        return Err(InstanceError::VersionGone(t.clone(), meta.version.clone()));
                    }
                    path
                }
                ResetTarget::Latest => {
                    meta.version = self.resolve_template(t).await?;
                    self.ctx.store.version_data(t, &meta.version)
                }
                ResetTarget::Snapshot(s) => {
                    let snap = self.snapshot_meta(t, n, s).await?;
                    meta.version = snap.template_version;
                    self.ctx.store.snapshot_data(t, n, s)
                }
            };
            // The old datadir goes aside first, and away once the new one runs.
            self.ctx.engine.remove(&meta.container).await?;
            let (t2, n2) = (t.clone(), n.clone());
            let aside = self
                .ctx
                .blocking(move |s| s.set_aside_data(&t2, &n2))
                .await?;
            let data = self.ctx.store.instance_data(t, n);
            if let Err(e) = self.clone_into(source, &data).await {
                // Put the old one back, so the instance stays whole.
                let (t2, n2, a) = (t.clone(), n.clone(), aside.clone());
                if let Err(re) = self.ctx.blocking(move |s| s.restore_data(&t2, &n2, &a)).await {
                    tracing::error!(error = %re, aside = %aside.display(), "cannot put the old datadir back; it stays aside and is restored at the next start");
                }
                let mut old = self.ready_meta(t, n).await?;
                let port = old.port;
                let _ = self.start_container(&mut old, port).await;
                return Err(e);
            }
            self.write_meta(&meta).await?;
            let port = meta.port;
            let result = self.start_container(&mut meta, port).await;
            self.ctx.metrics.operation("reset", result.is_ok());
            let ctx_store = self.ctx.store.clone();
            tokio::task::spawn_blocking(move || ctx_store.discard_aside(&aside));
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
        let meta = self.ready_meta(t, n).await?;
        self.snapshot_meta(t, n, s).await?;
        let src = self.ctx.store.snapshot_data(t, n, s);
        template::publish_datadir(
            &self.ctx,
            to,
            &src,
            format!("snapshot {t}/{n}@{s}"),
            meta.database,
        )
        .await
        .map_err(|e| match e {
            ImportError::Busy(t, _) => InstanceError::TemplateBusy(t),
            ImportError::Engine(e) => InstanceError::Engine(e),
            ImportError::Store(e) => e.into(),
            ImportError::Datadir { what, source } => InstanceError::datadir(what)(source),
            other => InstanceError::Promote(other),
        })
    }
}
