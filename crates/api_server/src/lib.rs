//! berth's Kubernetes API server: serves the Kubernetes API over HTTPS (client certificates
//! and bearer tokens) from a `kv_store::Store`, so real kubectl and client libraries work
//! against it. Requests are routed by the resource catalogue (`api_resources`), objects
//! are checked against the k8s-openapi types, patches applied by `object_patch`, Tables
//! printed by `resource_tables`, OpenAPI served from `api_schema`, and watches fanned out
//! from one store watch per resource.

mod discovery;
mod garbage_collector;
mod handlers;
mod hooks;
mod objects;
mod registry;
mod routing;
mod selectors;
mod status;
mod watch;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use cluster_pki::{Pki, UserInfo};
use kv_store::Store;
use serde_json::{json, Value};
use tokio::net::TcpListener;

pub use registry::{Change, Registry};
pub use status::ApiError;

/// Largest request body accepted (Kubernetes' limit is 3 MiB for most objects).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// Shared state of a running server.
pub struct ServerState {
    pub registry: Registry,
    pub hubs: watch::Hubs,
    pub pki: Arc<Pki>,
    /// host:port clients should use, reported in `/api`.
    pub advertise: String,
}

/// The authenticated user of a TLS connection, if it presented a client certificate.
#[derive(Clone, Debug, Default)]
struct ConnUser(Option<UserInfo>);

/// How the server is started.
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub advertise: String,
}

impl ServerState {
    pub fn new(store: Arc<dyn Store>, pki: Arc<Pki>, advertise: String) -> Arc<ServerState> {
        Arc::new(ServerState {
            registry: Registry::new(store),
            hubs: watch::Hubs::default(),
            pki,
            advertise,
        })
    }

    /// Creates the namespaces every cluster has and resumes unfinished namespace deletions.
    pub async fn bootstrap(self: &Arc<Self>) -> Result<(), ApiError> {
        let nsdef = api_resources::find("", "v1", "namespaces").expect("served");
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            if self.registry.get(nsdef, None, ns).await.is_ok() {
                continue;
            }
            let mut obj =
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            objects::apply_defaults(nsdef, &mut obj, true);
            objects::init_metadata(nsdef, &mut obj, None);
            match self.registry.create(nsdef, None, &obj).await {
                Ok(_) => {}
                Err(e) if e.code == 409 => {}
                Err(e) => return Err(e),
            }
        }
        self.ensure_kubernetes_service().await?;
        let page = self
            .registry
            .list(nsdef, None, &registry::ListOptions::default())
            .await?;
        for ns in page.items {
            if ns["metadata"]
                .get("deletionTimestamp")
                .is_some_and(|v| !v.is_null())
            {
                if let Some(name) = ns["metadata"]["name"].as_str() {
                    hooks::finalize_namespace(self.clone(), name.to_string());
                }
            }
        }
        garbage_collector::spawn(self.clone());
        Ok(())
    }
}

impl ServerState {
    /// The `kubernetes` service in `default`, at the first service IP, as every cluster has.
    async fn ensure_kubernetes_service(&self) -> Result<(), ApiError> {
        let svc = api_resources::find("", "v1", "services").expect("served");
        if self
            .registry
            .get(svc, Some("default"), "kubernetes")
            .await
            .is_ok()
        {
            return Ok(());
        }
        let port: u16 = self
            .advertise
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(6443);
        let mut obj = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"type": "ClusterIP", "clusterIP": hooks::KUBERNETES_SERVICE_IP,
                     "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]}
        });
        objects::apply_defaults(svc, &mut obj, true);
        objects::init_metadata(svc, &mut obj, Some("default"));
        if let Err(e) = hooks::before_create(self, svc, &mut obj, false).await {
            // The IP is already held (a crash between reserving it and storing the
            // service): store the service anyway, it is the IP's owner.
            tracing::debug!(error = %e, "kubernetes service IP already reserved");
            obj["spec"]["clusterIP"] = json!(hooks::KUBERNETES_SERVICE_IP);
            obj["spec"]["clusterIPs"] = json!([hooks::KUBERNETES_SERVICE_IP]);
        }
        match self.registry.create(svc, Some("default"), &obj).await {
            Ok(_) => Ok(()),
            Err(e) if e.code == 409 => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn authenticate(state: &ServerState, req: &Request) -> Option<UserInfo> {
    if let Some(ConnUser(Some(u))) = req.extensions().get::<ConnUser>() {
        return Some(u.clone());
    }
    let auth = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("bearer "))?;
    state.pki.tokens().authenticate(token.trim())
}

