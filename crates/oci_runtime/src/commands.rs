//! The subcommands, on top of libcontainer's builders and `Container`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::error::LibcontainerError;
use libcontainer::syscall::syscall::SyscallType;
use nix::errno::Errno;
use nix::unistd::Pid;

use crate::cli::{absolute, Cli, Command, DEFAULT_ROOT};
use crate::exec::{load_process, load_spec, process_from_spec, ExecOverrides, SeccompExecutor};
use crate::signal::parse_signal;
use crate::state::{render_table, status_word, RuncState};
use crate::{describe_libcontainer, wait, RuntimeError};

/// Runs the parsed command; returns the process exit code on success.
pub fn dispatch(cli: &Cli) -> Result<i32, RuntimeError> {
    if cli.global.systemd_cgroup {
        return Err(RuntimeError::Unsupported(
            "the systemd cgroup driver is not supported (built without systemd)".to_string(),
        ));
    }
    let root = absolute(
        cli.global
            .root
            .as_deref()
            .unwrap_or_else(|| Path::new(DEFAULT_ROOT)),
    )
    .map_err(|source| RuntimeError::Io {
        context: "resolve --root".to_string(),
        source,
    })?;
    match &cli.command {
        Command::Create(a) => create(&root, a),
        Command::Start(a) => start(&root, &a.container_id),
        Command::State(a) => state(&root, &a.container_id),
        Command::Kill(a) => kill(&root, &a.container_id, &a.signal, a.all),
        Command::Delete(a) => delete(&root, &a.container_id, a.force),
        Command::Exec(a) => exec(&root, a),
        Command::Run(a) => run(&root, a),
        Command::List(a) => list(&root, &a.format, a.quiet),
        Command::Pause(a) => pause_resume(&root, &a.container_id, true),
        Command::Resume(a) => pause_resume(&root, &a.container_id, false),
    }
}

/// Checks a container ID with runc's rules (it becomes a directory name).
pub fn validate_id(id: &str) -> Result<(), RuntimeError> {
    let ok_chars = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'));
    if id.is_empty() || id == "." || id == ".." || !ok_chars || id.len() > 1024 {
        return Err(RuntimeError::Usage(format!("invalid container id {id:?}")));
    }
    Ok(())
}

fn lc(op: impl Into<String>) -> impl FnOnce(LibcontainerError) -> RuntimeError {
    let op = op.into();
    move |e| RuntimeError::Container {
        op,
        message: describe_libcontainer(&e),
    }
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> RuntimeError {
    let context = context.into();
    move |source| RuntimeError::Io { context, source }
}

fn abs(path: &Path, what: &str) -> Result<PathBuf, RuntimeError> {
    absolute(path).map_err(io(format!("resolve {what} {}", path.display())))
}

fn ensure_root(root: &Path) -> Result<(), RuntimeError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .map_err(io(format!("create state directory {}", root.display())))
}

fn load(root: &Path, id: &str) -> Result<Container, RuntimeError> {
    validate_id(id)?;
    let dir = root.join(id);
    if !dir.join("state.json").exists() {
        return Err(RuntimeError::NotExist(id.to_string()));
    }
    Container::load(dir).map_err(lc(format!("load container {id}")))
}

/// Writes a pid file through a temporary name (readers never see it empty).
fn write_pid_file(path: &Path, pid: i32) -> Result<(), RuntimeError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pid".to_string());
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let ctx = format!("write pid file {}", path.display());
    let mut f = fs::File::create(&tmp).map_err(io(ctx.clone()))?;
    f.write_all(pid.to_string().as_bytes())
        .map_err(io(ctx.clone()))?;
    drop(f);
    fs::rename(&tmp, path).map_err(io(ctx))
}

/// Options shared by `create` and `run`.
struct InitOptions<'a> {
    id: &'a str,
    bundle: &'a Path,
    console_socket: Option<&'a Path>,
    pid_file: Option<&'a Path>,
    preserve_fds: i32,
    no_pivot: bool,
    detach: bool,
}

