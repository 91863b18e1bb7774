//! Publication: a loaded, cleanly shut down datadir becomes the current
//! version of its template, with the record of where it came from.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::Utc;
use dolly_names::{TemplateName, VersionName};
use tracing::info;

use super::{datadir_err, TableRows};
use crate::clone::{self, own_tree, remove_tree};
use crate::context::Context;
use crate::dbserver::{self, ImageInfo};
use crate::dump::{Fingerprint, HashedFile};
use crate::store::{LoadInfo, Masking, Scratch};
use crate::template::{ImportError, VersionMeta};

/// The tables a new version holds, one log line each.
pub(super) fn log_tables(tables: &TableRows) {
    for (schema, table, rows) in tables {
        info!(table = %format!("{schema}.{table}"), rows_estimate = rows, "loaded");
    }
}

/// What a new version records about where it came from.
pub(super) struct Origin {
    pub(super) source: String,
    pub(super) database: String,
    pub(super) elapsed: Duration,
    pub(super) dump_bytes: u64,
    pub(super) fingerprint: Option<Fingerprint>,
    pub(super) post_scripts: Vec<HashedFile>,
    pub(super) load: Option<LoadInfo>,
    pub(super) masking: Option<Masking>,
}

/// Publishes the datadir `work` (in `tmp/`, cleanly shut down) as
/// `version` of `t` and makes it current. The walk of the datadir (owner,
/// modes, size) runs on the blocking pool.
pub(super) async fn publish(
    ctx: &Context,
    t: &TemplateName,
    image: &ImageInfo,
    version: &VersionName,
    work: &Path,
    origin: Origin,
) -> Result<VersionMeta, ImportError> {
    let (t, work) = (t.clone(), work.to_path_buf());
    let meta = VersionMeta {
        version: version.clone(),
        created_at: Utc::now(),
        source_dump: origin.source,
        database: origin.database,
        import_seconds: origin.elapsed.as_secs_f64(),
        dump_bytes: origin.dump_bytes,
        size_bytes: 0,
        image: ctx.settings.image.clone(),
        server_version: image.version.clone(),
        fingerprint: origin.fingerprint,
        post_scripts: origin.post_scripts,
        load: origin.load,
        masking: origin.masking,
    };
    let owner = image.owner;
    ctx.store
        .run(move |s| {
            // Clones must not load a buffer pool dump, see a stale pid file
            // nor load MySQL's doublewrite files (see `not_for_clones`).
            if let Ok(entries) = fs::read_dir(&work) {
                for e in entries.flatten() {
                    if e.file_name().to_str().is_some_and(dbserver::not_for_clones) {
                        let _ = fs::remove_file(e.path());
                    }
                }
            }
            own_tree(&work, owner, false).map_err(datadir_err("make the template read-only"))?;
            let meta = VersionMeta {
                size_bytes: clone::tree_size(&work),
                ..meta
            };
            s.publish_version(&t, &meta, &work)?;
            Ok(meta)
        })
        .await
}

/// Publishes a copy of a cleanly shut down datadir (a snapshot) as the new
/// current version of `t`: `promote`.
pub async fn publish_datadir(
    ctx: &Context,
    t: &TemplateName,
    src: &Path,
    source: String,
    database: String,
) -> Result<VersionMeta, ImportError> {
    let image = ctx.image().await?.clone();
    let t2 = t.clone();
    let (_lock, version, work) = ctx
        .store
        .run(move |s| {
            let lock = s.lock_import(&t2)?;
            let version = s.new_version(&t2);
            let work = s.scratch(&Scratch::Import(t2.clone(), version.clone()));
            Ok::<_, crate::store::StoreError>((lock, version, work))
        })
        .await?;
    let started = Instant::now();
    let (from, to, mode) = (src.to_path_buf(), work.clone(), ctx.clone_mode);
    let cloned =
        crate::context::blocking_io(move || clone::clone_tree(&from, &to, mode, image.owner))
            .await
            .map_err(datadir_err("clone the snapshot"));
    crate::faultpoint::hit("promote.cloned");
    let result = match cloned {
        Ok(()) => {
            let origin = Origin {
                source,
                database,
                elapsed: started.elapsed(),
                dump_bytes: 0,
                fingerprint: None,
                post_scripts: Vec::new(),
                load: None,
                masking: None,
            };
            publish(ctx, t, &image, &version, &work, origin).await
        }
        Err(e) => Err(e),
    };
    if result.is_err() {
        let _ = tokio::task::spawn_blocking(move || remove_tree(&work)).await;
    } else {
        info!(template = %t, version = %version, "template version published from a snapshot");
    }
    result
}
