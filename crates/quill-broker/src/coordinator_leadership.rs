//! Coordinators follow the leadership of their internal-topic partitions (Kafka's
//! `onElection` / `onResignation`): after every image this broker serves, each
//! `__consumer_offsets` / `__transaction_state` partition it now leads is loaded from its log
//! (answering COORDINATOR_LOAD_IN_PROGRESS meanwhile), and each one it no longer leads
//! (follower, fenced, deleted) is unloaded at once (NOT_COORDINATOR).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quill_group::GroupCoordinator;
use quill_meta::MetadataImage;
use quill_txn::{TransactionCoordinator, TRANSACTION_STATE_TOPIC};
use tokio::sync::watch;

use crate::offsets_store::OFFSETS_TOPIC;

/// One coordinator partition this broker leads, and the load that serves it.
struct Led {
    /// The leader epoch it was elected at: a load started for an older epoch is aborted.
    leader_epoch: i32,
    load: tokio::task::AbortHandle,
    loaded: watch::Receiver<bool>,
}

/// Which internal-topic partitions this broker coordinates, keyed by (topic, partition).
pub struct CoordinatorLeadership {
    node_id: i32,
    led: Mutex<HashMap<(&'static str, i32), Led>>,
    /// Group partition loads in progress: a transaction partition loads only once this is 0,
    /// since its resumed markers for `__consumer_offsets` need pending offsets in memory.
    group_loads: Arc<watch::Sender<usize>>,
}

/// Decrements the group-load count when its load ends or is aborted.
struct GroupLoadGuard(Arc<watch::Sender<usize>>);

impl Drop for GroupLoadGuard {
    fn drop(&mut self) {
        self.0.send_modify(|loads| *loads = loads.saturating_sub(1));
    }
}

impl CoordinatorLeadership {
    pub fn new(node_id: i32) -> CoordinatorLeadership {
        CoordinatorLeadership {
            node_id,
            led: Mutex::new(HashMap::new()),
            group_loads: Arc::new(watch::channel(0).0),
        }
    }

    /// Loads the coordinator partitions the served image names this broker leader of (at an
    /// epoch not loaded yet) and unloads those it no longer leads. `current` gives the served
    /// image and whether this broker leads nothing yet (not caught up with the quorum: it
    /// unloads everything); it is read under the lock, so concurrent calls apply in order and
    /// the last one applies the latest state. Must run inside the tokio runtime.
    pub fn follow(
        &self,
        current: impl FnOnce() -> (Arc<MetadataImage>, bool),
        groups: &GroupCoordinator,
        txn: &TransactionCoordinator,
        shutdown: &watch::Receiver<bool>,
    ) {
        let mut led = lock(&self.led);
        let (image, leads_nothing) = current();
        for topic in [OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC] {
            let elected = if leads_nothing {
                HashMap::new()
            } else {
                self.led_partitions(&image, topic)
            };
            led.retain(|&(led_topic, partition), current| {
                if led_topic != topic || elected.contains_key(&partition) {
                    return true;
                }
                current.load.abort();
                tracing::info!(
                    partition,
                    leader_epoch = current.leader_epoch,
                    "no longer leading {topic}: unloading its coordinator partition"
                );
                if topic == OFFSETS_TOPIC {
                    groups.unload_partition(partition);
                } else {
                    txn.unload_partition(partition);
                }
                false
            });
            for (partition, leader_epoch) in elected {
                if led
                    .get(&(topic, partition))
                    .is_some_and(|current| current.leader_epoch == leader_epoch)
                {
                    continue;
                }
                if let Some(stale) = led.remove(&(topic, partition)) {
                    stale.load.abort();
                }
                let started =
                    self.start_load(topic, partition, leader_epoch, groups, txn, shutdown);
                led.insert((topic, partition), started);
            }
        }
    }

    /// Waits, at most `timeout`, until every partition of `topic` led here has loaded.
    pub async fn wait_loaded(&self, topic: &str, timeout: Duration) {
        let loads: Vec<watch::Receiver<bool>> = lock(&self.led)
            .iter()
            .filter(|((led_topic, _), _)| *led_topic == topic)
            .map(|(_, led)| led.loaded.clone())
            .collect();
        let all = async {
            for mut loaded in loads {
                let _ = loaded.wait_for(|loaded| *loaded).await;
            }
        };
        let _ = tokio::time::timeout(timeout, all).await;
    }

    /// The partitions of `topic` this broker leads, with their leader epochs.
    fn led_partitions(&self, image: &MetadataImage, topic: &str) -> HashMap<i32, i32> {
        image.topic(topic).map_or_else(HashMap::new, |info| {
            info.partitions
                .iter()
                .filter(|partition| partition.leader == self.node_id)
                .map(|partition| (partition.partition, partition.leader_epoch))
                .collect()
        })
    }

    /// Marks `partition` loading (synchronously, so no request answers NOT_COORDINATOR from
    /// now on) and loads it in the background, retrying while its log cannot be read.
    fn start_load(
        &self,
        topic: &'static str,
        partition: i32,
        leader_epoch: i32,
        groups: &GroupCoordinator,
        txn: &TransactionCoordinator,
        shutdown: &watch::Receiver<bool>,
    ) -> Led {
        tracing::info!(
            partition,
            leader_epoch,
            "leading {topic}: loading its coordinator partition"
        );
        let (loaded_sender, loaded) = watch::channel(false);
        let shutdown = shutdown.clone();
        let load = if topic == OFFSETS_TOPIC {
            groups.begin_loading([partition]);
            self.group_loads.send_modify(|loads| *loads += 1);
            let guard = GroupLoadGuard(self.group_loads.clone());
            let groups = groups.clone();
            tokio::spawn(async move {
                let _guard = guard;
                crate::state::load_with_retry(topic, partition, shutdown, move || {
                    let groups = groups.clone();
                    async move { groups.load_partition(partition).await }
                })
                .await;
                loaded_sender.send_replace(true);
            })
        } else {
            txn.begin_loading([partition]);
            let mut group_loads = self.group_loads.subscribe();
            let txn = txn.clone();
            tokio::spawn(async move {
                if group_loads.wait_for(|loads| *loads == 0).await.is_err() {
                    return;
                }
                crate::state::load_with_retry(topic, partition, shutdown, move || {
                    let txn = txn.clone();
                    async move { txn.load_partition(partition, leader_epoch).await }
                })
                .await;
                loaded_sender.send_replace(true);
            })
        };
        Led {
            leader_epoch,
            load: load.abort_handle(),
            loaded,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
