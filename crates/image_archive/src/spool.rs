//! Spooling an archive to disk: every regular member is copied (and hashed) into a private
//! temporary directory under a generated name, so nothing in the archive decides where
//! anything is written; symlinks and hardlinks are only recorded and resolved by name,
//! inside the archive, when a member is looked up.

use std::cell::Cell;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use sha2::{Digest as _, Sha256};
use tar::EntryType;
use tracing::debug;

use crate::error::{ArchiveError, Result};
use crate::format::sha256_hex;
use crate::LoadOptions;

/// Links followed at most while resolving one name.
const MAX_LINK_HOPS: usize = 40;

/// Bytes the tar reader may consume between two members' data: headers, padding, GNU
/// long names and PAX extensions (which the `tar` crate reads into memory).
const HEADER_BUDGET: u64 = (1 << 20) + 1024;

/// Limits how much of the stream the tar parser may read: the budget is set, per member,
/// to its data size plus [`HEADER_BUDGET`], so an oversized extension header (e.g. a
/// gigabytes-long GNU long name from a gzip bomb) fails instead of filling memory.
struct Budgeted<R> {
    inner: R,
    budget: Rc<Cell<u64>>,
}

impl<R: Read> Read for Budgeted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let budget = self.budget.get();
        if budget == 0 && !buf.is_empty() {
            return Err(io::Error::other(
                "tar header or extension (long name, PAX) too large",
            ));
        }
        let max = buf.len().min(usize::try_from(budget).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.budget.set(budget - n as u64);
        Ok(n)
    }
}

/// A regular member copied to disk.
#[derive(Debug, Clone)]
pub(crate) struct SpooledFile {
    /// Where its bytes are.
    pub path: PathBuf,
    /// Its size.
    pub size: u64,
    /// `sha256:<hex>` of its bytes.
    pub digest: String,
    /// Its first bytes (compression detection).
    pub prefix: Vec<u8>,
}

#[derive(Debug, Clone)]
enum Member {
    File(SpooledFile),
    Dir,
    /// Target path components, from the archive root.
    Link(Vec<String>),
}

/// A spooled archive; the directory is removed on drop.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: tempfile::TempDir,
    members: HashMap<String, Member>,
}

/// Splits a member name into normal components: `.` and empty components are dropped,
/// absolute names and `..` are refused.
pub(crate) fn normalize(name: &str) -> Result<Vec<String>> {
    if name.starts_with('/') {
        return Err(ArchiveError::AbsolutePath {
            member: name.to_string(),
        });
    }
    let mut out = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                return Err(ArchiveError::PathEscape {
                    member: name.to_string(),
                })
            }
            c if c.contains('\0') => {
                return Err(ArchiveError::InvalidMemberName {
                    member: name.to_string(),
                    reason: "NUL byte in name".into(),
                })
            }
            c => out.push(c.to_string()),
        }
    }
    Ok(out)
}

/// Resolves a link target lexically: relative to `base` (the link's directory; empty for
/// absolute targets and hardlinks); `..` may not climb above the archive root.
fn resolve_target(member: &str, base: &[String], target: &str) -> Result<Vec<String>> {
    let mut out: Vec<String> = if target.starts_with('/') {
        Vec::new()
    } else {
        base.to_vec()
    };
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if out.pop().is_none() {
                    return Err(ArchiveError::PathEscape {
                        member: format!("{member} -> {target}"),
                    });
                }
            }
            c => out.push(c.to_string()),
        }
    }
    Ok(out)
}

fn utf8_name(raw: &[u8]) -> Result<String> {
    String::from_utf8(raw.to_vec()).map_err(|_| ArchiveError::InvalidMemberName {
        member: String::from_utf8_lossy(raw).into_owned(),
        reason: "name is not valid UTF-8".into(),
    })
}

