//! engine_cli: berth's own docker-compatible command-line client.
//!
//! It is a pure client of the Docker Engine API (v1.41+), talking to the
//! daemon through `bollard` over a unix socket (or TCP), and reproduces the
//! docker CLI's verbs, flags, output formats, request sequences and exit
//! codes, with "berth" in place of "docker" in messages.
//!
//! Entry points: [`main`] (synchronous, builds a tokio runtime) and
//! [`run`] (async). Both take argv without the program name and return the
//! process exit code.

pub mod cli;
pub mod client;
pub mod commands;
pub mod error;
pub mod flags;
pub mod format;
pub mod opts;
pub mod reference;
pub mod streams;
pub mod term;

use cli::BIN;
use error::CliError;
use flags::FlagError;

/// Runs the CLI synchronously and returns the exit code.
pub fn main(args: Vec<String>) -> i32 {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{BIN}: cannot start runtime: {e}");
            return 1;
        }
    };
    let code = rt.block_on(run(args));
    // Background readers (stdin) must not keep the process alive.
    rt.shutdown_background();
    code
}

/// Global options that precede the verb.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Globals {
    /// `-H/--host`.
    pub host: Option<String>,
    /// `-D/--debug`.
    pub debug: bool,
}

/// What the global options asked for.
#[derive(Debug, PartialEq, Eq)]
enum GlobalAction {
    Continue(Globals, usize),
    Help,
    Version,
}

fn parse_globals(args: &[String]) -> Result<GlobalAction, String> {
    let mut g = Globals::default();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if !a.starts_with('-') || a == "-" {
            break;
        }
        if a == "--" {
            i += 1;
            break;
        }
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if a.starts_with("--") => (n, Some(v.to_string())),
            _ => (a, None),
        };
        let needs_value = matches!(
            name,
            "-H" | "--host"
                | "-l"
                | "--log-level"
                | "--config"
                | "-c"
                | "--context"
                | "--tlscacert"
                | "--tlscert"
                | "--tlskey"
        );
        let value = if needs_value {
            match inline {
                Some(v) => Some(v),
                None => {
                    // Attached short form: -Hunix:///x
                    if name.len() > 2 && !name.starts_with("--") {
                        Some(name[2..].to_string())
                    } else {
                        i += 1;
                        match args.get(i) {
                            Some(v) => Some(v.clone()),
                            None => {
                                return Err(format!(
                                    "flag needs an argument: {}",
                                    if name.starts_with("--") {
                                        name.to_string()
                                    } else {
                                        format!("'{}' in {name}", &name[1..2])
                                    }
                                ))
                            }
                        }
                    }
                }
            }
        } else {
            None
        };
        let short_name = if !name.starts_with("--") && name.len() > 2 {
            &name[..2]
        } else {
            name
        };
        match short_name {
            "-H" | "--host" => g.host = value,
            "-D" | "--debug" => g.debug = true,
            "-l" | "--log-level" | "--config" | "-c" | "--context" | "--tlscacert"
            | "--tlscert" | "--tlskey" | "--tls" | "--tlsverify" => {}
            "-v" | "--version" => return Ok(GlobalAction::Version),
            "-h" | "--help" => return Ok(GlobalAction::Help),
            _ => {
                return Err(if name.starts_with("--") {
                    format!("unknown flag: {name}")
                } else {
                    format!("unknown shorthand flag: '{}' in {name}", &name[1..2])
                })
            }
        }
        i += 1;
    }
    Ok(GlobalAction::Continue(g, i))
}

fn print_err(msg: &str) {
    if !msg.is_empty() {
        streams::write_stderr(format!("{msg}\n").as_bytes());
    }
}

