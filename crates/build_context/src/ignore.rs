//! `.dockerignore` files: reading, parsing, and the "matches or a parent matches" rule.

use std::io;
use std::path::Path;

use tracing::debug;

use crate::pattern::{clean, Pattern};
use crate::ContextError;

/// A parsed `.dockerignore`: an ordered list of patterns where later ones win and `!`
/// patterns re-include.
#[derive(Debug, Clone, Default)]
pub struct IgnoreMatcher {
    patterns: Vec<Pattern>,
}

/// Docker's line handling (`ignorefile.ReadAll`): BOM stripped from the first line, a line
/// *starting* with `#` is a comment, whitespace trimmed, empty lines skipped, `!` split
/// off (and the rest trimmed), the path cleaned and a leading `/` removed.
fn read_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (n, raw) in text.split('\n').enumerate() {
        let mut line = raw.strip_suffix('\r').unwrap_or(raw);
        if n == 0 {
            line = line.strip_prefix('\u{feff}').unwrap_or(line);
        }
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut cleaned = String::new();
        if !pattern.is_empty() {
            cleaned = clean(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
        }
        out.push(if invert {
            format!("!{cleaned}")
        } else {
            cleaned
        });
    }
    out
}

impl IgnoreMatcher {
    /// Parses `.dockerignore` content. Malformed patterns (a lone `!`, unterminated or
    /// invalid character classes, a trailing `\`) are errors, as with Docker.
    pub fn parse(text: &str) -> Result<IgnoreMatcher, ContextError> {
        let mut patterns = Vec::new();
        for line in read_lines(text) {
            // The matcher's own normalisation (`patternmatcher.New`).
            let p = line.trim();
            if p.is_empty() {
                continue;
            }
            let p = clean(p);
            let (exclusion, body) = match p.strip_prefix('!') {
                Some("") => {
                    return Err(ContextError::BadPattern {
                        pattern: line.clone(),
                        reason: "illegal exclusion pattern \"!\"".into(),
                    })
                }
                Some(rest) => (true, rest),
                None => (false, p.as_str()),
            };
            let compiled =
                Pattern::compile(body, exclusion).map_err(|reason| ContextError::BadPattern {
                    pattern: line.clone(),
                    reason,
                })?;
            patterns.push(compiled);
        }
        debug!(patterns = patterns.len(), "parsed .dockerignore");
        Ok(IgnoreMatcher { patterns })
    }

    /// A matcher that excludes nothing.
    pub fn empty() -> IgnoreMatcher {
        IgnoreMatcher::default()
    }

    /// The cleaned patterns in order, `!` patterns with their `!`.
    pub fn patterns(&self) -> Vec<String> {
        self.patterns
            .iter()
            .map(|p| {
                if p.exclusion {
                    format!("!{}", p.text)
                } else {
                    p.text.clone()
                }
            })
            .collect()
    }

    /// Whether `rel_path` (relative to the context, `/`-separated, no leading `./`) is
    /// excluded: the last pattern matching the path itself or any of its parent
    /// directories decides (Docker's `MatchesOrParentMatches`). The context root itself is
    /// never excluded.
    pub fn is_excluded(&self, rel_path: &str) -> bool {
        if self.patterns.is_empty() {
            return false;
        }
        let file = clean(rel_path.trim_start_matches('/'));
        if file == "." {
            return false;
        }
        let parents: Vec<&str> = file
            .char_indices()
            .filter(|&(_, c)| c == '/')
            .map(|(i, _)| &file[..i])
            .collect();
        let mut matched = false;
        for p in &self.patterns {
            // An include pattern cannot change an excluded path and vice versa.
            if p.exclusion != matched {
                continue;
            }
            let hit = p.matches(&file) || parents.iter().any(|parent| p.matches(parent));
            if hit {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// Whether some `!` pattern might re-include a path strictly below the excluded
    /// directory `dir` (then the directory must still be walked). Conservative: true
    /// whenever that cannot be ruled out from the pattern text.
    pub(crate) fn may_reinclude_below(&self, dir: &str) -> bool {
        let dir_parts: Vec<&str> = dir.split('/').collect();
        self.patterns.iter().filter(|p| p.exclusion).any(|p| {
            // Docker's own test: the pattern text starts with `dir/`.
            if format!("{}/", p.text).starts_with(&format!("{dir}/")) {
                return true;
            }
            if p.is_complex() {
                return true;
            }
            let parts: Vec<&str> = p.text.split('/').collect();
            parts.len() > dir_parts.len()
                && parts.iter().zip(&dir_parts).all(|(pp, dp)| {
                    Pattern::compile(pp, false)
                        .map(|c| c.matches(dp))
                        .unwrap_or(true)
                })
        })
    }
}

fn read_optional(path: &Path) -> Result<Option<String>, ContextError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e)
            if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) =>
        {
            Ok(None)
        }
        Err(source) => Err(ContextError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Reads the ignore file for a build: `<Dockerfile>.dockerignore` next to the Dockerfile
/// (`dockerfile_rel` is relative to `context_dir`, or absolute) when it exists, else
/// `<context_dir>/.dockerignore`; neither → [`IgnoreMatcher::empty`].
pub fn read_dockerignore(
    context_dir: &Path,
    dockerfile_rel: Option<&str>,
) -> Result<IgnoreMatcher, ContextError> {
    if let Some(df) = dockerfile_rel.filter(|d| !d.is_empty()) {
        let specific = context_dir.join(format!("{df}.dockerignore"));
        if let Some(text) = read_optional(&specific)? {
            debug!(path = %specific.display(), "using Dockerfile-specific ignore file");
            return IgnoreMatcher::parse(&text);
        }
    }
    match read_optional(&context_dir.join(".dockerignore"))? {
        Some(text) => IgnoreMatcher::parse(&text),
        None => Ok(IgnoreMatcher::empty()),
    }
}
