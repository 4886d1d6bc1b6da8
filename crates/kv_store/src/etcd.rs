//! The etcd v3 store: the [`Store`] trait mapped onto etcd's KV and Watch APIs.
//!
//! Every key is stored as `key_prefix + key`. Writes with preconditions are etcd transactions
//! (compare create/mod revision, then put/delete, else get the current value). etcd has no call
//! that tells the compacted revision; [`Store::compacted_revision`] probes it with point-in-time
//! reads (cheap: one read when it has not moved since it was last seen).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions, KvClient, PutOptions,
    Txn, TxnOp, TxnOpResponse, WatchClient, WatchOptions,
};

use crate::{Event, KeyValue, RangeResult, Store, StoreError, WatchStream};

/// Largest response accepted from etcd (a full list of many objects can be large).
const MAX_RESPONSE_BYTES: usize = 1 << 30;

/// A [`Store`] on an etcd v3 cluster.
pub struct EtcdStore {
    kv: KvClient,
    watch: WatchClient,
    prefix: String,
    /// A lower bound of the cluster's compacted revision.
    compacted_hint: AtomicI64,
}

fn map_err(e: etcd_client::Error) -> StoreError {
    use etcd_client::Error as E;
    match e {
        E::GRpcStatus(status) => match status.code() {
            tonic::Code::Unavailable
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Cancelled
            | tonic::Code::Aborted => {
                StoreError::Unavailable(format!("etcd: {}", status.message()))
            }
            // tonic reports broken connections (h2 or transport errors) as Unknown with the
            // underlying error as source; etcd's own Unknown errors have no source.
            tonic::Code::Unknown
                if std::error::Error::source(&status).is_some()
                    || status.message().contains("h2 protocol error")
                    || status.message().contains("transport error") =>
            {
                StoreError::Unavailable(format!("etcd: {}", status.message()))
            }
            tonic::Code::InvalidArgument | tonic::Code::OutOfRange => {
                StoreError::InvalidArgument(format!("etcd: {}", status.message()))
            }
            _ => StoreError::Backend(format!("etcd: {}", status.message())),
        },
        E::TransportError(_) | E::IoError(_) | E::EndpointError(_) | E::WatchError(_) => {
            StoreError::Unavailable(format!("etcd: {e}"))
        }
        E::InvalidArgs(_) | E::InvalidUri(_) => StoreError::InvalidArgument(format!("etcd: {e}")),
        E::Utf8Error(_) => StoreError::Corrupt(format!("etcd: {e}")),
        other => StoreError::Backend(format!("etcd: {other}")),
    }
}

fn status_message(e: &etcd_client::Error) -> Option<&str> {
    match e {
        etcd_client::Error::GRpcStatus(status) => Some(status.message()),
        _ => None,
    }
}

fn is_compacted(e: &etcd_client::Error) -> bool {
    status_message(e).is_some_and(|m| m.contains("required revision has been compacted"))
}

fn is_future(e: &etcd_client::Error) -> bool {
    status_message(e).is_some_and(|m| m.contains("required revision is a future revision"))
}

/// The smallest key after every key starting with `prefix` (etcd's range_end for a prefix);
/// `[0]` (no upper bound) for an empty or all-0xff prefix.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// etcd key range `[start, end)` for the keys with `full_prefix`, strictly after
/// `full_start_after` when given (and not before the prefix).
fn key_range(full_prefix: &[u8], full_start_after: Option<Vec<u8>>) -> (Vec<u8>, Vec<u8>) {
    let end = prefix_end(full_prefix);
    let start = match full_start_after {
        Some(mut after) if after.as_slice() >= full_prefix => {
            after.push(0);
            after
        }
        _ if full_prefix.is_empty() => vec![0],
        _ => full_prefix.to_vec(),
    };
    (start, end)
}

/// Whether `[start, end)` is empty (an `end` of `[0]` means no upper bound).
fn range_is_empty(start: &[u8], end: &[u8]) -> bool {
    end != [0] && start >= end
}

