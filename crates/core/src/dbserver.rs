//! The database server inside the image: binaries, users and arguments.
//!
//! Invariant: every difference between MariaDB and MySQL (initialisation,
//! binary names, flags) lives here. dolly runs the server binary itself with
//! explicit arguments (`--no-defaults`), never the image's entrypoint, so an
//! image's own configuration files cannot change what dolly relies on.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use crate::clone::Owner;
use dolly_engine::{Bind, ContainerSpec, Engine, EngineError, Publish, RestartPolicy};

/// Where the datadir is mounted inside containers.
pub const DATADIR: &str = "/var/lib/mysql";
/// The server's socket inside containers.
pub const SOCKET: &str = "/run/mysqld/mysqld.sock";
/// The port the server listens on inside containers.
pub const PORT: u16 = 3306;
/// Init file (inside the datadir) that sets an instance's password at start.
pub const INIT_FILE: &str = ".dolly-init.sql";
/// Inside a forwarder: the folder (read-only) holding the target file.
pub const FORWARD_DIR: &str = "/run/dolly-forward";
/// Inside a forwarder: the folder where a connection to a sleeping
/// instance leaves its wake-up request.
pub const WAKE_DIR: &str = "/run/dolly-wake";
/// The user a forwarder runs as (`nobody`): no database account is named
/// after it, and it owns nothing in the datadir.
pub const FORWARDER_USER: &str = "65534:65534";
/// A forwarder's memory limit: its relay's two threads per connection
/// (about 40 KiB each with the kernel's share; the relay takes at most
/// 512 connections) and the kernel's socket buffers, which count against
/// the container; an idle one uses about 0.5 MiB.
pub const FORWARDER_MEMORY: u64 = 64 << 20;
/// Inside a forwarder: the relay binary (`dolly-forward`, mounted
/// read-only from the data folder). It runs in the server image, so it
/// must be a Linux build for the image's glibc or older (see
/// ARCHITECTURE.md).
pub const RELAY_BINARY: &str = "/usr/local/bin/dolly-forward";
/// Servers behind a forwarder listen on 127.0.0.1 of its network
/// namespace at `BEHIND_BASE_PORT + generation % 100`: the old server and
/// its standby never share a port.
pub const BEHIND_BASE_PORT: u16 = 3307;

/// Redo log size of templates and instances: equal, so a clone never
/// resizes its log at start.
pub const REDO_LOG_SIZE: &str = "48M";

/// Redo log size of an SQL import server while it loads: with
/// [`REDO_LOG_SIZE`] the log stays nearly full through a load and the
/// server writes most pages back during it, under redo pressure (measured
/// on a 100 MB dump: checkpoint age 35-39 MB, 70-80 % of the pages flushed
/// during the load; the load ~1.5x slower). The import's end gives the
/// template a log of [`REDO_LOG_SIZE`] again (`scrub::redo_to_clone_size`).
pub const IMPORT_REDO_LOG_SIZE: &str = "512M";

/// Dumps whose input is smaller than this load with the clones' redo log
/// ([`REDO_LOG_SIZE`]): the restart that gives a larger log back (about
/// 0.6 s) would cost more than the larger log saves on them. The same
/// 16 MiB a table's rows must pass before they are spread.
pub const LOAD_REDO_MIN_INPUT: u64 = 16 << 20;
/// Where an import server finds the rows files its load reads with `LOAD
/// DATA` (read-only; see [`ImageInfo::with_rows_dir`]).
pub const ROWS_DIR: &str = "/dolly-rows";

/// MySQL's doublewrite batch, in pages (its default is 128). The
/// doublewrite files are sized from it, and MySQL reads them whole into
/// memory at every start and keeps that (~3x their size): 16 pages for an
/// 8 MB buffer pool make files of 9 MB instead of 16 MB. See
/// [`not_for_clones`].
pub const MYSQL_DOUBLEWRITE_PAGES: u32 = 16;

