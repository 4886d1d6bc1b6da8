//! Image commands: images, rmi, tag, pull, push, import.

use bytes::Bytes;
use futures_util::stream;
use hyper::Method;
use tokio::io::AsyncReadExt;

use super::{out, Ctx};
use crate::error::{CliError, CliResult};
use crate::flags::Parsed;
use crate::format::human::{
    go_time_string, human_size, human_size_prec, now_unix, time_ago, truncate_id,
};
use crate::format::json::Value;
use crate::format::{obj, render_rows};
use crate::reference::{split_repo_tag, Reference};
use crate::streams::{display_progress, write_stderr};

/// Pulls `image` (normalised), printing progress to stderr or stdout.
pub async fn pull_image(ctx: &Ctx, image: &str, to_stderr: bool, quiet: bool) -> CliResult<()> {
    let r = Reference::parse(image).map_err(CliError::Other)?;
    let mut query = vec![("fromImage", r.name())];
    query.push(("tag", r.clone().tag_name_only().api_tag()));
    let resp = ctx
        .client
        .raw_with(
            Method::POST,
            "/images/create",
            &query,
            &[("X-Registry-Auth", &super::login::auth_header(&r.domain))],
            None,
        )
        .await?;
    if quiet {
        display_progress_quiet(resp.into_body()).await
    } else {
        display_progress(resp.into_body(), to_stderr)
            .await
            .map(|_| ())
    }
}

async fn display_progress_quiet(body: hyper::body::Incoming) -> CliResult<()> {
    use http_body_util::BodyExt;
    let mut lines = crate::streams::JsonLines::default();
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| CliError::Other(format!("error reading stream: {e}")))?;
        if let Ok(data) = frame.into_data() {
            for m in lines.push(&data) {
                if let Some(e) = m.ok().and_then(|m| m.error_text()) {
                    return Err(CliError::Other(e));
                }
            }
        }
    }
    Ok(())
}

/// `pull`.
pub async fn pull_cmd(ctx: &Ctx, p: &Parsed) -> CliResult<()> {
    let arg = &p.args[0];
    let r = Reference::parse(arg).map_err(CliError::Other)?;
    let all = p.bool("all-tags");
    if all && (r.tag.is_some() || r.digest.is_some()) {
        return Err(CliError::Other(
            "tag can't be used with --all-tags/-a".into(),
        ));
    }
    let quiet = p.bool("quiet");
    let r = if all {
        r
    } else {
        if r.tag.is_none() && r.digest.is_none() && !quiet {
            out("Using default tag: latest\n");
        }
        r.tag_name_only()
    };
    let mut query = vec![("fromImage", r.name())];
    if !all {
        query.push(("tag", r.api_tag()));
    }
    if let Some(pl) = p.last("platform").filter(|s| !s.is_empty()) {
        query.push(("platform", pl.to_string()));
    }
    let resp = ctx
        .client
        .raw_with(
            Method::POST,
            "/images/create",
            &query,
            &[("X-Registry-Auth", &super::login::auth_header(&r.domain))],
            None,
        )
        .await?;
    if quiet {
        display_progress_quiet(resp.into_body()).await?;
    } else {
        display_progress(resp.into_body(), false).await?;
    }
    out(&format!("{}\n", r.full_string()));
    Ok(())
}

/// `push`.
pub async fn push(ctx: &Ctx, p: &Parsed) -> CliResult<()> {
    let r = Reference::parse(&p.args[0]).map_err(CliError::Other)?;
    let all = p.bool("all-tags");
    if all && r.tag.is_some() {
        return Err(CliError::Other(
            "tag can't be used with --all-tags/-a".into(),
        ));
    }
    let quiet = p.bool("quiet");
    let r = if all {
        r
    } else {
        if r.tag.is_none() && r.digest.is_none() {
            out("Using default tag: latest\n");
        }
        r.tag_name_only()
    };
    let mut query = Vec::new();
    if !all {
        query.push(("tag", r.api_tag()));
    }
    let path = format!("/images/{}/push", r.name());
    let resp = ctx
        .client
        .raw_with(
            Method::POST,
            &path,
            &query,
            &[("X-Registry-Auth", &super::login::auth_header(&r.domain))],
            None,
        )
        .await?;
    if quiet {
        display_progress_quiet(resp.into_body()).await?;
        out(&format!("{}\n", r.full_string()));
    } else {
        display_progress(resp.into_body(), false).await?;
    }
    Ok(())
}

