//! The real docker CLI (28.x) and the Python docker SDK against berth.

mod common;

use common::{eventually, ok, text, Daemon};

fn have_docker() -> bool {
    std::path::Path::new(common::DOCKER).exists()
}

#[test]
fn docker_cli_runs_containers() {
    require_root!();
    if !have_docker() {
        eprintln!("skipped: no docker CLI");
        return;
    }
    let d = Daemon::with_busybox();
    assert_eq!(
        ok(&d.docker(&["run", "--rm", "busybox", "echo", "hello"])),
        "hello"
    );
    let out = d.docker(&["run", "--rm", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    let out = d.docker(&["run", "--rm", "busybox", "/nonexistent"]);
    assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));

    let id = ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "tr1",
        "-e",
        "A=B",
        "--memory",
        "64m",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; sleep 1000",
    ]));
    assert_eq!(id.len(), 64);
    let ps = ok(&d.docker(&["ps"]));
    assert!(ps.starts_with("CONTAINER ID"), "{ps}");
    assert!(ps.contains("tr1"), "{ps}");
    assert!(eventually(5, || text(&d.docker(&["logs", "tr1"]).stdout) == "out\n"));
    let logs = d.docker(&["logs", "tr1"]);
    assert_eq!(text(&logs.stderr), "err\n");
    assert_eq!(ok(&d.docker(&["exec", "tr1", "sh", "-c", "echo $A"])), "B");
    assert_eq!(
        d.docker(&["exec", "tr1", "sh", "-c", "exit 2"])
            .status
            .code(),
        Some(2)
    );
    let inspect = ok(&d.docker(&["inspect", "tr1"]));
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v[0]["State"]["Status"], "running");
    assert_eq!(v[0]["HostConfig"]["Memory"], 64 << 20);
    assert_eq!(ok(&d.docker(&["stop", "-t", "1", "tr1"])), "tr1");
    assert_eq!(ok(&d.docker(&["rm", "tr1"])), "tr1");

    let images = ok(&d.docker(&["images"]));
    assert!(
        images.contains("busybox") && images.contains("latest"),
        "{images}"
    );
    ok(&d.docker(&["tag", "busybox", "x/y:1"]));
    assert!(ok(&d.docker(&["images"])).contains("x/y"));
    assert_eq!(ok(&d.docker(&["rmi", "x/y:1"])), "Untagged: x/y:1");
    ok(&d.docker(&["volume", "create", "trv"]));
    assert!(ok(&d.docker(&["volume", "ls"])).contains("trv"));
    assert_eq!(ok(&d.docker(&["volume", "rm", "trv"])), "trv");
    let v = ok(&d.docker(&["version"]));
    assert!(v.contains("Server:"), "{v}");
    ok(&d.docker(&["info"]));
    let out = d.docker(&["run", "--rm", "nosuchimage:1"]);
    assert_eq!(out.status.code(), Some(125));
}

