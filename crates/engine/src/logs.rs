//! Reading a container's json-file log, with tail, since/until and follow.

use std::io::{BufRead, Seek};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::error::Result;
use crate::Engine;

/// What `GET /containers/{id}/logs` asks for.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub follow: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Unix seconds; 0 for no bound.
    pub since: f64,
    pub until: f64,
    pub timestamps: bool,
    /// `None` for all lines.
    pub tail: Option<usize>,
}

/// One log entry: stream 1 (stdout) or 2 (stderr) and its bytes.
#[derive(Debug, Clone)]
pub struct LogChunk {
    pub stream: u8,
    pub data: Bytes,
}

#[derive(serde::Deserialize)]
struct Line {
    log: String,
    stream: String,
    time: String,
}

fn parse(line: &str, opts: &LogOptions) -> Option<LogChunk> {
    let l: Line = serde_json::from_str(line).ok()?;
    let stream = if l.stream == "stderr" { 2 } else { 1 };
    if (stream == 1 && !opts.stdout) || (stream == 2 && !opts.stderr) {
        return None;
    }
    if opts.since > 0.0 || opts.until > 0.0 {
        let t = chrono::DateTime::parse_from_rfc3339(&l.time).ok()?;
        let secs = t.timestamp() as f64 + t.timestamp_subsec_nanos() as f64 / 1e9;
        if opts.since > 0.0 && secs < opts.since {
            return None;
        }
        if opts.until > 0.0 && secs > opts.until {
            return None;
        }
    }
    let data = if opts.timestamps {
        format!("{} {}", l.time, l.log)
    } else {
        l.log
    };
    Some(LogChunk {
        stream,
        data: Bytes::from(data),
    })
}

impl Engine {
    /// Streams a container's log; ends at EOF, or with `follow` when the
    /// container is no longer running and everything has been read.
    pub fn logs(self: &Arc<Self>, key: &str, opts: LogOptions) -> Result<mpsc::Receiver<LogChunk>> {
        let ctr = self.find(key)?;
        let rec = ctr.get();
        let path = self.layout(&rec.id).log(&rec.id);
        let (tx, rx) = mpsc::channel(256);
        let life = ctr.life.subscribe();
        let ctr2 = ctr.clone();
        tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&path).ok();
            let mut reader = file.map(std::io::BufReader::new);
            let mut entries: Vec<LogChunk> = Vec::new();
            let mut pending = String::new();
            if let Some(r) = reader.as_mut() {
                let mut line = String::new();
                while r.read_line(&mut line).unwrap_or(0) > 0 {
                    if line.ends_with('\n') {
                        if let Some(c) = parse(line.trim_end(), &opts) {
                            entries.push(c);
                        }
                        line.clear();
                    } else {
                        pending = std::mem::take(&mut line);
                        break;
                    }
                }
            }
            if let Some(n) = opts.tail {
                let skip = entries.len().saturating_sub(n);
                entries.drain(..skip);
            }
            for e in entries {
                if tx.blocking_send(e).is_err() {
                    return;
                }
            }
            if !opts.follow {
                return;
            }
            drop(life);
            loop {
                if tx.is_closed() {
                    return;
                }
                let running = ctr2.get().running();
                if reader.is_none() {
                    reader = std::fs::File::open(&path).ok().map(std::io::BufReader::new);
                }
                let mut got = false;
                if let Some(r) = reader.as_mut() {
                    let mut line = std::mem::take(&mut pending);
                    while r.read_line(&mut line).unwrap_or(0) > 0 {
                        if line.ends_with('\n') {
                            got = true;
                            if let Some(c) = parse(line.trim_end(), &opts) {
                                if tx.blocking_send(c).is_err() {
                                    return;
                                }
                            }
                            line.clear();
                        } else {
                            break;
                        }
                    }
                    pending = line;
                    let _ = r.stream_position();
                }
                if !running && !got {
                    return;
                }
                if !got {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        });
        Ok(rx)
    }
}
