//! Admin calls: topics, configs, partitions, offsets. Each returns typed results and turns
//! per-topic error codes into [`ClientError::Broker`] naming the topic.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    BrokerId, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest,
    DescribeClusterRequest, DescribeConfigsRequest, DescribeQuorumRequest,
    IncrementalAlterConfigsRequest, ListOffsetsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::client::{Client, TopicMetadata};
use crate::error::{check_code, ClientError, Result};
use crate::TopicPartition;

/// Server-side wait for topic creation/deletion to complete.
const ADMIN_TIMEOUT_MS: i32 = 30_000;
/// ConfigResource type of a topic in DescribeConfigs / IncrementalAlterConfigs.
const RESOURCE_TYPE_TOPIC: i8 = 2;
/// ListOffsets special timestamps.
pub const LATEST_TIMESTAMP: i64 = -1;
pub const EARLIEST_TIMESTAMP: i64 = -2;

#[derive(Debug, Clone)]
pub struct NewTopic {
    pub name: String,
    /// -1: the broker's `num.partitions`.
    pub partitions: i32,
    /// -1: the broker's `default.replication.factor`.
    pub replication_factor: i16,
    pub configs: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    Unknown,
    TopicConfig,
    DynamicBrokerConfig,
    DynamicDefaultBrokerConfig,
    StaticBrokerConfig,
    DefaultConfig,
    DynamicBrokerLoggerConfig,
    ClientMetricsConfig,
    GroupConfig,
}

impl ConfigSource {
    fn from_code(code: i8) -> ConfigSource {
        match code {
            1 => ConfigSource::TopicConfig,
            2 => ConfigSource::DynamicBrokerConfig,
            3 => ConfigSource::DynamicDefaultBrokerConfig,
            4 => ConfigSource::StaticBrokerConfig,
            5 => ConfigSource::DefaultConfig,
            6 => ConfigSource::DynamicBrokerLoggerConfig,
            7 => ConfigSource::ClientMetricsConfig,
            8 => ConfigSource::GroupConfig,
            _ => ConfigSource::Unknown,
        }
    }

    /// Kafka's own spelling, as kafka-configs.sh prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigSource::Unknown => "UNKNOWN",
            ConfigSource::TopicConfig => "DYNAMIC_TOPIC_CONFIG",
            ConfigSource::DynamicBrokerConfig => "DYNAMIC_BROKER_CONFIG",
            ConfigSource::DynamicDefaultBrokerConfig => "DYNAMIC_DEFAULT_BROKER_CONFIG",
            ConfigSource::StaticBrokerConfig => "STATIC_BROKER_CONFIG",
            ConfigSource::DefaultConfig => "DEFAULT_CONFIG",
            ConfigSource::DynamicBrokerLoggerConfig => "DYNAMIC_BROKER_LOGGER_CONFIG",
            ConfigSource::ClientMetricsConfig => "CLIENT_METRICS_CONFIG",
            ConfigSource::GroupConfig => "GROUP_CONFIG",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    pub source: ConfigSource,
    pub read_only: bool,
    pub sensitive: bool,
}

/// One partition's answer to ListOffsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetAndTimestamp {
    /// -1 when no record has a timestamp at or after the requested one.
    pub offset: i64,
    pub timestamp_ms: i64,
}

/// KRaft's metadata log, the one partition DescribeQuorum describes.
const METADATA_TOPIC: &str = "__cluster_metadata";

/// One broker as DescribeCluster reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterBroker {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
    /// Fenced by the active controller (session expired or shut down): clients do not use it.
    pub fenced: bool,
}

/// The metadata quorum as its leader describes it (DescribeQuorum, what
/// `kafka-metadata-quorum.sh describe` prints).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumDescription {
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub high_watermark: i64,
    pub voters: Vec<QuorumReplica>,
    pub observers: Vec<QuorumReplica>,
    /// Each voter's controller listeners (`name://host:port`), DescribeQuorum v2+.
    pub voter_endpoints: BTreeMap<i32, Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumReplica {
    pub replica_id: i32,
    /// -1 when the leader does not know it.
    pub log_end_offset: i64,
    /// -1 when unknown (or before DescribeQuorum v1).
    pub last_fetch_timestamp_ms: i64,
    pub last_caught_up_timestamp_ms: i64,
}

impl QuorumReplica {
    /// How far this replica's log trails the leader's high watermark; `None` when unknown.
    pub fn lag(&self, high_watermark: i64) -> Option<i64> {
        (self.log_end_offset >= 0).then(|| (high_watermark - self.log_end_offset).max(0))
    }
}

