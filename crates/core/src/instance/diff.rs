//! `diff`: what an instance's schema changed against the template version
//! it was cloned from (or one of its snapshots), and the DDL that replays
//! it. The instance's schema is read live; the other side's is read once
//! from a throwaway server on a clone and cached beside it.

use std::path::PathBuf;

use dolly_names::{InstanceName, SnapshotName, TemplateName};
use tracing::{info, warn};

use super::server::{connect_opts, new_password, Server};
use super::{InstanceError, InstanceState, Manager};
use crate::schema::{self, Schema};
use crate::store::{nonce, Scratch};

/// What an instance's schema changed, and the DDL that replays it.
#[derive(Debug, Clone)]
pub struct SchemaDiff {
    pub template: TemplateName,
    pub name: InstanceName,
    /// The snapshot compared against; `None`: the template version.
    pub against: Option<SnapshotName>,
    pub changes: Vec<schema::Change>,
    /// Statements (without `;`) that turn the template's schema into the
    /// instance's, in an order that applies.
    pub sql: Vec<String>,
}

/// One statement of a diff's SQL, run on a throwaway clone with the full
/// data.
#[derive(Debug, Clone)]
pub struct ExplainStep {
    pub sql: String,
    /// For an `ALTER TABLE`: `INSTANT`, `INPLACE` or `COPY`, the first the
    /// server accepted.
    pub algorithm: Option<String>,
    /// How long it took on the full data.
    pub seconds: f64,
}

/// A diff's SQL as it ran on the full data.
#[derive(Debug, Clone)]
pub struct SchemaExplain {
    pub template: TemplateName,
    pub name: InstanceName,
    pub against: Option<SnapshotName>,
    pub steps: Vec<ExplainStep>,
}

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
        v: &dolly_names::VersionName,
    ) -> Result<Schema, InstanceError> {
        if let Some(s) = self.ctx.store.version_schema(t, v).await? {
            return Ok(s);
        }
        self.ensure_version(t, v).await?;
        let schema = self
            .read_schema_of(t, self.ctx.store.version_data(t, v))
            .await?;
        self.ctx.store.write_version_schema(t, v, &schema).await?;
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
        if let Some(schema) = self.ctx.store.snapshot_schema(t, n, s).await? {
            return Ok(schema);
        }
        let schema = self
            .read_schema_of(t, self.ctx.store.snapshot_data(t, n, s))
            .await?;
        self.ctx
            .store
            .write_snapshot_schema(t, n, s, &schema)
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
        let tw = self.start_throwaway(t, src).await?;
        let read = schema::capture(tw.opts(&self.ctx.settings.connect_host))
            .await
            .map_err(|e| InstanceError::Schema(e.to_string()));
        self.stop_throwaway(tw).await;
        read
    }

    /// `diff --explain`: runs each statement of the diff's SQL on a
    /// throwaway clone of the template version (or the snapshot), with the
    /// full data, and says for each `ALTER TABLE` which algorithm the
    /// server could use (INSTANT, INPLACE, else COPY) and how long it took.
    pub async fn explain(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        against: Option<SnapshotName>,
    ) -> Result<SchemaExplain, InstanceError> {
        let d = self.diff(t, n, against.clone()).await?;
        let src = match &against {
            Some(s) => self.ctx.store.snapshot_data(t, n, s),
            None => {
                let v = self.ready_meta(t, n).await?.version;
                self.ctx.store.version_data(t, &v)
            }
        };
        let tw = self.start_throwaway(t, src).await?;
        let steps = explain_on(tw.opts(&self.ctx.settings.connect_host), &d.sql).await;
        self.stop_throwaway(tw).await;
        Ok(SchemaExplain {
            template: d.template,
            name: d.name,
            against: d.against,
            steps: steps.map_err(|e| InstanceError::Schema(e.to_string()))?,
        })
    }

    /// A server on a clone of `src` in `tmp/`, for this process only.
    async fn start_throwaway(
        &self,
        t: &TemplateName,
        src: PathBuf,
    ) -> Result<Throwaway, InstanceError> {
        let x = nonce();
        let scratch = self
            .ctx
            .store
            .scratch(&Scratch::Throwaway(t.clone(), x.clone()));
        let tw = Throwaway {
            container: format!("{}throwaway.{t}.{x}", self.ctx.settings.container_prefix),
            scratch,
            password: new_password(),
            port: 0,
        };
        let started = async {
            tokio::fs::create_dir(&tw.scratch)
                .await
                .map_err(InstanceError::datadir("create a throwaway folder"))?;
            let data = tw.scratch.join("data");
            self.clone_into(src, &data).await?;
            let server = Server {
                container: tw.container.clone(),
                datadir: data,
                password: tw.password.clone(),
                labels: self.ctx.labels("throwaway"),
                what: format!("{t} (throwaway clone)"),
            };
            self.start_server(&server, super::server::Placement::Published(None))
                .await
        }
        .await;
        match started {
            Ok(port) => Ok(Throwaway { port, ..tw }),
            Err(e) => {
                self.stop_throwaway(tw).await;
                Err(e)
            }
        }
    }

    async fn stop_throwaway(&self, tw: Throwaway) {
        if let Err(e) = self.ctx.engine.remove(&tw.container).await {
            warn!(error = %e, container = %tw.container, "cannot remove a throwaway server");
        }
        let _ = tokio::task::spawn_blocking(move || crate::clone::remove_tree(&tw.scratch)).await;
    }
}

/// A throwaway server (see [`Manager::start_throwaway`]).
struct Throwaway {
    container: String,
    scratch: PathBuf,
    password: String,
    port: u16,
}

impl Throwaway {
    fn opts(&self, host: &str) -> mysql_async::OptsBuilder {
        connect_opts(host, self.port, &self.password)
    }
}

/// Runs `sql` on a server, trying INSTANT, INPLACE then COPY for each
/// `ALTER TABLE`, timing what ran.
async fn explain_on(
    opts: mysql_async::OptsBuilder,
    sql: &[String],
) -> Result<Vec<ExplainStep>, mysql_async::Error> {
    use mysql_async::prelude::Queryable;
    let mut conn = mysql_async::Conn::new(opts).await?;
    let mut steps = Vec::new();
    for stmt in sql {
        if stmt.starts_with("ALTER TABLE ") {
            let mut done = None;
            for algorithm in ["INSTANT", "INPLACE", "COPY"] {
                let started = std::time::Instant::now();
                match conn
                    .query_drop(format!("{stmt}, ALGORITHM={algorithm}"))
                    .await
                {
                    Ok(()) => {
                        done = Some((algorithm, started.elapsed().as_secs_f64()));
                        break;
                    }
                    Err(mysql_async::Error::Server(_)) => continue,
                    Err(e) => return Err(e),
                }
            }
            let (algorithm, seconds) = match done {
                Some((a, s)) => (Some(a.to_owned()), s),
                None => {
                    // Refused with every algorithm: run it plainly, so the
                    // server's own error is what the user sees.
                    conn.query_drop(stmt.as_str()).await?;
                    (None, 0.0)
                }
            };
            steps.push(ExplainStep {
                sql: stmt.clone(),
                algorithm,
                seconds,
            });
        } else {
            let started = std::time::Instant::now();
            conn.query_drop(stmt.as_str()).await?;
            steps.push(ExplainStep {
                sql: stmt.clone(),
                algorithm: None,
                seconds: started.elapsed().as_secs_f64(),
            });
        }
    }
    let _ = conn.disconnect().await;
    Ok(steps)
}
