//! The data folder's layout: the only place paths inside it are built.
//!
//! ```text
//! DATA/dumps/NAME.sql[.gz|.zst] | NAME/      input
//! DATA/templates/NAME/VERSION/               read-only datadir of one version
//! DATA/templates/NAME/VERSION.json           its metadata
//! DATA/templates/NAME/current -> VERSION     the live version (symlink)
//! DATA/templates/NAME/last-import.json       outcome of the last import
//! DATA/templates/NAME/import-progress.json   progress of the running import
//! DATA/locks/NAME.lock                       held while NAME imports
//! DATA/instances/TEMPLATE/NAME/meta.json     instance metadata (0600)
//! DATA/instances/TEMPLATE/NAME/data/         instance datadir
//! DATA/instances/TEMPLATE/NAME/snapshots/S/  a snapshot: data/ and meta.json
//! DATA/instances/TEMPLATE/NAME/forward/target  the port its forwarder relays to
//! DATA/instances/TEMPLATE/NAME/wake/request   a connection waits for a sleeping server
//! DATA/instances/TEMPLATE/NAME/standby/gG/    the datadir of standby generation G
//! DATA/tmp/                                  work in progress, cleaned at start
//! DATA/quarantine/T.N.WHEN/                  instances whose metadata was unreadable
//! DATA/pool/T/M/{member.json, data/}         a warm pool member (no user data)
//! DATA/templates/NAME/pool.json              the template's pool size override
//! DATA/cache/init/KEY/                       an initialised system datadir per image (read-only)
//! DATA/cache/probe/KEY.json                  what probing an image found
//! DATA/bin/dolly-forward                     the relay forwarders mount (read-only)
//! ```
//!
//! Private to [`crate::store`]: the rest of dolly asks the store.
//!
//! Every path is built from a validated name ([`TemplateName`],
//! [`InstanceName`], [`VersionName`]), never from raw input.

use std::path::{Path, PathBuf};

use dolly_names::{InstanceName, SnapshotName, TemplateName, VersionName};

