//! Quotas under concurrency: instances and snapshots being made count, so
//! any number of requests at once never ends above a limit.

use futures_util::future::join_all;

use crate::instance::testing::{n, t, Harness};
use crate::instance::{InstanceError, Source};
use crate::users::{Actor, Role};

fn member(name: &str, max_instances: Option<usize>, max_snapshots: Option<usize>) -> Actor {
    Actor {
        name: name.to_owned(),
        role: Role::Member,
        max_instances,
        max_snapshots,
    }
}

/// Sends `count` creates at once as `actor`, named `PREFIX-i`; how many
/// succeeded, and every error that is not the expected refusal.
async fn creates_at_once(h: &Harness, actor: &Actor, prefix: &str, count: usize) -> usize {
    let names: Vec<_> = (0..count).map(|i| n(&format!("{prefix}-{i}"))).collect();
    let tt = t();
    let results = join_all(names.iter().map(|name| {
        h.manager
            .create_for(&tt, name, None, Source::Template, Some(actor))
    }))
    .await;
    let mut ok = 0;
    for r in results {
        match r {
            Ok(_) => ok += 1,
            Err(InstanceError::QuotaReached { .. } | InstanceError::TooMany(_)) => {}
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_creates_never_pass_a_users_max_instances() {
    let h = Harness::new();
    let alice = member("alice", Some(5), None);
    assert_eq!(creates_at_once(&h, &alice, "first", 3).await, 3);
    // The finding: 12 at once on top of 3 gave 4 more. Now: exactly 2.
    assert_eq!(creates_at_once(&h, &alice, "burst", 20).await, 2);
    assert_eq!(h.manager.owned_count("alice").await.unwrap(), 5);
    let listed = h.manager.list(None).await.unwrap();
    assert_eq!(listed.len(), 5, "only alice's five exist");
    // Nothing of the refused ones is left, and bob's quota is his own.
    let bob = member("bob", Some(2), None);
    assert_eq!(creates_at_once(&h, &bob, "bob", 20).await, 2);
    assert_eq!(h.manager.owned_count("alice").await.unwrap(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_creates_never_pass_the_global_max_instances() {
    let h = Harness::with(|s| s.max_instances = Some(7));
    let users: Vec<Actor> = (0..4)
        .map(|i| member(&format!("u{i}"), None, None))
        .collect();
    let tt = t();
    let names: Vec<_> = (0..24).map(|i| n(&format!("g-{i}"))).collect();
    let results = join_all(names.iter().enumerate().map(|(i, name)| {
        h.manager
            .create_for(&tt, name, None, Source::Template, Some(&users[i % 4]))
    }))
    .await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 7, "{results:?}");
    assert_eq!(h.manager.list(None).await.unwrap().len(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_create_gives_its_reservation_back() {
    let h = Harness::new();
    let alice = member("alice", Some(2), None);
    h.engine.set_broken(true);
    let tt = t();
    for i in 0..3 {
        let name = n(&format!("broken-{i}"));
        let e = h
            .manager
            .create_for(&tt, &name, None, Source::Template, Some(&alice))
            .await
            .unwrap_err();
        assert!(matches!(e, InstanceError::NotReady { .. }), "{e:?}");
    }
    h.engine.set_broken(false);
    assert_eq!(creates_at_once(&h, &alice, "after", 20).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_snapshots_never_pass_max_snapshots() {
    let h = Harness::with(|s| s.max_snapshots = Some(9));
    let alice = member("alice", None, Some(4));
    let bob = member("bob", None, None);
    let tt = t();
    for (who, name) in [(&alice, "a1"), (&alice, "a2"), (&alice, "a3"), (&bob, "b1")] {
        h.manager
            .create_for(&tt, &n(name), None, Source::Template, Some(who))
            .await
            .unwrap();
    }
    let m = &h.manager;
    // 24 at once over alice's three instances: her 4, no more.
    let jobs: Vec<_> = (0..24)
        .map(|i| (n(["a1", "a2", "a3"][i % 3]), format!("s{i}")))
        .collect();
    let results = join_all(jobs.iter().map(|(inst, s)| {
        let s = dolly_names::SnapshotName::parse(s).unwrap();
        let (tt, alice) = (tt.clone(), alice.clone());
        async move { m.snapshot_for(&tt, inst, &s, None, Some(&alice)).await }
    }))
    .await;
    for r in &results {
        if let Err(e) = r {
            assert!(
                matches!(e, InstanceError::SnapshotQuotaReached { max: 4, .. }),
                "{e:?}"
            );
        }
    }
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 4);
    assert_eq!(h.manager.snapshot_count(Some("alice")).await.unwrap(), 4);
    // bob has no quota of his own: the global 9 stops him at 5.
    let b1 = n("b1");
    let results = join_all((0..20).map(|i| {
        let s = dolly_names::SnapshotName::parse(&format!("b{i}")).unwrap();
        let (tt, b1, bob) = (tt.clone(), b1.clone(), bob.clone());
        async move { m.snapshot_for(&tt, &b1, &s, None, Some(&bob)).await }
    }))
    .await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 5);
    assert!(results
        .iter()
        .any(|r| matches!(r, Err(InstanceError::TooManySnapshots(9)))));
    assert_eq!(h.manager.snapshot_count(None).await.unwrap(), 9);
}
