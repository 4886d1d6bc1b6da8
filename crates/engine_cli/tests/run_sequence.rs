//! End-to-end check of `run` against an in-process fake daemon on a unix
//! socket: request order (create → attach → wait → start), stdin half-close
//! on the hijacked connection, and the exit code taken from `/wait`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

struct SocketGuard(PathBuf);

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

struct Daemon {
    log: Mutex<Vec<String>>,
    started: watch::Sender<bool>,
}

impl Daemon {
    async fn wait_started(&self) {
        let mut rx = self.started.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    fn record(&self, s: impl Into<String>) {
        if let Ok(mut l) = self.log.lock() {
            l.push(s.into());
        }
    }
}

async fn read_head(r: &mut BufReader<UnixStream>) -> Option<(String, String, usize)> {
    let mut line = String::new();
    if r.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut len = 0;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).await.ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    Some((method, target, len))
}

async fn serve(conn: UnixStream, d: Arc<Daemon>) {
    let mut r = BufReader::new(conn);
    while let Some((method, target, len)) = read_head(&mut r).await {
        let mut body = vec![0u8; len];
        if r.read_exact(&mut body).await.is_err() {
            return;
        }
        let path = target.split('?').next().unwrap_or("").to_string();
        d.record(format!("{method} {path}"));
        let reply: Vec<u8> = if path == "/_ping" {
            b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 0\r\n\r\n".to_vec()
        } else if path.ends_with("/containers/create") {
            let b = b"{\"Id\":\"c0ffee\",\"Warnings\":[]}\n";
            let mut v = format!(
                "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                b.len()
            )
            .into_bytes();
            v.extend_from_slice(b);
            v
        } else if path.ends_with("/attach") {
            let w = r.get_mut();
            let _ = w
                .write_all(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
                .await;
            // The client has no stdin attached: it must half-close at once.
            let mut buf = [0u8; 16];
            if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_secs(5), r.read(&mut buf)).await
            {
                d.record("attach half-closed");
            }
            d.wait_started().await;
            let w = r.get_mut();
            let _ = w.write_all(&[1, 0, 0, 0, 0, 0, 0, 3]).await;
            let _ = w.write_all(b"hi\n").await;
            let _ = w.shutdown().await;
            return;
        } else if path.ends_with("/wait") {
            let w = r.get_mut();
            let _ = w
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await;
            let _ = w.flush().await;
            d.wait_started().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            let b = b"{\"Error\":null,\"StatusCode\":7}\n";
            let chunk = format!("{:x}\r\n", b.len());
            let _ = w.write_all(chunk.as_bytes()).await;
            let _ = w.write_all(b).await;
            let _ = w.write_all(b"\r\n0\r\n\r\n").await;
            continue;
        } else if path.ends_with("/start") {
            d.started.send_replace(true);
            b"HTTP/1.1 204 No Content\r\n\r\n".to_vec()
        } else {
            let b = b"{\"message\":\"not found\"}";
            let mut v = format!(
                "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                b.len()
            )
            .into_bytes();
            v.extend_from_slice(b);
            v
        };
        if r.get_mut().write_all(&reply).await.is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_uses_docker_sequence_and_wait_status() {
    let path = std::env::temp_dir().join(format!(
        "berth-t-cli-{}-{}.sock",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    let _guard = SocketGuard(path.clone());
    let listener = UnixListener::bind(&path).expect("bind test socket");
    let daemon = Arc::new(Daemon {
        log: Mutex::new(Vec::new()),
        started: watch::channel(false).0,
    });
    let d = daemon.clone();
    let server = tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            tokio::spawn(serve(conn, d.clone()));
        }
    });

    let host = format!("unix://{}", path.display());
    let args: Vec<String> = [
        "-H",
        host.as_str(),
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "exit 7",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let code = tokio::time::timeout(Duration::from_secs(20), engine_cli::run(args))
        .await
        .expect("run finished");
    server.abort();
    assert_eq!(code, 7);

    let log = daemon.log.lock().map(|l| l.clone()).unwrap_or_default();
    let pos = |needle: &str| {
        log.iter()
            .position(|l| l.ends_with(needle))
            .unwrap_or_else(|| panic!("{needle} missing from {log:?}"))
    };
    assert_eq!(log.first().map(String::as_str), Some("HEAD /_ping"));
    assert!(pos("/containers/create") < pos("/attach"));
    assert!(pos("/attach") < pos("/wait"));
    assert!(pos("/wait") < pos("/start"));
    assert!(log.iter().any(|l| l == "attach half-closed"), "{log:?}");
    assert!(
        log.iter().all(|l| !l.contains(' ')
            || l.starts_with("HEAD /_ping")
            || l.contains("/v1.41/")
            || l == "attach half-closed"),
        "{log:?}"
    );
}
