//! The HTTP side of resources: decodes query parameters and bodies, negotiates JSON or
//! Table responses, and runs create, get, list, watch, update, patch, delete and the
//! subresources (status, scale, binding, eviction, finalize) over the registry.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use api_resources::ResourceDef;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{json, Value};

use crate::objects::{self, FieldValidation};
use crate::registry::{Change, ListOptions, RawItem};
use crate::routing::{qualified, Target};
use crate::selectors::{supported_fields, FieldSelector, LabelSelector};
use crate::status::{ApiError, Cause};
use crate::watch::{HubEvent, Subscription};
use crate::ServerState;

/// Parsed `Accept` header.
#[derive(Debug, Clone, Copy)]
pub struct Accept {
    pub table: bool,
    pub include: resource_tables::IncludeObject,
}

pub fn parse_accept(
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<Accept, ApiError> {
    let raw = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*/*");
    let mut json_ok = raw.trim().is_empty();
    let mut table = false;
    for part in raw.split(',') {
        let mut it = part.split(';').map(str::trim);
        let media = it.next().unwrap_or("");
        let params: HashMap<&str, &str> = it.filter_map(|p| p.split_once('=')).collect();
        match media {
            "application/json" | "application/*" | "*/*" | "application/yaml" => {
                if params.get("as") == Some(&"Table") {
                    if params.get("g") == Some(&"meta.k8s.io")
                        && params
                            .get("v")
                            .is_none_or(|v| *v == "v1" || *v == "v1beta1")
                    {
                        table = true;
                        json_ok = true;
                    }
                } else if !params.contains_key("as") {
                    json_ok = true;
                }
            }
            _ => {}
        }
        if table {
            break;
        }
    }
    if !json_ok {
        return Err(ApiError::not_acceptable());
    }
    let include = match query.get("includeObject").map(String::as_str) {
        Some("None") => resource_tables::IncludeObject::None,
        Some("Object") => resource_tables::IncludeObject::Object,
        _ => resource_tables::IncludeObject::Metadata,
    };
    Ok(Accept { table, include })
}

/// A JSON response with optional `Warning` headers.
pub fn json_response(code: StatusCode, body: &Value, warnings: &[String]) -> Response {
    bytes_response(code, serde_json::to_vec(body).unwrap_or_default(), warnings)
}

/// A response of already-encoded JSON.
pub fn bytes_response(code: StatusCode, bytes: Vec<u8>, warnings: &[String]) -> Response {
    let mut resp = (code, [(header::CONTENT_TYPE, "application/json")], bytes).into_response();
    for w in warnings {
        let text = format!("299 - {}", serde_json::to_string(w).unwrap_or_default());
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut().append("Warning", v);
        }
    }
    resp
}

fn query_bool(q: &HashMap<String, String>, key: &str) -> bool {
    // Go's strconv.ParseBool, as the API server parses booleans (Python sends "True").
    matches!(
        q.get(key).map(String::as_str),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True")
    )
}

fn dry_run(q: &HashMap<String, String>) -> Result<bool, ApiError> {
    match q.get("dryRun").map(String::as_str) {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "dryRun: Unsupported value: {other:?}: supported values: \"All\""
        ))),
    }
}

fn list_options(def: &ResourceDef, q: &HashMap<String, String>) -> Result<ListOptions, ApiError> {
    let labels = LabelSelector::parse(q.get("labelSelector").map(String::as_str).unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
    let fields = FieldSelector::parse(
        q.get("fieldSelector").map(String::as_str).unwrap_or(""),
        supported_fields(def.plural),
    )
    .map_err(ApiError::bad_request)?;
    let limit = match q.get("limit") {
        Some(l) if !l.is_empty() => Some(
            l.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?
                .max(0) as usize,
        ),
        _ => None,
    };
    let continue_token = q.get("continue").filter(|c| !c.is_empty()).cloned();
    let exact_revision = match (q.get("resourceVersionMatch").map(String::as_str), q.get("resourceVersion")) {
        (Some("Exact"), Some(rv)) => Some(parse_rv(rv)?),
        (Some("Exact"), None) => {
            return Err(ApiError::bad_request(
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
            ))
        }
        _ => None,
    };
    if continue_token.is_some()
        && q.get("resourceVersion")
            .is_some_and(|r| !r.is_empty() && r != "0")
    {
        return Err(ApiError::bad_request(
            "specifying resource version is not allowed when using continue",
        ));
    }
    Ok(ListOptions {
        labels,
        fields,
        limit,
        continue_token,
        exact_revision,
    })
}

fn parse_rv(rv: &str) -> Result<i64, ApiError> {
    rv.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
        ApiError::bad_request(format!(
            "resourceVersion: Invalid value: {rv:?}: must be a non-negative integer"
        ))
    })
}

fn out(def: &ResourceDef, mut obj: Value) -> Value {
    objects::convert_out(def, &mut obj);
    obj
}

