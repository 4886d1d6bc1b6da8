//! `save` and `load`: image archives through `GET /images/get` and `POST /images/load`.

use std::io::Write;

use http_body_util::BodyExt;
use hyper::Method;

use super::Ctx;
use crate::error::{CliError, CliResult};
use crate::flags::Parsed;
use crate::streams::display_progress;

/// `save [-o FILE] IMAGE...`: the tar goes to the file or to stdout (never a terminal).
pub async fn save(ctx: &Ctx, p: &Parsed) -> CliResult<()> {
    let output = p
        .last("output")
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    if output.is_none() && crate::term::is_tty(1) {
        return Err(CliError::Other(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect".into(),
        ));
    }
    let query: Vec<(&str, String)> = p.args.iter().map(|n| ("names", n.clone())).collect();
    let resp = ctx.client.raw(Method::GET, "/images/get", &query).await?;
    let mut body = resp.into_body();
    // Into a temporary file next to the target, renamed when complete, so a failed
    // save never leaves a truncated archive under the requested name.
    let (mut sink, tmp): (
        Box<dyn Write>,
        Option<(std::path::PathBuf, std::path::PathBuf)>,
    ) = match &output {
        Some(o) => {
            let target = std::path::PathBuf::from(o);
            let tmp = target.with_file_name(format!(
                ".{}.berth-save-{}",
                target
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                std::process::id()
            ));
            let f = std::fs::File::create(&tmp).map_err(|e| {
                CliError::Other(format!(
                    "failed to save image: {o}: {}",
                    crate::opts::io_msg(&e)
                ))
            })?;
            (Box::new(std::io::BufWriter::new(f)), Some((tmp, target)))
        }
        None => (Box::new(std::io::stdout().lock()), None),
    };
    let res: CliResult<()> = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| CliError::Other(format!("failed to save image: {e}")))?;
            if let Ok(data) = frame.into_data() {
                sink.write_all(&data)
                    .map_err(|e| CliError::Other(format!("failed to save image: {e}")))?;
            }
        }
        sink.flush()
            .map_err(|e| CliError::Other(format!("failed to save image: {e}")))
    }
    .await;
    drop(sink);
    match (res, tmp) {
        (Ok(()), Some((tmp, target))) => std::fs::rename(&tmp, &target)
            .map_err(|e| CliError::Other(format!("failed to save image: {e}"))),
        (Err(e), Some((tmp, _))) => {
            let _ = std::fs::remove_file(tmp);
            Err(e)
        }
        (r, None) => r,
    }
}

/// `load [-i FILE] [-q]`.
pub async fn load(ctx: &Ctx, p: &Parsed) -> CliResult<()> {
    let input = p
        .last("input")
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let reader: Box<dyn tokio::io::AsyncRead + Send + Unpin> = match &input {
        Some(i) => Box::new(
            tokio::fs::File::open(i)
                .await
                .map_err(|e| CliError::Other(format!("open {i}: {}", crate::opts::io_msg(&e))))?,
        ),
        None => {
            if crate::term::is_tty(0) {
                return Err(CliError::Other(
                    "requested load from stdin, but stdin is empty".into(),
                ));
            }
            Box::new(tokio::io::stdin())
        }
    };
    let mut query = Vec::new();
    if p.bool("quiet") {
        query.push(("quiet", "1".to_string()));
    }
    let resp = ctx
        .client
        .raw_with(
            Method::POST,
            "/images/load",
            &query,
            &[("Content-Type", "application/x-tar")],
            Some(super::image::reader_body(reader)),
        )
        .await?;
    display_progress(resp.into_body(), false).await?;
    Ok(())
}
