use super::*;

use std::os::unix::fs::PermissionsExt;
use std::sync::Mutex;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

fn sans_of(pem: &str) -> Vec<San> {
    let der = pem_to_der(Path::new("x"), pem).unwrap();
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let mut out = Vec::new();
    for n in &cert
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
    {
        match n {
            GeneralName::DNSName(d) => out.push(San::Dns(d.to_string())),
            GeneralName::IPAddress(b) if b.len() == 4 => {
                out.push(San::Ip(IpAddr::from([b[0], b[1], b[2], b[3]])))
            }
            GeneralName::IPAddress(b) if b.len() == 16 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(b);
                out.push(San::Ip(IpAddr::from(a)))
            }
            _ => {}
        }
    }
    out
}

#[test]
fn create_then_reload_keeps_everything_and_modes_are_private() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    let a = Pki::load_or_create(&dir, &[]).unwrap();
    assert_eq!(mode(&dir), 0o700);
    for f in [CA_KEY, SERVER_KEY, ADMIN_KEY, TOKENS] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
    for f in [CA_CRT, SERVER_CRT, ADMIN_CRT] {
        assert_eq!(mode(&dir.join(f)), 0o644, "{f}");
    }
    // No temporary files left behind.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 7, "{names:?}");

    let server_before = read(&dir.join(SERVER_CRT));
    let admin_before = read(&dir.join(ADMIN_CRT));
    let b = Pki::load_or_create(&dir, &[]).unwrap();
    assert_eq!(a.ca_pem(), b.ca_pem());
    assert_eq!(a.admin_token(), b.admin_token());
    assert_eq!(read(&dir.join(SERVER_CRT)), server_before);
    assert_eq!(read(&dir.join(ADMIN_CRT)), admin_before);
    assert_eq!(a.admin_token().len(), 64);

    // CA properties.
    let der = pem_to_der(Path::new("ca"), a.ca_pem()).unwrap();
    let (_, ca) = X509Certificate::from_der(&der).unwrap();
    assert!(ca.is_ca());
    let cn: Vec<_> = ca
        .subject()
        .iter_common_name()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert_eq!(cn, vec![CA_CN]);
    let years = (ca.validity().not_after.timestamp() - now_ts()) / (365 * 86_400);
    assert!((9..=10).contains(&years), "{years}");

    // The token file is in Kubernetes' format and authenticates the admin.
    let line = read(&dir.join(TOKENS));
    assert!(line.starts_with(&format!(
        "{},admin,admin,\"system:masters\"",
        a.admin_token()
    )));
    let u = a.tokens().authenticate(a.admin_token()).unwrap();
    assert_eq!(u.name, "admin");
    assert_eq!(u.groups, vec![MASTERS_GROUP, AUTHENTICATED_GROUP]);
    assert!(a.tokens().authenticate("nope").is_none());
}

#[test]
fn default_sans_are_present() {
    let tmp = tempfile::tempdir().unwrap();
    Pki::load_or_create(tmp.path(), &[]).unwrap();
    let sans = sans_of(&read(&tmp.path().join(SERVER_CRT)));
    for s in DEFAULT_SANS {
        assert!(
            sans.contains(&San::parse(s).unwrap()),
            "{s} missing: {sans:?}"
        );
    }
    if let Some(h) = host_name() {
        assert!(sans.contains(&San::Dns(h)));
    }
}

#[test]
fn san_change_reissues_only_the_server_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    Pki::load_or_create(dir, &[]).unwrap();
    let ca = read(&dir.join(CA_CRT));
    let admin = read(&dir.join(ADMIN_CRT));
    let server = read(&dir.join(SERVER_CRT));
    let tokens = read(&dir.join(TOKENS));

    let extra = vec!["api.berth.example".to_string(), "10.1.2.3".to_string()];
    Pki::load_or_create(dir, &extra).unwrap();
    let server2 = read(&dir.join(SERVER_CRT));
    assert_ne!(server, server2);
    assert_eq!(read(&dir.join(CA_CRT)), ca);
    assert_eq!(read(&dir.join(ADMIN_CRT)), admin);
    assert_eq!(read(&dir.join(TOKENS)), tokens);
    let sans = sans_of(&server2);
    assert!(sans.contains(&San::Dns("api.berth.example".into())));
    assert!(sans.contains(&San::Ip("10.1.2.3".parse().unwrap())));

    // Same wish again (different order, case): nothing changes.
    let extra_again = vec!["10.1.2.3".to_string(), "API.berth.example".to_string()];
    Pki::load_or_create(dir, &extra_again).unwrap();
    assert_eq!(read(&dir.join(SERVER_CRT)), server2);
    // A subset of what is there also keeps it.
    Pki::load_or_create(dir, &[]).unwrap();
    assert_eq!(read(&dir.join(SERVER_CRT)), server2);

    assert!(matches!(
        Pki::load_or_create(dir, &["bad name!".to_string()]),
        Err(PkiError::InvalidSan(_))
    ));
}