/// Creates the container (init waits for `start`); on failure nothing is
/// left behind in the state directory.
fn build_init(root: &Path, o: &InitOptions<'_>) -> Result<Container, RuntimeError> {
    validate_id(o.id)?;
    if o.preserve_fds < 0 {
        return Err(RuntimeError::Usage("--preserve-fds must be >= 0".into()));
    }
    let bundle = abs(o.bundle, "bundle")?;
    let console = o
        .console_socket
        .map(|p| abs(p, "console socket"))
        .transpose()?;
    let pid_file = o.pid_file.map(|p| abs(p, "pid file")).transpose()?;
    ensure_root(root)?;
    let dir = root.join(o.id);
    if dir.exists() {
        return Err(RuntimeError::Exists(o.id.to_string()));
    }
    normalize_no_new_privileges(&bundle)?;
    let op = format!("create container {}", o.id);
    let built = ContainerBuilder::new(o.id.to_string(), SyscallType::default())
        .with_root_path(root)
        .map_err(lc(op.clone()))?
        .with_console_socket(console)
        .with_preserved_fds(o.preserve_fds)
        .as_init(&bundle)
        .with_systemd(false)
        .with_detach(o.detach)
        .with_no_pivot(o.no_pivot)
        .build();
    let container = match built {
        Ok(c) => c,
        Err(e) => {
            wait::reap_children(std::time::Duration::from_secs(2));
            remove_failed(&dir);
            return Err(lc(op)(e));
        }
    };
    if let (Some(path), Some(pid)) = (&pid_file, container.pid()) {
        if let Err(e) = write_pid_file(path, pid.as_raw()) {
            let mut c = container;
            let _ = c.delete(true);
            return Err(e);
        }
    }
    Ok(container)
}

/// Works around libcontainer 0.7 treating `"noNewPrivileges": false` unlike
/// an absent field: with a seccomp profile it then installs the filter after
/// dropping capabilities, which the kernel refuses ("failed to load seccomp
/// context"). Both spellings mean the same in the OCI spec (and Docker omits
/// the field when false), so the explicit `false` is dropped from the
/// bundle's config.json, rewritten atomically, before libcontainer reads it.
fn normalize_no_new_privileges(bundle: &Path) -> Result<(), RuntimeError> {
    let path = bundle.join("config.json");
    let Ok(bytes) = fs::read(&path) else {
        // libcontainer reports the missing/unreadable config itself.
        return Ok(());
    };
    let Some(fixed) = drop_false_no_new_privileges(&bytes) else {
        return Ok(());
    };
    tracing::debug!(path = %path.display(), "dropping noNewPrivileges=false");
    let tmp = bundle.join(".config.json.berth-tmp");
    let ctx = format!("rewrite {}", path.display());
    fs::write(&tmp, fixed).map_err(io(ctx.clone()))?;
    if let Ok(meta) = fs::metadata(&path) {
        let _ = fs::set_permissions(&tmp, meta.permissions());
    }
    fs::rename(&tmp, &path).map_err(io(ctx))
}

