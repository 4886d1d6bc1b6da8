//! Assembling the OCI spec from a [`SpecInput`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDevice, LinuxNamespace,
    LinuxNamespaceBuilder, LinuxNamespaceType, PosixRlimit, PosixRlimitBuilder, PosixRlimitType,
    ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use crate::caps::effective_capabilities;
use crate::devices::{
    allow_all_rule, default_cgroup_rules, default_devices, devices_from_mapping, host_devices,
    parse_device_cgroup_rule,
};
use crate::mounts::{build_mounts, clean_abs};
use crate::resources::linux_resources;
use crate::seccomp::default_profile;
use crate::user::{resolve_groups, resolve_user_details};
use crate::{
    NamespaceMode, SeccompMode, SpecError, SpecInput, DEFAULT_NOFILE, DEFAULT_PATH,
    DEFAULT_SHM_SIZE,
};

/// OCI runtime spec version written to `config.json` (what runc 1.1 and youki 0.5+ accept).
pub const OCI_VERSION: &str = "1.0.2-dev";

/// Docker's masked paths (bind-mounted over with `/dev/null` or an empty read-only tmpfs).
pub const DEFAULT_MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths.
pub const DEFAULT_READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// IPC-namespaced sysctls Docker accepts (besides the `fs.mqueue.` prefix).
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Sysctls Docker sets in every container that has its own network namespace.
const DEFAULT_NET_SYSCTLS: &[(&str, &str)] = &[
    // Binding ports < 1024 without CAP_NET_BIND_SERVICE.
    ("net.ipv4.ip_unprivileged_port_start", "0"),
    // ICMP echo ("ping") sockets without CAP_NET_RAW.
    ("net.ipv4.ping_group_range", "0 2147483647"),
];

fn no_nul(field: &'static str, v: &str) -> Result<(), SpecError> {
    if v.contains('\0') {
        return Err(SpecError::NulByte {
            field,
            value: v.to_string(),
        });
    }
    Ok(())
}

fn validate_id(id: &str) -> Result<(), SpecError> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && id != "."
        && id != "..";
    if ok {
        Ok(())
    } else {
        Err(SpecError::InvalidId(id.to_string()))
    }
}

fn validate_name(field: &'static str, v: &str) -> Result<(), SpecError> {
    let bad = |reason| SpecError::InvalidName {
        field,
        value: v.to_string(),
        reason,
    };
    if v.contains('\0') {
        return Err(bad("contains a NUL byte"));
    }
    // The kernel's __NEW_UTS_LEN.
    if v.len() > 64 {
        return Err(bad("longer than 64 bytes"));
    }
    Ok(())
}

/// Builds the environment: Docker's defaults first, then `input.env` replacing or removing
/// entries, then `HOME` when still missing.
pub(crate) fn build_env(
    input_env: &[String],
    hostname: &str,
    tty: bool,
    home: &str,
) -> Result<Vec<String>, SpecError> {
    let mut env: Vec<String> = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={hostname}"),
    ];
    if tty {
        env.push("TERM=xterm".to_string());
    }
    let key_of = |e: &str| e.split_once('=').map(|(k, _)| k.to_string());
    for e in input_env {
        no_nul("environment variable", e)?;
        match e.split_once('=') {
            Some(("", _)) => return Err(SpecError::InvalidEnv(e.clone())),
            Some((k, _)) => {
                if let Some(slot) = env.iter_mut().find(|x| key_of(x).as_deref() == Some(k)) {
                    *slot = e.clone();
                } else {
                    env.push(e.clone());
                }
            }
            None if e.is_empty() => return Err(SpecError::InvalidEnv(e.clone())),
            // A bare name unsets the variable.
            None => env.retain(|x| key_of(x).as_deref() != Some(e.as_str())),
        }
    }
    if !env.iter().any(|x| x.starts_with("HOME=")) {
        env.push(format!("HOME={home}"));
    }
    Ok(env)
}

fn build_sysctls(input: &SpecInput) -> Result<HashMap<String, String>, SpecError> {
    let mut out = HashMap::new();
    for (k, v) in &input.sysctls {
        let refuse = |reason: &str| SpecError::InvalidSysctl {
            key: k.clone(),
            reason: reason.to_string(),
        };
        if k.contains('\0') || v.contains('\0') || k.contains('/') {
            return Err(refuse("contains invalid characters"));
        }
        if IPC_SYSCTLS.contains(&k.as_str()) || k.starts_with("fs.mqueue.") {
            if input.ipc == NamespaceMode::Host {
                return Err(refuse("not allowed in the host IPC namespace"));
            }
        } else if k.starts_with("net.") {
            if input.network == NamespaceMode::Host {
                return Err(refuse("not allowed in the host network namespace"));
            }
        } else {
            return Err(refuse("not a namespaced sysctl that containers may set"));
        }
        out.insert(k.clone(), v.clone());
    }
    if input.network != NamespaceMode::Host {
        for (k, v) in DEFAULT_NET_SYSCTLS {
            out.entry(k.to_string()).or_insert_with(|| v.to_string());
        }
    }
    Ok(out)
}

