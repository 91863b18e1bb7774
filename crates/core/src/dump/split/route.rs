//! The router: each statement of the dump to a session, in an order that
//! gives the result a single session would.

use std::collections::{HashMap, HashSet};

use super::classify::{
    classify, disable_or_enable_keys, mentions_foreign_key, sets_autocommit, sets_fk_checks,
    sets_no_backslash_escapes, Kind, TableOp,
};
use super::load_data;
use super::names::Names;
use super::spread::{rows, shape, Rows, Spread};
use super::{Mark, Sink, SplitOptions, SplitStats};
use crate::dump::keys::{defer_keys, Verbatim};
use crate::dump::statements::Stmt;

type TableKey = (Option<String>, String);

#[derive(Debug, Default)]
struct TableState {
    session: usize,
    /// Deferred `ALTER TABLE ... ADD KEY` statements, sent after the data.
    pending: Vec<Stmt>,
    had_data: bool,
    /// Where its rows go.
    spread: Spread,
    /// Bytes of its rows so far.
    row_bytes: u64,
    /// Why its rows keep the dump's order has been said.
    said: bool,
    /// Its session's input just after its `CREATE TABLE` (a table whose
    /// rows may spread): where the other sessions start from.
    created: Option<Mark>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Before the first table: everything but session state runs alone.
    Header,
    Parallel,
    /// The rest of the dump in one session, unchanged.
    Fallback,
}

pub struct Splitter<S: Sink> {
    pub sink: S,
    opts: SplitOptions,
    context: Vec<Stmt>,
    current_db: Option<String>,
    mode: Mode,
    tables: HashMap<TableKey, TableState>,
    order: Vec<TableKey>,
    section: Option<TableKey>,
    triggered: HashSet<TableKey>,
    tail: Vec<(Stmt, usize)>,
    fks: Vec<(TableKey, Stmt)>,
    /// `foreign_key_checks` as the session state says now (the server
    /// starts with it on).
    fk_checks: bool,
    /// A foreign key the server enforces now (not deferred by dolly).
    live_fks: bool,
    /// `autocommit` as the session state says now.
    autocommit: bool,
    /// The session's `sql_mode` has `NO_BACKSLASH_ESCAPES` (the values
    /// scanner reads backslashes as escapes).
    no_backslash_escapes: bool,
    /// The connection's character set, as the session state says now.
    names: Names,
    /// [`SplitOptions::big_table`] has been created.
    big_seen: bool,
    pub stats: SplitStats,
}

impl<S: Sink> Splitter<S> {
    pub fn new(sink: S, opts: SplitOptions) -> Self {
        Self {
            sink,
            opts,
            context: Vec::new(),
            current_db: None,
            mode: Mode::Header,
            tables: HashMap::new(),
            order: Vec::new(),
            section: None,
            triggered: HashSet::new(),
            tail: Vec::new(),
            fks: Vec::new(),
            fk_checks: true,
            live_fks: false,
            autocommit: true,
            no_backslash_escapes: false,
            names: Names::default(),
            big_seen: false,
            stats: SplitStats::default(),
        }
    }

    /// The next statement of the dump.
    pub fn statement(&mut self, st: Stmt) -> Result<(), S::Error> {
        self.stats.statements += 1;
        if st.is_client_command() {
            self.sink.client_command(&st);
            return Ok(());
        }
        let kind = classify(&st.text);
        if self.mode == Mode::Fallback {
            if let Kind::Context { use_db } = kind {
                if let Some(db) = use_db {
                    self.current_db = Some(db);
                }
                self.context.push(st);
                return Ok(());
            }
            let ctx = self.context.len();
            return self.sink.serial(&st, ctx, &self.context);
        }
        match kind {
            Kind::Skip => Ok(()),
            Kind::Context { use_db } => {
                if let Some(db) = use_db {
                    self.current_db = Some(db);
                }
                if let Some(on) = sets_fk_checks(&st.text) {
                    self.fk_checks = on;
                }
                if let Some(on) = sets_autocommit(&st.text) {
                    self.autocommit = on;
                }
                if let Some(on) = sets_no_backslash_escapes(&st.text) {
                    self.no_backslash_escapes = on;
                }
                self.names.observe(&st.text);
                self.context.push(st);
                Ok(())
            }
            Kind::Global => {
                if mentions_foreign_key(&st.text) {
                    self.live_fks = true;
                }
                self.close_section()?;
                self.flush_pending_all()?;
                let ctx = self.context.len();
                self.sink.serial(&st, ctx, &self.context)
            }
            Kind::Table { name, op } => {
                let key = self.key(name);
                self.table(st, key, op)
            }
            Kind::Trigger { table } => {
                let key = self.key(table);
                self.triggered.insert(key);
                let ctx = self.context.len();
                self.tail.push((st, ctx));
                Ok(())
            }
            Kind::Tail => {
                let ctx = self.context.len();
                self.tail.push((st, ctx));
                Ok(())
            }
            Kind::Commit => match self.section.as_ref().and_then(|k| self.tables.get(k)) {
                Some(t) => {
                    let session = t.session;
                    let ctx = self.context.len();
                    self.sink.parallel(session, &st, ctx, &self.context)
                }
                None => {
                    let ctx = self.context.len();
                    self.sink.serial(&st, ctx, &self.context)
                }
            },
            Kind::Unsupported(reason) => {
                let reason = format!("line {}: {reason}", st.line);
                self.fall_back(&reason)?;
                let ctx = self.context.len();
                self.sink.serial(&st, ctx, &self.context)
            }
        }
    }