/// The config as libcontainer 0.7 needs it, or None when nothing changes:
/// - without `process.noNewPrivileges` when it is `false` and a seccomp
///   profile is present (see [`normalize_no_new_privileges`]);
/// - with the operands of `SCMP_CMP_MASKED_EQ` conditions swapped: the OCI
///   spec (and runc) read `value` as the mask and `valueTwo` as the datum,
///   libcontainer the other way round, which turned Docker's "clone without
///   namespace flags" rule into "any clone".
fn drop_false_no_new_privileges(bytes: &[u8]) -> Option<Vec<u8>> {
    const KEY: &str = "noNewPrivileges";
    const DONE: &str = "org.berth.libcontainer-operands-swapped";
    let mut v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let mut changed = false;
    // The swap must happen once per config: mark the config when done.
    let swapped = v.get("annotations").and_then(|a| a.get(DONE)).is_some();
    let has_seccomp = v
        .get("linux")
        .and_then(|l| l.get("seccomp"))
        .is_some_and(|s| !s.is_null());
    if has_seccomp {
        if let Some(process) = v.get_mut("process").and_then(|p| p.as_object_mut()) {
            if process.get(KEY) == Some(&serde_json::Value::Bool(false)) {
                process.remove(KEY);
                changed = true;
            }
        }
    }
    let mut swapped_now = false;
    if let Some(syscalls) = v
        .get_mut("linux")
        .filter(|_| !swapped)
        .and_then(|l| l.get_mut("seccomp"))
        .and_then(|s| s.get_mut("syscalls"))
        .and_then(|s| s.as_array_mut())
    {
        for sc in syscalls.iter_mut() {
            let Some(args) = sc.get_mut("args").and_then(|a| a.as_array_mut()) else {
                continue;
            };
            for arg in args.iter_mut() {
                if arg.get("op").and_then(|o| o.as_str()) != Some("SCMP_CMP_MASKED_EQ") {
                    continue;
                }
                let Some(obj) = arg.as_object_mut() else {
                    continue;
                };
                let value = obj.get("value").cloned().unwrap_or(serde_json::json!(0));
                let two = obj.get("valueTwo").cloned().unwrap_or(serde_json::json!(0));
                obj.insert("value".into(), two);
                obj.insert("valueTwo".into(), value);
                swapped_now = true;
            }
        }
    }
    if swapped_now {
        changed = true;
        if !v.get("annotations").is_some_and(|a| a.is_object()) {
            v["annotations"] = serde_json::json!({});
        }
        v["annotations"][DONE] = serde_json::json!("true");
    }
    if !changed {
        return None;
    }
    serde_json::to_vec_pretty(&v).ok()
}

/// Removes what a failed create left (a directory this process created).
fn remove_failed(dir: &Path) {
    if !dir.exists() {
        return;
    }
    if dir.join("state.json").exists() {
        if let Ok(mut c) = Container::load(dir.to_path_buf()) {
            if c.delete(true).is_ok() {
                return;
            }
        }
    }
    if let Err(e) = fs::remove_dir_all(dir) {
        tracing::warn!(dir = %dir.display(), "cleanup after failed create: {e}");
    }
}

fn create(root: &Path, a: &liboci_cli::Create) -> Result<i32, RuntimeError> {
    build_init(
        root,
        &InitOptions {
            id: &a.container_id,
            bundle: &a.bundle,
            console_socket: a.console_socket.as_deref(),
            pid_file: a.pid_file.as_deref(),
            preserve_fds: a.preserve_fds,
            no_pivot: a.no_pivot,
            detach: true,
        },
    )?;
    Ok(0)
}

fn start(root: &Path, id: &str) -> Result<i32, RuntimeError> {
    let mut c = load(root, id)?;
    match c.status() {
        ContainerStatus::Created => {}
        ContainerStatus::Stopped => {
            return Err(RuntimeError::Container {
                op: format!("start container {id}"),
                message: "cannot start a container that has stopped".into(),
            })
        }
        other => {
            return Err(RuntimeError::Container {
                op: format!("start container {id}"),
                message: format!("cannot start an already {} container", status_word(other)),
            })
        }
    }
    c.start().map_err(lc(format!("start container {id}")))?;
    Ok(0)
}

fn state(root: &Path, id: &str) -> Result<i32, RuntimeError> {
    let c = load(root, id)?;
    let s = RuncState::from_container(&c);
    let text = serde_json::to_string_pretty(&s).map_err(|e| RuntimeError::Container {
        op: "encode state".into(),
        message: e.to_string(),
    })?;
    println!("{text}");
    Ok(0)
}