/// Whether a file of a cleanly shut down datadir must not reach clones
/// (removed when a template version is published): a buffer pool dump
/// (clones would load it), a stale pid file, the init file, and MySQL's
/// doublewrite files (`#ib_16384_0.dblwr`...). A doublewrite file only
/// matters after a crash (torn pages); after a clean shutdown every page is
/// in its tablespace. Present, MySQL reads it whole at start and keeps ~3x
/// its size in memory (49 MiB for the 16 MB that `--initialize` makes);
/// absent, the server makes it anew at its first start (at
/// [`MYSQL_DOUBLEWRITE_PAGES`]), as fast.
pub fn not_for_clones(file_name: &str) -> bool {
    matches!(file_name, "ib_buffer_pool" | "mysqld.pid" | INIT_FILE)
        || (file_name.starts_with("#ib_") && file_name.ends_with(".dblwr"))
}

/// Whether the import server initialises its datadir before it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// The datadir is empty: initialise it in the container first.
    Here,
    /// The datadir already holds the system tables.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Flavor {
    MariaDb,
    MySql,
}

/// What dolly learnt about an image by running it once (kept in the
/// store per image id: an image's id names its content).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ImageInfo {
    pub flavor: Flavor,
    /// The `mysql` user the server runs as.
    pub owner: Owner,
    /// `mariadbd --version`, for manifests and logs.
    pub version: String,
    /// The engine's id of the image (`sha256:…`): what the cached initial
    /// datadir is made for.
    pub id: String,
}

impl ImageInfo {
    /// Runs a short-lived container of `image` to read its mysql user and
    /// server binary.
    pub async fn probe(
        engine: &dyn Engine,
        image: &str,
        name: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<Self, EngineError> {
        let id = engine.ensure_image(image).await?;
        let script = "id -u mysql; id -g mysql; \
            if command -v mariadbd >/dev/null; then echo mariadb; mariadbd --version; \
            else echo mysql; mysqld --version; fi";
        engine.remove(name).await?;
        let spec = ContainerSpec {
            name: name.to_owned(),
            image: image.to_owned(),
            cmd: vec!["sh".into(), "-c".into(), script.into()],
            user: Some("0:0".into()),
            binds: vec![],
            publish: None,
            labels,
            memory_bytes: None,
            restart: RestartPolicy::No,
            network_of: None,
        };
        engine.run(&spec).await?;
        let code = engine.wait(name).await;
        let out = engine.logs_tail(name, 20).await;
        engine.remove(name).await?;
        let (code, out) = (code?, out?);
        let lines: Vec<&str> = out.lines().map(str::trim).collect();
        let parsed = (|| {
            let uid = lines.first()?.parse().ok()?;
            let gid = lines.get(1)?.parse().ok()?;
            let flavor = match *lines.get(2)? {
                "mariadb" => Flavor::MariaDb,
                _ => Flavor::MySql,
            };
            Some(ImageInfo {
                flavor,
                owner: Owner { uid, gid },
                version: lines.get(3).map(|s| s.to_string()).unwrap_or_default(),
                id: id.clone(),
            })
        })();
        match (code, parsed) {
            (0, Some(info)) => Ok(info),
            _ => Err(EngineError::ImageUnusable {
                image: image.to_owned(),
                reason: format!("no mysql user or server binary (exit {code}): {out}"),
            }),
        }
    }

    pub fn user(&self) -> String {
        format!("{}:{}", self.owner.uid, self.owner.gid)
    }

    fn server_binary(&self) -> &'static str {
        match self.flavor {
            Flavor::MariaDb => "mariadbd",
            Flavor::MySql => "mysqld",
        }
    }

