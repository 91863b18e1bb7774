//! Settings: defaults, then an optional TOML file, then `DOLLY_*` variables.
//!
//! Every value is read as text and parsed here, so an invalid setting stops
//! the start with a message naming the key and the value.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use dolly_names::NameError;

/// The file read when no `--config` is given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/dolly/dolly.toml";
/// The file name of the forwarders' relay binary (`forward_path`'s
/// default, next to dollyd).
pub const FORWARD_BINARY: &str = "dolly-forward";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid setting {key} = {value:?}: {reason}")]
    Invalid {
        key: &'static str,
        value: String,
        reason: String,
    },
    #[error("cannot read configuration: {0}")]
    Source(#[from] config::ConfigError),
    #[error("settings {a} and {b} contradict each other: {reason}")]
    Contradiction {
        a: &'static str,
        b: &'static str,
        reason: String,
    },
}

/// A secret setting: never printed, not even by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// HTTPS: the certificate chain and private key dollyd serves, from PEM
/// files (`tls_cert`, `tls_key`), read and checked when the settings load
/// and read again on SIGHUP.
#[derive(Clone)]
pub struct Tls {
    /// The certificate chain, leaf first (certbot's `fullchain.pem`).
    pub cert: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1 PEM).
    pub key: PathBuf,
    /// What the files held when they were last read.
    pub identity: Arc<CertifiedKey>,
}

impl std::fmt::Debug for Tls {
    // The paths only: never key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// The cryptography behind dolly's TLS: rustls with ring (no OpenSSL).
pub fn tls_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Tls {
    /// Reads both files and checks them: at least one certificate, one
    /// private key, and the key is the one the first certificate certifies.
    /// Errors name the key (`tls_cert`, `tls_key`) and the path.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, ConfigError> {
        let identity = Arc::new(read_identity(cert, key)?);
        Ok(Self {
            cert: cert.to_owned(),
            key: key.to_owned(),
            identity,
        })
    }

    /// The same files read again (a renewed certificate), checked as at
    /// load.
    pub fn reload(&self) -> Result<Arc<CertifiedKey>, ConfigError> {
        read_identity(&self.cert, &self.key).map(Arc::new)
    }
}

fn read_identity(cert: &Path, key: &Path) -> Result<CertifiedKey, ConfigError> {
    let invalid = |key: &'static str, path: &Path, reason: String| ConfigError::Invalid {
        key,
        value: path.display().to_string(),
        reason,
    };
    let pem_error = |e: rustls::pki_types::pem::Error| match e {
        rustls::pki_types::pem::Error::Io(io) => format!("cannot read it: {io}"),
        other => format!("not a PEM file ({other:?})"),
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| invalid("tls_cert", cert, pem_error(e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("tls_cert", cert, pem_error(e)))?;
    if chain.is_empty() {
        return Err(invalid(
            "tls_cert",
            cert,
            "no CERTIFICATE in it (a PEM file, leaf first, is expected)".into(),
        ));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        let reason = match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no PRIVATE KEY in it (a PEM file is expected)".to_owned()
            }
            other => pem_error(other),
        };
        invalid("tls_key", key, reason)
    })?;
    CertifiedKey::from_der(chain, private, &tls_provider()).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => ConfigError::Contradiction {
            a: "tls_key",
            b: "tls_cert",
            reason: format!(
                "the private key in {} does not belong to the first certificate in {} (the server's own certificate must come first, then its intermediates)",
                key.display(),
                cert.display()
            ),
        },
        rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
            invalid("tls_cert", cert, format!("the first certificate is unusable: {e}"))
        }
        other => invalid("tls_key", key, format!("unusable private key: {other}")),
    })
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

