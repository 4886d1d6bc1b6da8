//! The image store proper: images (config + manifest + layers), references, snapshots.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use chrono::{DateTime, SecondsFormat, Utc};
use nix::fcntl::{Flock, FlockArg};
use oci_spec::image::{
    Descriptor, DescriptorBuilder, History, HistoryBuilder, ImageConfiguration, ImageManifest,
    ImageManifestBuilder, MediaType, RootFs,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tracing::{debug, info, warn};

use crate::blobs::{random_suffix, sync_dir, write_atomic, BlobWriter, Blobs};
use crate::config::{host_arch, host_os, ImportConfig, UserConfig};
use crate::error::{ForceHint, ImageError, Result};
use crate::reference::{is_hex64, Reference, ReferenceError};

/// Media type of an uncompressed OCI layer.
pub const MEDIA_TYPE_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// Media type of a gzip OCI layer.
pub const MEDIA_TYPE_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Media type of a zstd OCI layer.
pub const MEDIA_TYPE_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

const DB_FILE: &str = "store.json";
const DB_VERSION: u32 = 1;

/// An image ID: `sha256:<hex>` of the image config JSON bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ImageId(String);

impl ImageId {
    /// Accepts `sha256:<64 hex>` or bare `<64 hex>`.
    pub fn parse(s: &str) -> Result<Self> {
        let hex = s.strip_prefix("sha256:").unwrap_or(s);
        if is_hex64(hex) {
            Ok(ImageId(format!("sha256:{hex}")))
        } else {
            Err(ImageError::InvalidReference(ReferenceError::InvalidFormat))
        }
    }

    /// `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 64 hex characters.
    pub fn hex(&self) -> &str {
        self.0.strip_prefix("sha256:").unwrap_or(&self.0)
    }

    /// The first 12 hex characters (Docker's short ID).
    pub fn short(&self) -> &str {
        let h = self.hex();
        &h[..h.len().min(12)]
    }
}

impl fmt::Display for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One layer of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageLayer {
    /// `sha256` of the uncompressed tar.
    pub diff_id: String,
    /// Chain ID (identifies the layer stacked on its parents; names its snapshot).
    pub chain_id: String,
    /// Digest of the stored blob (equals `diff_id` when stored uncompressed).
    pub blob_digest: String,
    /// Media type of the stored blob.
    pub media_type: String,
    /// Size of the stored blob in bytes.
    pub blob_size: u64,
    /// Sum of the sizes of the layer's regular files.
    pub size: u64,
}

/// An image as seen by callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// `sha256:` of the config.
    pub id: ImageId,
    /// Tags in familiar form (`busybox:latest`), sorted.
    pub repo_tags: Vec<String>,
    /// Digest references in familiar form (`busybox@sha256:…`), sorted.
    pub repo_digests: Vec<String>,
    /// The OCI image configuration.
    pub config: ImageConfiguration,
    /// `config.created`, or when the image was stored.
    pub created: DateTime<Utc>,
    /// Sum of the layers' uncompressed content sizes.
    pub size: u64,
    /// `rootfs.diff_ids`, bottom to top.
    pub diff_ids: Vec<String>,
    /// Layer details, bottom to top.
    pub layers: Vec<ImageLayer>,
    /// Digest of the stored manifest.
    pub manifest_digest: String,
    /// The image a build step made this one from (Docker's `Parent`), if any.
    pub parent: Option<ImageId>,
}

impl Image {
    /// Cmd/Entrypoint/Env/WorkingDir/User/ExposedPorts/StopSignal/Volumes/Labels.
    pub fn user_config(&self) -> UserConfig {
        UserConfig::from_image_config(&self.config)
    }
}

/// Convenience form of [`Image::user_config`].
pub fn user_config(image: &Image) -> UserConfig {
    image.user_config()
}

/// One line of a delete result, serialised like Docker's (`{"Untagged": "busybox:latest"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeleteItem {
    /// A reference was removed (familiar form).
    Untagged(String),
    /// An image (its ID) or a layer (its chain ID) was deleted.
    Deleted(String),
}

/// A layer given to [`ImageStore::add_image_from_layers`].
pub struct LayerBlob<'a> {
    /// The blob (plain tar, gzip or zstd); stored exactly as read.
    pub reader: Box<dyn Read + 'a>,
    /// Expected blob digest (e.g. from a manifest); verified before commit.
    pub digest: Option<String>,
    /// Media type to record; inferred from the detected compression when `None`.
    pub media_type: Option<String>,
}

/// The config of an image being added.
pub enum ConfigSource {
    /// Exact config bytes (a pull): the ID is their digest; `rootfs.diff_ids` must match
    /// the layers.
    Raw(Vec<u8>),
    /// A config to serialise (a build): `rootfs` is filled from the layers, `created`,
    /// `architecture` and `os` are defaulted when missing.
    Build(Box<ImageConfiguration>),
}

