//! Topic administration: CreateTopics, DeleteTopics, CreatePartitions. Each change is planned
//! against the current image by quill-meta and appended through the metadata service.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use quill_meta::topic_config::{self, BrokerConfigLayers};
use quill_meta::{MetaError, MetadataRecord, TopicInfo, Uuid};

use crate::state::BrokerState;

fn text(value: impl Into<String>) -> StrBytes {
    StrBytes::from_string(value.into())
}

/// CreateTopics. With a positive `timeout_ms` each topic's change is made by a task of its own
/// and waited for until the request's deadline: past it the topic is answered
/// REQUEST_TIMED_OUT, as Kafka's controller answers a change it could not commit in time (no
/// quorum, a partitioned node), while the change itself goes on and may still commit — a
/// change is never abandoned halfway (its logs are opened before it is proposed). Topics not
/// started by the deadline are not created. A `timeout_ms` of 0 or less sets no deadline, as
/// Kafka's `requestTimeoutMsToDeadlineNs`.
pub async fn create_topics(
    state: &Arc<BrokerState>,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let deadline = u64::try_from(request.timeout_ms)
        .ok()
        .filter(|timeout_ms| *timeout_ms > 0)
        .map(|timeout_ms| tokio::time::Instant::now() + Duration::from_millis(timeout_ms));
    let duplicates = duplicate_names(request.topics.iter().map(|topic| topic.name.0.as_str()));
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let result = if duplicates.contains(&name) {
            Err(MetaError::InvalidRequest(format!(
                "Create topics request contains multiple entries for the topic {name}."
            )))
        } else {
            create_within(state, topic, request.validate_only, deadline).await
        };
        results.push(match result {
            Ok(info) => created_result(state, &info),
            Err(error) => CreatableTopicResult::default()
                .with_name(TopicName(text(name)))
                .with_error_code(error.kafka_error_code())
                .with_error_message(Some(text(error.to_string())))
                .with_configs(None),
        });
    }
    CreateTopicsResponse::default().with_topics(results)
}

/// [`create_one`] on a task of its own, waited for until `deadline` (REQUEST_TIMED_OUT after).
async fn create_within(
    state: &Arc<BrokerState>,
    topic: CreatableTopic,
    validate_only: bool,
    deadline: Option<tokio::time::Instant>,
) -> Result<TopicInfo, MetaError> {
    let Some(deadline) = deadline else {
        return create_one(state, topic, validate_only).await;
    };
    if tokio::time::Instant::now() >= deadline {
        return Err(MetaError::OutcomeUnknown(
            "the request's timeout passed before this topic was started".to_string(),
        ));
    }
    let state = Arc::clone(state);
    let change = tokio::spawn(async move { create_one(&state, topic, validate_only).await });
    match tokio::time::timeout_at(deadline, change).await {
        Ok(Ok(result)) => result,
        Ok(Err(join_error)) => Err(MetaError::OutcomeUnknown(format!(
            "the topic creation task failed: {join_error}"
        ))),
        Err(_) => Err(MetaError::OutcomeUnknown(
            "the metadata change was not committed within the request's timeout; it may still be"
                .to_string(),
        )),
    }
}

fn duplicate_names<'a>(names: impl Iterator<Item = &'a str>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut duplicates = BTreeSet::new();
    for name in names {
        if !seen.insert(name) {
            duplicates.insert(name.to_string());
        }
    }
    duplicates
}

async fn create_one(
    state: &BrokerState,
    topic: CreatableTopic,
    validate_only: bool,
) -> Result<TopicInfo, MetaError> {
    let name = topic.name.0.to_string();
    let mut configs = BTreeMap::new();
    for config in topic.configs {
        let config_name = config.name.to_string();
        let Some(value) = config.value else {
            return Err(MetaError::InvalidConfig {
                message: format!("Null value not supported for topic configs: {config_name}"),
                name: config_name,
            });
        };
        configs.insert(config_name, value.to_string());
    }
    let manual_assignment = if topic.assignments.is_empty() {
        None
    } else {
        if topic.num_partitions != -1 || topic.replication_factor != -1 {
            return Err(MetaError::InvalidRequest(
                "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".to_string(),
            ));
        }
        let mut assignments = topic.assignments;
        assignments.sort_by_key(|assignment| assignment.partition_index);
        Some(
            assignments
                .into_iter()
                .map(|assignment| assignment.broker_ids.into_iter().map(|id| id.0).collect())
                .collect(),
        )
    };
    state
        .create_topic(
            &name,
            topic.num_partitions,
            topic.replication_factor,
            manual_assignment,
            configs,
            validate_only,
        )
        .await
}

