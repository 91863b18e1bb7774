//! The instance list (filter by template, live rows) and the create form.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use dolly_core::instance::Instance;
use dolly_types::{InstanceName, TemplateName};
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{self, when, Ctx, Nav, TTLS};
use super::templates::error_box;
use super::{clear_flash, html as respond, redirect_with, Flash, Posted, State};
use crate::api::Caller;
use crate::error::ApiError;

#[derive(Deserialize)]
pub struct Filter {
    template: Option<String>,
}

impl Filter {
    fn parse(&self) -> Result<Option<TemplateName>, ApiError> {
        Ok(self
            .template
            .as_deref()
            .filter(|t| !t.is_empty())
            .map(TemplateName::parse)
            .transpose()?)
    }
}

pub async fn list_page(
    req: HttpRequest,
    state: State,
    caller: Caller,
    filter: web::Query<Filter>,
) -> HttpResponse {
    let ctx = Ctx::new(&req, &state);
    let templates = state.all_templates().await.unwrap_or_default();
    let loaded = match filter.parse() {
        Ok(only) => state
            .visible(&caller, only.as_ref())
            .await
            .map(|l| (only, l))
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let (status, only, body) = match loaded {
        Ok((only, list)) => {
            let refresh = match &only {
                Some(t) => format!("/ui/instances/rows?template={t}"),
                None => "/ui/instances/rows".to_owned(),
            };
            (StatusCode::OK, only, table(&list, &refresh))
        }
        Err(e) => (e.classify().0, None, error_box(&e)),
    };
    let main = html! {
        h1 { "Instances" }
        (ctx.notice(&["delete", "create"]))
        form.row method="get" action="/ui/" role="search" aria-label="Filter instances" {
            label {
                "Template"
                select name="template" data-autosubmit {
                    option value="" { "All templates" }
                    @for t in &templates {
                        option value=(t) selected[only.as_ref() == Some(t)] { (t) }
                    }
                }
            }
            button type="submit" { "Filter" }
            a href="/ui/new" { "New instance" }
        }
        (body)
    };
    let mut res = respond(
        status,
        layout::page("Instances", Nav::Instances, &ctx, main),
    );
    if ctx.flash.is_some() {
        clear_flash(&mut res);
    }
    res
}

/// The rows only, for the live refresh.
pub async fn rows(state: State, caller: Caller, filter: web::Query<Filter>) -> HttpResponse {
    let list = match filter.parse() {
        Ok(only) => state
            .visible(&caller, only.as_ref())
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match list {
        Ok(list) => respond(StatusCode::OK, body_rows(&list)),
        Err(e) => respond(
            e.classify().0,
            html! { tr { td colspan="8" { (error_box(&e)) } } },
        ),
    }
}

fn table(list: &[Instance], refresh: &str) -> Markup {
    html! {
        div.table-wrap {
            table {
                caption.muted { "Updates live every 2 s" }
                thead {
                    tr {
                        th scope="col" { "Name" }
                        th scope="col" { "Template" }
                        th scope="col" { "State" }
                        th scope="col" class="num opt" { "Port" }
                        th scope="col" class="opt" { "Created" }
                        th scope="col" { "Expires" }
                    }
                }
                tbody data-refresh=(refresh) { (body_rows(list)) }
            }
        }
    }
}

fn body_rows(list: &[Instance]) -> Markup {
    let now = Utc::now();
    let mut list: Vec<&Instance> = list.iter().collect();
    list.sort_by_key(|i| std::cmp::Reverse(i.meta.created_at));
    html! {
        @if list.is_empty() {
            tr { td colspan="6" .empty { "No instances. " a href="/ui/new" { "Create one" } "." } }
        }
        @for i in list {
            @let m = &i.meta;
            tr data-testid="instance-row" data-name=(m.name) data-template=(m.template) {
                th scope="row" {
                    a href={ "/ui/i/" (m.template) "/" (m.name) } { (m.name) }
                    @if m.protected { " " span.badge title="never reaped nor removed by cleanup" { "protected" } }
                }
                td { (m.template) br; span.muted.opt { code { (m.version) } } }
                td { (state_badge(i)) }
                td.num.opt { @if let Some(p) = i.port { (p) } }
                td.opt { (when(m.created_at, now)) }
                td {
                    @match m.expires_at {
                        Some(e) => (when(e, now)),
                        None => span.muted { "never" },
                    }
                }
            }
        }
    }
}

pub(super) fn state_badge(i: &Instance) -> Markup {
    let s = crate::wire::state_name(i.state);
    html! { span.badge.(s) title=(i.status) { (s) } }
}

#[derive(Deserialize)]
pub struct NewQuery {
    template: Option<String>,
    /// The name typed before a failed create.
    name: Option<String>,
}

pub async fn new_page(req: HttpRequest, state: State, q: web::Query<NewQuery>) -> HttpResponse {
    let ctx = Ctx::new(&req, &state);
    let templates = state.templates().await;
    let main = html! {
        h1 { "New instance" }
        (ctx.notice(&["create"]))
        @match templates {
            Err(e) => (error_box(&ApiError::from(e))),
            Ok(list) if list.is_empty() => p.empty { "No template has a version yet: see " a href="/ui/templates" { "Templates" } "." },
            Ok(list) => (form(&ctx, &list, q.template.as_deref(), q.name.as_deref())),
        }
    };
    let mut res = respond(
        StatusCode::OK,
        layout::page("New instance", Nav::New, &ctx, main),
    );
    if ctx.flash.is_some() {
        clear_flash(&mut res);
    }
    res
}

fn form(ctx: &Ctx, templates: &[TemplateName], chosen: Option<&str>, name: Option<&str>) -> Markup {
    html! {
        form.stack method="post" action="/ui/new" {
            (ctx.csrf_field())
            label for="new-template" { "Template" }
            select #new-template name="template" required data-testid="new-instance-template" {
                @for t in templates {
                    option value=(t) selected[chosen == Some(t.as_str())] { (t) }
                }
            }
            label for="new-name" { "Name" }
            input #new-name name="name" value=[name] required maxlength="63" pattern="[a-z0-9][a-z0-9_\\-]{0,62}"
                autocomplete="off" spellcheck="false" aria-describedby="new-name-help"
                data-testid="new-instance-name";
            p #new-name-help.hint { "Lower-case letters, digits, - and _; starting with a letter or digit." }
            label for="new-ttl" { "Expires after" }
            select #new-ttl name="ttl" {
                option value="" selected { "the server's default" }
                @for (label, secs) in TTLS {
                    option value=(secs) { (label) }
                }
            }
            button type="submit" data-testid="new-instance-submit" { "Create" }
            p.hint { "Creating waits until the server accepts its credentials: usually a few seconds." }
        }
    }
}