/// `tag SOURCE TARGET`.
pub async fn tag(ctx: &Ctx, p: &Parsed) -> CliResult<()> {
    let target = Reference::parse(&p.args[1]).map_err(CliError::Other)?;
    if target.digest.is_some() {
        return Err(CliError::Other(
            "refusing to create a tag with a digest reference".into(),
        ));
    }
    let target = target.tag_name_only();
    let docker = ctx.client.api().await?;
    docker
        .tag_image(
            &p.args[0],
            Some(bollard::query_parameters::TagImageOptions {
                repo: Some(target.name()),
                tag: target.tag.clone(),
            }),
        )
        .await?;
    Ok(())
}

/// `rmi`.
pub async fn rmi(ctx: &Ctx, p: &Parsed) -> CliResult<()> {
    let docker = ctx.client.docker().await?;
    let opts = bollard::query_parameters::RemoveImageOptions {
        force: p.bool("force"),
        noprune: p.bool("no-prune"),
        platforms: None,
    };
    let mut errors = Vec::new();
    for name in &p.args {
        match docker.remove_image(name, Some(opts.clone()), None).await {
            Ok(items) => {
                for it in items {
                    if let Some(u) = it.untagged {
                        out(&format!("Untagged: {u}\n"));
                    }
                    if let Some(d) = it.deleted {
                        out(&format!("Deleted: {d}\n"));
                    }
                }
            }
            Err(e) => errors.push(CliError::from(e).to_string()),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CliError::Other(errors.join("\n")))
    }
}

fn is_dangling(img: &Value) -> bool {
    let tags = img.get("RepoTags").and_then(Value::as_array).unwrap_or(&[]);
    let digests = img
        .get("RepoDigests")
        .and_then(Value::as_array)
        .unwrap_or(&[]);
    (tags.is_empty() && digests.is_empty())
        || (tags.len() == 1 && tags[0].as_str() == Some("<none>:<none>"))
}

/// One row per repository:tag (docker's image formatter), as template data.
pub fn image_rows(images: &[Value], trunc: bool, digests: bool, now: i64) -> Vec<Value> {
    let mut rows = Vec::new();
    for img in images {
        let id = img.get("Id").and_then(Value::as_str).unwrap_or("");
        let created = img.get("Created").and_then(Value::as_i64).unwrap_or(0);
        let size = img.get("Size").and_then(Value::as_i64).unwrap_or(0);
        let shared = img.get("SharedSize").and_then(Value::as_i64).unwrap_or(-1);
        let containers = img.get("Containers").and_then(Value::as_i64).unwrap_or(-1);
        let row = |repo: &str, tag: &str, digest: &str| {
            obj(vec![
                (
                    "Containers",
                    if containers < 0 {
                        "N/A".into()
                    } else {
                        containers.to_string()
                    },
                ),
                ("CreatedAt", go_time_string(created)),
                ("CreatedSince", time_ago(created, now)),
                ("Digest", digest.to_string()),
                (
                    "ID",
                    if trunc {
                        truncate_id(id)
                    } else {
                        id.to_string()
                    },
                ),
                ("Repository", repo.to_string()),
                (
                    "SharedSize",
                    if shared < 0 {
                        "N/A".into()
                    } else {
                        human_size(shared as f64)
                    },
                ),
                ("Size", human_size_prec(size as f64, 3)),
                ("Tag", tag.to_string()),
                (
                    "UniqueSize",
                    if shared < 0 {
                        "N/A".into()
                    } else {
                        human_size((size - shared) as f64)
                    },
                ),
                ("VirtualSize", human_size_prec(size as f64, 3)),
            ])
        };
        if is_dangling(img) {
            rows.push(row("<none>", "<none>", "<none>"));
            continue;
        }
        let tags: Vec<String> = img
            .get("RepoTags")
            .and_then(Value::as_array)
            .unwrap_or(&[])
            .iter()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect();
        let repo_digests: Vec<(String, String)> = img
            .get("RepoDigests")
            .and_then(Value::as_array)
            .unwrap_or(&[])
            .iter()
            .filter_map(|d| d.as_str())
            .filter_map(|d| d.split_once('@'))
            .map(|(r, d)| {
                let repo = Reference::parse(r)
                    .map(|x| x.familiar_name())
                    .unwrap_or_else(|_| r.to_string());
                (repo, d.to_string())
            })
            .collect();
        let mut seen_repos = Vec::new();
        for t in &tags {
            let (repo, tag) = match Reference::parse(t) {
                Ok(r) if r.tag.is_some() => (r.familiar_name(), r.tag.clone().unwrap_or_default()),
                _ => split_repo_tag(t),
            };
            let ds: Vec<&String> = repo_digests
                .iter()
                .filter(|(r, _)| *r == repo)
                .map(|(_, d)| d)
                .collect();
            seen_repos.push(repo.clone());
            if !digests || ds.is_empty() {
                rows.push(row(&repo, &tag, "<none>"));
            } else {
                for d in ds {
                    rows.push(row(&repo, &tag, d));
                }
            }
        }
        let mut emitted = Vec::new();
        for (repo, d) in &repo_digests {
            if seen_repos.contains(repo) {
                continue;
            }
            if digests {
                rows.push(row(repo, "<none>", d));
            } else if !emitted.contains(repo) {
                emitted.push(repo.clone());
                rows.push(row(repo, "<none>", ""));
            }
        }
    }
    rows
}

