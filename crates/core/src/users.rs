//! Who is calling: the users of `users_file`, each with a token (stored as
//! its SHA-256 only), a role and an optional quota; and the single
//! `auth_token`, which acts as an admin.
//!
//! The file is read at start (a bad file stops the start, naming it) and
//! again on [`Users::reload`] (SIGHUP): a bad file then keeps the users
//! being served and the error says why. No HTTP here: the API layer turns
//! a bearer token into an [`Actor`] through [`Users::resolve`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::config::Secret;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Sees and acts on every instance; manages templates and the server.
    Admin,
    /// Sees and acts on their own instances only.
    Member,
}

/// The caller of an operation (no token in it: it is never logged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub role: Role,
    /// Most instances this user may own at once (`None`: no limit of its
    /// own; the global `max_instances` still applies).
    pub max_instances: Option<usize>,
    /// Most snapshots this user may keep, over all their instances
    /// (`None`: no limit of its own; the global `max_snapshots` applies).
    pub max_snapshots: Option<usize>,
}

impl Actor {
    /// The holder of the single `auth_token`.
    pub fn token_admin() -> Self {
        Actor {
            name: "admin".to_owned(),
            role: Role::Admin,
            max_instances: None,
            max_snapshots: None,
        }
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether this caller may see and act on an instance owned by
    /// `owner`: admins on all; members on their own only (an instance
    /// with no owner, made before users existed, is the admins').
    pub fn may_access(&self, owner: Option<&str>) -> bool {
        self.is_admin() || owner == Some(self.name.as_str())
    }
}

/// One `[[users]]` entry as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    token_sha256: String,
    role: Role,
    #[serde(default)]
    max_instances: Option<usize>,
    #[serde(default)]
    max_snapshots: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    users: Vec<Entry>,
}

/// A user as served: the actor and the digest of their token.
#[derive(Debug, Clone)]
struct User {
    actor: Actor,
    digest: [u8; 32],
}

/// The users being served, swapped whole by [`Users::reload`].
#[derive(Debug)]
pub struct Users {
    file: Option<PathBuf>,
    admin_token: Option<Secret>,
    current: RwLock<Arc<Vec<User>>>,
}

/// What a bearer token (or its absence) resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// No `auth_token` and no `users_file`: everyone is an anonymous
    /// admin, and instances get no owner.
    Open,
    Actor(Actor),
    /// Missing or unknown token.
    Refused,
}

impl Users {
    /// Reads `file` (when given). An error names the file and what is wrong.
    pub fn load(file: Option<&Path>, admin_token: Option<Secret>) -> Result<Self, UsersError> {
        let users = match file {
            Some(f) => read(f)?,
            None => Vec::new(),
        };
        Ok(Self {
            file: file.map(Path::to_path_buf),
            admin_token,
            current: RwLock::new(Arc::new(users)),
        })
    }

    /// Whether any token is asked for.
    pub fn auth_required(&self) -> bool {
        self.admin_token.is_some() || self.file.is_some()
    }

    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// How many users the file gave.
    pub fn count(&self) -> usize {
        self.users().len()
    }

    fn users(&self) -> Arc<Vec<User>> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Reads the file again: on success the new users are served (and
    /// their count returned); on failure nothing changes.
    pub fn reload(&self) -> Result<usize, UsersError> {
        let Some(file) = &self.file else {
            return Ok(0);
        };
        let fresh = read(file)?;
        let count = fresh.len();
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(fresh);
        Ok(count)
    }

    /// The caller a bearer token stands for. Every comparison is in
    /// constant time and every user is compared, found or not.
    pub fn resolve(&self, token: Option<&str>) -> Resolved {
        if !self.auth_required() {
            return Resolved::Open;
        }
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Resolved::Refused;
        };
        let mut found = None;
        if let Some(admin) = &self.admin_token {
            if ct_eq(token.as_bytes(), admin.expose().as_bytes()) {
                found = Some(Actor::token_admin());
            }
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        for user in self.users().iter() {
            if ct_eq(&digest, &user.digest) && found.is_none() {
                found = Some(user.actor.clone());
            }
        }
        found.map_or(Resolved::Refused, Resolved::Actor)
    }
}

/// Constant-time equality (lengths are not secret).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(subtle::ConstantTimeEq::ct_eq(a, b))
}

/// The hex SHA-256 of a token, as `token_sha256` wants it.
pub fn token_sha256(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Why the users file was not taken (the previous users stay served).
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("users_file {}: {source}", file.display())]
    Read {
        file: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("users_file {}: {reason}", file.display())]
    Invalid {
        file: std::path::PathBuf,
        reason: Invalid,
    },
}

