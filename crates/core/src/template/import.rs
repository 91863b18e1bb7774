//! One import: a dump streamed into a fresh server in an import
//! container, a clean shutdown, then publication through the store.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use dolly_names::{TemplateName, VersionName};
use tracing::{debug, info, warn};

use super::load::{self, Loader};
use super::progress::{self, Phase, Tracker};
use super::scrub;
use super::{ImportError, LastImport, UpdateOptions, VersionMeta};
use crate::clone::{self, own_tree, remove_tree};
use crate::context::Context;
use crate::dbserver::{self, ImageInfo};
use crate::dump::split::SplitOptions;
use crate::dump::{self, Dump, DumpKind, Fingerprint, HashedFile};
use crate::mask::{MaskedReader, Masker};
use crate::store::{LoadInfo, Masking, Scratch};

fn datadir_err(what: &'static str) -> impl FnOnce(io::Error) -> ImportError {
    move |source| ImportError::Datadir { what, source }
}

/// Imports one dump into a new version of its template and publishes it.
pub async fn import(ctx: &Context, d: &Dump) -> Result<VersionMeta, ImportError> {
    import_with(ctx, d, &UpdateOptions::default())
        .await
        .map(|(meta, _)| meta)
}

/// Imports one dump, unless the current version came from the same
/// fingerprint (and `opts.force` is off): then that version and `true`.
pub async fn import_with(
    ctx: &Context,
    d: &Dump,
    opts: &UpdateOptions,
) -> Result<(VersionMeta, bool), ImportError> {
    // `import_timeout` bounds everything from here: the hash of the dump
    // (a stalled mount) as much as the load.
    let timeout = ctx.settings.import_timeout;
    let deadline = tokio::time::Instant::now() + timeout;
    let timed_out = || ImportError::Timeout(d.path.display().to_string(), timeout);
    let t = &d.template;
    let t2 = t.clone();
    let (_lock, space, version, work, rows, current) = ctx
        .store
        .run(move |s| {
            let lock = s.lock_import(&t2)?;
            let space = s.space()?;
            let version = s.new_version(&t2);
            let work = s.scratch(&Scratch::Import(t2.clone(), version.clone()));
            let rows = s.scratch(&Scratch::ImportRows(t2.clone(), version.clone()));
            let current = match s.current_version(&t2)? {
                Some(v) => s.version_meta(&t2, &v)?,
                None => None,
            };
            Ok::<_, crate::store::StoreError>((lock, space, version, work, rows, current))
        })
        .await?;
    let image = ctx.image().await?.clone();
    let image_id = format!("{} ({})", ctx.settings.image, image.version.trim());
    // The API shows which source is read, and for how long, from now on.
    let tracker = Tracker::new(d.path.display().to_string());
    let _reporting = progress::Reporting::start(ctx.store.clone(), t.clone(), tracker.clone());
    let d2 = d.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_hashing = CancelOnDrop(Arc::clone(&stop));
    let hashing = tokio::task::spawn_blocking(move || d2.fingerprint_until(&image_id, &stop));
    let fingerprint = tokio::time::timeout_at(deadline, hashing)
        .await
        .map_err(|_| timed_out())?
        .map_err(|e| ImportError::Datadir {
            what: "hash the dump",
            source: io::Error::other(e),
        })??;
    if let Some(meta) = current.filter(|m| m.fingerprint.as_ref() == Some(&fingerprint)) {
        if !opts.force {
            info!(version = %meta.version, "unchanged: the current version came from the same dump, post scripts and image");
            let last = LastImport {
                ok: true,
                finished_at: Utc::now(),
                dump: d.path.display().to_string(),
                message: format!("unchanged: version {} is current", meta.version),
                version: Some(meta.version.clone()),
            };
            if let Err(e) = ctx.store.write_last_import(t, &last).await {
                warn!(error = %e, "cannot record the import's outcome");
            }
            return Ok((meta, true));
        }
    }
    if space.free < ctx.settings.min_free_disk {
        return Err(ImportError::DiskFull {
            free: space.free,
            min: ctx.settings.min_free_disk,
        });
    }
    let container = format!("{}{}._import", ctx.settings.container_prefix, t);
    info!(dump = %d.path.display(), version = %version, "import started");

    let started = Instant::now();
    // What the hash read: no stat of every file on an async worker.
    let input_bytes: u64 = fingerprint.dump.iter().map(|h| h.bytes).sum();
    tracker.loading(input_bytes);
    let run = async {
        match (d.kind, super::masking::masker(ctx, d).await) {
            (_, Err(e)) => Err(e),
            (DumpKind::Sql, Ok(masker)) => {
                let paths = Paths {
                    work: &work,
                    rows: &rows,
                };
                run_import(ctx, d, &image, paths, &container, &tracker, opts, masker).await
            }
            (DumpKind::Physical(form), Ok(None)) => {
                super::physical::run(ctx, d, form, &image, &work, &container, &tracker).await
            }
            (DumpKind::Physical(_), Ok(Some(_))) => Err(super::masking::physical_refused(d)),
        }
    };
    // On a timeout the run is dropped (a split load's reader is told to
    // stop) and the container removed below ends its clients.
    let result = match tokio::time::timeout_at(deadline, run).await {
        Ok(result) => result,
        Err(_) => {
            // Cancelled, perhaps while the datadir was being initialised.
            super::init_cache::abandon(ctx, &image).await;
            Err(timed_out())
        }
    };
    // Whatever happened, the import server goes, and the rows files its
    // load read.
    if let Err(e) = ctx.engine.remove(&container).await {
        warn!(error = %e, container, "cannot remove the import container");
    }
    let r = rows.clone();
    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || remove_tree(&r)).await {
        warn!(error = %e, "cannot remove the import's rows files");
    }
    let outcome = match result {
        Ok(loaded) => {
            let origin = Origin {
                source: d.path.display().to_string(),
                database: loaded.database,
                elapsed: started.elapsed(),
                dump_bytes: input_bytes,
                masking: super::masking::record(
                    fingerprint.mask_rules.clone(),
                    loaded.strict,
                    loaded.scrubbed,
                ),
                fingerprint: Some(fingerprint),
                post_scripts: loaded.post_scripts,
                load: loaded.load,
            };
            publish(ctx, t, &image, &version, &work, origin)
                .await
                .inspect(|_| log_tables(&loaded.tables))
        }
        Err(e) => Err(e),
    };
    drop(_reporting);
    if outcome.is_err() {
        let w = work.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || remove_tree(&w)).await {
            warn!(error = %e, "cannot remove the failed import's datadir");
        }
    }
    let last = LastImport {
        ok: outcome.is_ok(),
        finished_at: Utc::now(),
        dump: d.path.display().to_string(),
        message: match &outcome {
            Ok(m) => format!("imported in {:.1} s", m.import_seconds),
            // Members read it: no row values (the log has it all).
            Err(e) => e.redacted(),
        },
        version: outcome.as_ref().ok().map(|m| m.version.clone()),
    };
    if let Err(e) = ctx.store.write_last_import(t, &last).await {
        warn!(error = %e, "cannot record the import's outcome");
    }
    outcome.map(|m| (m, false))
}

