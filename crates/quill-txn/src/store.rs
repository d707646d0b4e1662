//! The seams to the broker: [`TxnStore`] (the `__transaction_state` logs), [`TxnMarkers`]
//! (COMMIT/ABORT control batches in data partitions and `__consumer_offsets`) and
//! [`ProducerIdSource`] (producer id blocks through the metadata log), with in-memory
//! implementations for tests.

use std::collections::HashMap;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use crate::error::{MarkerError, StoreError};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One record of `__transaction_state`: a key and a value, `None` being a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnRecord {
    pub key: Bytes,
    pub value: Option<Bytes>,
}

/// Durable storage of the coordinator's records, one log per `__transaction_state` partition.
///
/// Same contracts as `quill_group::OffsetsStore`: `append` fixes the records' position in the
/// partition's log before it returns (the coordinator calls it under the partition's lock, so
/// the log order is the decision order); the future resolves `Ok` only once they are durable.
pub trait TxnStore: Send + Sync + 'static {
    fn append(
        &self,
        partition: i32,
        records: Vec<TxnRecord>,
    ) -> BoxFuture<'static, Result<(), StoreError>>;

    /// Every record of the partition from its log start to its end, in offset order.
    fn read_all(&self, partition: i32) -> BoxFuture<'static, Result<Vec<TxnRecord>, StoreError>>;
}

/// Which way a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnResult {
    Commit,
    Abort,
}

/// Markers to write for one transaction: one control batch per partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerRequest {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub coordinator_epoch: i32,
    pub result: TxnResult,
    /// Data partitions and, for transactional offset commits, `__consumer_offsets` partitions
    /// (where the marker also makes the group coordinator publish or drop pending offsets).
    pub partitions: Vec<(String, i32)>,
}

/// Each partition of a [`MarkerRequest`] with the outcome of its marker write.
pub type MarkerResults = Vec<((String, i32), Result<(), MarkerError>)>;

/// Writes transaction markers. Each partition's result must be reported only once the marker
/// is durable: the coordinator then writes CompleteCommit/CompleteAbort and forgets the
/// partition, so a marker lost after that would leave its transaction open forever.
pub trait TxnMarkers: Send + Sync + 'static {
    fn write_markers(&self, request: MarkerRequest) -> BoxFuture<'static, MarkerResults>;
}

/// Reserves blocks of producer ids that are never handed out again, even after a restart.
pub trait ProducerIdSource: Send + Sync + 'static {
    fn allocate_block(&self) -> BoxFuture<'static, Result<Range<i64>, StoreError>>;
}

/// In-memory `__transaction_state` for tests; failures can be injected.
#[derive(Clone, Default)]
pub struct MemoryTxnStore {
    partitions: Arc<Mutex<HashMap<i32, Vec<TxnRecord>>>>,
    failure: Arc<Mutex<Option<StoreError>>>,
}

impl MemoryTxnStore {
    pub fn records(&self, partition: i32) -> Vec<TxnRecord> {
        lock(&self.partitions)
            .get(&partition)
            .cloned()
            .unwrap_or_default()
    }

    pub fn fail_appends(&self, error: Option<StoreError>) {
        *lock(&self.failure) = error;
    }
}

impl TxnStore for MemoryTxnStore {
    fn append(
        &self,
        partition: i32,
        records: Vec<TxnRecord>,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        if let Some(error) = lock(&self.failure).clone() {
            return Box::pin(async move { Err(error) });
        }
        lock(&self.partitions)
            .entry(partition)
            .or_default()
            .extend(records);
        Box::pin(async { Ok(()) })
    }

    fn read_all(&self, partition: i32) -> BoxFuture<'static, Result<Vec<TxnRecord>, StoreError>> {
        let records = self.records(partition);
        Box::pin(async move { Ok(records) })
    }
}

/// Records every marker request; partitions listed in `failing` fail (retriably) until cleared.
#[derive(Clone, Default)]
pub struct MemoryMarkers {
    written: Arc<Mutex<Vec<MarkerRequest>>>,
    failing: Arc<Mutex<Vec<(String, i32)>>>,
}

impl MemoryMarkers {
    pub fn written(&self) -> Vec<MarkerRequest> {
        lock(&self.written).clone()
    }

    pub fn fail_partitions(&self, partitions: Vec<(String, i32)>) {
        *lock(&self.failing) = partitions;
    }
}

impl TxnMarkers for MemoryMarkers {
    fn write_markers(&self, request: MarkerRequest) -> BoxFuture<'static, MarkerResults> {
        let failing = lock(&self.failing).clone();
        let results = request
            .partitions
            .iter()
            .map(|tp| {
                let result = if failing.contains(tp) {
                    Err(MarkerError::Retriable("injected".into()))
                } else {
                    Ok(())
                };
                (tp.clone(), result)
            })
            .collect();
        let mut written_request = request;
        written_request
            .partitions
            .retain(|tp| !failing.contains(tp));
        if !written_request.partitions.is_empty() {
            lock(&self.written).push(written_request);
        }
        Box::pin(async move { results })
    }
}

/// Producer id blocks of `block_size` from a counter (what quill-meta does durably).
#[derive(Clone)]
pub struct MemoryProducerIds {
    next: Arc<Mutex<i64>>,
    block_size: i64,
}

impl MemoryProducerIds {
    pub fn new(first: i64, block_size: i64) -> MemoryProducerIds {
        MemoryProducerIds {
            next: Arc::new(Mutex::new(first)),
            block_size,
        }
    }
}

impl ProducerIdSource for MemoryProducerIds {
    fn allocate_block(&self) -> BoxFuture<'static, Result<Range<i64>, StoreError>> {
        let mut next = lock(&self.next);
        let first = *next;
        *next = first.saturating_add(self.block_size);
        let block = first..*next;
        Box::pin(async move { Ok(block) })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
