//! The daemon's side of the shim protocol: starting a shim and talking to it.

use std::path::Path;
use std::process::{Command, Stdio};

use tokio::net::UnixStream;

use crate::protocol::{self, ExitRecord, Reply, Request};
use crate::{ShimConfig, ShimError};

/// Writes `shim.json` into `cfg.work_dir`, starts `exe shim <config>` detached
/// and waits until it reports the container created (pid) or failed.
pub fn spawn(exe: &Path, cfg: &ShimConfig) -> Result<i32, ShimError> {
    let path = cfg.work_dir.join("shim.json");
    let data = serde_json::to_vec_pretty(cfg).map_err(|e| ShimError::Protocol(e.to_string()))?;
    crate::server::write_atomic(&path, &data)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(cfg.work_dir.join("shim.log"))?;
    let mut child = Command::new(exe)
        .arg("shim")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()?;
    let stdout = child.stdout.take();
    // The first process forks the real shim and exits at once.
    let _ = child.wait();
    let mut line = String::new();
    if let Some(out) = stdout {
        use std::io::BufRead;
        let mut r = std::io::BufReader::new(out);
        r.read_line(&mut line)?;
    }
    if line.trim().is_empty() {
        return Err(ShimError::Runtime("shim exited without reporting".into()));
    }
    let reply: Reply =
        serde_json::from_str(line.trim()).map_err(|e| ShimError::Protocol(e.to_string()))?;
    if let Some(e) = reply.error {
        return Err(ShimError::Runtime(e));
    }
    reply
        .pid
        .ok_or_else(|| ShimError::Protocol("shim reported no pid".into()))
}

/// Opens a connection and sends `req`; returns the stream after the reply.
pub async fn open(socket: &Path, req: &Request) -> Result<(UnixStream, Reply), ShimError> {
    let mut conn = UnixStream::connect(socket)
        .await
        .map_err(|_| ShimError::NotRunning)?;
    protocol::write_json_line(&mut conn, req).await?;
    let line = protocol::read_line(&mut conn)
        .await
        .map_err(|_| ShimError::NotRunning)?;
    let reply: Reply =
        serde_json::from_str(&line).map_err(|e| ShimError::Protocol(e.to_string()))?;
    Ok((conn, reply))
}

/// Sends a simple request and returns its reply; runtime errors become `Err`.
pub async fn call(socket: &Path, req: &Request) -> Result<Reply, ShimError> {
    let (_, reply) = open(socket, req).await?;
    match reply.error {
        Some(e) => Err(ShimError::Runtime(e)),
        None => Ok(reply),
    }
}

/// Reads the exit record a shim left behind.
pub fn read_exit(path: &Path) -> Option<ExitRecord> {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}
