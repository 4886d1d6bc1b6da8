//! `.dockerignore` semantics (table-driven) and context tars on temporary trees.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use tar::EntryType;

use crate::*;

/// (.dockerignore content, path, excluded?)
const CASES: &[(&str, &str, bool)] = &[
    // Docker documentation example: comments, single-level wildcards, `?`.
    (
        "# comment\n*/temp*\n*/*/temp*\ntemp?\n",
        "somedir/temporary.txt",
        true,
    ),
    (
        "# comment\n*/temp*\n*/*/temp*\ntemp?\n",
        "somedir/temp",
        true,
    ),
    (
        "# comment\n*/temp*\n*/*/temp*\ntemp?\n",
        "somedir/temp/inside",
        true,
    ),
    (
        "# comment\n*/temp*\n*/*/temp*\ntemp?\n",
        "somedir/subdir/temporary.txt",
        true,
    ),
    ("# comment\n*/temp*\n*/*/temp*\ntemp?\n", "tempa", true),
    ("# comment\n*/temp*\n*/*/temp*\ntemp?\n", "tempb", true),
    ("# comment\n*/temp*\n*/*/temp*\ntemp?\n", "temp", false),
    ("# comment\n*/temp*\n*/*/temp*\ntemp?\n", "tempab", false),
    (
        "# comment\n*/temp*\n*/*/temp*\ntemp?\n",
        "temporary.txt",
        false,
    ),
    (
        "# comment\n*/temp*\n*/*/temp*\ntemp?\n",
        "a/b/c/temp",
        false,
    ),
    ("# comment\n*/temp*\n*/*/temp*\ntemp?\n", "# comment", false),
    // `**`
    ("**/*.go", "main.go", true),
    ("**/*.go", "a/b/c.go", true),
    ("**/*.go", "a/b/c.gox", false),
    ("**/*.go", "go", false),
    ("**/node_modules", "node_modules", true),
    ("**/node_modules", "x/node_modules/y", true),
    ("**/node_modules", "xnode_modules", false),
    ("**/.git", "sub/.git/config", true),
    ("a/**", "a", false),
    ("a/**", "a/b", true),
    ("**", "anything/at/all", true),
    ("**\n!keep", "keep", false),
    ("**\n!keep", "keep/below", false),
    ("**\n!keep", "other", true),
    // Exceptions and their order (Docker documentation examples).
    ("*.md\n!README.md", "CHANGES.md", true),
    ("*.md\n!README.md", "README.md", false),
    ("*.md\n!README.md", "docs/x.md", false),
    (
        "*.md\n!README*.md\nREADME-secret.md",
        "README-secret.md",
        true,
    ),
    (
        "*.md\n!README*.md\nREADME-secret.md",
        "README-public.md",
        false,
    ),
    ("*.md\n!README*.md\nREADME-secret.md", "other.md", true),
    (
        "*.md\nREADME-secret.md\n!README*.md",
        "README-secret.md",
        false,
    ),
    ("*.md\nREADME-secret.md\n!README*.md", "other.md", true),
    ("!a\na", "a", true),
    ("docs\n!docs/README.md", "docs", true),
    ("docs\n!docs/README.md", "docs/other", true),
    ("docs\n!docs/README.md", "docs/README.md", false),
    ("a\n!a/b\na/b/c", "a/b", false),
    ("a\n!a/b\na/b/c", "a/b/c", true),
    ("a\n!a/b\na/b/c", "a/b/d", false),
    ("a\n!a/b\na/b/c", "a/x", true),
    ("*\n!*.txt", "x.txt", false),
    ("*\n!*.txt", "x.bin", true),
    ("*\n!*.txt", "d/x.txt", true),
    // Path clean-up: leading `/`, `.`/`..`, trailing `/`, whitespace, CRLF, BOM.
    ("/abs/path", "abs/path", true),
    ("/abs/path", "abs/path/below", true),
    ("./a/../b", "b", true),
    ("./a/../b", "a", false),
    ("dir/", "dir", true),
    ("dir/", "dir/x", true),
    ("dir/", "dirx", false),
    ("  spaced  \n", "spaced", true),
    (" # not a comment", "# not a comment", true),
    ("a\r\nb\r\n", "b", true),
    ("\u{feff}bom", "bom", true),
    ("! /neg\nneg", "neg", true),
    // Classes, `?`, escapes.
    ("file[0-9].txt", "file1.txt", true),
    ("file[0-9].txt", "filea.txt", false),
    ("file[^0-9].txt", "filea.txt", true),
    ("\\*literal", "*literal", true),
    ("\\*literal", "xliteral", false),
    ("?", "a", true),
    ("?", "ab", false),
    ("?", "a/b", true),
    ("", "anything", false),
    ("a", "./a", true),
];

