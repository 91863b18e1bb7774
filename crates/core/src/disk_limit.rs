//! The per-instance disk limit (`instance_max_disk`).
//!
//! Where the data folder is btrfs with quotas enabled, every instance
//! datadir is a subvolume with a qgroup limit on its *exclusive* bytes
//! ([`create_limited_folder`], called by [`crate::clone`]): the kernel
//! refuses a write past it (`EDQUOT`, "Disk quota exceeded"), for that
//! instance alone. Extents shared with the template (reflinks) count only
//! once rewritten. A subvolume is removed like a folder (the kernel allows
//! `rmdir` of an empty subvolume since 4.18), and renamed like one.
//!
//! Anywhere else (XFS without project quotas, ext4, btrfs without quotas)
//! the limit is enforced after the fact: the reaper's pass stops an
//! instance whose folder grew past it beyond its template, with a reason
//! the API shows ([`crate::instance::Manager::enforce_disk_limit`]).

use std::io;
use std::path::Path;
use std::process::Command;

/// `statfs.f_type` of btrfs.
pub const BTRFS_SUPER_MAGIC: i64 = 0x9123_683E;

/// How `instance_max_disk` is enforced on this data folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskLimit {
    /// No limit configured.
    Off,
    /// Each datadir a btrfs subvolume limited to this many exclusive bytes.
    Subvolume(u64),
    /// Checked by the reaper's pass: an instance past it is stopped.
    AfterTheFact(u64),
}

/// What the data folder's filesystem can do about a per-instance limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filesystem {
    /// btrfs with quota groups enabled.
    BtrfsWithQuotas,
    /// btrfs without quotas (`btrfs quota enable DIR` turns them on).
    BtrfsWithoutQuotas,
    /// Anything else, by its `statfs` magic.
    Other(i64),
}

impl Filesystem {
    /// Looks at the filesystem of `dir`. Blocking.
    pub fn detect(dir: &Path) -> io::Result<Self> {
        if fs_type(dir)? != BTRFS_SUPER_MAGIC {
            return Ok(Filesystem::Other(fs_type(dir)?));
        }
        // `btrfs qgroup show` fails when quotas are off.
        let out = Command::new("btrfs")
            .args(["qgroup", "show"])
            .arg(dir)
            .output();
        Ok(match out {
            Ok(o) if o.status.success() => Filesystem::BtrfsWithQuotas,
            _ => Filesystem::BtrfsWithoutQuotas,
        })
    }

    /// How a limit of `bytes` (if any) is enforced here.
    pub fn enforcement(&self, bytes: Option<u64>) -> DiskLimit {
        match (bytes, self) {
            (None, _) => DiskLimit::Off,
            (Some(b), Filesystem::BtrfsWithQuotas) => DiskLimit::Subvolume(b),
            (Some(b), _) => DiskLimit::AfterTheFact(b),
        }
    }

    /// What dollyd says at start about a limit of `bytes` on `dir`.
    pub fn describe(&self, dir: &Path, bytes: u64) -> String {
        let size = bytesize::ByteSize(bytes).to_string();
        match self {
            Filesystem::BtrfsWithQuotas => format!(
                "instance_max_disk = {size}: enforced by btrfs (each datadir a subvolume with a qgroup limit on its exclusive bytes)"
            ),
            Filesystem::BtrfsWithoutQuotas => format!(
                "instance_max_disk = {size}: {} is btrfs without quotas, so the limit is only checked after the fact (the reaper stops an instance past it); run `btrfs quota enable {}` and restart dollyd to have the filesystem enforce it",
                dir.display(),
                dir.display()
            ),
            Filesystem::Other(magic) => format!(
                "instance_max_disk = {size}: the filesystem of {} (statfs type {magic:#x}) cannot enforce a per-instance limit, so it is only checked after the fact (the reaper stops an instance past it); a btrfs data folder with quotas enforces it (see README)",
                dir.display()
            ),
        }
    }
}

fn fs_type(dir: &Path) -> io::Result<i64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: a valid C string and a zeroed statfs buffer.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)]
    Ok(st.f_type as i64)
}

/// Creates `dst` (which must not exist) as a btrfs subvolume whose
/// exclusive bytes may not exceed `bytes`. Blocking.
pub fn create_limited_folder(dst: &Path, bytes: u64) -> io::Result<()> {
    run(Command::new("btrfs").args(["subvolume", "create"]).arg(dst))?;
    if let Err(e) = run(Command::new("btrfs")
        .args(["qgroup", "limit", "-e", &bytes.to_string()])
        .arg(dst))
    {
        // Never leave an unlimited datadir behind.
        let _ = std::fs::remove_dir(dst);
        return Err(e);
    }
    Ok(())
}

/// The exclusive bytes of the subvolume at `dir` (its qgroup). Blocking.
pub fn exclusive_bytes(dir: &Path) -> io::Result<u64> {
    let out = Command::new("btrfs")
        .args(["qgroup", "show", "--raw", "-f"])
        .arg(dir)
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ));
    }
    parse_exclusive(&String::from_utf8_lossy(&out.stdout)).ok_or_else(|| {
        io::Error::other(format!("no qgroup of {} in btrfs's answer", dir.display()))
    })
}

/// The exclusive column of the first level-0 qgroup in `btrfs qgroup show
/// --raw` output.
fn parse_exclusive(out: &str) -> Option<u64> {
    out.lines().map(str::split_whitespace).find_map(|mut cols| {
        match (cols.next(), cols.next(), cols.next()) {
            (Some(id), Some(_), Some(excl)) if id.starts_with("0/") => excl.parse().ok(),
            _ => None,
        }
    })
}

/// Whether `exclusive` bytes are at a `limit` (within what one refused
/// write may have left: a tenth of it, at most 8 MiB).
pub fn at_limit(exclusive: u64, limit: u64) -> bool {
    exclusive >= limit.saturating_sub((limit / 10).min(8 << 20))
}

/// Forgets the quota groups of removed subvolumes (best effort, at start).
pub fn clear_stale_qgroups(dir: &Path) {
    let _ = run(Command::new("btrfs")
        .args(["qgroup", "clear-stale"])
        .arg(dir));
}

fn run(cmd: &mut Command) -> io::Result<()> {
    let out = cmd.output().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot run btrfs (install btrfs-progs): {e}"),
        )
    })?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    Err(io::Error::other(format!(
        "{:?} failed: {}",
        cmd.get_args().collect::<Vec<_>>(),
        err.trim()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_is_enforced_by_btrfs_quotas_only() {
        assert_eq!(
            Filesystem::Other(0x5846_5342).enforcement(Some(5)),
            DiskLimit::AfterTheFact(5)
        );
        assert_eq!(
            Filesystem::BtrfsWithoutQuotas.enforcement(Some(5)),
            DiskLimit::AfterTheFact(5)
        );
        assert_eq!(
            Filesystem::BtrfsWithQuotas.enforcement(Some(5)),
            DiskLimit::Subvolume(5)
        );
        assert_eq!(
            Filesystem::BtrfsWithQuotas.enforcement(None),
            DiskLimit::Off
        );
        assert_eq!(
            parse_exclusive("Qgroupid Referenced Exclusive Max exclusive Path\n-------- ---\n0/257 10469376 10469376 10485760 q\n"),
            Some(10469376)
        );
        assert!(at_limit(10469376, 10485760));
        assert!(!at_limit(1 << 20, 10485760));
        let said = Filesystem::BtrfsWithoutQuotas.describe(Path::new("/d"), 40 << 20);
        assert!(said.contains("btrfs quota enable /d"), "{said}");
    }
}
