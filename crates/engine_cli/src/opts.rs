//! Parsers for flag values (sizes, CPUs, ports, volumes, mounts, ulimits,
//! env files, ...). Each returns docker's error wording so the caller can
//! wrap it in docker's `invalid argument "..." for "..." flag: ...` form.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use bollard::models::{
    DeviceMapping, Mount, MountBindOptions, MountBindOptionsPropagationEnum, MountTmpfsOptions,
    MountType, MountVolumeOptions, MountVolumeOptionsDriverConfig, PortBinding,
    ResourcesBlkioWeightDevice, ResourcesUlimits, ThrottleDevice,
};

/// Go's `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("strconv.ParseBool: parsing {s:?}: invalid syntax")),
    }
}

/// Go's `strconv.ParseInt(s, 10, 64)` error wording.
pub fn parse_int(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.ParseInt: parsing {s:?}: invalid syntax"));
    }
    s.parse::<i64>()
        .map_err(|_| format!("strconv.ParseInt: parsing {s:?}: value out of range"))
}

/// Go's `strconv.ParseUint(s, 10, bits)` error wording.
pub fn parse_uint(s: &str, bits: u32) -> Result<u64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.ParseUint: parsing {s:?}: invalid syntax"));
    }
    let v = s
        .parse::<u64>()
        .map_err(|_| format!("strconv.ParseUint: parsing {s:?}: value out of range"))?;
    if bits < 64 && v >= (1u64 << bits) {
        return Err(format!(
            "strconv.ParseUint: parsing {s:?}: value out of range"
        ));
    }
    Ok(v)
}

fn parse_float(s: &str) -> Result<f64, String> {
    let ok = !s.is_empty()
        && s.bytes().any(|b| b.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
    match (ok, s.parse::<f64>()) {
        (true, Ok(v)) => Ok(v),
        _ => Err(format!("strconv.ParseFloat: parsing {s:?}: invalid syntax")),
    }
}

/// go-units `RAMInBytes`: "64m", "1g", "512k", "1.5GiB", "100" (bytes).
pub fn ram_in_bytes(size: &str) -> Result<i64, String> {
    let sep = match size.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ') {
        Some(p) => p,
        None => return Err(format!("invalid size: '{size}'")),
    };
    let (num, sfx) = if size.as_bytes()[sep] == b' ' {
        (&size[..sep], &size[sep + 1..])
    } else {
        (&size[..=sep], &size[sep + 1..])
    };
    let value = parse_float(num)?;
    if value < 0.0 {
        return Err(format!("invalid size: '{size}'"));
    }
    if sfx.is_empty() {
        return Ok(value as i64);
    }
    let bad = || format!("invalid suffix: '{sfx}'");
    if sfx.len() > 3 {
        return Err(bad());
    }
    let lower = sfx.to_ascii_lowercase();
    let b = lower.as_bytes();
    if b[0] == b'b' {
        return if b.len() == 1 {
            Ok(value as i64)
        } else {
            Err(bad())
        };
    }
    let mul: f64 = match b[0] {
        b'k' => 1024.0,
        b'm' => 1024.0 * 1024.0,
        b'g' => 1024.0 * 1024.0 * 1024.0,
        b't' => 1024f64.powi(4),
        b'p' => 1024f64.powi(5),
        _ => return Err(bad()),
    };
    let rest_ok = match b.len() {
        1 => true,
        2 => b[1] == b'i' || b[1] == b'b',
        _ => b[1] == b'i' && b[2] == b'b',
    };
    if !rest_ok {
        return Err(bad());
    }
    Ok((value * mul) as i64)
}

/// `--memory-swap`: "-1" means unlimited, otherwise a RAM size.
pub fn mem_swap_bytes(s: &str) -> Result<i64, String> {
    if s == "-1" {
        return Ok(-1);
    }
    ram_in_bytes(s)
}

/// `--cpus`: a rational number of CPUs converted to NanoCPUs.
pub fn parse_cpus(s: &str) -> Result<i64, String> {
    let fail = || format!("failed to parse {s} as a rational number");
    // Fraction form "a/b".
    if let Some((n, d)) = s.split_once('/') {
        let n: i128 = n.trim().parse().map_err(|_| fail())?;
        let d: i128 = d.trim().parse().map_err(|_| fail())?;
        if d == 0 {
            return Err(fail());
        }
        let scaled = n * 1_000_000_000;
        if scaled % d != 0 {
            return Err("value is too precise".into());
        }
        return i64::try_from(scaled / d).map_err(|_| fail());
    }
    // Decimal form with optional exponent: exact arithmetic on digits.
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(p) => (&s[..p], s[p + 1..].parse::<i32>().map_err(|_| fail())?),
        None => (s, 0),
    };
    let (neg, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(fail());
    }
    let digits = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    // value = digits * 10^(exp - frac_len); nano = value * 10^9
    let shift = exp + 9 - frac_part.len() as i32;
    let mut value: i128 = if digits.is_empty() {
        0
    } else {
        if digits.len() > 30 {
            return Err(fail());
        }
        digits.parse().map_err(|_| fail())?
    };
    if shift >= 0 {
        for _ in 0..shift {
            value = value.checked_mul(10).ok_or_else(fail)?;
        }
    } else {
        for _ in 0..(-shift) {
            if value % 10 != 0 {
                return Err("value is too precise".into());
            }
            value /= 10;
        }
    }
    if neg {
        value = -value;
    }
    i64::try_from(value).map_err(|_| fail())
}

