//! Where the bench's data lives: the reflink filesystem (a loop file
//! formatted XFS, mounted when root) and a copy of the templates on a
//! filesystem with no reflinks.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use dolly_core::clone::{remove_tree, CloneMode};

use crate::args::Args;
use crate::bench::Bench;
use crate::util::{log, workspace_dir};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Mounts the reflink filesystem when root; returns the base folder and
/// whether it clones with reflinks.
pub fn setup_filesystem(args: &Args) -> anyhow::Result<(PathBuf, bool)> {
    let base = args
        .base
        .clone()
        .unwrap_or_else(|| PathBuf::from("/srv/dolly-bench"));
    if is_root() {
        let script = workspace_dir().join("scripts/reflink-fs.sh");
        let out = std::process::Command::new("bash")
            .arg(&script)
            .arg(&base)
            .arg("24G")
            .output()
            .with_context(|| format!("run {}", script.display()))?;
        if !out.status.success() {
            bail!(
                "{} failed: {}",
                script.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    } else {
        log("not root: no reflink filesystem is mounted; the bench runs without reflinks unless the folder has them");
    }
    std::fs::create_dir_all(&base).with_context(|| format!("create {}", base.display()))?;
    let reflink = CloneMode::detect(&base.join(".probe"))? == CloneMode::Reflink;
    let _ = std::fs::remove_dir_all(base.join(".probe"));
    if !reflink {
        log(format!(
            "{} has no reflinks: clones are full copies (the figures show copy mode)",
            base.display()
        ));
    }
    Ok((base, reflink))
}

impl Bench {
    /// A data folder on the root filesystem (no reflinks) holding a copy of
    /// `templates` (`cp -a`, which keeps the `current` links and owners;
    /// not the physical import's templates, which no create uses).
    pub fn copy_data_dir(&self, templates: &[&str]) -> anyhow::Result<PathBuf> {
        let dir = PathBuf::from("/var/tmp/dolly-bench-copy");
        remove_tree(&dir)?;
        std::fs::create_dir_all(dir.join("templates"))?;
        log(format!("copying the templates to {}", dir.display()));
        let out = std::process::Command::new("cp")
            .arg("-a")
            .args(
                templates
                    .iter()
                    .map(|t| self.data.join("templates").join(t)),
            )
            .arg(dir.join("templates"))
            .output()
            .context("run cp")?;
        if !out.status.success() {
            bail!("cp -a failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        if CloneMode::detect(&dir.join("tmp"))? == CloneMode::Reflink {
            log(format!(
                "{} has reflinks too: the copy-ext4 figures are not full copies",
                dir.display()
            ));
        }
        Ok(dir)
    }

    /// The current version's folder of a template.
    pub fn template_dir(&self, template: &str) -> anyhow::Result<PathBuf> {
        let current = self.data.join("templates").join(template).join("current");
        current
            .canonicalize()
            .with_context(|| format!("template {template} has no current version"))
    }
}
