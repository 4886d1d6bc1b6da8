//! Strategic merge patch tests against a handmade schema shaped like Kubernetes' OpenAPI.

use super::*;
use serde_json::json;

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/definitions/{name}")})
}

const DEPLOY: &str = "io.k8s.api.apps.v1.Deployment";

/// A small `definitions` map mimicking the Kubernetes one (with the patch extensions).
fn defs() -> Map<String, Value> {
    let meta = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
    let v = json!({
        DEPLOY: {"type": "object", "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": r(meta),
            "spec": {"allOf": [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}],
                     "description": "spec"}
        }},
        "io.k8s.api.apps.v1.DeploymentSpec": {"properties": {
            "replicas": {"type": "integer"},
            "paused": {"type": "boolean"},
            "template": r("io.k8s.api.core.v1.PodTemplateSpec"),
            "strategy": {"allOf": [r("io.k8s.api.apps.v1.DeploymentStrategy")],
                         "x-kubernetes-patch-strategy": "retainKeys"}
        }},
        "io.k8s.api.apps.v1.DeploymentStrategy": {"properties": {
            "type": {"type": "string"},
            "rollingUpdate": {"properties": {
                "maxSurge": {"type": "string"}, "maxUnavailable": {"type": "string"}}}
        }},
        "io.k8s.api.core.v1.PodTemplateSpec": {"properties": {
            "metadata": r(meta),
            "spec": r("io.k8s.api.core.v1.PodSpec")
        }},
        "io.k8s.api.core.v1.PodSpec": {"properties": {
            "containers": {"type": "array", "items": r("io.k8s.api.core.v1.Container"),
                "x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "name"},
            "initContainers": {"type": "array", "items": r("io.k8s.api.core.v1.Container"),
                "x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "name"},
            "volumes": {"type": "array", "items": r("io.k8s.api.core.v1.Volume"),
                "x-kubernetes-patch-strategy": "merge,retainKeys",
                "x-kubernetes-patch-merge-key": "name"},
            "tolerations": {"type": "array", "items": {"type": "object"}},
            "nodeSelector": {"type": "object", "additionalProperties": {"type": "string"}},
            "securityContext": {"type": "object", "properties": {"runAsUser": {"type": "integer"}}}
        }},
        "io.k8s.api.core.v1.Container": {"properties": {
            "name": {"type": "string"},
            "image": {"type": "string"},
            "args": {"type": "array", "items": {"type": "string"}},
            "env": {"type": "array", "items": r("io.k8s.api.core.v1.EnvVar"),
                "x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "name"},
            "ports": {"type": "array", "items": r("io.k8s.api.core.v1.ContainerPort"),
                "x-kubernetes-patch-strategy": "merge",
                "x-kubernetes-patch-merge-key": "containerPort"},
            "resources": {"properties": {
                "limits": {"type": "object", "additionalProperties": {"type": "string"}}}}
        }},
        "io.k8s.api.core.v1.EnvVar": {"properties": {
            "name": {"type": "string"}, "value": {"type": "string"}}},
        "io.k8s.api.core.v1.ContainerPort": {"properties": {
            "containerPort": {"type": "integer"}, "protocol": {"type": "string"}}},
        "io.k8s.api.core.v1.Volume": {"properties": {
            "name": {"type": "string"},
            "configMap": {"properties": {"name": {"type": "string"}}},
            "emptyDir": {"properties": {"medium": {"type": "string"}}},
            "secret": {"properties": {"secretName": {"type": "string"}}}
        }},
        meta: {"properties": {
            "name": {"type": "string"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            "finalizers": {"type": "array", "items": {"type": "string"},
                "x-kubernetes-patch-strategy": "merge"},
            "ownerReferences": {"type": "array", "items": {"type": "object"},
                "x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "uid"}
        }}
    });
    v.as_object().cloned().unwrap_or_default()
}

fn live() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "labels": {"app": "web", "tier": "fe"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
            "finalizers": ["a", "b"]
        },
        "spec": {
            "replicas": 2,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "web", "image": "nginx:1", "args": ["-g", "daemon off;"],
                         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                         "ports": [{"containerPort": 80, "protocol": "TCP"}],
                         "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
                        {"name": "log", "image": "busybox"}
                    ],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                    "tolerations": [{"key": "k1"}, {"key": "k2"}],
                    "nodeSelector": {"disk": "hdd", "zone": "a"}
                }
            }
        }
    })
}

