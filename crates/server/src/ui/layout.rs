//! The page shell, the embedded assets and the formatting helpers.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};

use super::{session, take_flash, Flash, State};

const STYLE: &str = include_str!("style.css");
const SCRIPT: &str = include_str!("app.js");

/// `/ui/assets/*`: served without a token (the sign-in page uses them).
pub fn asset(path: &str) -> Option<HttpResponse> {
    let (body, kind) = match path {
        "/ui/assets/style.css" => (STYLE, "text/css; charset=utf-8"),
        "/ui/assets/app.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        _ => return None,
    };
    Some(
        HttpResponse::Ok()
            .content_type(kind)
            .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .body(body),
    )
}

/// Which tab of the navigation a page belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Instances,
    Templates,
    New,
    None,
}

/// What every page needs from the request.
pub struct Ctx {
    pub csrf: String,
    /// A sign-in cookie is present (offer to sign out).
    pub signed_in: bool,
    pub flash: Option<Flash>,
}

impl Ctx {
    pub fn new(req: &HttpRequest, _state: &State) -> Self {
        Self {
            csrf: session::csrf_token(req).unwrap_or_default(),
            signed_in: session::cookie(req, session::TOKEN_COOKIE).is_some(),
            flash: take_flash(req),
        }
    }

    /// The hidden CSRF field every form carries.
    pub fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.csrf); }
    }

    /// The flash, when it belongs to one of `actions`: shown next to the
    /// form that caused it.
    pub fn notice(&self, actions: &[&str]) -> Markup {
        match &self.flash {
            Some(f) if actions.contains(&f.action.as_str()) => notice(f),
            _ => html! {},
        }
    }
}

pub fn notice(f: &Flash) -> Markup {
    html! {
        @if f.ok {
            p.notice.ok role="status" data-testid="notice" { (f.text) }
        } @else {
            p.notice.error role="alert" data-testid="error" { strong { "Error: " } (f.text) }
        }
    }
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · dolly" }
            link rel="stylesheet" href="/ui/assets/style.css";
            script src="/ui/assets/app.js" defer {}
        }
    }
}

/// A page with the navigation.
pub fn page(title: &str, nav: Nav, ctx: &Ctx, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/ui/" { "dolly" }
                    nav aria-label="Main" {
                        ul {
                            li { a href="/ui/" aria-current=[(nav == Nav::Instances).then_some("page")] { "Instances" } }
                            li { a href="/ui/templates" aria-current=[(nav == Nav::Templates).then_some("page")] { "Templates" } }
                            li { a href="/ui/new" aria-current=[(nav == Nav::New).then_some("page")] { "New instance" } }
                        }
                    }
                    @if ctx.signed_in {
                        form.signout method="post" action="/ui/signout" {
                            (ctx.csrf_field())
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                main #main { (main) }
            }
        }
    }
}

/// A page without navigation (sign-in, refusals).
pub fn bare_page(title: &str, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top { span.brand { "dolly" } }
                main #main.narrow { (main) }
            }
        }
    }
}

/// How this dolly authenticates, as the sign-in page tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigninMode {
    /// No `auth_token` and no `users_file`: everyone is an admin.
    Open,
    /// Only the shared `auth_token`.
    SharedToken,
    /// A `users_file` (and perhaps an `auth_token` too): personal tokens.
    Users,
}

pub fn signin_page(next: Option<&str>, error: Option<&str>, mode: SigninMode) -> Markup {
    let help = match mode {
        SigninMode::Users => "Your own access token, as your dolly admin gave it to you (members see and act on their own instances; admins on all). It is kept in an HttpOnly cookie in this browser until you sign out.",
        _ => "The token dollyd was given (DOLLY_AUTH_TOKEN). It is kept in an HttpOnly cookie in this browser until you sign out.",
    };
    bare_page(
        "Sign in",
        html! {
            h1 { "Sign in" }
            @if mode == SigninMode::Open {
                p.notice.ok role="status" data-testid="signin-mode" { "This dolly asks for no token: " a href="/ui/" { "the UI is open" } "." }
            } @else if mode == SigninMode::Users {
                p.hint data-testid="signin-mode" { "This dolly has personal tokens: sign in with yours." }
            } @else {
                p.hint data-testid="signin-mode" { "This dolly has one shared access token." }
            }
            form.stack method="post" action="/ui/signin" {
                input type="hidden" name="next" value=(next.unwrap_or("/ui/"));
                label for="token" { "Access token" }
                input #token type="password" name="token" required autocomplete="current-password"
                    data-testid="token-input" aria-describedby="token-help"
                    aria-invalid=[error.map(|_| "true")];
                p #token-help.hint { (help) }
                @if let Some(e) = error {
                    p.notice.error role="alert" data-testid="error" { (e) }
                }
                button type="submit" data-testid="token-submit" { "Sign in" }
            }
        },
    )
}

/// An error as a page (never the API's JSON): its status, its message and
/// code, and a way back.
pub fn error_page(status: u16, code: &str, message: &str) -> Markup {
    bare_page(
        "Error",
        html! {
            h1 { "Error " (status) }
            p.notice.error role="alert" data-testid="error" { strong { "Error: " } (message) " (" (code) ")" }
            p { a href="/ui/" { "Back to your instances" } }
        },
    )
}

/// `<time>` with the relative time as text and the exact one as title.
pub fn when(t: DateTime<Utc>, now: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(t.to_rfc3339()) title=(t.format("%Y-%m-%d %H:%M:%S UTC")) { (relative(t, now)) }
    }
}

/// Sizes (binary units) and relative times as the CLI shows them: one
/// formatter for both.
pub use dolly_types::human::{ago as relative, bytes};

/// A value with a copy button (the script copies the element's text).
pub fn copyable(id: &str, label: &str, value: &str, testid: Option<&str>, block: bool) -> Markup {
    html! {
        div.copyable {
            @if block {
                pre #(id) data-testid=[testid] { (value) }
            } @else {
                code #(id) data-testid=[testid] { (value) }
            }
            button.copy type="button" data-copy=(id) aria-label={ "Copy " (label) } { "Copy" }
        }
    }
}

/// Lease lengths offered by the create and extend forms.
pub const TTLS: [(&str, u64); 7] = [
    ("1 hour", 3600),
    ("4 hours", 4 * 3600),
    ("8 hours", 8 * 3600),
    ("1 day", 86400),
    ("3 days", 3 * 86400),
    ("1 week", 7 * 86400),
    ("no expiry", 0),
];
