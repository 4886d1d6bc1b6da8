//! Go's `time.ParseDuration` (used by `HEALTHCHECK --interval=1m30s` etc.).

/// Parses a Go duration string (`"300ms"`, `"-1.5h"`, `"2h45m"`; units ns, us, µs, ms,
/// s, m, h) into signed nanoseconds. Error texts follow Go's.
pub fn parse_go_duration(input: &str) -> Result<i128, String> {
    let invalid = || format!("time: invalid duration \"{input}\"");
    let mut s = input;
    let mut neg = false;
    if let Some(rest) = s.strip_prefix('-') {
        neg = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    const MAX: i128 = 1 << 63;
    let mut total: i128 = 0;
    while !s.is_empty() {
        let first = s.as_bytes()[0];
        if !(first == b'.' || first.is_ascii_digit()) {
            return Err(invalid());
        }
        // integer part
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let mut value: i128 = 0;
        for b in s[..int_len].bytes() {
            value = value * 10 + i128::from(b - b'0');
            if value > MAX {
                return Err(invalid());
            }
        }
        s = &s[int_len..];
        // fraction
        let mut frac: i128 = 0;
        let mut scale: i128 = 1;
        let mut frac_len = 0;
        if let Some(rest) = s.strip_prefix('.') {
            s = rest;
            frac_len = s.bytes().take_while(u8::is_ascii_digit).count();
            for b in s[..frac_len].bytes() {
                // digits beyond nanosecond precision of any unit are irrelevant
                if scale < 1_000_000_000_000_000_000 {
                    frac = frac * 10 + i128::from(b - b'0');
                    scale *= 10;
                }
            }
            s = &s[frac_len..];
        }
        if int_len == 0 && frac_len == 0 {
            return Err(invalid());
        }
        let unit_len = s
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map(|(i, _)| i)
            .unwrap_or(s.len());
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration \"{input}\""));
        }
        let unit_str = &s[..unit_len];
        s = &s[unit_len..];
        let unit: i128 = match unit_str {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit \"{unit_str}\" in duration \"{input}\""
                ))
            }
        };
        total += value * unit + frac * unit / scale;
        if total > MAX {
            return Err(invalid());
        }
    }
    if !neg && total > MAX - 1 {
        return Err(invalid());
    }
    Ok(if neg { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::parse_go_duration as p;

    #[test]
    fn valid() {
        assert_eq!(p("0"), Ok(0));
        assert_eq!(p("30s"), Ok(30_000_000_000));
        assert_eq!(p("1m30s"), Ok(90_000_000_000));
        assert_eq!(p("500ms"), Ok(500_000_000));
        assert_eq!(p("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(p(".5s"), Ok(500_000_000));
        assert_eq!(p("1.s"), Ok(1_000_000_000));
        assert_eq!(p("-2us"), Ok(-2_000));
        assert_eq!(p("+3µs"), Ok(3_000));
        assert_eq!(p("10ns"), Ok(10));
        assert_eq!(p("2h45m0.5s"), Ok(9_900_500_000_000));
    }

    #[test]
    fn invalid() {
        assert_eq!(p(""), Err("time: invalid duration \"\"".into()));
        assert_eq!(p("abc"), Err("time: invalid duration \"abc\"".into()));
        assert_eq!(p("10"), Err("time: missing unit in duration \"10\"".into()));
        assert_eq!(
            p("10x"),
            Err("time: unknown unit \"x\" in duration \"10x\"".into())
        );
        assert!(p(".s").is_err());
        assert!(p("-").is_err());
        assert!(p("99999999999999999999h").is_err());
    }
}
