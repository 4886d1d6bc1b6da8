//! `/images/...` endpoints: list, inspect, tag, remove, import.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use image_store::{DeleteItem, Image, ImportConfig};
use serde_json::{json, Value};

use crate::{human, ok_json, qbool, ApiError, ApiResult, AppState};

fn config_json(img: &Image) -> Value {
    let v = serde_json::to_value(&img.config).unwrap_or(json!({}));
    let c = v.get("config").cloned().unwrap_or(json!({}));
    let get = |k: &str| c.get(k).cloned().unwrap_or(Value::Null);
    json!({
        "Hostname": "", "Domainname": "", "User": c.get("User").cloned().unwrap_or(json!("")),
        "AttachStdin": false, "AttachStdout": false, "AttachStderr": false,
        "ExposedPorts": get("ExposedPorts"),
        "Tty": false, "OpenStdin": false, "StdinOnce": false,
        "Env": get("Env"), "Cmd": get("Cmd"), "Image": "",
        "Volumes": get("Volumes"), "WorkingDir": c.get("WorkingDir").cloned().unwrap_or(json!("")),
        "Entrypoint": get("Entrypoint"), "OnBuild": Value::Null, "Labels": get("Labels"),
        "StopSignal": get("StopSignal"),
    })
}

fn summary(img: &Image) -> Value {
    let v = serde_json::to_value(&img.config).unwrap_or(json!({}));
    json!({
        "Containers": -1,
        "Created": img.created.timestamp(),
        "Id": img.id,
        "Labels": v.get("config").and_then(|c| c.get("Labels")).cloned().unwrap_or(Value::Null),
        "ParentId": img.parent.as_ref().map(|p| p.to_string()).unwrap_or_default(),
        "RepoDigests": img.repo_digests,
        "RepoTags": img.repo_tags,
        "SharedSize": -1,
        "Size": img.size,
        "VirtualSize": img.size,
    })
}

fn inspect_json(img: &Image) -> Value {
    let v = serde_json::to_value(&img.config).unwrap_or(json!({}));
    json!({
        "Id": img.id,
        "RepoTags": img.repo_tags,
        "RepoDigests": img.repo_digests,
        "Parent": img.parent.as_ref().map(|p| p.to_string()).unwrap_or_default(),
        "Comment": v.get("history").and_then(|h| h.as_array()).and_then(|h| h.last()).and_then(|h| h.get("comment")).cloned().unwrap_or(json!("")),
        "Created": img.created.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "Container": "",
        "ContainerConfig": config_json(img),
        "DockerVersion": "",
        "Author": v.get("author").cloned().unwrap_or(json!("")),
        "Config": config_json(img),
        "Architecture": v.get("architecture").cloned().unwrap_or(json!("amd64")),
        "Os": v.get("os").cloned().unwrap_or(json!("linux")),
        "Size": img.size,
        "VirtualSize": img.size,
        "GraphDriver": { "Name": "overlay2", "Data": {} },
        "RootFS": { "Type": "layers", "Layers": img.diff_ids },
        "Metadata": { "LastTagTime": "0001-01-01T00:00:00Z" },
    })
}

pub(crate) async fn list(
    State(engine): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let all = qbool(q.get("all"));
    let mut imgs = engine.images.list();
    // Untagged images something was built on are intermediate build steps: hidden
    // unless `-a`, as in Docker.
    if !all {
        let parents: std::collections::HashSet<String> = imgs
            .iter()
            .filter_map(|i| i.parent.as_ref().map(|p| p.to_string()))
            .collect();
        imgs.retain(|i| !i.repo_tags.is_empty() || !parents.contains(i.id.as_str()));
    }
    imgs.sort_by_key(|i| std::cmp::Reverse(i.created));
    let out: Vec<Value> = imgs.iter().map(summary).collect();
    ok_json(&out)
}

/// `docker history`: newest first. Each entry that ends an image of the parent chain
/// (a build step) carries that image's ID and tags; a layer's size is on the entry that
/// made it.
fn history(store: &image_store::ImageStore, img: &Image) -> Vec<Value> {
    let v = serde_json::to_value(&img.config).unwrap_or(json!({}));
    let entries = v
        .get("history")
        .and_then(|h| h.as_array())
        .cloned()
        .unwrap_or_default();
    // Which history index each image of the chain ends at.
    let mut ends: HashMap<usize, Image> = HashMap::new();
    for id in store.lineage(&img.id) {
        if let Ok(i) = store.get(&id) {
            let n = serde_json::to_value(&i.config)
                .ok()
                .and_then(|c| c.get("history").and_then(|h| h.as_array()).map(|a| a.len()))
                .unwrap_or(0);
            if n > 0 {
                ends.entry(n - 1).or_insert(i);
            }
        }
    }
    let mut layer_sizes = img.layers.iter().map(|l| l.size);
    let mut sized: Vec<u64> = Vec::with_capacity(entries.len());
    for h in &entries {
        let empty = h
            .get("empty_layer")
            .and_then(|e| e.as_bool())
            .unwrap_or(false);
        sized.push(if empty {
            0
        } else {
            layer_sizes.next().unwrap_or(0)
        });
    }
    entries
        .iter()
        .enumerate()
        .rev()
        .map(|(i, h)| {
            let owner = ends.get(&i);
            json!({
                "Id": owner.map(|o| json!(o.id)).unwrap_or(json!("<missing>")),
                "Created": human::unix(h.get("created").and_then(|c| c.as_str()).unwrap_or("")),
                "CreatedBy": h.get("created_by").cloned().unwrap_or(json!("")),
                "Tags": owner.map(|o| json!(o.repo_tags)).filter(|t| t.as_array().is_some_and(|a| !a.is_empty())).unwrap_or(Value::Null),
                "Size": sized[i],
                "Comment": h.get("comment").cloned().unwrap_or(json!("")),
            })
        })
        .collect()
}

