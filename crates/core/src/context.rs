//! What every operation needs: settings, the data folder, the engine.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::clone::CloneMode;
use crate::config::Settings;
use crate::dbserver::ImageInfo;
use crate::layout::Layout;
use dolly_engine::{Engine, EngineError};

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
