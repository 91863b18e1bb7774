//! Seeing instances (get, list) and their life: stop, start, extend,
//! protect, delete, reset.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use crate::instance::InstanceState;
use chrono::Utc;
use dolly_names::{SnapshotName, TemplateName, VersionName};
use futures_util::FutureExt;

use crate::instance::testing::{n, t, Harness};
use crate::instance::{InstanceError, ResetTarget, Source};
use crate::store::{Scratch, VersionMeta};

fn blog() -> TemplateName {
    TemplateName::parse("blog").unwrap()
}

/// Publishes a second template, `blog`, at version `b1`.
fn publish_blog(h: &Harness) {
    let store = h.manager.context().store.blocking();
    let v = VersionName::parse("b1").unwrap();
    let work = store.scratch(&Scratch::Import(blog(), v.clone()));
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("ibdata1"), b"blog data").unwrap();
    let meta = VersionMeta {
        version: v,
        created_at: Utc::now(),
        source_dump: "blog.sql".into(),
        database: "blog".into(),
        import_seconds: 0.1,
        dump_bytes: 1,
        size_bytes: 1,
        image: "fake".into(),
        server_version: "fake 11.8".into(),
        fingerprint: None,
        post_scripts: vec![],
        load: None,
        masking: None,
    };
    store.publish_version(&blog(), &meta, &work).unwrap();
}

fn marker(h: &Harness, name: &str) -> std::path::PathBuf {
    h.path(&format!("instances/shop/{name}/data/marker"))
}

// --- get and list ---

#[tokio::test]
async fn list_shows_only_ready_instances() {
    let h = Harness::new();
    let m = &h.manager;
    m.create(&t(), &n("ready"), None, Source::Template)
        .await
        .unwrap();
    m.context()
        .store
        .blocking()
        .claim_instance(&t(), &n("half"))
        .unwrap();
    let names: Vec<String> = m
        .list(None)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.meta.name.to_string())
        .collect();
    assert_eq!(names, vec!["ready"]);
    let err = m.get(&t(), &n("half")).await.unwrap_err();
    assert!(matches!(err, InstanceError::NotFound(..)), "{err:?}");
}

