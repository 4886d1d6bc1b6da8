//! What the engine knows about a container, in Docker's terms; [`crate::build_spec`] turns it
//! into an OCI runtime spec.

use std::collections::BTreeMap;
use std::path::PathBuf;

use oci_spec::runtime::LinuxSeccomp;
use serde::{Deserialize, Serialize};

/// Default `/dev/shm` size (Docker's `--shm-size` default): 64 MiB.
pub const DEFAULT_SHM_SIZE: u64 = 64 * 1024 * 1024;

/// `PATH` used when the image and the user set none (Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Default `RLIMIT_NOFILE` (soft and hard) when no `nofile` ulimit is given: what dockerd's
/// containers inherit from a systemd-started daemon. Lowered to `fs.nr_open`, and to this
/// process' hard limit when it lacks `CAP_SYS_RESOURCE` (the runtime could not set more).
pub const DEFAULT_NOFILE: u64 = 1_048_576;

/// Everything needed to build a container's OCI spec. `Default` gives an empty, invalid input
/// (no id, no rootfs, no args); fill at least those three.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SpecInput {
    /// Container id (64 hex chars in Docker). Used for the default hostname (first 12 chars)
    /// and the default cgroups path. Must be non-empty, `[A-Za-z0-9_.-]` only.
    pub id: String,
    /// Absolute path of the container's root filesystem on the host (e.g. the overlay merged
    /// dir). Also where `/etc/passwd` and `/etc/group` are read from for `user`.
    pub rootfs: PathBuf,
    /// Mount the rootfs read-only (`--read-only`). Default mounts other than `/proc`, `/dev`,
    /// `/dev/pts`, `/dev/shm` and `/dev/mqueue` become read-only too, as in Docker.
    pub readonly_rootfs: bool,
    /// The command: entrypoint + cmd, already resolved by the caller. Must be non-empty.
    pub args: Vec<String>,
    /// `KEY=VALUE` entries (image env then user env). Later entries replace earlier ones with
    /// the same key; an entry without `=` removes the key. `PATH` (default [`DEFAULT_PATH`]),
    /// `HOSTNAME`, `TERM=xterm` (with `tty`) and `HOME` (from passwd) are provided when absent.
    pub env: Vec<String>,
    /// Working directory inside the container; must be absolute. Empty means `/`.
    pub cwd: String,
    /// `--user` as Docker takes it: `""` (root), `name`, `uid`, `uid:gid`, `name:group`, ...
    pub user: String,
    /// `--group-add`: extra supplementary groups (names looked up in the rootfs, or gids).
    pub group_add: Vec<String>,
    /// Allocate a pseudo-terminal (`-t`).
    pub tty: bool,
    /// Initial console size `(height, width)` when `tty` is set.
    pub console_size: Option<(u64, u64)>,
    /// Container hostname. Empty means the first 12 characters of `id`. Ignored (left as the
    /// host's) when `uts` is [`NamespaceMode::Host`]. With `network: Host` Docker uses the
    /// host's hostname: the caller passes it here.
    pub hostname: String,
    /// NIS domain name (`--domainname`); empty means unset.
    pub domainname: String,
    /// User mounts (volumes, binds, tmpfs, and the engine's `/etc/hosts`, `/etc/resolv.conf`,
    /// `/etc/hostname` binds). A user mount replaces a default mount with the same
    /// destination; a user mount on `/dev` also drops the default `/dev/*` mounts.
    pub mounts: Vec<MountSpec>,
    /// Network namespace: a new empty one (`--network none`), the host's, or an existing one
    /// by path (how bridge networks and `--network container:X` are wired).
    pub network: NamespaceMode,
    /// IPC namespace (`--ipc`). With `Host`, `/dev/shm` is a bind of the host's `/dev/shm`.
    /// With `Path` (`--ipc container:X`) the caller should also pass a `/dev/shm` mount.
    pub ipc: NamespaceMode,
    /// PID namespace (`--pid`).
    pub pid: NamespaceMode,
    /// UTS namespace (`--uts`).
    pub uts: NamespaceMode,
    /// Cgroup namespace (`--cgroupns`); Docker's cgroup v2 default is a private one.
    pub cgroupns: NamespaceMode,
    /// cgroups path for the runtime, e.g. `/berth/<id>`. Empty means `/berth/<id>`.
    pub cgroups_path: String,
    /// Resource limits (`--memory`, `--cpus`, ...).
    pub resources: Resources,
    /// `--cap-add`: names with or without `CAP_`, or `ALL`.
    pub cap_add: Vec<String>,
    /// `--cap-drop`: names with or without `CAP_`, or `ALL`.
    pub cap_drop: Vec<String>,
    /// `--privileged`: all capabilities, all host devices, no seccomp, no masked or read-only
    /// paths, writable `/sys` and cgroup mounts.
    pub privileged: bool,
    /// `--security-opt seccomp=...`. Ignored when `privileged`.
    pub seccomp: SeccompMode,
    /// `/dev/shm` size in bytes; `None` or `Some(0)` means [`DEFAULT_SHM_SIZE`].
    pub shm_size: Option<u64>,
    /// `--sysctl`: only namespaced sysctls Docker accepts (`net.*` without host network,
    /// IPC ones without host IPC). Docker's defaults (`net.ipv4.ip_unprivileged_port_start=0`,
    /// `net.ipv4.ping_group_range=0 2147483647`) are added for non-host networks.
    pub sysctls: BTreeMap<String, String>,
    /// `--ulimit`. `nofile` defaults to [`DEFAULT_NOFILE`] when not given.
    pub ulimits: Vec<Ulimit>,
    /// `--oom-score-adj` (`-1000..=1000`); `None` means 0 as in Docker.
    pub oom_score_adj: Option<i32>,
    /// Extra paths to mask (in addition to Docker's list); absolute.
    pub masked_paths: Vec<String>,
    /// Extra paths to make read-only (in addition to Docker's list); absolute.
    pub readonly_paths: Vec<String>,
    /// `--security-opt no-new-privileges`.
    pub no_new_privileges: bool,
    /// `--device`: host devices to expose.
    pub devices: Vec<DeviceMapping>,
    /// `--device-cgroup-rule`, e.g. `c 42:* rmw`.
    pub device_cgroup_rules: Vec<String>,
    /// OCI annotations copied into the spec.
    pub annotations: BTreeMap<String, String>,
}

