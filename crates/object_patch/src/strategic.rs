//! Kubernetes strategic merge patch, driven by an OpenAPI schema's patch metadata.
//!
//! Semantics (as the Kubernetes API server applies them):
//! * maps merge recursively, `null` deletes a key, `{"$patch": "replace"}` replaces a map,
//!   `{"$patch": "delete"}` removes it, `$retainKeys` drops the keys it does not list;
//! * lists whose field has strategy `merge` and a merge key merge element-wise by that key
//!   (an element `{"<key>": v, "$patch": "delete"}` removes the element, an element
//!   `{"$patch": "replace"}` makes the rest of the patch list replace the whole list); lists of
//!   scalars with strategy `merge` become the ordered union, and
//!   `$deleteFromPrimitiveList/<field>` removes values;
//! * `$setElementOrder/<field>` fixes the order of the merged list: listed elements in the listed
//!   order, server-only elements interleaved where they were in the live list;
//! * without a merge strategy (or without schema), lists are replaced wholesale.
//!
//! Without `$setElementOrder`, elements that the patch adds to a merged list end up in front of
//! the live elements that follow them, exactly like Kubernetes.

use serde_json::{Map, Value};

use crate::error::{kind_name, PatchError};
use crate::schema::{FieldMeta, Node, SchemaView};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ORDER_PREFIX: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_PREFIX: &str = "$deleteFromPrimitiveList/";

/// Applies a Kubernetes strategic merge patch to `doc`, an object of the OpenAPI definition
/// `root_definition` (e.g. `io.k8s.api.apps.v1.Deployment`) in `schema`.
///
/// Both `doc` and `patch` must be JSON objects. Where the schema does not describe a field (or
/// `root_definition` is unknown), maps still merge and lists are replaced, like a JSON merge
/// patch; the `$patch` and `$retainKeys` directives keep working there.
pub fn apply_strategic_merge_patch(
    doc: &Value,
    patch: &Value,
    schema: &SchemaView,
    root_definition: &str,
) -> Result<Value, PatchError> {
    let (Value::Object(doc), Value::Object(patch)) = (doc, patch) else {
        return Err(PatchError::BadJsonDocument);
    };
    let root = schema.root(root_definition);
    if root.is_none() {
        tracing::debug!(
            definition = root_definition,
            "no schema for strategic merge patch; lists will be replaced"
        );
    }
    let merger = Merger { view: *schema };
    let out = merger
        .merge_map(doc.clone(), patch.clone(), root)?
        .unwrap_or_default();
    Ok(Value::Object(out))
}

struct Merger<'a> {
    view: SchemaView<'a>,
}

fn compact(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn unknown_directive(directive: &Value, map: &Map<String, Value>) -> PatchError {
    PatchError::UnknownPatchDirective {
        directive: match directive {
            Value::String(s) => s.clone(),
            other => compact(other),
        },
        map: compact(map),
    }
}

/// Equality of JSON values where numbers compare by value (`80` == `80.0`), like Go's float64s.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                x == y
            } else if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                x == y
            } else {
                x.as_f64() == y.as_f64()
            }
        }
        _ => a == b,
    }
}

/// The merge key value of a list element, if it has a non-null one.
fn key_of<'v>(elem: &'v Value, merge_key: &str) -> Option<&'v Value> {
    elem.as_object()
        .and_then(|m| m.get(merge_key))
        .filter(|v| !v.is_null())
}

fn missing_key(elem: &Value, merge_key: &str) -> PatchError {
    PatchError::MissingMergeKey {
        map: compact(elem),
        key: merge_key.to_string(),
    }
}

/// How list elements are identified: by merge key (lists of maps) or by value (scalars).
#[derive(Clone, Copy)]
enum Identity<'k> {
    Key(&'k str),
    Value,
}

impl Identity<'_> {
    fn id<'v>(&self, elem: &'v Value) -> Result<&'v Value, PatchError> {
        match self {
            Identity::Key(k) => key_of(elem, k).ok_or_else(|| missing_key(elem, k)),
            Identity::Value => Ok(elem),
        }
    }

    /// Position of `elem` in `list`, comparing identities.
    fn index_in(&self, list: &[Value], elem: &Value) -> Option<usize> {
        let id = self.id(elem).ok()?;
        list.iter()
            .position(|other| self.id(other).is_ok_and(|o| json_eq(o, id)))
    }
}

