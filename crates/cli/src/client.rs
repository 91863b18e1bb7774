//! A blocking client of dollyd's `/api/v1`, and the only place that knows
//! its paths, status codes and error shape.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use dolly_types::v1::{
    DiskUsage, ErrorBody, Instance, InstanceList, PushResult, SchemaDiff, SchemaExplain, Snapshot,
    SnapshotList, Template, TemplateList, TemplatePool,
};
use dolly_types::{InstanceName, SnapshotName, TemplateName};
use reqwest::blocking::{Body, Client as Http, ClientBuilder, RequestBuilder, Response};
use reqwest::{Certificate, Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::Error;

/// How long to wait for a TCP connection to dollyd.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a quick request (lists, reads, removals) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a create may take: dollyd answers once the server inside the
/// new container accepts its credentials.
const CREATE_TIMEOUT: Duration = Duration::from_secs(600);

/// How an archive is sent to `import`: a file of known length, or a stream
/// (stdin) sent chunked.
pub enum Upload {
    Sized(Box<dyn Read + Send>, u64),
    Stream(Box<dyn Read + Send>),
}

/// An answer: the typed body, and the JSON exactly as the API sent it (for
/// `--json`, so fields this CLI does not know yet are kept).
#[derive(Debug)]
pub struct Answer<T> {
    pub value: T,
    pub raw: Value,
}

pub struct Client {
    /// The base URL as the user gave it, for messages.
    shown: String,
    base: Url,
    token: Option<String>,
    /// The only roots trusted for https (`--ca-cert`); the system's when
    /// `None`.
    roots: Option<Vec<Certificate>>,
    http: Http,
}

/// How the connection to dollyd is secured: `--ca-cert`, `--insecure-http`.
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// A PEM file of the CA to trust instead of the system's roots.
    pub ca_cert: Option<PathBuf>,
    /// Send the token over plain http to a host that is not loopback.
    pub insecure_http: bool,
}

/// Whether `host` is this machine: a loopback address or `localhost`,
/// decided from the URL alone (no name is resolved).
pub fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.to_canonical().is_loopback(),
        Err(_) => host.trim_end_matches('.').eq_ignore_ascii_case("localhost"),
    }
}

/// A builder with what every request shares: the connection timeout, the
/// user agent, and for https the roots to trust (`roots`, else the
/// system's). An https client follows no redirect to http; any redirect to
/// another origin drops the token (reqwest removes `Authorization` then).
fn http_builder(base: &Url, roots: Option<&[Certificate]>) -> ClientBuilder {
    // rustls with ring: no OpenSSL. Installed once per process; a second
    // call finds it installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let builder = Http::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("dolly-cli/", env!("CARGO_PKG_VERSION")))
        .tls_backend_rustls();
    let builder = match roots {
        Some(roots) => builder.tls_certs_only(roots.iter().cloned()),
        None => builder,
    };
    if base.scheme() == "https" {
        builder.https_only(true)
    } else {
        builder
    }
}

/// The certificates of a PEM file given as `--ca-cert`.
fn read_ca(path: &std::path::Path) -> Result<Vec<Certificate>, Error> {
    let bad = |reason: String| Error::CaCert {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string().to_lowercase()))?;
    let certs = Certificate::from_pem_bundle(&pem)
        .map_err(|_| bad("it is not a PEM file of certificates".to_owned()))?;
    if certs.is_empty() {
        return Err(bad(
            "it holds no CERTIFICATE (a PEM file is expected)".to_owned()
        ));
    }
    Ok(certs)
}

