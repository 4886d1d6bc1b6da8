//! `POST /containers/create`: validation, merging the image's defaults,
//! volumes, and the container's first record on disk.

use std::collections::HashMap;
use std::sync::Arc;

use bollard::models::{ContainerConfig, ContainerCreateBody, HostConfig, RestartPolicyNameEnum};

use crate::container::{now_rfc3339, Container, MountRecord, State};
use crate::error::{EngineError, Result};
use crate::{names, Ctr, Engine};

/// Docker's smallest accepted memory limit.
const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// An image's defaults that a container inherits (`Cmd`, `Env`, ...).
pub(crate) use image_store::UserConfig as ImageDefaults;

/// Merges `KEY=VAL` lists: later entries replace earlier ones with the same key.
pub(crate) fn merge_env(base: &[String], over: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in base.iter().chain(over.iter()) {
        let key = e.split('=').next().unwrap_or("");
        if let Some(pos) = out
            .iter()
            .position(|x| x.split('=').next().unwrap_or("") == key)
        {
            out[pos] = e.clone();
        } else {
            out.push(e.clone());
        }
    }
    out
}

/// Applies the image's defaults to the user's config, as Docker does:
/// an explicit Entrypoint drops the image's Cmd; env merges by key.
pub(crate) fn merge_config(user: &mut ContainerConfig, img: &ImageDefaults) {
    let user_entrypoint = user.entrypoint.as_ref().is_some_and(|e| !e.is_empty());
    if !user_entrypoint {
        if user.entrypoint.is_none() {
            user.entrypoint = img.entrypoint.clone();
        }
        if user.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            user.cmd = img.cmd.clone();
        }
    }
    user.env = Some(merge_env(&img.env, user.env.as_deref().unwrap_or(&[])));
    if user.working_dir.as_deref().unwrap_or("").is_empty() {
        user.working_dir = Some(img.working_dir.clone());
    }
    if user.user.as_deref().unwrap_or("").is_empty() {
        user.user = Some(img.user.clone());
    }
    let mut ports = img.exposed_ports.clone();
    for p in user.exposed_ports.clone().unwrap_or_default() {
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    if !ports.is_empty() {
        user.exposed_ports = Some(ports);
    }
    let mut vols = img.volumes.clone();
    for v in user.volumes.clone().unwrap_or_default() {
        if !vols.contains(&v) {
            vols.push(v);
        }
    }
    user.volumes = if vols.is_empty() { None } else { Some(vols) };
    let mut labels: HashMap<String, String> = img.labels.clone().into_iter().collect();
    labels.extend(user.labels.clone().unwrap_or_default());
    user.labels = Some(labels);
    if user.stop_signal.is_none() {
        user.stop_signal = img.stop_signal.clone();
    }
}

/// Checks host settings the way dockerd does before anything is created.
pub(crate) fn validate_host_config(hc: &mut HostConfig, ncpu: usize) -> Result<()> {
    if let Some(m) = hc.memory {
        if m != 0 && m < MIN_MEMORY {
            return Err(EngineError::InvalidArgument(
                "Minimum memory limit allowed is 6MB".into(),
            ));
        }
        if m < 0 {
            return Err(EngineError::InvalidArgument("invalid memory limit".into()));
        }
        if m > 0 && hc.memory_swap.unwrap_or(0) == 0 {
            hc.memory_swap = Some(m * 2);
        }
        if let Some(s) = hc.memory_swap {
            if s > 0 && s < m {
                return Err(EngineError::InvalidArgument(
                    "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
                ));
            }
        }
    }
    if let Some(n) = hc.nano_cpus {
        if n != 0 && (n < 10_000_000 || n > ncpu as i64 * 1_000_000_000) {
            return Err(EngineError::InvalidArgument(format!(
                "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
            )));
        }
    }
    if let Some(p) = &hc.restart_policy {
        let auto_remove = hc.auto_remove.unwrap_or(false);
        let name = p.name.unwrap_or(RestartPolicyNameEnum::EMPTY);
        let restarts = !matches!(
            name,
            RestartPolicyNameEnum::EMPTY | RestartPolicyNameEnum::NO
        );
        if restarts && auto_remove {
            return Err(EngineError::InvalidArgument(
                "can't create 'AutoRemove' container with restart policy".into(),
            ));
        }
        let max = p.maximum_retry_count.unwrap_or(0);
        if max < 0 {
            return Err(EngineError::InvalidArgument(
                "invalid value for maximum retry count: must be a positive integer".into(),
            ));
        }
        if max > 0 && name != RestartPolicyNameEnum::ON_FAILURE {
            return Err(EngineError::InvalidArgument(
                "invalid restart policy: maximum retry count can only be used with 'on-failure'"
                    .to_string(),
            ));
        }
    }
    if let Some(pl) = hc.pids_limit {
        if pl < -1 {
            return Err(EngineError::InvalidArgument("invalid PIDs limit".into()));
        }
    }
    for key in hc.port_bindings.clone().unwrap_or_default().keys() {
        crate::networking::parse_port_key(key)?;
    }
    Ok(())
}

