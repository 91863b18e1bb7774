//! A context over the in-memory fake engine, for tests: core's own unit
//! tests and, through the `testing` feature, the server's engine-free tier.
//! One place answers "is this server up with this password" as the fake
//! engine's servers would, and publishes a tiny template version.

use std::sync::Arc;

use dolly_engine::fake::FakeEngine;
use dolly_engine::Engine;
use dolly_names::{TemplateName, VersionName};

use crate::clone::Owner;
use crate::config::Settings;
use crate::context::Context;
use crate::dbserver::{Flavor, ImageInfo};
use crate::instance::{ProbeError, Prober};
use crate::store::{Scratch, StoreError, VersionMeta};

/// Answers as the fake engine's servers would.
pub struct FakeProber(pub Arc<FakeEngine>);

#[async_trait::async_trait]
impl Prober for FakeProber {
    async fn ping(&self, _host: &str, port: u16, password: &str) -> Result<(), ProbeError> {
        if self.0.accepts(port, password) {
            Ok(())
        } else {
            Err(ProbeError::Refused(port))
        }
    }
}

/// A context over `engine`: its prober, and a MariaDB image owned by this
/// process's user, as if probed.
pub fn context(settings: Settings, engine: &Arc<FakeEngine>) -> Result<Context, StoreError> {
    let dyn_engine: Arc<dyn Engine> = engine.clone();
    // Fake forwarders run nothing: unless a test names a relay binary to
    // install, none is needed.
    let fake_relay = settings
        .forward_path
        .is_none()
        .then(|| settings.data_dir.join("bin/dolly-forward"));
    let ctx =
        Context::new(settings, dyn_engine)?.with_prober(Arc::new(FakeProber(Arc::clone(engine))));
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
    if let Some(relay) = fake_relay {
        let _ = ctx.forward_binary.set(relay);
    }
    Ok(ctx)
}

/// Publishes version `v` of template `t` (a tiny datadir) as current.
pub fn publish(ctx: &Context, t: &TemplateName, v: &VersionName) -> Result<(), StoreError> {
    let store = ctx.store.blocking();
    let work = store.scratch(&Scratch::Import(t.clone(), v.clone()));
    let made = std::fs::create_dir_all(work.join("shop"))
        .and_then(|()| std::fs::write(work.join("ibdata1"), format!("data of {v}")));
    made.map_err(|e| StoreError::io("write", &work, e))?;
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
    store.publish_version(t, &meta, &work)
}
