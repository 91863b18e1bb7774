//! The import server's life: a fresh one for a load, its start, the
//! post-import SQL and the slow shutdown, and the queries the import
//! asks it.

use std::fs;
use std::path::Path;
use std::time::Instant;

use tracing::{debug, info};

use super::{datadir_err, TableRows};
use crate::clone::own_tree;
use crate::context::Context;
use crate::dbserver::{self, ImageInfo};
use crate::dump::{self, Dump, HashedFile};
use crate::template::progress::{Phase, Tracker};
use crate::template::scrub;
use crate::template::{ImportError, UpdateOptions};

/// A fresh import server on `work`: the initialised datadir (cloned from
/// the cache or initialised in the container), the container started, the
/// database prepared; `rows` (a folder that exists) mounted for its load's
/// `LOAD DATA` files; with the larger redo log if `big_redo`. The spec the post-script clean-up restarts on (the same
/// server, nothing to initialise, no rows files).
#[allow(clippy::too_many_arguments)]
pub(super) async fn fresh_server(
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
        crate::template::init_cache::clone_into(ctx, image, work).await?;
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
    query_text(ctx, image, container, &prepare, |e| {
        ImportError::ServerStart(format!("preparing the database failed {e}"))
    })
    .await?;
    Ok(restart)
}

/// Whether `d` loads with [`dbserver::IMPORT_REDO_LOG_SIZE`] (and its
/// server restarts once with the clones' log before publication) when
/// its rows go as SQL. A load from rows files keeps the clones' log: the
/// page cleaner then writes pages during the load, and the shutdown and
/// the restart the larger log costs take longer than what it saves
/// (bench/RESULTS.md, "One big table").
pub(super) fn load_redo(d: &Dump) -> bool {
    d.input_bytes() >= dbserver::LOAD_REDO_MIN_INPUT
}

/// Post-import SQL on the database instances report, then the clean, slow
/// shutdown (the server runs with `innodb_fast_shutdown=0`): how every
/// import server, SQL or physical, ends. When scripts ran, what they
/// changed leaves no trace ([`crate::template::scrub`]): the tables are rebuilt
/// before the shutdown, and the server restarts once on `restart` (its
/// spec with nothing to initialise) with a new redo log. A server that
/// loaded with a larger redo log (`load_redo`) restarts once on `restart`
/// anyway, which gives it the clones' size. The scripts' hashes, and
/// whether that clean-up ran.
#[allow(clippy::too_many_arguments)]
pub(in crate::template) async fn post_and_stop(
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

/// Starts an import server from `spec` and waits up to `secs` for its
/// socket; otherwise the error quotes the end of its log (`on` says what
/// it started on, for the message).
pub(in crate::template) async fn start_server(
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

pub(in crate::template) async fn query_rows(
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
pub(in crate::template) async fn query_text(
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
