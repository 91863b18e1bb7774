//! A physical backup as an import's source: no SQL replay.
//!
//! `NAME.xbstream[.gz|.zst]` is decompressed here and streamed into
//! `mbstream -x` in a one-off container of the configured image on the
//! import's scratch datadir; a `--target-dir` folder is cloned into it.
//! `mariadb-backup --prepare` runs there, then the import server starts on
//! the prepared datadir without initialisation (the redo log resized to
//! [`dbserver::REDO_LOG_SIZE`]), post scripts run and the server shuts
//! down slowly, as after a SQL load; `import.rs` publishes the result.
//!
//! Invariants: the backup in the dumps folder is only read (extraction,
//! `--prepare` and the server work on the scratch copy); a backup is
//! restored only by the server major version that made it
//! ([`ImportError::VersionMismatch`], checked before `--prepare`).

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use dolly_engine::{EngineError, ExecOutput};
use tracing::info;

use super::import::{query_rows, run_post_script, Loaded};
use super::progress::{Phase, Tracker};
use super::ImportError;
use crate::clone::{self, own_tree, CloneMode};
use crate::context::{blocking_io, Context};
use crate::dbserver::{self, Flavor, ImageInfo, ServerContainer, DATADIR};
use crate::dump::{Dump, PhysicalForm};

/// What a backup says about itself: its `*_info` file (the server that
/// made it), its `*_checkpoints` file (full or incremental) and
/// `backup-my.cnf` (the InnoDB page size).
#[derive(Debug, Clone, PartialEq, Eq)]
struct BackupInfo {
    /// `server_version` as written, e.g. `10.11.18-MariaDB-0+deb12u1`.
    server_version: String,
    release: Release,
    incremental: bool,
    page_size: Option<u64>,
}

/// A server's major version: `10.11`, `11.8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Release {
    major: u32,
    minor: u32,
}

impl std::fmt::Display for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl Release {
    /// The first word of `text` that starts like `N.N` (`mariadbd  Ver
    /// 10.11.18-MariaDB...`, `11.8.3-MariaDB-ubu2404`), and that word.
    fn find(text: &str) -> Option<(Release, &str)> {
        text.split_whitespace().find_map(|word| {
            let mut parts = word.split(|c: char| !c.is_ascii_digit());
            let major = parts.next()?.parse().ok()?;
            let rest = word.split_once('.')?.1;
            let minor = rest
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()?;
            Some((Release { major, minor }, word))
        })
    }
}

/// The `key = value` lines of a backup's metadata files.
fn value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        (k.trim() == key).then(|| v.trim())
    })
}

impl BackupInfo {
    /// From the texts of the info file, the checkpoints file and
    /// `backup-my.cnf` (either may be missing); the reason when the server
    /// version cannot be told.
    fn parse(info: &str, checkpoints: &str, cnf: &str) -> Result<Self, String> {
        let server_version = value(info, "server_version")
            .filter(|v| !v.is_empty())
            .ok_or("its info file has no server_version line")?
            .to_owned();
        let (release, _) = Release::find(&server_version)
            .ok_or_else(|| format!("server_version {server_version:?} names no version"))?;
        let incremental = value(checkpoints, "backup_type") == Some("incremental")
            || value(info, "incremental") == Some("Y");
        let page_size = value(cnf, "innodb_page_size").and_then(|v| v.parse().ok());
        Ok(Self {
            server_version,
            release,
            incremental,
            page_size,
        })
    }

    /// Reads the metadata of the backup in `dir` (MariaDB 11 names the
    /// files `mariadb_backup_*`, 10.x `xtrabackup_*`). Blocking.
    fn read(dir: &Path) -> io::Result<Result<Self, String>> {
        let read = |names: &[&str]| -> io::Result<Option<String>> {
            for name in names {
                match fs::read_to_string(dir.join(name)) {
                    Ok(text) => return Ok(Some(text)),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                }
            }
            Ok(None)
        };
        let Some(info) = read(&["mariadb_backup_info", "xtrabackup_info"])? else {
            return Ok(Err(
                "it has no mariadb_backup_info or xtrabackup_info file: not a mariadb-backup result"
                    .to_owned(),
            ));
        };
        let checkpoints = read(&crate::dump::CHECKPOINTS_FILES)?.unwrap_or_default();
        let cnf = read(&["backup-my.cnf"])?.unwrap_or_default();
        Ok(Self::parse(&info, &checkpoints, &cnf))
    }

