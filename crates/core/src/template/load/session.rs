//! One client session of a split load: what it has been sent (for the
//! client's line numbers in terms of the dump), and how it ends.

use std::sync::Arc;
use std::time::Instant;

use dolly_engine::{EngineError, ExecOutput, Stdin, StdoutWatch};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use super::feed::{Feed, Progress};
use super::start::{After, Opener};
use crate::dump::statements::Stmt;

/// Where a line of a session's input came from.
#[derive(Debug, Clone)]
pub(super) enum Origin {
    Dump(u64),
    Dolly,
}

pub(super) struct Session {
    pub(super) feed: Arc<Feed>,
    /// Its client's end, once started: `None` from the task if the client
    /// never may ([`super::start`]).
    pub(super) task: Option<JoinHandle<Option<Result<ExecOutput, EngineError>>>>,
    /// What its client starts with, until it does.
    pub(super) launch: Option<Launch>,
    /// Something of its own was written (not only the preamble every
    /// session reads first).
    pub(super) wrote: bool,
    /// Opens once its client has ended well: what a session after it
    /// waits for.
    pub(super) done: After,
    /// The marks its client has printed.
    pub(super) progress: Progress,
    /// Marks written, and its line count at the last one.
    pub(super) marks: u64,
    pub(super) marked_at: u64,
    /// When its client started and ended.
    pub(super) lifetime: Arc<std::sync::Mutex<Lifetime>>,
    pub(super) buf: Vec<u8>,
    pub(super) delim: Vec<u8>,
    pub(super) cursor: usize,
    /// Lines written so far.
    pub(super) line: u64,
    /// (first line in this session's input, origin), in order.
    pub(super) map: Vec<(u64, Origin)>,
}

/// A session's client, not started yet: its input, the watcher of its
/// output, what it waits for, and what says how it ended.
pub(super) struct Launch {
    pub(super) stdin: Stdin,
    pub(super) watch: StdoutWatch,
    pub(super) after: After,
    pub(super) finished: Opener,
}

impl Session {
    pub(super) fn write(&mut self, stmt: &Stmt) {
        self.wrote = true;
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
    pub(super) fn translate(&self, message: &str) -> String {
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

/// When a session's client ran: its `exec` waits first for what must
/// run before it ([`super::start`]).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Lifetime {
    pub(super) exec: Option<Instant>,
    pub(super) end: Option<Instant>,
}

/// How a session ended badly.
pub(super) enum Closed {
    /// Its client failed (or could not run): its error.
    Client(String),
    /// A gate in its input could not open: another session ended first.
    Gate(String),
}

impl Session {
    /// What is buffered goes to the queue, then the input ends.
    pub(super) fn close_input(&self) {
        self.feed.close();
    }
}

/// Waits for a session's client (its input closed): its error, with the
/// dump's line number.
pub(super) fn close(rt: &Handle, mut s: Session) -> Result<(), Closed> {
    let Some(task) = s.task.take() else {
        // Given nothing of its own, its client never started: it ended
        // well, and what was queued for it goes back to the budget.
        if let Some(l) = s.launch.take() {
            l.finished.open(true);
        }
        s.feed.budget().release(s.feed.queued());
        return Ok(());
    };
    let out = rt
        .block_on(task)
        .map_err(|e| Closed::Client(format!("a client session failed: {e}")))?
        .ok_or_else(|| {
            // What kept it from starting failed, and says so itself.
            Closed::Gate(
                "the session did not start: the server or a session before it failed".to_owned(),
            )
        })?
        .map_err(|e| Closed::Client(e.to_string()))?;
    // What it did not read goes back to the budget.
    let left = s.feed.queued();
    s.feed.budget().release(left);
    if out.exit_code != 0 {
        let last = out.stderr.trim().lines().last().unwrap_or("").to_owned();
        return Err(Closed::Client(if last.is_empty() {
            format!("the client exited with status {}", out.exit_code)
        } else {
            s.translate(&last)
        }));
    }
    if let Some(why) = s.feed.broken() {
        return Err(Closed::Gate(why));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::load::feed::Budget;
    use tokio::sync::watch;

    #[test]
    fn errors_name_the_dump_line() {
        let feed = Feed::new(Budget::new(1));
        let mut s = Session {
            feed,
            task: None,
            launch: None,
            wrote: false,
            done: After::now(),
            progress: watch::channel(0).1,
            marks: 0,
            marked_at: 0,
            lifetime: Arc::default(),
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
