//! The embedded store: etcd's MVCC model on `redb` tables, in one file.
//!
//! Tables:
//! * `log`: revision -> encoded record (key, value or tombstone, create revision, version and
//!   the revision of the key's previous live version). One row per write; replayed by watches.
//! * `history`: (key, revision) -> kind (put/delete), to find a key's version as of a revision.
//! * `index`: key -> revision of its latest version, for live keys only (latest reads).
//! * `meta`: format, current revision, compacted revision, compaction progress.
//!
//! All writes go through one writer thread that drains every queued request into one redb write
//! transaction (checking each request's precondition in order inside it), commits it with
//! `Durability::Immediate` (one fsync for the whole batch), then answers the requests and
//! broadcasts the events to live watches. Reads run in redb read transactions on tokio's
//! blocking pool.

use std::collections::{HashSet, VecDeque};
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, Table, TableDefinition};
use tokio::sync::{broadcast, oneshot};

use crate::{Event, KeyValue, RangeResult, Store, StoreError, WatchStream};

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const HISTORY: TableDefinition<(&str, u64), u8> = TableDefinition::new("history");
const INDEX: TableDefinition<&str, u64> = TableDefinition::new("index");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

const META_FORMAT: &str = "format";
const META_REVISION: &str = "revision";
const META_COMPACTED: &str = "compacted";
/// Log rows below this revision have been compacted physically.
const META_COMPACT_SCAN: &str = "compact_scan";
const FORMAT_VERSION: u64 = 1;

const KIND_DELETE: u8 = 0;
const KIND_PUT: u8 = 1;
const RECORD_MAGIC: u8 = 1;
const RECORD_HEADER: usize = 2 + 8 * 3 + 4;

/// Most write requests committed in one transaction.
const MAX_BATCH: usize = 1024;
/// Log rows examined per compaction transaction (writes are served between them).
const COMPACTION_CHUNK: u64 = 2048;
/// Log rows read per watch replay step.
const REPLAY_CHUNK: i64 = 256;

/// Tuning of an [`EmbeddedStore`].
#[derive(Clone, Debug)]
pub struct EmbeddedOptions {
    /// redb's page cache, in bytes. The process's resident memory grows by up to about twice
    /// this (read cache plus write buffers) however large the store gets. Default 32 MiB.
    pub cache_size: usize,
    /// How many committed events a live watch may fall behind before it fails with
    /// `Unavailable("watch fell behind ...")`.
    pub watch_buffer: usize,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            cache_size: 32 << 20,
            watch_buffer: 8192,
        }
    }
}

/// Counters of an [`EmbeddedStore`]'s writer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EmbeddedStats {
    /// redb write transactions committed for writes (each one fsync).
    pub commits: u64,
    /// Successful writes (create/update/delete).
    pub writes: u64,
}

/// The embedded, durable store (see the module docs). Dropping it stops its writer thread and
/// closes the file once in-flight reads are done; live watches then end with `Unavailable`.
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<Database>,
    tx: Option<mpsc::Sender<Cmd>>,
    events: broadcast::Sender<Arc<Event>>,
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

struct Shared {
    current: AtomicI64,
    commits: AtomicU64,
    writes: AtomicU64,
}

enum WriteOp {
    Create {
        key: String,
        value: Vec<u8>,
    },
    Update {
        key: String,
        value: Vec<u8>,
        expected: i64,
    },
    Delete {
        key: String,
        expected: Option<i64>,
    },
}

enum WriteOutcome {
    Put(KeyValue),
    Deleted(i64, KeyValue),
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Cmd {
    Write {
        op: WriteOp,
        reply: Reply<WriteOutcome>,
    },
    Compact {
        revision: i64,
        reply: Reply<()>,
    },
}

fn closed() -> StoreError {
    StoreError::Unavailable("store is closed".into())
}

fn rev_u64(rev: i64) -> u64 {
    u64::try_from(rev).unwrap_or(0)
}

fn rev_i64(rev: u64) -> i64 {
    i64::try_from(rev).unwrap_or(i64::MAX)
}

impl From<redb::Error> for StoreError {
    fn from(e: redb::Error) -> Self {
        match e {
            redb::Error::Corrupted(m) => StoreError::Corrupt(m),
            redb::Error::Io(io) => StoreError::Io(io),
            redb::Error::DatabaseAlreadyOpen => {
                StoreError::Unavailable("the store file is already open".into())
            }
            other => StoreError::Backend(other.to_string()),
        }
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::from(redb::Error::from(e))
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// A borrowed view of an encoded log row.
struct RecordRef<'a> {
    kind: u8,
    create_revision: i64,
    version: i64,
    prev_revision: i64,
    key: &'a str,
    value: &'a [u8],
}

/// One row of the log table.
#[derive(Debug, PartialEq)]
struct Record {
    kind: u8,
    key: String,
    value: Vec<u8>,
    create_revision: i64,
    version: i64,
    /// Revision of the key's previous live version (0 if the write (re)created the key).
    prev_revision: i64,
}

impl Record {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(RECORD_HEADER + self.key.len() + self.value.len());
        out.push(RECORD_MAGIC);
        out.push(self.kind);
        out.extend_from_slice(&self.create_revision.to_le_bytes());
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.prev_revision.to_le_bytes());
        let key_len = u32::try_from(self.key.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&key_len.to_le_bytes());
        out.extend_from_slice(self.key.as_bytes());
        out.extend_from_slice(&self.value);
        out
    }

