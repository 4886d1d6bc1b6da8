//! Pulling an image into the store.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use image_store::{ImageError, ImageId, ImageLayer, ImageStore, Reference};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;
use tracing::{debug, info, warn};

use crate::client::{read_limited, Failure, RegistryClient, Session};
use crate::credentials::Credentials;
use crate::error::RegistryError;
use crate::manifest::{
    check_pullable, parse_manifest, select_platform, Descriptor, ImageManifest, Manifest,
    PlatformSpec, MANIFEST_ACCEPT, MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE,
};
use crate::progress::{short_id, ProgressEvent};

/// How often a layer download is attempted when the connection breaks.
const DOWNLOAD_ATTEMPTS: u32 = 3;
/// Minimum bytes between two `Downloading` events.
const PROGRESS_STEP: u64 = 512 << 10;

/// The result of a pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullOutcome {
    /// The image ID (config digest).
    pub id: ImageId,
    /// What the reference resolved to (an index's digest for multi-platform images):
    /// recorded as the RepoDigest `<repo>@<digest>`.
    pub digest: String,
    /// Digest of the image manifest stored (differs from `digest` for an index).
    pub manifest_digest: String,
    /// The reference pulled (tag defaulted to `latest`, or `name@digest`).
    pub reference: Reference,
    /// Layer blobs downloaded (0 when every layer was already stored).
    pub downloaded_layers: usize,
    /// The reference already pointed at this image and nothing was downloaded.
    pub up_to_date: bool,
}

/// Progress callback type.
pub type Progress<'a> = &'a (dyn Fn(ProgressEvent) + Send + Sync);

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ImageError> + Send + 'static,
) -> Result<T, RegistryError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RegistryError::Protocol(format!("store task failed: {e}")))?
        .map_err(RegistryError::from)
}

