//! Command-line surface (a runc-compatible subset), parsed with clap.
//!
//! Most subcommands reuse `liboci-cli`'s argument structs, which mirror runc's
//! flags. `kill` and `list` have their own structs because runc's behaviour
//! differs from liboci-cli's (the signal of `kill` is optional and defaults to
//! SIGTERM; `list` takes `-f/--format`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Default directory for container state.
pub const DEFAULT_ROOT: &str = "/run/berth/runtime";

/// `berth runtime`: a runc-compatible OCI runtime built on youki's libcontainer.
#[derive(Parser, Debug)]
#[command(
    name = "berth runtime",
    no_binary_name = true,
    version,
    about = "runc-compatible OCI runtime (youki libcontainer)"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: liboci_cli::GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

/// Supported subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container; its init process waits for `start`.
    Create(liboci_cli::Create),
    /// Start a created container.
    Start(liboci_cli::Start),
    /// Print the state of a container as JSON.
    State(liboci_cli::State),
    /// Send a signal to the container's init process (or all processes).
    Kill(Kill),
    /// Delete a container and its resources.
    Delete(liboci_cli::Delete),
    /// Run an extra process inside a running container.
    Exec(liboci_cli::Exec),
    /// Create and start a container, and (unless -d) wait for it to exit.
    Run(liboci_cli::Run),
    /// List containers.
    List(List),
    /// Suspend all processes of a container.
    Pause(liboci_cli::Pause),
    /// Resume a paused container.
    Resume(liboci_cli::Resume),
}

/// `kill <id> [signal]` (runc semantics: signal defaults to SIGTERM).
#[derive(Args, Debug)]
pub struct Kill {
    /// Send the signal to all processes of the container.
    #[arg(short, long)]
    pub all: bool,
    /// Container identifier.
    #[arg(value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub container_id: String,
    /// Signal name (TERM, SIGTERM) or number; default SIGTERM.
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

/// `list [-f table|json] [-q]`.
#[derive(Args, Debug)]
pub struct List {
    /// Output format: table or json.
    #[arg(short, long, default_value = "table")]
    pub format: String,
    /// Only print container IDs.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Returns `path` made absolute against the current directory, without
/// touching the file system (libcontainer changes the working directory).
pub fn absolute(path: &std::path::Path) -> std::io::Result<PathBuf> {
    if path.is_absolute() {
        Ok(path.to_path_buf())
    } else {
        Ok(std::env::current_dir()?.join(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(args.iter().map(std::ffi::OsString::from))
    }

    #[test]
    fn parses_runc_create_line() {
        let cli = parse(&[
            "--root",
            "/r",
            "--log",
            "/l.json",
            "--log-format",
            "json",
            "create",
            "--bundle",
            "/b",
            "--pid-file",
            "/p",
            "--console-socket",
            "/s",
            "id1",
        ])
        .expect("parse");
        assert_eq!(cli.global.root.as_deref(), Some(std::path::Path::new("/r")));
        assert_eq!(cli.global.log_format.as_deref(), Some("json"));
        match cli.command {
            Command::Create(c) => {
                assert_eq!(c.container_id, "id1");
                assert_eq!(c.bundle, PathBuf::from("/b"));
                assert_eq!(c.pid_file, Some(PathBuf::from("/p")));
                assert_eq!(c.console_socket, Some(PathBuf::from("/s")));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn kill_signal_defaults_to_term() {
        let cli = parse(&["kill", "c"]).expect("parse");
        match cli.command {
            Command::Kill(k) => {
                assert_eq!(k.signal, "SIGTERM");
                assert!(!k.all);
            }
            other => panic!("unexpected {other:?}"),
        }
        let cli = parse(&["kill", "--all", "c", "KILL"]).expect("parse");
        match cli.command {
            Command::Kill(k) => {
                assert_eq!(k.signal, "KILL");
                assert!(k.all);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn exec_takes_trailing_command() {
        let cli = parse(&[
            "exec",
            "-d",
            "--pid-file",
            "/p",
            "-e",
            "A=b",
            "-u",
            "1:2",
            "c",
            "sh",
            "-c",
            "echo x",
        ])
        .expect("parse");
        match cli.command {
            Command::Exec(e) => {
                assert!(e.detach);
                assert_eq!(e.user, Some((1, Some(2))));
                assert_eq!(e.env, vec![("A".to_string(), "b".to_string())]);
                assert_eq!(e.container_id, "c");
                assert_eq!(e.command, vec!["sh", "-c", "echo x"]);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn rejects_missing_id_and_unknown_command() {
        assert!(parse(&["start"]).is_err());
        assert!(parse(&["frobnicate", "x"]).is_err());
        assert!(parse(&["start", ""]).is_err());
    }

    #[test]
    fn absolute_paths() {
        assert_eq!(
            absolute(std::path::Path::new("/a/b")).expect("abs"),
            PathBuf::from("/a/b")
        );
        let rel = absolute(std::path::Path::new("x")).expect("rel");
        assert!(rel.is_absolute() && rel.ends_with("x"));
    }
}
