//! `dolly-bench`: measures what dolly is for, in one invocation.
//!
//! ```text
//! cargo run --release -p dolly-bench -- [--quick] [--only pool|import]
//! ```
//!
//! Generates mysqldump-shaped dumps, imports them with dolly's `update` and
//! with the plain client on a default-configuration server, then measures
//! create-to-ready through the API of a real dollyd (this binary re-run as a
//! child process with the `__dollyd` argument: the code of `dollyd serve`),
//! the floor (a bare engine start on a reflink clone), forced full copies,
//! concurrency, memory, deletes and dollyd's own cost. Prints a Markdown
//! report and writes the figures to `target/bench/results.json`.
//!
//! Every container it causes carries `dolly-bench=1`; they are all removed
//! at the end, also after an error or Ctrl-C.
//!
//! Modules: `args` (command line), `bench` (the shared state and the order
//! of the measurements), `filesystem` (the reflink filesystem and the
//! no-reflink copy), `dumpgen` (the dump generator), `dumps` (generation,
//! cache and reading), `import` (issue 12: dolly's update against the plain
//! client, the ablation, the unchanged skip, the physical import, the
//! identical-results check), `dollyd` (the child process and its API),
//! `create` (creates, deletes, concurrency, memory, listing), `floor` (bare
//! starts on clones and the settings ablation), `pool` (the warm pool
//! against the floor, `--only pool`), `report` (figures, targets,
//! Markdown), `sys` (what `/proc` and the cgroups tell), `util`.

mod args;
mod bench;
mod create;
mod dollyd;
mod dumpgen;
mod dumps;
mod filesystem;
mod floor;
mod import;
mod pool;
mod report;
mod servers;
mod standby;
mod sys;
mod util;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{anyhow, Context as _};
use dolly_core::clone::remove_tree;
use dolly_engine::{DockerEngine, Engine};
use futures_util::future::join_all;

use args::Args;
use bench::Bench;
use util::{log, workspace_dir};

/// The label on every container the bench causes.
const LABEL: &str = "dolly-bench";

/// This run's `--base` when it is not the default (see [`label_value`]).
static LABEL_VALUE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The value of this run's `dolly-bench` label: `DOLLY_BENCH_RUN` when set,
/// else the `--base` folder when it is not the default, else `1`; so two
/// benches on one engine (each with its own run name or `--base`) never
/// sweep each other's containers.
fn label_value() -> String {
    std::env::var("DOLLY_BENCH_RUN")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| LABEL_VALUE.get().cloned())
        .unwrap_or_else(|| "1".to_owned())
}

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("__dollyd") {
        return dollyd::child_main();
    }
    // Usage errors exit 2 with clap's message; --help exits 0.
    let args = <Args as clap::Parser>::parse();
    // `DOLLY_BENCH_LOG=dolly_core=debug`: dolly's own log on standard
    // error (per-session timings of the split load, for instance).
    if let Ok(filter) = std::env::var("DOLLY_BENCH_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    if let Some(base) = &args.base {
        if base != std::path::Path::new("/srv/dolly-bench") {
            let _ = LABEL_VALUE.set(base.display().to_string());
        }
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dolly-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_guarded(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dolly-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn bench_labels() -> BTreeMap<String, String> {
    BTreeMap::from([(LABEL.to_owned(), label_value())])
}

/// Removes every container carrying this run's label.
async fn sweep(engine: &dyn Engine) -> anyhow::Result<usize> {
    let list = engine.list(&bench_labels()).await?;
    let n = list.len();
    let removals = list.iter().map(|c| engine.remove(&c.id));
    for r in join_all(removals).await {
        r?;
    }
    Ok(n)
}

async fn run_guarded(args: Args) -> anyhow::Result<()> {
    let engine: Arc<dyn Engine> = Arc::new(
        DockerEngine::connect()
            .await
            .context("the bench needs a Docker Engine")?,
    );
    engine
        .ping()
        .await
        .context("the bench needs a running Docker Engine")?;
    let left = sweep(engine.as_ref()).await?;
    if left > 0 {
        eprintln!("removed {left} containers left by an earlier run");
    }
    let task = tokio::spawn(run(args, Arc::clone(&engine)));
    let abort = task.abort_handle();
    let result = tokio::select! {
        r = task => match r {
            Ok(r) => r,
            Err(e) => Err(anyhow!("the bench panicked: {e}")),
        },
        _ = tokio::signal::ctrl_c() => {
            abort.abort();
            Err(anyhow!("interrupted"))
        }
    };
    // Whatever happened: no container of ours survives.
    match sweep(engine.as_ref()).await {
        Ok(n) if n > 0 => eprintln!("removed {n} remaining bench containers"),
        Ok(_) => {}
        Err(e) => eprintln!("cannot sweep bench containers: {e}"),
    }
    result
}

/// Sets up, measures everything, then prints and writes the report (also
/// after a failed measurement, with the error in it).
async fn run(args: Args, engine: Arc<dyn Engine>) -> anyhow::Result<()> {
    let mut bench = Bench::new(args, engine).await?;
    let result = bench.all().await;
    if let Err(e) = &result {
        bench.report.errors.push(format!("{e:#}"));
    }
    bench.report.finish();
    let md = bench.report.markdown();
    println!("{md}");
    let out = workspace_dir().join("target/bench");
    std::fs::create_dir_all(&out)?;
    std::fs::write(
        out.join("results.json"),
        serde_json::to_vec_pretty(&bench.report)?,
    )?;
    std::fs::write(out.join("results.md"), &md)?;
    log(format!("wrote {}", out.join("results.json").display()));
    if !bench.args.keep {
        let _ = sweep(bench.engine.as_ref()).await;
        if let Err(e) = remove_tree(&bench.data) {
            log(format!("cannot remove {}: {e}", bench.data.display()));
        }
    }
    result
}