/// `--restart`: returns (policy name, max retry count). Docker's CLI only
/// checks the syntax; an unknown name is reported like the daemon does.
pub fn parse_restart(policy: &str) -> Result<(String, i64), String> {
    let (name, count) = match policy.split_once(':') {
        Some(("", _)) => {
            return Err("invalid restart policy format: no policy provided before colon".into())
        }
        Some((n, c)) => (n, c),
        None => (policy, ""),
    };
    let retries = if count.is_empty() {
        0
    } else {
        count.parse::<i64>().map_err(|_| {
            "invalid restart policy format: maximum retry count must be an integer".to_string()
        })?
    };
    match name {
        "" | "no" | "always" | "unless-stopped" => {
            if retries != 0 {
                return Err("invalid restart policy: maximum retry count can only be used with 'on-failure'".to_string());
            }
        }
        "on-failure" => {
            if retries < 0 {
                return Err(
                    "invalid restart policy: maximum retry count cannot be negative".to_string()
                );
            }
        }
        other => {
            return Err(format!(
                "invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
            ))
        }
    }
    Ok((name.to_string(), retries))
}

/// Splits "80/udp" into ("udp", "80"); protocol defaults to tcp.
pub fn split_proto_port(raw: &str) -> (String, String) {
    let parts: Vec<&str> = raw.split('/').collect();
    if raw.is_empty() || parts[0].is_empty() {
        return (String::new(), String::new());
    }
    if parts.len() == 1 || parts[1].is_empty() {
        return ("tcp".into(), parts[0].to_string());
    }
    (parts[1].to_string(), parts[0].to_string())
}

/// "8000" or "8000-8010" → (start, end).
pub fn parse_port_range(ports: &str) -> Result<(u16, u16), String> {
    if ports.is_empty() {
        return Err("empty string specified for ports".into());
    }
    let parse = |p: &str| -> Result<u16, String> { parse_uint(p, 16).map(|v| v as u16) };
    match ports.split_once('-') {
        None => {
            let p = parse(ports)?;
            Ok((p, p))
        }
        Some((a, b)) => {
            let (start, end) = (parse(a)?, parse(b)?);
            if end < start {
                return Err(format!("invalid range specified for port: {ports}"));
            }
            Ok((start, end))
        }
    }
}

/// Exposed ports (sorted set of "port/proto") and bindings from `-p` specs.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PortSpecs {
    /// Keys like "80/tcp".
    pub exposed: BTreeMap<String, ()>,
    /// Bindings per "port/proto" key.
    pub bindings: BTreeMap<String, Vec<PortBinding>>,
}

/// Parses `-p` values: `[ip:][hostPort:]containerPort[/proto]` with ranges.
pub fn parse_port_specs(specs: &[String]) -> Result<PortSpecs, String> {
    let mut out = PortSpecs::default();
    for raw in specs {
        let parts: Vec<&str> = raw.split(':').collect();
        let n = parts.len();
        let (mut ip, host_port, ctr) = match n {
            1 => (String::new(), "", parts[0]),
            2 => (String::new(), parts[0], parts[1]),
            3 => (parts[0].to_string(), parts[1], parts[2]),
            _ => (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1]),
        };
        let (proto, ctr_port) = split_proto_port(ctr);
        if ip.starts_with('[') {
            match ip.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
                Some(inner) => ip = inner.to_string(),
                None => return Err(format!("invalid IP address {ip}: missing ']' in address")),
            }
        }
        if !ip.is_empty() && ip.parse::<IpAddr>().is_err() {
            return Err(format!("invalid IP address: {ip}"));
        }
        if ctr_port.is_empty() {
            return Err(format!("no port specified: {raw}<empty>"));
        }
        let (start, end) = parse_port_range(&ctr_port)
            .map_err(|_| format!("invalid containerPort: {ctr_port}"))?;
        let (hstart, hend) = if host_port.is_empty() {
            (0, 0)
        } else {
            parse_port_range(host_port).map_err(|_| format!("invalid hostPort: {host_port}"))?
        };
        if !host_port.is_empty() && (end - start) != (hend - hstart) && end != start {
            return Err(format!(
                "invalid ranges specified for container and host Ports: {ctr_port} and {host_port}"
            ));
        }
        let proto = proto.to_ascii_lowercase();
        if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
            return Err(format!("invalid proto: {proto}"));
        }
        for i in 0..=(end - start) {
            let port = start + i;
            let hp = if host_port.is_empty() {
                String::new()
            } else if start == end && hstart != hend {
                format!("{hstart}-{hend}")
            } else {
                (hstart + i).to_string()
            };
            let key = format!("{port}/{proto}");
            out.exposed.insert(key.clone(), ());
            out.bindings.entry(key).or_default().push(PortBinding {
                host_ip: Some(ip.clone()),
                host_port: Some(hp),
            });
        }
    }
    Ok(out)
}

/// `--expose` values: "80", "80/udp", "7000-7010".
pub fn parse_expose(values: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for e in values {
        if e.contains(':') {
            return Err(format!("invalid port format for --expose: {e}"));
        }
        let (proto, port) = split_proto_port(e);
        let (start, end) = parse_port_range(&port)
            .map_err(|err| format!("invalid range format for --expose: {e}, error: {err}"))?;
        for p in start..=end {
            let key = format!("{p}/{proto}");
            if !out.contains(&key) {
                out.push(key);
            }
        }
    }
    Ok(out)
}

