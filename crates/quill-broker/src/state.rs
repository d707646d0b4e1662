//! Everything a request handler can reach: configuration and the services, plus the one
//! serialized path for metadata changes.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use quill_group::GroupCoordinator;
use quill_meta::{MetaError, MetadataImage, MetadataRecord, Placement, TopicInfo};
use quill_txn::{TransactionCoordinator, TRANSACTION_STATE_TOPIC};
use tokio::sync::{watch, Mutex, OnceCell};

use crate::config::BrokerConfig;
use crate::metadata::MetadataService;
use crate::offsets_store::OFFSETS_TOPIC;
use crate::partitions::PartitionManager;

/// `__consumer_offsets` settings Kafka uses (`offsets.topic.segment.bytes` = 100 MiB).
const OFFSETS_TOPIC_SEGMENT_BYTES: &str = "104857600";
/// How long the request that creates an internal topic waits for its empty partitions to load.
const FRESH_LOAD_WAIT: Duration = Duration::from_secs(10);
/// Backoff between attempts to load a coordinator partition whose log cannot be read (a full
/// disk or an exhausted descriptor table): doubles from the first to the last.
const LOAD_RETRY_FIRST: Duration = Duration::from_millis(100);
const LOAD_RETRY_MAX: Duration = Duration::from_secs(5);
static LOAD_WARNINGS: crate::rate_limit::WarnLimiter =
    crate::rate_limit::WarnLimiter::new(crate::rate_limit::WARNING_INTERVAL);

/// Shared by every connection and request task (behind an `Arc`).
pub struct BrokerState {
    pub config: BrokerConfig,
    pub metadata: Arc<MetadataService>,
    pub partitions: Arc<PartitionManager>,
    pub groups: GroupCoordinator,
    pub txn: TransactionCoordinator,
    /// Hot-path counters read by the metrics endpoint.
    pub metrics: Arc<crate::metrics::BrokerMetrics>,
    /// Connections to the other brokers for transaction verification (markers have their own).
    pub inter_broker: crate::inter_broker::InterBrokerClient,
    /// The follower side of replication: one fetcher per leader this broker follows.
    pub replica_fetchers: crate::replica_fetcher::ReplicaFetchers,
    /// Wakes ISR maintenance (`isr.rs`) when a follower outside the ISR may rejoin.
    pub isr_check: tokio::sync::Notify,
    /// Serializes metadata changes so "append, then reconcile logs" happen in log order.
    change_lock: Mutex<()>,
    /// The image handlers serve: the latest one the partition logs were reconciled with, so
    /// Metadata never names this broker leader of a partition whose log it has not opened.
    served_image: watch::Sender<Arc<MetadataImage>>,
    /// Set once `__consumer_offsets` exists and is served here.
    offsets_topic: OnceCell<()>,
    /// Set once `__transaction_state` exists and is served here.
    transaction_topic: OnceCell<()>,
    /// The internal-topic partitions whose coordinator runs here (those this broker leads).
    coordinators: crate::coordinator_leadership::CoordinatorLeadership,
    /// Flips to true at shutdown; long waits (Fetch long-poll) end early.
    pub shutdown: watch::Receiver<bool>,
    /// False until this broker's image has caught up with the metadata quorum (a broker of a
    /// cluster: once its registration is applied here; a single node: from the start). Until
    /// then it leads nothing: its image may still name it leader of partitions that moved or
    /// lost their leader while it was away.
    caught_up: std::sync::atomic::AtomicBool,
}

impl BrokerState {
    pub fn new(
        config: BrokerConfig,
        metadata: Arc<MetadataService>,
        partitions: Arc<PartitionManager>,
        groups: GroupCoordinator,
        txn: TransactionCoordinator,
        shutdown: watch::Receiver<bool>,
        reconciled_image: Arc<MetadataImage>,
    ) -> BrokerState {
        let single_node = !metadata.is_clustered();
        let node_id = config.node_id;
        let served_image = watch::channel(reconciled_image).0;
        let replica_fetchers = crate::replica_fetcher::ReplicaFetchers::new(
            config.node_id,
            served_image.subscribe(),
            shutdown.clone(),
        );
        BrokerState {
            config,
            metadata,
            partitions,
            groups,
            txn,
            metrics: Arc::default(),
            inter_broker: crate::inter_broker::InterBrokerClient::default(),
            replica_fetchers,
            isr_check: tokio::sync::Notify::new(),
            change_lock: Mutex::new(()),
            served_image,
            caught_up: std::sync::atomic::AtomicBool::new(single_node),
            offsets_topic: OnceCell::new(),
            transaction_topic: OnceCell::new(),
            coordinators: crate::coordinator_leadership::CoordinatorLeadership::new(node_id),
            shutdown,
        }
    }

