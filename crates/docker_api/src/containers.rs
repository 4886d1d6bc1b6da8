//! `/containers/...` endpoints.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bollard::models::ContainerCreateBody;
use engine::{Container, Status, WaitCondition};
use serde_json::{json, Value};

use crate::hijack::{self, StreamOpts};
use crate::human;
use crate::{json_response, ok_json, qbool, ApiError, ApiResult, AppState};

type Q = Query<HashMap<String, String>>;

pub(crate) async fn create(State(engine): State<AppState>, Query(q): Q, body: Bytes) -> ApiResult {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "config cannot be empty in order to create a container",
        ));
    }
    let body: ContainerCreateBody = crate::parse_json(&body)?;
    let id = engine
        .create(q.get("name").map(|s| s.as_str()), body)
        .await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({ "Id": id, "Warnings": [] }),
    ))
}

fn status_text(c: &Container) -> String {
    match c.state.status {
        Status::Running => format!("Up {}", human::duration(human::since(&c.state.started_at))),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            c.state.exit_code,
            human::duration(human::since(&c.state.finished_at))
        ),
        Status::Exited => {
            if c.state.finished_at == engine::container::ZERO_TIME {
                format!("Exited ({})", c.state.exit_code)
            } else {
                format!(
                    "Exited ({}) {} ago",
                    c.state.exit_code,
                    human::duration(human::since(&c.state.finished_at))
                )
            }
        }
        Status::Created => "Created".into(),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
    }
}

fn command_text(c: &Container) -> String {
    let mut parts = vec![c.path.clone()];
    parts.extend(c.args.iter().cloned());
    parts.join(" ")
}

fn mounts_json(c: &Container) -> Value {
    Value::Array(
        c.mounts
            .iter()
            .map(|m| {
                let mut v = json!({
                    "Type": m.kind,
                    "Source": m.source,
                    "Destination": m.destination,
                    "Mode": m.mode,
                    "RW": m.rw,
                    "Propagation": if m.kind == "bind" { "rprivate" } else { "" },
                });
                if m.kind == "volume" {
                    v["Name"] = json!(m.name);
                    v["Driver"] = json!("local");
                }
                v
            })
            .collect(),
    )
}

fn network_mode(c: &Container) -> String {
    c.host_config
        .network_mode
        .clone()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "default".into())
}

/// Docker's `Networks` map of NetworkSettings.
fn networks_json(c: &Container) -> Value {
    let mut m = serde_json::Map::new();
    for ep in &c.endpoints {
        m.insert(
            ep.network.clone(),
            json!({
                "IPAMConfig": Value::Null, "Links": Value::Null, "Aliases": Value::Null,
                "NetworkID": ep.network_id,
                "EndpointID": format!("{}{}", &c.id[..32], &ep.network_id[..32.min(ep.network_id.len())]),
                "Gateway": ep.gateway, "IPAddress": ep.ip, "IPPrefixLen": ep.prefix_len,
                "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
                "MacAddress": ep.mac, "DriverOpts": Value::Null,
            }),
        );
    }
    Value::Object(m)
}

/// `Ports` of the container list: published ports, then exposed ones.
fn ports_list(c: &Container) -> Value {
    let mut out: Vec<Value> = c
        .ports
        .iter()
        .map(|p| json!({ "IP": p.host_ip, "PrivatePort": p.container_port, "PublicPort": p.host_port, "Type": p.proto }))
        .collect();
    for key in c.config.exposed_ports.clone().unwrap_or_default() {
        let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
        let Ok(port) = port.parse::<u16>() else {
            continue;
        };
        if !c
            .ports
            .iter()
            .any(|p| p.container_port == port && p.proto == proto)
        {
            out.push(json!({ "PrivatePort": port, "Type": proto }));
        }
    }
    Value::Array(out)
}

/// `NetworkSettings.Ports` of inspect: `{"3000/tcp": [{"HostIp","HostPort"}]}`.
fn ports_map(c: &Container) -> Value {
    let mut m = serde_json::Map::new();
    for key in c.config.exposed_ports.clone().unwrap_or_default() {
        m.insert(key, Value::Null);
    }
    for p in &c.ports {
        let key = format!("{}/{}", p.container_port, p.proto);
        let entry = m.entry(key).or_insert(Value::Null);
        if entry.is_null() {
            *entry = json!([]);
        }
        if let Some(a) = entry.as_array_mut() {
            a.push(json!({ "HostIp": p.host_ip, "HostPort": p.host_port.to_string() }));
        }
    }
    Value::Object(m)
}

