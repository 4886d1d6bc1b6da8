//! Resource-specific steps around the generic registry: service cluster IP and node port
//! allocation (reserved as store keys, so two services never share one, even across
//! servers), generated Job selectors, graceful pod deletion, and namespace finalization
//! (a terminating namespace's content is removed, then the namespace).

use std::net::Ipv4Addr;
use std::sync::Arc;

use api_resources::ResourceDef;
use serde_json::{json, Value};

use crate::registry::ListOptions;
use crate::status::{ApiError, Cause};
use crate::ServerState;

/// The service IP range (Kubernetes' default 10.96.0.0/12); .1 is the `kubernetes` service.
const SERVICE_NET: u32 = u32::from_be_bytes([10, 96, 0, 0]);
const SERVICE_BITS: u32 = 12;
pub const KUBERNETES_SERVICE_IP: &str = "10.96.0.1";
const NODE_PORT_MIN: u16 = 30000;
const NODE_PORT_MAX: u16 = 32767;

fn ip_key(ip: &str) -> String {
    format!("/registry/ranges/serviceips/{ip}")
}

fn port_key(port: i64) -> String {
    format!("/registry/ranges/servicenodeports/{port}")
}

fn in_service_range(ip: Ipv4Addr) -> bool {
    let mask = !((1u32 << (32 - SERVICE_BITS)) - 1);
    u32::from(ip) & mask == SERVICE_NET
}

