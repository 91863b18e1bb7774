//! The warm pool: per template, ready servers on clones of the current
//! version, handed out by a create before it would start a container.
//!
//! A member is a clone with its own random password whose server already
//! answers `SELECT 1` (`pool/T/M/`, container `PREFIXpool.T.M`). A create
//! takes one and it becomes the named instance without a restart: the
//! container is renamed, the folder replaces the claimed instance folder by
//! one rename, and `meta.json` is written last. A crash before that write
//! leaves a half-made instance (removed at start); after it, a complete
//! one. Members hold no user data: at start every member is removed and
//! the pool refills.
//!
//! Refill runs in the background, one start per template at a time, so a
//! create that misses the pool takes the cold path undelayed. Members of a
//! version that is no longer current are retired.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use dolly_names::{TemplateName, VersionName};
use tracing::{debug, info, warn};

use super::server::{new_password, Server};
use super::{Instance, InstanceError, InstanceMeta, Manager, LABEL_TEMPLATE, LABEL_VERSION};
use crate::store::{MemberMeta, PoolSize, StoreError};

/// The ready members of each template, in memory (rebuilt at start).
#[derive(Default)]
pub(super) struct Pools {
    ready: Mutex<HashMap<TemplateName, Vec<MemberMeta>>>,
    wake: tokio::sync::Notify,
}

impl Pools {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TemplateName, Vec<MemberMeta>>> {
        self.ready.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A template's pool: its target size and how many members are ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    pub size: usize,
    pub ready: usize,
}

impl Manager {
    /// The pool size of `t`: its override, or `pool_size`.
    pub async fn pool_target(&self, t: &TemplateName) -> Result<usize, InstanceError> {
        let over = self.ctx.store.pool_size(t).await?;
        Ok(over.map_or(self.ctx.settings.pool_size, |p| p.size))
    }

    /// Sets the pool size of `t` (kept in the data folder).
    pub async fn set_pool_size(
        &self,
        t: &TemplateName,
        size: usize,
    ) -> Result<PoolStatus, InstanceError> {
        self.resolve_template(t).await?;
        self.ctx.store.set_pool_size(t, PoolSize { size }).await?;
        info!(template = %t, size, "pool size set");
        self.pools.wake.notify_one();
        self.pool_status(t).await
    }

    pub async fn pool_status(&self, t: &TemplateName) -> Result<PoolStatus, InstanceError> {
        let size = self.pool_target(t).await?;
        let ready = self.pools.lock().get(t).map_or(0, Vec::len);
        Ok(PoolStatus { size, ready })
    }

    /// Takes a ready member of `t` at `version`, if there is one.
    fn take_member(&self, t: &TemplateName, version: &VersionName) -> Option<MemberMeta> {
        let mut pools = self.pools.lock();
        let members = pools.get_mut(t)?;
        let i = members.iter().position(|m| &m.version == version)?;
        Some(members.swap_remove(i))
    }

    /// Hands a ready member out as `meta` (whose name is claimed, its
    /// folder empty). `Ok(None)`: there was no member; the caller goes the
    /// cold way.
    pub(super) async fn hand_out(
        &self,
        meta: &InstanceMeta,
    ) -> Result<Option<Instance>, InstanceError> {
        let Some(member) = self.take_member(&meta.template, &meta.version) else {
            return Ok(None);
        };
        self.pools.wake.notify_one();
        let t = &meta.template;
        // 1. The container takes the instance's name (no restart).
        if let Err(e) = self
            .ctx
            .engine
            .rename(&member.container, &meta.container)
            .await
        {
            warn!(error = %e, member = %member.member, "cannot hand out a pool member; creating cold");
            self.retire(&member).await;
            return Ok(None);
        }
        crate::faultpoint::hit("pool.renamed");
        // 2. The folder becomes the instance's, 3. its metadata is written.
        let handed = InstanceMeta {
            password: member.password.clone(),
            port: member.port,
            ready: true,
            ..meta.clone()
        };
        self.ctx
            .store
            .hand_out_member(t, &member.member, &handed)
            .await?;
        debug!(member = %member.member, "pool member handed out");
        self.view(handed).await.map(Some)
    }

    /// Removes a member: its container and its folder.
    async fn retire(&self, m: &MemberMeta) {
        if let Err(e) = self.ctx.engine.remove(&m.container).await {
            warn!(error = %e, container = %m.container, "cannot remove a pool member's container");
        }
        let (t, n) = (m.template.clone(), m.member.clone());
        if let Err(e) = self.ctx.store.remove_member(&t, &n).await {
            warn!(error = %e, "cannot remove a pool member's folder");
        }
    }