fn summary(c: &Container) -> Value {
    json!({
        "Id": c.id,
        "Names": [format!("/{}", c.name)],
        "Image": c.image,
        "ImageID": c.image_id,
        "Command": command_text(c),
        "Created": human::unix(&c.created),
        "Ports": ports_list(c),
        "Labels": c.config.labels.clone().unwrap_or_default(),
        "State": c.state.status.as_str(),
        "Status": status_text(c),
        "HostConfig": { "NetworkMode": network_mode(c) },
        "NetworkSettings": { "Networks": networks_json(c) },
        "Mounts": mounts_json(c),
    })
}

/// Docker's list filters: `{"status":["running"],"name":["web"],...}`.
fn matches_filters(c: &Container, filters: &HashMap<String, Vec<String>>) -> bool {
    for (key, values) in filters {
        if values.is_empty() {
            continue;
        }
        let ok = values.iter().any(|v| match key.as_str() {
            "status" => c.state.status.as_str() == v,
            "name" => c.name.contains(v.trim_start_matches('/')),
            "id" => c.id.starts_with(v),
            "ancestor" => &c.image == v || c.image_id.contains(v),
            "exited" => {
                c.state.status == Status::Exited && v.parse::<i32>().ok() == Some(c.state.exit_code)
            }
            "label" => {
                let labels = c.config.labels.clone().unwrap_or_default();
                match v.split_once('=') {
                    Some((k, val)) => labels.get(k).map(|x| x == val).unwrap_or(false),
                    None => labels.contains_key(v),
                }
            }
            _ => true,
        });
        if !ok {
            return false;
        }
    }
    true
}

pub(crate) fn parse_filters(
    q: &HashMap<String, String>,
) -> Result<HashMap<String, Vec<String>>, ApiError> {
    let Some(raw) = q.get("filters").filter(|s| !s.is_empty()) else {
        return Ok(HashMap::new());
    };
    let v: Value = serde_json::from_str(raw)
        .map_err(|e| ApiError::bad_request(format!("invalid filter: {e}")))?;
    let mut out = HashMap::new();
    if let Some(o) = v.as_object() {
        for (k, vals) in o {
            // Both ["a","b"] and {"a":true} forms are in use.
            let list: Vec<String> = match vals {
                Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect(),
                Value::Object(m) => m.keys().cloned().collect(),
                Value::String(s) => vec![s.clone()],
                _ => vec![],
            };
            out.insert(k.clone(), list);
        }
    }
    Ok(out)
}

pub(crate) async fn list(State(engine): State<AppState>, Query(q): Q) -> ApiResult {
    let all = qbool(q.get("all"));
    let filters = parse_filters(&q)?;
    let limit: i64 = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(-1);
    let mut out: Vec<Value> = engine
        .list()
        .iter()
        .filter(|c| all || limit > 0 || filters.contains_key("status") || c.running())
        .filter(|c| matches_filters(c, &filters))
        .map(summary)
        .collect();
    if limit > 0 {
        out.truncate(limit as usize);
    }
    ok_json(&out)
}

