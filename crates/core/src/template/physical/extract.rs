//! The backup into the import's scratch datadir: a `--target-dir` folder
//! cloned, or a stream decompressed and extracted by `mbstream -x` in a
//! helper container of the image; the backup's metadata is checked before
//! `--prepare` (a folder's before anything is copied).

use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use dolly_engine::{Bind, EngineError, ExecOutput};
use tracing::info;

use super::backup_info::BackupInfo;
use super::last_lines;
use crate::clone::{self, own_tree, CloneMode};
use crate::context::{blocking_io, Context};
use crate::dbserver::{ImageInfo, ServerContainer, DATADIR};
use crate::dump::{Compression, Dump, DumpKind, PhysicalForm};
use crate::template::progress::Tracker;
use crate::template::ImportError;

/// Clones the backup folder of `d` into `work` (which does not exist yet)
/// and starts the helper container on it; the backup is refused before
/// anything is copied.
pub(super) async fn clone_folder(
    ctx: &Context,
    d: &Dump,
    image: &ImageInfo,
    work: &Path,
    server: &ServerContainer,
    tracker: &Tracker,
) -> Result<(), ImportError> {
    let dump_name = d.path.display().to_string();
    let backup_err = |message: String| ImportError::Backup {
        dump: dump_name.clone(),
        message,
    };
    let owner = image.owner;
    // Refused before anything is copied.
    let dir = d.path.clone();
    let info = blocking_io(move || BackupInfo::read(&dir))
        .await
        .map_err(|e| backup_err(format!("cannot read its metadata: {e}")))?
        .map_err(&backup_err)?;
    info.check(&dump_name, image)?;
    let (from, to) = (d.path.clone(), work.to_path_buf());
    let mode = ctx.clone_mode;
    let cloned = blocking_io(move || {
        // A reflink cannot cross filesystems (a mounted dumps folder).
        let same_fs = fs::metadata(&from)?.dev() == fs::metadata(to.parent().unwrap_or(&to))?.dev();
        let mode = if same_fs { mode } else { CloneMode::Copy };
        clone::clone_tree(&from, &to, mode, owner).map(|()| mode)
    })
    .await
    .map_err(|source| ImportError::Datadir {
        what: "copy the backup folder",
        source,
    })?;
    tracker.read.store(tracker.total(), Ordering::Relaxed);
    info!(clone = cloned.as_str(), "backup folder cloned");
    start_helper(ctx, image, server.clone(), &dump_name).await?;
    Ok(())
}

/// Extracts the backup stream of `d` into `work` (which does not exist
/// yet) by `mbstream -x` in the helper container, then checks the
/// backup's metadata.
pub(super) async fn stream(
    ctx: &Context,
    d: &Dump,
    image: &ImageInfo,
    work: &Path,
    server: &ServerContainer,
    tracker: &Tracker,
) -> Result<(), ImportError> {
    let dump_name = d.path.display().to_string();
    let backup_err = |message: String| ImportError::Backup {
        dump: dump_name.clone(),
        message,
    };
    let owner = image.owner;
    let container = server.name.as_str();
    let w = work.to_path_buf();
    blocking_io(move || {
        fs::create_dir_all(&w)?;
        own_tree(&w, owner, true)
    })
    .await
    .map_err(|source| ImportError::Datadir {
        what: "create the import datadir",
        source,
    })?;
    let timeout = ctx.settings.import_timeout;
    let out = if matches!(
        d.kind,
        DumpKind::Physical(PhysicalForm::Stream(Compression::None))
    ) {
        // An uncompressed stream: mbstream reads the file itself from a
        // read-only mount, with no copy through the engine's API (the
        // benchmark measured that copy at ~200 MB/s, most of the import).
        let mount = Bind {
            host: ctx.store.for_engine(&d.path),
            container: STREAM_MOUNT.to_owned(),
            read_only: true,
        };
        start_helper_with(ctx, image, server, Some(mount), &dump_name).await?;
        let cmd = vec![
            "sh".into(),
            "-c".into(),
            format!("exec mbstream -x -C {DATADIR} < {STREAM_MOUNT}"),
        ];
        let extract = ctx.engine.exec(container, cmd, Some(image.user()), None);
        let progress = extraction_progress(work.to_path_buf(), tracker);
        let out = tokio::select! {
            out = tokio::time::timeout(timeout, extract) => out,
            never = progress => match never {},
        };
        tracker.read.store(tracker.total(), Ordering::Relaxed);
        out.map_err(|_| ImportError::Timeout(dump_name.clone(), timeout))??
    } else {
        start_helper(ctx, image, server.clone(), &dump_name).await?;
        let (d2, read) = (d.clone(), Arc::clone(&tracker.read));
        let reader = tokio::task::spawn_blocking(move || d2.open_backup_stream(read))
            .await
            .map_err(|e| backup_err(format!("cannot open the stream: {e}")))?
            .ok_or_else(|| backup_err("not a backup stream".to_owned()))??;
        let extract = stream_into(
            ctx,
            container,
            vec!["mbstream".into(), "-x".into(), "-C".into(), DATADIR.into()],
            image.user(),
            reader,
        );
        tokio::time::timeout(timeout, extract)
            .await
            .map_err(|_| ImportError::Timeout(dump_name.clone(), timeout))??
    };
    if let Some(e) = out.stdin_error.as_ref().filter(|e| !e.is_broken_pipe()) {
        return Err(backup_err(format!("cannot read the stream: {e}")));
    }
    if out.exit_code != 0 {
        return Err(backup_err(format!(
            "mbstream -x exited with status {}: {}",
            out.exit_code,
            last_lines(&out.stderr, 3)
        )));
    }
    let w = work.to_path_buf();
    let info = blocking_io(move || BackupInfo::read(&w))
        .await
        .map_err(|e| backup_err(format!("cannot read its metadata: {e}")))?
        .map_err(&backup_err)?;
    info.check(&dump_name, image)?;
    Ok(())
}