impl Spool {
    /// Reads the whole (possibly gzip/zstd-compressed) tar `input` into a new directory
    /// under `parent`.
    pub(crate) fn read(input: impl Read, parent: &Path, opts: &LoadOptions) -> Result<Spool> {
        let dec = layer_unpack::decompress(input).map_err(ArchiveError::Decompress)?;
        let dir = tempfile::Builder::new()
            .prefix("berth-load-")
            .tempdir_in(parent)
            .map_err(|e| {
                ArchiveError::io(
                    format!("creating a spool directory in {}", parent.display()),
                    e,
                )
            })?;
        let mut spool = Spool {
            dir,
            members: HashMap::new(),
        };
        let budget = Rc::new(Cell::new(HEADER_BUDGET));
        let mut archive = tar::Archive::new(Budgeted {
            inner: dec,
            budget: budget.clone(),
        });
        let mut count: u64 = 0;
        let mut total: u64 = 0;
        let mut buf = vec![0u8; 256 * 1024];
        for entry in archive.entries().map_err(ArchiveError::InvalidTar)? {
            let mut entry = entry.map_err(ArchiveError::InvalidTar)?;
            budget.set(HEADER_BUDGET.saturating_add(entry.size().saturating_add(511) & !511));
            let etype = entry.header().entry_type();
            if matches!(
                etype,
                EntryType::XGlobalHeader
                    | EntryType::XHeader
                    | EntryType::GNULongName
                    | EntryType::GNULongLink
            ) {
                continue;
            }
            count += 1;
            if count > opts.max_members {
                return Err(ArchiveError::TooManyMembers {
                    limit: opts.max_members,
                });
            }
            let name = utf8_name(&entry.path_bytes())?;
            let comps = normalize(&name)?;
            let key = comps.join("/");
            match etype {
                EntryType::Directory => {
                    if !key.is_empty() {
                        spool.members.insert(key, Member::Dir);
                    }
                }
                EntryType::Regular | EntryType::Continuous => {
                    if key.is_empty() {
                        return Err(ArchiveError::InvalidMemberName {
                            member: name,
                            reason: "empty file name".into(),
                        });
                    }
                    let size = entry.size();
                    if size > opts.max_member_size {
                        return Err(ArchiveError::MemberTooLarge {
                            member: name,
                            size,
                            limit: opts.max_member_size,
                        });
                    }
                    total = total.saturating_add(size);
                    if total > opts.max_total_size {
                        return Err(ArchiveError::ArchiveTooLarge {
                            limit: opts.max_total_size,
                        });
                    }
                    let path = spool.dir.path().join(format!("m{count}"));
                    let file = copy_member(&mut entry, &name, size, &path, &mut buf)?;
                    spool.members.insert(key, Member::File(file));
                }
                EntryType::Symlink | EntryType::Link => {
                    let raw =
                        entry
                            .link_name_bytes()
                            .ok_or_else(|| ArchiveError::InvalidMemberName {
                                member: name.clone(),
                                reason: "link without a target".into(),
                            })?;
                    let target = utf8_name(&raw)?;
                    if key.is_empty() {
                        return Err(ArchiveError::InvalidMemberName {
                            member: name,
                            reason: "link at the archive root".into(),
                        });
                    }
                    let resolved = if etype == EntryType::Symlink {
                        resolve_target(&name, &comps[..comps.len() - 1], &target)?
                    } else {
                        resolve_target(&name, &[], &target)?
                    };
                    spool.members.insert(key, Member::Link(resolved));
                }
                other => {
                    debug!(member = %name, kind = ?other, "ignoring archive member");
                }
            }
        }
        if count == 0 {
            return Err(ArchiveError::Empty);
        }
        Ok(spool)
    }

    /// Whether `name` resolves to a regular file.
    #[cfg(test)]
    pub(crate) fn has_file(&self, name: &str) -> bool {
        self.file(name).is_ok()
    }

    /// Resolves `name` (links followed inside the archive) to a regular member. A member
    /// found at `blobs/sha256/<hex>` must hash to that digest.
    pub(crate) fn file(&self, name: &str) -> Result<&SpooledFile> {
        let mut path = normalize(name)?;
        let requested = path.join("/");
        let mut hops = 0;
        'resolve: loop {
            for i in 1..=path.len() {
                let prefix = path[..i].join("/");
                match self.members.get(&prefix) {
                    Some(Member::Link(target)) => {
                        hops += 1;
                        if hops > MAX_LINK_HOPS {
                            return Err(ArchiveError::SymlinkLoop {
                                member: name.to_string(),
                            });
                        }
                        let mut next = target.clone();
                        next.extend_from_slice(&path[i..]);
                        path = next;
                        continue 'resolve;
                    }
                    Some(Member::File(f)) if i == path.len() => {
                        check_blob_name(&requested, f)?;
                        check_blob_name(&prefix, f)?;
                        return Ok(f);
                    }
                    Some(Member::Dir) if i == path.len() => {
                        return Err(ArchiveError::NotAFile {
                            member: name.to_string(),
                        })
                    }
                    Some(Member::File(_)) => {
                        return Err(ArchiveError::MissingMember {
                            member: name.to_string(),
                        })
                    }
                    _ => {}
                }
            }
            if path.is_empty() {
                return Err(ArchiveError::NotAFile {
                    member: name.to_string(),
                });
            }
            return Err(ArchiveError::MissingMember {
                member: name.to_string(),
            });
        }
    }

    /// Reads a small member (JSON) whole, refusing more than `limit` bytes.
    pub(crate) fn read_small(&self, name: &str, limit: u64) -> Result<Vec<u8>> {
        let f = self.file(name)?;
        if f.size > limit {
            return Err(ArchiveError::MemberTooLarge {
                member: name.to_string(),
                size: f.size,
                limit,
            });
        }
        std::fs::read(&f.path).map_err(|e| ArchiveError::io(format!("reading {name}"), e))
    }
}

