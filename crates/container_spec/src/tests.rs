//! Unit tests of `build_spec` as a whole.

use std::path::Path;

use oci_spec::runtime::{Capability, LinuxNamespaceType, PosixRlimitType, Spec};

use crate::*;

fn rootfs() -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix("container_spec-spec-")
        .tempdir()
        .unwrap();
    std::fs::create_dir(d.path().join("etc")).unwrap();
    std::fs::write(
        d.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        d.path().join("etc/group"),
        "root:x:0:\nwheel:x:10:app\napp:x:1000:\n",
    )
    .unwrap();
    d
}

fn input(root: &Path) -> SpecInput {
    SpecInput {
        id: "0123456789abcdef0123".into(),
        rootfs: root.to_path_buf(),
        args: vec!["sh".into(), "-c".into(), "true".into()],
        ..Default::default()
    }
}

fn ns_types(s: &Spec) -> Vec<LinuxNamespaceType> {
    s.linux()
        .as_ref()
        .unwrap()
        .namespaces()
        .as_ref()
        .unwrap()
        .iter()
        .map(|n| n.typ())
        .collect()
}

fn caps_of(s: &Spec) -> Vec<Capability> {
    let c = s
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .as_ref()
        .unwrap();
    let mut v: Vec<Capability> = c.bounding().as_ref().unwrap().iter().copied().collect();
    assert_eq!(c.effective().as_ref().unwrap().len(), v.len());
    assert_eq!(c.permitted().as_ref().unwrap().len(), v.len());
    v.sort_by_key(|c| capability_number(*c));
    v
}

#[test]
fn defaults_like_docker() {
    let r = rootfs();
    let s = build_spec(&input(r.path())).unwrap();
    assert_eq!(s.version(), OCI_VERSION);
    assert_eq!(s.hostname().as_deref(), Some("0123456789ab"));
    let p = s.process().as_ref().unwrap();
    assert_eq!(p.cwd(), Path::new("/"));
    assert_eq!(p.user().uid(), 0);
    assert_eq!(p.terminal(), Some(false));
    let env = p.env().as_ref().unwrap();
    assert_eq!(
        env,
        &vec![
            format!("PATH={DEFAULT_PATH}"),
            "HOSTNAME=0123456789ab".to_string(),
            "HOME=/root".to_string()
        ]
    );
    assert_eq!(capability_mask(&caps_of(&s)), 0xa80425fb);
    let rl = p.rlimits().as_ref().unwrap();
    assert_eq!(rl.len(), 1);
    assert_eq!(rl[0].typ(), PosixRlimitType::RlimitNofile);
    assert!(rl[0].soft() == rl[0].hard() && rl[0].soft() <= DEFAULT_NOFILE);
    assert!(rl[0].soft() >= 1024);
    assert_eq!(p.oom_score_adj(), Some(0));

    assert_eq!(
        ns_types(&s),
        vec![
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Network,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Cgroup
        ]
    );
    let l = s.linux().as_ref().unwrap();
    assert_eq!(
        l.cgroups_path().as_deref(),
        Some(Path::new("/berth/0123456789abcdef0123"))
    );
    assert_eq!(l.masked_paths().as_ref().unwrap().len(), 11);
    assert_eq!(l.readonly_paths().as_ref().unwrap().len(), 5);
    assert!(l.seccomp().is_some());
    assert_eq!(l.devices().as_ref().unwrap().len(), 6);
    let rules = l.resources().as_ref().unwrap().devices().as_ref().unwrap();
    assert!(!rules[0].allow());
    let sysctl = l.sysctl().as_ref().unwrap();
    assert_eq!(sysctl["net.ipv4.ip_unprivileged_port_start"], "0");
    assert_eq!(sysctl["net.ipv4.ping_group_range"], "0 2147483647");
    assert!(!s.root().as_ref().unwrap().readonly().unwrap_or(true));

    let c = p.capabilities().as_ref().unwrap();
    assert!(c.inheritable().is_none());
    assert!(c.ambient().is_none());
    assert!(s.domainname().is_none());
    assert!(s.hooks().is_none());

    // It serialises to something runc understands.
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["ociVersion"], OCI_VERSION);
    assert_eq!(json["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
    assert!(!json.to_string().contains("youki"));
    assert!(json["process"]["capabilities"]["bounding"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "CAP_NET_RAW"));
}

#[test]
fn env_rules() {
    let r = rootfs();
    let mut i = input(r.path());
    i.tty = true;
    i.hostname = "web".into();
    i.env = vec![
        "PATH=/custom".into(),
        "FOO=1".into(),
        "FOO=2".into(),
        "HOME=/h".into(),
        "HOSTNAME".into(),
        "EMPTY=".into(),
    ];
    let s = build_spec(&i).unwrap();
    let env = s.process().as_ref().unwrap().env().clone().unwrap();
    assert_eq!(
        env,
        vec!["PATH=/custom", "TERM=xterm", "FOO=2", "HOME=/h", "EMPTY="]
    );
    assert_eq!(s.hostname().as_deref(), Some("web"));

    i.env = vec!["=x".into()];
    assert!(matches!(build_spec(&i), Err(SpecError::InvalidEnv(_))));
    i.env = vec!["A=b\0c".into()];
    assert!(matches!(build_spec(&i), Err(SpecError::NulByte { .. })));
}

#[test]
fn user_and_groups() {
    let r = rootfs();
    let mut i = input(r.path());
    i.user = "app".into();
    i.group_add = vec!["root".into(), "4000".into()];
    i.cwd = "/home/app".into();
    let s = build_spec(&i).unwrap();
    let p = s.process().as_ref().unwrap();
    assert_eq!((p.user().uid(), p.user().gid()), (1000, 1000));
    assert_eq!(
        p.user().additional_gids().as_deref(),
        Some(&[10, 0, 4000][..])
    );
    assert!(p
        .env()
        .as_ref()
        .unwrap()
        .contains(&"HOME=/home/app".to_string()));
    assert_eq!(p.cwd(), Path::new("/home/app"));

    i.user = "ghost".into();
    let e = build_spec(&i).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unable to find user ghost: no matching entries in passwd file"
    );
}