#[derive(Debug, Clone)]
pub(super) struct Layout {
    root: PathBuf,
    /// The same folder as the container engine sees it.
    engine_root: PathBuf,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>, engine_root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            engine_root: engine_root.into(),
        }
    }

    /// Creates the top-level folders.
    pub fn create(&self) -> std::io::Result<()> {
        for dir in [
            self.dumps(),
            self.templates(),
            self.instances(),
            self.tmp(),
            self.locks(),
            self.quarantine(),
            self.pool(),
            self.init_cache(),
        ] {
            std::fs::create_dir_all(dir)?;
        }
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `path` (inside the data folder) as the engine sees it.
    pub fn for_engine(&self, path: &Path) -> PathBuf {
        match path.strip_prefix(&self.root) {
            Ok(rel) => self.engine_root.join(rel),
            Err(_) => path.to_path_buf(),
        }
    }

    /// `format.json`: the data folder's file format version.
    pub fn format_marker(&self) -> PathBuf {
        self.root.join("format.json")
    }

    pub fn dumps(&self) -> PathBuf {
        self.root.join("dumps")
    }
    pub fn templates(&self) -> PathBuf {
        self.root.join("templates")
    }
    pub fn instances(&self) -> PathBuf {
        self.root.join("instances")
    }
    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }
    pub fn locks(&self) -> PathBuf {
        self.root.join("locks")
    }
    pub fn quarantine(&self) -> PathBuf {
        self.root.join("quarantine")
    }
    pub fn pool(&self) -> PathBuf {
        self.root.join("pool")
    }
    pub fn init_cache(&self) -> PathBuf {
        self.root.join("cache").join("init")
    }
    pub fn init_datadir(&self, key: &super::CacheKey) -> PathBuf {
        self.init_cache().join(key.as_str())
    }
    pub fn probe_cache(&self) -> PathBuf {
        self.root.join("cache").join("probe")
    }
    pub fn image_probe(&self, key: &super::CacheKey) -> PathBuf {
        self.probe_cache().join(format!("{key}.json"))
    }
    pub fn pool_template(&self, t: &TemplateName) -> PathBuf {
        self.pool().join(t.as_str())
    }
    pub fn pool_member(&self, t: &TemplateName, m: &InstanceName) -> PathBuf {
        self.pool_template(t).join(m.as_str())
    }
    pub fn template_pool_size(&self, t: &TemplateName) -> PathBuf {
        self.template(t).join("pool.json")
    }
    /// A scratch folder (or file) in `tmp/`, named after what it holds.
    pub fn scratch(&self, s: &super::Scratch) -> PathBuf {
        self.tmp().join(s.file_name())
    }

    pub fn template(&self, t: &TemplateName) -> PathBuf {
        self.templates().join(t.as_str())
    }
    pub fn template_current(&self, t: &TemplateName) -> PathBuf {
        self.template(t).join("current")
    }
    pub fn template_version(&self, t: &TemplateName, v: &VersionName) -> PathBuf {
        self.template(t).join(v.as_str())
    }
    pub fn template_version_meta(&self, t: &TemplateName, v: &VersionName) -> PathBuf {
        self.template(t).join(format!("{v}.json"))
    }
    /// The schema of a version, read once from a server on it.
    pub fn template_version_schema(&self, t: &TemplateName, v: &VersionName) -> PathBuf {
        self.template(t).join(format!("{v}.schema.json"))
    }
    pub fn template_last_import(&self, t: &TemplateName) -> PathBuf {
        self.template(t).join("last-import.json")
    }
    /// Written by the importing process while an import of `t` runs.
    pub fn template_import_progress(&self, t: &TemplateName) -> PathBuf {
        self.template(t).join("import-progress.json")
    }
    pub fn import_lock(&self, t: &TemplateName) -> PathBuf {
        self.locks().join(format!("{t}.lock"))
    }

    pub fn instance_parent(&self, t: &TemplateName) -> PathBuf {
        self.instances().join(t.as_str())
    }
    pub fn instance(&self, t: &TemplateName, n: &InstanceName) -> PathBuf {
        self.instance_parent(t).join(n.as_str())
    }
    pub fn instance_meta(&self, t: &TemplateName, n: &InstanceName) -> PathBuf {
        self.instance(t, n).join("meta.json")
    }
    pub fn instance_data(&self, t: &TemplateName, n: &InstanceName) -> PathBuf {
        self.instance(t, n).join("data")
    }
    /// The init file the server reads at every start (inside the datadir).
    pub fn init_file(&self, t: &TemplateName, n: &InstanceName) -> PathBuf {
        self.instance_data(t, n).join(crate::dbserver::INIT_FILE)
    }
    /// The forwarder's read-only folder (the target file).
    pub fn instance_forward(&self, t: &TemplateName, n: &InstanceName) -> PathBuf {
        self.instance(t, n).join("forward")
    }
    /// The forwarder's writable folder (wake-up requests).
    pub fn forward_binary(&self) -> PathBuf {
        self.root.join("bin").join("dolly-forward")
    }
    pub fn instance_wake(&self, t: &TemplateName, n: &InstanceName) -> PathBuf {
        self.instance(t, n).join("wake")
    }
    pub fn standbys(&self, t: &TemplateName, n: &InstanceName) -> PathBuf {
        self.instance(t, n).join("standby")
    }
    pub fn standby_data(&self, t: &TemplateName, n: &InstanceName, generation: u64) -> PathBuf {
        self.standbys(t, n).join(format!("g{generation}"))
    }
    pub fn snapshots(&self, t: &TemplateName, n: &InstanceName) -> PathBuf {
        self.instance(t, n).join("snapshots")
    }
    pub fn snapshot(&self, t: &TemplateName, n: &InstanceName, s: &SnapshotName) -> PathBuf {
        self.snapshots(t, n).join(s.as_str())
    }
    pub fn snapshot_data(&self, t: &TemplateName, n: &InstanceName, s: &SnapshotName) -> PathBuf {
        self.snapshot(t, n, s).join("data")
    }
    pub fn snapshot_schema(&self, t: &TemplateName, n: &InstanceName, s: &SnapshotName) -> PathBuf {
        self.snapshot(t, n, s).join("schema.json")
    }
    pub fn snapshot_meta(&self, t: &TemplateName, n: &InstanceName, s: &SnapshotName) -> PathBuf {
        self.snapshot(t, n, s).join("meta.json")
    }
}

/// Lists the entries of `dir` whose file names parse with `parse`, sorted.
/// A missing folder is an empty list.
pub fn list_names<T: Ord>(
    dir: &Path,
    parse: impl Fn(&str) -> Option<T>,
) -> std::io::Result<Vec<T>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        if let Some(name) = entry.file_name().to_str().and_then(&parse) {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_paths_follow_the_host_root() {
        let l = Layout::new("/data", "/srv/host/data");
        let t = TemplateName::parse("shop").unwrap();
        let n = InstanceName::parse("ci-1").unwrap();
        assert_eq!(
            l.for_engine(&l.instance_data(&t, &n)),
            PathBuf::from("/srv/host/data/instances/shop/ci-1/data")
        );
    }
}
