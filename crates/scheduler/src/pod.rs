//! What the scheduler needs from a pod, read once from its JSON.

use std::collections::HashSet;

use serde_json::Value;

use crate::quantity::{quantity_milli_value, quantity_value};
use crate::selector::{str_field, string_map, AffinityTerm, Labels, NodeSelectorTerm, Toleration};

/// Millicores counted for a container without a cpu request when spreading by score
/// (Kubernetes' `DefaultMilliCPURequest`).
pub(crate) const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Bytes counted for a container without a memory request when scoring
/// (Kubernetes' `DefaultMemoryRequest`, 200Mi).
pub(crate) const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// cpu (millicores) and memory (bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Res {
    pub cpu: i64,
    pub mem: i64,
}

impl Res {
    fn add(self, o: Res) -> Res {
        Res {
            cpu: self.cpu.saturating_add(o.cpu),
            mem: self.mem.saturating_add(o.mem),
        }
    }
    fn max(self, o: Res) -> Res {
        Res {
            cpu: self.cpu.max(o.cpu),
            mem: self.mem.max(o.mem),
        }
    }
}

/// A host port a pod binds: `(hostIP, protocol, port)`, with Kubernetes' defaults applied
/// (`0.0.0.0`, `TCP`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct HostPort {
    pub ip: String,
    pub protocol: String,
    pub port: i64,
}

pub(crate) const BIND_ALL: &str = "0.0.0.0";

/// The scheduling-relevant view of a pod.
#[derive(Debug, Clone)]
pub(crate) struct PodInfo {
    /// `namespace/name`.
    pub key: String,
    pub namespace: String,
    pub labels: Labels,
    /// Effective requests (containers summed, init containers by Kubernetes' max rule,
    /// overhead added).
    pub requests: Res,
    /// The same with defaults for missing cpu/memory requests, used for scoring only.
    pub non_zero: Res,
    /// Namespace-qualified controller owner (`ns/uid`, or `ns/kind/name` without uid).
    pub owner: Option<String>,
    pub ports: Vec<HostPort>,
    pub node_name: String,
    pub node_selector: Vec<(String, String)>,
    /// `None`: no required node affinity.
    pub node_terms: Option<Vec<NodeSelectorTerm>>,
    pub tolerations: Vec<Toleration>,
    pub affinity: Vec<AffinityTerm>,
    pub anti_affinity: Vec<AffinityTerm>,
    pub preemption_never: bool,
    /// `Succeeded` or `Failed`: no longer holds resources.
    pub terminated: bool,
}

