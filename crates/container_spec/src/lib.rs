//! container_spec: builds the OCI runtime spec (`config.json`) for a berth container with
//! Docker's default isolation.
//!
//! The engine describes a container in Docker's terms ([`SpecInput`]: command, env, `--user`,
//! mounts, namespace modes, resources, capabilities, seccomp, ...) and [`build_spec`] turns it
//! into an [`oci_spec::runtime::Spec`] that runc or youki's libcontainer can run, with what
//! `docker run` gives by default:
//!
//! * new pid, mount, uts, ipc, network and cgroup namespaces (each can be the host's or an
//!   existing one by path);
//! * Docker's 14 default capabilities (`CapEff` `0xa80425fb` for root), `--cap-add`/`--cap-drop`
//!   with `ALL`, everything for `--privileged`;
//! * a default seccomp profile equivalent to Docker's ([`default_seccomp_profile`]);
//! * `/proc`, `/dev`, `/dev/pts`, `/dev/shm`, `/dev/mqueue`, read-only `/sys` and
//!   `/sys/fs/cgroup`; Docker's masked and read-only `/proc`/`/sys` paths;
//! * the default device nodes and a "deny all, allow the basics" device cgroup;
//! * `RLIMIT_NOFILE` 1048576, 64 MiB `/dev/shm`, Docker's default sysctls.
//!
//! `--user` is resolved against the rootfs' `/etc/passwd` and `/etc/group` without ever
//! following a symlink out of the rootfs ([`resolve_user`]). [`write_bundle`] writes the spec
//! atomically.

mod bundle;
mod caps;
mod devices;
mod error;
mod input;
mod mounts;
mod resources;
mod rootfs_read;
mod seccomp;
mod spec;
mod user;

pub use bundle::write_bundle;
pub use caps::{
    all_capabilities, capability_mask, capability_name, capability_number,
    docker_default_capabilities, effective_capabilities, parse_capability,
};
pub use devices::parse_device_cgroup_rule;
pub use error::SpecError;
pub use input::{
    DeviceMapping, MountKind, MountSpec, NamespaceMode, Propagation, Resources, SeccompMode,
    SpecInput, Ulimit, DEFAULT_NOFILE, DEFAULT_PATH, DEFAULT_SHM_SIZE,
};
pub use resources::{linux_resources, CPU_PERIOD_US};
pub use seccomp::{
    default_profile as default_seccomp_profile, swap_masked_eq_operands, CLONE_NAMESPACE_FLAGS,
};
pub use spec::{
    build_spec, config_path, DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, OCI_VERSION,
};
pub use user::{resolve_groups, resolve_user, resolve_user_details, ResolvedUser};

/// Re-export of the oci-spec crate so callers use the same version.
pub use oci_spec;

#[cfg(test)]
mod tests;
