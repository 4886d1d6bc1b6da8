//! build_context: Docker build contexts — `.dockerignore` parsing and matching, and the
//! context tar the docker CLI uploads with `docker build <dir>`.
//!
//! * [`IgnoreMatcher`] implements Docker's `.dockerignore` rules (moby/patternmatcher):
//!   lines starting with `#` are comments, lines are trimmed and empty ones skipped, paths
//!   are cleaned like Go's `filepath.Clean` and a leading `/` is dropped, `!` re-includes,
//!   the last matching pattern wins, `*`/`?` never match `/`, `[...]` classes, `\`
//!   escapes, `**` spans directories, and a pattern matching a parent directory applies to
//!   everything below it.
//! * [`read_dockerignore`] finds the ignore file for a build (BuildKit's
//!   `<Dockerfile>.dockerignore` first, then `.dockerignore`).
//! * [`write_context_tar`] writes the filtered context as a deterministic tar (owner 0:0,
//!   modes and mtimes kept, symlinks never followed).

mod context;
mod ignore;
mod pattern;

#[cfg(test)]
mod tests;

use std::io;
use std::path::PathBuf;

pub use context::{write_context_tar, ContextStats};
pub use ignore::{read_dockerignore, IgnoreMatcher};
pub use pattern::clean as clean_path;

/// Errors from reading ignore files or writing context tars.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// A malformed `.dockerignore` pattern.
    #[error("invalid .dockerignore pattern {pattern:?}: {reason}")]
    BadPattern {
        /// The pattern (after line clean-up).
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file or directory of the context (or the ignore file) could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// Full path.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A file changed while it was being archived.
    #[error("{} changed while the build context was being written: {reason}", path.display())]
    Changed {
        /// Full path.
        path: PathBuf,
        /// What was seen.
        reason: String,
    },
    /// Writing the tar stream failed.
    #[error("writing the build context tar: {0}")]
    Write(#[source] io::Error),
}
