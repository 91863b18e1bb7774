//! Creating instances: what a user gets back, and what a failed create
//! leaves behind (nothing).

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use crate::instance::InstanceState;
use dolly_names::SnapshotName;
use futures_util::FutureExt;

use crate::instance::testing::{n, t, Harness};
use crate::instance::{InstanceError, Source};

/// Nothing of `shop/name` is left: no folder, no container.
fn assert_nothing_left(h: &Harness, name: &str) {
    assert!(
        !h.path(&format!("instances/shop/{name}")).exists(),
        "its folder is left behind"
    );
    assert!(
        !h.engine.names().contains(&h.container(name)),
        "its container is left behind: {:?}",
        h.engine.names()
    );
}

#[tokio::test]
async fn a_new_instance_answers_with_credentials_its_server_accepts() {
    let h = Harness::new();
    let i = h
        .manager
        .create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    assert_eq!(i.state, InstanceState::Running);
    assert!(i.meta.ready);
    assert_eq!(i.meta.version.as_str(), "v1");
    assert_eq!(i.meta.database, "shop");
    let port = i.port.expect("a port");
    assert_eq!(i.meta.port, Some(port));
    assert!(h.engine.accepts(port, &i.meta.password));
    assert!(!h.engine.accepts(port, "wrong"));
    assert_eq!(h.engine.names(), vec![h.container("a")]);
    let data = std::fs::read(h.path("instances/shop/a/data/ibdata1")).unwrap();
    assert_eq!(data, b"data of v1", "the template's data");
}

#[tokio::test]
async fn the_init_file_no_longer_holds_the_password_once_ready() {
    let h = Harness::new();
    let i = h
        .manager
        .create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    let init = std::fs::read_to_string(h.path("instances/shop/a/data/.dolly-init.sql")).unwrap();
    assert!(!init.contains(&i.meta.password), "{init}");
}

#[tokio::test]
async fn the_same_name_twice_is_already_exists_and_the_first_is_untouched() {
    let h = Harness::new();
    let m = &h.manager;
    let first = m
        .create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    let err = m
        .create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, InstanceError::AlreadyExists(tt, nn) if *tt == t() && *nn == n("a")),
        "{err:?}"
    );
    let i = m.get(&t(), &n("a")).await.unwrap();
    assert_eq!(i.state, InstanceState::Running);
    assert_eq!(i.meta.password, first.meta.password);
    assert!(h.engine.accepts(i.port.unwrap(), &first.meta.password));
}

#[tokio::test]
async fn an_unknown_template_is_not_found_and_lists_the_known_ones() {
    let h = Harness::new();
    let blog = dolly_names::TemplateName::parse("blog").unwrap();
    let err = h
        .manager
        .create(&blog, &n("a"), None, Source::Template)
        .await
        .unwrap_err();
    match &err {
        InstanceError::TemplateNotFound { name, known } => {
            assert_eq!(name, &blog);
            assert_eq!(known, &vec![t()]);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("known: shop"), "{err}");
    assert!(!h.path("instances/blog/a").exists());
    assert!(h.engine.names().is_empty());
}

#[tokio::test]
async fn a_ttl_sets_the_expiry() {
    let h = Harness::new();
    let i = h
        .manager
        .create(
            &t(),
            &n("a"),
            Some(Duration::from_secs(3600)),
            Source::Template,
        )
        .await
        .unwrap();
    let expires = i.meta.expires_at.expect("an expiry");
    assert_eq!(expires - i.meta.created_at, chrono::Duration::hours(1));
    let labels = h.engine.spec(&h.container("a")).unwrap().labels;
    assert_eq!(
        labels.get("dolly.expires-at"),
        Some(&expires.timestamp().to_string())
    );
}

#[tokio::test]
async fn no_ttl_takes_the_default_and_a_zero_ttl_never_expires() {
    let h = Harness::new();
    let m = &h.manager;
    let default = m
        .create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    assert_eq!(
        default.meta.expires_at.unwrap() - default.meta.created_at,
        chrono::Duration::hours(24),
        "default_ttl is 24h"
    );
    let forever = m
        .create(&t(), &n("b"), Some(Duration::ZERO), Source::Template)
        .await
        .unwrap();
    assert_eq!(forever.meta.expires_at, None);
}

#[tokio::test]
async fn a_ttl_beyond_max_ttl_is_refused_and_leaves_nothing() {
    let h = Harness::with(|s| s.max_ttl = Some(Duration::from_secs(3600)));
    let m = &h.manager;
    let err = m
        .create(
            &t(),
            &n("a"),
            Some(Duration::from_secs(3601)),
            Source::Template,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, InstanceError::TtlTooLong(d) if d == Duration::from_secs(3600)),
        "{err:?}"
    );
    // Zero means "forever", which max_ttl forbids too.
    let err = m
        .create(&t(), &n("a"), Some(Duration::ZERO), Source::Template)
        .await
        .unwrap_err();
    assert!(matches!(err, InstanceError::TtlTooLong(_)), "{err:?}");
    assert_nothing_left(&h, "a");
    // Within the limit is fine.
    let i = m
        .create(
            &t(),
            &n("a"),
            Some(Duration::from_secs(3600)),
            Source::Template,
        )
        .await
        .unwrap();
    assert!(i.meta.expires_at.is_some());
}