/// Options of [`ImageStore::add_image_from_layers`].
#[derive(Debug, Clone, Default)]
pub struct AddImageOptions {
    /// Manifest bytes to store verbatim (a pull); must reference the config and the layer
    /// blobs. Generated (OCI) when `None`.
    pub manifest: Option<Vec<u8>>,
    /// References to point at the image (`:latest` added when untagged).
    pub tags: Vec<String>,
    /// Repositories for which to record `<repo>@<manifest digest>` (RepoDigests).
    pub repo_digest_names: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ImageRecord {
    manifest_digest: String,
    layers: Vec<ImageLayer>,
    added: DateTime<Utc>,
    /// Build parent (the image the step that made this one started from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parent: Option<String>,
    /// Build cache key of the step that made this image (see `store/build.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    build_key: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Db {
    version: u32,
    /// image ID → record
    images: BTreeMap<String, ImageRecord>,
    /// full normalised reference → image ID
    references: BTreeMap<String, String>,
}

#[derive(Default)]
struct State {
    db: Db,
    configs: HashMap<String, Arc<ImageConfiguration>>,
}

/// How a reference string matched an image.
enum Via {
    Id,
    Reference(Reference),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn read_lock(m: &RwLock<()>) -> RwLockReadGuard<'_, ()> {
    m.read().unwrap_or_else(|e| e.into_inner())
}

fn write_lock(m: &RwLock<()>) -> RwLockWriteGuard<'_, ()> {
    m.write().unwrap_or_else(|e| e.into_inner())
}

/// The current time as Go's `time.RFC3339Nano` writes it (trailing zeros of the
/// fraction dropped), so configs re-encoded by Go tools (skopeo converting an image to
/// OCI, docker) keep the same bytes and thus the same image ID.
pub fn go_time_now() -> String {
    go_time(Utc::now())
}

/// [`go_time_now`] for a given instant.
pub fn go_time(t: DateTime<Utc>) -> String {
    let s = t.to_rfc3339_opts(SecondsFormat::Nanos, true);
    match s.split_once('.') {
        Some((secs, frac)) => {
            let digits = frac.trim_end_matches('Z').trim_end_matches('0');
            if digits.is_empty() {
                format!("{secs}Z")
            } else {
                format!("{secs}.{digits}Z")
            }
        }
        None => s,
    }
}

/// `chain_id(L0) = diff_id(L0)`, `chain_id(Ln) = sha256(chain_id(Ln-1) + " " + diff_id(Ln))`.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(parent) => format!(
                "sha256:{}",
                hex::encode(Sha256::digest(format!("{parent} {d}").as_bytes()))
            ),
        };
        out.push(next);
    }
    out
}

fn digest_hex(d: &str) -> &str {
    d.strip_prefix("sha256:").unwrap_or(d)
}

/// Tees everything read into a blob writer, remembering write errors.
struct Tee<'a, R> {
    inner: R,
    out: &'a mut BlobWriter,
    write_error: Option<io::Error>,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Err(e) = self.out.write_all(&buf[..n]) {
            let msg = e.to_string();
            self.write_error = Some(e);
            return Err(io::Error::other(msg));
        }
        Ok(n)
    }
}

/// Deletes a directory tree on drop unless disarmed.
struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            if let Err(e) = fs::remove_dir_all(&p) {
                warn!(path = %p.display(), error = %e, "cannot remove temporary directory");
            }
        }
    }
}

/// A content-addressable image store rooted at a directory:
///
/// ```text
/// <root>/lock                      flock held while the store is open
/// <root>/store.json                images (manifest digest, layers) and references
/// <root>/blobs/sha256/<hex>        configs, manifests, layer blobs
/// <root>/snapshots/<chain-hex>/fs  unpacked layers (overlay lower dirs)
/// <root>/tmp/                      in-progress blobs and snapshots
/// ```
///
/// `Send + Sync`; all methods take `&self`. Only one `ImageStore` (one process) may have a
/// given root open at a time.
pub struct ImageStore {
    root: PathBuf,
    blobs: Blobs,
    snapshots: PathBuf,
    tmp: PathBuf,
    state: Mutex<State>,
    /// Held for reading while content is added or snapshots are made, for writing while
    /// unreferenced content is deleted.
    gc: RwLock<()>,
    snapshot_locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    _lock: Flock<File>,
}

impl fmt::Debug for ImageStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImageStore")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

fn create_private_dir(p: &Path) -> Result<()> {
    fs::create_dir_all(p).map_err(|e| ImageError::io(format!("creating {}", p.display()), e))?;
    fs::set_permissions(p, fs::Permissions::from_mode(0o700))
        .map_err(|e| ImageError::io(format!("chmod {}", p.display()), e))
}

