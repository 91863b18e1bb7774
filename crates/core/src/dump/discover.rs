//! What a dump is and where it is found: the files of the dumps folder
//! that make a dump, its kind, and its post-import SQL.

use std::io;
use std::path::{Path, PathBuf};

use dolly_names::TemplateName;
use tracing::debug;

use super::DumpError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// `NAME.sql`, `NAME.sql.gz`, `NAME.sql.zst`: NAME and how it is
    /// compressed.
    fn of(file_name: &str) -> Option<(&str, Compression)> {
        Self::strip(file_name, ".sql")
    }

    /// `NAME{ext}`, `NAME{ext}.gz` or `NAME{ext}.zst`.
    fn strip<'a>(file_name: &'a str, ext: &str) -> Option<(&'a str, Compression)> {
        [
            ("", Compression::None),
            (".gz", Compression::Gzip),
            (".zst", Compression::Zstd),
        ]
        .into_iter()
        .find_map(|(suffix, c)| {
            let stem = file_name.strip_suffix(suffix)?.strip_suffix(ext)?;
            Some((stem, c))
        })
    }
}

/// The files that mark a folder as a `mariadb-backup --target-dir` result
/// (MariaDB 10.x writes the second, 11.x the first).
pub const CHECKPOINTS_FILES: [&str; 2] = ["mariadb_backup_checkpoints", "xtrabackup_checkpoints"];

/// What a dump holds: SQL to replay, or a physical backup to restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpKind {
    /// `mysqldump`/`mariadb-dump` output, replayed by a client.
    Sql,
    /// A `mariadb-backup` backup: extracted, prepared and started as it is.
    Physical(PhysicalForm),
}

/// How a physical backup is stored in the dumps folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhysicalForm {
    /// `NAME.xbstream[.gz|.zst]`: the output of
    /// `mariadb-backup --backup --stream=xbstream` (the dump's `path`).
    Stream(Compression),
    /// `NAME/`: what `mariadb-backup --backup --target-dir=NAME` wrote.
    Folder,
}

/// One dump: the files that make it, in the order they are applied.
#[derive(Debug, Clone)]
pub struct Dump {
    pub template: TemplateName,
    /// The dump file or folder.
    pub path: PathBuf,
    pub kind: DumpKind,
    /// Every file the import reads (for a physical backup folder: all of
    /// its files, sorted by their path in it).
    pub files: Vec<(PathBuf, Compression)>,
    /// Post-import SQL, in the order it runs.
    pub post_scripts: Vec<PathBuf>,
    /// Masking rules applied to the rows as they stream in
    /// (`NAME.mask.toml`, [`crate::mask`]).
    pub mask_rules: Option<PathBuf>,
}

impl Dump {
    /// Size of the (compressed) input in bytes.
    pub fn input_bytes(&self) -> u64 {
        self.files
            .iter()
            .filter_map(|(p, _)| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }
}

/// A dump the update refuses: a FIFO, socket or device where a dump file
/// should be (reading it could block for ever).
#[derive(Debug, Clone)]
pub struct Refused {
    pub template: TemplateName,
    /// The entry that is not a regular file or folder.
    pub path: PathBuf,
    /// What it is ("a FIFO", "a socket", ...).
    pub what: &'static str,
}

impl Refused {
    pub fn error(&self) -> DumpError {
        DumpError::NotAFile {
            path: self.path.clone(),
            what: self.what,
        }
    }
}

/// What `path` is when it is neither a regular file nor a folder
/// (following symbolic links); `None` for those, or when it is gone.
fn special(path: &Path) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let t = std::fs::metadata(path).ok()?.file_type();
    if t.is_file() || t.is_dir() {
        None
    } else if t.is_fifo() {
        Some("a FIFO")
    } else if t.is_socket() {
        Some("a socket")
    } else if t.is_block_device() {
        Some("a block device")
    } else if t.is_char_device() {
        Some("a character device")
    } else {
        Some("not a regular file")
    }
}

