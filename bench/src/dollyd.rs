//! dollyd as the bench runs it: this binary re-run as `dolly-bench
//! __dollyd` (the code of `dollyd serve`, in its own process so its RSS can
//! be read), and the API calls the measurements make to it.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use dolly_core::config::Settings;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::bench::Bench;
use crate::util::{log, ms, workspace_dir, MIB};
use crate::{label_value, sys, LABEL};

/// `dollyd serve`, as `src/main.rs` runs it, in a child process: settings
/// from `DOLLY_*`, then prints `LISTENING addr` on standard output.
pub fn child_main() -> ExitCode {
    let settings = match Settings::load(None) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("dollyd: {e}");
            return ExitCode::from(2);
        }
    };
    dolly_server::telemetry::init(settings.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dollyd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let app = dolly_server::startup::Application::build(settings).await?;
        println!("LISTENING {}", app.address());
        app.run_until_stopped().await.context("server failed")
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dollyd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// How to reach an instance.
#[derive(Clone)]
pub struct Creds {
    pub port: u16,
    pub password: String,
    pub database: String,
}

/// A create's answer: its time and how to connect.
pub struct Created {
    pub ms: f64,
    pub creds: Creds,
}

/// A connection to an instance over TCP, as its user would make it.
pub async fn connect(c: &Creds) -> anyhow::Result<mysql_async::Conn> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(c.port)
        .user(Some("root"))
        .pass(Some(c.password.clone()))
        .db_name(Some(c.database.clone()))
        .prefer_socket(false);
    mysql_async::Conn::new(opts)
        .await
        .with_context(|| format!("connect to 127.0.0.1:{}", c.port))
}

/// A dollyd child process.
pub struct Dollyd {
    child: Option<tokio::process::Child>,
    pid: u32,
    url: String,
    /// `auto`, `copy` or `copy-ext4`: names its log and its figures.
    pub mode: &'static str,
}

impl Dollyd {
    pub async fn spawn(
        bench: &Bench,
        data_dir: &Path,
        force_copy: bool,
        mode: &'static str,
    ) -> anyhow::Result<Self> {
        let clone = if force_copy { "copy" } else { "auto" };
        Self::spawn_with_env(bench, data_dir, mode, &[("DOLLY_CLONE", clone)]).await
    }

    /// A dollyd with `env` added to (or overriding) the bench's settings.
    pub async fn spawn_with_env(
        bench: &Bench,
        data_dir: &Path,
        mode: &'static str,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let s = &bench.settings;
        let exe = std::env::current_exe()?;
        let logs = workspace_dir().join("target/bench");
        std::fs::create_dir_all(&logs)?;
        let log_file = std::fs::File::create(logs.join(format!("dollyd-{mode}.log")))?;
        let mut child = tokio::process::Command::new(exe)
            .arg("__dollyd")
            .env("DOLLY_DATA_DIR", data_dir)
            .env("DOLLY_LISTEN", "127.0.0.1:0")
            .env("DOLLY_PUBLIC_HOST", &s.public_host)
            .env("DOLLY_INSTANCE_BIND", s.instance_bind.to_string())
            .env("DOLLY_IMAGE", &s.image)
            .env("DOLLY_CONTAINER_PREFIX", &s.container_prefix)
            .env("DOLLY_LABELS", format!("{LABEL}={}", label_value()))
            .env("DOLLY_DEFAULT_TTL", "3h")
            .env("DOLLY_CLONE", "auto")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .context("start the dollyd child")?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow!("dollyd child has no pid"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("dollyd child has no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(Duration::from_secs(120), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(a) = line.strip_prefix("LISTENING ") {
                    return Ok(a.to_owned());
                }
            }
            Err(anyhow!(
                "dollyd exited before listening; see target/bench/dollyd-{mode}.log"
            ))
        })
        .await
        .map_err(|_| anyhow!("dollyd did not listen within 120 s"))??;
        log(format!(
            "dollyd ({mode} clones) listening on {addr}, pid {pid}"
        ));
        // Idle a moment so the RSS figure is after start-up.
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok(Self {
            child: Some(child),
            pid,
            url: format!("http://{addr}"),
            mode,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub fn rss_mib(&self) -> f64 {
        sys::vm_rss(self.pid).map(|b| b as f64 / MIB).unwrap_or(0.0)
    }

    pub async fn create(
        &self,
        http: &reqwest::Client,
        template: &str,
        name: &str,
    ) -> anyhow::Result<Created> {
        let t0 = Instant::now();
        let r = http
            .post(self.url(&format!("/db/{template}/{name}")))
            .send()
            .await?;
        let status = r.status();
        let body = r.text().await?;
        let elapsed = ms(t0);
        if status != 201 {
            bail!("POST /db/{template}/{name} answered {status}: {body}");
        }
        let v: serde_json::Value = serde_json::from_str(&body)
            .with_context(|| format!("POST /db/{template}/{name}: not JSON: {body}"))?;
        let port = v["port"]
            .as_str()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| anyhow!("no port in {body}"))?;
        let password = v["password"]
            .as_str()
            .ok_or_else(|| anyhow!("no password in {body}"))?
            .to_owned();
        let database = v["database"].as_str().unwrap_or_default().to_owned();
        Ok(Created {
            ms: elapsed,
            creds: Creds {
                port,
                password,
                database,
            },
        })
    }

    pub async fn delete(
        &self,
        http: &reqwest::Client,
        template: &str,
        name: &str,
    ) -> anyhow::Result<f64> {
        let t0 = Instant::now();
        let r = http
            .delete(self.url(&format!("/db/{template}/{name}")))
            .send()
            .await?;
        let status = r.status();
        let body = r.text().await?;
        if status != 204 {
            bail!("DELETE /db/{template}/{name} answered {status}: {body}");
        }
        Ok(ms(t0))
    }

    pub async fn stop_mut(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on the pid of the child we started.
            unsafe {
                libc::kill(self.pid as i32, libc::SIGTERM);
            }
            if tokio::time::timeout(Duration::from_secs(40), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
    }

    pub async fn stop(mut self) {
        self.stop_mut().await;
    }
}
