//! Kafka record batch format v2 ("magic 2"): header layout, validation and the few header
//! fields the broker owns (base offset, partition leader epoch, and max timestamp plus the
//! timestamp-type attribute under `LogAppendTime`).
//!
//! The records inside a batch are decoded by `records.rs`.

use crate::error::LogError;

pub const BASE_OFFSET_OFFSET: usize = 0;
pub const LENGTH_OFFSET: usize = 8;
pub const PARTITION_LEADER_EPOCH_OFFSET: usize = 12;
pub const MAGIC_OFFSET: usize = 16;
pub const CRC_OFFSET: usize = 17;
/// The CRC covers everything from the attributes to the end of the batch.
pub const ATTRIBUTES_OFFSET: usize = 21;
pub const LAST_OFFSET_DELTA_OFFSET: usize = 23;
pub const BASE_TIMESTAMP_OFFSET: usize = 27;
pub const MAX_TIMESTAMP_OFFSET: usize = 35;
pub const PRODUCER_ID_OFFSET: usize = 43;
pub const PRODUCER_EPOCH_OFFSET: usize = 51;
pub const BASE_SEQUENCE_OFFSET: usize = 53;
pub const RECORDS_COUNT_OFFSET: usize = 57;
pub const HEADER_BYTES: usize = 61;
/// Bytes before (and including) the length field, which the length does not count.
pub const LOG_OVERHEAD_BYTES: usize = 12;

pub const MAGIC_V2: i8 = 2;

pub const COMPRESSION_MASK: i16 = 0x07;
pub const TIMESTAMP_TYPE_FLAG: i16 = 0x08;
pub const TRANSACTIONAL_FLAG: i16 = 0x10;
pub const CONTROL_FLAG: i16 = 0x20;

/// The fields of a v2 batch header that the log uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// Whole batch size in bytes, including the 12 bytes of offset and length.
    pub size_bytes: usize,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp_ms: i64,
    pub max_timestamp_ms: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Parses the 61-byte header at the start of `bytes`. Checks only what is needed to walk a
    /// sequence of batches safely: the length field and the magic byte.
    pub fn parse(bytes: &[u8]) -> Result<BatchHeader, LogError> {
        let Some(header) = bytes.get(..HEADER_BYTES) else {
            return Err(LogError::CorruptRecord(format!(
                "truncated batch header: {} bytes, need {HEADER_BYTES}",
                bytes.len()
            )));
        };
        let batch_length = read_i32(header, LENGTH_OFFSET);
        let min_length = (HEADER_BYTES - LOG_OVERHEAD_BYTES) as i32;
        if batch_length < min_length {
            return Err(LogError::CorruptRecord(format!(
                "batch length {batch_length} is smaller than the v2 header"
            )));
        }
        let magic = header[MAGIC_OFFSET] as i8;
        if magic != MAGIC_V2 {
            return Err(LogError::InvalidRecord(format!(
                "record batch magic {magic} is not supported (only v2 batches are accepted)"
            )));
        }
        Ok(BatchHeader {
            base_offset: read_i64(header, BASE_OFFSET_OFFSET),
            size_bytes: batch_length as usize + LOG_OVERHEAD_BYTES,
            partition_leader_epoch: read_i32(header, PARTITION_LEADER_EPOCH_OFFSET),
            magic,
            crc: u32::from_be_bytes(read_array(header, CRC_OFFSET)),
            attributes: i16::from_be_bytes(read_array(header, ATTRIBUTES_OFFSET)),
            last_offset_delta: read_i32(header, LAST_OFFSET_DELTA_OFFSET),
            base_timestamp_ms: read_i64(header, BASE_TIMESTAMP_OFFSET),
            max_timestamp_ms: read_i64(header, MAX_TIMESTAMP_OFFSET),
            producer_id: read_i64(header, PRODUCER_ID_OFFSET),
            producer_epoch: i16::from_be_bytes(read_array(header, PRODUCER_EPOCH_OFFSET)),
            base_sequence: read_i32(header, BASE_SEQUENCE_OFFSET),
            records_count: read_i32(header, RECORDS_COUNT_OFFSET),
        })
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    pub fn compression_codec(&self) -> i16 {
        self.attributes & COMPRESSION_MASK
    }

    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_FLAG != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_FLAG != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_FLAG != 0
    }
}

