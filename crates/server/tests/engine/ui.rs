//! The web UI in a real headless Chromium (Debian's `chromium` and
//! `chromium-driver`, driven through WebDriver with fantoccini), and its
//! cross-site protection over plain HTTP.
//!
//! Screenshots of each page go to `target/ui-screenshots/`; with
//! `DOLLY_UPDATE_SCREENSHOTS=1` a set is copied into `docs/screenshots/`
//! for the README.

use crate::common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{shop_dump, simple_dump, TestApp};
use dolly_core::config::Settings;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

const TOKEN: &str = "ui-test-token-s3cret";

/// A dollyd with a token, and the given dump imported as `shop`.
async fn app_with_token(dump: &[u8]) -> TestApp {
    let app = TestApp::spawn_with(|s: &mut Settings| {
        let mut with =
            Settings::from_lookup(|k| (k == "auth_token").then(|| TOKEN.to_owned())).unwrap();
        std::mem::swap(&mut s.auth_token, &mut with.auth_token);
    })
    .await;
    app.write_dump("shop.sql", dump);
    app.update_ok(&[]).await;
    app
}

/// `chromedriver` on a free port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

async fn start_driver() -> (Driver, Client) {
    const HOW: &str = "the UI tests need Debian's chromium and chromium-driver: run scripts/install-deps.sh as root";
    let driver = find_program(&["chromedriver"])
        .unwrap_or_else(|| panic!("chromedriver is not on PATH; {HOW}"));
    let browser = find_program(&["chromium", "chromium-browser"])
        .unwrap_or_else(|| panic!("chromium is not on PATH; {HOW}"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(&driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}; {HOW}", driver.display()));
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver did not listen on {port} within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": browser.display().to_string(),
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1280,900", "--hide-scrollbars"]
        }),
    );
    let client = ClientBuilder::rustls()
        .expect("TLS roots")
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap_or_else(|e| panic!("chromedriver would not start chromium: {e}; {HOW}"));
    (driver, client)
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target")));
    target.join("ui-screenshots")
}

/// Saves the browser's view as a test artifact under `target/`, and for
/// the README when `docs` is set and the run asks for it
/// (`DOLLY_UPDATE_SCREENSHOTS=1`): a test run leaves the tracked files
/// alone.
async fn shot(c: &Client, name: &str, docs: bool) {
    let docs = docs && std::env::var_os("DOLLY_UPDATE_SCREENSHOTS").is_some_and(|v| v == "1");
    let png = c.screenshot().await.expect("screenshot");
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    std::fs::write(dir.join(format!("{name}.png")), &png).expect("write screenshot");
    if docs {
        let docs = PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/screenshots"
        ));
        std::fs::create_dir_all(&docs).expect("docs/screenshots");
        std::fs::write(docs.join(format!("{name}.png")), &png).expect("write docs screenshot");
    }
}

fn css(s: &str) -> Locator<'_> {
    Locator::Css(s)
}

async fn wait_for(c: &Client, selector: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(Duration::from_secs(90))
        .for_element(css(selector))
        .await
        .unwrap_or_else(|e| panic!("{selector} did not appear: {e}"))
}