    /// Splits an encoded record into its fixed fields, key and value bytes.
    fn parse(rev: u64, bytes: &[u8]) -> Result<RecordRef<'_>, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("log record {rev}: {what}"));
        if bytes.len() < RECORD_HEADER || bytes[0] != RECORD_MAGIC {
            return Err(corrupt("bad header"));
        }
        let kind = bytes[1];
        if kind != KIND_PUT && kind != KIND_DELETE {
            return Err(corrupt("bad kind"));
        }
        let int = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            i64::from_le_bytes(b)
        };
        let mut len = [0u8; 4];
        len.copy_from_slice(&bytes[26..30]);
        let key_len = u32::from_le_bytes(len) as usize;
        let key_end = RECORD_HEADER
            .checked_add(key_len)
            .filter(|end| *end <= bytes.len())
            .ok_or_else(|| corrupt("key length out of bounds"))?;
        let key = std::str::from_utf8(&bytes[RECORD_HEADER..key_end])
            .map_err(|_| corrupt("key is not UTF-8"))?;
        Ok(RecordRef {
            kind,
            create_revision: int(2),
            version: int(10),
            prev_revision: int(18),
            key,
            value: &bytes[key_end..],
        })
    }

    fn decode(rev: u64, bytes: &[u8]) -> Result<Record, StoreError> {
        let r = Record::parse(rev, bytes)?;
        Ok(Record {
            kind: r.kind,
            key: r.key.to_string(),
            value: r.value.to_vec(),
            create_revision: r.create_revision,
            version: r.version,
            prev_revision: r.prev_revision,
        })
    }

    fn into_kv(self, rev: u64) -> KeyValue {
        KeyValue {
            key: self.key,
            value: self.value,
            create_revision: self.create_revision,
            mod_revision: rev_i64(rev),
            version: self.version,
        }
    }
}

fn load_record<T>(log: &T, rev: u64) -> Result<Option<Record>, StoreError>
where
    T: ReadableTable<u64, &'static [u8]>,
{
    match log.get(rev)? {
        Some(guard) => Ok(Some(Record::decode(rev, guard.value())?)),
        None => Ok(None),
    }
}

/// The live version stored at `rev`, which an index or history row points to.
fn load_kv<T>(log: &T, rev: u64) -> Result<KeyValue, StoreError>
where
    T: ReadableTable<u64, &'static [u8]>,
{
    let rec = load_record(log, rev)?
        .ok_or_else(|| StoreError::Corrupt(format!("log record {rev} is missing")))?;
    if rec.kind != KIND_PUT {
        return Err(StoreError::Corrupt(format!(
            "log record {rev} is a tombstone where a live version was expected"
        )));
    }
    Ok(rec.into_kv(rev))
}

fn meta_get<T>(meta: &T, name: &str) -> Result<u64, StoreError>
where
    T: ReadableTable<&'static str, u64>,
{
    Ok(meta.get(name)?.map(|g| g.value()).unwrap_or(0))
}

