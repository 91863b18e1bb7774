//! Physical backups as a source, against the real engine: a server of the
//! test image with some data is backed up by its own `mariadb-backup`
//! (a stream, the stream compressed, a `--target-dir` folder); each becomes
//! a template whose instances answer with the same rows and `CHECKSUM
//! TABLE`; post scripts run; a backup from another major version is
//! refused naming both, and the previous version keeps serving; a MySQL
//! image refuses a physical backup.

use crate::common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Arc;

use common::{creds, query, scalar, test_image, TestApp};
use dolly_core::context::{Context, LABEL_ROOT};
use dolly_core::dbserver::{Flavor, ImageInfo};
use dolly_core::instance::Manager;
use dolly_core::template::{self, ImportError, ImportOutcome, UpdateOptions, VersionMeta};
use dolly_engine::{ContainerSpec, RestartPolicy};
use dolly_types::TemplateName;

const SOCKET: &str = "/run/mysqld/mysqld.sock";

/// The data backed up: InnoDB tables with secondary keys, a foreign key and
/// utf8mb4 text, a view, an Aria table, and a second schema (`shop` is the
/// first non-system schema, so the one instances report).
const SEED: &str = "CREATE DATABASE shop; USE shop;
CREATE TABLE customers (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100) NOT NULL,
  email VARCHAR(200), note TEXT, KEY email (email), KEY name_note (name, note(10)))
  ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT NOT NULL, total DECIMAL(10,2),
  KEY customer_id (customer_id),
  CONSTRAINT orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id))
  ENGINE=InnoDB;
CREATE TABLE legacy (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=Aria;
INSERT INTO customers (name, email, note)
  SELECT CONCAT('Zoë ☕ ', seq), CONCAT('c', seq, '@shop.example'), REPEAT('naïve ', seq % 40)
  FROM seq_1_to_2000;
INSERT INTO orders SELECT seq, 1 + seq % 2000, seq * 1.25 FROM seq_1_to_5000;
INSERT INTO legacy SELECT seq, CONCAT('v', seq) FROM seq_1_to_300;
CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 5000;
CREATE DATABASE zeta; CREATE TABLE zeta.z (id INT PRIMARY KEY) ENGINE=InnoDB;
INSERT INTO zeta.z VALUES (1), (2);";

const TABLES: &str = "shop.customers, shop.orders, shop.legacy, zeta.z";

/// A server of the test image with [`SEED`] loaded, in a container the
/// test app's sweep removes (its labels); the datadir stays inside it.
struct Source {
    name: String,
    app_engine: Arc<dyn dolly_engine::Engine>,
}

impl Source {
    async fn start(app: &TestApp) -> Self {
        let name = format!("{}source", app.settings.container_prefix);
        let mut labels: BTreeMap<String, String> = app.settings.labels.clone();
        labels.insert(LABEL_ROOT.into(), app.data_dir().display().to_string());
        let script = format!(
            "mariadb-install-db --no-defaults --datadir=/var/lib/mysql \
             --auth-root-authentication-method=normal --skip-test-db >/tmp/init.log 2>&1 \
             || {{ cat /tmp/init.log; exit 1; }}; \
             exec mariadbd --no-defaults --datadir=/var/lib/mysql --socket={SOCKET} \
             --skip-networking --innodb-log-file-size=96M"
        );
        let spec = ContainerSpec {
            name: name.clone(),
            image: test_image(),
            cmd: vec!["sh".into(), "-c".into(), script],
            user: Some("mysql".into()),
            binds: vec![],
            publish: None,
            labels,
            memory_bytes: None,
            restart: RestartPolicy::No,
            network_of: None,
        };
        app.engine.run(&spec).await.expect("source server starts");
        let source = Self {
            name,
            app_engine: Arc::clone(&app.engine),
        };
        let wait = format!(
            "i=0; while [ $i -lt 1200 ]; do mariadb-admin --no-defaults --socket={SOCKET} -uroot \
             ping >/dev/null 2>&1 && exit 0; i=$((i+1)); sleep 0.05; done; exit 1"
        );
        let up = source.sh(&wait).await;
        assert_eq!(up.exit_code, 0, "source server: {}", up.stderr);
        source.sql(SEED).await;
        source
    }

    async fn sh(&self, script: &str) -> dolly_engine::ExecOutput {
        self.app_engine
            .exec(
                &self.name,
                vec!["sh".into(), "-c".into(), script.into()],
                None,
                None,
            )
            .await
            .expect("exec in the source")
    }

    /// Runs `sql` as root; the tab-separated output.
    async fn sql(&self, sql: &str) -> String {
        let out = self
            .app_engine
            .exec(
                &self.name,
                vec![
                    "mariadb".into(),
                    "--no-defaults".into(),
                    format!("--socket={SOCKET}"),
                    "-uroot".into(),
                    "--default-character-set=utf8mb4".into(),
                    "-N".into(),
                    "-B".into(),
                    "-e".into(),
                    sql.into(),
                ],
                None,
                None,
            )
            .await
            .expect("exec the client");
        assert_eq!(out.exit_code, 0, "{sql}: {}", out.stderr);
        out.stdout
    }

    /// `table -> checksum` of [`TABLES`].
    async fn checksums(&self) -> BTreeMap<String, String> {
        parse_checksums(&self.sql(&format!("CHECKSUM TABLE {TABLES}")).await)
    }

    /// `mariadb-backup --backup --stream=xbstream`, its standard output
    /// captured through `docker exec` as an operator would.
    fn stream_backup(&self) -> Vec<u8> {
        let out = Command::new("docker")
            .args(["exec", &self.name, "mariadb-backup", "--backup"])
            .args(["--stream=xbstream", "--user=root", "--target-dir=/tmp"])
            .arg(format!("--socket={SOCKET}"))
            .stdin(Stdio::null())
            .output()
            .expect("docker exec mariadb-backup");
        assert!(
            out.status.success(),
            "mariadb-backup --stream: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stdout.len() > 1 << 20,
            "a stream of {} bytes",
            out.stdout.len()
        );
        out.stdout
    }

    /// `mariadb-backup --backup --target-dir`, copied out to `dest`.
    async fn folder_backup(&self, dest: &std::path::Path) {
        let made = self
            .sh(&format!(
                "mariadb-backup --backup --target-dir=/tmp/folder --user=root --socket={SOCKET}"
            ))
            .await;
        assert_eq!(made.exit_code, 0, "mariadb-backup: {}", made.stderr);
        let cp = Command::new("docker")
            .args(["cp", &format!("{}:/tmp/folder", self.name)])
            .arg(dest)
            .output()
            .expect("docker cp");
        assert!(
            cp.status.success(),
            "{}",
            String::from_utf8_lossy(&cp.stderr)
        );
    }
}

fn parse_checksums(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let (t, c) = l.split_once('\t')?;
            Some((t.to_owned(), c.to_owned()))
        })
        .collect()
}

