//! Lexical normalisation of tar member names into safe relative components.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

/// Longest member name accepted (Linux `PATH_MAX`).
pub(crate) const MAX_PATH_LEN: usize = 4096;
/// Longest single component accepted (Linux `NAME_MAX`).
pub(crate) const MAX_NAME_LEN: usize = 255;

/// Why a member name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PathProblem {
    /// `..` would leave the destination.
    Escapes,
    /// Contains a NUL byte, or a component/the whole name is too long.
    Invalid(&'static str),
}

/// Splits a member name into components relative to the destination root.
///
/// Absolute names are made relative (a leading `/` is dropped, as Docker does), `.` and
/// empty components are skipped and `..` removes the previous component. A `..` that would
/// climb above the root is refused with [`PathProblem::Escapes`]. The empty vector denotes
/// the root itself.
pub(crate) fn normalize(name: &[u8]) -> Result<Vec<OsString>, PathProblem> {
    if name.len() > MAX_PATH_LEN {
        return Err(PathProblem::Invalid("name too long"));
    }
    if name.contains(&0) {
        return Err(PathProblem::Invalid("name contains a NUL byte"));
    }
    let mut out: Vec<OsString> = Vec::new();
    for comp in name.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() {
                    return Err(PathProblem::Escapes);
                }
            }
            c => {
                if c.len() > MAX_NAME_LEN {
                    return Err(PathProblem::Invalid("component too long"));
                }
                out.push(OsString::from_vec(c.to_vec()));
            }
        }
    }
    Ok(out)
}

/// Human-readable form of a normalised path (for errors and logs).
pub(crate) fn display(comps: &[OsString]) -> String {
    let mut s = String::new();
    for c in comps {
        s.push('/');
        s.push_str(&c.to_string_lossy());
    }
    if s.is_empty() {
        s.push('/');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Result<Vec<String>, PathProblem> {
        normalize(s.as_bytes()).map(|v| {
            v.into_iter()
                .map(|c| c.to_string_lossy().into_owned())
                .collect()
        })
    }

    #[test]
    fn plain_relative_and_absolute() {
        assert_eq!(n("a/b/c").unwrap(), vec!["a", "b", "c"]);
        assert_eq!(n("./a//b/").unwrap(), vec!["a", "b"]);
        assert_eq!(n("/etc/passwd").unwrap(), vec!["etc", "passwd"]);
        assert_eq!(n("./").unwrap(), Vec::<String>::new());
        assert_eq!(n("/").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn dotdot_inside_is_resolved_lexically() {
        assert_eq!(n("a/../b").unwrap(), vec!["b"]);
        assert_eq!(n("a/b/../../c").unwrap(), vec!["c"]);
    }

    #[test]
    fn dotdot_escaping_is_refused() {
        assert_eq!(n("../x"), Err(PathProblem::Escapes));
        assert_eq!(n("a/../../x"), Err(PathProblem::Escapes));
        assert_eq!(n("/../etc/passwd"), Err(PathProblem::Escapes));
        assert_eq!(n(".."), Err(PathProblem::Escapes));
    }

    #[test]
    fn invalid_names() {
        assert!(matches!(normalize(b"a\0b"), Err(PathProblem::Invalid(_))));
        let long = "x".repeat(300);
        assert!(matches!(n(&long), Err(PathProblem::Invalid(_))));
        let very_long = "a/".repeat(3000);
        assert!(matches!(n(&very_long), Err(PathProblem::Invalid(_))));
    }

    #[test]
    fn display_form() {
        assert_eq!(display(&[]), "/");
        assert_eq!(display(&["a".into(), "b".into()]), "/a/b");
    }
}
