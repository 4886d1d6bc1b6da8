//! Error types of the crate.

use thiserror::Error;

/// A Dockerfile could not be parsed. `line` is 1-based and points at the first line of
/// the offending instruction (or at the offending line for line-level problems).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("dockerfile parse error on line {line}: {message}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// Docker's wording of the problem where it has one (e.g. `unknown instruction: FOO`).
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(line: usize, message: impl Into<String>) -> Self {
        ParseError {
            line: line.max(1),
            message: message.into(),
        }
    }
}

/// Variable expansion of a word failed (bad `${...}` syntax, unterminated quote, or a
/// `${VAR?message}` / `${VAR:?message}` on an unset/empty variable).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("failed to process \"{word}\": {message}")]
pub struct ExpandError {
    /// The text that was being expanded.
    pub word: String,
    /// What went wrong, e.g. `syntax error: missing '}'` or `VAR: is not allowed to be unset`.
    pub message: String,
}

/// A `RUN --mount=...` specification is invalid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct MountError(pub String);
