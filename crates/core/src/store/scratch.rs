//! `tmp/`: work in progress, named after what it holds, so that what a
//! crash leaves behind is sorted out by kind at the next start.

use std::fs;
use std::path::PathBuf;

use dolly_names::{InstanceName, SnapshotName, TemplateName, VersionName};
use tracing::warn;

use super::{Store, StoreError};

/// A scratch folder in `tmp/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scratch {
    /// An import's datadir until it is published (`import.T.V`).
    Import(TemplateName, VersionName),
    /// The rows files an import's server reads with `LOAD DATA`, for as
    /// long as its load runs (`import-rows.T.V`).
    ImportRows(TemplateName, VersionName),
    /// A template version on its way out (`version-trash.T.V`).
    OldVersion(TemplateName, VersionName),
    /// An instance's datadir a reset set aside until the new one runs
    /// (`reset-old.T.N.X`).
    ResetOld(TemplateName, InstanceName, String),
    /// The datadir a reset clones before swapping it in (`reset-new.T.N.X`).
    ResetNew(TemplateName, InstanceName, String),
    /// A snapshot being taken, published by rename (`snapshot.T.N.S.X`).
    Snapshot(TemplateName, InstanceName, SnapshotName, String),
    /// An instance folder or snapshot being removed (`removing.X`).
    Removing(String),
    /// An archive being unpacked (`archive.T.N.X`).
    Archive(TemplateName, InstanceName, String),
    /// A throwaway clone a server runs on briefly (`throwaway.T.X`), e.g.
    /// to read a version's schema.
    Throwaway(TemplateName, String),
    /// An initial datadir being made for the cache (`init.KEY.X`).
    Init(super::CacheKey, String),
}

impl Scratch {
    pub(super) fn file_name(&self) -> String {
        match self {
            Scratch::Import(t, v) => format!("import.{t}.{v}"),
            Scratch::ImportRows(t, v) => format!("import-rows.{t}.{v}"),
            Scratch::OldVersion(t, v) => format!("version-trash.{t}.{v}"),
            Scratch::ResetOld(t, n, x) => format!("reset-old.{t}.{n}.{x}"),
            Scratch::ResetNew(t, n, x) => format!("reset-new.{t}.{n}.{x}"),
            Scratch::Snapshot(t, n, s, x) => format!("snapshot.{t}.{n}.{s}.{x}"),
            Scratch::Removing(x) => format!("removing.{x}"),
            Scratch::Archive(t, n, x) => format!("archive.{t}.{n}.{x}"),
            Scratch::Throwaway(t, x) => format!("throwaway.{t}.{x}"),
            Scratch::Init(k, x) => format!("init.{k}.{x}"),
        }
    }

    /// Parses a name written by [`Scratch::file_name`] (and the `trash.`
    /// names older versions wrote).
    pub(super) fn parse(name: &str) -> Option<Self> {
        let parts: Vec<&str> = name.split('.').collect();
        let t = |i: usize| parts.get(i).and_then(|s| TemplateName::parse(s).ok());
        let n = |i: usize| parts.get(i).and_then(|s| InstanceName::parse(s).ok());
        let v = |i: usize| parts.get(i).and_then(|s| VersionName::parse(s).ok());
        let x = |i: usize| parts.get(i).map(|s| s.to_string());
        match (parts.first().copied()?, parts.len()) {
            ("import", 3) => Some(Scratch::Import(t(1)?, v(2)?)),
            ("import-rows", 3) => Some(Scratch::ImportRows(t(1)?, v(2)?)),
            ("version-trash", 3) | ("trash", 3) => Some(Scratch::OldVersion(t(1)?, v(2)?)),
            ("reset-old", 4) | ("trash", 4) => Some(Scratch::ResetOld(t(1)?, n(2)?, x(3)?)),
            ("reset-new", 4) => Some(Scratch::ResetNew(t(1)?, n(2)?, x(3)?)),
            ("snapshot", 5) => Some(Scratch::Snapshot(
                t(1)?,
                n(2)?,
                parts.get(3).and_then(|s| SnapshotName::parse(s).ok())?,
                x(4)?,
            )),
            ("removing", 2) => Some(Scratch::Removing(x(1)?)),
            ("archive", 4) => Some(Scratch::Archive(t(1)?, n(2)?, x(3)?)),
            ("throwaway", 3) => Some(Scratch::Throwaway(t(1)?, x(2)?)),
            ("init", 3) => Some(Scratch::Init(super::CacheKey::parse(parts[1])?, x(2)?)),
            _ => None,
        }
    }
}

