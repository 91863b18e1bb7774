//! `dolly export` and `dolly import` end to end: the real binary against a
//! real dollyd (the test harness's, in-process) and the real engine. It
//! follows cli/README.md's "Moving a state to another server": a row
//! written, a snapshot exported to a file, imported under another name and
//! the row seen there; then a taken name (exit 4), a truncated archive
//! (exit 1, from a file and from stdin), a missing snapshot (exit 3). Two
//! instances at once.

use crate::common;

use common::TestApp;

use common::cli::{added, dolly, dolly_bin, dolly_run};

async fn dolly_with(url: &str, args: &[&str], stdin: Option<&[u8]>) -> common::cli::Run {
    dolly_run(url, args, &[], stdin).await
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
        assert!(
            help.ok().stdout.clone().contains(needle),
            "{needle}: {help:#?}"
        );
    }
    let help = dolly(nowhere, &["import", "--help"]).await;
    assert!(help.ok().stdout.clone().contains("exit 4"), "{help:#?}");
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
            .stdout
            .clone()
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
    assert!(r.stdout_bytes.len() > 1000 && r.stdout_bytes.starts_with(b"\x28\xb5\x2f\xfd"));
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
