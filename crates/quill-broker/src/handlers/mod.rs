//! Request handlers, one module per API family. Handlers are thin: validate the request, call
//! a service (metadata store, partition manager), shape the response.

pub mod api_versions;
pub mod cluster;
pub mod configs;
pub mod describe_topic_partitions;
pub mod features;
pub mod fetch;
pub mod groups;
pub mod leader_epochs;
pub mod list_offsets;
pub mod metadata;
pub mod produce;
pub mod quorum;
pub mod records;
pub mod topics;
pub mod txn;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::BrokerId;
use kafka_protocol::protocol::StrBytes;
use quill_meta::MetadataImage;

/// The error for a partition this broker has no open log of: NOT_LEADER_OR_FOLLOWER when the
/// partition exists and another broker leads it (the client refreshes its metadata and goes
/// there), else UNKNOWN_TOPIC_OR_PARTITION.
pub fn unhosted_partition_error(
    image: &MetadataImage,
    node_id: i32,
    topic: &str,
    partition: i32,
) -> i16 {
    let led_elsewhere = image
        .topic(topic)
        .and_then(|info| info.partition(partition))
        .is_some_and(|info| info.leader != node_id);
    if led_elsewhere {
        ResponseError::NotLeaderOrFollower.code()
    } else {
        ResponseError::UnknownTopicOrPartition.code()
    }
}

/// The local log of a partition this broker leads by `image` (and may lead: a broker of a
/// cluster leads nothing until its image caught up with the quorum); otherwise the error:
/// NOT_LEADER_OR_FOLLOWER when another broker leads it or it has no leader now (its broker
/// is fenced), UNKNOWN_TOPIC_OR_PARTITION when it does not exist (or its log is not open here).
pub fn led_partition(
    state: &crate::state::BrokerState,
    image: &MetadataImage,
    topic: &str,
    partition: i32,
) -> Result<std::sync::Arc<crate::partitions::Partition>, i16> {
    let leader = image
        .topic(topic)
        .and_then(|info| info.partition(partition))
        .map(|info| info.leader);
    match leader {
        Some(leader) if leader != state.config.node_id || !state.is_caught_up() => {
            Err(ResponseError::NotLeaderOrFollower.code())
        }
        Some(_) => state
            .partitions
            .get(topic, partition)
            .ok_or(ResponseError::UnknownTopicOrPartition.code()),
        None => Err(ResponseError::UnknownTopicOrPartition.code()),
    }
}

/// Kafka's check of a request's `current_leader_epoch` against the partition's: -1 skips it;
/// older is FENCED_LEADER_EPOCH (the client's metadata is stale), newer is
/// UNKNOWN_LEADER_EPOCH (this broker has not caught up with the change yet).
pub fn check_leader_epoch(
    image: &MetadataImage,
    topic: &str,
    partition: i32,
    requested_epoch: i32,
) -> Result<(), i16> {
    if requested_epoch < 0 {
        return Ok(());
    }
    let Some(current) = image
        .topic(topic)
        .and_then(|info| info.partition(partition))
        .map(|info| info.leader_epoch)
    else {
        return Ok(());
    };
    match requested_epoch.cmp(&current) {
        std::cmp::Ordering::Less => Err(ResponseError::FencedLeaderEpoch.code()),
        std::cmp::Ordering::Greater => Err(ResponseError::UnknownLeaderEpoch.code()),
        std::cmp::Ordering::Equal => Ok(()),
    }
}

/// KIP-951: with NOT_LEADER_OR_FOLLOWER (or FENCED_LEADER_EPOCH) Produce v10+ and Fetch v16+
/// name the partition's current leader and epoch, and the response carries that leader's
/// endpoint, so a client moves without a Metadata round trip. Owned, so it can travel into a
/// produce response finished later.
pub struct LeaderHints {
    image: std::sync::Arc<MetadataImage>,
}

impl LeaderHints {
    pub fn new(image: std::sync::Arc<MetadataImage>) -> LeaderHints {
        LeaderHints { image }
    }

    /// The current leader and epoch of a partition, when it has a live leader.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<(i32, i32)> {
        let info = self.image.topic(topic)?.partition(partition)?;
        let live = self
            .image
            .broker(info.leader)
            .is_some_and(|broker| !broker.fenced);
        live.then_some((info.leader, info.leader_epoch))
    }

    /// The endpoints of `leaders` as `make(node id, host, port, rack)` builds them (Produce and
    /// Fetch responses have each their own endpoint type).
    pub fn endpoints<T>(
        &self,
        leaders: std::collections::BTreeSet<i32>,
        make: impl Fn(BrokerId, StrBytes, i32, Option<StrBytes>) -> T,
    ) -> Vec<T> {
        leaders
            .into_iter()
            .filter_map(|node_id| self.image.broker(node_id))
            .map(|broker| {
                make(
                    BrokerId(broker.node_id),
                    StrBytes::from_string(broker.host.clone()),
                    i32::from(broker.port),
                    broker.rack.clone().map(StrBytes::from_string),
                )
            })
            .collect()
    }
}

/// Error codes after which a response names the partition's current leader (KIP-951).
pub fn wants_leader_hint(error_code: i16) -> bool {
    error_code == ResponseError::NotLeaderOrFollower.code()
        || error_code == ResponseError::FencedLeaderEpoch.code()
}
