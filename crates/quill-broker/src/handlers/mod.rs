//! Request handlers, one module per API family. Handlers are thin: validate the request, call
//! a service (metadata store, partition manager), shape the response.

pub mod api_versions;
pub mod cluster;
pub mod configs;
pub mod describe_topic_partitions;
pub mod features;
pub mod fetch;
pub mod groups;
pub mod list_offsets;
pub mod metadata;
pub mod produce;
pub mod quorum;
pub mod records;
pub mod topics;
pub mod txn;

use kafka_protocol::error::ResponseError;
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
