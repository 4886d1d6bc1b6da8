//! push/pull/login against a real `docker-registry` on loopback, with berth's CLI and
//! the real docker CLI.

mod common;

use common::registry::Registry;
use common::{ok, text, Daemon};

#[test]
fn push_then_pull_into_another_daemon() {
    require_root!();
    if !Registry::available() {
        eprintln!("skipped: docker-registry not installed");
        return;
    }
    let a = Daemon::with_busybox();
    let reg = Registry::start(a.root.parent().unwrap().join("registry"), None);
    let image = format!("{}/bt/busybox:1", reg.addr);
    ok(&a.berth(&["tag", "busybox", &image]));
    let out = ok(&a.berth(&["push", &image]));
    assert!(
        out.contains(&format!(
            "The push refers to repository [{}/bt/busybox]",
            reg.addr
        )),
        "{out}"
    );
    assert!(out.contains("1: digest: sha256:"), "{out}");
    let again = ok(&a.berth(&["push", &image]));
    assert!(again.contains("Layer already exists"), "{again}");

    let b = Daemon::start();
    let out = ok(&b.berth(&["pull", &image]));
    assert!(out.contains("Pull complete"), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {image}")),
        "{out}"
    );
    assert_eq!(
        ok(&b.berth(&["run", "--rm", &image, "echo", "pulled"])),
        "pulled"
    );
    let same = ok(&b.berth(&["pull", &image]));
    assert!(same.contains("Image is up to date"), "{same}");
    let digest = ok(&b.berth(&["image", "inspect", "-f", "{{index .RepoDigests 0}}", &image]));
    assert!(
        digest.starts_with(&format!("{}/bt/busybox@sha256:", reg.addr)),
        "{digest}"
    );
    // By digest, into a third daemon.
    let c = Daemon::start();
    ok(&c.berth(&["pull", &digest]));
    // A build FROM an image the daemon lacks pulls it first.
    let ctx = c.root.parent().unwrap().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    let other_tag = format!("{}/bt/busybox:1", reg.addr);
    let d = Daemon::start();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {other_tag}\nRUN echo built-on-pulled > /x\n"),
    )
    .unwrap();
    let out = ok(&d.berth(&["build", "-t", "bt-on-pulled", ctx.to_str().unwrap()]));
    assert!(out.contains("Pull complete"), "{out}");
    assert_eq!(
        ok(&d.berth(&["run", "--rm", "bt-on-pulled", "cat", "/x"])),
        "built-on-pulled"
    );

    // Unknown tag, unknown image to push: clear errors.
    let out = b.berth(&["pull", &format!("{}/bt/busybox:nope", reg.addr)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not found"),
        "{}",
        text(&out.stderr)
    );
    let out = a.berth(&["push", &format!("{}/bt/none:1", reg.addr)]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("does not exist locally"),
        "{}",
        text(&out.stderr)
    );

    // The real docker CLI against berth.
    if std::path::Path::new(common::DOCKER).exists() {
        let other = format!("{}/bt/from-docker:2", reg.addr);
        ok(&a.docker(&["tag", "busybox", &other]));
        let out = ok(&a.docker(&["push", &other]));
        assert!(out.contains("2: digest: sha256:"), "{out}");
        let out = ok(&c.docker(&["pull", &other]));
        assert!(out.contains("Downloaded newer image"), "{out}");
    }
}

#[test]
fn login_is_required_by_an_htpasswd_registry() {
    require_root!();
    if !Registry::available() {
        return;
    }
    let d = Daemon::with_busybox();
    let reg = Registry::start(
        d.root.parent().unwrap().join("registry"),
        Some(("bt", "s3cret")),
    );
    let image = format!("{}/bt/private:1", reg.addr);
    ok(&d.berth(&["tag", "busybox", &image]));
    let out = d.berth(&["push", &image]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no basic auth credentials"),
        "{}",
        text(&out.stderr)
    );

    let out = d.berth_stdin(
        &["login", "-u", "bt", "--password-stdin", &reg.addr],
        b"wrong\n",
    );
    assert!(!out.status.success(), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("401"), "{}", text(&out.stderr));
    let out = d.berth_stdin(
        &["login", "-u", "bt", "--password-stdin", &reg.addr],
        b"s3cret\n",
    );
    assert_eq!(ok(&out), "Login Succeeded");
    let cfg = std::fs::read_to_string(d.docker_config().join("config.json")).unwrap();
    assert!(cfg.contains(&reg.addr), "{cfg}");
    ok(&d.berth(&["push", &image]));
    ok(&d.berth(&["rmi", &image]));
    ok(&d.berth(&["pull", &image]));
    assert!(ok(&d.berth(&["logout", &reg.addr])).contains("Removing login credentials"));
    ok(&d.berth(&["rmi", &image]));
    let out = d.berth(&["pull", &image]);
    assert!(!out.status.success());
}
