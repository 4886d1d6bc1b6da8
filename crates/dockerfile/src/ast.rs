//! The typed syntax tree produced by [`crate::parse`].
//!
//! Arguments are kept *raw* (quotes and `$VAR` references untouched) wherever docker
//! expands them at build time; the builder expands them with [`crate::Lexer`].

use serde::Serialize;
use std::time::Duration;

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dockerfile {
    /// Escape character from the `# escape=` directive (`\` by default).
    pub escape: char,
    /// Value of the `# syntax=` directive (recorded only; berth has one frontend).
    pub syntax: Option<String>,
    /// `ARG` instructions before the first `FROM` (usable in `FROM` lines).
    pub meta_args: Vec<Instruction>,
    /// Build stages in file order.
    pub stages: Vec<Stage>,
}

impl Dockerfile {
    /// Index of the stage called `name` (case-insensitive), or of stage number `name`.
    /// Docker resolves `--from=`/`--target` names first, then numeric indexes.
    pub fn stage_index(&self, name: &str) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        if let Some(i) = self
            .stages
            .iter()
            .position(|s| s.name.as_deref() == Some(lower.as_str()))
        {
            return Some(i);
        }
        name.parse::<usize>()
            .ok()
            .filter(|&i| i < self.stages.len())
    }
}

/// One build stage: its `FROM` and the instructions after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stage {
    /// The `FROM` instruction (its kind is always [`InstructionKind::From`]).
    pub from: Instruction,
    /// Lowercased `AS` name.
    pub name: Option<String>,
    /// Instructions of the stage, `FROM` excluded.
    pub instructions: Vec<Instruction>,
}

/// One instruction with its location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instruction {
    /// 1-based first line.
    pub line: usize,
    /// 1-based last line (continuations and heredoc bodies included).
    pub end_line: usize,
    /// The instruction as written, continuation lines joined (escape + newline removed),
    /// heredoc bodies not included. Used for `Step 2/4 : RUN ...`.
    pub original: String,
    /// What the instruction is.
    pub kind: InstructionKind,
}

impl Instruction {
    /// Upper-case keyword (`"RUN"` etc.).
    pub fn keyword(&self) -> &'static str {
        self.kind.keyword()
    }
}

/// Shell form (raw text, run through the image's shell) or exec form (JSON array).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ShellOrExec {
    /// Shell form: the raw text after the keyword and flags.
    Shell(String),
    /// Exec form: the decoded JSON array.
    Exec(Vec<String>),
}

impl ShellOrExec {
    /// True for the JSON (exec) form.
    pub fn is_exec(&self) -> bool {
        matches!(self, ShellOrExec::Exec(_))
    }
}

/// A here-document attached to `RUN`, `COPY` or `ADD`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    /// The delimiter word with quotes removed (for `COPY` it is the file name).
    pub name: String,
    /// The body, every line with its newline, delimiter line excluded. For `<<-` the
    /// leading tabs of every line are already removed.
    pub content: String,
    /// True when no part of the delimiter was quoted: `$VAR`s in the body are expanded
    /// (by `COPY`/`ADD`; a `RUN` shell does its own expansion).
    pub expand: bool,
    /// Written as `<<-`: leading tabs stripped.
    pub chomp_tabs: bool,
}

/// Flags of `COPY` and `ADD` (each instruction accepts only its own subset, as docker).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CopyFlags {
    /// `--from=` (COPY only): stage name/index or image.
    pub from: Option<String>,
    /// `--chown=user:group`.
    pub chown: Option<String>,
    /// `--chmod=`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--parents` (COPY only).
    pub parents: bool,
    /// `--exclude=` (repeatable).
    pub exclude: Vec<String>,
    /// `--checksum=` (ADD only).
    pub checksum: Option<String>,
    /// `--keep-git-dir` (ADD only).
    pub keep_git_dir: bool,
    /// `--unpack=` (ADD only); `None` = default behaviour (local archives are unpacked).
    pub unpack: Option<bool>,
}

