//! Domain types to wire types: the one place where what `dolly-core`
//! returns becomes what `/api/v1` (and the UI) show. Core never depends on
//! `dolly_types::v1` (`tests/fast/architecture.rs`), so an API change stays in
//! the server and the wire types, and a domain change that the API should
//! show fails to compile here.

use dolly_core::instance::{
    DiskUsage, ExplainStep, InstanceState, Reap, ReapReport, SchemaDiff, SchemaExplain,
};
use dolly_core::schema::{Change, ChangeKind, ObjectKind};
use dolly_core::template::{ImportProgress, LastImport, Overview, VersionMeta};
use dolly_types::v1;

/// A domain value's wire form.
pub trait ToWire {
    type Wire;
    fn to_wire(self) -> Self::Wire;
}

impl ToWire for InstanceState {
    type Wire = v1::InstanceState;
    fn to_wire(self) -> v1::InstanceState {
        match self {
            Self::Running => v1::InstanceState::Running,
            Self::Stopped => v1::InstanceState::Stopped,
            Self::Restarting => v1::InstanceState::Restarting,
            Self::Dead => v1::InstanceState::Dead,
            Self::Missing => v1::InstanceState::Missing,
            Self::Broken => v1::InstanceState::Broken,
            Self::Sleeping => v1::InstanceState::Sleeping,
        }
    }
}

/// The state's name as the API spells it (`running`, `stopped`, ...).
pub fn state_name(state: InstanceState) -> &'static str {
    match state {
        InstanceState::Running => "running",
        InstanceState::Stopped => "stopped",
        InstanceState::Restarting => "restarting",
        InstanceState::Dead => "dead",
        InstanceState::Missing => "missing",
        InstanceState::Broken => "broken",
        InstanceState::Sleeping => "sleeping",
    }
}

impl ToWire for Overview {
    type Wire = v1::Template;
    fn to_wire(self) -> v1::Template {
        let current = self.current_version.clone();
        v1::Template {
            versions: self
                .versions
                .into_iter()
                .map(|m| version(m, current.as_ref()))
                .collect(),
            name: self.name,
            current_version: self.current_version,
            importing: self.importing,
            last_import: self.last_import.map(ToWire::to_wire),
            pool: None,
            progress: self.progress.map(ToWire::to_wire),
        }
    }
}

fn version(
    m: VersionMeta,
    current: Option<&dolly_core::names::VersionName>,
) -> v1::TemplateVersion {
    v1::TemplateVersion {
        current: Some(&m.version) == current,
        version: m.version,
        created_at: m.created_at,
        size_bytes: m.size_bytes,
        source_dump: m.source_dump,
        database: m.database,
        import_seconds: m.import_seconds,
        dump_bytes: m.dump_bytes,
        masking: m.masking.map(|k| v1::Masking {
            rules_file: k.rules.as_ref().map(|r| r.name.clone()),
            rules_sha256: k.rules.map(|r| r.sha256),
            strict: k.strict,
            post_script_cleanup: k.post_script_cleanup,
        }),
    }
}

impl ToWire for LastImport {
    type Wire = v1::ImportResult;
    fn to_wire(self) -> v1::ImportResult {
        v1::ImportResult {
            ok: self.ok,
            finished_at: self.finished_at,
            dump: self.dump,
            message: self.message,
            version: self.version,
        }
    }
}

impl ToWire for ImportProgress {
    type Wire = v1::ImportProgress;
    fn to_wire(self) -> v1::ImportProgress {
        v1::ImportProgress {
            phase: self.phase,
            source: self.source,
            elapsed_seconds: self.elapsed_seconds,
            bytes_read: self.bytes_read,
            bytes_total: self.bytes_total,
            percent: self.percent,
            mb_per_s: self.mb_per_s,
            eta_seconds: self.eta_seconds,
            started_at: self.started_at,
            updated_at: self.updated_at,
        }
    }
}

impl ToWire for DiskUsage {
    type Wire = v1::DiskUsage;
    fn to_wire(self) -> v1::DiskUsage {
        v1::DiskUsage {
            entries: self
                .entries
                .into_iter()
                .map(|e| v1::DiskUse {
                    kind: e.kind.as_str().to_owned(),
                    name: e.name,
                    apparent_bytes: e.apparent_bytes,
                })
                .collect(),
            filesystem_free_bytes: self.filesystem_free_bytes,
            filesystem_total_bytes: self.filesystem_total_bytes,
        }
    }
}

/// The reaper's request, from the wire.
pub fn reap(r: &v1::Reap) -> Reap {
    Reap {
        expired: r.expired,
        dead: r.dead,
        unhealthy: r.unhealthy,
        dry_run: r.dry_run,
    }
}

impl ToWire for ReapReport {
    type Wire = v1::ReapReport;
    fn to_wire(self) -> v1::ReapReport {
        v1::ReapReport {
            instances: self
                .instances
                .into_iter()
                .map(|r| v1::Reaped {
                    template: r.template,
                    name: r.name,
                    reason: r.reason,
                    removed: r.removed,
                })
                .collect(),
        }
    }
}

impl ToWire for Change {
    type Wire = v1::SchemaChange;
    fn to_wire(self) -> v1::SchemaChange {
        v1::SchemaChange {
            object: match self.object {
                ObjectKind::Table => v1::SchemaObject::Table,
                ObjectKind::Column => v1::SchemaObject::Column,
                ObjectKind::Index => v1::SchemaObject::Index,
                ObjectKind::ForeignKey => v1::SchemaObject::ForeignKey,
                ObjectKind::TableOption => v1::SchemaObject::TableOption,
                ObjectKind::View => v1::SchemaObject::View,
                ObjectKind::Trigger => v1::SchemaObject::Trigger,
                ObjectKind::Routine => v1::SchemaObject::Routine,
                ObjectKind::Event => v1::SchemaObject::Event,
            },
            database: self.database,
            table: self.table,
            name: self.name,
            change: match self.change {
                ChangeKind::Added => v1::SchemaChangeKind::Added,
                ChangeKind::Dropped => v1::SchemaChangeKind::Dropped,
                ChangeKind::Modified => v1::SchemaChangeKind::Modified,
            },
            before: self.before,
            after: self.after,
        }
    }
}

impl ToWire for SchemaDiff {
    type Wire = v1::SchemaDiff;
    fn to_wire(self) -> v1::SchemaDiff {
        v1::SchemaDiff {
            template: self.template,
            name: self.name,
            against: self.against,
            changes: self.changes.into_iter().map(ToWire::to_wire).collect(),
            sql: self.sql,
        }
    }
}

impl ToWire for ExplainStep {
    type Wire = v1::ExplainStep;
    fn to_wire(self) -> v1::ExplainStep {
        v1::ExplainStep {
            sql: self.sql,
            algorithm: self.algorithm,
            seconds: self.seconds,
        }
    }
}

impl ToWire for SchemaExplain {
    type Wire = v1::SchemaExplain;
    fn to_wire(self) -> v1::SchemaExplain {
        v1::SchemaExplain {
            template: self.template,
            name: self.name,
            against: self.against,
            steps: self.steps.into_iter().map(ToWire::to_wire).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_names_are_the_wire_names() {
        use InstanceState::*;
        for s in [
            Running, Stopped, Restarting, Dead, Missing, Broken, Sleeping,
        ] {
            let wire = serde_json::to_value(s.to_wire()).unwrap();
            assert_eq!(wire.as_str(), Some(state_name(s)));
        }
    }
}