impl EmbeddedStore {
    /// Opens (or creates) the store file at `path` with default options.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, EmbeddedOptions::default())
    }

    /// Opens (or creates) the store file at `path`.
    pub fn open_with(path: &Path, options: EmbeddedOptions) -> Result<Self, StoreError> {
        let db = Database::builder()
            .set_cache_size(options.cache_size)
            .create(path)?;
        let mut txn = db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        let (current, compacted, scan) = {
            txn.open_table(LOG)?;
            txn.open_table(HISTORY)?;
            txn.open_table(INDEX)?;
            let mut meta = txn.open_table(META)?;
            let format = meta.get(META_FORMAT)?.map(|g| g.value());
            match format {
                None => {
                    meta.insert(META_FORMAT, FORMAT_VERSION)?;
                }
                Some(FORMAT_VERSION) => {}
                Some(other) => {
                    return Err(StoreError::Corrupt(format!(
                        "unsupported store format {other} (expected {FORMAT_VERSION})"
                    )))
                }
            }
            (
                meta_get(&meta, META_REVISION)?,
                meta_get(&meta, META_COMPACTED)?,
                meta_get(&meta, META_COMPACT_SCAN)?,
            )
        };
        txn.commit()?;
        let db = Arc::new(db);
        let (events, _) = broadcast::channel(options.watch_buffer.max(1));
        let shared = Arc::new(Shared {
            current: AtomicI64::new(rev_i64(current)),
            commits: AtomicU64::new(0),
            writes: AtomicU64::new(0),
        });
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            db: db.clone(),
            rx,
            events: events.clone(),
            shared: shared.clone(),
            compaction_pending: scan < compacted,
        };
        let handle = std::thread::Builder::new()
            .name("kv-store-writer".into())
            .spawn(move || writer.run())?;
        tracing::debug!(path = %path.display(), revision = current, compacted, "embedded store opened");
        Ok(EmbeddedStore {
            inner: Arc::new(Inner {
                db,
                tx: Some(tx),
                events,
                shared,
                writer: Some(handle),
            }),
        })
    }

    /// Writer counters (commits vs. writes shows how well group commit batches).
    pub fn stats(&self) -> EmbeddedStats {
        EmbeddedStats {
            commits: self.inner.shared.commits.load(Ordering::Relaxed),
            writes: self.inner.shared.writes.load(Ordering::Relaxed),
        }
    }

    /// Compacts this store every `interval` (see [`crate::spawn_auto_compaction`]); the task
    /// ends when the store is dropped. Must be called inside a tokio runtime.
    pub fn spawn_auto_compaction(
        &self,
        interval: Duration,
        keep_revisions: i64,
    ) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        crate::spawn_auto_compaction(weak, interval, keep_revisions)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel makes the writer finish its batch and exit.
        self.tx.take();
        if let Some(handle) = self.writer.take() {
            if handle.join().is_err() {
                tracing::error!("kv store writer thread panicked");
            }
        }
    }
}

impl Inner {
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| StoreError::Backend(format!("read task failed: {e}")))?
    }

    /// Submits a create or update and returns the key-value it wrote.
    async fn submit_put(&self, op: WriteOp) -> Result<KeyValue, StoreError> {
        match self.submit(op).await? {
            WriteOutcome::Put(kv) => Ok(kv),
            WriteOutcome::Deleted(..) => {
                Err(StoreError::Backend("unexpected write outcome".into()))
            }
        }
    }

    async fn submit(&self, op: WriteOp) -> Result<WriteOutcome, StoreError> {
        let key = match &op {
            WriteOp::Create { key, .. }
            | WriteOp::Update { key, .. }
            | WriteOp::Delete { key, .. } => key,
        };
        if key.is_empty() {
            // Like etcd, which rejects empty keys.
            return Err(StoreError::InvalidArgument("empty key".into()));
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .as_ref()
            .ok_or_else(closed)?
            .send(Cmd::Write { op, reply })
            .map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }
}

