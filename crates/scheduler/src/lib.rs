//! scheduler: the decision core of berth's Kubernetes scheduler (issue 7).
//!
//! A [`Cache`] holds the nodes and the pods bound (or assumed) to them, all as Kubernetes JSON
//! (`serde_json::Value`), and [`Cache::schedule`] picks a node for an unbound pod the way
//! kube-scheduler's default profile would, then assumes the pod there. It does no I/O: informers
//! feed it ([`Cache::upsert_node`], [`Cache::add_pod`], ...) and a binder acts on its answers, so
//! it can be tested and benchmarked in memory.
//!
//! Filters, in kube-scheduler's order, each with Kubernetes' reason text:
//! NodeUnschedulable, NodeName, TaintToleration (a node whose `Ready` condition is not `True`
//! counts as carrying the `not-ready`/`unreachable` `NoSchedule` taint), NodeAffinity (with its
//! `matchFields metadata.name` pre-filter), NodePorts, NodeResourcesFit (cpu, memory, pod count)
//! and InterPodAffinity (required affinity and anti-affinity, any topology key, both
//! directions). When no node fits, [`FitError`] renders the `FailedScheduling` event text,
//! including the preemption verdict.
//!
//! Scoring: LeastAllocated over cpu and memory (weight 1) plus spreading of the pods of one
//! controller across nodes (weight 2); ties go to the first node in a rotating scan order. Like
//! kube-scheduler, only a sample of feasible nodes is scored (`percentageOfNodesToScore`,
//! adaptive by default).

mod pod;
mod quantity;
mod selector;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use serde_json::Value;

use pod::{HostPort, PodInfo, Res, BIND_ALL};
pub use quantity::{parse_quantity, quantity_milli_value, quantity_value};
use selector::{str_field, string_map, AffinityTerm, Labels, Taint};

const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";
const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";

const ERR_UNSCHEDULABLE: &str = "node(s) were unschedulable";
const ERR_NODE_NAME: &str = "node(s) didn't match the requested node name";
const ERR_NODE_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
const ERR_NODE_AFFINITY_PREFILTER: &str = "node(s) didn't satisfy plugin(s) [NodeAffinity]";
const ERR_NODE_AFFINITY_CONFLICT: &str = "pod affinity terms conflict";
const ERR_PORTS: &str = "node(s) didn't have free ports for the requested pod ports";
const ERR_TOO_MANY_PODS: &str = "Too many pods";
const ERR_CPU: &str = "Insufficient cpu";
const ERR_MEMORY: &str = "Insufficient memory";
const ERR_EXISTING_ANTI_AFFINITY: &str = "node(s) didn't satisfy existing pods anti-affinity rules";
const ERR_AFFINITY: &str = "node(s) didn't match pod affinity rules";
const ERR_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
const NO_NODES: &str = "no nodes available to schedule pods";

/// PostFilter (DefaultPreemption) verdict for a node where preemption cannot help.
pub const PREEMPTION_NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
/// PostFilter verdict for a node where evicting lower-priority pods could help but there are
/// none (this core does not model priorities, so every such node gets it).
pub const PREEMPTION_NO_VICTIMS: &str = "No preemption victims found for incoming pod";
const PREEMPTION_NEVER: &str = "not eligible due to preemptionPolicy=Never.";

/// Below this many nodes every node is examined (kube-scheduler's `minFeasibleNodesToFind`).
const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// Floor of the adaptive percentage (`minFeasibleNodesPercentageToFind`).
const MIN_FEASIBLE_NODES_PERCENTAGE: usize = 5;
const MAX_NODE_SCORE: i64 = 100;
const WEIGHT_LEAST_ALLOCATED: i64 = 1;
const WEIGHT_SPREAD: i64 = 2;

/// Why a pod fits no node, with Kubernetes' `FailedScheduling` event text as `Display`:
/// `0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint
/// {node.kubernetes.io/unreachable: }. preemption: 0/3 nodes are available: 1 No preemption
/// victims found for incoming pod, 2 Preemption is not helpful for scheduling.`
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct FitError {
    /// Nodes considered (every node known to the cache). 0 renders Kubernetes'
    /// `no nodes available to schedule pods`.
    pub num_nodes: usize,
    /// Set when a pre-filter rejected the pod outright; then `reasons` is empty.
    pub pre_filter: Option<String>,
    /// Filter reason -> number of nodes it was given for (a node can give several, e.g.
    /// `Insufficient cpu` and `Insufficient memory`).
    pub reasons: BTreeMap<String, usize>,
    /// What preemption would conclude.
    pub preemption: Preemption,
}

