//! The HTTP side: configuration, endpoint discovery (ping, scheme), authentication
//! (Basic, bearer tokens with a cache), request sending with one re-authentication on
//! 401, and mapping of registry error answers.

use std::collections::HashMap;
use std::error::Error as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use reqwest::header::{HeaderMap, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use sha2::{Digest as _, Sha256};
use tracing::debug;
use url::Url;

use crate::auth::{parse_challenges, Challenge, TokenResponse};
use crate::credentials::{
    default_docker_config_dir, is_docker_hub, lookup_credentials, Credentials,
};
use crate::error::{parse_error_body, render_entries, ErrorEntry, RegistryError};

/// Host serving Docker Hub's registry API.
const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";

/// Settings of a [`RegistryClient`].
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Registries reachable over plain HTTP (or HTTPS without certificate checks):
    /// `host[:port]`, a bare host (any port) or a CIDR (`10.0.0.0/8`). Loopback
    /// registries (`127.0.0.0/8`, `::1`, `localhost`) always are.
    pub insecure_registries: Vec<String>,
    /// Extra PEM CA certificates trusted besides the system and webpki roots.
    pub ca_file: Option<PathBuf>,
    /// Docker client configuration directory whose `config.json` supplies credentials
    /// when none are given. `None`: `$DOCKER_CONFIG`, else `~/.docker`.
    pub docker_config_dir: Option<PathBuf>,
    /// `User-Agent` sent to registries.
    pub user_agent: String,
    /// Layers downloaded at once.
    pub max_concurrent_downloads: usize,
    /// Layers uploaded at once.
    pub max_concurrent_uploads: usize,
    /// Blobs larger than this are uploaded in chunks (`PATCH`) of this size.
    pub upload_chunk_size: u64,
    /// Give up connecting after this long.
    pub connect_timeout: Duration,
    /// Give up on a transfer that makes no progress for this long.
    pub read_timeout: Duration,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            insecure_registries: Vec::new(),
            ca_file: None,
            docker_config_dir: None,
            user_agent: format!("berth/{}", env!("CARGO_PKG_VERSION")),
            max_concurrent_downloads: 3,
            max_concurrent_uploads: 5,
            upload_chunk_size: 64 << 20,
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(120),
        }
    }
}

/// Splits `host[:port]` / `[v6]:port` into the host part.
pub(crate) fn host_part(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match registry.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => registry,
    }
}

fn cidr_contains(cidr: &str, ip: IpAddr) -> bool {
    let Some((net, bits)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            (u32::from(n) & mask) == (u32::from(i) & mask)
        }
        (IpAddr::V6(n), IpAddr::V6(i)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            (u128::from(n) & mask) == (u128::from(i) & mask)
        }
        _ => false,
    }
}

/// Whether `registry` (`host[:port]`) may be used without TLS verification: loopback,
/// or listed in `insecure` (exact name, bare host, or CIDR).
pub(crate) fn is_insecure(registry: &str, insecure: &[String]) -> bool {
    let host = host_part(registry);
    let ip = host.parse::<IpAddr>().ok();
    if host.eq_ignore_ascii_case("localhost")
        || host.to_ascii_lowercase().ends_with(".localhost")
        || ip.is_some_and(|i| i.is_loopback())
    {
        return true;
    }
    insecure.iter().any(|entry| {
        let e = entry.trim();
        let e = e
            .strip_prefix("http://")
            .or_else(|| e.strip_prefix("https://"))
            .unwrap_or(e)
            .trim_end_matches('/');
        e.eq_ignore_ascii_case(registry)
            || e.eq_ignore_ascii_case(host)
            || ip.is_some_and(|i| cidr_contains(e, i))
    })
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The causes of a transport error, without reqwest's own `for url (...)` wrapper.
fn describe(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut src = e.source();
    while let Some(s) = src {
        parts.push(s.to_string());
        src = s.source();
    }
    if parts.is_empty() {
        if e.is_timeout() {
            return "timeout".into();
        }
        return e.to_string();
    }
    // Nested errors often repeat their cause in their own text: keep the informative ones.
    let mut out: Vec<String> = Vec::new();
    for p in parts {
        if !out.iter().any(|o| o.contains(&p)) {
            out.retain(|o| !p.contains(o.as_str()));
            out.push(p);
        }
    }
    out.join(": ")
}

fn go_method(m: &Method) -> String {
    let s = m.as_str().to_lowercase();
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => s,
    }
}