/// One parsed `-v` bind.
#[derive(Debug, PartialEq)]
pub(crate) struct Bind {
    pub source: String,
    pub destination: String,
    pub read_only: bool,
}

/// Parses `src:dst[:opts]` as Docker does on Linux.
pub(crate) fn parse_bind(spec: &str) -> Result<Bind> {
    let parts: Vec<&str> = spec.split(':').collect();
    let bad = || EngineError::InvalidArgument(format!("invalid volume specification: '{spec}'"));
    let (source, destination, opts) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        _ => return Err(bad()),
    };
    if source.is_empty() || destination.is_empty() {
        return Err(bad());
    }
    if !destination.starts_with('/') {
        return Err(EngineError::InvalidArgument(format!(
            "invalid volume specification: '{spec}': invalid mount config for type \"bind\": invalid mount path: '{destination}' mount path must be absolute"
        )));
    }
    if destination == "/" {
        return Err(EngineError::InvalidArgument(format!(
            "invalid volume specification: '{spec}': invalid mount config for type \"bind\": invalid specification: destination can't be '/'"
        )));
    }
    let mut read_only = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => read_only = true,
            "rw" => read_only = false,
            "z" | "Z" | "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave"
            | "nocopy" | "delegated" | "cached" | "consistent" => {}
            _ => return Err(EngineError::InvalidArgument(format!("invalid mode: {o}"))),
        }
    }
    Ok(Bind {
        source: source.into(),
        destination: destination.into(),
        read_only,
    })
}

impl Engine {
    /// Creates a container; returns its id.
    pub async fn create(
        self: &Arc<Self>,
        name: Option<&str>,
        body: ContainerCreateBody,
    ) -> Result<String> {
        let image_ref = body.image.clone().unwrap_or_default();
        if image_ref.is_empty() {
            return Err(EngineError::InvalidArgument(
                "config cannot be empty in order to create a container".into(),
            ));
        }
        let image = self.resolve_image(&image_ref)?;
        let mut hc = body.host_config.clone().unwrap_or_default();
        validate_host_config(&mut hc, num_cpus())?;
        self.check_network_mode(hc.network_mode.as_deref().unwrap_or(""))
            .await?;
        let runtime = hc
            .runtime
            .clone()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| self.cfg.default_runtime.clone());
        if self.cfg.runtime_argv(&runtime).is_none() {
            return Err(EngineError::InvalidArgument(format!(
                "unknown or invalid runtime name: {runtime}"
            )));
        }
        hc.runtime = Some(runtime.clone());

        // The create body minus host/network config is a ContainerConfig.
        let mut v = serde_json::to_value(&body).map_err(EngineError::internal)?;
        if let Some(o) = v.as_object_mut() {
            o.remove("HostConfig");
            o.remove("NetworkingConfig");
        }
        let mut config: ContainerConfig =
            serde_json::from_value(v).map_err(EngineError::internal)?;
        merge_config(&mut config, &image.defaults);
        let mut argv: Vec<String> = config.entrypoint.clone().unwrap_or_default();
        argv.extend(config.cmd.clone().unwrap_or_default());
        if argv.is_empty() {
            return Err(EngineError::InvalidArgument("No command specified".into()));
        }

