//! Removing instances: on request (`delete`) and by the reaper.
//!
//! The reaper removes what its user asked it to (an expiry, `--dead`,
//! `--unhealthy`), never a protected instance, and never an instance it
//! cannot read: a damaged `meta.json` fails the removal closed.

use std::time::Duration;

use chrono::Utc;
use dolly_names::{InstanceName, TemplateName};
use tracing::{info, info_span, warn, Instrument};

use super::{Instance, InstanceError, InstanceState, Manager};

/// What the reaper removes; with `dry_run`, only lists it.
#[derive(Debug, Clone, Default)]
pub struct Reap {
    pub expired: bool,
    /// The server exited without being stopped.
    pub dead: bool,
    /// Running, but not answering `SELECT 1`.
    pub unhealthy: bool,
    pub dry_run: bool,
}

/// One instance the reaper removed (or, in a dry run, would remove).
#[derive(Debug, Clone)]
pub struct Reaped {
    pub template: TemplateName,
    pub name: InstanceName,
    /// `expired`, `dead` or `unhealthy`.
    pub reason: String,
    /// False in a dry run.
    pub removed: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ReapReport {
    pub instances: Vec<Reaped>,
}

impl Manager {
    /// Removes the container and the folder of `t/n` (its data and
    /// snapshots). A protected instance needs `force`; so does one whose
    /// metadata cannot be read (dolly will not guess it is unprotected).
    pub async fn delete(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        force: bool,
    ) -> Result<(), InstanceError> {
        self.remove_instance(t, n, force, crate::events::EventKind::InstanceDeleted)
            .await
    }

    /// [`Manager::delete`], telling listeners `event` (`instance.deleted`,
    /// or `instance.expired` from the reaper).
    async fn remove_instance(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        force: bool,
        event: crate::events::EventKind,
    ) -> Result<(), InstanceError> {
        let span = info_span!("delete", template = %t, instance = %n);
        async {
            let lock = self.key_lock(t, n);
            let _guard = lock.lock().await;
            let container = self.container_name(t, n);
            let meta = match self.read_meta(t, n).await {
                Ok(Some(m)) if m.protected && !force => {
                    return Err(InstanceError::Protected(t.clone(), n.clone()))
                }
                Err(e) if !force => return Err(e.into()),
                Ok(m) => m,
                Err(_) => None,
            };
            let exists = self.ctx.engine.inspect(&container).await?.is_some();
            // First the folder leaves `instances/` (one rename): from then
            // on the instance is gone, and a crash at any later step is
            // finished at the next start (orphan container, scratch).
            let aside = self.ctx.store.unlink_instance(t, n).await?;
            if aside.is_none() && !exists {
                return Err(InstanceError::NotFound(t.clone(), n.clone()));
            }
            crate::faultpoint::hit("delete.unlinked");
            // Its server and, behind a forwarder, the forwarder, standby and
            // any old server (all carry the instance's labels).
            let removed = self.remove_all_containers(t, n).await;
            self.ctx.metrics.operation("delete", removed.is_ok());
            removed?;
            crate::faultpoint::hit("delete.container_removed");
            if let Some(aside) = aside {
                self.ctx.store.discard_aside(&aside).await?;
            }
            info!("instance removed");
            let e = match &meta {
                Some(m) => crate::events::Event::instance(event, m),
                None => crate::events::Event {
                    name: Some(n.to_string()),
                    ..crate::events::Event::new(event, t)
                },
            };
            self.ctx.events.emit(e);
            Ok(())
        }
        .instrument(span)
        .await
    }

    /// What `serve` does every `reap_interval`: removes expired instances,
    /// heals crashed or lost servers, stops idle ones.
    pub async fn reap_expired(&self) -> Result<usize, InstanceError> {
        let report = self
            .reap(&Reap {
                expired: true,
                ..Reap::default()
            })
            .await?;
        // Before healing: a server that ended at its disk limit is
        // stopped with its reason, not started again.
        self.enforce_disk_limit().await?;
        self.sweep_orphan_containers().await?;
        self.heal(false).await?;
        if self.ctx.settings.idle_ttl.is_some() {
            self.stop_idle().await?;
        }
        self.sleep_idle().await?;
        Ok(report.instances.iter().filter(|r| r.removed).count())
    }

    /// Removes (or with `dry_run`, lists) instances that are expired, dead
    /// (exited without a `stop`) or unhealthy (running, not answering).
    /// Protected instances are never reaped; an instance whose container is
    /// missing is not dead (dolly re-creates the container).
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
            } else if what.dead && !m.stopped && i.state == InstanceState::Dead {
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
                let event = if reason == "expired" {
                    crate::events::EventKind::InstanceExpired
                } else {
                    crate::events::EventKind::InstanceDeleted
                };
                match self
                    .remove_instance(&m.template, &m.name, false, event)
                    .await
                {
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
            if self
                .ctx
                .prober
                .ping(&self.ctx.settings.connect_host, port, &i.meta.password)
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
}
