//! The follower side of replication (Kafka's ReplicaFetcherManager / ReplicaFetcherThread):
//! one task per leader broker fetches every partition this broker follows there, over one
//! connection of its own (quill-client's `Connection`, the Kafka protocol), with Kafka's own
//! replica Fetch (this broker's id as replica id, the follower's leader epoch).
//!
//! For each partition, on every new leadership (a new leader or leader epoch in the image) the
//! follower first finds the point where its log and the leader's diverge with
//! OffsetForLeaderEpoch (KIP-101/KIP-279) and truncates there (to its high watermark only when
//! the leader cannot say), then fetches. Fetched batches are appended as the leader wrote them
//! (`Log::append_as_follower`, on the blocking pool); the next fetch — which tells the leader
//! how far this follower is — is sent only once they are durable per the flush policy, so a
//! fetch offset proves durability (see `replication.rs`). A fetcher stops fetching a partition
//! when this broker leads it or no longer hosts it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, FetchResponse, OffsetForLeaderEpochRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use quill_client::Connection;
use quill_meta::MetadataImage;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::partitions::{Partition, PartitionKey, PartitionManager, Role};

const CLIENT_ID: &str = "quill-replica-fetcher";
/// Kafka's `replica.fetch.wait.max.ms`, `replica.fetch.min.bytes`,
/// `replica.fetch.response.max.bytes` and `replica.fetch.max.bytes` defaults.
const FETCH_WAIT_MAX_MS: i32 = 500;
const FETCH_MIN_BYTES: i32 = 1;
const FETCH_RESPONSE_MAX_BYTES: i32 = 10 * 1024 * 1024;
const FETCH_MAX_BYTES: i32 = 1024 * 1024;
/// Kafka's `replica.fetch.backoff.ms`: after an error, a partition (or a connection) waits.
const FETCH_BACKOFF: Duration = Duration::from_secs(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Kafka's inter-broker `request.timeout.ms`, beyond the long-poll wait.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The Fetch versions spoken to a leader: v12 brings `last_fetched_epoch` (KIP-595) and
/// diverging epochs; v13 topic ids.
const MAX_FETCH_VERSION: i16 = 17;
const FIRST_FETCH_VERSION_WITH_TOPIC_IDS: i16 = 13;
const FIRST_FETCH_VERSION_WITH_REPLICA_STATE: i16 = 15;
const MAX_OFFSET_FOR_LEADER_EPOCH_VERSION: i16 = 4;

static FETCH_WARNINGS: crate::rate_limit::WarnLimiter =
    crate::rate_limit::WarnLimiter::new(crate::rate_limit::WARNING_INTERVAL);

/// A partition to follow, and in which leader epoch.
#[derive(Clone)]
pub struct FollowTarget {
    pub partition: Arc<Partition>,
    pub leader_epoch: i32,
}

impl PartialEq for FollowTarget {
    fn eq(&self, other: &FollowTarget) -> bool {
        Arc::ptr_eq(&self.partition, &other.partition) && self.leader_epoch == other.leader_epoch
    }
}

type Assigned = BTreeMap<PartitionKey, FollowTarget>;

/// The fetchers of this broker, one per leader it follows partitions of. Keyed by node ids of
/// the image, so bounded by the cluster's size.
pub struct ReplicaFetchers {
    node_id: i32,
    image: watch::Receiver<Arc<MetadataImage>>,
    shutdown: watch::Receiver<bool>,
    fetchers: Mutex<HashMap<i32, watch::Sender<Assigned>>>,
}

impl ReplicaFetchers {
    pub fn new(
        node_id: i32,
        image: watch::Receiver<Arc<MetadataImage>>,
        shutdown: watch::Receiver<bool>,
    ) -> ReplicaFetchers {
        ReplicaFetchers {
            node_id,
            image,
            shutdown,
            fetchers: Mutex::new(HashMap::new()),
        }
    }

    /// Makes the fetchers match the partitions' roles (call after every reconciliation): each
    /// followed partition is fetched from its leader, in its leader epoch; a fetcher left with
    /// nothing to fetch stops.
    pub fn update(&self, partitions: &PartitionManager) {
        let mut wanted: HashMap<i32, Assigned> = HashMap::new();
        for partition in partitions.all() {
            let state = partition.replica_state();
            if let Role::Follower { leader } = state.role {
                let key = (partition.topic.clone(), partition.partition);
                wanted.entry(leader).or_default().insert(
                    key,
                    FollowTarget {
                        partition,
                        leader_epoch: state.leader_epoch,
                    },
                );
            }
        }
        let mut fetchers = self
            .fetchers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Dropping a sender ends its task.
        fetchers.retain(|leader, _| wanted.contains_key(leader));
        for (leader, assigned) in wanted {
            if let Some(sender) = fetchers.get(&leader) {
                sender.send_if_modified(|current| {
                    let changed = *current != assigned;
                    if changed {
                        *current = assigned;
                    }
                    changed
                });
                continue;
            }
            let (sender, receiver) = watch::channel(assigned);
            let fetcher = Fetcher {
                node_id: self.node_id,
                leader,
                assigned: receiver,
                image: self.image.clone(),
                shutdown: self.shutdown.clone(),
                partitions: BTreeMap::new(),
                connection: None,
            };
            tokio::spawn(fetcher.run());
            fetchers.insert(leader, sender);
        }
    }
}

/// Where one followed partition stands.
struct Following {
    target: FollowTarget,
    /// Set on every new leadership and diverging epoch: find the divergence point (and
    /// truncate) before fetching again.
    needs_truncation: bool,
    /// After an error the partition waits (`replica.fetch.backoff.ms`).
    retry_at: Option<Instant>,
}

impl Following {
    fn ready(&self, now: Instant) -> bool {
        self.retry_at.is_none_or(|at| now >= at)
    }

    fn back_off(&mut self) {
        self.retry_at = Some(Instant::now() + FETCH_BACKOFF);
    }
}

struct Fetcher {
    node_id: i32,
    leader: i32,
    assigned: watch::Receiver<Assigned>,
    image: watch::Receiver<Arc<MetadataImage>>,
    shutdown: watch::Receiver<bool>,
    partitions: BTreeMap<PartitionKey, Following>,
    connection: Option<Arc<Connection>>,
}

/// What ends one round of the loop early.
enum Interrupted {
    /// The assignment's sender is gone (the fetcher is no longer wanted) or the broker stops.
    Stop,
}

impl Fetcher {
    async fn run(mut self) {
        tracing::debug!(leader = self.leader, "replica fetcher started");
        while self.round().await.is_ok() {}
        tracing::debug!(leader = self.leader, "replica fetcher stopped");
    }

    async fn round(&mut self) -> Result<(), Interrupted> {
        if *self.shutdown.borrow() {
            return Err(Interrupted::Stop);
        }
        self.sync_assignment();
        if self.partitions.is_empty() {
            return self.wait(None).await;
        }
        let connection = match self.connection().await {
            Ok(connection) => connection,
            Err(error) => {
                crate::warn_limited!(FETCH_WARNINGS, leader = self.leader, %error, "cannot connect to the leader to replicate");
                return self.wait(Some(Instant::now() + FETCH_BACKOFF)).await;
            }
        };
        let now = Instant::now();
        let truncating: Vec<PartitionKey> = self
            .partitions
            .iter()
            .filter(|(_, following)| following.needs_truncation && following.ready(now))
            .map(|(key, _)| key.clone())
            .collect();
        if !truncating.is_empty() {
            if let Err(error) = self.truncate(&connection, &truncating).await {
                self.connection_failed(&connection, &error);
                return self.wait(Some(Instant::now() + FETCH_BACKOFF)).await;
            }
        }
        let now = Instant::now();
        let fetching: Vec<PartitionKey> = self
            .partitions
            .iter()
            .filter(|(_, following)| !following.needs_truncation && following.ready(now))
            .map(|(key, _)| key.clone())
            .collect();
        if fetching.is_empty() {
            let next = self
                .partitions
                .values()
                .filter_map(|following| following.retry_at)
                .min();
            return self.wait(next).await;
        }
        if let Err(error) = self.fetch(&connection, &fetching).await {
            self.connection_failed(&connection, &error);
            return self.wait(Some(Instant::now() + FETCH_BACKOFF)).await;
        }
        Ok(())
    }

    /// Waits until `until` (or forever with `None`) unless the assignment changes first.
    async fn wait(&mut self, until: Option<Instant>) -> Result<(), Interrupted> {
        let sleep = async {
            match until {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sleep => Ok(()),
            changed = self.assigned.changed() => changed.map_err(|_| Interrupted::Stop),
            _ = self.shutdown.wait_for(|stopping| *stopping) => Err(Interrupted::Stop),
        }
    }

    /// Takes the newest assignment: partitions no longer followed here are dropped, new ones
    /// (and new leader epochs) start with a truncation.
    fn sync_assignment(&mut self) {
        let assigned = self.assigned.borrow_and_update().clone();
        self.partitions
            .retain(|key, following| assigned.get(key) == Some(&following.target));
        for (key, target) in assigned {
            self.partitions.entry(key).or_insert(Following {
                target,
                needs_truncation: true,
                retry_at: None,
            });
        }
    }

    async fn connection(&mut self) -> Result<Arc<Connection>, String> {
        let image = self.image.borrow().clone();
        let broker = image
            .broker(self.leader)
            .ok_or_else(|| format!("broker {} is not registered", self.leader))?;
        let address = format!("{}:{}", broker.host, broker.port);
        if let Some(connection) = &self.connection {
            if !connection.is_closed() && connection.address() == address {
                return Ok(connection.clone());
            }
        }
        let connection = Connection::connect(&address, CLIENT_ID, CONNECT_TIMEOUT, REQUEST_TIMEOUT)
            .await
            .map_err(|error| error.to_string())?;
        let connection = Arc::new(connection);
        self.connection = Some(connection.clone());
        Ok(connection)
    }

    fn connection_failed(&mut self, connection: &Arc<Connection>, error: &str) {
        crate::warn_limited!(FETCH_WARNINGS, leader = self.leader, %error, "replica fetch from the leader failed");
        if self
            .connection
            .as_ref()
            .is_some_and(|cached| Arc::ptr_eq(cached, connection))
        {
            self.connection = None;
        }
    }

    /// KIP-279: asks the leader where each partition's latest local epoch ends there and
    /// truncates to the divergence point; repeats (next round) while the leader answered an
    /// earlier epoch this follower does not know. Without a local epoch, or when the leader
    /// cannot say (UNDEFINED), truncates to the high watermark, as Kafka does.
    async fn truncate(
        &mut self,
        connection: &Arc<Connection>,
        keys: &[PartitionKey],
    ) -> Result<(), String> {
        let mut asked: Vec<(PartitionKey, i32)> = Vec::new();
        for key in keys {
            let Some(following) = self.partitions.get_mut(key) else {
                continue;
            };
            let partition = following.target.partition.clone();
            match partition.latest_epoch().await {
                Ok(Some(epoch)) => asked.push((key.clone(), epoch)),
                Ok(None) => {
                    // Nothing written under any epoch: nothing to diverge.
                    let high_watermark = partition.offsets().high_watermark;
                    following.needs_truncation = false;
                    if let Err(error) = partition.truncate_to(high_watermark).await {
                        crate::warn_limited!(FETCH_WARNINGS, topic = %key.0, partition = key.1, %error, "cannot truncate the follower's log");
                        following.needs_truncation = true;
                        following.back_off();
                    }
                }
                Err(error) => {
                    crate::warn_limited!(FETCH_WARNINGS, topic = %key.0, partition = key.1, %error, "cannot read the follower's epochs");
                    following.back_off();
                }
            }
        }
        if asked.is_empty() {
            return Ok(());
        }
        let version = connection
            .version_for::<OffsetForLeaderEpochRequest>(MAX_OFFSET_FOR_LEADER_EPOCH_VERSION)
            .ok()
            // v2 brings current_leader_epoch (fencing of stale followers).
            .filter(|version| *version >= 2);
        let Some(version) = version else {
            // The leader cannot answer: Kafka's fallback, the high watermark.
            for (key, _) in asked {
                self.truncate_to_high_watermark(&key).await;
            }
            return Ok(());
        };
        let mut topics: BTreeMap<String, Vec<OffsetForLeaderPartition>> = BTreeMap::new();
        for (key, epoch) in &asked {
            let Some(following) = self.partitions.get(key) else {
                continue;
            };
            topics.entry(key.0.clone()).or_default().push(
                OffsetForLeaderPartition::default()
                    .with_partition(key.1)
                    .with_current_leader_epoch(following.target.leader_epoch)
                    .with_leader_epoch(*epoch),
            );
        }
        let request = OffsetForLeaderEpochRequest::default()
            .with_replica_id(BrokerId(self.node_id))
            .with_topics(
                topics
                    .into_iter()
                    .map(|(topic, partitions)| {
                        OffsetForLeaderTopic::default()
                            .with_topic(TopicName(StrBytes::from_string(topic)))
                            .with_partitions(partitions)
                    })
                    .collect(),
            );
        let response = connection
            .call_at(&request, version, Duration::ZERO)
            .await
            .map_err(|error| error.to_string())?;
        let mut asked: HashMap<PartitionKey, i32> = asked.into_iter().collect();
        for topic in response.topics {
            for answer in topic.partitions {
                let key = (topic.topic.0.to_string(), answer.partition);
                let Some(requested_epoch) = asked.remove(&key) else {
                    continue;
                };
                if answer.error_code != 0 {
                    tracing::debug!(topic = %key.0, partition = key.1, error_code = answer.error_code, "OffsetForLeaderEpoch refused; retrying");
                    if let Some(following) = self.partitions.get_mut(&key) {
                        following.back_off();
                    }
                    continue;
                }
                self.truncate_to_divergence(
                    &key,
                    requested_epoch,
                    answer.leader_epoch,
                    answer.end_offset,
                )
                .await;
            }
        }
        // A partition the leader left out of its answer is asked again after a backoff, never
        // in a tight loop.
        for key in asked.keys() {
            if let Some(following) = self.partitions.get_mut(key) {
                following.back_off();
            }
        }
        Ok(())
    }

    /// Kafka's `getOffsetTruncationState`: where to cut, given the leader's (epoch, end offset)
    /// answer for `requested_epoch`.
    async fn truncate_to_divergence(
        &mut self,
        key: &PartitionKey,
        requested_epoch: i32,
        leader_epoch: i32,
        leader_end_offset: i64,
    ) {
        let Some(following) = self.partitions.get_mut(key) else {
            return;
        };
        let partition = following.target.partition.clone();
        if leader_end_offset < 0 {
            // UNDEFINED: the leader has no epoch at or below ours.
            self.truncate_to_high_watermark(key).await;
            return;
        }
        let log_end_offset = partition.offsets().log_end_offset;
        let local = if leader_epoch == requested_epoch {
            None
        } else {
            match partition.end_offset_for_epoch(leader_epoch).await {
                Ok(local) => local,
                Err(error) => {
                    crate::warn_limited!(FETCH_WARNINGS, topic = %key.0, partition = key.1, %error, "cannot read the follower's epochs");
                    following.back_off();
                    return;
                }
            }
        };
        let (offset, complete) = truncation_point(
            requested_epoch,
            (leader_epoch, leader_end_offset),
            local,
            log_end_offset,
        );
        match partition.truncate_to(offset).await {
            Ok(()) => {
                if complete {
                    tracing::info!(topic = %key.0, partition = key.1, offset, leader = self.leader, epoch = following.target.leader_epoch, "follower truncated to the divergence point");
                    following.needs_truncation = false;
                }
            }
            Err(error) => {
                crate::warn_limited!(FETCH_WARNINGS, topic = %key.0, partition = key.1, %error, "cannot truncate the follower's log");
                following.back_off();
            }
        }
    }

    async fn truncate_to_high_watermark(&mut self, key: &PartitionKey) {
        let Some(following) = self.partitions.get_mut(key) else {
            return;
        };
        let partition = following.target.partition.clone();
        let high_watermark = partition.offsets().high_watermark;
        match partition.truncate_to(high_watermark).await {
            Ok(()) => following.needs_truncation = false,
            Err(error) => {
                crate::warn_limited!(FETCH_WARNINGS, topic = %key.0, partition = key.1, %error, "cannot truncate the follower's log");
                following.back_off();
            }
        }
    }

    /// One replica Fetch of `keys`; appends what came back, waits until it is durable, then
    /// records the leader's high watermark.
    async fn fetch(
        &mut self,
        connection: &Arc<Connection>,
        keys: &[PartitionKey],
    ) -> Result<(), String> {
        let version = connection
            .version_for::<FetchRequest>(MAX_FETCH_VERSION)
            .map_err(|error| error.to_string())?;
        let uses_topic_ids = version >= FIRST_FETCH_VERSION_WITH_TOPIC_IDS;
        let mut topics: BTreeMap<String, (quill_meta::Uuid, Vec<FetchPartition>)> = BTreeMap::new();
        for key in keys {
            let Some(following) = self.partitions.get(key) else {
                continue;
            };
            let partition = &following.target.partition;
            let offsets = partition.offsets();
            let last_fetched_epoch = partition.latest_epoch().await.ok().flatten().unwrap_or(-1);
            topics
                .entry(key.0.clone())
                .or_insert_with(|| (partition.topic_id, Vec::new()))
                .1
                .push(
                    FetchPartition::default()
                        .with_partition(key.1)
                        .with_current_leader_epoch(following.target.leader_epoch)
                        .with_fetch_offset(offsets.log_end_offset)
                        .with_last_fetched_epoch(last_fetched_epoch)
                        .with_log_start_offset(offsets.log_start_offset)
                        .with_partition_max_bytes(FETCH_MAX_BYTES),
                );
        }
        let mut by_topic_id: HashMap<quill_meta::Uuid, String> = HashMap::new();
        let request_topics = topics
            .into_iter()
            .map(|(name, (topic_id, partitions))| {
                by_topic_id.insert(topic_id, name.clone());
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(name)))
                    .with_topic_id(topic_id)
                    .with_partitions(partitions)
            })
            .collect();
        let mut request = FetchRequest::default()
            .with_max_wait_ms(FETCH_WAIT_MAX_MS)
            .with_min_bytes(FETCH_MIN_BYTES)
            .with_max_bytes(FETCH_RESPONSE_MAX_BYTES)
            .with_topics(request_topics);
        if version >= FIRST_FETCH_VERSION_WITH_REPLICA_STATE {
            request = request.with_replica_state(
                ReplicaState::default().with_replica_id(BrokerId(self.node_id)),
            );
        } else {
            request = request.with_replica_id(BrokerId(self.node_id));
        }
        let wait = Duration::from_millis(u64::try_from(FETCH_WAIT_MAX_MS).unwrap_or(0));
        let response: FetchResponse = connection
            .call_at(&request, version, wait)
            .await
            .map_err(|error| error.to_string())?;
        if response.error_code != 0 {
            return Err(format!(
                "the leader answered error code {}",
                response.error_code
            ));
        }
        let mut appended: Vec<(Arc<Partition>, i64)> = Vec::new();
        for topic in response.responses {
            let name = if uses_topic_ids {
                by_topic_id.get(&topic.topic_id).cloned()
            } else {
                Some(topic.topic.0.to_string())
            };
            let Some(name) = name else { continue };
            for data in topic.partitions {
                let key = (name.clone(), data.partition_index);
                if let Some(result) = self.take_partition_data(&key, data).await {
                    appended.push(result);
                }
            }
        }
        // The next fetch tells the leader how far this follower is: only once it is durable.
        for (partition, leader_high_watermark) in appended {
            let through_offset = partition.offsets().log_end_offset;
            match partition.wait_durable(through_offset).await {
                Ok(()) => partition.record_leader_high_watermark(leader_high_watermark),
                Err(error) => {
                    crate::warn_limited!(FETCH_WARNINGS, topic = %partition.topic, partition = partition.partition, %error, "replicated data could not be made durable");
                    let key = (partition.topic.clone(), partition.partition);
                    if let Some(following) = self.partitions.get_mut(&key) {
                        following.back_off();
                    }
                }
            }
        }
        Ok(())
    }

    /// Handles one partition of a fetch response; returns the partition and the leader's high
    /// watermark when its data was appended (or it had none) and the caller should wait for
    /// durability.
    async fn take_partition_data(
        &mut self,
        key: &PartitionKey,
        data: kafka_protocol::messages::fetch_response::PartitionData,
    ) -> Option<(Arc<Partition>, i64)> {
        let following = self.partitions.get_mut(key)?;
        let partition = following.target.partition.clone();
        if data.error_code != 0 {
            let error = ResponseError::try_from_code(data.error_code);
            if data.error_code == ResponseError::OffsetOutOfRange.code() {
                if partition.offsets().log_end_offset < data.log_start_offset {
                    // The leader deleted what this follower needs next: start over at the
                    // leader's log start (Kafka's `truncateFullyAndStartAt`).
                    tracing::info!(topic = %key.0, partition = key.1, leader_log_start = data.log_start_offset, "follower behind the leader's log start; starting over there");
                    if let Err(error) = partition
                        .truncate_fully_and_start_at(data.log_start_offset)
                        .await
                    {
                        crate::warn_limited!(FETCH_WARNINGS, topic = %key.0, partition = key.1, %error, "cannot restart the follower's log at the leader's log start");
                        following.back_off();
                    }
                } else {
                    // Ahead of the leader: find the divergence point again.
                    following.needs_truncation = true;
                }
            } else {
                tracing::debug!(topic = %key.0, partition = key.1, ?error, "replica fetch refused; retrying after a backoff");
                following.back_off();
            }
            return None;
        }
        if data.diverging_epoch.epoch >= 0 {
            // The leader says our log diverges from its own at the last fetched epoch.
            following.needs_truncation = true;
            return None;
        }
        let records = data.records.unwrap_or_default();
        if !records.is_empty() {
            if let Err(error) = partition.append_as_follower(Bytes::clone(&records)).await {
                crate::warn_limited!(FETCH_WARNINGS, topic = %key.0, partition = key.1, %error, "cannot append replicated batches");
                following.needs_truncation = true;
                following.back_off();
                return None;
            }
        }
        Some((partition, data.high_watermark))
    }
}

