//! Validation of producer input before an append, as Kafka's `UnifiedLog.analyzeAndValidate`
//! plus `LogValidator` do it. Pure CPU work over the request's bytes: the broker runs it on a
//! blocking thread *before* taking the partition's lock; [`crate::Log::append_validated`] then
//! only assigns offsets and writes.

use std::borrow::Cow;

use crate::batch::{self, BatchHeader};
use crate::config::{LogConfig, TimestampType};
use crate::error::LogError;
use crate::records::{self, Compression, RecordRules, MAX_DECOMPRESSED_BATCH_BYTES};
use crate::segment::MAX_BATCH_BYTES;

/// One producer batch that passed validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValidBatch {
    /// Where the batch starts in [`ValidatedAppend::bytes`].
    pub position: usize,
    pub header: BatchHeader,
    /// The timestamp the header must carry under CreateTime: the largest record timestamp, as
    /// Kafka's `setMaxTimestamp` writes it (so a producer's wrong value is corrected).
    pub max_timestamp_ms: i64,
}

/// Producer batches that passed every check, ready for [`crate::Log::append_validated`].
#[derive(Clone, Debug)]
pub struct ValidatedAppend<'a> {
    bytes: Cow<'a, [u8]>,
    batches: Vec<ValidBatch>,
}

impl ValidatedAppend<'_> {
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn batches(&self) -> &[ValidBatch] {
        &self.batches
    }

    pub fn record_count(&self) -> i64 {
        self.batches
            .iter()
            .map(|batch| i64::from(batch.header.last_offset_delta) + 1)
            .sum()
    }
}

/// Splits `bytes` into batches and checks each one as Kafka checks producer input: sizes
/// (`max.message.bytes`, `segment.bytes`), header and CRC, then every record
/// ([`records::validate_producer_records`]) under the topic's rules in `config`. When the
/// topic's `compression.type` names a codec other than the batch's, the batch is re-encoded
/// (the only case where what is written differs from the producer's bytes beyond the header).
/// `topic_partition` (`name-index`) is used in error messages, as Kafka does.
pub fn validate_append<'a>(
    bytes: &'a [u8],
    config: &LogConfig,
    topic_partition: &str,
    now_ms: i64,
) -> Result<ValidatedAppend<'a>, LogError> {
    if bytes.is_empty() {
        return Err(LogError::InvalidRecord(
            "no record batches to append".to_string(),
        ));
    }
    if bytes.len() as u64 > config.segment_bytes {
        return Err(LogError::RecordTooLarge {
            size_bytes: bytes.len() as u64,
            limit_bytes: config.segment_bytes,
            setting: "segment.bytes",
        });
    }
    let rules = RecordRules {
        topic_partition,
        timestamp_type: config.timestamp_type,
        requires_keys: config.cleanup_policy.compact,
        now_ms,
        timestamp_before_max_ms: config.timestamp_before_max_ms,
        timestamp_after_max_ms: config.timestamp_after_max_ms,
        max_decompressed_bytes: MAX_DECOMPRESSED_BATCH_BYTES,
    };
    let max_batch_bytes = config.max_message_bytes.min(MAX_BATCH_BYTES) as usize;
    let mut batches = Vec::new();
    let mut pieces: Vec<Cow<'a, [u8]>> = Vec::new();
    let mut position = 0;
    // Where each batch starts in what will be written (differs once a batch is re-encoded).
    let mut stored_position = 0;
    while position < bytes.len() {
        let rest = &bytes[position..];
        let header = BatchHeader::parse(rest)?;
        if header.size_bytes > max_batch_bytes {
            return Err(LogError::RecordTooLarge {
                size_bytes: header.size_bytes as u64,
                limit_bytes: max_batch_bytes as u64,
                setting: "max.message.bytes",
            });
        }
        let Some(whole) = rest.get(..header.size_bytes) else {
            return Err(LogError::CorruptRecord(format!(
                "batch length {} runs past the end of the {} bytes given",
                header.size_bytes,
                rest.len()
            )));
        };
        batch::validate_batch(whole, &header, true)?;
        if header.producer_id >= 0 && header.base_sequence < 0 {
            return Err(LogError::InvalidRecord(format!(
                "Invalid sequence number {} in record batch with producerId {} in topic \
                 partition {topic_partition}",
                header.base_sequence, header.producer_id
            )));
        }
        let validated = records::validate_producer_records(whole, &header, &rules)?;
        let max_timestamp_ms = match config.timestamp_type {
            TimestampType::CreateTime => validated.max_timestamp_ms,
            // Replaced by the append time when written.
            TimestampType::LogAppendTime => header.max_timestamp_ms,
        };
        let recompressed = match config.compression_type {
            Some(target) if target.id() != header.compression_codec() => {
                Some(recompress(whole, &header, target, config, max_batch_bytes)?)
            }
            _ => None,
        };
        let stored_header = match &recompressed {
            Some(rebuilt) => BatchHeader::parse(rebuilt)?,
            None => header,
        };
        pieces.push(recompressed.map_or(Cow::Borrowed(whole), Cow::Owned));
        batches.push(ValidBatch {
            position: stored_position,
            header: stored_header,
            max_timestamp_ms,
        });
        position += header.size_bytes;
        stored_position += stored_header.size_bytes;
    }
    let bytes = if pieces.iter().all(|piece| matches!(piece, Cow::Borrowed(_))) {
        Cow::Borrowed(bytes)
    } else {
        Cow::Owned(pieces.concat())
    };
    Ok(ValidatedAppend { bytes, batches })
}

/// `compression.type` asks for another codec: rebuild the batch, which must still fit
/// `max.message.bytes` (Kafka checks the rebuilt batch the same way).
fn recompress(
    whole: &[u8],
    header: &BatchHeader,
    target: Compression,
    config: &LogConfig,
    max_batch_bytes: usize,
) -> Result<Vec<u8>, LogError> {
    let rebuilt = records::recompress_batch(
        whole,
        header,
        target,
        config.compression_levels,
        MAX_DECOMPRESSED_BATCH_BYTES,
    )?;
    if rebuilt.len() > max_batch_bytes {
        return Err(LogError::RecordTooLarge {
            size_bytes: rebuilt.len() as u64,
            limit_bytes: max_batch_bytes as u64,
            setting: "max.message.bytes",
        });
    }
    Ok(rebuilt)
}
