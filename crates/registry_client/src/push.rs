//! Pushing an image from the store.

use std::future::Future;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use image_store::{ImageError, ImageId, ImageLayer, ImageStore, Reference};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, Response, StatusCode};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;
use tracing::{debug, info, warn};
use url::Url;

use crate::client::{Failure, RegistryClient, Session};
use crate::credentials::Credentials;
use crate::error::RegistryError;
use crate::manifest::{parse_manifest, Manifest, MEDIA_TYPE_OCI_CONFIG, MEDIA_TYPE_OCI_MANIFEST};
use crate::progress::{short_id, ProgressEvent};
use crate::pull::Progress;

/// How many other repositories of the registry are tried as mount sources.
const MAX_MOUNT_SOURCES: usize = 3;
/// How often `Pushing` progress is reported during an upload.
const PUSH_TICK: Duration = Duration::from_millis(250);

/// The result of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushOutcome {
    /// The reference pushed (`name:tag`).
    pub reference: Reference,
    /// Tag pushed.
    pub tag: String,
    /// Digest of the manifest pushed.
    pub digest: String,
    /// Size of the manifest in bytes.
    pub size: u64,
    /// Media type of the manifest pushed.
    pub media_type: String,
}

/// A blob to push.
struct BlobToPush {
    digest: String,
    size: u64,
    path: PathBuf,
    /// Layer id for progress events; `None` for the config (Docker shows none).
    id: Option<String>,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ImageError> + Send + 'static,
) -> Result<T, RegistryError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RegistryError::Protocol(format!("store task failed: {e}")))?
        .map_err(RegistryError::from)
}

/// The manifest to push: the stored bytes verbatim when they describe exactly the stored
/// config and layer blobs, else a generated OCI manifest. Returns `(bytes, media type)`.
fn manifest_for_push(
    id: &ImageId,
    image_layers: &[ImageLayer],
    stored: Vec<u8>,
    config_size: u64,
) -> Result<(Vec<u8>, String), RegistryError> {
    if let Ok(Manifest::Image(m)) = parse_manifest(&stored, None) {
        let same_config = m.config.digest == id.as_str() && m.config.size == config_size;
        let same_layers = m.layers.len() == image_layers.len()
            && m.layers
                .iter()
                .zip(image_layers)
                .all(|(d, l)| d.digest == l.blob_digest && d.size == l.blob_size);
        if same_config && same_layers {
            return Ok((stored, m.media_type));
        }
        warn!(image = %id, "stored manifest does not match the stored blobs; generating one");
    }
    let layers: Vec<serde_json::Value> = image_layers
        .iter()
        .map(|l| {
            serde_json::json!({
                "mediaType": l.media_type,
                "digest": l.blob_digest,
                "size": l.blob_size,
            })
        })
        .collect();
    let m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "config": {
            "mediaType": MEDIA_TYPE_OCI_CONFIG,
            "digest": id.as_str(),
            "size": config_size,
        },
        "layers": layers,
    });
    let bytes = serde_json::to_vec(&m)
        .map_err(|e| RegistryError::Protocol(format!("building manifest: {e}")))?;
    Ok((bytes, MEDIA_TYPE_OCI_MANIFEST.to_string()))
}

/// A request body streaming `len` bytes of `path` from `offset`, counting what is sent.
fn file_body(
    path: &Path,
    offset: u64,
    len: u64,
    sent: Arc<AtomicU64>,
) -> Result<reqwest::Body, RegistryError> {
    let mut f = std::fs::File::open(path)
        .map_err(|e| RegistryError::io(format!("opening {}", path.display()), e))?;
    f.seek(SeekFrom::Start(offset))
        .map_err(|e| RegistryError::io(format!("seeking {}", path.display()), e))?;
    sent.store(0, Ordering::Relaxed);
    let reader = tokio::fs::File::from_std(f).take(len);
    let stream = ReaderStream::with_capacity(reader, 256 << 10).inspect(move |r| {
        if let Ok(b) = r {
            sent.fetch_add(b.len() as u64, Ordering::Relaxed);
        }
    });
    Ok(reqwest::Body::wrap_stream(stream))
}

