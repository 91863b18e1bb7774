//! `dollyd`: the service (`serve`) and the nightly import (`update`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use dolly_core::config::Settings;
use dolly_core::instance::Manager;
use dolly_core::instance::Reap;
use dolly_core::template;
use dolly_server::startup::{command_context, reap_context, Application};
use dolly_types::TemplateName;

#[derive(Parser)]
#[command(
    name = "dollyd",
    version,
    about = "Throwaway copy-on-write MySQL/MariaDB databases"
)]
struct Cli {
    /// Configuration file (default: /etc/dolly/dolly.toml when present).
    #[arg(long, global = true, env = "DOLLY_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the REST API (the default).
    Serve,
    /// Import dumps (all, or the named ones) into new template versions.
    Update {
        /// Template names; every dump when none.
        names: Vec<String>,
        /// Import even when the dump, its post-import SQL and the image are
        /// those of the current version (otherwise: "unchanged").
        #[arg(long)]
        force: bool,
    },
    /// Remove expired, dead or unhealthy instances (as myaas's reaper).
    /// With no selector, `--expired`. Protected instances are never reaped.
    Reap {
        /// Instances whose time to live has passed.
        #[arg(long)]
        expired: bool,
        /// Instances whose server exited without a `stop`.
        #[arg(long)]
        dead: bool,
        /// Running instances that do not answer `SELECT 1`.
        #[arg(long)]
        unhealthy: bool,
        /// List what would be removed; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

fn main() -> ExitCode {
    dolly_server::install_crypto_provider();
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("dollyd: {e}");
            return ExitCode::from(2);
        }
    };
    dolly_server::telemetry::init(settings.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dollyd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(settings).await.map(|()| ExitCode::SUCCESS),
            Command::Update { names, force } => update(settings, &names, force).await,
            Command::Reap {
                expired,
                dead,
                unhealthy,
                dry_run,
            } => {
                let what = Reap {
                    expired: expired || !(dead || unhealthy),
                    dead,
                    unhealthy,
                    dry_run,
                };
                reap(settings, what).await
            }
        }
    });
    // A thread still blocked reading a dump past its import_timeout (a
    // stalled mount) must not keep the process from exiting.
    runtime.shutdown_timeout(std::time::Duration::from_secs(10));
    match result {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("dollyd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    app.run_until_stopped().await.context("server failed")
}

async fn update(settings: Settings, names: &[String], force: bool) -> anyhow::Result<ExitCode> {
    let only = names
        .iter()
        .map(|n| TemplateName::parse(n))
        .collect::<Result<Vec<_>, _>>()?;
    let ctx = command_context(settings, "for an update").await?;
    let manager = Manager::new(Arc::clone(&ctx));
    let opts = template::UpdateOptions {
        force,
        ..Default::default()
    };
    // This process's own webhook deliveries (serve is another process):
    // core emits an event per outcome into the context's events.
    let hooks = dolly_server::webhooks::start(&ctx);
    let outcomes = template::update_with(&ctx, &only, &manager, &opts).await?;
    let mut failed = 0;
    for o in &outcomes {
        match &o.result {
            Ok(m) if o.unchanged => println!(
                "{}: unchanged (version {} came from the same dump, post-import SQL and image; --force re-imports)",
                o.template, m.version
            ),
            Ok(m) => println!(
                "{}: imported {} in {:.1} s ({:.1} MB/s) -> version {}",
                o.template,
                m.source_dump,
                m.import_seconds,
                m.dump_bytes as f64 / 1e6 / m.import_seconds.max(0.001),
                m.version
            ),
            Err(e) => {
                failed += 1;
                println!("{}: FAILED: {e}", o.template);
            }
        }
    }
    if outcomes.is_empty() {
        println!("no dumps in {}", ctx.dumps_dir().display());
    }
    if let Some(task) = hooks {
        // The deliveries end once the context (its events' sender) is
        // gone and the queue is drained; they retry for about a minute.
        drop(manager);
        drop(ctx);
        if tokio::time::timeout(std::time::Duration::from_secs(90), task)
            .await
            .is_err()
        {
            tracing::warn!("webhook deliveries still pending at exit were dropped");
        }
    }
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn reap(settings: Settings, what: Reap) -> anyhow::Result<ExitCode> {
    // A dry run changes nothing: it may look beside a serving dollyd.
    let (ctx, _lock) = if what.dry_run {
        (command_context(settings, "to reap").await?, None)
    } else {
        let (ctx, lock) = reap_context(settings).await?;
        (ctx, Some(lock))
    };
    let manager = Manager::new(ctx);
    let report = manager.reap(&what).await?;
    for r in &report.instances {
        let verb = if what.dry_run {
            "would remove"
        } else if r.removed {
            "removed"
        } else {
            "could not remove"
        };
        println!("{verb} {}/{} ({})", r.template, r.name, r.reason);
    }
    if report.instances.is_empty() {
        println!("nothing to reap");
    }
    let failed = !what.dry_run && report.instances.iter().any(|r| !r.removed);
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