/// Orders a merged list: `patch_items` (those named by `patch_order`) in that order,
/// `server_only` in their live order, both interleaved following `server_order` (the live list)
/// where both sides know their position.
fn normalize_order(
    merged: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    ident: Identity,
) -> Result<Vec<Value>, PatchError> {
    for v in merged.iter().chain(patch_order) {
        ident.id(v)?;
    }
    // (element, position in the patch order, position in the live list), computed once
    let tagged = merged.into_iter().map(|v| {
        let p = ident.index_in(patch_order, &v);
        let s = ident.index_in(server_order, &v);
        (v, p, s)
    });
    let (mut patch_items, mut server_only): (Vec<_>, Vec<_>) =
        tagged.partition(|(_, p, _)| p.is_some());
    patch_items.sort_by_key(|(_, p, _)| p.unwrap_or(usize::MAX));
    server_only.sort_by_key(|(_, _, s)| s.unwrap_or(usize::MAX));

    let mut out = Vec::with_capacity(patch_items.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = patch_items.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((_, _, ls)), Some((_, _, rs))) => {
                matches!((ls, rs), (Some(li), Some(ri)) if li < ri)
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next.map(|(v, _, _)| v));
    }
    Ok(out)
}

/// The common kind of the elements of lists that are merged together.
fn element_kind(lists: &[&[Value]]) -> Result<Option<&'static str>, PatchError> {
    let mut kind = None;
    for v in lists.iter().flat_map(|l| l.iter()) {
        let k = kind_name(v);
        if k == "slice" {
            return Err(PatchError::ListOfLists);
        }
        match kind {
            None => kind = Some(k),
            Some(prev) if prev != k => {
                return Err(PatchError::MixedListElements(compact(&lists)));
            }
            Some(_) => {}
        }
    }
    Ok(kind)
}

impl<'a> Merger<'a> {
    /// Merges `patch` into `original`. `None` means the map is to be deleted (`$patch: delete`).
    fn merge_map(
        &self,
        mut original: Map<String, Value>,
        mut patch: Map<String, Value>,
        node: Option<Node<'a>>,
    ) -> Result<Option<Map<String, Value>>, PatchError> {
        if let Some(directive) = patch.remove(DIRECTIVE) {
            return match directive.as_str() {
                Some("replace") => self.clean_map(patch),
                Some("delete") => Ok(None),
                _ => {
                    patch.insert(DIRECTIVE.to_string(), directive.clone());
                    Err(unknown_directive(&directive, &patch))
                }
            };
        }
        apply_retain_keys(&mut original, &mut patch)?;
        self.apply_set_element_order(&mut original, &mut patch, node)?;

        let mut deletions = Vec::new();
        for (key, patch_value) in patch {
            if let Some(field) = key.strip_prefix(DELETE_FROM_PRIMITIVE_PREFIX) {
                if field.is_empty() {
                    return Err(PatchError::BadPrimitiveListFormat);
                }
                deletions.push((field.to_string(), patch_value));
                continue;
            }
            if key.starts_with(SET_ORDER_PREFIX) {
                // only left over when malformed (handled above) — never copy it
                continue;
            }
            if patch_value.is_null() {
                original.remove(&key);
                continue;
            }
            let meta = self.view.field(node, &key);
            let Some(slot) = original.get_mut(&key) else {
                if let Some(v) = self.clean_value(patch_value)? {
                    original.insert(key, v);
                }
                continue;
            };
            let merged = match (std::mem::take(slot), patch_value) {
                (Value::Object(o), Value::Object(p)) => {
                    if meta.strategy.replace {
                        self.clean_map(p)?.map(Value::Object)
                    } else {
                        self.merge_map(o, p, meta.node)?.map(Value::Object)
                    }
                }
                (Value::Array(o), Value::Array(p)) => {
                    if meta.strategy.merge {
                        Some(Value::Array(self.merge_list(o, p, &meta)?))
                    } else {
                        Some(Value::Array(self.clean_list(p)?))
                    }
                }
                (_, p) => self.clean_value(p)?,
            };
            match merged {
                Some(v) => *slot = v,
                None => {
                    original.remove(&key);
                }
            }
        }

        for (field, values) in deletions {
            let Value::Array(values) = values else {
                return Err(PatchError::BadPrimitiveListFormat);
            };
            if values.iter().any(|v| v.is_object() || v.is_array()) {
                return Err(PatchError::BadPrimitiveListFormat);
            }
            if let Some(Value::Array(list)) = original.get_mut(&field) {
                list.retain(|v| !values.iter().any(|d| json_eq(d, v)));
            }
        }
        Ok(Some(original))
    }

