//! Everything a request handler can reach: configuration and the services, plus the one
//! serialized path for metadata changes.

use std::collections::BTreeMap;
use std::sync::Arc;

use quill_group::GroupCoordinator;
use quill_meta::{MetaError, MetadataImage, MetadataRecord, Placement, TopicInfo};
use quill_txn::{TransactionCoordinator, TRANSACTION_STATE_TOPIC};
use tokio::sync::{watch, Mutex};

use crate::config::BrokerConfig;
use crate::metadata::MetadataService;
use crate::offsets_store::OFFSETS_TOPIC;
use crate::partitions::PartitionManager;

/// `__consumer_offsets` settings Kafka uses (`offsets.topic.segment.bytes` = 100 MiB).
const OFFSETS_TOPIC_SEGMENT_BYTES: &str = "104857600";

/// Shared by every connection and request task (behind an `Arc`).
pub struct BrokerState {
    pub config: BrokerConfig,
    pub metadata: Arc<MetadataService>,
    pub partitions: Arc<PartitionManager>,
    pub groups: GroupCoordinator,
    pub txn: TransactionCoordinator,
    /// Serializes metadata changes so "append, then reconcile logs" happen in log order.
    change_lock: Mutex<()>,
    /// True once `__consumer_offsets` exists and the coordinator loaded its partitions.
    offsets_topic_ready: Mutex<bool>,
    /// True once `__transaction_state` exists and the coordinator loaded its partitions.
    transaction_topic_ready: Mutex<bool>,
    /// Flips to true at shutdown; long waits (Fetch long-poll) end early.
    pub shutdown: watch::Receiver<bool>,
}

impl BrokerState {
    pub fn new(
        config: BrokerConfig,
        metadata: Arc<MetadataService>,
        partitions: Arc<PartitionManager>,
        groups: GroupCoordinator,
        txn: TransactionCoordinator,
        shutdown: watch::Receiver<bool>,
    ) -> BrokerState {
        BrokerState {
            config,
            metadata,
            partitions,
            groups,
            txn,
            change_lock: Mutex::new(()),
            offsets_topic_ready: Mutex::new(false),
            transaction_topic_ready: Mutex::new(false),
            shutdown,
        }
    }

    /// Creates `__consumer_offsets` on first use (as Kafka does on the first FindCoordinator)
    /// and loads the coordinator's partitions from it. Concurrent callers wait for one another.
    pub async fn ensure_offsets_topic(&self) -> Result<(), MetaError> {
        let mut ready = self.offsets_topic_ready.lock().await;
        if *ready {
            return Ok(());
        }
        if self.image().topic(OFFSETS_TOPIC).is_none() {
            let configs = BTreeMap::from([
                ("cleanup.policy".to_string(), "compact".to_string()),
                (
                    "segment.bytes".to_string(),
                    OFFSETS_TOPIC_SEGMENT_BYTES.to_string(),
                ),
            ]);
            let partition_count = self.groups.config().offsets_topic_partitions;
            tracing::info!(partitions = partition_count, "creating {OFFSETS_TOPIC}");
            match self
                .create_topic(OFFSETS_TOPIC, partition_count, 1, None, configs, false)
                .await
            {
                Ok(_) | Err(MetaError::TopicAlreadyExists(_)) => {}
                Err(error) => return Err(error),
            }
        }
        self.groups.load_all_partitions().await.map_err(|error| {
            MetaError::Io(std::io::Error::other(format!(
                "loading {OFFSETS_TOPIC}: {error}"
            )))
        })?;
        *ready = true;
        Ok(())
    }

    /// Creates `__transaction_state` on first use (the first FindCoordinator for a
    /// transactional id or InitProducerId with one, as in Kafka) and loads the transaction
    /// coordinator from it. `__consumer_offsets` comes first: AddOffsetsToTxn and the markers of
    /// transactional offset commits need the group coordinator loaded.
    pub async fn ensure_transaction_topic(&self) -> Result<(), MetaError> {
        self.ensure_offsets_topic().await?;
        let mut ready = self.transaction_topic_ready.lock().await;
        if *ready {
            return Ok(());
        }
        if self.image().topic(TRANSACTION_STATE_TOPIC).is_none() {
            let configs = BTreeMap::from([
                ("cleanup.policy".to_string(), "compact".to_string()),
                (
                    "segment.bytes".to_string(),
                    OFFSETS_TOPIC_SEGMENT_BYTES.to_string(),
                ),
            ]);
            let partition_count = self.txn.config().transaction_state_partitions;
            tracing::info!(
                partitions = partition_count,
                "creating {TRANSACTION_STATE_TOPIC}"
            );
            match self
                .create_topic(
                    TRANSACTION_STATE_TOPIC,
                    partition_count,
                    1,
                    None,
                    configs,
                    false,
                )
                .await
            {
                Ok(_) | Err(MetaError::TopicAlreadyExists(_)) => {}
                Err(error) => return Err(error),
            }
        }
        self.txn.load_all_partitions().await.map_err(|error| {
            MetaError::Io(std::io::Error::other(format!(
                "loading {TRANSACTION_STATE_TOPIC}: {error}"
            )))
        })?;
        *ready = true;
        Ok(())
    }

    /// Reserves the next block of producer ids in the metadata log (durable before use).
    pub async fn allocate_producer_ids(&self) -> Result<std::ops::Range<i64>, MetaError> {
        let (record, block) =
            quill_meta::plan_allocate_producer_ids(&self.image(), self.config.node_id)?;
        self.change_metadata(vec![record]).await?;
        Ok(block)
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        self.metadata.image()
    }

    /// Appends one metadata entry (validated by the state machine, persisted) and then makes
    /// the partition logs match the new image. Blocking work runs on the blocking pool.
    pub async fn change_metadata(
        &self,
        records: Vec<MetadataRecord>,
    ) -> Result<Arc<MetadataImage>, MetaError> {
        let _serialized = self.change_lock.lock().await;
        let metadata = self.metadata.clone();
        let partitions = self.partitions.clone();
        let config = self.config.clone();
        tokio::task::spawn_blocking(move || {
            let image = metadata.append(records)?;
            if let Err(error) = partitions.reconcile(&image, &config) {
                tracing::error!(%error, "partition logs do not match the metadata image");
            }
            Ok(image)
        })
        .await
        .map_err(|error| MetaError::Io(std::io::Error::other(error.to_string())))?
    }

    /// Creates a topic (or only validates the request when `validate_only`). `-1` partitions
    /// or replication factor mean the broker defaults.
    pub async fn create_topic(
        &self,
        name: &str,
        partition_count: i32,
        replication_factor: i16,
        manual_assignment: Option<Vec<Vec<i32>>>,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<TopicInfo, MetaError> {
        let placement = match manual_assignment {
            Some(replica_lists) => Placement::Manual(replica_lists),
            None => Placement::Automatic {
                partition_count: if partition_count == -1 {
                    self.config.num_partitions
                } else {
                    partition_count
                },
                replication_factor: if replication_factor == -1 {
                    self.config.default_replication_factor
                } else {
                    replication_factor
                },
            },
        };
        let image = self.image();
        let record = quill_meta::plan_create_topic(&image, name, placement, configs)?;
        let image = if validate_only {
            Arc::new(quill_meta::apply(&image, &record)?)
        } else {
            self.change_metadata(vec![record]).await?
        };
        image
            .topic(name)
            .cloned()
            .ok_or_else(|| MetaError::UnknownTopic(name.to_string()))
    }
}
