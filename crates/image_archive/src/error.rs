//! Error type of `save` and `load`.

use std::io;

use image_store::{ImageError, ReferenceError};

/// Errors of [`save`](crate::save) and [`load`](crate::load). Messages name the archive
/// member involved.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The outer stream is neither a tar nor a supported compressed tar, or its compression
    /// is unsupported (xz, bzip2).
    #[error("invalid archive: {0}")]
    Decompress(#[source] layer_unpack::UnpackError),
    /// The tar stream itself is malformed (bad header checksum, garbage, ...).
    #[error("invalid tar header: {0}")]
    InvalidTar(#[source] io::Error),
    /// The input holds no tar member at all.
    #[error("empty archive: no files found")]
    Empty,
    /// A member's data ends before the size its header announces.
    #[error("unexpected EOF in archive member {member}: expected {expected} bytes, got {got}")]
    Truncated {
        /// Member name.
        member: String,
        /// Size from the header.
        expected: u64,
        /// Bytes present.
        got: u64,
    },
    /// A member name (or a path inside `manifest.json` / a link target) has a `..`
    /// component that climbs out of the archive root.
    #[error("invalid archive member {member}: path escapes the archive root")]
    PathEscape {
        /// The name as found.
        member: String,
    },
    /// A member name (or a path inside `manifest.json`) is absolute.
    #[error("invalid archive member {member}: absolute path")]
    AbsolutePath {
        /// The name as found.
        member: String,
    },
    /// A member name is unusable (not UTF-8, empty, ...).
    #[error("invalid archive member {member}: {reason}")]
    InvalidMemberName {
        /// The name (lossily decoded).
        member: String,
        /// Why.
        reason: String,
    },
    /// A member is larger than allowed.
    #[error("archive member {member} is too large: {size} bytes (limit {limit})")]
    MemberTooLarge {
        /// Member name.
        member: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The archive as a whole is larger than allowed.
    #[error("archive is too large: more than {limit} bytes of files")]
    ArchiveTooLarge {
        /// The limit.
        limit: u64,
    },
    /// The archive has more members than allowed.
    #[error("archive has too many members (limit {limit})")]
    TooManyMembers {
        /// The limit.
        limit: u64,
    },
    /// A file referenced by `manifest.json`/`index.json`/a manifest is not in the archive.
    #[error("archive member {member} not found")]
    MissingMember {
        /// The name referenced.
        member: String,
    },
    /// A referenced name is a directory (or other non-file member).
    #[error("archive member {member} is not a regular file")]
    NotAFile {
        /// The name referenced.
        member: String,
    },
    /// Following links from a referenced name did not end.
    #[error("archive member {member}: too many levels of symbolic links")]
    SymlinkLoop {
        /// The name referenced.
        member: String,
    },
    /// Neither `manifest.json` nor `index.json` is present.
    #[error("invalid archive: neither manifest.json nor index.json found")]
    NoManifest,
    /// A JSON member does not parse.
    #[error("invalid JSON in archive member {member}: {source}")]
    InvalidJson {
        /// Member name.
        member: String,
        /// Parser error.
        #[source]
        source: serde_json::Error,
    },
    /// `manifest.json`, `index.json`, a manifest or a config is inconsistent.
    #[error("invalid manifest in {member}: {reason}")]
    InvalidManifest {
        /// Member name.
        member: String,
        /// What is wrong.
        reason: String,
    },
    /// A blob's content does not match its digest (its name or its descriptor).
    #[error("digest mismatch for archive member {member}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// Member name.
        member: String,
        /// Expected digest.
        expected: String,
        /// Digest of the content.
        actual: String,
    },
    /// The image config lists a different number of layers than the manifest.
    #[error("invalid manifest, layers length mismatch: expected {expected}, got {actual}")]
    LayerCountMismatch {
        /// Layers in the manifest.
        expected: usize,
        /// diff_ids in the config.
        actual: usize,
    },
    /// A layer's uncompressed digest does not match the config's `rootfs.diff_ids`.
    #[error("invalid diffID for layer {index} ({member}): expected {expected:?}, got {actual:?}")]
    DiffIdMismatch {
        /// Layer position, bottom first.
        index: usize,
        /// Member name.
        member: String,
        /// `rootfs.diff_ids[index]`.
        expected: String,
        /// Digest of the uncompressed layer.
        actual: String,
    },
    /// A layer blob cannot be decompressed or read.
    #[error("invalid layer {member}: {source}")]
    Layer {
        /// Member name.
        member: String,
        /// What went wrong.
        #[source]
        source: layer_unpack::UnpackError,
    },
    /// A `RepoTags` entry / reference annotation is not a `name:tag` reference.
    #[error("invalid tag {tag:?}")]
    InvalidTag {
        /// The tag as found.
        tag: String,
    },
    /// A reference given to `save` is malformed.
    #[error(transparent)]
    InvalidReference(#[from] ReferenceError),
    /// No manifest of an index matches the host platform.
    #[error("no manifest for platform {platform} in {member}")]
    NoMatchingPlatform {
        /// `os/architecture`.
        platform: String,
        /// The index member.
        member: String,
    },
    /// Something valid but not supported (media types, digest algorithms, foreign OS).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// `save` was called without references.
    #[error("nothing to save: no image references given")]
    NothingToSave,
    /// An image store operation failed.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// I/O failure (spool directory, output stream, store files).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl ArchiveError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        ArchiveError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn manifest(member: &str, reason: impl Into<String>) -> Self {
        ArchiveError::InvalidManifest {
            member: member.to_string(),
            reason: reason.into(),
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = ArchiveError> = std::result::Result<T, E>;