fn smp(doc: &Value, patch: Value) -> Result<Value, PatchError> {
    let d = defs();
    let out = apply_strategic_merge_patch(doc, &patch, &SchemaView::new(&d), DEPLOY)?;
    assert_no_directives(&out);
    Ok(out)
}

fn assert_no_directives(v: &Value) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                assert!(
                    k != DIRECTIVE
                        && k != RETAIN_KEYS
                        && !k.starts_with(SET_ORDER_PREFIX)
                        && !k.starts_with(DELETE_FROM_PRIMITIVE_PREFIX),
                    "directive {k} leaked into the result"
                );
                assert_no_directives(v);
            }
        }
        Value::Array(a) => a.iter().for_each(assert_no_directives),
        _ => {}
    }
}

fn containers(v: &Value) -> &Vec<Value> {
    v["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers")
}

fn names(list: &[Value]) -> Vec<&str> {
    list.iter().filter_map(|c| c["name"].as_str()).collect()
}

#[test]
fn set_image_changes_only_that_container() {
    let doc = live();
    let out = smp(
        &doc,
        json!({"spec":{"template":{"spec":{"containers":[{"name":"web","image":"x:v2"}]}}}}),
    )
    .unwrap();
    let mut expected = live();
    expected["spec"]["template"]["spec"]["containers"][0]["image"] = json!("x:v2");
    assert_eq!(out, expected);
    // the input is untouched
    assert_eq!(doc, live());
}

#[test]
fn kubectl_apply_three_way_patch() {
    // live has a server-side injected sidecar between "web" and "old"
    let mut doc = live();
    doc["spec"]["template"]["spec"]["containers"] = json!([
        {"name": "web", "image": "nginx:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
        {"name": "sidecar", "image": "proxy"},
        {"name": "old", "image": "old:1"}
    ]);
    let patch = json!({
        "metadata": {
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"new\":1}"},
            "labels": {"tier": null, "team": "x"}
        },
        "spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "new"}, {"name": "web"}],
            "containers": [
                {"name": "new", "image": "n:1"},
                {"name": "web", "image": "nginx:2",
                 "$setElementOrder/env": [{"name": "C"}, {"name": "A"}],
                 "env": [{"name": "C", "value": "3"}, {"name": "A", "value": "10"}, {"$patch": "delete", "name": "B"}]},
                {"$patch": "delete", "name": "old"}
            ]
        }}}
    });
    let out = smp(&doc, patch).unwrap();
    assert_eq!(
        out["metadata"]["labels"],
        json!({"app": "web", "team": "x"})
    );
    assert_eq!(
        out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
        json!("{\"new\":1}")
    );
    let cs = containers(&out);
    assert_eq!(names(cs), ["new", "web", "sidecar"]);
    assert_eq!(cs[0], json!({"name": "new", "image": "n:1"}));
    assert_eq!(cs[1]["image"], json!("nginx:2"));
    assert_eq!(
        cs[1]["env"],
        json!([{"name": "C", "value": "3"}, {"name": "A", "value": "10"}])
    );
    assert_eq!(cs[2], json!({"name": "sidecar", "image": "proxy"}));
}

#[test]
fn set_element_order_interleaves_server_only_elements() {
    let mut doc = live();
    doc["spec"]["template"]["spec"]["containers"] =
        json!([{"name": "a"}, {"name": "s1"}, {"name": "b"}, {"name": "c"}, {"name": "s2"}]);
    // reorder c before a; s1/s2 are unknown to the client. Like Kubernetes, a server-only
    // element goes before a listed one when it preceded it in the live list.
    let out = smp(
        &doc,
        json!({"spec":{"template":{"spec":{
            "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}]
        }}}}),
    )
    .unwrap();
    assert_eq!(names(containers(&out)), ["s1", "c", "a", "b", "s2"]);
}

