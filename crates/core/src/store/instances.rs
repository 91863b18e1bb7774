//! `instances/T/N/`: an instance's metadata, datadir and snapshots, and
//! `quarantine/` for instance folders whose metadata cannot be read.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use dolly_names::{InstanceName, TemplateName, VersionName};
use serde::{Deserialize, Serialize};

use super::layout::list_names;
use super::{json, nonce, Scratch, Store, StoreError};

/// `instances/T/N/meta.json` (mode 0600: it holds the password).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceMeta {
    pub template: TemplateName,
    pub name: InstanceName,
    pub version: VersionName,
    pub password: String,
    pub database: String,
    pub container: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The host port the engine gave it.
    #[serde(default)]
    pub port: Option<u16>,
    /// Set once the instance answered `SELECT 1`.
    pub ready: bool,
    /// Never reaped nor removed by cleanup.
    #[serde(default)]
    pub protected: bool,
    /// Stopped on purpose (`stop`): not dead.
    #[serde(default)]
    pub stopped: bool,
    /// Why dolly stopped it on its own (past `instance_max_disk`);
    /// cleared by `start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
    /// An operation that had begun its destructive steps: written
    /// (durably) before the first of them, cleared after the last. The
    /// next start finishes or rolls it back ([`Store::recover_reset`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Pending>,
    /// The user who created it (`users_file`); `None` for instances made
    /// without users (before users existed, or with no auth at all):
    /// those are the admins'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Why its server does not answer with its credentials: set when a
    /// start fails (the container is then removed, so nothing unusable is
    /// reported as running), cleared by the next start that answers
    /// (`start`, `reset`, `restore`, or dollyd's own start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broken: Option<String>,
    /// Set for an instance whose port a forwarder holds (`standby` or
    /// `sleep_after` at create): see [`Forward`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward: Option<Forward>,
}

/// An instance behind a forwarder (`instance/forward.rs`): the forwarder
/// container `CONTAINER.fwd` publishes the port; the server (`container`)
/// runs in its network namespace on `inner_port`, named by the target file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Forward {
    /// Keep a standby ready for resets.
    #[serde(default)]
    pub standby: bool,
    /// Stop the server after this many idle seconds; the next connection
    /// starts it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sleep_after: Option<u64>,
    /// The server is stopped until a connection arrives.
    #[serde(default)]
    pub sleeping: bool,
    /// The next server generation: generations name standby datadirs and
    /// containers and are never reused.
    #[serde(default)]
    pub next_generation: u64,
    /// Where the current server listens inside the forwarder's namespace.
    pub inner_port: u16,
    /// The standby, once its generation is taken (before its datadir
    /// exists); `ready` once its server runs with the instance's password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spare: Option<Spare>,
    /// The snapshot the last reset went to (`None`: a version): what the
    /// next standby is a clone of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_to: Option<dolly_names::SnapshotName>,
}

/// A standby: a server on a fresh clone of the reset source, in the
/// forwarder's namespace, not reachable until a reset hands it over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spare {
    pub generation: u64,
    pub container: String,
    pub inner_port: u16,
    /// What it is a clone of: the version, or a snapshot (made at
    /// `snapshot_created`: a snapshot removed and taken again is another).
    pub version: VersionName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<(dolly_names::SnapshotName, DateTime<Utc>)>,
    pub ready: bool,
}

/// An operation in progress on an instance (its intent, in `meta.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Pending {
    /// A reset (or a restore) swapping in a datadir cloned from `version`.
    Reset { version: VersionName },
    /// A reset handing the port over to the standby of `generation`
    /// (server `container` on `inner_port`): always finished at the next
    /// start ([`Store::recover_handover`]), since the forwarder may already
    /// send clients to the standby.
    Handover {
        version: VersionName,
        generation: u64,
        container: String,
        inner_port: u16,
    },
}

/// What [`Store::recover_reset`] did with an interrupted reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetRecovery {
    /// The new datadir was in place (or could be put in place): kept.
    RolledForward,
    /// The old datadir was still whole: the instance is as before.
    RolledBack,
}

