//! `logs`: inspect first (to learn `Config.Tty` and the full id, as docker
//! does), then stream `GET /containers/{id}/logs`, demultiplexing unless TTY.

use hyper::Method;

use super::container::inspect_value;
use super::Ctx;
use crate::error::{CliError, CliResult};
use crate::flags::Parsed;
use crate::format::human::now_unix;
use crate::format::json::Value;
use crate::opts;
use crate::streams::copy_body;

/// Builds the logs query the way docker's client does (only set options).
pub fn logs_query(p: &Parsed, now: i64) -> Result<Vec<(&'static str, String)>, String> {
    let mut q = Vec::new();
    if p.bool("details") {
        q.push(("details", "1".to_string()));
    }
    if p.bool("follow") {
        q.push(("follow", "1".to_string()));
    }
    if let Some(s) = p.last("since").filter(|s| !s.is_empty()) {
        q.push(("since", opts::get_timestamp(s, now)?));
    }
    q.push(("stderr", "1".to_string()));
    q.push(("stdout", "1".to_string()));
    q.push(("tail", p.str_or("tail", "all").to_string()));
    if p.bool("timestamps") {
        q.push(("timestamps", "1".to_string()));
    }
    if let Some(u) = p.last("until").filter(|s| !s.is_empty()) {
        q.push(("until", opts::get_timestamp(u, now)?));
    }
    Ok(q)
}

/// `logs`.
pub async fn logs(ctx: &Ctx, p: &Parsed) -> CliResult<()> {
    let name = &p.args[0];
    let query = logs_query(p, now_unix()).map_err(CliError::Other)?;
    let c = inspect_value(ctx, name).await?;
    let id = c
        .get("Id")
        .and_then(Value::as_str)
        .unwrap_or(name)
        .to_string();
    let tty = c
        .path(&["Config", "Tty"])
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let resp = ctx
        .client
        .raw(Method::GET, &format!("/containers/{id}/logs"), &query)
        .await?;
    copy_body(resp.into_body(), tty).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{cli, flags};

    #[test]
    fn query_matches_docker() {
        let spec = cli::command("logs").unwrap();
        let p = flags::parse(&spec, &["tr1".to_string()]).unwrap();
        assert_eq!(
            logs_query(&p, 0).unwrap(),
            vec![
                ("stderr", "1".into()),
                ("stdout", "1".into()),
                ("tail", "all".into())
            ]
        );
        let args: Vec<String> = ["-f", "--tail", "1", "-t", "--since", "10s", "tr1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let p = flags::parse(&spec, &args).unwrap();
        assert_eq!(
            logs_query(&p, 100).unwrap(),
            vec![
                ("follow", "1".into()),
                ("since", "90".into()),
                ("stderr", "1".into()),
                ("stdout", "1".into()),
                ("tail", "1".into()),
                ("timestamps", "1".into())
            ]
        );
    }
}
