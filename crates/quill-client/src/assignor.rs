//! Consumer-group partition assignors as pure functions: the group leader runs one over every
//! member's subscription and sends the result back through SyncGroup. They follow the Java
//! client's `range`, `roundrobin` and `cooperative-sticky` assignors so a Quill consumer can
//! share a group with Java/librdkafka consumers using the same strategy.
//!
//! Also the embedded consumer protocol (JoinGroup member metadata = subscription, SyncGroup
//! bytes = assignment), versions 0–3, so subscriptions from any Kafka client can be read.
//!
//! `cooperative-sticky` follows Kafka's `CooperativeStickyAssignor` rule: a partition that moves
//! from one member to another is left unassigned in the generation that takes it away, and
//! assigned in the follow-up rebalance its old owner triggers after revoking it. Membership
//! itself lives in [`crate::group`].

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{consumer_protocol_assignment, consumer_protocol_subscription};
use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::admin::topic_name;
use crate::error::{ClientError, Result};
use crate::TopicPartition;

/// One member's subscription, as carried in JoinGroup metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscription {
    pub topics: Vec<String>,
    /// Partitions the member owns now (cooperative protocol, KIP-429).
    pub owned_partitions: Vec<TopicPartition>,
    /// The generation in which the member got `owned_partitions` (subscription v2+, KIP-792);
    /// `None` from older clients and from members that never joined. When two members claim
    /// the same partition, the newer generation's claim is the true one.
    pub generation: Option<i32>,
}

/// Member id → assigned partitions (sorted).
pub type Assignment = BTreeMap<String, Vec<TopicPartition>>;

/// Protocol names, as in JoinGroup's `protocols`.
pub const RANGE: &str = "range";
pub const ROUND_ROBIN: &str = "roundrobin";
pub const COOPERATIVE_STICKY: &str = "cooperative-sticky";

/// Runs the assignor named by its JoinGroup protocol name; `None` for an unknown name.
pub fn assign(
    protocol: &str,
    members: &BTreeMap<String, Subscription>,
    partitions_per_topic: &BTreeMap<String, i32>,
) -> Option<Assignment> {
    match protocol {
        RANGE => Some(range(members, partitions_per_topic)),
        ROUND_ROBIN => Some(round_robin(members, partitions_per_topic)),
        COOPERATIVE_STICKY => Some(cooperative_sticky(members, partitions_per_topic)),
        _ => None,
    }
}

/// Newest version of the embedded consumer protocol (KIP-429 owned partitions, KIP-792
/// generation, KIP-881 rack) this client writes and reads.
pub const CONSUMER_PROTOCOL_VERSION: i16 = 3;

/// JoinGroup member metadata: a version, then the subscription at that version.
pub fn encode_subscription(subscription: &Subscription) -> Result<Bytes> {
    let message = ConsumerProtocolSubscription::default()
        .with_topics(
            subscription
                .topics
                .iter()
                .map(|topic| StrBytes::from_string(topic.clone()))
                .collect(),
        )
        .with_owned_partitions(group_by_topic(
            &subscription.owned_partitions,
            |topic, partitions| {
                consumer_protocol_subscription::TopicPartition::default()
                    .with_topic(topic_name(topic))
                    .with_partitions(partitions)
            },
        ))
        .with_generation_id(subscription.generation.unwrap_or(-1));
    encode_versioned(&message, "consumer subscription")
}

/// Reads member metadata written by any client. A newer version than this client knows is
/// read as the newest known one: the protocol only ever appends fields.
pub fn decode_subscription(metadata: Bytes) -> Result<Subscription> {
    let (version, mut body) = split_version(metadata, "consumer subscription")?;
    let message = ConsumerProtocolSubscription::decode(&mut body, version)
        .map_err(|error| malformed("consumer subscription", error))?;
    let owned_partitions = message
        .owned_partitions
        .iter()
        .flat_map(|topic| {
            topic
                .partitions
                .iter()
                .map(|&p| TopicPartition::new(topic.topic.0.as_str(), p))
        })
        .collect();
    Ok(Subscription {
        topics: message
            .topics
            .iter()
            .map(|topic| topic.to_string())
            .collect(),
        owned_partitions,
        generation: (message.generation_id >= 0).then_some(message.generation_id),
    })
}