/// An instance folder set aside because its metadata could not be read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quarantined {
    pub template: TemplateName,
    pub name: InstanceName,
    pub reason: String,
    pub at: DateTime<Utc>,
    /// Where it is now.
    #[serde(skip)]
    pub path: PathBuf,
}

/// The note written beside (inside) a quarantined folder.
const NOTE: &str = "dolly-quarantine.json";

impl Store {
    /// Claims `t/n`: creates its folder, which decides same-name races
    /// across tasks and processes. [`StoreError::Exists`] if taken.
    pub fn claim_instance(&self, t: &TemplateName, n: &InstanceName) -> Result<(), StoreError> {
        let parent = self.layout.instance_parent(t);
        fs::create_dir_all(&parent).map_err(|e| StoreError::io("create", &parent, e))?;
        let dir = self.layout.instance(t, n);
        match fs::create_dir(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(StoreError::Exists(dir)),
            Err(e) => Err(StoreError::io("create", &dir, e)),
        }
    }

    /// Whether `t/n` has a folder (claimed, maybe not ready).
    pub fn instance_exists(&self, t: &TemplateName, n: &InstanceName) -> bool {
        self.layout.instance(t, n).exists()
    }

    /// The metadata of `t/n`: `None` when it has none (yet); an error when
    /// it cannot be read or parsed.
    pub fn read_instance(
        &self,
        t: &TemplateName,
        n: &InstanceName,
    ) -> Result<Option<InstanceMeta>, StoreError> {
        let path = self.layout.instance_meta(t, n);
        let meta: Option<InstanceMeta> = json::read(&path)?;
        match meta {
            Some(m) if &m.template != t || &m.name != n => Err(StoreError::Corrupt {
                path,
                reason: format!("it names another instance, {}/{}", m.template, m.name),
            }),
            other => Ok(other),
        }
    }

    /// Writes an instance's metadata (atomic, durable, 0600).
    pub fn write_instance(&self, meta: &InstanceMeta) -> Result<(), StoreError> {
        json::write(&self.layout.instance_meta(&meta.template, &meta.name), meta)
    }

    /// Every instance folder (of `only` when given), sorted.
    pub fn instance_names(
        &self,
        only: Option<&TemplateName>,
    ) -> Result<Vec<(TemplateName, InstanceName)>, StoreError> {
        let templates = match only {
            Some(t) => vec![t.clone()],
            None => {
                let dir = self.layout.instances();
                list_names(&dir, |s| TemplateName::parse(s).ok())
                    .map_err(|e| StoreError::io("list", &dir, e))?
            }
        };
        let mut out = Vec::new();
        for t in templates {
            let dir = self.layout.instance_parent(&t);
            let names = list_names(&dir, |s| InstanceName::parse(s).ok())
                .map_err(|e| StoreError::io("list", &dir, e))?;
            out.extend(names.into_iter().map(|n| (t.clone(), n)));
        }
        Ok(out)
    }

    /// The instance's datadir (it may not exist yet).
    pub fn instance_data(&self, t: &TemplateName, n: &InstanceName) -> PathBuf {
        self.layout.instance_data(t, n)
    }

    /// The init file inside the instance's datadir.
    pub fn init_file(&self, t: &TemplateName, n: &InstanceName) -> PathBuf {
        self.layout.init_file(t, n)
    }

    /// Removes the folder of `t/n` with everything in it: metadata, data,
    /// snapshots. Only for a removal a user asked for, or a half-made
    /// instance; a missing folder is fine.
    pub fn remove_instance(&self, t: &TemplateName, n: &InstanceName) -> Result<(), StoreError> {
        if let Some(aside) = self.unlink_instance(t, n)? {
            self.discard_aside(&aside)?;
        }
        Ok(())
    }