fn table_of(
    def: &ResourceDef,
    items: &[Value],
    accept: Accept,
    rv: Option<&str>,
    cont: Option<&str>,
) -> Value {
    let mut t = resource_tables::table(
        def.group,
        def.plural,
        items,
        accept.include,
        chrono::Utc::now(),
    );
    let mut meta = json!({});
    if let Some(rv) = rv {
        meta["resourceVersion"] = json!(rv);
    }
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    t["metadata"] = meta;
    t
}

/// GET on a collection: list or watch.
pub async fn list(
    state: &Arc<ServerState>,
    t: &Target,
    q: &HashMap<String, String>,
    accept: Accept,
) -> Result<Response, ApiError> {
    if query_bool(q, "watch") {
        return watch(state, t, q, accept).await;
    }
    let opts = list_options(t.def, q)?;
    let page = state
        .registry
        .list_raw(t.def, t.namespace.as_deref(), &opts)
        .await?;
    let rv = page.revision.to_string();
    let mut meta = json!({"resourceVersion": rv});
    if let Some(c) = &page.continue_token {
        meta["continue"] = json!(c);
    }
    let parse = |i: &RawItem| -> Result<Value, ApiError> {
        serde_json::from_slice(&i.bytes)
            .map(|v| out(t.def, v))
            .map_err(|e| ApiError::internal(e.to_string()))
    };
    // Both shapes are assembled from per-item bytes: a list of 10,000 objects never
    // exists as one tree of values.
    let mut body =
        Vec::with_capacity(page.items.iter().map(|i| i.bytes.len() + 1).sum::<usize>() + 256);
    if accept.table {
        let now = chrono::Utc::now();
        let mut columns = Value::Null;
        let mut rows = Vec::new();
        for chunk in page.items.chunks(256) {
            let values = chunk.iter().map(parse).collect::<Result<Vec<_>, _>>()?;
            let mut table =
                resource_tables::table(t.def.group, t.def.plural, &values, accept.include, now);
            if columns.is_null() {
                columns = table["columnDefinitions"].take();
            }
            for row in table["rows"].as_array().into_iter().flatten() {
                if !rows.is_empty() {
                    rows.push(b',');
                }
                let _ = serde_json::to_writer(&mut rows, row);
            }
        }
        if columns.is_null() {
            columns = resource_tables::table(t.def.group, t.def.plural, &[], accept.include, now)
                ["columnDefinitions"]
                .take();
        }
        body.extend_from_slice(b"{\"apiVersion\":\"meta.k8s.io/v1\",\"columnDefinitions\":");
        let _ = serde_json::to_writer(&mut body, &columns);
        body.extend_from_slice(b",\"kind\":\"Table\",\"metadata\":");
        let _ = serde_json::to_writer(&mut body, &meta);
        body.extend_from_slice(b",\"rows\":[");
        body.extend_from_slice(&rows);
        body.extend_from_slice(b"]}");
        return Ok(bytes_response(StatusCode::OK, body, &[]));
    }
    body.extend_from_slice(b"{\"apiVersion\":");
    let _ = serde_json::to_writer(&mut body, &t.def.api_version());
    body.extend_from_slice(b",\"items\":[");
    for (n, item) in page.items.iter().enumerate() {
        if n > 0 {
            body.push(b',');
        }
        if t.def.stored_as.is_some() {
            let _ = serde_json::to_writer(&mut body, &parse(item)?);
        } else {
            body.extend_from_slice(&item.bytes);
        }
    }
    body.extend_from_slice(b"],\"kind\":");
    let _ = serde_json::to_writer(&mut body, &t.def.list_kind());
    body.extend_from_slice(b",\"metadata\":");
    let _ = serde_json::to_writer(&mut body, &meta);
    body.push(b'}');
    Ok(bytes_response(StatusCode::OK, body, &deprecations(t.def)))
}

fn deprecations(def: &ResourceDef) -> Vec<String> {
    objects::deprecation_warning(def).into_iter().collect()
}

/// What a watcher sees of one change, given its filters: ADDED, MODIFIED, DELETED or
/// nothing. Without selectors only the key is looked at.
fn classify(ev: &HubEvent, ns_prefix: &str, opts: &ListOptions) -> Option<&'static str> {
    if !ev.key.starts_with(ns_prefix) {
        return None;
    }
    if opts.labels.is_empty() && opts.fields.is_empty() {
        return Some(if ev.deleted {
            "DELETED"
        } else if ev.prev_raw.is_some() {
            "MODIFIED"
        } else {
            "ADDED"
        });
    }
    let matches = |raw: &[u8]| {
        serde_json::from_slice::<Value>(raw).is_ok_and(|o| {
            opts.labels.matches(o["metadata"]["labels"].as_object()) && opts.fields.matches(&o)
        })
    };
    if ev.deleted {
        return ev
            .prev_raw
            .as_deref()
            .filter(|p| matches(p))
            .map(|_| "DELETED");
    }
    let now = matches(&ev.raw);
    let before = ev.prev_raw.as_deref().map(matches);
    match (before, now) {
        (Some(true), true) => Some("MODIFIED"),
        (Some(true), false) => Some("DELETED"),
        (_, true) => Some("ADDED"),
        _ => None,
    }
}

