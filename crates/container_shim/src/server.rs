//! The shim process itself: `berth shim CONFIG` ends up in [`main`].

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener as StdUnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc, watch};

use crate::protocol::{self, frame, ExitRecord, Reply, Request};
use crate::reaper::Reaper;
use crate::{ShimConfig, ShimError};

/// Entry point of `berth shim CONFIG`. Must be called while the process is
/// still single-threaded: it forks to detach from the daemon.
pub fn main(config_path: &Path) -> i32 {
    let cfg: ShimConfig = match std::fs::read(config_path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => {
            println!(
                "{}",
                serde_json::json!({ "error": format!("shim config: {e}") })
            );
            return 1;
        }
    };
    // Detach: the daemon waits for this first process only; the grandchild
    // is reparented to init (or the nearest subreaper) and survives the daemon.
    // SAFETY: the process is single-threaded here (called before any runtime or
    // thread is created), so fork is sound.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => return 0,
        Ok(nix::unistd::ForkResult::Child) => {}
        Err(e) => {
            println!("{}", serde_json::json!({ "error": format!("fork: {e}") }));
            return 1;
        }
    }
    let _ = nix::unistd::setsid();
    // SAFETY: plain prctl call with integer arguments.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            println!(
                "{}",
                serde_json::json!({ "error": format!("runtime: {e}") })
            );
            return 1;
        }
    };
    let code = rt.block_on(run(cfg));
    // Do not wait for blocking reader threads stuck on descriptors.
    rt.shutdown_timeout(Duration::from_millis(100));
    code
}

/// Invocations of the OCI runtime binary.
struct Runtime {
    argv: Vec<String>,
    root: PathBuf,
    work_dir: PathBuf,
    id: String,
}

impl Runtime {
    fn command(&self, sub: &str, log_name: &str) -> (Command, PathBuf) {
        let log = self.work_dir.join(format!("runtime-{log_name}.log"));
        let _ = std::fs::remove_file(&log);
        let mut c = Command::new(&self.argv[0]);
        c.args(&self.argv[1..])
            .arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(&log)
            .arg("--log-format")
            .arg("json")
            .arg(sub);
        (c, log)
    }

    /// A runtime command that reports errors on stderr only.
    fn command_without_log(&self, sub: &str) -> (Command, PathBuf) {
        let mut c = Command::new(&self.argv[0]);
        c.args(&self.argv[1..])
            .arg("--root")
            .arg(&self.root)
            .arg(sub);
        (c, PathBuf::new())
    }

    /// Runs a runtime command to completion; `Err` carries the runtime's own message.
    async fn run(&self, reaper: &Reaper, mut cmd: Command, log: &Path) -> Result<(), String> {
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot run runtime: {e}"))?;
        let stderr = child.stderr.take();
        let pid = child.id() as i32;
        let rx = reaper.wait_for(pid);
        reaper.reap_all();
        let err_text = tokio::task::spawn_blocking(move || {
            let mut s = String::new();
            if let Some(mut e) = stderr {
                let _ = e.read_to_string(&mut s);
            }
            s
        })
        .await
        .unwrap_or_default();
        let code = rx.await.unwrap_or(-1);
        if code == 0 {
            return Ok(());
        }
        Err(runtime_error(log, &err_text)
            .unwrap_or_else(|| format!("runtime exited with status {code}")))
    }
}

/// The last error a runc-style runtime wrote to its JSON log, else its stderr.
fn runtime_error(log: &Path, stderr: &str) -> Option<String> {
    let mut found = None;
    if let Ok(text) = std::fs::read_to_string(log) {
        for line in text.lines() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
                if v.get("level").and_then(|l| l.as_str()) == Some("error") {
                    if let Some(m) = v.get("msg").and_then(|m| m.as_str()) {
                        found = Some(m.to_string());
                    }
                }
            }
        }
    }
    found.or_else(|| {
        let t = stderr.trim();
        (!t.is_empty()).then(|| t.to_string())
    })
}

/// Creates a pipe whose ends are close-on-exec (the child's end is dup2'd by
/// `Command`, which clears the flag there).
fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)
}

