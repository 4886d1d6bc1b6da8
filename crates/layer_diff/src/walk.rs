//! The upper-dir walker: an explicit depth-first stack of directory fds, each directory's
//! names sorted bytewise, every member classified with `fstatat(AT_SYMLINK_NOFOLLOW)`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::readlinkat;
use nix::sys::stat::{fstat, FileStat, SFlag};
use tar::EntryType;
use tracing::debug;

use crate::{DiffError, DiffStats, OPAQUE_WHITEOUT, OVERLAY_XATTR_PREFIX, WHITEOUT_PREFIX};
use tar_stream::fs::{self as fsutil, XattrSource};
use tar_stream::{Member, TarWriter};

const OPAQUE_XATTR: &[u8] = b"trusted.overlay.opaque";
const REDIRECT_XATTR: &[u8] = b"trusted.overlay.redirect";
const METACOPY_XATTR: &[u8] = b"trusted.overlay.metacopy";

type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

fn shown(path: &[u8]) -> String {
    let p = path.strip_suffix(b"/").unwrap_or(path);
    if p.is_empty() {
        ".".to_string()
    } else {
        String::from_utf8_lossy(p).into_owned()
    }
}

fn sys(op: &'static str, path: &[u8], errno: Errno) -> DiffError {
    DiffError::Sys {
        op,
        path: shown(path),
        errno,
    }
}

fn file_type(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

/// Splits extended attributes into the exported ones and overlayfs' own.
fn split_xattrs(all: Xattrs) -> (Xattrs, Xattrs) {
    all.into_iter()
        .partition(|(k, _)| !k.starts_with(OVERLAY_XATTR_PREFIX.as_bytes()))
}

fn has(xattrs: &Xattrs, name: &[u8]) -> Option<Vec<u8>> {
    xattrs
        .iter()
        .find(|(k, _)| k.as_slice() == name)
        .map(|(_, v)| v.clone())
}

struct Walker<W: Write> {
    tar: TarWriter<W>,
    /// (dev, ino) → member name of the first link seen.
    links: HashMap<(u64, u64), Vec<u8>>,
    stats: DiffStats,
    buf: Vec<u8>,
}

fn base_member<'a>(name: &'a [u8], kind: EntryType, st: &FileStat) -> Member<'a> {
    Member {
        name,
        kind,
        mode: st.st_mode & 0o7777,
        uid: u64::from(st.st_uid),
        gid: u64::from(st.st_gid),
        mtime: st.st_mtime,
        size: 0,
        link: None,
        dev: None,
        xattrs: &[],
    }
}

impl<W: Write> Walker<W> {
    fn header(&mut self, m: &Member<'_>) -> Result<(), DiffError> {
        self.tar.header(m).map_err(DiffError::Write)?;
        self.stats.entries += 1;
        Ok(())
    }

    /// Writes a hardlink member when this inode was already written; otherwise remembers
    /// it (when it has other links) and returns false.
    fn hardlink(&mut self, path: &[u8], st: &FileStat) -> Result<bool, DiffError> {
        if st.st_nlink <= 1 {
            return Ok(false);
        }
        let key = (st.st_dev, st.st_ino);
        if let Some(target) = self.links.get(&key).cloned() {
            let mut m = base_member(path, EntryType::Link, st);
            m.link = Some(&target);
            self.header(&m)?;
            return Ok(true);
        }
        self.links.insert(key, path.to_vec());
        Ok(false)
    }

    fn xattrs_at(&self, dir: &OwnedFd, name: &[u8], path: &[u8]) -> Result<Xattrs, DiffError> {
        fsutil::read_xattrs(&XattrSource::At(dir, name)).map_err(|source| DiffError::Read {
            path: shown(path),
            source,
        })
    }

