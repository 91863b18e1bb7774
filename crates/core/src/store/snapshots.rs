//! `instances/T/N/snapshots/S/`: a saved datadir and its metadata.

use std::fs;
use std::io;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use dolly_names::{InstanceName, SnapshotName, TemplateName, VersionName};
use serde::{Deserialize, Serialize};

use super::layout::list_names;
use super::{json, nonce, Scratch, Store, StoreError};

/// `instances/T/N/snapshots/S/meta.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub name: SnapshotName,
    pub created_at: DateTime<Utc>,
    pub message: Option<String>,
    pub size_bytes: u64,
    pub template_version: VersionName,
    pub pause_seconds: f64,
}

impl Store {
    /// Claims snapshot `s` of `t/n` ([`StoreError::Exists`] if taken).
    pub fn claim_snapshot(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        s: &SnapshotName,
    ) -> Result<(), StoreError> {
        let parent = self.layout.snapshots(t, n);
        fs::create_dir_all(&parent).map_err(|e| StoreError::io("create", &parent, e))?;
        let dir = self.layout.snapshot(t, n, s);
        match fs::create_dir(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(StoreError::Exists(dir)),
            Err(e) => Err(StoreError::io("create", &dir, e)),
        }
    }

    /// Whether snapshot `s` of `t/n` exists (complete or not).
    pub fn snapshot_exists(&self, t: &TemplateName, n: &InstanceName, s: &SnapshotName) -> bool {
        self.layout.snapshot(t, n, s).exists()
    }

    /// A fresh scratch folder to build snapshot `s` of `t/n` in: its
    /// `data/` and `meta.json` go there, then [`Store::publish_snapshot`].
    pub fn snapshot_scratch(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        s: &SnapshotName,
    ) -> Result<PathBuf, StoreError> {
        let dir = self
            .layout
            .scratch(&Scratch::Snapshot(t.clone(), n.clone(), s.clone(), nonce()));
        fs::create_dir(&dir).map_err(|e| StoreError::io("create", &dir, e))?;
        Ok(dir)
    }

    /// Writes `meta` into a snapshot being built in `scratch`, then moves
    /// it into place with one rename: a snapshot is complete and listed,
    /// or absent. [`StoreError::Exists`] if the name was taken meanwhile.
    pub fn publish_snapshot(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        meta: &SnapshotMeta,
        scratch: &std::path::Path,
    ) -> Result<(), StoreError> {
        json::write(&scratch.join("meta.json"), meta)?;
        let parent = self.layout.snapshots(t, n);
        fs::create_dir_all(&parent).map_err(|e| StoreError::io("create", &parent, e))?;
        let dir = self.layout.snapshot(t, n, &meta.name);
        if dir.exists() {
            return Err(StoreError::Exists(dir));
        }
        fs::rename(scratch, &dir).map_err(|e| StoreError::io("publish", &dir, e))?;
        json::sync_dir(&parent).map_err(|e| StoreError::io("sync", &parent, e))
    }

    /// Removes snapshot folders of `t/n` that have no `meta.json`: made by
    /// an older dolly that built snapshots in place and was interrupted.
    /// They were never listed. Returns their names.
    pub fn remove_half_made_snapshots(
        &self,
        t: &TemplateName,
        n: &InstanceName,
    ) -> Result<Vec<SnapshotName>, StoreError> {
        let dir = self.layout.snapshots(t, n);
        let names = list_names(&dir, |s| SnapshotName::parse(s).ok())
            .map_err(|e| StoreError::io("list", &dir, e))?;
        let mut removed = Vec::new();
        for s in names {
            if !self.layout.snapshot_meta(t, n, &s).exists() {
                self.remove_snapshot(t, n, &s)?;
                removed.push(s);
            }
        }
        Ok(removed)
    }

    /// The snapshot's datadir.
    pub fn snapshot_data(&self, t: &TemplateName, n: &InstanceName, s: &SnapshotName) -> PathBuf {
        self.layout.snapshot_data(t, n, s)
    }

    /// A snapshot's metadata; `None` when it has none (missing or half-made).
    pub fn read_snapshot(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        s: &SnapshotName,
    ) -> Result<Option<SnapshotMeta>, StoreError> {
        json::read(&self.layout.snapshot_meta(t, n, s))
    }

    pub fn write_snapshot(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        meta: &SnapshotMeta,
    ) -> Result<(), StoreError> {
        json::write(&self.layout.snapshot_meta(t, n, &meta.name), meta)
    }

    /// The complete snapshots of `t/n`, oldest first. A damaged one is an
    /// error, not a gap: callers decide what to keep from it.
    pub fn snapshots(
        &self,
        t: &TemplateName,
        n: &InstanceName,
    ) -> Result<Vec<SnapshotMeta>, StoreError> {
        let dir = self.layout.snapshots(t, n);
        let names = list_names(&dir, |s| SnapshotName::parse(s).ok())
            .map_err(|e| StoreError::io("list", &dir, e))?;
        let mut out = Vec::new();
        for s in names {
            if let Some(m) = self.read_snapshot(t, n, &s)? {
                out.push(m);
            }
        }
        out.sort_by_key(|s| s.created_at);
        Ok(out)
    }

