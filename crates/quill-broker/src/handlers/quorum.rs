//! DescribeQuorum (API 55, KIP-595/KIP-836/KIP-853): the metadata quorum as its leader sees it,
//! what `kafka-metadata-quorum.sh describe --status` and `--replication` print.
//!
//! Kafka answers it in the Raft client (`KafkaRaftClient.handleDescribeQuorumRequest`): a request
//! that is not exactly `__cluster_metadata` partition 0 gets UNKNOWN_TOPIC_OR_PARTITION for each
//! partition it named; a voter that does not lead answers NOT_LEADER_OR_FOLLOWER on partition 0
//! (retriable: the admin client asks again); the leader answers its view. Kafka's brokers
//! forward the request to the active controller (`KafkaApis`: `forwardToController`), so any
//! broker gives the leader's view. A Quill node is both: its Kafka listener is the broker's, so
//! a node that does not lead asks the leader for its view over the controller listener
//! (`MetadataService::describe_at_leader`) and answers with it; NOT_LEADER_OR_FOLLOWER only
//! when no leader is known or reachable (an election is running).
//!
//! What openraft lets Quill know, and what it reports instead (ARCHITECTURE.md): a voter's log
//! end offset is the index the leader knows it holds, plus one (-1 before its first
//! acknowledgement); the high watermark is the leader's applied index plus one; the leader's own
//! fetch and caught-up timestamps are "now" (the answering node's clock) as in Kafka; a follower's are -1 (unknown), because
//! openraft 0.9 does not expose when each follower last acknowledged; directory ids are Kafka's
//! "no directory id" (Quill voters have none).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{
    BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use quill_meta::quorum::{QuorumStatus, ReplicaStatus};

use crate::state::BrokerState;

/// KRaft's metadata log: the only partition DescribeQuorum describes.
pub const METADATA_TOPIC: &str = "__cluster_metadata";
const METADATA_PARTITION: i32 = 0;
/// Kafka's value for an offset or timestamp it does not know.
const UNKNOWN: i64 = -1;
/// DescribeQuorum v2 adds directory ids, error messages and the voters' listeners.
const FIRST_VERSION_WITH_NODES: i16 = 2;

/// The controller listener of one voter, as `controller.quorum.voters` names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoterEndpoint {
    pub node_id: i32,
    pub listener_name: String,
    pub host: String,
    pub port: u16,
}

pub async fn describe_quorum(
    state: &BrokerState,
    request: DescribeQuorumRequest,
    api_version: i16,
) -> DescribeQuorumResponse {
    if !names_only_the_metadata_partition(&request) {
        return unknown_partitions(&request);
    }
    let leader_view = match state.metadata.describe_at_leader().await {
        Ok(status) => Some(status),
        Err(error) => {
            tracing::debug!(%error, "DescribeQuorum: no view of the quorum's leader");
            None
        }
    };
    answer(
        &request,
        api_version,
        leader_view.as_ref(),
        &voter_endpoints(state),
        crate::clock::now_ms(),
    )
}

/// The voters' controller endpoints from `controller.quorum.voters` (a one-voter quorum in
/// process has no controller listener, so none).
fn voter_endpoints(state: &BrokerState) -> Vec<VoterEndpoint> {
    let cluster = &state.config.cluster;
    let Some(voters) = &cluster.voters else {
        return Vec::new();
    };
    voters
        .iter()
        .filter_map(|(node_id, address)| {
            let (host, port) = address.rsplit_once(':')?;
            Some(VoterEndpoint {
                node_id: *node_id,
                listener_name: cluster.controller_listener_name.clone(),
                host: host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
                port: port.parse().ok()?,
            })
        })
        .collect()
}

