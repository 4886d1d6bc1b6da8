//! The Docker Engine API over a unix socket: axum routes that turn HTTP
//! requests into `engine` calls and engine results into Docker's JSON,
//! status codes, hijacked streams and progress messages.

#![recursion_limit = "256"]

mod archive;
mod build;
mod containers;
mod distribution;
mod exec;
mod hijack;
mod human;
mod images;
mod networks;
mod system;
mod volumes;

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, head, post};
use axum::Router;
use engine::{Engine, EngineError};
use tower::Layer;

/// The API version berth speaks (the one docker CLI negotiates down to).
pub const API_VERSION: &str = "1.41";
/// The oldest API version accepted.
pub const MIN_API_VERSION: &str = "1.12";

pub use build::remove_leftovers as remove_build_leftovers;

pub(crate) type AppState = Arc<Engine>;

/// An error body as Docker sends it: `{"message": "..."}` with a status.
#[derive(Debug)]
pub(crate) struct ApiError(pub StatusCode, pub String);

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let status = match &e {
            EngineError::NotFound(_) => StatusCode::NOT_FOUND,
            EngineError::Conflict(_) => StatusCode::CONFLICT,
            EngineError::InvalidArgument(_) => StatusCode::BAD_REQUEST,
            EngineError::Forbidden(_) => StatusCode::FORBIDDEN,
            EngineError::NotModified => StatusCode::NOT_MODIFIED,
            EngineError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, e.to_string())
    }
}

impl ApiError {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        ApiError(StatusCode::BAD_REQUEST, msg.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.0 == StatusCode::NOT_MODIFIED {
            return StatusCode::NOT_MODIFIED.into_response();
        }
        json_response(self.0, &serde_json::json!({ "message": self.1 }))
    }
}

pub(crate) type ApiResult = std::result::Result<Response, ApiError>;

/// Parses a JSON request body; malformed input is a 400 like dockerd's.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

/// A JSON response ending with a newline, as Go's encoder writes it.
pub(crate) fn json_response<T: serde::Serialize>(status: StatusCode, v: &T) -> Response {
    let mut body = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
    body.push(b'\n');
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    r
}

pub(crate) fn ok_json<T: serde::Serialize>(v: &T) -> ApiResult {
    Ok(json_response(StatusCode::OK, v))
}

/// Writes a request body (an import, a build context, an archive to load) to an
/// unnamed temporary file in `dir`, so large uploads never sit in memory; returns it
/// rewound.
pub(crate) async fn spool_body(req: Request, dir: &Path) -> Result<std::fs::File, ApiError> {
    use futures_util::StreamExt;
    use std::io::{Seek, Write};
    let internal = |e: std::io::Error| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let mut spool = tempfile::tempfile_in(dir).map_err(internal)?;
    let mut body = req.into_body().into_data_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(e.to_string()))?;
        spool.write_all(&chunk).map_err(internal)?;
    }
    spool.seek(std::io::SeekFrom::Start(0)).map_err(internal)?;
    Ok(spool)
}

/// Parses Docker's boolean query values (`1`, `true`, `True`).
pub(crate) fn qbool(v: Option<&String>) -> bool {
    matches!(
        v.map(|s| s.to_ascii_lowercase()).as_deref(),
        Some("1") | Some("true") | Some("yes")
    )
}

