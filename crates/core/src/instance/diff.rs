//! `diff`: what an instance's schema changed against the template version
//! it was cloned from (or one of its snapshots), and the DDL that replays
//! it. The instance's schema is read live; the other side's is read once
//! from a throwaway server on a clone and cached beside it.

use std::path::PathBuf;

use dolly_types::v1::InstanceState;
use dolly_types::v1::SchemaDiff;
use dolly_types::{InstanceName, SnapshotName, TemplateName};
use tracing::{info, warn};

use super::server::{connect_opts, new_password, Server};
use super::{InstanceError, Manager};
use crate::schema::{self, Schema};
use crate::store::{nonce, Scratch};

impl Manager {
    /// The schema changes of `t/n` against its template version, or
    /// against its snapshot `against`.
    pub async fn diff(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        against: Option<SnapshotName>,
    ) -> Result<SchemaDiff, InstanceError> {
        let meta = self.ready_meta(t, n).await?;
        let i = self.view(meta.clone()).await?;
        let port = match (i.state, i.port) {
            (InstanceState::Running, Some(p)) => p,
            _ => return Err(InstanceError::NotRunning(t.clone(), n.clone())),
        };
        let before = match &against {
            Some(s) => self.snapshot_schema(t, n, s).await?,
            None => self.version_schema(t, &meta.version).await?,
        };
        let opts = connect_opts(&self.ctx.settings.connect_host, port, &meta.password);
        let after = schema::capture(opts)
            .await
            .map_err(|e| InstanceError::Schema(e.to_string()))?;
        Ok(SchemaDiff {
            template: t.clone(),
            name: n.clone(),
            against,
            changes: schema::diff(&before, &after),
            sql: schema::sql(&before, &after),
        })
    }

    async fn version_schema(
        &self,
        t: &TemplateName,
        v: &dolly_types::VersionName,
    ) -> Result<Schema, InstanceError> {
        let (t2, v2) = (t.clone(), v.clone());
        if let Some(s) = self
            .ctx
            .blocking(move |s| s.version_schema(&t2, &v2))
            .await?
        {
            return Ok(s);
        }
        let data = self.ctx.store.version_data(t, v);
        if !data.is_dir() {
            return Err(InstanceError::VersionGone(t.clone(), v.clone()));
        }
        let schema = self.read_schema_of(t, data).await?;
        let (t2, v2, s2) = (t.clone(), v.clone(), schema.clone());
        self.ctx
            .blocking(move |s| s.write_version_schema(&t2, &v2, &s2))
            .await?;
        info!(template = %t, version = %v, "version schema read and kept");
        Ok(schema)
    }

    async fn snapshot_schema(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        s: &SnapshotName,
    ) -> Result<Schema, InstanceError> {
        self.snapshot_meta(t, n, s).await?;
        let (t2, n2, s2) = (t.clone(), n.clone(), s.clone());
        if let Some(schema) = self
            .ctx
            .blocking(move |st| st.snapshot_schema(&t2, &n2, &s2))
            .await?
        {
            return Ok(schema);
        }
        let schema = self
            .read_schema_of(t, self.ctx.store.snapshot_data(t, n, s))
            .await?;
        let (t2, n2, s2, sc) = (t.clone(), n.clone(), s.clone(), schema.clone());
        self.ctx
            .blocking(move |st| st.write_snapshot_schema(&t2, &n2, &s2, &sc))
            .await?;
        Ok(schema)
    }

    /// Starts a throwaway server on a clone of `src`, reads its schema and
    /// removes it all.
    async fn read_schema_of(
        &self,
        t: &TemplateName,
        src: PathBuf,
    ) -> Result<Schema, InstanceError> {
        let x = nonce();
        let scratch = self
            .ctx
            .store
            .scratch(&Scratch::Throwaway(t.clone(), x.clone()));
        let result = async {
            tokio::fs::create_dir(&scratch)
                .await
                .map_err(InstanceError::datadir("create a throwaway folder"))?;
            let data = scratch.join("data");
            self.clone_into(src, &data).await?;
            let server = Server {
                container: format!("{}throwaway.{t}.{x}", self.ctx.settings.container_prefix),
                datadir: data,
                password: new_password(),
                labels: self.ctx.labels("throwaway"),
                what: format!("{t} (throwaway clone)"),
            };
            let started = self.start_server(&server, None).await;
            let read = match started {
                Ok(port) => {
                    let opts = connect_opts(&self.ctx.settings.connect_host, port, &server.password);
                    schema::capture(opts)
                        .await
                        .map_err(|e| InstanceError::Schema(e.to_string()))
                }
                Err(e) => Err(e),
            };
            if let Err(e) = self.ctx.engine.remove(&server.container).await {
                warn!(error = %e, container = %server.container, "cannot remove a throwaway server");
            }
            read
        }
        .await;
        let s = scratch.clone();
        let _ = tokio::task::spawn_blocking(move || crate::clone::remove_tree(&s)).await;
        result
    }
}
