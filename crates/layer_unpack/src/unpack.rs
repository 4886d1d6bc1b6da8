//! The tar walker: validates every member and (optionally) materialises it under the
//! destination with fd-relative, no-follow operations.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{fchmod, fchmodat, futimens, mknodat, utimensat, FchmodatFlags, Mode};
use nix::sys::stat::{SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, Gid, Uid};
use tar::EntryType;
use tracing::{debug, warn};

use crate::compression::{decompress, Compression};
use crate::digest::DigestReader;
use crate::fsops;
use crate::path::{display, normalize, PathProblem};
use crate::{UnpackError, OPAQUE_WHITEOUT, OPAQUE_XATTR, WHITEOUT_PREFIX};

/// Knobs for [`unpack_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackOptions {
    /// Apply the archive's uid/gid (`lchown`). Defaults to `true` when running as root.
    pub same_owner: bool,
    /// Apply `SCHILY.xattr.*` extended attributes. Defaults to `true`.
    pub xattrs: bool,
}

impl Default for UnpackOptions {
    fn default() -> Self {
        Self {
            same_owner: nix::unistd::geteuid().is_root(),
            xattrs: true,
        }
    }
}

/// What an unpack (or [`inspect`]) saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// `sha256:<hex>` of the uncompressed tar stream (the layer's diff_id).
    pub diff_id: String,
    /// Compression detected on the input.
    pub compression: Compression,
    /// Size in bytes of the uncompressed tar stream.
    pub tar_size: u64,
    /// Sum of the sizes of regular files' contents (hardlinks not counted twice).
    pub content_size: u64,
    /// Archive members processed (extension headers excluded).
    pub entries: u64,
    /// Regular files.
    pub files: u64,
    /// Directories.
    pub dirs: u64,
    /// Symbolic links.
    pub symlinks: u64,
    /// Hard links.
    pub hardlinks: u64,
    /// Character/block devices and fifos.
    pub devices: u64,
    /// `.wh.<name>` whiteouts.
    pub whiteouts: u64,
    /// `.wh..wh..opq` opaque-directory markers.
    pub opaque_dirs: u64,
    /// Members skipped (unknown types, devices when not permitted, aufs metadata).
    pub skipped: u64,
}

/// Unpacks a layer (plain, gzip or zstd tar, auto-detected) into `dest`, an existing
/// directory, with default [`UnpackOptions`]. On error `dest` may hold a partial tree:
/// unpack into a temporary directory and rename it into place on success.
pub fn unpack(reader: impl Read, dest: &Path) -> Result<UnpackStats, UnpackError> {
    unpack_with(reader, dest, &UnpackOptions::default())
}

/// [`unpack`] with explicit options.
pub fn unpack_with(
    reader: impl Read,
    dest: &Path,
    opts: &UnpackOptions,
) -> Result<UnpackStats, UnpackError> {
    let dec = decompress(reader)?;
    let compression = dec.compression();
    let mut writer = Writer::new(dest, opts.clone())?;
    run(dec, compression, Some(&mut writer))
}

/// Unpacks an uncompressed tar stream (no magic-byte detection) into `dest`.
pub fn unpack_tar(
    reader: impl Read,
    dest: &Path,
    opts: &UnpackOptions,
) -> Result<UnpackStats, UnpackError> {
    let mut writer = Writer::new(dest, opts.clone())?;
    run(reader, Compression::None, Some(&mut writer))
}

/// Reads and validates a whole layer (auto-detected compression) without writing anything:
/// member names, hardlink targets and data lengths are checked exactly as [`unpack`] would,
/// and the returned stats carry the diff_id and content size.
pub fn inspect(reader: impl Read) -> Result<UnpackStats, UnpackError> {
    let dec = decompress(reader)?;
    let compression = dec.compression();
    run(dec, compression, None)
}

