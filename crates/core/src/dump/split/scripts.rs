//! A sink that writes each session's script as text (tests, tools).

use super::{Mark, Sink, SplitOptions, SplitStats, Splitter};
use crate::dump::statements::Stmt;

/// A [`Sink`] that writes each session's script as text: for tests and
/// for checking what a dump splits into. A mark is a line `-- mark S.N`
/// in session S's script, a wait a line `-- wait S.N` before the next
/// statement of the session that waits; a wait also starts a new parallel
/// phase (the order a barrier would give).
#[derive(Debug, Default)]
pub struct Scripts {
    /// Everything, in the order it would run: `("serial", text)` or
    /// `("parallel", [session texts])` phases.
    pub phases: Vec<Phase>,
    pub fallbacks: Vec<String>,
    /// Tables whose rows went to every session.
    pub spread: Vec<String>,
    /// Large tables whose rows kept the dump's order, and why.
    pub ordered: Vec<(String, String)>,
    cursors: Vec<usize>,
    /// The next parallel statement starts a new phase.
    barrier: bool,
    delims: Vec<Vec<u8>>,
    next: usize,
    /// Marks so far, by session.
    marks: Vec<u64>,
    /// `-- wait` lines for a session's next statement.
    waits: Vec<(usize, String)>,
    /// Every mark and wait, in order: `mark S.N`, `S waits T.N`.
    pub gates: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    Serial(String),
    Parallel(Vec<String>),
}

impl Scripts {
    fn write(&mut self, slot: usize, stmt: &Stmt, ctx: usize, context: &[Stmt]) {
        let mut text = String::new();
        let cursor = self.cursors[slot];
        for c in &context[cursor.min(ctx)..ctx] {
            write_stmt(&mut text, &mut self.delims[slot], c);
        }
        self.cursors[slot] = self.cursors[slot].max(ctx);
        write_stmt(&mut text, &mut self.delims[slot], stmt);
        match self.phases.last_mut() {
            Some(Phase::Serial(s)) => s.push_str(&text),
            Some(Phase::Parallel(v)) => v[slot].push_str(&text),
            None => {}
        }
    }
}

/// Appends `stmt` as a client reads it (a `DELIMITER` line first when the
/// delimiter changes).
pub fn write_stmt(out: &mut String, delim: &mut Vec<u8>, stmt: &Stmt) {
    if *delim != stmt.delim {
        out.push_str("DELIMITER ");
        out.push_str(&String::from_utf8_lossy(&stmt.delim));
        out.push('\n');
        *delim = stmt.delim.clone();
    }
    out.push_str(&String::from_utf8_lossy(&stmt.text));
    out.push_str(&String::from_utf8_lossy(&stmt.delim));
    out.push('\n');
}

impl Sink for Scripts {
    type Error = std::convert::Infallible;

    fn serial(&mut self, stmt: &Stmt, ctx: usize, context: &[Stmt]) -> Result<(), Self::Error> {
        if !matches!(self.phases.last(), Some(Phase::Serial(_))) {
            self.phases.push(Phase::Serial(String::new()));
            self.cursors = vec![0];
            self.delims = vec![b";".to_vec()];
        }
        self.write(0, stmt, ctx, context);
        Ok(())
    }

    fn parallel(
        &mut self,
        session: usize,
        stmt: &Stmt,
        ctx: usize,
        context: &[Stmt],
    ) -> Result<(), Self::Error> {
        if !matches!(self.phases.last(), Some(Phase::Parallel(_))) || self.barrier {
            self.barrier = false;
            let n = self.next.max(session + 1);
            self.phases.push(Phase::Parallel(vec![String::new(); n]));
            self.cursors = vec![0; n];
            self.delims = vec![b";".to_vec(); n];
        }
        if let Some(Phase::Parallel(v)) = self.phases.last_mut() {
            while v.len() <= session {
                v.push(String::new());
                self.cursors.push(0);
                self.delims.push(b";".to_vec());
            }
        }
        let mut lines = String::new();
        self.waits.retain(|(s, line)| {
            if *s == session {
                lines.push_str(line);
            }
            *s != session
        });
        if let Some(Phase::Parallel(v)) = self.phases.last_mut() {
            v[session].push_str(&lines);
        }
        self.write(session, stmt, ctx, context);
        Ok(())
    }

    fn mark(&mut self, session: usize) -> Result<Mark, Self::Error> {
        if self.marks.len() <= session {
            self.marks.resize(session + 1, 0);
        }
        self.marks[session] += 1;
        let n = self.marks[session];
        if let Some(Phase::Parallel(v)) = self.phases.last_mut() {
            if let Some(text) = v.get_mut(session) {
                text.push_str(&format!("-- mark {session}.{n}\n"));
            }
        }
        self.gates.push(format!("mark {session}.{n}"));
        Ok(Mark { session, n })
    }

    fn wait(&mut self, session: usize, marks: &[Mark]) -> Result<(), Self::Error> {
        self.barrier = true;
        for m in marks {
            self.waits
                .push((session, format!("-- wait {}.{}\n", m.session, m.n)));
            self.gates
                .push(format!("{session} waits {}.{}", m.session, m.n));
        }
        Ok(())
    }

    fn pick(&mut self, jobs: usize) -> usize {
        let s = self.next % jobs;
        self.next += 1;
        s
    }

    fn flush(&mut self, _session: usize) -> Result<(), Self::Error> {
        Ok(())
    }

    fn spread(&mut self, table: &str, _line: u64) {
        self.spread.push(table.to_owned());
    }

    fn ordered(&mut self, table: &str, _line: u64, why: &str) {
        self.ordered.push((table.to_owned(), why.to_owned()));
    }

    fn fallback(&mut self, reason: &str) {
        self.fallbacks.push(reason.to_owned());
    }
}

/// Splits a whole dump held in memory (tests, tools).
pub fn split_text(dump: &[u8], opts: SplitOptions) -> (Scripts, SplitStats) {
    let mut splitter = Splitter::new(Scripts::default(), opts);
    let mut tok = crate::dump::statements::Tokenizer::new();
    let mut push = |st: Stmt| splitter.statement(st);
    let Ok(()) = tok.feed(dump, &mut push);
    let Ok(()) = tok.finish(&mut push);
    let Ok(()) = splitter.finish();
    let stats = splitter.stats.clone();
    (splitter.sink, stats)
}