/// CRC-32C over attributes..end, the range Kafka's v2 CRC covers.
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(batch.get(ATTRIBUTES_OFFSET..).unwrap_or_default())
}

/// Checks one whole batch (exactly `header.size_bytes` long) beyond what `parse` checks:
/// the CRC always; when `from_producer`, also the rules Kafka applies to client input.
pub fn validate_batch(
    batch: &[u8],
    header: &BatchHeader,
    from_producer: bool,
) -> Result<(), LogError> {
    let actual_crc = compute_crc(batch);
    if actual_crc != header.crc {
        return Err(LogError::CorruptRecord(format!(
            "batch CRC mismatch: stored {:#010x}, computed {actual_crc:#010x}",
            header.crc
        )));
    }
    if !from_producer {
        return Ok(());
    }
    if header.records_count <= 0 {
        return Err(LogError::InvalidRecord(format!(
            "record batch holds {} records; at least one is required",
            header.records_count
        )));
    }
    if i64::from(header.last_offset_delta) != i64::from(header.records_count) - 1 {
        return Err(LogError::InvalidRecord(format!(
            "lastOffsetDelta {} does not match the record count {}",
            header.last_offset_delta, header.records_count
        )));
    }
    if header.is_control() {
        return Err(LogError::InvalidRecord(
            "control batches may only be written by the broker".to_string(),
        ));
    }
    let codec = header.compression_codec();
    if codec > 4 {
        return Err(LogError::InvalidRecord(format!(
            "unknown compression codec id {codec}"
        )));
    }
    // The records themselves are checked by `records::validate_producer_records`.
    Ok(())
}

/// Timestamps (base + delta) of the records of an uncompressed batch, with their offset deltas,
/// or `None` if the batch is compressed or malformed.
pub fn record_timestamps(batch: &[u8], header: &BatchHeader) -> Option<Vec<(i64, i64)>> {
    if header.compression_codec() != 0 {
        return None;
    }
    let count = usize::try_from(header.records_count).ok()?;
    let mut out = Vec::with_capacity(count.min(batch.len() / 7));
    let mut position = HEADER_BYTES;
    for _ in 0..count {
        let (length, length_bytes) = read_varint(batch.get(position..)?)?;
        let record_start = position + length_bytes;
        let record =
            batch.get(record_start..record_start.checked_add(usize::try_from(length).ok()?)?)?;
        // attributes (int8), timestampDelta (varlong), offsetDelta (varint)
        let after_attributes = record.get(1..)?;
        let (timestamp_delta, ts_bytes) = read_varlong(after_attributes)?;
        let (offset_delta, _) = read_varint(after_attributes.get(ts_bytes..)?)?;
        out.push((
            header.base_timestamp_ms.saturating_add(timestamp_delta),
            i64::from(offset_delta),
        ));
        position = record_start + record.len();
    }
    Some(out)
}

/// What `patch_header` does with the header's max timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderTimestamp {
    /// Leave it (the broker's own control batches).
    Unchanged,
    /// CreateTime: the largest record timestamp, timestamp-type bit cleared (Kafka's
    /// `setMaxTimestamp(CREATE_TIME, max)`).
    CreateTime(i64),
    /// LogAppendTime: the append time, timestamp-type bit set.
    LogAppendTime(i64),
}

