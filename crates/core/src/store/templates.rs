//! `templates/T/`: published versions, the `current` link, the last
//! import's outcome, and `locks/T.lock`.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use dolly_names::{TemplateName, VersionName};
use serde::{Deserialize, Serialize};

use super::layout::list_names;
use super::{json, Scratch, Store, StoreError};

/// `templates/T/VERSION.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionMeta {
    pub version: VersionName,
    pub created_at: DateTime<Utc>,
    pub source_dump: String,
    pub database: String,
    pub import_seconds: f64,
    pub dump_bytes: u64,
    pub size_bytes: u64,
    pub image: String,
    pub server_version: String,
    /// What the import read: the dump's files, the post-import scripts and
    /// the image (see [`Fingerprint`]); an unchanged one skips the import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
    /// Post-import scripts that ran, in order, with their hashes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_scripts: Vec<HashedFile>,
    /// How the dump was loaded: sessions, tables whose keys were deferred,
    /// and why the split stopped if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadInfo>,
    /// How production values were kept out of the version's files; none:
    /// the dump was loaded as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masking: Option<Masking>,
}

/// What a version records about its masking (README, "Masking").
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Masking {
    /// The rules file applied to the dump's rows as they streamed in, with
    /// its hash (`dumps/NAME.mask.toml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<HashedFile>,
    /// The rules file said `strict = true` and every column had a rule.
    #[serde(default)]
    pub strict: bool,
    /// Post scripts ran, and what they changed was rebuilt, the undo log
    /// purged and the redo log replaced before publication.
    #[serde(default)]
    pub post_script_cleanup: bool,
}

/// A file and the SHA-256 of its bytes (as stored: compressed dumps are
/// hashed compressed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashedFile {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

/// Everything an import's result depends on besides dolly itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub dump: Vec<HashedFile>,
    pub post_scripts: Vec<HashedFile>,
    /// The masking rules file, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask_rules: Option<HashedFile>,
    /// The image's name and its server's version string.
    pub image: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadInfo {
    pub sessions: usize,
    pub tables: usize,
    pub deferred_key_tables: usize,
    /// Tables whose rows went to several sessions.
    #[serde(default)]
    pub spread_tables: usize,
    /// `INSERT`s whose rows went to the server as `LOAD DATA` files.
    #[serde(default)]
    pub rows_files: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

/// `templates/T/last-import.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastImport {
    pub ok: bool,
    pub finished_at: DateTime<Utc>,
    pub dump: String,
    pub message: String,
    pub version: Option<VersionName>,
}