fn kill(root: &Path, id: &str, signal: &str, all: bool) -> Result<i32, RuntimeError> {
    let sig = parse_signal(signal)?;
    let mut c = load(root, id)?;
    let op = format!("kill container {id}");
    if all {
        let before = c.status();
        c.kill(sig, true).map_err(lc(op.clone()))?;
        // libcontainer records "stopped" after any signal; keep the real
        // status when the processes survived it (e.g. SIGUSR1 to a created
        // container) so that `start` still works.
        if matches!(before, ContainerStatus::Created | ContainerStatus::Paused) {
            if let Ok(mut after) = Container::load(root.join(id)) {
                if after.status() != ContainerStatus::Stopped {
                    after.set_status(before);
                    let _ = after.save();
                }
            }
        }
        return Ok(0);
    }
    if !c.can_kill() {
        return Err(RuntimeError::Container {
            op,
            message: "container not running".into(),
        });
    }
    let pid = c.pid().ok_or_else(|| RuntimeError::Container {
        op: op.clone(),
        message: "container has no init pid".into(),
    })?;
    match nix::sys::signal::kill(pid, sig) {
        Ok(()) | Err(Errno::ESRCH) => Ok(0),
        Err(errno) => Err(RuntimeError::Sys { context: op, errno }),
    }
}

fn delete(root: &Path, id: &str, force: bool) -> Result<i32, RuntimeError> {
    validate_id(id)?;
    let dir = root.join(id);
    if !dir.join("state.json").exists() {
        // An aborted create may leave a directory without state; runc
        // removes it, and `--force` on a missing container is not an error.
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(io(format!("remove {}", dir.display())))?;
        }
        return if force {
            Ok(0)
        } else {
            Err(RuntimeError::NotExist(id.to_string()))
        };
    }
    let mut c = Container::load(dir).map_err(lc(format!("load container {id}")))?;
    if !force
        && matches!(
            c.status(),
            ContainerStatus::Running | ContainerStatus::Paused
        )
    {
        return Err(RuntimeError::Container {
            op: format!("delete container {id}"),
            message: format!(
                "cannot delete container that is not stopped: {}",
                status_word(c.status())
            ),
        });
    }
    c.delete(force)
        .map_err(lc(format!("delete container {id}")))?;
    Ok(0)
}

/// Removes a temporary file when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn exec(root: &Path, a: &liboci_cli::Exec) -> Result<i32, RuntimeError> {
    let id = a.container_id.as_str();
    if a.preserve_fds < 0 {
        return Err(RuntimeError::Usage("--preserve-fds must be >= 0".into()));
    }
    let c = load(root, id)?;
    let op = format!("exec in container {id}");
    match c.status() {
        ContainerStatus::Running => {}
        ContainerStatus::Paused if a.ignore_paused => {}
        other => {
            return Err(RuntimeError::Container {
                op,
                message: format!("cannot exec in a {} container", status_word(other)),
            })
        }
    }
    let spec = load_spec(c.bundle())?;
    let process = match &a.process {
        Some(path) => load_process(&abs(path, "process file")?)?,
        None => process_from_spec(
            &spec,
            &ExecOverrides {
                args: a.command.clone(),
                env: a.env.clone(),
                cwd: a.cwd.clone(),
                tty: a.tty,
                user: a.user,
                additional_gids: a.additional_gids.clone(),
                caps: a.cap.clone(),
                no_new_privs: a.no_new_privs,
                apparmor: a.apparmor.clone(),
                process_label: a.process_label.clone(),
            },
        )?,
    };
    let console = a
        .console_socket
        .as_deref()
        .map(|p| abs(p, "console socket"))
        .transpose()?;
    let pid_file = a
        .pid_file
        .as_deref()
        .map(|p| abs(p, "pid file"))
        .transpose()?;

    // Hand libcontainer the complete process through a private file.
    let tmp = TempFile(root.join(id).join(format!(
        "berth-exec-{}-{}.json",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
    )));
    let bytes = serde_json::to_vec(&process).map_err(|e| RuntimeError::Container {
        op: op.clone(),
        message: format!("encode process: {e}"),
    })?;
    fs::write(&tmp.0, bytes).map_err(io(format!("write {}", tmp.0.display())))?;

    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().clone());
    let pid = ContainerBuilder::new(id.to_string(), SyscallType::default())
        .with_root_path(root)
        .map_err(lc(op.clone()))?
        .with_console_socket(console)
        .with_preserved_fds(a.preserve_fds)
        .with_executor(SeccompExecutor::new(seccomp))
        .as_tenant()
        .with_detach(a.detach)
        .with_process(Some(&tmp.0))
        .with_ignore_paused(a.ignore_paused)
        .with_sub_cgroup(a.cgroup.clone())
        .build();
    let pid = match pid {
        Ok(pid) => pid,
        Err(e) => {
            wait::reap_children(std::time::Duration::from_secs(2));
            return Err(lc(op)(e));
        }
    };
    drop(tmp);
    if let Some(path) = &pid_file {
        write_pid_file(path, pid.as_raw())?;
    }
    if a.detach {
        return Ok(0);
    }
    let set = wait::block_signals()?;
    wait::wait_forwarding(pid, &set)
}