/// Builds the router for an engine.
pub fn router(engine: Arc<Engine>) -> Router {
    Router::new()
        .route("/_ping", get(system::ping).head(system::ping))
        .route("/version", get(system::version))
        .route("/info", get(system::info))
        .route("/containers/create", post(containers::create))
        .route("/containers/json", get(containers::list))
        .route("/containers/{id}/json", get(containers::inspect))
        .route("/containers/{id}/start", post(containers::start))
        .route("/containers/{id}/stop", post(containers::stop))
        .route("/containers/{id}/restart", post(containers::restart))
        .route("/containers/{id}/kill", post(containers::kill))
        .route("/containers/{id}/wait", post(containers::wait))
        .route("/containers/{id}/resize", post(containers::resize))
        .route("/containers/{id}/rename", post(containers::rename))
        .route("/containers/{id}/attach", post(containers::attach))
        .route("/containers/{id}/logs", get(containers::logs))
        .route("/containers/{id}/exec", post(exec::create))
        .route("/containers/{id}", delete(containers::remove))
        .route("/exec/{id}/start", post(exec::start))
        .route("/exec/{id}/resize", post(exec::resize))
        .route("/exec/{id}/json", get(exec::inspect))
        .route("/build", post(build::build))
        .route("/auth", post(auth))
        .route("/images/json", get(images::list))
        .route("/images/create", post(images::create))
        .route("/images/get", get(archive::save_many))
        .route("/images/load", post(archive::load))
        .route(
            "/images/{*rest}",
            get(images::get_dispatch)
                .post(images::post_dispatch)
                .delete(images::remove),
        )
        .route("/volumes", get(volumes::list))
        .route("/volumes/create", post(volumes::create))
        .route("/volumes/prune", post(volumes::prune))
        .route(
            "/volumes/{name}",
            get(volumes::inspect).delete(volumes::remove),
        )
        .route("/networks", get(networks::list))
        .route("/networks/create", post(networks::create))
        .route("/networks/prune", post(networks::prune))
        .route(
            "/networks/{id}",
            get(networks::inspect).delete(networks::remove),
        )
        .route("/networks/{id}/connect", post(networks::connect))
        .route("/networks/{id}/disconnect", post(networks::disconnect))
        .route("/healthz", head(system::ping))
        .fallback(not_found)
        .layer(axum::middleware::map_response(common_headers))
        .with_state(engine)
}

async fn auth(
    axum::extract::State(engine): axum::extract::State<AppState>,
    body: axum::body::Bytes,
) -> ApiResult {
    distribution::auth(engine, body).await
}

async fn not_found(req: Request) -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        format!("page not found: {} {}", req.method(), req.uri().path()),
    )
}

async fn common_headers(mut res: Response) -> Response {
    if res.status() == StatusCode::SWITCHING_PROTOCOLS {
        return res;
    }
    let h = res.headers_mut();
    h.insert("api-version", HeaderValue::from_static(API_VERSION));
    h.insert("docker-experimental", HeaderValue::from_static("false"));
    h.insert("ostype", HeaderValue::from_static("linux"));
    h.insert(
        "server",
        HeaderValue::from_static(concat!(
            "Docker/berth-",
            env!("CARGO_PKG_VERSION"),
            " (linux)"
        )),
    );
    res
}

/// Removes a leading `/v1.NN` from the path so routes match every version.
fn strip_version(mut req: Request) -> Request {
    let path = req.uri().path();
    if let Some(rest) = path.strip_prefix("/v") {
        if let Some(slash) = rest.find('/') {
            let ver = &rest[..slash];
            if !ver.is_empty() && ver.chars().all(|c| c.is_ascii_digit() || c == '.') {
                let new_path = rest[slash..].to_string();
                let pq = match req.uri().query() {
                    Some(q) => format!("{new_path}?{q}"),
                    None => new_path,
                };
                if let Ok(uri) = pq.parse() {
                    *req.uri_mut() = uri;
                }
            }
        }
    }
    req
}

/// Serves the API on a unix socket until the future is dropped.
pub async fn serve(engine: Arc<Engine>, socket: &Path) -> std::io::Result<()> {
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(socket);
    let listener = tokio::net::UnixListener::bind(socket)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o660))?;
    }
    let app = router(engine);
    let app = tower::util::MapRequestLayer::new(strip_version).layer(app);
    axum::serve(
        listener,
        axum::ServiceExt::<Request>::into_make_service(app),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_prefix_is_stripped() {
        let req = Request::builder()
            .uri("/v1.41/containers/json?all=1")
            .body(Body::empty())
            .unwrap();
        assert_eq!(
            strip_version(req).uri().to_string(),
            "/containers/json?all=1"
        );
        let req = Request::builder()
            .uri("/_ping")
            .body(Body::empty())
            .unwrap();
        assert_eq!(strip_version(req).uri().to_string(), "/_ping");
        let req = Request::builder()
            .uri("/volumes/v1")
            .body(Body::empty())
            .unwrap();
        assert_eq!(strip_version(req).uri().to_string(), "/volumes/v1");
    }

    #[test]
    fn booleans() {
        assert!(qbool(Some(&"1".to_string())));
        assert!(qbool(Some(&"True".to_string())));
        assert!(!qbool(Some(&"0".to_string())));
        assert!(!qbool(None));
    }
}
