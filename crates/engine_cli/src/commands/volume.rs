//! Volume commands: create, ls, rm, prune (inspect lives in `inspect`).

use std::collections::HashMap;
use std::io::BufRead;

use bollard::models::VolumeCreateRequest;
use bollard::query_parameters::{PruneVolumesOptions, RemoveVolumeOptions};

use super::{for_each_target, out, Ctx};
use crate::error::{CliError, CliResult};
use crate::flags::Parsed;
use crate::format::human::human_size;
use crate::format::json::Value;
use crate::format::{obj, render_rows};

/// Docker's `ConvertKVStringsToMap`: "k=v" pairs (a bare "k" maps to "").
pub(crate) fn kv(values: &[String]) -> HashMap<String, String> {
    values
        .iter()
        .map(|v| match v.split_once('=') {
            Some((k, val)) => (k.to_string(), val.to_string()),
            None => (v.clone(), String::new()),
        })
        .collect()
}

/// `volume create [NAME]`.
pub async fn create(ctx: &Ctx, p: &Parsed) -> CliResult<()> {
    let name = match (p.args.first(), p.last("name")) {
        (Some(a), Some(n)) if a != n => {
            return Err(CliError::Other("conflicting options: cannot specify a volume-name through both --name and as a positional arg".to_string()))
        }
        (Some(a), _) => Some(a.clone()),
        (None, n) => n.map(str::to_string),
    };
    let docker = ctx.client.api().await?;
    let v = docker
        .create_volume(VolumeCreateRequest {
            name,
            driver: Some(p.str_or("driver", "local").to_string()),
            driver_opts: Some(kv(&p.all("opt"))),
            labels: Some(kv(&p.all("label"))),
            ..Default::default()
        })
        .await?;
    out(&format!("{}\n", v.name));
    Ok(())
}

/// Template data for one volume.
pub fn volume_row(v: &Value) -> Value {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut labels: Vec<String> = match v.get("Labels") {
        Some(Value::Obj(l)) => l
            .iter()
            .map(|(k, val)| format!("{k}={}", val.as_str().unwrap_or("")))
            .collect(),
        _ => Vec::new(),
    };
    labels.sort();
    let size = v
        .path(&["UsageData", "Size"])
        .and_then(Value::as_i64)
        .filter(|s| *s >= 0)
        .map(|s| human_size(s as f64))
        .unwrap_or_else(|| "N/A".into());
    let links = v
        .path(&["UsageData", "RefCount"])
        .and_then(Value::as_i64)
        .filter(|s| *s >= 0)
        .map(|s| s.to_string())
        .unwrap_or_else(|| "N/A".into());
    obj(vec![
        ("Availability", "N/A".into()),
        ("Driver", s("Driver")),
        ("Group", "N/A".into()),
        ("Labels", labels.join(",")),
        ("Links", links),
        ("Mountpoint", s("Mountpoint")),
        ("Name", s("Name")),
        ("Scope", s("Scope")),
        ("Size", size),
        ("Status", "N/A".into()),
    ])
}

fn headers() -> Value {
    obj(vec![
        ("Availability", "AVAILABILITY".into()),
        ("Driver", "DRIVER".into()),
        ("Group", "GROUP".into()),
        ("Labels", "LABELS".into()),
        ("Links", "LINKS".into()),
        ("Mountpoint", "MOUNTPOINT".into()),
        ("Name", "VOLUME NAME".into()),
        ("Scope", "SCOPE".into()),
        ("Size", "SIZE".into()),
        ("Status", "STATUS".into()),
    ])
}

/// `volume ls`.
pub async fn ls(ctx: &Ctx, p: &Parsed) -> CliResult<()> {
    let filters = crate::opts::parse_filters(&p.all("filter")).map_err(CliError::Other)?;
    let mut query = Vec::new();
    if !filters.is_empty() {
        query.push((
            "filters",
            serde_json::to_string(&filters).unwrap_or_default(),
        ));
    }
    let text = ctx.client.get_text("/volumes", &query).await?;
    let v = Value::parse(text.trim())
        .map_err(|e| CliError::Other(format!("invalid volume list: {e}")))?;
    let mut vols: Vec<&Value> = v
        .get("Volumes")
        .and_then(Value::as_array)
        .unwrap_or(&[])
        .iter()
        .collect();
    vols.sort_by_key(|x| {
        x.get("Name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    });
    let rows: Vec<Value> = vols.into_iter().map(volume_row).collect();
    let mut format = p.str_or("format", "").to_string();
    if p.bool("quiet") {
        format = "{{.Name}}".into();
    }
    out(&render_rows(
        &format,
        "table {{.Driver}}\t{{.Name}}",
        &rows,
        &headers(),
    )?);
    Ok(())
}

/// `volume rm`.
pub async fn rm(ctx: &Ctx, p: &Parsed) -> CliResult<()> {
    let docker = ctx.client.docker().await?;
    let force = p.bool("force");
    for_each_target(&p.args, |name| {
        let docker = docker.clone();
        async move {
            docker
                .remove_volume(&name, Some(RemoveVolumeOptions { force }))
                .await?;
            Ok(true)
        }
    })
    .await
}

/// Prints a `[y/N]` prompt and reads the answer from stdin.
pub(crate) fn confirm(prompt: &str) -> bool {
    crate::streams::write_stdout(prompt.as_bytes());
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// `volume prune`.
pub async fn prune(ctx: &Ctx, p: &Parsed) -> CliResult<()> {
    let mut filters = crate::opts::parse_filters(&p.all("filter")).map_err(CliError::Other)?;
    let all = p.bool("all");
    if all {
        if filters.contains_key("all") {
            return Err(CliError::Other(
                "conflicting options: cannot specify both --all and --filter all=1".into(),
            ));
        }
        filters.insert("all".into(), vec!["true".into()]);
    }
    if !p.bool("force") {
        let warning = if all {
            "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] "
        } else {
            "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] "
        };
        if !confirm(warning) {
            return Err(CliError::Status {
                message: String::new(),
                code: 0,
            });
        }
    }
    let docker = ctx.client.api().await?;
    let resp = docker
        .prune_volumes(Some(PruneVolumesOptions {
            filters: (!filters.is_empty()).then_some(filters),
        }))
        .await?;
    let deleted = resp.volumes_deleted.unwrap_or_default();
    let mut text = String::new();
    if !deleted.is_empty() {
        text.push_str("Deleted Volumes:\n");
        for d in &deleted {
            text.push_str(d);
            text.push('\n');
        }
        text.push('\n');
    }
    text.push_str(&format!(
        "Total reclaimed space: {}\n",
        human_size(resp.space_reclaimed.unwrap_or(0) as f64)
    ));
    out(&text);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_table() {
        let v = Value::parse(r#"{"CreatedAt":"2026-11-24T22:13:11Z","Driver":"local","Labels":null,"Mountpoint":"/var/lib/docker/volumes/trv/_data","Name":"trv","Options":null,"Scope":"local"}"#).unwrap();
        let rows = vec![volume_row(&v)];
        assert_eq!(
            render_rows("", "table {{.Driver}}\t{{.Name}}", &rows, &headers()).unwrap(),
            "DRIVER    VOLUME NAME\nlocal     trv\n"
        );
        assert_eq!(
            render_rows("{{.Name}}", "", &rows, &headers()).unwrap(),
            "trv\n"
        );
    }
}
