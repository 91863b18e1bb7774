//! Human output: aligned tables and key/value blocks that fit in an
//! 80-column terminal. Every renderer takes `now` so tests can pin it.

use chrono::{DateTime, Utc};
use dolly_types::v1::{
    DiskUsage, Instance, InstanceState, InstanceSummary, SchemaChangeKind, SchemaDiff,
    SchemaExplain, SchemaObject, Snapshot, Template, TemplatePool,
};

use dolly_types::human as humanize;

/// Columns separated by two spaces, each as wide as its widest cell; the
/// last column is not padded, so no line ends in spaces.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths.get(i).copied().unwrap_or(0) - cell.chars().count();
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `key  value` lines with the values aligned.
pub fn block(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    pairs
        .iter()
        .map(|(k, v)| format!("{k:<width$}  {v}\n"))
        .collect()
}

pub fn state(s: InstanceState) -> &'static str {
    match s {
        InstanceState::Running => "running",
        InstanceState::Stopped => "stopped",
        InstanceState::Restarting => "restarting",
        InstanceState::Dead => "dead",
        InstanceState::Missing => "missing",
        InstanceState::Broken => "broken",
        InstanceState::Sleeping => "sleeping",
    }
}

fn expires(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match t {
        Some(at) => format!(
            "{} ({})",
            humanize::expiry(Some(at), now),
            humanize::timestamp(at)
        ),
        None => humanize::expiry(None, now),
    }
}

fn port(p: u16) -> String {
    if p == 0 {
        "-".to_owned()
    } else {
        p.to_string()
    }
}

/// What `new` prints: how to connect, and until when.
pub fn created(i: &Instance, now: DateTime<Utc>) -> String {
    block(&[
        ("template", i.template.to_string()),
        ("name", i.name.to_string()),
        ("host", i.host.clone()),
        ("port", port(i.port)),
        ("user", i.user.clone()),
        ("password", i.password.clone()),
        ("database", i.database.clone()),
        ("expires", expires(i.expires_at, now)),
    ])
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

/// What `show` prints: the same, plus state, creation, version and
/// protection.
pub fn instance(i: &Instance, now: DateTime<Utc>) -> String {
    let state = match &i.problem {
        // Broken: why, and what repairs it.
        Some(p) => format!(
            "{} ({p}; `dolly reset` or `dolly start` repairs it)",
            state(i.state)
        ),
        None => state(i.state).to_owned(),
    };
    block(&[
        ("template", i.template.to_string()),
        ("name", i.name.to_string()),
        ("state", state),
        ("version", i.template_version.to_string()),
        ("host", i.host.clone()),
        ("port", port(i.port)),
        ("user", i.user.clone()),
        ("password", i.password.clone()),
        ("database", i.database.clone()),
        (
            "created",
            format!(
                "{} ({})",
                humanize::ago(i.created_at, now),
                humanize::timestamp(i.created_at)
            ),
        ),
        ("expires", expires(i.expires_at, now)),
        ("protected", yes_no(i.protected)),
    ])
}

/// What `extend` prints.
pub fn extended(i: &Instance, now: DateTime<Utc>) -> String {
    format!(
        "{}/{} expires {}\n",
        i.template,
        i.name,
        expires(i.expires_at, now)
    )
}

/// What `snapshot` prints.
pub fn snapshot_taken(t: &str, n: &str, s: &Snapshot) -> String {
    format!(
        "saved {t}/{n}@{} ({}, the server paused {})\n",
        s.name,
        humanize::bytes(s.size_bytes),
        humanize::seconds(s.pause_seconds)
    )
}

/// `snapshots`: one snapshot a line, oldest first.
pub fn snapshots(list: &[Snapshot], now: DateTime<Utc>) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            vec![
                s.name.to_string(),
                humanize::ago(s.created_at, now),
                humanize::bytes(s.size_bytes),
                s.message
                    .as_deref()
                    .and_then(|m| m.lines().next())
                    .unwrap_or("")
                    .to_owned(),
            ]
        })
        .collect();
    table(&["NAME", "CREATED", "SIZE", "MESSAGE"], &rows)
}

