//! Requests and responses of the coordinator, independent of the wire version. The broker's
//! handlers translate kafka-protocol messages to these and back (see the crate docs for the
//! per-version rules they apply).

use bytes::Bytes;

use crate::error::GroupError;

/// One protocol a member offers in JoinGroup (an assignor for consumers), with its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinProtocol {
    pub name: String,
    pub metadata: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroupRequest {
    pub group_id: String,
    /// Empty for a member joining for the first time.
    pub member_id: String,
    /// `group.instance.id` (v5+): set for static members.
    pub group_instance_id: Option<String>,
    /// From the request header.
    pub client_id: String,
    /// The client's address as Kafka prints it (`/1.2.3.4`).
    pub client_host: String,
    pub protocol_type: String,
    /// In the member's order of preference.
    pub protocols: Vec<JoinProtocol>,
    pub session_timeout_ms: i32,
    /// v0 has none: the handler passes the session timeout, as Kafka does.
    pub rebalance_timeout_ms: i32,
    /// True from v4 (KIP-394): a member without id first gets MEMBER_ID_REQUIRED and its id.
    pub require_known_member_id: bool,
    /// True from v9 (KIP-814): the response may carry `skip_assignment`.
    pub supports_skip_assignment: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroupMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// The member's metadata for the selected protocol.
    pub metadata: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroupResponse {
    pub error: Option<GroupError>,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// Empty when unknown (errors).
    pub leader: String,
    /// v9+ (KIP-814): set for a restarted static leader of a Stable group, which must not
    /// compute a new assignment.
    pub skip_assignment: bool,
    pub member_id: String,
    /// All members with their metadata, for the leader only.
    pub members: Vec<JoinGroupMember>,
}

impl JoinGroupResponse {
    pub(crate) fn error(error: GroupError, member_id: &str) -> JoinGroupResponse {
        JoinGroupResponse {
            error: Some(error),
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            skip_assignment: false,
            member_id: member_id.to_owned(),
            members: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroupRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// v5+: checked against the group's when present.
    pub protocol_type: Option<String>,
    /// v5+: checked against the group's when present.
    pub protocol_name: Option<String>,
    /// The leader's assignment per member id; empty for followers.
    pub assignments: Vec<(String, Bytes)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroupResponse {
    pub error: Option<GroupError>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// Exactly the bytes the leader sent for this member (empty if it sent none).
    pub assignment: Bytes,
}

impl SyncGroupResponse {
    pub(crate) fn error(error: GroupError) -> SyncGroupResponse {
        SyncGroupResponse {
            error: Some(error),
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

/// One member of a LeaveGroup request. v0–v2 carry exactly one, by member id; v3+ a batch, each
/// by member id or (static members) by group instance id with an empty member id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeavingMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveGroupResponse {
    /// Group-level error (e.g. NOT_COORDINATOR); when set, `members` is empty.
    pub error: Option<GroupError>,
    pub members: Vec<LeftMember>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub error: Option<GroupError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitRequest {
    pub group_id: String,
    /// -1 for consumers outside group management ("simple" consumers, admin tools).
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// v2–v4 `retention_time_ms`; `None` or -1 means the broker's retention.
    pub retention_time_ms: Option<i64>,
    pub partitions: Vec<PartitionCommit>,
}

impl OffsetCommitRequest {
    /// Removes the partitions `exists` rejects and returns their UNKNOWN_TOPIC_OR_PARTITION
    /// results: Kafka checks topics in the request handler, against the metadata cache, before
    /// the coordinator sees the commit.
    pub fn take_unknown_partitions(
        &mut self,
        exists: impl Fn(&str, i32) -> bool,
    ) -> Vec<PartitionResult> {
        let mut unknown = Vec::new();
        self.partitions.retain(|p| {
            let known = exists(&p.topic, p.partition);
            if !known {
                unknown.push(PartitionResult {
                    topic: p.topic.clone(),
                    partition: p.partition,
                    error: Some(GroupError::UnknownTopicOrPartition),
                });
            }
            known
        });
        unknown
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionCommit {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// -1 when the client sent none (before v6).
    pub leader_epoch: i32,
    /// Null metadata is stored as the empty string, as Kafka does.
    pub metadata: Option<String>,
}

/// TxnOffsetCommit: offsets that become visible only when the producer's transaction commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOffsetCommitRequest {
    pub group_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// v3+ (KIP-447); -1 and an empty member id before, or when the producer does not send them.
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub partitions: Vec<PartitionCommit>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionResult {
    pub topic: String,
    pub partition: i32,
    pub error: Option<GroupError>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedOffset {
    pub topic: String,
    pub partition: i32,
    /// -1 when the group has no committed offset for the partition.
    pub offset: i64,
    pub leader_epoch: i32,
    /// Empty when there is none.
    pub metadata: String,
    pub error: Option<GroupError>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGroup {
    pub group_id: String,
    /// Empty for groups of simple consumers.
    pub protocol_type: String,
    pub state: crate::GroupState,
    /// Always "classic" (ListGroups v5 `group_type`).
    pub group_type: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListGroupsResponse {
    /// COORDINATOR_LOAD_IN_PROGRESS while a partition loads (the groups listed are then partial).
    pub error: Option<GroupError>,
    pub groups: Vec<ListedGroup>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedGroup {
    pub group_id: String,
    pub error: Option<GroupError>,
    /// "Dead" for groups that do not exist (with no error, as Kafka answers before v6; v6+
    /// handlers answer GROUP_ID_NOT_FOUND when `exists` is false).
    pub state: crate::GroupState,
    pub exists: bool,
    pub protocol_type: String,
    /// The selected protocol when Stable, else empty (Kafka's summary rule).
    pub protocol_data: String,
    pub members: Vec<DescribedMember>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Metadata and assignment only when the group is Stable (empty otherwise), as in Kafka.
    pub metadata: Bytes,
    pub assignment: Bytes,
}

/// One loaded group as the broker's metrics see it (`GroupCoordinator::snapshot_groups`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    pub group_id: String,
    pub state: crate::GroupState,
    /// Committed offsets (the next offset to consume), in no particular order.
    pub offsets: Vec<(TopicPartition, i64)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupsSnapshot {
    pub groups: Vec<GroupSummary>,
    /// Committed offsets left out because the snapshot's limit was reached.
    pub omitted_offsets: usize,
}
