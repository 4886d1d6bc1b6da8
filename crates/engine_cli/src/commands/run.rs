//! `run` and `create`: flag → container config translation, image pull on
//! a missing image, and the attach → wait → start → resize sequence.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HealthConfig, HostConfig,
    HostConfigCgroupnsModeEnum, HostConfigIsolationEnum, HostConfigLogConfig, NetworkingConfig,
    RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{AttachContainerOptions, CreateContainerOptions};
use http_body_util::BodyExt;
use hyper::Method;
use tokio::sync::oneshot;

use super::image::pull_image;
use super::Ctx;
use crate::cli::BIN;
use crate::error::{CliError, CliResult};
use crate::flags::Parsed;
use crate::format::json::Value;
use crate::opts;
use crate::reference::Reference;
use crate::streams::{self, write_stderr, write_stdout, StreamSpec};
use crate::term::{self, RawGuard};

/// Everything needed to create a container.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    /// The JSON body of `POST /containers/create`.
    pub body: ContainerCreateBody,
    /// `?name=`.
    pub name: Option<String>,
    /// `?platform=`.
    pub platform: String,
    /// `--pull` policy.
    pub pull: String,
    /// `-q`: no pull output.
    pub quiet: bool,
    /// `--cidfile`.
    pub cidfile: Option<String>,
}

fn some_if<T>(cond: bool, v: T) -> Option<T> {
    cond.then_some(v)
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    some_if(!v.is_empty(), v)
}

/// Like Go's `filepath.Abs` + `Clean` for a relative host path.
pub fn abs_path(p: &str, cwd: &Path) -> String {
    let joined = if Path::new(p).is_absolute() {
        PathBuf::from(p)
    } else {
        cwd.join(p)
    };
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out.to_string_lossy().into_owned()
}

fn kv_map(values: &[String], what: &str) -> Result<HashMap<String, String>, String> {
    let mut m = HashMap::new();
    for v in values {
        match v.split_once('=') {
            Some((k, val)) => {
                m.insert(k.to_string(), val.to_string());
            }
            None if what.is_empty() => {
                m.insert(v.clone(), String::new());
            }
            None => return Err(format!("{what}: {v}")),
        }
    }
    Ok(m)
}

fn throttles(
    p: &Parsed,
    flag: &str,
    parse: fn(&str) -> Result<bollard::models::ThrottleDevice, String>,
) -> Result<Option<Vec<bollard::models::ThrottleDevice>>, String> {
    let v: Vec<_> = p
        .all(flag)
        .iter()
        .map(|d| parse(d))
        .collect::<Result<_, _>>()?;
    Ok(non_empty(v))
}

fn validate_ns_mode(flag: &str, kind: &str, value: &str, extra: &[&str]) -> Result<(), String> {
    let ok = value.is_empty()
        || value == "host"
        || extra.contains(&value)
        || (extra.contains(&"container:")
            && value
                .strip_prefix("container:")
                .is_some_and(|c| !c.is_empty()));
    if ok {
        Ok(())
    } else {
        Err(format!("--{flag}: invalid {kind} mode"))
    }
}

/// Processes `--security-opt`: reads seccomp profile files like docker does.
fn security_opts(values: &[String], host: &mut HostConfig) -> Result<Option<Vec<String>>, String> {
    let mut out = Vec::new();
    for opt in values {
        let (k, v) = match opt.split_once('=') {
            Some(kv) => kv,
            None => match opt.split_once(':') {
                Some(kv) if opt != "no-new-privileges" => kv,
                _ => {
                    out.push(opt.clone());
                    continue;
                }
            },
        };
        match k {
            "seccomp" if v != "unconfined" && v != "builtin" => {
                let content = std::fs::read(v).map_err(|e| {
                    format!(
                        "opening seccomp profile ({v}) failed: open {v}: {}",
                        opts::io_msg(&e)
                    )
                })?;
                let parsed: serde_json::Value = serde_json::from_slice(&content).map_err(|e| {
                    format!("compacting json for seccomp profile ({v}) failed: {e}")
                })?;
                out.push(format!("seccomp={parsed}"));
            }
            "systempaths" if v == "unconfined" => {
                host.masked_paths = Some(Vec::new());
                host.readonly_paths = Some(Vec::new());
            }
            _ => out.push(format!("{k}={v}")),
        }
    }
    Ok(non_empty(out))
}

