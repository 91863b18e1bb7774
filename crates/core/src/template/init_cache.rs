//! The cached initial datadir: the server's initialisation
//! (`mariadb-install-db`, `mysqld --initialize-insecure`) runs once per
//! image id, and each import starts from a clone of its result.
//!
//! Invariant: an import's datadir is either initialised in its own
//! container or a clone of a complete cache entry (the store publishes an
//! entry by rename only after the initialisation exited 0).

use std::fs;
use std::path::Path;
use std::time::Instant;

use tracing::{debug, info, Instrument};

use super::ImportError;
use crate::clone::{self, own_tree, remove_tree};
use crate::context::{blocking_io, Context};
use crate::dbserver::{ImageInfo, ServerContainer};
use crate::store::{CacheKey, Scratch};

/// Fills `work` (which must not exist) with a clone of the initialised
/// datadir for `image`, making that first when the cache has none.
pub async fn clone_into(ctx: &Context, image: &ImageInfo, work: &Path) -> Result<(), ImportError> {
    let key = CacheKey::new(&image.id, &image.init_command());
    let started = Instant::now();
    let k = key.clone();
    let cached = match ctx.store.init_datadir(&k).await? {
        Some(path) => path,
        None => {
            build(ctx, image, &key)
                .instrument(tracing::info_span!("init_cache", key = %key))
                .await?
        }
    };
    let (to, mode, owner) = (work.to_path_buf(), ctx.clone_mode, image.owner);
    blocking_io(move || clone::clone_tree(&cached, &to, mode, owner))
        .await
        .map_err(|source| ImportError::Datadir {
            what: "clone the cached initial datadir",
            source,
        })?;
    debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "import datadir cloned from the cache"
    );
    Ok(())
}

fn container_name(ctx: &Context, key: &CacheKey) -> String {
    format!("{}_init.{}", ctx.settings.container_prefix, key)
}

/// What an initialisation cancelled mid-way (an import timing out during
/// it) leaves: its one-off container, removed. Its scratch folder is
/// sorted out with `tmp/` at the next start.
pub(super) async fn abandon(ctx: &Context, image: &ImageInfo) {
    let name = container_name(ctx, &CacheKey::new(&image.id, &image.init_command()));
    if let Err(e) = ctx.engine.remove(&name).await {
        tracing::warn!(error = %e, container = name, "cannot remove the initialisation container");
    }
}

/// Runs the initialisation in a one-off container on a scratch folder and
/// publishes the result into the cache.
async fn build(
    ctx: &Context,
    image: &ImageInfo,
    key: &CacheKey,
) -> Result<std::path::PathBuf, ImportError> {
    let started = Instant::now();
    let scratch = ctx
        .store
        .scratch(&Scratch::Init(key.clone(), crate::store::nonce()));
    let (dir, owner) = (scratch.clone(), image.owner);
    blocking_io(move || {
        fs::create_dir_all(&dir)?;
        own_tree(&dir, owner, true)
    })
    .await
    .map_err(|source| ImportError::Datadir {
        what: "create the initial datadir",
        source,
    })?;
    let name = container_name(ctx, key);
    let spec = image.init_spec(ServerContainer {
        name: name.clone(),
        image: ctx.settings.image.clone(),
        datadir: ctx.store.for_engine(&scratch),
        labels: ctx.labels("init"),
    });
    ctx.engine.remove(&name).await?;
    let outcome = async {
        ctx.engine.run(&spec).await?;
        let code = ctx.engine.wait(&name).await?;
        if code != 0 {
            let logs = ctx.engine.logs_tail(&name, 30).await.unwrap_or_default();
            return Err(ImportError::ServerStart(format!(
                "initialising the datadir failed (exit {code}): {}",
                logs.trim()
            )));
        }
        Ok(())
    }
    .await;
    let _ = ctx.engine.remove(&name).await;
    if let Err(e) = outcome {
        let _ = blocking_io(move || remove_tree(&scratch)).await;
        return Err(e);
    }
    let k = key.clone();
    let published = ctx
        .store
        .run(move |s| {
            own_tree(&scratch, owner, false).map_err(|source| ImportError::Datadir {
                what: "make the initial datadir read-only",
                source,
            })?;
            s.publish_init_datadir(&k, &scratch)
                .map_err(ImportError::from)
        })
        .await?;
    info!(
        seconds = started.elapsed().as_secs_f64(),
        "initial datadir made for this image"
    );
    Ok(published)
}
