//! A dollyd over [`FakeEngine`] on a temporary data folder, with a users
//! file of one admin (`root`) and two members (`alice-q`, `bob-q`), and one
//! template (`shop`) with a published version.

use std::sync::Arc;
use std::time::Duration;

use dolly_core::config::Settings;
use dolly_core::names::{TemplateName, VersionName};
use dolly_engine::fake::FakeEngine;
use dolly_server::startup::Application;

pub const ADMIN: &str = "root-token";
pub const ALICE: &str = "alice-token";
pub const BOB: &str = "bob-token";

/// What a request got back, with what the tests compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub location: Option<String>,
    pub set_cookie: Vec<String>,
    pub content_type: String,
}

pub enum Body {
    None,
    Json(serde_json::Value),
    Form(String),
}

pub struct FastApp {
    pub url: String,
    #[allow(dead_code)]
    pub engine: Arc<FakeEngine>,
    pub client: reqwest::Client,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for FastApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn users_file() -> String {
    let entry = |name: &str, token: &str, role: &str| {
        format!(
            "[[users]]\nname = \"{name}\"\ntoken_sha256 = \"{}\"\nrole = \"{role}\"\n",
            dolly_core::users::token_sha256(token)
        )
    };
    entry("root", ADMIN, "admin")
        + &entry("alice-q", ALICE, "member")
        + &entry("bob-q", BOB, "member")
}

impl FastApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(edit: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let users = dir.path().join("users.toml");
        std::fs::write(&users, users_file()).expect("users file");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        let mut settings = Settings::with_data_dir(&data).expect("settings");
        settings.listen = "127.0.0.1:0".parse().expect("address");
        settings.public_host = "127.0.0.1".to_owned();
        settings.users_file = Some(users);
        settings.min_free_disk = 0;
        settings.ready_timeout = Duration::from_secs(2);
        edit(&mut settings);
        let engine = Arc::new(FakeEngine::new());
        let ctx = dolly_core::fake::context(settings, &engine).expect("context");
        dolly_core::fake::publish(
            &ctx,
            &TemplateName::parse("shop").expect("name"),
            &VersionName::parse("v1").expect("version"),
        )
        .expect("publish");
        let app = Application::build_with_context(ctx)
            .await
            .expect("dollyd starts");
        let url = format!("http://{}", app.address());
        let server = tokio::spawn(app.run_until_stopped());
        dolly_server::install_crypto_provider();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        Self {
            url,
            engine,
            client,
            server,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// `method path` with `token` (a same-origin request, as the UI's
    /// forms send).
    pub async fn call(&self, token: &str, method: &str, path: &str, body: Body) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token)
            .header("origin", &self.url);
        req = match body {
            Body::None => req,
            Body::Json(v) => req.json(&v),
            Body::Form(f) => req
                .header("content-type", "application/x-www-form-urlencoded")
                .body(f),
        };
        let r = req.send().await.expect("request");
        let header = |name: &str| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let location = header("location");
        let content_type = header("content-type").unwrap_or_default();
        let set_cookie = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        Answer {
            status: r.status().as_u16(),
            location,
            set_cookie,
            content_type,
            body: r.text().await.expect("body"),
        }
    }

    /// A JSON call that must answer `status`.
    pub async fn ok(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Body,
        status: u16,
    ) -> Answer {
        let a = self.call(token, method, path, body).await;
        assert_eq!(a.status, status, "{method} {path}: {a:?}");
        a
    }
}
