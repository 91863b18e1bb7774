//! CI pipelines against a real dollyd and the real engine: the CLI served
//! by dollyd byte for byte, the GitHub action and README's workflow run
//! step by step (GITHUB_ENV, GITHUB_OUTPUT, masks, a stubbed `gh`), the
//! GitLab template's jobs and README's project job (dotenv, a stubbed
//! GitLab API for the note), reuse, a failing create and the cleanup.

use crate::common;
mod runner;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use common::cli::{dolly_bin, dolly_run};
use common::{shop_dump, TestApp};
use dolly_core::config::Settings;
use runner::{yaml, GitHub, GitLab};
use sha2::{Digest, Sha256};

const TOKEN: &str = "ci-test-token";

/// The migration both pipelines run: a column and an index.
const MIGRATION: &str =
    "ALTER TABLE customers ADD COLUMN phone varchar(30) NULL AFTER email, ADD KEY k_phone (phone);\n";

/// A dollyd with a token (the /cli routes must answer without it), the
/// CLI at `cli_path`, and the shop template.
async fn app() -> TestApp {
    let app = TestApp::spawn_with(|s| {
        s.auth_token = Settings::from_lookup(|k| (k == "auth_token").then(|| TOKEN.to_owned()))
            .expect("settings")
            .auth_token;
        s.cli_path = Some(dolly_bin().to_path_buf());
    })
    .await;
    app.write_dump("shop.sql", &shop_dump());
    app.update_ok(&[]).await;
    app
}

/// The fenced block after `<!-- test: NAME -->` in README.md.
fn readme_block(name: &str) -> String {
    let readme = std::fs::read_to_string(runner::repo().join("README.md")).expect("README");
    let marker = format!("<!-- test: {name} -->\n```yaml\n");
    let start = readme.find(&marker).expect("README block") + marker.len();
    let end = readme[start..].find("\n```\n").expect("block end");
    readme[start..start + end + 1].to_owned()
}

/// `dolly` with the token, as a person would run it.
async fn dolly(url: &str, args: &[&str]) -> common::cli::Run {
    dolly_run(url, args, &[("DOLLY_TOKEN", TOKEN)], None).await
}

/// A project checkout: the migration, and a `run-tests` that checks the
/// job's variables reach a database with the migrated schema.
fn checkout(dir: &std::path::Path) {
    std::fs::create_dir_all(dir.join("migrations")).expect("migrations");
    std::fs::write(dir.join("migrations/001_phone.sql"), MIGRATION).expect("migration");
    let tests = dir.join("run-tests");
    std::fs::write(
        &tests,
        "#!/bin/sh\nset -eu\ncase \"$DATABASE_URL\" in mysql://*) ;; *) echo no DATABASE_URL; exit 1;; esac\n\
         MYSQL_PWD=\"$MYSQL_PASSWORD\" mysql --protocol=TCP -h \"$MYSQL_HOST\" -P \"$MYSQL_PORT\" -u \"$MYSQL_USER\" -N -B \"$MYSQL_DATABASE\" \
         -e 'SELECT COUNT(phone) FROM customers' > /dev/null\necho tests passed against \"$DOLLY_NAME\"\n",
    )
    .expect("run-tests");
    chmod_x(&tests);
}

fn chmod_x(p: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// A `gh` that records its arguments and the body file it was given.
fn fake_gh(dir: &std::path::Path) -> std::path::PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let gh = bin.join("gh");
    std::fs::write(
        &gh,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > {args}\nwhile [ $# -gt 0 ]; do [ \"$1\" = --body-file ] && cp \"$2\" {body}; shift; done\n",
            args = dir.join("gh.args").display(),
            body = dir.join("gh.body").display()
        ),
    )
    .expect("gh");
    chmod_x(&gh);
    bin
}