pub(super) type TableRows = Vec<(String, String, u64)>;

/// What a finished load left in the import server.
pub(super) struct Loaded {
    pub database: String,
    pub tables: TableRows,
    pub post_scripts: Vec<HashedFile>,
    pub load: Option<LoadInfo>,
    /// The post scripts' traces were removed ([`super::scrub`]).
    pub scrubbed: bool,
    /// Masking rules with `strict = true` held.
    pub strict: bool,
}

/// Where an import works: its datadir, and the folder of the rows files
/// its load reads with `LOAD DATA`.
#[derive(Clone, Copy)]
struct Paths<'a> {
    work: &'a Path,
    rows: &'a Path,
}

#[allow(clippy::too_many_arguments)]
async fn run_import(
    ctx: &Context,
    d: &Dump,
    image: &ImageInfo,
    paths: Paths<'_>,
    container: &str,
    tracker: &Tracker,
    opts: &UpdateOptions,
    masker: Option<Masker>,
) -> Result<Loaded, ImportError> {
    let strict = masker.as_ref().is_some_and(Masker::strict);
    let dump_name = d.path.display().to_string();
    let t0 = Instant::now();
    let work = paths.work;
    let jobs = opts.jobs.unwrap_or(ctx.settings.import_jobs).max(1);
    let defer = opts.defer_indexes.unwrap_or(true);
    let split = jobs != 1 || defer;
    // Rows files for the split load, where the server can read them.
    let rows =
        (split && opts.load_data.unwrap_or(true) && image.loads_rows_files()).then_some(paths.rows);
    let mut big_redo = load_redo(d) && rows.is_none();
    let server = |rows| async move {
        let restart = fresh_server(ctx, d, image, work, rows, big_redo, container, opts).await;
        debug!(
            ms = t0.elapsed().as_millis() as u64,
            ok = restart.is_ok(),
            "import server answers"
        );
        restart
    };
    let mut reader = d.open(Arc::clone(&tracker.read));
    let mut scan = reader.scan();
    let restart;
    let load = if !split {
        restart = server(None).await?;
        load_plain(ctx, image, container, masked(reader, masker), &dump_name).await?;
        None
    } else {
        if let Some(r) = rows.map(Path::to_path_buf) {
            crate::context::blocking_io(move || {
                fs::create_dir_all(&r)?;
                fs::set_permissions(&r, fs::Permissions::from_mode(0o755))
            })
            .await
            .map_err(datadir_err("create the folder of the rows files"))?;
        }
        // The splitter reads, cuts and queues while the server starts;
        // its sessions' clients start once the server answers.
        let (opener, after) = load::start_gate();
        let started = async {
            let r = server(rows).await;
            opener.open(r.is_ok());
            r
        };
        let split = load_split(
            ctx,
            image,
            container,
            reader,
            tracker,
            Split {
                jobs,
                defer,
                spread: opts.spread_rows.unwrap_or(true),
                rows: rows.map(Path::to_path_buf),
                after,
            },
            d.files.clone(),
            &dump_name,
            masker.clone(),
        );
        let (started, loaded) = tokio::join!(started, split);
        // A server that did not start is the error, not what its
        // sessions said about it.
        restart = started?;
        match loaded {
            Ok(info) => Some(info),
            Err(SplitFailed::Fatal(e)) => return Err(e),
            Err(SplitFailed::Retry(message)) => {
                // What the split load (dolly's own SQL, or the dump's in an
                // order dolly chose) got wrong, the plain load may not: the
                // whole dump again, as `mariadb < dump` would run it, in a
                // fresh server.
                warn!(
                    dump = %dump_name,
                    error = %message,
                    "the split load failed: loading the whole dump again the plain way, in a fresh server"
                );
                ctx.engine.remove(container).await?;
                let w = work.to_path_buf();
                crate::context::blocking_io(move || remove_tree(&w))
                    .await
                    .map_err(datadir_err("remove the failed split load's datadir"))?;
                tracker.restart();
                big_redo = load_redo(d);
                fresh_server(ctx, d, image, work, None, big_redo, container, opts).await?;
                reader = d.open(Arc::clone(&tracker.read));
                scan = reader.scan();
                load_plain(ctx, image, container, masked(reader, masker), &dump_name).await?;
                info!(dump = %dump_name, "the dump loaded the plain way");
                Some(LoadInfo {
                    sessions: 1,
                    tables: 0,
                    deferred_key_tables: 0,
                    spread_tables: 0,
                    rows_files: 0,
                    fallback: Some(format!(
                        "the split load failed ({message}); the whole dump loaded the plain way"
                    )),
                })
            }
        }
    };
    let scan = scan.lock().map(|s| s.clone()).unwrap_or_default();
    if scan.looks_truncated() {
        return Err(ImportError::Truncated(dump_name));
    }

    // Which database do instances report, and what was loaded.
    debug!(ms = t0.elapsed().as_millis() as u64, "dump loaded");
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

    debug!(
        ms = t0.elapsed().as_millis() as u64,
        "dump loaded; post scripts"
    );
    let (post_scripts, scrubbed) =
        post_and_stop(ctx, image, d, &database, tracker, work, &restart, big_redo).await?;
    debug!(
        ms = t0.elapsed().as_millis() as u64,
        "import server stopped"
    );
    Ok(Loaded {
        database,
        tables,
        post_scripts,
        load,
        scrubbed,
        strict,
    })
}