/// `df`: every template version, instance and snapshot with its apparent
/// size, then the filesystem's free space.
pub fn disk_usage(d: &DiskUsage) -> String {
    let rows: Vec<Vec<String>> = d
        .entries
        .iter()
        .map(|e| {
            vec![
                e.kind.clone(),
                e.name.clone(),
                humanize::bytes(e.apparent_bytes),
            ]
        })
        .collect();
    let mut out = table(&["KIND", "NAME", "APPARENT SIZE"], &rows);
    let total: u64 = d.entries.iter().map(|e| e.apparent_bytes).sum();
    out.push_str(&format!(
        "\napparent total {} (blocks shared by clones count in each owner)\n\
         filesystem     {} free of {}\n",
        humanize::bytes(total),
        humanize::bytes(d.filesystem_free_bytes),
        humanize::bytes(d.filesystem_total_bytes)
    ));
    out
}

/// `pool`: the template's warm pool; `set` when the size was just set.
pub fn pool(t: &dolly_types::TemplateName, p: &TemplatePool, set: bool) -> String {
    let mut out = block(&[
        ("template", t.to_string()),
        ("size", p.size.to_string()),
        ("ready", p.ready.to_string()),
    ]);
    if set && p.ready < p.size {
        out.push_str(&format!(
            "\nfilling in the background; watch it with: dolly pool {t}\n"
        ));
    } else if p.size == 0 {
        out.push_str(&format!(
            "\nno pool: creates start a server; keep some ready with: dolly pool {t} N\n"
        ));
    }
    out
}

/// `diff`: the changes, one a line, grouped by database.
pub fn diff(d: &SchemaDiff) -> String {
    let against = match &d.against {
        Some(s) => format!("its snapshot {s}"),
        None => "its template version".to_owned(),
    };
    if d.changes.is_empty() {
        return format!(
            "{}/{}: no schema changes against {against}\n",
            d.template, d.name
        );
    }
    let mut out = format!(
        "{}/{}: {} schema change(s) against {against}\n",
        d.template,
        d.name,
        d.changes.len()
    );
    for c in &d.changes {
        let sign = match c.change {
            SchemaChangeKind::Added => "+",
            SchemaChangeKind::Dropped => "-",
            SchemaChangeKind::Modified => "~",
        };
        let object = serde_json::to_value(c.object)
            .ok()
            .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
            .unwrap_or_default();
        let place = match &c.table {
            Some(t) => format!("{}.{t}", c.database),
            None => c.database.clone(),
        };
        out.push_str(&format!("  {sign} {object} {place}: {}", c.name));
        if let (Some(b), Some(a)) = (&c.before, &c.after) {
            if c.object == SchemaObject::Column || c.object == SchemaObject::TableOption {
                out.push_str(&format!(" ({b} -> {a})"));
            }
        }
        out.push('\n');
    }
    out.push_str("\nthe SQL that replays it: dolly diff --sql ...; how each ALTER runs on the full data: --explain\n");
    out
}

/// `diff --sql`: statements that apply with the `mysql`/`mariadb` client;
/// compound statements (routines, triggers, events) inside `DELIMITER ;;`.
pub fn diff_sql(statements: &[String]) -> String {
    let mut out = String::new();
    for s in statements {
        let compound = s.contains(';');
        if compound {
            out.push_str(&format!("DELIMITER ;;\n{s};;\nDELIMITER ;\n"));
        } else {
            out.push_str(&format!("{s};\n"));
        }
    }
    out
}

/// `diff --explain`: each statement, its algorithm and its time.
pub fn explain(e: &SchemaExplain) -> String {
    let rows: Vec<Vec<String>> = e
        .steps
        .iter()
        .filter(|s| !s.sql.starts_with("SET ") && !s.sql.starts_with("USE "))
        .map(|s| {
            let mut sql = s.sql.replace('\n', " ");
            if sql.chars().count() > 90 {
                sql = sql.chars().take(87).collect::<String>() + "...";
            }
            vec![
                s.algorithm.clone().unwrap_or_else(|| "-".to_owned()),
                format!("{:.2}s", s.seconds),
                sql,
            ]
        })
        .collect();
    if rows.is_empty() {
        return format!("{}/{}: nothing to rehearse\n", e.template, e.name);
    }
    table(&["ALGORITHM", "TIME", "STATEMENT"], &rows)
}

/// `ls`: one instance a line; an OWNER column when any has an owner (an
/// admin's view of a server with users).
pub fn instances(list: &[InstanceSummary], now: DateTime<Utc>) -> String {
    let owners = list.iter().any(|i| i.owner.is_some());
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|i| {
            let mut row = vec![
                i.template.to_string(),
                i.name.to_string(),
                state(i.state).to_owned(),
                i.port.map_or_else(|| "-".to_owned(), |p| p.to_string()),
                humanize::ago(i.created_at, now),
                humanize::expiry(i.expires_at, now),
            ];
            if owners {
                row.push(i.owner.clone().unwrap_or_else(|| "-".to_owned()));
            }
            row
        })
        .collect();
    let mut headers = vec!["TEMPLATE", "NAME", "STATE", "PORT", "CREATED", "EXPIRES"];
    if owners {
        headers.push("OWNER");
    }
    table(&headers, &rows)
}

