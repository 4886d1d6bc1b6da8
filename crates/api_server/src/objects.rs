//! What happens to an object between the request body and the store: decoding, conversion
//! of deprecated versions, strict field checking through the k8s-openapi types, defaulting,
//! validation and the server-owned metadata (uid, timestamps, generation, names).

use api_resources::ResourceDef;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::status::{ApiError, Cause};

/// The `fieldValidation` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

impl FieldValidation {
    pub fn parse(s: Option<&str>) -> Result<FieldValidation, ApiError> {
        match s {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation parameter unsupported: {other}; valid values are \"Ignore\", \"Warn\", \"Strict\""
            ))),
        }
    }
}

/// Parses a request body. JSON only (kubectl and the client libraries send JSON).
pub fn decode_body(body: &[u8], content_type: Option<&str>) -> Result<Value, ApiError> {
    let ct = content_type
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or("")
        .trim();
    if !(ct == "application/json" || ct.ends_with("+json") || ct.is_empty() || ct == "*/*") {
        return Err(ApiError::unsupported_media_type(ct));
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })?;
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "couldn't get version/kind; json parse error: expected an object",
        ));
    }
    Ok(v)
}

/// Fills a missing apiVersion/kind from the endpoint, refuses a mismatch, and converts
/// objects sent in a deprecated alias version to the version they are stored in.
pub fn check_type_and_convert_in(def: &ResourceDef, obj: &mut Value) -> Result<(), ApiError> {
    let want_av = def.api_version();
    let av = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let kind = obj
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !av.is_empty() && av != want_av {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({want_av})"
        )));
    }
    if !kind.is_empty() && kind != def.kind {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            def.kind
        )));
    }
    obj["apiVersion"] = json!(want_av);
    obj["kind"] = json!(def.kind);
    if def.stored_as.is_some() {
        convert_alias_in(def, obj);
    }
    Ok(())
}

/// extensions/v1beta1 Deployment -> apps/v1: the selector defaults to the template's labels,
/// fields that no longer exist are dropped.
fn convert_alias_in(def: &ResourceDef, obj: &mut Value) {
    let storage = def.storage_def();
    obj["apiVersion"] = json!(storage.api_version());
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("rollbackTo");
        if !spec.contains_key("selector") {
            if let Some(labels) = spec
                .get("template")
                .and_then(|t| t.get("metadata"))
                .and_then(|m| m.get("labels"))
                .cloned()
            {
                spec.insert("selector".into(), json!({"matchLabels": labels}));
            }
        }
    }
}

/// The warning a request in a deprecated alias version gets.
pub fn deprecation_warning(def: &ResourceDef) -> Option<String> {
    def.stored_as.map(|_| {
        format!(
            "{} {} is deprecated in v1.9+, unavailable in v1.16+; use {} {}",
            def.api_version(),
            def.kind,
            def.storage_def().api_version(),
            def.kind
        )
    })
}

/// Rewrites a stored object for a response in the version the client asked for.
pub fn convert_out(def: &ResourceDef, obj: &mut Value) {
    if def.stored_as.is_some() {
        obj["apiVersion"] = json!(def.api_version());
    }
}

