//! The reaper removes what its user asked it to, and nothing else.

use std::time::Duration;

use crate::instance::{InstanceState, Reap};
use chrono::Utc;

use crate::instance::testing::{n, t, Harness};
use crate::instance::Source;

/// Creates `shop/name` with a 1 s lease.
async fn create_short(h: &Harness, name: &str) {
    h.manager
        .create(
            &t(),
            &n(name),
            Some(Duration::from_secs(1)),
            Source::Template,
        )
        .await
        .unwrap();
}

/// Moves the expiry of `shop/name` into the past (instead of sleeping).
fn expire(h: &Harness, name: &str) {
    let store = h.manager.context().store.blocking();
    let mut meta = store.read_instance(&t(), &n(name)).unwrap().unwrap();
    meta.expires_at = Some(Utc::now() - chrono::Duration::seconds(10));
    store.write_instance(&meta).unwrap();
}

fn expired() -> Reap {
    Reap {
        expired: true,
        ..Reap::default()
    }
}

fn dead() -> Reap {
    Reap {
        dead: true,
        ..Reap::default()
    }
}

fn names(h: &Harness) -> Vec<String> {
    std::fs::read_dir(h.path("instances/shop"))
        .map(|d| {
            let mut v: Vec<String> = d
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn expired_instances_are_reaped_and_others_kept() {
    let h = Harness::new();
    let m = &h.manager;
    create_short(&h, "old").await;
    m.create(&t(), &n("young"), None, Source::Template)
        .await
        .unwrap();
    expire(&h, "old");

    let report = m.reap(&expired()).await.unwrap();
    assert_eq!(report.instances.len(), 1, "{report:?}");
    let r = &report.instances[0];
    assert_eq!((r.name.as_str(), r.reason.as_str()), ("old", "expired"));
    assert!(r.removed);
    assert_eq!(names(&h), vec!["young"]);
    assert_eq!(h.engine.names(), vec![h.container("young")]);
}

#[tokio::test]
async fn an_instance_not_yet_expired_or_without_expiry_is_kept() {
    let h = Harness::new();
    let m = &h.manager;
    create_short(&h, "soon").await;
    m.create(&t(), &n("forever"), Some(Duration::ZERO), Source::Template)
        .await
        .unwrap();
    let report = m.reap(&expired()).await.unwrap();
    assert!(report.instances.is_empty(), "{report:?}");
    assert_eq!(names(&h), vec!["forever", "soon"]);
}

#[tokio::test]
async fn a_protected_instance_is_never_reaped() {
    let h = Harness::new();
    let m = &h.manager;
    create_short(&h, "keep").await;
    m.protect(&t(), &n("keep"), true).await.unwrap();
    expire(&h, "keep");
    h.engine.kill(&h.container("keep"));
    let all = Reap {
        expired: true,
        dead: true,
        unhealthy: false,
        dry_run: false,
    };
    let report = m.reap(&all).await.unwrap();
    assert!(report.instances.is_empty(), "{report:?}");
    assert!(m.get(&t(), &n("keep")).await.is_ok());
}

#[tokio::test]
async fn a_dry_run_lists_but_removes_nothing() {
    let h = Harness::new();
    let m = &h.manager;
    let old = m
        .create(
            &t(),
            &n("old"),
            Some(Duration::from_secs(1)),
            Source::Template,
        )
        .await
        .unwrap();
    expire(&h, "old");
    let report = m
        .reap(&Reap {
            expired: true,
            dry_run: true,
            ..Reap::default()
        })
        .await
        .unwrap();
    assert_eq!(report.instances.len(), 1, "{report:?}");
    assert_eq!(report.instances[0].reason, "expired");
    assert!(!report.instances[0].removed);
    let i = m.get(&t(), &n("old")).await.unwrap();
    assert_eq!(i.state, InstanceState::Running);
    assert!(h.engine.accepts(i.port.unwrap(), &old.meta.password));
}

#[tokio::test]
async fn a_dead_instance_is_reaped_with_dead_but_a_stopped_one_is_not() {
    let h = Harness::new();
    let m = &h.manager;
    for name in ["crashed", "paused"] {
        m.create(&t(), &n(name), None, Source::Template)
            .await
            .unwrap();
    }
    h.engine.kill(&h.container("crashed"));
    m.stop(&t(), &n("paused")).await.unwrap();

    let report = m.reap(&dead()).await.unwrap();
    assert_eq!(report.instances.len(), 1, "{report:?}");
    let r = &report.instances[0];
    assert_eq!((r.name.as_str(), r.reason.as_str()), ("crashed", "dead"));
    assert!(r.removed);
    assert_eq!(names(&h), vec!["paused"]);
    assert_eq!(
        m.get(&t(), &n("paused")).await.unwrap().state,
        InstanceState::Stopped
    );
}

#[tokio::test]
async fn a_dead_instance_is_not_reaped_unless_asked() {
    let h = Harness::new();
    let m = &h.manager;
    m.create(&t(), &n("crashed"), None, Source::Template)
        .await
        .unwrap();
    h.engine.kill(&h.container("crashed"));
    let report = m.reap(&expired()).await.unwrap();
    assert!(report.instances.is_empty(), "{report:?}");
    assert_eq!(names(&h), vec!["crashed"]);
}

#[tokio::test]
async fn the_reaper_pass_removes_expired_and_counts_them() {
    let h = Harness::new();
    let m = &h.manager;
    create_short(&h, "a").await;
    create_short(&h, "b").await;
    create_short(&h, "c").await;
    expire(&h, "a");
    expire(&h, "b");
    assert_eq!(m.reap_expired().await.unwrap(), 2);
    assert_eq!(names(&h), vec!["c"]);
    assert_eq!(m.reap_expired().await.unwrap(), 0);
}

#[tokio::test]
async fn an_expired_stopped_instance_is_reaped_too() {
    let h = Harness::new();
    let m = &h.manager;
    create_short(&h, "a").await;
    m.stop(&t(), &n("a")).await.unwrap();
    expire(&h, "a");
    let report = m.reap(&expired()).await.unwrap();
    assert_eq!(report.instances.len(), 1, "{report:?}");
    assert!(report.instances[0].removed);
    assert!(names(&h).is_empty());
    assert!(h.engine.names().is_empty());
}