/// How a namespace is set up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NamespaceMode {
    /// A new, private namespace (Docker's default).
    #[default]
    New,
    /// Share the host's namespace (no namespace entry in the spec).
    Host,
    /// Join an existing namespace, e.g. `/proc/<pid>/ns/net` or `/run/netns/<name>`.
    Path(PathBuf),
}

/// Seccomp choice.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub enum SeccompMode {
    /// berth's default profile, equivalent to Docker's (see [`crate::default_seccomp_profile`]).
    #[default]
    Default,
    /// No seccomp filter (`seccomp=unconfined`).
    Unconfined,
    /// A caller-provided profile (`seccomp=profile.json`), used as is.
    Custom(Box<LinuxSeccomp>),
}

/// Kind of a user mount.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountKind {
    /// Bind mount of a host path (volumes are resolved to their host dir by the caller).
    /// Recursive (`rbind`) unless `options` contains `bind`.
    #[default]
    Bind,
    /// A fresh tmpfs (`--tmpfs`, `--mount type=tmpfs`); `source` is ignored. Defaults to
    /// `noexec,nosuid,nodev`, which `options` may override (e.g. `exec`, `size=64m`).
    Tmpfs,
    /// Any other filesystem type (e.g. `"overlay"`, `"nfs"`), passed through with `source`
    /// and `options`.
    Fs(String),
}

/// Mount propagation of a bind mount (`--mount bind-propagation=...`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Propagation {
    /// `rprivate` (Docker's default).
    #[default]
    RPrivate,
    /// `private`.
    Private,
    /// `rshared`.
    RShared,
    /// `shared`.
    Shared,
    /// `rslave`.
    RSlave,
    /// `slave`.
    Slave,
}

impl Propagation {
    /// The mount option string.
    pub fn as_str(self) -> &'static str {
        match self {
            Propagation::RPrivate => "rprivate",
            Propagation::Private => "private",
            Propagation::RShared => "rshared",
            Propagation::Shared => "shared",
            Propagation::RSlave => "rslave",
            Propagation::Slave => "slave",
        }
    }
}

/// One user mount.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MountSpec {
    /// Host path for `Bind` (absolute), device/remote for `Fs`, ignored for `Tmpfs`.
    pub source: String,
    /// Absolute path inside the container; not `/`.
    pub destination: String,
    /// Mount kind.
    pub kind: MountKind,
    /// Mount read-only.
    pub readonly: bool,
    /// Propagation for binds; `None` means `rprivate`.
    pub propagation: Option<Propagation>,
    /// Extra mount options, e.g. `size=64m`, `mode=1777`, `exec`, `nosuid`, `bind`.
    pub options: Vec<String>,
}

/// Resource limits, with Docker's units and conventions (0 means "not set").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resources {
    /// `--memory` in bytes; 0 = unlimited; at least 6 MiB otherwise.
    pub memory: i64,
    /// `--memory-swap`: memory + swap in bytes; -1 = unlimited swap; 0 = twice `memory`
    /// (when `memory` is set and the kernel can limit swap).
    pub memory_swap: i64,
    /// `--memory-reservation` (soft limit) in bytes; 0 = unset.
    pub memory_reservation: i64,
    /// `--memory-swappiness` (0..=100); `None` = unset.
    pub memory_swappiness: Option<i64>,
    /// `--oom-kill-disable`.
    pub oom_kill_disable: bool,
    /// `--cpus` in billionths of a CPU; becomes a CFS quota over a 100 ms period.
    pub nano_cpus: i64,
    /// `--cpu-period` in µs; 0 = unset. Conflicts with `nano_cpus`.
    pub cpu_period: i64,
    /// `--cpu-quota` in µs; 0 = unset. Conflicts with `nano_cpus`.
    pub cpu_quota: i64,
    /// `--cpu-shares` (relative weight); 0 = unset.
    pub cpu_shares: i64,
    /// `--cpuset-cpus`, e.g. `0-1,3`; empty = unset.
    pub cpuset_cpus: String,
    /// `--cpuset-mems`; empty = unset.
    pub cpuset_mems: String,
    /// `--pids-limit`; `None` = unset, `<= 0` = unlimited.
    pub pids_limit: Option<i64>,
    /// `--blkio-weight` (10..=1000); 0 = unset.
    pub blkio_weight: u16,
}

/// One `--ulimit name=soft[:hard]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    /// Name as Docker takes it: `nofile`, `nproc`, `core`, `memlock`, `stack`, ...
    pub name: String,
    /// Soft limit; -1 = unlimited.
    pub soft: i64,
    /// Hard limit; -1 = unlimited.
    pub hard: i64,
}

/// One `--device host[:container[:perms]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceMapping {
    /// Device node (or directory of device nodes) on the host.
    pub path_on_host: String,
    /// Path inside the container; empty means the same as on the host.
    pub path_in_container: String,
    /// Cgroup permissions, a combination of `r`, `w`, `m`; empty means `rwm`.
    pub cgroup_permissions: String,
}
