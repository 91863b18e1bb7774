//! The key rewriter: a `CREATE TABLE` taken apart into the table with its
//! columns, primary key, unique keys and checks, and `ALTER TABLE`
//! statements that add its other keys (after the table's data: InnoDB's
//! sorted index build) and its foreign keys (after every table).
//!
//! It rewrites only what it fully understands. Anything else leaves the
//! statement as the dump wrote it, which is always right, only slower:
//! a comment of any kind in the statement (a versioned `/*!50705 ... */`
//! runs or not depending on the server, so moving what it holds changes
//! what the server sees), a table option it does not know (partitions,
//! tablespaces, system versioning, another engine), a key or a foreign key
//! without a name (the server names it by position, which the rewrite
//! changes), a definition it cannot read, an inline `REFERENCES`, a
//! foreign key that says `RESTRICT` (MariaDB turns it into `NO ACTION`
//! when the key is added by `ALTER TABLE` with `foreign_key_checks=0`), a
//! backslash (whether it escapes depends on the session's `sql_mode`).

use super::statements::{Lexer, Tok};

/// A `CREATE TABLE` with its secondary keys and foreign keys taken out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deferred {
    pub create: Vec<u8>,
    /// One `ALTER TABLE` with every key, or several: InnoDB builds one
    /// FULLTEXT index per statement.
    pub index_alters: Vec<Vec<u8>>,
    pub fk_alter: Option<Vec<u8>>,
}

/// Why a `CREATE TABLE` is sent as the dump wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verbatim {
    /// Nothing to defer (no secondary or foreign key), or a table the
    /// rewrite does not apply to (no primary key: InnoDB would cluster on
    /// a unique key; an `AUTO_INCREMENT` column that only a secondary key
    /// covers). Not worth a log line.
    Nothing,
    /// Something the rewriter does not fully understand: said in the log.
    NotUnderstood(String),
}

fn not_understood(why: impl Into<String>) -> Verbatim {
    Verbatim::NotUnderstood(why.into())
}

type Toks = Vec<(Tok, (usize, usize))>;

pub(super) fn toks(text: &[u8], max: usize) -> Toks {
    let mut l = Lexer::new(text);
    let mut out = Vec::new();
    while out.len() < max {
        match l.next_tok() {
            Some(t) => out.push(t),
            None => break,
        }
    }
    out
}

/// Whether `text` holds a comment of any kind (`/* */`, `/*! */`, `--`,
/// `#`) outside quotes. Any `--` counts: `a--1` is rare enough in a
/// `CREATE TABLE` that reading it as a comment costs nothing.
pub fn has_comment(text: &[u8]) -> bool {
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            q @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < text.len() {
                    let c = text[i];
                    i += 1;
                    if c == b'\\' && q != b'`' {
                        i += 1;
                    } else if c == q {
                        break;
                    }
                }
            }
            b'#' => return true,
            b'/' if text.get(i + 1) == Some(&b'*') => return true,
            b'-' if text.get(i + 1) == Some(&b'-') => return true,
            _ => i += 1,
        }
    }
    false
}

/// The index just after the `)` closing the parenthesis at `open`.
pub(super) fn body_end(text: &[u8], open: usize) -> Option<usize> {
    let mut l = Lexer::new(text);
    l.pos = open;
    let mut depth = 0i32;
    while let Some((tok, span)) = l.next_tok() {
        match tok {
            Tok::Punct(b'(') => depth += 1,
            Tok::Punct(b')') => {
                depth -= 1;
                if depth == 0 {
                    return Some(span.1);
                }
            }
            _ => {}
        }
    }
    None
}

pub(super) fn quote_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// Table options the rewrite keeps as they are: `NAME [=] value`.
const OPTIONS: &[&str] = &[
    "ENGINE",
    "AUTO_INCREMENT",
    "COMMENT",
    "ROW_FORMAT",
    "KEY_BLOCK_SIZE",
    "STATS_PERSISTENT",
    "STATS_AUTO_RECALC",
    "STATS_SAMPLE_PAGES",
    "PACK_KEYS",
    "CHECKSUM",
    "TABLE_CHECKSUM",
    "DELAY_KEY_WRITE",
    "AVG_ROW_LENGTH",
    "MAX_ROWS",
    "MIN_ROWS",
    "PAGE_COMPRESSED",
    "PAGE_COMPRESSION_LEVEL",
    "ENCRYPTED",
    "ENCRYPTION_KEY_ID",
    "TRANSACTIONAL",
    "CHARSET",
    "COLLATE",
];