#[test]
fn python_sdk_works() {
    require_root!();
    let probe = std::process::Command::new("python3")
        .args(["-c", "import docker"])
        .output();
    if !probe.map(|o| o.status.success()).unwrap_or(false) {
        eprintln!("skipped: python docker SDK not installed");
        return;
    }
    let d = Daemon::with_busybox();
    let script = r#"
import sys, docker
c = docker.DockerClient(base_url=sys.argv[1])
assert c.ping()
out = c.containers.run("busybox", ["echo", "hi"], remove=True)
assert out == b"hi\n", out
ctr = c.containers.run("busybox", ["sh", "-c", "echo ready; sleep 100"], detach=True, name="py1")
ctr.reload()
assert ctr.status == "running", ctr.status
r = ctr.exec_run(["sh", "-c", "echo $((1+2))"])
assert r.exit_code == 0 and r.output == b"3\n", r
ctr.stop(timeout=1)
assert ctr.wait()["StatusCode"] == 137
assert b"ready" in ctr.logs()
ctr.remove()
assert [i for i in c.images.list() if "busybox:latest" in i.tags]
v = c.volumes.create("pyvol")
assert "pyvol" in [x.name for x in c.volumes.list()]
assert c.volumes.get("pyvol").attrs["Driver"] == "local"
v.remove()
# More verbs: kill with a signal, restart, rename, list, tag, rmi, info, version.
k = c.containers.run("busybox", ["sh", "-c", "trap 'echo hup' HUP; while true; do sleep 0.1; done"], detach=True, name="py2")
import time
time.sleep(0.3)
k.kill(signal="HUP")
for _ in range(50):
    if b"hup" in k.logs():
        break
    time.sleep(0.1)
assert b"hup" in k.logs(), k.logs()
k.restart(timeout=1)
k.reload()
assert k.status == "running" and k.attrs["RestartCount"] >= 0
k.rename("py3")
assert c.containers.get("py3").id == k.id
assert k.id in [x.id for x in c.containers.list(all=True)]
assert k.id in [x.id for x in c.containers.list(filters={"name": "py3"})]
k.remove(force=True)
img = c.images.get("busybox")
img.tag("pytag", "v1")
assert "pytag:v1" in c.images.get("pytag:v1").tags
c.images.remove("pytag:v1")
assert c.info()["OSType"] == "linux"
assert c.version()["ApiVersion"]
try:
    c.containers.get("nosuch")
    raise SystemExit("expected NotFound")
except docker.errors.NotFound:
    pass
try:
    c.containers.run("busybox", ["/nonexistent"], remove=True)
    raise SystemExit("expected an error")
except docker.errors.APIError as e:
    assert "no such file" in str(e), e
print("python-ok")
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, &d.host()])
        .output()
        .unwrap();
    assert!(
        text(&out.stdout).contains("python-ok"),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn docker_cli_more_verbs() {
    require_root!();
    if !have_docker() {
        return;
    }
    let d = Daemon::start();
    // docker import from a file, with --change.
    let tar = image_store::busybox_rootfs_tar(std::path::Path::new("/bin/busybox")).unwrap();
    let tarfile = d.root.parent().unwrap().join("bb.tar");
    std::fs::write(&tarfile, tar).unwrap();
    let id = ok(&d.docker(&[
        "import",
        "-c",
        "CMD [\"sh\"]",
        tarfile.to_str().unwrap(),
        "busybox:latest",
    ]));
    assert!(id.starts_with("sha256:"), "{id}");
    // Limits, user, entrypoint, restart policy all at once.
    let out = ok(&d.docker(&[
        "run",
        "--rm",
        "--memory",
        "64m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "50",
        "--user",
        "1000:1000",
        "--entrypoint",
        "id",
        "busybox",
        "-u",
    ]));
    assert_eq!(out, "1000");
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "rp",
        "--restart",
        "on-failure:3",
        "busybox",
        "sh",
        "-c",
        "exit 2",
    ]));
    assert!(eventually(15, || ok(&d.docker(&[
        "inspect",
        "-f",
        "{{.RestartCount}}",
        "rp"
    ])) == "3"
        && ok(&d.docker(&["inspect", "-f", "{{.State.Status}}", "rp"]))
            == "exited"));
    assert_eq!(ok(&d.docker(&["wait", "rp"])), "2");
    // kill -s, logs -f --tail.
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "sig",
        "busybox",
        "sh",
        "-c",
        "echo a; echo b; trap 'echo hup' HUP; while true; do sleep 0.1; done",
    ]));
    std::thread::sleep(std::time::Duration::from_millis(300));
    ok(&d.docker(&["kill", "-s", "HUP", "sig"]));
    assert!(eventually(5, || text(&d.docker(&["logs", "sig"]).stdout)
        .contains("hup")));
    let follow = std::process::Command::new("timeout")
        .args(["2", common::DOCKER, "logs", "-f", "--tail", "2", "sig"])
        .env("DOCKER_HOST", d.host())
        .output()
        .unwrap();
    assert_eq!(text(&follow.stdout), "b\nhup\n");
    assert_eq!(ok(&d.docker(&["rm", "-f", "sig"])), "sig");
    // volume inspect, ps -a formats, rm of a missing container.
    ok(&d.docker(&["volume", "create", "vi"]));
    let v: serde_json::Value =
        serde_json::from_str(&ok(&d.docker(&["volume", "inspect", "vi"]))).unwrap();
    assert_eq!(v[0]["Name"], "vi");
    assert_eq!(v[0]["Driver"], "local");
    let ps = ok(&d.docker(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]));
    assert!(ps.contains("rp Exited (2)"), "{ps}");
    let out = d.docker(&["rm", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("No such container: nosuch"),
        "{}",
        text(&out.stderr)
    );
    let out = d.docker(&["run", "--rm", "--memory", "abc", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
}