/// The same checksums, asked of an instance.
async fn instance_checksums(port: u16, pw: &str, db: &str) -> BTreeMap<String, String> {
    query(port, pw, db, &format!("CHECKSUM TABLE {TABLES}"))
        .await
        .into_iter()
        .filter_map(|r| Some((r.first()?.clone()?, r.get(1)?.clone()?)))
        .collect()
}

/// `SHOW CREATE TABLE` without its `AUTO_INCREMENT=N`.
fn without_counter(create: &str) -> String {
    create
        .split(' ')
        .filter(|w| !w.starts_with("AUTO_INCREMENT="))
        .collect::<Vec<_>>()
        .join(" ")
}

fn tpl(name: &str) -> TemplateName {
    TemplateName::parse(name).unwrap()
}

fn context(app: &TestApp) -> Arc<Context> {
    Arc::new(Context::new(app.settings.clone(), Arc::clone(&app.engine)).unwrap())
}

async fn update(ctx: &Arc<Context>, names: &[&str]) -> Vec<ImportOutcome> {
    let manager = Manager::new(Arc::clone(ctx));
    let only: Vec<TemplateName> = names.iter().map(|n| tpl(n)).collect();
    template::update_with(ctx, &only, &manager, &UpdateOptions::default())
        .await
        .expect("update runs")
}

fn ok(o: &ImportOutcome) -> VersionMeta {
    match &o.result {
        Ok(m) => m.clone(),
        Err(e) => panic!("import of {} failed: {e}", o.template),
    }
}

/// The probed test image; these tests need a MariaDB one (on MySQL only
/// the refusal is tested).
async fn image(app: &TestApp) -> ImageInfo {
    context(app).image().await.expect("image probe").clone()
}

