//! COPY and ADD: resolving sources (context, another stage, here-documents, local
//! archives), the checksum that keys the cache, and writing them into a root
//! filesystem.
//!
//! Sources are streamed as a tar into [`layer_unpack`], which refuses to follow
//! symlinks below the destination; the destination directory itself is resolved inside
//! the image root ([`resolve_in_root`]), so an image's own symlinks (`/lib` →
//! `usr/lib`) work and none can lead out of the root.

use std::io::{BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use build_context::IgnoreMatcher;
use sha2::{Digest, Sha256};

use crate::error::{BuildError, Result};
use crate::rootfs::{clean, escapes, resolve_in_root};

/// What a COPY/ADD step was asked to do, with variables already expanded.
pub(crate) struct CopyRequest {
    pub add: bool,
    /// Where sources are read from: the context directory or a mounted stage/image.
    pub root: PathBuf,
    pub from_context: bool,
    pub ignore: Arc<IgnoreMatcher>,
    pub srcs: Vec<String>,
    /// Here-documents: (name, content).
    pub heredocs: Vec<(String, Vec<u8>)>,
    pub dest: String,
    pub workdir: String,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    /// ADD of URLs, already downloaded: URL → (file name, local file).
    pub downloads: Vec<(String, String, PathBuf)>,
    /// `--exclude` patterns (matched like .dockerignore, relative to the source root).
    pub exclude: Option<Arc<IgnoreMatcher>>,
}

enum Source {
    /// A file or directory on the host (resolved inside the source root).
    Path(PathBuf),
    /// A here-document.
    Data(Vec<u8>),
    /// ADD of a local tar archive: extracted.
    Archive(PathBuf),
}

struct Item {
    source: Source,
    /// Base name used when the destination is a directory.
    name: String,
    is_dir: bool,
}

/// A resolved COPY/ADD, ready to apply.
pub(crate) struct CopyPlan {
    /// `file`, `dir` or `multi` (Docker's history prefix).
    pub kind: &'static str,
    /// Hex sha256 over the sources' paths, types, modes and contents.
    pub checksum: String,
    /// The destination, absolute (relative ones are taken from WORKDIR).
    pub dest_abs: String,
    dest_is_dir: bool,
    items: Vec<Item>,
    chown: Option<String>,
    chmod: Option<u32>,
    /// The context's .dockerignore and the context root (none for other sources).
    ignore: Option<(Arc<IgnoreMatcher>, PathBuf)>,
    /// `--exclude` patterns and the source root.
    exclude: Option<(Arc<IgnoreMatcher>, PathBuf)>,
}

impl CopyPlan {
    /// Whether a host path is excluded by `--exclude` or (below the context) by
    /// .dockerignore.
    fn skipped(&self, p: &Path) -> bool {
        if let Some((m, root)) = &self.exclude {
            if let Ok(rel) = p.strip_prefix(root) {
                let rel = rel.to_string_lossy();
                if !rel.is_empty() && m.is_excluded(&rel) {
                    return true;
                }
            }
        }
        let Some((m, root)) = &self.ignore else {
            return false;
        };
        match p.strip_prefix(root) {
            Ok(rel) => {
                let rel = rel.to_string_lossy();
                !rel.is_empty()
                    && (m.is_excluded(&rel) || rel.starts_with(".wh.") || rel.contains("/.wh."))
            }
            Err(_) => false,
        }
    }
}

fn not_found(src: &str) -> BuildError {
    BuildError::Copy(format!(
        "COPY failed: file not found in build context or excluded by .dockerignore: stat {src}: file does not exist"
    ))
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn heredoc_name(src: &str) -> Option<String> {
    let rest = src.strip_prefix("<<")?;
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    Some(rest.trim_matches(|c| c == '"' || c == '\'').to_string())
}

pub(crate) fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

const BZIP2_MAGIC: &[u8] = b"BZh";
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0];

/// Opens a file ADD may extract, undoing bzip2 or xz compression; gzip and zstd are
/// left to `layer_unpack`, which detects them itself.
fn open_archive(p: &Path) -> std::io::Result<Box<dyn Read + Send>> {
    let mut f = std::fs::File::open(p)?;
    let mut magic = [0u8; 6];
    let n = f.read(&mut magic)?;
    use std::io::Seek;
    f.seek(std::io::SeekFrom::Start(0))?;
    if magic[..n].starts_with(BZIP2_MAGIC) {
        return Ok(Box::new(bzip2::read::MultiBzDecoder::new(BufReader::new(
            f,
        ))));
    }
    if magic[..n].starts_with(XZ_MAGIC) {
        // lzma-rs decodes into a writer: run it on a thread feeding a pipe.
        let (r, w) = std::io::pipe()?;
        let ok = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ok2 = ok.clone();
        std::thread::spawn(move || {
            let mut w = std::io::BufWriter::new(w);
            let res = lzma_rs::xz_decompress(&mut BufReader::new(f), &mut w);
            if res.is_ok() && w.flush().is_ok() {
                ok2.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        });
        return Ok(Box::new(crate::builder::CheckedPipe {
            inner: BufReader::new(r),
            ok,
        }));
    }
    Ok(Box::new(BufReader::new(f)))
}

/// Whether a file is a tar archive (plain, gzip, zstd, bzip2 or xz) ADD should extract.
fn is_archive(p: &Path) -> bool {
    let Ok(f) = open_archive(p) else {
        return false;
    };
    let Ok(dec) = layer_unpack::decompress(f) else {
        return false;
    };
    let mut block = [0u8; 512];
    let mut r = dec;
    let mut got = 0;
    while got < block.len() {
        match r.read(&mut block[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(_) => return false,
        }
    }
    if got < 512 {
        return false;
    }
    // A tar header: "ustar" magic, or a valid v7 checksum.
    if &block[257..262] == b"ustar" {
        return true;
    }
    let stored = std::str::from_utf8(&block[148..156])
        .ok()
        .map(|s| s.trim_matches(|c: char| c == '\0' || c == ' '))
        .and_then(|s| u32::from_str_radix(s, 8).ok());
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                *b as u32
            }
        })
        .sum();
    stored == Some(sum) && block[0] != 0
}

