//! Column definitions and cells for each served resource, following what a real
//! Kubernetes API server prints (its internal printers, always in "wide" mode: columns of
//! priority 1 are present and kubectl hides them unless `-o wide`).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::human_duration;
use crate::json::{arr_at, at, bool_at, int_at, int_opt, len_obj, obj_at, str_at, time_at};
use crate::labels::{format_label_selector, format_labels, selector_string};

/// One column of a Table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Col {
    pub name: &'static str,
    pub ty: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    pub priority: i32,
}

const fn col(name: &'static str, ty: &'static str, description: &'static str) -> Col {
    Col {
        name,
        ty,
        format: "",
        description,
        priority: 0,
    }
}

const fn wide(name: &'static str, ty: &'static str, description: &'static str) -> Col {
    Col {
        name,
        ty,
        format: "",
        description,
        priority: 1,
    }
}

const NAME: Col = Col {
    name: "Name",
    ty: "string",
    format: "name",
    description: "Name of the object, unique within its namespace (or the cluster).",
    priority: 0,
};
const AGE: Col = col(
    "Age",
    "string",
    "Time since the object was created (metadata.creationTimestamp).",
);
const CONTAINERS: Col = wide(
    "Containers",
    "string",
    "Names of the containers in the pod template.",
);
const IMAGES: Col = wide(
    "Images",
    "string",
    "Images of the containers in the pod template.",
);
const SELECTOR: Col = wide(
    "Selector",
    "string",
    "Label selector for the pods this object manages.",
);

/// What a printer returns for one object: cells and optional row conditions.
pub(crate) struct Row {
    pub cells: Vec<Value>,
    pub conditions: Option<Value>,
}

impl From<Vec<Value>> for Row {
    fn from(cells: Vec<Value>) -> Self {
        Row {
            cells,
            conditions: None,
        }
    }
}

pub(crate) type Printer = fn(&Value, DateTime<Utc>) -> Row;

/// The columns and printer for a resource, None for resources without a dedicated printer.
pub(crate) fn lookup(group: &str, plural: &str) -> Option<(&'static [Col], Printer)> {
    Some(match (group, plural) {
        ("", "pods") => (POD_COLS, print_pod),
        ("", "nodes") => (NODE_COLS, print_node),
        ("", "namespaces") => (NAMESPACE_COLS, print_namespace),
        ("", "services") => (SERVICE_COLS, print_service),
        ("", "endpoints") => (ENDPOINTS_COLS, print_endpoints),
        ("", "secrets") => (SECRET_COLS, print_secret),
        ("", "configmaps") => (CONFIGMAP_COLS, print_configmap),
        ("", "events") => (EVENT_COLS, print_event),
        ("", "serviceaccounts") => (SERVICEACCOUNT_COLS, print_serviceaccount),
        ("apps" | "extensions", "deployments") => (DEPLOYMENT_COLS, print_deployment),
        ("apps" | "extensions", "replicasets") => (REPLICASET_COLS, print_replicaset),
        ("apps" | "extensions", "daemonsets") => (DAEMONSET_COLS, print_daemonset),
        ("apps", "statefulsets") => (STATEFULSET_COLS, print_statefulset),
        ("apps", "controllerrevisions") => (CONTROLLERREVISION_COLS, print_controllerrevision),
        ("batch", "jobs") => (JOB_COLS, print_job),
        ("batch", "cronjobs") => (CRONJOB_COLS, print_cronjob),
        ("coordination.k8s.io", "leases") => (LEASE_COLS, print_lease),
        ("discovery.k8s.io", "endpointslices") => (ENDPOINTSLICE_COLS, print_endpointslice),
        _ => return None,
    })
}

/// Columns of the generic table served for resources without a printer.
pub(crate) const DEFAULT_COLS: &[Col] = &[
    NAME,
    col(
        "Created At",
        "date",
        "Time the object was created (metadata.creationTimestamp).",
    ),
];

/// Generic row: name and creation time in RFC 3339 (Go's zero time when unset).
pub(crate) fn print_default(obj: &Value, _now: DateTime<Utc>) -> Row {
    let created = time_at(obj, &["metadata", "creationTimestamp"])
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string());
    vec![json!(name(obj)), json!(created)].into()
}

// ---------- helpers ----------

fn name(obj: &Value) -> &str {
    str_at(obj, &["metadata", "name"])
}

/// translateTimestampSince: "<unknown>" for an unset time.
fn since(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match t {
        Some(t) => human_duration(now - t),
        None => "<unknown>".to_string(),
    }
}

