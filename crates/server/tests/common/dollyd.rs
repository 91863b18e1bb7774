//! The real `dollyd` binary as a child process on a test's data folder:
//! started (optionally with `DOLLY_CRASH_AT`), killed with SIGKILL, started
//! again. The crash tests (`crash.rs`, `crash_random.rs`) build on it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{simple_dump, TestApp};

/// A test's data folder, the dollyd processes run on it and their logs
/// (printed when the test fails).
pub struct Harness {
    pub app: TestApp,
    pub logs: tempfile::TempDir,
    runs: usize,
}

/// A `dollyd serve` process of ours.
pub struct Dollyd {
    pub child: Child,
    pub url: String,
    pub client: reqwest::Client,
    pub log: PathBuf,
}

/// The `dollyd` binary: cargo's, or `DOLLY_TEST_DOLLYD` (a soak runs a
/// copy, so rebuilding meanwhile does not change it under the soak).
pub fn dollyd_bin() -> PathBuf {
    std::env::var_os("DOLLY_TEST_DOLLYD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_dollyd")))
}

impl Harness {
    /// A data folder whose template `shop` holds `simple_dump("t", 3)`.
    pub async fn new() -> Self {
        Self::with_dump(simple_dump("t", 3).as_bytes()).await
    }

    /// A data folder whose template `shop` was imported from `dump`.
    pub async fn with_dump(dump: &[u8]) -> Self {
        let app = TestApp::new_stopped(|_| {}).await;
        app.write_dump("shop.sql", dump);
        app.update_ok(&[]).await;
        Self {
            app,
            logs: tempfile::tempdir().expect("log dir"),
            runs: 0,
        }
    }

    pub fn data(&self) -> &Path {
        self.app.data_dir()
    }

    /// A new log file for a process of this harness.
    pub fn log_file(&mut self, what: &str) -> PathBuf {
        self.runs += 1;
        self.logs.path().join(format!("{}-{what}.log", self.runs))
    }

    /// `dollyd ARGS` on this data folder, not waited for.
    pub fn command(&self, args: &[&str], log: &Path) -> Command {
        let mut cmd = Command::new(dollyd_bin());
        cmd.args(args)
            .envs(self.app.env())
            // As the in-process tests: the shared test disk must not refuse.
            .env("DOLLY_MIN_FREE_DISK", "0")
            .env_remove("DOLLY_CRASH_AT")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).expect("log file"));
        cmd
    }

    /// Starts `dollyd serve` (with `DOLLY_CRASH_AT=crash_at` when given)
    /// and waits until it answers `/healthz`.
    pub async fn start(&mut self, crash_at: Option<&str>, env: &[(&str, String)]) -> Dollyd {
        // The port is picked free, then bound by dollyd: the engine may
        // publish a container on it meanwhile (both use the ephemeral
        // range). Then another port is tried.
        for _ in 0..4 {
            match self.try_start(crash_at, env).await {
                Ok(d) => return d,
                Err(log) => eprintln!(
                    "dollyd lost its port to someone else; trying another ({})",
                    log.display()
                ),
            }
        }
        panic!("dollyd never got a free port");
    }

    async fn try_start(
        &mut self,
        crash_at: Option<&str>,
        env: &[(&str, String)],
    ) -> Result<Dollyd, PathBuf> {
        let log = self.log_file(&format!("dollyd-{}", crash_at.unwrap_or("normal")));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = self.command(&["serve"], &log);
        cmd.env("DOLLY_LISTEN", format!("127.0.0.1:{port}"));
        if let Some(point) = crash_at {
            cmd.env("DOLLY_CRASH_AT", point);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn dollyd");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                if text.contains("Address already in use") {
                    return Err(log);
                }
                panic!(
                    "dollyd exited at start ({status}):\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            if let Ok(r) = self.app.client.get(format!("{url}/healthz")).send().await {
                if r.status() == 200 {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "dollyd did not come up in 90 s:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Dollyd {
            child,
            url,
            client: self.app.client.clone(),
            log,
        })
    }

    /// Entries of `tmp/` that are not dot-files (leftovers of some work).
    pub fn tmp_leftovers(&self) -> Vec<String> {
        std::fs::read_dir(self.data().join("tmp"))
            .expect("read tmp/")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect()
    }

    pub fn assert_tmp_clean(&self) {
        let left = self.tmp_leftovers();
        assert!(left.is_empty(), "tmp/ holds leftovers: {left:?}");
    }

    /// Once an instance's server answered, its init file holds no password.
    pub fn assert_init_file_settled(&self, name: &str) {
        let init = self
            .data()
            .join(format!("instances/shop/{name}/data"))
            .join(dolly_core::dbserver::INIT_FILE);
        let text = std::fs::read_to_string(&init).unwrap_or_default();
        assert!(
            !text.contains("IDENTIFIED BY"),
            "{} still holds the password",
            init.display()
        );
    }

    /// Names of this data folder's containers that belong to `shop/name`.
    pub async fn containers_of(&self, name: &str) -> Vec<String> {
        let suffix = format!("shop.{name}");
        self.app
            .containers()
            .await
            .into_iter()
            .map(|c| c.name)
            .filter(|n| n.ends_with(&suffix))
            .collect()
    }

    /// Prints every log of this harness (for a failure's report).
    pub fn print_logs(&self) {
        let mut logs: Vec<_> = std::fs::read_dir(self.logs.path())
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        logs.sort();
        for log in logs {
            eprintln!(
                "===== {} =====\n{}",
                log.file_name().unwrap_or_default().to_string_lossy(),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_logs();
        }
    }
}

impl Dollyd {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("DELETE {path}: {e}"))
    }

    pub async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    /// POST expecting `status`; returns the JSON body.
    pub async fn post_expect(&self, path: &str, body: Value, status: u16) -> Value {
        let r = self.post(path, body).await;
        let got = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        assert_eq!(got, status, "POST {path}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let r = self.get(path).await;
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        assert_eq!(status, 200, "GET {path}: {text}");
        serde_json::from_str(&text).expect("JSON body")
    }

    /// Sends a request that should kill the process at its fault point,
    /// then waits for the process to exit. Any answer is a failure: the
    /// fault point was never reached.
    pub async fn crash_with(mut self, request: reqwest::RequestBuilder, what: &str) {
        match request.send().await {
            Err(_) => {}
            Ok(r) => {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                panic!("{what} answered {status} ({body}) instead of dying at its fault point");
            }
        }
        let status = self.wait_exit(Duration::from_secs(30));
        assert!(
            !status.success(),
            "dollyd exited cleanly instead of aborting: {status}"
        );
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        assert!(
            log.contains("DOLLY_CRASH_AT="),
            "dollyd died without reaching its fault point ({status}):\n{log}"
        );
    }

    /// Waits (bounded) for the process to exit; its folder lock goes with it.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "dollyd did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, and wait until it is gone.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Dollyd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
