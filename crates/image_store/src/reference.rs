//! Docker-style image references: parsing, normalisation (`busybox` →
//! `docker.io/library/busybox:latest`) and the "familiar" short form (`busybox:latest`).
//!
//! Grammar (as in the distribution reference package):
//! `reference := name [":" tag] ["@" digest]`, `name := [domain "/"] path-component ("/" path-component)*`.

use std::fmt;
use std::str::FromStr;

/// Registry assumed when a name has no domain.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// Legacy spelling of the default registry, normalised to [`DEFAULT_DOMAIN`].
pub const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// Namespace of official images on the default registry.
pub const OFFICIAL_REPO_PREFIX: &str = "library/";
/// Tag assumed when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// Longest accepted repository name (domain included).
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// Why a reference string was refused. `Display` matches Docker's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// Generic grammar violation.
    #[error("invalid reference format")]
    InvalidFormat,
    /// Upper-case letters in the repository path.
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    Uppercase(String),
    /// Name longer than 255 characters (domain included).
    #[error("repository name must not be more than 255 characters")]
    NameTooLong,
    /// A 64-hex string used as a repository name (ambiguous with image IDs).
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexName(String),
    /// Invalid tag.
    #[error("invalid tag format")]
    InvalidTag,
    /// Malformed digest.
    #[error("invalid checksum digest format")]
    DigestFormat,
    /// Digest of the wrong length for its algorithm.
    #[error("invalid checksum digest length")]
    DigestLength,
    /// Unknown digest algorithm.
    #[error("unsupported digest algorithm")]
    DigestAlgorithm,
    /// A digest where only a tag is allowed (e.g. as a tag target).
    #[error("refusing to create a tag with a digest reference")]
    TagWithDigest,
}

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let mut i = 0;
    let alnum_run = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && is_lower_alnum(b[*i]) {
            *i += 1;
        }
        *i > start
    };
    if !alnum_run(&mut i) {
        return false;
    }
    while i < b.len() {
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if !alnum_run(&mut i) {
            return false;
        }
    }
    true
}

/// `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`
fn valid_domain_component(c: &str) -> bool {
    let b = c.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
}

/// `host[:port]` where host is a dotted name, IPv4, or `[IPv6]`.
fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return false;
        };
        let inner = &rest[..end];
        if inner.is_empty() || !inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        let after = &rest[end + 1..];
        match after.strip_prefix(':') {
            Some(p) => (None, Some(p)),
            None if after.is_empty() => (None, None),
            None => return false,
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(d), None),
        }
    };
    if let Some(h) = host {
        if !h.split('.').all(valid_domain_component) {
            return false;
        }
    }
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    true
}

/// `[\w][\w.-]{0,127}`
pub(crate) fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b[1..].iter().all(|x| word(*x) || *x == b'.' || *x == b'-')
}

/// Whether `s` is exactly 64 lowercase hex characters.
pub(crate) fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Validates a content digest (`algorithm:hex`) the way go-digest does.
pub fn validate_digest(d: &str) -> Result<(), ReferenceError> {
    let Some((alg, enc)) = d.split_once(':') else {
        return Err(ReferenceError::DigestFormat);
    };
    if alg.is_empty() || enc.is_empty() {
        return Err(ReferenceError::DigestFormat);
    }
    let want = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => {
            let alg_ok = alg.split(['+', '.', '_', '-']).all(|c| {
                let b = c.as_bytes();
                !b.is_empty()
                    && b[0].is_ascii_alphabetic()
                    && b.iter().all(|x| x.is_ascii_alphanumeric())
            });
            return Err(if alg_ok && enc.bytes().all(|b| b.is_ascii_hexdigit()) {
                ReferenceError::DigestAlgorithm
            } else {
                ReferenceError::DigestFormat
            });
        }
    };
    if enc.len() != want {
        return Err(ReferenceError::DigestLength);
    }
    if !enc.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(ReferenceError::DigestFormat);
    }
    Ok(())
}