#[async_trait::async_trait]
impl Store for Inner {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let key = key.to_string();
        self.read(move |db| {
            let txn = db.begin_read()?;
            let index = txn.open_table(INDEX)?;
            let Some(rev) = index.get(key.as_str())?.map(|g| g.value()) else {
                return Ok(None);
            };
            let log = txn.open_table(LOG)?;
            load_kv(&log, rev).map(Some)
        })
        .await
    }

    async fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
        revision: Option<i64>,
    ) -> Result<RangeResult, StoreError> {
        let prefix = prefix.to_string();
        let start_after = start_after.map(str::to_string);
        self.read(move |db| {
            range_blocking(
                db,
                &prefix,
                start_after.as_deref(),
                limit.unwrap_or(usize::MAX),
                revision,
            )
        })
        .await
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue, StoreError> {
        let op = WriteOp::Create {
            key: key.to_string(),
            value,
        };
        self.submit_put(op).await
    }

    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected_mod_revision: i64,
    ) -> Result<KeyValue, StoreError> {
        let op = WriteOp::Update {
            key: key.to_string(),
            value,
            expected: expected_mod_revision,
        };
        self.submit_put(op).await
    }

    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<i64>,
    ) -> Result<(i64, KeyValue), StoreError> {
        let op = WriteOp::Delete {
            key: key.to_string(),
            expected: expected_mod_revision,
        };
        match self.submit(op).await? {
            WriteOutcome::Deleted(rev, prev) => Ok((rev, prev)),
            WriteOutcome::Put(_) => Err(StoreError::Backend("unexpected write outcome".into())),
        }
    }

    async fn watch(&self, prefix: &str, from_revision: i64) -> Result<WatchStream, StoreError> {
        // Subscribe before reading the snapshot revision: every event after the snapshot is
        // then in the channel, and every event up to it is in the log.
        let rx = self.events.subscribe();
        let (current, compacted) = self
            .read(|db| {
                let txn = db.begin_read()?;
                let meta = txn.open_table(META)?;
                Ok((
                    rev_i64(meta_get(&meta, META_REVISION)?),
                    rev_i64(meta_get(&meta, META_COMPACTED)?),
                ))
            })
            .await?;
        if from_revision > 0 && from_revision < compacted {
            return Err(StoreError::Compacted {
                requested: from_revision,
                compacted,
            });
        }
        let next = if from_revision <= 0 {
            current + 1
        } else {
            from_revision
        };
        let state = WatchState {
            db: Arc::downgrade(&self.db),
            rx,
            prefix: prefix.to_string(),
            next,
            replay_until: current,
            buffer: VecDeque::new(),
            finished: false,
        };
        Ok(Box::pin(futures_util::stream::unfold(
            state,
            |mut state| async move {
                let item = state.next_item().await?;
                Some((item, state))
            },
        )))
    }

    async fn current_revision(&self) -> Result<i64, StoreError> {
        Ok(self.shared.current.load(Ordering::Acquire))
    }

    async fn compact(&self, revision: i64) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .as_ref()
            .ok_or_else(closed)?
            .send(Cmd::Compact { revision, reply })
            .map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }

    async fn compacted_revision(&self) -> Result<i64, StoreError> {
        self.read(|db| {
            let txn = db.begin_read()?;
            let meta = txn.open_table(META)?;
            Ok(rev_i64(meta_get(&meta, META_COMPACTED)?))
        })
        .await
    }
}

#[async_trait::async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        self.inner.get(key).await
    }

    async fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
        revision: Option<i64>,
    ) -> Result<RangeResult, StoreError> {
        self.inner.range(prefix, start_after, limit, revision).await
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue, StoreError> {
        self.inner.create(key, value).await
    }

    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected_mod_revision: i64,
    ) -> Result<KeyValue, StoreError> {
        self.inner.update(key, value, expected_mod_revision).await
    }

    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<i64>,
    ) -> Result<(i64, KeyValue), StoreError> {
        self.inner.delete(key, expected_mod_revision).await
    }

    async fn watch(&self, prefix: &str, from_revision: i64) -> Result<WatchStream, StoreError> {
        self.inner.watch(prefix, from_revision).await
    }

    async fn current_revision(&self) -> Result<i64, StoreError> {
        self.inner.current_revision().await
    }

    async fn compact(&self, revision: i64) -> Result<(), StoreError> {
        self.inner.compact(revision).await
    }

    async fn compacted_revision(&self) -> Result<i64, StoreError> {
        self.inner.compacted_revision().await
    }
}

/// The first key bound of a range: the prefix itself, or strictly after `start_after` when that
/// is not before the prefix.
fn lower_key<'a>(prefix: &'a str, start_after: Option<&'a str>) -> Bound<&'a str> {
    match start_after {
        Some(after) if after >= prefix => Bound::Excluded(after),
        _ => Bound::Included(prefix),
    }
}

