//! One import: a dump streamed into a fresh server in an import
//! container, a clean shutdown, then publication through the store.

use std::fs;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use dolly_types::{TemplateName, VersionName};
use tracing::{info, warn, Instrument};

use super::{progress, ImportError, LastImport, VersionMeta};
use crate::clone::{self, own_tree, remove_tree};
use crate::context::Context;
use crate::dbserver::{self, ImageInfo};
use crate::dump::Dump;
use crate::store::Scratch;

fn datadir_err(what: &'static str) -> impl FnOnce(io::Error) -> ImportError {
    move |source| ImportError::Datadir { what, source }
}

/// Imports one dump into a new version of its template and publishes it.
pub async fn import(ctx: &Context, d: &Dump) -> Result<VersionMeta, ImportError> {
    let t = &d.template;
    let t2 = t.clone();
    let (_lock, space, version, work) = ctx
        .blocking(move |s| {
            let lock = s.lock_import(&t2)?;
            let space = s.space()?;
            let version = s.new_version(&t2);
            let work = s.scratch(&Scratch::Import(t2.clone(), version.clone()));
            Ok::<_, crate::store::StoreError>((lock, space, version, work))
        })
        .await?;
    if space.free < ctx.settings.min_free_disk {
        return Err(ImportError::DiskFull {
            free: space.free,
            min: ctx.settings.min_free_disk,
        });
    }
    let image = ctx.image().await?.clone();
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
            publish(ctx, t, &image, &version, &work, origin)
                .await
                .inspect(|_| log_tables(&tables))
        }
        Err(e) => Err(e),
    };
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
            Err(e) => e.to_string(),
        },
        version: outcome.as_ref().ok().map(|m| m.version.clone()),
    };
    let t2 = t.clone();
    if let Err(e) = ctx.blocking(move |s| s.write_last_import(&t2, &last)).await {
        warn!(error = %e, "cannot record the import's outcome");
    }
    outcome
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
    let (w, owner) = (work.to_path_buf(), image.owner);
    tokio::task::spawn_blocking(move || {
        fs::create_dir_all(&w)?;
        own_tree(&w, owner, true)
    })
    .await
    .map_err(|e| io::Error::other(e.to_string()))
    .and_then(|r| r)
    .map_err(datadir_err("create the import datadir"))?;
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
        progress::report(Arc::clone(&read), total, dump_name.clone()).in_current_span(),
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

/// What a new version records about where it came from.
struct Origin {
    source: String,
    database: String,
    elapsed: Duration,
    dump_bytes: u64,
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
    };
    let owner = image.owner;
    ctx.blocking(move |s| {
        // Clones must not load a buffer pool dump nor see a stale pid file.
        for f in ["ib_buffer_pool", "mysqld.pid", dbserver::INIT_FILE] {
            let _ = fs::remove_file(work.join(f));
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
        .blocking(move |s| {
            let lock = s.lock_import(&t2)?;
            let version = s.new_version(&t2);
            let work = s.scratch(&Scratch::Import(t2.clone(), version.clone()));
            Ok::<_, crate::store::StoreError>((lock, version, work))
        })
        .await?;
    let started = Instant::now();
    let (from, to, mode) = (src.to_path_buf(), work.clone(), ctx.clone_mode);
    let cloned =
        tokio::task::spawn_blocking(move || clone::clone_tree(&from, &to, mode, image.owner))
            .await
            .map_err(|e| io::Error::other(e.to_string()))
            .and_then(|r| r)
            .map_err(datadir_err("clone the snapshot"));
    crate::faultpoint::hit("promote.cloned");
    let result = match cloned {
        Ok(()) => {
            let origin = Origin {
                source,
                database,
                elapsed: started.elapsed(),
                dump_bytes: 0,
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
