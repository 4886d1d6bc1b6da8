//! JSON forms of the apimachinery types with their own Go `MarshalJSON`: times, durations.

/// Seconds from 0001-01-01T00:00:00Z (Go's zero `time.Time`) to the Unix epoch.
const GO_ZERO_UNIX: i64 = -62_135_596_800;

/// Formats a Unix time as RFC 3339 in UTC, with `frac_digits` (0 or 6) truncated fractional
/// digits, as Go's `metav1.Time` / `metav1.MicroTime` `MarshalJSON` do. `None` for the zero
/// time (which Go writes as `null`); `Err` for years outside 0..=9999 (which Go refuses).
pub(crate) fn format_time(
    seconds: i64,
    nanos: i64,
    frac_digits: u32,
) -> Result<Option<String>, String> {
    let total = i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
    let secs = total.div_euclid(1_000_000_000);
    let nanos = total.rem_euclid(1_000_000_000);
    if secs == i128::from(GO_ZERO_UNIX) && nanos == 0 {
        return Ok(None);
    }
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        return Err(format!("year {year} outside of range [0,9999]"));
    }
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    );
    if frac_digits > 0 {
        let frac = nanos / 10i128.pow(9 - frac_digits);
        out.push_str(&format!(".{frac:0width$}", width = frac_digits as usize));
    }
    out.push('Z');
    Ok(Some(out))
}

/// (year, month, day) of a day count from 1970-01-01 (proleptic Gregorian calendar).
fn civil_from_days(days: i128) -> (i128, i128, i128) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i128::from(month <= 2);
    (year, month, day)
}

/// Go's `time.Duration.String()`: `"0s"`, `"1.5µs"`, `"300ms"`, `"5m0s"`, `"1h2m3.5s"`.
pub(crate) fn format_duration(nanos: i64) -> String {
    let neg = nanos < 0;
    let u = nanos.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        if u == 0 {
            return "0s".to_string();
        }
        let (unit, digits) = if u < 1_000 {
            ("ns", 0)
        } else if u < 1_000_000 {
            ("µs", 3)
        } else {
            ("ms", 6)
        };
        out.push_str(&fraction(u, digits));
        out.push_str(unit);
    } else {
        let secs = u / 1_000_000_000;
        let sub = u % 1_000_000_000;
        let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&fraction(s * 1_000_000_000 + sub, 9));
        out.push('s');
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

/// `v / 10^digits` with its fraction, trailing zeros (and a bare dot) removed.
fn fraction(v: u64, digits: u32) -> String {
    let scale = 10u64.pow(digits);
    let whole = v / scale;
    let frac = v % scale;
    if frac == 0 {
        return whole.to_string();
    }
    let s = format!("{frac:0width$}", width = digits as usize);
    format!("{whole}.{}", s.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(
            format_time(1_704_164_645, 0, 0).unwrap().as_deref(),
            Some("2024-01-02T03:04:05Z")
        );
        assert_eq!(
            format_time(0, 0, 0).unwrap().as_deref(),
            Some("1970-01-01T00:00:00Z")
        );
        assert_eq!(
            format_time(1_704_164_645, 123_456_789, 6)
                .unwrap()
                .as_deref(),
            Some("2024-01-02T03:04:05.123456Z")
        );
        assert_eq!(
            format_time(1_704_164_645, 0, 6).unwrap().as_deref(),
            Some("2024-01-02T03:04:05.000000Z")
        );
        // Negative nanos normalise into the previous second.
        assert_eq!(
            format_time(1, -1_000, 6).unwrap().as_deref(),
            Some("1970-01-01T00:00:00.999999Z")
        );
        assert_eq!(
            format_time(-1, 0, 0).unwrap().as_deref(),
            Some("1969-12-31T23:59:59Z")
        );
        assert_eq!(
            format_time(951_782_400, 0, 0).unwrap().as_deref(),
            Some("2000-02-29T00:00:00Z")
        );
        assert_eq!(
            format_time(253_402_300_799, 0, 0).unwrap().as_deref(),
            Some("9999-12-31T23:59:59Z")
        );
        assert_eq!(format_time(GO_ZERO_UNIX, 0, 0).unwrap(), None);
        assert_eq!(
            format_time(GO_ZERO_UNIX + 1, 0, 0).unwrap().as_deref(),
            Some("0001-01-01T00:00:01Z")
        );
        assert!(format_time(253_402_300_800, 0, 0).is_err());
        assert!(format_time(i64::MAX, i64::MAX, 6).is_err());
        assert!(format_time(i64::MIN, i64::MIN, 0).is_err());
    }

    #[test]
    fn durations() {
        let cases = [
            (0, "0s"),
            (1, "1ns"),
            (1_100, "1.1µs"),
            (2_200_000, "2.2ms"),
            (300_000_000, "300ms"),
            (1_500_000_000, "1.5s"),
            (300_000_000_000, "5m0s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_500_000_000, "1h2m3.5s"),
            (-90_000_000_000, "-1m30s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
            (i64::MAX, "2562047h47m16.854775807s"),
        ];
        for (nanos, want) in cases {
            assert_eq!(format_duration(nanos), want, "{nanos}");
        }
    }
}
