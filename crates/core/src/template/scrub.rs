//! What post-import scripts leave behind, removed before publication.
//!
//! A post script that masks (`UPDATE customers SET email = ...`) changes
//! the tables, but the original values stay on disk: in the redo log, in
//! the undo log until it is purged and overwritten, and in freed or old
//! index pages of the tables' own files (a UNIQUE index keeps the old
//! record until the page is reorganised). So when a version had post
//! scripts, the import server, before it stops:
//!
//! 1. before the scripts, zero-fills pages InnoDB frees from then on
//!    (MariaDB's `innodb_immediate_scrub_data_uncompressed`);
//! 2. after them, rebuilds every base table of the user databases
//!    (`ALTER TABLE ... FORCE`: a new tablespace file written from the
//!    current rows; the old file is deleted), and on MySQL replaces each
//!    undo tablespace (set inactive, purged, truncated: a new file);
//! 3. stops slowly (`innodb_fast_shutdown=0`, set on every import server):
//!    the undo log is purged completely;
//!
//! then the server gets a new, empty redo log ([`fresh_redo_log`]) and
//! stops slowly again. The binary log is off on import servers (`--skip-log-bin`), and
//! temporary files live in the container's `/tmp` or in `ibtmp1`, which
//! InnoDB deletes at shutdown and recreates empty at start.
//!
//! Limits (README, "Masking"): the deleted files' blocks are freed, not
//! overwritten, on the host's filesystem (reading them needs root on the
//! host, who can read production dumps anyway); tables of engines other
//! than InnoDB and MyISAM/Aria are rebuilt as their engine does.

use std::fs;
use std::io;
use std::path::Path;

use dolly_engine::ContainerSpec;
use tracing::info;

use super::import::start_server;
use super::ImportError;
use crate::context::{blocking_io, Context};
#[cfg(doc)]
use crate::dbserver::REDO_LOG_SIZE;
use crate::dbserver::{Flavor, ImageInfo};

/// Schemas that are the server's own, never rebuilt.
const SYSTEM_SCHEMAS: &str = "'mysql','information_schema','performance_schema','sys'";

/// Step 1, before the post scripts run: pages freed from now on (the
/// scripts' undo log once purged, the tables' old pages) are zero-filled
/// (MariaDB; MySQL has no such setting: its undo tablespaces are replaced
/// instead, see [`rebuild_tables`]).
pub(super) async fn before_scripts(
    ctx: &Context,
    image: &ImageInfo,
    container: &str,
) -> Result<(), ImportError> {
    if image.flavor == Flavor::MariaDb {
        run_sql(
            ctx,
            image,
            container,
            "SET GLOBAL innodb_immediate_scrub_data_uncompressed = ON",
        )
        .await?;
    }
    Ok(())
}

/// Step 2, after the post scripts: every base table rebuilt; on MySQL,
/// every undo tablespace emptied and truncated (which replaces its file).
/// The number of tables rebuilt.
pub(super) async fn rebuild_tables(
    ctx: &Context,
    image: &ImageInfo,
    container: &str,
) -> Result<usize, ImportError> {
    let list = format!(
        "SELECT CONCAT('ALTER TABLE `', REPLACE(table_schema, '`', '``'), '`.`', \
         REPLACE(table_name, '`', '``'), '` FORCE;') FROM information_schema.tables \
         WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ({SYSTEM_SCHEMAS}) \
         ORDER BY table_schema, table_name"
    );
    let out = super::import::query_text(ctx, image, container, &list, |e| {
        ImportError::Scrub(format!("listing the tables to rebuild failed {e}"))
    })
    .await?;
    let statements: Vec<&str> = out.lines().filter(|l| !l.is_empty()).collect();
    if statements.is_empty() {
        return Ok(0);
    }
    // Foreign keys do not stop a rebuild, but a check could on a table
    // whose rows a script left inconsistent.
    let script = format!(
        "SET SESSION foreign_key_checks = 0;\n{}\n",
        statements.join("\n")
    );
    let input: dolly_engine::Stdin = Box::pin(io::Cursor::new(script.into_bytes()));
    let out = ctx
        .engine
        .exec(
            container,
            image.client_command(&[]),
            Some(image.user()),
            Some(input),
        )
        .await?;
    if out.exit_code != 0 {
        return Err(ImportError::Scrub(format!(
            "rebuilding the tables failed (exit {}): {}",
            out.exit_code,
            out.stderr.trim().lines().last().unwrap_or("")
        )));
    }
    if image.flavor == Flavor::MySql {
        renew_undo_tablespaces(ctx, image, container).await?;
    }
    Ok(statements.len())
}