    fn client_binary(&self) -> &'static str {
        match self.flavor {
            Flavor::MariaDb => "mariadb",
            Flavor::MySql => "mysql",
        }
    }

    /// Arguments every server dolly starts gets. MySQL (8.0.30+) sizes its
    /// redo log with `innodb_redo_log_capacity` (9.x has no
    /// `innodb_log_file_size`), has its X protocol plugin on by default
    /// (a second port and threads nobody uses here) and defaults to the
    /// `utf8mb4_0900_ai_ci` collation: kept, as a MySQL team expects.
    fn common_args(&self) -> Vec<String> {
        let mut args = vec![
            self.server_binary().to_owned(),
            "--no-defaults".to_owned(),
            format!("--datadir={DATADIR}"),
            format!("--socket={SOCKET}"),
            "--pid-file=/run/mysqld/mysqld.pid".to_owned(),
            "--skip-name-resolve".to_owned(),
            "--character-set-server=utf8mb4".to_owned(),
            "--max-allowed-packet=1G".to_owned(),
            "--skip-log-bin".to_owned(),
        ];
        match self.flavor {
            Flavor::MariaDb => args.extend([
                "--collation-server=utf8mb4_general_ci".to_owned(),
                format!("--innodb-log-file-size={REDO_LOG_SIZE}"),
            ]),
            Flavor::MySql => args.extend([
                "--collation-server=utf8mb4_0900_ai_ci".to_owned(),
                format!("--innodb-redo-log-capacity={REDO_LOG_SIZE}"),
                "--mysqlx=OFF".to_owned(),
            ]),
        }
        args
    }

    /// Initialises an empty datadir with the system tables (a short-lived
    /// process: it exits when done). Its result depends only on the image
    /// and this command, so dolly makes it once per image id and clones it
    /// for each import (see [`crate::template::init_cache`]).
    pub fn init_command(&self) -> Vec<String> {
        let init = match self.flavor {
            Flavor::MariaDb => format!(
                "mariadb-install-db --no-defaults --datadir={DATADIR} \
                 --auth-root-authentication-method=normal --skip-test-db \
                 --skip-name-resolve --innodb-log-file-size={REDO_LOG_SIZE}"
            ),
            // The redo log is made at the size the import server and the
            // clones use: no resize at each start.
            // `root@localhost` with no password (caching_sha2_password),
            // reached over the socket only; no binary log files in the
            // datadir, the redo log already at the size clones use.
            Flavor::MySql => format!(
                "mysqld --no-defaults --initialize-insecure --datadir={DATADIR} \
                 --skip-log-bin --innodb-redo-log-capacity={REDO_LOG_SIZE}"
            ),
        };
        vec!["sh".into(), "-c".into(), init]
    }

    /// The import server with bulk-load settings, socket only, on a datadir
    /// that `init` says to initialise first (`Init::Here`) or that already
    /// holds the system tables (`Init::Done`: a copy of the cached one). A
    /// slow shutdown (`innodb_fast_shutdown=0`) at the end leaves a datadir
    /// that clones start from with no recovery.
    pub fn import_command(&self, buffer_pool: u64, init: Init) -> Vec<String> {
        let mut server = self.common_args();
        server.extend([
            "--skip-networking".to_owned(),
            format!("--innodb-buffer-pool-size={buffer_pool}"),
            "--innodb-flush-log-at-trx-commit=0".to_owned(),
            "--innodb-doublewrite=OFF".to_owned(),
            "--innodb-flush-method=O_DIRECT_NO_FSYNC".to_owned(),
            "--innodb-log-buffer-size=64M".to_owned(),
            "--innodb-fast-shutdown=0".to_owned(),
            "--innodb-buffer-pool-dump-at-shutdown=0".to_owned(),
            "--innodb-buffer-pool-load-at-startup=0".to_owned(),
            "--performance-schema=0".to_owned(),
            "--sync-binlog=0".to_owned(),
        ]);
        let script = match init {
            Init::Here => {
                let init = self.init_command().swap_remove(2);
                format!(
                    "set -e; {init} >/tmp/init.log 2>&1 || {{ cat /tmp/init.log; exit 1; }}; exec {}",
                    shell_join(&server)
                )
            }
            Init::Done => format!("exec {}", shell_join(&server)),
        };
        vec!["sh".into(), "-c".into(), script]
    }

    /// `spec`'s server (an import server) with a redo log of
    /// [`IMPORT_REDO_LOG_SIZE`] (the server resizes its log at start).
    pub fn with_load_redo_log(&self, spec: &mut ContainerSpec) {
        let arg = match self.flavor {
            Flavor::MariaDb => format!(" --innodb-log-file-size={IMPORT_REDO_LOG_SIZE}"),
            Flavor::MySql => format!(" --innodb-redo-log-capacity={IMPORT_REDO_LOG_SIZE}"),
        };
        if let Some(script) = spec.cmd.last_mut() {
            script.push_str(&arg);
        }
    }

    /// `spec`'s server (an import server) with `host` mounted read-only at
    /// [`ROWS_DIR`], where its load's `LOAD DATA` files are.
    pub fn with_rows_dir(&self, spec: &mut ContainerSpec, host: PathBuf) {
        spec.binds.push(Bind {
            host,
            container: ROWS_DIR.to_owned(),
            read_only: true,
        });
    }

    /// Whether this image's import server reads rows files: MariaDB's
    /// (MySQL's `secure_file_priv` would have to name the folder at start,
    /// not done yet).
    pub fn loads_rows_files(&self) -> bool {
        self.flavor == Flavor::MariaDb
    }

    /// The import server on a restored physical backup (MariaDB): the
    /// system tables are the backup's, so nothing is initialised; an init
    /// file ([`RESTORE_INIT_SQL`], written into the datadir, removed at
    /// publication) makes `root@localhost` reachable over the socket with
    /// no password, whatever the backed-up server had. The redo log is
    /// resized to [`REDO_LOG_SIZE`] at start.
    pub fn restore_command(&self, buffer_pool: u64) -> Vec<String> {
        let mut cmd = self.import_command(buffer_pool, Init::Done);
        if let Some(script) = cmd.last_mut() {
            script.push(' ');
            script.push_str(&shell_join(&[format!("--init-file={DATADIR}/{INIT_FILE}")]));
        }
        cmd
    }

    /// An instance's server: small idle footprint, TCP on [`PORT`], the
    /// init file that sets its password.
    pub fn instance_command(&self) -> Vec<String> {
        let mut args = self.common_args();
        args.extend([
            format!("--port={PORT}"),
            "--bind-address=0.0.0.0".to_owned(),
            format!("--init-file={DATADIR}/{INIT_FILE}"),
            "--innodb-buffer-pool-size=8M".to_owned(),
            "--innodb-log-buffer-size=1M".to_owned(),
            "--innodb-buffer-pool-dump-at-shutdown=0".to_owned(),
            "--innodb-buffer-pool-load-at-startup=0".to_owned(),
            "--performance-schema=0".to_owned(),
            "--key-buffer-size=1M".to_owned(),
            "--table-open-cache=200".to_owned(),
            "--table-definition-cache=400".to_owned(),
            "--thread-cache-size=4".to_owned(),
            "--max-connections=100".to_owned(),
            "--sort-buffer-size=256K".to_owned(),
        ]);
        match self.flavor {
            Flavor::MariaDb => args.extend([
                "--query-cache-size=0".to_owned(),
                "--aria-pagecache-buffer-size=1M".to_owned(),
            ]),
            // MySQL has neither a query cache (gone in 8.0) nor Aria.
            Flavor::MySql => args.extend([
                "--temptable-max-ram=16M".to_owned(),
                "--innodb-log-writer-threads=OFF".to_owned(),
                format!("--innodb-doublewrite-pages={MYSQL_DOUBLEWRITE_PAGES}"),
            ]),
        }
        args
    }

    /// A server behind a forwarder: as [`ImageInfo::instance_command`],
    /// listening on `127.0.0.1:inner_port` of the forwarder's network
    /// namespace only (the forwarder's relays connect from 127.0.0.1 over
    /// TCP, so accounts, plugins and TLS behave as over any TCP connection:
    /// no socket peer credentials are involved).
    pub fn behind_command(&self, inner_port: u16) -> Vec<String> {
        self.instance_command()
            .into_iter()
            .map(|a| {
                if a.starts_with("--port=") {
                    format!("--port={inner_port}")
                } else if a.starts_with("--bind-address=") {
                    "--bind-address=127.0.0.1".to_owned()
                } else {
                    a
                }
            })
            .collect()
    }

    /// Polls the server over its socket until it answers (inside the
    /// container), for at most `secs` seconds.
    pub fn wait_socket_command(&self, secs: u32) -> Vec<String> {
        let admin = match self.flavor {
            Flavor::MariaDb => "mariadb-admin",
            Flavor::MySql => "mysqladmin",
        };
        let tries = secs * 20;
        vec![
            "sh".into(),
            "-c".into(),
            format!(
                "i=0; while [ $i -lt {tries} ]; do \
                 {admin} --no-defaults --socket={SOCKET} -uroot ping >/dev/null 2>&1 && exit 0; \
                 i=$((i+1)); sleep 0.05; done; exit 1"
            ),
        ]
    }

    /// The client reading SQL from standard input as root over the socket.
    pub fn client_command(&self, extra: &[&str]) -> Vec<String> {
        let mut cmd = vec![
            self.client_binary().to_owned(),
            "--no-defaults".to_owned(),
            format!("--socket={SOCKET}"),
            "-uroot".to_owned(),
            "--default-character-set=utf8mb4".to_owned(),
            "--max-allowed-packet=1G".to_owned(),
        ];
        cmd.extend(extra.iter().map(|s| s.to_string()));
        cmd
    }
}

