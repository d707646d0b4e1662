//! DescribeCluster and DescribeLogDirs: what this node knows about the cluster and its disk.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, DescribeLogDirsRequest,
    DescribeLogDirsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::state::BrokerState;

/// DescribeCluster `endpoint_type`: 1 = brokers, 2 = controllers.
const ENDPOINT_TYPE_BROKERS: i8 = 1;
/// DescribeCluster v1 is the first version carrying `endpoint_type`.
const FIRST_VERSION_WITH_ENDPOINT_TYPE: i16 = 1;
/// Kafka reports unknown volume sizes as -1.
const UNKNOWN_VOLUME_BYTES: i64 = -1;

fn text(value: impl Into<String>) -> StrBytes {
    StrBytes::from_string(value.into())
}

pub fn describe_cluster(
    state: &BrokerState,
    request: DescribeClusterRequest,
    api_version: i16,
) -> DescribeClusterResponse {
    let image = state.image();
    let mut response = DescribeClusterResponse::default()
        .with_cluster_id(text(image.cluster_id.clone()))
        .with_controller_id(BrokerId(state.config.node_id));
    if api_version >= FIRST_VERSION_WITH_ENDPOINT_TYPE {
        response = response.with_endpoint_type(request.endpoint_type);
        if request.endpoint_type != ENDPOINT_TYPE_BROKERS {
            // This node is broker and controller at once; only the broker endpoint exists.
            return response
                .with_error_code(ResponseError::UnsupportedEndpointType.code())
                .with_error_message(Some(text("only the broker endpoint type is supported")));
        }
    }
    let brokers = image
        .brokers
        .values()
        .map(|broker| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(broker.node_id))
                .with_host(text(broker.host.clone()))
                .with_port(i32::from(broker.port))
                .with_rack(broker.rack.clone().map(text))
        })
        .collect();
    if request.include_cluster_authorized_operations {
        response.cluster_authorized_operations =
            crate::handlers::metadata::CLUSTER_AUTHORIZED_OPERATIONS;
    }
    response.with_brokers(brokers)
}

pub fn describe_log_dirs(
    state: &BrokerState,
    request: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    let image = state.image();
    let wanted = |topic: &str, partition: i32| match &request.topics {
        None => true,
        Some(topics) => topics
            .iter()
            .any(|entry| entry.topic.0.as_str() == topic && entry.partitions.contains(&partition)),
    };
    let mut topics = Vec::new();
    for topic in image.topics.values() {
        let partitions: Vec<DescribeLogDirsPartition> = topic
            .partitions
            .iter()
            .filter(|info| wanted(&topic.name, info.partition))
            .filter_map(|info| state.partitions.get(&topic.name, info.partition))
            .map(|partition| {
                DescribeLogDirsPartition::default()
                    .with_partition_index(partition.partition)
                    .with_partition_size(i64::try_from(partition.size_bytes()).unwrap_or(i64::MAX))
                    .with_offset_lag(0)
            })
            .collect();
        if !partitions.is_empty() {
            topics.push(
                DescribeLogDirsTopic::default()
                    .with_name(TopicName(text(topic.name.clone())))
                    .with_partitions(partitions),
            );
        }
    }
    let log_dir = std::fs::canonicalize(&state.config.data_dir)
        .unwrap_or_else(|_| state.config.data_dir.clone());
    let result = DescribeLogDirsResult::default()
        .with_log_dir(text(log_dir.display().to_string()))
        .with_topics(topics)
        .with_total_bytes(UNKNOWN_VOLUME_BYTES)
        .with_usable_bytes(UNKNOWN_VOLUME_BYTES);
    DescribeLogDirsResponse::default().with_results(vec![result])
}
