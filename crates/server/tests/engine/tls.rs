//! TLS end to end: dollyd serving HTTPS with certificates made here (rcgen,
//! no network), the real `dolly` binary speaking it with `--ca-cert`, the
//! real `dollyd` binary reloading its certificate on SIGHUP, and the guards
//! that keep a bearer token from crossing a network in clear.

use crate::common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cli::{dolly, dolly_run, Run};
use common::TestApp;
use dolly_core::config::{Settings, Tls};
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

const TOKEN: &str = "tls-test-token-4f1d";

/// A private CA, and the files a test writes certificates to.
struct Pki {
    dir: tempfile::TempDir,
    ca: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (ca_pem, ca) = make_ca("dolly test CA");
        std::fs::write(dir.path().join("ca.pem"), ca_pem).expect("write ca");
        Self { dir, ca }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn path_str(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// A server certificate for `names` signed by the CA, written to
    /// `cert_file` and `key_file` (0600); returns its DER.
    fn leaf(&self, names: &[&str], cn: &str, cert_file: &str, key_file: &str) -> Vec<u8> {
        self.leaf_with(names, cn, cert_file, key_file, |_| {})
    }

    fn leaf_with(
        &self,
        names: &[&str],
        cn: &str,
        cert_file: &str,
        key_file: &str,
        tweak: impl FnOnce(&mut CertificateParams),
    ) -> Vec<u8> {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        tweak(&mut params);
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.ca).expect("sign");
        self.write(cert_file, &cert.pem(), key_file, &key.serialize_pem());
        cert.der().to_vec()
    }

    /// A self-signed certificate for `names`; returns its DER.
    fn self_signed(&self, names: &[&str], cert_file: &str, key_file: &str) -> Vec<u8> {
        let c = rcgen::generate_simple_self_signed(
            names.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        )
        .expect("self-signed");
        self.write(
            cert_file,
            &c.cert.pem(),
            key_file,
            &c.signing_key.serialize_pem(),
        );
        c.cert.der().to_vec()
    }

    fn write(&self, cert_file: &str, cert: &str, key_file: &str, key: &str) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(self.path(cert_file), cert).expect("write cert");
        std::fs::write(self.path(key_file), key).expect("write key");
        std::fs::set_permissions(self.path(key_file), std::fs::Permissions::from_mode(0o600))
            .expect("chmod key");
    }
}

/// A CA certificate (PEM) and the issuer that signs with it.
fn make_ca(cn: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, cn);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().expect("ca key");
    let cert = params.self_signed(&key).expect("ca cert");
    (cert.pem(), Issuer::new(params, key))
}

/// Settings that serve HTTPS with `cert`/`key` and require [`TOKEN`].
fn tls_on(s: &mut Settings, cert: &Path, key: &Path) {
    s.tls = Some(Tls::load(cert, key).expect("the test certificate loads"));
    s.auth_token = Settings::from_lookup(|k| (k == "auth_token").then(|| TOKEN.to_owned()))
        .expect("settings")
        .auth_token;
}

