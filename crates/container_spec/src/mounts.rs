//! Docker's default mounts plus user mounts.

use std::path::PathBuf;

use oci_spec::runtime::{Mount, MountBuilder};

use crate::{MountKind, MountSpec, NamespaceMode, Propagation, SpecError, SpecInput};

/// Default mounts that stay writable with `--read-only` (as in Docker).
const KEEP_WRITABLE: &[&str] = &["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue"];

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, SpecError> {
    Ok(MountBuilder::default()
        .destination(PathBuf::from(dest))
        .typ(typ.to_string())
        .source(PathBuf::from(source))
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()?)
}

/// Docker's default mounts for this input (before user mounts are merged in).
pub(crate) fn default_mounts(input: &SpecInput, shm_size: u64) -> Result<Vec<Mount>, SpecError> {
    let shm_opt = format!("size={shm_size}");
    let mut v = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
    ];
    let sys_ro: &[&str] = if input.privileged { &[] } else { &["ro"] };
    let sys_opts = |base: &[&'static str]| -> Vec<&'static str> {
        base.iter().chain(sys_ro.iter()).copied().collect()
    };
    if input.network == NamespaceMode::Host {
        // sysfs shows the network namespace of the mounter; with the host's network the
        // host's /sys is bound instead (non-recursively, so "ro" covers everything).
        v.push(mount(
            "/sys",
            "bind",
            "/sys",
            &sys_opts(&["bind", "nosuid", "noexec", "nodev"]),
        )?);
    } else {
        v.push(mount(
            "/sys",
            "sysfs",
            "sysfs",
            &sys_opts(&["nosuid", "noexec", "nodev"]),
        )?);
    }
    v.push(mount(
        "/sys/fs/cgroup",
        "cgroup",
        "cgroup",
        &sys_opts(&["nosuid", "noexec", "nodev"]),
    )?);
    v.push(mount(
        "/dev/mqueue",
        "mqueue",
        "mqueue",
        &["nosuid", "noexec", "nodev"],
    )?);
    if input.ipc == NamespaceMode::Host {
        v.push(mount(
            "/dev/shm",
            "bind",
            "/dev/shm",
            &["rbind", "nosuid", "noexec", "nodev"],
        )?);
    } else {
        v.push(mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm_opt],
        )?);
    }
    if input.readonly_rootfs {
        for m in v.iter_mut() {
            let dest = m.destination().to_string_lossy().into_owned();
            if KEEP_WRITABLE.contains(&dest.as_str()) {
                continue;
            }
            let opts = m.options_mut().get_or_insert_with(Vec::new);
            if !opts.iter().any(|o| o == "ro") {
                opts.push("ro".to_string());
            }
        }
    }
    Ok(v)
}