pub(crate) fn inspect_json(engine: &AppState, c: &Container) -> Value {
    let layout = engine::Layout::new(&engine.cfg.root, &engine.cfg.exec_root, &c.id);
    let mut hc = serde_json::to_value(&c.host_config).unwrap_or(json!({}));
    if hc.get("NetworkMode").is_none() {
        hc["NetworkMode"] = json!("default");
    }
    hc["LogConfig"] = json!({"Type": "json-file", "Config": {}});
    let mut config = serde_json::to_value(&c.config).unwrap_or(json!({}));
    if config.get("Image").is_none() {
        config["Image"] = json!(c.image);
    }
    for key in [
        "AttachStdin",
        "AttachStdout",
        "AttachStderr",
        "Tty",
        "OpenStdin",
        "StdinOnce",
    ] {
        if config.get(key).is_none() {
            config[key] = json!(false);
        }
    }
    let execs = engine.exec_ids(&c.id);
    json!({
        "Id": c.id,
        "Created": c.created,
        "Path": c.path,
        "Args": c.args,
        "State": {
            "Status": c.state.status.as_str(),
            "Running": c.state.status == Status::Running,
            "Paused": false,
            "Restarting": c.state.status == Status::Restarting,
            "OOMKilled": c.state.oom_killed,
            "Dead": c.state.status == Status::Dead,
            "Pid": c.state.pid,
            "ExitCode": c.state.exit_code,
            "Error": c.state.error,
            "StartedAt": c.state.started_at,
            "FinishedAt": c.state.finished_at,
        },
        "Image": c.image_id,
        "ResolvConfPath": layout.resolv_conf(),
        "HostnamePath": layout.hostname(),
        "HostsPath": layout.hosts(),
        "LogPath": layout.log(&c.id),
        "Name": format!("/{}", c.name),
        "RestartCount": c.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": if execs.is_empty() { Value::Null } else { json!(execs) },
        "HostConfig": hc,
        "GraphDriver": {
            "Name": "overlay2",
            "Data": {
                "MergedDir": layout.rootfs(),
                "UpperDir": layout.upper(),
                "WorkDir": layout.work(),
            }
        },
        "Mounts": mounts_json(c),
        "Config": config,
        "NetworkSettings": {
            "Bridge": "",
            "SandboxID": "",
            "HairpinMode": false,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "Ports": ports_map(c),
            "SandboxKey": if c.state.pid > 0 { format!("/proc/{}/ns/net", c.state.pid) } else { String::new() },
            "IPAddress": c.endpoints.first().map(|e| e.ip.clone()).unwrap_or_default(),
            "IPPrefixLen": c.endpoints.first().map(|e| e.prefix_len).unwrap_or(0),
            "Gateway": c.endpoints.first().map(|e| e.gateway.clone()).unwrap_or_default(),
            "MacAddress": c.endpoints.first().map(|e| e.mac.clone()).unwrap_or_default(),
            "Networks": networks_json(c),
        },
    })
}

pub(crate) async fn inspect(State(engine): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let c = engine.container(&id)?;
    ok_json(&inspect_json(&engine, &c))
}

pub(crate) async fn start(State(engine): State<AppState>, Path(id): Path<String>) -> ApiResult {
    engine.start(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn timeout_param(q: &HashMap<String, String>) -> Result<Option<i64>, ApiError> {
    match q.get("t").filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(t) => t
            .parse()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("invalid value for t: {t}"))),
    }
}