/// The preemption (PostFilter) part of a [`FitError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Preemption {
    /// The pod has `preemptionPolicy: Never`.
    NotEligible,
    /// Verdict -> number of nodes ([`PREEMPTION_NOT_HELPFUL`], [`PREEMPTION_NO_VICTIMS`]).
    Nodes(BTreeMap<String, usize>),
}

impl FitError {
    fn render(&self) -> String {
        if self.num_nodes == 0 {
            return NO_NODES.to_string();
        }
        let mut s = format!("0/{} nodes are available:", self.num_nodes);
        if let Some(msg) = &self.pre_filter {
            s.push_str(&format!(" {msg}."));
        } else if !self.reasons.is_empty() {
            s.push_str(&format!(" {}.", histogram(&self.reasons)));
        }
        match &self.preemption {
            Preemption::NotEligible => s.push_str(&format!(" preemption: {PREEMPTION_NEVER}")),
            Preemption::Nodes(m) => {
                s.push_str(&format!(
                    " preemption: 0/{} nodes are available:",
                    self.num_nodes
                ));
                if !m.is_empty() {
                    s.push_str(&format!(" {}.", histogram(m)));
                }
            }
        }
        s
    }

    /// Whether every node failed for a reason preemption cannot fix (Kubernetes'
    /// `UnschedulableAndUnresolvable`); a caller may then wait for a cluster change instead of
    /// retrying on a timer.
    pub fn unresolvable(&self) -> bool {
        match &self.preemption {
            Preemption::NotEligible => false,
            Preemption::Nodes(m) => !m.contains_key(PREEMPTION_NO_VICTIMS),
        }
    }
}

/// `"count reason"` strings sorted as strings (as Go's `sort.Strings` does), comma-joined.
fn histogram(m: &BTreeMap<String, usize>) -> String {
    let mut parts: Vec<String> = m.iter().map(|(r, n)| format!("{n} {r}")).collect();
    parts.sort();
    parts.join(", ")
}

/// Hasher for the small integer owner ids counted per node (scored on every candidate node,
/// so SipHash would dominate the scoring loop).
#[derive(Debug, Default, Clone, Copy)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(n)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type IdMap<V> = HashMap<u32, V, BuildHasherDefault<IdHasher>>;

/// A node's static description.
#[derive(Debug)]
struct NodeInfo {
    name: String,
    labels: Labels,
    /// Spec taints plus the synthetic not-ready/unreachable one.
    taints: Vec<Taint>,
    unschedulable: bool,
    allocatable: Res,
    allowed_pods: i64,
}

/// What the pods on a node hold.
#[derive(Debug, Default)]
struct Usage {
    requested: Res,
    non_zero: Res,
    pods: i64,
    owners: IdMap<u32>,
    ports: HashMap<HostPort, u32>,
}

#[derive(Debug)]
struct NodeEntry {
    info: NodeInfo,
    usage: Usage,
}

/// A pod the cache accounts for.
#[derive(Debug)]
struct PodRecord {
    node: String,
    assumed: bool,
    namespace: String,
    labels: Labels,
    requests: Res,
    non_zero: Res,
    /// Interned id and key of the controller owner.
    owner: Option<(u32, String)>,
    ports: Vec<HostPort>,
    anti_affinity: Vec<AffinityTerm>,
}

/// Why one node was rejected (resolved to text only when a [`FitError`] is built).
#[derive(Debug, Clone, Copy)]
enum Failure {
    Unschedulable,
    NodeName,
    /// Index into the node's taints.
    Taint(usize),
    NodeAffinity,
    Ports,
    Resources {
        pods: bool,
        cpu: bool,
        mem: bool,
        unresolvable: bool,
    },
    ExistingAntiAffinity,
    Affinity,
    AntiAffinity,
}

