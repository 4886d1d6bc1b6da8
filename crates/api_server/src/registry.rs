//! The storage side of every resource: reads inject `resourceVersion` from the store's
//! revision, writes are conditional on the revision they read (optimistic concurrency),
//! `guaranteed_update` retries read-modify-write cycles, lists page through the store at a
//! fixed revision, and objects whose last finalizer goes while they are being deleted are
//! removed.

use std::sync::Arc;

use api_resources::ResourceDef;
use base64::Engine;
use kv_store::{KeyValue, Store, StoreError};
use serde_json::{json, Value};

use crate::routing::qualified;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::ApiError;

/// Parsed list parameters.
#[derive(Debug, Default, Clone)]
pub struct ListOptions {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    /// `resourceVersion` with `resourceVersionMatch=Exact`: read at that revision.
    pub exact_revision: Option<i64>,
}

/// One page of a list.
#[derive(Debug)]
pub struct ListPage {
    pub items: Vec<Value>,
    pub revision: i64,
    pub continue_token: Option<String>,
}

/// Store keys read per range call when listing.
const LIST_CHUNK: usize = 500;

/// One listed object as JSON bytes.
#[derive(Debug, Clone)]
pub struct RawItem {
    pub key: String,
    pub bytes: Vec<u8>,
}

/// One page of a list, as JSON bytes.
#[derive(Debug)]
pub struct RawPage {
    pub items: Vec<RawItem>,
    pub revision: i64,
    pub continue_token: Option<String>,
}

/// Splits an object's JSON into its top-level members without parsing their values.
type TopLevel = std::collections::BTreeMap<String, Box<serde_json::value::RawValue>>;

/// The stored JSON with `metadata.resourceVersion` set, parsing only the metadata; also
/// returns the parsed metadata.
pub fn with_resource_version(
    raw: &[u8],
    rev: i64,
) -> Result<(Vec<u8>, serde_json::Map<String, Value>), serde_json::Error> {
    let mut top: TopLevel = serde_json::from_slice(raw)?;
    let mut meta: serde_json::Map<String, Value> = match top.get("metadata") {
        Some(m) => serde_json::from_str(m.get())?,
        None => serde_json::Map::new(),
    };
    meta.insert("resourceVersion".into(), json!(rev.to_string()));
    let meta_raw = serde_json::value::RawValue::from_string(serde_json::to_string(&meta)?)?;
    top.insert("metadata".into(), meta_raw);
    Ok((serde_json::to_vec(&top)?, meta))
}

/// An object's metadata, without parsing the rest of it.
pub fn metadata_of(raw: &[u8]) -> Result<serde_json::Map<String, Value>, serde_json::Error> {
    let top: TopLevel = serde_json::from_slice(raw)?;
    match top.get("metadata") {
        Some(m) => serde_json::from_str(m.get()),
        None => Ok(serde_json::Map::new()),
    }
}

/// A stored object as a list item, if it passes the selectors.
fn raw_item(kv: &KeyValue, opts: &ListOptions) -> Result<Option<RawItem>, ApiError> {
    let corrupt = |e: serde_json::Error| {
        ApiError::internal(format!("stored object {} is corrupt: {e}", kv.key))
    };
    let (bytes, meta) = with_resource_version(&kv.value, kv.mod_revision).map_err(corrupt)?;
    if !opts
        .labels
        .matches(meta.get("labels").and_then(Value::as_object))
    {
        return Ok(None);
    }
    if !opts.fields.is_empty() {
        let obj: Value = serde_json::from_slice(&bytes).map_err(corrupt)?;
        if !opts.fields.matches(&obj) {
            return Ok(None);
        }
    }
    Ok(Some(RawItem {
        key: kv.key.clone(),
        bytes,
    }))
}

pub struct Registry {
    pub store: Arc<dyn Store>,
}

/// Turns a stored value into the object clients see.
pub fn decode(kv: &KeyValue) -> Result<Value, ApiError> {
    let mut v: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::internal(format!("stored object {} is corrupt: {e}", kv.key)))?;
    v["metadata"]["resourceVersion"] = json!(kv.mod_revision.to_string());
    Ok(v)
}

fn encode(obj: &Value) -> Result<Vec<u8>, ApiError> {
    let mut o = obj.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    serde_json::to_vec(&o).map_err(|e| ApiError::internal(e.to_string()))
}