/// Every dump in `dir`, sorted by template name. Entries that are not
/// dumps are skipped with a debug line; dumps that are not regular files
/// are left out (see [`discover_all`]).
pub fn discover(dir: &Path) -> Result<Vec<Dump>, DumpError> {
    discover_all(dir).map(|(dumps, _)| dumps)
}

/// Every dump in `dir`, and the dumps refused because a file of theirs is
/// a FIFO, a socket or a device.
pub fn discover_all(dir: &Path) -> Result<(Vec<Dump>, Vec<Refused>), DumpError> {
    let io_err = |source| DumpError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut dumps: Vec<Dump> = Vec::new();
    let mut refused: Vec<Refused> = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((dumps, refused)),
        Err(e) => return Err(io_err(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err)?;
        let path = entry.path();
        let Some(file_name) = entry.file_name().to_str().map(str::to_owned) else {
            debug!(path = %path.display(), "skipping: not a UTF-8 name");
            continue;
        };
        let file_type = entry.file_type().map_err(io_err)?;
        let is_dir = file_type.is_dir() || (file_type.is_symlink() && path.is_dir());
        let dump = if is_dir {
            match TemplateName::parse(&file_name) {
                Ok(t) if CHECKPOINTS_FILES.iter().any(|f| path.join(f).is_file()) => {
                    Some(backup_folder(t, &path)?)
                }
                Ok(t) => folder_dump(t, &path)?,
                Err(_) => None,
            }
        } else {
            let sql = Compression::of(&file_name).map(|(stem, c)| (stem, c, DumpKind::Sql));
            let backup = || {
                Compression::strip(&file_name, ".xbstream")
                    .map(|(stem, c)| (stem, c, DumpKind::Physical(PhysicalForm::Stream(c))))
            };
            sql.or_else(backup).and_then(|(stem, c, kind)| {
                TemplateName::parse(stem).ok().map(|t| Dump {
                    template: t,
                    path: path.clone(),
                    kind,
                    files: vec![(path.clone(), c)],
                    post_scripts: Vec::new(),
                    mask_rules: None,
                })
            })
        };
        // A dump file that is a FIFO, a socket or a device: refused.
        let dump = match dump {
            Some(d) => match d.files.iter().find_map(|(p, _)| Some((p, special(p)?))) {
                Some((p, what)) if !matches!(d.kind, DumpKind::Physical(PhysicalForm::Folder)) => {
                    refused.push(Refused {
                        template: d.template.clone(),
                        path: p.clone(),
                        what,
                    });
                    continue;
                }
                _ => Some(d),
            },
            None => None,
        };
        match dump {
            Some(d) if dumps.iter().any(|x| x.template == d.template) => {
                debug!(path = %path.display(), "skipping: another dump has the same name");
            }
            Some(d) => dumps.push(d),
            None => debug!(path = %path.display(), "skipping: not a dump"),
        }
    }
    dumps.sort_by(|a, b| a.template.cmp(&b.template));
    for d in &mut dumps {
        d.post_scripts = post_scripts(dir, &d.template);
        let rules = dir.join(format!("{}.mask.toml", d.template));
        d.mask_rules = rules.is_file().then_some(rules);
    }
    refused.sort_by(|a, b| a.template.cmp(&b.template));
    Ok((dumps, refused))
}

/// `NAME.post.sql`, then `NAME.post.d/*.sql` in lexical order.
fn post_scripts(dir: &Path, t: &TemplateName) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let single = dir.join(format!("{t}.post.sql"));
    if single.is_file() {
        out.push(single);
    }
    if let Ok(entries) = std::fs::read_dir(dir.join(format!("{t}.post.d"))) {
        let mut more: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "sql"))
            .collect();
        more.sort();
        out.extend(more);
    }
    out
}

