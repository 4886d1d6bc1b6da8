//! Starting, stopping, waiting for, restarting and removing containers, and
//! finding running containers again after a daemon restart.

use std::sync::Arc;
use std::time::Duration;

use bollard::models::RestartPolicyNameEnum;
use container_shim::protocol::{Reply, Request};
use container_shim::{client, ShimConfig};

use crate::container::{now_rfc3339, Container, Status};
use crate::error::{EngineError, Result};
use crate::{rootfs, Ctr, Engine, PendingAttach};

/// What `wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

impl WaitCondition {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            _ => Err(EngineError::InvalidArgument(format!(
                "invalid condition: \"{s}\""
            ))),
        }
    }
}

/// Kills a created-but-failed container through its shim and waits for it.
async fn kill_and_wait(socket: &std::path::Path) {
    let _ = client::call(
        socket,
        &Request::Kill {
            signal: libc::SIGKILL,
        },
    )
    .await;
    let _ = client::call(socket, &Request::Wait).await;
}

/// Exit code Docker reports when the runtime could not start the process.
fn start_failure_code(msg: &str) -> i32 {
    if msg.contains("executable file not found") || msg.contains("no such file or directory") {
        127
    } else if msg.contains("permission denied") || msg.contains("is a directory") {
        126
    } else {
        128
    }
}

impl Engine {
    /// Starts a created or stopped container.
    pub async fn start(self: &Arc<Self>, key: &str) -> Result<()> {
        let ctr = self.find(key)?;
        let _op = ctr.op.lock().await;
        let rec = ctr.get();
        if rec.state.status == Status::Running {
            return Err(EngineError::NotModified);
        }
        if rec.state.status == Status::Removing {
            return Err(EngineError::Conflict(format!(
                "container {} is marked for removal and cannot be started",
                rec.id
            )));
        }
        {
            let mut r = ctr.rec.lock().unwrap_or_else(|e| e.into_inner());
            r.manually_stopped = false;
        }
        self.start_locked(&ctr).await
    }

    /// Starts the container's process; the caller holds `ctr.op`.
    pub(crate) async fn start_locked(self: &Arc<Self>, ctr: &Arc<Ctr>) -> Result<()> {
        let rec = ctr.get();
        match self.launch(ctr, &rec).await {
            Ok((pid, joined)) => {
                let rec = {
                    let mut r = ctr.rec.lock().unwrap_or_else(|e| e.into_inner());
                    r.endpoints = joined.endpoints;
                    r.ports = joined.ports;
                    r.state.status = Status::Running;
                    r.state.pid = pid;
                    r.state.error.clear();
                    r.state.exit_code = 0;
                    r.state.started_at = now_rfc3339();
                    r.state.finished_at = crate::container::ZERO_TIME.into();
                    r.clone()
                };
                self.persist(&rec)?;
                let engine = self.clone();
                let c = ctr.clone();
                tokio::spawn(async move { engine.monitor(c).await });
                tracing::info!(container = %rec.id, pid, "started");
                Ok(())
            }
            Err(msg) => {
                let code = start_failure_code(&msg);
                let rec = {
                    let mut r = ctr.rec.lock().unwrap_or_else(|e| e.into_inner());
                    r.state.error = msg.clone();
                    r.state.exit_code = code;
                    r.state.pid = 0;
                    if r.state.status != Status::Created {
                        r.state.status = Status::Exited;
                    }
                    r.state.finished_at = now_rfc3339();
                    r.clone()
                };
                let _ = self.persist(&rec);
                rootfs::unmount_rootfs(&self.layout(&rec.id));
                for p in ctr
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .drain(..)
                {
                    let _ = p.tx.send(None);
                }
                ctr.life.send_modify(|l| {
                    l.exits += 1;
                    l.exit_code = code;
                    // dockerd reports a failed start through `start`, not `wait`.
                    l.error = None;
                });
                if rec.host_config.auto_remove.unwrap_or(false) {
                    let _ = self.remove_locked(ctr, true).await;
                }
                Err(EngineError::InvalidArgument(format!(
                    "failed to create task for container: OCI runtime create failed: {msg}: unknown"
                )))
            }
        }
    }

