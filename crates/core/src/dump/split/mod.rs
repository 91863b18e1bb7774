//! A mysqldump split by table for parallel sessions, with secondary
//! indexes and foreign keys deferred.
//!
//! The dump is read once, as a stream of statements:
//! - session state (`SET`, `USE`) is recorded, never sent by itself: every
//!   session replays what it has not seen yet before its next statement, so
//!   each statement runs with the settings a single session would have;
//! - each table's statements (`DROP`/`CREATE`/`ALTER TABLE`, `INSERT`) go to
//!   one session, picked when the table first appears; mysqldump's `LOCK
//!   TABLES`/`UNLOCK TABLES` are dropped (they serialise the sessions);
//! - the rows of a large table whose order cannot matter (see
//!   [`spread`]: a primary key, no unique secondary key, literal rows with
//!   explicit ids) go to the least busy session once they are more than
//!   [`SplitOptions::spread_after`] and a share of the dump: the other
//!   sessions wait for its `CREATE TABLE` to have run ([`Sink::mark`],
//!   [`Sink::wait`]), and its keys wait for every spread row; no session
//!   restarts for this. Any other table's rows keep the dump's order;
//! - `CREATE TABLE` keeps columns, the primary key, unique keys and checks;
//!   its other keys are added in one `ALTER TABLE` after the table's data
//!   (InnoDB's sorted index build), its foreign keys after every table;
//! - triggers, views, routines and events are created after all tables, in
//!   dump order (mysqldump creates triggers after their table's data, so
//!   they never fire on loaded rows);
//! - database-wide statements (`CREATE DATABASE`, `SET GLOBAL`, foreign keys
//!   the dump adds itself) run alone, after everything before them;
//! - anything else (a statement the splitter does not understand, a query,
//!   a statement on a table after its trigger) ends the split: the rest of
//!   the dump runs unchanged in one session, after what came before.

mod classify;
pub mod load_data;
mod names;
mod route;
mod scripts;
mod spread;
mod values;

pub use classify::{classify, Kind, TableOp};
pub use route::Splitter;
pub use scripts::{split_text, write_stmt, Phase, Scripts};

use super::statements::Stmt;

/// How to split.
#[derive(Debug, Clone)]
pub struct SplitOptions {
    /// Parallel sessions.
    pub jobs: usize,
    /// Secondary keys after the data, foreign keys after every table.
    pub defer_indexes: bool,
    /// The database a dump with no `USE` loads into.
    pub default_db: String,
    /// Bytes of one table's rows loaded in order before the rest are
    /// spread over every session (when that is safe).
    pub spread_after: u64,
    /// The dump's size, when known: a table's rows spread only once they
    /// are more than `1 / (jobs + 1)` of it (a table that is not larger
    /// than its share leaves the other sessions enough to do, as the
    /// other tables go to them).
    pub dump_bytes: Option<u64>,
    /// Literal rows of a table whose rows may go in any order are sent as
    /// `LOAD DATA` files where that stores the same values
    /// ([`load_data`]; the sink decides: [`Sink::rows`]).
    pub load_data: bool,
    /// A table known (from a look at the dump before the load) to hold more
    /// than its share of the dump: it gets a session of its own, which no
    /// table before it takes, so its rows start as soon as they come.
    pub big_table: Option<String>,
}

/// Where the statements go: the import's sessions (or a test's scripts).
pub trait Sink {
    type Error;
    /// Runs `stmt` after everything sent so far has finished, with no other
    /// session running. `context[..ctx]` is the session state before it.
    fn serial(&mut self, stmt: &Stmt, ctx: usize, context: &[Stmt]) -> Result<(), Self::Error>;
    /// Queues `stmt` on parallel session `session`.
    fn parallel(
        &mut self,
        session: usize,
        stmt: &Stmt,
        ctx: usize,
        context: &[Stmt],
    ) -> Result<(), Self::Error>;
    /// A point in parallel session `session`'s input: everything sent to
    /// it so far.
    fn mark(&mut self, session: usize) -> Result<Mark, Self::Error>;
    /// What is sent to parallel session `session` from now on runs once
    /// every session of `marks` has run everything before its mark (the
    /// sessions stay open: a wait costs what the others still have to do
    /// up to their marks, nothing more).
    fn wait(&mut self, session: usize, marks: &[Mark]) -> Result<(), Self::Error>;
    /// The rows of the `INSERT` `stmt` as the file `rows`, for parallel
    /// session `session`: whether the sink took them. If not, `stmt` is
    /// sent as it is.
    fn rows(
        &mut self,
        _session: usize,
        _stmt: &Stmt,
        _rows: load_data::RowsFile,
        _ctx: usize,
        _context: &[Stmt],
    ) -> Result<bool, Self::Error> {
        Ok(false)
    }
    /// The session a new table goes to (`0..jobs`).
    fn pick(&mut self, jobs: usize) -> usize;
    /// Nothing more for `session` for a while: send what is buffered.
    fn flush(&mut self, session: usize) -> Result<(), Self::Error>;
    /// The split ends here; the rest runs in one session.
    fn fallback(&mut self, reason: &str);
    /// A command for the client (mariadb-dump's sandbox line): every
    /// session started from now on gets it first.
    fn client_command(&mut self, _stmt: &Stmt) {}
    /// The whole dump has been read.
    fn end_of_input(&mut self) {}
    /// The `CREATE TABLE` of `table` (dump line `line`) goes as the dump
    /// wrote it: `why` the key rewriter left it alone.
    fn verbatim(&mut self, _table: &str, _line: u64, _why: &str) {}
    /// The rows of the large table `table` keep the dump's order (one
    /// session) from dump line `line` on: `why`.
    fn ordered(&mut self, _table: &str, _line: u64, _why: &str) {}
    /// The rows of `table` go to every session from dump line `line` on.
    fn spread(&mut self, _table: &str, _line: u64) {}
}

/// A point in one parallel session's input ([`Sink::mark`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub session: usize,
    /// The session's marks so far, this one included.
    pub n: u64,
}

/// What the split did, for the log and the version's metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SplitStats {
    pub tables: usize,
    pub deferred_tables: usize,
    /// Tables whose keys were not deferred because the rewriter did not
    /// fully understand their `CREATE TABLE`.
    pub verbatim_tables: usize,
    /// Tables whose rows went to several sessions.
    pub spread_tables: usize,
    /// `INSERT`s sent as `LOAD DATA` files.
    pub rows_files: u64,
    pub statements: u64,
    /// Why the split stopped (the rest ran in one session).
    pub fallback: Option<String>,
}

#[cfg(test)]
mod tests;