/// [`inspect`] for an uncompressed tar stream (no magic-byte detection).
pub fn inspect_tar(reader: impl Read) -> Result<UnpackStats, UnpackError> {
    run(reader, Compression::None, None)
}

/// Computes the diff_id (`sha256:<hex>` of the decompressed stream) and the decompressed
/// size, without parsing the tar.
pub fn diff_id(reader: impl Read) -> Result<(String, u64), UnpackError> {
    let mut r = DigestReader::new(decompress(reader)?);
    r.drain().map_err(UnpackError::Archive)?;
    Ok((r.digest(), r.bytes_read()))
}

fn run<R: Read>(
    reader: R,
    compression: Compression,
    mut writer: Option<&mut Writer>,
) -> Result<UnpackStats, UnpackError> {
    let mut stats = UnpackStats {
        compression,
        ..Default::default()
    };
    let mut archive = tar::Archive::new(DigestReader::new(reader));
    let mut buf = vec![0u8; 64 * 1024];
    {
        let entries = archive.entries().map_err(UnpackError::Archive)?;
        for entry in entries {
            let mut entry = entry.map_err(UnpackError::Archive)?;
            handle_entry(&mut entry, writer.as_deref_mut(), &mut stats, &mut buf)?;
        }
    }
    let mut rest = archive.into_inner();
    rest.drain().map_err(UnpackError::Archive)?;
    stats.diff_id = rest.digest();
    stats.tar_size = rest.bytes_read();
    if let Some(w) = writer {
        w.finish()?;
    }
    debug!(diff_id = %stats.diff_id, entries = stats.entries, "layer processed");
    Ok(stats)
}

/// Metadata of one member.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    atime: TimeSpec,
    mtime: TimeSpec,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

fn parse_pax_time(v: &[u8]) -> Option<TimeSpec> {
    let s = std::str::from_utf8(v).ok()?;
    let (sec, frac) = match s.split_once('.') {
        Some((a, b)) => (a, b),
        None => (s, ""),
    };
    let sec: i64 = sec.parse().ok()?;
    let mut nsec: i64 = 0;
    if !frac.is_empty() {
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        nsec = digits.parse().ok()?;
    }
    Some(TimeSpec::new(sec, nsec))
}

fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>, path: &str) -> Result<Meta, UnpackError> {
    let h = entry.header();
    let bad = |what: &str| UnpackError::InvalidPath {
        path: path.to_string(),
        reason: format!("invalid {what} in header"),
    };
    let mode = h.mode().map_err(|_| bad("mode"))? & 0o7777;
    let uid = u32::try_from(h.uid().map_err(|_| bad("uid"))?).map_err(|_| bad("uid"))?;
    let gid = u32::try_from(h.gid().map_err(|_| bad("gid"))?).map_err(|_| bad("gid"))?;
    let secs = h.mtime().map_err(|_| bad("mtime"))?;
    let mut mtime = TimeSpec::new(i64::try_from(secs).unwrap_or(i64::MAX), 0);
    let mut atime = None;
    let mut xattrs = Vec::new();
    if let Some(exts) = entry.pax_extensions().map_err(UnpackError::Archive)? {
        for ext in exts {
            let ext = ext.map_err(UnpackError::Archive)?;
            let key = ext.key_bytes();
            if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                if !name.is_empty() {
                    xattrs.push((name.to_vec(), ext.value_bytes().to_vec()));
                }
            } else if key == b"mtime" {
                if let Some(t) = parse_pax_time(ext.value_bytes()) {
                    mtime = t;
                }
            } else if key == b"atime" {
                atime = parse_pax_time(ext.value_bytes());
            }
        }
    }
    Ok(Meta {
        mode,
        uid,
        gid,
        atime: atime.unwrap_or(mtime),
        mtime,
        xattrs,
    })
}

/// The kinds of member we act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Device(SFlag),
    Skip,
}

