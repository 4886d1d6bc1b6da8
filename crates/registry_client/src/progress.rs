//! Progress events of pulls and pushes, shaped after the lines of Docker's progress
//! stream so the engine can render `{"status":…,"id":…,"progressDetail":…}` messages.

/// The short form of a blob digest Docker shows as a layer ID (12 hex characters).
pub fn short_id(digest: &str) -> String {
    let hex = digest.split_once(':').map(|(_, h)| h).unwrap_or(digest);
    hex.chars().take(12).collect()
}

/// One progress event. `id` fields are [`short_id`]s of blob digests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressEvent {
    /// Pull started: `<tag>: Pulling from <repository path>`.
    PullingFrom {
        /// Tag or digest being pulled (Docker shows it as the message's id).
        tag: String,
        /// Repository path (`library/busybox`).
        repository: String,
    },
    /// A layer will be downloaded: `Pulling fs layer`.
    PullingFsLayer {
        /// Layer id.
        id: String,
    },
    /// Pull: the layer is already in the store: `Already exists`.
    AlreadyExists {
        /// Layer id.
        id: String,
    },
    /// Queued behind other transfers: `Waiting`.
    Waiting {
        /// Layer id.
        id: String,
    },
    /// Download progress: `Downloading`.
    Downloading {
        /// Layer id.
        id: String,
        /// Bytes received.
        current: u64,
        /// Blob size.
        total: u64,
    },
    /// Download finished, checking the digest: `Verifying Checksum`.
    Verifying {
        /// Layer id.
        id: String,
    },
    /// Digest verified: `Download complete`.
    DownloadComplete {
        /// Layer id.
        id: String,
    },
    /// The layer is being validated and stored: `Extracting`.
    Extracting {
        /// Layer id.
        id: String,
    },
    /// The layer is stored: `Pull complete`.
    PullComplete {
        /// Layer id.
        id: String,
    },
    /// Pull: the digest the reference resolved to: `Digest: sha256:…`.
    Digest {
        /// Manifest (or index) digest.
        digest: String,
    },
    /// Pull result: `Status: Downloaded newer image for busybox:latest` /
    /// `Status: Image is up to date for busybox:latest`.
    Status {
        /// The text after `Status: `.
        message: String,
    },
    /// Push started: `The push refers to repository [<name>]`.
    PushingTo {
        /// Full repository name (`docker.io/library/busybox`, `127.0.0.1:5000/a`).
        repository: String,
    },
    /// Push: layer queued: `Preparing`.
    Preparing {
        /// Layer id.
        id: String,
    },
    /// Push: the registry already has the layer: `Layer already exists`.
    LayerAlreadyExists {
        /// Layer id.
        id: String,
    },
    /// Upload progress: `Pushing`.
    Pushing {
        /// Layer id.
        id: String,
        /// Bytes sent.
        current: u64,
        /// Blob size.
        total: u64,
    },
    /// Upload finished: `Pushed`.
    Pushed {
        /// Layer id.
        id: String,
    },
    /// The registry mounted the layer from another repository: `Mounted from <from>`.
    Mounted {
        /// Layer id.
        id: String,
        /// Source repository path.
        from: String,
    },
    /// Push result: `<tag>: digest: sha256:… size: <n>` (Docker also sends it as the
    /// aux message `{"Tag":…,"Digest":…,"Size":…}`).
    PushDigest {
        /// Tag pushed.
        tag: String,
        /// Manifest digest.
        digest: String,
        /// Manifest size in bytes.
        size: u64,
    },
}

impl ProgressEvent {
    /// The message's `id` (a layer id, or the tag for [`ProgressEvent::PullingFrom`]).
    pub fn id(&self) -> Option<&str> {
        use ProgressEvent::*;
        match self {
            PullingFrom { tag, .. } => Some(tag),
            PullingFsLayer { id }
            | AlreadyExists { id }
            | Waiting { id }
            | Downloading { id, .. }
            | Verifying { id }
            | DownloadComplete { id }
            | Extracting { id }
            | PullComplete { id }
            | Preparing { id }
            | LayerAlreadyExists { id }
            | Pushing { id, .. }
            | Pushed { id }
            | Mounted { id, .. } => Some(id),
            Digest { .. } | Status { .. } | PushingTo { .. } | PushDigest { .. } => None,
        }
    }

    /// The message's `status` text, as Docker writes it.
    pub fn status(&self) -> String {
        use ProgressEvent::*;
        match self {
            PullingFrom { repository, .. } => format!("Pulling from {repository}"),
            PullingFsLayer { .. } => "Pulling fs layer".into(),
            AlreadyExists { .. } => "Already exists".into(),
            Waiting { .. } => "Waiting".into(),
            Downloading { .. } => "Downloading".into(),
            Verifying { .. } => "Verifying Checksum".into(),
            DownloadComplete { .. } => "Download complete".into(),
            Extracting { .. } => "Extracting".into(),
            PullComplete { .. } => "Pull complete".into(),
            Digest { digest } => format!("Digest: {digest}"),
            Status { message } => format!("Status: {message}"),
            PushingTo { repository } => {
                format!("The push refers to repository [{repository}]")
            }
            Preparing { .. } => "Preparing".into(),
            LayerAlreadyExists { .. } => "Layer already exists".into(),
            Pushing { .. } => "Pushing".into(),
            Pushed { .. } => "Pushed".into(),
            Mounted { from, .. } => format!("Mounted from {from}"),
            PushDigest { tag, digest, size } => format!("{tag}: digest: {digest} size: {size}"),
        }
    }

    /// `(current, total)` of a transfer (Docker's `progressDetail`).
    pub fn progress(&self) -> Option<(u64, u64)> {
        match self {
            ProgressEvent::Downloading { current, total, .. }
            | ProgressEvent::Pushing { current, total, .. } => Some((*current, *total)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_texts() {
        assert_eq!(short_id("sha256:0123456789abcdef0123"), "0123456789ab");
        assert_eq!(short_id("abc"), "abc");
        let e = ProgressEvent::PullingFrom {
            tag: "latest".into(),
            repository: "library/busybox".into(),
        };
        assert_eq!(e.id(), Some("latest"));
        assert_eq!(e.status(), "Pulling from library/busybox");
        let e = ProgressEvent::Downloading {
            id: "abc".into(),
            current: 1,
            total: 2,
        };
        assert_eq!(e.progress(), Some((1, 2)));
        assert_eq!(
            ProgressEvent::PushDigest {
                tag: "v1".into(),
                digest: "sha256:x".into(),
                size: 527
            }
            .status(),
            "v1: digest: sha256:x size: 527"
        );
        assert_eq!(
            ProgressEvent::Mounted {
                id: "a".into(),
                from: "x/y".into()
            }
            .status(),
            "Mounted from x/y"
        );
        assert_eq!(
            ProgressEvent::Verifying { id: "a".into() }.status(),
            "Verifying Checksum"
        );
    }
}