    /// `start_locked` behind a boxed future, which breaks the type cycle
    /// start -> monitor -> restart -> start.
    fn start_boxed(
        self: Arc<Self>,
        ctr: Arc<Ctr>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send>> {
        Box::pin(async move { self.start_locked(&ctr).await })
    }

    /// Prepares the bundle, starts the shim, connects waiting attaches and
    /// starts the process. Returns the pid, or the runtime's error text.
    async fn launch(
        self: &Arc<Self>,
        ctr: &Arc<Ctr>,
        rec: &Container,
    ) -> std::result::Result<(i32, crate::networking::Joined), String> {
        let layout = self.layout(&rec.id);
        let t0 = std::time::Instant::now();
        let argv = self
            .cfg
            .runtime_argv(&rec.runtime)
            .ok_or_else(|| format!("unknown runtime {}", rec.runtime))?;
        rootfs::mount_rootfs(&layout, &rec.layers).map_err(|e| e.to_string())?;
        let prepared = self.write_bundle(rec).map_err(|e| e.to_string());
        if let Err(e) = prepared {
            rootfs::unmount_rootfs(&layout);
            return Err(e);
        }
        tracing::debug!(container = %rec.id, elapsed = ?t0.elapsed(), "rootfs and bundle ready");
        // A previous shim of this container may still be cleaning up after
        // reporting its exit; it removes its socket when done.
        for _ in 0..100 {
            if !layout.socket().exists() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        std::fs::create_dir_all(&layout.run_dir).map_err(|e| e.to_string())?;
        let _ = std::fs::remove_file(layout.exit());
        let size = rec
            .host_config
            .console_size
            .clone()
            .filter(|s| s.len() == 2)
            .map(|s| (s[0] as u16, s[1] as u16))
            .unwrap_or((0, 0));
        let shim_cfg = ShimConfig {
            id: rec.id.clone(),
            bundle: layout.bundle(),
            runtime: argv,
            runtime_root: self.cfg.exec_root.join("runtime").join(&rec.runtime),
            tty: rec.tty(),
            open_stdin: rec.config.open_stdin.unwrap_or(false),
            stdin_once: rec.config.stdin_once.unwrap_or(false),
            console_size: size,
            log_path: layout.log(&rec.id),
            exit_path: layout.exit(),
            socket_path: layout.socket(),
            work_dir: layout.run_dir.clone(),
        };
        let exe = self.cfg.berth_exe.clone();
        let pid =
            tokio::task::spawn_blocking(move || container_shim::client::spawn(&exe, &shim_cfg))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
        tracing::debug!(container = %rec.id, elapsed = ?t0.elapsed(), "shim reported the container created");
        let socket = layout.socket();
        // The network namespace exists now; join networks before the
        // process runs, so it starts with its address and ports in place.
        let joined = match self.join_networks(rec, pid).await {
            Ok(j) => j,
            Err(e) => {
                // start_locked's failure path releases waiting attaches.
                kill_and_wait(&socket).await;
                return Err(e);
            }
        };
        let pending: Vec<PendingAttach> = ctr
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for p in pending {
            match client::open(&socket, &Request::Attach { stdin: p.stdin }).await {
                Ok((conn, reply)) if reply.error.is_none() => {
                    let _ = p.tx.send(Some(conn));
                }
                _ => {
                    let _ = p.tx.send(None);
                }
            }
        }
        match client::call(&socket, &Request::Start).await {
            Ok(_) => {
                tracing::debug!(container = %rec.id, elapsed = ?t0.elapsed(), "process started");
                Ok((pid, joined))
            }
            Err(e) => {
                kill_and_wait(&socket).await;
                let mut gone = rec.clone();
                gone.endpoints = joined.endpoints;
                self.leave_networks(&gone).await;
                Err(e.to_string())
            }
        }
    }

    /// Waits for the shim to report the process's end, then applies the
    /// restart policy or auto-removal.
    pub(crate) async fn monitor(self: Arc<Self>, ctr: Arc<Ctr>) {
        let (id, started_at) = {
            let r = ctr.get();
            (r.id.clone(), r.state.started_at.clone())
        };
        let layout = self.layout(&id);
        let reply: Option<Reply> = client::call(&layout.socket(), &Request::Wait).await.ok();
        let (code, finished) = match reply.and_then(|r| r.exit_code.map(|c| (c, r.finished_at))) {
            Some((c, f)) => (c, f.unwrap_or_else(now_rfc3339)),
            None => {
                // The shim ended (or the connection broke): its exit record
                // says how the process ended; none means the shim died.
                let mut tries = 0;
                loop {
                    if let Some(ex) = client::read_exit(&layout.exit()) {
                        break (ex.exit_code, ex.finished_at);
                    }
                    if client::call(&layout.socket(), &Request::State)
                        .await
                        .is_ok()
                    {
                        // Still alive: wait again.
                        return Box::pin(self.monitor(ctr)).await;
                    }
                    tries += 1;
                    if tries > 20 {
                        break (255, now_rfc3339());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        self.on_exit(ctr, code, finished, &started_at).await;
    }

    async fn on_exit(
        self: &Arc<Self>,
        ctr: Arc<Ctr>,
        code: i32,
        finished: String,
        started_at: &str,
    ) {
        let _op = ctr.op.lock().await;
        let rec = {
            let mut r = ctr.rec.lock().unwrap_or_else(|e| e.into_inner());
            if r.state.status != Status::Running && r.state.status != Status::Restarting {
                return;
            }
            r.state.status = Status::Exited;
            r.state.exit_code = code;
            r.state.pid = 0;
            r.state.finished_at = finished;
            r.clone()
        };
        self.leave_networks(&rec).await;
        let rec = {
            let mut r = ctr.rec.lock().unwrap_or_else(|e| e.into_inner());
            r.endpoints.clear();
            r.ports.clear();
            r.clone()
        };
        let _ = self.persist(&rec);
        rootfs::unmount_rootfs(&self.layout(&rec.id));
        ctr.life.send_modify(|l| {
            l.exits += 1;
            l.exit_code = code;
            l.error = None;
        });
        tracing::info!(container = %rec.id, code, "exited");

        if self.should_restart(&rec, code) {
            let ran = chrono::DateTime::parse_from_rfc3339(started_at)
                .map(|t| chrono::Utc::now().signed_duration_since(t).num_seconds())
                .unwrap_or(0);
            let delay = {
                let mut b = ctr.backoff_ms.lock().unwrap_or_else(|e| e.into_inner());
                *b = if ran >= 10 || *b == 0 {
                    100
                } else {
                    (*b * 2).min(60_000)
                };
                *b
            };
            {
                let mut r = ctr.rec.lock().unwrap_or_else(|e| e.into_inner());
                r.state.status = Status::Restarting;
                let _ = self.persist(&r);
            }
            let engine = self.clone();
            let c = ctr.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                let _op = c.op.lock().await;
                let still = c.get().state.status == Status::Restarting;
                if still {
                    {
                        let mut r = c.rec.lock().unwrap_or_else(|e| e.into_inner());
                        r.restart_count += 1;
                    }
                    if let Err(e) = engine.clone().start_boxed(c.clone()).await {
                        tracing::warn!("restart failed: {e}");
                        let mut r = c.rec.lock().unwrap_or_else(|e| e.into_inner());
                        r.state.status = Status::Exited;
                        let _ = engine.persist(&r);
                    }
                }
            });
        } else if rec.host_config.auto_remove.unwrap_or(false) {
            let _ = self.remove_locked(&ctr, true).await;
        }
    }

    fn should_restart(&self, rec: &Container, code: i32) -> bool {
        if rec.manually_stopped {
            return false;
        }
        let Some(p) = &rec.host_config.restart_policy else {
            return false;
        };
        match p.name.unwrap_or(RestartPolicyNameEnum::EMPTY) {
            RestartPolicyNameEnum::ALWAYS | RestartPolicyNameEnum::UNLESS_STOPPED => true,
            RestartPolicyNameEnum::ON_FAILURE => {
                let max = p.maximum_retry_count.unwrap_or(0);
                code != 0 && (max == 0 || rec.restart_count < max)
            }
            _ => false,
        }
    }

    /// Sends a signal to the container's process.
    pub async fn kill(self: &Arc<Self>, key: &str, signal: Option<&str>) -> Result<()> {
        let ctr = self.find(key)?;
        let sig = match signal.filter(|s| !s.is_empty()) {
            Some(s) => crate::names::parse_signal(s)
                .ok_or_else(|| EngineError::InvalidArgument(format!("Invalid signal: {s}")))?,
            None => libc::SIGKILL,
        };
        let rec = ctr.get();
        if rec.state.status != Status::Running {
            if rec.state.status == Status::Restarting && sig == libc::SIGKILL {
                let mut r = ctr.rec.lock().unwrap_or_else(|e| e.into_inner());
                r.manually_stopped = true;
                r.state.status = Status::Exited;
                let _ = self.persist(&r);
                return Ok(());
            }
            return Err(EngineError::Conflict(format!(
                "Cannot kill container: {key}: Container {} is not running",
                rec.id
            )));
        }
        if sig == libc::SIGKILL || sig == libc::SIGTERM || sig == libc::SIGINT {
            let mut r = ctr.rec.lock().unwrap_or_else(|e| e.into_inner());
            r.manually_stopped = true;
            let _ = self.persist(&r);
        }
        client::call(
            &self.layout(&rec.id).socket(),
            &Request::Kill { signal: sig },
        )
        .await
        .map_err(|e| EngineError::Internal(format!("Cannot kill container: {key}: {e}")))?;
        Ok(())
    }

    /// Resizes the container's terminal.
    pub async fn resize(&self, key: &str, height: u16, width: u16) -> Result<()> {
        let rec = self.find(key)?.get();
        if rec.state.status != Status::Running {
            return Err(EngineError::Conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        client::call(
            &self.layout(&rec.id).socket(),
            &Request::Resize { height, width },
        )
        .await
        .map(|_| ())
        .map_err(|e| EngineError::Internal(e.to_string()))
    }

    /// Stops a container: its stop signal, then SIGKILL after `timeout` seconds.
    pub async fn stop(
        self: &Arc<Self>,
        key: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        let ctr = self.find(key)?;
        let rec = ctr.get();
        if rec.state.status == Status::Restarting {
            let mut r = ctr.rec.lock().unwrap_or_else(|e| e.into_inner());
            r.manually_stopped = true;
            r.state.status = Status::Exited;
            let _ = self.persist(&r);
            return Ok(());
        }
        if rec.state.status != Status::Running {
            return Err(EngineError::NotModified);
        }
        self.stop_ctr(&ctr, timeout, signal).await
    }

    async fn stop_ctr(
        self: &Arc<Self>,
        ctr: &Arc<Ctr>,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        let rec = {
            let mut r = ctr.rec.lock().unwrap_or_else(|e| e.into_inner());
            r.manually_stopped = true;
            r.clone()
        };
        let _ = self.persist(&rec);
        let sig = signal
            .filter(|s| !s.is_empty())
            .map(String::from)
            .or_else(|| rec.config.stop_signal.clone())
            .and_then(|s| crate::names::parse_signal(&s))
            .unwrap_or(libc::SIGTERM);
        let timeout = timeout.or(rec.config.stop_timeout).unwrap_or(10);
        let mut life = ctr.life.subscribe();
        let before = life.borrow_and_update().exits;
        let socket = self.layout(&rec.id).socket();
        let _ = client::call(&socket, &Request::Kill { signal: sig }).await;
        let exited = async {
            loop {
                if life.borrow_and_update().exits > before {
                    return;
                }
                if life.changed().await.is_err() {
                    return;
                }
            }
        };
        let wait = if timeout < 0 {
            Duration::from_secs(u64::MAX / 4)
        } else {
            Duration::from_secs(timeout as u64)
        };
        let mut exited = Box::pin(exited);
        if tokio::time::timeout(wait, &mut exited).await.is_err() {
            let _ = client::call(
                &socket,
                &Request::Kill {
                    signal: libc::SIGKILL,
                },
            )
            .await;
            if tokio::time::timeout(Duration::from_secs(10), &mut exited)
                .await
                .is_err()
            {
                return Err(EngineError::Internal(format!(
                    "container {} did not stop after SIGKILL",
                    rec.id
                )));
            }
        }
        Ok(())
    }

    /// Restarts a container (stop if running, then start).
    pub async fn restart(self: &Arc<Self>, key: &str, timeout: Option<i64>) -> Result<()> {
        let ctr = self.find(key)?;
        if ctr.get().state.status == Status::Running {
            self.stop_ctr(&ctr, timeout, None).await?;
        }
        let _op = ctr.op.lock().await;
        {
            let mut r = ctr.rec.lock().unwrap_or_else(|e| e.into_inner());
            r.manually_stopped = false;
        }
        self.start_locked(&ctr).await
    }

    /// Returns a future that resolves with (exit code, error) when the
    /// condition holds. Checks the container exists before returning.
    pub fn wait(
        self: &Arc<Self>,
        key: &str,
        cond: WaitCondition,
    ) -> Result<impl std::future::Future<Output = (i64, Option<String>)> + Send + 'static> {
        let ctr = self.find(key)?;
        let mut life = ctr.life.subscribe();
        let start = life.borrow_and_update().clone();
        let rec = ctr.get();
        let running = rec.running();
        let code_now = rec.state.exit_code as i64;
        Ok(async move {
            if cond == WaitCondition::NotRunning && !running {
                return (code_now, None);
            }
            loop {
                {
                    let l = life.borrow_and_update();
                    let done = match cond {
                        WaitCondition::Removed => l.removed,
                        _ => l.exits > start.exits || l.removed,
                    };
                    if done {
                        return (l.exit_code as i64, l.error.clone());
                    }
                }
                if life.changed().await.is_err() {
                    let l = life.borrow().clone();
                    return (l.exit_code as i64, l.error);
                }
            }
        })
    }

    /// Registers an attach: resolves with a shim stream once the container
    /// runs (at once if it already does), or `None` if it fails to start.
    pub async fn attach(
        self: &Arc<Self>,
        key: &str,
        stdin: bool,
    ) -> Result<tokio::sync::oneshot::Receiver<Option<tokio::net::UnixStream>>> {
        let ctr = self.find(key)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let rec = ctr.get();
        if rec.state.status == Status::Running {
            let (conn, reply) =
                client::open(&self.layout(&rec.id).socket(), &Request::Attach { stdin })
                    .await
                    .map_err(|e| EngineError::Internal(e.to_string()))?;
            if let Some(e) = reply.error {
                return Err(EngineError::Internal(e));
            }
            let _ = tx.send(Some(conn));
        } else {
            ctr.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(PendingAttach { stdin, tx });
        }
        Ok(rx)
    }

    /// Removes a container (`force` kills a running one first).
    pub async fn remove(self: &Arc<Self>, key: &str, force: bool, volumes: bool) -> Result<()> {
        let ctr = self.find(key)?;
        let rec = ctr.get();
        if rec.running() {
            if !force {
                return Err(EngineError::Conflict(format!(
                    "You cannot remove a running container {}. Stop the container before attempting removal or force remove",
                    rec.id
                )));
            }
            {
                let mut r = ctr.rec.lock().unwrap_or_else(|e| e.into_inner());
                r.manually_stopped = true;
                if r.state.status == Status::Restarting {
                    r.state.status = Status::Exited;
                }
            }
            if ctr.get().state.status == Status::Running {
                self.stop_ctr(&ctr, Some(0), Some("KILL")).await?;
            }
        }
        let _op = ctr.op.lock().await;
        self.remove_locked(&ctr, volumes).await
    }

    pub(crate) async fn remove_locked(
        self: &Arc<Self>,
        ctr: &Arc<Ctr>,
        volumes: bool,
    ) -> Result<()> {
        let rec = ctr.get();
        if ctr.life.borrow().removed {
            return Ok(());
        }
        let layout = self.layout(&rec.id);
        self.leave_networks(&rec).await;
        rootfs::unmount_rootfs(&layout);
        self.containers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&rec.id);
        let _ = std::fs::remove_dir_all(&layout.run_dir);
        if let Err(e) = std::fs::remove_dir_all(&layout.dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("removing {}: {e}", layout.dir.display());
            }
        }
        if volumes {
            for m in rec
                .mounts
                .iter()
                .filter(|m| m.kind == "volume" && m.anonymous)
            {
                if self.containers_using_volume(&m.name).is_empty() {
                    let _ = self.volumes.remove(&m.name);
                }
            }
        }
        self.forget_execs(&rec.id);
        ctr.life.send_modify(|l| l.removed = true);
        tracing::info!(container = %rec.id, "removed");
        Ok(())
    }

    /// Loads container records at daemon start and reconciles them with
    /// the shims that are still there.
    pub(crate) async fn load_containers(self: &Arc<Self>) {
        let dir = self.cfg.root.join("containers");
        let mut live = std::collections::HashSet::new();
        let Ok(rd) = std::fs::read_dir(&dir) else {
            self.reconcile_networks(&live).await;
            return;
        };
        for e in rd.flatten() {
            let path = e.path().join("container.json");
            let rec: Container = match std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
            {
                Some(r) => r,
                None => {
                    tracing::warn!("skipping unreadable {}", path.display());
                    continue;
                }
            };
            let ctr = Ctr::new(rec.clone());
            self.containers
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(rec.id.clone(), ctr.clone());
            if !rec.running() {
                continue;
            }
            let layout = self.layout(&rec.id);
            let alive = client::call(&layout.socket(), &Request::State)
                .await
                .map(|r| r.running)
                .unwrap_or(false);
            if alive {
                live.insert(rec.id.clone());
                tracing::info!(container = %rec.id, "re-attached to running container");
                let engine = self.clone();
                tokio::spawn(async move { engine.monitor(ctr).await });
            } else {
                let (code, finished) = client::read_exit(&layout.exit())
                    .map(|e| (e.exit_code, e.finished_at))
                    .unwrap_or((255, now_rfc3339()));
                let started = rec.state.started_at.clone();
                let engine = self.clone();
                tokio::spawn(async move { engine.on_exit(ctr, code, finished, &started).await });
            }
        }
        self.reconcile_networks(&live).await;
    }
}

impl Engine {
    /// Renames a container.
    pub fn rename(&self, key: &str, new_name: &str) -> Result<()> {
        let new_name = new_name.strip_prefix('/').unwrap_or(new_name);
        if !crate::names::valid_name(new_name) {
            return Err(EngineError::InvalidArgument(format!(
                "Invalid container name ({new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let ctr = self.find(key)?;
        let _map = self.containers.write().unwrap_or_else(|e| e.into_inner());
        if let Some(other) = _map.values().map(|c| c.get()).find(|c| c.name == new_name) {
            return Err(EngineError::Conflict(format!(
                "Conflict. The container name \"/{new_name}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                other.id
            )));
        }
        let rec = {
            let mut r = ctr.rec.lock().unwrap_or_else(|e| e.into_inner());
            r.name = new_name.to_string();
            r.clone()
        };
        self.persist(&rec)
    }
}
