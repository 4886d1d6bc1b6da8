//! Cascading deletion through `metadata.ownerReferences`, as Kubernetes' garbage collector
//! does it: dependents whose owners are all gone are deleted (background propagation); an
//! owner being deleted with the `foregroundDeletion` finalizer has its dependents deleted
//! first and goes when none are left; one with the `orphan` finalizer has its references
//! removed from its dependents, then goes. Level-triggered: every pass looks at the whole
//! state; passes run after deletions are seen on one store watch over `/registry/`, and
//! periodically. An owner is only taken as gone after a live lookup by name and uid.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::registry::{metadata_of, Change, ListOptions};
use crate::ServerState;

const ORPHAN: &str = "orphan";
const FOREGROUND: &str = "foregroundDeletion";

/// Starts the collector; it runs as long as the server.
pub fn spawn(state: Arc<ServerState>) {
    tokio::spawn(async move {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        let store = state.registry.store.clone();
        tokio::spawn(async move {
            loop {
                let from = match store.current_revision().await {
                    Ok(r) => r + 1,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                let Ok(mut w) = store.watch("/registry/", from).await else {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                };
                while let Some(ev) = w.next().await {
                    let relevant = match &ev {
                        Ok(kv_store::Event::Delete { key, .. }) => {
                            !key.starts_with("/registry/ranges/")
                        }
                        Ok(kv_store::Event::Put { kv, .. }) => {
                            contains(&kv.value, b"\"deletionTimestamp\"")
                        }
                        Err(_) => break,
                    };
                    if relevant {
                        let _ = tx.try_send(());
                    }
                }
            }
        });
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                r = rx.recv() => {
                    if r.is_none() { return; }
                    // Let a burst of deletions settle into one pass.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            // Passes repeat while they change something (each step may unblock the next).
            for _ in 0..20 {
                match pass(&state).await {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "garbage collection pass failed");
                        break;
                    }
                }
            }
        }
    });
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

struct Item {
    def: &'static api_resources::ResourceDef,
    obj: Value,
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj["metadata"]["finalizers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn deleting(obj: &Value) -> bool {
    obj["metadata"]
        .get("deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

fn name_ns(obj: &Value) -> (String, Option<String>) {
    (
        obj["metadata"]["name"].as_str().unwrap_or("").to_string(),
        obj["metadata"]["namespace"].as_str().map(str::to_string),
    )
}

/// Whether the owner a reference names exists now (same name and uid).
async fn owner_exists(state: &ServerState, r: &Value, dependent_ns: Option<&str>) -> bool {
    let (group, version) = api_resources::split_api_version(r["apiVersion"].as_str().unwrap_or(""));
    let Some(def) = api_resources::by_kind(group, version, r["kind"].as_str().unwrap_or("")) else {
        // An owner of a kind berth does not serve cannot be verified; keep the dependent.
        return true;
    };
    let ns = if def.namespaced { dependent_ns } else { None };
    match state
        .registry
        .get(def, ns, r["name"].as_str().unwrap_or(""))
        .await
    {
        Ok(o) => o["metadata"]["uid"] == r["uid"],
        Err(e) => e.code != 404,
    }
}

/// One pass; returns how many writes it made.
async fn pass(state: &Arc<ServerState>) -> Result<usize, crate::ApiError> {
    // Only metadata is read; only objects with owners or being deleted are kept whole.
    let mut present: HashSet<String> = HashSet::new();
    let mut items = Vec::new();
    for def in api_resources::all()
        .iter()
        .filter(|d| d.stored_as.is_none())
    {
        let page = state
            .registry
            .list_raw(def, None, &ListOptions::default())
            .await?;
        for raw in page.items {
            let meta = metadata_of(&raw.bytes)
                .map_err(|e| crate::ApiError::internal(format!("{}: {e}", raw.key)))?;
            if let Some(uid) = meta.get("uid").and_then(Value::as_str) {
                present.insert(uid.to_string());
            }
            let owned = meta
                .get("ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|r| !r.is_empty());
            let marked = meta.get("deletionTimestamp").is_some_and(|v| !v.is_null());
            if owned || marked {
                items.push(Item {
                    def,
                    obj: json!({ "metadata": meta }),
                });
            }
        }
    }
    let by_uid: HashMap<String, usize> = items
        .iter()
        .enumerate()
        .filter_map(|(i, it)| {
            it.obj["metadata"]["uid"]
                .as_str()
                .map(|u| (u.to_string(), i))
        })
        .collect();
    let mut referenced: HashSet<String> = HashSet::new();
    let mut writes = 0;
    for it in &items {
        let Some(refs) = it.obj["metadata"]["ownerReferences"].as_array() else {
            continue;
        };
        if refs.is_empty() {
            continue;
        }
        let (name, ns) = name_ns(&it.obj);
        let mut live = 0;
        let mut foreground = false;
        let mut orphan_uids = Vec::new();
        for r in refs {
            let uid = r["uid"].as_str().unwrap_or("").to_string();
            let owner = by_uid.get(&uid).map(|&i| &items[i].obj);
            let exists = owner.is_some()
                || present.contains(&uid)
                || owner_exists(state, r, ns.as_deref()).await;
            if !exists {
                continue;
            }
            live += 1;
            referenced.insert(uid.clone());
            if let Some(o) = owner.filter(|o| deleting(o)) {
                let f = finalizers(o);
                if f.iter().any(|x| x == ORPHAN) {
                    orphan_uids.push(uid);
                } else if f.iter().any(|x| x == FOREGROUND) {
                    foreground = true;
                }
            }
        }
        if !orphan_uids.is_empty() {
            let r = state
                .registry
                .guaranteed_update(it.def, ns.as_deref(), &name, |mut o| {
                    let kept: Vec<Value> = o["metadata"]["ownerReferences"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|r| !orphan_uids.iter().any(|u| r["uid"] == json!(u)))
                        .collect();
                    o["metadata"]["ownerReferences"] = json!(kept);
                    Ok(Change::Write(o))
                })
                .await;
            if r.is_ok() {
                writes += 1;
            }
            continue;
        }
        if (live == 0 || foreground) && !deleting(&it.obj) {
            let policy = if foreground {
                "Foreground"
            } else {
                "Background"
            };
            match crate::handlers::delete_for_collector(state, it.def, ns.as_deref(), &name, policy)
                .await
            {
                Ok(()) => writes += 1,
                Err(e) if e.code == 404 || e.code == 409 => {}
                Err(e) => {
                    tracing::warn!(object = %name, error = %e, "garbage collector could not delete")
                }
            }
        }
    }
    // Owners waiting on their dependents: done once nothing references them.
    for it in &items {
        if !deleting(&it.obj) {
            continue;
        }
        let f = finalizers(&it.obj);
        let waiting = f.iter().any(|x| x == ORPHAN || x == FOREGROUND);
        let uid = it.obj["metadata"]["uid"].as_str().unwrap_or("");
        if !waiting || referenced.contains(uid) {
            continue;
        }
        let (name, ns) = name_ns(&it.obj);
        let r = state
            .registry
            .guaranteed_update(it.def, ns.as_deref(), &name, |mut o| {
                let kept: Vec<String> = finalizers(&o)
                    .into_iter()
                    .filter(|x| x != ORPHAN && x != FOREGROUND)
                    .collect();
                o["metadata"]["finalizers"] = json!(kept);
                Ok(Change::Write(o))
            })
            .await;
        if r.is_ok() {
            writes += 1;
        }
    }
    Ok(writes)
}
