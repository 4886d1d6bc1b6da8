//! oci_runtime: berth's runc-compatible OCI runtime (`berth runtime ...`),
//! built on youki's `libcontainer`.
//!
//! [`main`] takes the arguments that follow `runtime` and behaves like `runc`
//! for the subset berth's shim uses, so the shim can run either program:
//!
//! - global: `--root DIR` (default `/run/berth/runtime`), `--log FILE`,
//!   `--log-format text|json`, `--debug`;
//! - `create --bundle B [--console-socket S] [--pid-file F] [--no-pivot]
//!   [--preserve-fds N] ID`, `start ID`, `state ID`, `kill [--all] ID [SIG]`,
//!   `delete [--force] ID`, `exec ...`, `run ...`, `list`, `pause`, `resume`.
//!
//! libcontainer forks and changes the working directory of the calling
//! process, so [`main`] must run in a fresh, single-threaded process (the
//! `berth` binary dispatches `berth runtime` to it before doing anything else).

mod cli;
mod commands;
mod exec;
mod logging;
mod signal;
mod state;
mod wait;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Parser;
use libcontainer::error::LibcontainerError;

pub use cli::DEFAULT_ROOT;
pub use state::RuncState;

/// Why a runtime command failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// Bad command-line usage or argument value.
    #[error("{0}")]
    Usage(String),
    /// The container's state does not exist.
    #[error("container {0} does not exist")]
    NotExist(String),
    /// A container with that ID already exists.
    #[error("container with id {0} already exists")]
    Exists(String),
    /// Unparseable signal argument.
    #[error("invalid signal {0:?}")]
    InvalidSignal(String),
    /// File-system or I/O failure.
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// Failed system call.
    #[error("{context}: {errno}")]
    Sys {
        context: String,
        errno: nix::errno::Errno,
    },
    /// Unreadable config.json or process.json.
    #[error("invalid spec {}: {message}", path.display())]
    Spec { path: PathBuf, message: String },
    /// libcontainer refused or failed an operation.
    #[error("{op}: {message}")]
    Container { op: String, message: String },
    /// A feature this build does not provide.
    #[error("{0}")]
    Unsupported(String),
}

/// Runs one runtime command. `args` are the arguments after `runtime`
/// (runc's command line without the program name). Returns the exit code:
/// 0 on success, 1 on failure (the error is printed on stderr and, with
/// `--log`, appended to the log in runc's format), or the container's exit
/// code for a foreground `run` / non-detached `exec`.
pub fn main(args: Vec<OsString>) -> i32 {
    let parsed = match cli::Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let format = match logging::LogFormat::parse(parsed.global.log_format.as_deref()) {
        Ok(f) => f,
        Err(e) => {
            logging::LogSink::stderr_only().report_error(&e.to_string());
            return 1;
        }
    };
    let log_path = match parsed.global.log.as_deref().map(cli::absolute).transpose() {
        Ok(p) => p,
        Err(e) => {
            logging::LogSink::stderr_only().report_error(&format!("resolve --log: {e}"));
            return 1;
        }
    };
    let sink = match logging::LogSink::init(log_path.as_deref(), format, parsed.global.debug) {
        Ok(s) => s,
        Err(e) => {
            logging::LogSink::stderr_only().report_error(&e.to_string());
            return 1;
        }
    };
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| commands::dispatch(&parsed)));
    match outcome {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            sink.report_error(&e.to_string());
            1
        }
        Err(_) => {
            sink.report_error("internal error: the runtime panicked");
            1
        }
    }
}

/// Flattens a libcontainer error and its causes into one line, adding the
/// runc wording for a missing or non-executable command (callers such as
/// Docker map "no such file or directory" / "executable file not found" /
/// "permission denied" to exit codes 127/126).
pub fn describe_libcontainer(err: &LibcontainerError) -> String {
    let mut msg = one(err);
    let mut cur = std::error::Error::source(err);
    while let Some(e) = cur {
        let s = match e.downcast_ref::<LibcontainerError>() {
            Some(inner) => one(inner),
            None => e.to_string(),
        };
        if !s.is_empty() && !msg.contains(&s) {
            msg.push_str(": ");
            msg.push_str(&s);
        }
        cur = e.source();
    }
    if let Some(hint) = exec_hint(&msg) {
        msg.push_str(": ");
        msg.push_str(&hint);
    }
    msg
}

fn one(err: &LibcontainerError) -> String {
    match err {
        LibcontainerError::InvalidInput(s) => format!("invalid input: {s}"),
        other => other.to_string(),
    }
}

/// runc-style text for libcontainer's command validation failures.
fn exec_hint(msg: &str) -> Option<String> {
    let name_after = |marker: &str| -> Option<String> {
        let start = msg.find(marker)? + marker.len();
        let rest = &msg[start..];
        let end = rest.find('\'')?;
        Some(rest[..end].to_string())
    };
    if msg.contains("not found in $PATH") {
        let name = name_after("executable '")?;
        return Some(if name.contains('/') {
            format!("exec: \"{name}\": stat {name}: no such file or directory")
        } else {
            format!("exec: \"{name}\": executable file not found in $PATH")
        });
    }
    if msg.contains("does not have correct permissions") {
        let name = name_after("executable '")?;
        return Some(format!("exec: \"{name}\": permission denied"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_hints() {
        assert_eq!(
            exec_hint("x: executable '/nonexistent' not found in $PATH").as_deref(),
            Some("exec: \"/nonexistent\": stat /nonexistent: no such file or directory")
        );
        assert_eq!(
            exec_hint("executable 'foo' not found in $PATH").as_deref(),
            Some("exec: \"foo\": executable file not found in $PATH")
        );
        assert_eq!(
            exec_hint("executable '/etc' at path '\"/etc\"' does not have correct permissions")
                .as_deref(),
            Some("exec: \"/etc\": permission denied")
        );
        assert_eq!(exec_hint("something else"), None);
        assert_eq!(exec_hint("not found in $PATH but no quote"), None);
    }

    #[test]
    fn describe_keeps_invalid_input_text() {
        let e = LibcontainerError::InvalidInput("bad root".into());
        assert_eq!(describe_libcontainer(&e), "invalid input: bad root");
    }

    #[test]
    fn usage_errors_exit_1_and_help_exits_0() {
        assert_eq!(main(vec!["no-such-command".into()]), 1);
        assert_eq!(main(vec!["--help".into()]), 0);
        assert_eq!(
            main(vec!["--log-format".into(), "xml".into(), "list".into()]),
            1
        );
    }
}
