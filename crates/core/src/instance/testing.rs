//! A manager over the fake engine and a temporary data folder: what the
//! unit tests of instances build on.

use std::sync::Arc;

use dolly_engine::fake::FakeEngine;
use dolly_engine::Engine;
use dolly_names::{InstanceName, TemplateName, VersionName};

use super::{Manager, Prober};
use crate::clone::Owner;
use crate::config::Settings;
use crate::context::Context;
use crate::dbserver::{Flavor, ImageInfo};
use crate::store::{Scratch, VersionMeta};

/// Answers as the fake engine's servers would.
struct FakeProber(Arc<FakeEngine>);

#[async_trait::async_trait]
impl Prober for FakeProber {
    async fn ping(&self, _host: &str, port: u16, password: &str) -> Result<(), String> {
        if self.0.accepts(port, password) {
            Ok(())
        } else {
            Err("access denied or no server".to_owned())
        }
    }
}

/// A manager, its fake engine and its data folder (removed on drop).
pub(crate) struct Harness {
    pub manager: Manager,
    pub engine: Arc<FakeEngine>,
    pub dir: tempfile::TempDir,
}

pub(crate) fn t() -> TemplateName {
    TemplateName::parse("shop").expect("name")
}

pub(crate) fn n(s: &str) -> InstanceName {
    InstanceName::parse(s).expect("name")
}

impl Harness {
    /// A manager whose template `shop` has one published version `v1`.
    pub fn new() -> Self {
        Self::with(|_| {})
    }

    /// As [`Harness::new`], with settings changed by `edit`.
    pub fn with(edit: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = Settings::from_lookup(|key| match key {
            "data_dir" => Some(dir.path().display().to_string()),
            "ready_timeout" => Some("2s".to_owned()),
            _ => None,
        })
        .expect("settings");
        edit(&mut settings);
        let engine = Arc::new(FakeEngine::new());
        let dyn_engine: Arc<dyn Engine> = engine.clone();
        let ctx = Context::new(settings, dyn_engine)
            .expect("context")
            .with_prober(Arc::new(FakeProber(Arc::clone(&engine))));
        // SAFETY: plain libc getters.
        let owner = unsafe {
            Owner {
                uid: libc::getuid(),
                gid: libc::getgid(),
            }
        };
        ctx.set_image(ImageInfo {
            flavor: Flavor::MariaDb,
            owner,
            version: "fake 11.8".to_owned(),
            id: "sha256:fake".to_owned(),
        });
        let h = Self {
            manager: Manager::new(Arc::new(ctx)),
            engine,
            dir,
        };
        h.publish("v1");
        h
    }

    /// Publishes version `v` of `shop` (a tiny datadir) and makes it current.
    pub fn publish(&self, v: &str) -> VersionName {
        let store = &self.manager.context().store;
        let v = VersionName::parse(v).expect("version");
        let work = store.scratch(&Scratch::Import(t(), v.clone()));
        std::fs::create_dir_all(work.join("shop")).expect("work");
        std::fs::write(work.join("ibdata1"), format!("data of {v}")).expect("write");
        let meta = VersionMeta {
            version: v.clone(),
            created_at: chrono::Utc::now(),
            source_dump: "shop.sql".into(),
            database: "shop".into(),
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
        store.publish_version(&t(), &meta, &work).expect("publish");
        v
    }

    /// The container name of `shop/name`.
    pub fn container(&self, name: &str) -> String {
        format!("dolly-shop.{name}")
    }

    /// A path inside the data folder, for tests that damage it by hand.
    pub fn path(&self, rel: &str) -> std::path::PathBuf {
        self.dir.path().join(rel)
    }
}
