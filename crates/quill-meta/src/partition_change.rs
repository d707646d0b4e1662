//! Partition leadership and ISR changes: leaders' ISR changes (Kafka's AlterPartition) and the
//! controller's elections when a broker is fenced, shuts down or returns.
//!
//! Every change is a conditional record (`AlterPartition`, `PartitionChange`) carrying the
//! leader epoch and partition epoch it was planned against; the state machine applies it only
//! if they still match, so a plan made from an older image never wins a race, and the reason it
//! lost reaches the caller as a Kafka error even across forwarding (the error code travels).
//!
//! Elections follow Kafka's `PartitionChangeBuilder` without eligible leader replicas (KIP-966
//! ELR is not implemented): the new leader is the first replica, in replica order, that is in
//! the ISR and active; a broker that leaves (fenced, shutting down) leaves every ISR except
//! where it is the last member, which keeps it (the partition then has no leader until it
//! returns, because only it may hold every acknowledged record). With
//! `unclean.leader.election.enable` an active replica outside the ISR may lead when no ISR
//! member can (ISR = [it]; acknowledged records may be lost).

use crate::image::{PartitionInfo, TopicInfo};
use crate::record::{MetadataRecord, NO_LEADER};
use crate::{error_code, MetaError, MetadataImage};

/// The topic config (and broker default) that allows electing a replica outside the ISR.
pub const UNCLEAN_LEADER_ELECTION_ENABLE: &str = "unclean.leader.election.enable";

/// Why an AlterPartition (a leader's ISR change) was refused, with Kafka's error for each.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AlterPartitionError {
    /// The caller's leader epoch is older than the partition's: it no longer leads.
    #[error("FENCED_LEADER_EPOCH: {0}")]
    FencedLeaderEpoch(String),
    /// The caller's partition epoch is older: the partition changed meanwhile (re-read it).
    #[error("INVALID_UPDATE_VERSION: {0}")]
    InvalidUpdateVersion(String),
    /// The caller does not lead the partition at that leader epoch.
    #[error("NOT_LEADER_OR_FOLLOWER: {0}")]
    NotLeaderOrFollower(String),
    /// The new ISR names a broker that is not registered, is fenced or is shutting down.
    #[error("INELIGIBLE_REPLICA: {0}")]
    IneligibleReplica(String),
    #[error("UNKNOWN_TOPIC_ID: {0}")]
    UnknownTopicId(String),
    #[error("UNKNOWN_TOPIC_OR_PARTITION: {0}")]
    UnknownTopicOrPartition(String),
    /// The ISR lacks the leader, repeats a broker or names one that is not a replica.
    #[error("INVALID_REQUEST: {0}")]
    InvalidRequest(String),
    /// Not decided: the quorum could not take the change now (no active controller, it is
    /// behind the caller, a storage error) or its outcome is unknown (REQUEST_TIMED_OUT).
    /// Retry after re-reading the partition.
    #[error("{message} (error {error_code})")]
    Retriable { error_code: i16, message: String },
}

impl AlterPartitionError {
    /// Kafka's error code.
    pub fn error_code(&self) -> i16 {
        match self {
            AlterPartitionError::FencedLeaderEpoch(_) => error_code::FENCED_LEADER_EPOCH,
            AlterPartitionError::InvalidUpdateVersion(_) => error_code::INVALID_UPDATE_VERSION,
            AlterPartitionError::NotLeaderOrFollower(_) => error_code::NOT_LEADER_OR_FOLLOWER,
            AlterPartitionError::IneligibleReplica(_) => error_code::INELIGIBLE_REPLICA,
            AlterPartitionError::UnknownTopicId(_) => error_code::UNKNOWN_TOPIC_ID,
            AlterPartitionError::UnknownTopicOrPartition(_) => {
                error_code::UNKNOWN_TOPIC_OR_PARTITION
            }
            AlterPartitionError::InvalidRequest(_) => error_code::INVALID_REQUEST,
            AlterPartitionError::Retriable { error_code, .. } => *error_code,
        }
    }
}