    /// Processes every `$setElementOrder/<field>` directive of `patch` together with the
    /// field's patch list, leaving the ordered result in `original`.
    fn apply_set_element_order(
        &self,
        original: &mut Map<String, Value>,
        patch: &mut Map<String, Value>,
        node: Option<Node<'a>>,
    ) -> Result<(), PatchError> {
        let keys: Vec<String> = patch
            .keys()
            .filter(|k| k.starts_with(SET_ORDER_PREFIX))
            .cloned()
            .collect();
        for key in keys {
            let order = patch.remove(&key).unwrap_or_default();
            let field = &key[SET_ORDER_PREFIX.len()..];
            let Value::Array(order) = order else {
                return Err(PatchError::BadSetElementOrderFormat);
            };
            if field.is_empty() {
                return Err(PatchError::BadSetElementOrderFormat);
            }
            let meta = self.view.field(node, field);
            if !meta.strategy.merge {
                // The list is replaced by the patch (if any): nothing to order against.
                continue;
            }
            let as_list = |v: Option<&Value>| -> Result<Option<Vec<Value>>, PatchError> {
                match v {
                    None => Ok(None),
                    Some(Value::Array(a)) => Ok(Some(a.clone())),
                    Some(other) => Err(PatchError::BadArgType {
                        expected: "slice",
                        actual: kind_name(other),
                    }),
                }
            };
            let live = as_list(original.get(field))?;
            let patch_list = as_list(patch.get(field))?;
            let kind = element_kind(&[
                live.as_deref().unwrap_or_default(),
                patch_list.as_deref().unwrap_or_default(),
                &order,
            ])?;
            let ident = match (kind, meta.merge_key) {
                (Some("map"), Some(k)) => Identity::Key(k),
                (Some("map"), None) => return Err(PatchError::NoMergeKey),
                _ => Identity::Value,
            };
            if let Some(p) = &patch_list {
                validate_order(p, &order, ident)?;
            }
            let server_order = live.clone().unwrap_or_default();
            let merged = match (live, patch_list) {
                (Some(o), None) => o,
                (None, Some(p)) => self.clean_list(p)?,
                (Some(o), Some(p)) => self.merge_list(o, p, &meta)?,
                (None, None) => continue,
            };
            patch.remove(field);
            let ordered = normalize_order(merged, &order, &server_order, ident)?;
            original.insert(field.to_string(), Value::Array(ordered));
        }
        Ok(())
    }

    /// Merges a list whose field has the `merge` strategy.
    fn merge_list(
        &self,
        mut original: Vec<Value>,
        patch: Vec<Value>,
        meta: &FieldMeta<'a>,
    ) -> Result<Vec<Value>, PatchError> {
        if original.is_empty() && patch.is_empty() {
            return Ok(original);
        }
        match element_kind(&[&original, &patch])? {
            Some("map") => {}
            _ => {
                // Scalars: ordered union.
                let server_order = original.clone();
                for v in patch.iter() {
                    if !original.iter().any(|o| json_eq(o, v)) {
                        original.push(v.clone());
                    }
                }
                return normalize_order(original, &patch, &server_order, Identity::Value);
            }
        }
        let merge_key = meta.merge_key.ok_or(PatchError::NoMergeKey)?;
        let elem_node = self.view.items(meta.node);

        let mut replace = false;
        let mut plain = Vec::with_capacity(patch.len());
        for elem in patch {
            let Value::Object(map) = elem else { continue };
            let Some(directive) = map.get(DIRECTIVE) else {
                plain.push(map);
                continue;
            };
            match directive.as_str() {
                Some("delete") => {
                    let Some(id) = map.get(merge_key).filter(|v| !v.is_null()) else {
                        return Err(missing_key(&Value::Object(map), merge_key));
                    };
                    original.retain(|o| !key_of(o, merge_key).is_some_and(|k| json_eq(k, id)));
                }
                Some("replace") => replace = true,
                Some("merge") => return Err(PatchError::MergeDirectiveInList),
                _ => return Err(unknown_directive(directive, &map)),
            }
        }
        if replace {
            original = Vec::with_capacity(plain.len());
            for map in plain.drain(..) {
                if let Some(m) = self.clean_map(map)? {
                    original.push(Value::Object(m));
                }
            }
        }

        let server_order = original.clone();
        let mut patch_order = Vec::with_capacity(plain.len());
        for map in plain {
            let Some(id) = map.get(merge_key).filter(|v| !v.is_null()).cloned() else {
                return Err(missing_key(&Value::Object(map), merge_key));
            };
            patch_order.push(Value::Object(Map::from_iter([(
                merge_key.to_string(),
                id.clone(),
            )])));
            let found = original
                .iter()
                .position(|o| key_of(o, merge_key).is_some_and(|k| json_eq(k, &id)));
            match found {
                Some(i) => {
                    let Value::Object(live) = std::mem::take(&mut original[i]) else {
                        return Err(PatchError::BadArgType {
                            expected: "map",
                            actual: kind_name(&original[i]),
                        });
                    };
                    match self.merge_map(live, map, elem_node)? {
                        Some(m) => original[i] = Value::Object(m),
                        None => {
                            original.remove(i);
                        }
                    }
                }
                None => {
                    if let Some(m) = self.clean_map(map)? {
                        original.push(Value::Object(m));
                    }
                }
            }
        }
        normalize_order(
            original,
            &patch_order,
            &server_order,
            Identity::Key(merge_key),
        )
    }

