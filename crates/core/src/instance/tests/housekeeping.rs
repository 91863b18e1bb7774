//! Reconcile, heal and reap never delete what a user saved.

use crate::instance::{InstanceState, Reap};
use dolly_names::SnapshotName;

use crate::instance::testing::{n, t, Harness};
use crate::instance::Source;

#[tokio::test]
async fn a_lost_container_of_a_protected_instance_with_a_snapshot_is_recreated_on_its_port() {
    let h = Harness::new();
    let m = &h.manager;
    let created = m
        .create(&t(), &n("keep"), None, Source::Template)
        .await
        .unwrap();
    let snap = SnapshotName::parse("before").unwrap();
    m.snapshot(&t(), &n("keep"), &snap, None).await.unwrap();
    m.protect(&t(), &n("keep"), true).await.unwrap();
    h.engine.lose(&h.container("keep"));

    let report = m.reconcile().await.unwrap();
    assert_eq!((report.kept, report.missing_containers), (1, 1));
    assert_eq!(report.removed_folders, 0);
    assert_eq!(m.heal(true).await.unwrap(), 1);

    let i = m.get(&t(), &n("keep")).await.unwrap();
    assert_eq!(i.state, InstanceState::Running);
    assert_eq!(i.port, created.port, "the saved port is kept");
    assert!(i.meta.protected);
    assert_eq!(i.meta.password, created.meta.password);
    assert!(h.engine.accepts(i.port.unwrap(), &i.meta.password));
    let snaps = m.list_snapshots(&t(), &n("keep")).await.unwrap();
    assert_eq!(snaps.len(), 1);
}

#[tokio::test]
async fn a_stopped_instance_whose_container_is_lost_stays_stopped_and_starts_on_demand() {
    let h = Harness::new();
    let m = &h.manager;
    let created = m
        .create(&t(), &n("paused"), None, Source::Template)
        .await
        .unwrap();
    m.stop(&t(), &n("paused")).await.unwrap();
    h.engine.lose(&h.container("paused"));

    let report = m.reconcile().await.unwrap();
    assert_eq!((report.kept, report.missing_containers), (1, 0));
    assert_eq!(m.heal(true).await.unwrap(), 0);
    let i = m.get(&t(), &n("paused")).await.unwrap();
    assert_eq!(i.state, InstanceState::Stopped);
    assert!(h.engine.names().is_empty(), "no container is made for it");

    let started = m.start(&t(), &n("paused")).await.unwrap();
    assert_eq!(started.state, InstanceState::Running);
    assert_eq!(started.port, created.port);
}

#[tokio::test]
async fn a_taken_port_gets_a_new_one_when_the_container_is_recreated() {
    let h = Harness::new();
    let m = &h.manager;
    let a = m
        .create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    h.engine.lose(&h.container("a"));
    // Someone else now publishes a's port.
    let squatter = dolly_engine::ContainerSpec {
        name: "squatter".into(),
        image: "x".into(),
        cmd: vec![],
        user: None,
        binds: vec![],
        publish: Some(dolly_engine::Publish {
            container_port: 1,
            host_ip: "0.0.0.0".parse().unwrap(),
            host_port: a.port,
        }),
        labels: Default::default(),
        memory_bytes: None,
        restart: dolly_engine::RestartPolicy::No,
        network_of: None,
    };
    dolly_engine::Engine::run(h.engine.as_ref(), &squatter)
        .await
        .unwrap();
    m.reconcile().await.unwrap();
    assert_eq!(m.heal(true).await.unwrap(), 1);
    let i = m.get(&t(), &n("a")).await.unwrap();
    assert_eq!(i.state, InstanceState::Running);
    assert_ne!(i.port, a.port);
    assert_eq!(i.meta.port, i.port, "the new port is saved");
}

