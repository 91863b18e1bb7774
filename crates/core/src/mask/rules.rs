//! `dumps/NAME.mask.toml`: which column gets which strategy.
//!
//! ```toml
//! strict = true                 # every column of every table needs a rule
//!
//! [tables.customers]
//! id = "keep"
//! email = "email"               # keyed hash, still an email, unique stays unique
//! phone = "digits"              # keyed hash of the digits, same length and format
//! name = { fake = "name" }      # a fake full name, the same for the same input
//! notes = "null"
//! password = { constant = "x" }
//! "*" = "keep"                  # every other column of this table
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use super::strategy::{Fake, Strategy};

/// A parsed, checked rules file.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub strict: bool,
    /// Table name (as the dump writes it, compared case-sensitively) to its
    /// columns' rules (compared case-insensitively, as MySQL does).
    pub tables: BTreeMap<String, TableRules>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TableRules {
    /// Lower-cased column name to its strategy.
    pub columns: BTreeMap<String, Strategy>,
    /// The `"*"` rule: every column not named.
    pub rest: Option<Strategy>,
}

impl TableRules {
    /// The rule for `column`, if any.
    pub fn rule(&self, column: &str) -> Option<&Strategy> {
        self.columns
            .get(&column.to_lowercase())
            .or(self.rest.as_ref())
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RulesError {
    #[error("{0}")]
    Syntax(String),
    #[error("rule {table}.{column}: {reason}")]
    Rule {
        table: String,
        column: String,
        reason: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    strict: bool,
    #[serde(default)]
    tables: BTreeMap<String, BTreeMap<String, toml::Value>>,
}

impl Rules {
    /// Parses a rules file's text.
    pub fn parse(text: &str) -> Result<Self, RulesError> {
        let file: File = toml::from_str(text).map_err(|e| RulesError::Syntax(e.to_string()))?;
        let mut tables = BTreeMap::new();
        for (table, cols) in file.tables {
            let mut t = TableRules::default();
            for (column, value) in cols {
                let strategy = strategy(&value).map_err(|reason| RulesError::Rule {
                    table: table.clone(),
                    column: column.clone(),
                    reason,
                })?;
                if column == "*" {
                    t.rest = Some(strategy);
                } else if t.columns.insert(column.to_lowercase(), strategy).is_some() {
                    return Err(RulesError::Rule {
                        table,
                        column,
                        reason: "named twice (column names are case-insensitive)".into(),
                    });
                }
            }
            tables.insert(table, t);
        }
        Ok(Rules {
            strict: file.strict,
            tables,
        })
    }

    /// No rule changes a value: the dump can stream through untouched
    /// (strict mode still checks every table).
    pub fn masks_nothing(&self) -> bool {
        self.tables.values().all(|t| {
            t.columns
                .values()
                .chain(t.rest.iter())
                .all(|s| *s == Strategy::Keep)
        })
    }
}

const STRATEGIES: &str = "\"keep\", \"null\", \"hash\", \"email\", \"digits\", \
    { constant = ... }, { fake = \"name|first_name|last_name|company|city|street|word|sentence\" }";

fn strategy(v: &toml::Value) -> Result<Strategy, String> {
    match v {
        toml::Value::String(s) => match s.as_str() {
            "keep" => Ok(Strategy::Keep),
            "null" => Ok(Strategy::Null),
            "hash" => Ok(Strategy::Hash),
            "email" => Ok(Strategy::Email),
            "digits" => Ok(Strategy::Digits),
            other => Err(format!(
                "unknown strategy \"{other}\" (one of {STRATEGIES})"
            )),
        },
        toml::Value::Table(t) if t.len() == 1 => {
            let (k, v) = t.iter().next().ok_or("an empty table")?;
            match (k.as_str(), v) {
                ("constant", toml::Value::String(s)) => Ok(Strategy::Constant(s.clone())),
                ("constant", toml::Value::Integer(i)) => Ok(Strategy::Constant(i.to_string())),
                ("constant", toml::Value::Float(f)) => Ok(Strategy::Constant(f.to_string())),
                ("constant", toml::Value::Boolean(b)) => {
                    Ok(Strategy::Constant(if *b { "1" } else { "0" }.to_owned()))
                }
                ("fake", toml::Value::String(kind)) => Fake::parse(kind)
                    .map(Strategy::Fake)
                    .ok_or_else(|| format!("unknown fake \"{kind}\" (one of {STRATEGIES})")),
                _ => Err(format!("not a strategy (one of {STRATEGIES})")),
            }
        }
        _ => Err(format!("not a strategy (one of {STRATEGIES})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_example_parses() {
        let r = Rules::parse(
            r#"
            strict = true
            [tables.customers]
            id = "keep"
            Email = "email"
            phone = "digits"
            name = { fake = "name" }
            notes = "null"
            password = { constant = "x" }
            age = { constant = 42 }
            "*" = "keep"
            "#,
        )
        .unwrap();
        assert!(r.strict);
        let c = &r.tables["customers"];
        assert_eq!(c.rule("EMAIL"), Some(&Strategy::Email));
        assert_eq!(c.rule("age"), Some(&Strategy::Constant("42".into())));
        assert_eq!(c.rule("name"), Some(&Strategy::Fake(Fake::Name)));
        assert_eq!(c.rule("other"), Some(&Strategy::Keep));
        assert!(!r.masks_nothing());
    }

    #[test]
    fn mistakes_are_named() {
        let e = Rules::parse("[tables.t]\nemail = \"mask\"\n").unwrap_err();
        assert!(e
            .to_string()
            .starts_with("rule t.email: unknown strategy \"mask\""));
        let e = Rules::parse("[tables.t]\nname = { fake = \"dog\" }\n").unwrap_err();
        assert!(e.to_string().contains("unknown fake \"dog\""), "{e}");
        let e = Rules::parse("[tables.t]\na = \"keep\"\nA = \"null\"\n").unwrap_err();
        assert!(e.to_string().contains("named twice"), "{e}");
        assert!(matches!(
            Rules::parse("strikt = true\n"),
            Err(RulesError::Syntax(_))
        ));
        assert!(Rules::parse("[tables.t]\na = 3\n").is_err());
    }

    #[test]
    fn keep_only_masks_nothing() {
        let r = Rules::parse("strict = true\n[tables.t]\n\"*\" = \"keep\"\n").unwrap();
        assert!(r.masks_nothing());
        assert!(Rules::parse("").unwrap().masks_nothing());
    }
}