fn rlimit_type(name: &str) -> Option<PosixRlimitType> {
    use PosixRlimitType::*;
    Some(match name {
        "as" => RlimitAs,
        "core" => RlimitCore,
        "cpu" => RlimitCpu,
        "data" => RlimitData,
        "fsize" => RlimitFsize,
        "locks" => RlimitLocks,
        "memlock" => RlimitMemlock,
        "msgqueue" => RlimitMsgqueue,
        "nice" => RlimitNice,
        "nofile" => RlimitNofile,
        "nproc" => RlimitNproc,
        "rss" => RlimitRss,
        "rtprio" => RlimitRtprio,
        "rttime" => RlimitRttime,
        "sigpending" => RlimitSigpending,
        "stack" => RlimitStack,
        _ => return None,
    })
}

fn build_rlimits(input: &SpecInput) -> Result<Vec<PosixRlimit>, SpecError> {
    let mut out: Vec<PosixRlimit> = Vec::new();
    for u in &input.ulimits {
        let name = u.name.trim().to_ascii_lowercase();
        let bad = |reason: &str| SpecError::InvalidUlimit {
            name: u.name.clone(),
            reason: reason.to_string(),
        };
        let typ = rlimit_type(&name).ok_or_else(|| bad("invalid ulimit type"))?;
        let conv = |v: i64| -> Result<u64, SpecError> {
            match v {
                -1 => Ok(u64::MAX),
                v if v < 0 => Err(bad("limit must be -1 (unlimited) or non-negative")),
                v => Ok(v as u64),
            }
        };
        let (soft, hard) = (conv(u.soft)?, conv(u.hard)?);
        if soft > hard {
            return Err(bad(
                "ulimit soft limit must be less than or equal to hard limit",
            ));
        }
        let rl = PosixRlimitBuilder::default()
            .typ(typ)
            .soft(soft)
            .hard(hard)
            .build()?;
        // A later entry for the same resource wins.
        out.retain(|r| r.typ() != typ);
        out.push(rl);
    }
    if !out.iter().any(|r| r.typ() == PosixRlimitType::RlimitNofile) {
        let n = default_nofile();
        out.push(
            PosixRlimitBuilder::default()
                .typ(PosixRlimitType::RlimitNofile)
                .soft(n)
                .hard(n)
                .build()?,
        );
    }
    Ok(out)
}

/// [`DEFAULT_NOFILE`], lowered to what the runtime (running with this process' privileges)
/// can actually set: `fs.nr_open` always caps it, and without `CAP_SYS_RESOURCE` the current
/// hard limit does too. Otherwise container start would fail with EPERM on such hosts.
fn default_nofile() -> u64 {
    let mut n = DEFAULT_NOFILE;
    if let Some(nr_open) = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
    {
        n = n.min(nr_open);
    }
    if !has_cap_sys_resource() {
        if let Some(hard) = current_nofile_hard() {
            n = n.min(hard);
        }
    }
    n
}

fn has_cap_sys_resource() -> bool {
    const CAP_SYS_RESOURCE: u32 = 24;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .map(|mask| mask & (1 << CAP_SYS_RESOURCE) != 0)
        .unwrap_or(false)
}

/// Hard `RLIMIT_NOFILE` of this process, from `/proc/self/limits`.
fn current_nofile_hard() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let fields: Vec<&str> = line["Max open files".len()..].split_whitespace().collect();
    match fields.get(1)? {
        &"unlimited" => Some(u64::MAX),
        v => v.parse().ok(),
    }
}

fn namespace(
    typ: LinuxNamespaceType,
    mode: &NamespaceMode,
    name: &'static str,
) -> Result<Option<LinuxNamespace>, SpecError> {
    match mode {
        NamespaceMode::Host => Ok(None),
        NamespaceMode::New => Ok(Some(LinuxNamespaceBuilder::default().typ(typ).build()?)),
        NamespaceMode::Path(p) => {
            if !p.is_absolute() {
                return Err(SpecError::InvalidNamespacePath {
                    ns: name,
                    path: p.clone(),
                });
            }
            Ok(Some(
                LinuxNamespaceBuilder::default()
                    .typ(typ)
                    .path(p.clone())
                    .build()?,
            ))
        }
    }
}