/// SyncGroup assignment bytes for one member.
pub fn encode_assignment(partitions: &[TopicPartition]) -> Result<Bytes> {
    let message = ConsumerProtocolAssignment::default().with_assigned_partitions(group_by_topic(
        partitions,
        |topic, partitions| {
            consumer_protocol_assignment::TopicPartition::default()
                .with_topic(topic_name(topic))
                .with_partitions(partitions)
        },
    ));
    encode_versioned(&message, "consumer assignment")
}

/// Reads the assignment a group leader (any client) sent through SyncGroup; empty bytes mean
/// nothing assigned.
pub fn decode_assignment(assignment: Bytes) -> Result<Vec<TopicPartition>> {
    if assignment.is_empty() {
        return Ok(Vec::new());
    }
    let (version, mut body) = split_version(assignment, "consumer assignment")?;
    let message = ConsumerProtocolAssignment::decode(&mut body, version)
        .map_err(|error| malformed("consumer assignment", error))?;
    let mut partitions: Vec<TopicPartition> = message
        .assigned_partitions
        .iter()
        .flat_map(|topic| {
            topic
                .partitions
                .iter()
                .map(|&p| TopicPartition::new(topic.topic.0.as_str(), p))
        })
        .collect();
    partitions.sort();
    Ok(partitions)
}

fn group_by_topic<T>(partitions: &[TopicPartition], make: impl Fn(&str, Vec<i32>) -> T) -> Vec<T> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for partition in partitions {
        by_topic
            .entry(partition.topic.as_str())
            .or_default()
            .push(partition.partition);
    }
    by_topic
        .into_iter()
        .map(|(topic, partitions)| make(topic, partitions))
        .collect()
}

fn encode_versioned(message: &impl Encodable, what: &'static str) -> Result<Bytes> {
    let mut buffer = BytesMut::new();
    buffer.put_i16(CONSUMER_PROTOCOL_VERSION);
    message
        .encode(&mut buffer, CONSUMER_PROTOCOL_VERSION)
        .map_err(|error| ClientError::Encode {
            api: what,
            message: error.to_string(),
        })?;
    Ok(buffer.freeze())
}

fn split_version(mut bytes: Bytes, what: &'static str) -> Result<(i16, Bytes)> {
    if bytes.len() < 2 {
        return Err(ClientError::Decode {
            api: what,
            address: "the group".into(),
            message: format!("{} bytes, no version", bytes.len()),
        });
    }
    let version = bytes.get_i16();
    if version < 0 {
        return Err(ClientError::Decode {
            api: what,
            address: "the group".into(),
            message: format!("negative version {version}"),
        });
    }
    Ok((version.min(CONSUMER_PROTOCOL_VERSION), bytes))
}

fn malformed(what: &'static str, error: impl std::fmt::Display) -> ClientError {
    ClientError::Decode {
        api: what,
        address: "the group".into(),
        message: error.to_string(),
    }
}

fn empty_assignment(members: &BTreeMap<String, Subscription>) -> Assignment {
    members
        .keys()
        .map(|member| (member.clone(), Vec::new()))
        .collect()
}

fn subscribes(subscription: &Subscription, topic: &str) -> bool {
    subscription
        .topics
        .iter()
        .any(|candidate| candidate == topic)
}

/// Per topic, members sorted by id take contiguous ranges; the first `partitions % members`
/// members take one extra.
pub fn range(
    members: &BTreeMap<String, Subscription>,
    partitions_per_topic: &BTreeMap<String, i32>,
) -> Assignment {
    let mut assignment = empty_assignment(members);
    for (topic, &partition_count) in partitions_per_topic {
        let consumers: Vec<&String> = members
            .iter()
            .filter(|(_, subscription)| subscribes(subscription, topic))
            .map(|(member, _)| member)
            .collect();
        if consumers.is_empty() || partition_count <= 0 {
            continue;
        }
        let consumer_count = consumers.len() as i32;
        let per_consumer = partition_count / consumer_count;
        let extra = partition_count % consumer_count;
        for (index, member) in consumers.into_iter().enumerate() {
            let index = index as i32;
            let start = per_consumer * index + index.min(extra);
            let length = per_consumer + i32::from(index < extra);
            if let Some(partitions) = assignment.get_mut(member) {
                partitions.extend((start..start + length).map(|p| TopicPartition::new(topic, p)));
            }
        }
    }
    assignment
}