fn clear_dir(p: &Path) {
    let Ok(rd) = fs::read_dir(p) else {
        return;
    };
    for ent in rd.flatten() {
        let path = ent.path();
        let res = match ent.file_type() {
            Ok(t) if t.is_dir() => fs::remove_dir_all(&path),
            _ => fs::remove_file(&path),
        };
        if let Err(e) = res {
            warn!(path = %path.display(), error = %e, "cannot clean temporary entry");
        }
    }
}

impl ImageStore {
    /// Opens (creating if needed) the store at `root`, recovering from interrupted work:
    /// temporary files are removed, and blobs/snapshots no image references are deleted.
    pub fn open(root: &Path) -> Result<ImageStore> {
        let blobs_dir = root.join("blobs").join("sha256");
        let snapshots = root.join("snapshots");
        let tmp = root.join("tmp");
        create_private_dir(root)?;
        fs::create_dir_all(&blobs_dir)
            .map_err(|e| ImageError::io(format!("creating {}", blobs_dir.display()), e))?;
        create_private_dir(&snapshots)?;
        create_private_dir(&tmp)?;

        let lock_path = root.join("lock");
        let lock_file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| ImageError::io(format!("opening {}", lock_path.display()), e))?;
        let flock = Flock::lock(lock_file, FlockArg::LockExclusiveNonblock)
            .map_err(|_| ImageError::Locked(root.display().to_string()))?;

        clear_dir(&tmp);
        let blobs = Blobs::new(blobs_dir, tmp.clone());
        let store = ImageStore {
            root: root.to_path_buf(),
            blobs,
            snapshots,
            tmp,
            state: Mutex::new(State::default()),
            gc: RwLock::new(()),
            snapshot_locks: Mutex::new(HashMap::new()),
            _lock: flock,
        };
        store.load()?;
        store.collect_orphans()?;
        Ok(store)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn load(&self) -> Result<()> {
        let path = self.root.join(DB_FILE);
        let mut db: Db = match fs::read(&path) {
            Ok(data) => serde_json::from_slice(&data)
                .map_err(|e| ImageError::Corrupt(format!("{}: {e}", path.display())))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Db {
                version: DB_VERSION,
                ..Default::default()
            },
            Err(e) => return Err(ImageError::io(format!("reading {}", path.display()), e)),
        };
        let mut configs = HashMap::new();
        let mut dropped = Vec::new();
        for id in db.images.keys() {
            match self.load_config(id) {
                Ok(cfg) => {
                    configs.insert(id.clone(), Arc::new(cfg));
                }
                Err(e) => {
                    warn!(image = %id, error = %e, "dropping image with unreadable config");
                    dropped.push(id.clone());
                }
            }
        }
        let changed = !dropped.is_empty();
        for id in &dropped {
            db.images.remove(id);
        }
        let before = db.references.len();
        db.references.retain(|_, id| db.images.contains_key(id));
        if changed || before != db.references.len() {
            self.persist(&db)?;
        }
        let mut st = lock(&self.state);
        st.db = db;
        st.configs = configs;
        Ok(())
    }

    fn load_config(&self, id: &str) -> Result<ImageConfiguration> {
        let bytes = self.blobs.read_verified(id)?;
        serde_json::from_slice(&bytes).map_err(|e| ImageError::Corrupt(format!("config {id}: {e}")))
    }

    fn persist(&self, db: &Db) -> Result<()> {
        let data = serde_json::to_vec_pretty(db)
            .map_err(|e| ImageError::Corrupt(format!("serialising {DB_FILE}: {e}")))?;
        write_atomic(&self.root.join(DB_FILE), &data)
    }

    /// Deletes blobs and snapshots no image references (left by interrupted operations).
    fn collect_orphans(&self) -> Result<()> {
        let _g = write_lock(&self.gc);
        let (digests, chains) = {
            let st = lock(&self.state);
            referenced(&st.db)
        };
        for d in self.blobs.list()? {
            if !digests.contains(&d) {
                info!(blob = %d, "removing unreferenced blob");
                self.blobs.remove(&d)?;
            }
        }
        if let Ok(rd) = fs::read_dir(&self.snapshots) {
            for ent in rd.flatten() {
                let name = ent.file_name().to_string_lossy().into_owned();
                if !chains.contains(&format!("sha256:{name}")) {
                    info!(snapshot = %name, "removing unreferenced snapshot");
                    self.remove_snapshot_dir(&ent.path());
                }
            }
        }
        Ok(())
    }

    fn remove_snapshot_dir(&self, dir: &Path) {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let trash = self.tmp.join(format!("del-{name}-{}", random_suffix()));
        // Rename first so a crash never leaves a half-deleted snapshot in place.
        let target = match fs::rename(dir, &trash) {
            Ok(()) => trash,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(_) => dir.to_path_buf(),
        };
        if let Err(e) = fs::remove_dir_all(&target) {
            warn!(path = %target.display(), error = %e, "cannot remove snapshot");
        }
    }

    // ----- adding content -------------------------------------------------------------

