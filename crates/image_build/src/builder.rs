//! The build loop: stages, steps, the cache, and committing each step as an image.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bollard::models::{ContainerCreateBody, HostConfig};
use build_context::IgnoreMatcher;
use dockerfile::{Healthcheck, Instruction, InstructionKind, Lexer, ShellOrExec};
use engine::{Engine, LogOptions, WaitCondition};
use image_store::{ImageId, ImageStore, Reference};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::config::{quoted_list, ImageConfig};
use crate::copy::{self, CopyRequest};
use crate::error::{BuildError, Result};
use crate::rootfs::{clean, escapes, resolve_in_root, OverlayRoot};
use crate::{BuildEvent, BuildOptions};

/// Build args every Dockerfile may use without declaring them (and that never enter
/// the cache key), as in Docker.
const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Paths a container runtime creates as mount points; not part of a RUN step's layer
/// when the step's image did not have them (Docker keeps them in an "init" layer).
const RUNTIME_MOUNTPOINTS: [&str; 10] = [
    "etc/hosts",
    "etc/hostname",
    "etc/resolv.conf",
    ".dockerenv",
    "dev/shm",
    "dev/pts",
    "dev/mqueue",
    "dev",
    "proc",
    "sys",
];

/// A finished stage: what `FROM <name>` and `COPY --from=<name>` refer to.
struct StageResult {
    name: Option<String>,
    image: Option<ImageId>,
    config: ImageConfig,
}

/// The state of the stage being built.
struct Stage {
    image: Option<ImageId>,
    config: ImageConfig,
    /// ARGs declared in this stage and their values.
    args: BTreeMap<String, Option<String>>,
    /// Whether CMD was set in this stage (ENTRYPOINT resets an inherited CMD).
    cmd_set: bool,
}

impl Stage {
    fn lookup(&self, name: &str) -> Option<String> {
        self.config
            .env_get(name)
            .or_else(|| self.args.get(name).cloned().flatten())
    }

    /// Declared ARGs with a value that no ENV overrides: they are in RUN's environment
    /// and in its cache key.
    fn args_in_use(&self) -> Vec<(String, String)> {
        self.args
            .iter()
            .filter_map(|(k, v)| {
                let v = v.as_ref()?;
                if self.config.env_get(k).is_some() {
                    return None;
                }
                Some((k.clone(), v.clone()))
            })
            .collect()
    }
}

/// Removes the build's work directory (mount points of COPY steps) when done.
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            if e.kind() != std::io::ErrorKind::NotFound {
                warn!(path = %self.0.display(), error = %e, "cannot remove build work dir");
            }
        }
    }
}

/// Removes a RUN step's container however the step ends.
struct ContainerGuard {
    engine: Arc<Engine>,
    id: Option<String>,
}

impl ContainerGuard {
    async fn remove(&mut self) {
        if let Some(id) = self.id.take() {
            if let Err(e) = self.engine.remove(&id, true, true).await {
                warn!(container = %id, error = %e, "cannot remove build container");
            }
        }
    }
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let engine = self.engine.clone();
            if let Ok(h) = tokio::runtime::Handle::try_current() {
                h.spawn(async move {
                    if let Err(e) = engine.remove(&id, true, true).await {
                        warn!(container = %id, error = %e, "cannot remove build container");
                    }
                });
            }
        }
    }
}

struct Builder {
    engine: Arc<Engine>,
    ctx_dir: PathBuf,
    work: PathBuf,
    opts: BuildOptions,
    tx: mpsc::Sender<BuildEvent>,
    ignore: Arc<IgnoreMatcher>,
    lexer: Lexer,
    meta_args: BTreeMap<String, Option<String>>,
    declared: BTreeSet<String>,
    stages: Vec<StageResult>,
    step: usize,
    total: usize,
    seq: u32,
}

