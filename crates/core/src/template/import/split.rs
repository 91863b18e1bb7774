//! The split load of one dump: the splitter on a blocking thread, its
//! sessions in the import server ([`crate::template::load`]), and how it
//! fails (for good, or so that the plain load is tried).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::CancelOnDrop;
use crate::context::Context;
use crate::dbserver::{self, ImageInfo};
use crate::dump::split::SplitOptions;
use crate::dump::{self};
use crate::mask::Masker;
use crate::store::LoadInfo;
use crate::template::load::{self, Loader};
use crate::template::progress::Tracker;
use crate::template::ImportError;

/// Why a split load failed: for good (a timeout, an unreadable dump), or
/// in a way the plain load may not.
pub(super) enum SplitFailed {
    Fatal(ImportError),
    Retry(String),
}

/// Bytes of one table's rows loaded in its own session before the rest go
/// to every session: a smaller table is over before spreading it gives
/// anything (the dump's share is the other condition, see
/// [`SplitOptions::dump_bytes`]).
const SPREAD_AFTER: u64 = 16 << 20;

/// How a split load runs.
pub(super) struct Split {
    pub(super) jobs: usize,
    /// Keys deferred.
    pub(super) defer: bool,
    /// One table's rows spread over the sessions.
    pub(super) spread: bool,
    /// The folder of the rows files, if rows go as `LOAD DATA`.
    pub(super) rows: Option<std::path::PathBuf>,
    /// When the sessions' clients may start (the server answers).
    pub(super) after: load::After,
}

/// The dump split by table over `jobs` sessions (a blocking thread reads,
/// cuts and feeds them).
#[allow(clippy::too_many_arguments)]
pub(super) async fn load_split(
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