/// Maps a reqwest error to [`RegistryError::Unreachable`] (connect failures) or
/// [`RegistryError::Transport`].
pub(crate) fn transport_error(method: &Method, url: &Url, e: &reqwest::Error) -> RegistryError {
    let message = describe(e);
    let (method, url) = (go_method(method), redact(url));
    if e.is_connect() || (e.is_timeout() && !e.is_body()) {
        RegistryError::Unreachable {
            method,
            url,
            message,
        }
    } else {
        RegistryError::Transport {
            method,
            url,
            message,
        }
    }
}

/// A URL without credentials or query (upload locations carry state tokens).
fn redact(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_password(None);
    let _ = u.set_username("");
    u.set_query(None);
    u.to_string()
}

/// A registry's address and authentication scheme, found by pinging it.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    base: Url,
    insecure: bool,
    challenge: Challenge,
}

#[derive(Debug, Clone)]
struct CachedToken {
    header: String,
    expires: Instant,
}

struct Inner {
    cfg: RegistryConfig,
    /// Extra trusted CAs from `ca_file` (read and checked in `new`).
    extra_roots: Vec<reqwest::Certificate>,
    /// Built on first use: loading the system roots is start-up work a daemon that
    /// never talks to a registry should not pay.
    verified: OnceLock<reqwest::Client>,
    unverified: OnceLock<reqwest::Client>,
    endpoints: Mutex<HashMap<String, Endpoint>>,
    tokens: Mutex<HashMap<String, CachedToken>>,
}

/// An OCI Distribution client: pulls images into and pushes images out of an
/// [`ImageStore`](image_store::ImageStore). Cheap to clone (`Send + Sync`); clones share
/// the connection pool and the token cache.
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("cfg", &self.inner.cfg)
            .finish_non_exhaustive()
    }
}

/// Outcome of a successful [`RegistryClient::login`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginOutcome {
    /// A refresh token the registry's token server issued, to be stored instead of the
    /// password (Docker's `IdentityToken`).
    pub identity_token: Option<String>,
}

