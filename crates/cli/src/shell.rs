//! `dolly shell`: the local `mariadb` (or `mysql`) client, connected.
//!
//! The password goes through the `MYSQL_PWD` environment variable, which
//! both clients read, so it never appears on a command line (`ps`).
//!
//! Text is utf8mb4 both ways (`--default-character-set=utf8mb4`): without
//! it a client on a Latin-1 or `C` locale shows an emoji as `?`.
//!
//! MySQL 8+ instances authenticate with `caching_sha2_password`. Over TCP
//! it needs TLS or the server's RSA key: MySQL instances offer TLS (the
//! certificates `mysqld --initialize` made for the template), the `mysql`
//! client (8.0+) uses it by default, and MariaDB's client (10.11 and 11.8
//! measured) uses TLS or fetches the RSA key itself, so no option is
//! needed. A client without the `caching_sha2_password` plugin (MariaDB
//! before 10.5, or a build without its plugin folder) fails with its own
//! "Authentication plugin 'caching_sha2_password' cannot be loaded"
//! (the client replaces dolly, so the client's message is the one shown;
//! README's supported-servers section says which clients work). `dolly env`
//! and `dolly url` hand the same credentials to any other client.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::connection::Connection;
use crate::error::Error;

/// Clients tried, in order.
pub const CLIENTS: [&str; 2] = ["mariadb", "mysql"];

/// The first of [`CLIENTS`] found on `path` (a `PATH`-style list).
pub fn find_client(path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    let path = path?;
    CLIENTS.iter().find_map(|name| {
        std::env::split_paths(path)
            .filter(|dir| !dir.as_os_str().is_empty())
            .map(|dir| dir.join(name))
            .find(|p| is_executable(p))
    })
}

fn is_executable(p: &Path) -> bool {
    let Ok(meta) = p.metadata() else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

/// The client's arguments: connection options first, then `extra` as
/// given (after `--` on dolly's command line), so `-e "select 1"` works.
pub fn client_args(c: &Connection, extra: &[OsString]) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        format!("--host={}", c.host).into(),
        format!("--port={}", c.port).into(),
        // `localhost` would otherwise mean the local socket, not the port.
        "--protocol=TCP".into(),
        format!("--user={}", c.user).into(),
        format!("--database={}", c.database).into(),
        "--default-character-set=utf8mb4".into(),
    ];
    args.extend(extra.iter().cloned());
    args
}

/// Runs the client and returns its exit code; on Unix the client replaces
/// this process, so signals and the terminal are its alone.
pub fn run(c: &Connection, extra: &[OsString]) -> Result<i32, Error> {
    let program = find_client(std::env::var_os("PATH").as_deref()).ok_or(Error::NoClient)?;
    let mut cmd = Command::new(&program);
    cmd.args(client_args(c, extra))
        .env("MYSQL_PWD", &c.password);
    let spawn_error = |source| Error::Spawn {
        program: program.display().to_string(),
        source,
    };
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // exec returns only on failure.
        Err(spawn_error(cmd.exec()))
    }
    #[cfg(not(unix))]
    {
        let status = cmd.status().map_err(spawn_error)?;
        Ok(status.code().unwrap_or(crate::error::exit::FAILURE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_never_an_argument() {
        let c = Connection {
            host: "127.0.0.1".into(),
            port: 3307,
            user: "root".into(),
            password: "hunter2".into(),
            database: "shop".into(),
        };
        let args = client_args(&c, &["-e".into(), "select 1".into()]);
        let shown: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            shown,
            [
                "--host=127.0.0.1",
                "--port=3307",
                "--protocol=TCP",
                "--user=root",
                "--database=shop",
                "--default-character-set=utf8mb4",
                "-e",
                "select 1"
            ]
        );
        assert!(!shown.iter().any(|a| a.contains("hunter2")));
    }

    #[test]
    fn finds_a_client_on_the_path_or_none() {
        let dir = std::env::temp_dir().join(format!("dolly-cli-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        assert_eq!(find_client(Some(dir.as_os_str())), None);
        assert_eq!(find_client(None), None);
        let fake = dir.join("mysql");
        std::fs::write(&fake, "#!/bin/sh\n").expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        assert_eq!(find_client(Some(dir.as_os_str())), Some(fake));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