fn image_headers() -> Value {
    obj(vec![
        ("Containers", "CONTAINERS".into()),
        ("CreatedAt", "CREATED AT".into()),
        ("CreatedSince", "CREATED".into()),
        ("Digest", "DIGEST".into()),
        ("ID", "IMAGE ID".into()),
        ("Repository", "REPOSITORY".into()),
        ("SharedSize", "SHARED SIZE".into()),
        ("Size", "SIZE".into()),
        ("Tag", "TAG".into()),
        ("UniqueSize", "UNIQUE SIZE".into()),
        ("VirtualSize", "VIRTUAL SIZE".into()),
    ])
}

/// `images`.
pub async fn images(ctx: &Ctx, p: &Parsed) -> CliResult<()> {
    let mut filters = crate::opts::parse_filters(&p.all("filter")).map_err(CliError::Other)?;
    if let Some(r) = p.args.first() {
        filters
            .entry("reference".into())
            .or_default()
            .push(r.clone());
    }
    let mut query = Vec::new();
    if p.bool("all") {
        query.push(("all", "1".to_string()));
    }
    if !filters.is_empty() {
        query.push((
            "filters",
            serde_json::to_string(&filters).unwrap_or_default(),
        ));
    }
    let text = ctx.client.get_text("/images/json", &query).await?;
    let list = Value::parse(text.trim())
        .map_err(|e| CliError::Other(format!("invalid image list: {e}")))?;
    let images = list.as_array().unwrap_or(&[]);
    let digests = p.bool("digests");
    let rows = image_rows(images, !p.bool("no-trunc"), digests, now_unix());
    let mut format = p.str_or("format", "").to_string();
    if p.bool("quiet") {
        if !format.is_empty() {
            write_stderr(
                b"WARNING: Ignoring custom format, because both --format and --quiet are set.\n",
            );
        }
        format = "{{.ID}}".into();
    }
    let default = if digests {
        "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    } else {
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    };
    out(&render_rows(&format, default, &rows, &image_headers())?);
    Ok(())
}