fn sha256_hex(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Fetches a manifest by tag or digest; verifies it against a digest reference.
/// Returns `(bytes, digest, parsed)`.
async fn fetch_manifest(
    sess: &Session,
    reference: &Reference,
    repo_path: &str,
    tag_or_digest: &str,
) -> Result<(Vec<u8>, String, Manifest), RegistryError> {
    let url = sess.url(&format!("v2/{repo_path}/manifests/{tag_or_digest}"))?;
    let resp = sess
        .send(Method::GET, &url, |http| {
            Ok(http.get(url.clone()).header(ACCEPT, MANIFEST_ACCEPT))
        })
        .await?;
    if !resp.status().is_success() {
        let f = Failure::read(resp).await;
        return Err(pull_error(sess, reference, &f));
    }
    let ct = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = read_limited(resp, MAX_MANIFEST_SIZE, &Method::GET, &url).await?;
    let digest = sha256_hex(&body);
    if tag_or_digest.starts_with("sha256:") && digest != tag_or_digest {
        return Err(RegistryError::DigestMismatch {
            expected: tag_or_digest.to_string(),
            actual: digest,
        });
    }
    let m = parse_manifest(&body, ct.as_deref())?;
    Ok((body, digest, m))
}

/// Maps a failed manifest request to Docker's pull errors.
fn pull_error(sess: &Session, reference: &Reference, f: &Failure) -> RegistryError {
    let repository = reference.familiar_name();
    if f.status == StatusCode::NOT_FOUND && f.has_code("NAME_UNKNOWN") {
        return RegistryError::PullAccessDenied {
            repository,
            message: f.message("repository name not known to registry"),
        };
    }
    if f.status == StatusCode::NOT_FOUND {
        return RegistryError::ManifestUnknown {
            reference: reference.familiar(),
            message: f
                .entries
                .iter()
                .find(|e| e.code == "MANIFEST_UNKNOWN")
                .map(|e| e.message.clone())
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| "manifest unknown".into()),
        };
    }
    if sess.anonymous()
        && matches!(f.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
        && !f.has_code("TOOMANYREQUESTS")
    {
        // Docker's wording: with no credentials a refusal may mean "no such repository".
        if let err @ RegistryError::NoBasicAuthCredentials = sess.generic_error(f) {
            return err;
        }
        return RegistryError::PullAccessDenied {
            repository,
            message: f.message("denied: requested access to the resource is denied"),
        };
    }
    sess.generic_error(f)
}

/// GETs a small blob (a config) into memory, verifying size and digest.
async fn fetch_small_blob(
    sess: &Session,
    repo_path: &str,
    desc: &Descriptor,
    limit: u64,
) -> Result<Vec<u8>, RegistryError> {
    if desc.size > limit {
        return Err(RegistryError::Protocol(format!(
            "blob {} is too large ({} bytes)",
            desc.digest, desc.size
        )));
    }
    let url = sess.url(&format!("v2/{repo_path}/blobs/{}", desc.digest))?;
    let resp = sess
        .send(Method::GET, &url, |http| Ok(http.get(url.clone())))
        .await?;
    if !resp.status().is_success() {
        let f = Failure::read(resp).await;
        return Err(sess.generic_error(&f));
    }
    let body = read_limited(resp, desc.size + 1, &Method::GET, &url)
        .await
        .map_err(|e| match e {
            RegistryError::Protocol(_) => RegistryError::SizeMismatch {
                digest: desc.digest.clone(),
                expected: desc.size,
                actual: desc.size + 1,
            },
            e => e,
        })?;
    if body.len() as u64 != desc.size {
        return Err(RegistryError::SizeMismatch {
            digest: desc.digest.clone(),
            expected: desc.size,
            actual: body.len() as u64,
        });
    }
    let actual = sha256_hex(&body);
    if actual != desc.digest {
        return Err(RegistryError::DigestMismatch {
            expected: desc.digest.clone(),
            actual,
        });
    }
    Ok(body)
}

/// Why a download attempt failed.
enum Attempt {
    /// Worth retrying (connection broke).
    Transient(RegistryError),
    /// Final.
    Fatal(RegistryError),
}

/// Downloads one layer blob into the store's download directory, verifying size and
/// digest while streaming, then has the store validate and commit it.
async fn download_layer(
    sess: &Session,
    store: &Arc<ImageStore>,
    repo_path: &str,
    desc: &Descriptor,
    progress: Progress<'_>,
) -> Result<ImageLayer, RegistryError> {
    let id = short_id(&desc.digest);
    let mut attempt = 0;
    let tmp = loop {
        attempt += 1;
        match download_attempt(sess, store, repo_path, desc, &id, progress).await {
            Ok(tmp) => break tmp,
            Err(Attempt::Transient(e)) if attempt < DOWNLOAD_ATTEMPTS => {
                warn!(blob = %desc.digest, error = %e, attempt, "download failed, retrying");
                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
            }
            Err(Attempt::Transient(e)) | Err(Attempt::Fatal(e)) => return Err(e),
        }
    };
    progress(ProgressEvent::DownloadComplete { id: id.clone() });
    progress(ProgressEvent::Extracting { id: id.clone() });
    let st = store.clone();
    let path = tmp.to_path_buf();
    let (digest, mt) = (desc.digest.clone(), desc.media_type.clone());
    let layer = blocking(move || st.commit_downloaded_layer(&path, &digest, &mt)).await?;
    drop(tmp);
    progress(ProgressEvent::PullComplete { id });
    Ok(layer)
}

async fn download_attempt(
    sess: &Session,
    store: &Arc<ImageStore>,
    repo_path: &str,
    desc: &Descriptor,
    id: &str,
    progress: Progress<'_>,
) -> Result<tempfile::TempPath, Attempt> {
    let fatal = Attempt::Fatal;
    let url = sess
        .url(&format!("v2/{repo_path}/blobs/{}", desc.digest))
        .map_err(fatal)?;
    let (file, path) = tempfile::Builder::new()
        .prefix("pull-")
        .tempfile_in(store.download_dir())
        .map_err(|e| {
            fatal(RegistryError::io(
                format!("creating a file in {}", store.download_dir().display()),
                e,
            ))
        })?
        .into_parts();
    let mut file = tokio::fs::File::from_std(file);
    let mut resp = sess
        .send(Method::GET, &url, |http| Ok(http.get(url.clone())))
        .await
        .map_err(|e| match e {
            e @ RegistryError::Transport { .. } => Attempt::Transient(e),
            e => Attempt::Fatal(e),
        })?;
    if !resp.status().is_success() {
        let f = Failure::read(resp).await;
        return Err(fatal(sess.generic_error(&f)));
    }
    let mut hasher = Sha256::new();
    let mut got: u64 = 0;
    let mut reported: u64 = 0;
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => {
                return Err(Attempt::Transient(crate::client::transport_error(
                    &Method::GET,
                    &url,
                    &e,
                )))
            }
        };
        got += chunk.len() as u64;
        if got > desc.size {
            return Err(fatal(RegistryError::SizeMismatch {
                digest: desc.digest.clone(),
                expected: desc.size,
                actual: got,
            }));
        }
        hasher.update(&chunk);
        file.write_all(&chunk)
            .await
            .map_err(|e| fatal(RegistryError::io(format!("writing {}", path.display()), e)))?;
        if got - reported >= PROGRESS_STEP || got == desc.size {
            reported = got;
            progress(ProgressEvent::Downloading {
                id: id.to_string(),
                current: got,
                total: desc.size,
            });
        }
    }
    file.flush()
        .await
        .map_err(|e| fatal(RegistryError::io(format!("writing {}", path.display()), e)))?;
    drop(file);
    if got != desc.size {
        return Err(fatal(RegistryError::SizeMismatch {
            digest: desc.digest.clone(),
            expected: desc.size,
            actual: got,
        }));
    }
    progress(ProgressEvent::Verifying { id: id.to_string() });
    let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
    if actual != desc.digest {
        return Err(fatal(RegistryError::DigestMismatch {
            expected: desc.digest.clone(),
            actual,
        }));
    }
    Ok(path)
}

