use uuid::Uuid;

/// Kafka protocol error codes this crate can produce (see `MetaError::kafka_error_code`).
pub mod error_code {
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    pub const REQUEST_TIMED_OUT: i16 = 7;
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    pub const INVALID_PARTITIONS: i16 = 37;
    pub const INVALID_REPLICATION_FACTOR: i16 = 38;
    pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
    pub const INVALID_CONFIG: i16 = 40;
    pub const NOT_CONTROLLER: i16 = 41;
    pub const DUPLICATE_BROKER_REGISTRATION: i16 = 101;
    pub const INVALID_REQUEST: i16 = 42;
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
    pub const INVALID_UPDATE_VERSION: i16 = 95;
    pub const FENCED_LEADER_EPOCH: i16 = 74;
    pub const UNKNOWN_TOPIC_ID: i16 = 100;
    pub const INELIGIBLE_REPLICA: i16 = 107;
}

/// Every way a metadata change or the metadata store can fail.
///
/// Validation variants carry a one-sentence, client-facing message (close to Kafka's wording) that
/// the broker can put in a response's `error_message` as is.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("Topic '{0}' already exists.")]
    TopicAlreadyExists(String),
    #[error("Unknown topic: {0}")]
    UnknownTopic(String),
    #[error("Unknown topic id: {0}")]
    UnknownTopicId(Uuid),
    #[error("{0}")]
    InvalidTopic(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    #[error("{message}")]
    InvalidConfig { name: String, message: String },
    /// A record that is well-formed Rust but makes no sense against the image (for example a
    /// leader that is not in the ISR, or a stale leader epoch).
    #[error("{0}")]
    InvalidRequest(String),
    /// A feature update Kafka's rules refuse (UpdateFeatures).
    #[error("{0}")]
    InvalidUpdateVersion(String),
    /// A partition change planned against an older leader epoch (Kafka's FENCED_LEADER_EPOCH).
    #[error("{0}")]
    FencedLeaderEpoch(String),
    /// AlterPartition from a broker that does not lead the partition.
    #[error("{0}")]
    NotLeaderOrFollower(String),
    /// A broker that is not registered, fenced or shutting down named as a new ISR member or
    /// leader (Kafka's INELIGIBLE_REPLICA).
    #[error("{0}")]
    IneligibleReplica(String),
    /// Kafka's DUPLICATE_BROKER_REGISTRATION: another process holds this node id's live
    /// registration.
    #[error("{0}")]
    DuplicateBrokerRegistration(String),
    #[error("metadata entry of {size_bytes} bytes exceeds the limit of {limit_bytes} bytes")]
    EntryTooLarge {
        size_bytes: usize,
        limit_bytes: usize,
    },
    /// The on-disk state cannot be trusted (bad checksum in a snapshot, undecodable entry with a
    /// valid checksum, gap in entry indexes, replay failure). The store refuses to open rather
    /// than guess.
    #[error("metadata store is corrupt: {0}")]
    Corrupt(String),
    /// A previous write or fsync failed; the store refuses further appends until reopened,
    /// because the state of the file and the page cache is unknown after a failed fsync.
    #[error("metadata store is unavailable after an earlier I/O failure; restart required")]
    Poisoned,
    #[error("metadata store I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Committed to the metadata log and then refused by the state machine on every node alike
    /// (a concurrent change won a race), with the Kafka error the refusal maps to.
    #[error("{message}")]
    Rejected { error_code: i16, message: String },
    /// The metadata quorum cannot take changes now (its member stopped on a storage error and
    /// cannot restart yet).
    #[error("{0}")]
    Unavailable(String),
    /// The change reached a node that is not the active controller.
    #[error("{0}")]
    NotController(String),
    /// The change may or may not commit later (leadership lost, or no answer in time).
    #[error("{0}")]
    OutcomeUnknown(String),
}