fn query_map(req: &Request) -> HashMap<String, String> {
    axum::extract::Query::<HashMap<String, String>>::try_from_uri(req.uri())
        .map(|q| q.0)
        .unwrap_or_default()
}

async fn dispatch(State(state): State<Arc<ServerState>>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let started = std::time::Instant::now();
    let resp = match handle(&state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    tracing::debug!(%method, %path, status = resp.status().as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "request");
    resp
}

async fn handle(state: &Arc<ServerState>, req: Request) -> Result<Response, ApiError> {
    let route = routing::route(req.uri().path());
    if let Ok(routing::Route::Health(which)) = &route {
        // Readiness includes the store; liveness and health are the process itself.
        let (code, text) = if which == "readyz" {
            match state.registry.store.current_revision().await {
                Ok(_) => (StatusCode::OK, "ok".to_string()),
                Err(e) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("[-]store failed: {e}\nreadyz check failed"),
                ),
            }
        } else {
            (StatusCode::OK, "ok".to_string())
        };
        return Ok((
            code,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            text,
        )
            .into_response());
    }
    let Some(_user) = authenticate(state, &req) else {
        return Err(ApiError::unauthorized());
    };
    let route = route?;
    let method = req.method().clone();
    let query = query_map(&req);
    let headers = req.headers().clone();
    let accept = handlers::parse_accept(&headers, &query)?;
    let ok = |v: Value| Ok(handlers::json_response(StatusCode::OK, &v, &[]));
    use routing::Route;
    match route {
        Route::Health(_) => unreachable!("answered above"),
        Route::Version => ok(discovery::version()),
        Route::ApiVersions => ok(discovery::api_versions(&state.advertise)),
        Route::ApiGroupList => ok(discovery::api_group_list()),
        Route::ApiGroup(g) => {
            discovery::api_group(&g).map_or_else(|| Err(ApiError::path_not_found()), ok)
        }
        Route::ResourceList { group, version } => ok(discovery::resource_list(&group, &version)),
        Route::OpenApiV2 => Ok(raw_json(api_schema::openapi_v2_json())),
        Route::OpenApiV3Index => ok(api_schema::openapi_v3_index().clone()),
        Route::OpenApiV3(p) => {
            let doc = api_schema::openapi_v3_json(&p).ok_or_else(ApiError::path_not_found)?;
            let mut resp = raw_json(doc);
            if query.contains_key("hash") {
                resp.headers_mut().insert(
                    header::CACHE_CONTROL,
                    header::HeaderValue::from_static("public, immutable"),
                );
            }
            Ok(resp)
        }
        Route::Resource(t) => {
            let body = if matches!(
                method,
                Method::POST | Method::PUT | Method::PATCH | Method::DELETE
            ) {
                let limited = http_body_util::Limited::new(req.into_body(), MAX_BODY);
                match http_body_util::BodyExt::collect(limited).await {
                    Ok(c) => c.to_bytes(),
                    Err(e) => {
                        if e.downcast_ref::<http_body_util::LengthLimitError>()
                            .is_some()
                        {
                            return Err(ApiError::too_large());
                        }
                        return Err(ApiError::bad_request(format!("reading request body: {e}")));
                    }
                }
            } else {
                bytes::Bytes::new()
            };
            let (headers, body) = transcode_protobuf(headers, body)?;
            resource(state, &t, &method, &query, &headers, &body, accept).await
        }
    }
}