    /// A patch value that lands where nothing is merged (new key, replaced list, type change):
    /// directives are resolved and removed, `null`s dropped. `None`: nothing is to be stored.
    fn clean_value(&self, v: Value) -> Result<Option<Value>, PatchError> {
        Ok(match v {
            Value::Object(m) => self.clean_map(m)?.map(Value::Object),
            Value::Array(a) => Some(Value::Array(self.clean_list(a)?)),
            Value::Null => None,
            scalar => Some(scalar),
        })
    }

    fn clean_map(
        &self,
        mut m: Map<String, Value>,
    ) -> Result<Option<Map<String, Value>>, PatchError> {
        if let Some(directive) = m.remove(DIRECTIVE) {
            match directive.as_str() {
                Some("replace") => {}
                Some("delete") => return Ok(None),
                _ => {
                    m.insert(DIRECTIVE.to_string(), directive.clone());
                    return Err(unknown_directive(&directive, &m));
                }
            }
        }
        if let Some(rk) = m.remove(RETAIN_KEYS) {
            if !rk.is_array() {
                return Err(PatchError::BadRetainKeysFormat);
            }
        }
        let mut out = Map::new();
        for (k, v) in m {
            if k.starts_with(SET_ORDER_PREFIX) || k.starts_with(DELETE_FROM_PRIMITIVE_PREFIX) {
                continue;
            }
            if let Some(v) = self.clean_value(v)? {
                out.insert(k, v);
            }
        }
        Ok(Some(out))
    }

    fn clean_list(&self, list: Vec<Value>) -> Result<Vec<Value>, PatchError> {
        let mut out = Vec::with_capacity(list.len());
        for elem in list {
            match elem {
                Value::Object(m) => {
                    if let Some(directive) = m.get(DIRECTIVE) {
                        match directive.as_str() {
                            // special elements never become list items
                            Some("delete") | Some("replace") => continue,
                            Some("merge") => return Err(PatchError::MergeDirectiveInList),
                            _ => return Err(unknown_directive(directive, &m)),
                        }
                    }
                    if let Some(m) = self.clean_map(m)? {
                        out.push(Value::Object(m));
                    }
                }
                Value::Array(a) => out.push(Value::Array(self.clean_list(a)?)),
                other => out.push(other),
            }
        }
        Ok(out)
    }
}

/// Applies a `$retainKeys` directive: every key the patch sets must be listed, and keys of
/// `original` that are not listed are dropped.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), PatchError> {
    let Some(retain) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(PatchError::BadRetainKeysFormat);
    };
    let mut keys = Vec::with_capacity(retain.len());
    for k in &retain {
        keys.push(k.as_str().ok_or(PatchError::BadRetainKeysFormat)?);
    }
    for (k, v) in patch.iter() {
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_PREFIX)
            || k.starts_with(SET_ORDER_PREFIX)
        {
            continue;
        }
        if !keys.contains(&k.as_str()) {
            return Err(PatchError::BadRetainKeysFormat);
        }
    }
    original.retain(|k, _| keys.contains(&k.as_str()));
    Ok(())
}

/// Checks that the elements of a patch list appear in its `$setElementOrder` list, in the same
/// relative order (deletions and other directive elements are ignored).
fn validate_order(patch: &[Value], order: &[Value], ident: Identity) -> Result<(), PatchError> {
    if patch.is_empty() || order.is_empty() {
        return Ok(());
    }
    let relevant: Vec<&Value> = patch
        .iter()
        .filter(|v| !v.as_object().is_some_and(|m| m.contains_key(DIRECTIVE)))
        .collect();
    let (mut pi, mut oi) = (0, 0);
    while pi < relevant.len() && oi < order.len() {
        if json_eq(ident.id(relevant[pi])?, ident.id(&order[oi])?) {
            pi += 1;
        }
        oi += 1;
    }
    if pi < relevant.len() {
        return Err(PatchError::SetElementOrderMismatch {
            patch: compact(&patch),
            order: compact(&order),
        });
    }
    Ok(())
}

#[cfg(test)]
#[path = "strategic_tests.rs"]
mod tests;