/// Every path below `dir` (relative to it, sorted), skipping what `skip` says.
fn walk(
    dir: &Path,
    rel: &str,
    skip: &dyn Fn(&str) -> bool,
    out: &mut Vec<(String, PathBuf)>,
) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| BuildError::Copy(format!("reading {}: {e}", dir.display())))?
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let r = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        if skip(&r) {
            continue;
        }
        let p = e.path();
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        out.push((r.clone(), p.clone()));
        if is_dir {
            walk(&p, &r, skip, out)?;
        }
    }
    Ok(())
}

fn hash_tree(h: &mut Sha256, top: &Path, skip: &dyn Fn(&str) -> bool) -> Result<()> {
    let mut entries = vec![(String::new(), top.to_path_buf())];
    if std::fs::symlink_metadata(top)?.is_dir() {
        walk(top, "", skip, &mut entries)?;
    }
    for (rel, p) in entries {
        let m = std::fs::symlink_metadata(&p)?;
        h.update(rel.as_bytes());
        h.update(format!("\0{:o}\0", m.mode()).as_bytes());
        if m.file_type().is_symlink() {
            h.update(std::fs::read_link(&p)?.as_os_str().as_encoded_bytes());
        } else if m.is_file() {
            let mut f = std::fs::File::open(&p)
                .map_err(|e| BuildError::Copy(format!("reading {}: {e}", p.display())))?;
            let mut fh = Sha256::new();
            std::io::copy(&mut f, &mut fh)?;
            h.update(fh.finalize());
        }
        h.update(b"\n");
    }
    Ok(())
}

