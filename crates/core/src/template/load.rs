//! The split load: the dump read once on a blocking thread, cut into
//! statements, and fed to client sessions in the import container (one
//! `exec` of the client each) as [`crate::dump::split`] decides.
//!
//! Each session's input is a queue the splitter fills and the engine's
//! `exec` drains. The queues together hold at most [`READ_AHEAD`] bytes:
//! while one session chews on a large table, the splitter reads ahead to the
//! next tables for the others, and waits when the budget is spent.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use bytes::Bytes;
use dolly_engine::{Engine, EngineError, ExecOutput, Stdin};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::progress::Phase;
use crate::dump::split::{Sink, SplitOptions, SplitStats, Splitter};
use crate::dump::statements::{Stmt, Tokenizer};
use crate::dump::DumpReader;
use crate::mask::Masker;

/// Bytes of SQL queued for all sessions at most.
pub(super) const READ_AHEAD: u64 = 1 << 30;
/// A session's buffer is queued once it holds this much.
const CHUNK: usize = 1 << 20;

struct Budget {
    used: Mutex<u64>,
    freed: Condvar,
    cap: u64,
}

impl Budget {
    fn release(&self, n: u64) {
        if let Ok(mut used) = self.used.lock() {
            *used = used.saturating_sub(n);
        }
        self.freed.notify_all();
    }
}

#[derive(Default)]
struct Queue {
    chunks: VecDeque<Bytes>,
    queued: u64,
    closed: bool,
}

struct Feed {
    queue: Mutex<Queue>,
    notify: tokio::sync::Notify,
    budget: Arc<Budget>,
}

impl Feed {
    async fn next(self: Arc<Self>) -> Option<(io::Result<Bytes>, Arc<Self>)> {
        loop {
            let popped = {
                let mut q = self.queue.lock().ok()?;
                match q.chunks.pop_front() {
                    Some(b) => {
                        q.queued -= b.len() as u64;
                        Some(b)
                    }
                    None if q.closed => return None,
                    None => None,
                }
            };
            if let Some(b) = popped {
                self.budget.release(b.len() as u64);
                return Some((Ok(b), self));
            }
            self.notify.notified().await;
        }
    }

    fn push(&self, b: Bytes) {
        if let Ok(mut q) = self.queue.lock() {
            q.queued += b.len() as u64;
            q.chunks.push_back(b);
        }
        self.notify.notify_one();
    }

    fn close(&self) {
        if let Ok(mut q) = self.queue.lock() {
            q.closed = true;
        }
        self.notify.notify_one();
    }

    fn queued(&self) -> u64 {
        self.queue.lock().map(|q| q.queued).unwrap_or(0)
    }
}

/// Where a line of a session's input came from.
#[derive(Debug, Clone)]
enum Origin {
    Dump(u64),
    Dolly,
}

struct Session {
    feed: Arc<Feed>,
    task: Option<JoinHandle<Result<ExecOutput, EngineError>>>,
    buf: Vec<u8>,
    delim: Vec<u8>,
    cursor: usize,
    /// Lines written so far.
    line: u64,
    /// (first line in this session's input, origin), in order.
    map: Vec<(u64, Origin)>,
}

impl Session {
    fn write(&mut self, stmt: &Stmt) {
        if self.delim != stmt.delim {
            self.buf.extend_from_slice(b"DELIMITER ");
            self.buf.extend_from_slice(&stmt.delim);
            self.buf.push(b'\n');
            self.delim = stmt.delim.clone();
            self.line += 1;
        }
        let origin = if stmt.line == 0 {
            Origin::Dolly
        } else {
            Origin::Dump(stmt.line)
        };
        self.map.push((self.line + 1, origin));
        self.buf.extend_from_slice(&stmt.text);
        self.buf.extend_from_slice(&stmt.delim);
        self.buf.push(b'\n');
        self.line += 1 + memchr::memchr_iter(b'\n', &stmt.text).count() as u64;
    }