struct WatchEncoder {
    def: &'static ResourceDef,
    accept: Accept,
}

impl WatchEncoder {
    /// A frame from the object's JSON: copied as is unless the client wants a Table or
    /// the object must be converted to a deprecated version.
    fn frame_raw(&self, kind: &str, raw: &[u8]) -> Bytes {
        if self.accept.table || self.def.stored_as.is_some() {
            match serde_json::from_slice::<Value>(raw) {
                Ok(v) => return self.frame(kind, &v),
                Err(e) => return self.error(&ApiError::internal(e.to_string())),
            }
        }
        let mut line = Vec::with_capacity(raw.len() + 32);
        line.extend_from_slice(b"{\"type\":");
        line.extend_from_slice(serde_json::to_string(kind).unwrap_or_default().as_bytes());
        line.extend_from_slice(b",\"object\":");
        line.extend_from_slice(raw);
        line.extend_from_slice(b"}\n");
        Bytes::from(line)
    }

    fn frame(&self, kind: &str, obj: &Value) -> Bytes {
        let obj = out(self.def, obj.clone());
        let object = if self.accept.table {
            table_of(
                self.def,
                std::slice::from_ref(&obj),
                self.accept,
                obj["metadata"]["resourceVersion"].as_str(),
                None,
            )
        } else {
            obj
        };
        event_line(kind, &object)
    }

    fn bookmark(&self, rv: i64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj =
            json!({"kind": self.def.kind, "apiVersion": self.def.api_version(), "metadata": meta});
        event_line("BOOKMARK", &obj)
    }

    fn error(&self, e: &ApiError) -> Bytes {
        event_line("ERROR", &e.status())
    }
}

/// One watch event as Kubernetes writes it: `{"type":...,"object":...}` and a newline
/// (type first, so stream readers can dispatch before parsing the object).
fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = Vec::with_capacity(256);
    line.extend_from_slice(b"{\"type\":");
    line.extend_from_slice(serde_json::to_string(kind).unwrap_or_default().as_bytes());
    line.extend_from_slice(b",\"object\":");
    let _ = serde_json::to_writer(&mut line, object);
    line.extend_from_slice(b"}\n");
    Bytes::from(line)
}