    /// Handles one directory entry; returns the child directory to descend into.
    fn entry(
        &mut self,
        dir: &OwnedFd,
        name: &[u8],
        path: &mut Vec<u8>,
    ) -> Result<Option<OwnedFd>, DiffError> {
        let st = fsutil::lstat_at(dir, name).map_err(|e| sys("lstat", path, e))?;
        let ft = file_type(&st);
        match ft {
            SFlag::S_IFCHR if st.st_rdev == 0 => {
                // Whiteout: `d/x` → `d/.wh.x`.
                let mut wh = path[..path.len() - name.len()].to_vec();
                wh.extend_from_slice(WHITEOUT_PREFIX.as_bytes());
                wh.extend_from_slice(name);
                let mut m = base_member(&wh, EntryType::Regular, &st);
                m.mode = 0;
                self.header(&m)?;
                Ok(None)
            }
            SFlag::S_IFDIR => {
                let fd = fsutil::open_dir_at(dir, name).map_err(|e| sys("open", path, e))?;
                let st2 = fstat(fd.as_raw_fd()).map_err(|e| sys("fstat", path, e))?;
                if (st2.st_dev, st2.st_ino) != (st.st_dev, st.st_ino) {
                    return Err(DiffError::Changed {
                        path: shown(path),
                        reason: "replaced during the walk".into(),
                    });
                }
                let all =
                    fsutil::read_xattrs(&XattrSource::Fd(fd.as_raw_fd())).map_err(|source| {
                        DiffError::Read {
                            path: shown(path),
                            source,
                        }
                    })?;
                let (xattrs, overlay) = split_xattrs(all);
                if has(&overlay, REDIRECT_XATTR).is_some() {
                    return Err(DiffError::Unsupported {
                        path: shown(path),
                        reason: "renamed directory (redirect_dir); mount with redirect_dir=off"
                            .into(),
                    });
                }
                let opaque = has(&overlay, OPAQUE_XATTR).as_deref() == Some(b"y");
                path.push(b'/');
                let mut m = base_member(path, EntryType::Directory, &st2);
                m.xattrs = &xattrs;
                self.header(&m)?;
                if opaque {
                    let mut opq = path.clone();
                    opq.extend_from_slice(OPAQUE_WHITEOUT.as_bytes());
                    let mut m = base_member(&opq, EntryType::Regular, &st2);
                    m.mode = st2.st_mode & 0o777;
                    self.header(&m)?;
                }
                Ok(Some(fd))
            }
            SFlag::S_IFREG => {
                if self.hardlink(path, &st)? {
                    return Ok(None);
                }
                self.regular(dir, name, path, &st)?;
                Ok(None)
            }
            SFlag::S_IFLNK => {
                if self.hardlink(path, &st)? {
                    return Ok(None);
                }
                let target = read_link(dir, name).map_err(|e| sys("readlink", path, e))?;
                let (xattrs, _) = split_xattrs(self.xattrs_at(dir, name, path)?);
                let mut m = base_member(path, EntryType::Symlink, &st);
                m.link = Some(&target);
                m.xattrs = &xattrs;
                self.header(&m)?;
                Ok(None)
            }
            SFlag::S_IFIFO | SFlag::S_IFCHR | SFlag::S_IFBLK => {
                if self.hardlink(path, &st)? {
                    return Ok(None);
                }
                let kind = match ft {
                    SFlag::S_IFIFO => EntryType::Fifo,
                    SFlag::S_IFCHR => EntryType::Char,
                    _ => EntryType::Block,
                };
                let (xattrs, _) = split_xattrs(self.xattrs_at(dir, name, path)?);
                let mut m = base_member(path, kind, &st);
                if ft != SFlag::S_IFIFO {
                    m.dev = Some((
                        nix::sys::stat::major(st.st_rdev),
                        nix::sys::stat::minor(st.st_rdev),
                    ));
                }
                m.xattrs = &xattrs;
                self.header(&m)?;
                Ok(None)
            }
            _ => {
                debug!(path = %shown(path), "skipping socket");
                Ok(None)
            }
        }
    }