fn format_path(p: &serde_ignored::Path<'_>, out: &mut String) {
    use serde_ignored::Path;
    match p {
        Path::Root => {}
        Path::Seq { parent, index } => {
            format_path(parent, out);
            out.push_str(&format!("[{index}]"));
        }
        Path::Map { parent, key } => {
            format_path(parent, out);
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(key);
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => format_path(parent, out),
    }
}

fn roundtrip<T: DeserializeOwned + Serialize>(v: Value) -> Result<(Value, Vec<String>), String> {
    let mut unknown = Vec::new();
    let typed: T = serde_ignored::deserialize(v, |path| {
        let mut s = String::new();
        format_path(&path, &mut s);
        unknown.push(s);
    })
    .map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    Ok((back, unknown))
}

/// Runs the object through its k8s-openapi type: type errors are refused, unknown fields
/// are reported (Strict: refused; Warn: returned as warnings; Ignore: dropped silently) and
/// never stored.
pub fn normalize(
    def: &ResourceDef,
    obj: Value,
    validation: FieldValidation,
) -> Result<(Value, Vec<String>), ApiError> {
    use k8s_openapi::api::{apps::v1 as apps, batch::v1 as batch, coordination::v1 as coord};
    use k8s_openapi::api::{core::v1 as core, discovery::v1 as disc};
    let storage = def.storage_def();
    let res = match (storage.group, storage.kind) {
        ("", "Namespace") => roundtrip::<core::Namespace>(obj),
        ("", "Pod") => roundtrip::<core::Pod>(obj),
        ("", "Node") => roundtrip::<core::Node>(obj),
        ("", "Service") => roundtrip::<core::Service>(obj),
        ("", "Endpoints") => roundtrip::<core::Endpoints>(obj),
        ("", "Secret") => roundtrip::<core::Secret>(obj),
        ("", "ConfigMap") => roundtrip::<core::ConfigMap>(obj),
        ("", "Event") => roundtrip::<core::Event>(obj),
        ("", "ServiceAccount") => roundtrip::<core::ServiceAccount>(obj),
        ("apps", "Deployment") => roundtrip::<apps::Deployment>(obj),
        ("apps", "ReplicaSet") => roundtrip::<apps::ReplicaSet>(obj),
        ("apps", "DaemonSet") => roundtrip::<apps::DaemonSet>(obj),
        ("apps", "StatefulSet") => roundtrip::<apps::StatefulSet>(obj),
        ("apps", "ControllerRevision") => roundtrip::<apps::ControllerRevision>(obj),
        ("batch", "Job") => roundtrip::<batch::Job>(obj),
        ("batch", "CronJob") => roundtrip::<batch::CronJob>(obj),
        ("coordination.k8s.io", "Lease") => roundtrip::<coord::Lease>(obj),
        ("discovery.k8s.io", "EndpointSlice") => roundtrip::<disc::EndpointSlice>(obj),
        _ => Ok((obj, Vec::new())),
    };
    let (value, unknown) = res.map_err(|e| {
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {e}",
            storage.kind, storage.version, storage.kind
        ))
    })?;
    let warnings: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    match validation {
        FieldValidation::Strict if !warnings.is_empty() => Err(ApiError::bad_request(format!(
            "strict decoding error: {}",
            warnings.join(", ")
        ))),
        FieldValidation::Warn => Ok((value, warnings)),
        _ => Ok((value, Vec::new())),
    }
}

/// RFC 3339 with second precision, as Kubernetes writes timestamps.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn obj_mut<'a>(v: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !v.get(key).is_some_and(Value::is_object) {
        v[key] = json!({});
    }
    v[key].as_object_mut().expect("just made an object")
}

fn set_default(m: &mut Map<String, Value>, key: &str, value: Value) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.to_string(), value);
    }
}

fn image_pull_policy(image: &str) -> &'static str {
    let last = image.rsplit('/').next().unwrap_or(image);
    let no_digest = !image.contains('@');
    let tag = last.split_once(':').map(|(_, t)| t);
    if no_digest && (tag.is_none() || tag == Some("latest")) {
        "Always"
    } else {
        "IfNotPresent"
    }
}

fn default_containers(spec: &mut Map<String, Value>, field: &str) {
    if let Some(cs) = spec.get_mut(field).and_then(Value::as_array_mut) {
        for c in cs.iter_mut().filter_map(Value::as_object_mut) {
            let image = c
                .get("image")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            set_default(c, "imagePullPolicy", json!(image_pull_policy(&image)));
            set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
            set_default(c, "terminationMessagePolicy", json!("File"));
            set_default(c, "resources", json!({}));
            if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                    set_default(p, "protocol", json!("TCP"));
                }
            }
            if let Some(env) = c.get_mut("env").and_then(Value::as_array_mut) {
                for e in env.iter_mut() {
                    if let Some(fr) = e
                        .get_mut("valueFrom")
                        .and_then(|v| v.get_mut("fieldRef"))
                        .and_then(Value::as_object_mut)
                    {
                        set_default(fr, "apiVersion", json!("v1"));
                    }
                }
            }
        }
    }
}