/// Content-addressed names must match their content.
fn check_blob_name(key: &str, f: &SpooledFile) -> Result<()> {
    if let Some(hex) = key.strip_prefix("blobs/sha256/") {
        let expected = format!("sha256:{hex}");
        if sha256_hex(&expected).is_some() && expected != f.digest {
            return Err(ArchiveError::DigestMismatch {
                member: key.to_string(),
                expected,
                actual: f.digest.clone(),
            });
        }
    }
    Ok(())
}

fn copy_member(
    entry: &mut impl Read,
    name: &str,
    size: u64,
    path: &Path,
    buf: &mut [u8],
) -> Result<SpooledFile> {
    let mut out = File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| ArchiveError::io(format!("creating {}", path.display()), e))?;
    let mut hasher = Sha256::new();
    let mut prefix = Vec::with_capacity(8);
    let mut got: u64 = 0;
    loop {
        let n = match entry.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ArchiveError::InvalidTar(e)),
        };
        got += n as u64;
        if got > size {
            // The tar reader never yields more than the header says; be defensive anyway.
            return Err(ArchiveError::MemberTooLarge {
                member: name.to_string(),
                size: got,
                limit: size,
            });
        }
        if prefix.len() < 8 {
            let take = (8 - prefix.len()).min(n);
            prefix.extend_from_slice(&buf[..take]);
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|e| ArchiveError::io(format!("spooling {name}"), e))?;
    }
    if got != size {
        return Err(ArchiveError::Truncated {
            member: name.to_string(),
            expected: size,
            got,
        });
    }
    Ok(SpooledFile {
        path: path.to_path_buf(),
        size,
        digest: format!("sha256:{}", hex::encode(hasher.finalize())),
        prefix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> LoadOptions {
        LoadOptions::default()
    }

    fn tmp() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("berth-t-archive-")
            .tempdir()
            .unwrap()
    }

    /// Appends a member with a raw (unvalidated) name.
    fn raw(b: &mut tar::Builder<Vec<u8>>, name: &str, ty: EntryType, link: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(ty);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }

    fn spool(data: &[u8], dir: &Path) -> Result<Spool> {
        Spool::read(data, dir, &opts())
    }

    #[test]
    fn normalize_names() {
        assert_eq!(normalize("./a//b/./c").unwrap(), vec!["a", "b", "c"]);
        assert!(matches!(
            normalize("/etc/passwd"),
            Err(ArchiveError::AbsolutePath { .. })
        ));
        assert!(matches!(
            normalize("a/../../b"),
            Err(ArchiveError::PathEscape { .. })
        ));
        assert!(matches!(
            normalize("a/.."),
            Err(ArchiveError::PathEscape { .. })
        ));
    }

    #[test]
    fn files_links_and_hashes() {
        let t = tmp();
        let mut b = tar::Builder::new(Vec::new());
        raw(&mut b, "./d/", EntryType::Directory, "", b"");
        raw(&mut b, "./d/f", EntryType::Regular, "", b"hello");
        raw(&mut b, "e/l", EntryType::Symlink, "../d/f", b"");
        raw(&mut b, "abs", EntryType::Symlink, "/d/f", b"");
        raw(&mut b, "dl", EntryType::Symlink, "d", b"");
        raw(&mut b, "h", EntryType::Link, "d/f", b"");
        raw(&mut b, "loop1", EntryType::Symlink, "loop2", b"");
        raw(&mut b, "loop2", EntryType::Symlink, "loop1", b"");
        let s = spool(&b.into_inner().unwrap(), t.path()).unwrap();
        let f = s.file("d/f").unwrap();
        assert_eq!(f.size, 5);
        assert_eq!(f.digest, layer_unpack::sha256_digest(b"hello"));
        assert_eq!(f.prefix, b"hello");
        for alias in ["e/l", "abs", "dl/f", "h", "./d/f"] {
            assert_eq!(s.file(alias).unwrap().path, f.path, "{alias}");
        }
        assert!(matches!(s.file("d"), Err(ArchiveError::NotAFile { .. })));
        assert!(matches!(
            s.file("d/f/x"),
            Err(ArchiveError::MissingMember { .. })
        ));
        assert!(matches!(
            s.file("nope"),
            Err(ArchiveError::MissingMember { .. })
        ));
        assert!(matches!(
            s.file("loop1"),
            Err(ArchiveError::SymlinkLoop { .. })
        ));
        assert!(matches!(
            s.file("../d/f"),
            Err(ArchiveError::PathEscape { .. })
        ));
        // Only generated names on disk.
        let mut names: Vec<String> = std::fs::read_dir(s.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, vec!["m2"]);
        let dir = s.dir.path().to_path_buf();
        drop(s);
        assert!(!dir.exists());
    }

    #[test]
    fn hostile_members_rejected() {
        let t = tmp();
        for (name, ty, link, want) in [
            ("../evil", EntryType::Regular, "", "escapes"),
            ("a/../../evil", EntryType::Regular, "", "escapes"),
            ("/etc/evil", EntryType::Regular, "", "absolute"),
            ("s", EntryType::Symlink, "../../etc/passwd", "escapes"),
            ("h", EntryType::Link, "../x", "escapes"),
        ] {
            let mut b = tar::Builder::new(Vec::new());
            raw(&mut b, name, ty, link, b"x");
            let err = spool(&b.into_inner().unwrap(), t.path()).unwrap_err();
            assert!(err.to_string().contains(want), "{name}: {err}");
            assert!(err.to_string().contains(name), "{name}: {err}");
        }
        // Nothing left behind.
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
    }

    #[test]
    fn truncated_and_garbage() {
        let t = tmp();
        let mut b = tar::Builder::new(Vec::new());
        raw(&mut b, "big", EntryType::Regular, "", &[7u8; 5000]);
        let data = b.into_inner().unwrap();
        let err = spool(&data[..512 + 1000], t.path()).unwrap_err();
        assert!(
            matches!(
                err,
                ArchiveError::Truncated {
                    expected: 5000,
                    got: 1000,
                    ..
                }
            ),
            "{err}"
        );
        let err = spool(&[0x55u8; 2048], t.path()).unwrap_err();
        assert!(matches!(err, ArchiveError::InvalidTar(_)), "{err}");
        let err = spool(b"", t.path()).unwrap_err();
        assert!(matches!(err, ArchiveError::Empty), "{err}");
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
    }

    #[test]
    fn oversized_long_name_refused() {
        let t = tmp();
        // A 2 MiB GNU long name, sent compressed (tiny on the wire).
        let long = "a/".repeat(1 << 20);
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        b.append_data(&mut h, &long, &b"x"[..]).unwrap();
        let data = b.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        assert!(gz.len() < 100_000);
        let err = spool(&gz, t.path()).unwrap_err();
        assert!(err.to_string().contains("too large"), "{err}");
        // A long name within the budget is fine.
        let name = format!("{}f", "d/".repeat(1000));
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        b.append_data(&mut h, &name, &b"x"[..]).unwrap();
        let s = spool(&b.into_inner().unwrap(), t.path()).unwrap();
        assert_eq!(s.file(&name).unwrap().size, 1);
    }

    #[test]
    fn limits() {
        let t = tmp();
        let mut b = tar::Builder::new(Vec::new());
        raw(&mut b, "a", EntryType::Regular, "", &[1u8; 100]);
        raw(&mut b, "b", EntryType::Regular, "", &[1u8; 100]);
        let data = b.into_inner().unwrap();
        let o = LoadOptions {
            max_member_size: 99,
            ..opts()
        };
        assert!(matches!(
            Spool::read(&data[..], t.path(), &o),
            Err(ArchiveError::MemberTooLarge { size: 100, .. })
        ));
        let o = LoadOptions {
            max_total_size: 150,
            ..opts()
        };
        assert!(matches!(
            Spool::read(&data[..], t.path(), &o),
            Err(ArchiveError::ArchiveTooLarge { .. })
        ));
        let o = LoadOptions {
            max_members: 1,
            ..opts()
        };
        assert!(matches!(
            Spool::read(&data[..], t.path(), &o),
            Err(ArchiveError::TooManyMembers { .. })
        ));
        let s = Spool::read(&data[..], t.path(), &opts()).unwrap();
        assert!(matches!(
            s.read_small("a", 50),
            Err(ArchiveError::MemberTooLarge { .. })
        ));
        assert_eq!(s.read_small("a", 100).unwrap().len(), 100);
    }

    #[test]
    fn blob_names_checked() {
        let t = tmp();
        let mut b = tar::Builder::new(Vec::new());
        let good = layer_unpack::sha256_digest(b"good");
        let good_hex = good.strip_prefix("sha256:").unwrap();
        let bad_hex = "0".repeat(64);
        raw(
            &mut b,
            &format!("blobs/sha256/{good_hex}"),
            EntryType::Regular,
            "",
            b"good",
        );
        raw(
            &mut b,
            &format!("blobs/sha256/{bad_hex}"),
            EntryType::Regular,
            "",
            b"good",
        );
        let s = spool(&b.into_inner().unwrap(), t.path()).unwrap();
        assert!(s.has_file(&format!("blobs/sha256/{good_hex}")));
        let err = s.file(&format!("blobs/sha256/{bad_hex}")).unwrap_err();
        assert!(matches!(err, ArchiveError::DigestMismatch { .. }), "{err}");
    }
}