fn age(obj: &Value, now: DateTime<Utc>) -> Value {
    json!(since(time_at(obj, &["metadata", "creationTimestamp"]), now))
}

/// Container names and images of a pod spec, comma separated.
fn containers_and_images(pod_spec: Option<&Value>) -> (String, String) {
    let cs = pod_spec.map(|s| arr_at(s, &["containers"])).unwrap_or(&[]);
    let names: Vec<&str> = cs.iter().map(|c| str_at(c, &["name"])).collect();
    let images: Vec<&str> = cs.iter().map(|c| str_at(c, &["image"])).collect();
    (names.join(","), images.join(","))
}

fn template_spec(obj: &Value) -> Option<&Value> {
    at(obj, &["spec", "template", "spec"])
}

/// A replicas field that the API server defaults to 1 when unset.
fn replicas_or_one(obj: &Value) -> i64 {
    int_opt(obj, &["spec", "replicas"]).unwrap_or(1)
}

fn or_none(s: &str) -> String {
    if s.is_empty() {
        "<none>".to_string()
    } else {
        s.to_string()
    }
}

/// Go's net.JoinHostPort.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// "a,b,c + N more..." for lists cut at three; "<unset>" when empty.
fn list_with_more(list: Vec<String>, total: usize, max: usize) -> String {
    let ret = list.join(",");
    if total > max {
        return format!("{ret} + {} more...", total - max);
    }
    if ret.is_empty() {
        "<unset>".to_string()
    } else {
        ret
    }
}

// ---------- pods ----------

const POD_COLS: &[Col] = &[
    NAME,
    col(
        "Ready",
        "string",
        "Ready containers out of all containers of the pod.",
    ),
    col(
        "Status",
        "string",
        "Summary of the pod's phase and container states.",
    ),
    col(
        "Restarts",
        "string",
        "Container restarts in the pod, and how long ago the last one was.",
    ),
    AGE,
    wide("IP", "string", "The pod's (first) IP address."),
    wide("Node", "string", "The node the pod is bound to."),
    wide(
        "Nominated Node",
        "string",
        "The node the scheduler nominated for a preempting pod.",
    ),
    wide(
        "Readiness Gates",
        "string",
        "Readiness gates satisfied out of those declared.",
    ),
];

fn has_condition(conds: &[Value], ty: &str) -> bool {
    conds
        .iter()
        .any(|c| str_at(c, &["type"]) == ty && str_at(c, &["status"]) == "True")
}

fn later(cur: Option<DateTime<Utc>>, t: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (cur, t) {
        (Some(c), Some(t)) if t > c => Some(t),
        (None, t) => t,
        (c, _) => c,
    }
}

