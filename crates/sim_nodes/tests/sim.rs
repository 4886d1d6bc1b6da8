//! Simulated nodes against an in-process berth API server.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use kube_client::Client;
use serde_json::{json, Value};
use sim_nodes::{SimError, SimOptions};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// An API server on 127.0.0.1:<random> with its store and PKI in a temp dir.
struct Cluster {
    kubeconfig: PathBuf,
    server: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn start_cluster() -> Cluster {
    let dir = tempfile::Builder::new()
        .prefix("berth-t-sim-")
        .tempdir()
        .unwrap();
    let store = kv_store::EmbeddedStore::open(&dir.path().join("store.redb")).unwrap();
    let pki = cluster_pki::Pki::load_or_create(&dir.path().join("pki"), &[]).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let kubeconfig = dir.path().join("admin.kubeconfig");
    pki.write_admin_kubeconfig(&kubeconfig, &format!("https://127.0.0.1:{port}"))
        .unwrap();
    let state =
        api_server::ServerState::new(Arc::new(store), Arc::new(pki), format!("127.0.0.1:{port}"));
    state.bootstrap().await.unwrap();
    let server = tokio::spawn(async move {
        let _ = api_server::serve(listener, state).await;
    });
    Cluster {
        kubeconfig,
        server,
        _dir: dir,
    }
}

/// A running simulator; stop() ends it and returns its result.
struct Sim {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), SimError>>,
}

impl Sim {
    fn start(opts: SimOptions) -> Sim {
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(sim_nodes::run_until(opts, async {
            let _ = rx.await;
        }));
        Sim {
            stop: Some(tx),
            task,
        }
    }

    async fn stop(mut self) -> Result<(), SimError> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await.unwrap()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Polls `f` until it returns Some, or panics after `secs`.
async fn wait_for<T, F, Fut>(what: &str, secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

fn pod(name: &str, node: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "nodeName": node,
            "containers": [{"name": "app", "image": "busybox:1.36"}, {"name": "side", "image": "nginx"}],
        },
    })
}

const PODS: &str = "/api/v1/namespaces/default/pods";

fn opts(kubeconfig: &std::path::Path, count: u32) -> SimOptions {
    SimOptions {
        kubeconfig: kubeconfig.to_path_buf(),
        count,
        cpu: "4".into(),
        memory: "8Gi".into(),
        heartbeat: Duration::from_millis(500),
        status_interval: Duration::from_secs(1),
        start_delay: Duration::from_millis(300),
        job_duration: Duration::from_millis(300),
        ..Default::default()
    }
}