/// Metadata finalizers, and for namespaces also `spec.finalizers`.
pub fn has_finalizers(obj: &Value) -> bool {
    let non_empty = |v: &Value| v.as_array().is_some_and(|f| !f.is_empty());
    non_empty(&obj["metadata"]["finalizers"])
        || (obj["kind"] == "Namespace" && non_empty(&obj["spec"]["finalizers"]))
}

fn being_deleted(obj: &Value) -> bool {
    obj["metadata"]
        .get("deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    v: String,
    rv: i64,
    start: String,
}

pub fn encode_continue(rv: i64, last_key: &str) -> String {
    let t = ContinueToken {
        v: "meta.k8s.io/v1".into(),
        rv,
        start: last_key.to_string(),
    };
    base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&t).unwrap_or_default())
}

fn decode_continue(token: &str, prefix: &str) -> Result<(i64, String), ApiError> {
    let bad = || {
        ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| bad())?;
    let t: ContinueToken = serde_json::from_slice(&raw).map_err(|_| bad())?;
    if t.v != "meta.k8s.io/v1" || t.rv <= 0 || !t.start.starts_with(prefix) {
        return Err(bad());
    }
    Ok((t.rv, t.start))
}

/// What `guaranteed_update`'s closure decides.
pub enum Change {
    /// Store this object.
    Write(Value),
    /// Leave the stored object as it is.
    Keep,
}

impl Registry {
    pub fn new(store: Arc<dyn Store>) -> Registry {
        Registry { store }
    }

    fn key(def: &ResourceDef, ns: Option<&str>, name: &str) -> String {
        def.key(ns, name)
    }

    pub async fn get_kv(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        name: &str,
    ) -> Result<KeyValue, ApiError> {
        self.store
            .get(&Self::key(def, ns, name))
            .await?
            .ok_or_else(|| ApiError::not_found(&qualified(def), name))
    }

    pub async fn get(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        decode(&self.get_kv(def, ns, name).await?)
    }

    /// Lists objects as decoded values (for internal users; the HTTP list streams raw items).
    pub async fn list(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        opts: &ListOptions,
    ) -> Result<ListPage, ApiError> {
        let raw = self.list_raw(def, ns, opts).await?;
        let items = raw
            .items
            .iter()
            .map(|i| {
                serde_json::from_slice(&i.bytes).map_err(|e| {
                    ApiError::internal(format!("stored object {} is corrupt: {e}", i.key))
                })
            })
            .collect::<Result<Vec<Value>, _>>()?;
        Ok(ListPage {
            items,
            revision: raw.revision,
            continue_token: raw.continue_token,
        })
    }

    /// Lists objects as their JSON bytes (with `resourceVersion` set), reading the store a
    /// chunk at a time at one revision and parsing only metadata unless a field selector
    /// needs more.
    pub async fn list_raw(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        opts: &ListOptions,
    ) -> Result<RawPage, ApiError> {
        let prefix = match (def.namespaced, ns) {
            (true, Some(ns)) => def.namespace_prefix(ns),
            _ => def.key_prefix(),
        };
        // A list pinned to one name reads one key.
        if let (Some(name), None, None) = (
            opts.fields.pinned_name(),
            &opts.continue_token,
            opts.exact_revision,
        ) {
            if ns.is_some() || !def.namespaced {
                let key = Self::key(def, ns, name);
                let rev = self.store.current_revision().await?;
                let mut items = Vec::new();
                if let Some(kv) = self.store.get(&key).await? {
                    if let Some(item) = raw_item(&kv, opts)? {
                        items.push(item);
                    }
                }
                return Ok(RawPage {
                    items,
                    revision: rev,
                    continue_token: None,
                });
            }
        }
        let (mut revision, mut start_after) = match &opts.continue_token {
            Some(t) => {
                let (rv, start) = decode_continue(t, &prefix)?;
                (Some(rv), Some(start))
            }
            None => (opts.exact_revision, None),
        };
        let want = opts.limit.filter(|l| *l > 0);
        let chunk = want.map_or(LIST_CHUNK, |l| l.clamp(64, LIST_CHUNK));
        let mut items = Vec::new();
        loop {
            let page = self
                .store
                .range(&prefix, start_after.as_deref(), Some(chunk), revision)
                .await
                .map_err(|e| match e {
                    StoreError::Compacted { .. } if opts.continue_token.is_some() => ApiError::gone(
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                    ),
                    StoreError::Compacted { .. } => ApiError::gone("too old resource version"),
                    other => other.into(),
                })?;
            revision = Some(page.revision);
            let n = page.kvs.len();
            for (i, kv) in page.kvs.iter().enumerate() {
                if let Some(item) = raw_item(kv, opts)? {
                    items.push(item);
                }
                if want.is_some_and(|l| items.len() >= l) {
                    let continue_token =
                        (i + 1 < n || page.more).then(|| encode_continue(page.revision, &kv.key));
                    return Ok(RawPage {
                        items,
                        revision: page.revision,
                        continue_token,
                    });
                }
            }
            if !page.more || n == 0 {
                break;
            }
            start_after = page.kvs.last().map(|kv| kv.key.clone());
        }
        Ok(RawPage {
            items,
            revision: revision.unwrap_or(0),
            continue_token: None,
        })
    }

