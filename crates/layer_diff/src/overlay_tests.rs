//! End-to-end tests on real overlayfs mounts (root only): a build step's changes are made
//! through a mount, the upper dir is exported with [`write_layer`], and the layer is
//! unpacked with `layer_unpack` and stacked on the same lower layers; the merged trees
//! must be identical.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{mknod, Mode, SFlag};
use tar::EntryType;

use crate::tests::{chmod, is_root, layer, read_members, set_mtime, set_xattr, tempdir, whiteout};
use crate::*;
use tar_stream::fs::{self as fsutil, XattrSource};

/// A scratch directory whose overlay mounts are detached on drop (before the directory
/// itself is removed), even when the test fails.
struct Fixture {
    mounts: Vec<PathBuf>,
    dir: tempfile::TempDir,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for m in self.mounts.drain(..).rev() {
            if let Err(e) = umount2(&m, MntFlags::MNT_DETACH) {
                eprintln!("umount {}: {e}", m.display());
            }
        }
    }
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            mounts: Vec::new(),
            dir: tempdir(),
        }
    }

    fn dir(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        fs::create_dir_all(&p).unwrap();
        p
    }

    /// Mounts an overlay at `target`: `lowers` top first; with an upper dir when given.
    fn mount(&mut self, lowers: &[&Path], upper: Option<(&Path, &Path)>, target: &Path) {
        let lower = lowers
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":");
        let mut opts = format!("lowerdir={lower}");
        if let Some((u, w)) = upper {
            opts.push_str(&format!(
                ",upperdir={},workdir={}",
                u.display(),
                w.display()
            ));
        }
        opts.push_str(",redirect_dir=off,metacopy=off,index=off");
        mount(
            Some("overlay"),
            target,
            Some("overlay"),
            MsFlags::empty(),
            Some(opts.as_str()),
        )
        .unwrap_or_else(|e| panic!("mount overlay {opts}: {e}"));
        self.mounts.push(target.to_path_buf());
    }
}

/// What a merged tree shows for one path (sockets excluded: layers do not carry them).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    kind: char,
    mode: u32,
    uid: u32,
    gid: u32,
    /// Whole seconds (layers carry no sub-second times).
    mtime: i64,
    nlink: Option<u64>,
    content: Option<Vec<u8>>,
    link: Option<PathBuf>,
    rdev: u64,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Node>) {
    let dir_fd = fsutil::open_root(dir).unwrap();
    let mut entries: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap()).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let md = fs::symlink_metadata(&p).unwrap();
        let ft = md.file_type();
        use std::os::unix::fs::FileTypeExt;
        if ft.is_socket() {
            continue;
        }
        let kind = if ft.is_dir() {
            'd'
        } else if ft.is_file() {
            'f'
        } else if ft.is_symlink() {
            'l'
        } else if ft.is_fifo() {
            'p'
        } else if ft.is_char_device() {
            'c'
        } else {
            'b'
        };
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        let xattrs =
            fsutil::read_xattrs(&XattrSource::At(&dir_fd, e.file_name().as_bytes())).unwrap();
        out.insert(
            rel,
            Node {
                kind,
                mode: md.mode() & 0o7777,
                uid: md.uid(),
                gid: md.gid(),
                mtime: md.mtime(),
                nlink: (kind != 'd').then(|| md.nlink()),
                content: (kind == 'f').then(|| fs::read(&p).unwrap()),
                link: (kind == 'l').then(|| fs::read_link(&p).unwrap()),
                rdev: md.rdev(),
                xattrs,
            },
        );
        if kind == 'd' {
            walk(root, &p, out);
        }
    }
}

