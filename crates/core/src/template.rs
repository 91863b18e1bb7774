//! Templates: versioned read-only datadirs imported from dumps.
//!
//! Invariants:
//! - a version folder under `templates/NAME/` is complete: imports happen in
//!   `tmp/` and are renamed into place only after a clean shutdown;
//! - `current` is switched with a rename, so readers see the old or the new
//!   version, never neither;
//! - at most one import per template runs at a time (`locks/NAME.lock`);
//! - running instances are never touched: their datadirs are clones, which
//!   share no mutable state with the version they came from (a reflink clone
//!   shares blocks copy-on-write, so removing the version is safe).

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use dolly_types::v1;
use dolly_types::{TemplateName, VersionName};
use serde::{Deserialize, Serialize};
use tracing::{error, info, info_span, warn, Instrument};

use crate::clone::{self, own_tree, remove_tree};
use crate::context::Context;
use crate::dbserver::{self, ImageInfo};
use crate::dump::{self, Dump, DumpError};
use crate::layout::list_names;
use dolly_engine::EngineError;

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
    #[error("dump {0} is empty: it created no tables")]
    Empty(String),
    #[error("dump {0} is truncated: mysqldump's closing \"-- Dump completed\" line is missing")]
    Truncated(String),
    #[error("dump {0} did not finish within {1:?} (import_timeout)")]
    Timeout(String, Duration),
    #[error("only {} free in the data folder, below min_free_disk ({})", bytesize::ByteSize(*.free), bytesize::ByteSize(*.min))]
    DiskFull { free: u64, min: u64 },
    #[error("the import server did not start: {0}")]
    ServerStart(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

fn io_ctx(context: impl Into<String>) -> impl FnOnce(io::Error) -> ImportError {
    let context = context.into();
    move |source| ImportError::Io { context, source }
}

/// `templates/NAME/VERSION.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionMeta {
    pub version: VersionName,
    pub created_at: DateTime<Utc>,
    pub source_dump: String,
    pub database: String,
    pub import_seconds: f64,
    pub dump_bytes: u64,
    pub size_bytes: u64,
    pub image: String,
    pub server_version: String,
}

/// `templates/NAME/last-import.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LastImport {
    pub ok: bool,
    pub finished_at: DateTime<Utc>,
    pub dump: String,
    pub message: String,
    pub version: Option<VersionName>,
}

/// Held while a template imports; released on drop (also by a crash).
pub struct ImportLock {
    _file: File,
}

impl ImportLock {
    pub fn try_acquire(ctx: &Context, t: &TemplateName) -> Result<Self, ImportError> {
        let path = ctx.layout.import_lock(t);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_ctx(format!("open {}", path.display())))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(fs::TryLockError::WouldBlock) => Err(ImportError::Busy(t.clone(), path)),
            Err(fs::TryLockError::Error(e)) => Err(io_ctx(format!("lock {}", path.display()))(e)),
        }
    }
}

/// An import of `t` is running (in this process or another).
pub fn is_importing(ctx: &Context, t: &TemplateName) -> bool {
    let path = ctx.layout.import_lock(t);
    match File::options().write(true).open(&path) {
        Ok(f) => matches!(f.try_lock(), Err(fs::TryLockError::WouldBlock)),
        Err(_) => false,
    }
}

/// The live version of `t`, if it has one.
pub fn current_version(ctx: &Context, t: &TemplateName) -> Option<VersionName> {
    let target = fs::read_link(ctx.layout.template_current(t)).ok()?;
    VersionName::parse(target.file_name()?.to_str()?).ok()
}

/// Templates that have a live version, sorted.
pub fn list(ctx: &Context) -> io::Result<Vec<TemplateName>> {
    let names = list_names(&ctx.layout.templates(), |s| TemplateName::parse(s).ok())?;
    Ok(names
        .into_iter()
        .filter(|t| current_version(ctx, t).is_some())
        .collect())
}