fn range_blocking(
    db: &Database,
    prefix: &str,
    start_after: Option<&str>,
    limit: usize,
    revision: Option<i64>,
) -> Result<RangeResult, StoreError> {
    let txn = db.begin_read()?;
    let meta = txn.open_table(META)?;
    let current = rev_i64(meta_get(&meta, META_REVISION)?);
    let compacted = rev_i64(meta_get(&meta, META_COMPACTED)?);
    let at = match revision {
        None => current,
        Some(r) if r <= 0 => current,
        Some(r) if r > current => {
            return Err(StoreError::FutureRevision {
                requested: r,
                current,
            })
        }
        Some(r) if r < compacted => {
            return Err(StoreError::Compacted {
                requested: r,
                compacted,
            })
        }
        Some(r) => r,
    };
    let log = txn.open_table(LOG)?;
    let mut kvs = Vec::new();
    let mut more = false;
    let mut count: i64 = 0;
    if at == current {
        let index = txn.open_table(INDEX)?;
        let lower = lower_key(prefix, start_after);
        for item in index.range::<&str>((lower, Bound::Unbounded))? {
            let (key, rev) = item?;
            if !key.value().starts_with(prefix) {
                break;
            }
            count += 1;
            if kvs.len() < limit {
                kvs.push(load_kv(&log, rev.value())?);
            } else {
                more = true;
            }
        }
    } else {
        let history = txn.open_table(HISTORY)?;
        let at = rev_u64(at);
        // Visit each distinct key once: find the first history row after the previous key,
        // then that key's newest row at or before `at`.
        let mut lower: Bound<(String, u64)> = match lower_key(prefix, start_after) {
            Bound::Excluded(after) => Bound::Excluded((after.to_string(), u64::MAX)),
            _ => Bound::Included((prefix.to_string(), 0)),
        };
        loop {
            let bound = match &lower {
                Bound::Included((k, r)) => Bound::Included((k.as_str(), *r)),
                Bound::Excluded((k, r)) => Bound::Excluded((k.as_str(), *r)),
                Bound::Unbounded => Bound::Unbounded,
            };
            let key = match ReadableTable::range(&history, (bound, Bound::Unbounded))?.next() {
                None => break,
                Some(item) => item?.0.value().0.to_string(),
            };
            if !key.starts_with(prefix) {
                break;
            }
            let newest = ReadableTable::range(
                &history,
                (
                    Bound::Included((key.as_str(), 0u64)),
                    Bound::Included((key.as_str(), at)),
                ),
            )?
            .next_back();
            if let Some(item) = newest {
                let (k, kind) = item?;
                if kind.value() == KIND_PUT {
                    count += 1;
                    if kvs.len() < limit {
                        kvs.push(load_kv(&log, k.value().1)?);
                    } else {
                        more = true;
                    }
                }
            }
            lower = Bound::Excluded((key, u64::MAX));
        }
    }
    Ok(RangeResult {
        kvs,
        revision: at,
        more,
        count,
    })
}

struct WatchState {
    db: Weak<Database>,
    rx: broadcast::Receiver<Arc<Event>>,
    prefix: String,
    /// The next revision to deliver; anything below it was delivered or skipped.
    next: i64,
    /// Replay from the log up to this revision before going live.
    replay_until: i64,
    buffer: VecDeque<Event>,
    finished: bool,
}