/// The dump as the one-session load reads it: through the masker when
/// there are rules.
fn masked(reader: dump::DumpReader, masker: Option<Masker>) -> Box<dyn Read + Send> {
    match masker {
        Some(m) => Box::new(MaskedReader::new(reader, m)),
        None => Box::new(reader),
    }
}

/// A fresh import server on `work`: the initialised datadir (cloned from
/// the cache or initialised in the container), the container started, the
/// database prepared; `rows` (a folder that exists) mounted for its load's
/// `LOAD DATA` files; with the larger redo log if `big_redo`. The spec the post-script clean-up restarts on (the same
/// server, nothing to initialise, no rows files).
#[allow(clippy::too_many_arguments)]
async fn fresh_server(
    ctx: &Context,
    d: &Dump,
    image: &ImageInfo,
    work: &Path,
    rows: Option<&Path>,
    big_redo: bool,
    container: &str,
    opts: &UpdateOptions,
) -> Result<dolly_engine::ContainerSpec, ImportError> {
    let init = if opts.cached_init.unwrap_or(true) {
        super::init_cache::clone_into(ctx, image, work).await?;
        dbserver::Init::Done
    } else {
        let (w, owner) = (work.to_path_buf(), image.owner);
        crate::context::blocking_io(move || {
            fs::create_dir_all(&w)?;
            own_tree(&w, owner, true)
        })
        .await
        .map_err(datadir_err("create the import datadir"))?;
        dbserver::Init::Here
    };
    // A container left by a crashed import.
    ctx.engine.remove(container).await?;
    let server = dbserver::ServerContainer {
        name: container.to_owned(),
        image: ctx.settings.image.clone(),
        datadir: ctx.store.for_engine(work),
        labels: {
            let mut l = ctx.labels("import");
            l.insert("dolly.template".into(), d.template.to_string());
            l
        },
    };
    let mut spec = image.import_spec(server.clone(), ctx.settings.import_buffer_pool, init);
    // A large redo log while a large dump loads; `restart` (what the end
    // of the import starts) has the clones' size.
    if big_redo {
        image.with_load_redo_log(&mut spec);
    }
    if let Some(rows) = rows {
        image.with_rows_dir(&mut spec, ctx.store.for_engine(rows));
    }
    let restart = image.import_spec(
        server,
        ctx.settings.import_buffer_pool,
        dbserver::Init::Done,
    );
    start_server(ctx, image, &spec, 120, "").await?;
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
    Ok(restart)
}