/// GET `/images/{name}/json` (names may contain slashes) and `/images/{name}/history`.
pub(crate) async fn get_dispatch(
    State(engine): State<AppState>,
    Path(rest): Path<String>,
) -> ApiResult {
    if let Some(name) = rest.strip_suffix("/json") {
        let img = engine.images.resolve(name).map_err(engine::image_error)?;
        let mut v = inspect_json(&img);
        // Docker's config fields the OCI type lacks come from the stored JSON.
        if let Ok(raw) = engine.images.config_bytes(&img.id) {
            if let Ok(raw) = serde_json::from_slice::<Value>(&raw) {
                for k in ["Healthcheck", "OnBuild", "Shell"] {
                    if let Some(x) = raw.get("config").and_then(|c| c.get(k)) {
                        v["Config"][k] = x.clone();
                        v["ContainerConfig"][k] = x.clone();
                    }
                }
            }
        }
        return ok_json(&v);
    }
    if let Some(name) = rest.strip_suffix("/get") {
        return crate::archive::save_response(engine, vec![name.to_string()]);
    }
    if let Some(name) = rest.strip_suffix("/history") {
        let img = engine.images.resolve(name).map_err(engine::image_error)?;
        let hist = history(&engine.images, &img);
        return ok_json(&hist);
    }
    Err(ApiError(
        StatusCode::NOT_FOUND,
        format!("page not found: /images/{rest}"),
    ))
}

/// POST `/images/{name}/tag` and `/images/{name}/push`.
pub(crate) async fn post_dispatch(
    State(engine): State<AppState>,
    Path(rest): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
) -> ApiResult {
    if let Some(name) = rest.strip_suffix("/tag") {
        let repo = q.get("repo").cloned().unwrap_or_default();
        if repo.is_empty() {
            return Err(ApiError::bad_request(
                "repository name must have at least one component",
            ));
        }
        let target = match q.get("tag").filter(|t| !t.is_empty()) {
            Some(t) => format!("{repo}:{t}"),
            None => repo,
        };
        engine
            .images
            .tag(name, &target)
            .map_err(engine::image_error)?;
        return Ok(StatusCode::CREATED.into_response());
    }
    if let Some(name) = rest.strip_suffix("/push") {
        let tag = q.get("tag").cloned().unwrap_or_default();
        return crate::distribution::push(engine, name.to_string(), tag, &headers).await;
    }
    Err(ApiError(
        StatusCode::NOT_FOUND,
        format!("page not found: /images/{rest}"),
    ))
}

pub(crate) async fn remove(
    State(engine): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let items = engine.remove_image(&name, qbool(q.get("force")))?;
    let out: Vec<Value> = items
        .iter()
        .map(|i| match i {
            DeleteItem::Untagged(s) => json!({ "Untagged": s }),
            DeleteItem::Deleted(s) => json!({ "Deleted": s }),
        })
        .collect();
    ok_json(&out)
}

