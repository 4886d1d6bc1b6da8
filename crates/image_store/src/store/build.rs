//! Store operations the image builder needs: committing a build step as a child image of
//! the image it started from, and finding a cached step by its key.
//!
//! Like Docker's classic builder, every step's result is an image whose `parent` is the
//! image before the step; untagged images with children are "intermediate" images
//! (hidden by `docker images`, removed with the image built on them). The cache key of
//! the step is recorded with the child, so a rebuild finds it again with
//! [`ImageStore::find_child`].

use std::io::Read;
use std::path::Path;

use oci_spec::image::ImageConfiguration;
use tracing::debug;

use super::*;

impl ImageStore {
    /// Adds the result of a build step: the layers of `parent` (none for `FROM scratch`)
    /// plus `layer` when the step changed the filesystem, with `config` (Docker's image
    /// config JSON, its history already extended by the caller; `rootfs` is filled here,
    /// `created`, `architecture` and `os` when missing). Records `parent` and
    /// `build_key` so [`find_child`](Self::find_child) finds the image again.
    pub fn add_child_image(
        &self,
        parent: Option<&ImageId>,
        layer: Option<Box<dyn Read + '_>>,
        config: serde_json::Value,
        build_key: Option<String>,
    ) -> Result<ImageId> {
        let _g = read_lock(&self.gc);
        let mut layers = match parent {
            Some(p) => {
                let st = lock(&self.state);
                st.db
                    .images
                    .get(p.as_str())
                    .map(|r| r.layers.clone())
                    .ok_or_else(|| ImageError::NotFound(p.to_string()))?
            }
            None => Vec::new(),
        };
        if let Some(reader) = layer {
            let l = self.ingest_blob(LayerBlob {
                reader,
                digest: None,
                media_type: Some(MEDIA_TYPE_LAYER_TAR.to_string()),
            })?;
            layers.push(l);
        }
        // The config is kept as JSON so Docker's fields the OCI type lacks (Healthcheck,
        // OnBuild, Shell) survive.
        let mut cfg = match config {
            serde_json::Value::Object(m) => m,
            _ => {
                return Err(ImageError::InvalidImage(
                    "image config must be an object".into(),
                ))
            }
        };
        let diff_ids: Vec<serde_json::Value> = layers
            .iter()
            .map(|l| serde_json::Value::String(l.diff_id.clone()))
            .collect();
        cfg.insert(
            "rootfs".into(),
            serde_json::json!({"type": "layers", "diff_ids": diff_ids}),
        );
        cfg.entry("created").or_insert_with(|| go_time_now().into());
        cfg.entry("architecture")
            .or_insert_with(|| host_arch().to_string().into());
        cfg.entry("os")
            .or_insert_with(|| host_os().to_string().into());
        let bytes = serde_json::to_vec(&cfg)
            .map_err(|e| ImageError::InvalidImage(format!("serialising config: {e}")))?;
        let cfg: ImageConfiguration = serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::InvalidImage(format!("image config: {e}")))?;
        let id = self.finish_image(layers, bytes, cfg, None, Vec::new(), Vec::new())?;
        let mut st = lock(&self.state);
        let mut db = st.db.clone();
        if let Some(rec) = db.images.get_mut(id.as_str()) {
            rec.parent = parent.map(|p| p.as_str().to_string());
            rec.build_key = build_key;
        }
        self.persist(&db)?;
        st.db = db;
        debug!(image = %id, "build step committed");
        Ok(id)
    }

    /// The image a build step with `build_key` made from `parent` before (a cache hit).
    pub fn find_child(&self, parent: Option<&ImageId>, build_key: &str) -> Option<ImageId> {
        let st = lock(&self.state);
        let want = parent.map(|p| p.as_str());
        st.db
            .images
            .iter()
            .filter(|(_, r)| {
                r.parent.as_deref() == want && r.build_key.as_deref() == Some(build_key)
            })
            .max_by_key(|(_, r)| r.added)
            .map(|(id, _)| ImageId(id.clone()))
    }

    /// The parent chain of an image, itself first.
    pub fn lineage(&self, id: &ImageId) -> Vec<ImageId> {
        let st = lock(&self.state);
        let mut out = Vec::new();
        let mut cur = Some(id.as_str().to_string());
        while let Some(c) = cur {
            if out.iter().any(|x: &ImageId| x.as_str() == c) || !st.db.images.contains_key(&c) {
                break;
            }
            cur = st.db.images.get(&c).and_then(|r| r.parent.clone());
            out.push(ImageId(c));
        }
        out
    }

    /// Takes `dir` (an overlay upper directory whose changes became the top layer of
    /// `id`) as that layer's snapshot, instead of unpacking the blob again later. The
    /// directory is renamed into place (same filesystem) when no snapshot exists yet;
    /// otherwise it is left alone. Returns whether it was adopted.
    pub fn adopt_snapshot(&self, id: &ImageId, dir: &Path) -> Result<bool> {
        let _g = read_lock(&self.gc);
        let chain = {
            let st = lock(&self.state);
            st.db
                .images
                .get(id.as_str())
                .and_then(|r| r.layers.last().map(|l| l.chain_id.clone()))
                .ok_or_else(|| ImageError::NotFound(id.to_string()))?
        };
        let hex = digest_hex(&chain).to_string();
        let slock = self.snapshot_lock(&chain);
        let _l = lock(&slock);
        let final_dir = self.snapshots.join(&hex);
        if final_dir.join("fs").is_dir() {
            return Ok(false);
        }
        let work = self.tmp.join(format!("adopt-{hex}-{}", random_suffix()));
        fs::create_dir_all(&work)
            .map_err(|e| ImageError::io(format!("creating {}", work.display()), e))?;
        let mut guard = RemoveOnDrop(Some(work.clone()));
        if fs::rename(dir, work.join("fs")).is_err() {
            return Ok(false); // another filesystem: the snapshot is unpacked on first use
        }
        fs::rename(&work, &final_dir).map_err(|e| {
            ImageError::io(format!("renaming snapshot into {}", final_dir.display()), e)
        })?;
        guard.0 = None;
        debug!(chain_id = %chain, "snapshot adopted from a build step");
        Ok(true)
    }
}