impl WatchState {
    async fn next_item(&mut self) -> Option<Result<Event, StoreError>> {
        loop {
            if self.finished {
                return None;
            }
            if let Some(event) = self.buffer.pop_front() {
                return Some(Ok(event));
            }
            if self.next <= self.replay_until {
                let from = self.next;
                let end = (self.replay_until + 1).min(from.saturating_add(REPLAY_CHUNK));
                let db = self.db.clone();
                let prefix = self.prefix.clone();
                let loaded = tokio::task::spawn_blocking(move || {
                    let db = db.upgrade().ok_or_else(closed)?;
                    replay_chunk(&db, &prefix, from, end)
                })
                .await
                .map_err(|e| StoreError::Backend(format!("watch replay task failed: {e}")))
                .and_then(|r| r);
                match loaded {
                    Ok(events) => {
                        self.buffer.extend(events);
                        self.next = end;
                        continue;
                    }
                    Err(e) => {
                        self.finished = true;
                        return Some(Err(e));
                    }
                }
            }
            match self.rx.recv().await {
                Ok(event) => {
                    let rev = event.revision();
                    if rev >= self.next {
                        self.next = rev + 1;
                        if event.key().starts_with(&self.prefix) {
                            return Some(Ok((*event).clone()));
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    self.finished = true;
                    return Some(Err(StoreError::Unavailable(format!(
                        "watch fell behind by {n} events; restart it from the last revision seen"
                    ))));
                }
                Err(broadcast::error::RecvError::Closed) => {
                    self.finished = true;
                    return Some(Err(closed()));
                }
            }
        }
    }
}

/// Events with revisions in `[from, end)` on keys with `prefix`, from the log.
fn replay_chunk(
    db: &Database,
    prefix: &str,
    from: i64,
    end: i64,
) -> Result<Vec<Event>, StoreError> {
    let txn = db.begin_read()?;
    let meta = txn.open_table(META)?;
    let compacted = rev_i64(meta_get(&meta, META_COMPACTED)?);
    if from < compacted {
        // Compaction overtook this watch: rows it still needs may be gone.
        return Err(StoreError::Compacted {
            requested: from,
            compacted,
        });
    }
    let log = txn.open_table(LOG)?;
    let mut events = Vec::new();
    for item in log.range(rev_u64(from)..rev_u64(end))? {
        let (rev, bytes) = item?;
        let rev = rev.value();
        let RecordRef {
            kind,
            create_revision,
            version,
            prev_revision,
            key,
            value,
        } = Record::parse(rev, bytes.value())?;
        if !key.starts_with(prefix) {
            continue;
        }
        let prev = if prev_revision > 0 {
            Some(load_kv(&log, rev_u64(prev_revision))?)
        } else {
            None
        };
        let event = if kind == KIND_PUT {
            Event::Put {
                kv: KeyValue {
                    key: key.to_string(),
                    value: value.to_vec(),
                    create_revision,
                    mod_revision: rev_i64(rev),
                    version,
                },
                prev,
            }
        } else {
            Event::Delete {
                key: key.to_string(),
                revision: rev_i64(rev),
                prev: prev.ok_or_else(|| {
                    StoreError::Corrupt(format!("delete record {rev} has no previous version"))
                })?,
            }
        };
        events.push(event);
    }
    Ok(events)
}

struct Writer {
    db: Arc<Database>,
    rx: mpsc::Receiver<Cmd>,
    events: broadcast::Sender<Arc<Event>>,
    shared: Arc<Shared>,
    compaction_pending: bool,
}

type Applied = Result<(WriteOutcome, Event), StoreError>;

impl Writer {
    fn run(mut self) {
        loop {
            let first = if self.compaction_pending {
                match self.rx.try_recv() {
                    Ok(cmd) => Some(cmd),
                    Err(mpsc::TryRecvError::Empty) => None,
                    Err(mpsc::TryRecvError::Disconnected) => break,
                }
            } else {
                match self.rx.recv() {
                    Ok(cmd) => Some(cmd),
                    Err(_) => break,
                }
            };
            let mut writes = Vec::new();
            let mut compactions = Vec::new();
            let mut next = first;
            while let Some(cmd) = next {
                match cmd {
                    Cmd::Write { op, reply } => writes.push((op, reply)),
                    Cmd::Compact { revision, reply } => compactions.push((revision, reply)),
                }
                if writes.len() >= MAX_BATCH {
                    break;
                }
                next = self.rx.try_recv().ok();
            }
            if !writes.is_empty() {
                self.commit_writes(writes);
            }
            for (revision, reply) in compactions {
                let result = self.start_compaction(revision);
                if result.is_ok() {
                    self.compaction_pending = true;
                }
                let _ = reply.send(result);
            }
            if self.compaction_pending {
                match self.compaction_step() {
                    Ok(more) => self.compaction_pending = more,
                    Err(e) => {
                        tracing::warn!(error = %e, "kv store compaction step failed; will resume on the next compaction");
                        self.compaction_pending = false;
                    }
                }
            }
        }
        tracing::debug!("kv store writer stopped");
    }

    fn commit_writes(&mut self, writes: Vec<(WriteOp, Reply<WriteOutcome>)>) {
        let (ops, replies): (Vec<_>, Vec<_>) = writes.into_iter().unzip();
        match self.apply_batch(ops) {
            Ok((results, revision)) => {
                self.shared.current.store(revision, Ordering::Release);
                self.shared.commits.fetch_add(1, Ordering::Relaxed);
                for (result, reply) in results.into_iter().zip(replies) {
                    let result = match result {
                        Ok((outcome, event)) => {
                            self.shared.writes.fetch_add(1, Ordering::Relaxed);
                            // No receivers is fine.
                            let _ = self.events.send(Arc::new(event));
                            Ok(outcome)
                        }
                        Err(e) => Err(e),
                    };
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "kv store write transaction failed");
                let message = e.to_string();
                let mut first = Some(e);
                for reply in replies {
                    let err = first
                        .take()
                        .unwrap_or_else(|| StoreError::Backend(message.clone()));
                    let _ = reply.send(Err(err));
                }
            }
        }
    }

    /// Applies the writes in order in one transaction and commits it durably. Returns each
    /// write's result (precondition failures write nothing) and the new store revision.
    fn apply_batch(&self, ops: Vec<WriteOp>) -> Result<(Vec<Applied>, i64), StoreError> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        let mut results = Vec::with_capacity(ops.len());
        let revision;
        {
            let mut log = txn.open_table(LOG)?;
            let mut history = txn.open_table(HISTORY)?;
            let mut index = txn.open_table(INDEX)?;
            let mut meta = txn.open_table(META)?;
            let mut rev = rev_i64(meta_get(&meta, META_REVISION)?);
            for op in ops {
                let applied = apply_one(&mut log, &mut history, &mut index, rev + 1, op)?;
                if applied.is_ok() {
                    rev += 1;
                }
                results.push(applied);
            }
            meta.insert(META_REVISION, rev_u64(rev))?;
            revision = rev;
        }
        txn.commit()?;
        Ok((results, revision))
    }

    fn start_compaction(&self, revision: i64) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        {
            let mut meta = txn.open_table(META)?;
            let current = rev_i64(meta_get(&meta, META_REVISION)?);
            let compacted = rev_i64(meta_get(&meta, META_COMPACTED)?);
            if revision > current {
                return Err(StoreError::FutureRevision {
                    requested: revision,
                    current,
                });
            }
            if revision <= compacted {
                return Err(StoreError::Compacted {
                    requested: revision,
                    compacted,
                });
            }
            meta.insert(META_COMPACTED, rev_u64(revision))?;
        }
        txn.commit()?;
        tracing::debug!(revision, "kv store compacted (physical cleanup follows)");
        Ok(())
    }

