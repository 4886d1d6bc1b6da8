//! Image configuration helpers: the run-time defaults given to `import`, and the
//! convenience view of an image's defaults used when creating containers.

use std::collections::{BTreeMap, HashMap};

use oci_spec::image::{Arch, Config, ImageConfiguration, Os};
use serde::{Deserialize, Serialize};

/// `PATH` Docker sets in official images.
pub const DEFAULT_PATH_ENV: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Run-time defaults recorded in an imported image's config (`docker import --change`).
/// `None`/empty fields are left out of the config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportConfig {
    /// `CMD`.
    pub cmd: Option<Vec<String>>,
    /// `ENTRYPOINT`.
    pub entrypoint: Option<Vec<String>>,
    /// `ENV` (`KEY=value`).
    pub env: Vec<String>,
    /// `WORKDIR`.
    pub working_dir: Option<String>,
    /// `USER`.
    pub user: Option<String>,
    /// `EXPOSE` (`80/tcp`, `53/udp`; a bare port means tcp).
    pub exposed_ports: Vec<String>,
    /// `LABEL`s.
    pub labels: BTreeMap<String, String>,
    /// `STOPSIGNAL`.
    pub stop_signal: Option<String>,
    /// `VOLUME`s.
    pub volumes: Vec<String>,
}

impl ImportConfig {
    /// Builds the OCI `config` section (`None` when every field is empty).
    pub(crate) fn to_oci(&self) -> Option<Config> {
        let mut c = Config::default();
        let mut any = false;
        if let Some(v) = &self.cmd {
            c.set_cmd(Some(v.clone()));
            any = true;
        }
        if let Some(v) = &self.entrypoint {
            c.set_entrypoint(Some(v.clone()));
            any = true;
        }
        if !self.env.is_empty() {
            c.set_env(Some(self.env.clone()));
            any = true;
        }
        if let Some(v) = self.working_dir.as_ref().filter(|s| !s.is_empty()) {
            c.set_working_dir(Some(v.clone()));
            any = true;
        }
        if let Some(v) = self.user.as_ref().filter(|s| !s.is_empty()) {
            c.set_user(Some(v.clone()));
            any = true;
        }
        if !self.exposed_ports.is_empty() {
            let ports: Vec<String> = self
                .exposed_ports
                .iter()
                .map(|p| {
                    if p.contains('/') {
                        p.clone()
                    } else {
                        format!("{p}/tcp")
                    }
                })
                .collect();
            c.set_exposed_ports(Some(ports));
            any = true;
        }
        if !self.labels.is_empty() {
            let labels: HashMap<String, String> = self
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            c.set_labels(Some(labels));
            any = true;
        }
        if let Some(v) = self.stop_signal.as_ref().filter(|s| !s.is_empty()) {
            c.set_stop_signal(Some(v.clone()));
            any = true;
        }
        if !self.volumes.is_empty() {
            c.set_volumes(Some(self.volumes.clone()));
            any = true;
        }
        any.then_some(c)
    }
}

/// The defaults Docker's `busybox` image carries: `Cmd ["sh"]` and the standard `PATH`.
pub fn busybox_import_config() -> ImportConfig {
    ImportConfig {
        cmd: Some(vec!["sh".to_string()]),
        env: vec![DEFAULT_PATH_ENV.to_string()],
        ..Default::default()
    }
}

/// An image's run-time defaults, flattened for container creation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserConfig {
    /// `Cmd` (`None` when unset, which differs from an empty list for Docker).
    pub cmd: Option<Vec<String>>,
    /// `Entrypoint`.
    pub entrypoint: Option<Vec<String>>,
    /// `Env`.
    pub env: Vec<String>,
    /// `WorkingDir` (empty = `/`).
    pub working_dir: String,
    /// `User` (empty = root).
    pub user: String,
    /// `ExposedPorts`, sorted (`80/tcp`).
    pub exposed_ports: Vec<String>,
    /// `StopSignal`.
    pub stop_signal: Option<String>,
    /// `Volumes`, sorted.
    pub volumes: Vec<String>,
    /// `Labels`.
    pub labels: BTreeMap<String, String>,
}

impl UserConfig {
    /// Extracts the defaults from an OCI image configuration.
    pub fn from_image_config(cfg: &ImageConfiguration) -> Self {
        let Some(c) = cfg.config() else {
            return UserConfig::default();
        };
        let mut exposed_ports = c.exposed_ports().clone().unwrap_or_default();
        exposed_ports.sort();
        let mut volumes = c.volumes().clone().unwrap_or_default();
        volumes.sort();
        UserConfig {
            cmd: c.cmd().clone(),
            entrypoint: c.entrypoint().clone(),
            env: c.env().clone().unwrap_or_default(),
            working_dir: c.working_dir().clone().unwrap_or_default(),
            user: c.user().clone().unwrap_or_default(),
            exposed_ports,
            stop_signal: c.stop_signal().clone(),
            volumes,
            labels: c.labels().clone().unwrap_or_default().into_iter().collect(),
        }
    }
}

/// The host's architecture in Go's `GOARCH` naming.
pub(crate) fn host_arch() -> Arch {
    match std::env::consts::ARCH {
        "x86_64" => Arch::Amd64,
        "aarch64" => Arch::ARM64,
        "x86" => Arch::i386,
        "arm" => Arch::ARM,
        "riscv64" => Arch::RISCV64,
        "s390x" => Arch::s390x,
        "powerpc64" => Arch::PowerPC64,
        other => Arch::Other(other.to_string()),
    }
}

/// The OS recorded in configs.
pub(crate) fn host_os() -> Os {
    Os::Linux
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_config_round_trip() {
        let ic = ImportConfig {
            cmd: Some(vec!["sh".into()]),
            entrypoint: Some(vec!["/bin/e".into()]),
            env: vec!["A=1".into()],
            working_dir: Some("/w".into()),
            user: Some("nobody".into()),
            exposed_ports: vec!["80".into(), "53/udp".into()],
            labels: [("k".to_string(), "v".to_string())].into_iter().collect(),
            stop_signal: Some("SIGQUIT".into()),
            volumes: vec!["/data".into()],
        };
        let mut cfg = ImageConfiguration::default();
        cfg.set_config(ic.to_oci());
        let json = serde_json::to_string(&cfg).unwrap();
        assert!(json.contains("\"ExposedPorts\""), "{json}");
        assert!(json.contains("\"80/tcp\":{}"), "{json}");
        let back: ImageConfiguration = serde_json::from_str(&json).unwrap();
        let uc = UserConfig::from_image_config(&back);
        assert_eq!(uc.cmd, Some(vec!["sh".to_string()]));
        assert_eq!(uc.entrypoint, Some(vec!["/bin/e".to_string()]));
        assert_eq!(uc.env, vec!["A=1"]);
        assert_eq!(uc.working_dir, "/w");
        assert_eq!(uc.user, "nobody");
        assert_eq!(uc.exposed_ports, vec!["53/udp", "80/tcp"]);
        assert_eq!(uc.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(uc.volumes, vec!["/data"]);
        assert_eq!(uc.labels.get("k").map(String::as_str), Some("v"));
    }

    #[test]
    fn empty_import_config_has_no_config_section() {
        assert!(ImportConfig::default().to_oci().is_none());
        let uc = UserConfig::from_image_config(&ImageConfiguration::default());
        assert_eq!(uc, UserConfig::default());
    }
}
