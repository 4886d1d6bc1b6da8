//! Reaps every child of the shim (it is a child subreaper) and hands exit
//! statuses to whoever registered interest in a pid.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use tokio::sync::oneshot;

#[derive(Default)]
struct Inner {
    waiters: HashMap<i32, oneshot::Sender<i32>>,
    unclaimed: HashMap<i32, i32>,
}

/// Shared reaper state; cheap to clone.
#[derive(Clone, Default)]
pub struct Reaper {
    inner: Arc<Mutex<Inner>>,
}

/// Exit code as a shell reports it: the status, or 128 + the signal.
pub fn exit_code(status: WaitStatus) -> Option<(i32, i32)> {
    match status {
        WaitStatus::Exited(pid, code) => Some((pid.as_raw(), code)),
        WaitStatus::Signaled(pid, sig, _) => Some((pid.as_raw(), 128 + sig as i32)),
        _ => None,
    }
}

impl Reaper {
    /// Starts the SIGCHLD loop on the current tokio runtime.
    pub fn start(&self) -> std::io::Result<()> {
        let mut sig = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child())?;
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                me.reap_all();
                if sig.recv().await.is_none() {
                    break;
                }
            }
        });
        Ok(())
    }

    /// Reaps every exited child without blocking.
    pub fn reap_all(&self) {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(st) => {
                    if let Some((pid, code)) = exit_code(st) {
                        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
                        match inner.waiters.remove(&pid) {
                            Some(tx) => {
                                let _ = tx.send(code);
                            }
                            None => {
                                inner.unclaimed.insert(pid, code);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Resolves with the exit code of `pid` (which must be a child or an
    /// orphan reparented to this process).
    pub fn wait_for(&self, pid: i32) -> oneshot::Receiver<i32> {
        let (tx, rx) = oneshot::channel();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match inner.unclaimed.remove(&pid) {
            Some(code) => {
                let _ = tx.send(code);
            }
            None => {
                inner.waiters.insert(pid, tx);
            }
        }
        rx
    }
}