/// A parsed `-v` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSpec {
    /// Host path or volume name; empty for an anonymous volume.
    pub source: String,
    /// Path inside the container.
    pub target: String,
    /// Mode string (e.g. "ro", "rw,z"), may be empty.
    pub mode: String,
    /// True when the source is a host path (bind mount).
    pub is_bind: bool,
}

/// Parses `-v` like docker's CLI: `[source:]target[:mode]`.
pub fn parse_volume(spec: &str) -> Result<VolumeSpec, String> {
    if spec.is_empty() {
        return Err("invalid empty volume spec".into());
    }
    if spec.chars().count() <= 2 {
        return Ok(VolumeSpec {
            source: String::new(),
            target: spec.to_string(),
            mode: String::new(),
            is_bind: false,
        });
    }
    let parts: Vec<&str> = spec.split(':').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!(
            "invalid spec: {spec}: empty section between colons"
        ));
    }
    let (source, target, mode) = match parts.as_slice() {
        [t] => ("", *t, ""),
        [s, t] => (*s, *t, ""),
        [s, t, m] => (*s, *t, *m),
        _ => return Err(format!("invalid spec: {spec}: too many colons")),
    };
    let is_bind = matches!(source.as_bytes().first(), Some(b'.' | b'/' | b'~'));
    Ok(VolumeSpec {
        source: source.to_string(),
        target: target.to_string(),
        mode: mode.to_string(),
        is_bind,
    })
}

/// Splits a CSV field list, honouring double quotes like Go's csv reader.
fn split_csv(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if in_quotes && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if in_quotes {
        return Err(format!(
            "parse error on line 1, column {}: extraneous or missing \" in quoted-field",
            s.len()
        ));
    }
    out.push(cur);
    Ok(out)
}