async fn watch(
    state: &Arc<ServerState>,
    t: &Target,
    q: &HashMap<String, String>,
    accept: Accept,
) -> Result<Response, ApiError> {
    let mut opts = list_options(t.def, q)?;
    opts.limit = None;
    opts.continue_token = None;
    let bookmarks = query_bool(q, "allowWatchBookmarks");
    let send_initial = query_bool(q, "sendInitialEvents");
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or_else(|| Duration::from_secs(1800 + rand::random::<u64>() % 1800));
    let rv_param = q.get("resourceVersion").map(String::as_str).unwrap_or("");
    let ns_prefix = match (t.def.namespaced, &t.namespace) {
        (true, Some(ns)) => t.def.namespace_prefix(ns),
        _ => t.def.key_prefix(),
    };
    let hub = state
        .hubs
        .hub(&state.registry.store, &t.def.key_prefix())
        .await?;
    // "" and "0" start with the current state as ADDED events; a revision resumes after it.
    let mut initial = Vec::new();
    let after = if rv_param.is_empty() || rv_param == "0" || send_initial {
        let page = state
            .registry
            .list_raw(
                t.def,
                t.namespace.as_deref(),
                &ListOptions {
                    labels: opts.labels.clone(),
                    fields: opts.fields.clone(),
                    ..Default::default()
                },
            )
            .await?;
        initial = page.items;
        page.revision
    } else {
        parse_rv(rv_param)?
    };
    let sub = hub
        .subscribe(&state.registry.store, after)
        .await
        .map_err(|e| {
            if e.code == 410 {
                ApiError::gone(format!("too old resource version: {after}"))
            } else {
                e
            }
        })?;
    let enc = WatchEncoder { def: t.def, accept };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let hub2 = hub.clone();
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last = after;
        for item in &initial {
            if tx.send(enc.frame_raw("ADDED", &item.bytes)).await.is_err() {
                return;
            }
        }
        if send_initial && bookmarks && tx.send(enc.bookmark(after, true)).await.is_err() {
            return;
        }
        drop(initial);
        let mut tick = tokio::time::interval(Duration::from_secs(if bookmarks { 30 } else { 10 }));
        tick.tick().await;
        match sub {
            Subscription::Hub { backlog, mut live } => {
                for ev in backlog {
                    if ev.revision <= last {
                        continue;
                    }
                    last = ev.revision;
                    if let Some(kind) = classify(&ev, &ns_prefix, &opts) {
                        if tx.send(enc.frame_raw(kind, &ev.raw)).await.is_err() {
                            return;
                        }
                    }
                }
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep_until(deadline) => return,
                        _ = tick.tick() => {
                            if !hub2.alive() { return; }
                            if bookmarks && tx.send(enc.bookmark(last, false)).await.is_err() { return; }
                        }
                        r = live.recv() => match r {
                            Ok(ev) => {
                                if ev.revision <= last { continue; }
                                last = ev.revision;
                                if let Some(kind) = classify(&ev, &ns_prefix, &opts) {
                                    if tx.send(enc.frame_raw(kind, &ev.raw)).await.is_err() { return; }
                                }
                            }
                            // A watcher that fell behind ends; clients re-watch from `last`.
                            Err(_) => return,
                        },
                    }
                }
            }
            Subscription::Direct(mut stream) => {
                use futures_util::StreamExt;
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep_until(deadline) => return,
                        _ = tick.tick() => {
                            if bookmarks && tx.send(enc.bookmark(last, false)).await.is_err() { return; }
                        }
                        item = stream.next() => match item {
                            Some(Ok(e)) => {
                                let ev = match crate::watch::hub_event(&e) { Ok(ev) => ev, Err(err) => { let _ = tx.send(enc.error(&err)).await; return; } };
                                last = ev.revision;
                                if let Some(kind) = classify(&ev, &ns_prefix, &opts) {
                                    if tx.send(enc.frame_raw(kind, &ev.raw)).await.is_err() { return; }
                                }
                            }
                            Some(Err(e)) => { let _ = tx.send(enc.error(&ApiError::from(e))).await; return; }
                            None => return,
                        },
                    }
                }
            }
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|o| o.map(Ok::<Bytes, std::io::Error>))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// GET on an object.
pub async fn get(
    state: &Arc<ServerState>,
    t: &Target,
    name: &str,
    accept: Accept,
) -> Result<Response, ApiError> {
    let obj = out(
        t.def,
        state
            .registry
            .get(t.def, t.namespace.as_deref(), name)
            .await?,
    );
    if accept.table {
        let rv = obj["metadata"]["resourceVersion"]
            .as_str()
            .map(str::to_string);
        return Ok(json_response(
            StatusCode::OK,
            &table_of(t.def, &[obj], accept, rv.as_deref(), None),
            &[],
        ));
    }
    Ok(json_response(StatusCode::OK, &obj, &deprecations(t.def)))
}

async fn require_namespace(
    state: &Arc<ServerState>,
    def: &ResourceDef,
    ns: Option<&str>,
) -> Result<(), ApiError> {
    if !def.namespaced {
        return Ok(());
    }
    let ns = ns.ok_or_else(|| ApiError::bad_request("the namespace of the object must be set"))?;
    let nsdef = api_resources::find("", "v1", "namespaces").expect("namespaces are served");
    let obj = state.registry.get(nsdef, None, ns).await?;
    if obj["metadata"]
        .get("deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        return Err(ApiError::forbidden(format!(
            "unable to create new content in namespace {ns} because it is being terminated"
        )));
    }
    Ok(())
}

/// POST on a collection.
pub async fn create(
    state: &Arc<ServerState>,
    t: &Target,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let validation = FieldValidation::parse(q.get("fieldValidation").map(String::as_str))?;
    let dry = dry_run(q)?;
    let mut obj = objects::decode_body(body, content_type(headers))?;
    objects::check_type_and_convert_in(t.def, &mut obj)?;
    if let Some(body_ns) = obj["metadata"]["namespace"]
        .as_str()
        .filter(|s| !s.is_empty())
    {
        if t.def.namespaced && Some(body_ns) != t.namespace.as_deref() {
            return Err(ApiError::bad_request("the namespace of the provided object does not match the namespace sent on the request"));
        }
    }
    let (mut obj, mut warnings) = objects::normalize(t.def, obj, validation)?;
    warnings.extend(deprecations(t.def));
    let generate = obj["metadata"]["name"].as_str().is_none_or(str::is_empty);
    let prefix = obj["metadata"]["generateName"]
        .as_str()
        .unwrap_or("")
        .to_string();
    if generate && prefix.is_empty() {
        return Err(ApiError::invalid(
            t.def.kind,
            t.def.storage_def().group,
            "",
            vec![Cause {
                reason: "FieldValueRequired",
                field: "metadata.name".into(),
                message: "Required value: name or generateName is required".into(),
            }],
        ));
    }
    let ns = t.namespace.as_deref();
    require_namespace(state, t.def, ns).await?;
    objects::apply_defaults(t.def, &mut obj, true);
    objects::init_metadata(t.def, &mut obj, ns);
    for attempt in 0..8 {
        if generate {
            obj["metadata"]["name"] = json!(objects::generate_name(&prefix));
        }
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        let mut causes: Vec<Cause> = objects::validate_name(t.def, &name).into_iter().collect();
        causes.extend(objects::validate(t.def, &obj, None));
        if !causes.is_empty() {
            return Err(ApiError::invalid(
                t.def.kind,
                t.def.storage_def().group,
                &name,
                causes,
            ));
        }
        let mut to_store = obj.clone();
        crate::hooks::before_create(state, t.def, &mut to_store, dry).await?;
        if dry {
            return Ok(json_response(
                StatusCode::CREATED,
                &out(t.def, to_store),
                &warnings,
            ));
        }
        match state.registry.create(t.def, ns, &to_store).await {
            Ok(created) => {
                return Ok(json_response(
                    StatusCode::CREATED,
                    &out(t.def, created),
                    &warnings,
                ))
            }
            Err(e) => {
                crate::hooks::undo_create(state, t.def, &to_store).await;
                if e.code == 409 && generate && attempt < 7 {
                    continue;
                }
                return Err(e);
            }
        }
    }
    Err(ApiError::internal("could not generate a unique name"))
}

fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}

/// Shared tail of PUT and PATCH: the new object replaces `current` except what the server owns.
fn prepare_update(
    def: &ResourceDef,
    mut new: Value,
    current: &Value,
    validation: FieldValidation,
    warnings: &mut Vec<String>,
    status_only: bool,
) -> Result<Change, ApiError> {
    let name = current["metadata"]["name"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let cur_rv = current["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("");
    if let Some(rv) = new["metadata"]["resourceVersion"]
        .as_str()
        .filter(|s| !s.is_empty())
    {
        if rv != cur_rv {
            return Err(ApiError::conflict(&qualified(def), &name));
        }
    }
    if new["metadata"]["name"].as_str().is_some_and(|n| n != name) {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            new["metadata"]["name"].as_str().unwrap_or("")
        )));
    }
    new["metadata"]["name"] = json!(name);
    objects::check_type_and_convert_in(def, &mut new)?;
    let (mut new, w) = objects::normalize(def, new, validation)?;
    warnings.extend(w);
    let has_status = def.subresource("status").is_some();
    if status_only {
        let status = new.get("status").cloned();
        new = current.clone();
        match status {
            Some(s) => new["status"] = s,
            None => {
                if let Some(m) = new.as_object_mut() {
                    m.remove("status");
                }
            }
        }
    } else if has_status {
        match current.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(m) = new.as_object_mut() {
                    m.remove("status");
                }
            }
        }
    }
    objects::apply_defaults(def, &mut new, false);
    objects::carry_metadata(def, &mut new, current);
    if current["metadata"]
        .get("deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        // While being deleted, finalizers may only be removed.
        let old_f: Vec<Value> = current["metadata"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let new_f: Vec<Value> = new["metadata"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if new_f.iter().any(|f| !old_f.contains(f)) {
            return Err(ApiError::invalid(
                def.kind,
                def.storage_def().group,
                &name,
                vec![Cause::forbidden(
                    "metadata.finalizers",
                    "no new finalizers can be added if the object is being deleted",
                )],
            ));
        }
    }
    let causes = objects::validate(def, &new, Some(current));
    if !causes.is_empty() {
        return Err(ApiError::invalid(
            def.kind,
            def.storage_def().group,
            &name,
            causes,
        ));
    }
    Ok(Change::Write(new))
}

/// PUT on an object or its status.
pub async fn update(
    state: &Arc<ServerState>,
    t: &Target,
    name: &str,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let validation = FieldValidation::parse(q.get("fieldValidation").map(String::as_str))?;
    let dry = dry_run(q)?;
    let new = objects::decode_body(body, content_type(headers))?;
    if let Some(body_ns) = new["metadata"]["namespace"]
        .as_str()
        .filter(|s| !s.is_empty())
    {
        if t.def.namespaced && Some(body_ns) != t.namespace.as_deref() {
            return Err(ApiError::bad_request("the namespace of the provided object does not match the namespace sent on the request"));
        }
    }
    let status_only = t.subresource.as_deref() == Some("status");
    let mut warnings = deprecations(t.def);
    let result = write(state, t, name, dry, |current| {
        prepare_update(
            t.def,
            new.clone(),
            &current,
            validation,
            &mut warnings,
            status_only,
        )
    })
    .await?;
    Ok(json_response(
        StatusCode::OK,
        &out(t.def, result),
        &warnings,
    ))
}

/// Runs a read-modify-write, or only computes it under dry run.
async fn write<F>(
    state: &Arc<ServerState>,
    t: &Target,
    name: &str,
    dry: bool,
    mut f: F,
) -> Result<Value, ApiError>
where
    F: FnMut(Value) -> Result<Change, ApiError>,
{
    if dry {
        let current = state
            .registry
            .get(t.def, t.namespace.as_deref(), name)
            .await?;
        return match f(current.clone())? {
            Change::Write(v) => Ok(v),
            Change::Keep => Ok(current),
        };
    }
    state
        .registry
        .guaranteed_update(t.def, t.namespace.as_deref(), name, f)
        .await
}

/// A patch that cannot be applied: 422 Invalid when well-formed, 400 when malformed.
fn patch_error(e: object_patch::PatchError) -> ApiError {
    match e.http_status() {
        422 => ApiError::new(422, "Invalid", e.to_string()),
        413 => ApiError::too_large(),
        _ => ApiError::bad_request(e.to_string()),
    }
}

/// PATCH on an object or its status.
pub async fn patch(
    state: &Arc<ServerState>,
    t: &Target,
    name: &str,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let validation = FieldValidation::parse(q.get("fieldValidation").map(String::as_str))?;
    let dry = dry_run(q)?;
    let ct = content_type(headers).unwrap_or("");
    let kind = object_patch::PatchType::from_content_type(ct).ok_or_else(|| {
        if ct.starts_with("application/apply-patch") {
            ApiError::unsupported_media_type(
                "server-side apply is not supported by berth yet; use client-side kubectl apply",
            )
        } else {
            ApiError::unsupported_media_type(ct)
        }
    })?;
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    let status_only = t.subresource.as_deref() == Some("status");
    let mut warnings = deprecations(t.def);
    let defs = api_schema::definitions();
    let schema = object_patch::SchemaView::new(defs);
    let result = write(state, t, name, dry, |current| {
        let mut doc = current.clone();
        objects::convert_out(t.def, &mut doc);
        let patched = object_patch::apply(kind, &doc, &patch, &schema, t.def.definition)
            .map_err(patch_error)?;
        prepare_update(
            t.def,
            patched,
            &current,
            validation,
            &mut warnings,
            status_only,
        )
    })
    .await?;
    Ok(json_response(
        StatusCode::OK,
        &out(t.def, result),
        &warnings,
    ))
}

/// DELETE options from the body or the query.
#[derive(Debug, Default)]
struct DeleteOptions {
    grace: Option<i64>,
    policy: Option<String>,
    uid: Option<String>,
    rv: Option<String>,
    dry: bool,
}

fn delete_options(q: &HashMap<String, String>, body: &[u8]) -> Result<DeleteOptions, ApiError> {
    let mut o = DeleteOptions {
        dry: dry_run(q)?,
        ..Default::default()
    };
    if !body.iter().all(u8::is_ascii_whitespace) {
        let b: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?;
        o.grace = b.get("gracePeriodSeconds").and_then(Value::as_i64);
        o.policy = b
            .get("propagationPolicy")
            .and_then(Value::as_str)
            .map(str::to_string);
        o.uid = b["preconditions"]["uid"].as_str().map(str::to_string);
        o.rv = b["preconditions"]["resourceVersion"]
            .as_str()
            .map(str::to_string);
        if b.get("orphanDependents").and_then(Value::as_bool) == Some(true) && o.policy.is_none() {
            o.policy = Some("Orphan".into());
        }
        if b.get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v == "All"))
        {
            o.dry = true;
        }
    }
    if let Some(g) = q.get("gracePeriodSeconds") {
        o.grace = Some(
            g.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid gracePeriodSeconds {g:?}")))?,
        );
    }
    if let Some(p) = q.get("propagationPolicy") {
        o.policy = Some(p.clone());
    }
    if let Some(p) = &o.policy {
        if !["Orphan", "Background", "Foreground"].contains(&p.as_str()) {
            return Err(ApiError::bad_request(format!(
                "propagationPolicy: Unsupported value: {p:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
            )));
        }
    }
    Ok(o)
}

