//! What a backup says about itself, read from its info, checkpoints and
//! `backup-my.cnf` files, and whether the image's server can restore it:
//! the same major version, a full backup, 16K pages.

use std::fs;
use std::io;
use std::path::Path;

use crate::dbserver::ImageInfo;
use crate::template::ImportError;

/// What a backup says about itself: its `*_info` file (the server that
/// made it), its `*_checkpoints` file (full or incremental) and
/// `backup-my.cnf` (the InnoDB page size).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BackupInfo {
    /// `server_version` as written, e.g. `10.11.18-MariaDB-0+deb12u1`.
    server_version: String,
    release: Release,
    incremental: bool,
    page_size: Option<u64>,
}

/// A server's major version: `10.11`, `11.8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Release {
    major: u32,
    minor: u32,
}

impl std::fmt::Display for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl Release {
    /// The first word of `text` that starts like `N.N` (`mariadbd  Ver
    /// 10.11.18-MariaDB...`, `11.8.3-MariaDB-ubu2404`), and that word.
    fn find(text: &str) -> Option<(Release, &str)> {
        text.split_whitespace().find_map(|word| {
            let mut parts = word.split(|c: char| !c.is_ascii_digit());
            let major = parts.next()?.parse().ok()?;
            let rest = word.split_once('.')?.1;
            let minor = rest
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()?;
            Some((Release { major, minor }, word))
        })
    }
}

/// The `key = value` lines of a backup's metadata files.
fn value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        (k.trim() == key).then(|| v.trim())
    })
}

impl BackupInfo {
    /// From the texts of the info file, the checkpoints file and
    /// `backup-my.cnf` (either may be missing); the reason when the server
    /// version cannot be told.
    fn parse(info: &str, checkpoints: &str, cnf: &str) -> Result<Self, String> {
        let server_version = value(info, "server_version")
            .filter(|v| !v.is_empty())
            .ok_or("its info file has no server_version line")?
            .to_owned();
        let (release, _) = Release::find(&server_version)
            .ok_or_else(|| format!("server_version {server_version:?} names no version"))?;
        let incremental = value(checkpoints, "backup_type") == Some("incremental")
            || value(info, "incremental") == Some("Y");
        let page_size = value(cnf, "innodb_page_size").and_then(|v| v.parse().ok());
        Ok(Self {
            server_version,
            release,
            incremental,
            page_size,
        })
    }

    /// Reads the metadata of the backup in `dir` (MariaDB 11 names the
    /// files `mariadb_backup_*`, 10.x `xtrabackup_*`). Blocking.
    pub(super) fn read(dir: &Path) -> io::Result<Result<Self, String>> {
        let read = |names: &[&str]| -> io::Result<Option<String>> {
            for name in names {
                match fs::read_to_string(dir.join(name)) {
                    Ok(text) => return Ok(Some(text)),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                }
            }
            Ok(None)
        };
        let Some(info) = read(&["mariadb_backup_info", "xtrabackup_info"])? else {
            return Ok(Err(
                "it has no mariadb_backup_info or xtrabackup_info file: not a mariadb-backup result"
                    .to_owned(),
            ));
        };
        let checkpoints = read(&crate::dump::CHECKPOINTS_FILES)?.unwrap_or_default();
        let cnf = read(&["backup-my.cnf"])?.unwrap_or_default();
        Ok(Self::parse(&info, &checkpoints, &cnf))
    }