fn healthcheck(p: &Parsed) -> Result<Option<HealthConfig>, String> {
    let any = [
        "health-cmd",
        "health-interval",
        "health-timeout",
        "health-start-period",
        "health-start-interval",
        "health-retries",
    ]
    .iter()
    .any(|f| p.changed(f));
    if p.bool("no-healthcheck") {
        if any {
            return Err("--no-healthcheck conflicts with --health-* options".into());
        }
        return Ok(Some(HealthConfig {
            test: Some(vec!["NONE".into()]),
            ..Default::default()
        }));
    }
    if !any {
        return Ok(None);
    }
    let dur = |flag: &str| -> Result<Option<i64>, String> {
        match p.last(flag) {
            None => Ok(None),
            Some(v) => {
                let n = opts::parse_go_duration(v)?;
                if n < 0 {
                    return Err(format!("--{flag} cannot be negative"));
                }
                Ok(Some(n))
            }
        }
    };
    let retries = p.int("health-retries");
    if retries.is_some_and(|r| r < 0) {
        return Err("--health-retries cannot be negative".into());
    }
    let test = p
        .last("health-cmd")
        .filter(|c| !c.is_empty())
        .map(|c| vec!["CMD-SHELL".to_string(), c.to_string()]);
    Ok(Some(HealthConfig {
        test,
        interval: dur("health-interval")?,
        timeout: dur("health-timeout")?,
        start_period: dur("health-start-period")?,
        start_interval: dur("health-start-interval")?,
        retries,
    }))
}

