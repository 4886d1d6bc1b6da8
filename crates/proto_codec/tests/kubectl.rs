//! Decodes request bodies produced by the real kubectl (`/usr/bin/kubectl`, skipped when
//! absent) and compares them with the JSON kubectl prints for the same command with
//! `--dry-run=client -o json`.
//!
//! A plain-HTTP server on 127.0.0.1 serves legacy discovery (from `api_resources`' catalogue
//! plus a few extra kinds), records each POST body and answers 201 with the decoded object.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

const KUBECTL: &str = "/usr/bin/kubectl";

/// Kinds kubectl can create that are not (yet) in the served catalogue:
/// (group, version, plural, kind, namespaced).
const EXTRA: &[(&str, &str, &str, &str, bool)] = &[
    (
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        true,
    ),
    ("rbac.authorization.k8s.io", "v1", "roles", "Role", true),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "RoleBinding",
        true,
    ),
    ("", "v1", "resourcequotas", "ResourceQuota", true),
    ("networking.k8s.io", "v1", "ingresses", "Ingress", true),
    (
        "scheduling.k8s.io",
        "v1",
        "priorityclasses",
        "PriorityClass",
        false,
    ),
];

struct Resource {
    group: String,
    version: String,
    plural: String,
    kind: String,
    namespaced: bool,
}

fn resources() -> Vec<Resource> {
    let mut out: Vec<Resource> = api_resources::all()
        .iter()
        .map(|r| Resource {
            group: r.group.into(),
            version: r.version.into(),
            plural: r.plural.into(),
            kind: r.kind.into(),
            namespaced: r.namespaced,
        })
        .collect();
    for &(group, version, plural, kind, namespaced) in EXTRA {
        out.push(Resource {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            kind: kind.into(),
            namespaced,
        });
    }
    out
}

fn discovery(path: &str, resources: &[Resource]) -> Option<Value> {
    let gv_resources = |group: &str, version: &str| {
        let list: Vec<Value> = resources
            .iter()
            .filter(|r| r.group == group && r.version == version)
            .map(|r| {
                json!({"name": r.plural, "singularName": "", "namespaced": r.namespaced,
                       "kind": r.kind, "verbs": ["create", "get", "list", "delete"]})
            })
            .collect();
        let gv = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        (!list.is_empty()).then(|| {
            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                   "resources": list})
        })
    };
    match path {
        "/api" => Some(json!({"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                            "serverAddress": "127.0.0.1"}]})),
        "/apis" => {
            let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for r in resources.iter().filter(|r| !r.group.is_empty()) {
                let versions = groups.entry(&r.group).or_default();
                if !versions.contains(&r.version.as_str()) {
                    versions.push(&r.version);
                }
            }
            let groups: Vec<Value> = groups
                .into_iter()
                .map(|(g, vs)| {
                    let versions: Vec<Value> = vs
                        .iter()
                        .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                        .collect();
                    json!({"name": g, "versions": versions.clone(),
                           "preferredVersion": versions[0]})
                })
                .collect();
            Some(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
        }
        "/api/v1" => gv_resources("", "v1"),
        _ => {
            let rest = path.strip_prefix("/apis/")?;
            let (group, version) = rest.split_once('/')?;
            gv_resources(group, version)
        }
    }
}

/// One recorded POST.
#[derive(Debug, Clone)]
struct Post {
    path: String,
    content_type: String,
    body: Vec<u8>,
}

struct Server {
    port: u16,
    posts: Arc<Mutex<Vec<Post>>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let posts = Arc::new(Mutex::new(Vec::new()));
        let resources = Arc::new(resources());
        let recorded = posts.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let recorded = recorded.clone();
                let resources = resources.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &recorded, &resources);
                });
            }
        });
        Server { port, posts }
    }

    fn take_posts(&self) -> Vec<Post> {
        std::mem::take(&mut *self.posts.lock().expect("lock"))
    }
}

