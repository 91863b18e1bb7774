//! What a server holds, object by object, to compare a dolly template with
//! a plain load (the corpus and big-table tests).

use std::collections::BTreeMap;
use std::sync::Arc;

use dolly_core::dbserver::ImageInfo;
use dolly_engine::Engine;

use super::server::SYSTEM;

/// Every object a server holds outside the system schemas, each with the
/// server's own text of it, read by the client in `container`.
pub async fn state(
    engine: &Arc<dyn Engine>,
    image: &ImageInfo,
    container: &str,
    auth: &[&str],
) -> BTreeMap<String, String> {
    let run = |sql: String| {
        let mut args: Vec<&str> = auth.to_vec();
        args.extend(["-N", "-B", "-e"]);
        let cmd = image.client_command(&args);
        async move {
            let mut cmd = cmd;
            cmd.push(sql.clone());
            let out = engine.exec(container, cmd, None, None).await.unwrap();
            assert_eq!(out.exit_code, 0, "{sql}: {}", out.stderr);
            out.stdout
        }
    };
    let catalog = run(format!(
        "SELECT 'schema', schema_name, '', '' FROM information_schema.schemata WHERE schema_name NOT IN {SYSTEM};
         SELECT 'table', table_schema, table_name, table_type FROM information_schema.tables WHERE table_schema NOT IN {SYSTEM};
         SELECT 'routine', routine_schema, routine_name, routine_type FROM information_schema.routines WHERE routine_schema NOT IN {SYSTEM};
         SELECT 'trigger', trigger_schema, trigger_name, '' FROM information_schema.triggers WHERE trigger_schema NOT IN {SYSTEM};
         SELECT 'event', event_schema, event_name, '' FROM information_schema.events WHERE event_schema NOT IN {SYSTEM};"
    ))
    .await;
    let q = |s: &str| format!("`{}`", s.replace('`', "``"));
    let lit = |s: &str| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"));
    let mut script = String::new();
    for line in catalog.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let [kind, schema, name, ty] = f[..] else {
            continue;
        };
        let obj = format!("{}.{}", q(schema), q(name));
        let key = format!("{kind} {schema}.{name} {ty}");
        script.push_str(&format!("SELECT {};\n", lit(&format!("@@ {key}"))));
        match (kind, ty) {
            ("schema", _) => script.push_str(&format!("SHOW CREATE DATABASE {};\n", q(schema))),
            ("table", "VIEW" | "SYSTEM VIEW") => {
                script.push_str(&format!("SHOW CREATE VIEW {obj};\n"))
            }
            ("table", "SEQUENCE") => script.push_str(&format!(
                "SHOW CREATE SEQUENCE {obj};\nSELECT * FROM {obj};\n"
            )),
            ("table", _) => script.push_str(&format!(
                "SHOW CREATE TABLE {obj};\nSELECT COUNT(*) FROM {obj};\nCHECKSUM TABLE {obj};\n"
            )),
            ("routine", ty) => script.push_str(&format!("SHOW CREATE {ty} {obj};\n")),
            // SHOW CREATE TRIGGER has its creation time: the definition.
            ("trigger", _) => script.push_str(&format!(
                "SELECT event_manipulation, event_object_table, action_order, action_timing, \
                 action_statement, sql_mode, definer, character_set_client, \
                 collation_connection, database_collation FROM information_schema.triggers \
                 WHERE trigger_schema = {} AND trigger_name = {};\n",
                lit(schema),
                lit(name)
            )),
            ("event", _) => script.push_str(&format!("SHOW CREATE EVENT {obj};\n")),
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    if script.is_empty() {
        return out;
    }
    let text = run(script).await;
    let mut key = String::new();
    for line in text.lines() {
        if let Some(k) = line.strip_prefix("@@ ") {
            key = k.to_owned();
            out.insert(key.clone(), String::new());
        } else if let Some(v) = out.get_mut(&key) {
            v.push_str(line);
            v.push('\n');
        }
    }
    out
}

/// The differences between two states, at most a few, readably.
pub fn differences(
    plain: &BTreeMap<String, String>,
    dolly: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut diffs = Vec::new();
    for (k, v) in plain {
        match dolly.get(k) {
            None => diffs.push(format!("{k}: missing from dolly's template")),
            Some(d) if d != v => diffs.push(format!("{k}:\n  plain: {v}  dolly: {d}")),
            _ => {}
        }
    }
    for k in dolly.keys().filter(|k| !plain.contains_key(*k)) {
        diffs.push(format!("{k}: only in dolly's template"));
    }
    diffs
}
