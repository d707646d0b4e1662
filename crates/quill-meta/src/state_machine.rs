//! The metadata state machine: a pure, deterministic function from (image, record) to image.
//!
//! Architecture invariant: this module is the authority on validity. Planners may check early for
//! better messages, but every record passes through here before it is written and again on
//! replay, so the writer's check and every replay make the same decision. It depends only on the image and
//! the record (no clock, no randomness, no config outside the image). Validation rules for a record
//! that may already be in a log must never be tightened: old logs are replayed through this code.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use uuid::Uuid;

use crate::image::{BrokerInfo, MetadataImage, PartitionInfo, TopicInfo};
use crate::record::{MetadataRecord, PartitionAssignment, NO_LEADER};
use crate::{topic_config, topic_name, MetaError};

/// Upper bound on partitions per topic; keeps one record (and one image clone) bounded.
pub const MAX_PARTITIONS_PER_TOPIC: usize = 100_000;
/// Upper bound on replicas per partition.
pub const MAX_REPLICATION_FACTOR: usize = 64;
/// Upper bound on broker host names and rack ids, in bytes.
pub const MAX_HOST_LENGTH_BYTES: usize = 1024;

/// Applies one record to an image, returning the new image. The input is never modified; on
/// error nothing changes. Does not move `offset` (see [`apply_entry`]).
pub fn apply(image: &MetadataImage, record: &MetadataRecord) -> Result<MetadataImage, MetaError> {
    let mut next = image.clone();
    apply_in_place(&mut next, record)?;
    Ok(next)
}

/// Applies one log entry (a batch of records applied atomically) with index `entry_index`.
/// Either every record applies and `offset` becomes `entry_index`, or nothing changes.
pub fn apply_entry(
    image: &MetadataImage,
    entry_index: u64,
    records: &[MetadataRecord],
) -> Result<MetadataImage, MetaError> {
    if entry_index <= image.offset {
        return Err(MetaError::InvalidRequest(format!(
            "metadata entry index {entry_index} is not after the applied index {}",
            image.offset
        )));
    }
    let mut next = image.clone();
    for record in records {
        apply_in_place(&mut next, record)?;
    }
    next.offset = entry_index;
    Ok(next)
}

/// Validates first, mutates after: on error `image` is untouched.
pub(crate) fn apply_in_place(
    image: &mut MetadataImage,
    record: &MetadataRecord,
) -> Result<(), MetaError> {
    match record {
        MetadataRecord::RegisterBroker {
            node_id,
            host,
            port,
            rack,
            incarnation_id,
        } => {
            check_broker_registration(*node_id, host, *port, rack.as_deref())?;
            let previous = image.brokers.get(node_id);
            if let Some(previous) = previous {
                check_incarnation(previous, *incarnation_id)?;
            }
            // A re-registration (new address, rack or incarnation) keeps the fencing state:
            // only the controller's heartbeat tracking fences and unfences.
            let fenced = previous.is_some_and(|broker| broker.fenced);
            // The same process re-registering is still shutting down; another one is not.
            let in_controlled_shutdown = previous.is_some_and(|broker| {
                broker.in_controlled_shutdown && broker.incarnation_id == *incarnation_id
            });
            image.brokers.insert(
                *node_id,
                BrokerInfo {
                    node_id: *node_id,
                    host: host.clone(),
                    port: *port,
                    rack: rack.clone(),
                    fenced,
                    incarnation_id: *incarnation_id,
                    in_controlled_shutdown,
                },
            );
        }
        MetadataRecord::CreateTopic {
            name,
            topic_id,
            partitions,
            configs,
        } => {
            check_create_topic(image, name, topic_id, partitions, configs)?;
            let topic = TopicInfo {
                name: name.clone(),
                topic_id: *topic_id,
                partitions: partitions.iter().map(initial_partition_state).collect(),
                configs: configs.clone(),
            };
            image.topics_by_id.insert(*topic_id, name.clone());
            image.topics.insert(name.clone(), Arc::new(topic));
        }
        MetadataRecord::CreatePartitions {
            topic_id,
            new_partitions,
        } => {
            let topic = existing_topic(image, topic_id)?;
            check_create_partitions(image, topic, new_partitions)?;
            let topic = existing_topic_mut(image, topic_id)?;
            topic
                .partitions
                .extend(new_partitions.iter().map(initial_partition_state));
        }
        MetadataRecord::DeleteTopic { topic_id } => {
            let name = existing_topic(image, topic_id)?.name.clone();
            image.topics.remove(&name);
            image.topics_by_id.remove(topic_id);
        }
        MetadataRecord::AlterTopicConfigs {
            topic_id,
            set,
            delete,
        } => {
            let topic = existing_topic(image, topic_id)?;
            let configs = altered_topic_configs(&topic.configs, set, delete)?;
            existing_topic_mut(image, topic_id)?.configs = configs;
        }
        MetadataRecord::AlterBrokerConfigs {
            node_id,
            set,
            delete,
        } => {
            let configs = altered_broker_configs(image, *node_id, set, delete)?;
            if configs.is_empty() {
                // No empty maps in the image: a snapshot could not reproduce them.
                image.broker_configs.remove(node_id);
            } else {
                image.broker_configs.insert(*node_id, configs);
            }
        }
        MetadataRecord::AlterGroupConfigs {
            group_id,
            set,
            delete,
        } => {
            let configs = altered_group_configs(image, group_id, set, delete)?;
            if configs.is_empty() {
                image.group_configs.remove(group_id);
            } else {
                image.group_configs.insert(group_id.clone(), configs);
            }
        }
        MetadataRecord::SetPartitionLeader {
            topic_id,
            partition,
            leader,
            isr,
            leader_epoch,
            partition_epoch,
        } => set_partition_leader(
            image,
            topic_id,
            *partition,
            LeaderChange {
                leader: *leader,
                isr,
                leader_epoch: *leader_epoch,
                partition_epoch: *partition_epoch,
            },
        )?,
        MetadataRecord::PartitionChange {
            topic_id,
            partition,
            expected_leader_epoch,
            expected_partition_epoch,
            leader,
            isr,
        } => {
            let (topic, current) = existing_partition(image, topic_id, *partition)?;
            check_partition_change(
                image,
                &topic.name,
                current,
                (*expected_leader_epoch, *expected_partition_epoch),
                *leader,
                isr,
            )?;
            let (leader_epoch, partition_epoch) = (current.leader_epoch, current.partition_epoch);
            let leader_changed = current.leader != *leader;
            let state = partition_mut(image, topic_id, *partition)?;
            state.leader = *leader;
            state.isr = isr.clone();
            state.partition_epoch = partition_epoch.saturating_add(1);
            if leader_changed {
                state.leader_epoch = leader_epoch.saturating_add(1);
            }
        }
        MetadataRecord::AlterPartition {
            topic_id,
            partition,
            leader,
            leader_epoch,
            partition_epoch,
            isr,
        } => {
            let (topic, current) = existing_partition(image, topic_id, *partition)?;
            check_alter_partition(
                image,
                &topic.name,
                current,
                *leader,
                (*leader_epoch, *partition_epoch),
                isr,
            )?;
            let next_epoch = current.partition_epoch.saturating_add(1);
            let state = partition_mut(image, topic_id, *partition)?;
            state.isr = isr.clone();
            state.partition_epoch = next_epoch;
        }
        MetadataRecord::BeginControlledShutdown { node_id } => {
            let broker = image.brokers.get_mut(node_id).ok_or_else(|| {
                MetaError::InvalidRequest(format!("broker {node_id} is not registered"))
            })?;
            if !broker.is_active() {
                return Err(MetaError::InvalidRequest(format!(
                    "broker {node_id} is fenced or already shutting down"
                )));
            }
            broker.in_controlled_shutdown = true;
        }
        MetadataRecord::AllocateProducerIds {
            node_id,
            next_producer_id,
        } => {
            check_producer_id_allocation(image, *node_id, *next_producer_id)?;
            image.next_producer_id = *next_producer_id;
        }
        MetadataRecord::FenceBroker { node_id } => set_fenced(image, *node_id, true)?,
        MetadataRecord::UnfenceBroker { node_id } => set_fenced(image, *node_id, false)?,
        MetadataRecord::FeatureLevel { name, level } => {
            crate::features::check_feature_level(image, name, *level)?;
            if *level == 0 {
                image.features.remove(name);
            } else {
                image.features.insert(name.clone(), *level);
            }
        }
    }
    Ok(())
}

