//! `docker save`: images → one tar stream that is both a docker archive (`manifest.json`,
//! `repositories`) and an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};

use image_store::{Image, ImageStore, Reference};
use sha2::{Digest as _, Sha256};
use tracing::{debug, info};

use crate::error::{ArchiveError, Result};
use crate::format::{
    blob_member, sha256_hex, ConfigProbe, Descriptor, Index, ManifestItem, MediaTypeProbe,
    Platform, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, INDEX_JSON, MANIFEST_JSON, MT_OCI_INDEX,
    MT_OCI_MANIFEST, OCI_LAYOUT, OCI_LAYOUT_CONTENT, REPOSITORIES,
};
use crate::SaveStats;

/// One image to write and the tags it is saved under.
struct Selected {
    image: Image,
    tags: Vec<Reference>,
}

/// Resolves `refs` the way `docker save` does: an ID (full, short, `sha256:` or
/// `name@digest`) saves the image untagged, `name:tag` saves it with that tag, and a bare
/// `name` saves every tag of that repository (or, when it names no repository, resolves as
/// an ID prefix). Images named several times are saved once, with all their tags.
fn select(store: &ImageStore, refs: &[String]) -> Result<Vec<Selected>> {
    let mut out: Vec<Selected> = Vec::new();
    let mut add = |image: Image, tag: Option<Reference>| {
        let pos = match out.iter().position(|s| s.image.id == image.id) {
            Some(p) => p,
            None => {
                out.push(Selected {
                    image,
                    tags: Vec::new(),
                });
                out.len() - 1
            }
        };
        if let Some(t) = tag {
            if !out[pos].tags.contains(&t) {
                out[pos].tags.push(t);
            }
        }
    };
    for r in refs {
        let is_hex64 = r.len() == 64 && r.bytes().all(|b| b.is_ascii_hexdigit());
        if is_hex64 || r.starts_with("sha256:") {
            // An ID (or `sha256:` ID prefix).
            add(store.resolve(r)?, None);
            continue;
        }
        let parsed = Reference::parse(r)?;
        if parsed.digest().is_some() {
            add(store.resolve(r)?, None);
        } else if parsed.tag().is_some() {
            add(store.resolve(r)?, Some(parsed));
        } else {
            // Every tag of the repository.
            let name = parsed.name();
            let mut found = false;
            for image in store.list() {
                let tags: Vec<Reference> = image
                    .repo_tags
                    .iter()
                    .filter_map(|t| Reference::parse(t).ok())
                    .filter(|t| t.name() == name)
                    .collect();
                for t in tags {
                    found = true;
                    add(image.clone(), Some(t));
                }
            }
            if !found {
                add(store.resolve(r)?, None);
            }
        }
    }
    for s in &mut out {
        s.tags.sort();
    }
    Ok(out)
}

/// Counts the bytes written through it.
struct Counting<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads exactly `expected` bytes, hashing them; a short read, extra data or a digest
/// mismatch is an error (so a corrupt or changing blob never yields a wrong archive).
struct Verified<R> {
    inner: R,
    expected_size: u64,
    expected_digest: String,
    got: u64,
    hasher: Sha256,
    mismatch: Option<String>,
}

impl<R: Read> Read for Verified<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = (self.expected_size - self.got).min(buf.len() as u64) as usize;
        if want == 0 {
            let actual = format!("sha256:{}", hex::encode(self.hasher.clone().finalize()));
            if actual != self.expected_digest {
                self.mismatch = Some(actual.clone());
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "blob digest mismatch: expected {}, got {actual}",
                        self.expected_digest
                    ),
                ));
            }
            return Ok(0);
        }
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "blob {} ended after {} of {} bytes",
                    self.expected_digest, self.got, self.expected_size
                ),
            ));
        }
        self.hasher.update(&buf[..n]);
        self.got += n as u64;
        Ok(n)
    }
}