    /// Stores a layer decompressed (as `docker import` does). Returns the layer with an
    /// empty chain ID.
    fn ingest_uncompressed(&self, reader: impl Read) -> Result<ImageLayer> {
        let dec = layer_unpack::decompress(reader)?;
        let mut w = self.blobs.writer()?;
        let mut tee = Tee {
            inner: dec,
            out: &mut w,
            write_error: None,
        };
        let res = layer_unpack::inspect_tar(&mut tee);
        if let Some(e) = tee.write_error.take() {
            return Err(ImageError::io("writing layer blob", e));
        }
        let stats = res?;
        let (digest, blob_size) = w.commit(&self.blobs, Some(&stats.diff_id))?;
        Ok(ImageLayer {
            diff_id: stats.diff_id,
            chain_id: String::new(),
            blob_digest: digest,
            media_type: MEDIA_TYPE_LAYER_TAR.to_string(),
            blob_size,
            size: stats.content_size,
        })
    }

    /// Stores a layer blob verbatim, computing its diff_id.
    fn ingest_blob(&self, layer: LayerBlob<'_>) -> Result<ImageLayer> {
        let mut w = self.blobs.writer()?;
        let mut tee = Tee {
            inner: layer.reader,
            out: &mut w,
            write_error: None,
        };
        let res = layer_unpack::inspect(&mut tee).and_then(|stats| {
            // The decompressor may stop before the end of the blob: store all of it.
            io::copy(&mut tee, &mut io::sink()).map_err(layer_unpack::UnpackError::Archive)?;
            Ok(stats)
        });
        if let Some(e) = tee.write_error.take() {
            return Err(ImageError::io("writing layer blob", e));
        }
        let stats = res?;
        let (digest, blob_size) = w.commit(&self.blobs, layer.digest.as_deref())?;
        let media_type = layer.media_type.unwrap_or_else(|| {
            match stats.compression {
                layer_unpack::Compression::None => MEDIA_TYPE_LAYER_TAR,
                layer_unpack::Compression::Gzip => MEDIA_TYPE_LAYER_GZIP,
                layer_unpack::Compression::Zstd => MEDIA_TYPE_LAYER_ZSTD,
            }
            .to_string()
        });
        Ok(ImageLayer {
            diff_id: stats.diff_id,
            chain_id: String::new(),
            blob_digest: digest,
            media_type,
            blob_size,
            size: stats.content_size,
        })
    }

    /// `docker import`: `rootfs_tar` (plain, gzip or zstd) becomes the single layer of a new
    /// image, stored uncompressed. `config` gives the run-time defaults, `comment` the
    /// history comment (e.g. `Imported from -`), `tag` an optional reference to point at it.
    pub fn import(
        &self,
        rootfs_tar: impl Read,
        config: ImportConfig,
        comment: &str,
        tag: Option<&str>,
    ) -> Result<ImageId> {
        let tags: Vec<Reference> = tag.map(parse_tag_target).transpose()?.into_iter().collect();
        let _g = read_lock(&self.gc);
        let layer = self.ingest_uncompressed(rootfs_tar)?;
        let created = go_time_now();
        let mut cfg = ImageConfiguration::default();
        cfg.set_created(Some(created.clone()));
        cfg.set_architecture(host_arch());
        cfg.set_os(host_os());
        cfg.set_config(config.to_oci());
        let mut rootfs = RootFs::default();
        rootfs.set_diff_ids(vec![layer.diff_id.clone()]);
        cfg.set_rootfs(rootfs);
        let mut hb = HistoryBuilder::default().created(created);
        if !comment.is_empty() {
            hb = hb.comment(comment.to_string());
        }
        let history: History = hb
            .build()
            .map_err(|e| ImageError::InvalidImage(e.to_string()))?;
        cfg.set_history(Some(vec![history]));
        let bytes = serde_json::to_vec(&cfg)
            .map_err(|e| ImageError::InvalidImage(format!("serialising config: {e}")))?;
        let id = self.finish_image(vec![layer], bytes, cfg, None, tags, Vec::new())?;
        info!(image = %id, "imported image");
        Ok(id)
    }

