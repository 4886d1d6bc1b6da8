//! Device nodes and the device cgroup.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType,
};

use crate::{DeviceMapping, SpecError};

/// The device nodes every container gets: `(path, major, minor)`, all character devices,
/// mode 0666, owned by root.
const DEFAULT_DEVICES: &[(&str, i64, i64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// Device cgroup allow rules after "deny all", matching what Docker containers get with runc:
/// `(type, major, minor, access)`, `None` meaning `*`.
const DEFAULT_ALLOW: &[(LinuxDeviceType, Option<i64>, Option<i64>, &str)] = &[
    // mknod of any device is allowed; using it is not (unless listed below).
    (LinuxDeviceType::C, None, None, "m"),
    (LinuxDeviceType::B, None, None, "m"),
    (LinuxDeviceType::C, Some(1), Some(3), "rwm"), // /dev/null
    (LinuxDeviceType::C, Some(1), Some(5), "rwm"), // /dev/zero
    (LinuxDeviceType::C, Some(1), Some(7), "rwm"), // /dev/full
    (LinuxDeviceType::C, Some(1), Some(8), "rwm"), // /dev/random
    (LinuxDeviceType::C, Some(1), Some(9), "rwm"), // /dev/urandom
    (LinuxDeviceType::C, Some(5), Some(0), "rwm"), // /dev/tty
    (LinuxDeviceType::C, Some(5), Some(1), "rwm"), // /dev/console
    (LinuxDeviceType::C, Some(5), Some(2), "rwm"), // /dev/ptmx
    (LinuxDeviceType::C, Some(136), None, "rwm"),  // /dev/pts/*
    (LinuxDeviceType::C, Some(10), Some(200), "rwm"), // /dev/net/tun
];

/// Directories under the host's `/dev` skipped when a privileged container gets every device.
const HOST_DEV_SKIP_DIRS: &[&str] = &["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];

/// The default device nodes.
pub fn default_devices() -> Result<Vec<LinuxDevice>, SpecError> {
    DEFAULT_DEVICES
        .iter()
        .map(|(p, maj, min)| {
            Ok(LinuxDeviceBuilder::default()
                .path(PathBuf::from(p))
                .typ(LinuxDeviceType::C)
                .major(*maj)
                .minor(*min)
                .file_mode(0o666u32)
                .uid(0u32)
                .gid(0u32)
                .build()?)
        })
        .collect()
}

fn cgroup_rule(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> Result<LinuxDeviceCgroup, SpecError> {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .typ(typ)
        .access(access.to_string());
    if let Some(m) = major {
        b = b.major(m);
    }
    if let Some(m) = minor {
        b = b.minor(m);
    }
    Ok(b.build()?)
}

/// "Deny everything" followed by the default allow rules.
pub fn default_cgroup_rules() -> Result<Vec<LinuxDeviceCgroup>, SpecError> {
    let mut rules = vec![cgroup_rule(false, LinuxDeviceType::A, None, None, "rwm")?];
    for (t, maj, min, acc) in DEFAULT_ALLOW {
        rules.push(cgroup_rule(true, *t, *maj, *min, acc)?);
    }
    Ok(rules)
}

/// "Allow everything" (privileged containers).
pub(crate) fn allow_all_rule() -> Result<LinuxDeviceCgroup, SpecError> {
    cgroup_rule(true, LinuxDeviceType::A, None, None, "rwm")
}

/// Parses a `--device-cgroup-rule` such as `c 1:3 rwm` or `a *:* rwm`.
pub fn parse_device_cgroup_rule(rule: &str) -> Result<LinuxDeviceCgroup, SpecError> {
    let err = || SpecError::InvalidDeviceCgroupRule(rule.to_string());
    let parts: Vec<&str> = rule.split_whitespace().collect();
    let [typ, nums, access] = parts.as_slice() else {
        return Err(err());
    };
    let typ = match *typ {
        "a" => LinuxDeviceType::A,
        "b" => LinuxDeviceType::B,
        "c" => LinuxDeviceType::C,
        _ => return Err(err()),
    };
    let (maj, min) = nums.split_once(':').ok_or_else(err)?;
    let num = |s: &str| -> Result<Option<i64>, SpecError> {
        if s == "*" {
            Ok(None)
        } else if !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().map(Some).map_err(|_| err())
        } else {
            Err(err())
        }
    };
    if !valid_access(access) {
        return Err(err());
    }
    cgroup_rule(true, typ, num(maj)?, num(min)?, access)
}

fn valid_access(a: &str) -> bool {
    !a.is_empty() && a.len() <= 3 && a.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
}

/// A device node found on the host.
fn device_from_metadata(
    host: &Path,
    container: &Path,
    md: &std::fs::Metadata,
) -> Result<Option<LinuxDevice>, SpecError> {
    let ft = md.file_type();
    let typ = if ft.is_char_device() {
        LinuxDeviceType::C
    } else if ft.is_block_device() {
        LinuxDeviceType::B
    } else {
        return Ok(None);
    };
    let rdev = md.rdev();
    let major = nix::sys::stat::major(rdev) as i64;
    let minor = nix::sys::stat::minor(rdev) as i64;
    tracing::trace!(?host, ?container, major, minor, "device");
    Ok(Some(
        LinuxDeviceBuilder::default()
            .path(container.to_path_buf())
            .typ(typ)
            .major(major)
            .minor(minor)
            .file_mode(md.mode() & 0o7777)
            .uid(md.uid())
            .gid(md.gid())
            .build()?,
    ))
}

/// Expands a `--device` mapping into device nodes and their cgroup rules. A directory maps
/// every device below it (recursively).
pub fn devices_from_mapping(
    m: &DeviceMapping,
) -> Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>), SpecError> {
    let derr = |reason: String| SpecError::InvalidDevice {
        path: m.path_on_host.clone(),
        reason,
    };
    let perms = if m.cgroup_permissions.is_empty() {
        "rwm"
    } else {
        m.cgroup_permissions.as_str()
    };
    if !valid_access(perms) {
        return Err(derr(format!("invalid cgroup permissions {perms:?}")));
    }
    let host = Path::new(&m.path_on_host);
    if !host.is_absolute() {
        return Err(derr("host path must be absolute".into()));
    }
    let container = if m.path_in_container.is_empty() {
        host.to_path_buf()
    } else {
        PathBuf::from(&m.path_in_container)
    };
    if !container.is_absolute() {
        return Err(derr(format!(
            "container path {:?} must be absolute",
            m.path_in_container
        )));
    }
    // Docker follows a symlink given as the host path (e.g. /dev/disk/by-id/...).
    let resolved = std::fs::canonicalize(host).map_err(|e| derr(e.to_string()))?;
    let md = std::fs::metadata(&resolved).map_err(|e| derr(e.to_string()))?;

    let mut found = Vec::new();
    if md.is_dir() {
        walk_devices(&resolved, &container, &mut found, 0, &[])?;
    } else {
        match device_from_metadata(&resolved, &container, &md)? {
            Some(d) => found.push(d),
            None => return Err(derr("not a device node".into())),
        }
    }
    let rules = found
        .iter()
        .map(|d| cgroup_rule(true, d.typ(), Some(d.major()), Some(d.minor()), perms))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((found, rules))
}

fn walk_devices(
    host_dir: &Path,
    container_dir: &Path,
    out: &mut Vec<LinuxDevice>,
    depth: usize,
    skip: &[&str],
) -> Result<(), SpecError> {
    if depth > 16 {
        return Ok(());
    }
    let rd = std::fs::read_dir(host_dir)
        .map_err(|e| SpecError::io(format!("reading {}", host_dir.display()), e))?;
    for entry in rd.flatten() {
        let name = entry.file_name();
        let Ok(md) = std::fs::symlink_metadata(entry.path()) else {
            continue; // vanished
        };
        let ft = md.file_type();
        if ft.is_dir() {
            if depth == 0 && skip.iter().any(|s| name.as_encoded_bytes() == s.as_bytes()) {
                continue;
            }
            walk_devices(
                &entry.path(),
                &container_dir.join(&name),
                out,
                depth + 1,
                skip,
            )?;
        } else if ft.is_symlink() {
            continue;
        } else if let Some(d) =
            device_from_metadata(&entry.path(), &container_dir.join(&name), &md)?
        {
            out.push(d);
        }
    }
    Ok(())
}

/// Every device node under the host's `/dev` (for privileged containers), skipping the
/// per-container pseudo filesystems and `/dev/console`.
pub fn host_devices() -> Result<Vec<LinuxDevice>, SpecError> {
    let mut out = Vec::new();
    walk_devices(
        Path::new("/dev"),
        Path::new("/dev"),
        &mut out,
        0,
        HOST_DEV_SKIP_DIRS,
    )?;
    out.retain(|d| d.path() != Path::new("/dev/console"));
    out.sort_by(|a, b| a.path().cmp(b.path()));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rules() {
        let r = parse_device_cgroup_rule("c 1:3 rwm").unwrap();
        assert_eq!(r.to_string(), "c 1:3 rwm");
        let r = parse_device_cgroup_rule("a *:* r").unwrap();
        assert_eq!(r.to_string(), "a *:* r");
        let r = parse_device_cgroup_rule("b 8:* rw").unwrap();
        assert!(r.allow());
        for bad in [
            "",
            "c 1:3",
            "x 1:3 rwm",
            "c 1-3 rwm",
            "c 1:3 rwx",
            "c a:3 r",
        ] {
            assert!(parse_device_cgroup_rule(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn default_rules_start_with_deny_all() {
        let rules = default_cgroup_rules().unwrap();
        assert!(!rules[0].allow());
        assert_eq!(rules[0].to_string(), "a *:* rwm");
        assert!(rules.iter().any(|r| r.to_string() == "c 136:* rwm"));
        assert_eq!(default_devices().unwrap().len(), 6);
    }

    #[test]
    fn mapping_of_dev_null() {
        let (devs, rules) = devices_from_mapping(&DeviceMapping {
            path_on_host: "/dev/null".into(),
            path_in_container: "/dev/mynull".into(),
            cgroup_permissions: "rw".into(),
        })
        .unwrap();
        assert_eq!(devs.len(), 1);
        assert_eq!(devs[0].path(), Path::new("/dev/mynull"));
        assert_eq!((devs[0].major(), devs[0].minor()), (1, 3));
        assert_eq!(rules[0].to_string(), "c 1:3 rw");
    }

    #[test]
    fn mapping_errors() {
        let m = |p: &str, perms: &str| DeviceMapping {
            path_on_host: p.into(),
            path_in_container: String::new(),
            cgroup_permissions: perms.into(),
        };
        assert!(devices_from_mapping(&m("/etc/hostname", "")).is_err());
        assert!(devices_from_mapping(&m("/dev/does-not-exist-berth", "")).is_err());
        assert!(devices_from_mapping(&m("/dev/null", "rwx")).is_err());
        assert!(devices_from_mapping(&m("dev/null", "")).is_err());
    }

    #[test]
    fn host_devices_include_null() {
        let devs = host_devices().unwrap();
        assert!(devs.iter().any(|d| d.path() == Path::new("/dev/null")));
        assert!(!devs.iter().any(|d| d.path().starts_with("/dev/pts")));
    }
}
