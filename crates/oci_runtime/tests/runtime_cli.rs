//! End-to-end tests of the runtime CLI (need root): busybox bundles driven
//! through real `create/start/exec/kill/delete/run` processes.
//!
//! The test binary has no libtest harness: when started with
//! `OCI_RUNTIME_TEST_EXEC=1` it *is* the runtime (it calls
//! `oci_runtime::main` with its arguments), otherwise it runs the tests
//! below one after another as a child subreaper, so container processes get
//! reparented to it and can be waited for like a shim would.
//! Run a subset with `cargo test -p oci_runtime --test runtime_cli -- NAME`.

use std::ffi::OsString;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use serde_json::{json, Value};

const CHILD_ENV: &str = "OCI_RUNTIME_TEST_EXEC";

fn main() {
    if std::env::var_os(CHILD_ENV).is_some() {
        let args: Vec<OsString> = std::env::args_os().skip(1).collect();
        std::process::exit(oci_runtime::main(args));
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("runtime_cli: skipped (needs root)");
        return;
    }
    if !Path::new("/bin/busybox").exists() {
        eprintln!("runtime_cli: skipped (no /bin/busybox)");
        return;
    }
    // SAFETY: plain prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };

    let tests: &[(&str, fn())] = &[
        ("create_start_pipes_delete", create_start_pipes_delete),
        ("console_socket_receives_pty", console_socket_receives_pty),
        ("exec_and_kill", exec_and_kill),
        ("missing_command_fails_create", missing_command_fails_create),
        ("run_returns_exit_code", run_returns_exit_code),
        (
            "errors_for_unknown_containers",
            errors_for_unknown_containers,
        ),
    ];
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, test) in tests {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        eprintln!("test {name} ...");
        let started = Instant::now();
        match std::panic::catch_unwind(test) {
            Ok(()) => eprintln!("test {name} ... ok ({:?})", started.elapsed()),
            Err(_) => {
                eprintln!("test {name} ... FAILED");
                failed.push(*name);
            }
        }
    }
    eprintln!("{ran} run, {} failed", failed.len());
    if !failed.is_empty() {
        eprintln!("failed: {failed:?}");
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------- helpers

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}{:x}{:x}", std::process::id(), nanos)
}

/// A bundle (busybox rootfs + config.json) and a state root in one temp dir.
struct Bundle {
    dir: tempfile::TempDir,
    id: String,
}

impl Bundle {
    fn new(args: &[&str], tweak: impl FnOnce(&mut Value)) -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("oci_runtime-")
            .tempdir()
            .expect("tempdir");
        let id = unique("berth-t-");
        let bin = dir.path().join("rootfs/bin");
        std::fs::create_dir_all(&bin).expect("mkdir rootfs");
        std::fs::copy("/bin/busybox", bin.join("busybox")).expect("copy busybox");
        for applet in ["sh", "echo", "sleep", "true", "cat", "uname", "pwd"] {
            symlink("busybox", bin.join(applet)).expect("symlink");
        }
        let mut spec = serde_json::to_value(libcontainer::oci_spec::runtime::Spec::default())
            .expect("spec json");
        spec["process"]["args"] = json!(args);
        spec["process"]["terminal"] = json!(false);
        spec["hostname"] = json!("berth-test");
        spec["linux"]["cgroupsPath"] = json!(format!("/{id}"));
        tweak(&mut spec);
        std::fs::write(
            dir.path().join("config.json"),
            serde_json::to_vec_pretty(&spec).expect("encode"),
        )
        .expect("write config");
        std::fs::create_dir(dir.path().join("state")).expect("mkdir state");
        Bundle { dir, id }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// `runtime --root <root> args...` as a command.
    fn rt(&self, args: &[&str]) -> Command {
        let mut c = Command::new(std::env::current_exe().expect("current exe"));
        c.env(CHILD_ENV, "1")
            .arg("--root")
            .arg(self.root())
            .args(args);
        c
    }

    fn rt_output(&self, args: &[&str]) -> Output {
        self.rt(args)
            .stdin(Stdio::null())
            .output()
            .expect("spawn runtime")
    }

    fn ok(&self, args: &[&str]) -> Output {
        let out = self.rt_output(args);
        assert!(
            out.status.success(),
            "runtime {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn state(&self) -> Value {
        let out = self.ok(&["state", &self.id]);
        serde_json::from_slice(&out.stdout).expect("state json")
    }

    fn guard(&self) -> Guard<'_> {
        Guard {
            bundle: self,
            pids: Vec::new(),
        }
    }
}