/// Two lower layers in overlay format (l1 above l0).
fn lowers(fx: &Fixture) -> (PathBuf, PathBuf) {
    let l0 = fx.dir("l0");
    for d in [
        "etc",
        "bin",
        "data/sub",
        "var/log",
        "opt/lib",
        "usr/share/doc",
    ] {
        fs::create_dir_all(l0.join(d)).unwrap();
    }
    fs::write(l0.join("etc/passwd"), b"root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(l0.join("etc/hosts"), b"127.0.0.1 localhost\n").unwrap();
    fs::write(l0.join("etc/motd"), b"welcome\n").unwrap();
    fs::write(l0.join("bin/tool"), b"#!/bin/sh\necho tool\n").unwrap();
    chmod(&l0.join("bin/tool"), 0o755);
    fs::write(l0.join("data/keep1"), b"1").unwrap();
    fs::write(l0.join("data/keep2"), b"2").unwrap();
    fs::write(l0.join("data/sub/deep"), b"deep").unwrap();
    fs::write(l0.join("var/log/old.log"), b"log").unwrap();
    fs::write(l0.join("opt/lib/a.so"), b"a").unwrap();
    fs::write(l0.join("usr/share/doc/README"), b"docs").unwrap();
    for p in [
        "etc/passwd",
        "etc/hosts",
        "bin/tool",
        "data",
        "var/log",
        "etc",
    ] {
        set_mtime(&l0.join(p), 1_500_000_000);
    }

    let l1 = fx.dir("l1");
    fs::create_dir_all(l1.join("etc")).unwrap();
    whiteout(&l1.join("etc/motd"));
    fs::write(l1.join("etc/issue"), b"berth\n").unwrap();
    fs::create_dir_all(l1.join("opt/lib2")).unwrap();
    set_xattr(&l1.join("opt"), "trusted.overlay.opaque", b"y");
    fs::write(l1.join("opt/lib2/c.so"), b"c").unwrap();
    (l0, l1)
}

/// The build step: every kind of change, made through the merged view.
fn build_step(m: &Path) {
    // add
    fs::create_dir(m.join("app")).unwrap();
    fs::write(m.join("app/main.txt"), b"main").unwrap();
    fs::write(m.join("etc/newfile"), b"new").unwrap();
    // modify
    let mut passwd = fs::read(m.join("etc/passwd")).unwrap();
    passwd.extend_from_slice(b"app:x:1000:1000::/app:/bin/sh\n");
    fs::write(m.join("etc/passwd"), passwd).unwrap();
    // delete: a lower file, a lower directory tree, a file of the upper lower layer
    fs::remove_file(m.join("etc/hosts")).unwrap();
    fs::remove_dir_all(m.join("var/log")).unwrap();
    fs::remove_file(m.join("etc/issue")).unwrap();
    // rmdir + recreate → opaque directory
    fs::remove_dir_all(m.join("data")).unwrap();
    fs::create_dir(m.join("data")).unwrap();
    fs::write(m.join("data/fresh"), b"fresh").unwrap();
    // chmod only → copy-up with the same data
    chmod(&m.join("bin/tool"), 0o4755);
    // hardlinks: new file, and a link to a lower file (copies it up first)
    fs::write(m.join("app/h1"), b"linked").unwrap();
    fs::hard_link(m.join("app/h1"), m.join("app/h2")).unwrap();
    fs::hard_link(m.join("usr/share/doc/README"), m.join("app/readme-link")).unwrap();
    // symlinks
    symlink("../etc/passwd", m.join("app/rel-link")).unwrap();
    symlink("/does/not/exist", m.join("app/dangling")).unwrap();
    // xattrs on a file and a directory
    set_xattr(&m.join("app/main.txt"), "user.note", b"hello");
    set_xattr(&m.join("app/main.txt"), "trusted.berth", b"\x00\x01");
    set_xattr(&m.join("app"), "user.dir", b"d");
    // special files, modes, owners, times
    mknod(
        &m.join("app/fifo"),
        SFlag::S_IFIFO,
        Mode::from_bits_truncate(0o640),
        0,
    )
    .unwrap();
    mknod(
        &m.join("app/null"),
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o666),
        libc::makedev(1, 3),
    )
    .unwrap();
    fs::create_dir(m.join("app/tmp")).unwrap();
    chmod(&m.join("app/tmp"), 0o1777);
    fs::write(m.join("app/owned"), b"o").unwrap();
    std::os::unix::fs::lchown(m.join("app/owned"), Some(1234), Some(3_000_000)).unwrap();
    let long = format!("app/{}/{}", "x".repeat(150), "y".repeat(150));
    fs::create_dir_all(m.join(&long)).unwrap();
    fs::write(m.join(format!("{long}/file")), b"long").unwrap();
    let _ = std::os::unix::net::UnixListener::bind(m.join("app/sock")).unwrap();
    set_mtime(&m.join("app/main.txt"), 1_111_111_111);
}

