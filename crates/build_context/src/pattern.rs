//! One `.dockerignore` pattern: syntax checking (the rules of Go's `filepath.Match`, which
//! Docker uses to reject malformed patterns) and matching with the semantics of Docker's
//! pattern matcher (moby/patternmatcher), which translates patterns to regular expressions:
//!
//! * `*` — any run of characters except `/`; `?` — one character except `/`;
//! * `[a-z]`, `[^a-z]` — character classes (one character, `/` included);
//! * `\x` — the character `x` literally;
//! * `**` — any number of directories: `**/` (or `**` not at the end) matches nothing or
//!   anything ending in `/`; a trailing `**` matches anything;
//! * a pattern *starting* with `**` and otherwise literal is a suffix test (Docker's fast
//!   path): `**/foo` matches `foo` and anything ending in `/foo`, `**foo` anything ending
//!   in `foo`.

/// Go's `filepath.Clean` for `/`-separated paths: collapses repeated separators,
/// removes `.` elements, resolves `..` against preceding elements (kept at the start of a
/// relative path, dropped after the root), and gives `.` for an empty result.
pub fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `*`
    Star,
    /// `?`
    AnyChar,
    /// `**/` or inner `**`: `(.*/)?`
    AnyDirs,
    /// trailing `**`: `.*`
    AnyRest,
    /// `[...]`
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    /// The cleaned pattern text, without the `!`.
    pub(crate) text: String,
    /// A `!` (re-include) pattern.
    pub(crate) exclusion: bool,
    toks: Vec<Tok>,
    /// Docker's suffix fast path (`**` + literal text): the text after the `**`.
    suffix: Option<String>,
}

/// Reads one class item (`c`, `\c`), enforcing `filepath.Match`'s rules.
fn class_char(chars: &[char], i: &mut usize) -> Result<char, String> {
    let c = *chars.get(*i).ok_or("unterminated character class")?;
    if c == '-' || c == ']' {
        return Err(format!("unexpected '{c}' in character class"));
    }
    *i += 1;
    if c == '\\' {
        let e = *chars
            .get(*i)
            .ok_or("unterminated escape in character class")?;
        *i += 1;
        return Ok(e);
    }
    Ok(c)
}

/// Parses a class body starting after `[`; leaves `i` after the closing `]`.
fn parse_class(chars: &[char], i: &mut usize) -> Result<Tok, String> {
    let mut negated = false;
    if chars.get(*i) == Some(&'^') {
        negated = true;
        *i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        match chars.get(*i) {
            None => return Err("unterminated character class".into()),
            Some(']') if !ranges.is_empty() => {
                *i += 1;
                return Ok(Tok::Class { negated, ranges });
            }
            Some(_) => {}
        }
        let lo = class_char(chars, i)?;
        let mut hi = lo;
        if chars.get(*i) == Some(&'-') {
            *i += 1;
            hi = class_char(chars, i)?;
        }
        if lo > hi {
            return Err(format!("invalid range {lo}-{hi} in character class"));
        }
        ranges.push((lo, hi));
    }
}

