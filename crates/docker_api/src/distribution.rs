//! Registry endpoints on `registry_client`: pull (`POST /images/create?fromImage=`),
//! push (`POST /images/{name}/push`) and `POST /auth`, with Docker's progress stream.
//!
//! As dockerd does, an error before any progress was sent is an HTTP error (so the CLI
//! prints `Error response from daemon: ...`); later errors end the stream with an
//! `errorDetail` message.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use image_store::Reference;
use registry_client::{Credentials, ProgressEvent, RegistryError};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::{ok_json, ApiError, ApiResult, AppState};

/// What the worker task sends to the response stream.
enum Msg {
    Line(Value),
    Failed(RegistryError),
}

fn reg_error(e: &RegistryError) -> ApiError {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    ApiError(status, e.to_string())
}

fn credentials(headers: &HeaderMap) -> Result<Option<Credentials>, ApiError> {
    let Some(h) = headers.get("x-registry-auth") else {
        return Ok(None);
    };
    let text = h
        .to_str()
        .map_err(|_| ApiError::bad_request("invalid X-Registry-Auth header"))?;
    Credentials::from_x_registry_auth(text).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Docker's text progress bar: `[=====>      ]  1.2MB/3.4MB`.
fn progress_bar(current: u64, total: u64) -> String {
    let human = |n: u64| {
        let units = ["B", "kB", "MB", "GB", "TB"];
        let mut v = n as f64;
        let mut u = 0;
        while v >= 1000.0 && u < units.len() - 1 {
            v /= 1000.0;
            u += 1;
        }
        if u == 0 {
            format!("{n}B")
        } else {
            let t = format!("{v:.3}");
            let t = t.trim_end_matches('0').trim_end_matches('.');
            format!("{t}{}", units[u])
        }
    };
    if total == 0 {
        return human(current);
    }
    let width = 50u64;
    let filled = (current.min(total) * width / total) as usize;
    let bar = if filled as u64 >= width {
        "=".repeat(width as usize)
    } else {
        format!(
            "{}>{}",
            "=".repeat(filled),
            " ".repeat(width as usize - filled - 1)
        )
    };
    format!("[{bar}] {:>8}/{}", human(current), human(total))
}

/// One progress event as Docker's JSON message.
fn event_json(ev: &ProgressEvent) -> Value {
    let mut v = json!({ "status": ev.status() });
    if let Some(id) = ev.id() {
        v["id"] = json!(id);
    }
    if let Some((current, total)) = ev.progress() {
        v["progressDetail"] = json!({ "current": current, "total": total });
        v["progress"] = json!(progress_bar(current, total));
    } else if matches!(
        ev,
        ProgressEvent::PullingFsLayer { .. }
            | ProgressEvent::Waiting { .. }
            | ProgressEvent::Verifying { .. }
            | ProgressEvent::Preparing { .. }
    ) {
        v["progressDetail"] = json!({});
    }
    if let ProgressEvent::PushDigest { tag, digest, size } = ev {
        return json!([v, { "progressDetail": {}, "aux": { "Tag": tag, "Digest": digest, "Size": size } }]);
    }
    v
}

/// Runs `work` (which reports progress through the sender it is given) and turns its
/// messages into the response: an HTTP error if it fails before saying anything.
async fn stream_response<F, Fut>(work: F) -> ApiResult
where
    F: FnOnce(mpsc::UnboundedSender<Msg>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    tokio::spawn(work(tx));
    let first = rx.recv().await;
    let first = match first {
        Some(Msg::Failed(e)) => return Err(reg_error(&e)),
        Some(Msg::Line(v)) => Some(v),
        None => None,
    };
    let line = |v: Value| -> Vec<Result<Bytes, std::io::Error>> {
        match v {
            Value::Array(items) => items
                .into_iter()
                .map(|i| Ok(Bytes::from(format!("{i}\r\n"))))
                .collect(),
            v => vec![Ok(Bytes::from(format!("{v}\r\n")))],
        }
    };
    let (out_tx, out_rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    tokio::spawn(async move {
        if let Some(v) = first {
            for b in line(v) {
                if out_tx.send(b).await.is_err() {
                    return;
                }
            }
        }
        while let Some(m) = rx.recv().await {
            let v = match m {
                Msg::Line(v) => v,
                Msg::Failed(e) => {
                    let msg = e.to_string();
                    json!({ "errorDetail": { "message": msg }, "error": msg })
                }
            };
            for b in line(v) {
                if out_tx.send(b).await.is_err() {
                    return;
                }
            }
        }
    });
    let mut out_rx = out_rx;
    let stream = futures_util::stream::poll_fn(move |cx| out_rx.poll_recv(cx));
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    Ok(r)
}

/// `POST /images/create?fromImage=...&tag=...`.
pub(crate) async fn pull(
    engine: AppState,
    image: String,
    tag: String,
    platform: Option<String>,
    headers: &HeaderMap,
) -> ApiResult {
    let name = if tag.is_empty() {
        image.clone()
    } else if tag.contains(':') {
        format!("{image}@{tag}")
    } else {
        format!("{image}:{tag}")
    };
    let reference = Reference::parse(&name)
        .map_err(|e| ApiError::bad_request(format!("invalid reference format: {e}")))?
        .with_default_tag();
    let creds = credentials(headers)?;
    stream_response(move |tx| async move {
        let cb_tx = tx.clone();
        let progress = move |ev: ProgressEvent| {
            let _ = cb_tx.send(Msg::Line(event_json(&ev)));
        };
        let res = engine
            .registry
            .pull(
                &engine.images,
                &reference,
                platform.as_deref(),
                creds,
                &progress,
            )
            .await;
        // The client's last events are the digest and the final status line.
        if let Err(e) = res {
            let _ = tx.send(Msg::Failed(e));
        }
    })
    .await
}

/// `POST /images/{name}/push?tag=...`: one tag, or every tag of the repository when
/// `tag` is empty.
pub(crate) async fn push(
    engine: AppState,
    name: String,
    tag: String,
    headers: &HeaderMap,
) -> ApiResult {
    let repo = Reference::parse(&name)
        .map_err(|e| ApiError::bad_request(format!("invalid reference format: {e}")))?;
    let targets: Vec<Reference> = if !tag.is_empty() {
        vec![repo
            .with_tag(&tag)
            .map_err(|e| ApiError::bad_request(format!("invalid tag: {e}")))?]
    } else if repo.tag().is_some() {
        vec![repo.clone()]
    } else {
        let want = repo.name();
        let mut tags: Vec<Reference> = engine
            .images
            .list()
            .iter()
            .flat_map(|i| i.repo_tags.clone())
            .filter_map(|t| Reference::parse(&t).ok())
            .filter(|r| r.name() == want && r.tag().is_some())
            .collect();
        tags.sort_by_key(|r| r.to_string());
        tags.dedup_by_key(|r| r.to_string());
        if tags.is_empty() {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                format!(
                    "An image does not exist locally with the tag: {}",
                    repo.familiar_name()
                ),
            ));
        }
        tags
    };
    for t in &targets {
        if engine.images.resolve(&t.to_string()).is_err() {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                format!(
                    "An image does not exist locally with the tag: {}",
                    t.familiar_name()
                ),
            ));
        }
    }
    let creds = credentials(headers)?;
    stream_response(move |tx| async move {
        for t in targets {
            let cb_tx = tx.clone();
            let progress = move |ev: ProgressEvent| {
                let _ = cb_tx.send(Msg::Line(event_json(&ev)));
            };
            if let Err(e) = engine
                .registry
                .push(&engine.images, &t, creds.clone(), &progress)
                .await
            {
                let _ = tx.send(Msg::Failed(e));
                return;
            }
        }
    })
    .await
}

