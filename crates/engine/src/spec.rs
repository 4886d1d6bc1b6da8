//! Turns a container record into its OCI bundle (via `container_spec`),
//! plus the /etc/hosts, /etc/hostname and /etc/resolv.conf it gets.

use container_spec::{MountKind, MountSpec, NamespaceMode, SeccompMode, SpecInput};

use crate::container::{write_atomic, Container};
use crate::error::{EngineError, Result};
use crate::Engine;

fn spec_err(e: container_spec::SpecError) -> EngineError {
    EngineError::InvalidArgument(e.to_string())
}

impl Engine {
    /// Writes the container's /etc files and bundle/config.json.
    pub(crate) fn write_bundle(&self, rec: &Container) -> Result<()> {
        let layout = self.layout(&rec.id);
        let hostname = rec.config.hostname.clone().unwrap_or_default();
        let mode = rec.host_config.network_mode.clone().unwrap_or_default();
        let host_net = mode == "host";
        if host_net {
            let hosts = std::fs::read("/etc/hosts").unwrap_or_default();
            write_atomic(&layout.hosts(), &hosts)?;
        } else {
            let hosts = hosts_file("127.0.0.1", &hostname);
            write_atomic(&layout.hosts(), hosts.as_bytes())?;
        }
        write_atomic(&layout.hostname(), format!("{hostname}\n").as_bytes())?;
        let resolv = std::fs::read("/etc/resolv.conf").unwrap_or_default();
        write_atomic(&layout.resolv_conf(), &resolv)?;

        let hc = &rec.host_config;
        let mut mounts = vec![
            bind(&layout.hosts().display().to_string(), "/etc/hosts", false),
            bind(
                &layout.hostname().display().to_string(),
                "/etc/hostname",
                false,
            ),
            bind(
                &layout.resolv_conf().display().to_string(),
                "/etc/resolv.conf",
                false,
            ),
        ];
        for m in &rec.mounts {
            if m.kind == "tmpfs" {
                mounts.push(MountSpec {
                    source: "tmpfs".into(),
                    destination: m.destination.clone(),
                    kind: MountKind::Tmpfs,
                    readonly: !m.rw,
                    propagation: None,
                    options: vec!["nosuid".into(), "nodev".into(), "noexec".into()],
                });
            } else {
                mounts.push(bind(&m.source, &m.destination, !m.rw));
            }
        }
        for (dst, opts) in hc.tmpfs.clone().unwrap_or_default() {
            let mut options = vec![
                "nosuid".to_string(),
                "nodev".to_string(),
                "noexec".to_string(),
            ];
            options.extend(opts.split(',').filter(|o| !o.is_empty()).map(String::from));
            mounts.push(MountSpec {
                source: "tmpfs".into(),
                destination: dst,
                kind: MountKind::Tmpfs,
                readonly: false,
                propagation: None,
                options,
            });
        }
        let network = match mode.as_str() {
            "host" => NamespaceMode::Host,
            m if m.starts_with("container:") => {
                let other = self.container(&m["container:".len()..])?;
                if other.state.pid == 0 {
                    return Err(EngineError::Conflict(format!(
                        "cannot join network of a non running container: {}",
                        other.id
                    )));
                }
                NamespaceMode::Path(format!("/proc/{}/ns/net", other.state.pid).into())
            }
            _ => NamespaceMode::New,
        };
        let seccomp = if hc
            .security_opt
            .clone()
            .unwrap_or_default()
            .iter()
            .any(|o| o == "seccomp=unconfined" || o == "seccomp:unconfined")
        {
            SeccompMode::Unconfined
        } else {
            SeccompMode::Default
        };
        let no_new_privileges = hc
            .security_opt
            .clone()
            .unwrap_or_default()
            .iter()
            .any(|o| o.starts_with("no-new-privileges") && !o.ends_with("false"));
        let mut args = vec![rec.path.clone()];
        args.extend(rec.args.iter().cloned());
        if hc.init.unwrap_or(false) {
            if let Some(init) = init_binary() {
                mounts.push(bind(&init, "/sbin/docker-init", true));
                let mut a = vec!["/sbin/docker-init".to_string(), "--".to_string()];
                a.extend(args);
                args = a;
            }
        }
        let input = SpecInput {
            id: rec.id.clone(),
            rootfs: layout.rootfs(),
            readonly_rootfs: hc.readonly_rootfs.unwrap_or(false),
            args,
            env: rec.config.env.clone().unwrap_or_default(),
            cwd: rec
                .config
                .working_dir
                .clone()
                .filter(|w| !w.is_empty())
                .unwrap_or_else(|| "/".into()),
            user: rec.config.user.clone().unwrap_or_default(),
            group_add: hc.group_add.clone().unwrap_or_default(),
            tty: rec.tty(),
            console_size: None,
            hostname: if host_net { String::new() } else { hostname },
            domainname: rec.config.domainname.clone().unwrap_or_default(),
            mounts,
            network,
            uts: if host_net {
                NamespaceMode::Host
            } else {
                NamespaceMode::New
            },
            ipc: if hc.ipc_mode.as_deref() == Some("host") {
                NamespaceMode::Host
            } else {
                NamespaceMode::New
            },
            pid: if hc.pid_mode.as_deref() == Some("host") {
                NamespaceMode::Host
            } else {
                NamespaceMode::New
            },
            cgroupns: NamespaceMode::New,
            cgroups_path: format!("/{}/{}", self.cfg.cgroup_parent, rec.id),
            resources: container_spec::Resources {
                memory: hc.memory.unwrap_or(0),
                memory_swap: hc.memory_swap.unwrap_or(0),
                memory_reservation: hc.memory_reservation.unwrap_or(0),
                memory_swappiness: hc.memory_swappiness.filter(|s| *s >= 0),
                oom_kill_disable: hc.oom_kill_disable.unwrap_or(false),
                nano_cpus: hc.nano_cpus.unwrap_or(0),
                cpu_period: hc.cpu_period.unwrap_or(0),
                cpu_quota: hc.cpu_quota.unwrap_or(0),
                cpu_shares: hc.cpu_shares.unwrap_or(0),
                cpuset_cpus: hc.cpuset_cpus.clone().unwrap_or_default(),
                cpuset_mems: hc.cpuset_mems.clone().unwrap_or_default(),
                pids_limit: hc.pids_limit.filter(|p| *p != 0),
                blkio_weight: hc.blkio_weight.unwrap_or(0),
            },
            cap_add: hc.cap_add.clone().unwrap_or_default(),
            cap_drop: hc.cap_drop.clone().unwrap_or_default(),
            privileged: hc.privileged.unwrap_or(false),
            seccomp,
            shm_size: hc.shm_size.filter(|s| *s > 0).map(|s| s as u64),
            sysctls: hc.sysctls.clone().unwrap_or_default().into_iter().collect(),
            ulimits: hc
                .ulimits
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|u| container_spec::Ulimit {
                    name: u.name.unwrap_or_default(),
                    soft: u.soft.unwrap_or(0),
                    hard: u.hard.unwrap_or(0),
                })
                .collect(),
            oom_score_adj: hc.oom_score_adj.map(|v| v as i32),
            masked_paths: Vec::new(),
            readonly_paths: Vec::new(),
            no_new_privileges,
            devices: Vec::new(),
            device_cgroup_rules: Vec::new(),
            annotations: Default::default(),
        };
        let t0 = std::time::Instant::now();
        let spec = container_spec::build_spec(&input).map_err(spec_err)?;
        tracing::debug!(elapsed = ?t0.elapsed(), "built the OCI spec");
        std::fs::create_dir_all(layout.bundle())?;
        container_spec::write_bundle(&layout.bundle(), &spec).map_err(spec_err)?;
        Ok(())
    }
}

/// A container's /etc/hosts: loopback names and its own name at `ip`.
pub(crate) fn hosts_file(ip: &str, hostname: &str) -> String {
    format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n{ip}\t{hostname}\n"
    )
}

fn bind(source: &str, destination: &str, readonly: bool) -> MountSpec {
    MountSpec {
        source: source.into(),
        destination: destination.into(),
        kind: MountKind::Bind,
        readonly,
        propagation: None,
        options: vec!["rbind".into()],
    }
}

/// A static init for `--init` (tini, as Docker's own docker-init is).
fn init_binary() -> Option<String> {
    ["/usr/bin/tini-static", "/usr/bin/docker-init"]
        .iter()
        .find(|p| std::path::Path::new(p).exists())
        .map(|p| p.to_string())
}