fn set_fenced(image: &mut MetadataImage, node_id: i32, fenced: bool) -> Result<(), MetaError> {
    let broker = image
        .brokers
        .get_mut(&node_id)
        .ok_or_else(|| MetaError::InvalidRequest(format!("broker {node_id} is not registered")))?;
    if broker.fenced == fenced {
        return Err(MetaError::InvalidRequest(format!(
            "broker {node_id} is already {}",
            if fenced { "fenced" } else { "unfenced" }
        )));
    }
    broker.fenced = fenced;
    // A fenced broker is no longer shutting down: it is down.
    broker.in_controlled_shutdown = false;
    Ok(())
}

/// A `SetPartitionLeader`'s new state.
struct LeaderChange<'a> {
    leader: i32,
    isr: &'a [i32],
    leader_epoch: i32,
    partition_epoch: Option<i32>,
}

fn partition_mut<'a>(
    image: &'a mut MetadataImage,
    topic_id: &Uuid,
    partition: i32,
) -> Result<&'a mut PartitionInfo, MetaError> {
    let index = usize::try_from(partition)
        .map_err(|_| MetaError::UnknownTopic(format!("partition {partition}")))?;
    existing_topic_mut(image, topic_id)?
        .partitions
        .get_mut(index)
        .ok_or_else(|| MetaError::UnknownTopic(format!("partition {partition}")))
}

/// The rules of a conditional `PartitionChange`, in Kafka's AlterPartition order: the epochs
/// first (a stale change is fenced before anything else is judged), then the new state.
fn check_partition_change(
    image: &MetadataImage,
    topic_name: &str,
    current: &PartitionInfo,
    (expected_leader_epoch, expected_partition_epoch): (i32, i32),
    leader: i32,
    isr: &[i32],
) -> Result<(), MetaError> {
    let where_ = format!("{topic_name}-{}", current.partition);
    if expected_leader_epoch > current.leader_epoch
        || expected_partition_epoch > current.partition_epoch
    {
        // Planned against a newer state than this one: only a node behind the quorum can see
        // that (Kafka answers NOT_CONTROLLER so the leader finds the active controller).
        return Err(MetaError::NotController(format!(
            "Partition {where_} is at leader epoch {} and partition epoch {}, older than the expected {expected_leader_epoch} and {expected_partition_epoch}",
            current.leader_epoch, current.partition_epoch
        )));
    }
    if expected_leader_epoch < current.leader_epoch {
        return Err(MetaError::FencedLeaderEpoch(format!(
            "Partition {where_} is at leader epoch {}, not {expected_leader_epoch}",
            current.leader_epoch
        )));
    }
    if expected_partition_epoch < current.partition_epoch {
        return Err(MetaError::InvalidUpdateVersion(format!(
            "Partition {where_} is at partition epoch {}, not {expected_partition_epoch}",
            current.partition_epoch
        )));
    }
    check_isr(current, leader, isr)?;
    if leader != NO_LEADER && leader != current.leader && !image.is_active_broker(leader) {
        return Err(MetaError::IneligibleReplica(format!(
            "Broker {leader} cannot lead partition {where_}: {}",
            ineligibility(image, leader)
        )));
    }
    if let Some(added) = isr
        .iter()
        .find(|id| !current.isr.contains(id) && !image.is_active_broker(**id))
    {
        return Err(MetaError::IneligibleReplica(format!(
            "Broker {added} cannot join the ISR of partition {where_}: {}",
            ineligibility(image, *added)
        )));
    }
    Ok(())
}

