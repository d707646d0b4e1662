//! The coordinator's records as Kafka v2 record batches, for the broker to append to and read
//! from the `__consumer_offsets` partition logs.
//!
//! Only what the coordinator writes is supported: uncompressed batches without headers, base
//! offset 0 (the log assigns offsets), no producer id. Control batches (transaction markers) are
//! skipped when reading.

use std::collections::HashMap;

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use crate::store::StoredRecord;

const LOG_OVERHEAD_BYTES: usize = 12;
const HEADER_BYTES: usize = 61;
const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const LAST_OFFSET_DELTA_OFFSET: usize = 23;
const RECORDS_COUNT_OFFSET: usize = 57;
const MAGIC_V2: u8 = 2;
const COMPRESSION_MASK: i16 = 0x07;
const CONTROL_FLAG: i16 = 0x20;
const TRANSACTIONAL_FLAG: i16 = 0x10;
const PRODUCER_ID_OFFSET: usize = 43;
/// Control record key type of a COMMIT marker (ABORT is 0).
const CONTROL_TYPE_COMMIT: i16 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BatchError {
    #[error("corrupt batch at byte {at}: {reason}")]
    Corrupt { at: usize, reason: &'static str },
    #[error("batch at byte {0} is compressed; the coordinator reads only uncompressed batches")]
    Compressed(usize),
    #[error("a batch of {0} records or {1} bytes does not fit the v2 format")]
    TooLarge(usize, usize),
}

/// Encodes `records` as one uncompressed v2 batch with base offset 0, partition leader epoch -1
/// and every record stamped `timestamp_ms` (the broker patches the broker-owned fields on append).
pub fn encode_batch(records: &[StoredRecord], timestamp_ms: i64) -> Result<Bytes, BatchError> {
    encode_with_producer(records, timestamp_ms, None)
}

/// The producer of a transactional batch (TxnOffsetCommit records).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransactionalProducer {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

/// Like [`encode_batch`], as a transactional batch of `producer`: its records count only once
/// the producer's COMMIT marker follows in the log ([`TxnResolver`]).
pub fn encode_transactional_batch(
    records: &[StoredRecord],
    timestamp_ms: i64,
    producer: TransactionalProducer,
) -> Result<Bytes, BatchError> {
    encode_with_producer(records, timestamp_ms, Some(producer))
}

fn encode_with_producer(
    records: &[StoredRecord],
    timestamp_ms: i64,
    producer: Option<TransactionalProducer>,
) -> Result<Bytes, BatchError> {
    let mut body = BytesMut::new();
    for (offset_delta, record) in records.iter().enumerate() {
        let mut inner = BytesMut::new();
        inner.put_u8(0); // record attributes
        put_varlong(&mut inner, 0); // timestamp delta
        put_varlong(&mut inner, offset_delta as i64);
        put_varbytes(&mut inner, Some(&record.key));
        put_varbytes(&mut inner, record.value.as_deref());
        put_varlong(&mut inner, 0); // header count
        put_varlong(&mut body, inner.len() as i64);
        body.put_slice(&inner);
    }
    let too_large = || BatchError::TooLarge(records.len(), body.len());
    let count = i32::try_from(records.len()).map_err(|_| too_large())?;
    let batch_length =
        i32::try_from(HEADER_BYTES - LOG_OVERHEAD_BYTES + body.len()).map_err(|_| too_large())?;
    if count == 0 {
        return Err(BatchError::Corrupt {
            at: 0,
            reason: "a batch needs at least one record",
        });
    }
    let mut batch = BytesMut::with_capacity(HEADER_BYTES + body.len());
    batch.put_i64(0); // base offset
    batch.put_i32(batch_length);
    batch.put_i32(-1); // partition leader epoch
    batch.put_u8(MAGIC_V2);
    batch.put_u32(0); // CRC, filled below
                      // Attributes: uncompressed, create time, transactional only for a producer's batch.
    batch.put_i16(if producer.is_some() {
        TRANSACTIONAL_FLAG
    } else {
        0
    });
    batch.put_i32(count - 1); // last offset delta
    batch.put_i64(timestamp_ms); // base timestamp
    batch.put_i64(timestamp_ms); // max timestamp
    batch.put_i64(producer.map_or(-1, |p| p.producer_id));
    batch.put_i16(producer.map_or(-1, |p| p.producer_epoch));
    batch.put_i32(producer.map_or(-1, |p| p.base_sequence));
    batch.put_i32(count);
    batch.put_slice(&body);
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(batch.freeze())
}

/// Decodes a sequence of v2 batches (as read back from a log) into their records, in order.
/// Verifies each batch's CRC; a trailing partial batch is an error (the caller reads whole
/// batches). Records without a key are skipped, as Kafka's loader does.
pub fn decode_batches(bytes: &[u8]) -> Result<Vec<StoredRecord>, BatchError> {
    let mut records = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let header = rest.get(..HEADER_BYTES).ok_or(BatchError::Corrupt {
            at,
            reason: "truncated batch header",
        })?;
        let batch_length = i32::from_be_bytes(array(header, 8));
        let size = usize::try_from(batch_length)
            .ok()
            .and_then(|length| length.checked_add(LOG_OVERHEAD_BYTES))
            .filter(|size| *size >= HEADER_BYTES)
            .ok_or(BatchError::Corrupt {
                at,
                reason: "invalid batch length",
            })?;
        let batch = rest.get(..size).ok_or(BatchError::Corrupt {
            at,
            reason: "batch runs past the end of the data",
        })?;
        decode_one_batch(batch, at, &mut records)?;
        at += size;
    }
    Ok(records)
}

