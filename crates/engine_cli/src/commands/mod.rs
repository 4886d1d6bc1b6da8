//! Command implementations, one module per command group.

pub mod archive;
pub mod build;
pub mod container;
pub mod exec;
pub mod image;
pub mod inspect;
pub mod login;
pub mod logs;
pub mod network;
pub mod ps;
pub mod run;
pub mod system;
pub mod volume;

use std::future::Future;

use crate::client::Client;
use crate::error::{CliError, CliResult};
use crate::flags::Parsed;
use crate::streams::write_stdout;

/// Shared state for a command invocation.
pub struct Ctx {
    /// Daemon connection.
    pub client: Client,
}

/// Runs the command registered under `path`.
pub async fn dispatch(ctx: &Ctx, path: &str, p: &Parsed) -> CliResult<()> {
    match path {
        "run" => run::run(ctx, p, true).await,
        "create" => run::run(ctx, p, false).await,
        "exec" => exec::exec(ctx, p).await,
        "start" => container::start(ctx, p).await,
        "stop" => container::stop(ctx, p, false).await,
        "restart" => container::stop(ctx, p, true).await,
        "kill" => container::kill(ctx, p).await,
        "rm" => container::rm(ctx, p).await,
        "wait" => container::wait(ctx, p).await,
        "pause" => container::pause(ctx, p, true).await,
        "unpause" => container::pause(ctx, p, false).await,
        "rename" => container::rename(ctx, p).await,
        "port" => container::port(ctx, p).await,
        "top" => container::top(ctx, p).await,
        "ps" => ps::ps(ctx, p).await,
        "logs" => logs::logs(ctx, p).await,
        "inspect" => inspect::inspect(ctx, p, p.last("type")).await,
        "container inspect" => inspect::inspect(ctx, p, Some("container")).await,
        "image inspect" => inspect::inspect(ctx, p, Some("image")).await,
        "volume inspect" => inspect::inspect(ctx, p, Some("volume")).await,
        "network inspect" => inspect::inspect(ctx, p, Some("network")).await,
        "images" => image::images(ctx, p).await,
        "rmi" => image::rmi(ctx, p).await,
        "tag" => image::tag(ctx, p).await,
        "import" => image::import(ctx, p).await,
        "build" => build::build(ctx, p).await,
        "save" => archive::save(ctx, p).await,
        "login" => login::login(ctx, p).await,
        "logout" => login::logout(ctx, p).await,
        "load" => archive::load(ctx, p).await,
        "history" => build::history(ctx, p).await,
        "pull" => image::pull_cmd(ctx, p).await,
        "push" => image::push(ctx, p).await,
        "volume create" => volume::create(ctx, p).await,
        "volume ls" => volume::ls(ctx, p).await,
        "volume rm" => volume::rm(ctx, p).await,
        "volume prune" => volume::prune(ctx, p).await,
        "network create" => network::create(ctx, p).await,
        "network ls" => network::ls(ctx, p).await,
        "network rm" => network::rm(ctx, p).await,
        "network connect" => network::connect(ctx, p).await,
        "network disconnect" => network::disconnect(ctx, p).await,
        "network prune" => network::prune(ctx, p).await,
        "version" => system::version(ctx, p).await,
        "info" => system::info(ctx, p).await,
        other => Err(CliError::Other(format!("unknown command: {other}"))),
    }
}

/// Applies `op` to every target concurrently, then (in argument order)
/// prints each target that succeeded and returns all errors joined by
/// newlines — docker's behaviour for stop/rm/kill/pause/... .
pub async fn for_each_target<F, Fut>(targets: &[String], op: F) -> CliResult<()>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = CliResult<bool>>,
{
    let results = futures_util::future::join_all(targets.iter().map(|t| op(t.clone()))).await;
    let mut errors = Vec::new();
    for (t, r) in targets.iter().zip(results) {
        match r {
            Ok(true) => write_stdout(format!("{t}\n").as_bytes()),
            Ok(false) => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CliError::Other(errors.join("\n")))
    }
}

/// Prints a string to stdout as-is.
pub fn out(s: &str) {
    write_stdout(s.as_bytes());
}