impl Pattern {
    /// Compiles a cleaned pattern (without `!`). Errors describe malformed syntax.
    pub(crate) fn compile(text: &str, exclusion: bool) -> Result<Pattern, String> {
        #[derive(PartialEq)]
        enum Detected {
            Exact,
            Prefix,
            Suffix,
            Regexp,
        }
        let chars: Vec<char> = text.chars().collect();
        let mut toks = Vec::new();
        let mut detected = Detected::Exact;
        let mut i = 0;
        let mut first = true;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            match c {
                '*' if chars.get(i) == Some(&'*') => {
                    i += 1;
                    if chars.get(i) == Some(&'/') {
                        i += 1;
                    }
                    if i == chars.len() {
                        detected = if detected == Detected::Exact {
                            Detected::Prefix
                        } else {
                            Detected::Regexp
                        };
                        toks.push(Tok::AnyRest);
                    } else {
                        detected = Detected::Regexp;
                        toks.push(Tok::AnyDirs);
                    }
                    if first {
                        detected = Detected::Suffix;
                    }
                }
                '*' => {
                    toks.push(Tok::Star);
                    detected = Detected::Regexp;
                }
                '?' => {
                    toks.push(Tok::AnyChar);
                    detected = Detected::Regexp;
                }
                '\\' => {
                    let e = *chars.get(i).ok_or("trailing backslash")?;
                    i += 1;
                    toks.push(Tok::Lit(e));
                    detected = Detected::Regexp;
                }
                '[' => {
                    toks.push(parse_class(&chars, &mut i)?);
                    detected = Detected::Regexp;
                }
                ']' => {
                    toks.push(Tok::Lit(']'));
                    detected = Detected::Regexp;
                }
                c => toks.push(Tok::Lit(c)),
            }
            first = false;
        }
        let suffix = (detected == Detected::Suffix).then(|| text[2..].to_string());
        Ok(Pattern {
            text: text.to_string(),
            exclusion,
            toks,
            suffix,
        })
    }

    /// Whether the pattern matches the whole of `path`.
    pub(crate) fn matches(&self, path: &str) -> bool {
        if let Some(suffix) = &self.suffix {
            return path.ends_with(suffix.as_str())
                || suffix.strip_prefix('/').is_some_and(|rest| path == rest);
        }
        let s: Vec<char> = path.chars().collect();
        let mut m = Matcher {
            toks: &self.toks,
            s: &s,
            failed: vec![false; (self.toks.len() + 1) * (s.len() + 1)],
        };
        m.run(0, 0)
    }

    /// True when the pattern's extent in path components cannot be told from its text:
    /// `**`, character classes (they may match `/`), escapes, the suffix fast path.
    pub(crate) fn is_complex(&self) -> bool {
        self.suffix.is_some()
            || self.text.contains('\\')
            || self
                .toks
                .iter()
                .any(|t| matches!(t, Tok::AnyDirs | Tok::AnyRest | Tok::Class { .. }))
    }
}

/// Backtracking matcher with a failure memo (linear in tokens × characters).
struct Matcher<'a> {
    toks: &'a [Tok],
    s: &'a [char],
    failed: Vec<bool>,
}

