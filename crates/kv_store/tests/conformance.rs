//! The shared conformance suite against both implementations, plus embedded-only behaviour
//! (group commit, slow watchers, reopening).

mod common;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use kv_store::{EmbeddedOptions, EmbeddedStore, EtcdStore, Store, StoreError};

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("berth-t-kv-")
        .tempdir()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_conformance() {
    let dir = temp_dir();
    let store = EmbeddedStore::open(&dir.path().join("store.redb")).unwrap();
    common::conformance(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_conformance() {
    let Some(etcd) = common::EtcdProcess::start().await else {
        return;
    };
    let store = EtcdStore::connect(std::slice::from_ref(&etcd.endpoint), "")
        .await
        .unwrap();
    common::conformance(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_conformance_with_key_prefix() {
    let Some(etcd) = common::EtcdProcess::start().await else {
        return;
    };
    // A key outside the prefix must stay invisible.
    let bare = EtcdStore::connect(std::slice::from_ref(&etcd.endpoint), "")
        .await
        .unwrap();
    bare.create("/registry/conformance/r/outside", b"x".to_vec())
        .await
        .unwrap();
    let store = EtcdStore::connect(std::slice::from_ref(&etcd.endpoint), "/berth")
        .await
        .unwrap();
    common::conformance(Arc::new(store)).await;
    let raw = bare
        .get("/berth/registry/conformance/r/b")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(raw.value, b"b2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_selects_the_backend() {
    let dir = temp_dir();
    let store = kv_store::open(None, &dir.path().join("data"))
        .await
        .unwrap();
    store.create("/registry/x", b"1".to_vec()).await.unwrap();
    assert!(dir.path().join("data/store.redb").exists());
    drop(store);
    if let Some(etcd) = common::EtcdProcess::start().await {
        let endpoints = format!("{}, {}", etcd.endpoint, etcd.endpoint);
        let store = kv_store::open(Some(&endpoints), dir.path()).await.unwrap();
        let kv = store.create("/registry/y", b"1".to_vec()).await.unwrap();
        assert_eq!(store.get("/registry/y").await.unwrap(), Some(kv));
    }
    // An unreachable etcd is reported as Unavailable.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    match kv_store::open(Some(&format!("http://127.0.0.1:{port}")), dir.path()).await {
        Err(StoreError::Unavailable(_)) => {}
        Err(other) => panic!("expected Unavailable, got {other}"),
        Ok(_) => panic!("expected Unavailable, got a store"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_200_concurrent_creates() {
    let dir = temp_dir();
    let store = Arc::new(EmbeddedStore::open(&dir.path().join("store.redb")).unwrap());
    let base = store.current_revision().await.unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .create(&format!("/registry/pods/default/p{i}"), vec![b'x'; 1024])
                    .await
                    .unwrap()
                    .mod_revision
            })
        })
        .collect();
    let mut revisions = Vec::new();
    for task in tasks {
        revisions.push(task.await.unwrap());
    }
    revisions.sort_unstable();
    let expected: Vec<i64> = (base + 1..=base + 200).collect();
    assert_eq!(revisions, expected, "revisions are unique and contiguous");
    let stats = store.stats();
    assert_eq!(stats.writes, 200);
    assert!(stats.commits < 100, "writes were not batched: {stats:?}");
    let listed = store
        .range("/registry/pods/", None, None, None)
        .await
        .unwrap();
    assert_eq!(listed.count, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_watcher_gets_an_error_instead_of_missing_events() {
    let dir = temp_dir();
    let options = EmbeddedOptions {
        watch_buffer: 16,
        ..EmbeddedOptions::default()
    };
    let store = EmbeddedStore::open_with(&dir.path().join("store.redb"), options).unwrap();
    let mut watch = store.watch("/registry/", 0).await.unwrap();
    for i in 0..100 {
        store
            .create(&format!("/registry/k{i}"), b"v".to_vec())
            .await
            .unwrap();
    }
    match common::next_event(&mut watch).await {
        Err(StoreError::Unavailable(message)) => {
            assert!(message.contains("fell behind"), "{message}")
        }
        other => panic!("expected a lag error, got {other:?}"),
    }
    assert!(
        watch.next().await.is_none(),
        "the stream ends after the error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_keeps_data_revisions_and_compaction() {
    let dir = temp_dir();
    let path = dir.path().join("store.redb");
    let (kv, rev) = {
        let store = EmbeddedStore::open(&path).unwrap();
        let a = store.create("/registry/a", b"1".to_vec()).await.unwrap();
        let a = store
            .update("/registry/a", b"2".to_vec(), a.mod_revision)
            .await
            .unwrap();
        store.create("/registry/b", b"1".to_vec()).await.unwrap();
        store.delete("/registry/b", None).await.unwrap();
        store.compact(a.mod_revision).await.unwrap();
        (a, store.current_revision().await.unwrap())
    };
    let store = EmbeddedStore::open(&path).unwrap();
    assert_eq!(store.current_revision().await.unwrap(), rev);
    assert_eq!(store.compacted_revision().await.unwrap(), kv.mod_revision);
    assert_eq!(store.get("/registry/a").await.unwrap(), Some(kv.clone()));
    assert_eq!(store.get("/registry/b").await.unwrap(), None);
    let next = store.create("/registry/c", b"1".to_vec()).await.unwrap();
    assert_eq!(next.mod_revision, rev + 1);
    // History from the compacted revision on is still there after reopening.
    let mut watch = store.watch("/registry/", kv.mod_revision).await.unwrap();
    assert_eq!(
        common::next_event(&mut watch).await.unwrap().revision(),
        kv.mod_revision
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_store_ends_watches_and_releases_the_file() {
    let dir = temp_dir();
    let path = dir.path().join("store.redb");
    let store = EmbeddedStore::open(&path).unwrap();
    let mut watch = store.watch("/", 0).await.unwrap();
    drop(store);
    match common::next_event(&mut watch).await {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
    // The file can be opened again in this process.
    let store = EmbeddedStore::open(&path).unwrap();
    assert_eq!(store.current_revision().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_compaction_compacts_in_the_background() {
    let dir = temp_dir();
    let store = EmbeddedStore::open(&dir.path().join("store.redb")).unwrap();
    let task = store.spawn_auto_compaction(Duration::from_millis(50), 5);
    let mut kv = store.create("/registry/a", b"0".to_vec()).await.unwrap();
    for i in 0..30 {
        kv = store
            .update("/registry/a", format!("{i}").into_bytes(), kv.mod_revision)
            .await
            .unwrap();
    }
    let mut compacted = 0;
    for _ in 0..100 {
        compacted = store.compacted_revision().await.unwrap();
        if compacted > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        compacted > 0 && compacted <= kv.mod_revision - 5,
        "compacted {compacted}"
    );
    assert_eq!(store.get("/registry/a").await.unwrap(), Some(kv));
    drop(store);
    // The task stops once the store is gone.
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_outage_is_unavailable() {
    let Some(etcd) = common::EtcdProcess::start().await else {
        return;
    };
    let store = EtcdStore::connect(std::slice::from_ref(&etcd.endpoint), "")
        .await
        .unwrap();
    let mut watch = store.watch("/registry/", 0).await.unwrap();
    store.create("/registry/a", b"1".to_vec()).await.unwrap();
    assert_eq!(
        common::next_event(&mut watch).await.unwrap().key(),
        "/registry/a"
    );
    drop(etcd);
    match common::next_event(&mut watch).await {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("expected Unavailable from the watch, got {other:?}"),
    }
    match tokio::time::timeout(Duration::from_secs(20), store.get("/registry/a")).await {
        Ok(Err(StoreError::Unavailable(_))) => {}
        other => panic!("expected Unavailable from get, got {other:?}"),
    }
}
