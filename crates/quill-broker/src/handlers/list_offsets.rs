//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), or the first offset whose
//! timestamp is at or after a given time.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use crate::partitions::Partition;
use crate::state::BrokerState;

const LATEST_TIMESTAMP: i64 = -1;
const EARLIEST_TIMESTAMP: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
/// KIP-405: earliest offset still on local storage; without tiered storage, the earliest.
const EARLIEST_LOCAL_TIMESTAMP: i64 = -4;

/// ListOffsets v4 is the first version carrying the leader epoch.
const FIRST_VERSION_WITH_LEADER_EPOCH: i16 = 4;

pub async fn handle(
    state: &BrokerState,
    request: ListOffsetsRequest,
    api_version: i16,
) -> ListOffsetsResponse {
    let image = state.image();
    // v2+: read_committed consumers' "latest" is the last stable offset.
    let read_committed = request.isolation_level == 1;
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let leader_epoch = |partition: i32| {
            image
                .topic(&name)
                .and_then(|info| info.partition(partition))
                .filter(|_| api_version >= FIRST_VERSION_WITH_LEADER_EPOCH)
                .map_or(-1, |info| info.leader_epoch)
        };
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for requested in topic.partitions {
            let index = requested.partition_index;
            let led = super::led_partition(state, &image, &name, index).and_then(|partition| {
                super::check_leader_epoch(&image, &name, index, requested.current_leader_epoch)
                    .map(|()| partition)
            });
            let response = match led {
                Err(code) => error(index, code),
                Ok(partition) => lookup(&partition, requested.timestamp, read_committed)
                    .await
                    .with_leader_epoch(leader_epoch(index)),
            };
            partitions.push(response);
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}

async fn lookup(
    partition: &std::sync::Arc<Partition>,
    timestamp: i64,
    read_committed: bool,
) -> ListOffsetsPartitionResponse {
    let index = partition.partition;
    let offsets = partition.offsets();
    let found = |offset: i64, timestamp_ms: i64| {
        ListOffsetsPartitionResponse::default()
            .with_partition_index(index)
            .with_offset(offset)
            .with_timestamp(timestamp_ms)
    };
    match timestamp {
        LATEST_TIMESTAMP if read_committed => found(offsets.last_stable_offset, -1),
        LATEST_TIMESTAMP => found(offsets.high_watermark, -1),
        EARLIEST_TIMESTAMP | EARLIEST_LOCAL_TIMESTAMP => found(offsets.log_start_offset, -1),
        MAX_TIMESTAMP => match partition.max_timestamp_offset().await {
            Ok(Some(hit)) => found(hit.offset, hit.timestamp_ms),
            Ok(None) => found(-1, -1),
            Err(failure) => error(index, failure.kafka_error_code()),
        },
        timestamp_ms if timestamp_ms >= 0 => {
            match partition.offset_for_timestamp(timestamp_ms).await {
                Ok(Some(hit)) => found(hit.offset, hit.timestamp_ms),
                Ok(None) => found(-1, -1),
                Err(failure) => error(index, failure.kafka_error_code()),
            }
        }
        _ => error(index, ResponseError::InvalidRequest.code()),
    }
}

fn error(partition_index: i32, error_code: i16) -> ListOffsetsPartitionResponse {
    ListOffsetsPartitionResponse::default()
        .with_partition_index(partition_index)
        .with_error_code(error_code)
        .with_offset(-1)
        .with_timestamp(-1)
}