impl From<MetaError> for AlterPartitionError {
    /// By error code, so a refusal decided on the active controller (a forwarded proposal,
    /// or a committed entry the state machine refused) maps exactly like a local one.
    fn from(error: MetaError) -> AlterPartitionError {
        let message = error.to_string();
        match error.kafka_error_code() {
            error_code::FENCED_LEADER_EPOCH => AlterPartitionError::FencedLeaderEpoch(message),
            error_code::INVALID_UPDATE_VERSION => {
                AlterPartitionError::InvalidUpdateVersion(message)
            }
            error_code::NOT_LEADER_OR_FOLLOWER => AlterPartitionError::NotLeaderOrFollower(message),
            error_code::INELIGIBLE_REPLICA => AlterPartitionError::IneligibleReplica(message),
            error_code::UNKNOWN_TOPIC_ID => AlterPartitionError::UnknownTopicId(message),
            error_code::UNKNOWN_TOPIC_OR_PARTITION => {
                AlterPartitionError::UnknownTopicOrPartition(message)
            }
            error_code::INVALID_REQUEST => AlterPartitionError::InvalidRequest(message),
            error_code => AlterPartitionError::Retriable {
                error_code,
                message,
            },
        }
    }
}

/// The record for broker `leader`'s AlterPartition, checked against `image` (the state machine
/// checks it again where it commits).
pub fn plan_alter_partition(
    image: &MetadataImage,
    leader: i32,
    topic_id: uuid::Uuid,
    partition: i32,
    (leader_epoch, partition_epoch): (i32, i32),
    isr: Vec<i32>,
) -> Result<MetadataRecord, AlterPartitionError> {
    let record = MetadataRecord::AlterPartition {
        topic_id,
        partition,
        leader,
        leader_epoch,
        partition_epoch,
        isr,
    };
    crate::apply(image, &record)?;
    Ok(record)
}

/// Whether a topic may elect a replica outside its ISR: its `unclean.leader.election.enable`,
/// else the cluster-wide dynamic default, else `static_default` (the controller's static
/// setting; false unless set).
pub fn unclean_election_enabled(
    image: &MetadataImage,
    topic: &TopicInfo,
    static_default: bool,
) -> bool {
    let parse = |value: &String| value.trim().eq_ignore_ascii_case("true");
    topic
        .configs
        .get(UNCLEAN_LEADER_ELECTION_ENABLE)
        .or_else(|| {
            image
                .dynamic_broker_configs(None)
                .and_then(|configs| configs.get(UNCLEAN_LEADER_ELECTION_ENABLE))
        })
        .map_or(static_default, parse)
}

/// The leader and ISR a partition gets when broker `leaving` (fenced or shutting down; it is
/// already not active in `image`, or is excluded explicitly) may no longer lead or be in sync.
fn without_broker(
    image: &MetadataImage,
    partition: &PartitionInfo,
    leaving: i32,
    unclean: bool,
) -> (i32, Vec<i32>) {
    let mut isr: Vec<i32> = partition
        .isr
        .iter()
        .copied()
        .filter(|id| *id != leaving)
        .collect();
    if isr.is_empty() {
        // The last ISR member stays: only it may have every acknowledged record.
        isr = partition.isr.clone();
    }
    let can_lead = |id: i32| id != leaving && image.is_active_broker(id);
    if partition.leader != NO_LEADER && partition.leader != leaving && can_lead(partition.leader) {
        return (partition.leader, isr);
    }
    elect(partition, isr, unclean, can_lead)
}

/// The first replica (replica order) in `isr` that `can_lead`; else, when `unclean`, the first
/// replica that can (ISR = [it]); else no leader.
fn elect(
    partition: &PartitionInfo,
    isr: Vec<i32>,
    unclean: bool,
    can_lead: impl Fn(i32) -> bool,
) -> (i32, Vec<i32>) {
    if let Some(leader) = partition
        .replicas
        .iter()
        .copied()
        .find(|id| isr.contains(id) && can_lead(*id))
    {
        return (leader, isr);
    }
    if unclean {
        if let Some(leader) = partition.replicas.iter().copied().find(|id| can_lead(*id)) {
            return (leader, vec![leader]);
        }
    }
    (NO_LEADER, isr)
}

fn change_record(
    topic: &TopicInfo,
    partition: &PartitionInfo,
    (leader, isr): (i32, Vec<i32>),
) -> Option<MetadataRecord> {
    (leader != partition.leader || isr != partition.isr).then_some(
        MetadataRecord::PartitionChange {
            topic_id: topic.topic_id,
            partition: partition.partition,
            expected_leader_epoch: partition.leader_epoch,
            expected_partition_epoch: partition.partition_epoch,
            leader,
            isr,
        },
    )
}