#[test]
fn set_element_order_must_agree_with_patch_list() {
    let err = smp(
        &live(),
        json!({"spec":{"template":{"spec":{
            "$setElementOrder/containers": [{"name": "log"}, {"name": "web"}],
            "containers": [{"name": "web", "image": "1"}, {"name": "log", "image": "2"}]
        }}}}),
    )
    .unwrap_err();
    assert!(
        matches!(err, PatchError::SetElementOrderMismatch { .. }),
        "{err}"
    );
    let err = smp(
        &live(),
        json!({"spec":{"template":{"spec":{"$setElementOrder/containers": {"name": "x"}}}}}),
    )
    .unwrap_err();
    assert_eq!(err, PatchError::BadSetElementOrderFormat);
}

#[test]
fn new_elements_go_first_without_set_element_order() {
    // like Kubernetes: an element the patch adds is placed before the live ones
    let out = smp(
        &live(),
        json!({"spec":{"template":{"spec":{"containers":[{"name":"extra","image":"e"}]}}}}),
    )
    .unwrap();
    assert_eq!(names(containers(&out)), ["extra", "web", "log"]);
}

#[test]
fn nested_merge_lists_env_and_ports() {
    let out = smp(
        &live(),
        json!({"spec":{"template":{"spec":{"containers":[{"name":"web",
            "env":[{"name":"B","value":"20"}],
            "ports":[{"containerPort":80.0,"protocol":"UDP"},{"containerPort":443}]}]}}}}),
    )
    .unwrap();
    let web = &containers(&out)[0];
    assert_eq!(
        web["env"],
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "20"}])
    );
    // 80.0 matches 80 like Go's float64 comparison
    let ports = web["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 2);
    assert_eq!(ports[0]["containerPort"].as_f64(), Some(80.0));
    assert_eq!(ports[0]["protocol"], json!("UDP"));
    assert_eq!(ports[1], json!({"containerPort": 443}));
    // non-merge list (args) and map (resources.limits) semantics
    assert_eq!(web["args"], json!(["-g", "daemon off;"]));
}

#[test]
fn lists_without_merge_strategy_are_replaced() {
    let out = smp(
        &live(),
        json!({"spec":{"template":{"spec":{
            "tolerations":[{"key":"k3"}],
            "containers":[{"name":"web","args":["x"]}]
        }}}}),
    )
    .unwrap();
    assert_eq!(
        out["spec"]["template"]["spec"]["tolerations"],
        json!([{"key": "k3"}])
    );
    assert_eq!(containers(&out)[0]["args"], json!(["x"]));
}

#[test]
fn null_deletes_keys_and_maps_merge() {
    let out = smp(
        &live(),
        json!({"metadata":{"labels":{"tier":null,"absent":null,"new":"1"}},
               "spec":{"template":{"spec":{"containers":[{"name":"web",
                    "resources":{"limits":{"memory":null,"cpu":"2"}}}]}}}}),
    )
    .unwrap();
    assert_eq!(out["metadata"]["labels"], json!({"app": "web", "new": "1"}));
    assert_eq!(
        containers(&out)[0]["resources"],
        json!({"limits": {"cpu": "2"}})
    );
}

#[test]
fn retain_keys_on_volumes_and_strategy() {
    let out = smp(
        &live(),
        json!({"spec":{
        "strategy":{"$retainKeys":["type"],"rollingUpdate":null,"type":"Recreate"},
        "template":{"spec":{
            "$setElementOrder/volumes":[{"name":"data"}],
            "volumes":[{"$retainKeys":["configMap","name"],"configMap":{"name":"cm"},
                        "emptyDir":null,"name":"data"}]
        }}}}),
    )
    .unwrap();
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    assert_eq!(
        out["spec"]["template"]["spec"]["volumes"],
        json!([{"name": "data", "configMap": {"name": "cm"}}])
    );
    // keys set by the patch must be listed
    let err = smp(
        &live(),
        json!({"spec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":{"maxSurge":"1"}}}}),
    )
    .unwrap_err();
    assert_eq!(err, PatchError::BadRetainKeysFormat);
    assert_eq!(err.to_string(), "invalid patch format of retainKeys");
    let err = smp(&live(), json!({"spec":{"strategy":{"$retainKeys":"type"}}})).unwrap_err();
    assert_eq!(err, PatchError::BadRetainKeysFormat);
}

