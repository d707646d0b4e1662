//! Quill's storage engine: one partition's append-only log of Kafka v2 record batches.
//!
//! Plain blocking file I/O: no async runtime, no networking, no knowledge of Kafka requests.
//! The broker decides which threads call in. See `ARCHITECTURE.md` for the invariants, and
//! `Log` for the entry points.
//!
//! What is durable when:
//! - `FlushPolicy::EveryAppend` (default, `flush.messages=1`): an offset is durable once
//!   `on_durable` reports it; that happens after an `fdatasync` of every segment file that may
//!   hold it, issued after the append was written. Concurrent requests share one sync (group
//!   commit).
//! - `FlushPolicy::Periodic` (`flush.messages` > 1 and/or `flush.ms`): a sync is requested in
//!   the background after that many records, or by `flush_if_due` after that many ms;
//!   `on_durable` reports at once. With neither, the kernel writes back dirty pages when it
//!   likes (Kafka's default). A machine crash may lose what was not yet synced;
//!   `durable_end_offset` always says what was.
//! - Always: a process crash loses nothing that `append` returned (the data is in the page
//!   cache); new segment files and state files are made durable (file + directory fsync) when
//!   they are created, so a synced offset never disappears with its file name.

mod batch;
mod checkpoint;
pub mod cleaner;
mod commit;
mod config;
mod error;
mod index;
mod leader_epoch;
mod log;
mod producer;
mod producer_snapshot;
pub mod records;
mod replica;
mod segment;
pub mod stats;
mod validate;

pub use batch::{testing, BatchHeader, HEADER_BYTES};
pub use cleaner::{
    CleanStats, CleanableStats, CleanerConfig, LogCleaner, LogHandle, Throttler,
    DEFAULT_DEDUPE_BUFFER_BYTES,
};
pub use commit::{DurabilityCallback, GroupCommitter};
pub use config::{
    CleanupPolicy, CompactionConfig, FlushPolicy, LogConfig, TimestampType,
    DEFAULT_INDEX_INTERVAL_BYTES, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_RETENTION_MS,
    DEFAULT_SEGMENT_BYTES, DEFAULT_SEGMENT_INDEX_BYTES, DEFAULT_SEGMENT_MS,
    DEFAULT_TIMESTAMP_AFTER_MAX_MS, DEFAULT_TIMESTAMP_BEFORE_MAX_MS,
};
pub use error::{LogError, RecordError};
pub use leader_epoch::{EpochEntry, LEADER_EPOCH_FILE, UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET};
pub use log::{
    run_maintenance, AbortedTransaction, AppendContext, AppendInfo, Log, Maintenance,
    MaintenanceDone, PlannedRead, ReadResult, TimestampOffset, MAX_READ_BYTES,
};
pub use producer::{ControlMarker, ProducerSnapshot};
/// The file-system seam every file of a log goes through (`quill_fs::sim` in tests).
pub use quill_fs::{self, Fs};
pub use records::{
    BatchEncoder, BatchFields, Compression, CompressionLevels, RecordHeader, RecordView,
    DECOMPRESSED_LIMIT_SETTING, MAX_DECOMPRESSED_BATCH_BYTES,
};
pub use replica::FollowerAppendInfo;
pub use segment::MAX_BATCH_BYTES;
pub use validate::{
    decode_memory_bytes, validate_append, validate_append_within, ValidBatch, ValidatedAppend,
    MAX_REENCODED_BATCH_BYTES,
};

/// Validates one v2 batch as the log validates producer input under default topic configs
/// (for fuzzing and tests), except the timestamp bounds, which need a clock: any timestamp
/// passes. Returns the parsed header.
pub fn validate_producer_batch(
    bytes: &[u8],
    max_message_bytes: u32,
) -> Result<BatchHeader, LogError> {
    let config = LogConfig {
        max_message_bytes,
        timestamp_before_max_ms: i64::MAX,
        timestamp_after_max_ms: i64::MAX,
        ..LogConfig::default()
    };
    let header = BatchHeader::parse(bytes)?;
    let whole = bytes.get(..header.size_bytes).unwrap_or(bytes);
    let validated = validate_append(whole, &config, "fuzz-0", 0)?;
    validated
        .batches()
        .first()
        .map(|batch| batch.header)
        .ok_or_else(|| LogError::InvalidRecord("no record batches".to_string()))
}
