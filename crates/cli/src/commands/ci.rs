//! `dolly ci`: a database for a CI job in one step. Create or reuse (with
//! a lease), wait until it accepts connections, and write what the job
//! needs where its platform reads it; `--down` removes it.
//!
//! Messages go to stderr as lines a CI log reads well (`dolly ci: ...`);
//! stdout carries only what the platform or the shell consumes.

use std::io::Write;
use std::time::{Duration, Instant};

use chrono::Utc;
use dolly_types::v1::{Instance, InstanceState};
use dolly_types::{InstanceName, TemplateName};

use super::{connection, create, print, Mode};
use crate::args::{CiArgs, Target};
use crate::client::{extend_body, Answer, Client};
use crate::connection::Connection;
use crate::error::{exit, Error};
use crate::pipeline::{self, Platform};
use dolly_types::human as humanize;

/// How long a create waits for a template's first import to finish.
const IMPORT_WAIT: Duration = Duration::from_secs(600);
/// How often it asks again meanwhile.
const IMPORT_POLL: Duration = Duration::from_secs(5);

/// How the instance was obtained, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum How {
    Created,
    Reused,
    Started,
}

pub fn run(client: &Client, args: &CiArgs, mode: Mode) -> Result<i32, Error> {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let platform = pipeline::detect(&get);
    let result = up_or_down(client, args, mode, &platform, &get);
    if let (Err(e), Platform::GitHub { .. }) = (&result, &platform) {
        // An annotation on the run, besides the line on stderr.
        let _ = print(&pipeline::error_annotation(&e.to_string()));
    }
    result
}

fn up_or_down(
    client: &Client,
    args: &CiArgs,
    mode: Mode,
    platform: &Platform,
    get: pipeline::Lookup,
) -> Result<i32, Error> {
    let name = match &args.name {
        Some(n) => n.clone(),
        None => {
            let d = pipeline::derive_name(get).ok_or(Error::NoCiName)?;
            mode.note(&format!("dolly ci: named {} (from {})", d.name, d.from));
            d.name
        }
    };
    let target = Target {
        template: args.template.clone(),
        name,
    };
    if args.down {
        return down(client, &target.template, &target.name, mode);
    }
    let started = Instant::now();
    let (a, how) = obtain(client, &target, args, mode)?;
    let c = connection(&a.value)?;
    let vars = variables(&c, &target.name);
    let wrote = write(platform, args, &vars, &c, mode)?;
    if mode.json {
        print(&crate::output::json(&a.raw))?;
    }
    let what = match how {
        How::Created => "created",
        How::Reused => "reused",
        How::Started => "started again (it was stopped)",
    };
    mode.note(&format!(
        "dolly ci: {}/{} {what} in {:.1}s: {}:{} database {}, expires {}; {wrote}",
        target.template,
        target.name,
        started.elapsed().as_secs_f64(),
        c.host,
        c.port,
        c.database,
        humanize::expiry(a.value.expires_at, Utc::now()),
    ));
    Ok(exit::OK)
}

/// What the job gets, in this order.
fn variables(c: &Connection, name: &InstanceName) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", c.url()),
        ("MYSQL_HOST", c.host.clone()),
        ("MYSQL_PORT", c.port.to_string()),
        ("MYSQL_USER", c.user.clone()),
        ("MYSQL_PASSWORD", c.password.clone()),
        ("MYSQL_DATABASE", c.database.clone()),
        ("DOLLY_NAME", name.to_string()),
    ]
}