fn default_pod_spec(spec: &mut Map<String, Value>) {
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "securityContext", json!({}));
    default_containers(spec, "containers");
    default_containers(spec, "initContainers");
}

fn default_template(spec: &mut Map<String, Value>) {
    if let Some(t) = spec.get_mut("template").and_then(Value::as_object_mut) {
        if !t.get("spec").is_some_and(Value::is_object) {
            t.insert("spec".into(), json!({}));
        }
        if let Some(ps) = t.get_mut("spec").and_then(Value::as_object_mut) {
            default_pod_spec(ps);
        }
    }
}

fn qos_class(spec: &Value) -> &'static str {
    let containers = spec
        .get("containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for c in &containers {
        let req = c.get("resources").and_then(|r| r.get("requests"));
        let lim = c.get("resources").and_then(|r| r.get("limits"));
        let has = |v: Option<&Value>| v.and_then(Value::as_object).is_some_and(|m| !m.is_empty());
        if has(req) || has(lim) {
            any = true;
        }
        for res in ["cpu", "memory"] {
            let l = lim.and_then(|l| l.get(res));
            let r = req.and_then(|r| r.get(res)).or(l);
            if l.is_none() || r != l {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// Kubernetes' defaults for the fields kubectl and controllers read.
pub fn apply_defaults(def: &ResourceDef, obj: &mut Value, creating: bool) {
    let storage = def.storage_def();
    match (storage.group, storage.kind) {
        ("", "Pod") => {
            let spec = obj_mut(obj, "spec");
            default_pod_spec(spec);
            set_default(spec, "serviceAccountName", json!("default"));
            set_default(spec, "serviceAccount", json!("default"));
            set_default(spec, "priority", json!(0));
            set_default(spec, "enableServiceLinks", json!(true));
            set_default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
            if creating {
                let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
                if let Some(list) = tolerations.as_array_mut() {
                    for key in [
                        "node.kubernetes.io/not-ready",
                        "node.kubernetes.io/unreachable",
                    ] {
                        if !list
                            .iter()
                            .any(|t| t.get("key").and_then(Value::as_str) == Some(key))
                        {
                            list.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
                        }
                    }
                }
                let qos = qos_class(&obj["spec"]);
                let status = obj_mut(obj, "status");
                set_default(status, "phase", json!("Pending"));
                set_default(status, "qosClass", json!(qos));
            }
        }
        ("apps", "Deployment") => {
            let spec = obj_mut(obj, "spec");
            set_default(spec, "replicas", json!(1));
            set_default(spec, "revisionHistoryLimit", json!(10));
            set_default(spec, "progressDeadlineSeconds", json!(600));
            let strategy = spec.entry("strategy").or_insert_with(|| json!({}));
            if let Some(s) = strategy.as_object_mut() {
                set_default(s, "type", json!("RollingUpdate"));
                if s.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
                    let ru = s.entry("rollingUpdate").or_insert_with(|| json!({}));
                    if let Some(ru) = ru.as_object_mut() {
                        set_default(ru, "maxUnavailable", json!("25%"));
                        set_default(ru, "maxSurge", json!("25%"));
                    }
                }
            }
            default_template(spec);
        }
        ("apps", "ReplicaSet") => {
            let spec = obj_mut(obj, "spec");
            set_default(spec, "replicas", json!(1));
            default_template(spec);
        }
        ("apps", "DaemonSet") => {
            let spec = obj_mut(obj, "spec");
            set_default(spec, "revisionHistoryLimit", json!(10));
            let us = spec.entry("updateStrategy").or_insert_with(|| json!({}));
            if let Some(us) = us.as_object_mut() {
                set_default(us, "type", json!("RollingUpdate"));
                if us.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
                    let ru = us.entry("rollingUpdate").or_insert_with(|| json!({}));
                    if let Some(ru) = ru.as_object_mut() {
                        set_default(ru, "maxUnavailable", json!(1));
                        set_default(ru, "maxSurge", json!(0));
                    }
                }
            }
            default_template(spec);
        }
        ("apps", "StatefulSet") => {
            let spec = obj_mut(obj, "spec");
            set_default(spec, "replicas", json!(1));
            set_default(spec, "podManagementPolicy", json!("OrderedReady"));
            set_default(spec, "revisionHistoryLimit", json!(10));
            set_default(
                spec,
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
            );
            set_default(
                spec,
                "persistentVolumeClaimRetentionPolicy",
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
            default_template(spec);
        }
        ("batch", "Job") => {
            let spec = obj_mut(obj, "spec");
            if spec.get("completions").is_none() && spec.get("parallelism").is_none() {
                spec.insert("completions".into(), json!(1));
            }
            set_default(spec, "parallelism", json!(1));
            set_default(spec, "backoffLimit", json!(6));
            set_default(spec, "completionMode", json!("NonIndexed"));
            set_default(spec, "suspend", json!(false));
            set_default(spec, "podReplacementPolicy", json!("TerminatingOrFailed"));
            default_template(spec);
        }
        ("batch", "CronJob") => {
            let spec = obj_mut(obj, "spec");
            set_default(spec, "concurrencyPolicy", json!("Allow"));
            set_default(spec, "suspend", json!(false));
            set_default(spec, "successfulJobsHistoryLimit", json!(3));
            set_default(spec, "failedJobsHistoryLimit", json!(1));
            if let Some(jt) = spec
                .get_mut("jobTemplate")
                .and_then(|j| j.get_mut("spec"))
                .and_then(Value::as_object_mut)
            {
                set_default(jt, "backoffLimit", json!(6));
                set_default(jt, "completionMode", json!("NonIndexed"));
                default_template(jt);
            }
        }
        ("", "Service") => {
            let spec = obj_mut(obj, "spec");
            set_default(spec, "type", json!("ClusterIP"));
            set_default(spec, "sessionAffinity", json!("None"));
            set_default(spec, "internalTrafficPolicy", json!("Cluster"));
            let ty = spec
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if ty == "NodePort" || ty == "LoadBalancer" {
                set_default(spec, "externalTrafficPolicy", json!("Cluster"));
            }
            if ty != "ExternalName" {
                set_default(spec, "ipFamilies", json!(["IPv4"]));
                set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
            }
            if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                    set_default(p, "protocol", json!("TCP"));
                    if let Some(port) = p.get("port").cloned() {
                        set_default(p, "targetPort", port);
                    }
                }
            }
            if creating {
                let status = obj_mut(obj, "status");
                set_default(status, "loadBalancer", json!({}));
            }
        }
        ("", "Secret") => {
            let string_data = obj.as_object_mut().and_then(|m| m.remove("stringData"));
            use base64::Engine;
            if let Some(Value::Object(sd)) = string_data {
                let data = obj_mut(obj, "data");
                for (k, v) in sd {
                    let s = v.as_str().unwrap_or_default();
                    data.insert(
                        k,
                        json!(base64::engine::general_purpose::STANDARD.encode(s)),
                    );
                }
            }
            if let Some(m) = obj.as_object_mut() {
                set_default(m, "type", json!("Opaque"));
            }
        }
        ("", "Namespace") => {
            let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
            let labels = obj_mut(obj_mut_value(obj, "metadata"), "labels");
            labels.insert("kubernetes.io/metadata.name".into(), json!(name));
            if creating {
                let spec = obj_mut(obj, "spec");
                set_default(spec, "finalizers", json!(["kubernetes"]));
                let status = obj_mut(obj, "status");
                set_default(status, "phase", json!("Active"));
            }
        }
        _ => {}
    }
}

