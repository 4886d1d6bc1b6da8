//! fd-relative, no-follow filesystem helpers: directory listing, `fstatat`, opening
//! children with `O_NOFOLLOW`, and extended attributes (`f*xattr` on open fds,
//! `l*xattr` through `/proc/self/fd/<dir>/<name>` for members that cannot be opened).

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, FileStat, Mode};

/// Opens a trusted root directory (symlinks in `path` itself are followed).
pub fn open_root(path: &Path) -> nix::Result<OwnedFd> {
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
pub fn open_dir_at(dir: &OwnedFd, name: &[u8]) -> nix::Result<OwnedFd> {
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
pub fn open_file_at(dir: &OwnedFd, name: &[u8]) -> nix::Result<std::fs::File> {
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
pub fn lstat_at(dir: &OwnedFd, name: &[u8]) -> nix::Result<FileStat> {
    fstatat(
        Some(dir.as_raw_fd()),
        OsStr::from_bytes(name),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
}

/// The names in `dir` (without `.` and `..`), sorted bytewise. The listing uses its own
/// fd (reopened from `dir`), closed before returning.
pub fn list_dir(dir: &OwnedFd) -> nix::Result<Vec<Vec<u8>>> {
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

/// Where to read extended attributes from.
pub enum XattrSource<'a> {
    /// An open file or directory.
    Fd(RawFd),
    /// `name` inside the open directory `dir`, not following a final symlink.
    At(&'a OwnedFd, &'a [u8]),
}

enum Target {
    Fd(RawFd),
    Path(CString),
}

impl Target {
    fn new(src: &XattrSource<'_>) -> io::Result<Target> {
        Ok(match src {
            XattrSource::Fd(fd) => Target::Fd(*fd),
            XattrSource::At(dir, name) => {
                let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
                p.extend_from_slice(name);
                Target::Path(CString::new(p).map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in a file name")
                })?)
            }
        })
    }

    /// `*listxattr` into `buf` (or size query when `buf` is empty).
    fn list(&self, buf: &mut [u8]) -> io::Result<usize> {
        let (ptr, len) = if buf.is_empty() {
            (std::ptr::null_mut(), 0)
        } else {
            (buf.as_mut_ptr().cast::<libc::c_char>(), buf.len())
        };
        // SAFETY: `ptr`/`len` describe a writable buffer (or null/0 for a size query) and
        // the path is a valid NUL-terminated string.
        let n = unsafe {
            match self {
                Target::Fd(fd) => libc::flistxattr(*fd, ptr, len),
                Target::Path(p) => libc::llistxattr(p.as_ptr(), ptr, len),
            }
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    /// `*getxattr` into `buf` (or size query when `buf` is empty).
    fn get(&self, name: &CStr, buf: &mut [u8]) -> io::Result<usize> {
        let (ptr, len) = if buf.is_empty() {
            (std::ptr::null_mut(), 0)
        } else {
            (buf.as_mut_ptr().cast::<libc::c_void>(), buf.len())
        };
        // SAFETY: as in `list`; `name` is NUL-terminated.
        let n = unsafe {
            match self {
                Target::Fd(fd) => libc::fgetxattr(*fd, name.as_ptr(), ptr, len),
                Target::Path(p) => libc::lgetxattr(p.as_ptr(), name.as_ptr(), ptr, len),
            }
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
}

fn unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error().map(Errno::from_raw),
        Some(Errno::ENOTSUP) | Some(Errno::ENODATA)
    )
}

/// Calls `f` with a buffer big enough for the value, retrying when it grows.
fn sized_read(mut f: impl FnMut(&mut [u8]) -> io::Result<usize>) -> io::Result<Vec<u8>> {
    for _ in 0..8 {
        let size = f(&mut [])?;
        if size == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; size];
        match f(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(e) if e.raw_os_error() == Some(libc::ERANGE) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("extended attributes keep changing"))
}

/// All extended attributes (name, value), sorted by name. A filesystem without xattr
/// support yields an empty list; attributes vanishing while being read are skipped.
pub fn read_xattrs(src: &XattrSource<'_>) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let t = Target::new(src)?;
    let names = match sized_read(|b| t.list(b)) {
        Ok(n) => n,
        Err(e) if unsupported(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let cname = CString::new(name).map_err(|_| io::Error::other("bad xattr name"))?;
        match sized_read(|b| t.get(&cname, b)) {
            Ok(v) => out.push((name.to_vec(), v)),
            Err(e) if unsupported(&e) => continue,
            Err(e) => return Err(e),
        }
    }
    out.sort();
    Ok(out)
}

/// What a [`walk_tree`] visitor returns for a directory it wants to descend into: the
/// opened directory and its entry names, in the order they are to be visited.
pub type Descend = Option<(OwnedFd, Vec<Vec<u8>>)>;

/// Depth-first walk of a tree by directory fds (nothing is followed or re-resolved by
/// path). `visit(dir, name, path)` sees each entry of `root_names` and below; `path`
/// holds the entry's path relative to the root (no leading `/`). To descend, the visitor
/// appends the trailing `/` to `path` and returns the child directory with its names.
pub fn walk_tree<E>(
    root: OwnedFd,
    root_names: Vec<Vec<u8>>,
    mut visit: impl FnMut(&OwnedFd, &[u8], &mut Vec<u8>) -> Result<Descend, E>,
) -> Result<(), E> {
    struct Frame {
        fd: OwnedFd,
        names: std::vec::IntoIter<Vec<u8>>,
        /// Length of this directory's prefix (`a/b/`) in the shared path buffer.
        prefix_len: usize,
    }
    let mut stack = vec![Frame {
        fd: root,
        names: root_names.into_iter(),
        prefix_len: 0,
    }];
    let mut path: Vec<u8> = Vec::new();
    while let Some(top) = stack.last_mut() {
        let Some(name) = top.names.next() else {
            stack.pop();
            continue;
        };
        path.truncate(top.prefix_len);
        path.extend_from_slice(&name);
        if let Some((fd, names)) = visit(&top.fd, &name, &mut path)? {
            stack.push(Frame {
                fd,
                names: names.into_iter(),
                prefix_len: path.len(),
            });
        }
    }
    Ok(())
}
