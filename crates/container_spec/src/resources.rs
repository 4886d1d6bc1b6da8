//! Translation of Docker resource options into OCI `linux.resources`, with Docker's checks.

use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources,
    LinuxResourcesBuilder,
};

use crate::{Resources, SpecError};

/// CFS period used for `--cpus` (100 ms), as Docker does.
pub const CPU_PERIOD_US: u64 = 100_000;

/// Smallest memory limit Docker accepts.
const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// Host facts the translation depends on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HostInfo {
    /// Whether the kernel can limit swap (memsw on cgroup v1, memory.swap.max on v2).
    pub swap_limit: bool,
    /// Number of CPUs usable by containers.
    pub ncpu: u64,
}

impl HostInfo {
    pub(crate) fn probe() -> Self {
        let swap_limit = std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
            .exists()
            || std::path::Path::new("/sys/fs/cgroup/memory.swap.max").exists()
            || probe_v2_swap();
        let ncpu = std::thread::available_parallelism()
            .map(|n| n.get() as u64)
            .unwrap_or(1);
        HostInfo { swap_limit, ncpu }
    }
}

/// On a pure cgroup v2 host the root cgroup has no `memory.swap.max`; look at a child.
fn probe_v2_swap() -> bool {
    let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") else {
        return false;
    };
    rd.flatten()
        .take(64)
        .any(|e| e.path().join("memory.swap.max").exists())
}

/// Translates [`Resources`] into OCI resources (without device rules), applying Docker's
/// validation and defaults. Also usable for `docker update`.
pub fn linux_resources(res: &Resources) -> Result<LinuxResources, SpecError> {
    linux_resources_with(res, HostInfo::probe())
}

fn bad(msg: impl Into<String>) -> SpecError {
    SpecError::InvalidResource(msg.into())
}

