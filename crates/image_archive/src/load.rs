//! `docker load`: docker archives (classic and 25+) and OCI image layout archives → images
//! in the store.
//!
//! The archive is spooled first ([`Spool`]), then every image is planned and verified
//! (configs, manifests, blob digests, layer diff_ids) before anything enters the store;
//! images are then added untagged and all tags are set in one atomic store update at the
//! end. On failure, images this load added are removed again.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use image_store::{AddImageOptions, ConfigSource, ImageId, ImageStore, LayerBlob, Reference};
use serde::de::DeserializeOwned;
use tracing::{debug, info, warn};

use crate::error::{ArchiveError, Result};
use crate::format::{
    blob_member, host_platform, is_index_media_type, is_manifest_media_type, ConfigProbe,
    Descriptor, Index, Manifest, ManifestItem, MediaTypeProbe, Platform, ANNOTATION_IMAGE_NAME,
    ANNOTATION_REF_NAME, INDEX_JSON, MANIFEST_JSON,
};
use crate::spool::{Spool, SpooledFile};
use crate::{LoadOptions, LoadedImage};

/// Nested indexes followed at most.
const MAX_INDEX_DEPTH: usize = 4;

struct PlannedLayer {
    file: SpooledFile,
    media_type: Option<String>,
}

struct Planned {
    id: String,
    config: Vec<u8>,
    layers: Vec<PlannedLayer>,
    manifest: Option<Vec<u8>>,
    tags: Vec<Reference>,
}

fn parse_json<T: DeserializeOwned>(data: &[u8], member: &str) -> Result<T> {
    serde_json::from_slice(data).map_err(|source| ArchiveError::InvalidJson {
        member: member.to_string(),
        source,
    })
}

/// `RepoTags` entries must be `name:tag`.
fn parse_repo_tag(tag: &str) -> Result<Reference> {
    let invalid = || ArchiveError::InvalidTag {
        tag: tag.to_string(),
    };
    let r = Reference::parse(tag).map_err(|_| invalid())?;
    if r.tag().is_none() || r.digest().is_some() {
        return Err(invalid());
    }
    Ok(r)
}

/// The tag an OCI index descriptor names: `io.containerd.image.name` (a full reference),
/// else `org.opencontainers.image.ref.name` when it is a reference (`busybox:1`,
/// `x/y`); a bare ref name (`latest`, as docker writes it next to the containerd
/// annotation) names no repository and is ignored, as are digest references.
fn annotation_tag(ann: &std::collections::BTreeMap<String, String>) -> Option<Reference> {
    let candidate = match (ann.get(ANNOTATION_IMAGE_NAME), ann.get(ANNOTATION_REF_NAME)) {
        (Some(n), _) => n,
        (None, Some(n)) if n.contains(':') || n.contains('/') || n.contains('@') => n,
        _ => return None,
    };
    match Reference::parse(candidate) {
        Ok(r) if r.digest().is_none() => Some(r.with_default_tag()),
        Ok(_) => None,
        Err(e) => {
            warn!(name = %candidate, error = %e, "ignoring unusable image name annotation");
            None
        }
    }
}

fn check_os(probe: &ConfigProbe) -> Result<()> {
    if !probe.os.is_empty() && probe.os != "linux" {
        return Err(ArchiveError::Unsupported(format!(
            "cannot load {} image on linux",
            probe.os
        )));
    }
    Ok(())
}

fn config_diff_ids(config: &[u8], member: &str) -> Result<Vec<String>> {
    let probe: ConfigProbe = parse_json(config, member)?;
    check_os(&probe)?;
    probe
        .rootfs
        .map(|r| r.diff_ids)
        .ok_or_else(|| ArchiveError::manifest(member, "image config has no rootfs"))
}

