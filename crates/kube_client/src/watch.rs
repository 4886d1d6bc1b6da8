//! Watch streams: the API server sends one JSON event per line,
//! `{"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":{...}}`.

use bytes::{Buf, BytesMut};
use serde_json::Value;

use crate::{Error, Status};

/// Longest event line accepted (a single object; Kubernetes caps objects near 3 MiB,
/// and etcd values at 1.5 MiB, so this is generous).
pub const MAX_EVENT_LINE: usize = 64 * 1024 * 1024;

/// One watch event. ERROR events are not events: the stream yields them as
/// [`Error::Api`] (410 Gone means: list again).
#[derive(Clone, Debug, PartialEq)]
pub enum WatchEvent {
    Added(Value),
    Modified(Value),
    Deleted(Value),
    /// Only `metadata.resourceVersion` (and annotations) are meaningful.
    Bookmark(Value),
}

impl WatchEvent {
    /// The object the event carries.
    pub fn object(&self) -> &Value {
        match self {
            WatchEvent::Added(o)
            | WatchEvent::Modified(o)
            | WatchEvent::Deleted(o)
            | WatchEvent::Bookmark(o) => o,
        }
    }

    /// The object's `metadata.resourceVersion`.
    pub fn resource_version(&self) -> Option<&str> {
        self.object()["metadata"]["resourceVersion"].as_str()
    }

    /// Parses one event line (without its newline).
    pub fn parse_line(line: &[u8]) -> Result<WatchEvent, Error> {
        #[derive(serde::Deserialize)]
        struct Raw {
            #[serde(rename = "type")]
            kind: String,
            #[serde(default)]
            object: Value,
        }
        let raw: Raw = serde_json::from_slice(line).map_err(Error::Decode)?;
        match raw.kind.as_str() {
            "ADDED" => Ok(WatchEvent::Added(raw.object)),
            "MODIFIED" => Ok(WatchEvent::Modified(raw.object)),
            "DELETED" => Ok(WatchEvent::Deleted(raw.object)),
            "BOOKMARK" => Ok(WatchEvent::Bookmark(raw.object)),
            "ERROR" => Err(Error::Api(Status::from_value(&raw.object, 500))),
            other => Err(Error::Protocol(format!(
                "unknown watch event type {other:?}"
            ))),
        }
    }
}

/// Splits a byte stream into watch events; feed chunks with [`WatchParser::push`] and
/// take events with [`WatchParser::next_event`].
#[derive(Default)]
pub struct WatchParser {
    buf: BytesMut,
    /// How far `buf` was already searched for a newline.
    scanned: usize,
}

impl WatchParser {
    pub fn new() -> WatchParser {
        WatchParser::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete event, if a whole line is buffered. Blank lines are skipped.
    /// An over-long line is an error (the stream should then be dropped).
    pub fn next_event(&mut self) -> Option<Result<WatchEvent, Error>> {
        loop {
            let Some(pos) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') else {
                self.scanned = self.buf.len();
                if self.buf.len() > MAX_EVENT_LINE {
                    self.buf.clear();
                    self.scanned = 0;
                    return Some(Err(Error::Protocol(format!(
                        "watch event longer than {MAX_EVENT_LINE} bytes"
                    ))));
                }
                return None;
            };
            let end = self.scanned + pos;
            let line = self.buf.split_to(end);
            self.buf.advance(1);
            self.scanned = 0;
            let trimmed = line.trim_ascii();
            if trimmed.is_empty() {
                continue;
            }
            return Some(WatchEvent::parse_line(trimmed));
        }
    }

    /// What is left when the stream ends: a last event without a newline, if any.
    pub fn finish(&mut self) -> Option<Result<WatchEvent, Error>> {
        let rest = std::mem::take(&mut self.buf);
        self.scanned = 0;
        let trimmed = rest.trim_ascii();
        if trimmed.is_empty() {
            None
        } else {
            Some(WatchEvent::parse_line(trimmed))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn drain(p: &mut WatchParser) -> Vec<Result<WatchEvent, Error>> {
        std::iter::from_fn(|| p.next_event()).collect()
    }

    #[test]
    fn splits_events_across_arbitrary_chunks() {
        let text = concat!(
            "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"5\"}}}\n",
            "\n",
            "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}\r\n",
            "{\"object\":{\"metadata\":{\"resourceVersion\":\"9\"}},\"type\":\"BOOKMARK\"}\n",
            "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}"
        );
        for chunk in [1usize, 2, 7, 64, 4096] {
            let mut p = WatchParser::new();
            let mut out = Vec::new();
            for c in text.as_bytes().chunks(chunk) {
                p.push(c);
                out.extend(drain(&mut p));
            }
            out.extend(p.finish());
            let out: Vec<WatchEvent> = out.into_iter().map(|r| r.unwrap()).collect();
            assert_eq!(out.len(), 4, "chunk {chunk}");
            assert_eq!(out[0].resource_version(), Some("5"));
            assert!(matches!(out[1], WatchEvent::Modified(_)));
            assert!(matches!(out[2], WatchEvent::Bookmark(_)));
            assert_eq!(out[2].resource_version(), Some("9"));
            assert_eq!(out[3].object()["metadata"]["name"], json!("a"));
        }
    }

    #[test]
    fn error_events_carry_status() {
        let mut p = WatchParser::new();
        p.push(b"{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"too old resource version: 1\",\"reason\":\"Expired\",\"code\":410}}\n");
        let e = p.next_event().unwrap().unwrap_err();
        assert!(e.is_gone());
        assert_eq!(e.status().unwrap().reason, "Expired");
        assert!(p.next_event().is_none());
    }

    #[test]
    fn garbage_is_an_error_and_parsing_continues() {
        let mut p = WatchParser::new();
        p.push(b"not json\n{\"type\":\"WHAT\",\"object\":{}}\n[1]\n{\"type\":\"ADDED\",\"object\":{}}\n");
        let out = drain(&mut p);
        assert_eq!(out.len(), 4);
        assert!(out[0].is_err() && out[1].is_err() && out[2].is_err());
        assert!(matches!(out[3], Ok(WatchEvent::Added(_))));
    }

    #[test]
    fn overlong_line_is_rejected() {
        let mut p = WatchParser::new();
        let chunk = vec![b'x'; 1024 * 1024];
        let mut failed = false;
        for _ in 0..(MAX_EVENT_LINE / chunk.len() + 2) {
            p.push(&chunk);
            if let Some(r) = p.next_event() {
                assert!(r.is_err());
                failed = true;
                break;
            }
        }
        assert!(failed);
    }
}