    /// The client's "at line N" in terms of the dump.
    fn translate(&self, message: &str) -> String {
        let Some(at) = message.find(" at line ") else {
            return message.to_owned();
        };
        let digits: String = message[at + 9..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        let Ok(n) = digits.parse::<u64>() else {
            return message.to_owned();
        };
        let entry = self.map.iter().rev().find(|(first, _)| *first <= n);
        let replacement = match entry {
            Some((first, Origin::Dump(line))) => format!(" at line {}", line + (n - first)),
            Some((_, Origin::Dolly)) => " in SQL dolly added (deferred keys)".to_owned(),
            None => return message.to_owned(),
        };
        format!(
            "{}{}{}",
            &message[..at],
            replacement,
            &message[at + 9 + digits.len()..]
        )
    }
}

/// The sessions of one import, driven from a blocking thread.
pub(super) struct Loader {
    rt: Handle,
    engine: Arc<dyn Engine>,
    container: String,
    client: Vec<String>,
    user: String,
    budget: Arc<Budget>,
    serial: Option<Session>,
    parallel: Vec<Session>,
    jobs: usize,
    next: usize,
    phase: Arc<AtomicU8>,
    cancel: Arc<AtomicBool>,
    pub sessions_started: usize,
    /// What every new session reads first (mariadb-dump's sandbox line).
    preamble: Vec<u8>,
}

impl Loader {
    pub fn new(
        engine: Arc<dyn Engine>,
        container: String,
        client: Vec<String>,
        user: String,
        jobs: usize,
        phase: Arc<AtomicU8>,
        cancel: Arc<AtomicBool>,
    ) -> Self {
        Self {
            rt: Handle::current(),
            engine,
            container,
            client,
            user,
            budget: Arc::new(Budget {
                used: Mutex::new(0),
                freed: Condvar::new(),
                cap: READ_AHEAD,
            }),
            serial: None,
            parallel: Vec::new(),
            jobs: jobs.max(1),
            next: 0,
            phase,
            cancel,
            sessions_started: 0,
            preamble: Vec::new(),
        }
    }

    fn start(&mut self) -> Session {
        let feed = Arc::new(Feed {
            queue: Mutex::new(Queue::default()),
            notify: tokio::sync::Notify::new(),
            budget: Arc::clone(&self.budget),
        });
        let stream = futures_util::stream::unfold(Arc::clone(&feed), Feed::next);
        let stdin: Stdin = Box::pin(tokio_util::io::StreamReader::new(stream));
        let (engine, container, cmd, user) = (
            Arc::clone(&self.engine),
            self.container.clone(),
            self.client.clone(),
            self.user.clone(),
        );
        let task = self
            .rt
            .spawn(async move { engine.exec(&container, cmd, Some(user), Some(stdin)).await });
        self.sessions_started += 1;
        let mut buf = Vec::with_capacity(CHUNK + (CHUNK >> 2));
        let (mut line, mut map) = (0, Vec::new());
        if !self.preamble.is_empty() {
            buf.extend_from_slice(&self.preamble);
            map.push((1, Origin::Dolly));
            line = 1;
        }
        Session {
            feed,
            task: Some(task),
            buf,
            delim: b";".to_vec(),
            cursor: 0,
            line,
            map,
        }
    }

    /// A session that ended before its input did failed: its error.
    fn check_failed(&mut self) -> Result<(), String> {
        let failed = self
            .parallel
            .iter()
            .chain(self.serial.iter())
            .any(|s| s.task.as_ref().is_some_and(|t| t.is_finished()));
        if failed {
            // Collect the error through the normal close.
            let mut err = Ok(());
            for s in self.parallel.drain(..).chain(self.serial.take()) {
                let r = close(&self.rt, s);
                if err.is_ok() {
                    err = r;
                }
            }
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
        let mut result = Ok(());
        for s in self.parallel.drain(..) {
            let r = close(&self.rt, s);
            if result.is_ok() {
                result = r;
            }
        }
        result
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
                let r = close(&self.rt, s);
                if result.is_ok() {
                    result = r;
                }
            }
        }
        result
    }
}

