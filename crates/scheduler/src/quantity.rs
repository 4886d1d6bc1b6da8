//! Kubernetes resource quantities (`"4"`, `"3500m"`, `"8Gi"`, `"1.5e3"`), parsed exactly.
//!
//! Grammar (as `k8s.io/apimachinery` accepts it): an optional sign, a decimal number (`1`, `1.5`,
//! `.5`, `5.`) and a suffix that is a binary SI suffix (`Ki Mi Gi Ti Pi Ei`), a decimal SI suffix
//! (`n u m k M G T P E`, or none) or a decimal exponent (`e3`, `E-2`). Values are rounded up to the
//! unit asked for, as `Quantity.Value()` / `Quantity.MilliValue()` do.

/// Parses a quantity and returns it in milli-units (`"100m"` -> 100, `"1"` -> 1000,
/// `"1Ki"` -> 1_024_000), rounded up (towards +infinity) when finer than a milli-unit.
/// `None` for text that is not a quantity, or a value beyond `i128`.
pub fn parse_quantity(s: &str) -> Option<i128> {
    let q = Parsed::new(s)?;
    q.scaled(3)
}

/// The quantity's value in whole units (bytes for memory, a count for pods), rounded up like
/// `Quantity.Value()`. `None` when unparsable or beyond `i64`.
pub fn quantity_value(s: &str) -> Option<i64> {
    let q = Parsed::new(s)?;
    q.scaled(0).and_then(|v| i64::try_from(v).ok())
}

/// The quantity in milli-units (millicores for cpu), rounded up like `Quantity.MilliValue()`.
/// `None` when unparsable or beyond `i64`.
pub fn quantity_milli_value(s: &str) -> Option<i64> {
    parse_quantity(s).and_then(|v| i64::try_from(v).ok())
}

/// A parsed quantity: `sign * digits * 10^exp10 * 2^exp2`.
struct Parsed {
    negative: bool,
    digits: i128,
    exp10: i32,
    exp2: u32,
}

impl Parsed {
    fn new(s: &str) -> Option<Self> {
        let bytes = s.as_bytes();
        let mut i = 0;
        let mut negative = false;
        if let Some(&c) = bytes.first() {
            if c == b'+' || c == b'-' {
                negative = c == b'-';
                i = 1;
            }
        }
        let mut digits: i128 = 0;
        let mut seen_digit = false;
        let mut frac_len: i32 = 0;
        let mut in_frac = false;
        // Digits beyond what i128 holds only matter in the integer part (overflow); in the
        // fraction they are dropped, which can only lower the value by less than one unit of
        // the last kept digit, so round-up is preserved by remembering that something was cut.
        let mut truncated_nonzero = false;
        while i < bytes.len() {
            let c = bytes[i];
            if c.is_ascii_digit() {
                seen_digit = true;
                let d = i128::from(c - b'0');
                match digits.checked_mul(10).and_then(|v| v.checked_add(d)) {
                    Some(v) if v < i128::MAX / 100 => {
                        digits = v;
                        if in_frac {
                            frac_len += 1;
                        }
                    }
                    _ => {
                        if !in_frac {
                            return None;
                        }
                        if d != 0 {
                            truncated_nonzero = true;
                        }
                    }
                }
            } else if c == b'.' && !in_frac {
                in_frac = true;
            } else {
                break;
            }
            i += 1;
        }
        if !seen_digit {
            return None;
        }
        let (exp10, exp2) = suffix(&s[i..])?;
        let mut p = Parsed {
            negative,
            digits,
            exp10: exp10.checked_sub(frac_len)?,
            exp2,
        };
        if truncated_nonzero {
            // Keep a marker digit so that rounding up still sees a non-zero remainder.
            p.digits = p.digits.checked_mul(10)?.checked_add(1)?;
            p.exp10 = p.exp10.checked_sub(1)?;
        }
        Some(p)
    }

    /// The value times `10^scale`, rounded towards +infinity.
    fn scaled(&self, scale: i32) -> Option<i128> {
        if self.digits == 0 {
            return Some(0);
        }
        let two = 1i128.checked_shl(self.exp2)?;
        let mag = self.digits.checked_mul(two)?;
        let e = self.exp10.checked_add(scale)?;
        let (floor, exact) = if e >= 0 {
            let p = pow10(e)?;
            (mag.checked_mul(p)?, true)
        } else {
            match pow10(-e) {
                Some(p) => (mag / p, mag % p == 0),
                // Smaller than any representable step: floor is 0, and it is not exact.
                None => (0, false),
            }
        };
        Some(match (self.negative, exact) {
            (false, true) => floor,
            (false, false) => floor.checked_add(1)?,
            // ceil(-x) = -floor(x)
            (true, _) => -floor,
        })
    }
}