/// Builds the image described by the Dockerfile in `ctx_dir` (an unpacked build
/// context), reporting progress on `tx`. On success the image is tagged and its ID
/// returned; on failure nothing is tagged and no build container is left behind.
pub async fn build(
    engine: Arc<Engine>,
    ctx_dir: &Path,
    opts: BuildOptions,
    tx: mpsc::Sender<BuildEvent>,
) -> Result<ImageId> {
    for t in &opts.tags {
        let r = Reference::parse(t).map_err(|e| {
            BuildError::Invalid(format!(
                "invalid argument \"{t}\" for \"-t, --tag\" flag: {e}"
            ))
        })?;
        if r.digest().is_some() {
            return Err(BuildError::Invalid(format!(
                "invalid argument \"{t}\" for \"-t, --tag\" flag: cannot tag with a digest"
            )));
        }
    }
    let name = if opts.dockerfile.is_empty() {
        "Dockerfile".to_string()
    } else {
        opts.dockerfile.clone()
    };
    let text = read_dockerfile(ctx_dir, &name)?;
    let df = dockerfile::parse(&text).map_err(|e| {
        BuildError::Parse(format!(
            "Dockerfile parse error in {name} line {}: {}",
            e.line, e.message
        ))
    })?;
    let ignore = build_context::read_dockerignore(ctx_dir, Some(&name))
        .map_err(|e| BuildError::Invalid(format!("reading .dockerignore: {e}")))?;

    let target_idx = match &opts.target {
        Some(t) if !t.is_empty() => df
            .stages
            .iter()
            .position(|s| s.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(t)))
            .ok_or_else(|| {
                BuildError::Invalid(format!("failed to reach build target {t} in Dockerfile"))
            })?,
        _ => df.stages.len().saturating_sub(1),
    };
    if df.stages.is_empty() {
        return Err(BuildError::Parse(
            "Dockerfile parse error: no build stage in current context".into(),
        ));
    }
    let total = df.meta_args.len()
        + df.stages[..=target_idx]
            .iter()
            .map(|s| 1 + s.instructions.len())
            .sum::<usize>()
        + usize::from(!opts.labels.is_empty());

    let work = engine
        .cfg
        .root
        .join("build")
        .join(format!("{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&work)?;
    let _work_guard = WorkDir(work.clone());
    let mut b = Builder {
        engine: engine.clone(),
        ctx_dir: ctx_dir.to_path_buf(),
        work,
        lexer: Lexer::new(df.escape),
        opts,
        tx,
        ignore: Arc::new(ignore),
        meta_args: BTreeMap::new(),
        declared: BTreeSet::new(),
        stages: Vec::new(),
        step: 0,
        total,
        seq: 0,
    };

    for ins in &df.meta_args {
        b.step_header(ins).await?;
        let InstructionKind::Arg(pairs) = &ins.kind else {
            return Err(BuildError::Parse(format!(
                "Dockerfile parse error in {name} line {}: no build stage in current context",
                ins.line
            )));
        };
        for (k, default) in pairs {
            b.declared.insert(k.clone());
            let v = match b.opts.build_args.get(k) {
                Some(Some(v)) => Some(v.clone()),
                _ => match default {
                    Some(d) => {
                        let meta = b.meta_args.clone();
                        Some(b.expand(d, &|n| meta.get(n).cloned().flatten())?)
                    }
                    None => None,
                },
            };
            b.meta_args.insert(k.clone(), v);
        }
    }

    let mut last: Option<Stage> = None;
    for (i, st) in df.stages[..=target_idx].iter().enumerate() {
        let mut stage = b.from(&st.from, i).await?;
        for ins in &st.instructions {
            b.step_header(ins).await?;
            b.dispatch(&mut stage, ins).await?;
        }
        if i == target_idx && !b.opts.labels.is_empty() {
            b.step += 1;
            let text = b
                .opts
                .labels
                .iter()
                .map(|(k, v)| format!("{}={}", quote_word(k), quote_word(v)))
                .collect::<Vec<_>>()
                .join(" ");
            b.say(format!("Step {}/{} : LABEL {text}\n", b.step, b.total))
                .await?;
            let labels = b.opts.labels.clone();
            for (k, v) in &labels {
                stage.config.set_label(k, v);
            }
            b.commit_meta(&mut stage, &format!("LABEL {text}")).await?;
        }
        b.stages.push(StageResult {
            name: st.name.clone(),
            image: stage.image.clone(),
            config: stage.config.clone(),
        });
        last = Some(stage);
    }

    let Some(id) = last.and_then(|s| s.image) else {
        return Err(BuildError::Invalid(
            "No image was generated. Is your Dockerfile empty?".into(),
        ));
    };
    let unused: Vec<String> = b
        .opts
        .build_args
        .keys()
        .filter(|k| !b.declared.contains(*k) && !PROXY_ARGS.contains(&k.as_str()))
        .cloned()
        .collect();
    if !unused.is_empty() {
        b.say(format!(
            "[Warning] One or more build-args [{}] were not consumed\n",
            unused.join(" ")
        ))
        .await?;
    }
    b.send(BuildEvent::Aux(id.to_string())).await?;
    b.say(format!("Successfully built {}\n", id.short()))
        .await?;
    for t in &b.opts.tags.clone() {
        let images = engine.clone();
        let (idc, tc) = (id.to_string(), t.clone());
        blocking(move || Ok(images.images.tag(&idc, &tc)?)).await?;
        b.say(format!("Successfully tagged {}\n", familiar_tag(t)))
            .await?;
    }
    info!(image = %id, "build finished");
    Ok(id)
}

fn familiar_tag(t: &str) -> String {
    Reference::parse(t)
        .map(|r| r.with_default_tag().familiar())
        .unwrap_or_else(|_| t.to_string())
}

fn read_dockerfile(ctx: &Path, name: &str) -> Result<String> {
    if escapes(name) && !name.starts_with('/') {
        return Err(BuildError::NoDockerfile(name.to_string()));
    }
    let candidates: Vec<String> = if name == "Dockerfile" {
        vec![name.to_string(), "dockerfile".to_string()]
    } else {
        vec![name.to_string()]
    };
    for c in candidates {
        let p = resolve_in_root(ctx, &c).map_err(|_| BuildError::NoDockerfile(name.into()))?;
        match std::fs::metadata(&p) {
            Ok(m) if m.is_file() => {
                if m.len() > 16 * 1024 * 1024 {
                    return Err(BuildError::Invalid(format!(
                        "Dockerfile {name} is too large"
                    )));
                }
                let bytes = std::fs::read(&p)?;
                return String::from_utf8(bytes).map_err(|_| {
                    BuildError::Parse(format!("Dockerfile {name} is not valid UTF-8"))
                });
            }
            _ => continue,
        }
    }
    Err(BuildError::NoDockerfile(name.to_string()))
}

/// Quotes a word for display in a LABEL line, as Docker does for `--label`.
fn quote_word(s: &str) -> String {
    if s.is_empty()
        || s.chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\'')
    {
        serde_json::to_string(s).unwrap_or_default()
    } else {
        s.to_string()
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BuildError::Internal(format!("build task failed: {e}")))?
}

fn cache_key(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(b"berth-build-v1\0");
    for p in parts {
        h.update(p.as_bytes());
        h.update(b"\0");
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// Reads a pipe to its end; an end not preceded by the writer's success is an error,
/// so a failed writer (a layer, a decompressor) can never pass for a short stream.
pub(crate) struct CheckedPipe {
    pub(crate) inner: BufReader<std::io::PipeReader>,
    pub(crate) ok: Arc<AtomicBool>,
}

impl Read for CheckedPipe {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() && !self.ok.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("the stream writer failed"));
        }
        Ok(n)
    }
}

