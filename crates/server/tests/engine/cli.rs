//! The `dolly` CLI end to end: the real binary against a real dollyd (the
//! test harness's, in-process) and the real engine, and against no server,
//! a server that is not dollyd, and bad command lines.

use crate::common;

use common::TestApp;

use common::cli::{bash, dolly, dolly_bin, dolly_run, time};

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_help_and_completions_need_no_server() {
    let nowhere = format!("http://127.0.0.1:{}", closed_port());

    // Usage errors: exit 2, before any request.
    for args in [
        &["frobnicate"][..],
        &["new", "shop"],
        &["new", "Shop", "x"],
        &["show", "shop", "../etc"],
        &["new", "shop", "x", "--ttl", "soon"],
        &["new", "shop", "x", "--ttl", "-1"],
        &["rm", "shop"],
        &["env", "shop", "x", "--ttl", "1h", "--no-create"],
        &["completions", "tcsh"],
        &[],
    ] {
        let r = dolly(&nowhere, args).await;
        assert_eq!(r.code, 2, "dolly {args:?}: {r:#?}");
        assert!(!r.stderr.contains("cannot reach"), "{r:#?}");
    }

    // --help documents the exit codes and the CI recipe.
    let help = dolly(&nowhere, &["--help"]).await;
    help.ok();
    for needle in [
        "Exit codes:",
        "3  not found",
        "4  already exists",
        "DOLLY_URL",
        "DOLLY_TOKEN",
        "eval \"$(dolly env shop ci-$JOB --ttl 1h)\"",
    ] {
        assert!(help.stdout.contains(needle), "{needle}: {help:#?}");
    }
    for command in [
        "new",
        "create",
        "show",
        "info",
        "shell",
        "rm",
        "ls",
        "templates",
        "container",
        "url",
        "env",
        "completions",
    ] {
        assert!(help.stdout.contains(command), "{command}: {help:#?}");
    }
    dolly(&nowhere, &["--version"]).await.ok();

    // Completions for every shell the issue names; bash loads its own.
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef dolly"),
        ("fish", "complete -c dolly"),
    ] {
        let r = dolly(&nowhere, &["completions", shell]).await;
        r.ok();
        assert!(r.stdout.contains(marker), "{shell}: {}", r.stdout);
        assert!(r.stdout.contains("templates"), "{shell} knows the commands");
    }
    let bin = dolly_bin().display().to_string();
    bash(
        r#"source <("$DOLLY" completions bash) && complete -p dolly"#,
        &[("DOLLY", &bin)],
    )
    .await
    .ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_or_foreign_servers_are_plain_errors() {
    // Nothing listening: exit 1, one sentence naming the URL and DOLLY_URL.
    let nowhere = format!("http://127.0.0.1:{}", closed_port());
    for args in [
        &["ls"][..],
        &["templates"],
        &["new", "shop", "x"],
        &["env", "shop", "x"],
    ] {
        let r = dolly(&nowhere, args).await;
        r.fails_in_one_line(
            1,
            &format!("cannot reach dollyd at {nowhere}: connection refused (set DOLLY_URL)"),
        );
        assert_eq!(r.stdout, "", "nothing on stdout");
    }
    // --url wins over DOLLY_URL.
    dolly("http://127.0.0.1:1", &["--url", &nowhere, "ls"])
        .await
        .fails_in_one_line(1, &nowhere);
    // A URL we cannot use (https is tested in tests/engine/tls.rs).
    dolly("ftp://dolly.example", &["ls"])
        .await
        .fails_in_one_line(1, "the scheme must be http or https");

    // Something that answers, but is not dollyd: exit 1, and the token was
    // sent as a bearer token.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut s, _) = listener.accept().await.expect("accept");
        let mut buf = vec![0u8; 8192];
        let mut request = Vec::new();
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
        }
        s.write_all(
            b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: 14\r\nConnection: close\r\n\r\n<html>oops</a>",
        )
        .await
        .expect("write");
        String::from_utf8_lossy(&request).into_owned()
    });
    dolly_run(&url, &["ls"], &[("DOLLY_TOKEN", "s3cret-token")], None)
        .await
        .fails_in_one_line(1, "not dolly's API");
    let request = server.await.expect("fake server");
    assert!(
        request.starts_with("GET /api/v1/instances HTTP/1.1"),
        "{request}"
    );
    assert!(
        request
            .to_ascii_lowercase()
            .contains("authorization: bearer s3cret-token"),
        "{request}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_against_a_real_dollyd() {
    dolly_bin();
    let app = TestApp::spawn().await;
    app.write_dump("shop.sql", &common::shop_dump());
    app.update_ok(&[]).await;
    let url = app.url.clone();
    let bin = dolly_bin().display().to_string();

    // templates: table, names, JSON, one template's versions, not found.
    let r = dolly(&url, &["templates"]).await;
    r.ok();
    let header = r.stdout.lines().next().unwrap_or_default();
    assert!(header.starts_with("NAME"), "{r:#?}");
    let row = r.stdout.lines().nth(1).unwrap_or_default();
    assert!(row.starts_with("shop ") && row.ends_with("ok"), "{r:#?}");
    assert!(row.contains("just now") || row.contains("ago"), "{r:#?}");
    assert_eq!(
        dolly(&url, &["templates", "-q"]).await.ok().stdout,
        "shop\n"
    );
    let list = dolly(&url, &["templates", "--json"]).await.ok().json();
    assert_eq!(list["templates"][0]["name"], "shop");
    let version = list["templates"][0]["current_version"]
        .as_str()
        .expect("a current version")
        .to_owned();
    let r = dolly(&url, &["templates", "shop"]).await;
    assert!(r.ok().stdout.contains(&version), "{r:#?}");
    dolly(&url, &["templates", "nope"])
        .await
        .fails_in_one_line(3, "template 'nope' does not exist (known: shop)");

    // ls with nothing yet.
    assert_eq!(dolly(&url, &["ls"]).await.ok().stdout, "");
    let empty = dolly(&url, &["ls", "--json"]).await.ok().json();
    assert_eq!(empty["instances"], serde_json::json!([]));
    dolly(&url, &["ls", "nope"])
        .await
        .fails_in_one_line(3, "template 'nope' does not exist");

    // new: JSON is the API's Instance, with the TTL applied; no spinner or
    // note in a pipe.
    let r = dolly(&url, &["new", "shop", "alice", "--ttl", "2h", "--json"]).await;
    r.ok();
    assert_eq!(r.stderr, "", "nothing on stderr in a pipe");
    let alice = r.json();
    assert_eq!(alice["template"], "shop");
    assert_eq!(alice["name"], "alice");
    assert_eq!(alice["state"], "running");
    assert_eq!(alice["template_version"], version.as_str());
    assert!(alice["port"].as_u64().unwrap_or(0) > 0, "{alice}");
    let ttl = time(&alice["expires_at"]) - time(&alice["created_at"]);
    assert!((7195..=7205).contains(&ttl.num_seconds()), "ttl {ttl}");
    let password = alice["password"].as_str().expect("password").to_owned();

    // new on an existing name: 4; on a missing template: 3, with the
    // server's list of templates.
    dolly(&url, &["new", "shop", "alice"])
        .await
        .fails_in_one_line(4, "instance 'shop/alice' already exists");
    dolly(&url, &["create", "nope", "x"])
        .await
        .fails_in_one_line(3, "template 'nope' does not exist (known: shop)");

    // show / info: the key/value block, JSON, not found.
    let r = dolly(&url, &["show", "shop", "alice"]).await;
    r.ok();
    for needle in [
        "template   shop\n",
        "name       alice\n",
        "state      running\n",
        &format!("version    {version}\n"),
        "host       127.0.0.1\n",
        &format!("port       {}\n", alice["port"]),
        "user       root\n",
        &format!("password   {password}\n"),
        "database   ",
        "created    just now (",
        "expires    in 2h (",
        "protected  no\n",
    ] {
        assert!(r.stdout.contains(needle), "{needle:?} in {r:#?}");
    }
    assert!(r.stdout.lines().all(|l| l.len() <= 80), "{r:#?}");
    let shown = dolly(&url, &["info", "shop", "alice", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(shown["password"], password.as_str());
    assert_eq!(shown["port"], alice["port"]);
    dolly(&url, &["show", "shop", "ghost"])
        .await
        .fails_in_one_line(3, "instance 'shop/ghost' does not exist");

    // url: one line; --no-create keeps a missing instance missing.
    let r = dolly(&url, &["url", "shop", "alice"]).await;
    let database = alice["database"].as_str().expect("database");
    assert_eq!(
        r.ok().stdout,
        format!(
            "mysql://root:{password}@127.0.0.1:{}/{database}\n",
            alice["port"]
        )
    );
    dolly(&url, &["url", "shop", "ghost", "--no-create"])
        .await
        .fails_in_one_line(3, "instance 'shop/ghost' does not exist");
    dolly(&url, &["env", "--no-create", "shop", "ghost"])
        .await
        .fails_in_one_line(3, "does not exist");

    // The CI recipe: eval "$(dolly env ...)" creates the instance, then a
    // real query through the mariadb client with the exported variables.
    let ci = bash(
        r#"set -euo pipefail
        dolly() { "$DOLLY" "$@"; }
        eval "$(dolly env shop ci-1 --ttl 1h)"
        MYSQL_PWD="$MYSQL_PASSWORD" mariadb --protocol=TCP -h "$MYSQL_HOST" -P "$MYSQL_PORT" \
            -u "$MYSQL_USER" -N -B -e "SELECT name FROM customers WHERE id = 3" "$MYSQL_DATABASE"
        echo "$DATABASE_URL""#,
        &[("DOLLY", &bin), ("DOLLY_URL", &url)],
    )
    .await;
    ci.ok();
    let lines: Vec<&str> = ci.stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"O'Brien"), "{ci:#?}");
    assert!(
        lines.get(1).is_some_and(|u| u.starts_with("mysql://root:")),
        "{ci:#?}"
    );
    assert!(ci.stderr.contains("created shop/ci-1"), "{ci:#?}");
    let ci1 = dolly(&url, &["show", "shop", "ci-1", "--json"])
        .await
        .ok()
        .json();
    let ttl = time(&ci1["expires_at"]) - time(&ci1["created_at"]);
    assert!((3595..=3605).contains(&ttl.num_seconds()), "ttl {ttl}");
    // A second `env` reuses it: same credentials, a note that --ttl did
    // nothing, and the output is still safe to eval.
    let again = dolly(&url, &["env", "shop", "ci-1", "--ttl", "5m"]).await;
    again.ok();
    assert!(again.stderr.contains("already exists"), "{again:#?}");
    let ci1_password = ci1["password"].as_str().expect("password");
    assert!(
        again
            .stdout
            .contains(&format!("export MYSQL_PASSWORD='{ci1_password}'\n")),
        "{again:#?}"
    );
    assert_eq!(again.stdout.lines().count(), 6, "{again:#?}");
    for var in [
        "MYSQL_HOST",
        "MYSQL_PORT",
        "MYSQL_USER",
        "MYSQL_PASSWORD",
        "MYSQL_DATABASE",
        "DATABASE_URL",
    ] {
        assert!(
            again.stdout.contains(&format!("export {var}='")),
            "{var}: {again:#?}"
        );
    }

    // shell: the real client, arguments passed through, with and without --.
    let r = dolly(&url, &["shell", "shop", "ci-1", "-e", "select 1"]).await;
    assert!(r.ok().stdout.contains('1'), "{r:#?}");
    let r = dolly(
        &url,
        &[
            "shell",
            "shop",
            "ci-1",
            "--",
            "-N",
            "-B",
            "-e",
            "SELECT COUNT(*) FROM customers",
        ],
    )
    .await;
    assert_eq!(r.ok().stdout, "3\n", "{r:#?}");
    // The client's exit code passes through.
    let r = dolly(&url, &["shell", "shop", "ci-1", "-e", "select nope"]).await;
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(r.stderr.contains("nope"), "{r:#?}");

    // shell hands the password over in MYSQL_PWD, never as an argument.
    let fake = tempfile::tempdir().expect("temp dir");
    let fake_client = fake.path().join("mariadb");
    std::fs::write(
        &fake_client,
        "#!/bin/sh\nprintf 'args=%s\\n' \"$*\"\nprintf 'pwd=%s\\n' \"$MYSQL_PWD\"\n",
    )
    .expect("fake client");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake_client, std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }
    let path = format!("{}:/usr/bin:/bin", fake.path().display());
    let r = dolly_run(
        &url,
        &["shell", "shop", "ci-1", "-e", "select 1"],
        &[("PATH", &path)],
        None,
    )
    .await;
    r.ok();
    assert!(
        r.stdout.contains(&format!("pwd={ci1_password}\n")),
        "{r:#?}"
    );
    let args_line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("args="))
        .unwrap_or_default();
    assert!(!args_line.contains(ci1_password), "{r:#?}");
    assert!(args_line.contains("--protocol=TCP"), "{r:#?}");
    assert!(args_line.ends_with("-e select 1"), "{r:#?}");
    // No client at all: a clear message, exit 1.
    let empty = tempfile::tempdir().expect("temp dir");
    dolly_run(
        &url,
        &["shell", "shop", "ci-1"],
        &[("PATH", &empty.path().display().to_string())],
        None,
    )
    .await
    .fails_in_one_line(1, "no MySQL client found: install `mariadb`");

    // ls: table, names, JSON, one template.
    let r = dolly(&url, &["ls"]).await;
    r.ok();
    assert!(r.stdout.starts_with("TEMPLATE  NAME"), "{r:#?}");
    assert!(r.stdout.contains("shop      alice  running"), "{r:#?}");
    assert!(r.stdout.contains("in 2h"), "{r:#?}");
    assert!(r.stdout.lines().all(|l| l.len() <= 80), "{r:#?}");
    assert_eq!(
        dolly(&url, &["list", "-q"]).await.ok().stdout,
        "shop alice\nshop ci-1\n"
    );
    let listed = dolly(&url, &["ls", "shop", "--json"]).await.ok().json();
    let names: Vec<&str> = listed["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert_eq!(names, ["alice", "ci-1"]);
    assert!(listed["instances"][0].get("password").is_none());

    // container: the engine's inspection, as JSON either way.
    let c = dolly(&url, &["container", "shop", "alice"])
        .await
        .ok()
        .json();
    assert!(c["Id"].is_string(), "{c}");
    assert_eq!(c["State"]["Running"], true, "{c}");
    assert_eq!(
        dolly(&url, &["container", "shop", "alice", "--json"])
            .await
            .ok()
            .json()["Id"],
        c["Id"]
    );
    dolly(&url, &["container", "shop", "ghost"])
        .await
        .fails_in_one_line(3, "does not exist");

    // rm: several names; missing ones are 3 unless --force.
    let r = dolly(&url, &["rm", "shop", "alice", "ci-1"]).await;
    assert_eq!(r.ok().stdout, "removed shop/alice\nremoved shop/ci-1\n");
    dolly(&url, &["rm", "shop", "alice"])
        .await
        .fails_in_one_line(3, "instance 'shop/alice' does not exist");
    let r = dolly(&url, &["rm", "shop", "alice", "bob"]).await;
    assert_eq!(r.code, 3, "{r:#?}");
    assert!(r.stderr.contains("2 of 2 removals failed"), "{r:#?}");
    let r = dolly(&url, &["rm", "-f", "shop", "alice"]).await;
    assert_eq!(r.ok().stdout, "");
    assert_eq!(dolly(&url, &["ls", "-q"]).await.ok().stdout, "");
    assert!(app
        .containers()
        .await
        .iter()
        .all(|c| !c.name.contains("alice")));
}
