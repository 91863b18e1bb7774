//! Masking rules applied to a dump's rows as they stream to the import
//! server: the original values never reach the server, so no file of the
//! template (tables, redo, undo, temporary files) can hold them.
//!
//! `dumps/NAME.mask.toml` ([`rules`]) names columns and strategies
//! ([`strategy`]); [`Masker`] sees every statement of the dump in order:
//! a `CREATE TABLE` tells it a table's columns (and is where unknown rule
//! columns and, in strict mode, unclassified columns fail the import); an
//! `INSERT`/`REPLACE ... VALUES` into a table with rules is rewritten
//! value by value ([`rewrite`]). Statements that could carry values past
//! the rewrite (`UPDATE`, `LOAD DATA`, `INSERT ... SELECT` into a masked
//! table) fail the import.
//!
//! Invariants: errors never hold a value of the dump, only names and line
//! numbers; the key is never stored nor logged.

pub mod redact;
pub mod rewrite;
pub mod rules;
pub mod strategy;

use std::collections::{BTreeSet, HashMap};
use std::io::{self, Read};

use crate::dump::split::{classify, Kind, TableOp};
use crate::dump::statements::{Stmt, Tokenizer};

pub use redact::redact_values;
pub use rules::{Rules, RulesError};
pub use strategy::{Keyed, Strategy};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MaskError {
    #[error("masking rules {file}: {source}")]
    Rules {
        file: String,
        #[source]
        source: RulesError,
    },
    #[error("masking rules name columns the dump does not have: {}", .0.join(", "))]
    UnknownColumns(Vec<String>),
    #[error("masking rules name tables the dump does not create: {}", .0.join(", "))]
    UnknownTables(Vec<String>),
    #[error("strict masking: these columns have no rule (add one, \"keep\" included): {}", .0.join(", "))]
    Unclassified(Vec<String>),
    #[error("masking: line {line}: {what}")]
    Statement { line: u64, what: String },
    #[error("masking rules apply to a SQL dump's rows as they stream in; a physical backup is restored as it is: mask it with a post script (NAME.post.sql), or import a SQL dump")]
    Physical,
    #[error("masking needs the mask_key setting (a secret of at least 16 bytes)")]
    NoKey,
}

/// A table's plan: per column position, the strategy (`None`: kept).
#[derive(Debug, Clone)]
struct Plan {
    columns: Vec<String>,
    /// Without generated columns: what a row without a column list holds.
    stored: Vec<usize>,
    strategies: Vec<Option<Strategy>>,
    masks: bool,
}

/// What one import's masking did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaskStats {
    pub statements: u64,
    pub values: u64,
}

/// Applies [`Rules`] to a dump's statements, in order. A clone made
/// before a load starts fresh for a second load of the same dump.
#[derive(Clone)]
pub struct Masker {
    rules: Rules,
    key: Keyed,
    db: Option<String>,
    plans: HashMap<String, Plan>,
    /// Rule tables the dump created.
    seen: BTreeSet<String>,
    pub stats: MaskStats,
}

impl Masker {
    /// `key`: the `mask_key` setting (at least 16 bytes).
    pub fn new(rules: Rules, key: Option<&[u8]>) -> Result<Self, MaskError> {
        let key = match key {
            Some(k) if k.len() >= 16 => Keyed::new(k),
            _ if rules.masks_nothing() => Keyed::new(b"unused: nothing is hashed"),
            _ => return Err(MaskError::NoKey),
        };
        Ok(Self {
            rules,
            key,
            db: None,
            plans: HashMap::new(),
            seen: BTreeSet::new(),
            stats: MaskStats::default(),
        })
    }

    pub fn strict(&self) -> bool {
        self.rules.strict
    }

    fn rules_for(&self, table: &str) -> Option<(&String, &rules::TableRules)> {
        if let Some(db) = &self.db {
            if let Some(kv) = self.rules.tables.get_key_value(&format!("{db}.{table}")) {
                return Some(kv);
            }
        }
        self.rules.tables.get_key_value(table)
    }