#[test]
fn primitive_merge_lists() {
    // union: new values first, like Kubernetes without $setElementOrder
    let out = smp(&live(), json!({"metadata":{"finalizers":["c","a"]}})).unwrap();
    assert_eq!(out["metadata"]["finalizers"], json!(["c", "a", "b"]));
    // kubectl apply: remove "a", add "c", order b, c
    let out = smp(
        &live(),
        json!({"metadata":{
            "$setElementOrder/finalizers":["b","c"],
            "$deleteFromPrimitiveList/finalizers":["a"],
            "finalizers":["c"]}}),
    )
    .unwrap();
    assert_eq!(out["metadata"]["finalizers"], json!(["b", "c"]));
    // deletion from an absent list is a no-op; bad formats are rejected
    let out = smp(
        &live(),
        json!({"spec":{"template":{"metadata":{"$deleteFromPrimitiveList/finalizers":["x"]}}}}),
    )
    .unwrap();
    assert!(out["spec"]["template"]["metadata"]
        .get("finalizers")
        .is_none());
    for bad in [
        json!({"metadata":{"$deleteFromPrimitiveList/finalizers":[{"a":1}]}}),
        json!({"metadata":{"$deleteFromPrimitiveList/":["a"]}}),
    ] {
        assert_eq!(
            smp(&live(), bad).unwrap_err(),
            PatchError::BadPrimitiveListFormat
        );
    }
}

#[test]
fn patch_directives_replace_and_delete() {
    let out = smp(
        &live(),
        json!({"spec":{"template":{"spec":{
            "nodeSelector":{"$patch":"replace","disk":"ssd"},
            "volumes":[{"$patch":"replace"},{"name":"v2","secret":{"secretName":"s"}}]
        }}}}),
    )
    .unwrap();
    let spec = &out["spec"]["template"]["spec"];
    assert_eq!(spec["nodeSelector"], json!({"disk": "ssd"}));
    assert_eq!(
        spec["volumes"],
        json!([{"name": "v2", "secret": {"secretName": "s"}}])
    );
    let out = smp(
        &live(),
        json!({"spec":{"strategy":{"$patch":"delete"},
               "template":{"spec":{"securityContext":{"$patch":"delete"},
                                   "containers":[{"name":"nope","$patch":"delete"}]}}}}),
    )
    .unwrap();
    assert!(out["spec"].get("strategy").is_none());
    assert!(out["spec"]["template"]["spec"]
        .get("securityContext")
        .is_none());
    assert_eq!(names(containers(&out)), ["web", "log"]);
}

#[test]
fn directives_in_new_subtrees_are_resolved() {
    let out = smp(
        &live(),
        json!({"spec":{"template":{"spec":{
            "$setElementOrder/initContainers":[{"name":"i2"},{"name":"i1"}],
            "initContainers":[
                {"name":"i2","image":"b","resources":{"$patch":"replace","limits":{"cpu":"1","memory":null}}},
                {"name":"i1","image":"a","env":[{"name":"X","value":"1"},{"name":"Y","$patch":"delete"}],
                 "$setElementOrder/env":[{"name":"X"}]}
            ],
            "securityContext":{"runAsUser":1000,"$retainKeys":["runAsUser"]}
        }}}}),
    )
    .unwrap();
    let spec = &out["spec"]["template"]["spec"];
    assert_eq!(
        spec["initContainers"],
        json!([
            {"name": "i2", "image": "b", "resources": {"limits": {"cpu": "1"}}},
            {"name": "i1", "image": "a", "env": [{"name": "X", "value": "1"}]}
        ])
    );
    assert_eq!(spec["securityContext"], json!({"runAsUser": 1000}));
}