/// A server container on a datadir: what every server dolly starts (an
/// instance, an import, the benchmark's baselines) has in common.
#[derive(Debug, Clone)]
pub struct ServerContainer {
    /// The container's name.
    pub name: String,
    /// The image to run.
    pub image: String,
    /// The datadir, as the engine sees it, mounted at [`DATADIR`].
    pub datadir: PathBuf,
    pub labels: BTreeMap<String, String>,
}

impl ImageInfo {
    /// The one place a server's [`ContainerSpec`] is built: `cmd` runs as
    /// the image's mysql user on the datadir, with no engine restart policy
    /// (dolly restarts crashed servers itself, on the same host port: an
    /// engine restart would publish a new one).
    pub fn server_spec(
        &self,
        c: ServerContainer,
        cmd: Vec<String>,
        publish: Option<Publish>,
        memory_bytes: Option<u64>,
    ) -> ContainerSpec {
        ContainerSpec {
            name: c.name,
            image: c.image,
            cmd,
            user: Some(self.user()),
            binds: vec![Bind {
                host: c.datadir,
                container: DATADIR.to_owned(),
                read_only: false,
            }],
            publish,
            labels: c.labels,
            memory_bytes,
            restart: RestartPolicy::No,
            network_of: None,
        }
    }

    /// An instance's server, published on `bind` (`port`, or one the engine
    /// picks), within `memory_bytes`.
    pub fn instance_spec(
        &self,
        c: ServerContainer,
        bind: IpAddr,
        port: Option<u16>,
        memory_bytes: u64,
    ) -> ContainerSpec {
        let publish = Publish {
            container_port: PORT,
            host_ip: bind,
            host_port: port,
        };
        self.server_spec(
            c,
            self.instance_command(),
            Some(publish),
            Some(memory_bytes),
        )
    }