#[tokio::test]
async fn stream_backups_become_templates_with_post_scripts() {
    let app = TestApp::spawn().await;
    assert_eq!(
        image(&app).await.flavor,
        Flavor::MariaDb,
        "physical backups are mariadb-backup's: run this test with a MariaDB image (DOLLY_TEST_IMAGE)"
    );
    let source = Source::start(&app).await;
    let expected = source.checksums().await;
    let create_customers = source.sql("SHOW CREATE TABLE shop.customers").await;
    let stream = source.stream_backup();
    app.write_dump("shop.xbstream", &stream);
    app.write_dump(
        "shopz.xbstream.zst",
        &zstd::encode_all(&stream[..], 3).unwrap(),
    );
    app.write_dump(
        "shop.post.sql",
        b"UPDATE customers SET email = CONCAT('user', id, '@example.invalid');\n\
          CREATE TABLE post_ran (x INT PRIMARY KEY); INSERT INTO post_ran VALUES (1);\n",
    );

    let ctx = context(&app);
    let outcomes = update(&ctx, &[]).await;
    assert_eq!(outcomes.len(), 2);
    let shop = ok(&outcomes[0]);
    let shopz = ok(&outcomes[1]);
    assert_eq!(
        (shop.database.as_str(), shopz.database.as_str()),
        ("shop", "shop")
    );
    let post: Vec<&str> = shop.post_scripts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(post, ["shop.post.sql"]);
    assert!(shopz.post_scripts.is_empty());
    assert_eq!(
        shopz.dump_bytes,
        std::fs::metadata(app.dumps_dir().join("shopz.xbstream.zst"))
            .unwrap()
            .len()
    );

    // The compressed stream: every table as the source had it.
    let body = app.create("shopz", "a").await;
    let (port, pw, db) = creds(&body);
    assert_eq!(db, "shop");
    assert_eq!(instance_checksums(port, &pw, &db).await, expected);
    assert_eq!(
        scalar(port, &pw, &db, "SELECT COUNT(*) FROM big_orders").await,
        "1000"
    );
    assert_eq!(
        scalar(port, &pw, &db, "SELECT name FROM customers WHERE id = 7").await,
        "Zoë ☕ 7"
    );
    // The same definition, keys included (the AUTO_INCREMENT counter is
    // what a restart of the source would show: the next value after the
    // rows, not the batch InnoDB had reserved in memory).
    let create = query(port, &pw, &db, "SHOW CREATE TABLE customers").await;
    let restored = create[0][1].clone().unwrap_or_default();
    let original = create_customers
        .split_once('\t')
        .map(|(_, c)| c.trim().replace("\\n", "\n"))
        .unwrap_or_default();
    assert_eq!(without_counter(&restored), without_counter(&original));
    // The foreign key holds in the clone.
    let fk = query(
        port,
        &pw,
        &db,
        "SELECT COUNT(*) FROM information_schema.referential_constraints \
         WHERE constraint_name = 'orders_customer'",
    )
    .await;
    assert_eq!(fk[0][0].as_deref(), Some("1"));

    // The plain stream with its post script: masked emails, the rest equal.
    let body = app.create("shop", "a").await;
    let (port, pw, db) = creds(&body);
    assert_eq!(db, "shop");
    let got = instance_checksums(port, &pw, &db).await;
    for table in ["shop.orders", "shop.legacy", "zeta.z"] {
        assert_eq!(got[table], expected[table], "{table}");
    }
    assert_ne!(got["shop.customers"], expected["shop.customers"]);
    assert_eq!(
        scalar(
            port,
            &pw,
            &db,
            "SELECT COUNT(*) FROM customers WHERE email LIKE 'user%@example.invalid'"
        )
        .await,
        "2000"
    );
    assert_eq!(scalar(port, &pw, &db, "SELECT x FROM post_ran").await, "1");

    // The published datadir: redo log at the size instances use, no
    // backup metadata, no init file.
    let current = app.data_dir().join("templates/shop/current");
    let redo = std::fs::metadata(current.join("ib_logfile0"))
        .unwrap()
        .len();
    assert_eq!(redo, 48 << 20);
    for gone in [
        "backup-my.cnf",
        "xtrabackup_info",
        "mariadb_backup_info",
        ".dolly-init.sql",
    ] {
        assert!(!current.join(gone).exists(), "{gone} left in the template");
    }
    // The API says where it came from.
    let t = app.get_json("/api/v1/templates/shop").await;
    assert_eq!(t["last_import"]["ok"], true);
    assert!(t["versions"][0]["source_dump"]
        .as_str()
        .unwrap()
        .ends_with("shop.xbstream"));

    // Unchanged backups are skipped.
    let again = update(&ctx, &[]).await;
    assert!(again.iter().all(|o| o.unchanged), "{again:?}");

    // A stream cut short fails the import; the previous version serves
    // and nothing half-made is left.
    app.write_dump("shop.xbstream", &stream[..stream.len() / 2]);
    let cut = update(&ctx, &["shop"]).await;
    let err = cut[0].result.as_ref().unwrap_err();
    assert!(matches!(err, ImportError::Backup { .. }), "{err}");
    assert_eq!(
        ctx.store().current_version(&tpl("shop")).unwrap(),
        Some(shop.version.clone())
    );
    let tmp = app.tmp_entries("import.");
    assert!(tmp.is_empty(), "{tmp:?}");
    assert!(app
        .containers()
        .await
        .iter()
        .all(|c| !c.name.ends_with("._import")));
    let body = app.create("shop", "b").await;
    let (port, pw, db) = creds(&body);
    assert_eq!(scalar(port, &pw, &db, "SELECT x FROM post_ran").await, "1");
}

