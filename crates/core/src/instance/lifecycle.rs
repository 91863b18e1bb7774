//! Leases and the life of an instance: extend, protect, stop, start, reset.
//!
//! Stop, start and reset keep the name, port and credentials: the
//! container is re-created on the same host port (ports an engine picks
//! change at every start), on the same or a freshly cloned datadir.

use std::time::{Duration, Instant};

use chrono::Utc;
use dolly_names::{InstanceName, SnapshotName, TemplateName};
use tracing::{info, info_span, Instrument};

use super::{Instance, InstanceError, InstanceState, Manager};
use crate::store::Pending;
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
            if add > super::TTL_CEILING {
                return Err(InstanceError::TtlOutOfRange);
            }
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
        self.stop_because(t, n, None).await
    }

    /// [`Manager::stop`], saying why dolly stopped it on its own
    /// (`reason`, shown by the API until `start`).
    pub(super) async fn stop_because(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        reason: Option<String>,
    ) -> Result<Instance, InstanceError> {
        let lock = self.key_lock(t, n);
        let _guard = lock.lock().await;
        let mut meta = self.ready_meta(t, n).await?;
        if meta.forward.is_some() {
            // Its standby goes too (memory); the forwarder keeps the port
            // and closes new connections.
            self.drop_spare(&mut meta).await?;
            self.set_target(t, n, crate::store::Target::Stopped).await?;
        }
        // A lost container is stopped already: a stopped instance needs
        // none until `start`.
        match self.ctx.engine.stop(&meta.container, 120).await {
            Ok(()) | Err(dolly_engine::EngineError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        meta.stopped = true;
        meta.stopped_reason = reason;
        if let Some(f) = meta.forward.as_mut() {
            f.sleeping = false;
        }
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
        if current.state == InstanceState::Running {
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
            let (source, version) = match &target {
                ResetTarget::Original => {
                    self.ensure_version(t, &meta.version).await?;
                    let path = self.ctx.store.version_data(t, &meta.version);
                    (path, meta.version.clone())
                }
                ResetTarget::Latest => {
                    let v = self.resolve_template(t).await?;
                    (self.ctx.store.version_data(t, &v), v)
                }
                ResetTarget::Snapshot(s) => {
                    let snap = self.snapshot_meta(t, n, s).await?;
                    (self.ctx.store.snapshot_data(t, n, s), snap.template_version)
                }
            };
            if let Some(f) = meta.forward.as_mut() {
                // The next standby is a clone of what this reset goes to.
                f.reset_to = match &target {
                    ResetTarget::Snapshot(s) => Some(s.clone()),
                    _ => None,
                };
            }
            if let Some(i) = self.handover(&mut meta, &target).await? {
                self.ctx.metrics.operation("reset", true);
                let mut event = crate::events::Event::instance(
                    crate::events::EventKind::InstanceReset,
                    &i.meta,
                );
                if let ResetTarget::Snapshot(s) = &target {
                    event = event.message(format!("to snapshot {s}"));
                }
                self.ctx.events.emit(event);
                info!(
                    target_state = ?target,
                    version = %meta.version,
                    ms = started.elapsed().as_millis() as u64,
                    "instance reset through its standby"
                );
                return Ok(i);
            }
            // A standby of another source is of no use now.
            if meta.forward.as_ref().is_some_and(|f| f.spare.is_some()) {
                self.drop_spare(&mut meta).await?;
            }
            self.space_above_minimum().await?;
            // 1. Clone the new datadir into tmp/ while the instance still
            //    runs: a failure or a crash here changes nothing.
            let new = self.ctx.store.reset_scratch(t, n);
            if let Err(e) = self.clone_datadir(source, &new).await {
                let _ = tokio::task::spawn_blocking(move || crate::clone::remove_tree(&new)).await;
                return Err(e);
            }
            crate::faultpoint::hit("reset.cloned");
            // 2. Stop the server; 3. write the intent; 4. swap the datadirs
            //    (two renames); 5. commit the new version. A crash after 3
            //    is finished or rolled back at the next start
            //    (`Store::recover_reset`), before the container is healed.
            self.ctx.engine.remove(&meta.container).await?;
            crate::faultpoint::hit("reset.stopped");
            meta.pending = Some(Pending::Reset {
                version: version.clone(),
            });
            self.write_meta(&meta).await?;
            crate::faultpoint::hit("reset.intent");
            let swapped = self.ctx.store.swap_in_data(t, n, &new).await;
            let aside = match swapped {
                Ok(aside) => aside,
                Err(e) => {
                    // Roll back now, as a restart would.
                    let mut m = meta.clone();
                    let _ = self.ctx.store.recover_reset(&mut m).await;
                    let mut old = self.ready_meta(t, n).await?;
                    let port = old.port;
                    let _ = self.start_container(&mut old, port).await;
                    return Err(e.into());
                }
            };
            crate::faultpoint::hit("reset.swapped");
            meta.version = version;
            meta.pending = None;
            self.write_meta(&meta).await?;
            crate::faultpoint::hit("reset.committed");
            let port = meta.port;
            let result = self.start_container(&mut meta, port).await;
            self.ctx.metrics.operation("reset", result.is_ok());
            let _ = self.ctx.store.discard_aside(&aside).await;
            let mut i = result?;
            if i.meta.forward.is_some() {
                i.via_standby = Some(false);
            }
            let mut event =
                crate::events::Event::instance(crate::events::EventKind::InstanceReset, &i.meta);
            if let ResetTarget::Snapshot(s) = &target {
                event = event.message(format!("to snapshot {s}"));
            }
            self.ctx.events.emit(event);
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
        self.space_above_minimum().await?;
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
