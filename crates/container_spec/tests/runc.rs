//! Runs real containers with `runc` from specs built by this crate.
//!
//! Needs root and `runc`; each test prints a message and passes when either is missing.
//! Everything a test creates (bundle and rootfs under /tmp/container_spec-*, the runc state
//! dir, the container, its cgroup directories) is removed by a guard, also on failure.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use container_spec::{
    build_spec, write_bundle, MountKind, MountSpec, NamespaceMode, SeccompMode, SpecInput,
};

fn can_run() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping: runc integration tests need root");
        return false;
    }
    if Command::new("runc")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .map(|s| !s.success())
        .unwrap_or(true)
    {
        eprintln!("skipping: runc not found");
        return false;
    }
    true
}

fn unique(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "berth-t-{tag}-{}-{:x}",
        std::process::id(),
        nanos & 0xffff_ffff
    )
}

/// One container's scratch space; dropping it deletes the container, its cgroups and files.
struct Sandbox {
    id: String,
    runc_root: PathBuf,
    // Dropped last (after `Drop::drop` ran), which removes bundle, rootfs and runc state.
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new(tag: &str) -> Sandbox {
        let id = unique(tag);
        let dir = tempfile::Builder::new()
            .prefix("container_spec-it-")
            .tempdir()
            .expect("tempdir");
        let runc_root = dir.path().join("runc-state");
        std::fs::create_dir_all(dir.path().join("rootfs")).expect("mkdir rootfs");
        Sandbox { id, runc_root, dir }
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    fn bundle(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }

    fn cgroups_path(&self) -> String {
        format!("/{}", self.id)
    }

    /// A rootfs with a static busybox and a few applet links.
    fn install_busybox(&self) {
        let bin = self.rootfs().join("bin");
        std::fs::create_dir_all(&bin).expect("mkdir bin");
        std::fs::copy("/bin/busybox", bin.join("busybox")).expect("copy busybox");
        for applet in ["sh", "cat", "grep", "echo", "true", "unshare", "id"] {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("symlink applet");
        }
    }

    fn input(&self, args: &[&str]) -> SpecInput {
        SpecInput {
            id: self.id.clone(),
            rootfs: self.rootfs(),
            args: args.iter().map(|s| s.to_string()).collect(),
            cgroups_path: self.cgroups_path(),
            ..Default::default()
        }
    }

    /// Builds the spec, writes the bundle and runs it to completion (60 s at most).
    fn run(&self, input: &SpecInput) -> (i32, String, String) {
        let spec = build_spec(input).expect("build_spec");
        write_bundle(&self.bundle(), &spec).expect("write_bundle");
        let mut child = Command::new("runc")
            .arg("--root")
            .arg(&self.runc_root)
            .arg("run")
            .arg("--bundle")
            .arg(self.bundle())
            .arg(&self.id)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn runc");
        let mut out = child.stdout.take().expect("stdout");
        let mut err = child.stderr.take().expect("stderr");
        let t_out = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let t_err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            match child.try_wait().expect("wait runc") {
                Some(st) => break st,
                None if Instant::now() > deadline => {
                    // Only the runc process we started; the guard deletes the container.
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("runc run timed out");
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        let stdout = t_out.join().unwrap_or_default();
        let stderr = t_err.join().unwrap_or_default();
        (status.code().unwrap_or(-1), stdout, stderr)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = Command::new("runc")
            .arg("--root")
            .arg(&self.runc_root)
            .args(["delete", "-f", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // runc removes its cgroups on delete; make sure nothing is left behind.
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
            for e in rd.flatten() {
                let p = e.path().join(&self.id);
                if p.is_dir() {
                    let _ = std::fs::remove_dir(&p);
                }
            }
        }
        let v2 = Path::new("/sys/fs/cgroup").join(&self.id);
        if v2.is_dir() {
            let _ = std::fs::remove_dir(&v2);
        }
    }
}

#[test]
fn busybox_runs_with_docker_default_caps() {
    if !can_run() {
        return;
    }
    let sb = Sandbox::new("caps");
    sb.install_busybox();
    let input = sb.input(&["sh", "-c", "echo ok; cat /proc/self/status | grep CapEff"]);
    let (code, out, err) = sb.run(&input);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(out.lines().any(|l| l == "ok"), "stdout: {out}");
    assert!(
        out.contains("CapEff:\t00000000a80425fb"),
        "stdout: {out}\nstderr: {err}"
    );
}

#[test]
fn default_seccomp_blocks_unshare() {
    if !can_run() {
        return;
    }
    let script = "unshare -U true && echo UNSHARE_OK || echo UNSHARE_REFUSED; \
                  echo hello | cat | grep -c hello";
    let sb = Sandbox::new("seccomp");
    sb.install_busybox();
    let input = sb.input(&["sh", "-c", script]);
    assert_eq!(input.seccomp, SeccompMode::Default);
    let (code, out, err) = sb.run(&input);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains("UNSHARE_REFUSED"),
        "stdout: {out}\nstderr: {err}"
    );
    assert!(
        err.contains("Operation not permitted"),
        "stdout: {out}\nstderr: {err}"
    );
    // Normal commands (fork, pipes, exec) still work.
    assert!(out.lines().any(|l| l == "1"), "stdout: {out}");
    drop(sb);

    // Control: without the filter the same call is allowed (when the kernel permits
    // unprivileged user namespaces), so the refusal above came from seccomp.
    let sb = Sandbox::new("noseccomp");
    sb.install_busybox();
    let mut input = sb.input(&["sh", "-c", script]);
    input.seccomp = SeccompMode::Unconfined;
    let (code, out, err) = sb.run(&input);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let userns_ok = std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
        .map(|s| s.trim() != "0")
        .unwrap_or(false);
    if userns_ok {
        assert!(out.contains("UNSHARE_OK"), "stdout: {out}\nstderr: {err}");
    }
}

#[test]
fn privileged_with_host_network() {
    if !can_run() {
        return;
    }
    let sb = Sandbox::new("priv");
    sb.install_busybox();
    let mut input = sb.input(&[
        "sh",
        "-c",
        "grep CapEff /proc/self/status; test -c /dev/null && echo devnull; \
         test -d /sys/class/net/lo && echo sys-ok; \
         unshare -U true && echo unshare-ok",
    ]);
    input.privileged = true;
    input.network = NamespaceMode::Host;
    let (code, out, err) = sb.run(&input);
    let ctx = format!("stdout: {out}\nstderr: {err}");
    assert_eq!(code, 0, "{ctx}");
    // Every capability the kernel has and this (root) process holds.
    let want = container_spec::capability_mask(&container_spec::all_capabilities());
    assert!(want & 0xa80425fb == 0xa80425fb && want.count_ones() > 14);
    assert!(
        out.contains(&format!("CapEff:\t{want:016x}")),
        "want {want:016x}; {ctx}"
    );
    assert!(out.contains("devnull"), "{ctx}");
    assert!(out.contains("sys-ok"), "{ctx}");
    assert!(out.contains("unshare-ok"), "{ctx}");
}

/// python3 and coreutils from the host's /usr (bound read-only) under the default profile,
/// as a non-root user: threads (clone3 -> ENOSYS -> clone fallback), subprocesses, sockets
/// work; clone with namespace flags and AF_VSOCK sockets are refused.
#[test]
fn python_and_coreutils_under_default_seccomp() {
    if !can_run() {
        return;
    }
    if !Path::new("/usr/bin/python3").exists() || !Path::new("/usr/bin/ls").exists() {
        eprintln!("skipping: host /usr/bin/python3 or /usr/bin/ls missing");
        return;
    }
    let sb = Sandbox::new("python");
    let root = sb.rootfs();
    for (link, target) in [
        ("bin", "usr/bin"),
        ("sbin", "usr/sbin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
    ] {
        std::os::unix::fs::symlink(target, root.join(link)).expect("symlink");
    }
    std::fs::create_dir_all(root.join("etc")).expect("mkdir etc");
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/tmp:/bin/sh\n",
    )
    .expect("passwd");
    std::fs::write(root.join("etc/group"), "root:x:0:\napp:x:1000:\n").expect("group");

    let py = r#"
import ctypes, os, socket, subprocess, threading
libc = ctypes.CDLL(None, use_errno=True)
r = libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0)  # clone(CLONE_NEWUSER|SIGCHLD)
if r == 0:
    os._exit(0)
if r > 0:
    os.waitpid(r, 0)
    print("clone-newuser: allowed")
else:
    print("clone-newuser: errno", ctypes.get_errno())
res = []
t = threading.Thread(target=lambda: res.append(1)); t.start(); t.join()
print("thread:", res)
print("ls:", subprocess.run(["ls", "/usr"], capture_output=True, text=True).returncode)
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM); s.bind(("127.0.0.1", 0)); s.close()
print("inet: ok")
try:
    socket.socket(40, socket.SOCK_STREAM)
    print("vsock: allowed")
except OSError as e:
    print("vsock: errno", e.errno)
print("uid:", os.getuid(), os.getgid())
print(open("/proc/self/status").read().split("CapEff:")[1].split()[0])
"#;
    let mut input = sb.input(&["python3", "-c", py]);
    input.user = "app".into();
    input.cwd = "/tmp".into();
    input.mounts = vec![
        MountSpec {
            source: "/usr".into(),
            destination: "/usr".into(),
            kind: MountKind::Bind,
            readonly: true,
            ..Default::default()
        },
        MountSpec {
            destination: "/tmp".into(),
            kind: MountKind::Tmpfs,
            ..Default::default()
        },
    ];
    assert_eq!(input.network, NamespaceMode::New);
    let (code, out, err) = sb.run(&input);
    let ctx = format!("stdout: {out}\nstderr: {err}");
    assert_eq!(code, 0, "{ctx}");
    assert!(out.contains("clone-newuser: errno 1"), "{ctx}");
    assert!(out.contains("thread: [1]"), "{ctx}");
    assert!(out.contains("ls: 0"), "{ctx}");
    assert!(out.contains("inet: ok"), "{ctx}");
    assert!(out.contains("vsock: errno 1"), "{ctx}");
    assert!(out.contains("uid: 1000 1000"), "{ctx}");
    // A non-root user keeps no effective capabilities, as in Docker.
    assert!(out.contains("0000000000000000"), "{ctx}");
}

/// `apt-get update` and `apt-get install` in a Debian rootfs under the default profile, with
/// the host's network (the mirror must be reachable). Needs a scratch rootfs made with
/// `debootstrap --variant=minbase bookworm DIR`, passed as `CONTAINER_SPEC_DEBIAN_ROOTFS=DIR`
/// (it gets modified). Run with `cargo test -p container_spec -- --ignored`.
#[test]
#[ignore = "needs a debootstrap rootfs in CONTAINER_SPEC_DEBIAN_ROOTFS and network access"]
fn apt_get_in_debian_rootfs() {
    if !can_run() {
        return;
    }
    let Some(rootfs) = std::env::var_os("CONTAINER_SPEC_DEBIAN_ROOTFS").map(PathBuf::from) else {
        eprintln!("skipping: CONTAINER_SPEC_DEBIAN_ROOTFS not set");
        return;
    };
    let sb = Sandbox::new("apt");
    let mut input = sb.input(&[
        "sh",
        "-c",
        "apt-get update -qq && apt-get install -y -qq --no-install-recommends hello >/dev/null \
         && hello && python3 --version 2>/dev/null; echo done",
    ]);
    input.rootfs = rootfs;
    input.network = NamespaceMode::Host;
    input.env = vec!["DEBIAN_FRONTEND=noninteractive".into()];
    input.mounts = vec![MountSpec {
        source: "/etc/resolv.conf".into(),
        destination: "/etc/resolv.conf".into(),
        readonly: true,
        ..Default::default()
    }];
    let (code, out, err) = sb.run(&input);
    let ctx = format!("stdout: {out}\nstderr: {err}");
    assert_eq!(code, 0, "{ctx}");
    assert!(out.contains("Hello, world!"), "{ctx}");
}