/// Reads a `__consumer_offsets` log as Kafka's loader does: records of a transactional batch
/// take effect where their producer's COMMIT marker stands and are dropped at its ABORT;
/// everything else in log order. Fed whole batches chunk after chunk; what is still open at the
/// end is [`TxnResolver::into_pending`] (transactions the coordinator will end later).
#[derive(Debug, Default)]
pub struct TxnResolver {
    open: HashMap<i64, Vec<StoredRecord>>,
}

impl TxnResolver {
    /// The records that count, in log order, from `bytes` (whole v2 batches).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<StoredRecord>, BatchError> {
        let mut visible = Vec::new();
        let mut at = 0usize;
        while at < bytes.len() {
            let rest = &bytes[at..];
            let header = rest.get(..HEADER_BYTES).ok_or(BatchError::Corrupt {
                at,
                reason: "truncated batch header",
            })?;
            let size = usize::try_from(i32::from_be_bytes(array(header, 8)))
                .ok()
                .and_then(|length| length.checked_add(LOG_OVERHEAD_BYTES))
                .filter(|size| *size >= HEADER_BYTES)
                .ok_or(BatchError::Corrupt {
                    at,
                    reason: "invalid batch length",
                })?;
            let batch = rest.get(..size).ok_or(BatchError::Corrupt {
                at,
                reason: "batch runs past the end of the data",
            })?;
            let attributes = i16::from_be_bytes(array(batch, ATTRIBUTES_OFFSET));
            let producer_id = i64::from_be_bytes(array(batch, PRODUCER_ID_OFFSET));
            if attributes & CONTROL_FLAG != 0 {
                let committed = control_type(batch, at)? == Some(CONTROL_TYPE_COMMIT);
                if let Some(records) = self.open.remove(&producer_id) {
                    if committed {
                        visible.extend(records);
                    }
                }
            } else if attributes & TRANSACTIONAL_FLAG != 0 {
                let mut records = Vec::new();
                decode_one_batch(batch, at, &mut records)?;
                self.open.entry(producer_id).or_default().extend(records);
            } else {
                decode_one_batch(batch, at, &mut visible)?;
            }
            at += size;
        }
        Ok(visible)
    }

    /// Records of transactions with no marker yet, per producer id, in log order.
    pub fn into_pending(self) -> HashMap<i64, Vec<StoredRecord>> {
        self.open
    }
}

/// The control type of a control batch's record (ABORT 0, COMMIT 1), CRC-checked; `None` when
/// the batch holds no record.
fn control_type(batch: &[u8], at: usize) -> Result<Option<i16>, BatchError> {
    let corrupt = |reason| BatchError::Corrupt { at, reason };
    let stored_crc = u32::from_be_bytes(array(batch, CRC_OFFSET));
    if crc32c::crc32c(batch.get(ATTRIBUTES_OFFSET..).unwrap_or_default()) != stored_crc {
        return Err(corrupt("CRC mismatch"));
    }
    let mut cursor = batch.get(HEADER_BYTES..).unwrap_or_default();
    let Some(length) = read_varlong(&mut cursor) else {
        return Ok(None);
    };
    let length = usize::try_from(length).map_err(|_| corrupt("negative record length"))?;
    let record = cursor
        .get(..length)
        .ok_or(corrupt("record runs past the batch"))?;
    let key = decode_record(record)
        .ok_or(corrupt("malformed control record"))?
        .key;
    Ok(key
        .get(2..4)
        .map(|bytes| i16::from_be_bytes([bytes[0], bytes[1]])))
}

