//! Manifest and index parsing (Docker schema 2 and OCI), media types, and platform
//! selection in image indexes / manifest lists.

use serde::Deserialize;

use crate::error::RegistryError;

/// Docker schema 2 image manifest.
pub const MEDIA_TYPE_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const MEDIA_TYPE_DOCKER_MANIFEST_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const MEDIA_TYPE_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const MEDIA_TYPE_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image config.
pub const MEDIA_TYPE_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// OCI image config.
pub const MEDIA_TYPE_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// Docker schema 1 (signed) manifests, refused.
const MEDIA_TYPE_DOCKER_SCHEMA1: &[&str] = &[
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

/// Layer media types a pull accepts.
const LAYER_MEDIA_TYPES: &[&str] = &[
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
];

/// The `Accept` header of manifest requests.
pub(crate) const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// Largest manifest accepted (Docker's limit too).
pub(crate) const MAX_MANIFEST_SIZE: u64 = 4 << 20;
/// Largest image config accepted.
pub(crate) const MAX_CONFIG_SIZE: u64 = 64 << 20;

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
}

/// A platform as written in an index.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
}

/// An image manifest (Docker schema 2 or OCI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageManifest {
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// What a manifest request returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Manifest {
    Image(ImageManifest),
    Index(Vec<Descriptor>),
}

#[derive(Deserialize)]
struct RawManifest {
    #[serde(rename = "schemaVersion", default)]
    schema_version: Option<u32>,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

fn base_media_type(ct: &str) -> &str {
    ct.split(';').next().unwrap_or("").trim()
}

/// Checks a digest names sha256 content (the only algorithm the store addresses).
pub(crate) fn check_digest(d: &str) -> Result<(), RegistryError> {
    let ok = d.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    });
    if ok {
        Ok(())
    } else {
        Err(RegistryError::Protocol(format!(
            "unsupported or invalid digest {d:?}"
        )))
    }
}

/// Parses a manifest body. The media type is the body's `mediaType`, else the
/// `Content-Type`, else guessed from the fields.
pub(crate) fn parse_manifest(
    body: &[u8],
    content_type: Option<&str>,
) -> Result<Manifest, RegistryError> {
    let raw: RawManifest = serde_json::from_slice(body)
        .map_err(|e| RegistryError::Protocol(format!("invalid manifest: {e}")))?;
    let ct = content_type
        .map(base_media_type)
        .filter(|c| !c.is_empty() && *c != "application/json" && *c != "text/plain");
    let mt = raw
        .media_type
        .clone()
        .filter(|m| !m.is_empty())
        .or_else(|| ct.map(str::to_string))
        .unwrap_or_else(|| {
            if raw.manifests.is_some() {
                MEDIA_TYPE_OCI_INDEX.to_string()
            } else if raw.schema_version == Some(1) {
                MEDIA_TYPE_DOCKER_SCHEMA1[0].to_string()
            } else {
                MEDIA_TYPE_OCI_MANIFEST.to_string()
            }
        });
    match mt.as_str() {
        MEDIA_TYPE_OCI_INDEX | MEDIA_TYPE_DOCKER_MANIFEST_LIST => {
            let manifests = raw
                .manifests
                .ok_or_else(|| RegistryError::Protocol("index without manifests".into()))?;
            for m in &manifests {
                check_digest(&m.digest)?;
            }
            Ok(Manifest::Index(manifests))
        }
        MEDIA_TYPE_OCI_MANIFEST | MEDIA_TYPE_DOCKER_MANIFEST => {
            if raw.schema_version != Some(2) {
                return Err(RegistryError::Protocol(format!(
                    "unsupported manifest schema version {:?}",
                    raw.schema_version
                )));
            }
            let config = raw
                .config
                .ok_or_else(|| RegistryError::Protocol("manifest without config".into()))?;
            let layers = raw.layers.unwrap_or_default();
            check_digest(&config.digest)?;
            for l in &layers {
                check_digest(&l.digest)?;
            }
            Ok(Manifest::Image(ImageManifest {
                media_type: mt,
                config,
                layers,
            }))
        }
        other => Err(RegistryError::UnsupportedMediaType(other.to_string())),
    }
}

/// Checks that an image manifest's config and layers are of types a pull handles.
pub(crate) fn check_pullable(m: &ImageManifest) -> Result<(), RegistryError> {
    let cfg = m.config.media_type.as_str();
    if cfg != MEDIA_TYPE_DOCKER_CONFIG && cfg != MEDIA_TYPE_OCI_CONFIG {
        return Err(RegistryError::UnsupportedMediaType(cfg.to_string()));
    }
    for l in &m.layers {
        if !LAYER_MEDIA_TYPES.contains(&l.media_type.as_str()) {
            return Err(RegistryError::UnsupportedMediaType(l.media_type.clone()));
        }
    }
    Ok(())
}