/// Kafka's `getOffsetTruncationState` (KIP-279): where a follower cuts its log, given the
/// leader's answer `(epoch, end offset)` to OffsetForLeaderEpoch for the follower's latest
/// epoch `requested_epoch`, the follower's own `endOffsetFor(leader's epoch)` (`local`, looked
/// up only when the leader answered another epoch) and its log end. Returns the offset and
/// whether the truncation is complete (false: the follower did not know the leader's epoch,
/// cut to the end of its largest epoch below it and must ask again with that one).
fn truncation_point(
    requested_epoch: i32,
    (leader_epoch, leader_end_offset): (i32, i64),
    local: Option<(i32, i64)>,
    log_end_offset: i64,
) -> (i64, bool) {
    if leader_epoch == requested_epoch {
        return (leader_end_offset.min(log_end_offset), true);
    }
    match local {
        Some((local_epoch, local_end_offset)) if local_epoch != leader_epoch => {
            (local_end_offset.min(log_end_offset), false)
        }
        Some((_, local_end_offset)) => (
            local_end_offset.min(leader_end_offset).min(log_end_offset),
            true,
        ),
        // The follower knows no epoch at or below the leader's: the leader's end is safe.
        None => (leader_end_offset.min(log_end_offset), true),
    }
}

#[cfg(test)]
mod tests {
    use super::truncation_point;

