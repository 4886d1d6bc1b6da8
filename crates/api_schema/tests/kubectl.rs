//! Runs the real kubectl against a small test HTTP server that serves discovery from
//! `api_resources` and the OpenAPI documents from `api_schema`, and checks that kubectl
//! explains resources from them and decides that the server validates fields itself.
//!
//! The discovery handlers here are test scaffolding, not berth's API server.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

const KUBECTL: &str = "/usr/bin/kubectl";

/// One request the server saw.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    uri: String,
    accept: String,
    content_type: String,
    body: Bytes,
}

/// How the test server behaves.
#[derive(Clone, Default)]
struct Options {
    /// Answer `/openapi/v2` requests that do not accept JSON with 406.
    strict_v2: bool,
    /// What a GET of a deployment returns (404 when None) and a PATCH answers.
    existing: Option<Value>,
}

#[derive(Clone)]
struct Server {
    seen: Arc<Mutex<Vec<Seen>>>,
    opts: Options,
}

fn json_response(status: StatusCode, v: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn bytes_response(bytes: &'static [u8]) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        bytes,
    )
        .into_response()
}

fn not_found(what: &str) -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("{what} not found"), "reason": "NotFound", "code": 404,
        }),
    )
}

fn resource_list(group: &str, version: &str) -> Option<Value> {
    let rs = api_resources::in_group_version(group, version);
    if rs.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for r in rs {
        resources.push(json!({
            "name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
            "kind": r.kind, "verbs": r.verbs, "shortNames": r.short_names,
            "categories": r.categories,
        }));
        for s in r.subresources {
            let mut sub = json!({
                "name": format!("{}/{}", r.plural, s.name), "singularName": "",
                "namespaced": r.namespaced, "kind": s.kind, "verbs": s.verbs,
            });
            if s.group != r.group || s.version != r.version {
                sub["group"] = s.group.into();
                sub["version"] = s.version.into();
            }
            resources.push(sub);
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources,
    }))
}

fn group_list() -> Value {
    let groups: Vec<Value> = api_resources::groups()
        .iter()
        .map(|g| {
            let versions: Vec<Value> = g
                .versions
                .iter()
                .map(|v| json!({ "groupVersion": format!("{}/{v}", g.group), "version": v }))
                .collect();
            json!({ "name": g.group, "versions": versions, "preferredVersion": versions[0] })
        })
        .collect();
    json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups })
}

async fn handle(
    axum::extract::State(srv): axum::extract::State<Server>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header_str = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let accept = header_str(header::ACCEPT);
    srv.seen.lock().unwrap().push(Seen {
        method: method.clone(),
        uri: uri.to_string(),
        accept: accept.clone(),
        content_type: header_str(header::CONTENT_TYPE),
        body: body.clone(),
    });
    let path = uri.path().trim_end_matches('/');
    if method == Method::GET {
        let parts: Vec<&str> = path.split('/').skip(1).collect();
        return match parts.as_slice() {
            ["version"] => json_response(
                StatusCode::OK,
                &json!({
                    "major": "1", "minor": "33", "gitVersion": "v1.33.0", "platform": "linux/amd64",
                }),
            ),
            ["api"] => json_response(
                StatusCode::OK,
                &json!({
                    "kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1" }],
                }),
            ),
            ["apis"] => json_response(StatusCode::OK, &group_list()),
            ["api", v] => match resource_list("", v) {
                Some(l) => json_response(StatusCode::OK, &l),
                None => not_found(path),
            },
            ["apis", g, v] => match resource_list(g, v) {
                Some(l) => json_response(StatusCode::OK, &l),
                None => not_found(path),
            },
            ["openapi", "v2"] => {
                if srv.opts.strict_v2 && !accept.contains("json") && !accept.contains("*/*") {
                    return (StatusCode::NOT_ACCEPTABLE, "only application/json").into_response();
                }
                bytes_response(api_schema::openapi_v2_json())
            }
            ["openapi", "v3"] => json_response(StatusCode::OK, api_schema::openapi_v3_index()),
            ["openapi", "v3", rest @ ..] => {
                let p = rest.join("/");
                match api_schema::openapi_v3_json(&p) {
                    Some(b) => bytes_response(b),
                    None => not_found(&p),
                }
            }
            [.., "deployments", _] => match &srv.opts.existing {
                Some(obj) => json_response(StatusCode::OK, obj),
                None => not_found(path),
            },
            _ => not_found(path),
        };
    }
    if method == Method::PATCH {
        if let Some(obj) = &srv.opts.existing {
            return json_response(StatusCode::OK, obj);
        }
    }
    if method == Method::POST {
        // Echo the object, as a create would.
        return (
            StatusCode::CREATED,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
    }
    not_found(path)
}