impl RegistryClient {
    /// Builds a client (TLS with the webpki and system roots plus `ca_file`).
    pub fn new(cfg: RegistryConfig) -> Result<Self, RegistryError> {
        let mut extra = Vec::new();
        if let Some(ca) = &cfg.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| RegistryError::io(format!("reading {}", ca.display()), e))?;
            extra = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| RegistryError::Config(format!("{}: {e}", ca.display())))?;
            if extra.is_empty() {
                return Err(RegistryError::Config(format!(
                    "{}: no PEM certificate found",
                    ca.display()
                )));
            }
        }
        Ok(RegistryClient {
            inner: Arc::new(Inner {
                extra_roots: extra,
                verified: OnceLock::new(),
                unverified: OnceLock::new(),
                cfg,
                endpoints: Mutex::new(HashMap::new()),
                tokens: Mutex::new(HashMap::new()),
            }),
        })
    }

    fn build_http(&self, insecure: bool) -> reqwest::Client {
        let cfg = &self.inner.cfg;
        let mut b = reqwest::Client::builder()
            .user_agent(cfg.user_agent.clone())
            .connect_timeout(cfg.connect_timeout)
            .read_timeout(cfg.read_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .danger_accept_invalid_certs(insecure);
        for c in &self.inner.extra_roots {
            b = b.add_root_certificate(c.clone());
        }
        b.build().unwrap_or_else(|e| {
            // Only a broken TLS backend gets here; a default client still works.
            tracing::warn!(error = %e, "building the registry HTTP client; using defaults");
            reqwest::Client::new()
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RegistryConfig {
        &self.inner.cfg
    }

    fn http(&self, insecure: bool) -> &reqwest::Client {
        let cell = if insecure {
            &self.inner.unverified
        } else {
            &self.inner.verified
        };
        cell.get_or_init(|| self.build_http(insecure))
    }

    /// Credentials for `registry`: `explicit` when given, else what Docker filed in the
    /// configured `config.json` (see [`lookup_credentials`]).
    pub async fn credentials_for(
        &self,
        registry: &str,
        explicit: Option<Credentials>,
    ) -> Result<Option<Credentials>, RegistryError> {
        if explicit.is_some() {
            return Ok(explicit);
        }
        let Some(dir) = self
            .inner
            .cfg
            .docker_config_dir
            .clone()
            .or_else(default_docker_config_dir)
        else {
            return Ok(None);
        };
        let registry = registry.to_string();
        tokio::task::spawn_blocking(move || lookup_credentials(&dir, &registry))
            .await
            .map_err(|e| RegistryError::Credentials(format!("lookup task failed: {e}")))?
    }

    /// Pings `registry` (cached): picks the scheme and learns its challenge. HTTPS is
    /// tried first; insecure (and loopback) registries fall back to plain HTTP.
    pub(crate) async fn endpoint(&self, registry: &str) -> Result<Endpoint, RegistryError> {
        if let Some(ep) = lock(&self.inner.endpoints).get(registry) {
            return Ok(ep.clone());
        }
        let ep = self.ping(registry).await?;
        lock(&self.inner.endpoints).insert(registry.to_string(), ep.clone());
        Ok(ep)
    }

    async fn ping(&self, registry: &str) -> Result<Endpoint, RegistryError> {
        let host = if is_docker_hub(registry) {
            DOCKER_HUB_API_HOST
        } else {
            registry
        };
        let insecure = is_insecure(registry, &self.inner.cfg.insecure_registries);
        let schemes: &[&str] = if insecure {
            &["https", "http"]
        } else {
            &["https"]
        };
        let mut last_err = None;
        for scheme in schemes {
            let base = Url::parse(&format!("{scheme}://{host}/"))
                .map_err(|e| RegistryError::InvalidReference(format!("{registry}: {e}")))?;
            let url = base
                .join("v2/")
                .map_err(|e| RegistryError::Protocol(e.to_string()))?;
            let resp = match self.http(insecure).get(url.clone()).send().await {
                Ok(r) => r,
                Err(e) => {
                    debug!(%url, error = %describe(&e), "ping failed");
                    last_err = Some(transport_error(&Method::GET, &url, &e));
                    continue;
                }
            };
            let challenge = match resp.status() {
                s if s.is_success() => Challenge::None,
                StatusCode::UNAUTHORIZED => challenge_of(resp.headers()).ok_or_else(|| {
                    RegistryError::Protocol(format!(
                        "{url}: 401 without a usable WWW-Authenticate challenge"
                    ))
                })?,
                s => {
                    return Err(RegistryError::Registry {
                        status: s.as_u16(),
                        message: format!("{url}: unexpected status {s} (not a v2 registry?)"),
                    })
                }
            };
            debug!(registry, %base, ?challenge, "registry endpoint");
            return Ok(Endpoint {
                base,
                insecure,
                challenge,
            });
        }
        Err(last_err.unwrap_or_else(|| RegistryError::Protocol("no endpoint".into())))
    }

    fn forget_endpoint(&self, registry: &str) {
        lock(&self.inner.endpoints).remove(registry);
    }

    /// Opens an authenticated session on `repository` (a path such as `library/busybox`)
    /// of `registry` with `scopes` (e.g. `repository:library/busybox:pull`).
    pub(crate) async fn session(
        &self,
        registry: &str,
        scopes: Vec<String>,
        creds: Option<Credentials>,
    ) -> Result<Session, RegistryError> {
        let ep = match self.endpoint(registry).await {
            Ok(ep) => ep,
            Err(e) => {
                self.forget_endpoint(registry);
                return Err(e);
            }
        };
        let sess = Session {
            client: self.clone(),
            registry: registry.to_string(),
            base: ep.base.clone(),
            insecure: ep.insecure,
            creds,
            scopes: Mutex::new(scopes),
            challenge: Mutex::new(ep.challenge.clone()),
            header: Mutex::new(None),
        };
        sess.authorize(&ep.challenge, false).await?;
        Ok(sess)
    }

    /// Fetches a bearer token. Errors from the token server become
    /// [`RegistryError::Unauthorized`].
    async fn fetch_token(
        &self,
        registry: &str,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        creds: Option<&Credentials>,
        offline: bool,
    ) -> Result<TokenResponse, RegistryError> {
        let mut url = Url::parse(realm)
            .map_err(|e| RegistryError::Protocol(format!("invalid token realm {realm:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(RegistryError::Protocol(format!(
                "invalid token realm {realm:?}"
            )));
        }
        let realm_host = url.host_str().unwrap_or("").to_string();
        let realm_insecure = is_insecure(
            &match url.port() {
                Some(p) => format!("{realm_host}:{p}"),
                None => realm_host.clone(),
            },
            &self.inner.cfg.insecure_registries,
        );
        let http = self.http(realm_insecure);
        let req = match creds {
            Some(Credentials::IdentityToken(refresh)) => {
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                form.append_pair("grant_type", "refresh_token")
                    .append_pair("refresh_token", refresh)
                    .append_pair("client_id", "berth");
                if let Some(s) = service {
                    form.append_pair("service", s);
                }
                if !scopes.is_empty() {
                    form.append_pair("scope", &scopes.join(" "));
                }
                if offline {
                    form.append_pair("access_type", "offline");
                }
                http.post(url.clone())
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(form.finish())
            }
            other => {
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    for s in scopes {
                        q.append_pair("scope", s);
                    }
                    if let Some(Credentials::Basic { username, .. }) = other {
                        q.append_pair("account", username);
                    }
                    if offline {
                        q.append_pair("offline_token", "true")
                            .append_pair("client_id", "berth");
                    }
                }
                let mut r = http.get(url.clone());
                if let Some(Credentials::Basic { username, password }) = other {
                    r = r.basic_auth(username, Some(password));
                }
                r
            }
        };
        let method = if matches!(creds, Some(Credentials::IdentityToken(_))) {
            Method::POST
        } else {
            Method::GET
        };
        let resp = req
            .send()
            .await
            .map_err(|e| transport_error(&method, &url, &e))?;
        let status = resp.status();
        let body = read_limited(resp, 1 << 20, &method, &url).await?;
        if !status.is_success() {
            let entries = parse_error_body(&body);
            let message = match render_entries(&entries) {
                Some(m) if m.starts_with("unauthorized") || m.starts_with("denied") => m,
                Some(m) => format!("unauthorized: {m}"),
                None => "unauthorized: authentication required".to_string(),
            };
            return Err(match status {
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::BAD_REQUEST => {
                    RegistryError::Unauthorized {
                        registry: registry.to_string(),
                        message,
                    }
                }
                s => RegistryError::Registry {
                    status: s.as_u16(),
                    message: format!("token server {}: {s}", redact(&url)),
                },
            });
        }
        let tr: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| RegistryError::Protocol(format!("invalid token response: {e}")))?;
        if tr.bearer().is_none() {
            return Err(RegistryError::Protocol(
                "token response without a token".into(),
            ));
        }
        Ok(tr)
    }

    /// `docker login`: checks `creds` against `registry` (a registry host such as
    /// `127.0.0.1:5000`, or a server address such as `https://index.docker.io/v1/`):
    /// ping, then Basic auth on `/v2/` or a token request, as the registry asks. A
    /// registry without authentication accepts anything.
    pub async fn login(
        &self,
        registry: &str,
        creds: &Credentials,
    ) -> Result<LoginOutcome, RegistryError> {
        let registry = normalize_registry(registry);
        self.forget_endpoint(&registry);
        let ep = self.endpoint(&registry).await?;
        match &ep.challenge {
            Challenge::None => Ok(LoginOutcome::default()),
            Challenge::Basic => {
                let Credentials::Basic { username, password } = creds else {
                    return Err(RegistryError::Credentials(
                        "the registry wants a user name and password".into(),
                    ));
                };
                let url = ep
                    .base
                    .join("v2/")
                    .map_err(|e| RegistryError::Protocol(e.to_string()))?;
                let resp = self
                    .http(ep.insecure)
                    .get(url.clone())
                    .basic_auth(username, Some(password))
                    .send()
                    .await
                    .map_err(|e| transport_error(&Method::GET, &url, &e))?;
                let s = resp.status();
                if s.is_success() {
                    Ok(LoginOutcome::default())
                } else {
                    Err(RegistryError::LoginFailed {
                        url: url.to_string(),
                        status: format!("{} {}", s.as_u16(), s.canonical_reason().unwrap_or(""))
                            .trim_end()
                            .to_string(),
                    })
                }
            }
            Challenge::Bearer { realm, service, .. } => {
                if let Credentials::RegistryToken(_) = creds {
                    return Ok(LoginOutcome::default());
                }
                let tr = self
                    .fetch_token(&registry, realm, service.as_deref(), &[], Some(creds), true)
                    .await?;
                Ok(LoginOutcome {
                    identity_token: tr.refresh_token.filter(|t| !t.is_empty()),
                })
            }
        }
    }
}

