//! Memory: storing 10,000 pods of ~4 KiB must not make the process large (values live in the
//! redb file, not in memory, beyond redb's bounded cache).

use std::sync::Arc;

use kv_store::{EmbeddedStore, Store};

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_pods_stay_out_of_memory() {
    let dir = tempfile::Builder::new()
        .prefix("berth-t-kv-mem-")
        .tempdir()
        .unwrap();
    let store = Arc::new(EmbeddedStore::open(&dir.path().join("store.redb")).unwrap());
    let before = rss_bytes();
    let tasks: Vec<_> = (0..100)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..100 {
                    let key = format!("/registry/pods/ns{t}/pod-{i}");
                    let value = format!(
                        "{{\"metadata\":{{\"name\":\"{key}\"}},\"pad\":\"{}\"}}",
                        "x".repeat(4000)
                    );
                    store.create(&key, value.into_bytes()).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    // Page through everything like a paginated list, then watch-replay it all.
    let mut after = None;
    let mut seen = 0;
    loop {
        let page = store
            .range("/registry/pods/", after.as_deref(), Some(500), None)
            .await
            .unwrap();
        seen += page.kvs.len();
        after = page.kvs.last().map(|kv| kv.key.clone());
        if !page.more {
            break;
        }
    }
    assert_eq!(seen, 10_000);
    let grown = rss_bytes().saturating_sub(before);
    let file = std::fs::metadata(dir.path().join("store.redb"))
        .unwrap()
        .len();
    eprintln!(
        "RSS grew by {} MiB; store file is {} MiB",
        grown >> 20,
        file >> 20
    );
    assert!(grown < 128 << 20, "RSS grew by {} MiB", grown >> 20);
}
