//! What every operation needs: settings, the store, the engine.

use std::collections::BTreeMap;
use std::sync::Arc;

use dolly_engine::{Engine, EngineError};
use tokio::sync::OnceCell;

use crate::clone::CloneMode;
use crate::config::Settings;
use crate::dbserver::ImageInfo;
use crate::instance::{MysqlProber, Prober};
use crate::store::{AsyncStore, Store, StoreError};

/// Label put on every container dolly creates.
pub const LABEL_MANAGED_BY: &str = "managed-by";
/// Which data folder a container belongs to: several dollyds (tests) can
/// share one engine without seeing each other's containers.
pub const LABEL_ROOT: &str = "dolly.root";
/// `instance`, `import` or `probe`.
pub const LABEL_KIND: &str = "dolly.kind";

/// What every domain operation shares: settings, the data folder's store,
/// the engine. Its parts are private to core: the server reaches the domain
/// through [`crate::instance::Manager`] (templates and instances alike) and
/// the read-only accessors below, never the store or the engine.
pub struct Context {
    pub(crate) settings: Settings,
    pub(crate) store: AsyncStore,
    pub(crate) engine: Arc<dyn Engine>,
    pub(crate) clone_mode: CloneMode,
    /// How `instance_max_disk` is enforced here.
    pub(crate) disk_limit: crate::disk_limit::DiskLimit,
    pub(crate) metrics: crate::metrics::Metrics,
    /// Asks a server whether it accepts credentials (MySQL's protocol;
    /// tests over a fake engine swap it).
    pub(crate) prober: Arc<dyn Prober>,
    /// Where domain events go (webhooks subscribe at start).
    pub(crate) events: crate::events::Events,
    image: OnceCell<ImageInfo>,
    /// The forwarders' relay binary as the engine sees it, once installed
    /// in the data folder (`Manager::forward_binary`).
    pub(crate) forward_binary: OnceCell<std::path::PathBuf>,
}

impl Context {
    /// Opens the data folder and detects how it clones. Blocking: call it
    /// before serving, or from a blocking thread.
    pub fn new(settings: Settings, engine: Arc<dyn Engine>) -> Result<Self, StoreError> {
        let store = Store::open(&settings.data_dir, settings.engine_data_dir())?;
        let clone_mode = if settings.force_copy {
            CloneMode::Copy
        } else {
            store.detect_clone_mode()?
        };
        let filesystem = store.detect_filesystem()?;
        let disk_limit = filesystem.enforcement(settings.instance_max_disk);
        if disk_limit != crate::disk_limit::DiskLimit::Off {
            if filesystem == crate::disk_limit::Filesystem::BtrfsWithQuotas {
                crate::disk_limit::clear_stale_qgroups(store.root());
            }
            if let Some(bytes) = settings.instance_max_disk {
                let said = filesystem.describe(store.root(), bytes);
                match disk_limit {
                    crate::disk_limit::DiskLimit::Subvolume(_) => tracing::info!("{said}"),
                    _ => tracing::warn!("{said}"),
                }
            }
        }
        Ok(Self {
            settings,
            store: AsyncStore::new(store),
            engine,
            clone_mode,
            disk_limit,
            metrics: crate::metrics::Metrics::new(),
            prober: Arc::new(MysqlProber),
            events: crate::events::Events::default(),
            image: OnceCell::new(),
            forward_binary: OnceCell::new(),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// How datadirs are cloned here (reflinks or copies).
    pub fn clone_mode(&self) -> CloneMode {
        self.clone_mode
    }

    /// Counters of operations, for `/metrics`.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    /// Domain events (webhooks subscribe at start).
    pub fn events(&self) -> &crate::events::Events {
        &self.events
    }

    /// The folder `dollyd update` reads dumps from.
    pub fn dumps_dir(&self) -> std::path::PathBuf {
        self.store.dumps()
    }

    /// Takes the data folder's lock for `purpose` (`serve`, `reap`): one
    /// dollyd serves a data folder at a time.
    pub fn lock_folder(&self, purpose: &str) -> Result<crate::store::FolderLock, StoreError> {
        self.store.blocking().lock_folder(purpose)
    }

    /// Whether the engine answers.
    pub async fn ping_engine(&self) -> Result<(), EngineError> {
        self.engine.ping().await
    }

    /// Whether the data folder takes a write (readiness).
    pub async fn probe_writable(&self) -> Result<(), StoreError> {
        self.store.probe_writable().await
    }

    /// The data folder's store (integration tests only).
    #[cfg(feature = "testing")]
    pub fn store(&self) -> &Store {
        self.store.blocking()
    }

    /// The container engine (integration tests only).
    #[cfg(feature = "testing")]
    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }

    /// The same context with another prober (tests over a fake engine).
    pub fn with_prober(mut self, prober: Arc<dyn Prober>) -> Self {
        self.prober = prober;
        self
    }

    /// The image's server flavour and mysql user: probed once per image id
    /// (a container run), then read from the store's cache.
    pub async fn image(&self) -> Result<&ImageInfo, EngineError> {
        self.image
            .get_or_try_init(|| async {
                let id = self.engine.ensure_image(&self.settings.image).await?;
                let key = crate::store::CacheKey::new(&id, &["probe".to_owned()]);
                match self.store.image_probe::<ImageInfo>(&key).await {
                    Ok(Some(info)) if info.id == id => return Ok(info),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "the image probe's cache is unreadable: probing again"),
                }
                let name = format!("{}probe-{}", self.settings.container_prefix, std::process::id());
                let info = ImageInfo::probe(
                    self.engine.as_ref(),
                    &self.settings.image,
                    &name,
                    self.labels("probe"),
                )
                .await?;
                tracing::info!(image = %self.settings.image, version = %info.version, "image probed");
                if let Err(e) = self.store.write_image_probe(&key, &info).await {
                    tracing::warn!(error = %e, "cannot keep the image probe's result");
                }
                Ok(info)
            })
            .await
    }

    /// Sets what the image probe would find (tests over a fake engine).
    pub fn set_image(&self, info: ImageInfo) {
        let _ = self.image.set(info);
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

/// Runs blocking I/O (a datadir walk, a file write) on the blocking pool;
/// a task that panicked or was cancelled is an I/O error.
pub async fn blocking_io<T, F>(f: F) -> std::io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> std::io::Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|r| r)
}
