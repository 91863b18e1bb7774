//! Connection details of an instance as text for other programs: a
//! `mysql://` URL and shell `export` lines that are safe to `eval`.

use dolly_types::v1::Instance;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but RFC 3986's unreserved characters is encoded, so a
/// password with `@`, `:` or `/` cannot change the URL's meaning.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn encode(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// What a client needs to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub database: String,
}

impl From<&Instance> for Connection {
    fn from(i: &Instance) -> Self {
        Self {
            host: i.host.clone(),
            port: i.port,
            user: i.user.clone(),
            password: i.password.clone(),
            database: i.database.clone(),
        }
    }
}

impl Connection {
    /// `mysql://user:password@host:port/database`
    pub fn url(&self) -> String {
        let host = if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!(
            "mysql://{}:{}@{}:{}/{}",
            encode(&self.user),
            encode(&self.password),
            host,
            self.port,
            encode(&self.database)
        )
    }

    /// `export NAME='value'` lines for `MYSQL_*` and `DATABASE_URL`.
    pub fn env_lines(&self) -> String {
        let vars = [
            ("MYSQL_HOST", self.host.clone()),
            ("MYSQL_PORT", self.port.to_string()),
            ("MYSQL_USER", self.user.clone()),
            ("MYSQL_PASSWORD", self.password.clone()),
            ("MYSQL_DATABASE", self.database.clone()),
            ("DATABASE_URL", self.url()),
        ];
        vars.iter()
            .map(|(k, v)| format!("export {k}={}\n", shell_quote(v)))
            .collect()
    }
}

/// Quotes `s` for a POSIX shell: single quotes, with `'` written as `'\''`.
/// Nothing inside single quotes is special, so the result is safe to `eval`.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(password: &str) -> Connection {
        Connection {
            host: "127.0.0.1".into(),
            port: 32768,
            user: "root".into(),
            password: password.into(),
            database: "shop".into(),
        }
    }

    #[test]
    fn url_is_one_plain_line() {
        assert_eq!(
            conn("s3cret").url(),
            "mysql://root:s3cret@127.0.0.1:32768/shop"
        );
    }

    #[test]
    fn url_encodes_what_would_change_its_meaning() {
        assert_eq!(
            conn("p@ss:w/rd?#%").url(),
            "mysql://root:p%40ss%3Aw%2Frd%3F%23%25@127.0.0.1:32768/shop"
        );
        let mut c = conn("x");
        c.host = "::1".into();
        assert_eq!(c.url(), "mysql://root:x@[::1]:32768/shop");
    }

    #[test]
    fn quoting_survives_hostile_values() {
        assert_eq!(shell_quote("plain"), "'plain'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$(rm -rf /)`x`"), "'$(rm -rf /)`x`'");
    }

    #[test]
    fn env_lines_export_every_variable() {
        let text = conn("a'b").env_lines();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "export MYSQL_HOST='127.0.0.1'",
                "export MYSQL_PORT='32768'",
                "export MYSQL_USER='root'",
                r"export MYSQL_PASSWORD='a'\''b'",
                "export MYSQL_DATABASE='shop'",
                "export DATABASE_URL='mysql://root:a%27b@127.0.0.1:32768/shop'",
            ]
        );
    }
}
