//! `ps`: the container list with docker's columns and formatting.

use super::{out, Ctx};
use crate::error::{CliError, CliResult};
use crate::flags::Parsed;
use crate::format::human::{
    ellipsis, go_quote, go_time_string, human_size_prec, now_unix, time_ago, truncate_id,
};
use crate::format::json::Value;
use crate::format::{obj, render_rows};
use crate::reference::Reference;
use crate::streams::write_stderr;

/// One published/exposed port from the container list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// Host IP ("" when not published).
    pub ip: String,
    /// Container port.
    pub private: u16,
    /// Host port (0 when not published).
    pub public: u16,
    /// "tcp", "udp", "sctp".
    pub proto: String,
}

fn join_host_port(ip: &str, port: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// docker's `DisplayablePorts`: groups consecutive ports into ranges and
/// lists host mappings as "ip:public->private/proto".
pub fn displayable_ports(ports: &[Port]) -> String {
    let mut ports = ports.to_vec();
    ports.sort_by(|a, b| {
        a.private
            .cmp(&b.private)
            .then_with(|| a.ip.cmp(&b.ip))
            .then_with(|| a.public.cmp(&b.public))
            .then_with(|| a.proto.cmp(&b.proto))
    });
    // (key, first, last) in creation order.
    let mut groups: Vec<(String, u16, u16)> = Vec::new();
    let mut result = Vec::new();
    let mut host_mappings = Vec::new();
    let form_group = |key: &str, first: u16, last: u16| -> String {
        let (ip, proto) = key.rsplit_once('/').unwrap_or(("", key));
        let mut group = first.to_string();
        if first != last {
            group = format!("{group}-{last}");
        }
        if !ip.is_empty() {
            group = format!("{}->{group}", join_host_port(ip, &group));
        }
        format!("{group}/{proto}")
    };
    for p in &ports {
        let mut key = p.proto.clone();
        if !p.ip.is_empty() {
            if p.public != p.private {
                host_mappings.push(format!(
                    "{}->{}/{}",
                    join_host_port(&p.ip, &p.public.to_string()),
                    p.private,
                    p.proto
                ));
                continue;
            }
            key = format!("{}/{}", p.ip, p.proto);
        }
        match groups.iter_mut().find(|(k, _, _)| *k == key) {
            None => groups.push((key, p.private, p.private)),
            Some(g) => {
                if p.private == g.2.wrapping_add(1) {
                    g.2 = p.private;
                } else {
                    result.push(form_group(&g.0, g.1, g.2));
                    g.1 = p.private;
                    g.2 = p.private;
                }
            }
        }
    }
    for (k, f, l) in &groups {
        result.push(form_group(k, *f, *l));
    }
    result.extend(host_mappings);
    result.join(", ")
}

fn ports_of(c: &Value) -> Vec<Port> {
    c.get("Ports")
        .and_then(Value::as_array)
        .unwrap_or(&[])
        .iter()
        .map(|p| Port {
            ip: p
                .get("IP")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            private: p.get("PrivatePort").and_then(Value::as_i64).unwrap_or(0) as u16,
            public: p.get("PublicPort").and_then(Value::as_i64).unwrap_or(0) as u16,
            proto: p
                .get("Type")
                .and_then(Value::as_str)
                .unwrap_or("tcp")
                .to_string(),
        })
        .collect()
}

fn image_display(image: &str, image_id: &str, trunc: bool) -> String {
    if image.is_empty() {
        return "<no image>".into();
    }
    if !trunc {
        return image.to_string();
    }
    if truncate_id(image_id) == truncate_id(image) {
        return truncate_id(image);
    }
    match Reference::parse(image) {
        Ok(mut r) => {
            r.digest = None;
            r.familiar_string()
        }
        Err(_) => image.to_string(),
    }
}

/// Template data for one container-list entry (docker's `ContainerContext`).
pub fn container_row(c: &Value, trunc: bool, now: i64) -> Value {
    let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let id = s("Id");
    let created = c.get("Created").and_then(Value::as_i64).unwrap_or(0);
    let names: Vec<String> = c
        .get("Names")
        .and_then(Value::as_array)
        .unwrap_or(&[])
        .iter()
        .filter_map(Value::as_str)
        .map(|n| n.trim_start_matches('/').to_string())
        .collect();
    let names = if trunc {
        names
            .iter()
            .find(|n| !n.contains('/'))
            .cloned()
            .unwrap_or_default()
    } else {
        names.join(",")
    };
    let command = s("Command");
    let command = go_quote(&if trunc {
        ellipsis(&command, 20)
    } else {
        command
    });
    let mut labels: Vec<String> = match c.get("Labels") {
        Some(Value::Obj(l)) => l
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect(),
        _ => Vec::new(),
    };
    labels.sort();
    let mounts: Vec<String> = c
        .get("Mounts")
        .and_then(Value::as_array)
        .unwrap_or(&[])
        .iter()
        .map(|m| {
            let name = m
                .get("Name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .or_else(|| m.get("Source").and_then(Value::as_str))
                .unwrap_or("");
            if trunc {
                ellipsis(name, 15)
            } else {
                name.to_string()
            }
        })
        .collect();
    let local_volumes = c
        .get("Mounts")
        .and_then(Value::as_array)
        .unwrap_or(&[])
        .iter()
        .filter(|m| m.get("Driver").and_then(Value::as_str) == Some("local"))
        .count();
    let mut networks: Vec<String> = match c.path(&["NetworkSettings", "Networks"]) {
        Some(Value::Obj(n)) => n.iter().map(|(k, _)| k.clone()).collect(),
        _ => Vec::new(),
    };
    networks.sort();
    let size_rw = c.get("SizeRw").and_then(Value::as_i64).unwrap_or(0);
    let size_root = c.get("SizeRootFs").and_then(Value::as_i64).unwrap_or(0);
    let size = {
        let srw = human_size_prec(size_rw as f64, 3);
        if size_root > 0 {
            format!("{srw} (virtual {})", human_size_prec(size_root as f64, 3))
        } else {
            srw
        }
    };
    obj(vec![
        ("Command", command),
        ("CreatedAt", go_time_string(created)),
        ("ID", if trunc { truncate_id(&id) } else { id.clone() }),
        ("Image", image_display(&s("Image"), &s("ImageID"), trunc)),
        ("Labels", labels.join(",")),
        ("LocalVolumes", local_volumes.to_string()),
        ("Mounts", mounts.join(",")),
        ("Names", names),
        ("Networks", networks.join(",")),
        ("Ports", displayable_ports(&ports_of(c))),
        ("RunningFor", time_ago(created, now)),
        ("Size", size),
        ("State", s("State")),
        ("Status", s("Status")),
    ])
}

fn headers() -> Value {
    obj(vec![
        ("Command", "COMMAND".into()),
        ("CreatedAt", "CREATED AT".into()),
        ("ID", "CONTAINER ID".into()),
        ("Image", "IMAGE".into()),
        ("Labels", "LABELS".into()),
        ("LocalVolumes", "LOCAL VOLUMES".into()),
        ("Mounts", "MOUNTS".into()),
        ("Names", "NAMES".into()),
        ("Networks", "NETWORKS".into()),
        ("Ports", "PORTS".into()),
        ("RunningFor", "CREATED".into()),
        ("Size", "SIZE".into()),
        ("State", "STATE".into()),
        ("Status", "STATUS".into()),
    ])
}

/// docker's default `ps` table.
pub const DEFAULT_PS_FORMAT: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

/// `ps`.
pub async fn ps(ctx: &Ctx, p: &Parsed) -> CliResult<()> {
    let filters = crate::opts::parse_filters(&p.all("filter")).map_err(CliError::Other)?;
    let mut query = Vec::new();
    if p.bool("all") {
        query.push(("all", "1".to_string()));
    }
    let mut limit = p.int("last").unwrap_or(-1);
    if p.bool("latest") && limit == -1 {
        limit = 1;
    }
    if limit > 0 {
        query.push(("limit", limit.to_string()));
    }
    let mut format = p.str_or("format", "").to_string();
    let mut size = p.bool("size");
    if !size && !p.bool("quiet") && format.contains(".Size") {
        size = true;
    }
    if size {
        query.push(("size", "1".to_string()));
    }
    if !filters.is_empty() {
        query.push((
            "filters",
            serde_json::to_string(&filters).unwrap_or_default(),
        ));
    }
    let text = ctx.client.get_text("/containers/json", &query).await?;
    let list = Value::parse(text.trim())
        .map_err(|e| CliError::Other(format!("invalid container list: {e}")))?;
    let trunc = !p.bool("no-trunc");
    let now = now_unix();
    let rows: Vec<Value> = list
        .as_array()
        .unwrap_or(&[])
        .iter()
        .map(|c| container_row(c, trunc, now))
        .collect();
    if p.bool("quiet") {
        if !format.is_empty() {
            write_stderr(
                b"WARNING: Ignoring custom format, because both --format and --quiet are set.\n",
            );
        }
        format = "{{.ID}}".into();
    }
    let default = if p.bool("size") {
        format!("{DEFAULT_PS_FORMAT}\t{{{{.Size}}}}")
    } else {
        DEFAULT_PS_FORMAT.to_string()
    };
    out(&render_rows(&format, &default, &rows, &headers())?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(ip: &str, private: u16, public: u16, proto: &str) -> Port {
        Port {
            ip: ip.into(),
            private,
            public,
            proto: proto.into(),
        }
    }

    #[test]
    fn ports_like_docker() {
        assert_eq!(
            displayable_ports(&[
                port("0.0.0.0", 80, 8000, "tcp"),
                port("::", 80, 8000, "tcp")
            ]),
            "0.0.0.0:8000->80/tcp, [::]:8000->80/tcp"
        );
        assert_eq!(
            displayable_ports(&[
                port("", 80, 0, "tcp"),
                port("", 81, 0, "tcp"),
                port("", 82, 0, "tcp"),
                port("", 53, 0, "udp")
            ]),
            "53/udp, 80-82/tcp"
        );
        assert_eq!(
            displayable_ports(&[
                port("0.0.0.0", 9000, 9000, "tcp"),
                port("0.0.0.0", 9001, 9001, "tcp")
            ]),
            "0.0.0.0:9000-9001->9000-9001/tcp"
        );
        assert_eq!(
            displayable_ports(&[port("", 80, 0, "tcp"), port("", 90, 0, "tcp")]),
            "80/tcp, 90/tcp"
        );
        assert_eq!(displayable_ports(&[]), "");
    }

    const LIST: &str = r#"[{"Id":"65e28f7ef8b67cdcab162cf8f41d3e528cf4c71e5b920a155b14161b450451bc","Names":["/tr1"],"Image":"busybox:local","ImageID":"sha256:a59a0235e570aaaa",
        "Command":"httpd -f -p 80","Created":1000,"Ports":[{"IP":"0.0.0.0","PrivatePort":80,"PublicPort":8000,"Type":"tcp"},{"IP":"::","PrivatePort":80,"PublicPort":8000,"Type":"tcp"}],
        "Labels":{"b":"2","a":"1"},"State":"running","Status":"Up 1 second","HostConfig":{"NetworkMode":"default"},
        "NetworkSettings":{"Networks":{"bridge":{}}},"Mounts":[{"Type":"bind","Source":"/tmp","Destination":"/host","Mode":"ro","RW":false,"Propagation":"rprivate"}]}]"#;

    #[test]
    fn default_table() {
        let v = Value::parse(LIST).unwrap();
        let rows: Vec<Value> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|c| container_row(c, true, 1120))
            .collect();
        let out = render_rows("", DEFAULT_PS_FORMAT, &rows, &headers()).unwrap();
        assert_eq!(
            out,
            "CONTAINER ID   IMAGE           COMMAND            CREATED         STATUS        PORTS                                     NAMES\n\
             65e28f7ef8b6   busybox:local   \"httpd -f -p 80\"   2 minutes ago   Up 1 second   0.0.0.0:8000->80/tcp, [::]:8000->80/tcp   tr1\n"
        );
        let r = &rows[0];
        assert_eq!(r.get("Labels").and_then(Value::as_str), Some("a=1,b=2"));
        assert_eq!(r.get("Mounts").and_then(Value::as_str), Some("/tmp"));
        assert_eq!(r.get("Networks").and_then(Value::as_str), Some("bridge"));
    }

    #[test]
    fn long_commands_and_no_trunc() {
        let c = Value::parse(r#"{"Id":"abcdef0123456789","Names":["/a","/b/link"],"Image":"sha256:abcdef0123456789","ImageID":"sha256:abcdef0123456789","Command":"sh -c 'while true; do sleep 1; done'","Created":0}"#).unwrap();
        let r = container_row(&c, true, 0);
        assert_eq!(
            r.get("Command").and_then(Value::as_str),
            Some("\"sh -c 'while true; …\"")
        );
        assert_eq!(r.get("Image").and_then(Value::as_str), Some("abcdef012345"));
        assert_eq!(r.get("Names").and_then(Value::as_str), Some("a"));
        let r = container_row(&c, false, 0);
        assert_eq!(
            r.get("ID").and_then(Value::as_str),
            Some("abcdef0123456789")
        );
        assert_eq!(r.get("Names").and_then(Value::as_str), Some("a,b/link"));
    }

    #[test]
    fn image_names() {
        assert_eq!(
            image_display("docker.io/library/busybox:latest", "sha256:x", true),
            "busybox:latest"
        );
        assert_eq!(image_display("", "", true), "<no image>");
        assert_eq!(
            image_display(
                "busybox@sha256:a0b242ef18df049e232b9af763394e386353ef8da17796313509f49ac8255a69",
                "sha256:zzz",
                true
            ),
            "busybox"
        );
    }
}