fn host_hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn build_devices(
    input: &SpecInput,
) -> Result<(Vec<LinuxDevice>, Vec<oci_spec::runtime::LinuxDeviceCgroup>), SpecError> {
    let mut devices = default_devices()?;
    let mut rules = default_cgroup_rules()?;
    // The later (more specific) entry for a path wins.
    let add = |devices: &mut Vec<LinuxDevice>, d: LinuxDevice| {
        devices.retain(|x| x.path() != d.path());
        devices.push(d);
    };
    if input.privileged {
        for d in host_devices()? {
            add(&mut devices, d);
        }
        rules.push(allow_all_rule()?);
    }
    for m in &input.devices {
        let (devs, r) = devices_from_mapping(m)?;
        for d in devs {
            add(&mut devices, d);
        }
        if !input.privileged {
            rules.extend(r);
        }
    }
    if !input.privileged {
        for r in &input.device_cgroup_rules {
            rules.push(parse_device_cgroup_rule(r)?);
        }
    }
    Ok((devices, rules))
}

fn abs_paths(kind: &'static str, list: &[String]) -> Result<Vec<String>, SpecError> {
    list.iter()
        .map(|p| {
            clean_abs(p)
                .filter(|_| !p.contains('\0'))
                .ok_or_else(|| SpecError::InvalidPath {
                    kind,
                    path: p.clone(),
                })
        })
        .collect()
}

