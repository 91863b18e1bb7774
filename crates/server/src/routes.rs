//! Every route of the app is registered through [`Routes`], which also
//! records it: [`registered`] lists them (method and full pattern), so the
//! route-by-route isolation test (`tests/fast.rs`) fails when a route has
//! no row in its table. Nothing else in this crate calls
//! `ServiceConfig::route` (that test checks the sources too).

use std::collections::BTreeSet;
use std::sync::Mutex;

use actix_web::http::Method;
use actix_web::{web, FromRequest, Handler, Responder};

static REGISTERED: Mutex<BTreeSet<(String, String)>> = Mutex::new(BTreeSet::new());

/// A [`web::ServiceConfig`] under `prefix` (the scope it is configured in)
/// that records each route it adds.
pub struct Routes<'a> {
    cfg: &'a mut web::ServiceConfig,
    prefix: &'static str,
}

impl<'a> Routes<'a> {
    pub fn new(cfg: &'a mut web::ServiceConfig, prefix: &'static str) -> Self {
        Self { cfg, prefix }
    }

    /// `method path` answered by `handler`.
    pub fn add<F, Args>(&mut self, method: Method, path: &'static str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        REGISTERED
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((method.to_string(), format!("{}{path}", self.prefix)));
        self.cfg.route(path, web::method(method).to(handler));
        self
    }

    pub fn get<F, Args>(&mut self, path: &'static str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.add(Method::GET, path, handler)
    }

    pub fn post<F, Args>(&mut self, path: &'static str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.add(Method::POST, path, handler)
    }

    pub fn put<F, Args>(&mut self, path: &'static str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.add(Method::PUT, path, handler)
    }

    pub fn delete<F, Args>(&mut self, path: &'static str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.add(Method::DELETE, path, handler)
    }

    /// The underlying configuration (app data, scopes, default service).
    pub fn config(&mut self) -> &mut web::ServiceConfig {
        self.cfg
    }
}

/// Every route registered so far (by any app built in this process), as
/// `(METHOD, /full/pattern)`, sorted.
pub fn registered() -> Vec<(String, String)> {
    REGISTERED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .cloned()
        .collect()
}
