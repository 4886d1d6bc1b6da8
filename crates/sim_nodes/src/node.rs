//! The Node and Lease objects of a simulated node, their registration, and heartbeats.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use kube_client::{Client, PatchKind};
use serde_json::{json, Value};

use crate::{retry, SimError, SimOptions};

/// Namespace of node leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// `leaseDurationSeconds` of node leases (the kubelet's default).
pub const LEASE_DURATION_SECONDS: i64 = 40;
/// What simulated nodes report as their kubelet version.
pub const KUBELET_VERSION: &str = "v1.33.0-sim";
/// What simulated nodes report as their container runtime.
pub const RUNTIME_VERSION: &str = "berth-sim://0.1";

/// One simulated node's fixed identity.
#[derive(Clone, Debug)]
pub struct NodeIdent {
    pub name: String,
    /// 1-based number of the node; picks its addresses.
    pub index: u32,
    pub host_ip: String,
    pub pod_cidr: String,
}

impl NodeIdent {
    pub fn new(prefix: &str, index: u32) -> NodeIdent {
        NodeIdent {
            name: format!("{prefix}{index}"),
            index,
            host_ip: format!("10.250.{}.{}", index / 256, index % 256),
            pod_cidr: format!("{}.0/24", pod_net(index)),
        }
    }

    /// The pod IP with host number `n` (1..=254) on this node.
    pub fn pod_ip(&self, n: u8) -> String {
        format!("{}.{n}", pod_net(self.index))
    }

    /// The host number of `ip` if it is in this node's pod range.
    pub fn host_number(&self, ip: &str) -> Option<u8> {
        let (net, host) = ip.rsplit_once('.')?;
        if net != pod_net(self.index) {
            return None;
        }
        host.parse::<u8>().ok().filter(|h| (1..=254).contains(h))
    }
}

/// The first three octets of node `index`'s pod /24: 10.244.<index>, spilling into
/// 10.245.x, ... past 255 (so at most [`crate::MAX_NODES`] nodes).
fn pod_net(index: u32) -> String {
    format!("10.{}.{}", 244 + index / 256, index % 256)
}

/// RFC 3339 seconds, as Kubernetes writes `Time`.
pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// RFC 3339 microseconds, as Kubernetes writes `MicroTime`.
pub fn micro_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The node's conditions: healthy, with `heartbeat` as lastHeartbeatTime.
pub fn conditions(heartbeat: &str, transition: &str) -> Value {
    let c = |kind: &str, status: &str, reason: &str, message: &str| {
        json!({
            "type": kind, "status": status, "reason": reason, "message": message,
            "lastHeartbeatTime": heartbeat, "lastTransitionTime": transition,
        })
    };
    json!([
        c(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available"
        ),
        c(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure"
        ),
        c(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available"
        ),
        c(
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status"
        ),
    ])
}

/// The node's full status.
pub fn node_status(id: &NodeIdent, opts: &SimOptions, now: &str) -> Value {
    let resources = json!({
        "cpu": opts.cpu,
        "memory": opts.memory,
        "pods": opts.pods_per_node.to_string(),
        "ephemeral-storage": "100Gi",
        "hugepages-2Mi": "0",
    });
    json!({
        "capacity": resources,
        "allocatable": resources,
        "conditions": conditions(now, now),
        "addresses": [
            {"type": "InternalIP", "address": id.host_ip},
            {"type": "Hostname", "address": id.name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "machineID": machine_id(&id.name),
            "systemUUID": machine_id(&format!("uuid/{}", id.name)),
            "bootID": machine_id(&format!("boot/{}/{now}", id.name)),
            "kernelVersion": "6.1.0-berth-sim",
            "osImage": "berth simulated node",
            "containerRuntimeVersion": RUNTIME_VERSION,
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": KUBELET_VERSION,
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
    })
}

/// A stable 32-hex-digit id derived from `seed` (FNV-1a, twice).
fn machine_id(seed: &str) -> String {
    let fnv = |salt: u64| {
        seed.bytes().fold(0xcbf2_9ce4_8422_2325u64 ^ salt, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    };
    format!("{:016x}{:016x}", fnv(0), fnv(0x9e37_79b9_7f4a_7c15))
}

/// The Node object to create.
pub fn node_object(id: &NodeIdent, opts: &SimOptions, now: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": id.name,
            "labels": labels(id),
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "berth.dev/simulated": "true",
            },
        },
        "spec": {"podCIDR": id.pod_cidr, "podCIDRs": [id.pod_cidr]},
        "status": node_status(id, opts, now),
    })
}

