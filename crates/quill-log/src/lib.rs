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
mod commit;
mod config;
mod error;
mod index;
mod log;
mod producer;
mod producer_snapshot;
mod segment;

pub use batch::{testing, BatchHeader, HEADER_BYTES};
pub use commit::{DurabilityCallback, GroupCommitter};
pub use config::{
    FlushPolicy, LogConfig, TimestampType, DEFAULT_INDEX_INTERVAL_BYTES, DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_RETENTION_MS, DEFAULT_SEGMENT_BYTES, DEFAULT_SEGMENT_INDEX_BYTES, DEFAULT_SEGMENT_MS,
};
pub use error::LogError;
pub use log::{
    AbortedTransaction, AppendContext, AppendInfo, Log, ReadResult, TimestampOffset, MAX_READ_BYTES,
};
pub use producer::{ControlMarker, ProducerSnapshot};
/// The file-system seam every file of a log goes through (`quill_fs::sim` in tests).
pub use quill_fs::{self, Fs};
pub use segment::MAX_BATCH_BYTES;

/// Validates one v2 batch as the log validates producer input (for fuzzing and the broker's
/// own pre-checks). Returns the parsed header.
pub fn validate_producer_batch(
    bytes: &[u8],
    max_message_bytes: u32,
) -> Result<BatchHeader, LogError> {
    let header = BatchHeader::parse(bytes)?;
    let limit = max_message_bytes.min(MAX_BATCH_BYTES) as usize;
    if header.size_bytes > limit {
        return Err(LogError::RecordTooLarge {
            size_bytes: header.size_bytes as u64,
            limit_bytes: limit as u64,
            setting: "max.message.bytes",
        });
    }
    let whole = bytes.get(..header.size_bytes).ok_or_else(|| {
        LogError::CorruptRecord(format!(
            "batch length {} runs past the end of the {} bytes given",
            header.size_bytes,
            bytes.len()
        ))
    })?;
    batch::validate_batch(whole, &header, true)?;
    Ok(header)
}
