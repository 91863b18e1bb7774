//! `sleep_after`: the server of an instance behind a forwarder stops when
//! nobody used it for that long (its memory is freed, its datadir, port
//! and password stay), and the next connection wakes it.
//!
//! Idleness is seen as for `idle_ttl` (`idle.rs`: the server's connection
//! counters, read through the forwarder at each reaper pass). Asleep, the
//! target file says `sleeping`: a connection arriving then leaves a
//! wake-up request in the instance's `wake/` folder and waits in the
//! forwarder; [`Manager::spawn_waker`] sees the request within
//! [`WAKE_POLL`], starts the server (the target says `starting`, then its
//! port) and the waiting connection goes through: a slower connect, not an
//! error. A dollyd that is down cannot wake anything: connections wait up
//! to a minute in the forwarder, then are closed; the next dollyd serves
//! the request at its start.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::instance::InstanceState;
use dolly_names::{InstanceName, TemplateName};
use tracing::{info, warn};

use super::{Instance, InstanceError, Manager};
use crate::store::Target;

/// How often wake-up requests are looked for.
pub const WAKE_POLL: Duration = Duration::from_millis(25);

/// How often the waker reads the sleeping instances from the store without
/// being told one changed.
const RELIST: Duration = Duration::from_secs(10);

impl Manager {
    /// Puts to sleep the running instances idle for longer than their
    /// `sleep_after` (one look per reaper pass).
    pub async fn sleep_idle(&self) -> Result<Vec<Instance>, InstanceError> {
        let mut slept = Vec::new();
        for i in self.list(None).await? {
            let Some(after) = i.meta.forward.as_ref().and_then(|f| f.sleep_after) else {
                continue;
            };
            if i.state != InstanceState::Running || i.meta.pending.is_some() {
                continue;
            }
            let key = (i.meta.template.clone(), i.meta.name.clone());
            let Some(idle_for) = self.idle_for(&i).await else {
                continue;
            };
            if idle_for < Duration::from_secs(after) {
                continue;
            }
            match self.sleep(&key.0, &key.1).await {
                Ok(s) => {
                    info!(template = %key.0, instance = %key.1, idle_secs = idle_for.as_secs(), "idle instance put to sleep");
                    slept.push(s);
                }
                Err(e) => {
                    warn!(template = %key.0, instance = %key.1, error = %e, "cannot put an idle instance to sleep")
                }
            }
            self.forget_activity(&key);
        }
        Ok(slept)
    }

    /// Stops the server of `t/n` (behind its forwarder) until the next
    /// connection: new connections wait from the first step on.
    pub async fn sleep(
        &self,
        t: &TemplateName,
        n: &InstanceName,
    ) -> Result<Instance, InstanceError> {
        let lock = self.key_lock(t, n);
        let _guard = lock.lock().await;
        let mut meta = self.ready_meta(t, n).await?;
        if meta.forward.is_none() || meta.stopped {
            return self.view(meta).await;
        }
        self.ctx.store.clear_wake_request(t, n).await;
        self.set_target(t, n, Target::Sleeping).await?;
        self.drop_spare(&mut meta).await?;
        match self.ctx.engine.stop(&meta.container, 120).await {
            Ok(()) | Err(dolly_engine::EngineError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        self.ctx.engine.remove(&meta.container).await?;
        if let Some(f) = meta.forward.as_mut() {
            f.sleeping = true;
        }
        self.write_meta(&meta).await?;
        self.sleepers_changed.store(true, Ordering::Relaxed);
        self.view(meta).await
    }

    /// Wakes `t/n` if it sleeps (a wake-up request, or a caller).
    pub async fn wake(
        &self,
        t: &TemplateName,
        n: &InstanceName,
    ) -> Result<Instance, InstanceError> {
        let started = Instant::now();
        let lock = self.key_lock(t, n);
        let _guard = lock.lock().await;
        let mut meta = self.ready_meta(t, n).await?;
        self.ctx.store.clear_wake_request(t, n).await;
        if !meta.forward.as_ref().is_some_and(|f| f.sleeping) {
            return self.view(meta).await;
        }
        let port = meta.port;
        let i = self.start_container(&mut meta, port).await?;
        self.forget_activity(&(t.clone(), n.clone()));
        info!(template = %t, instance = %n, ms = started.elapsed().as_millis() as u64, "sleeping instance woken by a connection");
        Ok(i)
    }

    /// Sleeping instances with a wake-up request waiting. Blocking reads
    /// run on the blocking pool.
    async fn wake_requests(
        &self,
        sleepers: Vec<(TemplateName, InstanceName)>,
    ) -> Vec<(TemplateName, InstanceName)> {
        self.ctx
            .store
            .run(move |s| {
                Ok::<_, crate::store::StoreError>(
                    sleepers
                        .into_iter()
                        .filter(|(t, n)| s.wake_requested(t, n))
                        .collect(),
                )
            })
            .await
            .unwrap_or_default()
    }

    /// The sleeping instances, as their metadata says (no engine call).
    async fn sleepers(&self) -> HashSet<(TemplateName, InstanceName)> {
        let found = self
            .ctx
            .store
            .run(|s| {
                let mut out = HashSet::new();
                for (t, n) in s.instance_names(None)? {
                    if let Ok(Some(m)) = s.read_instance(&t, &n) {
                        if m.ready && m.forward.is_some_and(|f| f.sleeping) {
                            out.insert((t, n));
                        }
                    }
                }
                Ok::<_, crate::store::StoreError>(out)
            })
            .await;
        match found {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "cannot list sleeping instances");
                HashSet::new()
            }
        }
    }

    /// The task that wakes sleeping instances when a connection asks: it
    /// looks for requests of the sleeping instances every [`WAKE_POLL`]
    /// (nothing to look at when none sleeps) and wakes each in its own
    /// task. The sleeping instances are read from the store at start, when
    /// [`Manager::sleep`] put one to sleep or a wake failed, and every
    /// [`RELIST`] in case.
    pub fn spawn_waker(self: &std::sync::Arc<Self>) -> tokio::task::JoinHandle<()> {
        let manager = std::sync::Arc::clone(self);
        tokio::spawn(async move {
            let mut sleepers = HashSet::new();
            let mut listed = Instant::now() - Duration::from_secs(60);
            let waking = std::sync::Arc::new(std::sync::Mutex::new(HashSet::new()));
            loop {
                if manager.sleepers_changed.swap(false, Ordering::Relaxed)
                    || listed.elapsed() >= RELIST
                {
                    sleepers = manager.sleepers().await;
                    listed = Instant::now();
                }
                if !sleepers.is_empty() {
                    let asked = manager
                        .wake_requests(sleepers.iter().cloned().collect())
                        .await;
                    for key in asked {
                        sleepers.remove(&key);
                        let fresh = waking
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(key.clone());
                        if !fresh {
                            continue;
                        }
                        let (m, waking) = (std::sync::Arc::clone(&manager), waking.clone());
                        tokio::spawn(async move {
                            if let Err(e) = m.wake(&key.0, &key.1).await {
                                warn!(template = %key.0, instance = %key.1, error = %e, "cannot wake a sleeping instance");
                                // Still asleep: look for its requests again.
                                m.sleepers_changed.store(true, Ordering::Relaxed);
                            }
                            waking
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .remove(&key);
                        });
                    }
                }
                tokio::time::sleep(WAKE_POLL).await;
            }
        })
    }
}