    /// The end of the dump: deferred indexes, then (alone) triggers, views,
    /// routines and events in dump order, then foreign keys.
    pub fn finish(&mut self) -> Result<(), S::Error> {
        self.close_section()?;
        self.flush_pending_all()?;
        self.sink.end_of_input();
        self.flush_tail()?;
        self.flush_fks()
    }

    fn key(&self, (db, name): (Option<String>, String)) -> TableKey {
        (db.or_else(|| self.current_db.clone()), name)
    }

    fn table(&mut self, mut st: Stmt, key: TableKey, op: TableOp) -> Result<(), S::Error> {
        if self.triggered.contains(&key) {
            let reason = format!(
                "line {}: a statement on table `{}` after its trigger",
                st.line, key.1
            );
            self.fall_back(&reason)?;
            let ctx = self.context.len();
            return self.sink.serial(&st, ctx, &self.context);
        }
        if !self.tables.contains_key(&key) && !matches!(op, TableOp::Create | TableOp::Drop) {
            let reason = format!(
                "line {}: data for table `{}`, which the dump did not create",
                st.line, key.1
            );
            self.fall_back(&reason)?;
            let ctx = self.context.len();
            return self.sink.serial(&st, ctx, &self.context);
        }
        self.mode = Mode::Parallel;
        if self.section.as_ref() != Some(&key) {
            self.close_section()?;
            self.section = Some(key.clone());
        }
        if !self.tables.contains_key(&key) {
            let jobs = self.opts.jobs.max(1);
            let session = match self.opts.big_table.as_deref() {
                // The last session waits for the big table.
                Some(big) if jobs > 1 && !self.big_seen => {
                    if key.1 == big {
                        self.big_seen = true;
                        jobs - 1
                    } else {
                        self.sink.pick(jobs - 1)
                    }
                }
                _ => self.sink.pick(jobs),
            };
            self.tables.insert(
                key.clone(),
                TableState {
                    session,
                    ..TableState::default()
                },
            );
            self.order.push(key.clone());
            self.stats.tables += 1;
        }
        if op != TableOp::Insert {
            // The rows spread so far have all run before it.
            self.end_spread(&key)?;
        }
        match op {
            TableOp::Create => {
                let spread = shape(&st.text);
                let mut deferred = false;
                if self.opts.defer_indexes {
                    deferred = self.defer(&mut st, &key);
                }
                let decided = match spread {
                    _ if self.opts.jobs < 2 => Spread::Ordered("one session".into()),
                    Err(why) => Spread::Ordered(why),
                    Ok(s) if s.secondary_keys && !deferred => {
                        Spread::Ordered("secondary keys built with the rows".into())
                    }
                    Ok(s) => Spread::May(s),
                };
                // The table was registered above.
                if let Some(t) = self.tables.get_mut(&key) {
                    t.row_bytes = 0;
                    t.said = false;
                    t.spread = decided;
                    t.created = None;
                }
            }
            TableOp::Drop => {
                // Nothing deferred outlives its table.
                self.fks.retain(|(k, _)| k != &key);
                if let Some(t) = self.tables.get_mut(&key) {
                    t.pending.clear();
                }
            }
            TableOp::Alter if disable_or_enable_keys(&st.text) => {}
            TableOp::Alter => {
                // The dump's own ALTER runs after the keys it would have
                // found, and never before a foreign key it may name.
                if self.fks.iter().any(|(k, _)| k == &key) {
                    let reason = format!(
                        "line {}: an ALTER TABLE of `{}`, whose foreign keys are deferred",
                        st.line, key.1
                    );
                    self.fall_back(&reason)?;
                    let ctx = self.context.len();
                    return self.sink.serial(&st, ctx, &self.context);
                }
                let pending = self
                    .tables
                    .get_mut(&key)
                    .map(|t| std::mem::take(&mut t.pending))
                    .unwrap_or_default();
                let session = self.tables[&key].session;
                let ctx = self.context.len();
                for p in &pending {
                    self.sink.parallel(session, p, ctx, &self.context)?;
                }
            }
            TableOp::Insert if self.live_fks && self.fk_checks => {
                // Rows checked against other tables' rows: the dump's
                // order is part of what it means.
                let reason = format!(
                    "line {}: rows into `{}` with foreign keys checked (foreign_key_checks is on)",
                    st.line, key.1
                );
                self.fall_back(&reason)?;
                let ctx = self.context.len();
                return self.sink.serial(&st, ctx, &self.context);
            }
            TableOp::Insert => return self.insert(st, &key),
        }
        if matches!(op, TableOp::Create | TableOp::Alter) && mentions_foreign_key(&st.text) {
            // As sent: a deferred table's CREATE no longer has them.
            self.live_fks = true;
        }
        let session = self.tables[&key].session;
        let ctx = self.context.len();
        self.sink.parallel(session, &st, ctx, &self.context)?;
        if op == TableOp::Create {
            if let Some(t) = self.tables.get_mut(&key) {
                if matches!(t.spread, Spread::May(_)) {
                    t.created = Some(self.sink.mark(session)?);
                }
            }
        }
        Ok(())
    }

