//! Hijacked connections (`Upgrade: tcp`): the 101 answer and the bridge
//! between the client's raw stream and a shim's framed stream.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use container_shim::protocol::{self, frame};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// The upgrade handle of a request, if the client asked for one.
pub(crate) fn take_upgrade(req: &mut Request) -> Option<OnUpgrade> {
    req.extensions_mut().remove::<OnUpgrade>()
}

/// dockerd's `101 UPGRADED` answer.
pub(crate) fn upgraded_response(with_api_headers: bool) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    r.extensions_mut()
        .insert(hyper::ext::ReasonPhrase::from_static(b"UPGRADED"));
    let h = r.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_static("application/vnd.docker.raw-stream"),
    );
    h.insert("connection", HeaderValue::from_static("Upgrade"));
    h.insert("upgrade", HeaderValue::from_static("tcp"));
    if with_api_headers {
        h.insert("api-version", HeaderValue::from_static(crate::API_VERSION));
        h.insert("docker-experimental", HeaderValue::from_static("false"));
        h.insert("ostype", HeaderValue::from_static("linux"));
    }
    r
}

/// Which output streams a client wants, and how to frame them.
#[derive(Clone, Copy)]
pub(crate) struct StreamOpts {
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// Docker's 8-byte stream header followed by the payload.
pub(crate) fn docker_frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + data.len());
    out.push(stream);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// Copies shim frames to the client and client bytes to the shim until the
/// output ends. Calls `on_exit` with the exit code when the shim reports one
/// (exec), before the client's stream is closed.
pub(crate) async fn bridge<F>(
    client: hyper::upgrade::Upgraded,
    shim: UnixStream,
    opts: StreamOpts,
    on_exit: F,
) where
    F: FnOnce(i64) + Send + 'static,
{
    let client = TokioIo::new(client);
    let (mut crd, mut cwr) = tokio::io::split(client);
    let (mut srd, mut swr) = shim.into_split();
    let input = tokio::spawn(async move {
        if !opts.stdin {
            return;
        }
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match crd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if protocol::write_frame(&mut swr, frame::STDIN, &buf[..n])
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        let _ = protocol::write_frame(&mut swr, frame::CLOSE_STDIN, &[]).await;
        // Keep the write half open until the output side finishes.
        std::future::pending::<()>().await;
    });
    let mut on_exit = Some(on_exit);
    while let Ok(Some((kind, data))) = protocol::read_frame(&mut srd).await {
        let wanted = match kind {
            frame::STDOUT => opts.stdout,
            frame::STDERR => opts.stderr,
            frame::EXIT => {
                if data.len() == 4 {
                    let code = i32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                    if let Some(f) = on_exit.take() {
                        f(code as i64);
                    }
                }
                continue;
            }
            _ => false,
        };
        if !wanted {
            continue;
        }
        let res = if opts.tty {
            cwr.write_all(&data).await
        } else {
            cwr.write_all(&docker_frame(kind, &data)).await
        };
        if res.is_err() {
            break;
        }
        let _ = cwr.flush().await;
    }
    if let Some(f) = on_exit.take() {
        f(-1);
    }
    let _ = cwr.flush().await;
    let _ = cwr.shutdown().await;
    input.abort();
}

/// Writes a message to a hijacked client (as stderr when not a tty) and closes it.
pub(crate) async fn send_error(client: hyper::upgrade::Upgraded, tty: bool, msg: &str) {
    let mut c = TokioIo::new(client);
    let text = format!("{msg}\r\n");
    let bytes = if tty {
        text.into_bytes()
    } else {
        docker_frame(frame::STDERR, text.as_bytes())
    };
    let _ = c.write_all(&bytes).await;
    let _ = c.shutdown().await;
}