/// What is wrong inside a users file.
#[derive(Debug, thiserror::Error)]
pub enum Invalid {
    #[error("{0}")]
    Toml(#[from] config::ConfigError),
    #[error("user name {0:?} must be 1 to 64 of [A-Za-z0-9._@-]")]
    BadName(String),
    #[error("the user name \"admin\" is the auth_token's; pick another")]
    ReservedName,
    #[error("user {0:?}: token_sha256 must be 64 hex digits (sha256sum of the token)")]
    BadDigest(String),
    #[error("user {0:?} is listed twice")]
    Twice(String),
    #[error("user {0:?} has the same token as another user")]
    SameToken(String),
}

fn read(file: &Path) -> Result<Vec<User>, UsersError> {
    let text = std::fs::read_to_string(file).map_err(|source| UsersError::Read {
        file: file.to_path_buf(),
        source,
    })?;
    parse(&text).map_err(|reason| UsersError::Invalid {
        file: file.to_path_buf(),
        reason,
    })
}

fn parse(text: &str) -> Result<Vec<User>, Invalid> {
    let file: File = config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize())?;
    let mut users: Vec<User> = Vec::new();
    for e in file.users {
        let valid_name = !e.name.is_empty()
            && e.name.len() <= 64
            && e.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c));
        if !valid_name {
            return Err(Invalid::BadName(e.name));
        }
        if e.name == "admin" {
            return Err(Invalid::ReservedName);
        }
        let Some(digest) = parse_digest(&e.token_sha256) else {
            return Err(Invalid::BadDigest(e.name));
        };
        if users.iter().any(|u| u.actor.name == e.name) {
            return Err(Invalid::Twice(e.name));
        }
        if users.iter().any(|u| u.digest == digest) {
            return Err(Invalid::SameToken(e.name));
        }
        users.push(User {
            actor: Actor {
                name: e.name,
                role: e.role,
                max_instances: e.max_instances,
                max_snapshots: e.max_snapshots,
            },
            digest,
        });
    }
    Ok(users)
}

fn parse_digest(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(body: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        std::fs::write(&path, body).unwrap();
        (dir, path)
    }

    fn entry(name: &str, token: &str, role: &str) -> String {
        format!(
            "[[users]]\nname = \"{name}\"\ntoken_sha256 = \"{}\"\nrole = \"{role}\"\nmax_instances = 2\n",
            token_sha256(token)
        )
    }

    #[test]
    fn tokens_resolve_to_their_user() {
        let (_d, path) =
            file(&(entry("alice", "a-token", "member") + &entry("root", "r", "admin")));
        let users = Users::load(Some(&path), None).unwrap();
        match users.resolve(Some("a-token")) {
            Resolved::Actor(a) => {
                assert_eq!(a.name, "alice");
                assert_eq!(a.role, Role::Member);
                assert_eq!(a.max_instances, Some(2));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(users.resolve(Some("r")), Resolved::Actor(a) if a.is_admin()));
        assert_eq!(users.resolve(Some("nope")), Resolved::Refused);
        assert_eq!(users.resolve(None), Resolved::Refused);
    }

    #[test]
    fn the_auth_token_is_an_admin_and_no_auth_is_open() {
        let token = crate::config::Settings::from_lookup(|k| {
            (k == "auth_token").then(|| "t0ken".to_owned())
        })
        .unwrap()
        .auth_token;
        let users = Users::load(None, token).unwrap();
        assert_eq!(
            users.resolve(Some("t0ken")),
            Resolved::Actor(Actor::token_admin())
        );
        assert_eq!(users.resolve(Some("t0ke")), Resolved::Refused);
        assert_eq!(
            Users::load(None, None).unwrap().resolve(None),
            Resolved::Open
        );
    }

    #[test]
    fn a_bad_file_on_reload_keeps_the_users() {
        let (_d, path) = file(&entry("alice", "a", "member"));
        let users = Users::load(Some(&path), None).unwrap();
        std::fs::write(
            &path,
            "[[users]]\nname = \"bob\"\ntoken_sha256 = \"xyz\"\nrole = \"member\"\n",
        )
        .unwrap();
        let e = users.reload().unwrap_err().to_string();
        assert!(e.contains("token_sha256"), "{e}");
        assert!(matches!(users.resolve(Some("a")), Resolved::Actor(_)));
        std::fs::write(&path, entry("bob", "b", "admin")).unwrap();
        assert_eq!(users.reload().unwrap(), 1);
        assert_eq!(users.resolve(Some("a")), Resolved::Refused);
        assert!(matches!(users.resolve(Some("b")), Resolved::Actor(a) if a.name == "bob"));
    }

    #[test]
    fn bad_entries_are_named() {
        for (body, needle) in [
            (
                "[[users]]\nname = \"a\"\ntoken_sha256 = \"00\"\nrole = \"boss\"\n",
                "boss",
            ),
            (
                &(entry("a", "x", "member") + &entry("a", "y", "member")),
                "twice",
            ),
            (
                &(entry("a", "x", "member") + &entry("b", "x", "member")),
                "same token",
            ),
            (&entry("admin", "x", "admin"), "admin"),
            ("users = 3", "users"),
        ] {
            let e = parse(body).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains(needle), "{body}: {e}");
        }
    }

    #[test]
    fn members_access_their_own_only() {
        let alice = Actor {
            name: "alice".into(),
            role: Role::Member,
            max_instances: None,
            max_snapshots: None,
        };
        assert!(alice.may_access(Some("alice")));
        assert!(!alice.may_access(Some("bob")));
        assert!(!alice.may_access(None));
        assert!(Actor::token_admin().may_access(None));
    }
}
