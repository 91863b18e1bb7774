//! The `dolly` CLI's lifecycle verbs end to end: the real binary against a
//! real dollyd (the test harness's, in-process) and the real engine. It
//! follows cli/README.md's "Saving and sharing states": write a row,
//! snapshot, write another, restore and see only the first, branch with
//! `--from`, promote and clone, reset, stop/start on the same port, extend,
//! protect, snapshot rm, df. Three instances in all, at most two at once.

use crate::common;

use common::TestApp;
use serde_json::Value;

use common::cli::{added, dolly, dolly_bin, time};

async fn insert(url: &str, t: &str, n: &str, name: &str) {
    let sql =
        format!("INSERT INTO customers (name, email) VALUES ('{name}', '{name}@example.com')");
    dolly(url, &["shell", "--no-create", t, n, "-e", &sql])
        .await
        .ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_of_the_lifecycle_verbs_need_no_server() {
    let nowhere = "http://127.0.0.1:1";
    for args in [
        &["snapshot", "shop", "alice"][..],
        &["snapshot", "shop", "alice", "Bad"],
        &["snapshot", "del", "shop", "alice", "x"],
        &["snapshot", "rm", "shop", "alice", "x", "-m", "why"],
        &["new", "shop", "bob", "--from", "alice"],
        &["new", "shop", "bob", "--from", "alice@../x"],
        &["promote", "shop", "alice", "shop-bug"],
        &["reset", "shop", "alice", "--latest", "--to", "x"],
        &["extend", "shop", "alice", "soon"],
        &["extend", "shop", "alice"],
        &["restore", "shop", "alice"],
    ] {
        let r = dolly(nowhere, args).await;
        assert_eq!(r.code, 2, "dolly {args:?}: {r:#?}");
        assert!(!r.stderr.contains("cannot reach"), "{r:#?}");
    }
    let help = dolly(nowhere, &["--help"]).await;
    for verb in [
        "extend",
        "protect",
        "unprotect",
        "stop",
        "start",
        "reset",
        "snapshot",
        "snapshots",
        "restore",
        "promote",
        "df",
    ] {
        assert!(help.ok().stdout.contains(verb), "{verb}: {help:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saving_and_sharing_states_through_the_cli() {
    dolly_bin();
    let app = TestApp::spawn().await;
    app.write_dump("shop.sql", &common::shop_dump());
    app.update_ok(&[]).await;
    let url = app.url.clone();
    let url = url.as_str();

    // new, then a first row.
    let alice = dolly(url, &["new", "shop", "alice", "--ttl", "1h", "--json"])
        .await
        .ok()
        .json();
    let port = alice["port"].as_u64().expect("port");
    let password = alice["password"].as_str().expect("password").to_owned();
    assert_eq!(alice["protected"], false);
    insert(url, "shop", "alice", "first").await;
    assert_eq!(added(url, "shop", "alice").await, ["first"]);

    // snapshot, with a message; the name is then taken (exit 4).
    let r = dolly(
        url,
        &[
            "snapshot",
            "shop",
            "alice",
            "one",
            "-m",
            "one customer added",
        ],
    )
    .await;
    assert!(
        r.ok().stdout.starts_with("saved shop/alice@one ("),
        "{r:#?}"
    );
    dolly(url, &["snapshot", "shop", "alice", "one"])
        .await
        .fails(4, "already exists");
    dolly(url, &["snapshot", "shop", "ghost", "one"])
        .await
        .fails(3, "does not exist");

    // Another row, then restore: exactly the first comes back, on the same
    // port with the same password.
    insert(url, "shop", "alice", "second").await;
    assert_eq!(added(url, "shop", "alice").await, ["first", "second"]);
    let r = dolly(url, &["restore", "shop", "alice", "one"]).await;
    r.ok();
    assert!(r.stdout.contains(&format!("port       {port}\n")), "{r:#?}");
    assert!(
        r.stdout.contains(&format!("password   {password}\n")),
        "{r:#?}"
    );
    assert_eq!(added(url, "shop", "alice").await, ["first"]);
    dolly(url, &["restore", "shop", "alice", "nope"])
        .await
        .fails(3, "snapshot 'shop/alice@nope' does not exist");

    // snapshots: the table and the API's JSON.
    let r = dolly(url, &["snapshots", "shop", "alice"]).await;
    r.ok();
    assert!(r.stdout.starts_with("NAME  CREATED"), "{r:#?}");
    let row = r.stdout.lines().nth(1).unwrap_or_default();
    assert!(
        row.starts_with("one ") && row.ends_with("one customer added"),
        "{r:#?}"
    );
    assert!(row.contains("ago") || row.contains("just now"), "{r:#?}");
    let listed = dolly(url, &["snapshots", "shop", "alice", "--json"])
        .await
        .ok()
        .json();
    let snaps = listed["snapshots"].as_array().expect("snapshots");
    assert_eq!(snaps.len(), 1, "{listed}");
    assert_eq!(snaps[0]["name"], "one");
    assert_eq!(snaps[0]["message"], "one customer added");
    assert!(snaps[0]["size_bytes"].as_u64().unwrap_or(0) > 0, "{listed}");
    assert_eq!(snaps[0]["template_version"], alice["template_version"]);
    assert_eq!(
        dolly(url, &["snapshots", "-q", "shop", "alice"])
            .await
            .ok()
            .stdout,
        "one\n"
    );

    // A branch from the snapshot: the same data, its own port and password.
    let bob = dolly(
        url,
        &["new", "shop", "bob", "--from", "alice@one", "--json"],
    )
    .await
    .ok()
    .json();
    assert_ne!(bob["port"].as_u64(), Some(port));
    assert_ne!(bob["password"].as_str(), Some(password.as_str()));
    assert_eq!(added(url, "shop", "bob").await, ["first"]);
    dolly(url, &["new", "shop", "carl", "--from", "alice@nope"])
        .await
        .fails(3, "does not exist");
    dolly(url, &["rm", "shop", "bob"]).await.ok();

    // promote, then clone the new template.
    let r = dolly(url, &["promote", "shop", "alice@one", "shop-one"]).await;
    assert!(
        r.ok()
            .stdout
            .starts_with("promoted shop/alice@one as template shop-one, version "),
        "{r:#?}"
    );
    let templates = dolly(url, &["templates", "-q"]).await.ok().stdout.clone();
    assert_eq!(templates, "shop\nshop-one\n");
    let carol = dolly(url, &["new", "shop-one", "carol", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(carol["template"], "shop-one");
    assert_eq!(added(url, "shop-one", "carol").await, ["first"]);
    dolly(url, &["rm", "shop-one", "carol"]).await.ok();

    // reset: to the template's data, to a snapshot, to the latest version;
    // the port and password stay.
    let r = dolly(url, &["reset", "shop", "alice"]).await;
    assert!(
        r.ok().stdout.contains(&format!("port       {port}\n")),
        "{r:#?}"
    );
    assert!(added(url, "shop", "alice").await.is_empty());
    let reset = dolly(url, &["reset", "shop", "alice", "--to", "one", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(reset["port"].as_u64(), Some(port));
    assert_eq!(reset["password"].as_str(), Some(password.as_str()));
    assert_eq!(added(url, "shop", "alice").await, ["first"]);
    dolly(url, &["reset", "shop", "alice", "--latest", "-q"])
        .await
        .ok();
    assert!(added(url, "shop", "alice").await.is_empty());

    // stop / start: same port and password.
    let r = dolly(url, &["stop", "shop", "alice"]).await;
    assert!(r.ok().stdout.starts_with("stopped shop/alice"), "{r:#?}");
    let shown = dolly(url, &["show", "shop", "alice", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(shown["state"], "stopped");
    let r = dolly(url, &["start", "shop", "alice"]).await;
    r.ok();
    assert!(r.stdout.contains("state      running\n"), "{r:#?}");
    assert!(r.stdout.contains(&format!("port       {port}\n")), "{r:#?}");
    assert!(
        r.stdout.contains(&format!("password   {password}\n")),
        "{r:#?}"
    );
    let r = dolly(
        url,
        &["shell", "shop", "alice", "-N", "-B", "-e", "SELECT 41 + 1"],
    )
    .await;
    assert_eq!(r.ok().stdout, "42\n");

    // extend: adds to the expiry; none removes it.
    let before = time(&alice["expires_at"]);
    let extended = dolly(url, &["extend", "shop", "alice", "1h", "--json"])
        .await
        .ok()
        .json();
    let added_secs = (time(&extended["expires_at"]) - before).num_seconds();
    assert!((3595..=3605).contains(&added_secs), "{extended}");
    let r = dolly(url, &["extend", "shop", "alice", "30m"]).await;
    assert!(
        r.ok().stdout.starts_with("shop/alice expires in 2h"),
        "{r:#?}"
    );
    let forever = dolly(url, &["extend", "shop", "alice", "none", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(forever["expires_at"], Value::Null, "{forever}");
    let r = dolly(url, &["show", "shop", "alice"]).await;
    assert!(r.ok().stdout.contains("expires    never\n"), "{r:#?}");

    // snapshot rm; then it is gone (exit 3).
    let r = dolly(url, &["snapshot", "rm", "shop", "alice", "one"]).await;
    assert_eq!(r.ok().stdout, "removed snapshot shop/alice@one\n");
    dolly(url, &["snapshot", "rm", "shop", "alice", "one"])
        .await
        .fails(3, "snapshot 'shop/alice@one' does not exist");
    let r = dolly(url, &["snapshots", "shop", "alice"]).await;
    assert_eq!(r.ok().stdout, "");
    assert!(r.stderr.contains("no snapshots"), "{r:#?}");
    dolly(url, &["snapshot", "shop", "alice", "two"]).await.ok();

    // df: apparent sizes, labelled so, and the API's JSON.
    let r = dolly(url, &["df"]).await;
    r.ok();
    assert!(
        r.stdout.starts_with("KIND") && r.stdout.contains("APPARENT SIZE"),
        "{r:#?}"
    );
    for needle in ["shop/alice\n", "shop/alice@two", "shop-one@", "filesystem"] {
        assert!(
            r.stdout.contains(needle) || r.stdout.contains(needle.trim_end()),
            "{needle}: {r:#?}"
        );
    }
    let df = dolly(url, &["df", "--json"]).await.ok().json();
    let entries = df["entries"].as_array().expect("entries");
    assert!(
        entries
            .iter()
            .any(|e| e["kind"] == "instance" && e["name"] == "shop/alice"),
        "{df}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["kind"] == "snapshot" && e["name"] == "shop/alice@two"),
        "{df}"
    );
    assert!(
        df["filesystem_total_bytes"].as_u64().unwrap_or(0) > 0,
        "{df}"
    );

    // protect: shown, refused by rm (exit 1, the server's reason), removed
    // with --force.
    let r = dolly(url, &["protect", "shop", "alice"]).await;
    assert_eq!(r.ok().stdout, "protected shop/alice\n");
    let r = dolly(url, &["show", "shop", "alice"]).await;
    assert!(r.ok().stdout.contains("protected  yes\n"), "{r:#?}");
    dolly(url, &["rm", "shop", "alice"])
        .await
        .fails(1, "instance 'shop/alice' is protected");
    dolly(url, &["unprotect", "shop", "alice", "--json"])
        .await
        .ok();
    let shown = dolly(url, &["show", "shop", "alice", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(shown["protected"], false);
    dolly(url, &["protect", "shop", "alice", "-q"]).await.ok();
    let r = dolly(url, &["rm", "--force", "shop", "alice"]).await;
    assert_eq!(r.ok().stdout, "removed shop/alice\n");
    dolly(url, &["show", "shop", "alice"])
        .await
        .fails(3, "does not exist");
    assert_eq!(dolly(url, &["ls", "-q"]).await.ok().stdout, "");
}
