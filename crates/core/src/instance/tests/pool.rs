//! The warm pool over the fake engine.

use crate::instance::InstanceState;

use crate::instance::testing::{n, t, Harness};
use crate::instance::Source;

fn pooled(size: usize) -> Harness {
    Harness::with(|s| s.pool_size = size)
}

fn pool_containers(h: &Harness) -> Vec<String> {
    h.engine
        .names()
        .into_iter()
        .filter(|c| c.contains("pool."))
        .collect()
}

#[tokio::test]
async fn the_pool_is_off_by_default() {
    let h = Harness::new();
    h.manager.refill_pools().await.unwrap();
    let p = h.manager.pool_status(&t()).await.unwrap();
    assert_eq!((p.size, p.ready), (0, 0));
    assert!(h.engine.names().is_empty());
}

#[tokio::test]
async fn refill_fills_the_pool_and_members_are_not_instances() {
    let h = pooled(2);
    h.manager.refill_pools().await.unwrap();
    let p = h.manager.pool_status(&t()).await.unwrap();
    assert_eq!((p.size, p.ready), (2, 2));
    assert_eq!(pool_containers(&h).len(), 2);
    assert!(h.manager.list(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_create_takes_a_ready_member_without_a_restart() {
    let h = pooled(1);
    let m = &h.manager;
    m.refill_pools().await.unwrap();
    let member = pool_containers(&h).remove(0);
    let before = h.engine.names();
    let i = m
        .create(&t(), &n("fast"), None, Source::Template)
        .await
        .unwrap();
    assert_eq!(i.state, InstanceState::Running);
    // The member's container became the instance's, renamed, not re-created.
    assert!(h.engine.names().contains(&h.container("fast")));
    assert!(!h.engine.names().contains(&member));
    assert_eq!(h.engine.names().len(), before.len());
    assert!(h.engine.accepts(i.port.unwrap(), &i.meta.password));
    assert_eq!(m.pool_status(&t()).await.unwrap().ready, 0);
    // It is a complete instance: get, list, and it survives a restart.
    assert_eq!(m.get(&t(), &n("fast")).await.unwrap().port, i.port);
    m.reconcile().await.unwrap();
    m.heal(true).await.unwrap();
    let again = m.get(&t(), &n("fast")).await.unwrap();
    assert_eq!((again.state, again.port), (InstanceState::Running, i.port));
    // Refill replaces it.
    m.refill_pools().await.unwrap();
    assert_eq!(m.pool_status(&t()).await.unwrap().ready, 1);
}

#[tokio::test]
async fn handed_out_instances_get_distinct_passwords() {
    let h = pooled(3);
    let m = &h.manager;
    m.refill_pools().await.unwrap();
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
}

#[tokio::test]
async fn an_empty_pool_falls_back_to_the_cold_path() {
    let h = pooled(1);
    let m = &h.manager;
    let i = m
        .create(&t(), &n("cold"), None, Source::Template)
        .await
        .unwrap();
    assert_eq!(i.state, InstanceState::Running);
}

#[tokio::test]
async fn members_of_an_old_version_are_retired_and_creates_get_the_new_data() {
    let h = pooled(1);
    let m = &h.manager;
    m.refill_pools().await.unwrap();
    let old = pool_containers(&h);
    h.publish("v2");
    m.refill_pools().await.unwrap();
    let new = pool_containers(&h);
    assert_eq!(new.len(), 1);
    assert_ne!(old, new);
    let i = m
        .create(&t(), &n("fresh"), None, Source::Template)
        .await
        .unwrap();
    assert_eq!(i.meta.version.as_str(), "v2");
}

#[tokio::test]
async fn a_create_right_after_an_update_never_gets_an_old_member() {
    let h = pooled(1);
    let m = &h.manager;
    m.refill_pools().await.unwrap();
    h.publish("v2");
    // No refill pass yet: the v1 member must not be handed out.
    let i = m
        .create(&t(), &n("x"), None, Source::Template)
        .await
        .unwrap();
    assert_eq!(i.meta.version.as_str(), "v2");
}

#[tokio::test]
async fn the_per_template_override_is_kept_and_shrinks_or_grows_the_pool() {
    let h = Harness::new();
    let m = &h.manager;
    let p = m.set_pool_size(&t(), 2).await.unwrap();
    assert_eq!(p.size, 2);
    m.refill_pools().await.unwrap();
    assert_eq!(m.pool_status(&t()).await.unwrap().ready, 2);
    m.set_pool_size(&t(), 1).await.unwrap();
    m.refill_pools().await.unwrap();
    assert_eq!(pool_containers(&h).len(), 1);
    assert_eq!(
        m.context()
            .store
            .blocking()
            .pool_size(&t())
            .unwrap()
            .unwrap()
            .size,
        1
    );
}

#[tokio::test]
async fn members_do_not_count_toward_max_instances() {
    let h = Harness::with(|s| {
        s.pool_size = 2;
        s.max_instances = Some(1);
    });
    let m = &h.manager;
    m.refill_pools().await.unwrap();
    m.create(&t(), &n("only"), None, Source::Template)
        .await
        .unwrap();
    assert!(m
        .create(&t(), &n("second"), None, Source::Template)
        .await
        .is_err());
}

#[tokio::test]
async fn a_start_removes_the_pool_and_keeps_handed_out_instances() {
    let h = pooled(2);
    let m = &h.manager;
    m.refill_pools().await.unwrap();
    m.create(&t(), &n("kept"), None, Source::Template)
        .await
        .unwrap();
    m.reconcile().await.unwrap();
    assert!(pool_containers(&h).is_empty());
    assert_eq!(m.pool_status(&t()).await.unwrap().ready, 0);
    assert!(!h.path("pool/shop").read_dir().unwrap().any(|_| true));
    assert_eq!(
        m.get(&t(), &n("kept")).await.unwrap().state,
        InstanceState::Running
    );
}

#[tokio::test]
async fn a_hand_out_killed_after_the_rename_leaves_no_half_instance() {
    let h = pooled(1);
    let m = &h.manager;
    m.refill_pools().await.unwrap();
    let member = pool_containers(&h).remove(0);
    // What a crash after step 1 leaves: the name claimed, the container
    // renamed, the folder still in the pool, no meta.json.
    m.context()
        .store
        .blocking()
        .claim_instance(&t(), &n("half"))
        .unwrap();
    dolly_engine::Engine::rename(h.engine.as_ref(), &member, &h.container("half"))
        .await
        .unwrap();
    let report = m.reconcile().await.unwrap();
    assert_eq!(report.removed_folders, 1);
    assert!(h.engine.names().is_empty(), "{:?}", h.engine.names());
    assert!(matches!(
        m.get(&t(), &n("half")).await,
        Err(crate::instance::InstanceError::NotFound(..))
    ));
    m.create(&t(), &n("half"), None, Source::Template)
        .await
        .unwrap();
}

/// A member's container the engine created after its dollyd died (the
/// fill's folder gone with the restart's `clear_pool`) is swept by the
/// reaper's pass; one whose member still has its folder is kept.
#[tokio::test]
async fn a_pool_container_created_after_its_fill_died_is_swept() {
    let h = pooled(1);
    let m = &h.manager;
    m.refill_pools().await.unwrap();
    let member = pool_containers(&h).remove(0);
    let spec = h.engine.spec(&member).unwrap();
    h.engine.lose(&member);
    h.engine.create_only(&spec);
    assert_eq!(m.sweep_orphan_containers().await.unwrap(), 0);
    assert!(h.engine.names().contains(&member));

    m.context().store.blocking().clear_pool().unwrap();
    assert_eq!(m.sweep_orphan_containers().await.unwrap(), 1);
    assert!(!h.engine.names().contains(&member));
}