#[test]
fn dockerignore_table() {
    assert!(CASES.len() >= 40);
    for &(content, path, want) in CASES {
        let m = IgnoreMatcher::parse(content).unwrap_or_else(|e| panic!("parse {content:?}: {e}"));
        assert_eq!(
            m.is_excluded(path),
            want,
            "patterns {content:?} on {path:?}"
        );
    }
}

#[test]
fn bad_patterns_are_errors() {
    for bad in ["!", "! ", "[", "a\\", "[z-a]", "ok\n[^", "x\n!/"] {
        assert!(
            matches!(
                IgnoreMatcher::parse(bad),
                Err(ContextError::BadPattern { .. })
            ),
            "{bad:?} should be rejected"
        );
    }
}

#[test]
fn patterns_are_cleaned() {
    let m = IgnoreMatcher::parse("# c\n/a/b/\n!  ./c/../d\n\n  e//f  \n").unwrap();
    assert_eq!(m.patterns(), vec!["a/b", "!d", "e/f"]);
    assert!(!IgnoreMatcher::empty().is_excluded("x"));
    assert!(!m.is_excluded("."));
    assert!(!m.is_excluded(""));
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("berth-t-buildctx-")
        .tempdir()
        .expect("tempdir")
}

fn write(root: &Path, rel: &str, data: &[u8]) {
    let p = root.join(rel);
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(p, data).unwrap();
}

struct Member {
    name: String,
    kind: EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    data: Vec<u8>,
    link: Option<String>,
}

fn members(tar_bytes: &[u8]) -> Vec<Member> {
    let mut ar = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let name = String::from_utf8(e.path_bytes().into_owned()).unwrap();
        let link = e
            .link_name_bytes()
            .map(|l| String::from_utf8(l.into_owned()).unwrap());
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push(Member {
            name,
            kind: h.entry_type(),
            mode: h.mode().unwrap(),
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            mtime: h.mtime().unwrap(),
            data,
            link,
        });
    }
    out
}

fn context_tar(dir: &Path, m: &IgnoreMatcher, always: &[&str]) -> (Vec<u8>, ContextStats) {
    let mut buf = Vec::new();
    let stats = write_context_tar(dir, m, always, &mut buf).expect("write_context_tar");
    (buf, stats)
}

fn names(ms: &[Member]) -> Vec<&str> {
    ms.iter().map(|m| m.name.as_str()).collect()
}

