//! Measures create throughput: `cargo run -p kv_store --example throughput [ETCD_ENDPOINT]`.
//! Always measures the embedded store (in a temporary directory); measures etcd too when an
//! endpoint such as `http://127.0.0.1:2379` is given.

use std::sync::Arc;
use std::time::Instant;

use kv_store::{EmbeddedStore, EtcdStore, Store, StoreError};

const VALUE_SIZE: usize = 2048;

async fn sequential(store: &Arc<dyn Store>, prefix: &str, n: usize) -> Result<f64, StoreError> {
    let start = Instant::now();
    for i in 0..n {
        store
            .create(&format!("{prefix}seq/{i}"), vec![b'x'; VALUE_SIZE])
            .await?;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

async fn concurrent(
    store: &Arc<dyn Store>,
    prefix: &str,
    tasks: usize,
    per_task: usize,
) -> Result<f64, StoreError> {
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let store = store.clone();
            let prefix = prefix.to_string();
            tokio::spawn(async move {
                for i in 0..per_task {
                    store
                        .create(&format!("{prefix}conc/{t}/{i}"), vec![b'x'; VALUE_SIZE])
                        .await?;
                }
                Ok::<_, StoreError>(())
            })
        })
        .collect();
    for handle in handles {
        handle
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))??;
    }
    Ok((tasks * per_task) as f64 / start.elapsed().as_secs_f64())
}

async fn measure(name: &str, store: Arc<dyn Store>, prefix: &str) -> Result<(), StoreError> {
    let seq = sequential(&store, prefix, 300).await?;
    let conc = concurrent(&store, prefix, 100, 50).await?;
    println!("{name}: sequential {seq:.0} creates/s, 100 concurrent {conc:.0} creates/s");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), StoreError> {
    let dir = tempfile::Builder::new()
        .prefix("kv_store-bench-")
        .tempdir()?;
    let embedded = Arc::new(EmbeddedStore::open(&dir.path().join("store.redb"))?);
    measure("embedded", embedded.clone(), "/bench/").await?;
    println!("embedded writer: {:?}", embedded.stats());
    if let Some(endpoint) = std::env::args().nth(1) {
        let store = EtcdStore::connect(&[endpoint], "").await?;
        let prefix = format!("/bench-{}/", std::process::id());
        measure("etcd", Arc::new(store), &prefix).await?;
    }
    Ok(())
}