fn print_pod(pod: &Value, now: DateTime<Utc>) -> Row {
    let spec_containers = arr_at(pod, &["spec", "containers"]);
    let init_specs = arr_at(pod, &["spec", "initContainers"]);
    let conditions = arr_at(pod, &["status", "conditions"]);
    let mut total = spec_containers.len() as i64;
    let mut ready = 0i64;
    let mut restarts = 0i64;
    let mut restartable_init_restarts = 0i64;
    let mut last_restart: Option<DateTime<Utc>> = None;
    let mut last_restartable_init_restart: Option<DateTime<Utc>> = None;

    let phase = str_at(pod, &["status", "phase"]);
    let status_reason = str_at(pod, &["status", "reason"]);
    let mut reason = if status_reason.is_empty() {
        phase.to_string()
    } else {
        status_reason.to_string()
    };
    if conditions.iter().any(|c| {
        str_at(c, &["type"]) == "PodScheduled" && str_at(c, &["reason"]) == "SchedulingGated"
    }) {
        reason = "SchedulingGated".to_string();
    }

    let row_conditions = match phase {
        "Succeeded" => Some(json!([{
            "type": "Completed", "status": "True", "reason": "Succeeded",
            "message": "The pod has completed successfully."
        }])),
        "Failed" => Some(json!([{
            "type": "Completed", "status": "True", "reason": "Failed",
            "message": "The pod failed."
        }])),
        _ => None,
    };

    // Init containers with restartPolicy Always are sidecars: they count as containers.
    let restartable = |name: &str| {
        init_specs
            .iter()
            .any(|c| str_at(c, &["name"]) == name && str_at(c, &["restartPolicy"]) == "Always")
    };
    total += init_specs
        .iter()
        .filter(|c| str_at(c, &["restartPolicy"]) == "Always")
        .count() as i64;

    let mut initializing = false;
    for (i, c) in arr_at(pod, &["status", "initContainerStatuses"])
        .iter()
        .enumerate()
    {
        let count = int_at(c, &["restartCount"]);
        restarts += count;
        let finished = time_at(c, &["lastState", "terminated", "finishedAt"]);
        last_restart = later(last_restart, finished);
        let is_sidecar = restartable(str_at(c, &["name"]));
        if is_sidecar {
            restartable_init_restarts += count;
            last_restartable_init_restart = later(last_restartable_init_restart, finished);
        }
        let terminated = at(c, &["state", "terminated"]);
        let waiting = at(c, &["state", "waiting"]);
        if terminated.is_some_and(|t| int_at(t, &["exitCode"]) == 0) {
            continue;
        }
        if is_sidecar && bool_at(c, &["started"]) {
            if bool_at(c, &["ready"]) {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            let r = str_at(t, &["reason"]);
            reason = if r.is_empty() {
                let signal = int_at(t, &["signal"]);
                if signal != 0 {
                    format!("Init:Signal:{signal}")
                } else {
                    format!("Init:ExitCode:{}", int_at(t, &["exitCode"]))
                }
            } else {
                format!("Init:{r}")
            };
        } else if let Some(w) = waiting.filter(|w| {
            let r = str_at(w, &["reason"]);
            !r.is_empty() && r != "PodInitializing"
        }) {
            reason = format!("Init:{}", str_at(w, &["reason"]));
        } else {
            reason = format!("Init:{i}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }

    if !initializing || has_condition(conditions, "Initialized") {
        restarts = restartable_init_restarts;
        last_restart = last_restartable_init_restart;
        let mut has_running = false;
        for c in arr_at(pod, &["status", "containerStatuses"]).iter().rev() {
            restarts += int_at(c, &["restartCount"]);
            last_restart = later(
                last_restart,
                time_at(c, &["lastState", "terminated", "finishedAt"]),
            );
            let waiting_reason = at(c, &["state", "waiting"]).map(|w| str_at(w, &["reason"]));
            let terminated = at(c, &["state", "terminated"]);
            if let Some(r) = waiting_reason.filter(|r| !r.is_empty()) {
                reason = r.to_string();
            } else if let Some(t) = terminated {
                let r = str_at(t, &["reason"]);
                reason = if !r.is_empty() {
                    r.to_string()
                } else {
                    let signal = int_at(t, &["signal"]);
                    if signal != 0 {
                        format!("Signal:{signal}")
                    } else {
                        format!("ExitCode:{}", int_at(t, &["exitCode"]))
                    }
                };
            } else if bool_at(c, &["ready"]) && at(c, &["state", "running"]).is_some() {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if has_condition(conditions, "Ready") {
                "Running".to_string()
            } else {
                "NotReady".to_string()
            };
        }
    }

    let deleting = at(pod, &["metadata", "deletionTimestamp"]).is_some();
    if deleting && status_reason == "NodeLost" {
        reason = "Unknown".to_string();
    } else if deleting && phase != "Failed" && phase != "Succeeded" {
        reason = "Terminating".to_string();
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", since(Some(t), now)),
        _ => restarts.to_string(),
    };

    let mut ip = arr_at(pod, &["status", "podIPs"])
        .first()
        .map(|p| str_at(p, &["ip"]))
        .unwrap_or("");
    if ip.is_empty() {
        ip = str_at(pod, &["status", "podIP"]);
    }
    let gates = arr_at(pod, &["spec", "readinessGates"]);
    let gates_cell = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let ok = gates
            .iter()
            .filter(|g| {
                let ty = str_at(g, &["conditionType"]);
                conditions
                    .iter()
                    .find(|c| str_at(c, &["type"]) == ty)
                    .is_some_and(|c| str_at(c, &["status"]) == "True")
            })
            .count();
        format!("{ok}/{}", gates.len())
    };

    Row {
        cells: vec![
            json!(name(pod)),
            json!(format!("{ready}/{total}")),
            json!(reason),
            json!(restarts_cell),
            age(pod, now),
            json!(or_none(ip)),
            json!(or_none(str_at(pod, &["spec", "nodeName"]))),
            json!(or_none(str_at(pod, &["status", "nominatedNodeName"]))),
            json!(gates_cell),
        ],
        conditions: row_conditions,
    }
}

// ---------- nodes ----------

const NODE_COLS: &[Col] = &[
    NAME,
    col(
        "Status",
        "string",
        "Readiness of the node, and whether it is cordoned.",
    ),
    col(
        "Roles",
        "string",
        "Roles from node-role.kubernetes.io/ labels.",
    ),
    AGE,
    col("Version", "string", "Kubelet version the node reports."),
    wide(
        "Internal-IP",
        "string",
        "First InternalIP address of the node.",
    ),
    wide(
        "External-IP",
        "string",
        "First ExternalIP address of the node.",
    ),
    wide(
        "OS-Image",
        "string",
        "Operating system image the node reports.",
    ),
    wide(
        "Kernel-Version",
        "string",
        "Kernel version the node reports.",
    ),
    wide(
        "Container-Runtime",
        "string",
        "Container runtime and version the node reports.",
    ),
];

fn node_address(node: &Value, ty: &str) -> String {
    arr_at(node, &["status", "addresses"])
        .iter()
        .find(|a| str_at(a, &["type"]) == ty)
        .map(|a| str_at(a, &["address"]).to_string())
        .unwrap_or_else(|| "<none>".to_string())
}

fn print_node(node: &Value, now: DateTime<Utc>) -> Row {
    let mut status: Vec<String> = Vec::new();
    // The last Ready condition wins, as when conditions are collected into a map.
    if let Some(c) = arr_at(node, &["status", "conditions"])
        .iter()
        .rev()
        .find(|c| str_at(c, &["type"]) == "Ready")
    {
        status.push(if str_at(c, &["status"]) == "True" {
            "Ready".to_string()
        } else {
            "NotReady".to_string()
        });
    }
    if status.is_empty() {
        status.push("Unknown".to_string());
    }
    if bool_at(node, &["spec", "unschedulable"]) {
        status.push("SchedulingDisabled".to_string());
    }

    let mut roles: Vec<String> = Vec::new();
    for (k, v) in obj_at(node, &["metadata", "labels"]).into_iter().flatten() {
        let role = if let Some(r) = k.strip_prefix("node-role.kubernetes.io/") {
            r.to_string()
        } else if k == "kubernetes.io/role" {
            v.as_str().unwrap_or("").to_string()
        } else {
            continue;
        };
        if !role.is_empty() && !roles.contains(&role) {
            roles.push(role);
        }
    }
    roles.sort();

    let info = |k: &str| {
        let s = str_at(node, &["status", "nodeInfo", k]);
        if s.is_empty() {
            "<unknown>".to_string()
        } else {
            s.to_string()
        }
    };
    vec![
        json!(name(node)),
        json!(status.join(",")),
        json!(or_none(&roles.join(","))),
        age(node, now),
        json!(str_at(node, &["status", "nodeInfo", "kubeletVersion"])),
        json!(node_address(node, "InternalIP")),
        json!(node_address(node, "ExternalIP")),
        json!(info("osImage")),
        json!(info("kernelVersion")),
        json!(info("containerRuntimeVersion")),
    ]
    .into()
}

// ---------- namespaces, secrets, configmaps, service accounts, leases ----------

const NAMESPACE_COLS: &[Col] = &[
    NAME,
    col(
        "Status",
        "string",
        "Phase of the namespace (Active or Terminating).",
    ),
    AGE,
];

fn print_namespace(ns: &Value, now: DateTime<Utc>) -> Row {
    let phase = match str_at(ns, &["status", "phase"]) {
        "" => "Active",
        p => p,
    };
    vec![json!(name(ns)), json!(phase), age(ns, now)].into()
}

const SECRET_COLS: &[Col] = &[
    NAME,
    col("Type", "string", "Type of the secret's data."),
    col("Data", "string", "Number of data entries."),
    AGE,
];

fn print_secret(s: &Value, now: DateTime<Utc>) -> Row {
    let ty = match str_at(s, &["type"]) {
        "" => "Opaque",
        t => t,
    };
    vec![
        json!(name(s)),
        json!(ty),
        json!(len_obj(s, &["data"])),
        age(s, now),
    ]
    .into()
}

const CONFIGMAP_COLS: &[Col] = &[
    NAME,
    col("Data", "string", "Number of data and binaryData entries."),
    AGE,
];

fn print_configmap(cm: &Value, now: DateTime<Utc>) -> Row {
    let n = len_obj(cm, &["data"]) + len_obj(cm, &["binaryData"]);
    vec![json!(name(cm)), json!(n), age(cm, now)].into()
}

const SERVICEACCOUNT_COLS: &[Col] = &[
    NAME,
    col(
        "Secrets",
        "string",
        "Number of secrets listed by the service account.",
    ),
    AGE,
];

fn print_serviceaccount(sa: &Value, now: DateTime<Utc>) -> Row {
    vec![
        json!(name(sa)),
        json!(arr_at(sa, &["secrets"]).len() as i64),
        age(sa, now),
    ]
    .into()
}

const LEASE_COLS: &[Col] = &[
    NAME,
    col(
        "Holder",
        "string",
        "Identity of the current holder of the lease.",
    ),
    AGE,
];

fn print_lease(l: &Value, now: DateTime<Utc>) -> Row {
    vec![
        json!(name(l)),
        json!(str_at(l, &["spec", "holderIdentity"])),
        age(l, now),
    ]
    .into()
}

// ---------- services, endpoints, endpoint slices ----------

const SERVICE_COLS: &[Col] = &[
    NAME,
    col("Type", "string", "How the service is exposed."),
    col(
        "Cluster-IP",
        "string",
        "Virtual IP of the service inside the cluster.",
    ),
    col(
        "External-IP",
        "string",
        "Addresses the service is reachable at from outside.",
    ),
    col(
        "Port(s)",
        "string",
        "Service ports (port:nodePort/protocol).",
    ),
    AGE,
    wide(
        "Selector",
        "string",
        "Labels of the pods the service sends traffic to.",
    ),
];

fn load_balancer_ips(svc: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for i in arr_at(svc, &["status", "loadBalancer", "ingress"]) {
        let ip = str_at(i, &["ip"]);
        let v = if !ip.is_empty() {
            ip
        } else {
            str_at(i, &["hostname"])
        };
        if !v.is_empty() && !out.iter().any(|x| x == v) {
            out.push(v.to_string());
        }
    }
    out.sort();
    out
}

fn print_service(svc: &Value, now: DateTime<Utc>) -> Row {
    let ty = match str_at(svc, &["spec", "type"]) {
        "" => "ClusterIP",
        t => t,
    };
    let mut cluster_ip = arr_at(svc, &["spec", "clusterIPs"])
        .first()
        .and_then(Value::as_str)
        .unwrap_or("");
    if cluster_ip.is_empty() {
        cluster_ip = str_at(svc, &["spec", "clusterIP"]);
    }
    let external_ips: Vec<&str> = arr_at(svc, &["spec", "externalIPs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let external = match ty {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".to_string()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let lb = load_balancer_ips(svc);
            if !external_ips.is_empty() {
                let mut all = lb;
                all.extend(external_ips.iter().map(|s| s.to_string()));
                all.join(",")
            } else if !lb.is_empty() {
                lb.join(",")
            } else {
                "<pending>".to_string()
            }
        }
        "ExternalName" => str_at(svc, &["spec", "externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    };
    let ports: Vec<String> = arr_at(svc, &["spec", "ports"])
        .iter()
        .map(|p| {
            let proto = match str_at(p, &["protocol"]) {
                "" => "TCP",
                x => x,
            };
            let port = int_at(p, &["port"]);
            let node_port = int_at(p, &["nodePort"]);
            if node_port > 0 {
                format!("{port}:{node_port}/{proto}")
            } else {
                format!("{port}/{proto}")
            }
        })
        .collect();
    vec![
        json!(name(svc)),
        json!(ty),
        json!(or_none(cluster_ip)),
        json!(external),
        json!(or_none(&ports.join(","))),
        age(svc, now),
        json!(format_labels(obj_at(svc, &["spec", "selector"]))),
    ]
    .into()
}

const ENDPOINTS_COLS: &[Col] = &[
    NAME,
    col(
        "Endpoints",
        "string",
        "Ready addresses (ip:port), at most three shown.",
    ),
    AGE,
];

fn format_endpoints(ep: &Value) -> String {
    let subsets = arr_at(ep, &["subsets"]);
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for ss in subsets {
        let addrs = arr_at(ss, &["addresses"]);
        let ports = arr_at(ss, &["ports"]);
        if ports.is_empty() {
            count += addrs.len();
            for a in addrs {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(str_at(a, &["ip"]).to_string());
            }
            continue;
        }
        for p in ports {
            count += addrs.len();
            for a in addrs {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(join_host_port(str_at(a, &["ip"]), int_at(p, &["port"])));
            }
        }
    }
    let ret = list.join(",");
    if more {
        format!("{ret} + {} more...", count - MAX)
    } else {
        ret
    }
}

fn print_endpoints(ep: &Value, now: DateTime<Utc>) -> Row {
    vec![json!(name(ep)), json!(format_endpoints(ep)), age(ep, now)].into()
}

const ENDPOINTSLICE_COLS: &[Col] = &[
    NAME,
    col("AddressType", "string", "Address family of the endpoints."),
    col(
        "Ports",
        "string",
        "Ports of the slice, at most three shown.",
    ),
    col(
        "Endpoints",
        "string",
        "Endpoint addresses, at most three shown.",
    ),
    AGE,
];

fn print_endpointslice(es: &Value, now: DateTime<Utc>) -> Row {
    const MAX: usize = 3;
    let ports_all = arr_at(es, &["ports"]);
    let ports: Vec<String> = ports_all
        .iter()
        .take(MAX)
        .map(|p| match int_opt(p, &["port"]) {
            Some(n) => n.to_string(),
            None => match at(p, &["name"]).and_then(Value::as_str) {
                Some(n) => n.to_string(),
                None => "*".to_string(),
            },
        })
        .collect();
    let addrs: Vec<&str> = arr_at(es, &["endpoints"])
        .iter()
        .flat_map(|e| arr_at(e, &["addresses"]).iter().filter_map(Value::as_str))
        .collect();
    let total_addrs = addrs.len();
    let shown: Vec<String> = addrs.into_iter().take(MAX).map(String::from).collect();
    vec![
        json!(name(es)),
        json!(str_at(es, &["addressType"])),
        json!(list_with_more(ports, ports_all.len(), MAX)),
        json!(list_with_more(shown, total_addrs, MAX)),
        age(es, now),
    ]
    .into()
}

// ---------- events ----------

const EVENT_COLS: &[Col] = &[
    col(
        "Last Seen",
        "string",
        "Time since the event was last observed.",
    ),
    col("Type", "string", "Normal or Warning."),
    col(
        "Reason",
        "string",
        "Short machine-readable cause of the event.",
    ),
    col(
        "Object",
        "string",
        "The object the event is about (kind/name).",
    ),
    wide(
        "Subobject",
        "string",
        "Field path within the object, e.g. a container.",
    ),
    wide(
        "Source",
        "string",
        "Component (and host) that reported the event.",
    ),
    col(
        "Message",
        "string",
        "Human-readable description of the event.",
    ),
    wide(
        "First Seen",
        "string",
        "Time since the event was first observed.",
    ),
    wide("Count", "string", "How many times the event occurred."),
    Col {
        priority: 1,
        ..NAME
    },
];

fn print_event(ev: &Value, now: DateTime<Utc>) -> Row {
    let first = match time_at(ev, &["firstTimestamp"]) {
        Some(t) => since(Some(t), now),
        None => since(time_at(ev, &["eventTime"]), now),
    };
    let mut last = match time_at(ev, &["lastTimestamp"]) {
        Some(t) => since(Some(t), now),
        None => first.clone(),
    };
    let mut count = int_at(ev, &["count"]);
    if let Some(series) = at(ev, &["series"]) {
        last = since(time_at(series, &["lastObservedTime"]), now);
        count = int_at(series, &["count"]);
    } else if count == 0 {
        count = 1;
    }
    let kind = str_at(ev, &["involvedObject", "kind"]).to_lowercase();
    let obj_name = str_at(ev, &["involvedObject", "name"]);
    let target = if obj_name.is_empty() {
        kind
    } else {
        format!("{kind}/{obj_name}")
    };
    let first_non_empty = |a: &str, b: &str| {
        if a.is_empty() {
            b.to_string()
        } else {
            a.to_string()
        }
    };
    let component = first_non_empty(
        str_at(ev, &["source", "component"]),
        str_at(ev, &["reportingComponent"]),
    );
    let instance = first_non_empty(
        str_at(ev, &["source", "host"]),
        str_at(ev, &["reportingInstance"]),
    );
    let source = if instance.is_empty() {
        component
    } else {
        format!("{component}, {instance}")
    };
    vec![
        json!(last),
        json!(str_at(ev, &["type"])),
        json!(str_at(ev, &["reason"])),
        json!(target),
        json!(str_at(ev, &["involvedObject", "fieldPath"])),
        json!(source),
        json!(str_at(ev, &["message"]).trim()),
        json!(first),
        json!(count),
        json!(name(ev)),
    ]
    .into()
}

// ---------- workloads ----------

const DEPLOYMENT_COLS: &[Col] = &[
    NAME,
    col("Ready", "string", "Ready pods out of desired pods."),
    col("Up-to-date", "string", "Pods running the current template."),
    col("Available", "string", "Pods available to serve."),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

fn print_deployment(d: &Value, now: DateTime<Utc>) -> Row {
    let (names, images) = containers_and_images(template_spec(d));
    let selector =
        selector_string(at(d, &["spec", "selector"])).unwrap_or_else(|_| "<invalid>".to_string());
    vec![
        json!(name(d)),
        json!(format!(
            "{}/{}",
            int_at(d, &["status", "readyReplicas"]),
            replicas_or_one(d)
        )),
        json!(int_at(d, &["status", "updatedReplicas"])),
        json!(int_at(d, &["status", "availableReplicas"])),
        age(d, now),
        json!(names),
        json!(images),
        json!(selector),
    ]
    .into()
}

const REPLICASET_COLS: &[Col] = &[
    NAME,
    col("Desired", "integer", "Number of pods wanted."),
    col("Current", "integer", "Number of pods created."),
    col("Ready", "integer", "Number of ready pods."),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

fn print_replicaset(rs: &Value, now: DateTime<Utc>) -> Row {
    let (names, images) = containers_and_images(template_spec(rs));
    vec![
        json!(name(rs)),
        json!(replicas_or_one(rs)),
        json!(int_at(rs, &["status", "replicas"])),
        json!(int_at(rs, &["status", "readyReplicas"])),
        age(rs, now),
        json!(names),
        json!(images),
        json!(format_label_selector(at(rs, &["spec", "selector"]))),
    ]
    .into()
}

const DAEMONSET_COLS: &[Col] = &[
    NAME,
    col(
        "Desired",
        "integer",
        "Number of nodes that should run the daemon pod.",
    ),
    col(
        "Current",
        "integer",
        "Number of nodes running the daemon pod.",
    ),
    col(
        "Ready",
        "integer",
        "Number of nodes with a ready daemon pod.",
    ),
    col(
        "Up-to-date",
        "integer",
        "Number of nodes running the current template.",
    ),
    col(
        "Available",
        "integer",
        "Number of nodes with an available daemon pod.",
    ),
    col(
        "Node Selector",
        "string",
        "Node labels the daemon pods are limited to.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

fn print_daemonset(ds: &Value, now: DateTime<Utc>) -> Row {
    let (names, images) = containers_and_images(template_spec(ds));
    vec![
        json!(name(ds)),
        json!(int_at(ds, &["status", "desiredNumberScheduled"])),
        json!(int_at(ds, &["status", "currentNumberScheduled"])),
        json!(int_at(ds, &["status", "numberReady"])),
        json!(int_at(ds, &["status", "updatedNumberScheduled"])),
        json!(int_at(ds, &["status", "numberAvailable"])),
        json!(format_labels(obj_at(
            ds,
            &["spec", "template", "spec", "nodeSelector"]
        ))),
        age(ds, now),
        json!(names),
        json!(images),
        json!(format_label_selector(at(ds, &["spec", "selector"]))),
    ]
    .into()
}

const STATEFULSET_COLS: &[Col] = &[
    NAME,
    col("Ready", "string", "Ready pods out of desired pods."),
    AGE,
    CONTAINERS,
    IMAGES,
];

fn print_statefulset(ss: &Value, now: DateTime<Utc>) -> Row {
    let (names, images) = containers_and_images(template_spec(ss));
    vec![
        json!(name(ss)),
        json!(format!(
            "{}/{}",
            int_at(ss, &["status", "readyReplicas"]),
            replicas_or_one(ss)
        )),
        age(ss, now),
        json!(names),
        json!(images),
    ]
    .into()
}

const CONTROLLERREVISION_COLS: &[Col] = &[
    NAME,
    col(
        "Controller",
        "string",
        "The object that owns the revision (kind.group/name).",
    ),
    col("Revision", "string", "Revision number."),
    AGE,
];

fn print_controllerrevision(cr: &Value, now: DateTime<Utc>) -> Row {
    let controller = arr_at(cr, &["metadata", "ownerReferences"])
        .iter()
        .find(|o| bool_at(o, &["controller"]))
        .map(|o| {
            let api_version = str_at(o, &["apiVersion"]);
            let group = match api_version.split_once('/') {
                Some((g, _)) => g,
                None => "",
            };
            let kind = str_at(o, &["kind"]);
            let gk = if group.is_empty() {
                kind.to_string()
            } else {
                format!("{kind}.{group}")
            };
            let n = str_at(o, &["name"]);
            if gk.is_empty() {
                n.to_string()
            } else {
                format!("{}/{n}", gk.to_lowercase())
            }
        })
        .unwrap_or_else(|| "<none>".to_string());
    vec![
        json!(name(cr)),
        json!(controller),
        json!(int_at(cr, &["revision"])),
        age(cr, now),
    ]
    .into()
}

const JOB_COLS: &[Col] = &[
    NAME,
    col("Status", "string", "Status of the job."),
    col(
        "Completions",
        "string",
        "Succeeded pods out of required completions.",
    ),
    col(
        "Duration",
        "string",
        "Time the job ran, or has been running.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

/// The status of the first condition of type `ty` is True.
fn first_condition_true(conds: &[Value], ty: &str) -> bool {
    conds
        .iter()
        .find(|c| str_at(c, &["type"]) == ty)
        .is_some_and(|c| str_at(c, &["status"]) == "True")
}

fn print_job(job: &Value, now: DateTime<Utc>) -> Row {
    let succeeded = int_at(job, &["status", "succeeded"]);
    let completions = int_opt(job, &["spec", "completions"]);
    let parallelism = int_opt(job, &["spec", "parallelism"]);
    let completions_cell = match (completions, parallelism) {
        (Some(c), _) => format!("{succeeded}/{c}"),
        // Defaulting sets completions=1 when neither is given.
        (None, None) => format!("{succeeded}/1"),
        (None, Some(p)) if p > 1 => format!("{succeeded}/1 of {p}"),
        (None, Some(_)) => format!("{succeeded}/1"),
    };
    let duration = match (
        time_at(job, &["status", "startTime"]),
        time_at(job, &["status", "completionTime"]),
    ) {
        (None, _) => String::new(),
        (Some(s), None) => human_duration(now - s),
        (Some(s), Some(c)) => human_duration(c - s),
    };
    let conds = arr_at(job, &["status", "conditions"]);
    let status = if first_condition_true(conds, "Complete") {
        "Complete"
    } else if first_condition_true(conds, "Failed") {
        "Failed"
    } else if at(job, &["metadata", "deletionTimestamp"]).is_some() {
        "Terminating"
    } else if first_condition_true(conds, "Suspended") {
        "Suspended"
    } else if first_condition_true(conds, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = containers_and_images(template_spec(job));
    vec![
        json!(name(job)),
        json!(status),
        json!(completions_cell),
        json!(duration),
        age(job, now),
        json!(names),
        json!(images),
        json!(format_label_selector(at(job, &["spec", "selector"]))),
    ]
    .into()
}

const CRONJOB_COLS: &[Col] = &[
    NAME,
    col("Schedule", "string", "Cron schedule of the job."),
    col(
        "Timezone",
        "string",
        "Time zone the schedule is interpreted in.",
    ),
    col("Suspend", "boolean", "Whether new runs are suspended."),
    col("Active", "integer", "Number of running jobs."),
    col(
        "Last Schedule",
        "string",
        "Time since a job was last scheduled.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

fn print_cronjob(cj: &Value, now: DateTime<Utc>) -> Row {
    let last = match at(cj, &["status", "lastScheduleTime"]) {
        Some(_) => since(time_at(cj, &["status", "lastScheduleTime"]), now),
        None => "<none>".to_string(),
    };
    let tz = match at(cj, &["spec", "timeZone"]).and_then(Value::as_str) {
        Some(t) => t.to_string(),
        None => "<none>".to_string(),
    };
    // The API server defaults suspend to false.
    let suspend = if bool_at(cj, &["spec", "suspend"]) {
        "True"
    } else {
        "False"
    };
    let (names, images) =
        containers_and_images(at(cj, &["spec", "jobTemplate", "spec", "template", "spec"]));
    vec![
        json!(name(cj)),
        json!(str_at(cj, &["spec", "schedule"])),
        json!(tz),
        json!(suspend),
        json!(arr_at(cj, &["status", "active"]).len() as i64),
        json!(last),
        age(cj, now),
        json!(names),
        json!(images),
        json!(format_label_selector(at(
            cj,
            &["spec", "jobTemplate", "spec", "selector"]
        ))),
    ]
    .into()
}