async fn reserve(state: &ServerState, key: &str, owner: &str) -> Result<bool, ApiError> {
    match state
        .registry
        .store
        .create(key, owner.as_bytes().to_vec())
        .await
    {
        Ok(_) => Ok(true),
        Err(kv_store::StoreError::AlreadyExists { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

async fn release(state: &ServerState, key: &str) {
    if let Err(e) = state.registry.store.delete(key, None).await {
        if !matches!(e, kv_store::StoreError::NotFound { .. }) {
            tracing::warn!(key, error = %e, "could not release allocation");
        }
    }
}

fn owner_of(obj: &Value) -> String {
    format!(
        "{}/{}",
        obj["metadata"]["namespace"].as_str().unwrap_or(""),
        obj["metadata"]["name"].as_str().unwrap_or("")
    )
}

async fn allocate_service(state: &ServerState, obj: &mut Value, dry: bool) -> Result<(), ApiError> {
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
    let owner = owner_of(obj);
    let ty = obj["spec"]["type"]
        .as_str()
        .unwrap_or("ClusterIP")
        .to_string();
    let invalid = |causes| ApiError::invalid("Service", "", &name, causes);
    if ty != "ExternalName" {
        let requested = obj["spec"]["clusterIP"].as_str().unwrap_or("").to_string();
        let ip = if requested == "None" {
            "None".to_string()
        } else if !requested.is_empty() {
            let parsed: Ipv4Addr = requested.parse().map_err(|_| {
                invalid(vec![Cause::invalid(
                    "spec.clusterIPs[0]",
                    &json!(requested),
                    "must be a valid IP address",
                )])
            })?;
            if !in_service_range(parsed) {
                return Err(invalid(vec![Cause::invalid("spec.clusterIPs", &json!([requested]), "failed to allocate IP: the provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/12")]));
            }
            if !dry && !reserve(state, &ip_key(&requested), &owner).await? {
                return Err(invalid(vec![Cause::invalid(
                    "spec.clusterIPs",
                    &json!([requested]),
                    format!("failed to allocate IP {requested}: provided IP is already allocated"),
                )]));
            }
            requested
        } else {
            let size = 1u32 << (32 - SERVICE_BITS);
            let mut found = None;
            for _ in 0..64 {
                let offset = 2 + rand::random::<u32>() % (size - 3);
                let ip = Ipv4Addr::from(SERVICE_NET + offset).to_string();
                if dry || reserve(state, &ip_key(&ip), &owner).await? {
                    found = Some(ip);
                    break;
                }
            }
            found.ok_or_else(|| {
                ApiError::internal("failed to allocate a service IP: range is full")
            })?
        };
        obj["spec"]["clusterIP"] = json!(ip);
        obj["spec"]["clusterIPs"] = json!([ip]);
    }
    if ty == "NodePort" || ty == "LoadBalancer" {
        let ports = obj["spec"]["ports"].as_array().cloned().unwrap_or_default();
        let mut out = Vec::new();
        for (i, mut p) in ports.into_iter().enumerate() {
            match p.get("nodePort").and_then(Value::as_i64) {
                Some(n) => {
                    if !(NODE_PORT_MIN as i64..=NODE_PORT_MAX as i64).contains(&n) {
                        return Err(invalid(vec![Cause::invalid(format!("spec.ports[{i}].nodePort"), &json!(n), "provided port is not in the valid range. The range of valid ports is 30000-32767")]));
                    }
                    if !dry && !reserve(state, &port_key(n), &owner).await? {
                        return Err(invalid(vec![Cause::invalid(
                            format!("spec.ports[{i}].nodePort"),
                            &json!(n),
                            "provided port is already allocated",
                        )]));
                    }
                }
                None => {
                    let mut got = None;
                    for _ in 0..64 {
                        let n = NODE_PORT_MIN as i64
                            + (rand::random::<u16>() % (NODE_PORT_MAX - NODE_PORT_MIN + 1)) as i64;
                        if dry || reserve(state, &port_key(n), &owner).await? {
                            got = Some(n);
                            break;
                        }
                    }
                    p["nodePort"] =
                        json!(got
                            .ok_or_else(|| ApiError::internal("failed to allocate a node port"))?);
                }
            }
            out.push(p);
        }
        obj["spec"]["ports"] = json!(out);
    }
    Ok(())
}

/// Releases what a service holds.
async fn release_service(state: &ServerState, obj: &Value) {
    if let Some(ip) = obj["spec"]["clusterIP"]
        .as_str()
        .filter(|ip| *ip != "None" && !ip.is_empty())
    {
        release(state, &ip_key(ip)).await;
    }
    for p in obj["spec"]["ports"].as_array().into_iter().flatten() {
        if let Some(n) = p.get("nodePort").and_then(Value::as_i64) {
            release(state, &port_key(n)).await;
        }
    }
}

fn job_selector(obj: &mut Value) {
    if obj["spec"]["manualSelector"].as_bool() == Some(true) {
        return;
    }
    let uid = obj["metadata"]["uid"].as_str().unwrap_or("").to_string();
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
    obj["spec"]["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
    let labels = &mut obj["spec"]["template"]["metadata"]["labels"];
    if !labels.is_object() {
        *labels = json!({});
    }
    for (k, v) in [
        ("batch.kubernetes.io/controller-uid", &uid),
        ("batch.kubernetes.io/job-name", &name),
        ("controller-uid", &uid),
        ("job-name", &name),
    ] {
        labels[k] = json!(v);
    }
}

/// Runs just before an object is stored for the first time.
pub async fn before_create(
    state: &ServerState,
    def: &ResourceDef,
    obj: &mut Value,
    dry: bool,
) -> Result<(), ApiError> {
    match (def.storage_def().group, def.storage_def().kind) {
        ("", "Service") => allocate_service(state, obj, dry).await,
        ("batch", "Job") => {
            job_selector(obj);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Undoes `before_create` when the store refused the object.
pub async fn undo_create(state: &ServerState, def: &ResourceDef, obj: &Value) {
    if def.storage_def().kind == "Service" && def.group.is_empty() {
        release_service(state, obj).await;
    }
}

/// Runs after an object left the store.
pub async fn after_delete(state: &ServerState, def: &ResourceDef, obj: &Value) {
    if def.storage_def().kind == "Service" && def.group.is_empty() {
        release_service(state, obj).await;
    }
}

/// Seconds of graceful termination a delete gets, or None to delete at once. Only pods
/// bound to an existing node terminate gracefully: their node agent confirms the end.
pub async fn grace_period(
    state: &ServerState,
    def: &ResourceDef,
    obj: &Value,
    requested: Option<i64>,
) -> Option<i64> {
    if !(def.group.is_empty() && def.plural == "pods") {
        return None;
    }
    let node = obj["spec"]["nodeName"].as_str().filter(|s| !s.is_empty())?;
    let phase = obj["status"]["phase"].as_str().unwrap_or("");
    if phase == "Succeeded" || phase == "Failed" {
        return None;
    }
    let grace = requested.unwrap_or_else(|| {
        obj["spec"]["terminationGracePeriodSeconds"]
            .as_i64()
            .unwrap_or(30)
    });
    if grace <= 0 {
        return None;
    }
    let nodes = api_resources::find("", "v1", "nodes")?;
    state.registry.get(nodes, None, node).await.ok()?;
    Some(grace)
}

/// Empties a terminating namespace, then removes it. Runs in the background; restarted at
/// server start for namespaces a crash left terminating.
pub fn finalize_namespace(state: Arc<ServerState>, ns: String) {
    tokio::spawn(async move {
        for attempt in 0..60u64 {
            match empty_namespace(&state, &ns).await {
                Ok(true) => {
                    let nsdef = api_resources::find("", "v1", "namespaces").expect("served");
                    let r = state
                        .registry
                        .guaranteed_update(nsdef, None, &ns, |mut obj| {
                            obj["spec"]["finalizers"] = json!([]);
                            Ok(crate::registry::Change::Write(obj))
                        })
                        .await;
                    match r {
                        Ok(_) => return,
                        Err(e) if e.code == 404 => return,
                        Err(e) => {
                            tracing::warn!(namespace = %ns, error = %e, "finalizing namespace")
                        }
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(namespace = %ns, error = %e, "emptying namespace"),
            }
            tokio::time::sleep(std::time::Duration::from_millis(
                200 * (attempt + 1).min(10),
            ))
            .await;
        }
    });
}

/// Deletes everything in a namespace; true when nothing is left.
async fn empty_namespace(state: &ServerState, ns: &str) -> Result<bool, ApiError> {
    let mut empty = true;
    for def in api_resources::all()
        .iter()
        .filter(|d| d.namespaced && d.stored_as.is_none())
    {
        let page = state
            .registry
            .list(def, Some(ns), &ListOptions::default())
            .await?;
        for obj in page.items {
            empty = false;
            let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
            match state.registry.delete_now(def, Some(ns), &name, &obj).await {
                Ok(gone) => after_delete(state, def, &gone).await,
                Err(e) if e.code == 404 || e.code == 409 => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(empty)
}
