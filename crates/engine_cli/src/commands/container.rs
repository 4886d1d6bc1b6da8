//! Container lifecycle commands: start, stop, restart, kill, rm, wait,
//! pause, unpause, rename, port, top.

use std::sync::Arc;

use bollard::query_parameters::{
    AttachContainerOptions, KillContainerOptions, RemoveContainerOptions, RenameContainerOptions,
    RestartContainerOptions, StopContainerOptions, TopOptions,
};
use tokio::sync::oneshot;

use super::run::wait_exit;
use super::{for_each_target, out, Ctx};
use crate::error::{CliError, CliResult};
use crate::flags::Parsed;
use crate::format::json::Value;
use crate::format::table::TabWriter;
use crate::streams::{self, write_stderr, StreamSpec};
use crate::term::{self, RawGuard};

/// Fetches `GET /containers/{name}/json` as an ordered JSON value.
pub async fn inspect_value(ctx: &Ctx, name: &str) -> CliResult<Value> {
    let text = ctx
        .client
        .get_text(&format!("/containers/{name}/json"), &[])
        .await
        .map_err(|e| match e {
            CliError::Daemon { status: 404, .. } => {
                CliError::Other(format!("Error: No such container: {name}"))
            }
            other => other,
        })?;
    Value::parse(text.trim()).map_err(|e| CliError::Other(format!("invalid inspect response: {e}")))
}

fn vbool(v: &Value, path: &[&str]) -> bool {
    v.path(path).and_then(Value::as_bool).unwrap_or(false)
}

/// `start`.
pub async fn start(ctx: &Ctx, p: &Parsed) -> CliResult<()> {
    let attach = p.bool("attach");
    let interactive = p.bool("interactive");
    if !attach && !interactive {
        let docker = ctx.client.docker().await?;
        let mut failed = Vec::new();
        for c in &p.args {
            match docker.start_container(c, None).await {
                Ok(()) => out(&format!("{c}\n")),
                Err(e) => {
                    write_stderr(format!("{}\n", CliError::from(e)).as_bytes());
                    failed.push(c.clone());
                }
            }
        }
        if failed.is_empty() {
            return Ok(());
        }
        return Err(CliError::Other(format!(
            "failed to start containers: {}",
            failed.join(", ")
        )));
    }
    if p.args.len() > 1 {
        return Err(CliError::Other(
            "you cannot start and attach multiple containers at once".into(),
        ));
    }
    let c = inspect_value(ctx, &p.args[0]).await?;
    let id = c
        .get("Id")
        .and_then(Value::as_str)
        .unwrap_or(&p.args[0])
        .to_string();
    let tty = vbool(&c, &["Config", "Tty"]);
    let open_stdin = vbool(&c, &["Config", "OpenStdin"]);
    let auto_remove = vbool(&c, &["HostConfig", "AutoRemove"]);
    let docker = ctx.client.docker().await?;
    if !tty {
        streams::spawn_signal_proxy(docker.clone(), id.clone());
    }
    let spec = StreamSpec {
        tty,
        stdin: interactive && open_stdin,
        stdout: true,
        stderr: true,
    };
    if tty && spec.stdin && !term::is_tty(term::STDIN) {
        return Err(CliError::Other("the input device is not a TTY".into()));
    }
    let opts = AttachContainerOptions {
        stream: true,
        stdin: spec.stdin,
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let hijack = docker.attach_container(&id, Some(opts)).await?;
    let raw = if tty && spec.stdin && term::is_tty(term::STDIN) {
        Some(Arc::new(RawGuard::enable(term::STDIN).map_err(|e| {
            CliError::Other(format!("unable to set IO streams as raw terminal: {e}"))
        })?))
    } else {
        None
    };
    let (cancel_tx, cancel_rx) = oneshot::channel();
    let session = tokio::spawn(streams::run_session(
        hijack.output,
        hijack.input,
        spec,
        raw,
        Some(cancel_rx),
    ));
    let cond = if auto_remove { "removed" } else { "next-exit" };
    let status_rx = wait_exit(ctx, &id, Some(cond)).await?;
    if let Err(e) = docker.start_container(&id, None).await {
        let _ = cancel_tx.send(());
        let _ = session.await;
        if auto_remove {
            let _ = status_rx.await;
        }
        return Err(e.into());
    }
    if tty && term::is_tty(term::STDOUT) {
        streams::spawn_resize_monitor(docker.clone(), id.clone(), false);
    }
    match session.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(e) => return Err(CliError::Other(format!("attach failed: {e}"))),
    }
    let status = status_rx.await.unwrap_or(125);
    if status != 0 {
        return Err(CliError::exit(status as i32));
    }
    Ok(())
}