/// Admin operations over a [`Client`].
#[derive(Clone)]
pub struct Admin {
    client: Client,
}

impl Admin {
    pub fn new(client: Client) -> Admin {
        Admin { client }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub async fn create_topics(&self, topics: &[NewTopic]) -> Result<()> {
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(ADMIN_TIMEOUT_MS)
            .with_topics(topics.iter().map(creatable_topic).collect());
        let connection = self.controller_connection().await?;
        let (_, response) = connection.call(&request, 7, Duration::ZERO).await?;
        for result in &response.topics {
            let name = result.name.0.as_str();
            check_code(
                result.error_code,
                || format!("cannot create topic `{name}`"),
                result.error_message.as_deref(),
            )?;
        }
        Ok(())
    }

    pub async fn delete_topics(&self, names: &[String]) -> Result<()> {
        let connection = self.controller_connection().await?;
        let version = connection.version_for::<DeleteTopicsRequest>(6)?;
        let mut request = DeleteTopicsRequest::default().with_timeout_ms(ADMIN_TIMEOUT_MS);
        // v6 names topics in `topics` (name or id); older versions in `topic_names`.
        if version >= 6 {
            request.topics = names
                .iter()
                .map(|name| DeleteTopicState::default().with_name(Some(topic_name(name))))
                .collect();
        } else {
            request.topic_names = names.iter().map(|name| topic_name(name)).collect();
        }
        let response = connection
            .call_at(&request, version, Duration::ZERO)
            .await?;
        for result in &response.responses {
            let name = result
                .name
                .as_ref()
                .map(|name| name.0.to_string())
                .unwrap_or_default();
            check_code(
                result.error_code,
                || format!("cannot delete topic `{name}`"),
                result.error_message.as_deref(),
            )?;
        }
        Ok(())
    }

    /// Every topic, sorted by name (internal topics included; callers filter).
    pub async fn list_topics(&self) -> Result<Vec<TopicMetadata>> {
        let metadata = self.client.refresh_metadata(None, false).await?;
        Ok(metadata.topics.into_values().collect())
    }

    pub async fn describe_topic(&self, name: &str) -> Result<TopicMetadata> {
        self.client.topic_metadata(name, false).await
    }

    pub async fn describe_topic_configs(&self, name: &str) -> Result<Vec<ConfigEntry>> {
        let request = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(RESOURCE_TYPE_TOPIC)
                .with_resource_name(StrBytes::from_string(name.to_string()))
                .with_configuration_keys(None),
        ]);
        let connection = self.client.any_connection().await?;
        let (_, response) = connection.call(&request, 4, Duration::ZERO).await?;
        let mut entries = Vec::new();
        for result in response.results {
            check_code(
                result.error_code,
                || format!("cannot describe the configs of topic `{name}`"),
                result.error_message.as_deref(),
            )?;
            entries.extend(result.configs.into_iter().map(|config| ConfigEntry {
                name: config.name.to_string(),
                value: config.value.map(|value| value.to_string()),
                source: ConfigSource::from_code(config.config_source),
                read_only: config.read_only,
                sensitive: config.is_sensitive,
            }));
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// Sets `set` and removes (reverts to default) `delete`, atomically for the topic.
    pub async fn alter_topic_configs(
        &self,
        name: &str,
        set: &[(String, String)],
        delete: &[String],
    ) -> Result<()> {
        const OPERATION_SET: i8 = 0;
        const OPERATION_DELETE: i8 = 1;
        let mut configs: Vec<AlterableConfig> = set
            .iter()
            .map(|(key, value)| {
                AlterableConfig::default()
                    .with_name(StrBytes::from_string(key.clone()))
                    .with_config_operation(OPERATION_SET)
                    .with_value(Some(StrBytes::from_string(value.clone())))
            })
            .collect();
        configs.extend(delete.iter().map(|key| {
            AlterableConfig::default()
                .with_name(StrBytes::from_string(key.clone()))
                .with_config_operation(OPERATION_DELETE)
                .with_value(None)
        }));
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(RESOURCE_TYPE_TOPIC)
                .with_resource_name(StrBytes::from_string(name.to_string()))
                .with_configs(configs),
        ]);
        let connection = self.controller_connection().await?;
        let (_, response) = connection.call(&request, 1, Duration::ZERO).await?;
        for result in &response.responses {
            check_code(
                result.error_code,
                || format!("cannot alter the configs of topic `{name}`"),
                result.error_message.as_deref(),
            )?;
        }
        Ok(())
    }

    /// Grows `name` to `total_partitions` partitions.
    pub async fn create_partitions(&self, name: &str, total_partitions: i32) -> Result<()> {
        let request = CreatePartitionsRequest::default()
            .with_timeout_ms(ADMIN_TIMEOUT_MS)
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(topic_name(name))
                .with_count(total_partitions)
                .with_assignments(None)]);
        let connection = self.controller_connection().await?;
        let (_, response) = connection.call(&request, 3, Duration::ZERO).await?;
        for result in &response.results {
            check_code(
                result.error_code,
                || format!("cannot add partitions to topic `{name}`"),
                result.error_message.as_deref(),
            )?;
        }
        Ok(())
    }

    /// The cluster's brokers from DescribeCluster, fenced ones included and flagged when the
    /// broker speaks v2 (KIP-1073); an older broker lists only the unfenced ones.
    pub async fn describe_cluster_brokers(&self) -> Result<Vec<ClusterBroker>> {
        let connection = self.client.any_connection().await?;
        let version = connection.version_for::<DescribeClusterRequest>(2)?;
        let request = DescribeClusterRequest::default().with_include_fenced_brokers(version >= 2);
        let (_, response) = connection.call(&request, version, Duration::ZERO).await?;
        check_code(
            response.error_code,
            || "cannot describe the cluster".to_string(),
            response.error_message.as_deref(),
        )?;
        Ok(response
            .brokers
            .iter()
            .map(|broker| ClusterBroker {
                node_id: broker.broker_id.0,
                host: broker.host.to_string(),
                port: broker.port,
                rack: broker.rack.as_ref().map(ToString::to_string),
                fenced: broker.is_fenced,
            })
            .collect())
    }

    /// ListOffsets for each partition at `timestamp_ms` (or [`EARLIEST_TIMESTAMP`] /
    /// [`LATEST_TIMESTAMP`]), one request per leader.
    pub async fn list_offsets(
        &self,
        partitions: &[TopicPartition],
        timestamp_ms: i64,
    ) -> Result<BTreeMap<TopicPartition, OffsetAndTimestamp>> {
        list_offsets(&self.client, partitions, timestamp_ms, READ_UNCOMMITTED).await
    }

    /// Metadata (controller-first) calls go to the controller when it is known and reachable,
    /// as Kafka's AdminClient does; any broker forwards otherwise.
    /// DescribeQuorum, asked first of the broker Metadata names as controller, then of the
    /// others: only the quorum's leader answers (the others say NOT_LEADER_OR_FOLLOWER, as a
    /// Kafka voter that does not lead does).
    pub async fn describe_quorum(&self) -> Result<QuorumDescription> {
        let metadata = self.client.refresh_metadata(Some(&[]), false).await?;
        let mut candidates: Vec<i32> = vec![metadata.controller_id];
        candidates.extend(
            metadata
                .brokers
                .keys()
                .filter(|id| **id != metadata.controller_id),
        );
        let request = DescribeQuorumRequest::default().with_topics(vec![
            kafka_protocol::messages::describe_quorum_request::TopicData::default()
                .with_topic_name(topic_name(METADATA_TOPIC))
                .with_partitions(vec![
                    kafka_protocol::messages::describe_quorum_request::PartitionData::default(),
                ]),
        ]);
        let mut last_error = None;
        for node_id in candidates.into_iter().filter(|id| *id >= 0) {
            let connection = match self.client.connection_to_broker(node_id).await {
                Ok(connection) => connection,
                Err(error) => {
                    last_error = Some(error);
                    continue;
                }
            };
            let (_, response) = connection.call(&request, 2, Duration::ZERO).await?;
            match quorum_description(&response) {
                Err(error) if error.kafka_error() == Some(ResponseError::NotLeaderOrFollower) => {
                    last_error = Some(error);
                }
                other => return other,
            }
        }
        Err(last_error.unwrap_or_else(|| {
            ClientError::broker(
                "describe the metadata quorum",
                ResponseError::NotLeaderOrFollower,
                Some("no broker leads the metadata quorum".to_string()),
            )
        }))
    }

    async fn controller_connection(&self) -> Result<std::sync::Arc<crate::Connection>> {
        let controller = self.client.metadata().controller_id;
        if controller >= 0 {
            if let Ok(connection) = self.client.connection_to_broker(controller).await {
                return Ok(connection);
            }
        }
        self.client.any_connection().await
    }
}