/// Whether `d` loads with [`dbserver::IMPORT_REDO_LOG_SIZE`] (and its
/// server restarts once with the clones' log before publication) when
/// its rows go as SQL. A load from rows files keeps the clones' log: the
/// page cleaner then writes pages during the load, and the shutdown and
/// the restart the larger log costs take longer than what it saves
/// (bench/RESULTS.md, "One big table").
fn load_redo(d: &Dump) -> bool {
    d.input_bytes() >= dbserver::LOAD_REDO_MIN_INPUT
}

/// Sets its flag when dropped.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Why a split load failed: for good (a timeout, an unreadable dump), or
/// in a way the plain load may not.
enum SplitFailed {
    Fatal(ImportError),
    Retry(String),
}

/// Bytes of one table's rows loaded in its own session before the rest go
/// to every session: a smaller table is over before spreading it gives
/// anything (the dump's share is the other condition, see
/// [`SplitOptions::dump_bytes`]).
const SPREAD_AFTER: u64 = 16 << 20;

/// How a split load runs.
struct Split {
    jobs: usize,
    /// Keys deferred.
    defer: bool,
    /// One table's rows spread over the sessions.
    spread: bool,
    /// The folder of the rows files, if rows go as `LOAD DATA`.
    rows: Option<std::path::PathBuf>,
    /// When the sessions' clients may start (the server answers).
    after: load::After,
}

