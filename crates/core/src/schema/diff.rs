//! What changed between two schemas.

use std::collections::BTreeMap;

/// What kind of schema object a change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ObjectKind {
    Table,
    Column,
    Index,
    ForeignKey,
    TableOption,
    View,
    Trigger,
    Routine,
    Event,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    Added,
    Dropped,
    Modified,
}

/// One difference between two schemas; `before`/`after` are the object's
/// definitions (`SHOW CREATE` text or a column's definition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub object: ObjectKind,
    pub database: String,
    pub table: Option<String>,
    pub name: String,
    pub change: ChangeKind,
    pub before: Option<String>,
    pub after: Option<String>,
}

use super::{Database, Schema, Table};

/// An object kind and its definitions on each side, by name.
type Pair<'a> = (
    ObjectKind,
    &'a BTreeMap<String, String>,
    &'a BTreeMap<String, String>,
);

/// The changes that turn `before` into `after`; none when equal.
pub fn diff(before: &Schema, after: &Schema) -> Vec<Change> {
    let empty = Database::default();
    let mut out = Vec::new();
    let names: std::collections::BTreeSet<&String> = before
        .databases
        .keys()
        .chain(after.databases.keys())
        .collect();
    for db in names {
        let b = before.databases.get(db).unwrap_or(&empty);
        let a = after.databases.get(db).unwrap_or(&empty);
        database(db, b, a, &mut out);
    }
    out
}

fn database(db: &str, b: &Database, a: &Database, out: &mut Vec<Change>) {
    let change = |object,
                  table: Option<&str>,
                  name: &str,
                  change,
                  before: Option<&String>,
                  after: Option<&String>| Change {
        object,
        database: db.to_owned(),
        table: table.map(str::to_owned),
        name: name.to_owned(),
        change,
        before: before.cloned(),
        after: after.cloned(),
    };
    // Tables: whole when added or dropped, in parts when both exist.
    for (name, kind, bt, at) in pairs(&b.tables, &a.tables) {
        match (bt, at) {
            (Some(bt), Some(at)) => {
                if bt != at {
                    table(db, name, bt, at, out);
                }
            }
            _ => out.push(change(
                ObjectKind::Table,
                None,
                name,
                kind,
                bt.map(|t| &t.create),
                at.map(|t| &t.create),
            )),
        }
    }
    let simple: [Pair<'_>; 3] = [
        (ObjectKind::View, &b.views, &a.views),
        (ObjectKind::Routine, &b.routines, &a.routines),
        (ObjectKind::Event, &b.events, &a.events),
    ];
    for (object, bm, am) in simple {
        for (name, kind, bv, av) in pairs(bm, am) {
            if kind != ChangeKind::Modified || bv != av {
                out.push(change(object, None, name, kind, bv, av));
            }
        }
    }
    for (name, kind, bv, av) in pairs(&b.triggers, &a.triggers) {
        if kind != ChangeKind::Modified || bv != av {
            let table = av.or(bv).map(|t| t.table.as_str());
            out.push(change(
                ObjectKind::Trigger,
                table,
                name,
                kind,
                bv.map(|t| &t.create),
                av.map(|t| &t.create),
            ));
        }
    }
}