fn obj_mut_value<'a>(v: &'a mut Value, key: &str) -> &'a mut Value {
    if !v.get(key).is_some_and(Value::is_object) {
        v[key] = json!({});
    }
    &mut v[key]
}

/// DNS-1123 label: lower-case alphanumerics and '-', at most 63, starting and ending alphanumeric.
pub fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// DNS-1123 subdomain: dot-separated labels, at most 253.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && l.starts_with(|c: char| c.is_ascii_alphanumeric())
                && l.ends_with(|c: char| c.is_ascii_alphanumeric())
        })
}

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/// Whether names of this resource must be DNS labels (namespaces, services) or subdomains.
fn name_is_label(def: &ResourceDef) -> bool {
    matches!(def.plural, "namespaces" | "services")
}

/// Checks a name from a URL or body; the error is Kubernetes' `metadata.name: Invalid value`.
pub fn validate_name(def: &ResourceDef, name: &str) -> Option<Cause> {
    if name_is_label(def) {
        (!is_dns1123_label(name))
            .then(|| Cause::invalid("metadata.name", &json!(name), DNS1123_LABEL_MSG))
    } else {
        (!is_dns1123_subdomain(name))
            .then(|| Cause::invalid("metadata.name", &json!(name), DNS1123_SUBDOMAIN_MSG))
    }
}

