//! `/_ping`, `/version`, `/info` and the built-in networks list.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::Response;
use serde_json::{json, Value};

use crate::{ok_json, ApiResult, AppState, API_VERSION, MIN_API_VERSION};

pub(crate) async fn ping() -> Response {
    let mut r = Response::new(Body::from("OK"));
    let h = r.headers_mut();
    h.insert(
        "cache-control",
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert("pragma", HeaderValue::from_static("no-cache"));
    h.insert(
        "content-type",
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn kernel_version() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| "Linux".into())
}

const VERSION: &str = env!("CARGO_PKG_VERSION");

pub(crate) async fn version() -> ApiResult {
    let details = json!({
        "ApiVersion": API_VERSION,
        "Arch": "amd64",
        "BuildTime": "",
        "Experimental": "false",
        "GitCommit": "",
        "GoVersion": "",
        "KernelVersion": kernel_version(),
        "MinAPIVersion": MIN_API_VERSION,
        "Os": "linux",
    });
    ok_json(&json!({
        "Platform": { "Name": "berth" },
        "Components": [
            { "Name": "Engine", "Version": VERSION, "Details": details },
        ],
        "Version": VERSION,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": "amd64",
        "KernelVersion": kernel_version(),
        "BuildTime": "",
    }))
}

fn mem_total() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<i64>().ok())
                })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

pub(crate) async fn info(State(engine): State<AppState>) -> ApiResult {
    let (total, running, stopped) = engine.counts();
    let images = engine.images.list().len();
    let hostname = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cgroup_v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    ok_json(&json!({
        "ID": "",
        "Containers": total,
        "ContainersRunning": running,
        "ContainersPaused": 0,
        "ContainersStopped": stopped,
        "Images": images,
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", "extfs"]],
        "Plugins": { "Volume": ["local"], "Network": ["host", "null"], "Authorization": Value::Null, "Log": ["json-file"] },
        "MemoryLimit": true,
        "SwapLimit": true,
        "KernelMemory": false,
        "KernelMemoryTCP": false,
        "CpuCfsPeriod": true,
        "CpuCfsQuota": true,
        "CPUShares": true,
        "CPUSet": true,
        "PidsLimit": true,
        "IPv4Forwarding": true,
        "BridgeNfIptables": false,
        "BridgeNfIp6tables": false,
        "Debug": false,
        "NFd": 0,
        "OomKillDisable": true,
        "NGoroutines": 0,
        "SystemTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": if cgroup_v2 { "2" } else { "1" },
        "NEventsListener": 0,
        "KernelVersion": kernel_version(),
        "OperatingSystem": os_name(),
        "OSVersion": "",
        "OSType": "linux",
        "Architecture": "x86_64",
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": { "AllowNondistributableArtifactsCIDRs": [], "AllowNondistributableArtifactsHostnames": [], "InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {}, "Mirrors": [] },
        "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "MemTotal": mem_total(),
        "GenericResources": Value::Null,
        "DockerRootDir": engine.cfg.root,
        "HttpProxy": "",
        "HttpsProxy": "",
        "NoProxy": "",
        "Name": hostname,
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": VERSION,
        "Runtimes": { "berth": { "path": engine.cfg.berth_exe }, "runc": { "path": "runc" } },
        "DefaultRuntime": engine.cfg.default_runtime,
        "Swarm": { "NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false, "Error": "", "RemoteManagers": Value::Null },
        "LiveRestoreEnabled": true,
        "Isolation": "",
        "InitBinary": "docker-init",
        "ContainerdCommit": { "ID": "", "Expected": "" },
        "RuncCommit": { "ID": "", "Expected": "" },
        "InitCommit": { "ID": "", "Expected": "" },
        "SecurityOptions": ["name=seccomp,profile=builtin"],
        "Warnings": Value::Null,
    }))
}
