//! Sign-in by cookie, for browsers.
//!
//! [`session`] is wrapped outside the API's `require_token` (and outside
//! its JSON error rewriting). For `/ui` requests (and the snapshot export
//! download the UI links to) that carry no `Authorization` header, it
//! copies the sign-in cookie into `Authorization: Bearer ...`, so the API's
//! token check applies unchanged. It answers the sign-in page, sign-out and
//! the assets itself (they need no token), refuses every `/ui` POST whose
//! `Origin` (or, without one, `Referer`) is not this server, and sends a
//! browser the API refused to the sign-in page.
//!
//! The cookie is HttpOnly, SameSite=Strict, Secure over TLS. Forms also
//! carry a CSRF token derived from it ([`csrf_token`]), checked by
//! [`super::Posted`].

use actix_web::body::{BoxBody, MessageBody};
use actix_web::cookie::Cookie;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::layout;

/// The sign-in cookie: the token, %-encoded.
pub const TOKEN_COOKIE: &str = "dolly_token";
/// What the last action did (see [`super::Flash`]).
pub const FLASH_COOKIE: &str = "dolly_flash";
/// The status a UI page wants, applied here (after the JSON error
/// rewriting, which would turn an HTML error page into JSON).
pub const STATUS_HEADER: &str = "x-dolly-ui-status";

const SIGNIN: &str = "/ui/signin";

pub async fn session(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let path = req.path().to_owned();
    let ui = path == "/ui" || path.starts_with("/ui/");
    if !ui && !is_export_download(&req) {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    if ui && req.method() == Method::POST && !same_origin(req.request()) {
        let page = layout::bare_page(
            "Refused",
            maud::html! {
                h1 { "Refused" }
                p role="alert" { "This form was not sent from this dolly's own pages (its Origin or Referer header names another site), so nothing was changed." }
                p { a href="/ui/" { "Back to dolly" } }
            },
        );
        let mut res = super::html(StatusCode::OK, page);
        *res.status_mut() = StatusCode::FORBIDDEN;
        return Ok(req.into_response(res));
    }
    if let Some(asset) = layout::asset(&path) {
        return Ok(req.into_response(asset));
    }
    if path == SIGNIN {
        return signin(req).await;
    }
    if path == "/ui/signout" && req.method() == Method::POST {
        let mut res = super::redirect(SIGNIN);
        set_cookie(&mut res, &clear_token_cookie());
        return Ok(req.into_response(res));
    }
    let has_cookie = cookie(req.request(), TOKEN_COOKIE).is_some();
    if !req.headers().contains_key(header::AUTHORIZATION) {
        if let Some(token) = cookie(req.request(), TOKEN_COOKIE) {
            if let Ok(v) = HeaderValue::from_str(&format!("Bearer {token}")) {
                req.headers_mut().insert(header::AUTHORIZATION, v);
            }
        }
    }
    // Only owned copies: a clone of the request would make routing panic.
    let back = back_to(&req);
    let mut res = match next.call(req).await {
        Ok(res) => res.map_into_boxed_body(),
        Err(e) if ui && e.as_response_error().status_code() == StatusCode::UNAUTHORIZED => {
            return Err(ToSignin { back, has_cookie }.into());
        }
        Err(e) if ui => {
            let page = html_error(e.error_response()).await;
            let status = page.status();
            let body = actix_web::body::to_bytes(page.into_body())
                .await
                .unwrap_or_default();
            return Err(HtmlError {
                status,
                body: String::from_utf8_lossy(&body).into_owned(),
            }
            .into());
        }
        Err(e) => return Err(e),
    };
    if ui && res.status() == StatusCode::UNAUTHORIZED {
        let (http, _) = res.into_parts();
        let redirect = ToSignin { back, has_cookie }.error_response();
        return Ok(ServiceResponse::new(http, redirect));
    }
    let wanted = res
        .headers_mut()
        .remove(STATUS_HEADER)
        .next()
        .and_then(|v| v.to_str().ok().and_then(|s| s.parse::<u16>().ok()))
        .and_then(|s| StatusCode::from_u16(s).ok());
    if let Some(status) = wanted {
        *res.response_mut().status_mut() = status;
    } else if ui && is_json_error(res.response()) {
        // An error from an extractor or the API's layers: as a page.
        let (http, response) = res.into_parts();
        let page = html_error(response).await;
        return Ok(ServiceResponse::new(http, page));
    }
    Ok(res)
}

fn is_json_error(res: &HttpResponse) -> bool {
    (res.status().is_client_error() || res.status().is_server_error())
        && res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"))
}

/// The JSON error answer `res` as an HTML page with the same status.
async fn html_error(res: HttpResponse) -> HttpResponse {
    let status = res.status();
    let body = actix_web::body::to_bytes_limited(res.into_body(), 64 * 1024)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let detail = serde_json::from_slice::<dolly_types::v1::ErrorBody>(&body).ok();
    let (code, message) = match &detail {
        Some(b) => (b.error.code.as_str(), b.error.message.as_str()),
        None => ("error", status.canonical_reason().unwrap_or("error")),
    };
    let mut page = super::html(
        StatusCode::OK,
        layout::error_page(status.as_u16(), code, message),
    );
    page.headers_mut().remove(STATUS_HEADER);
    *page.status_mut() = status;
    page
}

/// An error raised before a UI handler answered, as a page.
#[derive(Debug)]
struct HtmlError {
    status: StatusCode,
    body: String,
}

impl std::fmt::Display for HtmlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.status)
    }
}

