//! `--ttl` and `extend` values: `30s`, `15m`, `2h`, `3d`, `1h30m`, plain
//! seconds, or `never`/`none`.

use std::time::Duration;

/// Parses a TTL for clap: humantime's syntax, a whole number of seconds, or
/// `never` or `none` (also `0`): no expiry, which the API spells `ttl: 0` and allows
/// unless dollyd's `max_ttl` forbids it.
///
/// The API counts whole seconds, so a fraction is rounded up.
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("never") || s.eq_ignore_ascii_case("none") {
        return Ok(Duration::ZERO);
    }
    let d = if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = s
            .parse()
            .map_err(|_| format!("{s:?} is too many seconds"))?;
        Duration::from_secs(secs)
    } else {
        humantime::parse_duration(s).map_err(|e| {
            format!(
                "{s:?} is not a duration ({e}); write e.g. 30s, 15m, 2h, 3d or a number of seconds"
            )
        })?
    };
    Ok(d)
}

/// Whole seconds, rounded up, as the API's `ttl` wants them.
pub fn whole_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> u64 {
        whole_seconds(parse_ttl(s).unwrap_or_else(|e| panic!("{s}: {e}")))
    }

    #[test]
    fn accepts_the_documented_forms() {
        assert_eq!(secs("30s"), 30);
        assert_eq!(secs("15m"), 900);
        assert_eq!(secs("2h"), 7200);
        assert_eq!(secs("3d"), 3 * 86400);
        assert_eq!(secs("1h30m"), 5400);
        assert_eq!(secs("1h 30m"), 5400);
        assert_eq!(secs("3600"), 3600);
        assert_eq!(secs(" 45 "), 45);
    }

    #[test]
    fn rounds_fractions_up() {
        assert_eq!(secs("1500ms"), 2);
        assert_eq!(secs("1ms"), 1);
    }

    #[test]
    fn never_is_zero() {
        for never in ["never", "NEVER", "none", "0", "0s"] {
            assert_eq!(secs(never), 0, "{never}");
        }
    }

    #[test]
    fn refuses_nonsense() {
        for bad in ["", "abc", "-5", "5x", "1.5", "h", "99999999999999999999999"] {
            assert!(parse_ttl(bad).is_err(), "{bad:?}");
        }
        let msg = parse_ttl("soon").unwrap_err();
        assert!(msg.contains("30s, 15m, 2h, 3d"), "{msg}");
    }
}
