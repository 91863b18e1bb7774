//! A session's input: a queue of SQL the splitter fills and the client's
//! `exec` drains, with gates in it. A gate holds the rest of the queue
//! back until other sessions have run up to a mark: a `SELECT` of a
//! unique text whose output the session's standard-output watcher counts.
//! Sessions are ordered this way without ending their clients.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use bytes::Bytes;
use dolly_engine::StdoutWatch;
use tokio::sync::watch;

/// The read-ahead budget the queues of one import share.
pub(in crate::template) struct Budget {
    pub used: Mutex<u64>,
    pub freed: Condvar,
    pub cap: u64,
}

impl Budget {
    pub fn new(cap: u64) -> Arc<Self> {
        Arc::new(Self {
            used: Mutex::new(0),
            freed: Condvar::new(),
            cap,
        })
    }

    pub fn release(&self, n: u64) {
        if let Ok(mut used) = self.used.lock() {
            *used = used.saturating_sub(n);
        }
        self.freed.notify_all();
    }
}

/// A session's progress: the marks its client has printed.
pub(in crate::template) type Progress = watch::Receiver<u64>;

enum Item {
    Data(Bytes),
    /// Wait until each session's progress reaches its mark.
    Gate(Vec<(Progress, u64)>),
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Item>,
    queued: u64,
    closed: bool,
}

pub(in crate::template) struct Feed {
    queue: Mutex<Queue>,
    notify: tokio::sync::Notify,
    budget: Arc<Budget>,
    /// Another session failed: the input ends now, gates or not.
    aborted: AtomicBool,
    /// A gate could not open (the session it waited for ended first).
    broken: Mutex<Option<String>>,
    /// Nanoseconds spent at gates.
    gated_ns: AtomicU64,
    /// Nanoseconds the client waited for input the splitter had not sent
    /// yet (its queue empty, not closed).
    starved_ns: AtomicU64,
    /// When the client first read its input (its `exec` has started).
    first_read: Mutex<Option<Instant>>,
}

impl Feed {
    pub fn new(budget: Arc<Budget>) -> Arc<Self> {
        Arc::new(Self {
            queue: Mutex::new(Queue::default()),
            notify: tokio::sync::Notify::new(),
            budget,
            aborted: AtomicBool::new(false),
            broken: Mutex::new(None),
            gated_ns: AtomicU64::new(0),
            starved_ns: AtomicU64::new(0),
            first_read: Mutex::new(None),
        })
    }

    /// The next piece of input: a stream for the client's standard input.
    pub async fn next(self: Arc<Self>) -> Option<(io::Result<Bytes>, Arc<Self>)> {
        if let Ok(mut f) = self.first_read.lock() {
            f.get_or_insert_with(Instant::now);
        }
        loop {
            if self.aborted.load(Ordering::Relaxed) {
                return None;
            }
            let popped = {
                let mut q = self.queue.lock().ok()?;
                match q.items.pop_front() {
                    Some(Item::Data(b)) => {
                        q.queued -= b.len() as u64;
                        Some(Ok(b))
                    }
                    Some(Item::Gate(g)) => Some(Err(g)),
                    None if q.closed => return None,
                    None => None,
                }
            };
            match popped {
                Some(Ok(b)) => {
                    self.budget.release(b.len() as u64);
                    return Some((Ok(b), self));
                }
                Some(Err(gate)) => {
                    if let Err(why) = self.pass(gate).await {
                        if self.aborted.load(Ordering::Relaxed) {
                            return None;
                        }
                        if let Ok(mut b) = self.broken.lock() {
                            *b = Some(why.clone());
                        }
                        return Some((Err(io::Error::other(why)), self));
                    }
                }
                None => {
                    let t0 = Instant::now();
                    self.notify.notified().await;
                    self.starved_ns.fetch_add(nanos(t0), Ordering::Relaxed);
                }
            }
        }
    }

