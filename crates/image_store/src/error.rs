//! Error type of the image store.

use std::fmt;
use std::io;

use crate::reference::ReferenceError;

/// Whether a delete conflict can be overridden with `force`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForceHint {
    /// `must be forced`: retrying with force succeeds.
    MustBeForced,
    /// `cannot be forced`: force does not help (e.g. a running container uses the image).
    CannotBeForced,
}

impl fmt::Display for ForceHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ForceHint::MustBeForced => "must be forced",
            ForceHint::CannotBeForced => "cannot be forced",
        })
    }
}

/// Errors of [`ImageStore`](crate::ImageStore) operations.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// No image matches the reference. Display: `No such image: <ref>` (Docker's wording).
    #[error("No such image: {0}")]
    NotFound(String),
    /// The reference string is malformed (Display is Docker's, e.g. `invalid reference format`).
    #[error(transparent)]
    InvalidReference(#[from] ReferenceError),
    /// Deleting the image conflicts with its references (or, from the engine, containers).
    /// Display: `conflict: unable to delete <short-id> (must be forced) - <message>`.
    #[error("conflict: unable to delete {id} ({force}) - {message}")]
    Conflict {
        /// Short (12 hex) image ID.
        id: String,
        /// Whether force would help.
        force: ForceHint,
        /// Reason, e.g. `image is referenced in multiple repositories`.
        message: String,
    },
    /// Content does not match its expected digest.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// Expected digest.
        expected: String,
        /// Digest of the data received.
        actual: String,
    },
    /// The image data (config, manifest, layers) is inconsistent or malformed.
    #[error("invalid image: {0}")]
    InvalidImage(String),
    /// A layer could not be read, validated or unpacked.
    #[error("layer: {0}")]
    Layer(#[from] layer_unpack::UnpackError),
    /// Another process holds the store.
    #[error("image store {0} is in use by another process")]
    Locked(String),
    /// I/O failure.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The store's own files are unreadable or inconsistent.
    #[error("corrupt image store: {0}")]
    Corrupt(String),
    /// Building the busybox rootfs failed.
    #[error("busybox rootfs: {0}")]
    Busybox(String),
}

impl ImageError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        ImageError::Io {
            context: context.into(),
            source,
        }
    }

    /// A delete conflict (also for the engine's container-in-use checks), e.g.
    /// `conflict(id, ForceHint::CannotBeForced, "image is being used by running container abc")`.
    pub fn conflict(id: &crate::ImageId, force: ForceHint, message: impl Into<String>) -> Self {
        ImageError::Conflict {
            id: id.short().to_string(),
            force,
            message: message.into(),
        }
    }
}

/// Result alias for the store.
pub type Result<T, E = ImageError> = std::result::Result<T, E>;
