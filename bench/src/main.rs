//! `dolly-bench`: measures what dolly is for, in one invocation.
//!
//! ```text
//! cargo run --release -p dolly-bench -- [--quick]
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

mod dumpgen;
mod report;
mod sys;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use dolly_core::clone::{clone_tree, own_tree, remove_tree, CloneMode};
use dolly_core::config::Settings;
use dolly_core::context::Context;
use dolly_core::dbserver::{self, ImageInfo};
use dolly_engine::{Bind, ContainerSpec, DockerEngine, Engine, Publish, RestartPolicy};
use dolly_types::TemplateName;
use futures_util::future::join_all;
use mysql_async::prelude::Queryable;
use tokio::io::{AsyncBufReadExt, BufReader};

use report::*;

/// The label on every container the bench causes.
const LABEL: (&str, &str) = ("dolly-bench", "1");
const IMAGE_DEFAULT: &str = "dolly-mariadb:10.11";
const SEED: u64 = 0x0d01_1be5;
const MIB: f64 = 1024.0 * 1024.0;

struct Args {
    quick: bool,
    /// Instances listed for the `GET /db` cost (0: skip).
    list_instances: usize,
    samples: usize,
    base: Option<PathBuf>,
    keep: bool,
}

fn usage() -> &'static str {
    "usage: dolly-bench [--quick] [--samples N] [--list-instances N] [--base DIR] [--keep]\n\
     \n\
     --quick              ~20 MB and ~100 MB dumps instead of ~100 MB and ~1 GB; no 200-instance list\n\
     --samples N          sequential creates per template and mode (default 20)\n\
     --list-instances N   instances running for the GET /db measurement (default 200, 0 with --quick)\n\
     --base DIR           where the reflink filesystem is mounted (default /srv/dolly-bench)\n\
     --keep               keep the run's data folder (templates) at the end\n\
     \n\
     Environment: DOLLY_BENCH_IMAGE (default dolly-mariadb:10.11)."
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        quick: false,
        list_instances: 200,
        samples: 20,
        base: None,
        keep: false,
    };
    let mut list_set = false;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => args.quick = true,
            "--keep" => args.keep = true,
            "--samples" => {
                args.samples = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| anyhow!("--samples needs a number >= 1"))?
            }
            "--list-instances" => {
                list_set = true;
                args.list_instances = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| anyhow!("--list-instances needs a number"))?
            }
            "--base" => {
                args.base = Some(
                    it.next()
                        .map(PathBuf::from)
                        .ok_or_else(|| anyhow!("--base needs a folder"))?,
                )
            }
            "-h" | "--help" => {
                println!("{}", usage());
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{}", usage()),
        }
    }
    if args.quick && !list_set {
        args.list_instances = 0;
    }
    Ok(args)
}

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("__dollyd") {
        return child_dollyd();
    }
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("dolly-bench: {e:#}");
            return ExitCode::from(2);
        }
    };
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