/// Parses `--mount type=...,source=...,target=...,readonly`.
pub fn parse_mount(value: &str) -> Result<Mount, String> {
    let mut m = Mount::default();
    let mut typ: Option<String> = None;
    let mut bind = MountBindOptions::default();
    let mut has_bind = false;
    let mut vol = MountVolumeOptions::default();
    let mut has_vol = false;
    let mut tmpfs = MountTmpfsOptions::default();
    let mut has_tmpfs = false;
    for field in split_csv(value)? {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.to_string())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let flag_val = |v: &Option<String>| -> Result<bool, String> {
            match v {
                None => Ok(true),
                Some(s) => parse_bool(s).map_err(|_| format!("invalid value for {key}: {s}")),
            }
        };
        if val.is_none()
            && !matches!(
                key.as_str(),
                "readonly" | "ro" | "volume-nocopy" | "bind-nonrecursive"
            )
        {
            return Err(format!("invalid field '{field}' must be a key=value pair"));
        }
        let v = val.clone().unwrap_or_default();
        match key.as_str() {
            "type" => typ = Some(v.to_ascii_lowercase()),
            "source" | "src" => m.source = Some(v),
            "target" | "dst" | "destination" => m.target = Some(v),
            "readonly" | "ro" => m.read_only = Some(flag_val(&val)?),
            "consistency" => m.consistency = Some(v),
            "bind-propagation" => {
                has_bind = true;
                bind.propagation = Some(
                    v.parse::<MountBindOptionsPropagationEnum>()
                        .map_err(|_| format!("invalid value for {key}: {v}"))?,
                );
            }
            "bind-nonrecursive" => {
                has_bind = true;
                bind.non_recursive = Some(flag_val(&val)?);
            }
            "volume-nocopy" => {
                has_vol = true;
                vol.no_copy = Some(flag_val(&val)?);
            }
            "volume-subpath" => {
                has_vol = true;
                vol.subpath = Some(v);
            }
            "volume-label" => {
                has_vol = true;
                let (k, lv) = v.split_once('=').unwrap_or((v.as_str(), ""));
                vol.labels
                    .get_or_insert_with(HashMap::new)
                    .insert(k.to_string(), lv.to_string());
            }
            "volume-driver" => {
                has_vol = true;
                vol.driver_config
                    .get_or_insert_with(MountVolumeOptionsDriverConfig::default)
                    .name = Some(v);
            }
            "volume-opt" => {
                has_vol = true;
                let (k, ov) = v.split_once('=').unwrap_or((v.as_str(), ""));
                vol.driver_config
                    .get_or_insert_with(MountVolumeOptionsDriverConfig::default)
                    .options
                    .get_or_insert_with(HashMap::new)
                    .insert(k.to_string(), ov.to_string());
            }
            "tmpfs-size" => {
                has_tmpfs = true;
                tmpfs.size_bytes =
                    Some(ram_in_bytes(&v).map_err(|_| format!("invalid value for {key}: {v}"))?);
            }
            "tmpfs-mode" => {
                has_tmpfs = true;
                tmpfs.mode = Some(
                    i64::from_str_radix(&v, 8)
                        .map_err(|_| format!("invalid value for {key}: {v}"))?,
                );
            }
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    let typ = typ.unwrap_or_else(|| "volume".into());
    let mt: MountType = typ
        .parse()
        .map_err(|_| format!("invalid mount type: {typ:?}"))?;
    if m.target.as_deref().unwrap_or("").is_empty() {
        return Err("target is required".into());
    }
    if has_bind && mt != MountType::BIND {
        return Err(format!(
            "cannot mix 'bind-*' options with mount type '{typ}'"
        ));
    }
    if has_vol && mt != MountType::VOLUME {
        return Err(format!(
            "cannot mix 'volume-*' options with mount type '{typ}'"
        ));
    }
    if has_tmpfs && mt != MountType::TMPFS {
        return Err(format!(
            "cannot mix 'tmpfs-*' options with mount type '{typ}'"
        ));
    }
    m.typ = Some(mt);
    if has_bind {
        m.bind_options = Some(bind);
    }
    if has_vol {
        m.volume_options = Some(vol);
    }
    if has_tmpfs {
        m.tmpfs_options = Some(tmpfs);
    }
    Ok(m)
}

/// `--tmpfs /path[:options]` → (path, options).
pub fn parse_tmpfs(value: &str) -> (String, String) {
    match value.split_once(':') {
        Some((p, o)) => (p.to_string(), o.to_string()),
        None => (value.to_string(), String::new()),
    }
}

const ULIMIT_NAMES: [&str; 15] = [
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// `--ulimit name=soft[:hard]`.
pub fn parse_ulimit(val: &str) -> Result<ResourcesUlimits, String> {
    let (name, limits) = val
        .split_once('=')
        .ok_or_else(|| format!("invalid ulimit argument: {val}"))?;
    if !ULIMIT_NAMES.contains(&name) {
        return Err(format!("invalid ulimit type: {name}"));
    }
    let vals: Vec<&str> = limits.split(':').collect();
    let (soft, hard) = match vals.as_slice() {
        [s] => {
            let s = parse_int(s)?;
            (s, s)
        }
        [s, h] => (parse_int(s)?, parse_int(h)?),
        _ => {
            return Err(format!(
                "too many limit value arguments - {limits}, can only have up to two, `soft[:hard]`"
            ))
        }
    };
    if hard != -1 && soft > hard {
        return Err(format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        ));
    }
    Ok(ResourcesUlimits {
        name: Some(name.to_string()),
        soft: Some(soft),
        hard: Some(hard),
    })
}

/// `-e KEY=VAL` or `-e KEY` (taken from the environment when set).
pub fn validate_env(val: &str) -> Result<String, String> {
    let (k, _) = val.split_once('=').unwrap_or((val, ""));
    if k.is_empty() {
        return Err(format!("invalid environment variable: {val}"));
    }
    if val.contains('=') {
        return Ok(val.to_string());
    }
    match std::env::var(k) {
        Ok(v) => Ok(format!("{k}={v}")),
        Err(_) => Ok(val.to_string()),
    }
}

/// Parses the content of an env/label file (docker's `--env-file` format).
/// `lookup` resolves lines that name a variable without a value.
pub fn parse_kv_file(
    name: &str,
    content: &[u8],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for (idx, raw_line) in content.split(|b| *b == b'\n').enumerate() {
        let mut line_bytes = raw_line;
        if idx == 0 {
            line_bytes = line_bytes
                .strip_prefix(b"\xEF\xBB\xBF")
                .unwrap_or(line_bytes);
        }
        let line_bytes = line_bytes.strip_suffix(b"\r").unwrap_or(line_bytes);
        let line = std::str::from_utf8(line_bytes).map_err(|_| {
            format!(
                "env file {name} contains invalid utf8 bytes at line {}: {:?}",
                idx + 1,
                line_bytes
            )
        })?;
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (var, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (line, None),
        };
        if var.is_empty() {
            return Err(format!("no variable name on line '{line}'"));
        }
        if var.contains([' ', '\t', '\n', '\r', '\u{b}', '\u{c}']) {
            return Err(format!(
                "poorly formatted environment: variable '{var}' contains whitespaces"
            ));
        }
        match value {
            Some(v) => out.push(format!("{var}={v}")),
            None => {
                if let Some(v) = lookup(var) {
                    out.push(format!("{}={v}", var.trim()));
                }
            }
        }
    }
    Ok(out)
}

/// Reads env files then appends the `-e` values (docker's `ReadKVEnvStrings`).
pub fn read_env(files: &[String], overrides: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for f in files {
        let content = std::fs::read(f).map_err(|e| format!("open {f}: {}", io_msg(&e)))?;
        out.extend(parse_kv_file(f, &content, &|k| std::env::var(k).ok())?);
    }
    out.extend(overrides.iter().cloned());
    Ok(out)
}

/// Reads label files then the `-l` values into a map ("k" alone → "").
pub fn read_labels(files: &[String], labels: &[String]) -> Result<HashMap<String, String>, String> {
    let mut all = Vec::new();
    for f in files {
        let content = std::fs::read(f).map_err(|e| format!("open {f}: {}", io_msg(&e)))?;
        all.extend(parse_kv_file(f, &content, &|_| None)?);
    }
    all.extend(labels.iter().cloned());
    Ok(all
        .into_iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l, String::new()),
        })
        .collect())
}

/// Go-style rendering of an I/O error ("no such file or directory").
pub fn io_msg(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code)
            .desc()
            .to_ascii_lowercase(),
        None => e.to_string(),
    }
}

