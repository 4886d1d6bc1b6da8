//! Reading small files (`/etc/passwd`, `/etc/group`) from an untrusted rootfs.
//!
//! The rootfs comes from an image, so any of its paths may be a symlink pointing "outside"
//! (`/etc/passwd -> /../../../etc/shadow`, `/etc -> /proc/1/root/etc`, ...). Every path is
//! therefore resolved as if the rootfs were `/`: absolute symlink targets restart at the rootfs
//! and `..` never climbs above it. The kernel does exactly this with `openat2(2)` and
//! `RESOLVE_IN_ROOT`; on kernels without `openat2` the same walk is done component by
//! component in user space, holding a directory fd at every step so a concurrent rename inside
//! the rootfs cannot redirect the walk to the host.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, readlinkat, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, FileStat, Mode, SFlag};

use crate::SpecError;

/// Upper bound on symlinks followed while resolving one path (same as the kernel's).
const MAX_SYMLINKS: usize = 40;

/// Largest file we agree to read (passwd/group files are tiny; this only stops abuse).
pub(crate) const MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;

/// Reads `path` (absolute, as seen from inside the container) from the rootfs at `rootfs`.
///
/// Returns `Ok(None)` when the file (or a directory on its way) does not exist, and an
/// error when it exists but is not a regular file, is larger than `max_size`, or cannot be read.
pub(crate) fn read_file_in_root(
    rootfs: &Path,
    path: &str,
    max_size: u64,
) -> Result<Option<Vec<u8>>, SpecError> {
    let root = open_root(rootfs)?;
    let file = match open_in_root(&root, path) {
        Ok(f) => f,
        Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => return Ok(None),
        Err(e) => {
            return Err(SpecError::RootfsFile {
                path: path.to_string(),
                reason: e.desc().to_string(),
            })
        }
    };
    read_regular(file, path, max_size).map(Some)
}

fn open_root(rootfs: &Path) -> Result<OwnedFd, SpecError> {
    let fd = nix::fcntl::open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| SpecError::RootfsUnreadable {
        path: rootfs.to_path_buf(),
        source: std::io::Error::from(e),
    })?;
    // SAFETY: `fd` was just returned by open(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens `path` for reading, resolved inside the directory `root`.
pub(crate) fn open_in_root(root: &OwnedFd, path: &str) -> Result<File, Errno> {
    let rel = path.trim_start_matches('/');
    if rel.is_empty() {
        return Err(Errno::EISDIR);
    }
    for _ in 0..3 {
        match open_in_root_kernel(root, rel) {
            // openat2 returns EAGAIN when a rename raced with the lookup; just retry.
            Err(Errno::EAGAIN) => continue,
            // No openat2 (old kernel) or it is filtered by seccomp: do the walk ourselves.
            Err(Errno::ENOSYS) | Err(Errno::EPERM) | Err(Errno::E2BIG) => {
                return open_in_root_walk(root, rel)
            }
            other => return other,
        }
    }
    open_in_root_walk(root, rel)
}

fn read_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK
}

