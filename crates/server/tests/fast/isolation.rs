//! Route by route, a member against another member's instance: every
//! route of the OpenAPI document, of the myaas routes and of the UI,
//! called by bob against alice's instance `aaa` and its snapshot `s1`,
//! answers exactly as for an absent name (`zzz`); every admin-only route
//! answers members 403; what needs no name shows bob nothing of alice's.
//!
//! [`TABLE`] has a row per route. A route the app registers
//! (`dolly_server::routes::registered`) or documents (the OpenAPI
//! document) without a row fails the test, and so does a `.route(` call
//! outside `routes.rs` (a route that would not be recorded).

use std::collections::BTreeSet;
use std::time::Instant;

use serde_json::{json, Value};

use crate::harness::{Answer, Body, FastApp, ADMIN, ALICE, BOB};

/// How a route treats callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Acts on `{template}/{name}` (and `{snapshot}`): another member's
    /// answers as an absent one.
    Owned,
    /// Admins only: a member gets 403, whatever the names.
    Admin,
    /// No instance name: anyone signed in; a member sees only their own.
    Open,
    /// Makes `{template}/{name}`: another member's name answers exactly
    /// as one the caller holds ("taken", nothing about whose).
    Create,
    /// Public by design, no token needed (the CLI download): the same
    /// answer for anyone, naming nobody.
    Public,
}

struct Row {
    method: &'static str,
    pattern: &'static str,
    kind: Kind,
    /// Values of `{action}` to call (UI routes), else one call.
    actions: &'static [&'static str],
    body: fn() -> Body,
}

const fn row(method: &'static str, pattern: &'static str, kind: Kind) -> Row {
    Row {
        method,
        pattern,
        kind,
        actions: &[],
        body: || Body::None,
    }
}

const fn with_body(
    method: &'static str,
    pattern: &'static str,
    kind: Kind,
    body: fn() -> Body,
) -> Row {
    Row {
        method,
        pattern,
        kind,
        actions: &[],
        body,
    }
}

fn ui_form() -> Body {
    Body::Form("ttl=60&name=brand-new&message=m&target=latest&force=1".to_owned())
}

const V1: &str = "/api/v1/templates/{template}/instances/{name}";

