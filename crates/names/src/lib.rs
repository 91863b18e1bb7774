//! Names that come from outside: the only way raw input becomes a name.
//!
//! A name matches `[a-z0-9][a-z0-9_-]{0,62}`: it cannot be empty, hold a
//! path separator, a dot, a NUL byte, upper case or non-ASCII characters, so
//! a path built from names never leaves the folder it was built in.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 63;

/// Why a string is not a valid name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{kind} name is empty")]
    Empty { kind: &'static str },
    #[error("{kind} name is longer than {MAX_NAME_LEN} characters")]
    TooLong { kind: &'static str },
    #[error("{kind} name {value:?} must start with a lowercase letter or digit")]
    BadStart { kind: &'static str, value: String },
    #[error("{kind} name {value:?} may only contain lowercase letters, digits, '-' and '_'")]
    BadChar { kind: &'static str, value: String },
}

fn check(kind: &'static str, s: &str) -> Result<(), NameError> {
    let bytes = s.as_bytes();
    let Some(first) = bytes.first() else {
        return Err(NameError::Empty { kind });
    };
    if bytes.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong { kind });
    }
    // Debug-quote the value so control characters never reach a log raw.
    let shown = || s.chars().take(MAX_NAME_LEN + 1).collect::<String>();
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return Err(NameError::BadStart {
            kind,
            value: shown(),
        });
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_')
    {
        return Err(NameError::BadChar {
            kind,
            value: shown(),
        });
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $ty(String);

        impl $ty {
            /// Parses `s`, the only way to make one.
            pub fn parse(s: &str) -> Result<Self, NameError> {
                check($kind, s)?;
                Ok(Self(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $ty {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, NameError> {
                check($kind, &s)?;
                Ok(Self(s))
            }
        }

        impl From<$ty> for String {
            fn from(n: $ty) -> String {
                n.0
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// A template's name: the dump's file name without its extensions.
    TemplateName,
    "template"
);
name_type!(
    /// An instance's name, unique within its template.
    InstanceName,
    "instance"
);
name_type!(
    /// A template version, e.g. `20261123t091500z`; sortable by time.
    VersionName,
    "version"
);

name_type!(
    /// A snapshot's name, unique within its instance.
    SnapshotName,
    "snapshot"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_names() {
        for ok in ["a", "shop", "ci-1234", "a_b", "0", &"x".repeat(63)] {
            assert!(TemplateName::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_hostile_names() {
        for bad in [
            "",
            "..",
            ".",
            "../etc",
            "a/b",
            "a\0b",
            "Shop",
            "-a",
            "_a",
            "é",
            "a b",
            "a.b",
            "%2e%2e",
            &"x".repeat(64),
        ] {
            assert!(InstanceName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn serde_goes_through_parse() {
        let ok: TemplateName = serde_json::from_str("\"shop\"").unwrap();
        assert_eq!(ok.as_str(), "shop");
        assert!(serde_json::from_str::<TemplateName>("\"../x\"").is_err());
    }
}