fn validate_labels(labels: Option<&Value>, field: &str, causes: &mut Vec<Cause>) {
    let Some(m) = labels.and_then(Value::as_object) else {
        return;
    };
    for (k, v) in m {
        let probe = format!("{k}={}", v.as_str().unwrap_or(""));
        if crate::selectors::LabelSelector::parse(&probe).is_err() {
            causes.push(Cause::invalid(
                field,
                &json!(k),
                "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            ));
        }
    }
}

fn validate_pod_spec(spec: Option<&Value>, path: &str, causes: &mut Vec<Cause>) {
    let Some(spec) = spec else {
        causes.push(Cause::required(path));
        return;
    };
    let containers = spec.get("containers").and_then(Value::as_array);
    match containers {
        None => causes.push(Cause::required(format!("{path}.containers"))),
        Some(cs) if cs.is_empty() => causes.push(Cause::required(format!("{path}.containers"))),
        Some(cs) => {
            let mut seen = std::collections::HashSet::new();
            for (i, c) in cs.iter().enumerate() {
                let p = format!("{path}.containers[{i}]");
                match c.get("name").and_then(Value::as_str) {
                    None | Some("") => causes.push(Cause::required(format!("{p}.name"))),
                    Some(n) => {
                        if !is_dns1123_label(n) {
                            causes.push(Cause::invalid(
                                format!("{p}.name"),
                                &json!(n),
                                DNS1123_LABEL_MSG,
                            ));
                        }
                        if !seen.insert(n.to_string()) {
                            causes.push(Cause::duplicate(format!("{p}.name"), &json!(n)));
                        }
                    }
                }
                if c.get("image")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    causes.push(Cause::required(format!("{p}.image")));
                }
                if let Some(ports) = c.get("ports").and_then(Value::as_array) {
                    for (j, port) in ports.iter().enumerate() {
                        let cp = port.get("containerPort").and_then(Value::as_i64);
                        match cp {
                            None => causes
                                .push(Cause::required(format!("{p}.ports[{j}].containerPort"))),
                            Some(n) if !(1..=65535).contains(&n) => causes.push(Cause::invalid(
                                format!("{p}.ports[{j}].containerPort"),
                                &json!(n),
                                "must be between 1 and 65535, inclusive",
                            )),
                            _ => {}
                        }
                    }
                }
            }
        }
    }
    if let Some(rp) = spec.get("restartPolicy") {
        let s = rp.as_str().unwrap_or("");
        if !["Always", "OnFailure", "Never"].contains(&s) {
            causes.push(Cause::not_supported(
                format!("{path}.restartPolicy"),
                rp,
                &["Always", "OnFailure", "Never"],
            ));
        }
    }
}

fn validate_selector_matches_template(spec: &Value, causes: &mut Vec<Cause>, required: bool) {
    let selector = spec.get("selector");
    let empty = selector.is_none_or(|s| {
        s.get("matchLabels")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty)
            && s.get("matchExpressions")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
    });
    if empty {
        if required {
            causes.push(Cause::required("spec.selector"));
        }
        return;
    }
    let sel = match crate::selectors::LabelSelector::from_object(selector.expect("checked")) {
        Ok(s) => s,
        Err(e) => {
            causes.push(Cause::invalid(
                "spec.selector",
                selector.expect("checked"),
                e,
            ));
            return;
        }
    };
    let labels = spec
        .get("template")
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"));
    if !sel.matches(labels.and_then(Value::as_object)) {
        let shown = labels
            .and_then(Value::as_object)
            .map(|m| {
                let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k:?}:{}", v)).collect();
                format!("map[string]string{{{}}}", parts.join(", "))
            })
            .unwrap_or_else(|| "map[string]string(nil)".into());
        causes.push(Cause {
            reason: "FieldValueInvalid",
            field: "spec.template.metadata.labels".into(),
            message: format!("Invalid value: {shown}: `selector` does not match template `labels`"),
        });
    }
}

