//! Human-readable durations, sizes, ids and quoting, matching what docker's
//! CLI prints (go-units `HumanDuration`, `HumanSizeWithPrecision`,
//! `BytesSize`, Go's `%g` and `strconv.Quote`).

use std::time::Duration;

/// Like go-units `HumanDuration`: "Less than a second", "2 minutes", "About an hour", ...
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 1 {
        return "Less than a second".into();
    }
    if secs == 1 {
        return "1 second".into();
    }
    if secs < 60 {
        return format!("{secs} seconds");
    }
    let minutes = secs / 60;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    // Hours are rounded to the nearest hour.
    let hours = (d.as_secs_f64() / 3600.0 + 0.5) as u64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", secs / 3600 / 24 / 365)
}

/// "N units ago" for a unix timestamp, relative to `now` (both seconds).
pub fn time_ago(created_unix: i64, now_unix: i64) -> String {
    let diff = now_unix.saturating_sub(created_unix).max(0) as u64;
    format!("{} ago", human_duration(Duration::from_secs(diff)))
}

/// Formats `v` like Go's `fmt.Sprintf("%.*g", prec, v)`.
pub fn go_g(v: f64, prec: usize) -> String {
    let prec = prec.max(1);
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    // Round to `prec` significant digits using scientific formatting, then
    // decide on the representation from the rounded exponent.
    let sci = format!("{:.*e}", prec - 1, v);
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m.to_string(), e.parse::<i32>().unwrap_or(0)),
        None => (sci.clone(), 0),
    };
    if exp < -4 || exp >= prec as i32 {
        let m = trim_fraction_zeros(&mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        trim_fraction_zeros(&format!("{v:.decimals$}"))
    }
}

fn trim_fraction_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

const DECIMAL_UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY_UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

fn scale(mut size: f64, base: f64, units: &[&'static str]) -> (f64, &'static str) {
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    (size, units[i])
}

/// Like go-units `HumanSizeWithPrecision` (decimal units: "4.26MB").
pub fn human_size_prec(size: f64, prec: usize) -> String {
    let (v, unit) = scale(size, 1000.0, &DECIMAL_UNITS);
    format!("{}{}", go_g(v, prec), unit)
}

/// Like go-units `HumanSize` (4 significant digits).
pub fn human_size(size: f64) -> String {
    human_size_prec(size, 4)
}

/// Like go-units `BytesSize` (binary units: "3.84GiB").
pub fn bytes_size(size: f64) -> String {
    let (v, unit) = scale(size, 1024.0, &BINARY_UNITS);
    format!("{}{}", go_g(v, 4), unit)
}

/// Docker's `TruncateID`: drop an algorithm prefix, keep 12 characters.
pub fn truncate_id(id: &str) -> String {
    let id = match id.split_once(':') {
        Some((_, rest)) => rest,
        None => id,
    };
    id.chars().take(12).collect()
}

/// Docker's `Ellipsis`: shorten to `max` characters, the last being "…".
pub fn ellipsis(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                let v = c as u32;
                if v <= 0xffff {
                    out.push_str(&format!("\\u{v:04x}"));
                } else {
                    out.push_str(&format!("\\U{v:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `time.Time.String()` layout for a unix timestamp in local time:
/// "2006-01-02 15:04:05 -0700 MST" (the zone name is approximated).
pub fn go_time_string(unix: i64) -> String {
    use chrono::{Local, TimeZone};
    match Local.timestamp_opt(unix, 0).single() {
        Some(t) => {
            let offset = t.format("%z").to_string();
            let zone = if offset == "+0000" {
                "UTC".to_string()
            } else {
                offset.clone()
            };
            format!("{} {} {}", t.format("%Y-%m-%d %H:%M:%S"), offset, zone)
        }
        None => unix.to_string(),
    }
}

/// Seconds since the unix epoch, now.
pub fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Parses an RFC 3339 timestamp into unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let d = |s| human_duration(Duration::from_secs(s));
        assert_eq!(
            human_duration(Duration::from_millis(300)),
            "Less than a second"
        );
        assert_eq!(d(1), "1 second");
        assert_eq!(d(59), "59 seconds");
        assert_eq!(d(60), "About a minute");
        assert_eq!(d(119), "About a minute");
        assert_eq!(d(120), "2 minutes");
        assert_eq!(d(59 * 60), "59 minutes");
        assert_eq!(d(3600), "About an hour");
        assert_eq!(d(3600 + 29 * 60), "About an hour");
        assert_eq!(d(3600 + 31 * 60), "2 hours");
        assert_eq!(d(47 * 3600), "47 hours");
        assert_eq!(d(48 * 3600), "2 days");
        assert_eq!(d(14 * 24 * 3600), "2 weeks");
        assert_eq!(d(60 * 24 * 3600), "2 months");
        assert_eq!(d(2 * 365 * 24 * 3600), "2 years");
        assert_eq!(time_ago(100, 220), "2 minutes ago");
        assert_eq!(time_ago(300, 220), "Less than a second ago");
    }

    #[test]
    fn go_g_formatting() {
        assert_eq!(go_g(4.26, 3), "4.26");
        assert_eq!(go_g(4.2600001, 3), "4.26");
        assert_eq!(go_g(1.984172, 3), "1.98");
        assert_eq!(go_g(1.0, 3), "1");
        assert_eq!(go_g(999.7, 3), "1e+03");
        assert_eq!(go_g(123.4, 3), "123");
        assert_eq!(go_g(0.00001234, 3), "1.23e-05");
        assert_eq!(go_g(12.5, 4), "12.5");
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size_prec(4_260_000.0, 3), "4.26MB");
        assert_eq!(human_size_prec(1_984_172.0, 3), "1.98MB");
        assert_eq!(human_size_prec(0.0, 3), "0B");
        assert_eq!(human_size_prec(999.0, 3), "999B");
        assert_eq!(human_size_prec(1000.0, 3), "1kB");
        assert_eq!(human_size(1_984_172.0), "1.984MB");
        assert_eq!(human_size(117_000_000.0), "117MB");
        assert_eq!(bytes_size(4_123_456_789.0), "3.84GiB");
        assert_eq!(bytes_size(1024.0), "1KiB");
    }

    #[test]
    fn ids_and_ellipsis() {
        assert_eq!(truncate_id("sha256:a59a0235e570aaaaaa"), "a59a0235e570");
        assert_eq!(truncate_id("742f904c7b0b24421ee0"), "742f904c7b0b");
        assert_eq!(truncate_id("short"), "short");
        assert_eq!(ellipsis("httpd -f -p 80", 20), "httpd -f -p 80");
        assert_eq!(
            ellipsis("sh -c 'while true; do sleep 1; done'", 20),
            "sh -c 'while true; …"
        );
        assert_eq!(ellipsis("sh -c 'while true; …", 20).chars().count(), 20);
    }

    #[test]
    fn quoting() {
        assert_eq!(go_quote("httpd -f"), "\"httpd -f\"");
        assert_eq!(go_quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(go_quote("x\u{1}y"), "\"x\\x01y\"");
        assert_eq!(go_quote("sh -c 'ab…'"), "\"sh -c 'ab…'\"");
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:01:00Z"), Some(60));
        assert_eq!(
            parse_rfc3339("2026-11-24T22:10:59.719381895Z").map(|t| t > 0),
            Some(true)
        );
        assert_eq!(parse_rfc3339("garbage"), None);
    }
}