/// The answer given `leader_view`, the quorum as its leader sees it (`None`: no leader known or
/// reachable), at `now_ms`.
pub fn answer(
    request: &DescribeQuorumRequest,
    api_version: i16,
    leader_view: Option<&QuorumStatus>,
    endpoints: &[VoterEndpoint],
    now_ms: i64,
) -> DescribeQuorumResponse {
    if !names_only_the_metadata_partition(request) {
        return unknown_partitions(request);
    }
    let Some((status, node_id)) =
        leader_view.and_then(|status| status.leader_id.map(|leader| (status, leader)))
    else {
        return singleton(
            PartitionData::default()
                .with_partition_index(METADATA_PARTITION)
                .with_error_code(ResponseError::NotLeaderOrFollower.code()),
        );
    };
    let replica = |replica: &ReplicaStatus| {
        let (fetched_ms, caught_up_ms) = if replica.replica_id == node_id {
            (now_ms, now_ms)
        } else {
            (UNKNOWN, UNKNOWN)
        };
        ReplicaState::default()
            .with_replica_id(BrokerId(replica.replica_id))
            .with_log_end_offset(replica.matched_index.map_or(UNKNOWN, next_offset))
            .with_last_fetch_timestamp(fetched_ms)
            .with_last_caught_up_timestamp(caught_up_ms)
    };
    let partition = PartitionData::default()
        .with_partition_index(METADATA_PARTITION)
        .with_leader_id(BrokerId(node_id))
        .with_leader_epoch(i32::try_from(status.leader_epoch).unwrap_or(i32::MAX))
        .with_high_watermark(next_offset(status.applied_index))
        .with_current_voters(status.voters.iter().map(replica).collect())
        .with_observers(status.observers.iter().map(replica).collect());
    let mut response = singleton(partition);
    if api_version >= FIRST_VERSION_WITH_NODES {
        response.nodes = status
            .voters
            .iter()
            .map(|voter| Node::default().with_node_id(BrokerId(voter.replica_id)))
            .map(|node| {
                let listeners = endpoints
                    .iter()
                    .filter(|endpoint| endpoint.node_id == node.node_id.0)
                    .map(|endpoint| {
                        Listener::default()
                            .with_name(text(&endpoint.listener_name))
                            .with_host(text(&endpoint.host))
                            .with_port(endpoint.port)
                    })
                    .collect();
                node.with_listeners(listeners)
            })
            .collect();
    }
    response
}

/// Kafka offsets of the metadata log: the entry at Raft index `i` ends at offset `i + 1`.
fn next_offset(index: u64) -> i64 {
    i64::try_from(index).map_or(i64::MAX, |index| index.saturating_add(1))
}

fn names_only_the_metadata_partition(request: &DescribeQuorumRequest) -> bool {
    match request.topics.as_slice() {
        [topic] => {
            topic.topic_name.0.as_str() == METADATA_TOPIC
                && matches!(topic.partitions.as_slice(),
                    [partition] if partition.partition_index == METADATA_PARTITION)
        }
        _ => false,
    }
}

/// Kafka's `getPartitionLevelErrorResponse`: every partition asked for, UNKNOWN_TOPIC_OR_PARTITION.
fn unknown_partitions(request: &DescribeQuorumRequest) -> DescribeQuorumResponse {
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            TopicData::default()
                .with_topic_name(topic.topic_name.clone())
                .with_partitions(
                    topic
                        .partitions
                        .iter()
                        .map(|partition| {
                            PartitionData::default()
                                .with_partition_index(partition.partition_index)
                                .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                        })
                        .collect(),
                )
        })
        .collect();
    DescribeQuorumResponse::default().with_topics(topics)
}