/// Checks an image config's platform against an explicitly requested one.
fn check_config_platform(
    config: &[u8],
    want: &PlatformSpec,
    reference: &Reference,
) -> Result<(), RegistryError> {
    let v: serde_json::Value = serde_json::from_slice(config)
        .map_err(|e| RegistryError::Protocol(format!("invalid image config: {e}")))?;
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    let (os, arch, variant) = (s("os"), s("architecture"), s("variant"));
    let variant = (!variant.is_empty()).then_some(variant);
    if want.matches(&os, &arch, variant.as_deref()) {
        return Ok(());
    }
    let mut actual = format!("{os}/{arch}");
    if let Some(v) = &variant {
        actual.push('/');
        actual.push_str(v);
    }
    Err(RegistryError::PlatformMismatch {
        reference: reference.familiar(),
        wanted: want.to_string(),
        actual,
    })
}

impl RegistryClient {
    /// Pulls `reference` (by tag, `latest` by default, or by digest) into `store`.
    ///
    /// Manifests: Docker schema 2 and OCI, and indexes / manifest lists (the entry for
    /// `platform` — `os/arch[/variant]` — or the host's). Layers (gzip, zstd or plain)
    /// already stored are not fetched; the others are downloaded at most
    /// `max_concurrent_downloads` at a time into the store's download directory, their
    /// size and digest checked while streaming, then validated and committed by the
    /// store. The image is recorded (tag and RepoDigest `<repo>@<digest>`) only once
    /// everything is stored; an interrupted pull leaves no reference behind.
    pub async fn pull(
        &self,
        store: &Arc<ImageStore>,
        reference: &Reference,
        platform: Option<&str>,
        auth: Option<Credentials>,
        progress: Progress<'_>,
    ) -> Result<PullOutcome, RegistryError> {
        let reference = reference.clone().with_default_tag();
        let want = platform.map(PlatformSpec::parse).transpose()?;
        let repo_path = reference.path().to_string();
        let tag_or_digest = reference
            .digest()
            .or(reference.tag())
            .unwrap_or(image_store::DEFAULT_TAG)
            .to_string();
        progress(ProgressEvent::PullingFrom {
            tag: tag_or_digest.clone(),
            repository: repo_path.clone(),
        });
        let creds = self.credentials_for(reference.domain(), auth).await?;
        let sess = self
            .session(
                reference.domain(),
                vec![format!("repository:{repo_path}:pull")],
                creds,
            )
            .await?;

        let (top_bytes, top_digest, top) =
            fetch_manifest(&sess, &reference, &repo_path, &tag_or_digest).await?;
        let (manifest_bytes, manifest_digest, manifest): (Vec<u8>, String, ImageManifest) =
            match top {
                Manifest::Image(m) => (top_bytes, top_digest.clone(), m),
                Manifest::Index(entries) => {
                    let spec = want.clone().unwrap_or_else(PlatformSpec::host);
                    let entry = select_platform(&entries, &spec).ok_or_else(|| {
                        RegistryError::NoMatchingPlatform {
                            platform: spec.to_string(),
                        }
                    })?;
                    debug!(digest = %entry.digest, platform = %spec, "selected manifest");
                    let (b, d, m) =
                        fetch_manifest(&sess, &reference, &repo_path, &entry.digest).await?;
                    match m {
                        Manifest::Image(m) => (b, d, m),
                        Manifest::Index(_) => {
                            return Err(RegistryError::Protocol(
                                "nested image indexes are not supported".into(),
                            ))
                        }
                    }
                }
            };
        check_pullable(&manifest)?;

        let config = fetch_small_blob(&sess, &repo_path, &manifest.config, MAX_CONFIG_SIZE).await?;
        if let Some(w) = &want {
            check_config_platform(&config, w, &reference)?;
        }

        // Layers already stored, then the ones to download (each distinct blob once).
        let mut have: HashMap<String, ImageLayer> = HashMap::new();
        let mut needed: Vec<Descriptor> = Vec::new();
        for l in &manifest.layers {
            if have.contains_key(&l.digest) || needed.iter().any(|n| n.digest == l.digest) {
                continue;
            }
            let st = store.clone();
            let (d, mt) = (l.digest.clone(), l.media_type.clone());
            match blocking(move || st.stored_layer(&d, &mt)).await? {
                Some(layer) => {
                    progress(ProgressEvent::AlreadyExists {
                        id: short_id(&l.digest),
                    });
                    have.insert(l.digest.clone(), layer);
                }
                None => needed.push(l.clone()),
            }
        }
        for d in &needed {
            progress(ProgressEvent::PullingFsLayer {
                id: short_id(&d.digest),
            });
        }
        let concurrency = self.config().max_concurrent_downloads.max(1);
        for d in needed.iter().skip(concurrency) {
            progress(ProgressEvent::Waiting {
                id: short_id(&d.digest),
            });
        }
        let downloaded_layers = needed.len();
        // Futures collected first: a lazy `map` closure makes the pull future not `Send`.
        let downloads: Vec<_> = needed
            .iter()
            .map(|d| {
                let sess = &sess;
                let repo_path = repo_path.as_str();
                async move {
                    let layer = download_layer(sess, store, repo_path, d, progress).await?;
                    Ok::<_, RegistryError>((d.digest.clone(), layer))
                }
            })
            .collect();
        let fetched: Vec<(String, ImageLayer)> = stream::iter(downloads)
            .buffer_unordered(concurrency)
            .try_collect()
            .await?;
        have.extend(fetched);
        let layers = manifest
            .layers
            .iter()
            .map(|l| {
                have.get(&l.digest)
                    .cloned()
                    .ok_or_else(|| RegistryError::Protocol(format!("layer {} lost", l.digest)))
            })
            .collect::<Result<Vec<_>, _>>()?;

        let tags: Vec<String> = match reference.tag() {
            Some(_) if reference.digest().is_none() => vec![reference.to_string()],
            _ => Vec::new(),
        };
        let digest_refs = vec![format!("{}@{}", reference.name(), top_digest)];
        let st = store.clone();
        let ref_str = reference.to_string();
        let previous = blocking(move || Ok(st.resolve_id(&ref_str).ok())).await?;
        let st = store.clone();
        let id = blocking(move || {
            st.add_pulled_image(layers, config, manifest_bytes, &tags, &digest_refs)
        })
        .await?;
        let up_to_date = downloaded_layers == 0 && previous.as_ref() == Some(&id);
        progress(ProgressEvent::Digest {
            digest: top_digest.clone(),
        });
        let shown = reference.familiar();
        progress(ProgressEvent::Status {
            message: if up_to_date {
                format!("Image is up to date for {shown}")
            } else {
                format!("Downloaded newer image for {shown}")
            },
        });
        info!(reference = %reference, image = %id, digest = %top_digest, "pulled");
        Ok(PullOutcome {
            id,
            digest: top_digest,
            manifest_digest,
            reference,
            downloaded_layers,
            up_to_date,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_platform_check() {
        let r = Reference::parse("x/y:1").unwrap();
        let cfg = br#"{"os":"linux","architecture":"arm64","variant":"v8"}"#;
        check_config_platform(cfg, &PlatformSpec::parse("linux/arm64").unwrap(), &r).unwrap();
        let e = check_config_platform(cfg, &PlatformSpec::parse("linux/amd64").unwrap(), &r)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "image with reference x/y:1 was found but does not match the specified platform: wanted linux/amd64, actual: linux/arm64/v8"
        );
        assert!(check_config_platform(b"[]", &PlatformSpec::host(), &r).is_err());
    }

    #[test]
    fn pull_future_is_send() {
        fn check<T: Send>(_: &T) {}
        let c = RegistryClient::new(Default::default()).unwrap();
        let d = tempfile::Builder::new()
            .prefix("berth-t-send-")
            .tempdir()
            .unwrap();
        let store = Arc::new(ImageStore::open(d.path()).unwrap());
        let r = Reference::parse("busybox").unwrap();
        let p = |_e: ProgressEvent| {};
        let fut = c.pull(&store, &r, None, None, &p);
        check(&fut);
        let fut = c.push(&store, &r, None, &p);
        check(&fut);
    }
}
