//! `berth`: one binary, many roles. This file only wires the crates
//! together: the first argument picks the role.
//!
//! - `berth daemon`: the container engine serving the Docker Engine API.
//! - `berth shim CONFIG`: the per-container shim (started by the daemon).
//! - `berth runtime ...`: the runc-compatible OCI runtime on libcontainer.
//! - any other verb (`run`, `ps`, `images`, ...): the docker-style CLI.

use std::path::PathBuf;

use clap::Parser;

/// Options of `berth daemon`.
#[derive(Parser, Debug)]
#[command(name = "berth daemon", about = "Run the berth container engine")]
struct DaemonArgs {
    /// Persistent state directory.
    #[arg(long, default_value = "/var/lib/berth")]
    root: PathBuf,
    /// Runtime state directory (sockets, runtime state).
    #[arg(long, default_value = "/run/berth")]
    exec_root: PathBuf,
    /// Socket to serve the Docker Engine API on.
    #[arg(short = 'H', long, default_value = "unix:///run/berth/berth.sock")]
    host: String,
    /// OCI runtime for containers that name none: berth (libcontainer) or runc.
    #[arg(long, default_value = "berth")]
    default_runtime: String,
    /// Parent cgroup of every container.
    #[arg(long, default_value = "berth")]
    cgroup_parent: String,
    /// Bridge device of the default network; `none` disables bridge networking.
    #[arg(long, default_value = "berth0")]
    bridge: String,
    /// Subnet of the default bridge network.
    #[arg(long, default_value = "172.17.0.0/16")]
    default_subnet: String,
    /// nftables table berth owns for NAT and published ports.
    #[arg(long, default_value = "berth")]
    nft_table: String,
    /// Registry reachable over plain HTTP or without certificate checks
    /// (`host[:port]` or a CIDR); loopback registries always are. Repeatable.
    #[arg(long = "insecure-registry")]
    insecure_registries: Vec<String>,
    /// Extra CA certificates (PEM) trusted for registries.
    #[arg(long)]
    registry_ca_file: Option<PathBuf>,
    /// Log filter (error, warn, info, debug, trace).
    #[arg(long, default_value = "info")]
    log_level: String,
}

fn daemon(args: Vec<String>) -> i32 {
    let a =
        match DaemonArgs::try_parse_from(std::iter::once("berth daemon".to_string()).chain(args)) {
            Ok(a) => a,
            Err(e) => {
                let _ = e.print();
                return if e.use_stderr() { 125 } else { 0 };
            }
        };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&a.log_level)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let Some(socket) = a.host.strip_prefix("unix://").map(PathBuf::from) else {
        eprintln!(
            "berth daemon: only unix:// hosts are supported, got {}",
            a.host
        );
        return 1;
    };
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("berth daemon: cannot find own executable: {e}");
            return 1;
        }
    };
    let cfg = engine::EngineConfig {
        root: a.root,
        exec_root: a.exec_root,
        berth_exe: exe,
        default_runtime: a.default_runtime,
        cgroup_parent: a.cgroup_parent,
        network: if a.bridge == "none" {
            None
        } else {
            Some(engine::NetworkSettings {
                bridge: a.bridge,
                nft_table: a.nft_table,
                default_subnet: a.default_subnet,
            })
        },
        registry: registry_client::RegistryConfig {
            insecure_registries: a.insecure_registries,
            ca_file: a.registry_ca_file,
            ..Default::default()
        },
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth daemon: {e}");
            return 1;
        }
    };
    rt.block_on(async move {
        let engine = match engine::Engine::open(cfg).await {
            Ok(e) => e,
            Err(e) => {
                eprintln!("berth daemon: {e}");
                return 1;
            }
        };
        // Builds interrupted by a crash: their containers, mounts and contexts go.
        docker_api::remove_build_leftovers(&engine.cfg.root);
        for c in engine.list() {
            let is_build = c
                .config
                .labels
                .as_ref()
                .is_some_and(|l| l.contains_key("org.berth.build"));
            if is_build {
                if let Err(e) = engine.remove(&c.id, true, true).await {
                    tracing::warn!(container = %c.id, error = %e, "cannot remove a build container");
                }
            }
        }
        tracing::info!(socket = %socket.display(), "serving the Docker Engine API");
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("berth daemon: {e}");
                return 1;
            }
        };
        let serve = docker_api::serve(engine, &socket);
        tokio::select! {
            r = serve => {
                if let Err(e) = r {
                    eprintln!("berth daemon: {}: {e}", socket.display());
                    return 1;
                }
                0
            }
            _ = term.recv() => { tracing::info!("terminating; containers keep running"); 0 }
            _ = tokio::signal::ctrl_c() => { tracing::info!("interrupted; containers keep running"); 0 }
        }
    })
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(|s| s.as_str()) {
        Some("daemon") => {
            args.remove(0);
            daemon(args)
        }
        Some("shim") => match args.get(1) {
            Some(p) => container_shim::server::main(std::path::Path::new(p)),
            None => {
                eprintln!("usage: berth shim CONFIG");
                2
            }
        },
        Some("runtime") => {
            let rest = std::env::args_os().skip(2).collect();
            oci_runtime::main(rest)
        }
        _ => engine_cli::main(args),
    };
    std::process::exit(code);
}
