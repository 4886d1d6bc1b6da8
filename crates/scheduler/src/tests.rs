use serde_json::{json, Value};

use super::*;

fn node(name: &str, cpu: &str, mem: &str, pods: &str) -> Value {
    json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {},
        "status": {
            "allocatable": {"cpu": cpu, "memory": mem, "pods": pods},
            "conditions": [{"type": "Ready", "status": "True"}]
        }
    })
}

fn pod(name: &str, cpu: &str, mem: &str) -> Value {
    json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": mem}}}]}
    })
}

fn owned_pod(name: &str, owner_uid: &str) -> Value {
    let mut p = pod(name, "100m", "128Mi");
    p["metadata"]["ownerReferences"] = json!([
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": owner_uid, "controller": true}
    ]);
    p
}

fn cache_with(nodes: &[Value]) -> Cache {
    let mut c = Cache::new();
    for n in nodes {
        c.upsert_node(n);
    }
    c
}

fn err_text(c: &mut Cache, p: &Value) -> String {
    match c.schedule(p) {
        Ok(n) => panic!("expected a fit error, got node {n}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn node_unschedulable_and_its_toleration() {
    let mut n = node("n1", "4", "8Gi", "110");
    n["spec"]["unschedulable"] = json!(true);
    let mut c = cache_with(&[n]);
    assert_eq!(
        err_text(&mut c, &pod("p", "1", "1Gi")),
        "0/1 nodes are available: 1 node(s) were unschedulable. preemption: 0/1 nodes are \
         available: 1 Preemption is not helpful for scheduling."
    );
    let mut p = pod("q", "1", "1Gi");
    p["spec"]["tolerations"] = json!([
        {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}
    ]);
    assert_eq!(c.schedule(&p).as_deref(), Ok("n1"));
}

#[test]
fn not_ready_nodes_carry_the_taint() {
    let mut not_ready = node("a", "4", "8Gi", "110");
    not_ready["status"]["conditions"] = json!([{"type": "Ready", "status": "False"}]);
    let mut unknown = node("b", "4", "8Gi", "110");
    unknown["status"]["conditions"] = json!([{"type": "Ready", "status": "Unknown"}]);
    let mut missing = node("c", "4", "8Gi", "110");
    missing["status"]
        .as_object_mut()
        .expect("status")
        .remove("conditions");
    let mut c = cache_with(&[not_ready, unknown, missing]);
    assert_eq!(
        err_text(&mut c, &pod("p", "1", "1Gi")),
        "0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }, \
         2 node(s) had untolerated taint {node.kubernetes.io/not-ready: }. preemption: 0/3 nodes \
         are available: 3 Preemption is not helpful for scheduling."
    );
    let mut p = pod("q", "1", "1Gi");
    p["spec"]["tolerations"] = json!([
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoSchedule"}
    ]);
    assert_eq!(c.schedule(&p).as_deref(), Ok("b"));
}

#[test]
fn resources_fit_reasons() {
    let mut c = cache_with(&[node("n1", "1", "1Gi", "1")]);
    c.add_pod(&json!({
        "metadata": {"name": "running", "namespace": "default"},
        "spec": {"nodeName": "n1", "containers": [{"name": "c"}]}
    }));
    // The pod without requests still takes the node's only pod slot.
    assert_eq!(
        err_text(&mut c, &pod("p", "2", "2Gi")),
        "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, 1 Too many pods. \
         preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
    );
    c.remove_pod(&json!({"metadata": {"name": "running", "namespace": "default"}}));
    assert_eq!(c.pod_count(), 0);
    // Fits the node's size, only not its free share: preemption could help.
    let mut c2 = cache_with(&[node("n1", "1", "1Gi", "10")]);
    c2.add_pod(&{
        let mut p = pod("big", "800m", "900Mi");
        p["spec"]["nodeName"] = json!("n1");
        p
    });
    assert_eq!(
        err_text(&mut c2, &pod("p", "500m", "100Mi")),
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: \
         1 No preemption victims found for incoming pod."
    );
    assert_eq!(
        c2.schedule(&pod("small", "200m", "100Mi")).as_deref(),
        Ok("n1")
    );
}

#[test]
fn node_name_filter() {
    let mut c = cache_with(&[node("a", "4", "8Gi", "110"), node("b", "4", "8Gi", "110")]);
    let mut p = pod("p", "1", "1Gi");
    p["spec"]["nodeName"] = json!("b");
    assert_eq!(c.schedule(&p).as_deref(), Ok("b"));
    let mut q = pod("q", "1", "1Gi");
    q["spec"]["nodeName"] = json!("zzz");
    assert_eq!(
        err_text(&mut c, &q),
        "0/2 nodes are available: 2 node(s) didn't match the requested node name. preemption: \
         0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    );
}

#[test]
fn node_selector_and_required_affinity() {
    let mut a = node("a", "4", "8Gi", "110");
    a["metadata"]["labels"]["disk"] = json!("ssd");
    a["metadata"]["labels"]["cores"] = json!("16");
    let mut b = node("b", "4", "8Gi", "110");
    b["metadata"]["labels"]["disk"] = json!("hdd");
    let mut c = cache_with(&[a, b]);

    let mut p = pod("p", "1", "1Gi");
    p["spec"]["nodeSelector"] = json!({"disk": "ssd"});
    assert_eq!(c.schedule(&p).as_deref(), Ok("a"));

    let mut q = pod("q", "1", "1Gi");
    q["spec"]["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [
            {"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["32"]}]},
            {"matchExpressions": [{"key": "disk", "operator": "NotIn", "values": ["ssd"]},
                                  {"key": "gpu", "operator": "DoesNotExist"}]}
        ]
    }}});
    assert_eq!(c.schedule(&q).as_deref(), Ok("b"));

    let mut r = pod("r", "1", "1Gi");
    r["spec"]["nodeSelector"] = json!({"disk": "nvme"});
    assert_eq!(
        err_text(&mut c, &r),
        "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. \
         preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    );
}

#[test]
fn match_fields_pins_a_node_like_daemonsets() {
    let mut c = cache_with(&[
        node("a", "4", "8Gi", "0"),
        node("b", "4", "8Gi", "110"),
        node("c", "4", "8Gi", "110"),
    ]);
    let pinned = |name: &str, target: &str| {
        let mut p = pod(name, "100m", "10Mi");
        p["spec"]["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchFields": [
                {"key": "metadata.name", "operator": "In", "values": [target]}
            ]}]
        }}});
        p
    };
    assert_eq!(c.schedule(&pinned("p", "c")).as_deref(), Ok("c"));
    assert_eq!(
        err_text(&mut c, &pinned("q", "a")),
        "0/3 nodes are available: 1 Too many pods, 2 node(s) didn't satisfy plugin(s) \
         [NodeAffinity]. preemption: 0/3 nodes are available: 1 No preemption victims found \
         for incoming pod, 2 Preemption is not helpful for scheduling."
    );
    let mut conflict = pinned("r", "a");
    conflict["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"][0]["matchFields"]
        .as_array_mut()
        .expect("fields")
        .push(json!({"key": "metadata.name", "operator": "In", "values": ["b"]}));
    assert_eq!(
        err_text(&mut c, &conflict),
        "0/3 nodes are available: pod affinity terms conflict. preemption: 0/3 nodes are \
         available: 3 Preemption is not helpful for scheduling."
    );
}

