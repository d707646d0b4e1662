//! The transaction coordinator's seams over the broker: `__transaction_state` storage (the
//! same ordered, group-committed writer as `__consumer_offsets`), transaction markers written
//! straight into the partition logs, and producer id blocks reserved through quill-meta.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::{Arc, OnceLock, Weak};

use quill_group::{GroupCoordinator, OffsetsStore, StoredRecord};
use quill_log::{ControlMarker, LogError};
use quill_txn::{
    BoxFuture, MarkerError, MarkerRequest, MarkerResults, ProducerIdSource, StoreError, TxnMarkers,
    TxnRecord, TxnResult, TxnStore, TRANSACTION_STATE_TOPIC,
};

use crate::clock;
use crate::marker_channel::MarkerChannels;
use crate::offsets_store::{LogOffsetsStore, OFFSETS_TOPIC};
use crate::partitions::{Partition, PartitionError, PartitionManager};
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

/// Writes COMMIT/ABORT markers. A partition this broker leads gets its marker straight in its
/// log (for a `__consumer_offsets` partition the group coordinator first publishes or drops the
/// producer's pending offsets); a partition another broker leads gets it through WriteTxnMarkers
/// to that leader ([`MarkerChannels`], batched per broker). Leaders are resolved from the served
/// image on every call, so the coordinator's retry of a failed partition follows a new leader.
pub struct LogTxnMarkers {
    partitions: Arc<PartitionManager>,
    groups: GroupCoordinator,
    channels: Arc<MarkerChannels>,
    state: OnceLock<Weak<BrokerState>>,
}

impl LogTxnMarkers {
    pub fn new(partitions: Arc<PartitionManager>, groups: GroupCoordinator) -> LogTxnMarkers {
        LogTxnMarkers {
            partitions,
            groups,
            channels: Arc::new(MarkerChannels::default()),
            state: OnceLock::new(),
        }
    }

    /// Holds the broker state weakly (it owns the coordinator that owns this), set once it
    /// exists; until then markers for other brokers' partitions are retried.
    pub fn attach(&self, state: &Arc<BrokerState>) {
        let _ = self.state.set(Arc::downgrade(state));
        self.channels.attach(state);
    }
}

/// Where one partition's marker goes.
enum MarkerRoute {
    Local,
    Remote(i32),
    Unavailable(String),
}

fn route_marker(state: Option<&Arc<BrokerState>>, topic: &str, index: i32) -> MarkerRoute {
    let Some(state) = state else {
        return MarkerRoute::Unavailable("broker starting".into());
    };
    let image = state.image();
    match image.topic(topic).and_then(|info| info.partition(index)) {
        // Not in the image: deleted (the local path finds no log and drops the marker).
        None => MarkerRoute::Local,
        // Led here but its log is not open (yet, or a failed open being retried): wait for
        // it rather than drop the marker, which would leave the transaction open there.
        Some(info)
            if info.leader == state.config.node_id
                && state.partitions.get(topic, index).is_none() =>
        {
            MarkerRoute::Unavailable(format!("{topic}-{index} is not open here yet"))
        }
        Some(info) if info.leader == state.config.node_id => MarkerRoute::Local,
        Some(info) if info.leader == quill_meta::NO_LEADER => {
            MarkerRoute::Unavailable(format!("{topic}-{index} has no leader"))
        }
        Some(info) => MarkerRoute::Remote(info.leader),
    }
}

