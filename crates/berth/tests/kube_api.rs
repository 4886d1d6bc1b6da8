//! The Kubernetes API server against the real kubectl 1.32 and the Python `kubernetes`
//! client: discovery, apply (create, then patch), get in every output format, watch,
//! describe, edit, patch types, label/annotate/scale/delete, strict validation and
//! Kubernetes-shaped errors; on the embedded store and on etcd; and crash durability.

mod common;

use common::kube::{examples, Etcd, KubeServer};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Debian's python, which has python3-kubernetes.
const PYTHON: &str = "/usr/bin/python3";

fn json_of(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn header(out: &str) -> Vec<String> {
    out.lines()
        .next()
        .unwrap_or("")
        .split("  ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn row<'a>(out: &'a str, name: &str) -> Vec<&'a str> {
    out.lines()
        .find(|l| l.split_whitespace().any(|w| w == name))
        .unwrap_or_else(|| panic!("no row {name} in:\n{out}"))
        .split_whitespace()
        .collect()
}

fn discovery_version_and_explain(s: &KubeServer) {
    let v = json_of(&s.kubectl_ok(&["version", "-o", "json"]));
    assert_eq!(v["serverVersion"]["major"], "1");
    assert!(v["serverVersion"]["gitVersion"]
        .as_str()
        .unwrap()
        .starts_with("v1."));
    let res = s.kubectl_ok(&["api-resources"]);
    assert_eq!(
        header(&res),
        ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    );
    let pods = row(&res, "pods");
    assert_eq!(pods, ["pods", "po", "v1", "true", "Pod"]);
    assert_eq!(
        row(&res, "deployments")[..3],
        ["deployments", "deploy", "apps/v1"]
    );
    assert!(res.contains("cronjobs") && res.contains("leases") && res.contains("endpointslices"));
    let versions = s.kubectl_ok(&["api-versions"]);
    for gv in [
        "apps/v1",
        "batch/v1",
        "v1",
        "coordination.k8s.io/v1",
        "discovery.k8s.io/v1",
    ] {
        assert!(
            versions.lines().any(|l| l == gv),
            "{gv} missing:\n{versions}"
        );
    }
    for probe in ["/healthz", "/livez", "/readyz"] {
        assert_eq!(s.kubectl_ok(&["get", "--raw", probe]).trim(), "ok");
    }
    let explain = s.kubectl_ok(&["explain", "deployment.spec"]);
    assert!(explain.contains("GROUP:      apps"), "{explain}");
    assert!(explain.contains("minReadySeconds"), "{explain}");
    assert!(explain.contains("replicas"), "{explain}");
    // Anonymous requests are refused with a Kubernetes Status.
    let out = std::process::Command::new("curl")
        .args([
            "-sk",
            &format!("{}/api/v1/namespaces/default/pods", s.url()),
        ])
        .output()
        .unwrap();
    let body = json_of(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["code"], 401);
    assert_eq!(body["reason"], "Unauthorized");
    // A bearer token from the token file works.
    let tokens = std::fs::read_to_string(s.dir.join("data/pki/tokens.csv")).unwrap();
    let token = tokens
        .lines()
        .find(|l| !l.starts_with('#'))
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    let out = std::process::Command::new("curl")
        .args([
            "-sk",
            "-H",
            &format!("Authorization: Bearer {token}"),
            &format!("{}/api/v1/namespaces", s.url()),
        ])
        .output()
        .unwrap();
    let body = json_of(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(body["kind"], "NamespaceList");
    // The admin kubeconfig is private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&s.kubeconfig)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

fn apply_demo(s: &KubeServer) {
    let dir = examples().join("k8s_demo");
    let out = s.kubectl_ok(&["apply", "-f", dir.to_str().unwrap()]);
    for line in [
        "service/ok-web-service created",
        "deployment.apps/ok-web-deployment created",
        "deployment.apps/ok-worker-deployment created",
        "secret/ok-secrets created",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
}

fn apply_get_and_reapply_patches(s: &KubeServer) {
    apply_demo(s);

    let deploys = s.kubectl_ok(&["get", "deploy"]);
    assert_eq!(
        header(&deploys),
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    );
    assert_eq!(row(&deploys, "ok-web-deployment")[1..4], ["0/2", "0", "0"]);
    let wide = s.kubectl_ok(&["get", "deployments", "-o", "wide"]);
    assert_eq!(
        header(&wide),
        [
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    assert_eq!(
        row(&wide, "ok-web-deployment")[5..],
        ["ok-v3-deploy", "server/debian", "app=ok-web"]
    );
    let svc = s.kubectl_ok(&["get", "svc"]);
    assert_eq!(
        header(&svc),
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ]
    );
    let r = row(&svc, "ok-web-service");
    assert_eq!(r[1], "NodePort");
    assert!(r[2].starts_with("10."), "{svc}");
    assert_eq!(r[3..5], ["<none>", "80:30080/TCP"]);
    let secrets = s.kubectl_ok(&["get", "secrets"]);
    assert_eq!(header(&secrets), ["NAME", "TYPE", "DATA", "AGE"]);
    assert_eq!(row(&secrets, "ok-secrets")[1..3], ["Opaque", "1"]);
    let all = s.kubectl_ok(&["get", "deploy,svc,secrets", "-A"]);
    assert!(
        all.contains("deployment.apps/ok-worker-deployment"),
        "{all}"
    );
    assert!(all.contains("service/ok-web-service"), "{all}");

    // -o json and -o yaml carry the server's defaults and metadata.
    let d = json_of(&s.kubectl_ok(&["get", "deployment", "ok-web-deployment", "-o", "json"]));
    assert_eq!(d["metadata"]["generation"], 1);
    assert!(d["metadata"]["uid"].as_str().is_some_and(|u| u.len() == 36));
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(d["spec"]["template"]["spec"]["dnsPolicy"], "ClusterFirst");
    assert!(
        d["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string()
    );
    let yaml = s.kubectl_ok(&["get", "secret", "ok-secrets", "-o", "yaml"]);
    assert!(
        yaml.contains("kind: Secret") && yaml.contains("key: bm90LWEtcmVhbC1rZXk="),
        "{yaml}"
    );

    // Someone labels the deployment; a re-apply with a changed manifest patches, keeping it.
    s.kubectl_ok(&["label", "deployment", "ok-web-deployment", "team=grading"]);
    let changed = std::fs::read_to_string(examples().join("k8s_demo/ok-web.yaml"))
        .unwrap()
        .replace("replicas: 2", "replicas: 4")
        .replace("value: prod", "value: staging");
    let out = s.kubectl_stdin(&["apply", "-f", "-"], &changed);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("deployment.apps/ok-web-deployment configured"));
    let d2 = json_of(&s.kubectl_ok(&["get", "deployment", "ok-web-deployment", "-o", "json"]));
    assert_eq!(d2["spec"]["replicas"], 4);
    assert_eq!(d2["metadata"]["labels"]["team"], "grading");
    assert_eq!(d2["metadata"]["generation"], 2);
    assert_eq!(d2["metadata"]["uid"], d["metadata"]["uid"]);
    let env = &d2["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(env[0]["value"], "staging");
    assert_eq!(env[1]["name"], "SECRET_KEY");
    // Unchanged apply is a no-op.
    let out = s.kubectl_stdin(&["apply", "-f", "-"], &changed);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("unchanged"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Selectors.
    let l = s.kubectl_ok(&["get", "deploy", "-l", "app=ok-worker", "-o", "name"]);
    assert_eq!(l.trim(), "deployment.apps/ok-worker-deployment");
    let f = s.kubectl_ok(&[
        "get",
        "deploy",
        "--field-selector",
        "metadata.name=ok-web-deployment",
        "-o",
        "name",
    ]);
    assert_eq!(f.trim(), "deployment.apps/ok-web-deployment");
    let err = s.kubectl_err(&["get", "pods", "--field-selector", "spec.bogus=1"]);
    assert!(
        err.contains("field label not supported: spec.bogus"),
        "{err}"
    );
}

fn patch_scale_set_image_edit_describe_delete(s: &KubeServer) {
    apply_demo(s);
    let d = "deployment/ok-web-deployment";
    s.kubectl_ok(&["set", "image", d, "ok-v3-deploy=server/debian:v2"]);
    let dep = json_of(&s.kubectl_ok(&["get", d, "-o", "json"]));
    let c = &dep["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "server/debian:v2");
    assert_eq!(
        c["env"][0]["name"], "OK_ENV",
        "set image keeps the rest of the container"
    );

    s.kubectl_ok(&[
        "patch",
        d,
        "--type=merge",
        "-p",
        r#"{"spec":{"minReadySeconds":5}}"#,
    ]);
    s.kubectl_ok(&[
        "patch",
        d,
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/replicas","value":3}]"#,
    ]);
    s.kubectl_ok(&[
        "patch",
        d,
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox"}]}}}}"#,
    ]);
    let dep = json_of(&s.kubectl_ok(&["get", d, "-o", "json"]));
    assert_eq!(dep["spec"]["minReadySeconds"], 5);
    assert_eq!(dep["spec"]["replicas"], 3);
    let names: Vec<&str> = dep["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"sidecar") && names.contains(&"ok-v3-deploy"),
        "{names:?}"
    );
    let err = s.kubectl_err(&[
        "patch",
        d,
        "--type=json",
        "-p",
        r#"[{"op":"test","path":"/spec/replicas","value":9}]"#,
    ]);
    assert!(
        err.contains("The request is invalid: testing value /spec/replicas failed"),
        "{err}"
    );

    s.kubectl_ok(&[
        "scale",
        "deployment/ok-worker-deployment",
        "--replicas",
        "10",
    ]);
    let w = json_of(&s.kubectl_ok(&["get", "deploy", "ok-worker-deployment", "-o", "json"]));
    assert_eq!(w["spec"]["replicas"], 10);
    s.kubectl_ok(&["annotate", d, "note=hello"]);
    s.kubectl_ok(&["label", d, "tier=web"]);
    s.kubectl_ok(&["label", d, "tier-"]);
    let dep = json_of(&s.kubectl_ok(&["get", d, "-o", "json"]));
    assert_eq!(dep["metadata"]["annotations"]["note"], "hello");
    assert!(dep["metadata"]["labels"].get("tier").is_none());

    // kubectl edit through an "editor" that rewrites the file.
    let out = s
        .kubectl_cmd()
        .args(["edit", "deployment", "ok-worker-deployment"])
        .env("KUBE_EDITOR", "sed -i s/replicas:\\ 10/replicas:\\ 7/")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let w = json_of(&s.kubectl_ok(&["get", "deploy", "ok-worker-deployment", "-o", "json"]));
    assert_eq!(w["spec"]["replicas"], 7);

    let desc = s.kubectl_ok(&["describe", "deployment", "ok-web-deployment"]);
    for needle in [
        "Name:                   ok-web-deployment",
        "Namespace:              default",
        "Selector:               app=ok-web",
        "RollingUpdateStrategy:  50% max unavailable, 1 max surge",
        "server/debian:v2",
    ] {
        assert!(desc.contains(needle), "missing {needle:?}:\n{desc}");
    }

    let out = s.kubectl_ok(&["delete", "deployment", "ok-web-deployment"]);
    assert!(
        out.contains("deployment.apps \"ok-web-deployment\" deleted"),
        "{out}"
    );
    let err = s.kubectl_err(&["get", "deployment", "ok-web-deployment"]);
    assert!(
        err.contains(
            "Error from server (NotFound): deployments.apps \"ok-web-deployment\" not found"
        ),
        "{err}"
    );
}

/// `kubectl get pods -w --output-watch-events` (plus extra args) in the background; its
/// lines arrive on the returned channel.
fn spawn_watch(
    s: &KubeServer,
    extra: &[&str],
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let mut child = s
        .kubectl_cmd()
        .args(["get", "pods", "-w", "--output-watch-events"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Collects lines until a DELETED line or 15 s.
fn collect_until_deleted(
    mut child: std::process::Child,
    rx: std::sync::mpsc::Receiver<String>,
) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = Vec::new();
    while Instant::now() < deadline && !seen.iter().any(|l: &String| l.starts_with("DELETED")) {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            seen.push(l);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    seen
}

fn watch_streams_changes(s: &KubeServer) {
    let all = spawn_watch(s, &[]);
    // A selector watch sees the pod appear when it starts matching.
    let selected = spawn_watch(s, &["-l", "x=y"]);
    std::thread::sleep(Duration::from_millis(700));
    s.kubectl_ok(&["run", "w1", "--image=busybox", "--restart=Never"]);
    s.kubectl_ok(&["label", "pod", "w1", "x=y"]);
    s.kubectl_ok(&["delete", "pod", "w1", "--wait=false"]);
    let seen = collect_until_deleted(all.0, all.1);
    let text = seen.join("\n");
    assert!(text.contains("EVENT") && text.contains("NAME"), "{text}");
    let has = |lines: &[String], kind: &str| {
        lines
            .iter()
            .any(|l| l.starts_with(kind) && l.contains("w1"))
    };
    assert!(
        seen.iter()
            .any(|l| l.starts_with("ADDED") && l.contains("w1") && l.contains("Pending")),
        "{text}"
    );
    assert!(has(&seen, "MODIFIED"), "{text}");
    assert!(has(&seen, "DELETED"), "{text}");
    let sel = collect_until_deleted(selected.0, selected.1);
    let text = sel.join("\n");
    assert!(has(&sel, "ADDED"), "{text}");
    assert!(
        !has(&sel, "MODIFIED"),
        "the label change is the pod's arrival: {text}"
    );
    assert!(has(&sel, "DELETED"), "{text}");
}

fn errors_are_kubernetes_shaped(s: &KubeServer) {
    // Unknown field, strict validation (kubectl's default).
    let bad = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c1\ndata:\n  a: b\nbogus: 1\n";
    let out = s.kubectl_stdin(&["apply", "-f", "-"], bad);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("unknown field \"bogus\""), "{err}");
    assert!(s
        .kubectl_err(&["get", "configmap", "c1"])
        .contains("NotFound"));
    // Missing selector.
    let nosel = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d1\nspec:\n  template:\n    metadata:\n      labels: {app: x}\n    spec:\n      containers: [{name: c, image: i}]\n";
    let out = s.kubectl_stdin(&["create", "-f", "-"], nosel);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("The Deployment \"d1\" is invalid")
            && err.contains("spec.selector: Required value"),
        "{err}"
    );
    // Invalid name.
    let err = s.kubectl_err(&["create", "configmap", "Bad_Name"]);
    assert!(
        err.contains("metadata.name: Invalid value: \"Bad_Name\""),
        "{err}"
    );
    // Conflict.
    s.kubectl_ok(&["create", "configmap", "c2", "--from-literal=a=b"]);
    let err = s.kubectl_err(&["create", "configmap", "c2", "--from-literal=a=b"]);
    assert!(
        err.contains("failed to create configmap: configmaps \"c2\" already exists"),
        "{err}"
    );
    // Through the generic (JSON) path kubectl shows the server's reason.
    let dup = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c2\n";
    let out = s.kubectl_stdin(&["create", "-f", "-"], dup);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Error from server (AlreadyExists): error when creating \"STDIN\": configmaps \"c2\" already exists"),
        "{err}"
    );
    // Missing namespace.
    let err = s.kubectl_err(&["create", "configmap", "c3", "-n", "nope"]);
    assert!(err.contains("namespaces \"nope\" not found"), "{err}");
    // Optimistic concurrency: an update with a stale resourceVersion is refused.
    let cm = json_of(&s.kubectl_ok(&["get", "cm", "c2", "-o", "json"]));
    s.kubectl_ok(&["label", "cm", "c2", "x=1"]);
    let stale = serde_json::to_string(&cm).unwrap();
    let out = s.kubectl_stdin(&["replace", "-f", "-"], &stale);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the object has been modified"), "{err}");
    // Oversized body.
    let big = format!("{{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{{\"name\":\"big\"}},\"data\":{{\"a\":\"{}\"}}}}", "x".repeat(4 << 20));
    std::fs::write(s.dir.join("big.json"), big).unwrap();
    let err = s.kubectl_err(&["create", "-f", s.dir.join("big.json").to_str().unwrap()]);
    assert!(
        err.contains("Request entity too large") || err.contains("too large"),
        "{err}"
    );
    // Malformed JSON straight to the API.
    let out = s.kubectl_stdin(
        &[
            "create",
            "--raw",
            "/api/v1/namespaces/default/configmaps",
            "-f",
            "-",
        ],
        "{not json",
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("BadRequest")
            || String::from_utf8_lossy(&out.stderr).contains("400")
    );
    // The server is still fine.
    s.kubectl_ok(&["get", "cm", "c2"]);
}

fn namespaces_pagination_and_extensions_v1beta1(s: &KubeServer) {
    s.kubectl_ok(&["create", "namespace", "team-a"]);
    for i in 0..25 {
        s.kubectl_ok(&["create", "configmap", &format!("cm-{i:02}"), "-n", "team-a"]);
    }
    // kubectl pages through with --chunk-size.
    let names = s.kubectl_ok(&["get", "cm", "-n", "team-a", "--chunk-size=7", "-o", "name"]);
    assert_eq!(names.lines().count(), 25, "{names}");
    let page = json_of(&s.kubectl_ok(&[
        "get",
        "--raw",
        "/api/v1/namespaces/team-a/configmaps?limit=10",
    ]));
    assert_eq!(page["items"].as_array().unwrap().len(), 10);
    let token = page["metadata"]["continue"].as_str().unwrap().to_string();
    let page2 = json_of(&s.kubectl_ok(&[
        "get",
        "--raw",
        &format!("/api/v1/namespaces/team-a/configmaps?limit=10&continue={token}"),
    ]));
    assert_eq!(page2["items"][0]["metadata"]["name"], "cm-10");

    let old = "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata:\n  name: legacy\nspec:\n  replicas: 1\n  template:\n    metadata:\n      labels: {app: legacy}\n    spec:\n      containers: [{name: c, image: server/debian}]\n";
    let out = s.kubectl_stdin(&["apply", "-n", "team-a", "-f", "-"], old);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("deprecated"),
        "warning header shown"
    );
    let d = json_of(&s.kubectl_ok(&[
        "get",
        "deployments.apps",
        "legacy",
        "-n",
        "team-a",
        "-o",
        "json",
    ]));
    assert_eq!(d["apiVersion"], "apps/v1");
    assert_eq!(d["spec"]["selector"]["matchLabels"]["app"], "legacy");

    let out = s.kubectl_ok(&["delete", "namespace", "team-a"]);
    assert!(out.contains("namespace \"team-a\" deleted"), "{out}");
    let err = s.kubectl_err(&["get", "namespace", "team-a"]);
    assert!(err.contains("NotFound"), "{err}");
    assert!(s
        .kubectl_ok(&["get", "cm", "-n", "team-a", "-o", "name"])
        .trim()
        .is_empty());
}

fn python_client_crud_and_watch(s: &KubeServer) {
    let script = r#"
import sys, threading
from kubernetes import client, config, watch
config.load_kube_config(config_file=sys.argv[1])
v1 = client.CoreV1Api()
apps = client.AppsV1Api()
cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py-cm", labels={"via": "python"}), data={"k": "v"})
created = v1.create_namespaced_config_map("default", cm)
assert created.metadata.uid
got = v1.read_namespaced_config_map("py-cm", "default")
assert got.data == {"k": "v"}
got.data["k"] = "v2"
v1.replace_namespaced_config_map("py-cm", "default", got)
v1.patch_namespaced_config_map("py-cm", "default", {"metadata": {"labels": {"patched": "yes"}}})
lst = v1.list_namespaced_config_map("default", label_selector="via=python")
assert [i.metadata.name for i in lst.items] == ["py-cm"], lst
assert lst.items[0].metadata.labels["patched"] == "yes"
try:
    v1.read_namespaced_config_map("nope", "default")
    raise SystemExit("expected 404")
except client.exceptions.ApiException as e:
    assert e.status == 404, e
events = []
def watcher(rv):
    w = watch.Watch()
    for ev in w.stream(v1.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=10):
        events.append((ev["type"], ev["object"].metadata.name))
        if ev["type"] == "DELETED":
            w.stop()
t = threading.Thread(target=watcher, args=(lst.metadata.resource_version,))
t.start()
import time; time.sleep(0.5)
v1.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py-cm2")))
v1.delete_namespaced_config_map("py-cm2", "default")
t.join(15)
assert ("ADDED", "py-cm2") in events and ("DELETED", "py-cm2") in events, events
dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "py-dep"},
       "spec": {"replicas": 2, "selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
apps.create_namespaced_deployment("default", dep)
sc = apps.read_namespaced_deployment_scale("py-dep", "default")
assert sc.spec.replicas == 2
apps.patch_namespaced_deployment_scale("py-dep", "default", {"spec": {"replicas": 5}})
assert apps.read_namespaced_deployment("py-dep", "default").spec.replicas == 5
print("python-ok")
"#;
    let out = std::process::Command::new(PYTHON)
        .args(["-c", script])
        .arg(&s.kubeconfig)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("python-ok"),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sigkill_mid_write_keeps_acknowledged_objects(s: &mut KubeServer) {
    // A writer creates config maps as fast as it can and prints each acknowledged name.
    let script = r#"
import sys
from kubernetes import client, config
config.load_kube_config(config_file=sys.argv[1])
v1 = client.CoreV1Api()
i = 0
while True:
    name = "ack-%05d" % i
    try:
        v1.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data={"n": str(i)}))
    except Exception:
        sys.exit(0)
    print(name, flush=True)
    i += 1
"#;
    let mut child = std::process::Command::new(PYTHON)
        .args(["-c", script])
        .arg(&s.kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    std::thread::sleep(Duration::from_millis(2500));
    s.kill9();
    let acked = reader.join().unwrap();
    let _ = child.wait();
    assert!(
        acked.len() > 5,
        "writer made too little progress: {}",
        acked.len()
    );
    s.spawn();
    let listed = json_of(&s.kubectl_ok(&["get", "cm", "-o", "json"]));
    let have: std::collections::HashSet<String> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    for name in &acked {
        assert!(have.contains(name), "{name} was acknowledged but is gone");
    }
}

/// Polls until `f` holds or the deadline passes.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

/// A ReplicaSet owned by `owner` (kind Deployment) and a Pod owned by the ReplicaSet.
fn make_dependents(s: &KubeServer, deploy: &str) {
    let d = json_of(&s.kubectl_ok(&["get", "deploy", deploy, "-o", "json"]));
    let uid = d["metadata"]["uid"].as_str().unwrap();
    let rs = format!(
        r#"{{"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{{"name":"{deploy}-rs","labels":{{"app":"{deploy}"}},
        "ownerReferences":[{{"apiVersion":"apps/v1","kind":"Deployment","name":"{deploy}","uid":"{uid}","controller":true,"blockOwnerDeletion":true}}]}},
        "spec":{{"replicas":1,"selector":{{"matchLabels":{{"app":"{deploy}"}}}},"template":{{"metadata":{{"labels":{{"app":"{deploy}"}}}},"spec":{{"containers":[{{"name":"c","image":"busybox"}}]}}}}}}}}"#
    );
    let out = s.kubectl_stdin(&["create", "-f", "-"], &rs);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json_of(&s.kubectl_ok(&["get", "rs", &format!("{deploy}-rs"), "-o", "json"]));
    let rs_uid = r["metadata"]["uid"].as_str().unwrap();
    let pod = format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{deploy}-pod","labels":{{"app":"{deploy}"}},
        "ownerReferences":[{{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"{deploy}-rs","uid":"{rs_uid}","controller":true,"blockOwnerDeletion":true}}]}},
        "spec":{{"containers":[{{"name":"c","image":"busybox"}}]}}}}"#
    );
    let out = s.kubectl_stdin(&["create", "-f", "-"], &pod);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn gone(s: &KubeServer, kind: &str, name: &str) -> bool {
    !s.kubectl(&["get", kind, name]).status.success()
}