    /// An instance's server behind its forwarder `forwarder` (in its
    /// network namespace, publishing nothing), on `inner_port`.
    pub fn behind_spec(
        &self,
        c: ServerContainer,
        forwarder: &str,
        inner_port: u16,
        memory_bytes: u64,
    ) -> ContainerSpec {
        let mut spec =
            self.server_spec(c, self.behind_command(inner_port), None, Some(memory_bytes));
        spec.network_of = Some(forwarder.to_owned());
        spec
    }

    /// The import server: socket only, no memory limit.
    pub fn import_spec(&self, c: ServerContainer, buffer_pool: u64, init: Init) -> ContainerSpec {
        self.server_spec(c, self.import_command(buffer_pool, init), None, None)
    }

    /// The one-off container that initialises a datadir and exits.
    pub fn init_spec(&self, c: ServerContainer) -> ContainerSpec {
        self.server_spec(c, self.init_command(), None, None)
    }
}

/// An instance's forwarder: holds the instance's published port (`port`,
/// or one the engine picks) and relays each connection to the server the
/// target file in `forward_dir` names (a port, `starting`, `sleeping` or
/// `stopped`, read at each connection), as `nobody`, with no
/// capabilities: the relay `binary` (the `dolly-forward` crate: one
/// process, a thread per connection direction). Servers join its network
/// namespace. `forward_dir` and the binary are mounted read-only;
/// `wake_dir` (where a connection to a sleeping instance asks for its
/// server) writable.
pub struct Forwarder {
    pub name: String,
    pub image: String,
    /// As the engine sees them.
    pub forward_dir: PathBuf,
    pub wake_dir: PathBuf,
    pub binary: PathBuf,
    pub labels: BTreeMap<String, String>,
}

