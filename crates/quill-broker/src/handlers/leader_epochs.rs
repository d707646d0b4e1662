//! OffsetForLeaderEpoch (API 23, v0–4): where a leader epoch ends in the leader's log (Kafka's
//! `endOffsetFor`, from the log's leader-epoch cache). Followers ask it to find where their
//! log diverges from the leader's (KIP-101/KIP-279); consumers (librdkafka, the Java client)
//! ask it after a leader change to detect a truncated log (KIP-320). Only the leader answers.

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use crate::state::BrokerState;

/// Kafka's UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET.
const UNDEFINED_EPOCH: i32 = -1;
const UNDEFINED_EPOCH_OFFSET: i64 = -1;

pub async fn handle(
    state: &BrokerState,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let image = state.image();
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.topic.0.to_string();
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for requested in topic.partitions {
            let answer = EpochEndOffset::default()
                .with_partition(requested.partition)
                .with_leader_epoch(UNDEFINED_EPOCH)
                .with_end_offset(UNDEFINED_EPOCH_OFFSET);
            // Kafka checks the caller's epoch before leadership (`getLocalLog`).
            let checked = super::check_leader_epoch(
                &image,
                &name,
                requested.partition,
                requested.current_leader_epoch,
            )
            .and_then(|()| super::led_partition(state, &image, &name, requested.partition));
            let partition = match checked {
                Ok(partition) => partition,
                Err(code) => {
                    partitions.push(answer.with_error_code(code));
                    continue;
                }
            };
            let answer = match partition.end_offset_for_epoch(requested.leader_epoch).await {
                Ok(Some((epoch, end_offset))) => {
                    answer.with_leader_epoch(epoch).with_end_offset(end_offset)
                }
                Ok(None) => answer,
                Err(error) => answer.with_error_code(error.kafka_error_code()),
            };
            partitions.push(answer);
        }
        topics.push(
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions),
        );
    }
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
