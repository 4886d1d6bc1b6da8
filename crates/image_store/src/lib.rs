//! image_store: berth's content-addressable image store.
//!
//! * Blobs (`blobs/sha256/<hex>`: configs, manifests, layers) are written to a temporary
//!   file, fsynced, digest-verified and renamed into place.
//! * An image is an OCI image config (its ID is `sha256:` of the config JSON bytes, as in
//!   Docker), an OCI manifest and its layers; references (`docker.io/library/busybox:latest`
//!   → image ID) live in `store.json`, rewritten atomically.
//! * Each layer is unpacked once, with [`layer_unpack`], into `snapshots/<chain-id>/fs`
//!   (via a temporary directory and a rename), shared by every image and container; the
//!   engine stacks these directories as overlayfs lower layers.
//! * Docker-compatible reference parsing/normalisation ([`Reference`]) and error texts
//!   (`No such image: …`, `invalid reference format`, delete conflicts).
//!
//! [`busybox_rootfs_tar`] builds a minimal busybox root filesystem from a static busybox
//! binary, so `busybox:latest` can be created offline with [`ImageStore::import`].

mod blobs;
mod busybox;
mod config;
mod error;
mod reference;
mod store;

#[cfg(test)]
mod tests;

pub use busybox::{busybox_rootfs_tar, write_busybox_rootfs_tar, DEFAULT_BUSYBOX};
pub use config::{busybox_import_config, ImportConfig, UserConfig, DEFAULT_PATH_ENV};
pub use error::{ForceHint, ImageError, Result};
pub use oci_spec::image::ImageConfiguration;
pub use reference::{
    validate_digest, Reference, ReferenceError, DEFAULT_DOMAIN, DEFAULT_TAG, OFFICIAL_REPO_PREFIX,
};
pub use store::{
    chain_ids, go_time, go_time_now, user_config, AddImageOptions, ConfigSource, DeleteItem, Image,
    ImageId, ImageLayer, ImageStore, LayerBlob, MEDIA_TYPE_LAYER_GZIP, MEDIA_TYPE_LAYER_TAR,
    MEDIA_TYPE_LAYER_ZSTD,
};
