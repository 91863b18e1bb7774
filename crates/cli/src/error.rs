//! Everything that can go wrong in `dolly`, each with its exit code.
//!
//! Every variant displays as one sentence a person can act on; `main`
//! prints it to stderr and exits with [`Error::exit_code`].

/// Exit codes, as documented in `dolly --help` and `cli/README.md`.
pub mod exit {
    pub const OK: i32 = 0;
    /// Any error: server unreachable, server error, bad answer.
    pub const FAILURE: i32 = 1;
    /// Bad command line (clap's own code).
    pub const USAGE: i32 = 2;
    /// The template, instance or snapshot does not exist.
    pub const NOT_FOUND: i32 = 3;
    /// `new` or `snapshot` on a name that already exists.
    pub const EXISTS: i32 = 4;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command line clap could not check by itself (`dolly snapshot`'s
    /// words): printed as clap prints its own, exit 2.
    #[error("{0}")]
    Usage(#[from] clap::Error),

    /// No connection to dollyd at all.
    #[error("cannot reach dollyd at {url}: {reason} (set DOLLY_URL)")]
    Unreachable { url: String, reason: String },

    /// The TLS handshake with dollyd failed.
    #[error("cannot talk to dollyd at {url} over TLS: {reason}")]
    Tls { url: String, reason: String },

    /// A token would go over plain http to another machine.
    #[error("refusing to send the token to {url} over plain http: {host} is not this machine, so the token and the passwords in the answers would cross the network in clear; use https:// (with --ca-cert for a private CA) or, on a network you trust, --insecure-http")]
    TokenInClear { url: String, host: String },

    /// `--ca-cert` / `DOLLY_CA_CERT` cannot be used.
    #[error("cannot use the CA certificate {path} (--ca-cert, DOLLY_CA_CERT): {reason}")]
    CaCert { path: String, reason: String },

    #[error("dollyd at {url} did not answer within {seconds}s")]
    Timeout { url: String, seconds: u64 },

    /// `--url` / `DOLLY_URL` is not something we can talk to.
    #[error("invalid dollyd URL {url:?}: {reason} (set DOLLY_URL)")]
    BadUrl { url: String, reason: String },

    /// An error answer in dolly's shape: `{"error": {"code", "message"}}`.
    #[error("{message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },

    /// The server refused our credentials.
    #[error("dollyd at {url} refused the request ({status}): {message} (set DOLLY_TOKEN)")]
    Unauthorized {
        url: String,
        status: u16,
        message: String,
    },

    /// Whatever answered is not dolly's `/api/v1` (or not this version).
    #[error("{url} answered {status} with something that is not dolly's API ({detail}); is DOLLY_URL right?")]
    UnexpectedAnswer {
        url: String,
        status: u16,
        detail: String,
    },

    #[error("instance '{template}/{name}' is {state} and has no port; remove it with `dolly rm {template} {name}` and create it again")]
    NotRunning {
        template: String,
        name: String,
        state: String,
    },

    #[error("no MySQL client found: install `mariadb` (Debian/Ubuntu: apt-get install mariadb-client) or `mysql`, or use `dolly env` / `dolly url` with a client of your own")]
    NoClient,

    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },

    /// A local file of `export` or `import`.
    #[error("cannot {action} {path}: {source}")]
    File {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// The archive stream broke off while `export` was reading it.
    #[error("the export from dollyd at {url} broke off after {bytes} bytes: {reason}; nothing was written")]
    Interrupted {
        url: String,
        bytes: u64,
        reason: String,
    },

    /// An archive would go to, or come from, a terminal.
    #[error("{0}")]
    Terminal(&'static str),

    /// `dolly ci` without NAME, outside a pipeline that names one.
    #[error("no NAME given, and no pipeline variable to name the instance from (GitHub Actions: GITHUB_REF, GITHUB_HEAD_REF, GITHUB_REF_NAME, GITHUB_JOB; GitLab CI: CI_MERGE_REQUEST_IID, CI_COMMIT_REF_SLUG, CI_JOB_ID): give a NAME")]
    NoCiName,

    /// `dolly ci`: the name exists, but the caller may not see it.
    #[error("instance '{template}/{name}' exists and is not yours (another user's): give dolly ci another NAME")]
    NameTaken { template: String, name: String },

    /// `dolly ci`: what the platform reads variables from cannot be written.
    #[error("{0}")]
    CiOutput(String),
    #[error(transparent)]
    Dotenv(#[from] crate::pipeline::Unwritable),

    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),

    /// `rm` of several names: the first failure decides the exit code; each
    /// one was already reported.
    #[error("{failed} of {total} removals failed")]
    Several {
        failed: usize,
        total: usize,
        code: i32,
    },
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Api { code, status, .. } => match code.as_str() {
                "template_not_found" | "instance_not_found" | "snapshot_not_found" => {
                    exit::NOT_FOUND
                }
                "instance_exists" | "snapshot_exists" => exit::EXISTS,
                // 409s that are not "already exists": a protected instance
                // (`rm --force` removes it), a template version gone, a
                // concurrent operation.
                "instance_protected"
                | "version_gone"
                | "conflict"
                | "template_busy"
                | "archive_server_mismatch" => exit::FAILURE,
                // A 404 or 409 with a code we do not know yet: trust the status.
                _ if *status == 404 => exit::NOT_FOUND,
                _ if *status == 409 => exit::EXISTS,
                _ => exit::FAILURE,
            },
            Error::Several { code, .. } => *code,
            Error::Usage(_) | Error::Terminal(_) | Error::NoCiName => exit::USAGE,
            Error::NameTaken { .. } => exit::EXISTS,
            _ => exit::FAILURE,
        }
    }

    /// Whether the API said the template or the instance does not exist.
    pub fn is_not_found(&self) -> bool {
        self.exit_code() == exit::NOT_FOUND
    }

    /// Whether the API said the instance already exists.
    pub fn is_exists(&self) -> bool {
        self.exit_code() == exit::EXISTS
    }

    /// Whether the API said the instance (not the template) does not exist.
    pub fn is_instance_not_found(&self) -> bool {
        matches!(self, Error::Api { code, .. } if code == "instance_not_found")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str) -> Error {
        Error::Api {
            status,
            code: code.into(),
            message: "m".into(),
        }
    }

    #[test]
    fn exit_codes_follow_the_api_codes() {
        assert_eq!(api(404, "template_not_found").exit_code(), 3);
        assert_eq!(api(404, "instance_not_found").exit_code(), 3);
        assert_eq!(api(409, "instance_exists").exit_code(), 4);
        assert_eq!(api(500, "internal").exit_code(), 1);
        assert_eq!(api(400, "invalid_name").exit_code(), 1);
        assert_eq!(api(423, "template_importing").exit_code(), 1);
        assert_eq!(api(404, "snapshot_not_found").exit_code(), 3);
        assert_eq!(api(409, "snapshot_exists").exit_code(), 4);
        assert_eq!(api(409, "instance_protected").exit_code(), 1);
        assert_eq!(api(409, "version_gone").exit_code(), 1);
        assert_eq!(api(409, "conflict").exit_code(), 1);
        assert_eq!(api(409, "some_future_exists").exit_code(), 4);
        let unreachable = Error::Unreachable {
            url: "http://x".into(),
            reason: "connection refused".into(),
        };
        assert_eq!(unreachable.exit_code(), 1);
        assert_eq!(
            unreachable.to_string(),
            "cannot reach dollyd at http://x: connection refused (set DOLLY_URL)"
        );
    }
}
