//! The commands, one module each (atuin's shape): a module holds its
//! command's arguments (`Args`, clap) and what it does (`Args::run`):
//! requests through [`Client`], output through [`output`], notes on
//! stderr. Adding a command is a module and a line in `args::Command`.
//! This module keeps what several commands share.

pub mod ci;
pub mod completions;
pub mod container;
pub mod df;
pub mod diff;
pub mod env;
pub mod export;
pub mod extend;
pub mod import;
pub mod ls;
pub mod new;
pub mod pool;
pub mod promote;
pub mod protect;
pub mod push;
pub mod reset;
pub mod restore;
pub mod rm;
pub mod shell;
pub mod show;
pub mod snapshot;
pub mod snapshots;
pub mod start;
pub mod stop;
pub mod templates;
pub mod unprotect;
pub mod url;

use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use clap::CommandFactory;
use dolly_types::v1::Instance;
use dolly_types::{InstanceName, TemplateName};

use crate::args::{Cli, Command, Obtain, SnapRef, Target};
use crate::client::{Answer, Client, Keep, Security, Upload};
use crate::connection::Connection;
use crate::error::{exit, Error};
use crate::output;
use dolly_types::human as humanize;
use dolly_types::human::whole_seconds;

/// How output is wanted, from the global options.
#[derive(Debug, Clone, Copy)]
pub struct Mode {
    pub json: bool,
    pub quiet: bool,
}

impl Mode {
    /// Notes on stderr: what happened besides the answer.
    pub(super) fn note(&self, text: &str) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }

    /// A spinner only for a person watching a terminal.
    pub(super) fn spinner(&self, message: String) -> Option<indicatif::ProgressBar> {
        if self.json || self.quiet || !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_message(message);
        bar.enable_steady_tick(Duration::from_millis(100));
        Some(bar)
    }
}

