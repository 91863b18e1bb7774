//! An `INSERT`'s literal rows as a `LOAD DATA` file: the same rows, which
//! the server stores without parsing SQL (about half the server's work per
//! row, measured in bench/RESULTS.md "One big table").
//!
//! Only where the two store the same values. Both hand each value to the
//! column as the same kind of thing: a quoted string as text in the
//! connection's character set (`LOAD DATA ... CHARACTER SET` names it), an
//! integer or a decimal as the digits the parser would read. So a row
//! converts only when every value is:
//! - `NULL`;
//! - a plain `'...'` string (no introducer, no `X`/`B`/`N` prefix) for a
//!   text, date and time, `ENUM` or `SET` column, valid in the connection's
//!   character set;
//! - digits (`-?[0-9]+`) for an integer column, digits with an optional
//!   fraction for a `DECIMAL` column.
//!
//! Anything else (floats, whose literal and text conversions are not known
//! to agree; bit, binary, `YEAR`, JSON and spatial columns; hex literals;
//! introducers; a number into a text column; a row of the wrong width)
//! leaves the `INSERT` as it is. The character sets are those where no
//! byte of a multi-byte character is a quote or a backslash, so the
//! splitter's reading of the string is the server's.

use super::spread::{ColumnKind, Shape};
use super::values::{walk_rows, Step};
use crate::dump::keys::toks;
use crate::dump::statements::Tok;

/// Character sets whose strings convert (see the module's note).
const CHARSETS: &[&str] = &["utf8mb4", "utf8mb3", "utf8", "latin1", "ascii"];

/// The rows of one `INSERT`, ready for `LOAD DATA`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowsFile {
    /// Tab-separated, one row per line, `LOAD DATA`'s default escapes.
    pub tsv: Vec<u8>,
    /// The `LOAD DATA` statement for a file at `path`: see
    /// [`RowsFile::statement`].
    table: String,
    columns: String,
    charset: String,
    pub rows: u64,
}

impl RowsFile {
    /// `LOAD DATA INFILE 'path' INTO TABLE t CHARACTER SET cs (cols)`, with
    /// the defaults that the file is written for (tab-separated fields,
    /// backslash escapes, `\N` for `NULL`, no enclosing quotes, one row per
    /// line).
    pub fn statement(&self, path: &str) -> Vec<u8> {
        format!(
            "LOAD DATA INFILE '{}' INTO TABLE {} CHARACTER SET {} {}",
            path.replace('\\', "\\\\").replace('\'', "''"),
            self.table,
            self.charset,
            self.columns
        )
        .into_bytes()
    }
}

/// Whether `charset` (the connection's) is one the conversion knows.
pub(super) fn known_charset(charset: &str) -> bool {
    CHARSETS.iter().any(|c| c.eq_ignore_ascii_case(charset))
}

/// The rows of `insert` (an `INSERT INTO t [(cols)] VALUES ...` of a table
/// of `shape`) as a file, or why not. `charset` is the connection's.
pub(super) fn convert(insert: &[u8], shape: &Shape, charset: &str) -> Result<RowsFile, String> {
    if !known_charset(charset) {
        return Err(format!("the connection's character set {charset}"));
    }
    if shape.kinds.len() != shape.columns.len() {
        return Err("columns of unknown types".into());
    }
    let head = toks(insert, 4096);
    let w = |i: usize| match head.get(i) {
        Some((Tok::Word(w), _)) => w.as_str(),
        _ => "",
    };
    if w(0) != "INSERT" || w(1) != "INTO" {
        return Err("not INSERT INTO".into());
    }
    // The table as written: `t` or `db`.`t`.
    let Some(&(_, (table_from, mut table_to))) = head.get(2) else {
        return Err("no table".into());
    };
    let mut i = 3;
    if matches!(head.get(i), Some((Tok::Punct(b'.'), _))) {
        match head.get(i + 1) {
            Some(&(_, (_, end))) => table_to = end,
            None => return Err("no table".into()),
        }
        i += 2;
    }
    let table = String::from_utf8_lossy(&insert[table_from..table_to]).into_owned();
    // The columns: the INSERT's list, or every column of the table.
    let mut kinds = Vec::new();
    let columns = if matches!(head.get(i), Some((Tok::Punct(b'('), _))) {
        let from = head[i].1 .0;
        i += 1;
        let mut want_name = true;
        loop {
            match head.get(i) {
                Some((Tok::Punct(b')'), (_, end))) => {
                    let list = String::from_utf8_lossy(&insert[from..*end]).into_owned();
                    i += 1;
                    break list;
                }
                Some((Tok::Punct(b','), _)) if !want_name => want_name = true,
                Some((tok, span)) if want_name => {
                    let name = tok
                        .name(insert, *span)
                        .ok_or("a column list not understood")?;
                    let k = shape
                        .columns
                        .iter()
                        .position(|c| c.eq_ignore_ascii_case(&name))
                        .ok_or("a column the table does not have")?;
                    kinds.push(shape.kinds[k]);
                    want_name = false;
                }
                _ => return Err("a column list not understood".into()),
            }
            i += 1;
        }
    } else {
        kinds.clone_from(&shape.kinds);
        let names: Vec<String> = shape
            .columns
            .iter()
            .map(|c| format!("`{}`", c.replace('`', "``")))
            .collect();
        format!("({})", names.join(","))
    };
    if !matches!(w(i), "VALUES" | "VALUE") {
        return Err("not INSERT ... VALUES".into());
    }
    let Some((_, (_, from))) = head.get(i) else {
        return Err("no values".into());
    };
    let utf8 = charset.to_ascii_lowercase().starts_with("utf8");
    let mb3 = utf8 && !charset.eq_ignore_ascii_case("utf8mb4");
    let ascii = charset.eq_ignore_ascii_case("ascii");
    let (tsv, rows) = values(insert, *from, &kinds, Text { utf8, mb3, ascii })?;
    Ok(RowsFile {
        tsv,
        table,
        columns,
        charset: charset.to_ascii_lowercase(),
        rows,
    })
}

