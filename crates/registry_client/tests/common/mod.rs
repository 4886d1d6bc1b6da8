//! Test fixtures: a throw-away `docker-registry` (distribution 2.8) on a loopback port,
//! image stores, and a progress recorder.

#![allow(dead_code)]

use std::fs;
use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod gate;

use image_store::{busybox_import_config, busybox_rootfs_tar, ImageId, ImageStore};
use registry_client::{ProgressEvent, RegistryClient, RegistryConfig};
use tempfile::TempDir;

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A running registry; killed (by PID) and its directory removed on drop.
pub struct Registry {
    child: Child,
    dir: TempDir,
    /// `127.0.0.1:<port>`.
    pub host: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Registry {
    /// Starts a registry; with `htpasswd` = `(user, password)` it requires Basic auth.
    pub fn start(htpasswd: Option<(&str, &str)>) -> Registry {
        Self::start_with(htpasswd, false)
    }

    /// [`Registry::start`], serving HTTPS only (self-signed certificate for 127.0.0.1)
    /// when `tls`.
    pub fn start_with(htpasswd: Option<(&str, &str)>, tls: bool) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("berth-t-reg-")
            .tempdir()
            .expect("tempdir");
        let mut auth = String::new();
        if let Some((user, pass)) = htpasswd {
            let hash = bcrypt::hash_with_result(pass, 4)
                .expect("bcrypt")
                .format_for_version(bcrypt::Version::TwoY);
            let path = dir.path().join("htpasswd");
            fs::write(&path, format!("{user}:{hash}\n")).expect("htpasswd");
            auth = format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                path.display()
            );
        }
        let mut tls_cfg = String::new();
        if tls {
            let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
            let out = Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                ])
                .args([
                    "-subj",
                    "/CN=127.0.0.1",
                    "-addext",
                    "subjectAltName=IP:127.0.0.1",
                ])
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert)
                .output()
                .expect("run openssl");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            tls_cfg = format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            );
        }
        for _ in 0..5 {
            let port = free_port();
            let config = format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n{tls_cfg}{auth}",
                dir.path().join("data").display()
            );
            let cfg_path = dir.path().join("config.yml");
            fs::write(&cfg_path, config).expect("config");
            let log = fs::File::create(dir.path().join("log")).expect("log");
            let mut child = Command::new(REGISTRY_BIN)
                .arg("serve")
                .arg(&cfg_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("start docker-registry");
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Registry {
                        child,
                        dir,
                        host: format!("127.0.0.1:{port}"),
                    };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break; // port taken meanwhile? try another
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let log = fs::read_to_string(dir.path().join("log")).unwrap_or_default();
        panic!("docker-registry did not start: {log}");
    }

    /// The TLS certificate (PEM) of a registry started with `tls`.
    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// The registry's storage root (`docker/registry/v2/...` below it).
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The file holding a blob in the registry's storage.
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        self.storage()
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// `docker://<host>/<path>` for skopeo.
    pub fn docker_url(&self, path: &str) -> String {
        format!("docker://{}/{path}", self.host)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temporary store (removed on drop).
pub struct TestStore {
    pub store: Arc<ImageStore>,
    pub dir: TempDir,
}

pub fn empty_store() -> TestStore {
    let dir = tempfile::Builder::new()
        .prefix("berth-t-store-")
        .tempdir()
        .expect("tempdir");
    let store = Arc::new(ImageStore::open(&dir.path().join("store")).expect("open store"));
    TestStore { store, dir }
}

/// A store holding `busybox:latest` imported from /bin/busybox.
pub fn busybox_store() -> (TestStore, ImageId) {
    let ts = empty_store();
    let tar = busybox_rootfs_tar(Path::new("/bin/busybox")).expect("busybox rootfs");
    let id = ts
        .store
        .import(
            &tar[..],
            busybox_import_config(),
            "Imported from -",
            Some("busybox:latest"),
        )
        .expect("import");
    (ts, id)
}

/// A client that reads no credentials from the host's ~/.docker.
pub fn client_with(dir: &Path, f: impl FnOnce(&mut RegistryConfig)) -> RegistryClient {
    let mut cfg = RegistryConfig {
        docker_config_dir: Some(dir.to_path_buf()),
        ..Default::default()
    };
    f(&mut cfg);
    RegistryClient::new(cfg).expect("client")
}

/// Records progress events.
#[derive(Default, Clone)]
pub struct Recorder(pub Arc<Mutex<Vec<ProgressEvent>>>);

impl Recorder {
    pub fn callback(&self) -> impl Fn(ProgressEvent) + Send + Sync + 'static {
        let events = self.0.clone();
        move |e| events.lock().unwrap().push(e)
    }

    pub fn events(&self) -> Vec<ProgressEvent> {
        self.0.lock().unwrap().clone()
    }

    pub fn count(&self, pred: impl Fn(&ProgressEvent) -> bool) -> usize {
        self.events().iter().filter(|e| pred(e)).count()
    }
}

/// Runs skopeo (without signature policy checks); panics with its output on failure.
pub fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// sha256 digest of bytes.
pub fn sha256(data: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// Writes a blob into an OCI layout; returns its descriptor JSON.
pub fn put_blob(layout: &Path, media_type: &str, data: &[u8]) -> serde_json::Value {
    let d = sha256(data);
    let dir = layout.join("blobs/sha256");
    fs::create_dir_all(&dir).expect("blobs dir");
    fs::write(dir.join(d.strip_prefix("sha256:").unwrap()), data).expect("blob");
    serde_json::json!({"mediaType": media_type, "digest": d, "size": data.len()})
}

/// A tar with one regular file.
pub fn one_file_tar(name: &str, content: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, name, content).expect("tar");
    b.into_inner().expect("tar")
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 3).expect("zstd")
}
