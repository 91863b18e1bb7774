//! `GET .../diff`: what a migration changed, against the real engine and
//! the shop example (tables, a foreign key, a trigger, routines, a view).

use crate::common;

use std::collections::BTreeSet;

use common::cli::dolly;
use common::{creds, query, shop_dump, TestApp};
use serde_json::Value;

async fn app() -> TestApp {
    let app = TestApp::spawn().await;
    app.write_dump("shop.sql", &shop_dump());
    app.update_ok(&[]).await;
    app
}

async fn diff(app: &TestApp, name: &str, against: Option<&str>) -> Value {
    let path = match against {
        Some(s) => format!("/api/v1/templates/shop/instances/{name}/diff?against={s}"),
        None => format!("/api/v1/templates/shop/instances/{name}/diff"),
    };
    let r = app.get(&path).await;
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

/// (object, table or "", name, change) of each change.
fn summary(d: &Value) -> BTreeSet<(String, String, String, String)> {
    d["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["object"].as_str().unwrap().to_owned(),
                c["table"].as_str().unwrap_or("").to_owned(),
                c["name"].as_str().unwrap().to_owned(),
                c["change"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

const MIGRATION: &[&str] = &[
    "ALTER TABLE customers ADD COLUMN phone varchar(30) NULL AFTER email, ADD KEY k_name (name)",
    "ALTER TABLE orders MODIFY total_cents bigint NOT NULL, COMMENT='money in cents'",
    "ALTER TABLE orders DROP FOREIGN KEY orders_ibfk_1",
    "CREATE TABLE coupons (code varchar(20) PRIMARY KEY, cents int NOT NULL) ENGINE=InnoDB",
    "DROP TRIGGER orders_after_insert",
    "CREATE OR REPLACE VIEW customer_totals AS SELECT c.name, COUNT(*) AS orders FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.id",
    "CREATE PROCEDURE ping() SELECT 1",
];

#[tokio::test]
async fn a_migration_is_seen_exactly_and_its_sql_replays_it_elsewhere() {
    let app = app().await;
    let body = app.create("shop", "mig").await;
    let (port, pw, db) = creds(&body);

    // Unchanged: an empty diff.
    let d = diff(&app, "mig", None).await;
    assert_eq!(d["changes"], Value::Array(vec![]), "{d}");
    assert_eq!(d["sql"], Value::Array(vec![]));

    // A snapshot before the migration, to diff against later.
    let r = app
        .post("/api/v1/templates/shop/instances/mig/snapshots/before")
        .await;
    assert_eq!(r.status(), 201);

    for stmt in MIGRATION {
        query(port, &pw, &db, stmt).await;
    }
    let d = diff(&app, "mig", None).await;
    let got = summary(&d);
    let s = |o: &str, t: &str, n: &str, c: &str| {
        (o.to_owned(), t.to_owned(), n.to_owned(), c.to_owned())
    };
    let expected: BTreeSet<_> = [
        s("column", "customers", "phone", "added"),
        s("index", "customers", "k_name", "added"),
        s("column", "orders", "total_cents", "modified"),
        s("table_option", "orders", "COMMENT", "added"),
        s("foreign_key", "orders", "orders_ibfk_1", "dropped"),
        s("table", "", "coupons", "added"),
        s("trigger", "orders", "orders_after_insert", "dropped"),
        s("view", "", "customer_totals", "modified"),
        s("routine", "", "PROCEDURE ping", "added"),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, expected, "{d:#}");
    // Against the snapshot taken before: the same changes.
    let against = diff(&app, "mig", Some("before")).await;
    assert_eq!(summary(&against), expected);

    // The SQL replays on a fresh clone to the same diff.
    let other = app.create("shop", "replay").await;
    let (p2, pw2, db2) = creds(&other);
    for stmt in d["sql"].as_array().unwrap() {
        query(p2, &pw2, &db2, stmt.as_str().unwrap()).await;
    }
    let replayed = diff(&app, "replay", None).await;
    assert_eq!(summary(&replayed), expected, "{replayed:#}");

    // The CLI: a human summary, the API's JSON, and SQL for the client.
    let url = app.url("");
    let url = url.trim_end_matches('/');
    let human = dolly(url, &["diff", "shop", "mig"]).await;
    human.ok();
    assert!(
        human.stdout.contains("9 schema change(s)"),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains("+ column default.customers: phone"),
        "{}",
        human.stdout
    );
    let json = dolly(url, &["diff", "shop", "mig", "--json"]).await;
    assert_eq!(summary(&json.ok().json()), expected);
    let sql = dolly(url, &["diff", "shop", "mig", "--sql"]).await;
    sql.ok();
    assert!(
        sql.stdout.starts_with("SET FOREIGN_KEY_CHECKS=0;\n"),
        "{}",
        sql.stdout
    );
    assert!(sql.stdout.contains("DELIMITER ;;") || !sql.stdout.contains("BEGIN"));
    let none = dolly(url, &["diff", "shop", "replay", "--against", "nope"]).await;
    none.fails(3, "snapshot");
}

#[tokio::test]
async fn a_stopped_instance_has_no_diff_yet() {
    let app = app().await;
    app.create("shop", "idle").await;
    let r = app.post("/api/v1/templates/shop/instances/idle/stop").await;
    assert_eq!(r.status(), 200);
    let r = app.get("/api/v1/templates/shop/instances/idle/diff").await;
    assert_eq!(r.status(), 409);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "instance_not_running");
}

#[tokio::test]
async fn explain_says_how_each_alter_runs_on_the_full_data() {
    let app = app().await;
    let body = app.create("shop", "plan").await;
    let (port, pw, db) = creds(&body);
    query(
        port,
        &pw,
        &db,
        "ALTER TABLE customers ADD COLUMN nickname varchar(30) NULL",
    )
    .await;
    query(
        port,
        &pw,
        &db,
        "ALTER TABLE orders MODIFY total_cents bigint NOT NULL",
    )
    .await;
    let r = app
        .post("/api/v1/templates/shop/instances/plan/diff/explain")
        .await;
    assert_eq!(r.status(), 200);
    let e: Value = r.json().await.unwrap();
    let alters: Vec<(&str, &str)> = e["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["sql"].as_str().unwrap().starts_with("ALTER TABLE"))
        .map(|s| {
            (
                s["sql"].as_str().unwrap(),
                s["algorithm"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    let of = |table: &str| {
        alters
            .iter()
            .find(|(sql, _)| sql.contains(table))
            .map(|(_, a)| *a)
            .unwrap_or_else(|| panic!("no ALTER of {table}: {e:#}"))
    };
    // Adding a nullable column at the end is instant; changing a column's
    // type rewrites the table.
    assert_eq!(of("`customers`"), "INSTANT", "{e:#}");
    assert_eq!(of("`orders`"), "COPY", "{e:#}");
    assert!(e["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["seconds"].as_f64().unwrap() >= 0.0));
    // The instance itself is untouched by the rehearsal.
    let d = diff(&app, "plan", None).await;
    assert_eq!(d["changes"].as_array().unwrap().len(), 2, "{d:#}");
}