#[derive(Deserialize)]
pub struct CreateForm {
    template: String,
    name: String,
    #[serde(default)]
    ttl: String,
}

pub async fn create(
    state: State,
    caller: Caller,
    Posted(form): Posted<CreateForm>,
) -> HttpResponse {
    let back = format!(
        "/ui/new?template={}&name={}",
        super::pct_encode(&form.template),
        super::pct_encode(&form.name)
    );
    let parsed = (|| {
        let t = TemplateName::parse(form.template.trim())?;
        let n = InstanceName::parse(form.name.trim())?;
        let ttl = match form.ttl.trim() {
            "" => None,
            s => Some(Duration::from_secs(s.parse().map_err(|_| {
                ApiError::BadRequest(format!("ttl {s:?} is not a number of seconds"))
            })?)),
        };
        Ok::<_, ApiError>((t, n, ttl))
    })();
    let (t, n, ttl) = match parsed {
        Ok(p) => p,
        Err(e) => return redirect_with(&back, &Flash::error("create", &e)),
    };
    match state
        .create(&caller, &t, &n, ttl, state.create_options(None, None))
        .await
    {
        Ok(_) => redirect_with(
            &format!("/ui/i/{t}/{n}"),
            &Flash::ok("create", format!("Instance {t}/{n} created.")),
        ),
        Err(e) => redirect_with(&back, &Flash::error("create", &ApiError::from(e))),
    }
}