        let id = names::new_id();
        if config.hostname.as_deref().unwrap_or("").is_empty() {
            config.hostname = Some(id[..12].to_string());
        }
        let mut mounts = Vec::new();
        for b in hc.binds.clone().unwrap_or_default() {
            let bind = parse_bind(&b)?;
            if bind.source.starts_with('/') {
                mounts.push(MountRecord {
                    kind: "bind".into(),
                    name: String::new(),
                    source: bind.source,
                    destination: bind.destination,
                    mode: if bind.read_only {
                        "ro".into()
                    } else {
                        String::new()
                    },
                    rw: !bind.read_only,
                    anonymous: false,
                });
            } else {
                if !volumes_valid(&bind.source) {
                    return Err(EngineError::InvalidArgument(format!(
                        "create {0}: \"{0}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path",
                        bind.source
                    )));
                }
                mounts.push(MountRecord {
                    kind: "volume".into(),
                    name: bind.source,
                    source: String::new(),
                    destination: bind.destination,
                    mode: if bind.read_only {
                        "ro".into()
                    } else {
                        "z".into()
                    },
                    rw: !bind.read_only,
                    anonymous: false,
                });
            }
        }
        for m in hc.mounts.clone().unwrap_or_default() {
            let dst = m.target.clone().unwrap_or_default();
            if !dst.starts_with('/') {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid mount config: invalid mount path: '{dst}' mount path must be absolute"
                )));
            }
            let ro = m.read_only.unwrap_or(false);
            let kind = m
                .typ
                .map(|t| t.to_string())
                .unwrap_or_else(|| "volume".to_string());
            let src = m.source.clone().unwrap_or_default();
            match kind.as_str() {
                "bind" => {
                    if !src.starts_with('/') {
                        return Err(EngineError::InvalidArgument(format!(
                            "invalid mount config for type \"bind\": invalid mount path: '{src}' mount path must be absolute"
                        )));
                    }
                    if std::fs::metadata(&src).is_err() {
                        return Err(EngineError::InvalidArgument(format!(
                            "invalid mount config for type \"bind\": bind source path does not exist: {src}"
                        )));
                    }
                }
                "volume" | "tmpfs" => {}
                other => {
                    return Err(EngineError::InvalidArgument(format!(
                        "invalid mount config: mount type unknown: \"{other}\""
                    )))
                }
            }
            let anonymous = kind == "volume" && src.is_empty();
            mounts.push(MountRecord {
                name: if kind == "volume" {
                    if anonymous {
                        names::new_id()
                    } else {
                        src.clone()
                    }
                } else {
                    String::new()
                },
                source: if kind == "bind" { src } else { String::new() },
                kind,
                destination: dst,
                mode: String::new(),
                rw: !ro,
                anonymous,
            });
        }
        for dst in config.volumes.clone().unwrap_or_default() {
            if mounts.iter().any(|m| m.destination == dst) {
                continue;
            }
            if !dst.starts_with('/') {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid volume specification: '{dst}'"
                )));
            }
            mounts.push(MountRecord {
                kind: "volume".into(),
                name: names::new_id(),
                source: String::new(),
                destination: dst,
                mode: String::new(),
                rw: true,
                anonymous: true,
            });
        }

        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                let n = n.strip_prefix('/').unwrap_or(n);
                if !names::valid_name(n) {
                    return Err(EngineError::InvalidArgument(format!(
                        "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                    )));
                }
                n.to_string()
            }
            None => loop {
                let n = names::random_name();
                if self.find(&n).is_err() {
                    break n;
                }
            },
        };

        // Network-scoped aliases, keyed by the network's own name.
        let mut aliases = HashMap::new();
        if let Some(ec) = body
            .networking_config
            .as_ref()
            .and_then(|n| n.endpoints_config.as_ref())
        {
            let default_net = self
                .net()
                .map(|n| n.config().default_network.clone())
                .unwrap_or_default();
            for (net, settings) in ec {
                let list: Vec<String> = settings
                    .aliases
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|a| !a.is_empty())
                    .collect();
                if list.is_empty() {
                    continue;
                }
                let key = match net.as_str() {
                    "default" | "bridge" => default_net.clone(),
                    n => n.to_string(),
                };
                aliases.insert(key, list);
            }
        }
        let layout = self.layout(&id);
        let rec = Container {
            id: id.clone(),
            name: name.clone(),
            created: now_rfc3339(),
            image: image_ref,
            image_id: image.id.clone(),
            path: argv[0].clone(),
            args: argv[1..].to_vec(),
            config,
            host_config: hc,
            state: State::default(),
            restart_count: 0,
            mounts,
            runtime,
            manually_stopped: false,
            layers: image.layers.clone(),
            endpoints: Vec::new(),
            ports: Vec::new(),
            extra_networks: Vec::new(),
            aliases,
        };
        {
            // Name reservation and insertion under one write lock.
            let mut map = self.containers.write().unwrap_or_else(|e| e.into_inner());
            if let Some(other) = map.values().find(|c| c.get().name == name) {
                return Err(EngineError::Conflict(format!(
                    "Conflict. The container name \"/{name}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                    other.get().id
                )));
            }
            std::fs::create_dir_all(&layout.dir)?;
            map.insert(id.clone(), Ctr::new(rec.clone()));
        }
        let result = (|| -> Result<()> {
            let mut rec = rec;
            for m in rec.mounts.iter_mut() {
                if m.kind == "volume" {
                    self.volumes.create(&m.name, HashMap::new(), m.anonymous)?;
                    m.source = self.volumes.mountpoint(&m.name);
                }
                if m.kind == "bind" && std::fs::symlink_metadata(&m.source).is_err() {
                    std::fs::create_dir_all(&m.source)?;
                }
            }
            self.persist(&rec)?;
            if let Ok(c) = self.find(&id) {
                *c.rec.lock().unwrap_or_else(|e| e.into_inner()) = rec;
            }
            Ok(())
        })();
        if let Err(e) = result {
            self.containers
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            let _ = std::fs::remove_dir_all(&layout.dir);
            return Err(e);
        }
        tracing::info!(container = %id, %name, "created");
        Ok(id)
    }
}