    /// Creates `__consumer_offsets` on first use (as Kafka does on the first FindCoordinator)
    /// and starts loading the group coordinator's partitions this broker leads. Returns once
    /// loading has *started* (every partition then answers COORDINATOR_LOAD_IN_PROGRESS until it
    /// is loaded), so FindCoordinator never waits for a replay; only when this call created the
    /// (empty) topic does it wait, boundedly, for the load, so a first client is not sent to
    /// retry. From then on the coordinator follows leadership (see `coordinator_leadership`).
    pub async fn ensure_offsets_topic(&self) -> Result<(), MetaError> {
        self.offsets_topic
            .get_or_try_init(|| async {
                let partition_count = self.groups.config().offsets_topic_partitions;
                self.ensure_internal_topic(
                    OFFSETS_TOPIC,
                    partition_count,
                    self.config.offsets_topic_replication_factor,
                )
                .await
            })
            .await
            .map(|_| ())
    }

    /// Creates `__transaction_state` on first use (the first FindCoordinator for a
    /// transactional id or InitProducerId with one, as in Kafka) and starts loading the
    /// transaction coordinator from it, like [`Self::ensure_offsets_topic`]. A partition's load
    /// waits for the `__consumer_offsets` loads in progress here: resumed transactions write
    /// markers, and a marker in a group partition needs that partition's pending offsets in
    /// memory.
    pub async fn ensure_transaction_topic(&self) -> Result<(), MetaError> {
        self.ensure_offsets_topic().await?;
        self.transaction_topic
            .get_or_try_init(|| async {
                let partition_count = self.txn.config().transaction_state_partitions;
                self.ensure_internal_topic(
                    TRANSACTION_STATE_TOPIC,
                    partition_count,
                    self.config.transaction_state_log_replication_factor,
                )
                .await
            })
            .await
            .map(|_| ())
    }

    /// Creates an internal topic unless it exists, waits until it is served here and starts
    /// loading the coordinator partitions this broker leads (waiting for them, boundedly,
    /// only when this call created the topic).
    async fn ensure_internal_topic(
        &self,
        topic: &'static str,
        partition_count: i32,
        replication_factor: i16,
    ) -> Result<(), MetaError> {
        let created = self
            .create_internal_topic(topic, partition_count, replication_factor)
            .await?;
        self.wait_served(topic).await?;
        self.follow_coordinator_leadership();
        if created {
            self.coordinators.wait_loaded(topic, FRESH_LOAD_WAIT).await;
        }
        Ok(())
    }

    /// Loads the coordinator partitions the served image names this broker leader of and
    /// unloads those it no longer leads (Kafka's onElection / onResignation). A broker not
    /// caught up with the quorum leads nothing.
    pub fn follow_coordinator_leadership(&self) {
        self.coordinators.follow(
            || (self.image(), !self.is_caught_up()),
            &self.groups,
            &self.txn,
            &self.shutdown,
        );
    }

    /// Waits (bounded) until the served image holds `topic`: another broker may have created it
    /// a moment ago, committed but not yet applied here. An error leaves the caller's
    /// once-only initialisation for a later request to retry.
    async fn wait_served(&self, topic: &str) -> Result<(), MetaError> {
        let mut served = self.served_image.subscribe();
        let appeared = tokio::time::timeout(
            FRESH_LOAD_WAIT,
            served.wait_for(|image| image.topic(topic).is_some()),
        )
        .await;
        match appeared {
            Ok(Ok(_)) => Ok(()),
            _ => Err(MetaError::OutcomeUnknown(format!(
                "{topic} exists in the metadata log but is not applied on this broker yet"
            ))),
        }
    }

    /// Makes this broker follow an image committed through the quorum (changes made by other
    /// brokers included): partition logs first, then the coordinators of internal topics that
    /// appeared.
    pub async fn follow_image(&self, image: Arc<MetadataImage>) {
        {
            let _serialized = self.change_lock.lock().await;
            if image.offset > self.image().offset {
                let partitions = self.partitions.clone();
                let config = self.config.clone();
                let reconciled = Arc::clone(&image);
                let _ = blocking(move || {
                    let _ = partitions.reconcile(&reconciled, &config);
                })
                .await;
                self.serve_image(&image);
                self.replica_fetchers.update(&self.partitions);
                self.follow_coordinator_leadership();
            }
        }
        if image.topic(OFFSETS_TOPIC).is_some() && self.offsets_topic.get().is_none() {
            if let Err(error) = self.ensure_offsets_topic().await {
                tracing::warn!(%error, "cannot start the group coordinator's partitions");
            }
        }
        if image.topic(TRANSACTION_STATE_TOPIC).is_some() && self.transaction_topic.get().is_none()
        {
            if let Err(error) = self.ensure_transaction_topic().await {
                tracing::warn!(%error, "cannot start the transaction coordinator's partitions");
            }
        }
    }

