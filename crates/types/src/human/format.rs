//! Times and sizes for people: "3 minutes ago", "in 2h", "12.3 MiB".

use chrono::{DateTime, Utc};

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// Within this many seconds of now, a past time is "just now".
const JUST_NOW: u64 = 5;

fn plural(n: u64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// A span in words, in its largest unit, rounded down: "3 minutes".
pub fn span_words(secs: u64) -> String {
    if secs >= DAY {
        plural(secs / DAY, "day")
    } else if secs >= HOUR {
        plural(secs / HOUR, "hour")
    } else if secs >= MINUTE {
        plural(secs / MINUTE, "minute")
    } else {
        plural(secs, "second")
    }
}

/// A span in at most two units: "45s", "14m 30s", "2h", "2h 5m", "3d 4h".
///
/// Rounded to the second unit, so a TTL of `2h` read back a second later
/// still shows as `2h`, not `1h 59m`.
pub fn span_compact(secs: u64) -> String {
    let (big, small, big_name, small_name) = if secs >= DAY {
        (DAY, HOUR, "d", "h")
    } else if secs >= HOUR {
        (HOUR, MINUTE, "h", "m")
    } else if secs >= MINUTE {
        (MINUTE, 1, "m", "s")
    } else {
        return format!("{secs}s");
    };
    let rounded = (secs + small / 2) / small * small;
    // 23h 59m 45s rounds up to a day: say "1d", not "24h".
    let next = match big {
        DAY => u64::MAX,
        HOUR => DAY,
        _ => HOUR,
    };
    if rounded >= next {
        return span_compact(rounded);
    }
    let (b, s) = (rounded / big, rounded % big / small);
    if s == 0 {
        format!("{b}{big_name}")
    } else {
        format!("{b}{big_name} {s}{small_name}")
    }
}

fn seconds_between(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_seconds()
}

/// When something happened: "just now", "3 minutes ago".
pub fn ago(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = seconds_between(t, now);
    if secs.unsigned_abs() < JUST_NOW {
        "just now".to_owned()
    } else if secs < 0 {
        // The server's clock is ahead of ours.
        format!("in {}", span_words(secs.unsigned_abs()))
    } else {
        format!("{} ago", span_words(secs.unsigned_abs()))
    }
}

/// When an instance expires: "in 2h", "expired 3 minutes ago", "never".
pub fn expiry(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(t) = t else {
        return "never".to_owned();
    };
    let secs = seconds_between(now, t);
    if secs > 0 {
        format!("in {}", span_compact(secs.unsigned_abs()))
    } else if secs.unsigned_abs() < JUST_NOW {
        "now".to_owned()
    } else {
        format!("expired {} ago", span_words(secs.unsigned_abs()))
    }
}

/// An absolute time, to the minute, for next to a relative one.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A size in binary units: "512 B", "1.0 KiB", "12.3 MiB".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Seconds as the import took them: "0.4s", "12s", "3m 5s".
pub fn seconds(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "?".to_owned();
    }
    if s < 10.0 {
        format!("{s:.1}s")
    } else {
        span_compact(s.round() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0)
            .single()
            .expect("time")
    }

    #[test]
    fn words_use_the_largest_unit() {
        assert_eq!(span_words(0), "0 seconds");
        assert_eq!(span_words(1), "1 second");
        assert_eq!(span_words(59), "59 seconds");
        assert_eq!(span_words(60), "1 minute");
        assert_eq!(span_words(3 * 60 + 59), "3 minutes");
        assert_eq!(span_words(HOUR), "1 hour");
        assert_eq!(span_words(5 * HOUR), "5 hours");
        assert_eq!(span_words(DAY), "1 day");
        assert_eq!(span_words(40 * DAY), "40 days");
    }

    #[test]
    fn compact_uses_two_units_rounded() {
        assert_eq!(span_compact(0), "0s");
        assert_eq!(span_compact(45), "45s");
        assert_eq!(span_compact(60), "1m");
        assert_eq!(span_compact(14 * 60 + 30), "14m 30s");
        assert_eq!(span_compact(2 * HOUR), "2h");
        assert_eq!(span_compact(2 * HOUR - 1), "2h");
        assert_eq!(span_compact(2 * HOUR + 5 * 60), "2h 5m");
        assert_eq!(span_compact(HOUR + 59 * 60 + 45), "2h");
        assert_eq!(span_compact(3 * DAY), "3d");
        assert_eq!(span_compact(3 * DAY + 4 * HOUR), "3d 4h");
        assert_eq!(span_compact(DAY - 1), "1d");
        assert_eq!(span_compact(HOUR - 1), "59m 59s");
    }

    #[test]
    fn ago_reads_naturally() {
        let now = at(0);
        assert_eq!(ago(at(0), now), "just now");
        assert_eq!(ago(at(-3), now), "just now");
        assert_eq!(ago(at(-3 * 60), now), "3 minutes ago");
        assert_eq!(ago(at(-2 * 3600 - 10), now), "2 hours ago");
        assert_eq!(ago(at(-86400), now), "1 day ago");
        assert_eq!(ago(at(120), now), "in 2 minutes");
    }

    #[test]
    fn expiry_reads_naturally() {
        let now = at(0);
        assert_eq!(expiry(None, now), "never");
        assert_eq!(expiry(Some(at(7200)), now), "in 2h");
        assert_eq!(expiry(Some(at(7199)), now), "in 2h");
        assert_eq!(expiry(Some(at(90)), now), "in 1m 30s");
        assert_eq!(expiry(Some(at(0)), now), "now");
        assert_eq!(expiry(Some(at(-180)), now), "expired 3 minutes ago");
    }

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1024), "1.0 KiB");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(12_900_000), "12.3 MiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
        assert_eq!(bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn import_seconds() {
        assert_eq!(seconds(0.42), "0.4s");
        assert_eq!(seconds(12.4), "12s");
        assert_eq!(seconds(185.0), "3m 5s");
        assert_eq!(seconds(f64::NAN), "?");
    }

    #[test]
    fn timestamps_are_utc_minutes() {
        assert_eq!(timestamp(at(0)), "2027-01-15 08:00 UTC");
    }
}
