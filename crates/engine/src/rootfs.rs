//! A container's root filesystem: the image's layer snapshots stacked as
//! overlayfs lower dirs, with a per-container upper dir.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::container::Layout;
use crate::error::{EngineError, Result};

/// Whether `path` is a mount point, from /proc/self/mountinfo.
pub fn is_mounted(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.to_string_lossy();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|mp| unescape_mountinfo(mp) == want)
}

fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Mounts the overlay for a container unless it is mounted already.
pub fn mount_rootfs(layout: &Layout, layers: &[PathBuf]) -> Result<()> {
    let target = layout.rootfs();
    std::fs::create_dir_all(&target)?;
    std::fs::create_dir_all(layout.upper())?;
    std::fs::create_dir_all(layout.work())?;
    if is_mounted(&target) {
        return Ok(());
    }
    let mut lowers: Vec<String> = layers
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    if lowers.is_empty() {
        let empty = layout.dir.join("empty");
        std::fs::create_dir_all(&empty)?;
        lowers.push(empty.display().to_string());
    }
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lowers.join(":"),
        layout.upper().display(),
        layout.work().display()
    );
    mount(
        Some("overlay"),
        &target,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(|e| EngineError::Internal(format!("mounting rootfs: {e}")))
}

/// Unmounts a container's rootfs (lazily, so a busy mount never blocks).
pub fn unmount_rootfs(layout: &Layout) {
    let target = layout.rootfs();
    while is_mounted(&target) {
        if umount2(&target, MntFlags::MNT_DETACH).is_err() {
            break;
        }
    }
}