fn run(root: &Path, a: &liboci_cli::Run) -> Result<i32, RuntimeError> {
    let id = a.container_id.as_str();
    let mut c = build_init(
        root,
        &InitOptions {
            id,
            bundle: &a.bundle,
            console_socket: a.console_socket.as_deref(),
            pid_file: a.pid_file.as_deref(),
            preserve_fds: a.preserve_fds,
            no_pivot: a.no_pivot,
            detach: a.detach,
        },
    )?;
    let pid = c.pid().unwrap_or(Pid::from_raw(0));
    let signals = if a.detach {
        None
    } else {
        if !a.no_subreaper {
            // SAFETY: plain prctl with integer arguments.
            unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        }
        match wait::block_signals() {
            Ok(set) => Some(set),
            Err(e) => {
                let _ = c.delete(true);
                return Err(e);
            }
        }
    };
    if let Err(e) = c.start() {
        let _ = c.delete(true);
        return Err(lc(format!("start container {id}"))(e));
    }
    let Some(set) = signals else {
        return Ok(0);
    };
    let code = wait::wait_forwarding(pid, &set);
    if !a.keep {
        match Container::load(root.join(id)) {
            Ok(mut c) => {
                if let Err(e) = c.delete(true) {
                    tracing::warn!("delete after run: {}", describe_libcontainer(&e));
                }
            }
            Err(e) => tracing::warn!("reload after run: {}", describe_libcontainer(&e)),
        }
    }
    code
}

