//! `run -it` and `exec -it` with a real pseudo-terminal on the client side.

mod common;

use common::{ok, text, Daemon};

/// Runs `cmd` under a pty (via python's pty module), types `input`, and
/// returns (exit code, everything the terminal showed).
fn in_pty(d: &Daemon, bin: &str, args: &[&str], env_key: &str, input: &str) -> (i32, String) {
    let script = r##"
import os, pty, sys, time, select
bin, env_key, host, input = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
args = sys.argv[5:]
pid, fd = pty.fork()
if pid == 0:
    os.environ[env_key] = host
    os.execv(bin, [bin] + args)
out = b""
deadline = time.time() + 20
sent = False
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.1)
    if r:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        out += data
    if not sent and b"#" in out:
        os.write(fd, input.encode())
        sent = True
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"##;
    let mut a: Vec<String> = vec![
        "-c".into(),
        script.into(),
        bin.into(),
        env_key.into(),
        d.host(),
        input.into(),
    ];
    a.extend(args.iter().map(|s| s.to_string()));
    let out = std::process::Command::new("python3")
        .args(&a)
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), text(&out.stdout))
}

#[test]
fn run_it_gives_a_terminal() {
    require_root!();
    let d = Daemon::with_busybox();
    let (code, screen) = in_pty(
        &d,
        common::BERTH,
        &["run", "-it", "--rm", "busybox", "sh"],
        "BERTH_HOST",
        "tty; echo hi-$((40+2)); exit 3\r",
    );
    assert_eq!(code, 3, "{screen}");
    assert!(screen.contains("hi-42"), "{screen}");
    assert!(screen.contains("/dev/pts/"), "{screen}");
}

#[test]
fn docker_run_it_and_exec_it() {
    require_root!();
    if !std::path::Path::new(common::DOCKER).exists() {
        return;
    }
    let d = Daemon::with_busybox();
    let (code, screen) = in_pty(
        &d,
        common::DOCKER,
        &["run", "-it", "--rm", "busybox", "sh"],
        "DOCKER_HOST",
        "echo hi-$((40+2)); exit 3\r",
    );
    assert_eq!(code, 3, "{screen}");
    assert!(screen.contains("hi-42"), "{screen}");
    ok(&d.berth(&["run", "-d", "--name", "tt", "busybox", "sleep", "100"]));
    let (code, screen) = in_pty(
        &d,
        common::DOCKER,
        &["exec", "-it", "tt", "sh"],
        "DOCKER_HOST",
        "echo in-$((1+1)); exit 2\r",
    );
    assert_eq!(code, 2, "{screen}");
    assert!(screen.contains("in-2"), "{screen}");
}