/// Runs `fut`, reporting `Pushing` progress (`base` + bytes sent) while it runs.
async fn with_progress<T>(
    fut: impl Future<Output = T>,
    sent: &AtomicU64,
    base: u64,
    total: u64,
    id: Option<&str>,
    progress: Progress<'_>,
) -> T {
    let Some(id) = id else {
        return fut.await;
    };
    tokio::pin!(fut);
    let mut tick = tokio::time::interval(PUSH_TICK);
    tick.tick().await;
    loop {
        tokio::select! {
            r = &mut fut => return r,
            _ = tick.tick() => progress(ProgressEvent::Pushing {
                id: id.to_string(),
                current: (base + sent.load(Ordering::Relaxed)).min(total),
                total,
            }),
        }
    }
}

fn location_of(sess: &Session, resp: &Response) -> Result<Url, RegistryError> {
    let loc = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| RegistryError::Protocol("upload answer without Location".into()))?;
    sess.location(loc)
}

/// Pushes one blob unless the registry has it; tries cross-repository mounts first.
async fn push_blob(
    sess: &Session,
    repo_path: &str,
    blob: &BlobToPush,
    mount_from: &[String],
    chunk_size: u64,
    progress: Progress<'_>,
) -> Result<(), RegistryError> {
    let head_url = sess.url(&format!("v2/{repo_path}/blobs/{}", blob.digest))?;
    let resp = sess
        .send(Method::HEAD, &head_url, |h| Ok(h.head(head_url.clone())))
        .await?;
    match resp.status() {
        s if s.is_success() => {
            debug!(blob = %blob.digest, "blob exists");
            if let Some(id) = &blob.id {
                progress(ProgressEvent::LayerAlreadyExists { id: id.clone() });
            }
            return Ok(());
        }
        StatusCode::NOT_FOUND => {}
        _ => return Err(sess.generic_error(&Failure::read(resp).await)),
    }

    let mut location = None;
    for from in mount_from {
        let mut url = sess.url(&format!("v2/{repo_path}/blobs/uploads/"))?;
        url.query_pairs_mut()
            .append_pair("mount", &blob.digest)
            .append_pair("from", from);
        let resp = sess
            .send(Method::POST, &url, |h| {
                Ok(h.post(url.clone()).header(CONTENT_LENGTH, 0))
            })
            .await?;
        match resp.status() {
            StatusCode::CREATED => {
                debug!(blob = %blob.digest, %from, "blob mounted");
                if let Some(id) = &blob.id {
                    progress(ProgressEvent::Mounted {
                        id: id.clone(),
                        from: from.clone(),
                    });
                }
                return Ok(());
            }
            StatusCode::ACCEPTED => {
                location = Some(location_of(sess, &resp)?);
                break;
            }
            s => debug!(blob = %blob.digest, %from, status = %s, "mount refused"),
        }
    }
    let mut location = match location {
        Some(l) => l,
        None => {
            let url = sess.url(&format!("v2/{repo_path}/blobs/uploads/"))?;
            let resp = sess
                .send(Method::POST, &url, |h| {
                    Ok(h.post(url.clone()).header(CONTENT_LENGTH, 0))
                })
                .await?;
            if resp.status() != StatusCode::ACCEPTED {
                return Err(sess.generic_error(&Failure::read(resp).await));
            }
            location_of(sess, &resp)?
        }
    };

    let sent = Arc::new(AtomicU64::new(0));
    let id = blob.id.as_deref();
    let chunked = chunk_size > 0 && blob.size > chunk_size;
    let mut offset = 0u64;
    if chunked {
        while offset < blob.size {
            let len = chunk_size.min(blob.size - offset);
            let url = location.clone();
            let req = sess.send(Method::PATCH, &url, |h| {
                Ok(h.patch(url.clone())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, len)
                    .header("Content-Range", format!("{offset}-{}", offset + len - 1))
                    .body(file_body(&blob.path, offset, len, sent.clone())?))
            });
            let resp = with_progress(req, &sent, offset, blob.size, id, progress).await?;
            if resp.status() != StatusCode::ACCEPTED {
                return Err(sess.generic_error(&Failure::read(resp).await));
            }
            location = location_of(sess, &resp)?;
            offset += len;
            if let Some(id) = id {
                progress(ProgressEvent::Pushing {
                    id: id.to_string(),
                    current: offset,
                    total: blob.size,
                });
            }
        }
    }
    let mut url = location;
    url.query_pairs_mut().append_pair("digest", &blob.digest);
    let req = sess.send(Method::PUT, &url, |h| {
        let rb = h
            .put(url.clone())
            .header(CONTENT_TYPE, "application/octet-stream");
        Ok(if chunked {
            rb.header(CONTENT_LENGTH, 0)
        } else {
            rb.header(CONTENT_LENGTH, blob.size).body(file_body(
                &blob.path,
                0,
                blob.size,
                sent.clone(),
            )?)
        })
    });
    let resp = with_progress(req, &sent, offset, blob.size, id, progress).await?;
    if !resp.status().is_success() {
        return Err(sess.generic_error(&Failure::read(resp).await));
    }
    if let Some(id) = id {
        if !chunked {
            progress(ProgressEvent::Pushing {
                id: id.to_string(),
                current: blob.size,
                total: blob.size,
            });
        }
        progress(ProgressEvent::Pushed { id: id.to_string() });
    }
    Ok(())
}

