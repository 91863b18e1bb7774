//! Cached schemas: of a template version (`templates/T/V.schema.json`) and
//! of a snapshot (`.../snapshots/S/schema.json`). Both datadirs are
//! immutable, so a schema read once stays true.

use dolly_names::{InstanceName, SnapshotName, TemplateName, VersionName};

use super::{json, Store, StoreError};
use crate::schema::Schema;

impl Store {
    pub fn version_schema(
        &self,
        t: &TemplateName,
        v: &VersionName,
    ) -> Result<Option<Schema>, StoreError> {
        json::read(&self.layout.template_version_schema(t, v))
    }

    pub fn write_version_schema(
        &self,
        t: &TemplateName,
        v: &VersionName,
        schema: &Schema,
    ) -> Result<(), StoreError> {
        json::write(&self.layout.template_version_schema(t, v), schema)
    }

    pub fn snapshot_schema(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        s: &SnapshotName,
    ) -> Result<Option<Schema>, StoreError> {
        json::read(&self.layout.snapshot_schema(t, n, s))
    }

    pub fn write_snapshot_schema(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        s: &SnapshotName,
        schema: &Schema,
    ) -> Result<(), StoreError> {
        json::write(&self.layout.snapshot_schema(t, n, s), schema)
    }
}