async fn dolly_token(url: &str, args: &[&str]) -> Run {
    dolly_run(url, args, &[("DOLLY_TOKEN", TOKEN)], None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_creates_lists_and_opens_a_shell_over_https_and_refuses_what_it_cannot_trust() {
    let pki = Pki::new();
    pki.leaf(&["localhost"], "dolly test server", "cert.pem", "key.pem");
    let (cert, key) = (pki.path("cert.pem"), pki.path("key.pem"));
    let app = TestApp::spawn_with(|s| tls_on(s, &cert, &key)).await;
    app.write_dump("shop.sql", &common::shop_dump());
    app.update_ok(&[]).await;
    let port = app.url.rsplit(':').next().expect("port").to_owned();
    let url = format!("https://localhost:{port}");
    let ca = pki.path_str("ca.pem");

    // The "done when": new, through HTTPS with a private CA.
    let r = dolly_token(&url, &["--ca-cert", &ca, "new", "shop", "alice"]).await;
    r.ok();
    assert!(r.stdout.contains("password"), "{r:#?}");
    // ls, show and url as JSON; the CA from the environment this time.
    let r = dolly_run(
        &url,
        &["--json", "ls"],
        &[("DOLLY_TOKEN", TOKEN), ("DOLLY_CA_CERT", &ca)],
        None,
    )
    .await;
    assert_eq!(r.ok().json()["instances"][0]["name"], "alice", "{r:#?}");
    let r = dolly_token(
        &url,
        &["--ca-cert", &ca, "url", "--no-create", "shop", "alice"],
    )
    .await;
    assert!(r.ok().stdout.starts_with("mysql://"), "{r:#?}");
    // shell: the real client, with the credentials that came over TLS.
    let r = dolly_token(
        &url,
        &[
            "--ca-cert",
            &ca,
            "shell",
            "--no-create",
            "shop",
            "alice",
            "-N",
            "-B",
            "-e",
            "SELECT COUNT(*) > 0 FROM customers",
        ],
    )
    .await;
    assert_eq!(r.ok().stdout.trim(), "1", "{r:#?}");

    // Plain http to the TLS port: no answer, and nothing but a failed
    // handshake on the server's side.
    let plain = format!("http://localhost:{port}");
    let r = dolly_token(&plain, &["ls"]).await;
    assert_eq!(r.code, 1, "{r:#?}");

    // The system's roots do not know the private CA.
    let r = dolly_token(&url, &["ls"]).await;
    r.fails_in_one_line(1, "signed by an unknown issuer");
    assert!(r.stderr.contains("--ca-cert"), "{r:#?}");
    // Another CA: refused, and the message says the file is the wrong one.
    let (other_ca, _) = make_ca("some other CA");
    std::fs::write(pki.path("other-ca.pem"), other_ca).expect("write");
    let r = dolly_token(&url, &["--ca-cert", &pki.path_str("other-ca.pem"), "ls"]).await;
    r.fails_in_one_line(1, "signed by an unknown issuer");
    assert!(r.stderr.contains("is not the CA that signed it"), "{r:#?}");
    // The right CA, a name the certificate does not hold.
    let by_ip = format!("https://127.0.0.1:{port}");
    let r = dolly_token(&by_ip, &["--ca-cert", &ca, "ls"]).await;
    r.fails_in_one_line(1, "not valid for the name \"127.0.0.1\"");
    assert!(r.stderr.contains("localhost"), "{r:#?}");
    // A CA file that is not one.
    let r = dolly_token(&url, &["--ca-cert", &pki.path_str("key.pem"), "ls"]).await;
    r.fails_in_one_line(1, "--ca-cert");
    let r = dolly_token(&url, &["--ca-cert", &pki.path_str("nope.pem"), "ls"]).await;
    r.fails_in_one_line(1, "nope.pem");
    assert!(!r.stderr.contains(TOKEN), "{r:#?}");

    // https to something that speaks plain HTTP.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let plain_port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(2) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let r = dolly(&format!("https://localhost:{plain_port}"), &["ls"]).await;
    r.fails_in_one_line(1, "does not speak TLS");

    let r = dolly_token(&url, &["--ca-cert", &ca, "rm", "shop", "alice"]).await;
    r.ok();
}

/// A `dollyd serve` process serving TLS on 127.0.0.1, its log in a file.
struct Dollyd {
    child: Child,
    port: u16,
    log: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

impl Dollyd {
    fn spawn(app: &TestApp, listen: &str, port: u16, env: &[(&str, String)], log: PathBuf) -> Self {
        let stderr = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_dollyd"))
            .arg("serve")
            .envs(app.env())
            .env_remove("DOLLY_AUTH_TOKEN")
            .env_remove("DOLLY_TLS_CERT")
            .env_remove("DOLLY_TLS_KEY")
            .env("DOLLY_LISTEN", format!("{listen}:{port}"))
            .env("RUST_LOG", "info")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn dollyd");
        Self { child, port, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log holds `needle` (or the process ended).
    async fn wait_for_log(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("dollyd ended ({status}) before logging {needle:?}:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in the log:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn hangup(&self) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: a signal to our own child process.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0, "kill -HUP");
    }

    /// Waits until new connections are served `der`.
    async fn wait_for_cert(&mut self, der: &[u8]) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if served_cert(self.port).as_deref() == Some(der) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("dollyd ended ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "the expected certificate is not served:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Dollyd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The leaf certificate (DER) served on 127.0.0.1:`port` to a client that
/// asks for `localhost`, whatever it is (this client checks nothing).
fn served_cert(port: u16) -> Option<Vec<u8>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .ok()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnything(provider)))
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").ok()?;
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).ok()?;
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    sock.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).ok()?;
    }
    conn.peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
}

/// Test only: a verifier that accepts any certificate, to read what is served.
#[derive(Debug)]
struct AcceptAnything(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificate_and_a_bad_file_keeps_the_one_served() {
    let pki = Pki::new();
    let app = TestApp::new_stopped(|_| {}).await;
    // A self-signed certificate to start with: --ca-cert trusts it as it is.
    let first = pki.self_signed(&["localhost"], "cert.pem", "key.pem");
    let tls_env = [
        ("DOLLY_TLS_CERT", pki.path_str("cert.pem")),
        ("DOLLY_TLS_KEY", pki.path_str("key.pem")),
        ("DOLLY_AUTH_TOKEN", TOKEN.to_owned()),
    ];
    let port = free_port();
    let mut d = Dollyd::spawn(&app, "127.0.0.1", port, &tls_env, pki.path("dollyd.log"));
    d.wait_for_log("dollyd listening").await;
    d.wait_for_cert(&first).await;
    let url = format!("https://localhost:{port}");
    dolly_token(&url, &["--ca-cert", &pki.path_str("cert.pem"), "ls"])
        .await
        .ok();
    // Kept for later: the renewed certificate is no longer this one.
    std::fs::copy(pki.path("cert.pem"), pki.path("first.pem")).expect("copy");

    // Renewed in place (a CA-signed one now), then SIGHUP: served without a
    // restart, and the CLI trusts it through the CA.
    let renewed = pki.leaf(&["localhost"], "renewed", "cert.pem", "key.pem");
    assert_ne!(renewed, first);
    d.hangup();
    d.wait_for_cert(&renewed).await;
    d.wait_for_log("TLS certificate reloaded").await;
    let ca = pki.path_str("ca.pem");
    dolly_token(&url, &["--ca-cert", &ca, "ls"]).await.ok();
    let r = dolly_token(&url, &["--ca-cert", &pki.path_str("first.pem"), "ls"]).await;
    r.fails_in_one_line(1, "unknown issuer");

    // A broken key file: the reload fails naming tls_key, the renewed
    // certificate is still served, and dollyd still runs.
    std::fs::write(
        pki.path("key.pem"),
        "-----BEGIN PRIVATE KEY-----\ngarbage\n",
    )
    .expect("break the key");
    d.hangup();
    let log = d.wait_for_log("not reloaded").await;
    let line = log
        .lines()
        .find(|l| l.contains("not reloaded"))
        .expect("the line");
    assert!(line.contains("tls_key"), "{line}");
    assert!(line.contains(&pki.path_str("key.pem")), "{line}");
    assert_eq!(served_cert(port).as_deref(), Some(&renewed[..]));
    assert!(d.child.try_wait().expect("wait").is_none(), "dollyd ended");
    dolly_token(&url, &["--ca-cert", &ca, "ls"]).await.ok();

    // A key that is not the certificate's: refused the same way.
    pki.leaf(&["localhost"], "mismatch", "other.pem", "other-key.pem");
    std::fs::copy(pki.path("other-key.pem"), pki.path("key.pem")).expect("copy");
    d.hangup();
    let log = d.wait_for_log("does not belong").await;
    assert!(log.contains("tls_key"), "{log}");
    assert_eq!(served_cert(port).as_deref(), Some(&renewed[..]));

    // An expired certificate is served if that is what the files hold, and
    // the CLI says so in one sentence.
    let expired = pki.leaf_with(&["localhost"], "expired", "cert.pem", "key.pem", |p| {
        p.not_before = date_time_ymd(2000, 1, 1);
        p.not_after = date_time_ymd(2001, 1, 1);
    });
    d.hangup();
    d.wait_for_cert(&expired).await;
    let r = dolly_token(&url, &["--ca-cert", &ca, "ls"]).await;
    r.fails_in_one_line(1, "its certificate expired on 2001-01-01");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_certificate_file_stops_the_start_naming_the_key() {
    let pki = Pki::new();
    let app = TestApp::new_stopped(|_| {}).await;
    pki.leaf(&["localhost"], "server", "cert.pem", "key.pem");
    std::fs::write(pki.path("junk.pem"), "not PEM at all\n").expect("write");
    for (cert, key, says) in [
        ("junk.pem", "key.pem", "tls_cert"),
        ("missing.pem", "key.pem", "tls_cert"),
        ("cert.pem", "junk.pem", "tls_key"),
    ] {
        let env = [
            ("DOLLY_TLS_CERT", pki.path_str(cert)),
            ("DOLLY_TLS_KEY", pki.path_str(key)),
        ];
        let mut d = Dollyd::spawn(&app, "127.0.0.1", free_port(), &env, pki.path("start.log"));
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = d.child.try_wait().expect("wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "dollyd started with {cert}/{key}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(status.code(), Some(2), "{}", d.log());
        let log = d.log();
        assert!(
            log.contains(says)
                && log.contains(&pki.path_str(if says == "tls_cert" { cert } else { key })),
            "{cert}/{key}: {log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dollyd_warns_when_a_token_would_cross_the_network_in_clear() {
    let pki = Pki::new();
    let app = TestApp::new_stopped(|_| {}).await;
    pki.leaf(&["localhost"], "server", "cert.pem", "key.pem");
    let warning = "cross the network in clear";

    // Beyond loopback, a token, no TLS: warned.
    let token = [("DOLLY_AUTH_TOKEN", TOKEN.to_owned())];
    let mut d = Dollyd::spawn(&app, "0.0.0.0", free_port(), &token, pki.path("a.log"));
    let log = d.wait_for_log("dollyd listening").await;
    assert!(log.contains(warning), "{log}");
    assert!(!log.contains(TOKEN), "the token is never logged: {log}");
    drop(d);

    // The same with TLS: no warning, and the listener says https.
    let with_tls = [
        ("DOLLY_AUTH_TOKEN", TOKEN.to_owned()),
        ("DOLLY_TLS_CERT", pki.path_str("cert.pem")),
        ("DOLLY_TLS_KEY", pki.path_str("key.pem")),
    ];
    let mut d = Dollyd::spawn(&app, "0.0.0.0", free_port(), &with_tls, pki.path("b.log"));
    let log = d.wait_for_log("dollyd listening").await;
    assert!(!log.contains(warning), "{log}");
    assert!(log.contains("https"), "{log}");
    drop(d);

    // Loopback without TLS: nothing crosses a network, no warning.
    let mut d = Dollyd::spawn(&app, "127.0.0.1", free_port(), &token, pki.path("c.log"));
    let log = d.wait_for_log("dollyd listening").await;
    assert!(!log.contains(warning), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_refuses_to_send_a_token_over_plain_http_to_another_machine() {
    // `.invalid` never resolves: nothing can leave this machine.
    let remote = "http://dolly.invalid:5001";
    let refused = "refusing to send the token to http://dolly.invalid:5001 over plain http";
    let r = dolly(remote, &["--token", TOKEN, "ls"]).await;
    r.fails_in_one_line(1, refused);
    assert!(r.stderr.contains("--insecure-http"), "{r:#?}");
    assert!(!r.stderr.contains(TOKEN), "{r:#?}");
    // From the environment, for every command that talks to dollyd.
    for args in [&["ls"][..], &["new", "shop", "x"], &["rm", "shop", "x"]] {
        dolly_token(remote, args)
            .await
            .fails_in_one_line(1, refused);
    }
    // --insecure-http (or DOLLY_INSECURE_HTTP) takes the risk: the request
    // is attempted, and fails only because the name does not resolve.
    let r = dolly_token(remote, &["--insecure-http", "ls"]).await;
    r.fails_in_one_line(1, "cannot reach dollyd");
    let r = dolly_run(
        remote,
        &["ls"],
        &[("DOLLY_TOKEN", TOKEN), ("DOLLY_INSECURE_HTTP", "true")],
        None,
    )
    .await;
    r.fails_in_one_line(1, "cannot reach dollyd");
    // No token: nothing to protect. https: no refusal either.
    dolly(remote, &["ls"])
        .await
        .fails_in_one_line(1, "cannot reach dollyd");
    dolly_token("https://dolly.invalid:5001", &["ls"])
        .await
        .fails_in_one_line(1, "cannot reach dollyd");
}