    /// Adds an image made of `layers` (bottom to top; blobs compressed or not) and a config,
    /// for builds and pulls. Every layer is validated (as a hostile tar) and its diff_id
    /// computed; blobs are stored verbatim. See [`ConfigSource`] and [`AddImageOptions`].
    pub fn add_image_from_layers(
        &self,
        layers: Vec<LayerBlob<'_>>,
        config: ConfigSource,
        opts: AddImageOptions,
    ) -> Result<ImageId> {
        let tags = opts
            .tags
            .iter()
            .map(|t| parse_tag_target(t))
            .collect::<Result<Vec<_>>>()?;
        let repo_names = opts
            .repo_digest_names
            .iter()
            .map(|n| {
                let r = Reference::parse(n)?;
                Ok(Reference::parse(&r.name())?)
            })
            .collect::<Result<Vec<_>>>()?;
        let _g = read_lock(&self.gc);
        let mut stored = Vec::with_capacity(layers.len());
        for l in layers {
            stored.push(self.ingest_blob(l)?);
        }
        let diff_ids: Vec<String> = stored.iter().map(|l| l.diff_id.clone()).collect();
        let (bytes, cfg) = match config {
            ConfigSource::Raw(bytes) => {
                let cfg: ImageConfiguration = serde_json::from_slice(&bytes)
                    .map_err(|e| ImageError::InvalidImage(format!("image config: {e}")))?;
                if cfg.rootfs().diff_ids() != &diff_ids {
                    return Err(ImageError::InvalidImage(
                        "layer diff_ids do not match the image config".into(),
                    ));
                }
                (bytes, cfg)
            }
            ConfigSource::Build(cfg) => {
                let mut cfg = *cfg;
                let mut rootfs = RootFs::default();
                rootfs.set_diff_ids(diff_ids);
                cfg.set_rootfs(rootfs);
                if cfg.created().is_none() {
                    cfg.set_created(Some(go_time_now()));
                }
                let bytes = serde_json::to_vec(&cfg)
                    .map_err(|e| ImageError::InvalidImage(format!("serialising config: {e}")))?;
                (bytes, cfg)
            }
        };
        self.finish_image(stored, bytes, cfg, opts.manifest, tags, repo_names)
    }

    fn finish_image(
        &self,
        mut layers: Vec<ImageLayer>,
        config_bytes: Vec<u8>,
        config: ImageConfiguration,
        manifest: Option<Vec<u8>>,
        tags: Vec<Reference>,
        repo_names: Vec<Reference>,
    ) -> Result<ImageId> {
        let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
        for (l, c) in layers.iter_mut().zip(chain_ids(&diff_ids)) {
            l.chain_id = c;
        }
        let (config_digest, config_size) = self.blobs.put_bytes(&config_bytes, None)?;
        let id = ImageId(config_digest.clone());

        let manifest_bytes = match manifest {
            Some(m) => {
                let parsed: ImageManifest = serde_json::from_slice(&m)
                    .map_err(|e| ImageError::InvalidImage(format!("manifest: {e}")))?;
                if parsed.config().digest().to_string() != config_digest {
                    return Err(ImageError::InvalidImage(
                        "manifest does not reference the image config".into(),
                    ));
                }
                let mdigests: Vec<String> = parsed
                    .layers()
                    .iter()
                    .map(|d| d.digest().to_string())
                    .collect();
                let ldigests: Vec<String> = layers.iter().map(|l| l.blob_digest.clone()).collect();
                if mdigests != ldigests {
                    return Err(ImageError::InvalidImage(
                        "manifest layers do not match the layer blobs".into(),
                    ));
                }
                m
            }
            None => build_manifest(&config_digest, config_size, &layers)?,
        };
        let (manifest_digest, _) = self.blobs.put_bytes(&manifest_bytes, None)?;

        let mut refs = tags;
        for r in repo_names {
            refs.push(r.with_digest(&manifest_digest)?);
        }
        let record = ImageRecord {
            manifest_digest,
            layers,
            added: Utc::now(),
            parent: None,
            build_key: None,
        };
        let mut st = lock(&self.state);
        let mut db = st.db.clone();
        db.images.entry(id.0.clone()).or_insert(record);
        for r in &refs {
            db.references.insert(r.to_string(), id.0.clone());
        }
        self.persist(&db)?;
        st.db = db;
        st.configs.insert(id.0.clone(), Arc::new(config));
        Ok(id)
    }

    // ----- queries --------------------------------------------------------------------

    fn build_image(st: &State, id: &str) -> Result<Image> {
        let rec = st
            .db
            .images
            .get(id)
            .ok_or_else(|| ImageError::NotFound(id.to_string()))?;
        let config = st
            .configs
            .get(id)
            .map(|c| (**c).clone())
            .ok_or_else(|| ImageError::Corrupt(format!("config of {id} not loaded")))?;
        let mut repo_tags = Vec::new();
        let mut repo_digests = Vec::new();
        for (r, target) in &st.db.references {
            if target != id {
                continue;
            }
            let Ok(parsed) = Reference::parse(r) else {
                continue;
            };
            if parsed.digest().is_some() {
                repo_digests.push(parsed.familiar());
            } else {
                repo_tags.push(parsed.familiar());
            }
        }
        repo_tags.sort();
        repo_digests.sort();
        let created = config
            .created()
            .as_deref()
            .and_then(|c| DateTime::parse_from_rfc3339(c).ok())
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or(rec.added);
        Ok(Image {
            id: ImageId(id.to_string()),
            repo_tags,
            repo_digests,
            size: rec.layers.iter().map(|l| l.size).sum(),
            diff_ids: rec.layers.iter().map(|l| l.diff_id.clone()).collect(),
            layers: rec.layers.clone(),
            manifest_digest: rec.manifest_digest.clone(),
            parent: rec.parent.clone().map(ImageId),
            config,
            created,
        })
    }

