//! Templates: versioned read-only datadirs imported from dumps.
//!
//! Invariants (the store enforces the first three):
//! - a version folder under `templates/NAME/` is complete: imports happen in
//!   `tmp/` and are renamed into place only after a clean shutdown;
//! - `current` is switched with a rename, so readers see the old or the new
//!   version, never neither;
//! - at most one import per template runs at a time (`locks/NAME.lock`);
//! - running instances are never touched: their datadirs are clones, which
//!   share no mutable state with the version they came from (a reflink clone
//!   shares blocks copy-on-write, so removing the version is safe);
//! - a version is removed only when the versions in use are known: an error
//!   listing them skips the cleanup.

mod import;
pub mod init_cache;
mod load;
mod masking;
mod physical;
mod progress;
mod scrub;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use dolly_engine::EngineError;
use dolly_names::{TemplateName, VersionName};
use tracing::{error, info, info_span, warn, Instrument};

use crate::context::Context;
use crate::dump::{self, DumpError};
use crate::store::StoreError;
pub use crate::store::{ImportProgress, LastImport, VersionMeta};

pub use import::{import, import_with, publish_datadir};

/// How `dollyd update` imports.
#[derive(Debug, Clone, Default)]
pub struct UpdateOptions {
    /// Import even when the dump, the post scripts and the image are those
    /// of the current version (`dollyd update --force`).
    pub force: bool,
    /// Parallel sessions (default: the `import_jobs` setting); 1 with
    /// `defer_indexes` off streams the dump as it is into one client.
    pub jobs: Option<usize>,
    /// Secondary keys after each table's data, foreign keys at the end
    /// (default: on).
    pub defer_indexes: Option<bool>,
    /// Start from a copy of the image's initialised system datadir, made
    /// once per image id, instead of initialising one per import
    /// (default: on).
    pub cached_init: Option<bool>,
    /// One large table's rows over every session where their order cannot
    /// matter (default: on; off: rows parallel by table only).
    pub spread_rows: Option<bool>,
    /// Literal rows sent to the server as `LOAD DATA` files where it stores
    /// the same values (default: on where the image supports it; see
    /// [`crate::dump::split::load_data`]).
    pub load_data: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("another update of template '{0}' is running (lock {1})")]
    Busy(TemplateName, PathBuf),
    #[error(transparent)]
    Dump(#[from] DumpError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("dump {dump} failed: {message}")]
    Server { dump: String, message: String },
    #[error("post-import script {script} failed: {message}")]
    PostScript { script: String, message: String },
    #[error("dump {0} is empty: it created no tables")]
    Empty(String),
    #[error("dump {0} is truncated: mysqldump's closing \"-- Dump completed\" line is missing")]
    Truncated(String),
    #[error("dump {0} did not finish within {1:?} (import_timeout)")]
    Timeout(String, Duration),
    #[error("only {} free in the data folder, below min_free_disk ({})", bytesize::ByteSize(*.free), bytesize::ByteSize(*.min))]
    DiskFull { free: u64, min: u64 },
    #[error("dump {dump}: {source}")]
    Mask {
        dump: String,
        #[source]
        source: crate::mask::MaskError,
    },
    #[error("cannot remove what the post scripts left behind: {0}")]
    Scrub(String),
    #[error("the import server did not start: {0}")]
    ServerStart(String),
    #[error("backup {dump} comes from server {backup} and the image runs {server}: a physical backup is restored only by the same major version (make it with a server of the image's major version, or set `image` to one of the backup's)")]
    VersionMismatch {
        dump: String,
        backup: String,
        server: String,
    },
    #[error("backup {dump} cannot be restored with image {image}: {reason}")]
    PhysicalUnsupported {
        dump: String,
        image: String,
        reason: String,
    },
    #[error("backup {dump} failed: {message}")]
    Backup { dump: String, message: String },
    #[error(transparent)]
    Store(StoreError),
    #[error("cannot {what}: {source}")]
    Datadir {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl ImportError {
    /// The error as members see it (the API's last import, the web UI,
    /// the CLI, the `import.failed` webhook): what the server or a tool
    /// said with every quoted value removed ([`crate::mask::redact_values`]),
    /// so that a failed import shows the dump, the line, the error code and
    /// class, never a row's values. dollyd's log has the full message.
    pub fn redacted(&self) -> String {
        use crate::mask::redact_values;
        match self {
            ImportError::Server { dump, message } => {
                format!("dump {dump} failed: {}", redact_values(message))
            }
            ImportError::PostScript { script, message } => format!(
                "post-import script {script} failed: {}",
                redact_values(message)
            ),
            ImportError::ServerStart(m) => {
                format!("the import server did not start: {}", redact_values(m))
            }
            ImportError::Backup { dump, message } => {
                format!("backup {dump} failed: {}", redact_values(message))
            }
            ImportError::Scrub(m) => format!(
                "cannot remove what the post scripts left behind: {}",
                redact_values(m)
            ),
            other => other.to_string(),
        }
    }
}

impl From<StoreError> for ImportError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Locked(path) => {
                // The template's name is in the lock's file name.
                let name = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .and_then(|s| TemplateName::parse(s).ok());
                match name {
                    Some(t) => ImportError::Busy(t, path),
                    None => ImportError::Store(StoreError::Locked(path)),
                }
            }
            other => ImportError::Store(other),
        }
    }
}