/// The dump split by table over `jobs` sessions (a blocking thread reads,
/// cuts and feeds them).
#[allow(clippy::too_many_arguments)]
async fn load_split(
    ctx: &Context,
    image: &ImageInfo,
    container: &str,
    reader: dump::DumpReader,
    tracker: &Tracker,
    how: Split,
    files: Vec<(std::path::PathBuf, dump::Compression)>,
    dump_name: &str,
    masker: Option<Masker>,
) -> Result<LoadInfo, SplitFailed> {
    let Split {
        jobs,
        defer,
        spread,
        rows,
        after,
    } = how;
    let timeout = ctx.settings.import_timeout;
    let cancel = Arc::new(AtomicBool::new(false));
    let clients = load::Clients {
        engine: Arc::clone(&ctx.engine),
        container: container.to_owned(),
        // Output flushed after each statement: the marks are seen as they
        // run (see `load::feed`).
        command: image.client_command(&["--unbuffered", &ctx.settings.database]),
        user: image.user(),
    };
    let mut loader = Loader::new(
        clients,
        jobs,
        Arc::clone(&tracker.phase),
        Arc::clone(&cancel),
        after,
    );
    if let Some(rows) = &rows {
        loader.rows_files(rows.clone(), dbserver::ROWS_DIR);
    }
    let split = SplitOptions {
        jobs,
        defer_indexes: defer,
        default_db: ctx.settings.database.clone(),
        spread_after: if spread { SPREAD_AFTER } else { u64::MAX },
        dump_bytes: None,
        load_data: rows.is_some(),
        big_table: None,
    };
    let task = tokio::task::spawn_blocking(move || {
        let dump_bytes = dump::survey::plain_bytes(&files);
        // A table larger than its share of the dump gets a session of its
        // own (the split's other sessions share the rest).
        let big_table = match (dump_bytes, split.jobs) {
            (Some(total), jobs) if jobs > 1 => dump::survey::biggest_table(&files)
                .filter(|(_, n)| *n > total / (jobs as u64 + 1) && *n > SPREAD_AFTER)
                .map(|(t, _)| t),
            _ => None,
        };
        let split = SplitOptions {
            dump_bytes,
            big_table,
            ..split
        };
        load::run(loader, reader, split, masker)
    });
    // Dropped (the import's deadline) or done: the reader stops.
    let _stop = CancelOnDrop(Arc::clone(&cancel));
    let stats = match tokio::time::timeout(timeout, task).await {
        Err(_) => {
            cancel.store(true, Ordering::Relaxed);
            return Err(SplitFailed::Fatal(ImportError::Timeout(
                dump_name.to_owned(),
                timeout,
            )));
        }
        Ok(Err(e)) => return Err(SplitFailed::Retry(format!("the load failed: {e}"))),
        Ok(Ok(Err(message))) if message.starts_with("cannot read") => {
            return Err(SplitFailed::Fatal(ImportError::Server {
                dump: dump_name.to_owned(),
                message,
            }))
        }
        Ok(Ok(Err(message))) => return Err(SplitFailed::Retry(message)),
        Ok(Ok(Ok(stats))) => stats,
    };
    Ok(LoadInfo {
        sessions: jobs,
        tables: stats.tables,
        deferred_key_tables: stats.deferred_tables,
        spread_tables: stats.spread_tables,
        rows_files: stats.rows_files,
        fallback: stats.fallback,
    })
}

/// Post-import SQL on the database instances report, then the clean, slow
/// shutdown (the server runs with `innodb_fast_shutdown=0`): how every
/// import server, SQL or physical, ends. When scripts ran, what they
/// changed leaves no trace ([`super::scrub`]): the tables are rebuilt
/// before the shutdown, and the server restarts once on `restart` (its
/// spec with nothing to initialise) with a new redo log. A server that
/// loaded with a larger redo log (`load_redo`) restarts once on `restart`
/// anyway, which gives it the clones' size. The scripts' hashes, and
/// whether that clean-up ran.
#[allow(clippy::too_many_arguments)]
pub(super) async fn post_and_stop(
    ctx: &Context,
    image: &ImageInfo,
    d: &Dump,
    database: &str,
    tracker: &Tracker,
    work: &Path,
    restart: &dolly_engine::ContainerSpec,
    load_redo: bool,
) -> Result<(Vec<HashedFile>, bool), ImportError> {
    let container = restart.name.as_str();
    tracker.set(Phase::Post);
    let mut post_scripts = Vec::new();
    if !d.post_scripts.is_empty() {
        scrub::before_scripts(ctx, image, container).await?;
    }
    for script in &d.post_scripts {
        post_scripts.push(run_post_script(ctx, image, container, script, database).await?);
    }
    let scrub = !post_scripts.is_empty();
    if scrub {
        let t0 = Instant::now();
        let rebuilt = scrub::rebuild_tables(ctx, image, container).await?;
        info!(
            tables = rebuilt,
            ms = t0.elapsed().as_millis() as u64,
            "tables rebuilt after the post scripts"
        );
    }
    tracker.set(Phase::Publish);
    scrub::stop_slowly(ctx, container).await?;
    if scrub {
        let t0 = Instant::now();
        scrub::fresh_redo_log(ctx, image, work, restart).await?;
        info!(
            ms = t0.elapsed().as_millis() as u64,
            "post-script clean-up done"
        );
    } else if load_redo {
        let t0 = Instant::now();
        scrub::redo_to_clone_size(ctx, image, work, restart).await?;
        debug!(
            ms = t0.elapsed().as_millis() as u64,
            "redo log back to the clones' size"
        );
    }
    Ok((post_scripts, scrub))
}