/// A running test server plus a scratch HOME / kubeconfig for kubectl.
struct Harness {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    dir: tempfile::TempDir,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl Harness {
    async fn start(opts: Options) -> Harness {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let app = axum::Router::new().fallback(handle).with_state(Server {
            seen: seen.clone(),
            opts,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        let dir = tempfile::Builder::new()
            .prefix("berth-t-api-schema-")
            .tempdir()
            .unwrap();
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: http://127.0.0.1:{port}\n\
             contexts:\n- name: t\n  context:\n    cluster: t\n    user: t\n    namespace: default\n\
             current-context: t\nusers:\n- name: t\n  user: {{}}\n"
        );
        std::fs::write(dir.path().join("kubeconfig"), kubeconfig).unwrap();
        Harness {
            port,
            seen,
            dir,
            _shutdown: tx,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs kubectl with the given arguments; returns (success, stdout, stderr).
    async fn kubectl(&self, args: &[&str]) -> (bool, String, String) {
        let out = tokio::process::Command::new(KUBECTL)
            .arg(format!(
                "--kubeconfig={}",
                self.path("kubeconfig").display()
            ))
            .arg(format!("--server=http://127.0.0.1:{}", self.port))
            .arg(format!("--cache-dir={}", self.path("cache").display()))
            .args(args)
            .env("HOME", self.dir.path())
            .env_remove("KUBECONFIG")
            .kill_on_drop(true)
            .output()
            .await
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn have_kubectl() -> bool {
    if Path::new(KUBECTL).exists() {
        true
    } else {
        eprintln!("{KUBECTL} missing; skipping");
        false
    }
}

const DEPLOYMENT_YAML: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: c
        image: nginx
";

fn assert_contains(out: &str, wanted: &[&str]) {
    for w in wanted {
        assert!(out.contains(w), "{w:?} missing from:\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_explain_reads_openapi_v3() {
    if !have_kubectl() {
        return;
    }
    let h = Harness::start(Options::default()).await;

    let (ok, out, err) = h.kubectl(&["explain", "deployment.spec"]).await;
    assert!(ok, "{err}");
    assert_contains(
        &out,
        &[
            "GROUP:      apps",
            "KIND:       Deployment",
            "FIELD: spec <DeploymentSpec>",
            "DeploymentSpec is the specification of the desired behavior",
            "replicas\t<integer>",
            "Number of desired pods.",
            "strategy\t<DeploymentStrategy>",
            "selector\t<LabelSelector> -required-",
            "template\t<PodTemplateSpec> -required-",
        ],
    );

    let (ok, out, err) = h
        .kubectl(&["explain", "pods.spec.containers", "--recursive"])
        .await;
    assert!(ok, "{err}");
    let head: String = out.lines().take(40).collect::<Vec<_>>().join("\n");
    assert_contains(
        &head,
        &[
            "KIND:       Pod",
            "VERSION:    v1",
            "FIELD: containers <[]Container>",
            "List of containers belonging to the pod.",
            "args\t<[]string>",
            "env\t<[]EnvVar>",
            "    name\t<string> -required-",
        ],
    );
    assert_contains(&out, &["image\t<string>", "ports\t<[]ContainerPort>"]);

    let (ok, out, err) = h
        .kubectl(&["explain", "deployment", "--api-version=apps/v1"])
        .await;
    assert!(ok, "{err}");
    assert_contains(
        &out,
        &[
            "GROUP:      apps",
            "VERSION:    v1",
            "Deployment enables declarative updates for Pods and ReplicaSets.",
            "metadata\t<ObjectMeta>",
            "status\t<DeploymentStatus>",
        ],
    );

    // The deprecated alias is explained from the same schema.
    let (ok, out, err) = h
        .kubectl(&["explain", "deployment", "--api-version=extensions/v1beta1"])
        .await;
    assert!(ok, "{err}");
    assert_contains(
        &out,
        &[
            "GROUP:      extensions",
            "VERSION:    v1beta1",
            "spec\t<DeploymentSpec>",
        ],
    );

    // IntOrString is named, as against Kubernetes.
    let (ok, out, err) = h
        .kubectl(&["explain", "deployment.spec.strategy.rollingUpdate"])
        .await;
    assert!(ok, "{err}");
    assert_contains(&out, &["maxSurge\t<IntOrString>"]);

    // A core resource by short name, a cluster-scoped one, and an unknown field.
    let (ok, out, err) = h.kubectl(&["explain", "svc.spec.ports"]).await;
    assert!(ok, "{err}");
    assert_contains(
        &out,
        &["FIELD: ports <[]ServicePort>", "targetPort\t<IntOrString>"],
    );
    let (ok, out, err) = h.kubectl(&["explain", "nodes.spec.taints"]).await;
    assert!(ok, "{err}");
    assert_contains(&out, &["effect\t<string> -required-"]);
    let (ok, _, err) = h.kubectl(&["explain", "deployment.spec.nope"]).await;
    assert!(!ok);
    assert!(err.contains("does not exist"), "{err}");

    // Only the v3 index and the documents of the explained group versions were fetched.
    let openapi: Vec<String> = h
        .seen()
        .into_iter()
        .filter(|s| s.uri.starts_with("/openapi"))
        .map(|s| s.uri)
        .collect();
    assert!(openapi.iter().any(|u| u.starts_with("/openapi/v3?")));
    let apps_hash = api_schema::openapi_v3_hash("apis/apps/v1").unwrap();
    assert!(
        openapi
            .iter()
            .any(|u| u.starts_with(&format!("/openapi/v3/apis/apps/v1?hash={apps_hash}"))),
        "{openapi:?}"
    );
    assert!(
        !openapi.iter().any(|u| u.starts_with("/openapi/v2")),
        "{openapi:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_leaves_field_validation_to_the_server() {
    if !have_kubectl() {
        return;
    }
    let h = Harness::start(Options::default()).await;
    let file = h.path("deployment.yaml");
    std::fs::write(&file, DEPLOYMENT_YAML).unwrap();
    let file = file.display().to_string();

    let (ok, out, err) = h
        .kubectl(&["apply", "--dry-run=server", "-v=8", "-f", &file])
        .await;
    assert!(ok, "{err}");
    assert!(
        out.contains("deployment.apps/web created (server dry run)"),
        "{out}"
    );
    // -v=8 shows what kubectl asked for: JSON for the v3 documents.
    assert!(err.contains("url=\"http://127.0.0.1"), "{err}");
    let seen = h.seen();
    let v3 = seen
        .iter()
        .find(|s| s.uri.starts_with("/openapi/v3/apis/apps/v1?hash="))
        .expect("the apps/v1 document was fetched");
    assert!(v3.accept.contains("application/json"), "{}", v3.accept);
    let post = seen
        .iter()
        .find(|s| s.method == Method::POST)
        .expect("a create was sent");
    assert!(
        post.uri
            .starts_with("/apis/apps/v1/namespaces/default/deployments?"),
        "{}",
        post.uri
    );
    assert!(post.uri.contains("fieldValidation=Strict"), "{}", post.uri);
    assert!(post.uri.contains("dryRun=All"), "{}", post.uri);
    assert!(!seen.iter().any(|s| s.uri.starts_with("/openapi/v2")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_builds_strategic_merge_patches_from_v3() {
    if !have_kubectl() {
        return;
    }
    // The live object was applied with two containers; the file now has one.
    let last = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": "web", "namespace": "default" },
        "spec": {
            "selector": { "matchLabels": { "app": "web" } },
            "template": {
                "metadata": { "labels": { "app": "web" } },
                "spec": { "containers": [
                    { "name": "c", "image": "nginx:1" },
                    { "name": "d", "image": "busybox" },
                ] },
            },
        },
    });
    let live = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {
            "name": "web", "namespace": "default", "resourceVersion": "5",
            "annotations": { "kubectl.kubernetes.io/last-applied-configuration": last.to_string() },
        },
        "spec": last["spec"].clone(),
    });
    let h = Harness::start(Options {
        existing: Some(live),
        ..Options::default()
    })
    .await;
    let file = h.path("deployment.yaml");
    std::fs::write(&file, DEPLOYMENT_YAML).unwrap();
    let (ok, out, err) = h
        .kubectl(&["apply", "-f", &file.display().to_string()])
        .await;
    assert!(ok, "{err}");
    assert!(out.contains("deployment.apps/web configured"), "{out}");
    let seen = h.seen();
    let patch = seen
        .iter()
        .find(|s| s.method == Method::PATCH)
        .expect("a patch was sent");
    assert!(
        patch.uri.contains("fieldValidation=Strict"),
        "{}",
        patch.uri
    );
    assert!(
        patch.content_type == "application/strategic-merge-patch+json",
        "{}",
        patch.content_type
    );
    let body: Value = serde_json::from_slice(&patch.body).unwrap();
    let spec = &body["spec"]["template"]["spec"];
    // Only the merge key from the schema lets kubectl write these directives.
    assert_eq!(
        spec["$setElementOrder/containers"],
        json!([{ "name": "c" }])
    );
    let containers = spec["containers"].as_array().unwrap();
    assert!(
        containers.contains(&json!({ "$patch": "delete", "name": "d" })),
        "{body}"
    );
    assert!(
        containers.contains(&json!({ "name": "c", "image": "nginx" })),
        "{body}"
    );
}

/// kubectl only reads `/openapi/v2` for `explain --output=plaintext-openapiv2` (and as a
/// fallback when v3 is missing), and then accepts nothing but protobuf.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_asks_for_protobuf_openapi_v2() {
    if !have_kubectl() {
        return;
    }
    for strict in [false, true] {
        let h = Harness::start(Options {
            strict_v2: strict,
            ..Options::default()
        })
        .await;
        let (ok, _, err) = h
            .kubectl(&["explain", "deployment.spec", "--output=plaintext-openapiv2"])
            .await;
        let v2: Vec<Seen> = h
            .seen()
            .into_iter()
            .filter(|s| s.uri.starts_with("/openapi/v2"))
            .collect();
        assert!(!v2.is_empty());
        for s in &v2 {
            assert_eq!(
                s.accept, "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
                "{s:?}"
            );
        }
        eprintln!(
            "openapi v2 answered with {}: kubectl ok={ok}: {}",
            if strict { "406" } else { "JSON" },
            err.trim()
        );
    }
}