fn open_in_root_kernel(root: &OwnedFd, rel: &str) -> Result<File, Errno> {
    let how = OpenHow::new()
        .flags(read_flags())
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = openat2(root.as_raw_fd(), rel, how)?;
    // SAFETY: `fd` was just returned by openat2(2) and is owned by nobody else.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: only called with fds freshly returned by openat(2).
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn file_type(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

/// User-space equivalent of `RESOLVE_IN_ROOT`: walks `rel` one component at a time with
/// `O_NOFOLLOW`, expanding symlinks lexically against the root.
pub(crate) fn open_in_root_walk(root: &OwnedFd, rel: &str) -> Result<File, Errno> {
    let mut pending: VecDeque<OsString> = split(OsStr::new(rel));
    // Directory fds from the root (exclusive) to the current directory.
    let mut stack: Vec<OwnedFd> = Vec::new();
    let mut links = 0usize;

    while let Some(comp) = pending.pop_front() {
        let comp_bytes = comp.as_bytes();
        if comp_bytes == b"." {
            continue;
        }
        if comp_bytes == b".." {
            // Clamped at the root: popping an empty stack is a no-op.
            stack.pop();
            continue;
        }
        let dir = stack.last().unwrap_or(root).as_raw_fd();
        let fd = owned(openat(
            Some(dir),
            comp.as_os_str(),
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?);
        let st = fstat(fd.as_raw_fd())?;
        match file_type(&st) {
            SFlag::S_IFLNK => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(Errno::ELOOP);
                }
                let target = readlinkat(Some(fd.as_raw_fd()), "")?;
                if target.as_bytes().starts_with(b"/") {
                    stack.clear();
                }
                let mut parts = split(&target);
                parts.extend(pending.drain(..));
                pending = parts;
            }
            SFlag::S_IFDIR => {
                if pending.is_empty() {
                    return Err(Errno::EISDIR);
                }
                stack.push(fd);
            }
            _ => {
                if !pending.is_empty() {
                    return Err(Errno::ENOTDIR);
                }
                // Re-open the same name for reading; O_NOFOLLOW makes a swap to a symlink
                // fail, and the inode check catches a swap to another file.
                let file = File::from(owned(openat(
                    Some(dir),
                    comp.as_os_str(),
                    read_flags() | OFlag::O_NOFOLLOW,
                    Mode::empty(),
                )?));
                let st2 = fstat(file.as_raw_fd())?;
                if st2.st_dev != st.st_dev || st2.st_ino != st.st_ino {
                    return Err(Errno::EAGAIN);
                }
                return Ok(file);
            }
        }
    }
    // Path resolved to the root itself or a directory.
    Err(Errno::EISDIR)
}

fn split(p: &OsStr) -> VecDeque<OsString> {
    p.as_bytes()
        .split(|b| *b == b'/')
        .filter(|c| !c.is_empty())
        .map(|c| OsStr::from_bytes(c).to_os_string())
        .collect()
}

fn read_regular(mut file: File, path: &str, max_size: u64) -> Result<Vec<u8>, SpecError> {
    let err = |reason: String| SpecError::RootfsFile {
        path: path.to_string(),
        reason,
    };
    let st = fstat(file.as_raw_fd()).map_err(|e| err(e.desc().to_string()))?;
    if file_type(&st) != SFlag::S_IFREG {
        return Err(err("not a regular file".to_string()));
    }
    let mut buf = Vec::new();
    (&mut file)
        .take(max_size + 1)
        .read_to_end(&mut buf)
        .map_err(|e| err(e.to_string()))?;
    if buf.len() as u64 > max_size {
        return Err(err(format!("larger than {max_size} bytes")));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn setup() -> (tempfile::TempDir, tempfile::TempDir) {
        let outside = tempfile::Builder::new()
            .prefix("container_spec-outside-")
            .tempdir()
            .unwrap();
        std::fs::write(outside.path().join("secret"), b"host secret\n").unwrap();
        let root = tempfile::Builder::new()
            .prefix("container_spec-root-")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        std::fs::write(root.path().join("secret"), b"in root\n").unwrap();
        (outside, root)
    }

    fn both(rootfs: &Path, path: &str) -> (Result<Vec<u8>, Errno>, Result<Vec<u8>, Errno>) {
        let root = open_root(rootfs).unwrap();
        let rd = |f: File| {
            let mut v = Vec::new();
            (&f).read_to_end(&mut v).unwrap();
            v
        };
        let rel = path.trim_start_matches('/');
        (
            open_in_root(&root, path).map(rd),
            open_in_root_walk(&root, rel).map(rd),
        )
    }

    #[test]
    fn absolute_symlink_stays_inside() {
        let (outside, root) = setup();
        let target = outside.path().join("secret");
        symlink(&target, root.path().join("etc/passwd")).unwrap();
        // The absolute target is re-rooted: <root>/<outside>/secret does not exist.
        let (k, w) = both(root.path(), "/etc/passwd");
        assert_eq!(k, Err(Errno::ENOENT));
        assert_eq!(w, Err(Errno::ENOENT));
        assert_eq!(
            read_file_in_root(root.path(), "/etc/passwd", MAX_FILE_SIZE).unwrap(),
            None
        );
    }

    #[test]
    fn dotdot_symlink_clamped_at_root() {
        let (_outside, root) = setup();
        symlink("../../../../../../secret", root.path().join("etc/passwd")).unwrap();
        let (k, w) = both(root.path(), "/etc/passwd");
        assert_eq!(k.unwrap(), b"in root\n");
        assert_eq!(w.unwrap(), b"in root\n");
    }

    #[test]
    fn symlinked_directory_is_rerooted() {
        let (outside, root) = setup();
        std::fs::remove_dir(root.path().join("etc")).unwrap();
        std::fs::create_dir(outside.path().join("etc")).unwrap();
        std::fs::write(outside.path().join("etc/passwd"), b"host\n").unwrap();
        symlink(outside.path().join("etc"), root.path().join("etc")).unwrap();
        let (k, w) = both(root.path(), "/etc/passwd");
        assert_eq!(k, Err(Errno::ENOENT));
        assert_eq!(w, Err(Errno::ENOENT));
    }

    #[test]
    fn relative_symlink_inside_root_is_followed() {
        let (_outside, root) = setup();
        std::fs::create_dir_all(root.path().join("usr/share")).unwrap();
        std::fs::write(root.path().join("usr/share/passwd"), b"ok\n").unwrap();
        symlink("../usr/share/passwd", root.path().join("etc/passwd")).unwrap();
        let (k, w) = both(root.path(), "/etc/passwd");
        assert_eq!(k.unwrap(), b"ok\n");
        assert_eq!(w.unwrap(), b"ok\n");
    }

    #[test]
    fn symlink_loop_is_an_error() {
        let (_outside, root) = setup();
        symlink("passwd", root.path().join("etc/passwd")).unwrap();
        let (k, w) = both(root.path(), "/etc/passwd");
        assert_eq!(k, Err(Errno::ELOOP));
        assert_eq!(w, Err(Errno::ELOOP));
        assert!(read_file_in_root(root.path(), "/etc/passwd", MAX_FILE_SIZE).is_err());
    }

    #[test]
    fn non_regular_files_are_refused() {
        let (_outside, root) = setup();
        std::fs::create_dir(root.path().join("etc/passwd")).unwrap();
        assert!(read_file_in_root(root.path(), "/etc/passwd", MAX_FILE_SIZE).is_err());
        nix::unistd::mkfifo(
            &root.path().join("etc/group"),
            Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        // Must neither block on the FIFO nor accept it.
        assert!(read_file_in_root(root.path(), "/etc/group", MAX_FILE_SIZE).is_err());
    }

    #[test]
    fn size_limit() {
        let (_outside, root) = setup();
        std::fs::write(root.path().join("etc/passwd"), vec![b'a'; 100]).unwrap();
        assert!(read_file_in_root(root.path(), "/etc/passwd", 99).is_err());
        assert_eq!(
            read_file_in_root(root.path(), "/etc/passwd", 100)
                .unwrap()
                .unwrap()
                .len(),
            100
        );
    }
}