/// Kafka's AlterPartition validation (`ReplicationControlManager.validateAlterPartitionData`),
/// in its order, except that a request from a broker that does not lead is
/// NOT_LEADER_OR_FOLLOWER (Kafka: INVALID_REQUEST) so the leader's caller can tell it apart
/// from a malformed ISR.
fn check_alter_partition(
    image: &MetadataImage,
    topic_name: &str,
    current: &PartitionInfo,
    requester: i32,
    (leader_epoch, partition_epoch): (i32, i32),
    isr: &[i32],
) -> Result<(), MetaError> {
    let where_ = format!("{topic_name}-{}", current.partition);
    if leader_epoch > current.leader_epoch || partition_epoch > current.partition_epoch {
        return Err(MetaError::NotController(format!(
            "Partition {where_} is at leader epoch {} and partition epoch {}, older than the requested {leader_epoch} and {partition_epoch}",
            current.leader_epoch, current.partition_epoch
        )));
    }
    if leader_epoch < current.leader_epoch {
        return Err(MetaError::FencedLeaderEpoch(format!(
            "Partition {where_} is at leader epoch {}, not {leader_epoch}",
            current.leader_epoch
        )));
    }
    if requester != current.leader {
        return Err(MetaError::NotLeaderOrFollower(format!(
            "Broker {requester} does not lead partition {where_} (its leader is {})",
            current.leader
        )));
    }
    if partition_epoch < current.partition_epoch {
        return Err(MetaError::InvalidUpdateVersion(format!(
            "Partition {where_} is at partition epoch {}, not {partition_epoch}",
            current.partition_epoch
        )));
    }
    check_isr(current, NO_LEADER, isr)?;
    if !isr.contains(&current.leader) {
        return Err(MetaError::InvalidRequest(format!(
            "The ISR {isr:?} of partition {where_} does not include its leader {}",
            current.leader
        )));
    }
    if let Some(ineligible) = isr.iter().find(|id| !image.is_active_broker(**id)) {
        return Err(MetaError::IneligibleReplica(format!(
            "Broker {ineligible} cannot be in the ISR of partition {where_}: {}",
            ineligibility(image, *ineligible)
        )));
    }
    Ok(())
}

/// Why a broker is not active, in Kafka's words.
pub(crate) fn ineligibility(image: &MetadataImage, node_id: i32) -> &'static str {
    match image.broker(node_id) {
        None => "not registered",
        Some(broker) if broker.in_controlled_shutdown => "shutting down",
        Some(broker) if broker.fenced => "fenced",
        Some(_) => "eligible",
    }
}

/// The ISR must be distinct replicas holding the leader (unless there is none).
fn check_isr(current: &PartitionInfo, leader: i32, isr: &[i32]) -> Result<(), MetaError> {
    let mut seen = BTreeSet::new();
    for member in isr {
        if !seen.insert(member) {
            return Err(MetaError::InvalidRequest(format!(
                "ISR lists broker {member} twice"
            )));
        }
        if !current.replicas.contains(member) {
            return Err(MetaError::InvalidRequest(format!(
                "ISR member {member} is not a replica of partition {}",
                current.partition
            )));
        }
    }
    if leader != NO_LEADER && !isr.contains(&leader) {
        return Err(MetaError::InvalidRequest(format!(
            "Leader {leader} is not in the ISR of partition {}",
            current.partition
        )));
    }
    Ok(())
}

fn set_partition_leader(
    image: &mut MetadataImage,
    topic_id: &Uuid,
    partition: i32,
    change: LeaderChange<'_>,
) -> Result<(), MetaError> {
    let topic = existing_topic(image, topic_id)?;
    let current = topic
        .partition(partition)
        .ok_or_else(|| MetaError::UnknownTopic(format!("{}-{partition}", topic.name)))?;
    check_leader_change(current, change.leader, change.isr, change.leader_epoch)?;
    let partition_epoch = match change.partition_epoch {
        None => current.partition_epoch.saturating_add(1),
        Some(epoch) if epoch >= current.partition_epoch => epoch,
        Some(epoch) => {
            return Err(MetaError::InvalidRequest(format!(
            "Partition epoch {epoch} is older than the current epoch {} of partition {partition}",
            current.partition_epoch
        )))
        }
    };
    let state = partition_mut(image, topic_id, partition)?;
    state.leader = change.leader;
    state.isr = change.isr.to_vec();
    state.leader_epoch = change.leader_epoch;
    state.partition_epoch = partition_epoch;
    Ok(())
}

/// A new partition is led by its preferred (first) replica, with every replica in sync.
pub(crate) fn initial_partition_state(assignment: &PartitionAssignment) -> PartitionInfo {
    PartitionInfo {
        partition: assignment.partition,
        leader: assignment.replicas.first().copied().unwrap_or(NO_LEADER),
        leader_epoch: 0,
        partition_epoch: 0,
        replicas: assignment.replicas.clone(),
        isr: assignment.replicas.clone(),
    }
}

