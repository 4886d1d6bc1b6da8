//! `--user` resolution against the rootfs' `/etc/passwd` and `/etc/group`, with Docker's
//! (runc's) rules:
//!
//! * `""` means uid 0; its passwd entry (if any) supplies the gid and home.
//! * `name` or `uid`: the first passwd entry whose name *or* uid matches wins. A numeric uid
//!   without an entry is fine (gid 0, home `/`); an unknown name is an error.
//! * `user:group`: the group is matched by name or gid in `/etc/group`; a numeric gid without
//!   an entry is fine; an unknown name is an error.
//! * Supplementary groups (every group listing the user name as a member) are only added in
//!   the implicit form (no `:group`), as Docker does.

use std::path::Path;

use crate::rootfs_read::{read_file_in_root, MAX_FILE_SIZE};
use crate::SpecError;

/// Largest uid/gid Docker accepts (`2^31 - 1`).
const MAX_ID: u64 = i32::MAX as u64;

/// The result of resolving a `--user` string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    /// User id the process runs as.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups (from `/etc/group` membership in the implicit form).
    pub additional_gids: Vec<u32>,
    /// Home directory from the passwd entry, `/` when there is none.
    pub home: String,
}

#[derive(Debug)]
struct PasswdEntry {
    name: String,
    uid: u64,
    gid: u64,
    home: String,
}

#[derive(Debug)]
struct GroupEntry {
    name: String,
    gid: u64,
    members: Vec<String>,
}

/// Resolves a Docker `--user` string (`""`, `name`, `uid`, `uid:gid`, `name:group`, ...)
/// against the rootfs, returning `(uid, gid, additional_gids)`.
///
/// The rootfs is treated as untrusted: `/etc/passwd` and `/etc/group` are opened with every
/// symlink resolved inside the rootfs, so they can never refer to host files.
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<(u32, u32, Vec<u32>), SpecError> {
    let r = resolve_user_details(rootfs, user)?;
    Ok((r.uid, r.gid, r.additional_gids))
}

/// Like [`resolve_user`] but also returns the home directory (used for `HOME`).
pub fn resolve_user_details(rootfs: &Path, user: &str) -> Result<ResolvedUser, SpecError> {
    if user.contains('\0') {
        return Err(SpecError::NulByte {
            field: "user",
            value: user.to_string(),
        });
    }
    let (user_arg, group_arg) = match user.split_once(':') {
        Some((u, g)) => {
            if g.contains(':') {
                return Err(SpecError::InvalidUser(user.to_string()));
            }
            (u, Some(g))
        }
        None => (user, None),
    };
    let group_arg = group_arg.filter(|g| !g.is_empty());

    let passwd = read_passwd(rootfs)?;
    let matched = passwd.iter().find(|e| {
        if user_arg.is_empty() {
            e.uid == 0
        } else {
            e.name == user_arg || e.uid.to_string() == user_arg
        }
    });

    let (uid, mut gid, home, matched_name) = match matched {
        Some(e) => (
            check_id("uid", e.uid, &e.uid.to_string())?,
            check_id("gid", e.gid, &e.gid.to_string())?,
            if e.home.is_empty() {
                "/".to_string()
            } else {
                e.home.clone()
            },
            Some(e.name.clone()),
        ),
        None if user_arg.is_empty() => (0, 0, "/".to_string(), None),
        None => {
            let uid = parse_id("uid", user_arg)?
                .ok_or_else(|| SpecError::UserNotFound(user_arg.to_string()))?;
            (uid, 0, "/".to_string(), None)
        }
    };

    let mut additional_gids = Vec::new();
    if group_arg.is_some() || matched_name.is_some() {
        let groups = read_group(rootfs)?;
        match group_arg {
            Some(g) => gid = lookup_group(&groups, g)?,
            None => {
                if let Some(name) = &matched_name {
                    for grp in groups.iter().filter(|grp| grp.members.contains(name)) {
                        let id = check_id("gid", grp.gid, &grp.gid.to_string())?;
                        if !additional_gids.contains(&id) {
                            additional_gids.push(id);
                        }
                    }
                }
            }
        }
    }

    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

/// Resolves `--group-add` values (group names or numeric gids) against the rootfs.
pub fn resolve_groups(rootfs: &Path, groups: &[String]) -> Result<Vec<u32>, SpecError> {
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let entries = read_group(rootfs)?;
    groups.iter().map(|g| lookup_group(&entries, g)).collect()
}

/// Finds a group by name or gid; a numeric gid without an entry is accepted as is.
fn lookup_group(groups: &[GroupEntry], arg: &str) -> Result<u32, SpecError> {
    if arg.contains('\0') {
        return Err(SpecError::NulByte {
            field: "group",
            value: arg.to_string(),
        });
    }
    if let Some(g) = groups
        .iter()
        .find(|g| g.name == arg || g.gid.to_string() == arg)
    {
        return check_id("gid", g.gid, &g.gid.to_string());
    }
    parse_id("gid", arg)?.ok_or_else(|| SpecError::GroupNotFound(arg.to_string()))
}

/// Parses a numeric id: `Ok(None)` when `s` is not a number at all (the caller then reports
/// "not found"), an error when it is a number outside Docker's range.
fn parse_id(kind: &'static str, s: &str) -> Result<Option<u32>, SpecError> {
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let out_of_range = || SpecError::IdOutOfRange {
        kind,
        value: s.to_string(),
    };
    if digits(s) {
        let v = s.parse::<u64>().map_err(|_| out_of_range())?;
        return check_id(kind, v, s).map(Some);
    }
    if s.strip_prefix('-').is_some_and(digits) {
        return Err(out_of_range());
    }
    Ok(None)
}

fn check_id(kind: &'static str, v: u64, shown: &str) -> Result<u32, SpecError> {
    if v > MAX_ID {
        return Err(SpecError::IdOutOfRange {
            kind,
            value: shown.to_string(),
        });
    }
    u32::try_from(v).map_err(|_| SpecError::IdOutOfRange {
        kind,
        value: shown.to_string(),
    })
}

fn read_lines(rootfs: &Path, path: &str) -> Result<String, SpecError> {
    Ok(read_file_in_root(rootfs, path, MAX_FILE_SIZE)?
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default())
}

fn read_passwd(rootfs: &Path) -> Result<Vec<PasswdEntry>, SpecError> {
    Ok(parse_passwd(&read_lines(rootfs, "/etc/passwd")?))
}

fn read_group(rootfs: &Path) -> Result<Vec<GroupEntry>, SpecError> {
    Ok(parse_group(&read_lines(rootfs, "/etc/group")?))
}

/// `name:password:uid:gid:gecos:home:shell`; malformed lines are skipped.
fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f.get(5).copied().unwrap_or("").to_string(),
            })
        })
        .collect()
}

