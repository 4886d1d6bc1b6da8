use super::*;

use chrono::TimeZone;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap()
}

/// RFC 3339 time `secs` seconds before `now()`.
fn ago(secs: i64) -> String {
    (now() - Duration::seconds(secs))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn cells(group: &str, plural: &str, obj: Value) -> Vec<Value> {
    let t = table(group, plural, &[obj], IncludeObject::Metadata, now());
    t["rows"][0]["cells"].as_array().unwrap().clone()
}

fn strs(c: &[Value]) -> Vec<String> {
    c.iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

#[test]
fn human_duration_matches_kubernetes() {
    let cases: &[(i64, &str)] = &[
        (-5, "<invalid>"),
        (-2, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (45, "45s"),
        (119, "119s"),
        (120, "2m"),
        (330, "5m30s"),
        (599, "9m59s"),
        (600, "10m"),
        (179 * 60 + 59, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 5 * 60, "3h5m"),
        (7 * 3600 + 59 * 60, "7h59m"),
        (8 * 3600, "8h"),
        (47 * 3600, "47h"),
        (48 * 3600, "2d"),
        (51 * 3600, "2d3h"),
        (7 * 86400 + 23 * 3600, "7d23h"),
        (8 * 86400, "8d"),
        (729 * 86400, "729d"),
        (730 * 86400, "2y"),
        (740 * 86400, "2y10d"),
        (3 * 365 * 86400, "3y"),
        (8 * 365 * 86400, "8y"),
        (20 * 365 * 86400 + 100 * 86400, "20y"),
    ];
    for (secs, want) in cases {
        assert_eq!(human_duration(Duration::seconds(*secs)), *want, "{secs}s");
    }
    // Fractions truncate toward zero, like Go's int(d.Seconds()).
    assert_eq!(human_duration(Duration::milliseconds(-1500)), "0s");
    assert_eq!(human_duration(Duration::milliseconds(-2500)), "<invalid>");
    assert_eq!(human_duration(Duration::milliseconds(59_999)), "59s");
}

#[test]
fn table_shape_and_include_object() {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "uid": "u1",
                     "resourceVersion": "7", "creationTimestamp": ago(60)},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        "status": {"phase": "Pending"}
    });
    let t = table(
        "",
        "pods",
        std::slice::from_ref(&pod),
        IncludeObject::Metadata,
        now(),
    );
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
    assert!(t["metadata"].is_object());
    let cols = t["columnDefinitions"].as_array().unwrap();
    let names: Vec<&str> = cols.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "Name",
            "Ready",
            "Status",
            "Restarts",
            "Age",
            "IP",
            "Node",
            "Nominated Node",
            "Readiness Gates"
        ]
    );
    assert_eq!(cols[0]["format"], "name");
    assert_eq!(cols[0]["priority"], 0);
    assert_eq!(cols[5]["priority"], 1);
    for c in cols {
        for k in ["name", "type", "format", "description", "priority"] {
            assert!(c.get(k).is_some(), "{k} missing in {c}");
        }
    }
    let obj = &t["rows"][0]["object"];
    assert_eq!(obj["kind"], "PartialObjectMetadata");
    assert_eq!(obj["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(obj["metadata"], pod["metadata"]);

    let t = table(
        "",
        "pods",
        std::slice::from_ref(&pod),
        IncludeObject::Object,
        now(),
    );
    assert_eq!(t["rows"][0]["object"], pod);
    let t = table(
        "",
        "pods",
        std::slice::from_ref(&pod),
        IncludeObject::None,
        now(),
    );
    assert!(t["rows"][0]["object"].is_null());
    let t = table_with_options("", "pods", &[pod], IncludeObject::None, true, now());
    assert!(t["columnDefinitions"].is_null());
    let t = table("", "pods", &[], IncludeObject::Metadata, now());
    assert_eq!(t["rows"], json!([]));

    assert_eq!(
        IncludeObject::from_query(None),
        Some(IncludeObject::Metadata)
    );
    assert_eq!(
        IncludeObject::from_query(Some("Object")),
        Some(IncludeObject::Object)
    );
    assert_eq!(
        IncludeObject::from_query(Some("None")),
        Some(IncludeObject::None)
    );
    assert_eq!(IncludeObject::from_query(Some("bogus")), None);
}

#[test]
fn every_resource_has_one_cell_per_column_even_for_junk() {
    let resources = [
        ("", "pods"),
        ("", "nodes"),
        ("", "namespaces"),
        ("", "services"),
        ("", "endpoints"),
        ("", "secrets"),
        ("", "configmaps"),
        ("", "events"),
        ("", "serviceaccounts"),
        ("apps", "deployments"),
        ("extensions", "deployments"),
        ("apps", "replicasets"),
        ("apps", "daemonsets"),
        ("apps", "statefulsets"),
        ("apps", "controllerrevisions"),
        ("batch", "jobs"),
        ("batch", "cronjobs"),
        ("coordination.k8s.io", "leases"),
        ("discovery.k8s.io", "endpointslices"),
        ("example.com", "widgets"),
    ];
    let junk = [
        json!({}),
        json!(null),
        json!("string"),
        json!({"metadata": 5, "spec": [], "status": {"containerStatuses": "x"}}),
        json!({"metadata": {"name": "n", "creationTimestamp": "not a time"},
               "spec": {"selector": {"matchExpressions": [{"key": "k", "operator": "In"}]}}}),
    ];
    for (g, p) in resources {
        let t = table(g, p, &junk, IncludeObject::Metadata, now());
        let ncols = t["columnDefinitions"].as_array().unwrap().len();
        for row in t["rows"].as_array().unwrap() {
            assert_eq!(row["cells"].as_array().unwrap().len(), ncols, "{g}/{p}");
        }
        assert_eq!(column_names(g, p).len(), ncols);
    }
}

#[test]
fn unknown_resources_get_name_and_created_at() {
    let t = table(
        "example.com",
        "widgets",
        &[json!({"metadata": {"name": "w", "creationTimestamp": "2025-05-31T10:00:00+02:00"}})],
        IncludeObject::Metadata,
        now(),
    );
    assert_eq!(t["columnDefinitions"][1]["name"], "Created At");
    assert_eq!(t["columnDefinitions"][1]["type"], "date");
    assert_eq!(t["rows"][0]["cells"], json!(["w", "2025-05-31T08:00:00Z"]));
    let c = cells("example.com", "widgets", json!({"metadata": {"name": "x"}}));
    assert_eq!(c, vec![json!("x"), json!("0001-01-01T00:00:00Z")]);
}

// ---------- pods ----------

fn running_container(name: &str, restarts: i64, last_finished: Option<i64>) -> Value {
    let mut c = json!({
        "name": name, "ready": true, "restartCount": restarts, "started": true,
        "image": "nginx", "imageID": "", "containerID": "containerd://x",
        "state": {"running": {"startedAt": ago(200)}}, "lastState": {}
    });
    if let Some(f) = last_finished {
        c["lastState"] = json!({"terminated": {
            "exitCode": 137, "reason": "OOMKilled",
            "startedAt": ago(f + 100), "finishedAt": ago(f)
        }});
    }
    c
}

fn pod(status: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-0", "namespace": "default", "creationTimestamp": ago(3 * 3600)},
        "spec": {"nodeName": "node-1", "containers": [
            {"name": "app", "image": "nginx"}, {"name": "sidecar", "image": "envoy"}
        ]},
        "status": status
    })
}

