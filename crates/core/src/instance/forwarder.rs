//! An instance's forwarder container (`CONTAINER.fwd`, kind `forwarder`):
//! it holds the instance's published port and runs the `dolly-forward`
//! relay (crates/forward) as `nobody`, with no capabilities, mounted
//! read-only from the data folder (`DATA/bin/dolly-forward`).
//!
//! The relay comes from `forward_path` (default: `dolly-forward` next to
//! dollyd's executable) and is copied into the data folder at the first
//! forwarder dollyd creates: the data folder is the one path the engine
//! and dollyd share (also when dollyd runs in a container, through the
//! host path mapping datadirs use), and a forwarder keeps running on the
//! file it mounted whatever later happens to dollyd's own binary.
//! Missing, an instance that needs a forwarder fails with
//! [`InstanceError::ForwarderMissing`], which names the setting.

use std::path::PathBuf;

use dolly_engine::RunState;
use dolly_names::{InstanceName, TemplateName};
use tracing::{info, warn};

use super::{InstanceError, InstanceMeta, Manager};
use crate::dbserver;

impl Manager {
    pub(super) fn forwarder_name(&self, t: &TemplateName, n: &InstanceName) -> String {
        format!("{}.fwd", self.container_name(t, n))
    }

    /// The relay forwarders run, as the engine sees it: installed in the
    /// data folder from `forward_path` at the first need (then kept for
    /// this process).
    pub(super) async fn forward_binary(&self) -> Result<PathBuf, InstanceError> {
        let path = self
            .ctx
            .forward_binary
            .get_or_try_init(|| async {
                let Some(source) = self.ctx.settings.forward_binary() else {
                    return Err(InstanceError::ForwarderMissing {
                        path: PathBuf::from(crate::config::FORWARD_BINARY),
                        source: std::io::Error::other("dollyd's own path is unknown"),
                    });
                };
                let from = source.clone();
                let bytes = crate::context::blocking_io(move || std::fs::read(&from))
                    .await
                    .and_then(|b| {
                        if b.starts_with(b"\x7fELF") {
                            Ok(b)
                        } else {
                            Err(std::io::Error::other("not an executable (ELF) file"))
                        }
                    })
                    .map_err(|e| InstanceError::ForwarderMissing {
                        path: source.clone(),
                        source: e,
                    })?;
                let installed = self.ctx.store.install_forward_binary(bytes).await?;
                info!(from = %source.display(), to = %installed.display(), "forwarder relay in place");
                Ok(installed)
            })
            .await?;
        Ok(path.clone())
    }

    /// Makes sure the forwarder of `meta` runs, on `meta.port` when it has
    /// one (a taken port gets a new one, logged). A forwarder that is not
    /// running is re-created, and the servers of its old namespace go
    /// first (a server cannot outlive its namespace's owner). Returns the
    /// host port (also written to `meta.port`, not saved).
    pub(super) async fn ensure_forwarder(
        &self,
        meta: &mut InstanceMeta,
    ) -> Result<u16, InstanceError> {
        let (t, n) = (meta.template.clone(), meta.name.clone());
        let name = self.forwarder_name(&t, &n);
        if let Some(info) = self.ctx.engine.inspect(&name).await? {
            if let (RunState::Running, Some(port)) = (info.state, info.host_port) {
                meta.port = Some(port);
                return Ok(port);
            }
        }
        // Before anything is removed: without the relay nothing can run.
        let binary = self.forward_binary().await?;
        self.ctx.engine.remove(&meta.container).await?;
        if let Some(spare) = meta.forward.as_mut().and_then(|f| f.spare.take()) {
            self.ctx.engine.remove(&spare.container).await?;
        }
        self.ctx.engine.remove(&name).await?;
        let (forward_dir, wake_dir) = self.ctx.store.forward_dirs(&t, &n).await?;
        let spec_of = |port: Option<u16>| {
            dbserver::forwarder_spec(
                dbserver::Forwarder {
                    name: name.clone(),
                    image: self.ctx.settings.image.clone(),
                    forward_dir: forward_dir.clone(),
                    wake_dir: wake_dir.clone(),
                    binary: binary.clone(),
                    labels: self.instance_labels("forwarder", &t, &n),
                },
                self.ctx.settings.instance_bind,
                port,
            )
        };
        if let Err(e) = self.ctx.engine.run(&spec_of(meta.port)).await {
            if meta.port.is_none() || matches!(e, dolly_engine::EngineError::Conflict(_)) {
                return Err(e.into());
            }
            warn!(error = %e, port = ?meta.port, "cannot publish the previous port; taking a new one");
            self.ctx.engine.remove(&name).await?;
            self.ctx.engine.run(&spec_of(None)).await?;
        }
        crate::faultpoint::hit("forwarder.running");
        let port = self
            .ctx
            .engine
            .inspect(&name)
            .await?
            .and_then(|i| i.host_port)
            .ok_or_else(|| dolly_engine::EngineError::NoPort(name.clone()))?;
        meta.port = Some(port);
        Ok(port)
    }

    /// Removes the standby containers of `t/n` but `keep` (its server, a
    /// committed standby, keeps the kind label `standby`): one a killed
    /// dollyd was creating may land in the engine after the next dollyd's
    /// reconcile dropped that standby (its create was in flight; random
    /// harness, RELIABILITY.md finding 8). Called before a new standby
    /// starts, so at most one standby runs beside the server.
    pub(super) async fn remove_stray_standbys(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        keep: &[&str],
    ) -> Result<(), InstanceError> {
        let mut labels = self.ctx.labels("standby");
        labels.insert(super::LABEL_TEMPLATE.to_owned(), t.to_string());
        labels.insert(super::LABEL_NAME.to_owned(), n.to_string());
        for c in self.ctx.engine.list(&labels).await? {
            if keep.contains(&c.name.as_str()) {
                continue;
            }
            warn!(template = %t, instance = %n, container = %c.name, "removing a standby container nothing refers to (its create outlived a killed dollyd)");
            self.ctx.engine.remove(&c.name).await?;
        }
        Ok(())
    }

    /// Whether the forwarder of `m` is gone or stopped.
    pub(super) async fn forwarder_lost(&self, m: &InstanceMeta) -> bool {
        !matches!(
            self.ctx.engine.inspect(&self.forwarder_name(&m.template, &m.name)).await,
            Ok(Some(f)) if f.state == RunState::Running
        )
    }
}
