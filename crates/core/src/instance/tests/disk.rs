//! `instance_max_disk` after the fact (a data folder whose filesystem
//! cannot enforce it): the reaper's pass stops the instance past it, says
//! why, and leaves every other instance alone.

use crate::instance::InstanceState;
use dolly_names::SnapshotName;

use crate::disk_limit::DiskLimit;
use crate::instance::testing::{n, t, Harness};
use crate::instance::{ResetTarget, Source};

fn limited() -> Harness {
    let h = Harness::with(|s| s.instance_max_disk = Some(65536));
    assert_eq!(
        h.manager.context().disk_limit,
        DiskLimit::AfterTheFact(65536),
        "these tests need a temp folder that is not btrfs with quotas"
    );
    h
}

/// Writes `bytes` into the datadir of `shop/name`, as its server would.
fn grow(h: &Harness, name: &str, bytes: usize) {
    let f = h.path(&format!("instances/shop/{name}/data/shop/big.ibd"));
    std::fs::write(f, vec![7u8; bytes]).unwrap();
}

#[tokio::test]
async fn an_instance_past_the_limit_is_stopped_with_its_reason_and_others_keep_running() {
    let h = limited();
    let m = &h.manager;
    for name in ["full", "other"] {
        m.create(&t(), &n(name), None, Source::Template)
            .await
            .unwrap();
    }
    grow(&h, "full", 40_000);
    grow(&h, "other", 10_000);
    // Under the limit: nothing happens.
    m.reap_expired().await.unwrap();
    assert_eq!(
        m.get(&t(), &n("full")).await.unwrap().state,
        InstanceState::Running
    );

    grow(&h, "full", 80_000);
    m.reap_expired().await.unwrap();
    let full = m.get(&t(), &n("full")).await.unwrap();
    assert_eq!(full.state, InstanceState::Stopped);
    let reason = full.meta.stopped_reason.clone().expect("a reason");
    assert!(reason.contains("instance_max_disk"), "{reason}");
    assert_eq!(full.status, reason, "the status says why");
    let other = m.get(&t(), &n("other")).await.unwrap();
    assert_eq!(other.state, InstanceState::Running);
    assert!(other.meta.stopped_reason.is_none());
    // Nothing was removed.
    assert!(h.path("instances/shop/full/data/shop/big.ibd").exists());

    // A reset brings it back under the limit; the next pass keeps it.
    let i = m
        .reset(&t(), &n("full"), ResetTarget::Original)
        .await
        .unwrap();
    assert_eq!(i.state, InstanceState::Running);
    assert!(i.meta.stopped_reason.is_none(), "a start clears the reason");
    m.reap_expired().await.unwrap();
    assert_eq!(
        m.get(&t(), &n("full")).await.unwrap().state,
        InstanceState::Running
    );
}

#[tokio::test]
async fn snapshots_count_what_they_hold_beyond_the_template() {
    let h = limited();
    let m = &h.manager;
    m.create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    // A snapshot of an unchanged instance adds nothing.
    let s1 = SnapshotName::parse("s1").unwrap();
    m.snapshot(&t(), &n("a"), &s1, None).await.unwrap();
    m.reap_expired().await.unwrap();
    assert_eq!(
        m.get(&t(), &n("a")).await.unwrap().state,
        InstanceState::Running
    );
    // 40 KB written, then kept by a snapshot: 80 KB in all, past 64 KiB.
    grow(&h, "a", 40_000);
    let s2 = SnapshotName::parse("s2").unwrap();
    m.snapshot(&t(), &n("a"), &s2, None).await.unwrap();
    m.reap_expired().await.unwrap();
    assert_eq!(
        m.get(&t(), &n("a")).await.unwrap().state,
        InstanceState::Stopped
    );
}

#[tokio::test]
async fn without_a_limit_nothing_is_measured_or_stopped() {
    let h = Harness::new();
    let m = &h.manager;
    assert_eq!(m.context().disk_limit, DiskLimit::Off);
    m.create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    grow(&h, "a", 1 << 20);
    m.reap_expired().await.unwrap();
    assert_eq!(
        m.get(&t(), &n("a")).await.unwrap().state,
        InstanceState::Running
    );
}
