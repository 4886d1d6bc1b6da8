//! Error type of the registry client. `Display` texts follow Docker's wording where Docker
//! has one, so the engine can pass them through unchanged.

use std::io;

use image_store::ImageError;

/// Errors of registry operations.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The reference cannot be used for this operation (e.g. pushing a digest).
    #[error("{0}")]
    InvalidReference(String),
    /// The tag or digest does not exist in the repository.
    /// Display: `manifest for <ref> not found: manifest unknown: <registry message>`.
    #[error("manifest for {reference} not found: manifest unknown: {message}")]
    ManifestUnknown {
        /// Familiar reference (`127.0.0.1:5000/a:v1`).
        reference: String,
        /// The registry's message.
        message: String,
    },
    /// Anonymous pull refused: the repository is unknown or needs credentials.
    #[error(
        "pull access denied for {repository}, repository does not exist or may require 'docker login': {message}"
    )]
    PullAccessDenied {
        /// Familiar repository name.
        repository: String,
        /// The registry's message, e.g. `denied: requested access to the resource is denied`.
        message: String,
    },
    /// The registry refused the credentials (HTTP 401), e.g.
    /// `unauthorized: authentication required`.
    #[error("{message}")]
    Unauthorized {
        /// Registry host.
        registry: String,
        /// The registry's message, `<code>: <text>`.
        message: String,
    },
    /// The credentials lack the permission (HTTP 403), e.g.
    /// `denied: requested access to the resource is denied`.
    #[error("{message}")]
    Denied {
        /// Registry host.
        registry: String,
        /// The registry's message, `<code>: <text>`.
        message: String,
    },
    /// The registry asks for basic auth and no credentials are known.
    #[error("no basic auth credentials")]
    NoBasicAuthCredentials,
    /// `login` failed. Display as Docker's:
    /// `login attempt to <url> failed with status: 401 Unauthorized`.
    #[error("login attempt to {url} failed with status: {status}")]
    LoginFailed {
        /// URL that was tried.
        url: String,
        /// HTTP status line (`401 Unauthorized`).
        status: String,
    },
    /// Downloaded (or stored) content does not match its digest.
    #[error("filesystem layer verification failed for digest {expected}: got {actual}")]
    DigestMismatch {
        /// The digest from the manifest.
        expected: String,
        /// The digest of the bytes received.
        actual: String,
    },
    /// A blob ended before (or ran past) the size its descriptor announces.
    #[error("blob {digest} is truncated or corrupt: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// Blob digest.
        digest: String,
        /// Size announced by the manifest.
        expected: u64,
        /// Bytes received.
        actual: u64,
    },
    /// A manifest, config or layer media type this client does not handle.
    #[error("unsupported media type {0}")]
    UnsupportedMediaType(String),
    /// No manifest of an index matches the platform.
    #[error("no matching manifest for {platform} in the manifest list entries")]
    NoMatchingPlatform {
        /// `os/arch[/variant]`.
        platform: String,
    },
    /// The image's config names another platform than the one requested.
    #[error(
        "image with reference {reference} was found but does not match the specified platform: wanted {wanted}, actual: {actual}"
    )]
    PlatformMismatch {
        /// Familiar reference.
        reference: String,
        /// Requested platform.
        wanted: String,
        /// The image's platform.
        actual: String,
    },
    /// The image to push is not in the store.
    #[error("An image does not exist locally with the tag: {0}")]
    NoSuchLocalImage(String),
    /// The registry cannot be reached (connection refused, DNS failure, TLS handshake,
    /// connect timeout). Display: `Get "<url>": <cause>`.
    #[error("{method} \"{url}\": {message}")]
    Unreachable {
        /// HTTP method (`Get`, `Put`, ...), capitalised as Go prints it.
        method: String,
        /// URL that was tried.
        url: String,
        /// What failed.
        message: String,
    },
    /// A connection broke or timed out during a transfer.
    #[error("{method} \"{url}\": {message}")]
    Transport {
        /// HTTP method.
        method: String,
        /// URL.
        url: String,
        /// What failed.
        message: String,
    },
    /// Any other unexpected registry answer.
    #[error("{message}")]
    Registry {
        /// HTTP status.
        status: u16,
        /// `<code>: <text>` from the registry's error body, or a description.
        message: String,
    },
    /// The registry answered something this client cannot understand.
    #[error("{0}")]
    Protocol(String),
    /// Credentials could not be read, decoded or stored.
    #[error("credentials: {0}")]
    Credentials(String),
    /// Building the HTTP client failed (bad CA file, ...).
    #[error("registry client configuration: {0}")]
    Config(String),
    /// The image store refused or failed.
    #[error(transparent)]
    Store(#[from] ImageError),
    /// Local I/O failure.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl RegistryError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        RegistryError::Io {
            context: context.into(),
            source,
        }
    }

    /// The HTTP status Docker's API answers with for this error: 404 for unknown
    /// manifests/repositories and missing local images, 401 for authentication failures,
    /// 403 for denials, 400 for bad references/platforms, 500 otherwise.
    pub fn http_status(&self) -> u16 {
        match self {
            RegistryError::ManifestUnknown { .. }
            | RegistryError::PullAccessDenied { .. }
            | RegistryError::NoSuchLocalImage(_)
            | RegistryError::NoMatchingPlatform { .. } => 404,
            RegistryError::Unauthorized { .. }
            | RegistryError::NoBasicAuthCredentials
            | RegistryError::LoginFailed { .. } => 401,
            RegistryError::Denied { .. } => 403,
            RegistryError::InvalidReference(_) | RegistryError::PlatformMismatch { .. } => 400,
            _ => 500,
        }
    }

    /// True for authentication/permission failures.
    pub fn is_auth_error(&self) -> bool {
        matches!(
            self,
            RegistryError::Unauthorized { .. }
                | RegistryError::Denied { .. }
                | RegistryError::NoBasicAuthCredentials
                | RegistryError::LoginFailed { .. }
                | RegistryError::PullAccessDenied { .. }
        )
    }
}

