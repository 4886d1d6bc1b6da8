//! Tests on hand-made upper directories (overlay format built directly: `mknod` 0:0
//! whiteouts, `trusted.overlay.*` xattrs). They need root for `mknod`, `chown` and
//! `trusted.*` attributes and are skipped otherwise.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use nix::sys::stat::{mknod, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use tar::EntryType;

use crate::*;

pub(crate) fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

pub(crate) fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("berth-t-layerdiff-")
        .tempdir()
        .expect("tempdir")
}

pub(crate) fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    let p = CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = CString::new(name).unwrap();
    // SAFETY: valid NUL-terminated strings and a valid buffer.
    let r = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(
        r,
        0,
        "setxattr {name} on {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

pub(crate) fn whiteout(path: &Path) {
    mknod(path, SFlag::S_IFCHR, Mode::empty(), 0).expect("mknod whiteout");
}

pub(crate) fn set_mtime(path: &Path, secs: i64) {
    let t = TimeSpec::new(secs, 0);
    utimensat(None, path, &t, &t, UtimensatFlags::NoFollowSymlink).expect("utimensat");
}

pub(crate) fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// One member as read back with the `tar` crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Got {
    pub name: String,
    pub kind: EntryType,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub data: Vec<u8>,
    pub link: Option<String>,
    pub dev: (u32, u32),
    pub pax: BTreeMap<String, Vec<u8>>,
}

pub(crate) fn read_members(tar_bytes: &[u8]) -> Vec<Got> {
    let mut ar = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    for e in ar.entries().expect("entries") {
        let mut e = e.expect("entry");
        let mut pax = BTreeMap::new();
        if let Some(exts) = e.pax_extensions().expect("pax") {
            for x in exts {
                let x = x.expect("pax record");
                pax.insert(x.key().unwrap().to_string(), x.value_bytes().to_vec());
            }
        }
        let h = e.header().clone();
        let name = String::from_utf8(e.path_bytes().into_owned()).unwrap();
        let link = e
            .link_name_bytes()
            .map(|l| String::from_utf8(l.into_owned()).unwrap());
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push(Got {
            name,
            kind: h.entry_type(),
            mode: h.mode().unwrap(),
            uid: e.header().uid().unwrap(),
            gid: e.header().gid().unwrap(),
            mtime: h.mtime().unwrap(),
            data,
            link,
            dev: (
                h.device_major().ok().flatten().unwrap_or(0),
                h.device_minor().ok().flatten().unwrap_or(0),
            ),
            pax,
        });
    }
    out
}

pub(crate) fn layer(upper: &Path) -> (Vec<u8>, DiffStats) {
    let mut buf = Vec::new();
    let stats = write_layer(upper, &mut buf).expect("write_layer");
    (buf, stats)
}

fn names(members: &[Got]) -> Vec<(&str, EntryType)> {
    members.iter().map(|m| (m.name.as_str(), m.kind)).collect()
}

fn find<'a>(members: &'a [Got], name: &str) -> &'a Got {
    members
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no member {name}"))
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipping: needs root");
            return;
        }
    };
}