/// Bodies in Kubernetes' protobuf encoding (what Go clientsets, and so typed kubectl
/// commands, send) become the equivalent JSON, so every handler reads JSON.
fn transcode_protobuf(
    mut headers: axum::http::HeaderMap,
    body: bytes::Bytes,
) -> Result<(axum::http::HeaderMap, bytes::Bytes), ApiError> {
    let is_proto = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.split(';').next().unwrap_or("").trim() == proto_codec::MEDIA_TYPE);
    if !is_proto {
        return Ok((headers, body));
    }
    let value = proto_codec::decode_object(&body)
        .map_err(|e| ApiError::bad_request(format!("unable to decode protobuf body: {e}")))?;
    let json = serde_json::to_vec(&value).map_err(|e| ApiError::internal(e.to_string()))?;
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Ok((headers, bytes::Bytes::from(json)))
}

fn raw_json(bytes: &'static [u8]) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        bytes,
    )
        .into_response()
}

async fn resource(
    state: &Arc<ServerState>,
    t: &routing::Target,
    method: &Method,
    q: &HashMap<String, String>,
    headers: &axum::http::HeaderMap,
    body: &[u8],
    accept: handlers::Accept,
) -> Result<Response, ApiError> {
    if t.def.namespaced && t.namespace.is_none() && !(method == Method::GET && t.name.is_none()) {
        return Err(ApiError::path_not_found());
    }
    match (&t.name, t.subresource.as_deref(), method) {
        (None, None, &Method::GET) => handlers::list(state, t, q, accept).await,
        (None, None, &Method::POST) => handlers::create(state, t, q, headers, body).await,
        (None, None, &Method::DELETE) => handlers::delete_collection(state, t, q, body).await,
        (Some(n), None, &Method::GET) => handlers::get(state, t, n, accept).await,
        (Some(n), None | Some("status"), &Method::PUT) => {
            handlers::update(state, t, n, q, headers, body).await
        }
        (Some(n), None | Some("status"), &Method::PATCH) => {
            handlers::patch(state, t, n, q, headers, body).await
        }
        (Some(n), Some("status"), &Method::GET) => handlers::get(state, t, n, accept).await,
        (Some(n), None, &Method::DELETE) => handlers::delete(state, t, n, q, body).await,
        (Some(n), Some("scale"), m)
            if m == Method::GET || m == Method::PUT || m == Method::PATCH =>
        {
            handlers::scale(state, t, n, m, headers, body, q).await
        }
        (Some(n), Some("binding"), &Method::POST) => handlers::bind(state, t, n, body).await,
        (Some(n), Some("eviction"), &Method::POST) => handlers::evict(state, t, n, body).await,
        (Some(n), Some("finalize"), &Method::PUT) => handlers::finalize(state, t, n, body).await,
        (Some(n), Some("log"), &Method::GET) => {
            let pod = state.registry.get(t.def, t.namespace.as_deref(), n).await?;
            match pod["spec"]["nodeName"].as_str().filter(|s| !s.is_empty()) {
                None => Err(ApiError::bad_request(format!(
                    "pod {n} does not have a host assigned"
                ))),
                Some(node) => Err(ApiError::unavailable(format!(
                    "the node agent of node {node:?} does not serve logs yet"
                ))),
            }
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// The axum router of the API (without TLS; `serve` adds it).
pub fn router(state: Arc<ServerState>) -> axum::Router {
    axum::Router::new().fallback(dispatch).with_state(state)
}

/// Accepts TLS connections and serves the API on them (HTTP/2 and HTTP/1.1).
pub async fn serve(listener: TcpListener, state: Arc<ServerState>) -> std::io::Result<()> {
    let tls = state
        .pki
        .server_config()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let app = router(state);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(
                std::time::Duration::from_secs(10),
                acceptor.accept(tcp),
            )
            .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let user = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| cluster_pki::user_from_client_cert(c.as_ref()));
            let svc = app.layer(axum::Extension(ConnUser(user)));
            let hyper_svc = hyper_util::service::TowerToHyperService::new(svc);
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            if let Err(e) = builder
                .serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(tls), hyper_svc)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        });
    }
}