fn quorum_description(
    response: &kafka_protocol::messages::DescribeQuorumResponse,
) -> Result<QuorumDescription> {
    let context = || "describe the metadata quorum".to_string();
    check_code(
        response.error_code,
        context,
        response.error_message.as_deref(),
    )?;
    let partition = response
        .topics
        .iter()
        .filter(|topic| topic.topic_name.0.as_str() == METADATA_TOPIC)
        .flat_map(|topic| topic.partitions.iter())
        .find(|partition| partition.partition_index == 0)
        .ok_or_else(|| ClientError::UnknownPartition {
            topic: METADATA_TOPIC.to_string(),
            partition: 0,
        })?;
    check_code(
        partition.error_code,
        context,
        partition.error_message.as_deref(),
    )?;
    let replica =
        |state: &kafka_protocol::messages::describe_quorum_response::ReplicaState| QuorumReplica {
            replica_id: state.replica_id.0,
            log_end_offset: state.log_end_offset,
            last_fetch_timestamp_ms: state.last_fetch_timestamp,
            last_caught_up_timestamp_ms: state.last_caught_up_timestamp,
        };
    let voter_endpoints = response
        .nodes
        .iter()
        .map(|node| {
            let listeners = node
                .listeners
                .iter()
                .map(|listener| format!("{}://{}:{}", listener.name, listener.host, listener.port))
                .collect();
            (node.node_id.0, listeners)
        })
        .collect();
    Ok(QuorumDescription {
        leader_id: partition.leader_id.0,
        leader_epoch: partition.leader_epoch,
        high_watermark: partition.high_watermark,
        voters: partition.current_voters.iter().map(replica).collect(),
        observers: partition.observers.iter().map(replica).collect(),
        voter_endpoints,
    })
}