impl Client {
    /// A client of the dollyd at `url` (e.g. `http://localhost:5001`,
    /// `https://dolly.example.com:5001`).
    pub fn new(url: &str, token: Option<&str>, security: &Security) -> Result<Self, Error> {
        let bad = |reason: &str| Error::BadUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let mut base = Url::parse(url.trim()).map_err(|e| bad(&e.to_string()))?;
        let https = match base.scheme() {
            "http" => false,
            "https" => true,
            other => {
                return Err(bad(&format!(
                    "the scheme must be http or https, not {other:?}"
                )))
            }
        };
        if base.host_str().is_none_or(str::is_empty) {
            return Err(bad("it has no host"));
        }
        let token = token.filter(|t| !t.is_empty()).map(str::to_owned);
        if token.is_some() && !https && !is_loopback(&base) && !security.insecure_http {
            return Err(Error::TokenInClear {
                url: url.trim().to_owned(),
                host: base.host_str().unwrap_or_default().to_owned(),
            });
        }
        // Only https uses --ca-cert (DOLLY_CA_CERT may be set for every
        // dollyd a user talks to, some of them local over http).
        let roots = match &security.ca_cert {
            Some(path) if https => Some(read_ca(path)?),
            _ => None,
        };
        if base.query().is_some() || base.fragment().is_some() {
            return Err(bad("it must not have a query or a fragment"));
        }
        // A base path (dollyd behind a proxy at /dolly) is kept: join
        // relative paths onto it.
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = http_builder(&base, roots.as_deref())
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| bad(&e.to_string()))?;
        Ok(Self {
            shown: url.trim().trim_end_matches('/').to_owned(),
            base,
            token,
            roots,
            http,
        })
    }

    /// The client for archive transfers: no limit on the whole request,
    /// since an archive of many gigabytes takes as long as it takes (only
    /// the connection is timed).
    fn transfer_http(&self) -> Result<Http, reqwest::Error> {
        http_builder(&self.base, self.roots.as_deref())
            .timeout(None)
            .build()
    }

    /// The base URL as the user gave it, for messages.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    pub fn templates(&self) -> Result<Answer<TemplateList>, Error> {
        self.json(Method::GET, "api/v1/templates", None)
    }

    pub fn template(&self, t: &TemplateName) -> Result<Answer<Template>, Error> {
        self.json(Method::GET, &format!("api/v1/templates/{t}"), None)
    }

    /// Pushes a snapshot to another server (`POST .../push`).
    pub fn push(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        s: &SnapshotName,
        body: Value,
    ) -> Result<Answer<PushResult>, Error> {
        self.json(
            Method::POST,
            &format!("{}/push", snapshot_path(t, n, s)),
            Some(body),
        )
    }

    /// The schema diff of an instance (`GET .../diff`).
    pub fn diff(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        against: Option<&SnapshotName>,
    ) -> Result<Answer<SchemaDiff>, Error> {
        let query = against.map(|s| format!("?against={s}")).unwrap_or_default();
        self.json(
            Method::GET,
            &format!("{}/diff{query}", instance_path(t, n)),
            None,
        )
    }

    /// The diff's SQL rehearsed on a throwaway clone (`POST .../diff/explain`).
    pub fn explain(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        against: Option<&SnapshotName>,
    ) -> Result<Answer<SchemaExplain>, Error> {
        let query = against.map(|s| format!("?against={s}")).unwrap_or_default();
        self.json(
            Method::POST,
            &format!("{}/diff/explain{query}", instance_path(t, n)),
            None,
        )
    }

    /// Sets the template's warm pool size (`PUT .../pool`).
    pub fn set_pool(&self, t: &TemplateName, size: usize) -> Result<Answer<TemplatePool>, Error> {
        let body = serde_json::json!({ "size": size });
        self.json(
            Method::PUT,
            &format!("api/v1/templates/{t}/pool"),
            Some(body),
        )
    }

    pub fn instances(&self, only: Option<&TemplateName>) -> Result<Answer<InstanceList>, Error> {
        let path = match only {
            // Names hold only [a-z0-9_-]: nothing to encode.
            Some(t) => format!("api/v1/instances?template={t}"),
            None => "api/v1/instances".to_owned(),
        };
        self.json(Method::GET, &path, None)
    }

    /// Creates an instance; `from` (`NAME@SNAP`) branches it from a
    /// snapshot.
    pub fn create(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        ttl_seconds: Option<u64>,
        from: Option<&str>,
        keep: &Keep,
    ) -> Result<Answer<Instance>, Error> {
        let mut body = create_body(ttl_seconds, from);
        if let Some(map) = body.as_object_mut() {
            if let Some(standby) = keep.standby {
                map.insert("standby".to_owned(), standby.into());
            }
            if let Some(secs) = keep.sleep_after {
                map.insert("sleep_after".to_owned(), secs.into());
            }
        }
        self.json(Method::POST, &instance_path(t, n), Some(body))
    }

    /// A lifecycle action on an instance (`extend`, `protect`, `stop`,
    /// `reset`...) that answers with the instance.
    pub fn act(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        action: &str,
        body: Option<Value>,
    ) -> Result<Answer<Instance>, Error> {
        self.json(
            Method::POST,
            &format!("{}/{action}", instance_path(t, n)),
            body,
        )
    }

    pub fn snapshots(
        &self,
        t: &TemplateName,
        n: &InstanceName,
    ) -> Result<Answer<SnapshotList>, Error> {
        self.json(
            Method::GET,
            &format!("{}/snapshots", instance_path(t, n)),
            None,
        )
    }

    pub fn snapshot(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        s: &SnapshotName,
        message: Option<&str>,
    ) -> Result<Answer<Snapshot>, Error> {
        let body = match message {
            Some(m) => serde_json::json!({ "message": m }),
            None => serde_json::json!({}),
        };
        self.json(Method::POST, &snapshot_path(t, n, s), Some(body))
    }

    pub fn delete_snapshot(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        s: &SnapshotName,
    ) -> Result<(), Error> {
        self.send(Method::DELETE, &snapshot_path(t, n, s), None)
            .map(|_| ())
    }

    pub fn restore(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        s: &SnapshotName,
    ) -> Result<Answer<Instance>, Error> {
        self.json(
            Method::POST,
            &format!("{}/restore", snapshot_path(t, n, s)),
            None,
        )
    }

    /// Publishes the snapshot as the current version of template `to`.
    pub fn promote(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        s: &SnapshotName,
        to: &TemplateName,
    ) -> Result<Answer<Template>, Error> {
        self.json(
            Method::POST,
            &format!("{}/promote", snapshot_path(t, n, s)),
            Some(serde_json::json!({ "template": to })),
        )
    }

    /// Starts the download of snapshot `s` as an archive (tar + zstd): the
    /// response, to read the archive from.
    pub fn export(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        s: &SnapshotName,
    ) -> Result<Response, Error> {
        let http = self.transfer_http().map_err(|e| self.transport(e))?;
        let req = self.request(
            &http,
            Method::GET,
            &format!("{}/export", snapshot_path(t, n, s)),
        )?;
        let response = req.send().map_err(|e| self.transport(e))?;
        let status = response.status();
        self.check_version(&response);
        if !status.is_success() {
            let text = response.text().map_err(|e| self.transport(e))?;
            return Err(self.failure(status, &text));
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if !content_type.starts_with("application/zstd") {
            return Err(self.unexpected(
                status.as_u16(),
                &format!("content-type {content_type:?} instead of an archive"),
            ));
        }
        Ok(response)
    }

    /// Creates `t/n` from an archive made by `export`, sent as the body as
    /// it is read.
    pub fn import(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        ttl_seconds: Option<u64>,
        archive: Upload,
    ) -> Result<Answer<Instance>, Error> {
        let mut path = format!("{}/import", instance_path(t, n));
        if let Some(ttl) = ttl_seconds {
            path.push_str(&format!("?ttl={ttl}"));
        }
        let body = match archive {
            Upload::Sized(r, len) => Body::sized(r, len),
            Upload::Stream(r) => Body::new(r),
        };
        let http = self.transfer_http().map_err(|e| self.transport(e))?;
        let req = self
            .request(&http, Method::POST, &path)?
            .header(reqwest::header::CONTENT_TYPE, "application/zstd")
            .body(body);
        let response = req.send().map_err(|e| self.transport(e))?;
        let (status, raw) = self.answer(response)?;
        let Some(raw) = raw else {
            return Err(self.unexpected(status.as_u16(), "an empty body"));
        };
        let value = serde_json::from_value(raw.clone())
            .map_err(|e| self.unexpected(status.as_u16(), &format!("unexpected JSON: {e}")))?;
        Ok(Answer { value, raw })
    }

    pub fn df(&self) -> Result<Answer<DiskUsage>, Error> {
        self.json(Method::GET, "api/v1/df", None)
    }

    pub fn instance(&self, t: &TemplateName, n: &InstanceName) -> Result<Answer<Instance>, Error> {
        self.json(Method::GET, &instance_path(t, n), None)
    }

    /// Removes an instance; `force` removes a protected one too.
    pub fn delete(&self, t: &TemplateName, n: &InstanceName, force: bool) -> Result<(), Error> {
        let mut path = instance_path(t, n);
        if force {
            path.push_str("?force=true");
        }
        self.send(Method::DELETE, &path, None).map(|_| ())
    }

    /// The engine's inspection of the instance's container.
    pub fn container(&self, t: &TemplateName, n: &InstanceName) -> Result<Answer<Value>, Error> {
        self.json(
            Method::GET,
            &format!("{}/container", instance_path(t, n)),
            None,
        )
    }

    fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Answer<T>, Error> {
        let (status, raw) = self.send(method, path, body)?;
        let Some(raw) = raw else {
            return Err(self.unexpected(status.as_u16(), "an empty body"));
        };
        let value = serde_json::from_value(raw.clone())
            .map_err(|e| self.unexpected(status.as_u16(), &format!("unexpected JSON: {e}")))?;
        Ok(Answer { value, raw })
    }

    /// Sends a request; a 2xx answer's JSON body (`None` when empty), or the
    /// error the answer stands for.
    fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Option<Value>), Error> {
        let is_create = method == Method::POST;
        let mut req = self.request(&self.http, method, path)?;
        if is_create {
            req = req.timeout(CREATE_TIMEOUT);
        }
        if let Some(body) = &body {
            req = req.json(body);
        }
        let response = req.send().map_err(|e| self.transport(e))?;
        self.answer(response)
    }

    /// A request to `path` (relative to the base URL), with the token.
    fn request(&self, http: &Http, method: Method, path: &str) -> Result<RequestBuilder, Error> {
        let url = self
            .base
            .join(path)
            .map_err(|e| self.unexpected(0, &e.to_string()))?;
        let mut req: RequestBuilder = http.request(method, url);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        Ok(req)
    }

    /// A 2xx answer's JSON body (`None` when empty), or the error the
    /// answer stands for.
    fn answer(&self, response: Response) -> Result<(StatusCode, Option<Value>), Error> {
        let status = response.status();
        self.check_version(&response);
        let text = response.text().map_err(|e| self.transport(e))?;
        if status.is_success() {
            if text.trim().is_empty() {
                return Ok((status, None));
            }
            let value = serde_json::from_str(&text)
                .map_err(|_| self.unexpected(status.as_u16(), &snippet(&text)))?;
            return Ok((status, Some(value)));
        }
        Err(self.failure(status, &text))
    }

    /// Warns (once) when the answer comes from another version of dollyd;
    /// a success without the header is taken as an older dollyd's.
    fn check_version(&self, response: &Response) {
        let theirs = response
            .headers()
            .get(dolly_types::VERSION_HEADER)
            .and_then(|v| v.to_str().ok());
        crate::version::check(&self.shown, theirs, response.status().is_success());
    }

    /// The error a non-2xx answer with body `text` stands for.
    fn failure(&self, status: StatusCode, text: &str) -> Error {
        let parsed: Option<ErrorBody> = serde_json::from_str(text).ok();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Error::Unauthorized {
                url: self.shown.clone(),
                status: status.as_u16(),
                message: parsed
                    .map(|b| b.error.message)
                    .unwrap_or_else(|| snippet(text)),
            };
        }
        match parsed {
            // dollyd's answer for a path it has no route for: this is not
            // the dollyd we expect (or not its /api/v1).
            Some(b) if b.error.code == "not_found" => {
                self.unexpected(status.as_u16(), &b.error.message)
            }
            Some(b) => Error::Api {
                status: status.as_u16(),
                code: b.error.code,
                message: b.error.message,
            },
            None => self.unexpected(status.as_u16(), &snippet(text)),
        }
    }

    fn unexpected(&self, status: u16, detail: &str) -> Error {
        Error::UnexpectedAnswer {
            url: self.shown.clone(),
            status,
            detail: detail.to_owned(),
        }
    }

    fn transport(&self, e: reqwest::Error) -> Error {
        if e.is_timeout() {
            let seconds = if e.is_connect() {
                CONNECT_TIMEOUT
            } else {
                REQUEST_TIMEOUT
            };
            return Error::Timeout {
                url: self.shown.clone(),
                seconds: seconds.as_secs(),
            };
        }
        if let Some(tls) = tls_cause(&e) {
            return self.tls_failure(tls);
        }
        Error::Unreachable {
            url: self.shown.clone(),
            reason: root_cause(&e),
        }
    }

    /// A TLS failure in one sentence: what is wrong with dollyd's
    /// certificate, or that it does not speak TLS at all.
    fn tls_failure(&self, e: &rustls::Error) -> Error {
        use rustls::CertificateError as C;
        let host = self.base.host_str().unwrap_or_default();
        let ca_hint = if self.roots.is_some() {
            "the --ca-cert file (DOLLY_CA_CERT) is not the CA that signed it"
        } else {
            "no CA the system trusts signed it; give the CA's certificate (or the self-signed one) with --ca-cert FILE or DOLLY_CA_CERT"
        };
        let reason = match e {
            rustls::Error::InvalidCertificate(cert) => match cert {
                C::UnknownIssuer => format!("its certificate is signed by an unknown issuer: {ca_hint}"),
                // What webpki reports when no trusted root fits the chain.
                C::BadSignature | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
                    format!("its certificate is signed by an unknown issuer: {ca_hint}")
                }
                C::NotValidForName => format!("its certificate is not valid for the name {host:?}"),
                C::NotValidForNameContext { presented, .. } => format!(
                    "its certificate is not valid for the name {host:?} (it is for {}); use one of those in --url, or a certificate that names {host:?}",
                    presented
                        .iter()
                        .map(|n| presented_name(n))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                C::Expired => "its certificate has expired; renew it and send dollyd a SIGHUP".to_owned(),
                C::ExpiredContext { not_after, .. } => format!(
                    "its certificate expired on {}; renew it and send dollyd a SIGHUP",
                    unix_time(not_after)
                ),
                C::NotValidYet => "its certificate is not valid yet (check the clocks)".to_owned(),
                C::NotValidYetContext { not_before, .. } => format!(
                    "its certificate is not valid before {} (check the clocks)",
                    unix_time(not_before)
                ),
                C::Revoked => "its certificate has been revoked".to_owned(),
                C::Other(other) if format!("{other:?}").contains("CaUsedAsEndEntity") => {
                    "its certificate is a CA certificate (CA:TRUE), not a server certificate; give dollyd one with CA:FALSE".to_owned()
                }
                other => format!("its certificate was refused ({other:?})"),
            },
            rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
                "it does not speak TLS (is it serving plain http? then use an http:// URL)".to_owned()
            }
            other => format!("the TLS handshake failed ({other})"),
        };
        Error::Tls {
            url: self.shown.clone(),
            reason,
        }
    }
}

