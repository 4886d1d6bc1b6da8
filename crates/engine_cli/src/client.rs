//! Connection to the daemon: host selection, a hyper client over the unix
//! socket (or TCP) plugged into bollard as its transport, API version
//! negotiation via `HEAD /_ping`, and a few raw requests for which docker's
//! CLI needs the exact bytes or timing (inspect JSON, `/wait` headers before
//! `start`, log streams).

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use bollard::{BollardRequest, ClientVersion, Docker};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, HOST, USER_AGENT};
use hyper::{Method, Request, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::error::{CliError, CliResult};

/// Default daemon address.
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

/// Host header sent on every request (docker uses the same).
const HOST_HEADER: &str = "api.moby.localhost";

/// Request timeout handed to bollard; effectively "none" (stop/wait may take long).
const NO_TIMEOUT_SECS: u64 = 10 * 365 * 24 * 3600;

/// The request body type bollard hands to its transport (`BollardRequest`'s body).
pub type ReqBody = http_body_util::Either<
    http_body_util::Full<Bytes>,
    http_body_util::StreamBody<
        std::pin::Pin<
            Box<
                dyn futures_util::Stream<Item = Result<hyper::body::Frame<Bytes>, std::io::Error>>
                    + Send,
            >,
        >,
    >,
>;

/// Compile-time check that [`ReqBody`] is exactly bollard's body type.
#[allow(dead_code)]
fn same_body_type(r: BollardRequest) -> Request<ReqBody> {
    r
}

/// Picks the daemon address: `-H`, then `BERTH_HOST`, then `DOCKER_HOST`, then the default.
pub fn resolve_host(flag: Option<&str>, env: &dyn Fn(&str) -> Option<String>) -> String {
    if let Some(h) = flag.filter(|h| !h.is_empty()) {
        return h.to_string();
    }
    for var in ["BERTH_HOST", "DOCKER_HOST"] {
        if let Some(h) = env(var).filter(|h| !h.is_empty()) {
            return h;
        }
    }
    DEFAULT_HOST.to_string()
}

/// Where to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A unix socket path.
    Unix(PathBuf),
    /// host:port over plain HTTP.
    Tcp(String),
}

/// Parses `unix:///path`, `/path`, `tcp://h:p`, `http://h:p`.
pub fn parse_host(host: &str) -> Result<Endpoint, String> {
    if let Some(p) = host.strip_prefix("unix://") {
        if p.is_empty() {
            return Err(format!("invalid host: {host}"));
        }
        return Ok(Endpoint::Unix(PathBuf::from(p)));
    }
    if host.starts_with('/') {
        return Ok(Endpoint::Unix(PathBuf::from(host)));
    }
    for scheme in ["tcp://", "http://"] {
        if let Some(rest) = host.strip_prefix(scheme) {
            let hp = rest.trim_end_matches('/');
            if hp.is_empty() {
                return Err(format!("invalid host: {host}"));
            }
            let hp = if hp.contains(':') {
                hp.to_string()
            } else {
                format!("{hp}:2375")
            };
            return Ok(Endpoint::Tcp(hp));
        }
    }
    Err(format!("unsupported host: {host}"))
}

/// True for paths like "/v1.41/...".
fn has_version_prefix(pq: &str) -> bool {
    pq.strip_prefix("/v")
        .and_then(|r| r.chars().next())
        .is_some_and(|c| c.is_ascii_digit())
}

enum Http {
    Unix(
        hyper_util::client::legacy::Client<hyperlocal::UnixConnector, ReqBody>,
        PathBuf,
    ),
    Tcp(
        hyper_util::client::legacy::Client<HttpConnector, ReqBody>,
        String,
    ),
}

impl Http {
    fn new(ep: &Endpoint) -> Http {
        let builder = hyper_util::client::legacy::Client::builder(TokioExecutor::new());
        match ep {
            Endpoint::Unix(p) => Http::Unix(builder.build(hyperlocal::UnixConnector), p.clone()),
            Endpoint::Tcp(a) => Http::Tcp(builder.build(HttpConnector::new()), a.clone()),
        }
    }