pub(crate) fn linux_resources_with(
    res: &Resources,
    host: HostInfo,
) -> Result<LinuxResources, SpecError> {
    let mut out = LinuxResourcesBuilder::default();

    // Memory.
    if res.memory < 0 {
        return Err(bad("memory limit can not be negative"));
    }
    if res.memory > 0 && res.memory < MIN_MEMORY {
        return Err(bad("minimum memory limit allowed is 6MB"));
    }
    if res.memory_swap < -1 {
        return Err(bad(
            "memory swap limit must be -1 (unlimited) or a positive size",
        ));
    }
    if res.memory_swap > 0 && res.memory == 0 {
        return Err(bad(
            "you should always set the memory limit when using memory swap limit",
        ));
    }
    if res.memory > 0 && res.memory_swap > 0 && res.memory_swap < res.memory {
        return Err(bad(
            "minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    if res.memory_reservation < 0 {
        return Err(bad("memory reservation can not be negative"));
    }
    if res.memory > 0 && res.memory_reservation > res.memory {
        return Err(bad(
            "minimum memory limit can not be less than memory reservation limit, see usage",
        ));
    }
    if let Some(s) = res.memory_swappiness {
        if !(-1..=100).contains(&s) {
            return Err(bad(format!(
                "invalid value: {s}, valid memory swappiness range is 0-100"
            )));
        }
    }
    let mut mem = LinuxMemoryBuilder::default();
    let mut has_mem = false;
    if res.memory > 0 {
        mem = mem.limit(res.memory);
        has_mem = true;
        let swap = match res.memory_swap {
            0 => res.memory.checked_mul(2),
            s => Some(s),
        };
        if host.swap_limit {
            if let Some(s) = swap {
                mem = mem.swap(s);
            }
        } else if res.memory_swap != 0 {
            tracing::warn!("kernel does not support swap limit; memory limited without swap");
        }
    }
    if res.memory_reservation > 0 {
        mem = mem.reservation(res.memory_reservation);
        has_mem = true;
    }
    if let Some(s) = res.memory_swappiness.filter(|s| *s >= 0) {
        mem = mem.swappiness(s as u64);
        has_mem = true;
    }
    if res.oom_kill_disable {
        mem = mem.disable_oom_killer(true);
        has_mem = true;
    }
    if has_mem {
        out = out.memory(mem.build()?);
    }

    // CPU.
    if res.nano_cpus < 0 {
        return Err(bad("nano CPUs can not be negative"));
    }
    if res.nano_cpus > 0 && (res.cpu_period > 0 || res.cpu_quota > 0) {
        return Err(bad(
            "conflicting options: Nano CPUs and CPU Period/Quota cannot both be set",
        ));
    }
    let max_nano = (host.ncpu as i64).saturating_mul(1_000_000_000);
    if res.nano_cpus > 0 && (res.nano_cpus < 10_000_000 || res.nano_cpus > max_nano) {
        return Err(bad(format!(
            "range of CPUs is from 0.01 to {}.00, as there are only {} CPUs available",
            host.ncpu, host.ncpu
        )));
    }
    if res.cpu_period != 0 && !(1_000..=1_000_000).contains(&res.cpu_period) {
        return Err(bad(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ));
    }
    if res.cpu_quota > 0 && res.cpu_quota < 1_000 {
        return Err(bad("CPU cfs quota can not be less than 1ms (i.e. 1000)"));
    }
    if res.cpu_shares < 0 {
        return Err(bad("CPU shares can not be negative"));
    }
    validate_cpuset("cpuset-cpus", &res.cpuset_cpus)?;
    validate_cpuset("cpuset-mems", &res.cpuset_mems)?;
    let mut cpu = LinuxCpuBuilder::default();
    let mut has_cpu = false;
    if res.nano_cpus > 0 {
        // quota = cpus * period, computed in integers: nano_cpus * 100000 / 1e9.
        let quota = (res.nano_cpus as i128 * CPU_PERIOD_US as i128 / 1_000_000_000) as i64;
        cpu = cpu.period(CPU_PERIOD_US).quota(quota);
        has_cpu = true;
    }
    if res.cpu_period > 0 {
        cpu = cpu.period(res.cpu_period as u64);
        has_cpu = true;
    }
    if res.cpu_quota != 0 {
        cpu = cpu.quota(res.cpu_quota);
        has_cpu = true;
    }
    if res.cpu_shares > 0 {
        cpu = cpu.shares(res.cpu_shares as u64);
        has_cpu = true;
    }
    if !res.cpuset_cpus.is_empty() {
        cpu = cpu.cpus(res.cpuset_cpus.clone());
        has_cpu = true;
    }
    if !res.cpuset_mems.is_empty() {
        cpu = cpu.mems(res.cpuset_mems.clone());
        has_cpu = true;
    }
    if has_cpu {
        out = out.cpu(cpu.build()?);
    }

    // Pids: <= 0 means unlimited, which runtimes spell -1.
    if let Some(p) = res.pids_limit {
        let limit = if p <= 0 { -1 } else { p };
        out = out.pids(LinuxPidsBuilder::default().limit(limit).build()?);
    }

    if res.blkio_weight != 0 {
        if !(10..=1000).contains(&res.blkio_weight) {
            return Err(bad("range of blkio weight is from 10 to 1000"));
        }
        out = out.block_io(
            LinuxBlockIoBuilder::default()
                .weight(res.blkio_weight)
                .build()?,
        );
    }

    Ok(out.build()?)
}

/// `0-3,5,7-8` style lists.
fn validate_cpuset(what: &str, s: &str) -> Result<(), SpecError> {
    if s.is_empty() {
        return Ok(());
    }
    let ok = s.split(',').all(|part| {
        let mut it = part.splitn(2, '-');
        let a = it.next().unwrap_or("");
        let num = |x: &str| !x.is_empty() && x.len() <= 5 && x.bytes().all(|b| b.is_ascii_digit());
        match it.next() {
            None => num(a),
            Some(b) => num(a) && num(b) && a.parse::<u32>().ok() <= b.parse::<u32>().ok(),
        }
    });
    if ok {
        Ok(())
    } else {
        Err(bad(format!("invalid value {s:?} for {what}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: HostInfo = HostInfo {
        swap_limit: true,
        ncpu: 2,
    };

    #[test]
    fn cpus_half() {
        let r = Resources {
            nano_cpus: 500_000_000,
            ..Default::default()
        };
        let out = linux_resources_with(&r, HOST).unwrap();
        let cpu = out.cpu().as_ref().unwrap();
        assert_eq!(cpu.quota(), Some(50_000));
        assert_eq!(cpu.period(), Some(100_000));
        let r = Resources {
            nano_cpus: 1_500_000_000,
            ..Default::default()
        };
        let out = linux_resources_with(&r, HOST).unwrap();
        assert_eq!(out.cpu().as_ref().unwrap().quota(), Some(150_000));
    }

    #[test]
    fn cpus_range_and_conflicts() {
        for n in [1_000_000, 3_000_000_000, -1] {
            let r = Resources {
                nano_cpus: n,
                ..Default::default()
            };
            assert!(linux_resources_with(&r, HOST).is_err(), "{n}");
        }
        let r = Resources {
            nano_cpus: 1_000_000_000,
            cpu_quota: 50_000,
            ..Default::default()
        };
        assert!(linux_resources_with(&r, HOST).is_err());
        let r = Resources {
            cpu_period: 50_000,
            cpu_quota: 25_000,
            cpu_shares: 512,
            cpuset_cpus: "0-1".into(),
            ..Default::default()
        };
        let out = linux_resources_with(&r, HOST).unwrap();
        let cpu = out.cpu().as_ref().unwrap();
        assert_eq!(
            (cpu.period(), cpu.quota(), cpu.shares()),
            (Some(50_000), Some(25_000), Some(512))
        );
        assert_eq!(cpu.cpus().as_deref(), Some("0-1"));
    }

    #[test]
    fn memory_defaults_swap_to_double() {
        let r = Resources {
            memory: 64 << 20,
            ..Default::default()
        };
        let out = linux_resources_with(&r, HOST).unwrap();
        let m = out.memory().as_ref().unwrap();
        assert_eq!(m.limit(), Some(64 << 20));
        assert_eq!(m.swap(), Some(128 << 20));
        // Without swap accounting, no swap limit is emitted.
        let out = linux_resources_with(
            &r,
            HostInfo {
                swap_limit: false,
                ncpu: 2,
            },
        )
        .unwrap();
        assert_eq!(out.memory().as_ref().unwrap().swap(), None);
    }

    #[test]
    fn memory_explicit_swap_reservation_oom() {
        let r = Resources {
            memory: 100 << 20,
            memory_swap: -1,
            memory_reservation: 50 << 20,
            oom_kill_disable: true,
            memory_swappiness: Some(10),
            ..Default::default()
        };
        let out = linux_resources_with(&r, HOST).unwrap();
        let m = out.memory().as_ref().unwrap();
        assert_eq!(m.swap(), Some(-1));
        assert_eq!(m.reservation(), Some(50 << 20));
        assert_eq!(m.disable_oom_killer(), Some(true));
        assert_eq!(m.swappiness(), Some(10));
    }

    #[test]
    fn memory_validation() {
        let cases = [
            Resources {
                memory: 1 << 20,
                ..Default::default()
            },
            Resources {
                memory_swap: 100 << 20,
                ..Default::default()
            },
            Resources {
                memory: 100 << 20,
                memory_swap: 50 << 20,
                ..Default::default()
            },
            Resources {
                memory: 100 << 20,
                memory_reservation: 200 << 20,
                ..Default::default()
            },
            Resources {
                memory_swappiness: Some(101),
                ..Default::default()
            },
        ];
        for c in cases {
            assert!(
                matches!(
                    linux_resources_with(&c, HOST),
                    Err(SpecError::InvalidResource(_))
                ),
                "{c:?}"
            );
        }
    }

    #[test]
    fn empty_resources_are_empty() {
        let out = linux_resources_with(&Resources::default(), HOST).unwrap();
        assert!(out.memory().is_none());
        assert!(out.cpu().is_none());
        assert!(out.pids().is_none());
    }

    #[test]
    fn pids() {
        let out = linux_resources_with(
            &Resources {
                pids_limit: Some(100),
                ..Default::default()
            },
            HOST,
        )
        .unwrap();
        assert_eq!(out.pids().as_ref().unwrap().limit(), 100);
        let out = linux_resources_with(
            &Resources {
                pids_limit: Some(0),
                ..Default::default()
            },
            HOST,
        )
        .unwrap();
        assert_eq!(out.pids().as_ref().unwrap().limit(), -1);
    }

    #[test]
    fn cpuset_format() {
        assert!(validate_cpuset("x", "0-3,5").is_ok());
        assert!(validate_cpuset("x", "3-1").is_err());
        assert!(validate_cpuset("x", "a").is_err());
        assert!(validate_cpuset("x", "1,,2").is_err());
    }
}