/// The body of a create: `dolly_types::v1::CreateInstance`'s shape, with
/// only the fields this CLI sets (the type may grow; the tests check the
/// server's type still accepts it).
/// How a new instance is kept between uses: a standby for fast resets,
/// sleep when idle (dollyd's settings when absent).
#[derive(Debug, Clone, Copy, Default)]
pub struct Keep {
    pub standby: Option<bool>,
    /// Seconds without clients before its server sleeps; `0`: never.
    pub sleep_after: Option<u64>,
}

fn create_body(ttl_seconds: Option<u64>, from: Option<&str>) -> Value {
    let mut body = serde_json::Map::new();
    if let Some(ttl) = ttl_seconds {
        body.insert("ttl".to_owned(), ttl.into());
    }
    if let Some(from) = from {
        body.insert("from".to_owned(), from.into());
    }
    Value::Object(body)
}

// Names hold only [a-z0-9_-]: nothing to encode in paths.
fn instance_path(t: &TemplateName, n: &InstanceName) -> String {
    format!("api/v1/templates/{t}/instances/{n}")
}

fn snapshot_path(t: &TemplateName, n: &InstanceName, s: &SnapshotName) -> String {
    format!("{}/snapshots/{s}", instance_path(t, n))
}

/// The body of `extend`: `dolly_types::v1::Extend`.
pub fn extend_body(ttl_seconds: u64) -> Value {
    serde_json::json!({ "ttl": ttl_seconds })
}

