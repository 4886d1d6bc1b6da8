//! Store operations `save`/`load` need (reading an image's blobs, adding a loaded image).
//! Child of `store`, so it sees the store's internals.

use std::path::Path;

use super::{lock, parse_tag_target, ImageError, ImageId, ImageStore, Reference, Result};

impl ImageStore {
    /// The store's directory for temporary files (`<root>/tmp`, emptied when the store is
    /// opened): where `docker load` spools an archive before importing it.
    pub fn archive_tmp_dir(&self) -> &Path {
        &self.tmp
    }

    /// Points every `(image, tag)` pair's tag (`name[:tag]`, `:latest` implied) at its image
    /// in one atomic update: either all tags are set or none is. Every image must exist.
    /// Returns, per pair, the image the tag pointed at before when that was another image
    /// (Docker prints `The image <tag> already exists, renaming the old one ...`).
    pub fn tag_images(&self, tags: &[(ImageId, String)]) -> Result<Vec<Option<ImageId>>> {
        let parsed = tags
            .iter()
            .map(|(id, t)| Ok((id, parse_tag_target(t)?)))
            .collect::<Result<Vec<(&ImageId, Reference)>>>()?;
        let mut st = lock(&self.state);
        let mut db = st.db.clone();
        let mut previous = Vec::with_capacity(parsed.len());
        for (id, r) in &parsed {
            if !db.images.contains_key(id.as_str()) {
                return Err(ImageError::NotFound(id.to_string()));
            }
            let old = db.references.insert(r.to_string(), id.as_str().to_string());
            previous.push(old.filter(|o| o != id.as_str()).map(ImageId));
        }
        if !parsed.is_empty() {
            self.persist(&db)?;
            st.db = db;
        }
        Ok(previous)
    }
}