/// Applies one `--change` instruction (Dockerfile syntax) to an import config.
pub(crate) fn apply_change(cfg: &mut ImportConfig, change: &str) -> Result<(), String> {
    let change = change.trim();
    let (instr, rest) = change
        .split_once(char::is_whitespace)
        .unwrap_or((change, ""));
    let rest = rest.trim();
    let list = |s: &str| -> Vec<String> {
        if s.starts_with('[') {
            if let Ok(v) = serde_json::from_str::<Vec<String>>(s) {
                return v;
            }
        }
        vec!["/bin/sh".into(), "-c".into(), s.to_string()]
    };
    let pairs = |s: &str| -> Vec<(String, String)> {
        if s.contains('=') {
            s.split_whitespace()
                .filter_map(|kv| {
                    kv.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
                })
                .collect()
        } else {
            match s.split_once(char::is_whitespace) {
                Some((k, v)) => vec![(k.to_string(), v.trim().to_string())],
                None => vec![],
            }
        }
    };
    match instr.to_ascii_uppercase().as_str() {
        "CMD" => cfg.cmd = Some(list(rest)),
        "ENTRYPOINT" => cfg.entrypoint = Some(list(rest)),
        "ENV" => {
            for (k, v) in pairs(rest) {
                cfg.env.push(format!("{k}={v}"));
            }
        }
        "WORKDIR" => cfg.working_dir = Some(rest.to_string()),
        "USER" => cfg.user = Some(rest.to_string()),
        "EXPOSE" => {
            for p in rest.split_whitespace() {
                let p = if p.contains('/') {
                    p.to_string()
                } else {
                    format!("{p}/tcp")
                };
                cfg.exposed_ports.push(p);
            }
        }
        "LABEL" => {
            for (k, v) in pairs(rest) {
                cfg.labels.insert(k, v);
            }
        }
        "STOPSIGNAL" => cfg.stop_signal = Some(rest.to_string()),
        "VOLUME" => {
            let vols = if rest.starts_with('[') {
                serde_json::from_str::<Vec<String>>(rest).map_err(|e| e.to_string())?
            } else {
                rest.split_whitespace().map(String::from).collect()
            };
            cfg.volumes.extend(vols);
        }
        other => return Err(format!("{other} is not a valid change command")),
    }
    Ok(())
}

/// `docker import URL`: the tarball is fetched by the daemon into a temporary file.
async fn download(url: &str, dir: &std::path::Path) -> Result<std::fs::File, ApiError> {
    use std::io::{Seek, Write};
    let fail = |e: String| ApiError(StatusCode::BAD_REQUEST, format!("importing {url}: {e}"));
    let mut resp = reqwest::get(url).await.map_err(|e| fail(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(fail(format!("unexpected status {}", resp.status())));
    }
    let mut f = tempfile::tempfile_in(dir)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    while let Some(chunk) = resp.chunk().await.map_err(|e| fail(e.to_string()))? {
        f.write_all(&chunk)
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    }
    f.seek(std::io::SeekFrom::Start(0))
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(f)
}

/// POST `/images/create`: import from a tar (`fromSrc=-`) or pull.
pub(crate) async fn create(
    State(engine): State<AppState>,
    Query(q): Query<Vec<(String, String)>>,
    req: Request,
) -> ApiResult {
    let get = |k: &str| q.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    if let Some(image) = get("fromImage") {
        let tag = get("tag").unwrap_or_default();
        let platform = get("platform").filter(|p| !p.is_empty());
        let headers = req.headers().clone();
        return crate::distribution::pull(engine, image, tag, platform, &headers).await;
    }
    let src = get("fromSrc").unwrap_or_default();
    let from_url = src.starts_with("http://") || src.starts_with("https://");
    if src != "-" && !from_url {
        return Err(ApiError::bad_request(format!(
            "import source must be - (the request body) or an http(s) URL, not {src:?}"
        )));
    }
    let mut cfg = ImportConfig::default();
    for (k, v) in q.iter().filter(|(k, _)| k == "changes") {
        let _ = k;
        apply_change(&mut cfg, v).map_err(ApiError::bad_request)?;
    }
    let repo = get("repo").unwrap_or_default();
    let target = if repo.is_empty() {
        None
    } else {
        Some(match get("tag").filter(|t| !t.is_empty()) {
            Some(t) => format!("{repo}:{t}"),
            None => repo,
        })
    };
    let comment = get("message").unwrap_or_default();
    let spool = if from_url {
        download(&src, engine.images.archive_tmp_dir()).await?
    } else {
        crate::spool_body(req, engine.images.archive_tmp_dir()).await?
    };
    let comment = if comment.is_empty() && from_url {
        format!("Imported from {src}")
    } else {
        comment
    };
    let eng = engine.clone();
    let id = tokio::task::spawn_blocking(move || {
        eng.images.import(spool, cfg, &comment, target.as_deref())
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(engine::image_error)?;
    let line = format!("{}\r\n", json!({ "status": id }));
    Ok(Response::new(Body::from(Bytes::from(line))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes() {
        let mut c = ImportConfig::default();
        apply_change(&mut c, "CMD [\"/bin/sh\"]").unwrap();
        assert_eq!(c.cmd, Some(vec!["/bin/sh".to_string()]));
        apply_change(&mut c, "CMD echo hi").unwrap();
        assert_eq!(c.cmd.as_ref().unwrap()[2], "echo hi");
        apply_change(&mut c, "ENV A=1 B=2").unwrap();
        apply_change(&mut c, "ENV C 3").unwrap();
        assert_eq!(c.env, vec!["A=1", "B=2", "C=3"]);
        apply_change(&mut c, "EXPOSE 80").unwrap();
        assert_eq!(c.exposed_ports, vec!["80/tcp"]);
        assert!(apply_change(&mut c, "FROB x").is_err());
    }
}