/// The parsed settings. See README.md ("Configuration") for each one.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address the HTTP API binds to.
    pub listen: SocketAddr,
    /// The data folder: dumps, templates, instances, tmp.
    pub data_dir: PathBuf,
    /// The data folder's path as the container engine sees it, when dollyd
    /// itself runs in a container. Defaults to `data_dir`.
    pub host_data_dir: Option<PathBuf>,
    /// Host name given to clients in instance answers.
    pub public_host: String,
    /// Host dollyd connects to when checking an instance is ready.
    pub connect_host: String,
    /// Host address instance ports are published on.
    pub instance_bind: IpAddr,
    /// MariaDB/MySQL image instances and imports run.
    pub image: String,
    /// Prefix of every container name.
    pub container_prefix: String,
    /// Expiry of an instance created without a TTL (`None`: never).
    pub default_ttl: Option<Duration>,
    /// Longest time to live an instance may ask for (`None`: no limit, and
    /// instances may live forever).
    pub max_ttl: Option<Duration>,
    /// Stop an instance no client used for this long (`None`: never).
    pub idle_ttl: Option<Duration>,
    /// Every create keeps a standby for resets (a create body's
    /// `standby` overrides it).
    pub standby: bool,
    /// Every create's server sleeps after this long without clients, and
    /// the next connection wakes it (a create body's `sleep_after`
    /// overrides it; `None`: never).
    pub sleep_after: Option<Duration>,
    /// Template versions kept besides those instances still use.
    pub keep_versions: usize,
    /// Database a dump with no `CREATE DATABASE` is loaded into.
    pub database: String,
    /// Memory limit of an instance's container.
    pub instance_memory: u64,
    /// How long an instance may take to answer `SELECT 1`.
    pub ready_timeout: Duration,
    /// How long one import may take.
    pub import_timeout: Duration,
    /// InnoDB buffer pool of the import server.
    pub import_buffer_pool: u64,
    /// Client sessions that load one dump in parallel, table by table
    /// (`auto`: the number of cores, at least 2).
    pub import_jobs: usize,
    /// How often `serve` removes expired instances.
    pub reap_interval: Duration,
    /// `auto` (FICLONE reflinks when the filesystem has them) or `copy` (a
    /// plain copy, which XFS/btrfs may still turn into shared blocks through
    /// `copy_file_range`; a full copy on ext4).
    pub force_copy: bool,
    /// Bearer token every route but `/healthz` and `/readyz` requires.
    pub auth_token: Option<Secret>,
    /// A bearer token good for `GET /metrics` only (a Prometheus scraper),
    /// besides admins' tokens.
    pub metrics_token: Option<Secret>,
    /// Per-user tokens, roles and quotas (TOML, [`crate::users`]); read at
    /// start and on SIGHUP.
    pub users_file: Option<PathBuf>,
    /// Where events are POSTed (signed with `webhook_secret`).
    pub webhook_urls: Vec<String>,
    /// The HMAC-SHA256 key of `X-Dolly-Signature`.
    pub webhook_secret: Option<Secret>,
    /// The key of masking's deterministic strategies (`NAME.mask.toml`):
    /// the same value masks to the same output under the same key. Never
    /// stored in a template, never logged.
    pub mask_key: Option<Secret>,
    /// The dolly servers a push may go to, by origin (empty: push is
    /// off); any other remote is refused before a connection is made.
    pub push_remotes: Vec<crate::remote::Origin>,
    /// HTTPS with this certificate and key (`tls_cert`, `tls_key`); plain
    /// HTTP when `None`.
    pub tls: Option<Tls>,
    /// Most instances at once (`None`: no limit); beyond it creates get 429.
    pub max_instances: Option<usize>,
    /// Most snapshots kept at once, over all instances (`None`: no
    /// limit); beyond it snapshots get 429.
    pub max_snapshots: Option<usize>,
    /// Most bytes an instance's datadir may add beyond its template
    /// (`None`: no limit). btrfs with quotas enforces it (writes in that
    /// server fail with "Disk quota exceeded"); elsewhere the reaper's
    /// pass stops an instance past it ([`crate::disk_limit`]).
    pub instance_max_disk: Option<u64>,
    /// Creates and imports refuse (507) below this much free disk.
    pub min_free_disk: u64,
    /// Ready instances kept warm per template for instant creates (0: no
    /// pool); `PUT /api/v1/templates/{t}/pool` overrides it per template.
    pub pool_size: usize,
    /// Extra labels put on every container dolly creates.
    pub labels: BTreeMap<String, String>,
    pub log_format: LogFormat,
    /// The `dolly` CLI binary served at `GET /cli/dolly`; `None`: the file
    /// `dolly` next to the running dollyd executable.
    pub cli_path: Option<PathBuf>,
    /// The relay binary forwarders run (`dolly-forward`, mounted into
    /// them); `None`: the file `dolly-forward` next to the running dollyd
    /// executable. See [`Settings::forward_binary`].
    pub forward_path: Option<PathBuf>,
}