fn singleton(partition: PartitionData) -> DescribeQuorumResponse {
    DescribeQuorumResponse::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(text(METADATA_TOPIC)))
        .with_partitions(vec![partition])])
}

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use kafka_protocol::messages::describe_quorum_request;

    use super::*;

    fn request(topic: &str, partitions: &[i32]) -> DescribeQuorumRequest {
        DescribeQuorumRequest::default().with_topics(vec![
            describe_quorum_request::TopicData::default()
                .with_topic_name(TopicName(text(topic)))
                .with_partitions(
                    partitions
                        .iter()
                        .map(|index| {
                            describe_quorum_request::PartitionData::default()
                                .with_partition_index(*index)
                        })
                        .collect(),
                ),
        ])
    }

    fn status(leader: Option<i32>) -> QuorumStatus {
        QuorumStatus {
            leader_id: leader,
            leader_epoch: 4,
            applied_index: 41,
            voters: vec![
                ReplicaStatus {
                    replica_id: 1,
                    matched_index: Some(41),
                },
                ReplicaStatus {
                    replica_id: 2,
                    matched_index: Some(39),
                },
                ReplicaStatus {
                    replica_id: 3,
                    matched_index: None,
                },
            ],
            observers: Vec::new(),
        }
    }

    fn endpoints() -> Vec<VoterEndpoint> {
        (1..=3)
            .map(|node_id| VoterEndpoint {
                node_id,
                listener_name: "CONTROLLER".to_string(),
                host: "127.0.0.1".to_string(),
                port: 9091 + 2 * u16::try_from(node_id).unwrap(),
            })
            .collect()
    }

    #[test]
    fn the_leader_describes_voters_offsets_and_listeners() {
        let response = answer(
            &request(METADATA_TOPIC, &[0]),
            2,
            Some(&status(Some(1))),
            &endpoints(),
            5_000,
        );
        let partition = &response.topics[0].partitions[0];
        assert_eq!(partition.error_code, 0);
        assert_eq!(partition.leader_id.0, 1);
        assert_eq!(partition.leader_epoch, 4);
        assert_eq!(partition.high_watermark, 42);
        let voters: Vec<(i32, i64, i64, i64)> = partition
            .current_voters
            .iter()
            .map(|voter| {
                (
                    voter.replica_id.0,
                    voter.log_end_offset,
                    voter.last_fetch_timestamp,
                    voter.last_caught_up_timestamp,
                )
            })
            .collect();
        assert_eq!(
            voters,
            vec![(1, 42, 5_000, 5_000), (2, 40, -1, -1), (3, -1, -1, -1)]
        );
        assert_eq!(response.nodes.len(), 3);
        assert_eq!(response.nodes[2].listeners[0].port, 9097);
        assert_eq!(response.nodes[2].listeners[0].name.as_str(), "CONTROLLER");
        // v1 has no node list.
        let v1 = answer(
            &request(METADATA_TOPIC, &[0]),
            1,
            Some(&status(Some(1))),
            &endpoints(),
            0,
        );
        assert!(v1.nodes.is_empty());
    }

    #[test]
    fn without_a_reachable_leader_the_answer_is_not_leader_or_follower() {
        for view in [None, Some(status(None))] {
            let response = answer(
                &request(METADATA_TOPIC, &[0]),
                2,
                view.as_ref(),
                &endpoints(),
                0,
            );
            assert_eq!(response.error_code, 0);
            assert_eq!(response.topics[0].topic_name.0.as_str(), METADATA_TOPIC);
            assert_eq!(response.topics[0].partitions[0].error_code, 6);
            assert!(response.topics[0].partitions[0].current_voters.is_empty());
        }
    }

    #[test]
    fn anything_but_the_metadata_partition_is_unknown_per_partition() {
        for (topic, partitions) in [
            ("other", vec![0]),
            (METADATA_TOPIC, vec![1]),
            (METADATA_TOPIC, vec![0, 1]),
        ] {
            let response = answer(
                &request(topic, &partitions),
                2,
                Some(&status(Some(1))),
                &endpoints(),
                0,
            );
            assert_eq!(response.topics[0].topic_name.0.as_str(), topic);
            let codes: Vec<(i32, i16)> = response.topics[0]
                .partitions
                .iter()
                .map(|partition| (partition.partition_index, partition.error_code))
                .collect();
            let expected: Vec<(i32, i16)> = partitions.iter().map(|p| (*p, 3)).collect();
            assert_eq!(codes, expected);
        }
        let empty = answer(
            &DescribeQuorumRequest::default(),
            0,
            Some(&status(Some(1))),
            &endpoints(),
            0,
        );
        assert!(empty.topics.is_empty());
    }
}