fn serve(conn: TcpStream, posts: &Mutex<Vec<Post>>, resources: &[Resource]) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut conn = conn;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let mut content_length = 0usize;
        let mut content_type = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => content_length = value.trim().parse().unwrap_or(0),
                    "content-type" => content_type = value.trim().to_string(),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; content_length];
        reader.read_exact(&mut body)?;
        let path = target.split('?').next().unwrap_or("").to_string();
        let (status, reply) = if method == "POST" {
            let reply = match proto_codec::decode_object(&body) {
                Ok(v) => (201, v),
                Err(e) => (
                    500,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                           "message": e.to_string(), "code": 500}),
                ),
            };
            posts.lock().expect("lock").push(Post {
                path,
                content_type,
                body,
            });
            reply
        } else {
            match discovery(&path, resources) {
                Some(v) => (200, v),
                None => (
                    404,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                           "reason": "NotFound", "code": 404}),
                ),
            }
        };
        let reply = serde_json::to_vec(&reply).expect("json");
        write!(
            conn,
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            reply.len()
        )?;
        conn.write_all(&reply)?;
        conn.flush()?;
    }
}

fn kubectl(server: &Server, cache: &Path, args: &[&str]) -> std::process::Output {
    Command::new(KUBECTL)
        .arg(format!("--server=http://127.0.0.1:{}", server.port))
        .arg("--kubeconfig=/dev/null")
        .arg(format!("--cache-dir={}", cache.display()))
        .args(args)
        .env("HOME", cache)
        .env_remove("KUBECONFIG")
        .output()
        .expect("run kubectl")
}

/// Drops `creationTimestamp: null`, which kubectl 1.32 writes and 1.35's `omitzero` (the
/// Go sources the table was generated from) drops.
fn without_null_timestamps(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, v)| !(k == "creationTimestamp" && v.is_null()))
                .map(|(k, v)| (k, without_null_timestamps(v)))
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(without_null_timestamps).collect())
        }
        other => other,
    }
}

