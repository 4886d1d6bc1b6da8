//! Test harness: a private berth daemon per test, with its own state
//! directories, socket and cgroup parent under a unique `bt-` prefix, and a
//! guard that removes everything it made (containers, shims, mounts,
//! cgroups, directories) even when the test fails.

#![allow(dead_code)]

pub mod kube;
pub mod registry;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");
pub const DOCKER: &str = "/usr/local/bin/docker";

pub fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// Skips the calling test (with a message) unless running as root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !common::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

pub struct Daemon {
    pub prefix: String,
    pub root: PathBuf,
    pub exec_root: PathBuf,
    pub socket: PathBuf,
    pub runtime: String,
    /// Subnet of this daemon's default bridge (unique per test).
    pub subnet: String,
    child: Option<Child>,
}

impl Daemon {
    /// Starts a daemon with the default (libcontainer) runtime.
    pub fn start() -> Daemon {
        Self::start_with_runtime("berth")
    }

    /// Starts a daemon (default runtime) with `busybox:latest` imported.
    pub fn with_busybox() -> Daemon {
        let d = Self::start();
        d.import_busybox();
        d
    }

    pub fn start_with_runtime(runtime: &str) -> Daemon {
        let r: u32 = rand::thread_rng().gen();
        let prefix = format!("bt-{:06x}", r & 0xff_ffff);
        // A /24 of 10.200.0.0/16 - 10.255.0.0/16 per test daemon.
        let subnet = format!("10.{}.{}.0/24", 200 + (r >> 24) % 56, (r >> 16) & 0xff);
        let base = PathBuf::from("/tmp").join(&prefix);
        let mut d = Daemon {
            root: base.join("root"),
            exec_root: PathBuf::from("/run").join(&prefix),
            socket: PathBuf::from("/run").join(&prefix).join("berth.sock"),
            prefix,
            runtime: runtime.to_string(),
            subnet,
            child: None,
        };
        d.spawn();
        d
    }