fn classify(t: EntryType, raw_path: &[u8]) -> Kind {
    match t {
        EntryType::Regular if raw_path.ends_with(b"/") => Kind::Dir, // pre-POSIX dirs
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => Kind::File,
        EntryType::Directory => Kind::Dir,
        EntryType::Symlink => Kind::Symlink,
        EntryType::Link => Kind::Hardlink,
        EntryType::Char => Kind::Device(SFlag::S_IFCHR),
        EntryType::Block => Kind::Device(SFlag::S_IFBLK),
        EntryType::Fifo => Kind::Device(SFlag::S_IFIFO),
        _ => Kind::Skip,
    }
}

fn path_error(raw: &[u8], p: PathProblem) -> UnpackError {
    let path = String::from_utf8_lossy(raw).into_owned();
    match p {
        PathProblem::Escapes => UnpackError::PathEscape { path },
        PathProblem::Invalid(reason) => UnpackError::InvalidPath {
            path,
            reason: reason.to_string(),
        },
    }
}

/// Copies an entry's data into `out` (or nowhere), distinguishing archive read errors from
/// write errors and checking the length.
fn copy_data<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    mut out: Option<&mut std::fs::File>,
    buf: &mut [u8],
    path: &str,
) -> Result<u64, UnpackError> {
    let expected = entry.size();
    let mut got: u64 = 0;
    loop {
        let n = match entry.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(UnpackError::Archive(e)),
        };
        got += n as u64;
        if let Some(f) = out.as_deref_mut() {
            f.write_all(&buf[..n])
                .map_err(|e| UnpackError::io(format!("writing {path}"), e))?;
        }
    }
    if got != expected {
        return Err(UnpackError::Truncated {
            path: path.to_string(),
            expected,
            got,
        });
    }
    Ok(got)
}

