//! The values of an `INSERT`: literal rows with explicit ids (any order
//! gives the same table), or why not.

use super::spread::Shape;
use crate::dump::keys::toks;
use crate::dump::statements::{Lexer, Tok};

/// What an `INSERT` allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::dump::split) enum Rows {
    /// Literal rows, explicit ids: any session.
    AnyOrder,
    /// Rows to load in the dump's order, and why.
    Ordered(String),
    /// A query in the values: reads other tables.
    ReadsTables,
}

/// What an `INSERT` into a table of `shape` (`None`: a table whose rows
/// keep the dump's order anyway) allows.
pub(in crate::dump::split) fn rows(text: &[u8], shape: Option<&Shape>) -> Rows {
    let verdict = scan(text, shape);
    match verdict {
        Err(_) if reads_tables(text) => Rows::ReadsTables,
        Err(why) => Rows::Ordered(why),
        Ok(()) if shape.is_none() => Rows::Ordered(String::new()),
        Ok(()) => Rows::AnyOrder,
    }
}

/// A query anywhere in the statement.
fn reads_tables(text: &[u8]) -> bool {
    let mut l = Lexer::new(text);
    while let Some((tok, _)) = l.next_tok() {
        if tok.is("SELECT") || tok.is("TABLE") {
            return true;
        }
    }
    false
}

/// `Ok` when the rows are literal and ids explicit; why not otherwise.
fn scan(text: &[u8], shape: Option<&Shape>) -> Result<(), String> {
    let head = toks(text, 4096);
    let w = |i: usize| match head.get(i) {
        Some((Tok::Word(w), _)) => w.as_str(),
        _ => "",
    };
    if w(0) != "INSERT" {
        return Err(format!("{} rather than a plain INSERT", w(0)));
    }
    if w(1) != "INTO" {
        return Err(format!("INSERT {}", w(1)));
    }
    // The table's name: `t` or `db`.`t`.
    let mut i = 3;
    if matches!(head.get(i), Some((Tok::Punct(b'.'), _))) {
        i += 2;
    }
    let mut auto = shape.and_then(|s| s.auto_inc);
    if matches!(head.get(i), Some((Tok::Punct(b'('), _))) {
        // A column list: where the AUTO_INCREMENT column is in it.
        let wanted = match (shape, auto) {
            (Some(s), Some(a)) => s.columns.get(a),
            _ => None,
        };
        auto = None;
        let mut k = 0;
        i += 1;
        loop {
            match head.get(i) {
                Some((Tok::Punct(b')'), _)) => break,
                Some((Tok::Punct(b','), _)) => k += 1,
                Some((tok, span)) => {
                    let name = tok.name(text, *span);
                    if wanted.is_some() && name.as_ref() == wanted {
                        auto = Some(k);
                    }
                }
                None => return Err("a column list the splitter cannot read".into()),
            }
            i += 1;
        }
        i += 1;
        if wanted.is_some() && auto.is_none() {
            return Err("ids the server assigns (no AUTO_INCREMENT column given)".into());
        }
    }
    if !matches!(w(i), "VALUES" | "VALUE") {
        return Err("an INSERT that is not INSERT ... VALUES".into());
    }
    let Some((_, (_, from))) = head.get(i) else {
        return Err("an INSERT the splitter cannot read".into());
    };
    values(text, *from, auto)
}

/// `(v, ...), (v, ...)` from `pos` to the end: literals only, the value at
/// `auto` an explicit non-zero integer.
fn values(s: &[u8], pos: usize, auto: Option<usize>) -> Result<(), String> {
    walk_rows(s, pos, |step| match step {
        Step::Value { k, pos } => {
            let end = literal(s, pos)?;
            if Some(k) == auto && !explicit_id(&s[pos..end]) {
                return Err(format!(
                    "ids the server assigns ({} in the AUTO_INCREMENT column)",
                    String::from_utf8_lossy(&s[pos..end])
                ));
            }
            Ok(end)
        }
        Step::RowEnd { .. } => Ok(0),
    })
}

/// What [`walk_rows`] asks of its caller.
pub(in crate::dump::split) enum Step {
    /// Read the `k`th value of a row, which starts at `pos`: where it ends.
    Value { k: usize, pos: usize },
    /// A row ended, with this many values.
    RowEnd { values: usize },
}

