//! The engine daemon's core: containers and their lifecycle (create, start,
//! stop, kill, wait, restart policies, removal), exec instances, logs and
//! volumes, on top of the image store and the per-container shims.
//!
//! The engine speaks in Rust types; `docker_api` turns HTTP requests into
//! these calls and the results back into Docker's JSON.

pub mod container;
mod create;
pub mod error;
mod exec;
mod images;
pub use images::image_error;
mod lifecycle;
mod logs;
pub mod names;
mod networking;
pub use networking::{net_error, NetworkSettings};
mod rootfs;
mod spec;
pub mod volumes;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use tokio::net::UnixStream;
use tokio::sync::{oneshot, watch};

pub use container::{Container, Layout, MountRecord, State, Status};
pub use error::{EngineError, Result};
pub use exec::ExecInstance;
pub use lifecycle::WaitCondition;
pub use logs::{LogChunk, LogOptions};

/// Where the engine keeps its state and how it runs containers.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Persistent state (`/var/lib/berth`).
    pub root: PathBuf,
    /// Runtime state (`/run/berth`).
    pub exec_root: PathBuf,
    /// The berth binary, re-executed as `berth shim` and `berth runtime`.
    pub berth_exe: PathBuf,
    /// Runtime used when a container names none.
    pub default_runtime: String,
    /// Parent of every container's cgroup.
    pub cgroup_parent: String,
    /// Bridge networking; `None` leaves containers with loopback only.
    pub network: Option<NetworkSettings>,
    /// How registries are reached (insecure registries, CA, credentials).
    pub registry: registry_client::RegistryConfig,
}

impl EngineConfig {
    /// argv prefix of a named OCI runtime.
    pub fn runtime_argv(&self, name: &str) -> Option<Vec<String>> {
        match name {
            "berth" | "" => Some(vec![
                self.berth_exe.display().to_string(),
                "runtime".to_string(),
            ]),
            "runc" => Some(vec!["runc".to_string()]),
            "crun" => Some(vec!["crun".to_string()]),
            _ => None,
        }
    }
}

/// Lifecycle notifications of one container, observed by `wait`.
#[derive(Debug, Clone, Default)]
pub struct Life {
    /// How many times the process has exited (or failed to start).
    pub exits: u64,
    pub exit_code: i32,
    pub error: Option<String>,
    pub removed: bool,
}

/// A client waiting to be attached when the container starts.
pub(crate) struct PendingAttach {
    stdin: bool,
    tx: oneshot::Sender<Option<UnixStream>>,
}

/// One container held in memory.
pub(crate) struct Ctr {
    pub rec: Mutex<Container>,
    pub life: watch::Sender<Life>,
    pub pending: Mutex<Vec<PendingAttach>>,
    /// Serialises start/stop/remove of this container.
    pub op: tokio::sync::Mutex<()>,
    pub backoff_ms: Mutex<u64>,
}