/// Runs the CLI and returns the exit code. `args` excludes the program name,
/// e.g. `["run", "--rm", "busybox", "echo", "hello"]`.
pub async fn run(args: Vec<String>) -> i32 {
    let (globals, consumed) = match parse_globals(&args) {
        Ok(GlobalAction::Continue(g, n)) => (g, n),
        Ok(GlobalAction::Help) => {
            streams::write_stdout(cli::main_help().as_bytes());
            return 0;
        }
        Ok(GlobalAction::Version) => {
            streams::write_stdout(
                format!("{BIN} version {}\n", env!("CARGO_PKG_VERSION")).as_bytes(),
            );
            return 0;
        }
        Err(msg) => {
            print_err(&format!("{msg}\nSee '{BIN} --help'."));
            return 125;
        }
    };
    let rest = &args[consumed..];
    if rest.is_empty() {
        streams::write_stdout(cli::main_help().as_bytes());
        return 0;
    }
    let (path, used) = match cli::resolve(rest) {
        Ok(Some(r)) => r,
        Ok(None) => {
            if rest[0] == "help" {
                streams::write_stdout(cli::main_help().as_bytes());
                return 0;
            }
            print_err(&format!(
                "{BIN}: '{}' is not a {BIN} command.\nSee '{BIN} --help'",
                rest[0]
            ));
            return 1;
        }
        Err(group) => {
            let sub = rest.get(1).map(String::as_str).unwrap_or("");
            if sub.is_empty() || sub == "--help" || sub == "-h" {
                streams::write_stdout(cli::group_help(group).as_bytes());
                return 0;
            }
            print_err(&format!(
                "{BIN}: unknown command: {BIN} {group} {sub}\n\nRun '{BIN} {group} --help' for more information"
            ));
            return 1;
        }
    };
    let Some(spec) = cli::command(path) else {
        print_err(&format!("{BIN}: '{path}' is not a {BIN} command."));
        return 1;
    };
    let parsed = match flags::parse(&spec, &rest[used..]) {
        Ok(p) => p,
        Err(FlagError::Help) => {
            streams::write_stdout(flags::render_help(&spec, BIN, term::help_width()).as_bytes());
            return 0;
        }
        Err(FlagError::Bad(msg)) => {
            print_err(&flags::flag_error_text(&spec, BIN, &msg));
            return 125;
        }
    };
    if let Err(msg) = flags::check_args(&spec, BIN, parsed.args.len()) {
        print_err(&msg);
        return 1;
    }
    let env = |k: &str| std::env::var(k).ok();
    let host = client::resolve_host(globals.host.as_deref(), &env);
    let client = match client::Client::new(&host) {
        Ok(c) => c,
        Err(e) => {
            print_err(&e.to_string());
            return 1;
        }
    };
    let ctx = commands::Ctx { client };
    match commands::dispatch(&ctx, path, &parsed).await {
        Ok(()) => 0,
        Err(e) => {
            let code = e.exit_code();
            if !matches!(&e, CliError::Status { message, .. } if message.is_empty()) {
                print_err(&e.to_string());
            }
            code
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn global_flags() {
        assert_eq!(
            parse_globals(&v(&["-H", "unix:///x.sock", "ps"])),
            Ok(GlobalAction::Continue(
                Globals {
                    host: Some("unix:///x.sock".into()),
                    debug: false
                },
                2
            ))
        );
        assert_eq!(
            parse_globals(&v(&["--host=tcp://h:1", "-D", "ps"])),
            Ok(GlobalAction::Continue(
                Globals {
                    host: Some("tcp://h:1".into()),
                    debug: true
                },
                2
            ))
        );
        assert_eq!(parse_globals(&v(&["-v"])), Ok(GlobalAction::Version));
        assert_eq!(parse_globals(&v(&["--help"])), Ok(GlobalAction::Help));
        assert!(parse_globals(&v(&["--bogus", "ps"])).is_err());
        assert!(parse_globals(&v(&["-H"])).is_err());
    }

    #[tokio::test]
    async fn usage_errors_exit_codes() {
        assert_eq!(run(v(&["run", "-m", "abc", "busybox"])).await, 125);
        assert_eq!(run(v(&["run"])).await, 1);
        assert_eq!(run(v(&["stop"])).await, 1);
        assert_eq!(run(v(&["nosuchverb"])).await, 1);
        assert_eq!(run(v(&["ps", "--help"])).await, 0);
    }

    #[tokio::test]
    async fn cannot_connect() {
        let code = run(v(&["-H", "unix:///nonexistent/berth-t.sock", "ps"])).await;
        assert_eq!(code, 1);
        let code = run(v(&[
            "-H",
            "unix:///nonexistent/berth-t.sock",
            "run",
            "busybox",
        ]))
        .await;
        assert_eq!(code, 125);
    }
}