/// `--add-host name:ip` / `name=ip` → "name:ip".
pub fn validate_extra_host(val: &str) -> Result<String, String> {
    let (k, v) = match val.split_once('=') {
        Some(kv) => kv,
        None => val.split_once(':').unwrap_or((val, "")),
    };
    if (!val.contains('=') && !val.contains(':')) || k.is_empty() || k.contains(':') {
        return Err(format!("bad format for add-host: {val:?}"));
    }
    let mut ip = v;
    if ip != "host-gateway" {
        if ip.len() > 2 && ip.starts_with('[') && ip.ends_with(']') {
            ip = &ip[1..ip.len() - 1];
        }
        if ip.parse::<IpAddr>().is_err() {
            return Err(format!("invalid IP address in add-host: {ip:?}"));
        }
    }
    Ok(format!("{k}:{ip}"))
}

/// `--dns` values must be IP addresses.
pub fn validate_ip(val: &str) -> Result<(), String> {
    val.trim()
        .parse::<IpAddr>()
        .map(|_| ())
        .map_err(|_| format!("IP address is not correctly formatted: {val}"))
}

/// `--device /dev/x[:/dev/y][:rwm]`.
pub fn parse_device(val: &str) -> Result<DeviceMapping, String> {
    let parts: Vec<&str> = val.split(':').collect();
    let valid_mode = |m: &str| !m.is_empty() && m.chars().all(|c| matches!(c, 'r' | 'w' | 'm'));
    let (src, dst, perms) = match parts.as_slice() {
        [s] => (*s, *s, "rwm"),
        [s, x] if valid_mode(x) => (*s, *s, *x),
        [s, d] => (*s, *d, "rwm"),
        [s, d, m] if valid_mode(m) => (*s, *d, *m),
        _ => return Err(format!("invalid device specification: {val}")),
    };
    if src.is_empty() {
        return Err(format!("invalid device specification: {val}"));
    }
    Ok(DeviceMapping {
        path_on_host: Some(src.to_string()),
        path_in_container: Some(dst.to_string()),
        cgroup_permissions: Some(perms.to_string()),
    })
}

/// `--device-read-bps /dev/sda:1mb` (rate in bytes per second).
pub fn parse_throttle_bps(val: &str) -> Result<ThrottleDevice, String> {
    let (path, rate) = val
        .split_once(':')
        .ok_or_else(|| format!("bad format: {val}"))?;
    if !path.starts_with("/dev/") {
        return Err(format!("bad format for device path: {val}"));
    }
    let rate = ram_in_bytes(rate).map_err(|_| {
        format!("invalid rate for device: {val}. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb")
    })?;
    Ok(ThrottleDevice {
        path: Some(path.to_string()),
        rate: Some(rate),
    })
}

/// `--device-read-iops /dev/sda:1000`.
pub fn parse_throttle_iops(val: &str) -> Result<ThrottleDevice, String> {
    let (path, rate) = val
        .split_once(':')
        .ok_or_else(|| format!("bad format: {val}"))?;
    if !path.starts_with("/dev/") {
        return Err(format!("bad format for device path: {val}"));
    }
    let rate = parse_uint(rate, 64).map_err(|_| {
        format!("invalid rate for device: {val}. The correct format is <device-path>:<number>. Number must be a positive integer")
    })?;
    Ok(ThrottleDevice {
        path: Some(path.to_string()),
        rate: Some(rate as i64),
    })
}

/// `--blkio-weight-device /dev/sda:300` (weight 10..=1000 or 0).
pub fn parse_weight_device(val: &str) -> Result<ResourcesBlkioWeightDevice, String> {
    let (path, weight) = val
        .split_once(':')
        .ok_or_else(|| format!("bad format: {val}"))?;
    if !path.starts_with("/dev/") {
        return Err(format!("bad format for device path: {val}"));
    }
    let w = parse_uint(weight, 16).map_err(|_| format!("invalid weight for device: {val}"))?;
    if w > 0 && !(10..=1000).contains(&w) {
        return Err(format!(
            "invalid weight for device: {val}. The correct format is <device-path>:<weight>. Weight must be between 10 and 1000"
        ));
    }
    Ok(ResourcesBlkioWeightDevice {
        path: Some(path.to_string()),
        weight: Some(w as usize),
    })
}

/// Go's `time.ParseDuration`, returning nanoseconds.
pub fn parse_go_duration(s: &str) -> Result<i64, String> {
    let err = || format!("time: invalid duration {s:?}");
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(err());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return Err(err());
        }
        let num: f64 = rest[..num_end].parse().map_err(|_| err())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let mul = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("time: missing unit in duration {s:?}")),
            other => return Err(format!("time: unknown unit {other:?} in duration {s:?}")),
        };
        total += num * mul;
    }
    if total > i64::MAX as f64 {
        return Err(err());
    }
    let v = total.round() as i64;
    Ok(if neg { -v } else { v })
}

