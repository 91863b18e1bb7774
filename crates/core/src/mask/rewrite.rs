//! The SQL side of masking: a `CREATE TABLE`'s columns, and an
//! `INSERT ... VALUES` rewritten value by value (multi-row, any column
//! list, string/hex/`_binary`/numeric literals as mysqldump and
//! mariadb-dump write them, with or without `--hex-blob` and
//! `--complete-insert`).

use crate::dump::statements::{Lexer, Tok};

use super::strategy::{Keyed, Strategy, Value};

/// A column of a `CREATE TABLE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// `GENERATED ALWAYS AS (...)` / `AS (...)`: dumps leave it out of
    /// their rows.
    pub generated: bool,
}

const NOT_COLUMNS: &[&str] = &[
    "PRIMARY",
    "UNIQUE",
    "KEY",
    "INDEX",
    "CONSTRAINT",
    "FOREIGN",
    "FULLTEXT",
    "SPATIAL",
    "CHECK",
    "PERIOD",
    "VECTOR",
];

/// The columns of a `CREATE TABLE name (...)`, in order; `None` when the
/// text has no column list.
pub fn create_columns(text: &[u8]) -> Option<Vec<Column>> {
    let mut l = Lexer::new(text);
    // To the body's opening parenthesis.
    loop {
        let (tok, _) = l.next_tok()?;
        if tok == Tok::Punct(b'(') {
            break;
        }
    }
    let mut cols = Vec::new();
    let mut depth = 0i32;
    let mut def: Vec<(Tok, (usize, usize))> = Vec::new();
    let mut finish = |def: &mut Vec<(Tok, (usize, usize))>| {
        if let Some((first, span)) = def.first() {
            let keyword = matches!(first, Tok::Word(w) if NOT_COLUMNS.contains(&w.as_str()));
            if !keyword {
                if let Some(name) = first.name(text, *span) {
                    let generated = def.iter().any(|(t, _)| t.is("GENERATED"))
                        || def
                            .windows(2)
                            .any(|p| p[0].0.is("AS") && p[1].0 == Tok::Punct(b'('));
                    cols.push(Column { name, generated });
                }
            }
        }
        def.clear();
    };
    while let Some((tok, span)) = l.next_tok() {
        match tok {
            Tok::Punct(b'(') => depth += 1,
            Tok::Punct(b')') if depth == 0 => {
                finish(&mut def);
                return Some(cols);
            }
            Tok::Punct(b')') => depth -= 1,
            Tok::Punct(b',') if depth == 0 => {
                finish(&mut def);
                continue;
            }
            _ => {}
        }
        def.push((tok, span));
    }
    None
}

/// What comes before an `INSERT`'s rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsertHead {
    /// The explicit column list, if any.
    pub columns: Option<Vec<String>>,
    /// Byte offset just after `VALUES`.
    pub values_at: usize,
}

/// Reads `INSERT|REPLACE [modifiers] [INTO] name [(cols)] VALUES`.
pub fn insert_head(text: &[u8]) -> Option<InsertHead> {
    let mut l = Lexer::new(text);
    let mut columns: Option<Vec<String>> = None;
    let (first, _) = l.next_tok()?;
    if !(first.is("INSERT") || first.is("REPLACE")) {
        return None;
    }
    let mut seen_name = false;
    loop {
        let (tok, span) = l.next_tok()?;
        match &tok {
            Tok::Word(w) if w == "VALUES" || w == "VALUE" => {
                return Some(InsertHead {
                    columns,
                    values_at: span.1,
                });
            }
            Tok::Punct(b'(') if seen_name && columns.is_none() => {
                let mut list = Vec::new();
                loop {
                    let (t, s) = l.next_tok()?;
                    match t {
                        Tok::Punct(b')') => break,
                        Tok::Punct(b',') => {}
                        other => list.push(other.name(text, s)?),
                    }
                }
                columns = Some(list);
            }
            Tok::Word(w)
                if matches!(
                    w.as_str(),
                    "LOW_PRIORITY" | "DELAYED" | "HIGH_PRIORITY" | "IGNORE" | "INTO"
                ) => {}
            Tok::Ident(_) | Tok::Word(_) | Tok::Punct(b'.') => seen_name = true,
            _ => return None,
        }
    }
}