#[test]
fn all_member_kinds() {
    require_root!();
    let t = tempdir();
    let u = t.path().join("upper");
    fs::create_dir(&u).unwrap();
    fs::create_dir_all(u.join("d/sub")).unwrap();
    fs::write(u.join("d/sub/f"), b"hello").unwrap();
    fs::write(u.join("file"), b"data").unwrap();
    fs::create_dir(u.join("tmp")).unwrap();
    chmod(&u.join("tmp"), 0o1777);
    symlink("../etc/passwd", u.join("link")).unwrap();
    mknod(
        &u.join("fifo"),
        SFlag::S_IFIFO,
        Mode::from_bits_truncate(0o600),
        0,
    )
    .unwrap();
    mknod(
        &u.join("null"),
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o666),
        libc::makedev(1, 3),
    )
    .unwrap();
    mknod(
        &u.join("blk"),
        SFlag::S_IFBLK,
        Mode::from_bits_truncate(0o660),
        libc::makedev(7, 200),
    )
    .unwrap();
    chmod(&u.join("blk"), 0o660); // mknod applies the umask
    whiteout(&u.join("d/gone"));
    fs::create_dir(u.join("opq")).unwrap();
    chmod(&u.join("opq"), 0o750);
    set_xattr(&u.join("opq"), "trusted.overlay.opaque", b"y");
    fs::write(u.join("opq/new"), b"n").unwrap();
    // Overlay bookkeeping that must never be exported.
    set_xattr(&u.join("d"), "trusted.overlay.origin", b"\x00\xfb");
    set_xattr(&u.join("d"), "trusted.overlay.impure", b"y");
    set_xattr(&u.join("file"), "user.note", b"v1");
    set_xattr(&u.join("file"), "trusted.berth", b"t");
    let _sock = std::os::unix::net::UnixListener::bind(u.join("sock")).unwrap();
    std::os::unix::fs::lchown(u.join("file"), Some(1000), Some(2000)).unwrap();
    chmod(&u.join("file"), 0o4755); // after chown, which clears setuid
    set_mtime(&u.join("file"), 1_234_567_890);

    let (bytes, stats) = layer(&u);
    let m = read_members(&bytes);
    assert_eq!(
        names(&m),
        vec![
            ("blk", EntryType::Block),
            ("d/", EntryType::Directory),
            ("d/.wh.gone", EntryType::Regular),
            ("d/sub/", EntryType::Directory),
            ("d/sub/f", EntryType::Regular),
            ("fifo", EntryType::Fifo),
            ("file", EntryType::Regular),
            ("link", EntryType::Symlink),
            ("null", EntryType::Char),
            ("opq/", EntryType::Directory),
            ("opq/.wh..wh..opq", EntryType::Regular),
            ("opq/new", EntryType::Regular),
            ("tmp/", EntryType::Directory),
        ]
    );
    let f = find(&m, "file");
    assert_eq!(
        (f.mode, f.uid, f.gid, f.mtime),
        (0o4755, 1000, 2000, 1_234_567_890)
    );
    assert_eq!(f.data, b"data");
    assert_eq!(
        f.pax.keys().collect::<Vec<_>>(),
        vec!["SCHILY.xattr.trusted.berth", "SCHILY.xattr.user.note"]
    );
    assert_eq!(f.pax["SCHILY.xattr.user.note"], b"v1");
    assert!(find(&m, "d/").pax.is_empty(), "overlay xattrs leaked");
    assert!(find(&m, "opq/").pax.is_empty(), "opaque xattr leaked");
    assert_eq!(find(&m, "opq/").mode, 0o750);
    let opq = find(&m, "opq/.wh..wh..opq");
    assert_eq!((opq.mode, opq.data.len()), (0o750, 0));
    let wh = find(&m, "d/.wh.gone");
    assert_eq!((wh.mode, wh.data.len()), (0, 0));
    assert_eq!(find(&m, "tmp/").mode, 0o1777);
    assert_eq!(find(&m, "link").link.as_deref(), Some("../etc/passwd"));
    assert_eq!(find(&m, "null").dev, (1, 3));
    assert_eq!(find(&m, "blk").dev, (7, 200));
    assert_eq!(find(&m, "blk").mode, 0o660);

    assert_eq!(stats.entries, 13);
    assert_eq!(stats.content_size, 4 + 5 + 1);
    assert_eq!(stats.tar_size, bytes.len() as u64);
    assert_eq!(stats.diff_id, layer_unpack::sha256_digest(&bytes));
    // layer_unpack accepts it and agrees on the digest and sizes.
    let seen = layer_unpack::inspect(bytes.as_slice()).unwrap();
    assert_eq!(seen.diff_id, stats.diff_id);
    assert_eq!(seen.content_size, stats.content_size);
    assert_eq!(seen.whiteouts, 1);
    assert_eq!(seen.opaque_dirs, 1);
}

