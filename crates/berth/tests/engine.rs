//! End-to-end engine tests as root: berth's CLI against a private daemon,
//! running real containers from a busybox image.

mod common;

use common::{eventually, ok, text, Daemon};

#[test]
fn run_prints_output_and_returns_exit_code() {
    require_root!();
    let d = Daemon::start();
    d.import_busybox();
    let out = d.berth(&["run", "--rm", "busybox", "echo", "hello"]);
    assert_eq!(ok(&out), "hello");
    let out = d.berth(&["run", "--rm", "busybox", "sh", "-c", "echo err >&2; exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(text(&out.stderr).trim(), "err");
    // --rm removed both containers.
    assert_eq!(ok(&d.berth(&["ps", "-aq"])), "");
}

#[test]
fn detached_container_lifecycle() {
    require_root!();
    let d = Daemon::start();
    d.import_busybox();
    let id = ok(&d.berth(&[
        "run",
        "-d",
        "--name",
        "web",
        "-e",
        "K=V",
        "-w",
        "/tmp",
        "busybox",
        "sh",
        "-c",
        "echo $K; pwd; echo oops >&2; trap 'exit 0' TERM; while true; do sleep 0.1; done",
    ]));
    assert_eq!(id.len(), 64, "run -d prints the full id: {id}");
    let ps = ok(&d.berth(&["ps"]));
    assert!(ps.contains("web") && ps.contains("Up"), "{ps}");
    assert!(eventually(5, || text(&d.berth(&["logs", "web"]).stdout)
        .contains("/tmp")));
    let logs = d.berth(&["logs", "web"]);
    assert_eq!(text(&logs.stdout), "V\n/tmp\n");
    assert_eq!(text(&logs.stderr), "oops\n");
    // The last two entries: "/tmp" (stdout) and "oops" (stderr), in either
    // order since the two pipes are read independently.
    let tail = d.berth(&["logs", "--tail", "2", "web"]);
    assert_eq!(text(&tail.stdout), "/tmp\n");
    assert_eq!(text(&tail.stderr), "oops\n");
    // exec sees the container's filesystem and environment.
    assert_eq!(ok(&d.berth(&["exec", "web", "sh", "-c", "echo $K"])), "V");
    let code = d
        .berth(&["exec", "web", "sh", "-c", "exit 4"])
        .status
        .code();
    assert_eq!(code, Some(4));
    assert_eq!(
        ok(&d.berth(&["inspect", "-f", "{{.State.Status}}", "web"])),
        "running"
    );
    // stop: TERM is trapped, so the container exits 0 quickly.
    ok(&d.berth(&["stop", "-t", "5", "web"]));
    assert_eq!(
        ok(&d.berth(&["inspect", "-f", "{{.State.Status}}", "web"])),
        "exited"
    );
    assert_eq!(ok(&d.berth(&["wait", "web"])), "0");
    // Restart it, kill it, remove it.
    ok(&d.berth(&["start", "web"]));
    assert_eq!(
        ok(&d.berth(&["inspect", "-f", "{{.State.Status}}", "web"])),
        "running"
    );
    ok(&d.berth(&["kill", "web"]));
    assert_eq!(ok(&d.berth(&["wait", "web"])), "137");
    ok(&d.berth(&["rm", "web"]));
    let out = d.berth(&["inspect", "web"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("No such"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn errors_have_docker_exit_codes() {
    require_root!();
    let d = Daemon::start();
    d.import_busybox();
    let out = d.berth(&["run", "--rm", "nosuchimage:1"]);
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
    let out = d.berth(&["run", "--rm", "busybox", "/nonexistent"]);
    assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no such file or directory"),
        "{}",
        text(&out.stderr)
    );
    let out = d.berth(&["run", "--rm", "--memory", "abc", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    let out = d.berth(&["run", "--rm", "--memory", "1k", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("Minimum memory limit"),
        "{}",
        text(&out.stderr)
    );
    ok(&d.berth(&["create", "--name", "dup", "busybox", "true"]));
    let out = d.berth(&["create", "--name", "dup", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("is already in use"),
        "{}",
        text(&out.stderr)
    );
    let out = d.berth(&["rm", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    // Nothing half-created is left behind by failed runs.
    assert_eq!(ok(&d.berth(&["ps", "-aq"])).lines().count(), 1);
}

#[test]
fn volumes_and_binds() {
    require_root!();
    let d = Daemon::start();
    d.import_busybox();
    let host = d.root.parent().unwrap().join("hostdir");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("f"), "from host\n").unwrap();
    let bind = format!("{}:/data:ro", host.display());
    assert_eq!(
        ok(&d.berth(&["run", "--rm", "-v", &bind, "busybox", "cat", "/data/f"])),
        "from host"
    );
    let out = d.berth(&["run", "--rm", "-v", &bind, "busybox", "touch", "/data/x"]);
    assert_ne!(
        out.status.code(),
        Some(0),
        "read-only bind must refuse writes"
    );
    ok(&d.berth(&[
        "run",
        "--rm",
        "-v",
        "cache:/cache",
        "busybox",
        "sh",
        "-c",
        "echo kept > /cache/v",
    ]));
    assert_eq!(
        ok(&d.berth(&[
            "run",
            "--rm",
            "-v",
            "cache:/cache",
            "busybox",
            "cat",
            "/cache/v"
        ])),
        "kept"
    );
    let ls = ok(&d.berth(&["volume", "ls", "-q"]));
    assert!(ls.lines().any(|l| l == "cache"), "{ls}");
    ok(&d.berth(&["volume", "rm", "cache"]));
}

#[test]
fn resource_limits_reach_the_cgroup() {
    require_root!();
    let d = Daemon::start();
    d.import_busybox();
    let id = ok(&d.berth(&[
        "run",
        "-d",
        "--memory",
        "64m",
        "--pids-limit",
        "50",
        "--cpus",
        "0.5",
        "busybox",
        "sleep",
        "100",
    ]));
    let mem = std::path::Path::new("/sys/fs/cgroup/memory")
        .join(&d.prefix)
        .join(&id)
        .join("memory.limit_in_bytes");
    if mem.exists() {
        assert_eq!(
            std::fs::read_to_string(&mem).unwrap().trim(),
            (64u64 << 20).to_string()
        );
        let pids = std::path::Path::new("/sys/fs/cgroup/pids")
            .join(&d.prefix)
            .join(&id)
            .join("pids.max");
        assert_eq!(std::fs::read_to_string(pids).unwrap().trim(), "50");
        let quota = std::path::Path::new("/sys/fs/cgroup/cpu,cpuacct")
            .join(&d.prefix)
            .join(&id)
            .join("cpu.cfs_quota_us");
        if quota.exists() {
            assert_eq!(std::fs::read_to_string(quota).unwrap().trim(), "50000");
        }
    } else {
        let max = std::path::Path::new("/sys/fs/cgroup")
            .join(&d.prefix)
            .join(&id)
            .join("memory.max");
        assert_eq!(
            std::fs::read_to_string(max).unwrap().trim(),
            (64u64 << 20).to_string()
        );
    }
    ok(&d.berth(&["rm", "-f", &id]));
}

#[test]
fn isolation_matches_docker_defaults() {
    require_root!();
    let d = Daemon::start();
    d.import_busybox();
    // pid namespace: the command is pid 1; default capabilities only.
    let out = ok(&d.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo $$; grep CapEff /proc/self/status; hostname",
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1");
    assert!(lines[1].ends_with("00000000a80425fb"), "{}", lines[1]);
    assert_eq!(lines[2].len(), 12, "hostname is the short id: {}", lines[2]);
    // Masked /proc paths and a read-only /proc/sys.
    let out = d.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo 1 > /proc/sys/kernel/domainname",
    ]);
    assert_ne!(out.status.code(), Some(0));
    // No network but loopback with --network none.
    let out = ok(&d.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ls",
        "/sys/class/net",
    ]));
    assert_eq!(out, "lo");
    // --user changes the uid.
    assert_eq!(
        ok(&d.berth(&["run", "--rm", "--user", "1000:1000", "busybox", "id", "-u"])),
        "1000"
    );
}

#[test]
fn containers_survive_daemon_sigkill() {
    require_root!();
    let mut d = Daemon::start();
    d.import_busybox();
    let id = ok(&d.berth(&[
        "run",
        "-d",
        "--name",
        "survivor",
        "busybox",
        "sh",
        "-c",
        "echo before; trap 'echo term; exit 7' TERM; while true; do sleep 0.1; done",
    ]));
    assert!(eventually(5, || text(
        &d.berth(&["logs", "survivor"]).stdout
    )
    .contains("before")));
    d.kill9();
    std::thread::sleep(std::time::Duration::from_millis(200));
    d.spawn();
    let ps = ok(&d.berth(&["ps", "-q", "--no-trunc"]));
    assert!(
        ps.contains(&id),
        "container still running after restart: {ps}\n{}",
        d.log()
    );
    assert!(text(&d.berth(&["logs", "survivor"]).stdout).contains("before"));
    ok(&d.berth(&["stop", "-t", "5", "survivor"]));
    assert_eq!(ok(&d.berth(&["wait", "survivor"])), "7");
    assert!(text(&d.berth(&["logs", "survivor"]).stdout).contains("term"));
}

#[test]
fn exit_while_daemon_is_down_is_recorded() {
    require_root!();
    let mut d = Daemon::start();
    d.import_busybox();
    ok(&d.berth(&[
        "run",
        "-d",
        "--name",
        "brief",
        "busybox",
        "sh",
        "-c",
        "sleep 1; exit 5",
    ]));
    d.kill9();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    d.spawn();
    assert!(eventually(5, || ok(&d.berth(&[
        "inspect",
        "-f",
        "{{.State.Status}}",
        "brief"
    ])) == "exited"));
    assert_eq!(
        ok(&d.berth(&["inspect", "-f", "{{.State.ExitCode}}", "brief"])),
        "5"
    );
}

#[test]
fn restart_policy_on_failure() {
    require_root!();
    let d = Daemon::start();
    d.import_busybox();
    ok(&d.berth(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "exit 1",
    ]));
    assert!(eventually(10, || {
        ok(&d.berth(&["inspect", "-f", "{{.RestartCount}}", "flaky"])) == "2"
            && ok(&d.berth(&["inspect", "-f", "{{.State.Status}}", "flaky"])) == "exited"
    }));
}

#[test]
fn runc_runtime_works_too() {
    require_root!();
    let d = Daemon::start_with_runtime("runc");
    d.import_busybox();
    assert_eq!(
        ok(&d.berth(&["run", "--rm", "busybox", "echo", "via runc"])),
        "via runc"
    );
    let out = d.berth(&[
        "run",
        "--rm",
        "--runtime",
        "berth",
        "busybox",
        "echo",
        "via berth",
    ]);
    assert_eq!(ok(&out), "via berth");
}

#[test]
fn stdin_is_forwarded_with_i() {
    require_root!();
    let d = Daemon::start();
    d.import_busybox();
    let out = d.berth_stdin(
        &["run", "--rm", "-i", "busybox", "sh", "-c", "tr a-z A-Z"],
        b"shout\n",
    );
    assert_eq!(ok(&out), "SHOUT");
}
