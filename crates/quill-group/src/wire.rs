//! Translation between kafka-protocol 0.18 messages and the coordinator's [`crate::api`] types,
//! with every per-version rule in one tested place, so the broker's group handlers are a
//! decode → translate → call → translate → encode pipeline.
//!
//! Version rules applied here (Kafka's own, from its request/response classes):
//! - JoinGroup v0 has no rebalance timeout: the session timeout stands in. v4+ requires the
//!   member-id handshake (KIP-394). Before v7 the protocol name is a non-nullable string: ""
//!   replaces null.
//! - LeaveGroup v0–v2 name one member in the top-level `member_id`, and its error becomes the
//!   top-level error.
//! - OffsetCommit: `retention_time_ms` exists in v2–v4 only; leader epochs from v6.
//! - OffsetFetch v1–v7 address one group (v1 has no top-level error: it goes on every
//!   partition); v8+ a batch of groups. `require_stable` from v7.
//! - DescribeGroups v6+ answers GROUP_ID_NOT_FOUND for a group that does not exist; before, a
//!   Dead group with no error.
//!
//! Not handled here: FindCoordinator (the broker answers it from
//! [`crate::GroupCoordinator::partition_for`] and its partition leadership), and
//! UNKNOWN_TOPIC_OR_PARTITION for OffsetCommit (the handler checks topics against metadata).