    /// (Re)starts the daemon process on the same state.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .ok();
        std::fs::create_dir_all(self.log_path().parent().unwrap()).unwrap();
        let log = log
            .or_else(|| std::fs::File::create(self.log_path()).ok())
            .unwrap();
        let child = Command::new(BERTH)
            .arg("daemon")
            .arg("--root")
            .arg(&self.root)
            .arg("--exec-root")
            .arg(&self.exec_root)
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .arg("--cgroup-parent")
            .arg(&self.prefix)
            .arg("--default-runtime")
            .arg(&self.runtime)
            .arg("--log-level")
            .arg("debug")
            .arg("--bridge")
            .arg(&self.prefix)
            .arg("--nft-table")
            .arg(self.prefix.replace('-', "_"))
            .arg("--default-subnet")
            .arg(&self.subnet)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start berth daemon");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("daemon did not come up; log:\n{}", self.log());
    }

    pub fn log_path(&self) -> PathBuf {
        self.root.parent().unwrap().join("daemon.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The docker client config dir (credentials) the CLIs of this test use.
    pub fn docker_config(&self) -> PathBuf {
        self.root.parent().unwrap().join("docker-config")
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Kills the daemon with SIGKILL (containers keep running).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Runs the berth CLI against this daemon.
    pub fn berth(&self, args: &[&str]) -> Output {
        Command::new(BERTH)
            .args(args)
            .env("BERTH_HOST", self.host())
            .env("DOCKER_CONFIG", self.docker_config())
            .env_remove("DOCKER_HOST")
            .stdin(Stdio::null())
            .output()
            .expect("run berth")
    }

    /// Runs the berth CLI with bytes on stdin.
    pub fn berth_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        use std::io::Write;
        let mut child = Command::new(BERTH)
            .args(args)
            .env("BERTH_HOST", self.host())
            .env("DOCKER_CONFIG", self.docker_config())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run berth");
        let mut stdin = child.stdin.take().unwrap();
        let data = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
        let out = child.wait_with_output().unwrap();
        let _ = writer.join();
        out
    }

    /// Runs the real docker CLI against this daemon.
    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new(DOCKER)
            .args(args)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.docker_config())
            .stdin(Stdio::null())
            .output()
            .expect("run docker")
    }

    /// Imports the busybox image as `busybox:latest`.
    pub fn import_busybox(&self) {
        let tar = image_store::busybox_rootfs_tar(Path::new("/bin/busybox")).expect("busybox tar");
        let out = self.berth_stdin(
            &["import", "-c", "CMD [\"sh\"]", "-", "busybox:latest"],
            &tar,
        );
        assert!(out.status.success(), "import failed: {}", text(&out.stderr));
    }

    fn shim_pids(&self) -> Vec<i32> {
        let marker = self.exec_root.display().to_string();
        let mut pids = Vec::new();
        if let Ok(rd) = std::fs::read_dir("/proc") {
            for e in rd.flatten() {
                let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                    continue;
                };
                let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
                    continue;
                };
                let cmd = String::from_utf8_lossy(&cmd);
                if cmd.contains("shim") && cmd.contains(&marker) {
                    pids.push(pid);
                }
            }
        }
        pids
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Remove containers through the API while the daemon is up.
        if self.child.is_some() {
            let out = self.berth(&["ps", "-aq", "--no-trunc"]);
            for id in text(&out.stdout).lines().filter(|l| !l.is_empty()) {
                let _ = self.berth(&["rm", "-f", "-v", id]);
            }
        }
        self.kill9();
        // Anything still alive from this daemon: shims and their containers.
        for pid in self.shim_pids() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        for cg in cgroup_dirs(&self.prefix) {
            kill_cgroup(&cg);
        }
        std::thread::sleep(Duration::from_millis(50));
        // Mounts under our directories, deepest first.
        let base = self.root.parent().unwrap().to_path_buf();
        if let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") {
            let mut mps: Vec<String> = info
                .lines()
                .filter_map(|l| l.split(' ').nth(4).map(String::from))
                .filter(|m| {
                    m.starts_with(&*base.to_string_lossy())
                        || m.starts_with(&*self.exec_root.to_string_lossy())
                })
                .collect();
            mps.sort_by_key(|m| std::cmp::Reverse(m.len()));
            for m in mps {
                let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
            }
        }
        for cg in cgroup_dirs(&self.prefix) {
            remove_cgroup_tree(&cg);
        }
        // Network objects this daemon made: links marked with its table, the
        // default bridge, and its nftables table.
        let table = self.prefix.replace('-', "_");
        if let Ok(out) = Command::new("ip").args(["-o", "link", "show"]).output() {
            for line in text(&out.stdout).lines() {
                if line.contains(&format!("alias berth:{table}:"))
                    || line.contains(&format!(": {}:", self.prefix))
                {
                    if let Some(name) = line
                        .split(": ")
                        .nth(1)
                        .map(|n| n.split('@').next().unwrap_or(n))
                    {
                        let _ = Command::new("ip").args(["link", "del", name]).output();
                    }
                }
            }
        }
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &table])
            .output();
        let _ = std::fs::remove_dir_all(&self.exec_root);
        if std::env::var_os("BERTH_KEEP_TEST_STATE").is_none() {
            let _ = std::fs::remove_dir_all(&base);
        }
    }
}

/// Every cgroup directory named `prefix` under the v1 hierarchies and v2.
pub fn cgroup_dirs(prefix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in rd.flatten() {
            let p = e.path().join(prefix);
            if p.is_dir() {
                out.push(p);
            }
        }
    }
    let p = Path::new("/sys/fs/cgroup").join(prefix);
    if p.is_dir() && !out.contains(&p) {
        out.push(p);
    }
    out
}

fn kill_cgroup(dir: &Path) {
    let walk = walk_dirs(dir);
    for d in walk {
        if let Ok(procs) = std::fs::read_to_string(d.join("cgroup.procs")) {
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

fn walk_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.extend(walk_dirs(&e.path()));
            }
        }
    }
    out
}

fn remove_cgroup_tree(dir: &Path) {
    let mut dirs = walk_dirs(dir);
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in dirs {
        for _ in 0..20 {
            if std::fs::remove_dir(&d).is_ok() || !d.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts success and returns trimmed stdout.
#[track_caller]
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "command failed ({:?})\nstdout: {}\nstderr: {}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout).trim().to_string()
}

/// Polls `f` until it returns true or `secs` pass.
pub fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

impl Daemon {
    /// Sends one raw HTTP/1.1 request to the API socket; returns (status, body).
    pub fn http(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&self.socket).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }
}
