//! SQL dumps in the dumps folder, read as one decompressed stream.
//!
//! A dump is `NAME.sql`, `NAME.sql.gz`, `NAME.sql.zst`, or a folder `NAME/`
//! whose `*.sql[.gz|.zst]` files are applied in lexical order. Compressed
//! files are decompressed on the fly, never to disk.
//!
//! Post-import SQL: `NAME.post.sql` and `NAME.post.d/*.sql` (lexical
//! order) run after the dump, in the same import.
//!
//! A physical backup is a dump too ([`DumpKind::Physical`]):
//! `NAME.xbstream[.gz|.zst]` (`mariadb-backup --backup --stream=xbstream`)
//! or a folder `NAME/` holding a `--target-dir` result, recognised by its
//! `mariadb_backup_checkpoints` or `xtrabackup_checkpoints` file.

use std::io;
use std::path::PathBuf;

use dolly_names::TemplateName;

pub use crate::store::{Fingerprint, HashedFile};

mod discover;
mod fingerprint;
pub mod keys;
mod reader;
pub mod split;
pub mod statements;
pub mod survey;

pub use discover::{
    discover, discover_all, Compression, Dump, DumpKind, PhysicalForm, Refused, CHECKPOINTS_FILES,
};
pub use fingerprint::hash_file;
pub use reader::{DumpReader, Scan};

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("no dump for template '{0}' in the dumps folder")]
    NotFound(TemplateName),
    #[error("dump {path} is {what}, not a regular file or folder: refused (reading it could block the update for ever)")]
    NotAFile { path: PathBuf, what: &'static str },
    #[error("dump {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}
