//! Snapshots: saving, listing, removing, and promoting one to a template.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::instance::InstanceState;
use dolly_names::{SnapshotName, TemplateName};

use crate::instance::testing::{n, t, Harness};
use crate::instance::{InstanceError, Source};
use crate::template;

fn s(name: &str) -> SnapshotName {
    SnapshotName::parse(name).unwrap()
}

fn marker(h: &Harness, name: &str) -> std::path::PathBuf {
    h.path(&format!("instances/shop/{name}/data/marker"))
}

/// Templates are published read-only: make a tree removable again so the
/// temporary folder goes away for users other than root too.
fn make_writable(p: &Path) {
    let Ok(meta) = std::fs::symlink_metadata(p) else {
        return;
    };
    if meta.is_dir() {
        let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755));
        for entry in std::fs::read_dir(p).into_iter().flatten().flatten() {
            make_writable(&entry.path());
        }
    }
}

#[tokio::test]
async fn a_snapshot_of_a_running_instance_keeps_it_running_with_its_credentials() {
    let h = Harness::new();
    let m = &h.manager;
    let a = m
        .create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    std::fs::write(marker(&h, "a"), b"saved").unwrap();
    let snap = m
        .snapshot(
            &t(),
            &n("a"),
            &s("one"),
            Some("before the migration".into()),
        )
        .await
        .unwrap();
    assert_eq!(snap.name, s("one"));
    assert_eq!(snap.message.as_deref(), Some("before the migration"));
    assert_eq!(snap.template_version.as_str(), "v1");
    assert!(snap.size_bytes > 0);
    assert_eq!(
        std::fs::read(h.path("instances/shop/a/snapshots/one/data/marker")).unwrap(),
        b"saved"
    );
    let i = m.get(&t(), &n("a")).await.unwrap();
    assert_eq!(i.state, InstanceState::Running);
    assert_eq!(i.port, a.port);
    assert!(h.engine.accepts(i.port.unwrap(), &a.meta.password));
}

#[tokio::test]
async fn a_snapshot_of_a_stopped_instance_leaves_it_stopped() {
    let h = Harness::new();
    let m = &h.manager;
    m.create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    std::fs::write(marker(&h, "a"), b"saved").unwrap();
    m.stop(&t(), &n("a")).await.unwrap();
    m.snapshot(&t(), &n("a"), &s("one"), None).await.unwrap();
    assert!(h
        .path("instances/shop/a/snapshots/one/data/marker")
        .exists());
    let i = m.get(&t(), &n("a")).await.unwrap();
    assert_eq!(i.state, InstanceState::Stopped);
    assert!(i.meta.stopped);
}

#[tokio::test]
async fn a_snapshot_name_is_taken_once_and_the_first_is_kept() {
    let h = Harness::new();
    let m = &h.manager;
    m.create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    std::fs::write(marker(&h, "a"), b"first").unwrap();
    m.snapshot(&t(), &n("a"), &s("one"), None).await.unwrap();
    std::fs::write(marker(&h, "a"), b"second").unwrap();
    let err = m
        .snapshot(&t(), &n("a"), &s("one"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, InstanceError::SnapshotExists(..)), "{err:?}");
    assert_eq!(
        std::fs::read(h.path("instances/shop/a/snapshots/one/data/marker")).unwrap(),
        b"first"
    );
    assert_eq!(m.list_snapshots(&t(), &n("a")).await.unwrap().len(), 1);
}

#[tokio::test]
async fn snapshots_are_listed_oldest_first() {
    let h = Harness::new();
    let m = &h.manager;
    m.create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    for name in ["zeta", "alpha", "mid"] {
        m.snapshot(&t(), &n("a"), &s(name), None).await.unwrap();
    }
    let names: Vec<String> = m
        .list_snapshots(&t(), &n("a"))
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(names, vec!["zeta", "alpha", "mid"]);
}