fn volumes_valid(name: &str) -> bool {
    crate::volumes::valid_volume_name(name)
}

/// CPUs online.
pub(crate) fn num_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_parse() {
        assert_eq!(
            parse_bind("/srv/data:/data:ro").unwrap(),
            Bind {
                source: "/srv/data".into(),
                destination: "/data".into(),
                read_only: true
            }
        );
        assert!(!parse_bind("cache:/cache").unwrap().read_only);
        assert!(parse_bind("/a").is_err());
        assert!(parse_bind("/a:rel").is_err());
        assert!(parse_bind("/a:/b:bogus").is_err());
        assert!(parse_bind("/a:/").is_err());
    }

    #[test]
    fn env_merge_overrides_by_key() {
        let base = vec!["PATH=/bin".to_string(), "A=1".to_string()];
        let over = vec!["A=2".to_string(), "B=3".to_string()];
        assert_eq!(merge_env(&base, &over), vec!["PATH=/bin", "A=2", "B=3"]);
    }

    #[test]
    fn config_merge_follows_docker() {
        let img = ImageDefaults {
            cmd: Some(vec!["/bin/sh".into()]),
            entrypoint: None,
            working_dir: "/w".into(),
            ..Default::default()
        };
        let mut c = ContainerConfig::default();
        merge_config(&mut c, &img);
        assert_eq!(c.cmd, Some(vec!["/bin/sh".to_string()]));
        assert_eq!(c.working_dir.as_deref(), Some("/w"));
        // A user entrypoint drops the image's cmd.
        let mut c = ContainerConfig {
            entrypoint: Some(vec!["echo".into()]),
            ..Default::default()
        };
        merge_config(&mut c, &img);
        assert_eq!(c.cmd, None);
    }

    #[test]
    fn host_config_validation() {
        let mut hc = HostConfig {
            memory: Some(1024),
            ..Default::default()
        };
        assert!(validate_host_config(&mut hc, 2).is_err());
        let mut hc = HostConfig {
            memory: Some(64 << 20),
            ..Default::default()
        };
        validate_host_config(&mut hc, 2).unwrap();
        assert_eq!(hc.memory_swap, Some(128 << 20));
        let mut hc = HostConfig {
            nano_cpus: Some(5_000_000_000),
            ..Default::default()
        };
        assert!(validate_host_config(&mut hc, 2).is_err());
        let mut hc = HostConfig {
            port_bindings: Some([("http/tcp".to_string(), None)].into_iter().collect()),
            ..Default::default()
        };
        assert!(matches!(
            validate_host_config(&mut hc, 2),
            Err(EngineError::InvalidArgument(_))
        ));
    }
}
