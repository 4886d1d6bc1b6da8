//! Moving bytes between the local terminal and the daemon: hijacked
//! attach/exec sessions, the 8-byte-header stream framing, progress (JSON
//! message) streams, signal forwarding and TTY resizing.

use std::io::{Read, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::query_parameters::{
    KillContainerOptions, ResizeContainerTTYOptions, ResizeExecOptions,
};
use bollard::Docker;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use crate::error::{CliError, CliResult};
use crate::term::{self, RawGuard};

/// Writes and flushes to stdout, ignoring a closed pipe.
pub fn write_stdout(data: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(data);
    let _ = out.flush();
}

/// Writes and flushes to stderr.
pub fn write_stderr(data: &[u8]) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(data);
    let _ = err.flush();
}

/// Incremental decoder for docker's multiplexed stream framing:
/// `[stream, 0, 0, 0, len(4, big-endian)]` followed by `len` payload bytes.
#[derive(Debug, Default)]
pub struct Demux {
    buf: Vec<u8>,
}

impl Demux {
    /// Feeds bytes; returns complete frames as (stream id, payload).
    pub fn push(&mut self, data: &[u8]) -> Vec<(u8, Vec<u8>)> {
        self.buf.extend_from_slice(data);
        let mut frames = Vec::new();
        loop {
            if self.buf.len() < 8 {
                break;
            }
            let len =
                u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
            if self.buf.len() < 8 + len {
                break;
            }
            let stream = self.buf[0];
            let payload = self.buf[8..8 + len].to_vec();
            self.buf.drain(..8 + len);
            frames.push((stream, payload));
        }
        frames
    }

    /// Bytes left over (an incomplete frame) at end of stream.
    pub fn leftover(&self) -> usize {
        self.buf.len()
    }
}

/// Copies an HTTP body to stdout/stderr, demultiplexing unless `tty`.
pub async fn copy_body(mut body: Incoming, tty: bool) -> CliResult<()> {
    let mut demux = Demux::default();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| CliError::Other(format!("error reading stream: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if tty {
            write_stdout(&data);
            continue;
        }
        for (stream, payload) in demux.push(&data) {
            match stream {
                0 | 1 => write_stdout(&payload),
                2 => write_stderr(&payload),
                other => {
                    return Err(CliError::Other(format!(
                        "Unrecognized input header: {other}"
                    )))
                }
            }
        }
    }
    if demux.leftover() > 0 {
        tracing::debug!("stream ended inside a frame ({} bytes)", demux.leftover());
    }
    Ok(())
}

/// Starts a thread that reads stdin and forwards chunks; the channel closes at EOF.
pub fn spawn_stdin_reader() -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let spawned = std::thread::Builder::new()
        .name("berth-stdin".into())
        .spawn(move || {
            let mut stdin = std::io::stdin();
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if tx.blocking_send(Bytes::copy_from_slice(&buf[..n])).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
        });
    if let Err(e) = spawned {
        tracing::debug!("cannot start stdin reader: {e}");
    }
    rx
}

/// What a hijacked session carries.
#[derive(Debug, Clone, Copy)]
pub struct StreamSpec {
    /// Raw (TTY) stream rather than multiplexed.
    pub tty: bool,
    /// Forward local stdin.
    pub stdin: bool,
    /// Stdout is attached.
    pub stdout: bool,
    /// Stderr is attached.
    pub stderr: bool,
}

/// Output half of a hijacked connection, as bollard provides it.
pub type OutputStream =
    Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>;
/// Input half of a hijacked connection.
pub type InputSink = Pin<Box<dyn AsyncWrite + Send>>;

fn write_output(item: LogOutput, spec: &StreamSpec) {
    match item {
        LogOutput::StdErr { message } if !spec.tty => write_stderr(&message),
        LogOutput::StdIn { .. } if !spec.tty => {}
        other => write_stdout(&other.into_bytes()),
    }
}