/// Translates parsed `run`/`create` flags into a create request.
/// `detached` is `run -d`; `console` is the local terminal size (rows, cols).
pub fn build(
    p: &Parsed,
    detached: bool,
    console: (u16, u16),
    cwd: &Path,
) -> Result<CreateRequest, String> {
    let image = p.args.first().cloned().unwrap_or_default();
    let cmd = non_empty(p.args.iter().skip(1).cloned().collect());

    let attach: Vec<String> = p
        .all("attach")
        .iter()
        .map(|a| a.to_ascii_lowercase())
        .collect();
    if detached && !attach.is_empty() {
        return Err("conflicting options: cannot specify both --attach and --detach".into());
    }
    let interactive = p.bool("interactive");
    let mut attach_stdin = attach.iter().any(|a| a == "stdin") || interactive;
    let mut attach_stdout = attach.iter().any(|a| a == "stdout");
    let mut attach_stderr = attach.iter().any(|a| a == "stderr");
    if attach.is_empty() {
        attach_stdout = true;
        attach_stderr = true;
    }
    let mut stdin_once = interactive && attach_stdin;
    if detached {
        attach_stdin = false;
        attach_stdout = false;
        attach_stderr = false;
        stdin_once = false;
    }

    let envs: Vec<String> = p
        .all("env")
        .iter()
        .map(|e| opts::validate_env(e))
        .collect::<Result<_, _>>()?;
    let env = opts::read_env(&p.all("env-file"), &envs)?;
    let labels = opts::read_labels(&p.all("label-file"), &p.all("label"))?;

    let ports = opts::parse_port_specs(&p.all("publish"))?;
    let mut exposed: Vec<String> = ports.exposed.keys().cloned().collect();
    for e in opts::parse_expose(&p.all("expose"))? {
        if !exposed.contains(&e) {
            exposed.push(e);
        }
    }

    let mut binds = Vec::new();
    let mut volumes = Vec::new();
    for spec in p.all("volume") {
        let v = opts::parse_volume(&spec)?;
        if v.source.is_empty() {
            volumes.push(v.target);
            continue;
        }
        if v.is_bind && v.source.starts_with('.') {
            let rest = spec.split_once(':').map(|(_, r)| r).unwrap_or("");
            binds.push(format!("{}:{rest}", abs_path(&v.source, cwd)));
        } else {
            binds.push(spec);
        }
    }
    let mounts: Vec<_> = p
        .all("mount")
        .iter()
        .map(|m| opts::parse_mount(m))
        .collect::<Result<_, _>>()?;
    let tmpfs: HashMap<String, String> = p
        .all("tmpfs")
        .iter()
        .map(|t| opts::parse_tmpfs(t))
        .collect();

    let (policy, retries) = opts::parse_restart(p.str_or("restart", "no"))?;
    let auto_remove = p.bool("rm");
    if auto_remove && !matches!(policy.as_str(), "" | "no") {
        return Err("conflicting options: cannot specify both --restart and --rm".into());
    }
    let policy_enum: RestartPolicyNameEnum = if policy.is_empty() {
        RestartPolicyNameEnum::NO
    } else {
        policy
            .parse()
            .map_err(|_| format!("invalid restart policy: {policy}"))?
    };

    let int = |f: &str| p.int(f);
    let bytes =
        |f: &str| -> Result<Option<i64>, String> { p.last(f).map(opts::ram_in_bytes).transpose() };

    let cgroupns = match p.str_or("cgroupns", "") {
        "" => None,
        "private" => Some(HostConfigCgroupnsModeEnum::PRIVATE),
        "host" => Some(HostConfigCgroupnsModeEnum::HOST),
        _ => return Err("--cgroupns: invalid CGROUP mode".into()),
    };
    let ipc = p.str_or("ipc", "");
    validate_ns_mode(
        "ipc",
        "IPC",
        ipc,
        &["none", "private", "shareable", "container:"],
    )?;
    let pid = p.str_or("pid", "");
    validate_ns_mode("pid", "PID", pid, &["container:"])?;
    let uts = p.str_or("uts", "");
    validate_ns_mode("uts", "UTS", uts, &[])?;
    let userns = p.str_or("userns", "");
    validate_ns_mode("userns", "USER", userns, &[])?;

    let log_driver = p.str_or("log-driver", "").to_string();
    let log_opts = kv_map(
        &p.all("log-opt"),
        "invalid key/value pair format in logging opts",
    )?;
    if log_driver == "none" && !log_opts.is_empty() {
        return Err("invalid logging opts for driver none".into());
    }

    let extra_hosts: Vec<String> = p
        .all("add-host")
        .iter()
        .map(|h| opts::validate_extra_host(h))
        .collect::<Result<_, _>>()?;
    let devices: Vec<_> = p
        .all("device")
        .iter()
        .map(|d| opts::parse_device(d))
        .collect::<Result<_, _>>()?;
    let ulimits: Vec<_> = p
        .all("ulimit")
        .iter()
        .map(|u| opts::parse_ulimit(u))
        .collect::<Result<_, _>>()?;

    let network = p
        .last("network")
        .or_else(|| p.last("net"))
        .unwrap_or("default")
        .to_string();
    let mut aliases = p.all("network-alias");
    aliases.extend(p.all("net-alias"));
    let ip = p.str_or("ip", "").to_string();
    let ip6 = p.str_or("ip6", "").to_string();
    let endpoint = EndpointSettings {
        aliases: non_empty(aliases),
        ipam_config: some_if(
            !ip.is_empty() || !ip6.is_empty() || p.changed("link-local-ip"),
            EndpointIpamConfig {
                ipv4_address: some_if(!ip.is_empty(), ip),
                ipv6_address: some_if(!ip6.is_empty(), ip6),
                link_local_ips: non_empty(p.all("link-local-ip")),
            },
        ),
        mac_address: p.last("mac-address").map(str::to_string),
        ..Default::default()
    };

    let entrypoint = match p.last("entrypoint") {
        Some("") => Some(vec![String::new()]),
        Some(e) => Some(vec![e.to_string()]),
        None => None,
    };

    let mut host = HostConfig {
        binds: non_empty(binds),
        container_id_file: p.last("cidfile").map(str::to_string),
        log_config: Some(HostConfigLogConfig {
            typ: Some(log_driver),
            config: Some(log_opts),
        }),
        network_mode: Some(network.clone()),
        port_bindings: Some(
            ports
                .bindings
                .into_iter()
                .map(|(k, v)| (k, Some(v)))
                .collect(),
        ),
        restart_policy: Some(RestartPolicy {
            name: Some(policy_enum),
            maximum_retry_count: Some(retries),
        }),
        auto_remove: Some(auto_remove),
        volume_driver: p.last("volume-driver").map(str::to_string),
        volumes_from: non_empty(p.all("volumes-from")),
        mounts: non_empty(mounts),
        console_size: Some(vec![console.0 as usize, console.1 as usize]),
        annotations: some_if(p.changed("annotation"), kv_map(&p.all("annotation"), "")?),
        cap_add: non_empty(p.all("cap-add")),
        cap_drop: non_empty(p.all("cap-drop")),
        cgroupns_mode: cgroupns,
        dns: Some(p.all("dns")),
        dns_options: Some(p.all("dns-option")),
        dns_search: Some(p.all("dns-search")),
        extra_hosts: non_empty(extra_hosts),
        group_add: non_empty(p.all("group-add")),
        ipc_mode: some_if(!ipc.is_empty(), ipc.to_string()),
        links: non_empty(p.all("link")),
        oom_score_adj: int("oom-score-adj"),
        pid_mode: some_if(!pid.is_empty(), pid.to_string()),
        privileged: Some(p.bool("privileged")),
        publish_all_ports: Some(p.bool("publish-all")),
        readonly_rootfs: Some(p.bool("read-only")),
        storage_opt: some_if(
            p.changed("storage-opt"),
            kv_map(&p.all("storage-opt"), "invalid storage option")?,
        ),
        tmpfs: some_if(!tmpfs.is_empty(), tmpfs),
        uts_mode: some_if(!uts.is_empty(), uts.to_string()),
        userns_mode: some_if(!userns.is_empty(), userns.to_string()),
        shm_size: bytes("shm-size")?,
        sysctls: some_if(p.changed("sysctl"), kv_map(&p.all("sysctl"), "")?),
        runtime: p.last("runtime").map(str::to_string),
        cpu_shares: int("cpu-shares"),
        memory: bytes("memory")?,
        cgroup_parent: p.last("cgroup-parent").map(str::to_string),
        blkio_weight: p.last("blkio-weight").and_then(|v| v.parse::<u16>().ok()),
        blkio_weight_device: non_empty(
            p.all("blkio-weight-device")
                .iter()
                .map(|d| opts::parse_weight_device(d))
                .collect::<Result<_, _>>()?,
        ),
        blkio_device_read_bps: throttles(p, "device-read-bps", opts::parse_throttle_bps)?,
        blkio_device_write_bps: throttles(p, "device-write-bps", opts::parse_throttle_bps)?,
        blkio_device_read_iops: throttles(p, "device-read-iops", opts::parse_throttle_iops)?,
        blkio_device_write_iops: throttles(p, "device-write-iops", opts::parse_throttle_iops)?,
        cpu_count: int("cpu-count"),
        cpu_percent: int("cpu-percent"),
        io_maximum_bandwidth: bytes("io-maxbandwidth")?,
        io_maximum_iops: p.last("io-maxiops").and_then(|v| v.parse::<i64>().ok()),
        isolation: match p.str_or("isolation", "") {
            "" => None,
            "default" => Some(HostConfigIsolationEnum::DEFAULT),
            "process" => Some(HostConfigIsolationEnum::PROCESS),
            _ => Some(HostConfigIsolationEnum::HYPERV),
        },
        cpu_period: int("cpu-period"),
        cpu_quota: int("cpu-quota"),
        cpu_realtime_period: int("cpu-rt-period"),
        cpu_realtime_runtime: int("cpu-rt-runtime"),
        cpuset_cpus: p.last("cpuset-cpus").map(str::to_string),
        cpuset_mems: p.last("cpuset-mems").map(str::to_string),
        devices: non_empty(devices),
        device_cgroup_rules: non_empty(p.all("device-cgroup-rule")),
        memory_reservation: bytes("memory-reservation")?,
        memory_swap: p
            .last("memory-swap")
            .map(opts::mem_swap_bytes)
            .transpose()?,
        memory_swappiness: Some(int("memory-swappiness").unwrap_or(-1)),
        nano_cpus: p.last("cpus").map(opts::parse_cpus).transpose()?,
        oom_kill_disable: some_if(p.changed("oom-kill-disable"), p.bool("oom-kill-disable")),
        init: some_if(p.changed("init"), p.bool("init")),
        pids_limit: int("pids-limit"),
        ulimits: non_empty(ulimits),
        ..Default::default()
    };
    host.security_opt = security_opts(&p.all("security-opt"), &mut host)?;

    let body = ContainerCreateBody {
        hostname: p.last("hostname").map(str::to_string),
        domainname: p.last("domainname").map(str::to_string),
        user: p.last("user").map(str::to_string),
        attach_stdin: Some(attach_stdin),
        attach_stdout: Some(attach_stdout),
        attach_stderr: Some(attach_stderr),
        exposed_ports: non_empty(exposed),
        tty: Some(p.bool("tty")),
        open_stdin: Some(interactive),
        stdin_once: Some(stdin_once),
        env: non_empty(env),
        cmd,
        healthcheck: healthcheck(p)?,
        image: Some(image),
        volumes: non_empty(volumes),
        working_dir: p.last("workdir").map(str::to_string),
        entrypoint,
        labels: Some(labels),
        stop_signal: p.last("stop-signal").map(str::to_string),
        stop_timeout: int("stop-timeout"),
        host_config: Some(host),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(network, endpoint)])),
        }),
        ..Default::default()
    };
    Ok(CreateRequest {
        body,
        name: p.last("name").map(str::to_string),
        platform: p.str_or("platform", "").to_string(),
        pull: p.str_or("pull", "missing").to_string(),
        quiet: p.bool("quiet"),
        cidfile: p.last("cidfile").map(str::to_string),
    })
}