fn header(size: u64, dir: bool) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(if dir {
        tar::EntryType::Directory
    } else {
        tar::EntryType::Regular
    });
    h.set_mode(if dir { 0o755 } else { 0o644 });
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h
}

fn append_bytes<W: Write>(b: &mut tar::Builder<W>, name: &str, data: &[u8]) -> Result<()> {
    let mut h = header(data.len() as u64, false);
    b.append_data(&mut h, name, data)
        .map_err(|e| ArchiveError::io(format!("writing {name} to the archive"), e))
}

fn append_dir<W: Write>(b: &mut tar::Builder<W>, name: &str) -> Result<()> {
    let mut h = header(0, true);
    b.append_data(&mut h, name, io::empty())
        .map_err(|e| ArchiveError::io(format!("writing {name} to the archive"), e))
}

fn append_blob_file<W: Write>(
    b: &mut tar::Builder<W>,
    store: &ImageStore,
    digest: &str,
) -> Result<()> {
    let member = blob_member(digest)
        .ok_or_else(|| ArchiveError::Unsupported(format!("blob digest {digest}")))?;
    let path = store.blob_path(digest)?;
    let file = File::open(&path)
        .map_err(|e| ArchiveError::io(format!("opening {}", path.display()), e))?;
    let size = file
        .metadata()
        .map_err(|e| ArchiveError::io(format!("stat {}", path.display()), e))?
        .len();
    let mut reader = Verified {
        inner: BufReader::with_capacity(256 * 1024, file),
        expected_size: size,
        expected_digest: digest.to_string(),
        got: 0,
        hasher: Sha256::new(),
        mismatch: None,
    };
    let mut h = header(size, false);
    match b.append_data(&mut h, &member, &mut reader) {
        Ok(()) => Ok(()),
        Err(_) if reader.mismatch.is_some() => Err(ArchiveError::DigestMismatch {
            member: path.display().to_string(),
            expected: digest.to_string(),
            actual: reader.mismatch.unwrap_or_default(),
        }),
        Err(e) => Err(ArchiveError::io(
            format!("writing {member} to the archive"),
            e,
        )),
    }
}

fn to_json<T: serde::Serialize>(v: &T, what: &str) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| ArchiveError::io(format!("serialising {what}"), e.into()))
}