#[tokio::test]
async fn a_backup_folder_becomes_a_template_and_another_major_version_is_refused() {
    let app = TestApp::spawn().await;
    let img = image(&app).await;
    assert_eq!(
        img.flavor,
        Flavor::MariaDb,
        "physical backups are mariadb-backup's: run this test with a MariaDB image (DOLLY_TEST_IMAGE)"
    );
    let source = Source::start(&app).await;
    let expected = source.checksums().await;
    let folder = app.dumps_dir().join("shopdir");
    source.folder_backup(&folder).await;
    let checkpoints = ["mariadb_backup_checkpoints", "xtrabackup_checkpoints"]
        .iter()
        .map(|f| folder.join(f))
        .find(|p| p.exists())
        .expect("a checkpoints file");
    let checkpoints_before = std::fs::read_to_string(&checkpoints).unwrap();

    let ctx = context(&app);
    let outcomes = update(&ctx, &["shopdir"]).await;
    let meta = ok(&outcomes[0]);
    assert_eq!(meta.database, "shop");
    let body = app.create("shopdir", "a").await;
    let (port, pw, db) = creds(&body);
    assert_eq!(db, "shop");
    assert_eq!(instance_checksums(port, &pw, &db).await, expected);
    assert_eq!(
        scalar(port, &pw, &db, "SELECT COUNT(*) FROM orders").await,
        "5000"
    );
    // The backup in the dumps folder was not prepared in place.
    assert_eq!(
        std::fs::read_to_string(&checkpoints).unwrap(),
        checkpoints_before
    );

    // A backup whose info file names another major version is refused,
    // naming both; the previous version keeps serving.
    let info = ["mariadb_backup_info", "xtrabackup_info"]
        .iter()
        .map(|f| folder.join(f))
        .find(|p| p.exists())
        .expect("an info file");
    let other = if img.version.contains(" 10.11.") {
        "11.8.3-MariaDB-ubu2404"
    } else {
        "10.11.18-MariaDB-0+deb12u1"
    };
    let text = std::fs::read_to_string(&info).unwrap();
    let edited: String = text
        .lines()
        .map(|l| {
            if l.starts_with("server_version") {
                format!("server_version = {other}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    assert_ne!(edited, text);
    std::fs::write(&info, edited).unwrap();
    let outcomes = update(&ctx, &["shopdir"]).await;
    let err = outcomes[0].result.as_ref().unwrap_err();
    assert!(matches!(err, ImportError::VersionMismatch { .. }), "{err}");
    let msg = err.to_string();
    let server_release = img
        .version
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap()
        .to_owned();
    assert!(
        msg.contains(other) && msg.contains(&server_release),
        "{msg}"
    );
    assert_eq!(
        ctx.store().current_version(&tpl("shopdir")).unwrap(),
        Some(meta.version.clone())
    );
    let t = app.get_json("/api/v1/templates/shopdir").await;
    assert_eq!(t["last_import"]["ok"], false);
    assert!(t["last_import"]["message"]
        .as_str()
        .unwrap()
        .contains(other));
    let body = app.create("shopdir", "b").await;
    let (port, pw, db) = creds(&body);
    assert_eq!(instance_checksums(port, &pw, &db).await, expected);
    // No half-made import is left.
    assert!(app
        .containers()
        .await
        .iter()
        .all(|c| !c.name.ends_with("._import")));
}

/// A MySQL image has no `mariadb-backup`: a physical backup is refused
/// before any container runs. On a MariaDB test image the probe's answer
/// is replaced by a MySQL one.
#[tokio::test]
async fn a_mysql_image_refuses_a_physical_backup() {
    let app = TestApp::spawn().await;
    let img = image(&app).await;
    let fake = (img.flavor == Flavor::MariaDb).then(|| ImageInfo {
        flavor: Flavor::MySql,
        version: "mysqld  Ver 9.1.0 for Linux on x86_64 (MySQL Community Server - GPL)".into(),
        ..img
    });
    a_mysql_image_refuses(app, fake).await;
}

async fn a_mysql_image_refuses(app: TestApp, fake: Option<ImageInfo>) {
    app.write_dump("shop.xbstream", b"not read: refused before");
    let ctx = context(&app);
    if let Some(info) = fake {
        ctx.set_image(info);
    }
    let outcomes = update(&ctx, &["shop"]).await;
    let err = outcomes[0].result.as_ref().unwrap_err();
    assert!(
        matches!(err, ImportError::PhysicalUnsupported { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("MySQL"), "{err}");
    assert_eq!(ctx.store().current_version(&tpl("shop")).unwrap(), None);
}
