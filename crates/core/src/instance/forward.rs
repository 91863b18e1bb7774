//! Instances behind a forwarder: resets through a standby, and servers
//! that sleep while nobody uses them.
//!
//! An instance created with `standby` or `sleep_after` has two kinds of
//! containers:
//! - its forwarder, `CONTAINER.fwd` (kind `forwarder`, see
//!   `forwarder.rs`): the `dolly-forward` relay as `nobody`,
//!   holding the instance's published port for its whole life, relaying
//!   each new connection to the port the target file names (read at each
//!   connection, swapped by one rename);
//! - its server (`meta.container`, kind `instance`) and, once prepared,
//!   its standby (`CONTAINER.gG`, kind `standby`): servers in the
//!   forwarder's network namespace on `127.0.0.1:behind_port(G)`, each on
//!   its own datadir (`data/`, `standby/gG/`).
//!
//! A reset whose source the ready standby is a clone of (see
//! [`Manager::handover`]) points the target at the standby, checks the
//! instance's credentials through the forwarder, kills the old server
//! (its connections close), renames the standby's datadir to `data/` (the
//! server keeps its inode) and commits the standby as the instance's
//! server: no container is created or started on the request's path. A new
//! standby is prepared in the background.
//!
//! Invariants, and what enforces them:
//! - a datadir is mounted by one server: a standby's datadir is cloned
//!   into a generation-named folder never reused (`next_generation` is
//!   written before the clone), servers are only ever started by `run`
//!   after the container of that name was removed, with no engine restart
//!   policy, and heal starts the instance's server from `data/`, never
//!   from a container's old spec;
//! - a standby is handed out once: the handover clears `spare` in the same
//!   metadata write that makes it the server (`Pending::Handover` before
//!   it, finished forward at start by `Store::recover_handover`);
//! - nothing of an instance outlives its delete: every container carries
//!   the instance's template and name labels and `delete` removes all of
//!   them; a standby prepared while a delete ran checks, under the
//!   instance's lock, that its instance still wants it, else removes
//!   itself;
//! - a crash of dollyd drops no connection: the forwarder and the servers
//!   are containers, and reconcile keeps a forwarder and server that
//!   answer with the instance's credentials through the forwarder.

use std::time::Duration;

use dolly_names::{InstanceName, TemplateName};
use tracing::{info, warn};

use super::server::{empty_init_file, write_private, Placement, Server};
use super::{
    Instance, InstanceError, InstanceMeta, Manager, ResetTarget, LABEL_NAME, LABEL_TEMPLATE,
};
use crate::dbserver::{self, behind_port};
use crate::store::{Forward, Pending, Spare, Target};

/// How long a standby's server may take to come up.
const STANDBY_START: u32 = 120;

/// What a new instance asks for beyond its lease.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Keep a standby for resets.
    pub standby: bool,
    /// Put the server to sleep after this long without clients.
    pub sleep_after: Option<Duration>,
}

impl CreateOptions {
    /// The [`Forward`] an instance created with these options starts with
    /// (`None`: an ordinary instance, its server publishing the port).
    pub(super) fn forward(&self) -> Option<Forward> {
        (self.standby || self.sleep_after.is_some()).then(|| Forward {
            standby: self.standby,
            sleep_after: self.sleep_after.map(|d| d.as_secs().max(1)),
            sleeping: false,
            next_generation: 1,
            inner_port: behind_port(0),
            spare: None,
            reset_to: None,
        })
    }
}

impl Manager {
    fn generation_container(&self, t: &TemplateName, n: &InstanceName, g: u64) -> String {
        format!("{}.g{g}", self.container_name(t, n))
    }

    /// Labels of a container belonging to `t/n`.
    pub(super) fn instance_labels(
        &self,
        kind: &str,
        t: &TemplateName,
        n: &InstanceName,
    ) -> std::collections::BTreeMap<String, String> {
        let mut labels = self.ctx.labels(kind);
        labels.insert(LABEL_TEMPLATE.to_owned(), t.to_string());
        labels.insert(LABEL_NAME.to_owned(), n.to_string());
        labels
    }

