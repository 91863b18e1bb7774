//! The DDL that turns one schema into another, in an order that applies:
//! dependent objects (triggers, views, routines, events, foreign keys)
//! are dropped first and created last; foreign key checks are off while
//! tables change.

use std::collections::BTreeMap;

use super::{Database, Schema, Table};

/// Statements (no trailing `;`) that turn `before` into `after`. Empty when
/// the schemas are equal.
pub fn sql(before: &Schema, after: &Schema) -> Vec<String> {
    let empty = Database::default();
    let names: std::collections::BTreeSet<&String> = before
        .databases
        .keys()
        .chain(after.databases.keys())
        .collect();
    let mut drops = Vec::new();
    let mut fk_drops = Vec::new();
    let mut tables = Vec::new();
    let mut fk_adds = Vec::new();
    let mut creates = Vec::new();
    for db in names {
        let b = before.databases.get(db).unwrap_or(&empty);
        let a = after.databases.get(db).unwrap_or(&empty);
        let q = ident(db);
        if !before.databases.contains_key(db) {
            tables.push(format!("CREATE DATABASE IF NOT EXISTS {q}"));
        }
        // Dependent objects that go or change: dropped first.
        for (name, t) in &b.triggers {
            if a.triggers.get(name) != Some(t) {
                drops.push(format!("DROP TRIGGER IF EXISTS {q}.{}", ident(name)));
            }
        }
        for (name, v) in &b.views {
            if a.views.get(name) != Some(v) {
                drops.push(format!("DROP VIEW IF EXISTS {q}.{}", ident(name)));
            }
        }
        for (key, r) in &b.routines {
            if a.routines.get(key) != Some(r) {
                let (kind, name) = key.split_once(' ').unwrap_or(("PROCEDURE", key));
                drops.push(format!("DROP {kind} IF EXISTS {q}.{}", ident(name)));
            }
        }
        for (name, e) in &b.events {
            if a.events.get(name) != Some(e) {
                drops.push(format!("DROP EVENT IF EXISTS {q}.{}", ident(name)));
            }
        }
        // Tables.
        for (name, bt) in &b.tables {
            let qt = format!("{q}.{}", ident(name));
            match a.tables.get(name) {
                None => tables.push(format!("DROP TABLE {qt}")),
                Some(at) if at != bt => {
                    for (fk, def) in &bt.foreign_keys {
                        if at.foreign_keys.get(fk) != Some(def) {
                            fk_drops
                                .push(format!("ALTER TABLE {qt} DROP FOREIGN KEY {}", ident(fk)));
                        }
                    }
                    if let Some(alter) = alter_table(&qt, bt, at) {
                        tables.push(alter);
                    }
                    for (fk, def) in &at.foreign_keys {
                        if bt.foreign_keys.get(fk) != Some(def) {
                            fk_adds.push(format!("ALTER TABLE {qt} ADD {def}"));
                        }
                    }
                }
                Some(_) => {}
            }
        }
        for (name, at) in &a.tables {
            if !b.tables.contains_key(name) {
                tables.push(qualify_create(&at.create, "CREATE TABLE ", db));
            }
        }
        // Dependent objects that come or change: created last.
        let new_views: BTreeMap<&String, &String> = a
            .views
            .iter()
            .filter(|(n, v)| b.views.get(*n) != Some(*v))
            .collect();
        if !new_views.is_empty() || a.routines.iter().any(|(k, r)| b.routines.get(k) != Some(r)) {
            creates.push(format!("USE {q}"));
        }
        for v in view_order(&new_views) {
            creates.push(new_views[v].clone());
        }
        for (key, r) in &a.routines {
            if b.routines.get(key) != Some(r) {
                creates.push(r.clone());
            }
        }
        for (name, t) in &a.triggers {
            if b.triggers.get(name) != Some(t) {
                creates.push(format!("USE {q}"));
                creates.push(t.create.clone());
            }
        }
        for (name, e) in &a.events {
            if b.events.get(name) != Some(e) {
                creates.push(format!("USE {q}"));
                creates.push(e.clone());
            }
        }
    }
    let changes: Vec<String> = drops
        .into_iter()
        .chain(fk_drops)
        .chain(tables)
        .chain(fk_adds)
        .chain(creates)
        .collect();
    if changes.is_empty() {
        return changes;
    }
    let mut out = vec!["SET FOREIGN_KEY_CHECKS=0".to_owned()];
    out.extend(changes);
    out.push("SET FOREIGN_KEY_CHECKS=1".to_owned());
    out
}

