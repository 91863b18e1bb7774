//! Load: 50 distinct creates at once, 20 creates of one name at once, and a
//! bounded create/delete soak (`DOLLY_SOAK_CYCLES`, default 30) watching
//! file descriptors, containers and instance folders stay flat.
//!
//! Figures from these tests are in RELIABILITY.md.

use crate::common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{creds, scalar, simple_dump, TestApp};
use serde_json::Value;

async fn shop_app() -> TestApp {
    let app = TestApp::spawn_with(|s| {
        // Generous: 50 servers starting at once on 2 cores.
        s.ready_timeout = Duration::from_secs(300);
    })
    .await;
    app.write_dump("shop.sql", simple_dump("t", 10).as_bytes());
    app.update_ok(&["shop"]).await;
    app
}

/// Open file descriptors of this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// Instance folders left under `instances/shop/`.
fn instance_folders(app: &TestApp) -> Vec<String> {
    match std::fs::read_dir(app.data_dir().join("instances").join("shop")) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_distinct_creates_at_once_all_succeed_on_distinct_ports() {
    let app = shop_app().await;
    let names: Vec<String> = (0..50).map(|i| format!("load{i:02}")).collect();
    let started = Instant::now();
    let app_ref = &app;
    let requests = names.iter().map(|n| {
        let app = app_ref;
        async move {
            let r = app.post(&format!("/db/shop/{n}")).await;
            let status = r.status().as_u16();
            let body = r.text().await.unwrap_or_default();
            (n.clone(), status, body)
        }
    });
    let answers = futures_util::future::join_all(requests).await;
    let elapsed = started.elapsed();
    let mut ports = HashSet::new();
    for (n, status, body) in &answers {
        assert_eq!(*status, 201, "POST /db/shop/{n}: {body}");
        let v: Value = serde_json::from_str(body).expect("json");
        let (port, _, _) = creds(&v);
        assert!(ports.insert(port), "port {port} given twice");
    }
    assert_eq!(ports.len(), 50);
    eprintln!("50 concurrent creates: {:.1}s", elapsed.as_secs_f64());

    // Each one answers with its own data.
    for (_, _, body) in answers.iter().step_by(10) {
        let v: Value = serde_json::from_str(body).expect("json");
        let (port, pw, db) = creds(&v);
        assert_eq!(scalar(port, &pw, &db, "SELECT COUNT(*) FROM t").await, "10");
    }
    assert_eq!(app.containers().await.len(), 50);

    let started = Instant::now();
    let paths: Vec<String> = names.iter().map(|n| format!("/db/shop/{n}")).collect();
    let deletes = paths.iter().map(|p| app.delete(p));
    for r in futures_util::future::join_all(deletes).await {
        assert!(r.status().is_success(), "delete: {}", r.status());
    }
    eprintln!(
        "50 concurrent deletes: {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert!(app.containers().await.is_empty());
    assert!(
        instance_folders(&app).is_empty(),
        "{:?}",
        instance_folders(&app)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_creates_of_one_name_make_one_instance() {
    let app = shop_app().await;
    let started = Instant::now();
    let requests = (0..20).map(|_| app.post("/db/shop/hot"));
    let statuses: Vec<u16> = futures_util::future::join_all(requests)
        .await
        .into_iter()
        .map(|r| r.status().as_u16())
        .collect();
    eprintln!(
        "20 concurrent creates of one name: {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 304).count(),
        19,
        "{statuses:?}"
    );
    let containers = app.containers().await;
    assert_eq!(containers.len(), 1, "{containers:?}");
    assert!(containers[0].name.ends_with("shop.hot"));
    assert_eq!(instance_folders(&app), vec!["hot".to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_of_create_delete_cycles_stays_flat() {
    let cycles: usize = std::env::var("DOLLY_SOAK_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let app = shop_app().await;
    // One warm-up cycle so the client's pool and the server's workers exist.
    app.create("shop", "soak").await;
    assert!(app.delete("/db/shop/soak").await.status().is_success());

    let fds_before = open_fds();
    let containers_before = app.containers().await.len();
    let started = Instant::now();
    for i in 0..cycles {
        let body = app.create("shop", "soak").await;
        let (port, pw, db) = creds(&body);
        if i % 10 == 0 {
            assert_eq!(scalar(port, &pw, &db, "SELECT COUNT(*) FROM t").await, "10");
        }
        let r = app.delete("/db/shop/soak").await;
        assert!(r.status().is_success(), "cycle {i}: delete {}", r.status());
    }
    let elapsed = started.elapsed();
    let fds_after = open_fds();
    let containers_after = app.containers().await.len();
    eprintln!(
        "soak: {cycles} cycles in {:.1}s ({:.2}s/cycle); fds {fds_before} -> {fds_after}; containers {containers_before} -> {containers_after}",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() / cycles.max(1) as f64
    );
    assert!(
        fds_after < fds_before + 20,
        "file descriptors grew: {fds_before} -> {fds_after}"
    );
    assert_eq!(containers_before, 0);
    assert_eq!(containers_after, 0);
    assert!(
        instance_folders(&app).is_empty(),
        "{:?}",
        instance_folders(&app)
    );
    let tmp = app.tmp_entries("");
    assert!(tmp.is_empty(), "tmp/ not empty: {tmp:?}");
}
