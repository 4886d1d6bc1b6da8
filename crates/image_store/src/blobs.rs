//! Content-addressed blob files (`blobs/sha256/<hex>`) and atomic file helpers.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::error::{ImageError, Result};
use crate::reference::is_hex64;

/// Random suffix for temporary names.
pub(crate) fn random_suffix() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// fsyncs a directory so a rename inside it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ImageError::io(format!("syncing {}", dir.display()), e))
}

/// Writes `data` to `path` atomically: temporary file in the same directory, fsync, rename,
/// fsync of the directory.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| ImageError::Corrupt(format!("{} has no parent", path.display())))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", random_suffix()));
    let res = (|| -> io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = res {
        let _ = fs::remove_file(&tmp);
        return Err(ImageError::io(format!("writing {}", path.display()), e));
    }
    sync_dir(dir)
}

/// `sha256:<hex>` of a byte slice.
pub(crate) fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// The blob directory of a store.
#[derive(Debug)]
pub(crate) struct Blobs {
    dir: PathBuf,
    tmp: PathBuf,
}

impl Blobs {
    pub(crate) fn new(dir: PathBuf, tmp: PathBuf) -> Self {
        Self { dir, tmp }
    }

    /// Path of a blob; the digest must be `sha256:<64 hex>`.
    pub(crate) fn path(&self, digest: &str) -> Result<PathBuf> {
        match digest.strip_prefix("sha256:") {
            Some(h) if is_hex64(h) => Ok(self.dir.join(h)),
            _ => Err(ImageError::InvalidImage(format!(
                "unsupported digest {digest:?}"
            ))),
        }
    }

    #[cfg(test)]
    pub(crate) fn exists(&self, digest: &str) -> bool {
        self.path(digest).map(|p| p.is_file()).unwrap_or(false)
    }

    /// Starts a new blob in the temporary directory.
    pub(crate) fn writer(&self) -> Result<BlobWriter> {
        let tmp_path = self.tmp.join(format!("blob-{}", random_suffix()));
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&tmp_path)
            .map_err(|e| ImageError::io(format!("creating {}", tmp_path.display()), e))?;
        Ok(BlobWriter {
            file: Some(file),
            tmp_path,
            hasher: Sha256::new(),
            size: 0,
        })
    }

    /// Stores `data`, checking it against `expected` when given.
    pub(crate) fn put_bytes(&self, data: &[u8], expected: Option<&str>) -> Result<(String, u64)> {
        let mut w = self.writer()?;
        w.write_all(data)
            .map_err(|e| ImageError::io("writing blob", e))?;
        w.commit(self, expected)
    }

    /// Reads a whole blob and verifies its digest.
    pub(crate) fn read_verified(&self, digest: &str) -> Result<Vec<u8>> {
        let p = self.path(digest)?;
        let mut data = Vec::new();
        File::open(&p)
            .and_then(|mut f| f.read_to_end(&mut data))
            .map_err(|e| ImageError::io(format!("reading blob {digest}"), e))?;
        let actual = sha256(&data);
        if actual != digest {
            return Err(ImageError::DigestMismatch {
                expected: digest.to_string(),
                actual,
            });
        }
        Ok(data)
    }

    /// Opens a blob for reading.
    pub(crate) fn open(&self, digest: &str) -> Result<File> {
        let p = self.path(digest)?;
        File::open(&p).map_err(|e| ImageError::io(format!("opening blob {digest}"), e))
    }

    /// Removes a blob (missing is fine).
    pub(crate) fn remove(&self, digest: &str) -> Result<()> {
        let p = self.path(digest)?;
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ImageError::io(format!("removing blob {digest}"), e)),
        }
    }

    /// Digests of all stored blobs.
    pub(crate) fn list(&self) -> Result<Vec<String>> {
        let rd = fs::read_dir(&self.dir)
            .map_err(|e| ImageError::io(format!("listing {}", self.dir.display()), e))?;
        let mut out = Vec::new();
        for ent in rd.flatten() {
            let name = ent.file_name().to_string_lossy().into_owned();
            if is_hex64(&name) {
                out.push(format!("sha256:{name}"));
            }
        }
        Ok(out)
    }
}