/// One `ALTER TABLE` for the columns, indexes, checks and options of a
/// table present on both sides; `None` when only its foreign keys changed.
fn alter_table(qt: &str, b: &Table, a: &Table) -> Option<String> {
    let mut parts = Vec::new();
    for (name, def) in &b.indexes {
        if a.indexes.get(name) != Some(def) {
            parts.push(if name == "PRIMARY" {
                "DROP PRIMARY KEY".to_owned()
            } else {
                format!("DROP INDEX {}", ident(name))
            });
        }
    }
    for (name, def) in &b.checks {
        if a.checks.get(name) != Some(def) {
            parts.push(format!("DROP CONSTRAINT {}", ident(name)));
        }
    }
    let before: BTreeMap<&String, &String> = b.columns.iter().map(|(n, d)| (n, d)).collect();
    let after: BTreeMap<&String, &String> = a.columns.iter().map(|(n, d)| (n, d)).collect();
    for (name, _) in &b.columns {
        if !after.contains_key(name) {
            parts.push(format!("DROP COLUMN {}", ident(name)));
        }
    }
    let mut previous: Option<&String> = None;
    for (name, def) in &a.columns {
        let place = match previous {
            None => "FIRST".to_owned(),
            Some(p) => format!("AFTER {}", ident(p)),
        };
        match before.get(name) {
            None => parts.push(format!("ADD COLUMN {} {def} {place}", ident(name))),
            Some(old) if *old != def => {
                parts.push(format!("MODIFY COLUMN {} {def} {place}", ident(name)))
            }
            Some(_) => {}
        }
        previous = Some(name);
    }
    for (name, def) in &a.indexes {
        if b.indexes.get(name) != Some(def) {
            parts.push(format!("ADD {def}"));
        }
    }
    for (name, def) in &a.checks {
        if b.checks.get(name) != Some(def) {
            parts.push(format!("ADD {def}"));
        }
    }
    let options: Vec<String> = a
        .options
        .iter()
        .filter(|(k, v)| b.options.get(*k) != Some(*v))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if !options.is_empty() {
        parts.push(options.join(" "));
    }
    (!parts.is_empty()).then(|| format!("ALTER TABLE {qt} {}", parts.join(", ")))
}

/// Views in an order where each comes after the new views it mentions.
fn view_order<'a>(views: &BTreeMap<&'a String, &'a String>) -> Vec<&'a String> {
    let mut done: Vec<&String> = Vec::new();
    let mut left: Vec<&String> = views.keys().copied().collect();
    while !left.is_empty() {
        let before = left.len();
        left.retain(|v| {
            let needs = views.keys().any(|other| {
                other != v && !done.contains(other) && views[*v].contains(&ident(other))
            });
            if needs {
                true
            } else {
                done.push(v);
                false
            }
        });
        if left.len() == before {
            // A cycle cannot be: take the rest as they are.
            done.append(&mut left);
        }
    }
    done
}

/// `CREATE TABLE `t`` → `CREATE TABLE `db`.`t``.
fn qualify_create(create: &str, prefix: &str, db: &str) -> String {
    match create.strip_prefix(prefix) {
        Some(rest) => format!("{prefix}{}.{rest}", ident(db)),
        None => create.to_owned(),
    }
}

/// A quoted identifier.
pub(crate) fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    fn schema(create: &str) -> Schema {
        let mut db = Database::default();
        db.tables.insert("t".into(), parse::table(create));
        let mut s = Schema::default();
        s.databases.insert("shop".into(), db);
        s
    }

    #[test]
    fn an_alter_moves_columns_and_indexes() {
        let b = schema("CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `a` int(11) DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  KEY `k_a` (`a`)\n) ENGINE=InnoDB");
        let a = schema("CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `b` text,\n  PRIMARY KEY (`id`),\n  KEY `k_b` (`b`(10))\n) ENGINE=InnoDB COMMENT='x'");
        let stmts = sql(&b, &a);
        assert_eq!(
            stmts.first().map(String::as_str),
            Some("SET FOREIGN_KEY_CHECKS=0")
        );
        assert_eq!(
            stmts[1],
            "ALTER TABLE `shop`.`t` DROP INDEX `k_a`, DROP COLUMN `a`, ADD COLUMN `b` text AFTER `id`, ADD KEY `k_b` (`b`(10)), COMMENT='x'"
        );
        assert!(sql(&b, &b).is_empty());
    }

    #[test]
    fn views_come_after_the_views_they_use() {
        let mut db = Database::default();
        db.views
            .insert("a".into(), "CREATE VIEW `a` AS select * from `b`".into());
        db.views
            .insert("b".into(), "CREATE VIEW `b` AS select 1".into());
        let mut after = Schema::default();
        after.databases.insert("shop".into(), db);
        let mut before = Schema::default();
        before.databases.insert("shop".into(), Database::default());
        let stmts = sql(&before, &after);
        let b = stmts.iter().position(|s| s.contains("VIEW `b`")).unwrap();
        let a = stmts.iter().position(|s| s.contains("VIEW `a`")).unwrap();
        assert!(b < a, "{stmts:?}");
    }
}
