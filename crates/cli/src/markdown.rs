//! `dolly diff --markdown`: a schema diff as GitHub/GitLab-flavoured
//! markdown for a pull or merge request comment: a table of the changes,
//! with `--explain` how each statement ran on the full data, and the SQL
//! that replays it in a collapsed `<details>` block.

use dolly_types::v1::{SchemaChangeKind, SchemaDiff, SchemaExplain};

/// The first line of every such comment, so a workflow can find the
/// comment it made before and edit it instead of adding another.
pub fn marker(d: &SchemaDiff) -> String {
    format!("<!-- dolly-diff {}/{} -->", d.template, d.name)
}

pub fn diff(d: &SchemaDiff, explain: Option<&SchemaExplain>) -> String {
    let against = match &d.against {
        Some(s) => format!("its snapshot {}", code(s.as_str())),
        None => format!(
            "the template {} it was cloned from",
            code(d.template.as_str())
        ),
    };
    let mut out = format!("{}\n", marker(d));
    let at = code(&format!("{}/{}", d.template, d.name));
    if d.changes.is_empty() {
        out.push_str(&format!(
            "### dolly: no schema changes in {at}\n\nThe schema is the one of {against}.\n"
        ));
        return out;
    }
    let n = d.changes.len();
    out.push_str(&format!(
        "### dolly: {n} schema change{} in {at}\n\nAgainst {against}.\n\n",
        if n == 1 { "" } else { "s" }
    ));
    out.push_str("| | object | where | name | change |\n|---|---|---|---|---|\n");
    for c in &d.changes {
        let (sign, word) = match c.change {
            // Plain signs: an emoji needs a font the reader may not have.
            SchemaChangeKind::Added => ("+", "added"),
            SchemaChangeKind::Dropped => ("-", "dropped"),
            SchemaChangeKind::Modified => ("~", "modified"),
        };
        let object = serde_json::to_value(c.object)
            .ok()
            .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
            .unwrap_or_default();
        let place = match &c.table {
            Some(t) => format!("{}.{t}", c.database),
            None => c.database.clone(),
        };
        let change = match (&c.before, &c.after) {
            (Some(b), Some(a)) if b.len() + a.len() <= 160 => {
                format!("{} → {}", code(b), code(a))
            }
            _ => word.to_owned(),
        };
        out.push_str(&format!(
            "| {sign} | {object} | {} | {} | {change} |\n",
            code(&place),
            code(&c.name)
        ));
    }
    if let Some(e) = explain {
        let steps: Vec<_> = e
            .steps
            .iter()
            .filter(|s| !s.sql.starts_with("SET ") && !s.sql.starts_with("USE "))
            .collect();
        if !steps.is_empty() {
            out.push_str(
                "\n#### How each statement ran on a clone of the full data\n\n| algorithm | time | statement |\n|---|---:|---|\n",
            );
            for s in steps {
                let mut sql: String = s.sql.split_whitespace().collect::<Vec<_>>().join(" ");
                if sql.chars().count() > 120 {
                    sql = sql.chars().take(117).collect::<String>() + "...";
                }
                let algorithm = match s.algorithm.as_deref() {
                    Some("COPY") => "**COPY** (rebuilds the table)".to_owned(),
                    Some(a) => a.to_owned(),
                    None => "-".to_owned(),
                };
                out.push_str(&format!(
                    "| {algorithm} | {:.2} s | {} |\n",
                    s.seconds,
                    code(&sql)
                ));
            }
        }
    }
    let sql = crate::output::diff_sql(&d.sql);
    let statements = d
        .sql
        .iter()
        .filter(|s| !s.starts_with("SET ") && !s.starts_with("USE "))
        .count();
    let fence = "`".repeat(longest_run(&sql, '`').max(2) + 1);
    out.push_str(&format!(
        "\n<details>\n<summary>The SQL that replays it ({} statement{})</summary>\n\n{fence}sql\n{sql}{fence}\n\n</details>\n",
        statements,
        if statements == 1 { "" } else { "s" }
    ));
    out
}

