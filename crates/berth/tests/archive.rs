//! `save`/`load` through the API: berth's CLI and the real docker CLI, and skopeo
//! reading what berth saves.

mod common;

use std::process::Command;

use common::{ok, text, Daemon};

#[test]
fn save_and_load_between_daemons() {
    require_root!();
    let a = Daemon::with_busybox();
    ok(&a.berth(&["tag", "busybox", "bt-saved:1"]));
    let dir = a.root.parent().unwrap().to_path_buf();
    let archive = dir.join("images.tar");
    ok(&a.berth(&[
        "save",
        "-o",
        archive.to_str().unwrap(),
        "busybox",
        "bt-saved:1",
    ]));
    let id = ok(&a.berth(&["image", "inspect", "-f", "{{.Id}}", "busybox"]));

    // skopeo reads the archive as a docker-archive.
    if std::path::Path::new("/usr/bin/skopeo").exists() {
        let out = Command::new("skopeo")
            .args([
                "inspect",
                "--raw",
                &format!("docker-archive:{}:busybox:latest", archive.display()),
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }

    let b = Daemon::start();
    let out = ok(&b.berth(&["load", "-i", archive.to_str().unwrap()]));
    assert!(out.contains("Loaded image: busybox:latest"), "{out}");
    assert!(out.contains("Loaded image: bt-saved:1"), "{out}");
    assert_eq!(
        ok(&b.berth(&["image", "inspect", "-f", "{{.Id}}", "bt-saved:1"])),
        id
    );
    assert_eq!(
        ok(&b.berth(&["run", "--rm", "bt-saved:1", "echo", "loaded"])),
        "loaded"
    );

    // Bad input: a clear error, nothing tagged.
    let junk = dir.join("junk.tar");
    std::fs::write(&junk, b"not an archive at all").unwrap();
    let out = b.berth(&["load", "-i", junk.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("Error response from daemon"),
        "{}",
        text(&out.stderr)
    );
    let out = a.berth(&["save", "-o", dir.join("x.tar").to_str().unwrap(), "bt-nope"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("No such image: bt-nope"),
        "{}",
        text(&out.stderr)
    );
    assert!(!dir.join("x.tar").exists(), "no partial archive");

    // The real docker CLI: save to stdout, load from stdin.
    if std::path::Path::new(common::DOCKER).exists() {
        let saved = a.docker(&["save", "bt-saved:1"]);
        assert!(saved.status.success(), "{}", text(&saved.stderr));
        ok(&b.berth(&["rmi", "bt-saved:1"]));
        let mut child = Command::new(common::DOCKER)
            .args(["load"])
            .env("DOCKER_HOST", b.host())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&saved.stdout)
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            text(&out.stdout).contains("Loaded image: bt-saved:1"),
            "{}",
            text(&out.stdout)
        );
    }
}