/// KRaft's rule: a live (unfenced) registration belongs to one process; another process with
/// the same node.id is refused until the first one's session expires and it is fenced.
fn check_incarnation(previous: &BrokerInfo, incarnation_id: Option<Uuid>) -> Result<(), MetaError> {
    match (previous.incarnation_id, incarnation_id) {
        (Some(live), Some(new)) if live != new && !previous.fenced => {
            Err(MetaError::DuplicateBrokerRegistration(format!(
                "Another broker is registered with that broker id ({}) and has not been fenced",
                previous.node_id
            )))
        }
        _ => Ok(()),
    }
}

fn check_broker_registration(
    node_id: i32,
    host: &str,
    port: u16,
    rack: Option<&str>,
) -> Result<(), MetaError> {
    if node_id < 0 {
        return Err(MetaError::InvalidRequest(format!(
            "Invalid broker id {node_id}: must be non-negative"
        )));
    }
    if host.is_empty() || host.len() > MAX_HOST_LENGTH_BYTES {
        return Err(MetaError::InvalidRequest(format!(
            "Invalid host for broker {node_id}: must be 1 to {MAX_HOST_LENGTH_BYTES} bytes"
        )));
    }
    if port == 0 {
        return Err(MetaError::InvalidRequest(format!(
            "Invalid port 0 for broker {node_id}"
        )));
    }
    if rack.is_some_and(|rack| rack.len() > MAX_HOST_LENGTH_BYTES) {
        return Err(MetaError::InvalidRequest(format!(
            "Rack id of broker {node_id} is longer than {MAX_HOST_LENGTH_BYTES} bytes"
        )));
    }
    Ok(())
}

fn check_create_topic(
    image: &MetadataImage,
    name: &str,
    topic_id: &Uuid,
    partitions: &[PartitionAssignment],
    configs: &BTreeMap<String, String>,
) -> Result<(), MetaError> {
    topic_name::validate_topic_name(name)?;
    if image.topics.contains_key(name) {
        return Err(MetaError::TopicAlreadyExists(name.to_string()));
    }
    topic_name::check_topic_collision(image, name)?;
    if topic_id.is_nil() {
        return Err(MetaError::InvalidRequest(format!(
            "Topic {name} cannot have the all-zero topic id"
        )));
    }
    if image.topics_by_id.contains_key(topic_id) {
        return Err(MetaError::InvalidRequest(format!(
            "Topic id {topic_id} is already in use"
        )));
    }
    if partitions.is_empty() {
        return Err(MetaError::InvalidPartitions(
            "Number of partitions was set to an invalid non-positive value.".to_string(),
        ));
    }
    check_assignments(image, 0, partitions, None)?;
    topic_config::validate_topic_configs(configs)
}

fn check_create_partitions(
    image: &MetadataImage,
    topic: &TopicInfo,
    new_partitions: &[PartitionAssignment],
) -> Result<(), MetaError> {
    let current_count = topic.partitions.len();
    if new_partitions.is_empty() {
        return Err(MetaError::InvalidPartitions(format!(
            "Topic already has {current_count} partitions."
        )));
    }
    let replication_factor = topic.partitions.first().map(|p| p.replicas.len());
    check_assignments(image, current_count, new_partitions, replication_factor)
}

/// Checks partition numbering (`first_partition`, +1, ...), total count, and each replica list.
/// `expected_replication_factor` is the topic's existing factor, if any.
fn check_assignments(
    image: &MetadataImage,
    first_partition: usize,
    assignments: &[PartitionAssignment],
    expected_replication_factor: Option<usize>,
) -> Result<(), MetaError> {
    let total = first_partition.saturating_add(assignments.len());
    if total > MAX_PARTITIONS_PER_TOPIC {
        return Err(MetaError::InvalidPartitions(format!(
            "Number of partitions {total} exceeds the limit of {MAX_PARTITIONS_PER_TOPIC} per topic."
        )));
    }
    let mut replication_factor = expected_replication_factor;
    for (offset, assignment) in assignments.iter().enumerate() {
        let expected = first_partition + offset;
        if usize::try_from(assignment.partition).ok() != Some(expected) {
            return Err(MetaError::InvalidReplicaAssignment(format!(
                "Partition ids must be consecutive: expected partition {expected}, got {}.",
                assignment.partition
            )));
        }
        check_replicas(image, &assignment.replicas)?;
        let count = assignment.replicas.len();
        match replication_factor {
            Some(factor) if factor != count => {
                return Err(MetaError::InvalidReplicaAssignment(format!(
                    "The manual partition assignment includes a partition with {count} replica(s), but this is not consistent with previous partitions, which have {factor} replica(s)."
                )));
            }
            _ => replication_factor = Some(count),
        }
    }
    Ok(())
}

fn check_replicas(image: &MetadataImage, replicas: &[i32]) -> Result<(), MetaError> {
    if replicas.is_empty() {
        return Err(MetaError::InvalidReplicaAssignment(
            "The manual partition assignment includes an empty replica list.".to_string(),
        ));
    }
    if replicas.len() > MAX_REPLICATION_FACTOR {
        return Err(MetaError::InvalidReplicationFactor(format!(
            "Replication factor {} exceeds the limit of {MAX_REPLICATION_FACTOR}.",
            replicas.len()
        )));
    }
    let mut seen = BTreeSet::new();
    for replica in replicas {
        if !seen.insert(replica) {
            return Err(MetaError::InvalidReplicaAssignment(format!(
                "The manual partition assignment includes the broker {replica} more than once."
            )));
        }
        if !image.brokers.contains_key(replica) {
            return Err(MetaError::InvalidReplicaAssignment(format!(
                "The manual partition assignment includes broker {replica}, but no such broker is registered."
            )));
        }
    }
    Ok(())
}