#[test]
fn malformed_patches_are_errors() {
    let err = smp(&live(), json!({"metadata":{"labels":{"$patch":"frob"}}})).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("unknown patch type: frob in map:"),
        "{err}"
    );
    let err = smp(
        &live(),
        json!({"spec":{"template":{"spec":{"containers":[{"name":"web","$patch":"frob"}]}}}}),
    )
    .unwrap_err();
    assert!(
        matches!(err, PatchError::UnknownPatchDirective { .. }),
        "{err}"
    );
    let err = smp(
        &live(),
        json!({"spec":{"template":{"spec":{"containers":[{"$patch":"merge"}]}}}}),
    )
    .unwrap_err();
    assert_eq!(err, PatchError::MergeDirectiveInList);
    let err = smp(
        &live(),
        json!({"spec":{"template":{"spec":{"containers":[{"image":"x"}]}}}}),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "map: {\"image\":\"x\"} does not contain declared merge key: name"
    );
    let err = smp(
        &live(),
        json!({"spec":{"template":{"spec":{"containers":[{"$patch":"delete"}]}}}}),
    )
    .unwrap_err();
    assert!(matches!(err, PatchError::MissingMergeKey { .. }));
    let err = smp(
        &live(),
        json!({"spec":{"template":{"spec":{"containers":["web"]}}}}),
    )
    .unwrap_err();
    assert!(matches!(err, PatchError::MixedListElements(_)), "{err}");
    let err = smp(&live(), json!({"metadata":{"finalizers":[["x"]]}})).unwrap_err();
    assert_eq!(err, PatchError::ListOfLists);
    assert_eq!(err.http_status(), 422);
    let d = defs();
    let view = SchemaView::new(&d);
    for (doc, patch) in [(live(), json!([1])), (json!("x"), json!({}))] {
        let err = apply_strategic_merge_patch(&doc, &patch, &view, DEPLOY).unwrap_err();
        assert_eq!(err, PatchError::BadJsonDocument);
        assert_eq!(err.http_status(), 400);
    }
}

#[test]
fn unknown_fields_fall_back_to_merge_patch() {
    let mut doc = live();
    doc["spec"]["template"]["spec"]["extraList"] = json!([{"name": "a"}, {"name": "b"}]);
    doc["spec"]["template"]["spec"]["extraMap"] = json!({"keep": 1, "drop": 2, "deep": {"x": 1}});
    let out = smp(
        &doc,
        json!({"spec":{"template":{"spec":{
            "extraList":[{"name":"c"}],
            "extraMap":{"drop":null,"deep":{"y":2},"new":{"z":null,"w":1}}
        }}}}),
    )
    .unwrap();
    let spec = &out["spec"]["template"]["spec"];
    assert_eq!(spec["extraList"], json!([{"name": "c"}]));
    assert_eq!(
        spec["extraMap"],
        json!({"keep": 1, "deep": {"x": 1, "y": 2}, "new": {"w": 1}})
    );
    // "$ref"-like keys that are not directives are plain data (e.g. CRD schemas)
    let out = smp(
        &doc,
        json!({"spec":{"template":{"spec":{"extraMap":{"$ref":"#/x"}}}}}),
    )
    .unwrap();
    assert_eq!(
        out["spec"]["template"]["spec"]["extraMap"]["$ref"],
        json!("#/x")
    );
}

#[test]
fn unknown_root_definition_behaves_like_merge_patch() {
    let d = defs();
    let view = SchemaView::new(&d);
    let doc = json!({"spec": {"items": [{"name": "a", "v": 1}], "m": {"a": 1}}});
    let out = apply_strategic_merge_patch(
        &doc,
        &json!({"spec": {"items": [{"name": "a", "v": 2}], "m": {"b": 2}}}),
        &view,
        "com.example.v1.Widget",
    )
    .unwrap();
    assert_eq!(
        out,
        json!({"spec": {"items": [{"name": "a", "v": 2}], "m": {"a": 1, "b": 2}}})
    );
    let out = apply_strategic_merge_patch(
        &doc,
        &json!({"$patch": "replace", "other": 1}),
        &SchemaView::empty(),
        "x",
    )
    .unwrap();
    assert_eq!(out, json!({"other": 1}));
}