/// `stop` / `restart`.
pub async fn stop(ctx: &Ctx, p: &Parsed, restart: bool) -> CliResult<()> {
    let docker = ctx.client.docker().await?;
    let timeout = p.int("timeout").or_else(|| p.int("time")).map(|t| t as i32);
    let signal = p.last("signal").map(str::to_string);
    for_each_target(&p.args, |c| {
        let docker = docker.clone();
        let signal = signal.clone();
        async move {
            if restart {
                let o = RestartContainerOptions { signal, t: timeout };
                docker.restart_container(&c, Some(o)).await?;
            } else {
                let o = StopContainerOptions { signal, t: timeout };
                docker.stop_container(&c, Some(o)).await?;
            }
            Ok(true)
        }
    })
    .await
}

/// `kill`.
pub async fn kill(ctx: &Ctx, p: &Parsed) -> CliResult<()> {
    let docker = ctx.client.docker().await?;
    let signal = p
        .last("signal")
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    for_each_target(&p.args, |c| {
        let docker = docker.clone();
        let opts = signal.clone().map(|signal| KillContainerOptions { signal });
        async move {
            docker.kill_container(&c, opts).await?;
            Ok(true)
        }
    })
    .await
}

/// `rm`.
pub async fn rm(ctx: &Ctx, p: &Parsed) -> CliResult<()> {
    let docker = ctx.client.docker().await?;
    let opts = RemoveContainerOptions {
        v: p.bool("volumes"),
        force: p.bool("force"),
        link: p.bool("link"),
    };
    let force = opts.force;
    for_each_target(&p.args, |c| {
        let docker = docker.clone();
        let opts = opts.clone();
        async move {
            let name = c.trim_matches('/').to_string();
            if name.is_empty() {
                return Err(CliError::Other("container name cannot be empty".into()));
            }
            match docker.remove_container(&name, Some(opts)).await {
                Ok(()) => Ok(true),
                Err(e) => {
                    let e = CliError::from(e);
                    if force && e.is_not_found() {
                        Ok(false)
                    } else {
                        Err(e)
                    }
                }
            }
        }
    })
    .await
}

/// `wait`: prints each container's exit code.
pub async fn wait(ctx: &Ctx, p: &Parsed) -> CliResult<()> {
    let mut errors = Vec::new();
    for c in &p.args {
        match wait_exit(ctx, c, None).await {
            Ok(rx) => out(&format!("{}\n", rx.await.unwrap_or(125))),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CliError::Other(errors.join("\n")))
    }
}

/// `pause` / `unpause`.
pub async fn pause(ctx: &Ctx, p: &Parsed, pause: bool) -> CliResult<()> {
    let docker = ctx.client.docker().await?;
    for_each_target(&p.args, |c| {
        let docker = docker.clone();
        async move {
            if pause {
                docker.pause_container(&c).await?;
            } else {
                docker.unpause_container(&c).await?;
            }
            Ok(true)
        }
    })
    .await
}

/// `rename OLD NEW`.
pub async fn rename(ctx: &Ctx, p: &Parsed) -> CliResult<()> {
    let old = p.args[0].trim();
    let new = p.args[1].trim().trim_start_matches('/');
    if old.is_empty() || new.is_empty() {
        return Err(CliError::Other(
            "Error: Neither old nor new names may be empty".into(),
        ));
    }
    let docker = ctx.client.api().await?;
    docker
        .rename_container(
            old,
            RenameContainerOptions {
                name: new.to_string(),
            },
        )
        .await
        .map_err(|e| {
            CliError::Other(format!(
                "Error: failed to rename container named {old}: {}",
                CliError::from(e)
            ))
        })?;
    Ok(())
}