#[test]
fn damaged_or_foreign_leaves_are_reissued_and_ca_key_loss_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    Pki::load_or_create(dir, &[]).unwrap();
    let ca = read(&dir.join(CA_CRT));

    // A server cert from another CA is replaced.
    let other = tempfile::tempdir().unwrap();
    Pki::load_or_create(other.path(), &[]).unwrap();
    std::fs::copy(other.path().join(SERVER_CRT), dir.join(SERVER_CRT)).unwrap();
    std::fs::copy(other.path().join(SERVER_KEY), dir.join(SERVER_KEY)).unwrap();
    // A garbled admin cert is replaced.
    std::fs::write(dir.join(ADMIN_CRT), "garbage").unwrap();
    let p = Pki::load_or_create(dir, &[]).unwrap();
    assert_eq!(read(&dir.join(CA_CRT)), ca);
    assert_ne!(
        read(&dir.join(SERVER_CRT)),
        read(&other.path().join(SERVER_CRT))
    );
    assert!(read(&dir.join(ADMIN_CRT)).starts_with("-----BEGIN CERTIFICATE-----"));
    let admin_der = pem_to_der(Path::new("a"), p.admin_credentials().0).unwrap();
    assert_eq!(user_from_client_cert(&admin_der).unwrap().name, "admin");

    // Losing ca.crt but keeping the key re-creates the certificate; leaves stay valid.
    let server = read(&dir.join(SERVER_CRT));
    std::fs::remove_file(dir.join(CA_CRT)).unwrap();
    Pki::load_or_create(dir, &[]).unwrap();
    assert_eq!(read(&dir.join(SERVER_CRT)), server);

    // Losing the CA key is fatal rather than silently replacing the CA.
    std::fs::remove_file(dir.join(CA_KEY)).unwrap();
    assert!(matches!(
        Pki::load_or_create(dir, &[]),
        Err(PkiError::MissingCaKey { .. })
    ));
}

#[test]
fn existing_token_file_is_kept_and_extended() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    files::ensure_private_dir(dir).unwrap();
    std::fs::write(dir.join(TOKENS), "tok1,bob,u1,\"dev\"").unwrap();
    std::fs::set_permissions(dir.join(TOKENS), std::fs::Permissions::from_mode(0o644)).unwrap();
    let p = Pki::load_or_create(dir, &[]).unwrap();
    assert_eq!(mode(&dir.join(TOKENS)), 0o600);
    assert_eq!(p.tokens().authenticate("tok1").unwrap().name, "bob");
    assert_eq!(
        p.tokens().authenticate(p.admin_token()).unwrap().name,
        "admin"
    );
    let text = read(&dir.join(TOKENS));
    assert!(text.starts_with("tok1,bob,u1,\"dev\"\n"));
    // Reload keeps the same admin token.
    let q = Pki::load_or_create(dir, &[]).unwrap();
    assert_eq!(q.admin_token(), p.admin_token());
    assert_eq!(read(&dir.join(TOKENS)), text);

    std::fs::write(dir.join(TOKENS), "broken\n").unwrap();
    assert!(Pki::load_or_create(dir, &[]).is_err());
}

#[test]
fn issued_client_cert_maps_to_user_and_groups() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Pki::load_or_create(tmp.path(), &[]).unwrap();
    let (cert, key) = p
        .issue_client_cert("system:node:n1", &["system:nodes", "extra"])
        .unwrap();
    assert!(key.contains("PRIVATE KEY"));
    let der = pem_to_der(Path::new("c"), &cert).unwrap();
    let u = user_from_client_cert(&der).unwrap();
    assert_eq!(u.name, "system:node:n1");
    assert_eq!(u.uid, "");
    assert_eq!(u.groups, vec!["system:nodes", "extra", AUTHENTICATED_GROUP]);
    assert!(p.issue_client_cert("", &[]).is_err());
    assert!(p.issue_client_cert("x", &[""]).is_err());
    assert!(user_from_client_cert(b"not a cert").is_none());
}