/// Checks the table options after the body: only known `NAME [=] value`
/// pairs, and the engine (when named) InnoDB.
pub(super) fn check_options(opts: &[(Tok, (usize, usize))]) -> Result<(), Verbatim> {
    let word = |i: usize| match opts.get(i) {
        Some((Tok::Word(w), _)) => w.as_str(),
        _ => "",
    };
    let mut i = 0;
    while i < opts.len() {
        if matches!(opts[i].0, Tok::Punct(b',')) {
            i += 1;
            continue;
        }
        let name = word(i);
        // Multi-word names: [DEFAULT] CHARACTER SET, DEFAULT CHARSET,
        // DEFAULT COLLATE.
        let mut j = i;
        if name == "DEFAULT" {
            j += 1;
        }
        let known = match word(j) {
            "CHARACTER" if word(j + 1) == "SET" => {
                j += 2;
                true
            }
            w if OPTIONS.contains(&w) && (j == i || matches!(w, "CHARSET" | "COLLATE")) => {
                j += 1;
                true
            }
            _ => false,
        };
        if !known {
            let what = match &opts[i].0 {
                Tok::Word(w) => w.clone(),
                other => format!("{other:?}"),
            };
            return Err(not_understood(format!("the table option {what}")));
        }
        if matches!(opts.get(j), Some((Tok::Punct(b'='), _))) {
            j += 1;
        }
        match opts.get(j) {
            Some((Tok::Word(v), _)) if word(i) == "ENGINE" && v != "INNODB" => {
                return Err(Verbatim::Nothing);
            }
            Some((Tok::Ident(v), _))
                if word(i) == "ENGINE" && !v.eq_ignore_ascii_case("innodb") =>
            {
                return Err(Verbatim::Nothing);
            }
            Some((Tok::Word(_) | Tok::Str | Tok::Ident(_), _)) => {}
            _ => return Err(not_understood(format!("the table option {}", word(i)))),
        }
        i = j + 1;
    }
    Ok(())
}

/// Words that cannot start a column definition without quotes.
const NOT_A_COLUMN: &[&str] = &[
    "KEY",
    "INDEX",
    "UNIQUE",
    "PRIMARY",
    "FULLTEXT",
    "SPATIAL",
    "FOREIGN",
    "CONSTRAINT",
    "CHECK",
    "PERIOD",
    "LIKE",
];