/// The instruction-specific content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum InstructionKind {
    /// `FROM [--platform=p] image [AS name]` (raw words).
    From {
        image: String,
        /// Lowercased stage name.
        name: Option<String>,
        platform: Option<String>,
    },
    /// `RUN`. With heredocs, `command` is the shell text including the `<<EOF` tokens;
    /// a command that is exactly one heredoc token means "the heredoc is the script".
    Run {
        command: ShellOrExec,
        heredocs: Vec<Heredoc>,
        /// Raw `--mount=` values (see [`crate::parse_mount`]).
        mounts: Vec<String>,
        /// `--network=` (validated: default, none, host).
        network: Option<String>,
        /// `--security=` (validated: sandbox, insecure).
        security: Option<String>,
    },
    /// `CMD`.
    Cmd(ShellOrExec),
    /// `ENTRYPOINT`.
    Entrypoint(ShellOrExec),
    /// `LABEL k=v ...`: raw key/value words, quotes not removed.
    Label(Vec<(String, String)>),
    /// `MAINTAINER text`.
    Maintainer(String),
    /// `EXPOSE` raw words.
    Expose(Vec<String>),
    /// `ENV k=v ...` or legacy `ENV k v w` (value = rest of the line); raw words.
    Env(Vec<(String, String)>),
    /// `ADD`. `srcs` excludes heredoc sources, which are in `heredocs` (name = file name).
    Add {
        flags: CopyFlags,
        srcs: Vec<String>,
        dest: String,
        heredocs: Vec<Heredoc>,
    },
    /// `COPY`. `srcs` excludes heredoc sources, which are in `heredocs` (name = file name).
    Copy {
        flags: CopyFlags,
        srcs: Vec<String>,
        dest: String,
        heredocs: Vec<Heredoc>,
    },
    /// `VOLUME` (JSON array or whitespace-separated raw words).
    Volume(Vec<String>),
    /// `USER` raw text.
    User(String),
    /// `WORKDIR` raw text.
    Workdir(String),
    /// `ARG name[=value] ...`: raw words, `None` when no `=`.
    Arg(Vec<(String, Option<String>)>),
    /// `ONBUILD <instruction>` (the trigger is fully parsed; its `original` lacks the
    /// `ONBUILD ` prefix).
    Onbuild(Box<Instruction>),
    /// `STOPSIGNAL` raw text.
    Stopsignal(String),
    /// `HEALTHCHECK`.
    Healthcheck(Healthcheck),
    /// `SHELL ["exe", "arg"]`.
    Shell(Vec<String>),
}

impl InstructionKind {
    /// Upper-case keyword of the instruction.
    pub fn keyword(&self) -> &'static str {
        match self {
            InstructionKind::From { .. } => "FROM",
            InstructionKind::Run { .. } => "RUN",
            InstructionKind::Cmd(_) => "CMD",
            InstructionKind::Entrypoint(_) => "ENTRYPOINT",
            InstructionKind::Label(_) => "LABEL",
            InstructionKind::Maintainer(_) => "MAINTAINER",
            InstructionKind::Expose(_) => "EXPOSE",
            InstructionKind::Env(_) => "ENV",
            InstructionKind::Add { .. } => "ADD",
            InstructionKind::Copy { .. } => "COPY",
            InstructionKind::Volume(_) => "VOLUME",
            InstructionKind::User(_) => "USER",
            InstructionKind::Workdir(_) => "WORKDIR",
            InstructionKind::Arg(_) => "ARG",
            InstructionKind::Onbuild(_) => "ONBUILD",
            InstructionKind::Stopsignal(_) => "STOPSIGNAL",
            InstructionKind::Healthcheck(_) => "HEALTHCHECK",
            InstructionKind::Shell(_) => "SHELL",
        }
    }
}

/// `HEALTHCHECK NONE` or `HEALTHCHECK [flags] CMD ...`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Healthcheck {
    /// Disable any inherited health check.
    None,
    /// A check. Durations given as `0` mean "default", as in docker.
    Check {
        /// Shell form maps to docker's `CMD-SHELL`, exec form to `CMD`.
        test: ShellOrExec,
        interval: Option<Duration>,
        timeout: Option<Duration>,
        start_period: Option<Duration>,
        start_interval: Option<Duration>,
        retries: Option<u32>,
    },
}