/// What a string must be valid as.
#[derive(Clone, Copy)]
struct Text {
    utf8: bool,
    /// No 4-byte characters (utf8mb3).
    mb3: bool,
    ascii: bool,
}

impl Text {
    fn valid(self, s: &[u8]) -> bool {
        if self.ascii {
            return s.is_ascii();
        }
        if !self.utf8 {
            return true;
        }
        match std::str::from_utf8(s) {
            Ok(t) => !self.mb3 || t.chars().all(|c| c.len_utf8() < 4),
            Err(_) => false,
        }
    }
}

/// The rows from `pos` (`(v, ...), (v, ...)` to the end) as lines.
fn values(
    s: &[u8],
    pos: usize,
    kinds: &[ColumnKind],
    text: Text,
) -> Result<(Vec<u8>, u64), String> {
    let mut out = Vec::with_capacity(s.len());
    let mut rows = 0;
    let mut raw = Vec::new();
    walk_rows(s, pos, |step| match step {
        Step::Value { k, pos } => {
            let kind = *kinds.get(k).ok_or("more values than columns")?;
            if k > 0 {
                out.push(b'\t');
            }
            value(s, pos, kind, text, &mut out, &mut raw)
        }
        Step::RowEnd { values } if values != kinds.len() => Err("fewer values than columns".into()),
        Step::RowEnd { .. } => {
            out.push(b'\n');
            rows += 1;
            Ok(0)
        }
    })?;
    Ok((out, rows))
}

/// One value at `pos` into `out`; where it ends.
fn value(
    s: &[u8],
    pos: usize,
    kind: ColumnKind,
    text: Text,
    out: &mut Vec<u8>,
    raw: &mut Vec<u8>,
) -> Result<usize, String> {
    match s.get(pos) {
        Some(b'\'') if kind.takes_strings() => {
            raw.clear();
            let end = unquote(s, pos, raw)?;
            if !text.valid(raw) {
                return Err("a string not valid in the connection's character set".into());
            }
            escape(raw, out);
            Ok(end)
        }
        Some(b'-' | b'0'..=b'9') if kind.takes_numbers() => {
            let start = pos;
            let mut p = pos + usize::from(s[pos] == b'-');
            let digits = |p: &mut usize| {
                let from = *p;
                while *p < s.len() && s[*p].is_ascii_digit() {
                    *p += 1;
                }
                *p > from
            };
            if !digits(&mut p) {
                return Err("a number not understood".into());
            }
            if kind == ColumnKind::Decimal && s.get(p) == Some(&b'.') {
                p += 1;
                if !digits(&mut p) {
                    return Err("a number not understood".into());
                }
            }
            if s.get(p)
                .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_')
            {
                return Err("a number of a form that stays in SQL".into());
            }
            out.extend_from_slice(&s[start..p]);
            Ok(p)
        }
        Some(b'N' | b'n')
            if s.get(pos..pos + 4)
                .is_some_and(|w| w.eq_ignore_ascii_case(b"NULL"))
                && !s
                    .get(pos + 4)
                    .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_') =>
        {
            out.extend_from_slice(b"\\N");
            Ok(pos + 4)
        }
        _ => Err("a value that stays in SQL".into()),
    }
}

/// The bytes of the `'...'` string at `pos` as the server reads them;
/// where it ends.
fn unquote(s: &[u8], pos: usize, raw: &mut Vec<u8>) -> Result<usize, String> {
    let mut i = pos + 1;
    while i < s.len() {
        match s[i] {
            b'\\' => {
                let Some(&c) = s.get(i + 1) else { break };
                match c {
                    b'0' => raw.push(0),
                    b'b' => raw.push(8),
                    b'n' => raw.push(b'\n'),
                    b'r' => raw.push(b'\r'),
                    b't' => raw.push(b'\t'),
                    b'Z' => raw.push(26),
                    // The server keeps the backslash of these two (they
                    // are LIKE's wildcards escaped).
                    b'%' | b'_' => raw.extend_from_slice(&[b'\\', c]),
                    other => raw.push(other),
                }
                i += 2;
            }
            b'\'' if s.get(i + 1) == Some(&b'\'') => {
                raw.push(b'\'');
                i += 2;
            }
            b'\'' => return Ok(i + 1),
            c => {
                raw.push(c);
                i += 1;
            }
        }
    }
    Err("an unterminated string".into())
}

/// `raw` as a field of `LOAD DATA`'s default format.
fn escape(raw: &[u8], out: &mut Vec<u8>) {
    for &c in raw {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0 => out.extend_from_slice(b"\\0"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests;