/// Tears a test container down whatever happened: `delete --force`, SIGKILL
/// of the processes we learned about, reaping, and removal of its cgroups.
struct Guard<'a> {
    bundle: &'a Bundle,
    pids: Vec<i32>,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        let _ = self
            .bundle
            .rt(&["delete", "--force", &self.bundle.id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        for &pid in &self.pids {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = wait_exit(pid, Duration::from_secs(2));
        }
        let rel = format!("/{}", self.bundle.id);
        for base in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
            if let Ok(entries) = std::fs::read_dir(base) {
                for e in entries.flatten() {
                    let p = e.path().join(rel.trim_start_matches('/'));
                    if p.is_dir() {
                        let _ = std::fs::remove_dir(&p);
                    }
                }
            }
            let p = Path::new(base).join(rel.trim_start_matches('/'));
            if p.is_dir() {
                let _ = std::fs::remove_dir(&p);
            }
        }
    }
}

fn pipe() -> (std::fs::File, OwnedFd) {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
    (std::fs::File::from(r), w)
}

/// Waits (as subreaper or parent) for `pid` to exit, with a deadline.
fn wait_exit(pid: i32, timeout: Duration) -> Option<WaitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(s @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => return Some(s),
            Ok(_) => {}
            Err(_) => return None,
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn read_pid(path: &Path) -> i32 {
    std::fs::read_to_string(path)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid number")
}

/// Reads a pipe to EOF on a helper thread, failing after `timeout`.
fn read_all(mut f: std::fs::File, timeout: Duration) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = f.read_to_string(&mut s);
        let _ = tx.send(s);
    });
    rx.recv_timeout(timeout).expect("pipe did not reach EOF")
}

// ------------------------------------------------------------------ tests

