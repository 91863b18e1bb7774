//! What a crash (kill -9) leaves between the steps of an operation, built
//! by hand, and what the next start makes of it.

use std::fs;

use crate::instance::InstanceState;
use dolly_names::SnapshotName;

use crate::instance::testing::{n, t, Harness};
use crate::instance::Source;
use crate::store::Pending;

/// `i1` of `shop` at v1 with a marker file, then v2 published; the state a
/// reset to v2 leaves after its step `upto` (1: cloned, 2: intent written,
/// 3: half swapped, 4: swapped).
async fn reset_interrupted_after(upto: u8) -> Harness {
    let h = Harness::new();
    let m = &h.manager;
    m.create(&t(), &n("i1"), None, Source::Template)
        .await
        .unwrap();
    let store = m.context().store.blocking();
    fs::write(store.instance_data(&t(), &n("i1")).join("marker"), b"old").unwrap();
    let v2 = h.publish("v2");
    let new = store.reset_scratch(&t(), &n("i1"));
    crate::clone::clone_tree(
        &store.version_data(&t(), &v2),
        &new,
        crate::clone::CloneMode::Copy,
        m.context().image().await.unwrap().owner,
    )
    .unwrap();
    h.engine.lose(&h.container("i1"));
    if upto >= 2 {
        let mut meta = store.read_instance(&t(), &n("i1")).unwrap().unwrap();
        meta.pending = Some(Pending::Reset { version: v2 });
        store.write_instance(&meta).unwrap();
    }
    if upto >= 3 {
        store.set_aside_data(&t(), &n("i1")).unwrap();
    }
    if upto >= 4 {
        fs::rename(&new, store.instance_data(&t(), &n("i1"))).unwrap();
    }
    h
}

async fn restart(h: &Harness) {
    h.manager.reconcile().await.unwrap();
    h.manager.heal(true).await.unwrap();
}

