//! JSON documents of docker archives and OCI image layouts, and their well-known names.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Docker's list of images in an archive.
pub(crate) const MANIFEST_JSON: &str = "manifest.json";
/// Docker's legacy `{repo: {tag: top-layer}}` file.
pub(crate) const REPOSITORIES: &str = "repositories";
/// OCI layout marker file.
pub(crate) const OCI_LAYOUT: &str = "oci-layout";
/// OCI layout entry point.
pub(crate) const INDEX_JSON: &str = "index.json";
/// Contents of `oci-layout`.
pub(crate) const OCI_LAYOUT_CONTENT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

pub(crate) const MT_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const MT_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const MT_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub(crate) const MT_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Full image name (`docker.io/library/busybox:latest`), containerd's annotation.
pub(crate) const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// OCI reference name: a tag (`latest`, as docker writes it) or a full reference.
pub(crate) const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// One image of `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ManifestItem {
    /// Path of the config in the archive.
    #[serde(rename = "Config")]
    pub config: String,
    /// Familiar `name:tag` references (`null` in docker's output for untagged images).
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    /// Paths of the layers, bottom first.
    #[serde(rename = "Layers", default)]
    pub layers: Vec<String>,
}

/// `os/architecture[/variant]` of a manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// An OCI content descriptor (the fields this crate uses).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    /// `-1` when absent from the JSON (not checked then).
    #[serde(default = "unknown_size")]
    pub size: i64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

fn unknown_size() -> i64 {
    -1
}

/// An OCI image index / docker manifest list.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Index {
    #[serde(default)]
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

/// An image manifest (OCI or docker schema 2), the fields this crate uses.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Manifest {
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

/// The parts of an image config this crate reads.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ConfigProbe {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
    pub rootfs: Option<RootFsProbe>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct RootFsProbe {
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

/// Just the `mediaType` of a JSON document (to tell manifests from indexes).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MediaTypeProbe {
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Option<serde_json::Value>,
}

pub(crate) fn is_index_media_type(mt: &str) -> bool {
    mt == MT_OCI_INDEX || mt == MT_DOCKER_LIST
}

pub(crate) fn is_manifest_media_type(mt: &str) -> bool {
    mt == MT_OCI_MANIFEST || mt == MT_DOCKER_MANIFEST
}

/// The host platform in OCI terms (`linux`, `amd64`).
pub(crate) fn host_platform() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    };
    ("linux", arch)
}

/// `sha256:<64 lowercase hex>` → the hex part.
pub(crate) fn sha256_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then_some(hex)
}

/// Archive path of a blob: `blobs/sha256/<hex>`.
pub(crate) fn blob_member(digest: &str) -> Option<String> {
    sha256_hex(digest).map(|h| format!("blobs/sha256/{h}"))
}