impl EtcdStore {
    /// Connects to etcd at `endpoints` (e.g. `http://127.0.0.1:2379`) and checks that it
    /// answers. All keys are stored under `key_prefix` (e.g. `""` or `"/berth"`).
    pub async fn connect(endpoints: &[String], key_prefix: &str) -> Result<Self, StoreError> {
        if endpoints.is_empty() {
            return Err(StoreError::InvalidArgument(
                "no etcd endpoints given".into(),
            ));
        }
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        let client = Client::connect(endpoints, Some(options))
            .await
            .map_err(map_err)?;
        let store = EtcdStore {
            kv: client
                .kv_client()
                .max_decoding_message_size(MAX_RESPONSE_BYTES),
            watch: client
                .watch_client()
                .max_decoding_message_size(MAX_RESPONSE_BYTES),
            prefix: key_prefix.to_string(),
            compacted_hint: AtomicI64::new(0),
        };
        tokio::time::timeout(Duration::from_secs(10), store.current_revision())
            .await
            .map_err(|_| {
                StoreError::Unavailable(format!("etcd at {} did not answer", endpoints.join(",")))
            })??;
        Ok(store)
    }

    fn full(&self, key: &str) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.prefix.len() + key.len());
        k.extend_from_slice(self.prefix.as_bytes());
        k.extend_from_slice(key.as_bytes());
        k
    }

    /// A key to probe revisions with (any key works; an empty one is not allowed).
    fn probe_key(&self) -> Vec<u8> {
        if self.prefix.is_empty() {
            vec![0]
        } else {
            self.prefix.as_bytes().to_vec()
        }
    }

    fn convert(&self, kv: &etcd_client::KeyValue) -> Result<KeyValue, StoreError> {
        let key = strip_prefix(&self.prefix, kv.key())?;
        Ok(KeyValue {
            key,
            value: kv.value().to_vec(),
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
            version: kv.version(),
        })
    }

    async fn revision_readable(&self, revision: i64) -> Result<bool, StoreError> {
        let options = GetOptions::new().with_revision(revision).with_count_only();
        match self.kv.clone().get(self.probe_key(), Some(options)).await {
            Ok(_) => Ok(true),
            Err(e) if is_compacted(&e) => Ok(false),
            Err(e) => Err(map_err(e)),
        }
    }

    async fn compacted_error(&self, requested: i64) -> StoreError {
        let compacted = match self.compacted_revision().await {
            Ok(c) => c,
            Err(_) => self.compacted_hint.load(Ordering::Relaxed),
        };
        StoreError::Compacted {
            requested,
            compacted,
        }
    }

    async fn future_error(&self, requested: i64) -> StoreError {
        StoreError::FutureRevision {
            requested,
            current: self.current_revision().await.unwrap_or(0),
        }
    }

    /// Runs a guarded write; on failure returns the key's current version (from the else-get).
    async fn guarded(
        &self,
        key: &str,
        compares: Vec<Compare>,
        op: TxnOp,
    ) -> Result<Result<(i64, TxnOpResponse), Option<KeyValue>>, StoreError> {
        let full = self.full(key);
        let txn = Txn::new()
            .when(compares)
            .and_then([op])
            .or_else([TxnOp::get(full, None)]);
        let response = self.kv.clone().txn(txn).await.map_err(map_err)?;
        let revision = response.header().map_or(0, |h| h.revision());
        let first = response.op_responses().into_iter().next();
        if response.succeeded() {
            let first = first.ok_or_else(|| {
                StoreError::Backend("etcd transaction returned no operation result".into())
            })?;
            Ok(Ok((revision, first)))
        } else {
            let current = match first {
                Some(TxnOpResponse::Get(get)) => match get.kvs().first() {
                    Some(kv) => Some(self.convert(kv)?),
                    None => None,
                },
                _ => None,
            };
            Ok(Err(current))
        }
    }
}

fn strip_prefix(prefix: &str, key: &[u8]) -> Result<String, StoreError> {
    let rest = key.strip_prefix(prefix.as_bytes()).ok_or_else(|| {
        StoreError::Corrupt(format!(
            "etcd returned key {:?} outside prefix {prefix:?}",
            String::from_utf8_lossy(key)
        ))
    })?;
    String::from_utf8(rest.to_vec()).map_err(|_| {
        StoreError::Corrupt(format!(
            "etcd key {:?} is not UTF-8",
            String::from_utf8_lossy(key)
        ))
    })
}

