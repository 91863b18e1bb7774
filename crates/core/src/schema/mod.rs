//! A database server's schema as dolly compares it: per database, tables
//! (columns, indexes, foreign keys, options), views, triggers, routines and
//! events, each as the server's own `SHOW CREATE` text, normalised.
//!
//! [`capture`] reads it from a running server; [`diff`] lists what changed
//! between two captures; [`sql`] writes the DDL that turns one into the
//! other. Captures of template versions and snapshots are cached in the
//! store, so each is read once.

mod capture;
mod diff;
mod parse;
mod sql;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use capture::capture;
pub use diff::{diff, Change, ChangeKind, ObjectKind};
pub use sql::sql;

/// Every user database of a server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    pub databases: BTreeMap<String, Database>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Database {
    pub tables: BTreeMap<String, Table>,
    /// View name → `CREATE VIEW` (definer removed).
    pub views: BTreeMap<String, String>,
    /// Trigger name → its table and `CREATE TRIGGER` (definer removed).
    pub triggers: BTreeMap<String, Trigger>,
    /// `PROCEDURE name` / `FUNCTION name` → `CREATE ...` (definer removed).
    pub routines: BTreeMap<String, String>,
    /// Event name → `CREATE EVENT` (definer removed).
    pub events: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    pub table: String,
    pub create: String,
}

/// A table, from its `SHOW CREATE TABLE`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    /// Columns in order: name and definition (after the name).
    pub columns: Vec<(String, String)>,
    /// Index name (`PRIMARY` for the primary key) → its definition line.
    pub indexes: BTreeMap<String, String>,
    /// Constraint name → `CONSTRAINT ... FOREIGN KEY ...` line.
    pub foreign_keys: BTreeMap<String, String>,
    /// Constraint name → `CONSTRAINT ... CHECK ...` line.
    pub checks: BTreeMap<String, String>,
    /// `ENGINE`, `DEFAULT CHARSET`, `COLLATE`, `COMMENT`, `ROW_FORMAT`, ...
    /// (`AUTO_INCREMENT` counters are dropped: noise).
    pub options: BTreeMap<String, String>,
    /// The whole `SHOW CREATE TABLE`, normalised.
    pub create: String,
}

/// `DEFINER=`user`@`host` ` removed: a clone's objects have the same
/// definer, and the DDL replays as whoever runs it.
pub(crate) fn strip_definer(sql: &str) -> String {
    let Some(start) = sql.find("DEFINER=") else {
        return sql.to_owned();
    };
    let rest = &sql[start + "DEFINER=".len()..];
    // `user`@`host` or 'user'@'host' or user@host, then a space.
    let end = rest.find(' ').unwrap_or(rest.len());
    let mut out = sql[..start].to_owned();
    out.push_str(rest[end..].trim_start());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definers_are_stripped() {
        assert_eq!(
            strip_definer("CREATE DEFINER=`root`@`localhost` TRIGGER t BEFORE INSERT"),
            "CREATE TRIGGER t BEFORE INSERT"
        );
        assert_eq!(
            strip_definer("CREATE ALGORITHM=UNDEFINED DEFINER=`a`@`%` SQL SECURITY DEFINER VIEW `v` AS select 1"),
            "CREATE ALGORITHM=UNDEFINED SQL SECURITY DEFINER VIEW `v` AS select 1"
        );
        assert_eq!(
            strip_definer("CREATE TABLE t (a int)"),
            "CREATE TABLE t (a int)"
        );
    }
}