pub fn forwarder_spec(f: Forwarder, bind: IpAddr, port: Option<u16>) -> ContainerSpec {
    let cmd = [
        RELAY_BINARY,
        "--listen",
        &format!("0.0.0.0:{PORT}"),
        "--target",
        &format!("{FORWARD_DIR}/target"),
        "--wake",
        &format!("{WAKE_DIR}/request"),
    ];
    ContainerSpec {
        name: f.name,
        image: f.image,
        cmd: cmd.iter().map(|a| (*a).to_owned()).collect(),
        user: Some(FORWARDER_USER.to_owned()),
        binds: vec![
            Bind {
                host: f.forward_dir,
                container: FORWARD_DIR.to_owned(),
                read_only: true,
            },
            Bind {
                host: f.wake_dir,
                container: WAKE_DIR.to_owned(),
                read_only: false,
            },
            Bind {
                host: f.binary,
                container: RELAY_BINARY.to_owned(),
                read_only: true,
            },
        ],
        publish: Some(Publish {
            container_port: PORT,
            host_ip: bind,
            host_port: port,
        }),
        labels: f.labels,
        memory_bytes: Some(FORWARDER_MEMORY),
        restart: RestartPolicy::No,
        network_of: None,
    }
}

/// The port a server of generation `generation` listens on behind its
/// forwarder.
pub fn behind_port(generation: u64) -> u16 {
    BEHIND_BASE_PORT + (generation % 100) as u16
}

/// SQL run once at an instance's first start: its password for root, from
/// anywhere. The file is removed as soon as the server answers.
pub fn init_sql(password: &str) -> String {
    let pw = password.replace('\\', "\\\\").replace('\'', "\\'");
    format!(
        "CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY '{pw}';\n\
         ALTER USER 'root'@'%' IDENTIFIED BY '{pw}';\n\
         ALTER USER 'root'@'localhost' IDENTIFIED BY '{pw}';\n\
         GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;\n\
         FLUSH PRIVILEGES;\n"
    )
}

/// Run at the first start of a restored physical backup ([`INIT_FILE`]):
/// `root@localhost`, usable over the socket with no password, as after
/// `mariadb-install-db` (instances set its password at their own start).
pub const RESTORE_INIT_SQL: &str = "CREATE USER IF NOT EXISTS 'root'@'localhost';\n\
    ALTER USER 'root'@'localhost' IDENTIFIED BY '' PASSWORD EXPIRE NEVER ACCOUNT UNLOCK;\n\
    GRANT ALL PRIVILEGES ON *.* TO 'root'@'localhost' WITH GRANT OPTION;\n";