#[async_trait::async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let response = self
            .kv
            .clone()
            .get(self.full(key), None)
            .await
            .map_err(map_err)?;
        match response.kvs().first() {
            Some(kv) => Ok(Some(self.convert(kv)?)),
            None => Ok(None),
        }
    }

    async fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
        revision: Option<i64>,
    ) -> Result<RangeResult, StoreError> {
        let full_prefix = self.full(prefix);
        let (start, end) = key_range(&full_prefix, start_after.map(|a| self.full(a)));
        let revision = revision.filter(|r| *r > 0);
        let empty = range_is_empty(&start, &end);
        let mut options = GetOptions::new();
        if let Some(r) = revision {
            options = options.with_revision(r);
        }
        let (key, options) = if empty || limit == Some(0) {
            // Only the revision checks and the count matter.
            let key = if empty { self.probe_key() } else { start };
            let options = if empty {
                options
            } else {
                options.with_range(end)
            };
            (key, options.with_count_only())
        } else {
            let options = options.with_range(end);
            let options = match limit {
                Some(n) => options.with_limit(i64::try_from(n).unwrap_or(i64::MAX)),
                None => options,
            };
            (start, options)
        };
        let response = match self.kv.clone().get(key, Some(options)).await {
            Ok(r) => r,
            Err(e) if is_compacted(&e) => {
                return Err(self.compacted_error(revision.unwrap_or(0)).await)
            }
            Err(e) if is_future(&e) => return Err(self.future_error(revision.unwrap_or(0)).await),
            Err(e) => return Err(map_err(e)),
        };
        if empty {
            return Ok(RangeResult {
                kvs: Vec::new(),
                revision: revision.unwrap_or_else(|| response.header().map_or(0, |h| h.revision())),
                more: false,
                count: 0,
            });
        }
        let kvs = response
            .kvs()
            .iter()
            .map(|kv| self.convert(kv))
            .collect::<Result<Vec<_>, _>>()?;
        let count = response.count();
        Ok(RangeResult {
            more: response.more() || (limit == Some(0) && count > 0),
            count,
            kvs,
            revision: revision.unwrap_or_else(|| response.header().map_or(0, |h| h.revision())),
        })
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue, StoreError> {
        let full = self.full(key);
        let outcome = self
            .guarded(
                key,
                vec![Compare::create_revision(full.clone(), CompareOp::Equal, 0)],
                TxnOp::put(full, value.clone(), None),
            )
            .await?;
        match outcome {
            Ok((revision, _)) => Ok(KeyValue {
                key: key.to_string(),
                value,
                create_revision: revision,
                mod_revision: revision,
                version: 1,
            }),
            Err(_) => Err(StoreError::AlreadyExists {
                key: key.to_string(),
            }),
        }
    }

    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected_mod_revision: i64,
    ) -> Result<KeyValue, StoreError> {
        let full = self.full(key);
        let outcome = self
            .guarded(
                key,
                vec![
                    Compare::version(full.clone(), CompareOp::Greater, 0),
                    Compare::mod_revision(full.clone(), CompareOp::Equal, expected_mod_revision),
                ],
                TxnOp::put(full, value.clone(), Some(PutOptions::new().with_prev_key())),
            )
            .await?;
        match outcome {
            Ok((revision, TxnOpResponse::Put(put))) => {
                let prev = put.prev_key().ok_or_else(|| {
                    StoreError::Backend("etcd put returned no previous version".into())
                })?;
                Ok(KeyValue {
                    key: key.to_string(),
                    value,
                    create_revision: prev.create_revision(),
                    mod_revision: revision,
                    version: prev.version() + 1,
                })
            }
            Ok(_) => Err(StoreError::Backend(
                "etcd transaction returned an unexpected result".into(),
            )),
            Err(None) => Err(StoreError::NotFound {
                key: key.to_string(),
            }),
            Err(current) => Err(StoreError::Conflict {
                key: key.to_string(),
                current,
            }),
        }
    }

    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<i64>,
    ) -> Result<(i64, KeyValue), StoreError> {
        let full = self.full(key);
        let mut compares = vec![Compare::version(full.clone(), CompareOp::Greater, 0)];
        if let Some(expected) = expected_mod_revision {
            compares.push(Compare::mod_revision(
                full.clone(),
                CompareOp::Equal,
                expected,
            ));
        }
        let outcome = self
            .guarded(
                key,
                compares,
                TxnOp::delete(full, Some(DeleteOptions::new().with_prev_key())),
            )
            .await?;
        match outcome {
            Ok((revision, TxnOpResponse::Delete(delete))) => {
                let prev = delete.prev_kvs().first().ok_or_else(|| {
                    StoreError::Backend("etcd delete returned no previous version".into())
                })?;
                Ok((revision, self.convert(prev)?))
            }
            Ok(_) => Err(StoreError::Backend(
                "etcd transaction returned an unexpected result".into(),
            )),
            Err(None) => Err(StoreError::NotFound {
                key: key.to_string(),
            }),
            Err(current) => Err(StoreError::Conflict {
                key: key.to_string(),
                current,
            }),
        }
    }

    async fn watch(&self, prefix: &str, from_revision: i64) -> Result<WatchStream, StoreError> {
        if from_revision > 0 {
            let compacted = self.compacted_revision().await?;
            if from_revision < compacted {
                return Err(StoreError::Compacted {
                    requested: from_revision,
                    compacted,
                });
            }
        }
        let (start, end) = key_range(&self.full(prefix), None);
        let mut options = WatchOptions::new().with_range(end).with_prev_key();
        if from_revision > 0 {
            options = options.with_start_revision(from_revision);
        }
        let mut stream = self
            .watch
            .clone()
            .watch(start, Some(options))
            .await
            .map_err(map_err)?;
        // Wait until etcd has registered the watcher, so that "from now" (0) includes every
        // write made after this call returns.
        let mut pending = VecDeque::new();
        let mut state = EtcdWatchState {
            stream: None,
            prefix: self.prefix.clone(),
            next: from_revision.max(0),
            buffer: VecDeque::new(),
            finished: false,
        };
        loop {
            let message =
                stream.message().await.map_err(map_err)?.ok_or_else(|| {
                    StoreError::Unavailable("etcd closed the watch stream".into())
                })?;
            let created = message.created();
            state.absorb(&message);
            pending.append(&mut state.buffer);
            if state.finished {
                if let Some(Err(e)) = pending.pop_front() {
                    return Err(e);
                }
                return Err(StoreError::Unavailable("etcd canceled the watch".into()));
            }
            if created {
                break;
            }
        }
        state.buffer = pending;
        state.stream = Some(stream);
        Ok(Box::pin(futures_util::stream::unfold(
            state,
            |mut state| async move {
                let item = state.next_item().await?;
                Some((item, state))
            },
        )))
    }

    async fn current_revision(&self) -> Result<i64, StoreError> {
        let response = self
            .kv
            .clone()
            .get(self.probe_key(), Some(GetOptions::new().with_count_only()))
            .await
            .map_err(map_err)?;
        response
            .header()
            .map(|h| h.revision())
            .ok_or_else(|| StoreError::Backend("etcd response without header".into()))
    }

    async fn compact(&self, revision: i64) -> Result<(), StoreError> {
        match self.kv.clone().compact(revision, None).await {
            Ok(_) => {
                self.compacted_hint.fetch_max(revision, Ordering::Relaxed);
                Ok(())
            }
            Err(e) if is_compacted(&e) => Err(self.compacted_error(revision).await),
            Err(e) if is_future(&e) => Err(self.future_error(revision).await),
            Err(e) => Err(map_err(e)),
        }
    }

    async fn compacted_revision(&self) -> Result<i64, StoreError> {
        let hint = self.compacted_hint.load(Ordering::Relaxed);
        let low = hint.max(1);
        if self.revision_readable(low).await? {
            return Ok(hint);
        }
        // `low` is compacted: find the smallest readable revision in (low, current].
        let mut bad = low;
        let mut good = self.current_revision().await?;
        while good - bad > 1 {
            let mid = bad + (good - bad) / 2;
            if self.revision_readable(mid).await? {
                good = mid;
            } else {
                bad = mid;
            }
        }
        self.compacted_hint.fetch_max(good, Ordering::Relaxed);
        Ok(good)
    }
}

