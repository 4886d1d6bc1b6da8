//! Network commands: create, ls, rm, connect, disconnect, prune (inspect
//! lives in `inspect`). Request bodies mirror what docker's CLI sends; the
//! client-side IPAM validation reproduces docker's checks and messages.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::net::IpAddr;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::json;

use super::volume::{confirm, kv};
use super::{for_each_target, out, Ctx};
use crate::error::{CliError, CliResult};
use crate::flags::Parsed;
use crate::format::human::truncate_id;
use crate::format::json::Value;
use crate::format::{obj, render_rows};
use crate::streams::write_stderr;

/// Default `network ls` table.
pub const DEFAULT_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}";

/// Values of a pflag `strings` flag: every occurrence, split on commas.
fn strings(p: &Parsed, long: &str) -> Vec<String> {
    p.all(long)
        .iter()
        .flat_map(|v| v.split(','))
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Sends `method path` with a JSON body and returns the response text.
async fn send_json(
    ctx: &Ctx,
    method: Method,
    path: &str,
    query: &[(&str, String)],
    body: &serde_json::Value,
) -> CliResult<String> {
    let bytes = serde_json::to_vec(body).map_err(|e| CliError::Other(e.to_string()))?;
    let resp = ctx
        .client
        .raw_with(
            method,
            path,
            query,
            &[("Content-Type", "application/json")],
            Some(bollard::body_full(Bytes::from(bytes))),
        )
        .await?;
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| CliError::Other(format!("error reading response: {e}")))?
        .to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// An IP network as Go's `net.ParseCIDR` returns it: the address as
/// written and the prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

fn parse_cidr(s: &str) -> Result<Cidr, String> {
    let bad = || format!("invalid CIDR address: {s}");
    let (a, p) = s.split_once('/').ok_or_else(bad)?;
    let addr: IpAddr = a.parse().map_err(|_| bad())?;
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 3 {
        return Err(bad());
    }
    let prefix: u8 = p.parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(bad());
    }
    Ok(Cidr { addr, prefix })
}

fn to_bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(v) => (u32::from(v) as u128, 32),
        IpAddr::V6(v) => match v.to_ipv4_mapped() {
            Some(v4) => (u32::from(v4) as u128, 32),
            None => (u128::from(v), 128),
        },
    }
}

impl Cidr {
    fn contains(&self, ip: IpAddr) -> bool {
        let (net, width) = to_bits(self.addr);
        let (other, other_width) = to_bits(ip);
        if width != other_width {
            return false;
        }
        let host_bits = u32::from(width - self.prefix.min(width));
        let mask = if host_bits >= 128 {
            0
        } else {
            (u128::MAX << host_bits) & (u128::MAX >> (128 - u32::from(width)))
        };
        net & mask == other & mask
    }
}

/// Docker's `subnetMatches`: whether `data` (an address, or the address
/// part of a CIDR) lies within `subnet`.
fn subnet_matches(subnet: &str, data: &str) -> Result<bool, String> {
    let s = parse_cidr(subnet).map_err(|e| format!("invalid subnet: {e}"))?;
    let ip = if data.contains('/') {
        Some(parse_cidr(data)?.addr)
    } else {
        data.parse::<IpAddr>().ok()
    };
    Ok(ip.is_some_and(|ip| s.contains(ip)))
}

/// One `IPAM.Config` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpamConfig {
    /// CIDR.
    pub subnet: String,
    /// Sub-range for container addresses.
    pub ip_range: String,
    /// Gateway address.
    pub gateway: String,
    /// Reserved addresses by name.
    pub aux: Vec<(String, String)>,
}

impl IpamConfig {
    fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("Subnet".into(), json!(self.subnet));
        if !self.ip_range.is_empty() {
            m.insert("IPRange".into(), json!(self.ip_range));
        }
        if !self.gateway.is_empty() {
            m.insert("Gateway".into(), json!(self.gateway));
        }
        if !self.aux.is_empty() {
            let aux: serde_json::Map<String, serde_json::Value> = self
                .aux
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            m.insert("AuxiliaryAddresses".into(), serde_json::Value::Object(aux));
        }
        serde_json::Value::Object(m)
    }
}