#[test]
fn context_tar_members() {
    let t = tempdir();
    let outside = t.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), b"nope").unwrap();
    let c = t.path().join("ctx");
    fs::create_dir(&c).unwrap();
    write(&c, "Dockerfile", b"FROM scratch\n");
    write(
        &c,
        ".dockerignore",
        b"target\n!target/keep.txt\n*.md\n!README.md\nsecret\n.dockerignore\nDockerfile\n",
    );
    write(&c, "src/main.rs", b"fn main() {}\n");
    write(&c, "src/lib.rs", b"");
    write(&c, "target/debug/app", b"binary");
    write(&c, "target/keep.txt", b"keep");
    write(&c, "docs/README.md", b"docs readme");
    write(&c, "docs/guide.md", b"guide");
    write(&c, "README.md", b"readme");
    write(&c, "notes.md", b"notes");
    write(&c, "secret/key", b"k");
    fs::create_dir(c.join("empty")).unwrap();
    fs::set_permissions(c.join("empty"), fs::Permissions::from_mode(0o1777)).unwrap();
    symlink("src/main.rs", c.join("link")).unwrap();
    symlink(&outside, c.join("dirlink")).unwrap();
    fs::hard_link(c.join("README.md"), c.join("hl")).unwrap();
    nix::unistd::mkfifo(
        &c.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(c.join("sock")).unwrap();
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::lchown(c.join("src/main.rs"), Some(1000), Some(1000)).unwrap();
    }
    // After chown, which clears setuid.
    fs::set_permissions(c.join("src/main.rs"), fs::Permissions::from_mode(0o4750)).unwrap();
    let t0 = nix::sys::time::TimeSpec::new(1_500_000_000, 123);
    nix::sys::stat::utimensat(
        None,
        &c.join("src/main.rs"),
        &t0,
        &t0,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();

    let m = read_dockerignore(&c, Some("Dockerfile")).unwrap();
    let (bytes, stats) = context_tar(&c, &m, &["Dockerfile", ".dockerignore"]);
    let ms = members(&bytes);
    assert_eq!(
        names(&ms),
        vec![
            ".dockerignore",
            "Dockerfile",
            "README.md",
            "dirlink",
            "docs/",
            "docs/README.md",
            "docs/guide.md",
            "empty/",
            "fifo",
            "hl",
            "link",
            "src/",
            "src/lib.rs",
            "src/main.rs",
            "target/keep.txt",
        ]
    );
    let by = |n: &str| ms.iter().find(|m| m.name == n).unwrap();
    let main = by("src/main.rs");
    assert_eq!(
        (main.mode, main.uid, main.gid, main.mtime),
        (0o4750, 0, 0, 1_500_000_000)
    );
    assert_eq!(main.data, b"fn main() {}\n");
    assert!(ms.iter().all(|m| m.uid == 0 && m.gid == 0));
    assert_eq!(by("empty/").mode, 0o1777);
    assert_eq!(by("empty/").kind, EntryType::Directory);
    assert_eq!(by("link").kind, EntryType::Symlink);
    assert_eq!(by("link").link.as_deref(), Some("src/main.rs"));
    assert_eq!(by("dirlink").link.as_deref(), outside.to_str());
    assert_eq!(by("hl").kind, EntryType::Regular);
    assert_eq!(by("hl").data, b"readme");
    assert_eq!(by("fifo").kind, EntryType::Fifo);
    assert_eq!(stats.entries, 15);
    let file_bytes: usize = ms
        .iter()
        .filter(|m| m.kind == EntryType::Regular)
        .map(|m| m.data.len())
        .sum();
    assert_eq!(stats.files, 9);
    assert_eq!(stats.bytes, file_bytes as u64);
    assert_eq!(stats.tar_size, bytes.len() as u64);

    // Deterministic.
    let (again, _) = context_tar(&c, &m, &["Dockerfile", ".dockerignore"]);
    assert_eq!(again, bytes);

    // Without always_include, the ignore file excludes the Dockerfile and itself.
    let (bytes, _) = context_tar(&c, &m, &[]);
    let ms = members(&bytes);
    assert!(!names(&ms).contains(&"Dockerfile"));
    assert!(!names(&ms).contains(&".dockerignore"));

    // No ignore file: everything but the socket.
    let (bytes, _) = context_tar(&c, &IgnoreMatcher::empty(), &[]);
    let all = members(&bytes);
    assert!(names(&all).contains(&"target/"));
    assert!(names(&all).contains(&"target/debug/app"));
    assert!(names(&all).contains(&"secret/key"));
    assert!(!names(&all).iter().any(|n| n.starts_with("sock")));
    assert!(!names(&all)
        .iter()
        .any(|n| n.contains("nope") || n.starts_with("dirlink/")));
}

#[test]
fn forced_paths_inside_excluded_directories() {
    let t = tempdir();
    let c = t.path();
    write(c, "build/Dockerfile", b"FROM scratch\n");
    write(c, "build/other", b"x");
    write(c, ".dockerignore", b"build\n");
    write(c, "app.txt", b"a");
    let m = read_dockerignore(c, Some("build/Dockerfile")).unwrap();
    let (bytes, _) = context_tar(c, &m, &["build/Dockerfile", ".dockerignore"]);
    assert_eq!(
        names(&members(&bytes)),
        vec![".dockerignore", "app.txt", "build/Dockerfile"]
    );
}

#[test]
fn reincluded_paths_below_excluded_directories() {
    let t = tempdir();
    let c = t.path();
    write(c, "logs/a/keep", b"1");
    write(c, "logs/a/drop", b"2");
    write(c, "logs/b.txt", b"3");
    write(c, "cache/x/y", b"4");
    write(c, "vendor/lib/LICENSE", b"5");
    write(c, "vendor/lib/code", b"6");
    let m = IgnoreMatcher::parse("logs\n!logs/*/keep\ncache\nvendor\n!**/LICENSE").unwrap();
    let (bytes, _) = context_tar(c, &m, &[]);
    assert_eq!(
        names(&members(&bytes)),
        vec!["logs/a/keep", "vendor/lib/LICENSE"]
    );
    // Directories re-included as a whole come with their entries.
    let m = IgnoreMatcher::parse("*\n!logs\n").unwrap();
    let (bytes, _) = context_tar(c, &m, &[]);
    assert_eq!(
        names(&members(&bytes)),
        vec![
            "logs/",
            "logs/a/",
            "logs/a/drop",
            "logs/a/keep",
            "logs/b.txt"
        ]
    );
}

#[test]
fn long_names_use_pax() {
    let t = tempdir();
    let c = t.path();
    let long = format!(
        "{}/{}/{}",
        "a".repeat(100),
        "b".repeat(100),
        "c".repeat(120)
    );
    write(c, &long, b"deep");
    let target = "t".repeat(150);
    symlink(&target, c.join("l")).unwrap();
    let (bytes, _) = context_tar(c, &IgnoreMatcher::empty(), &[]);
    let ms = members(&bytes);
    let f = ms.iter().find(|m| m.name == long).expect("long member");
    assert_eq!(f.data, b"deep");
    let l = ms.iter().find(|m| m.name == "l").unwrap();
    assert_eq!(l.link.as_deref(), Some(target.as_str()));
}

