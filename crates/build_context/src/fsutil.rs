//! fd-relative, no-follow filesystem helpers: directory listing, `fstatat`, opening
//! children with `O_NOFOLLOW`.

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::dir::Dir;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, FileStat, Mode};

/// Opens a trusted root directory (symlinks in `path` itself are followed).
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

/// Opens the directory `name` in `dir`, refusing symlinks.
pub(crate) fn open_dir_at(dir: &OwnedFd, name: &[u8]) -> nix::Result<OwnedFd> {
    let fd = openat(
        Some(dir.as_raw_fd()),
        OsStr::from_bytes(name),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: `openat` just returned this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens the regular file `name` in `dir` for reading, refusing symlinks.
pub(crate) fn open_file_at(dir: &OwnedFd, name: &[u8]) -> nix::Result<std::fs::File> {
    let fd = openat(
        Some(dir.as_raw_fd()),
        OsStr::from_bytes(name),
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: `openat` just returned this fd and nothing else owns it.
    Ok(std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// `lstat` of `name` in `dir`.
pub(crate) fn lstat_at(dir: &OwnedFd, name: &[u8]) -> nix::Result<FileStat> {
    fstatat(
        Some(dir.as_raw_fd()),
        OsStr::from_bytes(name),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
}

/// The names in `dir` (without `.` and `..`), sorted bytewise. The listing uses its own
/// fd (reopened from `dir`), closed before returning.
pub(crate) fn list_dir(dir: &OwnedFd) -> nix::Result<Vec<Vec<u8>>> {
    let mut d = Dir::openat(
        Some(dir.as_raw_fd()),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut names = Vec::new();
    for entry in d.iter() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        names.push(name.to_vec());
    }
    names.sort();
    Ok(names)
}
