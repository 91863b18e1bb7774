//! Bodies of `/api/v1`: typed JSON, RFC 3339 times, numbers as numbers.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{InstanceName, SnapshotName, TemplateName, VersionName};

/// Every error answer: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// A stable machine-readable code, e.g. `template_not_found`.
    pub code: String,
    /// One human sentence.
    pub message: String,
}

/// What the engine says of an instance's container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum InstanceState {
    Running,
    Stopped,
    Restarting,
    /// The server exited on its own.
    Dead,
    /// dolly has the data but the engine has no container for it.
    Missing,
    /// Its server did not answer with the instance's credentials at its
    /// last start (`problem` says why); `start`, `reset` or `restore`
    /// repairs it.
    Broken,
    /// Its server sleeps (`sleep_after`); the next connection to its port
    /// wakes it.
    Sleeping,
}

/// An instance with its credentials.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Instance {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub template: TemplateName,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub name: InstanceName,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub template_version: VersionName,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub database: String,
    pub state: InstanceState,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Never reaped nor removed by cleanup.
    #[serde(default)]
    pub protected: bool,
    /// The user who created it (`None`: made without users).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Why dolly stopped it on its own (its datadir grew past
    /// `instance_max_disk`); `start` clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
    /// Why the instance is `broken` (its last start's error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Only in a reset's answer, for an instance behind a forwarder:
    /// whether the reset went through its standby (`true`) or cloned
    /// (`false`: no standby was ready yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standby: Option<bool>,
    /// Present when the instance keeps a standby for resets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standby_status: Option<StandbyStatus>,
    /// Seconds without clients after which its server sleeps (`sleeping`)
    /// until the next connection wakes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sleep_after: Option<u64>,
}

/// An instance's standby: a server already running on a fresh clone of
/// its reset source, handed the port at the next reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StandbyStatus {
    /// Ready now: the next reset goes through it.
    pub ready: bool,
    /// Memory its server uses (`docker stats`' figure); only in one
    /// instance's view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
}

/// An instance in a list: no credentials.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstanceSummary {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub template: TemplateName,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub name: InstanceName,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub template_version: VersionName,
    pub port: Option<u16>,
    pub state: InstanceState,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub protected: bool,
    /// The user who created it (`None`: made without users).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Why dolly stopped it on its own (its datadir grew past
    /// `instance_max_disk`); `start` clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
    /// Why the instance is `broken` (its last start's error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Present when the instance keeps a standby for resets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standby_status: Option<StandbyStatus>,
    /// Seconds without clients after which its server sleeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sleep_after: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstanceList {
    pub instances: Vec<InstanceSummary>,
}

/// `POST /api/v1/templates/{template}/instances/{name}`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateInstance {
    /// Seconds until the instance expires; the server's default when absent,
    /// `0` for no expiry (where the server's `max_ttl` allows).
    #[serde(default)]
    pub ttl: Option<u64>,
    /// Branch from a snapshot of another instance of the same template:
    /// `NAME@SNAPSHOT`.
    #[serde(default)]
    pub from: Option<String>,
    /// Keep a standby so that resets take milliseconds: a second server
    /// on a fresh clone of the reset source, using memory (the server's
    /// `standby` setting when absent).
    #[serde(default)]
    pub standby: Option<bool>,
    /// Stop the server after this many seconds without clients; the next
    /// connection to the port starts it again (a slower connect). The
    /// server's `sleep_after` setting when absent; `0`: never.
    #[serde(default)]
    pub sleep_after: Option<u64>,
}

/// One published version of a template.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplateVersion {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub version: VersionName,
    pub current: bool,
    pub created_at: DateTime<Utc>,
    /// Apparent size of the datadir in bytes.
    pub size_bytes: u64,
    /// The dump file or folder it was imported from.
    pub source_dump: String,
    /// The database instances report.
    pub database: String,
    pub import_seconds: f64,
    pub dump_bytes: u64,
    /// How production values were kept out of this version's files; absent:
    /// the dump was loaded as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masking: Option<Masking>,
}

/// A version's masking (README, "Masking").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Masking {
    /// The rules file applied to the rows as they streamed in
    /// (`NAME.mask.toml`), and its SHA-256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules_sha256: Option<String>,
    /// The rules file asked for strict mode and every column had a rule.
    #[serde(default)]
    pub strict: bool,
    /// Post scripts ran, and their traces were removed (tables rebuilt,
    /// undo purged, a new redo log) before publication.
    #[serde(default)]
    pub post_script_cleanup: bool,
}

/// The outcome of the last import of a template.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImportResult {
    pub ok: bool,
    pub finished_at: DateTime<Utc>,
    pub dump: String,
    pub message: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub version: Option<VersionName>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Template {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub name: TemplateName,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub current_version: Option<VersionName>,
    /// Newest first.
    pub versions: Vec<TemplateVersion>,
    /// An import of this template is running now.
    pub importing: bool,
    pub last_import: Option<ImportResult>,
    /// The warm pool: target size and members ready to hand out.
    #[serde(default)]
    pub pool: Option<TemplatePool>,
    /// The running import's progress (`importing` is true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<ImportProgress>,
}

/// A running import, as the importing process last wrote it (about every
/// second).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImportProgress {
    /// `hash` (the dump is read once for its fingerprint), `load`,
    /// `indexes` (the dump is read; deferred keys, the last tables),
    /// `prepare` (a physical backup is read; `mariadb-backup --prepare`),
    /// `post` (post-import SQL) or `publish` (clean shutdown, publication).
    pub phase: String,
    /// The dump (file or folder) being imported.
    #[serde(default)]
    pub source: String,
    /// Seconds since the import of this source began (its hash included).
    #[serde(default)]
    pub elapsed_seconds: u64,
    /// Bytes of the dump read (compressed bytes for a compressed dump).
    pub bytes_read: u64,
    pub bytes_total: u64,
    pub percent: f64,
    /// Read rate since the import started.
    pub mb_per_s: f64,
    /// Estimated time left reading the dump (`None` once it is read).
    pub eta_seconds: Option<u64>,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A template's warm pool (`PUT .../pool` sets `size`).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplatePool {
    pub size: usize,
    /// Members ready now (not counted as instances nor in max_instances).
    #[serde(default)]
    pub ready: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplateList {
    pub templates: Vec<Template>,
}

