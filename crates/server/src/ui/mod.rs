//! The web UI at `/ui/`: server-rendered HTML (maud) over the
//! [`Manager`](dolly_core::instance::Manager), every asset embedded.
//!
//! - [`session`]: the middleware that turns the sign-in cookie into the
//!   `Authorization` header the API's token check reads, answers the
//!   sign-in page and the assets itself, and refuses cross-site posts;
//! - [`layout`]: the page shell, the CSS and script, formatting helpers;
//! - [`templates`], [`instances`] (the list and the create form),
//!   [`instance`] (one instance and its actions).
//!
//! Forms post to handlers under `/ui` that call the manager and redirect
//! back (Post/Redirect/Get); what happened is carried to the next page in
//! a short-lived flash cookie, errors with the API's own code and message.

mod actions;
mod instance;
mod instances;
mod layout;
pub mod session;
mod templates;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use futures_util::future::LocalBoxFuture;
use maud::Markup;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::api::AppState;
use crate::error::ApiError;
use crate::routes::Routes;

pub use session::session;

/// The UI's routes, under `/ui`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    Routes::new(cfg, "").get("/ui", || async { redirect("/ui/") });
    cfg.service(web::scope("/ui").configure(|cfg| {
        Routes::new(cfg, "/ui")
            .get("/", instances::list_page)
            .get("/instances/rows", instances::rows)
            .get("/templates", templates::page)
            .get("/templates/rows", templates::rows)
            .get("/new", instances::new_page)
            .post("/new", instances::create)
            .get("/i/{template}/{name}", instance::page)
            .post("/i/{template}/{name}/{action}", actions::action)
            .post(
                "/i/{template}/{name}/snapshots/{snapshot}/{action}",
                actions::snapshot_action,
            );
    }));
}

/// A 303 to `to` (Post/Redirect/Get).
pub(crate) fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// An HTML answer with the UI's security headers. Pages carry passwords:
/// never cached. The status travels in a header that [`session`] applies,
/// so that the API's JSON error rewriting leaves the page alone.
pub(crate) fn html(status: StatusCode, markup: Markup) -> HttpResponse {
    let mut res = HttpResponse::Ok();
    res.content_type("text/html; charset=utf-8");
    security_headers(&mut res);
    if status != StatusCode::OK {
        res.insert_header((session::STATUS_HEADER, status.as_str()));
    }
    res.body(markup.into_string())
}

pub(crate) fn security_headers(res: &mut actix_web::HttpResponseBuilder) {
    res.insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "same-origin"));
}

/// What an action did, shown once on the next page next to the form that
/// caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Flash {
    pub ok: bool,
    /// The form it belongs to (`snapshot`, `extend`, `create`, ...).
    pub action: String,
    pub text: String,
}

impl Flash {
    pub fn ok(action: &str, text: impl Into<String>) -> Self {
        Self {
            ok: true,
            action: action.to_owned(),
            text: text.into(),
        }
    }

    /// The API's own words: its message and its stable code.
    pub fn error(action: &str, e: &ApiError) -> Self {
        Self {
            ok: false,
            action: action.to_owned(),
            text: format!("{e} ({})", e.code()),
        }
    }

    fn encode(&self) -> String {
        let raw = format!(
            "{}\u{1f}{}\u{1f}{}",
            if self.ok { "ok" } else { "error" },
            self.action,
            self.text
        );
        raw
    }

    fn decode(raw: &str) -> Option<Self> {
        let mut parts = raw.splitn(3, '\u{1f}');
        let ok = parts.next()? == "ok";
        let action = parts.next()?.to_owned();
        let text = parts.next()?.to_owned();
        Some(Self { ok, action, text })
    }
}

/// A 303 to `to` that leaves `flash` for the next page.
pub(crate) fn redirect_with(to: &str, flash: &Flash) -> HttpResponse {
    let mut res = redirect(to);
    let _ = res.add_cookie(&ui_cookie(
        session::FLASH_COOKIE,
        &flash.encode(),
        "/ui",
        60,
        false,
    ));
    res
}

/// The flash the previous action left, if any.
pub(crate) fn take_flash(req: &HttpRequest) -> Option<Flash> {
    session::cookie(req, session::FLASH_COOKIE).and_then(|v| Flash::decode(&v))
}

/// Clears the flash once a page showed it.
pub(crate) fn clear_flash(res: &mut HttpResponse) {
    let _ = res.add_cookie(&ui_cookie(session::FLASH_COOKIE, "", "/ui", 0, false));
}

/// A cookie of the UI's: HttpOnly, SameSite=Strict, its value %-encoded
/// (actix %-decodes what comes back).
pub(crate) fn ui_cookie(
    name: &'static str,
    value: &str,
    path: &'static str,
    max_age_seconds: i64,
    secure: bool,
) -> actix_web::cookie::Cookie<'static> {
    actix_web::cookie::Cookie::build(name, pct_encode(value))
        .path(path)
        .max_age(actix_web::cookie::time::Duration::seconds(max_age_seconds))
        .http_only(true)
        .same_site(actix_web::cookie::SameSite::Strict)
        .secure(secure)
        .finish()
}

/// Everything but RFC 3986's unreserved characters.
const NOT_UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A cookie value: everything but RFC 3986's unreserved characters is
/// %-encoded.
pub(crate) fn pct_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, NOT_UNRESERVED).to_string()
}

#[derive(Deserialize, Default)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

/// A posted form whose `csrf` field matches the value derived from the
/// sign-in cookie (when the request is signed in by cookie). The
/// same-origin check in [`session`] comes first; this is the second lock.
pub(crate) struct Posted<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Posted<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            let body = body.await?;
            if let Some(expected) = session::csrf_token(&req) {
                let given: CsrfField = serde_urlencoded::from_bytes(&body).unwrap_or_default();
                if !session::ct_eq(&given.csrf, &expected) {
                    return Err(ApiError::BadRequest(
                        "the form's CSRF token does not match this session: reload the page and try again"
                            .to_owned(),
                    )
                    .into());
                }
            }
            let form = serde_urlencoded::from_bytes(&body)
                .map_err(|e| ApiError::BadRequest(format!("invalid form: {e}")))?;
            Ok(Posted(form))
        })
    }
}

/// The shared state (the manager, the token).
pub(crate) type State = web::Data<AppState>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flash_round_trips_through_its_cookie() {
        let f = Flash::ok("snapshot", "snapshot 'a b; c=d' taken ✓");
        let cookie = ui_cookie(session::FLASH_COOKIE, &f.encode(), "/ui", 60, false);
        let header = cookie.to_string();
        let value = header.split(';').next().unwrap().split_once('=').unwrap().1;
        assert!(!value.contains([' ', ',', '=']), "{header}");
        assert!(header.contains("HttpOnly") && header.contains("SameSite=Strict"));
        // As actix reads it back: %-decoded.
        let back = actix_web::cookie::Cookie::parse_encoded(header).unwrap();
        assert_eq!(Flash::decode(back.value()), Some(f));
        assert_eq!(Flash::decode("no separators"), None);
    }
}