/// `https://index.docker.io/v1/` → `docker.io`; `http://h:5000/v2/` → `h:5000`.
pub(crate) fn normalize_registry(registry: &str) -> String {
    let s = registry.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or("").to_string();
    if host.is_empty() || is_docker_hub(&host) {
        image_store::DEFAULT_DOMAIN.to_string()
    } else {
        host
    }
}

fn challenge_of(headers: &HeaderMap) -> Option<Challenge> {
    parse_challenges(
        headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    )
}

/// Reads a whole (small) response body, refusing more than `limit` bytes.
pub(crate) async fn read_limited(
    mut resp: Response,
    limit: u64,
    method: &Method,
    url: &Url,
) -> Result<Vec<u8>, RegistryError> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(RegistryError::Protocol(format!(
            "{}: response larger than {limit} bytes",
            redact(url)
        )));
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| transport_error(method, url, &e))?
    {
        if out.len() as u64 + chunk.len() as u64 > limit {
            return Err(RegistryError::Protocol(format!(
                "{}: response larger than {limit} bytes",
                redact(url)
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// An authenticated conversation with one registry.
pub(crate) struct Session {
    client: RegistryClient,
    registry: String,
    base: Url,
    insecure: bool,
    creds: Option<Credentials>,
    scopes: Mutex<Vec<String>>,
    challenge: Mutex<Challenge>,
    header: Mutex<Option<String>>,
}

/// The status and error entries of a failed answer.
#[derive(Debug)]
pub(crate) struct Failure {
    pub status: StatusCode,
    pub entries: Vec<ErrorEntry>,
}

impl Failure {
    /// Reads the error body of `resp`.
    pub async fn read(resp: Response) -> Failure {
        let status = resp.status();
        let mut body = Vec::new();
        let mut resp = resp;
        while let Ok(Some(c)) = resp.chunk().await {
            if body.len() + c.len() > 64 << 10 {
                break;
            }
            body.extend_from_slice(&c);
        }
        Failure {
            status,
            entries: parse_error_body(&body),
        }
    }

    /// Whether an entry has this code.
    pub fn has_code(&self, code: &str) -> bool {
        self.entries.iter().any(|e| e.code == code)
    }

    /// `<code>: <message>` text, or `fallback`.
    pub fn message(&self, fallback: &str) -> String {
        render_entries(&self.entries).unwrap_or_else(|| fallback.to_string())
    }
}

impl Session {
    /// Whether requests go out without credentials.
    pub fn anonymous(&self) -> bool {
        self.creds.is_none()
    }

    /// `base` joined with `path` (e.g. `v2/library/busybox/manifests/latest`).
    pub fn url(&self, path: &str) -> Result<Url, RegistryError> {
        self.base
            .join(path)
            .map_err(|e| RegistryError::Protocol(format!("bad URL path {path:?}: {e}")))
    }

    /// Resolves an upload `Location` (absolute or relative to the registry).
    pub fn location(&self, loc: &str) -> Result<Url, RegistryError> {
        let u = self
            .base
            .join(loc)
            .map_err(|e| RegistryError::Protocol(format!("bad Location {loc:?}: {e}")))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(RegistryError::Protocol(format!("bad Location {loc:?}")));
        }
        Ok(u)
    }

    /// The HTTP client for this registry.
    pub fn http(&self) -> &reqwest::Client {
        self.client.http(self.insecure)
    }

    fn token_key(&self, realm: &str, scopes: &[String]) -> String {
        let mut h = Sha256::new();
        match &self.creds {
            None => h.update(b"anon"),
            Some(Credentials::Basic { username, password }) => {
                h.update(b"basic\0");
                h.update(username.as_bytes());
                h.update(b"\0");
                h.update(password.as_bytes());
            }
            Some(Credentials::IdentityToken(t)) => {
                h.update(b"identity\0");
                h.update(t.as_bytes());
            }
            Some(Credentials::RegistryToken(t)) => {
                h.update(b"registry\0");
                h.update(t.as_bytes());
            }
        }
        let mut sorted = scopes.to_vec();
        sorted.sort();
        format!("{realm}|{}|{}", sorted.join(" "), hex::encode(h.finalize()))
    }

    /// Computes the `Authorization` header for `challenge` (fetching a token when needed;
    /// `refresh` bypasses the token cache).
    async fn authorize(&self, challenge: &Challenge, refresh: bool) -> Result<(), RegistryError> {
        let header = match (challenge, &self.creds) {
            (_, Some(Credentials::RegistryToken(t))) => Some(format!("Bearer {t}")),
            (Challenge::None, _) => None,
            (Challenge::Basic, Some(Credentials::Basic { username, password })) => Some(format!(
                "Basic {}",
                STANDARD.encode(format!("{username}:{password}"))
            )),
            (Challenge::Basic, _) => None,
            (Challenge::Bearer { realm, service, .. }, creds) => {
                let scopes = lock(&self.scopes).clone();
                let key = self.token_key(realm, &scopes);
                let cached = if refresh {
                    None
                } else {
                    lock(&self.client.inner.tokens)
                        .get(&key)
                        .filter(|t| t.expires > Instant::now())
                        .map(|t| t.header.clone())
                };
                match cached {
                    Some(h) => Some(h),
                    None => {
                        let tr = self
                            .client
                            .fetch_token(
                                &self.registry,
                                realm,
                                service.as_deref(),
                                &scopes,
                                creds.as_ref(),
                                false,
                            )
                            .await?;
                        let h = format!("Bearer {}", tr.bearer().unwrap_or_default());
                        let mut cache = lock(&self.client.inner.tokens);
                        let now = Instant::now();
                        cache.retain(|_, t| t.expires > now);
                        cache.insert(
                            key,
                            CachedToken {
                                header: h.clone(),
                                expires: now + tr.lifetime(),
                            },
                        );
                        Some(h)
                    }
                }
            }
        };
        *lock(&self.header) = header;
        Ok(())
    }

    /// Sends a request built by `build` with the session's authorization. On a 401 the
    /// challenge it carries is honoured once (new scope, fresh token) and the request is
    /// rebuilt and resent. Transport errors are mapped; HTTP error statuses are returned
    /// as responses for the caller to interpret.
    pub async fn send<F>(
        &self,
        method: Method,
        url: &Url,
        build: F,
    ) -> Result<Response, RegistryError>
    where
        F: Fn(&reqwest::Client) -> Result<RequestBuilder, RegistryError>,
    {
        let mut retried = false;
        loop {
            let mut rb = build(self.http())?;
            if let Some(h) = lock(&self.header).clone() {
                rb = rb.header(AUTHORIZATION, h);
            }
            let resp = rb
                .send()
                .await
                .map_err(|e| transport_error(&method, url, &e))?;
            if resp.status() != StatusCode::UNAUTHORIZED || retried {
                return Ok(resp);
            }
            retried = true;
            let Some(ch) = challenge_of(resp.headers()) else {
                return Ok(resp);
            };
            match &ch {
                Challenge::Basic => {
                    let had = matches!(*lock(&self.challenge), Challenge::Basic);
                    match &self.creds {
                        None => return Err(RegistryError::NoBasicAuthCredentials),
                        Some(Credentials::Basic { .. }) if had => return Ok(resp),
                        _ => {}
                    }
                }
                Challenge::Bearer {
                    scope: Some(scope), ..
                } => {
                    let mut scopes = lock(&self.scopes);
                    for s in scope.split(' ').filter(|s| !s.is_empty()) {
                        if !scopes.iter().any(|x| x == s) {
                            scopes.push(s.to_string());
                        }
                    }
                }
                _ => {}
            }
            if matches!(self.creds, Some(Credentials::RegistryToken(_))) {
                return Ok(resp);
            }
            *lock(&self.challenge) = ch.clone();
            self.authorize(&ch, true).await?;
        }
    }

    /// Maps a failed answer to the generic errors: 401 → unauthorized, 403 → denied,
    /// anything else → [`RegistryError::Registry`].
    pub fn generic_error(&self, f: &Failure) -> RegistryError {
        match f.status {
            StatusCode::UNAUTHORIZED => {
                if matches!(*lock(&self.challenge), Challenge::Basic) && self.creds.is_none() {
                    return RegistryError::NoBasicAuthCredentials;
                }
                RegistryError::Unauthorized {
                    registry: self.registry.clone(),
                    message: f.message("unauthorized: authentication required"),
                }
            }
            StatusCode::FORBIDDEN => RegistryError::Denied {
                registry: self.registry.clone(),
                message: f.message("denied: requested access to the resource is denied"),
            },
            s => RegistryError::Registry {
                status: s.as_u16(),
                message: f.message(&format!("received unexpected HTTP status: {s}")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_registries() {
        let list = vec![
            "reg.example:5000".to_string(),
            "plain.example".to_string(),
            "10.1.0.0/16".to_string(),
            "fd00::/8".to_string(),
            "http://schemed.example:1/".to_string(),
        ];
        for yes in [
            "127.0.0.1:5000",
            "127.9.9.9",
            "localhost",
            "localhost:5000",
            "x.localhost:1",
            "[::1]:5000",
            "reg.example:5000",
            "plain.example:443",
            "plain.example",
            "10.1.2.3:5000",
            "[fd12::1]:80",
            "schemed.example:1",
        ] {
            assert!(is_insecure(yes, &list), "{yes}");
        }
        for no in [
            "docker.io",
            "reg.example:5001",
            "reg.example",
            "10.2.0.1:5000",
            "128.0.0.1",
            "[fe80::1]:80",
            "localhost.example",
        ] {
            assert!(!is_insecure(no, &list), "{no}");
        }
        assert!(!is_insecure("10.0.0.1", &["10.0.0.0/33".to_string()]));
        assert!(is_insecure("10.0.0.1", &["0.0.0.0/0".to_string()]));
    }

    #[test]
    fn host_parts_and_names() {
        assert_eq!(host_part("a:5000"), "a");
        assert_eq!(host_part("[::1]:5000"), "::1");
        assert_eq!(host_part("a"), "a");
        assert_eq!(
            normalize_registry("https://index.docker.io/v1/"),
            "docker.io"
        );
        assert_eq!(
            normalize_registry("http://127.0.0.1:5000/v2/"),
            "127.0.0.1:5000"
        );
        assert_eq!(normalize_registry("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(normalize_registry(""), "docker.io");
        assert_eq!(go_method(&Method::GET), "Get");
        assert_eq!(go_method(&Method::PATCH), "Patch");
    }

    #[test]
    fn redaction() {
        let u = Url::parse("http://u:p@h:1/v2/x/blobs/uploads/abc?_state=secret").unwrap();
        assert_eq!(redact(&u), "http://h:1/v2/x/blobs/uploads/abc");
    }

    #[test]
    fn bad_ca_file_is_an_error() {
        let d = tempfile::Builder::new()
            .prefix("berth-t-ca-")
            .tempdir()
            .unwrap();
        let p = d.path().join("ca.pem");
        std::fs::write(&p, "not a certificate").unwrap();
        let cfg = RegistryConfig {
            ca_file: Some(p),
            ..Default::default()
        };
        assert!(matches!(
            RegistryClient::new(cfg),
            Err(RegistryError::Config(_))
        ));
        let cfg = RegistryConfig {
            ca_file: Some(d.path().join("missing.pem")),
            ..Default::default()
        };
        assert!(matches!(
            RegistryClient::new(cfg),
            Err(RegistryError::Io { .. })
        ));
        RegistryClient::new(RegistryConfig::default()).unwrap();
    }

    #[tokio::test]
    async fn unreachable_registry() {
        // A port nobody listens on: bind, note it, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = RegistryClient::new(RegistryConfig::default()).unwrap();
        let err = c
            .login(&format!("127.0.0.1:{port}"), &Credentials::basic("a", "b"))
            .await
            .unwrap_err();
        assert!(matches!(err, RegistryError::Unreachable { .. }), "{err:?}");
        assert!(err.to_string().contains("onnection refused"), "{err}");
    }
}
