//! kv_store: the storage layer of berth's Kubernetes API server.
//!
//! The API server keeps Kubernetes objects (JSON) under keys such as
//! `/registry/pods/default/web-1`. This crate offers one [`Store`] trait with etcd's data model
//! (a single global revision counter bumped by every write, per-key create/mod revisions and
//! versions, point-in-time ranges, watches that replay history, compaction) and two
//! implementations:
//!
//! * [`EmbeddedStore`]: the default for a single machine. MVCC tables inside one `redb` file,
//!   in the spirit of k3s's kine. Every acknowledged write is fsynced; one writer thread commits
//!   all queued writes in one transaction (group commit).
//! * [`EtcdStore`]: an etcd v3 cluster, for several machines.
//!
//! [`open`] picks one from a configuration value.

mod embedded;
mod etcd;

use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

pub use embedded::{EmbeddedOptions, EmbeddedStats, EmbeddedStore};
pub use etcd::EtcdStore;

/// A store revision (etcd's `revision`): a global counter bumped by one for every write.
pub type Revision = i64;

/// One version of one key.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    /// Revision of the write that (re)created the key.
    pub create_revision: i64,
    /// Revision of the write that produced this version.
    pub mod_revision: i64,
    /// Number of writes since the key was (re)created (1 right after creation).
    pub version: i64,
}

/// A change to one key, as delivered by [`Store::watch`].
#[derive(Clone, Debug)]
pub enum Event {
    /// The key was created or updated; `kv.mod_revision` is the event revision. `prev` is the
    /// version it replaced (`None` on creation).
    Put {
        kv: KeyValue,
        prev: Option<KeyValue>,
    },
    /// The key was deleted at `revision`; `prev` is the last version before the deletion.
    Delete {
        key: String,
        revision: i64,
        prev: KeyValue,
    },
}

impl Event {
    /// Revision of the write that caused this event.
    pub fn revision(&self) -> i64 {
        match self {
            Event::Put { kv, .. } => kv.mod_revision,
            Event::Delete { revision, .. } => *revision,
        }
    }

    /// The key this event is about.
    pub fn key(&self) -> &str {
        match self {
            Event::Put { kv, .. } => &kv.key,
            Event::Delete { key, .. } => key,
        }
    }
}

/// Result of [`Store::range`].
#[derive(Clone, Debug, PartialEq)]
pub struct RangeResult {
    /// Matching keys in key order, at most `limit` of them.
    pub kvs: Vec<KeyValue>,
    /// The store revision the read was served at (the requested one, or the latest).
    pub revision: i64,
    /// True when more keys match than were returned (the limit cut the result).
    pub more: bool,
    /// Number of keys the query matched at that revision, ignoring `limit` (like etcd's count:
    /// keys with the prefix, strictly after `start_after` when given).
    pub count: i64,
}

/// Errors of the store.
#[derive(thiserror::Error, Debug)]
pub enum StoreError {
    #[error("key {key} already exists")]
    AlreadyExists { key: String },
    #[error("key {key} not found")]
    NotFound { key: String },
    #[error("precondition failed for key {key}: it was modified since the expected revision")]
    Conflict {
        key: String,
        /// The key's current version (None if it no longer exists).
        current: Option<KeyValue>,
    },
    #[error("revision {requested} has been compacted (compacted revision is {compacted})")]
    Compacted { requested: i64, compacted: i64 },
    #[error("revision {requested} is in the future (current revision is {current})")]
    FutureRevision { requested: i64, current: i64 },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store data is corrupt: {0}")]
    Corrupt(String),
    #[error("storage backend error: {0}")]
    Backend(String),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// A stream of watch events; it ends after yielding an error.
pub type WatchStream = Pin<Box<dyn futures_util::Stream<Item = Result<Event, StoreError>> + Send>>;

/// A key-value store with etcd's model.
///
/// Revisions are global: every successful create/update/delete bumps the store revision by one
/// and stamps the key with it.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// The latest version of `key`, if it exists.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;

    /// Keys starting with `prefix`, in key order, strictly after `start_after` if given, at most
    /// `limit` (None = all), as of `revision` (None = latest; a compacted revision gives
    /// Compacted, a future one FutureRevision).
    async fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
        revision: Option<i64>,
    ) -> Result<RangeResult, StoreError>;

    /// Creates `key`; AlreadyExists if it is present.
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue, StoreError>;

    /// Replaces `key` if its mod_revision is `expected_mod_revision`; NotFound if absent,
    /// Conflict (carrying the current version) otherwise.
    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected_mod_revision: i64,
    ) -> Result<KeyValue, StoreError>;

    /// Deletes `key` (if its mod_revision is `expected_mod_revision`, when given). Returns the
    /// delete revision and the deleted version. NotFound if absent, Conflict on a mismatch.
    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<i64>,
    ) -> Result<(i64, KeyValue), StoreError>;

    /// Every event on keys with `prefix` whose revision >= `from_revision` (0 = only future
    /// events), in revision order, then live events, without gaps or duplicates. Compacted if
    /// `from_revision` > 0 is below the compacted revision (etcd's rule: history from the
    /// compacted revision on is kept).
    async fn watch(&self, prefix: &str, from_revision: i64) -> Result<WatchStream, StoreError>;

    /// The latest store revision.
    async fn current_revision(&self) -> Result<i64, StoreError>;

    /// Drops history older than `revision` (keeping each key's latest version); reads and
    /// watches below it then give Compacted. Like etcd: Compacted if `revision` is not above the
    /// current compacted revision, FutureRevision if it is above the current revision.
    async fn compact(&self, revision: i64) -> Result<(), StoreError>;

    /// The revision of the latest compaction (0 if none): reads below it give Compacted.
    async fn compacted_revision(&self) -> Result<i64, StoreError>;
}

