//! `exec`: inspect → create exec → start (hijacked) → resize → exit code
//! from `GET /exec/{id}/json`.

use std::sync::Arc;

use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};

use super::container::inspect_value;
use super::Ctx;
use crate::error::{CliError, CliResult};
use crate::flags::Parsed;
use crate::opts;
use crate::streams::{self, StreamSpec};
use crate::term::{self, RawGuard};

/// Builds the exec-create body from flags.
pub fn exec_config(p: &Parsed) -> Result<CreateExecOptions<String>, String> {
    let detach = p.bool("detach");
    let envs: Vec<String> = p
        .all("env")
        .iter()
        .map(|e| opts::validate_env(e))
        .collect::<Result<_, _>>()?;
    let env = opts::read_env(&p.all("env-file"), &envs)?;
    Ok(CreateExecOptions {
        attach_stdin: Some(!detach && p.bool("interactive")),
        attach_stdout: Some(!detach),
        attach_stderr: Some(!detach),
        tty: Some(p.bool("tty")),
        detach_keys: Some(p.str_or("detach-keys", "").to_string()),
        env: (!env.is_empty()).then_some(env),
        cmd: Some(p.args[1..].to_vec()),
        privileged: Some(p.bool("privileged")),
        user: Some(p.str_or("user", "").to_string()),
        working_dir: Some(p.str_or("workdir", "").to_string()),
    })
}

/// `exec`.
pub async fn exec(ctx: &Ctx, p: &Parsed) -> CliResult<()> {
    let container = &p.args[0];
    let config = exec_config(p).map_err(CliError::Other)?;
    inspect_value(ctx, container).await?;
    let tty = config.tty.unwrap_or(false);
    let spec = StreamSpec {
        tty,
        stdin: config.attach_stdin.unwrap_or(false),
        stdout: config.attach_stdout.unwrap_or(false),
        stderr: config.attach_stderr.unwrap_or(false),
    };
    let detach = p.bool("detach");
    if !detach && tty && spec.stdin && !term::is_tty(term::STDIN) {
        return Err(CliError::Other("the input device is not a TTY".into()));
    }
    let docker = ctx.client.docker().await?;
    let created = docker.create_exec(container, config).await?;
    let exec_id = created.id;
    if exec_id.is_empty() {
        return Err(CliError::Other("exec ID empty".into()));
    }
    let start = StartExecOptions {
        detach,
        tty,
        ..Default::default()
    };
    match docker.start_exec(&exec_id, Some(start)).await? {
        StartExecResults::Detached => return Ok(()),
        StartExecResults::Attached { output, input } => {
            let raw = if tty && spec.stdin && term::is_tty(term::STDIN) {
                Some(Arc::new(RawGuard::enable(term::STDIN).map_err(|e| {
                    CliError::Other(format!("unable to set IO streams as raw terminal: {e}"))
                })?))
            } else {
                None
            };
            if tty && term::is_tty(term::STDIN) {
                streams::spawn_resize_monitor(docker.clone(), exec_id.clone(), true);
            }
            streams::run_session(output, input, spec, raw, None).await?;
        }
    }
    let inspect = docker.inspect_exec(&exec_id).await?;
    match inspect.exit_code {
        Some(0) | None => Ok(()),
        Some(code) => Err(CliError::exit(code as i32)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{cli, flags};

    #[test]
    fn exec_body_like_docker() {
        let spec = cli::command("exec").unwrap();
        let args: Vec<String> = [
            "-it", "-e", "A=1", "-u", "nobody", "-w", "/tmp", "tr1", "sh", "-c", "exit 2",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let p = flags::parse(&spec, &args).unwrap();
        let c = exec_config(&p).unwrap();
        assert_eq!(
            (c.attach_stdin, c.attach_stdout, c.attach_stderr, c.tty),
            (Some(true), Some(true), Some(true), Some(true))
        );
        assert_eq!(c.cmd, Some(vec!["sh".into(), "-c".into(), "exit 2".into()]));
        assert_eq!(c.env, Some(vec!["A=1".into()]));
        assert_eq!(c.user.as_deref(), Some("nobody"));
        assert_eq!(c.working_dir.as_deref(), Some("/tmp"));

        let p = flags::parse(&spec, &["-d".to_string(), "tr1".into(), "true".into()]).unwrap();
        let c = exec_config(&p).unwrap();
        assert_eq!(
            (c.attach_stdin, c.attach_stdout, c.attach_stderr),
            (Some(false), Some(false), Some(false))
        );
        assert_eq!(c.env, None);
    }
}