    /// Removes superseded rows for the keys written in the next chunk of the log below the
    /// compacted revision. Returns whether more chunks remain.
    fn compaction_step(&self) -> Result<bool, StoreError> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        let more;
        {
            let mut meta = txn.open_table(META)?;
            let target = meta_get(&meta, META_COMPACTED)?;
            let scan = meta_get(&meta, META_COMPACT_SCAN)?;
            if scan >= target {
                return Ok(false);
            }
            let end = target.min(scan.saturating_add(COMPACTION_CHUNK));
            let mut log = txn.open_table(LOG)?;
            let mut history = txn.open_table(HISTORY)?;
            let mut keys = HashSet::new();
            for item in log.range(scan..end)? {
                let (rev, bytes) = item?;
                keys.insert(Record::parse(rev.value(), bytes.value())?.key.to_string());
            }
            for key in &keys {
                // The key's newest row below the compacted revision stays if it is a live
                // version; everything older goes, and so does a newest tombstone.
                let mut doomed = Vec::new();
                let rows = history.range((
                    Bound::Included((key.as_str(), 0u64)),
                    Bound::Excluded((key.as_str(), target)),
                ))?;
                for item in rows {
                    let (k, kind) = item?;
                    doomed.push((k.value().1, kind.value()));
                }
                if let Some((_, kind)) = doomed.last() {
                    if *kind == KIND_PUT {
                        doomed.pop();
                    }
                }
                for (rev, _) in doomed {
                    history.remove((key.as_str(), rev))?;
                    log.remove(rev)?;
                }
            }
            meta.insert(META_COMPACT_SCAN, end)?;
            more = end < target;
        }
        txn.commit()?;
        Ok(more)
    }
}