#[test]
fn overlay_step_round_trip() {
    if !is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    let mut fx = Fixture::new();
    let (l0, l1) = lowers(&fx);
    let (upper, work, merged) = (fx.dir("upper"), fx.dir("work"), fx.dir("merged"));
    fx.mount(&[&l1, &l0], Some((&upper, &work)), &merged);
    assert!(is_empty(&upper).unwrap(), "fresh upper dir is empty");

    build_step(&merged);
    // Directory times must be final before the snapshot (the step is over).
    set_mtime(&merged.join("app"), 1_222_222_222);
    let before = snapshot(&merged);
    assert!(!is_empty(&upper).unwrap());

    let (bytes, stats) = layer(&upper);
    let members = read_members(&bytes);
    let long = format!("app/{}/{}", "x".repeat(150), "y".repeat(150));
    let listed: Vec<(String, EntryType)> =
        members.iter().map(|m| (m.name.clone(), m.kind)).collect();
    let expected: Vec<(String, EntryType)> = [
        ("app/", EntryType::Directory),
        ("app/dangling", EntryType::Symlink),
        ("app/fifo", EntryType::Fifo),
        ("app/h1", EntryType::Regular),
        ("app/h2", EntryType::Link),
        ("app/main.txt", EntryType::Regular),
        ("app/null", EntryType::Char),
        ("app/owned", EntryType::Regular),
        ("app/readme-link", EntryType::Regular),
        ("app/rel-link", EntryType::Symlink),
        ("app/tmp/", EntryType::Directory),
        (&format!("app/{}/", "x".repeat(150)), EntryType::Directory),
        (&format!("{long}/"), EntryType::Directory),
        (&format!("{long}/file"), EntryType::Regular),
        ("bin/", EntryType::Directory),
        ("bin/tool", EntryType::Regular),
        ("data/", EntryType::Directory),
        ("data/.wh..wh..opq", EntryType::Regular),
        ("data/fresh", EntryType::Regular),
        ("etc/", EntryType::Directory),
        ("etc/.wh.hosts", EntryType::Regular),
        ("etc/.wh.issue", EntryType::Regular),
        ("etc/newfile", EntryType::Regular),
        ("etc/passwd", EntryType::Regular),
        ("usr/", EntryType::Directory),
        ("usr/share/", EntryType::Directory),
        ("usr/share/doc/", EntryType::Directory),
        ("usr/share/doc/README", EntryType::Link),
        ("var/", EntryType::Directory),
        ("var/.wh.log", EntryType::Regular),
    ]
    .into_iter()
    .map(|(n, k)| (n.to_string(), k))
    .collect();
    // The long directory sorts by its components: "app/tmp" < "app/xxx…".
    assert_eq!(listed, expected);
    assert_eq!(stats.entries, expected.len() as u64);

    let by_name = |n: &str| members.iter().find(|m| m.name == n).unwrap();
    let tool = by_name("bin/tool");
    assert_eq!(
        (tool.mode, tool.data.as_slice()),
        (0o4755, &b"#!/bin/sh\necho tool\n"[..])
    );
    assert_eq!(
        by_name("usr/share/doc/README").link.as_deref(),
        Some("app/readme-link")
    );
    assert_eq!(by_name("app/h2").link.as_deref(), Some("app/h1"));
    let main = by_name("app/main.txt");
    assert_eq!(main.mtime, 1_111_111_111);
    assert_eq!(main.pax["SCHILY.xattr.user.note"], b"hello");
    assert_eq!(main.pax["SCHILY.xattr.trusted.berth"], b"\x00\x01");
    assert_eq!(by_name("app/").pax["SCHILY.xattr.user.dir"], b"d");
    assert_eq!(by_name("app/owned").pax["gid"], b"3000000");
    for m in &members {
        assert!(
            !m.pax
                .keys()
                .any(|k| k.starts_with("SCHILY.xattr.trusted.overlay.")),
            "overlay xattr exported on {}",
            m.name
        );
    }
    assert_eq!(
        stats.content_size,
        (4 + 6 + 1 + 4 + 4 + 5 + 3) as u64
            + fs::metadata(merged.join("etc/passwd")).unwrap().len()
            + fs::metadata(merged.join("bin/tool")).unwrap().len()
    );

    // Same upper → same bytes.
    let (again, _) = layer(&upper);
    assert_eq!(again, bytes);

    // Round trip: the layer unpacked as its own snapshot, stacked on the same lowers,
    // shows exactly the tree the build step saw.
    let l2 = fx.dir("l2");
    let unpacked = layer_unpack::unpack(bytes.as_slice(), &l2).unwrap();
    assert_eq!(unpacked.diff_id, stats.diff_id);
    let merged2 = fx.dir("merged2");
    fx.mount(&[&l2, &l1, &l0], None, &merged2);
    let after = snapshot(&merged2);
    let keys_before: Vec<_> = before.keys().collect();
    let keys_after: Vec<_> = after.keys().collect();
    assert_eq!(keys_before, keys_after);
    for (k, v) in &before {
        assert_eq!(Some(v), after.get(k), "difference at {k}");
    }
    // Sanity: the interesting paths are really there (or gone).
    for gone in [
        "etc/hosts",
        "etc/issue",
        "etc/motd",
        "var/log",
        "data/keep1",
        "opt/lib",
    ] {
        assert!(!before.contains_key(gone), "{gone} should be hidden");
    }
    assert!(before.contains_key("opt/lib2/c.so"));
    assert_eq!(before["app/h1"].nlink, Some(2));
    assert_eq!(before["bin/tool"].mode, 0o4755);
}

#[test]
fn untouched_mount_is_empty_and_touch_is_not() {
    if !is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    let mut fx = Fixture::new();
    let (l0, l1) = lowers(&fx);
    let (upper, work, merged) = (fx.dir("upper"), fx.dir("work"), fx.dir("merged"));
    fx.mount(&[&l1, &l0], Some((&upper, &work)), &merged);
    // Reading does not copy anything up.
    let _ = fs::read(merged.join("etc/passwd")).unwrap();
    let _ = snapshot(&merged);
    assert!(is_empty(&upper).unwrap());
    let (bytes, stats) = layer(&upper);
    assert_eq!((stats.entries, bytes.len()), (0, 1024));

    // `touch` of an existing file: a copy-up with new times only.
    set_mtime(&merged.join("etc/passwd"), 1_700_000_000);
    assert!(!is_empty(&upper).unwrap());
    let (bytes, _) = layer(&upper);
    let m = read_members(&bytes);
    let got: Vec<_> = m.iter().map(|m| (m.name.as_str(), m.mtime)).collect();
    assert_eq!(got[1], ("etc/passwd", 1_700_000_000));
    assert_eq!(got.len(), 2);
}
