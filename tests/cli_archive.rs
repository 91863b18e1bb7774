//! `dolly export` and `dolly import` end to end: the real binary against a
//! real dollyd (the test harness's, in-process) and the real engine. It
//! follows cli/README.md's "Moving a state to another server": a row
//! written, a snapshot exported to a file, imported under another name and
//! the row seen there; then a taken name (exit 4), a truncated archive
//! (exit 1, from a file and from stdin), a missing snapshot (exit 3). Two
//! instances at once.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::TestApp;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use common::dolly_bin;

#[derive(Debug)]
struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    #[track_caller]
    fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        self
    }

    #[track_caller]
    fn fails(&self, code: i32, stderr_has: &str) -> &Self {
        assert_eq!(self.code, code, "expected exit {code}: {self:#?}");
        assert!(
            self.stderr.contains(stderr_has),
            "stderr lacks {stderr_has:?}: {self:#?}"
        );
        self
    }

    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }
}

/// Runs `dolly args` against `url` (via DOLLY_URL), `stdin` as its input,
/// without blocking the in-process server.
async fn dolly_with(url: &str, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut cmd = tokio::process::Command::new(dolly_bin());
    cmd.args(args)
        .env_remove("DOLLY_TOKEN")
        .env("DOLLY_URL", url)
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
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn dolly(url: &str, args: &[&str]) -> Run {
    dolly_with(url, args, None).await
}

/// The customers a test added (the dump has ids 1 to 3), through
/// `dolly shell`, so the real client and the instance's credentials are used.
async fn added(url: &str, t: &str, n: &str) -> Vec<String> {
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
    r.ok().text().lines().map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_of_export_and_import_need_no_server() {
    let nowhere = "http://127.0.0.1:1";
    for args in [
        &["export", "shop", "alice", "f.tar.zst"][..],
        &["export", "shop", "alice@Bad", "f.tar.zst"],
        &["export", "Shop", "alice@one", "f.tar.zst"],
        &["export", "shop", "alice@one"],
        &["import", "f.tar.zst", "shop"],
        &["import", "f.tar.zst", "shop", "../x"],
        &["import", "f.tar.zst", "shop", "bob", "--ttl", "soon"],
    ] {
        let r = dolly(nowhere, args).await;
        assert_eq!(r.code, 2, "dolly {args:?}: {r:#?}");
        assert!(!r.stderr.contains("cannot reach"), "{r:#?}");
    }
    // A missing file is said so, before any request.
    dolly(
        nowhere,
        &["import", "/nonexistent/a.tar.zst", "shop", "bob"],
    )
    .await
    .fails(1, "cannot read /nonexistent/a.tar.zst");
    let help = dolly(nowhere, &["--help"]).await;
    for needle in ["export", "import", "Save a snapshot as an archive file"] {
        assert!(help.ok().text().contains(needle), "{needle}: {help:#?}");
    }
    let help = dolly(nowhere, &["import", "--help"]).await;
    assert!(help.ok().text().contains("exit 4"), "{help:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_moves_through_an_archive_file() {
    dolly_bin();
    let app = TestApp::spawn().await;
    app.write_dump("shop.sql", &common::shop_dump());
    app.update_ok(&[]).await;
    let url = app.url.clone();
    let url = url.as_str();
    let dir = common::test_base_dir().join(format!("dolly-archive-{}", common::random_suffix()));
    std::fs::create_dir_all(&dir).expect("archive folder");
    let file = dir.join("alice-one.tar.zst");
    let file_arg = file.to_str().expect("utf-8 path");

    // new, a row, a snapshot.
    dolly(url, &["new", "shop", "alice", "--ttl", "1h", "-q"])
        .await
        .ok();
    let sql = "INSERT INTO customers (name, email) VALUES ('travels', 'travels@example.com')";
    dolly(url, &["shell", "--no-create", "shop", "alice", "-e", sql])
        .await
        .ok();
    dolly(url, &["snapshot", "shop", "alice", "one"]).await.ok();

    // export to a file: the size it says is the file's, and nothing else
    // is left in the folder.
    let r = dolly(url, &["export", "shop", "alice@one", file_arg]).await;
    assert!(
        r.ok()
            .text()
            .starts_with(&format!("exported shop/alice@one to {file_arg} (")),
        "{r:#?}"
    );
    let exported = dolly(url, &["export", "shop", "alice@one", file_arg, "--json"])
        .await
        .ok()
        .json();
    let size = std::fs::metadata(&file).expect("the archive").len();
    assert!(size > 1000, "{size}");
    assert_eq!(exported["bytes"].as_u64(), Some(size), "{exported}");
    assert_eq!(exported["file"], file_arg);
    let entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("archive folder")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(entries, ["alice-one.tar.zst"], "no temporary file left");
    let archive = std::fs::read(&file).expect("read the archive");
    assert_eq!(&archive[..4], b"\x28\xb5\x2f\xfd", "a zstd frame");

    // To stdout: the archive there, the summary on stderr.
    let r = dolly(url, &["export", "shop", "alice@one", "-"]).await;
    r.ok();
    assert!(r.stdout.len() > 1000 && r.stdout.starts_with(b"\x28\xb5\x2f\xfd"));
    assert!(
        r.stderr.starts_with("exported shop/alice@one to stdout ("),
        "{r:#?}"
    );

    // A missing snapshot or instance: exit 3, and no file.
    let nothing = dir.join("nothing.tar.zst");
    dolly(
        url,
        &["export", "shop", "alice@nope", nothing.to_str().unwrap()],
    )
    .await
    .fails(3, "does not exist");
    assert!(!nothing.exists());

    // import under another name: the row is there, with its own password.
    let bob = dolly(
        url,
        &["import", file_arg, "shop", "bob", "--ttl", "30m", "--json"],
    )
    .await
    .ok()
    .json();
    assert_eq!(bob["template"], "shop");
    assert_eq!(bob["name"], "bob");
    assert!(bob["port"].as_u64().unwrap_or(0) > 0, "{bob}");
    assert!(!bob["expires_at"].is_null(), "{bob}");
    assert_eq!(added(url, "shop", "bob").await, ["travels"]);
    let shown = dolly(url, &["show", "shop", "bob", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(shown["state"], "running");

    // The same name again: exit 4.
    dolly(url, &["import", file_arg, "shop", "bob"])
        .await
        .fails(4, "already exists");

    // A truncated archive: refused with the server's reason (exit 1), from
    // a file and from stdin; nothing is left behind.
    let truncated = dir.join("truncated.tar.zst");
    std::fs::write(&truncated, &archive[..archive.len() / 2]).expect("write");
    dolly(
        url,
        &["import", truncated.to_str().unwrap(), "shop", "carl"],
    )
    .await
    .fails(1, "damaged");
    dolly_with(
        url,
        &["import", "-", "shop", "carl"],
        Some(&archive[..archive.len() / 3]),
    )
    .await
    .fails(1, "damaged");
    dolly(url, &["show", "shop", "carl"])
        .await
        .fails(3, "does not exist");

    dolly(url, &["rm", "shop", "alice", "bob"]).await.ok();
    let _ = std::fs::remove_dir_all(&dir);
}
