//! registry_client: berth's OCI Distribution (Docker Registry HTTP API v2) client.
//!
//! * [`RegistryClient::pull`] fetches an image (Docker schema 2 or OCI manifest, or the
//!   right entry of an index / manifest list) into an [`image_store::ImageStore`]: layers
//!   already stored are skipped, the others streamed (a few at once) to the store's
//!   download directory with their size and digest checked, then validated and
//!   committed; the image is tagged only when complete.
//! * [`RegistryClient::push`] uploads an image's blobs the registry lacks (HEAD check,
//!   cross-repository mount, monolithic or chunked upload) and then its manifest.
//! * [`RegistryClient::login`] checks credentials. Authentication follows the registry's
//!   challenge: none, Basic, or bearer tokens (realm/service/scope; cached until they
//!   expire). Credentials come from the caller (e.g. Docker's `X-Registry-Auth`, see
//!   [`Credentials::from_x_registry_auth`]) or from Docker's `config.json` and credential
//!   helpers ([`lookup_credentials`], [`store_credentials`], [`erase_credentials`]).
//! * TLS via rustls (webpki and system roots, plus an optional CA file); plain HTTP only
//!   for loopback registries and those listed as insecure.
//! * Progress is reported as [`ProgressEvent`]s shaped after Docker's progress stream;
//!   errors ([`RegistryError`]) carry Docker's wording.

mod auth;
mod client;
mod credentials;
mod error;
mod manifest;
mod progress;
mod pull;
mod push;

pub use client::{LoginOutcome, RegistryClient, RegistryConfig};
pub use credentials::{
    credential_key, default_docker_config_dir, erase_credentials, lookup_credentials,
    store_credentials, AuthConfig, Credentials, DOCKER_HUB_AUTH_KEY,
};
pub use error::RegistryError;
pub use manifest::{
    MEDIA_TYPE_DOCKER_CONFIG, MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST_LIST,
    MEDIA_TYPE_OCI_CONFIG, MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST,
};
pub use progress::{short_id, ProgressEvent};
pub use pull::{Progress, PullOutcome};
pub use push::PushOutcome;