#[tokio::test]
async fn list_by_template_shows_only_that_templates_instances() {
    let h = Harness::new();
    publish_blog(&h);
    let m = &h.manager;
    m.create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    let b = m
        .create(&blog(), &n("b"), None, Source::Template)
        .await
        .unwrap();
    assert_eq!(b.meta.database, "blog");
    let names = |list: Vec<crate::instance::Instance>| -> Vec<String> {
        list.into_iter()
            .map(|i| format!("{}/{}", i.meta.template, i.meta.name))
            .collect()
    };
    assert_eq!(
        names(m.list(Some(&t())).await.unwrap()),
        vec!["shop/a".to_owned()]
    );
    assert_eq!(
        names(m.list(Some(&blog())).await.unwrap()),
        vec!["blog/b".to_owned()]
    );
    assert_eq!(m.list(None).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_lost_container_shows_as_missing_on_its_saved_port() {
    let h = Harness::new();
    let m = &h.manager;
    let a = m
        .create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    h.engine.lose(&h.container("a"));
    let i = m.get(&t(), &n("a")).await.unwrap();
    assert_eq!(i.state, InstanceState::Missing);
    assert_eq!(i.status, "missing");
    assert_eq!(i.port, a.port);
    let listed = m.list(None).await.unwrap();
    assert_eq!(listed[0].state, InstanceState::Missing);
}

#[tokio::test]
async fn a_stopped_instance_whose_container_is_lost_shows_as_stopped() {
    let h = Harness::new();
    let m = &h.manager;
    m.create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    m.stop(&t(), &n("a")).await.unwrap();
    h.engine.lose(&h.container("a"));
    assert_eq!(
        m.get(&t(), &n("a")).await.unwrap().state,
        InstanceState::Stopped
    );
    assert_eq!(m.list(None).await.unwrap()[0].state, InstanceState::Stopped);
}

#[tokio::test]
async fn a_crashed_server_shows_as_dead() {
    let h = Harness::new();
    let m = &h.manager;
    m.create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    h.engine.kill(&h.container("a"));
    let i = m.get(&t(), &n("a")).await.unwrap();
    assert_eq!(i.state, InstanceState::Dead);
    assert!(i.status.contains("137"), "{}", i.status);
}

// --- stop and start ---

#[tokio::test]
async fn stop_then_start_keeps_port_password_and_data() {
    let h = Harness::new();
    let m = &h.manager;
    let a = m
        .create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    let (port, pw) = (a.port.unwrap(), a.meta.password.clone());
    std::fs::write(marker(&h, "a"), b"mine").unwrap();

    let stopped = m.stop(&t(), &n("a")).await.unwrap();
    assert_eq!(stopped.state, InstanceState::Stopped);
    assert!(stopped.meta.stopped);
    assert!(
        !h.engine.accepts(port, &pw),
        "a stopped server answers nobody"
    );
    assert_eq!(
        m.get(&t(), &n("a")).await.unwrap().state,
        InstanceState::Stopped
    );

    let started = m.start(&t(), &n("a")).await.unwrap();
    assert_eq!(started.state, InstanceState::Running);
    assert!(!started.meta.stopped);
    assert_eq!(started.port, Some(port));
    assert_eq!(started.meta.password, pw);
    assert!(h.engine.accepts(port, &pw));
    assert_eq!(std::fs::read(marker(&h, "a")).unwrap(), b"mine");
}

#[tokio::test]
async fn starting_a_running_instance_leaves_it_alone() {
    let h = Harness::new();
    let m = &h.manager;
    let a = m
        .create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    let engine: &dyn dolly_engine::Engine = h.engine.as_ref();
    let before = engine.inspect(&h.container("a")).await.unwrap().unwrap();
    let i = m.start(&t(), &n("a")).await.unwrap();
    assert_eq!(i.state, InstanceState::Running);
    assert_eq!(i.port, a.port);
    let after = engine.inspect(&h.container("a")).await.unwrap().unwrap();
    assert_eq!(before.id, after.id, "the container was not re-created");
}

#[tokio::test]
async fn stop_and_start_of_a_missing_instance_are_not_found() {
    let h = Harness::new();
    let m = &h.manager;
    let err = m.stop(&t(), &n("nope")).await.unwrap_err();
    assert!(matches!(err, InstanceError::NotFound(..)), "{err:?}");
    let err = m.start(&t(), &n("nope")).await.unwrap_err();
    assert!(matches!(err, InstanceError::NotFound(..)), "{err:?}");
}

#[tokio::test]
async fn stopping_an_instance_whose_container_is_lost_stops_it() {
    let h = Harness::new();
    let m = &h.manager;
    m.create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    h.engine.lose(&h.container("a"));
    let stopped = m.stop(&t(), &n("a")).await;
    assert!(
        matches!(&stopped, Ok(i) if i.state == InstanceState::Stopped),
        "{stopped:?}"
    );
}

// --- extend and protect ---

#[tokio::test]
async fn extend_adds_time_to_the_expiry() {
    let h = Harness::new();
    let m = &h.manager;
    let a = m
        .create(
            &t(),
            &n("a"),
            Some(Duration::from_secs(3600)),
            Source::Template,
        )
        .await
        .unwrap();
    let before = a.meta.expires_at.unwrap();
    let i = m
        .extend(&t(), &n("a"), Duration::from_secs(1800))
        .await
        .unwrap();
    assert_eq!(
        i.meta.expires_at.unwrap() - before,
        chrono::Duration::minutes(30)
    );
    assert_eq!(
        m.get(&t(), &n("a")).await.unwrap().meta.expires_at,
        i.meta.expires_at,
        "saved"
    );
}

#[tokio::test]
async fn extend_by_zero_removes_the_expiry() {
    let h = Harness::new();
    let m = &h.manager;
    m.create(
        &t(),
        &n("a"),
        Some(Duration::from_secs(60)),
        Source::Template,
    )
    .await
    .unwrap();
    let i = m.extend(&t(), &n("a"), Duration::ZERO).await.unwrap();
    assert_eq!(i.meta.expires_at, None);
    assert_eq!(m.get(&t(), &n("a")).await.unwrap().meta.expires_at, None);
}

#[tokio::test]
async fn extend_respects_max_ttl() {
    let h = Harness::with(|s| s.max_ttl = Some(Duration::from_secs(3600)));
    let m = &h.manager;
    let a = m
        .create(
            &t(),
            &n("a"),
            Some(Duration::from_secs(1800)),
            Source::Template,
        )
        .await
        .unwrap();
    let err = m.extend(&t(), &n("a"), Duration::ZERO).await.unwrap_err();
    assert!(matches!(err, InstanceError::TtlTooLong(_)), "{err:?}");
    let err = m
        .extend(&t(), &n("a"), Duration::from_secs(3600))
        .await
        .unwrap_err();
    assert!(matches!(err, InstanceError::TtlTooLong(_)), "{err:?}");
    assert_eq!(
        m.get(&t(), &n("a")).await.unwrap().meta.expires_at,
        a.meta.expires_at,
        "a refused extend changes nothing"
    );
    // Up to max_ttl from now is fine.
    let i = m
        .extend(&t(), &n("a"), Duration::from_secs(1200))
        .await
        .unwrap();
    assert!(i.meta.expires_at.unwrap() > a.meta.expires_at.unwrap());
}

#[tokio::test]
async fn extend_beyond_the_calendar_is_out_of_range_not_a_panic() {
    let h = Harness::new();
    let m = &h.manager;
    m.create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    let add = Duration::from_secs(10_000_000_000_000);
    let outcome = AssertUnwindSafe(m.extend(&t(), &n("a"), add))
        .catch_unwind()
        .await;
    assert!(
        matches!(outcome, Ok(Err(InstanceError::TtlOutOfRange))),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn protect_and_unprotect_are_saved() {
    let h = Harness::new();
    let m = &h.manager;
    m.create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    assert!(m.protect(&t(), &n("a"), true).await.unwrap().meta.protected);
    assert!(m.get(&t(), &n("a")).await.unwrap().meta.protected);
    assert!(
        !m.protect(&t(), &n("a"), false)
            .await
            .unwrap()
            .meta
            .protected
    );
    assert!(!m.get(&t(), &n("a")).await.unwrap().meta.protected);
}

// --- delete ---

#[tokio::test]
async fn a_protected_instance_is_deleted_only_with_force() {
    let h = Harness::new();
    let m = &h.manager;
    let a = m
        .create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    m.protect(&t(), &n("a"), true).await.unwrap();
    let err = m.delete(&t(), &n("a"), false).await.unwrap_err();
    assert!(matches!(err, InstanceError::Protected(..)), "{err:?}");
    assert!(h.engine.accepts(a.port.unwrap(), &a.meta.password));
    m.delete(&t(), &n("a"), true).await.unwrap();
    assert!(!h.path("instances/shop/a").exists());
    assert!(h.engine.names().is_empty());
    let err = m.get(&t(), &n("a")).await.unwrap_err();
    assert!(matches!(err, InstanceError::NotFound(..)), "{err:?}");
}

#[tokio::test]
async fn deleting_a_missing_instance_is_not_found() {
    let h = Harness::new();
    let err = h.manager.delete(&t(), &n("nope"), false).await.unwrap_err();
    assert!(matches!(err, InstanceError::NotFound(..)), "{err:?}");
    let err = h.manager.delete(&t(), &n("nope"), true).await.unwrap_err();
    assert!(matches!(err, InstanceError::NotFound(..)), "{err:?}");
}

#[tokio::test]
async fn delete_takes_the_container_the_data_and_the_snapshots() {
    let h = Harness::new();
    let m = &h.manager;
    m.create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    let snap = SnapshotName::parse("s").unwrap();
    m.snapshot(&t(), &n("a"), &snap, None).await.unwrap();
    m.delete(&t(), &n("a"), false).await.unwrap();
    assert!(!h.path("instances/shop/a").exists());
    assert!(h.engine.names().is_empty());
    assert!(m.list(None).await.unwrap().is_empty());
}

// --- reset ---

#[tokio::test]
async fn reset_to_the_original_gives_back_the_templates_data_on_the_same_port() {
    let h = Harness::new();
    let m = &h.manager;
    let a = m
        .create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    std::fs::write(marker(&h, "a"), b"changed").unwrap();
    let i = m.reset(&t(), &n("a"), ResetTarget::Original).await.unwrap();
    assert!(!marker(&h, "a").exists(), "the change is gone");
    assert_eq!(i.state, InstanceState::Running);
    assert_eq!(i.port, a.port);
    assert_eq!(i.meta.password, a.meta.password);
    assert_eq!(i.meta.version.as_str(), "v1");
    assert!(h.engine.accepts(i.port.unwrap(), &a.meta.password));
    assert_eq!(
        std::fs::read(h.path("instances/shop/a/data/ibdata1")).unwrap(),
        b"data of v1"
    );
}

#[tokio::test]
async fn reset_to_the_original_stays_on_the_old_version_after_an_update() {
    let h = Harness::new();
    let m = &h.manager;
    m.create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    h.publish("v2");
    let i = m.reset(&t(), &n("a"), ResetTarget::Original).await.unwrap();
    assert_eq!(i.meta.version.as_str(), "v1");
    assert_eq!(
        std::fs::read(h.path("instances/shop/a/data/ibdata1")).unwrap(),
        b"data of v1"
    );
}

#[tokio::test]
async fn reset_to_latest_moves_to_the_new_version() {
    let h = Harness::new();
    let m = &h.manager;
    let a = m
        .create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    h.publish("v2");
    let i = m.reset(&t(), &n("a"), ResetTarget::Latest).await.unwrap();
    assert_eq!(i.meta.version.as_str(), "v2");
    assert_eq!(
        m.get(&t(), &n("a")).await.unwrap().meta.version.as_str(),
        "v2",
        "saved"
    );
    assert_eq!(
        std::fs::read(h.path("instances/shop/a/data/ibdata1")).unwrap(),
        b"data of v2"
    );
    assert_eq!(i.port, a.port);
    assert!(h.engine.accepts(i.port.unwrap(), &a.meta.password));
}

#[tokio::test]
async fn reset_to_a_snapshot_restores_its_data() {
    let h = Harness::new();
    let m = &h.manager;
    let a = m
        .create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    std::fs::write(marker(&h, "a"), b"saved").unwrap();
    let snap = SnapshotName::parse("good").unwrap();
    m.snapshot(&t(), &n("a"), &snap, None).await.unwrap();
    std::fs::write(marker(&h, "a"), b"broken").unwrap();
    std::fs::write(h.path("instances/shop/a/data/junk"), b"x").unwrap();

    let i = m
        .reset(&t(), &n("a"), ResetTarget::Snapshot(snap))
        .await
        .unwrap();
    assert_eq!(std::fs::read(marker(&h, "a")).unwrap(), b"saved");
    assert!(!h.path("instances/shop/a/data/junk").exists());
    assert_eq!(i.port, a.port);
    assert!(h.engine.accepts(i.port.unwrap(), &a.meta.password));
    assert_eq!(m.list_snapshots(&t(), &n("a")).await.unwrap().len(), 1);
}

#[tokio::test]
async fn reset_to_an_unknown_snapshot_is_not_found_and_changes_nothing() {
    let h = Harness::new();
    let m = &h.manager;
    let a = m
        .create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    std::fs::write(marker(&h, "a"), b"mine").unwrap();
    let err = m
        .reset(
            &t(),
            &n("a"),
            ResetTarget::Snapshot(SnapshotName::parse("nope").unwrap()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, InstanceError::SnapshotNotFound(..)),
        "{err:?}"
    );
    assert_eq!(std::fs::read(marker(&h, "a")).unwrap(), b"mine");
    assert!(h.engine.accepts(a.port.unwrap(), &a.meta.password));
}

#[tokio::test]
async fn reset_when_the_version_is_gone_is_version_gone_and_changes_nothing() {
    let h = Harness::new();
    let m = &h.manager;
    let a = m
        .create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    std::fs::write(marker(&h, "a"), b"mine").unwrap();
    h.publish("v2");
    std::fs::remove_dir_all(h.path("templates/shop/v1")).unwrap();
    let err = m
        .reset(&t(), &n("a"), ResetTarget::Original)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, InstanceError::VersionGone(_, v) if v.as_str() == "v1"),
        "{err:?}"
    );
    assert_eq!(std::fs::read(marker(&h, "a")).unwrap(), b"mine");
    assert!(h.engine.accepts(a.port.unwrap(), &a.meta.password));
    // Latest still works.
    let i = m.reset(&t(), &n("a"), ResetTarget::Latest).await.unwrap();
    assert_eq!(i.meta.version.as_str(), "v2");
}

#[tokio::test]
async fn reset_of_a_missing_instance_is_not_found() {
    let h = Harness::new();
    let err = h
        .manager
        .reset(&t(), &n("nope"), ResetTarget::Original)
        .await
        .unwrap_err();
    assert!(matches!(err, InstanceError::NotFound(..)), "{err:?}");
    assert!(!h.path("instances/shop/nope").exists());
}
