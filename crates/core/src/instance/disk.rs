//! `instance_max_disk` after the fact: where the data folder's filesystem
//! cannot enforce the limit ([`crate::disk_limit`]), the reaper's pass
//! stops a running instance whose folder grew past it, saying why.
//! Nothing is removed: the user resets, restores or deletes it.

use dolly_types::v1::InstanceState;
use tracing::{info, warn};

use super::{Instance, InstanceError, Manager};
use crate::disk_limit::DiskLimit;

impl Manager {
    /// Stops running instances that hold more than `instance_max_disk`
    /// beyond their template, when no filesystem enforces it. Returns
    /// those it stopped.
    pub async fn enforce_disk_limit(&self) -> Result<Vec<Instance>, InstanceError> {
        let DiskLimit::AfterTheFact(limit) = self.ctx.disk_limit else {
            return Ok(Vec::new());
        };
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
            let (t2, n2) = (t.clone(), n.clone());
            let used = match self
                .ctx
                .blocking(move |s| s.instance_growth(&t2, &n2, &v))
                .await
            {
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
