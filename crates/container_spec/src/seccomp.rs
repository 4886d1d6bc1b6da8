//! berth's default seccomp profile: an allow-list equivalent in effect to Docker's default.
//!
//! Shape of the profile:
//!
//! * default action `SCMP_ACT_ERRNO` with `EPERM`;
//! * [`ALLOWED`]: syscalls every container may use (sorted; keep it sorted, a unit test checks);
//! * [`ARCH_ALLOWED`]: architecture-specific extras for the build target;
//! * [`CAP_GATED`]: syscalls allowed only when the container holds a capability (the kernel
//!   would refuse most of them anyway, the filter removes attack surface);
//! * a few argument-conditional rules built in [`default_profile`]: `personality` only with
//!   harmless personas, `socket` except `AF_VSOCK`, `clone` without namespace flags and
//!   `clone3` answering `ENOSYS` (so libc falls back to `clone`, whose flags the filter can
//!   see) unless the container has `CAP_SYS_ADMIN`.
//!
//! Deliberately not allowed (besides everything not listed): `io_uring_*` (a large kernel
//! attack surface, also dropped from recent Docker/containerd profiles), `keyctl`/`add_key`/
//! `request_key` (the keyring is not namespaced), `userfaultfd`, `kexec_*`, `swapon`,
//! `pivot_root`, `bpf`/`perf_event_open` without the matching capability.
//!
//! Syscall names that libseccomp on the running host does not know are skipped by the runtime;
//! every name here is a real Linux syscall on at least one of the profile's architectures.

use oci_spec::runtime::{
    Arch, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompBuilder, LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};

use crate::SpecError;

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

/// `CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
/// CLONE_NEWPID | CLONE_NEWNET`: namespace-creating clone flags.
pub const CLONE_NAMESPACE_FLAGS: u64 =
    0x0002_0000 | 0x0200_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000;

/// `AF_VSOCK`: sockets to the hypervisor are not for containers.
const AF_VSOCK: u64 = 40;