struct EtcdWatchState {
    stream: Option<etcd_client::WatchStream>,
    prefix: String,
    /// The revision after the last event delivered (for error reports).
    next: i64,
    buffer: VecDeque<Result<Event, StoreError>>,
    finished: bool,
}

impl EtcdWatchState {
    /// Queues the events (or the terminal error) of one watch response.
    fn absorb(&mut self, message: &etcd_client::WatchResponse) {
        for event in message.events() {
            match self.convert_event(event) {
                Ok(event) => {
                    self.next = event.revision() + 1;
                    self.buffer.push_back(Ok(event));
                }
                Err(e) => {
                    self.buffer.push_back(Err(e));
                    self.finished = true;
                    return;
                }
            }
        }
        if message.compact_revision() > 0 {
            self.buffer.push_back(Err(StoreError::Compacted {
                requested: self.next,
                compacted: message.compact_revision(),
            }));
            self.finished = true;
        } else if message.canceled() {
            self.buffer.push_back(Err(StoreError::Unavailable(format!(
                "etcd canceled the watch: {}",
                message.cancel_reason()
            ))));
            self.finished = true;
        }
    }

    fn convert_kv(&self, kv: &etcd_client::KeyValue) -> Result<KeyValue, StoreError> {
        Ok(KeyValue {
            key: strip_prefix(&self.prefix, kv.key())?,
            value: kv.value().to_vec(),
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
            version: kv.version(),
        })
    }