fn folder_dump(template: TemplateName, dir: &Path) -> Result<Option<Dump>, DumpError> {
    let mut files = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|source| DumpError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        match Compression::of(&name) {
            Some((_, c)) if entry.path().is_file() || special(&entry.path()).is_some() => {
                files.push((entry.path(), c))
            }
            _ => debug!(path = %entry.path().display(), "skipping: not a dump file"),
        }
    }
    if files.is_empty() {
        return Ok(None);
    }
    files.sort_by(|a, b| a.0.file_name().cmp(&b.0.file_name()));
    Ok(Some(Dump {
        template,
        path: dir.to_path_buf(),
        kind: DumpKind::Sql,
        files,
        post_scripts: Vec::new(),
        mask_rules: None,
    }))
}

/// A `mariadb-backup --target-dir` folder: every regular file in it, sorted
/// by path (what the fingerprint hashes and the progress counts).
fn backup_folder(template: TemplateName, dir: &Path) -> Result<Dump, DumpError> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), DumpError> {
        let io_err = |source| DumpError::Io {
            path: dir.to_path_buf(),
            source,
        };
        for entry in std::fs::read_dir(dir).map_err(io_err)? {
            let entry = entry.map_err(io_err)?;
            let ty = entry.file_type().map_err(io_err)?;
            if ty.is_dir() {
                walk(&entry.path(), out)?;
            } else if ty.is_file() {
                out.push(entry.path());
            }
            // A symbolic link is refused when the folder is cloned.
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, &mut files)?;
    files.sort();
    Ok(Dump {
        template,
        path: dir.to_path_buf(),
        kind: DumpKind::Physical(PhysicalForm::Folder),
        files: files.into_iter().map(|p| (p, Compression::None)).collect(),
        post_scripts: Vec::new(),
        mask_rules: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dump::reader::tests::read_all;
    use std::fs::File;
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    #[test]
    fn discovers_all_formats_and_ignores_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("plain.sql"), "SELECT 1;\n").unwrap();
        let mut gz = flate2::write::GzEncoder::new(
            File::create(p.join("gz.sql.gz")).unwrap(),
            flate2::Compression::fast(),
        );
        gz.write_all(b"SELECT 2;\n").unwrap();
        gz.finish().unwrap();
        let zst = zstd::encode_all(&b"SELECT 3;\n"[..], 1).unwrap();
        std::fs::write(p.join("zst.sql.zst"), zst).unwrap();
        std::fs::create_dir(p.join("folder")).unwrap();
        std::fs::write(p.join("folder/02-data.sql"), "INSERT;\n").unwrap();
        std::fs::write(p.join("folder/01-schema.sql"), "CREATE;\n").unwrap();
        std::fs::write(p.join("folder/README.txt"), "no").unwrap();
        std::fs::write(p.join("notes.txt"), "no").unwrap();
        std::fs::write(p.join("Bad Name.sql"), "no").unwrap();
        std::fs::write(p.join("plain.post.sql"), "UPDATE t SET a = 1;\n").unwrap();
        // A FIFO where a dump should be, alone or in a folder: refused.
        for fifo in ["fifo.sql", "fifofolder/01.sql"] {
            std::fs::create_dir_all(p.join("fifofolder")).unwrap();
            let c = std::ffi::CString::new(p.join(fifo).to_str().unwrap()).unwrap();
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        }
        std::fs::create_dir(p.join("plain.post.d")).unwrap();
        std::fs::write(p.join("plain.post.d/20-b.sql"), "SELECT 2;\n").unwrap();
        std::fs::write(p.join("plain.post.d/10-a.sql"), "SELECT 1;\n").unwrap();
        std::fs::write(p.join("plain.post.d/notes.txt"), "no").unwrap();

        let (dumps, refused) = discover_all(p).unwrap();
        let names: Vec<_> = dumps.iter().map(|d| d.template.as_str()).collect();
        assert_eq!(names, ["folder", "gz", "plain", "zst"]);
        let refused: Vec<_> = refused
            .iter()
            .map(|r| (r.template.as_str(), r.what, r.error().to_string()))
            .collect();
        assert_eq!(refused[0].0, "fifo");
        assert_eq!(refused[1].0, "fifofolder");
        assert!(
            refused[1].2.contains("fifofolder/01.sql is a FIFO"),
            "{refused:?}"
        );
        let post: Vec<_> = dumps[2]
            .post_scripts
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(post, ["plain.post.sql", "10-a.sql", "20-b.sql"]);
        assert!(dumps[0].post_scripts.is_empty());
        let f = dumps[2].fingerprint("img 1").unwrap();
        assert_eq!(f.dump[0].bytes, 10);
        assert_eq!(f.post_scripts.len(), 3);
        assert_eq!(f, dumps[2].fingerprint("img 1").unwrap());
        assert_ne!(f, dumps[2].fingerprint("img 2").unwrap());
        assert_eq!(read_all(&dumps[0]).unwrap().0, "CREATE;\n\nINSERT;\n");
        assert_eq!(read_all(&dumps[1]).unwrap().0, "SELECT 2;\n");
        assert_eq!(read_all(&dumps[3]).unwrap().0, "SELECT 3;\n");
    }

    #[test]
    fn physical_backups_are_dumps_of_their_own_kind() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("plain.xbstream"), b"XBSTCK01").unwrap();
        let zst = zstd::encode_all(&b"XBSTCK01"[..], 1).unwrap();
        std::fs::write(p.join("zst.xbstream.zst"), zst).unwrap();
        std::fs::write(p.join("gz.xbstream.gz"), b"not checked here").unwrap();
        for (schema, byte) in [("a", 1u8), ("b", 2u8)] {
            std::fs::create_dir_all(p.join("folder").join(schema)).unwrap();
            std::fs::write(p.join("folder").join(schema).join("t.ibd"), [byte]).unwrap();
        }
        std::fs::write(p.join("folder/xtrabackup_checkpoints"), "backup_type = x\n").unwrap();
        std::fs::write(p.join("folder/ibdata1"), [0u8; 16]).unwrap();
        std::fs::write(p.join("folder/zz.sql"), "SELECT 1;\n").unwrap();

        let dumps = discover(p).unwrap();
        let kinds: Vec<_> = dumps
            .iter()
            .map(|d| (d.template.as_str(), d.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("folder", DumpKind::Physical(PhysicalForm::Folder)),
                (
                    "gz",
                    DumpKind::Physical(PhysicalForm::Stream(Compression::Gzip))
                ),
                (
                    "plain",
                    DumpKind::Physical(PhysicalForm::Stream(Compression::None))
                ),
                (
                    "zst",
                    DumpKind::Physical(PhysicalForm::Stream(Compression::Zstd))
                ),
            ]
        );
        // Every file of the folder, named by its path in it.
        let f = dumps[0].fingerprint("img").unwrap();
        let names: Vec<_> = f.dump.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "a/t.ibd",
                "b/t.ibd",
                "ibdata1",
                "xtrabackup_checkpoints",
                "zz.sql"
            ]
        );
        assert_eq!(dumps[0].input_bytes(), 1 + 1 + 16 + 16 + 10);
        assert!(dumps[0].open_backup_stream(Arc::default()).is_none());
        // The stream decompresses and counts what it reads of the file.
        let read = Arc::new(AtomicU64::new(0));
        let mut s = Vec::new();
        dumps[3]
            .open_backup_stream(Arc::clone(&read))
            .unwrap()
            .unwrap()
            .read_to_end(&mut s)
            .unwrap();
        assert_eq!(s, b"XBSTCK01");
        assert_eq!(read.load(Ordering::Relaxed), dumps[3].input_bytes());
        // A plain SQL dump keeps its kind.
        std::fs::write(p.join("sql.sql"), "SELECT 1;\n").unwrap();
        let sql = discover(p).unwrap();
        assert_eq!(sql[3].kind, DumpKind::Sql);
    }
}