impl PodInfo {
    pub fn parse(pod: &Value) -> PodInfo {
        let meta = pod.get("metadata").unwrap_or(&Value::Null);
        let spec = pod.get("spec").unwrap_or(&Value::Null);
        let namespace = match str_field(meta, "namespace") {
            "" => "default",
            ns => ns,
        }
        .to_string();
        let name = str_field(meta, "name");
        let key = format!("{namespace}/{name}");

        let containers = list(spec, "containers");
        let init_containers = list(spec, "initContainers");
        let (requests, non_zero) = pod_requests(containers, init_containers, spec.get("overhead"));

        let owner = list(meta, "ownerReferences")
            .iter()
            .find(|o| o.get("controller").and_then(Value::as_bool) == Some(true))
            .map(|o| match str_field(o, "uid") {
                "" => format!(
                    "{namespace}/{}/{}",
                    str_field(o, "kind"),
                    str_field(o, "name")
                ),
                uid => format!("{namespace}/{uid}"),
            });

        let host_network = spec.get("hostNetwork").and_then(Value::as_bool) == Some(true);
        let mut ports = Vec::new();
        for c in containers {
            for p in list(c, "ports") {
                let mut port = p.get("hostPort").and_then(Value::as_i64).unwrap_or(0);
                if port == 0 && host_network {
                    // API defaulting: host-network pods bind their container ports on the host.
                    port = p.get("containerPort").and_then(Value::as_i64).unwrap_or(0);
                }
                if port <= 0 {
                    continue;
                }
                let ip = match str_field(p, "hostIP") {
                    "" => BIND_ALL,
                    ip => ip,
                };
                let protocol = match str_field(p, "protocol") {
                    "" => "TCP",
                    pr => pr,
                };
                ports.push(HostPort {
                    ip: ip.to_string(),
                    protocol: protocol.to_string(),
                    port,
                });
            }
        }

        let mut node_selector: Vec<(String, String)> =
            string_map(spec.get("nodeSelector")).into_iter().collect();
        node_selector.sort();

        let affinity = spec.get("affinity").unwrap_or(&Value::Null);
        let node_terms = affinity
            .pointer("/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution")
            .filter(|v| v.is_object())
            .map(|req| {
                list(req, "nodeSelectorTerms")
                    .iter()
                    .map(NodeSelectorTerm::parse)
                    .collect::<Vec<_>>()
            });
        let terms = |path: &str| -> Vec<AffinityTerm> {
            affinity
                .pointer(path)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|t| AffinityTerm::parse(t, &namespace))
                        .collect()
                })
                .unwrap_or_default()
        };
        let pod_affinity = terms("/podAffinity/requiredDuringSchedulingIgnoredDuringExecution");
        let anti_affinity =
            terms("/podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution");

        let phase = pod.pointer("/status/phase").and_then(Value::as_str);
        PodInfo {
            key,
            labels: string_map(meta.get("labels")),
            requests,
            non_zero,
            owner,
            ports,
            node_name: str_field(spec, "nodeName").to_string(),
            node_selector,
            node_terms,
            tolerations: list(spec, "tolerations")
                .iter()
                .map(Toleration::parse)
                .collect(),
            affinity: pod_affinity,
            anti_affinity,
            preemption_never: str_field(spec, "preemptionPolicy") == "Never",
            terminated: matches!(phase, Some("Succeeded" | "Failed")),
            namespace,
        }
    }

    /// The node names NodeAffinity's PreFilter restricts the pod to (`matchFields
    /// metadata.name In`, as DaemonSet pods carry), or `None` when any node may do.
    pub fn pinned_nodes(&self) -> Option<HashSet<String>> {
        let terms = self.node_terms.as_ref()?;
        let mut all: HashSet<String> = HashSet::new();
        for t in terms {
            // Terms are ORed: a term that names no node leaves every node possible.
            all.extend(t.pinned_names()?);
        }
        Some(all)
    }
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A parsed request, or 0 (logged) for text the API server should never have admitted.
fn checked(v: Option<i64>, text: &str) -> i64 {
    match v {
        Some(v) => v.max(0),
        None => {
            tracing::debug!(quantity = text, "unparsable resource request counted as 0");
            0
        }
    }
}

/// A container's (requests, requests-with-defaults). A resource without a request but with a
/// limit counts the limit, as API defaulting would have copied it.
fn container_requests(c: &Value) -> (Res, Res) {
    let res = c.get("resources").unwrap_or(&Value::Null);
    let pick = |name: &str| -> Option<&str> {
        res.get("requests")
            .and_then(|r| r.get(name))
            .or_else(|| res.get("limits").and_then(|l| l.get(name)))
            .and_then(Value::as_str)
    };
    let cpu = pick("cpu").map(|q| checked(quantity_milli_value(q), q));
    let mem = pick("memory").map(|q| checked(quantity_value(q), q));
    (
        Res {
            cpu: cpu.unwrap_or(0),
            mem: mem.unwrap_or(0),
        },
        Res {
            cpu: cpu.unwrap_or(DEFAULT_MILLI_CPU_REQUEST),
            mem: mem.unwrap_or(DEFAULT_MEMORY_REQUEST),
        },
    )
}