use kafka_protocol::messages::{self as wire, GroupId, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::api::*;
use crate::error::{error_code, GroupError};

fn text(value: &StrBytes) -> String {
    value.as_str().to_owned()
}

fn opt_text(value: &Option<StrBytes>) -> Option<String> {
    value.as_ref().map(text)
}

fn str_bytes(value: impl Into<String>) -> StrBytes {
    StrBytes::from_string(value.into())
}

fn opt_str_bytes(value: Option<String>) -> Option<StrBytes> {
    value.map(StrBytes::from_string)
}

fn group_id(value: &GroupId) -> String {
    text(&value.0)
}

// ---------------------------------------------------------------------------------------------
// JoinGroup

pub fn join_group_request(
    body: &wire::JoinGroupRequest,
    version: i16,
    client_id: &str,
    client_host: &str,
) -> JoinGroupRequest {
    JoinGroupRequest {
        group_id: group_id(&body.group_id),
        member_id: text(&body.member_id),
        group_instance_id: opt_text(&body.group_instance_id),
        client_id: client_id.to_owned(),
        client_host: client_host.to_owned(),
        protocol_type: text(&body.protocol_type),
        protocols: body
            .protocols
            .iter()
            .map(|p| JoinProtocol {
                name: text(&p.name),
                metadata: p.metadata.clone(),
            })
            .collect(),
        session_timeout_ms: body.session_timeout_ms,
        rebalance_timeout_ms: if version == 0 {
            body.session_timeout_ms
        } else {
            body.rebalance_timeout_ms
        },
        require_known_member_id: version >= 4,
        supports_skip_assignment: version >= 9,
    }
}

pub fn join_group_response(response: JoinGroupResponse, version: i16) -> wire::JoinGroupResponse {
    let mut out = wire::JoinGroupResponse::default();
    out.error_code = error_code(&response.error);
    out.generation_id = response.generation_id;
    if version >= 7 {
        out.protocol_type = opt_str_bytes(response.protocol_type);
    }
    out.protocol_name = match (response.protocol_name, version) {
        (None, v) if v < 7 => Some(str_bytes("")),
        (name, _) => opt_str_bytes(name),
    };
    out.leader = str_bytes(response.leader);
    out.skip_assignment = response.skip_assignment && version >= 9;
    out.member_id = str_bytes(response.member_id);
    out.members = response
        .members
        .into_iter()
        .map(|m| {
            let mut member = wire::join_group_response::JoinGroupResponseMember::default();
            member.member_id = str_bytes(m.member_id);
            if version >= 5 {
                member.group_instance_id = opt_str_bytes(m.group_instance_id);
            }
            member.metadata = m.metadata;
            member
        })
        .collect();
    out
}

// ---------------------------------------------------------------------------------------------
// SyncGroup, Heartbeat, LeaveGroup

pub fn sync_group_request(body: &wire::SyncGroupRequest) -> SyncGroupRequest {
    SyncGroupRequest {
        group_id: group_id(&body.group_id),
        generation_id: body.generation_id,
        member_id: text(&body.member_id),
        group_instance_id: opt_text(&body.group_instance_id),
        protocol_type: opt_text(&body.protocol_type),
        protocol_name: opt_text(&body.protocol_name),
        assignments: body
            .assignments
            .iter()
            .map(|a| (text(&a.member_id), a.assignment.clone()))
            .collect(),
    }
}

pub fn sync_group_response(response: SyncGroupResponse, version: i16) -> wire::SyncGroupResponse {
    let mut out = wire::SyncGroupResponse::default();
    out.error_code = error_code(&response.error);
    if version >= 5 {
        out.protocol_type = opt_str_bytes(response.protocol_type);
        out.protocol_name = opt_str_bytes(response.protocol_name);
    }
    out.assignment = response.assignment;
    out
}

pub fn heartbeat_request(body: &wire::HeartbeatRequest) -> HeartbeatRequest {
    HeartbeatRequest {
        group_id: group_id(&body.group_id),
        generation_id: body.generation_id,
        member_id: text(&body.member_id),
        group_instance_id: opt_text(&body.group_instance_id),
    }
}

pub fn heartbeat_response(result: Result<(), GroupError>) -> wire::HeartbeatResponse {
    let mut out = wire::HeartbeatResponse::default();
    out.error_code = error_code(&result.err());
    out
}

/// The group id and the members leaving.
pub fn leave_group_request(
    body: &wire::LeaveGroupRequest,
    version: i16,
) -> (String, Vec<LeavingMember>) {
    let members = if version < 3 {
        vec![LeavingMember {
            member_id: text(&body.member_id),
            group_instance_id: None,
        }]
    } else {
        body.members
            .iter()
            .map(|m| LeavingMember {
                member_id: text(&m.member_id),
                group_instance_id: opt_text(&m.group_instance_id),
            })
            .collect()
    };
    (group_id(&body.group_id), members)
}

pub fn leave_group_response(
    response: LeaveGroupResponse,
    version: i16,
) -> wire::LeaveGroupResponse {
    let mut out = wire::LeaveGroupResponse::default();
    out.error_code = error_code(&response.error);
    if version < 3 {
        if response.error.is_none() {
            out.error_code = response.members.first().map_or(0, |m| error_code(&m.error));
        }
        return out;
    }
    out.members = response
        .members
        .into_iter()
        .map(|m| {
            let mut member = wire::leave_group_response::MemberResponse::default();
            member.member_id = str_bytes(m.member_id);
            member.group_instance_id = opt_str_bytes(m.group_instance_id);
            member.error_code = error_code(&m.error);
            member
        })
        .collect();
    out
}

// ---------------------------------------------------------------------------------------------
// Offsets

pub fn offset_commit_request(
    body: &wire::OffsetCommitRequest,
    version: i16,
) -> OffsetCommitRequest {
    OffsetCommitRequest {
        group_id: group_id(&body.group_id),
        generation_id: body.generation_id_or_member_epoch,
        member_id: text(&body.member_id),
        group_instance_id: opt_text(&body.group_instance_id),
        retention_time_ms: (2..=4).contains(&version).then_some(body.retention_time_ms),
        partitions: body
            .topics
            .iter()
            .flat_map(|topic| {
                topic.partitions.iter().map(move |p| PartitionCommit {
                    topic: text(&topic.name.0),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: if version >= 6 {
                        p.committed_leader_epoch
                    } else {
                        -1
                    },
                    metadata: opt_text(&p.committed_metadata),
                })
            })
            .collect(),
    }
}

/// Groups per-partition results by topic, in first-seen order.
fn by_topic<T>(results: Vec<T>, topic_of: impl Fn(&T) -> &str) -> Vec<(String, Vec<T>)> {
    let mut topics: Vec<(String, Vec<T>)> = Vec::new();
    for result in results {
        let topic = topic_of(&result).to_owned();
        match topics.iter_mut().find(|(name, _)| *name == topic) {
            Some((_, partitions)) => partitions.push(result),
            None => topics.push((topic, vec![result])),
        }
    }
    topics
}

pub fn offset_commit_response(results: Vec<PartitionResult>) -> wire::OffsetCommitResponse {
    let mut out = wire::OffsetCommitResponse::default();
    out.topics = by_topic(results, |r| &r.topic)
        .into_iter()
        .map(|(name, partitions)| {
            let mut topic = wire::offset_commit_response::OffsetCommitResponseTopic::default();
            topic.name = TopicName(str_bytes(name));
            topic.partitions = partitions
                .into_iter()
                .map(|r| {
                    let mut partition =
                        wire::offset_commit_response::OffsetCommitResponsePartition::default();
                    partition.partition_index = r.partition;
                    partition.error_code = error_code(&r.error);
                    partition
                })
                .collect();
            topic
        })
        .collect();
    out
}

/// One group's part of an OffsetFetch request: `None` partitions means all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchGroup {
    pub group_id: String,
    pub partitions: Option<Vec<TopicPartition>>,
}