impl Failure {
    /// Kubernetes' `UnschedulableAndUnresolvable`: preemption cannot help.
    fn unresolvable(self) -> bool {
        match self {
            Failure::Unschedulable
            | Failure::NodeName
            | Failure::Taint(_)
            | Failure::NodeAffinity
            | Failure::Affinity => true,
            Failure::Resources { unresolvable, .. } => unresolvable,
            Failure::Ports | Failure::ExistingAntiAffinity | Failure::AntiAffinity => false,
        }
    }

    fn reasons(self, node: &NodeInfo, out: &mut BTreeMap<String, usize>) {
        let mut add = |r: &str| match out.get_mut(r) {
            Some(n) => *n += 1,
            None => {
                out.insert(r.to_string(), 1);
            }
        };
        match self {
            Failure::Unschedulable => add(ERR_UNSCHEDULABLE),
            Failure::NodeName => add(ERR_NODE_NAME),
            Failure::Taint(i) => match node.taints.get(i) {
                Some(t) => add(&format!(
                    "node(s) had untolerated taint {{{}: {}}}",
                    t.key, t.value
                )),
                None => add("node(s) had untolerated taint(s)"),
            },
            Failure::NodeAffinity => add(ERR_NODE_AFFINITY),
            Failure::Ports => add(ERR_PORTS),
            Failure::Resources { pods, cpu, mem, .. } => {
                if pods {
                    add(ERR_TOO_MANY_PODS);
                }
                if cpu {
                    add(ERR_CPU);
                }
                if mem {
                    add(ERR_MEMORY);
                }
            }
            Failure::ExistingAntiAffinity => add(ERR_EXISTING_ANTI_AFFINITY),
            Failure::Affinity => add(ERR_AFFINITY),
            Failure::AntiAffinity => add(ERR_ANTI_AFFINITY),
        }
    }
}

/// Per-pod state computed once before the node loop (kube-scheduler's PreFilter).
#[derive(Debug, Default)]
struct Prepared {
    tolerates_unschedulable: bool,
    owner: Option<u32>,
    /// Topology pairs where an existing pod's required anti-affinity rejects this pod.
    existing_anti: Vec<(String, String)>,
    /// Per required affinity term: topology value -> matching pods.
    affinity: Vec<HashMap<String, u32>>,
    affinity_any: bool,
    affinity_self_match: bool,
    /// Per required anti-affinity term: topology values holding a matching pod.
    anti: Vec<HashSet<String>>,
}

/// Nodes and the pods bound or assumed to them; see the crate documentation.
#[derive(Debug, Default)]
pub struct Cache {
    nodes: Vec<NodeEntry>,
    node_index: HashMap<String, usize>,
    /// Usage on nodes the cache has no object for (pods seen before their node, or left after
    /// the node was removed).
    ghosts: HashMap<String, Usage>,
    pods: HashMap<String, PodRecord>,
    /// Controller owner -> (id, number of cached pods it owns).
    owners: HashMap<String, (u32, usize)>,
    next_owner_id: u32,
    /// Keys of cached pods with required anti-affinity terms.
    with_anti_affinity: HashSet<String>,
    namespaces: HashMap<String, Labels>,
    next_start: usize,
    percentage_of_nodes_to_score: usize,
    feasible: Vec<usize>,
    counts: Vec<u32>,
}

impl Cache {
    /// An empty cache with kube-scheduler's adaptive `percentageOfNodesToScore`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `percentageOfNodesToScore` (1..=100; 0 restores the adaptive default of
    /// `50 - nodes/125`, at least 5%). At least 100 nodes are always examined when there are.
    pub fn set_percentage_of_nodes_to_score(&mut self, percent: u32) {
        self.percentage_of_nodes_to_score = percent.min(100) as usize;
    }

    /// Number of nodes known (those with a node object).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Number of pods accounted for (bound and assumed).
    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    /// The node a cached pod is bound or assumed to.
    pub fn pod_node(&self, namespace: &str, name: &str) -> Option<&str> {
        self.pods
            .get(&format!("{namespace}/{name}"))
            .map(|r| r.node.as_str())
    }

    /// Whether the pod is assumed (placed by [`Cache::schedule`], not yet confirmed by
    /// [`Cache::add_pod`]).
    pub fn is_assumed(&self, namespace: &str, name: &str) -> bool {
        self.pods
            .get(&format!("{namespace}/{name}"))
            .is_some_and(|r| r.assumed)
    }

