//! The baseline: the dump piped into `mariadb` on a server of the same
//! image with its default configuration; what it holds afterwards; and,
//! when asked, a `mariadb-backup` stream of that server for the physical
//! import.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use dolly_core::clone::{own_tree, remove_tree};
use dolly_core::dbserver;
use dolly_engine::Bind;

use crate::bench::Bench;
use crate::report::TableState;
use crate::util::log;
use crate::{dumpgen, sys};

/// Where the backup folder is mounted in the baseline's container.
const BACKUP_MOUNT: &str = "/backup";

/// What one load on the bare server measured.
pub struct Baseline {
    pub total_s: f64,
    pub load_s: f64,
    /// CPU of the engine's processes during the load.
    pub engine_cpu_s: f64,
    /// Machine-wide busy cores during the load (includes other users).
    pub busy_cores: f64,
    pub cpu: sys::CpuSplit,
    /// When asked for.
    pub state: Option<TableState>,
    /// When asked for: the backup, or why there is none.
    /// The stream and the folder backup, when asked for.
    pub backup: Vec<Result<Backup, String>>,
}

/// A `mariadb-backup --stream=xbstream` of the baseline's server, in the
/// dumps folder as `NAMEphys.xbstream`.
#[derive(Debug, Clone)]
pub struct Backup {
    /// "stream" (`--stream=xbstream`) or "folder" (`--target-dir`).
    pub form: &'static str,
    pub template: String,
    pub bytes: u64,
    pub seconds: f64,
}

/// The physical template's name for the dump of `template` and a form.
pub fn physical_template(template: &str, form: &str) -> String {
    match form {
        "folder" => format!("{template}physdir"),
        _ => format!("{template}phys"),
    }
}

impl Bench {
    /// Initialises and starts a default-configuration server, pipes the
    /// dump into one `mariadb` client (timed), then reads the tables
    /// (`check`) and streams a backup into the dumps folder (`backup`).
    pub(super) async fn baseline(
        &self,
        template: &str,
        dump_file: &Path,
        tables: &[String],
        check: bool,
        backup: bool,
    ) -> anyhow::Result<Baseline> {
        let datadir = dbserver::DATADIR;
        let socket = dbserver::SOCKET;
        let script = format!(
            "set -e; mariadb-install-db --no-defaults --datadir={datadir} \
             --auth-root-authentication-method=normal --skip-test-db >/tmp/init.log 2>&1 \
             || {{ cat /tmp/init.log; exit 1; }}; \
             exec mariadbd --no-defaults --datadir={datadir} --socket={socket} \
             --pid-file=/run/mysqld/mysqld.pid"
        );
        let cmd = vec!["sh".into(), "-c".into(), script];
        let dir = self.data.join(format!("baseline-{template}"));
        let backup_dir = self.data.join(format!("backup-{template}"));
        remove_tree(&dir)?;
        std::fs::create_dir_all(&dir)?;
        own_tree(&dir, self.image.owner, true)?;
        let name = format!("{}baseline-{template}", self.settings.container_prefix);
        let mut spec = self
            .image
            .server_spec(self.server(&name, &dir), cmd, None, None);
        if backup {
            remove_tree(&backup_dir)?;
            std::fs::create_dir_all(&backup_dir)?;
            own_tree(&backup_dir, self.image.owner, true)?;
            spec.binds.push(Bind {
                host: backup_dir.clone(),
                container: BACKUP_MOUNT.into(),
                read_only: false,
            });
        }
        let sampler = sys::CpuSampler::start(Arc::clone(&self.engine), name.clone());
        let started = Instant::now();
        self.engine.run(&spec).await?;
        let up = self
            .engine
            .exec(&name, self.image.wait_socket_command(120), None, None)
            .await?;
        if up.exit_code != 0 {
            let logs = self.engine.logs_tail(&name, 30).await.unwrap_or_default();
            bail!("the baseline server did not start: {logs}");
        }
        let stdin = tokio::fs::File::open(dump_file).await?;
        let engine0 = sys::engine_cpu();
        let jiffies0 = sys::machine_jiffies();
        let load_started = Instant::now();
        let load = self.engine.exec(
            &name,
            client(&[]),
            Some(self.image.user()),
            Some(Box::pin(stdin)),
        );
        let out = tokio::time::timeout(Duration::from_secs(3 * 3600), load)
            .await
            .map_err(|_| anyhow!("the baseline load of {template} took over 3 h"))??;
        let load_s = load_started.elapsed().as_secs_f64();
        let total_s = started.elapsed().as_secs_f64();
        let engine_cpu_s = sys::engine_cpu() - engine0;
        let busy_cores = sys::busy_cores(jiffies0, sys::machine_jiffies());
        let cpu = sys::split(&sampler.finish().await);
        if out.exit_code != 0 {
            bail!(
                "the baseline load of {template} failed ({}): {}",
                out.exit_code,
                out.stderr
            );
        }
        let state = if check {
            Some(self.baseline_state(&name, tables).await?)
        } else {
            None
        };
        let backup = if backup {
            vec![
                self.stream_backup(&name, template, &backup_dir).await,
                self.folder_backup(&name, template, &backup_dir).await,
            ]
        } else {
            Vec::new()
        };
        self.engine.remove(&name).await?;
        remove_tree(&dir)?;
        if !backup.is_empty() {
            remove_tree(&backup_dir)?;
        }
        Ok(Baseline {
            total_s,
            load_s,
            engine_cpu_s,
            busy_cores,
            cpu,
            state,
            backup,
        })
    }