/// The offset after the last whole batch in `bytes` (base offset + last offset delta + 1), for
/// a reader walking a log with [`decode_batches`]; `None` when `bytes` holds no whole batch.
pub fn next_offset_after(bytes: &[u8]) -> Option<i64> {
    let mut at = 0usize;
    let mut next = None;
    while let Some(header) = bytes.get(at..).and_then(|rest| rest.get(..HEADER_BYTES)) {
        let batch_length = usize::try_from(i32::from_be_bytes(array(header, 8))).ok()?;
        let size = batch_length.checked_add(LOG_OVERHEAD_BYTES)?;
        if size < HEADER_BYTES || bytes.len() - at < size {
            break;
        }
        let base_offset = i64::from_be_bytes(array(header, 0));
        let last_offset_delta =
            i64::from(i32::from_be_bytes(array(header, LAST_OFFSET_DELTA_OFFSET)));
        next = Some(
            base_offset
                .saturating_add(last_offset_delta)
                .saturating_add(1),
        );
        at += size;
    }
    next
}

fn decode_one_batch(
    batch: &[u8],
    at: usize,
    out: &mut Vec<StoredRecord>,
) -> Result<(), BatchError> {
    let corrupt = |reason| BatchError::Corrupt { at, reason };
    if batch.get(MAGIC_OFFSET) != Some(&MAGIC_V2) {
        return Err(corrupt("not a v2 batch"));
    }
    let stored_crc = u32::from_be_bytes(array(batch, CRC_OFFSET));
    if crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]) != stored_crc {
        return Err(corrupt("CRC mismatch"));
    }
    let attributes = i16::from_be_bytes(array(batch, ATTRIBUTES_OFFSET));
    if attributes & CONTROL_FLAG != 0 {
        return Ok(());
    }
    if attributes & COMPRESSION_MASK != 0 {
        return Err(BatchError::Compressed(at));
    }
    let count = i32::from_be_bytes(array(batch, RECORDS_COUNT_OFFSET));
    let count = usize::try_from(count).map_err(|_| corrupt("negative record count"))?;
    let mut cursor = &batch[HEADER_BYTES..];
    for _ in 0..count {
        let length = read_varlong(&mut cursor).ok_or(corrupt("bad record length"))?;
        let length = usize::try_from(length).map_err(|_| corrupt("negative record length"))?;
        let record = cursor
            .get(..length)
            .ok_or(corrupt("record runs past the batch"))?;
        cursor = &cursor[length..];
        if let Some(record) = decode_record(record) {
            out.push(record);
        } else {
            return Err(corrupt("malformed record"));
        }
    }
    if !cursor.is_empty() {
        return Err(corrupt("bytes after the last record"));
    }
    Ok(())
}

/// One record's key and value; `None` when malformed. Keyless records decode to an empty key,
/// which the loader rejects like any other undecodable key.
fn decode_record(mut record: &[u8]) -> Option<StoredRecord> {
    let (_attributes, rest) = record.split_first()?;
    record = rest;
    read_varlong(&mut record)?; // timestamp delta
    read_varlong(&mut record)?; // offset delta
    let key = read_varbytes(&mut record)?;
    let value = read_varbytes(&mut record)?;
    let headers = read_varlong(&mut record)?;
    for _ in 0..headers {
        read_varbytes(&mut record)?;
        read_varbytes(&mut record)?;
    }
    if !record.is_empty() {
        return None;
    }
    Some(StoredRecord {
        key: key.unwrap_or_default(),
        value,
    })
}

fn array<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(slice) = bytes.get(at..at + N) {
        out.copy_from_slice(slice);
    }
    out
}

fn put_varlong(out: &mut BytesMut, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.put_u8((zigzag as u8 & 0x7f) | 0x80);
        zigzag >>= 7;
    }
    out.put_u8(zigzag as u8);
}

fn put_varbytes(out: &mut BytesMut, value: Option<&[u8]>) {
    match value {
        Some(value) => {
            put_varlong(out, value.len() as i64);
            out.put_slice(value);
        }
        None => put_varlong(out, -1),
    }
}