#[test]
fn running_pod_with_restarts() {
    let p = pod(json!({
        "phase": "Running", "podIP": "10.244.0.5", "podIPs": [{"ip": "10.244.0.5"}],
        "conditions": [{"type": "Ready", "status": "True"}, {"type": "Initialized", "status": "True"}],
        "containerStatuses": [running_container("app", 3, Some(300)), running_container("sidecar", 0, None)]
    }));
    assert_eq!(
        strs(&cells("", "pods", p)),
        [
            "web-0",
            "2/2",
            "Running",
            "3 (5m ago)",
            "3h",
            "10.244.0.5",
            "node-1",
            "<none>",
            "<none>"
        ]
    );
}

#[test]
fn crashlooping_pod() {
    let mut p = pod(json!({
        "phase": "Running", "podIP": "10.244.0.6",
        "containerStatuses": [
            running_container("app", 0, None),
            {"name": "sidecar", "ready": false, "restartCount": 7,
             "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}},
             "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(30)}}}
        ]
    }));
    p["spec"]["readinessGates"] = json!([{"conditionType": "example.com/gate"}]);
    let c = strs(&cells("", "pods", p));
    assert_eq!(c[1], "1/2");
    assert_eq!(c[2], "CrashLoopBackOff");
    assert_eq!(c[3], "7 (30s ago)");
    // No podIPs: falls back to podIP.
    assert_eq!(c[5], "10.244.0.6");
    assert_eq!(c[8], "0/1");
}

#[test]
fn pod_status_reasons() {
    let status = |s: Value| strs(&cells("", "pods", pod(s)))[2].clone();
    assert_eq!(status(json!({"phase": "Pending"})), "Pending");
    assert_eq!(status(json!({})), "");
    assert_eq!(
        status(json!({"phase": "Pending", "containerStatuses": [
            {"name": "app", "state": {"waiting": {"reason": "ContainerCreating"}}},
            {"name": "sidecar", "state": {"waiting": {"reason": "ContainerCreating"}}}
        ]})),
        "ContainerCreating"
    );
    assert_eq!(
        status(json!({"phase": "Failed", "containerStatuses": [
            {"name": "app", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}
        ]})),
        "Error"
    );
    assert_eq!(
        status(json!({"phase": "Failed", "containerStatuses": [
            {"name": "app", "state": {"terminated": {"exitCode": 2}}}
        ]})),
        "ExitCode:2"
    );
    assert_eq!(
        status(json!({"phase": "Failed", "containerStatuses": [
            {"name": "app", "state": {"terminated": {"exitCode": 0, "signal": 9}}}
        ]})),
        "Signal:9"
    );
    assert_eq!(
        status(json!({"phase": "Failed", "reason": "Evicted", "message": "low on memory"})),
        "Evicted"
    );
    // One container completed, the other still running and ready.
    assert_eq!(
        status(json!({"phase": "Running",
        "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [
            {"name": "app", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
            running_container("sidecar", 0, None)
        ]})),
        "NotReady"
    );
    assert_eq!(
        status(json!({"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}
        ]})),
        "SchedulingGated"
    );
}