impl ResponseError for HtmlError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        res.content_type("text/html; charset=utf-8");
        super::security_headers(&mut res);
        res.body(self.body.clone())
    }
}

/// `GET /api/v1/templates/T/instances/N/snapshots/S/export`: the download
/// the instance page links to, which a browser sends with the cookie only.
fn is_export_download(req: &ServiceRequest) -> bool {
    let parts: Vec<&str> = req.path().split('/').collect();
    req.method() == Method::GET
        && matches!(
            parts.as_slice(),
            [
                "",
                "api",
                "v1",
                "templates",
                _,
                "instances",
                _,
                "snapshots",
                _,
                "export"
            ]
        )
}

/// Whether the request's `Origin` (or, without one, `Referer`) is this
/// server. Neither is a refusal: browsers send `Origin` with every POST.
pub fn same_origin(req: &HttpRequest) -> bool {
    let info = req.connection_info();
    let host = info.host();
    let authority = |url: &str| -> Option<String> {
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))?;
        Some(rest.split(['/', '?', '#']).next().unwrap_or("").to_owned())
    };
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let source = match header(header::ORIGIN) {
        Some(origin) => authority(origin),
        None => header(header::REFERER).and_then(authority),
    };
    source.is_some_and(|a| a.eq_ignore_ascii_case(host))
}

/// A cookie's value from the request (actix parses and %-decodes it).
pub fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.cookie(name)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}

/// The CSRF token of a cookie-signed-in request: derived from the token,
/// so another site can neither read nor compute it. `None` without the
/// cookie (no token configured, or a client sending the header itself).
pub fn csrf_token(req: &HttpRequest) -> Option<String> {
    let token = cookie(req, TOKEN_COOKIE)?;
    let digest = Sha256::new()
        .chain_update(b"dolly-ui-csrf\0")
        .chain_update(token.as_bytes())
        .finalize();
    Some(hex::encode(digest))
}

pub fn ct_eq(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn is_tls(req: &HttpRequest) -> bool {
    req.connection_info().scheme() == "https"
}

/// The sign-in cookie: 30 days, Secure over TLS.
fn token_cookie(req: &HttpRequest, token: &str) -> Cookie<'static> {
    super::ui_cookie(TOKEN_COOKIE, token, "/", 2_592_000, is_tls(req))
}

fn clear_token_cookie() -> Cookie<'static> {
    super::ui_cookie(TOKEN_COOKIE, "", "/", 0, false)
}

fn set_cookie(res: &mut HttpResponse, cookie: &Cookie<'_>) {
    // A cookie we built always makes a valid header.
    let _ = res.add_cookie(cookie);
}

/// Where a page refused for its token goes back to after signing in.
fn back_to(req: &ServiceRequest) -> String {
    if req.method() == Method::GET && !req.path().ends_with("/rows") {
        req.uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/ui/".to_owned())
    } else {
        "/ui/".to_owned()
    }
}

/// A browser the token check refused: to the sign-in page, and back to
/// `back` after. A refused cookie is cleared.
#[derive(Debug)]
struct ToSignin {
    back: String,
    has_cookie: bool,
}

impl std::fmt::Display for ToSignin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("sign in first")
    }
}

impl ResponseError for ToSignin {
    fn status_code(&self) -> StatusCode {
        StatusCode::SEE_OTHER
    }

