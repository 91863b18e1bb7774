//! Authorization by construction: the only doors from a request to the
//! instance manager.
//!
//! [`AppState`] keeps the [`Manager`] in a private field: no handler (in
//! `api::v1`, `api::myaas`, `api::push`, `ui`) can name it. A handler
//! reaches
//! - one instance's operations through an [`OwnedInstance`] (or an
//!   [`OwnedSnapshot`]), an extractor that parses the path's names and
//!   checks the caller may see that instance in one step: another
//!   member's instance answers exactly as an absent one (404);
//! - the admin-only operations (pools, promote, reap, disk use,
//!   quarantine, metrics) through an [`Admin`], an extractor that answers
//!   403 to members;
//! - what every caller may do without a name (list what they may see,
//!   create or import an instance they then own, read templates) through
//!   [`AppState`]'s methods that take the [`Caller`].
//!
//! So a new handler that forgets the check does not compile, rather than
//! leaking: there is nothing to forget.

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::web::Bytes;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use dolly_core::config::Secret;
use dolly_core::config::Settings;
use dolly_core::instance::{
    CreateOptions, Instance, InstanceError, Manager, PoolStatus, Readiness, ResetTarget,
    SchemaDiff, SchemaExplain, SnapshotMeta, Source,
};
use dolly_core::metrics::Metrics;
use dolly_core::store::StoreError;
use dolly_core::users::Users;
use dolly_types::v1;
use dolly_types::{InstanceName, SnapshotName, TemplateName};
use futures_util::future::LocalBoxFuture;

use super::Caller;
use crate::error::ApiError;
use crate::wire::ToWire;

/// An archive's bytes as they arrive (export's and import's stream).
pub type Chunks = tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>;

/// What handlers share. The manager is private: see the module docs.
pub struct AppState {
    manager: Arc<Manager>,
    pub auth_token: Option<Secret>,
    /// Who a bearer token stands for (`users_file` and `auth_token`).
    pub users: Arc<Users>,
}

impl AppState {
    pub fn new(manager: Arc<Manager>, auth_token: Option<Secret>, users: Arc<Users>) -> Self {
        Self {
            manager,
            auth_token,
            users,
        }
    }

    /// dollyd's settings (public host, tokens, push remotes, ...).
    pub fn settings(&self) -> &Settings {
        self.manager.settings()
    }

    /// Operation counters (the audit log counts by user).
    pub fn metrics(&self) -> &Metrics {
        self.manager.metrics()
    }

    /// Templates with a current version (everyone's).
    pub async fn templates(&self) -> Result<Vec<TemplateName>, StoreError> {
        self.manager.templates().await
    }

    /// Templates with a version, a running import or a last import.
    pub async fn all_templates(&self) -> Result<Vec<TemplateName>, StoreError> {
        self.manager.all_templates().await
    }

    /// A template's versions and imports, as the API shows them (without
    /// its pool: [`AppState::pool_status`]).
    pub async fn describe_template(&self, t: &TemplateName) -> Result<v1::Template, StoreError> {
        Ok(self.manager.describe_template(t).await?.to_wire())
    }

    /// Whether the engine answers and the data folder takes a write.
    pub async fn readiness(&self) -> Readiness {
        self.manager.readiness().await
    }

    /// The image's server version and the image's name.
    pub async fn server_version(&self) -> Result<(String, String), InstanceError> {
        self.manager.server_version().await
    }

    /// A template's warm pool (templates are everyone's).
    pub async fn pool_status(&self, t: &TemplateName) -> Result<PoolStatus, InstanceError> {
        self.manager.pool_status(t).await
    }

    /// The instances `caller` may see (of `only` when given).
    pub async fn visible(
        &self,
        caller: &Caller,
        only: Option<&TemplateName>,
    ) -> Result<Vec<Instance>, InstanceError> {
        Ok(self
            .manager
            .list(only)
            .await?
            .into_iter()
            .filter(|i| caller.may_access(i.meta.owner.as_deref()))
            .collect())
    }

    /// Creates `t/n` from the template, owned by `caller` (within their
    /// quota). A name someone else holds answers as one the caller holds:
    /// `instance_exists`, nothing about whose.
    pub async fn create(
        &self,
        caller: &Caller,
        t: &TemplateName,
        n: &InstanceName,
        ttl: Option<Duration>,
        options: CreateOptions,
    ) -> Result<Instance, InstanceError> {
        self.manager
            .create_with(t, n, ttl, Source::Template, caller.actor(), &options)
            .await
    }

