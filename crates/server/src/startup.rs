//! `Application::build(settings)`: connect, reconcile, bind; then serve.
//!
//! Tests build it with `listen = 127.0.0.1:0` and read the bound address.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use tracing::{info, warn};

use crate::api::{self, AppState};
use crate::tls::{self, CertStore};
use dolly_core::config::Settings;
use dolly_core::context::Context;
use dolly_core::instance::InstanceError;
use dolly_core::instance::Manager;
use dolly_core::store::FolderLock;
use dolly_core::store::StoreError;
use dolly_core::users::{Users, UsersError};
use dolly_engine::{DockerEngine, Engine, EngineError};

/// Why dollyd (or a one-shot command) did not start: each names what to
/// fix. The binary prints it and exits non-zero.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("the container engine is needed {what}: {source}")]
    EngineNeeded {
        what: &'static str,
        #[source]
        source: EngineError,
    },
    #[error("cannot match state with the engine: {0}")]
    Reconcile(#[from] InstanceError),
    #[error(transparent)]
    Users(#[from] UsersError),
    #[error("{0}; while it serves, ask it to reap: POST /api/v1/reap (dolly reap)")]
    Serving(StoreError),
    #[error("cannot handle SIGHUP: {0}")]
    Signal(std::io::Error),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
}

pub struct Application {
    address: SocketAddr,
    server: Server,
    manager: Arc<Manager>,
    /// The certificate served over HTTPS (`None`: plain HTTP).
    tls: Option<Arc<CertStore>>,
    /// SIGHUP, taken over from the default (which would end the process)
    /// at build: reloads the certificate.
    hangups: tokio::signal::unix::Signal,
    /// Who the bearer tokens stand for; `users_file` reloaded on SIGHUP.
    users: Arc<Users>,
    /// One dollyd serves a data folder: held until the server ends.
    _lock: FolderLock,
}

impl Application {
    /// Connects to the Docker Engine, reconciles state and binds.
    pub async fn build(mut settings: Settings) -> Result<Self, StartupError> {
        let engine = connect_engine(&mut settings).await?;
        Self::build_with_engine(settings, engine).await
    }

    /// As [`Application::build`], with any engine.
    pub async fn build_with_engine(
        settings: Settings,
        engine: Arc<dyn Engine>,
    ) -> Result<Self, StartupError> {
        Self::build_with_context(Context::new(settings, engine)?).await
    }

    /// As [`Application::build`], over a context made by the caller (the
    /// fast tests: a fake engine, its prober, a known image).
    pub async fn build_with_context(ctx: Context) -> Result<Self, StartupError> {
        crate::install_crypto_provider();
        let ctx = Arc::new(ctx);
        // Before any cleanup: a second serve must not touch a live one's work.
        let lock = ctx.lock_folder("serve")?;
        info!(
            data_dir = %ctx.settings().data_dir.display(),
            clone = ctx.clone_mode().as_str(),
            "data folder ready ({})",
            match ctx.clone_mode() {
                dolly_core::clone::CloneMode::Reflink => "copy-on-write clones",
                dolly_core::clone::CloneMode::Copy =>
                    "no reflinks on this filesystem: instances are full copies",
            }
        );
        let manager = Arc::new(Manager::new(Arc::clone(&ctx)));
        // Before anything can happen: events from the start on.
        crate::webhooks::start(&ctx);
        match ctx.ping_engine().await {
            Ok(()) => {
                manager.reconcile().await?;
                let healed = manager.heal(true).await?;
                if healed > 0 {
                    info!(
                        healed,
                        "instances whose server had exited were started again"
                    );
                }
            }
            Err(e) => warn!(error = %e, "engine unreachable at start; serving anyway"),
        }
        if !ctx.settings().listen.ip().is_loopback() && ctx.settings().auth_token.is_none() {
            warn!(
                listen = %ctx.settings().listen,
                "listening beyond loopback with no auth_token: anyone who reaches this port can create and remove databases (set DOLLY_AUTH_TOKEN)"
            );
        }
        let loopback = ctx.settings().listen.ip().is_loopback();
        if !loopback && ctx.settings().auth_token.is_some() && ctx.settings().tls.is_none() {
            warn!(
                listen = %ctx.settings().listen,
                "listening beyond loopback with an auth_token but no TLS: the token, and every instance's password in the answers, cross the network in clear (set tls_cert and tls_key, or put a TLS proxy in front and listen on 127.0.0.1)"
            );
        }
        let users = Arc::new(Users::load(
            ctx.settings().users_file.as_deref(),
            ctx.settings().auth_token.clone(),
        )?);
        if let Some(file) = users.file() {
            info!(users_file = %file.display(), users = users.count(), "users loaded");
            if ctx.settings().instance_max_disk.is_none() {
                warn!(
                    data_dir = %ctx.settings().data_dir.display(),
                    "users share the data folder's disk: no instance_max_disk is set, so a member's server can fill it (min_free_disk only refuses new creates, snapshots and imports below it)"
                );
            }
        }
        let tls = ctx.settings().tls.as_ref().map(CertStore::new);
        if let Some(store) = &tls {
            store.warn_if_key_exposed();
        }
        // Before binding: from now on a SIGHUP reloads instead of ending us.
        let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(StartupError::Signal)?;
        let wanted = ctx.settings().listen;
        let listen_error = |source| StartupError::Listen {
            address: wanted,
            source,
        };
        let listener = TcpListener::bind(wanted).map_err(listen_error)?;
        let address = listener.local_addr().map_err(listen_error)?;
        let state = web::Data::new(AppState::new(
            Arc::clone(&manager),
            ctx.settings().auth_token.clone(),
            Arc::clone(&users),
        ));
        let server = HttpServer::new(move || {
            App::new()
                .wrap(actix_web::middleware::from_fn(api::require_token))
                .wrap(api::json_errors())
                // Outside the token check: the UI's cookie becomes its header.
                .wrap(actix_web::middleware::from_fn(crate::ui::session))
                .wrap(actix_web::middleware::from_fn(api::head_as_get))
                .wrap(tracing_actix())
                .wrap(api::version_header())
                .app_data(state.clone())
                .configure(crate::ui::configure)
                .configure(api::configure)
        });
        let server = match &tls {
            Some(store) => server
                .listen_rustls_0_23(listener, store.server_config()?)
                .map_err(listen_error)?,
            None => server.listen(listener).map_err(listen_error)?,
        }
        .shutdown_timeout(30)
        .run();
        info!(
            %address,
            scheme = if tls.is_some() { "https" } else { "http" },
            "dollyd listening"
        );
        Ok(Self {
            address,
            server,
            manager,
            tls,
            hangups,
            users,
            _lock: lock,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Whether the API is served over HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serves until the server stops (SIGINT/SIGTERM), reaping expired
    /// instances in the background.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let manager = Arc::clone(&self.manager);
        let interval = manager.settings().reap_interval;
        let reaper = tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            loop {
                tick.tick().await;
                if let Err(e) = manager.reap_expired().await {
                    warn!(error = %e, "reaper pass failed");
                }
            }
        });
        // Aborted also when this future is dropped (a test stopping it).
        let _reaper = AbortOnDrop(reaper);
        let _reloader = AbortOnDrop(tokio::spawn(tls::reload_on_sighup(self.hangups, self.tls)));
        let _users = AbortOnDrop(tokio::spawn(api::reload_users_on_sighup(self.users)));
        let pool = AbortOnDrop(self.manager.spawn_pool_refill());
        let _standbys = AbortOnDrop(self.manager.spawn_standby_keeper());
        let _waker = AbortOnDrop(self.manager.spawn_waker());
        let result = self.server.await;
        // Stopped cleanly: the pool's servers go with it (instances stay).
        drop(pool);
        self.manager.drain_pools().await;
        result
    }
}

/// Aborts a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Connects to the Docker Engine. When dollyd runs in a container and
/// `host_data_dir` is not set, it is read from our own container's mounts.
pub async fn connect_engine(settings: &mut Settings) -> Result<Arc<dyn Engine>, StartupError> {
    let engine = DockerEngine::connect().await?;
    if settings.host_data_dir.is_none() {
        if let Some(host) = engine.host_path_of(&settings.data_dir).await {
            info!(host_data_dir = %host.display(), "data folder as the engine sees it, from our own container's mounts");
            settings.host_data_dir = Some(host);
        }
    }
    Ok(Arc::new(engine))
}

/// What the one-shot commands (`update`, `reap`) work with: the engine,
/// which must answer, and the context over the data folder.
pub async fn command_context(
    mut settings: Settings,
    what: &'static str,
) -> Result<Arc<Context>, StartupError> {
    let engine = connect_engine(&mut settings).await?;
    engine
        .ping()
        .await
        .map_err(|source| StartupError::EngineNeeded { what, source })?;
    Ok(Arc::new(Context::new(settings, engine)?))
}

/// `dollyd reap`: the context and the data folder's lock, so it never runs
/// beside a `serve` (ask the serving process instead: `POST /api/v1/reap`,
/// `dolly reap`) nor beside another `reap`.
pub async fn reap_context(settings: Settings) -> Result<(Arc<Context>, FolderLock), StartupError> {
    let ctx = command_context(settings, "to reap").await?;
    let lock = ctx.lock_folder("reap").map_err(StartupError::Serving)?;
    Ok((ctx, lock))
}

/// A request log line with method, path, status and duration.
fn tracing_actix() -> actix_web::middleware::Logger {
    actix_web::middleware::Logger::new("%r %s %Dms").log_target("dolly::http")
}
