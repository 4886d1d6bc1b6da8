//! Named and anonymous volumes of the `local` driver: a directory each under
//! `<root>/volumes/<name>/_data`, with a small metadata file beside it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::container::{now_rfc3339, write_atomic};
use crate::error::{EngineError, Result};

/// A volume's metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    pub created_at: String,
    #[serde(default)]
    pub labels: HashMap<String, String>,
    #[serde(default)]
    pub anonymous: bool,
}

/// The set of volumes on this engine.
pub struct VolumeStore {
    root: PathBuf,
    lock: Mutex<()>,
}

/// Docker's rule for volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_volume_name(name: &str) -> bool {
    crate::names::valid_name(name)
}

impl VolumeStore {
    pub fn open(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root)?;
        Ok(VolumeStore {
            root: root.to_path_buf(),
            lock: Mutex::new(()),
        })
    }

    fn meta_path(&self, name: &str) -> PathBuf {
        self.root.join(name).join("volume.json")
    }

    /// Host directory holding the volume's data.
    pub fn data_path(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }

    /// Creates the volume, or returns the existing one of that name.
    pub fn create(
        &self,
        name: &str,
        labels: HashMap<String, String>,
        anonymous: bool,
    ) -> Result<Volume> {
        if !valid_volume_name(name) {
            return Err(EngineError::InvalidArgument(format!(
                "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
            )));
        }
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(v) = self.read(name) {
            return Ok(v);
        }
        std::fs::create_dir_all(self.data_path(name))?;
        let v = Volume {
            name: name.to_string(),
            created_at: now_rfc3339(),
            labels,
            anonymous,
        };
        let data = serde_json::to_vec(&v).map_err(EngineError::internal)?;
        write_atomic(&self.meta_path(name), &data)?;
        Ok(v)
    }

    fn read(&self, name: &str) -> Result<Volume> {
        let bytes = std::fs::read(self.meta_path(name))
            .map_err(|_| EngineError::NotFound(format!("get {name}: no such volume")))?;
        serde_json::from_slice(&bytes).map_err(EngineError::internal)
    }

    pub fn get(&self, name: &str) -> Result<Volume> {
        if !valid_volume_name(name) {
            return Err(EngineError::NotFound(format!("get {name}: no such volume")));
        }
        self.read(name)
    }

    pub fn list(&self) -> Vec<Volume> {
        let mut out = Vec::new();
        if let Ok(rd) = std::fs::read_dir(&self.root) {
            for e in rd.flatten() {
                if let Some(name) = e.file_name().to_str() {
                    if let Ok(v) = self.read(name) {
                        out.push(v);
                    }
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Removes a volume; the caller checks that no container uses it.
    pub fn remove(&self, name: &str) -> Result<()> {
        self.get(name)?;
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        std::fs::remove_dir_all(self.root.join(name))?;
        Ok(())
    }

    /// Size in bytes of a volume's data (for `system df` style output).
    pub fn mountpoint(&self, name: &str) -> String {
        self.data_path(name).display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_list_remove() {
        let dir = tempfile::tempdir().unwrap();
        let vs = VolumeStore::open(dir.path()).unwrap();
        vs.create("data", HashMap::new(), false).unwrap();
        assert!(vs.data_path("data").is_dir());
        // Creating again returns the same volume.
        let again = vs.create("data", HashMap::new(), false).unwrap();
        assert_eq!(again.name, "data");
        assert_eq!(vs.list().len(), 1);
        assert!(matches!(
            vs.create("../x", HashMap::new(), false),
            Err(EngineError::InvalidArgument(_))
        ));
        vs.remove("data").unwrap();
        assert!(matches!(vs.get("data"), Err(EngineError::NotFound(_))));
        assert!(vs.list().is_empty());
    }
}