impl Settings {
    /// Loads defaults, then `file` (or [`DEFAULT_CONFIG_FILE`] when present),
    /// then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder();
        match file {
            Some(path) => {
                builder = builder.add_source(
                    config::File::new(&path.to_string_lossy(), config::FileFormat::Toml)
                        .required(true),
                );
            }
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                builder = builder.add_source(config::File::new(
                    DEFAULT_CONFIG_FILE,
                    config::FileFormat::Toml,
                ));
            }
            None => {}
        }
        let cfg = builder
            .add_source(config::Environment::with_prefix("DOLLY").try_parsing(false))
            .build()?;
        Self::from_lookup(|key| lookup(&cfg, key))
    }

    /// Settings from defaults only, with `data_dir` set: for tests.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Result<Self, ConfigError> {
        let mut s = Self::from_lookup(|_| None)?;
        s.data_dir = data_dir.into();
        Ok(s)
    }

    /// Parses every key from `get` (which returns the raw text, if set).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let p = Parser { get: &get };
        let settings = Settings {
            listen: p.parse("listen", "0.0.0.0:5001", |v| {
                v.parse::<SocketAddr>().map_err(|e| e.to_string())
            })?,
            data_dir: p.parse("data_dir", "/var/lib/dolly", absolute_path)?,
            host_data_dir: p.optional("host_data_dir", absolute_path)?,
            public_host: p.parse("public_host", "", |v| {
                if v.is_empty() {
                    Ok(gethostname::gethostname().to_string_lossy().into_owned())
                } else {
                    Ok(v.to_owned())
                }
            })?,
            connect_host: p.parse("connect_host", "127.0.0.1", non_empty)?,
            instance_bind: p.parse("instance_bind", "0.0.0.0", |v| {
                v.parse::<IpAddr>().map_err(|e| e.to_string())
            })?,
            image: p.parse("image", "mariadb:lts", non_empty)?,
            container_prefix: p.parse("container_prefix", "dolly-", |v| {
                let ok = !v.is_empty()
                    && v.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
                    && v.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
                if ok {
                    Ok(v.to_owned())
                } else {
                    Err("must match [a-zA-Z0-9][a-zA-Z0-9_.-]*".into())
                }
            })?,
            default_ttl: p.parse("default_ttl", "24h", optional_duration)?,
            max_ttl: p.parse("max_ttl", "none", optional_duration)?,
            idle_ttl: p.parse("idle_ttl", "none", optional_duration)?,
            standby: p.parse("standby", "false", |v| match v {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err("expected true or false".into()),
            })?,
            sleep_after: p.parse("sleep_after", "none", optional_duration)?,
            keep_versions: p.parse("keep_versions", "2", |v| match v.parse::<usize>() {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err("expected a whole number, at least 1".into()),
            })?,
            database: p.parse("database", "default", |v| {
                dolly_names::TemplateName::parse(v)
                    .map(String::from)
                    .map_err(|e: NameError| e.to_string())
            })?,
            instance_memory: p.parse("instance_memory", "256MiB", byte_size)?,
            ready_timeout: p.parse("ready_timeout", "60s", duration)?,
            import_timeout: p.parse("import_timeout", "6h", duration)?,
            import_buffer_pool: p.parse("import_buffer_pool", "1GiB", byte_size)?,
            import_jobs: p.parse("import_jobs", "auto", |v| match v {
                "auto" => Ok(std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2)
                    .max(2)),
                _ => match v.parse::<usize>() {
                    Ok(n) if (1..=256).contains(&n) => Ok(n),
                    _ => Err("expected \"auto\" or a whole number from 1 to 256".into()),
                },
            })?,
            reap_interval: p.parse("reap_interval", "5s", duration)?,
            force_copy: p.parse("clone", "auto", |v| match v {
                "auto" => Ok(false),
                "copy" => Ok(true),
                _ => Err("expected \"auto\" or \"copy\"".into()),
            })?,
            auth_token: match p.optional("auth_token", |v| Ok(v.to_owned()))? {
                Some(t) => Some(Secret(t)),
                None => p
                    .optional("auth_token_file", |v| {
                        std::fs::read_to_string(v)
                            .map(|t| t.trim().to_owned())
                            .map_err(|e| format!("cannot read the token file: {e}"))
                            .and_then(|t| {
                                if t.is_empty() {
                                    Err("the token file is empty".into())
                                } else {
                                    Ok(t)
                                }
                            })
                    })?
                    .map(Secret),
            },
            metrics_token: p.optional("metrics_token", |v| Ok(Secret(v.to_owned())))?,
            users_file: p.optional("users_file", absolute_path)?,
            webhook_urls: p.parse("webhook_urls", "", webhook_urls)?,
            webhook_secret: p.optional("webhook_secret", |v| Ok(Secret(v.to_owned())))?,
            mask_key: p.optional("mask_key", |v| {
                if v.len() >= 16 {
                    Ok(Secret(v.to_owned()))
                } else {
                    Err("must be at least 16 bytes".into())
                }
            })?,
            push_remotes: p.parse("push_remotes", "", crate::remote::parse_origins)?,
            tls: {
                let cert = p.optional("tls_cert", absolute_path)?;
                let key = p.optional("tls_key", absolute_path)?;
                if p.optional("tls_client_ca", |v| Ok(v.to_owned()))?.is_some() {
                    return Err(ConfigError::Invalid {
                        key: "tls_client_ca",
                        value: (p.get)("tls_client_ca").unwrap_or_default(),
                        reason: "client certificates are not supported: clients authenticate with auth_token; put a TLS proxy that checks client certificates in front of dollyd".into(),
                    });
                }
                match (cert, key) {
                    (Some(cert), Some(key)) => Some(Tls::load(&cert, &key)?),
                    (None, None) => None,
                    (Some(_), None) => {
                        return Err(ConfigError::Contradiction {
                            a: "tls_cert",
                            b: "tls_key",
                            reason: "tls_cert is set but tls_key is not: HTTPS needs both".into(),
                        })
                    }
                    (None, Some(_)) => {
                        return Err(ConfigError::Contradiction {
                            a: "tls_key",
                            b: "tls_cert",
                            reason: "tls_key is set but tls_cert is not: HTTPS needs both".into(),
                        })
                    }
                }
            },
            max_instances: p.parse("max_instances", "none", optional_count)?,
            max_snapshots: p.parse("max_snapshots", "none", optional_count)?,
            instance_max_disk: p.parse("instance_max_disk", "none", |v| match v {
                "" | "none" | "0" => Ok(None),
                _ => byte_size(v).map(Some),
            })?,
            min_free_disk: p.parse("min_free_disk", "1GiB", |v| {
                if v == "0" {
                    Ok(0)
                } else {
                    byte_size(v)
                }
            })?,
            pool_size: p.parse("pool_size", "0", |v| {
                v.parse::<usize>()
                    .map_err(|_| "expected a whole number (0: no pool)".into())
            })?,
            labels: p.parse("labels", "", labels)?,
            log_format: p.parse("log_format", "human", |v| match v {
                "human" => Ok(LogFormat::Human),
                "json" => Ok(LogFormat::Json),
                _ => Err("expected \"human\" or \"json\"".into()),
            })?,
            cli_path: p.optional("cli_path", absolute_path)?,
            forward_path: p.optional("forward_path", absolute_path)?,
        };
        settings.check_consistency()?;
        Ok(settings)
    }

    /// Where the forwarders' relay binary is: `forward_path`, else
    /// `dolly-forward` next to the running executable (`None`: that path
    /// is unknown).
    pub fn forward_binary(&self) -> Option<PathBuf> {
        match &self.forward_path {
            Some(p) => Some(p.clone()),
            None => std::env::current_exe()
                .ok()
                .map(|exe| exe.with_file_name(FORWARD_BINARY)),
        }
    }

    /// Settings that each parse but cannot hold together.
    fn check_consistency(&self) -> Result<(), ConfigError> {
        if !self.webhook_urls.is_empty() && self.webhook_secret.is_none() {
            return Err(ConfigError::Contradiction {
                a: "webhook_urls",
                b: "webhook_secret",
                reason: "webhook_urls is set but webhook_secret is not: receivers could not tell dolly's events from forgeries".into(),
            });
        }
        if let (Some(max), Some(default)) = (self.max_ttl, self.default_ttl) {
            if max < default {
                return Err(ConfigError::Contradiction {
                    a: "max_ttl",
                    b: "default_ttl",
                    reason: format!(
                        "max_ttl ({}) is below default_ttl ({}): every create without a ttl would be refused",
                        humantime::format_duration(max),
                        humantime::format_duration(default)
                    ),
                });
            }
        }
        if let (Some(max), None) = (self.max_ttl, self.default_ttl) {
            return Err(ConfigError::Contradiction {
                a: "max_ttl",
                b: "default_ttl",
                reason: format!(
                    "max_ttl ({}) is set but default_ttl is none: every create without a ttl would be refused",
                    humantime::format_duration(max)
                ),
            });
        }
        Ok(())
    }

    /// The data folder as the engine sees it (for bind mounts).
    pub fn engine_data_dir(&self) -> &Path {
        self.host_data_dir.as_deref().unwrap_or(&self.data_dir)
    }
}