    /// Removes every container of `t/n`: its server, forwarder, standby
    /// and an old server a handover left (all carry its labels).
    pub(super) async fn remove_all_containers(
        &self,
        t: &TemplateName,
        n: &InstanceName,
    ) -> Result<(), InstanceError> {
        let mut labels = self.ctx.ownership_labels();
        labels.insert(LABEL_TEMPLATE.to_owned(), t.to_string());
        labels.insert(LABEL_NAME.to_owned(), n.to_string());
        let mut names: Vec<String> = self
            .ctx
            .engine
            .list(&labels)
            .await?
            .into_iter()
            .map(|c| c.name)
            .collect();
        // Servers first: they live in the forwarder's namespace.
        names.sort_by_key(|c| c.ends_with(".fwd"));
        names.push(self.container_name(t, n));
        for c in names {
            self.ctx.engine.remove(&c).await?;
        }
        Ok(())
    }

    /// Points the forwarder of `t/n` at `target`.
    pub(super) async fn set_target(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        target: Target,
    ) -> Result<(), InstanceError> {
        let (t, n) = (t.clone(), n.clone());
        Ok(self.ctx.store.write_target(&t, &n, target).await?)
    }

    /// Starts the server of an instance behind its forwarder (which is
    /// started first if needed) on its datadir and waits for the
    /// instance's credentials through the forwarder; the server's start
    /// replaces [`Manager::start_container`]'s for these instances.
    pub(super) async fn start_behind(
        &self,
        meta: &mut InstanceMeta,
        server: &Server,
    ) -> Result<u16, InstanceError> {
        let host_port = self.ensure_forwarder(meta).await?;
        let inner_port = meta
            .forward
            .as_ref()
            .map_or(behind_port(0), |f| f.inner_port);
        let forwarder = self.forwarder_name(&meta.template, &meta.name);
        self.start_server(
            server,
            Placement::Behind {
                forwarder: &forwarder,
                inner_port,
                host_port,
                target: (meta.template.clone(), meta.name.clone()),
            },
        )
        .await?;
        Ok(host_port)
    }

    /// Waits until the server of `container` accepts connections on its
    /// socket (inside the container: it is reachable from nowhere else
    /// before it is handed the port). Its init file has run by then.
    pub(super) async fn wait_alive(&self, container: &str, secs: u32) -> Result<(), InstanceError> {
        let image = self.ctx.image().await?.clone();
        let out = self
            .ctx
            .engine
            .exec(container, image.wait_socket_command(secs), None, None)
            .await?;
        if out.exit_code == 0 {
            return Ok(());
        }
        let log = self
            .ctx
            .engine
            .logs_tail(container, 20)
            .await
            .unwrap_or_default();
        Err(InstanceError::NotReady {
            what: container.to_owned(),
            waited: Duration::from_secs(secs.into()),
            exited: true,
            log,
        })
    }

    /// Whether the ready standby of `meta` is a clone of what `target`
    /// resets to.
    async fn spare_matches(
        &self,
        meta: &InstanceMeta,
        target: &ResetTarget,
    ) -> Result<Option<Spare>, InstanceError> {
        let Some(spare) = meta.forward.as_ref().and_then(|f| f.spare.clone()) else {
            return Ok(None);
        };
        if !spare.ready {
            return Ok(None);
        }
        let matches = match target {
            ResetTarget::Original => spare.snapshot.is_none() && spare.version == meta.version,
            ResetTarget::Latest => {
                spare.snapshot.is_none()
                    && spare.version == self.resolve_template(&meta.template).await?
            }
            ResetTarget::Snapshot(s) => match &spare.snapshot {
                Some((name, at)) if name == s => self
                    .snapshot_meta(&meta.template, &meta.name, s)
                    .await
                    .is_ok_and(|m| m.created_at == *at),
                _ => false,
            },
        };
        Ok(matches.then_some(spare))
    }

