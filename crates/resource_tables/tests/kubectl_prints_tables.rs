//! Runs the real kubectl against a tiny HTTP server that answers discovery and serves
//! Tables built by this crate, and checks what kubectl prints.

use std::convert::Infallible;
use std::path::Path;

use chrono::{Duration, Utc};
use http_body_util::Full;
use hyper::body::Bytes;
use resource_tables::{table, IncludeObject};
use serde_json::{json, Value};
use tokio::net::TcpListener;

const KUBECTL: &str = "/usr/bin/kubectl";

fn objects(plural: &str) -> Vec<Value> {
    // Ages are computed against the real clock, as the server does.
    let now = Utc::now();
    let ago = |s: i64| {
        (now - Duration::seconds(s))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    match plural {
        "pods" => vec![
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "web-0", "namespace": "default", "creationTimestamp": ago(3 * 3600 + 10)},
                "spec": {"nodeName": "node-1", "containers": [{"name": "app", "image": "nginx"}]},
                "status": {"phase": "Running", "podIPs": [{"ip": "10.244.0.5"}],
                    "containerStatuses": [{"name": "app", "ready": true, "restartCount": 3,
                        "state": {"running": {}},
                        "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(330)}}}]}}),
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "crash", "namespace": "default", "creationTimestamp": ago(600)},
                "spec": {"containers": [{"name": "app", "image": "busybox"}]},
                "status": {"phase": "Running", "containerStatuses": [{"name": "app", "ready": false,
                    "restartCount": 0, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}),
        ],
        "nodes" => vec![json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "node-1", "creationTimestamp": ago(2 * 86400),
                "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                "nodeInfo": {"kubeletVersion": "v1.32.0"}}})],
        _ => vec![],
    }
}

fn discovery(path: &str) -> Option<Value> {
    Some(match path {
        "/api" => json!({"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}),
        "/apis" => json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []}),
        "/api/v1" => json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
            {"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod",
             "verbs": ["get", "list"], "shortNames": ["po"]},
            {"name": "nodes", "singularName": "node", "namespaced": false, "kind": "Node",
             "verbs": ["get", "list"], "shortNames": ["no"]}
        ]}),
        "/version" => json!({"major": "1", "minor": "32", "gitVersion": "v1.32.0"}),
        _ => return None,
    })
}

async fn handle(
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let accept = req
        .headers()
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = if let Some(d) = discovery(&path) {
        Some(d)
    } else {
        let plural = match path.as_str() {
            "/api/v1/namespaces/default/pods" => Some("pods"),
            "/api/v1/nodes" => Some("nodes"),
            _ => None,
        };
        plural.map(|p| {
            if accept.contains("as=Table") {
                let mut t = table("", p, &objects(p), IncludeObject::Metadata, Utc::now());
                t["metadata"] = json!({"resourceVersion": "42"});
                t
            } else {
                json!({"kind": "List", "apiVersion": "v1", "metadata": {}, "items": objects(p)})
            }
        })
    };
    let (status, body) = match body {
        Some(b) => (200, b),
        None => (
            404,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}),
        ),
    };
    Ok(hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_default())
}

async fn kubectl(port: u16, home: &Path, args: &[&str]) -> String {
    let out = tokio::process::Command::new(KUBECTL)
        .arg(format!("--server=http://127.0.0.1:{port}"))
        .arg(format!("--cache-dir={}", home.join("cache").display()))
        .args(args)
        .env("HOME", home)
        .env_remove("KUBECONFIG")
        .kill_on_drop(true)
        .output()
        .await
        .expect("run kubectl");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Collapses runs of spaces so column widths don't matter.
fn squash(s: &str) -> Vec<String> {
    s.lines()
        .map(|l| {
            l.split("   ")
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_prints_server_side_tables() {
    if !Path::new(KUBECTL).exists() {
        eprintln!("skipping: {KUBECTL} not installed");
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(
                        hyper_util::rt::TokioIo::new(tcp),
                        hyper::service::service_fn(handle),
                    )
                    .await;
            });
        }
    });
    let home = tempfile::tempdir().unwrap();

    let pods = squash(&kubectl(port, home.path(), &["get", "pods", "-n", "default"]).await);
    assert_eq!(
        pods,
        [
            "NAME | READY | STATUS | RESTARTS | AGE",
            "web-0 | 1/1 | Running | 3 (5m30s ago) | 3h",
            "crash | 0/1 | CrashLoopBackOff | 0 | 10m",
        ],
        "{pods:#?}"
    );

    let wide = squash(
        &kubectl(
            port,
            home.path(),
            &["get", "pods", "-n", "default", "-o", "wide"],
        )
        .await,
    );
    assert_eq!(
        wide[0],
        "NAME | READY | STATUS | RESTARTS | AGE | IP | NODE | NOMINATED NODE | READINESS GATES"
    );
    assert_eq!(
        wide[1],
        "web-0 | 1/1 | Running | 3 (5m30s ago) | 3h | 10.244.0.5 | node-1 | <none> | <none>"
    );

    let nodes = squash(&kubectl(port, home.path(), &["get", "nodes"]).await);
    assert_eq!(
        nodes,
        [
            "NAME | STATUS | ROLES | AGE | VERSION",
            "node-1 | Ready,SchedulingDisabled | control-plane | 2d | v1.32.0",
        ],
        "{nodes:#?}"
    );
    server.abort();
}