    /// The first step of a removal: the folder of `t/n` leaves
    /// `instances/` at once (one rename into `tmp/`, where a crash leaves
    /// it for the next start to remove). Returns where it went; `None` if
    /// it did not exist.
    pub fn unlink_instance(
        &self,
        t: &TemplateName,
        n: &InstanceName,
    ) -> Result<Option<PathBuf>, StoreError> {
        let dir = self.layout.instance(t, n);
        let aside = self.layout.scratch(&Scratch::Removing(nonce()));
        match fs::rename(&dir, &aside) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io("move aside", &dir, e)),
        }
        // The template's folder goes with its last instance (a failed
        // create under an unknown template leaves nothing).
        let _ = fs::remove_dir(self.layout.instance_parent(t));
        Ok(Some(aside))
    }

    /// A fresh scratch path for the datadir a reset of `t/n` clones.
    pub fn reset_scratch(&self, t: &TemplateName, n: &InstanceName) -> PathBuf {
        self.layout
            .scratch(&Scratch::ResetNew(t.clone(), n.clone(), nonce()))
    }

    /// Swaps `new` (a [`Store::reset_scratch`] clone) in as the datadir of
    /// `t/n`: the current one moves into `tmp/` first (returned), then
    /// `new` takes its place. Two renames; a crash between them is undone
    /// by [`Store::recover_reset`].
    pub fn swap_in_data(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        new: &Path,
    ) -> Result<PathBuf, StoreError> {
        let aside = self.set_aside_data(t, n)?;
        crate::faultpoint::hit("reset.half_swapped");
        let data = self.layout.instance_data(t, n);
        fs::rename(new, &data).map_err(|e| StoreError::io("swap in", new, e))?;
        Ok(aside)
    }

    /// Finishes or rolls back a reset that `meta.pending` says was
    /// interrupted, and clears the intent (written back). Rolls forward
    /// once the new datadir is in place, back while the old one still is.
    pub fn recover_reset(
        &self,
        meta: &mut InstanceMeta,
    ) -> Result<Option<ResetRecovery>, StoreError> {
        let Some(Pending::Reset { version }) = meta.pending.clone() else {
            return Ok(None);
        };
        let (t, n) = (meta.template.clone(), meta.name.clone());
        let data = self.layout.instance_data(&t, &n);
        let (mut news, mut olds) = (Vec::new(), Vec::new());
        let tmp = self.layout.tmp();
        for entry in fs::read_dir(&tmp).map_err(|e| StoreError::io("list", &tmp, e))? {
            let entry = entry.map_err(|e| StoreError::io("list", &tmp, e))?;
            match Scratch::parse(&entry.file_name().to_string_lossy()) {
                Some(Scratch::ResetNew(t2, n2, _)) if t2 == t && n2 == n => news.push(entry.path()),
                Some(Scratch::ResetOld(t2, n2, _)) if t2 == t && n2 == n => olds.push(entry.path()),
                _ => {}
            }
        }
        let outcome = if !data.exists() {
            // Between the two renames of the swap.
            if let Some(new) = news.pop() {
                fs::rename(&new, &data).map_err(|e| StoreError::io("swap in", &new, e))?;
                ResetRecovery::RolledForward
            } else if let Some(old) = olds.pop() {
                fs::rename(&old, &data).map_err(|e| StoreError::io("restore", &old, e))?;
                ResetRecovery::RolledBack
            } else {
                return Err(StoreError::Corrupt {
                    path: data,
                    reason: "a reset was interrupted and neither datadir is left".into(),
                });
            }
        } else if !news.is_empty() {
            // Before the swap: the old datadir is in place.
            ResetRecovery::RolledBack
        } else {
            // After the swap.
            ResetRecovery::RolledForward
        };
        for leftover in news {
            crate::clone::remove_tree(&leftover)
                .map_err(|e| StoreError::io("remove", &leftover, e))?;
        }
        if outcome == ResetRecovery::RolledForward {
            meta.version = version;
        }
        meta.pending = None;
        self.write_instance(meta)?;
        Ok(Some(outcome))
    }

    /// Moves the datadir of `t/n` into `tmp/` (a reset: until the new one
    /// runs); returns where it went.
    pub fn set_aside_data(
        &self,
        t: &TemplateName,
        n: &InstanceName,
    ) -> Result<PathBuf, StoreError> {
        let data = self.layout.instance_data(t, n);
        let aside = self
            .layout
            .scratch(&Scratch::ResetOld(t.clone(), n.clone(), nonce()));
        fs::rename(&data, &aside).map_err(|e| StoreError::io("move aside", &data, e))?;
        Ok(aside)
    }

    /// Puts a datadir [`Store::set_aside_data`] moved back, replacing
    /// whatever is there now.
    pub fn restore_data(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        aside: &Path,
    ) -> Result<(), StoreError> {
        let data = self.layout.instance_data(t, n);
        self.remove_via_scratch(&data, &Scratch::Removing(nonce()))?;
        fs::rename(aside, &data).map_err(|e| StoreError::io("restore", aside, e))
    }

    /// Removes a datadir [`Store::set_aside_data`] moved away.
    pub fn discard_aside(&self, aside: &Path) -> Result<(), StoreError> {
        crate::clone::remove_tree(aside).map_err(|e| StoreError::io("remove", aside, e))
    }

    /// Moves the folder of `t/n` to `quarantine/` with a note saying why;
    /// returns where it went. Nothing is removed.
    pub fn quarantine_instance(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        reason: &str,
    ) -> Result<PathBuf, StoreError> {
        let dir = self.layout.instance(t, n);
        let to = self.quarantine_path(t, n);
        fs::rename(&dir, &to).map_err(|e| StoreError::io("quarantine", &dir, e))?;
        self.write_quarantine_note(&to, t, n, reason)?;
        Ok(to)
    }

    pub(super) fn quarantine_path(&self, t: &TemplateName, n: &InstanceName) -> PathBuf {
        let when = Utc::now().format("%Y%m%dT%H%M%S");
        self.layout
            .quarantine()
            .join(format!("{t}.{n}.{when}.{}", nonce()))
    }

    pub(super) fn write_quarantine_note(
        &self,
        dir: &Path,
        t: &TemplateName,
        n: &InstanceName,
        reason: &str,
    ) -> Result<(), StoreError> {
        let note = Quarantined {
            template: t.clone(),
            name: n.clone(),
            reason: reason.to_owned(),
            at: Utc::now(),
            path: PathBuf::new(),
        };
        json::write(&dir.join(NOTE), &note)
    }

    /// What is in `quarantine/`, oldest first.
    pub fn quarantined(&self) -> Result<Vec<Quarantined>, StoreError> {
        let dir = self.layout.quarantine();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io("list", &dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io("list", &dir, e))?;
            let path = entry.path();
            // A folder moved here by hand, or with a damaged note, is
            // still listed: by its folder name.
            let note: Option<Quarantined> = json::read(&path.join(NOTE)).ok().flatten();
            let q = match note {
                Some(q) => q,
                None => {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let mut parts = name.split('.');
                    let (Some(t), Some(n)) = (
                        parts.next().and_then(|s| TemplateName::parse(s).ok()),
                        parts.next().and_then(|s| InstanceName::parse(s).ok()),
                    ) else {
                        continue;
                    };
                    Quarantined {
                        template: t,
                        name: n,
                        reason: "no note".to_owned(),
                        at: DateTime::<Utc>::from(
                            entry
                                .metadata()
                                .and_then(|m| m.modified())
                                .unwrap_or(std::time::SystemTime::UNIX_EPOCH),
                        ),
                        path: PathBuf::new(),
                    }
                }
            };
            out.push(Quarantined { path, ..q });
        }
        out.sort_by_key(|q| q.at);
        Ok(out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::testing;

    pub(crate) fn meta(t: &TemplateName, n: &InstanceName) -> InstanceMeta {
        InstanceMeta {
            template: t.clone(),
            name: n.clone(),
            version: VersionName::parse("20260101t000000z").unwrap(),
            password: "secret".into(),
            database: "shop".into(),
            container: format!("dolly-{t}.{n}"),
            created_at: Utc::now(),
            expires_at: None,
            port: Some(40001),
            ready: true,
            protected: false,
            stopped: false,
            stopped_reason: None,
            pending: None,
            owner: None,
            broken: None,
            forward: None,
        }
    }

    pub(crate) fn names() -> (TemplateName, InstanceName) {
        (
            TemplateName::parse("shop").unwrap(),
            InstanceName::parse("alice").unwrap(),
        )
    }

    #[test]
    fn a_name_can_be_claimed_once() {
        let (_dir, store) = testing::store();
        let (t, n) = names();
        store.claim_instance(&t, &n).unwrap();
        assert!(matches!(
            store.claim_instance(&t, &n),
            Err(StoreError::Exists(_))
        ));
        assert!(store.instance_exists(&t, &n));
    }

    #[test]
    fn metadata_round_trips_and_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, store) = testing::store();
        let (t, n) = names();
        store.claim_instance(&t, &n).unwrap();
        assert_eq!(store.read_instance(&t, &n).unwrap(), None);
        let m = meta(&t, &n);
        store.write_instance(&m).unwrap();
        assert_eq!(store.read_instance(&t, &n).unwrap(), Some(m));
        let path = dir.path().join("instances/shop/alice/meta.json");
        let mode = fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn damaged_metadata_is_an_error() {
        let (dir, store) = testing::store();
        let (t, n) = names();
        store.claim_instance(&t, &n).unwrap();
        fs::write(dir.path().join("instances/shop/alice/meta.json"), b"{oops").unwrap();
        assert!(matches!(
            store.read_instance(&t, &n),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn metadata_naming_another_instance_is_damaged() {
        let (_dir, store) = testing::store();
        let (t, n) = names();
        store.claim_instance(&t, &n).unwrap();
        let other = InstanceName::parse("bob").unwrap();
        let m = meta(&t, &other);
        // Written under alice's folder by hand (a copied folder).
        json::write(&store.layout.instance_meta(&t, &n), &m).unwrap();
        assert!(matches!(
            store.read_instance(&t, &n),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn names_are_listed_sorted_and_foreign_entries_ignored() {
        let (dir, store) = testing::store();
        let t = TemplateName::parse("shop").unwrap();
        for n in ["b", "a"] {
            store
                .claim_instance(&t, &InstanceName::parse(n).unwrap())
                .unwrap();
        }
        fs::create_dir_all(dir.path().join("instances/shop/Not.A.Name")).unwrap();
        let listed: Vec<String> = store
            .instance_names(None)
            .unwrap()
            .into_iter()
            .map(|(t, n)| format!("{t}/{n}"))
            .collect();
        assert_eq!(listed, vec!["shop/a", "shop/b"]);
        assert!(store
            .instance_names(Some(&TemplateName::parse("none").unwrap()))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn removal_takes_the_whole_folder_and_leaves_no_scratch() {
        let (dir, store) = testing::store();
        let (t, n) = names();
        store.claim_instance(&t, &n).unwrap();
        fs::create_dir_all(store.instance_data(&t, &n)).unwrap();
        store.remove_instance(&t, &n).unwrap();
        assert!(!store.instance_exists(&t, &n));
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        // Removing what is gone is fine.
        store.remove_instance(&t, &n).unwrap();
    }

    #[test]
    fn quarantine_moves_the_folder_with_a_note_and_lists_it() {
        let (_dir, store) = testing::store();
        let (t, n) = names();
        store.claim_instance(&t, &n).unwrap();
        fs::create_dir_all(store.instance_data(&t, &n)).unwrap();
        fs::write(store.instance_data(&t, &n).join("ibdata1"), b"data").unwrap();
        let to = store
            .quarantine_instance(&t, &n, "meta.json is damaged")
            .unwrap();
        assert!(!store.instance_exists(&t, &n));
        assert_eq!(fs::read(to.join("data/ibdata1")).unwrap(), b"data");
        let q = store.quarantined().unwrap();
        assert_eq!(q.len(), 1);
        assert_eq!(
            (q[0].template.as_str(), q[0].name.as_str()),
            ("shop", "alice")
        );
        assert_eq!(q[0].reason, "meta.json is damaged");
        assert_eq!(q[0].path, to);
    }

    #[test]
    fn a_reset_sets_the_datadir_aside_and_can_put_it_back() {
        let (_dir, store) = testing::store();
        let (t, n) = names();
        store.claim_instance(&t, &n).unwrap();
        let data = store.instance_data(&t, &n);
        fs::create_dir_all(&data).unwrap();
        fs::write(data.join("f"), b"old").unwrap();
        let aside = store.set_aside_data(&t, &n).unwrap();
        assert!(!data.exists());
        fs::create_dir_all(&data).unwrap();
        fs::write(data.join("f"), b"half-new").unwrap();
        store.restore_data(&t, &n, &aside).unwrap();
        assert_eq!(fs::read(data.join("f")).unwrap(), b"old");
        assert!(!aside.exists());
    }
}
