//! `/volumes/...` endpoints.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{json, Value};

use crate::{json_response, ok_json, qbool, ApiError, ApiResult, AppState};

fn volume_json(engine: &AppState, v: &engine::volumes::Volume) -> Value {
    json!({
        "CreatedAt": v.created_at,
        "Driver": "local",
        "Labels": if v.labels.is_empty() { Value::Null } else { json!(v.labels) },
        "Mountpoint": engine.volumes.mountpoint(&v.name),
        "Name": v.name,
        "Options": Value::Null,
        "Scope": "local",
    })
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct CreateBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    driver: Option<String>,
    #[serde(default)]
    labels: Option<HashMap<String, String>>,
}

pub(crate) async fn create(State(engine): State<AppState>, body: Bytes) -> ApiResult {
    let b: CreateBody = if body.is_empty() {
        CreateBody::default()
    } else {
        crate::parse_json(&body)?
    };
    if let Some(d) = b
        .driver
        .as_deref()
        .filter(|d| !d.is_empty() && *d != "local")
    {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("plugin \"{d}\" not found"),
        ));
    }
    let (name, anonymous) = match b.name.filter(|n| !n.is_empty()) {
        Some(n) => (n, false),
        None => (engine::names::new_id(), true),
    };
    let v = engine
        .volumes
        .create(&name, b.labels.unwrap_or_default(), anonymous)?;
    Ok(json_response(
        StatusCode::CREATED,
        &volume_json(&engine, &v),
    ))
}

pub(crate) async fn list(State(engine): State<AppState>) -> ApiResult {
    let vols: Vec<Value> = engine
        .volumes
        .list()
        .iter()
        .map(|v| volume_json(&engine, v))
        .collect();
    ok_json(&json!({ "Volumes": vols, "Warnings": Value::Null }))
}

pub(crate) async fn inspect(State(engine): State<AppState>, Path(name): Path<String>) -> ApiResult {
    let v = engine.volumes.get(&name)?;
    ok_json(&volume_json(&engine, &v))
}

pub(crate) async fn remove(
    State(engine): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    engine.remove_volume(&name, qbool(q.get("force")))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(crate) async fn prune(State(engine): State<AppState>) -> ApiResult {
    let mut deleted = Vec::new();
    for v in engine.volumes.list() {
        // Like `docker volume prune` without --all: anonymous, unused volumes.
        if v.anonymous
            && engine.containers_using_volume(&v.name).is_empty()
            && engine.volumes.remove(&v.name).is_ok()
        {
            deleted.push(v.name);
        }
    }
    ok_json(&json!({ "VolumesDeleted": deleted, "SpaceReclaimed": 0 }))
}