/// Kubernetes' pod request rule: regular containers run together (summed); restartable init
/// containers (sidecars) keep running once started (added to everything after them); other
/// init containers run one at a time (the pod needs the largest of them, plus the sidecars
/// started before it); pod overhead is added on top.
fn pod_requests(containers: &[Value], init: &[Value], overhead: Option<&Value>) -> (Res, Res) {
    let mut sum = (Res::default(), Res::default());
    for c in containers {
        let (r, n) = container_requests(c);
        sum = (sum.0.add(r), sum.1.add(n));
    }
    let mut sidecars = (Res::default(), Res::default());
    let mut init_max = (Res::default(), Res::default());
    for c in init {
        let (r, n) = container_requests(c);
        let during = if str_field(c, "restartPolicy") == "Always" {
            sidecars = (sidecars.0.add(r), sidecars.1.add(n));
            sidecars
        } else {
            (sidecars.0.add(r), sidecars.1.add(n))
        };
        init_max = (init_max.0.max(during.0), init_max.1.max(during.1));
    }
    let mut total = (
        sum.0.add(sidecars.0).max(init_max.0),
        sum.1.add(sidecars.1).max(init_max.1),
    );
    if let Some(o) = overhead {
        let q = |name: &str, milli: bool| -> i64 {
            o.get(name)
                .and_then(Value::as_str)
                .and_then(|s| {
                    if milli {
                        quantity_milli_value(s)
                    } else {
                        quantity_value(s)
                    }
                })
                .unwrap_or(0)
                .max(0)
        };
        let extra = Res {
            cpu: q("cpu", true),
            mem: q("memory", false),
        };
        total = (total.0.add(extra), total.1.add(extra));
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn c(cpu: Option<&str>, mem: Option<&str>) -> Value {
        let mut req = serde_json::Map::new();
        if let Some(cpu) = cpu {
            req.insert("cpu".into(), json!(cpu));
        }
        if let Some(mem) = mem {
            req.insert("memory".into(), json!(mem));
        }
        json!({"name": "c", "resources": {"requests": req}})
    }

    #[test]
    fn requests_sum_containers() {
        let p = PodInfo::parse(&json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [c(Some("100m"), Some("128Mi")), c(Some("1"), Some("1Gi"))]}
        }));
        assert_eq!(p.key, "default/p");
        assert_eq!(
            p.requests,
            Res {
                cpu: 1100,
                mem: (128 << 20) + (1 << 30)
            }
        );
    }

    #[test]
    fn init_containers_take_the_max() {
        // Kubernetes' own example: init 2/1G and 2/3G, containers 2/1G + 1/1G -> 3 cpu, 3G.
        let p = PodInfo::parse(&json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {
                "initContainers": [c(Some("2"), Some("1G")), c(Some("2"), Some("3G"))],
                "containers": [c(Some("2"), Some("1G")), c(Some("1"), Some("1G"))]
            }
        }));
        assert_eq!(
            p.requests,
            Res {
                cpu: 3000,
                mem: 3_000_000_000
            }
        );
    }

    #[test]
    fn sidecars_add_to_everything_after_them() {
        let mut sidecar = c(Some("500m"), Some("100M"));
        sidecar["restartPolicy"] = json!("Always");
        let p = PodInfo::parse(&json!({
            "metadata": {"name": "p"},
            "spec": {
                "initContainers": [sidecar, c(Some("2"), Some("50M"))],
                "containers": [c(Some("1"), Some("200M"))],
                "overhead": {"cpu": "10m", "memory": "1M"}
            }
        }));
        // init phase: 0.5 + 2 = 2.5 cpu; running: 1 + 0.5 = 1.5 cpu -> 2.5; memory 300M; +overhead
        assert_eq!(
            p.requests,
            Res {
                cpu: 2510,
                mem: 301_000_000
            }
        );
    }

    #[test]
    fn no_requests_count_zero_but_score_defaults() {
        let p = PodInfo::parse(
            &json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}}),
        );
        assert_eq!(p.requests, Res::default());
        assert_eq!(
            p.non_zero,
            Res {
                cpu: DEFAULT_MILLI_CPU_REQUEST,
                mem: DEFAULT_MEMORY_REQUEST
            }
        );
    }

    #[test]
    fn limits_stand_in_for_missing_requests() {
        let p = PodInfo::parse(&json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "c", "resources": {"limits": {"cpu": "2", "memory": "1Gi"}}}
        ]}}));
        assert_eq!(
            p.requests,
            Res {
                cpu: 2000,
                mem: 1 << 30
            }
        );
    }

    #[test]
    fn owner_ports_and_pinning() {
        let p = PodInfo::parse(&json!({
            "metadata": {"name": "p", "namespace": "x", "ownerReferences": [
                {"kind": "Foo", "name": "a", "uid": "u0"},
                {"kind": "ReplicaSet", "name": "rs", "uid": "u1", "controller": true}
            ]},
            "spec": {
                "containers": [{"name": "c", "ports": [
                    {"containerPort": 80, "hostPort": 8080},
                    {"containerPort": 53, "hostPort": 53, "protocol": "UDP", "hostIP": "10.0.0.1"},
                    {"containerPort": 90}
                ]}],
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchFields": [
                        {"key": "metadata.name", "operator": "In", "values": ["n7"]}
                    ]}]
                }}}
            }
        }));
        assert_eq!(p.owner.as_deref(), Some("x/u1"));
        assert_eq!(p.ports.len(), 2);
        assert_eq!(
            p.ports[0],
            HostPort {
                ip: BIND_ALL.into(),
                protocol: "TCP".into(),
                port: 8080
            }
        );
        assert_eq!(p.ports[1].protocol, "UDP");
        let pinned = p.pinned_nodes().expect("pinned");
        assert!(pinned.contains("n7") && pinned.len() == 1);
    }
}