/// Why a statement's rows could not be rewritten. Never holds a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    #[error("row {row} has {got} values for {want} columns")]
    Arity { row: usize, got: usize, want: usize },
    #[error("column {column} holds an expression dolly cannot mask (only literals)")]
    Expression { column: String },
    #[error("the rows cannot be read (an unterminated literal or a missing parenthesis)")]
    Syntax,
    #[error("text follows the rows (ON DUPLICATE KEY UPDATE?)")]
    Trailing,
}

/// One literal of a row: its span and what it decodes to (`None`: an
/// expression).
struct Lit {
    span: (usize, usize),
    value: Option<Value>,
}

/// `text` (an `INSERT`, rows from `values_at`) with each row's value in
/// position `k` replaced as `plan[k]` says (`None`: kept). `names` names
/// the positions, for errors. The number of values rewritten.
pub fn rewrite_rows(
    text: &[u8],
    values_at: usize,
    plan: &[Option<Strategy>],
    names: &[String],
    key: &Keyed,
    out: &mut Vec<u8>,
) -> Result<u64, RewriteError> {
    out.extend_from_slice(&text[..values_at]);
    let mut i = values_at;
    let mut row = 0;
    let mut changed = 0;
    let mut lits: Vec<Lit> = Vec::with_capacity(plan.len());
    loop {
        let ws = skip_ws(text, i);
        out.extend_from_slice(&text[i..ws]);
        i = ws;
        if text.get(i) != Some(&b'(') {
            return Err(RewriteError::Syntax);
        }
        out.push(b'(');
        i += 1;
        row += 1;
        lits.clear();
        // The values of one row.
        loop {
            let start = skip_ws(text, i);
            let (value, end) = literal(text, start)?;
            let after = skip_ws(text, end);
            lits.push(Lit {
                span: (i, after),
                value,
            });
            match text.get(after) {
                Some(b',') => i = after + 1,
                Some(b')') => {
                    i = after + 1;
                    break;
                }
                _ => return Err(RewriteError::Syntax),
            }
        }
        if lits.len() != plan.len() {
            return Err(RewriteError::Arity {
                row,
                got: lits.len(),
                want: plan.len(),
            });
        }
        for (k, lit) in lits.iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            let replaced = match (&plan[k], &lit.value) {
                (None | Some(Strategy::Keep), _) => None,
                (Some(s @ (Strategy::Null | Strategy::Constant(_))), _) => {
                    s.apply(key, &Value::Null)
                }
                (Some(s), Some(v)) => s.apply(key, v),
                (Some(_), None) => {
                    return Err(RewriteError::Expression {
                        column: names.get(k).cloned().unwrap_or_default(),
                    })
                }
            };
            match replaced {
                None => out.extend_from_slice(&text[lit.span.0..lit.span.1]),
                Some(v) => {
                    changed += 1;
                    render(&v, out);
                }
            }
        }
        out.push(b')');
        let ws = skip_ws(text, i);
        match text.get(ws) {
            Some(b',') => {
                out.extend_from_slice(&text[i..=ws]);
                i = ws + 1;
            }
            None => {
                out.extend_from_slice(&text[i..]);
                return Ok(changed);
            }
            Some(_) => return Err(RewriteError::Trailing),
        }
    }
}