/// `POST /auth`: checks credentials against the registry.
pub(crate) async fn auth(engine: AppState, body: Bytes) -> ApiResult {
    let cfg: registry_client::AuthConfig = crate::parse_json(&body)?;
    let server = if cfg.serveraddress.is_empty() {
        registry_client::DOCKER_HUB_AUTH_KEY.to_string()
    } else {
        cfg.serveraddress.clone()
    };
    let creds = cfg
        .credentials()
        .map_err(|e| ApiError::bad_request(e.to_string()))?
        .ok_or_else(|| ApiError::bad_request("no credentials given"))?;
    let outcome = engine
        .registry
        .login(&server, &creds)
        .await
        .map_err(|e| reg_error(&e))?;
    ok_json(&json!({
        "Status": "Login Succeeded",
        "IdentityToken": outcome.identity_token.unwrap_or_default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_look_like_dockers() {
        assert_eq!(
            progress_bar(0, 100),
            format!("[>{}]       0B/100B", " ".repeat(49))
        );
        assert!(progress_bar(1_500_000, 3_000_000).starts_with("[=========================>"));
        assert!(progress_bar(1_500_000, 3_000_000).ends_with(" 1.5MB/3MB"));
        assert_eq!(
            progress_bar(5, 5),
            format!("[{}]       5B/5B", "=".repeat(50))
        );
    }

    #[test]
    fn push_digest_carries_aux() {
        let v = event_json(&ProgressEvent::PushDigest {
            tag: "1".into(),
            digest: "sha256:ab".into(),
            size: 528,
        });
        assert_eq!(v[0]["status"], "1: digest: sha256:ab size: 528");
        assert_eq!(v[1]["aux"]["Digest"], "sha256:ab");
    }
}
