//! Validation of producer input before an append, as Kafka's `UnifiedLog.analyzeAndValidate`
//! plus `LogValidator` do it. Pure CPU work over the request's bytes: the broker runs it on a
//! blocking thread *before* taking the partition's lock; [`crate::Log::append_validated`] then
//! only assigns offsets and writes.

use std::borrow::Cow;

use crate::batch::{self, BatchHeader};
use crate::config::{LogConfig, TimestampType};
use crate::error::LogError;
use crate::records::{
    self, Compression, RecordRules, DECODER_STATE_BYTES, MAX_DECOMPRESSED_BATCH_BYTES,
};
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

/// The most bytes a batch that must be re-encoded (`compression.type` names another codec) may
/// decompress to, and the most bytes a re-encoded request may grow to: re-encoding holds the
/// decompressed section, one record, the codec's window and the new batches at once (see
/// [`decode_memory_bytes`]), so its limit is a quarter of the decoding limit (both then need the
/// same memory). Beyond: RECORD_TOO_LARGE.
pub const MAX_REENCODED_BATCH_BYTES: usize = MAX_DECOMPRESSED_BATCH_BYTES / 4;

/// The most memory [`validate_append_within`] holds besides `bytes` with that
/// `max_decompressed_bytes`: nothing for uncompressed batches kept as they are; for compressed
/// ones the decompressed bytes a codec may keep (records are read without being held) plus
/// [`DECODER_STATE_BYTES`]; when a batch must be re-encoded, four times the re-encoding limit
/// (decompressed section, one record, the codec's window, the new batches) plus the decoder's
/// state. The compressor's own state, which depends on the configured
/// `compression.*.level` and not on the input, is not included.
pub fn decode_memory_bytes(
    bytes: &[u8],
    config: &LogConfig,
    max_decompressed_bytes: usize,
) -> usize {
    let mut compressed = false;
    let mut rest = bytes;
    while let Ok(header) = BatchHeader::parse(rest) {
        if reencodes(&header, config) {
            return reencoding_limit(max_decompressed_bytes)
                .saturating_mul(4)
                .saturating_add(DECODER_STATE_BYTES);
        }
        compressed |= header.compression_codec() != Compression::None.id();
        match rest.get(header.size_bytes..) {
            Some(next) if !next.is_empty() => rest = next,
            _ => break,
        }
    }
    if compressed {
        records::decode_memory_bytes(max_decompressed_bytes, false)
    } else {
        0
    }
}

fn reencodes(header: &BatchHeader, config: &LogConfig) -> bool {
    config
        .compression_type
        .is_some_and(|target| target.id() != header.compression_codec())
}

fn reencoding_limit(max_decompressed_bytes: usize) -> usize {
    max_decompressed_bytes.min(MAX_REENCODED_BATCH_BYTES)
}

/// [`validate_append_within`] with the largest limits: batches may decompress to
/// [`MAX_DECOMPRESSED_BATCH_BYTES`] ([`MAX_REENCODED_BATCH_BYTES`] when re-encoded).
pub fn validate_append<'a>(
    bytes: &'a [u8],
    config: &LogConfig,
    topic_partition: &str,
    now_ms: i64,
) -> Result<ValidatedAppend<'a>, LogError> {
    validate_append_within(
        bytes,
        config,
        topic_partition,
        now_ms,
        MAX_DECOMPRESSED_BATCH_BYTES,
    )
}

