//! `version` and `info`.

use super::{out, Ctx};
use crate::client::Client;
use crate::error::{CliError, CliResult};
use crate::flags::Parsed;
use crate::format::human::bytes_size;
use crate::format::json::Value;
use crate::format::{obj, render_each};
use crate::streams::write_stderr;

/// Go-style architecture name for this build.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        other => other,
    }
}

fn client_value(api: &str) -> Value {
    let max = Client::max_version();
    obj(vec![
        ("APIVersion", api.to_string()),
        ("Arch", go_arch().to_string()),
        ("Context", "default".into()),
        (
            "DefaultAPIVersion",
            format!("{}.{}", max.major_version, max.minor_version),
        ),
        ("Os", std::env::consts::OS.to_string()),
        ("Platform", String::new()),
        ("Version", env!("CARGO_PKG_VERSION").to_string()),
    ])
}

fn client_section(api: &str) -> String {
    let max = Client::max_version();
    let max = format!("{}.{}", max.major_version, max.minor_version);
    let api_line = if api != max {
        format!("{api} (downgraded from {max})")
    } else {
        api.to_string()
    };
    format!(
        "Client:\n Version:           {}\n API version:       {api_line}\n OS/Arch:           {}/{}\n Context:           default\n",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        go_arch()
    )
}

fn sv<'a>(v: &'a Value, keys: &[&str]) -> &'a str {
    v.path(keys).and_then(Value::as_str).unwrap_or("")
}