fn validate_nonneg(spec: &Value, field: &str, causes: &mut Vec<Cause>) {
    if let Some(v) = spec.get(field) {
        if v.as_i64().is_some_and(|n| n < 0) {
            causes.push(Cause::invalid(
                format!("spec.{field}"),
                v,
                "must be greater than or equal to 0",
            ));
        }
    }
}

/// Kubernetes' validation for the fields berth's controllers and kubectl rely on.
pub fn validate(def: &ResourceDef, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let meta = &obj["metadata"];
    validate_labels(meta.get("labels"), "metadata.labels", &mut causes);
    let storage = def.storage_def();
    let spec = &obj["spec"];
    match (storage.group, storage.kind) {
        ("", "Pod") => {
            validate_pod_spec(obj.get("spec"), "spec", &mut causes);
            if let Some(old) = old {
                let strip = |v: &Value| {
                    let mut s = v["spec"].clone();
                    if let Some(cs) = s.get_mut("containers").and_then(Value::as_array_mut) {
                        for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                            c.remove("image");
                        }
                    }
                    if let Some(m) = s.as_object_mut() {
                        for k in [
                            "activeDeadlineSeconds",
                            "tolerations",
                            "terminationGracePeriodSeconds",
                        ] {
                            m.remove(k);
                        }
                    }
                    s
                };
                if strip(obj) != strip(old) {
                    causes.push(Cause::forbidden(
                        "spec",
                        "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
                    ));
                }
            }
        }
        ("apps", "Deployment")
        | ("apps", "ReplicaSet")
        | ("apps", "StatefulSet")
        | ("apps", "DaemonSet") => {
            validate_selector_matches_template(spec, &mut causes, true);
            validate_nonneg(spec, "replicas", &mut causes);
            validate_pod_spec(
                spec.get("template").and_then(|t| t.get("spec")),
                "spec.template.spec",
                &mut causes,
            );
            if let Some(old) = old {
                if old["spec"].get("selector") != spec.get("selector") {
                    causes.push(Cause::invalid(
                        "spec.selector",
                        spec.get("selector").unwrap_or(&Value::Null),
                        "field is immutable",
                    ));
                }
            }
        }
        ("batch", "Job") => {
            validate_nonneg(spec, "parallelism", &mut causes);
            validate_nonneg(spec, "completions", &mut causes);
            validate_nonneg(spec, "backoffLimit", &mut causes);
            let tspec = spec.get("template").and_then(|t| t.get("spec"));
            validate_pod_spec(tspec, "spec.template.spec", &mut causes);
            if let Some(rp) = tspec.and_then(|s| s.get("restartPolicy")) {
                if !matches!(rp.as_str(), Some("OnFailure") | Some("Never")) {
                    causes.push(Cause::not_supported(
                        "spec.template.spec.restartPolicy",
                        rp,
                        &["OnFailure", "Never"],
                    ));
                }
            }
        }
        ("batch", "CronJob") => {
            if spec
                .get("schedule")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                causes.push(Cause::required("spec.schedule"));
            }
            let tspec = spec
                .get("jobTemplate")
                .and_then(|j| j.get("spec"))
                .and_then(|s| s.get("template"))
                .and_then(|t| t.get("spec"));
            validate_pod_spec(tspec, "spec.jobTemplate.spec.template.spec", &mut causes);
        }
        ("", "Service") => {
            let ty = spec
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("ClusterIP");
            if !["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"].contains(&ty) {
                causes.push(Cause::not_supported(
                    "spec.type",
                    &json!(ty),
                    &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
                ));
            }
            let ports = spec.get("ports").and_then(Value::as_array);
            if ty != "ExternalName"
                && ports.is_none_or(Vec::is_empty)
                && spec.get("clusterIP").and_then(Value::as_str) != Some("None")
            {
                causes.push(Cause::required("spec.ports"));
            }
            for (i, p) in ports.into_iter().flatten().enumerate() {
                match p.get("port").and_then(Value::as_i64) {
                    Some(n) if (1..=65535).contains(&n) => {}
                    Some(n) => causes.push(Cause::invalid(
                        format!("spec.ports[{i}].port"),
                        &json!(n),
                        "must be between 1 and 65535, inclusive",
                    )),
                    None => causes.push(Cause::required(format!("spec.ports[{i}].port"))),
                }
                if ports.is_some_and(|ps| ps.len() > 1)
                    && p.get("name")
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
                {
                    causes.push(Cause::required(format!("spec.ports[{i}].name")));
                }
            }
            if let Some(old) = old {
                let old_ip = old["spec"].get("clusterIP");
                if old_ip.is_some()
                    && spec.get("clusterIP").is_some()
                    && old_ip != spec.get("clusterIP")
                {
                    causes.push(Cause::invalid(
                        "spec.clusterIPs[0]",
                        spec.get("clusterIP").unwrap_or(&Value::Null),
                        "may not change once set",
                    ));
                }
            }
        }
        ("", "Secret") => {
            if let Some(old) = old {
                if old.get("type") != obj.get("type") {
                    causes.push(Cause::invalid(
                        "type",
                        obj.get("type").unwrap_or(&Value::Null),
                        "field is immutable",
                    ));
                }
            }
        }
        _ => {}
    }
    causes
}

