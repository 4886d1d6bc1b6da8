//! A read-only view over an OpenAPI v2 style `definitions` map, answering the one question the
//! strategic merge patch needs: "how is the field `k` of this object patched?".

use std::sync::LazyLock;

use serde_json::{Map, Value};

/// How deep `$ref`/`allOf` chains are followed before giving up (guards against cycles).
const MAX_REF_DEPTH: usize = 32;

static EMPTY_DEFINITIONS: LazyLock<Map<String, Value>> = LazyLock::new(Map::new);

/// Borrows an OpenAPI `definitions` map (name -> schema) such as
/// `{"io.k8s.api.core.v1.PodSpec": {"properties": {...}}, ...}`.
///
/// References may be written `#/definitions/<name>`, `#/components/schemas/<name>` or
/// `#/$defs/<name>`; a schema `{"allOf": [{"$ref": ...}]}` (or `anyOf`/`oneOf`, as schemars
/// writes nullable references) is treated like the reference.
///
/// Patch metadata is read from the `x-kubernetes-patch-strategy` and
/// `x-kubernetes-patch-merge-key` extensions. Schemas generated from k8s-openapi's schemars
/// impls do not carry those extensions, so by default the view falls back to a built-in table
/// of the Kubernetes API types' patch strategies (keyed by definition name, e.g.
/// `io.k8s.api.core.v1.PodSpec` / `containers`); see [`SchemaView::with_builtin_patch_metadata`].
#[derive(Clone, Copy, Debug)]
pub struct SchemaView<'a> {
    definitions: &'a Map<String, Value>,
    builtin: bool,
}

/// Patch strategy of one field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Strategy {
    /// Lists: merge element-wise instead of replacing.
    pub merge: bool,
    /// Maps: replace instead of merging.
    pub replace: bool,
}

impl Strategy {
    fn parse(s: &str) -> Strategy {
        let mut out = Strategy::default();
        for part in s.split(',').map(str::trim) {
            match part {
                "merge" => out.merge = true,
                "replace" => out.replace = true,
                // retainKeys only matters through the `$retainKeys` directive in the patch
                _ => {}
            }
        }
        out
    }
}

/// A resolved (object) schema, with the definition name it came from when known.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Node<'a> {
    pub name: Option<&'a str>,
    pub schema: &'a Map<String, Value>,
}

/// What the schema says about one field of an object.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FieldMeta<'a> {
    /// The field's own schema (resolved), if described.
    pub node: Option<Node<'a>>,
    pub strategy: Strategy,
    pub merge_key: Option<&'a str>,
}

impl<'a> SchemaView<'a> {
    /// A view over `definitions`, with the built-in Kubernetes patch metadata fallback enabled.
    pub fn new(definitions: &'a Map<String, Value>) -> Self {
        SchemaView {
            definitions,
            builtin: true,
        }
    }

    /// A view with no definitions at all: strategic merge patches then behave like JSON merge
    /// patches (maps merge, lists are replaced) apart from the `$patch`/`$retainKeys`
    /// directives.
    pub fn empty() -> SchemaView<'static> {
        SchemaView {
            definitions: &EMPTY_DEFINITIONS,
            builtin: true,
        }
    }

    /// Enables or disables the built-in table of Kubernetes patch strategies used when a
    /// property carries no `x-kubernetes-patch-*` extension.
    pub fn with_builtin_patch_metadata(mut self, enabled: bool) -> Self {
        self.builtin = enabled;
        self
    }

    /// The raw schema of a definition.
    pub fn definition(&self, name: &str) -> Option<&'a Value> {
        self.definitions.get(name)
    }

    /// Resolves the root definition of a patched object.
    pub(crate) fn root(&self, name: &str) -> Option<Node<'a>> {
        let (key, schema) = self.definitions.get_key_value(name)?;
        let mut node = self.resolve(schema)?;
        if node.name.is_none() {
            node.name = Some(key.as_str());
        }
        Some(node)
    }

    /// Follows `$ref` and single-reference `allOf` wrappers down to an object schema.
    pub(crate) fn resolve(&self, schema: &'a Value) -> Option<Node<'a>> {
        let mut cur = schema;
        let mut name: Option<&'a str> = None;
        for _ in 0..MAX_REF_DEPTH {
            let obj = cur.as_object()?;
            if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
                let (key, target) = self.lookup_ref(r)?;
                name = Some(key);
                cur = target;
                continue;
            }
            let structural = ["properties", "items", "additionalProperties"]
                .iter()
                .any(|k| obj.contains_key(*k));
            if !structural {
                let wrapped = ["allOf", "anyOf", "oneOf"].iter().find_map(|k| {
                    obj.get(*k)
                        .and_then(Value::as_array)
                        .and_then(|all| all.iter().find(|s| is_ref_or_structural(s)))
                });
                if let Some(inner) = wrapped {
                    cur = inner;
                    continue;
                }
            }
            return Some(Node { name, schema: obj });
        }
        tracing::debug!("schema reference chain too deep; treating as undescribed");
        None
    }

    fn lookup_ref(&self, reference: &str) -> Option<(&'a str, &'a Value)> {
        let last = reference.rsplit('/').next()?;
        let name = last.replace("~1", "/").replace("~0", "~");
        let (k, v) = self.definitions.get_key_value(name.as_str())?;
        Some((k.as_str(), v))
    }

    /// Patch metadata and schema of field `key` of an object described by `parent`.
    pub(crate) fn field(&self, parent: Option<Node<'a>>, key: &str) -> FieldMeta<'a> {
        let Some(parent) = parent else {
            return FieldMeta::default();
        };
        let property = parent
            .schema
            .get("properties")
            .and_then(Value::as_object)
            .and_then(|props| props.get(key));
        let raw = property.or_else(|| {
            parent
                .schema
                .get("additionalProperties")
                .filter(|v| v.is_object())
        });
        let Some(raw) = raw else {
            return FieldMeta::default();
        };
        let node = self.resolve(raw);
        let ext = |name: &str| -> Option<&'a str> {
            raw.get(name).and_then(Value::as_str).or_else(|| {
                node.and_then(|n| n.schema.get(name))
                    .and_then(Value::as_str)
            })
        };
        let mut strategy = ext("x-kubernetes-patch-strategy");
        let mut merge_key = ext("x-kubernetes-patch-merge-key");
        if strategy.is_none() && property.is_some() && self.builtin {
            if let Some((s, k)) = parent.name.and_then(|n| builtin_patch_meta(n, key)) {
                strategy = Some(s);
                merge_key = k;
            }
        }
        FieldMeta {
            node,
            strategy: strategy.map(Strategy::parse).unwrap_or_default(),
            merge_key: merge_key.filter(|k| !k.is_empty()),
        }
    }

    /// Schema of the elements of a list field.
    pub(crate) fn items(&self, list: Option<Node<'a>>) -> Option<Node<'a>> {
        let items = list?.schema.get("items")?;
        self.resolve(items)
    }
}

