//! `GET /cli/dolly` and `GET /cli/dolly.sha256`: the `dolly` CLI this
//! dollyd was built with, for the platform it runs on, so a CI runner needs
//! only `curl` to get a client that matches the server.
//!
//! **Public routes**: anyone who reaches dollyd may download the binary,
//! token or not (they are listed in `OPEN_ROUTES`). It holds no secret: it
//! is the build of this open-source program; the token is what guards the
//! databases, and the CLI asks for it like any other client.
//!
//! Where the binary is: `cli_path`, else the file `dolly` next to the
//! running dollyd executable (where the release archive, the packages and
//! the image put both). A missing file is a 404 `cli_not_found`; the path
//! is logged, not told to the (anonymous) caller.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use actix_web::body::SizedStream;
use actix_web::http::header;
use actix_web::{web, HttpResponse};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tracing::warn;

use super::AppState;
use crate::error::ApiError;

/// The routes, public (see the module's documentation).
pub const ROUTES: [&str; 2] = ["/cli/dolly", "/cli/dolly.sha256"];

/// Bytes read from the file per chunk of the answer.
const CHUNK: usize = 256 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    crate::routes::Routes::new(cfg, "")
        .get(ROUTES[0], binary)
        .get(ROUTES[1], checksum);
}

/// The platform the served binary runs on: this dollyd's own.
fn platform() -> String {
    format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH)
}

/// `cli_path`, else `dolly` next to the running executable.
fn cli_path(state: &AppState) -> Result<PathBuf, ApiError> {
    if let Some(p) = &state.settings().cli_path {
        return Ok(p.clone());
    }
    std::env::current_exe()
        .map(|exe| exe.with_file_name("dolly"))
        .map_err(|e| unavailable(Path::new("(dollyd's own path is unknown)"), &e))
}

fn unavailable(path: &Path, e: &std::io::Error) -> ApiError {
    warn!(path = %path.display(), error = %e, "no dolly CLI to serve at GET /cli/dolly (set cli_path, or install dolly next to dollyd)");
    ApiError::CliUnavailable
}

/// The open file and its length, or why there is none.
async fn open(path: &Path) -> Result<(tokio::fs::File, std::fs::Metadata), ApiError> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| unavailable(path, &e))?;
    let meta = file.metadata().await.map_err(|e| unavailable(path, &e))?;
    if !meta.is_file() {
        return Err(unavailable(path, &std::io::Error::other("not a file")));
    }
    Ok((file, meta))
}

/// The binary, streamed from the file as it is read.
async fn binary(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let path = cli_path(&state)?;
    let (file, meta) = open(&path).await?;
    let chunks = futures_util::stream::try_unfold(file, |mut f| async move {
        let mut buf = vec![0u8; CHUNK];
        let n = f.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok::<_, std::io::Error>(Some((web::Bytes::from(buf), f)))
    });
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"dolly\"",
        ))
        .insert_header(("x-dolly-platform", platform()))
        .body(SizedStream::new(meta.len(), Box::pin(chunks))))
}

/// The last checksum computed: the file's path, length and modification
/// time, and its SHA-256 (a new binary in place is hashed again).
type Cached = (PathBuf, u64, Option<SystemTime>, String);
static LAST: Mutex<Option<Cached>> = Mutex::new(None);

/// `HEX  dolly`, as `sha256sum` prints it (`sha256sum -c` checks a
/// download saved as `dolly`).
async fn checksum(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let path = cli_path(&state)?;
    let (_, meta) = open(&path).await?;
    let key = (path.clone(), meta.len(), meta.modified().ok());
    let cached = LAST
        .lock()
        .ok()
        .and_then(|last| last.clone())
        .filter(|(p, len, modified, _)| (p, len, modified) == (&key.0, &key.1, &key.2))
        .map(|(.., hex)| hex);
    let hex = match cached {
        Some(hex) => hex,
        None => {
            let hex = web::block({
                let path = path.clone();
                move || sha256_hex(&path)
            })
            .await
            .map_err(|e| unavailable(&path, &std::io::Error::other(e.to_string())))?
            .map_err(|e| unavailable(&path, &e))?;
            if let Ok(mut last) = LAST.lock() {
                *last = Some((key.0, key.1, key.2, hex.clone()));
            }
            hex
        }
    };
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .insert_header(("x-dolly-platform", platform()))
        .body(format!("{hex}  dolly\n")))
}

/// The file's SHA-256 in lower-case hex (blocking: on the blocking pool).
fn sha256_hex(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(format!("{:x}", hasher.finalize()))
}