/// The live version of `t`, if it has one.
pub async fn current_version(
    ctx: &Context,
    t: &TemplateName,
) -> Result<Option<VersionName>, StoreError> {
    let t = t.clone();
    ctx.store.current_version(&t).await
}

/// Templates that have a live version, sorted.
pub async fn list(ctx: &Context) -> Result<Vec<TemplateName>, StoreError> {
    ctx.store.live_templates().await
}

/// Every template with a folder: published, importing for the first time,
/// or whose only import failed. Sorted.
pub async fn list_all(ctx: &Context) -> Result<Vec<TemplateName>, StoreError> {
    ctx.store.template_names().await
}

/// The metadata of one version.
pub async fn version_meta(
    ctx: &Context,
    t: &TemplateName,
    v: &VersionName,
) -> Result<Option<VersionMeta>, StoreError> {
    let (t, v) = (t.clone(), v.clone());
    ctx.store.version_meta(&t, &v).await
}

/// What is known of a template: its versions, its imports.
#[derive(Debug, Clone)]
pub struct Overview {
    pub name: TemplateName,
    pub current_version: Option<VersionName>,
    /// Newest first.
    pub versions: Vec<VersionMeta>,
    /// An import of this template runs now.
    pub importing: bool,
    pub last_import: Option<LastImport>,
    /// The running import's progress (`importing` is true).
    pub progress: Option<ImportProgress>,
}

/// A template's overview, read from the store.
pub async fn describe(ctx: &Context, t: &TemplateName) -> Result<Overview, StoreError> {
    let t = t.clone();
    ctx.store
        .run(move |s| {
            let current_version = s.current_version(&t)?;
            let mut versions = s.versions(&t)?;
            versions.reverse();
            Ok(Overview {
                last_import: s.last_import(&t)?,
                progress: s.import_progress(&t).unwrap_or_default(),
                importing: s.is_importing(&t),
                name: t,
                current_version,
                versions,
            })
        })
        .await
}

/// The outcome of one dump's import.
#[derive(Debug)]
pub struct ImportOutcome {
    pub template: TemplateName,
    pub result: Result<VersionMeta, ImportError>,
    /// Nothing was imported: the current version came from the same dump,
    /// post scripts and image (`result` holds it).
    pub unchanged: bool,
}

/// Who knows which versions of a template are still used (instances and
/// their snapshots come from them): the instance manager. A trait, so that
/// templates do not depend on instances.
#[async_trait::async_trait]
pub trait VersionsInUse: Send + Sync {
    /// An error when that cannot be known for sure.
    async fn versions_in_use(&self, t: &TemplateName) -> Result<HashSet<VersionName>, StoreError>;
}

/// For a data folder with no instances (the benchmark, first imports):
/// no version is in use.
pub struct NothingInUse;

#[async_trait::async_trait]
impl VersionsInUse for NothingInUse {
    async fn versions_in_use(&self, _t: &TemplateName) -> Result<HashSet<VersionName>, StoreError> {
        Ok(HashSet::new())
    }
}

/// `dollyd update [NAME...]`: imports every dump (or the named ones), each
/// into a new version. Failures do not stop the other dumps. Old versions
/// are removed only when `in_use` answers.
pub async fn update(
    ctx: &Context,
    only: &[TemplateName],
    in_use: &dyn VersionsInUse,
) -> Result<Vec<ImportOutcome>, ImportError> {
    update_with(ctx, only, in_use, &UpdateOptions::default()).await
}

