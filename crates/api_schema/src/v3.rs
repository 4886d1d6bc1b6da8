//! OpenAPI v3 documents, one per discovery path (`api`, `api/v1`, `apis`, `apis/<group>`,
//! `apis/<group>/<version>`), as the Kubernetes API server serves under `/openapi/v3/`.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use crate::definitions;
use crate::paths::{self, Dialect, PathItem};

/// The discovery paths that have a v3 document, in a stable order.
pub(crate) fn document_paths() -> Vec<String> {
    let mut out = vec!["api".to_string()];
    let gvs = definitions::group_versions();
    for (g, v) in &gvs {
        if g.is_empty() {
            out.push(format!("api/{v}"));
        }
    }
    out.push("apis".to_string());
    let mut groups: Vec<&str> = Vec::new();
    for (g, _) in &gvs {
        if !g.is_empty() && !groups.contains(g) {
            groups.push(g);
        }
    }
    for g in groups {
        out.push(format!("apis/{g}"));
        for (_, v) in gvs.iter().filter(|(gg, _)| *gg == g) {
            out.push(format!("apis/{g}/{v}"));
        }
    }
    out
}

/// The path items a document describes; None for an unknown path.
fn path_items(path: &str) -> Option<Vec<PathItem>> {
    let gvs = definitions::group_versions();
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["api"] => Some(vec![paths::core_versions_path()]),
        ["apis"] => Some(vec![paths::groups_path()]),
        ["api", v] if gvs.contains(&("", v)) => Some(paths::group_version_paths("", v)),
        ["apis", g] if !g.is_empty() && gvs.iter().any(|(gg, _)| gg == g) => {
            Some(vec![paths::group_path(g)])
        }
        ["apis", g, v] if !g.is_empty() && gvs.contains(&(g, v)) => {
            Some(paths::group_version_paths(g, v))
        }
        _ => None,
    }
}

/// Builds the v3 document of one discovery path.
pub(crate) fn build(path: &str, defs: &Map<String, Value>) -> Option<Value> {
    let items = path_items(path)?;
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    for item in &items {
        wanted.extend(item.definitions().map(str::to_string));
    }
    let names = closure(defs, wanted);
    let schemas: Map<String, Value> = names
        .iter()
        .filter_map(|n| defs.get(n).map(|d| (n.clone(), definition_to_v3(n, d))))
        .collect();
    Some(json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": "unversioned" },
        "paths": paths::render(Dialect::V3, &items),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "BearerToken": {
                    "description": "Bearer token authentication",
                    "in": "header",
                    "name": "authorization",
                    "type": "apiKey",
                },
            },
        },
        "security": [{ "BearerToken": [] }],
    }))
}

/// Converts one definition. IntOrString and Quantity are published the way Kubernetes'
/// v3 documents have them: untyped `oneOf`s (v2 says `type: string`), which is also what
/// makes `kubectl explain` name them instead of printing `<string>`.
fn definition_to_v3(name: &str, def: &Value) -> Value {
    let one_of = match name {
        definitions::INT_OR_STRING => json!([{ "type": "integer" }, { "type": "string" }]),
        definitions::QUANTITY => json!([{ "type": "string" }, { "type": "number" }]),
        _ => return to_v3(def),
    };
    let mut out = Map::new();
    if let Some(d) = def.get("description") {
        out.insert("description".into(), d.clone());
    }
    if let Some(f) = def.get("format") {
        out.insert("format".into(), f.clone());
    }
    out.insert("oneOf".into(), one_of);
    Value::Object(out)
}

/// `wanted` plus every definition they reference, transitively.
pub(crate) fn closure(defs: &Map<String, Value>, wanted: BTreeSet<String>) -> BTreeSet<String> {
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut todo: Vec<String> = wanted.into_iter().collect();
    while let Some(name) = todo.pop() {
        if !done.insert(name.clone()) {
            continue;
        }
        if let Some(d) = defs.get(&name) {
            let mut refs = BTreeSet::new();
            collect_refs(d, &mut refs);
            todo.extend(refs.into_iter().filter(|r| !done.contains(r)));
        }
    }
    done
}

