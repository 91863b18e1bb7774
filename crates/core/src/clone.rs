//! Copy-on-write cloning of datadirs.
//!
//! [`CloneMode::detect`] tries one FICLONE in the data folder at start; with
//! reflinks every file is cloned with the ioctl (so a silent full copy is
//! impossible), otherwise the tree is copied with `fs_extra`. Cloning never
//! fails because reflinks are missing.

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
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// Clones the tree `src` into `dst` (which must not exist), owned by `owner`
/// and writable by it. Blocking: call from `spawn_blocking`.
pub fn clone_tree(src: &Path, dst: &Path, mode: CloneMode, owner: Owner) -> io::Result<()> {
    match mode {
        CloneMode::Reflink => reflink_tree(src, dst)?,
        CloneMode::Copy => {
            fs::create_dir(dst)?;
            let opts = fs_extra::dir::CopyOptions::new().content_only(true);
            fs_extra::dir::copy(src, dst, &opts).map_err(io::Error::other)?;
        }
    }
    own_tree(dst, owner, true)
}

fn reflink_tree(src: &Path, dst: &Path) -> io::Result<()> {
    fs::create_dir(dst)?;
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let ty = entry.file_type()?;
        let to = dst.join(entry.file_name());
        if ty.is_dir() {
            reflink_tree(&entry.path(), &to)?;
        } else if ty.is_file() {
            reflink_copy::reflink(entry.path(), &to)?;
        }
        // Symlinks and sockets are not part of a datadir: skipped.
    }
    Ok(())
}

/// Gives `root` and everything under it to `owner`; `writable` sets modes
/// 0750/0640 (owner may write), otherwise 0550/0440 (read-only).
pub fn own_tree(root: &Path, owner: Owner, writable: bool) -> io::Result<()> {
    let (dir_mode, file_mode) = if writable {
        (0o750, 0o640)
    } else {
        (0o550, 0o440)
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
}
