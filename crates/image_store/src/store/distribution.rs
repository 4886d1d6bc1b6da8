//! Store operations a registry client needs (blob presence, ingesting pulled blobs,
//! reading blobs to push). Child of `store`, so it sees the store's internals.
//!
//! A pull downloads each layer blob into [`ImageStore::download_dir`] (same filesystem as
//! the blobs, emptied when the store is opened), then moves it into place with
//! [`ImageStore::commit_downloaded_layer`], which re-verifies the digest and validates the
//! layer. Once every layer is stored, [`ImageStore::add_pulled_image`] records the image
//! and its references in one step, so nothing is tagged before it is complete.

use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;

use layer_unpack::DigestReader;

use super::{lock, parse_tag_target, read_lock, ImageId, ImageLayer, ImageStore};
use crate::blobs::sync_dir;
use crate::error::{ImageError, Result};
use crate::reference::Reference;
use oci_spec::image::ImageConfiguration;

impl ImageStore {
    /// Directory for in-progress downloads: on the blobs' filesystem (so committing is a
    /// rename) and emptied when the store is opened.
    pub fn download_dir(&self) -> &Path {
        &self.tmp
    }

    /// Whether a blob with this digest is stored.
    pub fn contains_blob(&self, digest: &str) -> bool {
        self.blobs
            .path(digest)
            .map(|p| p.is_file())
            .unwrap_or(false)
    }

    /// Details of an already stored layer blob: taken from an image that uses it, else
    /// computed by reading and validating the blob (one left by an interrupted pull). A
    /// stored blob that does not match its digest is removed. `None` when absent.
    pub fn stored_layer(&self, blob_digest: &str, media_type: &str) -> Result<Option<ImageLayer>> {
        let _g = read_lock(&self.gc);
        if !self.contains_blob(blob_digest) {
            return Ok(None);
        }
        let known = {
            let st = lock(&self.state);
            st.db
                .images
                .values()
                .flat_map(|r| r.layers.iter())
                .find(|l| l.blob_digest == blob_digest)
                .cloned()
        };
        if let Some(l) = known {
            return Ok(Some(l));
        }
        match self.inspect_layer_file(&self.blobs.path(blob_digest)?, blob_digest, media_type) {
            Ok(l) => Ok(Some(l)),
            Err(ImageError::DigestMismatch { .. }) => {
                self.blobs.remove(blob_digest)?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Moves a downloaded layer blob (a file in [`download_dir`](Self::download_dir)) into
    /// the store after checking its digest and validating it as a layer (the same checks
    /// as an unpack); returns its details (`chain_id` empty). The blob stays unreferenced
    /// (and is collected at the next open) until [`add_pulled_image`](Self::add_pulled_image).
    pub fn commit_downloaded_layer(
        &self,
        file: &Path,
        digest: &str,
        media_type: &str,
    ) -> Result<ImageLayer> {
        let _g = read_lock(&self.gc);
        let layer = self.inspect_layer_file(file, digest, media_type)?;
        let dest = self.blobs.path(digest)?;
        if dest.is_file() {
            let _ = std::fs::remove_file(file);
        } else {
            File::open(file)
                .and_then(|f| f.sync_all())
                .map_err(|e| ImageError::io(format!("syncing {}", file.display()), e))?;
            std::fs::rename(file, &dest)
                .map_err(|e| ImageError::io(format!("storing blob {digest}"), e))?;
            if let Some(dir) = dest.parent() {
                sync_dir(dir)?;
            }
        }
        Ok(layer)
    }

    fn inspect_layer_file(
        &self,
        path: &Path,
        digest: &str,
        media_type: &str,
    ) -> Result<ImageLayer> {
        let f = File::open(path)
            .map_err(|e| ImageError::io(format!("opening {}", path.display()), e))?;
        let mut r = DigestReader::new(BufReader::with_capacity(256 * 1024, f));
        let stats = layer_unpack::inspect(&mut r)?;
        // The decompressor may stop before the end of the blob: hash all of it.
        r.drain()
            .map_err(|e: io::Error| ImageError::io(format!("reading {}", path.display()), e))?;
        let actual = r.digest();
        if actual != digest {
            return Err(ImageError::DigestMismatch {
                expected: digest.to_string(),
                actual,
            });
        }
        Ok(ImageLayer {
            diff_id: stats.diff_id,
            chain_id: String::new(),
            blob_digest: digest.to_string(),
            media_type: media_type.to_string(),
            blob_size: r.bytes_read(),
            size: stats.content_size,
        })
    }

    /// Records a pulled image whose layer blobs are stored (layers from
    /// [`commit_downloaded_layer`](Self::commit_downloaded_layer) or
    /// [`stored_layer`](Self::stored_layer), bottom to top): the exact config bytes (their
    /// `rootfs.diff_ids` must match the layers), the manifest verbatim, the `tags`
    /// (`name:tag`) and the `digest_refs` (`name@sha256:…`, e.g. an index digest).
    pub fn add_pulled_image(
        &self,
        layers: Vec<ImageLayer>,
        config: Vec<u8>,
        manifest: Vec<u8>,
        tags: &[String],
        digest_refs: &[String],
    ) -> Result<ImageId> {
        let tags = tags
            .iter()
            .map(|t| parse_tag_target(t))
            .collect::<Result<Vec<_>>>()?;
        let digest_refs = digest_refs
            .iter()
            .map(|d| parse_digest_ref(d))
            .collect::<Result<Vec<_>>>()?;
        let _g = read_lock(&self.gc);
        for l in &layers {
            if !self.contains_blob(&l.blob_digest) {
                return Err(ImageError::InvalidImage(format!(
                    "layer blob {} is missing",
                    l.blob_digest
                )));
            }
        }
        let cfg: ImageConfiguration = serde_json::from_slice(&config)
            .map_err(|e| ImageError::InvalidImage(format!("image config: {e}")))?;
        let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
        if cfg.rootfs().diff_ids() != &diff_ids {
            return Err(ImageError::InvalidImage(
                "layer diff_ids do not match the image config".into(),
            ));
        }
        let id = self.finish_image(layers, config, cfg, Some(manifest), tags, Vec::new())?;
        self.insert_references(&id, &digest_refs)?;
        Ok(id)
    }

    /// Records `name@sha256:…` for an image (e.g. after pushing it).
    pub fn add_digest_reference(&self, id: &ImageId, digest_ref: &str) -> Result<()> {
        let r = parse_digest_ref(digest_ref)?;
        self.insert_references(id, &[r])
    }

    fn insert_references(&self, id: &ImageId, refs: &[Reference]) -> Result<()> {
        if refs.is_empty() {
            return Ok(());
        }
        let mut st = lock(&self.state);
        if !st.db.images.contains_key(id.as_str()) {
            return Err(ImageError::NotFound(id.to_string()));
        }
        let mut db = st.db.clone();
        for r in refs {
            db.references.insert(r.to_string(), id.as_str().to_string());
        }
        self.persist(&db)?;
        st.db = db;
        Ok(())
    }
}

fn parse_digest_ref(s: &str) -> Result<Reference> {
    let r = Reference::parse(s)?;
    match r.digest() {
        Some(d) => Ok(Reference::parse(&r.name())?.with_digest(d)?),
        None => Err(ImageError::InvalidReference(
            crate::reference::ReferenceError::InvalidFormat,
        )),
    }
}
