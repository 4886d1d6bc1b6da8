//! Root filesystems a build step works on without running a container (COPY, ADD,
//! WORKDIR, `COPY --from`): an overlay of an image's layer snapshots, and path
//! resolution that follows symlinks without ever leaving the root.

use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use tracing::warn;

use crate::error::{BuildError, Result};

/// An overlay mount of image layers under a work directory; unmounted and removed on
/// drop. With `writable`, changes land in `upper()`.
pub(crate) struct OverlayRoot {
    dir: PathBuf,
    mounted: bool,
}

impl OverlayRoot {
    /// Mounts `layers` (bottom to top) at `<dir>/merged`; `dir` must not exist yet.
    pub(crate) fn mount(dir: PathBuf, layers: &[PathBuf], writable: bool) -> Result<Self> {
        std::fs::create_dir_all(dir.join("merged"))?;
        let mut root = OverlayRoot {
            dir,
            mounted: false,
        };
        let empty = root.dir.join("empty");
        std::fs::create_dir_all(&empty)?;
        let mut lowers: Vec<String> = layers
            .iter()
            .rev()
            .map(|p| p.display().to_string())
            .collect();
        // Overlay wants two lower dirs when it has no upper dir, and one at least.
        if lowers.is_empty() || (!writable && lowers.len() < 2) {
            lowers.push(empty.display().to_string());
        }
        let mut data = format!("lowerdir={}", lowers.join(":"));
        if writable {
            std::fs::create_dir_all(root.upper())?;
            std::fs::create_dir_all(root.dir.join("work"))?;
            // The upper dir alone must describe the change: no redirects or metacopy.
            data.push_str(&format!(
                ",upperdir={},workdir={},redirect_dir=off,metacopy=off,index=off",
                root.upper().display(),
                root.dir.join("work").display()
            ));
        }
        let flags = if writable {
            MsFlags::empty()
        } else {
            MsFlags::MS_RDONLY
        };
        mount(
            Some("overlay"),
            &root.merged(),
            Some("overlay"),
            flags,
            Some(data.as_str()),
        )
        .map_err(|e| BuildError::Internal(format!("mounting a build rootfs: {e}")))?;
        root.mounted = true;
        Ok(root)
    }

    pub(crate) fn merged(&self) -> PathBuf {
        self.dir.join("merged")
    }

    pub(crate) fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }

    /// Unmounts, keeping the upper dir for a diff.
    pub(crate) fn unmount(&mut self) {
        if self.mounted {
            if let Err(e) = umount2(&self.merged(), MntFlags::MNT_DETACH) {
                warn!(path = %self.merged().display(), error = %e, "cannot unmount build rootfs");
            }
            self.mounted = false;
        }
    }
}

impl Drop for OverlayRoot {
    fn drop(&mut self) {
        self.unmount();
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            if e.kind() != io::ErrorKind::NotFound {
                warn!(path = %self.dir.display(), error = %e, "cannot remove build rootfs");
            }
        }
    }
}

/// Lexically cleans an absolute or relative path: no `.`, `..` resolved (never above
/// the start), no empty components.
pub(crate) fn clean(path: &str) -> Vec<OsString> {
    let mut out: Vec<OsString> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(n) => out.push(n.to_os_string()),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Whether a relative path climbs above its start (`../x`, `a/../../x`).
pub(crate) fn escapes(path: &str) -> bool {
    let mut depth: i64 = 0;
    for c in Path::new(path).components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            Component::RootDir => depth = 0,
            _ => {}
        }
    }
    false
}

/// Resolves `path` inside `root` as if `root` were `/`: symlinks are followed, absolute
/// link targets and `..` are taken relative to `root` and can never leave it. Missing
/// trailing components are appended as they are.
pub(crate) fn resolve_in_root(root: &Path, path: &str) -> io::Result<PathBuf> {
    let mut pending: Vec<OsString> = clean(path);
    pending.reverse();
    let mut cur: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(c) = pending.pop() {
        if c == ".." {
            cur.pop();
            continue;
        }
        if c == "." || c.is_empty() {
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(cur.iter());
        candidate.push(&c);
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > 40 {
                    return Err(io::Error::from_raw_os_error(libc_eloop()));
                }
                let target = std::fs::read_link(&candidate)?;
                let t = target.to_string_lossy().into_owned();
                if t.starts_with('/') {
                    cur.clear();
                }
                let mut parts: Vec<OsString> = Path::new(&t)
                    .components()
                    .filter_map(|x| match x {
                        Component::Normal(n) => Some(n.to_os_string()),
                        Component::ParentDir => Some(OsString::from("..")),
                        _ => None,
                    })
                    .collect();
                parts.reverse();
                pending.extend(parts);
            }
            Ok(_) => cur.push(c),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                cur.push(c);
                // Nothing below a missing component exists: take the rest lexically.
                while let Some(rest) = pending.pop() {
                    if rest == ".." {
                        cur.pop();
                    } else {
                        cur.push(rest);
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(cur.iter());
    Ok(out)
}

fn libc_eloop() -> i32 {
    nix::errno::Errno::ELOOP as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn resolve_stays_inside_root() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("usr/lib")).unwrap();
        symlink("usr/lib", r.join("lib")).unwrap();
        symlink("/etc", r.join("abs")).unwrap();
        symlink("../../../../..", r.join("up")).unwrap();
        symlink("loop2", r.join("loop1")).unwrap();
        symlink("loop1", r.join("loop2")).unwrap();
        assert_eq!(resolve_in_root(r, "/lib/x").unwrap(), r.join("usr/lib/x"));
        assert_eq!(
            resolve_in_root(r, "abs/passwd").unwrap(),
            r.join("etc/passwd")
        );
        assert_eq!(resolve_in_root(r, "/up/etc").unwrap(), r.join("etc"));
        assert_eq!(resolve_in_root(r, "../../x/./y").unwrap(), r.join("x/y"));
        assert_eq!(resolve_in_root(r, "/new/a/../b").unwrap(), r.join("new/b"));
        assert!(resolve_in_root(r, "/loop1/x").is_err());
    }

    #[test]
    fn escape_detection() {
        assert!(escapes("../x"));
        assert!(escapes("a/../../x"));
        assert!(!escapes("a/../x"));
        assert!(!escapes("./x"));
        assert_eq!(
            clean("/a/./b/../c"),
            vec![OsString::from("a"), OsString::from("c")]
        );
    }
}
