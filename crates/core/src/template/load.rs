//! The split load: the dump read once on a blocking thread, cut into
//! statements, and fed to client sessions in the import container (one
//! `exec` of the client each) as [`crate::dump::split`] decides.
//!
//! Each session's input is a queue the splitter fills and the engine's
//! `exec` drains ([`feed`]). The queues together hold at most
//! [`READ_AHEAD`] bytes: while one session chews on a large table, the
//! splitter reads ahead to the next tables for the others, and waits when
//! the budget is spent. The parallel sessions live until something must
//! run alone: the order one table's spread rows need between them is kept
//! with marks and gates in their inputs, not by ending them.
//!
//! Rows the splitter converts ([`crate::dump::split::load_data`]) are
//! written as files into a folder the server sees, and the session gets a
//! `LOAD DATA` of the file followed by a mark: a file is removed once its
//! session's client has printed that mark, and the files not yet loaded
//! hold at most [`rows::ROWS_AHEAD`] bytes.

mod feed;
mod rows;
mod session;
mod start;

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dolly_engine::Engine;
use tokio::runtime::Handle;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use self::feed::{mark_sql, watch_marks, Budget, Feed, Progress};
use self::session::{close, Closed, Launch, Lifetime, Origin, Session};
pub(super) use self::start::{gate as start_gate, After};
use super::progress::Phase;
use crate::dump::split::load_data::RowsFile;
use crate::dump::split::{Mark, Sink, SplitOptions, SplitStats, Splitter};
use crate::dump::statements::{Stmt, Tokenizer};
use crate::dump::DumpReader;
use crate::mask::Masker;

/// Bytes of SQL queued for all sessions at most.
pub(super) const READ_AHEAD: u64 = 1 << 30;
/// A session's buffer is queued once it holds this much.
const CHUNK: usize = 1 << 20;
/// Where and how the sessions' clients run: `command` in `container`,
/// as `user`.
pub(super) struct Clients {
    pub engine: Arc<dyn Engine>,
    pub container: String,
    pub command: Vec<String>,
    pub user: String,
}

/// The sessions of one import, driven from a blocking thread.
pub(super) struct Loader {
    rt: Handle,
    clients: Arc<Clients>,
    budget: Arc<Budget>,
    serial: Option<Session>,
    /// A serial session whose input is complete, still running: the
    /// parallel sessions after it start when it ends well.
    closing: Option<Session>,
    parallel: Vec<Session>,
    /// What the next session to start waits for.
    after: After,
    jobs: usize,
    next: usize,
    phase: Arc<AtomicU8>,
    cancel: Arc<AtomicBool>,
    pub sessions_started: usize,
    /// What every new session reads first (mariadb-dump's sandbox line).
    preamble: Vec<u8>,
    /// In every mark's text: this import's, so no other output is taken
    /// for a mark.
    token: String,
    pub marks: u64,
    pub waits: u64,
    /// Milliseconds the parallel sessions spent at gates, summed.
    pub gated_ms: u64,
    /// Milliseconds from a session's `exec` to its client's first read,
    /// summed.
    pub start_ms: u64,
    rows: Option<rows::RowsOut>,
}

impl Loader {
    pub fn new(
        clients: Clients,
        jobs: usize,
        phase: Arc<AtomicU8>,
        cancel: Arc<AtomicBool>,
        after: After,
    ) -> Self {
        Self {
            rt: Handle::current(),
            clients: Arc::new(clients),
            budget: Budget::new(READ_AHEAD),
            serial: None,
            closing: None,
            parallel: Vec::new(),
            after,
            jobs: jobs.max(1),
            next: 0,
            phase,
            cancel,
            sessions_started: 0,
            preamble: Vec::new(),
            token: format!(
                "{:x}{:x}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
                    .unwrap_or(0)
            ),
            marks: 0,
            waits: 0,
            gated_ms: 0,
            start_ms: 0,
            rows: None,
        }
    }

