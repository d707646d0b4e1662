//! Fetch: read whole batches up to the high watermark, long-polling (woken by appends through
//! each partition's end-offset watch) until `min_bytes` are available or `max_wait_ms` passes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId, TopicName};
use quill_meta::Uuid;
use tokio::sync::watch;

use crate::partitions::Partition;
use crate::state::BrokerState;

/// Fetch v13 is the first version addressing topics by id.
const FIRST_VERSION_WITH_TOPIC_IDS: i16 = 13;
/// Fetch v10 is the first version that may return zstd batches (KIP-110).
const FIRST_ZSTD_FETCH_VERSION: i16 = 10;
/// `isolation_level` of read_committed consumers.
const READ_COMMITTED: i8 = 1;

/// One requested partition, resolved against the metadata image once per request.
struct FetchTarget {
    topic_index: usize,
    partition_index: i32,
    fetch_offset: i64,
    partition_max_bytes: usize,
    /// isolation_level = 1 (v4+): only data below the last stable offset, plus the aborted
    /// transactions in what is returned.
    read_committed: bool,
    /// `Err(error code)` when the topic/partition is unknown.
    partition: Result<Arc<Partition>, i16>,
    /// A follower's fetch: reads up to the log end, not the high watermark.
    from_replica: bool,
    /// A follower's epoch of its last fetched batch (v12+; -1 unknown).
    last_fetched_epoch: i32,
    /// Set when the follower's log diverges from this one: (epoch, end offset) to answer.
    diverging_epoch: Option<(i32, i64)>,
}

/// Fetch v15 moved the follower's id into `replica_state` (KIP-903).
const FIRST_VERSION_WITH_REPLICA_STATE: i16 = 15;

/// The broker id of a follower's Fetch, or `None` for a consumer (negative ids: -1 consumers,
/// -2 Kafka's debugging consumer, which Quill serves as a consumer).
fn fetching_replica(request: &FetchRequest, api_version: i16) -> Option<i32> {
    let replica_id = if api_version >= FIRST_VERSION_WITH_REPLICA_STATE {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    };
    (replica_id >= 0).then_some(replica_id)
}

/// Kafka's checks of a follower's Fetch on the leader (`Partition.fetchRecords` for a
/// follower): the fetching broker must be a replica of the partition (else
/// NOT_LEADER_OR_FOLLOWER); with a `last_fetched_epoch` (v12+) the follower's log must not
/// diverge from this one — if that epoch ends here below the fetch offset, or is unknown
/// here, the answer is the diverging epoch and its end (KIP-595/KAFKA-12896), no records, and
/// the fetch proves nothing. Otherwise the fetch offset is recorded as durable on that
/// follower (Quill's rule: a follower fetches on only once what it appended is durable), which
/// may move the high watermark.
async fn check_replica_fetch(target: &mut FetchTarget, replica_id: i32) {
    let Ok(partition) = &target.partition else {
        return;
    };
    let partition = partition.clone();
    if partition.replica_state().follower(replica_id).is_none() {
        target.partition = Err(ResponseError::NotLeaderOrFollower.code());
        return;
    }
    let offsets = partition.offsets();
    if target.fetch_offset < offsets.log_start_offset
        || target.fetch_offset > offsets.log_end_offset
    {
        return; // answered OFFSET_OUT_OF_RANGE by the read; proves nothing about the follower
    }
    if target.last_fetched_epoch >= 0 {
        match partition
            .end_offset_for_epoch(target.last_fetched_epoch)
            .await
        {
            Ok(Some((epoch, end_offset)))
                if epoch < target.last_fetched_epoch || end_offset < target.fetch_offset =>
            {
                target.diverging_epoch = Some((epoch, end_offset));
                return;
            }
            Ok(Some(_)) => {}
            Ok(None) => {
                target.partition = Err(ResponseError::OffsetOutOfRange.code());
                return;
            }
            Err(error) => {
                target.partition = Err(error.kafka_error_code());
                return;
            }
        }
    }
    if !partition.record_follower_fetch(
        replica_id,
        target.fetch_offset,
        crate::clock::monotonic_ms(),
    ) {
        target.partition = Err(ResponseError::NotLeaderOrFollower.code());
    }
}

