//! The bench's shared state and the order of the measurements.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use dolly_core::clone::remove_tree;
use dolly_core::config::Settings;
use dolly_core::dbserver::{ImageInfo, ServerContainer};
use dolly_engine::Engine;

use crate::args::Args;
use crate::dollyd::Dollyd;
use crate::dumpgen;
use crate::filesystem::setup_filesystem;
use crate::report::{ListCost, Report};
use crate::util::random_hex;
use crate::{bench_labels, sweep, sys};

const IMAGE_DEFAULT: &str = "dolly-mariadb:10.11";

/// A dump to generate and the template it becomes.
pub struct DumpSpec {
    pub template: &'static str,
    /// The size asked of the generator (the file is within a few per cent).
    pub bytes: u64,
    pub shape: dumpgen::Shape,
}

impl DumpSpec {
    /// The ~1 GB dump (issue 12's second size): one import sample by
    /// default, the ablation only with `--ablation-1g`, the 5x target.
    pub fn is_1g(&self) -> bool {
        self.bytes >= 1_000_000_000
    }
}

pub struct Bench {
    pub args: Args,
    pub engine: Arc<dyn Engine>,
    pub image: ImageInfo,
    pub settings: Settings,
    /// Where the reflink filesystem is mounted (the dump cache lives here).
    pub base: PathBuf,
    /// The run's data folder (`base/run`).
    pub data: PathBuf,
    pub http: reqwest::Client,
    pub report: Report,
}

impl Bench {
    /// Mounts the filesystem, checks and probes the image, and prepares
    /// the run's data folder and dolly's settings.
    pub async fn new(args: Args, engine: Arc<dyn Engine>) -> anyhow::Result<Bench> {
        let (base, reflink) = setup_filesystem(&args)?;
        let image_name =
            std::env::var("DOLLY_BENCH_IMAGE").unwrap_or_else(|_| IMAGE_DEFAULT.into());
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
        Ok(Bench {
            report: {
                let mut r = Report::new(args.quick, machine);
                r.only_import = args.only == Some(crate::args::Only::Import);
                r.only_servers = args.only == Some(crate::args::Only::Servers);
                r.only_standby = args.only == Some(crate::args::Only::Standby);
                r
            },
            args,
            engine,
            image,
            settings,
            base,
            data,
            http: {
                dolly_server::install_crypto_provider();
                reqwest::Client::builder()
            }
            .timeout(Duration::from_secs(900))
            .pool_max_idle_per_host(0)
            .build()?,
        })
    }

    /// A server container of the bench's image on `datadir`, labelled as
    /// the bench's.
    pub fn server(&self, name: &str, datadir: &Path) -> ServerContainer {
        ServerContainer {
            name: name.to_owned(),
            image: self.settings.image.clone(),
            datadir: datadir.to_path_buf(),
            labels: bench_labels(),
        }
    }

    pub fn dumps(&self) -> Vec<DumpSpec> {
        let mb = 1_000_000;
        let sizes: Vec<u64> = match self.args.dump_mb() {
            Some(sizes) => sizes.to_vec(),
            // Every image imports it: small.
            None if matches!(
                self.args.only,
                Some(crate::args::Only::Servers | crate::args::Only::Standby)
            ) =>
            {
                vec![5]
            }
            None if self.args.quick => vec![20, 100],
            None => vec![100, 1000],
        };
        ["small", "large"]
            .into_iter()
            .zip(sizes.clone())
            .map(|(template, size)| DumpSpec {
                template,
                bytes: size * mb,
                shape: dumpgen::Shape::Shop,
            })
            .chain(self.args.big_table.then(|| DumpSpec {
                template: "bigtable",
                bytes: sizes.first().copied().unwrap_or(100).min(999) * mb,
                shape: dumpgen::Shape::BigTable,
            }))
            .collect()
    }

    /// Every measurement, in order (bench/README.md, "What runs").
    pub async fn all(&mut self) -> anyhow::Result<()> {
        let specs = self.dumps();
        match self.args.only {
            Some(crate::args::Only::Pool) => return self.only_pool(&specs[0]).await,
            Some(crate::args::Only::Import) => return self.only_import(&specs).await,
            Some(crate::args::Only::Servers) => return self.servers(&specs[0]).await,
            Some(crate::args::Only::Standby) => return self.standby(&specs[0]).await,
            None => {}
        }
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
            // DOLLY_CLONE=copy on the same (XFS) data folder: one dollyd
            // serves a data folder at a time, so the main one steps aside.
            dollyd.stop_mut().await;
            let copy = Dollyd::spawn(self, &self.data, true, "copy").await?;
            for d in &specs {
                let seq = self.sequential(&copy, d.template, "cp").await?;
                self.report.creates.push(seq);
            }
            copy.stop().await;
            dollyd = Dollyd::spawn(self, &self.data, false, "auto").await?;
        }
        {
            // A real full copy: the templates on a filesystem with no
            // reflinks (the root filesystem, ext4 here).
            let names: Vec<&str> = specs.iter().map(|d| d.template).collect();
            let dir = self.copy_data_dir(&names)?;
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
        if self.args.list_instances() > 0 {
            self.many(&dollyd, specs[0].template, self.args.list_instances())
                .await?;
        }
        self.report.dollyd.rss_end_mib = dollyd.rss_mib();
        dollyd.stop_mut().await;
        // The warm pool, with a dollyd of its own (one per data folder).
        self.warm_pool(specs[0].template).await?;
        Ok(())
    }
}
