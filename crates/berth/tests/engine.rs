//! End-to-end engine tests as root: berth's CLI against a private daemon,
//! running real containers from a busybox image.

mod common;

use common::{eventually, ok, text, Daemon};

#[test]
fn run_prints_output_and_returns_exit_code() {
    require_root!();
    let d = Daemon::with_busybox();
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
    let d = Daemon::with_busybox();
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
        "echo $K; pwd; sleep 0.3; echo oops >&2; trap 'exit 0' TERM; while true; do sleep 0.1; done",
    ]));
    assert_eq!(id.len(), 64, "run -d prints the full id: {id}");
    let ps = ok(&d.berth(&["ps"]));
    assert!(ps.contains("web") && ps.contains("Up"), "{ps}");
    assert!(eventually(5, || text(&d.berth(&["logs", "web"]).stderr)
        .contains("oops")));
    let logs = d.berth(&["logs", "web"]);
    assert_eq!(text(&logs.stdout), "V\n/tmp\n");
    assert_eq!(text(&logs.stderr), "oops\n");
    // The last two entries: "/tmp" (stdout) and "oops" (stderr, written
    // later: the two pipes are read independently, so only time orders them).
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
    let d = Daemon::with_busybox();
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
    let d = Daemon::with_busybox();
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
    let d = Daemon::with_busybox();
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
    let d = Daemon::with_busybox();
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
    let mut d = Daemon::with_busybox();
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
    let mut d = Daemon::with_busybox();
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
    let d = Daemon::with_busybox();
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
    let d = Daemon::with_busybox();
    let out = d.berth_stdin(
        &["run", "--rm", "-i", "busybox", "sh", "-c", "tr a-z A-Z"],
        b"shout\n",
    );
    assert_eq!(ok(&out), "SHOUT");
}

#[test]
fn malformed_api_requests_get_docker_errors() {
    require_root!();
    let d = Daemon::with_busybox();
    let (status, body) = d.http("POST", "/v1.41/containers/create", b"{bad json");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"message\""), "{body}");
    let (status, body) = d.http(
        "POST",
        "/v1.41/containers/create",
        br#"{"Image":"busybox","HostConfig":{"Memory":"lots"}}"#,
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = d.http(
        "POST",
        "/v1.41/containers/create",
        br#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"NanoCpus":99000000000}}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("Range of CPUs"), "{body}");
    let (status, body) = d.http("GET", "/v1.41/containers/nosuch/json", b"");
    assert_eq!(status, 404);
    assert!(body.contains("No such container: nosuch"), "{body}");
    let (status, _) = d.http("POST", "/v1.41/containers/nosuch/start", b"");
    assert_eq!(status, 404);
    let (status, _) = d.http("GET", "/v1.41/no/such/path", b"");
    assert_eq!(status, 404);
    let (status, _) = d.http(
        "POST",
        "/v1.41/containers/create?name=bad/name",
        br#"{"Image":"busybox","Cmd":["true"]}"#,
    );
    assert_eq!(status, 400);
    let (status, _) = d.http(
        "POST",
        "/v1.41/containers/create",
        br#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"Binds":["relative:path:x:y"]}}"#,
    );
    assert_eq!(status, 400);
    // Still serving, and nothing half-created.
    assert_eq!(d.http("GET", "/_ping", b"").0, 200);
    assert_eq!(ok(&d.berth(&["ps", "-aq"])), "");
}

#[test]
fn import_rejects_broken_and_hostile_archives() {
    require_root!();
    let d = Daemon::start();
    let out = d.berth_stdin(
        &["import", "-", "junk:1"],
        b"this is not a tar archive at all",
    );
    assert_ne!(out.status.code(), Some(0));
    // A tar whose entry climbs out of the root.
    let mut hostile = Vec::new();
    {
        let mut b = tar::Builder::new(&mut hostile);
        let data = b"pwned\n";
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        // Write the raw name so the tar crate does not refuse it first.
        let name = b"../../../../tmp/berth-escape";
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        b.append(&h, &data[..]).unwrap();
        b.finish().unwrap();
    }
    let out = d.berth_stdin(&["import", "-", "hostile:1"], &hostile);
    assert_ne!(out.status.code(), Some(0), "hostile tar must be refused");
    assert!(!std::path::Path::new("/tmp/berth-escape").exists());
    let images = ok(&d.berth(&["images", "-q"]));
    assert_eq!(images, "", "no partial image tagged");
}

#[test]
fn logs_follow_kill_signal_and_anonymous_volumes() {
    require_root!();
    let d = Daemon::with_busybox();
    // logs -f ends when the container exits.
    ok(&d.berth(&[
        "run",
        "-d",
        "--name",
        "counter",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3; do echo $i; sleep 0.2; done",
    ]));
    assert_eq!(ok(&d.berth(&["logs", "-f", "counter"])), "1\n2\n3");
    // kill -s delivers the signal.
    ok(&d.berth(&[
        "run",
        "-d",
        "--name",
        "hup",
        "busybox",
        "sh",
        "-c",
        "trap 'echo got-hup' HUP; while true; do sleep 0.1; done",
    ]));
    std::thread::sleep(std::time::Duration::from_millis(300));
    ok(&d.berth(&["kill", "-s", "HUP", "hup"]));
    assert!(eventually(5, || text(&d.berth(&["logs", "hup"]).stdout)
        .contains("got-hup")));
    assert_eq!(
        ok(&d.berth(&["inspect", "-f", "{{.State.Status}}", "hup"])),
        "running"
    );
    ok(&d.berth(&["rm", "-f", "hup"]));
    // --rm takes the container's anonymous volumes along; named ones stay.
    ok(&d.berth(&[
        "run",
        "--rm",
        "-v",
        "/scratch",
        "-v",
        "keep:/keep",
        "busybox",
        "true",
    ]));
    assert_eq!(ok(&d.berth(&["volume", "ls", "-q"])), "keep");
    // An image without a command needs one on the command line.
    let tar = image_store::busybox_rootfs_tar(std::path::Path::new("/bin/busybox")).unwrap();
    ok(&d.berth_stdin(&["import", "-", "nocmd:1"], &tar));
    let out = d.berth(&["run", "--rm", "nocmd:1"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("No command specified"),
        "{}",
        text(&out.stderr)
    );
}