/// Waits until a notice saying `text` is shown. A click navigates, so the
/// previous page's notice may still be found, and go stale, before the
/// new page is there: look again until one says it.
async fn notice_says(c: &Client, text: &str) {
    let started = Instant::now();
    loop {
        for n in c
            .find_all(css("[data-testid=notice]"))
            .await
            .unwrap_or_default()
        {
            if n.text().await.is_ok_and(|t| t.contains(text)) {
                return;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no notice says {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until nothing matches `selector` (the page changed).
async fn wait_gone(c: &Client, selector: &str) {
    let started = Instant::now();
    while !c.find_all(css(selector)).await.expect("find").is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "{selector} is still there"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The page's path (and query).
async fn path(c: &Client) -> String {
    let u = c.current_url().await.expect("url");
    match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_owned(),
    }
}

/// No horizontal scrolling at the window's width.
async fn fits_width(c: &Client, what: &str) {
    let v = c
        .execute(
            "var w = window.innerWidth, wide = [];\n\
             document.querySelectorAll('body *').forEach(function (e) {\n\
               var r = e.getBoundingClientRect();\n\
               if (r.right > w + 1 && wide.length < 5) wide.push(e.tagName + '.' + e.className + ' ' + Math.round(r.right));\n\
             });\n\
             return [document.documentElement.scrollWidth, w, wide.join(', ')];",
            vec![],
        )
        .await
        .expect("script");
    let (scroll, inner) = (v[0].as_f64().unwrap(), v[1].as_f64().unwrap());
    assert!(
        scroll <= inner + 1.0,
        "{what} scrolls sideways at {inner} px: {scroll} px wide ({})",
        v[2]
    );
}

#[tokio::test]
async fn a_person_signs_in_creates_snapshots_and_deletes_in_a_real_browser() {
    let app = app_with_token(&shop_dump()).await;
    let (_driver, c) = start_driver().await;

    // Signed out: the UI sends the browser to the sign-in page.
    c.goto(&app.url("/ui/")).await.unwrap();
    wait_for(&c, "[data-testid=token-input]").await;
    assert!(
        path(&c).await.starts_with("/ui/signin"),
        "{}",
        path(&c).await
    );
    shot(&c, "signin", true).await;
    // A wrong token is refused, with a message.
    c.find(css("[data-testid=token-input]"))
        .await
        .unwrap()
        .send_keys("wrong")
        .await
        .unwrap();
    c.find(css("[data-testid=token-submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let err = wait_for(&c, "[data-testid=error]").await;
    assert!(err.text().await.unwrap().contains("refused"));
    c.find(css("[data-testid=token-input]"))
        .await
        .unwrap()
        .send_keys(TOKEN)
        .await
        .unwrap();
    c.find(css("[data-testid=token-submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&c, "h1").await;
    assert_eq!(path(&c).await, "/ui/");

    // Templates.
    c.goto(&app.url("/ui/templates")).await.unwrap();
    let row = wait_for(&c, "[data-testid=template-row][data-name=shop]").await;
    let text = row.text().await.unwrap();
    assert!(text.contains("ok"), "{text}");
    shot(&c, "templates", true).await;

    // Create from the form.
    c.goto(&app.url("/ui/new")).await.unwrap();
    wait_for(&c, "[data-testid=new-instance-template]")
        .await
        .select_by_value("shop")
        .await
        .unwrap();
    c.find(css("[data-testid=new-instance-name]"))
        .await
        .unwrap()
        .send_keys("demo")
        .await
        .unwrap();
    shot(&c, "new-instance", true).await;
    c.find(css("[data-testid=new-instance-submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let conn = wait_for(&c, "[data-testid=connection-string]").await;
    assert_eq!(path(&c).await, "/ui/i/shop/demo");
    let conn = conn.text().await.unwrap();
    assert!(conn.starts_with("mysql://root:"), "{conn}");
    // The string is right: it connects.
    let rest = conn.trim_start_matches("mysql://root:");
    let (password, rest) = rest.split_once('@').unwrap();
    let (hostport, db) = rest.split_once('/').unwrap();
    let port: u16 = hostport.rsplit_once(':').unwrap().1.parse().unwrap();
    assert_eq!(common::scalar(port, password, db, "SELECT 1").await, "1");
    shot(&c, "instance", true).await;

    // Listed, live: the row is there.
    c.goto(&app.url("/ui/")).await.unwrap();
    let row = wait_for(&c, "[data-testid=instance-row][data-name=demo]").await;
    assert!(row.text().await.unwrap().contains("running"));
    shot(&c, "instances", true).await;
    // An instance created elsewhere shows up without a reload.
    let r = app
        .client
        .post(app.url("/api/v1/templates/shop/instances/other"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    wait_for(&c, "[data-testid=instance-row][data-name=other]").await;

    // Take a snapshot with a message, then delete it.
    c.goto(&app.url("/ui/i/shop/demo")).await.unwrap();
    wait_for(&c, "[data-testid=snapshot-button]")
        .await
        .click()
        .await
        .unwrap();
    let name = wait_for(&c, "[data-testid=snapshot-name]").await;
    name.clear().await.unwrap();
    name.send_keys("before").await.unwrap();
    c.find(css("[data-testid=snapshot-message]"))
        .await
        .unwrap()
        .send_keys("before the migration")
        .await
        .unwrap();
    c.find(css("[data-testid=snapshot-submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let snap = wait_for(&c, "[data-testid=snapshot-row][data-name=before]").await;
    assert!(snap.text().await.unwrap().contains("before the migration"));
    wait_for(&c, "[data-testid=notice]").await;
    c.execute(
        "document.getElementById('snapshots').scrollIntoView();",
        vec![],
    )
    .await
    .unwrap();
    shot(&c, "snapshot", true).await;
    let snaps = app
        .client
        .get(app.url("/api/v1/templates/shop/instances/demo/snapshots"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(snaps["snapshots"][0]["name"], "before");
    snap.find(css("[data-testid=snapshot-delete]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_gone(&c, "[data-testid=snapshot-row]").await;
    let notice = wait_for(&c, "#snapshots [data-testid=notice]").await;
    assert!(notice.text().await.unwrap().contains("deleted"));

    // An error is the API's own message, next to its form.
    c.find(css("[data-testid=snapshot-button]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let name = wait_for(&c, "[data-testid=snapshot-name]").await;
    name.clear().await.unwrap();
    name.send_keys("x").await.unwrap();
    c.execute(
        "document.querySelector('[data-testid=snapshot-name]').value = 'Bad Name';",
        vec![],
    )
    .await
    .unwrap();
    c.execute(
        "document.querySelector('[data-testid=snapshot-name]').form.noValidate = true;",
        vec![],
    )
    .await
    .unwrap();
    c.find(css("[data-testid=snapshot-submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let err = wait_for(&c, "#snapshots [data-testid=error]").await;
    let text = err.text().await.unwrap();
    assert!(text.contains("invalid_name"), "{text}");

    // 390 px wide: readable, nothing scrolls sideways.
    c.set_window_size(390, 844).await.unwrap();
    c.goto(&app.url("/ui/i/shop/demo")).await.unwrap();
    wait_for(&c, "[data-testid=connection-string]").await;
    fits_width(&c, "the instance page").await;
    shot(&c, "instance-390px", true).await;
    c.goto(&app.url("/ui/")).await.unwrap();
    wait_for(&c, "[data-testid=instance-row][data-name=demo]").await;
    fits_width(&c, "the instance list").await;
    shot(&c, "instances-390px", true).await;
    c.goto(&app.url("/ui/templates")).await.unwrap();
    wait_for(&c, "[data-testid=template-row]").await;
    fits_width(&c, "the templates page").await;
    shot(&c, "templates-390px", false).await;
    c.set_window_size(1280, 900).await.unwrap();

    // Delete, with a confirmation.
    c.goto(&app.url("/ui/i/shop/demo")).await.unwrap();
    wait_for(&c, "[data-testid=delete-button]")
        .await
        .click()
        .await
        .unwrap();
    wait_for(&c, "[data-testid=delete-confirm]")
        .await
        .click()
        .await
        .unwrap();
    wait_gone(&c, "[data-testid=delete-confirm]").await;
    let notice = wait_for(&c, "[data-testid=notice]").await;
    assert!(notice.text().await.unwrap().contains("deleted"));
    assert_eq!(path(&c).await, "/ui/");
    wait_for(&c, "[data-testid=instance-row][data-name=other]").await;
    assert!(c
        .find_all(css("[data-testid=instance-row][data-name=demo]"))
        .await
        .unwrap()
        .is_empty());
    let r = app
        .client
        .get(app.url("/api/v1/templates/shop/instances/demo"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Sign out: the cookie is gone, the UI asks for the token again.
    c.find(css("form.signout button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&c, "[data-testid=token-input]").await;
    c.goto(&app.url("/ui/templates")).await.unwrap();
    wait_for(&c, "[data-testid=token-input]").await;
    finish(c).await;
}

#[tokio::test]
async fn a_cross_site_post_with_the_cookie_changes_nothing() {
    let app = app_with_token(simple_dump("t", 1).as_bytes()).await;
    dolly_server::install_crypto_provider();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookie = format!("dolly_token={TOKEN}");
    let host = app.url.trim_start_matches("http://").to_owned();

    // The sign-in page and its assets need no token; the rest of the UI does.
    let r = client.get(app.url("/ui/signin")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("token-input"));
    let r = client
        .get(app.url("/ui/assets/style.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client.get(app.url("/ui/")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/ui/signin"));
    let r = client
        .get(app.url("/ui/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The cookie opens the UI, not the API.
    let r = client
        .get(app.url("/api/v1/templates"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let csrf = {
        use sha2::Digest;
        let d = sha2::Sha256::new()
            .chain_update(b"dolly-ui-csrf\0")
            .chain_update(TOKEN.as_bytes())
            .finalize();
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let form = [("template", "shop"), ("name", "evil"), ("csrf", "")];
    // Another site's form, with the victim's cookie: refused.
    for (origin, referer) in [
        (Some("https://evil.example"), None),
        (Some("null"), None),
        (None, Some("https://evil.example/page")),
        (None, None),
    ] {
        let mut r = client
            .post(app.url("/ui/new"))
            .header("cookie", &cookie)
            .form(&form);
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        if let Some(rf) = referer {
            r = r.header("referer", rf);
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), 403, "origin {origin:?} referer {referer:?}");
    }
    // Same origin without the CSRF field: refused too.
    let r = client
        .post(app.url("/ui/new"))
        .header("cookie", &cookie)
        .header("origin", format!("http://{host}"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let list = app
        .client
        .get(app.url("/api/v1/instances"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(list["instances"], json!([]), "nothing was created");
    assert!(!app.data_dir().join("instances/shop/evil").exists());

    // The same form from the UI's own page works.
    let r = client
        .post(app.url("/ui/new"))
        .header("cookie", &cookie)
        .header("origin", format!("http://{host}"))
        .form(&[("template", "shop"), ("name", "mine"), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/ui/i/shop/mine");
    // The sign-out is same-origin only too, and clears the cookie.
    let r = client
        .post(app.url("/ui/signout"))
        .header("cookie", &cookie)
        .header("origin", format!("http://{host}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.starts_with("dolly_token=;") && set.contains("Max-Age=0"),
        "{set}"
    );
    // Signing in sets an HttpOnly, SameSite=Strict cookie.
    let r = client
        .post(app.url("/ui/signin"))
        .header("origin", format!("http://{host}"))
        .form(&[("token", TOKEN), ("next", "/ui/templates")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/ui/templates");
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && !set.contains("Secure"),
        "{set}"
    );
}

/// Ends the browser session once every assertion has run. Closing is
/// clean-up, not a check of dolly: a close the driver fails (CI saw one
/// after the last assertion had passed) is reported, and chromedriver is
/// killed with its guard either way.
async fn finish(c: Client) {
    if let Err(e) = c.close().await {
        eprintln!("closing the browser session failed (clean-up only): {e}");
    }
}

/// Signs in through the form (after any sign-out).
async fn sign_in(c: &Client, app: &TestApp, token: &str) {
    c.goto(&app.url("/ui/signin")).await.unwrap();
    wait_for(c, "[data-testid=token-input]")
        .await
        .send_keys(token)
        .await
        .unwrap();
    c.find(css("[data-testid=token-submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(c, "h1").await;
}

#[tokio::test]
async fn a_member_uses_their_own_instances_in_a_real_browser() {
    const ADMIN: &str = "ui-admin-token-s3cret";
    const ALICE: &str = "ui-alice-token-s3cret";
    const BOB: &str = "ui-bob-token-s3cret";
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.toml");
    let entry = |name: &str, token: &str, role: &str| {
        format!(
            "[[users]]\nname = \"{name}\"\ntoken_sha256 = \"{}\"\nrole = \"{role}\"\n",
            dolly_core::users::token_sha256(token)
        )
    };
    std::fs::write(
        &users,
        entry("root", ADMIN, "admin")
            + &entry("alice", ALICE, "member")
            + &entry("bob", BOB, "member"),
    )
    .unwrap();
    let mut app = TestApp::new_stopped(|s| s.users_file = Some(users.clone())).await;
    app.write_dump("shop.sql", &simple_dump("t", 3).into_bytes());
    app.update_ok(&[]).await;
    app.start().await;
    // bob's instance, which alice must never see.
    let r = app
        .client
        .post(app.url("/api/v1/templates/shop/instances/bobs-db"))
        .bearer_auth(BOB)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (_driver, c) = start_driver().await;

    // The sign-in page says the truth: personal tokens, not "open".
    c.goto(&app.url("/ui/")).await.unwrap();
    let mode = wait_for(&c, "[data-testid=signin-mode]").await;
    let text = mode.text().await.unwrap();
    assert!(text.contains("personal tokens"), "{text}");
    sign_in(&c, &app, ALICE).await;
    assert_eq!(path(&c).await, "/ui/");
    let source = c.source().await.unwrap();
    assert!(!source.contains("bobs-db"), "alice sees bob's instance");

    // Create from the form: hers.
    c.goto(&app.url("/ui/new")).await.unwrap();
    wait_for(&c, "[data-testid=new-instance-template]")
        .await
        .select_by_value("shop")
        .await
        .unwrap();
    c.find(css("[data-testid=new-instance-name]"))
        .await
        .unwrap()
        .send_keys("alices-db")
        .await
        .unwrap();
    c.find(css("[data-testid=new-instance-submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&c, "[data-testid=connection-string]").await;
    assert_eq!(path(&c).await, "/ui/i/shop/alices-db");
    let i: Value = app
        .client
        .get(app.url("/api/v1/templates/shop/instances/alices-db"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(i["owner"], "alice");

    // Extend, reset, snapshot: her own, all allowed.
    wait_for(&c, "[data-testid=extend-button]")
        .await
        .click()
        .await
        .unwrap();
    notice_says(&c, "xtended").await;
    wait_for(&c, "[data-testid=reset-button]")
        .await
        .click()
        .await
        .unwrap();
    notice_says(&c, "Reset").await;
    wait_for(&c, "[data-testid=snapshot-button]")
        .await
        .click()
        .await
        .unwrap();
    let name = wait_for(&c, "[data-testid=snapshot-name]").await;
    name.clear().await.unwrap();
    name.send_keys("mine").await.unwrap();
    c.find(css("[data-testid=snapshot-submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&c, "[data-testid=snapshot-row][data-name=mine]").await;
    shot(&c, "member-instance", false).await;

    // bob's instance is "does not exist", as a page (not JSON); so is a
    // bad name.
    c.goto(&app.url("/ui/i/shop/bobs-db")).await.unwrap();
    let err = wait_for(&c, "[data-testid=error]").await;
    assert!(
        err.text().await.unwrap().contains("does not exist"),
        "{}",
        err.text().await.unwrap()
    );
    assert!(c.source().await.unwrap().contains("<html"));
    c.goto(&app.url("/ui/i/shop/Bad%20Name")).await.unwrap();
    let err = wait_for(&c, "[data-testid=error]").await;
    assert!(err.text().await.unwrap().contains("invalid_name"));
    assert!(c.source().await.unwrap().contains("<html"));
    shot(&c, "member-error", false).await;

    // Delete her own, with the confirmation.
    c.goto(&app.url("/ui/i/shop/alices-db")).await.unwrap();
    wait_for(&c, "[data-testid=delete-button]")
        .await
        .click()
        .await
        .unwrap();
    wait_for(&c, "[data-testid=delete-confirm]")
        .await
        .click()
        .await
        .unwrap();
    wait_gone(&c, "[data-testid=delete-confirm]").await;
    assert_eq!(path(&c).await, "/ui/");

    // An admin sees bob's in the same pages.
    c.find(css("form.signout button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&c, "[data-testid=token-input]").await;
    sign_in(&c, &app, ADMIN).await;
    wait_for(&c, "[data-testid=instance-row][data-name=bobs-db]").await;
    finish(c).await;
}
