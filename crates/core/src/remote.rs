//! Addresses outside this machine that dolly reaches: the origins a push
//! may go to (`push_remotes`), and URLs as they may be shown (without the
//! secrets a configured URL can carry).
//!
//! Invariants: a push is made only to an [`Origin`] the operator listed,
//! and the URLs it requests are built from that origin (never from the
//! caller's text); a URL in a log line or an error goes through
//! [`redact_url`] first.

use std::fmt;

use url::Url;

/// Where a dolly server answers: scheme, host and port, nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    /// As the URL parser normalises it: lower case, IPv6 in brackets.
    host: String,
    port: u16,
}

impl Origin {
    /// An origin as the operator writes it in `push_remotes`:
    /// `scheme://host[:port]` (a trailing `/` is allowed), no user, path,
    /// query or fragment.
    pub fn parse(text: &str) -> Result<Self, String> {
        let url = Url::parse(text.trim()).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
        let origin = Self::of(&url).map_err(|e| format!("{text:?}: {e}"))?;
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "{text:?} is more than an origin: give scheme://host:port only"
            ));
        }
        Ok(origin)
    }

    /// The origin of `url`, which must be http(s) with a host and no
    /// credentials in it.
    pub fn of(url: &Url) -> Result<Self, String> {
        let scheme = url.scheme();
        if scheme != "http" && scheme != "https" {
            return Err("only http:// and https:// are allowed".to_owned());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("a user or password in the URL is not allowed".to_owned());
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| "no host".to_owned())?;
        let port = url
            .port_or_known_default()
            .ok_or_else(|| "no port".to_owned())?;
        Ok(Origin {
            scheme: scheme.to_owned(),
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// `scheme://host:port/PATH`: the only way a request URL to a remote
    /// is made. `path` starts with `/`.
    pub fn join(&self, path: &str) -> String {
        format!("{self}{path}")
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// Comma-separated origins (TOML: a list, or a string with commas).
pub fn parse_origins(v: &str) -> Result<Vec<Origin>, String> {
    let mut out: Vec<Origin> = Vec::new();
    for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let o = Origin::parse(item)?;
        if !out.contains(&o) {
            out.push(o);
        }
    }
    Ok(out)
}

/// `url` with its user, password, query and fragment replaced by `***`:
/// what a log line or an error may show of a configured URL. Text that
/// does not parse as a URL is shown as `<unparsable URL>`.
pub fn redact_url(url: &str) -> String {
    let Ok(mut u) = Url::parse(url) else {
        return "<unparsable URL>".to_owned();
    };
    if !u.username().is_empty() || u.password().is_some() {
        let _ = u.set_username("***");
        let _ = u.set_password(None);
    }
    if u.query().is_some() {
        u.set_query(Some("***"));
    }
    if u.fragment().is_some() {
        u.set_fragment(Some("***"));
    }
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port() {
        let o = Origin::parse("http://Dolly.Example:5001/").unwrap();
        assert_eq!(o.to_string(), "http://dolly.example:5001");
        assert_eq!(
            Origin::parse("https://dolly.example").unwrap().to_string(),
            "https://dolly.example:443"
        );
        assert_eq!(
            Origin::parse("http://[::1]:80").unwrap().to_string(),
            "http://[::1]:80"
        );
        assert_eq!(
            o.join("/api/v1/version"),
            "http://dolly.example:5001/api/v1/version"
        );
        for bad in [
            "ftp://x:1",
            "http://u:p@x:1",
            "http://x:1/path",
            "http://x:1/?q=1",
            "http://x:1/#f",
            "x:1",
            "",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad}");
        }
        let list = parse_origins("http://a:1, http://a:1/,https://b").unwrap();
        assert_eq!(list.len(), 2);
    }

    #[test]
    fn secrets_in_urls_are_redacted() {
        let r = redact_url("http://user:hunter2@hooks.example:8080/in?token=s3cret#frag");
        assert!(!r.contains("hunter2") && !r.contains("user:") && !r.contains("s3cret"));
        assert!(!r.contains("frag"), "{r}");
        assert!(r.starts_with("http://***@hooks.example:8080/in?***"), "{r}");
        assert_eq!(
            redact_url("http://hooks.example/in"),
            "http://hooks.example/in"
        );
        assert_eq!(redact_url("not a url hunter2"), "<unparsable URL>");
    }
}