/// Groups `--subnet`, `--ip-range`, `--gateway` and `--aux-address` into
/// per-subnet IPAM configs, with docker's validation and error texts.
pub fn ipam_configs(
    subnets: &[String],
    ranges: &[String],
    gateways: &[String],
    aux: &[(String, String)],
) -> Result<Vec<IpamConfig>, String> {
    if subnets.len() < ranges.len() || subnets.len() < gateways.len() {
        return Err("every ip-range or gateway must have a corresponding subnet".into());
    }
    let mut configs: Vec<IpamConfig> = Vec::new();
    for s in subnets {
        for k in &configs {
            if subnet_matches(s, &k.subnet)? || subnet_matches(&k.subnet, s)? {
                return Err("multiple overlapping subnet configuration is not supported".into());
            }
        }
        configs.push(IpamConfig {
            subnet: s.clone(),
            ..Default::default()
        });
    }
    for r in ranges {
        let mut matched = false;
        for c in configs.iter_mut() {
            if !subnet_matches(&c.subnet, r)? {
                continue;
            }
            if !c.ip_range.is_empty() {
                return Err(format!(
                    "cannot configure multiple ranges ({r}, {}) on the same subnet ({})",
                    c.ip_range, c.subnet
                ));
            }
            c.ip_range = r.clone();
            matched = true;
        }
        if !matched {
            return Err(format!("no matching subnet for range {r}"));
        }
    }
    for g in gateways {
        let mut matched = false;
        for c in configs.iter_mut() {
            if !subnet_matches(&c.subnet, g)? {
                continue;
            }
            if !c.gateway.is_empty() {
                return Err(format!(
                    "cannot configure multiple gateways ({g}, {}) for the same subnet ({})",
                    c.gateway, c.subnet
                ));
            }
            c.gateway = g.clone();
            matched = true;
        }
        if !matched {
            return Err(format!("no matching subnet for gateway {g}"));
        }
    }
    for (key, addr) in aux {
        let mut matched = false;
        for c in configs.iter_mut() {
            if subnet_matches(&c.subnet, addr)? {
                c.aux.push((key.clone(), addr.clone()));
                matched = true;
            }
        }
        if !matched {
            return Err(format!("no matching subnet for aux-address {addr}"));
        }
    }
    Ok(configs)
}

fn map_json(m: HashMap<String, String>) -> serde_json::Value {
    serde_json::Value::Object(m.into_iter().map(|(k, v)| (k, json!(v))).collect())
}

/// The `POST /networks/create` body for `network create`'s flags.
pub fn create_body(p: &Parsed) -> CliResult<serde_json::Value> {
    let name = p.args.first().cloned().unwrap_or_default();
    let mut aux: Vec<(String, String)> = kv(&p.all("aux-address")).into_iter().collect();
    aux.sort();
    let configs = ipam_configs(
        &strings(p, "subnet"),
        &strings(p, "ip-range"),
        &strings(p, "gateway"),
        &aux,
    )
    .map_err(CliError::Other)?;
    let config: Vec<serde_json::Value> = configs.iter().map(IpamConfig::to_json).collect();
    let mut body = json!({
        "Name": name,
        "CheckDuplicate": true,
        "Driver": p.str_or("driver", "bridge"),
        "Scope": p.str_or("scope", ""),
        "IPAM": {
            "Driver": p.str_or("ipam-driver", "default"),
            "Options": map_json(kv(&p.all("ipam-opt"))),
            "Config": config,
        },
        "Internal": p.bool("internal"),
        "Attachable": p.bool("attachable"),
        "Ingress": p.bool("ingress"),
        "ConfigOnly": p.bool("config-only"),
        "ConfigFrom": p.last("config-from").map(|n| json!({ "Network": n })),
        "Options": map_json(kv(&p.all("opt"))),
        "Labels": map_json(kv(&p.all("label"))),
    });
    if let Some(m) = body.as_object_mut() {
        if p.changed("ipv6") {
            m.insert("EnableIPv6".into(), json!(p.bool("ipv6")));
        }
        if p.changed("ipv4") {
            m.insert("EnableIPv4".into(), json!(p.bool_or("ipv4", true)));
        }
    }
    Ok(body)
}

