//! Local terminal handling: tty detection, window size, raw mode.

use std::os::fd::BorrowedFd;
use std::sync::Mutex;

use nix::sys::termios::{self, SetArg, Termios};

/// File descriptor numbers of the standard streams.
pub const STDIN: i32 = 0;
/// Standard output.
pub const STDOUT: i32 = 1;

/// Whether `fd` refers to a terminal.
pub fn is_tty(fd: i32) -> bool {
    // SAFETY: isatty only inspects the descriptor number.
    unsafe { libc::isatty(fd) == 1 }
}

/// Terminal size as (rows, columns), or None when `fd` is not a terminal.
pub fn size(fd: i32) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a `winsize` into the pointed-to struct, which
    // lives for the duration of the call.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws as *mut libc::winsize) };
    if rc != 0 {
        return None;
    }
    Some((ws.ws_row, ws.ws_col))
}

/// Width to wrap help text to (docker: terminal width - 1, default 80 - 1).
pub fn help_width() -> usize {
    let cols = size(STDIN)
        .map(|(_, c)| c as usize)
        .filter(|c| *c > 0)
        .unwrap_or(80);
    cols.saturating_sub(1)
}

/// Saved terminal state, restored exactly once (on `restore` or drop).
pub struct RawGuard {
    fd: i32,
    saved: Mutex<Option<Termios>>,
}

impl RawGuard {
    /// Puts `fd` into raw mode (like `cfmakeraw`).
    pub fn enable(fd: i32) -> Result<RawGuard, nix::Error> {
        // SAFETY: fd 0/1 stay open for the whole process lifetime.
        let bfd = unsafe { BorrowedFd::borrow_raw(fd) };
        let saved = termios::tcgetattr(bfd)?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(bfd, SetArg::TCSANOW, &raw)?;
        Ok(RawGuard {
            fd,
            saved: Mutex::new(Some(saved)),
        })
    }

    /// Restores the saved settings (idempotent).
    pub fn restore(&self) {
        let saved = match self.saved.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        if let Some(t) = saved {
            // SAFETY: see `enable`.
            let bfd = unsafe { BorrowedFd::borrow_raw(self.fd) };
            if let Err(e) = termios::tcsetattr(bfd, SetArg::TCSANOW, &t) {
                tracing::debug!("restoring terminal: {e}");
            }
        }
    }
}

impl Drop for RawGuard {
    fn drop(&mut self) {
        self.restore();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_tty_has_no_size() {
        let f = std::fs::File::open("/dev/null").unwrap();
        use std::os::fd::AsRawFd;
        assert!(!is_tty(f.as_raw_fd()));
        assert_eq!(size(f.as_raw_fd()), None);
        assert!(RawGuard::enable(f.as_raw_fd()).is_err());
    }
}
