//! dockerfile: a Dockerfile parser and Docker-compatible word expander, used by berth's
//! image builder.
//!
//! [`parse`] turns Dockerfile text into a typed [`Dockerfile`] (meta `ARG`s and build
//! stages of [`Instruction`]s), following the behaviour of `docker build` (BuildKit's
//! `frontend/dockerfile/parser` and `instructions` packages):
//!
//! * parser directives at the very top (`# syntax=`, `# escape=` with `\` or `` ` ``,
//!   `# check=`), case-insensitive, a duplicate is an error, the first other line ends
//!   them;
//! * comments, line continuations with the escape character (trailing blanks allowed),
//!   comment and empty lines inside continuations skipped;
//! * case-insensitive keywords, exec (JSON array) vs shell form detection, `--flag=value`
//!   parsing per instruction, heredocs (`<<EOF`, `<<-EOF`, quoted delimiters, several per
//!   line) for `RUN`, `COPY` and `ADD`;
//! * docker's error texts, reported as `dockerfile parse error on line N: ...`.
//!
//! Arguments stay raw; at build time the builder expands them with [`Lexer`], which
//! implements docker's shell-word rules (quotes, escapes, `$VAR`, `${VAR:-default}` and
//! the other operators). [`parse_mount`] interprets `RUN --mount=` values.
//!
//! The crate does no I/O.

mod ast;
mod duration;
mod error;
mod instructions;
mod lexer;
mod mount;
mod parser;

#[cfg(test)]
mod tests;

pub use ast::{
    CopyFlags, Dockerfile, Healthcheck, Heredoc, Instruction, InstructionKind, ShellOrExec, Stage,
};
pub use duration::parse_go_duration;
pub use error::{ExpandError, MountError, ParseError};
pub use lexer::Lexer;
pub use mount::{parse_mount, CacheSharing, MountExpander, MountType, RunMount};

/// Parses a Dockerfile.
///
/// Errors carry the 1-based line of the offending instruction and docker's message, e.g.
/// `dockerfile parse error on line 3: unknown instruction: FOO`.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let raw = parser::parse_raw(text)?;
    instructions::build(raw)
}

/// Whether a shell-form `RUN` command is exactly one heredoc token (`RUN <<EOF`), meaning
/// the first heredoc's body is the script to run (docker runs it with the shell, or as
/// an executable file when it starts with `#!`). Otherwise heredocs on a `RUN` line are
/// input of the command and the builder passes the command text followed by each
/// heredoc (`\n` + body + delimiter) to the shell.
pub fn run_heredoc_is_script(command: &ShellOrExec) -> bool {
    match command {
        ShellOrExec::Shell(text) => matches!(parser::parse_heredoc(text.trim()), Ok(Some(_))),
        ShellOrExec::Exec(_) => false,
    }
}
