//! `POST /build`: the classic builder's API. The body is the build context (a tar,
//! possibly compressed, or a bare Dockerfile); the answer is a stream of JSON messages
//! (`{"stream": "Step 1/3 : ..."}`, `{"aux": {"ID": ...}}`, `{"errorDetail": ...}`).

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use image_build::{BuildEvent, BuildOptions};
use serde_json::{json, Value};
use tracing::warn;

use crate::{qbool, ApiError, ApiResult, AppState};

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// Removes what interrupted builds left (work dirs, mounts, contexts): called when the
/// daemon starts, before any build runs.
pub fn remove_leftovers(root: &Path) {
    for dir in [root.join("build"), root.join("build-ctx")] {
        if !dir.exists() {
            continue;
        }
        if let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") {
            let prefix = dir.display().to_string();
            let mut mounts: Vec<&str> = info
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .filter(|m| m.starts_with(&prefix))
                .collect();
            mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
            for m in mounts {
                let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            warn!(path = %dir.display(), error = %e, "cannot remove build leftovers");
        }
    }
}

/// Deletes an unpacked context when the build is over.
struct CtxDir(PathBuf);

impl Drop for CtxDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn parse_map(v: Option<&String>, what: &str) -> Result<BTreeMap<String, Option<String>>, ApiError> {
    match v.filter(|s| !s.is_empty()) {
        None => Ok(BTreeMap::new()),
        Some(s) => serde_json::from_str::<BTreeMap<String, Option<String>>>(s)
            .map_err(|e| ApiError::bad_request(format!("failed to parse {what}: {e}"))),
    }
}

/// Whether the spooled body is an archive (tar, possibly compressed) rather than a
/// bare Dockerfile.
fn looks_like_archive(f: &mut std::fs::File) -> bool {
    let mut head = vec![0u8; 512];
    let n = f.read(&mut head).unwrap_or(0);
    head.truncate(n);
    let _ = f.seek(std::io::SeekFrom::Start(0));
    if head.starts_with(&[0x1f, 0x8b]) || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return true;
    }
    n >= 262 && &head[257..262] == b"ustar"
        || (n == 512
            && head[0] != 0
            && head[100..108]
                .iter()
                .all(|b| b.is_ascii_digit() || *b == b' ' || *b == 0))
}

/// POST `/build`.
pub(crate) async fn build(
    State(engine): State<AppState>,
    Query(q): Query<Vec<(String, String)>>,
    req: Request,
) -> ApiResult {
    let all = |k: &str| -> Vec<String> {
        q.iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let one: HashMap<String, String> = q.iter().cloned().collect();
    if one.get("version").is_some_and(|v| v == "2") {
        return Err(ApiError::bad_request(
            "BuildKit is not supported by berth; use the classic builder (DOCKER_BUILDKIT=0)",
        ));
    }
    if one.get("remote").is_some_and(|r| !r.is_empty()) {
        return Err(ApiError::bad_request(
            "remote build contexts (git or URL) are not supported; send the context as a tar",
        ));
    }
    let mut labels = BTreeMap::new();
    for (k, v) in parse_map(one.get("labels"), "labels")? {
        labels.insert(k, v.unwrap_or_default());
    }
    let opts = BuildOptions {
        dockerfile: one.get("dockerfile").cloned().unwrap_or_default(),
        tags: all("t").into_iter().filter(|t| !t.is_empty()).collect(),
        build_args: parse_map(one.get("buildargs"), "build args")?,
        target: one.get("target").cloned().filter(|t| !t.is_empty()),
        no_cache: qbool(one.get("nocache")),
        labels,
        network_mode: one.get("networkmode").cloned().filter(|n| !n.is_empty()),
        quiet: qbool(one.get("q")),
    };

    // Spool the context, then unpack it (or take the body as the Dockerfile).
    let base = engine.cfg.root.join("build-ctx");
    std::fs::create_dir_all(&base).map_err(internal)?;
    let ctx = CtxDir(base.join(format!("{:016x}", rand::random::<u64>())));
    let ctx_dir = ctx.0.join("context");
    std::fs::create_dir_all(&ctx_dir).map_err(internal)?;
    let mut spool = crate::spool_body(req, &base).await?;
    let dir = ctx_dir.clone();
    let dockerfile_name = opts.dockerfile.clone();
    let unpacked = tokio::task::spawn_blocking(move || -> Result<(), String> {
        if looks_like_archive(&mut spool) {
            layer_unpack::unpack_with(
                std::io::BufReader::new(spool),
                &dir,
                &layer_unpack::UnpackOptions {
                    same_owner: false,
                    xattrs: false,
                },
            )
            .map(|_| ())
            .map_err(|e| format!("failed to read the build context: {e}"))
        } else {
            let name = if dockerfile_name.is_empty() {
                "Dockerfile".to_string()
            } else {
                dockerfile_name
            };
            let mut data = Vec::new();
            spool.read_to_end(&mut data).map_err(|e| e.to_string())?;
            std::fs::write(dir.join(name.trim_start_matches('/')), data).map_err(|e| e.to_string())
        }
    })
    .await
    .map_err(internal)?;
    unpacked.map_err(ApiError::bad_request)?;

    let (tx, mut rx) = tokio::sync::mpsc::channel::<BuildEvent>(256);
    let (out_tx, out_rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(256);
    let quiet = opts.quiet;
    let eng = engine.clone();
    let task = tokio::spawn(async move {
        let _ctx = ctx;
        image_build::build(eng, &ctx_dir, opts, tx).await
    });
    tokio::spawn(async move {
        let line = |v: Value| Ok(Bytes::from(format!("{v}\r\n")));
        while let Some(ev) = rx.recv().await {
            let v = match ev {
                BuildEvent::Stream(s) => json!({ "stream": s }),
                BuildEvent::Aux(id) => {
                    let aux = json!({ "aux": { "ID": id } });
                    if out_tx.send(line(aux)).await.is_err() {
                        return;
                    }
                    if quiet {
                        json!({ "stream": format!("{id}\n") })
                    } else {
                        continue;
                    }
                }
            };
            if out_tx.send(line(v)).await.is_err() {
                return;
            }
        }
        let res = match task.await {
            Ok(r) => r,
            Err(e) => Err(image_build::BuildError::Internal(e.to_string())),
        };
        if let Err(e) = res {
            let msg = e.to_string();
            let mut detail = json!({ "message": msg });
            if let Some(c) = e.code() {
                detail["code"] = json!(c);
            }
            let _ = out_tx
                .send(line(json!({ "errorDetail": detail, "error": msg })))
                .await;
        }
    });
    let stream = tokio_stream_from(out_rx);
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        "content-type",
        axum::http::HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