fn existing_topic<'a>(
    image: &'a MetadataImage,
    topic_id: &Uuid,
) -> Result<&'a TopicInfo, MetaError> {
    image
        .topic_by_id(topic_id)
        .ok_or(MetaError::UnknownTopicId(*topic_id))
}

/// The topic and its partition `partition`, both existing.
fn existing_partition<'a>(
    image: &'a MetadataImage,
    topic_id: &Uuid,
    partition: i32,
) -> Result<(&'a TopicInfo, &'a PartitionInfo), MetaError> {
    let topic = existing_topic(image, topic_id)?;
    let current = topic
        .partition(partition)
        .ok_or_else(|| MetaError::UnknownTopic(format!("{}-{partition}", topic.name)))?;
    Ok((topic, current))
}

fn existing_topic_mut<'a>(
    image: &'a mut MetadataImage,
    topic_id: &Uuid,
) -> Result<&'a mut TopicInfo, MetaError> {
    let name = image
        .topics_by_id
        .get(topic_id)
        .ok_or(MetaError::UnknownTopicId(*topic_id))?;
    // Copy-on-write: only the changed topic is cloned if an older image still shares it.
    image
        .topics
        .get_mut(name)
        .map(Arc::make_mut)
        .ok_or(MetaError::UnknownTopicId(*topic_id))
}

fn check_set_delete_disjoint(
    set: &BTreeMap<String, String>,
    delete: &[String],
) -> Result<(), MetaError> {
    match delete.iter().find(|name| set.contains_key(name.as_str())) {
        Some(name) => Err(MetaError::InvalidRequest(format!(
            "Error due to duplicate config keys: {name}"
        ))),
        None => Ok(()),
    }
}

fn altered_topic_configs(
    current: &BTreeMap<String, String>,
    set: &BTreeMap<String, String>,
    delete: &[String],
) -> Result<BTreeMap<String, String>, MetaError> {
    check_set_delete_disjoint(set, delete)?;
    let mut configs = current.clone();
    for name in delete {
        configs.remove(name);
    }
    configs.extend(
        set.iter()
            .map(|(name, value)| (name.clone(), value.clone())),
    );
    topic_config::validate_topic_configs(&configs)?;
    Ok(configs)
}

fn altered_group_configs(
    image: &MetadataImage,
    group_id: &str,
    set: &BTreeMap<String, String>,
    delete: &[String],
) -> Result<BTreeMap<String, String>, MetaError> {
    crate::group_config::validate_group_id(group_id)?;
    check_set_delete_disjoint(set, delete)?;
    let mut configs = image
        .group_configs
        .get(group_id)
        .cloned()
        .unwrap_or_default();
    for name in delete {
        configs.remove(name);
    }
    configs.extend(
        set.iter()
            .map(|(name, value)| (name.clone(), value.clone())),
    );
    crate::group_config::validate_group_configs(&configs)?;
    let is_new = !image.group_configs.contains_key(group_id);
    if is_new
        && !configs.is_empty()
        && image.group_configs.len() >= crate::group_config::MAX_CONFIGURED_GROUPS
    {
        return Err(MetaError::InvalidRequest(format!(
            "At most {} groups can have dynamic configs",
            crate::group_config::MAX_CONFIGURED_GROUPS
        )));
    }
    Ok(configs)
}

fn altered_broker_configs(
    image: &MetadataImage,
    node_id: Option<i32>,
    set: &BTreeMap<String, String>,
    delete: &[String],
) -> Result<BTreeMap<String, String>, MetaError> {
    if let Some(id) = node_id.filter(|id| *id < 0) {
        return Err(MetaError::InvalidRequest(format!(
            "Invalid broker id {id}: must be non-negative"
        )));
    }
    check_set_delete_disjoint(set, delete)?;
    for (name, value) in set {
        topic_config::validate_broker_config(name, value)?;
    }
    let mut configs = image
        .broker_configs
        .get(&node_id)
        .cloned()
        .unwrap_or_default();
    for name in delete {
        configs.remove(name);
    }
    configs.extend(
        set.iter()
            .map(|(name, value)| (name.clone(), value.clone())),
    );
    Ok(configs)
}

fn check_producer_id_allocation(
    image: &MetadataImage,
    node_id: i32,
    next_producer_id: i64,
) -> Result<(), MetaError> {
    if node_id < 0 {
        return Err(MetaError::InvalidRequest(format!(
            "Invalid broker id {node_id}: must be non-negative"
        )));
    }
    // Strictly increasing, so no producer id is ever handed out twice.
    if next_producer_id <= image.next_producer_id {
        return Err(MetaError::InvalidRequest(format!(
            "Producer id allocation must move past {}, got {next_producer_id}",
            image.next_producer_id
        )));
    }
    Ok(())
}

