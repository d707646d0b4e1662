//! The cluster view shared by admin, producer and consumer: bootstrap addresses, a metadata
//! cache refreshed on demand, and one [`Connection`] per broker address, reopened when closed.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::connection::Connection;
use crate::error::{ClientError, Result};

/// Metadata v12 is the newest version this client knows the shape of.
const METADATA_MAX_VERSION: i16 = 12;

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `host:port` addresses tried in order until one answers.
    pub bootstrap: Vec<String>,
    pub client_id: String,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
}

impl ClientConfig {
    pub fn new(bootstrap: impl IntoIterator<Item = impl Into<String>>) -> ClientConfig {
        ClientConfig {
            bootstrap: bootstrap.into_iter().map(Into::into).collect(),
            client_id: "quill".to_string(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone)]
pub struct BrokerMetadata {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

impl BrokerMetadata {
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

#[derive(Debug, Clone)]
pub struct PartitionMetadata {
    pub partition: i32,
    /// -1 when the partition has no leader.
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub offline_replicas: Vec<i32>,
    pub error: Option<ResponseError>,
}

#[derive(Debug, Clone)]
pub struct TopicMetadata {
    pub name: String,
    pub topic_id: String,
    pub is_internal: bool,
    pub error: Option<ResponseError>,
    /// Sorted by partition index.
    pub partitions: Vec<PartitionMetadata>,
}

#[derive(Debug, Clone, Default)]
pub struct ClusterMetadata {
    pub cluster_id: Option<String>,
    pub controller_id: i32,
    pub brokers: BTreeMap<i32, BrokerMetadata>,
    pub topics: BTreeMap<String, TopicMetadata>,
}

/// A cheap-to-clone handle on one cluster.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    config: ClientConfig,
    connections: tokio::sync::Mutex<HashMap<String, Arc<Connection>>>,
    metadata: RwLock<ClusterMetadata>,
}

impl Client {
    /// Connects to the first bootstrap broker that answers and loads the broker list.
    pub async fn connect(config: ClientConfig) -> Result<Client> {
        if config.bootstrap.is_empty() {
            return Err(ClientError::InvalidConfig(
                "at least one bootstrap broker address is needed".into(),
            ));
        }
        let client = Client {
            inner: Arc::new(Inner {
                config,
                connections: tokio::sync::Mutex::new(HashMap::new()),
                metadata: RwLock::new(ClusterMetadata::default()),
            }),
        };
        client.refresh_metadata(Some(&[]), false).await?;
        Ok(client)
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// A copy of the cached metadata.
    pub fn metadata(&self) -> ClusterMetadata {
        self.inner
            .metadata
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn cached_topic(&self, topic: &str) -> Option<TopicMetadata> {
        self.inner
            .metadata
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .topics
            .get(topic)
            .cloned()
    }

    /// The connection to `address`, opened (or reopened) if needed.
    pub async fn connection_to_address(&self, address: &str) -> Result<Arc<Connection>> {
        self.connection_with_key(address, address).await
    }

    /// The connection cached under `key` (to `address`), opened or reopened if needed.
    async fn connection_with_key(&self, key: &str, address: &str) -> Result<Arc<Connection>> {
        let mut connections = self.inner.connections.lock().await;
        if let Some(connection) = connections.get(key) {
            if !connection.is_closed() {
                return Ok(connection.clone());
            }
        }
        let config = &self.inner.config;
        let connection = Arc::new(
            Connection::connect(
                address,
                &config.client_id,
                config.connect_timeout,
                config.request_timeout,
            )
            .await?,
        );
        connections.insert(key.to_string(), connection.clone());
        Ok(connection)
    }

    /// A connection to broker `node_id` used only for group-coordinator traffic. Brokers handle
    /// a connection's requests one at a time, and a JoinGroup may wait a whole rebalance, so it
    /// must not queue behind (or hold up) fetches; the Java client separates them the same way.
    pub async fn coordinator_connection(&self, node_id: i32) -> Result<Arc<Connection>> {
        let address = self.broker_address(node_id)?;
        self.connection_with_key(&format!("coordinator@{address}"), &address)
            .await
    }

    fn broker_address(&self, node_id: i32) -> Result<String> {
        let metadata = self
            .inner
            .metadata
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        metadata
            .brokers
            .get(&node_id)
            .map(BrokerMetadata::address)
            .ok_or(ClientError::UnknownBroker(node_id))
    }

    pub async fn connection_to_broker(&self, node_id: i32) -> Result<Arc<Connection>> {
        let address = {
            let metadata = self
                .inner
                .metadata
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            metadata.brokers.get(&node_id).map(BrokerMetadata::address)
        };
        let address = address.ok_or(ClientError::UnknownBroker(node_id))?;
        self.connection_to_address(&address).await
    }

    /// Any live broker: known brokers first, then the bootstrap list.
    pub async fn any_connection(&self) -> Result<Arc<Connection>> {
        let mut candidates: Vec<String> = self
            .metadata()
            .brokers
            .values()
            .map(BrokerMetadata::address)
            .collect();
        candidates.extend(self.inner.config.bootstrap.iter().cloned());
        let mut last_error = None;
        for address in &candidates {
            match self.connection_to_address(address).await {
                Ok(connection) => return Ok(connection),
                Err(error) => {
                    tracing::debug!(%address, %error, "broker unreachable");
                    last_error = Some(error);
                }
            }
        }
        let last = last_error.unwrap_or(ClientError::InvalidConfig("no broker address".into()));
        Err(ClientError::NoBrokerReachable {
            addresses: dedup(candidates).join(", "),
            last: Box::new(last),
        })
    }

    /// The connection to the leader of `topic`-`partition`, per cached metadata.
    pub async fn leader_connection(&self, topic: &str, partition: i32) -> Result<Arc<Connection>> {
        let leader = self.leader_of(topic, partition)?;
        self.connection_to_broker(leader).await
    }

    pub fn leader_of(&self, topic: &str, partition: i32) -> Result<i32> {
        let topic_metadata = self
            .cached_topic(topic)
            .ok_or_else(|| ClientError::UnknownTopic(topic.to_string()))?;
        let partition_metadata = topic_metadata
            .partitions
            .iter()
            .find(|candidate| candidate.partition == partition)
            .ok_or_else(|| ClientError::UnknownPartition {
                topic: topic.to_string(),
                partition,
            })?;
        if partition_metadata.leader < 0 {
            return Err(ClientError::NoLeader {
                topic: topic.to_string(),
                partition,
            });
        }
        Ok(partition_metadata.leader)
    }

    /// Fetches metadata for `topics` (`None`: all topics; `Some(&[])`: brokers only) and
    /// merges it into the cache. Topics the broker reports as unknown are dropped from it.
    pub async fn refresh_metadata(
        &self,
        topics: Option<&[String]>,
        allow_auto_topic_creation: bool,
    ) -> Result<ClusterMetadata> {
        let connection = self.any_connection().await?;
        let request = MetadataRequest::default()
            .with_allow_auto_topic_creation(allow_auto_topic_creation)
            .with_topics(topics.map(|names| {
                names
                    .iter()
                    .map(|name| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))
                    })
                    .collect()
            }));
        let (_, response) = connection
            .call(&request, METADATA_MAX_VERSION, Duration::ZERO)
            .await?;
        let fresh = cluster_metadata_of(response);
        let mut cache = self
            .inner
            .metadata
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.cluster_id = fresh.cluster_id.clone();
        cache.controller_id = fresh.controller_id;
        if !fresh.brokers.is_empty() {
            cache.brokers = fresh.brokers.clone();
        }
        if topics.is_none() {
            cache.topics.clear();
        }
        for (name, topic) in &fresh.topics {
            if topic.error == Some(ResponseError::UnknownTopicOrPartition) {
                cache.topics.remove(name);
            } else {
                cache.topics.insert(name.clone(), topic.clone());
            }
        }
        Ok(fresh)
    }

    /// Metadata of one topic, refreshed from the broker; an error if it does not exist.
    pub async fn topic_metadata(
        &self,
        topic: &str,
        allow_auto_create: bool,
    ) -> Result<TopicMetadata> {
        let fresh = self
            .refresh_metadata(Some(&[topic.to_string()]), allow_auto_create)
            .await?;
        let metadata = fresh
            .topics
            .get(topic)
            .cloned()
            .ok_or_else(|| ClientError::UnknownTopic(topic.to_string()))?;
        match metadata.error {
            None => Ok(metadata),
            Some(ResponseError::UnknownTopicOrPartition) => {
                Err(ClientError::UnknownTopic(topic.to_string()))
            }
            Some(error) => Err(ClientError::broker(
                format!("metadata for topic `{topic}`"),
                error,
                None,
            )),
        }
    }
}

fn cluster_metadata_of(response: MetadataResponse) -> ClusterMetadata {
    let brokers = response
        .brokers
        .into_iter()
        .map(|broker| {
            let node_id = broker.node_id.0;
            let metadata = BrokerMetadata {
                node_id,
                host: broker.host.to_string(),
                port: broker.port,
                rack: broker.rack.map(|rack| rack.to_string()),
            };
            (node_id, metadata)
        })
        .collect();
    let topics = response
        .topics
        .into_iter()
        .filter_map(|topic| {
            let name = topic.name?.0.to_string();
            let mut partitions: Vec<PartitionMetadata> = topic
                .partitions
                .into_iter()
                .map(|partition| PartitionMetadata {
                    partition: partition.partition_index,
                    leader: partition.leader_id.0,
                    leader_epoch: partition.leader_epoch,
                    replicas: partition.replica_nodes.iter().map(|id| id.0).collect(),
                    isr: partition.isr_nodes.iter().map(|id| id.0).collect(),
                    offline_replicas: partition.offline_replicas.iter().map(|id| id.0).collect(),
                    error: ResponseError::try_from_code(partition.error_code),
                })
                .collect();
            partitions.sort_by_key(|partition| partition.partition);
            let metadata = TopicMetadata {
                name: name.clone(),
                topic_id: topic.topic_id.to_string(),
                is_internal: topic.is_internal,
                error: ResponseError::try_from_code(topic.error_code),
                partitions,
            };
            Some((name, metadata))
        })
        .collect();
    ClusterMetadata {
        cluster_id: response.cluster_id.map(|id| id.to_string()),
        controller_id: response.controller_id.0,
        brokers,
        topics,
    }
}

fn dedup(mut addresses: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    addresses.retain(|address| seen.insert(address.clone()));
    addresses
}