fn cascading_delete_background_foreground_orphan(s: &KubeServer) {
    for name in ["bg", "fg", "orph"] {
        let yaml = format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers: [{{name: c, image: busybox}}]\n");
        let out = s.kubectl_stdin(&["apply", "-f", "-"], &yaml);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        make_dependents(s, name);
    }
    // Background (kubectl's default): the owner goes at once, its dependents after.
    s.kubectl_ok(&["delete", "deployment", "bg"]);
    eventually("bg's replicaset and pod to be collected", || {
        gone(s, "rs", "bg-rs") && gone(s, "pod", "bg-pod")
    });
    // Foreground: dependents first; kubectl waits for the owner to go.
    s.kubectl_ok(&["delete", "deployment", "fg", "--cascade=foreground"]);
    eventually("fg and its dependents to go", || {
        gone(s, "deploy", "fg") && gone(s, "rs", "fg-rs") && gone(s, "pod", "fg-pod")
    });
    // Orphan: dependents stay, without the owner reference.
    s.kubectl_ok(&["delete", "deployment", "orph", "--cascade=orphan"]);
    eventually("orph to go", || gone(s, "deploy", "orph"));
    let rs = json_of(&s.kubectl_ok(&["get", "rs", "orph-rs", "-o", "json"]));
    assert!(
        rs["metadata"]["ownerReferences"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "{rs}"
    );
    let pod = json_of(&s.kubectl_ok(&["get", "pod", "orph-pod", "-o", "json"]));
    assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet");
}

/// Runs a scenario against a server on the embedded store and, when etcd is installed,
/// against one on a throwaway etcd.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;
            #[test]
            fn embedded() {
                super::$name(&mut KubeServer::start());
            }
            #[test]
            fn etcd() {
                if !Etcd::available() {
                    eprintln!("skipped: no etcd");
                    return;
                }
                let etcd = Etcd::start();
                super::$name(&mut KubeServer::start_with(Some(etcd.endpoint.clone())));
            }
        }
    )*};
}