    /// Finds the image a reference names, Docker's way: full ID (`sha256:<hex>` or
    /// `<hex>`), `name[:tag]` (`:latest` implied), `name@digest`, then a unique ID prefix
    /// (with or without `sha256:`). Unknown: `No such image: <ref>`.
    pub fn resolve(&self, reference: &str) -> Result<Image> {
        let st = lock(&self.state);
        let (id, _) = resolve_in(&st.db, reference)?;
        Self::build_image(&st, &id)
    }

    /// [`resolve`](Self::resolve) returning only the ID.
    pub fn resolve_id(&self, reference: &str) -> Result<ImageId> {
        let st = lock(&self.state);
        resolve_in(&st.db, reference).map(|(id, _)| ImageId(id))
    }

    /// The image with exactly this ID.
    pub fn get(&self, id: &ImageId) -> Result<Image> {
        let st = lock(&self.state);
        Self::build_image(&st, id.as_str()).map_err(|_| ImageError::NotFound(id.to_string()))
    }

    /// All images, newest first.
    pub fn list(&self) -> Vec<Image> {
        let st = lock(&self.state);
        let mut out: Vec<Image> = st
            .db
            .images
            .keys()
            .filter_map(|id| Self::build_image(&st, id).ok())
            .collect();
        out.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        out
    }

    /// The exact config JSON bytes of an image (its ID is their digest).
    pub fn config_bytes(&self, id: &ImageId) -> Result<Vec<u8>> {
        self.blobs.read_verified(id.as_str())
    }

    /// The stored manifest JSON bytes of an image.
    pub fn manifest_bytes(&self, id: &ImageId) -> Result<Vec<u8>> {
        let digest = {
            let st = lock(&self.state);
            st.db
                .images
                .get(id.as_str())
                .map(|r| r.manifest_digest.clone())
                .ok_or_else(|| ImageError::NotFound(id.to_string()))?
        };
        self.blobs.read_verified(&digest)
    }