/// Lexically cleans an absolute path (`/a/./b/../c` -> `/a/c`); `None` when relative.
pub(crate) fn clean_abs(p: &str) -> Option<String> {
    if !p.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

fn check_option(dest: &str, o: &str) -> Result<(), SpecError> {
    if o.is_empty() || o.contains(',') || o.contains('\0') {
        return Err(SpecError::InvalidMountOption {
            destination: dest.to_string(),
            option: o.to_string(),
        });
    }
    Ok(())
}

/// Flag pairs where the later option wins (`exec` after the default `noexec`, ...).
const OPPOSITES: &[(&str, &str)] = &[
    ("exec", "noexec"),
    ("suid", "nosuid"),
    ("dev", "nodev"),
    ("rw", "ro"),
    ("atime", "noatime"),
    ("diratime", "nodiratime"),
    ("relatime", "norelatime"),
    ("strictatime", "nostrictatime"),
];

/// Merges options so that later ones override earlier conflicting ones (flag pairs and
/// `key=value` keys), keeping first-seen order.
fn merge_options(opts: Vec<String>) -> Vec<String> {
    let key = |o: &str| -> String {
        if let Some((k, _)) = o.split_once('=') {
            return format!("{k}=");
        }
        for (a, b) in OPPOSITES {
            if o == *a || o == *b {
                return (*a).to_string();
            }
        }
        o.to_string()
    };
    let mut out: Vec<String> = Vec::new();
    for o in opts {
        let k = key(&o);
        if let Some(pos) = out.iter().position(|x| key(x) == k) {
            out[pos] = o;
        } else {
            out.push(o);
        }
    }
    out
}

fn user_mount(m: &MountSpec, dest: &str) -> Result<Mount, SpecError> {
    for o in &m.options {
        check_option(dest, o)?;
    }
    if m.source.contains('\0') {
        return Err(SpecError::NulByte {
            field: "mount source",
            value: m.source.clone(),
        });
    }
    let (typ, source, options) = match &m.kind {
        MountKind::Bind => {
            if !m.source.starts_with('/') {
                return Err(SpecError::MountSourceNotAbsolute {
                    destination: dest.to_string(),
                    source_path: m.source.clone(),
                });
            }
            let recursive = !m.options.iter().any(|o| o == "bind");
            let mut opts = vec![if recursive { "rbind" } else { "bind" }.to_string()];
            opts.extend(
                m.options
                    .iter()
                    .filter(|o| *o != "bind" && *o != "rbind")
                    .cloned(),
            );
            opts.push(m.propagation.unwrap_or_default().as_str().to_string());
            if m.readonly {
                opts.push("ro".to_string());
            }
            ("bind".to_string(), m.source.clone(), merge_options(opts))
        }
        MountKind::Tmpfs => {
            let mut opts: Vec<String> = ["noexec", "nosuid", "nodev"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            opts.extend(m.options.iter().cloned());
            if m.readonly {
                opts.push("ro".to_string());
            }
            (
                "tmpfs".to_string(),
                "tmpfs".to_string(),
                merge_options(opts),
            )
        }
        MountKind::Fs(fstype) => {
            if fstype.is_empty() || fstype.contains('\0') || fstype.contains(',') {
                return Err(SpecError::InvalidMountOption {
                    destination: dest.to_string(),
                    option: format!("type={fstype}"),
                });
            }
            let mut opts = m.options.clone();
            if m.readonly {
                opts.push("ro".to_string());
            }
            (fstype.clone(), m.source.clone(), merge_options(opts))
        }
    };
    Ok(MountBuilder::default()
        .destination(PathBuf::from(dest))
        .typ(typ)
        .source(PathBuf::from(source))
        .options(options)
        .build()?)
}

/// Default mounts merged with user mounts, plus the rootfs propagation the user mounts need.
pub(crate) fn build_mounts(
    input: &SpecInput,
    shm_size: u64,
) -> Result<(Vec<Mount>, Option<String>), SpecError> {
    let mut user: Vec<(String, Mount)> = Vec::new();
    for m in &input.mounts {
        if m.destination.contains('\0') {
            return Err(SpecError::NulByte {
                field: "mount destination",
                value: m.destination.clone(),
            });
        }
        let dest = clean_abs(&m.destination)
            .ok_or_else(|| SpecError::MountDestinationNotAbsolute(m.destination.clone()))?;
        if dest == "/" {
            return Err(SpecError::MountDestinationRoot);
        }
        if user.iter().any(|(d, _)| *d == dest) {
            return Err(SpecError::DuplicateMount(dest));
        }
        let om = user_mount(m, &dest)?;
        user.push((dest, om));
    }

    let user_dev = user.iter().any(|(d, _)| d == "/dev");
    let mut mounts: Vec<Mount> = default_mounts(input, shm_size)?
        .into_iter()
        .filter(|m| {
            let d = m.destination().to_string_lossy();
            if user.iter().any(|(u, _)| *u == d) {
                return false;
            }
            !(user_dev && d.starts_with("/dev/"))
        })
        .collect();

    // Parents before children: stable sort by path depth.
    user.sort_by_key(|(d, _)| d.split('/').filter(|c| !c.is_empty()).count());

    let mut propagation = None;
    for m in &input.mounts {
        if m.kind != MountKind::Bind {
            continue;
        }
        match m.propagation {
            Some(Propagation::Shared | Propagation::RShared) => {
                propagation = Some("rshared".to_string())
            }
            Some(Propagation::Slave | Propagation::RSlave) if propagation.is_none() => {
                propagation = Some("rslave".to_string())
            }
            _ => {}
        }
    }

    mounts.extend(user.into_iter().map(|(_, m)| m));
    Ok((mounts, propagation))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> SpecInput {
        SpecInput {
            id: "abc".into(),
            rootfs: "/tmp/x".into(),
            args: vec!["sh".into()],
            ..Default::default()
        }
    }

    fn find<'a>(ms: &'a [Mount], d: &str) -> Option<&'a Mount> {
        ms.iter()
            .find(|m| m.destination() == std::path::Path::new(d))
    }

    fn opts(m: &Mount) -> Vec<String> {
        m.options().clone().unwrap_or_default()
    }

    #[test]
    fn defaults() {
        let (ms, prop) = build_mounts(&input(), 64 << 20).unwrap();
        assert!(prop.is_none());
        let dests: Vec<String> = ms
            .iter()
            .map(|m| m.destination().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/sys",
                "/sys/fs/cgroup",
                "/dev/mqueue",
                "/dev/shm"
            ]
        );
        let shm = find(&ms, "/dev/shm").unwrap();
        assert!(opts(shm).contains(&"size=67108864".to_string()));
        let sys = find(&ms, "/sys").unwrap();
        assert_eq!(sys.typ().as_deref(), Some("sysfs"));
        assert!(opts(sys).contains(&"ro".to_string()));
        assert!(opts(find(&ms, "/sys/fs/cgroup").unwrap()).contains(&"ro".to_string()));
        assert!(opts(find(&ms, "/dev/pts").unwrap()).contains(&"ptmxmode=0666".to_string()));
    }

    #[test]
    fn host_network_binds_sys_and_privileged_is_rw() {
        let mut i = input();
        i.network = NamespaceMode::Host;
        let (ms, _) = build_mounts(&i, 1).unwrap();
        let sys = find(&ms, "/sys").unwrap();
        assert_eq!(sys.typ().as_deref(), Some("bind"));
        assert_eq!(sys.source().as_deref(), Some(std::path::Path::new("/sys")));
        assert!(opts(sys).contains(&"ro".to_string()));

        i.privileged = true;
        let (ms, _) = build_mounts(&i, 1).unwrap();
        assert!(!opts(find(&ms, "/sys").unwrap()).contains(&"ro".to_string()));
        assert!(!opts(find(&ms, "/sys/fs/cgroup").unwrap()).contains(&"ro".to_string()));
    }

    #[test]
    fn readonly_rootfs() {
        let mut i = input();
        i.readonly_rootfs = true;
        let (ms, _) = build_mounts(&i, 1).unwrap();
        assert!(!opts(find(&ms, "/dev/shm").unwrap()).contains(&"ro".to_string()));
        assert!(!opts(find(&ms, "/proc").unwrap()).contains(&"ro".to_string()));
        let sys = opts(find(&ms, "/sys").unwrap());
        assert_eq!(sys.iter().filter(|o| *o == "ro").count(), 1);
    }

    #[test]
    fn user_mounts() {
        let mut i = input();
        i.mounts = vec![
            MountSpec {
                source: "/host/data/sub".into(),
                destination: "/data/sub".into(),
                readonly: true,
                ..Default::default()
            },
            MountSpec {
                source: "/host/data".into(),
                destination: "/data/./".into(),
                propagation: Some(Propagation::RShared),
                options: vec!["bind".into()],
                ..Default::default()
            },
            MountSpec {
                destination: "/run".into(),
                kind: MountKind::Tmpfs,
                options: vec!["exec".into(), "size=10m".into()],
                ..Default::default()
            },
            MountSpec {
                destination: "/dev/shm".into(),
                source: "/var/lib/berth/shm/x".into(),
                ..Default::default()
            },
        ];
        let (ms, prop) = build_mounts(&i, 1).unwrap();
        assert_eq!(prop.as_deref(), Some("rshared"));
        // The default /dev/shm was replaced.
        let shm: Vec<_> = ms
            .iter()
            .filter(|m| m.destination() == std::path::Path::new("/dev/shm"))
            .collect();
        assert_eq!(shm.len(), 1);
        assert_eq!(shm[0].typ().as_deref(), Some("bind"));
        // Parent before child.
        let pos = |d: &str| {
            ms.iter()
                .position(|m| m.destination() == std::path::Path::new(d))
                .unwrap()
        };
        assert!(pos("/data") < pos("/data/sub"));
        assert_eq!(
            opts(&ms[pos("/data")]),
            vec!["bind".to_string(), "rshared".to_string()]
        );
        assert_eq!(
            opts(&ms[pos("/data/sub")]),
            vec![
                "rbind".to_string(),
                "rprivate".to_string(),
                "ro".to_string()
            ]
        );
        assert_eq!(
            opts(&ms[pos("/run")]),
            vec!["exec", "nosuid", "nodev", "size=10m"]
        );
    }

    #[test]
    fn user_dev_mount_drops_dev_submounts() {
        let mut i = input();
        i.mounts = vec![MountSpec {
            source: "/dev".into(),
            destination: "/dev".into(),
            ..Default::default()
        }];
        let (ms, _) = build_mounts(&i, 1).unwrap();
        assert!(!ms
            .iter()
            .any(|m| m.destination().to_string_lossy().starts_with("/dev/")));
    }

    #[test]
    fn validation() {
        let bad = |m: MountSpec| {
            let mut i = input();
            i.mounts = vec![m];
            build_mounts(&i, 1).unwrap_err()
        };
        assert!(matches!(
            bad(MountSpec {
                source: "/a".into(),
                destination: "data".into(),
                ..Default::default()
            }),
            SpecError::MountDestinationNotAbsolute(_)
        ));
        assert!(matches!(
            bad(MountSpec {
                source: "/a".into(),
                destination: "/x/..".into(),
                ..Default::default()
            }),
            SpecError::MountDestinationRoot
        ));
        assert!(matches!(
            bad(MountSpec {
                source: "rel".into(),
                destination: "/x".into(),
                ..Default::default()
            }),
            SpecError::MountSourceNotAbsolute { .. }
        ));
        assert!(matches!(
            bad(MountSpec {
                source: "/a".into(),
                destination: "/x".into(),
                options: vec!["a,b".into()],
                ..Default::default()
            }),
            SpecError::InvalidMountOption { .. }
        ));
        let mut i = input();
        i.mounts = vec![
            MountSpec {
                source: "/a".into(),
                destination: "/x".into(),
                ..Default::default()
            },
            MountSpec {
                source: "/b".into(),
                destination: "/x/".into(),
                ..Default::default()
            },
        ];
        assert!(matches!(
            build_mounts(&i, 1),
            Err(SpecError::DuplicateMount(_))
        ));
    }

    #[test]
    fn clean() {
        assert_eq!(clean_abs("/a/./b/../c/").as_deref(), Some("/a/c"));
        assert_eq!(clean_abs("/../..").as_deref(), Some("/"));
        assert_eq!(clean_abs("a"), None);
    }
}