/// Writes to stdout; a closed pipe is an error like any other.
pub(super) fn print(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// What every command runs with: dollyd's client, the output mode, now.
pub struct Ctx {
    pub client: Client,
    pub mode: Mode,
    pub now: chrono::DateTime<Utc>,
}

/// Runs the command; the exit code on success (`shell` passes its
/// client's through). Each command is a module of its own below this one:
/// its arguments (`Args`) and what it does (`Args::run`).
pub fn run(cli: Cli) -> Result<i32, Error> {
    if let Command::Completions(c) = cli.command {
        return c.run();
    }
    // `snapshot`'s words are checked before anything else, as clap's own.
    if let Command::Snapshot(words) = &cli.command {
        words.action()?;
    }
    let security = Security {
        ca_cert: cli.ca_cert.clone(),
        insecure_http: cli.insecure_http,
    };
    let ctx = Ctx {
        client: Client::new(&cli.url, cli.token.as_deref(), &security)?,
        mode: Mode {
            json: cli.json,
            quiet: cli.quiet,
        },
        now: Utc::now(),
    };
    match cli.command {
        Command::New(c) => c.run(&ctx),
        Command::Show(c) => c.run(&ctx),
        Command::Shell(c) => c.run(&ctx),
        Command::Rm(c) => c.run(&ctx),
        Command::Extend(c) => c.run(&ctx),
        Command::Protect(c) => c.run(&ctx),
        Command::Unprotect(c) => c.run(&ctx),
        Command::Stop(c) => c.run(&ctx),
        Command::Start(c) => c.run(&ctx),
        Command::Reset(c) => c.run(&ctx),
        Command::Snapshots(c) => c.run(&ctx),
        Command::Restore(c) => c.run(&ctx),
        Command::Promote(c) => c.run(&ctx),
        Command::Export(c) => c.run(&ctx),
        Command::Push(c) => c.run(&ctx),
        Command::Import(c) => c.run(&ctx),
        Command::Df(c) => c.run(&ctx),
        Command::Diff(c) => c.run(&ctx),
        Command::Pool(c) => c.run(&ctx),
        Command::Ls(c) => c.run(&ctx),
        Command::Templates(c) => c.run(&ctx),
        Command::Container(c) => c.run(&ctx),
        Command::Url(c) => c.run(&ctx),
        Command::Env(c) => c.run(&ctx),
        Command::Snapshot(c) => c.run(&ctx),
        Command::Ci(args) => ci::run(&ctx.client, &args, ctx.mode),
        Command::Completions(c) => c.run(),
    }
}

/// `template/name`, for messages.
pub(super) fn at(target: &Target) -> String {
    format!("{}/{}", target.template, target.name)
}

/// Prints an answer: its JSON with `--json`, nothing with `--quiet`, else
/// the text `human` makes.
pub(super) fn answer<T>(
    a: &Answer<T>,
    mode: Mode,
    human: impl FnOnce() -> String,
) -> Result<(), Error> {
    if mode.json {
        print(&output::json(&a.raw))
    } else if mode.quiet {
        Ok(())
    } else {
        print(&human())
    }
}

/// Runs a request that can take seconds under a spinner (on a terminal).
pub(super) fn slow<T>(
    mode: Mode,
    message: String,
    request: impl FnOnce() -> Result<T, Error>,
) -> Result<T, Error> {
    let spinner = mode.spinner(message);
    let result = request();
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    result
}

/// Connection details, or why there are none.
pub(super) fn connection(i: &Instance) -> Result<Connection, Error> {
    if i.port == 0 {
        return Err(Error::NotRunning {
            template: i.template.to_string(),
            name: i.name.to_string(),
            state: output::state(i.state).to_owned(),
        });
    }
    Ok(Connection::from(i))
}

pub(super) fn create(
    client: &Client,
    target: &Target,
    ttl: Option<Duration>,
    from: Option<&SnapRef>,
    keep: &Keep,
    mode: Mode,
) -> Result<Answer<Instance>, Error> {
    let from = from.map(SnapRef::to_string);
    slow(
        mode,
        format!(
            "creating {} (waiting for its server to accept connections)",
            at(target)
        ),
        || {
            client.create(
                &target.template,
                &target.name,
                ttl.map(whole_seconds),
                from.as_deref(),
                keep,
            )
        },
    )
}

/// Whether FILE is `-`: stdout for `export`, stdin for `import`.
pub(super) fn is_dash(file: &Path) -> bool {
    file.as_os_str() == "-"
}

/// `export`: the snapshot's archive into `file` (`-`: stdout). A file is
/// written under a temporary name next to it and renamed once complete, so
/// FILE is either the whole archive or untouched.
pub(super) fn export(
    client: &Client,
    template: &TemplateName,
    from: &SnapRef,
    file: &Path,
    mode: Mode,
) -> Result<(), Error> {
    let to_stdout = is_dash(file);
    if to_stdout && std::io::stdout().is_terminal() {
        return Err(Error::Terminal(
            "refusing to write an archive to a terminal: give a FILE or redirect stdout",
        ));
    }
    let mut response = client.export(template, &from.name, &from.snapshot)?;
    let spinner = mode.spinner(format!("exporting {template}/{from}"));
    if let Some(s) = &spinner {
        if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg}: {bytes}") {
            s.set_style(style);
        }
    }
    let shown = if to_stdout {
        "stdout".to_owned()
    } else {
        file.display().to_string()
    };
    let result = if to_stdout {
        let mut out = std::io::stdout().lock();
        copy_archive(client, &mut response, &mut out, spinner.as_ref(), "stdout")
            .and_then(|n| out.flush().map(|()| n).map_err(Error::Output))
    } else {
        write_file(client, &mut response, file, spinner.as_ref())
    };
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    let bytes = result?;
    let summary = if mode.json {
        output::json(&serde_json::json!({ "file": shown, "bytes": bytes }))
    } else {
        format!(
            "exported {template}/{from} to {shown} ({}); import it with: dolly import {} {template} NAME\n",
            humanize::bytes(bytes),
            if to_stdout { "FILE" } else { shown.as_str() }
        )
    };
    if mode.quiet && !mode.json {
        return Ok(());
    }
    if to_stdout {
        // stdout is the archive: the summary goes to stderr.
        eprint!("{summary}");
        Ok(())
    } else {
        print(&summary)
    }
}