    /// Adds or replaces a node from its JSON: allocatable cpu/memory/pods (falling back to
    /// capacity per resource), labels, taints, `spec.unschedulable` and the `Ready` condition.
    /// A node without a name is ignored.
    pub fn upsert_node(&mut self, node: &Value) {
        let Some(info) = parse_node(node) else {
            tracing::debug!("ignoring node without a name");
            return;
        };
        if let Some(&i) = self.node_index.get(&info.name) {
            self.nodes[i].info = info;
            return;
        }
        let usage = self.ghosts.remove(&info.name).unwrap_or_default();
        self.node_index.insert(info.name.clone(), self.nodes.len());
        self.nodes.push(NodeEntry { info, usage });
    }

    /// Forgets a node. Pods still bound to it stay accounted (as Kubernetes' cache does) until
    /// removed, and count again if the node comes back.
    pub fn remove_node(&mut self, name: &str) {
        let Some(i) = self.node_index.remove(name) else {
            return;
        };
        let entry = self.nodes.swap_remove(i);
        if let Some(moved) = self.nodes.get(i) {
            self.node_index.insert(moved.info.name.clone(), i);
        }
        if entry.usage.pods > 0 {
            self.ghosts.insert(entry.info.name, entry.usage);
        }
    }

    /// Records a namespace's labels, for pod affinity terms with a `namespaceSelector`.
    pub fn upsert_namespace(&mut self, namespace: &Value) {
        let meta = namespace.get("metadata").unwrap_or(&Value::Null);
        let name = str_field(meta, "name");
        if !name.is_empty() {
            self.namespaces
                .insert(name.to_string(), string_map(meta.get("labels")));
        }
    }

    /// Forgets a namespace's labels.
    pub fn remove_namespace(&mut self, name: &str) {
        self.namespaces.remove(name);
    }

    /// Accounts a pod bound to `spec.nodeName` (an informer's add or update), confirming it if
    /// it was assumed. A pod without `spec.nodeName` is ignored (an assumed one stays assumed);
    /// a `Succeeded` or `Failed` pod is removed, as it holds nothing any more.
    pub fn add_pod(&mut self, pod: &Value) {
        let info = PodInfo::parse(pod);
        if info.terminated {
            self.remove_record(&info.key);
            return;
        }
        if info.node_name.is_empty() {
            return;
        }
        self.remove_record(&info.key);
        let node = info.node_name.clone();
        self.insert_record(info, node, false);
    }

    /// Stops accounting a pod (deleted, or an assumed pod whose binding failed).
    pub fn remove_pod(&mut self, pod: &Value) {
        let info = PodInfo::parse(pod);
        self.remove_record(&info.key);
    }

    /// Picks a node for an unbound pod and assumes it there (accounted until
    /// [`Cache::remove_pod`], or confirmed by [`Cache::add_pod`]), or says why no node fits.
    /// A pod the cache already accounts for gets its current node back.
    pub fn schedule(&mut self, pod: &Value) -> Result<String, FitError> {
        let info = PodInfo::parse(pod);
        if let Some(rec) = self.pods.get(&info.key) {
            return Ok(rec.node.clone());
        }
        let n = self.nodes.len();
        if n == 0 {
            return Err(FitError {
                num_nodes: 0,
                pre_filter: None,
                reasons: BTreeMap::new(),
                preemption: Preemption::Nodes(BTreeMap::new()),
            });
        }
        let ctx = self.prepare(&info);

        let pinned_names = info.pinned_nodes();
        if pinned_names.as_ref().is_some_and(HashSet::is_empty) {
            // Every term pins a different node set: NodeAffinity's PreFilter rejects the pod.
            return Err(self.fit_error(
                &info,
                Some(ERR_NODE_AFFINITY_CONFLICT.to_string()),
                BTreeMap::new(),
                n,
                0,
            ));
        }
        let pinned: Option<Vec<usize>> = pinned_names.map(|names| {
            let mut v: Vec<usize> = names
                .iter()
                .filter_map(|name| self.node_index.get(name).copied())
                .collect();
            v.sort_unstable();
            v
        });

        let mut feasible = std::mem::take(&mut self.feasible);
        feasible.clear();
        match &pinned {
            Some(candidates) => {
                for &i in candidates {
                    if self.check(i, &info, &ctx).is_ok() {
                        feasible.push(i);
                    }
                }
            }
            None => {
                let to_find = self.nodes_to_find(n);
                let start = self.next_start % n;
                let mut processed = 0;
                for k in 0..n {
                    let mut i = start + k;
                    if i >= n {
                        i -= n;
                    }
                    processed += 1;
                    if self.check(i, &info, &ctx).is_ok() {
                        feasible.push(i);
                        if feasible.len() >= to_find {
                            break;
                        }
                    }
                }
                self.next_start = (start + processed) % n;
            }
        }

        if feasible.is_empty() {
            self.feasible = feasible;
            let err = self.diagnose(&info, &ctx, pinned.as_deref());
            tracing::debug!(pod = %info.key, reason = %err, "pod does not fit");
            return Err(err);
        }
        let best = self.select(&info, &ctx, &feasible);
        self.feasible = feasible;
        let node = self.nodes[best].info.name.clone();
        tracing::trace!(pod = %info.key, node = %node, "assumed");
        self.insert_record(info, node.clone(), true);
        Ok(node)
    }