#[tokio::test]
async fn damaged_metadata_is_quarantined_not_deleted() {
    let h = Harness::new();
    let m = &h.manager;
    m.create(&t(), &n("hurt"), None, Source::Template)
        .await
        .unwrap();
    std::fs::write(h.path("instances/shop/hurt/meta.json"), b"{ not json").unwrap();

    let report = m.reconcile().await.unwrap();
    assert_eq!(report.quarantined, 1);
    assert_eq!(report.removed_folders, 0);
    assert_eq!(
        report.removed_containers, 0,
        "its container is counted once, as quarantined"
    );
    assert!(!h.path("instances/shop/hurt").exists());
    let q = m.quarantined().await.unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].name, n("hurt"));
    assert!(q[0].reason.contains("damaged"), "{}", q[0].reason);
    assert!(q[0].path.join("data/ibdata1").exists(), "the data is kept");
    assert!(
        !h.engine.names().contains(&h.container("hurt")),
        "its container is stopped and removed"
    );
    // dolly keeps serving.
    m.create(&t(), &n("next"), None, Source::Template)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_half_made_instance_is_removed() {
    let h = Harness::new();
    let m = &h.manager;
    let store = m.context().store.blocking();
    store.claim_instance(&t(), &n("half")).unwrap();
    let report = m.reconcile().await.unwrap();
    assert_eq!(report.removed_folders, 1);
    assert!(!h.path("instances/shop/half").exists());
}

#[tokio::test]
async fn a_folder_with_snapshots_but_no_metadata_is_quarantined() {
    let h = Harness::new();
    let m = &h.manager;
    m.create(&t(), &n("s"), None, Source::Template)
        .await
        .unwrap();
    let snap = SnapshotName::parse("one").unwrap();
    m.snapshot(&t(), &n("s"), &snap, None).await.unwrap();
    std::fs::remove_file(h.path("instances/shop/s/meta.json")).unwrap();
    let report = m.reconcile().await.unwrap();
    assert_eq!((report.quarantined, report.removed_folders), (1, 0));
    let q = m.quarantined().await.unwrap();
    assert!(q[0].path.join("snapshots/one/data/ibdata1").exists());
}

#[tokio::test]
async fn delete_refuses_an_instance_whose_metadata_cannot_be_read() {
    let h = Harness::new();
    let m = &h.manager;
    m.create(&t(), &n("x"), None, Source::Template)
        .await
        .unwrap();
    std::fs::write(h.path("instances/shop/x/meta.json"), b"garbage").unwrap();
    assert!(m.delete(&t(), &n("x"), false).await.is_err());
    assert!(h.path("instances/shop/x/data").exists());
    // With force, the user's explicit wish wins.
    m.delete(&t(), &n("x"), true).await.unwrap();
    assert!(!h.path("instances/shop/x").exists());
}

#[tokio::test]
async fn versions_in_use_fail_closed_on_damaged_metadata() {
    use crate::template::VersionsInUse;
    let h = Harness::new();
    let m = &h.manager;
    m.create(&t(), &n("x"), None, Source::Template)
        .await
        .unwrap();
    let used = m.versions_in_use(&t()).await.unwrap();
    assert_eq!(used.len(), 1);
    std::fs::write(h.path("instances/shop/x/meta.json"), b"garbage").unwrap();
    assert!(m.versions_in_use(&t()).await.is_err());
}

#[tokio::test]
async fn the_reaper_heals_a_lost_container_instead_of_reaping_it_as_dead() {
    let h = Harness::new();
    let m = &h.manager;
    m.create(&t(), &n("lost"), None, Source::Template)
        .await
        .unwrap();
    h.engine.lose(&h.container("lost"));
    let report = m
        .reap(&Reap {
            dead: true,
            ..Reap::default()
        })
        .await
        .unwrap();
    assert!(report.instances.is_empty(), "{report:?}");
    m.reap_expired().await.unwrap();
    let i = m.get(&t(), &n("lost")).await.unwrap();
    assert_eq!(i.state, InstanceState::Running);
}

#[tokio::test]
async fn a_crashed_server_is_started_again_on_its_port() {
    let h = Harness::new();
    let m = &h.manager;
    let c = m
        .create(&t(), &n("c"), None, Source::Template)
        .await
        .unwrap();
    h.engine.kill(&h.container("c"));
    assert_eq!(
        m.get(&t(), &n("c")).await.unwrap().state,
        InstanceState::Dead
    );
    assert_eq!(m.heal(false).await.unwrap(), 1);
    let i = m.get(&t(), &n("c")).await.unwrap();
    assert_eq!((i.state, i.port), (InstanceState::Running, c.port));
}

#[tokio::test]
async fn containers_without_a_ready_instance_are_removed() {
    let h = Harness::new();
    let m = &h.manager;
    m.create(&t(), &n("gone"), None, Source::Template)
        .await
        .unwrap();
    // The folder vanished by hand; the container is an orphan.
    std::fs::remove_dir_all(h.path("instances/shop/gone")).unwrap();
    let report = m.reconcile().await.unwrap();
    assert_eq!(report.removed_containers, 1);
    assert!(h.engine.names().is_empty());
}