/// Exit code docker derives from a `run` error message.
pub fn run_exit_code(msg: &str) -> i32 {
    if msg.contains("executable file not found")
        || msg.contains("no such file or directory")
        || msg.contains("system cannot find the file specified")
    {
        127
    } else if msg.contains("permission denied") || msg.contains("is a directory") {
        126
    } else {
        125
    }
}

async fn create_once(
    ctx: &Ctx,
    req: &CreateRequest,
) -> CliResult<bollard::models::ContainerCreateResponse> {
    let docker = ctx.client.api().await?;
    let opts = CreateContainerOptions {
        name: req.name.clone(),
        platform: req.platform.clone(),
    };
    Ok(docker
        .create_container(Some(opts), req.body.clone())
        .await?)
}

/// Creates the container, pulling the image first or on a 404 as `--pull` says.
pub async fn create_container(ctx: &Ctx, req: &CreateRequest) -> CliResult<String> {
    let image = req.body.image.clone().unwrap_or_default();
    if let Some(path) = &req.cidfile {
        if Path::new(path).exists() {
            return Err(CliError::Other(format!(
                "container ID file found, make sure the other container isn't running or delete {path}"
            )));
        }
        std::fs::File::create(path)
            .map_err(|e| CliError::Other(format!("failed to create the container ID file: {e}")))?;
    }
    let result = async {
        if req.pull == "always" {
            pull_image(ctx, &image, true, req.quiet).await?;
        }
        match create_once(ctx, req).await {
            Ok(r) => Ok(r),
            Err(e) if e.is_not_found() && req.pull == "missing" => {
                let named = match Reference::parse(&image) {
                    Ok(r) => r,
                    Err(_) => return Err(e),
                };
                if !req.quiet {
                    write_stderr(
                        format!(
                            "Unable to find image '{}' locally\n",
                            named.tag_name_only().familiar_string()
                        )
                        .as_bytes(),
                    );
                }
                pull_image(ctx, &image, true, req.quiet).await?;
                create_once(ctx, req).await
            }
            Err(e) => Err(e),
        }
    }
    .await;
    match result {
        Ok(resp) => {
            for w in &resp.warnings {
                write_stderr(format!("WARNING: {w}\n").as_bytes());
            }
            if let Some(path) = &req.cidfile {
                std::fs::write(path, &resp.id).map_err(|e| {
                    CliError::Other(format!("failed to write the container ID to the file: {e}"))
                })?;
            }
            Ok(resp.id)
        }
        Err(e) => {
            if let Some(path) = &req.cidfile {
                let _ = std::fs::remove_file(path);
            }
            Err(e)
        }
    }
}