/// What [`Store::clean_scratch`] did with one left-over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cleaned {
    Removed(PathBuf),
    /// A reset's old datadir put back under its instance, whose datadir
    /// was missing.
    Restored(PathBuf),
}

impl Store {
    /// A fresh scratch path (nothing is created).
    pub fn scratch(&self, s: &Scratch) -> PathBuf {
        self.layout.scratch(s)
    }

    /// Templates whose imports left a datadir in `tmp/` (running or not).
    pub fn import_scratch_templates(&self) -> Result<Vec<TemplateName>, StoreError> {
        let tmp = self.layout.tmp();
        let entries = match fs::read_dir(&tmp) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io("list", &tmp, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io("list", &tmp, e))?;
            if let Some(Scratch::Import(t, _)) =
                Scratch::parse(&entry.file_name().to_string_lossy())
            {
                if !out.contains(&t) {
                    out.push(t);
                }
            }
        }
        Ok(out)
    }

    /// Removes every import datadir of `t` in `tmp/`: what interrupted
    /// imports left. The caller holds the template's import lock (the
    /// [`ImportLock`](super::ImportLock) proves it).
    pub fn remove_import_scratch(
        &self,
        t: &TemplateName,
        _held: &super::ImportLock,
    ) -> Result<Vec<PathBuf>, StoreError> {
        let tmp = self.layout.tmp();
        let entries = match fs::read_dir(&tmp) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io("list", &tmp, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io("list", &tmp, e))?;
            match Scratch::parse(&entry.file_name().to_string_lossy()) {
                Some(Scratch::Import(t2, _) | Scratch::ImportRows(t2, _)) if &t2 == t => {
                    let path = entry.path();
                    crate::clone::remove_tree(&path)
                        .map_err(|e| StoreError::io("remove", &path, e))?;
                    out.push(path);
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Sorts out what a crash left in `tmp/`: interrupted imports (except
    /// those of a template `importing` says runs now), removals and
    /// unpacked archives go; a reset's old datadir is put back when its
    /// instance has none, and otherwise kept in quarantine. Never removes
    /// anything it does not recognise.
    pub fn clean_scratch(
        &self,
        importing: impl Fn(&TemplateName) -> bool,
    ) -> Result<Vec<Cleaned>, StoreError> {
        let tmp = self.layout.tmp();
        let entries = fs::read_dir(&tmp).map_err(|e| StoreError::io("list", &tmp, e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io("list", &tmp, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(kind) = Scratch::parse(&name) else {
                continue;
            };
            let path = entry.path();
            match kind {
                Scratch::Import(t, _) | Scratch::ImportRows(t, _) if importing(&t) => continue,
                // Run after reconcile finished every reset intent: an old
                // datadir beside the instance's datadir is one a completed
                // reset had not removed yet; one whose instance has no
                // datadir is put back.
                Scratch::ResetOld(t, n, _) => {
                    let data = self.layout.instance_data(&t, &n);
                    let meta = self.layout.instance_meta(&t, &n);
                    if meta.exists() && !data.exists() {
                        fs::rename(&path, &data)
                            .map_err(|e| StoreError::io("restore", &path, e))?;
                        warn!(template = %t, instance = %n, "an interrupted reset left the datadir aside: put back");
                        out.push(Cleaned::Restored(data));
                    } else {
                        crate::clone::remove_tree(&path)
                            .map_err(|e| StoreError::io("remove", &path, e))?;
                        out.push(Cleaned::Removed(path));
                    }
                }
                _ => {
                    crate::clone::remove_tree(&path)
                        .map_err(|e| StoreError::io("remove", &path, e))?;
                    out.push(Cleaned::Removed(path));
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    fn t() -> TemplateName {
        TemplateName::parse("shop").unwrap()
    }
    fn v() -> VersionName {
        VersionName::parse("20260101t000000z").unwrap()
    }
    fn n() -> InstanceName {
        InstanceName::parse("ci-1").unwrap()
    }

    #[test]
    fn scratch_names_round_trip() {
        for s in [
            Scratch::Import(t(), v()),
            Scratch::ImportRows(t(), v()),
            Scratch::OldVersion(t(), v()),
            Scratch::ResetOld(t(), n(), "ab12".into()),
            Scratch::ResetNew(t(), n(), "ab12".into()),
            Scratch::Snapshot(t(), n(), SnapshotName::parse("s1").unwrap(), "ab12".into()),
            Scratch::Removing("ab12".into()),
            Scratch::Archive(t(), n(), "ab12".into()),
            Scratch::Throwaway(t(), "ab12".into()),
            Scratch::Init(super::super::CacheKey::new("sha256:x", &[]), "ab12".into()),
        ] {
            assert_eq!(Scratch::parse(&s.file_name()), Some(s));
        }
        assert_eq!(Scratch::parse(".readyz"), None);
        assert_eq!(Scratch::parse("import.Shop.x"), None);
    }

    #[test]
    fn cleaning_keeps_the_import_that_runs_and_unknown_files() {
        let (_dir, store) = testing::store();
        let running = store.scratch(&Scratch::Import(t(), v()));
        let other_t = TemplateName::parse("blog").unwrap();
        let stale = store.scratch(&Scratch::Import(other_t, v()));
        fs::create_dir_all(&running).unwrap();
        fs::create_dir_all(&stale).unwrap();
        let unknown = store.layout.tmp().join("someone-elses-file");
        fs::write(&unknown, b"x").unwrap();
        let cleaned = store.clean_scratch(|x| *x == t()).unwrap();
        assert_eq!(cleaned, vec![Cleaned::Removed(stale.clone())]);
        assert!(running.exists() && unknown.exists() && !stale.exists());
    }

    #[test]
    fn a_reset_interrupted_before_the_new_clone_is_put_back() {
        let (_dir, store) = testing::store();
        store.claim_instance(&t(), &n()).unwrap();
        store
            .write_instance(&crate::store::instances::tests::meta(&t(), &n()))
            .unwrap();
        let aside = store.scratch(&Scratch::ResetOld(t(), n(), "x1".into()));
        fs::create_dir_all(&aside).unwrap();
        fs::write(aside.join("ibdata1"), b"precious").unwrap();
        let cleaned = store.clean_scratch(|_| false).unwrap();
        let data = store.instance_data(&t(), &n());
        assert_eq!(cleaned, vec![Cleaned::Restored(data.clone())]);
        assert_eq!(fs::read(data.join("ibdata1")).unwrap(), b"precious");
    }

    #[test]
    fn the_old_datadir_of_a_completed_reset_is_removed() {
        let (_dir, store) = testing::store();
        store.claim_instance(&t(), &n()).unwrap();
        store
            .write_instance(&crate::store::instances::tests::meta(&t(), &n()))
            .unwrap();
        fs::create_dir_all(store.instance_data(&t(), &n())).unwrap();
        let aside = store.scratch(&Scratch::ResetOld(t(), n(), "x1".into()));
        fs::create_dir_all(&aside).unwrap();
        fs::write(aside.join("ibdata1"), b"precious").unwrap();
        let cleaned = store.clean_scratch(|_| false).unwrap();
        assert_eq!(cleaned, vec![Cleaned::Removed(aside.clone())]);
        assert!(store.instance_data(&t(), &n()).exists());
        assert!(!aside.exists());
    }
}
