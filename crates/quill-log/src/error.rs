use std::io;

/// Every failure of the log, each mapping to exactly one Kafka error code.
#[derive(thiserror::Error, Debug)]
pub enum LogError {
    /// The bytes do not form a valid batch (bad length, CRC mismatch, broken record framing).
    #[error("corrupt record batch: {0}")]
    CorruptRecord(String),
    /// A batch (or a whole append) is larger than the configured limit.
    #[error(
        "record batch of {size_bytes} bytes exceeds the limit of {limit_bytes} bytes ({setting})"
    )]
    RecordTooLarge {
        size_bytes: u64,
        limit_bytes: u64,
        setting: &'static str,
    },
    /// A well-formed batch that breaks a rule for producer input (magic, counts, control flag).
    #[error("invalid record batch: {0}")]
    InvalidRecord(String),
    #[error("offset {offset} is out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    #[error("invalid timestamp: {0}")]
    InvalidTimestamp(String),
    /// Single records break a topic rule (Kafka's `RecordValidationException`): INVALID_TIMESTAMP
    /// when any record's timestamp is out of bounds, else INVALID_RECORD. `message` is Kafka's
    /// partition-level text; each record's index and message go to Produce `record_errors`.
    #[error("{message}")]
    RecordErrors {
        invalid_timestamp: bool,
        message: String,
        record_errors: Vec<RecordError>,
    },
    #[error("out of order sequence: {0}")]
    OutOfOrderSequence(String),
    /// A fenced (zombie) producer: its epoch is older than the partition's.
    #[error("invalid producer epoch: {0}")]
    InvalidProducerEpoch(String),
    #[error("invalid transaction state: {0}")]
    InvalidTxnState(String),
    /// An append asked to only continue its producer's open transaction found none open here
    /// (at the batch's epoch): the caller verifies with the coordinator and appends again.
    #[error(
        "no open transaction of producer {producer_id} (epoch {producer_epoch}) on this partition"
    )]
    TransactionNotOpen {
        producer_id: i64,
        producer_epoch: i16,
    },
    /// A transaction marker from a coordinator older than one already seen.
    #[error("transaction coordinator fenced: {0}")]
    CoordinatorFenced(String),
    /// Batches given to a follower append do not continue the log: a batch starts at `offset`,
    /// below `expected_offset` (the log end offset for the first batch, else the end of the
    /// batch before it). Kafka's UnexpectedAppendOffsetException / OffsetsOutOfOrderException:
    /// nothing was written; the replica fetcher decides (truncate, or fetch again from the log end).
    #[error(
        "replicated batch at offset {offset} does not continue the log at offset {expected_offset}"
    )]
    OffsetOutOfOrder { offset: i64, expected_offset: i64 },
    /// `Log::start_leader_epoch` with an epoch older than one the log already holds (stale
    /// metadata): FENCED_LEADER_EPOCH.
    #[error("leader epoch {epoch} is older than the log's latest epoch {latest_epoch}")]
    FencedLeaderEpoch { epoch: i32, latest_epoch: i32 },
    /// A durability wait (`Log::on_durable`) for offsets that a truncation cut before they were
    /// durable: they will never be, and the offsets now hold (or will hold) other data. A
    /// deposed leader answers its producers NOT_LEADER_OR_FOLLOWER, as Kafka does.
    #[error("offset {offset} was truncated away before it was durable (the log now ends at {log_end_offset})")]
    Truncated { offset: i64, log_end_offset: i64 },
    /// A durability failure happened earlier; the log refuses writes until reopened.
    #[error("log is offline after an earlier storage failure: {0}")]
    Offline(String),
    /// Another process (or another `Log` in this one) has the partition directory open.
    #[error("log directory {0} is in use by another process")]
    Locked(String),
    #[error("storage I/O error: {0}")]
    Io(#[from] io::Error),
}

/// One refused record of a batch: its index in the batch and why (Produce v8+ `record_errors`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordError {
    pub batch_index: i32,
    pub message: String,
}

impl LogError {
    /// The Kafka protocol error code a broker should answer with.
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            LogError::OffsetOutOfRange { .. } => 1,
            LogError::CorruptRecord(_) => 2,
            LogError::RecordTooLarge { .. } => 10,
            LogError::InvalidTimestamp(_) => 32,
            LogError::RecordErrors {
                invalid_timestamp, ..
            } => {
                if *invalid_timestamp {
                    32
                } else {
                    87
                }
            }
            LogError::Offline(_) | LogError::Locked(_) | LogError::Io(_) => 56,
            LogError::InvalidRecord(_) => 87,
            LogError::OutOfOrderSequence(_) => 45,
            LogError::InvalidProducerEpoch(_) => 47,
            LogError::InvalidTxnState(_) | LogError::TransactionNotOpen { .. } => 48,
            LogError::CoordinatorFenced(_) => 52,
            // Internal to replication (never a client's answer): UNKNOWN_SERVER_ERROR, as Kafka
            // has no code for its exceptions either.
            LogError::OffsetOutOfOrder { .. } => -1,
            LogError::Truncated { .. } => 6,
            LogError::FencedLeaderEpoch { .. } => 74,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_kafka() {
        let cases = [
            (LogError::CorruptRecord(String::new()), 2),
            (
                LogError::RecordTooLarge {
                    size_bytes: 2,
                    limit_bytes: 1,
                    setting: "max.message.bytes",
                },
                10,
            ),
            (LogError::InvalidRecord(String::new()), 87),
            (
                LogError::OffsetOutOfRange {
                    offset: 5,
                    log_start_offset: 0,
                    log_end_offset: 1,
                },
                1,
            ),
            (LogError::InvalidTimestamp(String::new()), 32),
            (LogError::Io(io::Error::other("disk")), 56),
            (LogError::Offline(String::new()), 56),
            (LogError::Locked(String::new()), 56),
            (LogError::OutOfOrderSequence(String::new()), 45),
            (LogError::InvalidProducerEpoch(String::new()), 47),
            (LogError::InvalidTxnState(String::new()), 48),
            (
                LogError::TransactionNotOpen {
                    producer_id: 1,
                    producer_epoch: 0,
                },
                48,
            ),
            (LogError::CoordinatorFenced(String::new()), 52),
            (
                LogError::OffsetOutOfOrder {
                    offset: 3,
                    expected_offset: 5,
                },
                -1,
            ),
            (
                LogError::Truncated {
                    offset: 9,
                    log_end_offset: 4,
                },
                6,
            ),
            (
                LogError::FencedLeaderEpoch {
                    epoch: 1,
                    latest_epoch: 2,
                },
                74,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(error.kafka_error_code(), code, "{error}");
        }
    }
}
