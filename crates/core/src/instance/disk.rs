//! `instance_max_disk` after the fact: where the data folder's filesystem
//! cannot enforce the limit ([`crate::disk_limit`]), the reaper's pass
//! stops a running instance whose folder grew past it, saying why.
//! Nothing is removed: the user resets, restores or deletes it.

use tracing::{info, warn};

use super::{Instance, InstanceError, InstanceState, Manager};
use crate::disk_limit::DiskLimit;

impl Manager {
    /// Stops running instances that hold more than `instance_max_disk`
    /// beyond their template, when no filesystem enforces it. Returns
    /// those it stopped.
    pub async fn enforce_disk_limit(&self) -> Result<Vec<Instance>, InstanceError> {
        match self.ctx.disk_limit {
            DiskLimit::Off => Ok(Vec::new()),
            DiskLimit::AfterTheFact(limit) => self.stop_grown(limit).await,
            DiskLimit::Subvolume(limit) => self.stop_ended_at_limit(limit).await,
        }
    }

    /// btrfs refused the server's writes at its limit and MariaDB ended
    /// (a refused redo log write is fatal to it): the instance is marked
    /// stopped with why, so the heal pass does not start it again (it
    /// would end again at once).
    async fn stop_ended_at_limit(&self, limit: u64) -> Result<Vec<Instance>, InstanceError> {
        let mut stopped = Vec::new();
        for i in self.list(None).await? {
            if i.state != InstanceState::Dead || i.meta.stopped {
                continue;
            }
            let (t, n) = (i.meta.template.clone(), i.meta.name.clone());
            let Ok(used) = self.ctx.store.instance_exclusive_bytes(&t, &n).await else {
                continue;
            };
            if !crate::disk_limit::at_limit(used, limit) {
                continue;
            }
            let reason = format!(
                "stopped by dolly: its server ended when its datadir reached instance_max_disk ({} of its own, limit {}); reset or delete it",
                bytesize::ByteSize(used),
                bytesize::ByteSize(limit)
            );
            match self.stop_because(&t, &n, Some(reason)).await {
                Ok(s) => {
                    info!(template = %t, instance = %n, used, limit, "instance ended at instance_max_disk: stopped");
                    stopped.push(s);
                }
                Err(e) => {
                    warn!(template = %t, instance = %n, error = %e, "cannot stop an instance at instance_max_disk")
                }
            }
        }
        Ok(stopped)
    }

    async fn stop_grown(&self, limit: u64) -> Result<Vec<Instance>, InstanceError> {
        let mut stopped = Vec::new();
        for i in self.list(None).await? {
            if i.state != InstanceState::Running {
                continue;
            }
            let (t, n, v) = (
                i.meta.template.clone(),
                i.meta.name.clone(),
                i.meta.version.clone(),
            );
            let used = match self.ctx.store.instance_growth(&t, &n, &v).await {
                Ok(used) => used,
                Err(e) => {
                    warn!(template = %t, instance = %n, error = %e, "cannot measure an instance's disk use");
                    continue;
                }
            };
            if used <= limit {
                continue;
            }
            let reason = format!(
                "stopped by dolly: it holds {} beyond its template, over instance_max_disk ({}); reset, restore or delete it (start brings it back as it is)",
                bytesize::ByteSize(used),
                bytesize::ByteSize(limit)
            );
            match self.stop_because(&t, &n, Some(reason)).await {
                Ok(s) => {
                    info!(template = %t, instance = %n, used, limit, "instance over instance_max_disk stopped");
                    stopped.push(s);
                }
                Err(e) => {
                    warn!(template = %t, instance = %n, error = %e, "cannot stop an instance over instance_max_disk")
                }
            }
        }
        Ok(stopped)
    }
}