/// A requested platform, normalised (`x86_64` → `amd64`, `aarch64` → `arm64`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlatformSpec {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

fn normalize_arch(arch: &str, variant: Option<&str>) -> (String, Option<String>) {
    let arch = arch.to_lowercase();
    let variant = variant.map(str::to_lowercase).filter(|v| !v.is_empty());
    match arch.as_str() {
        "x86_64" | "x86-64" | "amd64" => ("amd64".into(), variant.filter(|v| v != "v1")),
        "aarch64" | "arm64" => ("arm64".into(), variant.filter(|v| v != "v8" && v != "8")),
        "armhf" => ("arm".into(), Some("v7".into())),
        "armel" => ("arm".into(), Some("v6".into())),
        "arm" => (
            "arm".into(),
            Some(match variant.as_deref() {
                None | Some("7") | Some("v7") => "v7".into(),
                Some("5") => "v5".into(),
                Some("6") => "v6".into(),
                Some("8") => "v8".into(),
                Some(v) => v.to_string(),
            }),
        ),
        "i386" | "i686" | "386" => ("386".into(), variant),
        _ => (arch, variant),
    }
}

impl PlatformSpec {
    /// Parses `os/arch[/variant]` (or `arch` alone, meaning linux).
    pub fn parse(s: &str) -> Result<PlatformSpec, RegistryError> {
        let parts: Vec<&str> = s.trim().split('/').collect();
        let bad = || RegistryError::InvalidReference(format!("invalid platform {s:?}"));
        let (os, arch, variant) = match parts.as_slice() {
            [a] if !a.is_empty() => ("linux", *a, None),
            [o, a] if !o.is_empty() && !a.is_empty() => (*o, *a, None),
            [o, a, v] if !o.is_empty() && !a.is_empty() && !v.is_empty() => (*o, *a, Some(*v)),
            _ => return Err(bad()),
        };
        let valid = |x: &str| {
            x.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        };
        if !valid(os) || !valid(arch) || !variant.is_none_or(valid) {
            return Err(bad());
        }
        let (arch, variant) = normalize_arch(arch, variant);
        Ok(PlatformSpec {
            os: os.to_lowercase(),
            arch,
            variant,
        })
    }

    /// The platform this process runs on.
    pub fn host() -> PlatformSpec {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            other => other,
        };
        let (arch, variant) = normalize_arch(arch, None);
        PlatformSpec {
            os: std::env::consts::OS.to_string(),
            arch,
            variant,
        }
    }

    /// Whether an index entry's (or config's) platform is this one.
    pub fn matches(&self, os: &str, arch: &str, variant: Option<&str>) -> bool {
        let (arch, variant) = normalize_arch(arch, variant);
        if !os.eq_ignore_ascii_case(&self.os) || arch != self.arch {
            return false;
        }
        match (&self.variant, &variant) {
            (Some(w), Some(v)) => w == v,
            (Some(_), None) => false,
            (None, _) => true,
        }
    }
}