#[test]
fn deterministic_and_sorted_depth_first() {
    require_root!();
    let t = tempdir();
    let u = t.path();
    for d in ["a", "a/x", "B"] {
        fs::create_dir(u.join(d)).unwrap();
    }
    for f in ["a-b", "a0", "a/x/1", "a/.hidden", "B/z", "_"] {
        fs::write(u.join(f), f.as_bytes()).unwrap();
    }
    let (one, s1) = layer(u);
    let (two, s2) = layer(u);
    assert_eq!(one, two);
    assert_eq!(s1, s2);
    let m = read_members(&one);
    let got: Vec<&str> = m.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        got,
        vec![
            "B/",
            "B/z",
            "_",
            "a/",
            "a/.hidden",
            "a/x/",
            "a/x/1",
            "a-b",
            "a0"
        ]
    );
    // Plain ustar members: no PAX headers when nothing needs them.
    assert!(m.iter().all(|m| m.pax.is_empty()));
    assert!(m
        .iter()
        .all(|m| !m.name.starts_with('/') && !m.name.starts_with("./")));
}

#[test]
fn hardlinks_become_link_members() {
    require_root!();
    let t = tempdir();
    let u = t.path();
    fs::create_dir(u.join("d")).unwrap();
    fs::write(u.join("d/orig"), b"0123456789").unwrap();
    fs::hard_link(u.join("d/orig"), u.join("a-link")).unwrap();
    fs::hard_link(u.join("d/orig"), u.join("z-link")).unwrap();
    mknod(
        &u.join("p"),
        SFlag::S_IFIFO,
        Mode::from_bits_truncate(0o644),
        0,
    )
    .unwrap();
    fs::hard_link(u.join("p"), u.join("p2")).unwrap();
    // Whiteouts sharing one inode (overlayfs reuses a shared whiteout) stay whiteouts.
    whiteout(&u.join("w1"));
    fs::hard_link(u.join("w1"), u.join("w2")).unwrap();

    let (bytes, stats) = layer(u);
    let m = read_members(&bytes);
    assert_eq!(
        names(&m),
        vec![
            ("a-link", EntryType::Regular),
            ("d/", EntryType::Directory),
            ("d/orig", EntryType::Link),
            ("p", EntryType::Fifo),
            ("p2", EntryType::Link),
            (".wh.w1", EntryType::Regular),
            (".wh.w2", EntryType::Regular),
            ("z-link", EntryType::Link),
        ]
    );
    assert_eq!(find(&m, "a-link").data, b"0123456789");
    assert_eq!(find(&m, "d/orig").link.as_deref(), Some("a-link"));
    assert_eq!(find(&m, "z-link").link.as_deref(), Some("a-link"));
    assert_eq!(find(&m, "p2").link.as_deref(), Some("p"));
    assert_eq!(stats.content_size, 10);
    assert_eq!(stats.entries, 8);

    // Unpacking restores the link.
    let dest = tempdir();
    layer_unpack::unpack(bytes.as_slice(), dest.path()).unwrap();
    use std::os::unix::fs::MetadataExt;
    let a = fs::metadata(dest.path().join("a-link")).unwrap();
    let z = fs::metadata(dest.path().join("z-link")).unwrap();
    assert_eq!(a.ino(), z.ino());
    assert_eq!(a.nlink(), 3);
}

#[test]
fn long_names_big_ids_and_long_links_use_pax() {
    require_root!();
    let t = tempdir();
    let u = t.path();
    let deep = format!("{}/{}", "d".repeat(120), "e".repeat(120));
    fs::create_dir_all(u.join(&deep)).unwrap();
    let long_file = format!("{deep}/{}", "f".repeat(200));
    fs::write(u.join(&long_file), b"x").unwrap();
    fs::write(u.join(format!("{}/short", "d".repeat(120))), b"s").unwrap();
    let target = "t/".repeat(80);
    symlink(&target, u.join("sl")).unwrap();
    fs::write(u.join("big"), b"").unwrap();
    std::os::unix::fs::lchown(u.join("big"), Some(3_000_000), Some(4_000_000)).unwrap();

    let (bytes, _) = layer(u);
    let m = read_members(&bytes);
    let f = find(&m, &long_file);
    assert_eq!(f.pax["path"], long_file.as_bytes());
    assert!(find(&m, &format!("{deep}/")).kind == EntryType::Directory);
    assert_eq!(find(&m, "sl").link.as_deref(), Some(target.as_str()));
    assert_eq!(find(&m, "sl").pax["linkpath"], target.as_bytes());
    let b = find(&m, "big");
    assert_eq!((b.uid, b.gid), (3_000_000, 4_000_000));
    assert_eq!(b.pax["uid"], b"3000000");
    assert_eq!(b.pax["gid"], b"4000000");
    // A 126-byte name splits into ustar's prefix (120) and name (5): no PAX needed.
    let split = format!("{}/short", "d".repeat(120));
    assert!(!find(&m, &split).pax.contains_key("path"));
    assert_eq!(find(&m, &split).data, b"s");

    let dest = tempdir();
    layer_unpack::unpack(bytes.as_slice(), dest.path()).unwrap();
    assert_eq!(fs::read(dest.path().join(&long_file)).unwrap(), b"x");
    use std::os::unix::fs::MetadataExt;
    let md = fs::symlink_metadata(dest.path().join("big")).unwrap();
    assert_eq!((md.uid(), md.gid()), (3_000_000, 4_000_000));
}