/// All partitions sorted by (topic, partition), dealt in turn to members sorted by id,
/// skipping members not subscribed to the partition's topic.
pub fn round_robin(
    members: &BTreeMap<String, Subscription>,
    partitions_per_topic: &BTreeMap<String, i32>,
) -> Assignment {
    let mut assignment = empty_assignment(members);
    let member_ids: Vec<&String> = members.keys().collect();
    if member_ids.is_empty() {
        return assignment;
    }
    let mut next_member = 0usize;
    for partition in all_partitions(members, partitions_per_topic) {
        for _ in 0..member_ids.len() {
            let member = member_ids[next_member % member_ids.len()];
            next_member += 1;
            if members
                .get(member)
                .is_some_and(|subscription| subscribes(subscription, &partition.topic))
            {
                if let Some(partitions) = assignment.get_mut(member) {
                    partitions.push(partition);
                }
                break;
            }
        }
    }
    assignment
}

/// Balanced and sticky: members keep what they own as far as balance allows, the rest goes to
/// the least-loaded subscribed member. Cooperative (KIP-429): a partition moving from one
/// member to another is left out of this round (its owner revokes it first, and the
/// follow-up rebalance hands it over), so no partition is ever owned twice.
pub fn cooperative_sticky(
    members: &BTreeMap<String, Subscription>,
    partitions_per_topic: &BTreeMap<String, i32>,
) -> Assignment {
    let eligible: BTreeSet<TopicPartition> = all_partitions(members, partitions_per_topic)
        .into_iter()
        .collect();
    let mut assignment = empty_assignment(members);
    if members.is_empty() {
        return assignment;
    }
    let previous_owner = keep_valid_owned(members, &eligible, &mut assignment);
    let max_quota = eligible.len().div_ceil(members.len());
    let min_quota = eligible.len() / members.len();
    let members_at_max = eligible.len() - min_quota * members.len();
    revoke_over_quota(&mut assignment, min_quota, max_quota, members_at_max);
    let assigned: BTreeSet<TopicPartition> = assignment.values().flatten().cloned().collect();
    for partition in eligible
        .iter()
        .filter(|partition| !assigned.contains(*partition))
    {
        let least_loaded = assignment
            .iter()
            .filter(|(member, _)| {
                members
                    .get(*member)
                    .is_some_and(|subscription| subscribes(subscription, &partition.topic))
            })
            .min_by_key(|(member, partitions)| (partitions.len(), (*member).clone()))
            .map(|(member, _)| member.clone());
        if let Some(member) = least_loaded {
            if let Some(partitions) = assignment.get_mut(&member) {
                partitions.push(partition.clone());
            }
        }
    }
    for (member, partitions) in assignment.iter_mut() {
        partitions.retain(|partition| match previous_owner.get(partition) {
            Some(owner) => owner == member,
            None => true,
        });
        partitions.sort();
    }
    assignment
}

/// Gives every member the owned partitions it may keep (still exists, still subscribed, not
/// claimed by an earlier member) and returns who owned each partition before.
fn keep_valid_owned(
    members: &BTreeMap<String, Subscription>,
    eligible: &BTreeSet<TopicPartition>,
    assignment: &mut Assignment,
) -> BTreeMap<TopicPartition, String> {
    let mut previous_owner = BTreeMap::new();
    // Newest generation first, so a stale claim (a member that missed a rebalance) loses to
    // the current owner's; equal generations in member-id order.
    let mut claimants: Vec<(&String, &Subscription)> = members.iter().collect();
    claimants.sort_by_key(|(member, subscription)| {
        (
            std::cmp::Reverse(subscription.generation.unwrap_or(-1)),
            (*member).clone(),
        )
    });
    for (member, subscription) in claimants {
        let mut owned: Vec<TopicPartition> = subscription.owned_partitions.clone();
        owned.sort();
        for partition in owned {
            if previous_owner.contains_key(&partition) {
                continue;
            }
            previous_owner.insert(partition.clone(), member.clone());
            if eligible.contains(&partition) && subscribes(subscription, &partition.topic) {
                if let Some(partitions) = assignment.get_mut(member) {
                    partitions.push(partition);
                }
            }
        }
    }
    previous_owner
}