    /// The statement as it goes to the server.
    pub fn apply(&mut self, st: Stmt) -> Result<Stmt, MaskError> {
        let kind = classify(&st.text);
        match kind {
            Kind::Context { use_db: Some(db) } => {
                self.db = Some(db);
                Ok(st)
            }
            Kind::Table {
                name: (db, table),
                op: TableOp::Create,
            } => {
                if let Some(db) = db {
                    self.db = Some(db);
                }
                self.create(&st, &table)?;
                Ok(st)
            }
            Kind::Table {
                name: (_, table),
                op: TableOp::Insert,
            } => self.insert(st, &table),
            Kind::Unsupported(_) => {
                // Values could reach a masked table some other way.
                let first = st
                    .text
                    .split(|b| b.is_ascii_whitespace())
                    .next()
                    .unwrap_or(b"")
                    .to_ascii_uppercase();
                let risky = matches!(
                    first.as_slice(),
                    b"UPDATE" | b"LOAD" | b"INSERT" | b"REPLACE" | b"CALL" | b"PREPARE"
                );
                if risky && !self.rules.masks_nothing() {
                    return Err(MaskError::Statement {
                        line: st.line,
                        what: format!(
                            "a {} statement cannot be masked (only INSERT ... VALUES rows are)",
                            String::from_utf8_lossy(&first)
                        ),
                    });
                }
                Ok(st)
            }
            _ => Ok(st),
        }
    }

    fn create(&mut self, st: &Stmt, table: &str) -> Result<(), MaskError> {
        // mysqldump's stand-in for a view (`/*!50001 CREATE TABLE`): no rows.
        if st.text.starts_with(b"/*") {
            return Ok(());
        }
        let columns = rewrite::create_columns(&st.text).ok_or_else(|| MaskError::Statement {
            line: st.line,
            what: format!("cannot read the columns of table {table}"),
        })?;
        let rules = self.rules_for(table).map(|(k, r)| (k.clone(), r.clone()));
        let Some((rule_key, rules)) = rules else {
            if self.rules.strict {
                return Err(MaskError::Unclassified(
                    columns
                        .iter()
                        .map(|c| format!("{table}.{}", c.name))
                        .collect(),
                ));
            }
            self.plans.remove(table);
            return Ok(());
        };
        self.seen.insert(rule_key);
        let unknown: Vec<String> = rules
            .columns
            .keys()
            .filter(|name| !columns.iter().any(|c| c.name.eq_ignore_ascii_case(name)))
            .map(|name| format!("{table}.{name}"))
            .collect();
        if !unknown.is_empty() {
            return Err(MaskError::UnknownColumns(unknown));
        }
        let strategies: Vec<Option<Strategy>> = columns
            .iter()
            .map(|c| rules.rule(&c.name).cloned())
            .collect();
        if self.rules.strict {
            let missing: Vec<String> = columns
                .iter()
                .zip(&strategies)
                .filter(|(_, s)| s.is_none())
                .map(|(c, _)| format!("{table}.{}", c.name))
                .collect();
            if !missing.is_empty() {
                return Err(MaskError::Unclassified(missing));
            }
        }
        let masks = strategies
            .iter()
            .any(|s| s.as_ref().is_some_and(|s| *s != Strategy::Keep));
        self.plans.insert(
            table.to_owned(),
            Plan {
                stored: (0..columns.len())
                    .filter(|&k| !columns[k].generated)
                    .collect(),
                columns: columns.into_iter().map(|c| c.name).collect(),
                strategies,
                masks,
            },
        );
        Ok(())
    }

    fn insert(&mut self, st: Stmt, table: &str) -> Result<Stmt, MaskError> {
        let Some(plan) = self.plans.get(table) else {
            if self.rules_for(table).is_some() {
                return Err(MaskError::Statement {
                    line: st.line,
                    what: format!("rows for table {table} before its CREATE TABLE"),
                });
            }
            return Ok(st);
        };
        if !plan.masks {
            return Ok(st);
        }
        let err = |what: String| MaskError::Statement {
            line: st.line,
            what,
        };
        let head = rewrite::insert_head(&st.text)
            .ok_or_else(|| err(format!("cannot read an INSERT into {table}")))?;
        // The row's positions: the column list, else every stored column
        // (or every column, when the rows hold the generated ones too).
        let positions: Vec<usize> = match &head.columns {
            Some(list) => list
                .iter()
                .map(|name| {
                    plan.columns
                        .iter()
                        .position(|c| c.eq_ignore_ascii_case(name))
                        .ok_or_else(|| err(format!("{table} has no column {name}")))
                })
                .collect::<Result<_, _>>()?,
            None => plan.stored.clone(),
        };
        let strategies: Vec<Option<Strategy>> = positions
            .iter()
            .map(|&k| plan.strategies[k].clone())
            .collect();
        let names: Vec<String> = positions
            .iter()
            .map(|&k| format!("{table}.{}", plan.columns[k]))
            .collect();
        let mut out = Vec::with_capacity(st.text.len());
        let mut result = rewrite::rewrite_rows(
            &st.text,
            head.values_at,
            &strategies,
            &names,
            &self.key,
            &mut out,
        );
        // Rows with every column, generated ones included.
        if head.columns.is_none() && plan.stored.len() != plan.columns.len() {
            if let Err(rewrite::RewriteError::Arity { .. }) = result {
                out.clear();
                let all: Vec<Option<Strategy>> = plan.strategies.clone();
                let names: Vec<String> = plan
                    .columns
                    .iter()
                    .map(|c| format!("{table}.{c}"))
                    .collect();
                result = rewrite::rewrite_rows(
                    &st.text,
                    head.values_at,
                    &all,
                    &names,
                    &self.key,
                    &mut out,
                );
            }
        }
        let changed = result.map_err(|e| err(format!("INSERT into {table}: {e}")))?;
        self.stats.statements += 1;
        self.stats.values += changed;
        Ok(Stmt { text: out, ..st })
    }

