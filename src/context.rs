//! What every operation needs: settings, the data folder, the engine.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::clone::CloneMode;
use crate::config::Settings;
use crate::dbserver::ImageInfo;
use crate::engine::{Engine, EngineError};
use crate::layout::Layout;

/// Label put on every container dolly creates.
pub const LABEL_MANAGED_BY: &str = "managed-by";
/// Which data folder a container belongs to: several dollyds (tests) can
/// share one engine without seeing each other's containers.
pub const LABEL_ROOT: &str = "dolly.root";
/// `instance`, `import` or `probe`.
pub const LABEL_KIND: &str = "dolly.kind";

pub struct Context {
    pub settings: Settings,
    pub layout: Layout,
    pub engine: Arc<dyn Engine>,
    pub clone_mode: CloneMode,
    pub metrics: crate::metrics::Metrics,
    image: OnceCell<ImageInfo>,
}

impl Context {
    /// Creates the data folder and detects how it clones.
    pub fn new(settings: Settings, engine: Arc<dyn Engine>) -> std::io::Result<Self> {
        let layout = Layout::new(&settings.data_dir, settings.engine_data_dir());
        layout.create()?;
        let clone_mode = if settings.force_copy {
            CloneMode::Copy
        } else {
            CloneMode::detect(&layout.tmp())?
        };
        Ok(Self {
            settings,
            layout,
            engine,
            clone_mode,
            metrics: crate::metrics::Metrics::new(),
            image: OnceCell::new(),
        })
    }

    /// The image's server flavour and mysql user, probed once.
    pub async fn image(&self) -> Result<&ImageInfo, EngineError> {
        self.image
            .get_or_try_init(|| async {
                let name = format!("{}probe-{}", self.settings.container_prefix, std::process::id());
                let info = ImageInfo::probe(
                    self.engine.as_ref(),
                    &self.settings.image,
                    &name,
                    self.labels("probe"),
                )
                .await?;
                tracing::info!(image = %self.settings.image, version = %info.version, "image probed");
                Ok(info)
            })
            .await
    }

    /// The labels that mark a container as this dolly's.
    pub fn ownership_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (LABEL_MANAGED_BY.to_owned(), "dolly".to_owned()),
            (
                LABEL_ROOT.to_owned(),
                self.settings.data_dir.display().to_string(),
            ),
        ])
    }

    /// Ownership labels, the configured extra labels and the kind.
    pub fn labels(&self, kind: &str) -> BTreeMap<String, String> {
        let mut labels = self.settings.labels.clone();
        labels.extend(self.ownership_labels());
        labels.insert(LABEL_KIND.to_owned(), kind.to_owned());
        labels
    }
}

/// When dollyd itself runs in a container with the engine's socket, the
/// data folder's path as the engine sees it differs from ours: read it from
/// our own container's mounts (unless `host_data_dir` is set).
pub async fn discover_host_data_dir(settings: &mut crate::config::Settings, engine: &dyn Engine) {
    if settings.host_data_dir.is_some() || !std::path::Path::new("/.dockerenv").exists() {
        return;
    }
    let me = gethostname::gethostname().to_string_lossy().into_owned();
    let Ok(Some(inspection)) = engine.inspect_raw(&me).await else {
        tracing::warn!("running in a container that the engine does not know by its host name; set DOLLY_HOST_DATA_DIR if bind mounts fail");
        return;
    };
    let mounts = inspection["Mounts"].as_array().cloned().unwrap_or_default();
    let best = mounts
        .iter()
        .filter_map(|m| Some((m["Destination"].as_str()?, m["Source"].as_str()?)))
        .filter(|(dest, _)| settings.data_dir.starts_with(dest))
        .max_by_key(|(dest, _)| dest.len());
    if let Some((dest, source)) = best {
        if let Ok(rest) = settings.data_dir.strip_prefix(dest) {
            let host = std::path::Path::new(source).join(rest);
            if host != settings.data_dir {
                tracing::info!(host_data_dir = %host.display(), "data folder as the engine sees it, from our own container's mounts");
                settings.host_data_dir = Some(host);
            }
        }
    }
}
