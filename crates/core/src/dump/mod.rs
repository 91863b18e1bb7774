//! SQL dumps in the dumps folder, read as one decompressed stream.
//!
//! A dump is `NAME.sql`, `NAME.sql.gz`, `NAME.sql.zst`, or a folder `NAME/`
//! whose `*.sql[.gz|.zst]` files are applied in lexical order. Compressed
//! files are decompressed on the fly, never to disk.
//!
//! Post-import SQL: `NAME.post.sql` and `NAME.post.d/*.sql` (lexical
//! order) run after the dump, in the same import.
//!
//! A physical backup is a dump too ([`DumpKind::Physical`]):
//! `NAME.xbstream[.gz|.zst]` (`mariadb-backup --backup --stream=xbstream`)
//! or a folder `NAME/` holding a `--target-dir` result, recognised by its
//! `mariadb_backup_checkpoints` or `xtrabackup_checkpoints` file.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use dolly_types::TemplateName;
use tracing::debug;

pub use crate::store::{Fingerprint, HashedFile};

pub mod split;
pub mod statements;

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("no dump for template '{0}' in the dumps folder")]
    NotFound(TemplateName),
    #[error("dump {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

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

    /// SHA-256 of every file the import reads (the dump's files as stored,
    /// the post scripts) and the image: an import of the same fingerprint
    /// gives the same template.
    pub fn fingerprint(&self, image: &str) -> Result<Fingerprint, DumpError> {
        let hash_all = |paths: &mut dyn Iterator<Item = &PathBuf>| {
            paths
                .map(|p| hash_file(p))
                .collect::<Result<Vec<_>, DumpError>>()
        };
        // A file of a folder is named by its path in the folder: a backup
        // holds `t.ibd` in several schemas' folders.
        let dump = self
            .files
            .iter()
            .map(|(p, _)| {
                let mut hashed = hash_file(p)?;
                if let Ok(rel) = p.strip_prefix(&self.path) {
                    if !rel.as_os_str().is_empty() {
                        hashed.name = rel.to_string_lossy().into_owned();
                    }
                }
                Ok(hashed)
            })
            .collect::<Result<Vec<_>, DumpError>>()?;
        Ok(Fingerprint {
            dump,
            post_scripts: hash_all(&mut self.post_scripts.iter())?,
            image: image.to_owned(),
        })
    }

    /// Opens the physical backup stream `NAME.xbstream[.gz|.zst]`,
    /// decompressed; `read` counts compressed bytes read. `None` for any
    /// other kind of dump.
    pub fn open_backup_stream(
        &self,
        read: Arc<AtomicU64>,
    ) -> Option<Result<Box<dyn Read + Send>, DumpError>> {
        match self.kind {
            DumpKind::Physical(PhysicalForm::Stream(c)) => Some(
                decoder(&self.path, c, read).map_err(|source| DumpError::Io {
                    path: self.path.clone(),
                    source,
                }),
            ),
            _ => None,
        }
    }

    /// Opens the dump as one stream. `read` counts compressed bytes read.
    pub fn open(&self, read: Arc<AtomicU64>) -> DumpReader {
        DumpReader {
            files: self.files.clone().into_iter().rev().collect(),
            current: None,
            read,
            scan: Arc::new(Mutex::new(Scan::default())),
        }
    }
}

/// Every dump in `dir`, sorted by template name. Entries that are not
/// dumps are skipped with a debug line.
pub fn discover(dir: &Path) -> Result<Vec<Dump>, DumpError> {
    let io_err = |source| DumpError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut dumps: Vec<Dump> = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(dumps),
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
        let dump = if file_type.is_dir() {
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
                })
            })
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
    }
    Ok(dumps)
}

/// SHA-256 of a file's bytes.
pub fn hash_file(path: &Path) -> Result<HashedFile, DumpError> {
    use sha2::Digest;
    let io_err = |source| DumpError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = File::open(path).map_err(io_err)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io_err)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        h.update(&buf[..n]);
    }
    Ok(HashedFile {
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        bytes,
        sha256: h.finalize().iter().map(|b| format!("{b:02x}")).collect(),
    })
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
            Some((_, c)) if entry.path().is_file() => files.push((entry.path(), c)),
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
    })
}

/// `path` decompressed as `compression` says; `read` counts the bytes read
/// from the file.
fn decoder(
    path: &Path,
    compression: Compression,
    read: Arc<AtomicU64>,
) -> io::Result<Box<dyn Read + Send>> {
    let file = File::open(path)?;
    let counted = Counting { inner: file, read };
    Ok(match compression {
        Compression::None => Box::new(BufReader::with_capacity(1 << 20, counted)),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            1 << 20,
            counted,
        ))),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(counted)?),
    })
}

/// What the stream showed: the first database it creates, whether it looks
/// like a complete mysqldump, how much SQL it held.
#[derive(Debug, Default, Clone)]
pub struct Scan {
    pub first_database: Option<String>,
    pub sql_bytes: u64,
    /// Started with mysqldump's header line.
    mysqldump_header: bool,
    /// mysqldump's trailer was the last comment seen.
    completed: bool,
    /// A line cut by a buffer boundary.
    partial: Vec<u8>,
}

impl Scan {
    /// A mysqldump file that lacks its closing "Dump completed" comment was
    /// cut short.
    pub fn looks_truncated(&self) -> bool {
        self.mysqldump_header && !self.completed
    }

