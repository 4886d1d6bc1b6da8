//! End-to-end tests: archives are built in memory (raw headers, so hostile names are
//! possible) and unpacked into temporary directories.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use tar::{EntryType, Header};

use crate::*;

/// Builds archives with arbitrary (unvalidated) member names.
struct Tar {
    b: tar::Builder<Vec<u8>>,
}

impl Tar {
    fn new() -> Self {
        Tar {
            b: tar::Builder::new(Vec::new()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn raw(
        &mut self,
        name: &str,
        ty: EntryType,
        mode: u32,
        uid: u64,
        data: &[u8],
        link: Option<&str>,
        dev: Option<(u32, u32)>,
    ) -> &mut Self {
        let mut h = Header::new_gnu();
        let n = name.as_bytes();
        assert!(n.len() < 100, "test names must fit the header");
        h.as_old_mut().name[..n.len()].copy_from_slice(n);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(uid);
        h.set_mtime(1_600_000_000);
        h.set_size(data.len() as u64);
        h.set_entry_type(ty);
        if let Some(l) = link {
            h.set_link_name_literal(l).unwrap();
        }
        if let Some((ma, mi)) = dev {
            h.set_device_major(ma).unwrap();
            h.set_device_minor(mi).unwrap();
        }
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    fn file(&mut self, name: &str, data: &[u8], mode: u32) -> &mut Self {
        self.raw(name, EntryType::Regular, mode, 0, data, None, None)
    }

    fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        self.raw(name, EntryType::Directory, mode, 0, b"", None, None)
    }

    fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(name, EntryType::Symlink, 0o777, 0, b"", Some(target), None)
    }

    fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(name, EntryType::Link, 0o644, 0, b"", Some(target), None)
    }

    fn pax(&mut self, exts: &[(&str, &[u8])]) -> &mut Self {
        self.b.append_pax_extensions(exts.iter().copied()).unwrap();
        self
    }

    fn finish(&mut self) -> Vec<u8> {
        let b = std::mem::replace(&mut self.b, tar::Builder::new(Vec::new()));
        b.into_inner().unwrap()
    }
}

fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("berth-t-layer-")
        .tempdir()
        .unwrap()
}

fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: valid C strings and buffer.
    let r = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        None
    } else {
        buf.truncate(r as usize);
        Some(buf)
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[test]
fn normal_members_and_metadata() {
    let data = Tar::new()
        .dir("bin/", 0o755)
        .raw(
            "bin/su",
            EntryType::Regular,
            0o4755,
            0,
            b"#!/bin/sh\n",
            None,
            None,
        )
        .raw(
            "home/user/f",
            EntryType::Regular,
            0o640,
            1000,
            b"hello",
            None,
            None,
        )
        .symlink("bin/sh", "busybox")
        .symlink("abs", "/etc/passwd")
        .hardlink("bin/su2", "bin/su")
        .pax(&[
            ("SCHILY.xattr.user.note", b"hi"),
            ("mtime", b"1600000001.5"),
        ])
        .file("xattr-file", b"x", 0o600)
        .dir("ro/", 0o555)
        .file("ro/inside", b"y", 0o444)
        .raw("fifo", EntryType::Fifo, 0o620, 0, b"", None, None)
        .raw("null", EntryType::Char, 0o666, 0, b"", None, Some((1, 3)))
        .finish();
    let dest = tmp();
    let stats = unpack(&data[..], dest.path()).unwrap();
    let d = dest.path();

    assert_eq!(stats.files, 4);
    assert_eq!(stats.dirs, 2);
    assert_eq!(stats.symlinks, 2);
    assert_eq!(stats.hardlinks, 1);
    assert_eq!(stats.devices, 2);
    assert_eq!(stats.content_size, 10 + 5 + 1 + 1);
    assert_eq!(stats.compression, Compression::None);
    assert_eq!(stats.diff_id, sha256_digest(&data));
    assert_eq!(stats.tar_size, data.len() as u64);

    let su = fs::symlink_metadata(d.join("bin/su")).unwrap();
    assert_eq!(su.mode() & 0o7777, 0o4755, "setuid preserved");
    assert_eq!(su.mtime(), 1_600_000_000);
    assert_eq!(fs::read(d.join("bin/su")).unwrap(), b"#!/bin/sh\n");
    assert_eq!(
        fs::symlink_metadata(d.join("bin/su2")).unwrap().ino(),
        su.ino(),
        "hardlink shares the inode"
    );
    assert_eq!(
        fs::read_link(d.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert_eq!(
        fs::read_link(d.join("abs")).unwrap(),
        Path::new("/etc/passwd")
    );
    let sh = fs::symlink_metadata(d.join("bin/sh")).unwrap();
    assert_eq!(
        sh.mtime(),
        1_600_000_000,
        "symlink mtime set without following"
    );

    let f = fs::metadata(d.join("home/user/f")).unwrap();
    assert_eq!(f.mode() & 0o7777, 0o640);
    if is_root() {
        assert_eq!((f.uid(), f.gid()), (1000, 1000));
    }
    // Implicitly created parents.
    assert!(fs::metadata(d.join("home/user")).unwrap().is_dir());

    let x = fs::metadata(d.join("xattr-file")).unwrap();
    assert_eq!((x.mtime(), x.mtime_nsec()), (1_600_000_001, 500_000_000));
    assert_eq!(
        get_xattr(&d.join("xattr-file"), "user.note").as_deref(),
        Some(&b"hi"[..])
    );

    let ro = fs::metadata(d.join("ro")).unwrap();
    assert_eq!(ro.mode() & 0o7777, 0o555, "dir mode applied after children");
    assert_eq!(
        ro.mtime(),
        1_600_000_000,
        "dir mtime applied after children"
    );
    assert_eq!(fs::read(d.join("ro/inside")).unwrap(), b"y");
    let bin = fs::metadata(d.join("bin")).unwrap();
    assert_eq!(bin.mtime(), 1_600_000_000);

    let fifo = fs::symlink_metadata(d.join("fifo")).unwrap();
    assert!(fifo.file_type().is_fifo());
    assert_eq!(fifo.mode() & 0o7777, 0o620);
    if is_root() {
        let null = fs::symlink_metadata(d.join("null")).unwrap();
        assert!(null.file_type().is_char_device());
        assert_eq!(null.rdev(), libc::makedev(1, 3));
    }

    // inspect sees the same archive the same way.
    let seen = inspect(&data[..]).unwrap();
    assert_eq!(seen.diff_id, stats.diff_id);
    assert_eq!(seen.entries, stats.entries);
    assert_eq!(seen.content_size, stats.content_size);
}

#[test]
fn whiteouts_and_opaque_dirs() {
    if !is_root() {
        return; // overlay markers need CAP_MKNOD / trusted.* xattrs
    }
    let data = Tar::new()
        .dir("etc/", 0o755)
        .file("etc/.wh.motd", b"", 0o644)
        .dir("var/cache/", 0o755)
        .file("var/cache/.wh..wh..opq", b"", 0o644)
        .file("var/cache/new", b"n", 0o644)
        .file(".wh.gone-dir", b"", 0o644)
        .file("usr/.wh..wh.plnk", b"", 0o644)
        .finish();
    let dest = tmp();
    let stats = unpack(&data[..], dest.path()).unwrap();
    let d = dest.path();
    assert_eq!(stats.whiteouts, 2);
    assert_eq!(stats.opaque_dirs, 1);
    assert_eq!(stats.skipped, 1);

    for w in ["etc/motd", "gone-dir"] {
        let m = fs::symlink_metadata(d.join(w)).unwrap();
        assert!(m.file_type().is_char_device(), "{w} is a whiteout");
        assert_eq!(m.rdev(), 0);
    }
    assert!(!d.join("etc/.wh.motd").exists());
    assert_eq!(
        get_xattr(&d.join("var/cache"), OPAQUE_XATTR).as_deref(),
        Some(&b"y"[..])
    );
    assert!(!d.join("var/cache/.wh..wh..opq").exists());
    assert_eq!(fs::read(d.join("var/cache/new")).unwrap(), b"n");
    assert!(!d.join("usr/.wh..wh.plnk").exists());
}

#[test]
fn archive_overlay_xattrs_are_ignored() {
    if !is_root() {
        return;
    }
    let data = Tar::new()
        .pax(&[("SCHILY.xattr.trusted.overlay.opaque", b"y")])
        .dir("d/", 0o755)
        .finish();
    let dest = tmp();
    unpack(&data[..], dest.path()).unwrap();
    assert_eq!(get_xattr(&dest.path().join("d"), OPAQUE_XATTR), None);
}

#[test]
fn dotdot_escape_is_refused() {
    let parent = tmp();
    let dest = parent.path().join("dest");
    fs::create_dir(&dest).unwrap();
    let data = Tar::new().file("../escaped", b"x", 0o644).finish();
    let err = unpack(&data[..], &dest).unwrap_err();
    assert!(matches!(err, UnpackError::PathEscape { .. }), "{err}");
    assert!(!parent.path().join("escaped").exists());

    let data = Tar::new().file("a/../../escaped", b"x", 0o644).finish();
    assert!(matches!(
        unpack(&data[..], &dest),
        Err(UnpackError::PathEscape { .. })
    ));
    assert!(matches!(
        inspect(&data[..]),
        Err(UnpackError::PathEscape { .. })
    ));
    assert!(!parent.path().join("escaped").exists());
}

#[test]
fn absolute_names_stay_inside() {
    let dest = tmp();
    let data = Tar::new()
        .file("/berth-t-abs-test", b"x", 0o644)
        .file("/../../berth-t-abs-dots", b"x", 0o644)
        .finish();
    // "/../.." climbs above the root: refused; the first member was written inside.
    assert!(matches!(
        unpack(&data[..], dest.path()),
        Err(UnpackError::PathEscape { .. })
    ));
    assert!(dest.path().join("berth-t-abs-test").exists());
    assert!(!Path::new("/berth-t-abs-test").exists());

    let data = Tar::new().file("/etc/berth-t-file", b"x", 0o644).finish();
    unpack(&data[..], dest.path()).unwrap();
    assert!(dest.path().join("etc/berth-t-file").exists());
    assert!(!Path::new("/etc/berth-t-file").exists());
}

#[test]
fn symlink_then_write_through_it_is_refused() {
    let outside = tmp();
    let dest = tmp();
    let link_target = outside.path().to_str().unwrap().to_string();
    let data = Tar::new()
        .symlink("evil", &link_target)
        .file("evil/pwned", b"x", 0o644)
        .finish();
    let err = unpack(&data[..], dest.path()).unwrap_err();
    assert!(matches!(err, UnpackError::UnsafePath { .. }), "{err}");
    assert!(!outside.path().join("pwned").exists());

    // Same through a relative symlink and through a nested directory.
    let dest = tmp();
    let data = Tar::new()
        .dir("a/", 0o755)
        .symlink("a/up", "../../../../../../../../")
        .file("a/up/berth-t-pwned", b"x", 0o644)
        .finish();
    assert!(matches!(
        unpack(&data[..], dest.path()),
        Err(UnpackError::UnsafePath { .. })
    ));
    assert!(!Path::new("/berth-t-pwned").exists());

    // A symlink to /etc must not let a later entry write into the host's /etc.
    let dest = tmp();
    let data = Tar::new()
        .symlink("etc", "/etc")
        .file("etc/berth-t-hostile", b"x", 0o644)
        .finish();
    assert!(unpack(&data[..], dest.path()).is_err());
    assert!(!Path::new("/etc/berth-t-hostile").exists());
}

#[test]
fn member_replacing_a_symlink_replaces_the_link_not_its_target() {
    let outside = tmp();
    fs::write(outside.path().join("victim"), b"original").unwrap();
    let dest = tmp();
    let victim = outside.path().join("victim");
    let data = Tar::new()
        .symlink("f", victim.to_str().unwrap())
        .file("f", b"overwritten", 0o644)
        .symlink("d", outside.path().to_str().unwrap())
        .dir("d/", 0o755)
        .file("d/inner", b"i", 0o644)
        .finish();
    unpack(&data[..], dest.path()).unwrap();
    assert_eq!(fs::read(&victim).unwrap(), b"original");
    assert_eq!(fs::read(dest.path().join("f")).unwrap(), b"overwritten");
    assert!(fs::symlink_metadata(dest.path().join("d"))
        .unwrap()
        .is_dir());
    assert!(!outside.path().join("inner").exists());
}

#[test]
fn hardlinks_must_stay_inside() {
    let outside = tmp();
    fs::write(outside.path().join("secret"), b"s").unwrap();
    let dest = tmp();

    let data = Tar::new()
        .hardlink("h", "../../../../../../etc/passwd")
        .finish();
    let err = unpack(&data[..], dest.path()).unwrap_err();
    assert!(matches!(err, UnpackError::InvalidHardlink { .. }), "{err}");
    assert!(inspect(&data[..]).is_err());

    // An absolute target is resolved inside the destination, never on the host.
    let data = Tar::new().hardlink("h", "/etc/passwd").finish();
    assert!(matches!(
        unpack(&data[..], dest.path()),
        Err(UnpackError::InvalidHardlink { .. })
    ));
    assert!(!dest.path().join("h").exists());

    // Through a symlinked directory planted by the archive.
    let data = Tar::new()
        .symlink("out", outside.path().to_str().unwrap())
        .hardlink("h", "out/secret")
        .finish();
    assert!(matches!(
        unpack(&data[..], dest.path()),
        Err(UnpackError::InvalidHardlink { .. })
    ));
    assert!(!dest.path().join("h").exists());

    // A hardlink to a symlink links the symlink itself.
    let dest = tmp();
    let data = Tar::new()
        .symlink("s", outside.path().join("secret").to_str().unwrap())
        .hardlink("h", "s")
        .finish();
    unpack(&data[..], dest.path()).unwrap();
    assert!(fs::symlink_metadata(dest.path().join("h"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn replacement_semantics() {
    let dest = tmp();
    let data = Tar::new()
        .dir("x/", 0o755)
        .file("x/child", b"c", 0o644)
        .file("x", b"now a file", 0o644)
        .file("y", b"first", 0o644)
        .dir("y/", 0o700)
        .file("z", b"first", 0o644)
        .file("z", b"second", 0o600)
        .dir("w/", 0o755)
        .file("w/keep", b"k", 0o644)
        .dir("w/", 0o711)
        .finish();
    unpack(&data[..], dest.path()).unwrap();
    let d = dest.path();
    assert_eq!(fs::read(d.join("x")).unwrap(), b"now a file");
    assert!(fs::metadata(d.join("y")).unwrap().is_dir());
    assert_eq!(fs::read(d.join("z")).unwrap(), b"second");
    assert_eq!(
        fs::metadata(d.join("z")).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fs::read(d.join("w/keep")).unwrap(),
        b"k",
        "dir re-declared keeps content"
    );
    assert_eq!(fs::metadata(d.join("w")).unwrap().mode() & 0o777, 0o711);
}

#[test]
fn root_entry_sets_root_metadata() {
    let dest = tmp();
    let data = Tar::new()
        .dir("./", 0o750)
        .file("./a", b"a", 0o644)
        .finish();
    unpack(&data[..], dest.path()).unwrap();
    assert_eq!(fs::metadata(dest.path()).unwrap().mode() & 0o777, 0o750);
    assert!(dest.path().join("a").exists());

    let data = Tar::new().file(".", b"a", 0o644).finish();
    let data2 = Tar::new().symlink("/", "x").finish();
    assert!(unpack(&data[..], dest.path()).is_err());
    assert!(unpack(&data2[..], dest.path()).is_err());
}

#[test]
fn gzip_and_zstd_inputs() {
    let plain = Tar::new()
        .dir("d/", 0o755)
        .file("d/f", &vec![b'z'; 200_000], 0o644)
        .finish();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).unwrap();
    let gz = gz.finish().unwrap();
    let zs = zstd::stream::encode_all(&plain[..], 3).unwrap();

    for (input, comp) in [(&gz, Compression::Gzip), (&zs, Compression::Zstd)] {
        let dest = tmp();
        let stats = unpack(&input[..], dest.path()).unwrap();
        assert_eq!(stats.compression, comp);
        assert_eq!(
            stats.diff_id,
            sha256_digest(&plain),
            "diff_id is of the uncompressed tar"
        );
        assert_eq!(stats.tar_size, plain.len() as u64);
        assert_eq!(fs::read(dest.path().join("d/f")).unwrap().len(), 200_000);
        assert_eq!(
            diff_id(&input[..]).unwrap(),
            (sha256_digest(&plain), plain.len() as u64)
        );
    }
}

#[test]
fn truncated_archives_error_without_panicking() {
    let plain = Tar::new()
        .dir("d/", 0o755)
        .file("d/f", &vec![b'q'; 5000], 0o644)
        .file("d/g", b"tail", 0o644)
        .finish();
    // Cut in the middle of file data: must be an error.
    let cut = &plain[..512 * 2 + 1000];
    let dest = tmp();
    let err = unpack(cut, dest.path()).unwrap_err();
    assert!(
        matches!(err, UnpackError::Truncated { .. } | UnpackError::Archive(_)),
        "{err}"
    );
    // Every other cut point: never a panic; cuts inside a header are errors.
    for len in (0..plain.len()).step_by(97) {
        let dest = tmp();
        let r = unpack(&plain[..len], dest.path());
        if len % 512 != 0 && len < 512 * 14 {
            assert!(r.is_err(), "cut at {len} accepted");
        }
        let _ = inspect(&plain[..len]);
    }
    // Truncated gzip.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).unwrap();
    let gz = gz.finish().unwrap();
    let dest = tmp();
    assert!(unpack(&gz[..gz.len() / 2], dest.path()).is_err());
    // Garbage.
    let garbage = vec![0x55u8; 2048];
    assert!(unpack(&garbage[..], tmp().path()).is_err());
}

#[test]
fn unsupported_formats() {
    let xz = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 0];
    assert!(matches!(
        unpack(&xz[..], tmp().path()),
        Err(UnpackError::Unsupported(_))
    ));
}

#[test]
fn invalid_whiteout_names() {
    let data = Tar::new().file("a/.wh...", b"", 0o644).finish();
    assert!(matches!(
        unpack(&data[..], tmp().path()),
        Err(UnpackError::InvalidPath { .. })
    ));
}

#[test]
fn empty_archive_is_an_empty_layer() {
    let data = Tar::new().finish();
    let dest = tmp();
    let stats = unpack(&data[..], dest.path()).unwrap();
    assert_eq!(stats.entries, 0);
    assert_eq!(stats.diff_id, sha256_digest(&data));
    assert_eq!(fs::read_dir(dest.path()).unwrap().count(), 0);
}
