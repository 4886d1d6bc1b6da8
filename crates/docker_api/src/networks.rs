//! `/networks/...` endpoints: the built-in `host` and `none`, and bridge
//! networks (the default one and user-defined ones).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{json, Value};

use crate::{json_response, ok_json, ApiError, ApiResult, AppState};

fn created(unix: u64) -> String {
    chrono::DateTime::from_timestamp(unix as i64, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Stable ids for the two built-in networks.
fn builtin_id(name: &str) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for b in name.bytes().cycle().take(32) {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn builtin(name: &str) -> Value {
    json!({
        "Name": name, "Id": builtin_id(name), "Created": "0001-01-01T00:00:00Z",
        "Scope": "local", "Driver": if name == "none" { "null" } else { "host" },
        "EnableIPv6": false,
        "IPAM": { "Driver": "default", "Options": Value::Null, "Config": [] },
        "Internal": false, "Attachable": false, "Ingress": false,
        "ConfigFrom": { "Network": "" }, "ConfigOnly": false,
        "Containers": {}, "Options": {}, "Labels": {},
    })
}

fn network_json(engine: &AppState, n: &container_network::Network) -> Value {
    let mut containers = serde_json::Map::new();
    for ep in &n.endpoints {
        let name = engine
            .container(&ep.container_id)
            .map(|c| c.name)
            .unwrap_or_default();
        containers.insert(
            ep.container_id.clone(),
            json!({
                "Name": name,
                "EndpointID": format!("{}{}", &ep.container_id[..32], &n.id[..32]),
                "MacAddress": ep.mac,
                "IPv4Address": format!("{}/{}", ep.ip, ep.prefix_len),
                "IPv6Address": "",
            }),
        );
    }
    let mut options = serde_json::Map::new();
    options.insert("com.docker.network.bridge.name".into(), json!(n.bridge));
    if n.is_default {
        options.insert(
            "com.docker.network.bridge.default_bridge".into(),
            json!("true"),
        );
    }
    json!({
        "Name": n.name, "Id": n.id, "Created": created(n.created_unix),
        "Scope": "local", "Driver": "bridge", "EnableIPv6": false,
        "IPAM": { "Driver": "default", "Options": Value::Null,
                  "Config": [{ "Subnet": n.subnet, "Gateway": n.gateway.to_string() }] },
        "Internal": false, "Attachable": false, "Ingress": false,
        "ConfigFrom": { "Network": "" }, "ConfigOnly": false,
        "Containers": containers, "Options": options, "Labels": {},
    })
}

/// Whether a network passes `filters` (`name`, `id`, `driver`, `type`, `scope`).
fn passes(v: &Value, filters: &HashMap<String, Vec<String>>) -> bool {
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    filters.iter().all(|(key, values)| {
        values.is_empty()
            || values.iter().any(|want| match key.as_str() {
                "name" => s("Name").contains(want.as_str()),
                "id" => s("Id").starts_with(want.as_str()),
                "driver" => &s("Driver") == want,
                "scope" => &s("Scope") == want,
                "type" => {
                    let builtin = matches!(s("Name").as_str(), "host" | "none" | "bridge");
                    (want == "builtin") == builtin
                }
                _ => true,
            })
    })
}

pub(crate) async fn list(
    State(engine): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
) -> ApiResult {
    let filters = crate::containers::parse_filters(&q)?;
    let mut out: Vec<Value> = engine
        .network_list()
        .await
        .iter()
        .map(|n| network_json(&engine, n))
        .collect();
    out.push(builtin("host"));
    out.push(builtin("none"));
    out.retain(|v| passes(v, &filters));
    ok_json(&out)
}

pub(crate) async fn inspect(State(engine): State<AppState>, Path(id): Path<String>) -> ApiResult {
    for b in ["host", "none"] {
        if id == b || builtin_id(b).starts_with(&id) && id.len() >= 12 {
            return ok_json(&builtin(b));
        }
    }
    let n = engine.network_get(&id).await?;
    ok_json(&network_json(&engine, &n))
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct CreateBody {
    name: String,
    #[serde(default)]
    driver: Option<String>,
    #[serde(default, rename = "IPAM")]
    ipam: Option<Ipam>,
    #[serde(default)]
    internal: bool,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Ipam {
    #[serde(default)]
    config: Option<Vec<HashMap<String, String>>>,
}

pub(crate) async fn create(State(engine): State<AppState>, body: Bytes) -> ApiResult {
    let b: CreateBody = crate::parse_json(&body)?;
    if b.name.is_empty() {
        return Err(ApiError::bad_request("network name must not be empty"));
    }
    match b.driver.as_deref() {
        None | Some("") | Some("bridge") => {}
        Some(d) => {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                format!("could not find plugin {d} in v1 plugin registry: plugin not found"),
            ))
        }
    }
    if b.internal {
        return Err(ApiError::bad_request(
            "internal networks are not supported yet",
        ));
    }
    let configs = b.ipam.and_then(|i| i.config).unwrap_or_default();
    if configs.len() > 1 {
        return Err(ApiError::bad_request(
            "only one IPv4 subnet per network is supported",
        ));
    }
    let subnet = configs.first().and_then(|c| c.get("Subnet").cloned());
    let gateway = configs
        .first()
        .and_then(|c| c.get("Gateway").cloned())
        .filter(|g| !g.is_empty());
    let n = engine.network_create(&b.name, subnet.as_deref()).await?;
    if let Some(g) = gateway {
        if g != n.gateway.to_string() {
            // The gateway is always the subnet's first address for now.
            let _ = engine.network_remove(&n.name).await;
            return Err(ApiError::bad_request(format!(
                "custom gateway {g} is not supported: the gateway of {} is {}",
                n.subnet, n.gateway
            )));
        }
    }
    Ok(json_response(
        StatusCode::CREATED,
        &json!({ "Id": n.id, "Warning": "" }),
    ))
}

pub(crate) async fn remove(State(engine): State<AppState>, Path(id): Path<String>) -> ApiResult {
    if id == "host" || id == "none" {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!("{id} is a pre-defined network and cannot be removed"),
        ));
    }
    engine.network_remove(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ConnectBody {
    container: String,
    #[serde(default)]
    endpoint_config: Option<EndpointConfig>,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct EndpointConfig {
    #[serde(default)]
    aliases: Option<Vec<String>>,
}

pub(crate) async fn connect(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let b: ConnectBody = crate::parse_json(&body)?;
    let aliases = b
        .endpoint_config
        .and_then(|e| e.aliases)
        .unwrap_or_default();
    engine.network_connect(&id, &b.container, aliases).await?;
    Ok(StatusCode::OK.into_response())
}

pub(crate) async fn disconnect(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let b: ConnectBody = crate::parse_json(&body)?;
    engine.network_disconnect(&id, &b.container).await?;
    Ok(StatusCode::OK.into_response())
}

pub(crate) async fn prune(State(engine): State<AppState>) -> ApiResult {
    let mut deleted = Vec::new();
    for n in engine.network_list().await {
        if !n.is_default && n.endpoints.is_empty() && engine.network_remove(&n.name).await.is_ok() {
            deleted.push(n.name);
        }
    }
    ok_json(&json!({ "NetworksDeleted": deleted }))
}