fn created_result(state: &BrokerState, topic: &TopicInfo) -> CreatableTopicResult {
    let image = state.image();
    let static_settings = state.config.static_settings();
    let layers = BrokerConfigLayers::from_image(&image, state.config.node_id, &static_settings);
    let configs = topic_config::describe_topic_configs(&topic.configs, &layers)
        .into_iter()
        .map(|described| {
            CreatableTopicConfigs::default()
                .with_name(text(described.name))
                .with_value(Some(text(described.value)))
                .with_read_only(described.read_only)
                .with_config_source(described.source.id())
                .with_is_sensitive(described.is_sensitive)
        })
        .collect();
    let replication_factor = topic.partitions.first().map_or(-1, |partition| {
        i16::try_from(partition.replicas.len()).unwrap_or(i16::MAX)
    });
    CreatableTopicResult::default()
        .with_name(TopicName(text(topic.name.clone())))
        .with_topic_id(topic.topic_id)
        .with_error_message(None)
        .with_num_partitions(i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX))
        .with_replication_factor(replication_factor)
        .with_configs(Some(configs))
}

pub async fn delete_topics(
    state: &BrokerState,
    request: DeleteTopicsRequest,
    api_version: i16,
) -> DeleteTopicsResponse {
    // v6 lists {name, id} pairs; older versions list names.
    let requested: Vec<(Option<String>, Uuid)> = if api_version >= 6 {
        request
            .topics
            .into_iter()
            .map(|topic| (topic.name.map(|name| name.0.to_string()), topic.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .into_iter()
            .map(|name| (Some(name.0.to_string()), Uuid::nil()))
            .collect()
    };
    let mut responses = Vec::with_capacity(requested.len());
    for (name, topic_id) in requested {
        let image = state.image();
        let found = match (&name, topic_id.is_nil()) {
            (Some(name), _) => image
                .topic(name)
                .ok_or(MetaError::UnknownTopic(name.clone())),
            (None, false) => image
                .topic_by_id(&topic_id)
                .ok_or(MetaError::UnknownTopicId(topic_id)),
            (None, true) => Err(MetaError::InvalidRequest(
                "topic name or id required".to_string(),
            )),
        }
        .map(|topic| (topic.name.clone(), topic.topic_id));
        let result = match found {
            Ok((found_name, found_id)) => state
                .change_metadata(vec![MetadataRecord::DeleteTopic { topic_id: found_id }])
                .await
                .map(|_| (found_name, found_id)),
            Err(error) => Err(error),
        };
        let response = match result {
            Ok((deleted_name, deleted_id)) => {
                tracing::info!(topic = %deleted_name, "deleted topic");
                DeletableTopicResult::default()
                    .with_name(Some(TopicName(text(deleted_name))))
                    .with_topic_id(deleted_id)
            }
            Err(error) => DeletableTopicResult::default()
                .with_name(name.map(|name| TopicName(text(name))))
                .with_topic_id(topic_id)
                .with_error_code(error.kafka_error_code())
                .with_error_message(Some(text(error.to_string()))),
        };
        responses.push(response);
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

pub async fn create_partitions(
    state: &BrokerState,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let duplicates = duplicate_names(request.topics.iter().map(|topic| topic.name.0.as_str()));
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        // Clients send null (or an empty list) to let the broker place the new partitions.
        let manual = topic
            .assignments
            .filter(|assignments| !assignments.is_empty())
            .map(|assignments| {
                assignments
                    .into_iter()
                    .map(|assignment| assignment.broker_ids.into_iter().map(|id| id.0).collect())
                    .collect()
            });
        let outcome = if duplicates.contains(&name) {
            Err(MetaError::InvalidRequest(format!(
                "Create partitions request contains multiple entries for the topic {name}."
            )))
        } else {
            match quill_meta::plan_create_partitions(&state.image(), &name, topic.count, manual) {
                Ok(_) if request.validate_only => Ok(()),
                Ok(record) => state.change_metadata(vec![record]).await.map(|_| ()),
                Err(error) => Err(error),
            }
        };
        let result = CreatePartitionsTopicResult::default().with_name(TopicName(text(name)));
        results.push(match outcome {
            Ok(()) => result,
            Err(error) => result
                .with_error_code(error.kafka_error_code())
                .with_error_message(Some(text(error.to_string()))),
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}
