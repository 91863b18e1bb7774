//! `cache/`: what dolly makes once per image id instead of at every use.
//! `cache/init/KEY/` is an initialised, read-only system datadir per image
//! id and initialisation command, which imports clone instead of running
//! the server's initialisation each time; `cache/probe/KEY.json` is what
//! probing the image found (its server flavour, mysql user and version).
//!
//! Invariant: a folder under `cache/init/` is complete. It is built in
//! `tmp/` and renamed into place; only the newest key is kept (an image
//! rebuilt under the same tag makes the old one useless).

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use sha2::Digest;
use tracing::{info, warn};

use super::{Scratch, Store, StoreError};

/// What a cached initial datadir is for: a digest of the image id and the
/// initialisation command (16 hex digits), so that a rebuilt image or a
/// dolly that initialises differently never reuses it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey(String);

impl CacheKey {
    pub fn new(image_id: &str, init_command: &[String]) -> Self {
        let mut h = sha2::Sha256::new();
        h.update(image_id.as_bytes());
        for word in init_command {
            h.update([0u8]);
            h.update(word.as_bytes());
        }
        let digest = h.finalize();
        CacheKey(hex::encode(&digest[..8]))
    }

    /// Parses a folder name written by [`CacheKey::new`].
    pub(super) fn parse(s: &str) -> Option<Self> {
        (s.len() == 16
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
        .then(|| CacheKey(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Store {
    /// What probing the image `key` names found, if it was kept.
    pub fn image_probe<T: serde::de::DeserializeOwned>(
        &self,
        key: &CacheKey,
    ) -> Result<Option<T>, StoreError> {
        super::json::read(&self.layout.image_probe(key))
    }

    /// Keeps what probing the image `key` names found.
    pub fn write_image_probe<T: serde::Serialize>(
        &self,
        key: &CacheKey,
        probe: &T,
    ) -> Result<(), StoreError> {
        let dir = self.layout.probe_cache();
        fs::create_dir_all(&dir).map_err(|e| StoreError::io("create", &dir, e))?;
        super::json::write(&self.layout.image_probe(key), probe)
    }

    /// The cached initial datadir for `key`, if one was made.
    pub fn init_datadir(&self, key: &CacheKey) -> Result<Option<PathBuf>, StoreError> {
        let path = self.layout.init_datadir(key);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => Ok(Some(path)),
            Ok(_) => Err(StoreError::Corrupt {
                path,
                reason: "not a folder".into(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io("read", &path, e)),
        }
    }

    /// Moves `built` (an initialised datadir in `tmp/`) into the cache as
    /// `key` and removes the entries of other keys. When another import
    /// made `key` first, `built` goes and theirs stays.
    pub fn publish_init_datadir(
        &self,
        key: &CacheKey,
        built: &Path,
    ) -> Result<PathBuf, StoreError> {
        let dir = self.layout.init_cache();
        fs::create_dir_all(&dir).map_err(|e| StoreError::io("create", &dir, e))?;
        let path = self.layout.init_datadir(key);
        if self.init_datadir(key)?.is_some() {
            self.remove_via_scratch(built, &Scratch::Removing(super::nonce()))?;
            return Ok(path);
        }
        fs::rename(built, &path).map_err(|e| StoreError::io("publish", &path, e))?;
        super::json::sync_dir(&dir).map_err(|e| StoreError::io("sync", &dir, e))?;
        info!(key = %key, "initial datadir cached");
        let entries = fs::read_dir(&dir).map_err(|e| StoreError::io("list", &dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io("list", &dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            match CacheKey::parse(&name) {
                Some(other) if other != *key => {
                    let aside = Scratch::Removing(super::nonce());
                    if let Err(e) = self.remove_via_scratch(&entry.path(), &aside) {
                        warn!(error = %e, key = %other, "cannot remove an old initial datadir");
                    }
                }
                _ => {}
            }
        }
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    fn cmd(s: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), s.into()]
    }

    #[test]
    fn the_key_changes_with_the_image_and_the_command() {
        let a = CacheKey::new("sha256:aaa", &cmd("install-db"));
        assert_eq!(a, CacheKey::new("sha256:aaa", &cmd("install-db")));
        assert_ne!(a, CacheKey::new("sha256:bbb", &cmd("install-db")));
        assert_ne!(a, CacheKey::new("sha256:aaa", &cmd("install-db --other")));
        assert_eq!(CacheKey::parse(a.as_str()), Some(a));
        assert_eq!(CacheKey::parse("../etc"), None);
    }

    #[test]
    fn a_published_datadir_replaces_older_keys_and_a_second_build_goes() {
        let (_dir, store) = testing::store();
        let build = |key: &CacheKey, x: &str| {
            let p = store.scratch(&Scratch::Init(key.clone(), x.into()));
            fs::create_dir_all(&p).unwrap();
            fs::write(p.join("ibdata1"), x).unwrap();
            p
        };
        let old = CacheKey::new("sha256:old", &cmd("i"));
        let new = CacheKey::new("sha256:new", &cmd("i"));
        assert_eq!(store.init_datadir(&old).unwrap(), None);
        let p_old = store.publish_init_datadir(&old, &build(&old, "a")).unwrap();
        assert_eq!(store.init_datadir(&old).unwrap(), Some(p_old.clone()));
        let p_new = store.publish_init_datadir(&new, &build(&new, "b")).unwrap();
        assert!(!p_old.exists(), "the old image's datadir goes");
        let second = build(&new, "c");
        assert_eq!(store.publish_init_datadir(&new, &second).unwrap(), p_new);
        assert!(!second.exists());
        assert_eq!(fs::read(p_new.join("ibdata1")).unwrap(), b"b");
    }
}