#[test]
fn builtin_patch_metadata_without_extensions() {
    // schemars-style output: no x-kubernetes-* extensions, refs under #/$defs
    let d = json!({
        "io.k8s.api.core.v1.Pod": {"properties": {
            "metadata": {"$ref": "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
            "spec": {"$ref": "#/$defs/io.k8s.api.core.v1.PodSpec"}}},
        "io.k8s.api.core.v1.PodSpec": {"properties": {
            "containers": {"type": "array", "items": {"$ref": "#/$defs/io.k8s.api.core.v1.Container"}}}},
        "io.k8s.api.core.v1.Container": {"properties": {
            "name": {"type": "string"}, "image": {"type": "string"},
            "env": {"type": "array", "items": {"type": "object"}}}},
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta": {"properties": {
            "finalizers": {"type": "array", "items": {"type": "string"}}}}
    });
    let d = d.as_object().cloned().unwrap_or_default();
    let doc = json!({
        "metadata": {"finalizers": ["x"]},
        "spec": {"containers": [
            {"name": "a", "image": "1", "env": [{"name": "E", "value": "1"}]},
            {"name": "b", "image": "1"}]}
    });
    let patch = json!({
        "metadata": {"finalizers": ["y"]},
        "spec": {"containers": [{"name": "b", "image": "2"},
                                {"name": "a", "env": [{"name": "F", "value": "2"}]}]}
    });
    let out =
        apply_strategic_merge_patch(&doc, &patch, &SchemaView::new(&d), "io.k8s.api.core.v1.Pod")
            .unwrap();
    // the patch list's order wins over the live order (as in Kubernetes)
    assert_eq!(
        out,
        json!({
            "metadata": {"finalizers": ["y", "x"]},
            "spec": {"containers": [
                {"name": "b", "image": "2"},
                {"name": "a", "image": "1", "env": [{"name": "F", "value": "2"}, {"name": "E", "value": "1"}]}]}
        })
    );
    // with the table disabled the containers list is replaced
    let view = SchemaView::new(&d).with_builtin_patch_metadata(false);
    let out = apply_strategic_merge_patch(&doc, &patch, &view, "io.k8s.api.core.v1.Pod").unwrap();
    assert_eq!(
        names(out["spec"]["containers"].as_array().unwrap()),
        ["b", "a"]
    );
    assert!(out["spec"]["containers"][0].get("image").is_some());
    assert!(out["spec"]["containers"][1].get("image").is_none());
}

/// Drops the zero values a typed Go round trip adds (`{}`, `null`, `[]`) and makes every
/// number a float, so kubectl's output can be compared with ours.
fn normalize(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Object(m) => {
            let out: Map<String, Value> = m
                .iter()
                .filter_map(|(k, v)| normalize(v).map(|v| (k.clone(), v)))
                .collect();
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Value::Array(a) => (!a.is_empty()).then(|| {
            Value::Array(
                a.iter()
                    .map(|v| normalize(v).unwrap_or(json!({})))
                    .collect(),
            )
        }),
        Value::Number(n) => n.as_f64().map(|f| json!(f)),
        other => Some(other.clone()),
    }
}

/// Runs `kubectl patch --local` (the Kubernetes implementation, compiled into kubectl).
fn kubectl_patch(doc: &Value, patch: &Value) -> Option<Result<Value, String>> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("/usr/bin/kubectl")
        .args([
            "patch",
            "--local",
            "-f",
            "-",
            "--type=strategic",
            "-o",
            "json",
            "-p",
        ])
        .arg(patch.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()?
        .write_all(doc.to_string().as_bytes())
        .ok()?;
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        return Some(Err(String::from_utf8_lossy(&out.stderr).into_owned()));
    }
    Some(serde_json::from_slice(&out.stdout).map_err(|e| e.to_string()))
}