fn table(db: &str, name: &str, b: &Table, a: &Table, out: &mut Vec<Change>) {
    let mut push = |object, item: &str, kind, before: Option<&String>, after: Option<&String>| {
        out.push(Change {
            object,
            database: db.to_owned(),
            table: Some(name.to_owned()),
            name: item.to_owned(),
            change: kind,
            before: before.cloned(),
            after: after.cloned(),
        })
    };
    let bc: BTreeMap<String, String> = b.columns.iter().cloned().collect();
    let ac: BTreeMap<String, String> = a.columns.iter().cloned().collect();
    for (col, kind, bv, av) in pairs(&bc, &ac) {
        if kind != ChangeKind::Modified || bv != av {
            push(ObjectKind::Column, col, kind, bv, av);
        }
    }
    // An index or a key whose definition changed was dropped and added.
    for (object, bm, am) in [
        (ObjectKind::Index, &b.indexes, &a.indexes),
        (ObjectKind::ForeignKey, &b.foreign_keys, &a.foreign_keys),
    ] {
        for (item, kind, bv, av) in pairs(bm, am) {
            match kind {
                ChangeKind::Modified if bv != av => {
                    push(object, item, ChangeKind::Dropped, bv, None);
                    push(object, item, ChangeKind::Added, None, av);
                }
                ChangeKind::Modified => {}
                _ => push(object, item, kind, bv, av),
            }
        }
    }
    let bo: BTreeMap<String, String> = b
        .options
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .chain(
            b.checks
                .iter()
                .map(|(k, v)| (format!("CHECK {k}"), v.clone())),
        )
        .collect();
    let ao: BTreeMap<String, String> = a
        .options
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .chain(
            a.checks
                .iter()
                .map(|(k, v)| (format!("CHECK {k}"), v.clone())),
        )
        .collect();
    for (opt, kind, bv, av) in pairs(&bo, &ao) {
        if kind != ChangeKind::Modified || bv != av {
            push(ObjectKind::TableOption, opt, kind, bv, av);
        }
    }
}

/// Every key of either map: added, dropped, or present in both.
fn pairs<'a, V>(
    b: &'a BTreeMap<String, V>,
    a: &'a BTreeMap<String, V>,
) -> Vec<(&'a str, ChangeKind, Option<&'a V>, Option<&'a V>)> {
    let keys: std::collections::BTreeSet<&String> = b.keys().chain(a.keys()).collect();
    keys.into_iter()
        .map(|k| {
            let (bv, av) = (b.get(k), a.get(k));
            let kind = match (bv, av) {
                (None, _) => ChangeKind::Added,
                (_, None) => ChangeKind::Dropped,
                _ => ChangeKind::Modified,
            };
            (k.as_str(), kind, bv, av)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    fn schema(tables: &[(&str, &str)]) -> Schema {
        let mut db = Database::default();
        for (name, create) in tables {
            db.tables.insert(name.to_string(), parse::table(create));
        }
        let mut s = Schema::default();
        s.databases.insert("shop".into(), db);
        s
    }

    const T: &str = "CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `a` int(11) DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  KEY `k_a` (`a`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

    #[test]
    fn equal_schemas_have_no_changes() {
        assert!(diff(&schema(&[("t", T)]), &schema(&[("t", T)])).is_empty());
    }

    #[test]
    fn columns_indexes_and_options_are_found() {
        let after = "CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `a` bigint(20) DEFAULT NULL,\n  `b` text,\n  PRIMARY KEY (`id`),\n  KEY `k_b` (`b`(10))\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='x'";
        let changes = diff(&schema(&[("t", T)]), &schema(&[("t", after)]));
        let seen: Vec<(ObjectKind, &str, ChangeKind)> = changes
            .iter()
            .map(|c| (c.object, c.name.as_str(), c.change))
            .collect();
        assert_eq!(
            seen,
            vec![
                (ObjectKind::Column, "a", ChangeKind::Modified),
                (ObjectKind::Column, "b", ChangeKind::Added),
                (ObjectKind::Index, "k_a", ChangeKind::Dropped),
                (ObjectKind::Index, "k_b", ChangeKind::Added),
                (ObjectKind::TableOption, "COMMENT", ChangeKind::Added),
            ]
        );
        assert!(changes.iter().all(|c| c.table.as_deref() == Some("t")));
    }

    #[test]
    fn whole_tables_added_and_dropped() {
        let changes = diff(
            &schema(&[("t", T)]),
            &schema(&[("u", &T.replace("`t`", "`u`"))]),
        );
        let seen: Vec<(&str, ChangeKind)> = changes
            .iter()
            .map(|c| (c.name.as_str(), c.change))
            .collect();
        assert_eq!(
            seen,
            vec![("t", ChangeKind::Dropped), ("u", ChangeKind::Added)]
        );
        assert!(changes[0].before.is_some() && changes[1].after.is_some());
    }
}
