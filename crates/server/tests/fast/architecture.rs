//! The architecture's boundaries are crate dependencies; this test reads
//! them from `cargo metadata` and fails when one is crossed.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// Each workspace package and its normal (non-dev) dependencies.
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .expect("run cargo metadata");
    assert!(out.status.success(), "cargo metadata failed");
    let meta: Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let mut map = BTreeMap::new();
    for p in meta["packages"].as_array().expect("packages") {
        let deps = p["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .filter(|d| d["kind"].is_null())
            .filter_map(|d| d["name"].as_str().map(str::to_owned))
            .collect();
        map.insert(p["name"].as_str().expect("name").to_owned(), deps);
    }
    map
}

/// `package` and every workspace package it depends on, transitively.
fn closure(deps: &BTreeMap<String, BTreeSet<String>>, package: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![package.to_owned()];
    while let Some(p) = todo.pop() {
        if seen.insert(p.clone()) {
            for d in deps.get(&p).into_iter().flatten() {
                if deps.contains_key(d) {
                    todo.push(d.clone());
                }
            }
        }
    }
    seen
}

/// Every crate `package` pulls in directly or through workspace crates.
fn reachable(deps: &BTreeMap<String, BTreeSet<String>>, package: &str) -> BTreeSet<String> {
    closure(deps, package)
        .iter()
        .flat_map(|p| deps[p].iter().cloned())
        .collect()
}

#[test]
fn only_the_engine_crate_depends_on_bollard() {
    let deps = dependencies();
    let users: Vec<&String> = deps
        .iter()
        .filter(|(_, d)| d.contains("bollard"))
        .map(|(p, _)| p)
        .collect();
    assert_eq!(users, vec!["dolly-engine"]);
}

#[test]
fn the_cli_knows_no_server_engine_or_database_driver() {
    let deps = dependencies();
    let reach = reachable(&deps, "dolly-cli");
    for banned in [
        "actix-web",
        "bollard",
        "mysql_async",
        "dolly-core",
        "dolly-engine",
    ] {
        assert!(!reach.contains(banned), "dolly-cli reaches {banned}");
    }
}

#[test]
fn the_domain_core_knows_no_http_framework() {
    let deps = dependencies();
    let reach = reachable(&deps, "dolly-core");
    for banned in ["actix-web", "actix-http", "reqwest", "hyper"] {
        assert!(!reach.contains(banned), "dolly-core reaches {banned}");
    }
}

#[test]
fn the_wire_types_are_serde_only() {
    let deps = dependencies();
    let direct = &deps["dolly-types"];
    let allowed: BTreeSet<&str> = [
        "dolly-names",
        "humantime",
        "serde",
        "serde_json",
        "chrono",
        "thiserror",
        "utoipa",
    ]
    .into_iter()
    .collect();
    for d in direct {
        assert!(allowed.contains(d.as_str()), "dolly-types depends on {d}");
    }
}

#[test]
fn the_domain_core_returns_and_stores_its_own_types_not_the_wire_types() {
    // Core names things with dolly-names; what /api/v1 shows is made from
    // core's types in dolly-server's `wire` module. An API change cannot
    // reach core or its files on disk.
    let deps = dependencies();
    let reach = reachable(&deps, "dolly-core");
    assert!(
        !reach.contains("dolly-types"),
        "dolly-core reaches dolly-types (the wire types)"
    );
    assert!(reach.contains("dolly-names"));
}

#[test]
fn names_are_serde_only() {
    let deps = dependencies();
    for d in &deps["dolly-names"] {
        assert!(
            ["serde", "thiserror"].contains(&d.as_str()),
            "dolly-names depends on {d}"
        );
    }
}

#[test]
fn the_forwarder_relay_is_std_and_libc_only() {
    // `dolly-forward` runs inside the server images' forwarder containers:
    // no runtime, no dolly crate, nothing that grows the binary.
    let deps = dependencies();
    for d in &deps["dolly-forward"] {
        assert!(
            ["libc", "thiserror"].contains(&d.as_str()),
            "dolly-forward depends on {d}"
        );
    }
}

#[test]
fn dollyd_is_built_without_core_testing_door() {
    // `dolly-core`'s `testing` feature opens the store and the engine to
    // integration tests; dollyd's own (normal) dependency must not turn it
    // on, so no handler can reach either.
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .expect("run cargo metadata");
    let meta: Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    for p in meta["packages"].as_array().expect("packages") {
        for d in p["dependencies"].as_array().expect("dependencies") {
            if d["name"] == "dolly-core" && d["kind"].is_null() {
                let features = d["features"].as_array().expect("features");
                assert!(
                    !features.iter().any(|f| f == "testing"),
                    "{} turns on dolly-core/testing in a normal dependency",
                    p["name"]
                );
            }
        }
    }
}
