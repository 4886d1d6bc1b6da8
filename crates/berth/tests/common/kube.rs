//! A private `berth server` per test (its own data dir, free loopback port, kubeconfig
//! and kubectl cache dir under a unique `bk-` prefix), optionally on a throwaway etcd, and
//! helpers to run the real kubectl against it. Processes are killed by PID and directories
//! removed on drop.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;

pub const KUBECTL: &str = "/usr/bin/kubectl";
pub const ETCD: &str = "/usr/bin/etcd";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

fn unique(prefix: &str) -> String {
    let r: u32 = rand::thread_rng().gen();
    format!("{prefix}-{:06x}", r & 0xff_ffff)
}

/// An etcd 3.4 process on free loopback ports.
pub struct Etcd {
    child: Child,
    dir: PathBuf,
    pub endpoint: String,
}

impl Etcd {
    pub fn available() -> bool {
        Path::new(ETCD).exists()
    }

    pub fn start() -> Etcd {
        let dir = PathBuf::from("/tmp").join(unique("bk-etcd"));
        std::fs::create_dir_all(&dir).unwrap();
        for _ in 0..5 {
            let (cport, pport) = (free_port(), free_port());
            let log = std::fs::File::create(dir.join("etcd.log")).unwrap();
            let mut child = Command::new(ETCD)
                .args(["--name", "default", "--data-dir"])
                .arg(dir.join("data"))
                .arg(format!("--listen-client-urls=http://127.0.0.1:{cport}"))
                .arg(format!("--advertise-client-urls=http://127.0.0.1:{cport}"))
                .arg(format!("--listen-peer-urls=http://127.0.0.1:{pport}"))
                .arg(format!(
                    "--initial-advertise-peer-urls=http://127.0.0.1:{pport}"
                ))
                .arg(format!(
                    "--initial-cluster=default=http://127.0.0.1:{pport}"
                ))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start etcd");
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", cport)).is_ok() {
                    return Etcd {
                        child,
                        dir,
                        endpoint: format!("http://127.0.0.1:{cport}"),
                    };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("etcd did not start; see {}", dir.join("etcd.log").display());
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub struct KubeServer {
    pub dir: PathBuf,
    pub port: u16,
    pub kubeconfig: PathBuf,
    pub datastore: Option<String>,
    /// Extra `berth server` flags.
    pub extra_args: Vec<String>,
    child: Option<Child>,
}

impl KubeServer {
    /// A server on the embedded store.
    pub fn start() -> KubeServer {
        Self::start_with(None)
    }

    /// A server on etcd when `datastore` names its endpoint.
    pub fn start_with(datastore: Option<String>) -> KubeServer {
        Self::start_with_args(datastore, &[])
    }

    /// A server with extra flags.
    pub fn start_with_args(datastore: Option<String>, extra: &[&str]) -> KubeServer {
        let dir = PathBuf::from("/tmp").join(unique("bk"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut s = KubeServer {
            kubeconfig: dir.join("admin.kubeconfig"),
            dir,
            port: 0,
            datastore,
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            child: None,
        };
        s.spawn();
        s
    }

    /// (Re)starts the server process on the same state.
    pub fn spawn(&mut self) {
        for _ in 0..5 {
            let port = free_port();
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join("server.log"))
                .unwrap();
            let mut cmd = Command::new(super::BERTH);
            cmd.arg("server")
                .arg(format!("--listen=127.0.0.1:{port}"))
                .arg("--data-dir")
                .arg(self.dir.join("data"))
                .arg("--write-kubeconfig")
                .arg(&self.kubeconfig)
                .arg("--log-level=info");
            cmd.args(&self.extra_args);
            if let Some(ep) = &self.datastore {
                cmd.arg(format!("--datastore-endpoint={ep}"));
            }
            let mut child = cmd
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start berth server");
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() && self.kubeconfig.exists() {
                    self.port = port;
                    self.child = Some(child);
                    return;
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("berth server did not start:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// SIGKILLs the server.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// A kubectl command with this server's kubeconfig and a private cache dir.
    pub fn kubectl_cmd(&self) -> Command {
        let mut c = Command::new(KUBECTL);
        c.env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", &self.dir)
            .arg(format!("--cache-dir={}", self.dir.join("kcache").display()));
        c
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_cmd().args(args).output().expect("run kubectl")
    }

    /// Runs kubectl and returns stdout, failing the test with its stderr otherwise.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed ({:?}):\nstdout: {}\nstderr: {}\nserver log tail: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tail(&self.log(), 20)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl expecting failure; returns stderr.
    pub fn kubectl_err(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            !out.status.success(),
            "kubectl {args:?} should have failed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// kubectl with a manifest on stdin.
    pub fn kubectl_stdin(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut child = self
            .kubectl_cmd()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Drop for KubeServer {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!("server log tail:\n{}", tail(&self.log(), 40));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The repository's examples directory.
pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}
