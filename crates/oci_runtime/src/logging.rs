//! Logging in runc's formats.
//!
//! With `--log FILE` every record (libcontainer's own `tracing` events
//! included) is appended to FILE, as runc does: one JSON object per line
//! (`{"level":"error","msg":"...","time":"..."}`) with `--log-format json`, or
//! logrus-style text (`time="..." level=error msg="..."`) otherwise. Callers
//! such as containerd-style shims read the last `error` line to learn why a
//! command failed, so the final error is always written last.
//!
//! Records below `error` are kept only with `--debug`. Without `--log`,
//! nothing is logged unless `--debug` is given (then text goes to stderr);
//! the final error is printed on stderr in every case.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::RuntimeError;

/// Output format of log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// logrus text: `time="..." level=... msg="..."`.
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// Parses `--log-format` (default text).
    pub fn parse(raw: Option<&str>) -> Result<Self, RuntimeError> {
        match raw {
            None | Some("text") | Some("") => Ok(Self::Text),
            Some("json") => Ok(Self::Json),
            Some(other) => Err(RuntimeError::Usage(format!(
                "invalid log format {other:?}: expected text or json"
            ))),
        }
    }
}

/// Where log records and the final error go.
#[derive(Debug)]
pub struct LogSink {
    file: Option<PathBuf>,
    format: LogFormat,
}

impl LogSink {
    /// Sets up logging for this process; a broken `--log` path is reported
    /// as an error (runc refuses to run without its log either).
    pub fn init(
        log: Option<&Path>,
        format: LogFormat,
        debug: bool,
    ) -> Result<LogSink, RuntimeError> {
        let level = if debug { Level::DEBUG } else { Level::ERROR };
        let sink = LogSink {
            file: log.map(Path::to_path_buf),
            format,
        };
        match log {
            Some(path) if path != Path::new("/dev/stderr") => {
                let file = open_log(path)?;
                install(level, format, Mutex::new(file));
            }
            Some(_) => install(level, format, std::io::stderr),
            None if debug => install(level, format, std::io::stderr),
            None => {}
        }
        Ok(sink)
    }

    /// A sink that writes nowhere but stderr (used when setup itself failed).
    pub fn stderr_only() -> LogSink {
        LogSink {
            file: None,
            format: LogFormat::Text,
        }
    }

    /// Reports the command's final error: stderr, plus the log file if any.
    pub fn report_error(&self, message: &str) {
        eprintln!("{message}");
        if let Some(path) = &self.file {
            if path == Path::new("/dev/stderr") {
                return;
            }
            if let Ok(mut f) = open_log(path) {
                let line = render("error", message, self.format);
                let _ = f.write_all(line.as_bytes());
            }
        }
    }
}

fn open_log(path: &Path) -> Result<File, RuntimeError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| RuntimeError::Io {
            context: format!("open log file {}", path.display()),
            source,
        })
}

fn install<W>(level: Level, format: LogFormat, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(writer)
        .with_ansi(false)
        .event_format(RuncFormat { format })
        .finish();
    // Only fails if a subscriber is already installed (e.g. a second call in
    // one process); the first one then stays in charge, which is fine.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// Renders one log line (newline included) in runc's format.
pub fn render(level: &str, msg: &str, format: LogFormat) -> String {
    let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    match format {
        LogFormat::Json => {
            let obj = serde_json::json!({ "level": level, "msg": msg, "time": time });
            format!("{obj}\n")
        }
        LogFormat::Text => format!("time={time:?} level={level} msg={}\n", quote(msg)),
    }
}

/// Quotes a value the way `{:?}` does for strings (escapes quotes/newlines).
fn quote(s: &str) -> String {
    format!("{s:?}")
}

struct RuncFormat {
    format: LogFormat,
}

#[derive(Default)]
struct MessageVisitor {
    message: String,
    fields: String,
}

impl Visit for MessageVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }
}

impl<S, N> FormatEvent<S, N> for RuncFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut visitor = MessageVisitor::default();
        event.record(&mut visitor);
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        let msg = format!("{}{}", visitor.message, visitor.fields);
        writer.write_str(&render(level, &msg, self.format))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_is_runc_shaped() {
        let line = render("error", "boom \"x\"\nnext", LogFormat::Json);
        assert!(line.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).expect("json");
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "boom \"x\"\nnext");
        assert!(v["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    }

    #[test]
    fn text_line_is_logrus_shaped() {
        let line = render("error", "a \"b\"", LogFormat::Text);
        assert!(line.starts_with("time=\""), "{line}");
        assert!(line.contains(" level=error msg=\"a \\\"b\\\"\""), "{line}");
    }

    #[test]
    fn log_format_parsing() {
        assert_eq!(LogFormat::parse(None).ok(), Some(LogFormat::Text));
        assert_eq!(LogFormat::parse(Some("json")).ok(), Some(LogFormat::Json));
        assert!(LogFormat::parse(Some("xml")).is_err());
    }

    #[test]
    fn report_error_appends_json_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log.json");
        let sink = LogSink {
            file: Some(path.clone()),
            format: LogFormat::Json,
        };
        sink.report_error("first");
        sink.report_error("second");
        let text = std::fs::read_to_string(&path).expect("read");
        let last = text.lines().last().expect("line");
        let v: serde_json::Value = serde_json::from_str(last).expect("json");
        assert_eq!(v["msg"], "second");
        assert_eq!(text.lines().count(), 2);
    }
}