pub(crate) async fn stop(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(q): Q,
) -> ApiResult {
    let t = timeout_param(&q)?;
    engine
        .stop(&id, t, q.get("signal").map(|s| s.as_str()))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(crate) async fn restart(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(q): Q,
) -> ApiResult {
    let t = timeout_param(&q)?;
    engine.restart(&id, t).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(crate) async fn kill(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(q): Q,
) -> ApiResult {
    engine
        .kill(&id, q.get("signal").map(|s| s.as_str()))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(crate) async fn remove(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(q): Q,
) -> ApiResult {
    engine
        .remove(&id, qbool(q.get("force")), qbool(q.get("v")))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(crate) async fn rename(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(q): Q,
) -> ApiResult {
    let name = q.get("name").cloned().unwrap_or_default();
    engine.rename(&id, &name)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(crate) async fn resize(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(q): Q,
) -> ApiResult {
    let h: u16 = q.get("h").and_then(|v| v.parse().ok()).unwrap_or(0);
    let w: u16 = q.get("w").and_then(|v| v.parse().ok()).unwrap_or(0);
    engine.resize(&id, h, w).await?;
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::OK;
    Ok(r)
}

pub(crate) async fn wait(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(q): Q,
) -> ApiResult {
    let cond = WaitCondition::parse(q.get("condition").map(|s| s.as_str()).unwrap_or(""))?;
    let fut = engine.wait(&id, cond)?;
    // Headers go out at once; the body comes when the condition holds.
    let stream = futures_util::stream::once(async move {
        let (code, err) = fut.await;
        let error = match err {
            Some(m) => json!({ "Message": m }),
            None => Value::Null,
        };
        let mut body =
            serde_json::to_vec(&json!({ "Error": error, "StatusCode": code })).unwrap_or_default();
        body.push(b'\n');
        Ok::<_, std::io::Error>(Bytes::from(body))
    });
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        "content-type",
        "application/json".parse().expect("static header"),
    );
    Ok(r)
}

pub(crate) async fn attach(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(q): Q,
    mut req: Request,
) -> ApiResult {
    let c = engine.container(&id)?;
    let opts = StreamOpts {
        tty: c.tty(),
        stdin: qbool(q.get("stdin")),
        stdout: qbool(q.get("stdout")),
        stderr: qbool(q.get("stderr")),
    };
    let rx = engine.attach(&id, opts.stdin).await?;
    let Some(upgrade) = hijack::take_upgrade(&mut req) else {
        return Err(ApiError::bad_request(
            "attach requires an upgraded connection (Upgrade: tcp)",
        ));
    };
    tokio::spawn(async move {
        let Ok(client) = upgrade.await else { return };
        match rx.await {
            Ok(Some(shim)) => hijack::bridge(client, shim, opts, |_| {}).await,
            _ => {
                // The container never started: just close the stream.
                drop(client);
            }
        }
    });
    Ok(hijack::upgraded_response(false))
}

pub(crate) async fn logs(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(q): Q,
) -> ApiResult {
    let c = engine.container(&id)?;
    let stdout = qbool(q.get("stdout"));
    let stderr = qbool(q.get("stderr"));
    if !stdout && !stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let tail = match q.get("tail").map(|s| s.as_str()) {
        None | Some("") | Some("all") => None,
        Some(n) => Some(n.parse::<i64>().map(|n| n.max(0) as usize).unwrap_or(0)),
    };
    let time = |k: &str| -> f64 { q.get(k).and_then(|v| v.parse().ok()).unwrap_or(0.0) };
    let opts = engine::LogOptions {
        follow: qbool(q.get("follow")),
        stdout,
        stderr,
        since: time("since"),
        until: time("until"),
        timestamps: qbool(q.get("timestamps")),
        tail,
    };
    let rx = engine.logs(&id, opts)?;
    let tty = c.tty();
    let stream = futures_util::stream::unfold(rx, move |mut rx| async move {
        let chunk = rx.recv().await?;
        let bytes = if tty {
            chunk.data.to_vec()
        } else {
            hijack::docker_frame(chunk.stream, &chunk.data)
        };
        Some((Ok::<_, std::io::Error>(Bytes::from(bytes)), rx))
    });
    Ok(Response::new(Body::from_stream(stream)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact create body docker CLI 28 sends for `docker run --rm busybox echo hello`.
    const DOCKER_CLI_CREATE: &str = r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["echo","hello"],"Image":"busybox:local","Volumes":{},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{},"HostConfig":{"Binds":null,"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},"NetworkMode":"default","PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":true,"VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[0,0],"CapAdd":null,"CapDrop":null,"CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"","ShmSize":0,"Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":-1,"OomKillDisable":false,"PidsLimit":0,"Ulimits":[],"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,"ReadonlyPaths":null},"NetworkingConfig":{"EndpointsConfig":{"default":{"IPAMConfig":null,"Links":null,"Aliases":null,"MacAddress":"","DriverOpts":null,"GwPriority":0,"NetworkID":"","EndpointID":"","Gateway":"","IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":null}}}}"#;

    #[test]
    fn docker_cli_create_body_parses() {
        let b: ContainerCreateBody = serde_json::from_str(DOCKER_CLI_CREATE).unwrap();
        assert_eq!(b.cmd, Some(vec!["echo".to_string(), "hello".to_string()]));
        let hc = b.host_config.unwrap();
        assert_eq!(hc.auto_remove, Some(true));
        assert_eq!(hc.memory_swappiness, Some(-1));
    }

    #[test]
    fn filters_accept_both_forms() {
        let mut q = HashMap::new();
        q.insert(
            "filters".to_string(),
            r#"{"status":{"running":true},"name":["web"]}"#.to_string(),
        );
        let f = parse_filters(&q).unwrap();
        assert_eq!(f["status"], vec!["running"]);
        assert_eq!(f["name"], vec!["web"]);
        q.insert("filters".to_string(), "{bad".to_string());
        assert!(parse_filters(&q).is_err());
    }
}
