//! Writing `config.json` into a bundle directory.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use oci_spec::runtime::Spec;

use crate::spec::config_path;
use crate::SpecError;

/// Writes `spec` to `<bundle_dir>/config.json` atomically (temporary file in the same
/// directory, fsync, rename, fsync of the directory) with mode 0600. Creates `bundle_dir`
/// (mode 0700) when missing.
pub fn write_bundle(bundle_dir: &Path, spec: &Spec) -> Result<(), SpecError> {
    if !bundle_dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(bundle_dir)
            .map_err(|e| SpecError::io(format!("creating {}", bundle_dir.display()), e))?;
    }
    let data = serde_json::to_vec(spec)?;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = bundle_dir.join(format!(".config.json.{}.{nanos}.tmp", std::process::id()));
    let target = config_path(bundle_dir);

    let result = (|| -> Result<(), SpecError> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_CLOEXEC | nix::libc::O_NOFOLLOW)
            .open(&tmp)
            .map_err(|e| SpecError::io(format!("creating {}", tmp.display()), e))?;
        f.write_all(&data)
            .and_then(|_| f.sync_all())
            .map_err(|e| SpecError::io(format!("writing {}", tmp.display()), e))?;
        std::fs::rename(&tmp, &target)
            .map_err(|e| SpecError::io(format!("renaming to {}", target.display()), e))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    // Make the rename durable; failure here does not make the file wrong.
    if let Ok(dir) = std::fs::File::open(bundle_dir) {
        if let Err(e) = dir.sync_all() {
            tracing::debug!(error = %e, "fsync of bundle dir failed");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_atomically_with_0600() {
        let d = tempfile::Builder::new()
            .prefix("container_spec-bundle-")
            .tempdir()
            .unwrap();
        let bundle = d.path().join("b");
        let spec = Spec::default();
        write_bundle(&bundle, &spec).unwrap();
        let p = bundle.join("config.json");
        let md = std::fs::metadata(&p).unwrap();
        assert_eq!(md.permissions().mode() & 0o777, 0o600);
        let back: Spec = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(back, spec);
        // Overwrite works and leaves no temp files behind.
        write_bundle(&bundle, &spec).unwrap();
        let names: Vec<_> = std::fs::read_dir(&bundle)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("config.json")]);
    }

    #[test]
    fn error_when_bundle_is_a_file() {
        let d = tempfile::Builder::new()
            .prefix("container_spec-bundle-")
            .tempdir()
            .unwrap();
        let f = d.path().join("file");
        std::fs::write(&f, b"x").unwrap();
        assert!(matches!(
            write_bundle(&f, &Spec::default()),
            Err(SpecError::Io { .. })
        ));
    }
}
