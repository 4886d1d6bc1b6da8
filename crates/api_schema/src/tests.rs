use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::*;

const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";
const POD_SPEC: &str = "io.k8s.api.core.v1.PodSpec";

/// Every `$ref` under `v`, as written.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, val) in o {
                match (k.as_str(), val) {
                    ("$ref", Value::String(s)) => out.push(s.clone()),
                    _ => refs(val, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[test]
fn every_v2_ref_resolves() {
    let doc = openapi_v2();
    let defs = definitions();
    assert!(defs.len() > 100, "only {} definitions", defs.len());
    let mut all = Vec::new();
    refs(doc, &mut all);
    assert!(all.len() > 500);
    for r in all {
        let name = r
            .strip_prefix("#/definitions/")
            .unwrap_or_else(|| panic!("not a v2 ref: {r}"));
        assert!(defs.contains_key(name), "dangling {r}");
    }
}

#[test]
fn every_v3_ref_resolves() {
    for path in v3::document_paths() {
        let doc = openapi_v3_group_version(&path).unwrap_or_else(|| panic!("{path}"));
        assert_eq!(doc["openapi"], "3.0.0");
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let mut all = Vec::new();
        refs(doc, &mut all);
        assert!(!all.is_empty(), "{path}");
        for r in all {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("not a v3 ref in {path}: {r}"));
            assert!(schemas.contains_key(name), "dangling {r} in {path}");
        }
        // OpenAPI 3.0 ignores siblings of $ref: none may carry any.
        fn no_siblings(v: &Value, path: &str) {
            match v {
                Value::Object(o) => {
                    if o.contains_key("$ref") {
                        assert_eq!(o.len(), 1, "$ref with siblings in {path}: {v}");
                    }
                    o.values().for_each(|x| no_siblings(x, path));
                }
                Value::Array(a) => a.iter().for_each(|x| no_siblings(x, path)),
                _ => {}
            }
        }
        no_siblings(doc, &path);
    }
    assert!(openapi_v3_group_version("apis/nope/v1").is_none());
    assert!(openapi_v3_group_version("/apis/apps/v1/").is_some());
}

#[test]
fn deployment_carries_both_group_version_kinds() {
    let d = &definitions()[DEPLOYMENT];
    let gvks = d["x-kubernetes-group-version-kind"].as_array().unwrap();
    assert!(gvks.contains(&json!({"group": "apps", "kind": "Deployment", "version": "v1"})));
    assert!(
        gvks.contains(&json!({"group": "extensions", "kind": "Deployment", "version": "v1beta1"}))
    );
    let list = &definitions()["io.k8s.api.apps.v1.DeploymentList"];
    assert_eq!(list["required"], json!(["items"]));
    assert!(list["x-kubernetes-group-version-kind"]
        .as_array()
        .unwrap()
        .contains(&json!({"group": "apps", "kind": "DeploymentList", "version": "v1"})));
    // Kubernetes never requires metadata; k8s-openapi does.
    assert!(d.get("required").is_none(), "{:?}", d.get("required"));
    assert!(d["description"]
        .as_str()
        .unwrap()
        .contains("declarative updates"));
}

#[test]
fn strategic_merge_extensions() {
    let defs = definitions();
    let containers = &defs[POD_SPEC]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-list-type"], "map");
    assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
    let volumes = &defs[POD_SPEC]["properties"]["volumes"];
    assert_eq!(volumes["x-kubernetes-patch-strategy"], "merge,retainKeys");
    let c = &defs["io.k8s.api.core.v1.Container"]["properties"];
    assert_eq!(c["env"]["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(c["ports"]["x-kubernetes-patch-merge-key"], "containerPort");
    assert_eq!(
        c["volumeMounts"]["x-kubernetes-patch-merge-key"],
        "mountPath"
    );
    assert!(c["args"].get("x-kubernetes-patch-strategy").is_none());
    let meta = &defs["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"];
    assert_eq!(meta["finalizers"]["x-kubernetes-patch-strategy"], "merge");
    assert!(meta["finalizers"]
        .get("x-kubernetes-patch-merge-key")
        .is_none());
    assert_eq!(
        meta["ownerReferences"]["x-kubernetes-patch-merge-key"],
        "uid"
    );
    let strategy = &defs["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"];
    assert_eq!(strategy["x-kubernetes-patch-strategy"], "retainKeys");
    assert_eq!(
        strategy["$ref"],
        "#/definitions/io.k8s.api.apps.v1.DeploymentStrategy"
    );
    let conditions = &defs["io.k8s.api.apps.v1.DeploymentStatus"]["properties"]["conditions"];
    assert_eq!(conditions["x-kubernetes-patch-merge-key"], "type");
    assert_eq!(
        defs["io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"]["x-kubernetes-map-type"],
        "atomic"
    );
    // The v3 form keeps them beside the allOf-wrapped reference.
    let v3 = openapi_v3_group_version("apis/apps/v1").unwrap();
    let s =
        &v3["components"]["schemas"]["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"];
    assert_eq!(s["x-kubernetes-patch-strategy"], "retainKeys");
    assert_eq!(
        s["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.DeploymentStrategy"
    );
}

#[test]
fn every_table_entry_names_a_property() {
    let mut settings = schemars::generate::SchemaSettings::draft07();
    settings.transforms.clear();
    let mut generator = settings.into_generator();
    for e in registry::ENTRIES {
        (e.add)(&mut generator);
    }
    let defs = generator.take_definitions(false);
    for (def, fields) in extensions::FIELDS {
        let props = defs
            .get(*def)
            .and_then(|d| d.get("properties"))
            .unwrap_or_else(|| panic!("{def} is not a registered definition"));
        for f in *fields {
            let p = props
                .get(f.property)
                .unwrap_or_else(|| panic!("{def}.{} does not exist", f.property));
            if f.list_type != extensions::ListType::Unspecified {
                assert_eq!(p["type"], "array", "{def}.{}", f.property);
            }
        }
    }
    for def in extensions::ATOMIC_STRUCTS {
        assert!(defs.contains_key(*def), "{def}");
    }
    assert_eq!(
        extensions::lookup(POD_SPEC, "containers").and_then(|f| f.patch_merge_key),
        Some("name")
    );
}

#[test]
fn int_or_string_and_quantity_as_kubernetes_publishes_them() {
    let defs = definitions();
    let ios = &defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"];
    assert_eq!(ios["type"], "string");
    assert_eq!(ios["format"], "int-or-string");
    let q = &defs["io.k8s.apimachinery.pkg.api.resource.Quantity"];
    assert_eq!(q["type"], "string");
    assert!(q.get("x-kubernetes-int-or-string").is_none());
    let v3 = &openapi_v3_group_version("apis/apps/v1").unwrap()["components"]["schemas"];
    let ios = &v3["io.k8s.apimachinery.pkg.util.intstr.IntOrString"];
    assert_eq!(ios["format"], "int-or-string");
    assert!(ios.get("type").is_none());
    assert_eq!(ios["oneOf"].as_array().unwrap().len(), 2);
    assert!(ios["description"].is_string());
}

/// What kubectl's fieldValidation check does: the first PATCH operation tagged with the GVK
/// must list the parameter itself (path-level parameters are not looked at).
fn supports_field_validation(doc: &Value, group: &str, version: &str, kind: &str) -> bool {
    let want = json!({ "group": group, "kind": kind, "version": version });
    let mut found = false;
    for item in doc["paths"].as_object().unwrap().values() {
        let Some(patch) = item.get("patch") else {
            continue;
        };
        if patch["x-kubernetes-group-version-kind"] != want {
            continue;
        }
        found = true;
        let has = patch["parameters"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["name"] == "fieldValidation"));
        if !has {
            return false;
        }
    }
    found
}

#[test]
fn v3_patch_operations_offer_field_validation() {
    let apps = openapi_v3_group_version("apis/apps/v1").unwrap();
    let patch = &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(patch["x-kubernetes-action"], "patch");
    assert_eq!(patch["operationId"], "patchAppsV1NamespacedDeployment");
    assert!(patch["requestBody"]["content"]["application/strategic-merge-patch+json"].is_object());
    assert!(supports_field_validation(apps, "apps", "v1", "Deployment"));
    assert!(supports_field_validation(
        apps,
        "autoscaling",
        "v1",
        "Scale"
    ));
    let core = openapi_v3_group_version("api/v1").unwrap();
    for kind in ["Pod", "Service", "ConfigMap", "Namespace", "Node"] {
        assert!(supports_field_validation(core, "", "v1", kind), "{kind}");
    }
    let ext = openapi_v3_group_version("apis/extensions/v1beta1").unwrap();
    assert!(supports_field_validation(
        ext,
        "extensions",
        "v1beta1",
        "Deployment"
    ));
    // The alias document holds the apps/v1 schema, findable by the alias GVK.
    let d = &ext["components"]["schemas"][DEPLOYMENT]["x-kubernetes-group-version-kind"];
    assert!(d
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["group"] == "extensions"));
    let v2 = openapi_v2();
    assert!(supports_field_validation(v2, "batch", "v1", "Job"));
}

#[test]
fn every_served_resource_has_its_operations() {
    let v2 = openapi_v2();
    for r in api_resources::all() {
        let gv = if r.group.is_empty() {
            format!("api/{}", r.version)
        } else {
            format!("apis/{}/{}", r.group, r.version)
        };
        let doc = openapi_v3_group_version(&gv).unwrap();
        let collection = r.collection_path(Some("{namespace}"));
        for d in [doc, v2] {
            let item = &d["paths"][format!("{collection}/{{name}}")];
            assert_eq!(item["get"]["x-kubernetes-action"], "get", "{collection}");
            assert_eq!(
                item["get"]["x-kubernetes-group-version-kind"]["kind"],
                r.kind
            );
            assert_eq!(
                d["paths"][&collection]["post"]["x-kubernetes-action"],
                "post"
            );
            assert_eq!(
                d["paths"][&collection]["delete"]["x-kubernetes-action"],
                "deletecollection"
            );
        }
        assert!(doc["components"]["schemas"].get(r.definition).is_some());
        assert!(doc["components"]["schemas"]
            .get(format!("{}List", r.definition))
            .is_some());
        for s in r.subresources {
            assert!(
                doc["paths"]
                    .get(format!("{collection}/{{name}}/{}", s.name))
                    .is_some(),
                "{} {}",
                r.plural,
                s.name
            );
        }
    }
    // The query parameters kubectl and clients use.
    let list = &v2["paths"]["/api/v1/namespaces/{namespace}/pods"]["get"]["parameters"];
    for p in [
        "labelSelector",
        "fieldSelector",
        "watch",
        "resourceVersion",
        "limit",
    ] {
        assert!(
            list.as_array().unwrap().iter().any(|x| x["name"] == p),
            "{p}"
        );
    }
    let create = &v2["paths"]["/api/v1/namespaces/{namespace}/pods"]["post"]["parameters"];
    for p in ["body", "dryRun", "fieldManager", "fieldValidation"] {
        assert!(
            create.as_array().unwrap().iter().any(|x| x["name"] == p),
            "{p}"
        );
    }
}

#[test]
fn definition_names() {
    assert_eq!(
        definition_name("apps", "v1", "Deployment"),
        Some(DEPLOYMENT)
    );
    assert_eq!(
        definition_name("extensions", "v1beta1", "Deployment"),
        Some(DEPLOYMENT)
    );
    assert_eq!(
        definition_name("", "v1", "PodList"),
        Some("io.k8s.api.core.v1.PodList")
    );
    assert_eq!(
        definition_name("autoscaling", "v1", "Scale"),
        Some("io.k8s.api.autoscaling.v1.Scale")
    );
    assert_eq!(
        definition_name("policy", "v1", "Eviction"),
        Some("io.k8s.api.policy.v1.Eviction")
    );
    assert_eq!(
        definition_name("", "v1", "Binding"),
        Some("io.k8s.api.core.v1.Binding")
    );
    assert_eq!(
        definition_name("", "v1", "Status"),
        Some("io.k8s.apimachinery.pkg.apis.meta.v1.Status")
    );
    assert_eq!(
        definition_name("apps", "v1", "DeleteOptions"),
        Some("io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions")
    );
    assert_eq!(
        definition_name("batch", "v1", "WatchEvent"),
        Some("io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent")
    );
    assert_eq!(definition_name("apps", "v1", "Pod"), None);
    assert_eq!(definition_name("", "", ""), None);
}

#[test]
fn hashes_and_index() {
    let index = openapi_v3_index();
    let paths = index["paths"].as_object().unwrap();
    let mut seen = BTreeSet::new();
    for p in v3::document_paths() {
        let hash = openapi_v3_hash(&p).unwrap();
        assert_eq!(hash.len(), 64);
        assert!(hash
            .chars()
            .all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c)));
        assert!(seen.insert(hash.to_string()), "same hash twice");
        assert_eq!(
            paths[&p]["serverRelativeURL"],
            format!("/openapi/v3/{p}?hash={hash}")
        );
        // The hash is that of the bytes served, which are the document's serialisation.
        let json = openapi_v3_json(&p).unwrap();
        assert_eq!(hex::encode_upper(Sha256::digest(json)), hash);
        let doc = openapi_v3_group_version(&p).unwrap();
        assert_eq!(serde_json::to_vec(doc).unwrap(), json, "{p}");
    }
    assert!(paths.contains_key("api/v1") && paths.contains_key("apis/apps/v1"));
    assert!(openapi_v3_hash("apis/nope/v1").is_none());
}

#[test]
fn v2_bytes_are_the_v2_document() {
    assert_eq!(serde_json::to_vec(openapi_v2()).unwrap(), openapi_v2_json());
    let parsed: Value = serde_json::from_slice(openapi_v2_json()).unwrap();
    assert_eq!(parsed["swagger"], "2.0");
    assert_eq!(
        parsed["definitions"].as_object().unwrap().len(),
        definitions().len()
    );
}

#[test]
fn document_sizes_stay_reasonable() {
    let v2 = openapi_v2_json().len();
    let defs = serde_json::to_vec(definitions()).unwrap().len();
    eprintln!("v2 {v2} bytes, definitions {defs} bytes");
    assert!(v2 < 3_000_000, "v2 is {v2} bytes");
    for p in v3::document_paths() {
        let n = openapi_v3_json(&p).unwrap().len();
        eprintln!("v3 {p}: {n} bytes");
        assert!(n < 2_000_000, "{p} is {n} bytes");
    }
}
