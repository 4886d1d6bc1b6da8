//! A small async Kubernetes API client for berth's own tools (simulated nodes, tests,
//! benchmarks): reads a kubeconfig (current or named context; client certificate/key or
//! bearer token; CA data or files), speaks JSON over HTTPS (HTTP/2 when the server offers
//! it, one pooled connection), and exposes the plain REST verbs on API paths plus watch
//! streams of newline-delimited `{"type","object"}` events.
//!
//! Objects are `serde_json::Value`s; paths are API paths such as `/api/v1/namespaces/default/pods`.
//! Failed requests return [`Error::Api`] with the server's `Status` (code, reason, message).
//! The kubeconfig YAML is read with the `yaml-rust2` crate.

mod kubeconfig;
mod watch;

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Method;
use serde_json::Value;

pub use kubeconfig::Kubeconfig;
pub use watch::{WatchEvent, WatchParser, MAX_EVENT_LINE};

/// A Kubernetes `Status` (the body of a failed request, or of a watch ERROR event).
#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    /// HTTP status code (e.g. 404, 409, 410).
    pub code: u16,
    /// Machine-readable reason (`NotFound`, `AlreadyExists`, `Conflict`, `Expired`, ...).
    pub reason: String,
    pub message: String,
    /// `details`, if the server sent any.
    pub details: Option<Value>,
}

impl Status {
    /// Reads a Status object; `fallback_code` is used when it carries no code.
    pub fn from_value(v: &Value, fallback_code: u16) -> Status {
        let code = v["code"]
            .as_u64()
            .and_then(|c| u16::try_from(c).ok())
            .filter(|c| *c != 0)
            .unwrap_or(fallback_code);
        Status {
            code,
            reason: v["reason"].as_str().unwrap_or("").to_string(),
            message: v["message"].as_str().unwrap_or("").to_string(),
            details: v.get("details").filter(|d| !d.is_null()).cloned(),
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let reason = if self.reason.is_empty() {
            "Failure"
        } else {
            &self.reason
        };
        if self.message.is_empty() {
            write!(f, "{} ({})", reason, self.code)
        } else {
            write!(f, "{} ({} {})", self.message, self.code, reason)
        }
    }
}

/// Errors of this client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with a failure Status (or a watch sent an ERROR event).
    #[error("{0}")]
    Api(Status),
    /// The request could not be sent or its response not read.
    #[error("{method} {url}: {message}")]
    Http {
        method: String,
        url: String,
        message: String,
        #[source]
        source: reqwest::Error,
    },
    /// The server sent a body that is not the JSON expected.
    #[error("invalid JSON from the server: {0}")]
    Decode(#[source] serde_json::Error),
    /// The server broke the protocol (e.g. an unknown watch event type).
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The TLS material (CA, client certificate or key) is unusable.
    #[error("TLS setup: {0}")]
    Tls(String),
}

impl Error {
    /// The server's Status, for API errors.
    pub fn status(&self) -> Option<&Status> {
        match self {
            Error::Api(s) => Some(s),
            _ => None,
        }
    }

    /// The HTTP code of an API error.
    pub fn code(&self) -> Option<u16> {
        self.status().map(|s| s.code)
    }

    pub fn is_not_found(&self) -> bool {
        self.code() == Some(404)
    }

    /// 409 of any reason (AlreadyExists or Conflict).
    pub fn is_conflict(&self) -> bool {
        self.code() == Some(409)
    }

    pub fn is_already_exists(&self) -> bool {
        self.status()
            .is_some_and(|s| s.code == 409 && s.reason == "AlreadyExists")
    }

    /// 410 Gone: the resource version asked for is compacted; list again.
    pub fn is_gone(&self) -> bool {
        self.code() == Some(410)
    }

    /// Worth retrying later: transport failures, 429, 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Http { .. } => true,
            Error::Api(s) => s.code == 429 || s.code >= 500,
            _ => false,
        }
    }
}