fn detail_str(v: Option<&Value>) -> String {
    match v {
        Some(Value::Str(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => crate::format::template::go_print(other),
    }
}

/// The "Server:" section of `version` from a `GET /version` body.
pub fn server_section(v: &Value) -> String {
    let mut s = String::from("\nServer:");
    let platform = sv(v, &["Platform", "Name"]);
    if !platform.is_empty() {
        s.push(' ');
        s.push_str(platform);
    }
    s.push('\n');
    let components = v.get("Components").and_then(Value::as_array).unwrap_or(&[]);
    let engine_from_top;
    let components: &[Value] = if components.is_empty() {
        engine_from_top = vec![obj(vec![
            ("Name", "Engine".into()),
            ("Version", sv(v, &["Version"]).into()),
        ])];
        &engine_from_top
    } else {
        components
    };
    for c in components {
        let name = sv(c, &["Name"]);
        let details = c.get("Details");
        let d = |k: &str| {
            details
                .and_then(|d| d.get(k))
                .map(|x| detail_str(Some(x)))
                .unwrap_or_else(|| {
                    if components.len() == 1 && name == "Engine" {
                        detail_str(v.get(k))
                    } else {
                        String::new()
                    }
                })
        };
        s.push_str(&format!(" {name}:\n"));
        if name == "Engine" {
            s.push_str(&format!("  Version:          {}\n", sv(c, &["Version"])));
            s.push_str(&format!(
                "  API version:      {} (minimum version {})\n",
                d("ApiVersion"),
                d("MinAPIVersion")
            ));
            s.push_str(&format!("  Go version:       {}\n", d("GoVersion")));
            s.push_str(&format!("  Git commit:       {}\n", d("GitCommit")));
            s.push_str(&format!("  Built:            {}\n", d("BuildTime")));
            s.push_str(&format!("  OS/Arch:          {}/{}\n", d("Os"), d("Arch")));
            s.push_str(&format!("  Experimental:     {}\n", d("Experimental")));
            if let Some(Value::Obj(fields)) = details {
                let known = [
                    "ApiVersion",
                    "MinAPIVersion",
                    "GoVersion",
                    "GitCommit",
                    "BuildTime",
                    "Os",
                    "Arch",
                    "Experimental",
                ];
                let mut extra: Vec<&(String, Value)> = fields
                    .iter()
                    .filter(|(k, _)| !known.contains(&k.as_str()))
                    .collect();
                extra.sort_by(|a, b| a.0.cmp(&b.0));
                for (k, val) in extra {
                    s.push_str(&format!(
                        "  {:<18}{}\n",
                        format!("{k}:"),
                        detail_str(Some(val))
                    ));
                }
            }
        } else {
            s.push_str(&format!("  Version:          {}\n", sv(c, &["Version"])));
            if let Some(Value::Obj(fields)) = details {
                let mut sorted: Vec<&(String, Value)> = fields.iter().collect();
                sorted.sort_by(|a, b| a.0.cmp(&b.0));
                for (k, val) in sorted {
                    s.push_str(&format!(
                        "  {:<18}{}\n",
                        format!("{k}:"),
                        detail_str(Some(val))
                    ));
                }
            }
        }
    }
    s
}

/// `version`.
pub async fn version(ctx: &Ctx, p: &Parsed) -> CliResult<()> {
    let format = p.str_or("format", "");
    let server = match ctx.client.get_text("/version", &[]).await {
        Ok(t) => Some(
            Value::parse(t.trim())
                .map_err(|e| CliError::Other(format!("invalid version response: {e}")))?,
        ),
        Err(e) => {
            let api = Client::max_version();
            let api = format!("{}.{}", api.major_version, api.minor_version);
            if format.is_empty() {
                out(&client_section(&api));
            }
            return Err(e);
        }
    };
    let api = ctx.client.version().await?;
    let server = server.unwrap_or(Value::Null);
    if !format.is_empty() {
        let data = Value::Obj(vec![
            ("Client".into(), client_value(&api)),
            ("Server".into(), server),
        ]);
        let text = if format == "json" {
            format!("{}\n", data.to_json())
        } else {
            render_each(format, &[data])?
        };
        out(&text);
        return Ok(());
    }
    out(&format!(
        "{}{}",
        client_section(&api),
        server_section(&server)
    ));
    Ok(())
}

fn kv_line(indent: &str, k: &str, v: impl std::fmt::Display) -> String {
    format!("{indent}{k}: {v}\n")
}

/// The "Server:" part of `info` from a `GET /info` body.
pub fn info_server_section(i: &Value) -> String {
    let n = |k: &str| i.get(k).and_then(Value::as_i64).unwrap_or(0);
    let s = |k: &str| i.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let b = |k: &str| i.get(k).and_then(Value::as_bool).unwrap_or(false);
    let mut o = String::from("Server:\n");
    o += &kv_line(" ", "Containers", n("Containers"));
    o += &kv_line("  ", "Running", n("ContainersRunning"));
    o += &kv_line("  ", "Paused", n("ContainersPaused"));
    o += &kv_line("  ", "Stopped", n("ContainersStopped"));
    o += &kv_line(" ", "Images", n("Images"));
    o += &kv_line(" ", "Server Version", s("ServerVersion"));
    o += &kv_line(" ", "Storage Driver", s("Driver"));
    for pair in i
        .get("DriverStatus")
        .and_then(Value::as_array)
        .unwrap_or(&[])
    {
        if let Some([k, v]) = pair.as_array().map(|a| a.to_vec()).as_deref() {
            o += &kv_line("  ", k.as_str().unwrap_or(""), v.as_str().unwrap_or(""));
        }
    }
    o += &kv_line(" ", "Logging Driver", s("LoggingDriver"));
    o += &kv_line(" ", "Cgroup Driver", s("CgroupDriver"));
    o += &kv_line(" ", "Cgroup Version", s("CgroupVersion"));
    o += " Plugins:\n";
    for (label, key) in [("Volume", "Volume"), ("Network", "Network"), ("Log", "Log")] {
        let names: Vec<&str> = i
            .path(&["Plugins", key])
            .and_then(Value::as_array)
            .unwrap_or(&[])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        o += &kv_line("  ", label, names.join(" "));
    }
    let swarm = sv(i, &["Swarm", "LocalNodeState"]);
    o += &kv_line(
        " ",
        "Swarm",
        if swarm.is_empty() { "inactive" } else { swarm },
    );
    let mut runtimes: Vec<String> = match i.get("Runtimes") {
        Some(Value::Obj(r)) => r.iter().map(|(k, _)| k.clone()).collect(),
        _ => Vec::new(),
    };
    runtimes.sort();
    o += &kv_line(" ", "Runtimes", runtimes.join(" "));
    o += &kv_line(" ", "Default Runtime", s("DefaultRuntime"));
    o += &kv_line(" ", "Init Binary", s("InitBinary"));
    o += &kv_line(
        " ",
        "containerd version",
        sv(i, &["ContainerdCommit", "ID"]),
    );
    o += &kv_line(" ", "runc version", sv(i, &["RuncCommit", "ID"]));
    o += &kv_line(" ", "init version", sv(i, &["InitCommit", "ID"]));
    let sec = i
        .get("SecurityOptions")
        .and_then(Value::as_array)
        .unwrap_or(&[]);
    if !sec.is_empty() {
        o += " Security Options:\n";
        for opt in sec.iter().filter_map(Value::as_str) {
            for part in opt.split(',') {
                match part.split_once('=') {
                    Some(("name", v)) => o += &format!("  {v}\n"),
                    Some((k, v)) => {
                        let mut key = k.to_string();
                        if let Some(f) = key.get_mut(0..1) {
                            f.make_ascii_uppercase();
                        }
                        o += &kv_line("   ", &key, v);
                    }
                    None => o += &format!("  {part}\n"),
                }
            }
        }
    }
    o += &kv_line(" ", "Kernel Version", s("KernelVersion"));
    o += &kv_line(" ", "Operating System", s("OperatingSystem"));
    o += &kv_line(" ", "OSType", s("OSType"));
    o += &kv_line(" ", "Architecture", s("Architecture"));
    o += &kv_line(" ", "CPUs", n("NCPU"));
    o += &kv_line(" ", "Total Memory", bytes_size(n("MemTotal") as f64));
    o += &kv_line(" ", "Name", s("Name"));
    o += &kv_line(" ", "ID", s("ID"));
    o += &kv_line(" ", "Docker Root Dir", s("DockerRootDir"));
    o += &kv_line(" ", "Debug Mode", b("Debug"));
    o += &kv_line(" ", "Experimental", b("ExperimentalBuild"));
    let insecure = i
        .path(&["RegistryConfig", "InsecureRegistryCIDRs"])
        .and_then(Value::as_array)
        .unwrap_or(&[]);
    if !insecure.is_empty() {
        o += " Insecure Registries:\n";
        for c in insecure.iter().filter_map(Value::as_str) {
            o += &format!("  {c}\n");
        }
    }
    o += &kv_line(" ", "Live Restore Enabled", b("LiveRestoreEnabled"));
    o
}

/// `info`.
pub async fn info(ctx: &Ctx, p: &Parsed) -> CliResult<()> {
    let format = p.str_or("format", "");
    let text = match ctx.client.get_text("/info", &[]).await {
        Ok(t) => t,
        Err(e) => {
            if format.is_empty() {
                out(&format!(
                    "Client:\n Version:    {}\n Context:    default\n Debug Mode: false\n\nServer:\n",
                    env!("CARGO_PKG_VERSION")
                ));
            }
            return Err(e);
        }
    };
    let i = Value::parse(text.trim())
        .map_err(|e| CliError::Other(format!("invalid info response: {e}")))?;
    if !format.is_empty() {
        let text = if format == "json" {
            format!("{}\n", i.to_json())
        } else {
            render_each(format, &[i])?
        };
        out(&text);
        return Ok(());
    }
    out(&format!(
        "Client:\n Version:    {}\n Context:    default\n Debug Mode: false\n\n{}\n",
        env!("CARGO_PKG_VERSION"),
        info_server_section(&i)
    ));
    for w in i.get("Warnings").and_then(Value::as_array).unwrap_or(&[]) {
        if let Some(w) = w.as_str() {
            write_stderr(format!("{w}\n").as_bytes());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERSION: &str = r#"{"Platform":{"Name":""},"Components":[{"Name":"Engine","Version":"20.10.24+dfsg1","Details":{"ApiVersion":"1.41",
       "Arch":"amd64","BuildTime":"B","Experimental":"false","GitCommit":"5d6db84","GoVersion":"go1.19.8",
       "KernelVersion":"6.1","MinAPIVersion":"1.12","Os":"linux"}},
      {"Name":"containerd","Version":"1.6.20~ds1","Details":{"GitCommit":"1.6.20~ds1-1+deb12u3"}},
      {"Name":"docker-init","Version":"0.19.0","Details":{"GitCommit":""}}],
     "Version":"20.10.24+dfsg1","ApiVersion":"1.41","MinAPIVersion":"1.12","GitCommit":"5d6db84",
     "GoVersion":"go1.19.8","Os":"linux","Arch":"amd64","KernelVersion":"6.1","BuildTime":"B"}"#;

    #[test]
    fn version_server_section() {
        let v = Value::parse(VERSION).unwrap();
        assert_eq!(
            server_section(&v),
            "\nServer:\n Engine:\n  Version:          20.10.24+dfsg1\n  API version:      1.41 (minimum version 1.12)\n  Go version:       go1.19.8\n  Git commit:       5d6db84\n  Built:            B\n  OS/Arch:          linux/amd64\n  Experimental:     false\n  KernelVersion:    6.1\n containerd:\n  Version:          1.6.20~ds1\n  GitCommit:        1.6.20~ds1-1+deb12u3\n docker-init:\n  Version:          0.19.0\n  GitCommit:        \n"
        );
    }

    #[test]
    fn client_section_mentions_downgrade() {
        let s = client_section("1.41");
        assert!(
            s.contains(" API version:       1.41 (downgraded from 1.53)\n"),
            "{s}"
        );
    }

    #[test]
    fn info_layout() {
        let i = Value::parse(r#"{"Containers":1,"ContainersRunning":1,"ContainersPaused":0,"ContainersStopped":0,"Images":2,
            "Driver":"overlay2","DriverStatus":[["Backing Filesystem","extfs"]],"Plugins":{"Volume":["local"],"Network":["bridge","host"],"Log":["json-file"]},
            "LoggingDriver":"json-file","CgroupDriver":"cgroupfs","CgroupVersion":"1","Runtimes":{"runc":{"path":"runc"}},"DefaultRuntime":"runc",
            "SecurityOptions":["name=seccomp,profile=default"],"NCPU":2,"MemTotal":4123456789,"ServerVersion":"0.1.0","Swarm":{"LocalNodeState":"inactive"},
            "RegistryConfig":{"InsecureRegistryCIDRs":["127.0.0.0/8"]}}"#).unwrap();
        let s = info_server_section(&i);
        assert!(s.starts_with("Server:\n Containers: 1\n  Running: 1\n  Paused: 0\n  Stopped: 0\n Images: 2\n Server Version: 0.1.0\n Storage Driver: overlay2\n  Backing Filesystem: extfs\n"), "{s}");
        assert!(
            s.contains(" Security Options:\n  seccomp\n   Profile: default\n"),
            "{s}"
        );
        assert!(s.contains(" Total Memory: 3.84GiB\n"), "{s}");
        assert!(s.contains(" Insecure Registries:\n  127.0.0.0/8\n"), "{s}");
        assert!(s.contains("  Network: bridge host\n"), "{s}");
    }
}
