//! Parsing of signal arguments the way runc accepts them: a number (`9`), a
//! name (`KILL`) or a prefixed name (`SIGKILL`), case-insensitively.

use std::str::FromStr;

use nix::sys::signal::Signal;

use crate::RuntimeError;

/// Parses a runc-style signal argument into a standard signal.
pub fn parse_signal(raw: &str) -> Result<Signal, RuntimeError> {
    let invalid = || RuntimeError::InvalidSignal(raw.to_string());
    let s = raw.trim();
    if s.is_empty() {
        return Err(invalid());
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let n: i32 = s.parse().map_err(|_| invalid())?;
        return Signal::try_from(n).map_err(|_| invalid());
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_numbers_and_prefixes() {
        assert_eq!(parse_signal("TERM").ok(), Some(Signal::SIGTERM));
        assert_eq!(parse_signal("SIGTERM").ok(), Some(Signal::SIGTERM));
        assert_eq!(parse_signal("sigkill").ok(), Some(Signal::SIGKILL));
        assert_eq!(parse_signal("kill").ok(), Some(Signal::SIGKILL));
        assert_eq!(parse_signal("9").ok(), Some(Signal::SIGKILL));
        assert_eq!(parse_signal("15").ok(), Some(Signal::SIGTERM));
        assert_eq!(parse_signal("HUP").ok(), Some(Signal::SIGHUP));
        assert_eq!(parse_signal("USR1").ok(), Some(Signal::SIGUSR1));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "0",
            "999",
            "-1",
            "SIG",
            "NOPE",
            "SIGNOPE",
            "9x",
            "99999999999999",
        ] {
            assert!(parse_signal(bad).is_err(), "{bad:?} accepted");
        }
    }
}