/// Commits `config` as a child of `parent`, with the changes in `upper` (if any) as
/// its new layer. The history entry must already be in `config`.
fn commit(
    images: &ImageStore,
    parent: Option<&ImageId>,
    upper: Option<&Path>,
    config: Value,
    key: &str,
) -> Result<ImageId> {
    let Some(upper) = upper else {
        return Ok(images.add_child_image(parent, None, config, Some(key.to_string()))?);
    };
    let (r, w) = std::io::pipe()?;
    let ok = Arc::new(AtomicBool::new(false));
    let ok2 = ok.clone();
    std::thread::scope(|s| {
        let writer = s.spawn(move || -> Result<()> {
            let mut w = BufWriter::with_capacity(256 * 1024, w);
            layer_diff::write_layer(upper, &mut w)
                .map_err(|e| BuildError::Internal(format!("making the layer: {e}")))?;
            w.flush()?;
            ok2.store(true, Ordering::SeqCst);
            Ok(())
        });
        let reader = CheckedPipe {
            inner: BufReader::with_capacity(256 * 1024, r),
            ok,
        };
        let res = images.add_child_image(parent, Some(Box::new(reader)), config, Some(key.into()));
        let wres = writer
            .join()
            .map_err(|_| BuildError::Internal("layer writer panicked".into()))?;
        match (res, wres) {
            (Ok(id), Ok(())) => Ok(id),
            (_, Err(e)) => Err(e),
            (Err(e), _) => Err(e.into()),
        }
    })
    .inspect(|id| {
        // The upper dir is exactly the new layer in overlay form: keep it as the
        // layer's snapshot rather than unpacking the blob again for the next step.
        if let Err(e) = images.adopt_snapshot(id, upper) {
            warn!(error = %e, "cannot adopt the step's snapshot");
        }
    })
}

/// Whether a step's upper directory holds a change.
fn has_changes(upper: &Path) -> Result<bool> {
    Ok(!layer_diff::is_empty(upper)
        .map_err(|e| BuildError::Internal(format!("reading the step's changes: {e}")))?)
}

/// Drops mount points the runtime created for a RUN container (see
/// [`RUNTIME_MOUNTPOINTS`]) when they are empty and the image lacked them.
fn drop_runtime_mountpoints(upper: &Path, lowers: &[PathBuf]) {
    for rel in RUNTIME_MOUNTPOINTS {
        let p = upper.join(rel);
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        let empty = if m.is_dir() {
            std::fs::read_dir(&p)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false)
        } else {
            m.is_file() && m.len() == 0
        };
        if !empty
            || lowers
                .iter()
                .any(|l| l.join(rel).symlink_metadata().is_ok())
        {
            continue;
        }
        let res = if m.is_dir() {
            std::fs::remove_dir(&p)
        } else {
            std::fs::remove_file(&p)
        };
        if let Err(e) = res {
            warn!(path = %p.display(), error = %e, "cannot drop a runtime mount point");
        }
    }
}

fn parse_ports(words: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for w in words {
        let (ports, proto) = match w.split_once('/') {
            Some((p, proto)) => (p, proto.to_ascii_lowercase()),
            None => (w.as_str(), "tcp".to_string()),
        };
        if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
            return Err(BuildError::Invalid(format!("invalid proto: {proto}")));
        }
        let bad = || BuildError::Invalid(format!("invalid containerPort: {ports}"));
        let (lo, hi) = match ports.split_once('-') {
            Some((a, b)) => (
                a.parse::<u16>().map_err(|_| bad())?,
                b.parse::<u16>().map_err(|_| bad())?,
            ),
            None => {
                let p = ports.parse::<u16>().map_err(|_| bad())?;
                (p, p)
            }
        };
        if lo == 0 || hi < lo {
            return Err(bad());
        }
        for p in lo..=hi {
            out.push(format!("{p}/{proto}"));
        }
    }
    Ok(out)
}