impl MetaError {
    pub fn kafka_error_code(&self) -> i16 {
        use error_code::*;
        match self {
            MetaError::TopicAlreadyExists(_) => TOPIC_ALREADY_EXISTS,
            MetaError::UnknownTopic(_) => UNKNOWN_TOPIC_OR_PARTITION,
            MetaError::UnknownTopicId(_) => UNKNOWN_TOPIC_ID,
            MetaError::InvalidTopic(_) => INVALID_TOPIC_EXCEPTION,
            MetaError::InvalidPartitions(_) => INVALID_PARTITIONS,
            MetaError::InvalidReplicationFactor(_) => INVALID_REPLICATION_FACTOR,
            MetaError::InvalidReplicaAssignment(_) => INVALID_REPLICA_ASSIGNMENT,
            MetaError::InvalidConfig { .. } => INVALID_CONFIG,
            MetaError::InvalidRequest(_) => INVALID_REQUEST,
            MetaError::InvalidUpdateVersion(_) => INVALID_UPDATE_VERSION,
            MetaError::DuplicateBrokerRegistration(_) => DUPLICATE_BROKER_REGISTRATION,
            MetaError::FencedLeaderEpoch(_) => FENCED_LEADER_EPOCH,
            MetaError::NotLeaderOrFollower(_) => NOT_LEADER_OR_FOLLOWER,
            MetaError::IneligibleReplica(_) => INELIGIBLE_REPLICA,
            MetaError::EntryTooLarge { .. } => MESSAGE_TOO_LARGE,
            MetaError::Corrupt(_)
            | MetaError::Poisoned
            | MetaError::Io(_)
            | MetaError::Unavailable(_) => KAFKA_STORAGE_ERROR,
            MetaError::Rejected { error_code, .. } => *error_code,
            MetaError::NotController(_) => NOT_CONTROLLER,
            MetaError::OutcomeUnknown(_) => REQUEST_TIMED_OUT,
        }
    }

    /// True for errors caused by the request (nothing was written); false for storage failures.
    pub fn is_validation_error(&self) -> bool {
        !matches!(
            self,
            MetaError::Corrupt(_)
                | MetaError::Poisoned
                | MetaError::Io(_)
                | MetaError::Unavailable(_)
                | MetaError::NotController(_)
                | MetaError::OutcomeUnknown(_)
        )
    }

    pub(crate) fn invalid_config(name: &str, message: impl Into<String>) -> MetaError {
        MetaError::InvalidConfig {
            name: name.to_string(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_match_kafka() {
        let cases: Vec<(MetaError, i16)> = vec![
            (MetaError::TopicAlreadyExists("t".into()), 36),
            (MetaError::UnknownTopic("t".into()), 3),
            (MetaError::UnknownTopicId(Uuid::from_u128(1)), 100),
            (MetaError::InvalidTopic("x".into()), 17),
            (MetaError::InvalidPartitions("x".into()), 37),
            (MetaError::InvalidReplicationFactor("x".into()), 38),
            (MetaError::InvalidReplicaAssignment("x".into()), 39),
            (MetaError::invalid_config("a", "b"), 40),
            (MetaError::InvalidRequest("x".into()), 42),
            (MetaError::InvalidUpdateVersion("x".into()), 95),
            (MetaError::DuplicateBrokerRegistration("x".into()), 101),
            (MetaError::FencedLeaderEpoch("x".into()), 74),
            (MetaError::NotLeaderOrFollower("x".into()), 6),
            (MetaError::IneligibleReplica("x".into()), 107),
            (MetaError::Corrupt("x".into()), 56),
            (MetaError::Poisoned, 56),
            (MetaError::Io(std::io::Error::other("x")), 56),
            (MetaError::Unavailable("x".into()), 56),
            (MetaError::NotController("x".into()), 41),
            (MetaError::OutcomeUnknown("x".into()), 7),
            (
                MetaError::Rejected {
                    error_code: 36,
                    message: "x".into(),
                },
                36,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(error.kafka_error_code(), code, "{error:?}");
        }
    }

    #[test]
    fn storage_errors_are_not_validation_errors() {
        assert!(MetaError::TopicAlreadyExists("t".into()).is_validation_error());
        assert!(!MetaError::Corrupt("x".into()).is_validation_error());
        assert!(!MetaError::Poisoned.is_validation_error());
    }
}