/// Every template with a folder: published, importing for the first time,
/// or whose only import failed. Sorted.
pub fn list_all(ctx: &Context) -> io::Result<Vec<TemplateName>> {
    list_names(&ctx.layout.templates(), |s| TemplateName::parse(s).ok())
}

/// Published versions of `t`, oldest first.
pub fn versions(ctx: &Context, t: &TemplateName) -> io::Result<Vec<VersionMeta>> {
    let dir = ctx.layout.template(t);
    let names = list_names(&dir, |s| {
        s.strip_suffix(".json")
            .and_then(|v| VersionName::parse(v).ok())
    })?;
    Ok(names
        .into_iter()
        .filter(|v| ctx.layout.template_version(t, v).is_dir())
        .filter_map(|v| read_json(&ctx.layout.template_version_meta(t, &v)))
        .collect())
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let text = fs::read(path).ok()?;
    serde_json::from_slice(&text).ok()
}

/// The API's view of a template.
pub fn describe(ctx: &Context, t: &TemplateName) -> io::Result<v1::Template> {
    let current = current_version(ctx, t);
    let mut versions: Vec<v1::TemplateVersion> = versions(ctx, t)?
        .into_iter()
        .map(|m| v1::TemplateVersion {
            current: Some(&m.version) == current.as_ref(),
            version: m.version,
            created_at: m.created_at,
            size_bytes: m.size_bytes,
            source_dump: m.source_dump,
            database: m.database,
            import_seconds: m.import_seconds,
            dump_bytes: m.dump_bytes,
        })
        .collect();
    versions.reverse();
    let last_import =
        read_json::<LastImport>(&ctx.layout.template_last_import(t)).map(|l| v1::ImportResult {
            ok: l.ok,
            finished_at: l.finished_at,
            dump: l.dump,
            message: l.message,
            version: l.version,
        });
    Ok(v1::Template {
        name: t.clone(),
        current_version: current,
        versions,
        importing: is_importing(ctx, t),
        last_import,
    })
}

/// The metadata of one version.
pub fn version_meta(ctx: &Context, t: &TemplateName, v: &VersionName) -> Option<VersionMeta> {
    read_json(&ctx.layout.template_version_meta(t, v))
}

/// Removes versions of `t` beyond the newest `keep_versions`, except the
/// current one and those instances or snapshots come from. Returns the
/// versions removed.
pub fn remove_unused_versions(
    ctx: &Context,
    t: &TemplateName,
    in_use: &HashSet<VersionName>,
) -> io::Result<Vec<VersionName>> {
    let current = current_version(ctx, t);
    let all = versions(ctx, t)?;
    let newest: HashSet<VersionName> = all
        .iter()
        .rev()
        .take(ctx.settings.keep_versions)
        .map(|m| m.version.clone())
        .collect();
    let mut removed = Vec::new();
    for meta in all {
        let v = meta.version;
        if Some(&v) == current.as_ref() || in_use.contains(&v) || newest.contains(&v) {
            continue;
        }
        // Move out of sight first, so nobody resolves a half-removed version.
        let trash = ctx.layout.tmp().join(format!("trash.{t}.{v}"));
        fs::rename(ctx.layout.template_version(t, &v), &trash)?;
        let _ = fs::remove_file(ctx.layout.template_version_meta(t, &v));
        remove_tree(&trash)?;
        info!(template = %t, version = %v, "removed unused template version");
        removed.push(v);
    }
    Ok(removed)
}

/// The outcome of one dump's import.
#[derive(Debug)]
pub struct ImportOutcome {
    pub template: TemplateName,
    pub result: Result<VersionMeta, ImportError>,
}