    fn convert_event(&self, event: &etcd_client::Event) -> Result<Event, StoreError> {
        let kv = event
            .kv()
            .ok_or_else(|| StoreError::Backend("etcd watch event without key".into()))?;
        let prev = event.prev_kv().map(|p| self.convert_kv(p)).transpose()?;
        // A deletion's kv is a tombstone with version 0; a put's version is at least 1.
        // (Reading the type this way avoids etcd-client's panic on unknown event types.)
        if kv.version() == 0 {
            let key = strip_prefix(&self.prefix, kv.key())?;
            let prev = prev.unwrap_or_else(|| {
                tracing::warn!(key = %key, "etcd delete event without previous version");
                KeyValue {
                    key: key.clone(),
                    value: Vec::new(),
                    create_revision: 0,
                    mod_revision: 0,
                    version: 0,
                }
            });
            Ok(Event::Delete {
                key,
                revision: kv.mod_revision(),
                prev,
            })
        } else {
            Ok(Event::Put {
                kv: self.convert_kv(kv)?,
                prev,
            })
        }
    }

    async fn next_item(&mut self) -> Option<Result<Event, StoreError>> {
        loop {
            if let Some(item) = self.buffer.pop_front() {
                return Some(item);
            }
            if self.finished {
                return None;
            }
            let stream = self.stream.as_mut()?;
            match stream.message().await {
                Ok(Some(message)) => self.absorb(&message),
                Ok(None) => {
                    self.finished = true;
                    return Some(Err(StoreError::Unavailable(
                        "etcd closed the watch stream".into(),
                    )));
                }
                Err(e) => {
                    self.finished = true;
                    return Some(Err(map_err(e)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_last_byte() {
        assert_eq!(prefix_end(b"/registry/pods/"), b"/registry/pods0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b""), vec![0]);
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
    }

    #[test]
    fn key_range_respects_start_after() {
        assert_eq!(key_range(b"/p/", None), (b"/p/".to_vec(), b"/p0".to_vec()));
        assert_eq!(
            key_range(b"/p/", Some(b"/p/b".to_vec())),
            (b"/p/b\0".to_vec(), b"/p0".to_vec())
        );
        // A start_after before the prefix is ignored.
        assert_eq!(
            key_range(b"/p/", Some(b"/a".to_vec())),
            (b"/p/".to_vec(), b"/p0".to_vec())
        );
        assert_eq!(key_range(b"", None), (vec![0], vec![0]));
        assert!(range_is_empty(b"/q\0", b"/p0"));
        assert!(!range_is_empty(b"/q\0", &[0]));
    }

    #[test]
    fn strip_prefix_rejects_foreign_keys() {
        assert_eq!(strip_prefix("/berth", b"/berth/a").unwrap(), "/a");
        assert!(matches!(
            strip_prefix("/berth", b"/other"),
            Err(StoreError::Corrupt(_))
        ));
    }
}