#[tokio::test]
async fn a_ttl_beyond_the_calendar_is_out_of_range_not_a_panic() {
    let h = Harness::new();
    // ~317,000 years: a valid u64 of seconds the v1 API accepts.
    let ttl = Duration::from_secs(10_000_000_000_000);
    let outcome = AssertUnwindSafe(
        h.manager
            .create(&t(), &n("far"), Some(ttl), Source::Template),
    )
    .catch_unwind()
    .await;
    assert!(
        !h.path("instances/shop/far").exists(),
        "the claimed folder is left behind"
    );
    assert!(
        matches!(outcome, Ok(Err(InstanceError::TtlOutOfRange))),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn max_instances_is_too_many() {
    let h = Harness::with(|s| s.max_instances = Some(1));
    let m = &h.manager;
    m.create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    let err = m
        .create(&t(), &n("b"), None, Source::Template)
        .await
        .unwrap_err();
    assert!(matches!(err, InstanceError::TooMany(1)), "{err:?}");
    assert_nothing_left(&h, "b");
    // Room again once one is removed.
    m.delete(&t(), &n("a"), false).await.unwrap();
    m.create(&t(), &n("b"), None, Source::Template)
        .await
        .unwrap();
}

#[tokio::test]
async fn max_instances_holds_under_concurrent_creates() {
    let h = Harness::with(|s| s.max_instances = Some(1));
    let m = &h.manager;
    let (tt, a, b) = (t(), n("a"), n("b"));
    let (a, b) = tokio::join!(
        m.create(&tt, &a, None, Source::Template),
        m.create(&tt, &b, None, Source::Template),
    );
    let oks = [a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count();
    assert_eq!(oks, 1, "a: {a:?}\nb: {b:?}");
    assert_eq!(m.list(None).await.unwrap().len(), 1);
}

#[tokio::test]
async fn too_little_free_disk_is_disk_full() {
    let h = Harness::with(|s| s.min_free_disk = u64::MAX);
    let err = h
        .manager
        .create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap_err();
    assert!(
        matches!(err, InstanceError::DiskFull { min, .. } if min == u64::MAX),
        "{err:?}"
    );
    assert_nothing_left(&h, "a");
}

#[tokio::test]
async fn a_server_that_never_answers_is_not_ready_and_leaves_nothing() {
    let h = Harness::new();
    h.engine.set_broken(true);
    let err = h
        .manager
        .create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap_err();
    match &err {
        InstanceError::NotReady { what, log, .. } => {
            assert_eq!(what, "shop/a");
            assert!(log.contains("fake server log"), "the log is shown: {log}");
        }
        other => panic!("{other:?}"),
    }
    assert_nothing_left(&h, "a");
    // The name is free again once servers start.
    h.engine.set_broken(false);
    h.manager
        .create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_engine_that_is_down_is_an_engine_error_and_leaves_nothing() {
    let h = Harness::new();
    h.engine.set_unavailable(true);
    let err = h
        .manager
        .create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap_err();
    assert!(matches!(err, InstanceError::Engine(_)), "{err:?}");
    h.engine.set_unavailable(false);
    assert_nothing_left(&h, "a");
    h.manager
        .create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
}

#[tokio::test]
async fn two_instances_get_different_passwords_and_ports() {
    let h = Harness::new();
    let m = &h.manager;
    let a = m
        .create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    let b = m
        .create(&t(), &n("b"), None, Source::Template)
        .await
        .unwrap();
    assert_ne!(a.meta.password, b.meta.password);
    assert_ne!(a.port, b.port);
    assert!(h.engine.accepts(a.port.unwrap(), &a.meta.password));
    assert!(h.engine.accepts(b.port.unwrap(), &b.meta.password));
    assert!(!h.engine.accepts(a.port.unwrap(), &b.meta.password));
}

#[tokio::test]
async fn a_branch_from_a_snapshot_gets_the_snapshots_data_and_its_own_password() {
    let h = Harness::new();
    let m = &h.manager;
    let src = m
        .create(&t(), &n("src"), None, Source::Template)
        .await
        .unwrap();
    std::fs::write(h.path("instances/shop/src/data/marker"), b"saved").unwrap();
    let snap = SnapshotName::parse("s1").unwrap();
    m.snapshot(&t(), &n("src"), &snap, None).await.unwrap();
    // Written after the snapshot: not part of it.
    std::fs::write(h.path("instances/shop/src/data/later"), b"x").unwrap();

    let b = m
        .create(
            &t(),
            &n("branch"),
            None,
            Source::Snapshot(n("src"), snap.clone()),
        )
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(h.path("instances/shop/branch/data/marker")).unwrap(),
        b"saved"
    );
    assert!(!h.path("instances/shop/branch/data/later").exists());
    assert_eq!(b.meta.version.as_str(), "v1");
    assert_ne!(b.meta.password, src.meta.password);
    assert!(h.engine.accepts(b.port.unwrap(), &b.meta.password));
    // The source is still there, still answering.
    let s = m.get(&t(), &n("src")).await.unwrap();
    assert!(h.engine.accepts(s.port.unwrap(), &src.meta.password));
}

#[tokio::test]
async fn a_branch_from_an_unknown_snapshot_is_snapshot_not_found() {
    let h = Harness::new();
    let m = &h.manager;
    m.create(&t(), &n("src"), None, Source::Template)
        .await
        .unwrap();
    let snap = SnapshotName::parse("nope").unwrap();
    let err = m
        .create(&t(), &n("b"), None, Source::Snapshot(n("src"), snap))
        .await
        .unwrap_err();
    assert!(
        matches!(err, InstanceError::SnapshotNotFound(..)),
        "{err:?}"
    );
    assert_nothing_left(&h, "b");
}

#[tokio::test]
async fn concurrent_creates_of_one_name_yield_exactly_one_instance() {
    let h = Harness::new();
    let m = &h.manager;
    let (tt, x) = (t(), n("x"));
    let (a, b) = tokio::join!(
        m.create(&tt, &x, None, Source::Template),
        m.create(&tt, &x, None, Source::Template),
    );
    let (ok, err) = match (a, b) {
        (Ok(i), Err(e)) | (Err(e), Ok(i)) => (i, e),
        (a, b) => panic!("exactly one must succeed: {a:?} / {b:?}"),
    };
    assert!(matches!(err, InstanceError::AlreadyExists(..)), "{err:?}");
    let i = m.get(&t(), &n("x")).await.unwrap();
    assert_eq!(i.meta.password, ok.meta.password);
    assert!(h.engine.accepts(i.port.unwrap(), &ok.meta.password));
    assert_eq!(h.engine.names(), vec![h.container("x")]);
}

#[tokio::test]
async fn a_deleted_name_can_be_created_again_with_fresh_credentials() {
    let h = Harness::new();
    let m = &h.manager;
    let first = m
        .create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    std::fs::write(h.path("instances/shop/a/data/marker"), b"x").unwrap();
    m.delete(&t(), &n("a"), false).await.unwrap();
    let again = m
        .create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    assert_ne!(again.meta.password, first.meta.password);
    assert!(!h.path("instances/shop/a/data/marker").exists());
    assert!(h.engine.accepts(again.port.unwrap(), &again.meta.password));
}