/// The groups asked for, and `require_stable`.
pub fn offset_fetch_request(
    body: &wire::OffsetFetchRequest,
    version: i16,
) -> (Vec<OffsetFetchGroup>, bool) {
    let require_stable = version >= 7 && body.require_stable;
    if version >= 8 {
        let groups = body
            .groups
            .iter()
            .map(|g| OffsetFetchGroup {
                group_id: group_id(&g.group_id),
                partitions: g.topics.as_ref().map(|topics| {
                    topics
                        .iter()
                        .flat_map(|t| {
                            t.partition_indexes
                                .iter()
                                .map(move |p| TopicPartition::new(text(&t.name.0), *p))
                        })
                        .collect()
                }),
            })
            .collect();
        return (groups, require_stable);
    }
    let partitions = body.topics.as_ref().map(|topics| {
        topics
            .iter()
            .flat_map(|t| {
                t.partition_indexes
                    .iter()
                    .map(move |p| TopicPartition::new(text(&t.name.0), *p))
            })
            .collect()
    });
    let group = OffsetFetchGroup {
        group_id: group_id(&body.group_id),
        partitions,
    };
    (vec![group], require_stable)
}

/// `results` pairs each requested group with its outcome, in request order.
pub fn offset_fetch_response(
    results: Vec<(OffsetFetchGroup, Result<Vec<FetchedOffset>, GroupError>)>,
    version: i16,
) -> wire::OffsetFetchResponse {
    let mut out = wire::OffsetFetchResponse::default();
    if version >= 8 {
        out.groups = results
            .into_iter()
            .map(|(request, result)| {
                let mut group = wire::offset_fetch_response::OffsetFetchResponseGroup::default();
                group.group_id = GroupId(str_bytes(request.group_id));
                match result {
                    Ok(offsets) => {
                        group.topics = by_topic(offsets, |o| &o.topic)
                            .into_iter()
                            .map(|(name, partitions)| {
                                let mut topic = wire::offset_fetch_response::OffsetFetchResponseTopics::default();
                                topic.name = TopicName(str_bytes(name));
                                topic.partitions = partitions
                                    .into_iter()
                                    .map(|o| {
                                        let mut p = wire::offset_fetch_response::OffsetFetchResponsePartitions::default();
                                        p.partition_index = o.partition;
                                        p.committed_offset = o.offset;
                                        p.committed_leader_epoch = o.leader_epoch;
                                        p.metadata = Some(str_bytes(o.metadata));
                                        p.error_code = error_code(&o.error);
                                        p
                                    })
                                    .collect();
                                topic
                            })
                            .collect();
                    }
                    Err(error) => group.error_code = error.kafka_error_code(),
                }
                group
            })
            .collect();
        return out;
    }
    let Some((request, result)) = results.into_iter().next() else {
        return out;
    };
    let (offsets, group_error) = match result {
        Ok(offsets) => (offsets, None),
        // v1 has no group-level error: Kafka reports it on every requested partition.
        Err(error) if version < 2 => {
            let partitions = request.partitions.unwrap_or_default();
            let offsets = partitions
                .into_iter()
                .map(|tp| FetchedOffset {
                    topic: tp.topic,
                    partition: tp.partition,
                    offset: -1,
                    leader_epoch: -1,
                    metadata: String::new(),
                    error: Some(error.clone()),
                })
                .collect();
            (offsets, None)
        }
        Err(error) => (Vec::new(), Some(error)),
    };
    if version >= 2 {
        out.error_code = error_code(&group_error);
    }
    out.topics = by_topic(offsets, |o| &o.topic)
        .into_iter()
        .map(|(name, partitions)| {
            let mut topic = wire::offset_fetch_response::OffsetFetchResponseTopic::default();
            topic.name = TopicName(str_bytes(name));
            topic.partitions = partitions
                .into_iter()
                .map(|o| {
                    let mut p =
                        wire::offset_fetch_response::OffsetFetchResponsePartition::default();
                    p.partition_index = o.partition;
                    p.committed_offset = o.offset;
                    p.committed_leader_epoch = if version >= 5 { o.leader_epoch } else { -1 };
                    p.metadata = Some(str_bytes(o.metadata));
                    p.error_code = error_code(&o.error);
                    p
                })
                .collect();
            topic
        })
        .collect();
    out
}

