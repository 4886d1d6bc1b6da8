//! Builds the OpenAPI v2-style `definitions` map for everything the catalogue serves: the
//! schemars schemas of k8s-openapi's types, normalised to the shape Kubernetes publishes.

use std::collections::{BTreeMap, BTreeSet};

use api_resources::{ResourceDef, Subresource};
use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

use crate::{extensions, registry};

pub(crate) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub(crate) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub(crate) const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
pub(crate) const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
pub(crate) const API_VERSIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIVersions";
pub(crate) const API_GROUP_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroupList";
pub(crate) const API_GROUP: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroup";
pub(crate) const API_RESOURCE_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList";
pub(crate) const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
pub(crate) const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";

/// Definitions published whatever the catalogue holds.
const ALWAYS: &[&str] = &[
    STATUS,
    DELETE_OPTIONS,
    WATCH_EVENT,
    PATCH,
    API_VERSIONS,
    API_GROUP_LIST,
    API_GROUP,
    API_RESOURCE_LIST,
];

/// The v2 reference to a definition.
pub(crate) fn v2_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/definitions/{name}") })
}

/// The Kubernetes definition name of a built-in kind: `io.k8s.api.<first label of the
/// group, or core>.<version>.<kind>`.
pub(crate) fn canonical_name(group: &str, version: &str, kind: &str) -> String {
    let package = match group.split('.').next() {
        Some(g) if !g.is_empty() => g,
        _ => "core",
    };
    format!("io.k8s.api.{package}.{version}.{kind}")
}

/// The definition a subresource speaks: the resource's own for `status`-like subresources,
/// otherwise the canonical one of the subresource's kind.
pub(crate) fn subresource_definition(r: &ResourceDef, s: &Subresource) -> String {
    if s.kind == r.kind && s.group == r.group && s.version == r.version {
        r.definition.to_string()
    } else {
        canonical_name(s.group, s.version, s.kind)
    }
}

/// The list definition of a resource's kind.
pub(crate) fn list_name(r: &ResourceDef) -> String {
    format!("{}List", r.definition)
}