/// Writes the archive to a temporary file next to `file`, then renames it.
pub(super) fn write_file(
    client: &Client,
    from: &mut impl Read,
    file: &Path,
    spinner: Option<&indicatif::ProgressBar>,
) -> Result<u64, Error> {
    let shown = file.display().to_string();
    let file_error = |action: &'static str| {
        let path = shown.clone();
        move |source| Error::File {
            action,
            path,
            source,
        }
    };
    let name = file
        .file_name()
        .ok_or_else(|| {
            file_error("write")(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a file name",
            ))
        })?
        .to_string_lossy()
        .into_owned();
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let temp = dir.join(format!(".{name}.dolly-{}.part", std::process::id()));
    let mut out = File::options()
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(file_error("create"))?;
    let written = copy_archive(client, from, &mut out, spinner, &shown).and_then(|n| {
        out.sync_all().map_err(file_error("write"))?;
        drop(out);
        std::fs::rename(&temp, file).map_err(file_error("write"))?;
        Ok(n)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// Copies the archive as it arrives; a read error is the server's (or the
/// network's), a write error ours.
pub(super) fn copy_archive(
    client: &Client,
    from: &mut impl Read,
    to: &mut impl Write,
    spinner: Option<&indicatif::ProgressBar>,
    shown: &str,
) -> Result<u64, Error> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total: u64 = 0;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Error::Interrupted {
                    url: client.shown().to_owned(),
                    bytes: total,
                    reason: e.to_string(),
                })
            }
        };
        to.write_all(&buf[..n]).map_err(|source| Error::File {
            action: "write",
            path: shown.to_owned(),
            source,
        })?;
        total += n as u64;
        if let Some(s) = spinner {
            s.set_position(total);
        }
    }
}

/// `import`: a new instance from an archive file (`-`: stdin), streamed.
pub(super) fn import(
    client: &Client,
    file: &Path,
    target: &Target,
    ttl: Option<Duration>,
    mode: Mode,
) -> Result<Answer<Instance>, Error> {
    let (t, n) = (&target.template, &target.name);
    let (upload, size) = if is_dash(file) {
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            return Err(Error::Terminal(
                "refusing to read an archive from a terminal: give a FILE or redirect stdin",
            ));
        }
        (Upload::Stream(Box::new(stdin)), None)
    } else {
        let file_error = |source| Error::File {
            action: "read",
            path: file.display().to_string(),
            source,
        };
        let f = File::open(file).map_err(file_error)?;
        let meta = f.metadata().map_err(file_error)?;
        if meta.is_dir() {
            return Err(file_error(std::io::Error::other("it is a directory")));
        }
        (Upload::Sized(Box::new(f), meta.len()), Some(meta.len()))
    };
    // Ask first: the server refuses a taken name without reading the
    // archive, but its answer can then be lost in a connection it closes
    // while the upload still runs (and there is no point in sending it).
    if client.instance(t, n).is_ok() {
        return Err(Error::Api {
            status: 409,
            code: "instance_exists".to_owned(),
            message: format!("instance '{t}/{n}' already exists"),
        });
    }
    let size = size.map_or_else(String::new, |b| format!(", {}", humanize::bytes(b)));
    slow(
        mode,
        format!("importing {} as {} (sending it{size}, then waiting for its server to accept connections)", file.display(), at(target)),
        || client.import(t, n, ttl.map(whole_seconds), upload),
    )
}

