//! The templates page: versions, sizes, the last import and its result,
//! whether an import runs now, the warm pool. Its rows refresh live.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use chrono::Utc;
use dolly_types::v1::Template;
use maud::{html, Markup};

use super::layout::{self, bytes, when, Ctx, Nav};
use super::{clear_flash, html as respond, State};
use crate::error::ApiError;

/// Every template, described, with its pool.
pub(super) async fn load(state: &State) -> Result<Vec<Template>, ApiError> {
    let mut out = Vec::new();
    for t in state.all_templates().await? {
        let mut d = state.describe_template(&t).await?;
        let pool = state.pool_status(&t).await?;
        d.pool = Some(dolly_types::v1::TemplatePool {
            size: pool.size,
            ready: pool.ready,
        });
        out.push(d);
    }
    Ok(out)
}

pub async fn page(req: HttpRequest, state: State) -> HttpResponse {
    let ctx = Ctx::new(&req, &state);
    let (status, body) = match load(&state).await {
        Ok(list) => (StatusCode::OK, table(&list)),
        Err(e) => (e.classify().0, error_box(&e)),
    };
    let main = html! {
        h1 { "Templates" }
        p.hint { "Each template is a dump imported by " code { "dollyd update" } "; instances are copy-on-write clones of its current version." }
        (body)
    };
    let mut res = respond(
        status,
        layout::page("Templates", Nav::Templates, &ctx, main),
    );
    if ctx.flash.is_some() {
        clear_flash(&mut res);
    }
    res
}

/// The rows only, for the live refresh.
pub async fn rows(state: State) -> HttpResponse {
    match load(&state).await {
        Ok(list) => respond(StatusCode::OK, body_rows(&list)),
        Err(e) => respond(
            e.classify().0,
            html! { tr { td colspan="7" { (error_box(&e)) } } },
        ),
    }
}

pub(super) fn error_box(e: &ApiError) -> Markup {
    html! { p.notice.error role="alert" data-testid="error" { strong { "Error: " } (e) " (" (e.code()) ")" } }
}

fn table(list: &[Template]) -> Markup {
    if list.is_empty() {
        return html! {
            p.empty { "No templates yet. Put a dump in the data folder's " code { "dumps/" } " and run " code { "dollyd update" } "." }
        };
    }
    html! {
        div.table-wrap {
            table {
                caption.muted { (list.len()) " template(s); updates live" }
                thead {
                    tr {
                        th scope="col" { "Template" }
                        th scope="col" { "Current version" }
                        th scope="col" class="num" { "Size" }
                        th scope="col" class="opt" { "Versions" }
                        th scope="col" { "Last import" }
                        th scope="col" class="opt" { "Pool (ready / size)" }
                        th scope="col" { span.sr { "Actions" } }
                    }
                }
                tbody data-refresh="/ui/templates/rows" { (body_rows(list)) }
            }
        }
    }
}

/// How a version was masked (the rules file and its hash, strict mode,
/// the post scripts' clean-up).
fn masking_title(m: &dolly_types::v1::Masking) -> String {
    let mut parts = Vec::new();
    if let Some(file) = &m.rules_file {
        let name = std::path::Path::new(file)
            .file_name()
            .map_or_else(|| file.clone(), |f| f.to_string_lossy().into_owned());
        let sha = m.rules_sha256.as_deref().unwrap_or("");
        parts.push(format!(
            "rules {name} (sha256 {}{})",
            &sha[..sha.len().min(12)],
            if m.strict { ", strict" } else { "" }
        ));
    }
    if m.post_script_cleanup {
        parts.push("post scripts, traces removed".to_owned());
    }
    format!("masked: {}", parts.join("; "))
}

fn body_rows(list: &[Template]) -> Markup {
    let now = Utc::now();
    html! {
        @for t in list {
            @let current = t.versions.iter().find(|v| v.current);
            tr data-testid="template-row" data-name=(t.name) {
                th scope="row" {
                    (t.name)
                    @if let Some(p) = &t.progress {
                        " " span.badge.importing title="import in progress" {
                            "importing: " (p.phase) " " (format!("{:.0}%", p.percent))
                            @if let Some(eta) = p.eta_seconds { ", ~" (eta) " s left" }
                            " (" (format!("{:.1}", p.mb_per_s)) " MB/s)"
                        }
                    } @else if t.importing {
                        " " span.badge.importing { "importing…" }
                    }
                }
                td {
                    @if let Some(v) = current {
                        code { (v.version) }
                        @if let Some(m) = &v.masking {
                            " " span.badge.ok data-testid="masked" title=(masking_title(m)) { "masked" }
                        }
                        br;
                        span.muted { (when(v.created_at, now)) " · " (v.database) }
                        @if let Some(m) = &v.masking {
                            br; span.muted { (masking_title(m)) }
                        }
                    } @else {
                        span.muted { "none yet" }
                    }
                }
                td.num { @if let Some(v) = current { (bytes(v.size_bytes)) } }
                td.opt {
                    @if t.versions.len() > 1 {
                        details {
                            summary { (t.versions.len()) " versions" }
                            ul {
                                @for v in &t.versions {
                                    li { code { (v.version) } " · " (bytes(v.size_bytes)) " · " (when(v.created_at, now)) }
                                }
                            }
                        }
                    } @else {
                        (t.versions.len())
                    }
                }
                td {
                    @if let Some(l) = &t.last_import {
                        @if l.ok {
                            span.badge.ok { "ok" }
                        } @else {
                            span.badge.failed { "failed" }
                        }
                        " " (when(l.finished_at, now))
                        br;
                        span.muted { (l.dump) }
                        @if let Some(v) = current.filter(|_| l.ok) {
                            span.muted { " · " (format!("{:.1}", v.import_seconds)) " s, " (bytes(v.dump_bytes)) " dump" }
                        }
                        @if !l.ok { p.notice.error { (l.message) } }
                    } @else {
                        span.muted { "never" }
                    }
                }
                td.opt {
                    @if let Some(p) = t.pool { (p.ready) " / " (p.size) }
                }
                td {
                    @if current.is_some() {
                        a href={ "/ui/new?template=" (t.name) } aria-label={ "New instance of " (t.name) } { "New instance" }
                        " · "
                        a href={ "/ui/?template=" (t.name) } aria-label={ "Instances of " (t.name) } { "Instances" }
                    }
                }
            }
        }
    }
}