/// One entry of a registry's error body (`{"errors":[{"code":…,"message":…}]}`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub(crate) struct ErrorEntry {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, serde::Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
    /// Some token servers answer `{"details": "..."}`.
    #[serde(default)]
    details: Option<String>,
}

/// Parses a registry error body. Returns the entries (maybe empty).
pub(crate) fn parse_error_body(body: &[u8]) -> Vec<ErrorEntry> {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) if !b.errors.is_empty() => b.errors,
        Ok(b) => b
            .details
            .map(|d| {
                vec![ErrorEntry {
                    code: String::new(),
                    message: d,
                }]
            })
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// Docker's rendering of error entries: `manifest unknown: manifest unknown`
/// (code lower-cased with spaces, then the message), joined by `; `.
pub(crate) fn render_entries(entries: &[ErrorEntry]) -> Option<String> {
    if entries.is_empty() {
        return None;
    }
    let parts: Vec<String> = entries
        .iter()
        .map(|e| {
            let code = e.code.to_lowercase().replace('_', " ");
            match (code.is_empty(), e.message.is_empty()) {
                (true, _) => e.message.clone(),
                (false, true) => code,
                (false, false) => format!("{code}: {}", e.message),
            }
        })
        .collect();
    Some(parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_registry_errors_like_docker() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#;
        let e = parse_error_body(body);
        assert_eq!(e.len(), 1);
        assert_eq!(
            render_entries(&e).unwrap(),
            "manifest unknown: manifest unknown"
        );
        let body = br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"},{"code":"DENIED","message":"no"}]}"#;
        assert_eq!(
            render_entries(&parse_error_body(body)).unwrap(),
            "unauthorized: authentication required; denied: no"
        );
        assert!(parse_error_body(b"<html>").is_empty());
        assert!(render_entries(&[]).is_none());
        assert_eq!(
            render_entries(&parse_error_body(
                br#"{"details":"incorrect username or password"}"#
            ))
            .unwrap(),
            "incorrect username or password"
        );
    }

    #[test]
    fn statuses() {
        let e = RegistryError::ManifestUnknown {
            reference: "a:b".into(),
            message: "manifest unknown".into(),
        };
        assert_eq!(e.http_status(), 404);
        assert_eq!(
            e.to_string(),
            "manifest for a:b not found: manifest unknown: manifest unknown"
        );
        assert_eq!(RegistryError::NoBasicAuthCredentials.http_status(), 401);
        assert!(RegistryError::NoBasicAuthCredentials.is_auth_error());
    }
}
