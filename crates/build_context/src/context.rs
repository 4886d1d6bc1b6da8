//! The context tar writer (what `docker build <dir>` uploads).

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::readlinkat;
use nix::sys::stat::{fstat, FileStat, SFlag};
use tar::EntryType;
use tracing::debug;

use crate::ignore::IgnoreMatcher;
use crate::pattern::clean;
use crate::ContextError;
use tar_stream::fs as fsutil;
use tar_stream::{Member, TarWriter};

/// What [`write_context_tar`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContextStats {
    /// Regular files written.
    pub files: u64,
    /// Bytes of regular-file content written.
    pub bytes: u64,
    /// Tar members written (files, directories, symlinks, fifos, devices).
    pub entries: u64,
    /// Length of the tar stream in bytes.
    pub tar_size: u64,
}

fn file_type(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

struct Writer<'a, W: Write> {
    root: &'a Path,
    tar: TarWriter<W>,
    stats: ContextStats,
    buf: Vec<u8>,
}

impl<W: Write> Writer<'_, W> {
    fn full(&self, rel: &[u8]) -> PathBuf {
        self.root.join(std::ffi::OsStr::from_bytes(rel))
    }

    fn read_err(&self, rel: &[u8], source: impl Into<io::Error>) -> ContextError {
        ContextError::Read {
            path: self.full(rel),
            source: source.into(),
        }
    }

    fn changed(&self, rel: &[u8], reason: String) -> ContextError {
        ContextError::Changed {
            path: self.full(rel),
            reason,
        }
    }

    fn header(&mut self, m: &Member<'_>) -> Result<(), ContextError> {
        self.tar.header(m).map_err(ContextError::Write)?;
        self.stats.entries += 1;
        Ok(())
    }

    /// Writes the member for `name` (at `path` in the context); returns the opened
    /// directory when it is one.
    fn member(
        &mut self,
        dir: &OwnedFd,
        name: &[u8],
        path: &mut Vec<u8>,
        st: &FileStat,
    ) -> Result<Option<OwnedFd>, ContextError> {
        let ft = file_type(st);
        let mut m = Member {
            name: &[],
            kind: EntryType::Regular,
            mode: st.st_mode & 0o7777,
            uid: 0,
            gid: 0,
            mtime: st.st_mtime,
            size: 0,
            link: None,
            dev: None,
            xattrs: &[],
        };
        match ft {
            SFlag::S_IFDIR => {
                let fd = fsutil::open_dir_at(dir, name).map_err(|e| self.read_err(path, e))?;
                path.push(b'/');
                m.name = path;
                m.kind = EntryType::Directory;
                self.header(&m)?;
                Ok(Some(fd))
            }
            SFlag::S_IFREG => {
                let mut file =
                    fsutil::open_file_at(dir, name).map_err(|e| self.read_err(path, e))?;
                let st2 = fstat(file.as_raw_fd()).map_err(|e| self.read_err(path, e))?;
                if (st2.st_dev, st2.st_ino) != (st.st_dev, st.st_ino) {
                    return Err(self.changed(path, "replaced while being read".into()));
                }
                let size = u64::try_from(st2.st_size).unwrap_or(0);
                m.name = path;
                m.size = size;
                m.mode = st2.st_mode & 0o7777;
                m.mtime = st2.st_mtime;
                self.header(&m)?;
                let mut left = size;
                while left > 0 {
                    let want = left.min(self.buf.len() as u64) as usize;
                    let n = match file.read(&mut self.buf[..want]) {
                        Ok(0) => {
                            return Err(self.changed(
                                path,
                                format!("file shrank ({} of {size} bytes read)", size - left),
                            ))
                        }
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(self.read_err(path, e)),
                    };
                    self.tar.data(&self.buf[..n]).map_err(ContextError::Write)?;
                    left -= n as u64;
                }
                let mut probe = [0u8; 1];
                if matches!(file.read(&mut probe), Ok(n) if n > 0) {
                    return Err(self.changed(path, format!("file grew beyond {size} bytes")));
                }
                self.tar.pad(size).map_err(ContextError::Write)?;
                self.stats.files += 1;
                self.stats.bytes += size;
                Ok(None)
            }
            SFlag::S_IFLNK => {
                let target = readlinkat(Some(dir.as_raw_fd()), std::ffi::OsStr::from_bytes(name))
                    .map_err(|e| self.read_err(path, e))?;
                m.name = path;
                m.kind = EntryType::Symlink;
                m.link = Some(target.as_bytes());
                self.header(&m)?;
                Ok(None)
            }
            SFlag::S_IFIFO | SFlag::S_IFCHR | SFlag::S_IFBLK => {
                m.name = path;
                m.kind = match ft {
                    SFlag::S_IFIFO => EntryType::Fifo,
                    SFlag::S_IFCHR => EntryType::Char,
                    _ => EntryType::Block,
                };
                if ft != SFlag::S_IFIFO {
                    m.dev = Some((
                        nix::sys::stat::major(st.st_rdev),
                        nix::sys::stat::minor(st.st_rdev),
                    ));
                }
                self.header(&m)?;
                Ok(None)
            }
            _ => {
                debug!(path = %String::from_utf8_lossy(path), "skipping socket");
                Ok(None)
            }
        }
    }
}