    /// Creates a compacted internal topic unless it exists; true if this call created it.
    ///
    /// Its replication factor is the configured one (`offsets.topic.replication.factor`,
    /// `transaction.state.log.replication.factor`, both 3 by default) capped to the active
    /// brokers at this moment, once: the topic keeps what it got. Kafka does not cap: it
    /// refuses to create the topic (FindCoordinator answers COORDINATOR_NOT_AVAILABLE) until
    /// that many brokers are up, and its single-node example configuration sets both to 1;
    /// Quill caps so that a single node and a small cluster work without settings.
    async fn create_internal_topic(
        &self,
        name: &str,
        partition_count: i32,
        configured_replication_factor: i16,
    ) -> Result<bool, MetaError> {
        let image = self.image();
        if image.topic(name).is_some() {
            return Ok(false);
        }
        let active = quill_meta::placement::active_broker_count(&image).max(1);
        let replication_factor =
            configured_replication_factor.min(i16::try_from(active).unwrap_or(i16::MAX));
        let configs = BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            (
                "segment.bytes".to_string(),
                OFFSETS_TOPIC_SEGMENT_BYTES.to_string(),
            ),
        ]);
        tracing::info!(
            partitions = partition_count,
            replication_factor,
            "creating {name}"
        );
        match self
            .create_topic(
                name,
                partition_count,
                replication_factor,
                None,
                configs,
                false,
            )
            .await
        {
            Ok(_) => Ok(true),
            // Created meanwhile, here or (through the quorum) by another broker.
            Err(MetaError::TopicAlreadyExists(_)) => Ok(false),
            Err(error)
                if error.kafka_error_code() == quill_meta::error_code::TOPIC_ALREADY_EXISTS =>
            {
                Ok(false)
            }
            Err(error) => Err(error),
        }
    }

    /// Reserves the next block of producer ids in the metadata log (durable before use).
    pub async fn allocate_producer_ids(&self) -> Result<std::ops::Range<i64>, MetaError> {
        let (record, block) =
            quill_meta::plan_allocate_producer_ids(&self.image(), self.config.node_id)?;
        self.change_metadata(vec![record]).await?;
        Ok(block)
    }

    /// Kafka's AlterPartition, for the leader of a partition: replaces its ISR with `new_isr`
    /// if this broker still leads it at `leader_epoch` and it is still at `partition_epoch`
    /// (both as read from the image). Proposed to the metadata quorum from any node (forwarded
    /// to the active controller), validated where it commits by the state machine, and
    /// answered once applied here: `Ok` is the partition's state then (its new partition
    /// epoch included; later changes may show too). Errors, with Kafka's codes:
    /// FENCED_LEADER_EPOCH (no longer the leader's epoch), INVALID_UPDATE_VERSION (the
    /// partition changed meanwhile: re-read and retry), NOT_LEADER_OR_FOLLOWER (this broker
    /// does not lead it), INELIGIBLE_REPLICA (a new ISR member is fenced, shutting down or
    /// unregistered), UNKNOWN_TOPIC_ID / UNKNOWN_TOPIC_OR_PARTITION, INVALID_REQUEST (the
    /// ISR lacks the leader or is not a subset of the replicas), and `Retriable` (no quorum,
    /// a controller behind the caller, outcome unknown).
    pub async fn alter_partition(
        &self,
        topic_id: quill_meta::Uuid,
        partition: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        new_isr: Vec<i32>,
    ) -> Result<quill_meta::PartitionInfo, quill_meta::AlterPartitionError> {
        let record = quill_meta::plan_alter_partition(
            &self.metadata.image(),
            self.config.node_id,
            topic_id,
            partition,
            (leader_epoch, partition_epoch),
            new_isr,
        )?;
        let image = self.change_metadata(vec![record]).await?;
        image
            .topic_by_id(&topic_id)
            .and_then(|topic| topic.partition(partition))
            .cloned()
            .ok_or_else(|| {
                quill_meta::AlterPartitionError::UnknownTopicId(format!(
                    "topic {topic_id} was deleted after its ISR changed"
                ))
            })
    }

    /// Whether this broker may act as leader yet (see `caught_up`).
    pub fn is_caught_up(&self) -> bool {
        self.caught_up.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Called once the broker's registration is applied here: from now on it coordinates the
    /// internal-topic partitions it leads.
    pub fn mark_caught_up(&self) {
        self.caught_up
            .store(true, std::sync::atomic::Ordering::Release);
        self.follow_coordinator_leadership();
    }

    /// The image requests are answered from (see `served_image`).
    pub fn image(&self) -> Arc<MetadataImage> {
        Arc::clone(&self.served_image.borrow())
    }

    /// Serves `image` once the logs match it (images only move forward).
    fn serve_image(&self, image: &Arc<MetadataImage>) {
        self.served_image.send_if_modified(|served| {
            if image.offset > served.offset {
                *served = Arc::clone(image);
                true
            } else {
                false
            }
        });
    }

    /// Commits one metadata entry through the quorum (validated by the state machine, durable
    /// on a majority) and then makes the partition logs match the new image. Blocking work
    /// runs on the blocking pool.
    pub async fn change_metadata(
        &self,
        records: Vec<MetadataRecord>,
    ) -> Result<Arc<MetadataImage>, MetaError> {
        self.change_metadata_by(records, Proposer::AnyNode).await
    }

    /// `change_metadata` for a decision of the active controller (liveness fencing): it
    /// commits only while this node leads the quorum, never forwarded to a successor.
    pub async fn change_metadata_as_controller(
        &self,
        records: Vec<MetadataRecord>,
    ) -> Result<Arc<MetadataImage>, MetaError> {
        self.change_metadata_by(records, Proposer::ActiveController)
            .await
    }

    async fn change_metadata_by(
        &self,
        records: Vec<MetadataRecord>,
        proposer: Proposer,
    ) -> Result<Arc<MetadataImage>, MetaError> {
        let _serialized = self.change_lock.lock().await;
        // New partitions' logs are created before the change is proposed: if they cannot be
        // (full disk, no file descriptors) the change is refused and nothing exists.
        let current = self.metadata.image();
        let next = quill_meta::apply_entry(&current, current.offset + 1, &records)?;
        let partitions = self.partitions.clone();
        let config = self.config.clone();
        let opened = blocking(move || {
            partitions
                .open_new_partitions(&current, &next, &config)
                .map_err(|error| {
                    MetaError::Io(std::io::Error::other(format!(
                        "cannot create the partition logs: {error}"
                    )))
                })
        })
        .await??;
        let proposed = match proposer {
            Proposer::AnyNode => self.metadata.propose(records).await,
            Proposer::ActiveController => self.metadata.propose_as_controller(records).await,
        };
        let image = match proposed {
            Ok(image) => image,
            Err(error) => {
                let partitions = self.partitions.clone();
                blocking(move || partitions.discard(opened)).await?;
                return Err(error);
            }
        };
        // Reconcile logs its own (rate-limited) warnings and retries failed opens later.
        let partitions = self.partitions.clone();
        let config = self.config.clone();
        let reconciled = Arc::clone(&image);
        blocking(move || {
            let _ = partitions.reconcile(&reconciled, &config);
        })
        .await?;
        self.serve_image(&image);
        self.replica_fetchers.update(&self.partitions);
        self.follow_coordinator_leadership();
        Ok(image)
    }

    /// Blocking work on the blocking pool: opens hosted partition logs that failed to open
    /// earlier, once their backoff has passed (maintenance calls it while any is missing).
    pub async fn retry_missing_logs(&self) {
        if !self.partitions.has_failed_opens() {
            return;
        }
        let _serialized = self.change_lock.lock().await;
        let image = self.image();
        let partitions = self.partitions.clone();
        let config = self.config.clone();
        let _ = tokio::task::spawn_blocking(move || partitions.reconcile(&image, &config)).await;
        self.replica_fetchers.update(&self.partitions);
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

/// Runs blocking file work on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, MetaError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| MetaError::Io(std::io::Error::other(error.to_string())))
}

/// Loads one coordinator partition, retrying with backoff while it fails (its log unreadable
/// for now); the partition answers COORDINATOR_LOAD_IN_PROGRESS meanwhile. Gives up at shutdown.
pub(crate) async fn load_with_retry<F, Fut, E>(
    topic: &'static str,
    partition: i32,
    mut shutdown: watch::Receiver<bool>,
    mut load: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    let mut backoff = LOAD_RETRY_FIRST;
    loop {
        let error = match load().await {
            Ok(()) => return,
            Err(error) => error,
        };
        crate::warn_limited!(LOAD_WARNINGS, %error, partition, retry_in_ms = backoff.as_millis(), "loading {topic} failed; retrying");
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = shutdown.wait_for(|stopping| *stopping) => return,
        }
        backoff = (backoff * 2).min(LOAD_RETRY_MAX);
    }
}

/// Who may commit a metadata change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proposer {
    /// Any node: one that does not lead forwards the change to the active controller, and a
    /// change in flight when the leader changes goes to the next one (client requests).
    AnyNode,
    /// Only this node while it is the active controller (its own decisions).
    ActiveController,
}
