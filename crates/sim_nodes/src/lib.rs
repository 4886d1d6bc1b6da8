//! Simulated Kubernetes nodes (`berth sim-nodes`): one process registers many Node
//! objects and plays their kubelets against an API server, without running anything.
//!
//! Each node is registered with capacity/allocatable, healthy conditions and node info,
//! renews its `kube-node-lease` Lease every heartbeat and posts its Ready condition every
//! `status_interval`. One list+watch of all bound pods (not one per node) drives the pods:
//! a Pending pod bound to a simulated node becomes Running and Ready after a random delay
//! up to `start_delay` (with a pod IP from its node's 10.244.x.0/24 range); a Job's pod
//! then Succeeds after `job_duration`; a terminating pod gets its final delete
//! (grace period 0). Pod writes go through a bounded number of concurrent requests.
//!
//! On shutdown the nodes stay registered (as when kubelets die), unless `cleanup` is set.

mod node;
mod pods;

use std::collections::HashSet;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use kube_client::{Client, WatchEvent};
use tokio_util::sync::CancellationToken;

pub use node::{KUBELET_VERSION, LEASE_DURATION_SECONDS, LEASE_NAMESPACE, RUNTIME_VERSION};

/// Most nodes one simulator can run (pod ranges 10.244.0.0 - 10.255.255.0).
pub const MAX_NODES: u32 = 12 * 256 - 1;

/// How to simulate.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Kubeconfig of the cluster to join.
    pub kubeconfig: PathBuf,
    /// Number of nodes (named `name_prefix` + 1..=count).
    pub count: u32,
    /// CPU capacity of each node (a quantity, e.g. "4" or "3500m").
    pub cpu: String,
    /// Memory capacity of each node (a quantity, e.g. "8Gi").
    pub memory: String,
    /// Pod capacity of each node.
    pub pods_per_node: u32,
    pub name_prefix: String,
    /// Lease renewal interval.
    pub heartbeat: Duration,
    /// Node status (Ready heartbeat) interval.
    pub status_interval: Duration,
    /// A pod becomes Running after a random delay in `0..=start_delay`.
    pub start_delay: Duration,
    /// Mark the pods of Jobs Succeeded after they ran `job_duration`.
    pub complete_jobs: bool,
    pub job_duration: Duration,
    /// Most pod status updates and deletes in flight at once.
    pub concurrency: usize,
    /// Delete the nodes and their leases on shutdown.
    pub cleanup: bool,
}

impl Default for SimOptions {
    fn default() -> SimOptions {
        SimOptions {
            kubeconfig: PathBuf::new(),
            count: 1,
            cpu: "4".into(),
            memory: "8Gi".into(),
            pods_per_node: 110,
            name_prefix: "sim-node-".into(),
            heartbeat: Duration::from_secs(10),
            status_interval: Duration::from_secs(60),
            start_delay: Duration::from_secs(1),
            complete_jobs: true,
            job_duration: Duration::from_secs(1),
            concurrency: 32,
            cleanup: false,
        }
    }
}

/// Errors of the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("invalid option: {0}")]
    InvalidOption(String),
    #[error(transparent)]
    Client(#[from] kube_client::Error),
    #[error("node {node}: {source}")]
    Node {
        node: String,
        #[source]
        source: kube_client::Error,
    },
}