fn skip_ws(text: &[u8], mut i: usize) -> usize {
    while i < text.len() && text[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// The literal at `i`: its decoded value (`None` for anything else, which
/// is skipped to the next top-level `,` or `)`), and where it ends.
fn literal(text: &[u8], i: usize) -> Result<(Option<Value>, usize), RewriteError> {
    let rest = &text[i..];
    let word_end = |from: usize| {
        let mut j = from;
        while j < text.len() && (text[j].is_ascii_alphanumeric() || text[j] == b'_') {
            j += 1;
        }
        j
    };
    match rest.first() {
        Some(b'\'') | Some(b'"') => {
            let (bytes, end) = string(text, i)?;
            Ok((Some(Value::Text(bytes)), end))
        }
        Some(b'_') => {
            // A charset introducer: `_binary '...'`, `_utf8mb4 0x...`.
            let w = word_end(i + 1);
            let binary = text[i..w].eq_ignore_ascii_case(b"_binary");
            let j = skip_ws(text, w);
            let (v, end) = literal(text, j)?;
            let v = match v {
                Some(Value::Text(b)) if binary => Some(Value::Binary(b)),
                other => other,
            };
            Ok((v, end))
        }
        Some(b'0') if matches!(rest.get(1), Some(b'x') | Some(b'X')) => {
            let end = word_end(i + 2);
            let bytes = unhex(&text[i + 2..end]).ok_or(RewriteError::Syntax)?;
            Ok((Some(Value::Binary(bytes)), end))
        }
        Some(b'x') | Some(b'X') if rest.get(1) == Some(&b'\'') => {
            let close = memchr::memchr(b'\'', &rest[2..]).ok_or(RewriteError::Syntax)? + i + 2;
            let bytes = unhex(&text[i + 2..close]).ok_or(RewriteError::Syntax)?;
            Ok((Some(Value::Binary(bytes)), close + 1))
        }
        Some(c) if c.is_ascii_digit() || *c == b'-' || *c == b'+' || *c == b'.' => {
            let mut j = i + 1;
            while j < text.len()
                && (text[j].is_ascii_digit()
                    || matches!(text[j], b'.' | b'e' | b'E')
                    || (matches!(text[j], b'-' | b'+') && matches!(text[j - 1], b'e' | b'E')))
            {
                j += 1;
            }
            let after = skip_ws(text, j);
            if matches!(text.get(after), Some(b',') | Some(b')')) {
                Ok((Some(Value::Number(text[i..j].to_vec())), j))
            } else {
                Ok((None, expression_end(text, i)?))
            }
        }
        Some(_) => {
            let w = word_end(i);
            let after = skip_ws(text, w);
            if text[i..w].eq_ignore_ascii_case(b"NULL")
                && matches!(text.get(after), Some(b',') | Some(b')'))
            {
                return Ok((Some(Value::Null), w));
            }
            Ok((None, expression_end(text, i)?))
        }
        None => Err(RewriteError::Syntax),
    }
}

/// A quoted string at `i`: its bytes (backslash escapes and doubled quotes
/// undone, as the server reads them) and the index after it.
fn string(text: &[u8], i: usize) -> Result<(Vec<u8>, usize), RewriteError> {
    let q = text[i];
    let mut out = Vec::new();
    let mut j = i + 1;
    while j < text.len() {
        let c = text[j];
        if c == b'\\' {
            let e = *text.get(j + 1).ok_or(RewriteError::Syntax)?;
            // `\%` and `\_` keep their backslash outside LIKE.
            if e == b'%' || e == b'_' {
                out.push(b'\\');
            }
            out.push(match e {
                b'0' => 0,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'b' => 8,
                b'Z' => 26,
                other => other,
            });
            j += 2;
            continue;
        }
        if c == q {
            if text.get(j + 1) == Some(&q) {
                out.push(q);
                j += 2;
                continue;
            }
            return Ok((out, j + 1));
        }
        out.push(c);
        j += 1;
    }
    Err(RewriteError::Syntax)
}

/// The end of an expression value: the next `,` or `)` at depth 0.
fn expression_end(text: &[u8], i: usize) -> Result<usize, RewriteError> {
    let mut depth = 0i32;
    let mut j = i;
    while j < text.len() {
        match text[j] {
            b'\'' | b'"' => {
                let (_, end) = string(text, j)?;
                j = end;
                continue;
            }
            b'(' => depth += 1,
            b')' if depth == 0 => return Ok(j),
            b')' => depth -= 1,
            b',' if depth == 0 => return Ok(j),
            _ => {}
        }
        j += 1;
    }
    Err(RewriteError::Syntax)
}

fn unhex(h: &[u8]) -> Option<Vec<u8>> {
    if !h.len().is_multiple_of(2) {
        return None;
    }
    let d = |c: u8| (c as char).to_digit(16).map(|v| v as u8);
    h.chunks(2)
        .map(|p| Some(d(p[0])? << 4 | d(p[1])?))
        .collect()
}

/// A value as SQL: strings quoted with the escapes mysqldump uses, binary
/// values in hex.
pub fn render(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.extend_from_slice(b"NULL"),
        Value::Number(n) => out.extend_from_slice(n),
        Value::Binary(b) if b.is_empty() => out.extend_from_slice(b"''"),
        Value::Binary(b) => {
            out.extend_from_slice(b"0x");
            for c in b {
                out.extend_from_slice(format!("{c:02X}").as_bytes());
            }
        }
        Value::Text(t) => {
            out.push(b'\'');
            for &c in t {
                match c {
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\'' => out.extend_from_slice(b"\\'"),
                    0 => out.extend_from_slice(b"\\0"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    26 => out.extend_from_slice(b"\\Z"),
                    c => out.push(c),
                }
            }
            out.push(b'\'');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k() -> Keyed {
        Keyed::new(b"k")
    }

    #[test]
    fn columns_of_a_create_table() {
        let c = create_columns(
            b"CREATE TABLE `t` (\n  `id` int NOT NULL,\n  `e` varchar(10) DEFAULT 'a,b',\n  \
              `g` int GENERATED ALWAYS AS (`id` + 1) VIRTUAL,\n  `d` decimal(10,2),\n  \
              `key` int,\n  PRIMARY KEY (`id`),\n  UNIQUE KEY `e` (`e`),\n  KEY `x` (`d`),\n  \
              CONSTRAINT `f` FOREIGN KEY (`id`) REFERENCES `o` (`id`)\n) ENGINE=InnoDB",
        )
        .unwrap();
        let names: Vec<&str> = c.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["id", "e", "g", "d", "key"]);
        assert!(c[2].generated && !c[1].generated);
    }

    #[test]
    fn insert_heads() {
        let h = insert_head(b"INSERT INTO `t` VALUES (1)").unwrap();
        assert_eq!(h.columns, None);
        assert_eq!(h.values_at, 22);
        let h = insert_head(b"INSERT IGNORE INTO `db`.`t` (`b`, `a`) VALUES (1,2)").unwrap();
        assert_eq!(h.columns, Some(vec!["b".to_owned(), "a".to_owned()]));
        assert!(insert_head(b"REPLACE INTO t VALUE (1)").is_some());
        assert!(insert_head(b"INSERT INTO t SELECT * FROM u").is_none());
    }

    fn rw(text: &str, plan: &[Option<Strategy>]) -> Result<String, RewriteError> {
        let h = insert_head(text.as_bytes()).unwrap();
        let names: Vec<String> = (0..plan.len()).map(|i| format!("c{i}")).collect();
        let mut out = Vec::new();
        rewrite_rows(text.as_bytes(), h.values_at, plan, &names, &k(), &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn multi_row_hex_blob_escapes_and_keep() {
        let plan = [
            None,
            Some(Strategy::Email),
            Some(Strategy::Null),
            Some(Strategy::Hash),
            Some(Strategy::Constant("it's".into())),
        ];
        let out = rw(
            "INSERT INTO `t` VALUES (1,'zoe@corp.example','a\\'b,c)',0xDEADBEEF,NULL),\n(2,'X@Y.example', _binary 'q', x'00ff', 'z')",
            &plan,
        )
        .unwrap();
        assert!(out.starts_with("INSERT INTO `t` VALUES (1,'h"), "{out}");
        assert!(!out.contains("zoe") && !out.contains("DEADBEEF") && !out.contains("a\\'b"));
        assert!(out.contains(",NULL,0x"), "{out}");
        assert!(out.contains("'it\\'s')"), "{out}");
        assert!(out.contains("),\n(2,"), "{out}");
        assert_eq!(out.matches("@example.invalid").count(), 2);
        // Keep copies the literal exactly.
        let same = rw(
            "INSERT INTO t VALUES (1,'a\\nb', -3.5e+2 , NULL)",
            &[None, None, None, None],
        )
        .unwrap();
        assert_eq!(same, "INSERT INTO t VALUES (1,'a\\nb', -3.5e+2 , NULL)");
    }

    #[test]
    fn expressions_and_mistakes() {
        let plan = [None, Some(Strategy::Hash)];
        assert_eq!(
            rw("INSERT INTO t VALUES (1, CONCAT('a','b'))", &plan),
            Err(RewriteError::Expression {
                column: "c1".into()
            })
        );
        // An expression in a kept column is copied.
        let ok = rw("INSERT INTO t VALUES (NOW(), 'x')", &plan).unwrap();
        assert!(ok.starts_with("INSERT INTO t VALUES (NOW(),'"), "{ok}");
        assert_eq!(
            rw("INSERT INTO t VALUES (1)", &plan),
            Err(RewriteError::Arity {
                row: 1,
                got: 1,
                want: 2
            })
        );
        assert_eq!(
            rw(
                "INSERT INTO t VALUES (1,'a') ON DUPLICATE KEY UPDATE a=1",
                &plan
            ),
            Err(RewriteError::Trailing)
        );
        assert_eq!(
            rw("INSERT INTO t VALUES (1,'a", &plan),
            Err(RewriteError::Syntax)
        );
    }

    #[test]
    fn rendered_text_reads_back_the_same() {
        let v = Value::Text(b"a'b\\c\n\0d".to_vec());
        let mut out = Vec::new();
        render(&v, &mut out);
        let (back, end) = string(&out, 0).unwrap();
        assert_eq!(end, out.len());
        assert_eq!(Value::Text(back), v);
    }
}