/// Every route, once. Keep sorted by prefix; a new route needs a row.
static TABLE: &[Row] = &[
    // Probes and metrics.
    row("GET", "/healthz", Kind::Open),
    row("GET", "/readyz", Kind::Open),
    row("GET", "/metrics", Kind::Admin),
    // The CLI download (public).
    row("GET", "/cli/dolly", Kind::Public),
    row("GET", "/cli/dolly.sha256", Kind::Public),
    // myaas.
    row("GET", "/", Kind::Open),
    row("GET", "/templates", Kind::Open),
    row("GET", "/db", Kind::Open),
    row("GET", "/db/{template}/{name}", Kind::Owned),
    row("DELETE", "/db/{template}/{name}", Kind::Owned),
    row("POST", "/db/{template}/{name}", Kind::Create),
    // /api/v1.
    row("GET", "/api/v1/openapi.json", Kind::Open),
    row("GET", "/api/v1/version", Kind::Open),
    row("GET", "/api/v1/templates", Kind::Open),
    row("GET", "/api/v1/templates/{template}", Kind::Open),
    with_body(
        "PUT",
        "/api/v1/templates/{template}/pool",
        Kind::Admin,
        || Body::Json(json!({"size": 0})),
    ),
    row("GET", "/api/v1/instances", Kind::Open),
    row("GET", "/api/v1/templates/{template}/instances", Kind::Open),
    row("POST", V1, Kind::Create),
    row("GET", V1, Kind::Owned),
    row("DELETE", V1, Kind::Owned),
    row(
        "GET",
        "/api/v1/templates/{template}/instances/{name}/container",
        Kind::Owned,
    ),
    with_body(
        "POST",
        "/api/v1/templates/{template}/instances/{name}/extend",
        Kind::Owned,
        || Body::Json(json!({"ttl": 60})),
    ),
    row(
        "POST",
        "/api/v1/templates/{template}/instances/{name}/protect",
        Kind::Owned,
    ),
    row(
        "POST",
        "/api/v1/templates/{template}/instances/{name}/unprotect",
        Kind::Owned,
    ),
    row(
        "POST",
        "/api/v1/templates/{template}/instances/{name}/stop",
        Kind::Owned,
    ),
    row(
        "POST",
        "/api/v1/templates/{template}/instances/{name}/start",
        Kind::Owned,
    ),
    row(
        "POST",
        "/api/v1/templates/{template}/instances/{name}/reset",
        Kind::Owned,
    ),
    row(
        "GET",
        "/api/v1/templates/{template}/instances/{name}/snapshots",
        Kind::Owned,
    ),
    row(
        "POST",
        "/api/v1/templates/{template}/instances/{name}/snapshots/{snapshot}",
        Kind::Owned,
    ),
    row(
        "DELETE",
        "/api/v1/templates/{template}/instances/{name}/snapshots/{snapshot}",
        Kind::Owned,
    ),
    row(
        "POST",
        "/api/v1/templates/{template}/instances/{name}/snapshots/{snapshot}/restore",
        Kind::Owned,
    ),
    with_body(
        "POST",
        "/api/v1/templates/{template}/instances/{name}/snapshots/{snapshot}/promote",
        Kind::Admin,
        || Body::Json(json!({"template": "promoted"})),
    ),
    row(
        "GET",
        "/api/v1/templates/{template}/instances/{name}/snapshots/{snapshot}/export",
        Kind::Owned,
    ),
    with_body(
        "POST",
        "/api/v1/templates/{template}/instances/{name}/snapshots/{snapshot}/push",
        Kind::Owned,
        || Body::Json(json!({"remote": "http://127.0.0.1:9", "token": "t"})),
    ),
    row(
        "POST",
        "/api/v1/templates/{template}/instances/{name}/import",
        Kind::Create,
    ),
    row(
        "GET",
        "/api/v1/templates/{template}/instances/{name}/diff",
        Kind::Owned,
    ),
    row(
        "POST",
        "/api/v1/templates/{template}/instances/{name}/diff/explain",
        Kind::Owned,
    ),
    row("GET", "/api/v1/df", Kind::Admin),
    row("GET", "/api/v1/quarantine", Kind::Admin),
    with_body("POST", "/api/v1/reap", Kind::Admin, || {
        Body::Json(json!({"dry_run": true}))
    }),
    // The web UI.
    row("GET", "/ui", Kind::Open),
    row("GET", "/ui/", Kind::Open),
    row("GET", "/ui/instances/rows", Kind::Open),
    row("GET", "/ui/templates", Kind::Open),
    row("GET", "/ui/templates/rows", Kind::Open),
    row("GET", "/ui/new", Kind::Open),
    with_body("POST", "/ui/new", Kind::Create, || Body::None),
    row("GET", "/ui/i/{template}/{name}", Kind::Owned),
    Row {
        method: "POST",
        pattern: "/ui/i/{template}/{name}/{action}",
        kind: Kind::Owned,
        actions: &[
            "extend",
            "protect",
            "unprotect",
            "stop",
            "start",
            "reset",
            "snapshot",
            "delete",
        ],
        body: ui_form,
    },
    Row {
        method: "POST",
        pattern: "/ui/i/{template}/{name}/snapshots/{snapshot}/{action}",
        kind: Kind::Owned,
        actions: &["restore", "branch", "delete"],
        body: ui_form,
    },
];

fn path(pattern: &str, name: &str, action: &str) -> String {
    pattern
        .replace("{template}", "shop")
        .replace("{name}", name)
        .replace("{snapshot}", "s1")
        .replace("{action}", action)
}

/// `a` with every `from` written as `to`: two answers about two names
/// compare equal when they differ by the name alone.
fn renamed(a: &Answer, from: &str, to: &str) -> Answer {
    Answer {
        status: a.status,
        body: a.body.replace(from, to),
        location: a.location.as_ref().map(|l| l.replace(from, to)),
        set_cookie: a.set_cookie.iter().map(|c| c.replace(from, to)).collect(),
        content_type: a.content_type.clone(),
    }
}

/// alice's `aaa` and its snapshot `s1` are as she left them.
async fn alice_intact(app: &FastApp, after: &str) {
    let i = app
        .call(
            ALICE,
            "GET",
            "/api/v1/templates/shop/instances/aaa",
            Body::None,
        )
        .await;
    assert_eq!(i.status, 200, "after {after}: alice's instance: {i:?}");
    let v: Value = serde_json::from_str(&i.body).expect("json");
    assert_eq!(v["state"], "running", "after {after}: {v}");
    assert_eq!(v["protected"], false, "after {after}: {v}");
    let s = app
        .call(
            ALICE,
            "GET",
            "/api/v1/templates/shop/instances/aaa/snapshots",
            Body::None,
        )
        .await;
    let v: Value = serde_json::from_str(&s.body).expect("json");
    let names: Vec<&str> = v["snapshots"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["s1"], "after {after}");
}