#[test]
fn taints_and_tolerations() {
    let mut a = node("a", "4", "8Gi", "110");
    a["spec"]["taints"] = json!([
        {"key": "soft", "effect": "PreferNoSchedule"},
        {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    ]);
    let mut b = node("b", "4", "8Gi", "110");
    b["spec"]["taints"] = json!([{"key": "evict", "value": "x", "effect": "NoExecute"}]);
    let mut c = cache_with(&[a, b]);
    assert_eq!(
        err_text(&mut c, &pod("p", "1", "1Gi")),
        "0/2 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 1 node(s) \
         had untolerated taint {evict: x}. preemption: 0/2 nodes are available: 2 Preemption is \
         not helpful for scheduling."
    );
    let mut q = pod("q", "1", "1Gi");
    q["spec"]["tolerations"] =
        json!([{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]);
    assert_eq!(c.schedule(&q).as_deref(), Ok("a"));
    let mut r = pod("r", "1", "1Gi");
    r["spec"]["tolerations"] = json!([{"operator": "Exists"}]);
    assert!(
        c.schedule(&r).is_ok(),
        "empty key with Exists tolerates everything"
    );
    let mut s = pod("s", "1", "1Gi");
    s["spec"]["tolerations"] = json!([{"key": "dedicated", "value": "cpu"}]);
    assert!(
        c.schedule(&s).is_err(),
        "a different value does not tolerate"
    );
}

fn with_anti_affinity(mut p: Value, app: &str) -> Value {
    p["metadata"]["labels"] = json!({"app": app});
    p["spec"]["affinity"] = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": "kubernetes.io/hostname"}
    ]}});
    p
}