fn template_status(t: &Template) -> String {
    if t.importing {
        match &t.progress {
            // importing: load 42.0% 9.8 MB/s 1m 10s left
            Some(p) => format!(
                "importing: {} {:.1}% {:.1} MB/s{}",
                p.phase,
                p.percent,
                p.mb_per_s,
                p.eta_seconds.map_or_else(String::new, |s| format!(
                    " {} left",
                    humantime::format_duration(std::time::Duration::from_secs(s))
                ))
            ),
            None => "importing".to_owned(),
        }
    } else if t.last_import.as_ref().is_some_and(|l| !l.ok) {
        "failed".to_owned()
    } else if t.current_version.is_none() {
        "no version".to_owned()
    } else {
        "ok".to_owned()
    }
}

/// How a version was masked, in words: "rules shop.mask.toml (sha256
/// 1a2b3c4d5e6f, strict), post scripts cleaned up".
pub fn masking_note(m: &dolly_types::v1::Masking) -> String {
    let mut parts = Vec::new();
    if let Some(file) = &m.rules_file {
        let sha = m.rules_sha256.as_deref().unwrap_or("");
        parts.push(format!(
            "rules {} (sha256 {}, {})",
            file_name(file),
            &sha[..sha.len().min(12)],
            if m.strict { "strict" } else { "not strict" }
        ));
    }
    if m.post_script_cleanup {
        parts.push("post scripts, traces removed".to_owned());
    }
    parts.join(", ")
}

/// `templates`: one template a line, then why the failed imports failed.
pub fn templates(list: &[Template], now: DateTime<Utc>) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|t| {
            let current = t.versions.iter().find(|v| v.current).or(t.versions.first());
            let imported = t
                .last_import
                .as_ref()
                .map(|l| l.finished_at)
                .or(current.map(|v| v.created_at));
            vec![
                t.name.to_string(),
                t.current_version
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), |v| v.to_string()),
                t.versions.len().to_string(),
                current.map_or_else(|| "-".to_owned(), |v| humanize::bytes(v.size_bytes)),
                imported.map_or_else(|| "-".to_owned(), |at| humanize::ago(at, now)),
                template_status(t),
            ]
        })
        .collect();
    let mut out = table(
        &["NAME", "VERSION", "VERSIONS", "SIZE", "IMPORTED", "STATUS"],
        &rows,
    );
    for t in list {
        let current = t.versions.iter().find(|v| v.current);
        if let Some(m) = current.and_then(|v| v.masking.as_ref()) {
            out.push_str(&format!("{}: masked by {}\n", t.name, masking_note(m)));
        }
    }
    for note in list.iter().filter_map(|t| failure_note(t, now)) {
        out.push('\n');
        out.push_str(&note);
    }
    out
}

/// A path's last part: dumps live in dollyd's dumps folder anyway.
fn file_name(path: &str) -> String {
    std::path::Path::new(path)
        .file_name()
        .map_or_else(|| path.to_owned(), |f| f.to_string_lossy().into_owned())
}

/// Why a template's last import failed, on one line.
fn failure_note(t: &Template, now: DateTime<Utc>) -> Option<String> {
    let l = t.last_import.as_ref().filter(|l| !l.ok)?;
    let message = l.message.lines().next().unwrap_or("").trim();
    Some(format!(
        "{}: the last import ({}, {}) failed: {message}\n",
        t.name,
        file_name(&l.dump),
        humanize::ago(l.finished_at, now)
    ))
}

/// `templates NAME`: the template's versions, then its import's state.
pub fn template_detail(t: &Template, now: DateTime<Utc>) -> String {
    let rows: Vec<Vec<String>> = t
        .versions
        .iter()
        .map(|v| {
            vec![
                v.version.to_string(),
                if v.current { "*" } else { "" }.to_owned(),
                humanize::bytes(v.size_bytes),
                humanize::ago(v.created_at, now),
                humanize::seconds(v.import_seconds),
                file_name(&v.source_dump),
            ]
        })
        .collect();
    let mut out = if rows.is_empty() {
        format!("template '{}' has no version yet\n", t.name)
    } else {
        table(
            &["VERSION", "CURRENT", "SIZE", "CREATED", "IMPORT", "DUMP"],
            &rows,
        )
    };
    let masked: Vec<String> = t
        .versions
        .iter()
        .filter_map(|v| {
            Some(format!(
                "{}: masked by {}\n",
                v.version,
                masking_note(v.masking.as_ref()?)
            ))
        })
        .collect();
    if !masked.is_empty() {
        out.push('\n');
        out.push_str(&masked.concat());
    }
    if t.importing {
        out.push_str(&format!("\n{}: an import is running now\n", t.name));
    }
    if let Some(note) = failure_note(t, now) {
        out.push('\n');
        out.push_str(&note);
    }
    out
}