fn labels(id: &NodeIdent) -> Value {
    json!({
        "kubernetes.io/hostname": id.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": "berth-sim",
    })
}

fn lease_spec(name: &str, now: DateTime<Utc>) -> Value {
    json!({
        "holderIdentity": name,
        "leaseDurationSeconds": LEASE_DURATION_SECONDS,
        "renewTime": micro_time(now),
    })
}

pub fn node_path(name: &str) -> String {
    format!("/api/v1/nodes/{name}")
}

pub fn lease_path(name: &str) -> String {
    format!("/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases/{name}")
}

/// Creates the node (or takes over an existing one of that name: labels, spec, status),
/// then its lease. Returns the node's uid.
pub async fn register(
    client: &Client,
    id: &NodeIdent,
    opts: &SimOptions,
) -> Result<String, SimError> {
    let now = time(Utc::now());
    let want = node_object(id, opts, &now);
    let node_err = |source| SimError::Node {
        node: id.name.clone(),
        source,
    };
    let want_ref = &want;
    let created = retry(move || client.create("/api/v1/nodes", want_ref)).await;
    let path = node_path(&id.name);
    let status_path = format!("{path}/status");
    let node = match created {
        Ok(n) => n,
        Err(e) if e.is_already_exists() => {
            let patch = json!({"metadata": {"labels": labels(id), "annotations": want["metadata"]["annotations"]},
                               "spec": want["spec"]});
            let (path, patch) = (&path, &patch);
            retry(move || client.patch(path, PatchKind::Merge, patch))
                .await
                .map_err(node_err)?
        }
        Err(e) => return Err(node_err(e)),
    };
    // Status sent with a create may be dropped (as for any object with a status
    // subresource); set it through the subresource unless it stuck.
    let has_status = node["status"]["nodeInfo"]["kubeletVersion"] == KUBELET_VERSION
        && node["status"]["allocatable"] == want["status"]["allocatable"]
        && node["status"]["conditions"] == want["status"]["conditions"];
    if !has_status {
        let patch = json!({"status": want["status"]});
        let (status_path, patch) = (&status_path, &patch);
        retry(move || client.patch(status_path, PatchKind::Merge, patch))
            .await
            .map_err(node_err)?;
    }
    let uid = node["metadata"]["uid"].as_str().unwrap_or("").to_string();
    ensure_lease(client, &id.name, &uid).await?;
    Ok(uid)
}

/// Creates or takes over the node's lease (owned by the node, as the kubelet does).
pub async fn ensure_lease(client: &Client, name: &str, node_uid: &str) -> Result<(), SimError> {
    let mut meta = json!({"name": name, "namespace": LEASE_NAMESPACE});
    if !node_uid.is_empty() {
        meta["ownerReferences"] =
            json!([{"apiVersion": "v1", "kind": "Node", "name": name, "uid": node_uid}]);
    }
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": meta,
        "spec": lease_spec(name, Utc::now()),
    });
    let coll = format!("/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases");
    let err = |source| SimError::Node {
        node: name.to_string(),
        source,
    };
    let (coll_ref, lease_ref) = (&coll, &lease);
    match retry(move || client.create(coll_ref, lease_ref)).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_already_exists() => {
            let patch = json!({"metadata": {"ownerReferences": lease["metadata"]["ownerReferences"]},
                               "spec": lease["spec"]});
            let (path, patch) = (&lease_path(name), &patch);
            retry(move || client.patch(path, PatchKind::Merge, patch))
                .await
                .map(|_| ())
                .map_err(err)
        }
        Err(e) => Err(err(e)),
    }
}

/// Renews the lease; a missing lease is created again.
pub async fn renew_lease(client: &Client, name: &str, node_uid: &str) -> Result<(), SimError> {
    let patch = json!({"spec": lease_spec(name, Utc::now())});
    match client
        .patch(&lease_path(name), PatchKind::Merge, &patch)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => ensure_lease(client, name, node_uid).await,
        Err(e) => Err(SimError::Node {
            node: name.to_string(),
            source: e,
        }),
    }
}