/// The body of `reset`: `dolly_types::v1::Reset`, only what is set.
pub fn reset_body(latest: bool, to: Option<&SnapshotName>) -> Value {
    let mut body = serde_json::Map::new();
    if latest {
        body.insert("latest".to_owned(), true.into());
    }
    if let Some(to) = to {
        body.insert("to".to_owned(), to.as_str().into());
    }
    Value::Object(body)
}

/// The rustls error behind a transport error, if TLS is what failed. An
/// `io::Error` hides its inner error from `source()`, so each one's inner
/// error is looked at too.
fn tls_cause(e: &reqwest::Error) -> Option<&rustls::Error> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        // io::Errors nest (hyper-util wraps the connector's): look inside.
        let mut inner = c;
        loop {
            if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                return Some(tls);
            }
            match inner
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
            {
                Some(next) => inner = next,
                None => break,
            }
        }
        cause = c.source();
    }
    None
}

/// A name a certificate presents, as rustls words it (`DnsName("x")`,
/// `IpAddress(1.2.3.4)`), for people: `x`, `1.2.3.4`.
fn presented_name(n: &str) -> &str {
    let inner = n
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or(n);
    inner.trim_matches('"')
}

/// A certificate's time, for people.
fn unix_time(t: &rustls::pki_types::UnixTime) -> String {
    chrono::DateTime::from_timestamp(t.as_secs() as i64, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| format!("{} (Unix time)", t.as_secs()))
}