#[test]
fn completed_pod_has_row_condition() {
    let p = pod(json!({"phase": "Succeeded", "containerStatuses": [
        {"name": "app", "ready": false, "restartCount": 0,
         "state": {"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": ago(10)}}},
        {"name": "sidecar", "ready": false, "restartCount": 0,
         "state": {"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": ago(10)}}}
    ]}));
    let t = table("", "pods", &[p], IncludeObject::None, now());
    let row = &t["rows"][0];
    assert_eq!(row["cells"][1], "0/2");
    assert_eq!(row["cells"][2], "Completed");
    assert_eq!(row["cells"][3], "0");
    assert_eq!(row["conditions"][0]["type"], "Completed");
    assert_eq!(row["conditions"][0]["reason"], "Succeeded");
}

#[test]
fn init_container_states() {
    let with_init = |init_statuses: Value, extra: Value| {
        let mut p = pod(
            json!({"phase": "Pending", "initContainerStatuses": init_statuses,
            "containerStatuses": [
                {"name": "app", "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}
            ]}),
        );
        p["spec"]["initContainers"] = json!([
            {"name": "init-a", "image": "busybox"},
            {"name": "init-b", "image": "busybox"}
        ]);
        if let Value::Object(m) = extra {
            for (k, v) in m {
                p["status"][k] = v;
            }
        }
        strs(&cells("", "pods", p))
    };
    let c = with_init(
        json!([{"name": "init-a", "restartCount": 0, "state": {"running": {}}}]),
        json!({}),
    );
    assert_eq!(c[2], "Init:0/2");
    let c = with_init(
        json!([
            {"name": "init-a", "restartCount": 0, "state": {"terminated": {"exitCode": 0}}},
            {"name": "init-b", "restartCount": 4,
             "state": {"waiting": {"reason": "CrashLoopBackOff"}},
             "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(20)}}}
        ]),
        json!({}),
    );
    assert_eq!(c[2], "Init:CrashLoopBackOff");
    assert_eq!(c[3], "4 (20s ago)");
    let c = with_init(
        json!([{"name": "init-a", "restartCount": 0,
                "state": {"terminated": {"exitCode": 3}}}]),
        json!({}),
    );
    assert_eq!(c[2], "Init:ExitCode:3");
    let c = with_init(
        json!([{"name": "init-a", "restartCount": 0,
                "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]),
        json!({}),
    );
    assert_eq!(c[2], "Init:Error");
}

#[test]
fn sidecar_init_containers_count_as_containers() {
    let mut p = pod(json!({"phase": "Running",
        "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
        "initContainerStatuses": [
            {"name": "proxy", "ready": true, "started": true, "restartCount": 2,
             "state": {"running": {}},
             "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(90)}}}
        ],
        "containerStatuses": [running_container("app", 0, None)]
    }));
    p["spec"]["containers"] = json!([{"name": "app", "image": "nginx"}]);
    p["spec"]["initContainers"] =
        json!([{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}]);
    let c = strs(&cells("", "pods", p));
    assert_eq!(c[1], "2/2");
    assert_eq!(c[2], "Running");
    assert_eq!(c[3], "2 (90s ago)");
}

#[test]
fn terminating_and_node_lost_pods() {
    let mut p = pod(json!({"phase": "Running",
        "containerStatuses": [running_container("app", 0, None), running_container("sidecar", 0, None)]}));
    p["metadata"]["deletionTimestamp"] = json!(ago(5));
    assert_eq!(cells("", "pods", p.clone())[2], "Terminating");
    p["status"]["reason"] = json!("NodeLost");
    assert_eq!(cells("", "pods", p.clone())[2], "Unknown");
    // A finished pod being deleted keeps its final status.
    p["status"] = json!({"phase": "Succeeded", "containerStatuses": [
        {"name": "app", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]});
    assert_eq!(cells("", "pods", p)[2], "Completed");
}

// ---------- nodes ----------

#[test]
fn cordoned_node() {
    let node = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "node-1", "creationTimestamp": ago(40 * 86400),
            "labels": {"node-role.kubernetes.io/control-plane": "",
                       "node-role.kubernetes.io/worker": "",
                       "kubernetes.io/role": "infra",
                       "kubernetes.io/hostname": "node-1"}},
        "spec": {"unschedulable": true},
        "status": {
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": "True"}
            ],
            "addresses": [{"type": "InternalIP", "address": "192.168.1.10"},
                          {"type": "Hostname", "address": "node-1"}],
            "nodeInfo": {"kubeletVersion": "v1.32.0", "osImage": "Debian GNU/Linux 12 (bookworm)",
                         "kernelVersion": "6.1.0-18-amd64", "containerRuntimeVersion": "berth://0.1.0"}
        }
    });
    assert_eq!(
        strs(&cells("", "nodes", node)),
        [
            "node-1",
            "Ready,SchedulingDisabled",
            "control-plane,infra,worker",
            "40d",
            "v1.32.0",
            "192.168.1.10",
            "<none>",
            "Debian GNU/Linux 12 (bookworm)",
            "6.1.0-18-amd64",
            "berth://0.1.0"
        ]
    );
    let bare = strs(&cells("", "nodes", json!({"metadata": {"name": "n"}})));
    assert_eq!(
        bare,
        [
            "n",
            "Unknown",
            "<none>",
            "<unknown>",
            "",
            "<none>",
            "<none>",
            "<unknown>",
            "<unknown>",
            "<unknown>"
        ]
    );
    let not_ready = json!({"metadata": {"name": "n"},
        "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
    assert_eq!(cells("", "nodes", not_ready)[1], "NotReady");
}

// ---------- services, endpoints ----------

#[test]
fn nodeport_service() {
    let svc = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": ago(125)},
        "spec": {"type": "NodePort", "clusterIP": "10.96.12.34", "clusterIPs": ["10.96.12.34"],
                 "selector": {"app": "web", "tier": "frontend"},
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080, "protocol": "TCP"},
                           {"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30053}]}
    });
    assert_eq!(
        strs(&cells("", "services", svc)),
        [
            "web",
            "NodePort",
            "10.96.12.34",
            "<none>",
            "80:30080/TCP,53:30053/UDP",
            "2m5s",
            "app=web,tier=frontend"
        ]
    );
}

#[test]
fn other_service_types() {
    let lb = json!({"metadata": {"name": "lb"},
        "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.0.9"], "ports": [{"port": 443}]},
        "status": {"loadBalancer": {}}});
    let c = strs(&cells("", "services", lb.clone()));
    assert_eq!(c[3], "<pending>");
    assert_eq!(c[4], "443/TCP");
    assert_eq!(c[6], "<none>");
    let mut lb2 = lb;
    lb2["status"]["loadBalancer"]["ingress"] =
        json!([{"ip": "203.0.113.9"}, {"hostname": "a.example.com"}, {"ip": "203.0.113.9"}]);
    lb2["spec"]["externalIPs"] = json!(["198.51.100.1"]);
    assert_eq!(
        cells("", "services", lb2)[3],
        "203.0.113.9,a.example.com,198.51.100.1"
    );
    let ext = json!({"metadata": {"name": "x"},
        "spec": {"type": "ExternalName", "externalName": "db.example.com"}});
    let c = strs(&cells("", "services", ext));
    assert_eq!(c[2], "<none>");
    assert_eq!(c[3], "db.example.com");
    assert_eq!(c[4], "<none>");
    let headless = json!({"metadata": {"name": "h"},
        "spec": {"clusterIP": "None", "clusterIPs": ["None"], "externalIPs": ["1.2.3.4", "5.6.7.8"]}});
    let c = strs(&cells("", "services", headless));
    assert_eq!(&c[1..4], ["ClusterIP", "None", "1.2.3.4,5.6.7.8"]);
}

#[test]
fn endpoints_and_slices() {
    let ep = json!({"metadata": {"name": "web", "creationTimestamp": ago(10)}, "subsets": [
        {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}, {"port": 443}]},
        {"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}
    ]});
    assert_eq!(
        strs(&cells("", "endpoints", ep)),
        [
            "web",
            "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 2 more...",
            "10s"
        ]
    );
    let ep6 = json!({"metadata": {"name": "v6"}, "subsets": [
        {"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]},
        {"addresses": [{"ip": "10.1.1.1"}]}
    ]});
    assert_eq!(cells("", "endpoints", ep6)[1], "[fd00::1]:80,10.1.1.1");
    assert_eq!(
        cells("", "endpoints", json!({"metadata": {"name": "e"}}))[1],
        "<none>"
    );

    let es = json!({"metadata": {"name": "web-abc12", "creationTimestamp": ago(10)},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 80}, {"name": "named"}, {}, {"port": 9}],
        "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2", "10.0.0.3"]}]});
    assert_eq!(
        strs(&cells("discovery.k8s.io", "endpointslices", es)),
        [
            "web-abc12",
            "IPv4",
            "80,named,* + 1 more...",
            "10.0.0.1,10.0.0.2,10.0.0.3",
            "10s"
        ]
    );
    let empty = json!({"metadata": {"name": "e"}, "addressType": "IPv6"});
    let c = strs(&cells("discovery.k8s.io", "endpointslices", empty));
    assert_eq!(&c[2..4], ["<unset>", "<unset>"]);
}