fn create_start_pipes_delete() {
    let b = Bundle::new(&["sh", "-c", "echo hello; echo oops >&2; exit 7"], |_| {});
    let mut g = b.guard();
    let pid_file = b.path().join("init.pid");
    let (out_r, out_w) = pipe();
    let (err_r, err_w) = pipe();
    let status = b
        .rt(&["create", "--bundle"])
        .arg(b.path())
        .arg("--pid-file")
        .arg(&pid_file)
        .arg(&b.id)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out_w))
        .stderr(Stdio::from(err_w))
        .status()
        .expect("spawn create");
    assert!(status.success(), "create failed: {status}");
    let pid = read_pid(&pid_file);
    g.pids.push(pid);

    let st = b.state();
    assert_eq!(st["status"], "created");
    assert_eq!(st["pid"], pid);
    assert_eq!(st["id"], b.id.as_str());
    assert!(st["created"].as_str().is_some_and(|c| c.ends_with('Z')));

    b.ok(&["start", &b.id]);
    assert_eq!(read_all(out_r, Duration::from_secs(10)), "hello\n");
    assert_eq!(read_all(err_r, Duration::from_secs(10)), "oops\n");
    let ws = wait_exit(pid, Duration::from_secs(10)).expect("init exit");
    assert_eq!(ws, WaitStatus::Exited(Pid::from_raw(pid), 7));

    let st = b.state();
    assert_eq!(st["status"], "stopped");
    assert_eq!(st["pid"], 0);
    let out = b.rt_output(&["start", &b.id]);
    assert!(
        !out.status.success(),
        "start of a stopped container succeeded"
    );

    let list = b.ok(&["list", "-f", "json"]);
    let list: Value = serde_json::from_slice(&list.stdout).expect("list json");
    assert_eq!(list[0]["id"], b.id.as_str());

    b.ok(&["delete", &b.id]);
    assert!(!b.root().join(&b.id).exists());
    let out = b.rt_output(&["state", &b.id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    for entry in std::fs::read_dir("/sys/fs/cgroup")
        .expect("cgroupfs")
        .flatten()
    {
        assert!(
            !entry.path().join(&b.id).exists(),
            "cgroup left in {}",
            entry.path().display()
        );
    }
}

fn console_socket_receives_pty() {
    let b = Bundle::new(&["sh", "-c", "echo tty-ok; sleep 1"], |s| {
        s["process"]["terminal"] = json!(true);
    });
    let mut g = b.guard();
    let sock = b.path().join("console.sock");
    let listener = UnixListener::bind(&sock).expect("bind console socket");
    let pid_file = b.path().join("init.pid");
    let child = b
        .rt(&["create", "--bundle"])
        .arg(b.path())
        .arg("--console-socket")
        .arg(&sock)
        .arg("--pid-file")
        .arg(&pid_file)
        .arg(&b.id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn create");
    listener.set_nonblocking(false).expect("blocking");
    let (conn, _) = listener.accept().expect("accept");
    let master = recv_fd(conn.as_raw_fd());
    let out = child.wait_with_output().expect("create");
    assert!(
        out.status.success(),
        "create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    g.pids.push(read_pid(&pid_file));
    assert!(
        nix::unistd::isatty(master.as_raw_fd()).unwrap_or(false),
        "received fd is not a terminal"
    );
    b.ok(&["start", &b.id]);
    let text = read_tty(&master, "tty-ok", Duration::from_secs(10));
    assert!(text.contains("tty-ok"), "tty output {text:?}");
    let pid = g.pids[0];
    let ws = wait_exit(pid, Duration::from_secs(10)).expect("init exit");
    assert_eq!(ws, WaitStatus::Exited(Pid::from_raw(pid), 0));
    b.ok(&["delete", &b.id]);
}

fn recv_fd(sock: i32) -> OwnedFd {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg =
        recvmsg::<UnixAddr>(sock, &mut iov, Some(&mut cmsg), MsgFlags::empty()).expect("recvmsg");
    for c in msg.cmsgs().expect("cmsgs") {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed this descriptor for us.
                return unsafe { OwnedFd::from_raw_fd(fd) };
            }
        }
    }
    panic!("no file descriptor received on the console socket");
}

fn read_tty(master: &OwnedFd, want: &str, timeout: Duration) -> String {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let deadline = Instant::now() + timeout;
    let mut text = String::new();
    let mut buf = [0u8; 1024];
    while !text.contains(want) && Instant::now() < deadline {
        let mut fds = [PollFd::new(
            std::os::fd::AsFd::as_fd(master),
            PollFlags::POLLIN,
        )];
        if poll(&mut fds, PollTimeout::from(100u16)).unwrap_or(0) == 0 {
            continue;
        }
        match nix::unistd::read(master.as_raw_fd(), &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    text
}

fn exec_and_kill() {
    let b = Bundle::new(&["sh", "-c", "trap 'exit 3' TERM; sleep 30 & wait"], |s| {
        s["process"]["env"] = json!(["PATH=/bin", "FROM_SPEC=yes"]);
        // Like Docker's default: no no_new_privs, so installing the filter
        // for exec'd processes takes the no_new_privs fallback.
        s["process"]["noNewPrivileges"] = json!(false);
        s["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
            ]
        });
    });
    let mut g = b.guard();
    let pid_file = b.path().join("init.pid");
    let status = b
        .rt(&["create", "--bundle"])
        .arg(b.path())
        .arg("--pid-file")
        .arg(&pid_file)
        .arg(&b.id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("create");
    assert!(status.success());
    let init = read_pid(&pid_file);
    g.pids.push(init);
    b.ok(&["start", &b.id]);
    assert_eq!(b.state()["status"], "running");

    // Detached exec: returns once started; we (the subreaper) reap it.
    let exec_pid_file = b.path().join("exec.pid");
    let (out_r, out_w) = pipe();
    let status = b
        .rt(&["exec", "-d", "--pid-file"])
        .arg(&exec_pid_file)
        .arg(&b.id)
        .args(["echo", "x"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(out_w))
        .stderr(Stdio::null())
        .status()
        .expect("exec -d");
    assert!(status.success());
    let exec_pid = read_pid(&exec_pid_file);
    g.pids.push(exec_pid);
    assert_eq!(read_all(out_r, Duration::from_secs(10)), "x\n");
    let ws = wait_exit(exec_pid, Duration::from_secs(10)).expect("exec exit");
    assert_eq!(ws, WaitStatus::Exited(Pid::from_raw(exec_pid), 0));

    // Foreground exec: the runtime waits and returns the exit code; env,
    // cwd and the container's own env are honoured.
    let out = b.rt_output(&[
        "exec",
        "--env",
        "FOO=bar",
        "--cwd",
        "/bin",
        &b.id,
        "sh",
        "-c",
        "echo $FOO $FROM_SPEC; pwd; exit 5",
    ]);
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "bar yes\n/bin\n");

    // A --process file (what the shim passes).
    let process = json!({
        "args": ["sh", "-c", "echo from-process-file"],
        "env": ["PATH=/bin"],
        "cwd": "/",
        "user": {"uid": 0, "gid": 0},
        "terminal": false
    });
    let process_path = b.path().join("process.json");
    std::fs::write(&process_path, process.to_string()).expect("process.json");
    let out = b
        .rt(&["exec", "--process"])
        .arg(&process_path)
        .arg(&b.id)
        .stdin(Stdio::null())
        .output()
        .expect("exec --process");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from-process-file\n");

    // Detached exec with a terminal, as the shim does it for `exec -t`.
    let tty_process = json!({
        "args": ["sh", "-c", "echo tty-exec-ok"],
        "env": ["PATH=/bin"],
        "cwd": "/",
        "user": {"uid": 0, "gid": 0},
        "terminal": true
    });
    std::fs::write(&process_path, tty_process.to_string()).expect("process.json");
    let sock = b.path().join("exec-console.sock");
    let listener = UnixListener::bind(&sock).expect("bind");
    let child = b
        .rt(&["exec", "--detach", "--process"])
        .arg(&process_path)
        .arg("--console-socket")
        .arg(&sock)
        .arg("--pid-file")
        .arg(&exec_pid_file)
        .arg(&b.id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("exec -t");
    let (conn, _) = listener.accept().expect("accept");
    let master = recv_fd(conn.as_raw_fd());
    let out = child.wait_with_output().expect("exec -t");
    assert!(out.status.success(), "{out:?}");
    let tty_pid = read_pid(&exec_pid_file);
    g.pids.push(tty_pid);
    let text = read_tty(&master, "tty-exec-ok", Duration::from_secs(10));
    assert!(text.contains("tty-exec-ok"), "{text:?}");
    let ws = wait_exit(tty_pid, Duration::from_secs(10)).expect("tty exec exit");
    assert_eq!(ws, WaitStatus::Exited(Pid::from_raw(tty_pid), 0));

    // Exec'd processes get the container's seccomp profile (busybox uname
    // prints an empty line when uname(2) fails).
    let out = b.rt_output(&["exec", &b.id, "uname"]);
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("Linux"),
        "uname escaped seccomp: {out:?}"
    );
    let out = b.rt_output(&["exec", &b.id, "true"]);
    assert!(out.status.success(), "{out:?}");

    // Missing command in exec.
    let out = b.rt_output(&["exec", &b.id, "/nonexistent"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no such file or directory"),
        "{out:?}"
    );

    b.ok(&["kill", &b.id, "TERM"]);
    let ws = wait_exit(init, Duration::from_secs(10)).expect("init exit after TERM");
    assert_eq!(ws, WaitStatus::Exited(Pid::from_raw(init), 3));
    assert_eq!(b.state()["status"], "stopped");
    let out = b.rt_output(&["kill", &b.id, "KILL"]);
    assert!(
        !out.status.success(),
        "kill of a stopped container succeeded"
    );
    b.ok(&["delete", &b.id]);
}

fn missing_command_fails_create() {
    let b = Bundle::new(&["/nonexistent"], |_| {});
    let mut g = b.guard();
    let log = b.path().join("log.json");
    let pid_file = b.path().join("init.pid");
    let out = b
        .rt(&["--log"])
        .arg(&log)
        .args(["--log-format", "json", "create", "--bundle"])
        .arg(b.path())
        .arg("--pid-file")
        .arg(&pid_file)
        .arg(&b.id)
        .stdin(Stdio::null())
        .output()
        .expect("create");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let mentions = |s: &str| s.contains("no such file or directory") || s.contains("not found");
    if out.status.success() {
        // Tolerated by the brief: then start must fail.
        g.pids.push(read_pid(&pid_file));
        let out = b.rt_output(&["start", &b.id]);
        assert!(!out.status.success(), "start of /nonexistent succeeded");
        assert!(mentions(&String::from_utf8_lossy(&out.stderr)));
        return;
    }
    assert_eq!(out.status.code(), Some(1));
    assert!(mentions(&stderr), "stderr: {stderr}");
    let text = std::fs::read_to_string(&log).expect("log file");
    let last_error = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .rfind(|v| v["level"] == "error")
        .expect("an error line in the log");
    assert!(
        mentions(last_error["msg"].as_str().unwrap_or("")),
        "{last_error}"
    );
    // Nothing is left behind.
    assert!(
        !b.root().join(&b.id).exists(),
        "state dir left after failed create"
    );
}

fn run_returns_exit_code() {
    let b = Bundle::new(&["sh", "-c", "echo ran; exit 4"], |_| {});
    let _g = b.guard();
    let mut c = b.rt(&["run", "--bundle"]);
    c.arg(b.path()).arg(&b.id).stdin(Stdio::null());
    let out = c.output().expect("run");
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ran\n");
    assert!(!b.root().join(&b.id).exists(), "run left its state behind");

    let b2 = Bundle::new(&["true"], |_| {});
    let _g2 = b2.guard();
    let out = b2
        .rt(&["run", "--bundle"])
        .arg(b2.path())
        .arg(&b2.id)
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

fn errors_for_unknown_containers() {
    let b = Bundle::new(&["true"], |_| {});
    for args in [
        vec!["state", "nope"],
        vec!["start", "nope"],
        vec!["kill", "nope", "TERM"],
        vec!["delete", "nope"],
        vec!["exec", "nope", "true"],
    ] {
        let out = b.rt_output(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("does not exist"),
            "{args:?}: {out:?}"
        );
    }
    b.ok(&["delete", "--force", "nope"]);
    let out = b.rt_output(&["kill", "x", "NOSIG"]);
    assert_eq!(out.status.code(), Some(1));
    let out = b.rt_output(&["state", "../etc"]);
    assert_eq!(out.status.code(), Some(1));
}