/// Deletes one object: at once, or by marking it (finalizers, graceful pod termination).
/// Returns the HTTP code (200 deleted, 202 marked) and the object.
async fn delete_one(
    state: &Arc<ServerState>,
    def: &'static ResourceDef,
    ns: Option<&str>,
    name: &str,
    o: &DeleteOptions,
) -> Result<(StatusCode, Value), ApiError> {
    let current = state.registry.get(def, ns, name).await?;
    let meta = &current["metadata"];
    if let Some(uid) = &o.uid {
        if meta["uid"].as_str() != Some(uid) {
            return Err(ApiError::new(
                409,
                "Conflict",
                format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta["uid"].as_str().unwrap_or("")
                ),
            ));
        }
    }
    if let Some(rv) = &o.rv {
        if meta["resourceVersion"].as_str() != Some(rv) {
            return Err(ApiError::new(409, "Conflict", format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}", meta["resourceVersion"].as_str().unwrap_or("")
            )));
        }
    }
    let add_finalizer = match o.policy.as_deref() {
        Some("Orphan") => Some("orphan"),
        Some("Foreground") => Some("foregroundDeletion"),
        _ => None,
    };
    let graceful = crate::hooks::grace_period(state, def, &current, o.grace).await;
    let is_namespace = def.plural == "namespaces" && def.group.is_empty();
    let already = meta.get("deletionTimestamp").is_some_and(|v| !v.is_null());
    let has_fin = meta["finalizers"].as_array().is_some_and(|f| !f.is_empty());
    if !already && !has_fin && add_finalizer.is_none() && graceful.is_none() && !is_namespace {
        if o.dry {
            return Ok((StatusCode::OK, current));
        }
        let gone = state.registry.delete_now(def, ns, name, &current).await?;
        crate::hooks::after_delete(state, def, &gone).await;
        return Ok((StatusCode::OK, gone));
    }
    if already && graceful.is_none() && !has_fin {
        // The final delete of a terminating object (grace period over or forced).
        if o.dry {
            return Ok((StatusCode::OK, current));
        }
        let gone = state.registry.delete_now(def, ns, name, &current).await?;
        crate::hooks::after_delete(state, def, &gone).await;
        return Ok((StatusCode::OK, gone));
    }
    let now = chrono::Utc::now();
    let mark = |mut obj: Value| -> Result<Change, ApiError> {
        let m = &mut obj["metadata"];
        if m.get("deletionTimestamp").is_none_or(Value::is_null) {
            let at = now + chrono::Duration::seconds(graceful.unwrap_or(0));
            m["deletionTimestamp"] = json!(at.format("%Y-%m-%dT%H:%M:%SZ").to_string());
            m["deletionGracePeriodSeconds"] = json!(graceful.unwrap_or(0));
        }
        if let Some(f) = add_finalizer {
            let list = m["finalizers"].as_array().cloned().unwrap_or_default();
            if !list.iter().any(|x| x == f) {
                let mut list = list;
                list.push(json!(f));
                m["finalizers"] = json!(list);
            }
        }
        if is_namespace {
            obj["status"]["phase"] = json!("Terminating");
        }
        Ok(Change::Write(obj))
    };
    if o.dry {
        let marked = match mark(current.clone())? {
            Change::Write(v) => v,
            Change::Keep => current,
        };
        return Ok((StatusCode::ACCEPTED, marked));
    }
    let marked = state
        .registry
        .guaranteed_update(def, ns, name, mark)
        .await?;
    if is_namespace {
        crate::hooks::finalize_namespace(state.clone(), name.to_string());
    }
    let code = if marked["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty())
        || is_namespace
    {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((code, marked))
}

/// The garbage collector's delete of a dependent, with a propagation policy.
pub(crate) async fn delete_for_collector(
    state: &Arc<ServerState>,
    def: &'static ResourceDef,
    ns: Option<&str>,
    name: &str,
    policy: &str,
) -> Result<(), ApiError> {
    let o = DeleteOptions {
        policy: Some(policy.to_string()),
        ..Default::default()
    };
    delete_one(state, def, ns, name, &o).await.map(|_| ())
}

/// DELETE on an object.
pub async fn delete(
    state: &Arc<ServerState>,
    t: &Target,
    name: &str,
    q: &HashMap<String, String>,
    body: &[u8],
) -> Result<Response, ApiError> {
    let o = delete_options(q, body)?;
    let (code, obj) = delete_one(state, t.def, t.namespace.as_deref(), name, &o).await?;
    Ok(json_response(code, &out(t.def, obj), &deprecations(t.def)))
}

/// DELETE on a collection.
pub async fn delete_collection(
    state: &Arc<ServerState>,
    t: &Target,
    q: &HashMap<String, String>,
    body: &[u8],
) -> Result<Response, ApiError> {
    let o = delete_options(q, body)?;
    let opts = list_options(t.def, q)?;
    let page = state
        .registry
        .list(
            t.def,
            t.namespace.as_deref(),
            &ListOptions {
                labels: opts.labels,
                fields: opts.fields,
                ..Default::default()
            },
        )
        .await?;
    let mut deleted = Vec::new();
    for obj in page.items {
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        let ns = obj["metadata"]["namespace"].as_str().map(str::to_string);
        match delete_one(state, t.def, ns.as_deref(), &name, &o).await {
            Ok((_, gone)) => deleted.push(out(t.def, gone)),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let body = json!({"kind": t.def.list_kind(), "apiVersion": t.def.api_version(), "metadata": {"resourceVersion": page.revision.to_string()}, "items": deleted});
    Ok(json_response(StatusCode::OK, &body, &[]))
}

fn success_status(code: u16) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code})
}

