//! A dump's fingerprint: the SHA-256 of every file an import reads.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::{Dump, DumpError, Fingerprint, HashedFile};

impl Dump {
    /// SHA-256 of every file the import reads (the dump's files as stored,
    /// the post scripts) and the image: an import of the same fingerprint
    /// gives the same template.
    pub fn fingerprint(&self, image: &str) -> Result<Fingerprint, DumpError> {
        self.fingerprint_until(image, &AtomicBool::new(false))
    }

    /// [`Self::fingerprint`], given up (an `Interrupted` error) as soon as
    /// `stop` is set: an import's deadline passed.
    pub fn fingerprint_until(
        &self,
        image: &str,
        stop: &AtomicBool,
    ) -> Result<Fingerprint, DumpError> {
        let hash_file = |p: &Path| hash_file_until(p, stop);
        let hash_all = |paths: &mut dyn Iterator<Item = &PathBuf>| {
            paths
                .map(|p| hash_file(p))
                .collect::<Result<Vec<_>, DumpError>>()
        };
        // A file of a folder is named by its path in the folder: a backup
        // holds `t.ibd` in several schemas' folders.
        let dump = self
            .files
            .iter()
            .map(|(p, _)| {
                let mut hashed = hash_file(p)?;
                if let Ok(rel) = p.strip_prefix(&self.path) {
                    if !rel.as_os_str().is_empty() {
                        hashed.name = rel.to_string_lossy().into_owned();
                    }
                }
                Ok(hashed)
            })
            .collect::<Result<Vec<_>, DumpError>>()?;
        Ok(Fingerprint {
            dump,
            post_scripts: hash_all(&mut self.post_scripts.iter())?,
            mask_rules: self.mask_rules.as_deref().map(hash_file).transpose()?,
            image: image.to_owned(),
        })
    }
}

/// SHA-256 of a file's bytes.
pub fn hash_file(path: &Path) -> Result<HashedFile, DumpError> {
    hash_file_until(path, &AtomicBool::new(false))
}

fn hash_file_until(path: &Path, stop: &AtomicBool) -> Result<HashedFile, DumpError> {
    use sha2::Digest;
    let io_err = |source| DumpError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = File::open(path).map_err(io_err)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(io_err(std::io::Error::new(
                std::io::ErrorKind::Interrupted,
                "hashing given up (import_timeout)",
            )));
        }
        let n = f.read(&mut buf).map_err(io_err)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        h.update(&buf[..n]);
    }
    Ok(HashedFile {
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        bytes,
        sha256: hex::encode(h.finalize()),
    })
}
