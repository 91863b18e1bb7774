//! Matching the data folder with the engine at start, and healing.
//!
//! The rule: housekeeping never deletes what a user saved. Reconcile tells
//! apart
//! - a half-made instance (never answered `SELECT 1`, no snapshots): its
//!   container and folder are removed;
//! - a ready instance whose container is missing: kept; [`Manager::heal`]
//!   re-creates its container from `meta.json` on its saved port (a
//!   stopped instance stays stopped and needs none until `start`);
//! - unreadable or damaged metadata: the folder goes to `quarantine/`,
//!   logged as an error and listed by the API; nothing is removed.

use dolly_engine::{ContainerInfo, RunState};
use dolly_names::{InstanceName, TemplateName};
use std::time::Duration;
use tracing::{error, info, warn};

use super::server::{empty_init_file, init_file_unsettled};
use super::{InstanceError, InstanceMeta, InstanceState, Manager, LABEL_NAME, LABEL_TEMPLATE};
use crate::context::LABEL_KIND;
use crate::store::Cleaned;
use crate::store::{Store, StoreError};

/// How long a running server found at start may take to answer.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(20);

/// What one instance folder holds, as far as reconcile is concerned.
#[derive(Debug)]
pub(super) enum Found {
    /// Ready: answered its credentials once. Never removed here.
    Ready(Box<InstanceMeta>),
    /// Claimed but never ready, with no snapshots: safe to remove.
    HalfMade,
    /// Its metadata cannot be trusted: set aside, never removed.
    Damaged(String),
}

