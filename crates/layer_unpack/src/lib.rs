//! layer_unpack: hostile-input-safe extraction of OCI/Docker image layer tars.
//!
//! A layer (plain tar, gzip or zstd, detected from its magic bytes) is unpacked into its own
//! directory, meant to be used as one overlayfs *lower* layer. Guarantees:
//!
//! * nothing is ever written outside the destination: absolute member names are made
//!   relative, a `..` that would climb out is an error, every parent directory is opened
//!   component by component with `O_NOFOLLOW` (a symlink planted by the archive is never
//!   followed), and hardlink targets are resolved the same way;
//! * OCI whiteouts become overlayfs markers: `.wh.<name>` → a `0:0` character device
//!   `<name>`, `.wh..wh..opq` → xattr `trusted.overlay.opaque=y` on its directory;
//! * mode (setuid/setgid/sticky included), ownership (`lchown`, when root), mtime/atime and
//!   `SCHILY.xattr.*` attributes are preserved; device nodes and fifos are created with
//!   `mknod`;
//! * the sha256 of the uncompressed stream (the layer's diff_id) is computed while reading.
//!
//! Entry points: [`unpack`], [`unpack_with`], [`inspect`] (validate + diff_id without
//! writing), [`diff_id`], [`decompress`], [`DigestReader`].

mod compression;
mod digest;
mod fsops;
mod path;
mod unpack;

#[cfg(test)]
mod tests;

use std::io;

pub use compression::{decompress, detect_compression, Compression, Decompressor};
pub use digest::{sha256_digest, DigestReader};
pub use unpack::{
    diff_id, inspect, inspect_tar, unpack, unpack_tar, unpack_with, UnpackOptions, UnpackStats,
};

/// Prefix of an OCI whiteout member name.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Member name marking its directory as opaque.
pub const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";
/// The overlayfs xattr set on opaque directories.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Errors from unpacking or inspecting a layer.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// An I/O error outside the archive itself (destination writes, fd handling).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The stream is not a valid (or complete) tar / compressed stream.
    #[error("invalid layer archive: {0}")]
    Archive(#[source] io::Error),
    /// A member's data ended early.
    #[error("truncated layer archive: {path}: expected {expected} bytes, got {got}")]
    Truncated {
        /// Member path.
        path: String,
        /// Size announced by the header.
        expected: u64,
        /// Bytes actually present.
        got: u64,
    },
    /// A member name climbs out of the destination with `..`.
    #[error("path escapes the layer root: {path}")]
    PathEscape {
        /// The member name as found in the archive.
        path: String,
    },
    /// A member name or header field is unusable.
    #[error("invalid member {path}: {reason}")]
    InvalidPath {
        /// Member path.
        path: String,
        /// Why.
        reason: String,
    },
    /// Writing the member would go through a symlink or a non-directory.
    #[error("refusing to write below {path}: {reason}")]
    UnsafePath {
        /// The offending component's path.
        path: String,
        /// Why.
        reason: String,
    },
    /// A hardlink whose target is outside the destination, missing or a directory.
    #[error("invalid hardlink {path} -> {target}: {reason}")]
    InvalidHardlink {
        /// Member path.
        path: String,
        /// Link target as found in the archive.
        target: String,
        /// Why.
        reason: String,
    },
    /// A system call on the destination failed.
    #[error("{op} {path}: {errno}")]
    Sys {
        /// The operation.
        op: &'static str,
        /// Path (relative to the destination root).
        path: String,
        /// The error.
        #[source]
        errno: nix::errno::Errno,
    },
    /// A recognised but unsupported input format (bzip2, xz).
    #[error("unsupported layer format: {0}")]
    Unsupported(String),
}

impl UnpackError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        UnpackError::Io {
            context: context.into(),
            source,
        }
    }
}