pub fn offset_delete_request(body: &wire::OffsetDeleteRequest) -> (String, Vec<TopicPartition>) {
    let partitions = body
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| TopicPartition::new(text(&t.name.0), p.partition_index))
        })
        .collect();
    (group_id(&body.group_id), partitions)
}

pub fn offset_delete_response(
    result: Result<Vec<PartitionResult>, GroupError>,
) -> wire::OffsetDeleteResponse {
    let mut out = wire::OffsetDeleteResponse::default();
    match result {
        Err(error) => out.error_code = error.kafka_error_code(),
        Ok(results) => {
            out.topics = by_topic(results, |r| &r.topic)
                .into_iter()
                .map(|(name, partitions)| {
                    let mut topic = wire::offset_delete_response::OffsetDeleteResponseTopic::default();
                    topic.name = TopicName(str_bytes(name));
                    topic.partitions = partitions
                        .into_iter()
                        .map(|r| {
                            let mut p = wire::offset_delete_response::OffsetDeleteResponsePartition::default();
                            p.partition_index = r.partition;
                            p.error_code = error_code(&r.error);
                            p
                        })
                        .collect();
                    topic
                })
                .collect();
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Admin

/// States and types filters of ListGroups (empty when the version has none).
pub fn list_groups_request(
    body: &wire::ListGroupsRequest,
    version: i16,
) -> (Vec<String>, Vec<String>) {
    let states = if version >= 4 {
        body.states_filter.iter().map(text).collect()
    } else {
        Vec::new()
    };
    let types = if version >= 5 {
        body.types_filter.iter().map(text).collect()
    } else {
        Vec::new()
    };
    (states, types)
}

pub fn list_groups_response(
    response: ListGroupsResponse,
    version: i16,
) -> wire::ListGroupsResponse {
    let mut out = wire::ListGroupsResponse::default();
    out.error_code = error_code(&response.error);
    out.groups = response
        .groups
        .into_iter()
        .map(|g| {
            let mut group = wire::list_groups_response::ListedGroup::default();
            group.group_id = GroupId(str_bytes(g.group_id));
            group.protocol_type = str_bytes(g.protocol_type);
            if version >= 4 {
                group.group_state = str_bytes(g.state.as_str());
            }
            if version >= 5 {
                group.group_type = str_bytes(g.group_type);
            }
            group
        })
        .collect();
    out
}

pub fn describe_groups_request(body: &wire::DescribeGroupsRequest) -> Vec<String> {
    body.groups.iter().map(group_id).collect()
}

pub fn describe_groups_response(
    groups: Vec<DescribedGroup>,
    version: i16,
) -> wire::DescribeGroupsResponse {
    let mut out = wire::DescribeGroupsResponse::default();
    out.groups = groups
        .into_iter()
        .map(|g| {
            let mut group = wire::describe_groups_response::DescribedGroup::default();
            group.error_code = error_code(&g.error);
            if g.error.is_none() && !g.exists && version >= 6 {
                group.error_code = GroupError::GroupIdNotFound.kafka_error_code();
                group.error_message = Some(str_bytes(format!("Group {} not found.", g.group_id)));
            }
            group.group_id = GroupId(str_bytes(g.group_id));
            group.group_state = str_bytes(g.state.as_str());
            group.protocol_type = str_bytes(g.protocol_type);
            group.protocol_data = str_bytes(g.protocol_data);
            group.members = g
                .members
                .into_iter()
                .map(|m| {
                    let mut member =
                        wire::describe_groups_response::DescribedGroupMember::default();
                    member.member_id = str_bytes(m.member_id);
                    if version >= 4 {
                        member.group_instance_id = opt_str_bytes(m.group_instance_id);
                    }
                    member.client_id = str_bytes(m.client_id);
                    member.client_host = str_bytes(m.client_host);
                    member.member_metadata = m.metadata;
                    member.member_assignment = m.assignment;
                    member
                })
                .collect();
            group
        })
        .collect();
    out
}

pub fn delete_groups_request(body: &wire::DeleteGroupsRequest) -> Vec<String> {
    body.groups_names.iter().map(group_id).collect()
}

pub fn delete_groups_response(
    results: Vec<(String, Option<GroupError>)>,
) -> wire::DeleteGroupsResponse {
    let mut out = wire::DeleteGroupsResponse::default();
    out.results = results
        .into_iter()
        .map(|(id, error)| {
            let mut result = wire::delete_groups_response::DeletableGroupResult::default();
            result.group_id = GroupId(str_bytes(id));
            result.error_code = error_code(&error);
            result
        })
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::protocol::{Encodable, Message};

    use super::*;
    use crate::GroupState;

    /// Builds the response for every version it supports and encodes it at that version: a
    /// null in a non-nullable field, or a field set that the version lacks, fails here rather
    /// than on a client's socket.
    fn encodes_at_all_versions<M: Encodable + Message>(build: impl Fn(i16) -> M) {
        for version in M::VERSIONS.min..=M::VERSIONS.max {
            let mut buf = BytesMut::new();
            build(version)
                .encode(&mut buf, version)
                .unwrap_or_else(|e| panic!("version {version}: {e}"));
        }
    }

    #[test]
    fn join_request_version_rules() {
        let mut body = wire::JoinGroupRequest::default();
        body.group_id = GroupId(str_bytes("g"));
        body.session_timeout_ms = 10_000;
        body.rebalance_timeout_ms = 60_000;
        body.protocol_type = str_bytes("consumer");
        let mut protocol = wire::join_group_request::JoinGroupRequestProtocol::default();
        protocol.name = str_bytes("range");
        protocol.metadata = Bytes::from_static(b"m");
        body.protocols = vec![protocol];
        let v0 = join_group_request(&body, 0, "c", "/h");
        assert_eq!(v0.rebalance_timeout_ms, 10_000);
        assert!(!v0.require_known_member_id);
        let v4 = join_group_request(&body, 4, "c", "/h");
        assert_eq!(v4.rebalance_timeout_ms, 60_000);
        assert!(v4.require_known_member_id);
        assert_eq!(v4.protocols[0].metadata, Bytes::from_static(b"m"));
    }

    #[test]
    fn error_join_response_encodes_at_every_version() {
        let response = JoinGroupResponse::error(GroupError::MemberIdRequired, "m-1");
        for version in 0..=9 {
            let out = join_group_response(response.clone(), version);
            assert_eq!(out.error_code, 79);
            if version < 7 {
                assert_eq!(out.protocol_name.as_ref().map(|p| p.as_str()), Some(""));
            }
            let mut buf = BytesMut::new();
            out.encode(&mut buf, version).unwrap();
        }
    }

    #[test]
    fn leave_group_v0_to_v2_reports_the_member_error_at_top_level() {
        let response = LeaveGroupResponse {
            error: None,
            members: vec![LeftMember {
                member_id: "m".into(),
                group_instance_id: None,
                error: Some(GroupError::UnknownMemberId),
            }],
        };
        assert_eq!(leave_group_response(response.clone(), 2).error_code, 25);
        let v3 = leave_group_response(response.clone(), 3);
        assert_eq!((v3.error_code, v3.members[0].error_code), (0, 25));
        encodes_at_all_versions(|v| leave_group_response(response.clone(), v));
    }

    #[test]
    fn leave_group_request_forms() {
        let mut body = wire::LeaveGroupRequest::default();
        body.group_id = GroupId(str_bytes("g"));
        body.member_id = str_bytes("m-1");
        let (group, members) = leave_group_request(&body, 2);
        assert_eq!(group, "g");
        assert_eq!(
            members,
            vec![LeavingMember {
                member_id: "m-1".into(),
                group_instance_id: None
            }]
        );
        let mut identity = wire::leave_group_request::MemberIdentity::default();
        identity.group_instance_id = Some(str_bytes("i-1"));
        body.members = vec![identity];
        let (_, members) = leave_group_request(&body, 3);
        assert_eq!(
            members,
            vec![LeavingMember {
                member_id: String::new(),
                group_instance_id: Some("i-1".into())
            }]
        );
    }

    #[test]
    fn offset_fetch_single_and_multi_group_forms() {
        let offsets = vec![
            FetchedOffset {
                topic: "a".into(),
                partition: 0,
                offset: 5,
                leader_epoch: 2,
                metadata: "x".into(),
                error: None,
            },
            FetchedOffset {
                topic: "b".into(),
                partition: 1,
                offset: -1,
                leader_epoch: -1,
                metadata: String::new(),
                error: None,
            },
            FetchedOffset {
                topic: "a".into(),
                partition: 1,
                offset: 6,
                leader_epoch: 2,
                metadata: String::new(),
                error: None,
            },
        ];
        let request = |id: &str| OffsetFetchGroup {
            group_id: id.into(),
            partitions: Some(vec![TopicPartition::new("a", 0)]),
        };
        let v7 = offset_fetch_response(vec![(request("g"), Ok(offsets.clone()))], 7);
        assert_eq!(v7.topics.len(), 2);
        assert_eq!(v7.topics[0].partitions.len(), 2);
        let v8 = offset_fetch_response(
            vec![
                (request("g"), Ok(offsets)),
                (request("h"), Err(GroupError::CoordinatorLoadInProgress)),
            ],
            8,
        );
        assert_eq!(v8.groups.len(), 2);
        assert_eq!(v8.groups[1].error_code, 14);
        for version in 1..=7 {
            let mut buf = BytesMut::new();
            v7.encode(&mut buf, version).unwrap();
        }
        let v1 = offset_fetch_response(vec![(request("g"), Err(GroupError::NotCoordinator))], 1);
        assert_eq!(v1.topics[0].partitions[0].error_code, 16);
        let v2 = offset_fetch_response(vec![(request("g"), Err(GroupError::NotCoordinator))], 2);
        assert_eq!((v2.error_code, v2.topics.len()), (16, 0));
        for version in 8..=9 {
            let mut buf = BytesMut::new();
            v8.encode(&mut buf, version).unwrap();
        }
    }

    #[test]
    fn describe_v6_reports_unknown_groups() {
        let missing = DescribedGroup {
            group_id: "nope".into(),
            error: None,
            state: GroupState::Dead,
            exists: false,
            protocol_type: String::new(),
            protocol_data: String::new(),
            members: vec![],
        };
        assert_eq!(
            describe_groups_response(vec![missing.clone()], 5).groups[0].error_code,
            0
        );
        let v6 = describe_groups_response(vec![missing.clone()], 6);
        assert_eq!(v6.groups[0].error_code, 69);
        assert_eq!(v6.groups[0].group_state.as_str(), "Dead");
        let present = DescribedGroup {
            exists: true,
            state: GroupState::Stable,
            members: vec![DescribedMember {
                member_id: "m".into(),
                group_instance_id: Some("i".into()),
                client_id: "c".into(),
                client_host: "/h".into(),
                metadata: Bytes::from_static(b"x"),
                assignment: Bytes::from_static(b"y"),
            }],
            ..missing.clone()
        };
        encodes_at_all_versions(|v| {
            describe_groups_response(vec![missing.clone(), present.clone()], v)
        });
    }

    #[test]
    fn other_responses_encode_at_all_versions() {
        let results = vec![PartitionResult {
            topic: "t".into(),
            partition: 0,
            error: None,
        }];
        encodes_at_all_versions(|_| offset_commit_response(results.clone()));
        encodes_at_all_versions(|_| offset_delete_response(Ok(results.clone())));
        encodes_at_all_versions(|_| heartbeat_response(Err(GroupError::RebalanceInProgress)));
        let synced = SyncGroupResponse {
            error: None,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignment: Bytes::from_static(b"a"),
        };
        encodes_at_all_versions(|v| sync_group_response(synced.clone(), v));
        encodes_at_all_versions(|_| {
            delete_groups_response(vec![("g".into(), Some(GroupError::NonEmptyGroup))])
        });
        let listed = ListGroupsResponse {
            error: None,
            groups: vec![ListedGroup {
                group_id: "g".into(),
                protocol_type: "consumer".into(),
                state: GroupState::Stable,
                group_type: "classic",
            }],
        };
        encodes_at_all_versions(|v| list_groups_response(listed.clone(), v));
        let joined = JoinGroupResponse {
            error: None,
            generation_id: 3,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            leader: "m".into(),
            skip_assignment: false,
            member_id: "m".into(),
            members: vec![JoinGroupMember {
                member_id: "m".into(),
                group_instance_id: Some("i".into()),
                metadata: Bytes::from_static(b"x"),
            }],
        };
        encodes_at_all_versions(|v| join_group_response(joined.clone(), v));
    }

    #[test]
    fn offset_commit_request_version_rules() {
        let mut body = wire::OffsetCommitRequest::default();
        body.group_id = GroupId(str_bytes("g"));
        body.generation_id_or_member_epoch = -1;
        body.retention_time_ms = 5000;
        let mut topic = wire::offset_commit_request::OffsetCommitRequestTopic::default();
        topic.name = TopicName(str_bytes("t"));
        let mut partition = wire::offset_commit_request::OffsetCommitRequestPartition::default();
        partition.partition_index = 2;
        partition.committed_offset = 9;
        partition.committed_leader_epoch = 4;
        partition.committed_metadata = Some(str_bytes("meta"));
        topic.partitions = vec![partition];
        body.topics = vec![topic];
        let v2 = offset_commit_request(&body, 2);
        assert_eq!(v2.retention_time_ms, Some(5000));
        assert_eq!(v2.partitions[0].leader_epoch, -1);
        let v8 = offset_commit_request(&body, 8);
        assert_eq!(v8.retention_time_ms, None);
        assert_eq!(v8.partitions[0].leader_epoch, 4);
        assert_eq!(v8.partitions[0].metadata.as_deref(), Some("meta"));
    }
}
