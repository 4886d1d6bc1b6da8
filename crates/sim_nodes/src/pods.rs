//! The pods of simulated nodes: which pod needs what (start, finish, final delete), the
//! status a started or finished pod gets, and per-node pod IP allocation.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use kube_client::{Client, PatchKind};
use rand::Rng;
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::node::{time, NodeIdent};
use crate::SimOptions;

/// What the simulator has done or is doing to a pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Seen; nothing scheduled.
    Seen,
    /// A start (status Running) is scheduled or under way.
    Starting,
    /// Running (set by us, or found so).
    Running,
    /// A finish (status Succeeded) is scheduled or under way.
    Completing,
    /// Succeeded or Failed.
    Finished,
    /// The final delete is scheduled or under way.
    Deleting,
    /// A non-retryable error; left alone until it changes.
    Stuck,
}

struct Track {
    stage: Stage,
    node: usize,
    /// Host number of the pod IP on its node (1..=254).
    ip: Option<u8>,
}

/// Per-node bitmap of used pod IP host numbers.
struct IpPool {
    used: [u64; 4],
    next_overflow: u8,
}

impl IpPool {
    fn new() -> IpPool {
        IpPool {
            used: [1, 0, 0, 1 << 63],
            next_overflow: 1,
        }
    }
    fn take(&mut self, n: u8) {
        self.used[usize::from(n / 64)] |= 1 << (n % 64);
    }
    fn free(&mut self, n: u8) {
        if (1..=254).contains(&n) {
            self.used[usize::from(n / 64)] &= !(1 << (n % 64));
        }
    }
    /// Lowest free host number; when all 254 are used, numbers are handed out again.
    fn alloc(&mut self) -> u8 {
        for (w, bits) in self.used.iter_mut().enumerate() {
            if *bits != u64::MAX {
                let b = bits.trailing_ones() as u8;
                *bits |= 1 << b;
                return (w as u8) * 64 + b;
            }
        }
        let n = self.next_overflow;
        self.next_overflow = if n >= 254 { 1 } else { n + 1 };
        n
    }
}

/// Counters, for progress logs.
#[derive(Default)]
pub struct Counters {
    pub started: AtomicU64,
    pub completed: AtomicU64,
    pub deleted: AtomicU64,
    pub failed: AtomicU64,
}

/// What a pod task needs to know about a pod (not the whole object).
#[derive(Debug)]
struct PodInfo {
    uid: String,
    namespace: String,
    name: String,
    node: usize,
    containers: Vec<(String, String)>,
    init_containers: Vec<(String, String)>,
    scheduled: Option<Value>,
    has_finalizers: bool,
    start_time: Option<String>,
}

impl PodInfo {
    fn status_path(&self) -> String {
        format!(
            "/api/v1/namespaces/{}/pods/{}/status",
            self.namespace, self.name
        )
    }
}

/// The pod side of the simulator, shared by the watch loop and pod tasks.
pub struct Pods {
    client: Client,
    opts: SimOptions,
    nodes: Vec<NodeIdent>,
    by_name: HashMap<String, usize>,
    state: Mutex<State>,
    permits: Semaphore,
    cancel: CancellationToken,
    pub counters: Counters,
}

struct State {
    pods: HashMap<String, Track>,
    ips: Vec<IpPool>,
}