#[test]
fn pod_anti_affinity_by_hostname() {
    let mut c = cache_with(&[node("a", "4", "8Gi", "110"), node("b", "4", "8Gi", "110")]);
    let first = c
        .schedule(&with_anti_affinity(pod("w1", "100m", "10Mi"), "web"))
        .expect("first");
    let second = c
        .schedule(&with_anti_affinity(pod("w2", "100m", "10Mi"), "web"))
        .expect("second");
    assert_ne!(first, second);
    assert_eq!(
        err_text(
            &mut c,
            &with_anti_affinity(pod("w3", "100m", "10Mi"), "web")
        ),
        "0/2 nodes are available: 2 node(s) didn't match pod anti-affinity rules. preemption: \
         0/2 nodes are available: 2 No preemption victims found for incoming pod."
    );
    // Symmetry: a pod without terms, matched by the existing pods' terms, is refused too.
    let mut plain = pod("w4", "100m", "10Mi");
    plain["metadata"]["labels"] = json!({"app": "web"});
    assert_eq!(
        err_text(&mut c, &plain),
        "0/2 nodes are available: 2 node(s) didn't satisfy existing pods anti-affinity rules. \
         preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod."
    );
    // Other apps and other namespaces are not affected.
    assert!(c
        .schedule(&with_anti_affinity(pod("d1", "100m", "10Mi"), "db"))
        .is_ok());
    let mut elsewhere = with_anti_affinity(pod("w5", "100m", "10Mi"), "web");
    elsewhere["metadata"]["namespace"] = json!("other");
    assert!(c.schedule(&elsewhere).is_ok());
    // Removing a replica frees its node.
    c.remove_pod(&json!({"metadata": {"name": "w1", "namespace": "default"}}));
    assert_eq!(
        c.schedule(&with_anti_affinity(pod("w6", "100m", "10Mi"), "web")),
        Ok(first)
    );
}

#[test]
fn pod_affinity_follows_matching_pods() {
    let mut c = cache_with(&[node("a", "4", "8Gi", "110"), node("b", "4", "8Gi", "110")]);
    let follower = |name: &str| {
        let mut p = pod(name, "100m", "10Mi");
        p["metadata"]["labels"] = json!({"app": "cache"});
        p["spec"]["affinity"] = json!({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "cache"}}, "topologyKey": "kubernetes.io/hostname"}
        ]}});
        p
    };
    // The first pod selects itself and may go anywhere; the rest follow it.
    let first = c.schedule(&follower("c1")).expect("first");
    for i in 2..6 {
        assert_eq!(c.schedule(&follower(&format!("c{i}"))), Ok(first.clone()));
    }
    let mut stranger = follower("x");
    stranger["metadata"]["labels"] = json!({"app": "other"});
    stranger["spec"]["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        [0]["labelSelector"] = json!({"matchLabels": {"app": "missing"}});
    assert_eq!(
        err_text(&mut c, &stranger),
        "0/2 nodes are available: 2 node(s) didn't match pod affinity rules. preemption: 0/2 \
         nodes are available: 2 Preemption is not helpful for scheduling."
    );
}

