//! One table's rows over several sessions: whether a table and each of its
//! `INSERT`s allow it.
//!
//! Rows may go to any session when the order they arrive in cannot change
//! the result: plain `INSERT INTO t [(cols)] VALUES (...), ...` of literal
//! values only, into an InnoDB table with a primary key and no unique
//! secondary key, whose `AUTO_INCREMENT` column (if any) every row gives
//! an explicit non-zero integer, with `autocommit` on and `sql_mode`
//! without `NO_BACKSLASH_ESCAPES`. Anything else keeps
//! the dump's order (the table's one session): no primary key (InnoDB's
//! hidden row ids follow the order), a unique secondary key (which row
//! wins or fails depends on it), `INSERT IGNORE`/`REPLACE`/`ON DUPLICATE
//! KEY UPDATE`, ids the server assigns (a missing column, `NULL`, `0`),
//! generated or invisible columns, functions or anything not a literal, a
//! comment in the `CREATE TABLE`, a table option not known. An `INSERT`
//! whose values hold a query reads other tables: the split itself ends
//! there. Triggers need nothing here: one created before a table's rows
//! (it would fire on them) already ends the split, and mysqldump's, after
//! the rows, run once every table is loaded, as in a plain load they
//! fire on none of the dump's rows.

use crate::dump::keys::{body_end, check_options, has_comment, toks, Verbatim};
use crate::dump::statements::{Lexer, Tok};

pub(super) use super::values::{rows, Rows};

/// A table whose rows may be spread: its columns in order, and where its
/// `AUTO_INCREMENT` column is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Shape {
    pub columns: Vec<String>,
    pub auto_inc: Option<usize>,
    /// Non-unique secondary keys in the `CREATE TABLE` (deferred or not).
    pub secondary_keys: bool,
    /// Each column's kind, in order (what its values may be in a `LOAD
    /// DATA` file, see [`super::load_data`]).
    pub kinds: Vec<ColumnKind>,
}

/// A column's type, as far as [`super::load_data`] cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Integer,
    Decimal,
    /// `CHAR`, `VARCHAR`, the `TEXT`s (not binary).
    Text,
    /// `DATE`, `DATETIME`, `TIMESTAMP`, `TIME`.
    Temporal,
    /// `ENUM`, `SET`.
    Choice,
    /// Anything else: its values stay in SQL.
    Other,
}

impl ColumnKind {
    /// The kind of a column whose definition's words (upper-cased, after
    /// its name) are `words`.
    fn of(words: &[&str]) -> Self {
        if words
            .iter()
            .any(|w| matches!(*w, "BINARY" | "COMPRESSED" | "BYTE"))
        {
            return ColumnKind::Other;
        }
        match words.first().copied().unwrap_or("") {
            "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "INTEGER" | "BIGINT" => {
                ColumnKind::Integer
            }
            "DECIMAL" | "NUMERIC" | "DEC" | "FIXED" => ColumnKind::Decimal,
            "CHAR" | "VARCHAR" | "TINYTEXT" | "TEXT" | "MEDIUMTEXT" | "LONGTEXT" => {
                ColumnKind::Text
            }
            "DATE" | "DATETIME" | "TIMESTAMP" | "TIME" => ColumnKind::Temporal,
            "ENUM" | "SET" => ColumnKind::Choice,
            _ => ColumnKind::Other,
        }
    }

    pub fn takes_strings(self) -> bool {
        matches!(
            self,
            ColumnKind::Text | ColumnKind::Temporal | ColumnKind::Choice
        )
    }

    pub fn takes_numbers(self) -> bool {
        matches!(self, ColumnKind::Integer | ColumnKind::Decimal)
    }
}

/// Where a table's rows go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Spread {
    /// The table's session, in the dump's order; why.
    Ordered(String),
    /// The table's session for now: spread once its rows are many.
    May(Shape),
    /// Any session: every session has finished its `CREATE TABLE`.
    Active(Shape),
}

impl Default for Spread {
    fn default() -> Self {
        Spread::Ordered(String::new())
    }
}

