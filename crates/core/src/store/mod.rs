//! The store: the one owner of the data folder.
//!
//! Every file and folder dolly keeps lives under one root (see
//! [`layout`] for the tree). This module and its children are the only
//! code that builds a path inside it, always from name types, and every
//! write of metadata goes through one atomic, durable JSON writer
//! ([`json`]).
//!
//! Invariants:
//! - reading state never fails open: a missing file is `Ok(None)`, an
//!   unreadable or damaged one is an error ([`StoreError::Corrupt`],
//!   [`StoreError::Io`]), and callers keep the data when they see one;
//! - nothing is deleted in place: a folder to remove is first renamed into
//!   `tmp/` (it disappears atomically), then removed; what a crash leaves
//!   there is sorted out by [`Store::clean_scratch`];
//! - an instance folder whose metadata cannot be read is moved to
//!   `quarantine/`, never removed ([`Store::quarantine_instance`]).
//!
//! Every operation is blocking: async callers reach the store through
//! [`AsyncStore`], which runs each one on the blocking pool.

mod folder_lock;
mod forward;
mod init_cache;
mod instances;
mod json;
mod layout;
mod offload;
mod pool;
mod queries;
mod schemas;
mod scratch;
mod snapshots;
mod templates;

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub use folder_lock::FolderLock;
pub use forward::Target;
pub use init_cache::CacheKey;
pub use instances::{Forward, InstanceMeta, Pending, Quarantined, ResetRecovery, Spare};
pub use offload::AsyncStore;
pub use pool::{MemberMeta, PoolSize};
pub use scratch::{Cleaned, Scratch};
pub use snapshots::SnapshotMeta;
pub use templates::{
    Fingerprint, HashedFile, ImportLock, ImportProgress, LastImport, LoadInfo, Masking, VersionMeta,
};

use layout::Layout;

/// `DATA/format.json`: only its `format` field, which the one writer adds.
#[derive(serde::Serialize, serde::Deserialize)]
struct FormatMarker {}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is damaged ({reason}); dolly keeps it as it is")]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "{path} was written by a newer dolly (file format {found}; this one reads up to {}): run that dolly, or restore a backup",
        json::FORMAT
    )]
    NewerFormat { path: PathBuf, found: u64 },
    #[error("{0} already exists")]
    Exists(PathBuf),
    #[error("another import of this template holds {0}")]
    Locked(PathBuf),
    #[error(
        "the data folder {path} is in use by {holder}; one dollyd serves a data folder at a time"
    )]
    InUse { path: PathBuf, holder: String },
}

impl StoreError {
    pub(crate) fn io(action: &'static str, path: &Path, source: io::Error) -> Self {
        StoreError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    /// The filesystem is full (`ENOSPC`, `EDQUOT`).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StoreError::Io { source, .. }
            if matches!(source.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT)))
    }

    /// What was not found (a folder the caller expected).
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

/// Free and total bytes of the data folder's filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    pub free: u64,
    pub total: u64,
}

/// The data folder.
#[derive(Debug, Clone)]
pub struct Store {
    layout: Layout,
}

impl Store {
    /// Opens the data folder at `root`, creating its top-level folders.
    /// `engine_root` is the same folder as the container engine sees it.
    pub fn open(root: &Path, engine_root: &Path) -> Result<Self, StoreError> {
        let layout = Layout::new(root, engine_root);
        layout
            .create()
            .map_err(|e| StoreError::io("create", root, e))?;
        // The folder's format marker: a data folder a newer dolly wrote is
        // refused as a whole, before anything in it is read or tidied.
        let marker = layout.format_marker();
        match json::read::<FormatMarker>(&marker)? {
            Some(_) => {}
            None => json::write(&marker, &FormatMarker {})?,
        }
        Ok(Self { layout })
    }

    pub fn root(&self) -> &Path {
        self.layout.root()
    }

    /// `path` (inside the data folder) as the container engine sees it.
    pub fn for_engine(&self, path: &Path) -> PathBuf {
        self.layout.for_engine(path)
    }

    /// The folder `dollyd update` reads dumps from.
    pub fn dumps(&self) -> PathBuf {
        self.layout.dumps()
    }