// ---------- small core kinds ----------

#[test]
fn namespaces_secrets_configmaps_serviceaccounts_leases() {
    let ns = json!({"metadata": {"name": "kube-system", "creationTimestamp": ago(5 * 86400)},
        "status": {"phase": "Active"}});
    assert_eq!(
        strs(&cells("", "namespaces", ns)),
        ["kube-system", "Active", "5d"]
    );
    let ns = json!({"metadata": {"name": "gone", "deletionTimestamp": ago(1)},
        "status": {"phase": "Terminating"}});
    assert_eq!(cells("", "namespaces", ns)[1], "Terminating");

    let s = json!({"metadata": {"name": "tls", "creationTimestamp": ago(90)},
        "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}});
    assert_eq!(
        cells("", "secrets", s),
        vec![
            json!("tls"),
            json!("kubernetes.io/tls"),
            json!(2),
            json!("90s")
        ]
    );
    let cm = json!({"metadata": {"name": "cfg", "creationTimestamp": ago(90)},
        "data": {"a": "1"}, "binaryData": {"b": "AA=="}});
    assert_eq!(
        cells("", "configmaps", cm),
        vec![json!("cfg"), json!(2), json!("90s")]
    );
    let sa = json!({"metadata": {"name": "default"}, "secrets": [{"name": "t"}]});
    assert_eq!(
        cells("", "serviceaccounts", sa),
        vec![json!("default"), json!(1), json!("<unknown>")]
    );
    let lease = json!({"metadata": {"name": "node-1", "creationTimestamp": ago(3600)},
        "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40}});
    assert_eq!(
        strs(&cells("coordination.k8s.io", "leases", lease)),
        ["node-1", "node-1", "60m"]
    );
}

#[test]
fn events() {
    let ev = json!({
        "metadata": {"name": "web-0.17d", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "web-0", "fieldPath": "spec.containers{app}"},
        "reason": "BackOff", "type": "Warning",
        "message": "Back-off restarting failed container\n",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": ago(600), "lastTimestamp": ago(30), "count": 12
    });
    assert_eq!(
        strs(&cells("", "events", ev)),
        [
            "30s",
            "Warning",
            "BackOff",
            "pod/web-0",
            "spec.containers{app}",
            "kubelet, node-1",
            "Back-off restarting failed container",
            "10m",
            "12",
            "web-0.17d"
        ]
    );
    // New-style event: eventTime, series, reporting fields.
    let ev = json!({
        "metadata": {"name": "e2"}, "involvedObject": {"kind": "Node"},
        "reason": "Ready", "type": "Normal", "message": "ok",
        "eventTime": "2025-06-01T11:58:00.000000Z",
        "reportingComponent": "berth-controller", "reportingInstance": "",
        "series": {"count": 4, "lastObservedTime": "2025-06-01T11:59:50.123456Z"}
    });
    let c = strs(&cells("", "events", ev));
    assert_eq!(c[0], "9s");
    assert_eq!(c[3], "node");
    assert_eq!(c[5], "berth-controller");
    assert_eq!(c[7], "2m");
    assert_eq!(c[8], "4");
    // Singleton with no count.
    let ev = json!({"metadata": {"name": "e3"}, "involvedObject": {"kind": "Pod", "name": "p"}});
    let c = strs(&cells("", "events", ev));
    assert_eq!(c[0], "<unknown>");
    assert_eq!(c[8], "1");
    let t = table("", "events", &[], IncludeObject::Metadata, now());
    assert_eq!(t["columnDefinitions"][9]["priority"], 1);
    assert_eq!(t["columnDefinitions"][9]["format"], "name");
}

// ---------- workloads ----------

fn template(containers: Value) -> Value {
    json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}})
}

#[test]
fn deployment_mid_rollout() {
    let d = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": ago(20 * 60)},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": template(json!([{"name": "nginx", "image": "nginx:1.27"},
                                             {"name": "log", "image": "busybox"}]))},
        "status": {"replicas": 4, "updatedReplicas": 1, "readyReplicas": 2,
                   "availableReplicas": 2, "unavailableReplicas": 2}
    });
    assert_eq!(
        cells("apps", "deployments", d),
        vec![
            json!("web"),
            json!("2/3"),
            json!(1),
            json!(2),
            json!("20m"),
            json!("nginx,log"),
            json!("nginx:1.27,busybox"),
            json!("app=web")
        ]
    );
    // Unset replicas default to 1; no status reads as zeros; no selector is "".
    let d = json!({"metadata": {"name": "d"}, "spec": {}});
    let c = cells("extensions", "deployments", d);
    assert_eq!(c[1], "0/1");
    assert_eq!(c[2], 0);
    assert_eq!(c[7], "");
}

