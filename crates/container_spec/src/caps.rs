//! Linux capabilities: names, numbers, Docker's default set and `--cap-add`/`--cap-drop`.

use oci_spec::runtime::Capability;

use crate::SpecError;

/// Every capability oci-spec knows, with its kernel name and number (`linux/capability.h`).
const ALL: &[(Capability, &str, u8)] = &[
    (Capability::Chown, "CAP_CHOWN", 0),
    (Capability::DacOverride, "CAP_DAC_OVERRIDE", 1),
    (Capability::DacReadSearch, "CAP_DAC_READ_SEARCH", 2),
    (Capability::Fowner, "CAP_FOWNER", 3),
    (Capability::Fsetid, "CAP_FSETID", 4),
    (Capability::Kill, "CAP_KILL", 5),
    (Capability::Setgid, "CAP_SETGID", 6),
    (Capability::Setuid, "CAP_SETUID", 7),
    (Capability::Setpcap, "CAP_SETPCAP", 8),
    (Capability::LinuxImmutable, "CAP_LINUX_IMMUTABLE", 9),
    (Capability::NetBindService, "CAP_NET_BIND_SERVICE", 10),
    (Capability::NetBroadcast, "CAP_NET_BROADCAST", 11),
    (Capability::NetAdmin, "CAP_NET_ADMIN", 12),
    (Capability::NetRaw, "CAP_NET_RAW", 13),
    (Capability::IpcLock, "CAP_IPC_LOCK", 14),
    (Capability::IpcOwner, "CAP_IPC_OWNER", 15),
    (Capability::SysModule, "CAP_SYS_MODULE", 16),
    (Capability::SysRawio, "CAP_SYS_RAWIO", 17),
    (Capability::SysChroot, "CAP_SYS_CHROOT", 18),
    (Capability::SysPtrace, "CAP_SYS_PTRACE", 19),
    (Capability::SysPacct, "CAP_SYS_PACCT", 20),
    (Capability::SysAdmin, "CAP_SYS_ADMIN", 21),
    (Capability::SysBoot, "CAP_SYS_BOOT", 22),
    (Capability::SysNice, "CAP_SYS_NICE", 23),
    (Capability::SysResource, "CAP_SYS_RESOURCE", 24),
    (Capability::SysTime, "CAP_SYS_TIME", 25),
    (Capability::SysTtyConfig, "CAP_SYS_TTY_CONFIG", 26),
    (Capability::Mknod, "CAP_MKNOD", 27),
    (Capability::Lease, "CAP_LEASE", 28),
    (Capability::AuditWrite, "CAP_AUDIT_WRITE", 29),
    (Capability::AuditControl, "CAP_AUDIT_CONTROL", 30),
    (Capability::Setfcap, "CAP_SETFCAP", 31),
    (Capability::MacOverride, "CAP_MAC_OVERRIDE", 32),
    (Capability::MacAdmin, "CAP_MAC_ADMIN", 33),
    (Capability::Syslog, "CAP_SYSLOG", 34),
    (Capability::WakeAlarm, "CAP_WAKE_ALARM", 35),
    (Capability::BlockSuspend, "CAP_BLOCK_SUSPEND", 36),
    (Capability::AuditRead, "CAP_AUDIT_READ", 37),
    (Capability::Perfmon, "CAP_PERFMON", 38),
    (Capability::Bpf, "CAP_BPF", 39),
    (Capability::CheckpointRestore, "CAP_CHECKPOINT_RESTORE", 40),
];

/// Docker's default capability set for non-privileged containers.
const DOCKER_DEFAULT: &[Capability] = &[
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Docker's default capabilities, sorted by capability number.
pub fn docker_default_capabilities() -> Vec<Capability> {
    sorted(DOCKER_DEFAULT.to_vec())
}

/// The kernel number of a capability (bit position in `CapEff` etc.).
pub fn capability_number(cap: Capability) -> u8 {
    ALL.iter()
        .find(|(c, _, _)| *c == cap)
        .map(|(_, _, n)| *n)
        .unwrap_or(u8::MAX)
}

/// The kernel name of a capability, e.g. `CAP_NET_ADMIN`.
pub fn capability_name(cap: Capability) -> &'static str {
    ALL.iter()
        .find(|(c, _, _)| *c == cap)
        .map(|(_, n, _)| *n)
        .unwrap_or("CAP_UNKNOWN")
}

/// The bitmask the kernel shows in `/proc/<pid>/status` (`CapEff:` etc.) for a set.
pub fn capability_mask(caps: &[Capability]) -> u64 {
    caps.iter()
        .map(|c| capability_number(*c))
        .filter(|n| *n < 64)
        .fold(0u64, |m, n| m | (1u64 << n))
}

/// Parses `NET_ADMIN`, `CAP_NET_ADMIN` or `net_admin` (not `ALL`, see [`effective_capabilities`]).
pub fn parse_capability(s: &str) -> Result<Capability, SpecError> {
    let upper = s.trim().to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    ALL.iter()
        .find(|(_, name, _)| *name == full)
        .map(|(c, _, _)| *c)
        .ok_or_else(|| SpecError::UnknownCapability(s.to_string()))
}

fn is_all(s: &str) -> bool {
    let u = s.trim().to_ascii_uppercase();
    u == "ALL" || u == "CAP_ALL"
}

/// Every capability the running kernel supports and this process can hand out (its bounding
/// set; the runtime runs with the same privileges and cannot grant more). All known ones when
/// neither can be read. This is what `--privileged` and `--cap-add ALL` get.
pub fn all_capabilities() -> Vec<Capability> {
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<u8>().ok())
        .unwrap_or(u8::MAX);
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    ALL.iter()
        .filter(|(_, _, n)| *n <= last && (*n >= 64 || bounding & (1u64 << n) != 0))
        .map(|(c, _, _)| *c)
        .collect()
}