    /// Waits at a gate; why it cannot open.
    async fn pass(&self, gate: Vec<(Progress, u64)>) -> Result<(), String> {
        let t0 = Instant::now();
        for (mut rx, n) in gate {
            loop {
                if self.aborted.load(Ordering::Relaxed) {
                    return Err("aborted".to_owned());
                }
                let reached = tokio::select! {
                    r = rx.wait_for(|v| *v >= n) => Some(r.is_ok()),
                    // A push or an abort: look again.
                    () = self.notify.notified() => None,
                };
                match reached {
                    Some(true) => break,
                    Some(false) if *rx.borrow() >= n => break,
                    Some(false) => {
                        return Err(format!(
                            "a session this one waited for ended before its mark {n}"
                        ))
                    }
                    None => {}
                }
            }
        }
        let waited = nanos(t0);
        tracing::debug!(ms = waited / 1_000_000, "a gate opened");
        self.gated_ns.fetch_add(waited, Ordering::Relaxed);
        Ok(())
    }

    pub fn push(&self, b: Bytes) {
        if let Ok(mut q) = self.queue.lock() {
            q.queued += b.len() as u64;
            q.items.push_back(Item::Data(b));
        }
        self.notify.notify_one();
    }

    /// What is pushed from now on waits until each progress reaches its
    /// mark.
    pub fn push_gate(&self, gate: Vec<(Progress, u64)>) {
        if gate.is_empty() {
            return;
        }
        if let Ok(mut q) = self.queue.lock() {
            q.items.push_back(Item::Gate(gate));
        }
        self.notify.notify_one();
    }

    /// No more input: the client ends once it has run what is queued.
    pub fn close(&self) {
        if let Ok(mut q) = self.queue.lock() {
            q.closed = true;
        }
        self.notify.notify_one();
    }

    /// The input ends now (another session failed).
    pub fn abort(&self) {
        self.aborted.store(true, Ordering::Relaxed);
        self.close();
    }

    pub fn queued(&self) -> u64 {
        self.queue.lock().map(|q| q.queued).unwrap_or(0)
    }

    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// Why a gate of this session could not open.
    pub fn broken(&self) -> Option<String> {
        self.broken.lock().ok().and_then(|b| b.clone())
    }

    pub fn gated_ms(&self) -> u64 {
        self.gated_ns.load(Ordering::Relaxed) / 1_000_000
    }

    pub fn starved_ms(&self) -> u64 {
        self.starved_ns.load(Ordering::Relaxed) / 1_000_000
    }

    pub fn first_read(&self) -> Option<Instant> {
        self.first_read.lock().ok().and_then(|f| *f)
    }
}

fn nanos(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The text a mark prints: `dolly-mark TOKEN N`.
pub(in crate::template) fn mark_sql(token: &str, n: u64) -> String {
    format!("SELECT 'dolly-mark {token} {n}'")
}

/// A watcher of a client's standard output that counts its marks (lines
/// `dolly-mark TOKEN N`; the client prints each twice, as the column's
/// name and as its value) into `progress`. Dropped when the client ends,
/// which the gates waiting for it see.
pub(in crate::template) fn watch_marks(token: String, progress: watch::Sender<u64>) -> StdoutWatch {
    let prefix = format!("dolly-mark {token} ").into_bytes();
    let mut line: Vec<u8> = Vec::with_capacity(128);
    let mut long = false;
    Box::new(move |bytes: &[u8]| {
        for &b in bytes {
            if b == b'\n' {
                if !long {
                    let n = line
                        .strip_prefix(prefix.as_slice())
                        .and_then(|rest| std::str::from_utf8(rest).ok())
                        .and_then(|rest| rest.trim_end_matches('\r').parse::<u64>().ok());
                    if let Some(n) = n {
                        progress.send_if_modified(|v| {
                            let newer = n > *v;
                            if newer {
                                *v = n;
                            }
                            newer
                        });
                    }
                }
                line.clear();
                long = false;
            } else if line.len() < 128 {
                line.push(b);
            } else {
                long = true;
            }
        }
    })
}

#[cfg(test)]
mod tests;