/// Every (group, version) the catalogue serves, in catalogue order.
pub(crate) fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for r in api_resources::all() {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

/// Builds the definitions map.
pub(crate) fn build() -> Map<String, Value> {
    // definition -> the group/version/kinds published as it.
    let mut gvks: BTreeMap<String, Vec<(&str, &str, String)>> = BTreeMap::new();
    let mut add_gvk = |def: String, g: &'static str, v: &'static str, k: String| {
        let e = gvks.entry(def).or_default();
        if !e
            .iter()
            .any(|(eg, ev, ek)| *eg == g && *ev == v && *ek == k)
        {
            e.push((g, v, k));
        }
    };
    let mut lists: Vec<(String, &'static ResourceDef)> = Vec::new();
    for r in api_resources::all() {
        add_gvk(
            r.definition.to_string(),
            r.group,
            r.version,
            r.kind.to_string(),
        );
        add_gvk(list_name(r), r.group, r.version, r.list_kind());
        if !lists.iter().any(|(n, _)| *n == list_name(r)) {
            lists.push((list_name(r), r));
        }
        for s in r.subresources {
            add_gvk(
                subresource_definition(r, s),
                s.group,
                s.version,
                s.kind.to_string(),
            );
        }
    }
    add_gvk(STATUS.to_string(), "", "v1", "Status".to_string());
    for (g, v) in group_versions() {
        add_gvk(
            DELETE_OPTIONS.to_string(),
            g,
            v,
            "DeleteOptions".to_string(),
        );
        add_gvk(WATCH_EVENT.to_string(), g, v, "WatchEvent".to_string());
    }

    let mut wanted: BTreeSet<String> = gvks
        .keys()
        .filter(|n| !lists.iter().any(|(l, _)| l == *n))
        .cloned()
        .collect();
    wanted.extend(ALWAYS.iter().map(|s| s.to_string()));

    let mut settings = SchemaSettings::draft07();
    settings.transforms.clear();
    settings.meta_schema = None;
    settings.definitions_path = "/definitions".into();
    let mut generator = settings.into_generator();
    for name in &wanted {
        match registry::find(name) {
            Some(entry) => {
                (entry.add)(&mut generator);
            }
            None => tracing::warn!(definition = %name, "no schema registered; not published"),
        }
    }
    let mut defs = generator.take_definitions(false);

    normalise(&mut defs);
    for (name, r) in &lists {
        if let Some(list) = list_schema(&defs, r) {
            defs.insert(name.clone(), list);
        }
    }
    for (name, kinds) in &gvks {
        if let Some(def) = defs.get_mut(name).and_then(Value::as_object_mut) {
            let list: Vec<Value> = kinds
                .iter()
                .map(|(g, v, k)| json!({ "group": g, "kind": k, "version": v }))
                .collect();
            def.insert("x-kubernetes-group-version-kind".into(), Value::Array(list));
        }
    }
    extensions::apply(&mut defs);
    defs
}

/// Shapes k8s-openapi's output like Kubernetes' own documents.
fn normalise(defs: &mut Map<String, Value>) {
    if let Some(Value::Object(d)) = defs.get_mut(INT_OR_STRING) {
        d.remove("x-kubernetes-int-or-string");
        d.insert("type".into(), "string".into());
        d.insert("format".into(), "int-or-string".into());
    }
    if let Some(Value::Object(d)) = defs.get_mut(QUANTITY) {
        d.remove("x-kubernetes-int-or-string");
        d.insert("type".into(), "string".into());
    }
    // k8s-openapi requires `metadata` (it is not an Option in Rust); Kubernetes never does.
    for def in defs.values_mut() {
        let Some(d) = def.as_object_mut() else {
            continue;
        };
        let now_empty = match d.get_mut("required").and_then(Value::as_array_mut) {
            Some(req) => {
                req.retain(|v| v != "metadata");
                req.is_empty()
            }
            None => false,
        };
        if now_empty {
            d.remove("required");
        }
    }
}

/// The `<Kind>List` schema of a resource (k8s-openapi has one generic `List<T>` without a
/// schema).
fn list_schema(defs: &Map<String, Value>, r: &ResourceDef) -> Option<Value> {
    let item = defs.get(r.definition)?.get("properties")?;
    let api_version = item.get("apiVersion")?.clone();
    let kind = item.get("kind")?.clone();
    Some(json!({
        "description": format!("{}List holds a list of {} objects.", r.kind, r.kind),
        "type": "object",
        "properties": {
            "apiVersion": api_version,
            "items": {
                "description": format!("The {} objects of the list.", r.kind),
                "type": "array",
                "items": v2_ref(r.definition),
            },
            "kind": kind,
            "metadata": {
                "$ref": format!("#/definitions/{LIST_META}"),
                "description": "Standard list metadata: resourceVersion and continue token.",
            },
        },
        "required": ["items"],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names() {
        assert_eq!(
            canonical_name("", "v1", "Binding"),
            "io.k8s.api.core.v1.Binding"
        );
        assert_eq!(
            canonical_name("coordination.k8s.io", "v1", "Lease"),
            "io.k8s.api.coordination.v1.Lease"
        );
        assert_eq!(
            canonical_name("autoscaling", "v1", "Scale"),
            "io.k8s.api.autoscaling.v1.Scale"
        );
    }

    #[test]
    fn every_catalogue_definition_is_registered() {
        for r in api_resources::all() {
            assert!(
                registry::find(r.definition).is_some(),
                "{} not registered",
                r.definition
            );
            for s in r.subresources {
                let d = subresource_definition(r, s);
                assert!(registry::find(&d).is_some(), "{d} not registered");
            }
        }
        for d in ALWAYS {
            assert!(registry::find(d).is_some(), "{d} not registered");
        }
    }
}
