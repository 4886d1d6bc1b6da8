//! The per-container shim: a small process (`berth shim CONFIG`) that outlives
//! the daemon and owns one container's process.
//!
//! It asks an OCI runtime with runc's command line (`runc`, or berth's own
//! libcontainer-based `berth runtime`) to create the container, holds the
//! container's stdio pipes or terminal, writes the output to a log file in
//! Docker's `json-file` format, reaps the process as a child subreaper and
//! records its exit status in `exit.json`. The daemon talks to it over a unix
//! socket ([`protocol`]); a restarted daemon re-attaches through the same
//! socket, or reads `exit.json` when the container ended meanwhile.

pub mod client;
pub mod protocol;
mod reaper;
pub mod server;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Everything the shim needs, written by the daemon as `shim.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShimConfig {
    /// Container id, also the id given to the OCI runtime.
    pub id: String,
    /// OCI bundle directory (holds config.json).
    pub bundle: PathBuf,
    /// argv prefix of the OCI runtime, e.g. `["/usr/sbin/runc"]` or
    /// `["/usr/local/bin/berth", "runtime"]`.
    pub runtime: Vec<String>,
    /// State directory handed to the runtime as `--root`.
    pub runtime_root: PathBuf,
    /// Give the container a terminal.
    pub tty: bool,
    /// Keep stdin open for attaching clients.
    pub open_stdin: bool,
    /// Close stdin when the first attached client detaches.
    pub stdin_once: bool,
    /// Initial terminal size (rows, columns); 0 means unset.
    pub console_size: (u16, u16),
    /// json-file log the output is appended to.
    pub log_path: PathBuf,
    /// Where the exit record is written.
    pub exit_path: PathBuf,
    /// Control socket path.
    pub socket_path: PathBuf,
    /// Directory for the shim's scratch files (pid files, console sockets).
    pub work_dir: PathBuf,
}

/// Errors of the shim and its client.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("shim protocol: {0}")]
    Protocol(String),
    #[error("{0}")]
    Runtime(String),
    #[error("shim is not running")]
    NotRunning,
}