/// The innermost cause of a transport error, in words: "connection refused"
/// rather than "error sending request for url (...)".
fn root_cause(e: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    if let Some(io) = cause.downcast_ref::<std::io::Error>() {
        match io.kind() {
            std::io::ErrorKind::ConnectionRefused => return "connection refused".to_owned(),
            std::io::ErrorKind::ConnectionReset => return "connection reset".to_owned(),
            _ => {}
        }
    }
    let text = cause.to_string();
    // io::Error's Display appends " (os error N)": not for people.
    match text.find(" (os error") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
    .to_lowercase()
}

/// The start of a body that is not ours, safe to show on one line.
fn snippet(text: &str) -> String {
    let line: String = text
        .trim()
        .chars()
        .take_while(|c| *c != '\n')
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    if line.is_empty() {
        "an empty body".to_owned()
    } else {
        format!("{line:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_http_urls_with_or_without_a_path() {
        for ok in [
            "http://localhost:5001",
            "http://localhost:5001/",
            "http://127.0.0.1:9/dolly",
        ] {
            let c =
                Client::new(ok, None, &Security::default()).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert!(c.base.path().ends_with('/'), "{ok}");
        }
        let c = Client::new("http://h:1/dolly", None, &Security::default()).expect("client");
        assert_eq!(
            c.base.join("api/v1/templates").expect("join").as_str(),
            "http://h:1/dolly/api/v1/templates"
        );
    }

    #[test]
    fn refuses_urls_it_cannot_use() {
        for bad in ["localhost:5001", "ftp://x", "http://", "not a url"] {
            let e = match Client::new(bad, None, &Security::default()) {
                Ok(_) => panic!("{bad} accepted"),
                Err(e) => e,
            };
            assert!(e.to_string().contains("DOLLY_URL"), "{e}");
        }
    }

    #[test]
    fn https_urls_are_accepted() {
        for ok in ["https://localhost:5001", "https://dolly.invalid/dolly"] {
            Client::new(ok, Some("t"), &Security::default())
                .unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn a_token_never_goes_over_plain_http_to_another_machine() {
        let plain = Security::default();
        for remote in [
            "http://dolly.invalid:5001",
            "http://10.0.0.1:5001",
            "http://[2001:db8::1]:5001",
            "http://localhost.invalid",
        ] {
            let e = match Client::new(remote, Some("secret"), &plain) {
                Ok(_) => panic!("{remote}: a token in clear was accepted"),
                Err(e) => e,
            };
            let text = e.to_string();
            assert!(matches!(e, Error::TokenInClear { .. }), "{remote}: {text}");
            assert!(
                text.contains("--insecure-http") && text.contains("in clear"),
                "{text}"
            );
            assert!(!text.contains("secret"), "{text}");
            // No token, nothing to protect; --insecure-http takes the risk.
            Client::new(remote, None, &plain).expect("no token");
            Client::new(remote, Some(""), &plain).expect("empty token");
            let insecure = Security {
                insecure_http: true,
                ..Security::default()
            };
            Client::new(remote, Some("secret"), &insecure).expect("--insecure-http");
        }
        for local in [
            "http://localhost:5001",
            "http://LOCALHOST.:5001",
            "http://127.0.0.1:5001",
            "http://127.1.2.3:5001",
            "http://[::1]:5001",
        ] {
            Client::new(local, Some("secret"), &plain).unwrap_or_else(|e| panic!("{local}: {e}"));
        }
    }

    #[test]
    fn a_ca_file_that_cannot_be_used_is_named() {
        let dir = std::env::temp_dir().join(format!("dolly-ca-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").expect("write");
        for (path, says) in [
            (dir.join("missing.pem"), "no such file"),
            (junk.clone(), "no CERTIFICATE"),
        ] {
            let security = Security {
                ca_cert: Some(path.clone()),
                insecure_http: false,
            };
            let e = match Client::new("https://localhost:5001", None, &security) {
                Ok(_) => panic!("{} accepted", path.display()),
                Err(e) => e.to_string(),
            };
            assert!(
                e.contains(&path.display().to_string())
                    && e.contains(says)
                    && e.contains("--ca-cert"),
                "{e}"
            );
            // Only https reads it.
            Client::new("http://localhost:5001", None, &security).expect("http ignores it");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn create_bodies_are_what_the_server_accepts() {
        use dolly_types::v1::CreateInstance;
        let with: CreateInstance =
            serde_json::from_value(create_body(Some(3600), None)).expect("accepted");
        assert_eq!(with.ttl, Some(3600));
        assert_eq!(with.from, None);
        let without: CreateInstance =
            serde_json::from_value(create_body(None, None)).expect("accepted");
        assert_eq!(without.ttl, None);
        let branch: CreateInstance =
            serde_json::from_value(create_body(Some(0), Some("alice@before"))).expect("accepted");
        assert_eq!(branch.ttl, Some(0));
        assert_eq!(branch.from.as_deref(), Some("alice@before"));
    }

    #[test]
    fn lifecycle_bodies_are_what_the_server_accepts() {
        use dolly_types::v1::{CreateSnapshot, Extend, Promote, Reset};
        let e: Extend = serde_json::from_value(extend_body(3600)).expect("extend");
        assert_eq!(e.ttl, 3600);
        let r: Reset = serde_json::from_value(reset_body(true, None)).expect("reset");
        assert!(r.latest && r.to.is_none());
        let snap = SnapshotName::parse("before").expect("name");
        let r: Reset = serde_json::from_value(reset_body(false, Some(&snap))).expect("reset");
        assert_eq!(r.to, Some(snap));
        let r: Reset = serde_json::from_value(reset_body(false, None)).expect("reset");
        assert!(!r.latest && r.to.is_none());
        let c: CreateSnapshot =
            serde_json::from_value(serde_json::json!({ "message": "m" })).expect("snapshot");
        assert_eq!(c.message.as_deref(), Some("m"));
        let t = TemplateName::parse("shop-bug").expect("name");
        let p: Promote =
            serde_json::from_value(serde_json::json!({ "template": t })).expect("promote");
        assert_eq!(p.template.as_str(), "shop-bug");
    }

    #[test]
    fn snippets_are_one_short_line() {
        assert_eq!(snippet(""), "an empty body");
        assert_eq!(snippet("<html>\n<body>"), "\"<html>\"");
        assert_eq!(snippet(&"x".repeat(500)).len(), 102);
    }
}
