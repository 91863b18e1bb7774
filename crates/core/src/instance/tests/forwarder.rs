//! The forwarder's relay binary: an instance that needs a forwarder fails
//! clearly, naming the setting, when the binary is missing, and leaves
//! nothing behind.

use crate::instance::testing::{n, t, Harness};
use crate::instance::{CreateOptions, InstanceError, Source};

async fn create_behind_forwarder(h: &Harness, name: &str) -> Result<(), InstanceError> {
    let options = CreateOptions {
        standby: true,
        sleep_after: None,
    };
    h.manager
        .create_with(&t(), &n(name), None, Source::Template, None, &options)
        .await
        .map(|_| ())
}

#[tokio::test]
async fn a_missing_relay_fails_a_create_naming_forward_path() {
    let h = Harness::with(|s| s.forward_path = Some("/nonexistent/dolly-forward".into()));
    let err = create_behind_forwarder(&h, "a").await.unwrap_err();
    assert!(
        matches!(&err, InstanceError::ForwarderMissing { path, .. } if path.ends_with("dolly-forward")),
        "{err:?}"
    );
    let said = err.to_string();
    assert!(said.contains("forward_path"), "{said}");
    assert!(said.contains("/nonexistent/dolly-forward"), "{said}");
    assert!(h.engine.names().is_empty(), "{:?}", h.engine.names());
    assert!(!h.path("instances/shop/a").exists());
    // An ordinary instance needs no forwarder.
    h.manager
        .create(&t(), &n("b"), None, Source::Template)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_relay_that_is_no_executable_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let not_elf = dir.path().join("dolly-forward");
    std::fs::write(&not_elf, "#!/bin/sh\nexec socat\n").unwrap();
    let h = Harness::with(|s| s.forward_path = Some(not_elf.clone()));
    let err = create_behind_forwarder(&h, "a").await.unwrap_err();
    assert!(
        matches!(&err, InstanceError::ForwarderMissing { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("ELF"), "{err}");
}

#[tokio::test]
async fn the_relay_is_installed_in_the_data_folder_for_forwarders() {
    let dir = tempfile::tempdir().unwrap();
    let relay = dir.path().join("dolly-forward");
    std::fs::write(&relay, b"\x7fELF a relay").unwrap();
    let h = Harness::with(|s| s.forward_path = Some(relay.clone()));
    // The fake engine's servers cannot answer through a forwarder: the
    // create fails after the forwarder was made, which is what is looked at.
    let _ = create_behind_forwarder(&h, "a").await;
    let installed = h.path("bin/dolly-forward");
    assert_eq!(std::fs::read(&installed).unwrap(), b"\x7fELF a relay");
}

#[tokio::test]
async fn stray_standby_containers_go_but_the_server_and_the_new_standby_stay() {
    use dolly_engine::{ContainerSpec, Engine, RestartPolicy};
    let h = Harness::new();
    let standby = |instance: &str, g: u32| {
        let mut labels = h.manager.context().labels("standby");
        labels.insert(
            crate::instance::LABEL_TEMPLATE.to_owned(),
            "shop".to_owned(),
        );
        labels.insert(crate::instance::LABEL_NAME.to_owned(), instance.to_owned());
        ContainerSpec {
            name: format!("dolly-shop.{instance}.g{g}"),
            image: "img".to_owned(),
            cmd: Vec::new(),
            user: None,
            binds: Vec::new(),
            publish: None,
            labels,
            memory_bytes: None,
            restart: RestartPolicy::No,
            network_of: None,
        }
    };
    for (instance, g) in [("a", 1), ("a", 2), ("a", 3), ("b", 2)] {
        h.engine.run(&standby(instance, g)).await.unwrap();
    }
    // a's server is g1 (a committed standby), g3 the standby being made;
    // g2 was being created by a dollyd that was killed.
    h.manager
        .remove_stray_standbys(&t(), &n("a"), &["dolly-shop.a.g1", "dolly-shop.a.g3"])
        .await
        .unwrap();
    assert_eq!(
        h.engine.names(),
        ["dolly-shop.a.g1", "dolly-shop.a.g3", "dolly-shop.b.g2"]
    );
}