/// The partition changes that take broker `node_id` out of every leadership and ISR.
fn leave_everything(
    image: &MetadataImage,
    node_id: i32,
    static_unclean: bool,
) -> Vec<MetadataRecord> {
    let mut records = Vec::new();
    for topic in image.topics.values() {
        let unclean = unclean_election_enabled(image, topic, static_unclean);
        for partition in &topic.partitions {
            if partition.leader != node_id && !partition.isr.contains(&node_id) {
                continue;
            }
            let next = without_broker(image, partition, node_id, unclean);
            records.extend(change_record(topic, partition, next));
        }
    }
    records
}

/// Fences broker `node_id` (its session expired, or it ends a controlled shutdown): it leaves
/// Metadata, every partition it leads elects a new leader from the rest of the ISR (leader
/// epoch and partition epoch bumped), and it leaves every ISR where it is not the last member.
/// `static_unclean` is the controller's static `unclean.leader.election.enable`. Empty when
/// the broker is unknown or already fenced.
pub fn plan_fence_broker(
    image: &MetadataImage,
    node_id: i32,
    static_unclean: bool,
) -> Vec<MetadataRecord> {
    if image
        .brokers
        .get(&node_id)
        .is_none_or(|broker| broker.fenced)
    {
        return Vec::new();
    }
    let mut records = vec![MetadataRecord::FenceBroker { node_id }];
    records.extend(leave_everything(image, node_id, static_unclean));
    records
}

/// Kafka's controlled shutdown, on the controller, when broker `node_id` asks for it (its
/// heartbeat's `want_shut_down`): it is marked shutting down and its leaderships and ISR
/// places move exactly as when it is fenced, while it keeps serving until it fences itself.
/// Empty when it is unknown, fenced or already shutting down.
pub fn plan_controlled_shutdown(
    image: &MetadataImage,
    node_id: i32,
    static_unclean: bool,
) -> Vec<MetadataRecord> {
    if !image.is_active_broker(node_id) {
        return Vec::new();
    }
    let mut records = vec![MetadataRecord::BeginControlledShutdown { node_id }];
    records.extend(leave_everything(image, node_id, static_unclean));
    records
}

