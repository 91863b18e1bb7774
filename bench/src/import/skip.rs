//! The unchanged skip: `update` without `--force` on the dump the current
//! version came from, and what its time is made of (the image probe of a
//! fresh process, the dump's hash, the rest).

use std::path::Path;
use std::time::Instant;

use anyhow::bail;
use dolly_core::template::UpdateOptions;

use crate::bench::Bench;
use crate::report::{Skip, Summary};

impl Bench {
    /// `samples` unchanged updates, each on a fresh context as `dollyd
    /// update NAME` runs it; then as many image probes and hashes of the
    /// dump alone.
    pub(super) async fn skip(
        &self,
        template: &str,
        dump_file: &Path,
        samples: usize,
    ) -> anyhow::Result<Skip> {
        let mut total = Vec::new();
        for _ in 0..samples {
            let timed = self
                .timed_update(template, &UpdateOptions::default())
                .await?;
            if !timed.unchanged {
                bail!("update of the unchanged dump of {template} imported it again");
            }
            total.push(timed.seconds);
        }
        let mut probe = Vec::new();
        for _ in 0..samples {
            let ctx = self.context()?;
            let started = Instant::now();
            ctx.image().await?;
            probe.push(started.elapsed().as_secs_f64());
        }
        let mut hash = Vec::new();
        let mut hashed_bytes = 0;
        for _ in 0..samples {
            let f = dump_file.to_path_buf();
            let started = Instant::now();
            let h = tokio::task::spawn_blocking(move || dolly_core::dump::hash_file(&f)).await??;
            hash.push(started.elapsed().as_secs_f64());
            hashed_bytes = h.bytes;
        }
        let (total_s, total) = (total.clone(), Summary::of(&total));
        let (probe, hash) = (Summary::of(&probe), Summary::of(&hash));
        Ok(Skip {
            // Medians of separate samples: noise can make it slightly negative.
            rest_s: (total.p50 - probe.p50 - hash.p50).max(0.0),
            hash_mb_s: hashed_bytes as f64 / 1e6 / hash.p50.max(1e-9),
            total_s,
            total,
            probe,
            hash,
            hashed_bytes,
        })
    }
}