on_both_stores!(
    discovery_version_and_explain,
    apply_get_and_reapply_patches,
    patch_scale_set_image_edit_describe_delete,
    watch_streams_changes,
    errors_are_kubernetes_shaped,
    namespaces_pagination_and_extensions_v1beta1,
    python_client_crud_and_watch,
    cascading_delete_background_foreground_orphan,
    sigkill_mid_write_keeps_acknowledged_objects,
);

/// After compaction, a watch from a compacted revision and a stale continue token get
/// 410 Gone (reason Expired), and a fresh list and watch still work.
fn compaction_expires_old_revisions(s: &KubeServer) {
    let start = json_of(&s.kubectl_ok(&["get", "--raw", "/api/v1/namespaces/default/configmaps"]));
    let old_rv = start["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    for i in 0..6 {
        s.kubectl_ok(&["create", "configmap", &format!("early-{i}")]);
    }
    let page = json_of(&s.kubectl_ok(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/configmaps?limit=2",
    ]));
    let token = page["metadata"]["continue"].as_str().unwrap().to_string();
    for i in 0..20 {
        s.kubectl_ok(&["create", "configmap", &format!("late-{i}")]);
    }
    // Compaction runs every second here; give it two ticks past the writes.
    eventually("the continue token to expire", || {
        let out = s.kubectl(&[
            "get",
            "--raw",
            &format!("/api/v1/namespaces/default/configmaps?limit=2&continue={token}"),
        ]);
        String::from_utf8_lossy(&out.stderr).contains("Expired")
    });
    let out = s.kubectl(&[
        "get",
        "--raw",
        &format!("/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={old_rv}&timeoutSeconds=2"),
    ]);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("410") || all.contains("Expired"), "{all}");
    let names = s.kubectl_ok(&["get", "cm", "-o", "name"]);
    assert_eq!(
        names
            .lines()
            .filter(|l| l.contains("configmap/early-") || l.contains("configmap/late-"))
            .count(),
        26
    );
}