/// Posts the node's Ready heartbeat (conditions with a new lastHeartbeatTime).
/// `Ok(false)` means the node no longer exists.
pub async fn post_status(client: &Client, name: &str, since: &str) -> Result<bool, SimError> {
    let patch = json!({"status": {"conditions": conditions(&time(Utc::now()), since)}});
    match client
        .patch(
            &format!("{}/status", node_path(name)),
            PatchKind::Merge,
            &patch,
        )
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(SimError::Node {
            node: name.to_string(),
            source: e,
        }),
    }
}

/// Heartbeats of one node until cancelled: the lease every `opts.heartbeat`, the node
/// status every `opts.status_interval`; re-registers the node if it was deleted.
pub async fn heartbeat_loop(
    client: Client,
    id: NodeIdent,
    mut uid: String,
    opts: SimOptions,
    first_delay: Duration,
) {
    tokio::time::sleep(first_delay).await;
    let mut since = time(Utc::now());
    let mut last_status = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(opts.heartbeat.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = renew_lease(&client, &id.name, &uid).await {
            tracing::warn!(node = %id.name, error = %e, "lease renewal failed");
        }
        if last_status.elapsed() < opts.status_interval {
            continue;
        }
        last_status = tokio::time::Instant::now();
        match post_status(&client, &id.name, &since).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(node = %id.name, "node was deleted; registering it again");
                match register(&client, &id, &opts).await {
                    Ok(u) => {
                        uid = u;
                        since = time(Utc::now());
                    }
                    Err(e) => tracing::warn!(node = %id.name, error = %e, "re-registration failed"),
                }
            }
            Err(e) => tracing::warn!(node = %id.name, error = %e, "node status update failed"),
        }
    }
}

/// Deletes the node and its lease (`--cleanup`).
pub async fn unregister(client: &Client, name: &str) -> Result<(), SimError> {
    for path in [node_path(name), lease_path(name)] {
        let path = &path;
        match retry(move || client.delete(path, None)).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => {
                return Err(SimError::Node {
                    node: name.to_string(),
                    source: e,
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_distinct_per_node() {
        let a = NodeIdent::new("sim-node-", 1);
        let b = NodeIdent::new("sim-node-", 257);
        assert_eq!(a.name, "sim-node-1");
        assert_eq!(a.host_ip, "10.250.0.1");
        assert_eq!(a.pod_cidr, "10.244.1.0/24");
        assert_eq!(a.pod_ip(7), "10.244.1.7");
        assert_eq!(b.pod_cidr, "10.245.1.0/24");
        assert_eq!(b.host_ip, "10.250.1.1");
        assert_eq!(a.host_number("10.244.1.7"), Some(7));
        assert_eq!(a.host_number("10.245.1.7"), None);
        assert_eq!(a.host_number("10.244.1.255"), None);
        assert_eq!(a.host_number("garbage"), None);
    }

    #[test]
    fn node_object_has_what_schedulers_and_kubectl_read() {
        let opts = SimOptions {
            cpu: "4".into(),
            memory: "8Gi".into(),
            ..Default::default()
        };
        let n = node_object(&NodeIdent::new("n-", 3), &opts, "2025-01-01T00:00:00Z");
        assert_eq!(n["status"]["allocatable"]["cpu"], "4");
        assert_eq!(n["status"]["allocatable"]["memory"], "8Gi");
        assert_eq!(n["status"]["allocatable"]["pods"], "110");
        assert_eq!(n["status"]["nodeInfo"]["kubeletVersion"], KUBELET_VERSION);
        assert_eq!(n["metadata"]["labels"]["kubernetes.io/hostname"], "n-3");
        let ready = n["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap();
        assert_eq!(ready["status"], "True");
        assert_eq!(ready["reason"], "KubeletReady");
        assert_eq!(machine_id("a").len(), 32);
        assert_ne!(machine_id("a"), machine_id("b"));
    }

    #[test]
    fn times_use_kubernetes_formats() {
        let t = DateTime::parse_from_rfc3339("2025-03-04T05:06:07.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(time(t), "2025-03-04T05:06:07Z");
        assert_eq!(micro_time(t), "2025-03-04T05:06:07.123456Z");
    }
}