/// [`update`] with options: `--force`, and the benchmark's variants.
pub async fn update_with(
    ctx: &Context,
    only: &[TemplateName],
    in_use: &dyn VersionsInUse,
    opts: &UpdateOptions,
) -> Result<Vec<ImportOutcome>, ImportError> {
    clean_interrupted_imports(ctx).await;
    let dir = ctx.store.dumps();
    let (dumps, refused) = tokio::task::spawn_blocking(move || dump::discover_all(&dir))
        .await
        .map_err(|e| ImportError::Datadir {
            what: "list the dumps",
            source: std::io::Error::other(e),
        })??;
    for t in only {
        if !dumps.iter().any(|d| &d.template == t) && !refused.iter().any(|r| &r.template == t) {
            return Err(DumpError::NotFound(t.clone()).into());
        }
    }
    let mut outcomes = Vec::new();
    // A FIFO, a socket or a device where a dump should be: refused, named,
    // and the other dumps import.
    for r in refused
        .into_iter()
        .filter(|r| only.is_empty() || only.contains(&r.template))
    {
        let e = r.error();
        error!(template = %r.template, error = %e, "import refused");
        let last = LastImport {
            ok: false,
            finished_at: chrono::Utc::now(),
            dump: r.path.display().to_string(),
            message: e.to_string(),
            version: None,
        };
        let t = r.template.clone();
        if let Err(e) = ctx.store.write_last_import(&t, &last).await {
            warn!(error = %e, "cannot record the import's outcome");
        }
        let outcome = ImportOutcome {
            template: r.template,
            result: Err(e.into()),
            unchanged: false,
        };
        emit_outcome(ctx, &outcome);
        outcomes.push(outcome);
    }
    for d in dumps
        .into_iter()
        .filter(|d| only.is_empty() || only.contains(&d.template))
    {
        let span = info_span!("import", template = %d.template);
        let result = import_with(ctx, &d, opts).instrument(span.clone()).await;
        let unchanged = matches!(result, Ok((_, true)));
        let result = result.map(|(meta, _)| meta);
        match &result {
            Ok(meta) if unchanged => {
                let _enter = span.enter();
                info!(version = %meta.version, "unchanged");
            }
            Ok(meta) => {
                remove_unused_versions(ctx, &d.template, in_use)
                    .instrument(span.clone())
                    .await;
                let _enter = span.enter();
                info!(version = %meta.version, seconds = meta.import_seconds, "import finished");
            }
            Err(e) => {
                let _enter = span.enter();
                error!(error = %e, "import failed");
            }
        }
        let outcome = ImportOutcome {
            template: d.template,
            result,
            unchanged,
        };
        emit_outcome(ctx, &outcome);
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// `import.succeeded` or `import.failed` (an unchanged dump is no event).
/// Receivers are not admins: a failure's message has no row values.
fn emit_outcome(ctx: &Context, o: &ImportOutcome) {
    use crate::events::{Event, EventKind};
    let event = match &o.result {
        Ok(_) if o.unchanged => return,
        Ok(m) => Event {
            version: Some(m.version.to_string()),
            ..Event::new(EventKind::ImportSucceeded, &o.template)
        },
        Err(e) => Event::new(EventKind::ImportFailed, &o.template).message(e.redacted()),
    };
    ctx.events.emit(event);
}

/// What a killed `dollyd update` left (its import container, its datadir
/// in `tmp/`), for every template no live update holds: `serve` sorts it
/// out at its start, and so does every update. A template whose import
/// lock is held (a live update) is left alone; the lock is held while its
/// leftovers go.
pub async fn clean_interrupted_imports(ctx: &Context) {
    let mut templates: Vec<TemplateName> = match ctx.engine.list(&ctx.labels("import")).await {
        Ok(list) => list
            .iter()
            .filter_map(|c| c.labels.get("dolly.template"))
            .filter_map(|t| TemplateName::parse(t).ok())
            .collect(),
        Err(e) => {
            warn!(error = %e, "cannot list import containers; leftovers of killed updates stay");
            Vec::new()
        }
    };
    match ctx.store.import_scratch_templates().await {
        Ok(more) => templates.extend(more),
        Err(e) => warn!(error = %e, "cannot list tmp/; leftovers of killed updates stay"),
    }
    templates.sort();
    templates.dedup();
    for t in templates {
        let Ok(lock) = ctx.store.lock_import(&t).await else {
            continue; // a live update of t
        };
        let container = format!("{}{}._import", ctx.settings.container_prefix, t);
        match ctx.engine.remove(&container).await {
            Ok(()) => {}
            Err(e) => {
                warn!(error = %e, container, "cannot remove an interrupted import's container")
            }
        }
        match ctx.store.remove_import_scratch(&t, lock).await {
            Ok(removed) => {
                for p in removed {
                    warn!(template = %t, path = %p.display(), "removed an interrupted import's datadir");
                }
            }
            Err(e) => {
                warn!(template = %t, error = %e, "cannot remove an interrupted import's datadir")
            }
        }
    }
}

/// Removes versions of `t` beyond `keep_versions` that nothing uses. Any
/// doubt (the versions in use cannot be listed, a version's metadata is
/// damaged) keeps them all, and says so.
pub async fn remove_unused_versions(ctx: &Context, t: &TemplateName, in_use: &dyn VersionsInUse) {
    let used = match in_use.versions_in_use(t).await {
        Ok(used) => used,
        Err(e) => {
            warn!(error = %e, "cannot tell which versions instances use; keeping every version");
            return;
        }
    };
    match ctx
        .store
        .remove_unused_versions(t, ctx.settings.keep_versions, &used)
        .await
    {
        Ok(removed) => {
            for v in removed {
                info!(template = %t, version = %v, "removed unused template version");
            }
        }
        Err(e) => warn!(error = %e, "cannot remove old versions; keeping them"),
    }
}