/// The instance, created first unless it exists (or `--no-create`).
pub(super) fn obtain_instance(
    client: &Client,
    target: &Target,
    obtain: &Obtain,
    mode: Mode,
) -> Result<Answer<Instance>, Error> {
    let (t, n) = (&target.template, &target.name);
    match client.instance(t, n) {
        Ok(a) => {
            if obtain.ttl.is_some() {
                mode.note(&format!(
                    "{t}/{n} already exists; --ttl does not change it (it expires {})",
                    humanize::expiry(a.value.expires_at, Utc::now())
                ));
            }
            Ok(a)
        }
        Err(e) if e.is_instance_not_found() && !obtain.no_create => {
            match create(client, target, obtain.ttl, None, &Keep::default(), mode) {
                Ok(a) => {
                    mode.note(&format!(
                        "created {t}/{n} (expires {}); remove it with: dolly rm {t} {n}",
                        humanize::expiry(a.value.expires_at, Utc::now())
                    ));
                    Ok(a)
                }
                // Someone else created it meanwhile: theirs is ours.
                Err(e) if e.is_exists() => client.instance(t, n),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

pub(super) fn remove(
    client: &Client,
    template: &TemplateName,
    names: &[InstanceName],
    force: bool,
    mode: Mode,
) -> Result<i32, Error> {
    let mut failures: Vec<Error> = Vec::new();
    for n in names {
        match client.delete(template, n, force) {
            Ok(()) => {
                if !mode.quiet && !mode.json {
                    print(&format!("removed {template}/{n}\n"))?;
                }
            }
            Err(e) if force && e.is_not_found() => {}
            // One name: its error is the answer.
            Err(e) if names.len() == 1 => return Err(e),
            // No answer at all: the other names would fail the same way.
            Err(e @ (Error::Unreachable { .. } | Error::Timeout { .. })) => return Err(e),
            Err(e) => {
                eprintln!("dolly: {e}");
                failures.push(e);
            }
        }
    }
    match failures.first() {
        None => Ok(exit::OK),
        Some(first) => Err(Error::Several {
            failed: failures.len(),
            total: names.len(),
            code: first.exit_code(),
        }),
    }
}

pub(super) fn list(client: &Client, only: Option<&TemplateName>, mode: Mode) -> Result<(), Error> {
    let a = client.instances(only)?;
    let instances = &a.value.instances;
    if instances.is_empty() {
        // An empty list of a template that does not exist is a not found.
        if let Some(t) = only {
            client.template(t)?;
        }
    }
    if mode.json {
        return print(&output::json(&a.raw));
    }
    if mode.quiet {
        let names: String = instances
            .iter()
            .map(|i| format!("{} {}\n", i.template, i.name))
            .collect();
        return print(&names);
    }
    if instances.is_empty() {
        mode.note("no instances");
        return Ok(());
    }
    print(&output::instances(instances, Utc::now()))
}

pub(super) fn templates(
    client: &Client,
    one: Option<&TemplateName>,
    mode: Mode,
) -> Result<(), Error> {
    let now = Utc::now();
    if let Some(t) = one {
        let a = client.template(t)?;
        if mode.json {
            return print(&output::json(&a.raw));
        }
        if mode.quiet {
            let names: String = a
                .value
                .versions
                .iter()
                .map(|v| format!("{}\n", v.version))
                .collect();
            return print(&names);
        }
        return print(&output::template_detail(&a.value, now));
    }
    let a = client.templates()?;
    if mode.json {
        return print(&output::json(&a.raw));
    }
    let list = &a.value.templates;
    if mode.quiet {
        let names: String = list.iter().map(|t| format!("{}\n", t.name)).collect();
        return print(&names);
    }
    if list.is_empty() {
        mode.note("no templates yet: put dumps in dollyd's dumps folder and run `dollyd update`");
        return Ok(());
    }
    print(&output::templates(list, now))
}