/// Classifies the folder of `t/n`. Blocking.
pub(super) fn classify(s: &Store, t: &TemplateName, n: &InstanceName) -> Found {
    let mut meta = match s.read_instance(t, n) {
        Ok(m) => m,
        Err(e) => return Found::Damaged(e.to_string()),
    };
    // An operation interrupted by a crash is finished or rolled back first.
    if let Some(m) = meta.as_mut().filter(|m| m.pending.is_some()) {
        match s.recover_handover(m) {
            Ok(true) => {
                warn!(template = %t, instance = %n, "an interrupted standby handover was finished")
            }
            Ok(false) => {}
            Err(e) => return Found::Damaged(e.to_string()),
        }
    }
    if let Some(m) = meta.as_mut().filter(|m| m.pending.is_some()) {
        match s.recover_reset(m) {
            Ok(Some(how)) => {
                warn!(template = %t, instance = %n, ?how, "an interrupted reset was recovered")
            }
            Ok(None) => {}
            Err(e) => return Found::Damaged(e.to_string()),
        }
    }
    if meta.as_ref().is_some_and(|m| m.ready) {
        match s.remove_half_made_snapshots(t, n) {
            Ok(gone) if !gone.is_empty() => {
                warn!(template = %t, instance = %n, snapshots = ?gone, "removed snapshots an interrupted snapshot left half-made")
            }
            Ok(_) => {}
            Err(e) => return Found::Damaged(e.to_string()),
        }
    }
    if let Some(m) = meta.as_ref().filter(|m| m.ready) {
        return Found::Ready(Box::new(m.clone()));
    }
    match s.has_snapshots(t, n) {
        Ok(false) => Found::HalfMade,
        Ok(true) => Found::Damaged(
            "it has snapshots but no complete metadata (meta.json missing or not ready)".into(),
        ),
        Err(e) => Found::Damaged(e.to_string()),
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Ready instances found (with or without their container).
    pub kept: usize,
    /// Ready, not stopped instances whose container is missing (`heal`
    /// re-creates them).
    pub missing_containers: usize,
    pub removed_containers: usize,
    /// Half-made instances removed.
    pub removed_folders: usize,
    /// Instance folders set aside in `quarantine/`.
    pub quarantined: usize,
    /// Left-overs of interrupted work removed from `tmp/`.
    pub removed_imports: usize,
    /// Datadirs an interrupted reset left aside, put back.
    pub restored: usize,
    /// Running servers that did not answer with their instance's
    /// credentials (a start interrupted before its server answered): their
    /// container was removed, and `heal` starts them again.
    pub unanswered: usize,
}

impl Manager {
    /// At start: matches containers with instance folders (see the module
    /// documentation for the rule), then sorts out `tmp/`.
    pub async fn reconcile(&self) -> Result<ReconcileReport, InstanceError> {
        let mut report = ReconcileReport::default();
        let all = self.ctx.engine.list(&self.ctx.ownership_labels()).await?;
        let found = self
            .ctx
            .store
            .run(|s| {
                let mut out = Vec::new();
                for (t, n) in s.instance_names(None)? {
                    let f = classify(s, &t, &n);
                    out.push((t, n, f));
                }
                Ok::<_, StoreError>(out)
            })
            .await?;
        let mut ready = std::collections::HashSet::new();
        // Containers already dealt with (those of quarantined instances).
        let mut handled = std::collections::HashSet::new();
        // Ready instances: their server must answer.
        let mut to_verify = Vec::new();
        for (t, n, f) in found {
            match f {
                Found::Ready(m) => {
                    report.kept += 1;
                    let container = all.iter().find(|c| c.name == m.container);
                    if container.is_none() && !m.stopped {
                        warn!(template = %t, instance = %n, "the instance's container is missing; it will be re-created on its port");
                        report.missing_containers += 1;
                    }
                    ready.insert(m.container.clone());
                    if m.forward.is_some() {
                        ready.insert(self.forwarder_name(&t, &n));
                        let mut m2 = (*m).clone();
                        if let Some(spare) = self.keep_spare(&mut m2, &all).await? {
                            ready.insert(spare);
                        }
                        to_verify.push(Box::new(m2));
                    } else {
                        to_verify.push(m.clone());
                    }
                }
                Found::HalfMade => {
                    warn!(template = %t, instance = %n, "removing a half-made instance (it never answered)");
                    self.teardown(&t, &n).await;
                    report.removed_folders += 1;
                }
                Found::Damaged(reason) => {
                    self.set_aside(&t, &n, &reason).await?;
                    handled.insert(self.container_name(&t, &n));
                    report.quarantined += 1;
                }
            }
        }
        use futures_util::StreamExt;
        report.unanswered = futures_util::stream::iter(to_verify)
            .map(|m| async move { self.verify_server(&m).await })
            .buffer_unordered(8)
            .filter(|answered| std::future::ready(!answered))
            .count()
            .await;
        for c in all.iter().filter(|c| !handled.contains(&c.name)) {
            if self.sort_out_container(c, &ready).await? {
                report.removed_containers += 1;
            }
        }
        let members = self.clear_pool().await?;
        if members > 0 {
            info!(members, "the warm pool starts empty and refills");
        }
        let cleaned = self.ctx.store.clean_scratch().await?;
        for c in &cleaned {
            match c {
                Cleaned::Removed(p) => {
                    warn!(path = %p.display(), "removed interrupted work");
                    report.removed_imports += 1;
                }
                Cleaned::Restored(_) => report.restored += 1,
            }
        }
        // A publication cut between the version's rename and the switch of
        // `current` is finished (never while an update holds the lock).
        for t in self.ctx.store.template_names().await? {
            if self.ctx.store.is_importing(&t).await {
                continue;
            }
            if let Some(v) = self.ctx.store.recover_publish(&t).await? {
                warn!(template = %t, version = %v, "finished the publication of an interrupted import or promote");
            }
        }
        info!(
            kept = report.kept,
            missing_containers = report.missing_containers,
            removed_containers = report.removed_containers,
            removed_folders = report.removed_folders,
            quarantined = report.quarantined,
            removed_imports = report.removed_imports,
            restored = report.restored,
            unanswered = report.unanswered,
            "state reconciled with the engine"
        );
        Ok(report)
    }

    /// Removes instance containers of ours (servers, forwarders, standbys)
    /// that the engine created but never started and whose instance has no
    /// folder at all: a create in
    /// flight in the engine when dollyd died may finish after the start's
    /// reconcile (RELIABILITY.md, random harness finding 7). A create claims
    /// its folder before it asks for a container, so this never races one;
    /// a container that ever ran, or one whose folder exists, is left to
    /// reconcile, heal and the reaper. Returns how many it removed.
    pub async fn sweep_orphan_containers(&self) -> Result<usize, InstanceError> {
        let all = self.ctx.engine.list(&self.ctx.ownership_labels()).await?;
        let mut removed = 0;
        for c in all {
            let kind = c.labels.get(LABEL_KIND).map(String::as_str);
            if c.state != RunState::Created {
                continue;
            }
            // A pool member's container whose member has no folder: a fill
            // the engine completed after the dollyd that asked for it died
            // (a fill claims the folder before it asks for a container).
            if kind == Some("pool") {
                if let Some((t, m)) = self.pool_member_of(&c) {
                    if !self.ctx.store.member_exists(&t, &m).await {
                        warn!(template = %t, member = %m, container = %c.name, "removing a pool member's container with no member (a fill cut short by a crash)");
                        self.ctx.engine.remove(&c.id).await?;
                        removed += 1;
                    }
                }
                continue;
            }
            // An instance's server, forwarder or standby.
            if !matches!(kind, Some("instance" | "forwarder" | "standby")) {
                continue;
            }
            let names = c
                .labels
                .get(LABEL_TEMPLATE)
                .and_then(|t| TemplateName::parse(t).ok())
                .zip(
                    c.labels
                        .get(LABEL_NAME)
                        .and_then(|n| InstanceName::parse(n).ok()),
                );
            let Some((t, n)) = names else { continue };
            if self.ctx.store.instance_exists(&t, &n).await {
                continue;
            }
            warn!(template = %t, instance = %n, container = %c.name, "removing a container created for an instance that does not exist (a create cut short by a crash)");
            self.ctx.engine.remove(&c.id).await?;
            removed += 1;
        }
        Ok(removed)
    }

    /// The template and member a pool container was made for: its
    /// template label and the member in its name (`PREFIXpool.T.M`; a
    /// handed-out member's container has been renamed and has none).
    fn pool_member_of(&self, c: &ContainerInfo) -> Option<(TemplateName, InstanceName)> {
        let t = TemplateName::parse(c.labels.get(LABEL_TEMPLATE)?).ok()?;
        let prefix = format!("{}pool.{t}.", self.ctx.settings.container_prefix);
        let m = InstanceName::parse(c.name.strip_prefix(&prefix)?).ok()?;
        Some((t, m))
    }

    /// Moves `t/n` to quarantine; its container (if any) is stopped
    /// cleanly and removed, so the data set aside is consistent.
    async fn set_aside(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        reason: &str,
    ) -> Result<(), InstanceError> {
        let container = self.container_name(t, n);
        if self.ctx.engine.inspect(&container).await?.is_some() {
            self.ctx.engine.stop(&container, 120).await?;
            self.ctx.engine.remove(&container).await?;
        }
        let to = self.ctx.store.quarantine_instance(t, n, reason).await?;
        error!(template = %t, instance = %n, reason, quarantine = %to.display(), "instance metadata unreadable: the instance was set aside, nothing was deleted; see GET /api/v1/quarantine");
        Ok(())
    }

    /// Removes a container of ours that belongs to nothing ready: an
    /// instance container without a ready instance, an interrupted
    /// import's, a stopped probe. Returns whether it removed it.
    async fn sort_out_container(
        &self,
        c: &ContainerInfo,
        ready: &std::collections::HashSet<String>,
    ) -> Result<bool, InstanceError> {
        // A ready instance's container is kept whatever its kind label (a
        // pool member handed out keeps `pool`).
        if ready.contains(&c.name) {
            return Ok(false);
        }
        let remove = match c.labels.get(LABEL_KIND).map(String::as_str) {
            // Pool members are rebuilt after a start; throwaway servers
            // (reading a schema) were only ever needed by the process
            // that started them.
            Some("pool") | Some("throwaway") => true,
            // Of an instance behind a forwarder that no longer exists, or
            // a standby nobody will hand out (an old server a handover
            // left is kind `instance`, handled below).
            Some("forwarder") | Some("standby") => {
                warn!(container = %c.name, "removing a forwarder or standby of no ready instance");
                true
            }
            Some("instance") => {
                let named =
                    c.labels.contains_key(LABEL_TEMPLATE) && c.labels.contains_key(LABEL_NAME);
                if !named || !ready.contains(&c.name) {
                    warn!(container = %c.name, "removing a container with no ready instance");
                    true
                } else {
                    false
                }
            }
            Some("import") => {
                let template = c
                    .labels
                    .get(LABEL_TEMPLATE)
                    .and_then(|t| TemplateName::parse(t).ok());
                let importing = match template {
                    Some(t) => self.ctx.store.is_importing(&t).await,
                    None => false,
                };
                if !importing {
                    warn!(container = %c.name, "removing an interrupted import's container");
                }
                !importing
            }
            _ => c.state != RunState::Running,
        };
        if remove {
            self.ctx.engine.remove(&c.id).await?;
        }
        Ok(remove)
    }

    /// A ready instance's server found at start must answer with the
    /// instance's credentials: a crash may have interrupted its start, and
    /// the datadir (a fresh clone after a reset) may not have the account
    /// yet. The container is looked at anew (the engine may have been
    /// starting it while the list was taken):
    /// - running: it must answer (waited for, bounded); then its init file
    ///   is emptied;
    /// - created but never started: a start cut short, whatever the init
    ///   file says;
    /// - not running while the init file still holds the password (created
    ///   but not started, or being started, when dollyd died): the start
    ///   was interrupted, and emptying the file now would let a start in
    ///   flight come up without the account;
    /// - not running, init file settled: left as it is (heal decides).
    ///
    /// A server that does not answer and an interrupted start lose their
    /// container (the init file is emptied), and [`Manager::heal`] starts
    /// them again through the one start path, which writes the init file
    /// anew. Returns whether the instance's server was left as it was.
    async fn verify_server(&self, m: &InstanceMeta) -> bool {
        let init = self.ctx.store.init_file(&m.template, &m.name);
        let owner = match self.ctx.image().await {
            Ok(i) => i.owner,
            Err(e) => {
                warn!(error = %e, "cannot read the image; the init file is left as it is");
                return true;
            }
        };
        let init2 = init.clone();
        let unsettled = tokio::task::spawn_blocking(move || init_file_unsettled(&init2))
            .await
            .unwrap_or(true);
        let info = match self.ctx.engine.inspect(&m.container).await {
            Ok(i) => i,
            Err(e) => {
                warn!(error = %e, container = m.container, "cannot inspect the server; left as it is");
                return true;
            }
        };
        // Behind a forwarder, the server answers through it.
        let published = if m.forward.is_some() {
            match self
                .ctx
                .engine
                .inspect(&self.forwarder_name(&m.template, &m.name))
                .await
            {
                Ok(Some(f)) if f.state == RunState::Running => f.host_port,
                _ => None,
            }
        } else {
            info.as_ref().and_then(|c| c.host_port)
        };
        if m.forward.as_ref().is_some_and(|f| f.sleeping) {
            // Asleep: no server (one a wake left half-started goes), and
            // the next connection wakes it.
            if info.is_some() {
                if let Err(e) = self.ctx.engine.remove(&m.container).await {
                    warn!(error = %e, container = m.container, "cannot remove the server");
                }
            }
            let _ = self
                .set_target(&m.template, &m.name, crate::store::Target::Sleeping)
                .await;
            return true;
        }
        if let (Some(f), Some(c)) = (m.forward.as_ref(), info.as_ref()) {
            if c.state == RunState::Running && !f.sleeping {
                // The target file is not durable: written again.
                let _ = self
                    .set_target(
                        &m.template,
                        &m.name,
                        crate::store::Target::Port(f.inner_port),
                    )
                    .await;
            }
        }
        let keep = match info.as_ref().map(|c| (c.state, published)) {
            None => true,
            Some((RunState::Running, Some(port))) => {
                let bound = self.ctx.settings.ready_timeout.min(VERIFY_TIMEOUT);
                let answered = self
                    .wait_answer(&m.container, &m.password, port, bound)
                    .await
                    .is_ok();
                if !answered {
                    warn!(template = %m.template, instance = %m.name, "its server does not answer with the instance's credentials: it is started again");
                }
                answered
            }
            Some((RunState::Running, None)) => false,
            // Created and never started: always a start that was cut
            // short (dolly creates and starts in one go).
            Some((RunState::Created, _)) => {
                warn!(template = %m.template, instance = %m.name, "its container was created but never started: it is started again");
                false
            }
            Some(_) if unsettled => {
                warn!(template = %m.template, instance = %m.name, "its server's start was interrupted: it is started again");
                false
            }
            Some(_) => true,
        };
        if !keep {
            if let Err(e) = self.ctx.engine.remove(&m.container).await {
                warn!(error = %e, container = m.container, "cannot remove the server");
            }
        }
        if unsettled {
            let _ = tokio::task::spawn_blocking(move || {
                if init_file_unsettled(&init) {
                    let _ = empty_init_file(&init, owner);
                }
            })
            .await;
        }
        keep
    }

    /// At start: keeps the standby of `m` if it was ready and its server
    /// still runs (returns its container's name), else removes what is
    /// left of it and saves `m` without it.
    async fn keep_spare(
        &self,
        m: &mut InstanceMeta,
        all: &[ContainerInfo],
    ) -> Result<Option<String>, InstanceError> {
        let Some(spare) = m.forward.as_ref().and_then(|f| f.spare.clone()) else {
            let (t, n) = (m.template.clone(), m.name.clone());
            self.ctx.store.prune_standbys(&t, &n, None).await?;
            return Ok(None);
        };
        let running = all
            .iter()
            .any(|c| c.name == spare.container && c.state == RunState::Running);
        if spare.ready && running {
            self.ctx
                .store
                .prune_standbys(&m.template, &m.name, Some(spare.generation))
                .await?;
            return Ok(Some(spare.container));
        }
        warn!(template = %m.template, instance = %m.name, "its standby was not ready: it is prepared again");
        self.drop_spare(m).await?;
        Ok(None)
    }

    /// Starts again, on their own port, ready instances not stopped on
    /// purpose whose container is missing (re-created from `meta.json`) or
    /// whose server crashed (exited non-zero); with `all`, any that exited
    /// (at dollyd's start: the engine may have been restarted meanwhile)
    /// and the broken ones.
    pub async fn heal(&self, all: bool) -> Result<usize, InstanceError> {
        let mut healed = 0;
        for i in self.list(None).await? {
            let m = &i.meta;
            // A broken instance is tried again at start even if it was
            // stopped: its last start (one a user asked for) failed.
            if m.stopped && !(all && m.broken.is_some()) {
                continue;
            }
            if m.forward.is_some() && self.forwarder_lost(m).await {
                // Its server is unreachable without it (and lives in its
                // namespace): both start again, on the instance's port.
                warn!(template = %m.template, instance = %m.name, "its forwarder is not running: starting it again on its port");
                if let Err(e) = self.restart_behind(&m.template, &m.name).await {
                    warn!(template = %m.template, instance = %m.name, error = %e, "cannot start it again");
                } else {
                    healed += 1;
                }
                continue;
            }
            let why = match i.state {
                InstanceState::Missing => "its container is missing",
                InstanceState::Dead => "its server exited",
                // Tried again at dollyd's start only: a server that does
                // not answer costs `ready_timeout` at each try.
                InstanceState::Broken if all => "it is broken",
                _ => continue,
            };
            let crashed_only = i.status.starts_with("Exited (0)") && !all;
            if crashed_only {
                continue;
            }
            warn!(template = %m.template, instance = %m.name, status = %i.status, "{why}: starting it again on its port");
            match self.start(&m.template, &m.name).await {
                Ok(s) => {
                    if s.port != m.port {
                        warn!(template = %m.template, instance = %m.name, old = ?m.port, new = ?s.port, "its port was taken: it has a new one");
                    }
                    healed += 1;
                }
                Err(e) => {
                    warn!(template = %m.template, instance = %m.name, error = %e, "cannot start it again")
                }
            }
        }
        Ok(healed)
    }
}