/// `import file|URL|- [REPOSITORY[:TAG]]`.
pub async fn import(ctx: &Ctx, p: &Parsed) -> CliResult<()> {
    let source = p.args[0].clone();
    let repo = p.args.get(1).cloned().unwrap_or_default();
    if !repo.is_empty() {
        Reference::parse(&repo).map_err(CliError::Other)?;
    }
    let from_url = source.starts_with("http://") || source.starts_with("https://");
    let mut query = vec![(
        "fromSrc",
        if from_url {
            source.clone()
        } else {
            "-".to_string()
        },
    )];
    if !repo.is_empty() {
        query.push(("repo", repo));
    }
    if let Some(m) = p.last("message") {
        query.push(("message", m.to_string()));
    }
    for c in p.all("change") {
        query.push(("changes", c));
    }
    if let Some(pl) = p.last("platform").filter(|s| !s.is_empty()) {
        query.push(("platform", pl.to_string()));
    }
    let body = if from_url {
        None
    } else if source == "-" {
        Some(reader_body(Box::new(tokio::io::stdin())))
    } else {
        let f = tokio::fs::File::open(&source)
            .await
            .map_err(|e| CliError::Other(format!("open {source}: {}", crate::opts::io_msg(&e))))?;
        Some(reader_body(Box::new(f)))
    };
    let resp = ctx
        .client
        .raw_with(Method::POST, "/images/create", &query, &[], body)
        .await?;
    display_progress(resp.into_body(), false).await?;
    Ok(())
}

type Reader = Box<dyn tokio::io::AsyncRead + Send + Unpin>;

/// A request body of fixed bytes.
pub(crate) fn bytes_body(data: Vec<u8>) -> crate::client::ReqBody {
    let s = stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(data)) });
    bollard::body_try_stream(s)
}

/// Streams an async reader as a chunked request body.
pub(crate) fn reader_body(reader: Reader) -> crate::client::ReqBody {
    let s = stream::unfold(Some(reader), |state| async move {
        let mut r = state?;
        let mut buf = vec![0u8; 64 * 1024];
        match r.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(r)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    bollard::body_try_stream(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMAGES: &str = r#"[{"Containers":-1,"Created":1000,"Id":"sha256:a59a0235e570aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","Labels":null,"ParentId":"",
        "RepoDigests":["127.0.0.1:5000/busybox@sha256:a0b242ef18df049e232b9af763394e386353ef8da17796313509f49ac8255a69"],
        "RepoTags":["127.0.0.1:5000/busybox:local","busybox:local"],"SharedSize":-1,"Size":1984172,"VirtualSize":1984172},
        {"Containers":-1,"Created":1000,"Id":"sha256:0e5841804b14bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","Labels":null,"ParentId":"",
        "RepoDigests":null,"RepoTags":null,"SharedSize":-1,"Size":4260000,"VirtualSize":4260000}]"#;

    #[test]
    fn rows_per_tag_and_dangling() {
        let v = Value::parse(IMAGES).unwrap();
        let rows = image_rows(v.as_array().unwrap(), true, false, 1000 + 120);
        let s = |r: &Value, k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        assert_eq!(rows.len(), 3);
        assert_eq!(s(&rows[0], "Repository"), "127.0.0.1:5000/busybox");
        assert_eq!(s(&rows[0], "Tag"), "local");
        assert_eq!(s(&rows[1], "Repository"), "busybox");
        assert_eq!(s(&rows[1], "ID"), "a59a0235e570");
        assert_eq!(s(&rows[1], "Size"), "1.98MB");
        assert_eq!(s(&rows[1], "CreatedSince"), "2 minutes ago");
        assert_eq!(s(&rows[2], "Repository"), "<none>");
        assert_eq!(s(&rows[2], "Size"), "4.26MB");
        let out = render_rows(
            "",
            "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}",
            &rows,
            &image_headers(),
        )
        .unwrap();
        assert_eq!(
            out,
            "REPOSITORY               TAG       IMAGE ID       CREATED         SIZE\n\
             127.0.0.1:5000/busybox   local     a59a0235e570   2 minutes ago   1.98MB\n\
             busybox                  local     a59a0235e570   2 minutes ago   1.98MB\n\
             <none>                   <none>    0e5841804b14   2 minutes ago   4.26MB\n"
        );
    }

    #[test]
    fn digest_rows() {
        let v = Value::parse(IMAGES).unwrap();
        let rows = image_rows(&v.as_array().unwrap()[..1], false, true, 2000);
        let d = rows[0].get("Digest").and_then(Value::as_str).unwrap();
        assert!(d.starts_with("sha256:a0b2"));
        assert!(rows[0]
            .get("ID")
            .and_then(Value::as_str)
            .unwrap()
            .starts_with("sha256:"));
        assert_eq!(
            rows[1].get("Digest").and_then(Value::as_str),
            Some("<none>")
        );
    }
}