fn is_ref_or_structural(s: &Value) -> bool {
    s.as_object().is_some_and(|o| {
        ["$ref", "properties", "items", "additionalProperties"]
            .iter()
            .any(|k| o.contains_key(*k))
    })
}

/// Patch strategies of the Kubernetes API types (from the `patchStrategy`/`patchMergeKey` tags
/// of the Go types), for schemas that lack the OpenAPI extensions.
fn builtin_patch_meta(
    definition: &str,
    field: &str,
) -> Option<(&'static str, Option<&'static str>)> {
    const CONDITIONS: (&str, Option<&str>) = ("merge", Some("type"));
    const BY_NAME: (&str, Option<&str>) = ("merge", Some("name"));
    let (group, kind) = definition.rsplit_once('.')?;
    let meta = match (group, kind, field) {
        ("io.k8s.apimachinery.pkg.apis.meta.v1", "ObjectMeta", "finalizers") => ("merge", None),
        ("io.k8s.apimachinery.pkg.apis.meta.v1", "ObjectMeta", "ownerReferences") => {
            ("merge", Some("uid"))
        }
        ("io.k8s.api.core.v1", "PodSpec", "volumes" | "resourceClaims") => {
            ("merge,retainKeys", Some("name"))
        }
        (
            "io.k8s.api.core.v1",
            "PodSpec",
            "initContainers"
            | "containers"
            | "ephemeralContainers"
            | "imagePullSecrets"
            | "schedulingGates",
        ) => BY_NAME,
        ("io.k8s.api.core.v1", "PodSpec", "hostAliases") => ("merge", Some("ip")),
        ("io.k8s.api.core.v1", "PodSpec", "topologySpreadConstraints") => {
            ("merge", Some("topologyKey"))
        }
        ("io.k8s.api.core.v1", "Container" | "EphemeralContainer", f) => match f {
            "ports" => ("merge", Some("containerPort")),
            "env" => BY_NAME,
            "volumeMounts" => ("merge", Some("mountPath")),
            "volumeDevices" => ("merge", Some("devicePath")),
            _ => return None,
        },
        ("io.k8s.api.core.v1", "ContainerStatus", "volumeMounts") => ("merge", Some("mountPath")),
        ("io.k8s.api.core.v1", "ContainerStatus", "allocatedResourcesStatus") => BY_NAME,
        ("io.k8s.api.core.v1", "PodStatus", f) => match f {
            "conditions" => CONDITIONS,
            "podIPs" | "hostIPs" => ("merge", Some("ip")),
            "resourceClaimStatuses" => ("merge,retainKeys", Some("name")),
            _ => return None,
        },
        ("io.k8s.api.core.v1", "ServiceSpec", "ports") => ("merge", Some("port")),
        ("io.k8s.api.core.v1", "ServiceAccount", "secrets") => BY_NAME,
        ("io.k8s.api.core.v1", "NodeSpec", "podCIDRs") => ("merge", None),
        ("io.k8s.api.core.v1", "NodeStatus", "conditions" | "addresses") => CONDITIONS,
        (
            "io.k8s.api.core.v1",
            "ServiceStatus"
            | "NamespaceStatus"
            | "PersistentVolumeClaimStatus"
            | "ReplicationControllerStatus"
            | "ComponentStatus",
            "conditions",
        ) => CONDITIONS,
        ("io.k8s.api.apps.v1", "DeploymentSpec", "strategy") => ("retainKeys", None),
        (
            "io.k8s.api.apps.v1",
            "DeploymentStatus" | "ReplicaSetStatus" | "StatefulSetStatus" | "DaemonSetStatus",
            "conditions",
        ) => CONDITIONS,
        ("io.k8s.api.batch.v1", "JobStatus", "conditions") => CONDITIONS,
        ("io.k8s.api.autoscaling.v2", "HorizontalPodAutoscalerStatus", "conditions") => CONDITIONS,
        ("io.k8s.api.policy.v1", "PodDisruptionBudgetSpec", "selector") => ("replace", None),
        ("io.k8s.api.policy.v1", "PodDisruptionBudgetStatus", "conditions") => CONDITIONS,
        (
            "io.k8s.api.flowcontrol.v1",
            "FlowSchemaStatus" | "PriorityLevelConfigurationStatus",
            "conditions",
        ) => CONDITIONS,
        (
            "io.k8s.api.admissionregistration.v1",
            "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration",
            "webhooks",
        ) => BY_NAME,
        (
            "io.k8s.api.admissionregistration.v1",
            "ValidatingWebhook" | "MutatingWebhook" | "ValidatingAdmissionPolicySpec",
            "matchConditions",
        ) => BY_NAME,
        ("io.k8s.api.admissionregistration.v1", "ValidatingAdmissionPolicySpec", "variables") => {
            BY_NAME
        }
        ("io.k8s.api.storage.v1", "CSINodeSpec", "drivers") => BY_NAME,
        _ => return None,
    };
    Some(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defs() -> Map<String, Value> {
        json!({
            "a.Pod": {"properties": {
                "spec": {"allOf": [{"$ref": "#/components/schemas/a.Spec"}], "description": "x"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "nullable": {"anyOf": [{"$ref": "#/definitions/a.Item"}, {"type": "null"}]}
            }},
            "a.Spec": {"properties": {
                "items": {"type": "array", "items": {"$ref": "#/definitions/a.Item"},
                          "x-kubernetes-patch-strategy": "merge,retainKeys",
                          "x-kubernetes-patch-merge-key": "id"},
                "loop": {"$ref": "#/definitions/a.Loop"}
            }},
            "a.Item": {"properties": {"id": {"type": "string"}}},
            "a.Loop": {"$ref": "#/$defs/a.Loop"}
        })
        .as_object()
        .cloned()
        .unwrap()
    }

    #[test]
    fn resolves_refs_allof_and_extensions() {
        let d = defs();
        let v = SchemaView::new(&d);
        let root = v.root("a.Pod");
        assert_eq!(root.unwrap().name, Some("a.Pod"));
        let spec = v.field(root, "spec");
        assert_eq!(spec.node.unwrap().name, Some("a.Spec"));
        let items = v.field(spec.node, "items");
        assert!(items.strategy.merge);
        assert_eq!(items.merge_key, Some("id"));
        assert_eq!(v.items(items.node).unwrap().name, Some("a.Item"));
        assert_eq!(v.field(root, "nullable").node.unwrap().name, Some("a.Item"));
        // additionalProperties
        let labels = v.field(root, "labels");
        let value = v.field(labels.node, "anything");
        assert!(value.node.is_some());
        assert!(!value.strategy.merge);
        // unknown field and self-referencing definition degrade to "undescribed"
        assert!(v.field(root, "nope").node.is_none());
        assert!(v.field(spec.node, "loop").node.is_none());
        assert!(v.root("missing").is_none());
    }

    #[test]
    fn builtin_table_fills_missing_extensions() {
        let d = json!({
            "io.k8s.api.core.v1.PodSpec": {"properties": {
                "containers": {"type": "array", "items": {"$ref": "#/definitions/io.k8s.api.core.v1.Container"}},
                "tolerations": {"type": "array"}
            }}
        })
        .as_object()
        .cloned()
        .unwrap();
        let v = SchemaView::new(&d);
        let root = v.root("io.k8s.api.core.v1.PodSpec");
        let c = v.field(root, "containers");
        assert!(c.strategy.merge);
        assert_eq!(c.merge_key, Some("name"));
        assert!(!v.field(root, "tolerations").strategy.merge);
        let v = v.with_builtin_patch_metadata(false);
        assert!(!v.field(root, "containers").strategy.merge);
    }

    #[test]
    fn strategy_parsing() {
        assert_eq!(
            Strategy::parse("merge,retainKeys"),
            Strategy {
                merge: true,
                replace: false
            }
        );
        assert!(Strategy::parse("replace").replace);
        assert_eq!(Strategy::parse("retainKeys"), Strategy::default());
    }
}