    fn start(&mut self) -> Session {
        let feed = Feed::new(Arc::clone(&self.budget));
        let (progress_tx, progress) = watch::channel(0u64);
        let (finished, done) = start_gate();
        let launch = Launch {
            stdin: Box::pin(tokio_util::io::StreamReader::new(
                futures_util::stream::unfold(Arc::clone(&feed), Feed::next),
            )),
            watch: watch_marks(self.token.clone(), progress_tx),
            after: self.after.clone(),
            finished,
        };
        let mut buf = Vec::with_capacity(CHUNK + (CHUNK >> 2));
        let (mut line, mut map) = (0, Vec::new());
        if !self.preamble.is_empty() {
            buf.extend_from_slice(&self.preamble);
            map.push((1, Origin::Dolly));
            line = 1;
        }
        Session {
            feed,
            task: None,
            launch: Some(launch),
            wrote: false,
            done,
            progress,
            marks: 0,
            marked_at: 0,
            lifetime: Arc::default(),
            buf,
            delim: b";".to_vec(),
            cursor: 0,
            line,
            map,
        }
    }

    /// Starts `which`'s client once something of its own is to be sent
    /// (a session given nothing, like the second session of a one-table
    /// dump, never runs one). Its `exec` still waits for what must run
    /// before it ([`start`]).
    fn launch(&mut self, which: Which) {
        let (launch, times) = match self.session(which) {
            Some(s) if s.wrote => match s.launch.take() {
                Some(l) => (l, Arc::clone(&s.lifetime)),
                None => return,
            },
            _ => return,
        };
        let task = self
            .rt
            .spawn(run_client(Arc::clone(&self.clients), launch, times));
        if let Some(s) = self.session(which) {
            s.task = Some(task);
        }
        self.sessions_started += 1;
    }

    /// A session that ended before its input did failed: its error. A
    /// closing session's end is its own: one that ended well is put
    /// away, one that failed fails the load like any other.
    fn check_failed(&mut self) -> Result<(), String> {
        if let Some(s) = self.closing.take_if(|s| s.done.opened() == Some(true)) {
            self.close_all(vec![s])?;
        }
        // A closing session's client may end (well) at any moment: only
        // its own word that it did not is a failure. Any other session
        // ended before its input did.
        let failed = self
            .closing
            .as_ref()
            .is_some_and(|s| s.done.opened() == Some(false))
            || self
                .parallel
                .iter()
                .chain(&self.serial)
                .any(|s| s.task.as_ref().is_some_and(|t| t.is_finished()));
        if failed {
            // The others stop at once; the error through the normal close
            // (a closing session's first: it ran before them).
            let sessions: Vec<Session> = self
                .closing
                .take()
                .into_iter()
                .chain(self.parallel.drain(..))
                .chain(self.serial.take())
                .collect();
            for s in &sessions {
                s.feed.abort();
            }
            let err = self.close_all(sessions);
            return Err(err
                .err()
                .unwrap_or_else(|| "a client session ended early".to_owned()));
        }
        if self.cancel.load(Ordering::Relaxed) {
            return Err("cancelled".to_owned());
        }
        Ok(())
    }

    /// Queues `session`'s buffer, within the read-ahead budget.
    fn push(&mut self, which: Which) -> Result<(), String> {
        let len = match self.session(which) {
            Some(s) if !s.buf.is_empty() => s.buf.len() as u64,
            _ => return Ok(()),
        };
        loop {
            let used = *self.budget.used.lock().map_err(|e| e.to_string())?;
            if used == 0 || used + len <= self.budget.cap {
                break;
            }
            self.check_failed()?;
            let guard = self.budget.used.lock().map_err(|e| e.to_string())?;
            let _ = self
                .budget
                .freed
                .wait_timeout(guard, Duration::from_millis(200));
        }
        if let Ok(mut used) = self.budget.used.lock() {
            *used += len;
        }
        self.launch(which);
        if let Some(s) = self.session(which) {
            let data = std::mem::replace(&mut s.buf, Vec::with_capacity(CHUNK + (CHUNK >> 2)));
            s.feed.push(Bytes::from(data));
        }
        self.check_failed()
    }