/// The digest part as the reference grammar accepts it (before semantic validation):
/// `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[[:xdigit:]]{32,}`.
fn digest_matches_grammar(d: &str) -> bool {
    let Some((alg, enc)) = d.split_once(':') else {
        return false;
    };
    let alg_ok = alg.split(['+', '.', '_', '-']).all(|c| {
        let b = c.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(|x| x.is_ascii_alphanumeric())
    });
    alg_ok && enc.len() >= 32 && enc.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Splits a name into (domain, remainder) with Docker's heuristics.
fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.find('/') {
        Some(i) => {
            let first = &name[..i];
            if !first.contains(['.', ':']) && first != "localhost" && first.to_lowercase() == first
            {
                (DEFAULT_DOMAIN.to_string(), name.to_string())
            } else {
                (first.to_string(), name[i + 1..].to_string())
            }
        }
        None => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPO_PREFIX}{remainder}");
    }
    (domain, remainder)
}

impl Reference {
    /// Parses and normalises a reference like Docker's `ParseNormalizedNamed`:
    /// `busybox` → `docker.io/library/busybox`, `localhost:5000/a/b:1`, `x/y@sha256:…`.
    /// No default tag is added (see [`Reference::parse_tagged`]).
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        if is_hex64(s) {
            return Err(ReferenceError::HexName(s.to_string()));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = match remainder.find(':') {
            Some(i) => &remainder[..i],
            None => &remainder[..],
        };
        if remote.to_lowercase() != remote {
            return Err(ReferenceError::Uppercase(remote.to_string()));
        }

        let (name_tag, digest) = match remainder.split_once('@') {
            Some((a, d)) => (a, Some(d)),
            None => (&remainder[..], None),
        };
        let (path, tag) = match name_tag.rfind(':') {
            Some(i) if !name_tag[i + 1..].contains('/') => {
                (&name_tag[..i], Some(&name_tag[i + 1..]))
            }
            _ => (name_tag, None),
        };
        if !valid_domain(&domain) || path.is_empty() || !path.split('/').all(valid_path_component) {
            return Err(ReferenceError::InvalidFormat);
        }
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(ReferenceError::InvalidFormat);
            }
        }
        if let Some(d) = digest {
            if !digest_matches_grammar(d) {
                return Err(ReferenceError::InvalidFormat);
            }
        }
        if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::NameTooLong);
        }
        if let Some(d) = digest {
            validate_digest(d)?;
        }
        Ok(Reference {
            domain,
            path: path.to_string(),
            tag: tag.map(str::to_string),
            digest: digest.map(str::to_string),
        })
    }

    /// [`Reference::parse`] plus `:latest` when neither tag nor digest is given
    /// (Docker's `TagNameOnly`).
    pub fn parse_tagged(s: &str) -> Result<Self, ReferenceError> {
        Ok(Self::parse(s)?.with_default_tag())
    }

    /// Adds `:latest` if the reference has neither a tag nor a digest.
    pub fn with_default_tag(mut self) -> Self {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }

    /// The same repository with `tag` (validated) and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Self, ReferenceError> {
        if !valid_tag(tag) {
            return Err(ReferenceError::InvalidTag);
        }
        Ok(Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        })
    }

    /// The same repository with `digest` and no tag.
    pub fn with_digest(&self, digest: &str) -> Result<Self, ReferenceError> {
        validate_digest(digest)?;
        Ok(Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: Some(digest.to_string()),
        })
    }

    /// Registry domain (`docker.io`, `localhost:5000`, ...).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Repository path within the domain (`library/busybox`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// Digest, if any.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// Full repository name: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// Short repository name as Docker shows it: `busybox`, `x/y`, `127.0.0.1:5000/t/bb`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.path.clone(),
            }
        } else {
            self.name()
        }
    }

    /// Familiar form with tag/digest: `busybox:latest`, `x/y@sha256:…`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }
}