/// `path` equals `base` or lies below it.
fn at_or_below(path: &str, base: &str) -> bool {
    path.strip_prefix(base)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Writes the build context `context_dir` as an uncompressed tar to `out`, the way the
/// docker CLI does:
///
/// * depth-first, names sorted bytewise in each directory, relative member names
///   (directories with a trailing `/`), no member for the context root;
/// * paths excluded by `matcher` are left out; an excluded directory is not written but is
///   still walked when a `!` pattern might re-include something below it;
/// * `always_include` paths (relative to the context; typically the Dockerfile and
///   `.dockerignore`) and everything below them are written even when excluded; missing
///   ones are ignored;
/// * owner 0:0 with empty owner names, permission bits (setuid/setgid/sticky included) and
///   mtimes (whole seconds) kept, symlinks stored as symlinks (never followed), hardlinked
///   files stored as independent regular files, fifos and device nodes stored, sockets
///   skipped;
/// * a file or directory that cannot be opened or read is an error naming its path.
pub fn write_context_tar(
    context_dir: &Path,
    matcher: &IgnoreMatcher,
    always_include: &[&str],
    out: impl Write,
) -> Result<ContextStats, ContextError> {
    let forced: Vec<String> = always_include
        .iter()
        .map(|p| clean(p.trim_start_matches('/')))
        .filter(|p| p != "." && p != ".." && !p.starts_with("../"))
        .collect();
    let root_err = |e: nix::errno::Errno| ContextError::Read {
        path: context_dir.to_path_buf(),
        source: e.into(),
    };
    let root = fsutil::open_root(context_dir).map_err(root_err)?;
    let names = fsutil::list_dir(&root).map_err(root_err)?;
    let mut w = Writer {
        root: context_dir,
        tar: TarWriter::new(out),
        stats: ContextStats::default(),
        buf: vec![0u8; 128 * 1024],
    };
    fsutil::walk_tree(root, names, |dir, name, path| {
        let st = fsutil::lstat_at(dir, name).map_err(|e| w.read_err(path, e))?;
        let ft = file_type(&st);
        if ft == SFlag::S_IFSOCK {
            debug!(path = %String::from_utf8_lossy(path), "skipping socket");
            return Ok(None);
        }
        let rel = String::from_utf8_lossy(path).into_owned();
        let forced_hit = forced.iter().any(|f| at_or_below(&rel, f));
        let child = if !forced_hit && matcher.is_excluded(&rel) {
            let walk = ft == SFlag::S_IFDIR
                && (matcher.may_reinclude_below(&rel)
                    || forced.iter().any(|f| at_or_below(f, &rel)));
            if !walk {
                return Ok(None);
            }
            let fd = fsutil::open_dir_at(dir, name).map_err(|e| w.read_err(path, e))?;
            path.push(b'/');
            Some(fd)
        } else {
            w.member(dir, name, path, &st)?
        };
        match child {
            Some(fd) => {
                let names = fsutil::list_dir(&fd).map_err(|e| w.read_err(path, e))?;
                Ok(Some((fd, names)))
            }
            None => Ok(None),
        }
    })?;
    let fin = w.tar.finish().map_err(ContextError::Write)?;
    let mut stats = w.stats;
    stats.tar_size = fin.size;
    debug!(
        files = stats.files,
        bytes = stats.bytes,
        "build context written"
    );
    Ok(stats)
}