/// A key's text: a string as written, a TOML list joined by commas.
fn lookup(cfg: &config::Config, key: &str) -> Option<String> {
    cfg.get_string(key).ok().or_else(|| {
        cfg.get_array(key).ok().map(|items| {
            items
                .into_iter()
                .filter_map(|v| v.into_string().ok())
                .collect::<Vec<_>>()
                .join(",")
        })
    })
}

struct Parser<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
}

impl Parser<'_> {
    fn parse<T>(
        &self,
        key: &'static str,
        default: &str,
        f: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let value = (self.get)(key).unwrap_or_else(|| default.to_owned());
        f(value.trim()).map_err(|reason| ConfigError::Invalid { key, value, reason })
    }

    fn optional<T>(
        &self,
        key: &'static str,
        f: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        match (self.get)(key) {
            Some(v) if !v.trim().is_empty() => self.parse(key, "", f).map(Some),
            _ => Ok(None),
        }
    }
}

fn non_empty(v: &str) -> Result<String, String> {
    if v.is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(v.to_owned())
    }
}

fn absolute_path(v: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(v);
    if p.is_absolute() {
        Ok(p)
    } else {
        Err("must be an absolute path".into())
    }
}

/// `30s`, `15m`, `2h`, `3d`, or plain seconds.
pub fn duration(v: &str) -> Result<Duration, String> {
    if let Ok(secs) = v.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(v).map_err(|e| format!("not a duration ({e}); try 30s, 15m, 2h"))
}

