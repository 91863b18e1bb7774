//! Test harness: a real dollyd (in-process, port 0) on a fresh data folder,
//! against the real Docker Engine and the offline MariaDB image.
//!
//! Every container a test causes carries `dolly-test=RUN` ([`test_run`]:
//! `DOLLY_TEST_RUN`, default `1`) and its data folder's `dolly.root` label; dropping a [`TestApp`] removes them all, so a
//! failed test leaves nothing behind.
#![allow(dead_code)]

pub mod cli;
pub mod compare;
pub mod dollyd;
pub mod server;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use dolly_core::config::Settings;
use dolly_core::context::{Context, LABEL_ROOT};
use dolly_core::instance::Manager;
use dolly_core::template::{self, ImportOutcome};
use dolly_engine::{DockerEngine, Engine};
use dolly_server::startup::Application;
use dolly_types::TemplateName;
use mysql_async::prelude::Queryable;
use serde_json::Value;

/// The image the tests run: built by `docker/build-mariadb-image.sh`.
pub fn test_image() -> String {
    std::env::var("DOLLY_TEST_IMAGE").unwrap_or_else(|_| "dolly-mariadb:10.11".to_owned())
}

/// Where test data folders go: `DOLLY_TEST_DIR` (the test script mounts a
/// reflink-capable XFS there when run as root), else the system temp dir.
pub fn test_base_dir() -> PathBuf {
    std::env::var_os("DOLLY_TEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}

/// The engine, or a panic that says what is missing. Never a skip.
pub async fn require_engine() -> Arc<dyn Engine> {
    let engine = DockerEngine::connect().await.unwrap_or_else(|e| {
        panic!(
            "these tests need a running Docker Engine (DOCKER_HOST or /var/run/docker.sock): {e}"
        )
    });
    if let Err(e) = engine.ping().await {
        panic!(
            "these tests need a running Docker Engine (DOCKER_HOST or /var/run/docker.sock): {e}"
        );
    }
    let image = test_image();
    if let Err(e) = engine.ensure_image(&image).await {
        panic!("image {image} is missing ({e}): run docker/build-mariadb-image.sh");
    }
    Arc::new(engine)
}

pub fn init_logs() {
    dolly_server::telemetry::init(dolly_core::config::LogFormat::Human);
}

pub struct TestApp {
    pub url: String,
    pub settings: Settings,
    pub client: reqwest::Client,
    pub engine: Arc<dyn Engine>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// A server being stopped: awaited before the next one starts.
    stopping: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

/// Settings for a test on `data_dir`: loopback, port 0, a unique prefix.
pub fn test_settings(data_dir: &Path) -> Settings {
    let mut s = Settings::with_data_dir(data_dir).expect("default settings");
    s.listen = "127.0.0.1:0".parse().expect("address");
    s.public_host = "127.0.0.1".to_owned();
    s.image = test_image();
    s.container_prefix = format!("dt{}-", &random_suffix()[..8]);
    s.labels = BTreeMap::from([("dolly-test".to_owned(), test_run())]);
    s.import_buffer_pool = 256 * 1024 * 1024;
    // Tests assert on limits explicitly; the shared test disk must not.
    s.min_free_disk = 0;
    s.ready_timeout = Duration::from_secs(60);
    // The relay forwarders run, as cargo built it for these tests.
    s.forward_path = Some(env!("CARGO_BIN_EXE_dolly-forward").into());
    s
}

/// This test run's `dolly-test` label value: `DOLLY_TEST_RUN`, default
/// `1`. `scripts/test.sh` sweeps only its own run's containers, so two runs
/// on one engine (with different values) leave each other alone.
pub fn test_run() -> String {
    std::env::var("DOLLY_TEST_RUN")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "1".to_owned())
}

/// Port, password and database of an `/api/v1` instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Creds {
    pub port: u16,
    pub password: String,
    pub database: String,
}

impl Creds {
    /// The credentials in an instance's JSON ([`creds`], named).
    pub fn of(body: &Value) -> Self {
        let (port, password, database) = creds(body);
        Self {
            port,
            password,
            database,
        }
    }
}

pub fn random_suffix() -> String {
    let bytes: [u8; 8] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl TestApp {
    /// A data folder with no server yet: write dumps, run updates.
    pub async fn new_stopped(configure: impl FnOnce(&mut Settings)) -> Self {
        Self::new_stopped_in(&test_base_dir(), configure).await
    }

    /// As [`TestApp::new_stopped`], with the data folder under `base`
    /// instead of `DOLLY_TEST_DIR` (a test that needs its own filesystem).
    pub async fn new_stopped_in(base: &Path, configure: impl FnOnce(&mut Settings)) -> Self {
        init_logs();
        let engine = require_engine().await;
        let base = base.to_path_buf();
        std::fs::create_dir_all(&base).expect("test base dir");
        let dir = tempfile::Builder::new()
            .prefix("dolly-test-")
            .tempdir_in(&base)
            .expect("temp dir");
        let mut settings = test_settings(dir.path());
        configure(&mut settings);
        std::fs::create_dir_all(dir.path().join("dumps")).expect("dumps dir");
        Self {
            url: String::new(),
            settings,
            client: {
                dolly_server::install_crypto_provider();
                reqwest::Client::builder()
            }
            .timeout(Duration::from_secs(120))
            // Below dollyd's keep-alive (5 s): an idle connection is never
            // reused just as the server closes it (a request sent on it
            // would fail with "IncompleteMessage").
            .pool_idle_timeout(Duration::from_secs(2))
            .build()
            .expect("http client"),
            engine,
            server: None,
            stopping: None,
            _dir: dir,
        }
    }

    /// A running dollyd on a fresh data folder.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(configure: impl FnOnce(&mut Settings)) -> Self {
        let mut app = Self::new_stopped(configure).await;
        app.start().await;
        app
    }

    /// Starts (or restarts) the in-process server on this data folder.
    pub async fn start(&mut self) {
        self.stop();
        // The stopped server must be gone (and its data folder lock with
        // it) before another one starts.
        if let Some(s) = self.stopping.take() {
            let _ = s.await;
        }
        let app = Application::build_with_engine(self.settings.clone(), Arc::clone(&self.engine))
            .await
            .expect("dollyd starts");
        self.url = format!("http://{}", app.address());
        self.server = Some(tokio::spawn(app.run_until_stopped()));
    }

    pub fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.abort();
            self.stopping = Some(s);
        }
    }

    /// Stops the server and waits until it is gone (its data folder lock
    /// released), so another process may take the folder.
    pub async fn halt(&mut self) {
        self.stop();
        if let Some(s) = self.stopping.take() {
            let _ = s.await;
        }
    }

    pub fn data_dir(&self) -> &Path {
        &self.settings.data_dir
    }

    /// Names in the data folder's `tmp/` that start with `prefix` (none
    /// if `tmp/` does not exist).
    pub fn tmp_entries(&self, prefix: &str) -> Vec<String> {
        std::fs::read_dir(self.data_dir().join("tmp"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(prefix))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn dumps_dir(&self) -> PathBuf {
        self.data_dir().join("dumps")
    }

    pub fn write_dump(&self, file_name: &str, contents: &[u8]) {
        let path = self.dumps_dir().join(file_name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("dump folder");
        }
        std::fs::write(path, contents).expect("write dump");
    }

    /// Runs an update in-process, as `dollyd update` does.
    pub async fn update(&self, names: &[&str]) -> Vec<ImportOutcome> {
        let ctx = Arc::new(
            Context::new(self.settings.clone(), Arc::clone(&self.engine)).expect("context"),
        );
        let manager = Manager::new(Arc::clone(&ctx));
        let only: Vec<TemplateName> = names
            .iter()
            .map(|n| TemplateName::parse(n).expect("name"))
            .collect();
        template::update(&ctx, &only, &manager)
            .await
            .expect("update runs")
    }

    /// Runs an update and asserts every import succeeded.
    pub async fn update_ok(&self, names: &[&str]) {
        for o in self.update(names).await {
            if let Err(e) = &o.result {
                panic!("import of {} failed: {e}", o.template);
            }
        }
    }

    /// Environment that makes a `dollyd` process use this app's settings.
    pub fn env(&self) -> Vec<(String, String)> {
        let s = &self.settings;
        let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        vec![
            ("DOLLY_DATA_DIR".into(), s.data_dir.display().to_string()),
            ("DOLLY_IMAGE".into(), s.image.clone()),
            ("DOLLY_CONTAINER_PREFIX".into(), s.container_prefix.clone()),
            ("DOLLY_PUBLIC_HOST".into(), s.public_host.clone()),
            ("DOLLY_LABELS".into(), labels.join(",")),
            (
                "DOLLY_IMPORT_BUFFER_POOL".into(),
                s.import_buffer_pool.to_string(),
            ),
            (
                "DOLLY_CLONE".into(),
                if s.force_copy { "copy" } else { "auto" }.into(),
            ),
        ]
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    pub async fn post(&self, path: &str) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// POSTs `body` as JSON to `path`; returns the status and the body
    /// (JSON, or the text as a string when it is not JSON).
    pub async fn post_json(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let r = self.get(path).await;
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().await.expect("json")
    }

    /// Creates `t/n` through the myaas route; returns the 201 body.
    pub async fn create(&self, t: &str, n: &str) -> Value {
        let r = self.post(&format!("/db/{t}/{n}")).await;
        let status = r.status();
        let body = r.text().await.unwrap_or_default();
        assert_eq!(status, 201, "POST /db/{t}/{n}: {body}");
        serde_json::from_str(&body).expect("json body")
    }

    /// Sends a request with `path` exactly as given (no client-side URL
    /// normalisation); returns the status and the body.
    pub async fn raw(&self, method: &str, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.url.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.expect("read");
        let text = String::from_utf8_lossy(&response).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    /// Containers this app's data folder owns.
    pub async fn containers(&self) -> Vec<dolly_engine::ContainerInfo> {
        let labels = BTreeMap::from([(
            LABEL_ROOT.to_owned(),
            self.settings.data_dir.display().to_string(),
        )]);
        self.engine.list(&labels).await.expect("list containers")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop();
        let root = self.settings.data_dir.display().to_string();
        // Sweep by label, on a runtime of our own (we may be inside one).
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let Ok(engine) = DockerEngine::connect().await else {
                    return;
                };
                let labels = BTreeMap::from([(LABEL_ROOT.to_owned(), root)]);
                if let Ok(list) = engine.list(&labels).await {
                    for c in list {
                        let _ = engine.remove(&c.id).await;
                    }
                }
            });
        })
        .join();
    }
}

