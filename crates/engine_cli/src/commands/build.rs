//! `build` (the classic builder: the context is sent as a tar to `POST /build`) and
//! `history`.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use http_body_util::BodyExt;
use hyper::Method;

use super::{out, Ctx};
use crate::error::{CliError, CliResult};
use crate::flags::Parsed;
use crate::format::human::{human_size, now_unix, time_ago, truncate_id};
use crate::format::json::Value;
use crate::format::{obj, render_rows};
use crate::streams::{write_stdout, JsonLines};

fn io_err(what: &str, e: std::io::Error) -> CliError {
    CliError::Other(format!("{what}: {}", crate::opts::io_msg(&e)))
}

/// Whether bytes start a tar archive (possibly compressed).
fn is_archive(head: &[u8]) -> bool {
    head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || head.starts_with(b"BZh")
        || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0])
        || (head.len() >= 262 && &head[257..262] == b"ustar")
}

/// `build [OPTIONS] PATH | -`.
pub async fn build(ctx: &Ctx, p: &Parsed) -> CliResult<()> {
    let path = p.args[0].clone();
    if path.starts_with("http://") || path.starts_with("https://") || path.starts_with("git@") {
        return Err(CliError::Other(
            "unable to prepare context: remote contexts (URL or git) are not supported by berth"
                .into(),
        ));
    }
    let mut query: Vec<(&str, String)> = Vec::new();
    for t in p.all("tag") {
        crate::reference::Reference::parse(&t).map_err(|e| {
            CliError::Other(format!(
                "invalid argument \"{t}\" for \"-t, --tag\" flag: {e}"
            ))
        })?;
        query.push(("t", t));
    }
    let mut build_args = serde_json::Map::new();
    for a in p.all("build-arg") {
        match a.split_once('=') {
            Some((k, v)) => {
                build_args.insert(k.to_string(), serde_json::Value::String(v.to_string()));
            }
            // `--build-arg NAME` takes the value from the environment, if set.
            None => {
                if let Ok(v) = std::env::var(&a) {
                    build_args.insert(a.clone(), serde_json::Value::String(v));
                } else {
                    build_args.insert(a.clone(), serde_json::Value::Null);
                }
            }
        }
    }
    if !build_args.is_empty() {
        query.push((
            "buildargs",
            serde_json::Value::Object(build_args).to_string(),
        ));
    }
    let mut labels = serde_json::Map::new();
    for l in p.all("label") {
        let (k, v) = l.split_once('=').unwrap_or((&l, ""));
        labels.insert(k.to_string(), serde_json::Value::String(v.to_string()));
    }
    if !labels.is_empty() {
        query.push(("labels", serde_json::Value::Object(labels).to_string()));
    }
    if let Some(t) = p.last("target").filter(|s| !s.is_empty()) {
        query.push(("target", t.to_string()));
    }
    if p.bool("no-cache") {
        query.push(("nocache", "1".into()));
    }
    let quiet = p.bool("quiet");
    if quiet {
        query.push(("q", "1".into()));
    }
    if let Some(n) = p.last("network").filter(|s| !s.is_empty()) {
        query.push(("networkmode", n.to_string()));
    }
    query.push(("rm", if p.bool_or("rm", true) { "1" } else { "0" }.into()));
    if p.bool("force-rm") {
        query.push(("forcerm", "1".into()));
    }

    let dockerfile_flag = p.last("file").map(str::to_string);
    let mut spool = tempfile_spool()?;
    if path == "-" {
        if dockerfile_flag.as_deref() == Some("-") {
            return Err(CliError::Other(
                "invalid argument: can't use stdin for both build context and dockerfile".into(),
            ));
        }
        // stdin is a tar context or a bare Dockerfile; the daemon tells them apart.
        let mut data = Vec::new();
        std::io::stdin()
            .read_to_end(&mut data)
            .map_err(|e| io_err("reading the build context from stdin", e))?;
        if !is_archive(&data) {
            if let Some(f) = &dockerfile_flag {
                query.push(("dockerfile", f.clone()));
            }
        } else if let Some(f) = &dockerfile_flag {
            query.push(("dockerfile", f.clone()));
        }
        spool.write_all(&data).map_err(|e| io_err("spooling", e))?;
    } else {
        let ctx_dir = PathBuf::from(&path);
        let meta = std::fs::metadata(&ctx_dir).map_err(|e| {
            CliError::Other(format!(
                "unable to prepare context: path \"{path}\" not found ({})",
                crate::opts::io_msg(&e)
            ))
        })?;
        if !meta.is_dir() {
            return Err(CliError::Other(format!(
                "unable to prepare context: context must be a directory: {path}"
            )));
        }
        // The Dockerfile: inside the context (sent as is), outside it or on stdin
        // (added to the tar under a private name).
        let (df_rel, extra): (String, Option<Vec<u8>>) = match dockerfile_flag.as_deref() {
            Some("-") => {
                let mut data = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut data)
                    .map_err(|e| io_err("reading the Dockerfile from stdin", e))?;
                (format!(".dockerfile.{:012x}", rand_u48()), Some(data))
            }
            Some(f) => {
                let fp = if Path::new(f).is_absolute() {
                    PathBuf::from(f)
                } else {
                    // docker resolves -f against the current directory.
                    std::env::current_dir()
                        .map(|d| d.join(f))
                        .unwrap_or_else(|_| PathBuf::from(f))
                };
                let abs_ctx = std::fs::canonicalize(&ctx_dir).map_err(|e| io_err(&path, e))?;
                let abs_df = std::fs::canonicalize(&fp).map_err(|_| {
                    CliError::Other(format!(
                        "unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {}: no such file or directory",
                        fp.display()
                    ))
                })?;
                match abs_df.strip_prefix(&abs_ctx) {
                    Ok(rel) => (rel.to_string_lossy().into_owned(), None),
                    Err(_) => {
                        let data = std::fs::read(&abs_df).map_err(|e| io_err(f, e))?;
                        (format!(".dockerfile.{:012x}", rand_u48()), Some(data))
                    }
                }
            }
            None => {
                let df = ctx_dir.join("Dockerfile");
                if !df.exists() && !ctx_dir.join("dockerfile").exists() {
                    return Err(CliError::Other(format!(
                        "unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {}: no such file or directory",
                        std::fs::canonicalize(&ctx_dir)
                            .unwrap_or(ctx_dir.clone())
                            .join("Dockerfile")
                            .display()
                    )));
                }
                ("Dockerfile".to_string(), None)
            }
        };
        let matcher = build_context::read_dockerignore(&ctx_dir, Some(&df_rel))
            .map_err(|e| CliError::Other(format!("error reading .dockerignore: {e}")))?;
        {
            let mut w = std::io::BufWriter::new(&mut spool);
            let mut tb_extra = extra.clone();
            let always = [df_rel.as_str(), ".dockerignore"];
            build_context::write_context_tar(&ctx_dir, &matcher, &always, &mut w)
                .map_err(|e| CliError::Other(format!("error creating the build context: {e}")))?;
            w.flush().map_err(|e| io_err("spooling", e))?;
            if let Some(data) = tb_extra.take() {
                drop(w);
                append_to_tar(&mut spool, &df_rel, &data)?;
            }
        }
        query.push(("dockerfile", df_rel));
    }
    spool
        .seek(std::io::SeekFrom::Start(0))
        .map_err(|e| io_err("spooling", e))?;
    let f = tokio::fs::File::from_std(spool);
    let body = super::image::reader_body(Box::new(f));
    let resp = ctx
        .client
        .raw_with(
            Method::POST,
            "/build",
            &query,
            &[("Content-Type", "application/x-tar")],
            Some(body),
        )
        .await?;
    let mut image_id = String::new();
    let mut lines = JsonLines::default();
    let mut body = resp.into_body();
    let mut handle = |m: Result<crate::streams::JsonMessage, String>| -> CliResult<()> {
        let m = m.map_err(|e| CliError::Other(format!("error decoding build output: {e}")))?;
        if let Some(err) = m.error_text() {
            let code = m
                .error_detail
                .as_ref()
                .and_then(|d| d.code)
                .filter(|c| *c != 0)
                .unwrap_or(1);
            return Err(CliError::Status {
                message: err,
                code: code as i32,
            });
        }
        if let Some(id) = m
            .aux
            .as_ref()
            .and_then(|a| a.get("ID"))
            .and_then(|v| v.as_str())
        {
            image_id = id.to_string();
        }
        if !m.stream.is_empty() && !quiet {
            write_stdout(m.stream.as_bytes());
        }
        Ok(())
    };
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| CliError::Other(format!("error reading build output: {e}")))?;
        if let Ok(data) = frame.into_data() {
            for m in lines.push(&data) {
                handle(m)?;
            }
        }
    }
    if let Some(m) = lines.finish() {
        handle(m)?;
    }
    if quiet && !image_id.is_empty() {
        out(&format!("{image_id}\n"));
    }
    if let Some(f) = p.last("iidfile").filter(|s| !s.is_empty()) {
        std::fs::write(f, &image_id).map_err(|e| io_err(f, e))?;
    }
    Ok(())
}

