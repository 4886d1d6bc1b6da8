//! image_archive: `docker save` / `docker load` for berth's image store.
//!
//! * [`save`] writes images as one uncompressed tar in the format docker 25+ writes, which
//!   is both an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/<hex>`) and a
//!   docker archive (`manifest.json`, `repositories`), so `docker load`, `skopeo`,
//!   containerd and other OCI tools can all read it.
//! * [`load`] accepts docker's classic archives (`manifest.json`, `<id>.json` configs,
//!   `<dir>/layer.tar` layers, plain or compressed, as docker before 25 and skopeo's
//!   `docker-archive:` write them), docker 25+ archives, and pure OCI image layout archives
//!   (`index.json` → manifests, through nested indexes, picking the host platform). The
//!   input itself may be plain, gzip or zstd.
//!
//! Archives are hostile input. `load` first spools the tar into a private temporary
//! directory: member data goes to generated file names (nothing in the archive chooses
//! a path on disk), `..` and absolute names are refused, symlinks and hardlinks are only
//! resolved by name inside the archive, sizes and counts are bounded ([`LoadOptions`]).
//! Then every image is checked — blob digests against their names and descriptors, each
//! layer against the config's `rootfs.diff_ids` — before anything is added to the store;
//! images are added untagged and all tags set in one atomic update at the end, so a
//! failed load tags nothing (and images it added are removed again).

mod error;
mod format;
mod load;
mod save;
mod spool;

#[cfg(test)]
mod tests;

use std::io::Read;
use std::path::Path;

use image_store::ImageStore;

pub use error::{ArchiveError, Result};
pub use load::load_with_options;
pub use save::save;

/// What [`save`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SaveStats {
    /// Images written.
    pub images: usize,
    /// Blobs written (configs, manifests, layers; each once).
    pub blobs: usize,
    /// Bytes of tar written.
    pub bytes: u64,
}

/// An image [`load`] added (or found already present) and the tags it set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    /// `sha256:<hex>` image ID.
    pub id: String,
    /// Tags pointed at it, familiar form (`busybox:latest`); print
    /// `Loaded image: <tag>` for each, or `Loaded image ID: <id>` when there is none.
    pub tags: Vec<String>,
}

/// Limits applied by [`load_with_options`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    /// Largest JSON member read into memory (manifest.json, index.json, manifests,
    /// configs). Default 32 MiB.
    pub max_metadata_size: u64,
    /// Largest member. Default unlimited.
    pub max_member_size: u64,
    /// Largest sum of member sizes. Default unlimited.
    pub max_total_size: u64,
    /// Most members (directories and links included). Default 100,000.
    pub max_members: u64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            max_metadata_size: 32 << 20,
            max_member_size: u64::MAX,
            max_total_size: u64::MAX,
            max_members: 100_000,
        }
    }
}

/// `docker load`: reads an archive (docker classic, docker 25+ or OCI layout; plain, gzip
/// or zstd) from `input`, spooling it into a temporary directory created inside `tmp_dir`
/// (e.g. [`ImageStore::archive_tmp_dir`]) and removed before returning, and adds its images
/// to `store` with their tags. Returns the images in archive order.
pub fn load(store: &ImageStore, input: impl Read, tmp_dir: &Path) -> Result<Vec<LoadedImage>> {
    load_with_options(store, input, tmp_dir, &LoadOptions::default())
}