#[test]
fn kubeconfig_has_kubectl_shape_and_private_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Pki::load_or_create(&tmp.path().join("pki"), &[]).unwrap();
    let path = tmp.path().join("kube").join("config");
    p.write_admin_kubeconfig(&path, "https://127.0.0.1:6443")
        .unwrap();
    assert_eq!(mode(&path), 0o600);
    let text = read(&path);
    assert!(text.contains("    server: https://127.0.0.1:6443\n"));
    assert!(text.contains("current-context: berth\n"));
    assert!(text.contains("    user: berth-admin\n"));
    let b64 = base64::engine::general_purpose::STANDARD;
    let ca_line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("certificate-authority-data: "))
        .unwrap();
    assert_eq!(
        String::from_utf8(b64.decode(ca_line).unwrap()).unwrap(),
        p.ca_pem()
    );
    // URLs that are not plain-safe are quoted.
    assert_eq!(yaml_scalar("https://[::1]:6443"), "https://[::1]:6443");
    assert_eq!(yaml_scalar("https://h:1/a b#c"), "\"https://h:1/a b#c\"");
}

// ---------- TLS ----------

fn client_config(ca_der: &[u8], cert: Option<(&str, &str)>) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ca_der.to_vec())).unwrap();
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let cfg = match cert {
        Some((c, k)) => b
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(c.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(k.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => b.with_no_client_auth(),
    };
    Arc::new(cfg)
}

/// Serves one TLS connection: answers "hello" with the authenticated user name (or "anon")
/// and reports the server-side result.
async fn one_connection(
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
) -> (Result<Option<UserInfo>, String>, Result<String, String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(server);
    let srv = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        match acceptor.accept(tcp).await {
            Ok(mut tls) => {
                let user = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(|c| user_from_client_cert(c));
                let mut buf = [0u8; 5];
                if let Err(e) = tls.read_exact(&mut buf).await {
                    return Err(e.to_string());
                }
                let name = user
                    .as_ref()
                    .map(|u| u.name.clone())
                    .unwrap_or("anon".into());
                let _ = tls.write_all(name.as_bytes()).await;
                let _ = tls.shutdown().await;
                Ok(user)
            }
            Err(e) => Err(e.to_string()),
        }
    });
    let connector = tokio_rustls::TlsConnector::from(client);
    let tcp = TcpStream::connect(addr).await.unwrap();
    let client_result = async {
        let mut tls = connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .map_err(|e| e.to_string())?;
        tls.write_all(b"hello").await.map_err(|e| e.to_string())?;
        let mut out = String::new();
        tls.read_to_string(&mut out)
            .await
            .map_err(|e| e.to_string())?;
        if out.is_empty() {
            return Err("closed without answer".to_string());
        }
        Ok(out)
    }
    .await;
    let server_result = srv.await.unwrap();
    (server_result, client_result)
}

#[tokio::test]
async fn tls_admin_cert_is_verified_and_maps_to_masters() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Pki::load_or_create(tmp.path(), &[]).unwrap();
    let (c, k) = p.admin_credentials();
    let (srv, cli) = one_connection(
        p.server_config().unwrap(),
        client_config(p.ca_der(), Some((c, k))),
    )
    .await;
    let user = srv.unwrap().expect("peer certificate");
    assert_eq!(user.name, "admin");
    assert_eq!(user.groups, vec![MASTERS_GROUP, AUTHENTICATED_GROUP]);
    assert_eq!(cli.unwrap(), "admin");
}

#[tokio::test]
async fn tls_without_client_cert_still_connects() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Pki::load_or_create(tmp.path(), &[]).unwrap();
    let (srv, cli) =
        one_connection(p.server_config().unwrap(), client_config(p.ca_der(), None)).await;
    assert_eq!(srv.unwrap(), None);
    assert_eq!(cli.unwrap(), "anon");
    let cfg = p.server_config().unwrap();
    assert_eq!(
        cfg.alpn_protocols,
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    );
}

