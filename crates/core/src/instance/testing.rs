//! A manager over the fake engine and a temporary data folder: what the
//! unit tests of instances build on.

use std::sync::Arc;

use dolly_engine::fake::FakeEngine;
use dolly_names::{InstanceName, TemplateName, VersionName};

use super::Manager;
use crate::config::Settings;

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
        let ctx = crate::fake::context(settings, &engine).expect("context");
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
        let v = VersionName::parse(v).expect("version");
        crate::fake::publish(self.manager.context(), &t(), &v).expect("publish");
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
