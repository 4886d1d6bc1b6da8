//! CLI errors and their exit codes.

use std::sync::OnceLock;

/// The daemon address in use, for "Cannot connect" messages.
static HOST: OnceLock<String> = OnceLock::new();

/// Records the daemon address (first call wins).
pub fn set_host(host: &str) {
    let _ = HOST.set(host.to_string());
}

fn host() -> String {
    HOST.get()
        .cloned()
        .unwrap_or_else(|| crate::client::DEFAULT_HOST.to_string())
}

/// Everything that can make a command fail.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A fully formatted message with an exit code (docker's `StatusError`);
    /// an empty message prints nothing.
    #[error("{message}")]
    Status {
        /// Text printed on stderr.
        message: String,
        /// Process exit code.
        code: i32,
    },
    /// An error response (non-2xx) from the daemon.
    #[error("Error response from daemon: {message}")]
    Daemon {
        /// HTTP status.
        status: u16,
        /// The daemon's `message`.
        message: String,
    },
    /// The daemon socket could not be reached.
    #[error("Cannot connect to the berth daemon at {host}. Is the berth daemon running?")]
    Connect {
        /// Address we tried.
        host: String,
    },
    /// Any other failure, printed as-is.
    #[error("{0}")]
    Other(String),
}

impl CliError {
    /// Exit code docker would use for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Status { code, .. } => *code,
            _ => 1,
        }
    }

    /// True for a daemon 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, CliError::Daemon { status: 404, .. })
    }

    /// A silent exit with a status code.
    pub fn exit(code: i32) -> CliError {
        CliError::Status {
            message: String::new(),
            code,
        }
    }

    /// Wraps an error the way `docker run`/`create` report it:
    /// `berth: <err>` + a hint line, with the given exit code.
    pub fn with_help(self, bin: &str, cmd: &str, code: i32) -> CliError {
        CliError::Status {
            message: format!("{bin}: {self}\n\nRun '{bin} {cmd} --help' for more information"),
            code,
        }
    }
}

fn is_connect_kind(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        kind,
        ConnectionRefused | NotFound | PermissionDenied | ConnectionReset | AddrNotAvailable
    )
}

impl From<bollard::errors::Error> for CliError {
    fn from(e: bollard::errors::Error) -> Self {
        use bollard::errors::Error as B;
        match e {
            B::DockerResponseServerError {
                status_code,
                message,
            } => CliError::Daemon {
                status: status_code,
                message,
            },
            B::DockerStreamError { error } => CliError::Other(error),
            B::IOError { err } if is_connect_kind(err.kind()) => CliError::Connect { host: host() },
            B::SocketNotFoundError(_) => CliError::Connect { host: host() },
            B::RequestTimeoutError => CliError::Other("request to the daemon timed out".into()),
            other => CliError::Other(other.to_string()),
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Other(e.to_string())
    }
}

/// Result alias for commands.
pub type CliResult<T> = Result<T, CliError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_errors_render_like_docker() {
        let e: CliError = bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            message: "No such container: x".into(),
        }
        .into();
        assert!(e.is_not_found());
        assert_eq!(
            e.to_string(),
            "Error response from daemon: No such container: x"
        );
        assert_eq!(e.exit_code(), 1);
        let wrapped = e.with_help("berth", "run", 125);
        assert_eq!(
            wrapped.to_string(),
            "berth: Error response from daemon: No such container: x\n\nRun 'berth run --help' for more information"
        );
        assert_eq!(wrapped.exit_code(), 125);
    }

    #[test]
    fn connect_errors() {
        let e: CliError = bollard::errors::Error::IOError {
            err: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        }
        .into();
        assert!(matches!(e, CliError::Connect { .. }));
        assert!(e
            .to_string()
            .starts_with("Cannot connect to the berth daemon at "));
    }
}