async fn check_running(h: &Harness, version: &str, marker: bool) {
    let i = h.manager.get(&t(), &n("i1")).await.unwrap();
    assert_eq!(i.state, InstanceState::Running);
    assert_eq!(i.meta.version.as_str(), version);
    assert_eq!(i.meta.pending, None);
    assert!(
        h.engine.accepts(i.port.unwrap(), &i.meta.password),
        "own credentials"
    );
    let data = h.manager.context().store.instance_data(&t(), &n("i1"));
    assert_eq!(data.join("marker").exists(), marker);
    let tmp: Vec<_> = fs::read_dir(h.path("tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        tmp.iter().all(|f| f.to_string_lossy().starts_with('.')),
        "tmp/: {tmp:?}"
    );
}

#[tokio::test]
async fn a_reset_killed_after_cloning_leaves_the_instance_as_it_was() {
    let h = reset_interrupted_after(1).await;
    restart(&h).await;
    check_running(&h, "v1", true).await;
}

#[tokio::test]
async fn a_reset_killed_after_its_intent_rolls_back() {
    let h = reset_interrupted_after(2).await;
    restart(&h).await;
    check_running(&h, "v1", true).await;
}

#[tokio::test]
async fn a_reset_killed_between_the_two_renames_rolls_forward() {
    let h = reset_interrupted_after(3).await;
    restart(&h).await;
    check_running(&h, "v2", false).await;
}

#[tokio::test]
async fn a_reset_killed_after_the_swap_rolls_forward() {
    let h = reset_interrupted_after(4).await;
    restart(&h).await;
    check_running(&h, "v2", false).await;
}

#[tokio::test]
async fn a_reset_whose_datadirs_are_both_gone_is_quarantined_not_guessed() {
    let h = reset_interrupted_after(3).await;
    let store = h.manager.context().store.blocking();
    // Lose both datadirs (an operator cleaned tmp/ by hand).
    for e in fs::read_dir(h.path("tmp")).unwrap().flatten() {
        if !e.file_name().to_string_lossy().starts_with('.') {
            fs::remove_dir_all(e.path()).unwrap();
        }
    }
    let report = h.manager.reconcile().await.unwrap();
    assert_eq!(report.quarantined, 1);
    assert!(!store.instance_exists(&t(), &n("i1")));
}

#[tokio::test]
async fn a_snapshot_killed_before_publishing_leaves_nothing_and_the_name_free() {
    let h = Harness::new();
    let m = &h.manager;
    m.create(&t(), &n("i1"), None, Source::Template)
        .await
        .unwrap();
    let s = SnapshotName::parse("s1").unwrap();
    let store = m.context().store.blocking();
    // What the snapshot had made when it died: its scratch, the server stopped.
    let scratch = store.snapshot_scratch(&t(), &n("i1"), &s).unwrap();
    fs::create_dir(scratch.join("data")).unwrap();
    h.engine.kill(&h.container("i1"));
    restart(&h).await;
    assert!(!scratch.exists());
    assert!(m.list_snapshots(&t(), &n("i1")).await.unwrap().is_empty());
    assert_eq!(
        m.get(&t(), &n("i1")).await.unwrap().state,
        InstanceState::Running
    );
    m.snapshot(&t(), &n("i1"), &s, None).await.unwrap();
}

#[tokio::test]
async fn a_half_made_snapshot_of_an_older_dolly_is_removed_at_start() {
    let h = Harness::new();
    let m = &h.manager;
    m.create(&t(), &n("i1"), None, Source::Template)
        .await
        .unwrap();
    let s = SnapshotName::parse("s1").unwrap();
    m.context()
        .store
        .blocking()
        .claim_snapshot(&t(), &n("i1"), &s)
        .unwrap();
    restart(&h).await;
    m.snapshot(&t(), &n("i1"), &s, None).await.unwrap();
    assert_eq!(m.list_snapshots(&t(), &n("i1")).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_delete_killed_after_unlinking_completes_at_start() {
    let h = Harness::new();
    let m = &h.manager;
    m.create(&t(), &n("i1"), None, Source::Template)
        .await
        .unwrap();
    let store = m.context().store.blocking();
    let aside = store.unlink_instance(&t(), &n("i1")).unwrap().unwrap();
    assert!(aside.starts_with(h.path("tmp")));
    let report = m.reconcile().await.unwrap();
    assert_eq!(report.removed_containers, 1);
    assert!(!aside.exists());
    assert!(h.engine.names().is_empty());
    assert!(matches!(
        m.get(&t(), &n("i1")).await,
        Err(crate::instance::InstanceError::NotFound(..))
    ));
    // The name is free again.
    m.create(&t(), &n("i1"), None, Source::Template)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_failed_create_under_an_unknown_template_leaves_no_folder() {
    let h = Harness::new();
    let m = &h.manager;
    let ghost = dolly_names::TemplateName::parse("ghost").unwrap();
    assert!(m
        .create(&ghost, &n("x"), None, Source::Template)
        .await
        .is_err());
    assert!(!h.path("instances/ghost").exists());
}

/// Random harness finding 7: a create in flight in the engine when dollyd
/// died finishes after the start's reconcile. The reaper's pass removes
/// that never-started container once its instance has no folder, and
/// leaves alone one whose instance exists.
#[tokio::test]
async fn a_container_created_after_reconcile_for_no_instance_is_swept() {
    let h = Harness::new();
    let m = &h.manager;
    for name in ["gone", "kept"] {
        m.create(&t(), &n(name), None, Source::Template)
            .await
            .unwrap();
    }
    let gone = h.engine.spec(&h.container("gone")).unwrap();
    let kept = h.engine.spec(&h.container("kept")).unwrap();
    m.delete(&t(), &n("gone"), false).await.unwrap();
    // The engine finishes the creates it had been asked for.
    h.engine.create_only(&gone);
    h.engine.lose(&h.container("kept"));
    h.engine.create_only(&kept);

    assert_eq!(m.sweep_orphan_containers().await.unwrap(), 1);
    let names = h.engine.names();
    assert!(!names.contains(&h.container("gone")), "{names:?}");
    assert!(names.contains(&h.container("kept")), "{names:?}");
    // The instance that exists is started again by heal, as before.
    restart(&h).await;
    let i = m.get(&t(), &n("kept")).await.unwrap();
    assert_eq!(i.state, InstanceState::Running);
}