/// A blob being written: hashed as it goes, committed by fsync + rename.
/// Dropping an uncommitted writer removes its temporary file.
pub(crate) struct BlobWriter {
    file: Option<File>,
    tmp_path: PathBuf,
    hasher: Sha256,
    size: u64,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let f = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("blob writer already committed"))?;
        let n = f.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl BlobWriter {
    /// Verifies the digest (when `expected` is given), fsyncs and moves the blob into place.
    /// Returns `(digest, size)`.
    pub(crate) fn commit(mut self, blobs: &Blobs, expected: Option<&str>) -> Result<(String, u64)> {
        let digest = format!("sha256:{}", hex::encode(self.hasher.clone().finalize()));
        if let Some(exp) = expected {
            if exp != digest {
                return Err(ImageError::DigestMismatch {
                    expected: exp.to_string(),
                    actual: digest,
                });
            }
        }
        let file = self
            .file
            .take()
            .ok_or_else(|| ImageError::Corrupt("blob writer committed twice".into()))?;
        file.sync_all()
            .map_err(|e| ImageError::io("syncing blob", e))?;
        drop(file);
        let dest = blobs.path(&digest)?;
        if dest.is_file() {
            // Same content already stored.
            let _ = fs::remove_file(&self.tmp_path);
        } else {
            fs::rename(&self.tmp_path, &dest)
                .map_err(|e| ImageError::io(format!("storing blob {digest}"), e))?;
            sync_dir(&blobs.dir)?;
        }
        Ok((digest, self.size))
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = fs::remove_file(&self.tmp_path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs() -> (tempfile::TempDir, Blobs) {
        let t = tempfile::Builder::new()
            .prefix("berth-t-blobs-")
            .tempdir()
            .unwrap();
        fs::create_dir_all(t.path().join("b")).unwrap();
        fs::create_dir_all(t.path().join("t")).unwrap();
        let b = Blobs::new(t.path().join("b"), t.path().join("t"));
        (t, b)
    }

    #[test]
    fn put_verify_and_dedupe() {
        let (t, b) = blobs();
        let (d, n) = b.put_bytes(b"hello", None).unwrap();
        assert_eq!(n, 5);
        assert_eq!(d, sha256(b"hello"));
        assert_eq!(b.read_verified(&d).unwrap(), b"hello");
        let (d2, _) = b.put_bytes(b"hello", Some(&d)).unwrap();
        assert_eq!(d, d2);
        assert_eq!(b.list().unwrap(), vec![d.clone()]);
        assert_eq!(fs::read_dir(t.path().join("t")).unwrap().count(), 0);
    }

    #[test]
    fn mismatch_leaves_nothing_behind() {
        let (t, b) = blobs();
        let wrong = sha256(b"other");
        let err = b.put_bytes(b"hello", Some(&wrong)).unwrap_err();
        assert!(matches!(err, ImageError::DigestMismatch { .. }));
        assert!(!b.exists(&sha256(b"hello")));
        assert_eq!(fs::read_dir(t.path().join("t")).unwrap().count(), 0);
    }

    #[test]
    fn corrupted_blob_detected() {
        let (_t, b) = blobs();
        let (d, _) = b.put_bytes(b"hello", None).unwrap();
        fs::write(b.path(&d).unwrap(), b"tampered").unwrap();
        assert!(matches!(
            b.read_verified(&d),
            Err(ImageError::DigestMismatch { .. })
        ));
    }

    #[test]
    fn bad_digests_rejected() {
        let (_t, b) = blobs();
        assert!(b.path("sha256:../../etc/passwd").is_err());
        assert!(b.path("md5:abc").is_err());
    }

    #[test]
    fn atomic_write_replaces() {
        let (t, _b) = blobs();
        let p = t.path().join("f.json");
        write_atomic(&p, b"1").unwrap();
        write_atomic(&p, b"2").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"2");
        assert_eq!(fs::read_dir(t.path()).unwrap().count(), 3);
    }
}
