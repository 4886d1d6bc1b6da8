//! Typed engine errors; the API edge maps each kind to an HTTP status.

/// What went wrong, classified the way the Docker API reports it.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// 404: no such container, image, volume or exec instance.
    #[error("{0}")]
    NotFound(String),
    /// 409: the object exists or is in a state that forbids the operation.
    #[error("{0}")]
    Conflict(String),
    /// 403: the operation is never allowed on this object.
    #[error("{0}")]
    Forbidden(String),
    /// 400: the request itself is invalid.
    #[error("{0}")]
    InvalidArgument(String),
    /// 304: nothing to do (start of a running container, stop of a stopped one).
    #[error("container already in the requested state")]
    NotModified,
    /// 500: the engine or the runtime failed.
    #[error("{0}")]
    Internal(String),
}

impl EngineError {
    pub fn internal(e: impl std::fmt::Display) -> Self {
        EngineError::Internal(e.to_string())
    }
    pub fn no_such_container(name: &str) -> Self {
        EngineError::NotFound(format!("No such container: {name}"))
    }
}

impl From<std::io::Error> for EngineError {
    fn from(e: std::io::Error) -> Self {
        EngineError::Internal(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, EngineError>;
