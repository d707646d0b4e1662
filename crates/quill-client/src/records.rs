//! Record batch codecs: building one v2 batch from producer records, and walking the batches
//! of a fetch response. A fetch response may end in a partial batch (the broker cuts at
//! `max_bytes`) and may start before the requested offset; both are handled here.

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// Batch header bytes before the records: base offset (8), length (4), leader epoch (4),
/// magic (1), crc (4), attributes (2), last offset delta (4), timestamps (16), producer id (8),
/// epoch (2), base sequence (4), record count (4).
pub const BATCH_HEADER_BYTES: usize = 61;
/// Bytes before the batch length field counts: base offset + length.
const LOG_OVERHEAD_BYTES: usize = 12;
const MAGIC_OFFSET: usize = 16;
const ATTRIBUTES_OFFSET: usize = 21;
const LAST_OFFSET_DELTA_OFFSET: usize = 23;
const PRODUCER_ID_OFFSET: usize = 43;
const TRANSACTIONAL_FLAG: i16 = 0x10;
const CONTROL_FLAG: i16 = 0x20;

/// A transaction the broker reports aborted in a read_committed fetch: its data batches, from
/// `first_offset` up to the producer's abort marker, must not be returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTransaction {
    pub producer_id: i64,
    pub first_offset: i64,
}

/// Producer identity written into each batch: all "none" until idempotence (KIP-98) is wired;
/// then the producer id/epoch come from InitProducerId and `base_sequence` per partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdentity {
    pub producer_id: i64,
    pub producer_epoch: i16,
}

impl ProducerIdentity {
    pub const NONE: ProducerIdentity = ProducerIdentity {
        producer_id: -1,
        producer_epoch: -1,
    };
}

/// A record as handed to the producer, before batching.
#[derive(Debug, Clone, Default)]
pub struct OutgoingRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    pub timestamp_ms: i64,
}

impl OutgoingRecord {
    /// Upper bound on the encoded size, for batch-size accounting.
    pub fn estimated_size_bytes(&self) -> usize {
        let header_bytes: usize = self
            .headers
            .iter()
            .map(|(name, value)| name.len() + value.as_ref().map_or(0, Bytes::len) + 10)
            .sum();
        // Length, attributes, timestamp/offset deltas, key/value lengths: at most 21 bytes.
        21 + self.key.as_ref().map_or(0, Bytes::len)
            + self.value.as_ref().map_or(0, Bytes::len)
            + header_bytes
    }
}

/// Encodes `records` as one v2 batch. `base_sequence` is -1 without idempotence.
pub fn encode_batch(
    records: &[OutgoingRecord],
    compression: Compression,
    identity: ProducerIdentity,
    base_sequence: i32,
) -> Result<Bytes, String> {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(index, record)| {
            let mut encoded = Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: identity.producer_id,
                producer_epoch: identity.producer_epoch,
                timestamp_type: TimestampType::Creation,
                offset: index as i64,
                // The encoder starts a new batch whenever `offset - sequence` changes, and writes
                // the first record's sequence as the base sequence; numbering from
                // `base_sequence` (-1 without idempotence) keeps one batch with that base.
                sequence: base_sequence.wrapping_add(index as i32),
                timestamp: record.timestamp_ms,
                key: record.key.clone(),
                value: record.value.clone(),
                headers: Default::default(),
            };
            for (name, value) in &record.headers {
                encoded
                    .headers
                    .insert(StrBytes::from_string(name.clone()), value.clone());
            }
            encoded
        })
        .collect();
    let mut buffer = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buffer,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .map_err(|error| error.to_string())?;
    Ok(buffer.freeze())
}

/// A record read back from a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedRecord {
    pub offset: i64,
    pub timestamp_ms: i64,
    pub timestamp_type: TimestampType,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// The records of a fetch response at or after `from_offset`, and the offset to fetch next
/// (past the last complete batch, control batches included).
#[derive(Debug, Default)]
pub struct DecodedFetch {
    pub records: Vec<FetchedRecord>,
    pub next_offset: i64,
}