    /// kube-scheduler's `numFeasibleNodesToFind`.
    fn nodes_to_find(&self, n: usize) -> usize {
        if n < MIN_FEASIBLE_NODES_TO_FIND || self.percentage_of_nodes_to_score >= 100 {
            return n;
        }
        let pct = if self.percentage_of_nodes_to_score == 0 {
            50usize
                .saturating_sub(n / 125)
                .max(MIN_FEASIBLE_NODES_PERCENTAGE)
        } else {
            self.percentage_of_nodes_to_score
        };
        (n * pct / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
    }

    fn prepare(&self, pod: &PodInfo) -> Prepared {
        let mut p = Prepared {
            tolerates_unschedulable: pod
                .tolerations
                .iter()
                .any(|t| t.tolerates_parts(TAINT_UNSCHEDULABLE, "", "NoSchedule")),
            owner: pod
                .owner
                .as_ref()
                .and_then(|o| self.owners.get(o))
                .map(|&(id, _)| id),
            ..Prepared::default()
        };

        for key in &self.with_anti_affinity {
            let Some(rec) = self.pods.get(key) else {
                continue;
            };
            let Some(node) = self.node_labels(&rec.node) else {
                continue;
            };
            for term in &rec.anti_affinity {
                if term.matches_pod(&pod.namespace, &pod.labels, &self.namespaces) {
                    if let Some(v) = node.get(&term.topology_key) {
                        p.existing_anti.push((term.topology_key.clone(), v.clone()));
                    }
                }
            }
        }

        if !pod.affinity.is_empty() || !pod.anti_affinity.is_empty() {
            p.affinity = vec![HashMap::new(); pod.affinity.len()];
            p.anti = vec![HashSet::new(); pod.anti_affinity.len()];
            for rec in self.pods.values() {
                let Some(node) = self.node_labels(&rec.node) else {
                    continue;
                };
                if !pod.affinity.is_empty()
                    && pod
                        .affinity
                        .iter()
                        .all(|t| t.matches_pod(&rec.namespace, &rec.labels, &self.namespaces))
                {
                    for (ti, t) in pod.affinity.iter().enumerate() {
                        if let Some(v) = node.get(&t.topology_key) {
                            *p.affinity[ti].entry(v.clone()).or_default() += 1;
                            p.affinity_any = true;
                        }
                    }
                }
                for (ti, t) in pod.anti_affinity.iter().enumerate() {
                    if t.matches_pod(&rec.namespace, &rec.labels, &self.namespaces) {
                        if let Some(v) = node.get(&t.topology_key) {
                            p.anti[ti].insert(v.clone());
                        }
                    }
                }
            }
            p.affinity_self_match = pod
                .affinity
                .iter()
                .all(|t| t.matches_pod(&pod.namespace, &pod.labels, &self.namespaces));
        }
        p
    }

    fn node_labels(&self, name: &str) -> Option<&Labels> {
        self.node_index
            .get(name)
            .map(|&i| &self.nodes[i].info.labels)
    }

    /// Runs the filters on node `i`, stopping at the first that rejects it.
    fn check(&self, i: usize, pod: &PodInfo, ctx: &Prepared) -> Result<(), Failure> {
        let NodeEntry { info, usage } = &self.nodes[i];

        if info.unschedulable && !ctx.tolerates_unschedulable {
            return Err(Failure::Unschedulable);
        }
        if !pod.node_name.is_empty() && pod.node_name != info.name {
            return Err(Failure::NodeName);
        }
        for (ti, t) in info.taints.iter().enumerate() {
            if t.blocks_scheduling() && !pod.tolerations.iter().any(|tol| tol.tolerates(t)) {
                return Err(Failure::Taint(ti));
            }
        }
        if !node_affinity_matches(pod, info) {
            return Err(Failure::NodeAffinity);
        }
        if pod.ports.iter().any(|p| port_conflict(&usage.ports, p)) {
            return Err(Failure::Ports);
        }

        let r = pod.requests;
        let pods = usage.pods + 1 > info.allowed_pods;
        let cpu = r.cpu > 0 && r.cpu > info.allocatable.cpu - usage.requested.cpu;
        let mem = r.mem > 0 && r.mem > info.allocatable.mem - usage.requested.mem;
        if pods || cpu || mem {
            return Err(Failure::Resources {
                pods,
                cpu,
                mem,
                unresolvable: (cpu && r.cpu > info.allocatable.cpu)
                    || (mem && r.mem > info.allocatable.mem),
            });
        }

        if !pod.affinity.is_empty() {
            let mut pods_exist = true;
            for (ti, t) in pod.affinity.iter().enumerate() {
                match info.labels.get(&t.topology_key) {
                    // Every topology key of the terms must be on the node.
                    None => return Err(Failure::Affinity),
                    Some(v) => {
                        if ctx.affinity[ti].get(v).copied().unwrap_or(0) == 0 {
                            pods_exist = false;
                        }
                    }
                }
            }
            // The first pod of a group that selects itself may go anywhere.
            if !pods_exist && (ctx.affinity_any || !ctx.affinity_self_match) {
                return Err(Failure::Affinity);
            }
        }
        for (ti, t) in pod.anti_affinity.iter().enumerate() {
            if let Some(v) = info.labels.get(&t.topology_key) {
                if ctx.anti[ti].contains(v) {
                    return Err(Failure::AntiAffinity);
                }
            }
        }
        if ctx
            .existing_anti
            .iter()
            .any(|(k, v)| info.labels.get(k) == Some(v))
        {
            return Err(Failure::ExistingAntiAffinity);
        }
        Ok(())
    }

    /// Builds the FitError after no node passed: reruns the filters on every node for reasons.
    fn diagnose(&self, pod: &PodInfo, ctx: &Prepared, pinned: Option<&[usize]>) -> FitError {
        let n = self.nodes.len();
        let mut reasons = BTreeMap::new();
        let mut not_helpful = 0;
        let mut no_victims = 0;
        let mut record = |i: usize| {
            if let Err(f) = self.check(i, pod, ctx) {
                f.reasons(&self.nodes[i].info, &mut reasons);
                if f.unresolvable() {
                    not_helpful += 1;
                } else {
                    no_victims += 1;
                }
            }
        };
        match pinned {
            Some(candidates) => candidates.iter().copied().for_each(&mut record),
            None => (0..n).for_each(&mut record),
        }
        if let Some(candidates) = pinned {
            let absent = n - candidates.len();
            if absent > 0 {
                reasons.insert(ERR_NODE_AFFINITY_PREFILTER.to_string(), absent);
                not_helpful += absent;
            }
        }
        self.fit_error(pod, None, reasons, not_helpful, no_victims)
    }

    fn fit_error(
        &self,
        pod: &PodInfo,
        pre_filter: Option<String>,
        reasons: BTreeMap<String, usize>,
        not_helpful: usize,
        no_victims: usize,
    ) -> FitError {
        let preemption = if pod.preemption_never {
            Preemption::NotEligible
        } else {
            let mut m = BTreeMap::new();
            if not_helpful > 0 {
                m.insert(PREEMPTION_NOT_HELPFUL.to_string(), not_helpful);
            }
            if no_victims > 0 {
                m.insert(PREEMPTION_NO_VICTIMS.to_string(), no_victims);
            }
            Preemption::Nodes(m)
        };
        FitError {
            num_nodes: self.nodes.len(),
            pre_filter,
            reasons,
            preemption,
        }
    }

    /// Scores the feasible nodes and returns the best (first in scan order on ties).
    fn select(&mut self, pod: &PodInfo, ctx: &Prepared, feasible: &[usize]) -> usize {
        if feasible.len() == 1 {
            return feasible[0];
        }
        let mut counts = std::mem::take(&mut self.counts);
        counts.clear();
        let mut max_count = 0;
        if let Some(owner) = ctx.owner {
            for &i in feasible {
                let c = self.nodes[i].usage.owners.get(&owner).copied().unwrap_or(0);
                max_count = max_count.max(c);
                counts.push(c);
            }
        }
        let mut best = feasible[0];
        let mut best_score = i64::MIN;
        for (k, &i) in feasible.iter().enumerate() {
            let NodeEntry { info, usage } = &self.nodes[i];
            let cpu = least_requested(
                usage.non_zero.cpu.saturating_add(pod.non_zero.cpu),
                info.allocatable.cpu,
            );
            let mem = least_requested(
                usage.non_zero.mem.saturating_add(pod.non_zero.mem),
                info.allocatable.mem,
            );
            let fit = (cpu + mem) / 2;
            let spread = match counts.get(k) {
                Some(&c) if max_count > 0 => {
                    MAX_NODE_SCORE * i64::from(max_count - c) / i64::from(max_count)
                }
                _ => MAX_NODE_SCORE,
            };
            let score = fit * WEIGHT_LEAST_ALLOCATED + spread * WEIGHT_SPREAD;
            if score > best_score {
                best_score = score;
                best = i;
            }
        }
        self.counts = counts;
        best
    }

    fn intern_owner(&mut self, owner: &str) -> u32 {
        if let Some(e) = self.owners.get_mut(owner) {
            e.1 += 1;
            return e.0;
        }
        let id = self.next_owner_id;
        self.next_owner_id = self.next_owner_id.wrapping_add(1);
        self.owners.insert(owner.to_string(), (id, 1));
        id
    }

    fn usage_mut(&mut self, node: &str) -> &mut Usage {
        match self.node_index.get(node) {
            Some(&i) => &mut self.nodes[i].usage,
            None => self.ghosts.entry(node.to_string()).or_default(),
        }
    }

    fn insert_record(&mut self, info: PodInfo, node: String, assumed: bool) {
        let owner = info.owner.map(|o| (self.intern_owner(&o), o));
        let usage = self.usage_mut(&node);
        usage.requested = res_add(usage.requested, info.requests);
        usage.non_zero = res_add(usage.non_zero, info.non_zero);
        usage.pods += 1;
        if let Some((o, _)) = &owner {
            *usage.owners.entry(*o).or_default() += 1;
        }
        for p in &info.ports {
            *usage.ports.entry(p.clone()).or_default() += 1;
        }
        if !info.anti_affinity.is_empty() {
            self.with_anti_affinity.insert(info.key.clone());
        }
        self.pods.insert(
            info.key,
            PodRecord {
                node,
                assumed,
                namespace: info.namespace,
                labels: info.labels,
                requests: info.requests,
                non_zero: info.non_zero,
                owner,
                ports: info.ports,
                anti_affinity: info.anti_affinity,
            },
        );
    }

    fn remove_record(&mut self, key: &str) {
        let Some(rec) = self.pods.remove(key) else {
            return;
        };
        self.with_anti_affinity.remove(key);
        let ghost = !self.node_index.contains_key(&rec.node);
        let usage = self.usage_mut(&rec.node);
        usage.requested = res_sub(usage.requested, rec.requests);
        usage.non_zero = res_sub(usage.non_zero, rec.non_zero);
        usage.pods -= 1;
        if let Some((o, _)) = &rec.owner {
            if let Some(c) = usage.owners.get_mut(o) {
                *c -= 1;
                if *c == 0 {
                    usage.owners.remove(o);
                }
            }
        }
        for p in &rec.ports {
            if let Some(c) = usage.ports.get_mut(p) {
                *c -= 1;
                if *c == 0 {
                    usage.ports.remove(p);
                }
            }
        }
        let empty = usage.pods <= 0;
        if ghost && empty {
            self.ghosts.remove(&rec.node);
        }
        if let Some((_, key)) = &rec.owner {
            if let Some(e) = self.owners.get_mut(key) {
                e.1 -= 1;
                if e.1 == 0 {
                    self.owners.remove(key);
                }
            }
        }
    }
}

fn res_add(a: Res, b: Res) -> Res {
    Res {
        cpu: a.cpu.saturating_add(b.cpu),
        mem: a.mem.saturating_add(b.mem),
    }
}

fn res_sub(a: Res, b: Res) -> Res {
    Res {
        cpu: a.cpu.saturating_sub(b.cpu),
        mem: a.mem.saturating_sub(b.mem),
    }
}

/// LeastAllocated for one resource: the free share after placing the pod, 0..=100.
fn least_requested(requested: i64, capacity: i64) -> i64 {
    if capacity <= 0 || requested > capacity {
        return 0;
    }
    let free = capacity - requested;
    match free.checked_mul(MAX_NODE_SCORE) {
        Some(f) => f / capacity,
        // Only for capacities beyond ~92 PB: free / (capacity / 100) without overflow.
        None => free / (capacity / MAX_NODE_SCORE).max(1),
    }
}

fn node_affinity_matches(pod: &PodInfo, node: &NodeInfo) -> bool {
    if !pod
        .node_selector
        .iter()
        .all(|(k, v)| node.labels.get(k) == Some(v))
    {
        return false;
    }
    match &pod.node_terms {
        None => true,
        Some(terms) => terms.iter().any(|t| t.matches(&node.name, &node.labels)),
    }
}

/// Kubernetes' host port conflict rule: `0.0.0.0` conflicts with the same protocol and port on
/// any address, a specific address with itself and with `0.0.0.0`.
fn port_conflict(used: &HashMap<HostPort, u32>, want: &HostPort) -> bool {
    if used.is_empty() {
        return false;
    }
    if want.ip == BIND_ALL {
        used.keys()
            .any(|u| u.protocol == want.protocol && u.port == want.port)
    } else {
        used.contains_key(want)
            || used.contains_key(&HostPort {
                ip: BIND_ALL.to_string(),
                protocol: want.protocol.clone(),
                port: want.port,
            })
    }
}

fn parse_node(node: &Value) -> Option<NodeInfo> {
    let meta = node.get("metadata").unwrap_or(&Value::Null);
    let name = str_field(meta, "name");
    if name.is_empty() {
        return None;
    }
    let mut labels = string_map(meta.get("labels"));
    // kubelet always sets it; default it so hostname-scoped anti-affinity works regardless.
    labels
        .entry(HOSTNAME_LABEL.to_string())
        .or_insert_with(|| name.to_string());

    let status = node.get("status").unwrap_or(&Value::Null);
    let resource = |r: &str| -> Option<&str> {
        status
            .get("allocatable")
            .and_then(|a| a.get(r))
            .or_else(|| status.get("capacity").and_then(|c| c.get(r)))
            .and_then(Value::as_str)
    };
    let allocatable = Res {
        cpu: resource("cpu").and_then(quantity_milli_value).unwrap_or(0),
        mem: resource("memory").and_then(quantity_value).unwrap_or(0),
    };
    let allowed_pods = resource("pods").and_then(quantity_value).unwrap_or(0);

    let spec = node.get("spec").unwrap_or(&Value::Null);
    let mut taints: Vec<Taint> = spec
        .get("taints")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Taint::parse).collect())
        .unwrap_or_default();
    let ready = status
        .get("conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| str_field(c, "type") == "Ready"))
        .map(|c| str_field(c, "status"));
    let synthetic = match ready {
        Some("True") => None,
        Some("Unknown") => Some(TAINT_UNREACHABLE),
        _ => Some(TAINT_NOT_READY),
    };
    if let Some(key) = synthetic {
        if !taints
            .iter()
            .any(|t| t.key == key && t.effect == "NoSchedule")
        {
            taints.push(Taint {
                key: key.to_string(),
                value: String::new(),
                effect: "NoSchedule".to_string(),
            });
        }
    }
    Some(NodeInfo {
        name: name.to_string(),
        labels,
        taints,
        unschedulable: spec.get("unschedulable").and_then(Value::as_bool) == Some(true),
        allocatable,
        allowed_pods,
    })
}

#[cfg(test)]
mod tests;
