//! The one JSON writer and reader of the data folder.
//!
//! Every metadata file is written the same way: a temporary file beside the
//! target (mode 0600), `fsync`, `rename` over the target, `fsync` of the
//! folder. A reader sees the old or the new document, never a torn one,
//! and a crash never leaves an empty file where metadata was.
//!
//! Every document carries `"format"`: the version of the data folder's file
//! formats it was written in ([`FORMAT`]). A document from a newer format
//! is refused ([`StoreError::NewerFormat`]), never half-understood; one
//! without the field is format 1 (written before the field existed).

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::StoreError;

/// The version of the data folder's file formats this dolly writes and
/// reads. Raise it when a file's meaning changes in a way an older dolly
/// would misread, and teach `read` to upgrade the older formats.
pub(crate) const FORMAT: u64 = 1;

/// Writes `value` to `path` atomically and durably, readable by its owner
/// only (metadata may hold a password).
pub(crate) fn write<T: Serialize>(path: &Path, value: &T) -> Result<(), StoreError> {
    let serialize_error = |e: serde_json::Error| StoreError::Io {
        action: "serialize",
        path: path.to_path_buf(),
        source: io::Error::other(e),
    };
    let mut doc = serde_json::to_value(value).map_err(serialize_error)?;
    if let serde_json::Value::Object(map) = &mut doc {
        map.insert("format".to_owned(), FORMAT.into());
    }
    let text = serde_json::to_vec_pretty(&doc).map_err(serialize_error)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let written = (|| {
        let mut f = fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&staging)?;
        f.write_all(&text)?;
        f.sync_all()
    })();
    if let Err(source) = written {
        let _ = fs::remove_file(&staging);
        return Err(StoreError::io("write", &staging, source));
    }
    fs::rename(&staging, path).map_err(|e| StoreError::io("write", path, e))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir).map_err(|e| StoreError::io("sync", dir, e))?;
    }
    Ok(())
}

/// Reads a JSON document: `None` when the file does not exist; an error
/// when it cannot be read ([`StoreError::Io`]) or parsed
/// ([`StoreError::Corrupt`]). Never a silent `None` for a damaged file.
pub(crate) fn read<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, StoreError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io("read", path, e)),
    };
    let corrupt = |e: serde_json::Error| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let doc: serde_json::Value = serde_json::from_slice(&bytes).map_err(corrupt)?;
    let format = doc.get("format").and_then(serde_json::Value::as_u64);
    if let Some(found) = format.filter(|f| *f > FORMAT) {
        return Err(StoreError::NewerFormat {
            path: path.to_path_buf(),
            found,
        });
    }
    serde_json::from_value(doc).map(Some).map_err(corrupt)
}

/// Makes a rename or a new entry in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Doc {
        a: u32,
    }

    #[test]
    fn writes_private_files_and_reads_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.json");
        write(&path, &Doc { a: 7 }).unwrap();
        assert_eq!(read::<Doc>(&path).unwrap(), Some(Doc { a: 7 }));
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // No staging file left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn documents_carry_their_format_and_a_newer_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.json");
        write(&path, &Doc { a: 7 }).unwrap();
        let raw: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(raw["format"], FORMAT);
        // Written before the field existed: format 1.
        fs::write(&path, b"{\"a\": 3}").unwrap();
        assert_eq!(read::<Doc>(&path).unwrap(), Some(Doc { a: 3 }));
        fs::write(&path, format!("{{\"a\": 3, \"format\": {}}}", FORMAT + 1)).unwrap();
        assert!(matches!(
            read::<Doc>(&path),
            Err(StoreError::NewerFormat { found, .. }) if found == FORMAT + 1
        ));
    }

    #[test]
    fn a_missing_file_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read::<Doc>(&dir.path().join("nope.json")).unwrap(), None);
    }

    #[test]
    fn a_damaged_file_is_corrupt_not_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.json");
        fs::write(&path, b"{\"a\": ").unwrap();
        assert!(matches!(
            read::<Doc>(&path),
            Err(StoreError::Corrupt { .. })
        ));
        fs::write(&path, b"").unwrap();
        assert!(matches!(
            read::<Doc>(&path),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn an_unreadable_file_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        // A folder where a file is expected cannot be read as one.
        let path = dir.path().join("meta.json");
        fs::create_dir(&path).unwrap();
        assert!(matches!(read::<Doc>(&path), Err(StoreError::Io { .. })));
    }

    #[test]
    fn rewriting_replaces_the_document() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.json");
        write(&path, &Doc { a: 1 }).unwrap();
        write(&path, &Doc { a: 2 }).unwrap();
        assert_eq!(read::<Doc>(&path).unwrap(), Some(Doc { a: 2 }));
    }
}