    /// Whether the image's server can restore this backup.
    fn check(&self, dump: &str, image: &ImageInfo) -> Result<(), ImportError> {
        let refuse = |message: String| ImportError::Backup {
            dump: dump.to_owned(),
            message,
        };
        let Some((server, server_word)) = Release::find(&image.version) else {
            return Err(refuse(format!(
                "cannot tell the image's server version from {:?}",
                image.version.trim()
            )));
        };
        if server != self.release {
            return Err(ImportError::VersionMismatch {
                dump: dump.to_owned(),
                backup: self.server_version.clone(),
                server: server_word.to_owned(),
            });
        }
        if self.incremental {
            return Err(refuse(
                "it is an incremental backup: prepare it onto its full backup \
                 (mariadb-backup --prepare --incremental-dir) and put the result in the dumps folder"
                    .to_owned(),
            ));
        }
        if let Some(size) = self.page_size.filter(|s| *s != 16384) {
            return Err(refuse(format!(
                "its innodb_page_size is {size}; dolly's servers run with the default 16384"
            )));
        }
        Ok(())
    }
}

/// Restores the physical backup `d` into `work` (which does not exist yet)
/// and runs the import server on it in `container`, up to its clean
/// shutdown.
pub(super) async fn run(
    ctx: &Context,
    d: &Dump,
    form: PhysicalForm,
    image: &ImageInfo,
    work: &Path,
    container: &str,
    tracker: &Tracker,
) -> Result<Loaded, ImportError> {
    let dump_name = d.path.display().to_string();
    if image.flavor != Flavor::MariaDb {
        return Err(ImportError::PhysicalUnsupported {
            dump: dump_name,
            image: ctx.settings.image.clone(),
            reason: "it runs MySQL; a mariadb-backup backup is restored by a MariaDB image \
                     (or import a SQL dump instead)"
                .to_owned(),
        });
    }
    let backup_err = |message: String| ImportError::Backup {
        dump: dump_name.clone(),
        message,
    };
    let owner = image.owner;
    // A container left by a crashed import.
    ctx.engine.remove(container).await?;
    let labels = {
        let mut l = ctx.labels("import");
        l.insert("dolly.template".into(), d.template.to_string());
        l
    };
    let server = ServerContainer {
        name: container.to_owned(),
        image: ctx.settings.image.clone(),
        datadir: ctx.store.for_engine(work),
        labels,
    };

    match form {
        PhysicalForm::Folder => {
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
                let same_fs =
                    fs::metadata(&from)?.dev() == fs::metadata(to.parent().unwrap_or(&to))?.dev();
                let mode = if same_fs { mode } else { CloneMode::Copy };
                clone::clone_tree(&from, &to, mode, owner).map(|()| mode)
            })
            .await
            .map_err(|source| ImportError::Datadir {
                what: "copy the backup folder",
                source,
            })?;
            tracker.read.store(tracker.total, Ordering::Relaxed);
            info!(clone = cloned.as_str(), "backup folder cloned");
            start_helper(ctx, image, server.clone(), &dump_name).await?;
        }
        PhysicalForm::Stream(_) => {
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
            let timeout = ctx.settings.import_timeout;
            let out = tokio::time::timeout(timeout, extract)
                .await
                .map_err(|_| ImportError::Timeout(dump_name.clone(), timeout))??;
            if let Some(e) = out
                .stdin_error
                .as_ref()
                .filter(|e| !e.contains("Broken pipe"))
            {
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
        }
    }

    // Apply the redo log copied during the backup: a consistent datadir.
    tracker.set(Phase::Prepare);
    let prepare = vec![
        "mariadb-backup".into(),
        "--prepare".into(),
        format!("--target-dir={DATADIR}"),
        format!("--use-memory={}", ctx.settings.import_buffer_pool),
    ];
    let timeout = ctx.settings.import_timeout;
    let out = tokio::time::timeout(
        timeout,
        ctx.engine
            .exec(container, prepare, Some(image.user()), None),
    )
    .await
    .map_err(|_| ImportError::Timeout(dump_name.clone(), timeout))??;
    if out.exit_code != 0 {
        return Err(backup_err(format!(
            "mariadb-backup --prepare exited with status {}: {}",
            out.exit_code,
            last_lines(&out.stderr, 5)
        )));
    }
    ctx.engine.remove(container).await?;

    // The backup's own files go; the init file makes root usable.
    let w = work.to_path_buf();
    blocking_io(move || {
        for entry in fs::read_dir(&w)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name == "backup-my.cnf"
                || name.starts_with("mariadb_backup_")
                || name.starts_with("xtrabackup_")
            {
                fs::remove_file(entry.path())?;
            }
        }
        fs::write(w.join(dbserver::INIT_FILE), dbserver::RESTORE_INIT_SQL)?;
        own_tree(&w, owner, true)
    })
    .await
    .map_err(|source| ImportError::Datadir {
        what: "ready the prepared datadir",
        source,
    })?;

    // The server on the prepared datadir, as an import server.
    let spec = image.server_spec(
        server,
        image.restore_command(ctx.settings.import_buffer_pool),
        None,
        None,
    );
    ctx.engine.run(&spec).await?;
    let up = ctx
        .engine
        .exec(container, image.wait_socket_command(300), None, None)
        .await?;
    if up.exit_code != 0 {
        let logs = ctx
            .engine
            .logs_tail(container, 30)
            .await
            .unwrap_or_default();
        return Err(ImportError::ServerStart(format!(
            "no answer on its socket within 300 s on the prepared backup (exit {}); server log: {}",
            up.exit_code,
            logs.trim()
        )));
    }

    let tables = query_rows(ctx, image, container).await?;
    let configured = &ctx.settings.database;
    let database = if tables.iter().any(|(s, _, _)| s == configured) {
        configured.clone()
    } else {
        match tables.first() {
            Some((schema, _, _)) => schema.clone(),
            None => return Err(ImportError::Empty(dump_name)),
        }
    };

    tracker.set(Phase::Post);
    let mut post_scripts = Vec::new();
    for script in &d.post_scripts {
        post_scripts.push(run_post_script(ctx, image, container, script, &database).await?);
    }

    // Clean, slow shutdown (the server runs with innodb_fast_shutdown=0).
    tracker.set(Phase::Publish);
    ctx.engine.stop(container, 3600).await?;
    let code = ctx.engine.wait(container).await?;
    if code != 0 {
        let logs = ctx
            .engine
            .logs_tail(container, 30)
            .await
            .unwrap_or_default();
        return Err(ImportError::ServerStart(format!(
            "the import server exited with status {code} at shutdown: {logs}"
        )));
    }
    Ok(Loaded {
        database,
        tables,
        post_scripts,
        load: None,
    })
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
    let cmd = vec!["sleep".into(), "infinity".into()];
    ctx.engine
        .run(&image.server_spec(server.clone(), cmd, None, None))
        .await?;
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