/// Splits `bytes` into batches and checks each one as Kafka checks producer input: sizes
/// (`max.message.bytes`, `segment.bytes`), header and CRC, then every record
/// ([`records::validate_producer_records`]) under the topic's rules in `config`. When the
/// topic's `compression.type` names a codec other than the batch's, the batch is re-encoded
/// (the only case where what is written differs from the producer's bytes beyond the header).
/// `topic_partition` (`name-index`) is used in error messages, as Kafka does.
///
/// Each batch may decompress to at most `max_decompressed_bytes` (capped at
/// [`MAX_DECOMPRESSED_BATCH_BYTES`]; at [`MAX_REENCODED_BATCH_BYTES`] when re-encoded, which
/// also caps the re-encoded request), so the memory held is at most
/// [`decode_memory_bytes`]. Past the limit the error is RECORD_TOO_LARGE with
/// [`records::DECOMPRESSED_LIMIT_SETTING`]: a caller that chose a smaller limit may retry
/// with a larger one.
pub fn validate_append_within<'a>(
    bytes: &'a [u8],
    config: &LogConfig,
    topic_partition: &str,
    now_ms: i64,
    max_decompressed_bytes: usize,
) -> Result<ValidatedAppend<'a>, LogError> {
    let max_decompressed_bytes = max_decompressed_bytes.min(MAX_DECOMPRESSED_BATCH_BYTES);
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
        max_decompressed_bytes,
    };
    let reencoding_limit_bytes = reencoding_limit(max_decompressed_bytes);
    let max_batch_bytes = config.max_message_bytes.min(MAX_BATCH_BYTES) as usize;
    let mut batches = Vec::new();
    // Once a batch is re-encoded, what will be written is built here (the batches before it
    // copied in first), so the request is never held twice.
    let mut rewritten: Option<Vec<u8>> = None;
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
        let stored_header = match config.compression_type {
            Some(target) if reencodes(&header, config) => {
                let rebuilt = recompress(
                    whole,
                    &header,
                    target,
                    config,
                    max_batch_bytes,
                    reencoding_limit_bytes,
                )?;
                let out = rewritten.get_or_insert_with(|| bytes[..position].to_vec());
                let grown = out.len().saturating_add(rebuilt.len());
                if grown > reencoding_limit_bytes {
                    return Err(LogError::RecordTooLarge {
                        size_bytes: grown as u64,
                        limit_bytes: reencoding_limit_bytes as u64,
                        setting: records::DECOMPRESSED_LIMIT_SETTING,
                    });
                }
                out.extend_from_slice(&rebuilt);
                BatchHeader::parse(&rebuilt)?
            }
            _ => {
                if let Some(out) = rewritten.as_mut() {
                    out.extend_from_slice(whole);
                }
                header
            }
        };
        batches.push(ValidBatch {
            position: stored_position,
            header: stored_header,
            max_timestamp_ms,
        });
        position += header.size_bytes;
        stored_position += stored_header.size_bytes;
    }
    let bytes = rewritten.map_or(Cow::Borrowed(bytes), Cow::Owned);
    debug_assert_eq!(bytes.len(), stored_position);
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
    max_decompressed_bytes: usize,
) -> Result<Vec<u8>, LogError> {
    let rebuilt = records::recompress_batch(
        whole,
        header,
        target,
        config.compression_levels,
        max_decompressed_bytes,
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::records::{encode_batch, encode_record, BatchFields, CompressionLevels};

    const MIB: usize = 1024 * 1024;

    /// One batch holding one record with `value_bytes` zeros (a few KiB compressed).
    fn zeros_batch(codec: Compression, value_bytes: usize) -> Vec<u8> {
        let mut section = Vec::new();
        encode_record(
            &mut section,
            0,
            0,
            Some(b"k"),
            Some(&vec![0u8; value_bytes]),
            &[],
        );
        encode_batch(
            &BatchFields::producer(0, 0),
            1,
            &section,
            codec,
            CompressionLevels::default(),
        )
        .unwrap()
    }

    fn config() -> LogConfig {
        LogConfig {
            max_message_bytes: 64 * MIB as u32,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: i64::MAX,
            ..LogConfig::default()
        }
    }

    fn is_over_decode_limit(error: &LogError, limit_bytes: usize) -> bool {
        matches!(error, LogError::RecordTooLarge { limit_bytes: limit, setting, .. }
            if *limit == limit_bytes as u64 && *setting == records::DECOMPRESSED_LIMIT_SETTING)
    }

    #[test]
    fn a_batch_past_the_callers_decode_limit_is_refused_so_the_caller_can_retry() {
        for codec in [Compression::Gzip, Compression::Zstd, Compression::Lz4] {
            let batch = zeros_batch(codec, 3 * MIB);
            let error = validate_append_within(&batch, &config(), "t-0", 0, MIB).unwrap_err();
            assert!(is_over_decode_limit(&error, MIB), "{codec:?}: {error:?}");
            validate_append_within(&batch, &config(), "t-0", 0, 4 * MIB).unwrap();
            // Validation holds no record: the bound is the limit plus the decoder's state.
            assert_eq!(
                decode_memory_bytes(&batch, &config(), 4 * MIB),
                4 * MIB + DECODER_STATE_BYTES
            );
        }
        let plain = zeros_batch(Compression::None, 1000);
        assert_eq!(decode_memory_bytes(&plain, &config(), 4 * MIB), 0);
    }

    #[test]
    fn re_encoding_is_limited_per_batch_and_per_request_and_budgeted() {
        let reencode = LogConfig {
            compression_type: Some(Compression::None),
            ..config()
        };
        let batch = zeros_batch(Compression::Zstd, 3 * MIB);
        assert_eq!(
            decode_memory_bytes(&batch, &reencode, MAX_DECOMPRESSED_BATCH_BYTES),
            4 * MAX_REENCODED_BATCH_BYTES + DECODER_STATE_BYTES
        );
        let validated = validate_append_within(&batch, &reencode, "t-0", 0, 4 * MIB).unwrap();
        assert!(validated.bytes().len() > 3 * MIB);
        // Two such batches grow the request to 6 MiB: past a 5 MiB limit, though each fits.
        let two = [batch.clone(), batch.clone()].concat();
        let error = validate_append_within(&two, &reencode, "t-0", 0, 5 * MIB).unwrap_err();
        assert!(is_over_decode_limit(&error, 5 * MIB), "{error:?}");
        let validated = validate_append_within(&two, &reencode, "t-0", 0, 7 * MIB).unwrap();
        assert_eq!(validated.batches().len(), 2);
        assert_eq!(
            validated.batches()[1].position,
            validated.batches()[0].header.size_bytes
        );
        // A batch kept as it is after a re-encoded one is copied in after it.
        let mixed = [batch.clone(), zeros_batch(Compression::None, 100)].concat();
        let validated = validate_append_within(&mixed, &reencode, "t-0", 0, 7 * MIB).unwrap();
        assert_eq!(
            &validated.bytes()[validated.batches()[1].position..],
            &mixed[batch.len()..]
        );
    }
}