    fn session(&mut self, which: Which) -> Option<&mut Session> {
        match which {
            Which::Serial => self.serial.as_mut(),
            Which::Parallel(k) => self.parallel.get_mut(k),
        }
    }

    fn write(
        &mut self,
        which: Which,
        stmt: &Stmt,
        ctx: usize,
        context: &[Stmt],
    ) -> Result<(), String> {
        let full = {
            let Some(s) = self.session(which) else {
                return Err("no such session".to_owned());
            };
            if s.cursor < ctx {
                for c in &context[s.cursor..ctx] {
                    s.write(c);
                }
                s.cursor = ctx;
            }
            s.write(stmt);
            s.buf.len() >= CHUNK
        };
        if full {
            self.push(which)?;
        }
        Ok(())
    }

    /// Ends every parallel session and waits for them: what was sent to
    /// them has run.
    fn end_parallel(&mut self) -> Result<(), String> {
        for k in 0..self.parallel.len() {
            self.push(Which::Parallel(k))?;
        }
        // The serial session before them first: its error is the one.
        let sessions: Vec<Session> = self
            .closing
            .take()
            .into_iter()
            .chain(self.parallel.drain(..))
            .collect();
        let closed = self.close_all(sessions);
        self.sweep_rows(true);
        closed
    }

    /// Ends every session; the first error of any.
    pub fn finish(&mut self) -> Result<(), String> {
        let mut result = self.end_parallel();
        if self.serial.is_some() {
            let r = self.push(Which::Serial);
            if result.is_ok() {
                result = r;
            }
            if let Some(s) = self.serial.take() {
                let r = self.close_all(vec![s]);
                if result.is_ok() {
                    result = r;
                }
            }
        }
        result
    }

