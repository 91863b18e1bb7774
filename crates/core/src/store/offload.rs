//! The store as async code reaches it: every method that touches the
//! filesystem runs on tokio's blocking pool, never on an async worker, and
//! takes its arguments by reference (it clones what the blocking work
//! needs), so the domain's async code reaches the data folder with one
//! call and no closure or clone of its own.
//!
//! Invariant: core's async code holds an [`AsyncStore`], never a bare
//! [`Store`] ([`crate::context::Context`]'s field has this type), so a
//! blocking store call on an async worker does not compile. Methods that
//! only build a path (no I/O) are plain functions here too.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use dolly_names::{InstanceName, SnapshotName, TemplateName, VersionName};

use super::{
    CacheKey, Cleaned, ImportLock, ImportProgress, InstanceMeta, LastImport, MemberMeta, PoolSize,
    Quarantined, ResetRecovery, Scratch, SnapshotMeta, Space, Store, StoreError, Target,
    VersionMeta,
};
use crate::schema::Schema;

/// The data folder's store, for async callers (see the module's docs).
#[derive(Debug, Clone)]
pub struct AsyncStore {
    store: Store,
}

/// Defines async methods that run the [`Store`] method of the same name on
/// the blocking pool. An argument marked `ref` is taken as `&T` and cloned
/// (`ToOwned`) into the blocking task; one marked `val` is moved.
macro_rules! offload {
    ($(
        $(#[$doc:meta])*
        fn $name:ident($($kind:ident $arg:ident: $ty:ty),* $(,)?) -> $ret:ty;
    )*) => {$(
        $(#[$doc])*
        pub async fn $name(&self, $($arg: offload!(@param $kind $ty)),*) -> $ret {
            $(let $arg = offload!(@own $kind $arg);)*
            self.run(move |s| s.$name($(offload!(@pass $kind $arg)),*)).await
        }
    )*};
    (@param ref $ty:ty) => { &$ty };
    (@param val $ty:ty) => { $ty };
    (@own ref $arg:ident) => { $arg.to_owned() };
    (@own val $arg:ident) => { $arg };
    (@pass ref $arg:ident) => { &$arg };
    (@pass val $arg:ident) => { $arg };
}

impl AsyncStore {
    pub(crate) fn new(store: Store) -> Self {
        Self { store }
    }

    /// The blocking store, for code that already runs on a blocking thread
    /// (start-up, `Context::new`) and for integration tests.
    pub fn blocking(&self) -> &Store {
        &self.store
    }

    /// Runs `f` over the store on the blocking pool. For work that must
    /// see several store reads at once; prefer the named methods below.
    pub async fn run<T, F>(&self, f: F) -> T
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> T + Send + 'static,
    {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || f(&store)).await {
            Ok(v) => v,
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(_) => panic!("a blocking store task was cancelled at shutdown"),
            },
        }
    }

    // Paths only: no I/O.

    pub fn root(&self) -> &Path {
        self.store.root()
    }

    pub fn for_engine(&self, path: &Path) -> PathBuf {
        self.store.for_engine(path)
    }

    pub fn dumps(&self) -> PathBuf {
        self.store.dumps()
    }

    pub fn instance_data(&self, t: &TemplateName, n: &InstanceName) -> PathBuf {
        self.store.instance_data(t, n)
    }

    pub fn init_file(&self, t: &TemplateName, n: &InstanceName) -> PathBuf {
        self.store.init_file(t, n)
    }

    pub fn reset_scratch(&self, t: &TemplateName, n: &InstanceName) -> PathBuf {
        self.store.reset_scratch(t, n)
    }

    pub fn member_data(&self, t: &TemplateName, m: &InstanceName) -> PathBuf {
        self.store.member_data(t, m)
    }

    pub fn member_init_file(&self, t: &TemplateName, m: &InstanceName) -> PathBuf {
        self.store.member_init_file(t, m)
    }

    pub fn snapshot_data(&self, t: &TemplateName, n: &InstanceName, s: &SnapshotName) -> PathBuf {
        self.store.snapshot_data(t, n, s)
    }

    pub fn version_data(&self, t: &TemplateName, v: &VersionName) -> PathBuf {
        self.store.version_data(t, v)
    }

    pub fn scratch(&self, s: &Scratch) -> PathBuf {
        self.store.scratch(s)
    }

    pub fn new_version(&self, t: &TemplateName) -> VersionName {
        self.store.new_version(t)
    }

    // Everything below touches the filesystem: run on the blocking pool.

    offload! {
        fn space() -> Result<Space, StoreError>;
        fn probe_writable() -> Result<(), StoreError>;

        // Templates and their versions.
        fn template_names() -> Result<Vec<TemplateName>, StoreError>;
        fn live_templates() -> Result<Vec<TemplateName>, StoreError>;
        fn current_version(ref t: TemplateName) -> Result<Option<VersionName>, StoreError>;
        fn version_meta(ref t: TemplateName, ref v: VersionName)
            -> Result<Option<VersionMeta>, StoreError>;
        fn versions(ref t: TemplateName) -> Result<Vec<VersionMeta>, StoreError>;
        fn version_exists(ref t: TemplateName, ref v: VersionName) -> bool;
        fn publish_version(ref t: TemplateName, ref meta: VersionMeta, ref work: Path)
            -> Result<(), StoreError>;
        fn remove_unused_versions(ref t: TemplateName, val keep: usize, ref in_use: HashSet<VersionName>)
            -> Result<Vec<VersionName>, StoreError>;
        fn last_import(ref t: TemplateName) -> Result<Option<LastImport>, StoreError>;
        fn write_last_import(ref t: TemplateName, ref last: LastImport) -> Result<(), StoreError>;
        fn write_import_progress(ref t: TemplateName, ref progress: ImportProgress)
            -> Result<(), StoreError>;
        fn import_progress(ref t: TemplateName) -> Result<Option<ImportProgress>, StoreError>;
        fn remove_import_progress(ref t: TemplateName) -> Result<(), StoreError>;
        fn lock_import(ref t: TemplateName) -> Result<ImportLock, StoreError>;
        fn is_importing(ref t: TemplateName) -> bool;
        fn recover_publish(ref t: TemplateName) -> Result<Option<VersionName>, StoreError>;
        fn import_scratch_templates() -> Result<Vec<TemplateName>, StoreError>;
        fn version_schema(ref t: TemplateName, ref v: VersionName)
            -> Result<Option<Schema>, StoreError>;
        fn write_version_schema(ref t: TemplateName, ref v: VersionName, ref schema: Schema)
            -> Result<(), StoreError>;

        // The initial-datadir cache.
        fn init_datadir(ref key: CacheKey) -> Result<Option<PathBuf>, StoreError>;
        fn publish_init_datadir(ref key: CacheKey, ref built: Path) -> Result<PathBuf, StoreError>;

        // Instances.
        fn claim_instance(ref t: TemplateName, ref n: InstanceName) -> Result<(), StoreError>;
        fn instance_exists(ref t: TemplateName, ref n: InstanceName) -> bool;
        fn read_instance(ref t: TemplateName, ref n: InstanceName)
            -> Result<Option<InstanceMeta>, StoreError>;
        fn write_instance(ref meta: InstanceMeta) -> Result<(), StoreError>;
        fn remove_instance(ref t: TemplateName, ref n: InstanceName) -> Result<(), StoreError>;
        fn unlink_instance(ref t: TemplateName, ref n: InstanceName)
            -> Result<Option<PathBuf>, StoreError>;
        fn swap_in_data(ref t: TemplateName, ref n: InstanceName, ref new: Path)
            -> Result<PathBuf, StoreError>;
        fn set_aside_data(ref t: TemplateName, ref n: InstanceName) -> Result<PathBuf, StoreError>;
        fn restore_data(ref t: TemplateName, ref n: InstanceName, ref aside: Path)
            -> Result<(), StoreError>;
        fn discard_aside(ref aside: Path) -> Result<(), StoreError>;
        fn quarantine_instance(ref t: TemplateName, ref n: InstanceName, ref reason: str)
            -> Result<PathBuf, StoreError>;
        fn quarantined() -> Result<Vec<Quarantined>, StoreError>;
        fn versions_in_use(ref t: TemplateName) -> Result<HashSet<VersionName>, StoreError>;
        fn instance_growth(ref t: TemplateName, ref n: InstanceName, ref version: VersionName)
            -> Result<u64, StoreError>;
        fn instance_exclusive_bytes(ref t: TemplateName, ref n: InstanceName)
            -> Result<u64, StoreError>;

        // Behind a forwarder: targets, wake requests, standbys.
        fn forward_dirs(ref t: TemplateName, ref n: InstanceName)
            -> Result<(PathBuf, PathBuf), StoreError>;
        fn write_target(ref t: TemplateName, ref n: InstanceName, val target: Target)
            -> Result<(), StoreError>;
        fn read_target(ref t: TemplateName, ref n: InstanceName) -> Option<String>;
        fn wake_requested(ref t: TemplateName, ref n: InstanceName) -> bool;
        fn standby_data(ref t: TemplateName, ref n: InstanceName, val generation: u64)
            -> Result<PathBuf, StoreError>;
        fn prune_standbys(ref t: TemplateName, ref n: InstanceName, val keep: Option<u64>)
            -> Result<usize, StoreError>;
        fn swap_in_standby(ref t: TemplateName, ref n: InstanceName, val generation: u64)
            -> Result<Option<PathBuf>, StoreError>;

        // Snapshots.
        fn claim_snapshot(ref t: TemplateName, ref n: InstanceName, ref s: SnapshotName)
            -> Result<(), StoreError>;
        fn snapshot_exists(ref t: TemplateName, ref n: InstanceName, ref s: SnapshotName) -> bool;
        fn snapshot_scratch(ref t: TemplateName, ref n: InstanceName, ref s: SnapshotName)
            -> Result<PathBuf, StoreError>;
        fn publish_snapshot(
            ref t: TemplateName,
            ref n: InstanceName,
            ref meta: SnapshotMeta,
            ref scratch: Path,
        ) -> Result<(), StoreError>;
        fn remove_half_made_snapshots(ref t: TemplateName, ref n: InstanceName)
            -> Result<Vec<SnapshotName>, StoreError>;
        fn read_snapshot(ref t: TemplateName, ref n: InstanceName, ref s: SnapshotName)
            -> Result<Option<SnapshotMeta>, StoreError>;
        fn write_snapshot(ref t: TemplateName, ref n: InstanceName, ref meta: SnapshotMeta)
            -> Result<(), StoreError>;
        fn snapshots(ref t: TemplateName, ref n: InstanceName)
            -> Result<Vec<SnapshotMeta>, StoreError>;
        fn has_snapshots(ref t: TemplateName, ref n: InstanceName) -> Result<bool, StoreError>;
        fn remove_snapshot(ref t: TemplateName, ref n: InstanceName, ref s: SnapshotName)
            -> Result<(), StoreError>;
        fn snapshot_schema(ref t: TemplateName, ref n: InstanceName, ref s: SnapshotName)
            -> Result<Option<Schema>, StoreError>;
        fn write_snapshot_schema(
            ref t: TemplateName,
            ref n: InstanceName,
            ref s: SnapshotName,
            ref schema: Schema,
        ) -> Result<(), StoreError>;

        // The warm pool.
        fn claim_member(ref t: TemplateName) -> Result<InstanceName, StoreError>;
        fn write_member(ref meta: MemberMeta) -> Result<(), StoreError>;
        fn member_exists(ref t: TemplateName, ref m: InstanceName) -> bool;
        fn remove_member(ref t: TemplateName, ref m: InstanceName) -> Result<(), StoreError>;
        fn clear_pool() -> Result<usize, StoreError>;
        fn hand_out_member(ref t: TemplateName, ref m: InstanceName, ref meta: InstanceMeta)
            -> Result<(), StoreError>;
        fn pool_size(ref t: TemplateName) -> Result<Option<PoolSize>, StoreError>;
        fn set_pool_size(ref t: TemplateName, val size: PoolSize) -> Result<(), StoreError>;
    }

    /// Finishes or rolls back a reset a crash interrupted (see
    /// [`Store::recover_reset`]); `meta` is updated as the store left it.
    pub async fn recover_reset(
        &self,
        meta: &mut InstanceMeta,
    ) -> Result<Option<ResetRecovery>, StoreError> {
        let mut m = meta.clone();
        let (result, m) = self
            .run(move |s| {
                let r = s.recover_reset(&mut m);
                (r, m)
            })
            .await;
        *meta = m;
        result
    }

    /// Finishes a standby handover a crash interrupted (see
    /// [`Store::recover_handover`]); `meta` is updated as the store left it.
    pub async fn recover_handover(&self, meta: &mut InstanceMeta) -> Result<bool, StoreError> {
        let mut m = meta.clone();
        let (result, m) = self
            .run(move |s| {
                let r = s.recover_handover(&mut m);
                (r, m)
            })
            .await;
        *meta = m;
        result
    }

    /// What the image probe found for `key`, if it was kept.
    pub async fn image_probe<T>(&self, key: &CacheKey) -> Result<Option<T>, StoreError>
    where
        T: serde::de::DeserializeOwned + Send + 'static,
    {
        let key = key.clone();
        self.run(move |s| s.image_probe::<T>(&key)).await
    }

    /// Keeps what the image probe found for `key`.
    pub async fn write_image_probe<T>(&self, key: &CacheKey, probe: &T) -> Result<(), StoreError>
    where
        T: serde::Serialize + Clone + Send + 'static,
    {
        let (key, probe) = (key.clone(), probe.clone());
        self.run(move |s| s.write_image_probe(&key, &probe)).await
    }

    /// Puts the forwarders' relay binary in the data folder (see
    /// [`Store::install_forward_binary`]).
    pub async fn install_forward_binary(&self, binary: Vec<u8>) -> Result<PathBuf, StoreError> {
        self.run(move |s| s.install_forward_binary(&binary)).await
    }

    /// Removes a sleeping instance's wake-up request, if any.
    pub async fn clear_wake_request(&self, t: &TemplateName, n: &InstanceName) {
        let (t, n) = (t.clone(), n.clone());
        self.run(move |s| s.clear_wake_request(&t, &n)).await
    }

    /// Every instance of `only` (or of all templates).
    pub async fn instance_names(
        &self,
        only: Option<&TemplateName>,
    ) -> Result<Vec<(TemplateName, InstanceName)>, StoreError> {
        let only = only.cloned();
        self.run(move |s| s.instance_names(only.as_ref())).await
    }

    /// Every ready instance (of `only` when given), see
    /// [`Store::ready_instances`].
    pub async fn ready_instances(
        &self,
        only: Option<&TemplateName>,
    ) -> Result<Vec<InstanceMeta>, StoreError> {
        let only = only.cloned();
        self.run(move |s| s.ready_instances(only.as_ref())).await
    }

    /// Sorts out what crashes left in `tmp/` (see [`Store::clean_scratch`]):
    /// a template's import scratch is kept while an import holds its lock.
    pub async fn clean_scratch(&self) -> Result<Vec<Cleaned>, StoreError> {
        self.run(|s| s.clean_scratch(|t| s.is_importing(t))).await
    }

    /// Removes a killed import's scratch once `held` is this process's.
    pub async fn remove_import_scratch(
        &self,
        t: &TemplateName,
        held: ImportLock,
    ) -> Result<Vec<PathBuf>, StoreError> {
        let t = t.clone();
        self.run(move |s| {
            let removed = s.remove_import_scratch(&t, &held);
            drop(held);
            removed
        })
        .await
    }
}