/// Splits a `CREATE TABLE` into the table with its primary and unique keys,
/// and `ALTER TABLE` statements for the rest; [`Verbatim`] when it is to be
/// sent as it is (and why).
pub fn defer_keys(text: &[u8], db: &str, table: &str) -> Result<Deferred, Verbatim> {
    if text.starts_with(b"/*") {
        return Err(Verbatim::Nothing); // mysqldump's stand-in for a view
    }
    if has_comment(text) {
        return Err(not_understood("a comment inside the statement"));
    }
    if memchr::memchr(b'\\', text).is_some() {
        return Err(not_understood("a backslash inside the statement"));
    }
    let t = toks(text, 64);
    let open = t
        .iter()
        .find(|(tok, _)| *tok == Tok::Punct(b'('))
        .ok_or_else(|| not_understood("no column list"))?
        .1
         .0;
    let close_end =
        body_end(text, open).ok_or_else(|| not_understood("an unclosed column list"))?;
    let close = close_end - 1;
    check_options(&toks(&text[close_end..], 4096))?;

    // The definitions, cut at top-level commas.
    let mut defs: Vec<(usize, usize)> = Vec::new();
    let mut l = Lexer::new(text);
    l.pos = open + 1;
    let (mut depth, mut start) = (0i32, open + 1);
    while let Some((tok, span)) = l.next_tok() {
        if span.0 >= close {
            break;
        }
        match tok {
            Tok::Punct(b'(') => depth += 1,
            Tok::Punct(b')') => depth -= 1,
            Tok::Punct(b',') if depth == 0 => {
                defs.push((start, span.0));
                start = span.1;
            }
            _ => {}
        }
    }
    defs.push((start, close));

    let mut keep: Vec<&[u8]> = Vec::new();
    let mut keys: Vec<(&[u8], bool)> = Vec::new(); // (definition, fulltext)
    let mut fks: Vec<Vec<u8>> = Vec::new();
    let mut has_pk = false;
    let mut auto_inc: Option<String> = None;
    let mut covered_first: Vec<String> = Vec::new(); // first columns of kept keys
                                                     // Column lists of the keys a foreign key can use, and the foreign
                                                     // keys' own columns.
    let mut key_cols: Vec<Vec<Option<String>>> = Vec::new();
    let mut fk_cols: Vec<Vec<Option<String>>> = Vec::new();
    for &(a, b) in &defs {
        let def = trim(&text[a..b]);
        if def.is_empty() {
            return Err(not_understood("an empty definition"));
        }
        let dt = toks(def, 4096);
        let w = |i: usize| match dt.get(i) {
            Some((Tok::Word(w), _)) => w.as_str(),
            _ => "",
        };
        let is_name = |i: usize| match dt.get(i) {
            Some((Tok::Ident(_), _)) => true,
            Some((Tok::Word(w), _)) => !matches!(w.as_str(), "USING" | "KEY" | "INDEX"),
            _ => false,
        };
        let first_col = |from: usize| -> Option<String> {
            let p = dt
                .iter()
                .skip(from)
                .position(|(t, _)| *t == Tok::Punct(b'('))?;
            let (tok, span) = dt.get(from + p + 1)?;
            tok.name(def, *span)
        };
        // CONSTRAINT [name] ...
        let mut c = 0;
        if w(0) == "CONSTRAINT" {
            c = if matches!(w(1), "PRIMARY" | "UNIQUE" | "FOREIGN" | "CHECK") {
                1
            } else {
                2
            };
        }
        match w(c) {
            "PRIMARY" if w(c + 1) == "KEY" => {
                has_pk = true;
                covered_first.extend(first_col(c));
                key_cols.push(columns(def, &dt, c));
                keep.push(def);
            }
            "UNIQUE" => {
                covered_first.extend(first_col(c));
                key_cols.push(columns(def, &dt, c));
                keep.push(def);
            }
            "KEY" | "INDEX" if c == 0 => {
                if !is_name(1) {
                    return Err(not_understood("a key without a name"));
                }
                key_cols.push(columns(def, &dt, c));
                keys.push((def, false));
            }
            "FULLTEXT" | "SPATIAL" if c == 0 => {
                let n = if matches!(w(1), "KEY" | "INDEX") {
                    2
                } else {
                    1
                };
                if !is_name(n) {
                    return Err(not_understood("a key without a name"));
                }
                keys.push((def, w(0) == "FULLTEXT"));
            }
            "FOREIGN" if w(c + 1) == "KEY" => {
                if c != 2 {
                    return Err(not_understood("a foreign key without a name"));
                }
                if dt.iter().any(|(t, _)| t.is("RESTRICT")) {
                    return Err(not_understood(
                        "a foreign key with RESTRICT (MariaDB adds it as NO ACTION later)",
                    ));
                }
                fk_cols.push(columns(def, &dt, c));
                fks.push(qualify_references(def, db)?);
            }
            "CHECK" => keep.push(def),
            "PERIOD" if w(c + 1) == "FOR" && c == 0 => keep.push(def),
            _ if c > 0 => return Err(not_understood("a constraint the rewriter does not know")),
            _ => {
                // A column: a name, then a type.
                let named = match dt.first() {
                    Some((Tok::Ident(_), _)) => true,
                    Some((Tok::Word(w), _)) => !NOT_A_COLUMN.contains(&w.as_str()),
                    _ => false,
                };
                if !named || !matches!(dt.get(1), Some((Tok::Word(_), _))) {
                    return Err(not_understood("a definition the rewriter cannot read"));
                }
                if dt.iter().any(|(t, _)| t.is("REFERENCES")) {
                    return Err(not_understood("a column with an inline REFERENCES"));
                }
                let col = dt.first().and_then(|(t, s)| t.name(def, *s));
                if dt
                    .windows(2)
                    .any(|p| p[0].0.is("PRIMARY") && p[1].0.is("KEY"))
                {
                    has_pk = true;
                    covered_first.extend(col.clone());
                    key_cols.push(vec![col.clone()]);
                }
                if dt.iter().any(|(t, _)| t.is("UNIQUE")) {
                    covered_first.extend(col.clone());
                    key_cols.push(vec![col.clone()]);
                }
                if dt.iter().any(|(t, _)| t.is("AUTO_INCREMENT")) {
                    auto_inc = dt.first().and_then(|(t, s)| t.name(def, *s));
                }
                keep.push(def);
            }
        }
    }
    if !has_pk || (keys.is_empty() && fks.is_empty()) {
        return Err(Verbatim::Nothing);
    }
    // A foreign key no key starts with gets a key of its own, made by the
    // server where the foreign key stands among the keys: moving the
    // foreign key would move that key.
    for fk in &fk_cols {
        let covered = key_cols.iter().any(|k| {
            k.len() >= fk.len()
                && fk.iter().zip(k).all(|(f, k)| match (f, k) {
                    (Some(f), Some(k)) => f.eq_ignore_ascii_case(k),
                    _ => false,
                })
        });
        if !covered {
            return Err(not_understood(
                "a foreign key no key covers (the server would add one in its place)",
            ));
        }
    }
    if let Some(col) = &auto_inc {
        if !covered_first.iter().any(|c| c.eq_ignore_ascii_case(col)) {
            return Err(Verbatim::Nothing);
        }
    }
    let name = format!("{}.{}", quote_ident(db), quote_ident(table));
    let mut create = text[..=open].to_vec();
    for (k, d) in keep.iter().enumerate() {
        create.extend_from_slice(if k == 0 { b"\n  " } else { b",\n  " });
        create.extend_from_slice(d);
    }
    create.extend_from_slice(b"\n");
    create.extend_from_slice(&text[close..]);

    // Every key in one statement, but one FULLTEXT index per statement.
    let mut index_alters: Vec<Vec<u8>> = Vec::new();
    let mut current: Vec<&[u8]> = Vec::new();
    let mut fulltext_in_current = false;
    for (def, fulltext) in &keys {
        if *fulltext && fulltext_in_current {
            index_alters.push(alter(&name, &current));
            current.clear();
            fulltext_in_current = false;
        }
        fulltext_in_current |= *fulltext;
        current.push(def);
    }
    if !current.is_empty() {
        index_alters.push(alter(&name, &current));
    }
    let fk_alter = (!fks.is_empty()).then(|| {
        let refs: Vec<&[u8]> = fks.iter().map(Vec::as_slice).collect();
        alter(&name, &refs)
    });
    Ok(Deferred {
        create,
        index_alters,
        fk_alter,
    })
}