/// Resolves a COPY/ADD's sources and computes their checksum.
pub(crate) fn plan(req: CopyRequest) -> Result<CopyPlan> {
    let kw = if req.add { "ADD" } else { "COPY" };
    let chmod = match &req.chmod {
        Some(c) => Some(
            u32::from_str_radix(c, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .ok_or_else(|| BuildError::Invalid(format!("invalid chmod parameter: {c}")))?,
        ),
        None => None,
    };
    let ctx_skip = |rel: &str| -> bool {
        if req.exclude.as_ref().is_some_and(|m| m.is_excluded(rel)) {
            return true;
        }
        req.from_context
            && (req.ignore.is_excluded(rel) || rel.starts_with(".wh.") || rel.contains("/.wh."))
    };
    let mut items: Vec<Item> = Vec::new();
    let mut used_heredocs = Vec::new();
    for src in &req.srcs {
        if let Some(name) = heredoc_name(src) {
            if let Some((n, data)) = req.heredocs.iter().find(|(n, _)| *n == name) {
                used_heredocs.push(n.clone());
                items.push(Item {
                    source: Source::Data(data.clone()),
                    name: n.clone(),
                    is_dir: false,
                });
                continue;
            }
        }
        if is_url(src) {
            if !req.add {
                return Err(BuildError::Copy(format!(
                    "COPY failed: source can't be a URL for COPY: {src}"
                )));
            }
            // Downloaded by the builder beforehand; never extracted (as in Docker).
            let (_, name, file) = req
                .downloads
                .iter()
                .find(|(u, _, _)| u == src)
                .ok_or_else(|| BuildError::Internal(format!("{src} was not downloaded")))?;
            items.push(Item {
                source: Source::Path(file.clone()),
                name: name.clone(),
                is_dir: false,
            });
            continue;
        }
        if req.from_context && escapes(src.trim_start_matches('/')) {
            return Err(BuildError::Copy(format!(
                "{kw} failed: forbidden path outside the build context: {src} ()"
            )));
        }
        let rel_clean: String = clean(src)
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        if has_glob(src) {
            let pat = glob::Pattern::new(&rel_clean)
                .map_err(|e| BuildError::Invalid(format!("invalid source pattern {src}: {e}")))?;
            let opts = glob::MatchOptions {
                case_sensitive: true,
                require_literal_separator: true,
                require_literal_leading_dot: false,
            };
            let mut all = Vec::new();
            walk(&req.root, "", &ctx_skip, &mut all)?;
            let mut matched = 0;
            for (rel, p) in all {
                if pat.matches_with(&rel, opts) {
                    matched += 1;
                    let m = std::fs::symlink_metadata(&p)?;
                    items.push(Item {
                        source: Source::Path(p.clone()),
                        name: rel.rsplit('/').next().unwrap_or(&rel).to_string(),
                        is_dir: m.is_dir(),
                    });
                }
            }
            if matched == 0 {
                return Err(BuildError::Copy(format!(
                    "{kw} failed: no source files were specified"
                )));
            }
            continue;
        }
        if !rel_clean.is_empty() && ctx_skip(&rel_clean) {
            return Err(not_found(src));
        }
        let p = resolve_in_root(&req.root, &rel_clean)?;
        let m = std::fs::metadata(&p).map_err(|_| not_found(src))?;
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let source = if req.add && m.is_file() && is_archive(&p) {
            Source::Archive(p)
        } else {
            Source::Path(p)
        };
        items.push(Item {
            source,
            name,
            is_dir: m.is_dir(),
        });
    }
    for (n, data) in &req.heredocs {
        if !used_heredocs.contains(n)
            && !req
                .srcs
                .iter()
                .any(|s| heredoc_name(s).as_deref() == Some(n))
        {
            items.push(Item {
                source: Source::Data(data.clone()),
                name: n.clone(),
                is_dir: false,
            });
        }
    }
    if items.is_empty() {
        return Err(BuildError::Copy(format!(
            "{kw} failed: no source files were specified"
        )));
    }
    let many = items.len() > 1 || req.srcs.iter().any(|s| has_glob(s));
    let dest_is_dir = req.dest.ends_with('/') || req.dest == "." || req.dest.ends_with("/.");
    if items.len() > 1 && !dest_is_dir {
        return Err(BuildError::Copy(format!(
            "When using {kw} with more than one source file, the destination must be a directory and end with a /"
        )));
    }
    let dest_abs = if req.dest.starts_with('/') {
        req.dest.clone()
    } else {
        let wd = if req.workdir.is_empty() {
            "/"
        } else {
            &req.workdir
        };
        format!("{}/{}", wd.trim_end_matches('/'), req.dest)
    };

    let mut h = Sha256::new();
    for it in &items {
        h.update(format!("item\0{}\0", it.name).as_bytes());
        match &it.source {
            Source::Data(d) => h.update(Sha256::digest(d)),
            Source::Path(p) | Source::Archive(p) => {
                let top_rel = p
                    .strip_prefix(&req.root)
                    .map(|r| r.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let skip = |rel: &str| {
                    let full = if top_rel.is_empty() {
                        rel.to_string()
                    } else {
                        format!("{top_rel}/{rel}")
                    };
                    ctx_skip(&full)
                };
                hash_tree(&mut h, p, &skip)?;
            }
        }
    }
    let kind = if many || items.len() > 1 {
        "multi"
    } else if items[0].is_dir {
        "dir"
    } else {
        "file"
    };
    Ok(CopyPlan {
        kind,
        checksum: hex::encode(h.finalize()),
        dest_abs,
        dest_is_dir,
        items,
        chown: req.chown.clone(),
        chmod,
        ignore: req
            .from_context
            .then(|| (req.ignore.clone(), req.root.clone())),
        exclude: req.exclude.clone().map(|m| (m, req.root.clone())),
    })
}

/// Looks up a user or group name in the image's passwd/group file.
fn lookup_id(root: &Path, file: &str, name: &str) -> Option<(u32, Option<u32>)> {
    let p = resolve_in_root(root, file).ok()?;
    let text = std::fs::read_to_string(p).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() >= 4 && f[0] == name {
            let id = f[2].parse().ok()?;
            let gid = f[3].parse().ok();
            Some((id, gid))
        } else if f.len() >= 3 && f[0] == name {
            Some((f[2].parse().ok()?, None))
        } else {
            None
        }
    })
}