#[test]
fn replicasets_daemonsets_statefulsets() {
    let rs = json!({"metadata": {"name": "web-5d4f", "creationTimestamp": ago(60)},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d4f"}},
                 "template": template(json!([{"name": "nginx", "image": "nginx"}]))},
        "status": {"replicas": 3, "readyReplicas": 1}});
    assert_eq!(
        cells("apps", "replicasets", rs),
        vec![
            json!("web-5d4f"),
            json!(3),
            json!(3),
            json!(1),
            json!("60s"),
            json!("nginx"),
            json!("nginx"),
            json!("app=web,pod-template-hash=5d4f")
        ]
    );
    let ds = json!({"metadata": {"name": "proxy", "creationTimestamp": ago(60)},
        "spec": {"selector": {"matchLabels": {"k": "v"}},
                 "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"},
                     "containers": [{"name": "p", "image": "kube-proxy"}]}}},
        "status": {"desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberReady": 1,
                   "updatedNumberScheduled": 2, "numberAvailable": 1}});
    assert_eq!(
        cells("apps", "daemonsets", ds),
        vec![
            json!("proxy"),
            json!(2),
            json!(2),
            json!(1),
            json!(2),
            json!(1),
            json!("kubernetes.io/os=linux"),
            json!("60s"),
            json!("p"),
            json!("kube-proxy"),
            json!("k=v")
        ]
    );
    let ss = json!({"metadata": {"name": "db", "creationTimestamp": ago(60)},
        "spec": {"replicas": 3, "template": template(json!([{"name": "pg", "image": "postgres:16"}]))},
        "status": {"readyReplicas": 2}});
    assert_eq!(
        strs(&cells("apps", "statefulsets", ss)),
        ["db", "2/3", "60s", "pg", "postgres:16"]
    );
}

