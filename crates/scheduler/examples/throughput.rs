//! Scheduling throughput of the in-memory core: 1,000 nodes (4 cpu, 8Gi, 110 pods) and 30,000
//! pods of one ReplicaSet requesting 100m/128Mi each.
//!
//! `cargo run --release -p scheduler --example throughput [nodes] [pods]`

use std::collections::HashMap;
use std::time::Instant;

use serde_json::{json, Value};

fn main() {
    let mut args = std::env::args().skip(1);
    let nodes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let pods: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(30_000);

    let mut cache = scheduler::Cache::new();
    for i in 0..nodes {
        let name = format!("node-{i:05}");
        cache.upsert_node(&json!({
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {},
            "status": {
                "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True"}]
            }
        }));
    }
    let pod_objects: Vec<Value> = (0..pods)
        .map(|i| {
            json!({
                "metadata": {
                    "name": format!("web-7d9f8c6b5-{i:06}"),
                    "namespace": "default",
                    "uid": format!("uid-{i}"),
                    "labels": {"app": "web", "pod-template-hash": "7d9f8c6b5"},
                    "ownerReferences": [{
                        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f8c6b5",
                        "uid": "rs-uid-1", "controller": true, "blockOwnerDeletion": true
                    }]
                },
                "spec": {
                    "containers": [{
                        "name": "web", "image": "nginx:1.27",
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}
                    }],
                    "restartPolicy": "Always",
                    "schedulerName": "default-scheduler",
                    "tolerations": [
                        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
                    ]
                },
                "status": {"phase": "Pending"}
            })
        })
        .collect();

    let start = Instant::now();
    let mut per_node: HashMap<String, usize> = HashMap::new();
    let mut failed = 0usize;
    for p in &pod_objects {
        match cache.schedule(p) {
            Ok(node) => *per_node.entry(node).or_default() += 1,
            Err(_) => failed += 1,
        }
    }
    let elapsed = start.elapsed();
    let scheduled = pods - failed;
    let min = per_node.values().min().copied().unwrap_or(0);
    let max = per_node.values().max().copied().unwrap_or(0);
    println!(
        "{scheduled} pods scheduled ({failed} unschedulable) on {nodes} nodes in {:.3}s: {:.0} pods/s, \
         {:.1} us/pod; pods per node min {min} max {max}",
        elapsed.as_secs_f64(),
        scheduled as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / pods as f64,
    );
}