/// `--chown=user[:group]` against the image's /etc/passwd and /etc/group.
fn resolve_chown(root: &Path, spec: &str) -> Result<(u32, u32)> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (uid, primary) = match u.parse::<u32>() {
        Ok(n) => (n, None),
        Err(_) => lookup_id(root, "/etc/passwd", u).ok_or_else(|| {
            BuildError::Invalid(format!(
                "unable to convert uid/gid chown string to host mapping: can't find uid for user {u}: no such user: {u}"
            ))
        })?,
    };
    let gid = match g {
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup_id(root, "/etc/group", g)
                .map(|x| x.0)
                .ok_or_else(|| {
                    BuildError::Invalid(format!(
                        "unable to convert uid/gid chown string to host mapping: can't find gid for group {g}: no such group: {g}"
                    ))
                })?,
        },
        None => primary.unwrap_or(uid),
    };
    Ok((uid, gid))
}

struct Owner {
    uid: u32,
    gid: u32,
    chmod: Option<u32>,
}

fn header_for(m: &std::fs::Metadata, owner: &Owner) -> tar::Header {
    let mut hd = tar::Header::new_gnu();
    hd.set_uid(owner.uid as u64);
    hd.set_gid(owner.gid as u64);
    hd.set_mtime(m.mtime().max(0) as u64);
    let mode = owner.chmod.unwrap_or(m.permissions().mode() & 0o7777);
    hd.set_mode(mode);
    hd
}

/// Appends `src` (file, symlink or directory tree) to `tb` under `name`.
fn append_tree<W: Write>(
    tb: &mut tar::Builder<W>,
    src: &Path,
    name: &str,
    owner: &Owner,
    include_self: bool,
    skip: &dyn Fn(&Path) -> bool,
) -> Result<()> {
    if include_self && skip(src) {
        return Ok(());
    }
    let m = std::fs::symlink_metadata(src)?;
    let ft = m.file_type();
    if ft.is_dir() {
        if include_self {
            let mut hd = header_for(&m, owner);
            hd.set_entry_type(tar::EntryType::Directory);
            hd.set_size(0);
            tb.append_data(&mut hd, format!("{name}/"), std::io::empty())?;
        }
        let mut entries: Vec<_> = std::fs::read_dir(src)?.filter_map(|e| e.ok()).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let child = e.file_name().to_string_lossy().into_owned();
            let n = if name.is_empty() {
                child
            } else {
                format!("{name}/{child}")
            };
            append_tree(tb, &e.path(), &n, owner, true, skip)?;
        }
    } else if ft.is_symlink() {
        let mut hd = header_for(&m, owner);
        hd.set_entry_type(tar::EntryType::Symlink);
        hd.set_size(0);
        let target = std::fs::read_link(src)?;
        tb.append_link(&mut hd, name, target)?;
    } else if ft.is_file() {
        let mut hd = header_for(&m, owner);
        hd.set_entry_type(tar::EntryType::Regular);
        hd.set_size(m.len());
        let f = std::fs::File::open(src)
            .map_err(|e| BuildError::Copy(format!("reading {}: {e}", src.display())))?;
        tb.append_data(&mut hd, name, BufReader::new(f).take(m.len()))?;
    }
    // Sockets, fifos and devices in a context are not copied.
    Ok(())
}

