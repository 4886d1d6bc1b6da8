//! `berth build` / `docker build` (classic builder) / docker-py `images.build` against a
//! berth daemon, on the busybox image: steps, cache hits and invalidation, multi-stage
//! builds, .dockerignore, here-documents, ADD of archives, and failures that must leave
//! nothing behind.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{ok, text, Daemon};

/// A build context directory inside the test's private directory.
fn context(d: &Daemon, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = d.root.parent().unwrap().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for (p, content) in files {
        let path = dir.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    dir
}

fn build(d: &Daemon, args: &[&str]) -> Output {
    let mut a = vec!["build"];
    a.extend_from_slice(args);
    d.berth(&a)
}

fn container_count(d: &Daemon) -> usize {
    ok(&d.berth(&["ps", "-aq"]))
        .lines()
        .filter(|l| !l.is_empty())
        .count()
}

fn inspect(d: &Daemon, image: &str) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(&ok(&d.berth(&["image", "inspect", image]))).unwrap();
    v[0].clone()
}

const APP: &str = r#"# syntax=docker/dockerfile:1
FROM busybox
ARG V=1
ENV GREETING=hello \
    OTHER="two words"
WORKDIR /app
COPY hello.txt ./
RUN echo "v=$V $GREETING" > /app/run.txt && cat hello.txt
EXPOSE 8080 9000/udp
LABEL org.test=yes
CMD ["cat", "/app/run.txt"]
"#;

#[test]
fn build_runs_steps_and_reuses_the_cache() {
    require_root!();
    let d = Daemon::with_busybox();
    let ctx = context(
        &d,
        "app",
        &[("Dockerfile", APP), ("hello.txt", "hi from the context\n")],
    );
    let ctx_s = ctx.to_str().unwrap();
    let out = ok(&build(&d, &["-t", "bt-app:1", ctx_s]));
    assert!(out.contains("Step 1/9 : FROM busybox"), "{out}");
    assert!(
        out.contains("Step 6/9 : RUN echo \"v=$V $GREETING\""),
        "{out}"
    );
    assert!(
        out.contains("hi from the context"),
        "RUN output is streamed: {out}"
    );
    assert!(out.contains("Successfully tagged bt-app:1"), "{out}");
    assert!(!out.contains("Using cache"), "{out}");
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("Successfully built "))
        .unwrap()
        .to_string();
    assert_eq!(ok(&d.berth(&["run", "--rm", "bt-app:1"])), "v=1 hello");
    let cfg = &inspect(&d, "bt-app:1")["Config"];
    assert_eq!(cfg["WorkingDir"], "/app");
    assert_eq!(cfg["Cmd"], serde_json::json!(["cat", "/app/run.txt"]));
    assert_eq!(cfg["Labels"]["org.test"], "yes");
    assert!(cfg["ExposedPorts"].get("8080/tcp").is_some(), "{cfg}");
    assert!(cfg["ExposedPorts"].get("9000/udp").is_some(), "{cfg}");
    let env: Vec<String> = serde_json::from_value(cfg["Env"].clone()).unwrap();
    assert!(env.contains(&"GREETING=hello".to_string()), "{env:?}");
    assert!(env.contains(&"OTHER=two words".to_string()), "{env:?}");
    assert_eq!(container_count(&d), 0, "build containers are removed");

    // Unchanged: every step from the cache, same image.
    let out = ok(&build(&d, &["-t", "bt-app:1", ctx_s]));
    assert_eq!(out.matches("Using cache").count(), 8, "{out}");
    assert!(out.contains(&format!("Successfully built {id}")), "{out}");

    // A changed source invalidates its COPY and everything after it.
    std::fs::write(ctx.join("hello.txt"), "changed\n").unwrap();
    let out = ok(&build(&d, &["-t", "bt-app:2", ctx_s]));
    assert_eq!(out.matches("Using cache").count(), 3, "{out}");
    assert!(out.contains("changed"), "{out}");

    // A build arg in use invalidates RUN.
    let out = ok(&build(&d, &["--build-arg", "V=2", "-t", "bt-app:3", ctx_s]));
    assert!(out.contains("Step 6/9"), "{out}");
    assert_eq!(out.matches("Using cache").count(), 4, "{out}");
    assert_eq!(ok(&d.berth(&["run", "--rm", "bt-app:3"])), "v=2 hello");
    let out = ok(&build(
        &d,
        &["--build-arg", "NOPE=1", "-t", "bt-app:2", ctx_s],
    ));
    assert!(
        out.contains("[Warning] One or more build-args [NOPE] were not consumed"),
        "{out}"
    );

    // --no-cache rebuilds everything.
    let quiet_id = ok(&build(&d, &["--no-cache", "-q", ctx_s]));
    assert!(
        quiet_id.starts_with("sha256:"),
        "quiet prints the ID: {quiet_id}"
    );

    // history names the steps; intermediate images are hidden from `images`.
    let hist = ok(&d.berth(&["history", "--no-trunc", "bt-app:1"]));
    assert!(hist.starts_with("IMAGE"), "{hist}");
    assert!(hist.contains("|1 V=1 /bin/sh -c echo"), "{hist}");
    assert!(hist.contains("COPY file:"), "{hist}");
    let images = ok(&d.berth(&["images", "-q"]));
    let all = ok(&d.berth(&["images", "-aq"]));
    assert!(
        all.lines().count() > images.lines().count() + 5,
        "{images}\n--\n{all}"
    );
    // Removing the tags removes the untagged parents too.
    for t in ["bt-app:1", "bt-app:2", "bt-app:3", quiet_id.as_str()] {
        ok(&d.berth(&["rmi", t]));
    }
    let left = ok(&d.berth(&["images", "-aq"]));
    assert_eq!(left.lines().count(), 1, "only busybox is left: {left}");
}