fn list(root: &Path, format: &str, quiet: bool) -> Result<i32, RuntimeError> {
    if format != "table" && format != "json" {
        return Err(RuntimeError::Usage(format!(
            "invalid format {format:?}: expected table or json"
        )));
    }
    let mut states = Vec::new();
    match fs::read_dir(root) {
        Ok(entries) => {
            for entry in entries.flatten() {
                let path = entry.path();
                if !path.join("state.json").exists() {
                    continue;
                }
                match Container::load(path.clone()) {
                    Ok(c) => states.push(RuncState::from_container(&c)),
                    Err(e) => tracing::warn!(
                        dir = %path.display(),
                        "skipping unreadable container: {}",
                        describe_libcontainer(&e)
                    ),
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(format!("read {}", root.display()))(e)),
    }
    states.sort_by(|a, b| a.id.cmp(&b.id));
    if quiet {
        for s in &states {
            println!("{}", s.id);
        }
    } else if format == "json" {
        let text = serde_json::to_string(&states).map_err(|e| RuntimeError::Container {
            op: "encode list".into(),
            message: e.to_string(),
        })?;
        println!("{text}");
    } else {
        print!("{}", render_table(&states));
    }
    Ok(0)
}

fn pause_resume(root: &Path, id: &str, pause: bool) -> Result<i32, RuntimeError> {
    let mut c = load(root, id)?;
    if pause {
        c.pause().map_err(lc(format!("pause container {id}")))?;
    } else {
        c.resume().map_err(lc(format!("resume container {id}")))?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_validation() {
        for ok in ["abc", "a-b_c.d+e", "0123456789abcdef", "..."] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "a\0b", "é"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn missing_container_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            load(dir.path(), "nope"),
            Err(RuntimeError::NotExist(_))
        ));
        assert!(matches!(
            delete(dir.path(), "nope", false),
            Err(RuntimeError::NotExist(_))
        ));
        assert_eq!(delete(dir.path(), "nope", true).ok(), Some(0));
        // A leftover directory without state is cleaned up.
        fs::create_dir(dir.path().join("half")).expect("mkdir");
        assert_eq!(delete(dir.path(), "half", true).ok(), Some(0));
        assert!(!dir.path().join("half").exists());
        assert!(matches!(
            kill(dir.path(), "nope", "TERM", false),
            Err(RuntimeError::NotExist(_))
        ));
        assert!(matches!(
            kill(dir.path(), "nope", "NOPE", false),
            Err(RuntimeError::InvalidSignal(_))
        ));
    }

    #[test]
    fn pid_file_is_written_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("x.pid");
        write_pid_file(&p, 1234).expect("write");
        assert_eq!(fs::read_to_string(&p).expect("read"), "1234");
        assert!(!dir.path().join(".x.pid.tmp").exists());
        assert!(write_pid_file(&dir.path().join("no/such/dir/p"), 1).is_err());
    }

    #[test]
    fn no_new_privileges_false_is_dropped_only_with_seccomp() {
        let with = br#"{"process":{"noNewPrivileges":false,"args":["sh"]},"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ALLOW"}}}"#;
        let fixed = drop_false_no_new_privileges(with).expect("changed");
        let v: serde_json::Value = serde_json::from_slice(&fixed).expect("json");
        assert!(v["process"].get("noNewPrivileges").is_none());
        assert_eq!(v["process"]["args"][0], "sh");
        assert_eq!(v["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ALLOW");

        let no_seccomp = br#"{"process":{"noNewPrivileges":false},"linux":{}}"#;
        assert!(drop_false_no_new_privileges(no_seccomp).is_none());
        let truthy = br#"{"process":{"noNewPrivileges":true},"linux":{"seccomp":{}}}"#;
        assert!(drop_false_no_new_privileges(truthy).is_none());
        assert!(drop_false_no_new_privileges(b"noNewPrivileges garbage").is_none());
        let masked = br#"{"process":{},"linux":{"seccomp":{"syscalls":[{"names":["clone"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]}]}}}"#;
        let once = drop_false_no_new_privileges(masked).expect("swapped");
        let v: serde_json::Value = serde_json::from_slice(&once).unwrap();
        let arg = &v["linux"]["seccomp"]["syscalls"][0]["args"][0];
        assert_eq!(arg["value"], 0);
        assert_eq!(arg["valueTwo"], 2114060288u64);
        // A second pass leaves an already fixed config alone.
        assert!(drop_false_no_new_privileges(&once).is_none());
        assert!(drop_false_no_new_privileges(b"{}").is_none());

        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("config.json"), with).expect("write");
        normalize_no_new_privileges(dir.path()).expect("normalize");
        let v: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.path().join("config.json")).expect("read"))
                .expect("json");
        assert!(v["process"].get("noNewPrivileges").is_none());
        normalize_no_new_privileges(&dir.path().join("missing")).expect("missing is fine");
    }

    #[test]
    fn list_of_missing_root_is_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(list(&dir.path().join("none"), "json", false).ok(), Some(0));
        assert!(list(dir.path(), "xml", false).is_err());
    }
}
