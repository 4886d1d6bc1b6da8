//! Foreground waiting (`run` and non-detached `exec`): forward the usual
//! termination/job-control signals to the container process and return its
//! exit status in shell convention (128+N when killed by signal N).

use nix::errno::Errno;
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::RuntimeError;

/// Signals relayed to the waited-for process.
const FORWARDED: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCONT,
    Signal::SIGTSTP,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
];

/// Converts a wait status of `pid` into an exit code, if it is final.
pub fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

/// Blocks SIGCHLD and the forwarded signals in this process, so that none of
/// them is lost (or kills us) before [`wait_forwarding`] runs. Call it only
/// after the container process exists: a blocked mask survives fork+execve.
pub fn block_signals() -> Result<SigSet, RuntimeError> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    for s in FORWARDED {
        set.add(*s);
    }
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None).map_err(|e| {
        RuntimeError::Sys {
            context: "block signals".to_string(),
            errno: e,
        }
    })?;
    Ok(set)
}

/// Waits for `pid` (a child of this process, or an orphan when this process
/// is a subreaper), relaying the signals of `set` (from [`block_signals`]);
/// other children that exit meanwhile are reaped too. Returns the exit code.
pub fn wait_forwarding(pid: Pid, set: &SigSet) -> Result<i32, RuntimeError> {
    loop {
        // Reap everything that is ready; stop when our process is done.
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => break,
                Ok(status) => {
                    if status.pid() == Some(pid) {
                        if let Some(code) = exit_code(status) {
                            return Ok(code);
                        }
                    }
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::ECHILD) => {
                    return Err(RuntimeError::Sys {
                        context: format!("wait for process {pid}: not a child"),
                        errno: Errno::ECHILD,
                    })
                }
                Err(e) => {
                    return Err(RuntimeError::Sys {
                        context: format!("wait for process {pid}"),
                        errno: e,
                    })
                }
            }
        }
        let sig = set.wait().map_err(|e| RuntimeError::Sys {
            context: "wait for signals".to_string(),
            errno: e,
        })?;
        if sig != Signal::SIGCHLD {
            tracing::debug!(?sig, %pid, "forwarding signal");
            let _ = kill(pid, sig);
        }
    }
}

/// Reaps children that exit within `grace` (e.g. the process of a failed
/// exec, which libcontainer leaves to its parent), so they do not linger as
/// zombies inside the container's pid namespace.
pub fn reap_children(grace: std::time::Duration) {
    let deadline = std::time::Instant::now() + grace;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {
                if std::time::Instant::now() >= deadline {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        let p = Pid::from_raw(1);
        assert_eq!(exit_code(WaitStatus::Exited(p, 3)), Some(3));
        assert_eq!(
            exit_code(WaitStatus::Signaled(p, Signal::SIGKILL, false)),
            Some(137)
        );
        assert_eq!(exit_code(WaitStatus::StillAlive), None);
    }
}