    /// Free and total bytes of the data folder's filesystem.
    pub fn space(&self) -> Result<Space, StoreError> {
        let root = self.layout.root();
        let c = CString::new(root.as_os_str().as_bytes())
            .map_err(|e| StoreError::io("measure", root, io::Error::other(e)))?;
        // SAFETY: a zeroed statvfs is a valid buffer for the call to fill.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `c` is a valid NUL-terminated path and `st` a valid buffer.
        if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
            return Err(StoreError::io("measure", root, io::Error::last_os_error()));
        }
        let frsize = st.f_frsize;
        Ok(Space {
            free: st.f_bavail * frsize,
            total: st.f_blocks * frsize,
        })
    }

    /// Writes and removes a small file in `tmp/`: the folder is writable.
    pub fn probe_writable(&self) -> Result<(), StoreError> {
        let probe = self.layout.tmp().join(".readyz");
        std::fs::write(&probe, b"ok")
            .and_then(|()| std::fs::remove_file(&probe))
            .map_err(|e| StoreError::io("write", &probe, e))
    }

    /// Probes whether files in the data folder can be cloned with reflinks.
    pub fn detect_clone_mode(&self) -> Result<crate::clone::CloneMode, StoreError> {
        let tmp = self.layout.tmp();
        crate::clone::CloneMode::detect(&tmp).map_err(|e| StoreError::io("probe", &tmp, e))
    }

    /// What the data folder's filesystem can do about a per-instance disk
    /// limit ([`crate::disk_limit`]).
    pub fn detect_filesystem(&self) -> Result<crate::disk_limit::Filesystem, StoreError> {
        let root = self.layout.root();
        crate::disk_limit::Filesystem::detect(root).map_err(|e| StoreError::io("look at", root, e))
    }

    /// Bytes the folder of `t/n` (its datadir and snapshots) holds beyond
    /// its template: its apparent size less one copy of `version`'s
    /// datadir per datadir (reflinked extents shared with the template are
    /// not its own until rewritten). Apparent sizes: InnoDB files grow as
    /// rows are written, which is what a limit after the fact watches.
    pub fn instance_growth(
        &self,
        t: &dolly_names::TemplateName,
        n: &dolly_names::InstanceName,
        version: &dolly_names::VersionName,
    ) -> Result<u64, StoreError> {
        let folder = crate::clone::tree_size(&self.layout.instance(t, n));
        let template = crate::clone::tree_size(&self.layout.template_version(t, version));
        let snapshots = self.snapshots(t, n)?.len() as u64;
        Ok(folder.saturating_sub(template.saturating_mul(1 + snapshots)))
    }

    /// The exclusive bytes of the datadir subvolume of `t/n` (btrfs with
    /// quotas only).
    pub fn instance_exclusive_bytes(
        &self,
        t: &dolly_names::TemplateName,
        n: &dolly_names::InstanceName,
    ) -> Result<u64, StoreError> {
        let data = self.layout.instance_data(t, n);
        crate::disk_limit::exclusive_bytes(&data).map_err(|e| StoreError::io("measure", &data, e))
    }

    /// Renames `path` (inside the data folder) into `tmp/` under `scratch`,
    /// then removes it: it disappears at once, and a crash mid-removal
    /// leaves scratch, not a half-removed folder.
    fn remove_via_scratch(&self, path: &Path, scratch: &Scratch) -> Result<(), StoreError> {
        let aside = self.layout.scratch(scratch);
        match std::fs::rename(path, &aside) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StoreError::io("move aside", path, e)),
        }
        crate::clone::remove_tree(&aside).map_err(|e| StoreError::io("remove", &aside, e))
    }
}

/// A short random suffix for scratch names.
pub fn nonce() -> String {
    let bytes: [u8; 6] = rand::random();
    hex::encode(bytes)
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A store in a fresh temporary folder.
    pub fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path(), dir.path()).expect("open store");
        (dir, store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_folder_a_newer_dolly_wrote_is_refused_whole() {
        use std::fs;
        let (dir, _store) = testing::store();
        let marker = dir.path().join("format.json");
        let raw: serde_json::Value = serde_json::from_slice(&fs::read(&marker).unwrap()).unwrap();
        assert_eq!(raw["format"], json::FORMAT);
        // Opening again (the same format) is fine.
        Store::open(dir.path(), dir.path()).unwrap();
        fs::write(&marker, format!("{{\"format\": {}}}", json::FORMAT + 1)).unwrap();
        let err = Store::open(dir.path(), dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::NewerFormat { .. }), "{err}");
        assert!(err.to_string().contains("newer dolly"), "{err}");
    }

    #[test]
    fn opening_creates_the_top_level_folders() {
        let (dir, _store) = testing::store();
        for sub in [
            "dumps",
            "templates",
            "instances",
            "tmp",
            "locks",
            "quarantine",
        ] {
            assert!(dir.path().join(sub).is_dir(), "{sub}");
        }
    }

    #[test]
    fn space_reports_the_filesystem() {
        let (_dir, store) = testing::store();
        let space = store.space().unwrap();
        assert!(space.total > 0 && space.free <= space.total);
    }

    #[test]
    fn space_of_a_vanished_folder_is_an_error_not_zero() {
        let (dir, store) = testing::store();
        drop(dir);
        assert!(store.space().is_err());
    }

    #[test]
    fn the_data_folder_is_probed_writable() {
        let (_dir, store) = testing::store();
        store.probe_writable().unwrap();
    }

    #[test]
    fn engine_paths_follow_the_engine_root() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Path::new("/srv/host/data")).unwrap();
        let inside = dir.path().join("instances/shop/a/data");
        assert_eq!(
            store.for_engine(&inside),
            PathBuf::from("/srv/host/data/instances/shop/a/data")
        );
    }
}