#[test]
fn multi_stage_target_and_copy_from() {
    require_root!();
    let d = Daemon::with_busybox();
    let df = r#"
ARG BASE=busybox
FROM ${BASE} AS builder
RUN mkdir /out && echo built > /out/artifact
FROM busybox AS other
RUN echo other > /other
FROM scratch
COPY --from=builder /out/artifact /artifact
COPY --from=busybox /bin/busybox /bin/busybox
ENTRYPOINT ["/bin/busybox"]
CMD ["cat", "/artifact"]
"#;
    let ctx = context(&d, "ms", &[("Dockerfile", df)]);
    let ctx_s = ctx.to_str().unwrap();
    ok(&build(&d, &["-t", "bt-ms", ctx_s]));
    assert_eq!(ok(&d.berth(&["run", "--rm", "bt-ms"])), "built");
    let layers = inspect(&d, "bt-ms")["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(layers, 2, "scratch + two COPY layers");
    ok(&build(&d, &["--target", "other", "-t", "bt-other", ctx_s]));
    assert_eq!(
        ok(&d.berth(&["run", "--rm", "bt-other", "cat", "/other"])),
        "other"
    );
    let out = build(&d, &["--target", "nope", ctx_s]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("failed to reach build target nope"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn dockerignore_heredocs_and_archives() {
    require_root!();
    let d = Daemon::with_busybox();
    let df = r#"FROM busybox
COPY . /ctx/
COPY --exclude=*.secret --exclude=build . /ex/
COPY <<EOF /etc/motd
hello $NAME
EOF
ADD files.tar.gz /unpacked/
ADD files.tar.bz2 /bz/
ADD files.tar.xz /xz/
RUN <<EOS
set -e
ls /ctx | sort | tr '\n' ' ' > /listing
cat /unpacked/inner.txt /bz/inner.txt /xz/inner.txt >> /listing
EOS
CMD ["cat", "/listing"]
"#;
    let ctx = context(
        &d,
        "ign",
        &[
            ("Dockerfile", df),
            (".dockerignore", "*.secret\n!keep.secret\nbuild\n"),
            ("a.txt", "a"),
            ("x.secret", "no"),
            ("keep.secret", "yes"),
            ("build/out.o", "o"),
        ],
    );
    // An archive ADD extracts.
    let inner = ctx.join("inner");
    std::fs::create_dir_all(&inner).unwrap();
    std::fs::write(inner.join("inner.txt"), "from-archive").unwrap();
    for (flag, name) in [
        ("-czf", "files.tar.gz"),
        ("-cjf", "files.tar.bz2"),
        ("-cJf", "files.tar.xz"),
    ] {
        let st = Command::new("tar")
            .args([flag, name, "-C", "inner", "inner.txt"])
            .current_dir(&ctx)
            .status()
            .unwrap();
        assert!(st.success(), "tar {flag}");
    }
    std::fs::remove_dir_all(&inner).unwrap();
    ok(&build(&d, &["-t", "bt-ign", ctx.to_str().unwrap()]));
    let listing = ok(&d.berth(&["run", "--rm", "bt-ign"]));
    assert_eq!(
        listing,
        "Dockerfile a.txt files.tar.bz2 files.tar.gz files.tar.xz keep.secret from-archivefrom-archivefrom-archive"
    );
    let ex = ok(&d.berth(&["run", "--rm", "bt-ign", "ls", "/ex"]));
    assert!(!ex.contains("secret") && ex.contains("a.txt"), "{ex}");
    assert_eq!(
        ok(&d.berth(&["run", "--rm", "bt-ign", "cat", "/etc/motd"])),
        "hello"
    );
}

#[test]
fn failures_are_clear_and_leave_nothing_behind() {
    require_root!();
    let d = Daemon::with_busybox();
    let fails = |name: &str, df: &str, want: &str, code: i32| {
        let ctx = context(&d, name, &[("Dockerfile", df)]);
        let out = build(&d, &["-t", "bt-fail", ctx.to_str().unwrap()]);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{name}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(want),
            "{name}: {}",
            text(&out.stderr)
        );
    };
    fails(
        "run",
        "FROM busybox\nRUN echo partial > /p\nRUN echo oops; exit 3\n",
        "The command '/bin/sh -c echo oops; exit 3' returned a non-zero code: 3",
        3,
    );
    fails("syntax", "FROM busybox\nRUN true\nFROB x\n", "line 3", 1);
    fails(
        "unknown",
        "FROM busybox\nFROB x\n",
        "unknown instruction",
        1,
    );
    fails(
        "missing",
        "FROM busybox\nCOPY nope.txt /\n",
        "file not found in build context",
        1,
    );
    fails(
        "outside",
        "FROM busybox\nCOPY ../x /\n",
        "outside the build context",
        1,
    );
    fails("base", "FROM bt-no-such-image\n", "bt-no-such-image", 1);
    fails("empty", "", "", 1);
    fails(
        "mount",
        "FROM busybox\nRUN --mount=type=cache,target=/c true\n",
        "requires BuildKit",
        1,
    );
    fails(
        "netnone",
        "FROM busybox\nRUN --network=none ping -c1 -W1 8.8.8.8\n",
        "returned a non-zero code",
        1,
    );
    assert_eq!(container_count(&d), 0, "no build container left");
    let out = d.berth(&["image", "inspect", "bt-fail"]);
    assert!(!out.status.success(), "nothing tagged");
    // Like Docker, the steps that succeeded stay as untagged images (the cache for
    // the next attempt), but nothing carries the tag.
    let tags = ok(&d.berth(&["images", "--format", "{{.Repository}}"]));
    assert_eq!(
        tags.lines().filter(|l| *l != "<none>").collect::<Vec<_>>(),
        vec!["busybox"]
    );
    // A missing Dockerfile is the CLI's own error.
    let ctx = context(&d, "nodf", &[("a", "a")]);
    let out = build(&d, &[ctx.to_str().unwrap()]);
    assert!(!out.status.success());
}

fn docker_build(d: &Daemon, dir: &Path, args: &[&str]) -> Output {
    Command::new(common::DOCKER)
        .arg("build")
        .args(args)
        .arg(dir)
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_BUILDKIT", "0")
        .env(
            "DOCKER_CONFIG",
            d.root.parent().unwrap().join("docker-config"),
        )
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn docker_cli_and_python_sdk_build() {
    require_root!();
    let d = Daemon::with_busybox();
    let ctx = context(&d, "dk", &[("Dockerfile", APP), ("hello.txt", "hi\n")]);
    if Path::new(common::DOCKER).exists() {
        let out = docker_build(&d, &ctx, &["-t", "bt-dk:1", "--build-arg", "V=7"]);
        let stdout = ok(&out);
        assert!(stdout.contains("Step 1/9 : FROM busybox"), "{stdout}");
        assert!(stdout.contains("Successfully tagged bt-dk:1"), "{stdout}");
        assert_eq!(ok(&d.docker(&["run", "--rm", "bt-dk:1"])), "v=7 hello");
        let hist = ok(&d.docker(&["history", "bt-dk:1"]));
        assert!(hist.starts_with("IMAGE"), "{hist}");
        let failing = context(
            &d,
            "dkfail",
            &[("Dockerfile", "FROM busybox\nRUN exit 4\n")],
        );
        let out = docker_build(&d, &failing, &[]);
        assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains("returned a non-zero code: 4"));
    }
    let probe = Command::new("python3")
        .args(["-c", "import docker"])
        .output();
    if !probe.map(|o| o.status.success()).unwrap_or(false) {
        eprintln!("skipped: python docker SDK not installed");
        return;
    }
    let script = r#"
import sys, docker
c = docker.DockerClient(base_url=sys.argv[1])
img, logs = c.images.build(path=sys.argv[2], tag="bt-py:1", buildargs={"V": "5"})
text = "".join(l.get("stream", "") for l in logs)
assert "Successfully built" in text, text
assert "bt-py:1" in img.tags, img.tags
assert c.containers.run("bt-py:1", remove=True) == b"v=5 hello\n"
try:
    c.images.build(fileobj=__import__("io").BytesIO(b"FROM busybox\nRUN exit 2\n"))
    raise SystemExit("no error")
except docker.errors.BuildError as e:
    assert "non-zero code: 2" in str(e), e
print("python-build-ok")
"#;
    let out = Command::new("python3")
        .args(["-c", script, &d.host(), ctx.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        text(&out.stdout).contains("python-build-ok"),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// A `python3 -m http.server` on a free loopback port, killed on drop.
struct HttpServer(std::process::Child, u16);

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_server(dir: &Path) -> HttpServer {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let child = Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let s = HttpServer(child, port);
    assert!(common::eventually(10, || std::net::TcpStream::connect((
        "127.0.0.1",
        port
    ))
    .is_ok()));
    s
}

#[test]
fn add_downloads_urls() {
    require_root!();
    let d = Daemon::with_busybox();
    let served = d.root.parent().unwrap().join("served");
    std::fs::create_dir_all(&served).unwrap();
    std::fs::write(served.join("remote.txt"), "from the web\n").unwrap();
    let srv = http_server(&served);
    let df = format!(
        "FROM busybox\nADD http://127.0.0.1:{0}/remote.txt /dl/\nADD http://127.0.0.1:{0}/remote.txt /named.txt\n",
        srv.1
    );
    let ctx = context(&d, "url", &[("Dockerfile", &df)]);
    ok(&build(&d, &["-t", "bt-url", ctx.to_str().unwrap()]));
    let out = ok(&d.berth(&[
        "run",
        "--rm",
        "bt-url",
        "sh",
        "-c",
        "cat /dl/remote.txt /named.txt; stat -c %a /named.txt",
    ]));
    assert_eq!(out, "from the web\nfrom the web\n600");
    // A changed remote file invalidates the step.
    std::fs::write(served.join("remote.txt"), "changed\n").unwrap();
    let out = ok(&build(&d, &["-t", "bt-url", ctx.to_str().unwrap()]));
    assert_eq!(out.matches("Using cache").count(), 0, "{out}");
    // --checksum: the right digest passes, a wrong one fails the step.
    use sha2::Digest;
    let sum = hex::encode(sha2::Sha256::digest(b"changed\n"));
    let good = format!(
        "FROM busybox\nADD --checksum=sha256:{sum} http://127.0.0.1:{}/remote.txt /c\n",
        srv.1
    );
    ok(&build(
        &d,
        &[context(&d, "sumok", &[("Dockerfile", &good)])
            .to_str()
            .unwrap()],
    ));
    let wrong = format!(
        "FROM busybox\nADD --checksum=sha256:{} http://127.0.0.1:{}/remote.txt /c\n",
        "0".repeat(64),
        srv.1
    );
    let out = build(
        &d,
        &[context(&d, "sumbad", &[("Dockerfile", &wrong)])
            .to_str()
            .unwrap()],
    );
    assert!(
        text(&out.stderr).contains("digest mismatch"),
        "{}",
        text(&out.stderr)
    );
    // `import URL`: the daemon fetches the tarball.
    let tar = image_store::busybox_rootfs_tar(Path::new("/bin/busybox")).unwrap();
    std::fs::write(served.join("bb.tar"), tar).unwrap();
    let url = format!("http://127.0.0.1:{}/bb.tar", srv.1);
    ok(&d.berth(&["import", &url, "bt-from-url:1"]));
    assert_eq!(
        ok(&d.berth(&["run", "--rm", "bt-from-url:1", "echo", "imported"])),
        "imported"
    );
    let bad = context(
        &d,
        "url404",
        &[(
            "Dockerfile",
            &format!("FROM busybox\nADD http://127.0.0.1:{}/nope /x\n", srv.1),
        )],
    );
    let out = build(&d, &[bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("404"), "{}", text(&out.stderr));
}

#[test]
fn contexts_from_stdin_and_dockerfiles_elsewhere() {
    require_root!();
    let d = Daemon::with_busybox();
    let ctx = context(
        &d,
        "stdin",
        &[
            (
                "Dockerfile",
                "FROM busybox\nCOPY f /f\nCMD [\"cat\", \"/f\"]\n",
            ),
            ("f", "from a tar on stdin\n"),
        ],
    );
    // `tar -c . | berth build -t app -`
    let tar = Command::new("tar")
        .args(["-c", "."])
        .current_dir(&ctx)
        .output()
        .unwrap();
    assert!(tar.status.success());
    ok(&d.berth_stdin(&["build", "-t", "bt-stdin", "-"], &tar.stdout));
    assert_eq!(
        ok(&d.berth(&["run", "--rm", "bt-stdin"])),
        "from a tar on stdin"
    );
    // A bare Dockerfile on stdin (no context).
    ok(&d.berth_stdin(
        &["build", "-t", "bt-bare", "-"],
        b"FROM busybox\nRUN echo bare > /b\n",
    ));
    assert_eq!(
        ok(&d.berth(&["run", "--rm", "bt-bare", "cat", "/b"])),
        "bare"
    );
    // -f outside the context, and -f - (Dockerfile on stdin, context a directory).
    let outside = d.root.parent().unwrap().join("elsewhere.Dockerfile");
    std::fs::write(&outside, "FROM busybox\nCOPY f /g\n").unwrap();
    ok(&d.berth(&[
        "build",
        "-t",
        "bt-out",
        "-f",
        outside.to_str().unwrap(),
        ctx.to_str().unwrap(),
    ]));
    assert_eq!(
        ok(&d.berth(&["run", "--rm", "bt-out", "cat", "/g"])),
        "from a tar on stdin"
    );
    ok(&d.berth_stdin(
        &[
            "build",
            "-t",
            "bt-dfstdin",
            "-f",
            "-",
            ctx.to_str().unwrap(),
        ],
        b"FROM busybox\nCOPY f /h\n",
    ));
    assert_eq!(
        ok(&d.berth(&["run", "--rm", "bt-dfstdin", "cat", "/h"])),
        "from a tar on stdin"
    );
}

#[test]
fn every_config_instruction_lands_in_the_image() {
    require_root!();
    let d = Daemon::with_busybox();
    let base = r#"FROM busybox
MAINTAINER berth tests
SHELL ["/bin/sh", "-ec"]
USER 1000:1000
VOLUME ["/data", "/cache"]
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --timeout=2s --retries=4 CMD test -e /tmp || exit 1
ENTRYPOINT ["/bin/sh", "-c"]
ONBUILD RUN echo triggered > /tmp/onbuild
ONBUILD COPY --chown=1000:1000 f /owned
"#;
    let ctx = context(&d, "cfg", &[("Dockerfile", base), ("f", "x")]);
    ok(&build(&d, &["-t", "bt-cfg", ctx.to_str().unwrap()]));
    let v = inspect(&d, "bt-cfg");
    let c = &v["Config"];
    assert_eq!(v["Author"], "berth tests");
    assert_eq!(c["User"], "1000:1000");
    assert_eq!(c["StopSignal"], "SIGINT");
    assert!(
        c["Volumes"].get("/data").is_some() && c["Volumes"].get("/cache").is_some(),
        "{c}"
    );
    assert_eq!(c["Shell"], serde_json::json!(["/bin/sh", "-ec"]));
    assert_eq!(
        c["Healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", "test -e /tmp || exit 1"])
    );
    assert_eq!(c["Healthcheck"]["Interval"], 5_000_000_000u64);
    assert_eq!(c["Healthcheck"]["Retries"], 4);
    assert_eq!(c["OnBuild"].as_array().map(|a| a.len()), Some(2), "{c}");
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    // A child image runs the triggers right after FROM, and does not inherit them.
    let child = context(
        &d,
        "child",
        &[("Dockerfile", "FROM bt-cfg\nUSER 0\n"), ("f", "y")],
    );
    let out = ok(&build(&d, &["-t", "bt-child", child.to_str().unwrap()]));
    assert!(out.contains("# Executing 2 build triggers"), "{out}");
    let owned = ok(&d.berth(&[
        "run",
        "--rm",
        "bt-child",
        "stat -c %u:%g /owned; cat /tmp/onbuild",
    ]));
    assert_eq!(owned, "1000:1000\ntriggered");
    assert!(inspect(&d, "bt-child")["Config"]["OnBuild"].is_null());
}