impl Pods {
    pub fn new(
        client: Client,
        opts: SimOptions,
        nodes: Vec<NodeIdent>,
        cancel: CancellationToken,
    ) -> Arc<Pods> {
        let by_name = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.clone(), i))
            .collect();
        let ips = nodes.iter().map(|_| IpPool::new()).collect();
        Arc::new(Pods {
            client,
            permits: Semaphore::new(opts.concurrency.max(1)),
            opts,
            nodes,
            by_name,
            state: Mutex::new(State {
                pods: HashMap::new(),
                ips,
            }),
            cancel,
            counters: Counters::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent-enough data; keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Number of pods tracked on the simulated nodes.
    pub fn tracked(&self) -> usize {
        self.lock().pods.len()
    }

    /// Takes in one observed pod (from a list or a watch event) and schedules what it
    /// needs. Cheap: never waits on the network.
    pub fn observe(self: &Arc<Self>, pod: &Value, deleted: bool) {
        let Some(uid) = pod["metadata"]["uid"].as_str() else {
            return;
        };
        let Some(node) = pod["spec"]["nodeName"]
            .as_str()
            .and_then(|n| self.by_name.get(n).copied())
        else {
            return;
        };
        let mut st = self.lock();
        if deleted {
            if let Some(t) = st.pods.remove(uid) {
                release(&mut st, &t);
            }
            return;
        }
        let st = &mut *st;
        let track = st.pods.entry(uid.to_string()).or_insert(Track {
            stage: Stage::Seen,
            node,
            ip: None,
        });
        if track.ip.is_none() {
            // Adopt the IP a pod already has (a restarted simulator).
            if let Some(n) = pod["status"]["podIP"]
                .as_str()
                .and_then(|ip| self.nodes[node].host_number(ip))
            {
                track.ip = Some(n);
                st.ips[node].take(n);
            }
        }
        let terminating = pod["metadata"]
            .get("deletionTimestamp")
            .is_some_and(|v| !v.is_null());
        if terminating {
            if track.stage != Stage::Deleting {
                track.stage = Stage::Deleting;
                self.spawn(Job::Delete, pod_info(pod, node), Duration::ZERO);
            }
            return;
        }
        let phase = pod["status"]["phase"].as_str().unwrap_or("Pending");
        match phase {
            "Pending" | "" if track.stage == Stage::Seen => {
                track.stage = Stage::Starting;
                let delay = random_upto(self.opts.start_delay);
                self.spawn(Job::Start, pod_info(pod, node), delay);
            }
            "Running" => {
                if matches!(track.stage, Stage::Seen | Stage::Starting | Stage::Stuck) {
                    track.stage = Stage::Running;
                }
                if track.stage == Stage::Running && self.opts.complete_jobs && is_job_owned(pod) {
                    track.stage = Stage::Completing;
                    self.spawn(Job::Complete, pod_info(pod, node), self.opts.job_duration);
                }
            }
            "Succeeded" | "Failed" if track.stage != Stage::Finished => {
                track.stage = Stage::Finished;
                if let Some(n) = track.ip.take() {
                    st.ips[node].free(n);
                }
            }
            _ => {}
        }
    }

    /// After a fresh list: forgets pods that are gone.
    pub fn retain(&self, seen: &HashSet<String>) {
        let mut st = self.lock();
        let gone: Vec<String> = st
            .pods
            .keys()
            .filter(|k| !seen.contains(*k))
            .cloned()
            .collect();
        for uid in gone {
            if let Some(t) = st.pods.remove(&uid) {
                release(&mut st, &t);
            }
        }
    }

    fn stage(&self, uid: &str) -> Option<Stage> {
        self.lock().pods.get(uid).map(|t| t.stage)
    }

    /// Moves `uid` from stage `from` to `to`; false if it is not at `from` any more.
    fn advance(&self, uid: &str, from: Stage, to: Stage) -> bool {
        let mut st = self.lock();
        match st.pods.get_mut(uid) {
            Some(t) if t.stage == from => {
                t.stage = to;
                true
            }
            _ => false,
        }
    }

    fn spawn(self: &Arc<Self>, job: Job, info: PodInfo, delay: Duration) {
        let me = self.clone();
        let cancel = self.cancel.clone();
        tokio::spawn(async move {
            cancel
                .run_until_cancelled(async move {
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    let Ok(_permit) = me.permits.acquire().await else {
                        return;
                    };
                    me.run_job(job, &info).await;
                })
                .await;
        });
    }

    async fn run_job(&self, job: Job, info: &PodInfo) {
        let expect = match job {
            Job::Start => Stage::Starting,
            Job::Complete => Stage::Completing,
            Job::Delete => Stage::Deleting,
        };
        let mut backoff = Duration::from_millis(100);
        loop {
            if self.stage(&info.uid) != Some(expect) {
                return;
            }
            let result = match job {
                Job::Start => self.start(info).await,
                Job::Complete => self.complete(info).await,
                Job::Delete => self.delete(info).await,
            };
            match result {
                Ok(()) => {
                    let c = match job {
                        Job::Start => {
                            self.advance(&info.uid, Stage::Starting, Stage::Running);
                            &self.counters.started
                        }
                        Job::Complete => {
                            self.advance(&info.uid, Stage::Completing, Stage::Finished);
                            &self.counters.completed
                        }
                        Job::Delete => &self.counters.deleted,
                    };
                    c.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                // Gone, or replaced by a pod of the same name: nothing to do.
                Err(e) if e.is_not_found() || (job == Job::Delete && e.is_conflict()) => {
                    return;
                }
                Err(e) if e.is_transient() || e.is_conflict() => {
                    tracing::debug!(pod = %info.name, error = %e, ?job, "retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    tracing::warn!(namespace = %info.namespace, pod = %info.name, error = %e, ?job, "pod update failed");
                    self.counters.failed.fetch_add(1, Ordering::Relaxed);
                    self.advance(&info.uid, expect, Stage::Stuck);
                    return;
                }
            }
        }
    }

    /// Marks the pod Running and Ready.
    async fn start(&self, info: &PodInfo) -> Result<(), kube_client::Error> {
        let ip = {
            let mut st = self.lock();
            let st = &mut *st;
            match st.pods.get_mut(&info.uid) {
                Some(t) => match t.ip {
                    Some(n) => n,
                    None => {
                        let n = st.ips[t.node].alloc();
                        t.ip = Some(n);
                        n
                    }
                },
                None => return Ok(()),
            }
        };
        let node = &self.nodes[info.node];
        let status = running_status(info, &node.pod_ip(ip), &node.host_ip, &time(Utc::now()));
        let body = json!({"metadata": {"uid": info.uid}, "status": status});
        self.client
            .patch(&info.status_path(), PatchKind::Merge, &body)
            .await
            .map(|_| ())
    }

    /// Marks a Job's pod Succeeded (its containers exited 0).
    async fn complete(&self, info: &PodInfo) -> Result<(), kube_client::Error> {
        let status = finished_status(info, &time(Utc::now()));
        let body = json!({"metadata": {"uid": info.uid}, "status": status});
        self.client
            .patch(&info.status_path(), PatchKind::Merge, &body)
            .await
            .map(|_| ())
    }

    /// The kubelet's final delete of a terminating pod (its containers are "stopped" at
    /// once). A pod held by finalizers is first given a terminal phase, so controllers
    /// waiting on that (the Job controller) can let it go.
    async fn delete(&self, info: &PodInfo) -> Result<(), kube_client::Error> {
        if info.has_finalizers {
            let status = finished_status(info, &time(Utc::now()));
            let body = json!({"metadata": {"uid": info.uid}, "status": status});
            match self
                .client
                .patch(&info.status_path(), PatchKind::Merge, &body)
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_not_found() => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        let path = format!("/api/v1/namespaces/{}/pods/{}", info.namespace, info.name);
        let options = json!({
            "apiVersion": "v1", "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": info.uid},
        });
        self.client.delete(&path, Some(&options)).await.map(|_| ())
    }
}

fn release(st: &mut State, t: &Track) {
    if let Some(n) = t.ip {
        if let Some(pool) = st.ips.get_mut(t.node) {
            pool.free(n);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Job {
    Start,
    Complete,
    Delete,
}

fn random_upto(max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    let ms = u64::try_from(max.as_micros()).unwrap_or(u64::MAX);
    Duration::from_micros(rand::thread_rng().gen_range(0..=ms))
}

fn is_job_owned(pod: &Value) -> bool {
    pod["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|refs| refs.iter().any(|r| r["kind"] == "Job"))
}

fn containers(pod: &Value, key: &str) -> Vec<(String, String)> {
    pod["spec"][key]
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter_map(|c| {
                    Some((
                        c["name"].as_str()?.to_string(),
                        c["image"].as_str().unwrap_or("").to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn pod_info(pod: &Value, node: usize) -> PodInfo {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let scheduled = pod["status"]["conditions"].as_array().and_then(|cs| {
        cs.iter()
            .find(|c| c["type"] == "PodScheduled" && c["status"] == "True")
            .cloned()
    });
    PodInfo {
        uid: s(&pod["metadata"]["uid"]),
        namespace: s(&pod["metadata"]["namespace"]),
        name: s(&pod["metadata"]["name"]),
        node,
        containers: containers(pod, "containers"),
        init_containers: containers(pod, "initContainers"),
        scheduled,
        has_finalizers: pod["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty()),
        start_time: pod["status"]["startTime"].as_str().map(str::to_string),
    }
}

fn condition(kind: &str, status: &str, reason: Option<&str>, now: &str) -> Value {
    let mut c =
        json!({"type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": now});
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    c
}

fn scheduled_condition(info: &PodInfo, now: &str) -> Value {
    info.scheduled
        .clone()
        .unwrap_or_else(|| condition("PodScheduled", "True", None, now))
}

fn container_id(info: &PodInfo, name: &str) -> String {
    format!("sim://{}-{}", info.uid, name)
}

/// A stable pseudo image digest, so `imageID` looks like a runtime's.
fn image_id(image: &str) -> String {
    let mut out = String::with_capacity(64);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for round in 0u64..4 {
        for b in image.bytes().chain(round.to_le_bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        out.push_str(&format!("{h:016x}"));
    }
    let repo = image.split('@').next().unwrap_or(image);
    let repo = match repo.rsplit_once(':') {
        Some((r, tag)) if !tag.contains('/') => r,
        _ => repo,
    };
    format!("{repo}@sha256:{out}")
}

/// The status of a started pod: Running, Ready, every container running.
fn running_status(info: &PodInfo, pod_ip: &str, host_ip: &str, now: &str) -> Value {
    let statuses: Vec<Value> = info
        .containers
        .iter()
        .map(|(name, image)| {
            json!({
                "name": name, "image": image, "imageID": image_id(image),
                "containerID": container_id(info, name),
                "ready": true, "started": true, "restartCount": 0,
                "state": {"running": {"startedAt": now}},
                "lastState": {},
            })
        })
        .collect();
    let mut status = json!({
        "phase": "Running",
        "conditions": [
            condition("PodReadyToStartContainers", "True", None, now),
            condition("Initialized", "True", None, now),
            condition("Ready", "True", None, now),
            condition("ContainersReady", "True", None, now),
            scheduled_condition(info, now),
        ],
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": info.start_time.as_deref().unwrap_or(now),
        "containerStatuses": statuses,
    });
    if !info.init_containers.is_empty() {
        status["initContainerStatuses"] = json!(info
            .init_containers
            .iter()
            .map(|(name, image)| terminated(info, name, image, now, false))
            .collect::<Vec<_>>());
    }
    status
}

fn terminated(info: &PodInfo, name: &str, image: &str, now: &str, ready: bool) -> Value {
    json!({
        "name": name, "image": image, "imageID": image_id(image),
        "containerID": container_id(info, name),
        "ready": ready, "started": false, "restartCount": 0,
        "state": {"terminated": {
            "exitCode": 0, "reason": "Completed",
            "startedAt": info.start_time.as_deref().unwrap_or(now), "finishedAt": now,
            "containerID": container_id(info, name),
        }},
        "lastState": {},
    })
}

/// The status of a pod whose containers all exited 0: Succeeded.
fn finished_status(info: &PodInfo, now: &str) -> Value {
    let done = Some("PodCompleted");
    let mut status = json!({
        "phase": "Succeeded",
        "conditions": [
            condition("PodReadyToStartContainers", "False", None, now),
            condition("Initialized", "True", done, now),
            condition("Ready", "False", done, now),
            condition("ContainersReady", "False", done, now),
            scheduled_condition(info, now),
        ],
        "containerStatuses": info
            .containers
            .iter()
            .map(|(name, image)| terminated(info, name, image, now, false))
            .collect::<Vec<_>>(),
    });
    if !info.init_containers.is_empty() {
        status["initContainerStatuses"] = json!(info
            .init_containers
            .iter()
            .map(|(name, image)| terminated(info, name, image, now, false))
            .collect::<Vec<_>>());
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_pool_allocates_lowest_free_and_never_0_or_255() {
        let mut p = IpPool::new();
        assert_eq!(p.alloc(), 1);
        assert_eq!(p.alloc(), 2);
        p.free(1);
        assert_eq!(p.alloc(), 1);
        p.take(3);
        assert_eq!(p.alloc(), 4);
        let mut all: Vec<u8> = (0..300).map(|_| p.alloc()).collect();
        all.retain(|n| *n == 0 || *n == 255);
        assert!(all.is_empty());
        p.free(0);
        p.free(255);
    }

    fn pod() -> Value {
        json!({
            "metadata": {"uid": "u1", "namespace": "ns", "name": "p",
                          "ownerReferences": [{"kind": "Job", "name": "j"}]},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox:1.36"}, {"image": "no-name"}],
                     "initContainers": [{"name": "i", "image": "init"}]},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": "T0"}]},
        })
    }

    #[test]
    fn running_status_is_complete() {
        let info = pod_info(&pod(), 0);
        assert!(is_job_owned(&pod()));
        assert_eq!(info.containers.len(), 1);
        let s = running_status(&info, "10.244.1.2", "10.250.0.1", "T1");
        assert_eq!(s["phase"], "Running");
        assert_eq!(s["podIP"], "10.244.1.2");
        let types: Vec<&str> = s["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "PodReadyToStartContainers",
                "Initialized",
                "Ready",
                "ContainersReady",
                "PodScheduled"
            ]
        );
        // The scheduler's PodScheduled condition is kept.
        assert_eq!(s["conditions"][4]["lastTransitionTime"], "T0");
        let c = &s["containerStatuses"][0];
        assert_eq!(c["containerID"], "sim://u1-c");
        assert_eq!(c["ready"], true);
        assert_eq!(c["state"]["running"]["startedAt"], "T1");
        assert!(c["imageID"]
            .as_str()
            .unwrap()
            .starts_with("busybox@sha256:"));
        assert_eq!(
            s["initContainerStatuses"][0]["state"]["terminated"]["exitCode"],
            0
        );
        let f = finished_status(&info, "T2");
        assert_eq!(f["phase"], "Succeeded");
        assert_eq!(
            f["containerStatuses"][0]["state"]["terminated"]["reason"],
            "Completed"
        );
    }

    #[test]
    fn image_ids_strip_tags_not_registry_ports() {
        assert!(image_id("nginx").starts_with("nginx@sha256:"));
        assert!(image_id("reg:5000/app").starts_with("reg:5000/app@sha256:"));
        assert!(image_id("reg:5000/app:v1").starts_with("reg:5000/app@sha256:"));
        assert_eq!(image_id("a").len(), "a@sha256:".len() + 64);
        assert_ne!(image_id("a"), image_id("b"));
    }
}
