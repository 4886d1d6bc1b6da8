//! The engine's view of images: resolving a reference to what a container
//! needs (id, defaults, layer snapshot dirs), and removal rules that depend
//! on containers.

use std::path::PathBuf;

use crate::create::ImageDefaults;
use crate::error::{EngineError, Result};
use crate::Engine;

/// An image resolved for container creation.
pub(crate) struct ResolvedImage {
    pub id: String,
    pub defaults: ImageDefaults,
    pub layers: Vec<PathBuf>,
}

/// Maps image store errors onto the API's error kinds.
pub fn image_error(e: image_store::ImageError) -> EngineError {
    use image_store::ImageError as E;
    match e {
        E::NotFound(_) => EngineError::NotFound(e.to_string()),
        E::Conflict { .. } => EngineError::Conflict(e.to_string()),
        E::InvalidReference(_) => EngineError::InvalidArgument(e.to_string()),
        other => EngineError::Internal(other.to_string()),
    }
}

impl Engine {
    pub(crate) fn resolve_image(&self, reference: &str) -> Result<ResolvedImage> {
        let image = self.images.resolve(reference).map_err(image_error)?;
        let layers = self.images.layer_dirs(&image.id).map_err(image_error)?;
        Ok(ResolvedImage {
            id: image.id.as_str().to_string(),
            defaults: image.user_config(),
            layers,
        })
    }

    /// `DELETE /images/{name}`: refuses while containers use the image
    /// unless forced, like dockerd.
    pub fn remove_image(
        &self,
        reference: &str,
        force: bool,
    ) -> Result<Vec<image_store::DeleteItem>> {
        let image = self.images.resolve(reference).map_err(image_error)?;
        let users = self.containers_using_image(image.id.as_str());
        if let Some(c) = users.first() {
            let by_id = image
                .id
                .hex()
                .starts_with(reference.trim_start_matches("sha256:"));
            if !force || c.running() {
                let short = image.id.short();
                return Err(EngineError::Conflict(if by_id || c.running() {
                    format!(
                        "conflict: unable to delete {short} (cannot be forced) - image is being used by running container {}",
                        c.short_id()
                    )
                } else {
                    format!(
                        "conflict: unable to remove repository reference \"{reference}\" (must force) - container {} is using its referenced image {short}",
                        c.short_id()
                    )
                }));
            }
        }
        self.images.remove(reference, force).map_err(image_error)
    }
}
