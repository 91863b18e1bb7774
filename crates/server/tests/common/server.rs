//! A plain server of the test image in a container of the test's data
//! folder (swept with it), loaded by the client: what dolly's import is
//! compared with.

use std::path::PathBuf;
use std::sync::Arc;

use dolly_core::clone::own_tree;
use dolly_core::context::Context;
use dolly_core::dbserver::{self, Flavor, ImageInfo, Init, ServerContainer};
use dolly_engine::Engine;

/// Schemas every server has.
pub const SYSTEM: &str = "('mysql','information_schema','performance_schema','sys')";

/// A plain server of the test image (the import server's settings), for
/// loads by one client: the oracle of the import tests.
pub struct Oracle {
    pub engine: Arc<dyn Engine>,
    pub image: ImageInfo,
    pub name: String,
    dir: PathBuf,
    pub database: String,
}

impl Oracle {
    pub async fn start(ctx: &Context, image: &ImageInfo, dir: PathBuf) -> Self {
        std::fs::create_dir_all(&dir).unwrap();
        own_tree(&dir, image.owner, true).unwrap();
        let name = format!("{}oracle", ctx.settings().container_prefix);
        let server = ServerContainer {
            name: name.clone(),
            image: ctx.settings().image.clone(),
            datadir: ctx.store().for_engine(&dir),
            labels: ctx.labels("oracle"),
        };
        let spec = image.import_spec(server, ctx.settings().import_buffer_pool, Init::Here);
        ctx.engine().run(&spec).await.expect("oracle server runs");
        let up = ctx
            .engine()
            .exec(&name, image.wait_socket_command(180), None, None)
            .await
            .unwrap();
        if up.exit_code != 0 {
            let logs = ctx.engine().logs_tail(&name, 30).await.unwrap_or_default();
            panic!("the oracle server did not start: {logs}");
        }
        Self {
            engine: Arc::clone(ctx.engine()),
            image: image.clone(),
            name,
            dir,
            database: ctx.settings().database.clone(),
        }
    }

    pub async fn sql(&self, sql: &str) -> String {
        let out = self
            .engine
            .exec(
                &self.name,
                self.image.client_command(&["-N", "-B", "-e", sql]),
                None,
                None,
            )
            .await
            .unwrap();
        assert_eq!(out.exit_code, 0, "{sql}: {}", out.stderr);
        out.stdout
    }

    /// Every database but the system ones dropped, the configured one
    /// made again: as a fresh server before an import.
    pub async fn reset(&self) {
        let dbs = self
            .sql(&format!(
                "SELECT schema_name FROM information_schema.schemata WHERE schema_name NOT IN {SYSTEM}"
            ))
            .await;
        for db in dbs.lines().filter(|l| !l.is_empty()) {
            self.sql(&format!("DROP DATABASE `{}`", db.replace('`', "``")))
                .await;
        }
        self.sql(&dbserver::prepare_sql(self.image.flavor, &self.database))
            .await;
    }

    /// `mariadb db < dump`: the client's error when it fails. As dolly
    /// does, the configured database goes when the dump made `database`
    /// and left the configured one empty.
    pub async fn load(&self, dump: Vec<u8>, database: &str) -> Result<(), String> {
        self.reset().await;
        let out = self
            .engine
            .exec(
                &self.name,
                self.image.client_command(&[&self.database]),
                Some(self.image.user()),
                Some(Box::pin(std::io::Cursor::new(dump))),
            )
            .await
            .unwrap();
        if out.exit_code != 0 {
            return Err(out.stderr.trim().to_owned());
        }
        if database != self.database {
            let tables = self
                .sql(&format!(
                    "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '{}'",
                    self.database
                ))
                .await;
            if tables.trim() == "0" {
                self.sql(&format!("DROP DATABASE `{}`", self.database))
                    .await;
            }
        }
        Ok(())
    }

    /// The image's own dump tool on what is loaded now.
    pub async fn redump(&self, args: &str) -> Vec<u8> {
        let tool = match self.image.flavor {
            Flavor::MariaDb => "mariadb-dump",
            Flavor::MySql => "mysqldump",
        };
        let file = "redump.sql";
        let script = format!(
            "{tool} --no-defaults --socket={} -uroot {args} > {}/{file}",
            dbserver::SOCKET,
            dbserver::DATADIR
        );
        let out = self
            .engine
            .exec(
                &self.name,
                vec!["sh".into(), "-c".into(), script.clone()],
                Some(self.image.user()),
                None,
            )
            .await
            .unwrap();
        assert_eq!(out.exit_code, 0, "{script}: {}", out.stderr);
        let bytes = std::fs::read(self.dir.join(file)).unwrap();
        let _ = std::fs::remove_file(self.dir.join(file));
        bytes
    }

    /// `mariadb db < script`, nothing reset: the client's error.
    pub async fn run(&self, db: &str, script: Vec<u8>) -> Result<(), String> {
        let out = self
            .engine
            .exec(
                &self.name,
                self.image.client_command(&[db]),
                Some(self.image.user()),
                Some(Box::pin(std::io::Cursor::new(script))),
            )
            .await
            .unwrap();
        if out.exit_code != 0 {
            return Err(out.stderr.trim().to_owned());
        }
        Ok(())
    }
}