    /// Bytes of a table's rows loaded in its own session before the rest
    /// may spread: [`SplitOptions::spread_after`], and more than its share
    /// of the dump when its size is known.
    fn spread_threshold(&self) -> u64 {
        let share = self
            .opts
            .dump_bytes
            .map_or(0, |b| b / (self.opts.jobs as u64 + 1));
        self.opts.spread_after.max(share)
    }

    /// `CREATE TABLE` without its secondary and foreign keys, kept for
    /// later; whether the rewrite applied.
    fn defer(&mut self, st: &mut Stmt, key: &TableKey) -> bool {
        let db = key
            .0
            .clone()
            .unwrap_or_else(|| self.opts.default_db.clone());
        self.fks.retain(|(k, _)| k != key);
        let Some(t) = self.tables.get_mut(key) else {
            return false;
        };
        t.pending.clear();
        match defer_keys(&st.text, &db, &key.1) {
            Ok(d) => {
                st.text = d.create;
                t.pending = d.index_alters.into_iter().map(Stmt::synthetic).collect();
                if let Some(fk) = d.fk_alter {
                    self.fks.push((key.clone(), Stmt::synthetic(fk)));
                }
                self.stats.deferred_tables += 1;
                true
            }
            Err(Verbatim::Nothing) => false,
            Err(Verbatim::NotUnderstood(why)) => {
                self.sink.verbatim(&key.1, st.line, &why);
                self.stats.verbatim_tables += 1;
                false
            }
        }
    }

    /// Rows of `key`: its session, or any once that is safe and worth it.
    fn insert(&mut self, st: Stmt, key: &TableKey) -> Result<(), S::Error> {
        let Some(t) = self.tables.get_mut(key) else {
            return Ok(());
        };
        t.had_data = true;
        let shape = match &t.spread {
            Spread::May(s) | Spread::Active(s) => Some(s),
            Spread::Ordered(_) => None,
        };
        let verdict = match rows(&st.text, shape) {
            Rows::ReadsTables => {
                let reason = format!(
                    "line {}: rows into `{}` computed by a query (reads other tables)",
                    st.line, key.1
                );
                self.fall_back(&reason)?;
                let ctx = self.context.len();
                return self.sink.serial(&st, ctx, &self.context);
            }
            _ if !self.autocommit && shape.is_some() => Rows::Ordered("autocommit is off".into()),
            _ if self.no_backslash_escapes && shape.is_some() => {
                Rows::Ordered("sql_mode NO_BACKSLASH_ESCAPES".into())
            }
            v => v,
        };
        // The same rows as a file, where that stores the same values.
        let file = match (&verdict, shape, self.names.charset()) {
            (Rows::AnyOrder, Some(s), Some(cs)) if self.opts.load_data => {
                load_data::convert(&st.text, s, cs).ok()
            }
            _ => None,
        };
        let threshold = self.spread_threshold();
        let Some(t) = self.tables.get_mut(key) else {
            return Ok(());
        };
        let before = t.row_bytes;
        t.row_bytes += st.text.len() as u64;
        let big = t.row_bytes > self.opts.spread_after;
        let mut session = t.session;
        match (&t.spread, verdict) {
            // Rows files into one table do not load faster from two
            // sessions than from one (the server serialises them; bench/
            // RESULTS.md, "One big table"): they stay in its session.
            (Spread::May(_), Rows::AnyOrder) if file.is_some() => {}
            (Spread::May(s), Rows::AnyOrder) if before >= threshold => {
                // Its CREATE TABLE has run before any other session gets
                // its rows.
                t.spread = Spread::Active(s.clone());
                let created = t.created;
                self.stats.spread_tables += 1;
                self.sink.spread(&key.1, st.line);
                let created = match created {
                    Some(m) => m,
                    None => self.sink.mark(session)?,
                };
                for k in (0..self.opts.jobs).filter(|&k| k != session) {
                    self.sink.wait(k, &[created])?;
                }
                session = self.sink.pick(self.opts.jobs.max(1));
            }
            (Spread::Active(_), Rows::AnyOrder) => session = self.sink.pick(self.opts.jobs.max(1)),
            (Spread::Active(_), Rows::Ordered(why)) => {
                let reason = format!(
                    "line {}: rows into `{}` that must keep the dump's order ({why}) after rows spread over the sessions",
                    st.line, key.1
                );
                self.fall_back(&reason)?;
                let ctx = self.context.len();
                return self.sink.serial(&st, ctx, &self.context);
            }
            (Spread::May(_), Rows::Ordered(why)) => t.spread = Spread::Ordered(why),
            _ => {}
        }
        if let (Spread::Ordered(why), true, false) = (&t.spread, big, t.said) {
            t.said = true;
            self.sink.ordered(&key.1, st.line, why);
        }
        let ctx = self.context.len();
        if let Some(file) = file {
            if self.sink.rows(session, &st, file, ctx, &self.context)? {
                self.stats.rows_files += 1;
                return Ok(());
            }
        }
        self.sink.parallel(session, &st, ctx, &self.context)
    }