async fn get_pod(c: &Client, name: &str) -> Option<Value> {
    c.get(&format!("{PODS}/{name}")).await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_leases_and_pod_lifecycle() {
    let cluster = start_cluster().await;
    let c = Client::from_kubeconfig(&cluster.kubeconfig).unwrap();
    let sim = Sim::start(opts(&cluster.kubeconfig, 3));

    // Nodes register Ready with the asked-for resources.
    let nodes = wait_for("3 nodes", 30, || async {
        let l = c.list("/api/v1/nodes", &[]).await.ok()?;
        let items = l["items"].as_array()?.clone();
        (items.len() == 3).then_some(items)
    })
    .await;
    let mut names: Vec<&str> = nodes
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["sim-node-1", "sim-node-2", "sim-node-3"]);
    for n in &nodes {
        let alloc = &n["status"]["allocatable"];
        assert_eq!(alloc["cpu"], "4", "{n}");
        assert_eq!(alloc["memory"], "8Gi");
        assert_eq!(alloc["pods"], "110");
        assert_eq!(n["status"]["capacity"], *alloc);
        let ready = condition(n, "Ready").expect("Ready condition");
        assert_eq!(ready["status"], "True");
        assert_eq!(ready["reason"], "KubeletReady");
        for c in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
            assert_eq!(condition(n, c).unwrap()["status"], "False");
        }
        assert_eq!(n["status"]["nodeInfo"]["kubeletVersion"], "v1.33.0-sim");
        assert_eq!(
            n["status"]["nodeInfo"]["containerRuntimeVersion"],
            "berth-sim://0.1"
        );
        assert_eq!(n["metadata"]["labels"]["kubernetes.io/os"], "linux");
        assert_eq!(
            n["metadata"]["labels"]["node.kubernetes.io/instance-type"],
            "berth-sim"
        );
        assert_eq!(
            n["metadata"]["labels"]["kubernetes.io/hostname"],
            n["metadata"]["name"]
        );
        assert!(n["status"]["addresses"][0]["address"]
            .as_str()
            .unwrap()
            .starts_with("10.250."));
    }

    // Leases are renewed; node status heartbeats move too.
    let lease_path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/sim-node-1";
    let lease = wait_for("lease", 10, || async { c.get(lease_path).await.ok() }).await;
    assert_eq!(lease["spec"]["holderIdentity"], "sim-node-1");
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 40);
    assert_eq!(lease["metadata"]["ownerReferences"][0]["kind"], "Node");
    let first = lease["spec"]["renewTime"].as_str().unwrap().to_string();
    let hb0 = condition(&nodes[0], "Ready").unwrap()["lastHeartbeatTime"].clone();
    let node0 = nodes[0]["metadata"]["name"].as_str().unwrap().to_string();
    wait_for("lease renewal", 10, || async {
        let l = c.get(lease_path).await.ok()?;
        (l["spec"]["renewTime"].as_str()? > first.as_str()).then_some(())
    })
    .await;
    wait_for("node heartbeat", 10, || async {
        let n = c.get(&format!("/api/v1/nodes/{node0}")).await.ok()?;
        (condition(&n, "Ready")?["lastHeartbeatTime"] != hb0).then_some(())
    })
    .await;

    // A bound pod becomes Running and Ready with an IP of its node's range.
    c.create(PODS, &pod("web", "sim-node-1")).await.unwrap();
    c.create(PODS, &pod("web2", "sim-node-1")).await.unwrap();
    let mut ips = Vec::new();
    for name in ["web", "web2"] {
        let p = wait_for("pod Running", 20, || async {
            let p = get_pod(&c, name).await?;
            (p["status"]["phase"] == "Running").then_some(p)
        })
        .await;
        assert_eq!(condition(&p, "Ready").unwrap()["status"], "True");
        for kind in [
            "PodReadyToStartContainers",
            "Initialized",
            "ContainersReady",
            "PodScheduled",
        ] {
            assert_eq!(condition(&p, kind).unwrap()["status"], "True", "{kind}");
        }
        let ip = p["status"]["podIP"].as_str().unwrap().to_string();
        assert!(ip.starts_with("10.244.1."), "{ip}");
        assert_eq!(p["status"]["hostIP"], "10.250.0.1");
        assert!(p["status"]["startTime"].is_string());
        let cs = p["status"]["containerStatuses"].as_array().unwrap();
        assert_eq!(cs.len(), 2);
        assert_eq!(cs[0]["name"], "app");
        assert_eq!(cs[0]["ready"], true);
        assert_eq!(cs[0]["started"], true);
        assert_eq!(cs[0]["restartCount"], 0);
        assert!(cs[0]["state"]["running"]["startedAt"].is_string());
        let uid = p["metadata"]["uid"].as_str().unwrap();
        assert_eq!(cs[1]["containerID"], format!("sim://{uid}-side"));
        ips.push(ip);
    }
    assert_ne!(ips[0], ips[1]);

    // A pod not bound to a simulated node is left alone.
    c.create(PODS, &pod("elsewhere", "real-node"))
        .await
        .unwrap();

    // A Job's pod runs, then Succeeds. (The Job is suspended so no controller acts on it;
    // it exists so the garbage collector keeps its pod.)
    let job = c
        .create(
            "/apis/batch/v1/namespaces/default/jobs",
            &json!({
                "apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": "batch"},
                "spec": {"suspend": true, "template": {"spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "work", "image": "busybox"}],
                }}},
            }),
        )
        .await
        .unwrap();
    let mut jp = pod("batch-x1", "sim-node-2");
    jp["spec"]["restartPolicy"] = json!("Never");
    jp["metadata"]["ownerReferences"] = json!([{
        "apiVersion": "batch/v1", "kind": "Job", "name": "batch",
        "uid": job["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true,
    }]);
    c.create(PODS, &jp).await.unwrap();
    let done = wait_for("job pod Succeeded", 20, || async {
        let p = get_pod(&c, "batch-x1").await?;
        (p["status"]["phase"] == "Succeeded").then_some(p)
    })
    .await;
    let term = &done["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(term["exitCode"], 0);
    assert_eq!(term["reason"], "Completed");
    assert_eq!(condition(&done, "Ready").unwrap()["status"], "False");

    // A graceful delete of a bound pod marks it; the node's final delete removes it.
    c.create(PODS, &pod("doomed", "sim-node-3")).await.unwrap();
    wait_for("doomed Running", 20, || async {
        let p = get_pod(&c, "doomed").await?;
        (p["status"]["phase"] == "Running").then_some(())
    })
    .await;
    let marked = c.delete(&format!("{PODS}/doomed"), None).await.unwrap();
    assert!(
        marked["metadata"]["deletionTimestamp"].is_string(),
        "graceful delete did not mark the pod: {marked}"
    );
    wait_for("doomed gone", 20, || async {
        match c.get(&format!("{PODS}/doomed")).await {
            Err(e) if e.is_not_found() => Some(()),
            _ => None,
        }
    })
    .await;

    let other = get_pod(&c, "elsewhere").await.unwrap();
    assert_eq!(other["status"]["phase"], "Pending");

    // kubectl sees the nodes as Ready with the simulated kubelet version.
    let kc = cluster.kubeconfig.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("/usr/bin/kubectl")
            .arg("--kubeconfig")
            .arg(&kc)
            .args(["get", "nodes"])
            .output()
    })
    .await
    .unwrap()
    .expect("kubectl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 3, "{text}");
    for r in &rows {
        assert!(r[0].starts_with("sim-node-"), "{text}");
        assert_eq!(r[1], "Ready", "{text}");
        assert_eq!(r[2], "<none>", "{text}");
        assert_eq!(r[4], "v1.33.0-sim", "{text}");
    }

    // Stopping leaves the nodes registered, as dead kubelets do.
    sim.stop().await.unwrap();
    let l = c.list("/api/v1/nodes", &[]).await.unwrap();
    assert_eq!(l["items"].as_array().unwrap().len(), 3);

    // A new simulator takes the existing nodes over; with cleanup it removes them.
    let sim = Sim::start(SimOptions {
        cleanup: true,
        ..opts(&cluster.kubeconfig, 3)
    });
    c.create(PODS, &pod("after-restart", "sim-node-1"))
        .await
        .unwrap();
    let p = wait_for("pod Running after restart", 20, || async {
        let p = get_pod(&c, "after-restart").await?;
        (p["status"]["phase"] == "Running").then_some(p)
    })
    .await;
    // The restarted simulator knows the IPs already in use on the node.
    let ip = p["status"]["podIP"].as_str().unwrap();
    assert!(
        ip.starts_with("10.244.1.") && !ips.iter().any(|i| i == ip),
        "{ip}"
    );
    let web = get_pod(&c, "web").await.unwrap();
    assert_eq!(web["status"]["podIP"], json!(ips[0]));
    sim.stop().await.unwrap();
    let l = c.list("/api/v1/nodes", &[]).await.unwrap();
    assert_eq!(l["items"].as_array().unwrap().len(), 0, "{l}");
    let leases = c
        .list(
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(leases["items"].as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_options_and_unreachable_server_fail_fast() {
    let dir = tempfile::Builder::new()
        .prefix("berth-t-sim-")
        .tempdir()
        .unwrap();
    let r = sim_nodes::run_until(
        SimOptions {
            cpu: "lots".into(),
            ..opts(&dir.path().join("none"), 1)
        },
        async {},
    )
    .await;
    assert!(matches!(r, Err(SimError::InvalidOption(_))), "{r:?}");
    let r = sim_nodes::run_until(opts(&dir.path().join("none"), 1), async {}).await;
    assert!(matches!(r, Err(SimError::Client(_))), "{r:?}");
    // Nothing listens on port 1: registration gives up after a few retries.
    let kc = dir.path().join("kubeconfig");
    std::fs::write(
        &kc,
        "apiVersion: v1\nkind: Config\ncurrent-context: x\nclusters:\n- name: x\n  cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}\ncontexts:\n- name: x\n  context: {cluster: x, user: u}\nusers:\n- name: u\n  user: {token: t}\n",
    )
    .unwrap();
    let t0 = Instant::now();
    let r = sim_nodes::run_until(opts(&kc, 2), async {}).await;
    assert!(matches!(r, Err(SimError::Node { .. })), "{r:?}");
    assert!(t0.elapsed() < Duration::from_secs(30));
}

/// Watch stream and error statuses against the real server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_verbs_and_watch() {
    let cluster = start_cluster().await;
    let c = Client::from_kubeconfig(&cluster.kubeconfig).unwrap();
    let cms = "/api/v1/namespaces/default/configmaps";
    let list = c.list(cms, &[]).await.unwrap();
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let mut w = c.watch(cms, &rv).await.unwrap();
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}});
    c.create(cms, &cm).await.unwrap();
    let e = c.create(cms, &cm).await.unwrap_err();
    assert!(e.is_already_exists(), "{e}");
    c.patch(
        &format!("{cms}/a"),
        kube_client::PatchKind::Merge,
        &json!({"data": {"k": "w"}}),
    )
    .await
    .unwrap();
    let mut got = c.get(&format!("{cms}/a")).await.unwrap();
    assert_eq!(got["data"]["k"], "w");
    got["data"]["k"] = json!("x");
    c.replace(&format!("{cms}/a"), &got).await.unwrap();
    let e = c.replace(&format!("{cms}/a"), &got).await.unwrap_err();
    assert!(e.is_conflict() && !e.is_already_exists(), "{e}");
    c.delete(&format!("{cms}/a"), None).await.unwrap();
    let e = c.get(&format!("{cms}/a")).await.unwrap_err();
    assert!(e.is_not_found());
    assert_eq!(e.status().unwrap().reason, "NotFound");

    let mut kinds = Vec::new();
    while kinds.len() < 4 {
        let ev = tokio::time::timeout(Duration::from_secs(10), w.next())
            .await
            .expect("event in time")
            .expect("stream open")
            .unwrap();
        match ev {
            kube_client::WatchEvent::Added(_) => kinds.push("ADDED"),
            kube_client::WatchEvent::Modified(_) => kinds.push("MODIFIED"),
            kube_client::WatchEvent::Deleted(_) => kinds.push("DELETED"),
            kube_client::WatchEvent::Bookmark(_) => {}
        }
    }
    assert_eq!(kinds, ["ADDED", "MODIFIED", "MODIFIED", "DELETED"]);

    // Paged listing returns every item.
    for i in 0..7 {
        let mut cm = cm.clone();
        cm["metadata"]["name"] = json!(format!("p{i}"));
        c.create(cms, &cm).await.unwrap();
    }
    let all = c.list_all(cms, &[], 3).await.unwrap();
    assert!(all["items"].as_array().unwrap().len() >= 7);
    assert!(all["metadata"]["continue"].is_null());
}