/// Applies one write at revision `rev`. The outer error aborts the batch (storage failure);
/// the inner one is the request's own failure (precondition).
fn apply_one(
    log: &mut Table<u64, &'static [u8]>,
    history: &mut Table<(&'static str, u64), u8>,
    index: &mut Table<&'static str, u64>,
    rev: i64,
    op: WriteOp,
) -> Result<Applied, StoreError> {
    let urev = rev_u64(rev);
    let (key, value, expected, create) = match op {
        WriteOp::Create { key, value } => (key, Some(value), None, true),
        WriteOp::Update {
            key,
            value,
            expected,
        } => (key, Some(value), Some(expected), false),
        WriteOp::Delete { key, expected } => (key, None, expected, false),
    };
    let current_rev = index.get(key.as_str())?.map(|g| g.value());
    let current = match (current_rev, create) {
        (Some(_), true) => return Ok(Err(StoreError::AlreadyExists { key })),
        (None, true) => None,
        (None, false) => return Ok(Err(StoreError::NotFound { key })),
        (Some(cur), false) => {
            let current = load_kv(log, cur)?;
            if expected.is_some_and(|e| e != current.mod_revision) {
                return Ok(Err(StoreError::Conflict {
                    key,
                    current: Some(current),
                }));
            }
            Some(current)
        }
    };
    match value {
        Some(value) => {
            let record = Record {
                kind: KIND_PUT,
                key,
                value,
                create_revision: current.as_ref().map_or(rev, |c| c.create_revision),
                version: current.as_ref().map_or(1, |c| c.version + 1),
                prev_revision: current.as_ref().map_or(0, |c| c.mod_revision),
            };
            log.insert(urev, record.encode().as_slice())?;
            history.insert((record.key.as_str(), urev), KIND_PUT)?;
            index.insert(record.key.as_str(), urev)?;
            let kv = record.into_kv(urev);
            Ok(Ok((
                WriteOutcome::Put(kv.clone()),
                Event::Put { kv, prev: current },
            )))
        }
        None => {
            let Some(prev) = current else {
                return Ok(Err(StoreError::NotFound { key }));
            };
            let record = Record {
                kind: KIND_DELETE,
                key,
                value: Vec::new(),
                create_revision: 0,
                version: 0,
                prev_revision: prev.mod_revision,
            };
            log.insert(urev, record.encode().as_slice())?;
            history.insert((record.key.as_str(), urev), KIND_DELETE)?;
            index.remove(record.key.as_str())?;
            Ok(Ok((
                WriteOutcome::Deleted(rev, prev.clone()),
                Event::Delete {
                    key: record.key,
                    revision: rev,
                    prev,
                },
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip() {
        let rec = Record {
            kind: KIND_PUT,
            key: "/registry/pods/default/web-1".into(),
            value: b"{\"a\":1}".to_vec(),
            create_revision: 3,
            version: 7,
            prev_revision: 41,
        };
        let bytes = rec.encode();
        assert_eq!(Record::decode(42, &bytes).unwrap(), rec);
    }

    #[test]
    fn record_decode_rejects_garbage() {
        assert!(matches!(
            Record::decode(1, b""),
            Err(StoreError::Corrupt(_))
        ));
        let mut bytes = Record {
            kind: KIND_DELETE,
            key: "k".into(),
            value: vec![],
            create_revision: 0,
            version: 0,
            prev_revision: 1,
        }
        .encode();
        // Key length beyond the buffer.
        bytes[26] = 200;
        assert!(matches!(
            Record::decode(2, &bytes),
            Err(StoreError::Corrupt(_))
        ));
        bytes[26] = 1;
        bytes[1] = 9;
        assert!(matches!(
            Record::decode(2, &bytes),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn lower_key_uses_start_after_only_inside_prefix_order() {
        assert_eq!(lower_key("/b/", None), Bound::Included("/b/"));
        assert_eq!(lower_key("/b/", Some("/a")), Bound::Included("/b/"));
        assert_eq!(lower_key("/b/", Some("/b/x")), Bound::Excluded("/b/x"));
    }

    #[tokio::test]
    async fn empty_keys_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("s.redb")).unwrap();
        assert!(matches!(
            store.create("", b"1".to_vec()).await,
            Err(StoreError::InvalidArgument(_))
        ));
        assert_eq!(store.current_revision().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn compaction_removes_superseded_rows_but_keeps_latest() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("s.redb")).unwrap();
        let a = store.create("/a", b"1".to_vec()).await.unwrap();
        let a2 = store
            .update("/a", b"2".to_vec(), a.mod_revision)
            .await
            .unwrap();
        let b = store.create("/b", b"x".to_vec()).await.unwrap();
        store.delete("/b", None).await.unwrap();
        let c = store.create("/c", b"c".to_vec()).await.unwrap();
        let current = store.current_revision().await.unwrap();
        store.compact(current).await.unwrap();
        // Wait for the physical cleanup (it runs right after the compact reply).
        for _ in 0..100 {
            let scan = store
                .inner
                .read(|db| {
                    let txn = db.begin_read()?;
                    let meta = txn.open_table(META)?;
                    meta_get(&meta, META_COMPACT_SCAN)
                })
                .await
                .unwrap();
            if scan >= rev_u64(current) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let revs: Vec<u64> = store
            .inner
            .read(|db| {
                let txn = db.begin_read()?;
                let log = txn.open_table(LOG)?;
                let mut out = Vec::new();
                for item in log.range(0u64..)? {
                    out.push(item?.0.value());
                }
                Ok(out)
            })
            .await
            .unwrap();
        // /a's first version and all of /b are gone; /a's latest and /c (at the compacted
        // revision itself) stay.
        assert_eq!(
            revs,
            vec![rev_u64(a2.mod_revision), rev_u64(c.mod_revision)]
        );
        assert!(b.mod_revision > a2.mod_revision);
        let all = store.range("/", None, None, Some(current)).await.unwrap();
        assert_eq!(all.kvs.len(), 2);
        assert_eq!(all.kvs[0].value, b"2");
    }
}