#[test]
fn agrees_with_kubectl_patch_local() {
    if !std::path::Path::new("/usr/bin/kubectl").exists() {
        eprintln!("kubectl not installed; skipping differential test");
        return;
    }
    let mut doc = live();
    doc["spec"]["selector"] = json!({"matchLabels": {"app": "web"}});
    doc["spec"]["template"]["spec"]["containers"] = json!([
        {"name": "a", "image": "1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
         "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 81, "protocol": "TCP"}]},
        {"name": "s1", "image": "1"}, {"name": "b", "image": "1"},
        {"name": "c", "image": "1"}, {"name": "s2", "image": "1"}
    ]);
    let cases = [
        json!({"spec":{"template":{"spec":{"containers":[{"name":"b","image":"x:v2"}]}}}}),
        json!({"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"c"},{"name":"a"},{"name":"b"}]}}}}),
        json!({"spec":{"template":{"spec":{"containers":[{"name":"new","image":"x"}]}}}}),
        json!({"spec":{"template":{"spec":{"containers":[{"name":"c","image":"x"},{"name":"a","image":"2"}]}}}}),
        // (server-only elements + deletions + $setElementOrder would expose Go slice aliasing
        // in Kubernetes' ordering; not emulated, so every survivor is listed here)
        json!({"spec":{"template":{"spec":{
            "$setElementOrder/containers":[{"name":"s2"},{"name":"new"},{"name":"b"},{"name":"s1"}],
            "containers":[{"name":"new","image":"n"},{"name":"a","$patch":"delete"},{"name":"c","$patch":"delete"}]}}}}),
        json!({"spec":{"template":{"spec":{"containers":[{"name":"a",
            "$setElementOrder/env":[{"name":"C"},{"name":"A"}],
            "env":[{"name":"C","value":"3"},{"name":"B","$patch":"delete"}],
            "ports":[{"containerPort":81,"protocol":"UDP"},{"containerPort":90}]}]}}}}),
        json!({"spec":{"template":{"spec":{"containers":[{"$patch":"replace"},{"name":"z","image":"z"}]}}}}),
        json!({"metadata":{"finalizers":["c","a"]}}),
        json!({"metadata":{"$setElementOrder/finalizers":["b","c"],"$deleteFromPrimitiveList/finalizers":["a"],"finalizers":["c"]}}),
        json!({"metadata":{"labels":{"tier":null,"x":"y"},"annotations":{"$patch":"replace","n":"1"}}}),
        json!({"spec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":null,"type":"Recreate"},
            "template":{"spec":{"$setElementOrder/volumes":[{"name":"data"}],
              "volumes":[{"$retainKeys":["configMap","name"],"configMap":{"name":"cm"},"emptyDir":null,"name":"data"}]}}}}),
        json!({"spec":{"template":{"spec":{"nodeSelector":{"$patch":"replace","disk":"ssd"},"tolerations":[{"key":"k9"}]}}}}),
        json!({"spec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":{"maxSurge":"1"}}}}),
        json!({"metadata":{"finalizers":null,"labels":null}}),
        json!({"metadata":{"finalizers":["b","b","d"]},"spec":{"replicas":5,"paused":true}}),
        json!({"spec":{"strategy":{"$patch":"delete"},"template":{"metadata":{"$patch":"replace","labels":{"n":"1"}}}}}),
        json!({"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"s2"},{"name":"s1"}],
            "containers":[{"name":"s2","image":"q"},{"name":"s1","ports":[{"containerPort":1}]}]}}}}),
        json!({"metadata":{"labels":{"$patch":"frob"}}}),
        json!({"spec":{"template":{"spec":{"containers":[{"$patch":"merge"}]}}}}),
        json!({"spec":{"template":{"spec":{"containers":[{"image":"x"}]}}}}),
        json!({"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"b"},{"name":"a"}],
            "containers":[{"name":"a","image":"q"},{"name":"b","image":"q"}]}}}}),
    ];
    for patch in cases {
        let Some(theirs) = kubectl_patch(&doc, &patch) else {
            eprintln!("could not run kubectl; skipping");
            return;
        };
        let ours = smp(&doc, patch.clone());
        match (theirs, ours) {
            (Ok(t), Ok(o)) => assert_eq!(normalize(&o), normalize(&t), "patch {patch}"),
            (Err(_), Err(_)) => {}
            (t, o) => panic!("patch {patch}: kubectl {t:?} vs ours {o:?}"),
        }
    }
}
