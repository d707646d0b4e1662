//! Errors of the group coordinator, each mapping to exactly one Kafka error code.

use thiserror::Error;

/// What the coordinator answers instead of success. Every variant is a Kafka error code
/// (`kafka_error_code`), so handlers never invent codes of their own.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GroupError {
    #[error("the coordinator is shutting down or the group was just removed; find the coordinator again")]
    CoordinatorNotAvailable,
    #[error("the coordinator is loading this group's __consumer_offsets partition")]
    CoordinatorLoadInProgress,
    #[error("this broker is not the coordinator for the group")]
    NotCoordinator,
    #[error("invalid group id: {0}")]
    InvalidGroupId(String),
    #[error("the session timeout {session_timeout_ms} ms is outside [{min_ms}, {max_ms}] (group.min.session.timeout.ms, group.max.session.timeout.ms)")]
    InvalidSessionTimeout {
        session_timeout_ms: i32,
        min_ms: i32,
        max_ms: i32,
    },
    #[error("the member's protocol type or protocols are incompatible with the group")]
    InconsistentGroupProtocol,
    #[error("unknown member id")]
    UnknownMemberId,
    #[error("the member must rejoin with the member id it was given")]
    MemberIdRequired,
    #[error("the generation is not the group's current generation")]
    IllegalGeneration,
    #[error("the group is rebalancing; rejoin")]
    RebalanceInProgress,
    #[error("the group has reached group.max.size = {0} members")]
    GroupMaxSizeReached(usize),
    #[error(
        "another member with the same group.instance.id has registered with a different member id"
    )]
    FencedInstanceId,
    #[error("the group does not exist")]
    GroupIdNotFound,
    #[error("the group is not empty")]
    NonEmptyGroup,
    #[error("the group is subscribed to the topic")]
    GroupSubscribedToTopic,
    #[error("the offset metadata is {size_bytes} bytes, above offset.metadata.max.bytes = {limit_bytes}")]
    OffsetMetadataTooLarge {
        size_bytes: usize,
        limit_bytes: usize,
    },
    #[error("there are pending transactional offsets for this partition")]
    UnstableOffsetCommit,
    #[error("unknown topic or partition")]
    UnknownTopicOrPartition,
    #[error("the request exceeds a limit: {0}")]
    InvalidRequest(String),
    #[error("unexpected server error: {0}")]
    UnknownServerError(String),
}

impl GroupError {
    /// The Kafka protocol error code (see Kafka's `Errors` enum).
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            GroupError::UnknownServerError(_) => -1,
            GroupError::UnknownTopicOrPartition => 3,
            GroupError::CoordinatorLoadInProgress => 14,
            GroupError::CoordinatorNotAvailable => 15,
            GroupError::NotCoordinator => 16,
            GroupError::IllegalGeneration => 22,
            GroupError::InconsistentGroupProtocol => 23,
            GroupError::InvalidGroupId(_) => 24,
            GroupError::UnknownMemberId => 25,
            GroupError::InvalidSessionTimeout { .. } => 26,
            GroupError::RebalanceInProgress => 27,
            GroupError::OffsetMetadataTooLarge { .. } => 12,
            GroupError::InvalidRequest(_) => 42,
            GroupError::NonEmptyGroup => 68,
            GroupError::GroupIdNotFound => 69,
            GroupError::MemberIdRequired => 79,
            GroupError::GroupMaxSizeReached(_) => 81,
            GroupError::FencedInstanceId => 82,
            GroupError::GroupSubscribedToTopic => 86,
            GroupError::UnstableOffsetCommit => 88,
        }
    }
}

/// Kafka's error code for an optional error: 0 (NONE) for `None`.
pub fn error_code(error: &Option<GroupError>) -> i16 {
    error.as_ref().map_or(0, GroupError::kafka_error_code)
}