/// Unfences broker `node_id` (it heartbeats again). It becomes leader only of partitions that
/// have none and whose ISR holds it (first in replica order among the active ISR members, so
/// itself unless another member is active), or, where the topic allows unclean elections and no
/// ISR member is active, of a leaderless partition it is a replica of (ISR = [it]). Moving
/// leadership back to preferred replicas is the operations issue's preferred-leader election.
/// Empty when it is unknown or not fenced.
pub fn plan_unfence_broker(
    image: &MetadataImage,
    node_id: i32,
    static_unclean: bool,
) -> Vec<MetadataRecord> {
    if image
        .brokers
        .get(&node_id)
        .is_none_or(|broker| !broker.fenced)
    {
        return Vec::new();
    }
    let mut records = vec![MetadataRecord::UnfenceBroker { node_id }];
    for topic in image.topics.values() {
        let unclean = unclean_election_enabled(image, topic, static_unclean);
        for partition in &topic.partitions {
            if partition.leader != NO_LEADER || !partition.replicas.contains(&node_id) {
                continue;
            }
            let can_lead = |id: i32| id == node_id || image.is_active_broker(id);
            let next = elect(partition, partition.isr.clone(), unclean, can_lead);
            records.extend(change_record(topic, partition, next));
        }
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{apply_entry, PartitionAssignment};
    use std::collections::BTreeMap;
    use uuid::Uuid;

    const TOPIC: Uuid = Uuid::from_u128(0x70);
    const SOLO: Uuid = Uuid::from_u128(0x71);
    const PAIR: Uuid = Uuid::from_u128(0x72);

    /// The partitions the tests name by index: 0 and 1 are "t"-0 on [1, 2, 3] and "t"-1 on
    /// [2, 3, 1]; 2 is "solo"-0 on [1] alone; 3 is "pair"-0 on [4, 1].
    fn locate(index: usize) -> (&'static str, Uuid, i32) {
        match index {
            0 | 1 => ("t", TOPIC, index as i32),
            2 => ("solo", SOLO, 0),
            3 => ("pair", PAIR, 0),
            _ => ("t", TOPIC, index as i32),
        }
    }

    fn create(
        name: &str,
        topic_id: Uuid,
        lists: &[&[i32]],
        configs: &[(&str, &str)],
    ) -> MetadataRecord {
        MetadataRecord::CreateTopic {
            name: name.into(),
            topic_id,
            partitions: lists
                .iter()
                .enumerate()
                .map(|(partition, replicas)| PartitionAssignment {
                    partition: partition as i32,
                    replicas: replicas.to_vec(),
                })
                .collect(),
            configs: configs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    /// Brokers 1..=4 and the topics of [`locate`]; `configs` are every topic's.
    fn image(configs: &[(&str, &str)]) -> MetadataImage {
        let mut records: Vec<MetadataRecord> = (1..=4)
            .map(|node_id| MetadataRecord::RegisterBroker {
                node_id,
                host: "h".into(),
                port: 9092,
                rack: None,
                incarnation_id: None,
            })
            .collect();
        records.push(create("t", TOPIC, &[&[1, 2, 3], &[2, 3, 1]], configs));
        records.push(create("solo", SOLO, &[&[1]], configs));
        records.push(create("pair", PAIR, &[&[4, 1]], configs));
        apply_entry(&MetadataImage::empty("c"), 1, &records).unwrap()
    }

    fn next(image: &MetadataImage, records: &[MetadataRecord]) -> MetadataImage {
        let next = apply_entry(image, image.offset + 1, records).unwrap();
        next.check_invariants().unwrap();
        next
    }

    fn state(image: &MetadataImage, index: usize) -> (i32, Vec<i32>, i32, i32) {
        let (name, _, partition) = locate(index);
        let p = &image.topic(name).unwrap().partitions[partition as usize];
        (p.leader, p.isr.clone(), p.leader_epoch, p.partition_epoch)
    }

    fn alter(
        image: &MetadataImage,
        leader: i32,
        index: usize,
        epochs: (i32, i32),
        isr: &[i32],
    ) -> Result<MetadataImage, AlterPartitionError> {
        let (_, topic_id, partition) = locate(index);
        let record =
            plan_alter_partition(image, leader, topic_id, partition, epochs, isr.to_vec())?;
        Ok(next(image, &[record]))
    }

    #[test]
    fn alter_partition_shrinks_and_expands_the_isr() {
        let image = image(&[]);
        let shrunk = alter(&image, 1, 0, (0, 0), &[1, 3]).unwrap();
        assert_eq!(
            state(&shrunk, 0),
            (1, vec![1, 3], 0, 1),
            "leader epoch kept"
        );
        let expanded = alter(&shrunk, 1, 0, (0, 1), &[1, 3, 2]).unwrap();
        assert_eq!(state(&expanded, 0), (1, vec![1, 3, 2], 0, 2));
    }

    #[test]
    fn alter_partition_errors_are_kafkas() {
        let image = image(&[]);
        let shrunk = alter(&image, 1, 0, (0, 0), &[1, 3]).unwrap();
        let code = |image: &MetadataImage, leader, partition, epochs, isr: &[i32]| {
            alter(image, leader, partition, epochs, isr)
                .unwrap_err()
                .error_code()
        };
        // A stale partition epoch (the ISR changed meanwhile): INVALID_UPDATE_VERSION.
        assert_eq!(code(&shrunk, 1, 0, (0, 0), &[1]), 95);
        // A broker that does not lead.
        assert_eq!(code(&shrunk, 2, 0, (0, 1), &[1]), 6);
        // The ISR must hold the leader and only replicas, once each.
        assert_eq!(code(&shrunk, 1, 0, (0, 1), &[3]), 42);
        assert_eq!(code(&shrunk, 1, 0, (0, 1), &[1, 4]), 42);
        assert_eq!(code(&shrunk, 1, 0, (0, 1), &[1, 1]), 42);
        // Unknown topic id and partition.
        let unknown = plan_alter_partition(&shrunk, 1, Uuid::from_u128(9), 0, (0, 1), vec![1]);
        assert_eq!(unknown.unwrap_err().error_code(), 100);
        assert_eq!(code(&shrunk, 1, 7, (0, 0), &[1]), 3, "no partition 7");
        // A newer epoch than the controller knows: it is behind (retriable NOT_CONTROLLER).
        let ahead = alter(&shrunk, 1, 0, (0, 5), &[1]).unwrap_err();
        assert_eq!(ahead.error_code(), 41);
        assert!(matches!(ahead, AlterPartitionError::Retriable { .. }));

        // A leader change fences the old leader's requests.
        let fenced = next(&shrunk, &plan_fence_broker(&shrunk, 1, false));
        assert_eq!(state(&fenced, 0).0, 3, "3 is the first live ISR member");
        assert_eq!(code(&fenced, 1, 0, (0, 1), &[1, 3]), 74);
        // Fenced, shutting-down and unregistered brokers cannot be added (KIP-903).
        let (leader, _, leader_epoch, partition_epoch) = state(&fenced, 0);
        let epochs = (leader_epoch, partition_epoch);
        assert_eq!(code(&fenced, leader, 0, epochs, &[3, 1]), 107);
        let shutting = next(&fenced, &plan_controlled_shutdown(&fenced, 2, false));
        let (leader, _, leader_epoch, partition_epoch) = state(&shutting, 0);
        assert_eq!(
            code(
                &shutting,
                leader,
                0,
                (leader_epoch, partition_epoch),
                &[3, 2]
            ),
            107
        );
        let error = alter(
            &shutting,
            leader,
            0,
            (leader_epoch, partition_epoch),
            &[3, 2],
        )
        .unwrap_err();
        assert!(error.to_string().contains("shutting down"), "{error}");
    }

    #[test]
    fn a_stale_change_loses_the_race_even_when_already_committed() {
        let image = image(&[]);
        let first = plan_alter_partition(&image, 1, TOPIC, 0, (0, 0), vec![1, 2]).unwrap();
        let second = plan_alter_partition(&image, 1, TOPIC, 0, (0, 0), vec![1, 3]).unwrap();
        let after_first = next(&image, &[first]);
        // Both planned against the same state: the second one is refused where it commits.
        let error = apply_entry(&after_first, after_first.offset + 1, &[second]).unwrap_err();
        assert_eq!(AlterPartitionError::from(error).error_code(), 95);
        assert_eq!(state(&after_first, 0).1, vec![1, 2]);
    }

    #[test]
    fn the_error_survives_forwarding() {
        // A refusal crossing the controller listener arrives as MetaError::Rejected.
        let forwarded = MetaError::Rejected {
            error_code: 107,
            message: "Broker 2 cannot be in the ISR".into(),
        };
        assert_eq!(
            AlterPartitionError::from(forwarded),
            AlterPartitionError::IneligibleReplica("Broker 2 cannot be in the ISR".into())
        );
        let timed_out = AlterPartitionError::from(MetaError::OutcomeUnknown("x".into()));
        assert_eq!(timed_out.error_code(), 7);
    }

    #[test]
    fn fencing_elects_from_the_isr_and_keeps_the_last_member() {
        let image = image(&[]);
        let fenced = next(&image, &plan_fence_broker(&image, 1, false));
        assert!(fenced.brokers[&1].fenced);
        // Led by 1: the first other ISR member in replica order leads, epochs bumped.
        assert_eq!(state(&fenced, 0), (2, vec![2, 3], 1, 1));
        // Followed by 1: it leaves the ISR, the leader and its epoch stay.
        assert_eq!(state(&fenced, 1), (2, vec![2, 3], 0, 1));
        // 1 was the only replica: no leader, and it stays in the ISR.
        assert_eq!(state(&fenced, 2), (NO_LEADER, vec![1], 1, 1));
        assert_eq!(state(&fenced, 3), (4, vec![4], 0, 1));
        assert!(
            plan_fence_broker(&fenced, 1, false).is_empty(),
            "already fenced"
        );

        // The leader of [2, 3] goes too, then the last one: it stays in the ISR, leaderless.
        let fenced = next(&fenced, &plan_fence_broker(&fenced, 2, false));
        assert_eq!(state(&fenced, 0), (3, vec![3], 2, 2));
        let fenced = next(&fenced, &plan_fence_broker(&fenced, 3, false));
        assert_eq!(state(&fenced, 0), (NO_LEADER, vec![3], 3, 3));

        // 1 returns: leaderless partitions whose ISR holds it are its again; not partition 0,
        // whose ISR is [3] (unclean elections are off).
        let back = next(&fenced, &plan_unfence_broker(&fenced, 1, false));
        assert_eq!(state(&back, 2), (1, vec![1], 2, 2));
        assert_eq!(state(&back, 0).0, NO_LEADER);
        // 3 returns: it leads partition 0 again.
        let back = next(&back, &plan_unfence_broker(&back, 3, false));
        assert_eq!(state(&back, 0), (3, vec![3], 4, 4));
    }

    #[test]
    fn unclean_elections_only_when_enabled() {
        let on = vec![(UNCLEAN_LEADER_ELECTION_ENABLE, "true")];
        let off = vec![(UNCLEAN_LEADER_ELECTION_ENABLE, "false")];
        for (configs, static_default, expected) in [
            (vec![], false, (NO_LEADER, vec![4])),
            (on, false, (1, vec![1])),
            (vec![], true, (1, vec![1])),
            (off, true, (NO_LEADER, vec![4])),
        ] {
            // Partition 3 is [4, 1]; its ISR shrinks to [4], then 4, its last member, is fenced
            // while 1, out of sync, is alive.
            let image = image(&configs);
            let shrunk = alter(&image, 4, 3, (0, 0), &[4]).unwrap();
            let fenced = next(&shrunk, &plan_fence_broker(&shrunk, 4, static_default));
            let (leader, isr, leader_epoch, _) = state(&fenced, 3);
            assert_eq!((leader, isr), expected, "{configs:?} {static_default}");
            assert_eq!(leader_epoch, 1);
        }
        // A dynamic cluster default counts too.
        let image = image(&[]);
        let with_default = next(
            &image,
            &[MetadataRecord::AlterBrokerConfigs {
                node_id: None,
                set: BTreeMap::from([(UNCLEAN_LEADER_ELECTION_ENABLE.to_string(), "true".into())]),
                delete: vec![],
            }],
        );
        assert!(unclean_election_enabled(
            &with_default,
            with_default.topic("pair").unwrap(),
            false
        ));
    }

    #[test]
    fn unclean_election_on_return_of_an_out_of_sync_replica() {
        let image = image(&[(UNCLEAN_LEADER_ELECTION_ENABLE, "true")]);
        // Partition 3 = [4, 1]: 1 leaves the ISR; 4, its last member, is fenced; 1 is fenced.
        let shrunk = alter(&image, 4, 3, (0, 0), &[4]).unwrap();
        let records = plan_fence_broker(&shrunk, 1, false);
        let without1 = next(&shrunk, &records);
        let down = next(&without1, &plan_fence_broker(&without1, 4, false));
        assert_eq!(state(&down, 3).0, NO_LEADER, "no live replica at all");
        // 1 returns: out of the ISR, but unclean elections are allowed and no ISR member lives.
        let back = next(&down, &plan_unfence_broker(&down, 1, false));
        assert_eq!(state(&back, 3).0, 1);
        assert_eq!(state(&back, 3).1, vec![1]);
    }

    #[test]
    fn controlled_shutdown_moves_leadership_before_the_broker_is_fenced() {
        let image = image(&[]);
        let shutting = next(&image, &plan_controlled_shutdown(&image, 1, false));
        let broker = &shutting.brokers[&1];
        assert!(broker.in_controlled_shutdown && !broker.fenced);
        assert_eq!(state(&shutting, 0), (2, vec![2, 3], 1, 1));
        assert_eq!(
            state(&shutting, 2),
            (NO_LEADER, vec![1], 1, 1),
            "the only replica"
        );
        assert!(plan_controlled_shutdown(&shutting, 1, false).is_empty());
        let again = MetadataRecord::BeginControlledShutdown { node_id: 1 };
        assert_eq!(
            crate::apply(&shutting, &again)
                .unwrap_err()
                .kafka_error_code(),
            42
        );
        let unknown = MetadataRecord::BeginControlledShutdown { node_id: 9 };
        assert_eq!(
            crate::apply(&shutting, &unknown)
                .unwrap_err()
                .kafka_error_code(),
            42
        );
        // Nothing is placed on it, and it cannot lead when another broker returns.
        assert_eq!(
            crate::placement::active_broker_count(&shutting),
            3,
            "1 is not active"
        );
        // Fencing it ends the shutdown; nothing is left to move.
        let fence = plan_fence_broker(&shutting, 1, false);
        assert_eq!(fence, vec![MetadataRecord::FenceBroker { node_id: 1 }]);
        let fenced = next(&shutting, &fence);
        assert!(!fenced.brokers[&1].in_controlled_shutdown);
        // Snapshots keep the shutting-down state.
        let rebuilt = crate::storage::snapshot::snapshot_records(&shutting);
        let replayed = apply_entry(&MetadataImage::empty("c"), 1, &rebuilt).unwrap();
        assert_eq!(replayed.brokers, shutting.brokers);
        assert_eq!(replayed.topics, shutting.topics);
    }

    #[test]
    fn an_election_planned_on_an_old_image_is_refused() {
        let image = image(&[]);
        let stale = plan_fence_broker(&image, 1, false);
        let shrunk = alter(&image, 1, 0, (0, 0), &[1, 2]).unwrap();
        let error = apply_entry(&shrunk, shrunk.offset + 1, &stale).unwrap_err();
        assert_eq!(error.kafka_error_code(), 95);
    }
}