/// MySQL keeps undo records in undo tablespaces whose freed pages keep
/// their bytes. An inactive undo tablespace is truncated once purged,
/// which replaces its file by a new one: each active one in turn (a
/// temporary third keeps two active, as MySQL requires), then the
/// temporary one is dropped.
async fn renew_undo_tablespaces(
    ctx: &Context,
    image: &ImageInfo,
    container: &str,
) -> Result<(), ImportError> {
    const TEMP: &str = "dolly_scrub_undo";
    let active = query(
        ctx,
        image,
        container,
        "SELECT NAME FROM information_schema.INNODB_TABLESPACES \
         WHERE SPACE_TYPE = 'Undo' AND STATE = 'active' ORDER BY NAME",
    )
    .await?;
    run_sql(
        ctx,
        image,
        container,
        &format!("CREATE UNDO TABLESPACE `{TEMP}` ADD DATAFILE '{TEMP}.ibu'"),
    )
    .await?;
    for name in active.iter().map(String::as_str).chain([TEMP]) {
        let quoted = format!("`{}`", name.replace('`', "``"));
        run_sql(
            ctx,
            image,
            container,
            &format!("ALTER UNDO TABLESPACE {quoted} SET INACTIVE"),
        )
        .await?;
        let state = format!(
            "SELECT STATE FROM information_schema.INNODB_TABLESPACES WHERE NAME = '{}'",
            name.replace('\'', "''")
        );
        let t0 = std::time::Instant::now();
        loop {
            let now = query(ctx, image, container, &state).await?;
            if now.first().map(String::as_str) == Some("empty") {
                break;
            }
            if t0.elapsed() > UNDO_TIMEOUT {
                return Err(ImportError::Scrub(format!(
                    "undo tablespace {name} was not truncated within {UNDO_TIMEOUT:?}"
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        let last = if name == TEMP {
            format!("DROP UNDO TABLESPACE {quoted}")
        } else {
            format!("ALTER UNDO TABLESPACE {quoted} SET ACTIVE")
        };
        run_sql(ctx, image, container, &last).await?;
    }
    info!(tablespaces = active.len(), "undo tablespaces truncated");
    Ok(())
}

/// How long purge may take to empty an undo tablespace.
const UNDO_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// The first column of a query's rows.
async fn query(
    ctx: &Context,
    image: &ImageInfo,
    container: &str,
    sql: &str,
) -> Result<Vec<String>, ImportError> {
    let out = super::import::query_text(ctx, image, container, sql, |e| {
        ImportError::Scrub(format!("{sql} failed {e}"))
    })
    .await?;
    Ok(out
        .lines()
        .map(|l| l.split('\t').next().unwrap_or("").to_owned())
        .filter(|l| !l.is_empty())
        .collect())
}

async fn run_sql(
    ctx: &Context,
    image: &ImageInfo,
    container: &str,
    sql: &str,
) -> Result<(), ImportError> {
    let out = ctx
        .engine
        .exec(container, image.client_command(&["-e", sql]), None, None)
        .await?;
    if out.exit_code != 0 {
        return Err(ImportError::Scrub(format!(
            "{sql} failed (exit {}): {}",
            out.exit_code,
            out.stderr.trim()
        )));
    }
    Ok(())
}

/// The redo log's files in a cleanly shut down datadir: MariaDB's
/// `ib_logfile*`, MySQL's `#innodb_redo/` (8.0.30+) or `ib_logfile*`.
fn redo_files(work: &Path) -> io::Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(work)? {
        let entry = entry?;
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with("ib_logfile")
        {
            out.push(entry.path());
        }
    }
    let redo = work.join("#innodb_redo");
    if redo.is_dir() {
        for entry in fs::read_dir(&redo)? {
            out.push(entry?.path());
        }
    }
    Ok(out)
}

/// Step 4, on the stopped, cleanly shut down import server: a new redo
/// log, then the server stopped slowly again. MySQL makes a new one at
/// start when its files are gone (`#innodb_redo/`, or `ib_logfile*` before
/// 8.0.30). MariaDB refuses to start without `ib_logfile0` but writes a
/// new file whenever the configured size differs from the file's: the
/// server starts once at another size, then once more at
/// [`REDO_LOG_SIZE`], so clones never resize at their start. `restart` is
/// the import server's spec with nothing to initialise.
pub(super) async fn fresh_redo_log(
    ctx: &Context,
    image: &ImageInfo,
    work: &Path,
    restart: &ContainerSpec,
) -> Result<(), ImportError> {
    match image.flavor {
        Flavor::MySql => {
            let w = work.to_path_buf();
            let removed = blocking_io(move || {
                let files = redo_files(&w)?;
                for f in &files {
                    fs::remove_file(f)?;
                }
                Ok(files.len())
            })
            .await
            .map_err(|source| ImportError::Datadir {
                what: "remove the import server's redo log",
                source,
            })?;
            if removed == 0 {
                return Err(ImportError::Scrub(
                    "the import server left no redo log file to replace".to_owned(),
                ));
            }
            restart_once(ctx, image, restart).await?;
        }
        Flavor::MariaDb => {
            let mut other = restart.clone();
            if let Some(script) = other.cmd.last_mut() {
                script.push_str(&format!(" --innodb-log-file-size={RESIZE_TO}"));
            }
            restart_once(ctx, image, &other).await?;
            restart_once(ctx, image, restart).await?;
        }
    }
    info!("redo log replaced by a new, empty one");
    Ok(())
}

/// On the stopped, cleanly shut down import server that loaded with
/// [`crate::dbserver::IMPORT_REDO_LOG_SIZE`]: its redo log back to
/// [`REDO_LOG_SIZE`], so clones never resize theirs at start. MariaDB
/// writes a new file when the configured size differs from the file's:
/// one start on `restart` (the clones' size); MySQL: as
/// [`fresh_redo_log`].
pub(super) async fn redo_to_clone_size(
    ctx: &Context,
    image: &ImageInfo,
    work: &Path,
    restart: &ContainerSpec,
) -> Result<(), ImportError> {
    match image.flavor {
        Flavor::MySql => fresh_redo_log(ctx, image, work, restart).await,
        Flavor::MariaDb => restart_once(ctx, image, restart).await,
    }
}

/// A redo log size that is not [`REDO_LOG_SIZE`] (MariaDB's detour).
const RESIZE_TO: &str = "49M";

async fn restart_once(
    ctx: &Context,
    image: &ImageInfo,
    spec: &ContainerSpec,
) -> Result<(), ImportError> {
    ctx.engine.remove(&spec.name).await?;
    start_server(ctx, image, spec, 300, " with a new redo log").await?;
    stop_slowly(ctx, &spec.name).await
}

/// Stops the import server (it runs with `innodb_fast_shutdown=0`): an
/// error unless it exits with status 0.
pub(super) async fn stop_slowly(ctx: &Context, container: &str) -> Result<(), ImportError> {
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redo_files_of_both_servers() {
        let dir = tempfile::tempdir().unwrap();
        let w = dir.path();
        fs::write(w.join("ib_logfile0"), b"x").unwrap();
        fs::write(w.join("ibdata1"), b"x").unwrap();
        fs::create_dir(w.join("#innodb_redo")).unwrap();
        fs::write(w.join("#innodb_redo").join("#ib_redo6"), b"x").unwrap();
        let mut names: Vec<String> = redo_files(w)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["#ib_redo6", "ib_logfile0"]);
    }
}