    /// Starts one member of `t` at `version` and adds it to the pool.
    async fn start_member(
        &self,
        t: &TemplateName,
        version: &VersionName,
    ) -> Result<(), InstanceError> {
        let m = self.ctx.store.claim_member(t).await?;
        let database = crate::template::version_meta(&self.ctx, t, version)
            .await?
            .map(|v| v.database)
            .unwrap_or_else(|| self.ctx.settings.database.clone());
        let mut meta = MemberMeta {
            template: t.clone(),
            member: m.clone(),
            version: version.clone(),
            password: new_password(),
            database,
            container: format!("{}pool.{t}.{m}", self.ctx.settings.container_prefix),
            port: None,
            created_at: Utc::now(),
            ready: false,
        };
        let result = async {
            self.ctx.store.write_member(&meta).await?;
            let data = self.ctx.store.member_data(t, &m);
            self.clone_datadir(self.ctx.store.version_data(t, version), &data)
                .await?;
            let mut labels = self.ctx.labels("pool");
            labels.insert(LABEL_TEMPLATE.to_owned(), t.to_string());
            labels.insert(LABEL_VERSION.to_owned(), version.to_string());
            let server = Server {
                container: meta.container.clone(),
                datadir: data,
                password: meta.password.clone(),
                labels,
                what: format!("{t} pool member {m}"),
            };
            meta.port = Some(
                self.start_server(&server, super::server::Placement::Published(None))
                    .await?,
            );
            meta.ready = true;
            self.ctx.store.write_member(&meta).await?;
            Ok::<_, InstanceError>(())
        }
        .await;
        match result {
            Ok(()) => {
                self.pools.lock().entry(t.clone()).or_default().push(meta);
                Ok(())
            }
            Err(e) => {
                self.retire(&meta).await;
                Err(e)
            }
        }
    }

    /// One refill pass: retires members of versions no longer current,
    /// then starts members until each template's pool is full, one start
    /// per template at a time (templates in parallel).
    pub async fn refill_pools(&self) -> Result<(), InstanceError> {
        let templates = self.ctx.store.template_names().await?;
        let mut work = Vec::new();
        for t in templates {
            let Some(current) = crate::template::current_version(&self.ctx, &t).await? else {
                continue;
            };
            let stale: Vec<MemberMeta> = {
                let mut pools = self.pools.lock();
                let members = pools.entry(t.clone()).or_default();
                let (keep, stale) = members.drain(..).partition(|m| m.version == current);
                *members = keep;
                stale
            };
            for m in &stale {
                info!(template = %t, version = %m.version, "retiring a pool member of an older version");
                self.retire(m).await;
            }
            let target = self.pool_target(&t).await?;
            let ready = self.pools.lock().get(&t).map_or(0, Vec::len);
            if ready > target {
                let extra: Vec<MemberMeta> = {
                    let mut pools = self.pools.lock();
                    let members = pools.entry(t.clone()).or_default();
                    members.drain(target..).collect()
                };
                for m in &extra {
                    self.retire(m).await;
                }
            }
            if ready < target {
                work.push((t, current, target - ready));
            }
        }
        let fills = work.into_iter().map(|(t, v, missing)| async move {
            for _ in 0..missing {
                if let Err(e) = self.start_member(&t, &v).await {
                    warn!(template = %t, error = %e, "cannot start a pool member");
                    break;
                }
            }
        });
        futures_util::future::join_all(fills).await;
        Ok(())
    }

    /// Keeps the pools full until the task is dropped: a pass when woken
    /// (a hand-out, a size change) or every second (a new version).
    pub fn spawn_pool_refill(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let manager = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                if let Err(e) = manager.refill_pools().await {
                    warn!(error = %e, "pool refill failed");
                }
                let _ = tokio::time::timeout(Duration::from_secs(1), manager.pools.wake.notified())
                    .await;
            }
        })
    }

    /// At start: members hold no user data; whatever a crash left of the
    /// pool (folders; containers are removed with the other orphans) goes.
    pub(super) async fn clear_pool(&self) -> Result<usize, StoreError> {
        self.pools.lock().clear();
        self.ctx.store.clear_pool().await
    }

    /// Every member's container, for a clean shutdown of the pool.
    pub async fn drain_pools(&self) {
        let members: Vec<MemberMeta> = self.pools.lock().drain().flat_map(|(_, v)| v).collect();
        for m in &members {
            self.retire(m).await;
        }
    }
}