/// Runs the simulation until ctrl-c (SIGINT) or SIGTERM.
pub async fn run(opts: SimOptions) -> Result<(), SimError> {
    run_until(opts, async {
        #[cfg(unix)]
        {
            let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
            match term {
                Ok(mut t) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = t.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    })
    .await
}

/// Runs the simulation until `shutdown` completes. Registration failures end it with an
/// error; later failures are logged and retried.
pub async fn run_until(
    opts: SimOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), SimError> {
    validate(&opts)?;
    let cfg = kube_client::Kubeconfig::load(&opts.kubeconfig, None)?;
    // Writes and the watch use separate connections, so a busy watch never holds up writes.
    let client = Client::new(&cfg)?;
    let watch_client = Client::new(&cfg)?;
    let idents: Vec<node::NodeIdent> = (1..=opts.count)
        .map(|i| node::NodeIdent::new(&opts.name_prefix, i))
        .collect();

    let started = tokio::time::Instant::now();
    let uids: Vec<String> = futures_util::stream::iter(idents.clone())
        .map(|id| {
            let (client, opts) = (client.clone(), opts.clone());
            async move { node::register(&client, &id, &opts).await }
        })
        .buffered(opts.concurrency.max(1))
        .try_collect()
        .await?;
    tracing::info!(count = opts.count, elapsed = ?started.elapsed(), "simulated nodes registered");

    let cancel = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    let n = idents.len().max(1) as u32;
    for (i, (id, uid)) in idents.iter().zip(uids).enumerate() {
        // Spread heartbeats evenly over the interval.
        let offset = opts.heartbeat * (i as u32) / n;
        tasks.spawn(
            cancel
                .clone()
                .run_until_cancelled_owned(node::heartbeat_loop(
                    client.clone(),
                    id.clone(),
                    uid,
                    opts.clone(),
                    offset,
                )),
        );
    }
    let pods = pods::Pods::new(client.clone(), opts.clone(), idents.clone(), cancel.clone());
    tasks.spawn(
        cancel
            .clone()
            .run_until_cancelled_owned(pod_loop(watch_client, pods.clone())),
    );
    tasks.spawn(
        cancel
            .clone()
            .run_until_cancelled_owned(progress(pods.clone())),
    );

    shutdown.await;
    tracing::info!("stopping simulated nodes");
    cancel.cancel();
    while tasks.join_next().await.is_some() {}

    if opts.cleanup {
        let results: Vec<Result<(), SimError>> = futures_util::stream::iter(idents)
            .map(|id| {
                let client = client.clone();
                async move { node::unregister(&client, &id.name).await }
            })
            .buffer_unordered(opts.concurrency.max(1))
            .collect()
            .await;
        for r in results {
            r?;
        }
        tracing::info!(count = opts.count, "simulated nodes deleted");
    }
    Ok(())
}

/// Checks options before touching the cluster.
fn validate(o: &SimOptions) -> Result<(), SimError> {
    let bad = |m: String| Err(SimError::InvalidOption(m));
    if o.count == 0 || o.count > MAX_NODES {
        return bad(format!("count must be 1..={MAX_NODES}, not {}", o.count));
    }
    if !is_quantity(&o.cpu) {
        return bad(format!("cpu {:?} is not a quantity", o.cpu));
    }
    if !is_quantity(&o.memory) {
        return bad(format!("memory {:?} is not a quantity", o.memory));
    }
    if o.pods_per_node == 0 {
        return bad("pods per node must be at least 1".into());
    }
    if o.heartbeat.is_zero() {
        return bad("heartbeat must be positive".into());
    }
    let p = &o.name_prefix;
    let name_ok = !p.is_empty()
        && p.len() + 5 <= 253
        && p.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && p.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    if !name_ok {
        return bad(format!("name prefix {p:?} does not make valid node names"));
    }
    Ok(())
}

/// A Kubernetes resource quantity: `<number><suffix>`, suffix one of the binary (Ki..Ei),
/// decimal (n, u, m, k, M, G, T, P, E) suffixes or an exponent (e3, E-2).
pub fn is_quantity(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(num_end);
    let digits = num.replace('.', "");
    if digits.is_empty() || num.matches('.').count() > 1 {
        return false;
    }
    const SUFFIXES: [&str; 16] = [
        "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E",
    ];
    if SUFFIXES.contains(&suffix) {
        return true;
    }
    // Exponent: e or E, optional sign, digits.
    let Some(exp) = suffix.strip_prefix(['e', 'E']) else {
        return false;
    };
    let exp = exp.strip_prefix(['+', '-']).unwrap_or(exp);
    !exp.is_empty() && exp.chars().all(|c| c.is_ascii_digit())
}

/// Retries transient failures (transport errors, 429, 5xx) a few times with backoff.
pub(crate) async fn retry<T, F, Fut>(mut f: F) -> Result<T, kube_client::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube_client::Error>>,
{
    let mut delay = Duration::from_millis(200);
    let mut attempt = 0;
    loop {
        match f().await {
            Err(e) if e.is_transient() && attempt < 5 => {
                tracing::debug!(error = %e, attempt, "retrying");
                attempt += 1;
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            r => return r,
        }
    }
}

const PODS: &str = "/api/v1/pods";
/// Only bound pods concern nodes.
const BOUND: (&str, &str) = ("fieldSelector", "spec.nodeName!=");

/// Lists then watches all bound pods, feeding them to `pods`; re-watches from the last
/// resource version seen, and lists again after 410 Gone.
async fn pod_loop(client: Client, pods: Arc<pods::Pods>) {
    let mut rv: Option<String> = None;
    let mut backoff = Duration::from_millis(200);
    loop {
        let from = match rv.take() {
            Some(v) => v,
            None => match client.list_all(PODS, &[BOUND], 500).await {
                Ok(list) => {
                    let items = list["items"].as_array().map(Vec::as_slice).unwrap_or(&[]);
                    let mut seen = HashSet::with_capacity(items.len());
                    for p in items {
                        if let Some(uid) = p["metadata"]["uid"].as_str() {
                            seen.insert(uid.to_string());
                        }
                        pods.observe(p, false);
                    }
                    pods.retain(&seen);
                    tracing::debug!(pods = items.len(), "listed bound pods");
                    list["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap_or("")
                        .to_string()
                }
                Err(e) => {
                    tracing::warn!(error = %e, "listing pods failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
            },
        };
        let stream = client
            .watch_with(
                PODS,
                &[
                    BOUND,
                    ("resourceVersion", &from),
                    ("allowWatchBookmarks", "true"),
                ],
            )
            .await;
        let mut stream = match stream {
            Ok(s) => s,
            Err(e) if e.is_gone() => continue,
            Err(e) => {
                tracing::warn!(error = %e, "watching pods failed");
                rv = Some(from);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        backoff = Duration::from_millis(200);
        let mut last = from;
        loop {
            match stream.next().await {
                Some(Ok(ev)) => {
                    if let Some(v) = ev.resource_version().filter(|v| !v.is_empty()) {
                        last = v.to_string();
                    }
                    match &ev {
                        WatchEvent::Added(p) | WatchEvent::Modified(p) => pods.observe(p, false),
                        WatchEvent::Deleted(p) => pods.observe(p, true),
                        WatchEvent::Bookmark(_) => {}
                    }
                }
                Some(Err(e)) if e.is_gone() => {
                    tracing::info!("pod watch expired; listing again");
                    break;
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "pod watch failed");
                    rv = Some(last);
                    break;
                }
                None => {
                    rv = Some(last);
                    break;
                }
            }
        }
    }
}

/// Logs pod progress every 10 s while it changes.
async fn progress(pods: Arc<pods::Pods>) {
    let mut last = (0, 0, 0, 0);
    loop {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let c = &pods.counters;
        let now = (
            c.started.load(Ordering::Relaxed),
            c.completed.load(Ordering::Relaxed),
            c.deleted.load(Ordering::Relaxed),
            c.failed.load(Ordering::Relaxed),
        );
        if now != last {
            tracing::info!(
                tracked = pods.tracked(),
                started = now.0,
                completed = now.1,
                deleted = now.2,
                failed = now.3,
                "simulated pods"
            );
            last = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        for ok in [
            "4", "3500m", "8Gi", "0.5", "1e3", "1E-2", "100M", "+1", "512Ki",
        ] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "Gi", "4 Gi", "8GB", "1.2.3", "e3", "1e", "x", "4g"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }

    #[test]
    fn options_are_checked() {
        let ok = SimOptions::default();
        assert!(validate(&ok).is_ok());
        for o in [
            SimOptions {
                count: 0,
                ..ok.clone()
            },
            SimOptions {
                count: MAX_NODES + 1,
                ..ok.clone()
            },
            SimOptions {
                cpu: "four".into(),
                ..ok.clone()
            },
            SimOptions {
                memory: "8GB".into(),
                ..ok.clone()
            },
            SimOptions {
                pods_per_node: 0,
                ..ok.clone()
            },
            SimOptions {
                heartbeat: Duration::ZERO,
                ..ok.clone()
            },
            SimOptions {
                name_prefix: "Sim_".into(),
                ..ok.clone()
            },
            SimOptions {
                name_prefix: "".into(),
                ..ok.clone()
            },
        ] {
            assert!(
                matches!(validate(&o), Err(SimError::InvalidOption(_))),
                "{o:?}"
            );
        }
    }
}