fn rand_u48() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    (t ^ (std::process::id() as u64) << 20) & 0xffff_ffff_ffff
}

fn tempfile_spool() -> CliResult<std::fs::File> {
    let dir = std::env::temp_dir();
    let name = dir.join(format!(
        ".berth-build-{}-{:x}",
        std::process::id(),
        rand_u48()
    ));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&name)
        .map_err(|e| io_err("creating a temporary file", e))?;
    let _ = std::fs::remove_file(&name);
    Ok(f)
}

/// Appends one file to a finished tar (replacing its two end blocks).
fn append_to_tar(f: &mut std::fs::File, name: &str, data: &[u8]) -> CliResult<()> {
    let len = f
        .seek(std::io::SeekFrom::End(0))
        .map_err(|e| io_err("spooling", e))?;
    // Find the end-of-archive marker: the last two zero blocks written by the tar writer.
    let back = len.min(1024);
    f.seek(std::io::SeekFrom::Start(len - back))
        .map_err(|e| io_err("spooling", e))?;
    let mut header = [0u8; 512];
    let name_bytes = name.as_bytes();
    if name_bytes.len() > 99 {
        return Err(CliError::Other("Dockerfile name too long".into()));
    }
    header[..name_bytes.len()].copy_from_slice(name_bytes);
    header[100..108].copy_from_slice(b"0000644\0");
    header[108..116].copy_from_slice(b"0000000\0");
    header[116..124].copy_from_slice(b"0000000\0");
    header[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
    let mtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    header[136..148].copy_from_slice(format!("{mtime:011o}\0").as_bytes());
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|b| *b as u32).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    f.write_all(&header).map_err(|e| io_err("spooling", e))?;
    f.write_all(data).map_err(|e| io_err("spooling", e))?;
    let pad = (512 - data.len() % 512) % 512;
    f.write_all(&vec![0u8; pad + 1024])
        .map_err(|e| io_err("spooling", e))?;
    Ok(())
}

