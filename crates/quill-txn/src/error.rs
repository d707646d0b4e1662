//! Errors of the transaction coordinator, each mapping to exactly one Kafka error code.

use thiserror::Error;

/// What the coordinator answers instead of success.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TxnError {
    #[error("the coordinator is not available (shutting down, or a store write failed); retry")]
    CoordinatorNotAvailable,
    #[error("the coordinator is loading this transactional id's __transaction_state partition")]
    CoordinatorLoadInProgress,
    #[error("this broker is not the coordinator for the transactional id")]
    NotCoordinator,
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("the producer id is not the one mapped to this transactional id")]
    InvalidProducerIdMapping,
    #[error(
        "the producer epoch is not current (a newer producer with this transactional id exists)"
    )]
    ProducerFenced,
    #[error("the producer epoch is not current")]
    InvalidProducerEpoch,
    #[error("invalid transaction state: {0}")]
    InvalidTxnState(String),
    #[error(
        "transaction timeout {timeout_ms} ms is not in (0, transaction.max.timeout.ms = {max_ms}]"
    )]
    InvalidTransactionTimeout { timeout_ms: i32, max_ms: i32 },
    #[error("a previous transaction of this transactional id is still completing; retry")]
    ConcurrentTransactions,
    #[error("unknown transactional id")]
    TransactionalIdNotFound,
    #[error("the transaction exceeds a limit: {0}")]
    LimitExceeded(String),
    #[error("unexpected server error: {0}")]
    UnknownServerError(String),
}

impl TxnError {
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            TxnError::CoordinatorNotAvailable => 15,
            TxnError::CoordinatorLoadInProgress => 14,
            TxnError::NotCoordinator => 16,
            TxnError::InvalidRequest(_) | TxnError::LimitExceeded(_) => 42,
            TxnError::InvalidProducerIdMapping => 49,
            TxnError::ProducerFenced => 90,
            TxnError::InvalidProducerEpoch => 47,
            TxnError::InvalidTxnState(_) => 48,
            TxnError::InvalidTransactionTimeout { .. } => 50,
            TxnError::ConcurrentTransactions => 51,
            TxnError::TransactionalIdNotFound => 105,
            TxnError::UnknownServerError(_) => -1,
        }
    }

    /// Clients older than KIP-588 (InitProducerId < v4, AddPartitionsToTxn/AddOffsetsToTxn/
    /// EndTxn < v2, TxnOffsetCommit < v3) do not know PRODUCER_FENCED: they get
    /// INVALID_PRODUCER_EPOCH instead, as Kafka answers them.
    pub fn kafka_error_code_for(&self, knows_producer_fenced: bool) -> i16 {
        match self {
            TxnError::ProducerFenced if !knows_producer_fenced => 47,
            other => other.kafka_error_code(),
        }
    }
}

/// Why the broker's storage of `__transaction_state` failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoreError {
    #[error("this broker does not lead __transaction_state partition {0}")]
    NotLeader(i32),
    #[error("storage temporarily unavailable: {0}")]
    Unavailable(String),
    #[error("storage failed: {0}")]
    Failed(String),
}

impl From<StoreError> for TxnError {
    fn from(error: StoreError) -> TxnError {
        match error {
            StoreError::NotLeader(_) => TxnError::NotCoordinator,
            StoreError::Unavailable(_) => TxnError::CoordinatorNotAvailable,
            StoreError::Failed(reason) => TxnError::UnknownServerError(reason),
        }
    }
}

/// One partition's answer to a marker write.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MarkerError {
    /// The partition no longer exists: nothing to mark (Kafka drops such markers).
    #[error("partition no longer exists")]
    UnknownPartition,
    /// Worth retrying (log busy, not durable yet, transient I/O, the leader unreachable).
    #[error("marker write failed: {0}")]
    Retriable(String),
    /// The partition refused the marker as older than its producer epoch (INVALID_PRODUCER_EPOCH)
    /// or coordinator epoch (TRANSACTION_COORDINATOR_FENCED): a newer marker already ended that
    /// transaction there, so retrying cannot succeed and the partition needs no more.
    #[error("marker refused as stale: {reason}")]
    Stale {
        coordinator_fenced: bool,
        reason: String,
    },
}