    /// Stores a new object; `AlreadyExists` when the name is taken.
    pub async fn create(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        obj: &Value,
    ) -> Result<Value, ApiError> {
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        let key = Self::key(def, ns, &name);
        match self.store.create(&key, encode(obj)?).await {
            Ok(kv) => decode(&kv),
            Err(StoreError::AlreadyExists { .. }) => {
                Err(ApiError::already_exists(&qualified(def), &name))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Read-modify-write with retries on conflicting writers. The closure sees the current
    /// object (with its resourceVersion) and decides; an object being deleted whose last
    /// finalizer goes is removed from the store.
    pub async fn guaranteed_update<F>(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        name: &str,
        mut f: F,
    ) -> Result<Value, ApiError>
    where
        F: FnMut(Value) -> Result<Change, ApiError>,
    {
        let key = Self::key(def, ns, name);
        for _ in 0..32 {
            let kv = self
                .store
                .get(&key)
                .await?
                .ok_or_else(|| ApiError::not_found(&qualified(def), name))?;
            let current = decode(&kv)?;
            let new = match f(current.clone())? {
                Change::Keep => return Ok(current),
                Change::Write(v) => v,
            };
            if encode(&new)? == kv.value {
                return Ok(current);
            }
            if being_deleted(&new) && !has_finalizers(&new) {
                match self.store.delete(&key, Some(kv.mod_revision)).await {
                    Ok((rev, _)) => {
                        let mut gone = new;
                        gone["metadata"]["resourceVersion"] = json!(rev.to_string());
                        return Ok(gone);
                    }
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(StoreError::NotFound { .. }) => {
                        return Err(ApiError::not_found(&qualified(def), name))
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            match self
                .store
                .update(&key, encode(&new)?, kv.mod_revision)
                .await
            {
                Ok(kv2) => return decode(&kv2),
                Err(StoreError::Conflict { .. }) => continue,
                Err(StoreError::NotFound { .. }) => {
                    return Err(ApiError::not_found(&qualified(def), name))
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::conflict(&qualified(def), name))
    }

    /// Removes an object now, if it still has the revision the caller saw.
    pub async fn delete_now(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        name: &str,
        seen: &Value,
    ) -> Result<Value, ApiError> {
        let rev: i64 = seen["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        match self
            .store
            .delete(&Self::key(def, ns, name), Some(rev))
            .await
        {
            Ok((drev, _)) => {
                let mut gone = seen.clone();
                gone["metadata"]["resourceVersion"] = json!(drev.to_string());
                Ok(gone)
            }
            Err(StoreError::Conflict { .. }) => Err(ApiError::conflict(&qualified(def), name)),
            Err(StoreError::NotFound { .. }) => Err(ApiError::not_found(&qualified(def), name)),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_reject_foreign_prefixes() {
        let t = encode_continue(42, "/registry/pods/default/p1");
        assert_eq!(
            decode_continue(&t, "/registry/pods/").unwrap(),
            (42, "/registry/pods/default/p1".to_string())
        );
        assert!(decode_continue(&t, "/registry/secrets/").is_err());
        assert!(decode_continue("not base64!", "/").is_err());
    }
}