fn handle_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    writer: Option<&mut Writer>,
    stats: &mut UnpackStats,
    buf: &mut [u8],
) -> Result<(), UnpackError> {
    let etype = entry.header().entry_type();
    if matches!(
        etype,
        EntryType::XGlobalHeader
            | EntryType::XHeader
            | EntryType::GNULongName
            | EntryType::GNULongLink
    ) {
        return Ok(());
    }
    let raw_path = entry.path_bytes().into_owned();
    let comps = normalize(&raw_path).map_err(|p| path_error(&raw_path, p))?;
    let shown = display(&comps);
    stats.entries += 1;
    let kind = classify(etype, &raw_path);

    // Whiteouts and aufs metadata.
    if let Some(last) = comps.last() {
        let name = last.as_bytes();
        if name == OPAQUE_WHITEOUT.as_bytes() {
            stats.opaque_dirs += 1;
            if let Some(w) = writer {
                w.opaque(&comps[..comps.len() - 1])?;
            }
            return Ok(());
        }
        if name.starts_with(b".wh..wh.") {
            debug!(path = %shown, "skipping aufs metadata");
            stats.skipped += 1;
            return Ok(());
        }
        if let Some(target) = name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            if target.is_empty() || target == b"." || target == b".." {
                return Err(UnpackError::InvalidPath {
                    path: shown,
                    reason: "invalid whiteout name".into(),
                });
            }
            stats.whiteouts += 1;
            if let Some(w) = writer {
                let meta = read_meta(entry, &shown)?;
                w.whiteout(&comps[..comps.len() - 1], OsStr::from_bytes(target), &meta)?;
            }
            return Ok(());
        }
    }

    if comps.is_empty() && kind != Kind::Dir && kind != Kind::Skip {
        return Err(UnpackError::InvalidPath {
            path: String::from_utf8_lossy(&raw_path).into_owned(),
            reason: "only a directory may name the layer root".into(),
        });
    }

    match kind {
        Kind::Skip => {
            warn!(path = %shown, entry_type = ?etype, "skipping unsupported tar member");
            stats.skipped += 1;
        }
        Kind::Dir => {
            stats.dirs += 1;
            if let Some(w) = writer {
                let meta = read_meta(entry, &shown)?;
                w.dir(&comps, &meta, &shown)?;
            }
        }
        Kind::File => {
            stats.files += 1;
            match writer {
                Some(w) => {
                    let meta = read_meta(entry, &shown)?;
                    let mut file = w.begin_file(&comps, &shown)?;
                    stats.content_size += copy_data(entry, Some(&mut file), buf, &shown)?;
                    w.finish_file(file, &meta, &shown)?;
                }
                None => stats.content_size += copy_data(entry, None, buf, &shown)?,
            }
        }
        Kind::Symlink => {
            stats.symlinks += 1;
            let target = entry
                .link_name_bytes()
                .map(|c| c.into_owned())
                .filter(|t| !t.is_empty())
                .ok_or_else(|| UnpackError::InvalidPath {
                    path: shown.clone(),
                    reason: "symlink without a target".into(),
                })?;
            if let Some(w) = writer {
                let meta = read_meta(entry, &shown)?;
                w.symlink(&comps, &target, &meta, &shown)?;
            }
        }
        Kind::Hardlink => {
            stats.hardlinks += 1;
            let raw_target = entry
                .link_name_bytes()
                .map(|c| c.into_owned())
                .unwrap_or_default();
            let target_shown = String::from_utf8_lossy(&raw_target).into_owned();
            let invalid = |reason: &str| UnpackError::InvalidHardlink {
                path: shown.clone(),
                target: target_shown.clone(),
                reason: reason.to_string(),
            };
            let target = match normalize(&raw_target) {
                Ok(t) if t.is_empty() => return Err(invalid("target is the layer root")),
                Ok(t) => t,
                Err(PathProblem::Escapes) => return Err(invalid("target escapes the layer root")),
                Err(PathProblem::Invalid(r)) => return Err(invalid(r)),
            };
            if let Some(w) = writer {
                if target == comps {
                    warn!(path = %shown, "ignoring hardlink to itself");
                    stats.skipped += 1;
                } else {
                    w.hardlink(&comps, &target, &shown, &target_shown)?;
                }
            }
        }
        Kind::Device(kind) => {
            stats.devices += 1;
            if let Some(w) = writer {
                let meta = read_meta(entry, &shown)?;
                let major = entry.header().device_major().ok().flatten().unwrap_or(0);
                let minor = entry.header().device_minor().ok().flatten().unwrap_or(0);
                if !w.device(&comps, kind, major, minor, &meta, &shown)? {
                    stats.skipped += 1;
                }
            }
        }
    }
    Ok(())
}

/// Deferred directory metadata (applied once all children exist).
struct DirMeta {
    mode: u32,
    atime: TimeSpec,
    mtime: TimeSpec,
}

/// Materialises members under the destination root.
struct Writer {
    root: OwnedFd,
    opts: UnpackOptions,
    is_root: bool,
    /// Last parent directory opened (path components, fd).
    cache: Option<(Vec<OsString>, OwnedFd)>,
    dirs: HashMap<Vec<OsString>, DirMeta>,
}

fn sys(op: &'static str, path: &str, errno: Errno) -> UnpackError {
    UnpackError::Sys {
        op,
        path: path.to_string(),
        errno,
    }
}

fn dup(fd: &OwnedFd) -> Result<OwnedFd, UnpackError> {
    fd.try_clone()
        .map_err(|e| UnpackError::io("duplicating a directory fd", e))
}

impl Writer {
    fn new(dest: &Path, opts: UnpackOptions) -> Result<Self, UnpackError> {
        let root =
            fsops::open_root(dest).map_err(|e| sys("open", &dest.display().to_string(), e))?;
        Ok(Self {
            root,
            opts,
            is_root: nix::unistd::geteuid().is_root(),
            cache: None,
            dirs: HashMap::new(),
        })
    }

