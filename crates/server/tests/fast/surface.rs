//! The HTTP surface over the fake engine: myaas's shapes and codes, the
//! error envelope, health and the OpenAPI document, the UI's pages and
//! forms as a browser without JavaScript sends them, and the real `dolly`
//! CLI against this dollyd. What needs a real database server (the
//! credentials work, the data is there) stays in the Docker tier.

use serde_json::Value;

use crate::harness::{Body, FastApp, ADMIN, ALICE, BOB};

/// A request as written, bypassing any client-side path normalization.
async fn raw(app: &FastApp, method: &str, path: &str, token: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
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

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[tokio::test]
async fn myaas_routes_keep_their_shapes_and_codes() {
    let app = FastApp::spawn().await;
    let index = json(&app.ok(ADMIN, "GET", "/", Body::None, 200).await.body);
    assert_eq!(index["status"], "Service is running");
    assert_eq!(index["templates"], serde_json::json!(["shop"]));
    assert_eq!(
        json(
            &app.ok(ADMIN, "GET", "/templates", Body::None, 200)
                .await
                .body
        ),
        serde_json::json!({"templates": ["shop"]})
    );

    // A form ttl: 201 with the GET body, myaas's field types.
    let created = app
        .ok(
            ALICE,
            "POST",
            "/db/shop/alice",
            Body::Form("ttl=3600".into()),
            201,
        )
        .await;
    let created = json(&created.body);
    for key in [
        "database",
        "host",
        "name",
        "port",
        "user",
        "password",
        "running",
        "status",
        "created",
        "expires_at",
    ] {
        assert!(created.get(key).is_some(), "missing {key} in {created}");
    }
    assert!(created["port"].is_string(), "port is a string as in myaas");
    assert!(created["created"].is_i64(), "created is Unix seconds");
    let expires: i64 = created["expires_at"].as_str().unwrap().parse().unwrap();
    let made = created["created"].as_i64().unwrap();
    assert!((3599..=3601).contains(&(expires - made)), "ttl honoured");
    assert_eq!(created["running"], true);

    // Again: 304 and no body.
    let again = app.call(ALICE, "POST", "/db/shop/alice", Body::None).await;
    assert_eq!((again.status, again.body.as_str()), (304, ""));
    // GET /db/{t}/{n}, GET /db.
    let got = json(
        &app.ok(ALICE, "GET", "/db/shop/alice", Body::None, 200)
            .await
            .body,
    );
    assert_eq!(got["password"], created["password"]);
    let list = json(&app.ok(ALICE, "GET", "/db", Body::None, 200).await.body);
    let dbs = list["databases"].as_array().unwrap();
    assert_eq!(dbs.len(), 1, "{list}");
    assert_eq!(dbs[0]["template"], "shop");
    // DELETE: 204, then myaas's 404 body.
    app.ok(ALICE, "DELETE", "/db/shop/alice", Body::None, 204)
        .await;
    let gone = app
        .ok(ALICE, "DELETE", "/db/shop/alice", Body::None, 404)
        .await;
    assert_eq!(json(&gone.body), serde_json::json!({"status": "Not found"}));
    // Unknown template: 404 naming it.
    let nope = app.ok(ALICE, "POST", "/db/nope/x", Body::None, 404).await;
    assert!(json(&nope.body)["status"]
        .as_str()
        .unwrap()
        .contains("nope"));
}

#[tokio::test]
async fn errors_are_one_json_envelope_with_a_stable_code() {
    let app = FastApp::spawn().await;
    for path in [
        "/db/shop/..",
        "/db/../x",
        "/db/..%2f..%2fetc/x",
        "/db/shop/%2e%2e",
        "/db/Shop/x",
        "/db/shop/a%00b",
        "/db/shop/caf%C3%A9",
        "/db/shop/-x",
        "/api/v1/templates/shop/instances/UPPER",
    ] {
        let (status, body) = raw(&app, "POST", path, ADMIN).await;
        assert_eq!(status, 400, "POST {path}: {body}");
        let body = json(&body);
        assert!(body["error"]["code"].is_string(), "{path}: {body}");
        assert!(body["error"]["message"].is_string(), "{path}: {body}");
    }
    let bad_ttl = app
        .call(ADMIN, "POST", "/db/shop/x", Body::Form("ttl=soon".into()))
        .await;
    assert_eq!(bad_ttl.status, 400, "{bad_ttl:?}");

    let v1 = "/api/v1/templates/shop/instances";
    let cases: [(&str, &str, String, Body, u16, &str); 5] = [
        (
            "no token",
            "GET",
            v1.into(),
            Body::None,
            401,
            "unauthorized",
        ),
        (
            ADMIN,
            "POST",
            "/api/v1/templates/nope/instances/x".into(),
            Body::Json(serde_json::json!({})),
            404,
            "template_not_found",
        ),
        (
            ADMIN,
            "GET",
            format!("{v1}/never-made"),
            Body::None,
            404,
            "instance_not_found",
        ),
        (ADMIN, "GET", "/no/such/route".into(), Body::None, 404, ""),
        (
            ADMIN,
            "POST",
            format!("{v1}/x"),
            Body::Json(serde_json::json!({"ttl": "forever"})),
            400,
            "",
        ),
    ];
    for (token, method, path, body, status, code) in cases {
        let a = app.call(token, method, &path, body).await;
        assert_eq!(a.status, status, "{method} {path}: {a:?}");
        assert!(a.content_type.starts_with("application/json"), "{a:?}");
        let body = json(&a.body);
        assert!(body["error"]["message"].is_string(), "{path}: {body}");
        if !code.is_empty() {
            assert_eq!(body["error"]["code"], code, "{path}: {body}");
        }
    }
    // A name taken: 409 instance_exists on /api/v1.
    app.ok(
        ADMIN,
        "POST",
        &format!("{v1}/taken"),
        Body::Json(serde_json::json!({})),
        201,
    )
    .await;
    let taken = app
        .call(
            ADMIN,
            "POST",
            &format!("{v1}/taken"),
            Body::Json(serde_json::json!({})),
        )
        .await;
    assert_eq!(taken.status, 409, "{taken:?}");
    assert_eq!(json(&taken.body)["error"]["code"], "instance_exists");
}

#[tokio::test]
async fn health_readiness_and_the_openapi_document() {
    let app = FastApp::spawn().await;
    let health = app.call("", "GET", "/healthz", Body::None).await;
    assert_eq!(json(&health.body)["status"], "ok");
    let ready = app.ok(ADMIN, "GET", "/readyz", Body::None, 200).await;
    assert_eq!(json(&ready.body)["ready"], true);
    let doc = json(
        &app.ok(ADMIN, "GET", "/api/v1/openapi.json", Body::None, 200)
            .await
            .body,
    );
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let create = &doc["paths"]["/api/v1/templates/{template}/instances/{name}"]["post"];
    assert!(create.is_object());
    // Each path parameter is documented as a name, with its pattern.
    for param in create["parameters"].as_array().unwrap() {
        if param["in"] == "path" {
            assert_eq!(
                param["schema"]["pattern"], "^[a-z0-9][a-z0-9_-]{0,62}$",
                "{param}"
            );
            assert_eq!(param["required"], true, "{param}");
        }
    }
    let named: Vec<&str> = create["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(named, ["template", "name"]);
    // The template as the API shows it: the one version, current.
    let shop = json(
        &app.ok(ADMIN, "GET", "/api/v1/templates/shop", Body::None, 200)
            .await
            .body,
    );
    assert_eq!(shop["current_version"], "v1");
    assert_eq!(shop["versions"][0]["current"], true);
    assert_eq!(shop["pool"]["size"], 0);
}

/// The cookie a sign-in sets, as a `Cookie` header value.
async fn sign_in(app: &FastApp, token: &str) -> String {
    let r = app
        .client
        .post(app.url("/ui/signin"))
        .header("origin", &app.url)
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "sign-in answers with a redirect");
    let set = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap()
        .to_owned();
    set.split(';').next().unwrap().to_owned()
}

async fn page(app: &FastApp, cookie: &str, path: &str) -> (u16, String) {
    let r = app
        .client
        .get(app.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn the_ui_pages_and_forms_work_without_a_browser() {
    let app = FastApp::spawn().await;
    // Signed out: the pages send the browser to sign in.
    let r = app.client.get(app.url("/ui/")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let cookie = sign_in(&app, ALICE).await;
    let (status, new) = page(&app, &cookie, "/ui/new").await;
    assert_eq!(status, 200);
    assert!(new.contains("<option") && new.contains("shop"), "{new}");
    let csrf = csrf_of(&new);

    // The create form: a redirect to the new instance's page.
    let form = format!("template=shop&name=from-ui&ttl=3600&csrf={csrf}");
    let r = app
        .client
        .post(app.url("/ui/new"))
        .header("cookie", &cookie)
        .header("origin", &app.url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(to.starts_with("/ui/i/shop/from-ui"), "{to}");
    let (status, html) = page(&app, &cookie, "/ui/i/shop/from-ui").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("from-ui") && html.contains("running"),
        "{html}"
    );
    let (_, list) = page(&app, &cookie, "/ui/").await;
    assert!(list.contains("data-name=\"from-ui\""), "{list}");

    // Another member does not see it, in the list or by its page.
    let bob = sign_in(&app, BOB).await;
    let (_, bobs) = page(&app, &bob, "/ui/").await;
    assert!(!bobs.contains("from-ui"), "{bobs}");
    let (status, _) = page(&app, &bob, "/ui/i/shop/from-ui").await;
    assert_eq!(status, 404);

    // A post from another site is refused, whatever its cookie.
    let r = app
        .client
        .post(app.url("/ui/i/shop/from-ui/delete"))
        .header("cookie", &cookie)
        .header("origin", "http://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let still = app
        .call(
            ALICE,
            "GET",
            "/api/v1/templates/shop/instances/from-ui",
            Body::None,
        )
        .await;
    assert_eq!(still.status, 200, "the cross-site delete did nothing");
}

#[tokio::test]
async fn the_cli_creates_lists_and_removes_against_this_dollyd() {
    let app = FastApp::spawn().await;
    let env = [("DOLLY_TOKEN", ALICE)];
    let made =
        crate::cli::dolly_run(&app.url, &["new", "shop", "from-cli", "--json"], &env, None).await;
    let made = made.ok().json();
    assert_eq!(made["name"], "from-cli");
    assert!(made["port"].as_u64().unwrap() > 0, "{made}");
    let listed = crate::cli::dolly_run(&app.url, &["ls"], &env, None).await;
    assert!(listed.ok().stdout.contains("from-cli"), "{listed:?}");
    // A name that does not exist: a one-line error and a failing code.
    let missing = crate::cli::dolly_run(&app.url, &["rm", "shop", "nope"], &env, None).await;
    assert_ne!(missing.code, 0, "{missing:?}");
    assert_eq!(missing.stderr.trim().lines().count(), 1, "{missing:?}");
    crate::cli::dolly_run(&app.url, &["rm", "shop", "from-cli"], &env, None)
        .await
        .ok();
    let gone = app
        .call(
            ALICE,
            "GET",
            "/api/v1/templates/shop/instances/from-cli",
            Body::None,
        )
        .await;
    assert_eq!(gone.status, 404);
}