fn join_host_port(ip: &str, port: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// Lines for `port` from a container's `NetworkSettings.Ports`.
pub fn port_lines(c: &Value, filter: Option<&str>, name: &str) -> Result<Vec<String>, String> {
    let ports = match c.path(&["NetworkSettings", "Ports"]) {
        Some(Value::Obj(p)) => p.clone(),
        _ => Vec::new(),
    };
    if let Some(f) = filter {
        let (port, proto) = match f.split_once('/') {
            Some((p, pr)) => (p.to_string(), pr.to_string()),
            None => (f.to_string(), "tcp".to_string()),
        };
        let key = format!("{port}/{proto}");
        let mut lines = Vec::new();
        if let Some((_, Value::Arr(bindings))) = ports.iter().find(|(k, _)| *k == key) {
            for b in bindings {
                let ip = b.get("HostIp").and_then(Value::as_str).unwrap_or("");
                let hp = b.get("HostPort").and_then(Value::as_str).unwrap_or("");
                lines.push(join_host_port(ip, hp));
            }
        }
        if lines.is_empty() {
            return Err(format!(
                "Error: No public port '{key}' published for {name}"
            ));
        }
        return Ok(lines);
    }
    let mut lines = Vec::new();
    for (key, bindings) in &ports {
        if let Value::Arr(bindings) = bindings {
            for b in bindings {
                let ip = b.get("HostIp").and_then(Value::as_str).unwrap_or("");
                let hp = b.get("HostPort").and_then(Value::as_str).unwrap_or("");
                lines.push(format!("{key} -> {}", join_host_port(ip, hp)));
            }
        }
    }
    lines.sort_by(|a, b| {
        let num = |s: &str| {
            s.split('/')
                .next()
                .and_then(|n| n.parse::<u32>().ok())
                .unwrap_or(0)
        };
        num(a).cmp(&num(b)).then(a.cmp(b))
    });
    Ok(lines)
}

/// `port CONTAINER [PRIVATE_PORT[/PROTO]]`.
pub async fn port(ctx: &Ctx, p: &Parsed) -> CliResult<()> {
    let c = inspect_value(ctx, &p.args[0]).await?;
    let lines =
        port_lines(&c, p.args.get(1).map(String::as_str), &p.args[0]).map_err(CliError::Other)?;
    for l in lines {
        out(&format!("{l}\n"));
    }
    Ok(())
}

/// `top CONTAINER [ps OPTIONS]`.
pub async fn top(ctx: &Ctx, p: &Parsed) -> CliResult<()> {
    let docker = ctx.client.api().await?;
    let args = p.args[1..].join(" ");
    let opts = (!args.is_empty()).then_some(TopOptions { ps_args: args });
    let t = docker.top_processes(&p.args[0], opts).await?;
    let mut text = t.titles.unwrap_or_default().join("\t");
    text.push('\n');
    for row in t.processes.unwrap_or_default() {
        text.push_str(&row.join("\t"));
        text.push('\n');
    }
    out(&TabWriter {
        min_width: 20,
        padding: 3,
    }
    .format(&text));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_listing() {
        let c = Value::parse(
            r#"{"NetworkSettings":{"Ports":{"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"8000"},{"HostIp":"::","HostPort":"8000"}],"53/udp":null,"443/tcp":[{"HostIp":"0.0.0.0","HostPort":"8443"}]}}}"#,
        )
        .unwrap();
        assert_eq!(
            port_lines(&c, None, "c").unwrap(),
            vec![
                "80/tcp -> 0.0.0.0:8000",
                "80/tcp -> [::]:8000",
                "443/tcp -> 0.0.0.0:8443"
            ]
        );
        assert_eq!(
            port_lines(&c, Some("80"), "c").unwrap(),
            vec!["0.0.0.0:8000", "[::]:8000"]
        );
        assert_eq!(
            port_lines(&c, Some("53/udp"), "c").unwrap_err(),
            "Error: No public port '53/udp' published for c"
        );
    }
}