/// `reader` as an exec's standard input: read in 1 MiB pieces on a
/// blocking thread (the handle ends when the input does or the exec stops
/// reading).
pub(super) fn stdin_from(
    mut reader: Box<dyn Read + Send>,
) -> (dolly_engine::Stdin, tokio::task::JoinHandle<()>) {
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
    (stdin, producer)
}

/// Starts an import server from `spec` and waits up to `secs` for its
/// socket; otherwise the error quotes the end of its log (`on` says what
/// it started on, for the message).
pub(super) async fn start_server(
    ctx: &Context,
    image: &ImageInfo,
    spec: &dolly_engine::ContainerSpec,
    secs: u32,
    on: &str,
) -> Result<(), ImportError> {
    ctx.engine.run(spec).await?;
    let up = ctx
        .engine
        .exec(&spec.name, image.wait_socket_command(secs), None, None)
        .await?;
    if up.exit_code != 0 {
        let logs = ctx
            .engine
            .logs_tail(&spec.name, 30)
            .await
            .unwrap_or_default();
        return Err(ImportError::ServerStart(format!(
            "no answer on its socket within {secs} s{on} (exit {}); server log: {}",
            up.exit_code,
            logs.trim()
        )));
    }
    Ok(())
}

/// The dump as one stream into one client session: nothing split, nothing
/// deferred (`import_jobs = 1` without deferred keys).
async fn load_plain(
    ctx: &Context,
    image: &ImageInfo,
    container: &str,
    reader: Box<dyn Read + Send>,
    dump_name: &str,
) -> Result<(), ImportError> {
    let (stdin, producer) = stdin_from(reader);
    // A dump with no `USE` loads into the configured database.
    let client = ctx.engine.exec(
        container,
        image.client_command(&[&ctx.settings.database]),
        Some(image.user()),
        Some(stdin),
    );
    let timeout = ctx.settings.import_timeout;
    let out = tokio::time::timeout(timeout, client).await;
    let _ = producer.await;
    let out = match out {
        Ok(r) => r?,
        Err(_) => return Err(ImportError::Timeout(dump_name.to_owned(), timeout)),
    };
    // A broken pipe only means the client stopped reading: its own error
    // says why. Anything else (a corrupt or unreadable file) comes first.
    if let Some(e) = out.stdin_error.filter(|e| !e.is_broken_pipe()) {
        return Err(ImportError::Server {
            dump: dump_name.to_owned(),
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
            dump: dump_name.to_owned(),
            message,
        });
    }
    Ok(())
}

/// Runs one post-import script on `database`; its hash for the version's
/// metadata.
async fn run_post_script(
    ctx: &Context,
    image: &ImageInfo,
    container: &str,
    script: &Path,
    database: &str,
) -> Result<HashedFile, ImportError> {
    let name = script.display().to_string();
    let (p, n2) = (script.to_path_buf(), name.clone());
    let hashed = tokio::task::spawn_blocking(move || dump::hash_file(&p))
        .await
        .map_err(|e| ImportError::PostScript {
            script: n2,
            message: e.to_string(),
        })??;
    let file = tokio::fs::File::open(script)
        .await
        .map_err(|e| ImportError::PostScript {
            script: name.clone(),
            message: e.to_string(),
        })?;
    info!(script = %name, "running post-import SQL");
    let out = ctx
        .engine
        .exec(
            container,
            image.client_command(&[database]),
            Some(image.user()),
            Some(Box::pin(file)),
        )
        .await?;
    if out.exit_code != 0 {
        let message = out.stderr.trim().lines().last().unwrap_or("").to_owned();
        return Err(ImportError::PostScript {
            script: name,
            message: if message.is_empty() {
                format!("the client exited with status {}", out.exit_code)
            } else {
                message
            },
        });
    }
    Ok(hashed)
}