/// Listens on a console socket and returns the terminal master a runtime sends.
fn console_listener(
    path: &Path,
) -> std::io::Result<std::sync::mpsc::Receiver<std::io::Result<OwnedFd>>> {
    let _ = std::fs::remove_file(path);
    let listener = StdUnixListener::bind(path)?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let res = (|| -> std::io::Result<OwnedFd> {
            let (conn, _) = listener.accept()?;
            let mut buf = [0u8; 4096];
            let mut iov = [std::io::IoSliceMut::new(&mut buf)];
            let mut space = nix::cmsg_space!([RawFd; 1]);
            let msg = recvmsg::<()>(
                conn.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::empty(),
            )
            .map_err(std::io::Error::from)?;
            for c in msg.cmsgs().map_err(std::io::Error::from)? {
                if let ControlMessageOwned::ScmRights(fds) = c {
                    if let Some(fd) = fds.first() {
                        // SAFETY: the kernel just installed this descriptor for us.
                        return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
                    }
                }
            }
            Err(std::io::Error::other("runtime sent no terminal"))
        })();
        let _ = tx.send(res);
    });
    Ok(rx)
}

fn set_winsize(fd: RawFd, rows: u16, cols: u16) {
    if rows == 0 || cols == 0 {
        return;
    }
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize struct we own.
    unsafe {
        libc::ioctl(fd, libc::TIOCSWINSZ, &ws);
    }
}

fn read_pid(path: &Path) -> Result<i32, String> {
    std::fs::read_to_string(path)
        .map_err(|e| format!("reading pid file: {e}"))?
        .trim()
        .parse()
        .map_err(|e| format!("bad pid file: {e}"))
}