/// `templates/T/import-progress.json`: a running import, as the importing
/// process last wrote it (about every second).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportProgress {
    /// `hash`, `load`, `indexes`, `prepare`, `post` or `publish`.
    pub phase: String,
    /// The dump (file or folder) being imported.
    #[serde(default)]
    pub source: String,
    /// Seconds since the import of this source began (its hash included).
    #[serde(default)]
    pub elapsed_seconds: u64,
    /// Bytes of the dump read (compressed bytes for a compressed dump).
    pub bytes_read: u64,
    pub bytes_total: u64,
    pub percent: f64,
    /// Read rate since the import started.
    pub mb_per_s: f64,
    /// Estimated time left reading the dump (`None` once it is read).
    pub eta_seconds: Option<u64>,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Held while a template imports; released on drop (also by a crash: the
/// kernel drops the lock with the process).
#[derive(Debug)]
pub struct ImportLock {
    _file: File,
}

impl Store {
    /// Every template with a folder (published, importing for the first
    /// time, or whose only import failed), sorted.
    pub fn template_names(&self) -> Result<Vec<TemplateName>, StoreError> {
        let dir = self.layout.templates();
        list_names(&dir, |s| TemplateName::parse(s).ok())
            .map_err(|e| StoreError::io("list", &dir, e))
    }

    /// The live version of `t`; `None` when it has none.
    pub fn current_version(&self, t: &TemplateName) -> Result<Option<VersionName>, StoreError> {
        let link = self.layout.template_current(t);
        let target = match fs::read_link(&link) {
            Ok(target) => target,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io("read", &link, e)),
        };
        target
            .file_name()
            .and_then(|s| s.to_str())
            .and_then(|s| VersionName::parse(s).ok())
            .map(Some)
            .ok_or_else(|| StoreError::Corrupt {
                path: link,
                reason: format!("it points at {}", target.display()),
            })
    }

    /// The metadata of version `v` of `t`.
    pub fn version_meta(
        &self,
        t: &TemplateName,
        v: &VersionName,
    ) -> Result<Option<VersionMeta>, StoreError> {
        json::read(&self.layout.template_version_meta(t, v))
    }

    /// Published versions of `t` (a folder and its metadata), oldest first.
    /// A version whose metadata is damaged is an error: callers that remove
    /// versions must not mistake it for absent.
    pub fn versions(&self, t: &TemplateName) -> Result<Vec<VersionMeta>, StoreError> {
        let dir = self.layout.template(t);
        let names = list_names(&dir, |s| {
            s.strip_suffix(".json")
                .and_then(|v| VersionName::parse(v).ok())
        })
        .map_err(|e| StoreError::io("list", &dir, e))?;
        let mut out = Vec::new();
        for v in names {
            if !self.layout.template_version(t, &v).is_dir() {
                continue;
            }
            if let Some(m) = self.version_meta(t, &v)? {
                out.push(m);
            }
        }
        Ok(out)
    }

    /// Whether version `v` of `t` has its datadir.
    pub fn version_exists(&self, t: &TemplateName, v: &VersionName) -> bool {
        self.layout.template_version(t, v).is_dir()
    }

    /// The datadir of version `v` of `t` (read-only).
    pub fn version_data(&self, t: &TemplateName, v: &VersionName) -> PathBuf {
        self.layout.template_version(t, v)
    }

    /// A version name for a new import of `t`: the time, made unique.
    pub fn new_version(&self, t: &TemplateName) -> VersionName {
        let base = Utc::now().format("%Y%m%dt%H%M%Sz").to_string();
        let mut candidate = base.clone();
        let mut n = 1;
        loop {
            if let Ok(v) = VersionName::parse(&candidate) {
                if !self.layout.template_version(t, &v).exists()
                    && !self
                        .scratch(&Scratch::Import(t.clone(), v.clone()))
                        .exists()
                {
                    return v;
                }
            }
            n += 1;
            candidate = format!("{base}-{n}");
        }
    }

    /// Publishes `work` (a complete, cleanly shut down datadir in `tmp/`)
    /// as version `meta.version` of `t` and makes it current: metadata
    /// first, then the folder by rename, then `current` by renaming a new
    /// link over the old one. Readers see the old or the new version.
    pub fn publish_version(
        &self,
        t: &TemplateName,
        meta: &VersionMeta,
        work: &std::path::Path,
    ) -> Result<(), StoreError> {
        let dir = self.layout.template(t);
        fs::create_dir_all(&dir).map_err(|e| StoreError::io("create", &dir, e))?;
        let v = &meta.version;
        json::write(&self.layout.template_version_meta(t, v), meta)?;
        let target = self.layout.template_version(t, v);
        fs::rename(work, &target).map_err(|e| StoreError::io("publish", &target, e))?;
        crate::faultpoint::hit("publish.renamed");
        self.switch_current(t, v)
    }

    /// Points `current` of `t` at `v` (one rename of a new link).
    fn switch_current(&self, t: &TemplateName, v: &VersionName) -> Result<(), StoreError> {
        let dir = self.layout.template(t);
        let link_tmp = dir.join(format!(".current-{v}"));
        let _ = fs::remove_file(&link_tmp);
        std::os::unix::fs::symlink(v.as_str(), &link_tmp)
            .map_err(|e| StoreError::io("create", &link_tmp, e))?;
        let current = self.layout.template_current(t);
        fs::rename(&link_tmp, &current).map_err(|e| StoreError::io("switch", &current, e))?;
        json::sync_dir(&dir).map_err(|e| StoreError::io("sync", &dir, e))
    }

    /// Finishes a publication a crash cut between the version's rename into
    /// place and the switch of `current` (an import or a promote killed
    /// there): a template with complete versions (datadir and metadata,
    /// both in place before the rename) but no `current` gets its newest
    /// one as `current`. Returns the version made current, if any.
    pub fn recover_publish(&self, t: &TemplateName) -> Result<Option<VersionName>, StoreError> {
        if self.current_version(t)?.is_some() {
            return Ok(None);
        }
        let Some(newest) = self.versions(t)?.pop() else {
            return Ok(None);
        };
        self.switch_current(t, &newest.version)?;
        Ok(Some(newest.version))
    }

    /// Removes versions of `t` beyond the newest `keep`, except the current
    /// one and those in `in_use`. Returns the versions removed.
    pub fn remove_unused_versions(
        &self,
        t: &TemplateName,
        keep: usize,
        in_use: &HashSet<VersionName>,
    ) -> Result<Vec<VersionName>, StoreError> {
        let current = self.current_version(t)?;
        let all = self.versions(t)?;
        let newest: HashSet<&VersionName> =
            all.iter().rev().take(keep).map(|m| &m.version).collect();
        let mut removed = Vec::new();
        for meta in &all {
            let v = &meta.version;
            if Some(v) == current.as_ref() || in_use.contains(v) || newest.contains(v) {
                continue;
            }
            // Out of sight first, so nobody resolves a half-removed version.
            let dir = self.layout.template_version(t, v);
            self.remove_via_scratch(&dir, &Scratch::OldVersion(t.clone(), v.clone()))?;
            let meta_path = self.layout.template_version_meta(t, v);
            fs::remove_file(&meta_path).map_err(|e| StoreError::io("remove", &meta_path, e))?;
            removed.push(v.clone());
        }
        Ok(removed)
    }

    /// The outcome of the last import of `t`.
    pub fn last_import(&self, t: &TemplateName) -> Result<Option<LastImport>, StoreError> {
        json::read(&self.layout.template_last_import(t))
    }

    pub fn write_last_import(&self, t: &TemplateName, last: &LastImport) -> Result<(), StoreError> {
        let dir = self.layout.template(t);
        fs::create_dir_all(&dir).map_err(|e| StoreError::io("create", &dir, e))?;
        json::write(&self.layout.template_last_import(t), last)
    }

    /// Records the running import's progress (atomically: readers in
    /// another process see the old or the new document).
    pub fn write_import_progress(
        &self,
        t: &TemplateName,
        progress: &ImportProgress,
    ) -> Result<(), StoreError> {
        let dir = self.layout.template(t);
        fs::create_dir_all(&dir).map_err(|e| StoreError::io("create", &dir, e))?;
        json::write(&self.layout.template_import_progress(t), progress)
    }

    /// The progress the importing process last wrote; `None` when no
    /// import of `t` runs (a file a dead import left is ignored).
    pub fn import_progress(&self, t: &TemplateName) -> Result<Option<ImportProgress>, StoreError> {
        if !self.is_importing(t) {
            return Ok(None);
        }
        json::read(&self.layout.template_import_progress(t))
    }

    pub fn remove_import_progress(&self, t: &TemplateName) -> Result<(), StoreError> {
        let path = self.layout.template_import_progress(t);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(StoreError::io("remove", &path, e))
            }
            _ => Ok(()),
        }
    }

    /// Takes the import lock of `t` ([`StoreError::Locked`] when another
    /// import, in this process or another, holds it).
    pub fn lock_import(&self, t: &TemplateName) -> Result<ImportLock, StoreError> {
        let path = self.layout.import_lock(t);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::io("open", &path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(ImportLock { _file: file }),
            Err(fs::TryLockError::WouldBlock) => Err(StoreError::Locked(path)),
            Err(fs::TryLockError::Error(e)) => Err(StoreError::io("lock", &path, e)),
        }
    }

    /// An import of `t` runs now (in this process or another).
    pub fn is_importing(&self, t: &TemplateName) -> bool {
        let path = self.layout.import_lock(t);
        match File::options().write(true).open(&path) {
            Ok(f) => matches!(f.try_lock(), Err(fs::TryLockError::WouldBlock)),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    fn t() -> TemplateName {
        TemplateName::parse("shop").unwrap()
    }

    fn publish(store: &Store, v: &str) -> VersionName {
        let v = VersionName::parse(v).unwrap();
        let work = store.scratch(&Scratch::Import(t(), v.clone()));
        fs::create_dir_all(&work).unwrap();
        fs::write(work.join("ibdata1"), v.as_str()).unwrap();
        let meta = VersionMeta {
            version: v.clone(),
            created_at: Utc::now(),
            source_dump: "shop.sql".into(),
            database: "shop".into(),
            import_seconds: 1.0,
            dump_bytes: 10,
            size_bytes: 10,
            image: "img".into(),
            server_version: "11".into(),
            fingerprint: None,
            post_scripts: vec![],
            load: None,
            masking: None,
        };
        store.publish_version(&t(), &meta, &work).unwrap();
        v
    }

    #[test]
    fn a_publication_cut_before_current_is_finished_and_a_live_current_is_kept() {
        let (_dir, store) = testing::store();
        let v1 = publish(&store, "v1");
        // Killed after the rename, before the switch: no `current`.
        fs::remove_file(store.layout.template_current(&t())).unwrap();
        assert_eq!(store.current_version(&t()).unwrap(), None);
        assert_eq!(store.recover_publish(&t()).unwrap(), Some(v1.clone()));
        assert_eq!(store.current_version(&t()).unwrap(), Some(v1.clone()));
        // A template with a current keeps it, even with a newer version.
        publish(&store, "v2");
        store.switch_current(&t(), &v1).unwrap();
        assert_eq!(store.recover_publish(&t()).unwrap(), None);
        assert_eq!(store.current_version(&t()).unwrap(), Some(v1));
        // Nothing published: nothing to do.
        let other = TemplateName::parse("none").unwrap();
        assert_eq!(store.recover_publish(&other).unwrap(), None);
    }

    #[test]
    fn publishing_switches_current_and_lists_versions() {
        let (_dir, store) = testing::store();
        assert_eq!(store.current_version(&t()).unwrap(), None);
        let v1 = publish(&store, "v1");
        assert_eq!(store.current_version(&t()).unwrap(), Some(v1.clone()));
        let v2 = publish(&store, "v2");
        assert_eq!(store.current_version(&t()).unwrap(), Some(v2.clone()));
        let listed: Vec<_> = store
            .versions(&t())
            .unwrap()
            .into_iter()
            .map(|m| m.version)
            .collect();
        assert_eq!(listed, vec![v1.clone(), v2]);
        assert_eq!(
            fs::read(store.version_data(&t(), &v1).join("ibdata1")).unwrap(),
            b"v1"
        );
        assert_eq!(store.template_names().unwrap(), vec![t()]);
    }

    #[test]
    fn unused_versions_go_but_current_kept_and_used_ones_stay() {
        let (_dir, store) = testing::store();
        let v1 = publish(&store, "v1");
        let v2 = publish(&store, "v2");
        let v3 = publish(&store, "v3");
        let in_use = HashSet::from([v1.clone()]);
        let removed = store.remove_unused_versions(&t(), 1, &in_use).unwrap();
        assert_eq!(removed, vec![v2.clone()]);
        let left: Vec<_> = store
            .versions(&t())
            .unwrap()
            .into_iter()
            .map(|m| m.version)
            .collect();
        assert_eq!(left, vec![v1, v3]);
        assert!(!store.version_data(&t(), &v2).exists());
    }

    #[test]
    fn a_damaged_version_stops_the_cleanup_instead_of_vanishing() {
        let (_dir, store) = testing::store();
        let v1 = publish(&store, "v1");
        publish(&store, "v2");
        fs::write(store.layout.template_version_meta(&t(), &v1), b"{").unwrap();
        assert!(store
            .remove_unused_versions(&t(), 0, &HashSet::new())
            .is_err());
        assert!(store.version_data(&t(), &v1).exists());
    }

    #[test]
    fn a_dangling_current_link_is_damage() {
        let (dir, store) = testing::store();
        let tdir = dir.path().join("templates/shop");
        fs::create_dir_all(&tdir).unwrap();
        std::os::unix::fs::symlink("Not A Version", tdir.join("current")).unwrap();
        assert!(matches!(
            store.current_version(&t()),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn the_import_lock_is_exclusive_and_visible() {
        let (_dir, store) = testing::store();
        assert!(!store.is_importing(&t()));
        let lock = store.lock_import(&t()).unwrap();
        assert!(store.is_importing(&t()));
        assert!(matches!(
            store.lock_import(&t()),
            Err(StoreError::Locked(_))
        ));
        drop(lock);
        assert!(!store.is_importing(&t()));
        store.lock_import(&t()).unwrap();
    }

    #[test]
    fn new_versions_never_collide() {
        let (_dir, store) = testing::store();
        let a = store.new_version(&t());
        fs::create_dir_all(store.scratch(&Scratch::Import(t(), a.clone()))).unwrap();
        let b = store.new_version(&t());
        assert_ne!(a, b);
    }

    #[test]
    fn the_last_import_round_trips() {
        let (_dir, store) = testing::store();
        assert_eq!(store.last_import(&t()).unwrap(), None);
        let last = LastImport {
            ok: false,
            finished_at: Utc::now(),
            dump: "shop.sql".into(),
            message: "truncated".into(),
            version: None,
        };
        store.write_last_import(&t(), &last).unwrap();
        assert_eq!(store.last_import(&t()).unwrap(), Some(last));
    }
}