/// Streams a tar made by `fill` into `dir` (an existing directory).
fn unpack_into(
    dir: &Path,
    same_owner: bool,
    fill: impl FnOnce(&mut tar::Builder<std::io::PipeWriter>) -> Result<()> + Send,
) -> Result<()> {
    let (r, w) = std::io::pipe()?;
    std::thread::scope(|s| {
        let writer = s.spawn(move || -> Result<()> {
            let mut tb = tar::Builder::new(w);
            tb.mode(tar::HeaderMode::Complete);
            fill(&mut tb)?;
            tb.finish()?;
            Ok(())
        });
        let res = layer_unpack::unpack_with(
            BufReader::new(r),
            dir,
            &layer_unpack::UnpackOptions {
                same_owner,
                xattrs: false,
            },
        );
        let wres = writer
            .join()
            .map_err(|_| BuildError::Internal("copy writer panicked".into()))?;
        wres?;
        res.map(|_| ())
            .map_err(|e| BuildError::Copy(format!("copying into the image: {e}")))
    })
}

/// Creates `path` (already resolved inside the root) and its missing parents, owned by
/// `owner` when `--chown` was given.
fn make_dirs(path: &Path, owner: Option<(u32, u32)>) -> Result<()> {
    let mut missing = Vec::new();
    let mut cur = path.to_path_buf();
    while std::fs::symlink_metadata(&cur).is_err() {
        missing.push(cur.clone());
        if !cur.pop() {
            break;
        }
    }
    std::fs::create_dir_all(path)?;
    if let Some((u, g)) = owner {
        for m in missing {
            nix::unistd::chown(&m, Some(u.into()), Some(g.into()))
                .map_err(|e| BuildError::Internal(format!("chown {}: {e}", m.display())))?;
        }
    }
    Ok(())
}

