//! Watches served from one shared store watch per resource: a hub keeps a window of recent
//! events and fans live ones out to every client, so a hundred `kubectl get -w` cost one
//! store watch. A client asking for a revision older than the window gets its own store
//! watch (or 410 Gone when the store has compacted it away).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use kv_store::{Event, Store};
use tokio::sync::broadcast;

use bytes::Bytes;

use crate::registry::with_resource_version;
use crate::status::ApiError;

/// Events kept per resource for clients that resume from a recent revision.
const WINDOW: usize = 2048;

/// One committed change, encoded once for all watchers.
#[derive(Debug)]
pub struct HubEvent {
    pub revision: i64,
    pub key: String,
    /// The object's JSON after the change, with its resourceVersion (for deletes: the
    /// last state, at the delete revision).
    pub raw: Bytes,
    /// The object's JSON before the change, if it existed.
    pub prev_raw: Option<Bytes>,
    pub deleted: bool,
}

fn encoded(kv: &kv_store::KeyValue, rev: i64) -> Result<Bytes, ApiError> {
    with_resource_version(&kv.value, rev)
        .map(|(b, _)| Bytes::from(b))
        .map_err(|e| ApiError::internal(format!("stored object {} is corrupt: {e}", kv.key)))
}

/// Encodes a store event into a hub event.
pub fn hub_event(ev: &Event) -> Result<HubEvent, ApiError> {
    Ok(match ev {
        Event::Put { kv, prev } => HubEvent {
            revision: kv.mod_revision,
            key: kv.key.clone(),
            raw: encoded(kv, kv.mod_revision)?,
            prev_raw: prev
                .as_ref()
                .map(|p| encoded(p, p.mod_revision))
                .transpose()?,
            deleted: false,
        },
        Event::Delete {
            key,
            revision,
            prev,
        } => HubEvent {
            revision: *revision,
            key: key.clone(),
            raw: encoded(prev, *revision)?,
            prev_raw: Some(encoded(prev, prev.mod_revision)?),
            deleted: true,
        },
    })
}

struct Window {
    events: VecDeque<Arc<HubEvent>>,
    /// Highest revision dropped from the window; clients resuming below it need the store.
    evicted_upto: i64,
}

pub struct Hub {
    prefix: String,
    tx: broadcast::Sender<Arc<HubEvent>>,
    window: Mutex<Window>,
    /// The hub saw every event after this revision.
    start_revision: i64,
    alive: std::sync::atomic::AtomicBool,
}

/// Where a watcher's events come from.
pub enum Subscription {
    /// Backlog from the hub's window, then live events (skip revisions <= the last sent).
    Hub {
        backlog: Vec<Arc<HubEvent>>,
        live: broadcast::Receiver<Arc<HubEvent>>,
    },
    /// A private store watch for an old revision.
    Direct(kv_store::WatchStream),
}

impl Hub {
    pub fn alive(&self) -> bool {
        self.alive.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Subscribes for every event with revision > `after`.
    pub async fn subscribe(
        &self,
        store: &Arc<dyn Store>,
        after: i64,
    ) -> Result<Subscription, ApiError> {
        {
            let w = self.window.lock().unwrap_or_else(|e| e.into_inner());
            if after >= self.start_revision && after >= w.evicted_upto && self.alive() {
                let live = self.tx.subscribe();
                let backlog = w
                    .events
                    .iter()
                    .filter(|e| e.revision > after)
                    .cloned()
                    .collect();
                return Ok(Subscription::Hub { backlog, live });
            }
        }
        let s = store.watch(&self.prefix, after + 1).await?;
        Ok(Subscription::Direct(s))
    }
}

/// The hubs, one per store key prefix, started on first use.
#[derive(Default)]
pub struct Hubs {
    hubs: Mutex<HashMap<String, Arc<Hub>>>,
}

impl Hubs {
    pub async fn hub(&self, store: &Arc<dyn Store>, prefix: &str) -> Result<Arc<Hub>, ApiError> {
        if let Some(h) = self
            .hubs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(prefix)
            .filter(|h| h.alive())
        {
            return Ok(h.clone());
        }
        let start = store.current_revision().await?;
        let mut stream = store.watch(prefix, start + 1).await?;
        let (tx, _) = broadcast::channel(4096);
        let hub = Arc::new(Hub {
            prefix: prefix.to_string(),
            tx: tx.clone(),
            window: Mutex::new(Window {
                events: VecDeque::new(),
                evicted_upto: 0,
            }),
            start_revision: start,
            alive: std::sync::atomic::AtomicBool::new(true),
        });
        {
            let mut map = self.hubs.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(existing) = map.get(prefix).filter(|h| h.alive()) {
                return Ok(existing.clone());
            }
            map.insert(prefix.to_string(), hub.clone());
        }
        let weak = Arc::downgrade(&hub);
        tokio::spawn(async move {
            while let Some(item) = stream.next().await {
                let Some(hub) = weak.upgrade() else { return };
                let ev = match item.map_err(ApiError::from).and_then(|e| hub_event(&e)) {
                    Ok(ev) => Arc::new(ev),
                    Err(e) => {
                        tracing::warn!(prefix = %hub.prefix, error = %e, "watch hub stopped");
                        break;
                    }
                };
                let mut w = hub.window.lock().unwrap_or_else(|e| e.into_inner());
                w.events.push_back(ev.clone());
                while w.events.len() > WINDOW {
                    if let Some(old) = w.events.pop_front() {
                        w.evicted_upto = old.revision;
                    }
                }
                // Sent under the window lock so a subscriber never misses or repeats one.
                let _ = hub.tx.send(ev);
            }
            if let Some(hub) = weak.upgrade() {
                hub.alive.store(false, std::sync::atomic::Ordering::Relaxed);
            }
        });
        Ok(hub)
    }
}
