//! `locks/dollyd.lock`: one process at a time does housekeeping on a data
//! folder. `serve` and `reap` take it before they touch anything; the
//! kernel releases it when the process dies, so a `kill -9` never leaves it
//! stale. `update` does not take it: it runs beside `serve`, under the
//! per-template import locks, and removes nothing an instance uses.

use std::fs::{self, File};
use std::io::{Read, Seek, Write};

use super::{Store, StoreError};

/// Held while this process may do housekeeping on the data folder.
#[derive(Debug)]
pub struct FolderLock {
    _file: File,
}

impl Store {
    /// Takes the data folder's lock for `role` (`serve`, `reap`), or says
    /// who holds it ([`StoreError::InUse`]).
    pub fn lock_folder(&self, role: &str) -> Result<FolderLock, StoreError> {
        let path = self.layout.locks().join("dollyd.lock");
        let mut file = File::options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::io("open", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(StoreError::InUse {
                    path: self.root().to_path_buf(),
                    holder: if holder.is_empty() {
                        "another process".to_owned()
                    } else {
                        holder.to_owned()
                    },
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(StoreError::io("lock", &path, e)),
        }
        let me = format!("dollyd {role} (pid {})\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(me.as_bytes()))
            .map_err(|e| StoreError::io("write", &path, e))?;
        Ok(FolderLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use crate::store::testing;
    use crate::store::StoreError;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let (_dir, store) = testing::store();
        let lock = store.lock_folder("serve").unwrap();
        match store.lock_folder("reap") {
            Err(StoreError::InUse { holder, .. }) => {
                assert!(holder.contains("dollyd serve"), "{holder}");
                assert!(holder.contains(&std::process::id().to_string()), "{holder}");
            }
            other => panic!("expected InUse, got {other:?}"),
        }
        drop(lock);
        store.lock_folder("reap").unwrap();
    }
}