/// The `scale` subresource view of a workload.
fn scale_of(def: &ResourceDef, obj: &Value) -> Value {
    let selector = obj["spec"]["selector"].clone();
    let sel = crate::selectors::selector_string(&selector);
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": obj["metadata"]["name"],
            "namespace": obj["metadata"]["namespace"],
            "uid": obj["metadata"]["uid"],
            "resourceVersion": obj["metadata"]["resourceVersion"],
            "creationTimestamp": obj["metadata"]["creationTimestamp"],
        },
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(if def.kind == "StatefulSet" || def.kind == "Deployment" || def.kind == "ReplicaSet" { 1 } else { 0 })},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": sel},
    })
}

/// GET/PUT/PATCH on `scale`.
pub async fn scale(
    state: &Arc<ServerState>,
    t: &Target,
    name: &str,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
    q: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    if method == Method::GET {
        let obj = state
            .registry
            .get(t.def, t.namespace.as_deref(), name)
            .await?;
        return Ok(json_response(StatusCode::OK, &scale_of(t.def, &obj), &[]));
    }
    let dry = dry_run(q)?;
    let input: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding body: {e}")))?;
    let patch_kind = if method == Method::PATCH {
        let ct = content_type(headers).unwrap_or("");
        Some(
            object_patch::PatchType::from_content_type(ct)
                .ok_or_else(|| ApiError::unsupported_media_type(ct))?,
        )
    } else {
        None
    };
    let defs = api_schema::definitions();
    let schema = object_patch::SchemaView::new(defs);
    let result = write(state, t, name, dry, |current| {
        let cur_scale = scale_of(t.def, &current);
        let new_scale = match &patch_kind {
            Some(k) => object_patch::apply(
                *k,
                &cur_scale,
                &input,
                &schema,
                "io.k8s.api.autoscaling.v1.Scale",
            )
            .map_err(patch_error)?,
            None => input.clone(),
        };
        if let Some(rv) = new_scale["metadata"]["resourceVersion"]
            .as_str()
            .filter(|s| !s.is_empty())
        {
            if Some(rv) != current["metadata"]["resourceVersion"].as_str() {
                return Err(ApiError::conflict(&qualified(t.def), name));
            }
        }
        let replicas = new_scale["spec"]["replicas"].as_i64().unwrap_or(0);
        if replicas < 0 {
            return Err(ApiError::invalid(
                "Scale",
                "autoscaling",
                name,
                vec![Cause::invalid(
                    "spec.replicas",
                    &json!(replicas),
                    "must be greater than or equal to 0",
                )],
            ));
        }
        let mut obj = current.clone();
        obj["spec"]["replicas"] = json!(replicas);
        let mut w = Vec::new();
        prepare_update(t.def, obj, &current, FieldValidation::Ignore, &mut w, false)
    })
    .await?;
    Ok(json_response(
        StatusCode::OK,
        &scale_of(t.def, &result),
        &[],
    ))
}

