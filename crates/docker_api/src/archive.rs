//! `docker save` / `docker load`: `GET /images/get`, `GET /images/{name}/get` and
//! `POST /images/load`, on top of `image_archive`.

use std::io::Write;

use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::json;
use tokio::sync::mpsc;

use crate::{qbool, ApiError, ApiResult, AppState};

/// A `Write` that hands 64 KiB chunks to an async response body.
struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

/// Streams `docker save` of `names` (every name must resolve first: 404 otherwise).
pub(crate) fn save_response(engine: AppState, names: Vec<String>) -> ApiResult {
    if names.is_empty() {
        return Err(ApiError::bad_request("no image names given"));
    }
    for n in &names {
        engine.images.resolve(n).map_err(engine::image_error)?;
    }
    let (tx, mut rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(64 * 1024),
        };
        let res = image_archive::save(&engine.images, &names, &mut w).map(|_| ());
        let res = res
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|_| w.flush());
        if let Err(e) = res {
            tracing::warn!(error = %e, "image save failed");
            // Abort the body so the client sees a broken transfer, not a short tar.
            let _ = tx.blocking_send(Err(e));
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/x-tar"),
    );
    Ok(r)
}

/// GET `/images/get?names=a&names=b`.
pub(crate) async fn save_many(
    State(engine): State<AppState>,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult {
    let names: Vec<String> = q
        .into_iter()
        .filter(|(k, _)| k == "names")
        .map(|(_, v)| v)
        .collect();
    save_response(engine, names)
}

/// POST `/images/load`: the body is an archive; the answer a JSON message stream.
pub(crate) async fn load(
    State(engine): State<AppState>,
    Query(q): Query<Vec<(String, String)>>,
    req: Request,
) -> ApiResult {
    let quiet = qbool(q.iter().find(|(k, _)| k == "quiet").map(|(_, v)| v));
    let tmp = engine.images.archive_tmp_dir().to_path_buf();
    let spool = crate::spool_body(req, &tmp).await?;
    let eng = engine.clone();
    let loaded = tokio::task::spawn_blocking(move || {
        image_archive::load(&eng.images, std::io::BufReader::new(spool), &tmp)
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
    let mut out = String::new();
    for img in loaded {
        let lines: Vec<String> = if img.tags.is_empty() {
            vec![format!("Loaded image ID: {}\n", img.id)]
        } else {
            img.tags
                .iter()
                .map(|t| format!("Loaded image: {t}\n"))
                .collect()
        };
        for l in lines {
            out.push_str(&json!({ "stream": l }).to_string());
            out.push_str("\r\n");
        }
    }
    let _ = quiet;
    let mut r = Response::new(Body::from(out));
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    Ok(r)
}