#[test]
fn kubectl_create_bodies_decode_like_client_side_json() {
    if !Path::new(KUBECTL).exists() {
        eprintln!("skipping: {KUBECTL} not found");
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("berth-t-proto-codec-")
        .tempdir()
        .expect("tempdir");
    let binary = dir.path().join("blob.bin");
    std::fs::write(&binary, [0u8, 159, 146, 150, 255]).expect("write");
    let from_file = format!("--from-file=blob={}", binary.display());
    let server = Server::start();
    let commands: Vec<Vec<&str>> = vec![
        vec![
            "create",
            "configmap",
            "c",
            "--from-literal=a=b",
            "--from-literal=x=y",
        ],
        vec!["create", "configmap", "bin", &from_file],
        vec!["create", "secret", "generic", "s", "--from-literal=pw=x"],
        vec![
            "create",
            "secret",
            "generic",
            "s2",
            "--from-literal=pw=x",
            "--type=my/type",
        ],
        vec!["create", "namespace", "n"],
        vec![
            "create",
            "deployment",
            "d",
            "--image=busybox",
            "--replicas=3",
            "--port=80",
        ],
        vec![
            "create",
            "deployment",
            "d0",
            "--image=busybox",
            "--replicas=0",
        ],
        vec!["create", "job", "j", "--image=busybox", "--", "echo", "hi"],
        vec![
            "create",
            "cronjob",
            "cj",
            "--image=busybox",
            "--schedule=*/1 * * * *",
        ],
        vec!["create", "service", "nodeport", "sv", "--tcp=80:8080"],
        vec![
            "create",
            "service",
            "clusterip",
            "headless",
            "--clusterip=None",
        ],
        vec![
            "create",
            "service",
            "externalname",
            "ext",
            "--external-name=example.com",
        ],
        vec!["create", "serviceaccount", "sa"],
        vec![
            "create",
            "poddisruptionbudget",
            "pdb",
            "--selector=app=x",
            "--min-available=50%",
        ],
        vec![
            "create",
            "poddisruptionbudget",
            "pdb2",
            "--selector=app=x",
            "--max-unavailable=1",
        ],
        vec![
            "create",
            "role",
            "r",
            "--verb=get,list",
            "--resource=pods,deployments.apps",
        ],
        vec![
            "create",
            "rolebinding",
            "rb",
            "--role=r",
            "--user=alice",
            "--serviceaccount=default:sa",
        ],
        vec!["create", "quota", "q", "--hard=cpu=1,memory=1Gi,pods=2"],
        vec![
            "create",
            "ingress",
            "ing",
            "--rule=foo.com/bar=svc:8080,tls=cert",
        ],
        vec![
            "create",
            "priorityclass",
            "pc",
            "--value=1000",
            "--description=high",
        ],
    ];
    let mut failures = Vec::new();
    for args in &commands {
        let name = args.join(" ");
        let created = kubectl(&server, dir.path(), args);
        let posts = server.take_posts();
        if !created.status.success() || posts.len() != 1 {
            failures.push(format!(
                "{name}: kubectl failed ({}), {} POSTs: {}",
                created.status,
                posts.len(),
                String::from_utf8_lossy(&created.stderr)
            ));
            continue;
        }
        let post = &posts[0];
        assert_eq!(
            post.content_type,
            proto_codec::MEDIA_TYPE,
            "{name}: POST {}",
            post.path
        );
        let decoded = match proto_codec::decode_object(&post.body) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{name}: decode failed: {e}"));
                continue;
            }
        };
        // Flags go before a `--` (after it everything is the container's command).
        let mut dry_args = args.clone();
        let at = dry_args
            .iter()
            .position(|a| *a == "--")
            .unwrap_or(dry_args.len());
        dry_args.splice(at..at, ["--dry-run=client", "-o", "json"]);
        let printed = kubectl(&server, dir.path(), &dry_args);
        assert!(
            printed.status.success(),
            "{name} --dry-run=client: {}",
            String::from_utf8_lossy(&printed.stderr)
        );
        let client: Value = serde_json::from_slice(&printed.stdout).expect("kubectl JSON");
        let (decoded, client) = (
            without_null_timestamps(decoded),
            without_null_timestamps(client),
        );
        if decoded != client {
            failures.push(format!("{name}:\n decoded: {decoded}\n  client: {client}"));
        } else {
            eprintln!("ok: {name}: {decoded}");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Commands without a client-side dry run: compare with the expected JSON.
#[test]
fn kubectl_token_and_access_review_bodies() {
    if !Path::new(KUBECTL).exists() {
        eprintln!("skipping: {KUBECTL} not found");
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("berth-t-proto-codec-")
        .tempdir()
        .expect("tempdir");
    let server = Server::start();
    let cases: Vec<(Vec<&str>, &str, Value)> = vec![
        (
            vec!["create", "token", "sa", "--duration=10m", "--audience=aud"],
            "/api/v1/namespaces/default/serviceaccounts/sa/token",
            json!({"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                   "metadata": {},
                   "spec": {"audiences": ["aud"], "expirationSeconds": 600,
                            "boundObjectRef": null},
                   "status": {"token": "", "expirationTimestamp": null}}),
        ),
        (
            vec![
                "auth",
                "can-i",
                "list",
                "deployments.apps",
                "--subresource=scale",
            ],
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            json!({"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
                   "metadata": {},
                   "spec": {"resourceAttributes": {"namespace": "default", "verb": "list",
                                                   "group": "apps", "resource": "deployments",
                                                   "subresource": "scale"}},
                   "status": {"allowed": false}}),
        ),
    ];
    let mut failures = Vec::new();
    for (args, path, want) in cases {
        let name = args.join(" ");
        // can-i exits 1 ("no"): only the request matters.
        let _ = kubectl(&server, dir.path(), &args);
        let posts = server.take_posts();
        let Some(post) = posts.iter().find(|p| p.path == path) else {
            failures.push(format!("{name}: no POST to {path}: {posts:?}"));
            continue;
        };
        assert_eq!(post.content_type, proto_codec::MEDIA_TYPE, "{name}");
        match proto_codec::decode_object(&post.body) {
            Ok(got)
                if without_null_timestamps(got.clone())
                    == without_null_timestamps(want.clone()) =>
            {
                eprintln!("ok: {name}: {got}");
            }
            Ok(got) => failures.push(format!("{name}:\n decoded: {got}\n    want: {want}")),
            Err(e) => failures.push(format!("{name}: decode failed: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
