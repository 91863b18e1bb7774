//! Copy-on-write cloning of datadirs.
//!
//! [`CloneMode::detect`] tries one FICLONE in the data folder at start; with
//! reflinks every file is cloned with the ioctl (so a silent full copy is
//! impossible), otherwise each file is copied. Cloning never fails because
//! reflinks are missing, and never leaves part of a datadir out.

use std::fs;
use std::io;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::Path;

/// How trees are cloned on this data folder's filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloneMode {
    /// FICLONE: blocks shared until written (XFS reflink=1, btrfs, ZFS 2.2+).
    Reflink,
    /// A full copy (ext4 and others).
    Copy,
}

impl CloneMode {
    /// Probes `scratch` (a folder on the data filesystem) with one reflink.
    pub fn detect(scratch: &Path) -> io::Result<Self> {
        fs::create_dir_all(scratch)?;
        // Per process: a second dollyd probing at once must not remove ours.
        let pid = std::process::id();
        let src = scratch.join(format!(".reflink-probe-src.{pid}"));
        let dst = scratch.join(format!(".reflink-probe-dst.{pid}"));
        let _ = fs::remove_file(&dst);
        fs::write(&src, b"dolly reflink probe")?;
        let mode = match reflink_copy::reflink(&src, &dst) {
            Ok(()) => CloneMode::Reflink,
            Err(_) => CloneMode::Copy,
        };
        let _ = fs::remove_file(&src);
        let _ = fs::remove_file(&dst);
        Ok(mode)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CloneMode::Reflink => "reflink",
            CloneMode::Copy => "copy",
        }
    }
}

/// Who owns a cloned tree, and whether it may be written.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// Clones the tree `src` into `dst` (which must not exist), owned by `owner`
/// and writable by it. Blocking: call from `spawn_blocking`.
///
/// A datadir is cloned whole or not at all: a symbolic link (a MyISAM
/// table with `DATA DIRECTORY`, whose file lives outside the datadir) is an
/// error naming it, never silently left out.
pub fn clone_tree(src: &Path, dst: &Path, mode: CloneMode, owner: Owner) -> io::Result<()> {
    clone_tree_limited(src, dst, mode, owner, None)
}

/// [`clone_tree`] into a folder whose own bytes may not exceed `limit`
/// (a btrfs subvolume with a qgroup limit, [`crate::disk_limit`]); `None`:
/// a plain folder.
pub fn clone_tree_limited(
    src: &Path,
    dst: &Path,
    mode: CloneMode,
    owner: Owner,
    limit: Option<u64>,
) -> io::Result<()> {
    match limit {
        Some(bytes) => crate::disk_limit::create_limited_folder(dst, bytes)?,
        None => fs::create_dir(dst)?,
    }
    let copied = copy_into(src, dst, mode).and_then(|()| own_tree(dst, owner, true));
    if copied.is_err() && limit.is_some() {
        // A half-filled subvolume is removed like a folder.
        let _ = remove_tree(dst);
    }
    copied
}

fn copy_tree(src: &Path, dst: &Path, mode: CloneMode) -> io::Result<()> {
    fs::create_dir(dst)?;
    copy_into(src, dst, mode)
}

fn copy_into(src: &Path, dst: &Path, mode: CloneMode) -> io::Result<()> {
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let ty = entry.file_type()?;
        let to = dst.join(entry.file_name());
        if ty.is_dir() {
            copy_tree(&entry.path(), &to, mode)?;
        } else if ty.is_file() {
            match mode {
                CloneMode::Reflink => reflink_copy::reflink(entry.path(), &to)?,
                // `std::fs::copy` (copy_file_range) may still share
                // blocks where the filesystem can.
                CloneMode::Copy => {
                    fs::copy(entry.path(), &to)?;
                }
            }
        } else if ty.is_symlink() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is a symbolic link (a MyISAM table with DATA DIRECTORY?): its data lives outside the datadir and cannot be cloned; move the table into the datadir",
                    entry.path().display()
                ),
            ));
        }
        // Sockets and fifos are not data: skipped.
    }
    Ok(())
}

/// Gives `root` and everything under it to `owner`; `writable` sets modes
/// 0700/0600 (the owner reads and writes, nobody else reads: a datadir
/// holds password hashes and the users' data), otherwise 0500/0400
/// (read-only templates).
pub fn own_tree(root: &Path, owner: Owner, writable: bool) -> io::Result<()> {
    let (dir_mode, file_mode) = if writable {
        (0o700, 0o600)
    } else {
        (0o500, 0o400)
    };
    let meta = fs::symlink_metadata(root)?;
    chown(root, Some(owner.uid), Some(owner.gid))?;
    if meta.is_dir() {
        fs::set_permissions(root, fs::Permissions::from_mode(dir_mode))?;
        for entry in fs::read_dir(root)? {
            own_tree(&entry?.path(), owner, writable)?;
        }
    } else if meta.is_file() {
        fs::set_permissions(root, fs::Permissions::from_mode(file_mode))?;
    }
    Ok(())
}

/// Apparent size of a tree in bytes.
pub fn tree_size(root: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(root) else {
        return 0;
    };
    if meta.is_dir() {
        fs::read_dir(root)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| tree_size(&e.path()))
                    .sum()
            })
            .unwrap_or(0)
    } else {
        meta.len()
    }
}

/// Removes a tree; a missing one is fine.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_a_tree_in_either_mode() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs::create_dir_all(src.join("db")).unwrap();
        fs::write(src.join("ibdata1"), vec![7u8; 100_000]).unwrap();
        fs::write(src.join("db/t.ibd"), b"table").unwrap();
        let me = Owner {
            uid: unsafe { libc::getuid() },
            gid: unsafe { libc::getgid() },
        };
        let detected = CloneMode::detect(&dir.path().join("probe")).unwrap();
        for (i, mode) in [CloneMode::Copy, detected].into_iter().enumerate() {
            let dst = dir.path().join(format!("dst{i}"));
            clone_tree(&src, &dst, mode, me).unwrap();
            assert_eq!(fs::read(dst.join("db/t.ibd")).unwrap(), b"table");
            assert_eq!(tree_size(&dst), 100_005);
            // The clone is independent of its source.
            fs::write(dst.join("db/t.ibd"), b"changed").unwrap();
            assert_eq!(fs::read(src.join("db/t.ibd")).unwrap(), b"table");
        }
    }

    #[test]
    fn a_symlinked_table_file_fails_the_clone_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs::create_dir_all(src.join("db")).unwrap();
        fs::write(dir.path().join("elsewhere.MYD"), b"rows").unwrap();
        std::os::unix::fs::symlink(dir.path().join("elsewhere.MYD"), src.join("db/t.MYD")).unwrap();
        // SAFETY: plain libc getters.
        let me = unsafe {
            Owner {
                uid: libc::getuid(),
                gid: libc::getgid(),
            }
        };
        for mode in [CloneMode::Copy, CloneMode::Reflink] {
            let dst = dir.path().join(format!("dst-{}", mode.as_str()));
            let err = clone_tree(&src, &dst, mode, me).unwrap_err().to_string();
            assert!(
                err.contains("t.MYD") && err.contains("symbolic link"),
                "{err}"
            );
        }
    }
}
