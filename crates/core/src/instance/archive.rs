//! Portable archives of a snapshot: tar + zstd of the datadir with a
//! manifest (image, server version, database), streamed through the API in
//! both directions, so a state can travel to another dolly server.
//!
//! Layout of the archive: `manifest.json` first, then `data/...`. An import
//! refuses an archive made by another server version (the datadir format
//! is the server's).

use std::io::{self, Read, Write};
use std::path::{Component, Path};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use dolly_names::{InstanceName, SnapshotName, TemplateName, VersionName};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::info;

use super::{Instance, InstanceError, Manager, Source};
use crate::clone::remove_tree;
use crate::store::{nonce, Scratch};

/// `manifest.json` of an archive.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub template: TemplateName,
    pub instance: InstanceName,
    pub snapshot: SnapshotName,
    pub template_version: VersionName,
    pub database: String,
    pub image: String,
    pub server_version: String,
    pub created_at: DateTime<Utc>,
}

/// Bytes flowing to or from a blocking tar/zstd thread.
pub type Chunks = mpsc::Receiver<io::Result<Bytes>>;

/// A `Write` that hands its bytes to an async receiver.
struct ChannelWriter(mpsc::Sender<io::Result<Bytes>>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A `Read` over chunks an async task sends.
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk?,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

impl Manager {
    /// Streams snapshot `s` of `t/n` as tar + zstd.
    pub async fn export(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        s: &SnapshotName,
    ) -> Result<Chunks, InstanceError> {
        let meta = self.ready_meta(t, n).await?;
        let snap = self.snapshot_meta(t, n, s).await?;
        let image = self.ctx.image().await?.clone();
        let manifest = Manifest {
            format: 1,
            template: t.clone(),
            instance: n.clone(),
            snapshot: s.clone(),
            template_version: snap.template_version,
            database: meta.database,
            image: self.ctx.settings.image.clone(),
            server_version: image.version,
            created_at: Utc::now(),
        };
        let data = self.ctx.store.snapshot_data(t, n, s);
        let (tx, rx) = mpsc::channel(16);
        let err_tx = tx.clone();
        tokio::task::spawn_blocking(move || {
            let result = (|| -> io::Result<()> {
                let zstd = zstd::stream::write::Encoder::new(ChannelWriter(tx), 3)?;
                let mut tar = tar::Builder::new(zstd);
                let json = serde_json::to_vec_pretty(&manifest).map_err(io::Error::other)?;
                let mut header = tar::Header::new_gnu();
                header.set_size(json.len() as u64);
                header.set_mode(0o644);
                header.set_cksum();
                tar.append_data(&mut header, "manifest.json", json.as_slice())?;
                tar.append_dir_all("data", &data)?;
                tar.into_inner()?.finish()?;
                Ok(())
            })();
            if let Err(e) = result {
                let _ = err_tx.blocking_send(Err(e));
            }
        });
        info!(template = %t, instance = %n, snapshot = %s, "export started");
        Ok(rx)
    }

    /// Creates `t/n` from an archive streamed in `chunks`.
    pub async fn import_archive(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        ttl: Option<Duration>,
        chunks: Chunks,
    ) -> Result<Instance, InstanceError> {
        self.import_archive_for(t, n, ttl, chunks, None).await
    }

    /// As [`Manager::import_archive`], owned by `actor` (within its quota).
    pub async fn import_archive_for(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        ttl: Option<Duration>,
        chunks: Chunks,
        actor: Option<&crate::users::Actor>,
    ) -> Result<Instance, InstanceError> {
        if self.ctx.store.instance_exists(t, n).await {
            return Err(InstanceError::AlreadyExists(t.clone(), n.clone()));
        }
        let image = self.ctx.image().await?.clone();
        let work = self
            .ctx
            .store
            .scratch(&Scratch::Archive(t.clone(), n.clone(), nonce()));
        // What the archive may take: the free space above min_free_disk.
        let budget = self.space_above_minimum().await?;
        let unpack_to = work.clone();
        let unpacked =
            crate::context::blocking_io(move || unpack(chunks, &unpack_to, budget)).await;
        let result = async {
            let manifest = unpacked.map_err(|e| {
                if e.kind() == io::ErrorKind::StorageFull
                    || matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
                {
                    InstanceError::OutOfSpace(format!("cannot unpack the archive: {e}"))
                } else {
                    InstanceError::ArchiveDamaged(e.to_string())
                }
            })?;
            if manifest.server_version != image.version {
                return Err(InstanceError::ArchiveServerMismatch {
                    archive: manifest.server_version,
                    server: image.version.clone(),
                });
            }
            let source = Source::Archive {
                data: work.join("data"),
                version: manifest.template_version,
                database: manifest.database,
            };
            self.create_for(t, n, ttl, source, actor).await
        }
        .await;
        let _ = tokio::task::spawn_blocking(move || remove_tree(&work)).await;
        result
    }
}

/// Unpacks an archive into `dir`: `manifest.json` first, then `data/`.
/// Unpacks an archive into `dir`, refusing (`StorageFull`) as soon as the
/// entries' declared sizes pass `budget` bytes: nothing is written beyond
/// `min_free_disk`.
fn unpack(chunks: Chunks, dir: &Path, budget: u64) -> io::Result<Manifest> {
    let mut used: u64 = 0;
    std::fs::create_dir_all(dir)?;
    let reader = ChannelReader {
        rx: chunks,
        current: Bytes::new(),
    };
    let mut archive = tar::Archive::new(zstd::stream::read::Decoder::new(reader)?);
    let mut manifest = None;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        if path == Path::new("manifest.json") {
            let mut text = Vec::new();
            entry.read_to_end(&mut text)?;
            manifest = Some(serde_json::from_slice::<Manifest>(&text).map_err(io::Error::other)?);
            continue;
        }
        let safe = path.starts_with("data")
            && path.components().all(|c| matches!(c, Component::Normal(_)));
        if !safe || manifest.is_none() {
            return Err(io::Error::other(format!(
                "unexpected entry {}",
                path.display()
            )));
        }
        used = used.saturating_add(entry.header().size()?);
        if used > budget {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!(
                    "the archive needs more than the {} free above min_free_disk",
                    bytesize::ByteSize(budget)
                ),
            ));
        }
        // `unpack_in` refuses anything that would land outside `dir`.
        entry.unpack_in(dir)?;
    }
    manifest.ok_or_else(|| io::Error::other("no manifest.json"))
}