/// `dollyd update [NAME...]`: imports every dump (or the named ones), each
/// into a new version. Failures do not stop the other dumps.
pub async fn update(
    ctx: &Context,
    only: &[TemplateName],
    in_use: impl Fn(&TemplateName) -> HashSet<VersionName>,
) -> Result<Vec<ImportOutcome>, ImportError> {
    let dumps = dump::discover(&ctx.layout.dumps())?;
    for t in only {
        if !dumps.iter().any(|d| &d.template == t) {
            return Err(DumpError::NotFound(t.clone()).into());
        }
    }
    let mut outcomes = Vec::new();
    for d in dumps
        .into_iter()
        .filter(|d| only.is_empty() || only.contains(&d.template))
    {
        let span = info_span!("import", template = %d.template);
        let result = import(ctx, &d).instrument(span.clone()).await;
        let _enter = span.enter();
        match &result {
            Ok(meta) => {
                if let Err(e) = remove_unused_versions(ctx, &d.template, &in_use(&d.template)) {
                    warn!(error = %e, "cannot remove old versions");
                }
                info!(version = %meta.version, seconds = meta.import_seconds, "import finished");
            }
            Err(e) => error!(error = %e, "import failed"),
        }
        outcomes.push(ImportOutcome {
            template: d.template,
            result,
        });
    }
    Ok(outcomes)
}

/// Imports one dump into a new version of its template and publishes it.
pub async fn import(ctx: &Context, d: &Dump) -> Result<VersionMeta, ImportError> {
    let t = &d.template;
    let _lock = ImportLock::try_acquire(ctx, t)?;
    let (free, _) = crate::instance::filesystem_space(ctx.layout.root());
    if free < ctx.settings.min_free_disk {
        return Err(ImportError::DiskFull {
            free,
            min: ctx.settings.min_free_disk,
        });
    }
    let image = ctx.image().await?.clone();
    let version = new_version_name(ctx, t);
    let work = ctx.layout.import_work(t, &version);
    let container = format!("{}{}._import", ctx.settings.container_prefix, t);
    info!(dump = %d.path.display(), version = %version, "import started");

    let started = Instant::now();
    let result = run_import(ctx, d, &image, &work, &container).await;
    // Whatever happened, the import server goes.
    if let Err(e) = ctx.engine.remove(&container).await {
        warn!(error = %e, container, "cannot remove the import container");
    }
    let outcome = match result {
        Ok((database, tables)) => {
            let origin = Origin {
                source: d.path.display().to_string(),
                database,
                elapsed: started.elapsed(),
                dump_bytes: d.input_bytes(),
            };
            publish(ctx, t, &image, &version, &work, origin).inspect(|_| log_tables(&tables))
        }
        Err(e) => Err(e),
    };
    if outcome.is_err() {
        if let Err(e) = remove_tree(&work) {
            warn!(error = %e, "cannot remove the failed import's datadir");
        }
    }
    let last = LastImport {
        ok: outcome.is_ok(),
        finished_at: Utc::now(),
        dump: d.path.display().to_string(),
        message: match &outcome {
            Ok(m) => format!("imported in {:.1} s", m.import_seconds),
            Err(e) => e.to_string(),
        },
        version: outcome.as_ref().ok().map(|m| m.version.clone()),
    };
    let dir = ctx.layout.template(t);
    if fs::create_dir_all(&dir).is_ok() {
        let _ = write_json_atomic(
            &ctx.layout.template_last_import(t),
            &last,
            &ctx.layout.tmp(),
        );
    }
    outcome
}

fn new_version_name(ctx: &Context, t: &TemplateName) -> VersionName {
    let base = Utc::now().format("%Y%m%dt%H%M%Sz").to_string();
    let mut candidate = base.clone();
    let mut n = 1;
    loop {
        if let Ok(v) = VersionName::parse(&candidate) {
            if !ctx.layout.template_version(t, &v).exists()
                && !ctx.layout.import_work(t, &v).exists()
            {
                return v;
            }
        }
        n += 1;
        candidate = format!("{base}-{n}");
    }
}

type TableRows = Vec<(String, String, u64)>;