/// Personas `personality(2)` may switch to: `PER_LINUX`, `PER_LINUX32`, `UNAME26`,
/// `UNAME26|PER_LINUX32`, and `0xffffffff` (query only).
const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// Syscalls allowed in every container. Includes the 32-bit (`*32`, `*64`, `_time64`,
/// `socketcall`, ...) variants so i386/x32 binaries work on x86_64 hosts.
pub const ALLOWED: &[&str] = &[
    "_llseek",
    "_newselect",
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "get_robust_list",
    "get_thread_area",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "io_setup",
    "io_submit",
    "ioctl",
    "ioprio_get",
    "ioprio_set",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "process_vm_readv",
    "process_vm_writev",
    "pselect6",
    "pselect6_time64",
    "ptrace",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "set_robust_list",
    "set_thread_area",
    "set_tid_address",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "setsid",
    "setsockopt",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

/// Architecture-specific syscalls allowed for the build target.
#[cfg(target_arch = "x86_64")]
pub const ARCH_ALLOWED: &[&str] = &["arch_prctl", "modify_ldt"];
/// Architecture-specific syscalls allowed for the build target.
#[cfg(target_arch = "aarch64")]
pub const ARCH_ALLOWED: &[&str] = &[
    "arm_fadvise64_64",
    "arm_sync_file_range",
    "breakpoint",
    "cacheflush",
    "set_tls",
    "sync_file_range2",
];
/// Architecture-specific syscalls allowed for the build target.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub const ARCH_ALLOWED: &[&str] = &[];

/// Syscalls allowed only when the container holds the capability.
pub const CAP_GATED: &[(Capability, &[&str])] = &[
    (
        Capability::SysAdmin,
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    (Capability::SysBoot, &["reboot"]),
    (Capability::SysChroot, &["chroot"]),
    (
        Capability::SysModule,
        &["delete_module", "finit_module", "init_module"],
    ),
    (Capability::SysPacct, &["acct"]),
    (
        Capability::SysPtrace,
        &["kcmp", "pidfd_getfd", "process_madvise"],
    ),
    (Capability::SysRawio, &["ioperm", "iopl"]),
    (
        Capability::SysTime,
        &["clock_settime", "clock_settime64", "settimeofday", "stime"],
    ),
    (Capability::SysTtyConfig, &["vhangup"]),
    (
        Capability::SysNice,
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    (Capability::Syslog, &["syslog"]),
    (Capability::Bpf, &["bpf"]),
    (Capability::Perfmon, &["perf_event_open"]),
    (Capability::DacReadSearch, &["open_by_handle_at"]),
];

/// Seccomp architectures for the build target (native plus its compat ABIs).
fn architectures() -> Vec<Arch> {
    #[cfg(target_arch = "x86_64")]
    {
        vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
    }
    #[cfg(target_arch = "aarch64")]
    {
        vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        vec![Arch::ScmpArchNative]
    }
}

fn rule(
    names: Vec<String>,
    action: LinuxSeccompAction,
    errno: Option<u32>,
    arg: Option<(usize, LinuxSeccompOperator, u64, Option<u64>)>,
) -> Result<LinuxSyscall, SpecError> {
    let mut b = LinuxSyscallBuilder::default().names(names).action(action);
    if let Some(e) = errno {
        b = b.errno_ret(e);
    }
    if let Some((index, op, value, value_two)) = arg {
        let mut a = LinuxSeccompArgBuilder::default()
            .index(index)
            .op(op)
            .value(value);
        if let Some(v2) = value_two {
            a = a.value_two(v2);
        }
        b = b.args(vec![a.build()?]);
    }
    Ok(b.build()?)
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Builds the default profile for a container holding `caps` (its bounding set).
pub fn default_profile(caps: &[Capability]) -> Result<LinuxSeccomp, SpecError> {
    use LinuxSeccompAction::{ScmpActAllow as Allow, ScmpActErrno as Errno};
    use LinuxSeccompOperator::{ScmpCmpEq as Eq, ScmpCmpMaskedEq as MaskedEq, ScmpCmpNe as Ne};

    let mut allowed: Vec<&str> = ALLOWED.iter().chain(ARCH_ALLOWED).copied().collect();
    for (cap, list) in CAP_GATED {
        if caps.contains(cap) {
            allowed.extend_from_slice(list);
        }
    }
    allowed.sort_unstable();
    allowed.dedup();

    let mut syscalls = vec![rule(names(&allowed), Allow, None, None)?];
    syscalls.push(rule(
        names(&["socket"]),
        Allow,
        None,
        Some((0, Ne, AF_VSOCK, None)),
    )?);
    for p in PERSONALITIES {
        syscalls.push(rule(
            names(&["personality"]),
            Allow,
            None,
            Some((0, Eq, *p, None)),
        )?);
    }
    if !caps.contains(&Capability::SysAdmin) {
        // clone(flags, ...) is allowed when (flags & CLONE_NAMESPACE_FLAGS) == 0. As in runc
        // and Docker's profile, `value` is the mask and `valueTwo` (absent = 0) the datum;
        // see [`swap_masked_eq_operands`] for runtimes reading them the other way round.
        syscalls.push(rule(
            names(&["clone"]),
            Allow,
            None,
            Some((0, MaskedEq, CLONE_NAMESPACE_FLAGS, None)),
        )?);
        // clone3 passes flags in memory the filter cannot read: make libc fall back to clone.
        syscalls.push(rule(names(&["clone3"]), Errno, Some(ENOSYS), None)?);
    }

    Ok(LinuxSeccompBuilder::default()
        .default_action(Errno)
        .default_errno_ret(EPERM)
        .architectures(architectures())
        .syscalls(syscalls)
        .build()?)
}

/// Swaps `value` and `valueTwo` of every `SCMP_CMP_MASKED_EQ` argument in `profile`.
///
/// runc (and Docker's profiles, and this crate's) treat `value` as the mask and `valueTwo` as
/// the datum. youki's libcontainer 0.7 passes them to libseccomp the other way round, and
/// libseccomp masks the datum, so an unswapped `clone` rule becomes `(flags & 0) == 0`:
/// namespace-creating clones would be allowed. Call this on the spec's profile before handing
/// it to libcontainer 0.7; do not call it for runc.
pub fn swap_masked_eq_operands(profile: &mut LinuxSeccomp) {
    let Some(syscalls) = profile.syscalls().clone() else {
        return;
    };
    let fixed = syscalls
        .into_iter()
        .map(|mut sc| {
            if let Some(args) = sc.args().clone() {
                let args = args.into_iter().map(swap_arg).collect();
                sc.set_args(Some(args));
            }
            sc
        })
        .collect();
    profile.set_syscalls(Some(fixed));
}

fn swap_arg(a: LinuxSeccompArg) -> LinuxSeccompArg {
    if a.op() != LinuxSeccompOperator::ScmpCmpMaskedEq {
        return a;
    }
    LinuxSeccompArgBuilder::default()
        .index(a.index())
        .op(a.op())
        .value(a.value_two().unwrap_or(0))
        .value_two(a.value())
        .build()
        // The builder has defaults for every field and cannot fail; keep the original if it did.
        .unwrap_or(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::docker_default_capabilities;

    fn allowed_unconditionally(p: &LinuxSeccomp) -> Vec<String> {
        p.syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .filter(|s| s.action() == LinuxSeccompAction::ScmpActAllow && s.args().is_none())
            .flat_map(|s| s.names().clone())
            .collect()
    }

    #[test]
    fn lists_are_sorted_and_unique() {
        for w in ALLOWED.windows(2) {
            assert!(w[0] < w[1], "ALLOWED not sorted/unique at {:?}", w);
        }
        for w in ARCH_ALLOWED.windows(2) {
            assert!(w[0] < w[1]);
        }
        for (_, list) in CAP_GATED {
            for w in list.windows(2) {
                assert!(w[0] < w[1], "CAP_GATED not sorted at {:?}", w);
            }
            for n in *list {
                assert!(!ALLOWED.contains(n), "{n} is both gated and allowed");
            }
        }
    }

    #[test]
    fn clone_flags_mask() {
        assert_eq!(CLONE_NAMESPACE_FLAGS, 0x7E02_0000);
    }

    #[test]
    fn default_caps_profile() {
        let p = default_profile(&docker_default_capabilities()).unwrap();
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(p.default_errno_ret(), Some(EPERM));
        let allowed = allowed_unconditionally(&p);
        for must in ["read", "write", "execve", "wait4", "rt_sigreturn", "chroot"] {
            assert!(allowed.iter().any(|n| n == must), "{must} missing");
        }
        for denied in [
            "unshare",
            "setns",
            "mount",
            "clone",
            "clone3",
            "keyctl",
            "io_uring_setup",
            "bpf",
            "ptrace_nope",
            "reboot",
            "kcmp",
        ] {
            assert!(!allowed.iter().any(|n| n == denied), "{denied} allowed");
        }
        let syscalls = p.syscalls().as_ref().unwrap();
        let clone_rules: Vec<_> = syscalls
            .iter()
            .filter(|s| s.names() == &["clone".to_string()])
            .collect();
        assert_eq!(clone_rules.len(), 1);
        let arg = clone_rules[0].args().as_ref().unwrap()[0];
        assert_eq!(arg.op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
        assert_eq!((arg.index(), arg.value()), (0, CLONE_NAMESPACE_FLAGS));
        assert_eq!(arg.value_two(), None);
        let clone3 = syscalls
            .iter()
            .find(|s| s.names() == &["clone3".to_string()])
            .unwrap();
        assert_eq!(clone3.action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(clone3.errno_ret(), Some(ENOSYS));
        // The JSON uses runc's field names.
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO");
        let text = json.to_string();
        assert!(text.contains("\"value\":2114060288"));
        assert!(text.contains("SCMP_CMP_MASKED_EQ"));
    }

    #[test]
    fn swap_for_libcontainer() {
        let mut p = default_profile(&docker_default_capabilities()).unwrap();
        swap_masked_eq_operands(&mut p);
        let syscalls = p.syscalls().as_ref().unwrap();
        let clone = syscalls
            .iter()
            .find(|s| s.names() == &["clone".to_string()])
            .unwrap();
        let arg = clone.args().as_ref().unwrap()[0];
        assert_eq!(
            (arg.value(), arg.value_two()),
            (0, Some(CLONE_NAMESPACE_FLAGS))
        );
        // Other comparisons are untouched.
        let socket = syscalls
            .iter()
            .find(|s| s.names() == &["socket".to_string()])
            .unwrap();
        assert_eq!(socket.args().as_ref().unwrap()[0].value(), AF_VSOCK);
    }

    #[test]
    fn sys_admin_unlocks_namespaces() {
        let mut caps = docker_default_capabilities();
        caps.push(Capability::SysAdmin);
        let p = default_profile(&caps).unwrap();
        let allowed = allowed_unconditionally(&p);
        for n in ["unshare", "setns", "mount", "clone", "clone3"] {
            assert!(allowed.iter().any(|x| x == n), "{n} not allowed");
        }
        assert!(!p
            .syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .any(|s| s.action() == LinuxSeccompAction::ScmpActErrno));
    }

    #[test]
    fn chroot_follows_cap() {
        let caps: Vec<Capability> = docker_default_capabilities()
            .into_iter()
            .filter(|c| *c != Capability::SysChroot)
            .collect();
        let p = default_profile(&caps).unwrap();
        assert!(!allowed_unconditionally(&p).iter().any(|n| n == "chroot"));
    }
}