/// Runs a hijacked session like docker's `hijackedIOStreamer`: output is
/// copied until the daemon closes it; stdin (if attached) is copied and then
/// half-closed; without stdin the write side is half-closed at once. The
/// terminal (if raw) is restored as soon as either direction ends.
/// Returns when output ends, or when `cancel` fires.
pub async fn run_session(
    output: OutputStream,
    mut input: InputSink,
    spec: StreamSpec,
    raw: Option<Arc<RawGuard>>,
    cancel: Option<oneshot::Receiver<()>>,
) -> CliResult<()> {
    let restore = {
        let raw = raw.clone();
        move || {
            if let Some(r) = &raw {
                r.restore();
            }
        }
    };
    let restore_out = restore.clone();
    let out_spec = spec;
    let mut output_task = tokio::spawn(async move {
        let mut output = output;
        let mut result = Ok(());
        while let Some(item) = output.next().await {
            match item {
                Ok(item) => write_output(item, &out_spec),
                Err(e) => {
                    tracing::debug!("attach output ended: {e}");
                    result = Err(e);
                    break;
                }
            }
        }
        if out_spec.tty {
            restore_out();
        }
        result
    });

    let input_task = tokio::spawn(async move {
        if spec.stdin {
            let mut rx = spawn_stdin_reader();
            while let Some(chunk) = rx.recv().await {
                if input.write_all(&chunk).await.is_err() {
                    break;
                }
                let _ = input.flush().await;
            }
            restore();
        }
        if let Err(e) = input.shutdown().await {
            tracing::debug!("half-close failed: {e}");
        }
        // Keep the write half alive until the session ends: dropping it may
        // tear down the whole connection.
        input
    });

    let has_output = spec.stdout || spec.stderr;
    let cancelled = async {
        match cancel {
            Some(rx) => {
                let _ = rx.await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::pin!(cancelled);
    let mut input_task = input_task;
    let mut input_done = false;
    let mut kept_input = None;
    loop {
        tokio::select! {
            res = &mut output_task => {
                drop(kept_input);
                if !input_done {
                    input_task.abort();
                }
                return match res {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => {
                        // A connection reset after output is common when the
                        // container exits; docker ignores it too.
                        tracing::debug!("stream error: {e}");
                        Ok(())
                    }
                    Err(e) => Err(CliError::Other(format!("output task failed: {e}"))),
                };
            }
            res = &mut input_task, if !input_done => {
                input_done = true;
                kept_input = res.ok();
                if !has_output {
                    output_task.abort();
                    return Ok(());
                }
            }
            _ = &mut cancelled => {
                output_task.abort();
                if !input_done {
                    input_task.abort();
                }
                if let Some(r) = &raw {
                    r.restore();
                }
                return Ok(());
            }
        }
    }
}

/// Signals forwarded to the container by `--sig-proxy` (by name, like docker).
const PROXIED_SIGNALS: [(i32, &str); 7] = [
    (libc::SIGHUP, "HUP"),
    (libc::SIGINT, "INT"),
    (libc::SIGQUIT, "QUIT"),
    (libc::SIGTERM, "TERM"),
    (libc::SIGUSR1, "USR1"),
    (libc::SIGUSR2, "USR2"),
    (libc::SIGALRM, "ALRM"),
];

/// Forwards received signals to the container with `POST /containers/{id}/kill?signal=NAME`.
pub fn spawn_signal_proxy(docker: Docker, id: String) {
    use tokio::signal::unix::{signal, SignalKind};
    for (num, name) in PROXIED_SIGNALS {
        let mut sig = match signal(SignalKind::from_raw(num)) {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!("cannot watch signal {name}: {e}");
                continue;
            }
        };
        let docker = docker.clone();
        let id = id.clone();
        tokio::spawn(async move {
            while sig.recv().await.is_some() {
                let opts = KillContainerOptions {
                    signal: name.to_string(),
                };
                if let Err(e) = docker.kill_container(&id, Some(opts)).await {
                    tracing::debug!("error sending signal: {e}");
                }
            }
        });
    }
}

async fn resize(docker: &Docker, id: &str, exec: bool) -> Result<(), bollard::errors::Error> {
    let (h, w) = match term::size(term::STDOUT) {
        Some((h, w)) if h != 0 || w != 0 => (h as i32, w as i32),
        _ => return Ok(()),
    };
    if exec {
        docker.resize_exec(id, ResizeExecOptions { h, w }).await
    } else {
        docker
            .resize_container_tty(id, ResizeContainerTTYOptions { h, w })
            .await
    }
}

/// Sends the current terminal size now (retrying briefly like docker) and on every SIGWINCH.
pub fn spawn_resize_monitor(docker: Docker, id: String, exec: bool) {
    let d = docker.clone();
    let i = id.clone();
    tokio::spawn(async move {
        if resize(&d, &i, exec).await.is_err() {
            let mut ok = false;
            for attempt in 0..10u64 {
                tokio::time::sleep(Duration::from_millis((attempt + 1) * 10)).await;
                if resize(&d, &i, exec).await.is_ok() {
                    ok = true;
                    break;
                }
            }
            if !ok {
                write_stderr(b"failed to resize tty, using default size\n");
            }
        }
    });
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut winch = match signal(SignalKind::window_change()) {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!("cannot watch SIGWINCH: {e}");
                return;
            }
        };
        while winch.recv().await.is_some() {
            let _ = resize(&docker, &id, exec).await;
        }
    });
}

