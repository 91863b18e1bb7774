//! Rows files: what the splitter converts ([`crate::dump::split::load_data`])
//! is written into a folder the server sees, loaded by its table's
//! session with `LOAD DATA`, and removed once that session's client has
//! printed the mark after it. The files not yet loaded hold at most
//! [`ROWS_AHEAD`] bytes.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use tracing::debug;

use super::{Loader, Which};
use crate::dump::split::load_data::RowsFile;
use crate::dump::split::Sink;
use crate::dump::statements::Stmt;

/// Bytes of rows files written and not yet loaded, at most (unless one
/// file is larger).
const ROWS_AHEAD: u64 = 256 << 20;

/// Rows files: written into `host`, which the server sees as `container`.
pub(super) struct RowsOut {
    host: PathBuf,
    container: String,
    written: u64,
    /// Files whose load is not known to be over, oldest first.
    pending: Vec<Pending>,
}

/// A rows file written and not known to be loaded.
struct Pending {
    session: usize,
    /// The mark after its `LOAD DATA` in its session.
    mark: u64,
    path: PathBuf,
    bytes: u64,
}

impl RowsOut {
    /// Bytes of the files not known to be loaded (of session `k` only).
    fn pending_bytes(&self, k: Option<usize>) -> u64 {
        self.pending
            .iter()
            .filter(|p| k.is_none_or(|k| p.session == k))
            .map(|p| p.bytes)
            .sum()
    }
}

impl Loader {
    /// Rows the splitter converts go as files into `host`, which the
    /// server sees as `container`.
    pub fn rows_files(&mut self, host: PathBuf, container: &str) {
        self.rows = Some(RowsOut {
            host,
            container: container.to_owned(),
            written: 0,
            pending: Vec::new(),
        });
    }

    /// Removes the rows files whose sessions have run past their marks
    /// (`all`: every one, their sessions have ended).
    pub(super) fn sweep_rows(&mut self, all: bool) {
        let Some(out) = self.rows.as_mut() else {
            return;
        };
        let parallel = &self.parallel;
        out.pending.retain(|p| {
            let done = all
                || parallel
                    .get(p.session)
                    .is_some_and(|s| *s.progress.borrow() >= p.mark);
            if done {
                if let Err(e) = std::fs::remove_file(&p.path) {
                    debug!(error = %e, path = %p.path.display(), "cannot remove a rows file");
                }
            }
            !done
        });
    }

    /// Waits (200 ms at most, then the caller looks for failures again)
    /// until the oldest rows file not yet loaded is: its session's client
    /// printing the mark after it wakes this at once.
    fn wait_oldest_rows(&self) {
        let oldest = self.rows.as_ref().and_then(|r| r.pending.first());
        let Some((mut progress, mark)) =
            oldest.and_then(|p| Some((self.parallel.get(p.session)?.progress.clone(), p.mark)))
        else {
            return;
        };
        self.rt.block_on(async {
            let _ = tokio::time::timeout(
                Duration::from_millis(200),
                progress.wait_for(|v| *v >= mark),
            )
            .await;
        });
    }

    /// Bytes of rows files session `k` has not loaded yet.
    pub(super) fn rows_pending(&self, k: usize) -> u64 {
        self.rows.as_ref().map_or(0, |r| r.pending_bytes(Some(k)))
    }

    /// [`Sink::rows`]: `rows` into a file, and its `LOAD DATA` into
    /// `session`.
    pub(super) fn write_rows(
        &mut self,
        session: usize,
        stmt: &Stmt,
        rows: RowsFile,
        ctx: usize,
        context: &[Stmt],
    ) -> Result<bool, String> {
        if self.rows.is_none() {
            return Ok(false);
        }
        self.ensure_parallel()?;
        let session = session.min(self.jobs - 1);
        let len = rows.tsv.len() as u64;
        loop {
            self.sweep_rows(false);
            let pending = self.rows.as_ref().map_or(0, |r| r.pending_bytes(None));
            if pending == 0 || pending + len <= ROWS_AHEAD {
                break;
            }
            self.check_failed()?;
            self.wait_oldest_rows();
        }
        let Some(out) = self.rows.as_mut() else {
            return Ok(false);
        };
        out.written += 1;
        let name = format!("{:08}.tsv", out.written);
        let path = out.host.join(&name);
        std::fs::write(&path, &rows.tsv)
            .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)))
            .map_err(|e| format!("cannot write the rows file {}: {e}", path.display()))?;
        let load = Stmt {
            text: rows.statement(&format!("{}/{name}", out.container)),
            delim: b";".to_vec(),
            line: stmt.line,
        };
        self.write(Which::Parallel(session), &load, ctx, context)?;
        let mark = self.mark(session)?;
        if let Some(out) = self.rows.as_mut() {
            out.pending.push(Pending {
                session,
                mark: mark.n,
                path,
                bytes: len,
            });
        }
        self.push(Which::Parallel(session))?;
        Ok(true)
    }
}
