//! What a statement is, from its first words: the splitter's classes.

use crate::dump::keys::{body_end, toks};
use crate::dump::statements::Tok;

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
pub(super) fn sets_fk_checks(text: &[u8]) -> Option<bool> {
    sets(text, "FOREIGN_KEY_CHECKS").map(|v| v != Some(false))
}

/// The value a `SET` gives the boolean `var` (upper case), if it sets it:
/// `Some(None)` for a value other than `0`/`OFF`/`1`/`ON`.
fn sets(text: &[u8], var: &str) -> Option<Option<bool>> {
    let t = toks(text, 4096);
    let mut found = None;
    for (k, (tok, _)) in t.iter().enumerate() {
        if !tok.is(var) || (k > 0 && t[k - 1].0 == Tok::Punct(b'@')) {
            continue;
        }
        let mut v = k + 1;
        if matches!(t.get(v), Some((Tok::Punct(b':'), _))) {
            v += 1;
        }
        if !matches!(t.get(v), Some((Tok::Punct(b'='), _))) {
            continue;
        }
        found = Some(match t.get(v + 1) {
            Some((w, _)) if w.is("0") || w.is("OFF") => Some(false),
            Some((w, _)) if w.is("1") || w.is("ON") => Some(true),
            _ => None,
        });
    }
    found
}

/// The value a `SET` gives `autocommit`, if it sets it.
/// (`@OLD_AUTOCOMMIT` or any value but `1`/`ON` counts as off.)
pub(super) fn sets_autocommit(text: &[u8]) -> Option<bool> {
    sets(text, "AUTOCOMMIT").map(|v| v == Some(true))
}

/// Whether a `SET` of `sql_mode` turns `NO_BACKSLASH_ESCAPES` on (`Some(true)`)
/// or sets a mode without it (`Some(false)`; `@OLD_SQL_MODE` and the
/// like restore the server's, which has it off); `None` when it does not
/// set `sql_mode`.
pub(super) fn sets_no_backslash_escapes(text: &[u8]) -> Option<bool> {
    let t = toks(text, 4096);
    let sets_mode = t
        .windows(2)
        .any(|w| w[0].0.is("SQL_MODE") && matches!(w[1].0, Tok::Punct(b'=') | Tok::Punct(b':')));
    sets_mode.then(|| {
        text.windows(20)
            .any(|w| w.eq_ignore_ascii_case(b"NO_BACKSLASH_ESCAPES"))
    })
}

/// A statement that may create a foreign key.
pub(super) fn mentions_foreign_key(text: &[u8]) -> bool {
    toks(text, 1 << 16)
        .iter()
        .any(|(t, _)| t.is("REFERENCES") || t.is("FOREIGN"))
}

/// mysqldump's `ALTER TABLE t DISABLE KEYS` / `ENABLE KEYS` around a
/// table's data (no-ops for InnoDB): they change no key.
pub(super) fn disable_or_enable_keys(text: &[u8]) -> bool {
    let t = toks(text, 16);
    let Some((_, j)) = qualified(text, &t, 2) else {
        return false;
    };
    t.len() == j + 2 && (t[j].0.is("DISABLE") || t[j].0.is("ENABLE")) && t[j + 1].0.is("KEYS")
}
