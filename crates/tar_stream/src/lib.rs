//! tar_stream: writing directory trees as tar streams, the way image layers and build
//! contexts need them.
//!
//! * [`TarWriter`]: a deterministic tar writer (ustar headers, a PAX header only when a
//!   value does not fit or a member has extended attributes) that hashes (sha256) and
//!   counts what it writes.
//! * [`fs`]: fd-relative, never-following directory walking helpers (`openat` with
//!   `O_NOFOLLOW`, `fstatat`, extended attributes by fd or at a name).
//!
//! Shared by `layer_diff` (overlay upper dirs → layers) and `build_context` (context
//! tars); the `tar` crate's builder is used for headers only, because it follows no
//! fd-relative walk and always writes GNU extensions for long names.

pub mod fs;
mod writer;

pub use writer::{Finished, Member, TarWriter};