    /// Closes the inputs of `sessions` and waits for their clients. Once
    /// one fails the others stop; the error is a client's own, before a
    /// gate that could not open because of it.
    fn close_all(&mut self, sessions: Vec<Session>) -> Result<(), String> {
        for s in &sessions {
            s.close_input();
        }
        let feeds: Vec<Arc<Feed>> = sessions.iter().map(|s| Arc::clone(&s.feed)).collect();
        let (mut client, mut gate) = (None, None);
        for (k, s) in sessions.into_iter().enumerate() {
            let (feed, lifetime) = (Arc::clone(&s.feed), Arc::clone(&s.lifetime));
            let r = close(&self.rt, s);
            // From its exec to its client's end.
            let times = lifetime.lock().map(|t| *t).unwrap_or_default();
            let now = Instant::now();
            let started = times.exec.unwrap_or(now);
            let (lived, gated, starved) = (
                times.end.unwrap_or(now).duration_since(started),
                feed.gated_ms(),
                feed.starved_ms(),
            );
            if let Some(first) = feed.first_read() {
                self.start_ms += first.saturating_duration_since(started).as_millis() as u64;
            }
            self.gated_ms += gated;
            debug!(
                session = k,
                lived_ms = lived.as_millis() as u64,
                gated_ms = gated,
                starved_ms = starved,
                "client session ended"
            );
            match r {
                Ok(()) => {}
                Err(Closed::Client(e)) => {
                    client.get_or_insert(e);
                    feeds.iter().for_each(|f| f.abort());
                }
                Err(Closed::Gate(e)) => {
                    gate.get_or_insert(e);
                    feeds.iter().for_each(|f| f.abort());
                }
            }
        }
        match client.or(gate) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Parallel sessions, started when the first statement for one comes.
    /// A serial session before them is not waited for here: its input
    /// ends, and their clients start once it has ended well, while the
    /// splitter reads on.
    fn ensure_parallel(&mut self) -> Result<(), String> {
        if self.serial.is_some() {
            self.push(Which::Serial)?;
            if let Some(s) = self.serial.take() {
                s.close_input();
                self.after = s.done.clone();
                self.closing = Some(s);
            }
        }
        if self.parallel.is_empty() {
            for _ in 0..self.jobs {
                let s = self.start();
                self.parallel.push(s);
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
enum Which {
    Serial,
    Parallel(usize),
}

impl Sink for Loader {
    type Error = String;

    fn serial(&mut self, stmt: &Stmt, ctx: usize, context: &[Stmt]) -> Result<(), String> {
        if !self.parallel.is_empty() || self.closing.is_some() {
            self.end_parallel()?;
        }
        if self.serial.is_none() {
            self.serial = Some(self.start());
        }
        self.write(Which::Serial, stmt, ctx, context)
    }

    fn parallel(
        &mut self,
        session: usize,
        stmt: &Stmt,
        ctx: usize,
        context: &[Stmt],
    ) -> Result<(), String> {
        self.ensure_parallel()?;
        self.write(
            Which::Parallel(session.min(self.jobs - 1)),
            stmt,
            ctx,
            context,
        )
    }

    fn pick(&mut self, jobs: usize) -> usize {
        let jobs = jobs.min(self.jobs).max(1);
        if self.parallel.is_empty() {
            self.next += 1;
            return (self.next - 1) % jobs;
        }
        self.sweep_rows(false);
        (0..jobs)
            .min_by_key(|&k| {
                let s = &self.parallel[k];
                // A byte of a rows file costs the server about half
                // what a byte of SQL does (bench/RESULTS.md, "One big
                // table").
                s.feed.queued() + s.buf.len() as u64 + self.rows_pending(k) / 2
            })
            .unwrap_or(0)
    }

    fn mark(&mut self, session: usize) -> Result<Mark, String> {
        self.ensure_parallel()?;
        let session = session.min(self.jobs - 1);
        let token = self.token.clone();
        let Some(s) = self.parallel.get_mut(session) else {
            return Err("no such session".to_owned());
        };
        if s.marks == 0 || s.marked_at != s.line {
            // Nothing new since its last mark: that one will do.
            s.marks += 1;
            s.write(&Stmt::synthetic(mark_sql(&token, s.marks)));
            s.marked_at = s.line;
            self.marks += 1;
        }
        Ok(Mark {
            session,
            n: s.marks,
        })
    }

    fn wait(&mut self, session: usize, marks: &[Mark]) -> Result<(), String> {
        self.ensure_parallel()?;
        let session = session.min(self.jobs - 1);
        // The marks reach their clients, what came before the gate too.
        for m in marks {
            self.push(Which::Parallel(m.session))?;
        }
        self.push(Which::Parallel(session))?;
        let gate: Vec<(Progress, u64)> = marks
            .iter()
            .filter(|m| m.session != session)
            .filter_map(|m| Some((self.parallel.get(m.session)?.progress.clone(), m.n)))
            .collect();
        if let Some(s) = self.parallel.get(session) {
            self.waits += 1;
            s.feed.push_gate(gate);
        }
        Ok(())
    }

    fn rows(
        &mut self,
        session: usize,
        stmt: &Stmt,
        rows: RowsFile,
        ctx: usize,
        context: &[Stmt],
    ) -> Result<bool, String> {
        self.write_rows(session, stmt, rows, ctx, context)
    }

    fn flush(&mut self, session: usize) -> Result<(), String> {
        if session < self.parallel.len() {
            self.push(Which::Parallel(session))?;
        }
        Ok(())
    }

    fn fallback(&mut self, reason: &str) {
        warn!(
            reason,
            "the dump cannot be split safely from here on: the rest loads in one session"
        );
    }

    fn client_command(&mut self, stmt: &Stmt) {
        let mut line = stmt.text.clone();
        line.push(b'\n');
        self.preamble = line;
    }

    fn verbatim(&mut self, table: &str, line: u64, why: &str) {
        info!(
            table,
            line,
            reason = why,
            "keys not deferred: the CREATE TABLE goes as the dump wrote it"
        );
    }

    fn spread(&mut self, table: &str, line: u64) {
        info!(
            table,
            line,
            sessions = self.jobs,
            "rows spread over every session from here on"
        );
    }

    fn ordered(&mut self, table: &str, line: u64, why: &str) {
        info!(
            table,
            line,
            reason = why,
            "a large table's rows load in one session, in the dump's order"
        );
    }

    fn end_of_input(&mut self) {
        self.phase.store(Phase::Indexes as u8, Ordering::Relaxed);
    }
}

/// A session's client: once what it waits for allows, its `exec`, which
/// reads the session's input to its end. `None` if it never may start.
async fn run_client(
    clients: Arc<Clients>,
    launch: Launch,
    times: Arc<std::sync::Mutex<Lifetime>>,
) -> Option<Result<dolly_engine::ExecOutput, dolly_engine::EngineError>> {
    let Launch {
        stdin,
        watch,
        after,
        finished,
    } = launch;
    if !after.wait().await {
        finished.open(false);
        return None;
    }
    if let Ok(mut t) = times.lock() {
        t.exec = Some(Instant::now());
    }
    let out = clients
        .engine
        .exec_watched(
            &clients.container,
            clients.command.clone(),
            Some(clients.user.clone()),
            Some(stdin),
            watch,
        )
        .await;
    if let Ok(mut t) = times.lock() {
        t.end = Some(Instant::now());
    }
    finished.open(matches!(&out, Ok(o) if o.exit_code == 0));
    Some(out)
}

/// Reads the dump, splits it and runs it; blocking.
pub(super) fn run(
    loader: Loader,
    mut reader: DumpReader,
    opts: SplitOptions,
    mut masker: Option<Masker>,
) -> Result<SplitStats, String> {
    let cancel = Arc::clone(&loader.cancel);
    let mut splitter = Splitter::new(loader, opts);
    let mut tok = Tokenizer::new();
    let mut buf = vec![0u8; 1 << 20];
    let result = (|| {
        loop {
            if cancel.load(Ordering::Relaxed) {
                return Err("cancelled".to_owned());
            }
            let n = reader
                .read(&mut buf)
                .map_err(|e| format!("cannot read the dump: {e}"))?;
            if n == 0 {
                break;
            }
            tok.feed(&buf[..n], &mut |st| {
                splitter.statement(super::masking::apply(&mut masker, st)?)
            })?;
        }
        tok.finish(&mut |st| splitter.statement(super::masking::apply(&mut masker, st)?))?;
        if let Some(m) = &masker {
            m.finish().map_err(|e| e.to_string())?;
        }
        splitter.finish()
    })();
    let finished = splitter.sink.finish();
    // A read error comes first; then what a session said.
    match (result, finished) {
        (Err(e), _) if e.starts_with("cannot read") => Err(e),
        (_, Err(e)) => Err(e),
        (Err(e), Ok(())) => Err(e),
        (Ok(()), Ok(())) => {
            let stats = splitter.stats.clone();
            info!(
                tables = stats.tables,
                deferred_key_tables = stats.deferred_tables,
                verbatim_tables = stats.verbatim_tables,
                spread_tables = stats.spread_tables,
                rows_files = stats.rows_files,
                sessions = splitter.sink.sessions_started,
                marks = splitter.sink.marks,
                waits = splitter.sink.waits,
                gated_ms = splitter.sink.gated_ms,
                session_start_ms = splitter.sink.start_ms,
                statements = stats.statements,
                fallback = stats.fallback.as_deref().unwrap_or("none"),
                "dump loaded by table"
            );
            Ok(stats)
        }
    }
}

#[cfg(test)]
mod tests;
