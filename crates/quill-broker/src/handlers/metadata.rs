//! Metadata: brokers, cluster id, controller, topics with partitions; auto-creates topics.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use quill_meta::{MetaError, MetadataImage, TopicInfo};

use crate::state::BrokerState;

/// ACL operation bits (1 << operation id) Kafka reports without an authorizer: every operation
/// that applies to the resource type. Topic: READ 3, WRITE 4, CREATE 5, DELETE 6, ALTER 7,
/// DESCRIBE 8, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11.
pub const TOPIC_AUTHORIZED_OPERATIONS: i32 =
    (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);
/// Cluster: CREATE 5, ALTER 7, DESCRIBE 8, CLUSTER_ACTION 9, DESCRIBE_CONFIGS 10,
/// ALTER_CONFIGS 11, IDEMPOTENT_WRITE 12.
pub const CLUSTER_AUTHORIZED_OPERATIONS: i32 =
    (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);
/// Metadata v8 added authorized operations (cluster-level until v10).
const FIRST_VERSION_WITH_AUTHORIZED_OPERATIONS: i16 = 8;
const LAST_VERSION_WITH_CLUSTER_OPERATIONS: i16 = 10;

/// Topics whose names start with `__` are Kafka-internal (offsets, transactions).
pub(crate) fn is_internal(name: &str) -> bool {
    name == "__consumer_offsets" || name == "__transaction_state"
}

pub async fn handle(
    state: &BrokerState,
    request: MetadataRequest,
    api_version: i16,
) -> MetadataResponse {
    let mut image = state.image();
    let requested = requested_topics(&request, api_version, &image);
    let mut topics = Vec::new();
    for (name, topic_id) in requested {
        let topic_response = match (name, topic_id) {
            (Some(name), _) => {
                let allow_auto_create = api_version < 4 || request.allow_auto_topic_creation;
                match image.topic(&name) {
                    Some(topic) => describe_topic(&image, topic),
                    None if allow_auto_create && state.config.auto_create_topics_enable => {
                        match auto_create(state, &name).await {
                            Ok(topic) => {
                                image = state.image();
                                describe_topic(&image, &topic)
                            }
                            Err(error) => topic_error(Some(&name), error.kafka_error_code()),
                        }
                    }
                    None => topic_error(Some(&name), ResponseError::UnknownTopicOrPartition.code()),
                }
            }
            (None, Some(topic_id)) => match image.topic_by_id(&topic_id) {
                Some(topic) => describe_topic(&image, topic),
                None => {
                    let mut response = topic_error(None, ResponseError::UnknownTopicId.code());
                    response.topic_id = topic_id;
                    response
                }
            },
            (None, None) => topic_error(None, ResponseError::InvalidRequest.code()),
        };
        topics.push(topic_response);
    }
    let reports_operations = api_version >= FIRST_VERSION_WITH_AUTHORIZED_OPERATIONS;
    if reports_operations && request.include_topic_authorized_operations {
        // INT32_MIN means "not requested"; clients that asked decode every bit as an operation.
        for topic in &mut topics {
            topic.topic_authorized_operations = TOPIC_AUTHORIZED_OPERATIONS;
        }
    }
    let mut response = MetadataResponse::default()
        .with_brokers(brokers(&image))
        .with_cluster_id(Some(StrBytes::from_string(image.cluster_id.clone())))
        .with_controller_id(BrokerId(state.metadata.controller_id_for_clients()))
        .with_topics(topics);
    if reports_operations
        && api_version <= LAST_VERSION_WITH_CLUSTER_OPERATIONS
        && request.include_cluster_authorized_operations
    {
        response.cluster_authorized_operations = CLUSTER_AUTHORIZED_OPERATIONS;
    }
    response
}

/// (name, id) pairs to describe: all topics when the request says so (null list, or an empty
/// list before v1 — Kafka's v0 meaning), else exactly the requested ones.
fn requested_topics(
    request: &MetadataRequest,
    api_version: i16,
    image: &MetadataImage,
) -> Vec<(Option<String>, Option<quill_meta::Uuid>)> {
    let all_topics = match &request.topics {
        None => true,
        Some(topics) => topics.is_empty() && api_version == 0,
    };
    if all_topics {
        return image
            .topics
            .keys()
            .map(|name| (Some(name.clone()), None))
            .collect();
    }
    request
        .topics
        .iter()
        .flatten()
        .map(|topic| {
            let name = topic.name.as_ref().map(|name| name.0.to_string());
            let topic_id = (!topic.topic_id.is_nil()).then_some(topic.topic_id);
            (name, topic_id)
        })
        .collect()
}

async fn auto_create(state: &BrokerState, name: &str) -> Result<TopicInfo, MetaError> {
    if name == crate::offsets_store::OFFSETS_TOPIC || name == quill_txn::TRANSACTION_STATE_TOPIC {
        // The internal topics have their own shape (partition count, compaction).
        if name == quill_txn::TRANSACTION_STATE_TOPIC {
            state.ensure_transaction_topic().await?;
        } else {
            state.ensure_offsets_topic().await?;
        }
        return state
            .image()
            .topic(name)
            .cloned()
            .ok_or_else(|| MetaError::UnknownTopic(name.to_string()));
    }
    tracing::info!(topic = name, "auto-creating topic");
    let created = state
        .create_topic(
            name,
            state.config.num_partitions,
            state.config.default_replication_factor,
            None,
            Default::default(),
            false,
        )
        .await;
    match created {
        // Another request created it concurrently: describe what exists.
        Err(MetaError::TopicAlreadyExists(_)) => state
            .image()
            .topic(name)
            .cloned()
            .ok_or_else(|| MetaError::UnknownTopic(name.to_string())),
        other => other,
    }
}

fn brokers(image: &MetadataImage) -> Vec<MetadataResponseBroker> {
    image
        .brokers
        .values()
        // Fenced brokers (session expired, or shut down) are not offered to clients.
        .filter(|broker| !broker.fenced)
        .map(|broker| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(broker.node_id))
                .with_host(StrBytes::from_string(broker.host.clone()))
                .with_port(i32::from(broker.port))
                .with_rack(broker.rack.clone().map(StrBytes::from_string))
        })
        .collect()
}

/// A topic as Metadata describes it. `offline_replicas` lists replicas whose broker is fenced
/// or unregistered, as Kafka's KRaft metadata cache does.
pub fn describe_topic(image: &MetadataImage, topic: &TopicInfo) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .iter()
        .map(|partition| {
            MetadataResponsePartition::default()
                .with_partition_index(partition.partition)
                .with_leader_id(BrokerId(partition.leader))
                .with_leader_epoch(partition.leader_epoch)
                .with_replica_nodes(partition.replicas.iter().copied().map(BrokerId).collect())
                .with_isr_nodes(partition.isr.iter().copied().map(BrokerId).collect())
                .with_offline_replicas(
                    super::describe_topic_partitions::offline_replicas(image, partition)
                        .into_iter()
                        .map(BrokerId)
                        .collect(),
                )
                .with_error_code(if partition.leader < 0 {
                    ResponseError::LeaderNotAvailable.code()
                } else {
                    0
                })
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_topic_id(topic.topic_id)
        .with_is_internal(is_internal(&topic.name))
        .with_partitions(partitions)
}

fn topic_error(name: Option<&str>, error_code: i16) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(name.map(|name| TopicName(StrBytes::from_string(name.to_string()))))
        .with_error_code(error_code)
}