/// One decoded progress message (docker's `jsonmessage`).
#[derive(Debug, Default, Clone, PartialEq, serde::Deserialize)]
pub struct JsonMessage {
    /// Free-form status.
    #[serde(default)]
    pub status: String,
    /// Layer or tag id.
    #[serde(default)]
    pub id: String,
    /// Build/load output.
    #[serde(default)]
    pub stream: String,
    /// Rendered progress bar.
    #[serde(default)]
    pub progress: String,
    /// Raw progress numbers.
    #[serde(default, rename = "progressDetail")]
    pub progress_detail: Option<ProgressDetail>,
    /// Error text.
    #[serde(default)]
    pub error: Option<String>,
    /// Structured error.
    #[serde(default, rename = "errorDetail")]
    pub error_detail: Option<ErrorDetail>,
    /// Auxiliary payload (push digest, build id).
    #[serde(default)]
    pub aux: Option<serde_json::Value>,
}

/// Progress numbers.
#[derive(Debug, Default, Clone, PartialEq, serde::Deserialize)]
pub struct ProgressDetail {
    /// Bytes done.
    #[serde(default)]
    pub current: i64,
    /// Bytes total.
    #[serde(default)]
    pub total: i64,
}

/// Structured error in a progress stream.
#[derive(Debug, Default, Clone, PartialEq, serde::Deserialize)]
pub struct ErrorDetail {
    /// Message.
    #[serde(default)]
    pub message: String,
    /// Exit code (a failed RUN's), when the daemon gives one.
    #[serde(default)]
    pub code: Option<i64>,
}

impl JsonMessage {
    /// The line docker prints for this message when output is not a terminal
    /// (None: nothing to print, e.g. progress-bar updates or aux payloads).
    pub fn display_line(&self) -> Option<String> {
        let has_progress = self
            .progress_detail
            .as_ref()
            .is_some_and(|p| p.current > 0 || p.total > 0);
        if has_progress {
            return None;
        }
        if self.status.is_empty() && self.stream.is_empty() && self.id.is_empty() {
            return None;
        }
        let mut line = String::new();
        if !self.id.is_empty() {
            line.push_str(&self.id);
            line.push_str(": ");
        }
        if !self.stream.is_empty() {
            line.push_str(&self.stream);
        } else {
            line.push_str(&self.status);
            line.push('\n');
        }
        Some(line)
    }

    /// The error carried by this message, if any.
    pub fn error_text(&self) -> Option<String> {
        if let Some(d) = &self.error_detail {
            if !d.message.is_empty() {
                return Some(d.message.clone());
            }
        }
        self.error.clone().filter(|e| !e.is_empty())
    }
}

/// Splits a byte stream of concatenated JSON objects (newline separated).
#[derive(Debug, Default)]
pub struct JsonLines {
    buf: Vec<u8>,
}

impl JsonLines {
    /// Feeds bytes; returns each complete line's decoded message.
    pub fn push(&mut self, data: &[u8]) -> Vec<Result<JsonMessage, String>> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=pos).collect();
            let text = String::from_utf8_lossy(&line);
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            out.push(serde_json::from_str::<JsonMessage>(text).map_err(|e| e.to_string()));
        }
        out
    }

    /// Decodes whatever is left at end of stream.
    pub fn finish(&mut self) -> Option<Result<JsonMessage, String>> {
        let rest = std::mem::take(&mut self.buf);
        let text = String::from_utf8_lossy(&rest);
        let text = text.trim();
        if text.is_empty() {
            None
        } else {
            Some(serde_json::from_str::<JsonMessage>(text).map_err(|e| e.to_string()))
        }
    }
}

