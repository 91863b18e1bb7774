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

use std::collections::{HashMap, HashSet};

use super::keys::{body_end, defer_keys, toks, Verbatim};
use super::statements::{Stmt, Tok};

/// How to split.
#[derive(Debug, Clone)]
pub struct SplitOptions {
    /// Parallel sessions.
    pub jobs: usize,
    /// Secondary keys after the data, foreign keys after every table.
    pub defer_indexes: bool,
    /// The database a dump with no `USE` loads into.
    pub default_db: String,
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
}

/// What the split did, for the log and the version's metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SplitStats {
    pub tables: usize,
    pub deferred_tables: usize,
    /// Tables whose keys were not deferred because the rewriter did not
    /// fully understand their `CREATE TABLE`.
    pub verbatim_tables: usize,
    pub statements: u64,
    /// Why the split stopped (the rest ran in one session).
    pub fallback: Option<String>,
}

type TableKey = (Option<String>, String);

#[derive(Debug, Default)]
struct TableState {
    session: usize,
    /// Deferred `ALTER TABLE ... ADD KEY` statements, sent after the data.
    pending: Vec<Stmt>,
    had_data: bool,
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
            let session = self.sink.pick(self.opts.jobs.max(1));
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
        match op {
            TableOp::Create if self.opts.defer_indexes => {
                let db = key
                    .0
                    .clone()
                    .unwrap_or_else(|| self.opts.default_db.clone());
                self.fks.retain(|(k, _)| k != &key);
                let deferred = defer_keys(&st.text, &db, &key.1);
                let pending = match &deferred {
                    Ok(d) => d
                        .index_alters
                        .iter()
                        .cloned()
                        .map(Stmt::synthetic)
                        .collect(),
                    Err(_) => Vec::new(),
                };
                // The table was registered above.
                if let Some(t) = self.tables.get_mut(&key) {
                    t.pending = pending;
                }
                match deferred {
                    Ok(d) => {
                        st.text = d.create;
                        if let Some(fk) = d.fk_alter {
                            self.fks.push((key.clone(), Stmt::synthetic(fk)));
                        }
                        self.stats.deferred_tables += 1;
                    }
                    Err(Verbatim::Nothing) => {}
                    Err(Verbatim::NotUnderstood(why)) => {
                        self.sink.verbatim(&key.1, st.line, &why);
                        self.stats.verbatim_tables += 1;
                    }
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
            TableOp::Insert => {
                if let Some(t) = self.tables.get_mut(&key) {
                    t.had_data = true;
                }
            }
            _ => {}
        }
        if matches!(op, TableOp::Create | TableOp::Alter) && mentions_foreign_key(&st.text) {
            // As sent: a deferred table's CREATE no longer has them.
            self.live_fks = true;
        }
        let session = self.tables[&key].session;
        let ctx = self.context.len();
        self.sink.parallel(session, &st, ctx, &self.context)
    }

    /// The current table's data is complete: its deferred keys now.
    fn close_section(&mut self) -> Result<(), S::Error> {
        let Some(key) = self.section.take() else {
            return Ok(());
        };
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableOp {
    Create,
    Drop,
    Alter,
    Insert,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// mysqldump's `LOCK TABLES`/`UNLOCK TABLES`: dropped.
    Skip,
    /// Session state: `SET`, `USE`.
    Context {
        use_db: Option<String>,
    },
    /// Runs alone, after everything before it.
    Global,
    Table {
        name: (Option<String>, String),
        op: TableOp,
    },
    Trigger {
        table: (Option<String>, String),
    },
    /// Views, routines, events: after all tables.
    Tail,
    Commit,
    Unsupported(String),
}

/// `name` or `db.name` at `toks[i..]`: the name and the index after it.
fn qualified(
    text: &[u8],
    toks: &[(Tok, (usize, usize))],
    i: usize,
) -> Option<((Option<String>, String), usize)> {
    let (t, span) = toks.get(i)?;
    let first = t.name(text, *span)?;
    if matches!(toks.get(i + 1), Some((Tok::Punct(b'.'), _))) {
        let (t2, span2) = toks.get(i + 2)?;
        let second = t2.name(text, *span2)?;
        return Some(((Some(first), second), i + 3));
    }
    Some(((None, first), i + 1))
}

/// What a statement is, from its first words.
pub fn classify(text: &[u8]) -> Kind {
    let t = toks(text, 64);
    let word = |i: usize| match t.get(i) {
        Some((Tok::Word(w), _)) => w.as_str(),
        _ => "",
    };
    let unsupported = |what: &str| Kind::Unsupported(what.to_owned());
    match word(0) {
        "SET" => {
            let all = toks(text, 4096);
            if all
                .iter()
                .any(|(t, _)| t.is("GLOBAL") || t.is("PERSIST") || t.is("PERSIST_ONLY"))
            {
                Kind::Global
            } else if all.iter().any(|(t, _)| t.is("SELECT")) {
                unsupported("SET with a query")
            } else {
                Kind::Context { use_db: None }
            }
        }
        "USE" => match t.get(1).and_then(|(tok, span)| tok.name(text, *span)) {
            Some(db) => Kind::Context { use_db: Some(db) },
            None => unsupported("USE without a database"),
        },
        "LOCK" | "UNLOCK" if matches!(word(1), "TABLES" | "TABLE") => Kind::Skip,
        "COMMIT" => Kind::Commit,
        "INSERT" | "REPLACE" => {
            let mut i = 1;
            while matches!(
                word(i),
                "LOW_PRIORITY" | "DELAYED" | "HIGH_PRIORITY" | "IGNORE"
            ) {
                i += 1;
            }
            if word(i) == "INTO" {
                i += 1;
            }
            let Some((name, mut j)) = qualified(text, &t, i) else {
                return unsupported("an INSERT the splitter cannot read");
            };
            if matches!(t.get(j), Some((Tok::Punct(b'('), _))) {
                // A column list.
                let mut depth = 0;
                while let Some((tok, _)) = t.get(j) {
                    match tok {
                        Tok::Punct(b'(') => depth += 1,
                        Tok::Punct(b')') => {
                            depth -= 1;
                            if depth == 0 {
                                j += 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
            }
            if matches!(word(j), "VALUES" | "VALUE") {
                Kind::Table {
                    name,
                    op: TableOp::Insert,
                }
            } else {
                unsupported("an INSERT that is not INSERT ... VALUES")
            }
        }
        "CREATE" => classify_create(text, &t),
        "DROP" => match word(1) {
            "TABLE" => {
                let i = if word(2) == "IF" { 4 } else { 2 };
                match qualified(text, &t, i) {
                    Some((name, j)) if !matches!(t.get(j), Some((Tok::Punct(b','), _))) => {
                        Kind::Table {
                            name,
                            op: TableOp::Drop,
                        }
                    }
                    _ => unsupported("DROP TABLE of several tables"),
                }
            }
            "VIEW" | "FUNCTION" | "PROCEDURE" | "EVENT" | "TRIGGER" => Kind::Tail,
            "DATABASE" | "SCHEMA" => Kind::Global,
            _ => unsupported("a DROP the splitter does not know"),
        },
        "ALTER" => match word(1) {
            "TABLE" => {
                let all = toks(text, 1 << 16);
                if all
                    .iter()
                    .any(|(t, _)| t.is("REFERENCES") || t.is("RENAME"))
                {
                    // Reaches other tables: alone.
                    return Kind::Global;
                }
                match qualified(text, &t, 2) {
                    Some((name, _)) => Kind::Table {
                        name,
                        op: TableOp::Alter,
                    },
                    None => unsupported("an ALTER TABLE the splitter cannot read"),
                }
            }
            "DATABASE" | "SCHEMA" => Kind::Global,
            "VIEW" | "FUNCTION" | "PROCEDURE" | "EVENT" => Kind::Tail,
            _ => unsupported("an ALTER the splitter does not know"),
        },
        "" => unsupported("a statement the splitter cannot read"),
        other => Kind::Unsupported(format!("a {other} statement")),
    }
}

fn classify_create(text: &[u8], t: &[(Tok, (usize, usize))]) -> Kind {
    let word = |i: usize| match t.get(i) {
        Some((Tok::Word(w), _)) => w.as_str(),
        _ => "",
    };
    let mut i = 1;
    loop {
        match word(i) {
            "OR" if word(i + 1) == "REPLACE" => i += 2,
            "ALGORITHM" => i += 3,
            "SQL" if word(i + 1) == "SECURITY" => i += 3,
            "AGGREGATE" => i += 1,
            "DEFINER" => {
                // DEFINER = user@host | CURRENT_USER[()]
                i += 2;
                while let Some((tok, _)) = t.get(i) {
                    match tok {
                        Tok::Word(w)
                            if matches!(
                                w.as_str(),
                                "TRIGGER"
                                    | "VIEW"
                                    | "FUNCTION"
                                    | "PROCEDURE"
                                    | "EVENT"
                                    | "SQL"
                                    | "ALGORITHM"
                                    | "AGGREGATE"
                            ) =>
                        {
                            break
                        }
                        _ => i += 1,
                    }
                }
            }
            _ => break,
        }
    }
    match word(i) {
        "DATABASE" | "SCHEMA" => Kind::Global,
        "TABLE" => {
            let mut j = i + 1;
            if word(j) == "IF" {
                j += 3;
            }
            let Some((name, k)) = qualified(text, t, j) else {
                return Kind::Unsupported("a CREATE TABLE the splitter cannot read".into());
            };
            if !matches!(t.get(k), Some((Tok::Punct(b'('), _))) {
                return Kind::Unsupported("CREATE TABLE ... LIKE or AS SELECT".into());
            }
            // A body followed by a query (CREATE TABLE t (...) SELECT ...).
            if let Some(body_end) = body_end(text, t[k].1 .0) {
                let rest = &text[body_end..];
                if toks(rest, 4096).iter().any(|(t, _)| t.is("SELECT")) {
                    return Kind::Unsupported("CREATE TABLE ... SELECT".into());
                }
            }
            Kind::Table {
                name,
                op: TableOp::Create,
            }
        }
        "TRIGGER" => {
            // TRIGGER name {BEFORE|AFTER} {INSERT|UPDATE|DELETE} ON table
            let Some((_, mut j)) = qualified(text, t, i + 1) else {
                return Kind::Unsupported("a trigger the splitter cannot read".into());
            };
            while j < t.len() && !t[j].0.is("ON") {
                j += 1;
            }
            match qualified(text, t, j + 1) {
                Some((table, _)) => Kind::Trigger { table },
                None => Kind::Unsupported("a trigger the splitter cannot read".into()),
            }
        }
        "INDEX" | "UNIQUE" | "FULLTEXT" | "SPATIAL" => {
            // CREATE [UNIQUE|FULLTEXT|SPATIAL] INDEX name ON table (...):
            // an ALTER of that table.
            let Some(on) = t.iter().position(|(tok, _)| tok.is("ON")) else {
                return Kind::Unsupported("a CREATE INDEX the splitter cannot read".into());
            };
            match qualified(text, t, on + 1) {
                Some((name, _)) => Kind::Table {
                    name,
                    op: TableOp::Alter,
                },
                None => Kind::Unsupported("a CREATE INDEX the splitter cannot read".into()),
            }
        }
        "VIEW" | "FUNCTION" | "PROCEDURE" | "EVENT" => Kind::Tail,
        "TEMPORARY" => Kind::Unsupported("CREATE TEMPORARY TABLE".into()),
        other => Kind::Unsupported(format!("CREATE {other}")),
    }
}

/// The value a `SET` gives `foreign_key_checks`, if it sets it
/// (`@@FOREIGN_KEY_CHECKS` on the right of `=` only reads it).
fn sets_fk_checks(text: &[u8]) -> Option<bool> {
    let t = toks(text, 4096);
    let mut found = None;
    for (k, (tok, _)) in t.iter().enumerate() {
        if !tok.is("FOREIGN_KEY_CHECKS") || (k > 0 && t[k - 1].0 == Tok::Punct(b'@')) {
            continue;
        }
        let mut v = k + 1;
        if matches!(t.get(v), Some((Tok::Punct(b':'), _))) {
            v += 1;
        }
        if !matches!(t.get(v), Some((Tok::Punct(b'='), _))) {
            continue;
        }
        found = Some(!matches!(t.get(v + 1), Some((w, _)) if w.is("0") || w.is("OFF")));
    }
    found
}

/// A statement that may create a foreign key.
fn mentions_foreign_key(text: &[u8]) -> bool {
    toks(text, 1 << 16)
        .iter()
        .any(|(t, _)| t.is("REFERENCES") || t.is("FOREIGN"))
}

/// mysqldump's `ALTER TABLE t DISABLE KEYS` / `ENABLE KEYS` around a
/// table's data (no-ops for InnoDB): they change no key.
fn disable_or_enable_keys(text: &[u8]) -> bool {
    let t = toks(text, 16);
    let Some((_, j)) = qualified(text, &t, 2) else {
        return false;
    };
    t.len() == j + 2 && (t[j].0.is("DISABLE") || t[j].0.is("ENABLE")) && t[j + 1].0.is("KEYS")
}

/// A [`Sink`] that writes each session's script as text: for tests and
/// for checking what a dump splits into.
#[derive(Debug, Default)]
pub struct Scripts {
    /// Everything, in the order it would run: `("serial", text)` or
    /// `("parallel", [session texts])` phases.
    pub phases: Vec<Phase>,
    pub fallbacks: Vec<String>,
    cursors: Vec<usize>,
    delims: Vec<Vec<u8>>,
    next: usize,
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
        if !matches!(self.phases.last(), Some(Phase::Parallel(_))) {
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
        self.write(session, stmt, ctx, context);
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

    fn fallback(&mut self, reason: &str) {
        self.fallbacks.push(reason.to_owned());
    }
}

/// Splits a whole dump held in memory (tests, tools).
pub fn split_text(dump: &[u8], opts: SplitOptions) -> (Scripts, SplitStats) {
    let mut splitter = Splitter::new(Scripts::default(), opts);
    let mut tok = super::statements::Tokenizer::new();
    let mut push = |st: Stmt| splitter.statement(st);
    let Ok(()) = tok.feed(dump, &mut push);
    let Ok(()) = tok.finish(&mut push);
    let Ok(()) = splitter.finish();
    let stats = splitter.stats.clone();
    (splitter.sink, stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(jobs: usize) -> SplitOptions {
        SplitOptions {
            jobs,
            defer_indexes: true,
            default_db: "default".into(),
        }
    }

    fn shop() -> Vec<u8> {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/dumps/shop.sql"
        ))
        .unwrap()
    }

    #[test]
    fn shop_splits_by_table_with_the_header_everywhere() {
        let (s, stats) = split_text(&shop(), opts(2));
        assert_eq!(stats.fallback, None, "{:?}", s.fallbacks);
        assert_eq!(stats.tables, 3);
        assert_eq!(s.phases.len(), 2, "{:#?}", s.phases);
        let Phase::Parallel(sessions) = &s.phases[0] else {
            panic!("{:#?}", s.phases)
        };
        assert_eq!(sessions.len(), 2);
        for text in sessions {
            assert!(text.contains("SET NAMES utf8mb4"), "{text}");
            assert!(text.contains("FOREIGN_KEY_CHECKS=0"), "{text}");
            assert!(!text.contains("LOCK TABLES"), "{text}");
            assert!(!text.contains("TRIGGER"), "{text}");
        }
        let all = sessions.join("");
        // orders: KEY customer_id after the data, its foreign key later.
        let create = all.find("CREATE TABLE `orders`").unwrap();
        let insert = all.find("INSERT INTO `orders`").unwrap();
        let alter = all
            .find("ALTER TABLE `default`.`orders` ADD KEY `customer_id` (`customer_id`)")
            .unwrap();
        assert!(create < insert && insert < alter, "{all}");
        assert!(!all[create..insert].contains("KEY `customer_id`"));
        assert!(all[create..insert].contains("PRIMARY KEY (`id`)"));
        // customers keeps its unique key in CREATE TABLE.
        assert!(all.contains("UNIQUE KEY `email` (`email`)"));
        let Phase::Serial(tail) = &s.phases[1] else {
            panic!()
        };
        let trigger = tail.find("TRIGGER `orders_after_insert`").unwrap();
        let function = tail.find("FUNCTION `order_total`").unwrap();
        let view = tail.find("VIEW `customer_totals`").unwrap();
        let fk = tail
            .find("ALTER TABLE `default`.`orders` ADD CONSTRAINT `orders_ibfk_1` FOREIGN KEY (`customer_id`) REFERENCES `default`.`customers` (`id`)")
            .unwrap();
        assert!(trigger < function && function < view && view < fk, "{tail}");
        assert!(tail.contains("DELIMITER ;;\n"), "{tail}");
        // The tail replays the session state: the trigger's sql_mode.
        assert!(tail[..trigger].contains("NO_AUTO_CREATE_USER"));
    }

    #[test]
    fn what_the_splitter_does_not_understand_runs_in_one_session() {
        let dump = b"SET NAMES utf8mb4;\nCREATE TABLE a (id INT PRIMARY KEY, v INT, KEY v (v));\n\
            INSERT INTO a VALUES (1,1);\nUPDATE a SET v = 2;\nCREATE TABLE b (id INT PRIMARY KEY);\n\
            INSERT INTO b VALUES (1);\n";
        let (s, stats) = split_text(dump, opts(2));
        let reason = stats.fallback.unwrap();
        assert!(reason.contains("line 4: a UPDATE statement"), "{reason}");
        assert_eq!(s.phases.len(), 2, "{:#?}", s.phases);
        let Phase::Parallel(p) = &s.phases[0] else {
            panic!()
        };
        assert!(p[0].contains("ALTER TABLE `default`.`a` ADD KEY v (v)"));
        let Phase::Serial(rest) = &s.phases[1] else {
            panic!()
        };
        assert!(rest.starts_with("SET NAMES utf8mb4;\nUPDATE a SET v = 2;\n"));
        assert!(rest.contains("CREATE TABLE b (id INT PRIMARY KEY);\nINSERT INTO b VALUES (1);"));
    }

    #[test]
    fn statements_reaching_other_tables_fall_back() {
        for (sql, why) in [
            ("INSERT INTO a SELECT * FROM b", "INSERT ... VALUES"),
            ("CREATE TABLE c LIKE a", "LIKE"),
            ("CREATE TABLE c (id INT) SELECT * FROM a", "SELECT"),
            ("SET @x = (SELECT COUNT(*) FROM a)", "query"),
            ("INSERT INTO nowhere VALUES (1)", "did not create"),
            ("CALL p()", "CALL"),
        ] {
            let dump = format!("CREATE TABLE a (id INT PRIMARY KEY);\n{sql};\n");
            let (_, stats) = split_text(dump.as_bytes(), opts(2));
            let reason = stats.fallback.unwrap_or_default();
            assert!(reason.contains(why), "{sql}: {reason}");
        }
    }

    #[test]
    fn the_dumps_own_alter_runs_after_the_deferred_keys() {
        let dump = b"CREATE TABLE a (id INT PRIMARY KEY, v INT, KEY kv (v));\n\
            /*!40000 ALTER TABLE `a` DISABLE KEYS */;\nINSERT INTO a VALUES (1,1);\n\
            /*!40000 ALTER TABLE `a` ENABLE KEYS */;\nALTER TABLE a ADD KEY kw (v, id);\n";
        let (s, stats) = split_text(dump, opts(2));
        assert_eq!(stats.fallback, None);
        let Phase::Parallel(p) = &s.phases[0] else {
            panic!("{:#?}", s.phases)
        };
        let all = p.join("");
        let insert = all.find("INSERT INTO a").unwrap();
        let kv = all.find("ADD KEY kv (v)").unwrap();
        let kw = all.find("ADD KEY kw").unwrap();
        // DISABLE KEYS does not pull the keys before the data.
        assert!(
            all.find("DISABLE KEYS").unwrap() < insert && insert < kv && kv < kw,
            "{all}"
        );
    }

    #[test]
    fn an_alter_of_a_table_with_deferred_foreign_keys_falls_back() {
        let dump = b"CREATE TABLE p (id INT PRIMARY KEY);\n\
            CREATE TABLE a (id INT PRIMARY KEY, p INT, KEY kp (p), CONSTRAINT f FOREIGN KEY (p) REFERENCES p (id));\n\
            ALTER TABLE a DROP FOREIGN KEY f;\n";
        let (s, stats) = split_text(dump, opts(2));
        assert!(stats
            .fallback
            .unwrap()
            .contains("foreign keys are deferred"));
        let Some(Phase::Serial(rest)) = s.phases.last() else {
            panic!("{:#?}", s.phases)
        };
        let add = rest.find("ADD CONSTRAINT f").unwrap();
        let drop = rest.find("DROP FOREIGN KEY f").unwrap();
        assert!(add < drop, "{rest}");
    }

    #[test]
    fn a_dropped_table_leaves_nothing_deferred_behind() {
        let dump = b"CREATE TABLE p (id INT PRIMARY KEY);\n\
            CREATE TABLE a (id INT PRIMARY KEY, p INT, KEY k (p), CONSTRAINT f FOREIGN KEY (p) REFERENCES p (id) ON DELETE CASCADE);\n\
            DROP TABLE a;\n";
        let (s, stats) = split_text(dump, opts(2));
        assert_eq!(stats.fallback, None);
        let all = format!("{:?}", s.phases);
        assert!(!all.contains("ALTER TABLE"), "{all}");
    }

    #[test]
    fn tables_the_rewriter_does_not_understand_go_verbatim_and_are_counted() {
        let dump = b"CREATE TABLE a (id INT PRIMARY KEY, /*!50705 g GEOMETRY NOT NULL,*/ v INT,\n\
            KEY kv (v), /*!50705 SPATIAL KEY kg (g),*/ CONSTRAINT f FOREIGN KEY (v) REFERENCES b (id) ON DELETE RESTRICT);\n\
            CREATE TABLE b (id INT PRIMARY KEY, v INT, KEY kv (v)) PARTITION BY HASH (id);\n\
            CREATE TABLE c (id INT PRIMARY KEY, v INT, KEY kv (v));\n";
        let (s, stats) = split_text(dump, opts(2));
        assert_eq!((stats.deferred_tables, stats.verbatim_tables), (1, 2));
        let all = format!("{:?}", s.phases);
        // The two tables exactly as written.
        assert!(all.contains("/*!50705 SPATIAL KEY kg (g),*/ CONSTRAINT f FOREIGN KEY (v) REFERENCES b (id) ON DELETE RESTRICT);"));
        assert!(all.contains("KEY kv (v)) PARTITION BY HASH (id);"));
        assert!(
            !all.contains("ALTER TABLE `default`.`a`")
                && !all.contains("ALTER TABLE `default`.`b`")
        );
    }

    #[test]
    fn create_index_is_an_alter_of_its_table_and_the_sandbox_line_no_statement() {
        let dump = b"/*M!999999\\- enable the sandbox mode */\n\
            CREATE TABLE a (id INT PRIMARY KEY, v INT, KEY kv (v));\nINSERT INTO a VALUES (1,1);\n\
            CREATE UNIQUE INDEX uv ON a (v, id);\nCREATE INDEX kw ON a (v);\n";
        let (s, stats) = split_text(dump, opts(2));
        assert_eq!(stats.fallback, None, "{:?}", s.fallbacks);
        assert_eq!(stats.statements, 5);
        let Phase::Parallel(p) = &s.phases[0] else {
            panic!("{:#?}", s.phases)
        };
        let all = p.join("");
        assert!(!all.contains("sandbox"), "{all}");
        let kv = all.find("ADD KEY kv (v)").unwrap();
        let uv = all.find("CREATE UNIQUE INDEX uv").unwrap();
        assert!(kv < uv, "{all}");
        assert_eq!(
            classify(b"CREATE INDEX kw ON `db`.a (v)"),
            Kind::Table {
                name: (Some("db".into()), "a".into()),
                op: TableOp::Alter
            }
        );
        assert!(matches!(classify(b"CREATE INDEX kw"), Kind::Unsupported(_)));
    }

    #[test]
    fn rows_checked_against_live_foreign_keys_keep_the_dump_order() {
        // Chinook: foreign keys added by the dump, checks on.
        let dump =
            b"CREATE TABLE p (id INT PRIMARY KEY);\nCREATE TABLE c (id INT PRIMARY KEY, p INT);\n\
            ALTER TABLE c ADD CONSTRAINT f FOREIGN KEY (p) REFERENCES p (id);\n\
            INSERT INTO p VALUES (1);\nINSERT INTO c VALUES (1,1);\n";
        let (_, stats) = split_text(dump, opts(2));
        let reason = stats.fallback.unwrap();
        assert!(
            reason.contains("line 4: rows into `p` with foreign keys checked"),
            "{reason}"
        );
        // mysqldump turns the checks off first: split.
        let mut off = b"/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;\n".to_vec();
        off.extend_from_slice(dump);
        let (_, stats) = split_text(&off, opts(2));
        assert_eq!(stats.fallback, None);
        // ... and back on at the end: reading @OLD_... restores.
        let mut on = off.clone();
        on.extend_from_slice(
            b"SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS;\nINSERT INTO c VALUES (2,1);\n",
        );
        let (_, stats) = split_text(&on, opts(2));
        assert!(stats.fallback.unwrap().contains("line 8"));
        // A foreign key in a CREATE TABLE kept as written is live too;
        // one dolly defers is not.
        let kept = b"CREATE TABLE c (id INT PRIMARY KEY, p INT, CONSTRAINT f FOREIGN KEY (p) REFERENCES p (id) ON DELETE RESTRICT);\n\
            INSERT INTO c VALUES (1,1);\n";
        assert!(split_text(kept, opts(2)).1.fallback.is_some());
        let deferred = b"CREATE TABLE c (id INT PRIMARY KEY, p INT, KEY kp (p), CONSTRAINT f FOREIGN KEY (p) REFERENCES p (id));\n\
            INSERT INTO c VALUES (1,1);\n";
        assert_eq!(split_text(deferred, opts(2)).1.fallback, None);
        assert_eq!(sets_fk_checks(b"SET foreign_key_checks = OFF"), Some(false));
        assert_eq!(
            sets_fk_checks(b"SET @@session.foreign_key_checks := 1"),
            Some(true)
        );
        assert_eq!(sets_fk_checks(b"SET @x = @@foreign_key_checks"), None);
    }

    #[test]
    fn data_after_a_trigger_falls_back() {
        let dump = b"CREATE TABLE a (id INT PRIMARY KEY);\n\
            CREATE TRIGGER tr BEFORE INSERT ON a FOR EACH ROW SET NEW.id = NEW.id + 1;\n\
            INSERT INTO a VALUES (1);\n";
        let (_, stats) = split_text(dump, opts(2));
        assert!(stats.fallback.unwrap().contains("after its trigger"));
    }
}