pub(super) async fn query_rows(
    ctx: &Context,
    image: &ImageInfo,
    container: &str,
) -> Result<TableRows, ImportError> {
    let sql =
        "SELECT table_schema, table_name, IFNULL(table_rows, 0) FROM information_schema.tables \
               WHERE table_schema NOT IN ('mysql','information_schema','performance_schema','sys') \
               ORDER BY table_schema, table_name";
    let out = query_text(ctx, image, container, sql, |e| {
        ImportError::ServerStart(format!("listing the loaded tables failed {e}"))
    })
    .await?;
    Ok(out
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

/// `sql` run by the client as root in the import server, its rows as
/// tab-separated text (`-N -B`); a client that fails becomes `failed`
/// of "(exit N): its error".
pub(super) async fn query_text(
    ctx: &Context,
    image: &ImageInfo,
    container: &str,
    sql: &str,
    failed: impl FnOnce(String) -> ImportError,
) -> Result<String, ImportError> {
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
        return Err(failed(format!(
            "(exit {}): {}",
            out.exit_code,
            out.stderr.trim()
        )));
    }
    Ok(out.stdout)
}

fn log_tables(tables: &TableRows) {
    for (schema, table, rows) in tables {
        info!(table = %format!("{schema}.{table}"), rows_estimate = rows, "loaded");
    }
}

/// What a new version records about where it came from.
struct Origin {
    source: String,
    database: String,
    elapsed: Duration,
    dump_bytes: u64,
    fingerprint: Option<Fingerprint>,
    post_scripts: Vec<HashedFile>,
    load: Option<LoadInfo>,
    masking: Option<Masking>,
}

/// Publishes the datadir `work` (in `tmp/`, cleanly shut down) as
/// `version` of `t` and makes it current. The walk of the datadir (owner,
/// modes, size) runs on the blocking pool.
async fn publish(
    ctx: &Context,
    t: &TemplateName,
    image: &ImageInfo,
    version: &VersionName,
    work: &Path,
    origin: Origin,
) -> Result<VersionMeta, ImportError> {
    let (t, work) = (t.clone(), work.to_path_buf());
    let meta = VersionMeta {
        version: version.clone(),
        created_at: Utc::now(),
        source_dump: origin.source,
        database: origin.database,
        import_seconds: origin.elapsed.as_secs_f64(),
        dump_bytes: origin.dump_bytes,
        size_bytes: 0,
        image: ctx.settings.image.clone(),
        server_version: image.version.clone(),
        fingerprint: origin.fingerprint,
        post_scripts: origin.post_scripts,
        load: origin.load,
        masking: origin.masking,
    };
    let owner = image.owner;
    ctx.store
        .run(move |s| {
            // Clones must not load a buffer pool dump, see a stale pid file
            // nor load MySQL's doublewrite files (see `not_for_clones`).
            if let Ok(entries) = fs::read_dir(&work) {
                for e in entries.flatten() {
                    if e.file_name().to_str().is_some_and(dbserver::not_for_clones) {
                        let _ = fs::remove_file(e.path());
                    }
                }
            }
            own_tree(&work, owner, false).map_err(datadir_err("make the template read-only"))?;
            let meta = VersionMeta {
                size_bytes: clone::tree_size(&work),
                ..meta
            };
            s.publish_version(&t, &meta, &work)?;
            Ok(meta)
        })
        .await
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
    let image = ctx.image().await?.clone();
    let t2 = t.clone();
    let (_lock, version, work) = ctx
        .store
        .run(move |s| {
            let lock = s.lock_import(&t2)?;
            let version = s.new_version(&t2);
            let work = s.scratch(&Scratch::Import(t2.clone(), version.clone()));
            Ok::<_, crate::store::StoreError>((lock, version, work))
        })
        .await?;
    let started = Instant::now();
    let (from, to, mode) = (src.to_path_buf(), work.clone(), ctx.clone_mode);
    let cloned =
        crate::context::blocking_io(move || clone::clone_tree(&from, &to, mode, image.owner))
            .await
            .map_err(datadir_err("clone the snapshot"));
    crate::faultpoint::hit("promote.cloned");
    let result = match cloned {
        Ok(()) => {
            let origin = Origin {
                source,
                database,
                elapsed: started.elapsed(),
                dump_bytes: 0,
                fingerprint: None,
                post_scripts: Vec::new(),
                load: None,
                masking: None,
            };
            publish(ctx, t, &image, &version, &work, origin).await
        }
        Err(e) => Err(e),
    };
    if result.is_err() {
        let _ = tokio::task::spawn_blocking(move || remove_tree(&work)).await;
    } else {
        info!(template = %t, version = %version, "template version published from a snapshot");
    }
    result
}