/// Rewrites the broker-owned fields of a header copy. When the max timestamp or timestamp-type
/// bit change (they lie inside the CRC range) the CRC is recomputed over the patched header
/// and the untouched body; in the common case (CreateTime, producer's max timestamp right) the
/// CRC is left alone.
pub fn patch_header(
    header: &mut [u8; HEADER_BYTES],
    body: &[u8],
    base_offset: i64,
    leader_epoch: i32,
    timestamp: HeaderTimestamp,
) {
    header[BASE_OFFSET_OFFSET..BASE_OFFSET_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
    header[PARTITION_LEADER_EPOCH_OFFSET..PARTITION_LEADER_EPOCH_OFFSET + 4]
        .copy_from_slice(&leader_epoch.to_be_bytes());
    let old_attributes = i16::from_be_bytes(read_array(header, ATTRIBUTES_OFFSET));
    let (attributes, max_timestamp_ms) = match timestamp {
        HeaderTimestamp::Unchanged => return,
        HeaderTimestamp::CreateTime(max) => (old_attributes & !TIMESTAMP_TYPE_FLAG, max),
        HeaderTimestamp::LogAppendTime(now) => (old_attributes | TIMESTAMP_TYPE_FLAG, now),
    };
    if attributes == old_attributes && read_i64(header, MAX_TIMESTAMP_OFFSET) == max_timestamp_ms {
        return;
    }
    header[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
    header[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8]
        .copy_from_slice(&max_timestamp_ms.to_be_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&header[ATTRIBUTES_OFFSET..]), body);
    header[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

/// A COMMIT/ABORT control batch as the transaction coordinator has the leader write it: one
/// record whose key is (version 0, marker type) and value (version 0, coordinator epoch).
pub fn build_control_batch(
    producer_id: i64,
    producer_epoch: i16,
    marker_type: i16,
    coordinator_epoch: i32,
    timestamp_ms: i64,
) -> Vec<u8> {
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&marker_type.to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    let mut record = vec![0u8]; // attributes
    write_varlong(&mut record, 0); // timestamp delta
    write_varlong(&mut record, 0); // offset delta
    write_varlong(&mut record, key.len() as i64);
    record.extend_from_slice(&key);
    write_varlong(&mut record, value.len() as i64);
    record.extend_from_slice(&value);
    write_varlong(&mut record, 0); // headers
    let mut batch = vec![0u8; HEADER_BYTES];
    write_varlong(&mut batch, record.len() as i64);
    batch.extend_from_slice(&record);
    let length = (batch.len() - LOG_OVERHEAD_BYTES) as i32;
    let attributes = TRANSACTIONAL_FLAG | CONTROL_FLAG;
    put(&mut batch, LENGTH_OFFSET, &length.to_be_bytes());
    put(
        &mut batch,
        PARTITION_LEADER_EPOCH_OFFSET,
        &(-1i32).to_be_bytes(),
    );
    batch[MAGIC_OFFSET] = MAGIC_V2 as u8;
    put(&mut batch, ATTRIBUTES_OFFSET, &attributes.to_be_bytes());
    put(&mut batch, LAST_OFFSET_DELTA_OFFSET, &0i32.to_be_bytes());
    put(
        &mut batch,
        BASE_TIMESTAMP_OFFSET,
        &timestamp_ms.to_be_bytes(),
    );
    put(
        &mut batch,
        MAX_TIMESTAMP_OFFSET,
        &timestamp_ms.to_be_bytes(),
    );
    put(&mut batch, PRODUCER_ID_OFFSET, &producer_id.to_be_bytes());
    put(
        &mut batch,
        PRODUCER_EPOCH_OFFSET,
        &producer_epoch.to_be_bytes(),
    );
    put(&mut batch, BASE_SEQUENCE_OFFSET, &(-1i32).to_be_bytes());
    put(&mut batch, RECORDS_COUNT_OFFSET, &1i32.to_be_bytes());
    let crc = compute_crc(&batch);
    put(&mut batch, CRC_OFFSET, &crc.to_be_bytes());
    batch
}

fn put(batch: &mut [u8], at: usize, bytes: &[u8]) {
    batch[at..at + bytes.len()].copy_from_slice(bytes);
}

/// Zigzag varlong, as inside v2 records.
pub fn write_varlong(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push((zigzag as u8) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

/// The (marker type, coordinator epoch) of a control batch's first record, if well formed.
pub fn parse_control_record(batch: &[u8]) -> Option<(i16, i32)> {
    let (length, length_bytes) = read_varint(batch.get(HEADER_BYTES..)?)?;
    let start = HEADER_BYTES + length_bytes;
    let record = batch.get(start..start.checked_add(usize::try_from(length).ok()?)?)?;
    let mut position = 1; // attributes
    let (_, used) = read_varlong(record.get(position..)?)?;
    position += used;
    let (_, used) = read_varint(record.get(position..)?)?;
    position += used;
    let (key_length, used) = read_varint(record.get(position..)?)?;
    position += used;
    let key = record.get(position..position.checked_add(usize::try_from(key_length).ok()?)?)?;
    position += key.len();
    let marker_type = i16::from_be_bytes(read_array(key, 2));
    let (value_length, used) = read_varint(record.get(position..)?)?;
    position += used;
    let value = record.get(position..position.checked_add(usize::try_from(value_length).ok()?)?)?;
    let coordinator_epoch = i32::from_be_bytes(read_array(value, 2));
    (key.len() >= 4).then_some((marker_type, coordinator_epoch))
}

/// Zigzag varint as used inside v2 records.
pub fn read_varint(bytes: &[u8]) -> Option<(i32, usize)> {
    let (value, used) = read_unsigned_varint(bytes, 5)?;
    let value = u32::try_from(value).ok()?;
    Some((((value >> 1) as i32) ^ -((value & 1) as i32), used))
}

pub fn read_varlong(bytes: &[u8]) -> Option<(i64, usize)> {
    let (value, used) = read_unsigned_varint(bytes, 10)?;
    Some((((value >> 1) as i64) ^ -((value & 1) as i64), used))
}

fn read_unsigned_varint(bytes: &[u8], max_bytes: usize) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for (index, byte) in bytes.iter().take(max_bytes).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            return Some((value, index + 1));
        }
    }
    None
}

fn read_array<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(slice) = bytes.get(at..at + N) {
        out.copy_from_slice(slice);
    }
    out
}

fn read_i32(bytes: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(read_array(bytes, at))
}

fn read_i64(bytes: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(read_array(bytes, at))
}

/// Builders for tests and benchmarks in this crate and others: valid v2 batches.
pub mod testing {
    use super::*;

    /// One record as it appears in a batch, before framing.
    pub struct TestRecord<'a> {
        pub timestamp_delta: i64,
        pub key: Option<&'a [u8]>,
        pub value: Option<&'a [u8]>,
    }

    /// An uncompressed, valid v2 batch with base offset 0.
    pub fn build_batch(base_timestamp_ms: i64, records: &[TestRecord<'_>]) -> Vec<u8> {
        let mut body = Vec::new();
        let mut max_delta = 0i64;
        for (offset_delta, record) in records.iter().enumerate() {
            max_delta = max_delta.max(record.timestamp_delta);
            let mut inner = vec![0u8]; // attributes
            write_varlong(&mut inner, record.timestamp_delta);
            write_varlong(&mut inner, offset_delta as i64);
            write_bytes(&mut inner, record.key);
            write_bytes(&mut inner, record.value);
            write_varlong(&mut inner, 0); // headers
            write_varlong(&mut body, inner.len() as i64);
            body.extend_from_slice(&inner);
        }
        let mut batch = vec![0u8; HEADER_BYTES];
        let length = (HEADER_BYTES - LOG_OVERHEAD_BYTES + body.len()) as i32;
        batch[LENGTH_OFFSET..LENGTH_OFFSET + 4].copy_from_slice(&length.to_be_bytes());
        batch[PARTITION_LEADER_EPOCH_OFFSET..PARTITION_LEADER_EPOCH_OFFSET + 4]
            .copy_from_slice(&(-1i32).to_be_bytes());
        batch[MAGIC_OFFSET] = MAGIC_V2 as u8;
        let last_delta = records.len() as i32 - 1;
        batch[LAST_OFFSET_DELTA_OFFSET..LAST_OFFSET_DELTA_OFFSET + 4]
            .copy_from_slice(&last_delta.to_be_bytes());
        batch[BASE_TIMESTAMP_OFFSET..BASE_TIMESTAMP_OFFSET + 8]
            .copy_from_slice(&base_timestamp_ms.to_be_bytes());
        batch[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8]
            .copy_from_slice(&(base_timestamp_ms + max_delta).to_be_bytes());
        batch[PRODUCER_ID_OFFSET..PRODUCER_ID_OFFSET + 8].copy_from_slice(&(-1i64).to_be_bytes());
        batch[PRODUCER_EPOCH_OFFSET..PRODUCER_EPOCH_OFFSET + 2]
            .copy_from_slice(&(-1i16).to_be_bytes());
        batch[BASE_SEQUENCE_OFFSET..BASE_SEQUENCE_OFFSET + 4]
            .copy_from_slice(&(-1i32).to_be_bytes());
        batch[RECORDS_COUNT_OFFSET..RECORDS_COUNT_OFFSET + 4]
            .copy_from_slice(&(records.len() as i32).to_be_bytes());
        batch.extend_from_slice(&body);
        fix_crc(&mut batch);
        batch
    }

    /// A batch of `count` records of `value_bytes` each, timestamps `base_timestamp_ms + i`.
    pub fn build_simple_batch(base_timestamp_ms: i64, count: usize, value_bytes: usize) -> Vec<u8> {
        let value = vec![b'x'; value_bytes];
        let records: Vec<TestRecord<'_>> = (0..count)
            .map(|i| TestRecord {
                timestamp_delta: i as i64,
                key: None,
                value: Some(&value),
            })
            .collect();
        build_batch(base_timestamp_ms, &records)
    }

    /// Marks a built batch as coming from an idempotent (optionally transactional) producer.
    pub fn with_producer(
        mut batch: Vec<u8>,
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
        transactional: bool,
    ) -> Vec<u8> {
        batch[PRODUCER_ID_OFFSET..PRODUCER_ID_OFFSET + 8]
            .copy_from_slice(&producer_id.to_be_bytes());
        batch[PRODUCER_EPOCH_OFFSET..PRODUCER_EPOCH_OFFSET + 2]
            .copy_from_slice(&producer_epoch.to_be_bytes());
        batch[BASE_SEQUENCE_OFFSET..BASE_SEQUENCE_OFFSET + 4]
            .copy_from_slice(&base_sequence.to_be_bytes());
        if transactional {
            batch[ATTRIBUTES_OFFSET + 1] |= TRANSACTIONAL_FLAG as u8;
        }
        fix_crc(&mut batch);
        batch
    }

    pub fn fix_crc(batch: &mut [u8]) {
        let crc = compute_crc(batch);
        batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    }

    fn write_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
        match bytes {
            None => write_varlong(out, -1),
            Some(bytes) => {
                write_varlong(out, bytes.len() as i64);
                out.extend_from_slice(bytes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn built_batch_parses_and_validates() {
        let batch = build_simple_batch(1000, 3, 10);
        let header = BatchHeader::parse(&batch).unwrap();
        assert_eq!(header.size_bytes, batch.len());
        assert_eq!(header.records_count, 3);
        assert_eq!(header.max_timestamp_ms, 1002);
        validate_batch(&batch, &header, true).unwrap();
        let timestamps = record_timestamps(&batch, &header).unwrap();
        assert_eq!(timestamps, vec![(1000, 0), (1001, 1), (1002, 2)]);
    }

    #[test]
    fn corrupt_crc_is_rejected() {
        let mut batch = build_simple_batch(0, 2, 10);
        let last = batch.len() - 1;
        batch[last] ^= 0xff;
        let header = BatchHeader::parse(&batch).unwrap();
        let err = validate_batch(&batch, &header, true).unwrap_err();
        assert!(matches!(err, LogError::CorruptRecord(_)), "{err:?}");
        assert_eq!(err.kafka_error_code(), 2);
    }

    #[test]
    fn bad_magic_is_invalid_record() {
        let mut batch = build_simple_batch(0, 1, 1);
        batch[MAGIC_OFFSET] = 1;
        let err = BatchHeader::parse(&batch).unwrap_err();
        assert!(matches!(err, LogError::InvalidRecord(_)), "{err:?}");
        assert_eq!(err.kafka_error_code(), 87);
    }

    #[test]
    fn truncated_header_and_short_length_are_corrupt() {
        let batch = build_simple_batch(0, 1, 1);
        assert!(matches!(
            BatchHeader::parse(&batch[..30]),
            Err(LogError::CorruptRecord(_))
        ));
        let mut short = batch.clone();
        short[LENGTH_OFFSET..LENGTH_OFFSET + 4].copy_from_slice(&10i32.to_be_bytes());
        assert!(matches!(
            BatchHeader::parse(&short),
            Err(LogError::CorruptRecord(_))
        ));
    }

    #[test]
    fn last_offset_delta_must_match_count() {
        let mut batch = build_simple_batch(0, 3, 1);
        batch[LAST_OFFSET_DELTA_OFFSET..LAST_OFFSET_DELTA_OFFSET + 4]
            .copy_from_slice(&5i32.to_be_bytes());
        fix_crc(&mut batch);
        let header = BatchHeader::parse(&batch).unwrap();
        assert!(matches!(
            validate_batch(&batch, &header, true),
            Err(LogError::InvalidRecord(_))
        ));
        // Recovery (not from a producer) only checks the CRC.
        validate_batch(&batch, &header, false).unwrap();
    }

    #[test]
    fn control_batches_from_producers_are_rejected() {
        let mut batch = build_simple_batch(0, 1, 1);
        batch[ATTRIBUTES_OFFSET + 1] |= CONTROL_FLAG as u8;
        fix_crc(&mut batch);
        let header = BatchHeader::parse(&batch).unwrap();
        assert!(matches!(
            validate_batch(&batch, &header, true),
            Err(LogError::InvalidRecord(_))
        ));
    }

    #[test]
    fn patch_header_sets_log_append_time_and_keeps_crc_valid() {
        let batch = build_simple_batch(100, 2, 5);
        let mut header: [u8; HEADER_BYTES] = batch[..HEADER_BYTES].try_into().unwrap();
        patch_header(
            &mut header,
            &batch[HEADER_BYTES..],
            42,
            7,
            HeaderTimestamp::LogAppendTime(9999),
        );
        let mut patched = header.to_vec();
        patched.extend_from_slice(&batch[HEADER_BYTES..]);
        let parsed = BatchHeader::parse(&patched).unwrap();
        assert_eq!(parsed.base_offset, 42);
        assert_eq!(parsed.partition_leader_epoch, 7);
        assert_eq!(parsed.max_timestamp_ms, 9999);
        assert!(parsed.is_log_append_time());
        validate_batch(&patched, &parsed, true).unwrap();
    }

    #[test]
    fn control_batches_validate_and_parse_back() {
        let batch = build_control_batch(77, 3, 1, 9, 12345);
        let header = BatchHeader::parse(&batch).unwrap();
        assert!(header.is_control() && header.is_transactional());
        assert_eq!((header.producer_id, header.producer_epoch), (77, 3));
        validate_batch(&batch, &header, false).unwrap();
        assert_eq!(parse_control_record(&batch), Some((1, 9)));
        assert_eq!(parse_control_record(&batch[..HEADER_BYTES + 3]), None);
    }

    #[test]
    fn varints_round_trip() {
        for value in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            300,
            -300,
            i32::MAX as i64,
            i32::MIN as i64,
        ] {
            let mut out = Vec::new();
            write_varlong(&mut out, value);
            assert_eq!(read_varlong(&out), Some((value, out.len())));
            assert_eq!(read_varint(&out), Some((value as i32, out.len())));
        }
        assert_eq!(read_varint(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), None);
    }
}
