//! One instance's page: how to connect, its lease, its server, its
//! snapshots, and removal. Every button is a form posting to
//! [`super::actions`], which calls the domain and redirects back.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use dolly_core::instance::{Instance, SnapshotMeta, USER};
use dolly_types::{InstanceName, TemplateName};
use maud::{html, Markup};

use super::instances::state_badge;
use super::layout::{self, bytes, copyable, when, Ctx, Nav, TTLS};
use super::templates::error_box;
use super::{clear_flash, html as respond, pct_encode, State};
use crate::api::OwnedInstance;
use crate::error::ApiError;

pub async fn page(
    req: HttpRequest,
    state: State,
    path: web::Path<(String, String)>,
    owned: Result<OwnedInstance, ApiError>,
) -> HttpResponse {
    let ctx = Ctx::new(&req, &state);
    let loaded = async {
        let owned = owned?;
        let i = owned.get().await?;
        let snaps = owned.snapshots().await?;
        Ok::<_, ApiError>((i, snaps))
    }
    .await;
    let title = format!("{}/{}", path.0, path.1);
    let (status, main) = match loaded {
        Ok((i, snaps)) => (StatusCode::OK, body(&ctx, &state, &i, &snaps)),
        Err(e) => (
            e.classify().0,
            html! {
                h1 { (title) }
                (ctx.notice(&["delete"]))
                (error_box(&e))
                p { a href="/ui/" { "All instances" } }
            },
        ),
    };
    let mut res = respond(status, layout::page(&title, Nav::None, &ctx, main));
    if ctx.flash.is_some() {
        clear_flash(&mut res);
    }
    res
}

/// `mysql://user:password@host:port/database`, each part %-encoded.
fn url(host: &str, port: u16, password: &str, db: &str) -> String {
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    format!(
        "mysql://{}:{}@{host}:{port}/{}",
        pct_encode(USER),
        pct_encode(password),
        pct_encode(db)
    )
}

