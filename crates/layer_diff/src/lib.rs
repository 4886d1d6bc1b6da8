//! layer_diff: turns an overlayfs *upper* directory into an OCI image layer (an
//! uncompressed tar).
//!
//! The image builder runs each build step on an overlay mount whose lowerdirs are the
//! image's layer snapshots and whose upperdir starts empty; afterwards the upper dir holds
//! exactly the step's changes, in overlay format. [`write_layer`] translates it:
//!
//! * every file, directory, symlink, fifo and device node becomes a tar member, with mode
//!   (setuid/setgid/sticky included), uid, gid, mtime (whole seconds, as Docker writes),
//!   symlink target and device numbers preserved; sockets are skipped;
//! * extended attributes become `SCHILY.xattr.<name>` PAX records, except overlayfs' own
//!   `trusted.overlay.*` bookkeeping;
//! * files hardlinked to each other inside the upper dir (same device and inode) become one
//!   regular member followed by tar hardlink members;
//! * a whiteout (a `0:0` character device `d/x`) becomes an empty regular member
//!   `d/.wh.x` with mode 0; an opaque directory (`trusted.overlay.opaque=y`) `d` becomes
//!   the member `d/` followed by an empty member `d/.wh..wh..opq`;
//! * the output is deterministic: members are written depth-first with the names in each
//!   directory sorted bytewise (so a parent always precedes its children), names are
//!   relative (no leading `/` or `./`; directories end in `/`), owner names are empty, and
//!   PAX extended headers appear only when needed (long names or link targets, values that
//!   do not fit a ustar field, xattrs).
//!
//! The upper dir is walked with fd-relative, no-follow system calls (`openat` with
//! `O_NOFOLLOW`, `fstatat` with `AT_SYMLINK_NOFOLLOW`); one directory fd per level of the
//! current path is open during the walk and all are closed when it returns.
//!
//! Requirements on the mount: it must not use `metacopy=on` (a metadata-only copy-up has no
//! data in the upper dir) nor `redirect_dir=on` (a renamed directory refers to lower
//! content by path); both are detected and rejected with [`DiffError::Unsupported`]. Mount
//! with `redirect_dir=off,metacopy=off` (the kernel defaults unless configured otherwise).
//! The upper dir should not change while it is read (unmount it or stop the step first).
//!
//! Entry points: [`write_layer`], [`is_empty`].

mod walk;

#[cfg(test)]
mod overlay_tests;
#[cfg(test)]
mod tests;

use std::io::{self, Write};
use std::path::Path;

/// Prefix of an OCI whiteout member name.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Member name marking its directory as opaque.
pub const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";
/// Prefix of the extended attributes overlayfs keeps for itself (never exported).
pub const OVERLAY_XATTR_PREFIX: &str = "trusted.overlay.";

/// What [`write_layer`] produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiffStats {
    /// `sha256:<hex>` of the tar bytes (the layer's diff_id).
    pub diff_id: String,
    /// Length of the tar stream in bytes (including the end-of-archive blocks).
    pub tar_size: u64,
    /// Sum of the sizes of regular files (hardlinked files counted once).
    pub content_size: u64,
    /// Tar members written (PAX extension headers not counted; whiteout and opaque
    /// markers counted).
    pub entries: u64,
}

/// Errors from reading the upper dir or writing the tar.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// A system call on the upper dir failed.
    #[error("{op} {path}: {errno}")]
    Sys {
        /// The operation.
        op: &'static str,
        /// Path relative to the upper dir (the upper dir itself for the root).
        path: String,
        /// The error.
        #[source]
        errno: nix::errno::Errno,
    },
    /// Reading a file's data or attributes failed.
    #[error("reading {path}: {source}")]
    Read {
        /// Path relative to the upper dir.
        path: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Writing the tar stream failed.
    #[error("writing the layer tar: {0}")]
    Write(#[source] io::Error),
    /// The upper dir changed while it was being archived.
    #[error("{path} changed while the layer was being written: {reason}")]
    Changed {
        /// Path relative to the upper dir.
        path: String,
        /// What was seen.
        reason: String,
    },
    /// The upper dir uses an overlayfs feature that cannot be exported on its own
    /// (`redirect_dir`, `metacopy`).
    #[error("unsupported overlayfs feature at {path}: {reason}")]
    Unsupported {
        /// Path relative to the upper dir.
        path: String,
        /// Which feature.
        reason: String,
    },
}

/// Writes the changes recorded in the overlayfs upper dir `upper` as an uncompressed OCI
/// layer tar to `out` (which is flushed, not closed) and returns its diff_id and sizes.
///
/// On error, `out` holds a partial stream that must be discarded.
pub fn write_layer(upper: &Path, out: impl Write) -> Result<DiffStats, DiffError> {
    walk::write_layer(upper, out)
}

/// True when `upper` records no change at all, i.e. [`write_layer`] would write no member
/// (the upper dir is empty, or holds only sockets). The builder then skips the layer.
pub fn is_empty(upper: &Path) -> Result<bool, DiffError> {
    walk::is_empty(upper)
}