/// Reads a `/wait` response body into an exit status (125 on errors).
async fn wait_status(resp: hyper::Response<hyper::body::Incoming>) -> i64 {
    let body = match resp.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            write_stderr(format!("error waiting for container: {e}\n").as_bytes());
            return 125;
        }
    };
    let text = String::from_utf8_lossy(&body);
    let v = match Value::parse(text.trim()) {
        Ok(v) => v,
        Err(e) => {
            write_stderr(format!("error waiting for container: {e}\n").as_bytes());
            return 125;
        }
    };
    if let Some(msg) = v
        .path(&["Error", "Message"])
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
    {
        write_stderr(format!("Error waiting for container: {msg}\n").as_bytes());
        return 125;
    }
    v.get("StatusCode").and_then(Value::as_i64).unwrap_or(125)
}

/// Sends `POST /containers/{id}/wait` and returns once the response headers
/// arrived (docker does this before `start` so no exit can be missed); the
/// receiver yields the exit status.
pub async fn wait_exit(
    ctx: &Ctx,
    id: &str,
    condition: Option<&str>,
) -> CliResult<oneshot::Receiver<i64>> {
    let query: Vec<(&str, String)> = condition
        .map(|c| ("condition", c.to_string()))
        .into_iter()
        .collect();
    let resp = ctx
        .client
        .raw(Method::POST, &format!("/containers/{id}/wait"), &query)
        .await?;
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let _ = tx.send(wait_status(resp).await);
    });
    Ok(rx)
}

