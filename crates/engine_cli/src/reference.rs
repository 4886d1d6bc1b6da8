//! Image reference parsing and normalisation (docker's "familiar" names):
//! `busybox` ⇄ `docker.io/library/busybox:latest`.

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Registry host (e.g. "docker.io", "127.0.0.1:5000").
    pub domain: String,
    /// Repository path within the registry (e.g. "library/busybox").
    pub path: String,
    /// Tag, if given.
    pub tag: Option<String>,
    /// Digest ("sha256:..."), if given.
    pub digest: Option<String>,
}

const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DOMAIN: &str = "index.docker.io";
const OFFICIAL_PREFIX: &str = "library/";

fn valid_component(c: &str) -> bool {
    // [a-z0-9]+ separated by '.', '_', '__' or runs of '-'.
    if c.is_empty() {
        return false;
    }
    let b = c.as_bytes();
    if !b[0].is_ascii_lowercase() && !b[0].is_ascii_digit() {
        return false;
    }
    let last = b[b.len() - 1];
    if !last.is_ascii_lowercase() && !last.is_ascii_digit() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let ch = b[i];
        if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
            i += 1;
            continue;
        }
        match ch {
            b'.' => i += 1,
            b'_' => {
                if b.get(i + 1) == Some(&b'_') {
                    i += 2;
                } else {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
                continue;
            }
            _ => return false,
        }
        // A separator must be followed by an alphanumeric.
        match b.get(i) {
            Some(n) if n.is_ascii_lowercase() || n.is_ascii_digit() => {}
            _ => return false,
        }
    }
    true
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn valid_digest(d: &str) -> bool {
    match d.split_once(':') {
        Some((alg, hex)) => {
            !alg.is_empty()
                && alg
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"+._-".contains(&c))
                && hex.len() >= 32
                && hex.bytes().all(|c| c.is_ascii_hexdigit())
        }
        None => false,
    }
}

impl Reference {
    /// Parses and normalises a user-supplied reference.
    pub fn parse(s: &str) -> Result<Reference, String> {
        let invalid = || "invalid reference format".to_string();
        if s.is_empty() {
            return Err(invalid());
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                if !valid_digest(d) {
                    return Err(invalid());
                }
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        let last_slash = rest.rfind('/').map(|p| p + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(p) => {
                let t = &rest[last_slash + p + 1..];
                if !valid_tag(t) {
                    return Err(invalid());
                }
                (&rest[..last_slash + p], Some(t.to_string()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(invalid());
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), remainder.to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        if path.bytes().any(|c| c.is_ascii_uppercase()) {
            return Err(format!(
                "invalid reference format: repository name ({path}) must be lowercase"
            ));
        }
        let domain = if domain == LEGACY_DOMAIN {
            DEFAULT_DOMAIN.to_string()
        } else {
            domain
        };
        let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
            format!("{OFFICIAL_PREFIX}{path}")
        } else {
            path
        };
        if !path.split('/').all(valid_component) {
            return Err(invalid());
        }
        if domain.is_empty()
            || !domain
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b".-:[]".contains(&c))
        {
            return Err(invalid());
        }
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// Full repository name: "docker.io/library/busybox".
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// Familiar repository name: "busybox", "x/y", "127.0.0.1:5000/t/bb".
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            self.path
                .strip_prefix(OFFICIAL_PREFIX)
                .filter(|p| !p.contains('/'))
                .unwrap_or(&self.path)
                .to_string()
        } else {
            self.name()
        }
    }

    /// Adds the default tag "latest" when neither tag nor digest is present.
    pub fn tag_name_only(mut self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some("latest".into());
        }
        self
    }

    fn suffix(&self) -> String {
        let mut s = String::new();
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

    /// Familiar string with tag/digest: "busybox:latest".
    pub fn familiar_string(&self) -> String {
        format!("{}{}", self.familiar_name(), self.suffix())
    }

    /// Full string with tag/digest: "docker.io/library/busybox:latest".
    pub fn full_string(&self) -> String {
        format!("{}{}", self.name(), self.suffix())
    }

    /// The value docker sends as `tag` for pulls/pushes (digest wins over tag).
    pub fn api_tag(&self) -> String {
        if let Some(d) = &self.digest {
            return d.clone();
        }
        self.tag.clone().unwrap_or_default()
    }
}

/// Splits "repo:tag" the way the image list does (tag after the last '/').
pub fn split_repo_tag(s: &str) -> (String, String) {
    let last_slash = s.rfind('/').map(|p| p + 1).unwrap_or(0);
    match s[last_slash..].rfind(':') {
        Some(p) => (
            s[..last_slash + p].to_string(),
            s[last_slash + p + 1..].to_string(),
        ),
        None => (s.to_string(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_official_images() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.name(), "docker.io/library/busybox");
        assert_eq!(r.familiar_name(), "busybox");
        assert_eq!(r.tag, None);
        let r = r.tag_name_only();
        assert_eq!(r.familiar_string(), "busybox:latest");
        assert_eq!(r.full_string(), "docker.io/library/busybox:latest");
        assert_eq!(r.api_tag(), "latest");
    }

    #[test]
    fn user_and_registry_repos() {
        let r = Reference::parse("x/y:1").unwrap();
        assert_eq!(r.name(), "docker.io/x/y");
        assert_eq!(r.familiar_string(), "x/y:1");
        let r = Reference::parse("127.0.0.1:5000/t/bb:1").unwrap();
        assert_eq!(r.name(), "127.0.0.1:5000/t/bb");
        assert_eq!(r.familiar_string(), "127.0.0.1:5000/t/bb:1");
        assert_eq!(r.api_tag(), "1");
        let r = Reference::parse("localhost/foo").unwrap();
        assert_eq!(r.domain, "localhost");
        let r = Reference::parse("docker.io/library/busybox:local").unwrap();
        assert_eq!(r.familiar_string(), "busybox:local");
        let r = Reference::parse("index.docker.io/library/busybox").unwrap();
        assert_eq!(r.domain, "docker.io");
    }

    #[test]
    fn digests() {
        let d = "sha256:a0b242ef18df049e232b9af763394e386353ef8da17796313509f49ac8255a69";
        let r = Reference::parse(&format!("busybox@{d}")).unwrap();
        assert_eq!(r.digest.as_deref(), Some(d));
        assert_eq!(r.api_tag(), d);
        assert_eq!(r.clone().tag_name_only().tag, None);
        assert!(Reference::parse("busybox@sha256:zz").is_err());
    }

    #[test]
    fn rejects_invalid() {
        assert!(Reference::parse("").is_err());
        assert!(Reference::parse("Busybox")
            .unwrap_err()
            .contains("must be lowercase"));
        assert!(Reference::parse("a:b:c").is_err());
        assert!(Reference::parse("bad name").is_err());
        assert!(Reference::parse("x/-y").is_err());
        assert!(Reference::parse("busybox:").is_err());
        assert!(Reference::parse("a//b").is_err());
    }

    #[test]
    fn repo_tag_split() {
        assert_eq!(
            split_repo_tag("127.0.0.1:5000/busybox:local"),
            ("127.0.0.1:5000/busybox".into(), "local".into())
        );
        assert_eq!(split_repo_tag("busybox"), ("busybox".into(), String::new()));
        assert_eq!(
            split_repo_tag("<none>:<none>"),
            ("<none>".into(), "<none>".into())
        );
    }
}