/// `network create NAME`: prints the new network's full id.
pub async fn create(ctx: &Ctx, p: &Parsed) -> CliResult<()> {
    let body = create_body(p)?;
    let text = send_json(ctx, Method::POST, "/networks/create", &[], &body).await?;
    let v = Value::parse(text.trim())
        .map_err(|e| CliError::Other(format!("invalid create response: {e}")))?;
    let id = v.get("Id").and_then(Value::as_str).unwrap_or("");
    out(&format!("{id}\n"));
    if let Some(w) = v.get("Warning").and_then(Value::as_str) {
        if !w.is_empty() {
            write_stderr(format!("{w}\n").as_bytes());
        }
    }
    Ok(())
}

/// Go's `time.Time.String()` for an RFC 3339 timestamp, keeping its offset.
fn go_time(rfc3339: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(rfc3339) else {
        return "0001-01-01 00:00:00 +0000 UTC".into();
    };
    let mut s = t.format("%Y-%m-%d %H:%M:%S").to_string();
    let nanos = t.timestamp_subsec_nanos();
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    let offset = t.format("%z").to_string();
    let zone = if rfc3339.ends_with('Z') || rfc3339.ends_with('z') {
        "UTC".to_string()
    } else {
        offset.clone()
    };
    format!("{s} {offset} {zone}")
}

/// Template data for one network (`network ls` rows).
pub fn network_row(v: &Value, no_trunc: bool) -> Value {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let b = |k: &str| {
        v.get(k)
            .and_then(Value::as_bool)
            .unwrap_or(false)
            .to_string()
    };
    let id = s("Id");
    let mut labels: Vec<String> = match v.get("Labels") {
        Some(Value::Obj(l)) => l
            .iter()
            .map(|(k, val)| format!("{k}={}", val.as_str().unwrap_or("")))
            .collect(),
        _ => Vec::new(),
    };
    labels.sort();
    obj(vec![
        ("CreatedAt", go_time(&s("Created"))),
        ("Driver", s("Driver")),
        ("ID", if no_trunc { id } else { truncate_id(&id) }),
        ("IPv4", b("EnableIPv4")),
        ("IPv6", b("EnableIPv6")),
        ("Internal", b("Internal")),
        ("Labels", labels.join(",")),
        ("Name", s("Name")),
        ("Scope", s("Scope")),
    ])
}

fn headers() -> Value {
    obj(vec![
        ("CreatedAt", "CREATED AT".into()),
        ("Driver", "DRIVER".into()),
        ("ID", "NETWORK ID".into()),
        ("IPv4", "IPV4".into()),
        ("IPv6", "IPV6".into()),
        ("Internal", "INTERNAL".into()),
        ("Labels", "LABELS".into()),
        ("Name", "NAME".into()),
        ("Scope", "SCOPE".into()),
    ])
}

/// Natural ordering (digit runs compare numerically), as docker sorts names.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let si = i;
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let na = trim_zeros(&a[si..i]);
            let nb = trim_zeros(&b[sj..j]);
            let ord = na
                .len()
                .cmp(&nb.len())
                .then_with(|| na.cmp(nb))
                .then_with(|| (i - si).cmp(&(j - sj)));
            if ord != Ordering::Equal {
                return ord;
            }
        } else {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let n = d.iter().take_while(|c| **c == b'0').count();
    &d[n..]
}

/// Applies `network ls` filters locally (the daemon may ignore them):
/// name (substring), id (prefix), driver, scope, type (builtin|custom), label.
pub fn matches_filters(v: &Value, filters: &HashMap<String, Vec<String>>) -> bool {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
    let name = s("Name");
    filters.iter().all(|(key, wanted)| match key.as_str() {
        "name" => wanted.iter().any(|w| name.contains(w.as_str())),
        "id" => wanted.iter().any(|w| s("Id").starts_with(w.as_str())),
        "driver" => wanted.iter().any(|w| s("Driver") == w),
        "scope" => wanted.iter().any(|w| s("Scope") == w),
        "type" => {
            let builtin = matches!(name, "bridge" | "host" | "none");
            wanted.iter().any(|w| match w.as_str() {
                "builtin" => builtin,
                "custom" => !builtin,
                _ => false,
            })
        }
        "label" => wanted.iter().all(|w| {
            let label = |k: &str| v.path(&["Labels", k]).and_then(Value::as_str);
            match w.split_once('=') {
                Some((k, val)) => label(k) == Some(val),
                None => label(w).is_some(),
            }
        }),
        _ => true,
    })
}

