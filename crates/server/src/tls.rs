//! HTTPS: rustls (ring, no OpenSSL) serving the certificate of `tls_cert`
//! and `tls_key`, swapped on SIGHUP without a restart.
//!
//! The files are read and checked by [`dolly_core::config::Tls`], at start
//! (a bad file stops the start naming the key) and on every SIGHUP (a bad
//! file keeps the certificate being served, and the error names the key).

use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, RwLock};

use dolly_core::config::{tls_provider, ConfigError, Tls};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tracing::{error, info, warn};

/// The certificate being served, replaced in place by [`CertStore::reload`].
#[derive(Debug)]
pub struct CertStore {
    files: Tls,
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertStore {
    /// Serves what `tls` was loaded with.
    pub fn new(tls: &Tls) -> Arc<Self> {
        Arc::new(Self {
            current: RwLock::new(Arc::clone(&tls.identity)),
            files: tls.clone(),
        })
    }

    /// The certificate (chain and key) being served.
    pub fn current(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Reads the files again. On success new handshakes get the new
    /// certificate (open connections keep theirs); on failure nothing
    /// changes. Returns whether the certificate changed.
    pub fn reload(&self) -> Result<bool, ConfigError> {
        let fresh = self.files.reload()?;
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        let changed = current.cert != fresh.cert;
        *current = fresh;
        Ok(changed)
    }

    /// The rustls configuration of the listener: TLS 1.2 and 1.3 with
    /// rustls's safe defaults (forward-secret AEAD suites only), no client
    /// certificates, the certificate from this store.
    pub fn server_config(self: &Arc<Self>) -> Result<ServerConfig, rustls::Error> {
        let config = ServerConfig::builder_with_provider(tls_provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        Ok(config)
    }

    /// Warns when the private key file is readable by anyone but its owner.
    pub fn warn_if_key_exposed(&self) {
        let key = &self.files.key;
        if let Ok(meta) = std::fs::metadata(key) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                warn!(
                    tls_key = %key.display(),
                    mode = format!("{mode:04o}"),
                    "the TLS private key is readable by other users: chmod 600 it (owned by the user dollyd runs as)"
                );
            }
        }
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// Reloads the certificate on every SIGHUP (`systemctl reload dollyd`,
/// `docker kill -s HUP`). Without TLS a SIGHUP is logged and ignored, so it
/// never stops the service.
pub async fn reload_on_sighup(
    mut hangups: tokio::signal::unix::Signal,
    store: Option<Arc<CertStore>>,
) {
    while hangups.recv().await.is_some() {
        let Some(store) = &store else {
            info!("SIGHUP: nothing to reload (no tls_cert/tls_key configured)");
            continue;
        };
        match store.reload() {
            Ok(true) => info!(
                tls_cert = %store.files.cert.display(),
                tls_key = %store.files.key.display(),
                "SIGHUP: TLS certificate reloaded; new connections get the new one"
            ),
            Ok(false) => info!(
                tls_cert = %store.files.cert.display(),
                "SIGHUP: TLS certificate read again, unchanged"
            ),
            Err(e) => {
                error!("SIGHUP: TLS certificate not reloaded, still serving the previous one: {e}")
            }
        }
        store.warn_if_key_exposed();
    }
}
