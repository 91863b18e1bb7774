//! One dump read as a single decompressed stream: its files concatenated,
//! compressed bytes counted for progress, lines scanned for the first
//! `CREATE DATABASE` and mysqldump's trailer.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::{Compression, Dump, DumpError, DumpKind, PhysicalForm};

impl Dump {
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
pub(super) mod tests {
    use super::*;
    use crate::dump::discover;
    use std::io::Write;

    pub(in crate::dump) fn read_all(d: &Dump) -> io::Result<(String, Scan)> {
        let mut r = d.open(Arc::new(AtomicU64::new(0)));
        let mut s = String::new();
        r.read_to_string(&mut s)?;
        let scan = r.scan().lock().unwrap().clone();
        Ok((s, scan))
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