/// Copies a descriptor's bytes into `tx` as `(kind, bytes)` from a thread,
/// until EOF or an error (EIO on a terminal whose other side closed).
fn pump(fd: OwnedFd, kind: u8, tx: mpsc::Sender<(u8, Bytes)>) {
    std::thread::spawn(move || {
        let mut f = File::from(fd);
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx
                        .blocking_send((kind, Bytes::copy_from_slice(&buf[..n])))
                        .is_err()
                    {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    });
}

/// A thread that owns a process's stdin; `None` closes it.
fn stdin_writer(f: File) -> std::sync::mpsc::Sender<Option<Vec<u8>>> {
    let (tx, rx) = std::sync::mpsc::channel::<Option<Vec<u8>>>();
    std::thread::spawn(move || {
        let mut f = Some(f);
        while let Ok(msg) = rx.recv() {
            match msg {
                Some(data) => {
                    if let Some(w) = f.as_mut() {
                        if w.write_all(&data).is_err() {
                            f = None;
                        }
                    }
                }
                None => f = None,
            }
        }
    });
    tx
}

/// Appends output to a Docker json-file log, one entry per line.
struct JsonLog {
    file: Option<File>,
    partial: [Vec<u8>; 3],
}

impl JsonLog {
    fn open(path: &Path) -> Self {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok();
        JsonLog {
            file,
            partial: Default::default(),
        }
    }

    fn entry(&mut self, kind: u8, data: &[u8]) {
        let Some(f) = self.file.as_mut() else { return };
        let stream = if kind == frame::STDERR {
            "stderr"
        } else {
            "stdout"
        };
        let line = serde_json::json!({
            "log": String::from_utf8_lossy(data),
            "stream": stream,
            "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        });
        let mut out = line.to_string().into_bytes();
        out.push(b'\n');
        let _ = f.write_all(&out);
    }

    fn write(&mut self, kind: u8, data: &[u8]) {
        let idx = (kind as usize).min(2);
        let mut buf = std::mem::take(&mut self.partial[idx]);
        buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(pos) = buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + pos + 1;
            self.entry(kind, &buf[start..end]);
            start = end;
        }
        let rest = buf[start..].to_vec();
        if rest.len() >= 16 * 1024 {
            self.entry(kind, &rest);
        } else {
            self.partial[idx] = rest;
        }
    }

    fn flush(&mut self) {
        for idx in 1..3 {
            let rest = std::mem::take(&mut self.partial[idx]);
            if !rest.is_empty() {
                self.entry(idx as u8, &rest);
            }
        }
        if let Some(f) = self.file.as_mut() {
            let _ = f.sync_data();
        }
    }
}

type ExecMasters = Mutex<HashMap<String, Arc<OwnedFd>>>;

struct Shim {
    cfg: ShimConfig,
    runtime: Runtime,
    reaper: Reaper,
    pid: i32,
    output: Mutex<Option<broadcast::Sender<(u8, Bytes)>>>,
    stdin: Mutex<Option<std::sync::mpsc::Sender<Option<Vec<u8>>>>>,
    master: Option<Arc<OwnedFd>>,
    exited: watch::Sender<Option<ExitRecord>>,
    exec_masters: ExecMasters,
}

fn say(line: &Reply) {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{}", serde_json::to_string(line).unwrap_or_default());
    let _ = out.flush();
    // The daemon stops listening after this line; never write there again.
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        // SAFETY: dup2 onto the standard output descriptor.
        unsafe {
            libc::dup2(null.as_raw_fd(), 1);
        }
    }
}

async fn run(cfg: ShimConfig) -> i32 {
    let reaper = Reaper::default();
    if let Err(e) = reaper.start() {
        say(&Reply::err(format!("shim: {e}")));
        return 1;
    }
    let runtime = Runtime {
        argv: cfg.runtime.clone(),
        root: cfg.runtime_root.clone(),
        work_dir: cfg.work_dir.clone(),
        id: cfg.id.clone(),
    };
    match create(&cfg, &runtime, &reaper).await {
        Ok((pid, master, stdin, outputs)) => {
            serve(cfg, runtime, reaper, pid, master, stdin, outputs).await
        }
        Err(e) => {
            let (mut c, log) = runtime.command("delete", "delete");
            c.arg("--force").arg(&runtime.id);
            c.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let _ = runtime.run(&reaper, c, &log).await;
            say(&Reply::err(e));
            1
        }
    }
}

type Created = (i32, Option<OwnedFd>, Option<File>, Vec<(u8, OwnedFd)>);

async fn create(cfg: &ShimConfig, runtime: &Runtime, reaper: &Reaper) -> Result<Created, String> {
    let pid_file = cfg.work_dir.join("init.pid");
    let _ = std::fs::remove_file(&pid_file);
    let (mut cmd, log) = runtime.command("create", "create");
    cmd.arg("--bundle")
        .arg(&cfg.bundle)
        .arg("--pid-file")
        .arg(&pid_file);
    if cfg.tty {
        let sock = cfg.work_dir.join("console.sock");
        let rx = console_listener(&sock).map_err(|e| format!("console socket: {e}"))?;
        cmd.arg("--console-socket").arg(&sock).arg(&runtime.id);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let res = runtime.run(reaper, cmd, &log).await;
        if let Err(e) = res {
            // Wake the accepting thread so it ends.
            let _ = std::os::unix::net::UnixStream::connect(&sock);
            let _ = std::fs::remove_file(&sock);
            return Err(e);
        }
        let master = rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| "runtime sent no terminal".to_string())?
            .map_err(|e| format!("console socket: {e}"))?;
        let _ = std::fs::remove_file(&sock);
        set_winsize(master.as_raw_fd(), cfg.console_size.0, cfg.console_size.1);
        let pid = read_pid(&pid_file)?;
        let stdin = if cfg.open_stdin {
            Some(File::from(
                master
                    .try_clone()
                    .map_err(|e| format!("dup terminal: {e}"))?,
            ))
        } else {
            None
        };
        let reader = master
            .try_clone()
            .map_err(|e| format!("dup terminal: {e}"))?;
        Ok((pid, Some(master), stdin, vec![(frame::STDOUT, reader)]))
    } else {
        cmd.arg(&runtime.id);
        let (out_r, out_w) = pipe().map_err(|e| e.to_string())?;
        let (err_r, err_w) = pipe().map_err(|e| e.to_string())?;
        let stdin = if cfg.open_stdin {
            let (in_r, in_w) = pipe().map_err(|e| e.to_string())?;
            cmd.stdin(Stdio::from(in_r));
            Some(File::from(in_w))
        } else {
            cmd.stdin(Stdio::null());
            None
        };
        cmd.stdout(Stdio::from(out_w)).stderr(Stdio::from(err_w));
        let res = runtime.run(reaper, cmd, &log).await;
        res?;
        let pid = read_pid(&pid_file)?;
        Ok((
            pid,
            None,
            stdin,
            vec![(frame::STDOUT, out_r), (frame::STDERR, err_r)],
        ))
    }
}

