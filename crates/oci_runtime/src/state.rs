//! runc's `state` / `list -f json` output format.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use libcontainer::container::{Container, ContainerStatus};
use serde::Serialize;

/// OCI version reported in state output.
pub const OCI_VERSION: &str = "1.0.2";

/// The JSON document `runc state` prints (field names and order as runc's).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RuncState {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    /// Init pid; 0 once the container stopped (as runc reports).
    pub pid: i32,
    /// `creating`, `created`, `running`, `paused` or `stopped`.
    pub status: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 with nanoseconds, UTC.
    pub created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<HashMap<String, String>>,
    pub owner: String,
}

/// runc's lower-case status word.
pub fn status_word(status: ContainerStatus) -> &'static str {
    match status {
        ContainerStatus::Creating => "creating",
        ContainerStatus::Created => "created",
        ContainerStatus::Running => "running",
        ContainerStatus::Stopped => "stopped",
        ContainerStatus::Paused => "paused",
    }
}

impl RuncState {
    /// Builds the state of a loaded (status-refreshed) container.
    pub fn from_container(c: &Container) -> RuncState {
        let status = c.status();
        let pid = match (status, c.pid()) {
            (ContainerStatus::Stopped, _) | (_, None) => 0,
            (_, Some(pid)) => pid.as_raw(),
        };
        RuncState {
            oci_version: OCI_VERSION.to_string(),
            id: c.id().to_string(),
            pid,
            status: status_word(status).to_string(),
            bundle: c.bundle().clone(),
            rootfs: rootfs_of(c.bundle()).unwrap_or_default(),
            created: c
                .created()
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
                .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string()),
            annotations: c.state.annotations.clone().filter(|a| !a.is_empty()),
            owner: String::new(),
        }
    }
}

/// Reads `root.path` of the bundle's config.json, resolved against the bundle.
fn rootfs_of(bundle: &Path) -> Option<PathBuf> {
    let text = std::fs::read(bundle.join("config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&text).ok()?;
    let p = PathBuf::from(v.get("root")?.get("path")?.as_str()?);
    Some(if p.is_absolute() { p } else { bundle.join(p) })
}

/// Renders containers as runc's `list` table.
pub fn render_table(states: &[RuncState]) -> String {
    let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"];
    let rows: Vec<[String; 6]> = states
        .iter()
        .map(|s| {
            [
                s.id.clone(),
                s.pid.to_string(),
                s.status.clone(),
                s.bundle.display().to_string(),
                s.created.clone(),
                s.owner.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut l = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                l.push_str(&format!("{:width$}", cell, width = widths[i] + 3));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&header);
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&cells);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RuncState {
        RuncState {
            oci_version: OCI_VERSION.into(),
            id: "abc".into(),
            pid: 42,
            status: "running".into(),
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "2024-01-01T00:00:00.000000001Z".into(),
            annotations: None,
            owner: String::new(),
        }
    }

    #[test]
    fn json_has_runc_field_names() {
        let v = serde_json::to_value(sample()).expect("json");
        for key in [
            "ociVersion",
            "id",
            "pid",
            "status",
            "bundle",
            "rootfs",
            "created",
            "owner",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert!(v.get("annotations").is_none());
        assert_eq!(v["pid"], 42);
    }

    #[test]
    fn table_has_header_and_rows() {
        let t = render_table(&[sample()]);
        let mut lines = t.lines();
        let head = lines.next().expect("header");
        assert!(head.starts_with("ID") && head.contains("STATUS"));
        let row = lines.next().expect("row");
        assert!(row.starts_with("abc") && row.contains("running") && row.contains("/b"));
    }

    #[test]
    fn rootfs_resolution() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"root":{"path":"rootfs"}}"#,
        )
        .expect("write");
        assert_eq!(rootfs_of(dir.path()), Some(dir.path().join("rootfs")));
        std::fs::write(dir.path().join("config.json"), "not json").expect("write");
        assert_eq!(rootfs_of(dir.path()), None);
    }
}
