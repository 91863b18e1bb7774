//! One import: a dump streamed into a fresh server in an import
//! container, a clean shutdown, then publication through the store.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use tracing::{debug, info, warn};

use super::load::{self};
use super::progress::{self, Tracker};
use super::{ImportError, LastImport, UpdateOptions, VersionMeta};
use crate::clone::remove_tree;
use crate::context::Context;
use crate::dbserver::ImageInfo;
use crate::dump::{self, Dump, DumpKind, HashedFile};
use crate::mask::{MaskedReader, Masker};
use crate::store::{LoadInfo, Scratch};

mod publish;
mod server;
mod split;

pub use self::publish::publish_datadir;
use self::publish::{log_tables, publish, Origin};
use self::server::{fresh_server, load_redo};
pub(super) use self::server::{post_and_stop, query_rows, query_text, start_server};
use self::split::{load_split, Split, SplitFailed};

fn datadir_err(what: &'static str) -> impl FnOnce(io::Error) -> ImportError {
    move |source| ImportError::Datadir { what, source }
}

/// Sets its flag when dropped.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
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
