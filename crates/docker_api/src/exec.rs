//! `/containers/{id}/exec` and `/exec/...` endpoints.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use bollard::models::ExecConfig;
use serde_json::json;

use crate::hijack::{self, StreamOpts};
use crate::{json_response, ok_json, qbool, ApiError, ApiResult, AppState};

pub(crate) async fn create(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let config: ExecConfig = crate::parse_json(&body)?;
    let exec_id = engine.exec_create(&id, config)?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({ "Id": exec_id }),
    ))
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct StartBody {
    #[serde(default)]
    detach: bool,
    #[serde(default)]
    console_size: Option<Vec<u16>>,
}

pub(crate) async fn start(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    mut req: Request,
) -> ApiResult {
    let upgrade = hijack::take_upgrade(&mut req);
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let sb: StartBody = if body.is_empty() {
        StartBody::default()
    } else {
        crate::parse_json(&body)?
    };
    let inst = engine.exec_get(&id)?;
    let size = sb
        .console_size
        .filter(|s| s.len() == 2)
        .map(|s| (s[0], s[1]))
        .unwrap_or((0, 0));
    let opts = StreamOpts {
        tty: inst.tty(),
        stdin: inst.config.attach_stdin.unwrap_or(false),
        stdout: inst.config.attach_stdout.unwrap_or(true),
        stderr: inst.config.attach_stderr.unwrap_or(true),
    };
    let exec_id = id.clone();
    let eng = engine.clone();
    let record = move |code: i64| eng.exec_exited(&exec_id, code);
    let upgrade = if sb.detach { None } else { upgrade };
    let Some(upgrade) = upgrade else {
        // Detached: start now and drain the stream in the background.
        let mut shim = match engine.exec_start(&id, size).await? {
            Ok(shim) => shim,
            Err(msg) => return Err(ApiError(StatusCode::INTERNAL_SERVER_ERROR, msg)),
        };
        tokio::spawn(async move {
            let mut code = -1;
            while let Ok(Some((kind, data))) = container_shim::protocol::read_frame(&mut shim).await
            {
                if kind == container_shim::protocol::frame::EXIT && data.len() == 4 {
                    code = i32::from_be_bytes([data[0], data[1], data[2], data[3]]) as i64;
                }
            }
            record(code);
        });
        return Ok(StatusCode::OK.into_response());
    };
    // Refuse what dockerd refuses before hijacking.
    let ctr = engine.container(&inst.container_id)?;
    if !ctr.running() {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!("Container {} is not running", ctr.id),
        ));
    }
    if inst.snapshot().started {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!("Error: Exec command {id} has already run"),
        ));
    }
    // Like dockerd: hijack first, then start the process, so its first
    // output never shares a read with the 101 headers (clients that switch
    // to the raw socket after parsing headers would lose those bytes).
    tokio::spawn(async move {
        let Ok(client) = upgrade.await else { return };
        match engine.exec_start(&id, size).await {
            Ok(Ok(shim)) => hijack::bridge(client, shim, opts, record).await,
            Ok(Err(msg)) => hijack::send_error(client, opts.tty, &msg).await,
            Err(e) => hijack::send_error(client, opts.tty, &e.to_string()).await,
        }
    });
    Ok(hijack::upgraded_response(true))
}

pub(crate) async fn resize(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let h: u16 = q.get("h").and_then(|v| v.parse().ok()).unwrap_or(0);
    let w: u16 = q.get("w").and_then(|v| v.parse().ok()).unwrap_or(0);
    engine.exec_resize(&id, h, w).await?;
    Ok(StatusCode::OK.into_response())
}

pub(crate) async fn inspect(State(engine): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let inst = engine.exec_get(&id)?;
    let st = inst.snapshot();
    let cmd = inst.config.cmd.clone().unwrap_or_default();
    let _ = qbool(None);
    ok_json(&json!({
        "ID": inst.id,
        "Running": st.running,
        "ExitCode": st.exit_code,
        "ProcessConfig": {
            "tty": inst.tty(),
            "entrypoint": cmd.first().cloned().unwrap_or_default(),
            "arguments": cmd.iter().skip(1).cloned().collect::<Vec<_>>(),
            "privileged": inst.config.privileged.unwrap_or(false),
            "user": inst.config.user.clone().unwrap_or_default(),
        },
        "OpenStdin": inst.config.attach_stdin.unwrap_or(false),
        "OpenStderr": inst.config.attach_stderr.unwrap_or(false),
        "OpenStdout": inst.config.attach_stdout.unwrap_or(false),
        "CanRemove": false,
        "ContainerID": inst.container_id,
        "DetachKeys": "",
        "Pid": st.pid,
    }))
}
