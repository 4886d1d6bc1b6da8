//! Shared test helpers: the conformance suite every [`Store`] must pass, and a real etcd
//! process for the etcd implementation.

#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use kv_store::{EtcdStore, Event, KeyValue, Store, StoreError, WatchStream};

const STEP: Duration = Duration::from_secs(10);

/// The next watch item, failing the test if none comes in time.
pub async fn next_event(stream: &mut WatchStream) -> Result<Event, StoreError> {
    match tokio::time::timeout(STEP, stream.next()).await {
        Ok(Some(item)) => item,
        Ok(None) => panic!("watch stream ended"),
        Err(_) => panic!("no watch event within {STEP:?}"),
    }
}

/// Asserts that no watch event arrives within a short time.
pub async fn expect_quiet(stream: &mut WatchStream) {
    if let Ok(item) = tokio::time::timeout(Duration::from_millis(300), stream.next()).await {
        panic!("unexpected watch item: {item:?}");
    }
}

fn put_kv(event: &Event) -> &KeyValue {
    match event {
        Event::Put { kv, .. } => kv,
        Event::Delete { .. } => panic!("expected a put, got {event:?}"),
    }
}

/// The conformance suite: every Store implementation must pass it. It uses keys under
/// `/registry/conformance/` and only relative revisions, and expects to be the only writer.
pub async fn conformance(store: Arc<dyn Store>) {
    let p = "/registry/conformance/";
    let k = |s: &str| format!("{p}{s}");

    // --- create / AlreadyExists / get
    let r0 = store.current_revision().await.unwrap();
    let a = store.create(&k("a"), b"1".to_vec()).await.unwrap();
    assert_eq!(a.key, k("a"));
    assert_eq!(a.value, b"1");
    assert_eq!(
        a.mod_revision,
        r0 + 1,
        "each write bumps the revision by one"
    );
    assert_eq!(a.create_revision, a.mod_revision);
    assert_eq!(a.version, 1);
    assert_eq!(store.current_revision().await.unwrap(), a.mod_revision);
    match store.create(&k("a"), b"x".to_vec()).await {
        Err(StoreError::AlreadyExists { key }) => assert_eq!(key, k("a")),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(
        store.current_revision().await.unwrap(),
        a.mod_revision,
        "failed writes do not bump the revision"
    );
    assert_eq!(store.get(&k("a")).await.unwrap(), Some(a.clone()));
    assert_eq!(store.get(&k("missing")).await.unwrap(), None);

    // --- update / Conflict / NotFound
    let a2 = store
        .update(&k("a"), b"2".to_vec(), a.mod_revision)
        .await
        .unwrap();
    assert_eq!(a2.mod_revision, a.mod_revision + 1);
    assert_eq!(a2.create_revision, a.create_revision);
    assert_eq!(a2.version, 2);
    assert_eq!(a2.value, b"2");
    assert_eq!(store.get(&k("a")).await.unwrap(), Some(a2.clone()));
    match store.update(&k("a"), b"3".to_vec(), a.mod_revision).await {
        Err(StoreError::Conflict { key, current }) => {
            assert_eq!(key, k("a"));
            assert_eq!(
                current,
                Some(a2.clone()),
                "Conflict carries the current version"
            );
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    match store
        .update(&k("missing"), b"3".to_vec(), a.mod_revision)
        .await
    {
        Err(StoreError::NotFound { key }) => assert_eq!(key, k("missing")),
        other => panic!("expected NotFound, got {other:?}"),
    }
    // An expected revision of 0 must not create a missing key.
    assert!(matches!(
        store.update(&k("missing"), b"3".to_vec(), 0).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(store.get(&k("missing")).await.unwrap(), None);

    // --- delete with precondition
    match store.delete(&k("a"), Some(a.mod_revision)).await {
        Err(StoreError::Conflict { current, .. }) => assert_eq!(current, Some(a2.clone())),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert!(matches!(
        store.delete(&k("missing"), None).await,
        Err(StoreError::NotFound { .. })
    ));
    let (del_rev, prev) = store.delete(&k("a"), Some(a2.mod_revision)).await.unwrap();
    assert_eq!(del_rev, a2.mod_revision + 1);
    assert_eq!(prev, a2);
    assert_eq!(store.get(&k("a")).await.unwrap(), None);
    // Re-creation starts a new life: new create_revision, version 1.
    let a3 = store.create(&k("a"), b"again".to_vec()).await.unwrap();
    assert_eq!(a3.create_revision, del_rev + 1);
    assert_eq!(a3.version, 1);
    let (_, prev) = store.delete(&k("a"), None).await.unwrap();
    assert_eq!(prev, a3);

    // --- range: prefix, start_after, limit, more, count
    let r = |s: &str| format!("{p}r/{s}");
    for name in ["b", "c", "d", "e", "f"] {
        store
            .create(&r(name), name.as_bytes().to_vec())
            .await
            .unwrap();
    }
    // Keys that share a string prefix with, or sort around, the range must stay out.
    store
        .create(&format!("{p}r"), b"no".to_vec())
        .await
        .unwrap();
    store
        .create(&format!("{p}r0"), b"no".to_vec())
        .await
        .unwrap();
    store
        .create(&format!("{p}q/z"), b"no".to_vec())
        .await
        .unwrap();
    let keys =
        |res: &kv_store::RangeResult| res.kvs.iter().map(|kv| kv.key.clone()).collect::<Vec<_>>();
    let all = store.range(&r(""), None, None, None).await.unwrap();
    assert_eq!(keys(&all), ["b", "c", "d", "e", "f"].map(r).to_vec());
    assert_eq!(all.count, 5);
    assert!(!all.more);
    assert_eq!(all.revision, store.current_revision().await.unwrap());
    assert_eq!(all.kvs[0].value, b"b");
    let page = store.range(&r(""), None, Some(2), None).await.unwrap();
    assert_eq!(keys(&page), vec![r("b"), r("c")]);
    assert!(page.more);
    assert_eq!(page.count, 5);
    let page2 = store
        .range(&r(""), Some(&r("c")), Some(2), Some(page.revision))
        .await
        .unwrap();
    assert_eq!(keys(&page2), vec![r("d"), r("e")]);
    assert!(page2.more);
    assert_eq!(page2.count, 3, "count covers the keys after start_after");
    assert_eq!(page2.revision, page.revision);
    let page3 = store
        .range(&r(""), Some(&r("e")), Some(2), None)
        .await
        .unwrap();
    assert_eq!(keys(&page3), vec![r("f")]);
    assert!(!page3.more);
    assert_eq!(page3.count, 1);
    let tail = store
        .range(&r(""), Some(&r("f")), None, None)
        .await
        .unwrap();
    assert!(tail.kvs.is_empty() && !tail.more && tail.count == 0);
    let beyond = store
        .range(&r(""), Some(&format!("{p}zzz")), None, None)
        .await
        .unwrap();
    assert!(beyond.kvs.is_empty() && beyond.count == 0);
    let before = store.range(&r(""), Some("/"), Some(1), None).await.unwrap();
    assert_eq!(
        keys(&before),
        vec![r("b")],
        "start_after before the prefix is ignored"
    );
    let zero = store.range(&r(""), None, Some(0), None).await.unwrap();
    assert!(zero.kvs.is_empty());
    assert!(zero.more);
    assert_eq!(zero.count, 5);
    let single = store.range(&r("c"), None, None, None).await.unwrap();
    assert_eq!(keys(&single), vec![r("c")]);

    // --- range at an old revision
    let old = store.current_revision().await.unwrap();
    let b = store.get(&r("b")).await.unwrap().unwrap();
    store
        .update(&r("b"), b"b2".to_vec(), b.mod_revision)
        .await
        .unwrap();
    store.delete(&r("c"), None).await.unwrap();
    store.create(&r("g"), b"g".to_vec()).await.unwrap();
    store.create(&r("c"), b"c2".to_vec()).await.unwrap();
    store.delete(&r("d"), None).await.unwrap();
    let then = store.range(&r(""), None, None, Some(old)).await.unwrap();
    assert_eq!(then.revision, old);
    assert_eq!(keys(&then), ["b", "c", "d", "e", "f"].map(r).to_vec());
    assert_eq!(then.kvs[0].value, b"b");
    assert_eq!(then.kvs[1].value, b"c");
    assert_eq!(then.count, 5);
    let then_page = store
        .range(&r(""), Some(&r("b")), Some(2), Some(old))
        .await
        .unwrap();
    assert_eq!(keys(&then_page), vec![r("c"), r("d")]);
    assert!(then_page.more);
    assert_eq!(then_page.count, 4);
    let now = store.range(&r(""), None, None, None).await.unwrap();
    assert_eq!(keys(&now), ["b", "c", "e", "f", "g"].map(r).to_vec());
    assert_eq!(now.kvs[0].value, b"b2");
    assert_eq!(now.kvs[1].value, b"c2");
    let current = store.current_revision().await.unwrap();
    let at_current = store
        .range(&r(""), None, None, Some(current))
        .await
        .unwrap();
    assert_eq!(at_current.kvs, now.kvs);
    match store.range(&r(""), None, None, Some(current + 100)).await {
        Err(StoreError::FutureRevision {
            requested,
            current: c,
        }) => {
            assert_eq!(requested, current + 100);
            assert_eq!(c, current);
        }
        other => panic!("expected FutureRevision, got {other:?}"),
    }

    // --- watch from 0: only future events
    let z = |s: &str| format!("{p}z/{s}");
    store.create(&z("before"), b"0".to_vec()).await.unwrap();
    let mut live = store.watch(&z(""), 0).await.unwrap();
    expect_quiet(&mut live).await;
    let z1 = store.create(&z("1"), b"1".to_vec()).await.unwrap();
    store
        .create(&format!("{p}y/other"), b"x".to_vec())
        .await
        .unwrap();
    let z1b = store
        .update(&z("1"), b"2".to_vec(), z1.mod_revision)
        .await
        .unwrap();
    let (zdel, _) = store.delete(&z("1"), None).await.unwrap();
    match next_event(&mut live).await.unwrap() {
        Event::Put { kv, prev } => {
            assert_eq!(kv, z1);
            assert_eq!(prev, None);
        }
        other => panic!("expected a put, got {other:?}"),
    }
    match next_event(&mut live).await.unwrap() {
        Event::Put { kv, prev } => {
            assert_eq!(kv, z1b);
            assert_eq!(prev, Some(z1.clone()));
        }
        other => panic!("expected a put, got {other:?}"),
    }
    match next_event(&mut live).await.unwrap() {
        Event::Delete {
            key,
            revision,
            prev,
        } => {
            assert_eq!(key, z("1"));
            assert_eq!(revision, zdel);
            assert_eq!(prev, z1b);
        }
        other => panic!("expected a delete, got {other:?}"),
    }
    expect_quiet(&mut live).await;
    drop(live);

    // --- watch from a past revision: replay, then live, with concurrent writers
    let w = |s: &str| format!("{p}w/{s}");
    let start = store.current_revision().await.unwrap() + 1;
    let mut expected: BTreeSet<i64> = BTreeSet::new();
    for i in 0..20 {
        let kv = store
            .create(&w(&format!("pre-{i:03}")), vec![b'p'; 100])
            .await
            .unwrap();
        expected.insert(kv.mod_revision);
        store
            .create(&format!("{p}v/noise-{i:03}"), b"n".to_vec())
            .await
            .unwrap();
    }
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut revs = Vec::new();
                for i in 0..25 {
                    let key = format!("{}w/t{t}-{i:03}", "/registry/conformance/");
                    let kv = store.create(&key, vec![b'a'; 200]).await.unwrap();
                    revs.push(kv.mod_revision);
                    let kv2 = store
                        .update(&key, vec![b'b'; 200], kv.mod_revision)
                        .await
                        .unwrap();
                    revs.push(kv2.mod_revision);
                    store
                        .create(
                            &format!("/registry/conformance/v/t{t}-{i:03}"),
                            b"n".to_vec(),
                        )
                        .await
                        .unwrap();
                    if i % 5 == 0 {
                        let (rev, _) = store.delete(&key, None).await.unwrap();
                        revs.push(rev);
                    }
                }
                revs
            })
        })
        .collect();
    // Start watching while the writers run.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut replay = store.watch(&w(""), start).await.unwrap();
    for writer in writers {
        expected.extend(writer.await.unwrap());
    }
    let mut seen = Vec::new();
    let mut last_value: HashMap<String, KeyValue> = HashMap::new();
    while seen.len() < expected.len() {
        let event = next_event(&mut replay).await.unwrap();
        assert!(
            event.key().starts_with(&w("")),
            "event outside the prefix: {event:?}"
        );
        if let Some(&last) = seen.last() {
            assert!(
                event.revision() > last,
                "revisions must increase: {last} then {}",
                event.revision()
            );
        }
        seen.push(event.revision());
        match &event {
            Event::Put { kv, prev } => {
                assert_eq!(prev.as_ref(), last_value.get(&kv.key), "prev of {}", kv.key);
                last_value.insert(kv.key.clone(), kv.clone());
            }
            Event::Delete { key, prev, .. } => {
                assert_eq!(Some(prev), last_value.get(key));
                last_value.remove(key);
            }
        }
    }
    assert_eq!(
        seen.into_iter().collect::<BTreeSet<_>>(),
        expected,
        "no gaps, no duplicates"
    );
    // ...and it goes on live.
    let live_kv = store.create(&w("live"), b"l".to_vec()).await.unwrap();
    assert_eq!(put_kv(&next_event(&mut replay).await.unwrap()), &live_kv);
    expect_quiet(&mut replay).await;
    drop(replay);

    // --- compaction
    let latest_before = store.range(p, None, None, None).await.unwrap();
    let target = store.current_revision().await.unwrap();
    let before_compaction = store.compacted_revision().await.unwrap();
    assert!(before_compaction < old);
    store.compact(target).await.unwrap();
    assert_eq!(store.compacted_revision().await.unwrap(), target);
    match store.range(&r(""), None, None, Some(old)).await {
        Err(StoreError::Compacted {
            requested,
            compacted,
        }) => {
            assert_eq!(requested, old);
            assert_eq!(compacted, target);
        }
        other => panic!("expected Compacted, got {other:?}"),
    }
    match store.watch(&w(""), start).await {
        Err(StoreError::Compacted { compacted, .. }) => assert_eq!(compacted, target),
        Err(other) => panic!("expected Compacted, got {other:?}"),
        Ok(mut stream) => match next_event(&mut stream).await {
            Err(StoreError::Compacted { compacted, .. }) => assert_eq!(compacted, target),
            other => panic!("expected Compacted, got {other:?}"),
        },
    }
    // Latest versions survive compaction, and reads at the compacted revision still work.
    let latest_after = store.range(p, None, None, None).await.unwrap();
    assert_eq!(latest_after.kvs, latest_before.kvs);
    let at_target = store.range(p, None, None, Some(target)).await.unwrap();
    assert_eq!(at_target.kvs, latest_before.kvs);
    assert!(matches!(
        store.compact(old).await,
        Err(StoreError::Compacted { .. })
    ));
    let cur = store.current_revision().await.unwrap();
    assert!(matches!(
        store.compact(cur + 10).await,
        Err(StoreError::FutureRevision { .. })
    ));
    // Watching from the compacted revision itself is allowed (etcd's rule).
    let mut from_target = store.watch(p, target).await.unwrap();
    let first = next_event(&mut from_target).await.unwrap();
    assert_eq!(first.revision(), target);
    drop(from_target);
    // The store keeps working after compaction, including history written after it.
    let after = store.current_revision().await.unwrap();
    let e = store.get(&r("e")).await.unwrap().unwrap();
    store
        .update(&r("e"), b"e2".to_vec(), e.mod_revision)
        .await
        .unwrap();
    let at_after = store.range(&r(""), None, None, Some(after)).await.unwrap();
    assert_eq!(
        at_after
            .kvs
            .iter()
            .find(|kv| kv.key == r("e"))
            .unwrap()
            .value,
        b"e"
    );
    let mut from_after = store.watch(&r(""), after + 1).await.unwrap();
    let ev = next_event(&mut from_after).await.unwrap();
    match ev {
        Event::Put { kv, prev } => {
            assert_eq!(kv.value, b"e2");
            assert_eq!(prev, Some(e));
        }
        other => panic!("expected a put, got {other:?}"),
    }
}

/// A real etcd server on free loopback ports, killed (by PID) and wiped on drop.
pub struct EtcdProcess {
    child: Child,
    pub endpoint: String,
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

/// The etcd binary, if installed (`KV_STORE_ETCD_BIN` overrides /usr/bin/etcd).
pub fn etcd_binary() -> Option<PathBuf> {
    let path = PathBuf::from(
        std::env::var("KV_STORE_ETCD_BIN").unwrap_or_else(|_| "/usr/bin/etcd".into()),
    );
    path.exists().then_some(path)
}

impl EtcdProcess {
    pub async fn start() -> Option<EtcdProcess> {
        let Some(bin) = etcd_binary() else {
            eprintln!("SKIPPED: etcd not found at /usr/bin/etcd (apt-get install etcd-server)");
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("berth-t-etcd-")
            .tempdir()
            .unwrap();
        let client = free_port();
        let peer = free_port();
        let endpoint = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = std::fs::File::create(dir.path().join("etcd.log")).unwrap();
        let child = Command::new(bin)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--listen-client-urls", &endpoint])
            .args(["--advertise-client-urls", &endpoint])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("default={peer_url}")])
            .args(["--name", "default"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start etcd");
        let mut process = EtcdProcess {
            child,
            endpoint,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!("etcd exited early ({status}): {}", process.log());
            }
            if let Ok(Ok(_)) = tokio::time::timeout(
                Duration::from_secs(2),
                EtcdStore::connect(&[process.endpoint.clone()], ""),
            )
            .await
            {
                return Some(process);
            }
            if Instant::now() > deadline {
                panic!("etcd did not become ready: {}", process.log());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
    }
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        // Child::kill sends SIGKILL to this child's PID only.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
