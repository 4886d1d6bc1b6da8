//! A minimal busybox root filesystem built offline from a static busybox binary (Debian's
//! `busybox-static` installs one at `/bin/busybox`), used to create `busybox:latest`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use tar::{Builder, EntryType, Header};

use crate::error::{ImageError, Result};

/// Where Debian's `busybox-static` puts the binary.
pub const DEFAULT_BUSYBOX: &str = "/bin/busybox";

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
";

const GROUP: &str = "root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
mail:x:12:
www-data:x:33:
users:x:100:
nogroup:x:65534:
";

const DIRS: &[(&str, u32)] = &[
    ("bin", 0o755),
    ("dev", 0o755),
    ("etc", 0o755),
    ("home", 0o755),
    ("proc", 0o555),
    ("root", 0o700),
    ("sys", 0o555),
    ("tmp", 0o1777),
    ("usr", 0o755),
    ("usr/bin", 0o755),
    ("usr/sbin", 0o755),
    ("var", 0o755),
    ("var/spool", 0o755),
    ("var/spool/mail", 0o755),
    ("var/www", 0o755),
];

const FILES: &[(&str, &str, u32)] = &[
    ("etc/passwd", PASSWD, 0o644),
    ("etc/group", GROUP, 0o644),
    ("etc/hosts", "", 0o644),
    ("etc/hostname", "", 0o644),
    ("etc/resolv.conf", "", 0o644),
    ("etc/nsswitch.conf", "hosts: files dns\n", 0o644),
];

/// Applet names printed by `busybox --list`, sorted, validated, without `busybox` itself.
fn applets(busybox: &Path) -> Result<Vec<String>> {
    let out = Command::new(busybox)
        .arg("--list")
        .output()
        .map_err(|e| ImageError::Busybox(format!("running {} --list: {e}", busybox.display())))?;
    if !out.status.success() {
        return Err(ImageError::Busybox(format!(
            "{} --list failed: {}",
            busybox.display(),
            out.status
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|n| {
            !n.is_empty()
                && *n != "busybox"
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.[".contains(&b))
        })
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    if names.is_empty() {
        return Err(ImageError::Busybox(format!(
            "{} --list printed no applets",
            busybox.display()
        )));
    }
    Ok(names)
}

fn header(ty: EntryType, mode: u32, size: u64, mtime: u64) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(ty);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(size);
    h.set_mtime(mtime);
    h
}

/// Writes a minimal busybox rootfs tar to `out`: `/bin/busybox`, a `/bin/<applet>` symlink
/// per applet, `/etc/{passwd,group,hosts,hostname,resolv.conf,nsswitch.conf}`, and the usual
/// empty directories (`/tmp` 1777, `/root` 0700, `/dev`, `/proc`, `/sys`, `/var`, ...).
/// All timestamps are the binary's mtime, so the tar is reproducible on a given host.
pub fn write_busybox_rootfs_tar(busybox: &Path, out: impl Write) -> Result<()> {
    let meta = fs::metadata(busybox)
        .map_err(|e| ImageError::Busybox(format!("{}: {e}", busybox.display())))?;
    if !meta.is_file() {
        return Err(ImageError::Busybox(format!(
            "{} is not a file",
            busybox.display()
        )));
    }
    let mtime = u64::try_from(meta.mtime()).unwrap_or(0);
    let applets = applets(busybox)?;
    let binary = fs::read(busybox)
        .map_err(|e| ImageError::Busybox(format!("reading {}: {e}", busybox.display())))?;

    let werr = |e: std::io::Error| ImageError::io("writing busybox rootfs tar", e);
    let mut b = Builder::new(out);
    for (d, mode) in DIRS {
        let mut h = header(EntryType::Directory, *mode, 0, mtime);
        b.append_data(&mut h, format!("{d}/"), std::io::empty())
            .map_err(werr)?;
    }
    let mut h = header(EntryType::Regular, 0o755, binary.len() as u64, mtime);
    b.append_data(&mut h, "bin/busybox", &binary[..])
        .map_err(werr)?;
    for a in &applets {
        let mut h = header(EntryType::Symlink, 0o777, 0, mtime);
        b.append_link(&mut h, format!("bin/{a}"), "busybox")
            .map_err(werr)?;
    }
    for (path, content, mode) in FILES {
        let mut h = header(EntryType::Regular, *mode, content.len() as u64, mtime);
        b.append_data(&mut h, path, content.as_bytes())
            .map_err(werr)?;
    }
    b.into_inner().map_err(werr)?.flush().map_err(werr)?;
    Ok(())
}

/// [`write_busybox_rootfs_tar`] into memory.
pub fn busybox_rootfs_tar(busybox: &Path) -> Result<Vec<u8>> {
    let mut v = Vec::new();
    write_busybox_rootfs_tar(busybox, &mut v)?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn busybox_tar_contents() {
        let bb = Path::new(DEFAULT_BUSYBOX);
        if !bb.exists() {
            eprintln!("skipping: {DEFAULT_BUSYBOX} not installed");
            return;
        }
        let data = busybox_rootfs_tar(bb).unwrap();
        assert_eq!(data, busybox_rootfs_tar(bb).unwrap(), "reproducible");
        let mut ar = tar::Archive::new(&data[..]);
        let mut seen: HashMap<String, (EntryType, u32, Option<String>)> = HashMap::new();
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            let p = e.path().unwrap().to_string_lossy().into_owned();
            let link = e
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned());
            seen.insert(
                p.trim_end_matches('/').to_string(),
                (e.header().entry_type(), e.header().mode().unwrap(), link),
            );
        }
        assert_eq!(seen["bin/busybox"].0, EntryType::Regular);
        assert_eq!(seen["bin/sh"].0, EntryType::Symlink);
        assert_eq!(seen["bin/sh"].2.as_deref(), Some("busybox"));
        assert!(seen.contains_key("bin/ls"));
        assert!(!seen.contains_key("bin/busybox/"));
        assert_eq!(seen["tmp"].1 & 0o7777, 0o1777);
        assert_eq!(seen["root"].1 & 0o7777, 0o700);
        for p in [
            "etc/passwd",
            "etc/group",
            "etc/hosts",
            "dev",
            "proc",
            "sys",
            "var",
        ] {
            assert!(seen.contains_key(p), "{p}");
        }
    }

    #[test]
    fn missing_binary_is_an_error() {
        let err = busybox_rootfs_tar(Path::new("/nonexistent/berth-t-busybox")).unwrap_err();
        assert!(matches!(err, ImageError::Busybox(_)));
    }
}