#[test]
fn host_ports() {
    let mut c = cache_with(&[node("a", "4", "8Gi", "110")]);
    let with_port = |name: &str, port: i64, proto: &str, ip: &str| {
        let mut p = pod(name, "100m", "10Mi");
        p["spec"]["containers"][0]["ports"] =
            json!([{"containerPort": 80, "hostPort": port, "protocol": proto, "hostIP": ip}]);
        p
    };
    assert!(c.schedule(&with_port("p1", 8080, "TCP", "")).is_ok());
    assert_eq!(
        err_text(&mut c, &with_port("p2", 8080, "TCP", "10.0.0.1")),
        "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports. \
         preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
    );
    assert!(c.schedule(&with_port("p3", 8080, "UDP", "")).is_ok());
    assert!(c
        .schedule(&with_port("p4", 9090, "TCP", "10.0.0.1"))
        .is_ok());
    assert!(c
        .schedule(&with_port("p5", 9090, "TCP", "10.0.0.2"))
        .is_ok());
    assert!(c.schedule(&with_port("p6", 9090, "TCP", "")).is_err());
    c.remove_pod(&with_port("p1", 8080, "TCP", ""));
    assert!(c
        .schedule(&with_port("p2", 8080, "TCP", "10.0.0.1"))
        .is_ok());
}

#[test]
fn fit_error_text_for_mixed_reasons() {
    let mut a = node("a", "1", "8Gi", "110");
    a["spec"] = json!({});
    let mut b = node("b", "4", "8Gi", "110");
    b["status"]["conditions"] = json!([{"type": "Ready", "status": "Unknown"}]);
    let mut d = node("d", "4", "8Gi", "110");
    d["status"]["conditions"] = json!([{"type": "Ready", "status": "Unknown"}]);
    let mut c = cache_with(&[a, b, d]);
    // 2 cpu cannot fit a 1-cpu node at all: unresolvable, preemption does not help anywhere.
    assert_eq!(
        err_text(&mut c, &pod("p", "2", "1Gi")),
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint \
         {node.kubernetes.io/unreachable: }. preemption: 0/3 nodes are available: 3 Preemption \
         is not helpful for scheduling."
    );
    // 800m fits the node's size but not what is left: preemption might help there.
    c.add_pod(&{
        let mut p = pod("busy", "500m", "1Gi");
        p["spec"]["nodeName"] = json!("a");
        p
    });
    let e = c.schedule(&pod("q", "800m", "1Gi")).expect_err("no fit");
    assert_eq!(
        e.to_string(),
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint \
         {node.kubernetes.io/unreachable: }. preemption: 0/3 nodes are available: 1 No \
         preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling."
    );
    assert_eq!(e.num_nodes, 3);
    assert_eq!(e.reasons.get("Insufficient cpu"), Some(&1));
    assert!(!e.unresolvable());
    // preemptionPolicy: Never.
    let mut never = pod("r", "800m", "1Gi");
    never["spec"]["preemptionPolicy"] = json!("Never");
    assert_eq!(
        err_text(&mut c, &never),
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint \
         {node.kubernetes.io/unreachable: }. preemption: not eligible due to preemptionPolicy=Never."
    );
}

#[test]
fn histogram_sorts_as_strings() {
    let mut reasons = BTreeMap::new();
    reasons.insert("node(s) were unschedulable".to_string(), 2);
    reasons.insert("Insufficient cpu".to_string(), 10);
    let e = FitError {
        num_nodes: 12,
        pre_filter: None,
        reasons,
        preemption: Preemption::Nodes(BTreeMap::new()),
    };
    // Go's sort.Strings puts "10 ..." before "2 ...".
    assert_eq!(
        e.to_string(),
        "0/12 nodes are available: 10 Insufficient cpu, 2 node(s) were unschedulable. \
         preemption: 0/12 nodes are available:"
    );
}

#[test]
fn no_nodes_at_all() {
    let mut c = Cache::new();
    assert_eq!(
        err_text(&mut c, &pod("p", "1", "1Gi")),
        "no nodes available to schedule pods"
    );
}

#[test]
fn spreads_replicas_evenly() {
    let nodes: Vec<Value> = (0..5)
        .map(|i| node(&format!("n{i}"), "4", "8Gi", "110"))
        .collect();
    let mut c = cache_with(&nodes);
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..10 {
        let n = c
            .schedule(&owned_pod(&format!("r{i}"), "rs-1"))
            .expect("fits");
        *per_node.entry(n).or_default() += 1;
    }
    assert_eq!(per_node.len(), 5);
    assert!(per_node.values().all(|&n| n == 2), "{per_node:?}");
}