/// Docker's `GetTimestamp` for `--since`/`--until`: a Go duration is taken
/// relative to `now` (unix seconds), RFC 3339 and date forms become
/// "secs.nanos", anything else (a unix timestamp) passes through.
pub fn get_timestamp(value: &str, now: i64) -> Result<String, String> {
    if value != "0" {
        if let Ok(d) = parse_go_duration(value) {
            return Ok((now - d / 1_000_000_000).to_string());
        }
    }
    let looks_like_time = value.contains('-') || value.contains(':') || value.contains('T');
    if !looks_like_time {
        return Ok(value.to_string());
    }
    use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, TimeZone};
    let fmt = |t: DateTime<chrono::FixedOffset>| {
        format!("{}.{:09}", t.timestamp(), t.timestamp_subsec_nanos())
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(fmt(t));
    }
    for layout in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(value, layout) {
            if let Some(t) = Local.from_local_datetime(&n).single() {
                return Ok(fmt(t.fixed_offset()));
            }
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        if let Some(t) = d
            .and_hms_opt(0, 0, 0)
            .and_then(|n| Local.from_local_datetime(&n).single())
        {
            return Ok(fmt(t.fixed_offset()));
        }
    }
    Err(format!(
        "parsing time {value:?}: cannot parse as a timestamp or duration"
    ))
}

/// `-f key=value` filters → JSON `{"key":["v1","v2"]}` (docker's filter args encoding).
pub fn parse_filters(values: &[String]) -> Result<HashMap<String, Vec<String>>, String> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for f in values {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| "bad format of filter (expected name=value)".to_string())?;
        out.entry(k.trim().to_ascii_lowercase())
            .or_default()
            .push(v.trim().to_string());
    }
    Ok(out)
}