    /// Whether the image's server can restore this backup.
    pub(super) fn check(&self, dump: &str, image: &ImageInfo) -> Result<(), ImportError> {
        let refuse = |message: String| ImportError::Backup {
            dump: dump.to_owned(),
            message,
        };
        let Some((server, server_word)) = Release::find(&image.version) else {
            return Err(refuse(format!(
                "cannot tell the image's server version from {:?}",
                image.version.trim()
            )));
        };
        if server != self.release {
            return Err(ImportError::VersionMismatch {
                dump: dump.to_owned(),
                backup: self.server_version.clone(),
                server: server_word.to_owned(),
            });
        }
        if self.incremental {
            return Err(refuse(
                "it is an incremental backup: prepare it onto its full backup \
                 (mariadb-backup --prepare --incremental-dir) and put the result in the dumps folder"
                    .to_owned(),
            ));
        }
        if let Some(size) = self.page_size.filter(|s| *s != 16384) {
            return Err(refuse(format!(
                "its innodb_page_size is {size}; dolly's servers run with the default 16384"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clone::Owner;
    use crate::dbserver::Flavor;

    fn image(version: &str) -> ImageInfo {
        ImageInfo {
            flavor: Flavor::MariaDb,
            owner: Owner { uid: 1, gid: 1 },
            version: version.to_owned(),
            id: String::new(),
        }
    }

    const INFO: &str = "uuid = 0d2b\nname = \ntool_name = mariadb-backup\n\
        server_version = 10.11.18-MariaDB-0+deb12u1\nincremental = N\n";

    #[test]
    fn releases_are_found_in_version_texts() {
        let (r, word) = Release::find(
            "mariadbd  Ver 10.11.18-MariaDB-0+deb12u1 for debian-linux-gnu on x86_64",
        )
        .unwrap();
        assert_eq!(
            (r.to_string(), word),
            ("10.11".into(), "10.11.18-MariaDB-0+deb12u1")
        );
        assert_eq!(
            Release::find("11.8.3-MariaDB-ubu2404").unwrap().0,
            Release {
                major: 11,
                minor: 8
            }
        );
        assert!(Release::find("mariadbd Ver unknown").is_none());
        assert!(Release::find("").is_none());
    }

    #[test]
    fn a_backup_of_the_same_major_version_passes() {
        let info = BackupInfo::parse(
            INFO,
            "backup_type = full-backuped\n",
            "innodb_page_size=16384\n",
        )
        .unwrap();
        assert_eq!(
            info.release,
            Release {
                major: 10,
                minor: 11
            }
        );
        info.check("b", &image("mariadbd  Ver 10.11.6-MariaDB for linux"))
            .unwrap();
    }

    #[test]
    fn another_major_version_is_refused_naming_both() {
        let info = BackupInfo::parse(&INFO.replace("10.11.18", "11.8.3"), "", "").unwrap();
        let err = info
            .check(
                "dumps/shop",
                &image("mariadbd  Ver 10.11.18-MariaDB-0+deb12u1 for x"),
            )
            .unwrap_err();
        assert!(matches!(err, ImportError::VersionMismatch { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("11.8.3-MariaDB") && text.contains("10.11.18-MariaDB"),
            "{text}"
        );
    }

    #[test]
    fn incremental_backups_odd_pages_and_missing_versions_are_refused() {
        let img = image("mariadbd  Ver 10.11.18-MariaDB");
        let inc = BackupInfo::parse(INFO, "backup_type = incremental\n", "").unwrap();
        assert!(inc
            .check("b", &img)
            .unwrap_err()
            .to_string()
            .contains("incremental"));
        let pages = BackupInfo::parse(INFO, "", "[mysqld]\ninnodb_page_size=65536\n").unwrap();
        assert!(pages
            .check("b", &img)
            .unwrap_err()
            .to_string()
            .contains("65536"));
        assert!(BackupInfo::parse("tool_name = x\n", "", "").is_err());
        assert!(BackupInfo::parse("server_version = \n", "", "").is_err());
    }

    #[test]
    fn metadata_is_read_from_either_file_name() {
        let dir = tempfile::tempdir().unwrap();
        assert!(BackupInfo::read(dir.path()).unwrap().is_err());
        fs::write(dir.path().join("mariadb_backup_info"), INFO).unwrap();
        let info = BackupInfo::read(dir.path()).unwrap().unwrap();
        assert_eq!(info.server_version, "10.11.18-MariaDB-0+deb12u1");
    }
}