fn check_leader_change(
    current: &PartitionInfo,
    leader: i32,
    isr: &[i32],
    leader_epoch: i32,
) -> Result<(), MetaError> {
    check_isr(current, leader, isr)?;
    if leader_epoch < current.leader_epoch {
        return Err(MetaError::InvalidRequest(format!(
            "Leader epoch {leader_epoch} is older than the current epoch {} of partition {}",
            current.leader_epoch, current.partition
        )));
    }
    // A new leader must bump the epoch so fenced old leaders can be told apart.
    if leader != current.leader && leader_epoch == current.leader_epoch {
        return Err(MetaError::InvalidRequest(format!(
            "Leader change of partition {} must increase the leader epoch beyond {}",
            current.partition, current.leader_epoch
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID_A: Uuid = Uuid::from_u128(0xA);
    const ID_B: Uuid = Uuid::from_u128(0xB);

    fn register(node_id: i32) -> MetadataRecord {
        MetadataRecord::RegisterBroker {
            node_id,
            host: format!("host-{node_id}"),
            port: 9092,
            rack: None,
            incarnation_id: None,
        }
    }

    fn assignment(partition: i32, replicas: &[i32]) -> PartitionAssignment {
        PartitionAssignment {
            partition,
            replicas: replicas.to_vec(),
        }
    }

    fn create(name: &str, topic_id: Uuid, partitions: Vec<PartitionAssignment>) -> MetadataRecord {
        MetadataRecord::CreateTopic {
            name: name.into(),
            topic_id,
            partitions,
            configs: BTreeMap::new(),
        }
    }

    fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    /// Brokers 1..=3 and topic "a" (ID_A) with two partitions replicated on 1,2 and 2,3.
    fn base_image() -> MetadataImage {
        let records = [
            register(1),
            register(2),
            register(3),
            create(
                "a",
                ID_A,
                vec![assignment(0, &[1, 2]), assignment(1, &[2, 3])],
            ),
        ];
        apply_entry(&MetadataImage::empty("cluster"), 1, &records).unwrap()
    }

    /// Applies `record` expecting an error; checks the image is unchanged and returns the code.
    #[test]
    fn a_live_registration_belongs_to_one_process() {
        let register = |incarnation: Option<u128>| MetadataRecord::RegisterBroker {
            node_id: 4,
            host: "h".into(),
            port: 9092,
            rack: None,
            incarnation_id: incarnation.map(Uuid::from_u128),
        };
        let image = apply(&MetadataImage::empty("c"), &register(Some(1))).unwrap();
        // The same process re-registers freely (a new address, say).
        apply(&image, &register(Some(1))).unwrap();
        // Another process with the same node id: refused while the first is unfenced.
        let (code, message) = rejected(&image, register(Some(2)));
        assert_eq!(code, 101, "{message}");
        let fenced = apply(&image, &MetadataRecord::FenceBroker { node_id: 4 }).unwrap();
        let taken_over = apply(&fenced, &register(Some(2))).unwrap();
        let broker = taken_over.broker(4).unwrap();
        assert_eq!(broker.incarnation_id, Some(Uuid::from_u128(2)));
        assert!(
            broker.fenced,
            "it is unfenced by its own heartbeats, not by registering"
        );
        // Registrations without an incarnation (a single node, older entries) are not checked.
        apply(&image, &register(None)).unwrap();
    }

    fn rejected(image: &MetadataImage, record: MetadataRecord) -> (i16, String) {
        let before = image.clone();
        let error = apply(image, &record).unwrap_err();
        assert_eq!(image, &before);
        assert!(error.is_validation_error());
        (error.kafka_error_code(), error.to_string())
    }

    #[test]
    fn create_topic_builds_initial_partition_state() {
        let image = base_image();
        let topic = image.topic("a").unwrap();
        assert_eq!(image.topic_by_id(&ID_A), Some(topic));
        assert_eq!(image.offset, 1);
        assert_eq!(
            topic.partitions[1],
            PartitionInfo {
                partition: 1,
                leader: 2,
                leader_epoch: 0,
                partition_epoch: 0,
                replicas: vec![2, 3],
                isr: vec![2, 3]
            }
        );
        image.check_invariants().unwrap();
    }

    #[test]
    fn register_broker_upserts_and_validates() {
        let image = base_image();
        let moved = apply(
            &image,
            &MetadataRecord::RegisterBroker {
                node_id: 1,
                host: "new-host".into(),
                port: 19092,
                rack: Some("r".into()),
                incarnation_id: None,
            },
        )
        .unwrap();
        assert_eq!(moved.broker(1).unwrap().host, "new-host");
        assert_eq!(moved.brokers.len(), 3);

        let bad = |node_id, host: &str, port, rack: Option<String>| {
            rejected(
                &image,
                MetadataRecord::RegisterBroker {
                    node_id,
                    host: host.into(),
                    port,
                    rack,
                    incarnation_id: None,
                },
            )
            .0
        };
        assert_eq!(bad(-1, "h", 1, None), 42);
        assert_eq!(bad(1, "", 1, None), 42);
        assert_eq!(bad(1, &"h".repeat(MAX_HOST_LENGTH_BYTES + 1), 1, None), 42);
        assert_eq!(bad(1, "h", 0, None), 42);
        assert_eq!(
            bad(1, "h", 1, Some("r".repeat(MAX_HOST_LENGTH_BYTES + 1))),
            42
        );
    }

    #[test]
    fn create_topic_errors() {
        let image = base_image();
        let ok_partitions = || vec![assignment(0, &[1])];
        assert_eq!(
            rejected(&image, create("a", ID_B, ok_partitions())),
            (36, "Topic 'a' already exists.".into())
        );
        assert_eq!(rejected(&image, create("b c", ID_B, ok_partitions())).0, 17);
        assert_eq!(rejected(&image, create("", ID_B, ok_partitions())).0, 17);
        assert_eq!(
            rejected(&image, create("b", Uuid::nil(), ok_partitions())).0,
            42
        );
        assert_eq!(rejected(&image, create("b", ID_A, ok_partitions())).0, 42);
        assert_eq!(rejected(&image, create("b", ID_B, vec![])).0, 37);
        assert_eq!(
            rejected(&image, create("b", ID_B, vec![assignment(1, &[1])])).0,
            39
        );
        assert_eq!(
            rejected(
                &image,
                create("b", ID_B, vec![assignment(0, &[1]), assignment(0, &[2])])
            )
            .0,
            39
        );
        assert_eq!(
            rejected(&image, create("b", ID_B, vec![assignment(-1, &[1])])).0,
            39
        );
        assert_eq!(
            rejected(&image, create("b", ID_B, vec![assignment(0, &[])])).0,
            39
        );
        assert_eq!(
            rejected(&image, create("b", ID_B, vec![assignment(0, &[1, 1])])).0,
            39
        );
        assert_eq!(
            rejected(&image, create("b", ID_B, vec![assignment(0, &[4])])).0,
            39
        );
        assert_eq!(
            rejected(
                &image,
                create("b", ID_B, vec![assignment(0, &[1]), assignment(1, &[1, 2])])
            )
            .0,
            39
        );
        let too_many_replicas: Vec<i32> = (0..=MAX_REPLICATION_FACTOR as i32).collect();
        assert_eq!(
            rejected(
                &image,
                create("b", ID_B, vec![assignment(0, &too_many_replicas)])
            )
            .0,
            38
        );
        let too_many_partitions = (0..=MAX_PARTITIONS_PER_TOPIC as i32)
            .map(|p| assignment(p, &[1]))
            .collect();
        assert_eq!(
            rejected(&image, create("b", ID_B, too_many_partitions)).0,
            37
        );
        let with_bad_config = MetadataRecord::CreateTopic {
            name: "b".into(),
            topic_id: ID_B,
            partitions: ok_partitions(),
            configs: configs(&[("retention.ms", "soon")]),
        };
        assert_eq!(rejected(&image, with_bad_config).0, 40);
    }

    #[test]
    fn create_topic_rejects_dot_underscore_collision() {
        let image = apply(
            &base_image(),
            &create("x.y", ID_B, vec![assignment(0, &[1])]),
        )
        .unwrap();
        let (code, message) = rejected(
            &image,
            create("x_y", Uuid::from_u128(0xC), vec![assignment(0, &[1])]),
        );
        assert_eq!(code, 17);
        assert_eq!(message, "Topic 'x_y' collides with existing topic: x.y");
    }

    #[test]
    fn create_partitions_appends_and_validates() {
        let image = base_image();
        let grown = apply(
            &image,
            &MetadataRecord::CreatePartitions {
                topic_id: ID_A,
                new_partitions: vec![assignment(2, &[3, 1])],
            },
        )
        .unwrap();
        assert_eq!(grown.topic("a").unwrap().partitions.len(), 3);
        grown.check_invariants().unwrap();

        let add = |topic_id, new_partitions| MetadataRecord::CreatePartitions {
            topic_id,
            new_partitions,
        };
        assert_eq!(
            rejected(&image, add(ID_B, vec![assignment(2, &[1, 2])])).0,
            100
        );
        assert_eq!(
            rejected(&image, add(ID_A, vec![])),
            (37, "Topic already has 2 partitions.".into())
        );
        assert_eq!(
            rejected(&image, add(ID_A, vec![assignment(3, &[1, 2])])).0,
            39
        );
        assert_eq!(rejected(&image, add(ID_A, vec![assignment(2, &[1])])).0, 39);
        assert_eq!(
            rejected(&image, add(ID_A, vec![assignment(2, &[1, 9])])).0,
            39
        );
    }

    #[test]
    fn delete_topic_removes_both_indexes() {
        let image = base_image();
        let deleted = apply(&image, &MetadataRecord::DeleteTopic { topic_id: ID_A }).unwrap();
        assert!(deleted.topics.is_empty());
        assert!(deleted.topics_by_id.is_empty());
        assert_eq!(
            rejected(&deleted, MetadataRecord::DeleteTopic { topic_id: ID_A }).0,
            100
        );
        // The name is free again, with a new id.
        apply(&deleted, &create("a", ID_B, vec![assignment(0, &[1])])).unwrap();
    }

    #[test]
    fn alter_topic_configs_sets_deletes_and_validates() {
        let image = base_image();
        let alter = |set: &[(&str, &str)], delete: &[&str]| MetadataRecord::AlterTopicConfigs {
            topic_id: ID_A,
            set: configs(set),
            delete: delete.iter().map(|name| name.to_string()).collect(),
        };
        let image = apply(
            &image,
            &alter(&[("retention.ms", "1000"), ("segment.ms", "10")], &[]),
        )
        .unwrap();
        let image = apply(
            &image,
            &alter(&[("retention.ms", "2000")], &["segment.ms", "flush.ms"]),
        )
        .unwrap();
        assert_eq!(
            image.topic("a").unwrap().configs,
            configs(&[("retention.ms", "2000")])
        );

        assert_eq!(
            rejected(&image, alter(&[("retention.ms", "-7")], &[])).0,
            40
        );
        assert_eq!(
            rejected(&image, alter(&[("unknown.config", "1")], &[])).1,
            "Unknown topic config name: unknown.config"
        );
        assert_eq!(
            rejected(&image, alter(&[("retention.ms", "1")], &["retention.ms"])).0,
            42
        );
        assert_eq!(
            rejected(
                &image,
                alter(
                    &[
                        ("min.compaction.lag.ms", "5"),
                        ("max.compaction.lag.ms", "4")
                    ],
                    &[]
                )
            )
            .0,
            40
        );
        let unknown = MetadataRecord::AlterTopicConfigs {
            topic_id: ID_B,
            set: BTreeMap::new(),
            delete: vec![],
        };
        assert_eq!(rejected(&image, unknown).0, 100);
    }

    #[test]
    fn alter_broker_configs_per_broker_and_default() {
        let image = base_image();
        let alter =
            |node_id, set: &[(&str, &str)], delete: &[&str]| MetadataRecord::AlterBrokerConfigs {
                node_id,
                set: configs(set),
                delete: delete.iter().map(|name| name.to_string()).collect(),
            };
        let image = apply(&image, &alter(None, &[("log.retention.hours", "1")], &[])).unwrap();
        let image = apply(&image, &alter(Some(2), &[("log.retention.ms", "5")], &[])).unwrap();
        assert_eq!(
            image.dynamic_broker_configs(None),
            Some(&configs(&[("log.retention.hours", "1")]))
        );
        assert_eq!(
            image.dynamic_broker_configs(Some(2)),
            Some(&configs(&[("log.retention.ms", "5")]))
        );

        let cleared = apply(&image, &alter(Some(2), &[], &["log.retention.ms"])).unwrap();
        assert_eq!(
            cleared.dynamic_broker_configs(Some(2)),
            None,
            "empty maps are removed"
        );

        assert_eq!(rejected(&image, alter(Some(-2), &[], &[])).0, 42);
        assert_eq!(
            rejected(&image, alter(None, &[("log.retention.hours", "x")], &[])).0,
            40
        );
        assert_eq!(rejected(&image, alter(None, &[("a", "1")], &["a"])).0, 42);
    }

    #[test]
    fn alter_group_configs_validates_like_kafka_and_drops_empty_maps() {
        let image = base_image();
        let alter = |group: &str, set: &[(&str, &str)], delete: &[&str]| {
            MetadataRecord::AlterGroupConfigs {
                group_id: group.to_string(),
                set: configs(set),
                delete: delete.iter().map(|name| name.to_string()).collect(),
            }
        };
        let image = apply(
            &image,
            &alter("g", &[("consumer.session.timeout.ms", "50000")], &[]),
        )
        .unwrap();
        assert_eq!(
            image.group_configs("g"),
            Some(&configs(&[("consumer.session.timeout.ms", "50000")]))
        );
        let cleared = apply(&image, &alter("g", &[], &["consumer.session.timeout.ms"])).unwrap();
        assert_eq!(cleared.group_configs("g"), None, "empty maps are removed");
        assert_eq!(rejected(&image, alter("", &[], &[])).0, 42);
        assert_eq!(
            rejected(
                &image,
                alter("g", &[("consumer.session.timeout.ms", "1")], &[])
            )
            .0,
            40
        );
        assert_eq!(rejected(&image, alter("g", &[("nope", "1")], &[])).0, 40);
    }

    #[test]
    fn set_partition_leader_rules() {
        let image = base_image();
        let set =
            |partition, leader, isr: &[i32], leader_epoch| MetadataRecord::SetPartitionLeader {
                topic_id: ID_A,
                partition,
                leader,
                isr: isr.to_vec(),
                leader_epoch,
                partition_epoch: None,
            };
        // Shrinking the ISR keeps the leader and may keep the epoch.
        let shrunk = apply(&image, &set(0, 1, &[1], 0)).unwrap();
        assert_eq!(shrunk.topic("a").unwrap().partitions[0].isr, vec![1]);
        // A new leader needs a new epoch.
        let moved = apply(&image, &set(0, 2, &[2], 1)).unwrap();
        assert_eq!(moved.topic("a").unwrap().partitions[0].leader, 2);
        let offline = apply(&moved, &set(0, NO_LEADER, &[], 2)).unwrap();
        offline.check_invariants().unwrap();

        assert_eq!(rejected(&image, set(0, 2, &[2], 0)).0, 42);
        assert_eq!(rejected(&moved, set(0, 2, &[2], 0)).0, 42, "stale epoch");
        assert_eq!(rejected(&image, set(0, 3, &[3], 1)).0, 42, "not a replica");
        assert_eq!(
            rejected(&image, set(0, 1, &[2], 1)).0,
            42,
            "leader outside ISR"
        );
        assert_eq!(
            rejected(&image, set(0, 1, &[1, 1], 1)).0,
            42,
            "duplicate ISR"
        );
        assert_eq!(rejected(&image, set(5, 1, &[1], 1)).0, 3);
        assert_eq!(rejected(&image, set(-1, 1, &[1], 1)).0, 3);
        let unknown = MetadataRecord::SetPartitionLeader {
            topic_id: ID_B,
            partition: 0,
            leader: 1,
            isr: vec![1],
            leader_epoch: 1,
            partition_epoch: None,
        };
        assert_eq!(rejected(&image, unknown).0, 100);
    }

    #[test]
    fn entry_is_atomic_and_index_increases() {
        let image = base_image();
        let records = [
            create("b", ID_B, vec![assignment(0, &[1])]),
            create("b", Uuid::from_u128(0xC), vec![assignment(0, &[1])]),
        ];
        let error = apply_entry(&image, 2, &records).unwrap_err();
        assert_eq!(error.kafka_error_code(), 36);
        assert!(image.topic("b").is_none());
        assert_eq!(
            apply_entry(&image, 1, &[]).unwrap_err().kafka_error_code(),
            42
        );
        assert_eq!(apply_entry(&image, 7, &[]).unwrap().offset, 7);
    }

    #[test]
    fn apply_is_deterministic() {
        let records = vec![
            register(1),
            register(2),
            create("t", ID_B, vec![assignment(0, &[1, 2])]),
            MetadataRecord::SetPartitionLeader {
                topic_id: ID_B,
                partition: 0,
                leader: 2,
                isr: vec![2, 1],
                leader_epoch: 3,
                partition_epoch: None,
            },
            MetadataRecord::AlterTopicConfigs {
                topic_id: ID_B,
                set: configs(&[("cleanup.policy", "compact")]),
                delete: vec![],
            },
        ];
        let run = || {
            records
                .iter()
                .enumerate()
                .fold(MetadataImage::empty("c"), |image, (index, record)| {
                    apply_entry(&image, index as u64 + 1, std::slice::from_ref(record)).unwrap()
                })
        };
        let first = run();
        assert_eq!(first, run());
        assert_eq!(
            first,
            apply_entry(&MetadataImage::empty("c"), 5, &records).unwrap()
        );
    }
}