fn read_varlong(bytes: &mut &[u8]) -> Option<i64> {
    let mut value = 0u64;
    for index in 0..10 {
        let (byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            return Some(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    None
}

fn read_varbytes(bytes: &mut &[u8]) -> Option<Option<Bytes>> {
    let length = read_varlong(bytes)?;
    if length == -1 {
        return Some(None);
    }
    let length = usize::try_from(length).ok()?;
    let value = bytes.get(..length)?;
    *bytes = &bytes[length..];
    Some(Some(Bytes::copy_from_slice(value)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn producer(producer_id: i64) -> TransactionalProducer {
        TransactionalProducer {
            producer_id,
            producer_epoch: 0,
            base_sequence: 0,
        }
    }

    /// A COMMIT/ABORT marker of `producer_id` as the log writes it.
    fn marker(producer_id: i64, commit: bool) -> Vec<u8> {
        let key = [0u8, 0, 0, u8::from(commit)];
        let control = StoredRecord {
            key: Bytes::copy_from_slice(&key),
            value: Some(Bytes::from_static(&[0, 0, 0, 0, 0, 0])),
        };
        let mut batch = encode_transactional_batch(&[control], 1, producer(producer_id))
            .unwrap()
            .to_vec();
        batch[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2]
            .copy_from_slice(&(CONTROL_FLAG | TRANSACTIONAL_FLAG).to_be_bytes());
        let crc = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
        batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        batch
    }

    #[test]
    fn resolver_applies_transactions_at_their_marker() {
        let plain = encode_batch(&[record(b"a", Some(b"1"))], 1).unwrap();
        let txn_7 =
            encode_transactional_batch(&[record(b"a", Some(b"7"))], 1, producer(7)).unwrap();
        let txn_8 =
            encode_transactional_batch(&[record(b"b", Some(b"8"))], 1, producer(8)).unwrap();
        let txn_9 =
            encode_transactional_batch(&[record(b"c", Some(b"9"))], 1, producer(9)).unwrap();
        let later = encode_batch(&[record(b"d", Some(b"2"))], 1).unwrap();
        let mut log = Vec::new();
        for part in [&plain[..], &txn_7, &txn_8, &txn_9, &later] {
            log.extend_from_slice(part);
        }
        let mut resolver = TxnResolver::default();
        // Fed in two chunks, as a loader reading 1 MiB at a time would.
        let mut visible = resolver.feed(&log).unwrap();
        let mut tail = marker(8, false);
        tail.extend(marker(7, true));
        visible.extend(resolver.feed(&tail).unwrap());
        let keys: Vec<&[u8]> = visible.iter().map(|r| &r.key[..]).collect();
        assert_eq!(keys, vec![&b"a"[..], b"d", b"a"]);
        assert_eq!(visible[2].value.as_deref(), Some(&b"7"[..]));
        let pending = resolver.into_pending();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[&9][0].key, Bytes::from_static(b"c"));
        // decode_batches still skips markers and reads every data batch.
        assert_eq!(decode_batches(&log).unwrap().len(), 5);
    }

    fn record(key: &'static [u8], value: Option<&'static [u8]>) -> StoredRecord {
        StoredRecord {
            key: Bytes::from_static(key),
            value: value.map(Bytes::from_static),
        }
    }

    #[test]
    fn batch_passes_the_logs_validation_and_round_trips() {
        let records = vec![record(b"k1", Some(b"v1")), record(b"k2", None)];
        let batch = encode_batch(&records, 1234).unwrap();
        let header = quill_log::validate_producer_batch(&batch, 1 << 20).unwrap();
        assert_eq!(header.records_count, 2);
        assert_eq!(header.last_offset_delta, 1);
        assert_eq!(header.base_timestamp_ms, 1234);
        let twice = [batch.to_vec(), batch.to_vec()].concat();
        assert_eq!(
            decode_batches(&twice).unwrap(),
            [records.clone(), records].concat()
        );
    }

    #[test]
    fn next_offset_after_walks_whole_batches() {
        let records = vec![record(b"a", None), record(b"b", None), record(b"c", None)];
        let mut first = encode_batch(&records, 0).unwrap().to_vec();
        first[..8].copy_from_slice(&10i64.to_be_bytes());
        let second = encode_batch(&records[..1], 0).unwrap().to_vec();
        let mut both = first.clone();
        both.extend_from_slice(&second);
        both[first.len()..first.len() + 8].copy_from_slice(&13i64.to_be_bytes());
        assert_eq!(next_offset_after(&first), Some(13));
        assert_eq!(next_offset_after(&both), Some(14));
        assert_eq!(next_offset_after(&both[..both.len() - 1]), Some(13));
        assert_eq!(next_offset_after(&[]), None);
    }

    #[test]
    fn corruption_is_detected() {
        let batch = encode_batch(&[record(b"k", Some(b"v"))], 0).unwrap();
        let mut flipped = batch.to_vec();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(decode_batches(&flipped).is_err());
        for cut in 1..batch.len() {
            assert!(decode_batches(&batch[..cut]).is_err());
        }
        assert!(encode_batch(&[], 0).is_err());
    }

    #[test]
    fn control_batches_are_skipped() {
        let mut batch = encode_batch(&[record(b"k", Some(b"v"))], 0)
            .unwrap()
            .to_vec();
        batch[ATTRIBUTES_OFFSET + 1] |= CONTROL_FLAG as u8;
        let crc = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
        batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(decode_batches(&batch).unwrap(), vec![]);
    }

    proptest! {
        #[test]
        fn batches_round_trip(
            raw in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..40),
                 proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300))),
                1..20),
            timestamp_ms in any::<i64>(),
        ) {
            let records: Vec<StoredRecord> = raw
                .into_iter()
                .map(|(key, value)| StoredRecord { key: Bytes::from(key), value: value.map(Bytes::from) })
                .collect();
            let batch = encode_batch(&records, timestamp_ms).unwrap();
            prop_assert_eq!(decode_batches(&batch).unwrap(), records);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_batches(&bytes);
        }
    }
}