    /// Path of a stored blob (e.g. a layer for `docker save`).
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        let p = self.blobs.path(digest)?;
        if p.is_file() {
            Ok(p)
        } else {
            Err(ImageError::NotFound(digest.to_string()))
        }
    }

    // ----- references -----------------------------------------------------------------

    /// Points `target` (`name[:tag]`, `:latest` implied) at the image `source` resolves to.
    /// An existing tag is moved. Returns the image ID.
    pub fn tag(&self, source: &str, target: &str) -> Result<ImageId> {
        let target = parse_tag_target(target)?;
        let mut st = lock(&self.state);
        let (id, _) = resolve_in(&st.db, source)?;
        let mut db = st.db.clone();
        db.references.insert(target.to_string(), id.clone());
        self.persist(&db)?;
        st.db = db;
        debug!(image = %id, tag = %target, "tagged");
        Ok(ImageId(id))
    }

    /// `docker rmi`. By name: untag it, deleting the image when no reference is left.
    /// By ID: delete the image, untagging its references; refused without `force` when it
    /// is referenced by several repositories/tags (`conflict: unable to delete <short>
    /// (must be forced) - image is referenced in multiple repositories`). Deleting removes
    /// the config, manifest and the layers (blobs + snapshots) no other image uses.
    /// Container checks are the caller's job.
    pub fn remove(&self, reference: &str, force: bool) -> Result<Vec<DeleteItem>> {
        let _g = write_lock(&self.gc);
        let mut st = lock(&self.state);
        let (id, via) = resolve_in(&st.db, reference)?;
        let mut db = st.db.clone();
        let mut out = Vec::new();
        let refs_of = |db: &Db| -> Vec<Reference> {
            db.references
                .iter()
                .filter(|(_, v)| **v == id)
                .filter_map(|(k, _)| Reference::parse(k).ok())
                .collect()
        };
        match via {
            Via::Reference(r) => {
                db.references.remove(&r.to_string());
                out.push(DeleteItem::Untagged(r.familiar()));
                let mut remaining = refs_of(&db);
                if r.digest().is_none() {
                    let tag_left = remaining
                        .iter()
                        .any(|x| x.digest().is_none() && x.name() == r.name());
                    if !tag_left {
                        // Only digest references of this repository are left: drop them too.
                        remaining.retain(|x| {
                            if x.digest().is_some() && x.name() == r.name() {
                                db.references.remove(&x.to_string());
                                out.push(DeleteItem::Untagged(x.familiar()));
                                false
                            } else {
                                true
                            }
                        });
                    }
                }
                if !remaining.is_empty() {
                    self.persist(&db)?;
                    st.db = db;
                    return Ok(out);
                }
            }
            Via::Id => {
                let refs = refs_of(&db);
                if !force && refs.len() > 1 && !is_single_reference(&refs) {
                    return Err(ImageError::conflict(
                        &ImageId(id.clone()),
                        ForceHint::MustBeForced,
                        "image is referenced in multiple repositories",
                    ));
                }
                for r in refs {
                    db.references.remove(&r.to_string());
                    out.push(DeleteItem::Untagged(r.familiar()));
                }
            }
        }

        // Delete the image itself, then the untagged build parents nothing else uses
        // (Docker's intermediate images).
        let rec = db
            .images
            .remove(&id)
            .ok_or_else(|| ImageError::NotFound(id.clone()))?;
        out.push(DeleteItem::Deleted(id.clone()));
        let mut removed = vec![(id.clone(), rec)];
        let mut next = removed[0].1.parent.clone();
        while let Some(p) = next.take() {
            let used = db.references.values().any(|v| *v == p)
                || db
                    .images
                    .values()
                    .any(|r| r.parent.as_deref() == Some(p.as_str()));
            if used {
                break;
            }
            let Some(prec) = db.images.remove(&p) else {
                break;
            };
            out.push(DeleteItem::Deleted(p.clone()));
            next = prec.parent.clone();
            removed.push((p, prec));
        }
        let (still_digests, still_chains) = referenced(&db);
        let mut gone_chains = Vec::new();
        for (_, rec) in &removed {
            for l in rec.layers.iter().rev() {
                if !still_chains.contains(&l.chain_id) && !gone_chains.contains(&l.chain_id) {
                    out.push(DeleteItem::Deleted(l.chain_id.clone()));
                    gone_chains.push(l.chain_id.clone());
                }
            }
        }
        self.persist(&db)?;
        st.db = db;
        for (rid, _) in &removed {
            st.configs.remove(rid);
        }
        drop(st);

        // Content removal after the commit: a crash leaves orphans (collected at open),
        // never dangling references.
        let mut blobs = Vec::new();
        for (rid, rec) in &removed {
            blobs.push(rid.clone());
            blobs.push(rec.manifest_digest.clone());
            blobs.extend(rec.layers.iter().map(|l| l.blob_digest.clone()));
        }
        blobs.sort();
        blobs.dedup();
        for b in blobs {
            if !still_digests.contains(&b) {
                if let Err(e) = self.blobs.remove(&b) {
                    warn!(blob = %b, error = %e, "cannot remove blob");
                }
            }
        }
        for c in gone_chains {
            let slock = self.snapshot_lock(&c);
            let _l = lock(&slock);
            self.remove_snapshot_dir(&self.snapshots.join(digest_hex(&c)));
        }
        info!(image = %id, "deleted image");
        Ok(out)
    }

    // ----- snapshots --------------------------------------------------------------------

    fn snapshot_lock(&self, chain_id: &str) -> Arc<Mutex<()>> {
        lock(&self.snapshot_locks)
            .entry(chain_id.to_string())
            .or_default()
            .clone()
    }

    /// The unpacked layer directories of an image, bottom to top (overlay `lowerdir` wants
    /// them top first: reverse). Layers are unpacked on first use, once (concurrent callers
    /// wait for the same unpack), into `tmp/` and renamed into place. An image without
    /// layers yields an empty list.
    pub fn layer_dirs(&self, id: &ImageId) -> Result<Vec<PathBuf>> {
        let _g = read_lock(&self.gc);
        let layers = {
            let st = lock(&self.state);
            st.db
                .images
                .get(id.as_str())
                .map(|r| r.layers.clone())
                .ok_or_else(|| ImageError::NotFound(id.to_string()))?
        };
        layers.iter().map(|l| self.ensure_snapshot(l)).collect()
    }

    fn ensure_snapshot(&self, layer: &ImageLayer) -> Result<PathBuf> {
        let hex = digest_hex(&layer.chain_id);
        if !is_hex64(hex) {
            return Err(ImageError::Corrupt(format!(
                "bad chain id {}",
                layer.chain_id
            )));
        }
        let final_dir = self.snapshots.join(hex);
        let fs_dir = final_dir.join("fs");
        if fs_dir.is_dir() {
            return Ok(fs_dir);
        }
        let slock = self.snapshot_lock(&layer.chain_id);
        let _l = lock(&slock);
        if fs_dir.is_dir() {
            return Ok(fs_dir);
        }
        let work = self.tmp.join(format!("snap-{hex}-{}", random_suffix()));
        let work_fs = work.join("fs");
        fs::create_dir_all(&work_fs)
            .map_err(|e| ImageError::io(format!("creating {}", work_fs.display()), e))?;
        let mut guard = RemoveOnDrop(Some(work.clone()));
        let blob = self.blobs.open(&layer.blob_digest)?;
        let stats = layer_unpack::unpack(BufReader::with_capacity(256 * 1024, blob), &work_fs)?;
        if stats.diff_id != layer.diff_id {
            return Err(ImageError::DigestMismatch {
                expected: layer.diff_id.clone(),
                actual: stats.diff_id,
            });
        }
        if let Ok(d) = File::open(&work_fs) {
            if let Err(e) = nix::unistd::syncfs(d.as_raw_fd()) {
                warn!(error = %e, "syncfs failed");
            }
        }
        match fs::rename(&work, &final_dir) {
            Ok(()) => {
                guard.0 = None;
                sync_dir(&self.snapshots)?;
                debug!(chain_id = %layer.chain_id, "snapshot created");
                Ok(fs_dir)
            }
            Err(_) if fs_dir.is_dir() => Ok(fs_dir), // made by someone else meanwhile
            Err(e) => Err(ImageError::io(
                format!("renaming snapshot into {}", final_dir.display()),
                e,
            )),
        }
    }
}