/// `--json`: the API's JSON, pretty, one trailing newline.
pub fn json(value: &serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0)
            .single()
            .expect("time")
    }

    /// Fixtures go through serde, as the API's answers do, so fields added
    /// to the wire types later (with serde defaults) do not break them.
    fn sample() -> Instance {
        serde_json::from_value(serde_json::json!({
            "template": "shop",
            "name": "ci-1",
            "template_version": "20270115t075000z",
            "host": "127.0.0.1",
            "port": 32768,
            "user": "root",
            "password": "pw",
            "database": "shop",
            "state": "running",
            "created_at": at(-180),
            "expires_at": at(7200),
        }))
        .expect("an Instance")
    }

    #[test]
    fn tables_align_and_do_not_trail_spaces() {
        let t = table(
            &["A", "LONGER", "C"],
            &[
                vec!["xx".into(), "y".into(), "z".into()],
                vec!["x".into(), "".into(), "".into()],
            ],
        );
        assert_eq!(t, "A   LONGER  C\nxx  y       z\nx\n");
    }

    #[test]
    fn new_prints_connection_and_expiry() {
        let text = created(&sample(), at(0));
        assert_eq!(
            text,
            "template  shop\n\
             name      ci-1\n\
             host      127.0.0.1\n\
             port      32768\n\
             user      root\n\
             password  pw\n\
             database  shop\n\
             expires   in 2h (2027-01-15 10:00 UTC)\n"
        );
    }

    #[test]
    fn show_adds_state_version_and_creation() {
        let text = instance(&sample(), at(0));
        assert!(text.contains("state      running\n"), "{text}");
        assert!(text.contains("version    20270115t075000z\n"), "{text}");
        assert!(
            text.contains("created    3 minutes ago (2027-01-15 07:57 UTC)\n"),
            "{text}"
        );
        assert!(text.contains("protected  no\n"), "{text}");
        assert!(text.lines().all(|l| l.len() <= 80), "{text}");
    }

    #[test]
    fn a_broken_instance_says_why_and_what_repairs_it() {
        let mut i = sample();
        i.state = InstanceState::Broken;
        i.problem = Some("its server exited before it answered".into());
        let text = instance(&i, at(0));
        assert!(
            text.contains("state      broken (its server exited before it answered; `dolly reset` or `dolly start` repairs it)"),
            "{text}"
        );
    }

    #[test]
    fn snapshots_and_df_are_tables() {
        let s: Snapshot = serde_json::from_value(serde_json::json!({
            "name": "before",
            "created_at": at(-120),
            "message": "before the migration\nsecond line",
            "size_bytes": 2048,
            "template_version": "20270115t075000z",
            "pause_seconds": 1.25,
        }))
        .expect("a Snapshot");
        assert_eq!(
            snapshots(std::slice::from_ref(&s), at(0)),
            "NAME    CREATED        SIZE     MESSAGE\n\
             before  2 minutes ago  2.0 KiB  before the migration\n"
        );
        assert_eq!(
            snapshot_taken("shop", "alice", &s),
            "saved shop/alice@before (2.0 KiB, the server paused 1.2s)\n"
        );
        let d: DiskUsage = serde_json::from_value(serde_json::json!({
            "entries": [
                {"kind": "template", "name": "shop@20270115t075000z", "apparent_bytes": 1024},
                {"kind": "snapshot", "name": "shop/alice@before", "apparent_bytes": 2048},
            ],
            "filesystem_free_bytes": 1024 * 1024,
            "filesystem_total_bytes": 2 * 1024 * 1024,
        }))
        .expect("a DiskUsage");
        assert_eq!(
            disk_usage(&d),
            "KIND      NAME                   APPARENT SIZE\n\
             template  shop@20270115t075000z  1.0 KiB\n\
             snapshot  shop/alice@before      2.0 KiB\n\
             \n\
             apparent total 3.0 KiB (blocks shared by clones count in each owner)\n\
             filesystem     1.0 MiB free of 2.0 MiB\n"
        );
    }

    #[test]
    fn pool_prints_size_and_ready() {
        let t = dolly_types::TemplateName::parse("shop").expect("name");
        let p: TemplatePool =
            serde_json::from_value(serde_json::json!({"size": 4, "ready": 4})).expect("a pool");
        assert_eq!(
            pool(&t, &p, false),
            "template  shop\nsize      4\nready     4\n"
        );
        let filling = TemplatePool { size: 4, ready: 1 };
        assert_eq!(
            pool(&t, &filling, true),
            "template  shop\nsize      4\nready     1\n\n\
             filling in the background; watch it with: dolly pool shop\n"
        );
        let off: TemplatePool =
            serde_json::from_value(serde_json::json!({"size": 0})).expect("a pool");
        let text = pool(&t, &off, false);
        assert!(
            text.starts_with("template  shop\nsize      0\nready     0\n"),
            "{text}"
        );
        assert!(text.contains("dolly pool shop N"), "{text}");
        assert!(text.lines().all(|l| l.len() <= 80), "{text}");
    }

    #[test]
    fn ls_fits_in_80_columns() {
        let summary: InstanceSummary = serde_json::from_value(serde_json::json!({
            "template": "shop",
            "name": "ci-1",
            "template_version": "20270115t075000z",
            "port": null,
            "state": "missing",
            "created_at": at(-180),
            "expires_at": null,
        }))
        .expect("an InstanceSummary");
        let text = instances(&[summary], at(0));
        assert_eq!(
            text,
            "TEMPLATE  NAME  STATE    PORT  CREATED        EXPIRES\n\
             shop      ci-1  missing  -     3 minutes ago  never\n"
        );
    }

    #[test]
    fn templates_show_version_size_import_and_failures() {
        let t: Template = serde_json::from_value(serde_json::json!({
            "name": "shop",
            "current_version": "20270115t075000z",
            "versions": [{
                "version": "20270115t075000z",
                "current": true,
                "created_at": at(-3600),
                "size_bytes": 12_900_000,
                "source_dump": "/var/lib/dolly/dumps/shop.sql",
                "database": "shop",
                "import_seconds": 4.2,
                "dump_bytes": 1000,
            }],
            "importing": false,
            "last_import": {
                "ok": false,
                "finished_at": at(-60),
                "dump": "/var/lib/dolly/dumps/shop.sql",
                "message": "syntax error at line 3\nmore",
                "version": null,
            },
        }))
        .expect("a Template");
        let text = templates(std::slice::from_ref(&t), at(0));
        assert_eq!(
            text,
            "NAME  VERSION           VERSIONS  SIZE      IMPORTED      STATUS\n\
             shop  20270115t075000z  1         12.3 MiB  1 minute ago  failed\n\
             \n\
             shop: the last import (shop.sql, 1 minute ago) failed: syntax error at line 3\n"
        );
        let versions = template_detail(&t, at(0));
        assert!(versions.contains("20270115t075000z  *"), "{versions}");
        assert!(versions.contains("4.2s    shop.sql\n"), "{versions}");
        assert!(
            versions.ends_with("failed: syntax error at line 3\n"),
            "{versions}"
        );
        let empty = Template {
            versions: Vec::new(),
            current_version: None,
            ..t
        };
        assert_eq!(
            template_detail(&empty, at(0)),
            "template 'shop' has no version yet\n\n\
             shop: the last import (shop.sql, 1 minute ago) failed: syntax error at line 3\n"
        );
    }

    #[test]
    fn diff_sql_wraps_compound_statements_in_delimiters() {
        let out = diff_sql(&[
            "SET FOREIGN_KEY_CHECKS=0".to_owned(),
            "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END".to_owned(),
        ]);
        assert_eq!(
            out,
            "SET FOREIGN_KEY_CHECKS=0;\nDELIMITER ;;\nCREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END;;\nDELIMITER ;\n"
        );
    }

    #[test]
    fn masking_in_words() {
        let m = dolly_types::v1::Masking {
            rules_file: Some("/data/dumps/shop.mask.toml".into()),
            rules_sha256: Some("0123456789abcdef0123".into()),
            strict: true,
            post_script_cleanup: true,
        };
        assert_eq!(
            masking_note(&m),
            "rules shop.mask.toml (sha256 0123456789ab, strict), post scripts, traces removed"
        );
    }
}
