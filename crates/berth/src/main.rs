//! `berth`: one binary, many roles. This file only wires the crates
//! together: the first argument picks the role.
//!
//! - `berth daemon`: the container engine serving the Docker Engine API.
//! - `berth server`: the control plane serving the Kubernetes API.
//! - `berth sim-nodes`: simulated nodes that join a control plane.
//! - `berth shim CONFIG`: the per-container shim (started by the daemon).
//! - `berth runtime ...`: the runc-compatible OCI runtime on libcontainer.
//! - any other verb (`run`, `ps`, `images`, ...): the docker-style CLI.

use std::path::PathBuf;

use clap::Parser;

/// Parses a role's options; on `--help` or an error, prints and returns the exit code.
fn parse_role_args<T: Parser>(name: &str, args: Vec<String>, error_code: i32) -> Result<T, i32> {
    T::try_parse_from(std::iter::once(name.to_string()).chain(args)).map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            error_code
        } else {
            0
        }
    })
}

/// Logs to stderr at the given filter (`info` when it does not parse).
fn init_logging(level: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(level)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
}

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
    let a: DaemonArgs = match parse_role_args("berth daemon", args, 125) {
        Ok(a) => a,
        Err(code) => return code,
    };
    init_logging(&a.log_level);
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

/// Options of `berth server`.
#[derive(Parser, Debug)]
#[command(
    name = "berth server",
    about = "Run the berth control plane (Kubernetes API server)"
)]
struct ServerArgs {
    /// Address to serve the Kubernetes API on (HTTPS).
    #[arg(long, default_value = "0.0.0.0:6443")]
    listen: std::net::SocketAddr,
    /// State directory: embedded store, certificates, tokens.
    #[arg(long, default_value = "/var/lib/berth/server")]
    data_dir: PathBuf,
    /// etcd endpoints (comma-separated http://host:port); the embedded store when absent.
    #[arg(long)]
    datastore_endpoint: Option<String>,
    /// Where the admin kubeconfig is written (mode 0600).
    #[arg(long, default_value = "/etc/berth/admin.kubeconfig")]
    write_kubeconfig: PathBuf,
    /// Seconds between store compactions (history older than one interval is dropped).
    #[arg(long, default_value_t = 300)]
    compaction_interval: u64,
    /// Store revisions every compaction keeps, at least.
    #[arg(long, default_value_t = 1000)]
    compaction_keep: i64,
    /// Extra names or addresses for the server certificate. Repeatable.
    #[arg(long = "tls-san")]
    tls_sans: Vec<String>,
    /// Log filter (error, warn, info, debug, trace).
    #[arg(long, default_value = "info")]
    log_level: String,
}

fn server(args: Vec<String>) -> i32 {
    let a: ServerArgs = match parse_role_args("berth server", args, 2) {
        Ok(a) => a,
        Err(code) => return code,
    };
    init_logging(&a.log_level);
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth server: {e}");
            return 1;
        }
    };
    rt.block_on(async move {
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            eprintln!("berth server: {what}: {e}");
            1
        };
        if let Err(e) = std::fs::create_dir_all(&a.data_dir) {
            return fail(&a.data_dir.display().to_string(), &e);
        }
        let store = match kv_store::open_with_compaction(
            a.datastore_endpoint.as_deref(),
            &a.data_dir,
            std::time::Duration::from_secs(a.compaction_interval.max(1)),
            a.compaction_keep.max(1),
        )
        .await
        {
            Ok(s) => s,
            Err(e) => return fail("opening the store", &e),
        };
        let pki = match cluster_pki::Pki::load_or_create(&a.data_dir.join("pki"), &a.tls_sans) {
            Ok(p) => std::sync::Arc::new(p),
            Err(e) => return fail("certificates", &e),
        };
        let listener = match tokio::net::TcpListener::bind(a.listen).await {
            Ok(l) => l,
            Err(e) => return fail(&format!("listening on {}", a.listen), &e),
        };
        let port = listener.local_addr().map(|l| l.port()).unwrap_or(a.listen.port());
        let host = if a.listen.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            a.listen.ip().to_string()
        };
        let url = format!("https://{host}:{port}");
        if let Some(dir) = a.write_kubeconfig.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(e) = pki.write_admin_kubeconfig(&a.write_kubeconfig, &url) {
            return fail(&a.write_kubeconfig.display().to_string(), &e);
        }
        let state = api_server::ServerState::new(store, pki, format!("{host}:{port}"));
        if let Err(e) = state.bootstrap().await {
            return fail("bootstrapping the cluster", &e);
        }
        tracing::info!(%url, kubeconfig = %a.write_kubeconfig.display(), "serving the Kubernetes API");
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => return fail("signals", &e),
            };
        tokio::select! {
            r = api_server::serve(listener, state) => match r {
                Ok(()) => 0,
                Err(e) => fail("serving", &e),
            },
            _ = term.recv() => 0,
            _ = tokio::signal::ctrl_c() => 0,
        }
    })
}

/// Options of `berth sim-nodes`.
#[derive(Parser, Debug)]
#[command(
    name = "berth sim-nodes",
    about = "Run simulated nodes that join a berth control plane"
)]
struct SimNodesArgs {
    /// Kubeconfig of the cluster to join.
    #[arg(
        long,
        env = "KUBECONFIG",
        default_value = "/etc/berth/admin.kubeconfig"
    )]
    kubeconfig: PathBuf,
    /// Number of nodes.
    #[arg(long, default_value_t = 1)]
    count: u32,
    /// CPU capacity of each node (a quantity: 4, 3500m).
    #[arg(long, default_value = "4")]
    cpu: String,
    /// Memory capacity of each node (a quantity: 8Gi).
    #[arg(long, default_value = "8Gi")]
    memory: String,
    /// Pod capacity of each node.
    #[arg(long, default_value_t = 110)]
    pods: u32,
    /// Node name prefix (nodes are PREFIX1..PREFIXn).
    #[arg(long, default_value = "sim-node-")]
    name_prefix: String,
    /// Delete the nodes and their leases on exit.
    #[arg(long)]
    cleanup: bool,
    /// Log filter (error, warn, info, debug, trace).
    #[arg(long, default_value = "info")]
    log_level: String,
}

fn sim_nodes(args: Vec<String>) -> i32 {
    let a: SimNodesArgs = match parse_role_args("berth sim-nodes", args, 2) {
        Ok(a) => a,
        Err(code) => return code,
    };
    init_logging(&a.log_level);
    let opts = sim_nodes::SimOptions {
        kubeconfig: a.kubeconfig,
        count: a.count,
        cpu: a.cpu,
        memory: a.memory,
        pods_per_node: a.pods,
        name_prefix: a.name_prefix,
        cleanup: a.cleanup,
        ..Default::default()
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth sim-nodes: {e}");
            return 1;
        }
    };
    match rt.block_on(sim_nodes::run(opts)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth sim-nodes: {e}");
            1
        }
    }
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(|s| s.as_str()) {
        Some("daemon") => {
            args.remove(0);
            daemon(args)
        }
        Some("server") => {
            args.remove(0);
            server(args)
        }
        Some("sim-nodes") => {
            args.remove(0);
            sim_nodes(args)
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