    /// A create's standby and sleep options: the body's, else the
    /// server's settings (`sleep_after: 0`: never).
    pub fn create_options(&self, standby: Option<bool>, sleep_after: Option<u64>) -> CreateOptions {
        let defaults = self.manager.default_options();
        CreateOptions {
            standby: standby.unwrap_or(defaults.standby),
            sleep_after: match sleep_after {
                Some(0) => None,
                Some(s) => Some(Duration::from_secs(s)),
                None => defaults.sleep_after,
            },
        }
    }

    /// Creates `t/n` from an exported archive, owned by `caller`.
    pub async fn import_archive(
        &self,
        caller: &Caller,
        t: &TemplateName,
        n: &InstanceName,
        ttl: Option<Duration>,
        chunks: Chunks,
    ) -> Result<Instance, InstanceError> {
        self.manager
            .import_archive_for(t, n, ttl, chunks, caller.actor())
            .await
    }

    /// `t/n` for `caller`, or `NotFound` exactly as if it did not exist.
    pub async fn owned(
        &self,
        caller: &Caller,
        t: TemplateName,
        n: InstanceName,
    ) -> Result<OwnedInstance, ApiError> {
        self.manager.check_access(&t, &n, caller.actor()).await?;
        Ok(OwnedInstance {
            manager: Arc::clone(&self.manager),
            caller: caller.clone(),
            t,
            n,
        })
    }

    /// The admin's door, or 403 naming what was refused.
    pub fn admin(&self, caller: &Caller, what: &str) -> Result<Admin, ApiError> {
        caller.require_admin(what)?;
        Ok(Admin {
            manager: Arc::clone(&self.manager),
        })
    }
}

fn app_state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or(ApiError::Unauthorized)
}

fn caller(req: &HttpRequest) -> Result<Caller, ApiError> {
    req.extensions()
        .get::<Caller>()
        .cloned()
        .ok_or(ApiError::Unauthorized)
}

/// A path segment parsed into a name type (400 when it is not a name).
fn segment<T>(
    req: &HttpRequest,
    key: &str,
    parse: fn(&str) -> Result<T, dolly_types::NameError>,
) -> Result<T, ApiError> {
    let raw = req
        .match_info()
        .get(key)
        .ok_or_else(|| ApiError::BadRequest(format!("no {key} in the path")))?;
    Ok(parse(raw)?)
}

/// An instance the caller may see and act on: taken from the path's
/// `{template}` and `{name}`, checked on extraction. The only way to an
/// instance's operations; each acts on this instance alone.
pub struct OwnedInstance {
    manager: Arc<Manager>,
    caller: Caller,
    t: TemplateName,
    n: InstanceName,
}

impl FromRequest for OwnedInstance {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let parsed = (|| {
            Ok::<_, ApiError>((
                app_state(req)?,
                caller(req)?,
                segment(req, "template", TemplateName::parse)?,
                segment(req, "name", InstanceName::parse)?,
            ))
        })();
        Box::pin(async move {
            let (state, caller, t, n) = parsed?;
            state.owned(&caller, t, n).await
        })
    }
}

impl OwnedInstance {
    pub fn template(&self) -> &TemplateName {
        &self.t
    }

    pub fn name(&self) -> &InstanceName {
        &self.n
    }

    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    pub async fn get(&self) -> Result<Instance, InstanceError> {
        self.manager.get(&self.t, &self.n).await
    }

    /// The engine's own inspection document of the container.
    pub async fn inspect_container(&self) -> Result<serde_json::Value, InstanceError> {
        self.manager.inspect_container(&self.t, &self.n).await
    }

    pub async fn delete(&self, force: bool) -> Result<(), InstanceError> {
        self.manager.delete(&self.t, &self.n, force).await
    }

    pub async fn extend(&self, ttl: Duration) -> Result<Instance, InstanceError> {
        self.manager.extend(&self.t, &self.n, ttl).await
    }

    pub async fn protect(&self, on: bool) -> Result<Instance, InstanceError> {
        self.manager.protect(&self.t, &self.n, on).await
    }

    pub async fn stop(&self) -> Result<Instance, InstanceError> {
        self.manager.stop(&self.t, &self.n).await
    }

