//! The seam to storage: the broker implements [`OffsetsStore`] on top of its
//! `__consumer_offsets` partition logs; [`MemoryStore`] implements it for tests.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::watch;

use crate::error::StoreError;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One record of `__consumer_offsets`: a key and a value, `None` being a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub key: Bytes,
    pub value: Option<Bytes>,
}

/// Durable storage of the coordinator's records, one log per `__consumer_offsets` partition.
///
/// **Ordering contract.** `append` must fix the position of `records` relative to every other
/// `append` on the same partition *before it returns* (e.g. by pushing onto a per-partition
/// writer queue); the returned future only waits for durability. The coordinator calls `append`
/// while holding the group's lock, so the log order equals the order in which the coordinator
/// decided the writes, and replaying the log rebuilds exactly the state it acknowledged.
///
/// **Durability contract.** The future resolves `Ok` only once the records are durable per the
/// partition's flush policy (the coordinator acknowledges a commit to the client only then),
/// and the records of one call must be appended atomically (one batch: all or none).
pub trait OffsetsStore: Send + Sync + 'static {
    fn append(
        &self,
        partition: i32,
        records: Vec<StoredRecord>,
    ) -> BoxFuture<'static, Result<(), StoreError>>;

    /// Every record of the partition from its log start up to its end, in offset order.
    fn read_all(&self, partition: i32)
        -> BoxFuture<'static, Result<Vec<StoredRecord>, StoreError>>;
}

/// An in-memory store for tests: appends are ordered at call time; durability can be held back
/// (`hold_durability`) and failures injected (`fail_appends`).
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<MemoryInner>,
}

struct MemoryInner {
    partitions: Mutex<HashMap<i32, Vec<StoredRecord>>>,
    failure: Mutex<Option<StoreError>>,
    durable_gate: watch::Sender<bool>,
}

impl Default for MemoryStore {
    fn default() -> MemoryStore {
        MemoryStore::new()
    }
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        let (durable_gate, _) = watch::channel(true);
        MemoryStore {
            inner: Arc::new(MemoryInner {
                partitions: Mutex::new(HashMap::new()),
                failure: Mutex::new(None),
                durable_gate,
            }),
        }
    }

    /// While held, appends are recorded but their futures do not resolve.
    pub fn hold_durability(&self, held: bool) {
        self.inner.durable_gate.send_replace(!held);
    }

    /// Makes every later append fail with `error` (and write nothing) until cleared with `None`.
    pub fn fail_appends(&self, error: Option<StoreError>) {
        *lock(&self.inner.failure) = error;
    }

    /// A copy of one partition's records.
    pub fn records(&self, partition: i32) -> Vec<StoredRecord> {
        lock(&self.inner.partitions)
            .get(&partition)
            .cloned()
            .unwrap_or_default()
    }

    /// Drops the first `count` records of a partition (what `delete_records_before` does to a log).
    pub fn delete_records_before(&self, partition: i32, count: usize) {
        if let Some(records) = lock(&self.inner.partitions).get_mut(&partition) {
            records.drain(..count.min(records.len()));
        }
    }

    /// Partitions that hold at least one record.
    pub fn partitions(&self) -> Vec<i32> {
        let mut partitions: Vec<i32> = lock(&self.inner.partitions).keys().copied().collect();
        partitions.sort_unstable();
        partitions
    }
}

impl OffsetsStore for MemoryStore {
    fn append(
        &self,
        partition: i32,
        records: Vec<StoredRecord>,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        if let Some(error) = lock(&self.inner.failure).clone() {
            return Box::pin(async move { Err(error) });
        }
        lock(&self.inner.partitions)
            .entry(partition)
            .or_default()
            .extend(records);
        let mut gate = self.inner.durable_gate.subscribe();
        Box::pin(async move {
            gate.wait_for(|open| *open)
                .await
                .map(|_| ())
                .map_err(|_| StoreError::Unavailable("store dropped".into()))
        })
    }

    fn read_all(
        &self,
        partition: i32,
    ) -> BoxFuture<'static, Result<Vec<StoredRecord>, StoreError>> {
        let records = self.records(partition);
        Box::pin(async move { Ok(records) })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