/// Cuts every member down to `max_quota`, and to `min_quota` once `members_at_max` members
/// already hold `max_quota`.
fn revoke_over_quota(
    assignment: &mut Assignment,
    min_quota: usize,
    max_quota: usize,
    members_at_max: usize,
) {
    let mut at_max = 0usize;
    for partitions in assignment.values_mut() {
        partitions.sort();
        if partitions.len() >= max_quota && at_max < members_at_max {
            partitions.truncate(max_quota);
            at_max += 1;
        } else {
            partitions.truncate(min_quota);
        }
    }
}

fn all_partitions(
    members: &BTreeMap<String, Subscription>,
    partitions_per_topic: &BTreeMap<String, i32>,
) -> Vec<TopicPartition> {
    let subscribed: BTreeSet<&String> = members.values().flat_map(|s| s.topics.iter()).collect();
    partitions_per_topic
        .iter()
        .filter(|(topic, _)| subscribed.contains(topic))
        .flat_map(|(topic, &count)| (0..count.max(0)).map(move |p| TopicPartition::new(topic, p)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(specs: &[(&str, &[&str])]) -> BTreeMap<String, Subscription> {
        specs
            .iter()
            .map(|(member, topics)| {
                let subscription = Subscription {
                    topics: topics.iter().map(|t| t.to_string()).collect(),
                    owned_partitions: Vec::new(),
                    generation: None,
                };
                (member.to_string(), subscription)
            })
            .collect()
    }

    fn topics(specs: &[(&str, i32)]) -> BTreeMap<String, i32> {
        specs.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    fn names(partitions: &[TopicPartition]) -> Vec<String> {
        partitions.iter().map(ToString::to_string).collect()
    }

    fn total(assignment: &Assignment) -> usize {
        assignment.values().map(Vec::len).sum()
    }

    #[test]
    fn range_gives_leading_members_the_extra_partition() {
        let group = members(&[("c1", &["t"]), ("c0", &["t"])]);
        let assignment = range(&group, &topics(&[("t", 3)]));
        assert_eq!(names(&assignment["c0"]), ["t-0", "t-1"]);
        assert_eq!(names(&assignment["c1"]), ["t-2"]);
    }

    #[test]
    fn range_works_per_topic_so_it_can_be_unbalanced_across_topics() {
        let group = members(&[("a", &["x", "y"]), ("b", &["x", "y"])]);
        let assignment = range(&group, &topics(&[("x", 3), ("y", 3)]));
        assert_eq!(names(&assignment["a"]), ["x-0", "x-1", "y-0", "y-1"]);
        assert_eq!(names(&assignment["b"]), ["x-2", "y-2"]);
    }

    #[test]
    fn round_robin_deals_across_topics() {
        let group = members(&[("a", &["x", "y"]), ("b", &["x", "y"])]);
        let assignment = round_robin(&group, &topics(&[("x", 3), ("y", 3)]));
        assert_eq!(names(&assignment["a"]), ["x-0", "x-2", "y-1"]);
        assert_eq!(names(&assignment["b"]), ["x-1", "y-0", "y-2"]);
    }

    #[test]
    fn round_robin_skips_unsubscribed_members() {
        let group = members(&[("a", &["x"]), ("b", &["y"])]);
        let assignment = round_robin(&group, &topics(&[("x", 2), ("y", 1)]));
        assert_eq!(names(&assignment["a"]), ["x-0", "x-1"]);
        assert_eq!(names(&assignment["b"]), ["y-0"]);
    }

    #[test]
    fn sticky_first_assignment_is_balanced() {
        let group = members(&[("a", &["t"]), ("b", &["t"]), ("c", &["t"])]);
        let assignment = cooperative_sticky(&group, &topics(&[("t", 7)]));
        let sizes: Vec<usize> = assignment.values().map(Vec::len).collect();
        assert_eq!(sizes, [3, 2, 2]);
        assert_eq!(total(&assignment), 7);
    }

    #[test]
    fn sticky_keeps_owned_partitions_and_hands_over_in_two_rounds() {
        // a owns everything; b joins.
        let mut group = members(&[("a", &["t"]), ("b", &["t"])]);
        group.get_mut("a").unwrap().owned_partitions =
            (0..4).map(|p| TopicPartition::new("t", p)).collect();
        let first = cooperative_sticky(&group, &topics(&[("t", 4)]));
        // Round one: a keeps two and revokes two; b gets nothing yet (no double ownership).
        assert_eq!(names(&first["a"]), ["t-0", "t-1"]);
        assert!(first["b"].is_empty());
        // Round two: a owns its two; the revoked ones go to b.
        group.get_mut("a").unwrap().owned_partitions = first["a"].clone();
        let second = cooperative_sticky(&group, &topics(&[("t", 4)]));
        assert_eq!(names(&second["a"]), ["t-0", "t-1"]);
        assert_eq!(names(&second["b"]), ["t-2", "t-3"]);
    }

    #[test]
    fn sticky_redistributes_a_departed_members_partitions_only() {
        let mut group = members(&[("a", &["t"]), ("c", &["t"])]);
        group.get_mut("a").unwrap().owned_partitions =
            vec![TopicPartition::new("t", 0), TopicPartition::new("t", 3)];
        group.get_mut("c").unwrap().owned_partitions =
            vec![TopicPartition::new("t", 2), TopicPartition::new("t", 5)];
        // b (owning 1 and 4) left.
        let assignment = cooperative_sticky(&group, &topics(&[("t", 6)]));
        assert_eq!(total(&assignment), 6);
        assert!(names(&assignment["a"]).contains(&"t-0".to_string()));
        assert!(names(&assignment["a"]).contains(&"t-3".to_string()));
        assert!(names(&assignment["c"]).contains(&"t-2".to_string()));
        assert!(names(&assignment["c"]).contains(&"t-5".to_string()));
        assert_eq!(assignment["a"].len(), 3);
    }

    #[test]
    fn sticky_drops_partitions_of_deleted_topics_and_double_claims() {
        let mut group = members(&[("a", &["t"]), ("b", &["t"])]);
        group.get_mut("a").unwrap().owned_partitions =
            vec![TopicPartition::new("gone", 0), TopicPartition::new("t", 0)];
        group.get_mut("b").unwrap().owned_partitions = vec![TopicPartition::new("t", 0)];
        let assignment = cooperative_sticky(&group, &topics(&[("t", 2)]));
        assert_eq!(names(&assignment["a"]), ["t-0"]);
        assert_eq!(names(&assignment["b"]), ["t-1"]);
    }

    #[test]
    fn sticky_double_claim_goes_to_the_newest_generation() {
        let mut group = members(&[("a", &["t"]), ("b", &["t"])]);
        let stale = group.get_mut("a").unwrap();
        stale.owned_partitions = vec![TopicPartition::new("t", 0)];
        stale.generation = Some(3);
        let current = group.get_mut("b").unwrap();
        current.owned_partitions = vec![TopicPartition::new("t", 0)];
        current.generation = Some(4);
        let assignment = cooperative_sticky(&group, &topics(&[("t", 2)]));
        assert_eq!(names(&assignment["b"]), ["t-0"]);
        // t-1 was nobody's: it may go to `a` at once; t-0 stays with its current owner.
        assert_eq!(names(&assignment["a"]), ["t-1"]);
    }

    #[test]
    fn subscriptions_round_trip_through_member_metadata() {
        let subscription = Subscription {
            topics: vec!["a".into(), "b".into()],
            owned_partitions: vec![
                TopicPartition::new("a", 0),
                TopicPartition::new("b", 2),
                TopicPartition::new("a", 3),
            ],
            generation: Some(7),
        };
        let bytes = encode_subscription(&subscription).unwrap();
        assert_eq!(&bytes[..2], &[0, 3], "version prefix");
        let decoded = decode_subscription(bytes).unwrap();
        assert_eq!(decoded.topics, subscription.topics);
        let mut owned = decoded.owned_partitions;
        owned.sort();
        assert_eq!(names(&owned), ["a-0", "a-3", "b-2"]);
        assert_eq!(decoded.generation, Some(7));
    }

    /// Version 0 as old clients (and kafka-python, kafkajs) write it: version, topic array,
    /// user data.
    #[test]
    fn version_zero_subscription_from_an_old_client_is_read() {
        let mut bytes = BytesMut::new();
        bytes.put_i16(0);
        bytes.put_i32(1);
        bytes.put_i16(6);
        bytes.put_slice(b"orders");
        bytes.put_i32(-1);
        let decoded = decode_subscription(bytes.freeze()).unwrap();
        assert_eq!(decoded.topics, ["orders"]);
        assert!(decoded.owned_partitions.is_empty());
    }

    #[test]
    fn assignments_round_trip_and_garbage_is_an_error() {
        let partitions = vec![
            TopicPartition::new("t", 1),
            TopicPartition::new("t", 0),
            TopicPartition::new("u", 5),
        ];
        let decoded = decode_assignment(encode_assignment(&partitions).unwrap()).unwrap();
        assert_eq!(names(&decoded), ["t-0", "t-1", "u-5"]);
        assert!(decode_assignment(Bytes::new()).unwrap().is_empty());
        assert!(decode_assignment(Bytes::from_static(&[0, 0, 0, 0, 0, 9])).is_err());
        assert!(decode_subscription(Bytes::from_static(&[0])).is_err());
        assert!(decode_subscription(Bytes::from_static(&[0xff, 0xff])).is_err());
    }

    #[test]
    fn assign_dispatches_by_protocol_name() {
        let group = members(&[("a", &["t"])]);
        let partitions = topics(&[("t", 2)]);
        for protocol in [RANGE, ROUND_ROBIN, COOPERATIVE_STICKY] {
            assert_eq!(total(&assign(protocol, &group, &partitions).unwrap()), 2);
        }
        assert!(assign("unknown", &group, &partitions).is_none());
    }

    #[test]
    fn no_partition_is_assigned_twice_by_any_assignor() {
        let group = members(&[("a", &["x", "y"]), ("b", &["y"]), ("c", &["x"])]);
        let partitions = topics(&[("x", 5), ("y", 4)]);
        for assign in [range, round_robin, cooperative_sticky] {
            let assignment = assign(&group, &partitions);
            let all: Vec<_> = assignment.values().flatten().collect();
            let unique: BTreeSet<_> = all.iter().collect();
            assert_eq!(all.len(), unique.len());
            assert_eq!(all.len(), 9);
        }
    }

    /// Kafka's cooperative rule (the Java leader validates it too): in one round no member is
    /// given a partition another member still owns; and replaying rounds (each member then
    /// owns what it was given) settles, balanced, by the second round after a change.
    #[test]
    fn cooperative_rounds_never_hand_over_an_owned_partition_and_settle() {
        let partitions = topics(&[("t", 7)]);
        let mut group = members(&[("a", &["t"])]);
        let mut generation = 0;
        for change in ["join b", "join c", "join d", "leave b", "join e", "leave a"] {
            let (action, member) = change.split_once(' ').unwrap();
            if action == "join" {
                group.extend(members(&[(member, &["t"])]));
            } else {
                group.remove(member);
            }
            for round in 1..=3 {
                generation += 1;
                let assignment = cooperative_sticky(&group, &partitions);
                for (member, assigned) in &assignment {
                    for partition in assigned {
                        let other_owner = group.iter().find(|(other, subscription)| {
                            *other != member && subscription.owned_partitions.contains(partition)
                        });
                        assert!(other_owner.is_none(), "{change}: {partition} to {member}");
                    }
                }
                let settled = group.iter().all(|(member, subscription)| {
                    subscription.owned_partitions == assignment[member]
                });
                for (member, subscription) in group.iter_mut() {
                    subscription.owned_partitions = assignment[member].clone();
                    subscription.generation = Some(generation);
                }
                if round == 3 {
                    assert!(settled, "{change}: still moving after two rounds");
                    let sizes: Vec<usize> = assignment.values().map(Vec::len).collect();
                    let spread = sizes.iter().max().unwrap() - sizes.iter().min().unwrap();
                    assert!(spread <= 1, "{change}: {assignment:?}");
                    assert_eq!(total(&assignment), 7, "{change}");
                }
            }
        }
    }
}