#[test]
fn controller_revisions() {
    let cr = json!({"metadata": {"name": "db-7c9", "creationTimestamp": ago(60),
        "ownerReferences": [
            {"apiVersion": "v1", "kind": "Other", "name": "x"},
            {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "controller": true}
        ]}, "revision": 2});
    assert_eq!(
        cells("apps", "controllerrevisions", cr),
        vec![
            json!("db-7c9"),
            json!("statefulset.apps/db"),
            json!(2),
            json!("60s")
        ]
    );
    let orphan = json!({"metadata": {"name": "o"}, "revision": 1});
    assert_eq!(cells("apps", "controllerrevisions", orphan)[1], "<none>");
}

#[test]
fn jobs_and_cronjobs() {
    let done = json!({"metadata": {"name": "pi", "creationTimestamp": ago(600)},
        "spec": {"completions": 1, "parallelism": 1,
                 "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "abc"}},
                 "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}}},
        "status": {"succeeded": 1, "startTime": ago(600), "completionTime": ago(555),
                   "conditions": [{"type": "SuccessCriteriaMet", "status": "True"},
                                  {"type": "Complete", "status": "True"}]}});
    assert_eq!(
        strs(&cells("batch", "jobs", done)),
        [
            "pi",
            "Complete",
            "1/1",
            "45s",
            "10m",
            "pi",
            "perl",
            "batch.kubernetes.io/controller-uid=abc"
        ]
    );
    let running = json!({"metadata": {"name": "work", "creationTimestamp": ago(200)},
        "spec": {"parallelism": 3}, "status": {"startTime": ago(200), "succeeded": 0}});
    let c = strs(&cells("batch", "jobs", running));
    assert_eq!(&c[1..4], ["Running", "0/1 of 3", "3m20s"]);
    let failed = json!({"metadata": {"name": "f"}, "spec": {},
        "status": {"conditions": [{"type": "Failed", "status": "True"}]}});
    let c = strs(&cells("batch", "jobs", failed));
    assert_eq!(&c[1..4], ["Failed", "0/1", ""]);
    let suspended = json!({"metadata": {"name": "s"}, "spec": {"completions": 5, "suspend": true},
        "status": {"conditions": [{"type": "Suspended", "status": "True"}]}});
    assert_eq!(cells("batch", "jobs", suspended)[1], "Suspended");

    let cj = json!({"metadata": {"name": "nightly", "creationTimestamp": ago(3 * 86400)},
        "spec": {"schedule": "0 3 * * *", "timeZone": "Etc/UTC", "suspend": false,
                 "jobTemplate": {"spec": {"template": {"spec": {
                     "containers": [{"name": "backup", "image": "restic"}]}}}}},
        "status": {"active": [{"name": "nightly-1"}], "lastScheduleTime": ago(9 * 3600)}});
    assert_eq!(
        cells("batch", "cronjobs", cj),
        vec![
            json!("nightly"),
            json!("0 3 * * *"),
            json!("Etc/UTC"),
            json!("False"),
            json!(1),
            json!("9h"),
            json!("3d"),
            json!("backup"),
            json!("restic"),
            json!("<none>")
        ]
    );
    let cj = json!({"metadata": {"name": "n"}, "spec": {"schedule": "@hourly", "suspend": true}});
    let c = cells("batch", "cronjobs", cj);
    assert_eq!(c[2], "<none>");
    assert_eq!(c[3], "True");
    assert_eq!(c[5], "<none>");
}