#[test]
fn symlinks_are_never_followed() {
    require_root!();
    let t = tempdir();
    let outside = t.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), b"s").unwrap();
    let u = t.path().join("upper");
    fs::create_dir(&u).unwrap();
    symlink(&outside, u.join("dirlink")).unwrap();
    symlink(outside.join("secret"), u.join("filelink")).unwrap();
    let (bytes, stats) = layer(&u);
    let m = read_members(&bytes);
    assert_eq!(
        names(&m),
        vec![
            ("dirlink", EntryType::Symlink),
            ("filelink", EntryType::Symlink)
        ]
    );
    assert_eq!(stats.content_size, 0);
}

#[test]
fn metacopy_and_redirect_are_rejected() {
    require_root!();
    let t = tempdir();
    let u = t.path();
    fs::write(u.join("f"), b"").unwrap();
    set_xattr(&u.join("f"), "trusted.overlay.metacopy", b"");
    let err = write_layer(u, std::io::sink()).unwrap_err();
    assert!(
        matches!(err, DiffError::Unsupported { ref path, .. } if path == "f"),
        "{err}"
    );

    let t = tempdir();
    let u = t.path();
    fs::create_dir(u.join("moved")).unwrap();
    set_xattr(&u.join("moved"), "trusted.overlay.redirect", b"/orig");
    let err = write_layer(u, std::io::sink()).unwrap_err();
    assert!(
        matches!(err, DiffError::Unsupported { ref path, .. } if path == "moved"),
        "{err}"
    );
}

#[test]
fn is_empty_cases() {
    require_root!();
    let t = tempdir();
    let u = t.path();
    assert!(is_empty(u).unwrap());
    let (bytes, stats) = layer(u);
    assert_eq!(stats.entries, 0);
    assert_eq!(bytes, vec![0u8; 1024]);
    let _sock = std::os::unix::net::UnixListener::bind(u.join("s")).unwrap();
    assert!(is_empty(u).unwrap());
    whiteout(&u.join("w"));
    assert!(!is_empty(u).unwrap());
    assert!(matches!(
        is_empty(&u.join("missing")),
        Err(DiffError::Sys { op: "open", .. })
    ));
    assert!(write_layer(&u.join("missing"), std::io::sink()).is_err());
}

#[test]
fn leaves_no_open_fds() {
    require_root!();
    let t = tempdir();
    let u = t.path();
    fs::create_dir_all(u.join("a/b/c/d")).unwrap();
    fs::write(u.join("a/b/c/d/f"), b"x").unwrap();
    fs::write(u.join("a/g"), b"y").unwrap();
    layer(u);
    // Nothing may stay open below the tree (other tests use other directories).
    let prefix = u.as_os_str().as_bytes();
    for fd in fs::read_dir("/proc/self/fd").unwrap().flatten() {
        if let Ok(target) = fs::read_link(fd.path()) {
            assert!(
                !target.as_os_str().as_bytes().starts_with(prefix),
                "fd left open on {}",
                target.display()
            );
        }
    }
}

#[test]
fn write_errors_are_reported() {
    require_root!();
    struct Failing;
    impl std::io::Write for Failing {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk full"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let t = tempdir();
    fs::write(t.path().join("f"), vec![7u8; 300_000]).unwrap();
    let err = write_layer(t.path(), Failing).unwrap_err();
    assert!(matches!(err, DiffError::Write(_)), "{err}");
}