fn valid_signal(s: &str) -> bool {
    if let Ok(n) = s.parse::<u32>() {
        return (1..=64).contains(&n);
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    name.parse::<nix::sys::signal::Signal>().is_ok()
        || format!("SIG{name}")
            .parse::<nix::sys::signal::Signal>()
            .is_ok()
        || name.starts_with("RTMIN")
        || name.starts_with("RTMAX")
}

fn nanos(d: Option<std::time::Duration>) -> Value {
    match d {
        Some(d) => json!(d.as_nanos() as u64),
        None => Value::Null,
    }
}

impl Builder {
    async fn send(&self, ev: BuildEvent) -> Result<()> {
        self.tx.send(ev).await.map_err(|_| BuildError::Cancelled)
    }

    async fn say(&self, text: String) -> Result<()> {
        if self.opts.quiet {
            return Ok(());
        }
        self.send(BuildEvent::Stream(text)).await
    }

    async fn step_header(&mut self, ins: &Instruction) -> Result<()> {
        self.step += 1;
        self.say(format!(
            "Step {}/{} : {}\n",
            self.step,
            self.total,
            ins.original.trim()
        ))
        .await
    }

    fn expand(&self, word: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String> {
        self.lexer
            .expand_word(word, lookup)
            .map_err(|e| BuildError::Invalid(e.to_string()))
    }

    fn expand_in(&self, stage: &Stage, word: &str) -> Result<String> {
        self.expand(word, &|n| stage.lookup(n))
    }

    fn expand_words_in(&self, stage: &Stage, words: &[String]) -> Result<Vec<String>> {
        words.iter().map(|w| self.expand_in(stage, w)).collect()
    }

    fn next_dir(&mut self, what: &str) -> PathBuf {
        self.seq += 1;
        self.work.join(format!("{what}-{}", self.seq))
    }

    fn images(&self) -> &ImageStore {
        &self.engine.images
    }

    /// The image and config a stage reference names (`FROM x`, `COPY --from=x`):
    /// an earlier stage by name or index, `scratch`, or an image.
    fn stage_or_image(&self, name: &str) -> Result<(Option<ImageId>, ImageConfig)> {
        if let Some(s) = self.stages.iter().find(|s| {
            s.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        }) {
            return Ok((s.image.clone(), s.config.clone()));
        }
        if let Ok(i) = name.parse::<usize>() {
            if let Some(s) = self.stages.get(i) {
                return Ok((s.image.clone(), s.config.clone()));
            }
        }
        if name.eq_ignore_ascii_case("scratch") {
            return Ok((None, ImageConfig::scratch()));
        }
        let img = self.images().resolve(name).map_err(|e| match e {
            image_store::ImageError::NotFound(_) => BuildError::Image(format!(
                "pull access denied for {name}, repository does not exist or may require \
                 'docker login': no such image in the local store"
            )),
            other => other.into(),
        })?;
        let bytes = self.images().config_bytes(&img.id)?;
        let cfg = ImageConfig::from_bytes(&bytes).map_err(BuildError::Image)?;
        Ok((Some(img.id), cfg))
    }

    async fn from(&mut self, from: &Instruction, index: usize) -> Result<Stage> {
        self.step_header(from).await?;
        let InstructionKind::From { image, .. } = &from.kind else {
            return Err(BuildError::Internal("stage without FROM".into()));
        };
        let meta = self.meta_args.clone();
        let name = self.expand(image, &|n| meta.get(n).cloned().flatten())?;
        if name.is_empty() {
            return Err(BuildError::Invalid(
                "base name (${...}) should not be blank".into(),
            ));
        }
        let is_stage = self.stages.iter().any(|s| {
            s.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(&name))
        });
        if !is_stage
            && !name.eq_ignore_ascii_case("scratch")
            && self.images().resolve(&name).is_err()
        {
            self.pull(&name).await?;
        }
        let (image, mut config) = self.stage_or_image(&name)?;
        debug!(stage = index, base = %name, "stage starts");
        if let Some(id) = &image {
            self.say(format!(" ---> {}\n", id.short())).await?;
        }
        // A new stage starts from the base's config; its ONBUILD triggers run now and
        // are not inherited further.
        let base_triggers = config.on_build();
        if !base_triggers.is_empty() {
            config.set("OnBuild", Value::Null);
        }
        let mut stage = Stage {
            image,
            config,
            args: BTreeMap::new(),
            cmd_set: false,
        };
        if !base_triggers.is_empty() {
            self.say(format!(
                "# Executing {} build trigger{}\n",
                base_triggers.len(),
                if base_triggers.len() == 1 { "" } else { "s" }
            ))
            .await?;
            for t in base_triggers {
                let df = dockerfile::parse(&format!("FROM scratch\n{t}\n")).map_err(|e| {
                    BuildError::Parse(format!("parsing ONBUILD trigger {t:?}: {}", e.message))
                })?;
                for s in &df.stages {
                    for ins in &s.instructions {
                        Box::pin(self.dispatch(&mut stage, ins)).await?;
                    }
                }
            }
        }
        Ok(stage)
    }

    /// Pulls a base image the store lacks, as Docker's builder does, reporting the
    /// registry's progress lines in the build output.
    async fn pull(&mut self, name: &str) -> Result<()> {
        let reference = Reference::parse(name)
            .map_err(|e| BuildError::Invalid(format!("invalid reference format: {name}: {e}")))?
            .with_default_tag();
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        let progress = move |ev: registry_client::ProgressEvent| {
            if ev.progress().is_some() {
                return;
            }
            let line = match ev.id() {
                Some(id) => format!("{id}: {}\n", ev.status()),
                None => format!("{}\n", ev.status()),
            };
            let _ = tx.send(line);
        };
        let engine = self.engine.clone();
        let task = tokio::spawn(async move {
            engine
                .registry
                .pull(&engine.images, &reference, None, None, &progress)
                .await
        });
        while let Some(line) = rx.recv().await {
            self.say(line).await?;
        }
        task.await
            .map_err(|e| BuildError::Internal(e.to_string()))?
            .map_err(|e| BuildError::Image(format!("pulling {name}: {e}")))?;
        Ok(())
    }

    /// Returns a cached child for `key`, switching the stage to it.
    async fn try_cache(&mut self, stage: &mut Stage, key: &str) -> Result<bool> {
        if self.opts.no_cache {
            return Ok(false);
        }
        let Some(child) = self.images().find_child(stage.image.as_ref(), key) else {
            return Ok(false);
        };
        let bytes = self.images().config_bytes(&child)?;
        stage.config = ImageConfig::from_bytes(&bytes).map_err(BuildError::Image)?;
        self.say(format!(" ---> Using cache\n ---> {}\n", child.short()))
            .await?;
        stage.image = Some(child);
        Ok(true)
    }

    /// Commits a config-only step (no layer).
    async fn commit_meta(&mut self, stage: &mut Stage, what: &str) -> Result<()> {
        let key = cache_key(&["meta", what, &stage.config.to_value()["config"].to_string()]);
        if self.try_cache(stage, &key).await? {
            return Ok(());
        }
        stage
            .config
            .push_history(&format!("/bin/sh -c #(nop)  {what}"), true);
        let engine = self.engine.clone();
        let parent = stage.image.clone();
        let cfg = stage.config.to_value();
        let id = blocking(move || commit(&engine.images, parent.as_ref(), None, cfg, &key)).await?;
        self.say(format!(" ---> {}\n", id.short())).await?;
        stage.image = Some(id);
        Ok(())
    }

    fn command_of(&self, stage: &Stage, cmd: &ShellOrExec) -> Vec<String> {
        match cmd {
            ShellOrExec::Exec(v) => v.clone(),
            ShellOrExec::Shell(s) => {
                let mut v = stage.config.shell();
                v.push(s.clone());
                v
            }
        }
    }

    async fn dispatch(&mut self, stage: &mut Stage, ins: &Instruction) -> Result<()> {
        match &ins.kind {
            InstructionKind::From { .. } => Err(BuildError::Internal("nested FROM".into())),
            InstructionKind::Env(pairs) => {
                let mut shown = Vec::new();
                for (k, v) in pairs {
                    let k = self.expand_in(stage, k)?;
                    if k.is_empty() {
                        return Err(BuildError::Invalid("ENV names can not be blank".into()));
                    }
                    let v = self.expand_in(stage, v)?;
                    stage.config.env_set(&k, &v);
                    shown.push(format!("{k}={v}"));
                }
                self.commit_meta(stage, &format!("ENV {}", shown.join(" ")))
                    .await
            }
            InstructionKind::Label(pairs) => {
                let mut shown = Vec::new();
                for (k, v) in pairs {
                    let k = self.expand_in(stage, k)?;
                    if k.is_empty() {
                        return Err(BuildError::Invalid("LABEL names can not be blank".into()));
                    }
                    let v = self.expand_in(stage, v)?;
                    stage.config.set_label(&k, &v);
                    shown.push(format!("{}={}", quote_word(&k), quote_word(&v)));
                }
                self.commit_meta(stage, &format!("LABEL {}", shown.join(" ")))
                    .await
            }
            InstructionKind::Maintainer(m) => {
                stage.config.0.insert("author".into(), json!(m));
                self.commit_meta(stage, &format!("MAINTAINER {m}")).await
            }
            InstructionKind::Expose(words) => {
                let words = self.expand_words_in(stage, words)?;
                let ports = parse_ports(&words)?;
                for p in &ports {
                    stage.config.add_to_set("ExposedPorts", p);
                }
                self.commit_meta(stage, &format!("EXPOSE {}", ports.join(" ")))
                    .await
            }
            InstructionKind::Volume(words) => {
                let vols = self.expand_words_in(stage, words)?;
                for v in &vols {
                    if v.trim().is_empty() {
                        return Err(BuildError::Invalid(
                            "VOLUME specified can not be an empty string".into(),
                        ));
                    }
                    stage.config.add_to_set("Volumes", v.trim());
                }
                self.commit_meta(stage, &format!("VOLUME {}", quoted_list(&vols)))
                    .await
            }
            InstructionKind::User(u) => {
                let u = self.expand_in(stage, u)?;
                stage.config.set("User", json!(u));
                self.commit_meta(stage, &format!("USER {u}")).await
            }
            InstructionKind::Stopsignal(s) => {
                let s = self.expand_in(stage, s)?;
                if !valid_signal(&s) {
                    return Err(BuildError::Invalid(format!("Invalid signal: {s}")));
                }
                stage.config.set("StopSignal", json!(s));
                self.commit_meta(stage, &format!("STOPSIGNAL {s}")).await
            }
            InstructionKind::Cmd(c) => {
                let v = self.command_of(stage, c);
                stage.config.set("Cmd", json!(v));
                stage.cmd_set = true;
                self.commit_meta(stage, &format!("CMD {}", quoted_list(&v)))
                    .await
            }
            InstructionKind::Entrypoint(c) => {
                let v = self.command_of(stage, c);
                stage.config.set("Entrypoint", json!(v));
                if !stage.cmd_set {
                    stage.config.set("Cmd", Value::Null);
                }
                self.commit_meta(stage, &format!("ENTRYPOINT {}", quoted_list(&v)))
                    .await
            }
            InstructionKind::Shell(v) => {
                if v.is_empty() {
                    return Err(BuildError::Invalid(
                        "SHELL requires at least one argument".into(),
                    ));
                }
                stage.config.set("Shell", json!(v));
                self.commit_meta(stage, &format!("SHELL {}", quoted_list(v)))
                    .await
            }
            InstructionKind::Healthcheck(h) => {
                let v = match h {
                    Healthcheck::None => json!({"Test": ["NONE"]}),
                    Healthcheck::Check {
                        test,
                        interval,
                        timeout,
                        start_period,
                        start_interval,
                        retries,
                    } => {
                        let test = match test {
                            ShellOrExec::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
                            ShellOrExec::Exec(v) => {
                                let mut t = vec!["CMD".to_string()];
                                t.extend(v.iter().cloned());
                                t
                            }
                        };
                        let mut o = json!({"Test": test});
                        for (k, d) in [
                            ("Interval", interval),
                            ("Timeout", timeout),
                            ("StartPeriod", start_period),
                            ("StartInterval", start_interval),
                        ] {
                            if d.is_some() {
                                o[k] = nanos(*d);
                            }
                        }
                        if let Some(r) = retries {
                            o["Retries"] = json!(r);
                        }
                        o
                    }
                };
                let shown = v.to_string();
                stage.config.set("Healthcheck", v);
                self.commit_meta(stage, &format!("HEALTHCHECK {shown}"))
                    .await
            }
            InstructionKind::Onbuild(inner) => {
                let text = ins.original.trim();
                let trigger = text
                    .get(7..)
                    .filter(|_| text[..7].eq_ignore_ascii_case("ONBUILD"))
                    .map(|t| t.trim().to_string())
                    .unwrap_or_else(|| inner.original.trim().to_string());
                let mut list = stage.config.on_build();
                list.push(trigger.clone());
                stage.config.set("OnBuild", json!(list));
                self.commit_meta(stage, &format!("ONBUILD {trigger}")).await
            }
            InstructionKind::Arg(pairs) => {
                let mut shown = Vec::new();
                for (k, default) in pairs {
                    self.declared.insert(k.clone());
                    let v = match self.opts.build_args.get(k) {
                        Some(Some(v)) => Some(v.clone()),
                        _ => match default {
                            Some(d) => Some(self.expand_in(stage, d)?),
                            None => self.meta_args.get(k).cloned().flatten(),
                        },
                    };
                    stage.args.insert(k.clone(), v);
                    shown.push(match default {
                        Some(d) => format!("{k}={d}"),
                        None => k.clone(),
                    });
                }
                self.commit_meta(stage, &format!("ARG {}", shown.join(" ")))
                    .await
            }
            InstructionKind::Workdir(w) => {
                let w = self.expand_in(stage, w)?;
                let joined = if w.starts_with('/') {
                    w.clone()
                } else {
                    format!("{}/{}", stage.config.working_dir(), w)
                };
                let comps = clean(&joined);
                let path = format!(
                    "/{}",
                    comps
                        .iter()
                        .map(|c| c.to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join("/")
                );
                stage.config.set("WorkingDir", json!(path));
                self.workdir(stage, &path).await
            }
            InstructionKind::Run {
                command,
                heredocs,
                mounts,
                network,
                security,
            } => {
                // Docker's classic builder refuses BuildKit-only RUN options the same way.
                if !mounts.is_empty() {
                    return Err(BuildError::Invalid(
                        "the --mount option requires BuildKit; berth builds with the classic builder"
                            .into(),
                    ));
                }
                if security.as_deref().is_some_and(|s| s != "sandbox") {
                    return Err(BuildError::Invalid(
                        "the --security=insecure option requires BuildKit; berth builds with the classic builder"
                            .into(),
                    ));
                }
                let network = match network.as_deref() {
                    None | Some("default") => None,
                    Some(n @ ("none" | "host")) => Some(n.to_string()),
                    Some(other) => {
                        return Err(BuildError::Invalid(format!(
                            "RUN --network={other}: want default, none or host"
                        )))
                    }
                };
                let cmd = match command {
                    ShellOrExec::Exec(v) => v.clone(),
                    ShellOrExec::Shell(s) => {
                        let script =
                            run_script(s, heredocs, dockerfile::run_heredoc_is_script(command));
                        let mut v = stage.config.shell();
                        v.push(script);
                        v
                    }
                };
                self.run(stage, cmd, network).await
            }
            InstructionKind::Copy {
                flags,
                srcs,
                dest,
                heredocs,
            }
            | InstructionKind::Add {
                flags,
                srcs,
                dest,
                heredocs,
            } => {
                let add = matches!(ins.kind, InstructionKind::Add { .. });
                self.copy(stage, add, flags, srcs, dest, heredocs).await
            }
        }
    }

    /// WORKDIR: the directory is created in the image when missing.
    async fn workdir(&mut self, stage: &mut Stage, path: &str) -> Result<()> {
        let what = format!("WORKDIR {path}");
        let key = cache_key(&[
            "workdir",
            path,
            &stage.config.to_value()["config"].to_string(),
        ]);
        if self.try_cache(stage, &key).await? {
            return Ok(());
        }
        let p = path.to_string();
        self.commit_change(
            stage,
            "workdir",
            &format!("/bin/sh -c #(nop) {what}"),
            key,
            move |root| {
                let target = resolve_in_root(root, &p)?;
                std::fs::create_dir_all(&target)?;
                Ok(())
            },
        )
        .await
    }

    /// Runs `change` on a writable overlay of the stage's image (no container) and
    /// commits what it changed as the next image, with `created_by` in its history.
    async fn commit_change(
        &mut self,
        stage: &mut Stage,
        what: &str,
        created_by: &str,
        key: String,
        change: impl FnOnce(&Path) -> Result<()> + Send + 'static,
    ) -> Result<()> {
        let dir = self.next_dir(what);
        let engine = self.engine.clone();
        let parent = stage.image.clone();
        let mut config = stage.config.clone();
        let created_by = created_by.to_string();
        let id = blocking(move || {
            let layers = match &parent {
                Some(id) => engine.images.layer_dirs(id)?,
                None => Vec::new(),
            };
            let mut root = OverlayRoot::mount(dir, &layers, true)?;
            change(&root.merged())?;
            root.unmount();
            let changed = has_changes(&root.upper())?;
            config.push_history(&created_by, !changed);
            let upper = root.upper();
            commit(
                &engine.images,
                parent.as_ref(),
                changed.then_some(upper.as_path()),
                config.to_value(),
                &key,
            )
        })
        .await?;
        self.advance(stage, id).await
    }

    /// Makes a freshly committed image the stage's current one.
    async fn advance(&mut self, stage: &mut Stage, id: ImageId) -> Result<()> {
        let bytes = self.images().config_bytes(&id)?;
        stage.config = ImageConfig::from_bytes(&bytes).map_err(BuildError::Image)?;
        self.say(format!(" ---> {}\n", id.short())).await?;
        stage.image = Some(id);
        Ok(())
    }

    async fn run(
        &mut self,
        stage: &mut Stage,
        cmd: Vec<String>,
        network: Option<String>,
    ) -> Result<()> {
        let Some(parent) = stage.image.clone() else {
            return Err(BuildError::Invalid(
                "RUN needs a base image with a shell; this stage is FROM scratch with no files"
                    .into(),
            ));
        };
        let used = stage.args_in_use();
        let mut env: Vec<String> = used.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for p in PROXY_ARGS {
            if let Some(Some(v)) = self.opts.build_args.get(p) {
                if stage.config.env_get(p).is_none() {
                    env.push(format!("{p}={v}"));
                }
            }
        }
        let shown = cmd.join(" ");
        let created_by = if used.is_empty() {
            shown.clone()
        } else {
            format!(
                "|{} {} {}",
                used.len(),
                used.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                shown
            )
        };
        let key = cache_key(&[
            "run",
            &serde_json::to_string(&cmd).unwrap_or_default(),
            &created_by,
            network.as_deref().unwrap_or(""),
        ]);
        if self.try_cache(stage, &key).await? {
            return Ok(());
        }
        let body = ContainerCreateBody {
            image: Some(parent.to_string()),
            cmd: Some(cmd.clone()),
            entrypoint: Some(Vec::new()),
            env: Some(env),
            tty: Some(false),
            open_stdin: Some(false),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            labels: Some(HashMap::from([(
                "org.berth.build".to_string(),
                "run".to_string(),
            )])),
            host_config: Some(HostConfig {
                network_mode: network
                    .clone()
                    .or_else(|| self.opts.network_mode.clone())
                    .filter(|m| !m.is_empty()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let id = self.engine.create(None, body).await?;
        let mut guard = ContainerGuard {
            engine: self.engine.clone(),
            id: Some(id.clone()),
        };
        self.say(format!(" ---> Running in {}\n", &id[..12]))
            .await?;
        let waiter = self.engine.wait(&id, WaitCondition::NextExit)?;
        self.engine.start(&id).await?;
        let mut logs = self.engine.logs(
            &id,
            LogOptions {
                follow: true,
                stdout: true,
                stderr: true,
                ..Default::default()
            },
        )?;
        while let Some(chunk) = logs.recv().await {
            self.say(String::from_utf8_lossy(&chunk.data).into_owned())
                .await?;
        }
        let (code, err) = waiter.await;
        if let Some(e) = err.filter(|e| !e.is_empty()) {
            guard.remove().await;
            return Err(BuildError::Internal(format!("RUN {shown}: {e}")));
        }
        if code != 0 {
            guard.remove().await;
            return Err(BuildError::RunFailed {
                command: shown,
                code,
            });
        }
        let upper = self.engine.container_upper(&id)?;
        let engine = self.engine.clone();
        let mut config = stage.config.clone();
        let p = parent.clone();
        let new_id = blocking(move || {
            let lowers = engine.images.layer_dirs(&p)?;
            drop_runtime_mountpoints(&upper, &lowers);
            let changed = has_changes(&upper)?;
            config.push_history(&created_by, !changed);
            commit(
                &engine.images,
                Some(&p),
                changed.then_some(upper.as_path()),
                config.to_value(),
                &key,
            )
        })
        .await;
        guard.remove().await;
        let new_id = new_id?;
        self.say(format!(
            " ---> Removed intermediate container {}\n",
            &id[..12]
        ))
        .await?;
        self.advance(stage, new_id).await
    }

    async fn copy(
        &mut self,
        stage: &mut Stage,
        add: bool,
        flags: &dockerfile::CopyFlags,
        srcs: &[String],
        dest: &str,
        heredocs: &[dockerfile::Heredoc],
    ) -> Result<()> {
        let keyword = if add { "ADD" } else { "COPY" };
        if flags.parents {
            return Err(BuildError::Invalid(format!(
                "{keyword} --parents requires BuildKit; berth builds with the classic builder"
            )));
        }
        let exclude = if flags.exclude.is_empty() {
            None
        } else {
            let mut pats = Vec::new();
            for e in &flags.exclude {
                pats.push(self.expand_in(stage, e)?);
            }
            Some(Arc::new(IgnoreMatcher::parse(&pats.join("\n")).map_err(
                |e| BuildError::Invalid(format!("{keyword} --exclude: {e}")),
            )?))
        };
        let exclude_key = flags.exclude.join("\n");
        let mut srcs_x = Vec::new();
        for s in srcs {
            srcs_x.push(self.expand_in(stage, s)?);
        }
        let dest_x = self.expand_in(stage, dest)?;
        let chown = flags
            .chown
            .as_ref()
            .map(|c| self.expand_in(stage, c))
            .transpose()?;
        let chmod = flags
            .chmod
            .as_ref()
            .map(|c| self.expand_in(stage, c))
            .transpose()?;
        let from = flags
            .from
            .as_ref()
            .map(|f| self.expand_in(stage, f))
            .transpose()?;
        // The source root: the context, or a stage's/image's filesystem.
        let mut from_root: Option<OverlayRoot> = None;
        let src_root = match &from {
            Some(f) => {
                let (img, _) = self.stage_or_image(f)?;
                let layers = match &img {
                    Some(id) => self.images().layer_dirs(id)?,
                    None => Vec::new(),
                };
                let dir = self.next_dir("from");
                let r = blocking(move || OverlayRoot::mount(dir, &layers, false)).await?;
                let p = r.merged();
                from_root = Some(r);
                p
            }
            None => self.ctx_dir.clone(),
        };
        let heredoc_files: Vec<(String, Vec<u8>)> = heredocs
            .iter()
            .map(|h| {
                let content = if h.expand {
                    self.expand_heredoc(stage, &h.content)
                } else {
                    h.content.clone()
                };
                (h.name.clone(), content.into_bytes())
            })
            .collect();
        let mut downloads = Vec::new();
        let checksum = flags
            .checksum
            .as_ref()
            .map(|c| self.expand_in(stage, c))
            .transpose()?;
        if add {
            let urls: Vec<&String> = srcs_x.iter().filter(|s| copy::is_url(s)).collect();
            if checksum.is_some() && (urls.len() != 1 || srcs_x.len() != 1) {
                return Err(BuildError::Invalid(
                    "ADD --checksum needs exactly one source, an http(s) URL".into(),
                ));
            }
            for src in urls {
                let dir = self.next_dir("url");
                let d = download(src, &dir).await?;
                if let Some(want) = &checksum {
                    verify_checksum(&d.2, want)?;
                }
                downloads.push(d);
            }
        }
        let req = CopyRequest {
            exclude,
            downloads,
            add,
            root: src_root,
            from_context: from.is_none(),
            ignore: self.ignore.clone(),
            srcs: srcs_x,
            heredocs: heredoc_files,
            dest: dest_x.clone(),
            workdir: stage.config.working_dir(),
            chown: chown.clone(),
            chmod: chmod.clone(),
        };
        let plan = blocking(move || copy::plan(req)).await?;
        let created_by = format!(
            "/bin/sh -c #(nop) {keyword} {}:{} in {} ",
            plan.kind, &plan.checksum, dest_x
        );
        let key = cache_key(&[
            keyword,
            &plan.checksum,
            &dest_x,
            &plan.dest_abs,
            chown.as_deref().unwrap_or(""),
            chmod.as_deref().unwrap_or(""),
            &stage.config.working_dir(),
            &exclude_key,
        ]);
        if self.try_cache(stage, &key).await? {
            return Ok(());
        }
        let res = self
            .commit_change(stage, "copy", &created_by, key, move |root| {
                copy::apply(&plan, root)
            })
            .await;
        drop(from_root);
        res
    }

    fn expand_heredoc(&self, stage: &Stage, content: &str) -> String {
        // Expand line by line; a line that fails to expand is kept as written.
        content
            .split_inclusive('\n')
            .map(|l| {
                let (body, nl) = match l.strip_suffix('\n') {
                    Some(b) => (b, "\n"),
                    None => (l, ""),
                };
                let x = self
                    .lexer
                    .expand_word(&format!("\"{}\"", body.replace('"', "\\\"")), &|n| {
                        stage.lookup(n)
                    })
                    .unwrap_or_else(|_| body.to_string());
                format!("{x}{nl}")
            })
            .collect()
    }
}

/// `ADD --checksum=sha256:<hex>`: the download must have that digest.
fn verify_checksum(file: &Path, want: &str) -> Result<()> {
    let Some(hex_want) = want.strip_prefix("sha256:") else {
        return Err(BuildError::Invalid(format!(
            "unsupported digest algorithm in --checksum={want} (want sha256:<hex>)"
        )));
    };
    let mut f = std::fs::File::open(file)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    let got = hex::encode(h.finalize());
    if !got.eq_ignore_ascii_case(hex_want) {
        return Err(BuildError::Copy(format!(
            "ADD failed: digest mismatch: expected {want}, got sha256:{got}"
        )));
    }
    Ok(())
}

/// ADD of a URL: the file goes to `dir`, named after the URL's last path segment,
/// mode 0600 and the `Last-Modified` time as mtime, as Docker does.
async fn download(url: &str, dir: &Path) -> Result<(String, String, PathBuf)> {
    let fail = |e: String| BuildError::Copy(format!("ADD failed: downloading {url}: {e}"));
    let parsed = url.split(['?', '#']).next().unwrap_or(url);
    let name = parsed
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty() && !n.contains(':'))
        .unwrap_or("index.html")
        .to_string();
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let mut resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(fail(format!("unexpected status {}", resp.status())));
    }
    let mtime = resp
        .headers()
        .get("last-modified")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
        .map(|t| t.timestamp());
    std::fs::create_dir_all(dir)?;
    let path = dir.join(&name);
    let mut f = tokio::fs::File::create(&path).await?;
    use tokio::io::AsyncWriteExt;
    while let Some(chunk) = resp.chunk().await.map_err(|e| fail(e.to_string()))? {
        f.write_all(&chunk).await?;
    }
    f.flush().await?;
    drop(f);
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    if let Some(t) = mtime {
        let ts = nix::sys::time::TimeSpec::new(t, 0);
        let _ = nix::sys::stat::utimensat(
            None,
            &path,
            &ts,
            &ts,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        );
    }
    Ok((url.to_string(), name, path))
}

/// The shell script of a shell-form RUN with here-documents: the command line followed
/// by each document and its delimiter, which is exactly how a POSIX shell reads them.
/// A RUN that is only `<<EOF` runs the document itself as the script.
fn run_script(command: &str, heredocs: &[dockerfile::Heredoc], is_script: bool) -> String {
    if heredocs.is_empty() {
        return command.to_string();
    }
    if is_script && heredocs.len() == 1 {
        return heredocs[0].content.clone();
    }
    let mut s = command.to_string();
    s.push('\n');
    for h in heredocs {
        s.push_str(&h.content);
        if !h.content.is_empty() && !h.content.ends_with('\n') {
            s.push('\n');
        }
        s.push_str(&h.name);
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_expand_ranges_and_protocols() {
        let w = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(parse_ports(&w(&["80"])).unwrap(), vec!["80/tcp"]);
        assert_eq!(
            parse_ports(&w(&["53/udp", "8000-8002"])).unwrap(),
            vec!["53/udp", "8000/tcp", "8001/tcp", "8002/tcp"]
        );
        assert!(parse_ports(&w(&["abc"])).is_err());
        assert!(parse_ports(&w(&["80/xyz"])).is_err());
        assert!(parse_ports(&w(&["0"])).is_err());
    }

    #[test]
    fn signals() {
        for ok in ["SIGTERM", "TERM", "9", "sigkill", "SIGRTMIN+3"] {
            assert!(valid_signal(ok), "{ok}");
        }
        for bad in ["NOPE", "0", "99", ""] {
            assert!(!valid_signal(bad), "{bad}");
        }
    }

    #[test]
    fn cache_keys_differ_by_part_boundaries() {
        assert_ne!(cache_key(&["ab", "c"]), cache_key(&["a", "bc"]));
        assert_eq!(cache_key(&["x"]), cache_key(&["x"]));
    }

    #[test]
    fn heredoc_scripts() {
        let h = |name: &str, content: &str| dockerfile::Heredoc {
            name: name.into(),
            content: content.into(),
            expand: true,
            chomp_tabs: false,
        };
        assert_eq!(run_script("echo hi", &[], false), "echo hi");
        assert_eq!(
            run_script("<<EOF", &[h("EOF", "echo a\necho b\n")], true),
            "echo a\necho b\n"
        );
        assert_eq!(
            run_script("python3 <<EOF", &[h("EOF", "print(1)\n")], false),
            "python3 <<EOF\nprint(1)\nEOF\n"
        );
    }
}