/// `dollyd serve`, as `src/main.rs` runs it, in a child process: settings
/// from `DOLLY_*`, then prints `LISTENING addr` on standard output.
fn child_dollyd() -> ExitCode {
    let settings = match Settings::load(None) {
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
        let app = dolly_server::startup::Application::build(settings).await?;
        println!("LISTENING {}", app.address());
        app.run_until_stopped().await.context("server failed")
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dollyd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn bench_labels() -> BTreeMap<String, String> {
    BTreeMap::from([(LABEL.0.to_owned(), LABEL.1.to_owned())])
}

/// Removes every container carrying the bench's label.
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

fn log(msg: impl AsRef<str>) {
    eprintln!(
        "[{}] {}",
        chrono::Utc::now().format("%H:%M:%S"),
        msg.as_ref()
    );
}

fn random_hex(n: usize) -> String {
    let mut rng = dumpgen::Rng::new(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            ^ u64::from(std::process::id()),
    );
    (0..n)
        .map(|_| char::from(b"0123456789abcdef"[rng.below(16) as usize]))
        .collect()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Mounts the reflink filesystem when root; returns the base folder and
/// whether it clones with reflinks.
fn setup_filesystem(args: &Args) -> anyhow::Result<(PathBuf, bool)> {
    let base = args
        .base
        .clone()
        .unwrap_or_else(|| PathBuf::from("/srv/dolly-bench"));
    if is_root() {
        let script = workspace_dir().join("scripts/reflink-fs.sh");
        let out = std::process::Command::new("bash")
            .arg(&script)
            .arg(&base)
            .arg("24G")
            .output()
            .with_context(|| format!("run {}", script.display()))?;
        if !out.status.success() {
            bail!(
                "{} failed: {}",
                script.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    } else {
        log("not root: no reflink filesystem is mounted; the bench runs without reflinks unless the folder has them");
    }
    std::fs::create_dir_all(&base).with_context(|| format!("create {}", base.display()))?;
    let reflink = CloneMode::detect(&base.join(".probe"))? == CloneMode::Reflink;
    let _ = std::fs::remove_dir_all(base.join(".probe"));
    if !reflink {
        log(format!(
            "{} has no reflinks: clones are full copies (the figures show copy mode)",
            base.display()
        ));
    }
    Ok((base, reflink))
}

struct DumpSpec {
    template: &'static str,
    bytes: u64,
}

struct Bench {
    args: Args,
    engine: Arc<dyn Engine>,
    image: ImageInfo,
    settings: Settings,
    base: PathBuf,
    data: PathBuf,
    http: reqwest::Client,
    report: Report,
}

async fn run(args: Args, engine: Arc<dyn Engine>) -> anyhow::Result<()> {
    let (base, reflink) = setup_filesystem(&args)?;
    let image_name = std::env::var("DOLLY_BENCH_IMAGE").unwrap_or_else(|_| IMAGE_DEFAULT.into());
    engine.ensure_image(&image_name).await.with_context(|| {
        format!("image {image_name} is missing: run docker/build-mariadb-image.sh")
    })?;
    let prefix = format!("dbench{}-", random_hex(6));
    let image = ImageInfo::probe(
        engine.as_ref(),
        &image_name,
        &format!("{prefix}probe"),
        bench_labels(),
    )
    .await?;
    let data = base.join("run");
    remove_tree(&data).with_context(|| format!("clean {}", data.display()))?;
    std::fs::create_dir_all(data.join("dumps"))?;
    let mut settings = Settings::with_data_dir(&data)?;
    settings.listen = "127.0.0.1:0".parse()?;
    settings.public_host = "127.0.0.1".to_owned();
    settings.instance_bind = "127.0.0.1".parse()?;
    settings.image = image_name.clone();
    settings.container_prefix = prefix;
    settings.labels = bench_labels();
    settings.default_ttl = Some(Duration::from_secs(3 * 3600));

    let mut machine = sys::machine();
    machine["filesystem"] = serde_json::json!(sys::filesystem(&base));
    machine["reflinks"] = serde_json::json!(reflink);
    machine["image"] = serde_json::json!(format!("{image_name} ({})", image.version));
    let mut bench = Bench {
        report: Report::new(args.quick, machine),
        args,
        engine,
        image,
        settings,
        base,
        data,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(900))
            .pool_max_idle_per_host(0)
            .build()?,
    };
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

impl Bench {
    fn dumps(&self) -> Vec<DumpSpec> {
        let mb = 1_000_000;
        if self.args.quick {
            vec![
                DumpSpec {
                    template: "small",
                    bytes: 20 * mb,
                },
                DumpSpec {
                    template: "large",
                    bytes: 100 * mb,
                },
            ]
        } else {
            vec![
                DumpSpec {
                    template: "small",
                    bytes: 100 * mb,
                },
                DumpSpec {
                    template: "large",
                    bytes: 1000 * mb,
                },
            ]
        }
    }

    async fn all(&mut self) -> anyhow::Result<()> {
        let specs = self.dumps();
        let mut counts = BTreeMap::new();
        for d in &specs {
            let c = self.generate(d).await?;
            counts.insert(d.template, c);
        }
        self.decompression(&specs).await?;
        for d in &specs {
            self.import(d, &counts[d.template]).await?;
        }
        let mut dollyd = Dollyd::spawn(self, &self.data, false, "auto").await?;
        self.report.dollyd.idle_rss_mib = dollyd.rss_mib();
        self.report.dollyd.list_ms.push(ListCost {
            instances: 0,
            p50_ms: self.list_p50(&dollyd).await?,
        });
        for d in &specs {
            self.verify(&dollyd, d.template, &counts[d.template])
                .await?;
        }
        for d in &specs {
            let seq = self.sequential(&dollyd, d.template, "seq").await?;
            self.report.creates.push(seq);
            let floor = self.floor(d.template).await?;
            self.report.floors.push(floor);
        }
        {
            // DOLLY_CLONE=copy on the same (XFS) data folder.
            let copy = Dollyd::spawn(self, &self.data, true, "copy").await?;
            for d in &specs {
                let seq = self.sequential(&copy, d.template, "cp").await?;
                self.report.creates.push(seq);
            }
            copy.stop().await;
        }
        {
            // A real full copy: the templates on a filesystem with no
            // reflinks (the root filesystem, ext4 here).
            let dir = self.copy_data_dir()?;
            let copy = Dollyd::spawn(self, &dir, true, "copy-ext4").await?;
            let mut r = Ok(());
            for d in &specs {
                match self.sequential(&copy, d.template, "fc").await {
                    Ok(seq) => self.report.creates.push(seq),
                    Err(e) => {
                        r = Err(e);
                        break;
                    }
                }
            }
            copy.stop().await;
            let _ = sweep(self.engine.as_ref()).await;
            remove_tree(&dir)?;
            r?;
        }
        for d in &specs {
            for n in [8, 32] {
                let c = self.concurrent(&dollyd, d.template, n).await?;
                self.report.concurrency.push(c);
            }
        }
        for n in [8, 32] {
            self.concurrent_floor(specs[0].template, n).await?;
        }
        self.memory(&dollyd, specs[0].template).await?;
        self.ablation(specs[0].template).await?;
        if self.args.list_instances > 0 {
            self.many(&dollyd, specs[0].template, self.args.list_instances)
                .await?;
        }
        self.report.dollyd.rss_end_mib = dollyd.rss_mib();
        dollyd.stop_mut().await;
        Ok(())
    }

    // ---- dumps ----------------------------------------------------------

    async fn generate(&mut self, d: &DumpSpec) -> anyhow::Result<dumpgen::Counts> {
        let cache = self.base.join("dumps-cache");
        std::fs::create_dir_all(&cache)?;
        let file = cache.join(format!("{}-{}-{SEED:x}.sql", d.template, d.bytes));
        let counts_file = file.with_extension("counts.json");
        let counts = if file.is_file() && counts_file.is_file() {
            let text = std::fs::read(&counts_file)?;
            let v: Vec<(String, u64)> = serde_json::from_slice(&text)?;
            let mut c = dumpgen::Counts::default();
            for (t, n) in v {
                match t.as_str() {
                    "customers" => c.customers = n,
                    "order_items" => c.order_items = n,
                    "orders" => c.orders = n,
                    "products" => c.products = n,
                    _ => {}
                }
            }
            log(format!("dump {} (cached)", file.display()));
            self.report.dumps.push(DumpInfo {
                template: d.template.to_owned(),
                bytes: std::fs::metadata(&file)?.len(),
                rows: c.tables(),
                generate_s: None,
            });
            c
        } else {
            log(format!(
                "generating {} (~{} MB)",
                file.display(),
                d.bytes / 1_000_000
            ));
            let started = Instant::now();
            let (f, bytes) = (file.clone(), d.bytes);
            let c =
                tokio::task::spawn_blocking(move || dumpgen::write_dump(&f, bytes, SEED)).await??;
            std::fs::write(&counts_file, serde_json::to_vec(&c.tables())?)?;
            self.report.dumps.push(DumpInfo {
                template: d.template.to_owned(),
                bytes: std::fs::metadata(&file)?.len(),
                rows: c.tables(),
                generate_s: Some(started.elapsed().as_secs_f64()),
            });
            c
        };
        let link = self.data.join("dumps").join(format!("{}.sql", d.template));
        let _ = std::fs::remove_file(&link);
        std::fs::hard_link(&file, &link)
            .or_else(|_| std::fs::copy(&file, &link).map(|_| ()))
            .with_context(|| format!("link {}", link.display()))?;
        Ok(counts)
    }

    /// dolly's dump reader (decompression + scan) alone, on the plain, gzip
    /// and zstd forms of the small dump and the plain large one.
    async fn decompression(&mut self, specs: &[DumpSpec]) -> anyhow::Result<()> {
        let cache = self.base.join("dumps-cache");
        let small = &specs[0];
        let src = cache.join(format!("{}-{}-{SEED:x}.sql", small.template, small.bytes));
        let dir = self.base.join("decompress");
        remove_tree(&dir)?;
        std::fs::create_dir_all(&dir)?;
        let gz = cache.join(format!(
            "{}-{}-{SEED:x}.sql.gz",
            small.template, small.bytes
        ));
        let zst = cache.join(format!(
            "{}-{}-{SEED:x}.sql.zst",
            small.template, small.bytes
        ));
        let (s2, gz2, zst2) = (src.clone(), gz.clone(), zst.clone());
        tokio::task::spawn_blocking(move || compress_variants(&s2, &gz2, &zst2)).await??;
        std::fs::hard_link(&src, dir.join("plain.sql"))?;
        std::fs::hard_link(&gz, dir.join("gzip.sql.gz"))?;
        std::fs::hard_link(&zst, dir.join("zstd.sql.zst"))?;
        let large = &specs[1];
        std::fs::hard_link(
            cache.join(format!("{}-{}-{SEED:x}.sql", large.template, large.bytes)),
            dir.join("plain-large.sql"),
        )?;
        let dumps = dolly_core::dump::discover(&dir)?;
        for d in dumps {
            let input = d.input_bytes();
            let form = match d.template.as_str() {
                "plain-large" => "plain (large)".to_owned(),
                other => other.to_owned(),
            };
            let (secs, out) = tokio::task::spawn_blocking(move || {
                use std::io::Read;
                let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
                let mut r = d.open(counter);
                let mut buf = vec![0u8; 1 << 20];
                let mut total = 0u64;
                let started = Instant::now();
                // Bounded by the file: read() returns 0 at its end.
                loop {
                    let n = r.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    total += n as u64;
                }
                Ok::<_, std::io::Error>((started.elapsed().as_secs_f64(), total))
            })
            .await??;
            self.report.decompression.push(Decompression {
                form,
                input_bytes: input,
                output_bytes: out,
                seconds: secs,
                output_mb_s: out as f64 / 1e6 / secs.max(1e-6),
            });
        }
        remove_tree(&dir)?;
        Ok(())
    }

    // ---- import ---------------------------------------------------------

    fn context(&self) -> anyhow::Result<Arc<Context>> {
        Ok(Arc::new(Context::new(
            self.settings.clone(),
            Arc::clone(&self.engine),
        )?))
    }

    async fn import(&mut self, d: &DumpSpec, counts: &dumpgen::Counts) -> anyhow::Result<()> {
        let dump_file = self.data.join("dumps").join(format!("{}.sql", d.template));
        let dump_bytes = std::fs::metadata(&dump_file)?.len();
        let t = TemplateName::parse(d.template)?;

        // dolly's update, in-process, as `dollyd update NAME` runs it.
        log(format!("dolly update {}", d.template));
        let ctx = self.context()?;
        let sampler = sys::CpuSampler::start(
            Arc::clone(&self.engine),
            format!("{}{}._import", self.settings.container_prefix, t),
        );
        let cpu0 = sys::self_cpu();
        let engine0 = sys::engine_cpu();
        let jiffies0 = sys::machine_jiffies();
        let started = Instant::now();
        let outcomes =
            dolly_core::template::update(&ctx, std::slice::from_ref(&t), |_| HashSet::new())
                .await?;
        let dolly_s = started.elapsed().as_secs_f64();
        let feed_cpu = sys::self_cpu() - cpu0;
        let engine_cpu = sys::engine_cpu() - engine0;
        let busy = sys::busy_cores(jiffies0, sys::machine_jiffies());
        let dolly_cpu = sys::split(&sampler.finish().await);
        let meta = match outcomes.into_iter().next().map(|o| o.result) {
            Some(Ok(m)) => m,
            Some(Err(e)) => bail!("dolly's import of {} failed: {e}", d.template),
            None => bail!("dolly's update imported nothing for {}", d.template),
        };
        log(format!("dolly update {}: {dolly_s:.1} s", d.template));

        // The baseline: the same dump piped into `mariadb` on a server with
        // its default configuration.
        log(format!("baseline import {}", d.template));
        let baseline = self.baseline(d.template, &dump_file).await?;
        log(format!(
            "baseline import {}: load {:.1} s",
            d.template, baseline.load_s
        ));
        let mut parallel = Vec::new();
        for (label, strip) in [
            ("2 sessions by table, dump as is", false),
            (
                "2 sessions by table, LOCK/UNLOCK TABLES lines removed",
                true,
            ),
        ] {
            log(format!("experiment {}: {label}", d.template));
            let p = self
                .parallel_experiment(d.template, &dump_file, 2, strip)
                .await?;
            log(format!("experiment {}: load {:.1} s", d.template, p.load_s));
            parallel.push((label, p));
        }
        let expected: Vec<(String, u64)> = counts.tables();
        let rows_match_generator = baseline.rows == expected;
        self.report.imports.push(Import {
            template: d.template.to_owned(),
            dump_bytes,
            dolly_update_s: dolly_s,
            dolly_mb_s: dump_bytes as f64 / 1e6 / dolly_s,
            dolly_template_bytes: meta.size_bytes,
            dolly_cpu,
            dolly_feed_cpu_s: feed_cpu,
            dolly_engine_cpu_s: engine_cpu,
            dolly_busy_cores: busy,
            baseline_engine_cpu_s: baseline.engine_cpu_s,
            baseline_busy_cores: baseline.busy_cores,
            baseline_total_s: baseline.total_s,
            baseline_load_s: baseline.load_s,
            baseline_mb_s: dump_bytes as f64 / 1e6 / baseline.load_s,
            baseline_cpu: baseline.cpu,
            speedup: baseline.load_s / dolly_s,
            baseline_rows: baseline.rows.clone(),
            baseline_checksums: baseline.checksums.clone(),
            dolly_rows: vec![],
            dolly_checksums: vec![],
            rows_match_generator,
            identical: false,
            parallel: parallel
                .into_iter()
                .map(|(label, p)| ParallelExperiment {
                    variant: label.to_owned(),
                    sessions: 2,
                    total_s: p.total_s,
                    load_s: p.load_s,
                    mb_s: dump_bytes as f64 / 1e6 / p.load_s,
                    speedup_vs_baseline: baseline.load_s / p.load_s,
                    identical: p.rows == baseline.rows && p.checksums == baseline.checksums,
                    engine_cpu_s: p.engine_cpu_s,
                    busy_cores: p.busy_cores,
                    cpu: p.cpu,
                })
                .collect(),
        });
        Ok(())
    }

    async fn baseline(&self, template: &str, dump_file: &Path) -> anyhow::Result<Baseline> {
        let datadir = dbserver::DATADIR;
        let socket = dbserver::SOCKET;
        let script = format!(
            "set -e; mariadb-install-db --no-defaults --datadir={datadir} \
             --auth-root-authentication-method=normal --skip-test-db >/tmp/init.log 2>&1 \
             || {{ cat /tmp/init.log; exit 1; }}; \
             exec mariadbd --no-defaults --datadir={datadir} --socket={socket} \
             --pid-file=/run/mysqld/mysqld.pid"
        );
        let cmd = vec!["sh".into(), "-c".into(), script];
        self.load("baseline", template, cmd, &[dump_file.to_path_buf()])
            .await
    }

    /// An experiment for the core owner: dolly's own import server
    /// (`ImageInfo::import_command`), the dump split by table into
    /// `sessions` client sessions that load at once (each gets the dump's
    /// header, so its session settings hold).
    async fn parallel_experiment(
        &self,
        template: &str,
        dump_file: &Path,
        sessions: usize,
        strip_locks: bool,
    ) -> anyhow::Result<Baseline> {
        let parts = split_dump(dump_file, &self.data, template, sessions, strip_locks)?;
        let cmd = self.image.import_command(self.settings.import_buffer_pool);
        let r = self.load("parallel", template, cmd, &parts).await;
        for p in &parts {
            let _ = std::fs::remove_file(p);
        }
        r
    }

    /// Starts a server with `cmd` on a fresh datadir, pipes each of `parts`
    /// into its own `mariadb` client at once, then reads row counts and
    /// checksums.
    async fn load(
        &self,
        kind: &str,
        template: &str,
        cmd: Vec<String>,
        parts: &[PathBuf],
    ) -> anyhow::Result<Baseline> {
        let dir = self.data.join(format!("{kind}-{template}"));
        remove_tree(&dir)?;
        std::fs::create_dir_all(&dir)?;
        own_tree(&dir, self.image.owner, true)?;
        let name = format!("{}{kind}-{template}", self.settings.container_prefix);
        let socket = dbserver::SOCKET;
        let spec = ContainerSpec {
            name: name.clone(),
            image: self.settings.image.clone(),
            cmd,
            user: Some(self.image.user()),
            binds: vec![Bind {
                host: dir.clone(),
                container: dbserver::DATADIR.to_owned(),
                read_only: false,
            }],
            publish: None,
            labels: bench_labels(),
            memory_bytes: None,
            restart: RestartPolicy::No,
        };
        let sampler = sys::CpuSampler::start(Arc::clone(&self.engine), name.clone());
        let started = Instant::now();
        self.engine.run(&spec).await?;
        let up = self
            .engine
            .exec(&name, self.image.wait_socket_command(120), None, None)
            .await?;
        if up.exit_code != 0 {
            let logs = self.engine.logs_tail(&name, 30).await.unwrap_or_default();
            bail!("the {kind} server did not start: {logs}");
        }
        let client = vec![
            "mariadb".to_owned(),
            "--no-defaults".to_owned(),
            format!("--socket={socket}"),
            "-uroot".to_owned(),
        ];
        let mut stdins = Vec::new();
        for p in parts {
            stdins.push(tokio::fs::File::open(p).await?);
        }
        let engine0 = sys::engine_cpu();
        let jiffies0 = sys::machine_jiffies();
        let load_started = Instant::now();
        let execs = stdins.into_iter().map(|f| {
            self.engine.exec(
                &name,
                client.clone(),
                Some(self.image.user()),
                Some(Box::pin(f)),
            )
        });
        let outs = tokio::time::timeout(Duration::from_secs(3 * 3600), join_all(execs))
            .await
            .map_err(|_| anyhow!("the {kind} load of {template} took over 3 h"))?;
        let load_s = load_started.elapsed().as_secs_f64();
        let total_s = started.elapsed().as_secs_f64();
        let engine_cpu_s = sys::engine_cpu() - engine0;
        let busy_cores = sys::busy_cores(jiffies0, sys::machine_jiffies());
        let cpu = sys::split(&sampler.finish().await);
        for out in outs {
            let out = out?;
            if out.exit_code != 0 {
                bail!(
                    "the {kind} load of {template} failed ({}): {}",
                    out.exit_code,
                    out.stderr
                );
            }
        }
        let tables = ["customers", "order_items", "orders", "products"];
        let db = dumpgen::DATABASE;
        let mut sql: Vec<String> = tables
            .iter()
            .map(|t| format!("SELECT '{t}', COUNT(*) FROM `{db}`.`{t}`;"))
            .collect();
        sql.push(format!(
            "CHECKSUM TABLE {};",
            tables
                .iter()
                .map(|t| format!("`{db}`.`{t}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let q = self
            .engine
            .exec(
                &name,
                vec![
                    "mariadb".into(),
                    "--no-defaults".into(),
                    format!("--socket={socket}"),
                    "-uroot".into(),
                    "-N".into(),
                    "-B".into(),
                    "-e".into(),
                    sql.join(" "),
                ],
                None,
                None,
            )
            .await?;
        if q.exit_code != 0 {
            bail!("{kind} check query failed: {}", q.stderr);
        }
        let mut rows = Vec::new();
        let mut checksums = Vec::new();
        for line in q.stdout.lines() {
            let mut f = line.split('\t');
            let (Some(a), Some(b)) = (f.next(), f.next()) else {
                continue;
            };
            if let Some(t) = a.strip_prefix(&format!("{db}.")) {
                checksums.push((t.to_owned(), b.to_owned()));
            } else {
                rows.push((a.to_owned(), b.parse().unwrap_or(0)));
            }
        }
        self.engine.remove(&name).await?;
        remove_tree(&dir)?;
        Ok(Baseline {
            total_s,
            load_s,
            engine_cpu_s,
            busy_cores,
            cpu,
            rows,
            checksums,
        })
    }

    /// Row counts and checksums of a template, through a real instance.
    async fn verify(
        &mut self,
        dollyd: &Dollyd,
        template: &str,
        counts: &dumpgen::Counts,
    ) -> anyhow::Result<()> {
        log(format!("verifying template {template}"));
        let created = dollyd.create(&self.http, template, "verify").await?;
        let creds = created.creds.clone();
        let result = async {
            let mut conn = connect(&creds).await?;
            let mut rows = Vec::new();
            for (t, _) in counts.tables() {
                let n: Option<u64> = conn
                    .query_first(format!(
                        "SELECT COUNT(*) FROM `{}`.`{t}`",
                        dumpgen::DATABASE
                    ))
                    .await?;
                rows.push((t, n.unwrap_or(0)));
            }
            let list = counts
                .tables()
                .iter()
                .map(|(t, _)| format!("`{}`.`{t}`", dumpgen::DATABASE))
                .collect::<Vec<_>>()
                .join(", ");
            let sums: Vec<(String, Option<String>)> =
                conn.query(format!("CHECKSUM TABLE {list}")).await?;
            let _ = conn.disconnect().await;
            let prefix = format!("{}.", dumpgen::DATABASE);
            let checksums: Vec<(String, String)> = sums
                .into_iter()
                .map(|(t, c)| {
                    (
                        t.strip_prefix(&prefix).unwrap_or(&t).to_owned(),
                        c.unwrap_or_else(|| "NULL".into()),
                    )
                })
                .collect();
            Ok::<_, anyhow::Error>((rows, checksums))
        }
        .await;
        dollyd.delete(&self.http, template, "verify").await?;
        let (rows, checksums) = result?;
        if let Some(imp) = self
            .report
            .imports
            .iter_mut()
            .find(|i| i.template == template)
        {
            imp.identical = rows == imp.baseline_rows && checksums == imp.baseline_checksums;
            imp.dolly_rows = rows;
            imp.dolly_checksums = checksums;
        }
        Ok(())
    }

    // ---- creates --------------------------------------------------------

    async fn sequential(
        &mut self,
        dollyd: &Dollyd,
        template: &str,
        tag: &str,
    ) -> anyhow::Result<Creates> {
        log(format!(
            "{} sequential creates of {template} ({} clones)",
            self.args.samples, dollyd.mode
        ));
        // One warm-up create, reported apart.
        let warm = dollyd
            .create(&self.http, template, &format!("{tag}-warm"))
            .await?;
        dollyd
            .delete(&self.http, template, &format!("{tag}-warm"))
            .await?;
        let mut create_ms = Vec::new();
        let mut delete_ms = Vec::new();
        for i in 0..self.args.samples {
            let name = format!("{tag}-{i}");
            let c = dollyd.create(&self.http, template, &name).await?;
            create_ms.push(c.ms);
            delete_ms.push(dollyd.delete(&self.http, template, &name).await?);
        }
        Ok(Creates {
            template: template.to_owned(),
            mode: dollyd.mode.to_owned(),
            first_ms: warm.ms,
            create: Summary::of(&create_ms),
            delete: Summary::of(&delete_ms),
            create_ms,
            delete_ms,
        })
    }

    /// A data folder on the root filesystem (no reflinks) holding a copy of
    /// the templates (`cp -a`, which keeps the `current` links and owners).
    fn copy_data_dir(&self) -> anyhow::Result<PathBuf> {
        let dir = PathBuf::from("/var/tmp/dolly-bench-copy");
        remove_tree(&dir)?;
        std::fs::create_dir_all(&dir)?;
        log(format!("copying the templates to {}", dir.display()));
        let out = std::process::Command::new("cp")
            .arg("-a")
            .arg(self.data.join("templates"))
            .arg(&dir)
            .output()
            .context("run cp")?;
        if !out.status.success() {
            bail!("cp -a failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        if CloneMode::detect(&dir.join("tmp"))? == CloneMode::Reflink {
            log(format!(
                "{} has reflinks too: the copy-ext4 figures are not full copies",
                dir.display()
            ));
        }
        Ok(dir)
    }

    fn template_dir(&self, template: &str) -> anyhow::Result<PathBuf> {
        let current = self.data.join("templates").join(template).join("current");
        current
            .canonicalize()
            .with_context(|| format!("template {template} has no current version"))
    }

    /// The floor: a reflink clone (timed apart), then a bare engine start
    /// with dolly's instance command, until an authenticated ping answers.
    async fn floor(&mut self, template: &str) -> anyhow::Result<Floor> {
        log(format!("floor for {template}"));
        let src = self.template_dir(template)?;
        let mode = CloneMode::detect(&self.data.join("tmp"))?;
        let mut start_ms = Vec::new();
        let mut clone_ms = Vec::new();
        for i in 0..self.args.samples {
            let dst = self.data.join("tmp").join(format!("floor-{template}-{i}"));
            remove_tree(&dst)?;
            let t0 = Instant::now();
            let (s, d, owner) = (src.clone(), dst.clone(), self.image.owner);
            tokio::task::spawn_blocking(move || clone_tree(&s, &d, mode, owner)).await??;
            clone_ms.push(ms(t0));
            let name = format!("{}floor-{template}-{i}", self.settings.container_prefix);
            let r = self
                .bare_start(&name, &dst, self.image.instance_command())
                .await;
            self.engine.remove(&name).await?;
            remove_tree(&dst)?;
            let (ms_ready, _) = r?;
            start_ms.push(ms_ready);
        }
        Ok(Floor {
            template: template.to_owned(),
            clone_mode: mode.as_str().to_owned(),
            start: Summary::of(&start_ms),
            clone: Summary::of(&clone_ms),
            start_ms,
            clone_ms,
        })
    }

    /// Starts a container on `datadir` with `cmd` (an instance command), and
    /// polls an authenticated `SELECT 1` every 10 ms. Returns the time from
    /// the engine call to the answer, and the port.
    async fn bare_start(
        &self,
        name: &str,
        datadir: &Path,
        cmd: Vec<String>,
    ) -> anyhow::Result<(f64, u16)> {
        let password = random_hex(32);
        let init = datadir.join(dbserver::INIT_FILE);
        std::fs::write(&init, dbserver::init_sql(&password))?;
        std::os::unix::fs::chown(
            &init,
            Some(self.image.owner.uid),
            Some(self.image.owner.gid),
        )?;
        let spec = ContainerSpec {
            name: name.to_owned(),
            image: self.settings.image.clone(),
            cmd,
            user: Some(self.image.user()),
            binds: vec![Bind {
                host: datadir.to_path_buf(),
                container: dbserver::DATADIR.to_owned(),
                read_only: false,
            }],
            publish: Some(Publish {
                container_port: dbserver::PORT,
                host_ip: self.settings.instance_bind,
                host_port: None,
            }),
            labels: bench_labels(),
            memory_bytes: Some(self.settings.instance_memory),
            restart: RestartPolicy::No,
        };
        let t0 = Instant::now();
        self.engine.run(&spec).await?;
        let port = self
            .engine
            .inspect(name)
            .await?
            .and_then(|i| i.host_port)
            .ok_or_else(|| anyhow!("{name} has no published port"))?;
        // Bounded: 60 s at 10 ms.
        for _ in 0..6000 {
            if dolly_core::instance::ping("127.0.0.1", port, &password)
                .await
                .is_ok()
            {
                return Ok((ms(t0), port));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let logs = self.engine.logs_tail(name, 20).await.unwrap_or_default();
        bail!("{name} did not answer within 60 s: {logs}")
    }

    async fn concurrent(
        &mut self,
        dollyd: &Dollyd,
        template: &str,
        n: usize,
    ) -> anyhow::Result<Concurrency> {
        log(format!("{n} concurrent creates of {template}"));
        let t0 = Instant::now();
        let futures = (0..n).map(|i| {
            let name = format!("c{n}-{i}");
            let http = self.http.clone();
            async move { dollyd.create(&http, template, &name).await }
        });
        let results = join_all(futures).await;
        let total_ms = ms(t0);
        let mut times = Vec::new();
        let mut errors = Vec::new();
        for r in &results {
            match r {
                Ok(c) => times.push(c.ms),
                Err(e) => errors.push(format!("{e:#}")),
            }
        }
        let names: Vec<String> = (0..n).map(|i| format!("c{n}-{i}")).collect();
        self.delete_all(dollyd, template, &names).await;
        Ok(Concurrency {
            template: template.to_owned(),
            n,
            ok: times.len(),
            total_ms,
            create: Summary::of(&times),
            create_ms: times,
            errors,
        })
    }

    /// The floor for `n` starts at once: `n` prepared reflink clones, then
    /// `n` bare engine starts together, each until its ping answers.
    async fn concurrent_floor(&mut self, template: &str, n: usize) -> anyhow::Result<()> {
        log(format!("floor: {n} bare starts of {template} at once"));
        let src = self.template_dir(template)?;
        let mode = CloneMode::detect(&self.data.join("tmp"))?;
        let mut dirs = Vec::new();
        for i in 0..n {
            let dst = self.data.join("tmp").join(format!("cfloor-{i}"));
            remove_tree(&dst)?;
            let (s, d, owner) = (src.clone(), dst.clone(), self.image.owner);
            tokio::task::spawn_blocking(move || clone_tree(&s, &d, mode, owner)).await??;
            dirs.push(dst);
        }
        let names: Vec<String> = (0..n)
            .map(|i| format!("{}cfloor-{i}", self.settings.container_prefix))
            .collect();
        let t0 = Instant::now();
        let starts = names
            .iter()
            .zip(&dirs)
            .map(|(name, dir)| self.bare_start(name, dir, self.image.instance_command()));
        let results = join_all(starts).await;
        let total_ms = ms(t0);
        for (name, dir) in names.iter().zip(&dirs) {
            self.engine.remove(name).await?;
            remove_tree(dir)?;
        }
        let mut times = Vec::new();
        let mut errors = Vec::new();
        for r in results {
            match r {
                Ok((t, _)) => times.push(t),
                Err(e) => errors.push(format!("{e:#}")),
            }
        }
        self.report.concurrent_floors.push(Concurrency {
            template: template.to_owned(),
            n,
            ok: times.len(),
            total_ms,
            create: Summary::of(&times),
            create_ms: times,
            errors,
        });
        Ok(())
    }

    /// Deletes names, 8 at a time; errors (like a name never created) are
    /// ignored: the sweep at the end removes anything left.
    async fn delete_all(&self, dollyd: &Dollyd, template: &str, names: &[String]) {
        for chunk in names.chunks(8) {
            let futures = chunk.iter().map(|n| dollyd.delete(&self.http, template, n));
            let _ = join_all(futures).await;
        }
    }

    // ---- memory ---------------------------------------------------------

    async fn memory(&mut self, dollyd: &Dollyd, template: &str) -> anyhow::Result<()> {
        let n = 30;
        log(format!("{n} idle instances of {template}"));
        let names: Vec<String> = (0..n).map(|i| format!("idle-{i}")).collect();
        let mut made = Vec::new();
        let result = async {
            for name in &names {
                let c = dollyd.create(&self.http, template, name).await?;
                made.push(c);
            }
            for c in &made {
                let mut conn = connect(&c.creds).await?;
                let _: Option<u64> = conn
                    .query_first(format!(
                        "SELECT COUNT(*) FROM `{}`.`customers`",
                        dumpgen::DATABASE
                    ))
                    .await?;
                let _ = conn.disconnect().await;
            }
            tokio::time::sleep(Duration::from_secs(3)).await;
            let mut mems = Vec::new();
            for name in &names {
                let cname = format!("{}{template}.{name}", self.settings.container_prefix);
                let info = self
                    .engine
                    .inspect(&cname)
                    .await?
                    .ok_or_else(|| anyhow!("container {cname} is missing"))?;
                let m = sys::container_memory(&info.id).ok_or_else(|| {
                    anyhow!("no cgroup v1 memory figures for {cname} under /sys/fs/cgroup/memory")
                })?;
                mems.push(m);
            }
            let list = self.list_p50(dollyd).await?;
            self.report.dollyd.list_ms.push(ListCost {
                instances: n,
                p50_ms: list,
            });
            self.report.dollyd.rss_30_mib = dollyd.rss_mib();
            Ok::<_, anyhow::Error>(mems)
        }
        .await;
        self.delete_all(dollyd, template, &names).await;
        let mems = result?;
        self.report.memory = Some(MemoryReport::of(template, &mems));
        Ok(())
    }

    /// What each instance setting buys: idle memory of 3 instances per
    /// variant of dolly's instance command, started directly.
    async fn ablation(&mut self, template: &str) -> anyhow::Result<()> {
        log("memory settings ablation");
        let base = self.image.instance_command();
        let replace = |from: &str, to: &str| -> Vec<String> {
            base.iter()
                .map(|a| {
                    if a.starts_with(from) {
                        to.to_owned()
                    } else {
                        a.clone()
                    }
                })
                .collect()
        };
        let without = |drop: &[&str]| -> Vec<String> {
            base.iter()
                .filter(|a| !drop.iter().any(|d| a.starts_with(d)))
                .cloned()
                .collect()
        };
        let caches = [
            "--innodb-log-buffer-size",
            "--key-buffer-size",
            "--table-open-cache",
            "--table-definition-cache",
            "--thread-cache-size",
            "--max-connections",
            "--query-cache-size",
            "--aria-pagecache-buffer-size",
            "--sort-buffer-size",
        ];
        let mut all_defaults: Vec<&str> = caches.to_vec();
        all_defaults.extend([
            "--innodb-buffer-pool-size",
            "--performance-schema",
            "--innodb-buffer-pool-dump-at-shutdown",
            "--innodb-buffer-pool-load-at-startup",
        ]);
        let variants: Vec<(&str, Vec<String>)> = vec![
            ("dolly's instance settings", base.clone()),
            (
                "buffer pool 128M (default) instead of 8M",
                replace(
                    "--innodb-buffer-pool-size",
                    "--innodb-buffer-pool-size=128M",
                ),
            ),
            (
                "performance_schema ON",
                replace("--performance-schema", "--performance-schema=1"),
            ),
            ("default caches and buffers", without(&caches)),
            ("MariaDB defaults for all of these", without(&all_defaults)),
        ];
        let src = self.template_dir(template)?;
        let mode = CloneMode::detect(&self.data.join("tmp"))?;
        for (label, cmd) in variants {
            let mut mems = Vec::new();
            let mut ready = Vec::new();
            for i in 0..3 {
                let dst = self.data.join("tmp").join(format!("abl-{i}"));
                remove_tree(&dst)?;
                let (s, d, owner) = (src.clone(), dst.clone(), self.image.owner);
                tokio::task::spawn_blocking(move || clone_tree(&s, &d, mode, owner)).await??;
                let name = format!("{}abl-{i}", self.settings.container_prefix);
                let r = async {
                    let (t, port) = self.bare_start(&name, &dst, cmd.clone()).await?;
                    ready.push(t);
                    let pw = std::fs::read_to_string(dst.join(dbserver::INIT_FILE))?;
                    let pw = pw
                        .split("IDENTIFIED BY '")
                        .nth(1)
                        .and_then(|s| s.split('\'').next())
                        .unwrap_or_default()
                        .to_owned();
                    let creds = Creds {
                        port,
                        password: pw,
                        database: dumpgen::DATABASE.to_owned(),
                    };
                    let mut conn = connect(&creds).await?;
                    let _: Option<u64> =
                        conn.query_first("SELECT COUNT(*) FROM `customers`").await?;
                    let _ = conn.disconnect().await;
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    let id = self
                        .engine
                        .inspect(&name)
                        .await?
                        .map(|i| i.id)
                        .ok_or_else(|| anyhow!("{name} is gone"))?;
                    sys::container_memory(&id).ok_or_else(|| anyhow!("no cgroup for {name}"))
                }
                .await;
                self.engine.remove(&name).await?;
                remove_tree(&dst)?;
                mems.push(r?);
            }
            let stats: Vec<f64> = mems.iter().map(|m| m.stats_bytes as f64 / MIB).collect();
            let rss: Vec<f64> = mems.iter().map(|m| m.rss_bytes as f64 / MIB).collect();
            self.report.ablation.push(Ablation {
                variant: label.to_owned(),
                stats_mib: median(&stats),
                rss_mib: median(&rss),
                ready_ms: median(&ready),
            });
        }
        Ok(())
    }

    // ---- dollyd itself --------------------------------------------------

    async fn list_p50(&self, dollyd: &Dollyd) -> anyhow::Result<f64> {
        let mut times = Vec::new();
        for _ in 0..20 {
            let t0 = Instant::now();
            let r = self.http.get(dollyd.url("/db")).send().await?;
            let status = r.status();
            let _ = r.bytes().await?;
            if status != 200 {
                bail!("GET /db answered {status}");
            }
            times.push(ms(t0));
        }
        Ok(median(&times))
    }

    async fn many(&mut self, dollyd: &Dollyd, template: &str, n: usize) -> anyhow::Result<()> {
        log(format!("{n} instances for GET /db"));
        let budget = Duration::from_secs(20 * 60);
        let t0 = Instant::now();
        let mut names = Vec::new();
        let mut note = None;
        for i in 0..n {
            if t0.elapsed() > budget {
                note = Some(format!("stopped at {i} instances: 20 min budget spent"));
                break;
            }
            let name = format!("l-{i}");
            match dollyd.create(&self.http, template, &name).await {
                Ok(_) => names.push(name),
                Err(e) => {
                    note = Some(format!("stopped at {i} instances: {e:#}"));
                    names.push(name);
                    break;
                }
            }
            if (i + 1) % 50 == 0 {
                log(format!("{} instances", i + 1));
            }
        }
        let count = if note.is_some() {
            names.len().saturating_sub(1)
        } else {
            names.len()
        };
        let result = async {
            let p50 = self.list_p50(dollyd).await?;
            let body: serde_json::Value = self
                .http
                .get(dollyd.url("/db"))
                .send()
                .await?
                .json()
                .await?;
            let listed = body["databases"].as_array().map(|a| a.len()).unwrap_or(0);
            Ok::<_, anyhow::Error>((p50, listed))
        }
        .await;
        self.report.dollyd.rss_many_mib = dollyd.rss_mib();
        self.report.dollyd.many_create_s = Some(t0.elapsed().as_secs_f64());
        log("removing them");
        self.delete_all(dollyd, template, &names).await;
        let (p50, listed) = result?;
        self.report.dollyd.list_ms.push(ListCost {
            instances: listed.max(count),
            p50_ms: p50,
        });
        self.report.dollyd.many_note = note;
        Ok(())
    }
}

/// Splits a mysqldump file by table into `sessions` files, each with the
/// dump's header (everything before the first table) and whole tables,
/// balanced by size (largest first). Tables keep their dump order.
/// `strip_locks` drops mysqldump's `LOCK TABLES`/`UNLOCK TABLES` lines.
fn split_dump(
    dump: &Path,
    out_dir: &Path,
    template: &str,
    sessions: usize,
    strip_locks: bool,
) -> anyhow::Result<Vec<PathBuf>> {
    let text = std::fs::read(dump).with_context(|| format!("read {}", dump.display()))?;
    let marker = b"\n--\n-- Table structure for table `";
    let mut starts = Vec::new();
    let mut at = 0;
    while let Some(pos) = find(&text[at..], marker) {
        starts.push(at + pos);
        at += pos + marker.len();
    }
    let Some(&first) = starts.first() else {
        bail!("{} has no table sections", dump.display());
    };
    let header = &text[..first];
    let mut sections: Vec<(usize, usize)> = starts
        .iter()
        .enumerate()
        .map(|(i, &s)| (s, starts.get(i + 1).copied().unwrap_or(text.len())))
        .collect();
    let mut order: Vec<usize> = (0..sections.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(sections[i].1 - sections[i].0));
    let mut bins: Vec<(usize, Vec<usize>)> = vec![(0, Vec::new()); sessions.max(1)];
    for i in order {
        if let Some(bin) = bins.iter_mut().min_by_key(|b| b.0) {
            bin.0 += sections[i].1 - sections[i].0;
            bin.1.push(i);
        }
    }
    let mut paths = Vec::new();
    for (k, (_, mut members)) in bins.into_iter().enumerate() {
        if members.is_empty() {
            continue;
        }
        members.sort_unstable();
        let path = out_dir.join(format!("{template}.part{k}.sql"));
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
        use std::io::Write;
        f.write_all(header)?;
        for i in &members {
            let (a, b) = sections[*i];
            if strip_locks {
                for line in text[a..b].split_inclusive(|c| *c == b'\n') {
                    if !line.starts_with(b"LOCK TABLES ") && !line.starts_with(b"UNLOCK TABLES;") {
                        f.write_all(line)?;
                    }
                }
            } else {
                f.write_all(&text[a..b])?;
            }
        }
        f.write_all(b"\n")?;
        f.into_inner().map_err(|e| e.into_error())?;
        paths.push(path);
    }
    sections.clear();
    Ok(paths)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn compress_variants(src: &Path, gz: &Path, zst: &Path) -> anyhow::Result<()> {
    use std::io::{BufReader, BufWriter};
    if !gz.is_file() {
        let tmp = gz.with_extension("partial");
        let mut r = BufReader::new(std::fs::File::open(src)?);
        let mut w = flate2::write::GzEncoder::new(
            BufWriter::new(std::fs::File::create(&tmp)?),
            flate2::Compression::new(6),
        );
        std::io::copy(&mut r, &mut w)?;
        w.finish()?;
        std::fs::rename(&tmp, gz)?;
    }
    if !zst.is_file() {
        let tmp = zst.with_extension("partial");
        let r = BufReader::new(std::fs::File::open(src)?);
        let w = BufWriter::new(std::fs::File::create(&tmp)?);
        zstd::stream::copy_encode(r, w, 3)?;
        std::fs::rename(&tmp, zst)?;
    }
    Ok(())
}

fn ms(t0: Instant) -> f64 {
    t0.elapsed().as_secs_f64() * 1000.0
}

struct Baseline {
    total_s: f64,
    load_s: f64,
    /// CPU of the engine's processes during the load.
    engine_cpu_s: f64,
    /// Machine-wide busy cores during the load (includes other users).
    busy_cores: f64,
    cpu: sys::CpuSplit,
    rows: Vec<(String, u64)>,
    checksums: Vec<(String, String)>,
}

#[derive(Clone)]
struct Creds {
    port: u16,
    password: String,
    database: String,
}

struct Created {
    ms: f64,
    creds: Creds,
}

async fn connect(c: &Creds) -> anyhow::Result<mysql_async::Conn> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(c.port)
        .user(Some("root"))
        .pass(Some(c.password.clone()))
        .db_name(Some(c.database.clone()))
        .prefer_socket(false);
    mysql_async::Conn::new(opts)
        .await
        .with_context(|| format!("connect to 127.0.0.1:{}", c.port))
}

/// A dollyd child process.
struct Dollyd {
    child: Option<tokio::process::Child>,
    pid: u32,
    url: String,
    mode: &'static str,
}

impl Dollyd {
    async fn spawn(
        bench: &Bench,
        data_dir: &Path,
        force_copy: bool,
        mode: &'static str,
    ) -> anyhow::Result<Self> {
        let s = &bench.settings;
        let exe = std::env::current_exe()?;
        let logs = workspace_dir().join("target/bench");
        std::fs::create_dir_all(&logs)?;
        let log_file = std::fs::File::create(logs.join(format!("dollyd-{mode}.log")))?;
        let mut child = tokio::process::Command::new(exe)
            .arg("__dollyd")
            .env("DOLLY_DATA_DIR", data_dir)
            .env("DOLLY_LISTEN", "127.0.0.1:0")
            .env("DOLLY_PUBLIC_HOST", &s.public_host)
            .env("DOLLY_INSTANCE_BIND", s.instance_bind.to_string())
            .env("DOLLY_IMAGE", &s.image)
            .env("DOLLY_CONTAINER_PREFIX", &s.container_prefix)
            .env("DOLLY_LABELS", format!("{}={}", LABEL.0, LABEL.1))
            .env("DOLLY_DEFAULT_TTL", "3h")
            .env("DOLLY_CLONE", if force_copy { "copy" } else { "auto" })
            .stdout(std::process::Stdio::piped())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .context("start the dollyd child")?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow!("dollyd child has no pid"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("dollyd child has no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(Duration::from_secs(120), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(a) = line.strip_prefix("LISTENING ") {
                    return Ok(a.to_owned());
                }
            }
            Err(anyhow!(
                "dollyd exited before listening; see target/bench/dollyd-{mode}.log"
            ))
        })
        .await
        .map_err(|_| anyhow!("dollyd did not listen within 120 s"))??;
        log(format!(
            "dollyd ({mode} clones) listening on {addr}, pid {pid}"
        ));
        // Idle a moment so the RSS figure is after start-up.
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok(Self {
            child: Some(child),
            pid,
            url: format!("http://{addr}"),
            mode,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    fn rss_mib(&self) -> f64 {
        sys::vm_rss(self.pid).map(|b| b as f64 / MIB).unwrap_or(0.0)
    }

    async fn create(
        &self,
        http: &reqwest::Client,
        template: &str,
        name: &str,
    ) -> anyhow::Result<Created> {
        let t0 = Instant::now();
        let r = http
            .post(self.url(&format!("/db/{template}/{name}")))
            .send()
            .await?;
        let status = r.status();
        let body = r.text().await?;
        let elapsed = ms(t0);
        if status != 201 {
            bail!("POST /db/{template}/{name} answered {status}: {body}");
        }
        let v: serde_json::Value = serde_json::from_str(&body)
            .with_context(|| format!("POST /db/{template}/{name}: not JSON: {body}"))?;
        let port = v["port"]
            .as_str()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| anyhow!("no port in {body}"))?;
        let password = v["password"]
            .as_str()
            .ok_or_else(|| anyhow!("no password in {body}"))?
            .to_owned();
        let database = v["database"].as_str().unwrap_or_default().to_owned();
        Ok(Created {
            ms: elapsed,
            creds: Creds {
                port,
                password,
                database,
            },
        })
    }

    async fn delete(
        &self,
        http: &reqwest::Client,
        template: &str,
        name: &str,
    ) -> anyhow::Result<f64> {
        let t0 = Instant::now();
        let r = http
            .delete(self.url(&format!("/db/{template}/{name}")))
            .send()
            .await?;
        let status = r.status();
        let body = r.text().await?;
        if status != 204 {
            bail!("DELETE /db/{template}/{name} answered {status}: {body}");
        }
        Ok(ms(t0))
    }

    async fn stop_mut(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on the pid of the child we started.
            unsafe {
                libc::kill(self.pid as i32, libc::SIGTERM);
            }
            if tokio::time::timeout(Duration::from_secs(40), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
    }

    async fn stop(mut self) {
        self.stop_mut().await;
    }
}