#[test]
fn spreading_beats_a_slightly_emptier_node() {
    // Node a is a bit emptier, but already holds a replica of the same owner.
    let mut c = cache_with(&[node("a", "8", "16Gi", "110"), node("b", "4", "8Gi", "110")]);
    let mut existing = owned_pod("r0", "rs-1");
    existing["spec"]["nodeName"] = json!("a");
    c.add_pod(&existing);
    assert_eq!(c.schedule(&owned_pod("r1", "rs-1")).as_deref(), Ok("b"));
}

#[test]
fn least_allocated_preference() {
    let mut c = cache_with(&[
        node("busy", "4", "8Gi", "110"),
        node("idle", "4", "8Gi", "110"),
        node("half", "4", "8Gi", "110"),
    ]);
    c.add_pod(&{
        let mut p = pod("x", "3", "6Gi");
        p["spec"]["nodeName"] = json!("busy");
        p
    });
    c.add_pod(&{
        let mut p = pod("y", "2", "4Gi");
        p["spec"]["nodeName"] = json!("half");
        p
    });
    assert_eq!(
        c.schedule(&pod("p", "500m", "512Mi")).as_deref(),
        Ok("idle")
    );
    // Pods without requests are scored with the default 100m/200Mi, so they spread too.
    let mut c = cache_with(&[node("a", "4", "8Gi", "110"), node("b", "4", "8Gi", "110")]);
    let empty =
        |name: &str| json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c"}]}});
    let first = c.schedule(&empty("e1")).expect("fits");
    let second = c.schedule(&empty("e2")).expect("fits");
    assert_ne!(first, second);
}

#[test]
fn assume_confirm_and_remove() {
    let mut c = cache_with(&[node("n1", "1", "1Gi", "110")]);
    let p = pod("p", "600m", "100Mi");
    assert_eq!(c.schedule(&p).as_deref(), Ok("n1"));
    assert!(c.is_assumed("default", "p"));
    assert_eq!(
        c.schedule(&p).as_deref(),
        Ok("n1"),
        "scheduling again is idempotent"
    );
    assert!(
        c.schedule(&pod("q", "600m", "100Mi")).is_err(),
        "the assumed pod holds cpu"
    );

    // The informer reports the binding: confirmed, still accounted once.
    let mut bound = p.clone();
    bound["spec"]["nodeName"] = json!("n1");
    c.add_pod(&bound);
    assert!(!c.is_assumed("default", "p"));
    assert_eq!(c.pod_count(), 1);
    assert!(c.schedule(&pod("q", "600m", "100Mi")).is_err());

    // Deleted: its resources are free again.
    c.remove_pod(&bound);
    assert_eq!(c.pod_node("default", "p"), None);
    assert_eq!(c.schedule(&pod("q", "600m", "100Mi")).as_deref(), Ok("n1"));

    // A failed binding: forgetting the assumed pod frees the node.
    c.remove_pod(&pod("q", "600m", "100Mi"));
    assert_eq!(c.pod_count(), 0);
    assert_eq!(c.schedule(&pod("r", "1", "1Gi")).as_deref(), Ok("n1"));
}

#[test]
fn finished_pods_release_resources() {
    let mut c = cache_with(&[node("n1", "1", "1Gi", "110")]);
    let mut p = pod("job", "1", "100Mi");
    p["spec"]["nodeName"] = json!("n1");
    c.add_pod(&p);
    assert!(c.schedule(&pod("q", "500m", "1Mi")).is_err());
    p["status"] = json!({"phase": "Succeeded"});
    c.add_pod(&p);
    assert_eq!(c.schedule(&pod("q", "500m", "1Mi")).as_deref(), Ok("n1"));
}