/// Writes the plan's sources into the root filesystem mounted at `root`.
pub(crate) fn apply(plan: &CopyPlan, root: &Path) -> Result<()> {
    let chown = plan
        .chown
        .as_deref()
        .map(|c| resolve_chown(root, c))
        .transpose()?;
    let owner = Owner {
        uid: chown.map(|c| c.0).unwrap_or(0),
        gid: chown.map(|c| c.1).unwrap_or(0),
        chmod: plan.chmod,
    };
    let dest_rel = plan.dest_abs.clone();
    for it in &plan.items {
        let dir_target = it.is_dir || matches!(it.source, Source::Archive(_));
        if dir_target {
            let target = resolve_in_root(root, &dest_rel)?;
            make_dirs(&target, chown)?;
            match &it.source {
                Source::Path(p) => {
                    let p = p.clone();
                    unpack_into(&target, true, |tb| {
                        append_tree(tb, &p, "", &owner, false, &|x| plan.skipped(x))
                    })?;
                }
                Source::Archive(p) => {
                    let f = open_archive(p)?;
                    layer_unpack::unpack(f, &target).map_err(|e| {
                        BuildError::Copy(format!("ADD failed: extracting {}: {e}", it.name))
                    })?;
                }
                Source::Data(_) => {}
            }
            continue;
        }
        // A file: into the destination directory, or as the destination itself.
        let resolved = resolve_in_root(root, &dest_rel)?;
        let into_dir = plan.dest_is_dir || resolved.is_dir();
        let (dir, name) = if into_dir {
            (resolved, it.name.clone())
        } else {
            let name = resolved
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| {
                    BuildError::Copy(format!("invalid destination {}", plan.dest_abs))
                })?;
            let parent = resolved
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| root.to_path_buf());
            (parent, name)
        };
        make_dirs(&dir, chown)?;
        match &it.source {
            Source::Path(p) => {
                let p = p.clone();
                unpack_into(&dir, true, |tb| {
                    append_tree(tb, &p, &name, &owner, true, &|_| false)
                })?;
            }
            Source::Data(data) => {
                let data = data.clone();
                unpack_into(&dir, true, |tb| {
                    let mut hd = tar::Header::new_gnu();
                    hd.set_uid(owner.uid as u64);
                    hd.set_gid(owner.gid as u64);
                    hd.set_mode(owner.chmod.unwrap_or(0o644));
                    hd.set_mtime(chrono::Utc::now().timestamp().max(0) as u64);
                    hd.set_size(data.len() as u64);
                    hd.set_entry_type(tar::EntryType::Regular);
                    tb.append_data(&mut hd, &name, data.as_slice())?;
                    Ok(())
                })?;
            }
            Source::Archive(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(root: &Path, srcs: &[&str], dest: &str) -> CopyRequest {
        CopyRequest {
            add: false,
            root: root.to_path_buf(),
            from_context: true,
            ignore: Arc::new(IgnoreMatcher::empty()),
            srcs: srcs.iter().map(|s| s.to_string()).collect(),
            heredocs: Vec::new(),
            dest: dest.into(),
            workdir: "/app".into(),
            chown: None,
            chmod: None,
            downloads: Vec::new(),
            exclude: None,
        }
    }

    #[test]
    fn plan_resolves_and_checksums() {
        let ctx = tempfile::tempdir().unwrap();
        std::fs::write(ctx.path().join("a.py"), "print(1)").unwrap();
        std::fs::write(ctx.path().join("b.py"), "print(2)").unwrap();
        std::fs::create_dir(ctx.path().join("d")).unwrap();
        std::fs::write(ctx.path().join("d/x"), "x").unwrap();
        let p = plan(req(ctx.path(), &["a.py"], "app.py")).unwrap();
        assert_eq!(p.kind, "file");
        assert_eq!(p.dest_abs, "/app/app.py");
        let p2 = plan(req(ctx.path(), &["a.py"], "app.py")).unwrap();
        assert_eq!(p.checksum, p2.checksum);
        std::fs::write(ctx.path().join("a.py"), "print(3)").unwrap();
        let p3 = plan(req(ctx.path(), &["a.py"], "app.py")).unwrap();
        assert_ne!(p.checksum, p3.checksum);
        assert_eq!(
            plan(req(ctx.path(), &["*.py"], "/src/")).unwrap().kind,
            "multi"
        );
        assert_eq!(plan(req(ctx.path(), &["d"], "/src")).unwrap().kind, "dir");
        assert!(matches!(
            plan(req(ctx.path(), &["a.py", "b.py"], "/src")),
            Err(BuildError::Copy(m)) if m.contains("must be a directory")
        ));
        assert!(matches!(
            plan(req(ctx.path(), &["../etc/passwd"], "/x")),
            Err(BuildError::Copy(m)) if m.contains("outside the build context")
        ));
        assert!(matches!(
            plan(req(ctx.path(), &["nope"], "/x")),
            Err(BuildError::Copy(m)) if m.contains("file not found")
        ));
        assert!(matches!(
            plan(req(ctx.path(), &["*.none"], "/x/")),
            Err(BuildError::Copy(m)) if m.contains("no source files")
        ));
    }

    #[test]
    fn ignored_sources_are_not_found() {
        let ctx = tempfile::tempdir().unwrap();
        std::fs::write(ctx.path().join("secret.txt"), "s").unwrap();
        let mut r = req(ctx.path(), &["secret.txt"], "/x");
        r.ignore = Arc::new(IgnoreMatcher::parse("*.txt").unwrap());
        assert!(matches!(plan(r), Err(BuildError::Copy(m)) if m.contains("excluded")));
    }

    #[test]
    fn apply_copies_files_dirs_and_heredocs() {
        let ctx = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("usr/lib")).unwrap();
        std::os::unix::fs::symlink("usr/lib", root.path().join("lib")).unwrap();
        std::fs::create_dir(ctx.path().join("d")).unwrap();
        std::fs::write(ctx.path().join("d/x"), "x").unwrap();
        std::fs::write(ctx.path().join("f"), "f").unwrap();
        let p = plan(req(ctx.path(), &["d"], "/lib/")).unwrap();
        apply(&p, root.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.path().join("usr/lib/x")).unwrap(),
            "x"
        );
        let mut r = req(ctx.path(), &["f"], "new/dir/g");
        r.chmod = Some("0700".into());
        let p = plan(r).unwrap();
        apply(&p, root.path()).unwrap();
        let m = std::fs::metadata(root.path().join("app/new/dir/g")).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, 0o700);
        let mut r = req(ctx.path(), &["<<EOF"], "/etc/conf");
        r.heredocs = vec![("EOF".into(), b"hello\n".to_vec())];
        apply(&plan(r).unwrap(), root.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.path().join("etc/conf")).unwrap(),
            "hello\n"
        );
        // An existing directory as a destination without a slash: copied into it.
        std::fs::create_dir_all(root.path().join("srv")).unwrap();
        apply(&plan(req(ctx.path(), &["f"], "/srv")).unwrap(), root.path()).unwrap();
        assert!(root.path().join("srv/f").is_file());
    }
}