/// A task that ends once `want` pods named `prefix`* were seen Running (watching, so
/// measuring does not load the server with lists).
async fn count_running(c: &Client, prefix: &str, want: usize) -> JoinHandle<()> {
    let l = c.list(PODS, &[("limit", "1")]).await.unwrap();
    let rv = l["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let mut w = c.watch(PODS, &rv).await.unwrap();
    let prefix = prefix.to_string();
    tokio::spawn(async move {
        let mut seen = std::collections::HashSet::new();
        while seen.len() < want {
            let ev = tokio::time::timeout(Duration::from_secs(600), w.next())
                .await
                .expect("progress")
                .expect("watch open")
                .unwrap();
            let p = ev.object();
            let name = p["metadata"]["name"].as_str().unwrap_or("");
            if name.starts_with(&prefix) && p["status"]["phase"] == "Running" {
                seen.insert(name.to_string());
            }
        }
    })
}

/// Throughput: pods bound across 50 nodes until all are Running. Run with
/// `cargo test -p sim_nodes --release -- --ignored --nocapture throughput`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn throughput() {
    let pods: usize = std::env::var("SIM_PODS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let nodes: u32 = 50;
    let cluster = start_cluster().await;
    let c = Client::from_kubeconfig(&cluster.kubeconfig).unwrap();
    let sim = Sim::start(SimOptions {
        start_delay: Duration::ZERO,
        heartbeat: Duration::from_secs(10),
        ..opts(&cluster.kubeconfig, nodes)
    });
    wait_for("nodes", 60, || async {
        let l = c.list("/api/v1/nodes", &[]).await.ok()?;
        (l["items"].as_array()?.len() == nodes as usize).then_some(())
    })
    .await;
    let running = count_running(&c, "tp-", pods).await;
    let t0 = Instant::now();
    futures_util::stream::iter(0..pods)
        .map(|i| {
            let c = &c;
            async move {
                let p = pod(
                    &format!("tp-{i}"),
                    &format!("sim-node-{}", i as u32 % nodes + 1),
                );
                c.create(PODS, &p).await.unwrap();
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let created = t0.elapsed();
    running.await.unwrap();
    let all = t0.elapsed();
    eprintln!(
        "{pods} pods on {nodes} nodes: created in {created:?}, all Running after {all:?} ({:.0} pods/s end to end)",
        pods as f64 / all.as_secs_f64()
    );
    sim.stop().await.unwrap();

    // Status updates alone: pods bound while the simulator is down, then one start.
    futures_util::stream::iter(0..pods)
        .map(|i| {
            let c = &c;
            async move {
                let p = pod(
                    &format!("tq-{i}"),
                    &format!("sim-node-{}", i as u32 % nodes + 1),
                );
                c.create(PODS, &p).await.unwrap();
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let running = count_running(&c, "tq-", pods).await;
    let t1 = Instant::now();
    let sim = Sim::start(SimOptions {
        concurrency: std::env::var("SIM_CONCURRENCY")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(32),
        start_delay: Duration::ZERO,
        heartbeat: Duration::from_secs(10),
        ..opts(&cluster.kubeconfig, nodes)
    });
    running.await.unwrap();
    let t = t1.elapsed();
    eprintln!(
        "{pods} pending bound pods: all Running {t:?} after the simulator started ({:.0} status updates/s, including registration)",
        pods as f64 / t.as_secs_f64()
    );
    sim.stop().await.unwrap();
}