/// A duration, or `0`/`none`/`never` for none.
/// Comma-separated `http://` URLs (https is not supported yet: relay
/// through a local proxy).
fn webhook_urls(v: &str) -> Result<Vec<String>, String> {
    let mut urls = Vec::new();
    for url in v.split(',').map(str::trim).filter(|u| !u.is_empty()) {
        if url.starts_with("https://") {
            return Err(format!("{url:?}: https webhooks are not supported yet; point webhook_urls at an http:// relay on a trusted network"));
        }
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url:?} is not an http:// URL"))?;
        if rest.is_empty() || rest.starts_with('/') || url.contains(char::is_whitespace) {
            return Err(format!("{url:?} has no host"));
        }
        urls.push(url.to_owned());
    }
    Ok(urls)
}

fn optional_duration(v: &str) -> Result<Option<Duration>, String> {
    match v {
        "" | "0" | "none" | "never" => Ok(None),
        _ => duration(v).map(Some),
    }
}

/// A limit on a count: a whole number, or `none` (also empty or 0).
fn optional_count(v: &str) -> Result<Option<usize>, String> {
    match v {
        "" | "none" | "0" => Ok(None),
        _ => v
            .parse::<usize>()
            .map(Some)
            .map_err(|_| "expected a whole number or \"none\"".into()),
    }
}