/// Renders `network ls` output for the daemon's network list.
pub fn render_ls(
    list: &Value,
    filters: &HashMap<String, Vec<String>>,
    format: &str,
    quiet: bool,
    no_trunc: bool,
) -> CliResult<String> {
    let mut nets: Vec<&Value> = list
        .as_array()
        .unwrap_or(&[])
        .iter()
        .filter(|n| matches_filters(n, filters))
        .collect();
    let name = |n: &Value| {
        n.get("Name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    nets.sort_by(|a, b| natural_cmp(&name(a), &name(b)));
    let rows: Vec<Value> = nets.into_iter().map(|n| network_row(n, no_trunc)).collect();
    let format = match format {
        "" | "table" if quiet => "{{.ID}}",
        f => f,
    };
    render_rows(format, DEFAULT_TABLE, &rows, &headers())
}

/// `network ls`.
pub async fn ls(ctx: &Ctx, p: &Parsed) -> CliResult<()> {
    let filters = crate::opts::parse_filters(&p.all("filter")).map_err(CliError::Other)?;
    let mut query = Vec::new();
    if !filters.is_empty() {
        query.push((
            "filters",
            serde_json::to_string(&filters).unwrap_or_default(),
        ));
    }
    let text = ctx.client.get_text("/networks", &query).await?;
    let list = Value::parse(text.trim())
        .map_err(|e| CliError::Other(format!("invalid network list: {e}")))?;
    out(&render_ls(
        &list,
        &filters,
        p.str_or("format", ""),
        p.bool("quiet"),
        p.bool("no-trunc"),
    )?);
    Ok(())
}

/// `network rm NET...`: prints each removed name; with `-f`, missing
/// networks are skipped silently. Like docker, a failure ends with an
/// "exit status 1" line after the per-network errors.
pub async fn rm(ctx: &Ctx, p: &Parsed) -> CliResult<()> {
    let force = p.bool("force");
    for_each_target(&p.args, |name| async move {
        match ctx
            .client
            .raw(Method::DELETE, &format!("/networks/{name}"), &[])
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if force && e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    })
    .await
    .map_err(|e| CliError::Other(format!("{e}\nexit status 1")))
}

/// The `POST /networks/{id}/connect` body for `network connect`'s flags.
pub fn connect_body(p: &Parsed) -> CliResult<serde_json::Value> {
    let container = p.args.get(1).cloned().unwrap_or_default();
    let mut driver_opts = serde_json::Map::new();
    for o in strings(p, "driver-opt") {
        match o.split_once('=') {
            Some((k, v)) => {
                driver_opts.insert(k.to_string(), json!(v));
            }
            None => {
                return Err(CliError::Other(
                    "invalid key/value pair format in driver options".into(),
                ))
            }
        }
    }
    let mut ipam = serde_json::Map::new();
    if let Some(ip) = p.last("ip").filter(|s| !s.is_empty()) {
        ipam.insert("IPv4Address".into(), json!(ip));
    }
    if let Some(ip) = p.last("ip6").filter(|s| !s.is_empty()) {
        ipam.insert("IPv6Address".into(), json!(ip));
    }
    let link_local = strings(p, "link-local-ip");
    if !link_local.is_empty() {
        ipam.insert("LinkLocalIPs".into(), json!(link_local));
    }
    let list = |v: Vec<String>| {
        if v.is_empty() {
            serde_json::Value::Null
        } else {
            json!(v)
        }
    };
    Ok(json!({
        "Container": container,
        "EndpointConfig": {
            "IPAMConfig": ipam,
            "Links": list(p.all("link")),
            "Aliases": list(strings(p, "alias")),
            "DriverOpts": if driver_opts.is_empty() { serde_json::Value::Null } else { driver_opts.into() },
            "GwPriority": p.int("gw-priority").unwrap_or(0),
        },
    }))
}

/// `network connect NET CONTAINER`.
pub async fn connect(ctx: &Ctx, p: &Parsed) -> CliResult<()> {
    let body = connect_body(p)?;
    let net = p.args.first().cloned().unwrap_or_default();
    send_json(
        ctx,
        Method::POST,
        &format!("/networks/{net}/connect"),
        &[],
        &body,
    )
    .await?;
    Ok(())
}

/// `network disconnect [-f] NET CONTAINER`.
pub async fn disconnect(ctx: &Ctx, p: &Parsed) -> CliResult<()> {
    let net = p.args.first().cloned().unwrap_or_default();
    let body = json!({
        "Container": p.args.get(1).cloned().unwrap_or_default(),
        "Force": p.bool("force"),
    });
    send_json(
        ctx,
        Method::POST,
        &format!("/networks/{net}/disconnect"),
        &[],
        &body,
    )
    .await?;
    Ok(())
}

/// Text printed after a prune that removed `deleted`.
pub fn prune_output(deleted: &[String]) -> String {
    if deleted.is_empty() {
        return String::new();
    }
    let mut text = String::from("Deleted Networks:\n");
    for d in deleted {
        text.push_str(d);
        text.push('\n');
    }
    text.push('\n');
    text
}

/// `network prune`.
pub async fn prune(ctx: &Ctx, p: &Parsed) -> CliResult<()> {
    let filters = crate::opts::parse_filters(&p.all("filter")).map_err(CliError::Other)?;
    if !p.bool("force")
        && !confirm("WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ")
    {
        return Err(CliError::exit(0));
    }
    let mut query = Vec::new();
    if !filters.is_empty() {
        query.push((
            "filters",
            serde_json::to_string(&filters).unwrap_or_default(),
        ));
    }
    let resp = ctx
        .client
        .raw(Method::POST, "/networks/prune", &query)
        .await?;
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| CliError::Other(format!("error reading response: {e}")))?
        .to_bytes();
    let v = Value::parse(String::from_utf8_lossy(&body).trim())
        .map_err(|e| CliError::Other(format!("invalid prune response: {e}")))?;
    let deleted: Vec<String> = v
        .get("NetworksDeleted")
        .and_then(Value::as_array)
        .unwrap_or(&[])
        .iter()
        .filter_map(|d| d.as_str().map(str::to_string))
        .collect();
    out(&prune_output(&deleted));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::command;
    use crate::flags;

    fn parse(path: &str, args: &[&str]) -> Parsed {
        let spec = command(path).unwrap();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        flags::parse(&spec, &args).unwrap()
    }

    fn parse_err(path: &str, args: &[&str]) -> String {
        let spec = command(path).unwrap();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        match flags::parse(&spec, &args) {
            Err(flags::FlagError::Bad(m)) => m,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    const LIST: &str = r#"[
      {"Name":"n10","Id":"e5d1c3c6f4b3a2a1e5d1c3c6f4b3a2a1e5d1c3c6f4b3a2a1e5d1c3c6f4b3a2a1","Created":"2026-01-02T03:04:05.5Z","Scope":"local","Driver":"bridge","EnableIPv6":false,"Internal":false,"Labels":{"b":"2","a":"1"}},
      {"Name":"bridge","Id":"1f2e3d4c5b6a1f2e3d4c5b6a1f2e3d4c5b6a1f2e3d4c5b6a1f2e3d4c5b6a1f2e","Created":"2026-01-02T03:04:05Z","Scope":"local","Driver":"bridge","Labels":{}},
      {"Name":"n9","Id":"aaaabbbbccccddddaaaabbbbccccddddaaaabbbbccccddddaaaabbbbccccdddd","Created":"2026-01-02T03:04:05Z","Scope":"local","Driver":"bridge","Labels":{}},
      {"Name":"host","Id":"686f7374686f7374686f7374686f7374686f7374686f7374686f7374686f7374","Created":"0001-01-01T00:00:00Z","Scope":"local","Driver":"host","Labels":{}},
      {"Name":"none","Id":"6e6f6e656e6f6e656e6f6e656e6f6e656e6f6e656e6f6e656e6f6e656e6f6e65","Created":"0001-01-01T00:00:00Z","Scope":"local","Driver":"null","Labels":{}}
    ]"#;

    #[test]
    fn ls_table_like_docker() {
        let list = Value::parse(LIST).unwrap();
        let none = HashMap::new();
        assert_eq!(
            render_ls(&list, &none, "", false, false).unwrap(),
            "NETWORK ID     NAME      DRIVER    SCOPE\n\
             1f2e3d4c5b6a   bridge    bridge    local\n\
             686f7374686f   host      host      local\n\
             aaaabbbbcccc   n9        bridge    local\n\
             e5d1c3c6f4b3   n10       bridge    local\n\
             6e6f6e656e6f   none      null      local\n"
        );
        assert_eq!(
            render_ls(&list, &none, "", true, false).unwrap(),
            "1f2e3d4c5b6a\n686f7374686f\naaaabbbbcccc\ne5d1c3c6f4b3\n6e6f6e656e6f\n"
        );
        let quiet_full = render_ls(&list, &none, "", true, true).unwrap();
        assert!(quiet_full
            .starts_with("1f2e3d4c5b6a1f2e3d4c5b6a1f2e3d4c5b6a1f2e3d4c5b6a1f2e3d4c5b6a1f2e\n"));
        // A custom format wins over -q, like docker.
        assert_eq!(
            render_ls(&list, &none, "{{.Name}}:{{.Labels}}", true, false).unwrap(),
            "bridge:\nhost:\nn9:\nn10:a=1,b=2\nnone:\n"
        );
        let mut f = HashMap::new();
        f.insert("name".to_string(), vec!["n1".to_string()]);
        assert_eq!(
            render_ls(&list, &f, "table {{.Name}}\t{{.CreatedAt}}", false, false).unwrap(),
            "NAME      CREATED AT\nn10       2026-01-02 03:04:05.5 +0000 UTC\n"
        );
        let mut f = HashMap::new();
        f.insert("type".to_string(), vec!["custom".to_string()]);
        f.insert("label".to_string(), vec!["a=1".to_string()]);
        assert_eq!(
            render_ls(&list, &f, "{{.ID}}", false, true).unwrap(),
            "e5d1c3c6f4b3a2a1e5d1c3c6f4b3a2a1e5d1c3c6f4b3a2a1e5d1c3c6f4b3a2a1\n"
        );
        let json = render_ls(&list, &HashMap::new(), "json", false, false).unwrap();
        assert_eq!(
            json.lines().next().unwrap(),
            r#"{"CreatedAt":"2026-01-02 03:04:05 +0000 UTC","Driver":"bridge","ID":"1f2e3d4c5b6a","IPv4":"false","IPv6":"false","Internal":"false","Labels":"","Name":"bridge","Scope":"local"}"#
        );
        assert_eq!(
            render_ls(&Value::parse("[]").unwrap(), &none, "", false, false).unwrap(),
            "NETWORK ID   NAME      DRIVER    SCOPE\n"
        );
    }

    #[test]
    fn natural_order() {
        let mut v = vec!["n10", "n9", "a", "n09x", "bridge", "n1"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, vec!["a", "bridge", "n1", "n9", "n09x", "n10"]);
    }

    #[test]
    fn create_flags_and_body() {
        let p = parse(
            "network create",
            &[
                "--subnet",
                "10.78.0.0/24",
                "--gateway=10.78.0.254",
                "--label",
                "a=b",
                "--internal",
                "--attachable",
                "-o",
                "mtu=1400",
                "n1",
            ],
        );
        assert_eq!(p.args, vec!["n1"]);
        let b = create_body(&p).unwrap();
        assert_eq!(b["Name"], "n1");
        assert_eq!(b["Driver"], "bridge");
        assert_eq!(b["CheckDuplicate"], true);
        assert_eq!(b["Internal"], true);
        assert_eq!(b["Attachable"], true);
        assert_eq!(b["Labels"], json!({"a": "b"}));
        assert_eq!(b["Options"], json!({"mtu": "1400"}));
        assert_eq!(b["IPAM"]["Driver"], "default");
        assert_eq!(
            b["IPAM"]["Config"],
            json!([{"Subnet": "10.78.0.0/24", "Gateway": "10.78.0.254"}])
        );
        assert!(b["ConfigFrom"].is_null());
        assert!(b.get("EnableIPv6").is_none());

        let p = parse("network create", &["-d", "macvlan", "--ipv6", "x"]);
        let b = create_body(&p).unwrap();
        assert_eq!(b["Driver"], "macvlan");
        assert_eq!(b["EnableIPv6"], true);
        assert_eq!(b["IPAM"]["Config"], json!([]));

        // Docker's client-side checks.
        let err = |args: &[&str]| {
            create_body(&parse("network create", args))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(&["--gateway", "10.0.0.1", "x"]),
            "every ip-range or gateway must have a corresponding subnet"
        );
        assert_eq!(
            err(&["--subnet", "10.0.0.0/24,10.0.0.0/16", "x"]),
            "multiple overlapping subnet configuration is not supported"
        );
        assert_eq!(
            err(&["--subnet", "10.0.0.300/24", "--gateway", "1.2.3.4", "x"]),
            "invalid subnet: invalid CIDR address: 10.0.0.300/24"
        );
        assert_eq!(
            err(&["--subnet", "10.0.0.0/24", "--gateway", "1.2.3.4", "x"]),
            "no matching subnet for gateway 1.2.3.4"
        );
        assert_eq!(
            err(&[
                "--subnet",
                "10.0.0.0/24",
                "--subnet",
                "10.1.0.0/24",
                "--ip-range",
                "10.0.0.0/25",
                "--ip-range",
                "10.0.0.128/25",
                "x"
            ]),
            "cannot configure multiple ranges (10.0.0.128/25, 10.0.0.0/25) on the same subnet (10.0.0.0/24)"
        );

        assert_eq!(
            parse_err("network create", &["--label", "", "x"]),
            "invalid argument \"\" for \"--label\" flag: invalid label '': empty name"
        );
        assert_eq!(
            parse_err("network create", &["--driver-opt", "x", "y"]),
            "unknown flag: --driver-opt"
        );
    }

    #[test]
    fn ipam_grouping() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let c = ipam_configs(
            &s(&["10.1.0.0/16", "fd00::/64"]),
            &s(&["10.1.2.0/24"]),
            &s(&["fd00::1", "10.1.0.1"]),
            &[("h".into(), "10.1.0.5".into())],
        )
        .unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].ip_range, "10.1.2.0/24");
        assert_eq!(c[0].gateway, "10.1.0.1");
        assert_eq!(c[0].aux, vec![("h".to_string(), "10.1.0.5".to_string())]);
        assert_eq!(c[1].gateway, "fd00::1");
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("10.0.0.0").is_err());
        assert!(subnet_matches("0.0.0.0/0", "1.2.3.4").unwrap());
        assert!(!subnet_matches("10.0.0.0/8", "fd00::1").unwrap());
    }

    #[test]
    fn connect_and_other_flags() {
        let p = parse(
            "network connect",
            &[
                "--alias",
                "a,b",
                "--alias=c",
                "--ip",
                "10.0.0.5",
                "n1",
                "web",
            ],
        );
        assert_eq!(p.args, vec!["n1", "web"]);
        let b = connect_body(&p).unwrap();
        assert_eq!(b["Container"], "web");
        assert_eq!(b["EndpointConfig"]["Aliases"], json!(["a", "b", "c"]));
        assert_eq!(
            b["EndpointConfig"]["IPAMConfig"],
            json!({"IPv4Address": "10.0.0.5"})
        );
        assert!(b["EndpointConfig"]["Links"].is_null());
        let p = parse("network connect", &["--driver-opt", "novalue", "n", "c"]);
        assert_eq!(
            connect_body(&p).unwrap_err().to_string(),
            "invalid key/value pair format in driver options"
        );

        let p = parse("network disconnect", &["-f", "n1", "web"]);
        assert!(p.bool("force"));
        let p = parse("network rm", &["-f", "a", "b"]);
        assert!(p.bool("force"));
        assert_eq!(p.args, vec!["a", "b"]);
        let p = parse("network ls", &["-q", "--no-trunc", "-f", "name=x"]);
        assert!(p.bool("quiet") && p.bool("no-trunc"));
        assert_eq!(p.all("filter"), vec!["name=x"]);
        assert!(parse_err("network ls", &["-f", "bad"]).contains("bad format of filter"));
        let p = parse("network inspect", &["-v", "-f", "{{.Id}}", "n1", "n2"]);
        assert!(p.bool("verbose"));
        assert_eq!(p.last("format"), Some("{{.Id}}"));
        let p = parse("network prune", &["-f", "--filter", "until=1h"]);
        assert!(p.bool("force"));
    }

    #[test]
    fn prune_text() {
        assert_eq!(prune_output(&[]), "");
        assert_eq!(
            prune_output(&["a".into(), "b".into()]),
            "Deleted Networks:\na\nb\n\n"
        );
    }

    #[test]
    fn go_time_strings() {
        assert_eq!(
            go_time("0001-01-01T00:00:00Z"),
            "0001-01-01 00:00:00 +0000 UTC"
        );
        assert_eq!(
            go_time("2026-03-04T05:06:07.120000000+01:00"),
            "2026-03-04 05:06:07.12 +0100 +0100"
        );
    }
}