#[test]
fn pods_before_nodes_and_node_removal() {
    let mut c = Cache::new();
    let mut p = pod("early", "3", "1Gi");
    p["spec"]["nodeName"] = json!("n1");
    c.add_pod(&p);
    c.upsert_node(&node("n1", "4", "8Gi", "110"));
    assert!(
        c.schedule(&pod("q", "2", "1Gi")).is_err(),
        "the early pod counts"
    );
    c.remove_node("n1");
    assert_eq!(c.node_count(), 0);
    c.upsert_node(&node("n1", "4", "8Gi", "110"));
    assert!(
        c.schedule(&pod("q", "2", "1Gi")).is_err(),
        "and still counts after re-adding"
    );
    c.remove_pod(&p);
    assert_eq!(c.schedule(&pod("q", "2", "1Gi")).as_deref(), Ok("n1"));
    // Updating a node keeps what is on it.
    let mut bigger = node("n1", "8", "8Gi", "110");
    bigger["metadata"]["labels"]["x"] = json!("y");
    c.upsert_node(&bigger);
    assert_eq!(c.schedule(&pod("r", "5", "1Gi")).as_deref(), Ok("n1"));
    assert!(c.schedule(&pod("s", "2", "1Gi")).is_err());
}

#[test]
fn namespace_selector_in_anti_affinity() {
    let mut c = cache_with(&[node("a", "4", "8Gi", "110")]);
    c.upsert_namespace(&json!({"metadata": {"name": "team", "labels": {"tier": "prod"}}}));
    let mut existing = pod("db", "100m", "10Mi");
    existing["metadata"]["namespace"] = json!("team");
    existing["metadata"]["labels"] = json!({"app": "db"});
    existing["spec"]["nodeName"] = json!("a");
    c.add_pod(&existing);
    let mut p = pod("p", "100m", "10Mi");
    p["spec"]["affinity"] = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
        "labelSelector": {"matchLabels": {"app": "db"}},
        "namespaceSelector": {"matchLabels": {"tier": "prod"}},
        "topologyKey": "kubernetes.io/hostname"
    }]}});
    assert!(c.schedule(&p).is_err());
    c.remove_namespace("team");
    assert!(c.schedule(&p).is_ok());
}

#[test]
fn sampling_rotates_over_all_nodes() {
    let nodes: Vec<Value> = (0..1000)
        .map(|i| node(&format!("n{i:04}"), "4", "8Gi", "110"))
        .collect();
    let mut c = cache_with(&nodes);
    assert_eq!(c.nodes_to_find(1000), 420);
    assert_eq!(c.nodes_to_find(5000), 500);
    assert_eq!(c.nodes_to_find(50), 50);
    c.set_percentage_of_nodes_to_score(1);
    assert_eq!(c.nodes_to_find(1000), 100);
    c.set_percentage_of_nodes_to_score(0);
    // Unowned equal pods: least-allocated alone fills every node once before any twice.
    let mut seen = HashSet::new();
    for i in 0..1000 {
        seen.insert(
            c.schedule(&pod(&format!("p{i}"), "100m", "128Mi"))
                .expect("fits"),
        );
    }
    assert_eq!(seen.len(), 1000);
}

#[test]
fn bad_input_does_not_panic() {
    let mut c = Cache::new();
    c.upsert_node(&json!(null));
    c.upsert_node(
        &json!({"metadata": {"name": "n"}, "status": {"allocatable": {"cpu": 5, "memory": "x"}}}),
    );
    c.add_pod(&json!([]));
    c.remove_pod(&json!("x"));
    c.upsert_namespace(&json!(1));
    assert_eq!(c.node_count(), 1);
    // Node "n" has no usable allocatable and no Ready condition.
    assert!(c
        .schedule(&json!({"metadata": {"name": "p"}, "spec": {"containers": "bad"}}))
        .is_err());
    assert!(c.schedule(&json!({})).is_err());
}

#[test]
fn least_requested_math() {
    assert_eq!(least_requested(0, 4000), 100);
    assert_eq!(least_requested(1000, 4000), 75);
    assert_eq!(least_requested(5000, 4000), 0);
    assert_eq!(least_requested(0, 0), 0);
    // Huge capacities (exabytes of memory) do not overflow.
    assert_eq!(least_requested(0, i64::MAX), 100);
    assert_eq!(least_requested(i64::MAX / 2, i64::MAX), 50);
}