/// Run before a dump: the database a dump with no `USE` loads into, and no
/// accounts but `root@localhost` (the initialiser also makes root accounts
/// for the import container's host name, useless in a clone).
pub fn prepare_sql(flavor: Flavor, database: &str) -> String {
    let accounts = match flavor {
        Flavor::MariaDb => {
            "DELETE FROM mysql.global_priv WHERE Host <> 'localhost';\n\
             DELETE FROM mysql.proxies_priv WHERE Host <> 'localhost';\n"
        }
        Flavor::MySql => "DELETE FROM mysql.user WHERE Host <> 'localhost' AND User = 'root';\n",
    };
    format!("CREATE DATABASE IF NOT EXISTS `{database}`;\n{accounts}FLUSH PRIVILEGES;\n")
}

/// Quotes words for `sh -c`.
fn shell_join(words: &[String]) -> String {
    words
        .iter()
        .map(|w| format!("'{}'", w.replace('\'', "'\\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> ImageInfo {
        ImageInfo {
            flavor: Flavor::MariaDb,
            owner: Owner { uid: 100, gid: 101 },
            version: String::new(),
            id: String::new(),
        }
    }

    #[test]
    fn mysql_gets_only_options_mysql_9_has() {
        let mysql = ImageInfo {
            flavor: Flavor::MySql,
            ..info()
        };
        let cmd = mysql.instance_command();
        assert_eq!(cmd[0], "mysqld");
        for gone in ["--innodb-log-file-size", "--query-cache", "--aria-"] {
            assert!(!cmd.iter().any(|a| a.starts_with(gone)), "{gone}: {cmd:?}");
        }
        assert!(cmd.contains(&"--innodb-redo-log-capacity=48M".to_owned()));
        assert!(cmd.contains(&"--mysqlx=OFF".to_owned()));
        let import = mysql.import_command(1 << 30, Init::Here);
        assert!(import[2].contains("mysqld --no-defaults --initialize-insecure"));
        assert!(!import[2].contains("innodb-log-file-size"));
        // MariaDB keeps what it had.
        let cmd = info().instance_command();
        assert!(cmd.contains(&"--innodb-log-file-size=48M".to_owned()));
        assert!(cmd.contains(&"--query-cache-size=0".to_owned()));
    }

    #[test]
    fn mysql_instances_keep_doublewrite_with_a_small_batch() {
        let mysql = ImageInfo {
            flavor: Flavor::MySql,
            ..info()
        };
        let cmd = mysql.instance_command();
        assert!(cmd.contains(&"--innodb-doublewrite-pages=16".to_owned()));
        // Torn-page protection stays on: only its batch is smaller.
        assert!(!cmd.iter().any(|a| a.starts_with("--innodb-doublewrite=")));
        assert!(!info()
            .instance_command()
            .iter()
            .any(|a| a.starts_with("--innodb-doublewrite")));
    }

    #[test]
    fn clones_get_no_doublewrite_files_nor_leftovers() {
        for f in [
            "#ib_16384_0.dblwr",
            "#ib_16384_1.dblwr",
            "#ib_65536_3.dblwr",
            "ib_buffer_pool",
            "mysqld.pid",
            INIT_FILE,
        ] {
            assert!(not_for_clones(f), "{f}");
        }
        for f in [
            "ibdata1",
            "mysql.ibd",
            "undo_001",
            "#innodb_redo",
            "ib_logfile0",
            "auto.cnf",
            "public_key.pem",
            "dblwr",
        ] {
            assert!(!not_for_clones(f), "{f}");
        }
    }

    #[test]
    fn instance_command_never_holds_a_password() {
        let cmd = info().instance_command().join(" ");
        assert!(cmd.contains("--init-file=/var/lib/mysql/.dolly-init.sql"));
        assert!(!cmd.to_lowercase().contains("password"));
    }

    #[test]
    fn a_forwarder_runs_as_nobody_and_reads_its_target_read_only() {
        let spec = forwarder_spec(
            Forwarder {
                name: "dolly-shop.a.fwd".into(),
                image: "img".into(),
                forward_dir: PathBuf::from("/d/instances/shop/a/forward"),
                wake_dir: PathBuf::from("/d/instances/shop/a/wake"),
                binary: PathBuf::from("/d/bin/dolly-forward"),
                labels: BTreeMap::new(),
            },
            "127.0.0.1".parse().unwrap(),
            Some(40000),
        );
        assert_eq!(spec.user.as_deref(), Some("65534:65534"));
        let target = spec
            .binds
            .iter()
            .find(|b| b.container == FORWARD_DIR)
            .unwrap();
        assert!(target.read_only);
        let relay = spec
            .binds
            .iter()
            .find(|b| b.container == RELAY_BINARY)
            .unwrap();
        assert!(relay.read_only);
        assert_eq!(relay.host, PathBuf::from("/d/bin/dolly-forward"));
        assert_eq!(spec.cmd[0], RELAY_BINARY);
        let p = spec.publish.unwrap();
        assert_eq!((p.container_port, p.host_port), (PORT, Some(40000)));
        assert_eq!(spec.restart, RestartPolicy::No);
        assert!(spec.network_of.is_none());
        // The relay reads the target and leaves wake-up requests where
        // the mounts put them.
        let cmd = spec.cmd.join(" ");
        assert!(cmd.contains("--target /run/dolly-forward/target"), "{cmd}");
        assert!(cmd.contains("--wake /run/dolly-wake/request"), "{cmd}");
        assert!(cmd.contains("--listen 0.0.0.0:3306"), "{cmd}");
    }

    #[test]
    fn a_server_behind_a_forwarder_listens_on_loopback_only() {
        let c = ServerContainer {
            name: "dolly-shop.a.g3".into(),
            image: "img".into(),
            datadir: PathBuf::from("/d/instances/shop/a/standby/g3"),
            labels: BTreeMap::new(),
        };
        let spec = info().behind_spec(c, "dolly-shop.a.fwd", behind_port(3), 1 << 28);
        assert_eq!(spec.network_of.as_deref(), Some("dolly-shop.a.fwd"));
        assert!(spec.publish.is_none());
        assert!(spec.cmd.contains(&"--port=3310".to_owned()));
        assert!(spec.cmd.contains(&"--bind-address=127.0.0.1".to_owned()));
        assert!(!spec.cmd.iter().any(|a| a == "--bind-address=0.0.0.0"));
        assert_eq!(spec.restart, RestartPolicy::No);
        assert_ne!(behind_port(3), behind_port(4));
    }

    #[test]
    fn init_sql_escapes_quotes() {
        assert!(init_sql("a'b").contains("'a\\'b'"));
    }

    #[test]
    fn import_command_initialises_then_execs_the_server() {
        let cmd = info().import_command(1 << 30, Init::Here);
        assert_eq!(cmd[0], "sh");
        assert!(cmd[2].contains("mariadb-install-db"));
        assert!(cmd[2].contains("'--innodb-fast-shutdown=0'"));
    }

    #[test]
    fn a_restored_backup_starts_without_initialising() {
        let cmd = info().restore_command(1 << 30);
        assert!(cmd[2].starts_with("exec 'mariadbd'"), "{}", cmd[2]);
        assert!(!cmd[2].contains("install-db"));
        assert!(cmd[2].contains("'--innodb-fast-shutdown=0'"));
        assert!(cmd[2].ends_with(" '--init-file=/var/lib/mysql/.dolly-init.sql'"));
    }

    #[test]
    fn on_a_cached_datadir_the_import_server_starts_at_once() {
        let cmd = info().import_command(1 << 30, Init::Done);
        assert!(cmd[2].starts_with("exec 'mariadbd'"), "{}", cmd[2]);
        assert!(!cmd[2].contains("install-db"));
        assert!(info().init_command()[2].contains("mariadb-install-db"));
    }
}