/// `history [OPTIONS] IMAGE`.
pub async fn history(ctx: &Ctx, p: &Parsed) -> CliResult<()> {
    let name = &p.args[0];
    let text = ctx
        .client
        .get_text(&format!("/images/{name}/history"), &[])
        .await?;
    let v = Value::parse(&text)
        .map_err(|e| CliError::Other(format!("error decoding history: {e:?}")))?;
    let no_trunc = p.bool("no-trunc");
    let human = p.bool_or("human", true);
    let now = now_unix();
    let rows: Vec<Value> = v
        .as_array()
        .map(|a| a.to_vec())
        .unwrap_or_default()
        .iter()
        .map(|h| {
            let id = h.get("Id").and_then(Value::as_str).unwrap_or("");
            let id = if no_trunc || id == "<missing>" {
                id.to_string()
            } else {
                truncate_id(id)
            };
            let created = h.get("Created").and_then(Value::as_i64).unwrap_or(0);
            let by = h.get("CreatedBy").and_then(Value::as_str).unwrap_or("");
            let by = if no_trunc || by.chars().count() <= 45 {
                by.to_string()
            } else {
                format!("{}…", by.chars().take(44).collect::<String>())
            };
            let size = h.get("Size").and_then(Value::as_i64).unwrap_or(0);
            obj(vec![
                ("ID", id),
                (
                    "CreatedSince",
                    if human {
                        time_ago(created, now)
                    } else {
                        created.to_string()
                    },
                ),
                ("CreatedBy", by),
                (
                    "Size",
                    if human {
                        human_size(size as f64)
                    } else {
                        size.to_string()
                    },
                ),
                (
                    "Comment",
                    h.get("Comment")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                ),
            ])
        })
        .collect();
    if p.bool("quiet") {
        for r in &rows {
            out(&format!(
                "{}\n",
                r.get("ID").and_then(Value::as_str).unwrap_or("")
            ));
        }
        return Ok(());
    }
    let headers = obj(vec![
        ("ID", "IMAGE".into()),
        ("CreatedSince", "CREATED".into()),
        ("CreatedBy", "CREATED BY".into()),
        ("Size", "SIZE".into()),
        ("Comment", "COMMENT".into()),
    ]);
    let text = render_rows(
        p.last("format").unwrap_or(""),
        "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
        &rows,
        &headers,
    )?;
    out(&text);
    Ok(())
}
