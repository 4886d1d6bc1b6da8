//! image_build: builds images from Dockerfiles the way Docker's classic builder does.
//!
//! The context (already unpacked into a directory) and a Dockerfile go in; a stream of
//! [`BuildEvent`]s (`Step 2/4 : RUN ...`, the step's output, `Using cache`, the image
//! ID) comes out, and the image ends up in the engine's image store with its tags.
//!
//! * Every step yields an image whose parent is the image before it (Docker's
//!   intermediate images); the step's cache key (instruction, build args in use,
//!   checksums of COPY/ADD sources) is stored with it, so an unchanged rebuild finds
//!   every step again and does no work ([`image_store::ImageStore::find_child`]).
//! * RUN executes in a container of berth's own engine (same isolation and networking
//!   as `docker run`); its overlay upper directory becomes the layer ([`layer_diff`]).
//! * COPY/ADD/WORKDIR change an overlay of the image directly, no container needed.
//! * Multi-stage builds, `--target`, `COPY --from=<stage|image>`, `.dockerignore`
//!   ([`build_context`]), ONBUILD triggers, build args with Docker's scoping rules.

mod builder;
mod config;
mod copy;
mod error;
mod rootfs;

use std::collections::BTreeMap;

pub use builder::build;
pub use error::{BuildError, Result};

/// What `docker build` asks for (`POST /build` query parameters).
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Path of the Dockerfile inside the context (`Dockerfile` when empty).
    pub dockerfile: String,
    /// References to tag the result with.
    pub tags: Vec<String>,
    /// `--build-arg`: a value, or `None` to take it from the client's environment
    /// (already resolved by the client; `None` then means unset).
    pub build_args: BTreeMap<String, Option<String>>,
    /// `--target`: the stage to stop at.
    pub target: Option<String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--label`: added to the final image.
    pub labels: BTreeMap<String, String>,
    /// `--network` for RUN steps (`default`/`bridge`, `none`, `host`, a network name).
    pub network_mode: Option<String>,
    /// `--quiet`: only the image ID is reported.
    pub quiet: bool,
}

/// One message of the build's output stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// Text for the user (`{"stream": ...}`).
    Stream(String),
    /// The ID of the built image (`{"aux": {"ID": ...}}`).
    Aux(String),
}