/// `GET /readyz`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Readiness {
    pub ready: bool,
    pub engine: String,
    pub data_dir: String,
}

/// `POST .../extend`: adds `ttl` seconds to the expiry (counted from now if
/// it already passed); `ttl: 0` removes the expiry where `max_ttl` allows.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Extend {
    pub ttl: u64,
}

/// `POST .../reset`: back to the template version the instance was cloned
/// from; `latest` to the template's current version; `to` a snapshot.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Reset {
    #[serde(default)]
    pub latest: bool,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub to: Option<SnapshotName>,
}

/// `POST .../snapshots/{snapshot}`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateSnapshot {
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Snapshot {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub name: SnapshotName,
    pub created_at: DateTime<Utc>,
    pub message: Option<String>,
    /// Apparent size of the saved datadir.
    pub size_bytes: u64,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub template_version: VersionName,
    /// Seconds the instance was stopped to take it.
    pub pause_seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SnapshotList {
    pub snapshots: Vec<Snapshot>,
}

/// `POST .../snapshots/{snapshot}/promote`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Promote {
    /// The template that gets the snapshot as its new current version.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub template: TemplateName,
}

/// `POST /api/v1/reap`: what to remove; with `dry_run`, only list it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Reap {
    #[serde(default)]
    pub expired: bool,
    /// The server exited without being stopped.
    #[serde(default)]
    pub dead: bool,
    /// Running, but not answering `SELECT 1`.
    #[serde(default)]
    pub unhealthy: bool,
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reaped {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub template: TemplateName,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub name: InstanceName,
    /// `expired`, `dead` or `unhealthy`.
    pub reason: String,
    /// False in a dry run.
    pub removed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReapReport {
    pub instances: Vec<Reaped>,
}

/// One line of `GET /api/v1/df`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiskUse {
    /// `template`, `instance` or `snapshot`.
    pub kind: String,
    /// `shop@20261123t020000z`, `shop/alice`, `shop/alice@before`.
    pub name: String,
    /// Apparent size: blocks shared by reflinks are counted in each owner.
    pub apparent_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiskUsage {
    pub entries: Vec<DiskUse>,
    pub filesystem_free_bytes: u64,
    pub filesystem_total_bytes: u64,
}

/// An instance folder dolly set aside because its metadata could not be
/// read: kept under `DATA/quarantine/`, never deleted by dolly.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuarantinedInstance {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub template: TemplateName,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub name: InstanceName,
    /// Why it was set aside.
    pub reason: String,
    pub quarantined_at: DateTime<Utc>,
    /// Where it is now (on dollyd's host).
    pub path: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuarantineList {
    pub quarantined: Vec<QuarantinedInstance>,
}

/// What kind of schema object a change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SchemaObject {
    Table,
    Column,
    Index,
    ForeignKey,
    TableOption,
    View,
    Trigger,
    Routine,
    Event,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SchemaChangeKind {
    Added,
    Dropped,
    Modified,
}

/// One difference between two schemas; `before`/`after` are the object's
/// definitions (`SHOW CREATE` text or a column's definition).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SchemaChange {
    pub object: SchemaObject,
    pub database: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    pub name: String,
    pub change: SchemaChangeKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

/// `GET .../instances/{n}/diff`: what the instance's schema changed against
/// its template version (or one of its snapshots), and the DDL that
/// replays it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SchemaDiff {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub template: TemplateName,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub name: InstanceName,
    /// The snapshot compared against; `None`: the template version.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub against: Option<SnapshotName>,
    pub changes: Vec<SchemaChange>,
    /// Statements (without `;`) that turn the template's schema into the
    /// instance's, in an order that applies.
    pub sql: Vec<String>,
}

/// One statement of a diff's SQL run on a throwaway clone with the full
/// data (`diff --explain`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExplainStep {
    pub sql: String,
    /// For an `ALTER TABLE`: `INSTANT`, `INPLACE` or `COPY`, the first the
    /// server accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    /// How long it took on the full data.
    pub seconds: f64,
}

/// `POST .../instances/{n}/diff/explain`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SchemaExplain {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub template: TemplateName,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub name: InstanceName,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub against: Option<SnapshotName>,
    pub steps: Vec<ExplainStep>,
}

/// `POST .../snapshots/{snapshot}/push`: send the snapshot to another dolly
/// server, where it becomes an instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Push {
    /// The other server's base URL (`https://dolly.example:5001`).
    pub remote: String,
    /// A bearer token the other server accepts.
    pub token: String,
    /// The template there (default: the same name).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(default)]
    pub template: Option<TemplateName>,
    /// The instance's name there (default: the same name).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(default)]
    pub name: Option<InstanceName>,
}

/// What a push made on the other server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PushResult {
    pub remote: String,
    /// Archive bytes sent.
    pub bytes: u64,
    pub seconds: f64,
    /// The instance the other server created (its credentials included).
    pub instance: Instance,
}

/// `GET /api/v1/version`: what a push checks before any data moves.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerVersion {
    /// dolly's own version.
    pub dolly: String,
    /// The database server's version in the image (`11.4.2-MariaDB`).
    pub server_version: String,
    pub image: String,
}