#[test]
fn validation_errors() {
    let r = rootfs();
    let mut i = input(r.path());
    i.args.clear();
    assert!(matches!(build_spec(&i), Err(SpecError::EmptyArgs)));

    let mut i = input(r.path());
    i.rootfs = "relative/rootfs".into();
    assert!(matches!(
        build_spec(&i),
        Err(SpecError::RootfsNotAbsolute(_))
    ));

    let mut i = input(r.path());
    i.rootfs = r.path().join("missing");
    assert!(matches!(
        build_spec(&i),
        Err(SpecError::RootfsUnreadable { .. })
    ));

    let mut i = input(r.path());
    i.cwd = "work".into();
    assert!(matches!(build_spec(&i), Err(SpecError::RelativeCwd(_))));

    let mut i = input(r.path());
    i.id = "bad/id".into();
    assert!(matches!(build_spec(&i), Err(SpecError::InvalidId(_))));

    let mut i = input(r.path());
    i.mounts = vec![MountSpec {
        source: "/x".into(),
        destination: "relative".into(),
        ..Default::default()
    }];
    let e = build_spec(&i).unwrap_err();
    assert!(matches!(e, SpecError::MountDestinationNotAbsolute(_)));
    assert!(e.to_string().contains("not an absolute path"));

    let mut i = input(r.path());
    i.oom_score_adj = Some(1001);
    assert!(matches!(
        build_spec(&i),
        Err(SpecError::InvalidOomScoreAdj(1001))
    ));

    let mut i = input(r.path());
    i.hostname = "h".repeat(65);
    assert!(matches!(build_spec(&i), Err(SpecError::InvalidName { .. })));

    let mut i = input(r.path());
    i.cgroups_path = "/berth/../../etc".into();
    assert!(matches!(
        build_spec(&i),
        Err(SpecError::InvalidCgroupsPath(_))
    ));

    let mut i = input(r.path());
    i.network = NamespaceMode::Path("run/netns/x".into());
    assert!(matches!(
        build_spec(&i),
        Err(SpecError::InvalidNamespacePath { .. })
    ));

    let mut i = input(r.path());
    i.cap_add = vec!["NOT_A_CAP".into()];
    assert!(matches!(
        build_spec(&i),
        Err(SpecError::UnknownCapability(_))
    ));

    let mut i = input(r.path());
    i.masked_paths = vec!["proc/x".into()];
    assert!(matches!(build_spec(&i), Err(SpecError::InvalidPath { .. })));
}

