//! Durability: a child process writes keys and prints each acknowledged one; the test SIGKILLs
//! it mid-stream, reopens the store and checks that every acknowledged key is there.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use kv_store::{EmbeddedStore, Store};

const CHILD_ENV: &str = "KV_STORE_CRASH_CHILD_DB";
const ROUND_ENV: &str = "KV_STORE_CRASH_ROUND";

fn value_for(key: &str) -> Vec<u8> {
    key.as_bytes().iter().cycle().take(2048).copied().collect()
}

/// The child: only does something when started by the test below.
#[test]
fn crash_child_writer() {
    let Ok(db) = std::env::var(CHILD_ENV) else {
        return;
    };
    let round = std::env::var(ROUND_ENV).unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let store = Arc::new(EmbeddedStore::open(&PathBuf::from(db)).unwrap());
        let tasks: Vec<_> = (0..16)
            .map(|t| {
                let store = store.clone();
                let round = round.clone();
                tokio::spawn(async move {
                    for i in 0.. {
                        let key = format!("/crash/{round}/{t}/{i}");
                        store.create(&key, value_for(&key)).await.unwrap();
                        // Written straight to fd 1 (not captured), one line per ack.
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "ACK {key}").unwrap();
                        out.flush().unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            let _ = task.await;
        }
    });
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::Builder::new()
        .prefix("berth-t-kv-crash-")
        .tempdir()
        .unwrap();
    let db = dir.path().join("store.redb");
    let exe = std::env::current_exe().unwrap();
    let mut total = 0;
    for (round, kill_after) in [(0, 150usize), (1, 400), (2, 57)] {
        let child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &db)
            .env(ROUND_ENV, round.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut child = KillOnDrop(child);
        let stdout = child.0.stdout.take().unwrap();
        let acked = tokio::task::spawn_blocking(move || {
            let mut acked = Vec::new();
            let mut killed = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(key) = line.strip_prefix("ACK ") {
                    acked.push(key.to_string());
                }
                if acked.len() >= kill_after && !killed {
                    // SIGKILL, by PID, while writers are mid-flight; keep reading what it
                    // acknowledged before dying.
                    child.0.kill().unwrap();
                    killed = true;
                }
            }
            let status = child.0.wait().unwrap();
            (acked, killed, status)
        })
        .await
        .unwrap();
        let (acked, killed, status) = acked;
        assert!(killed, "child ended before being killed: {status}");
        assert!(acked.len() >= kill_after);

        let store = EmbeddedStore::open(&db).unwrap();
        for key in &acked {
            let kv = store.get(key).await.unwrap();
            let kv = kv.unwrap_or_else(|| panic!("acknowledged key {key} lost after SIGKILL"));
            assert_eq!(kv.value, value_for(key), "value of {key}");
        }
        let listed = store
            .range(&format!("/crash/{round}/"), None, None, None)
            .await
            .unwrap();
        assert!(listed.count as usize >= acked.len());
        // Revisions stay dense: one per write ever made.
        total += listed.count;
        assert_eq!(store.current_revision().await.unwrap(), total);
        drop(store);
    }
}