    /// What comes next for `key` (in its session) runs after every spread
    /// row: its rows keep the dump's order from here on.
    fn end_spread(&mut self, key: &TableKey) -> Result<(), S::Error> {
        let session = match self.tables.get_mut(key) {
            Some(t) if matches!(t.spread, Spread::Active(_)) => {
                t.spread = Spread::Ordered("its spread rows are all loaded".into());
                t.said = true;
                t.session
            }
            _ => return Ok(()),
        };
        let mut marks = Vec::new();
        for k in (0..self.opts.jobs).filter(|&k| k != session) {
            marks.push(self.sink.mark(k)?);
        }
        self.sink.wait(session, &marks)
    }

    /// The current table's data is complete: its deferred keys now.
    fn close_section(&mut self) -> Result<(), S::Error> {
        let Some(key) = self.section.take() else {
            return Ok(());
        };
        self.end_spread(&key)?;
        let Some(t) = self.tables.get_mut(&key) else {
            return Ok(());
        };
        let session = t.session;
        if t.had_data && !t.pending.is_empty() {
            let pending = std::mem::take(&mut t.pending);
            let ctx = self.context.len();
            for st in &pending {
                self.sink.parallel(session, st, ctx, &self.context)?;
            }
        }
        self.sink.flush(session)
    }

    /// Deferred keys of tables that got no data in their section (a dump
    /// whose schema and data are apart), before anything runs alone.
    fn flush_pending_all(&mut self) -> Result<(), S::Error> {
        let ctx = self.context.len();
        let mut touched = Vec::new();
        for key in &self.order {
            let Some(t) = self.tables.get_mut(key) else {
                continue;
            };
            if t.pending.is_empty() {
                continue;
            }
            let pending = std::mem::take(&mut t.pending);
            for st in &pending {
                self.sink.parallel(t.session, st, ctx, &self.context)?;
            }
            touched.push(t.session);
        }
        touched.sort_unstable();
        touched.dedup();
        for s in touched {
            self.sink.flush(s)?;
        }
        Ok(())
    }

    fn flush_tail(&mut self) -> Result<(), S::Error> {
        for (st, ctx) in std::mem::take(&mut self.tail) {
            self.sink.serial(&st, ctx, &self.context)?;
        }
        Ok(())
    }

    fn flush_fks(&mut self) -> Result<(), S::Error> {
        if self.fks.is_empty() {
            return Ok(());
        }
        let ctx = self.context.len();
        let save =
            Stmt::synthetic("SET @dolly_fk_checks = @@foreign_key_checks, foreign_key_checks = 0");
        self.sink.serial(&save, ctx, &self.context)?;
        for (_, st) in std::mem::take(&mut self.fks) {
            self.sink.serial(&st, ctx, &self.context)?;
        }
        let restore = Stmt::synthetic("SET foreign_key_checks = @dolly_fk_checks");
        self.sink.serial(&restore, ctx, &self.context)
    }

    fn fall_back(&mut self, reason: &str) -> Result<(), S::Error> {
        self.stats.fallback = Some(reason.to_owned());
        self.sink.fallback(reason);
        self.close_section()?;
        self.flush_pending_all()?;
        self.flush_tail()?;
        self.flush_fks()?;
        self.mode = Mode::Fallback;
        Ok(())
    }
}
