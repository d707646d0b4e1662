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

    /// Appends TxnOffsetCommit records as one transactional batch of the producer (same
    /// ordering and durability contracts as `append`); they count once the transaction
    /// coordinator's COMMIT marker follows them in the log.
    fn append_transactional(
        &self,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        records: Vec<StoredRecord>,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        let _ = (partition, producer_id, producer_epoch, records);
        Box::pin(async {
            Err(StoreError::Failed(
                "this store does not support transactional offsets".into(),
            ))
        })
    }

    /// Like `read_all` with transactions resolved (`batch::TxnResolver`): committed
    /// transactional records where their marker stands, aborted ones dropped, and those of
    /// transactions without a marker yet returned per producer id.
    fn read_all_resolved(
        &self,
        partition: i32,
    ) -> BoxFuture<'static, Result<LoadedRecords, StoreError>> {
        let read = self.read_all(partition);
        Box::pin(async move {
            Ok(LoadedRecords {
                records: read.await?,
                pending: HashMap::new(),
            })
        })
    }
}

/// A partition's records as the loader sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadedRecords {
    pub records: Vec<StoredRecord>,
    /// Transactional records whose transaction has no marker yet, per producer id.
    pub pending: HashMap<i64, Vec<StoredRecord>>,
}

/// An in-memory store for tests: appends are ordered at call time; durability can be held back
/// (`hold_durability`) and failures injected (`fail_appends`).
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<MemoryInner>,
}

struct MemoryInner {
    partitions: Mutex<HashMap<i32, Vec<StoredRecord>>>,
    /// Transactional records without a marker yet, per partition and producer id.
    open_transactions: Mutex<HashMap<(i32, i64), Vec<StoredRecord>>>,
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
                open_transactions: Mutex::new(HashMap::new()),
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

    /// What the log cleaner does to a partition of `__consumer_offsets`: only the last record
    /// of each key stays (tombstones included), in log order.
    pub fn compact(&self, partition: i32) {
        if let Some(records) = lock(&self.inner.partitions).get_mut(&partition) {
            let mut last_index = HashMap::new();
            for (index, record) in records.iter().enumerate() {
                last_index.insert(record.key.clone(), index);
            }
            let mut index = 0;
            records.retain(|record| {
                let keep = last_index.get(&record.key) == Some(&index);
                index += 1;
                keep
            });
        }
    }

    /// What a COMMIT (`commit`) or ABORT marker does to the producer's open transactional
    /// records of `partition`: appended to the partition's records, or dropped.
    pub fn write_marker(&self, partition: i32, producer_id: i64, commit: bool) {
        let open = lock(&self.inner.open_transactions).remove(&(partition, producer_id));
        if let (Some(records), true) = (open, commit) {
            lock(&self.inner.partitions)
                .entry(partition)
                .or_default()
                .extend(records);
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

    fn append_transactional(
        &self,
        partition: i32,
        producer_id: i64,
        _producer_epoch: i16,
        records: Vec<StoredRecord>,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        if let Some(error) = lock(&self.inner.failure).clone() {
            return Box::pin(async move { Err(error) });
        }
        lock(&self.inner.open_transactions)
            .entry((partition, producer_id))
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

    fn read_all_resolved(
        &self,
        partition: i32,
    ) -> BoxFuture<'static, Result<LoadedRecords, StoreError>> {
        let records = self.records(partition);
        let pending = lock(&self.inner.open_transactions)
            .iter()
            .filter(|((p, _), _)| *p == partition)
            .map(|((_, producer_id), records)| (*producer_id, records.clone()))
            .collect();
        Box::pin(async move { Ok(LoadedRecords { records, pending }) })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
