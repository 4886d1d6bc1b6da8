//! A token-auth gate in front of a test registry: `/token` is a bearer token server
//! (Basic credentials `berth:s3cret`, refresh token `R1`, anonymous tokens), and every
//! other request needs `Bearer good` — else a `WWW-Authenticate: Bearer` challenge —
//! and is forwarded (GET/HEAD) to the upstream registry.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine as _;

pub const SERVICE: &str = "berth-gate";

#[derive(Clone)]
struct GateState {
    upstream: String,
    realm: String,
    log: Arc<Mutex<Vec<String>>>,
    http: reqwest::Client,
}

/// A running gate; its server task is aborted on drop.
pub struct TokenGate {
    /// `127.0.0.1:<port>`.
    pub host: String,
    /// One line per token request: `GET service=… scope=… account=… offline=…` / `POST …`.
    pub log: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TokenGate {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TokenGate {
    pub fn token_requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

pub async fn start_gate(upstream: &str) -> TokenGate {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let log = Arc::new(Mutex::new(Vec::new()));
    let state = GateState {
        upstream: upstream.to_string(),
        realm: format!("http://{addr}/token"),
        log: log.clone(),
        http: reqwest::Client::new(),
    };
    let app = Router::new()
        .route("/token", get(token_get).post(token_post))
        .fallback(proxy)
        .with_state(state);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    TokenGate {
        host: addr.to_string(),
        log,
        task,
    }
}

fn json(status: StatusCode, v: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

async fn token_get(
    State(st): State<GateState>,
    Query(q): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let get = |k: &str| {
        q.iter()
            .filter(|(qk, _)| qk == k)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    st.log.lock().unwrap().push(format!(
        "GET service={} scope={} account={} offline={}",
        get("service"),
        get("scope"),
        get("account"),
        get("offline_token")
    ));
    if get("service") != SERVICE {
        return json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"details": "bad service"}),
        );
    }
    let good = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("berth:s3cret")
    );
    match headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        None => json(
            StatusCode::OK,
            serde_json::json!({"token": "anon", "expires_in": 300}),
        ),
        Some(v) if v == good => {
            let mut body = serde_json::json!({"token": "good", "expires_in": 300});
            if get("offline_token") == "true" {
                body["refresh_token"] = "R1".into();
            }
            json(StatusCode::OK, body)
        }
        Some(_) => json(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"details": "incorrect username or password"}),
        ),
    }
}

async fn token_post(State(st): State<GateState>, body: String) -> Response {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| {
        form.iter()
            .find(|(fk, _)| fk == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    st.log.lock().unwrap().push(format!(
        "POST grant_type={} service={} scope={}",
        get("grant_type"),
        get("service"),
        get("scope")
    ));
    if get("grant_type") == "refresh_token" && get("refresh_token") == "R1" {
        json(
            StatusCode::OK,
            serde_json::json!({"access_token": "good", "expires_in": 300}),
        )
    } else {
        json(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"details": "invalid refresh token"}),
        )
    }
}

async fn proxy(State(st): State<GateState>, req: Request) -> Response {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let authorized = req
        .headers()
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v == "Bearer good");
    if !authorized {
        let repo = path.strip_prefix("/v2/").and_then(|rest| {
            ["/manifests/", "/blobs/"]
                .iter()
                .find_map(|sep| rest.split_once(sep).map(|(r, _)| r.to_string()))
        });
        let mut challenge = format!("Bearer realm=\"{}\",service=\"{SERVICE}\"", st.realm);
        if let Some(r) = repo {
            challenge.push_str(&format!(",scope=\"repository:{r}:pull\""));
        }
        let mut resp = json(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}),
        );
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_str(&challenge).expect("header"),
        );
        return resp;
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let mut up = st.http.request(
        req.method().clone(),
        format!("http://{}{path}", st.upstream),
    );
    if let Some(a) = req.headers().get(header::ACCEPT) {
        up = up.header(header::ACCEPT, a.clone());
    }
    let Ok(r) = up.send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let mut builder = Response::builder().status(r.status().as_u16());
    for h in ["content-type", "docker-content-digest", "content-length"] {
        if let Some(v) = r.headers().get(h) {
            builder = builder.header(h, v.as_bytes());
        }
    }
    let body = r.bytes().await.unwrap_or_default();
    builder.body(Body::from(body)).expect("response")
}