/// `name:password:gid:member,member`; malformed lines are skipped.
fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 3 {
                return None;
            }
            Some(GroupEntry {
                name: f[0].to_string(),
                gid: f[2].parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
        # comment\n\
        broken line\n\
        www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n\
        app:x:1000:1000::/home/app:/bin/sh\n\
        nohome:x:1001:1001::\n";
    const GROUP: &str = "root:x:0:\n\
        daemon:x:1:\n\
        www-data:x:33:\n\
        users:x:100:app,www-data\n\
        docker:x:999:app\n\
        app:x:1000:\n";

    fn rootfs() -> tempfile::TempDir {
        let d = tempfile::Builder::new()
            .prefix("container_spec-user-")
            .tempdir()
            .unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(d.path().join("etc/passwd"), PASSWD).unwrap();
        std::fs::write(d.path().join("etc/group"), GROUP).unwrap();
        d
    }

    #[test]
    fn empty_user_is_root() {
        let r = rootfs();
        assert_eq!(resolve_user(r.path(), "").unwrap(), (0, 0, vec![]));
        assert_eq!(resolve_user_details(r.path(), "").unwrap().home, "/root");
    }

    #[test]
    fn by_name_with_supplementary_groups() {
        let r = rootfs();
        assert_eq!(
            resolve_user(r.path(), "app").unwrap(),
            (1000, 1000, vec![100, 999])
        );
        assert_eq!(
            resolve_user_details(r.path(), "app").unwrap().home,
            "/home/app"
        );
        assert_eq!(
            resolve_user(r.path(), "www-data").unwrap(),
            (33, 33, vec![100])
        );
    }

    #[test]
    fn by_uid() {
        let r = rootfs();
        // Known uid: passwd gid and groups apply.
        assert_eq!(
            resolve_user(r.path(), "1000").unwrap(),
            (1000, 1000, vec![100, 999])
        );
        // Unknown uid: allowed, gid 0.
        assert_eq!(resolve_user(r.path(), "4242").unwrap(), (4242, 0, vec![]));
        let d = resolve_user_details(r.path(), "4242").unwrap();
        assert_eq!(d.home, "/");
        // Empty home falls back to "/".
        assert_eq!(resolve_user_details(r.path(), "nohome").unwrap().home, "/");
    }

    #[test]
    fn explicit_group() {
        let r = rootfs();
        assert_eq!(
            resolve_user(r.path(), "app:docker").unwrap(),
            (1000, 999, vec![])
        );
        assert_eq!(
            resolve_user(r.path(), "4242:4343").unwrap(),
            (4242, 4343, vec![])
        );
        assert_eq!(
            resolve_user(r.path(), "app:33").unwrap(),
            (1000, 33, vec![])
        );
        // "uid:" behaves like "uid".
        assert_eq!(
            resolve_user(r.path(), "app:").unwrap(),
            (1000, 1000, vec![100, 999])
        );
    }

    #[test]
    fn unknown_names_are_errors() {
        let r = rootfs();
        let e = resolve_user(r.path(), "nobody").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to find user nobody: no matching entries in passwd file"
        );
        let e = resolve_user(r.path(), "app:nogroup").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to find group nogroup: no matching entries in group file"
        );
        assert!(matches!(
            resolve_user(r.path(), "a:b:c"),
            Err(SpecError::InvalidUser(_))
        ));
    }

    #[test]
    fn out_of_range_ids() {
        let r = rootfs();
        assert!(matches!(
            resolve_user(r.path(), "2147483648"),
            Err(SpecError::IdOutOfRange { kind: "uid", .. })
        ));
        assert!(matches!(
            resolve_user(r.path(), "99999999999999999999999"),
            Err(SpecError::IdOutOfRange { .. })
        ));
        assert!(matches!(
            resolve_user(r.path(), "-1"),
            Err(SpecError::IdOutOfRange { .. })
        ));
        assert!(matches!(
            resolve_user(r.path(), "0:-5"),
            Err(SpecError::IdOutOfRange { kind: "gid", .. })
        ));
        assert_eq!(
            resolve_user(r.path(), "2147483647").unwrap(),
            (2147483647, 0, vec![])
        );
    }

    #[test]
    fn missing_files_behave_like_empty_files() {
        let d = tempfile::Builder::new()
            .prefix("container_spec-user-")
            .tempdir()
            .unwrap();
        assert_eq!(resolve_user(d.path(), "").unwrap(), (0, 0, vec![]));
        assert_eq!(resolve_user(d.path(), "1:2").unwrap(), (1, 2, vec![]));
        assert!(matches!(
            resolve_user(d.path(), "app"),
            Err(SpecError::UserNotFound(_))
        ));
        assert!(matches!(
            resolve_user(d.path(), "0:wheel"),
            Err(SpecError::GroupNotFound(_))
        ));
    }

    #[test]
    fn malicious_symlink_does_not_read_host_passwd() {
        // A host-side passwd with a user that must not become visible.
        let host = tempfile::Builder::new()
            .prefix("container_spec-host-")
            .tempdir()
            .unwrap();
        std::fs::write(
            host.path().join("passwd"),
            "hostonly:x:777:777::/host:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(host.path().join("group"), "hostgrp:x:778:\n").unwrap();

        let r = tempfile::Builder::new()
            .prefix("container_spec-user-")
            .tempdir()
            .unwrap();
        std::fs::create_dir(r.path().join("etc")).unwrap();
        symlink(host.path().join("passwd"), r.path().join("etc/passwd")).unwrap();
        // Relative escape attempt too.
        let dots = "../".repeat(30);
        let rel = format!("{dots}{}", host.path().join("group").display());
        symlink(rel, r.path().join("etc/group")).unwrap();

        assert!(matches!(
            resolve_user(r.path(), "hostonly"),
            Err(SpecError::UserNotFound(_))
        ));
        assert!(matches!(
            resolve_user(r.path(), "0:hostgrp"),
            Err(SpecError::GroupNotFound(_))
        ));
        // And the real host /etc/passwd is not reachable via an absolute link either: inside
        // the root, "/etc/passwd -> /etc/passwd" is a loop.
        std::fs::remove_file(r.path().join("etc/passwd")).unwrap();
        symlink("/etc/passwd", r.path().join("etc/passwd")).unwrap();
        assert!(matches!(
            resolve_user(r.path(), "root"),
            Err(SpecError::RootfsFile { .. })
        ));
        // Same through a symlinked /etc directory.
        std::fs::remove_file(r.path().join("etc/passwd")).unwrap();
        std::fs::remove_file(r.path().join("etc/group")).unwrap();
        std::fs::remove_dir(r.path().join("etc")).unwrap();
        symlink("/etc", r.path().join("etc")).unwrap();
        assert!(matches!(
            resolve_user(r.path(), "root"),
            Err(SpecError::RootfsFile { .. })
        ));
        symlink(host.path(), r.path().join("hostlink")).unwrap();
        std::fs::remove_file(r.path().join("etc")).unwrap();
        symlink("hostlink", r.path().join("etc")).unwrap();
        assert!(matches!(
            resolve_user(r.path(), "hostonly"),
            Err(SpecError::UserNotFound(_))
        ));
        std::fs::remove_file(r.path().join("etc")).unwrap();
        std::fs::create_dir(r.path().join("etc")).unwrap();
        // ...unless the rootfs really has its own /etc/passwd at that place.
        std::fs::write(
            r.path().join("etc/realpasswd"),
            "root:x:0:0::/root:/bin/sh\n",
        )
        .unwrap();
        symlink("/etc/realpasswd", r.path().join("etc/passwd")).unwrap();
        assert_eq!(resolve_user(r.path(), "root").unwrap(), (0, 0, vec![]));
    }

    #[test]
    fn group_add() {
        let r = rootfs();
        assert_eq!(
            resolve_groups(r.path(), &["docker".into(), "5000".into(), "33".into()]).unwrap(),
            vec![999, 5000, 33]
        );
        assert!(matches!(
            resolve_groups(r.path(), &["nope".into()]),
            Err(SpecError::GroupNotFound(_))
        ));
    }
}
