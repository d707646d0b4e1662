//! `__transaction_state` records, byte-exact with Kafka's `TransactionLogKey` (v0: the
//! transactional id) and `TransactionLogValue` (v0 written; v0 and the flexible v1 of KIP-890
//! read). A record's key and value each start with their schema version as an int16.

use bytes::{BufMut, Bytes, BytesMut};

use crate::state::TxnState;

/// Most partitions a stored value may list before decoding refuses it (a bound on allocation
/// from a length read off disk; the coordinator's own limit is lower).
const MAX_STORED_PARTITIONS: usize = 1_000_000;

/// A topic and the partition ids of it in a transaction, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPartitions {
    pub topic: String,
    pub partitions: Vec<i32>,
}

/// The stored state of one transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnLogValue {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: Vec<TopicPartitions>,
    pub last_update_timestamp_ms: i64,
    /// -1 when no transaction is ongoing (Empty), as Kafka writes it.
    pub start_timestamp_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record ends in the middle of a field")]
    Truncated,
    #[error("unknown {what} version {version}")]
    UnknownVersion { what: &'static str, version: i16 },
    #[error("invalid field: {0}")]
    Invalid(String),
}

pub fn encode_key(transactional_id: &str) -> Bytes {
    let mut buffer = BytesMut::with_capacity(4 + transactional_id.len());
    buffer.put_i16(0);
    put_string(&mut buffer, transactional_id);
    buffer.freeze()
}

/// Value v0 (non-flexible), which every Kafka version since 0.11 reads.
pub fn encode_value(value: &TxnLogValue) -> Bytes {
    let mut buffer = BytesMut::with_capacity(64);
    buffer.put_i16(0);
    buffer.put_i64(value.producer_id);
    buffer.put_i16(value.producer_epoch);
    buffer.put_i32(value.timeout_ms);
    buffer.put_i8(value.state.id());
    put_len(&mut buffer, value.partitions.len());
    for topic in &value.partitions {
        put_string(&mut buffer, &topic.topic);
        put_len(&mut buffer, topic.partitions.len());
        for partition in &topic.partitions {
            buffer.put_i32(*partition);
        }
    }
    buffer.put_i64(value.last_update_timestamp_ms);
    buffer.put_i64(value.start_timestamp_ms);
    buffer.freeze()
}

pub fn decode_key(bytes: &[u8]) -> Result<String, RecordError> {
    let mut reader = Reader { bytes, position: 0 };
    let version = reader.i16()?;
    match version {
        0 => reader.string(),
        // Key v1 would be flexible; Kafka has never written one, but read it the same way.
        1 => reader.compact_string(),
        _ => Err(RecordError::UnknownVersion {
            what: "TransactionLogKey",
            version,
        }),
    }
}

pub fn decode_value(bytes: &[u8]) -> Result<TxnLogValue, RecordError> {
    let mut reader = Reader { bytes, position: 0 };
    let version = reader.i16()?;
    let flexible = match version {
        0 => false,
        1 => true,
        _ => {
            return Err(RecordError::UnknownVersion {
                what: "TransactionLogValue",
                version,
            })
        }
    };
    let producer_id = reader.i64()?;
    let producer_epoch = reader.i16()?;
    let timeout_ms = reader.i32()?;
    let state_id = reader.i8()?;
    let state = TxnState::from_id(state_id)
        .ok_or_else(|| RecordError::Invalid(format!("transaction state {state_id}")))?;
    let topic_count = reader.array_len(flexible)?;
    let mut partitions = Vec::new();
    for _ in 0..topic_count.unwrap_or(0) {
        let topic = if flexible {
            reader.compact_string()?
        } else {
            reader.string()?
        };
        let count = reader.array_len(flexible)?.unwrap_or(0);
        let mut ids = Vec::with_capacity(count.min(reader.remaining() / 4));
        for _ in 0..count {
            ids.push(reader.i32()?);
        }
        if flexible {
            reader.skip_tagged_fields()?;
        }
        partitions.push(TopicPartitions {
            topic,
            partitions: ids,
        });
    }
    let last_update_timestamp_ms = reader.i64()?;
    let start_timestamp_ms = reader.i64()?;
    // v1's tagged fields (previous/next producer id, client transaction version) are ignored:
    // Quill writes v0 and does not run TV2's per-transaction epoch bump.
    Ok(TxnLogValue {
        producer_id,
        producer_epoch,
        timeout_ms,
        state,
        partitions,
        last_update_timestamp_ms,
        start_timestamp_ms,
    })
}

fn put_string(buffer: &mut BytesMut, text: &str) {
    let length = i16::try_from(text.len()).unwrap_or(i16::MAX);
    buffer.put_i16(length);
    buffer.put_slice(text.as_bytes().get(..length as usize).unwrap_or_default());
}

fn put_len(buffer: &mut BytesMut, length: usize) {
    buffer.put_i32(i32::try_from(length).unwrap_or(i32::MAX));
}

struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl Reader<'_> {
    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.position)
    }

    fn take(&mut self, length: usize) -> Result<&[u8], RecordError> {
        let end = self
            .position
            .checked_add(length)
            .ok_or(RecordError::Truncated)?;
        let slice = self
            .bytes
            .get(self.position..end)
            .ok_or(RecordError::Truncated)?;
        self.position = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RecordError> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    fn i8(&mut self) -> Result<i8, RecordError> {
        Ok(i8::from_be_bytes(self.array::<1>()?))
    }
    fn i16(&mut self) -> Result<i16, RecordError> {
        Ok(i16::from_be_bytes(self.array::<2>()?))
    }
    fn i32(&mut self) -> Result<i32, RecordError> {
        Ok(i32::from_be_bytes(self.array::<4>()?))
    }
    fn i64(&mut self) -> Result<i64, RecordError> {
        Ok(i64::from_be_bytes(self.array::<8>()?))
    }

    fn unsigned_varint(&mut self) -> Result<u32, RecordError> {
        let mut value: u32 = 0;
        for index in 0..5 {
            let [byte] = self.array::<1>()?;
            value |= u32::from(byte & 0x7f) << (index * 7);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(RecordError::Invalid("varint longer than 5 bytes".into()))
    }

    fn utf8(&mut self, length: usize) -> Result<String, RecordError> {
        let bytes = self.take(length)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| RecordError::Invalid("string is not UTF-8".into()))
    }

    fn string(&mut self) -> Result<String, RecordError> {
        let length = self.i16()?;
        let length = usize::try_from(length)
            .map_err(|_| RecordError::Invalid(format!("string length {length}")))?;
        self.utf8(length)
    }

    fn compact_string(&mut self) -> Result<String, RecordError> {
        let length_plus_one = self.unsigned_varint()?;
        let length = usize::try_from(
            length_plus_one
                .checked_sub(1)
                .ok_or_else(|| RecordError::Invalid("null string".into()))?,
        )
        .map_err(|_| RecordError::Truncated)?;
        self.utf8(length)
    }

    /// An array length; `None` for a null array.
    fn array_len(&mut self, flexible: bool) -> Result<Option<usize>, RecordError> {
        let length: i64 = if flexible {
            i64::from(self.unsigned_varint()?) - 1
        } else {
            i64::from(self.i32()?)
        };
        if length < 0 {
            return Ok(None);
        }
        let length = usize::try_from(length).map_err(|_| RecordError::Truncated)?;
        if length > MAX_STORED_PARTITIONS || length > self.remaining() {
            return Err(RecordError::Invalid(format!("array of {length} elements")));
        }
        Ok(Some(length))
    }

    fn skip_tagged_fields(&mut self) -> Result<(), RecordError> {
        let count = self.unsigned_varint()?;
        for _ in 0..count {
            self.unsigned_varint()?;
            let size = self.unsigned_varint()?;
            self.take(usize::try_from(size).map_err(|_| RecordError::Truncated)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TxnLogValue {
        TxnLogValue {
            producer_id: 4000,
            producer_epoch: 3,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: vec![
                TopicPartitions {
                    topic: "out".into(),
                    partitions: vec![0, 2],
                },
                TopicPartitions {
                    topic: "__consumer_offsets".into(),
                    partitions: vec![7],
                },
            ],
            last_update_timestamp_ms: 1_700_000_000_123,
            start_timestamp_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn key_is_kafkas_layout() {
        assert_eq!(&encode_key("tx")[..], &[0, 0, 0, 2, b't', b'x']);
        assert_eq!(decode_key(&encode_key("tx-1")).unwrap(), "tx-1");
    }

    #[test]
    fn value_v0_layout_and_round_trip() {
        let value = sample();
        let bytes = encode_value(&value);
        // version, pid, epoch, timeout, state
        assert_eq!(&bytes[..2], &[0, 0]);
        assert_eq!(&bytes[2..10], &4000i64.to_be_bytes());
        assert_eq!(&bytes[10..12], &3i16.to_be_bytes());
        assert_eq!(&bytes[12..16], &60_000i32.to_be_bytes());
        assert_eq!(bytes[16], 1); // Ongoing
        assert_eq!(&bytes[17..21], &2i32.to_be_bytes()); // two topics
        assert_eq!(decode_value(&bytes).unwrap(), value);
    }

    #[test]
    fn reads_flexible_v1_with_tagged_fields() {
        let mut buffer = BytesMut::new();
        buffer.put_i16(1);
        buffer.put_i64(9);
        buffer.put_i16(1);
        buffer.put_i32(1000);
        buffer.put_i8(4); // CompleteCommit
        buffer.put_u8(2); // one topic
        buffer.put_u8(4); // "out"
        buffer.put_slice(b"out");
        buffer.put_u8(2); // one partition
        buffer.put_i32(5);
        buffer.put_u8(0); // topic's tagged fields
        buffer.put_i64(77);
        buffer.put_i64(70);
        buffer.put_u8(1); // one tagged field: previous producer id
        buffer.put_u8(0);
        buffer.put_u8(8);
        buffer.put_i64(8);
        let value = decode_value(&buffer).unwrap();
        assert_eq!(value.state, TxnState::CompleteCommit);
        assert_eq!(value.partitions[0].partitions, vec![5]);
        assert_eq!(value.last_update_timestamp_ms, 77);
    }

    #[test]
    fn null_partitions_and_bad_input_do_not_panic() {
        let mut bytes = encode_value(&TxnLogValue {
            partitions: vec![],
            ..sample()
        })
        .to_vec();
        bytes[17..21].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(decode_value(&bytes).unwrap().partitions.is_empty());
        let good = encode_value(&sample());
        for cut in 0..good.len() {
            assert!(decode_value(&good[..cut]).is_err());
        }
        let mut huge = good.to_vec();
        huge[17..21].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(decode_value(&huge).is_err());
        assert!(decode_value(&[0, 9]).is_err());
    }
}
