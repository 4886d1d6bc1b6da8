//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while validating a [`crate::SpecInput`], resolving users
/// inside a rootfs, building the spec or writing a bundle.
///
/// Messages follow Docker's wording where Docker has one, because they end up in front of
/// `docker` CLI users.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The container id is empty or contains characters that cannot appear in a runtime id.
    #[error("invalid container id {0:?}: must be non-empty and only contain [A-Za-z0-9_.-]")]
    InvalidId(String),

    /// The rootfs path must be absolute (the bundle may live elsewhere).
    #[error("rootfs path {0:?} must be absolute")]
    RootfsNotAbsolute(PathBuf),

    /// The rootfs directory could not be opened.
    #[error("cannot open rootfs {path:?}: {source}")]
    RootfsUnreadable {
        /// The rootfs path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A file inside the rootfs (e.g. `/etc/passwd`) exists but could not be read safely.
    #[error("cannot read {path} inside the rootfs: {reason}")]
    RootfsFile {
        /// Path inside the container, e.g. `/etc/passwd`.
        path: String,
        /// What went wrong.
        reason: String,
    },

    /// `args` was empty.
    #[error("no command specified")]
    EmptyArgs,

    /// A string that ends up in a C string (argv, env, hostname, ...) contains a NUL byte.
    #[error("invalid {field}: {value:?} contains a NUL byte")]
    NulByte {
        /// Which input field.
        field: &'static str,
        /// The offending value (lossy).
        value: String,
    },

    /// An environment entry is malformed (empty variable name).
    #[error("invalid environment variable {0:?}: empty name")]
    InvalidEnv(String),

    /// The working directory is not absolute.
    #[error("the working directory '{0}' is invalid, it needs to be an absolute path")]
    RelativeCwd(String),

    /// A user name given to `--user` has no entry in the rootfs' passwd file.
    #[error("unable to find user {0}: no matching entries in passwd file")]
    UserNotFound(String),

    /// A group name given to `--user u:g` or `--group-add` has no entry in the group file.
    #[error("unable to find group {0}: no matching entries in group file")]
    GroupNotFound(String),

    /// A numeric uid/gid is outside `0..=2147483647`.
    #[error("{kind} {value} out of range")]
    IdOutOfRange {
        /// `"uid"` or `"gid"`.
        kind: &'static str,
        /// The value as given.
        value: String,
    },

    /// The `--user` string has a shape Docker does not accept (e.g. `a:b:c`).
    #[error("invalid user specification {0:?}")]
    InvalidUser(String),

    /// A mount destination is not an absolute path.
    #[error("invalid mount config: mount destination {0:?} is not an absolute path")]
    MountDestinationNotAbsolute(String),

    /// A mount targets `/`.
    #[error("invalid mount config: destination can't be '/'")]
    MountDestinationRoot,

    /// Two user mounts have the same destination.
    #[error("duplicate mount point: {0}")]
    DuplicateMount(String),

    /// A bind mount has an empty or relative source.
    #[error(
        "invalid mount config for {destination}: bind source path {source_path:?} must be absolute"
    )]
    MountSourceNotAbsolute {
        /// Mount destination, for context.
        destination: String,
        /// The bad source.
        source_path: String,
    },

    /// A mount option is invalid (empty, contains a comma or a NUL byte).
    #[error("invalid mount option {option:?} for {destination}")]
    InvalidMountOption {
        /// Mount destination, for context.
        destination: String,
        /// The bad option.
        option: String,
    },

    /// An extra masked or read-only path is not absolute.
    #[error("invalid {kind} path {path:?}: must be absolute")]
    InvalidPath {
        /// `"masked"` or `"readonly"`.
        kind: &'static str,
        /// The bad path.
        path: String,
    },

    /// `--cap-add`/`--cap-drop` named a capability that does not exist.
    #[error("unknown capability: {0:?}")]
    UnknownCapability(String),

    /// A resource limit is out of range or inconsistent (message says which).
    #[error("invalid resources: {0}")]
    InvalidResource(String),

    /// A sysctl is not namespaced or not allowed with the chosen namespace modes.
    #[error("invalid sysctl {key:?}: {reason}")]
    InvalidSysctl {
        /// The sysctl key.
        key: String,
        /// Why it is refused.
        reason: String,
    },

    /// A ulimit has an unknown name or soft > hard.
    #[error("invalid ulimit {name:?}: {reason}")]
    InvalidUlimit {
        /// The ulimit name as given.
        name: String,
        /// Why it is refused.
        reason: String,
    },

    /// A `--device` mapping is invalid.
    #[error("error gathering device information while adding custom device {path:?}: {reason}")]
    InvalidDevice {
        /// Host path of the device.
        path: String,
        /// Why it is refused.
        reason: String,
    },

    /// A `--device-cgroup-rule` could not be parsed.
    #[error("invalid device cgroup rule format: '{0}'")]
    InvalidDeviceCgroupRule(String),

    /// A namespace path is not absolute.
    #[error("invalid {ns} namespace path {path:?}: must be absolute")]
    InvalidNamespacePath {
        /// Namespace kind, e.g. `"network"`.
        ns: &'static str,
        /// The path given.
        path: PathBuf,
    },

    /// The hostname or domainname is too long or contains a NUL byte.
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidName {
        /// `"hostname"` or `"domainname"`.
        field: &'static str,
        /// The value.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },

    /// `oom_score_adj` outside `-1000..=1000`.
    #[error("invalid value {0}, range for oom score adj is [-1000, 1000]")]
    InvalidOomScoreAdj(i32),

    /// The cgroups path contains `..` or a NUL byte.
    #[error("invalid cgroups path {0:?}")]
    InvalidCgroupsPath(String),

    /// An annotation has an empty key.
    #[error("invalid annotation: empty key (value {0:?})")]
    InvalidAnnotation(String),

    /// A seccomp mode that cannot be combined with the rest of the input.
    #[error("invalid seccomp configuration: {0}")]
    InvalidSeccomp(String),

    /// An oci-spec builder rejected a value.
    #[error("building OCI spec: {0}")]
    Oci(#[from] oci_spec::OciSpecError),

    /// Serialising the spec failed.
    #[error("serializing OCI spec: {0}")]
    Serialize(#[from] serde_json::Error),

    /// An I/O error with context (writing the bundle, scanning host devices).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl SpecError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        SpecError::Io {
            context: context.into(),
            source,
        }
    }
}