/// Walks the rows `(v, ...), (v, ...)` from `pos` to the end of `s`,
/// asking `step` to read each value and telling it where each row ends.
/// An error for anything else between them (`ON DUPLICATE KEY UPDATE`, a
/// missing parenthesis).
pub(in crate::dump::split) fn walk_rows(
    s: &[u8],
    mut pos: usize,
    mut step: impl FnMut(Step) -> Result<usize, String>,
) -> Result<(), String> {
    let skip_ws = |pos: &mut usize| {
        while *pos < s.len() && s[*pos].is_ascii_whitespace() {
            *pos += 1;
        }
    };
    loop {
        skip_ws(&mut pos);
        if s.get(pos) != Some(&b'(') {
            return Err("values the splitter cannot read".into());
        }
        pos += 1;
        let mut k = 0;
        loop {
            skip_ws(&mut pos);
            pos = step(Step::Value { k, pos })?;
            skip_ws(&mut pos);
            match s.get(pos) {
                Some(b',') => k += 1,
                Some(b')') => break,
                _ => return Err("values the splitter cannot read".into()),
            }
            pos += 1;
        }
        step(Step::RowEnd { values: k + 1 })?;
        pos += 1;
        skip_ws(&mut pos);
        match s.get(pos) {
            None => return Ok(()),
            Some(b',') => pos += 1,
            Some(_) => return Err("something after the values (ON DUPLICATE KEY?)".into()),
        }
    }
}

/// A non-zero integer written as digits.
fn explicit_id(v: &[u8]) -> bool {
    let digits = v.strip_prefix(b"-").unwrap_or(v);
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) && digits.iter().any(|&b| b != b'0')
}

/// The end of the literal at `pos`: a quoted string (with an optional
/// `_charset` introducer or `X`/`B`/`N` prefix), a number, `0x...`, `NULL`,
/// `TRUE`, `FALSE`.
fn literal(s: &[u8], mut pos: usize) -> Result<usize, String> {
    let word_end = |mut p: usize| {
        while p < s.len() && (s[p].is_ascii_alphanumeric() || s[p] == b'_') {
            p += 1;
        }
        p
    };
    match s.get(pos) {
        Some(b'\'') => quoted(s, pos),
        Some(b'-' | b'+' | b'.' | b'0'..=b'9') => {
            pos += 1;
            while pos < s.len() {
                match s[pos] {
                    b'0'..=b'9' | b'.' | b'a'..=b'z' | b'A'..=b'Z' => pos += 1,
                    b'+' | b'-' if matches!(s[pos - 1], b'e' | b'E') => pos += 1,
                    _ => break,
                }
            }
            Ok(pos)
        }
        Some(b'_') => {
            // An introducer: `_binary 'x'`, `_utf8mb4 0x...`.
            let mut p = word_end(pos);
            while p < s.len() && s[p].is_ascii_whitespace() {
                p += 1;
            }
            match s.get(p) {
                Some(b'\'') => quoted(s, p),
                Some(b'0'..=b'9' | b'x' | b'X' | b'b' | b'B') => literal(s, p),
                _ => Err("a value the splitter cannot read".into()),
            }
        }
        Some(b'x' | b'X' | b'b' | b'B' | b'n' | b'N') if s.get(pos + 1) == Some(&b'\'') => {
            quoted(s, pos + 1)
        }
        Some(c) if c.is_ascii_alphabetic() => {
            let end = word_end(pos);
            let w = &s[pos..end];
            if [&b"NULL"[..], b"TRUE", b"FALSE"]
                .iter()
                .any(|k| w.eq_ignore_ascii_case(k))
            {
                Ok(end)
            } else {
                Err(format!(
                    "the value {} (not a literal)",
                    String::from_utf8_lossy(w)
                ))
            }
        }
        _ => Err("a value the splitter cannot read".into()),
    }
}

/// The end of the `'...'` string at `pos` (backslash escapes and doubled
/// quotes, as the statement splitter reads them).
fn quoted(s: &[u8], pos: usize) -> Result<usize, String> {
    let mut i = pos + 1;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 2,
            b'\'' if s.get(i + 1) == Some(&b'\'') => i += 2,
            b'\'' => return Ok(i + 1),
            _ => i += 1,
        }
    }
    Err("an unterminated string".into())
}