#[test]
fn read_dockerignore_precedence() {
    let t = tempdir();
    let c = t.path();
    assert!(read_dockerignore(c, None).unwrap().patterns().is_empty());
    assert!(read_dockerignore(c, Some("Dockerfile"))
        .unwrap()
        .patterns()
        .is_empty());
    write(c, ".dockerignore", b"general\n");
    assert_eq!(
        read_dockerignore(c, None).unwrap().patterns(),
        vec!["general"]
    );
    assert_eq!(
        read_dockerignore(c, Some("Dockerfile")).unwrap().patterns(),
        vec!["general"]
    );
    write(c, "Dockerfile.dockerignore", b"specific\n");
    assert_eq!(
        read_dockerignore(c, Some("Dockerfile")).unwrap().patterns(),
        vec!["specific"]
    );
    write(c, "sub/app.Dockerfile.dockerignore", b"sub-specific\n");
    assert_eq!(
        read_dockerignore(c, Some("sub/app.Dockerfile"))
            .unwrap()
            .patterns(),
        vec!["sub-specific"]
    );
    // A Dockerfile without its own ignore file falls back to .dockerignore.
    assert_eq!(
        read_dockerignore(c, Some("sub/other.Dockerfile"))
            .unwrap()
            .patterns(),
        vec!["general"]
    );
    write(c, "bad/.dockerignore", b"[\n");
    assert!(matches!(
        read_dockerignore(&c.join("bad"), None),
        Err(ContextError::BadPattern { .. })
    ));
    fs::create_dir(c.join("isdir")).unwrap();
    fs::create_dir(c.join("isdir/.dockerignore")).unwrap();
    assert!(matches!(
        read_dockerignore(&c.join("isdir"), None),
        Err(ContextError::Read { .. })
    ));
}

#[test]
fn errors_name_the_path() {
    let t = tempdir();
    let missing = t.path().join("missing");
    let err =
        write_context_tar(&missing, &IgnoreMatcher::empty(), &[], std::io::sink()).unwrap_err();
    match err {
        ContextError::Read { path, .. } => assert_eq!(path, missing),
        e => panic!("unexpected {e}"),
    }
    struct Failing;
    impl std::io::Write for Failing {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("pipe closed"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    write(t.path(), "ctx/big", &vec![1u8; 300_000]);
    let err = write_context_tar(&t.path().join("ctx"), &IgnoreMatcher::empty(), &[], Failing)
        .unwrap_err();
    assert!(matches!(err, ContextError::Write(_)), "{err}");
}

/// Runs `f` on a thread whose filesystem uid is `nobody` (setfsuid is per thread and
/// drops the DAC-override capabilities for that thread only), so that permission bits
/// apply even when the tests run as root.
fn as_nobody<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        // SAFETY: plain syscall; affects only this short-lived thread.
        unsafe { libc::setfsuid(65534) };
        f()
    })
    .join()
    .unwrap()
}

#[test]
fn unreadable_entries_are_errors_with_their_path() {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let t = tempdir();
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let c = t.path().join("ctx");
    write(&c, "ok", b"fine");
    write(&c, "locked", b"x");
    fs::set_permissions(&c, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(c.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
    let c2 = c.clone();
    let err = as_nobody(move || {
        write_context_tar(&c2, &IgnoreMatcher::empty(), &[], std::io::sink()).unwrap_err()
    });
    match err {
        ContextError::Read { path, .. } => assert_eq!(path, c.join("locked")),
        e => panic!("unexpected {e}"),
    }
    // Excluded files are never opened.
    let m = IgnoreMatcher::parse("locked").unwrap();
    let c2 = c.clone();
    let stats = as_nobody(move || {
        write_context_tar(&c2, &m, &[], std::io::sink()).map_err(|e| e.to_string())
    })
    .unwrap();
    assert_eq!(stats.files, 1);
    // An unreadable directory.
    fs::remove_file(c.join("locked")).unwrap();
    fs::create_dir(c.join("closed")).unwrap();
    fs::set_permissions(c.join("closed"), fs::Permissions::from_mode(0o000)).unwrap();
    let c2 = c.clone();
    let err = as_nobody(move || {
        write_context_tar(&c2, &IgnoreMatcher::empty(), &[], std::io::sink()).unwrap_err()
    });
    match err {
        ContextError::Read { path, .. } => assert_eq!(path, c.join("closed")),
        e => panic!("unexpected {e}"),
    }
}
