//! The dumps: generated once and cached between runs (`dumpgen`), and read
//! by dolly's dump reader in each compressed form.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use dolly_core::clone::remove_tree;

use crate::bench::{Bench, DumpSpec};
use crate::dumpgen;
use crate::report::{Decompression, DumpInfo};
use crate::util::log;

/// The generator's seed: the same dumps in every run.
const SEED: u64 = 0x0d01_1be5;

impl Bench {
    /// Generates the dump of `d` (or takes it from the cache) and links it
    /// into the data folder's `dumps/`; returns its row counts.
    pub async fn generate(&mut self, d: &DumpSpec) -> anyhow::Result<dumpgen::Counts> {
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
            let (f, bytes, shape) = (file.clone(), d.bytes, d.shape);
            let c =
                tokio::task::spawn_blocking(move || dumpgen::write_dump(&f, bytes, SEED, shape))
                    .await??;
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
    pub async fn decompression(&mut self, specs: &[DumpSpec]) -> anyhow::Result<()> {
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
        if let Some(large) = specs.get(1) {
            std::fs::hard_link(
                cache.join(format!("{}-{}-{SEED:x}.sql", large.template, large.bytes)),
                dir.join("plain-large.sql"),
            )?;
        }
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