impl fmt::Display for Reference {
    /// Full normalised form: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn full(s: &str) -> String {
        Reference::parse_tagged(s).unwrap().to_string()
    }

    fn familiar(s: &str) -> String {
        Reference::parse_tagged(s).unwrap().familiar()
    }

    #[test]
    fn normalisation() {
        assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(full("library/busybox"), "docker.io/library/busybox:latest");
        assert_eq!(
            full("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            full("index.docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(full("x/y:1"), "docker.io/x/y:1");
        assert_eq!(full("localhost/foo"), "localhost/foo:latest");
        assert_eq!(full("localhost:5000/a/b:1"), "localhost:5000/a/b:1");
        assert_eq!(full("127.0.0.1:5000/t/bb:1"), "127.0.0.1:5000/t/bb:1");
        assert_eq!(full("[::1]:5000/t/bb"), "[::1]:5000/t/bb:latest");
        assert_eq!(full("foo:5000"), "docker.io/library/foo:5000");
        assert_eq!(
            full("a.b-c/d__e_f/g--h.i:T_ag-1.x"),
            "a.b-c/d__e_f/g--h.i:T_ag-1.x"
        );
        assert!(
            Reference::parse("a.b_c/d").is_err(),
            "underscore in a domain"
        );
        assert_eq!(
            full(&format!("busybox@{D}")),
            format!("docker.io/library/busybox@{D}")
        );
        let r = Reference::parse(&format!("x/y:1@{D}")).unwrap();
        assert_eq!((r.tag(), r.digest()), (Some("1"), Some(D)));
        assert_eq!(r.name(), "docker.io/x/y");
    }

    #[test]
    fn familiar_forms() {
        assert_eq!(familiar("busybox"), "busybox:latest");
        assert_eq!(familiar("docker.io/library/busybox:1"), "busybox:1");
        assert_eq!(familiar("x/y:1"), "x/y:1");
        assert_eq!(familiar("docker.io/library/a/b"), "library/a/b:latest");
        assert_eq!(familiar("127.0.0.1:5000/t/bb:1"), "127.0.0.1:5000/t/bb:1");
        assert_eq!(familiar("localhost/foo"), "localhost/foo:latest");
        assert_eq!(familiar(&format!("busybox@{D}")), format!("busybox@{D}"));
        assert_eq!(Reference::parse("busybox").unwrap().familiar(), "busybox");
    }

    #[test]
    fn invalid_references() {
        let bad = [
            "",
            ":",
            "a:",
            "/a",
            "a/",
            "a//b",
            "-a",
            "a-",
            "a..b",
            "a___b",
            "a b",
            "a:b:c",
            "a:-tag",
            "localhost:port/a",
            "my_host:5000/a",
            "a@sha256",
            "a@sha256:abc",
            "a:ta@g",
        ];
        for b in bad {
            let e = Reference::parse(b).expect_err(b);
            assert_eq!(e.to_string(), "invalid reference format", "{b}");
        }
        assert_eq!(
            Reference::parse("Busybox").unwrap_err().to_string(),
            "invalid reference format: repository name (library/Busybox) must be lowercase"
        );
        assert_eq!(
            Reference::parse("x/Y:1").unwrap_err(),
            ReferenceError::Uppercase("x/Y".into())
        );
        let hex = "a".repeat(64);
        assert_eq!(
            Reference::parse(&hex).unwrap_err().to_string(),
            format!("invalid repository name ({hex}), cannot specify 64-byte hexadecimal strings")
        );
        let long = format!("a/{}", "b".repeat(260));
        assert_eq!(
            Reference::parse(&long).unwrap_err(),
            ReferenceError::NameTooLong
        );
        let short_digest = format!("a@sha256:{}", "a".repeat(40));
        assert_eq!(
            Reference::parse(&short_digest).unwrap_err(),
            ReferenceError::DigestLength
        );
        let upper_digest = format!("a@sha256:{}", "A".repeat(64));
        assert_eq!(
            Reference::parse(&upper_digest).unwrap_err(),
            ReferenceError::DigestFormat
        );
        let tag129 = format!("a:{}", "t".repeat(129));
        assert!(Reference::parse(&tag129).is_err());
        let tag128 = format!("a:{}", "t".repeat(128));
        assert!(Reference::parse(&tag128).is_ok());
    }

    #[test]
    fn with_tag_and_digest() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.with_tag("x").unwrap().familiar(), "busybox:x");
        assert_eq!(r.with_tag("-x").unwrap_err(), ReferenceError::InvalidTag);
        assert_eq!(r.with_digest(D).unwrap().familiar(), format!("busybox@{D}"));
        assert!(r.with_digest("sha256:zz").is_err());
    }

    #[test]
    fn path_components() {
        for ok in ["a", "a1", "a.b", "a_b", "a__b", "a-b", "a---b", "a.b_c-d"] {
            assert!(valid_path_component(ok), "{ok}");
        }
        for bad in ["", "A", "a.", "_a", "a..b", "a___b", "a._b", "a-_b"] {
            assert!(!valid_path_component(bad), "{bad}");
        }
    }
}