/// Checks a layer against its diff_id: a plain tar's is its digest; a compressed one is
/// decompressed and hashed.
fn verify_diff_id(index: usize, member: &str, f: &SpooledFile, expected: &str) -> Result<()> {
    let compression =
        layer_unpack::detect_compression(&f.prefix).map_err(|source| ArchiveError::Layer {
            member: member.to_string(),
            source,
        })?;
    let actual = match compression {
        layer_unpack::Compression::None => f.digest.clone(),
        _ => {
            let file = File::open(&f.path)
                .map_err(|e| ArchiveError::io(format!("opening spooled {member}"), e))?;
            layer_unpack::diff_id(BufReader::with_capacity(256 * 1024, file))
                .map_err(|source| ArchiveError::Layer {
                    member: member.to_string(),
                    source,
                })?
                .0
        }
    };
    if actual != expected {
        return Err(ArchiveError::DiffIdMismatch {
            index,
            member: member.to_string(),
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(())
}

/// The blob a descriptor points at, checked against the descriptor's digest and size.
fn blob<'a>(spool: &'a Spool, d: &Descriptor, referrer: &str) -> Result<(String, &'a SpooledFile)> {
    let member = blob_member(&d.digest).ok_or_else(|| {
        ArchiveError::manifest(
            referrer,
            format!("unsupported or malformed digest {:?}", d.digest),
        )
    })?;
    let f = spool.file(&member)?;
    if f.digest != d.digest {
        return Err(ArchiveError::DigestMismatch {
            member,
            expected: d.digest.clone(),
            actual: f.digest.clone(),
        });
    }
    if d.size >= 0 && f.size != d.size as u64 {
        return Err(ArchiveError::manifest(
            referrer,
            format!("size of {member} is {}, descriptor says {}", f.size, d.size),
        ));
    }
    Ok((member, f))
}

fn read_blob(
    spool: &Spool,
    d: &Descriptor,
    referrer: &str,
    opts: &LoadOptions,
) -> Result<(String, Vec<u8>)> {
    let (member, _) = blob(spool, d, referrer)?;
    let data = spool.read_small(&member, opts.max_metadata_size)?;
    Ok((member, data))
}

/// Whether the image store will accept these manifest bytes verbatim.
fn storable_manifest(bytes: &[u8]) -> bool {
    serde_json::from_slice::<oci_spec::image::ImageManifest>(bytes).is_ok()
}

fn media_type_of(d: &Descriptor, data: &[u8]) -> String {
    if !d.media_type.is_empty() {
        return d.media_type.clone();
    }
    let probe: MediaTypeProbe = serde_json::from_slice(data).unwrap_or_default();
    match probe.media_type {
        Some(mt) => mt,
        None if probe.manifests.is_some() => crate::format::MT_OCI_INDEX.to_string(),
        None => crate::format::MT_OCI_MANIFEST.to_string(),
    }
}

fn platform_matches(p: &Platform) -> bool {
    let (os, arch) = host_platform();
    p.os == os && p.architecture == arch
}

/// Follows `d` (a manifest, or an index → the host platform's manifest, or its only
/// manifest) to an image manifest. `None` for other artifacts.
fn resolve_manifest(
    spool: &Spool,
    d: &Descriptor,
    referrer: &str,
    opts: &LoadOptions,
    depth: usize,
) -> Result<Option<(String, Vec<u8>, Manifest)>> {
    let (member, data) = read_blob(spool, d, referrer, opts)?;
    let mt = media_type_of(d, &data);
    if is_manifest_media_type(&mt) {
        let m: Manifest = parse_json(&data, &member)?;
        return Ok(Some((member, data, m)));
    }
    if !is_index_media_type(&mt) {
        debug!(member = %member, media_type = %mt, "skipping non-image descriptor");
        return Ok(None);
    }
    if depth >= MAX_INDEX_DEPTH {
        return Err(ArchiveError::manifest(
            &member,
            "image indexes nested too deeply",
        ));
    }
    let index: Index = parse_json(&data, &member)?;
    let chosen = index
        .manifests
        .iter()
        .find(|c| c.platform.as_ref().is_some_and(platform_matches))
        .or(match index.manifests.as_slice() {
            [only] => Some(only),
            _ => None,
        });
    match chosen {
        Some(c) => resolve_manifest(spool, c, &member, opts, depth + 1),
        None => {
            let (os, arch) = host_platform();
            Err(ArchiveError::NoMatchingPlatform {
                platform: format!("{os}/{arch}"),
                member,
            })
        }
    }
}

/// Plans one image from its manifest (OCI layout path).
fn plan_manifest(
    spool: &Spool,
    member: &str,
    data: Vec<u8>,
    m: &Manifest,
    opts: &LoadOptions,
) -> Result<Planned> {
    let (config_member, config) = read_blob(spool, &m.config, member, opts)?;
    let diff_ids = config_diff_ids(&config, &config_member)?;
    if diff_ids.len() != m.layers.len() {
        return Err(ArchiveError::LayerCountMismatch {
            expected: m.layers.len(),
            actual: diff_ids.len(),
        });
    }
    let mut layers = Vec::with_capacity(m.layers.len());
    for (i, (ld, diff_id)) in m.layers.iter().zip(&diff_ids).enumerate() {
        let (lmember, f) = blob(spool, ld, member)?;
        verify_diff_id(i, &lmember, f, diff_id)?;
        layers.push(PlannedLayer {
            file: f.clone(),
            media_type: (!ld.media_type.is_empty()).then(|| ld.media_type.clone()),
        });
    }
    let manifest = if storable_manifest(&data) {
        Some(data)
    } else {
        warn!(member = %member, "manifest not storable verbatim; a new one is generated");
        for l in &mut layers {
            l.media_type = None;
        }
        None
    };
    Ok(Planned {
        id: m.config.digest.clone(),
        config,
        layers,
        manifest,
        tags: Vec::new(),
    })
}

/// Adds `p` to `plan`, merging tags when the image is already planned.
fn merge(plan: &mut Vec<Planned>, p: Planned) {
    match plan.iter_mut().find(|q| q.id == p.id) {
        Some(q) => {
            for t in p.tags {
                if !q.tags.contains(&t) {
                    q.tags.push(t);
                }
            }
        }
        None => plan.push(p),
    }
}

/// A pure OCI image layout: `index.json` → manifests (through nested indexes).
fn plan_oci(spool: &Spool, opts: &LoadOptions) -> Result<Vec<Planned>> {
    let data = spool.read_small(INDEX_JSON, opts.max_metadata_size)?;
    let index: Index = parse_json(&data, INDEX_JSON)?;
    let host_match = index
        .manifests
        .iter()
        .any(|d| d.platform.as_ref().is_some_and(platform_matches));
    let mut plan = Vec::new();
    for d in &index.manifests {
        if host_match && d.platform.as_ref().is_some_and(|p| !platform_matches(p)) {
            debug!(digest = %d.digest, "skipping manifest for another platform");
            continue;
        }
        let Some((member, mdata, m)) = resolve_manifest(spool, d, INDEX_JSON, opts, 0)? else {
            continue;
        };
        let mut p = plan_manifest(spool, &member, mdata, &m, opts)?;
        p.tags.extend(annotation_tag(&d.annotations));
        merge(&mut plan, p);
    }
    if plan.is_empty() {
        return Err(ArchiveError::manifest(
            INDEX_JSON,
            "no image manifests found",
        ));
    }
    Ok(plan)
}

/// OCI manifests of a docker 25+ archive's `index.json`, by config digest (best effort:
/// used only to keep manifests, and so their digests, across a save/load round trip).
fn oci_manifests_by_config(
    spool: &Spool,
    opts: &LoadOptions,
) -> HashMap<String, (Vec<u8>, Manifest)> {
    let mut out = HashMap::new();
    let Ok(data) = spool.read_small(INDEX_JSON, opts.max_metadata_size) else {
        return out;
    };
    let Ok(index) = serde_json::from_slice::<Index>(&data) else {
        return out;
    };
    for d in &index.manifests {
        match resolve_manifest(spool, d, INDEX_JSON, opts, 0) {
            Ok(Some((_, bytes, m))) => {
                out.entry(m.config.digest.clone()).or_insert((bytes, m));
            }
            Ok(None) => {}
            Err(e) => debug!(error = %e, "ignoring index.json entry"),
        }
    }
    out
}

/// A docker archive: `manifest.json` lists configs, layers and tags by path.
fn plan_docker(spool: &Spool, opts: &LoadOptions) -> Result<Vec<Planned>> {
    let data = spool.read_small(MANIFEST_JSON, opts.max_metadata_size)?;
    let items: Option<Vec<ManifestItem>> = parse_json(&data, MANIFEST_JSON)?;
    let items = items.ok_or_else(|| {
        ArchiveError::manifest(MANIFEST_JSON, "manifest cannot be null (but can be [])")
    })?;
    let oci = oci_manifests_by_config(spool, opts);
    let mut plan = Vec::new();
    for item in items {
        let config = spool.read_small(&item.config, opts.max_metadata_size)?;
        let id = layer_unpack::sha256_digest(&config);
        let diff_ids = config_diff_ids(&config, &item.config)?;
        if diff_ids.len() != item.layers.len() {
            return Err(ArchiveError::LayerCountMismatch {
                expected: item.layers.len(),
                actual: diff_ids.len(),
            });
        }
        let mut layers = Vec::with_capacity(item.layers.len());
        for (i, (member, diff_id)) in item.layers.iter().zip(&diff_ids).enumerate() {
            let f = spool.file(member)?;
            verify_diff_id(i, member, f, diff_id)?;
            layers.push(PlannedLayer {
                file: f.clone(),
                media_type: None,
            });
        }
        let mut manifest = None;
        if let Some((bytes, m)) = oci.get(&id) {
            let same_blobs = m.layers.len() == layers.len()
                && m.layers
                    .iter()
                    .zip(&layers)
                    .all(|(d, l)| d.digest == l.file.digest);
            if same_blobs && storable_manifest(bytes) {
                for (d, l) in m.layers.iter().zip(&mut layers) {
                    l.media_type = (!d.media_type.is_empty()).then(|| d.media_type.clone());
                }
                manifest = Some(bytes.clone());
            }
        }
        let tags = item
            .repo_tags
            .unwrap_or_default()
            .iter()
            .map(|t| parse_repo_tag(t))
            .collect::<Result<Vec<_>>>()?;
        merge(
            &mut plan,
            Planned {
                id,
                config,
                layers,
                manifest,
                tags,
            },
        );
    }
    Ok(plan)
}

fn add_planned(store: &ImageStore, p: &Planned) -> Result<ImageId> {
    let mut blobs = Vec::with_capacity(p.layers.len());
    for l in &p.layers {
        let f = File::open(&l.file.path)
            .map_err(|e| ArchiveError::io(format!("opening spooled layer {}", l.file.digest), e))?;
        blobs.push(LayerBlob {
            reader: Box::new(BufReader::with_capacity(256 * 1024, f)) as Box<dyn Read>,
            digest: Some(l.file.digest.clone()),
            media_type: l.media_type.clone(),
        });
    }
    let id = store.add_image_from_layers(
        blobs,
        ConfigSource::Raw(p.config.clone()),
        AddImageOptions {
            manifest: p.manifest.clone(),
            ..Default::default()
        },
    )?;
    Ok(id)
}

fn apply(
    store: &ImageStore,
    plan: &[Planned],
    added: &mut Vec<ImageId>,
) -> Result<Vec<LoadedImage>> {
    let mut pairs = Vec::new();
    let mut out = Vec::with_capacity(plan.len());
    for p in plan {
        let id = ImageId::parse(&p.id)?;
        if store.get(&id).is_err() {
            let got = add_planned(store, p)?;
            added.push(got.clone());
            if got != id {
                return Err(ArchiveError::DigestMismatch {
                    member: "image config".into(),
                    expected: id.to_string(),
                    actual: got.to_string(),
                });
            }
            debug!(image = %id, "loaded image");
        } else {
            debug!(image = %id, "image already present");
        }
        for t in &p.tags {
            pairs.push((id.clone(), t.to_string()));
        }
        out.push(LoadedImage {
            id: id.to_string(),
            tags: p.tags.iter().map(Reference::familiar).collect(),
        });
    }
    let previous = store.tag_images(&pairs)?;
    for ((_, tag), old) in pairs.iter().zip(previous) {
        if let Some(old) = old {
            info!(tag = %tag, old = %old, "tag moved to a loaded image");
        }
    }
    Ok(out)
}

/// Removes images a failed load added, unless something tagged them meanwhile.
fn rollback(store: &ImageStore, added: &[ImageId]) {
    for id in added {
        let Ok(img) = store.get(id) else { continue };
        if !img.repo_tags.is_empty() || !img.repo_digests.is_empty() {
            continue;
        }
        if let Err(e) = store.remove(id.as_str(), false) {
            warn!(image = %id, error = %e, "cannot remove partially loaded image");
        }
    }
}

/// [`load`](crate::load) with explicit limits.
pub fn load_with_options(
    store: &ImageStore,
    input: impl Read,
    tmp_dir: &Path,
    opts: &LoadOptions,
) -> Result<Vec<LoadedImage>> {
    let spool = Spool::read(input, tmp_dir, opts)?;
    let plan = match spool.file(MANIFEST_JSON) {
        Ok(_) => plan_docker(&spool, opts)?,
        Err(ArchiveError::MissingMember { .. }) => match spool.file(INDEX_JSON) {
            Ok(_) => plan_oci(&spool, opts)?,
            Err(ArchiveError::MissingMember { .. }) => return Err(ArchiveError::NoManifest),
            Err(e) => return Err(e),
        },
        Err(e) => return Err(e),
    };
    let mut added = Vec::new();
    match apply(store, &plan, &mut added) {
        Ok(loaded) => {
            info!(images = loaded.len(), "loaded archive");
            Ok(loaded)
        }
        Err(e) => {
            rollback(store, &added);
            Err(e)
        }
    }
}