#[test]
fn host_network_mode() {
    let r = rootfs();
    let mut i = input(r.path());
    i.network = NamespaceMode::Host;
    let s = build_spec(&i).unwrap();
    let types = ns_types(&s);
    assert!(!types.contains(&LinuxNamespaceType::Network));
    assert!(types.contains(&LinuxNamespaceType::Uts));
    // No default net sysctls (they would change the host).
    assert!(s
        .linux()
        .as_ref()
        .unwrap()
        .sysctl()
        .as_ref()
        .unwrap()
        .is_empty());
    let sys = s
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.destination() == Path::new("/sys"))
        .unwrap();
    assert_eq!(sys.typ().as_deref(), Some("bind"));

    i.sysctls.insert("net.ipv4.ip_forward".into(), "1".into());
    assert!(matches!(
        build_spec(&i),
        Err(SpecError::InvalidSysctl { .. })
    ));
}

#[test]
fn joined_and_host_namespaces() {
    let r = rootfs();
    let mut i = input(r.path());
    i.network = NamespaceMode::Path("/run/netns/berth-x".into());
    i.pid = NamespaceMode::Host;
    i.ipc = NamespaceMode::Host;
    i.uts = NamespaceMode::Host;
    let s = build_spec(&i).unwrap();
    let l = s.linux().as_ref().unwrap();
    let nss = l.namespaces().as_ref().unwrap();
    let net = nss
        .iter()
        .find(|n| n.typ() == LinuxNamespaceType::Network)
        .unwrap();
    assert_eq!(net.path().as_deref(), Some(Path::new("/run/netns/berth-x")));
    assert_eq!(
        ns_types(&s),
        vec![
            LinuxNamespaceType::Network,
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Cgroup
        ]
    );
    // Host UTS: the spec must not set a hostname.
    assert!(s.hostname().is_none());
    // Host IPC: /dev/shm is the host's.
    let shm = s
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.destination() == Path::new("/dev/shm"))
        .unwrap();
    assert_eq!(shm.source().as_deref(), Some(Path::new("/dev/shm")));
    // Default net sysctls still apply to a joined network namespace.
    assert!(l
        .sysctl()
        .as_ref()
        .unwrap()
        .contains_key("net.ipv4.ping_group_range"));
}

#[test]
fn privileged() {
    let r = rootfs();
    let mut i = input(r.path());
    i.privileged = true;
    i.cap_drop = vec!["CHOWN".into()];
    let s = build_spec(&i).unwrap();
    assert_eq!(caps_of(&s), all_capabilities());
    let l = s.linux().as_ref().unwrap();
    assert!(l.seccomp().is_none());
    assert!(l.masked_paths().as_ref().unwrap().is_empty());
    assert!(l.readonly_paths().as_ref().unwrap().is_empty());
    let devices = l.devices().as_ref().unwrap();
    assert!(devices.len() > 6, "host devices expected");
    let mut paths: Vec<_> = devices.iter().map(|d| d.path().clone()).collect();
    let n = paths.len();
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), n, "duplicate device paths");
    let rules = l.resources().as_ref().unwrap().devices().as_ref().unwrap();
    assert!(rules.last().unwrap().allow());
    assert_eq!(rules.last().unwrap().to_string(), "a *:* rwm");
    let sys = s
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.destination() == Path::new("/sys"))
        .unwrap();
    assert!(!sys.options().as_ref().unwrap().contains(&"ro".to_string()));
}

#[test]
fn caps_and_seccomp_follow_each_other() {
    let r = rootfs();
    let mut i = input(r.path());
    i.cap_add = vec!["SYS_ADMIN".into()];
    i.cap_drop = vec!["CAP_NET_RAW".into()];
    let s = build_spec(&i).unwrap();
    let caps = caps_of(&s);
    assert!(caps.contains(&Capability::SysAdmin));
    assert!(!caps.contains(&Capability::NetRaw));
    let sc = s.linux().as_ref().unwrap().seccomp().clone().unwrap();
    let json = serde_json::to_string(&sc).unwrap();
    assert!(json.contains("\"unshare\""));

    i.cap_add.clear();
    i.seccomp = SeccompMode::Unconfined;
    let s = build_spec(&i).unwrap();
    assert!(s.linux().as_ref().unwrap().seccomp().is_none());
}