impl Matcher<'_> {
    fn run(&mut self, ti: usize, si: usize) -> bool {
        let idx = ti * (self.s.len() + 1) + si;
        if self.failed[idx] {
            return false;
        }
        let ok = self.step(ti, si);
        if !ok {
            self.failed[idx] = true;
        }
        ok
    }

    fn step(&mut self, ti: usize, si: usize) -> bool {
        let s = self.s;
        let Some(tok) = self.toks.get(ti) else {
            return si == s.len();
        };
        match tok {
            Tok::Lit(c) => s.get(si) == Some(c) && self.run(ti + 1, si + 1),
            Tok::AnyChar => s.get(si).is_some_and(|&c| c != '/') && self.run(ti + 1, si + 1),
            Tok::Class { negated, ranges } => {
                let Some(&c) = s.get(si) else {
                    return false;
                };
                let inside = ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
                inside != *negated && self.run(ti + 1, si + 1)
            }
            Tok::Star => {
                let mut k = si;
                loop {
                    if self.run(ti + 1, k) {
                        return true;
                    }
                    if k == s.len() || s[k] == '/' {
                        return false;
                    }
                    k += 1;
                }
            }
            Tok::AnyRest => {
                // `.*`: Go's `.` does not match a newline.
                let mut k = si;
                loop {
                    if self.run(ti + 1, k) {
                        return true;
                    }
                    if k == s.len() || s[k] == '\n' {
                        return false;
                    }
                    k += 1;
                }
            }
            Tok::AnyDirs => {
                // `(.*/)?`
                if self.run(ti + 1, si) {
                    return true;
                }
                for (k, &c) in s.iter().enumerate().skip(si) {
                    match c {
                        '\n' => return false,
                        '/' if self.run(ti + 1, k + 1) => return true,
                        _ => {}
                    }
                }
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_like_go() {
        for (i, o) in [
            ("", "."),
            (".", "."),
            ("./a", "a"),
            ("a/../b", "b"),
            ("a//b/", "a/b"),
            ("/a/b", "/a/b"),
            ("/", "/"),
            ("/..", "/"),
            ("/../a", "/a"),
            ("..", ".."),
            ("../../a", "../../a"),
            ("a/../..", ".."),
            ("a/./b/.", "a/b"),
            ("abc/def/../../..", ".."),
        ] {
            assert_eq!(clean(i), o, "clean({i:?})");
        }
    }

    #[test]
    fn syntax_errors() {
        for bad in [
            "[", "[^", "[^bc", "a[", "[]a]", "[-]", "[x-]", "[-x]", "[a-b-c]", "\\", "a\\",
            "[z-a]", "[\\",
        ] {
            assert!(
                Pattern::compile(bad, false).is_err(),
                "{bad:?} should be rejected"
            );
        }
        for good in [
            "[\\]a]",
            "[\\-]",
            "[x\\-]",
            "a]b",
            "[^a]",
            "[a-z0-9_]",
            "\\*",
        ] {
            assert!(
                Pattern::compile(good, false).is_ok(),
                "{good:?} should compile"
            );
        }
    }

    #[test]
    fn match_table() {
        // (pattern, path, matches)
        let cases: &[(&str, &str, bool)] = &[
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "ab/c", false),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("[a-ζ]*", "α", true),
            ("a?b", "a/b", false),
            ("a*b", "a/b", false),
            ("[\\]a]", "]", true),
            ("[x\\-]", "-", true),
            ("[x\\-]", "z", false),
            ("**", "file", true),
            ("**", "dir/file", true),
            ("**/**", "dir/file", true),
            ("dir/**", "dir/file", true),
            ("dir/**", "dir/dir2/file", true),
            ("dir/**", "dir", false),
            ("**/dir", "dir", true),
            ("**/dir", "a/b/dir", true),
            ("**/dir", "xdir", false),
            ("**/dir2/*", "dir/dir2/file", true),
            ("**/dir2/**", "dir/dir2/dir3/file", true),
            ("**file", "dir/file", true),
            ("**file", "dir/xfile", true),
            ("**/file*", "dir/dir/file.txt", true),
            ("**/file*txt", "dir/dir/file.txt", true),
            ("**/**/*.txt", "file.txt", true),
            ("**/**/*.txt2", "dir/dir/file.txt", false),
            ("a**/*.txt", "a/dir/dir/file.txt", true),
            ("a**/*.txt", "ab/file.txt", true),
            ("a/*.txt", "a/dir/file.txt", false),
            ("a/*.txt**", "a/file.txt", true),
            ("a[b-d]e", "ace", true),
            ("a[b-d]e", "aae", false),
            ("a[^b-d]e", "aze", true),
            (".*", ".foo", true),
            (".*", "foo", false),
            ("abc.def", "abcdef", false),
            ("abc?def", "abcZdef", true),
            ("**/.foo", "bar.foo", false),
            ("a(b)c/def", "a(b)c/def", true),
            ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
            (
                "dist/*.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
            ("a\\\\", "a\\", true),
            ("a]b", "a]b", true),
            ("[^a]", "/", true),
        ];
        for &(p, path, want) in cases {
            let pat = Pattern::compile(p, false).unwrap();
            assert_eq!(pat.matches(path), want, "pattern {p:?} on {path:?}");
        }
    }

    #[test]
    fn no_exponential_blowup() {
        let p = Pattern::compile(&"*a".repeat(30), false).unwrap();
        assert!(!p.matches(&format!("{}b", "a".repeat(200))));
        let p = Pattern::compile(&"**/a".repeat(20), false).unwrap();
        assert!(!p.matches(&format!("{}b", "a/".repeat(200))));
    }
}