/// Writes the variables where `platform` reads them; says where, for the
/// log.
fn write(
    platform: &Platform,
    args: &CiArgs,
    vars: &[(&'static str, String)],
    c: &Connection,
    mode: Mode,
) -> Result<String, Error> {
    match platform {
        Platform::GitHub {
            env_file,
            output_file,
        } => {
            // First, so the runner hides them from every later line.
            print(&pipeline::mask_lines(&[&c.password, &c.url()]))?;
            let mut said = Vec::new();
            if let Some(file) = env_file {
                append(file, &pipeline::github_lines(vars))?;
                said.push("DATABASE_URL and MYSQL_* are set for the next steps ($GITHUB_ENV)");
            }
            if let Some(file) = output_file {
                let outputs: Vec<(&str, String)> = vars
                    .iter()
                    .map(|(k, v)| (output_name(k), v.clone()))
                    .chain(std::iter::once(("template", args.template.to_string())))
                    .collect();
                append(file, &pipeline::github_lines(&outputs))?;
                said.push("outputs: database-url, host, port, user, password, database, name, template ($GITHUB_OUTPUT)");
            }
            if said.is_empty() {
                return Err(Error::CiOutput(
                    "GITHUB_ACTIONS is true but neither GITHUB_ENV nor GITHUB_OUTPUT is set: run dolly ci in a step".to_owned(),
                ));
            }
            Ok(said.join("; "))
        }
        Platform::GitLab => {
            let text = pipeline::dotenv(vars)?;
            std::fs::write(&args.dotenv, text).map_err(|source| Error::File {
                action: "write",
                path: args.dotenv.display().to_string(),
                source,
            })?;
            Ok(format!(
                "wrote {} (artifacts:reports:dotenv hands it to later jobs; in this job: set -a; . ./{}; set +a)",
                args.dotenv.display(),
                args.dotenv.display()
            ))
        }
        Platform::Shell => {
            if !mode.json {
                let lines: String = vars
                    .iter()
                    .map(|(k, v)| format!("export {k}={}\n", crate::connection::shell_quote(v)))
                    .collect();
                print(&lines)?;
            }
            Ok("export lines on stdout: eval them".to_owned())
        }
    }
}

/// The GitHub output for a variable: `database-url`, `host`, ..., `name`.
fn output_name(var: &str) -> &'static str {
    match var {
        "DATABASE_URL" => "database-url",
        "MYSQL_HOST" => "host",
        "MYSQL_PORT" => "port",
        "MYSQL_USER" => "user",
        "MYSQL_PASSWORD" => "password",
        "MYSQL_DATABASE" => "database",
        _ => "name",
    }
}

/// Appends to a file the runner reads after the step.
fn append(file: &std::path::Path, text: &str) -> Result<(), Error> {
    let error = |source| Error::File {
        action: "write",
        path: file.display().to_string(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(file)
        .map_err(error)?;
    f.write_all(text.as_bytes()).map_err(error)
}

/// The instance: reused when it exists (started if stopped, its lease
/// renewed to `--ttl`), else created, waiting out a template's first
/// import.
fn obtain(
    client: &Client,
    target: &Target,
    args: &CiArgs,
    mode: Mode,
) -> Result<(Answer<Instance>, How), Error> {
    let (t, n) = (&target.template, &target.name);
    let deadline = Instant::now() + IMPORT_WAIT;
    loop {
        match client.instance(t, n) {
            Ok(a) => return reuse(client, target, a, args, mode),
            Err(e) if e.is_instance_not_found() => {}
            Err(e) => return Err(e),
        }
        match create(
            client,
            target,
            args.ttl,
            args.from.as_ref(),
            &crate::client::Keep::default(),
            mode,
        ) {
            Ok(a) => return Ok((a, How::Created)),
            // Created meanwhile (a parallel job), or another user's.
            Err(e) if e.is_exists() => {
                return match client.instance(t, n) {
                    Ok(a) => reuse(client, target, a, args, mode),
                    Err(e) if e.is_instance_not_found() => Err(Error::NameTaken {
                        template: t.to_string(),
                        name: n.to_string(),
                    }),
                    Err(e) => Err(e),
                };
            }
            Err(Error::Api { code, .. })
                if code == "template_importing" && Instant::now() < deadline =>
            {
                mode.note(&format!(
                    "dolly ci: template {t} is being imported for the first time; waiting"
                ));
                std::thread::sleep(IMPORT_POLL);
            }
            Err(e) => return Err(e),
        }
    }
}

fn reuse(
    client: &Client,
    target: &Target,
    mut a: Answer<Instance>,
    args: &CiArgs,
    mode: Mode,
) -> Result<(Answer<Instance>, How), Error> {
    let (t, n) = (&target.template, &target.name);
    if args.from.is_some() {
        mode.note(&format!(
            "dolly ci: {t}/{n} exists: used as it is, --from ignored"
        ));
    }
    let mut how = How::Reused;
    if matches!(a.value.state, InstanceState::Stopped | InstanceState::Dead) {
        a = client.act(t, n, "start", None)?;
        how = How::Started;
    }
    let lease = args
        .ttl
        .filter(|d| !d.is_zero())
        .and_then(|d| chrono::Duration::try_seconds(i64::try_from(d.as_secs()).ok()?));
    if let (Some(lease), Some(expires)) = (lease, a.value.expires_at) {
        let wanted = Utc::now() + lease;
        if expires < wanted {
            // Extending counts from the expiry (from now once it passed).
            let from = expires.max(Utc::now());
            let by = (wanted - from).num_seconds().max(1) as u64;
            match client.act(t, n, "extend", Some(extend_body(by))) {
                Ok(extended) => {
                    a = extended;
                    mode.note(&format!(
                        "dolly ci: the lease of {t}/{n} is renewed: it expires {}",
                        humanize::expiry(a.value.expires_at, Utc::now())
                    ));
                }
                Err(e @ (Error::Unreachable { .. } | Error::Timeout { .. })) => return Err(e),
                Err(e) => mode.note(&format!(
                    "dolly ci: warning: the lease of {t}/{n} was not renewed: {e}"
                )),
            }
        }
    }
    Ok((a, how))
}

/// `--down`: removes it; gone already, or protected, is no failure of a
/// cleanup step.
fn down(client: &Client, t: &TemplateName, n: &InstanceName, mode: Mode) -> Result<i32, Error> {
    match client.delete(t, n, false) {
        Ok(()) => mode.note(&format!("dolly ci: removed {t}/{n}")),
        Err(e) if e.is_not_found() => {
            mode.note(&format!("dolly ci: {t}/{n} is already gone ({e})"));
        }
        Err(Error::Api { code, .. }) if code == "instance_protected" => {
            mode.note(&format!(
                "dolly ci: kept {t}/{n}: it is protected (dolly unprotect {t} {n}, or dolly rm --force)"
            ));
        }
        Err(e) => return Err(e),
    }
    Ok(exit::OK)
}
