//! Coordinator settings and limits. Each field carries the Kafka config name it mirrors (or the
//! Quill name for limits Kafka does not have), so the broker can expose them verbatim.

/// Kafka's default `offsets.topic.num.partitions`.
pub const DEFAULT_OFFSETS_TOPIC_PARTITIONS: i32 = 50;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// `offsets.topic.num.partitions`: how many `__consumer_offsets` partitions group ids hash
    /// onto. Must never change once data exists (it would move groups between partitions).
    pub offsets_topic_partitions: i32,
    /// `group.initial.rebalance.delay.ms`. Kafka's default is 3000, which makes every fresh
    /// group wait 3 s before its first generation. Ours is 250: consumers started together
    /// (within 250 ms of each other, each newcomer extending the wait by another 250 ms up to
    /// the rebalance timeout) still share one first generation, and a lone consumer joins in a
    /// quarter of a second. Tests set 0.
    pub initial_rebalance_delay_ms: u64,
    /// `group.min.session.timeout.ms` (Kafka default 6000).
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms` (Kafka default 1800000).
    pub max_session_timeout_ms: i32,
    /// `group.max.size`. Kafka's default is unlimited; ours is 1000 members so one group cannot
    /// grow the coordinator's memory without bound (each member holds up to
    /// `max_member_metadata_bytes`). Members beyond it get GROUP_MAX_SIZE_REACHED.
    /// Members that got MEMBER_ID_REQUIRED but have not rejoined yet count too.
    pub group_max_size: usize,
    /// Kafka's `GroupCoordinator.NewMemberJoinTimeoutMs` (not configurable there): how long a
    /// brand-new member's JoinGroup may wait in a rebalance before it is dropped.
    pub new_member_join_timeout_ms: u64,
    /// `offsets.retention.minutes` in milliseconds (Kafka default 7 days): offsets of a group
    /// without members expire this long after the group became empty.
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms` (Kafka default 600000).
    pub offsets_retention_check_interval_ms: u64,
    /// `offset.metadata.max.bytes` (Kafka default 4096): larger commit metadata strings are
    /// refused with OFFSET_METADATA_TOO_LARGE.
    pub offset_metadata_max_bytes: usize,
    /// `group.id.max.bytes` (Quill): longer group ids get INVALID_GROUP_ID. Kafka's bound is the
    /// int16 string length of the `__consumer_offsets` key.
    pub max_group_id_bytes: usize,
    /// `group.instance.id.max.bytes` (Quill; the Java client allows 249 characters).
    pub max_group_instance_id_bytes: usize,
    /// `group.member.metadata.max.bytes` (Quill): the metadata of all protocols of one member in
    /// JoinGroup, together.
    pub max_member_metadata_bytes: usize,
    /// `group.member.assignment.max.bytes` (Quill): per member, in the leader's SyncGroup.
    pub max_member_assignment_bytes: usize,
    /// `group.metadata.max.bytes` (Quill): the largest GroupMetadata record the coordinator
    /// writes (all members' subscriptions and assignments). A bigger one fails the leader's
    /// SyncGroup with UNKNOWN_SERVER_ERROR and the group rebalances, as Kafka does when the
    /// record exceeds `message.max.bytes` (whose 1 MiB default is Kafka's practical bound).
    pub max_group_metadata_bytes: usize,
    /// `group.member.protocols.max` (Quill): protocols one member may offer in JoinGroup.
    pub max_protocols_per_member: usize,
    /// `group.member.client.id.max.bytes` (Quill): client id and host stored per member.
    pub max_client_id_bytes: usize,
}

impl Default for GroupConfig {
    fn default() -> GroupConfig {
        GroupConfig {
            offsets_topic_partitions: DEFAULT_OFFSETS_TOPIC_PARTITIONS,
            initial_rebalance_delay_ms: 250,
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            group_max_size: 1000,
            new_member_join_timeout_ms: 300_000,
            offsets_retention_ms: 7 * 24 * 60 * 60 * 1000,
            offsets_retention_check_interval_ms: 600_000,
            offset_metadata_max_bytes: 4096,
            max_group_id_bytes: 1024,
            max_group_instance_id_bytes: 249,
            max_member_metadata_bytes: 1024 * 1024,
            max_member_assignment_bytes: 1024 * 1024,
            max_group_metadata_bytes: 64 * 1024 * 1024,
            max_protocols_per_member: 64,
            max_client_id_bytes: 1024,
        }
    }
}

impl GroupConfig {
    /// Settings for fast tests: no initial delay, 1 s minimum session timeout.
    pub fn for_tests() -> GroupConfig {
        GroupConfig {
            initial_rebalance_delay_ms: 0,
            min_session_timeout_ms: 1_000,
            ..GroupConfig::default()
        }
    }
}