    fn regular(
        &mut self,
        dir: &OwnedFd,
        name: &[u8],
        path: &[u8],
        st: &FileStat,
    ) -> Result<(), DiffError> {
        let mut file = fsutil::open_file_at(dir, name).map_err(|e| sys("open", path, e))?;
        let st2 = fstat(file.as_raw_fd()).map_err(|e| sys("fstat", path, e))?;
        if (st2.st_dev, st2.st_ino) != (st.st_dev, st.st_ino) || file_type(&st2) != SFlag::S_IFREG {
            return Err(DiffError::Changed {
                path: shown(path),
                reason: "replaced during the walk".into(),
            });
        }
        let all = fsutil::read_xattrs(&XattrSource::Fd(file.as_raw_fd())).map_err(|source| {
            DiffError::Read {
                path: shown(path),
                source,
            }
        })?;
        let (xattrs, overlay) = split_xattrs(all);
        if has(&overlay, METACOPY_XATTR).is_some() {
            return Err(DiffError::Unsupported {
                path: shown(path),
                reason: "metadata-only copy-up (metacopy); mount with metacopy=off".into(),
            });
        }
        let size = u64::try_from(st2.st_size).unwrap_or(0);
        let mut m = base_member(path, EntryType::Regular, &st2);
        m.size = size;
        m.xattrs = &xattrs;
        self.header(&m)?;
        let mut left = size;
        while left > 0 {
            let want = left.min(self.buf.len() as u64) as usize;
            let n = match file.read(&mut self.buf[..want]) {
                Ok(0) => {
                    return Err(DiffError::Changed {
                        path: shown(path),
                        reason: format!("file shrank ({} of {size} bytes read)", size - left),
                    })
                }
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(DiffError::Read {
                        path: shown(path),
                        source,
                    })
                }
            };
            self.tar.data(&self.buf[..n]).map_err(DiffError::Write)?;
            left -= n as u64;
        }
        let mut probe = [0u8; 1];
        if matches!(file.read(&mut probe), Ok(n) if n > 0) {
            return Err(DiffError::Changed {
                path: shown(path),
                reason: format!("file grew beyond {size} bytes"),
            });
        }
        self.tar.pad(size).map_err(DiffError::Write)?;
        self.stats.content_size += size;
        Ok(())
    }
}

fn read_link(dir: &OwnedFd, name: &[u8]) -> nix::Result<Vec<u8>> {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    readlinkat(Some(dir.as_raw_fd()), std::ffi::OsStr::from_bytes(name)).map(|t| t.into_vec())
}

pub(crate) fn write_layer(upper: &Path, out: impl Write) -> Result<DiffStats, DiffError> {
    let root_shown = upper.display().to_string();
    let root = fsutil::open_root(upper).map_err(|errno| DiffError::Sys {
        op: "open",
        path: root_shown.clone(),
        errno,
    })?;
    let names = fsutil::list_dir(&root).map_err(|errno| DiffError::Sys {
        op: "readdir",
        path: root_shown,
        errno,
    })?;
    let mut w = Walker {
        tar: TarWriter::new(out),
        links: HashMap::new(),
        stats: DiffStats::default(),
        buf: vec![0u8; 128 * 1024],
    };
    fsutil::walk_tree(root, names, |dir, name, path| {
        // `entry` appends the trailing '/' to a directory it descends into.
        match w.entry(dir, name, path)? {
            Some(child) => {
                let names = fsutil::list_dir(&child).map_err(|e| sys("readdir", path, e))?;
                Ok(Some((child, names)))
            }
            None => Ok(None),
        }
    })?;
    let fin = w.tar.finish().map_err(DiffError::Write)?;
    let mut stats = w.stats;
    stats.diff_id = fin.digest;
    stats.tar_size = fin.size;
    debug!(diff_id = %stats.diff_id, entries = stats.entries, "layer written");
    Ok(stats)
}

pub(crate) fn is_empty(upper: &Path) -> Result<bool, DiffError> {
    let root_shown = upper.display().to_string();
    let root = fsutil::open_root(upper).map_err(|errno| DiffError::Sys {
        op: "open",
        path: root_shown.clone(),
        errno,
    })?;
    let names = fsutil::list_dir(&root).map_err(|errno| DiffError::Sys {
        op: "readdir",
        path: root_shown,
        errno,
    })?;
    for name in names {
        let st = fsutil::lstat_at(&root, &name).map_err(|e| sys("lstat", &name, e))?;
        if file_type(&st) != SFlag::S_IFSOCK {
            return Ok(false);
        }
    }
    Ok(true)
}
