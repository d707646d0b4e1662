//! DescribeCluster and DescribeLogDirs: what this node knows about the cluster and its disk.

use std::sync::Arc;

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

use crate::partitions::Partition;
use crate::state::BrokerState;

/// DescribeCluster `endpoint_type` (KIP-919): 1 = brokers, 2 = controllers.
const ENDPOINT_TYPE_BROKERS: i8 = 1;
const ENDPOINT_TYPE_CONTROLLERS: i8 = 2;
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
    if api_version >= FIRST_VERSION_WITH_ENDPOINT_TYPE {
        if let Some(refusal) = refuse_endpoint_type(request.endpoint_type) {
            return refusal;
        }
    }
    let image = state.image();
    let mut response = DescribeClusterResponse::default()
        .with_cluster_id(text(image.cluster_id.clone()))
        .with_controller_id(BrokerId(state.metadata.controller_id_for_clients()));
    if api_version >= FIRST_VERSION_WITH_ENDPOINT_TYPE {
        response = response.with_endpoint_type(request.endpoint_type);
    }
    let brokers = image
        .brokers
        .values()
        // Fenced brokers (session expired, or shut down) are not offered to clients.
        .filter(|broker| !broker.fenced)
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

/// Kafka's `AuthHelper.computeDescribeClusterResponse` on a broker listener: the controllers
/// are described only on a controller listener (`--bootstrap-controller`), which for Quill
/// speaks the quorum's own protocol, not Kafka's; so, as on a Kafka combined node's broker
/// listener, type 2 is MISMATCHED_ENDPOINT_TYPE and any other type UNSUPPORTED_ENDPOINT_TYPE,
/// each with Kafka's message, an empty cluster id and no brokers. (v0 carries no type.)
fn refuse_endpoint_type(endpoint_type: i8) -> Option<DescribeClusterResponse> {
    let (error, message) = match endpoint_type {
        ENDPOINT_TYPE_BROKERS => return None,
        ENDPOINT_TYPE_CONTROLLERS => (
            ResponseError::MismatchedEndpointType,
            "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER".to_string(),
        ),
        other => (
            ResponseError::UnsupportedEndpointType,
            format!("Unsupported endpoint type {other}"),
        ),
    };
    Some(
        DescribeClusterResponse::default()
            .with_error_code(error.code())
            .with_error_message(Some(text(message))),
    )
}

/// DescribeLogDirs. The hosted partitions are picked on the worker (in memory); their sizes
/// (each behind its log's lock, which an append or maintenance may hold) and the data
/// directory's canonical path (a filesystem walk) are read on the blocking pool.
pub async fn describe_log_dirs(
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
    let hosted: Vec<(String, Vec<Arc<Partition>>)> = image
        .topics
        .values()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .filter(|info| wanted(&topic.name, info.partition))
                .filter_map(|info| state.partitions.get(&topic.name, info.partition))
                .collect();
            (topic.name.clone(), partitions)
        })
        .filter(|(_, partitions): &(String, Vec<Arc<Partition>>)| !partitions.is_empty())
        .collect();
    let data_dir = state.config.data_dir.clone();
    let described = tokio::task::spawn_blocking(move || {
        let topics = hosted
            .into_iter()
            .map(|(name, partitions)| {
                let partitions = partitions
                    .iter()
                    .map(|partition| {
                        DescribeLogDirsPartition::default()
                            .with_partition_index(partition.partition)
                            .with_partition_size(
                                i64::try_from(partition.size_bytes()).unwrap_or(i64::MAX),
                            )
                            .with_offset_lag(0)
                    })
                    .collect();
                DescribeLogDirsTopic::default()
                    .with_name(TopicName(text(name)))
                    .with_partitions(partitions)
            })
            .collect::<Vec<_>>();
        let log_dir = std::fs::canonicalize(&data_dir).unwrap_or(data_dir);
        DescribeLogDirsResult::default()
            .with_log_dir(text(log_dir.display().to_string()))
            .with_topics(topics)
            .with_total_bytes(UNKNOWN_VOLUME_BYTES)
            .with_usable_bytes(UNKNOWN_VOLUME_BYTES)
    })
    .await;
    match described {
        Ok(result) => DescribeLogDirsResponse::default().with_results(vec![result]),
        // The blocking task panicked (it cannot otherwise fail): answer the error Kafka uses.
        Err(_) => DescribeLogDirsResponse::default().with_error_code(-1),
    }
}