/// A container of the image on the datadir that only waits: extraction
/// and `--prepare` are exec'd in it. Refuses an image without
/// `mbstream`/`mariadb-backup`.
async fn start_helper(
    ctx: &Context,
    image: &ImageInfo,
    server: ServerContainer,
    dump: &str,
) -> Result<(), ImportError> {
    start_helper_with(ctx, image, &server, None, dump).await
}

/// [`start_helper`] with one more (read-only) mount.
async fn start_helper_with(
    ctx: &Context,
    image: &ImageInfo,
    server: &ServerContainer,
    mount: Option<Bind>,
    dump: &str,
) -> Result<(), ImportError> {
    let cmd = vec!["sleep".into(), "infinity".into()];
    let mut spec = image.server_spec(server.clone(), cmd, None, None);
    spec.binds.extend(mount);
    ctx.engine.run(&spec).await?;
    let probe = vec![
        "sh".into(),
        "-c".into(),
        "command -v mbstream && command -v mariadb-backup".into(),
    ];
    let out = ctx.engine.exec(&server.name, probe, None, None).await?;
    if out.exit_code != 0 {
        return Err(ImportError::PhysicalUnsupported {
            dump: dump.to_owned(),
            image: ctx.settings.image.clone(),
            reason: "it has no mbstream or mariadb-backup (install the distribution's \
                     mariadb-backup package in the image)"
                .to_owned(),
        });
    }
    Ok(())
}

/// Where an uncompressed stream is mounted in the helper container.
const STREAM_MOUNT: &str = "/dolly-backup.xbstream";

/// While mbstream reads the stream itself, what it has written so far
/// (the datadir's size, walked every second on the blocking pool) stands
/// for the bytes read: the stream is the files plus small headers. Never
/// returns; dropped when the extraction ends.
async fn extraction_progress(
    work: std::path::PathBuf,
    tracker: &Tracker,
) -> std::convert::Infallible {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tick.tick().await;
        let w = work.clone();
        if let Ok(bytes) = blocking_io(move || Ok(clone::tree_size(&w))).await {
            tracker
                .read
                .store(bytes.min(tracker.total()), Ordering::Relaxed);
        }
    }
}

/// Runs `cmd` in `container` with `reader` as its standard input, read on
/// a blocking thread.
async fn stream_into(
    ctx: &Context,
    container: &str,
    cmd: Vec<String>,
    user: String,
    reader: Box<dyn Read + Send>,
) -> Result<ExecOutput, EngineError> {
    let (stdin, producer) = crate::template::import::stdin_from(reader);
    let out = ctx
        .engine
        .exec(container, cmd, Some(user), Some(stdin))
        .await;
    let _ = producer.await;
    out
}