/// Prints a progress stream (pull/push/import) to stdout or stderr and
/// returns the aux payloads; an error message in the stream becomes an error.
pub async fn display_progress(
    mut body: Incoming,
    to_stderr: bool,
) -> CliResult<Vec<serde_json::Value>> {
    let mut lines = JsonLines::default();
    let mut aux = Vec::new();
    let mut handle = |m: Result<JsonMessage, String>| -> CliResult<()> {
        let m = m.map_err(|e| CliError::Other(format!("error decoding progress stream: {e}")))?;
        if let Some(err) = m.error_text() {
            return Err(CliError::Other(err));
        }
        if let Some(a) = &m.aux {
            aux.push(a.clone());
        }
        if let Some(line) = m.display_line() {
            if to_stderr {
                write_stderr(line.as_bytes());
            } else {
                write_stdout(line.as_bytes());
            }
        }
        Ok(())
    };
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| CliError::Other(format!("error reading stream: {e}")))?;
        if let Ok(data) = frame.into_data() {
            for m in lines.push(&data) {
                handle(m)?;
            }
        }
    }
    if let Some(m) = lines.finish() {
        handle(m)?;
    }
    Ok(aux)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demux_frames_across_chunks() {
        let mut d = Demux::default();
        let data = [
            &[2u8, 0, 0, 0, 0, 0, 0, 4][..],
            b"err\n",
            &[1u8, 0, 0, 0, 0, 0, 0, 4][..],
            b"out\n",
        ]
        .concat();
        let (a, b) = data.split_at(5);
        assert!(d.push(a).is_empty());
        let frames = d.push(b);
        assert_eq!(frames, vec![(2, b"err\n".to_vec()), (1, b"out\n".to_vec())]);
        assert_eq!(d.leftover(), 0);
        assert!(d.push(&[1, 0, 0, 0, 0, 0, 0, 9, b'x']).is_empty());
        assert_eq!(d.leftover(), 9);
    }

    #[test]
    fn demux_empty_payload() {
        let mut d = Demux::default();
        assert_eq!(d.push(&[1, 0, 0, 0, 0, 0, 0, 0]), vec![(1, vec![])]);
    }

    #[test]
    fn progress_lines_like_docker_non_tty() {
        let mut jl = JsonLines::default();
        let input = concat!(
            "{\"status\":\"Pulling from t/bb\",\"id\":\"1\"}\r\n",
            "{\"status\":\"Pulling fs layer\",\"progressDetail\":{},\"id\":\"a5d04a1a2b54\"}\r\n",
            "{\"status\":\"Downloading\",\"progressDetail\":{\"current\":110,\"total\":110},\"progress\":\"[=>]\",\"id\":\"a5d04a1a2b54\"}\r\n",
            "{\"status\":\"Digest: sha256:abc\"}\r\n",
            "{\"progressDetail\":{},\"aux\":{\"Tag\":\"1\",\"Digest\":\"sha256:abc\",\"Size\":527}}\r\n",
            "{\"stream\":\"Loaded image: busybox:local\\n\"}\r\n",
        );
        let (a, b) = input.split_at(30);
        let mut msgs = jl.push(a.as_bytes());
        msgs.extend(jl.push(b.as_bytes()));
        assert!(jl.finish().is_none());
        let lines: Vec<Option<String>> = msgs
            .into_iter()
            .map(|m| m.unwrap().display_line())
            .collect();
        assert_eq!(
            lines,
            vec![
                Some("1: Pulling from t/bb\n".to_string()),
                Some("a5d04a1a2b54: Pulling fs layer\n".to_string()),
                None,
                Some("Digest: sha256:abc\n".to_string()),
                None,
                Some("Loaded image: busybox:local\n".to_string()),
            ]
        );
    }

    #[test]
    fn progress_errors() {
        let mut jl = JsonLines::default();
        let m = jl
            .push(b"{\"errorDetail\":{\"message\":\"manifest unknown\"},\"error\":\"manifest unknown\"}\n")
            .remove(0)
            .unwrap();
        assert_eq!(m.error_text().as_deref(), Some("manifest unknown"));
        assert!(jl.push(b"not json\n")[0].is_err());
    }
}
