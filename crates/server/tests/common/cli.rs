//! Running the real `dolly` binary from tests: build it once, run it
//! without blocking the in-process server, check exit codes and output.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

/// Builds the `dolly` CLI once and returns its path, as cargo reports it.
pub fn dolly_bin() -> &'static Path {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let mut cmd = std::process::Command::new(env!("CARGO"));
        cmd.args([
            "build",
            "-p",
            "dolly-cli",
            "--bin",
            "dolly",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        let out = cmd.output().expect("run cargo build -p dolly-cli");
        assert!(out.status.success(), "cargo build -p dolly-cli failed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "dolly")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported no `dolly` executable")
    })
}

/// What a command did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    /// Standard output as text (lossy).
    pub stdout: String,
    /// Standard output as it came (archives).
    pub stdout_bytes: Vec<u8>,
    pub stderr: String,
}

impl Run {
    fn new(out: std::process::Output) -> Self {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stdout_bytes: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        self
    }

    #[track_caller]
    pub fn fails(&self, code: i32, stderr_has: &str) -> &Self {
        assert_eq!(self.code, code, "expected exit {code}: {self:#?}");
        assert!(
            self.stderr.contains(stderr_has),
            "stderr lacks {stderr_has:?}: {self:#?}"
        );
        self
    }

    /// As [`Run::fails`], and the error is one sentence on one line.
    #[track_caller]
    pub fn fails_in_one_line(&self, code: i32, stderr_has: &str) -> &Self {
        self.fails(code, stderr_has);
        assert_eq!(
            self.stderr.trim().lines().count(),
            1,
            "one sentence on stderr: {self:#?}"
        );
        self
    }

    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }
}

/// Runs `dolly args` against `url` (via DOLLY_URL), with extra environment
/// and `stdin` as its input, without blocking the in-process server.
pub async fn dolly_run(
    url: &str,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&[u8]>,
) -> Run {
    let mut cmd = tokio::process::Command::new(dolly_bin());
    cmd.args(args)
        .env_remove("DOLLY_TOKEN")
        .env("DOLLY_URL", url)
        .envs(env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("run dolly");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        let input = input.to_vec();
        tokio::spawn(async move {
            // The CLI may stop reading early (a refused archive): fine.
            let _ = pipe.write_all(&input).await;
        });
    }
    let out = tokio::time::timeout(Duration::from_secs(300), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("dolly {args:?} did not finish in 300s"))
        .expect("run dolly");
    Run::new(out)
}

/// `dolly args` against `url`.
pub async fn dolly(url: &str, args: &[&str]) -> Run {
    dolly_run(url, args, &[], None).await
}

/// `bash -c script` (for `eval "$(dolly env ...)"` and pipes).
pub async fn bash(script: &str, env: &[(&str, &str)]) -> Run {
    let out = tokio::process::Command::new("bash")
        .args(["-c", script])
        .envs(env.iter().copied())
        .env_remove("DOLLY_TOKEN")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .expect("run bash");
    Run::new(out)
}

/// The customers a test added (the shop dump has ids 1 to 3), through
/// `dolly shell`, so the real client and the instance's credentials are used.
pub async fn added(url: &str, t: &str, n: &str) -> Vec<String> {
    let r = dolly(
        url,
        &[
            "shell",
            "--no-create",
            t,
            n,
            "-N",
            "-B",
            "-e",
            "SELECT name FROM customers WHERE id > 3 ORDER BY id",
        ],
    )
    .await;
    r.ok().stdout.lines().map(str::to_owned).collect()
}

/// An RFC 3339 time from JSON.
pub fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("not an RFC 3339 time: {v}"))
}
