//! Small `*at()` helpers: every operation is relative to an already-open directory fd and
//! never follows a symlink in the last component, so nothing outside the destination tree
//! can be reached through links planted by the archive.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

/// `O_DIRECTORY|O_NOFOLLOW` open flags for walking.
fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// Opens the destination root (the caller's trusted path; symlinks in it are followed).
pub(crate) fn open_root(path: &Path) -> nix::Result<OwnedFd> {
    let fd = openat(
        None,
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: `openat` just returned this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens the directory `name` inside `dir`, refusing symlinks (`ELOOP`) and non-directories
/// (`ENOTDIR`).
pub(crate) fn open_dir_at(dir: &OwnedFd, name: &OsStr) -> nix::Result<OwnedFd> {
    let fd = openat(Some(dir.as_raw_fd()), name, dir_flags(), Mode::empty())?;
    // SAFETY: `openat` just returned this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Creates (exclusively) and opens a regular file for writing, never following symlinks.
pub(crate) fn create_file_at(dir: &OwnedFd, name: &OsStr) -> nix::Result<std::fs::File> {
    let fd = openat(
        Some(dir.as_raw_fd()),
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )?;
    // SAFETY: `openat` just returned this fd and nothing else owns it.
    Ok(std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Creates directory `name` in `dir` (mode 0o700 until metadata is applied at the end).
pub(crate) fn mkdir_at(dir: &OwnedFd, name: &OsStr, mode: u32) -> nix::Result<()> {
    mkdirat(Some(dir.as_raw_fd()), name, Mode::from_bits_truncate(mode))
}

/// `lstat` of `name` inside `dir`; `None` when it does not exist.
pub(crate) fn lstat_at(dir: &OwnedFd, name: &OsStr) -> nix::Result<Option<FileStat>> {
    match fstatat(
        Some(dir.as_raw_fd()),
        name,
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    ) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether a stat result is a directory.
pub(crate) fn is_dir(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
}

/// Removes `name` from `dir` whatever it is; directories are removed recursively without
/// following any symlink inside them.
pub(crate) fn remove_at(dir: &OwnedFd, name: &OsStr) -> nix::Result<()> {
    match unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) => Ok(()),
        Err(Errno::EISDIR) => remove_tree_at(dir, name, 0),
        Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Depth bound for recursive removal (member names are at most 4096 bytes, so trees we
/// create are never deeper than this).
const MAX_REMOVE_DEPTH: usize = 2100;

fn remove_tree_at(dir: &OwnedFd, name: &OsStr, depth: usize) -> nix::Result<()> {
    if depth > MAX_REMOVE_DEPTH {
        return Err(Errno::ELOOP);
    }
    let child = open_dir_at(dir, name)?;
    let mut names = Vec::new();
    {
        let dup = child.try_clone().map_err(|_| Errno::EMFILE)?;
        let mut d = nix::dir::Dir::from(dup)?;
        for ent in d.iter() {
            let ent = ent?;
            let n = ent.file_name().to_bytes();
            if n == b"." || n == b".." {
                continue;
            }
            let is_dir = matches!(ent.file_type(), Some(nix::dir::Type::Directory));
            names.push((OsStr::from_bytes(n).to_os_string(), is_dir));
        }
    }
    for (n, is_dir) in names {
        if is_dir {
            remove_tree_at(&child, &n, depth + 1)?;
        } else {
            match unlinkat(
                Some(child.as_raw_fd()),
                n.as_os_str(),
                UnlinkatFlags::NoRemoveDir,
            ) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(Errno::EISDIR) => remove_tree_at(&child, &n, depth + 1)?,
                Err(e) => return Err(e),
            }
        }
    }
    unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::RemoveDir)
}

fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// `fsetxattr` on an open fd.
pub(crate) fn set_xattr_fd(fd: &impl AsRawFd, key: &[u8], value: &[u8]) -> io::Result<()> {
    let key = cstring(key)?;
    // SAFETY: key is a valid NUL-terminated string and value a valid slice for the call.
    let r = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            key.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `lsetxattr` on `name` inside `dir`, addressing the directory through its fd
/// (`/proc/self/fd/N/name`), so only the final component is looked up and it is not followed.
pub(crate) fn set_xattr_at_nofollow(
    dir: &OwnedFd,
    name: &OsStr,
    key: &[u8],
    value: &[u8],
) -> io::Result<()> {
    let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    p.extend_from_slice(name.as_bytes());
    let path = cstring(&p)?;
    let key = cstring(key)?;
    // SAFETY: both strings are valid NUL-terminated strings, value is a valid slice.
    let r = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            key.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_dir_at_refuses_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc", tmp.path().join("link")).unwrap();
        std::fs::write(tmp.path().join("file"), b"x").unwrap();
        let root = open_root(tmp.path()).unwrap();
        let e = open_dir_at(&root, OsStr::new("link")).unwrap_err();
        assert!(e == Errno::ELOOP || e == Errno::ENOTDIR, "{e}");
        assert_eq!(
            open_dir_at(&root, OsStr::new("file")).unwrap_err(),
            Errno::ENOTDIR
        );
    }

    #[test]
    fn remove_at_removes_trees_without_following_links() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep"), b"x").unwrap();
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("d/e/f")).unwrap();
        std::fs::write(tmp.path().join("d/e/f/g"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.path(), tmp.path().join("d/out")).unwrap();
        let root = open_root(tmp.path()).unwrap();
        remove_at(&root, OsStr::new("d")).unwrap();
        assert!(!tmp.path().join("d").exists());
        assert!(outside.path().join("keep").exists());
        // Missing names are not an error.
        remove_at(&root, OsStr::new("d")).unwrap();
    }
}