    /// A reset through the standby, when a ready one is a clone of what
    /// `target` resets to: `Ok(None)` when there is none (the caller takes
    /// the cloning path). Called under the instance's lock.
    pub(super) async fn handover(
        &self,
        meta: &mut InstanceMeta,
        target: &ResetTarget,
    ) -> Result<Option<Instance>, InstanceError> {
        let Some(spare) = self.spare_matches(meta, target).await? else {
            return Ok(None);
        };
        let (t, n) = (meta.template.clone(), meta.name.clone());
        let Some(port) = meta.port else {
            return Ok(None);
        };
        let old_container = meta.container.clone();
        let started = std::time::Instant::now();
        // 1. The intent: from here a crash finishes the handover.
        meta.pending = Some(Pending::Handover {
            version: spare.version.clone(),
            generation: spare.generation,
            container: spare.container.clone(),
            inner_port: spare.inner_port,
        });
        self.write_meta(meta).await?;
        let intent_ms = started.elapsed().as_millis() as u64;
        crate::faultpoint::hit("handover.intent");
        // 2. New connections reach the standby.
        self.set_target(&t, &n, Target::Port(spare.inner_port))
            .await?;
        crate::faultpoint::hit("handover.target");
        // 3. At once: the old server goes (its connections close), the
        //    standby is asked for the instance's credentials through the
        //    forwarder, and its datadir becomes the instance's (the old
        //    server keeps its own inode, set aside), committed.
        let mut committed = meta.clone();
        committed.version = spare.version.clone();
        committed.container = spare.container.clone();
        if let Some(f) = committed.forward.as_mut() {
            f.inner_port = spare.inner_port;
            f.spare = None;
        }
        committed.pending = None;
        committed.broken = None;
        let commit = async {
            let aside = self
                .ctx
                .store
                .swap_in_standby(&t, &n, spare.generation)
                .await?;
            crate::faultpoint::hit("handover.swapped");
            self.write_meta(&committed).await?;
            crate::faultpoint::hit("handover.committed");
            Ok::<_, InstanceError>(aside)
        };
        let step = std::time::Instant::now();
        let ((answered, ping_ms), (killed, kill_ms), (aside, commit_ms)) = tokio::join!(
            async {
                let r = self
                    .ctx
                    .prober
                    .ping(&self.ctx.settings.connect_host, port, &meta.password)
                    .await;
                (r, step.elapsed().as_millis() as u64)
            },
            async {
                let killed = self.ctx.engine.kill(&old_container).await;
                crate::faultpoint::hit("handover.killed");
                (killed, step.elapsed().as_millis() as u64)
            },
            async { (commit.await, step.elapsed().as_millis() as u64) }
        );
        let aside = aside?;
        *meta = committed;
        if let Err(e) = killed {
            // Its connections must not outlive the reset.
            warn!(error = %e, container = old_container, "cannot kill the old server; removing it");
            self.ctx.engine.remove(&old_container).await?;
        }
        let handed_ms = started.elapsed().as_millis() as u64;
        // What is left goes in the background.
        let ctx = std::sync::Arc::clone(&self.ctx);
        let old = old_container.clone();
        tokio::spawn(async move {
            if let Err(e) = ctx.engine.remove(&old).await {
                warn!(error = %e, container = old, "cannot remove the old server");
            }
            if let Some(aside) = aside {
                let _ = ctx.store.discard_aside(&aside).await;
            }
        });
        if let Err(e) = answered {
            // The instance has its fresh datadir but the standby's server
            // did not take its credentials: a server is started on it.
            warn!(template = %t, instance = %n, error = %e, "the standby did not answer with the instance's credentials; starting a server on its datadir");
            let mut i = self.start_container(meta, Some(port)).await?;
            i.via_standby = Some(false);
            return Ok(Some(i));
        }
        self.standby_wanted();
        info!(template = %t, instance = %n, intent_ms, ping_ms, kill_ms, commit_ms, handed_ms, "handover done");
        // It just answered with the instance's credentials: running.
        let mut i = Instance::new(meta.clone(), None);
        i.state = crate::instance::InstanceState::Running;
        i.status = "running".to_owned();
        i.via_standby = Some(true);
        Ok(Some(i))
    }