/// POST pods/{name}/binding: the scheduler assigns a node.
pub async fn bind(
    state: &Arc<ServerState>,
    t: &Target,
    name: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    let b: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding Binding: {e}")))?;
    let node = b["target"]["name"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::invalid("Binding", "", name, vec![Cause::required("target.name")])
        })?
        .to_string();
    state.registry.guaranteed_update(t.def, t.namespace.as_deref(), name, |mut pod| {
        if pod["metadata"].get("deletionTimestamp").is_some_and(|v| !v.is_null()) {
            return Err(ApiError::conflict("pods", name));
        }
        if let Some(existing) = pod["spec"]["nodeName"].as_str().filter(|s| !s.is_empty()) {
            return Err(ApiError::new(409, "Conflict", format!("Operation cannot be fulfilled on pods/binding \"{name}\": pod {name} is already assigned to node \"{existing}\"")));
        }
        pod["spec"]["nodeName"] = json!(node);
        let conds = pod["status"]["conditions"].as_array().cloned().unwrap_or_default();
        let mut conds: Vec<Value> = conds.into_iter().filter(|c| c["type"] != "PodScheduled").collect();
        conds.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": objects::now_rfc3339()}));
        pod["status"]["conditions"] = json!(conds);
        Ok(Change::Write(pod))
    }).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &success_status(201),
        &[],
    ))
}

/// POST pods/{name}/eviction: delete the pod as an eviction.
pub async fn evict(
    state: &Arc<ServerState>,
    t: &Target,
    name: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    let b: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding Eviction: {e}")))?
    };
    let opts = b
        .get("deleteOptions")
        .map(|d| serde_json::to_vec(d).unwrap_or_default())
        .unwrap_or_default();
    let o = delete_options(&HashMap::new(), &opts)?;
    delete_one(state, t.def, t.namespace.as_deref(), name, &o).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &success_status(201),
        &[],
    ))
}

/// PUT namespaces/{name}/finalize: replace spec.finalizers.
pub async fn finalize(
    state: &Arc<ServerState>,
    t: &Target,
    name: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    let b: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding Namespace: {e}")))?;
    let fins = b["spec"]["finalizers"].clone();
    let result = state
        .registry
        .guaranteed_update(t.def, None, name, |mut ns| {
            ns["spec"]["finalizers"] = if fins.is_null() {
                json!([])
            } else {
                fins.clone()
            };
            Ok(Change::Write(ns))
        })
        .await?;
    Ok(json_response(StatusCode::OK, &result, &[]))
}