impl RegistryClient {
    /// Pushes the image `reference` (`name[:tag]`, `latest` by default) names in `store`
    /// to its registry: layer and config blobs the registry lacks (checked with `HEAD`;
    /// mounted from another repository of the same registry the image came from when
    /// possible; uploaded whole, or in `PATCH` chunks when larger than
    /// `upload_chunk_size`), then the manifest — the stored bytes verbatim when they
    /// describe the stored blobs. Records the RepoDigest `<repo>@<digest>` locally.
    pub async fn push(
        &self,
        store: &Arc<ImageStore>,
        reference: &Reference,
        auth: Option<Credentials>,
        progress: Progress<'_>,
    ) -> Result<PushOutcome, RegistryError> {
        if reference.digest().is_some() {
            return Err(RegistryError::InvalidReference(format!(
                "cannot push a digest reference: {}",
                reference.familiar()
            )));
        }
        let reference = reference.clone().with_default_tag();
        let tag = reference
            .tag()
            .unwrap_or(image_store::DEFAULT_TAG)
            .to_string();
        let repo_path = reference.path().to_string();

        let st = store.clone();
        let ref_str = reference.to_string();
        let image = match blocking(move || st.resolve(&ref_str)).await {
            Ok(i) => i,
            Err(RegistryError::Store(ImageError::NotFound(_))) => {
                return Err(RegistryError::NoSuchLocalImage(reference.familiar()))
            }
            Err(e) => return Err(e),
        };
        let st = store.clone();
        let id = image.id.clone();
        let (stored_manifest, config) =
            blocking(move || Ok((st.manifest_bytes(&id)?, st.config_bytes(&id)?))).await?;
        let (manifest, media_type) = manifest_for_push(
            &image.id,
            &image.layers,
            stored_manifest,
            config.len() as u64,
        )?;

        progress(ProgressEvent::PushingTo {
            repository: reference.name(),
        });

        // Other repositories of this registry the image is known under: mount sources.
        let mut mount_from: Vec<String> = Vec::new();
        for r in image.repo_digests.iter().chain(&image.repo_tags) {
            let Ok(r) = Reference::parse(r) else { continue };
            if r.domain() == reference.domain()
                && r.path() != repo_path
                && !mount_from.iter().any(|m| m == r.path())
                && mount_from.len() < MAX_MOUNT_SOURCES
            {
                mount_from.push(r.path().to_string());
            }
        }
        let mut scopes = vec![format!("repository:{repo_path}:pull,push")];
        scopes.extend(mount_from.iter().map(|m| format!("repository:{m}:pull")));
        let creds = self.credentials_for(reference.domain(), auth).await?;
        let sess = self.session(reference.domain(), scopes, creds).await?;

        let mut blobs: Vec<BlobToPush> = Vec::new();
        for l in image.layers.iter().rev() {
            if blobs.iter().any(|b| b.digest == l.blob_digest) {
                continue;
            }
            blobs.push(BlobToPush {
                digest: l.blob_digest.clone(),
                size: l.blob_size,
                path: store.blob_path(&l.blob_digest)?,
                id: Some(short_id(&l.blob_digest)),
            });
        }
        for b in &blobs {
            if let Some(id) = &b.id {
                progress(ProgressEvent::Preparing { id: id.clone() });
            }
        }
        let concurrency = self.config().max_concurrent_uploads.max(1);
        for b in blobs.iter().skip(concurrency) {
            if let Some(id) = &b.id {
                progress(ProgressEvent::Waiting { id: id.clone() });
            }
        }
        let chunk = self.config().upload_chunk_size;
        // Futures collected first: a lazy `map` closure makes the push future not `Send`.
        let uploads: Vec<_> = blobs
            .iter()
            .map(|b| {
                let (sess, repo_path, mount_from) = (&sess, repo_path.as_str(), &mount_from);
                async move { push_blob(sess, repo_path, b, mount_from, chunk, progress).await }
            })
            .collect();
        stream::iter(uploads)
            .buffer_unordered(concurrency)
            .try_collect::<Vec<()>>()
            .await?;
        let config_blob = BlobToPush {
            digest: image.id.as_str().to_string(),
            size: config.len() as u64,
            path: store.blob_path(image.id.as_str())?,
            id: None,
        };
        push_blob(&sess, &repo_path, &config_blob, &[], chunk, progress).await?;

        let url = sess.url(&format!("v2/{repo_path}/manifests/{tag}"))?;
        let resp = sess
            .send(Method::PUT, &url, |h| {
                Ok(h.put(url.clone())
                    .header(CONTENT_TYPE, media_type.as_str())
                    .body(manifest.clone()))
            })
            .await?;
        if !resp.status().is_success() {
            return Err(sess.generic_error(&Failure::read(resp).await));
        }
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&manifest)));
        if let Some(remote) = resp
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok())
        {
            if remote != digest {
                warn!(%remote, local = %digest, "registry reports another manifest digest");
            }
        }
        let size = manifest.len() as u64;
        progress(ProgressEvent::PushDigest {
            tag: tag.clone(),
            digest: digest.clone(),
            size,
        });
        let st = store.clone();
        let (id, digest_ref) = (image.id.clone(), format!("{}@{digest}", reference.name()));
        if let Err(e) = blocking(move || st.add_digest_reference(&id, &digest_ref)).await {
            warn!(error = %e, "cannot record the pushed digest");
        }
        info!(reference = %reference, %digest, "pushed");
        Ok(PushOutcome {
            reference,
            tag,
            digest,
            size,
            media_type,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers(layers: Vec<(&str, u64)>) -> Vec<ImageLayer> {
        layers
            .into_iter()
            .map(|(d, s)| ImageLayer {
                diff_id: d.to_string(),
                chain_id: d.to_string(),
                blob_digest: d.to_string(),
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
                blob_size: s,
                size: s,
            })
            .collect()
    }

    #[test]
    fn stored_manifest_used_verbatim_only_when_it_matches() {
        let l1 = format!("sha256:{}", "1".repeat(64));
        let id = ImageId::parse(&format!("sha256:{}", "c".repeat(64))).unwrap();
        let ls = layers(vec![(&l1, 10)]);
        let docker = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
             "config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{}","size":5}},
             "layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{l1}","size":10}}]}}"#,
            id
        );
        let (b, mt) = manifest_for_push(&id, &ls, docker.clone().into_bytes(), 5).unwrap();
        assert_eq!(b, docker.as_bytes());
        assert_eq!(mt, "application/vnd.docker.distribution.manifest.v2+json");
        // Config size differs: regenerated as OCI.
        let (b, mt) = manifest_for_push(&id, &ls, docker.into_bytes(), 6).unwrap();
        assert_eq!(mt, MEDIA_TYPE_OCI_MANIFEST);
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["config"]["size"], 6);
        assert_eq!(v["layers"][0]["digest"], l1.as_str());
        assert_eq!(v["layers"][0]["size"], 10);
        // Garbage stored manifest: regenerated.
        let (_, mt) = manifest_for_push(&id, &ls, b"garbage".to_vec(), 6).unwrap();
        assert_eq!(mt, MEDIA_TYPE_OCI_MANIFEST);
    }
}