/// How often [`open`] compacts (Kubernetes' default compaction interval).
pub const DEFAULT_COMPACTION_INTERVAL: Duration = Duration::from_secs(300);
/// How many revisions [`open`]'s compaction always keeps, at least.
pub const DEFAULT_KEEP_REVISIONS: i64 = 1000;

/// Opens the configured store: `None` gives an [`EmbeddedStore`] in `data_dir/store.redb`
/// (the directory is created if needed); `Some("http://127.0.0.1:2379[,http://...]")` gives an
/// [`EtcdStore`] on those endpoints, with keys stored unprefixed like kube-apiserver does.
///
/// Both come with background compaction ([`spawn_auto_compaction`] with
/// [`DEFAULT_COMPACTION_INTERVAL`] and [`DEFAULT_KEEP_REVISIONS`]), which stops when the store is
/// dropped. Must be called inside a tokio runtime.
pub async fn open(endpoint: Option<&str>, data_dir: &Path) -> Result<Arc<dyn Store>, StoreError> {
    open_with_compaction(
        endpoint,
        data_dir,
        DEFAULT_COMPACTION_INTERVAL,
        DEFAULT_KEEP_REVISIONS,
    )
    .await
}

/// [`open`] with a chosen compaction interval and number of revisions always kept.
pub async fn open_with_compaction(
    endpoint: Option<&str>,
    data_dir: &Path,
    compaction_interval: Duration,
    keep_revisions: i64,
) -> Result<Arc<dyn Store>, StoreError> {
    match endpoint.map(str::trim).filter(|e| !e.is_empty()) {
        None => {
            let dir = data_dir.to_path_buf();
            let store = tokio::task::spawn_blocking(move || {
                std::fs::create_dir_all(&dir)?;
                EmbeddedStore::open(&dir.join("store.redb"))
            })
            .await
            .map_err(|e| StoreError::Backend(format!("open task failed: {e}")))??;
            let store: Arc<dyn Store> = Arc::new(store);
            spawn_auto_compaction(Arc::downgrade(&store), compaction_interval, keep_revisions);
            Ok(store)
        }
        Some(endpoints) => {
            let endpoints: Vec<String> = endpoints
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_string)
                .collect();
            let store: Arc<dyn Store> = Arc::new(EtcdStore::connect(&endpoints, "").await?);
            spawn_auto_compaction(Arc::downgrade(&store), compaction_interval, keep_revisions);
            Ok(store)
        }
    }
}

/// Compacts `store` every `interval`, like kube-apiserver's compactor: each tick compacts to
/// the revision seen at the previous tick (so at least one interval of history is kept), and
/// never closer than `keep_revisions` to the current revision. The task ends when the store is
/// dropped. Must be called inside a tokio runtime.
pub fn spawn_auto_compaction<S: Store + ?Sized>(
    store: Weak<S>,
    interval: Duration,
    keep_revisions: i64,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut previous_tick: Option<i64> = None;
        loop {
            tokio::time::sleep(interval).await;
            let Some(store) = store.upgrade() else {
                return;
            };
            let current = match store.current_revision().await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "auto compaction: cannot read current revision");
                    continue;
                }
            };
            if let Some(target) = compaction_target(previous_tick, current, keep_revisions) {
                let compacted = store.compacted_revision().await.unwrap_or(0);
                if target > compacted {
                    match store.compact(target).await {
                        Ok(()) => tracing::debug!(revision = target, "auto compaction done"),
                        // Another API server compacted first.
                        Err(StoreError::Compacted { .. }) => {}
                        Err(e) => tracing::warn!(error = %e, "auto compaction failed"),
                    }
                }
            }
            previous_tick = Some(current);
        }
    })
}

/// The revision an auto-compaction tick compacts to, if any.
fn compaction_target(previous_tick: Option<i64>, current: i64, keep_revisions: i64) -> Option<i64> {
    let target = previous_tick?.min(current.saturating_sub(keep_revisions.max(0)));
    (target > 0).then_some(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compaction_target_keeps_one_interval_and_keep_revisions() {
        assert_eq!(compaction_target(None, 5000, 100), None);
        assert_eq!(compaction_target(Some(4000), 5000, 100), Some(4000));
        assert_eq!(compaction_target(Some(4990), 5000, 100), Some(4900));
        assert_eq!(compaction_target(Some(50), 60, 100), None);
        assert_eq!(compaction_target(Some(50), 60, -5), Some(50));
    }

    #[test]
    fn event_accessors() {
        let kv = KeyValue {
            key: "/a".into(),
            value: b"x".to_vec(),
            create_revision: 3,
            mod_revision: 7,
            version: 2,
        };
        let put = Event::Put {
            kv: kv.clone(),
            prev: None,
        };
        assert_eq!(put.revision(), 7);
        assert_eq!(put.key(), "/a");
        let del = Event::Delete {
            key: "/a".into(),
            revision: 9,
            prev: kv,
        };
        assert_eq!(del.revision(), 9);
        assert_eq!(del.key(), "/a");
    }
}
