//! The coordinator's settings, under Kafka's names.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnConfig {
    /// `transaction.state.log.num.partitions` (50).
    pub transaction_state_partitions: i32,
    /// `offsets.topic.num.partitions` (50): where AddOffsetsToTxn finds a group's partition.
    pub offsets_topic_partitions: i32,
    /// `transaction.max.timeout.ms` (900000): the largest `transaction.timeout.ms` a producer
    /// may ask for (INVALID_TRANSACTION_TIMEOUT above).
    pub transaction_max_timeout_ms: i32,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms` (10000 in Kafka; Quill
    /// 1000, so a timed-out transaction stops blocking read_committed consumers sooner).
    pub abort_timed_out_transaction_cleanup_interval_ms: u64,
    /// `transactional.id.expiration.ms` (604800000 = 7 days).
    pub transactional_id_expiration_ms: i64,
    /// Quill's limit `transactional.id.max.bytes` (1024; Kafka only bounds it by the int16
    /// string length): InvalidRequest above.
    pub transactional_id_max_bytes: usize,
    /// Quill's limit `transaction.max.partitions` (10000; Kafka has none): partitions one
    /// transaction may add before INVALID_REQUEST.
    pub max_partitions_per_transaction: usize,
}

impl Default for TxnConfig {
    fn default() -> TxnConfig {
        TxnConfig {
            transaction_state_partitions: 50,
            offsets_topic_partitions: 50,
            transaction_max_timeout_ms: 900_000,
            abort_timed_out_transaction_cleanup_interval_ms: 1000,
            transactional_id_expiration_ms: 604_800_000,
            transactional_id_max_bytes: 1024,
            max_partitions_per_transaction: 10_000,
        }
    }
}