/// The content type of a PATCH body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchKind {
    /// RFC 6902 JSON patch (a list of operations).
    Json,
    /// RFC 7386 JSON merge patch.
    Merge,
    /// Kubernetes strategic merge patch.
    Strategic,
}

impl PatchKind {
    pub fn content_type(self) -> &'static str {
        match self {
            PatchKind::Json => "application/json-patch+json",
            PatchKind::Merge => "application/merge-patch+json",
            PatchKind::Strategic => "application/strategic-merge-patch+json",
        }
    }
}

/// A stream of watch events; ends when the server closes the watch.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, Error>> + Send>>;

/// An API client for one server and identity. Cheap to clone (shares the connection pool).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    server: String,
    auth: Option<HeaderValue>,
    timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.server)
            .field("token", &self.auth.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Default deadline of a non-watch request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

impl Client {
    /// A client for the current context of the kubeconfig at `path`.
    pub fn from_kubeconfig(path: &Path) -> Result<Client, Error> {
        Client::new(&Kubeconfig::load(path, None)?)
    }

    /// A client for a resolved kubeconfig context.
    pub fn new(cfg: &Kubeconfig) -> Result<Client, Error> {
        if !(cfg.server.starts_with("https://") || cfg.server.starts_with("http://")) {
            return Err(Error::Kubeconfig(format!(
                "server {:?} is not an http(s) URL",
                cfg.server
            )));
        }
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .user_agent(concat!("berth-kube-client/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .tcp_keepalive(Duration::from_secs(30))
            .http2_adaptive_window(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .http2_keep_alive_while_idle(true)
            .pool_idle_timeout(Duration::from_secs(90));
        if let Some(ca) = &cfg.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(ca)
                .map_err(|e| Error::Tls(format!("certificate authority: {e}")))?;
            if certs.is_empty() {
                return Err(Error::Tls(
                    "certificate authority: no certificate in PEM".into(),
                ));
            }
            b = b.tls_built_in_root_certs(false);
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        if cfg.insecure {
            b = b.danger_accept_invalid_certs(true);
        }
        if let (Some(cert), Some(key)) = (&cfg.client_cert_pem, &cfg.client_key_pem) {
            let mut pem = cert.clone();
            if !pem.ends_with(b"\n") {
                pem.push(b'\n');
            }
            pem.extend_from_slice(key);
            let id = reqwest::Identity::from_pem(&pem)
                .map_err(|e| Error::Tls(format!("client certificate: {e}")))?;
            b = b.identity(id);
        }
        let auth = match &cfg.token {
            Some(t) => Some(
                HeaderValue::from_str(&format!("Bearer {t}"))
                    .map_err(|_| Error::Kubeconfig("token is not a valid header value".into()))?,
            ),
            None => None,
        };
        let http = b.build().map_err(|e| Error::Tls(chain(&e)))?;
        Ok(Client {
            http,
            server: cfg.server.trim_end_matches('/').to_string(),
            auth,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Sets the deadline of non-watch requests.
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    /// The server URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let url = format!("{}{}", self.server, path);
        let mut r = self
            .http
            .request(method, url)
            .header(ACCEPT, "application/json");
        if let Some(a) = &self.auth {
            r = r.header(AUTHORIZATION, a.clone());
        }
        r
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<(&'static str, Vec<u8>)>,
    ) -> Result<Value, Error> {
        let mut r = self
            .request(method.clone(), path)
            .timeout(self.timeout)
            .query(query);
        if let Some((ct, bytes)) = body {
            r = r.header(CONTENT_TYPE, ct).body(bytes);
        }
        let http_err = |e: reqwest::Error| Error::Http {
            method: method.to_string(),
            url: format!("{}{}", self.server, path),
            message: chain(&e),
            source: e,
        };
        let resp = r.send().await.map_err(http_err)?;
        let code = resp.status();
        let bytes = resp.bytes().await.map_err(http_err)?;
        if code.is_success() {
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes).map_err(Error::Decode);
        }
        Err(Error::Api(status_of(code.as_u16(), &bytes)))
    }

    /// GET one object (or any JSON document, e.g. `/version`).
    pub async fn get(&self, path: &str) -> Result<Value, Error> {
        self.send(Method::GET, path, &[], None).await
    }

    /// GET a collection with query parameters (`labelSelector`, `fieldSelector`, `limit`,
    /// `continue`, `resourceVersion`, ...).
    pub async fn list(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, Error> {
        self.send(Method::GET, path, query, None).await
    }

    /// Lists a whole collection in pages of `page_size`, returning one list whose `items`
    /// are all pages' items and whose `metadata.resourceVersion` is the snapshot's.
    pub async fn list_all(
        &self,
        path: &str,
        query: &[(&str, &str)],
        page_size: u32,
    ) -> Result<Value, Error> {
        let limit = page_size.max(1).to_string();
        let mut items: Vec<Value> = Vec::new();
        let mut cont = String::new();
        loop {
            let mut q: Vec<(&str, &str)> = query.to_vec();
            q.push(("limit", &limit));
            if !cont.is_empty() {
                q.push(("continue", &cont));
            }
            let mut page = self.list(path, &q).await?;
            if let Some(Value::Array(batch)) = page.get_mut("items").map(Value::take) {
                items.extend(batch);
            }
            let next = page["metadata"]["continue"]
                .as_str()
                .unwrap_or("")
                .to_string();
            if next.is_empty() {
                page["items"] = Value::Array(items);
                if let Some(m) = page.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("continue");
                    m.remove("remainingItemCount");
                }
                return Ok(page);
            }
            cont = next;
        }
    }

    /// POST an object to a collection path.
    pub async fn create(&self, path: &str, obj: &Value) -> Result<Value, Error> {
        let body = serde_json::to_vec(obj).map_err(Error::Decode)?;
        self.send(Method::POST, path, &[], Some(("application/json", body)))
            .await
    }

    /// PUT an object (its `metadata.resourceVersion`, if set, is a precondition).
    pub async fn replace(&self, path: &str, obj: &Value) -> Result<Value, Error> {
        let body = serde_json::to_vec(obj).map_err(Error::Decode)?;
        self.send(Method::PUT, path, &[], Some(("application/json", body)))
            .await
    }

    /// PATCH an object (or a subresource such as `.../status`).
    pub async fn patch(&self, path: &str, kind: PatchKind, patch: &Value) -> Result<Value, Error> {
        let body = serde_json::to_vec(patch).map_err(Error::Decode)?;
        self.send(Method::PATCH, path, &[], Some((kind.content_type(), body)))
            .await
    }

    /// DELETE an object, with optional DeleteOptions (`gracePeriodSeconds`,
    /// `preconditions`, `propagationPolicy`). Returns the deleted (or terminating) object
    /// or a Status.
    pub async fn delete(&self, path: &str, options: Option<&Value>) -> Result<Value, Error> {
        let body = match options {
            Some(o) => Some((
                "application/json",
                serde_json::to_vec(o).map_err(Error::Decode)?,
            )),
            None => None,
        };
        self.send(Method::DELETE, path, &[], body).await
    }

    /// Watches a collection from `resource_version` (`""` or `"0"`: the current state
    /// first, as ADDED events), with bookmarks.
    pub async fn watch(&self, path: &str, resource_version: &str) -> Result<WatchStream, Error> {
        self.watch_with(
            path,
            &[
                ("resourceVersion", resource_version),
                ("allowWatchBookmarks", "true"),
            ],
        )
        .await
    }

    /// Watches with explicit query parameters (`watch=true` is added). Failing to start
    /// (e.g. 410 Gone) is an error here; later ERROR events arrive in the stream.
    pub async fn watch_with(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<WatchStream, Error> {
        let mut q: Vec<(&str, &str)> = vec![("watch", "true")];
        q.extend(query.iter().filter(|(k, _)| *k != "watch"));
        let url = format!("{}{}", self.server, path);
        let http_err = |e: reqwest::Error| Error::Http {
            method: "GET".into(),
            url: url.clone(),
            message: chain(&e),
            source: e,
        };
        let resp = self
            .request(Method::GET, path)
            .query(&q)
            .send()
            .await
            .map_err(http_err)?;
        let code = resp.status();
        if !code.is_success() {
            let bytes = resp.bytes().await.map_err(http_err)?;
            return Err(Error::Api(status_of(code.as_u16(), &bytes)));
        }
        let body = resp.bytes_stream();
        struct St<B> {
            body: B,
            parser: WatchParser,
            done: bool,
            url: String,
        }
        let st = St {
            body: Box::pin(body),
            parser: WatchParser::new(),
            done: false,
            url,
        };
        let stream = futures_util::stream::unfold(st, |mut st| async move {
            loop {
                if let Some(ev) = st.parser.next_event() {
                    return Some((ev, st));
                }
                if st.done {
                    return st.parser.finish().map(|ev| (ev, st));
                }
                match st.body.next().await {
                    Some(Ok(chunk)) => st.parser.push(&chunk),
                    Some(Err(e)) => {
                        st.done = true;
                        // The rest of the buffer is an incomplete line: drop it.
                        st.parser = WatchParser::new();
                        let err = Error::Http {
                            method: "GET".into(),
                            url: st.url.clone(),
                            message: chain(&e),
                            source: e,
                        };
                        return Some((Err(err), st));
                    }
                    None => st.done = true,
                }
            }
        });
        Ok(Box::pin(stream))
    }
}

/// A Status from a failed response's body (JSON Status, or plain text).
fn status_of(code: u16, body: &[u8]) -> Status {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        if v.is_object() {
            let mut s = Status::from_value(&v, code);
            s.code = code;
            return s;
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    Status {
        code,
        reason: reqwest::StatusCode::from_u16(code)
            .ok()
            .and_then(|c| c.canonical_reason())
            .unwrap_or("")
            .replace(' ', ""),
        message: text.chars().take(1024).collect(),
        details: None,
    }
}

/// An error and its sources, joined.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_from_json_and_text_bodies() {
        let s = status_of(
            404,
            br#"{"kind":"Status","status":"Failure","message":"pods \"x\" not found","reason":"NotFound","code":404,"details":{"name":"x","kind":"pods"}}"#,
        );
        assert_eq!(s.code, 404);
        assert_eq!(s.reason, "NotFound");
        assert_eq!(s.details, Some(json!({"name":"x","kind":"pods"})));
        assert_eq!(s.to_string(), "pods \"x\" not found (404 NotFound)");
        let t = status_of(502, b"upstream broke\n");
        assert_eq!(t.reason, "BadGateway");
        assert_eq!(t.message, "upstream broke");
        let e = Error::Api(status_of(409, br#"{"reason":"AlreadyExists","code":409}"#));
        assert!(e.is_already_exists() && e.is_conflict() && !e.is_transient());
        assert!(Error::Api(status_of(503, b"")).is_transient());
        assert!(Error::Api(status_of(410, b"[]")).is_gone());
    }

    #[test]
    fn rejects_non_http_server_and_bad_pem() {
        let mut cfg = Kubeconfig {
            server: "tcp://x".into(),
            ..Default::default()
        };
        assert!(matches!(Client::new(&cfg), Err(Error::Kubeconfig(_))));
        cfg.server = "https://127.0.0.1:1".into();
        cfg.ca_pem = Some(b"not a pem".to_vec());
        assert!(matches!(Client::new(&cfg), Err(Error::Tls(_))));
        cfg.ca_pem = None;
        cfg.client_cert_pem = Some(b"junk".to_vec());
        cfg.client_key_pem = Some(b"junk".to_vec());
        assert!(matches!(Client::new(&cfg), Err(Error::Tls(_))));
    }
}