/// Docker's capability arithmetic, sorted by number:
///
/// * privileged: every capability (add/drop ignored);
/// * `ALL` in `cap_add`: every capability except those in `cap_drop`;
/// * `ALL` in `cap_drop`: only `cap_add`;
/// * otherwise: the default set minus `cap_drop` plus `cap_add`.
///
/// Names are accepted with or without the `CAP_` prefix, in any case; unknown ones are errors.
pub fn effective_capabilities(
    cap_add: &[String],
    cap_drop: &[String],
    privileged: bool,
) -> Result<Vec<Capability>, SpecError> {
    effective_capabilities_with(cap_add, cap_drop, privileged, &all_capabilities())
}

pub(crate) fn effective_capabilities_with(
    cap_add: &[String],
    cap_drop: &[String],
    privileged: bool,
    all: &[Capability],
) -> Result<Vec<Capability>, SpecError> {
    // Validate everything first so typos are reported even when they would not matter.
    let parse_list = |list: &[String]| -> Result<(bool, Vec<Capability>), SpecError> {
        let mut has_all = false;
        let mut caps = Vec::new();
        for s in list {
            if is_all(s) {
                has_all = true;
            } else {
                caps.push(parse_capability(s)?);
            }
        }
        Ok((has_all, caps))
    };
    let (add_all, add) = parse_list(cap_add)?;
    let (drop_all, drop) = parse_list(cap_drop)?;

    if privileged {
        return Ok(sorted(all.to_vec()));
    }
    let caps: Vec<Capability> = if add_all {
        all.iter().copied().filter(|c| !drop.contains(c)).collect()
    } else if drop_all {
        add
    } else {
        DOCKER_DEFAULT
            .iter()
            .copied()
            .filter(|c| !drop.contains(c))
            .chain(add)
            .collect()
    };
    Ok(sorted(caps))
}

fn sorted(mut caps: Vec<Capability>) -> Vec<Capability> {
    caps.sort_by_key(|c| capability_number(*c));
    caps.dedup();
    caps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn all() -> Vec<Capability> {
        ALL.iter().map(|(c, _, _)| *c).collect()
    }

    #[test]
    fn default_mask_matches_docker() {
        assert_eq!(capability_mask(&docker_default_capabilities()), 0xa80425fb);
        let caps = effective_capabilities_with(&[], &[], false, &all()).unwrap();
        assert_eq!(capability_mask(&caps), 0xa80425fb);
    }

    #[test]
    fn table_is_complete_and_consistent() {
        for (i, (c, name, n)) in ALL.iter().enumerate() {
            assert_eq!(i, *n as usize);
            // oci-spec's own serialisation agrees with our names.
            assert_eq!(serde_json::to_value(c).unwrap(), *name);
        }
    }

    #[test]
    fn parse_forms() {
        assert_eq!(parse_capability("NET_ADMIN").unwrap(), Capability::NetAdmin);
        assert_eq!(
            parse_capability("CAP_NET_ADMIN").unwrap(),
            Capability::NetAdmin
        );
        assert_eq!(parse_capability("net_admin").unwrap(), Capability::NetAdmin);
        assert_eq!(parse_capability("cap_syslog").unwrap(), Capability::Syslog);
        assert!(matches!(
            parse_capability("NET_FOO"),
            Err(SpecError::UnknownCapability(_))
        ));
        assert!(parse_capability("").is_err());
    }

    #[test]
    fn add_and_drop() {
        let caps = effective_capabilities_with(
            &s(&["NET_ADMIN", "CAP_SYS_PTRACE"]),
            &s(&["cap_chown", "MKNOD"]),
            false,
            &all(),
        )
        .unwrap();
        assert!(caps.contains(&Capability::NetAdmin));
        assert!(caps.contains(&Capability::SysPtrace));
        assert!(!caps.contains(&Capability::Chown));
        assert!(!caps.contains(&Capability::Mknod));
        assert!(caps.contains(&Capability::Kill));
        let want = 0xa80425fbu64 & !(1 << 0) & !(1 << 27) | (1 << 12) | (1 << 19);
        assert_eq!(capability_mask(&caps), want);
    }

    #[test]
    fn all_forms() {
        let a = all();
        let caps =
            effective_capabilities_with(&s(&["ALL"]), &s(&["SYS_ADMIN"]), false, &a).unwrap();
        assert_eq!(caps.len(), a.len() - 1);
        assert!(!caps.contains(&Capability::SysAdmin));

        let caps = effective_capabilities_with(&s(&["NET_BIND_SERVICE"]), &s(&["all"]), false, &a)
            .unwrap();
        assert_eq!(caps, vec![Capability::NetBindService]);

        let caps = effective_capabilities_with(&[], &s(&["ALL"]), false, &a).unwrap();
        assert!(caps.is_empty());
    }

    #[test]
    fn privileged_gets_everything_and_still_validates() {
        let a = all();
        let caps = effective_capabilities_with(&[], &s(&["CHOWN"]), true, &a).unwrap();
        assert_eq!(caps.len(), 41);
        assert!(effective_capabilities_with(&s(&["BOGUS"]), &[], true, &a).is_err());
        // Kernel limit is honoured.
        let limited: Vec<Capability> = a.iter().copied().take(38).collect();
        let caps = effective_capabilities_with(&[], &[], true, &limited).unwrap();
        assert_eq!(caps.len(), 38);
    }

    #[test]
    fn unknown_cap_is_an_error() {
        let e = effective_capabilities_with(&s(&["NET_ADMINN"]), &[], false, &all()).unwrap_err();
        assert_eq!(e.to_string(), "unknown capability: \"NET_ADMINN\"");
    }
}