#[test]
fn compaction_expires_old_revisions_embedded() {
    compaction_expires_old_revisions(&KubeServer::start_with_args(
        None,
        &["--compaction-interval=1", "--compaction-keep=5"],
    ));
}

#[test]
fn compaction_expires_old_revisions_etcd() {
    if !Etcd::available() {
        eprintln!("skipped: no etcd");
        return;
    }
    let etcd = Etcd::start();
    compaction_expires_old_revisions(&KubeServer::start_with_args(
        Some(etcd.endpoint.clone()),
        &["--compaction-interval=1", "--compaction-keep=5"],
    ));
}

/// Kills a child process by PID when dropped.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sim_nodes_join_run_pods_and_finish_graceful_deletes() {
    let s = KubeServer::start();
    let _sim = ChildGuard(
        std::process::Command::new(common::BERTH)
            .args([
                "sim-nodes",
                "--count",
                "3",
                "--cpu",
                "2",
                "--memory",
                "4Gi",
                "--log-level",
                "warn",
            ])
            .arg("--kubeconfig")
            .arg(&s.kubeconfig)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    eventually("three Ready nodes", || {
        let out = s.kubectl(&["get", "nodes"]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.lines().filter(|l| l.contains(" Ready ")).count() == 3
    });
    let nodes = s.kubectl_ok(&["get", "nodes", "-o", "wide"]);
    assert_eq!(
        header(&nodes)[..5],
        ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    );
    let n1 = row(&nodes, "sim-node-1");
    assert_eq!(n1[1..3], ["Ready", "<none>"]);
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: on-node\nspec:\n  nodeName: sim-node-2\n  containers: [{name: c, image: busybox}]\n";
    let out = s.kubectl_stdin(&["apply", "-f", "-"], pod);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually("the pod to run", || {
        let out = s.kubectl(&["get", "pod", "on-node"]);
        String::from_utf8_lossy(&out.stdout).contains("1/1     Running")
    });
    let wide = s.kubectl_ok(&["get", "pod", "on-node", "-o", "wide"]);
    let r = row(&wide, "on-node");
    assert!(r[5].starts_with("10.244.2."), "{wide}");
    assert_eq!(r[6], "sim-node-2");
    // A bound pod terminates gracefully: the node agent confirms and it goes.
    let out = s.kubectl_ok(&["delete", "pod", "on-node"]);
    assert!(out.contains("pod \"on-node\" deleted"), "{out}");
    assert!(gone(&s, "pod", "on-node"));
}