/// `s` as an inline code span that survives a table cell: on one line,
/// `|` escaped, fenced with more backticks than it holds in a row.
fn code(s: &str) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let cell = one_line.replace('|', "\\|");
    let fence = "`".repeat(longest_run(&cell, '`') + 1);
    if cell.starts_with('`') || cell.ends_with('`') {
        format!("{fence} {cell} {fence}")
    } else {
        format!("{fence}{cell}{fence}")
    }
}

fn longest_run(s: &str, c: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for x in s.chars() {
        run = if x == c { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use dolly_types::v1::{ExplainStep, SchemaChange, SchemaObject};
    use dolly_types::{InstanceName, TemplateName};

    fn sample() -> SchemaDiff {
        SchemaDiff {
            template: TemplateName::parse("shop").unwrap(),
            name: InstanceName::parse("pr-7").unwrap(),
            against: None,
            changes: vec![
                SchemaChange {
                    object: SchemaObject::Column,
                    database: "default".into(),
                    table: Some("customers".into()),
                    name: "phone".into(),
                    change: SchemaChangeKind::Added,
                    before: None,
                    after: Some("varchar(30) DEFAULT NULL".into()),
                },
                SchemaChange {
                    object: SchemaObject::Column,
                    database: "default".into(),
                    table: Some("orders".into()),
                    name: "total_cents".into(),
                    change: SchemaChangeKind::Modified,
                    before: Some("int(11) NOT NULL".into()),
                    after: Some("bigint(20) NOT NULL".into()),
                },
            ],
            sql: vec![
                "ALTER TABLE `default`.`customers` ADD COLUMN `phone` varchar(30)".into(),
                "CREATE PROCEDURE p() BEGIN SELECT 1; END".into(),
            ],
        }
    }

    #[test]
    fn a_diff_is_a_table_and_the_sql_a_collapsed_block() {
        let md = diff(&sample(), None);
        assert!(
            md.starts_with(
                "<!-- dolly-diff shop/pr-7 -->\n### dolly: 2 schema changes in `shop/pr-7`"
            ),
            "{md}"
        );
        assert!(
            md.contains("| + | column | `default.customers` | `phone` | added |"),
            "{md}"
        );
        assert!(md.contains("| ~ | column | `default.orders` | `total_cents` | `int(11) NOT NULL` → `bigint(20) NOT NULL` |"), "{md}");
        assert!(md.contains("<details>\n<summary>The SQL that replays it (2 statements)</summary>\n\n```sql\nALTER TABLE `default`.`customers` ADD COLUMN `phone` varchar(30);\nDELIMITER ;;\n"), "{md}");
        assert!(md.trim_end().ends_with("```\n\n</details>"), "{md}");
        assert!(!md.contains("How each statement"));
    }

    #[test]
    fn explain_adds_the_algorithms() {
        let d = sample();
        let e = SchemaExplain {
            template: d.template.clone(),
            name: d.name.clone(),
            against: None,
            steps: vec![
                ExplainStep {
                    sql: "SET FOREIGN_KEY_CHECKS=0".into(),
                    algorithm: None,
                    seconds: 0.0,
                },
                ExplainStep {
                    sql: "ALTER TABLE `t` MODIFY `a` bigint".into(),
                    algorithm: Some("COPY".into()),
                    seconds: 1.234,
                },
            ],
        };
        let md = diff(&d, Some(&e));
        assert!(md.contains("| **COPY** (rebuilds the table) | 1.23 s | ``ALTER TABLE `t` MODIFY `a` bigint`` |"), "{md}");
        assert!(!md.contains("FOREIGN_KEY_CHECKS=0 |"), "{md}");
    }

    #[test]
    fn cells_cannot_break_the_table() {
        assert_eq!(code("a|b"), "`a\\|b`");
        assert_eq!(code("`x`"), "`` `x` ``");
        assert_eq!(code("a\n  b"), "`a b`");
        let mut d = sample();
        d.changes.clear();
        d.sql.clear();
        let md = diff(&d, None);
        assert!(md.contains("no schema changes in `shop/pr-7`"), "{md}");
        assert!(!md.contains("<details>"));
    }
}