    /// Whether `t/n` has any snapshot folder at all (complete or not).
    pub fn has_snapshots(&self, t: &TemplateName, n: &InstanceName) -> Result<bool, StoreError> {
        let dir = self.layout.snapshots(t, n);
        list_names(&dir, |s| SnapshotName::parse(s).ok())
            .map(|v| !v.is_empty())
            .map_err(|e| StoreError::io("list", &dir, e))
    }

    /// Removes snapshot `s` of `t/n` (a missing one is fine).
    pub fn remove_snapshot(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        s: &SnapshotName,
    ) -> Result<(), StoreError> {
        let dir = self.layout.snapshot(t, n, s);
        self.remove_via_scratch(&dir, &Scratch::Removing(nonce()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    fn names() -> (TemplateName, InstanceName, SnapshotName) {
        (
            TemplateName::parse("shop").unwrap(),
            InstanceName::parse("alice").unwrap(),
            SnapshotName::parse("before").unwrap(),
        )
    }

    fn meta(s: &SnapshotName, secs: i64) -> SnapshotMeta {
        SnapshotMeta {
            name: s.clone(),
            created_at: DateTime::<Utc>::from_timestamp(secs, 0).unwrap(),
            message: None,
            size_bytes: 1,
            template_version: VersionName::parse("v1").unwrap(),
            pause_seconds: 0.1,
        }
    }

    #[test]
    fn snapshots_are_claimed_once_and_listed_oldest_first() {
        let (_dir, store) = testing::store();
        let (t, n, s) = names();
        let later = SnapshotName::parse("after").unwrap();
        store.claim_snapshot(&t, &n, &s).unwrap();
        assert!(matches!(
            store.claim_snapshot(&t, &n, &s),
            Err(StoreError::Exists(_))
        ));
        store.claim_snapshot(&t, &n, &later).unwrap();
        store.write_snapshot(&t, &n, &meta(&later, 200)).unwrap();
        store.write_snapshot(&t, &n, &meta(&s, 100)).unwrap();
        let names: Vec<_> = store
            .snapshots(&t, &n)
            .unwrap()
            .into_iter()
            .map(|m| m.name.to_string())
            .collect();
        assert_eq!(names, vec!["before", "after"]);
        assert!(store.has_snapshots(&t, &n).unwrap());
    }

    #[test]
    fn a_half_made_snapshot_is_not_listed_but_counts_as_present() {
        let (_dir, store) = testing::store();
        let (t, n, s) = names();
        store.claim_snapshot(&t, &n, &s).unwrap();
        assert!(store.snapshots(&t, &n).unwrap().is_empty());
        assert!(store.has_snapshots(&t, &n).unwrap());
    }

    #[test]
    fn a_damaged_snapshot_makes_the_listing_fail() {
        let (_dir, store) = testing::store();
        let (t, n, s) = names();
        store.claim_snapshot(&t, &n, &s).unwrap();
        fs::write(store.layout.snapshot_meta(&t, &n, &s), b"nope").unwrap();
        assert!(matches!(
            store.snapshots(&t, &n),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn a_snapshot_is_published_whole_by_rename() {
        let (_dir, store) = testing::store();
        let (t, n, s) = names();
        let scratch = store.snapshot_scratch(&t, &n, &s).unwrap();
        fs::create_dir(scratch.join("data")).unwrap();
        assert!(!store.snapshot_exists(&t, &n, &s));
        store
            .publish_snapshot(&t, &n, &meta(&s, 1), &scratch)
            .unwrap();
        assert!(!scratch.exists());
        assert_eq!(store.snapshots(&t, &n).unwrap().len(), 1);
        let again = store.snapshot_scratch(&t, &n, &s).unwrap();
        assert!(matches!(
            store.publish_snapshot(&t, &n, &meta(&s, 2), &again),
            Err(StoreError::Exists(_))
        ));
    }

    #[test]
    fn half_made_snapshots_are_removed_complete_ones_kept() {
        let (_dir, store) = testing::store();
        let (t, n, s) = names();
        let half = SnapshotName::parse("half").unwrap();
        store.claim_snapshot(&t, &n, &s).unwrap();
        store.write_snapshot(&t, &n, &meta(&s, 1)).unwrap();
        store.claim_snapshot(&t, &n, &half).unwrap();
        assert_eq!(
            store.remove_half_made_snapshots(&t, &n).unwrap(),
            vec![half]
        );
        assert_eq!(store.snapshots(&t, &n).unwrap().len(), 1);
    }

    #[test]
    fn removing_a_snapshot_takes_its_folder() {
        let (_dir, store) = testing::store();
        let (t, n, s) = names();
        store.claim_snapshot(&t, &n, &s).unwrap();
        store.write_snapshot(&t, &n, &meta(&s, 1)).unwrap();
        store.remove_snapshot(&t, &n, &s).unwrap();
        assert_eq!(store.read_snapshot(&t, &n, &s).unwrap(), None);
        assert!(!store.has_snapshots(&t, &n).unwrap());
    }
}