async fn serve(
    cfg: ShimConfig,
    runtime: Runtime,
    reaper: Reaper,
    pid: i32,
    master: Option<OwnedFd>,
    stdin: Option<File>,
    outputs: Vec<(u8, OwnedFd)>,
) -> i32 {
    let _ = std::fs::remove_file(&cfg.socket_path);
    let listener = match UnixListener::bind(&cfg.socket_path) {
        Ok(l) => l,
        Err(e) => {
            say(&Reply::err(format!("shim socket: {e}")));
            return 1;
        }
    };
    let exit_rx = reaper.wait_for(pid);
    let (out_tx, _) = broadcast::channel(1024);
    let (exited, _) = watch::channel(None);
    let shim = Arc::new(Shim {
        stdin: Mutex::new(stdin.map(stdin_writer)),
        master: master.map(Arc::new),
        output: Mutex::new(Some(out_tx.clone())),
        exited,
        exec_masters: Mutex::new(HashMap::new()),
        cfg,
        runtime,
        reaper,
        pid,
    });

    // Output: pipes/terminal -> log file + attached clients.
    let (tx, mut rx) = mpsc::channel::<(u8, Bytes)>(64);
    for (kind, fd) in outputs {
        pump(fd, kind, tx.clone());
    }
    drop(tx);
    let log_path = shim.cfg.log_path.clone();
    let out_shim = shim.clone();
    let output_done = tokio::spawn(async move {
        let mut log = JsonLog::open(&log_path);
        while let Some((kind, data)) = rx.recv().await {
            log.write(kind, &data);
            let _ = out_tx.send((kind, data));
        }
        log.flush();
        out_shim
            .output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    });

    say(&Reply {
        pid: Some(pid),
        running: true,
        ..Reply::default()
    });

    let accept_shim = shim.clone();
    let server = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((conn, _)) => {
                    let s = accept_shim.clone();
                    tokio::spawn(async move {
                        if let Err(e) = handle(s, conn).await {
                            tracing::debug!("shim connection: {e}");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!("shim accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    });

    let code = exit_rx.await.unwrap_or(255);
    // The output ends when every holder of the pipes has gone; with a pid
    // namespace that is right after init. Do not wait forever otherwise.
    let _ = tokio::time::timeout(Duration::from_secs(2), output_done).await;
    shim.stdin.lock().unwrap_or_else(|e| e.into_inner()).take();
    shim.output.lock().unwrap_or_else(|e| e.into_inner()).take();
    let oom_killed = false;
    let record = ExitRecord {
        exit_code: code,
        finished_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        oom_killed,
    };
    if let Err(e) = write_atomic(
        &shim.cfg.exit_path,
        &serde_json::to_vec(&record).unwrap_or_default(),
    ) {
        tracing::error!("writing exit record: {e}");
    }
    // Report the exit before the runtime's cleanup, which is off the
    // critical path of `run --rm`. The daemon may remove this shim's work
    // dir meanwhile, so `delete` logs to its stderr, not into that dir; the
    // daemon waits for the socket to go before starting a new shim.
    shim.exited.send_replace(Some(record));
    let (mut c, _) = shim.runtime.command_without_log("delete");
    c.arg("--force").arg(&shim.runtime.id);
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Err(e) = shim.runtime.run(&shim.reaper, c, Path::new("")).await {
        tracing::warn!("runtime delete: {e}");
    }
    let _ = std::fs::remove_file(&shim.cfg.socket_path);
    // Let waiting clients read their replies.
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.abort();
    0
}

/// Writes a file through a temporary name, fsync and rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

async fn handle(shim: Arc<Shim>, mut conn: UnixStream) -> Result<(), ShimError> {
    let line = protocol::read_line(&mut conn).await?;
    let req: Request =
        serde_json::from_str(&line).map_err(|e| ShimError::Protocol(e.to_string()))?;
    match req {
        Request::State => {
            let ex = shim.exited.borrow().clone();
            let reply = Reply {
                pid: Some(shim.pid),
                running: ex.is_none(),
                exit_code: ex.as_ref().map(|e| e.exit_code),
                finished_at: ex.map(|e| e.finished_at),
                ..Reply::default()
            };
            protocol::write_json_line(&mut conn, &reply).await?;
        }
        Request::Start => {
            let (mut c, log) = shim.runtime.command("start", "start");
            c.arg(&shim.runtime.id);
            c.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let reply = match shim.runtime.run(&shim.reaper, c, &log).await {
                Ok(()) => Reply {
                    pid: Some(shim.pid),
                    running: true,
                    ..Reply::default()
                },
                Err(e) => Reply::err(e),
            };
            protocol::write_json_line(&mut conn, &reply).await?;
        }
        Request::Kill { signal } => {
            let reply = if shim.exited.borrow().is_some() {
                Reply::err("container is not running")
            } else {
                match nix::sys::signal::Signal::try_from(signal) {
                    Ok(sig) => {
                        match nix::sys::signal::kill(nix::unistd::Pid::from_raw(shim.pid), sig) {
                            Ok(()) => Reply::ok(),
                            Err(e) => Reply::err(format!("kill: {e}")),
                        }
                    }
                    Err(_) => Reply::err(format!("invalid signal: {signal}")),
                }
            };
            protocol::write_json_line(&mut conn, &reply).await?;
        }
        Request::Resize { height, width } => {
            let reply = match &shim.master {
                Some(m) => {
                    set_winsize(m.as_raw_fd(), height, width);
                    Reply::ok()
                }
                None => Reply::err("container has no terminal"),
            };
            protocol::write_json_line(&mut conn, &reply).await?;
        }
        Request::Wait => {
            let mut rx = shim.exited.subscribe();
            let rec = loop {
                if let Some(r) = rx.borrow_and_update().clone() {
                    break r;
                }
                if rx.changed().await.is_err() {
                    return Ok(());
                }
            };
            let reply = Reply {
                exit_code: Some(rec.exit_code),
                finished_at: Some(rec.finished_at),
                ..Reply::default()
            };
            protocol::write_json_line(&mut conn, &reply).await?;
        }
        Request::Attach { stdin } => attach(shim, conn, stdin).await?,
        Request::Exec {
            exec_id,
            process_path,
            tty,
            stdin,
            height,
            width,
        } => {
            exec(
                shim,
                conn,
                exec_id,
                process_path,
                tty,
                stdin,
                (height, width),
            )
            .await?
        }
        Request::ExecResize {
            exec_id,
            height,
            width,
        } => {
            let m = shim
                .exec_masters
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&exec_id)
                .cloned();
            let reply = match m {
                Some(m) => {
                    set_winsize(m.as_raw_fd(), height, width);
                    Reply::ok()
                }
                None => Reply::err("cannot resize a stopped container: unknown"),
            };
            protocol::write_json_line(&mut conn, &reply).await?;
        }
    }
    Ok(())
}

/// Copies STDIN frames from a client to a process's stdin writer until the
/// client closes stdin or the connection.
async fn forward_stdin<R: tokio::io::AsyncRead + Unpin>(
    rd: &mut R,
    tx: &std::sync::mpsc::Sender<Option<Vec<u8>>>,
) {
    loop {
        match protocol::read_frame(rd).await {
            Ok(Some((frame::STDIN, data))) => {
                let _ = tx.send(Some(data));
            }
            Ok(Some((frame::CLOSE_STDIN, _))) | Ok(None) | Err(_) => break,
            Ok(Some(_)) => {}
        }
    }
}

async fn attach(shim: Arc<Shim>, conn: UnixStream, want_stdin: bool) -> Result<(), ShimError> {
    let sub = shim
        .output
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map(|tx| tx.subscribe());
    let (mut rd, mut wr) = conn.into_split();
    protocol::write_json_line(&mut wr, &Reply::ok()).await?;
    let Some(mut sub) = sub else {
        // Output already ended: nothing to stream.
        let _ = wr.shutdown().await;
        return Ok(());
    };
    let stdin_tx = if want_stdin {
        shim.stdin.lock().unwrap_or_else(|e| e.into_inner()).clone()
    } else {
        None
    };
    let input_shim = shim.clone();
    let input = tokio::spawn(async move {
        let Some(tx) = stdin_tx else { return };
        forward_stdin(&mut rd, &tx).await;
        if input_shim.cfg.stdin_once && !input_shim.cfg.tty {
            let _ = tx.send(None);
            input_shim
                .stdin
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
        }
    });
    loop {
        match sub.recv().await {
            Ok((kind, data)) => {
                if protocol::write_frame(&mut wr, kind, &data).await.is_err() {
                    break;
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
    let _ = wr.shutdown().await;
    input.abort();
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn exec(
    shim: Arc<Shim>,
    mut conn: UnixStream,
    exec_id: String,
    process_path: String,
    tty: bool,
    want_stdin: bool,
    size: (u16, u16),
) -> Result<(), ShimError> {
    let short: String = exec_id.chars().take(12).collect();
    let pid_file = shim.cfg.work_dir.join(format!("exec-{short}.pid"));
    let _ = std::fs::remove_file(&pid_file);
    let (mut cmd, log) = shim.runtime.command("exec", &format!("exec-{short}"));
    cmd.arg("--process")
        .arg(&process_path)
        .arg("--pid-file")
        .arg(&pid_file)
        .arg("--detach");
    let mut stdin_file = None;
    let mut outputs = Vec::new();
    let mut master = None;
    let started = if tty {
        let sock = shim.cfg.work_dir.join(format!("e-{short}.sock"));
        let rx = match console_listener(&sock) {
            Ok(rx) => rx,
            Err(e) => {
                protocol::write_json_line(&mut conn, &Reply::err(format!("console socket: {e}")))
                    .await?;
                return Ok(());
            }
        };
        cmd.arg("--console-socket").arg(&sock).arg(&shim.runtime.id);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let res = shim.runtime.run(&shim.reaper, cmd, &log).await;
        let res = match res {
            Ok(()) => rx
                .recv_timeout(Duration::from_secs(10))
                .map_err(|_| "runtime sent no terminal".to_string())
                .and_then(|r| r.map_err(|e| e.to_string())),
            Err(e) => {
                let _ = std::os::unix::net::UnixStream::connect(&sock);
                Err(e)
            }
        };
        let _ = std::fs::remove_file(&sock);
        res.and_then(|m| {
            set_winsize(m.as_raw_fd(), size.0, size.1);
            if want_stdin {
                stdin_file = Some(File::from(m.try_clone().map_err(|e| e.to_string())?));
            }
            outputs.push((frame::STDOUT, m.try_clone().map_err(|e| e.to_string())?));
            master = Some(Arc::new(m));
            Ok(())
        })
    } else {
        cmd.arg(&shim.runtime.id);
        let setup = (|| -> std::io::Result<()> {
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            if want_stdin {
                let (in_r, in_w) = pipe()?;
                cmd.stdin(Stdio::from(in_r));
                stdin_file = Some(File::from(in_w));
            } else {
                cmd.stdin(Stdio::null());
            }
            cmd.stdout(Stdio::from(out_w)).stderr(Stdio::from(err_w));
            outputs.push((frame::STDOUT, out_r));
            outputs.push((frame::STDERR, err_r));
            Ok(())
        })();
        match setup {
            Ok(()) => shim.runtime.run(&shim.reaper, cmd, &log).await,
            Err(e) => Err(e.to_string()),
        }
    };
    let pid = match started.and_then(|_| read_pid(&pid_file)) {
        Ok(pid) => pid,
        Err(e) => {
            protocol::write_json_line(
                &mut conn,
                &Reply::err(format!("OCI runtime exec failed: {e}")),
            )
            .await?;
            return Ok(());
        }
    };
    let exit_rx = shim.reaper.wait_for(pid);
    shim.reaper.reap_all();
    if let Some(m) = &master {
        shim.exec_masters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(exec_id.clone(), m.clone());
    }
    let (mut rd, mut wr) = conn.into_split();
    protocol::write_json_line(
        &mut wr,
        &Reply {
            pid: Some(pid),
            running: true,
            ..Reply::default()
        },
    )
    .await?;
    let (tx, mut rx) = mpsc::channel::<(u8, Bytes)>(64);
    for (kind, fd) in outputs {
        pump(fd, kind, tx.clone());
    }
    drop(tx);
    let stdin_tx = stdin_file.map(stdin_writer);
    let input = tokio::spawn(async move {
        let Some(tx) = stdin_tx else { return };
        forward_stdin(&mut rd, &tx).await;
        if !tty {
            let _ = tx.send(None);
        }
    });
    let mut exit_rx = Some(exit_rx);
    let mut code = None;
    let mut output_open = true;
    while output_open || code.is_none() {
        tokio::select! {
            msg = rx.recv(), if output_open => match msg {
                Some((kind, data)) => {
                    if protocol::write_frame(&mut wr, kind, &data).await.is_err() {
                        output_open = false;
                    }
                }
                None => output_open = false,
            },
            c = async { exit_rx.as_mut().expect("guarded").await }, if exit_rx.is_some() => {
                exit_rx = None;
                code = Some(c.unwrap_or(255));
                // A terminal's reader may stay blocked while other processes
                // hold the slave; give output a moment, then stop waiting.
                if tty {
                    let deadline = tokio::time::sleep(Duration::from_millis(200));
                    tokio::pin!(deadline);
                    loop {
                        tokio::select! {
                            msg = rx.recv() => match msg {
                                Some((kind, data)) => { let _ = protocol::write_frame(&mut wr, kind, &data).await; }
                                None => break,
                            },
                            _ = &mut deadline => break,
                        }
                    }
                    output_open = false;
                }
            }
        }
    }
    shim.exec_masters
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&exec_id);
    let code = code.unwrap_or(255);
    let _ = protocol::write_frame(&mut wr, frame::EXIT, &code.to_be_bytes()).await;
    let _ = wr.shutdown().await;
    input.abort();
    let _ = std::fs::remove_file(&pid_file);
    Ok(())
}