/// Characters Kubernetes uses for generated name suffixes (no vowels, no look-alikes).
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `generateName` + five random characters.
pub fn generate_name(prefix: &str) -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    let max_prefix = 63 - 5;
    let p: String = prefix.chars().take(max_prefix).collect();
    let suffix: String = (0..5)
        .map(|_| NAME_ALPHABET[rng.gen_range(0..NAME_ALPHABET.len())] as char)
        .collect();
    format!("{p}{suffix}")
}

/// Sets server-owned metadata on a new object.
pub fn init_metadata(def: &ResourceDef, obj: &mut Value, namespace: Option<&str>) {
    let tracks_generation = matches!(def.storage_def().group, "apps" | "batch");
    let meta = obj_mut(obj, "metadata");
    meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
    meta.remove("resourceVersion");
    meta.remove("deletionTimestamp");
    meta.remove("deletionGracePeriodSeconds");
    meta.remove("selfLink");
    if tracks_generation {
        meta.insert("generation".into(), json!(1));
    } else {
        meta.remove("generation");
    }
    match (def.namespaced, namespace) {
        (true, Some(ns)) => {
            meta.insert("namespace".into(), json!(ns));
        }
        _ => {
            meta.remove("namespace");
        }
    }
}

/// Carries server-owned metadata from the stored object into an update, and bumps
/// `generation` when the spec changed.
pub fn carry_metadata(def: &ResourceDef, new: &mut Value, old: &Value) {
    let old_meta = &old["metadata"];
    let spec_changed = new.get("spec") != old.get("spec");
    let meta = obj_mut(new, "metadata");
    for key in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "namespace",
    ] {
        match old_meta.get(key) {
            Some(v) => {
                meta.insert(key.into(), v.clone());
            }
            None => {
                meta.remove(key);
            }
        }
    }
    meta.remove("resourceVersion");
    meta.remove("selfLink");
    if let Some(g) = old_meta.get("generation").and_then(Value::as_i64) {
        let g = if spec_changed && matches!(def.storage_def().group, "apps" | "batch") {
            g + 1
        } else {
            g
        };
        meta.insert("generation".into(), json!(g));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy_def() -> &'static ResourceDef {
        api_resources::find("apps", "v1", "deployments").unwrap()
    }

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "server/debian:v1", "ports": [{"containerPort": 3000}]}]}}
            }
        })
    }

    #[test]
    fn strict_validation_names_unknown_fields() {
        let mut d = deployment();
        d["spec"]["template"]["spec"]["containers"][0]["imagePullPolic"] = json!("Always");
        d["spec"]["bogus"] = json!(1);
        let err = normalize(deploy_def(), d.clone(), FieldValidation::Strict).unwrap_err();
        assert_eq!(err.code, 400);
        assert!(
            err.message
                .contains("unknown field \"spec.template.spec.containers[0].imagePullPolic\""),
            "{}",
            err.message
        );
        assert!(err.message.contains("unknown field \"spec.bogus\""));
        let (v, warnings) = normalize(deploy_def(), d, FieldValidation::Warn).unwrap();
        assert_eq!(warnings.len(), 2);
        assert!(v["spec"].get("bogus").is_none());
    }

    #[test]
    fn type_errors_are_bad_requests() {
        let mut d = deployment();
        d["spec"]["replicas"] = json!("three");
        let err = normalize(deploy_def(), d, FieldValidation::Strict).unwrap_err();
        assert_eq!(err.code, 400);
        assert!(err.message.contains("cannot be handled as a Deployment"));
    }

    #[test]
    fn defaults_and_validation() {
        let mut d = deployment();
        apply_defaults(deploy_def(), &mut d, true);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert!(validate(deploy_def(), &d, None).is_empty());
        let mut bad = d.clone();
        bad["spec"].as_object_mut().unwrap().remove("selector");
        let causes = validate(deploy_def(), &bad, None);
        assert_eq!(causes[0].field, "spec.selector");
        let mut mismatch = d.clone();
        mismatch["spec"]["selector"]["matchLabels"]["app"] = json!("other");
        let causes = validate(deploy_def(), &mismatch, None);
        assert_eq!(causes[0].field, "spec.template.metadata.labels");
        let mut changed = d.clone();
        changed["spec"]["selector"]["matchLabels"]["x"] = json!("y");
        changed["spec"]["template"]["metadata"]["labels"]["x"] = json!("y");
        let causes = validate(deploy_def(), &changed, Some(&d));
        assert!(causes.iter().any(|c| c.message.contains("immutable")));
    }

    #[test]
    fn alias_conversion() {
        let alias = api_resources::find("extensions", "v1beta1", "deployments").unwrap();
        let mut d = json!({"apiVersion": "extensions/v1beta1", "kind": "Deployment",
            "metadata": {"name": "old"},
            "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "old"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        check_type_and_convert_in(alias, &mut d).unwrap();
        assert_eq!(d["apiVersion"], "apps/v1");
        assert_eq!(d["spec"]["selector"]["matchLabels"]["app"], "old");
        normalize(alias, d.clone(), FieldValidation::Strict).unwrap();
        convert_out(alias, &mut d);
        assert_eq!(d["apiVersion"], "extensions/v1beta1");
        let mut wrong = json!({"apiVersion": "v1", "kind": "Deployment"});
        assert!(check_type_and_convert_in(deploy_def(), &mut wrong).is_err());
        assert!(deprecation_warning(alias)
            .unwrap()
            .contains("use apps/v1 Deployment"));
    }

    #[test]
    fn names_and_generate_name() {
        assert!(is_dns1123_label("web-1"));
        assert!(!is_dns1123_label("Web"));
        assert!(is_dns1123_subdomain("a.b-c"));
        assert!(!is_dns1123_subdomain("a..b"));
        let n = generate_name("web-");
        assert_eq!(n.len(), 9);
        assert!(n.starts_with("web-"));
        let ns = api_resources::find("", "v1", "namespaces").unwrap();
        assert!(validate_name(ns, "a.b").is_some());
        assert!(validate_name(deploy_def(), "a.b").is_none());
    }

    #[test]
    fn secret_string_data_and_pod_defaults() {
        let sec = api_resources::find("", "v1", "secrets").unwrap();
        let mut s = json!({"metadata": {"name": "s"}, "stringData": {"pw": "hunter2"}});
        apply_defaults(sec, &mut s, true);
        assert_eq!(s["data"]["pw"], "aHVudGVyMg==");
        assert_eq!(s["type"], "Opaque");
        assert!(s.get("stringData").is_none());
        let pod = api_resources::find("", "v1", "pods").unwrap();
        let mut p = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
        apply_defaults(pod, &mut p, true);
        assert_eq!(p["spec"]["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(p["status"]["phase"], "Pending");
        assert_eq!(p["status"]["qosClass"], "BestEffort");
        assert_eq!(p["spec"]["tolerations"].as_array().unwrap().len(), 2);
    }
}