pub async fn handle(state: &BrokerState, request: FetchRequest, api_version: i16) -> FetchResponse {
    if request.session_id != 0 {
        // We never hand out sessions (we answer session id 0), so an incremental fetch refers
        // to a session that does not exist; the client falls back to a full fetch.
        return FetchResponse::default()
            .with_error_code(ResponseError::FetchSessionIdNotFound.code())
            .with_session_id(0);
    }
    let uses_topic_ids = api_version >= FIRST_VERSION_WITH_TOPIC_IDS;
    let image = state.image();
    let mut topic_keys: Vec<(TopicName, Uuid)> = Vec::with_capacity(request.topics.len());
    // Each requested topic's name once resolved (for the leader hints of the response).
    let mut topic_names: Vec<Option<String>> = Vec::with_capacity(request.topics.len());
    let mut targets = Vec::new();
    let replica = fetching_replica(&request, api_version);
    // Followers replicate everything; isolation is a consumer's concern.
    let read_committed = replica.is_none() && request.isolation_level == READ_COMMITTED;
    for (topic_index, topic) in request.topics.iter().enumerate() {
        let resolved_name = if uses_topic_ids {
            image
                .topic_by_id(&topic.topic_id)
                .map(|info| info.name.clone())
        } else {
            Some(topic.topic.0.to_string())
        };
        let unknown_code = if uses_topic_ids {
            ResponseError::UnknownTopicId.code()
        } else {
            ResponseError::UnknownTopicOrPartition.code()
        };
        topic_keys.push((topic.topic.clone(), topic.topic_id));
        topic_names.push(resolved_name.clone());
        for requested in &topic.partitions {
            let partition = match resolved_name.as_deref() {
                None => Err(unknown_code),
                Some(name) => super::led_partition(state, &image, name, requested.partition)
                    .map_err(|code| {
                        if code == ResponseError::NotLeaderOrFollower.code() {
                            code
                        } else {
                            unknown_code
                        }
                    }),
            }
            .and_then(|partition| {
                let name = resolved_name.as_deref().unwrap_or_default();
                super::check_leader_epoch(
                    &image,
                    name,
                    requested.partition,
                    requested.current_leader_epoch,
                )
                .map(|()| partition)
            })
            .and_then(|partition| refuse_zstd_below_v10(partition, api_version));
            targets.push(FetchTarget {
                topic_index,
                partition_index: requested.partition,
                fetch_offset: requested.fetch_offset,
                partition_max_bytes: usize::try_from(requested.partition_max_bytes.max(0))
                    .unwrap_or(0),
                read_committed,
                partition,
                from_replica: replica.is_some(),
                last_fetched_epoch: requested.last_fetched_epoch,
                diverging_epoch: None,
            });
        }
    }
    if let Some(replica_id) = replica {
        for target in &mut targets {
            check_replica_fetch(target, replica_id).await;
        }
    }

    // Fetch v3+ carries max_bytes; the broker's fetch.max.bytes caps it either way.
    let max_bytes =
        usize::try_from(request.max_bytes.clamp(0, state.config.fetch_max_bytes)).unwrap_or(0);
    let min_bytes = usize::try_from(request.min_bytes.max(0)).unwrap_or(0);
    let max_wait = Duration::from_millis(u64::try_from(request.max_wait_ms.max(0)).unwrap_or(0));
    let deadline = tokio::time::Instant::now() + max_wait;
    // Consumers wait for the high watermark to move, followers for the log end.
    let mut receivers: Vec<watch::Receiver<i64>> = targets
        .iter()
        .filter_map(|target| {
            let partition = target.partition.as_ref().ok()?;
            Some(if target.from_replica {
                partition.subscribe_log_end()
            } else {
                partition.subscribe()
            })
        })
        .collect();
    let mut shutdown = state.shutdown.clone();
    // Counts this request in the Fetch purgatory once it starts to wait.
    let mut waiting = None;

    loop {
        for receiver in &mut receivers {
            receiver.borrow_and_update();
        }
        let (partition_data, total_bytes, any_error) = read_all(&targets, max_bytes).await;
        let done = total_bytes >= min_bytes.max(1)
            || any_error
            || tokio::time::Instant::now() >= deadline
            || *shutdown.borrow()
            || receivers.is_empty();
        if done {
            record_bytes_out(state, &targets, &partition_data);
            let mut response = build_response(topic_keys, &targets, partition_data, uses_topic_ids);
            add_leader_hints(
                &super::LeaderHints::new(image),
                api_version,
                &topic_names,
                &mut response,
            );
            return response;
        }
        waiting.get_or_insert_with(|| state.metrics.waiting(crate::metrics::Waiting::Fetch));
        tokio::select! {
            () = wait_for_any_change(&mut receivers) => {}
            () = tokio::time::sleep_until(deadline) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Kafka's rule (KIP-110): a topic whose `compression.type` is zstd holds only zstd batches,
/// which a Fetch below v10 cannot promise to decode: UNSUPPORTED_COMPRESSION_TYPE. Under
/// `compression.type=producer` zstd batches are returned to any version, as in Kafka.
fn refuse_zstd_below_v10(
    partition: Arc<Partition>,
    api_version: i16,
) -> Result<Arc<Partition>, i16> {
    if api_version < FIRST_ZSTD_FETCH_VERSION && partition.compression_type_is_zstd() {
        return Err(ResponseError::UnsupportedCompressionType.code());
    }
    Ok(partition)
}

/// Kafka's BytesOutPerSec: the record bytes of the response, per topic.
fn record_bytes_out(state: &BrokerState, targets: &[FetchTarget], data: &[PartitionData]) {
    for (target, data) in targets.iter().zip(data) {
        let (Ok(partition), Some(records)) = (&target.partition, &data.records) else {
            continue;
        };
        if !records.is_empty() {
            state
                .metrics
                .record_fetched(&partition.topic, records.len() as u64);
        }
    }
}

/// Reads every target once. Returns per-target data, total bytes and whether any failed.
async fn read_all(targets: &[FetchTarget], max_bytes: usize) -> (Vec<PartitionData>, usize, bool) {
    let mut results = Vec::with_capacity(targets.len());
    let mut total_bytes = 0usize;
    let mut any_error = false;
    for target in targets {
        let data = match &target.partition {
            Err(code) => partition_error(target.partition_index, *code, None),
            Ok(partition) => {
                let remaining = max_bytes.saturating_sub(total_bytes);
                read_partition(partition, target, remaining, total_bytes == 0).await
            }
        };
        total_bytes += data.records.as_ref().map_or(0, Bytes::len);
        // A diverging epoch is an answer the follower needs at once, like an error.
        any_error |= data.error_code != 0 || data.diverging_epoch.epoch >= 0;
        results.push(data);
    }
    (results, total_bytes, any_error)
}

async fn read_partition(
    partition: &Arc<Partition>,
    target: &FetchTarget,
    remaining_bytes: usize,
    is_first_with_data: bool,
) -> PartitionData {
    let offsets = partition.offsets();
    let base = PartitionData::default()
        .with_partition_index(target.partition_index)
        .with_high_watermark(offsets.high_watermark)
        .with_last_stable_offset(offsets.last_stable_offset)
        .with_log_start_offset(offsets.log_start_offset)
        .with_aborted_transactions(target.read_committed.then(Vec::new))
        .with_records(Some(Bytes::new()));
    if let Some((epoch, end_offset)) = target.diverging_epoch {
        return base.with_diverging_epoch(
            kafka_protocol::messages::fetch_response::EpochEndOffset::default()
                .with_epoch(epoch)
                .with_end_offset(end_offset),
        );
    }
    if target.fetch_offset < offsets.log_start_offset
        || target.fetch_offset > offsets.log_end_offset
    {
        return partition_error(
            target.partition_index,
            ResponseError::OffsetOutOfRange.code(),
            Some(offsets),
        );
    }
    // KIP-74 (Kafka's `minOneMessage`): the first partition that returns data gets at least
    // one whole batch even when it exceeds `max_bytes` or the partition's limit; every later
    // partition is held to both limits strictly and gets nothing when its first batch does
    // not fit.
    let budget = target.partition_max_bytes.min(remaining_bytes);
    let visible_end = if target.from_replica {
        offsets.log_end_offset
    } else if target.read_committed {
        offsets.last_stable_offset
    } else {
        offsets.high_watermark
    };
    if target.fetch_offset >= visible_end || (budget == 0 && !is_first_with_data) {
        return base;
    }
    let read = if target.read_committed {
        partition
            .read_committed(target.fetch_offset, budget, is_first_with_data)
            .await
            .map(|(read, aborted)| {
                let aborted = aborted
                    .into_iter()
                    .map(|a| {
                        AbortedTransaction::default()
                            .with_producer_id(ProducerId(a.producer_id))
                            .with_first_offset(a.first_offset)
                    })
                    .collect();
                (read, Some(aborted))
            })
    } else if target.from_replica {
        partition
            .read_to_log_end(target.fetch_offset, budget, is_first_with_data)
            .await
            .map(|read| (read, None))
    } else {
        partition
            .read(target.fetch_offset, budget, is_first_with_data)
            .await
            .map(|read| (read, None))
    };
    match read {
        Ok((read, aborted)) => base
            .with_records(Some(read.bytes))
            .with_aborted_transactions(aborted),
        Err(error) => {
            tracing::debug!(topic = %partition.topic, partition = target.partition_index, %error, "fetch read failed");
            partition_error(
                target.partition_index,
                error.kafka_error_code(),
                Some(partition.offsets()),
            )
        }
    }
}

fn partition_error(
    partition_index: i32,
    error_code: i16,
    offsets: Option<crate::partitions::PartitionOffsets>,
) -> PartitionData {
    let (high_watermark, log_start_offset) = offsets.map_or((-1, -1), |offsets| {
        (offsets.high_watermark, offsets.log_start_offset)
    });
    PartitionData::default()
        .with_partition_index(partition_index)
        .with_error_code(error_code)
        .with_high_watermark(high_watermark)
        .with_last_stable_offset(high_watermark)
        .with_log_start_offset(log_start_offset)
        .with_records(Some(Bytes::new()))
}

fn build_response(
    topic_keys: Vec<(TopicName, Uuid)>,
    targets: &[FetchTarget],
    partition_data: Vec<PartitionData>,
    uses_topic_ids: bool,
) -> FetchResponse {
    let mut topics: Vec<FetchableTopicResponse> = topic_keys
        .into_iter()
        .map(|(name, topic_id)| {
            let response = FetchableTopicResponse::default();
            if uses_topic_ids {
                response.with_topic_id(topic_id)
            } else {
                response.with_topic(name)
            }
        })
        .collect();
    for (target, data) in targets.iter().zip(partition_data) {
        if let Some(topic) = topics.get_mut(target.topic_index) {
            topic.partitions.push(data);
        }
    }
    FetchResponse::default()
        .with_session_id(0)
        .with_responses(topics)
}

/// Fetch v16+ (KIP-951): partitions answered NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH
/// name their current leader and epoch; the response carries those leaders' endpoints.
fn add_leader_hints(
    hints: &super::LeaderHints,
    api_version: i16,
    topic_names: &[Option<String>],
    response: &mut FetchResponse,
) {
    const FIRST_VERSION_WITH_LEADER_HINTS: i16 = 16;
    if api_version < FIRST_VERSION_WITH_LEADER_HINTS {
        return;
    }
    let mut leaders = std::collections::BTreeSet::new();
    for (topic, name) in response.responses.iter_mut().zip(topic_names) {
        let Some(name) = name else { continue };
        for partition in &mut topic.partitions {
            if !super::wants_leader_hint(partition.error_code) {
                continue;
            }
            if let Some((leader, epoch)) = hints.leader(name, partition.partition_index) {
                partition.current_leader =
                    kafka_protocol::messages::fetch_response::LeaderIdAndEpoch::default()
                        .with_leader_id(kafka_protocol::messages::BrokerId(leader))
                        .with_leader_epoch(epoch);
                leaders.insert(leader);
            }
        }
    }
    response.node_endpoints = hints.endpoints(leaders, |node_id, host, port, rack| {
        kafka_protocol::messages::fetch_response::NodeEndpoint::default()
            .with_node_id(node_id)
            .with_host(host)
            .with_port(port)
            .with_rack(rack)
    });
}

/// Completes when any receiver sees a new value (or its sender is gone).
async fn wait_for_any_change(receivers: &mut [watch::Receiver<i64>]) {
    let mut changes: Vec<Pin<Box<dyn Future<Output = ()> + Send + '_>>> = receivers
        .iter_mut()
        .map(|receiver| {
            Box::pin(async move {
                let _ = receiver.changed().await;
            }) as Pin<Box<dyn Future<Output = ()> + Send + '_>>
        })
        .collect();
    std::future::poll_fn(|context| {
        for change in &mut changes {
            if change.as_mut().poll(context).is_ready() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    })
    .await
}