/// Credentials from a myaas answer.
pub fn creds(body: &Value) -> (u16, String, String) {
    let port = body["port"]
        .as_str()
        .and_then(|p| p.parse().ok())
        .or_else(|| body["port"].as_u64().map(|p| p as u16))
        .expect("port");
    (
        port,
        body["password"].as_str().expect("password").to_owned(),
        body["database"].as_str().expect("database").to_owned(),
    )
}

/// Runs `sql` on an instance and returns every row as strings.
pub async fn query(port: u16, password: &str, db: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some("root"))
        .pass(Some(password.to_owned()))
        .db_name(Some(db.to_owned()))
        .prefer_socket(false);
    let mut conn = mysql_async::Conn::new(opts)
        .await
        .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
    let rows: Vec<mysql_async::Row> = conn
        .query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let out = rows
        .into_iter()
        .map(|row| {
            (0..row.len())
                .map(|i| {
                    row.as_ref(i).and_then(|v| match v {
                        mysql_async::Value::NULL => None,
                        mysql_async::Value::Bytes(b) => {
                            Some(String::from_utf8_lossy(b).into_owned())
                        }
                        other => Some(other.as_sql(true).trim_matches('\'').to_owned()),
                    })
                })
                .collect()
        })
        .collect();
    let _ = conn.disconnect().await;
    out
}

/// The single value of a one-row, one-column query.
pub async fn scalar(port: u16, password: &str, db: &str, sql: &str) -> String {
    let rows = query(port, password, db, sql).await;
    rows.first()
        .and_then(|r| r.first().cloned().flatten())
        .unwrap_or_else(|| panic!("{sql}: no value"))
}

/// The example shop dump shipped in `examples/dumps/`.
pub fn shop_dump() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/dumps/shop.sql"
    ))
    .expect("examples/dumps/shop.sql")
}

/// A small mysqldump-shaped dump of one table with `rows` rows.
pub fn simple_dump(table: &str, rows: usize) -> String {
    let mut s = format!(
        "-- MariaDB dump 10.19\n\
         CREATE TABLE `{table}` (id INT PRIMARY KEY, v VARCHAR(50)) ENGINE=InnoDB;\n"
    );
    if rows > 0 {
        s.push_str(&format!("INSERT INTO `{table}` VALUES "));
        let values: Vec<String> = (1..=rows).map(|i| format!("({i},'row {i}')")).collect();
        s.push_str(&values.join(","));
        s.push_str(";\n");
    }
    s.push_str("-- Dump completed on 2026-11-23\n");
    s
}