async fn run_import(
    ctx: &Context,
    d: &Dump,
    image: &ImageInfo,
    work: &Path,
    container: &str,
) -> Result<(String, TableRows), ImportError> {
    let dump_name = d.path.display().to_string();
    fs::create_dir_all(work).map_err(io_ctx(format!("create {}", work.display())))?;
    own_tree(work, image.owner, true).map_err(io_ctx("chown import datadir"))?;
    // A container left by a crashed import.
    ctx.engine.remove(container).await?;
    let server = dbserver::ServerContainer {
        name: container.to_owned(),
        image: ctx.settings.image.clone(),
        datadir: ctx.layout.for_engine(work),
        labels: {
            let mut l = ctx.labels("import");
            l.insert("dolly.template".into(), d.template.to_string());
            l
        },
    };
    let spec = image.import_spec(server, ctx.settings.import_buffer_pool);
    ctx.engine.run(&spec).await?;
    let up = ctx
        .engine
        .exec(container, image.wait_socket_command(120), None, None)
        .await?;
    if up.exit_code != 0 {
        let logs = ctx
            .engine
            .logs_tail(container, 30)
            .await
            .unwrap_or_default();
        return Err(ImportError::ServerStart(format!(
            "no answer on its socket within 120 s (exit {}); server log: {}",
            up.exit_code,
            logs.trim()
        )));
    }

    // Stream the dump: a thread decompresses, the engine feeds the client.
    let read = Arc::new(AtomicU64::new(0));
    let mut reader = d.open(Arc::clone(&read));
    let scan = reader.scan();
    let prepare = dbserver::prepare_sql(image.flavor, &ctx.settings.database);
    let out = ctx
        .engine
        .exec(
            container,
            image.client_command(&["-e", &prepare]),
            None,
            None,
        )
        .await?;
    if out.exit_code != 0 {
        return Err(ImportError::ServerStart(format!(
            "preparing the database failed (exit {}): {}",
            out.exit_code,
            out.stderr.trim()
        )));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<bytes::Bytes>>(8);
    let producer = tokio::task::spawn_blocking(move || loop {
        let mut buf = vec![0u8; 1 << 20];
        match reader.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                buf.truncate(n);
                if tx.blocking_send(Ok(bytes::Bytes::from(buf))).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let stdin = Box::pin(tokio_util::io::StreamReader::new(stream));

    let total = d.input_bytes();
    let progress = tokio::spawn(
        report_progress(Arc::clone(&read), total, dump_name.clone()).in_current_span(),
    );
    // A dump with no `USE` loads into the configured database.
    let client = ctx.engine.exec(
        container,
        image.client_command(&[&ctx.settings.database]),
        Some(image.user()),
        Some(stdin),
    );
    let timeout = ctx.settings.import_timeout;
    let out = tokio::time::timeout(timeout, client).await;
    progress.abort();
    let _ = producer.await;
    let out = match out {
        Ok(r) => r?,
        Err(_) => return Err(ImportError::Timeout(dump_name, timeout)),
    };
    // A broken pipe only means the client stopped reading: its own error
    // says why. Anything else (a corrupt or unreadable file) comes first.
    if let Some(e) = out.stdin_error.filter(|e| !e.contains("Broken pipe")) {
        return Err(ImportError::Server {
            dump: dump_name,
            message: format!("cannot read the dump: {e}"),
        });
    }
    if out.exit_code != 0 {
        let message = out.stderr.trim().lines().last().unwrap_or("").to_owned();
        let message = if message.is_empty() {
            format!("the client exited with status {}", out.exit_code)
        } else {
            message
        };
        return Err(ImportError::Server {
            dump: dump_name,
            message,
        });
    }
    let scan = scan.lock().map(|s| s.clone()).unwrap_or_default();
    if scan.looks_truncated() {
        return Err(ImportError::Truncated(dump_name));
    }

    // Which database do instances report, and what was loaded.
    let tables = query_rows(ctx, image, container).await?;
    if tables.is_empty() {
        return Err(ImportError::Empty(dump_name));
    }
    let default_db = ctx.settings.database.clone();
    let database = match scan.first_database {
        Some(db) if db != default_db && tables.iter().any(|(s, _, _)| *s == db) => {
            if !tables.iter().any(|(s, _, _)| *s == default_db) {
                let drop = format!("DROP DATABASE IF EXISTS `{default_db}`");
                ctx.engine
                    .exec(container, image.client_command(&["-e", &drop]), None, None)
                    .await?;
            }
            db
        }
        _ => default_db,
    };

    // Clean, slow shutdown (the server runs with innodb_fast_shutdown=0).
    ctx.engine.stop(container, 3600).await?;
    let code = ctx.engine.wait(container).await?;
    if code != 0 {
        let logs = ctx
            .engine
            .logs_tail(container, 30)
            .await
            .unwrap_or_default();
        return Err(ImportError::ServerStart(format!(
            "the import server exited with status {code} at shutdown: {logs}"
        )));
    }
    Ok((database, tables))
}

async fn query_rows(
    ctx: &Context,
    image: &ImageInfo,
    container: &str,
) -> Result<TableRows, ImportError> {
    let sql =
        "SELECT table_schema, table_name, IFNULL(table_rows, 0) FROM information_schema.tables \
               WHERE table_schema NOT IN ('mysql','information_schema','performance_schema','sys') \
               ORDER BY table_schema, table_name";
    let out = ctx
        .engine
        .exec(
            container,
            image.client_command(&["-N", "-B", "-e", sql]),
            None,
            None,
        )
        .await?;
    if out.exit_code != 0 {
        return Err(ImportError::ServerStart(format!(
            "listing the loaded tables failed (exit {}): {}",
            out.exit_code,
            out.stderr.trim()
        )));
    }
    Ok(out
        .stdout
        .lines()
        .filter_map(|l| {
            let mut parts = l.split('\t');
            Some((
                parts.next()?.to_owned(),
                parts.next()?.to_owned(),
                parts.next()?.parse().unwrap_or(0),
            ))
        })
        .collect())
}

fn log_tables(tables: &TableRows) {
    for (schema, table, rows) in tables {
        info!(table = %format!("{schema}.{table}"), rows_estimate = rows, "loaded");
    }
}

async fn report_progress(read: Arc<AtomicU64>, total: u64, dump: String) {
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.tick().await;
    loop {
        tick.tick().await;
        let done = read.load(Ordering::Relaxed);
        let secs = started.elapsed().as_secs_f64().max(0.001);
        let rate = done as f64 / secs;
        let percent = if total > 0 {
            100.0 * done as f64 / total as f64
        } else {
            0.0
        };
        let left = if rate > 0.0 && total > done {
            humantime::format_duration(Duration::from_secs(((total - done) as f64 / rate) as u64))
                .to_string()
        } else {
            "-".to_owned()
        };
        info!(
            dump,
            read_mb = format!("{:.1}", done as f64 / 1e6),
            percent = format!("{percent:.1}"),
            mb_per_s = format!("{:.1}", rate / 1e6),
            eta = left,
            "importing"
        );
    }
}

/// What a new version records about where it came from.
struct Origin {
    source: String,
    database: String,
    elapsed: Duration,
    dump_bytes: u64,
}

/// Publishes the datadir `work` (in `tmp/`, cleanly shut down) as
/// `version` of `t` and makes it current.
fn publish(
    ctx: &Context,
    t: &TemplateName,
    image: &ImageInfo,
    version: &VersionName,
    work: &Path,
    origin: Origin,
) -> Result<VersionMeta, ImportError> {
    // Clones must not load a buffer pool dump nor see a stale pid file.
    for f in ["ib_buffer_pool", "mysqld.pid", dbserver::INIT_FILE] {
        let _ = fs::remove_file(work.join(f));
    }
    own_tree(work, image.owner, false).map_err(io_ctx("make the template read-only"))?;
    let meta = VersionMeta {
        version: version.clone(),
        created_at: Utc::now(),
        source_dump: origin.source,
        database: origin.database,
        import_seconds: origin.elapsed.as_secs_f64(),
        dump_bytes: origin.dump_bytes,
        size_bytes: clone::tree_size(work),
        image: ctx.settings.image.clone(),
        server_version: image.version.clone(),
    };
    let dir = ctx.layout.template(t);
    fs::create_dir_all(&dir).map_err(io_ctx(format!("create {}", dir.display())))?;
    let tmp = ctx.layout.tmp();
    write_json_atomic(&ctx.layout.template_version_meta(t, version), &meta, &tmp)?;
    let target = ctx.layout.template_version(t, version);
    fs::rename(work, &target).map_err(io_ctx(format!("publish {}", target.display())))?;
    // Switch `current` atomically: a new symlink renamed over the old one.
    let link_tmp = dir.join(format!(".current-{version}"));
    let _ = fs::remove_file(&link_tmp);
    std::os::unix::fs::symlink(version.as_str(), &link_tmp)
        .map_err(io_ctx("create the current link"))?;
    fs::rename(&link_tmp, ctx.layout.template_current(t)).map_err(io_ctx("switch current"))?;
    Ok(meta)
}

/// Publishes a copy of a cleanly shut down datadir (a snapshot) as the new
/// current version of `t`: `promote`.
pub async fn publish_datadir(
    ctx: &Context,
    t: &TemplateName,
    src: &Path,
    source: String,
    database: String,
) -> Result<VersionMeta, ImportError> {
    let _lock = ImportLock::try_acquire(ctx, t)?;
    let image = ctx.image().await?.clone();
    let version = new_version_name(ctx, t);
    let work = ctx.layout.import_work(t, &version);
    let started = Instant::now();
    let (from, to, mode) = (src.to_path_buf(), work.clone(), ctx.clone_mode);
    let cloned =
        tokio::task::spawn_blocking(move || clone::clone_tree(&from, &to, mode, image.owner))
            .await
            .map_err(|e| io_ctx("clone")(io::Error::other(e)))
            .and_then(|r| r.map_err(io_ctx("clone the snapshot")));
    let result = cloned.and_then(|()| {
        publish(
            ctx,
            t,
            &image,
            &version,
            &work,
            Origin {
                source,
                database,
                elapsed: started.elapsed(),
                dump_bytes: 0,
            },
        )
    });
    if result.is_err() {
        let _ = remove_tree(&work);
    } else {
        info!(template = %t, version = %version, "template version published from a snapshot");
    }
    result
}

/// Writes JSON to `path` through a temporary file in `tmp` and a rename.
pub fn write_json_atomic<T: Serialize>(
    path: &Path,
    value: &T,
    tmp: &Path,
) -> Result<(), ImportError> {
    let text = serde_json::to_vec_pretty(value).map_err(|e| ImportError::Io {
        context: "serialize metadata".into(),
        source: io::Error::other(e),
    })?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = tmp.join(format!(".{name}.{}", std::process::id()));
    fs::write(&staging, text).map_err(io_ctx(format!("write {}", staging.display())))?;
    fs::rename(&staging, path).map_err(io_ctx(format!("write {}", path.display())))
}

/// Removes imports left in `tmp/` by a crash (`import.T.V`, `trash.T.V`),
/// except those of a template an import is running for now.
pub fn clean_interrupted_imports(ctx: &Context) -> io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for entry in fs::read_dir(ctx.layout.tmp())? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let mut parts = name.split('.');
        let (Some(kind), Some(template)) = (parts.next(), parts.next()) else {
            continue;
        };
        if kind != "import" && kind != "trash" && kind != "archive" {
            continue;
        }
        if TemplateName::parse(template).is_ok_and(|t| is_importing(ctx, &t)) {
            continue;
        }
        remove_tree(&entry.path())?;
        removed.push(entry.path());
    }
    Ok(removed)
}