    /// Sends a request whose URI only matters for its path and query.
    /// bollard builds unversioned paths; `prefix` ("/v1.41") is added to
    /// paths that do not carry a version yet.
    async fn send(
        &self,
        mut req: BollardRequest,
        prefix: Option<&str>,
    ) -> Result<Response<Incoming>, bollard::errors::Error> {
        let mut pq = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        if let Some(prefix) = prefix {
            if !has_version_prefix(&pq) && !pq.starts_with("/_ping") {
                pq = format!("{prefix}{pq}");
            }
        }
        let headers = req.headers_mut();
        headers.insert(HOST, HeaderValue::from_static(HOST_HEADER));
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("berth/", env!("CARGO_PKG_VERSION"))),
        );
        let result = match self {
            Http::Unix(client, path) => {
                *req.uri_mut() = hyperlocal::Uri::new(path, &pq).into();
                client.request(req).await
            }
            Http::Tcp(client, addr) => {
                let uri: hyper::Uri = format!("http://{addr}{pq}").parse().map_err(
                    |e: hyper::http::uri::InvalidUri| bollard::errors::Error::InvalidURIError {
                        err: e,
                    },
                )?;
                *req.uri_mut() = uri;
                client.request(req).await
            }
        };
        result.map_err(|e| {
            if e.is_connect() {
                let kind = std::error::Error::source(&e)
                    .and_then(|s| s.downcast_ref::<std::io::Error>())
                    .map(|io| io.kind())
                    .filter(|k| *k != std::io::ErrorKind::Other)
                    .unwrap_or(std::io::ErrorKind::ConnectionRefused);
                bollard::errors::Error::IOError {
                    err: std::io::Error::new(kind, e.to_string()),
                }
            } else {
                bollard::errors::Error::HyperLegacyError { err: e }
            }
        })
    }
}

/// A connection to the daemon. Version negotiation happens on first use.
pub struct Client {
    /// Address as given (for messages).
    pub host: String,
    http: Arc<Http>,
    negotiated: OnceLock<(Docker, String)>,
}

/// Minimal percent-encoding for query values and path segments.
pub fn percent_encode(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Builds `?k=v&...` (empty when no pairs).
pub fn query_string(pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k, b""), percent_encode(v, b"")))
        .collect();
    format!("?{}", parts.join("&"))
}

/// Parses "1.41" into a bollard version.
pub fn parse_api_version(v: &str) -> Option<ClientVersion> {
    let (a, b) = v.trim().split_once('.')?;
    Some(ClientVersion {
        major_version: a.parse().ok()?,
        minor_version: b.parse().ok()?,
    })
}

fn version_min(a: &ClientVersion, b: &ClientVersion) -> ClientVersion {
    if (a.major_version, a.minor_version) <= (b.major_version, b.minor_version) {
        *a
    } else {
        *b
    }
}

/// Extracts the daemon's error message from a JSON error body.
pub fn error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Msg {
        message: String,
    }
    match serde_json::from_slice::<Msg>(body) {
        Ok(m) => m.message,
        Err(_) => String::from_utf8_lossy(body).trim().to_string(),
    }
}

impl Client {
    /// Prepares a client for `host` (no network I/O yet).
    pub fn new(host: &str) -> CliResult<Client> {
        crate::error::set_host(host);
        let ep = parse_host(host).map_err(CliError::Other)?;
        Ok(Client {
            host: host.to_string(),
            http: Arc::new(Http::new(&ep)),
            negotiated: OnceLock::new(),
        })
    }

    /// The highest API version this client speaks.
    pub fn max_version() -> ClientVersion {
        *bollard::API_DEFAULT_VERSION
    }

    /// Builds the bollard handle; with `versioned`, every request path gets
    /// the `/v{version}` prefix like docker's CLI sends.
    fn make_docker(&self, version: &ClientVersion, versioned: bool) -> CliResult<Docker> {
        let http = self.http.clone();
        let prefix: Option<Arc<str>> = versioned
            .then(|| format!("/v{}.{}", version.major_version, version.minor_version).into());
        Docker::connect_with_custom_transport(
            move |req: BollardRequest| {
                let http = http.clone();
                let prefix = prefix.clone();
                async move { http.send(req, prefix.as_deref()).await }
            },
            Some(format!("http://{HOST_HEADER}")),
            NO_TIMEOUT_SECS,
            version,
        )
        .map_err(CliError::from)
    }