impl std::fmt::Display for PlatformSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// The entry of an index for `want`: an exact variant match first, then any entry of the
/// os/arch. Entries without a platform, or of unknown platform (attestations), never match.
pub(crate) fn select_platform<'a>(
    manifests: &'a [Descriptor],
    want: &PlatformSpec,
) -> Option<&'a Descriptor> {
    let candidates = manifests.iter().filter(|d| {
        d.platform
            .as_ref()
            .is_some_and(|p| want.matches(&p.os, &p.architecture, p.variant.as_deref()))
    });
    let mut first = None;
    for d in candidates {
        let p = d.platform.as_ref()?;
        let (_, v) = normalize_arch(&p.architecture, p.variant.as_deref());
        if v == want.variant {
            return Some(d);
        }
        first.get_or_insert(d);
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    const D3: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

    fn index() -> Vec<Descriptor> {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{MEDIA_TYPE_OCI_INDEX}","manifests":[
              {{"mediaType":"{MEDIA_TYPE_OCI_MANIFEST}","digest":"{D1}","size":1,"platform":{{"os":"linux","architecture":"arm","variant":"v6"}}}},
              {{"mediaType":"{MEDIA_TYPE_OCI_MANIFEST}","digest":"{D2}","size":2,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},
              {{"mediaType":"{MEDIA_TYPE_OCI_MANIFEST}","digest":"{D3}","size":3,"platform":{{"os":"linux","architecture":"amd64"}}}},
              {{"mediaType":"{MEDIA_TYPE_OCI_MANIFEST}","digest":"{D1}","size":4,"platform":{{"os":"unknown","architecture":"unknown"}}}},
              {{"mediaType":"{MEDIA_TYPE_OCI_MANIFEST}","digest":"{D2}","size":5,"platform":{{"os":"linux","architecture":"arm","variant":"v7"}}}}
            ]}}"#
        );
        match parse_manifest(body.as_bytes(), None).unwrap() {
            Manifest::Index(m) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn platform_selection() {
        let ix = index();
        let pick = |p: &str| select_platform(&ix, &PlatformSpec::parse(p).unwrap()).map(|d| d.size);
        assert_eq!(pick("linux/amd64"), Some(3));
        assert_eq!(pick("linux/x86_64"), Some(3));
        assert_eq!(pick("linux/arm64"), Some(2));
        assert_eq!(pick("linux/arm64/v8"), Some(2));
        assert_eq!(pick("linux/aarch64"), Some(2));
        assert_eq!(pick("linux/arm/v6"), Some(1));
        assert_eq!(pick("linux/arm"), Some(5));
        assert_eq!(pick("linux/arm/v5"), None);
        assert_eq!(pick("windows/amd64"), None);
        assert_eq!(pick("linux/s390x"), None);
        assert_eq!(pick("amd64"), Some(3));
        assert!(PlatformSpec::parse("").is_err());
        assert!(PlatformSpec::parse("linux//v7").is_err());
        assert!(PlatformSpec::parse("a/b/c/d").is_err());
        assert!(PlatformSpec::parse("linux/am d64").is_err());
        assert_eq!(
            PlatformSpec::parse("linux/arm64/v8").unwrap().to_string(),
            "linux/arm64"
        );
        assert_eq!(
            PlatformSpec::parse("linux/arm").unwrap().to_string(),
            "linux/arm/v7"
        );
    }

    #[test]
    fn host_platform_is_normalised() {
        let h = PlatformSpec::host();
        assert_eq!(h.os, "linux");
        assert!(!h.arch.is_empty() && h.arch != "x86_64" && h.arch != "aarch64");
    }

    #[test]
    fn manifest_kinds() {
        let docker = format!(
            r#"{{"schemaVersion":2,"mediaType":"{MEDIA_TYPE_DOCKER_MANIFEST}",
               "config":{{"mediaType":"{MEDIA_TYPE_DOCKER_CONFIG}","digest":"{D1}","size":10}},
               "layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{D2}","size":20}}]}}"#
        );
        let Manifest::Image(m) = parse_manifest(docker.as_bytes(), Some("text/plain")).unwrap()
        else {
            panic!()
        };
        assert_eq!(m.media_type, MEDIA_TYPE_DOCKER_MANIFEST);
        assert_eq!(m.layers[0].size, 20);
        check_pullable(&m).unwrap();

        // OCI manifest without mediaType: taken from Content-Type, else guessed.
        let oci = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{MEDIA_TYPE_OCI_CONFIG}","digest":"{D1}","size":10}},
               "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+zstd","digest":"{D2}","size":20}}]}}"#
        );
        let Manifest::Image(m) = parse_manifest(oci.as_bytes(), Some("application/json")).unwrap()
        else {
            panic!()
        };
        assert_eq!(m.media_type, MEDIA_TYPE_OCI_MANIFEST);
        check_pullable(&m).unwrap();

        // Artifacts and foreign configs are refused with their media type.
        let helm = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.cncf.helm.config.v1+json","digest":"{D1}","size":10}},"layers":[]}}"#
        );
        let Manifest::Image(m) = parse_manifest(helm.as_bytes(), None).unwrap() else {
            panic!()
        };
        assert!(matches!(
            check_pullable(&m),
            Err(RegistryError::UnsupportedMediaType(t)) if t.contains("helm")
        ));
        let odd_layer = oci.replace("tar+zstd", "tar+bzip2");
        let Manifest::Image(m) = parse_manifest(odd_layer.as_bytes(), None).unwrap() else {
            panic!()
        };
        assert!(check_pullable(&m).is_err());

        // Schema 1 and unknown types.
        let s1 = r#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#;
        assert!(matches!(
            parse_manifest(
                s1.as_bytes(),
                Some("application/vnd.docker.distribution.manifest.v1+prettyjws")
            ),
            Err(RegistryError::UnsupportedMediaType(_))
        ));
        assert!(matches!(
            parse_manifest(s1.as_bytes(), None),
            Err(RegistryError::UnsupportedMediaType(_))
        ));
        assert!(parse_manifest(b"not json", None).is_err());
        // Bad digests are refused (they become file names).
        let evil = oci.replace(D2, "sha256:../../../etc/passwd");
        assert!(parse_manifest(evil.as_bytes(), None).is_err());
        let sha512 = oci.replace(D2, &format!("sha512:{}", "a".repeat(128)));
        assert!(parse_manifest(sha512.as_bytes(), None).is_err());
    }
}
