//! The files of an instance behind a forwarder: the target file the
//! forwarder reads at each connection, the wake-up requests it leaves, and
//! the datadirs of standby generations (`instances/T/N/standby/gG`).

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use dolly_names::{InstanceName, TemplateName};

use super::instances::{InstanceMeta, Pending};
use super::layout::list_names;
use super::{nonce, Scratch, Store, StoreError};

/// What the forwarder relays new connections to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The server listening on this port of the forwarder's namespace.
    Port(u16),
    /// Nothing yet: a connection leaves a wake-up request and waits.
    Sleeping,
    /// A server is starting: a connection waits.
    Starting,
    /// Nothing: a connection is closed at once.
    Stopped,
}

impl Target {
    fn text(self) -> String {
        match self {
            Target::Port(p) => format!("{p}\n"),
            Target::Sleeping => "sleeping\n".to_owned(),
            Target::Starting => "starting\n".to_owned(),
            Target::Stopped => "stopped\n".to_owned(),
        }
    }
}

const TARGET: &str = "target";
const WAKE_REQUEST: &str = "request";

impl Store {
    /// Makes the forwarder's two folders of `t/n` (the target's, which it
    /// mounts read-only, and the wake-up folder, writable by anyone: the
    /// forwarder runs as `nobody`); returns them as the engine sees them.
    pub fn forward_dirs(
        &self,
        t: &TemplateName,
        n: &InstanceName,
    ) -> Result<(PathBuf, PathBuf), StoreError> {
        let forward = self.layout.instance_forward(t, n);
        let wake = self.layout.instance_wake(t, n);
        for (dir, mode) in [(&forward, 0o755), (&wake, 0o777)] {
            fs::create_dir_all(dir).map_err(|e| StoreError::io("create", dir, e))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(mode))
                .map_err(|e| StoreError::io("chmod", dir, e))?;
        }
        Ok((self.for_engine(&forward), self.for_engine(&wake)))
    }

    /// Points the forwarder of `t/n` at `target` for the connections that
    /// arrive from now on (one rename: a connection reads the old target
    /// or the new one). Not fsynced: after a crash, reconcile writes it
    /// again from `meta.json`.
    pub fn write_target(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        target: Target,
    ) -> Result<(), StoreError> {
        let dir = self.layout.instance_forward(t, n);
        let path = dir.join(TARGET);
        let tmp = dir.join(format!(".{TARGET}.{}", nonce()));
        let write = || -> io::Result<()> {
            let mut f = fs::OpenOptions::new()
                .create_new(true)
                .write(true)
                .mode(0o644)
                .open(&tmp)?;
            f.write_all(target.text().as_bytes())?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            StoreError::io("write", &path, e)
        })
    }

    /// What the target file of `t/n` says now (for tests and checks).
    pub fn read_target(&self, t: &TemplateName, n: &InstanceName) -> Option<String> {
        fs::read_to_string(self.layout.instance_forward(t, n).join(TARGET))
            .ok()
            .map(|s| s.trim().to_owned())
    }

    /// Whether a connection asked for the sleeping server of `t/n`.
    pub fn wake_requested(&self, t: &TemplateName, n: &InstanceName) -> bool {
        self.layout.instance_wake(t, n).join(WAKE_REQUEST).exists()
    }

    /// Clears the wake-up request of `t/n` (a missing one is fine).
    pub fn clear_wake_request(&self, t: &TemplateName, n: &InstanceName) {
        let _ = fs::remove_file(self.layout.instance_wake(t, n).join(WAKE_REQUEST));
    }

    /// Puts `binary` (the forwarders' relay, `dolly-forward`) at its place
    /// in the data folder, unless the same bytes are there, and returns
    /// that path as the engine sees it (forwarders mount it read-only: the
    /// data folder is the one host path the engine and dollyd share, also
    /// when dollyd runs in a container). A new binary replaces the old by
    /// one rename: a forwarder that runs keeps the file it mounted.
    pub fn install_forward_binary(&self, binary: &[u8]) -> Result<PathBuf, StoreError> {
        let path = self.layout.forward_binary();
        let same = fs::read(&path).is_ok_and(|there| there == binary);
        if !same {
            let Some(dir) = path.parent() else {
                return Err(StoreError::io(
                    "install",
                    &path,
                    io::ErrorKind::InvalidInput.into(),
                ));
            };
            let tmp = dir.join(format!(".dolly-forward.{}", nonce()));
            let write = || -> io::Result<()> {
                fs::create_dir_all(dir)?;
                fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
                let mut f = fs::OpenOptions::new()
                    .create_new(true)
                    .write(true)
                    .mode(0o755)
                    .open(&tmp)?;
                f.write_all(binary)?;
                f.sync_all()?;
                fs::rename(&tmp, &path)
            };
            write().map_err(|e| {
                let _ = fs::remove_file(&tmp);
                StoreError::io("install", &path, e)
            })?;
        }
        Ok(self.for_engine(&path))
    }

    /// Where the standby of `generation` is cloned to; its parent exists.
    pub fn standby_data(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        generation: u64,
    ) -> Result<PathBuf, StoreError> {
        let dir = self.layout.standbys(t, n);
        fs::create_dir_all(&dir).map_err(|e| StoreError::io("create", &dir, e))?;
        Ok(self.layout.standby_data(t, n, generation))
    }

    /// Removes the standby datadirs of `t/n` but `keep`'s (each leaves by
    /// one rename into `tmp/` first). Returns how many went.
    pub fn prune_standbys(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        keep: Option<u64>,
    ) -> Result<usize, StoreError> {
        let dir = self.layout.standbys(t, n);
        let gens = list_names(&dir, |s| s.strip_prefix('g')?.parse::<u64>().ok())
            .map_err(|e| StoreError::io("list", &dir, e))?;
        let mut removed = 0;
        for g in gens.into_iter().filter(|g| Some(*g) != keep) {
            let path = self.layout.standby_data(t, n, g);
            let aside = self.layout.scratch(&Scratch::Removing(nonce()));
            match fs::rename(&path, &aside) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::io("move aside", &path, e)),
            }
            crate::clone::remove_tree(&aside).map_err(|e| StoreError::io("remove", &aside, e))?;
            removed += 1;
        }
        Ok(removed)
    }

    /// Makes the standby datadir of `generation` the datadir of `t/n` (its
    /// server keeps running on it: a rename moves no inode). The current
    /// datadir goes into `tmp/` first (returned; `None` if there was
    /// none, as in a recovery that already moved it).
    pub fn swap_in_standby(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        generation: u64,
    ) -> Result<Option<PathBuf>, StoreError> {
        let standby = self.layout.standby_data(t, n, generation);
        let data = self.layout.instance_data(t, n);
        let aside = if data.exists() {
            Some(self.set_aside_data(t, n)?)
        } else {
            None
        };
        crate::faultpoint::hit("handover.half_swapped");
        fs::rename(&standby, &data).map_err(|e| StoreError::io("swap in", &standby, e))?;
        Ok(aside)
    }

    /// Finishes a handover that `meta.pending` says was interrupted: the
    /// standby's datadir becomes the instance's (unless it already is),
    /// its server the instance's server, and the intent is cleared
    /// (written back). Always forward: clients may already have reached
    /// the standby. The old datadir left in `tmp/` is removed by
    /// `clean_scratch` (the instance has a datadir again). Returns whether
    /// there was one to finish.
    pub fn recover_handover(&self, meta: &mut InstanceMeta) -> Result<bool, StoreError> {
        let Some(Pending::Handover {
            version,
            generation,
            container,
            inner_port,
        }) = meta.pending.clone()
        else {
            return Ok(false);
        };
        let (t, n) = (meta.template.clone(), meta.name.clone());
        if self.layout.standby_data(&t, &n, generation).exists() {
            self.swap_in_standby(&t, &n, generation)?;
        } else if !self.layout.instance_data(&t, &n).exists() {
            return Err(StoreError::Corrupt {
                path: self.layout.instance_data(&t, &n),
                reason: "a standby handover was interrupted and its datadir is gone".into(),
            });
        }
        meta.version = version;
        meta.container = container;
        if let Some(f) = meta.forward.as_mut() {
            f.inner_port = inner_port;
            f.spare = None;
        }
        meta.pending = None;
        self.write_instance(meta)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::instances::tests::{meta, names};
    use crate::store::{testing, Forward, Spare};
    use dolly_names::VersionName;

    #[test]
    fn the_forward_binary_is_installed_once_and_replaced_whole() {
        let (dir, store) = testing::store();
        let path = store.install_forward_binary(b"\x7fELF one").unwrap();
        assert_eq!(path, dir.path().join("bin/dolly-forward"));
        assert_eq!(fs::read(&path).unwrap(), b"\x7fELF one");
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755, "anyone (nobody) may run it");
        let inode =
            |p: &std::path::Path| std::os::unix::fs::MetadataExt::ino(&fs::metadata(p).unwrap());
        let first = inode(&path);
        store.install_forward_binary(b"\x7fELF one").unwrap();
        assert_eq!(inode(&path), first, "the same bytes are left in place");
        store.install_forward_binary(b"\x7fELF two").unwrap();
        assert_ne!(inode(&path), first, "a new binary comes by rename");
        assert_eq!(fs::read(&path).unwrap(), b"\x7fELF two");
        assert_eq!(fs::read_dir(dir.path().join("bin")).unwrap().count(), 1);
    }

    #[test]
    fn the_target_is_replaced_whole() {
        let (_dir, store) = testing::store();
        let (t, n) = names();
        store.claim_instance(&t, &n).unwrap();
        store.forward_dirs(&t, &n).unwrap();
        assert_eq!(store.read_target(&t, &n), None);
        store.write_target(&t, &n, Target::Port(3307)).unwrap();
        assert_eq!(store.read_target(&t, &n).as_deref(), Some("3307"));
        store.write_target(&t, &n, Target::Sleeping).unwrap();
        assert_eq!(store.read_target(&t, &n).as_deref(), Some("sleeping"));
        let left: Vec<_> = fs::read_dir(store.layout.instance_forward(&t, &n))
            .unwrap()
            .collect();
        assert_eq!(left.len(), 1, "no temporary file is left");
    }

    #[test]
    fn an_interrupted_handover_always_finishes_with_the_standby_data() {
        let (_dir, store) = testing::store();
        let (t, n) = names();
        store.claim_instance(&t, &n).unwrap();
        let data = store.instance_data(&t, &n);
        fs::create_dir_all(&data).unwrap();
        fs::write(data.join("f"), b"old").unwrap();
        let standby = store.standby_data(&t, &n, 4).unwrap();
        fs::create_dir_all(&standby).unwrap();
        fs::write(standby.join("f"), b"fresh").unwrap();
        let v2 = VersionName::parse("20260202t000000z").unwrap();
        let mut m = meta(&t, &n);
        m.forward = Some(Forward {
            standby: true,
            inner_port: 3310,
            next_generation: 5,
            spare: Some(Spare {
                generation: 4,
                container: "dolly-shop.alice.g4".into(),
                inner_port: 3311,
                version: v2.clone(),
                snapshot: None,
                ready: true,
            }),
            ..Forward::default()
        });
        m.pending = Some(Pending::Handover {
            version: v2.clone(),
            generation: 4,
            container: "dolly-shop.alice.g4".into(),
            inner_port: 3311,
        });
        store.write_instance(&m).unwrap();
        assert!(store.recover_handover(&mut m).unwrap());
        assert_eq!(fs::read(data.join("f")).unwrap(), b"fresh");
        assert!(!standby.exists());
        let stored = store.read_instance(&t, &n).unwrap().unwrap();
        assert_eq!(stored, m);
        assert_eq!(m.version, v2);
        assert_eq!(m.container, "dolly-shop.alice.g4");
        assert_eq!(m.pending, None);
        let f = m.forward.unwrap();
        assert_eq!((f.inner_port, f.spare), (3311, None));
        // The old datadir waits in tmp/ and is removed (not restored) at
        // the clean-up: the instance has its datadir.
        store.clean_scratch(|_| false).unwrap();
        assert_eq!(fs::read(data.join("f")).unwrap(), b"fresh");
        assert_eq!(fs::read_dir(store.layout.tmp()).unwrap().count(), 0);
    }

    #[test]
    fn a_handover_recovered_after_its_swap_keeps_the_data() {
        let (_dir, store) = testing::store();
        let (t, n) = names();
        store.claim_instance(&t, &n).unwrap();
        let data = store.instance_data(&t, &n);
        fs::create_dir_all(&data).unwrap();
        fs::write(data.join("f"), b"fresh").unwrap();
        let mut m = meta(&t, &n);
        m.forward = Some(Forward::default());
        m.pending = Some(Pending::Handover {
            version: m.version.clone(),
            generation: 2,
            container: "dolly-shop.alice.g2".into(),
            inner_port: 3309,
        });
        assert!(store.recover_handover(&mut m).unwrap());
        assert_eq!(fs::read(data.join("f")).unwrap(), b"fresh");
        assert_eq!(m.container, "dolly-shop.alice.g2");
    }

    #[test]
    fn pruning_keeps_only_the_standby_named() {
        let (_dir, store) = testing::store();
        let (t, n) = names();
        store.claim_instance(&t, &n).unwrap();
        for g in [1, 2, 3] {
            fs::create_dir_all(store.standby_data(&t, &n, g).unwrap()).unwrap();
        }
        assert_eq!(store.prune_standbys(&t, &n, Some(2)).unwrap(), 2);
        assert!(store.layout.standby_data(&t, &n, 2).exists());
        assert!(!store.layout.standby_data(&t, &n, 1).exists());
        assert_eq!(store.prune_standbys(&t, &n, None).unwrap(), 1);
        assert_eq!(fs::read_dir(store.layout.tmp()).unwrap().count(), 0);
    }
}