    /// Negotiates the API version (`HEAD /_ping`, falling back to `GET /version`)
    /// and returns the bollard handle.
    pub async fn api(&self) -> CliResult<&Docker> {
        if let Some((d, _)) = self.negotiated.get() {
            return Ok(d);
        }
        let max = Self::max_version();
        let ping = self
            .send_raw(Method::HEAD, "/_ping".into(), &[], None)
            .await?;
        let server = ping
            .headers()
            .get("api-version")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_api_version);
        let docker = match server {
            Some(server) => self.make_docker(&version_min(&server, &max), true)?,
            None => {
                let probe = self.make_docker(&max, false)?.negotiate_version().await?;
                self.make_docker(&probe.client_version(), true)?
            }
        };
        let v = docker.client_version();
        let version = format!("{}.{}", v.major_version, v.minor_version);
        let _ = self.negotiated.set((docker, version));
        match self.negotiated.get() {
            Some((d, _)) => Ok(d),
            None => Err(CliError::Other(
                "internal error: version negotiation".into(),
            )),
        }
    }

    /// A clone of the bollard handle (for spawned tasks).
    pub async fn docker(&self) -> CliResult<Docker> {
        self.api().await.cloned()
    }

    /// The negotiated API version string ("1.41"); negotiates if needed.
    pub async fn version(&self) -> CliResult<String> {
        self.api().await?;
        Ok(self
            .negotiated
            .get()
            .map(|(_, v)| v.clone())
            .unwrap_or_default())
    }

    async fn send_raw(
        &self,
        method: Method,
        path_and_query: String,
        headers: &[(&str, &str)],
        body: Option<ReqBody>,
    ) -> CliResult<Response<Incoming>> {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("http://{HOST_HEADER}{path_and_query}"));
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let req = builder
            .body(body.unwrap_or_else(|| bollard::body_full(Bytes::new())))
            .map_err(|e| CliError::Other(e.to_string()))?;
        let resp = self.http.send(req, None).await?;
        if resp.status().is_success() || resp.status().is_informational() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        Err(CliError::Daemon {
            status,
            message: error_message(&body),
        })
    }

    /// A versioned request; returns the response once its headers arrived
    /// (non-2xx statuses become [`CliError::Daemon`]).
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
    ) -> CliResult<Response<Incoming>> {
        self.raw_with(method, path, query, &[], None).await
    }

    /// Like [`Client::raw`] with extra headers and an optional body.
    pub async fn raw_with(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        headers: &[(&str, &str)],
        body: Option<ReqBody>,
    ) -> CliResult<Response<Incoming>> {
        let v = self.version().await?;
        let path = percent_encode(path, b"/:@");
        self.send_raw(
            method,
            format!("/v{v}{path}{}", query_string(query)),
            headers,
            body,
        )
        .await
    }

    /// `GET path` and return the body text.
    pub async fn get_text(&self, path: &str, query: &[(&str, String)]) -> CliResult<String> {
        let resp = self.raw(Method::GET, path, query).await?;
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| CliError::Other(format!("error reading response: {e}")))?
            .to_bytes();
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_precedence() {
        let env = |k: &str| match k {
            "BERTH_HOST" => Some("unix:///b.sock".to_string()),
            "DOCKER_HOST" => Some("unix:///d.sock".to_string()),
            _ => None,
        };
        assert_eq!(resolve_host(Some("tcp://x:1"), &env), "tcp://x:1");
        assert_eq!(resolve_host(None, &env), "unix:///b.sock");
        let only_docker = |k: &str| (k == "DOCKER_HOST").then(|| "unix:///d.sock".to_string());
        assert_eq!(resolve_host(None, &only_docker), "unix:///d.sock");
        assert_eq!(resolve_host(None, &|_| None), DEFAULT_HOST);
    }

    #[test]
    fn host_parsing() {
        assert_eq!(
            parse_host("unix:///run/berth/berth.sock"),
            Ok(Endpoint::Unix("/run/berth/berth.sock".into()))
        );
        assert_eq!(
            parse_host("/tmp/x.sock"),
            Ok(Endpoint::Unix("/tmp/x.sock".into()))
        );
        assert_eq!(
            parse_host("tcp://127.0.0.1:2375"),
            Ok(Endpoint::Tcp("127.0.0.1:2375".into()))
        );
        assert_eq!(
            parse_host("tcp://box"),
            Ok(Endpoint::Tcp("box:2375".into()))
        );
        assert!(parse_host("ssh://x").is_err());
        assert!(parse_host("unix://").is_err());
    }

    #[test]
    fn query_encoding() {
        assert_eq!(
            query_string(&[
                ("fromImage", "127.0.0.1:5000/t/bb".into()),
                ("tag", "1".into())
            ]),
            "?fromImage=127.0.0.1%3A5000%2Ft%2Fbb&tag=1"
        );
        assert_eq!(query_string(&[]), "");
        assert_eq!(percent_encode("a b/c:d", b"/:"), "a%20b/c:d");
    }

    #[test]
    fn version_prefix_detection() {
        assert!(has_version_prefix("/v1.41/containers/json"));
        assert!(!has_version_prefix("/volumes"));
        assert!(!has_version_prefix("/version"));
    }

    #[test]
    fn versions_and_errors() {
        let v = parse_api_version("1.41").unwrap();
        assert_eq!((v.major_version, v.minor_version), (1, 41));
        assert!(parse_api_version("x").is_none());
        let m = version_min(&v, &Client::max_version());
        assert_eq!(m.minor_version, 41);
        assert_eq!(
            error_message(br#"{"message":"No such image: x"}"#),
            "No such image: x"
        );
        assert_eq!(error_message(b"plain text\n"), "plain text");
    }

    #[tokio::test]
    async fn unreachable_socket_is_a_connect_error() {
        let c = Client::new("unix:///nonexistent/berth-test.sock").unwrap();
        match c.api().await {
            Err(CliError::Connect { .. }) => {}
            other => panic!("unexpected: {other:?}"),
        }
    }
}
