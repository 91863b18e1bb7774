//! The import's hook into [`crate::mask`]: the rules file beside the dump
//! read and checked before the import server starts, every statement
//! passed through the masker, and what the version records.

use super::ImportError;
use crate::context::Context;
use crate::dump::statements::Stmt;
use crate::dump::{Dump, HashedFile};
use crate::mask::{MaskError, Masker, Rules};
use crate::store::Masking;

/// The dump's masker, if it has a rules file (`NAME.mask.toml`).
pub(super) async fn masker(ctx: &Context, d: &Dump) -> Result<Option<Masker>, ImportError> {
    let Some(path) = d.mask_rules.clone() else {
        return Ok(None);
    };
    let file = path.display().to_string();
    let dump = d.path.display().to_string();
    let text = tokio::fs::read_to_string(&path)
        .await
        .map_err(|source| ImportError::Datadir {
            what: "read the masking rules",
            source,
        })?;
    let rules = Rules::parse(&text).map_err(|source| ImportError::Mask {
        dump: dump.clone(),
        source: MaskError::Rules { file, source },
    })?;
    let key = ctx
        .settings
        .mask_key
        .as_ref()
        .map(|k| k.expose().as_bytes());
    Masker::new(rules, key)
        .map(Some)
        .map_err(|source| ImportError::Mask { dump, source })
}

/// A physical backup holds the rows already: no stream to mask.
pub(super) fn physical_refused(d: &Dump) -> ImportError {
    ImportError::Mask {
        dump: d.path.display().to_string(),
        source: MaskError::Physical,
    }
}

/// One statement through the masker, if there is one.
pub(super) fn apply(masker: &mut Option<Masker>, st: Stmt) -> Result<Stmt, String> {
    match masker {
        Some(m) => m.apply(st).map_err(|e| e.to_string()),
        None => Ok(st),
    }
}

/// What the version records: the rules file and its hash, whether strict
/// mode held, whether the post scripts' traces were removed.
pub(super) fn record(
    rules: Option<HashedFile>,
    strict: bool,
    post_script_cleanup: bool,
) -> Option<Masking> {
    (rules.is_some() || post_script_cleanup).then_some(Masking {
        rules,
        strict,
        post_script_cleanup,
    })
}