    /// The end of the dump: rules for tables it never created fail.
    pub fn finish(&self) -> Result<(), MaskError> {
        let missing: Vec<String> = self
            .rules
            .tables
            .keys()
            .filter(|t| !self.seen.contains(*t))
            .cloned()
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(MaskError::UnknownTables(missing))
        }
    }
}

/// A dump read through the masker: the statements, masked, as SQL text
/// again (for the plain, one-session load).
pub struct MaskedReader<R: Read> {
    inner: R,
    tok: Tokenizer,
    masker: Masker,
    out: Vec<u8>,
    pos: usize,
    delim: Vec<u8>,
    eof: bool,
    buf: Vec<u8>,
}

impl<R: Read> MaskedReader<R> {
    pub fn new(inner: R, masker: Masker) -> Self {
        Self {
            inner,
            tok: Tokenizer::new(),
            masker,
            out: Vec::new(),
            pos: 0,
            delim: b";".to_vec(),
            eof: false,
            buf: vec![0u8; 1 << 20],
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        self.out.clear();
        self.pos = 0;
        let n = self.inner.read(&mut self.buf)?;
        let (masker, out, delim) = (&mut self.masker, &mut self.out, &mut self.delim);
        let mut emit = |st: Stmt| -> Result<(), MaskError> {
            let st = masker.apply(st)?;
            write_stmt(out, delim, &st);
            Ok(())
        };
        let r = if n == 0 {
            self.eof = true;
            self.tok.finish(&mut emit)
        } else {
            self.tok.feed(&self.buf[..n], &mut emit)
        };
        let r = r.and_then(|()| {
            if self.eof {
                self.masker.finish()
            } else {
                Ok(())
            }
        });
        r.map_err(io::Error::other)
    }

    /// What masking did, once the reader is done.
    pub fn stats(&self) -> MaskStats {
        self.masker.stats.clone()
    }
}

/// A statement as the client reads it, with a `DELIMITER` line when the
/// delimiter changes.
pub fn write_stmt(out: &mut Vec<u8>, delim: &mut Vec<u8>, st: &Stmt) {
    if *delim != st.delim {
        out.extend_from_slice(b"DELIMITER ");
        out.extend_from_slice(&st.delim);
        out.push(b'\n');
        *delim = st.delim.clone();
    }
    out.extend_from_slice(&st.text);
    out.extend_from_slice(&st.delim);
    out.push(b'\n');
}

impl<R: Read> Read for MaskedReader<R> {
    fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.out.len() {
            if self.eof {
                return Ok(0);
            }
            self.fill()?;
        }
        let n = dst.len().min(self.out.len() - self.pos);
        dst[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef";

    const DUMP: &str = "-- MariaDB dump\n/*!40101 SET NAMES utf8mb4 */;\n\
        CREATE TABLE `customers` (\n  `id` int NOT NULL,\n  `email` varchar(100),\n  \
        `phone` varchar(20),\n  `photo` blob,\n  PRIMARY KEY (`id`),\n  UNIQUE KEY `e` (`email`)\n) ENGINE=InnoDB;\n\
        INSERT INTO `customers` VALUES (1,'zoe@corp.example','+1 555 0100',0xCAFE),(2,'max@corp.example',NULL,NULL);\n\
        INSERT INTO `customers` (`phone`,`id`,`email`,`photo`) VALUES ('555-0199',3,'ann@corp.example',_binary 'raw');\n\
        CREATE TABLE `orders` (`id` int, `customer_email` varchar(100), `total` decimal(10,2));\n\
        INSERT INTO `orders` VALUES (10,'zoe@corp.example',12.50);\n\
        -- Dump completed\n";

    fn run(rules: &str, dump: &str) -> Result<String, io::Error> {
        let masker = Masker::new(Rules::parse(rules).unwrap(), Some(KEY)).unwrap();
        let mut r = MaskedReader::new(dump.as_bytes(), masker);
        let mut out = String::new();
        r.read_to_string(&mut out)?;
        Ok(out)
    }

    const RULES: &str =
        "[tables.customers]\nemail = \"email\"\nphone = \"digits\"\nphoto = \"null\"\n\
        [tables.orders]\ncustomer_email = \"email\"\n";

    #[test]
    fn rows_are_masked_and_joins_survive() {
        let out = run(RULES, DUMP).unwrap();
        for original in [
            "zoe@corp", "max@corp", "ann@corp", "555 0100", "0199", "CAFE", "'raw'",
        ] {
            assert!(!out.contains(original), "{original} in {out}");
        }
        // The same address masks to the same value in both tables.
        let zoe = Strategy::Email.apply(
            &Keyed::new(KEY),
            &strategy::Value::Text(b"zoe@corp.example".to_vec()),
        );
        let Some(strategy::Value::Text(zoe)) = zoe else {
            panic!()
        };
        let zoe = String::from_utf8(zoe).unwrap();
        assert_eq!(out.matches(&zoe).count(), 2, "{out}");
        // A column list in another order: the phone is still the phone.
        let listed = out.split("VALUES ('").nth(1).unwrap_or("");
        assert_eq!(listed.find('-'), Some(3), "{out}");
        assert!(listed.starts_with(|c: char| c.is_ascii_digit()), "{out}");
        assert!(out.contains(",12.50)"), "{out}");
        // Everything else as it was.
        assert!(out.contains("/*!40101 SET NAMES utf8mb4 */;\n"));
    }

    #[test]
    fn strict_mode_lists_unclassified_columns() {
        let strict = format!("strict = true\n{RULES}");
        let e = run(&strict, DUMP).unwrap_err().to_string();
        assert_eq!(
            e,
            "strict masking: these columns have no rule (add one, \"keep\" included): customers.id"
        );
        let full = "strict = true\n[tables.customers]\nid = \"keep\"\nemail = \"email\"\n\
            phone = \"digits\"\nphoto = \"null\"\n[tables.orders]\n\"*\" = \"keep\"\n";
        run(full, DUMP).unwrap();
    }

    #[test]
    fn rules_naming_what_the_dump_lacks_fail() {
        let e = run("[tables.customers]\nssn = \"null\"\n", DUMP).unwrap_err();
        assert!(e.to_string().contains("customers.ssn"), "{e}");
        let e = run("[tables.invoices]\ntotal = \"null\"\n", DUMP).unwrap_err();
        assert_eq!(
            e.to_string(),
            "masking rules name tables the dump does not create: invoices"
        );
    }

    #[test]
    fn other_ways_in_and_errors_hold_no_value() {
        let dump = format!("{DUMP}UPDATE customers SET email = 'leak@corp.example';\n");
        let e = run(RULES, &dump).unwrap_err().to_string();
        assert!(e.contains("line 16") && e.contains("UPDATE"), "{e}");
        let bad = DUMP.replace("0xCAFE)", "0xCAFE, 'zoe-extra')");
        let e = run(RULES, &bad).unwrap_err().to_string();
        assert!(e.contains("row 1 has 5 values for 4 columns"), "{e}");
        assert!(!e.contains("zoe"), "{e}");
    }

    #[test]
    fn keys_are_required_to_hash() {
        let rules = Rules::parse(RULES).unwrap();
        assert_eq!(
            Masker::new(rules.clone(), None).err(),
            Some(MaskError::NoKey)
        );
        assert_eq!(
            Masker::new(rules, Some(b"short")).err(),
            Some(MaskError::NoKey)
        );
        // Keep-only strict rules need none.
        Masker::new(Rules::parse("strict = true").unwrap(), None).unwrap();
    }

    #[test]
    fn pieces_of_any_size_give_the_same_output() {
        struct Dribble<'a>(&'a [u8], usize);
        impl Read for Dribble<'_> {
            fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
                let n = self.1.min(self.0.len()).min(b.len());
                b[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let whole = run(RULES, DUMP).unwrap();
        for piece in [1, 3, 17] {
            let masker = Masker::new(Rules::parse(RULES).unwrap(), Some(KEY)).unwrap();
            let mut r = MaskedReader::new(Dribble(DUMP.as_bytes(), piece), masker);
            let mut out = String::new();
            r.read_to_string(&mut out).unwrap();
            assert_eq!(out, whole);
        }
    }
}
