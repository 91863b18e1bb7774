//! A physical backup as an import's source: no SQL replay.
//!
//! `NAME.xbstream` is read by `mbstream -x` itself from a read-only mount
//! in a one-off container of the configured image on the import's scratch
//! datadir; `NAME.xbstream.gz|.zst` is decompressed here and streamed into
//! it; a `--target-dir` folder is cloned into it.
//! `mariadb-backup --prepare` runs there, then the import server starts on
//! the prepared datadir without initialisation (the redo log resized to
//! [`dbserver::REDO_LOG_SIZE`]), post scripts run and the server shuts
//! down slowly, as after a SQL load; `import.rs` publishes the result.
//!
//! Invariants: the backup in the dumps folder is only read (extraction,
//! `--prepare` and the server work on the scratch copy); a backup is
//! restored only by the server major version that made it
//! ([`ImportError::VersionMismatch`], checked before `--prepare`).
//!
//! `extract.rs` puts the backup into the scratch datadir (and starts the
//! helper container `--prepare` runs in); `backup_info.rs` reads what the
//! backup says about itself and refuses what the server cannot restore.

use std::fs;
use std::path::Path;

use super::import::{post_and_stop, query_rows, start_server, Loaded};
use super::progress::{Phase, Tracker};
use super::ImportError;
use crate::clone::own_tree;
use crate::context::{blocking_io, Context};
use crate::dbserver::{self, Flavor, ImageInfo, ServerContainer, DATADIR};
use crate::dump::{Dump, PhysicalForm};

mod backup_info;
mod extract;

/// Restores the physical backup `d` into `work` (which does not exist yet)
/// and runs the import server on it in `container`, up to its clean
/// shutdown.
pub(super) async fn run(
    ctx: &Context,
    d: &Dump,
    form: PhysicalForm,
    image: &ImageInfo,
    work: &Path,
    container: &str,
    tracker: &Tracker,
) -> Result<Loaded, ImportError> {
    let dump_name = d.path.display().to_string();
    if image.flavor != Flavor::MariaDb {
        return Err(ImportError::PhysicalUnsupported {
            dump: dump_name,
            image: ctx.settings.image.clone(),
            reason: "it runs MySQL; a mariadb-backup backup is restored by a MariaDB image \
                     (or import a SQL dump instead)"
                .to_owned(),
        });
    }
    let backup_err = |message: String| ImportError::Backup {
        dump: dump_name.clone(),
        message,
    };
    let owner = image.owner;
    // A container left by a crashed import.
    ctx.engine.remove(container).await?;
    let labels = {
        let mut l = ctx.labels("import");
        l.insert("dolly.template".into(), d.template.to_string());
        l
    };
    let server = ServerContainer {
        name: container.to_owned(),
        image: ctx.settings.image.clone(),
        datadir: ctx.store.for_engine(work),
        labels,
    };

    match form {
        PhysicalForm::Folder => {
            extract::clone_folder(ctx, d, image, work, &server, tracker).await?;
        }
        PhysicalForm::Stream(_) => {
            extract::stream(ctx, d, image, work, &server, tracker).await?;
        }
    }

    // Apply the redo log copied during the backup: a consistent datadir.
    tracker.set(Phase::Prepare);
    let prepare = vec![
        "mariadb-backup".into(),
        "--prepare".into(),
        format!("--target-dir={DATADIR}"),
        format!("--use-memory={}", ctx.settings.import_buffer_pool),
    ];
    let timeout = ctx.settings.import_timeout;
    let out = tokio::time::timeout(
        timeout,
        ctx.engine
            .exec(container, prepare, Some(image.user()), None),
    )
    .await
    .map_err(|_| ImportError::Timeout(dump_name.clone(), timeout))??;
    if out.exit_code != 0 {
        return Err(backup_err(format!(
            "mariadb-backup --prepare exited with status {}: {}",
            out.exit_code,
            last_lines(&out.stderr, 5)
        )));
    }
    ctx.engine.remove(container).await?;

    // The backup's own files go; the init file makes root usable.
    let w = work.to_path_buf();
    blocking_io(move || {
        for entry in fs::read_dir(&w)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name == "backup-my.cnf"
                || name.starts_with("mariadb_backup_")
                || name.starts_with("xtrabackup_")
            {
                fs::remove_file(entry.path())?;
            }
        }
        fs::write(w.join(dbserver::INIT_FILE), dbserver::RESTORE_INIT_SQL)?;
        own_tree(&w, owner, true)
    })
    .await
    .map_err(|source| ImportError::Datadir {
        what: "ready the prepared datadir",
        source,
    })?;

    // The server on the prepared datadir, as an import server.
    let spec = image.server_spec(
        server,
        image.restore_command(ctx.settings.import_buffer_pool),
        None,
        None,
    );
    start_server(ctx, image, &spec, 300, " on the prepared backup").await?;

    let tables = query_rows(ctx, image, container).await?;
    let configured = &ctx.settings.database;
    let database = if tables.iter().any(|(s, _, _)| s == configured) {
        configured.clone()
    } else {
        match tables.first() {
            Some((schema, _, _)) => schema.clone(),
            None => return Err(ImportError::Empty(dump_name)),
        }
    };

    let (post_scripts, scrubbed) =
        post_and_stop(ctx, image, d, &database, tracker, work, &spec, false).await?;
    Ok(Loaded {
        database,
        tables,
        post_scripts,
        scrubbed,
        strict: false,
        load: None,
    })
}

/// The last `n` lines of a tool's output, on one line.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim().lines().collect();
    lines[lines.len().saturating_sub(n)..].join(" / ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_lines_joins_the_end() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b / c");
        assert_eq!(last_lines("", 2), "");
    }
}