    /// Forgets the standby of `meta` (saved): its container and datadir go.
    pub(super) async fn drop_spare(&self, meta: &mut InstanceMeta) -> Result<(), InstanceError> {
        let Some(spare) = meta.forward.as_mut().and_then(|f| f.spare.take()) else {
            return Ok(());
        };
        self.write_meta(meta).await?;
        self.ctx.engine.remove(&spare.container).await?;
        let (t, n) = (meta.template.clone(), meta.name.clone());
        self.ctx.store.prune_standbys(&t, &n, None).await?;
        Ok(())
    }

    /// Asks the background task to prepare standbys now.
    pub(super) fn standby_wanted(&self) {
        self.standby_wake.notify_one();
    }

    /// Prepares the standby of `t/n` if it keeps one and has none: a
    /// clone of its reset source, a server on it in the forwarder's
    /// namespace, waited for. The instance's lock is held only to take a
    /// generation and to publish the result.
    pub(super) async fn prepare_spare(
        &self,
        t: &TemplateName,
        n: &InstanceName,
    ) -> Result<bool, InstanceError> {
        let lock = self.key_lock(t, n);
        let (spare, password, source, server) = {
            let _guard = lock.lock().await;
            let Some(mut meta) = self.read_meta(t, n).await? else {
                return Ok(false);
            };
            let wanted = meta.ready
                && !meta.stopped
                && meta.broken.is_none()
                && meta.pending.is_none()
                && meta
                    .forward
                    .as_ref()
                    .is_some_and(|f| f.standby && !f.sleeping && f.spare.is_none());
            if !wanted {
                return Ok(false);
            }
            let reset_to = meta.forward.as_ref().and_then(|f| f.reset_to.clone());
            let (source, snapshot) = match reset_to {
                Some(s) => match self.snapshot_meta(t, n, &s).await {
                    Ok(sm) => (
                        self.ctx.store.snapshot_data(t, n, &s),
                        Some((s, sm.created_at)),
                    ),
                    Err(_) => (self.ctx.store.version_data(t, &meta.version), None),
                },
                None => (self.ctx.store.version_data(t, &meta.version), None),
            };
            let Some(f) = meta.forward.as_mut() else {
                return Ok(false);
            };
            let g = f.next_generation;
            f.next_generation += 1;
            let spare = Spare {
                generation: g,
                container: self.generation_container(t, n, g),
                inner_port: behind_port(g),
                version: meta.version.clone(),
                snapshot,
                ready: false,
            };
            f.spare = Some(spare.clone());
            self.write_meta(&meta).await?;
            (spare, meta.password.clone(), source, meta.container.clone())
        };
        crate::faultpoint::hit("standby.claimed");
        let made = self
            .make_spare(t, n, &spare, &password, source, &server)
            .await;
        let _guard = lock.lock().await;
        let meta = self.read_meta(t, n).await.ok().flatten();
        let still_wanted = meta.as_ref().is_some_and(|m| {
            m.forward
                .as_ref()
                .and_then(|f| f.spare.as_ref())
                .is_some_and(|s| s.generation == spare.generation)
        });
        match (made, meta) {
            (Ok(()), Some(mut meta)) if still_wanted => {
                if let Some(s) = meta.forward.as_mut().and_then(|f| f.spare.as_mut()) {
                    s.ready = true;
                }
                self.write_meta(&meta).await?;
                info!(template = %t, instance = %n, generation = spare.generation, "standby ready");
                Ok(true)
            }
            (made, meta) => {
                // Failed, or its instance changed (deleted, reset, stopped)
                // meanwhile: nothing of it stays.
                self.ctx.engine.remove(&spare.container).await?;
                let keep = None;
                if meta.is_some() {
                    self.ctx.store.prune_standbys(t, n, keep).await?;
                }
                if let Some(mut meta) = meta.filter(|_| still_wanted) {
                    if let Some(f) = meta.forward.as_mut() {
                        f.spare = None;
                    }
                    self.write_meta(&meta).await?;
                }
                made.map(|()| false)
            }
        }
    }