fn expires(v: &serde_json::Value) -> DateTime<Utc> {
    common::cli::time(&v["expires_at"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_download_and_the_github_action_and_workflow() {
    let app = app().await;
    let url = app.url.clone();

    // The CLI, byte for byte, without a token; its checksum as sha256sum
    // writes it; every answer says dollyd's version.
    let built = std::fs::read(dolly_bin()).expect("the built dolly");
    let r = app.get("/cli/dolly").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-dolly-version"].to_str().unwrap(),
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/octet-stream"
    );
    let served = r.bytes().await.expect("body");
    assert!(served == built, "the served CLI differs from the built one");
    let sum = app.get("/cli/dolly.sha256").await;
    assert_eq!(sum.status(), 200);
    assert_eq!(
        sum.text().await.unwrap(),
        format!("{:x}  dolly\n", Sha256::digest(&built))
    );
    // Everything else still needs the token.
    assert_eq!(app.get("/api/v1/instances").await.status(), 401);
    // HEAD answers as GET does (curl -I).
    let (status, _) = app.raw("HEAD", "/cli/dolly").await;
    assert_eq!(status, 200);

    // Reuse: pr-7 exists already, with a short lease.
    dolly(&url, &["new", "shop", "pr-7", "--ttl", "10m"])
        .await
        .ok();
    let before = dolly(&url, &["--json", "show", "shop", "pr-7"])
        .await
        .json();

    // README's workflow, step by step, on pull request 7.
    let workflow = yaml(&readme_block("github-workflow"));
    let mut job = GitHub::new(&[
        ("GITHUB_EVENT_NAME", "pull_request"),
        ("GITHUB_REF", "refs/pull/7/merge"),
        ("GITHUB_HEAD_REF", "feature/phone"),
        ("GITHUB_JOB", "test"),
        ("GITHUB_RUN_ID", "1001"),
    ]);
    job.vars.insert("DOLLY_URL".into(), url.clone());
    job.secrets.insert("DOLLY_TOKEN".into(), TOKEN.into());
    checkout(&job.workspace);
    let stubs = job.temp.join("stubs");
    let bin = fake_gh(&stubs);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    job.env.insert("PATH".into(), path.clone());
    let (steps, ok) = job.run_job(&workflow, "test").await;
    assert!(ok, "the workflow failed:\n{}", job.log);

    // The database: reused (same port and password), lease renewed to 2h.
    let db = &steps["db"];
    assert_eq!(db["name"], "pr-7");
    assert_eq!(db["port"], before["port"].as_u64().unwrap().to_string());
    assert_eq!(db["password"], before["password"].as_str().unwrap());
    assert!(
        job.log.contains("dolly ci: named pr-7 (from GITHUB_REF)")
            && job.log.contains("dolly ci: shop/pr-7 reused"),
        "{}",
        job.log
    );
    assert!(
        job.log
            .contains("dolly ci: the lease of shop/pr-7 is renewed: it expires in "),
        "{}",
        job.log
    );
    assert!(db["database-url"].starts_with("mysql://root:"), "{db:?}");
    assert!(job.log.contains("tests passed against pr-7"), "{}", job.log);
    // The password and the URL were masked before anything else, and
    // appear nowhere but in the masks.
    assert!(job.masks.contains(&db["password"]) && job.masks.contains(&db["database-url"]));
    for line in job.log.lines().filter(|l| !l.starts_with("::add-mask::")) {
        assert!(!line.contains(&db["password"]), "unmasked: {line}");
    }

    // The comment: gh got the markdown of the real migration.
    let args = std::fs::read_to_string(stubs.join("gh.args")).expect("gh ran");
    assert_eq!(
        args.lines().collect::<Vec<_>>(),
        [
            "pr",
            "comment",
            "7",
            "--edit-last",
            "--create-if-none",
            "--body-file",
            &steps["diff"]["diff-file"]
        ]
    );
    let body = std::fs::read_to_string(stubs.join("gh.body")).expect("gh body");
    for needle in [
        "<!-- dolly-diff shop/pr-7 -->",
        "### dolly: 2 schema changes in `shop/pr-7`",
        "| + | column | `default.customers` | `phone` | added |",
        "| + | index | `default.customers` | `k_phone` | added |",
        "#### How each statement ran on a clone of the full data",
        "<details>\n<summary>The SQL that replays it",
        "```sql\n",
        "ADD COLUMN `phone` varchar(30)",
        "</details>",
    ] {
        assert!(body.contains(needle), "{needle:?} not in:\n{body}");
    }
    assert_eq!(steps["diff"]["diff"].trim_end(), body.trim_end());
    // docs/ci-diff-comment.md is this comment, from a run with this set.
    if let Some(path) = std::env::var_os("DOLLY_WRITE_DIFF_EXAMPLE") {
        std::fs::write(path, &body).expect("write the example");
    }
    assert!(job.summary().contains("<!-- dolly-diff shop/pr-7 -->"));

    // The cleanup step removed it; the lease had been renewed first.
    assert!(
        job.log.contains("dolly ci: removed shop/pr-7"),
        "{}",
        job.log
    );
    dolly(&url, &["show", "shop", "pr-7"])
        .await
        .fails(3, "does not exist");

    // A branch push, created this time (no pull request), with the lease
    // asked for; then a failing create (unknown template) that leaves an
    // annotation, and the always() cleanup that still succeeds.
    let mut push = GitHub::new(&[
        ("GITHUB_EVENT_NAME", "push"),
        ("GITHUB_REF", "refs/heads/Feature/Phone"),
        ("GITHUB_REF_NAME", "Feature/Phone"),
    ]);
    push.vars.insert("DOLLY_URL".into(), url.clone());
    push.secrets.insert("DOLLY_TOKEN".into(), TOKEN.into());
    let steps_yaml = |template: &str| {
        yaml(&format!(
            r#"
jobs:
  t:
    steps:
      - id: db
        uses: ./.github/actions/dolly
        with: {{ url: "${{{{ vars.DOLLY_URL }}}}", token: "${{{{ secrets.DOLLY_TOKEN }}}}", template: {template}, ttl: 3h }}
      - run: echo "after $MYSQL_PORT"
      - if: always()
        uses: ./.github/actions/dolly
        with: {{ url: "${{{{ vars.DOLLY_URL }}}}", token: "${{{{ secrets.DOLLY_TOKEN }}}}", template: {template}, command: down }}
"#
        ))
    };
    let (steps, ok) = push.run_job(&steps_yaml("shop"), "t").await;
    assert!(ok, "{}", push.log);
    assert_eq!(steps["db"]["name"], "branch-feature-phone");
    assert!(
        push.log
            .contains("dolly ci: shop/branch-feature-phone created"),
        "{}",
        push.log
    );
    assert!(
        push.log
            .contains("dolly ci: removed shop/branch-feature-phone"),
        "{}",
        push.log
    );
    let (_, ok) = push.run_job(&steps_yaml("nope"), "t").await;
    assert!(!ok, "a create of an unknown template must fail the job");
    assert!(
        push.log
            .contains("::error title=dolly ci::template 'nope' does not exist"),
        "{}",
        push.log
    );
    assert!(push.log.contains("[exit 3]"), "{}", push.log);
    assert!(
        push.log.contains("[skipped: if ]"),
        "the next step is skipped: {}",
        push.log
    );
    assert!(
        push.log
            .contains("dolly ci: nope/branch-feature-phone is already gone"),
        "{}",
        push.log
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gitlab_template_and_project_job() {
    let app = app().await;
    let url = app.url.clone();

    // A stand-in for GitLab's API: records the merge request note.
    let api = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let api_url = format!("http://{}/api/v4", api.local_addr().expect("addr"));
    let notes = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut s, _) = api.accept().await.expect("accept");
        let mut request = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            let n = s.read(&mut buf).await.expect("read");
            request.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&request).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if body.len() >= len || n == 0 {
                    break;
                }
            }
        }
        s.write_all(b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
            .await
            .expect("write");
        String::from_utf8_lossy(&request).into_owned()
    });

    let project = readme_block("gitlab-ci");
    let predefined = [
        ("CI_MERGE_REQUEST_IID", "9"),
        ("CI_COMMIT_REF_SLUG", "feature-phone"),
        ("CI_JOB_ID", "4242"),
        ("CI_PROJECT_ID", "77"),
        ("CI_API_V4_URL", api_url.as_str()),
        ("DOLLY_URL", url.as_str()),
        ("DOLLY_TOKEN", TOKEN),
        ("DOLLY_COMMENT_TOKEN", "glpat-fake"),
        ("DOLLY_EXPLAIN", "true"),
    ];
    let mut pipeline = GitLab::new("ci/gitlab/dolly.gitlab-ci.yml", &project, &predefined);
    assert_eq!(pipeline.stage("dolly"), ".pre");
    assert_eq!(pipeline.stage("dolly:post"), ".post");
    checkout(&pipeline.project_dir);

    // .pre: created, the dotenv report for the later jobs.
    let ran = pipeline.run_job("dolly").await.expect("dolly runs");
    assert_eq!(ran.code, 0, "{}", pipeline.log);
    assert!(
        ran.stderr
            .contains("dolly ci: named mr-9 (from CI_MERGE_REQUEST_IID)"),
        "{}",
        pipeline.log
    );
    assert!(
        ran.stderr.contains("dolly ci: shop/mr-9 created"),
        "{}",
        pipeline.log
    );
    let env = pipeline.dotenv.clone();
    let keys: Vec<&str> = env.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "DATABASE_URL",
            "DOLLY_NAME",
            "MYSQL_DATABASE",
            "MYSQL_HOST",
            "MYSQL_PASSWORD",
            "MYSQL_PORT",
            "MYSQL_USER"
        ]
    );
    assert_eq!(env["DOLLY_NAME"], "mr-9");
    assert!(
        !ran.stdout.contains(&env["MYSQL_PASSWORD"])
            && !ran.stderr.contains(&env["MYSQL_PASSWORD"])
    );
    let shown = dolly(&url, &["--json", "show", "shop", "mr-9"])
        .await
        .json();
    assert_eq!(
        env["MYSQL_PORT"],
        shown["port"].as_u64().unwrap().to_string()
    );
    let lease = expires(&shown) - Utc::now();
    assert!(lease > chrono::Duration::minutes(115), "ttl 2h: {lease}");

    // The job ran again (a retry): the same database.
    let again = pipeline.run_job("dolly").await.expect("dolly runs");
    assert_eq!(again.code, 0, "{}", pipeline.log);
    assert!(
        again.stderr.contains("dolly ci: shop/mr-9 reused"),
        "{}",
        pipeline.log
    );
    assert_eq!(pipeline.dotenv, env);

    // README's project job: migrations and tests with the variables.
    let test = pipeline.run_job("test").await.expect("test runs");
    assert_eq!(test.code, 0, "{}", pipeline.log);
    assert!(
        test.stdout.contains("tests passed against mr-9"),
        "{}",
        pipeline.log
    );

    // .post: the diff as markdown, an artifact and a note on the MR, then
    // the removal.
    let post = pipeline.run_job("dolly:post").await.expect("post runs");
    assert_eq!(post.code, 0, "{}", pipeline.log);
    let md = std::fs::read_to_string(pipeline.project_dir.join("dolly-diff.md")).expect("artifact");
    assert!(
        md.contains("| + | column | `default.customers` | `phone` | added |"),
        "{md}"
    );
    assert!(md.contains("#### How each statement ran"), "{md}");
    let request = notes.await.expect("the note");
    assert!(
        request.starts_with("POST /api/v4/projects/77/merge_requests/9/notes "),
        "{request}"
    );
    assert!(
        request
            .to_ascii_lowercase()
            .contains("private-token: glpat-fake"),
        "{request}"
    );
    let form = request.split_once("\r\n\r\n").expect("body").1;
    let fields: BTreeMap<String, String> = serde_urlencoded::from_str(form).expect("form");
    assert_eq!(fields["body"], md);
    assert!(
        post.stdout.contains("dolly - the diff is a note on !9"),
        "{}",
        pipeline.log
    );
    assert!(
        post.stderr.contains("dolly ci: removed shop/mr-9"),
        "{}",
        pipeline.log
    );
    dolly(&url, &["show", "shop", "mr-9"])
        .await
        .fails(3, "does not exist");

    // Again (a retried job): no diff of a removed instance, which fails the
    // job, but only after the cleanup ran (and found it gone).
    let post = pipeline.run_job("dolly:post").await.expect("post runs");
    assert_eq!(post.code, 1, "{}", pipeline.log);
    assert!(post.stdout.contains("no schema diff"), "{}", pipeline.log);
    assert!(post.stderr.contains("already gone"), "{}", pipeline.log);

    // DOLLY_KEEP keeps it; without DOLLY_DIFF there is no diff.
    pipeline.set("DOLLY_DIFF", "false");
    pipeline.set("DOLLY_KEEP", "true");
    pipeline.dotenv.clear();
    assert_eq!(pipeline.run_job("dolly").await.expect("dolly runs").code, 0);
    let post = pipeline.run_job("dolly:post").await.expect("post runs");
    assert_eq!(post.code, 0, "{}", pipeline.log);
    assert!(
        post.stdout.contains("dolly - kept shop/mr-9"),
        "{}",
        pipeline.log
    );
    assert!(!post.stdout.contains("schema"), "{}", pipeline.log);
    dolly(&url, &["show", "shop", "mr-9"]).await.ok();
    pipeline.set("DOLLY_KEEP", "false");
    let post = pipeline.run_job("dolly:post").await.expect("post runs");
    assert_eq!(post.code, 0, "{}", pipeline.log);
    assert!(
        post.stderr.contains("dolly ci: removed shop/mr-9"),
        "{}",
        pipeline.log
    );

    // A failing create: an unknown template is exit 3, with dollyd's reason.
    pipeline.set("DOLLY_TEMPLATE", "nope");
    pipeline.dotenv.clear();
    let failed = pipeline.run_job("dolly").await.expect("dolly runs");
    assert_eq!(failed.code, 3, "{}", pipeline.log);
    assert!(
        failed.stderr.contains("template 'nope' does not exist"),
        "{}",
        pipeline.log
    );

    // Outside any pipeline, no NAME is a usage error; shell lines otherwise.
    let shell = [
        ("DOLLY_TOKEN", TOKEN),
        ("GITHUB_ACTIONS", ""),
        ("GITLAB_CI", ""),
    ];
    let r = dolly_run(&url, &["ci", "shop"], &shell, None).await;
    r.fails(2, "no NAME given");
    let r = dolly_run(&url, &["ci", "shop", "plain"], &shell, None).await;
    r.ok();
    assert!(
        r.stdout.contains("export DATABASE_URL='mysql://root:"),
        "{r:#?}"
    );
    dolly_run(&url, &["ci", "--down", "shop", "plain"], &shell, None)
        .await
        .ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_cli_is_a_404_that_does_not_tell_the_path() {
    let app = TestApp::spawn_with(|s| {
        s.cli_path = Some("/nonexistent/dolly-cli-for-a-test".into());
    })
    .await;
    for path in ["/cli/dolly", "/cli/dolly.sha256"] {
        let r = app.get(path).await;
        assert_eq!(r.status(), 404, "{path}");
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(body["error"]["code"], "cli_not_found", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("cli_path"), "{message}");
        assert!(!message.contains("/nonexistent"), "{message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_dollyd_version_is_one_warning() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A dollyd of another version: two answers (ls, then show's lookups).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = vec![0u8; 8192];
            let _ = s.read(&mut buf).await;
            let body = r#"{"instances":[]}"#;
            let _ = s
                .write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Dolly-Version: 9.9.9\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                )
                .await;
        }
    });
    let r = common::cli::dolly(&url, &["ls"]).await;
    r.ok();
    let warnings: Vec<&str> = r.stderr.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 1, "{r:#?}");
    assert!(
        warnings[0].contains(&format!(
            "this dolly is {} but dollyd at {url} is 9.9.9",
            env!("CARGO_PKG_VERSION")
        )) && warnings[0].contains(&format!("{url}/cli/dolly")),
        "{r:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_another_user_holds_is_exit_4_and_ones_own_is_reused() {
    use dolly_core::users::token_sha256;
    let users = tempfile::NamedTempFile::new().expect("users file");
    std::fs::write(
        users.path(),
        format!(
            "[[users]]\nname = \"alice\"\ntoken_sha256 = \"{}\"\nrole = \"member\"\n\n\
             [[users]]\nname = \"bob\"\ntoken_sha256 = \"{}\"\nrole = \"member\"\n",
            token_sha256("alice-token"),
            token_sha256("bob-token")
        ),
    )
    .expect("write users");
    let app = TestApp::spawn_with(|s| s.users_file = Some(users.path().to_path_buf())).await;
    app.write_dump("shop.sql", &shop_dump());
    app.update_ok(&[]).await;
    let url = app.url.clone();
    let as_user = |token: &'static str| {
        [
            ("DOLLY_TOKEN", token),
            ("GITHUB_ACTIONS", ""),
            ("GITLAB_CI", ""),
        ]
    };
    let alice = dolly_run(
        &url,
        &["ci", "shop", "shared"],
        &as_user("alice-token"),
        None,
    )
    .await;
    alice.ok();
    assert!(
        alice.stderr.contains("dolly ci: shop/shared created"),
        "{alice:#?}"
    );
    let again = dolly_run(
        &url,
        &["ci", "shop", "shared"],
        &as_user("alice-token"),
        None,
    )
    .await;
    again.ok();
    assert!(
        again.stderr.contains("dolly ci: shop/shared reused"),
        "{again:#?}"
    );
    assert_eq!(alice.stdout, again.stdout, "the same database");
    let bob = dolly_run(&url, &["ci", "shop", "shared"], &as_user("bob-token"), None).await;
    bob.fails_in_one_line(4, "instance 'shop/shared' exists and is not yours");
    // Bob's cleanup does not touch alice's instance (to him it is gone).
    let down = dolly_run(
        &url,
        &["ci", "--down", "shop", "shared"],
        &as_user("bob-token"),
        None,
    )
    .await;
    down.ok();
    assert!(down.stderr.contains("already gone"), "{down:#?}");
    let down = dolly_run(
        &url,
        &["ci", "--down", "shop", "shared"],
        &as_user("alice-token"),
        None,
    )
    .await;
    down.ok();
    assert!(
        down.stderr.contains("dolly ci: removed shop/shared"),
        "{down:#?}"
    );
}