/// `docker save`: writes the images `refs` name (references or IDs, see the crate docs)
/// to `out` as one uncompressed tar, in the format docker 25+ writes: an OCI image layout
/// (`oci-layout`, `index.json` with one descriptor per tag annotated with
/// `io.containerd.image.name` and `org.opencontainers.image.ref.name`, and one without
/// annotations for untagged images; `blobs/sha256/<hex>` for configs, manifests and layers)
/// that is also a docker archive (`manifest.json`, `repositories`). Layers are written as
/// stored, manifests verbatim (so digests survive a save/load round trip); blobs shared by
/// several images are written once. Headers carry mtime 0 and uid/gid 0, so the output is
/// reproducible. Every blob is verified against its digest while it is copied.
pub fn save(store: &ImageStore, refs: &[String], out: impl Write) -> Result<SaveStats> {
    if refs.is_empty() {
        return Err(ArchiveError::NothingToSave);
    }
    let selected = select(store, refs)?;
    let mut builder = tar::Builder::new(Counting {
        inner: out,
        count: 0,
    });

    let mut written: BTreeSet<String> = BTreeSet::new();
    let mut items: Vec<ManifestItem> = Vec::new();
    let mut descriptors: Vec<Descriptor> = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut stats = SaveStats::default();

    append_bytes(&mut builder, OCI_LAYOUT, OCI_LAYOUT_CONTENT.as_bytes())?;
    append_dir(&mut builder, "blobs")?;
    append_dir(&mut builder, "blobs/sha256")?;

    for sel in &selected {
        let img = &sel.image;
        let config = store.config_bytes(&img.id)?;
        let manifest = store.manifest_bytes(&img.id)?;
        let probe: ConfigProbe = serde_json::from_slice(&config).unwrap_or_default();
        let manifest_mt = serde_json::from_slice::<MediaTypeProbe>(&manifest)
            .ok()
            .and_then(|p| p.media_type)
            .unwrap_or_else(|| MT_OCI_MANIFEST.to_string());

        let config_member = blob_member(img.id.as_str())
            .ok_or_else(|| ArchiveError::Unsupported(format!("image ID {}", img.id)))?;
        if written.insert(img.id.to_string()) {
            append_bytes(&mut builder, &config_member, &config)?;
            stats.blobs += 1;
        }
        let mut layer_members = Vec::with_capacity(img.layers.len());
        for l in &img.layers {
            let member = blob_member(&l.blob_digest).ok_or_else(|| {
                ArchiveError::Unsupported(format!("blob digest {}", l.blob_digest))
            })?;
            if written.insert(l.blob_digest.clone()) {
                append_blob_file(&mut builder, store, &l.blob_digest)?;
                stats.blobs += 1;
            }
            layer_members.push(member);
        }
        if written.insert(img.manifest_digest.clone()) {
            let member = blob_member(&img.manifest_digest).ok_or_else(|| {
                ArchiveError::Unsupported(format!("manifest digest {}", img.manifest_digest))
            })?;
            append_bytes(&mut builder, &member, &manifest)?;
            stats.blobs += 1;
        }

        let platform = (!probe.os.is_empty() || !probe.architecture.is_empty()).then(|| Platform {
            architecture: probe.architecture.clone(),
            os: probe.os.clone(),
            variant: probe.variant.clone(),
        });
        let descriptor = |annotations: BTreeMap<String, String>| Descriptor {
            media_type: manifest_mt.clone(),
            digest: img.manifest_digest.clone(),
            size: manifest.len() as i64,
            annotations,
            platform: platform.clone(),
        };
        if sel.tags.is_empty() {
            descriptors.push(descriptor(BTreeMap::new()));
        }
        for t in &sel.tags {
            let tag = t.tag().unwrap_or("latest").to_string();
            let mut ann = BTreeMap::new();
            ann.insert(ANNOTATION_IMAGE_NAME.to_string(), t.to_string());
            ann.insert(ANNOTATION_REF_NAME.to_string(), tag.clone());
            descriptors.push(descriptor(ann));
            if let Some(top) = img.diff_ids.last().and_then(|d| sha256_hex(d)) {
                repositories
                    .entry(t.familiar_name())
                    .or_default()
                    .insert(tag, top.to_string());
            }
        }
        items.push(ManifestItem {
            config: config_member,
            repo_tags: Some(sel.tags.iter().map(Reference::familiar).collect()),
            layers: layer_members,
        });
        stats.images += 1;
        debug!(image = %img.id, tags = sel.tags.len(), "saved image");
    }

    let index = Index {
        schema_version: 2,
        media_type: Some(MT_OCI_INDEX.to_string()),
        manifests: descriptors,
    };
    append_bytes(&mut builder, INDEX_JSON, &to_json(&index, INDEX_JSON)?)?;
    let mut manifest_json = to_json(&items, MANIFEST_JSON)?;
    manifest_json.push(b'\n');
    append_bytes(&mut builder, MANIFEST_JSON, &manifest_json)?;
    if !repositories.is_empty() {
        let mut repos = to_json(&repositories, REPOSITORIES)?;
        repos.push(b'\n');
        append_bytes(&mut builder, REPOSITORIES, &repos)?;
    }
    let mut counting = builder
        .into_inner()
        .map_err(|e| ArchiveError::io("finishing the archive", e))?;
    counting
        .flush()
        .map_err(|e| ArchiveError::io("flushing the archive", e))?;
    stats.bytes = counting.count;
    info!(
        images = stats.images,
        blobs = stats.blobs,
        bytes = stats.bytes,
        "saved images"
    );
    Ok(stats)
}