    /// The clone and the server of a standby.
    async fn make_spare(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        spare: &Spare,
        password: &str,
        source: std::path::PathBuf,
        server: &str,
    ) -> Result<(), InstanceError> {
        self.space_above_minimum().await?;
        // What an earlier standby (a lost forwarder's) left.
        let g = spare.generation;
        self.ctx.store.prune_standbys(t, n, Some(g)).await?;
        let data = self.ctx.store.standby_data(t, n, g).await?;
        self.clone_datadir(source, &data).await?;
        let image = self.ctx.image().await?.clone();
        let init = data.join(dbserver::INIT_FILE);
        let (init2, sql, owner) = (init.clone(), dbserver::init_sql(password), image.owner);
        crate::context::blocking_io(move || write_private(&init2, sql.as_bytes(), Some(owner)))
            .await
            .map_err(InstanceError::datadir("write the init file"))?;
        let spec = image.behind_spec(
            dbserver::ServerContainer {
                name: spare.container.clone(),
                image: self.ctx.settings.image.clone(),
                datadir: self.ctx.store.for_engine(&data),
                labels: self.instance_labels("standby", t, n),
            },
            &self.forwarder_name(t, n),
            spare.inner_port,
            self.ctx.settings.instance_memory,
        );
        self.remove_stray_standbys(t, n, &[&spare.container, server])
            .await?;
        self.ctx.engine.remove(&spare.container).await?;
        self.ctx.engine.run(&spec).await?;
        crate::faultpoint::hit("standby.running");
        let alive = self.wait_alive(&spare.container, STANDBY_START).await;
        crate::context::blocking_io(move || empty_init_file(&init, owner))
            .await
            .map_err(InstanceError::datadir("empty the init file"))?;
        alive
    }

    /// One pass of the background task: a standby for each instance that
    /// keeps one and lacks it, one at a time.
    pub async fn prepare_standbys(&self) -> Result<usize, InstanceError> {
        let mut made = 0;
        for i in self.list(None).await? {
            let m = &i.meta;
            let wants = m
                .forward
                .as_ref()
                .is_some_and(|f| f.standby && f.spare.is_none() && !f.sleeping)
                && i.state == crate::instance::InstanceState::Running;
            if !wants {
                continue;
            }
            match self.prepare_spare(&m.template, &m.name).await {
                Ok(true) => made += 1,
                Ok(false) => {}
                Err(e) => {
                    warn!(template = %m.template, instance = %m.name, error = %e, "cannot prepare a standby")
                }
            }
        }
        Ok(made)
    }

    /// The background task keeping standbys ready (and waking sleeping
    /// servers, see `sleep.rs`).
    pub fn spawn_standby_keeper(self: &std::sync::Arc<Self>) -> tokio::task::JoinHandle<()> {
        let manager = std::sync::Arc::clone(self);
        tokio::spawn(async move {
            loop {
                if let Err(e) = manager.prepare_standbys().await {
                    warn!(error = %e, "standby pass failed");
                }
                let _ =
                    tokio::time::timeout(Duration::from_secs(2), manager.standby_wake.notified())
                        .await;
            }
        })
    }

    /// Starts the forwarder of `t/n` again and, unless it sleeps, its
    /// server behind it (a sleeping one keeps sleeping).
    pub(super) async fn restart_behind(
        &self,
        t: &TemplateName,
        n: &InstanceName,
    ) -> Result<(), InstanceError> {
        let lock = self.key_lock(t, n);
        let _guard = lock.lock().await;
        let mut meta = self.ready_meta(t, n).await?;
        if !self.forwarder_lost(&meta).await {
            return Ok(());
        }
        // Its servers go with the namespace (`ensure_forwarder`).
        self.ensure_forwarder(&mut meta).await?;
        self.write_meta(&meta).await?;
        if meta.forward.as_ref().is_some_and(|f| f.sleeping) {
            self.set_target(t, n, Target::Sleeping).await?;
            return Ok(());
        }
        let port = meta.port;
        self.start_container(&mut meta, port).await.map(|_| ())
    }

    /// The memory the standby of `meta` uses now (`None`: it has none
    /// running).
    pub(super) async fn standby_memory(&self, meta: &InstanceMeta) -> Option<u64> {
        let spare = meta.forward.as_ref()?.spare.as_ref()?;
        self.ctx
            .engine
            .memory_usage(&spare.container)
            .await
            .ok()
            .flatten()
    }
}
