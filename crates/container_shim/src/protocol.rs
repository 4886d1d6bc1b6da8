//! The wire protocol between the engine daemon and a container's shim.
//!
//! Every connection to the shim's control socket starts with one JSON line
//! (a [`Request`]) and gets one JSON line back (a [`Reply`]). Streaming
//! requests (`attach`, `exec`) then switch to binary frames in both directions:
//! `[kind: u8][len: u32 big-endian][payload]`.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Frame kinds used after a streaming request was accepted.
pub mod frame {
    /// Client to shim: bytes for the process's stdin.
    pub const STDIN: u8 = 0;
    /// Shim to client: bytes the process wrote to stdout (or the terminal).
    pub const STDOUT: u8 = 1;
    /// Shim to client: bytes the process wrote to stderr.
    pub const STDERR: u8 = 2;
    /// Shim to client: the process exited; payload is the exit code as i32 BE.
    pub const EXIT: u8 = 3;
    /// Client to shim: close the process's stdin.
    pub const CLOSE_STDIN: u8 = 4;
}

/// Largest payload accepted in one frame.
pub const MAX_FRAME: usize = 1 << 20;

/// A request sent as the first line of a control-socket connection.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Start the created container's process.
    Start,
    /// Stream the container's output; forward stdin when `stdin` is set.
    Attach { stdin: bool },
    /// Resize the container's terminal.
    Resize { height: u16, width: u16 },
    /// Send a signal to the container's init process.
    Kill { signal: i32 },
    /// Reply once the container's init process has exited.
    Wait,
    /// Reply at once with the current state.
    State,
    /// Run an extra process in the container, described by an OCI process JSON file.
    Exec {
        exec_id: String,
        process_path: String,
        tty: bool,
        stdin: bool,
        height: u16,
        width: u16,
    },
    /// Resize a running exec's terminal.
    ExecResize {
        exec_id: String,
        height: u16,
        width: u16,
    },
}

/// The one-line answer to a [`Request`].
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Reply {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(default)]
    pub running: bool,
}

impl Reply {
    pub fn ok() -> Self {
        Reply::default()
    }
    pub fn err(msg: impl Into<String>) -> Self {
        Reply {
            error: Some(msg.into()),
            ..Reply::default()
        }
    }
}

/// What the shim writes to `exit.json` when the container's process ends.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExitRecord {
    pub exit_code: i32,
    pub finished_at: String,
    #[serde(default)]
    pub oom_killed: bool,
}

/// Writes one frame.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    kind: u8,
    payload: &[u8],
) -> std::io::Result<()> {
    let mut head = [0u8; 5];
    head[0] = kind;
    head[1..5].copy_from_slice(&(payload.len() as u32).to_be_bytes());
    w.write_all(&head).await?;
    w.write_all(payload).await?;
    w.flush().await
}

/// Reads one frame; `None` at a clean end of stream.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    match r.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "frame too large",
        ));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).await?;
    Ok(Some((head[0], buf)))
}

/// Reads one `\n`-terminated line (at most 64 KiB) byte by byte, so that no
/// bytes after the line are consumed from the stream.
pub async fn read_line<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<String> {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    loop {
        let n = r.read(&mut b).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed before a full line",
            ));
        }
        if b[0] == b'\n' {
            break;
        }
        out.push(b[0]);
        if out.len() > 64 * 1024 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "line too long",
            ));
        }
    }
    String::from_utf8(out).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Serialises `v` as one JSON line.
pub async fn write_json_line<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    v: &T,
) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(v)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    line.push(b'\n');
    w.write_all(&line).await?;
    w.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        write_frame(&mut a, frame::STDOUT, b"hello").await.unwrap();
        write_frame(&mut a, frame::EXIT, &3i32.to_be_bytes())
            .await
            .unwrap();
        drop(a);
        assert_eq!(
            read_frame(&mut b).await.unwrap(),
            Some((frame::STDOUT, b"hello".to_vec()))
        );
        let (k, p) = read_frame(&mut b).await.unwrap().unwrap();
        assert_eq!(k, frame::EXIT);
        assert_eq!(i32::from_be_bytes([p[0], p[1], p[2], p[3]]), 3);
        assert_eq!(read_frame(&mut b).await.unwrap(), None);
    }

    #[tokio::test]
    async fn oversized_frame_is_an_error() {
        let (mut a, mut b) = tokio::io::duplex(64);
        tokio::spawn(async move {
            let _ = a.write_all(&[1, 0xff, 0xff, 0xff, 0xff]).await;
        });
        assert!(read_frame(&mut b).await.is_err());
    }

    #[test]
    fn requests_are_tagged_json() {
        let r: Request = serde_json::from_str(r#"{"op":"attach","stdin":true}"#).unwrap();
        assert_eq!(r, Request::Attach { stdin: true });
        assert!(serde_json::from_str::<Request>(r#"{"op":"nope"}"#).is_err());
    }
}
