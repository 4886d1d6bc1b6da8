//! Build errors: what the client sees in the `errorDetail` of the build stream.

use thiserror::Error;

/// Why a build failed. `Display` is the message Docker prints for the same failure.
#[derive(Debug, Error)]
pub enum BuildError {
    /// The Dockerfile could not be found or read.
    #[error("Cannot locate specified Dockerfile: {0}")]
    NoDockerfile(String),
    /// A syntax error (file and line named).
    #[error("{0}")]
    Parse(String),
    /// Bad options or instruction arguments.
    #[error("{0}")]
    Invalid(String),
    /// A RUN step exited non-zero.
    #[error("The command '{command}' returned a non-zero code: {code}")]
    RunFailed { command: String, code: i64 },
    /// A COPY/ADD source is missing, excluded or outside the context.
    #[error("{0}")]
    Copy(String),
    /// The base image is unknown.
    #[error("{0}")]
    Image(String),
    /// The client went away.
    #[error("build cancelled")]
    Cancelled,
    #[error("{0}")]
    Internal(String),
}

impl BuildError {
    /// The exit code the docker CLI should end with (`errorDetail.code`).
    pub fn code(&self) -> Option<i64> {
        match self {
            BuildError::RunFailed { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl From<std::io::Error> for BuildError {
    fn from(e: std::io::Error) -> Self {
        BuildError::Internal(e.to_string())
    }
}

impl From<image_store::ImageError> for BuildError {
    fn from(e: image_store::ImageError) -> Self {
        BuildError::Image(e.to_string())
    }
}

impl From<engine::EngineError> for BuildError {
    fn from(e: engine::EngineError) -> Self {
        BuildError::Internal(e.to_string())
    }
}

pub type Result<T, E = BuildError> = std::result::Result<T, E>;