    fn feed(&mut self, buf: &[u8]) {
        let start_of_stream = self.sql_bytes == 0;
        self.sql_bytes += buf.len() as u64;
        if start_of_stream {
            self.mysqldump_header =
                buf.starts_with(b"-- MySQL dump") || buf.starts_with(b"-- MariaDB dump");
        }
        let mut rest = buf;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            let line_end = &rest[..pos];
            if self.partial.is_empty() {
                self.line(line_end);
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(line_end);
                self.line(&line);
            }
            rest = &rest[pos + 1..];
        }
        // Only the start of a cut line matters (keywords are at its start).
        if self.partial.len() < 256 {
            let take = rest.len().min(256 - self.partial.len());
            self.partial.extend_from_slice(&rest[..take]);
        }
    }

    fn line(&mut self, line: &[u8]) {
        if line.starts_with(b"-- Dump completed") {
            self.completed = true;
        } else if !line.is_empty() && !line.starts_with(b"--") {
            // Statements after the trailer (another file of a folder).
            if self.completed && !line.starts_with(b"/*!") && !line.starts_with(b"/*M!") {
                self.completed = false;
            }
        }
        if self.first_database.is_none() {
            // `CREATE SCHEMA` is `CREATE DATABASE` (sakila writes it).
            for prefix in [&b"CREATE DATABASE "[..], b"CREATE SCHEMA "] {
                if line.len() > prefix.len() && line[..prefix.len()].eq_ignore_ascii_case(prefix) {
                    self.first_database = database_name(&line[prefix.len()..]);
                }
            }
        }
    }
}

/// The name in `/*!32312 IF NOT EXISTS*/ `shop` ...` or `IF NOT EXISTS shop;`.
fn database_name(rest: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(rest);
    let mut s = text.as_ref();
    if let Some(after) = s.strip_prefix("/*!32312 IF NOT EXISTS*/") {
        s = after;
    }
    s = s.trim_start();
    if let Some(after) = s.strip_prefix("IF NOT EXISTS") {
        s = after.trim_start();
    }
    let name = if let Some(quoted) = s.strip_prefix('`') {
        quoted.split('`').next()?
    } else {
        s.split(|c: char| c.is_whitespace() || c == ';').next()?
    };
    (!name.is_empty()).then(|| name.to_owned())
}

/// The decompressed concatenation of a dump's files.
pub struct DumpReader {
    /// Files still to open, last first.
    files: Vec<(PathBuf, Compression)>,
    current: Option<(PathBuf, Box<dyn Read + Send>)>,
    read: Arc<AtomicU64>,
    scan: Arc<Mutex<Scan>>,
}

impl DumpReader {
    /// What the stream showed so far.
    pub fn scan(&self) -> Arc<Mutex<Scan>> {
        Arc::clone(&self.scan)
    }
}

struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl Read for DumpReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.current.is_none() {
                let Some((path, compression)) = self.files.pop() else {
                    return Ok(0);
                };
                let reader = decoder(&path, compression, Arc::clone(&self.read))
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
                self.current = Some((path, reader));
            }
            let Some((path, reader)) = self.current.as_mut() else {
                continue;
            };
            match reader.read(buf) {
                Ok(0) => {
                    // Separate files as the client would see separate scripts.
                    self.current = None;
                    if !self.files.is_empty() {
                        buf[0] = b'\n';
                        return Ok(1);
                    }
                }
                Ok(n) => {
                    if let Ok(mut scan) = self.scan.lock() {
                        scan.feed(&buf[..n]);
                    }
                    return Ok(n);
                }
                Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read_all(d: &Dump) -> io::Result<(String, Scan)> {
        let mut r = d.open(Arc::new(AtomicU64::new(0)));
        let mut s = String::new();
        r.read_to_string(&mut s)?;
        let scan = r.scan().lock().unwrap().clone();
        Ok((s, scan))
    }

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
        std::fs::create_dir(p.join("plain.post.d")).unwrap();
        std::fs::write(p.join("plain.post.d/20-b.sql"), "SELECT 2;\n").unwrap();
        std::fs::write(p.join("plain.post.d/10-a.sql"), "SELECT 1;\n").unwrap();
        std::fs::write(p.join("plain.post.d/notes.txt"), "no").unwrap();

        let dumps = discover(p).unwrap();
        let names: Vec<_> = dumps.iter().map(|d| d.template.as_str()).collect();
        assert_eq!(names, ["folder", "gz", "plain", "zst"]);
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
    fn scan_finds_the_first_database_and_truncation() {
        let mut s = Scan::default();
        s.feed(b"-- MariaDB dump 10.19\n--\nCREATE DATABASE /*!32312 IF NOT EXISTS*/ `sh");
        s.feed(b"op` /*!40100 DEFAULT CHARACTER SET utf8mb4 */;\nCREATE DATABASE `other`;\n");
        assert_eq!(s.first_database.as_deref(), Some("shop"));
        let mut sakila = Scan::default();
        sakila.feed(b"SET NAMES utf8mb4;\nCREATE SCHEMA sakila;\nUSE sakila;\n");
        assert_eq!(sakila.first_database.as_deref(), Some("sakila"));
        assert!(s.looks_truncated());
        s.feed(b"INSERT INTO t VALUES (1);\n-- Dump completed on 2026-11-23\n");
        assert!(!s.looks_truncated());
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

    #[test]
    fn truncated_gzip_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&vec![b'x'; 100_000]).unwrap();
        let bytes = gz.finish().unwrap();
        std::fs::write(dir.path().join("t.sql.gz"), &bytes[..bytes.len() / 2]).unwrap();
        let dumps = discover(dir.path()).unwrap();
        assert!(read_all(&dumps[0]).is_err());
    }
}
