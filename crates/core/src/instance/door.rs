//! The server's one door into the domain, beside the instance operations:
//! templates, readiness, settings and the figures `/metrics` shows. The
//! server never holds a [`Context`](crate::context::Context) (its store
//! and engine are private to core), so whatever it does goes through a
//! method of [`Manager`].

use dolly_engine::EngineError;
use dolly_names::TemplateName;

use super::{InstanceError, Manager};
use crate::config::Settings;
use crate::metrics::{Metrics, TemplateFigures};
use crate::store::StoreError;
use crate::template::{self, Overview};

/// What `/readyz` reports: whether the engine answers and the data folder
/// takes a write.
#[derive(Debug)]
pub struct Readiness {
    pub engine: Result<(), EngineError>,
    pub data_dir: Result<(), StoreError>,
}

impl Manager {
    pub fn settings(&self) -> &Settings {
        &self.ctx.settings
    }

    /// Operation counters, for `/metrics` and the audit log.
    pub fn metrics(&self) -> &Metrics {
        &self.ctx.metrics
    }

    /// Templates with a current version.
    pub async fn templates(&self) -> Result<Vec<TemplateName>, StoreError> {
        template::list(&self.ctx).await
    }

    /// Templates with a version, a running import or a last import.
    pub async fn all_templates(&self) -> Result<Vec<TemplateName>, StoreError> {
        template::list_all(&self.ctx).await
    }

    /// A template's versions, imports and progress.
    pub async fn describe_template(&self, t: &TemplateName) -> Result<Overview, StoreError> {
        template::describe(&self.ctx, t).await
    }

    /// The server image's version string (`mariadbd  Ver 10.11...`) and
    /// the image name.
    pub async fn server_version(&self) -> Result<(String, String), InstanceError> {
        let image = self.ctx.image().await?;
        Ok((image.version.clone(), self.ctx.settings.image.clone()))
    }

    pub async fn readiness(&self) -> Readiness {
        Readiness {
            engine: self.ctx.ping_engine().await,
            data_dir: self.ctx.probe_writable().await,
        }
    }

    /// Free bytes of the data folder and each template's current version's
    /// figures (pool figures left at zero: [`Manager::pool_status`]).
    pub async fn template_figures(&self) -> Result<(u64, Vec<TemplateFigures>), StoreError> {
        self.ctx
            .store
            .run(|s| {
                let space = s.space()?;
                let mut templates = Vec::new();
                for t in s.template_names()? {
                    let current = s.current_version(&t)?;
                    if let Some(m) = current
                        .map(|v| s.version_meta(&t, &v))
                        .transpose()?
                        .flatten()
                    {
                        templates.push(TemplateFigures {
                            name: t.to_string(),
                            imported_at: m.created_at.timestamp(),
                            import_seconds: m.import_seconds,
                            dump_bytes: m.dump_bytes,
                            pool_size: 0,
                            pool_ready: 0,
                        });
                    }
                }
                Ok((space.free, templates))
            })
            .await
    }
}