#[tokio::test]
async fn a_member_reaches_nothing_of_another_member_route_by_route() {
    let started = Instant::now();
    let app = FastApp::spawn().await;
    let v1 = "/api/v1/templates/shop/instances";
    app.ok(ALICE, "POST", &format!("{v1}/aaa"), Body::None, 201)
        .await;
    app.ok(
        ALICE,
        "POST",
        &format!("{v1}/aaa/snapshots/s1"),
        Body::None,
        201,
    )
    .await;
    app.ok(BOB, "POST", &format!("{v1}/bbb"), Body::None, 201)
        .await;
    app.ok(
        BOB,
        "POST",
        &format!("{v1}/bbb/snapshots/s1"),
        Body::None,
        201,
    )
    .await;

    let mut checked = 0;
    for r in TABLE {
        let actions: Vec<&str> = if r.actions.is_empty() {
            vec![""]
        } else {
            r.actions.to_vec()
        };
        for action in actions {
            let what = format!("{} {} {action}", r.method, r.pattern);
            match r.kind {
                Kind::Owned => {
                    let theirs = app
                        .call(BOB, r.method, &path(r.pattern, "aaa", action), (r.body)())
                        .await;
                    alice_intact(&app, &what).await;
                    let absent = app
                        .call(BOB, r.method, &path(r.pattern, "zzz", action), (r.body)())
                        .await;
                    assert_eq!(
                        renamed(&theirs, "aaa", "zzz"),
                        absent,
                        "{what}: another member's instance answers otherwise than an absent one"
                    );
                    assert!(matches!(theirs.status, 404 | 303), "{what}: {theirs:?}");
                    assert!(
                        !theirs.content_type.starts_with("application/json")
                            || !r.pattern.starts_with("/ui"),
                        "{what}: the UI answered JSON: {theirs:?}"
                    );
                }
                Kind::Admin => {
                    for name in ["aaa", "bbb"] {
                        let a = app
                            .call(BOB, r.method, &path(r.pattern, name, action), (r.body)())
                            .await;
                        assert_eq!(a.status, 403, "{what} as a member: {a:?}");
                        assert!(!a.body.contains("alice-q"), "{what}: {a:?}");
                    }
                    alice_intact(&app, &what).await;
                }
                Kind::Open => {
                    let a = app
                        .call(BOB, r.method, &path(r.pattern, "", action), (r.body)())
                        .await;
                    assert!(a.status < 400, "{what}: {a:?}");
                    for secret in ["aaa", "alice-q"] {
                        assert!(
                            !a.body.contains(secret),
                            "{what}: a member sees {secret:?}: {}",
                            a.body
                        );
                    }
                    if r.pattern.starts_with("/api/v1/instances") || r.pattern == "/db" {
                        assert!(a.body.contains("bbb"), "{what}: bob's own is listed");
                    }
                }
                Kind::Public => {
                    let p = path(r.pattern, "", action);
                    let a = app.call(BOB, r.method, &p, (r.body)()).await;
                    let b = app.call(ADMIN, r.method, &p, (r.body)()).await;
                    assert_eq!(a, b, "{what}: a public route answers by caller");
                    assert!(!a.body.contains("alice-q"), "{what}: {a:?}");
                }
                Kind::Create => {
                    let (theirs, mine) = if r.pattern == "/ui/new" {
                        let form = |n: &str| Body::Form(format!("template=shop&name={n}"));
                        (
                            app.call(BOB, "POST", "/ui/new", form("aaa")).await,
                            app.call(BOB, "POST", "/ui/new", form("bbb")).await,
                        )
                    } else {
                        (
                            app.call(BOB, r.method, &path(r.pattern, "aaa", action), (r.body)())
                                .await,
                            app.call(BOB, r.method, &path(r.pattern, "bbb", action), (r.body)())
                                .await,
                        )
                    };
                    assert_eq!(
                        renamed(&theirs, "aaa", "bbb"),
                        mine,
                        "{what}: a name another member holds answers otherwise than one the caller holds"
                    );
                    assert!(!theirs.body.contains("alice-q"), "{what}: {theirs:?}");
                    alice_intact(&app, &what).await;
                }
            }
            checked += 1;
        }
    }

    // A branch from another's snapshot is a branch from an absent one.
    let branch = |from: &str| Body::Json(json!({"from": from}));
    let theirs = app
        .call(BOB, "POST", &format!("{v1}/fork"), branch("aaa@s1"))
        .await;
    let absent = app
        .call(BOB, "POST", &format!("{v1}/fork"), branch("zzz@s1"))
        .await;
    assert_eq!(renamed(&theirs, "aaa", "zzz"), absent);
    assert_eq!(theirs.status, 404, "{theirs:?}");

    // Admins reach alice's instance on the same routes.
    app.ok(ADMIN, "GET", &format!("{v1}/aaa"), Body::None, 200)
        .await;
    app.ok(ADMIN, "GET", "/metrics", Body::None, 200).await;
    alice_intact(&app, "all rows").await;

    eprintln!(
        "isolation: {checked} calls over {} routes in {:.2?}",
        TABLE.len(),
        started.elapsed()
    );
    assert!(started.elapsed().as_secs() < 60, "the fast tier stays fast");
}

