//! A container's persistent record and its on-disk layout.

use std::path::{Path, PathBuf};

use bollard::models::{ContainerConfig, HostConfig};
use serde::{Deserialize, Serialize};

/// Lifecycle states, spelled as the Docker API spells them.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
}

/// Runtime state of a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    pub pid: i32,
    pub exit_code: i32,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    pub oom_killed: bool,
}

pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

impl Default for State {
    fn default() -> Self {
        State {
            status: Status::Created,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            started_at: ZERO_TIME.into(),
            finished_at: ZERO_TIME.into(),
            oom_killed: false,
        }
    }
}

/// One mount as shown by inspect (`Mounts`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MountRecord {
    /// `bind`, `volume` or `tmpfs`.
    pub kind: String,
    /// Volume name for volumes.
    pub name: String,
    /// Host path (bind source or volume data dir).
    pub source: String,
    pub destination: String,
    pub mode: String,
    pub rw: bool,
    /// Anonymous volumes are removed with the container (`--rm`, `rm -v`).
    #[serde(default)]
    pub anonymous: bool,
}

/// Everything the engine keeps about a container, as `container.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Container {
    pub id: String,
    /// Name without the leading slash.
    pub name: String,
    pub created: String,
    /// Image as the user named it.
    pub image: String,
    /// `sha256:...` image id.
    pub image_id: String,
    /// Config with the image's defaults merged in.
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub path: String,
    pub args: Vec<String>,
    pub state: State,
    pub restart_count: i64,
    pub mounts: Vec<MountRecord>,
    /// Runtime name (`berth` or `runc`).
    pub runtime: String,
    /// Set by `stop`/`kill` from a user, so restart policies leave it alone.
    #[serde(default)]
    pub manually_stopped: bool,
    /// Chain of image layer directories (bottom to top) the rootfs stacks.
    #[serde(default)]
    pub layers: Vec<PathBuf>,
    /// Networks joined while running (cleared when the container stops).
    #[serde(default)]
    pub endpoints: Vec<EndpointInfo>,
    /// Published ports while running, with the host ports actually bound.
    #[serde(default)]
    pub ports: Vec<PublishedPort>,
    /// User networks joined at start besides the one named by NetworkMode
    /// (`network connect` of a stopped container).
    #[serde(default)]
    pub extra_networks: Vec<String>,
    /// DNS aliases per network (`--network-alias`), keyed by network name.
    #[serde(default)]
    pub aliases: std::collections::HashMap<String, Vec<String>>,
}

/// A container's place on one network.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EndpointInfo {
    pub network: String,
    pub network_id: String,
    pub ip: String,
    pub prefix_len: u8,
    pub gateway: String,
    pub mac: String,
}

/// One published port.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PublishedPort {
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub proto: String,
}

impl Container {
    pub fn tty(&self) -> bool {
        self.config.tty.unwrap_or(false)
    }
    pub fn running(&self) -> bool {
        matches!(self.state.status, Status::Running | Status::Restarting)
    }
    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }
}

/// Paths of one container's files.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Persistent directory: record, bundle, logs, overlay dirs.
    pub dir: PathBuf,
    /// Runtime directory (on /run): shim socket, pid files.
    pub run_dir: PathBuf,
}

impl Layout {
    pub fn new(root: &Path, exec_root: &Path, id: &str) -> Self {
        Layout {
            dir: root.join("containers").join(id),
            run_dir: exec_root.join("s").join(&id[..12]),
        }
    }
    pub fn record(&self) -> PathBuf {
        self.dir.join("container.json")
    }
    pub fn bundle(&self) -> PathBuf {
        self.dir.join("bundle")
    }
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }
    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }
    pub fn log(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}-json.log"))
    }
    pub fn exit(&self) -> PathBuf {
        self.dir.join("exit.json")
    }
    pub fn socket(&self) -> PathBuf {
        self.run_dir.join("shim.sock")
    }
    pub fn hosts(&self) -> PathBuf {
        self.dir.join("hosts")
    }
    pub fn hostname(&self) -> PathBuf {
        self.dir.join("hostname")
    }
    pub fn resolv_conf(&self) -> PathBuf {
        self.dir.join("resolv.conf")
    }
}

/// Writes a file through a temporary name, fsync and rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Current time in Docker's RFC 3339 form with nanoseconds.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}