#[tokio::test]
async fn tls_client_cert_from_another_ca_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Pki::load_or_create(tmp.path(), &[]).unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let other = Pki::load_or_create(other_dir.path(), &[]).unwrap();
    let (c, k) = other.issue_client_cert("admin", &[MASTERS_GROUP]).unwrap();
    let (srv, cli) = one_connection(
        p.server_config().unwrap(),
        client_config(p.ca_der(), Some((&c, &k))),
    )
    .await;
    assert!(
        srv.is_err(),
        "server accepted a foreign client cert: {srv:?}"
    );
    assert!(cli.is_err(), "client got an answer: {cli:?}");
}

#[tokio::test]
async fn tls_issued_node_cert_is_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Pki::load_or_create(tmp.path(), &[]).unwrap();
    let (c, k) = p
        .issue_client_cert("system:node:n1", &["system:nodes"])
        .unwrap();
    let (srv, cli) = one_connection(
        p.server_config().unwrap(),
        client_config(p.ca_der(), Some((&c, &k))),
    )
    .await;
    assert_eq!(
        srv.unwrap().unwrap().groups,
        vec!["system:nodes", AUTHENTICATED_GROUP]
    );
    assert_eq!(cli.unwrap(), "system:node:n1");
}

// ---------- the real kubectl ----------

const KUBECTL: &str = "/usr/bin/kubectl";

/// (request path, client-certificate user, negotiated ALPN)
type Seen = (String, Option<String>, String);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_kubectl_accepts_certs_and_kubeconfig() {
    use http_body_util::Full;
    use hyper::body::Bytes;

    if !Path::new(KUBECTL).exists() {
        eprintln!("skipping: {KUBECTL} not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let p = Pki::load_or_create(&tmp.path().join("pki"), &[]).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let kubeconfig = tmp.path().join("kubeconfig");
    p.write_admin_kubeconfig(&kubeconfig, &format!("https://127.0.0.1:{}", addr.port()))
        .unwrap();

    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let acceptor = tokio_rustls::TlsAcceptor::from(p.server_config().unwrap());
    let seen2 = seen.clone();
    let server = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let seen = seen2.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let (_, conn) = tls.get_ref();
                let user = conn
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(|c| user_from_client_cert(c))
                    .map(|u| u.name);
                let alpn = conn
                    .alpn_protocol()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .unwrap_or_default();
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let seen = seen.clone();
                        let user = user.clone();
                        let alpn = alpn.clone();
                        async move {
                            let path = req.uri().path().to_string();
                            seen.lock().unwrap().push((path.clone(), user, alpn));
                            let (status, body) = match path.as_str() {
                                "/version" => (
                                    200,
                                    serde_json::json!({
                                        "major": "1", "minor": "32",
                                        "gitVersion": "v1.32.0-berth-pki-test",
                                        "gitCommit": "0000000000000000000000000000000000000000",
                                        "gitTreeState": "clean",
                                        "buildDate": "2025-01-01T00:00:00Z",
                                        "goVersion": "go1.23.0", "compiler": "gc",
                                        "platform": "linux/amd64"
                                    }),
                                ),
                                "/api" => (
                                    200,
                                    serde_json::json!({
                                        "kind": "APIVersions", "versions": ["v1"],
                                        "serverAddressByClientCIDRs": [
                                            {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}
                                        ]
                                    }),
                                ),
                                _ => (
                                    404,
                                    serde_json::json!({
                                        "kind": "Status", "apiVersion": "v1", "status": "Failure",
                                        "reason": "NotFound", "code": 404
                                    }),
                                ),
                            };
                            Ok::<_, std::convert::Infallible>(
                                hyper::Response::builder()
                                    .status(status)
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from(body.to_string())))
                                    .unwrap(),
                            )
                        }
                    },
                );
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                .await;
            });
        }
    });

    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let out = tokio::process::Command::new(KUBECTL)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--cache-dir")
        .arg(tmp.path().join("cache"))
        .args(["version", "-o", "json", "--request-timeout=20s"])
        .env("HOME", &home)
        .env_remove("KUBECONFIG")
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    server.abort();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kubectl failed: {stderr}\n{stdout}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        v["serverVersion"]["gitVersion"], "v1.32.0-berth-pki-test",
        "{stdout}"
    );
    let seen = seen.lock().unwrap();
    let version_req = seen
        .iter()
        .find(|(p, _, _)| p == "/version")
        .expect("kubectl asked /version");
    assert_eq!(
        version_req.1.as_deref(),
        Some("admin"),
        "client cert not presented"
    );
    assert_eq!(version_req.2, "h2", "kubectl should negotiate HTTP/2");
}