/// A failure of the storage behind `__consumer_offsets`, as reported by the broker's
/// [`crate::OffsetsStore`]. The variants are the cases whose client-visible answer differs.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoreError {
    /// This broker no longer leads the partition (or never did): clients must find the
    /// coordinator again. Kafka maps NOT_LEADER_OR_FOLLOWER/KAFKA_STORAGE_ERROR to NOT_COORDINATOR.
    #[error("not the leader of __consumer_offsets partition {0}")]
    NotLeader(i32),
    /// Transient: the write may succeed if retried (Kafka: NOT_ENOUGH_REPLICAS, timeouts →
    /// COORDINATOR_NOT_AVAILABLE).
    #[error("__consumer_offsets temporarily unavailable: {0}")]
    Unavailable(String),
    /// The write was refused for good (e.g. record too large, disk failure).
    #[error("__consumer_offsets write failed: {0}")]
    Failed(String),
}

impl From<StoreError> for GroupError {
    // Mirrors Kafka's GroupMetadataManager mapping of append errors to client errors.
    fn from(error: StoreError) -> GroupError {
        match error {
            StoreError::NotLeader(_) => GroupError::NotCoordinator,
            StoreError::Unavailable(_) => GroupError::CoordinatorNotAvailable,
            StoreError::Failed(reason) => GroupError::UnknownServerError(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::ResponseError as Kafka;

    #[test]
    fn codes_match_kafkas_table() {
        let pairs = [
            (
                GroupError::UnknownServerError(String::new()),
                Kafka::UnknownServerError,
            ),
            (
                GroupError::CoordinatorLoadInProgress,
                Kafka::CoordinatorLoadInProgress,
            ),
            (
                GroupError::CoordinatorNotAvailable,
                Kafka::CoordinatorNotAvailable,
            ),
            (GroupError::NotCoordinator, Kafka::NotCoordinator),
            (GroupError::IllegalGeneration, Kafka::IllegalGeneration),
            (
                GroupError::InconsistentGroupProtocol,
                Kafka::InconsistentGroupProtocol,
            ),
            (
                GroupError::InvalidGroupId(String::new()),
                Kafka::InvalidGroupId,
            ),
            (GroupError::UnknownMemberId, Kafka::UnknownMemberId),
            (
                GroupError::InvalidSessionTimeout {
                    session_timeout_ms: 0,
                    min_ms: 0,
                    max_ms: 0,
                },
                Kafka::InvalidSessionTimeout,
            ),
            (GroupError::RebalanceInProgress, Kafka::RebalanceInProgress),
            (
                GroupError::OffsetMetadataTooLarge {
                    size_bytes: 0,
                    limit_bytes: 0,
                },
                Kafka::OffsetMetadataTooLarge,
            ),
            (
                GroupError::InvalidRequest(String::new()),
                Kafka::InvalidRequest,
            ),
            (GroupError::NonEmptyGroup, Kafka::NonEmptyGroup),
            (
                GroupError::UnknownTopicOrPartition,
                Kafka::UnknownTopicOrPartition,
            ),
            (GroupError::GroupIdNotFound, Kafka::GroupIdNotFound),
            (GroupError::MemberIdRequired, Kafka::MemberIdRequired),
            (
                GroupError::GroupMaxSizeReached(0),
                Kafka::GroupMaxSizeReached,
            ),
            (GroupError::FencedInstanceId, Kafka::FencedInstanceId),
            (
                GroupError::GroupSubscribedToTopic,
                Kafka::GroupSubscribedToTopic,
            ),
            (
                GroupError::UnstableOffsetCommit,
                Kafka::UnstableOffsetCommit,
            ),
        ];
        for (ours, kafka) in pairs {
            assert_eq!(ours.kafka_error_code(), kafka.code(), "{ours:?}");
        }
        assert_eq!(error_code(&None), 0);
    }

    #[test]
    fn store_errors_map_like_kafka() {
        assert_eq!(
            GroupError::from(StoreError::NotLeader(3)),
            GroupError::NotCoordinator
        );
        assert_eq!(
            GroupError::from(StoreError::Unavailable("x".into())),
            GroupError::CoordinatorNotAvailable
        );
        assert_eq!(
            GroupError::from(StoreError::Failed("x".into())).kafka_error_code(),
            -1
        );
    }
}