impl TxnMarkers for LogTxnMarkers {
    fn write_markers(&self, request: MarkerRequest) -> BoxFuture<'static, MarkerResults> {
        let partitions = self.partitions.clone();
        let groups = self.groups.clone();
        let state = self.state.get().and_then(Weak::upgrade);
        let channels = self.channels.clone();
        Box::pin(async move {
            let mut results = Vec::with_capacity(request.partitions.len());
            let mut local = Vec::new();
            let mut remote: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
            for (topic, index) in &request.partitions {
                match route_marker(state.as_ref(), topic, *index) {
                    MarkerRoute::Local => local.push((topic.clone(), *index)),
                    MarkerRoute::Remote(leader) => remote
                        .entry(leader)
                        .or_default()
                        .push((topic.clone(), *index)),
                    MarkerRoute::Unavailable(reason) => {
                        results.push(((topic.clone(), *index), Err(MarkerError::Retriable(reason))))
                    }
                }
            }
            drop(state);
            // Queued first, so the other brokers write while the local markers are written.
            let queued: Vec<_> = remote
                .into_iter()
                .map(|(leader, leader_partitions)| {
                    let for_leader = MarkerRequest {
                        partitions: leader_partitions,
                        ..request.clone()
                    };
                    channels.send(leader, for_leader)
                })
                .collect();
            let local = local.into_iter().map(|tp| (&request, tp)).collect();
            results.extend(write_markers_locally(&partitions, &groups, local).await);
            for reply in queued {
                results.extend(reply.await);
            }
            results
        })
    }
}

/// A marker appended to its partition's log, not yet known to be durable.
pub struct AppendedMarker {
    partition: Arc<Partition>,
    end_offset: i64,
}

/// Writes markers to several partitions as Kafka's leader does: every marker is appended first
/// (in the given order, so markers of one partition keep it), then each is awaited durable, so
/// one group-committed fsync covers most of them instead of one fsync after another.
pub async fn write_markers_locally(
    partitions: &PartitionManager,
    groups: &GroupCoordinator,
    markers: Vec<(&MarkerRequest, (String, i32))>,
) -> MarkerResults {
    let mut appended = Vec::with_capacity(markers.len());
    for (request, (topic, index)) in markers {
        let result = append_marker(partitions, request, &topic, index).await;
        appended.push((request, (topic, index), result));
    }
    let mut results = Vec::with_capacity(appended.len());
    for (request, (topic, index), result) in appended {
        let result = match result {
            Ok(marker) => complete_marker(groups, request, &topic, index, marker).await,
            Err(error) => Err(error),
        };
        results.push(((topic, index), result));
    }
    results
}

/// Appends the COMMIT/ABORT control batch of `request` to one partition led here.
pub async fn append_marker(
    partitions: &PartitionManager,
    request: &MarkerRequest,
    topic: &str,
    index: i32,
) -> Result<AppendedMarker, MarkerError> {
    let Some(partition) = partitions.get(topic, index) else {
        return Err(MarkerError::UnknownPartition);
    };
    let marker = if request.result == TxnResult::Commit {
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
    Ok(AppendedMarker {
        partition,
        end_offset: appended.last_offset + 1,
    })
}

/// Waits until an appended marker is durable; for a `__consumer_offsets` partition the group
/// coordinator then publishes (commit) or drops (abort) the producer's pending offsets.
pub async fn complete_marker(
    groups: &GroupCoordinator,
    request: &MarkerRequest,
    topic: &str,
    index: i32,
    appended: AppendedMarker,
) -> Result<(), MarkerError> {
    appended
        .partition
        .wait_committed(appended.end_offset)
        .await
        .map_err(marker_error)?;
    if topic == OFFSETS_TOPIC {
        // The marker is durable: the transaction's offsets (already in the log before it) now
        // count, as a reload would conclude too.
        groups
            .complete_transaction(
                index,
                request.producer_id,
                request.result == TxnResult::Commit,
            )
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
        PartitionError::Log(LogError::InvalidProducerEpoch(reason)) => {
            tracing::warn!(%reason, "transaction marker refused as stale");
            MarkerError::Stale {
                coordinator_fenced: false,
                reason,
            }
        }
        PartitionError::Log(LogError::CoordinatorFenced(reason)) => {
            tracing::warn!(%reason, "transaction marker refused as stale");
            MarkerError::Stale {
                coordinator_fenced: true,
                reason,
            }
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