/// Validates the `--pull` value.
pub fn validate_pull(val: &str) -> Result<(), String> {
    match val {
        "always" | "missing" | "never" | "" => Ok(()),
        _ => Err(format!(
            "invalid pull option: '{val}': must be one of \"always\", \"missing\" or \"never\""
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes() {
        assert_eq!(ram_in_bytes("64m"), Ok(64 * 1024 * 1024));
        assert_eq!(ram_in_bytes("1g"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("1G"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("512k"), Ok(512 * 1024));
        assert_eq!(ram_in_bytes("512kb"), Ok(512 * 1024));
        assert_eq!(ram_in_bytes("1.5GiB"), Ok(1_610_612_736));
        assert_eq!(ram_in_bytes("100"), Ok(100));
        assert_eq!(ram_in_bytes("100b"), Ok(100));
        assert_eq!(ram_in_bytes("32 MB"), Ok(32 * 1024 * 1024));
        assert_eq!(ram_in_bytes("abc"), Err("invalid size: 'abc'".into()));
        assert_eq!(ram_in_bytes("-1"), Err("invalid size: '-1'".into()));
        assert_eq!(ram_in_bytes("10x"), Err("invalid suffix: 'x'".into()));
        assert_eq!(ram_in_bytes("10mbb"), Err("invalid suffix: 'mbb'".into()));
        assert_eq!(ram_in_bytes("10bi"), Err("invalid suffix: 'bi'".into()));
        assert_eq!(
            ram_in_bytes("1.2.3m"),
            Err("strconv.ParseFloat: parsing \"1.2.3\": invalid syntax".into())
        );
        assert_eq!(mem_swap_bytes("-1"), Ok(-1));
        assert_eq!(mem_swap_bytes("128m"), Ok(128 << 20));
    }

    #[test]
    fn cpus() {
        assert_eq!(parse_cpus("0.5"), Ok(500_000_000));
        assert_eq!(parse_cpus("1.5"), Ok(1_500_000_000));
        assert_eq!(parse_cpus("2"), Ok(2_000_000_000));
        assert_eq!(parse_cpus(".25"), Ok(250_000_000));
        assert_eq!(parse_cpus("3/2"), Ok(1_500_000_000));
        assert_eq!(parse_cpus("1e-1"), Ok(100_000_000));
        assert_eq!(
            parse_cpus("0.0000000001"),
            Err("value is too precise".into())
        );
        assert_eq!(
            parse_cpus("abc"),
            Err("failed to parse abc as a rational number".into())
        );
        assert_eq!(
            parse_cpus(""),
            Err("failed to parse  as a rational number".into())
        );
    }

    #[test]
    fn restart_policy() {
        assert_eq!(parse_restart("no"), Ok(("no".into(), 0)));
        assert_eq!(parse_restart("always"), Ok(("always".into(), 0)));
        assert_eq!(
            parse_restart("unless-stopped"),
            Ok(("unless-stopped".into(), 0))
        );
        assert_eq!(parse_restart("on-failure"), Ok(("on-failure".into(), 0)));
        assert_eq!(parse_restart("on-failure:3"), Ok(("on-failure".into(), 3)));
        assert!(parse_restart("on-failure:x")
            .unwrap_err()
            .contains("must be an integer"));
        assert!(parse_restart(":3")
            .unwrap_err()
            .contains("no policy provided"));
        assert!(parse_restart("foo")
            .unwrap_err()
            .contains("unknown policy 'foo'"));
        assert!(parse_restart("always:2").is_err());
    }

    fn bind(ip: &str, port: &str) -> PortBinding {
        PortBinding {
            host_ip: Some(ip.into()),
            host_port: Some(port.into()),
        }
    }

    #[test]
    fn ports() {
        let p = parse_port_specs(&["8000:80".into()]).unwrap();
        assert!(p.exposed.contains_key("80/tcp"));
        assert_eq!(p.bindings["80/tcp"], vec![bind("", "8000")]);

        let p = parse_port_specs(&["127.0.0.1:8000:80/udp".into()]).unwrap();
        assert_eq!(p.bindings["80/udp"], vec![bind("127.0.0.1", "8000")]);

        let p = parse_port_specs(&["127.0.0.1::80".into()]).unwrap();
        assert_eq!(p.bindings["80/tcp"], vec![bind("127.0.0.1", "")]);

        let p = parse_port_specs(&["80".into()]).unwrap();
        assert_eq!(p.bindings["80/tcp"], vec![bind("", "")]);

        let p = parse_port_specs(&["[::1]:8080:80".into()]).unwrap();
        assert_eq!(p.bindings["80/tcp"], vec![bind("::1", "8080")]);

        let p = parse_port_specs(&["8000-8001:80-81".into()]).unwrap();
        assert_eq!(p.bindings["80/tcp"], vec![bind("", "8000")]);
        assert_eq!(p.bindings["81/tcp"], vec![bind("", "8001")]);

        let p = parse_port_specs(&["8000-8010:80".into()]).unwrap();
        assert_eq!(p.bindings["80/tcp"], vec![bind("", "8000-8010")]);

        let p = parse_port_specs(&["8000:80".into(), "8001:80".into()]).unwrap();
        assert_eq!(p.bindings["80/tcp"].len(), 2);

        assert_eq!(
            parse_port_specs(&["abc".into()]),
            Err("invalid containerPort: abc".into())
        );
        assert_eq!(
            parse_port_specs(&["x:80".into()]),
            Err("invalid hostPort: x".into())
        );
        assert_eq!(
            parse_port_specs(&["1.2.3:80:80".into()]),
            Err("invalid IP address: 1.2.3".into())
        );
        assert_eq!(
            parse_port_specs(&["80/foo".into()]),
            Err("invalid proto: foo".into())
        );
        assert!(parse_port_specs(&["8000-8002:80-81".into()]).is_err());
        assert!(parse_port_specs(&["70000".into()]).is_err());
    }

    #[test]
    fn expose() {
        assert_eq!(
            parse_expose(&["80".into(), "53/udp".into(), "7000-7001".into()]),
            Ok(vec![
                "80/tcp".into(),
                "53/udp".into(),
                "7000/tcp".into(),
                "7001/tcp".into()
            ])
        );
        assert!(parse_expose(&["80:80".into()]).is_err());
        assert!(parse_expose(&["x".into()])
            .unwrap_err()
            .starts_with("invalid range format for --expose: x"));
    }

    #[test]
    fn volumes() {
        let v = parse_volume("/tmp:/host:ro").unwrap();
        assert_eq!(
            (
                v.source.as_str(),
                v.target.as_str(),
                v.mode.as_str(),
                v.is_bind
            ),
            ("/tmp", "/host", "ro", true)
        );
        let v = parse_volume("data:/data").unwrap();
        assert_eq!((v.source.as_str(), v.is_bind), ("data", false));
        let v = parse_volume("/anon").unwrap();
        assert_eq!((v.source.as_str(), v.target.as_str()), ("", "/anon"));
        let v = parse_volume("./rel:/x").unwrap();
        assert!(v.is_bind);
        assert_eq!(
            parse_volume("a::b"),
            Err("invalid spec: a::b: empty section between colons".into())
        );
        assert_eq!(
            parse_volume("a:b:c:d"),
            Err("invalid spec: a:b:c:d: too many colons".into())
        );
        assert!(parse_volume("").is_err());
    }

    #[test]
    fn mounts() {
        let m = parse_mount("type=bind,source=/tmp,target=/host,readonly").unwrap();
        assert_eq!(m.typ, Some(MountType::BIND));
        assert_eq!(m.source.as_deref(), Some("/tmp"));
        assert_eq!(m.target.as_deref(), Some("/host"));
        assert_eq!(m.read_only, Some(true));

        let m = parse_mount("src=data,dst=/data").unwrap();
        assert_eq!(m.typ, Some(MountType::VOLUME));

        let m = parse_mount("type=tmpfs,dst=/run,tmpfs-size=64m,tmpfs-mode=1770").unwrap();
        let t = m.tmpfs_options.unwrap();
        assert_eq!(t.size_bytes, Some(64 << 20));
        assert_eq!(t.mode, Some(0o1770));

        let m = parse_mount("type=bind,src=/a,dst=/b,ro=false,bind-propagation=rshared").unwrap();
        assert_eq!(m.read_only, Some(false));
        assert_eq!(
            m.bind_options.unwrap().propagation,
            Some(MountBindOptionsPropagationEnum::RSHARED)
        );

        assert_eq!(
            parse_mount("type=bind,src=/a"),
            Err("target is required".into())
        );
        assert_eq!(
            parse_mount("type=bind,foo"),
            Err("invalid field 'foo' must be a key=value pair".into())
        );
        assert_eq!(
            parse_mount("type=bind,x=1,dst=/a"),
            Err("unexpected key 'x' in 'x=1'".into())
        );
        assert!(parse_mount("type=weird,dst=/a").is_err());
        assert!(parse_mount("type=bind,dst=/a,tmpfs-size=1m").is_err());
    }

    #[test]
    fn ulimits() {
        let u = parse_ulimit("nofile=1024:2048").unwrap();
        assert_eq!(
            (u.name.as_deref(), u.soft, u.hard),
            (Some("nofile"), Some(1024), Some(2048))
        );
        let u = parse_ulimit("nproc=10").unwrap();
        assert_eq!((u.soft, u.hard), (Some(10), Some(10)));
        assert_eq!(parse_ulimit("x"), Err("invalid ulimit argument: x".into()));
        assert_eq!(
            parse_ulimit("foo=1"),
            Err("invalid ulimit type: foo".into())
        );
        assert!(parse_ulimit("nofile=2:1").unwrap_err().contains("2 > 1"));
        assert!(parse_ulimit("nofile=1:2:3").is_err());
        assert!(parse_ulimit("nofile=a").is_err());
    }

    #[test]
    fn env_file() {
        let content =
            b"\xEF\xBB\xBF# comment\n  A=1\nB= spaced value \n\nPRESENT\nABSENT\nC=x=y\r\n";
        let lookup = |k: &str| {
            if k == "PRESENT" {
                Some("yes".to_string())
            } else {
                None
            }
        };
        let got = parse_kv_file("f", content, &lookup).unwrap();
        assert_eq!(got, vec!["A=1", "B= spaced value ", "PRESENT=yes", "C=x=y"]);
        assert!(parse_kv_file("f", b"BAD KEY=1\n", &lookup)
            .unwrap_err()
            .contains("contains whitespaces"));
        assert!(parse_kv_file("f", b"=1\n", &lookup)
            .unwrap_err()
            .contains("no variable name"));
        assert!(parse_kv_file("f", b"A=\xff\n", &lookup)
            .unwrap_err()
            .contains("invalid utf8"));
        let err = read_env(&["/nonexistent-berth-test-file".into()], &[]).unwrap_err();
        assert_eq!(
            err,
            "open /nonexistent-berth-test-file: no such file or directory"
        );
    }

    #[test]
    fn env_values() {
        assert_eq!(validate_env("A=B"), Ok("A=B".into()));
        assert!(validate_env("=B").is_err());
        assert_eq!(
            validate_env("BERTH_TEST_SURELY_UNSET_VAR"),
            Ok("BERTH_TEST_SURELY_UNSET_VAR".into())
        );
    }

    #[test]
    fn extra_hosts() {
        assert_eq!(validate_extra_host("db:10.0.0.1"), Ok("db:10.0.0.1".into()));
        assert_eq!(validate_extra_host("db=10.0.0.1"), Ok("db:10.0.0.1".into()));
        assert_eq!(validate_extra_host("v6:::1"), Ok("v6:::1".into()));
        assert_eq!(validate_extra_host("v6=[::1]"), Ok("v6:::1".into()));
        assert_eq!(
            validate_extra_host("gw:host-gateway"),
            Ok("gw:host-gateway".into())
        );
        assert!(validate_extra_host("nohost").is_err());
        assert!(validate_extra_host("db:notanip").is_err());
    }

    #[test]
    fn timestamps() {
        assert_eq!(get_timestamp("42m", 10_000), Ok("7480".into()));
        assert_eq!(get_timestamp("1700000000", 0), Ok("1700000000".into()));
        assert_eq!(get_timestamp("1700000000.5", 0), Ok("1700000000.5".into()));
        assert_eq!(
            get_timestamp("2013-01-02T13:23:37Z", 0),
            Ok("1357133017.000000000".into())
        );
        assert!(get_timestamp("2013-01-02", 0).is_ok());
        assert!(get_timestamp("not-a-time", 0).is_err());
    }

    #[test]
    fn durations_and_misc() {
        assert_eq!(parse_go_duration("30s"), Ok(30_000_000_000));
        assert_eq!(parse_go_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_go_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert_eq!(parse_go_duration("100ms"), Ok(100_000_000));
        assert!(parse_go_duration("10").is_err());
        assert!(parse_go_duration("abc").is_err());
        assert_eq!(parse_bool("True"), Ok(true));
        assert!(parse_bool("yes").is_err());
        assert_eq!(
            parse_int("abc"),
            Err("strconv.ParseInt: parsing \"abc\": invalid syntax".into())
        );
        assert!(parse_uint("70000", 16).is_err());
        assert_eq!(
            parse_throttle_bps("/dev/sda:1mb").unwrap().rate,
            Some(1 << 20)
        );
        assert!(parse_throttle_bps("sda:1mb").is_err());
        assert!(parse_throttle_bps("/dev/sda:x").is_err());
        assert_eq!(
            parse_throttle_iops("/dev/sda:1000").unwrap().rate,
            Some(1000)
        );
        assert_eq!(
            parse_weight_device("/dev/sda:300").unwrap().weight,
            Some(300)
        );
        assert!(parse_weight_device("/dev/sda:5").is_err());
        let d = parse_device("/dev/sda:/dev/xvda:r").unwrap();
        assert_eq!(d.cgroup_permissions.as_deref(), Some("r"));
        let d = parse_device("/dev/fuse").unwrap();
        assert_eq!(d.path_in_container.as_deref(), Some("/dev/fuse"));
        assert_eq!(
            parse_tmpfs("/run:size=1m"),
            ("/run".into(), "size=1m".into())
        );
        let f = parse_filters(&["status=exited".into(), "status=created".into()]).unwrap();
        assert_eq!(f["status"], vec!["exited", "created"]);
        assert!(parse_filters(&["nope".into()]).is_err());
        assert!(validate_pull("sometimes").is_err());
    }
}