/// Runs `cmd` in `container` with `reader` as its standard input, read on
/// a blocking thread.
async fn stream_into(
    ctx: &Context,
    container: &str,
    cmd: Vec<String>,
    user: String,
    mut reader: Box<dyn Read + Send>,
) -> Result<ExecOutput, EngineError> {
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<bytes::Bytes>>(8);
    let producer = tokio::task::spawn_blocking(move || loop {
        let mut buf = vec![0u8; 1 << 20];
        match reader.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                buf.truncate(n);
                if tx.blocking_send(Ok(bytes::Bytes::from(buf))).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let stdin = Box::pin(tokio_util::io::StreamReader::new(stream));
    let out = ctx
        .engine
        .exec(container, cmd, Some(user), Some(stdin))
        .await;
    let _ = producer.await;
    out
}

/// The last `n` lines of a tool's output, on one line.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim().lines().collect();
    lines[lines.len().saturating_sub(n)..].join(" / ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clone::Owner;

    fn image(version: &str) -> ImageInfo {
        ImageInfo {
            flavor: Flavor::MariaDb,
            owner: Owner { uid: 1, gid: 1 },
            version: version.to_owned(),
            id: String::new(),
        }
    }

    const INFO: &str = "uuid = 0d2b\nname = \ntool_name = mariadb-backup\n\
        server_version = 10.11.18-MariaDB-0+deb12u1\nincremental = N\n";

    #[test]
    fn releases_are_found_in_version_texts() {
        let (r, word) = Release::find(
            "mariadbd  Ver 10.11.18-MariaDB-0+deb12u1 for debian-linux-gnu on x86_64",
        )
        .unwrap();
        assert_eq!(
            (r.to_string(), word),
            ("10.11".into(), "10.11.18-MariaDB-0+deb12u1")
        );
        assert_eq!(
            Release::find("11.8.3-MariaDB-ubu2404").unwrap().0,
            Release {
                major: 11,
                minor: 8
            }
        );
        assert!(Release::find("mariadbd Ver unknown").is_none());
        assert!(Release::find("").is_none());
    }

    #[test]
    fn a_backup_of_the_same_major_version_passes() {
        let info = BackupInfo::parse(
            INFO,
            "backup_type = full-backuped\n",
            "innodb_page_size=16384\n",
        )
        .unwrap();
        assert_eq!(
            info.release,
            Release {
                major: 10,
                minor: 11
            }
        );
        info.check("b", &image("mariadbd  Ver 10.11.6-MariaDB for linux"))
            .unwrap();
    }

    #[test]
    fn another_major_version_is_refused_naming_both() {
        let info = BackupInfo::parse(&INFO.replace("10.11.18", "11.8.3"), "", "").unwrap();
        let err = info
            .check(
                "dumps/shop",
                &image("mariadbd  Ver 10.11.18-MariaDB-0+deb12u1 for x"),
            )
            .unwrap_err();
        assert!(matches!(err, ImportError::VersionMismatch { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("11.8.3-MariaDB") && text.contains("10.11.18-MariaDB"),
            "{text}"
        );
    }

    #[test]
    fn incremental_backups_odd_pages_and_missing_versions_are_refused() {
        let img = image("mariadbd  Ver 10.11.18-MariaDB");
        let inc = BackupInfo::parse(INFO, "backup_type = incremental\n", "").unwrap();
        assert!(inc
            .check("b", &img)
            .unwrap_err()
            .to_string()
            .contains("incremental"));
        let pages = BackupInfo::parse(INFO, "", "[mysqld]\ninnodb_page_size=65536\n").unwrap();
        assert!(pages
            .check("b", &img)
            .unwrap_err()
            .to_string()
            .contains("65536"));
        assert!(BackupInfo::parse("tool_name = x\n", "", "").is_err());
        assert!(BackupInfo::parse("server_version = \n", "", "").is_err());
    }

    #[test]
    fn metadata_is_read_from_either_file_name() {
        let dir = tempfile::tempdir().unwrap();
        assert!(BackupInfo::read(dir.path()).unwrap().is_err());
        fs::write(dir.path().join("mariadb_backup_info"), INFO).unwrap();
        let info = BackupInfo::read(dir.path()).unwrap().unwrap();
        assert_eq!(info.server_version, "10.11.18-MariaDB-0+deb12u1");
    }

    #[test]
    fn last_lines_joins_the_end() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b / c");
        assert_eq!(last_lines("", 2), "");
    }
}