/// Every route the app registers or documents has a row, and every row is
/// a registered route.
#[tokio::test]
async fn every_route_has_a_row() {
    let app = FastApp::spawn().await;
    // Workers configure the app when they start: one answer makes sure.
    app.ok(ADMIN, "GET", "/healthz", Body::None, 200).await;
    let table: BTreeSet<(String, String)> = TABLE
        .iter()
        .map(|r| (r.method.to_owned(), r.pattern.to_owned()))
        .collect();
    assert_eq!(table.len(), TABLE.len(), "a route has two rows");
    let registered: BTreeSet<(String, String)> =
        dolly_server::routes::registered().into_iter().collect();
    let missing: Vec<_> = registered.difference(&table).collect();
    assert!(
        missing.is_empty(),
        "routes without a row in TABLE: {missing:?}"
    );
    let stale: Vec<_> = table.difference(&registered).collect();
    assert!(stale.is_empty(), "rows of no registered route: {stale:?}");

    let doc = serde_json::to_value(<dolly_server::api::ApiDoc as utoipa::OpenApi>::openapi())
        .expect("openapi");
    let mut documented = 0;
    for (p, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("item").keys() {
            let key = (method.to_uppercase(), p.clone());
            if !["GET", "POST", "PUT", "DELETE", "PATCH"].contains(&key.0.as_str()) {
                continue;
            }
            assert!(table.contains(&key), "documented without a row: {key:?}");
            documented += 1;
        }
    }
    assert!(documented > 20, "{documented}");

    // Routes are added through routes::Routes only (else unrecorded).
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
    for file in rust_files(std::path::Path::new(src)) {
        if file.ends_with("routes.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("source");
        for needle in [".route(", "web::resource("] {
            assert!(
                !text.contains(needle),
                "{}: {needle} outside routes.rs: add it through routes::Routes",
                file.display()
            );
        }
    }
}

fn rust_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out
}

/// /metrics: per-user figures for admins and the metrics token only.
#[tokio::test]
async fn metrics_are_for_admins_and_the_metrics_token() {
    let app = FastApp::spawn_with(|s| {
        s.metrics_token = dolly_core::config::Settings::from_lookup(|k| {
            (k == "metrics_token").then(|| "scrape-me".to_owned())
        })
        .expect("settings")
        .metrics_token;
    })
    .await;
    app.ok(
        ALICE,
        "POST",
        "/api/v1/templates/shop/instances/aaa",
        Body::None,
        201,
    )
    .await;
    let m = app.call(BOB, "GET", "/metrics", Body::None).await;
    assert_eq!(m.status, 403, "{m:?}");
    assert!(!m.body.contains("alice-q"), "{m:?}");
    let m = app
        .ok("scrape-me", "GET", "/metrics", Body::None, 200)
        .await;
    assert!(m.body.contains("user=\"alice-q\""), "{}", m.body);
    app.ok(ADMIN, "GET", "/metrics", Body::None, 200).await;
    // The metrics token is good for /metrics only.
    let a = app
        .call("scrape-me", "GET", "/api/v1/instances", Body::None)
        .await;
    assert_eq!(a.status, 401, "{a:?}");
}