    fn error_response(&self) -> HttpResponse {
        let mut to = format!("{SIGNIN}?next={}", super::pct_encode(&self.back));
        if self.has_cookie {
            to.push_str("&refused=1");
        }
        let mut res = super::redirect(&to);
        if self.has_cookie {
            set_cookie(&mut res, &clear_token_cookie());
        }
        res
    }
}

/// Only a path inside the UI: never another site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/ui/") && !n.contains("//") && !n.contains('\\') => n.to_owned(),
        _ => "/ui/".to_owned(),
    }
}

#[derive(Deserialize, Default)]
struct SigninQuery {
    next: Option<String>,
    refused: Option<String>,
}

#[derive(Deserialize)]
struct SigninForm {
    token: String,
    next: Option<String>,
}

async fn signin(mut req: ServiceRequest) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let query = web::Query::<SigninQuery>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let configured = match req.app_data::<super::State>() {
        Some(s) if s.users.file().is_some() => layout::SigninMode::Users,
        Some(s) if s.users.auth_required() => layout::SigninMode::SharedToken,
        _ => layout::SigninMode::Open,
    };
    if req.method() == Method::POST {
        let form = req.extract::<web::Form<SigninForm>>().await;
        let (token, next) = match form {
            Ok(f) => (f.token.trim().to_owned(), f.next.clone()),
            Err(_) => (String::new(), None),
        };
        if token.is_empty() {
            let page = layout::signin_page(
                query.next.as_deref(),
                Some("Enter your access token."),
                configured,
            );
            return Ok(req.into_response(super::html(StatusCode::OK, page)));
        }
        let mut res = super::redirect(&safe_next(next.as_deref()));
        let cookie = token_cookie(req.request(), &token);
        set_cookie(&mut res, &cookie);
        return Ok(req.into_response(res));
    }
    let error = query
        .refused
        .is_some()
        .then_some("That token was refused: check it and sign in again.");
    let page = layout::signin_page(Some(&safe_next(query.next.as_deref())), error, configured);
    Ok(req.into_response(super::html(StatusCode::OK, page)))
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn origin_must_be_this_server() {
        let same = TestRequest::post()
            .insert_header(("host", "dolly:5001"))
            .insert_header(("origin", "http://dolly:5001"))
            .to_http_request();
        assert!(same_origin(&same));
        let foreign = TestRequest::post()
            .insert_header(("host", "dolly:5001"))
            .insert_header(("origin", "https://evil.example"))
            .to_http_request();
        assert!(!same_origin(&foreign));
        let prefix = TestRequest::post()
            .insert_header(("host", "dolly:5001"))
            .insert_header(("origin", "http://dolly:5001.evil.example"))
            .to_http_request();
        assert!(!same_origin(&prefix));
        let referer = TestRequest::post()
            .insert_header(("host", "dolly:5001"))
            .insert_header(("referer", "http://dolly:5001/ui/i/shop/a"))
            .to_http_request();
        assert!(same_origin(&referer));
        let none = TestRequest::post()
            .insert_header(("host", "dolly:5001"))
            .to_http_request();
        assert!(!same_origin(&none));
        let null = TestRequest::post()
            .insert_header(("host", "dolly:5001"))
            .insert_header(("origin", "null"))
            .to_http_request();
        assert!(!same_origin(&null));
    }

    #[test]
    fn next_stays_inside_the_ui() {
        assert_eq!(safe_next(Some("/ui/i/shop/a")), "/ui/i/shop/a");
        assert_eq!(safe_next(Some("https://evil.example/")), "/ui/");
        assert_eq!(safe_next(Some("/ui//evil.example")), "/ui/");
        assert_eq!(safe_next(Some("/api/v1/reap")), "/ui/");
        assert_eq!(safe_next(None), "/ui/");
    }

    #[test]
    fn the_csrf_token_depends_on_the_cookie() {
        let a = TestRequest::get()
            .insert_header(("cookie", "x=1; dolly_token=abc"))
            .to_http_request();
        let b = TestRequest::get()
            .insert_header(("cookie", "dolly_token=abd"))
            .to_http_request();
        let none = TestRequest::get().to_http_request();
        assert_eq!(cookie(&a, TOKEN_COOKIE).as_deref(), Some("abc"));
        assert_ne!(csrf_token(&a), csrf_token(&b));
        assert_eq!(csrf_token(&none), None);
        assert!(!csrf_token(&a).unwrap().contains("abc"));
    }
}