fn pow10(e: i32) -> Option<i128> {
    let e = u32::try_from(e).ok()?;
    10i128.checked_pow(e)
}

/// `(decimal exponent, binary exponent)` of a suffix.
fn suffix(s: &str) -> Option<(i32, u32)> {
    Some(match s {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        _ => {
            let rest = s.strip_prefix('e').or_else(|| s.strip_prefix('E'))?;
            let body = rest.strip_prefix(['+', '-']).unwrap_or(rest);
            if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) || body.len() > 6 {
                return None;
            }
            (rest.parse::<i32>().ok()?, 0)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_decimal_si() {
        assert_eq!(parse_quantity("4"), Some(4000));
        assert_eq!(parse_quantity("3500m"), Some(3500));
        assert_eq!(parse_quantity("0.5"), Some(500));
        assert_eq!(parse_quantity(".5"), Some(500));
        assert_eq!(parse_quantity("5."), Some(5000));
        assert_eq!(parse_quantity("2k"), Some(2_000_000));
        assert_eq!(parse_quantity("1M"), Some(1_000_000_000));
        assert_eq!(quantity_value("1G"), Some(1_000_000_000));
        assert_eq!(quantity_value("1T"), Some(1_000_000_000_000));
        assert_eq!(quantity_value("1P"), Some(1_000_000_000_000_000));
        assert_eq!(quantity_value("1E"), Some(1_000_000_000_000_000_000));
        assert_eq!(quantity_value("110"), Some(110));
        assert_eq!(parse_quantity("+1"), Some(1000));
        assert_eq!(parse_quantity("-1"), Some(-1000));
    }

    #[test]
    fn binary_si() {
        assert_eq!(quantity_value("1Ki"), Some(1024));
        assert_eq!(quantity_value("128Mi"), Some(128 * 1024 * 1024));
        assert_eq!(quantity_value("8Gi"), Some(8 * 1024 * 1024 * 1024));
        assert_eq!(quantity_value("1Ti"), Some(1 << 40));
        assert_eq!(quantity_value("1Pi"), Some(1 << 50));
        assert_eq!(quantity_value("1Ei"), Some(1 << 60));
        assert_eq!(quantity_value("1.5Gi"), Some(3 << 29));
        assert_eq!(quantity_value("0.5Ki"), Some(512));
    }

    #[test]
    fn exponents() {
        assert_eq!(quantity_value("1e3"), Some(1000));
        assert_eq!(quantity_value("1E3"), Some(1000));
        assert_eq!(quantity_value("1.5e3"), Some(1500));
        assert_eq!(parse_quantity("1e-3"), Some(1));
        assert_eq!(parse_quantity("25e-4"), Some(3), "2.5 milli rounds up");
        assert_eq!(quantity_value("12e+2"), Some(1200));
    }

    #[test]
    fn rounds_up_like_kubernetes() {
        assert_eq!(quantity_milli_value("0.5m"), Some(1));
        assert_eq!(quantity_milli_value("100u"), Some(1));
        assert_eq!(quantity_milli_value("1n"), Some(1));
        assert_eq!(quantity_value("1.1"), Some(2));
        assert_eq!(quantity_value("100m"), Some(1));
        assert_eq!(quantity_value("-1.5"), Some(-1));
        assert_eq!(
            quantity_milli_value("0.0000000000000000000000000000000000000000001"),
            Some(1)
        );
        assert_eq!(parse_quantity("0"), Some(0));
        assert_eq!(parse_quantity("0.000"), Some(0));
        assert_eq!(parse_quantity("0Gi"), Some(0));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "m",
            "Gi",
            "1x",
            "1 Gi",
            "1Gb",
            "1..2",
            "--1",
            "1e",
            "1e+",
            "1ee3",
            "1.2.3",
            " 1",
            "1Ki2",
            "abc",
            "1e99999999",
        ] {
            assert_eq!(parse_quantity(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn overflow_is_none() {
        assert_eq!(parse_quantity("1e40"), None);
        assert_eq!(quantity_value("99999999999Ei"), None);
        assert_eq!(quantity_value("100000000000000000000"), None, "beyond i64");
        assert!(parse_quantity("100000000000000000000").is_some());
    }
}