/// Quoted for a POSIX shell.
fn sh(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn body(ctx: &Ctx, state: &State, i: &Instance, snaps: &[SnapshotMeta]) -> Markup {
    let now = Utc::now();
    let m = &i.meta;
    let (t, n) = (&m.template, &m.name);
    let base = format!("/ui/i/{t}/{n}");
    let host = &state.settings().public_host;
    let port = i.port.unwrap_or(0);
    let conn = url(host, port, &m.password, &m.database);
    let cli = format!(
        "mysql -h {} -P {port} -u {USER} -p{} {}",
        sh(host),
        sh(&m.password),
        sh(&m.database)
    );
    let env: String = [
        ("MYSQL_HOST", host.clone()),
        ("MYSQL_PORT", port.to_string()),
        ("MYSQL_USER", USER.to_owned()),
        ("MYSQL_PASSWORD", m.password.clone()),
        ("MYSQL_DATABASE", m.database.clone()),
        ("DATABASE_URL", conn.clone()),
    ]
    .iter()
    .map(|(k, v)| format!("export {k}={}\n", sh(v)))
    .collect();
    let running = i.state == dolly_core::instance::InstanceState::Running;
    html! {
        p.muted { a href={ "/ui/?template=" (t) } { (t) } " / instance" }
        h1 { (n) " " (state_badge(i)) @if m.protected { " " span.badge { "protected" } } }
        (ctx.notice(&["create", "branch"]))
        div.grid {
            section aria-labelledby="connect-h" {
                h2 #connect-h { "Connect" }
                label for="conn" { "Connection string" }
                (copyable("conn", "connection string", &conn, Some("connection-string"), false))
                label for="cli" { "mysql command line" }
                (copyable("cli", "mysql command line", &cli, Some("mysql-command"), false))
                details {
                    summary { "Shell " code { "export" } " lines" }
                    (copyable("env", "export lines", env.trim_end(), Some("export-lines"), true))
                }
            }
            section aria-labelledby="about-h" {
                h2 #about-h { "Details" }
                dl.facts {
                    dt { "Template version" } dd { code { (m.version) } }
                    dt { "Server" } dd { (i.status) }
                    dt { "Host and port" } dd { (host) ":" (port) }
                    dt { "Database" } dd { (m.database) }
                    dt { "Created" } dd { (when(m.created_at, now)) }
                    dt { "Expires" } dd {
                        @match m.expires_at { Some(e) => (when(e, now)), None => "never" }
                    }
                }
            }
        }
        section aria-labelledby="lease-h" {
            h2 #lease-h { "Lease and server" }
            (ctx.notice(&["extend", "protect", "unprotect", "stop", "start", "reset"]))
            div.actions {
                form.row method="post" action={ (base) "/extend" } {
                    (ctx.csrf_field())
                    label { "Extend by"
                        select name="ttl" {
                            @for (label, secs) in TTLS {
                                option value=(secs) selected[secs == 4 * 3600] { (label) }
                            }
                        }
                    }
                    button type="submit" data-testid="extend-button" { "Extend" }
                }
                @if m.protected {
                    (button(ctx, &base, "unprotect", "Unprotect", "unprotect-button"))
                } @else {
                    (button(ctx, &base, "protect", "Protect", "protect-button"))
                }
                @if running {
                    (button(ctx, &base, "stop", "Stop", "stop-button"))
                } @else {
                    (button(ctx, &base, "start", "Start", "start-button"))
                }
                form.row method="post" action={ (base) "/reset" } {
                    (ctx.csrf_field())
                    label { "Reset to"
                        select name="target" {
                            option value="original" { "its version (" (m.version) ")" }
                            option value="latest" { "the template's latest version" }
                        }
                    }
                    button type="submit" data-testid="reset-button" { "Reset" }
                }
            }
            p.hint { "Protected instances are never reaped. Reset throws away every change since; snapshots stay." }
        }
        (snapshots(ctx, &base, t, n, snaps, now))
        section aria-labelledby="delete-h" {
            h2 #delete-h { "Delete" }
            (ctx.notice(&["delete"]))
            details {
                summary.button data-testid="delete-button" { "Delete " (n) "…" }
                form.popover.stack method="post" action={ (base) "/delete" } {
                    (ctx.csrf_field())
                    p { "This removes " strong { (t) "/" (n) } ", its data and its " (snaps.len()) " snapshot(s). It cannot be undone." }
                    @if m.protected {
                        label { input type="checkbox" name="force" value="1"; " It is protected: delete it anyway" }
                    }
                    button.danger type="submit" data-testid="delete-confirm" { "Yes, delete " (n) }
                }
            }
        }
    }
}

fn button(ctx: &Ctx, base: &str, action: &str, label: &str, testid: &str) -> Markup {
    html! {
        form method="post" action={ (base) "/" (action) } {
            (ctx.csrf_field())
            button type="submit" data-testid=(testid) { (label) }
        }
    }
}

fn snapshots(
    ctx: &Ctx,
    base: &str,
    t: &TemplateName,
    n: &InstanceName,
    snaps: &[SnapshotMeta],
    now: chrono::DateTime<Utc>,
) -> Markup {
    let suggested = format!("snap-{}", now.format("%Y%m%d-%H%M%S"));
    html! {
        section #snapshots aria-labelledby="snap-h" {
            h2 #snap-h { "Snapshots" }
            (ctx.notice(&["snapshot", "restore", "remove-snapshot"]))
            details {
                summary.button data-testid="snapshot-button" { "Take a snapshot…" }
                form.popover.row method="post" action={ (base) "/snapshot" } {
                    (ctx.csrf_field())
                    label { "Name"
                        input name="name" required maxlength="63" pattern="[a-z0-9][a-z0-9_\\-]{0,62}"
                            value=(suggested) data-testid="snapshot-name" spellcheck="false";
                    }
                    label { "Message (optional)"
                        input name="message" maxlength="500" data-testid="snapshot-message";
                    }
                    button.primary type="submit" data-testid="snapshot-submit" { "Take snapshot" }
                }
            }
            p.hint { "Taking one stops the server for a moment, so the copy is consistent." }
            @if snaps.is_empty() {
                p.empty { "No snapshots." }
            } @else {
                div.table-wrap {
                    table {
                        thead { tr {
                            th scope="col" { "Name" }
                            th scope="col" { "Message" }
                            th scope="col" class="opt" { "Taken" }
                            th scope="col" class="num opt" { "Size" }
                            th scope="col" { "Actions" }
                        } }
                        tbody {
                            @for s in snaps.iter().rev() {
                                (snapshot_row(ctx, base, t, n, s, now))
                            }
                        }
                    }
                }
            }
        }
    }
}

fn snapshot_row(
    ctx: &Ctx,
    base: &str,
    t: &TemplateName,
    n: &InstanceName,
    s: &SnapshotMeta,
    now: chrono::DateTime<Utc>,
) -> Markup {
    let sbase = format!("{base}/snapshots/{}", s.name);
    html! {
        tr data-testid="snapshot-row" data-name=(s.name) {
            th scope="row" { code { (s.name) } }
            td { @if let Some(msg) = &s.message { (msg) } }
            td.opt { (when(s.created_at, now)) }
            td.num.opt { (bytes(s.size_bytes)) }
            td {
                div.actions {
                    form method="post" action={ (sbase) "/restore" } {
                        (ctx.csrf_field())
                        button type="submit" aria-label={ "Restore " (s.name) } { "Restore" }
                    }
                    details.inline {
                        summary.button aria-label={ "Branch " (s.name) " into a new instance" } { "Branch…" }
                        form.popover.row method="post" action={ (sbase) "/branch" } {
                            (ctx.csrf_field())
                            label { "New instance name"
                                input name="name" required maxlength="63" pattern="[a-z0-9][a-z0-9_\\-]{0,62}" spellcheck="false";
                            }
                            button.primary type="submit" { "Create" }
                        }
                    }
                    a.button href={ "/api/v1/templates/" (t) "/instances/" (n) "/snapshots/" (s.name) "/export" }
                        download aria-label={ "Export " (s.name) " as an archive" } { "Export" }
                    form method="post" action={ (sbase) "/delete" } {
                        (ctx.csrf_field())
                        button type="submit" data-testid="snapshot-delete" aria-label={ "Delete snapshot " (s.name) } { "Delete" }
                    }
                }
            }
        }
    }
}