/// Builds the OCI runtime spec for `input`, validating it first.
///
/// Reads `/etc/passwd` and `/etc/group` from the rootfs (safely, see [`crate::resolve_user`])
/// and, for privileged containers or `--device`, device nodes on the host.
pub fn build_spec(input: &SpecInput) -> Result<Spec, SpecError> {
    validate_id(&input.id)?;
    if !input.rootfs.is_absolute() {
        return Err(SpecError::RootfsNotAbsolute(input.rootfs.clone()));
    }
    if input.args.is_empty() || input.args[0].is_empty() {
        return Err(SpecError::EmptyArgs);
    }
    for a in &input.args {
        no_nul("argument", a)?;
    }
    let cwd = if input.cwd.is_empty() {
        "/".to_string()
    } else {
        no_nul("working directory", &input.cwd)?;
        if !input.cwd.starts_with('/') {
            return Err(SpecError::RelativeCwd(input.cwd.clone()));
        }
        input.cwd.clone()
    };
    if let Some(adj) = input.oom_score_adj {
        if !(-1000..=1000).contains(&adj) {
            return Err(SpecError::InvalidOomScoreAdj(adj));
        }
    }
    for k in input.annotations.keys() {
        if k.is_empty() {
            return Err(SpecError::InvalidAnnotation(
                input.annotations.get(k).cloned().unwrap_or_default(),
            ));
        }
    }
    let cgroups_path = if input.cgroups_path.is_empty() {
        format!("/berth/{}", input.id)
    } else {
        let p = &input.cgroups_path;
        if p.contains('\0') || p.split('/').any(|c| c == "..") {
            return Err(SpecError::InvalidCgroupsPath(p.clone()));
        }
        p.clone()
    };

    // Hostname: default from the id; the host's when sharing its UTS namespace.
    let default_hostname: String = input.id.chars().take(12).collect();
    validate_name("hostname", &input.hostname)?;
    validate_name("domainname", &input.domainname)?;
    let uts_host = input.uts == NamespaceMode::Host;
    let hostname = if !input.hostname.is_empty() {
        input.hostname.clone()
    } else if uts_host {
        host_hostname().unwrap_or(default_hostname)
    } else {
        default_hostname
    };

    // User.
    let user = resolve_user_details(&input.rootfs, &input.user)?;
    let mut additional_gids = user.additional_gids.clone();
    for g in resolve_groups(&input.rootfs, &input.group_add)? {
        if !additional_gids.contains(&g) {
            additional_gids.push(g);
        }
    }
    let env = build_env(&input.env, &hostname, input.tty, &user.home)?;

    // Capabilities and seccomp.
    let caps: Vec<Capability> =
        effective_capabilities(&input.cap_add, &input.cap_drop, input.privileged)?;
    let seccomp = if input.privileged {
        None
    } else {
        match &input.seccomp {
            SeccompMode::Default => Some(default_profile(&caps)?),
            SeccompMode::Unconfined => None,
            SeccompMode::Custom(p) => Some((**p).clone()),
        }
    };
    let cap_set: oci_spec::runtime::Capabilities = caps.iter().copied().collect();
    let mut capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(cap_set.clone())
        .effective(cap_set.clone())
        .permitted(cap_set)
        .build()?;
    // oci-spec's builders start from its `Default`, which has inheritable and ambient sets;
    // Docker sets neither.
    capabilities.set_inheritable(None);
    capabilities.set_ambient(None);

    let mut user_b = UserBuilder::default().uid(user.uid).gid(user.gid);
    if !additional_gids.is_empty() {
        user_b = user_b.additional_gids(additional_gids);
    }
    let mut process = ProcessBuilder::default()
        .terminal(input.tty)
        .user(user_b.build()?)
        .args(input.args.clone())
        .env(env)
        .cwd(PathBuf::from(cwd))
        .capabilities(capabilities)
        .rlimits(build_rlimits(input)?)
        .no_new_privileges(input.no_new_privileges)
        .oom_score_adj(input.oom_score_adj.unwrap_or(0));
    if let (true, Some((h, w))) = (input.tty, input.console_size) {
        process = process.console_size(
            oci_spec::runtime::BoxBuilder::default()
                .height(h)
                .width(w)
                .build()?,
        );
    }

    // Mounts.
    let shm_size = match input.shm_size {
        None | Some(0) => DEFAULT_SHM_SIZE,
        Some(s) => s,
    };
    let (mounts, rootfs_propagation) = build_mounts(input, shm_size)?;

    // Namespaces, in runc's conventional order.
    let mut namespaces = Vec::new();
    for (typ, mode, name) in [
        (LinuxNamespaceType::Pid, &input.pid, "pid"),
        (LinuxNamespaceType::Network, &input.network, "network"),
        (LinuxNamespaceType::Ipc, &input.ipc, "ipc"),
        (LinuxNamespaceType::Uts, &input.uts, "uts"),
        (LinuxNamespaceType::Mount, &NamespaceMode::New, "mount"),
        (LinuxNamespaceType::Cgroup, &input.cgroupns, "cgroup"),
    ] {
        if let Some(ns) = namespace(typ, mode, name)? {
            namespaces.push(ns);
        }
    }

    // Resources and devices.
    let mut resources = linux_resources(&input.resources)?;
    let (devices, device_rules) = build_devices(input)?;
    resources.set_devices(Some(device_rules));

    let extra_masked = abs_paths("masked", &input.masked_paths)?;
    let extra_readonly = abs_paths("readonly", &input.readonly_paths)?;
    let (mut masked, mut readonly): (Vec<String>, Vec<String>) = if input.privileged {
        (Vec::new(), Vec::new())
    } else {
        (
            DEFAULT_MASKED_PATHS.iter().map(|s| s.to_string()).collect(),
            DEFAULT_READONLY_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        )
    };
    for p in extra_masked {
        if !masked.contains(&p) {
            masked.push(p);
        }
    }
    for p in extra_readonly {
        if !readonly.contains(&p) {
            readonly.push(p);
        }
    }

    let mut linux = LinuxBuilder::default()
        .resources(resources)
        .cgroups_path(PathBuf::from(cgroups_path))
        .namespaces(namespaces)
        .devices(devices)
        .masked_paths(masked)
        .readonly_paths(readonly)
        .sysctl(build_sysctls(input)?);
    if let Some(s) = seccomp {
        linux = linux.seccomp(s);
    }
    if let Some(p) = rootfs_propagation {
        linux = linux.rootfs_propagation(p);
    }

    let mut spec = SpecBuilder::default()
        .version(OCI_VERSION.to_string())
        .root(
            RootBuilder::default()
                .path(input.rootfs.clone())
                .readonly(input.readonly_rootfs)
                .build()?,
        )
        .mounts(mounts)
        .process(process.build()?)
        .linux(linux.build()?)
        .annotations(
            input
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<HashMap<_, _>>(),
        );
    if !uts_host && !input.domainname.is_empty() {
        spec = spec.domainname(input.domainname.clone());
    }
    let mut spec = spec.build()?;
    // Set explicitly: oci-spec's `Default` (which its builder starts from) has a hostname.
    spec.set_hostname(if uts_host { None } else { Some(hostname) });
    tracing::debug!(id = %input.id, "built OCI spec");
    Ok(spec)
}

/// Path of `config.json` inside a bundle.
pub fn config_path(bundle_dir: &Path) -> PathBuf {
    bundle_dir.join("config.json")
}