#[derive(Debug, Clone, Copy)]
enum Which {
    Serial,
    Parallel(usize),
}

/// Closes a session's input and waits for its client: its error, with the
/// dump's line number.
fn close(rt: &Handle, mut s: Session) -> Result<(), String> {
    if !s.buf.is_empty() {
        let data = std::mem::take(&mut s.buf);
        s.feed
            .budget
            .used
            .lock()
            .map(|mut u| *u += data.len() as u64)
            .ok();
        s.feed.push(Bytes::from(data));
    }
    s.feed.close();
    let Some(task) = s.task.take() else {
        return Ok(());
    };
    let out = rt
        .block_on(task)
        .map_err(|e| format!("a client session failed: {e}"))?
        .map_err(|e| e.to_string())?;
    // What it did not read goes back to the budget.
    let left = s.feed.queued();
    s.feed.budget.release(left);
    if out.exit_code != 0 {
        let last = out.stderr.trim().lines().last().unwrap_or("").to_owned();
        return Err(if last.is_empty() {
            format!("the client exited with status {}", out.exit_code)
        } else {
            s.translate(&last)
        });
    }
    Ok(())
}

impl Sink for Loader {
    type Error = String;

    fn serial(&mut self, stmt: &Stmt, ctx: usize, context: &[Stmt]) -> Result<(), String> {
        if !self.parallel.is_empty() {
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
        if let Some(s) = self.serial.take() {
            self.serial = Some(s);
            self.push(Which::Serial)?;
            if let Some(s) = self.serial.take() {
                close(&self.rt, s)?;
            }
        }
        if self.parallel.is_empty() {
            for _ in 0..self.jobs {
                let s = self.start();
                self.parallel.push(s);
            }
        }
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
        (0..jobs)
            .min_by_key(|&k| {
                let s = &self.parallel[k];
                s.feed.queued() + s.buf.len() as u64
            })
            .unwrap_or(0)
    }

    fn barrier(&mut self) -> Result<(), String> {
        self.end_parallel()
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
                sessions = splitter.sink.sessions_started,
                statements = stats.statements,
                fallback = stats.fallback.as_deref().unwrap_or("none"),
                "dump loaded by table"
            );
            Ok(stats)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_dump_line() {
        let (feed, _) = (
            Arc::new(Feed {
                queue: Mutex::new(Queue::default()),
                notify: tokio::sync::Notify::new(),
                budget: Arc::new(Budget {
                    used: Mutex::new(0),
                    freed: Condvar::new(),
                    cap: 1,
                }),
            }),
            (),
        );
        let mut s = Session {
            feed,
            task: None,
            buf: Vec::new(),
            delim: b";".to_vec(),
            cursor: 0,
            line: 0,
            map: Vec::new(),
        };
        s.write(&Stmt {
            text: b"SET NAMES utf8mb4".to_vec(),
            delim: b";".to_vec(),
            line: 3,
        });
        s.write(&Stmt {
            text: b"CREATE TRIGGER x\nBEGIN\nEND".to_vec(),
            delim: b";;".to_vec(),
            line: 40,
        });
        s.write(&Stmt::synthetic("ALTER TABLE t ADD KEY k (a)"));
        // Line 1: SET; 2: DELIMITER ;;; 3-5: the trigger; 6: DELIMITER ;; 7: ALTER.
        assert_eq!(
            s.translate("ERROR 1064 (42000) at line 4: syntax"),
            "ERROR 1064 (42000) at line 41: syntax"
        );
        assert_eq!(
            s.translate("ERROR 1 (x) at line 7: no"),
            "ERROR 1 (x) in SQL dolly added (deferred keys): no"
        );
    }
}