#[test]
fn resources_shm_ulimits_sysctls() {
    let r = rootfs();
    let mut i = input(r.path());
    i.resources = Resources {
        memory: 256 << 20,
        nano_cpus: 500_000_000,
        cpu_shares: 512,
        pids_limit: Some(64),
        ..Default::default()
    };
    i.shm_size = Some(1 << 30);
    i.ulimits = vec![
        Ulimit {
            name: "nofile".into(),
            soft: 1024,
            hard: 2048,
        },
        Ulimit {
            name: "core".into(),
            soft: -1,
            hard: -1,
        },
    ];
    i.sysctls.insert("net.core.somaxconn".into(), "1024".into());
    i.sysctls.insert("kernel.shmmax".into(), "1000".into());
    i.oom_score_adj = Some(500);
    i.readonly_rootfs = true;
    i.no_new_privileges = true;
    i.annotations.insert("org.example.k".into(), "v".into());
    let s = build_spec(&i).unwrap();
    let l = s.linux().as_ref().unwrap();
    let res = l.resources().as_ref().unwrap();
    assert_eq!(res.memory().as_ref().unwrap().limit(), Some(256 << 20));
    let cpu = res.cpu().as_ref().unwrap();
    assert_eq!((cpu.quota(), cpu.period()), (Some(50_000), Some(100_000)));
    assert_eq!(cpu.shares(), Some(512));
    assert_eq!(res.pids().as_ref().unwrap().limit(), 64);
    let shm = s
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.destination() == Path::new("/dev/shm"))
        .unwrap();
    assert!(shm
        .options()
        .as_ref()
        .unwrap()
        .contains(&format!("size={}", 1u64 << 30)));
    let p = s.process().as_ref().unwrap();
    let rl = p.rlimits().as_ref().unwrap();
    assert_eq!(rl.len(), 2);
    let nofile = rl
        .iter()
        .find(|r| r.typ() == PosixRlimitType::RlimitNofile)
        .unwrap();
    assert_eq!((nofile.soft(), nofile.hard()), (1024, 2048));
    let core = rl
        .iter()
        .find(|r| r.typ() == PosixRlimitType::RlimitCore)
        .unwrap();
    assert_eq!(core.hard(), u64::MAX);
    assert_eq!(p.oom_score_adj(), Some(500));
    assert_eq!(p.no_new_privileges(), Some(true));
    assert_eq!(l.sysctl().as_ref().unwrap()["kernel.shmmax"], "1000");
    assert_eq!(s.root().as_ref().unwrap().readonly(), Some(true));
    assert_eq!(s.annotations().as_ref().unwrap()["org.example.k"], "v");

    let mut bad = i.clone();
    bad.ulimits = vec![Ulimit {
        name: "nofile".into(),
        soft: 10,
        hard: 5,
    }];
    assert!(matches!(
        build_spec(&bad),
        Err(SpecError::InvalidUlimit { .. })
    ));
    let mut bad = i.clone();
    bad.ulimits = vec![Ulimit {
        name: "bogus".into(),
        soft: 1,
        hard: 1,
    }];
    assert!(matches!(
        build_spec(&bad),
        Err(SpecError::InvalidUlimit { .. })
    ));
    let mut bad = i.clone();
    bad.sysctls.insert("kernel.panic".into(), "1".into());
    assert!(matches!(
        build_spec(&bad),
        Err(SpecError::InvalidSysctl { .. })
    ));
    let mut bad = i;
    bad.ipc = NamespaceMode::Host;
    assert!(matches!(
        build_spec(&bad),
        Err(SpecError::InvalidSysctl { .. })
    ));
}

#[test]
fn devices_and_rules() {
    let r = rootfs();
    let mut i = input(r.path());
    i.devices = vec![DeviceMapping {
        path_on_host: "/dev/null".into(),
        path_in_container: "/dev/xnull".into(),
        cgroup_permissions: "r".into(),
    }];
    i.device_cgroup_rules = vec!["c 42:* rmw".into()];
    let s = build_spec(&i).unwrap();
    let l = s.linux().as_ref().unwrap();
    assert!(l
        .devices()
        .as_ref()
        .unwrap()
        .iter()
        .any(|d| d.path() == Path::new("/dev/xnull")));
    let rules: Vec<String> = l
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .as_ref()
        .unwrap()
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert!(rules.contains(&"c 1:3 r".to_string()));
    assert!(rules.contains(&"c 42:* rmw".to_string()));

    i.device_cgroup_rules = vec!["bogus".into()];
    assert!(matches!(
        build_spec(&i),
        Err(SpecError::InvalidDeviceCgroupRule(_))
    ));
}

#[test]
fn spec_input_roundtrips_through_json() {
    let r = rootfs();
    let mut i = input(r.path());
    i.network = NamespaceMode::Path("/run/netns/x".into());
    i.seccomp = SeccompMode::Custom(Box::new(
        default_seccomp_profile(&docker_default_capabilities()).unwrap(),
    ));
    let j = serde_json::to_string(&i).unwrap();
    let back: SpecInput = serde_json::from_str(&j).unwrap();
    assert_eq!(back, i);
}