#[tokio::test]
async fn a_removed_snapshot_is_gone() {
    let h = Harness::new();
    let m = &h.manager;
    m.create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    m.snapshot(&t(), &n("a"), &s("one"), None).await.unwrap();
    m.snapshot(&t(), &n("a"), &s("two"), None).await.unwrap();
    m.remove_snapshot(&t(), &n("a"), &s("one")).await.unwrap();
    let left: Vec<String> = m
        .list_snapshots(&t(), &n("a"))
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(left, vec!["two"]);
    assert!(!h.path("instances/shop/a/snapshots/one").exists());
    let err = m
        .remove_snapshot(&t(), &n("a"), &s("one"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, InstanceError::SnapshotNotFound(..)),
        "{err:?}"
    );
    // The instance itself is untouched.
    assert_eq!(
        m.get(&t(), &n("a")).await.unwrap().state,
        InstanceState::Running
    );
}

#[tokio::test]
async fn snapshots_of_a_missing_instance_are_not_found() {
    let h = Harness::new();
    let m = &h.manager;
    let err = m
        .snapshot(&t(), &n("nope"), &s("one"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, InstanceError::NotFound(..)), "{err:?}");
    assert!(!h.path("instances/shop/nope").exists(), "nothing made");
    let err = m.list_snapshots(&t(), &n("nope")).await.unwrap_err();
    assert!(matches!(err, InstanceError::NotFound(..)), "{err:?}");
}

#[tokio::test]
async fn a_snapshot_does_not_change_when_the_instance_does() {
    let h = Harness::new();
    let m = &h.manager;
    m.create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    std::fs::write(marker(&h, "a"), b"before").unwrap();
    m.snapshot(&t(), &n("a"), &s("one"), None).await.unwrap();
    std::fs::write(marker(&h, "a"), b"after").unwrap();
    assert_eq!(
        std::fs::read(h.path("instances/shop/a/snapshots/one/data/marker")).unwrap(),
        b"before"
    );
}

#[tokio::test]
async fn a_promoted_snapshot_becomes_the_current_version_of_a_new_template() {
    let h = Harness::new();
    let m = &h.manager;
    m.create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    std::fs::write(marker(&h, "a"), b"promoted").unwrap();
    m.snapshot(&t(), &n("a"), &s("one"), None).await.unwrap();
    let blog = TemplateName::parse("blog").unwrap();

    let v = m.promote(&t(), &n("a"), &s("one"), &blog).await.unwrap();
    assert_eq!(v.database, "shop");
    assert_eq!(
        template::current_version(m.context(), &blog).await.unwrap(),
        Some(v.version.clone())
    );
    let datadir = h.path(&format!("templates/blog/{}", v.version));
    assert_eq!(std::fs::read(datadir.join("marker")).unwrap(), b"promoted");
    assert!(
        !datadir.join(".dolly-init.sql").exists(),
        "a template carries no init file"
    );
    // Instances of the new template get its data.
    let b = m
        .create(&blog, &n("b"), None, Source::Template)
        .await
        .unwrap();
    assert!(h.engine.accepts(b.port.unwrap(), &b.meta.password));
    assert_eq!(
        std::fs::read(h.path("instances/blog/b/data/marker")).unwrap(),
        b"promoted"
    );
    make_writable(&h.path("templates/blog"));
}

#[tokio::test]
async fn promoting_an_unknown_snapshot_is_not_found_and_makes_no_template() {
    let h = Harness::new();
    let m = &h.manager;
    m.create(&t(), &n("a"), None, Source::Template)
        .await
        .unwrap();
    let blog = TemplateName::parse("blog").unwrap();
    let err = m
        .promote(&t(), &n("a"), &s("nope"), &blog)
        .await
        .unwrap_err();
    assert!(
        matches!(err, InstanceError::SnapshotNotFound(..)),
        "{err:?}"
    );
    assert_eq!(
        template::current_version(m.context(), &blog).await.unwrap(),
        None
    );
}
