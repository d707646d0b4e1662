//! The transaction coordinator's seams over the broker: `__transaction_state` storage (the
//! same ordered, group-committed writer as `__consumer_offsets`), transaction markers written
//! straight into the partition logs, and producer id blocks reserved through quill-meta.

use std::ops::Range;
use std::sync::{Arc, OnceLock, Weak};

use quill_group::{GroupCoordinator, OffsetsStore, StoredRecord};
use quill_log::{ControlMarker, LogError};
use quill_txn::{
    BoxFuture, MarkerError, MarkerRequest, MarkerResults, ProducerIdSource, StoreError, TxnMarkers,
    TxnRecord, TxnResult, TxnStore, TRANSACTION_STATE_TOPIC,
};

use crate::clock;
use crate::offsets_store::{LogOffsetsStore, OFFSETS_TOPIC};
use crate::partitions::{PartitionError, PartitionManager};
use crate::state::BrokerState;

/// `__transaction_state` over its partition logs.
pub struct LogTxnStore {
    writer: LogOffsetsStore,
}

impl LogTxnStore {
    pub fn new(partitions: Arc<PartitionManager>) -> LogTxnStore {
        LogTxnStore {
            writer: LogOffsetsStore::for_topic(partitions, TRANSACTION_STATE_TOPIC),
        }
    }
}

fn txn_store_error(error: quill_group::StoreError) -> StoreError {
    match error {
        quill_group::StoreError::NotLeader(partition) => StoreError::NotLeader(partition),
        quill_group::StoreError::Unavailable(reason) => StoreError::Unavailable(reason),
        quill_group::StoreError::Failed(reason) => StoreError::Failed(reason),
    }
}

impl TxnStore for LogTxnStore {
    fn append(
        &self,
        partition: i32,
        records: Vec<TxnRecord>,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        let records = records
            .into_iter()
            .map(|record| StoredRecord {
                key: record.key,
                value: record.value,
            })
            .collect();
        let written = self.writer.append(partition, records);
        Box::pin(async move { written.await.map_err(txn_store_error) })
    }

    fn read_all(&self, partition: i32) -> BoxFuture<'static, Result<Vec<TxnRecord>, StoreError>> {
        let read = self.writer.read_all(partition);
        Box::pin(async move {
            let records = read.await.map_err(txn_store_error)?;
            Ok(records
                .into_iter()
                .map(|record| TxnRecord {
                    key: record.key,
                    value: record.value,
                })
                .collect())
        })
    }
}

/// Writes COMMIT/ABORT markers into partition logs. For a `__consumer_offsets` partition the
/// group coordinator first publishes (commit) or drops (abort) the producer's pending offsets.
pub struct LogTxnMarkers {
    partitions: Arc<PartitionManager>,
    groups: GroupCoordinator,
}

impl LogTxnMarkers {
    pub fn new(partitions: Arc<PartitionManager>, groups: GroupCoordinator) -> LogTxnMarkers {
        LogTxnMarkers { partitions, groups }
    }
}

impl TxnMarkers for LogTxnMarkers {
    fn write_markers(&self, request: MarkerRequest) -> BoxFuture<'static, MarkerResults> {
        let partitions = self.partitions.clone();
        let groups = self.groups.clone();
        Box::pin(async move {
            let mut results = Vec::with_capacity(request.partitions.len());
            for (topic, index) in &request.partitions {
                let result = write_marker(&partitions, &groups, &request, topic, *index).await;
                results.push(((topic.clone(), *index), result));
            }
            results
        })
    }
}

/// Writes the markers of a WriteTxnMarkers request (or the coordinator's) to one partition and
/// waits until the marker is durable.
pub async fn write_marker(
    partitions: &PartitionManager,
    groups: &GroupCoordinator,
    request: &MarkerRequest,
    topic: &str,
    index: i32,
) -> Result<(), MarkerError> {
    let Some(partition) = partitions.get(topic, index) else {
        return Err(MarkerError::UnknownPartition);
    };
    let commit = request.result == TxnResult::Commit;
    let marker = if commit {
        ControlMarker::Commit
    } else {
        ControlMarker::Abort
    };
    let appended = partition
        .append_control(
            request.producer_id,
            request.producer_epoch,
            marker,
            request.coordinator_epoch,
            clock::now_ms(),
        )
        .await
        .map_err(marker_error)?;
    partition
        .wait_durable(appended.last_offset + 1)
        .await
        .map_err(marker_error)?;
    if topic == OFFSETS_TOPIC {
        // The marker is durable: the transaction's offsets (already in the log before it) now
        // count, as a reload would conclude too.
        groups
            .complete_transaction(index, request.producer_id, commit)
            .await
            .map_err(|error| MarkerError::Retriable(error.to_string()))?;
    }
    Ok(())
}

fn marker_error(error: PartitionError) -> MarkerError {
    match error {
        PartitionError::Gone => MarkerError::UnknownPartition,
        // A marker older than the partition's producer or coordinator epoch: a newer one
        // already ended that transaction here, retrying cannot succeed.
        PartitionError::Log(LogError::InvalidProducerEpoch(reason))
        | PartitionError::Log(LogError::CoordinatorFenced(reason)) => {
            tracing::warn!(%reason, "transaction marker refused as stale");
            MarkerError::UnknownPartition
        }
        other => MarkerError::Retriable(other.to_string()),
    }
}

/// Producer id blocks through the metadata log (`AllocateProducerIds`), so ids are never handed
/// out twice, even across restarts. Holds the broker state weakly (the state owns the
/// coordinator that owns this), set once the state exists.
#[derive(Default)]
pub struct MetaProducerIds {
    state: OnceLock<Weak<BrokerState>>,
}

impl MetaProducerIds {
    pub fn attach(&self, state: &Arc<BrokerState>) {
        let _ = self.state.set(Arc::downgrade(state));
    }
}

impl ProducerIdSource for MetaProducerIds {
    fn allocate_block(&self) -> BoxFuture<'static, Result<Range<i64>, StoreError>> {
        let state = self.state.get().and_then(Weak::upgrade);
        Box::pin(async move {
            let state = state.ok_or_else(|| StoreError::Unavailable("broker starting".into()))?;
            state
                .allocate_producer_ids()
                .await
                .map_err(|error| StoreError::Unavailable(error.to_string()))
        })
    }
}