    /// Rows, `CHECKSUM TABLE` and `SHOW CREATE TABLE` of `tables`, through
    /// the client in the container.
    async fn baseline_state(&self, name: &str, tables: &[String]) -> anyhow::Result<TableState> {
        let db = dumpgen::DATABASE;
        let mut sql: Vec<String> = tables
            .iter()
            .map(|t| format!("SELECT 'rows', '{t}', COUNT(*) FROM `{db}`.`{t}`;"))
            .collect();
        sql.push(format!(
            "CHECKSUM TABLE {};",
            tables
                .iter()
                .map(|t| format!("`{db}`.`{t}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        for t in tables {
            sql.push(format!("SHOW CREATE TABLE `{db}`.`{t}`;"));
        }
        let q = self
            .engine
            .exec(
                name,
                client(&["-N", "-B", "-e", &sql.join(" ")]),
                None,
                None,
            )
            .await?;
        if q.exit_code != 0 {
            bail!("the baseline's check query failed: {}", q.stderr);
        }
        Ok(parse_state(&q.stdout, db))
    }

    /// `mariadb-backup --backup --stream=xbstream` in the baseline's
    /// container, its standard output into the mounted backup folder (the
    /// engine's exec returns output in memory), then moved into the dumps
    /// folder. A failure is reported, not raised.
    async fn stream_backup(
        &self,
        name: &str,
        template: &str,
        backup_dir: &Path,
    ) -> Result<Backup, String> {
        let phys = physical_template(template, "stream");
        log(format!(
            "mariadb-backup of the baseline server of {template}"
        ));
        let file = format!("{phys}.xbstream");
        let script = format!(
            "mariadb-backup --backup --stream=xbstream --user=root --socket={} \
             --datadir={} --target-dir=/tmp > {BACKUP_MOUNT}/{file} 2>/tmp/backup.log \
             || {{ tail -c 3000 /tmp/backup.log >&2; exit 1; }}",
            dbserver::SOCKET,
            dbserver::DATADIR
        );
        let started = Instant::now();
        let out = self
            .engine
            .exec(name, vec!["sh".into(), "-c".into(), script], None, None)
            .await
            .map_err(|e| format!("exec mariadb-backup: {e}"))?;
        let seconds = started.elapsed().as_secs_f64();
        if out.exit_code != 0 {
            return Err(format!(
                "mariadb-backup exited with {}: {}",
                out.exit_code,
                out.stderr.trim()
            ));
        }
        let dest = self.data.join("dumps").join(&file);
        std::fs::rename(backup_dir.join(&file), &dest)
            .map_err(|e| format!("move the backup to {}: {e}", dest.display()))?;
        let bytes = std::fs::metadata(&dest).map(|m| m.len()).unwrap_or(0);
        log(format!(
            "mariadb-backup of {template}: {:.0} MB in {seconds:.1} s",
            bytes as f64 / 1e6
        ));
        Ok(Backup {
            form: "stream",
            template: phys,
            bytes,
            seconds,
        })
    }

    /// `mariadb-backup --backup --target-dir` of the running baseline
    /// server into the mounted folder, moved to `dumps/NAMEphysdir/` (a
    /// folder with `mariadb_backup_checkpoints`: a physical dump).
    async fn folder_backup(
        &self,
        name: &str,
        template: &str,
        backup_dir: &Path,
    ) -> Result<Backup, String> {
        let phys = physical_template(template, "folder");
        log(format!("mariadb-backup --target-dir of {template}"));
        let script = format!(
            "mariadb-backup --backup --user=root --socket={} --datadir={} \
             --target-dir={BACKUP_MOUNT}/{phys} 2>/tmp/backup.log \
             || {{ tail -c 3000 /tmp/backup.log >&2; exit 1; }}",
            dbserver::SOCKET,
            dbserver::DATADIR
        );
        let started = Instant::now();
        let out = self
            .engine
            .exec(name, vec!["sh".into(), "-c".into(), script], None, None)
            .await
            .map_err(|e| format!("exec mariadb-backup: {e}"))?;
        let seconds = started.elapsed().as_secs_f64();
        if out.exit_code != 0 {
            return Err(format!(
                "mariadb-backup --target-dir exited with {}: {}",
                out.exit_code,
                out.stderr.trim()
            ));
        }
        let dest = self.data.join("dumps").join(&phys);
        let _ = remove_tree(&dest);
        std::fs::rename(backup_dir.join(&phys), &dest)
            .map_err(|e| format!("move the backup to {}: {e}", dest.display()))?;
        let bytes = dolly_core::clone::tree_size(&dest);
        log(format!(
            "mariadb-backup --target-dir of {template}: {:.0} MB in {seconds:.1} s",
            bytes as f64 / 1e6
        ));
        Ok(Backup {
            form: "folder",
            template: phys,
            bytes,
            seconds,
        })
    }
}

/// The image's client on the server's socket as root, with `args`.
fn client(args: &[&str]) -> Vec<String> {
    let mut cmd = vec![
        "mariadb".to_owned(),
        "--no-defaults".to_owned(),
        format!("--socket={}", dbserver::SOCKET),
        "-uroot".to_owned(),
    ];
    cmd.extend(args.iter().map(|a| a.to_string()));
    cmd
}

/// The check query's batch output (`-N -B`): `rows\tTABLE\tN` lines, then
/// `db.TABLE\tchecksum` lines, then `TABLE\tCREATE TABLE ...` lines with
/// the batch mode's escapes.
fn parse_state(stdout: &str, db: &str) -> TableState {
    let mut state = TableState::default();
    let prefix = format!("{db}.");
    for line in stdout.lines() {
        let f: Vec<&str> = line.splitn(3, '\t').collect();
        match f.as_slice() {
            ["rows", t, n] => state
                .rows
                .push(((*t).to_owned(), n.trim().parse().unwrap_or(0))),
            [t, create] if create.starts_with("CREATE ") => state
                .create_tables
                .push(((*t).to_owned(), unescape_batch(create))),
            [t, sum] if t.starts_with(&prefix) => state
                .checksums
                .push((t[prefix.len()..].to_owned(), (*sum).to_owned())),
            _ => {}
        }
    }
    state
}

/// Undoes the client's batch-mode escapes (`\n`, `\t`, `\\`, `\0`).
fn unescape_batch(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('0') => out.push('\0'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_output_parses() {
        let out = "rows\tcustomers\t12\nrows\torders\t3\n\
                   benchdb.customers\t123\nbenchdb.orders\tNULL\n\
                   customers\tCREATE TABLE `customers` (\\n  `id` int NOT NULL,\\n  `note` varchar(9) DEFAULT 'a\\\\tb'\\n)\n\
                   orders\tCREATE TABLE `orders` (\\n  `id` int\\n)\n";
        let s = parse_state(out, "benchdb");
        assert_eq!(s.rows, vec![("customers".into(), 12), ("orders".into(), 3)]);
        assert_eq!(
            s.checksums,
            vec![
                ("customers".into(), "123".into()),
                ("orders".into(), "NULL".into())
            ]
        );
        assert_eq!(s.create_tables.len(), 2);
        assert_eq!(
            s.create_tables[0].1,
            "CREATE TABLE `customers` (\n  `id` int NOT NULL,\n  `note` varchar(9) DEFAULT 'a\\tb'\n)"
        );
    }
}