/// `run` (and `create` when `is_run` is false).
pub async fn run(ctx: &Ctx, p: &Parsed, is_run: bool) -> CliResult<()> {
    let cmd = if is_run { "run" } else { "create" };
    let detached = is_run && p.bool("detach");
    let console = if term::is_tty(term::STDOUT) {
        term::size(term::STDOUT).unwrap_or((0, 0))
    } else {
        (0, 0)
    };
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let req = build(p, detached, console, &cwd)
        .map_err(|m| CliError::Other(m).with_help(BIN, cmd, 125))?;
    let cfg = &req.body;
    let tty = cfg.tty.unwrap_or(false);
    let spec = StreamSpec {
        tty,
        stdin: cfg.attach_stdin.unwrap_or(false),
        stdout: cfg.attach_stdout.unwrap_or(false),
        stderr: cfg.attach_stderr.unwrap_or(false),
    };
    if is_run && !detached && tty && spec.stdin && !term::is_tty(term::STDIN) {
        return Err(CliError::Other("the input device is not a TTY".into()));
    }
    // `run` derives 126/127 from the message (docker's toStatusError);
    // `create` always fails with 125.
    let run_err = |e: CliError| {
        let code = if is_run {
            run_exit_code(&e.to_string())
        } else {
            125
        };
        e.with_help(BIN, cmd, code)
    };
    let id = create_container(ctx, &req).await.map_err(run_err)?;
    if !is_run {
        write_stdout(format!("{id}\n").as_bytes());
        return Ok(());
    }
    let docker = ctx.client.docker().await?;
    let auto_remove = cfg
        .host_config
        .as_ref()
        .and_then(|h| h.auto_remove)
        .unwrap_or(false);
    if p.bool_or("sig-proxy", true) && !tty && !detached {
        streams::spawn_signal_proxy(docker.clone(), id.clone());
    }
    let attach = spec.stdin || spec.stdout || spec.stderr;

    let mut session = None;
    let mut cancel = None;
    if attach {
        let opts = AttachContainerOptions {
            stream: true,
            stdin: spec.stdin,
            stdout: spec.stdout,
            stderr: spec.stderr,
            ..Default::default()
        };
        let hijack = docker.attach_container(&id, Some(opts)).await?;
        let raw = if tty && spec.stdin && term::is_tty(term::STDIN) {
            match RawGuard::enable(term::STDIN) {
                Ok(g) => Some(Arc::new(g)),
                Err(e) => {
                    return Err(CliError::Other(format!(
                        "unable to set IO streams as raw terminal: {e}"
                    )))
                }
            }
        } else {
            None
        };
        let (tx, rx) = oneshot::channel();
        cancel = Some(tx);
        session = Some(tokio::spawn(streams::run_session(
            hijack.output,
            hijack.input,
            spec,
            raw,
            Some(rx),
        )));
    }

    let condition = if auto_remove { "removed" } else { "next-exit" };
    let status_rx = match wait_exit(ctx, &id, Some(condition)).await {
        Ok(rx) => rx,
        Err(e) => {
            write_stderr(format!("error waiting for container: {e}\n").as_bytes());
            let (tx, rx) = oneshot::channel();
            let _ = tx.send(125);
            rx
        }
    };

    if !attach {
        write_stdout(format!("{id}\n").as_bytes());
    }
    if let Err(e) = docker.start_container(&id, None).await {
        if let (Some(c), Some(s)) = (cancel.take(), session.take()) {
            let _ = c.send(());
            let _ = s.await;
        }
        if auto_remove {
            let _ = status_rx.await;
        }
        return Err(run_err(e.into()));
    }
    let Some(mut session) = session else {
        return Ok(());
    };
    if tty && term::is_tty(term::STDOUT) {
        streams::spawn_resize_monitor(docker.clone(), id.clone(), false);
    }
    let mut status_rx = status_rx;
    let status = tokio::select! {
        res = &mut session => {
            match res {
                Ok(Err(e)) => return Err(e),
                Err(e) => return Err(CliError::Other(format!("attach failed: {e}"))),
                Ok(Ok(())) => {}
            }
            status_rx.await.unwrap_or(125)
        }
        st = &mut status_rx => {
            let st = st.unwrap_or(125);
            if !spec.stdout && !spec.stderr {
                if let Some(c) = cancel.take() {
                    let _ = c.send(());
                }
            }
            let _ = session.await;
            st
        }
    };
    if status != 0 {
        return Err(CliError::exit(status as i32));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli;
    use crate::flags;
    use bollard::models::{MountType, PortBinding};

    fn build_from(args: &[&str], detached: bool) -> Result<CreateRequest, String> {
        let spec = cli::command("run").unwrap();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let p = flags::parse(&spec, &args).map_err(|e| format!("{e:?}"))?;
        build(&p, detached, (0, 0), Path::new("/work"))
    }

    #[test]
    fn simple_run_matches_docker_body() {
        let r = build_from(&["--rm", "busybox", "echo", "hello"], false).unwrap();
        let b = &r.body;
        assert_eq!(b.image.as_deref(), Some("busybox"));
        assert_eq!(b.cmd, Some(vec!["echo".into(), "hello".into()]));
        assert_eq!(
            (b.attach_stdin, b.attach_stdout, b.attach_stderr),
            (Some(false), Some(true), Some(true))
        );
        assert_eq!(
            (b.tty, b.open_stdin, b.stdin_once),
            (Some(false), Some(false), Some(false))
        );
        assert_eq!(b.env, None);
        let h = b.host_config.as_ref().unwrap();
        assert_eq!(h.auto_remove, Some(true));
        assert_eq!(h.network_mode.as_deref(), Some("default"));
        assert_eq!(h.memory_swappiness, Some(-1));
        assert_eq!(h.console_size, Some(vec![0, 0]));
        assert_eq!(
            h.restart_policy.as_ref().unwrap().name,
            Some(RestartPolicyNameEnum::NO)
        );
        let j = serde_json::to_value(b).unwrap();
        assert!(j["NetworkingConfig"]["EndpointsConfig"]
            .get("default")
            .is_some());
        assert_eq!(r.pull, "missing");
        assert_eq!(r.name, None);
    }

    #[test]
    fn interactive_tty() {
        let r = build_from(&["-it", "--rm", "busybox", "sh"], false).unwrap();
        let b = &r.body;
        assert_eq!(
            (b.attach_stdin, b.tty, b.open_stdin, b.stdin_once),
            (Some(true), Some(true), Some(true), Some(true))
        );
    }

    #[test]
    fn detached_with_resources() {
        let r = build_from(
            &[
                "-d",
                "--name",
                "tr1",
                "-p",
                "8000:80",
                "-e",
                "A=B",
                "-v",
                "/tmp:/host:ro",
                "--memory",
                "64m",
                "--cpus",
                "0.5",
                "busybox",
                "httpd",
                "-f",
                "-p",
                "80",
            ],
            true,
        )
        .unwrap();
        let b = &r.body;
        assert_eq!(r.name.as_deref(), Some("tr1"));
        assert_eq!(
            (b.attach_stdin, b.attach_stdout, b.attach_stderr),
            (Some(false), Some(false), Some(false))
        );
        assert_eq!(b.exposed_ports, Some(vec!["80/tcp".into()]));
        assert_eq!(b.env, Some(vec!["A=B".into()]));
        assert_eq!(
            b.cmd,
            Some(vec!["httpd".into(), "-f".into(), "-p".into(), "80".into()])
        );
        let h = b.host_config.as_ref().unwrap();
        assert_eq!(h.binds, Some(vec!["/tmp:/host:ro".into()]));
        assert_eq!(h.memory, Some(67108864));
        assert_eq!(h.nano_cpus, Some(500_000_000));
        assert_eq!(
            h.port_bindings.as_ref().unwrap()["80/tcp"],
            Some(vec![PortBinding {
                host_ip: Some(String::new()),
                host_port: Some("8000".into())
            }])
        );
        let j = serde_json::to_value(b).unwrap();
        assert_eq!(j["ExposedPorts"], serde_json::json!({"80/tcp": {}}));
        assert_eq!(
            j["HostConfig"]["PortBindings"]["80/tcp"][0]["HostPort"],
            "8000"
        );
    }

    #[test]
    fn volumes_mounts_and_misc() {
        let r = build_from(
            &[
                "-v",
                "./data:/data:rw",
                "-v",
                "/anon",
                "-v",
                "named:/n",
                "--mount",
                "type=tmpfs,dst=/run",
                "--tmpfs",
                "/tmp:size=1m",
                "--restart",
                "on-failure:3",
                "-u",
                "1000:1000",
                "-w",
                "/app",
                "--entrypoint",
                "",
                "--init",
                "--privileged",
                "--read-only",
                "--cap-add",
                "NET_ADMIN",
                "--cap-drop",
                "ALL",
                "--security-opt",
                "no-new-privileges",
                "--ulimit",
                "nofile=10:20",
                "--stop-signal",
                "SIGINT",
                "--stop-timeout",
                "5",
                "--runtime",
                "runc",
                "--add-host",
                "db=10.0.0.1",
                "--dns",
                "8.8.8.8",
                "--hostname",
                "box",
                "-l",
                "a=b",
                "--pids-limit",
                "50",
                "--memory-swap",
                "-1",
                "--cpu-shares",
                "512",
                "--cpuset-cpus",
                "0-1",
                "--network",
                "host",
                "-P",
                "--expose",
                "9000",
                "--health-cmd",
                "true",
                "--health-interval",
                "5s",
                "img",
            ],
            false,
        )
        .unwrap();
        let b = &r.body;
        let h = b.host_config.as_ref().unwrap();
        assert_eq!(
            h.binds,
            Some(vec!["/work/data:/data:rw".into(), "named:/n".into()])
        );
        assert_eq!(b.volumes, Some(vec!["/anon".into()]));
        assert_eq!(h.mounts.as_ref().unwrap()[0].typ, Some(MountType::TMPFS));
        assert_eq!(h.tmpfs.as_ref().unwrap()["/tmp"], "size=1m");
        let rp = h.restart_policy.as_ref().unwrap();
        assert_eq!(
            (rp.name, rp.maximum_retry_count),
            (Some(RestartPolicyNameEnum::ON_FAILURE), Some(3))
        );
        assert_eq!(b.user.as_deref(), Some("1000:1000"));
        assert_eq!(b.working_dir.as_deref(), Some("/app"));
        assert_eq!(b.entrypoint, Some(vec![String::new()]));
        assert_eq!(h.init, Some(true));
        assert_eq!(h.privileged, Some(true));
        assert_eq!(h.readonly_rootfs, Some(true));
        assert_eq!(h.cap_add, Some(vec!["NET_ADMIN".into()]));
        assert_eq!(h.cap_drop, Some(vec!["ALL".into()]));
        assert_eq!(h.security_opt, Some(vec!["no-new-privileges".into()]));
        assert_eq!(h.ulimits.as_ref().unwrap()[0].hard, Some(20));
        assert_eq!(b.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(b.stop_timeout, Some(5));
        assert_eq!(h.runtime.as_deref(), Some("runc"));
        assert_eq!(h.extra_hosts, Some(vec!["db:10.0.0.1".into()]));
        assert_eq!(h.dns, Some(vec!["8.8.8.8".into()]));
        assert_eq!(b.hostname.as_deref(), Some("box"));
        assert_eq!(b.labels.as_ref().unwrap()["a"], "b");
        assert_eq!(h.pids_limit, Some(50));
        assert_eq!(h.memory_swap, Some(-1));
        assert_eq!(h.cpu_shares, Some(512));
        assert_eq!(h.cpuset_cpus.as_deref(), Some("0-1"));
        assert_eq!(h.network_mode.as_deref(), Some("host"));
        assert_eq!(h.publish_all_ports, Some(true));
        assert_eq!(b.exposed_ports, Some(vec!["9000/tcp".into()]));
        let hc = b.healthcheck.as_ref().unwrap();
        assert_eq!(hc.test, Some(vec!["CMD-SHELL".into(), "true".into()]));
        assert_eq!(hc.interval, Some(5_000_000_000));
        let j = serde_json::to_value(b).unwrap();
        assert_eq!(j["Volumes"], serde_json::json!({"/anon": {}}));
        assert!(j["NetworkingConfig"]["EndpointsConfig"]
            .get("host")
            .is_some());
    }

    #[test]
    fn build_errors() {
        let err = |args: &[&str]| build_from(args, false).unwrap_err();
        assert_eq!(
            err(&["--rm", "--restart", "always", "img"]),
            "conflicting options: cannot specify both --restart and --rm"
        );
        assert_eq!(err(&["-p", "abc", "img"]), "invalid containerPort: abc");
        assert_eq!(
            err(&["-v", "a::b", "img"]),
            "invalid spec: a::b: empty section between colons"
        );
        assert!(err(&["--restart", "sometimes", "img"]).contains("unknown policy"));
        assert_eq!(err(&["--pid", "bogus", "img"]), "--pid: invalid PID mode");
        assert!(err(&["--env-file", "/nonexistent-berth-env", "img"])
            .contains("no such file or directory"));
        assert_eq!(
            build_from(&["-a", "stdout", "img"], true).unwrap_err(),
            "conflicting options: cannot specify both --attach and --detach"
        );
        assert!(err(&["--no-healthcheck", "--health-cmd", "x", "img"]).contains("conflicts"));
    }

    #[test]
    fn attach_flags() {
        let r = build_from(&["-a", "stderr", "img"], false).unwrap();
        let b = &r.body;
        assert_eq!(
            (b.attach_stdin, b.attach_stdout, b.attach_stderr),
            (Some(false), Some(false), Some(true))
        );
    }

    #[test]
    fn exit_codes_from_start_errors() {
        assert_eq!(
            run_exit_code(
                "exec: \"/nonexistent\": stat /nonexistent: no such file or directory: unknown"
            ),
            127
        );
        assert_eq!(
            run_exit_code("exec: \"foo\": executable file not found in $PATH"),
            127
        );
        assert_eq!(run_exit_code("exec /etc: permission denied"), 126);
        assert_eq!(run_exit_code("is a directory"), 126);
        assert_eq!(run_exit_code("No such image: x"), 125);
    }

    #[test]
    fn abs_paths() {
        assert_eq!(abs_path("./data", Path::new("/work")), "/work/data");
        assert_eq!(abs_path("../x/./y", Path::new("/work/a")), "/work/x/y");
        assert_eq!(abs_path("/abs", Path::new("/work")), "/abs");
    }

    #[test]
    fn seccomp_profile_is_inlined() {
        let path =
            std::env::temp_dir().join(format!("berth-t-seccomp-{}.json", std::process::id()));
        struct Cleanup(PathBuf);
        impl Drop for Cleanup {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
        let _guard = Cleanup(path.clone());
        std::fs::write(&path, "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}\n").unwrap();
        let opt = format!("seccomp={}", path.display());
        let r = build_from(
            &[
                "--security-opt",
                &opt,
                "--security-opt",
                "systempaths=unconfined",
                "img",
            ],
            false,
        )
        .unwrap();
        let h = r.body.host_config.unwrap();
        assert_eq!(
            h.security_opt,
            Some(vec!["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}".into()])
        );
        assert_eq!(h.masked_paths, Some(vec![]));
    }
}