/// The columns of the first parenthesised list at or after token `from`
/// of a key or foreign key definition: each a name, or `None` when it is
/// more than a name (a prefix length, an expression).
fn columns(def: &[u8], dt: &[(Tok, (usize, usize))], from: usize) -> Vec<Option<String>> {
    let Some(open) = dt
        .iter()
        .skip(from)
        .position(|(t, _)| *t == Tok::Punct(b'('))
        .map(|p| p + from)
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut part: Vec<&(Tok, (usize, usize))> = Vec::new();
    let mut depth = 0;
    for tok in &dt[open + 1..] {
        match tok.0 {
            Tok::Punct(b'(') => depth += 1,
            Tok::Punct(b')') if depth == 0 => break,
            Tok::Punct(b')') => depth -= 1,
            Tok::Punct(b',') if depth == 0 => {
                out.push(column(def, &part));
                part.clear();
                continue;
            }
            _ => {}
        }
        part.push(tok);
    }
    out.push(column(def, &part));
    out
}

fn column(def: &[u8], part: &[&(Tok, (usize, usize))]) -> Option<String> {
    match part {
        [(t, s)] | [(t, s), (Tok::Word(_), _)]
            if part.len() == 1 || part[1].0.is("ASC") || part[1].0.is("DESC") =>
        {
            t.name(def, *s)
        }
        _ => None,
    }
}

fn alter(name: &str, defs: &[&[u8]]) -> Vec<u8> {
    let mut s = format!("ALTER TABLE {name} ").into_bytes();
    for (k, d) in defs.iter().enumerate() {
        if k > 0 {
            s.extend_from_slice(b", ");
        }
        s.extend_from_slice(b"ADD ");
        s.extend_from_slice(d);
    }
    s
}

/// `REFERENCES t` becomes `REFERENCES db.t`: foreign keys are added at the
/// end, when the session's database may be another. The rest of the
/// definition is kept byte for byte.
fn qualify_references(def: &[u8], db: &str) -> Result<Vec<u8>, Verbatim> {
    let dt = toks(def, 4096);
    let Some(r) = dt.iter().position(|(t, _)| t.is("REFERENCES")) else {
        return Err(not_understood("a foreign key without REFERENCES"));
    };
    match (dt.get(r + 1), dt.get(r + 2)) {
        (Some((Tok::Ident(_) | Tok::Word(_), _)), Some((Tok::Punct(b'.'), _))) => Ok(def.to_vec()),
        (Some((Tok::Ident(_) | Tok::Word(_), span)), _) => {
            let mut out = def[..span.0].to_vec();
            out.extend_from_slice(quote_ident(db).as_bytes());
            out.push(b'.');
            out.extend_from_slice(&def[span.0..]);
            Ok(out)
        }
        _ => Err(not_understood("a foreign key the rewriter cannot read")),
    }
}

fn trim(s: &[u8]) -> &[u8] {
    let a = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let b = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(a, |p| p + 1);
    &s[a..b]
}

#[cfg(test)]
mod tests;