/// ListOffsets isolation levels: the latest offset is the high watermark under
/// read_uncommitted and the last stable offset under read_committed.
pub const READ_UNCOMMITTED: i8 = 0;
pub const READ_COMMITTED: i8 = 1;

pub(crate) async fn list_offsets(
    client: &Client,
    partitions: &[TopicPartition],
    timestamp_ms: i64,
    isolation_level: i8,
) -> Result<BTreeMap<TopicPartition, OffsetAndTimestamp>> {
    let mut by_leader: BTreeMap<i32, Vec<&TopicPartition>> = BTreeMap::new();
    for partition in partitions {
        if client.cached_topic(&partition.topic).is_none() {
            client.topic_metadata(&partition.topic, false).await?;
        }
        let leader = client.leader_of(&partition.topic, partition.partition)?;
        by_leader.entry(leader).or_default().push(partition);
    }
    let mut offsets = BTreeMap::new();
    for (leader, partitions) in by_leader {
        let connection = client.connection_to_broker(leader).await?;
        let request = list_offsets_request(&partitions, timestamp_ms, isolation_level);
        let (_, response) = connection.call(&request, 9, Duration::ZERO).await?;
        for topic in response.topics {
            for partition in topic.partitions {
                let topic_partition =
                    TopicPartition::new(topic.name.0.as_str(), partition.partition_index);
                check_code(
                    partition.error_code,
                    || format!("cannot list offsets of {topic_partition}"),
                    None,
                )?;
                offsets.insert(
                    topic_partition,
                    OffsetAndTimestamp {
                        offset: partition.offset,
                        timestamp_ms: partition.timestamp,
                    },
                );
            }
        }
    }
    Ok(offsets)
}

fn list_offsets_request(
    partitions: &[&TopicPartition],
    timestamp_ms: i64,
    isolation_level: i8,
) -> ListOffsetsRequest {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for partition in partitions {
        by_topic
            .entry(partition.topic.as_str())
            .or_default()
            .push(partition.partition);
    }
    ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(isolation_level)
        .with_topics(
            by_topic
                .into_iter()
                .map(|(topic, indexes)| {
                    ListOffsetsTopic::default()
                        .with_name(topic_name(topic))
                        .with_partitions(
                            indexes
                                .into_iter()
                                .map(|index| {
                                    ListOffsetsPartition::default()
                                        .with_partition_index(index)
                                        .with_current_leader_epoch(-1)
                                        .with_timestamp(timestamp_ms)
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
}

fn creatable_topic(topic: &NewTopic) -> CreatableTopic {
    CreatableTopic::default()
        .with_name(topic_name(&topic.name))
        .with_num_partitions(topic.partitions)
        .with_replication_factor(topic.replication_factor)
        .with_configs(
            topic
                .configs
                .iter()
                .map(|(name, value)| {
                    CreatableTopicConfig::default()
                        .with_name(StrBytes::from_string(name.clone()))
                        .with_value(Some(StrBytes::from_string(value.clone())))
                })
                .collect(),
        )
}

pub(crate) fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// Whether a topic-level error means "no such topic".
pub fn is_unknown_topic(error: &ClientError) -> bool {
    matches!(error, ClientError::UnknownTopic(_))
        || error.kafka_error() == Some(ResponseError::UnknownTopicOrPartition)
}