/// Whether a `CREATE TABLE`'s rows may be spread: its shape, or why not.
pub(super) fn shape(create: &[u8]) -> Result<Shape, String> {
    if has_comment(create) {
        return Err("a comment inside its CREATE TABLE".into());
    }
    if memchr::memchr(b'\\', create).is_some() {
        return Err("a backslash inside its CREATE TABLE".into());
    }
    let t = toks(create, 64);
    let open = t
        .iter()
        .find(|(tok, _)| *tok == Tok::Punct(b'('))
        .ok_or("no column list")?
        .1
         .0;
    let close_end = body_end(create, open).ok_or("an unclosed column list")?;
    match check_options(&toks(&create[close_end..], 4096)) {
        Ok(()) => {}
        Err(Verbatim::Nothing) => return Err("an engine other than InnoDB".into()),
        Err(Verbatim::NotUnderstood(why)) => return Err(why),
    }
    // The definitions, cut at top-level commas.
    let mut defs: Vec<Vec<(Tok, (usize, usize))>> = vec![Vec::new()];
    let mut l = Lexer::new(create);
    l.pos = open + 1;
    let mut depth = 0i32;
    while let Some((tok, span)) = l.next_tok() {
        if span.0 >= close_end - 1 {
            break;
        }
        match tok {
            Tok::Punct(b'(') => depth += 1,
            Tok::Punct(b')') => depth -= 1,
            Tok::Punct(b',') if depth == 0 => {
                defs.push(Vec::new());
                continue;
            }
            _ => {}
        }
        if let Some(d) = defs.last_mut() {
            d.push((tok, span));
        }
    }
    let mut shape = Shape {
        columns: Vec::new(),
        auto_inc: None,
        secondary_keys: false,
        kinds: Vec::new(),
    };
    let mut pk = false;
    for dt in &defs {
        let w = |i: usize| match dt.get(i) {
            Some((Tok::Word(w), _)) => w.as_str(),
            _ => "",
        };
        let c = match (w(0), w(1)) {
            ("CONSTRAINT", "PRIMARY" | "UNIQUE" | "FOREIGN" | "CHECK") => 1,
            ("CONSTRAINT", _) => 2,
            _ => 0,
        };
        match w(c) {
            "PRIMARY" if w(c + 1) == "KEY" => pk = true,
            "UNIQUE" => return Err("a unique secondary key".into()),
            "KEY" | "INDEX" | "FULLTEXT" | "SPATIAL" if c == 0 => shape.secondary_keys = true,
            "FOREIGN" | "CHECK" => {}
            _ if c > 0 => return Err("a constraint the splitter does not know".into()),
            "PERIOD" => return Err("a PERIOD definition".into()),
            _ => {
                let Some(name) = dt.first().and_then(|(t, s)| t.name(create, *s)) else {
                    return Err("a definition the splitter cannot read".into());
                };
                for (k, (tok, _)) in dt.iter().enumerate().skip(1) {
                    let Tok::Word(word) = tok else { continue };
                    match word.as_str() {
                        "AS" | "GENERATED" | "VIRTUAL" | "PERSISTENT" | "STORED" => {
                            return Err(format!("the generated column `{name}`"))
                        }
                        "INVISIBLE" => return Err(format!("the invisible column `{name}`")),
                        "SERIAL" | "UNIQUE" => return Err("a unique secondary key".into()),
                        "SYSTEM" | "WITH" | "WITHOUT" => {
                            return Err("system versioning".into());
                        }
                        "PRIMARY" if dt.get(k + 1).is_some_and(|(t, _)| t.is("KEY")) => pk = true,
                        "AUTO_INCREMENT" => shape.auto_inc = Some(shape.columns.len()),
                        _ => {}
                    }
                }
                let words: Vec<&str> = dt
                    .iter()
                    .skip(1)
                    .filter_map(|(t, _)| match t {
                        Tok::Word(w) => Some(w.as_str()),
                        _ => None,
                    })
                    .collect();
                shape.kinds.push(ColumnKind::of(&words));
                shape.columns.push(name);
            }
        }
    }
    if !pk {
        return Err("no primary key".into());
    }
    Ok(shape)
}

#[cfg(test)]
mod tests;