/// Digests (blobs) and chain IDs still referenced by the images of `db`.
fn referenced(db: &Db) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut digests = BTreeSet::new();
    let mut chains = BTreeSet::new();
    for (id, rec) in &db.images {
        digests.insert(id.clone());
        digests.insert(rec.manifest_digest.clone());
        for l in &rec.layers {
            digests.insert(l.blob_digest.clone());
            chains.insert(l.chain_id.clone());
        }
    }
    (digests, chains)
}

/// A tag target: a valid name, `:latest` implied, no digest.
fn parse_tag_target(s: &str) -> Result<Reference> {
    let r = Reference::parse(s)?;
    if r.digest().is_some() {
        return Err(ReferenceError::TagWithDigest.into());
    }
    Ok(r.with_default_tag())
}

/// True when the references are one tag (plus digests of the same repository) or digests
/// of a single repository.
fn is_single_reference(refs: &[Reference]) -> bool {
    if refs.len() <= 1 {
        return refs.len() == 1;
    }
    let tags: Vec<&Reference> = refs.iter().filter(|r| r.digest().is_none()).collect();
    if tags.len() > 1 {
        return false;
    }
    let name = tags
        .first()
        .map(|t| t.name())
        .unwrap_or_else(|| refs[0].name());
    refs.iter().all(|r| r.name() == name)
}

fn not_found_name(r: &Reference) -> String {
    r.clone().with_default_tag().familiar()
}

/// Resolves a reference to an image ID (see [`ImageStore::resolve`]).
fn resolve_in(db: &Db, reference: &str) -> Result<(String, Via)> {
    let full_hex = reference.strip_prefix("sha256:").unwrap_or(reference);
    if is_hex64(full_hex) {
        let id = format!("sha256:{full_hex}");
        return if db.images.contains_key(&id) {
            Ok((id, Via::Id))
        } else {
            Err(ImageError::NotFound(id))
        };
    }
    let r = Reference::parse(reference)?;
    if let Some(d) = r.digest() {
        if let Some(id) = db.references.get(&r.to_string()) {
            return Ok((id.clone(), Via::Reference(r)));
        }
        if db.images.contains_key(d) {
            return Ok((d.to_string(), Via::Id));
        }
        return Err(ImageError::NotFound(r.familiar()));
    }
    let tagged = r.with_default_tag();
    if let Some(id) = db.references.get(&tagged.to_string()) {
        return Ok((id.clone(), Via::Reference(tagged)));
    }
    let prefix = reference.strip_prefix("sha256:").unwrap_or(reference);
    if !prefix.is_empty()
        && prefix
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        let mut matches = db
            .images
            .keys()
            .filter(|k| digest_hex(k).starts_with(prefix));
        if let (Some(id), None) = (matches.next(), matches.next()) {
            return Ok((id.clone(), Via::Id));
        }
    }
    Err(ImageError::NotFound(not_found_name(&tagged)))
}

fn build_manifest(config_digest: &str, config_size: u64, layers: &[ImageLayer]) -> Result<Vec<u8>> {
    let bad = |e: &dyn fmt::Display| ImageError::InvalidImage(format!("building manifest: {e}"));
    let desc = |mt: MediaType, digest: &str, size: u64| -> Result<Descriptor> {
        let d: oci_spec::image::Digest = digest.parse().map_err(|e| bad(&e))?;
        DescriptorBuilder::default()
            .media_type(mt)
            .digest(d)
            .size(size)
            .build()
            .map_err(|e| bad(&e))
    };
    let config = desc(MediaType::ImageConfig, config_digest, config_size)?;
    let layer_descs = layers
        .iter()
        .map(|l| {
            desc(
                MediaType::from(l.media_type.as_str()),
                &l.blob_digest,
                l.blob_size,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let m = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(layer_descs)
        .build()
        .map_err(|e| bad(&e))?;
    serde_json::to_vec(&m).map_err(|e| bad(&e))
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<ImageStore>();
}

mod archive;
mod build;
mod distribution;