    pub async fn start(&self) -> Result<Instance, InstanceError> {
        self.manager.start(&self.t, &self.n).await
    }

    pub async fn reset(&self, target: ResetTarget) -> Result<Instance, InstanceError> {
        self.manager.reset(&self.t, &self.n, target).await
    }

    pub async fn snapshots(&self) -> Result<Vec<SnapshotMeta>, InstanceError> {
        self.manager.list_snapshots(&self.t, &self.n).await
    }

    /// A new snapshot, within the quotas.
    pub async fn snapshot(
        &self,
        s: &SnapshotName,
        message: Option<String>,
    ) -> Result<SnapshotMeta, InstanceError> {
        self.manager
            .snapshot_for(&self.t, &self.n, s, message, self.caller.actor())
            .await
    }

    pub async fn diff(&self, against: Option<SnapshotName>) -> Result<SchemaDiff, InstanceError> {
        self.manager.diff(&self.t, &self.n, against).await
    }

    pub async fn explain(
        &self,
        against: Option<SnapshotName>,
    ) -> Result<SchemaExplain, InstanceError> {
        self.manager.explain(&self.t, &self.n, against).await
    }

    /// A new instance `new` of the same template from snapshot `s` of this
    /// one, owned by the caller (within their quota).
    pub async fn branch(
        &self,
        new: &InstanceName,
        s: SnapshotName,
        ttl: Option<Duration>,
    ) -> Result<Instance, InstanceError> {
        self.manager
            .create_for(
                &self.t,
                new,
                ttl,
                Source::Snapshot(self.n.clone(), s),
                self.caller.actor(),
            )
            .await
    }

    /// Snapshot `s` of this instance (not checked to exist: its operations
    /// answer `snapshot_not_found`).
    pub fn snapshot_of(&self, s: SnapshotName) -> OwnedSnapshot {
        OwnedSnapshot {
            instance: OwnedInstance {
                manager: Arc::clone(&self.manager),
                caller: self.caller.clone(),
                t: self.t.clone(),
                n: self.n.clone(),
            },
            s,
        }
    }
}

/// A snapshot of an instance the caller may see: the path's `{template}`,
/// `{name}` and `{snapshot}`, checked on extraction as [`OwnedInstance`].
pub struct OwnedSnapshot {
    instance: OwnedInstance,
    s: SnapshotName,
}

impl FromRequest for OwnedSnapshot {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let s = segment(req, "snapshot", SnapshotName::parse);
        let instance = OwnedInstance::from_request(req, payload);
        Box::pin(async move {
            // The instance first: another's answers 404 whatever the
            // snapshot's name.
            let instance = instance.await?;
            Ok(OwnedSnapshot { instance, s: s? })
        })
    }
}

impl OwnedSnapshot {
    pub fn instance(&self) -> &OwnedInstance {
        &self.instance
    }

    pub fn name(&self) -> &SnapshotName {
        &self.s
    }

    pub async fn restore(&self) -> Result<Instance, InstanceError> {
        self.instance
            .reset(ResetTarget::Snapshot(self.s.clone()))
            .await
    }

    pub async fn delete(&self) -> Result<(), InstanceError> {
        let i = &self.instance;
        i.manager.remove_snapshot(&i.t, &i.n, &self.s).await
    }

    /// The snapshot as an archive, streamed.
    pub async fn export(&self) -> Result<Chunks, InstanceError> {
        let i = &self.instance;
        i.manager.export(&i.t, &i.n, &self.s).await
    }

    /// Publishes the snapshot as the current version of `to`: admins only.
    pub async fn promote(
        &self,
        _admin: &Admin,
        to: &TemplateName,
    ) -> Result<dolly_core::template::VersionMeta, InstanceError> {
        let i = &self.instance;
        i.manager.promote(&i.t, &i.n, &self.s, to).await
    }
}

/// An admin (or everyone, with no auth configured): the door to what only
/// admins may do, and to the whole manager.
pub struct Admin {
    manager: Arc<Manager>,
}

impl Admin {
    pub fn manager(&self) -> &Manager {
        &self.manager
    }
}

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready((|| {
            let state = app_state(req)?;
            let caller = caller(req)?;
            state.admin(&caller, &format!("{} {}", req.method(), req.path()))
        })())
    }
}