/// `aborted` is the fetch response's aborted transactions (empty under read_uncommitted).
pub fn decode_fetched(
    mut data: Bytes,
    from_offset: i64,
    aborted: &[AbortedTransaction],
) -> Result<DecodedFetch, String> {
    let mut decoded = DecodedFetch {
        records: Vec::new(),
        next_offset: from_offset,
    };
    let mut pending_aborts: Vec<AbortedTransaction> = aborted.to_vec();
    pending_aborts.sort_by_key(|abort| std::cmp::Reverse(abort.first_offset));
    let mut aborted_producers: std::collections::HashSet<i64> = std::collections::HashSet::new();
    while data.len() >= LOG_OVERHEAD_BYTES {
        let base_offset = (&data[0..8]).get_i64();
        let batch_length = (&data[8..12]).get_i32();
        if batch_length < 0 {
            return Err(format!(
                "negative batch length {batch_length} at offset {base_offset}"
            ));
        }
        let total_length = LOG_OVERHEAD_BYTES + batch_length as usize;
        if data.len() < total_length {
            break; // The broker cut the last batch at max_bytes; fetch it again next time.
        }
        let mut batch = data.split_to(total_length);
        if total_length < BATCH_HEADER_BYTES {
            return Err(format!(
                "batch at offset {base_offset} is only {total_length} bytes"
            ));
        }
        let magic = batch[MAGIC_OFFSET];
        if magic != 2 {
            return Err(format!(
                "batch at offset {base_offset} has magic {magic}, expected 2"
            ));
        }
        let attributes = (&batch[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2]).get_i16();
        let last_offset_delta =
            (&batch[LAST_OFFSET_DELTA_OFFSET..LAST_OFFSET_DELTA_OFFSET + 4]).get_i32();
        let batch_end = base_offset
            .saturating_add(i64::from(last_offset_delta))
            .saturating_add(1);
        let producer_id = (&batch[PRODUCER_ID_OFFSET..PRODUCER_ID_OFFSET + 8]).get_i64();
        // Transactions aborted by now: those starting at or before this batch's last offset.
        while pending_aborts
            .last()
            .is_some_and(|abort| abort.first_offset < batch_end)
        {
            if let Some(abort) = pending_aborts.pop() {
                aborted_producers.insert(abort.producer_id);
            }
        }
        let control = attributes & CONTROL_FLAG != 0;
        if control {
            // The producer's marker ends its aborted transaction.
            aborted_producers.remove(&producer_id);
        }
        let aborted_batch =
            attributes & TRANSACTIONAL_FLAG != 0 && aborted_producers.contains(&producer_id);
        if batch_end <= from_offset || control || aborted_batch {
            decoded.next_offset = decoded.next_offset.max(batch_end);
            continue;
        }
        let set = RecordBatchDecoder::decode(&mut batch)
            .map_err(|error| format!("batch at offset {base_offset}: {error}"))?;
        for record in set.records {
            if record.offset < from_offset || record.control {
                continue;
            }
            decoded.records.push(FetchedRecord {
                offset: record.offset,
                timestamp_ms: record.timestamp,
                timestamp_type: record.timestamp_type,
                key: record.key,
                value: record.value,
                headers: record
                    .headers
                    .into_iter()
                    .map(|(name, value)| (name.to_string(), value))
                    .collect(),
            });
        }
        decoded.next_offset = decoded.next_offset.max(batch_end);
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing(values: &[&str]) -> Vec<OutgoingRecord> {
        values
            .iter()
            .enumerate()
            .map(|(index, value)| OutgoingRecord {
                key: Some(Bytes::from(format!("k{index}"))),
                value: Some(Bytes::from(value.to_string())),
                headers: vec![("h".into(), Some(Bytes::from_static(b"v")))],
                timestamp_ms: 1_700_000_000_000 + index as i64,
            })
            .collect()
    }

    /// Rewrites a client batch's base offset as a broker would.
    fn at_offset(batch: &Bytes, base_offset: i64) -> Bytes {
        let mut bytes = BytesMut::from(&batch[..]);
        bytes[0..8].copy_from_slice(&base_offset.to_be_bytes());
        bytes.freeze()
    }

    #[test]
    fn every_compression_round_trips() {
        for compression in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let batch = encode_batch(
                &outgoing(&["a", "bb", "ccc"]),
                compression,
                ProducerIdentity::NONE,
                -1,
            )
            .unwrap();
            let decoded = decode_fetched(batch, 0, &[]).unwrap();
            let values: Vec<_> = decoded
                .records
                .iter()
                .map(|r| r.value.clone().unwrap())
                .collect();
            assert_eq!(values, vec!["a", "bb", "ccc"], "{compression:?}");
            assert_eq!(decoded.next_offset, 3);
            assert_eq!(decoded.records[1].key.as_deref(), Some(&b"k1"[..]));
            assert_eq!(decoded.records[2].timestamp_ms, 1_700_000_000_002);
            assert_eq!(decoded.records[0].headers[0].0, "h");
        }
    }

    #[test]
    fn records_before_the_fetch_offset_are_skipped() {
        let batch = at_offset(
            &encode_batch(
                &outgoing(&["a", "b", "c"]),
                Compression::None,
                ProducerIdentity::NONE,
                -1,
            )
            .unwrap(),
            10,
        );
        let decoded = decode_fetched(batch, 11, &[]).unwrap();
        let offsets: Vec<_> = decoded.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![11, 12]);
        assert_eq!(decoded.next_offset, 13);
    }

    #[test]
    fn a_partial_trailing_batch_is_left_for_the_next_fetch() {
        let first = encode_batch(
            &outgoing(&["a"]),
            Compression::None,
            ProducerIdentity::NONE,
            -1,
        )
        .unwrap();
        let second = at_offset(&first, 1);
        let mut both = BytesMut::from(&first[..]);
        both.extend_from_slice(&second[..second.len() - 5]);
        let decoded = decode_fetched(both.freeze(), 0, &[]).unwrap();
        assert_eq!(decoded.records.len(), 1);
        assert_eq!(decoded.next_offset, 1);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut bytes = BytesMut::zeroed(80);
        bytes[8..12].copy_from_slice(&68i32.to_be_bytes());
        bytes[MAGIC_OFFSET] = 7;
        assert!(decode_fetched(bytes.freeze(), 0, &[]).is_err());
        let mut negative = BytesMut::zeroed(20);
        negative[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert!(decode_fetched(negative.freeze(), 0, &[]).is_err());
        assert!(decode_fetched(Bytes::from_static(&[1, 2, 3]), 0, &[])
            .unwrap()
            .records
            .is_empty());
    }

    /// One batch of `count` records at `base_offset`, transactional for `producer_id` when
    /// given, or a control batch (an abort marker) when `control`.
    fn raw_batch(base_offset: i64, count: usize, producer_id: Option<i64>, control: bool) -> Bytes {
        let records: Vec<Record> = (0..count)
            .map(|index| Record {
                transactional: producer_id.is_some(),
                control,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: producer_id.unwrap_or(-1),
                producer_epoch: if producer_id.is_some() { 0 } else { -1 },
                timestamp_type: TimestampType::Creation,
                offset: base_offset + index as i64,
                sequence: if producer_id.is_some() {
                    index as i32
                } else {
                    -1 + index as i32
                },
                timestamp: 1_700_000_000_000,
                // An abort marker's key: version 0, type 0 (abort).
                key: control.then(|| Bytes::from_static(&[0, 0, 0, 0])),
                value: Some(Bytes::from(format!("v{}", base_offset + index as i64))),
                headers: Default::default(),
            })
            .collect();
        let mut buffer = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buffer,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .unwrap();
        buffer.freeze()
    }

    #[test]
    fn read_committed_skips_aborted_transactions_and_markers() {
        let mut log = BytesMut::new();
        log.extend_from_slice(&raw_batch(0, 2, Some(7), false)); // aborted txn of producer 7
        log.extend_from_slice(&raw_batch(2, 1, None, false)); // plain record
        log.extend_from_slice(&raw_batch(3, 1, Some(8), false)); // committed txn of producer 8
        log.extend_from_slice(&raw_batch(4, 1, Some(7), true)); // producer 7's abort marker
        log.extend_from_slice(&raw_batch(5, 1, Some(7), false)); // producer 7's next txn
        log.extend_from_slice(&raw_batch(6, 1, Some(8), true)); // producer 8's commit marker
        let log = log.freeze();
        let aborted = [AbortedTransaction {
            producer_id: 7,
            first_offset: 0,
        }];
        let decoded = decode_fetched(log.clone(), 0, &aborted).unwrap();
        let offsets: Vec<i64> = decoded.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [2, 3, 5]);
        assert_eq!(decoded.next_offset, 7);
        // read_uncommitted: everything but the markers.
        let decoded = decode_fetched(log, 0, &[]).unwrap();
        let offsets: Vec<i64> = decoded.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [0, 1, 2, 3, 5]);
    }

    #[test]
    fn sequence_seam_numbers_records_from_the_base() {
        let identity = ProducerIdentity {
            producer_id: 9,
            producer_epoch: 1,
        };
        let batch = encode_batch(&outgoing(&["a", "b"]), Compression::None, identity, 5).unwrap();
        let info = RecordBatchDecoder::decode_batch_info(&mut batch.clone()).unwrap();
        assert_eq!(info[0].producer_id, 9);
        assert_eq!(info[0].base_sequence, 5);
        assert_eq!(info.len(), 1);
    }

    #[test]
    fn records_without_idempotence_share_one_batch() {
        let batch = encode_batch(
            &outgoing(&["a", "b", "c"]),
            Compression::None,
            ProducerIdentity::NONE,
            -1,
        )
        .unwrap();
        let info = RecordBatchDecoder::decode_batch_info(&mut batch.clone()).unwrap();
        assert_eq!(info.len(), 1);
        assert_eq!(info[0].record_count, 3);
        assert_eq!(info[0].base_sequence, -1);
        assert_eq!(info[0].producer_id, -1);
    }
}