    /// Walks `comps` from the root one component at a time, refusing symlinks and
    /// non-directories; missing components are created (0755) when `create`.
    fn walk(&self, comps: &[OsString], create: bool) -> Result<OwnedFd, UnpackError> {
        let mut cur = dup(&self.root)?;
        for (i, c) in comps.iter().enumerate() {
            let next = match fsops::open_dir_at(&cur, c) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) if create => {
                    match fsops::mkdir_at(&cur, c, 0o755) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(sys("mkdir", &display(&comps[..=i]), e)),
                    }
                    fsops::open_dir_at(&cur, c)
                        .map_err(|e| sys("open", &display(&comps[..=i]), e))?
                }
                Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => {
                    return Err(UnpackError::UnsafePath {
                        path: display(&comps[..=i]),
                        reason: "a parent component is a symlink or not a directory".into(),
                    })
                }
                Err(e) => return Err(sys("open", &display(&comps[..=i]), e)),
            };
            cur = next;
        }
        Ok(cur)
    }

    /// The directory that will contain a member, created if missing (cached).
    fn parent(&mut self, parent: &[OsString]) -> Result<OwnedFd, UnpackError> {
        if let Some((p, fd)) = &self.cache {
            if p.as_slice() == parent {
                return dup(fd);
            }
        }
        let fd = self.walk(parent, true)?;
        self.cache = Some((parent.to_vec(), dup(&fd)?));
        Ok(fd)
    }

    /// Clears the way for a new member `name` in `dir`. Returns true when an existing
    /// directory is kept (only when `want_dir`).
    fn clear(
        &mut self,
        dir: &OwnedFd,
        name: &OsStr,
        want_dir: bool,
        shown: &str,
    ) -> Result<bool, UnpackError> {
        match fsops::lstat_at(dir, name).map_err(|e| sys("lstat", shown, e))? {
            None => Ok(false),
            Some(st) if want_dir && fsops::is_dir(&st) => Ok(true),
            Some(_) => {
                self.cache = None;
                fsops::remove_at(dir, name).map_err(|e| sys("remove", shown, e))?;
                Ok(false)
            }
        }
    }

    fn xattrs_fd(&self, fd: &impl AsRawFd, meta: &Meta, shown: &str) {
        if !self.opts.xattrs {
            return;
        }
        for (k, v) in &meta.xattrs {
            if k.starts_with(b"trusted.overlay.") {
                warn!(path = %shown, "ignoring overlay xattr from the archive");
                continue;
            }
            if let Err(e) = fsops::set_xattr_fd(fd, k, v) {
                warn!(path = %shown, xattr = %String::from_utf8_lossy(k), error = %e, "cannot set xattr");
            }
        }
    }

    fn xattrs_at(&self, dir: &OwnedFd, name: &OsStr, meta: &Meta, shown: &str) {
        if !self.opts.xattrs {
            return;
        }
        for (k, v) in &meta.xattrs {
            if k.starts_with(b"trusted.overlay.") {
                warn!(path = %shown, "ignoring overlay xattr from the archive");
                continue;
            }
            if let Err(e) = fsops::set_xattr_at_nofollow(dir, name, k, v) {
                warn!(path = %shown, xattr = %String::from_utf8_lossy(k), error = %e, "cannot set xattr");
            }
        }
    }

    fn chown_at(
        &self,
        dir: &OwnedFd,
        name: &OsStr,
        meta: &Meta,
        shown: &str,
    ) -> Result<(), UnpackError> {
        if self.opts.same_owner {
            fchownat(
                Some(dir.as_raw_fd()),
                name,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| sys("lchown", shown, e))?;
        }
        Ok(())
    }

    fn times_at(
        &self,
        dir: &OwnedFd,
        name: &OsStr,
        meta: &Meta,
        shown: &str,
    ) -> Result<(), UnpackError> {
        utimensat(
            Some(dir.as_raw_fd()),
            name,
            &meta.atime,
            &meta.mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| sys("utimensat", shown, e))
    }

    fn dir(&mut self, comps: &[OsString], meta: &Meta, shown: &str) -> Result<(), UnpackError> {
        let fd = match comps.split_last() {
            None => dup(&self.root)?,
            Some((name, parent)) => {
                let pfd = self.parent(parent)?;
                if !self.clear(&pfd, name, true, shown)? {
                    fsops::mkdir_at(&pfd, name, 0o700).map_err(|e| sys("mkdir", shown, e))?;
                }
                fsops::open_dir_at(&pfd, name).map_err(|e| sys("open", shown, e))?
            }
        };
        if self.opts.same_owner {
            fchown(
                fd.as_raw_fd(),
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
            )
            .map_err(|e| sys("chown", shown, e))?;
        }
        self.xattrs_fd(&fd, meta, shown);
        self.dirs.insert(
            comps.to_vec(),
            DirMeta {
                mode: meta.mode,
                atime: meta.atime,
                mtime: meta.mtime,
            },
        );
        Ok(())
    }

    fn begin_file(
        &mut self,
        comps: &[OsString],
        shown: &str,
    ) -> Result<std::fs::File, UnpackError> {
        let (name, parent) = comps.split_last().ok_or_else(|| UnpackError::InvalidPath {
            path: shown.to_string(),
            reason: "empty name".into(),
        })?;
        let pfd = self.parent(parent)?;
        self.clear(&pfd, name, false, shown)?;
        fsops::create_file_at(&pfd, name).map_err(|e| sys("create", shown, e))
    }

    fn finish_file(
        &mut self,
        file: std::fs::File,
        meta: &Meta,
        shown: &str,
    ) -> Result<(), UnpackError> {
        let fd = file.as_raw_fd();
        if self.opts.same_owner {
            fchown(
                fd,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
            )
            .map_err(|e| sys("chown", shown, e))?;
        }
        // chmod after chown: chown clears setuid/setgid.
        fchmod(fd, Mode::from_bits_truncate(meta.mode)).map_err(|e| sys("chmod", shown, e))?;
        // xattrs after chown too (chown drops security.capability).
        self.xattrs_fd(&file, meta, shown);
        futimens(fd, &meta.atime, &meta.mtime).map_err(|e| sys("futimens", shown, e))?;
        Ok(())
    }

    fn symlink(
        &mut self,
        comps: &[OsString],
        target: &[u8],
        meta: &Meta,
        shown: &str,
    ) -> Result<(), UnpackError> {
        let Some((name, parent)) = comps.split_last() else {
            return Ok(());
        };
        let pfd = self.parent(parent)?;
        self.clear(&pfd, name, false, shown)?;
        symlinkat(
            OsStr::from_bytes(target),
            Some(pfd.as_raw_fd()),
            name.as_os_str(),
        )
        .map_err(|e| sys("symlink", shown, e))?;
        self.chown_at(&pfd, name, meta, shown)?;
        self.xattrs_at(&pfd, name, meta, shown);
        self.times_at(&pfd, name, meta, shown)
    }

    fn hardlink(
        &mut self,
        comps: &[OsString],
        target: &[OsString],
        shown: &str,
        target_shown: &str,
    ) -> Result<(), UnpackError> {
        let invalid = |reason: String| UnpackError::InvalidHardlink {
            path: shown.to_string(),
            target: target_shown.to_string(),
            reason,
        };
        let (Some((name, parent)), Some((tname, tparent))) =
            (comps.split_last(), target.split_last())
        else {
            return Err(invalid("empty name".into()));
        };
        let tfd = self
            .walk(tparent, false)
            .map_err(|e| invalid(e.to_string()))?;
        match fsops::lstat_at(&tfd, tname) {
            Ok(Some(st)) if fsops::is_dir(&st) => {
                return Err(invalid("target is a directory".into()))
            }
            Ok(Some(_)) => {}
            Ok(None) => return Err(invalid("target does not exist".into())),
            Err(e) => return Err(invalid(e.to_string())),
        }
        let pfd = self.parent(parent)?;
        self.clear(&pfd, name, false, shown)?;
        linkat(
            Some(tfd.as_raw_fd()),
            tname.as_os_str(),
            Some(pfd.as_raw_fd()),
            name.as_os_str(),
            AtFlags::empty(),
        )
        .map_err(|e| sys("link", shown, e))
    }

    /// Returns false when the node was skipped (not permitted).
    fn device(
        &mut self,
        comps: &[OsString],
        kind: SFlag,
        major: u32,
        minor: u32,
        meta: &Meta,
        shown: &str,
    ) -> Result<bool, UnpackError> {
        let Some((name, parent)) = comps.split_last() else {
            return Ok(false);
        };
        let pfd = self.parent(parent)?;
        self.clear(&pfd, name, false, shown)?;
        let dev = libc::makedev(major, minor);
        match mknodat(
            Some(pfd.as_raw_fd()),
            name.as_os_str(),
            kind,
            Mode::from_bits_truncate(0o600),
            dev,
        ) {
            Ok(()) => {}
            Err(Errno::EPERM) if !self.is_root && kind != SFlag::S_IFIFO => {
                warn!(path = %shown, "skipping device node (not permitted)");
                return Ok(false);
            }
            Err(e) => return Err(sys("mknod", shown, e)),
        }
        self.chown_at(&pfd, name, meta, shown)?;
        // Just created as a non-symlink, so following is harmless here (Linux has no
        // lchmod for fchmodat).
        fchmodat(
            Some(pfd.as_raw_fd()),
            name.as_os_str(),
            Mode::from_bits_truncate(meta.mode),
            FchmodatFlags::FollowSymlink,
        )
        .map_err(|e| sys("chmod", shown, e))?;
        self.xattrs_at(&pfd, name, meta, shown);
        self.times_at(&pfd, name, meta, shown)?;
        Ok(true)
    }

    fn whiteout(
        &mut self,
        parent: &[OsString],
        name: &OsStr,
        meta: &Meta,
    ) -> Result<(), UnpackError> {
        let mut full = parent.to_vec();
        full.push(name.to_os_string());
        let shown = display(&full);
        let pfd = self.parent(parent)?;
        self.clear(&pfd, name, false, &shown)?;
        mknodat(
            Some(pfd.as_raw_fd()),
            name,
            SFlag::S_IFCHR,
            Mode::empty(),
            libc::makedev(0, 0),
        )
        .map_err(|e| sys("mknod (whiteout)", &shown, e))?;
        self.chown_at(&pfd, name, meta, &shown)?;
        Ok(())
    }

    fn opaque(&mut self, dir: &[OsString]) -> Result<(), UnpackError> {
        let fd = self.parent(dir)?;
        fsops::set_xattr_fd(&fd, OPAQUE_XATTR.as_bytes(), b"y")
            .map_err(|e| UnpackError::io(format!("setting {OPAQUE_XATTR} on {}", display(dir)), e))
    }

    /// Applies deferred directory modes and times, deepest first.
    fn finish(&mut self) -> Result<(), UnpackError> {
        self.cache = None;
        let mut dirs: Vec<_> = std::mem::take(&mut self.dirs).into_iter().collect();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.0.len()));
        for (comps, m) in dirs {
            let shown = display(&comps);
            let fd = match comps.split_last() {
                None => dup(&self.root)?,
                Some((name, parent)) => {
                    let opened = self
                        .walk(parent, false)
                        .ok()
                        .and_then(|p| fsops::open_dir_at(&p, name).ok());
                    match opened {
                        Some(fd) => fd,
                        None => {
                            debug!(path = %shown, "directory replaced later in the layer");
                            continue;
                        }
                    }
                }
            };
            fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(m.mode))
                .map_err(|e| sys("chmod", &shown, e))?;
            futimens(fd.as_raw_fd(), &m.atime, &m.mtime).map_err(|e| sys("futimens", &shown, e))?;
        }
        Ok(())
    }
}