/// Adds the definition names of every `$ref` under `v` (v2 or v3 form) to `out`.
pub(crate) fn collect_refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(o) => {
            for (k, val) in o {
                if k == "$ref" {
                    if let Some(name) = val.as_str().and_then(ref_name) {
                        out.insert(name.to_string());
                    }
                } else {
                    collect_refs(val, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

/// The definition name of a v2 or v3 local reference.
pub(crate) fn ref_name(r: &str) -> Option<&str> {
    r.strip_prefix("#/definitions/")
        .or_else(|| r.strip_prefix("#/components/schemas/"))
}

/// Converts a v2 schema to v3: references point into `#/components/schemas/`, and a reference
/// with sibling keywords (description, patch extensions) becomes `allOf: [ref]` plus the
/// siblings, since siblings of `$ref` are ignored in OpenAPI 3.0.
pub(crate) fn to_v3(v: &Value) -> Value {
    let Value::Object(o) = v else {
        return v.clone();
    };
    let mut out = Map::new();
    let mut reference = None;
    for (k, val) in o {
        let converted = match k.as_str() {
            "$ref" => {
                reference = val.as_str().and_then(ref_name).map(str::to_string);
                if reference.is_none() {
                    out.insert(k.clone(), val.clone());
                }
                continue;
            }
            "properties" | "patternProperties" => match val {
                Value::Object(props) => Value::Object(
                    props
                        .iter()
                        .map(|(name, s)| (name.clone(), to_v3(s)))
                        .collect(),
                ),
                other => other.clone(),
            },
            "items" | "additionalProperties" | "not" => to_v3(val),
            "allOf" | "anyOf" | "oneOf" => match val {
                Value::Array(a) => Value::Array(a.iter().map(to_v3).collect()),
                other => other.clone(),
            },
            _ => val.clone(),
        };
        out.insert(k.clone(), converted);
    }
    if let Some(name) = reference {
        let r = json!({ "$ref": format!("#/components/schemas/{name}") });
        if out.is_empty() {
            return r;
        }
        out.insert("allOf".into(), json!([r]));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_with_siblings_become_all_of() {
        let v2 = json!({
            "type": "object",
            "properties": {
                "a": { "$ref": "#/definitions/X" },
                "b": { "$ref": "#/definitions/Y", "description": "d", "x-kubernetes-patch-strategy": "retainKeys" },
                "c": { "type": "array", "items": { "$ref": "#/definitions/Z" } },
                "m": { "type": "object", "additionalProperties": { "$ref": "#/definitions/Q" } },
            }
        });
        let v3 = to_v3(&v2);
        assert_eq!(
            v3["properties"]["a"],
            json!({ "$ref": "#/components/schemas/X" })
        );
        assert_eq!(
            v3["properties"]["b"]["allOf"],
            json!([{ "$ref": "#/components/schemas/Y" }])
        );
        assert_eq!(v3["properties"]["b"]["description"], "d");
        assert!(v3["properties"]["b"].get("$ref").is_none());
        assert_eq!(
            v3["properties"]["c"]["items"]["$ref"],
            "#/components/schemas/Z"
        );
        assert_eq!(
            v3["properties"]["m"]["additionalProperties"]["$ref"],
            "#/components/schemas/Q"
        );
        let mut refs = BTreeSet::new();
        collect_refs(&v3, &mut refs);
        assert_eq!(refs.len(), 4);
    }

    #[test]
    fn document_paths_cover_every_group_version() {
        let paths = document_paths();
        assert_eq!(paths[0], "api");
        assert!(paths.contains(&"api/v1".to_string()));
        assert!(paths.contains(&"apis".to_string()));
        assert!(paths.contains(&"apis/apps".to_string()));
        assert!(paths.contains(&"apis/apps/v1".to_string()));
        assert!(paths.contains(&"apis/extensions/v1beta1".to_string()));
        for p in &paths {
            assert!(path_items(p).is_some(), "{p}");
        }
        assert!(path_items("apis/apps/v2").is_none());
        assert!(path_items("apis//v1").is_none());
        assert!(path_items("").is_none());
        assert!(path_items("api/v1/pods").is_none());
    }
}