fn byte_size(v: &str) -> Result<u64, String> {
    let size: bytesize::ByteSize = v
        .parse()
        .map_err(|e| format!("not a size ({e}); try 256MiB"))?;
    if size.as_u64() == 0 {
        return Err("must be greater than zero".into());
    }
    Ok(size.as_u64())
}

fn labels(v: &str) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    for pair in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, val) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair:?} is not key=value"))?;
        if k.is_empty() || k.starts_with("dolly.") || k == "managed-by" {
            return Err(format!("label key {k:?} is empty or reserved"));
        }
        map.insert(k.to_owned(), val.to_owned());
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|key| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
    }

    #[test]
    fn defaults() {
        let s = with(&[]).unwrap();
        assert_eq!(s.listen.to_string(), "0.0.0.0:5001");
        assert_eq!(s.data_dir, PathBuf::from("/var/lib/dolly"));
        assert_eq!(s.container_prefix, "dolly-");
        assert_eq!(s.database, "default");
        assert_eq!(s.default_ttl, Some(Duration::from_secs(86400)));
        assert!(!s.public_host.is_empty());
    }

    #[test]
    fn invalid_values_name_the_key_and_value() {
        let err = with(&[("listen", "nope")]).unwrap_err().to_string();
        assert!(err.contains("listen") && err.contains("nope"), "{err}");
        let err = with(&[("data_dir", "relative")]).unwrap_err().to_string();
        assert!(err.contains("data_dir"), "{err}");
        let err = with(&[("instance_memory", "lots")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("instance_memory") && err.contains("lots"),
            "{err}"
        );
        let err = with(&[("default_ttl", "soon")]).unwrap_err().to_string();
        assert!(err.contains("default_ttl"), "{err}");
    }

    #[test]
    fn instance_max_disk_takes_a_size_or_none() {
        assert_eq!(with(&[]).unwrap().instance_max_disk, None);
        let s = with(&[("instance_max_disk", "40MiB")]).unwrap();
        assert_eq!(s.instance_max_disk, Some(40 * 1024 * 1024));
        assert_eq!(
            with(&[("instance_max_disk", "none")])
                .unwrap()
                .instance_max_disk,
            None
        );
        let err = with(&[("instance_max_disk", "big")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("instance_max_disk") && err.contains("big"),
            "{err}"
        );
    }

    #[test]
    fn contradictory_ttls_stop_the_start_naming_both_keys() {
        let err = with(&[("default_ttl", "24h"), ("max_ttl", "1h")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("max_ttl") && err.contains("default_ttl"),
            "{err}"
        );
        assert!(with(&[("default_ttl", "1h"), ("max_ttl", "24h")]).is_ok());
        let err = with(&[("default_ttl", "none"), ("max_ttl", "24h")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("default_ttl"), "{err}");
    }

    #[test]
    fn parses_values() {
        let s = with(&[
            ("default_ttl", "none"),
            ("instance_memory", "512MiB"),
            ("labels", "team=qa, ci=1"),
        ])
        .unwrap();
        assert_eq!(s.default_ttl, None);
        assert_eq!(s.instance_memory, 512 * 1024 * 1024);
        assert_eq!(s.labels.get("ci").map(String::as_str), Some("1"));
    }

    #[test]
    fn the_example_file_holds_every_default() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/dolly.toml.example"
        );
        let cfg = config::Config::builder()
            .add_source(config::File::new(path, config::FileFormat::Toml))
            .build()
            .unwrap();
        let from_file = Settings::from_lookup(|k| lookup(&cfg, k)).unwrap();
        let defaults = with(&[]).unwrap();
        assert_eq!(format!("{from_file:?}"), format!("{defaults:?}"));
    }

    /// A certificate for `localhost` and its key, as PEM.
    fn self_signed() -> (String, String) {
        let c = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        (c.cert.pem(), c.signing_key.serialize_pem())
    }

    #[test]
    fn tls_files_are_read_and_checked_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = |n: &str| dir.path().join(n).display().to_string();
        let (cert, key) = self_signed();
        let (_, other_key) = self_signed();
        std::fs::write(path("cert.pem"), &cert).unwrap();
        std::fs::write(path("key.pem"), &key).unwrap();
        std::fs::write(path("other.pem"), &other_key).unwrap();
        std::fs::write(path("junk.pem"), "not a certificate\n").unwrap();

        let s = with(&[
            ("tls_cert", &path("cert.pem")),
            ("tls_key", &path("key.pem")),
        ])
        .unwrap();
        let tls = s.tls.expect("tls");
        assert_eq!(tls.identity.cert.len(), 1);
        assert!(tls.reload().is_ok());
        // Debug shows paths, never key material.
        let debug = format!("{tls:?}");
        assert!(
            debug.contains("key.pem") && !debug.contains("PRIVATE"),
            "{debug}"
        );

        let fails = |pairs: &[(&str, &str)], names: &[&str]| {
            let err = with(pairs).unwrap_err().to_string();
            for n in names {
                assert!(err.contains(n), "{n} not in {err}");
            }
            err
        };
        let err = fails(
            &[
                ("tls_cert", &path("missing.pem")),
                ("tls_key", &path("key.pem")),
            ],
            &["tls_cert", "missing.pem"],
        );
        assert!(err.contains("cannot read"), "{err}");
        let err = fails(
            &[
                ("tls_cert", &path("junk.pem")),
                ("tls_key", &path("key.pem")),
            ],
            &["tls_cert", "junk.pem"],
        );
        assert!(err.contains("no CERTIFICATE"), "{err}");
        // A key where the certificate belongs, and the other way round.
        fails(
            &[
                ("tls_cert", &path("key.pem")),
                ("tls_key", &path("key.pem")),
            ],
            &["tls_cert"],
        );
        let err = fails(
            &[
                ("tls_cert", &path("cert.pem")),
                ("tls_key", &path("cert.pem")),
            ],
            &["tls_key"],
        );
        assert!(err.contains("no PRIVATE KEY"), "{err}");
        let err = fails(
            &[
                ("tls_cert", &path("cert.pem")),
                ("tls_key", &path("other.pem")),
            ],
            &["tls_key", "tls_cert"],
        );
        assert!(err.contains("does not belong"), "{err}");
        fails(&[("tls_cert", &path("cert.pem"))], &["tls_cert", "tls_key"]);
        fails(&[("tls_key", &path("key.pem"))], &["tls_cert", "tls_key"]);
        fails(
            &[("tls_cert", "cert.pem"), ("tls_key", &path("key.pem"))],
            &["tls_cert", "absolute"],
        );
        let err = fails(
            &[
                ("tls_cert", &path("cert.pem")),
                ("tls_key", &path("key.pem")),
                ("tls_client_ca", &path("cert.pem")),
            ],
            &["tls_client_ca"],
        );
        assert!(err.contains("not supported"), "{err}");
    }

    #[test]
    fn environment_overrides_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dolly.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:7000\"\nimage = \"from-file\"\n",
        )
        .unwrap();
        // Only this test sets DOLLY_IMAGE.
        unsafe { std::env::set_var("DOLLY_IMAGE", "from-env") };
        let s = Settings::load(Some(&file)).unwrap();
        unsafe { std::env::remove_var("DOLLY_IMAGE") };
        assert_eq!(s.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(s.image, "from-env");
    }

    #[test]
    fn push_remotes_are_origins_from_a_list_or_commas() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dolly.toml");
        std::fs::write(
            &file,
            "push_remotes = [\"http://staging:5001\", \"https://prod.example/\"]\n",
        )
        .unwrap();
        let s = Settings::load(Some(&file)).unwrap();
        let got: Vec<String> = s.push_remotes.iter().map(|o| o.to_string()).collect();
        assert_eq!(got, ["http://staging:5001", "https://prod.example:443"]);
        let s = with(&[("push_remotes", "http://a:1,http://b:2")]).unwrap();
        assert_eq!(s.push_remotes.len(), 2);
        assert!(with(&[]).unwrap().push_remotes.is_empty());
        let e = with(&[("push_remotes", "http://a:1/any/path")]).unwrap_err();
        assert!(e.to_string().contains("push_remotes"), "{e}");
    }
}