    #[test]
    fn the_leader_knows_the_followers_epoch_so_the_smaller_end_wins() {
        // Same epoch, the follower ahead of the leader (it had unreplicated data).
        assert_eq!(truncation_point(3, (3, 100), None, 120), (100, true));
        // Same epoch, the follower behind: nothing to cut.
        assert_eq!(truncation_point(3, (3, 100), None, 80), (80, true));
    }

    #[test]
    fn an_epoch_the_leader_never_had_is_cut_back_to_where_the_leaders_epoch_ends() {
        // The follower led epoch 4 alone (offsets 90..120); the leader's latest at or below 4
        // is 3, ending at 90; the follower's epoch 3 also ends at 90.
        assert_eq!(truncation_point(4, (3, 90), Some((3, 90)), 120), (90, true));
        // The follower's epoch 3 ended later than the leader's: the leader's end wins.
        assert_eq!(truncation_point(4, (3, 90), Some((3, 95)), 120), (90, true));
    }

    #[test]
    fn an_epoch_the_follower_never_had_takes_another_round() {
        // The leader answers epoch 3, which the follower does not know (its largest below is
        // 2, ending at 70): cut to 70 and ask again with epoch 2.
        assert_eq!(
            truncation_point(4, (3, 90), Some((2, 70)), 120),
            (70, false)
        );
        // No epoch at all below the leader's: the leader's end.
        assert_eq!(truncation_point(4, (3, 90), None, 120), (90, true));
    }
}