impl Ctr {
    fn new(rec: Container) -> Arc<Self> {
        Arc::new(Ctr {
            rec: Mutex::new(rec),
            life: watch::channel(Life::default()).0,
            pending: Mutex::new(Vec::new()),
            op: tokio::sync::Mutex::new(()),
            backoff_ms: Mutex::new(0),
        })
    }
    pub fn get(&self) -> Container {
        self.rec.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The engine: shared by every API request.
pub struct Engine {
    pub cfg: EngineConfig,
    pub images: Arc<image_store::ImageStore>,
    /// Pulls and pushes images (OCI distribution).
    pub registry: registry_client::RegistryClient,
    pub volumes: volumes::VolumeStore,
    /// Bridge networks, NAT and published ports.
    pub network: Option<container_network::NetworkManager>,
    containers: RwLock<HashMap<String, Arc<Ctr>>>,
    execs: Mutex<HashMap<String, Arc<ExecInstance>>>,
}

impl Engine {
    /// Opens (or creates) the engine's state and re-attaches to containers
    /// whose shims kept running while no daemon was there.
    pub async fn open(cfg: EngineConfig) -> Result<Arc<Engine>> {
        std::fs::create_dir_all(cfg.root.join("containers"))?;
        std::fs::create_dir_all(cfg.exec_root.join("s"))?;
        std::fs::create_dir_all(cfg.exec_root.join("runtime"))?;
        let images = Arc::new(
            image_store::ImageStore::open(&cfg.root.join("image"))
                .map_err(|e| EngineError::Internal(format!("image store: {e}")))?,
        );
        let registry = registry_client::RegistryClient::new(cfg.registry.clone())
            .map_err(|e| EngineError::Internal(format!("registry client: {e}")))?;
        let volumes = volumes::VolumeStore::open(&cfg.root.join("volumes"))?;
        let network = match &cfg.network {
            Some(n) => {
                let mut nc = container_network::NetworkConfig::new(cfg.root.join("network"));
                nc.default_bridge = n.bridge.clone();
                nc.table_name = n.nft_table.clone();
                nc.default_subnet = n.default_subnet.clone();
                Some(
                    container_network::NetworkManager::open(nc)
                        .await
                        .map_err(|e| EngineError::Internal(format!("networking: {e}")))?,
                )
            }
            None => None,
        };
        let engine = Arc::new(Engine {
            cfg,
            images,
            registry,
            volumes,
            network,
            containers: RwLock::new(HashMap::new()),
            execs: Mutex::new(HashMap::new()),
        });
        engine.load_containers().await;
        Ok(engine)
    }

    pub(crate) fn layout(&self, id: &str) -> Layout {
        Layout::new(&self.cfg.root, &self.cfg.exec_root, id)
    }

    /// The overlay upper directory of a container: what it changed in its image
    /// (the image builder turns it into a layer).
    pub fn container_upper(&self, key: &str) -> Result<std::path::PathBuf> {
        let rec = self.find(key)?.get();
        Ok(self.layout(&rec.id).upper())
    }

    pub(crate) fn persist(&self, rec: &Container) -> Result<()> {
        let data = serde_json::to_vec_pretty(rec).map_err(EngineError::internal)?;
        container::write_atomic(&self.layout(&rec.id).record(), &data)?;
        Ok(())
    }

    pub(crate) fn all(&self) -> Vec<Arc<Ctr>> {
        self.containers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Finds a container by full id, name, or unique id prefix.
    pub(crate) fn find(&self, key: &str) -> Result<Arc<Ctr>> {
        let map = self.containers.read().unwrap_or_else(|e| e.into_inner());
        if key.is_empty() {
            return Err(EngineError::no_such_container(key));
        }
        if let Some(c) = map.get(key) {
            return Ok(c.clone());
        }
        let name = key.strip_prefix('/').unwrap_or(key);
        for c in map.values() {
            if c.rec.lock().unwrap_or_else(|e| e.into_inner()).name == name {
                return Ok(c.clone());
            }
        }
        let matches: Vec<_> = map
            .iter()
            .filter(|(id, _)| id.starts_with(key))
            .map(|(_, c)| c.clone())
            .collect();
        match matches.len() {
            1 => Ok(matches[0].clone()),
            0 => Err(EngineError::no_such_container(key)),
            _ => Err(EngineError::InvalidArgument(format!(
                "multiple containers found with provided prefix: {key}"
            ))),
        }
    }

    /// A snapshot of one container's record.
    pub fn container(&self, key: &str) -> Result<Container> {
        Ok(self.find(key)?.get())
    }

    /// Records of every container, newest first.
    pub fn list(&self) -> Vec<Container> {
        let mut v: Vec<Container> = self.all().iter().map(|c| c.get()).collect();
        v.sort_by(|a, b| b.created.cmp(&a.created));
        v
    }

    /// Ids of containers using an image (for `rmi`).
    pub fn containers_using_image(&self, image_id: &str) -> Vec<Container> {
        self.list()
            .into_iter()
            .filter(|c| c.image_id == image_id)
            .collect()
    }

    /// Ids of containers using a volume.
    pub fn containers_using_volume(&self, name: &str) -> Vec<String> {
        self.list()
            .into_iter()
            .filter(|c| {
                c.mounts
                    .iter()
                    .any(|m| m.kind == "volume" && m.name == name)
            })
            .map(|c| c.id)
            .collect()
    }

    /// Removes a volume unless a container uses it.
    pub fn remove_volume(&self, name: &str, force: bool) -> Result<()> {
        let users = self.containers_using_volume(name);
        if !users.is_empty() && !force {
            return Err(EngineError::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        match self.volumes.remove(name) {
            Err(EngineError::NotFound(_)) if force => Ok(()),
            other => other,
        }
    }

    /// Counts of containers by state, for `/info`.
    pub fn counts(&self) -> (usize, usize, usize) {
        let all = self.list();
        let running = all.iter().filter(|c| c.running()).count();
        (all.len(), running, all.len() - running)
    }
}
