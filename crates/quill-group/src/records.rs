//! Keys and values of the records in `__consumer_offsets`, byte for byte as Kafka writes them,
//! so tools that read the topic (Burrow, the console consumer's offsets formatter) understand
//! ours and we can read Kafka's.
//!
//! Layouts (Kafka's `group-coordinator` module, `OffsetCommitKey.json`, `OffsetCommitValue.json`,
//! `GroupMetadataKey.json`, `GroupMetadataValue.json`): every key and value starts with an int16
//! schema version. Non-flexible versions encode strings as int16 length + UTF-8, nullable
//! strings with length -1 for null, bytes as int32 length + bytes, arrays as int32 count; all
//! big-endian. Version 4 of both values is "flexible" (compact lengths as unsigned varints of
//! length + 1, tagged fields): we read it and write the classic versions, which Kafka 4.x still
//! reads.
//!
//! - key v0/v1: offset commit (group, topic, partition); key v2: group metadata (group); keys
//!   v3+ are the new consumer-group protocol's records, which this coordinator ignores.
//! - offset value v0: offset, metadata, commit ts; v1: + expire ts; v2: no expire ts;
//!   v3: + leader epoch after the offset. We write v3, or v1 when the commit has an explicit
//!   retention (OffsetCommit v2–v4 `retention_time_ms`), as Kafka does.
//! - group value v0: protocol type, generation, protocol, leader, members (member id, client
//!   id, host, session timeout, subscription, assignment); v1: + rebalance timeout per member;
//!   v2: + current state timestamp; v3: + group instance id per member. We write v3.

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

pub const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
pub const GROUP_METADATA_KEY_VERSION: i16 = 2;
pub const OFFSET_COMMIT_VALUE_VERSION: i16 = 3;
pub const OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRY: i16 = 1;
pub const GROUP_METADATA_VALUE_VERSION: i16 = 3;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordError {
    #[error("record truncated: needed {needed} more bytes at byte {at}")]
    Truncated { at: usize, needed: usize },
    #[error("invalid length {length} at byte {at}")]
    InvalidLength { at: usize, length: i64 },
    #[error("string at byte {0} is not UTF-8")]
    NotUtf8(usize),
    #[error("null where the schema requires a value at byte {0}")]
    UnexpectedNull(usize),
    #[error("unsupported {what} version {version}")]
    UnsupportedVersion { what: &'static str, version: i16 },
    #[error("{0} trailing bytes after the record")]
    TrailingBytes(usize),
    #[error("string of {0} bytes does not fit an int16 length")]
    StringTooLong(usize),
}

/// A decoded `__consumer_offsets` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKey {
    OffsetCommit {
        group: String,
        topic: String,
        partition: i32,
    },
    GroupMetadata {
        group: String,
    },
    /// A record type of Kafka's newer consumer-group protocol (key version ≥ 3), skipped.
    Other(i16),
}

impl RecordKey {
    pub fn group(&self) -> Option<&str> {
        match self {
            RecordKey::OffsetCommit { group, .. } | RecordKey::GroupMetadata { group } => {
                Some(group)
            }
            RecordKey::Other(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitValue {
    pub offset: i64,
    /// -1 when unknown (values before v3 have none).
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
    /// Only in v1 values: an explicit expiry from the commit's retention time.
    pub expire_timestamp_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadataValue {
    /// Empty for groups created by simple consumers' commits.
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// -1 when unknown (values before v2).
    pub current_state_timestamp_ms: i64,
    pub members: Vec<MemberMetadataValue>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadataValue {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// v0 values have none: the session timeout stands in, as in Kafka.
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    /// The member's metadata for the group's selected protocol.
    pub subscription: Bytes,
    pub assignment: Bytes,
}

// ---------------------------------------------------------------------------------------------
// Encoding

pub fn encode_offset_commit_key(
    group: &str,
    topic: &str,
    partition: i32,
) -> Result<Bytes, RecordError> {
    let mut out = BytesMut::with_capacity(2 + 2 + group.len() + 2 + topic.len() + 4);
    out.put_i16(OFFSET_COMMIT_KEY_VERSION);
    put_string(&mut out, group)?;
    put_string(&mut out, topic)?;
    out.put_i32(partition);
    Ok(out.freeze())
}

pub fn encode_group_metadata_key(group: &str) -> Result<Bytes, RecordError> {
    let mut out = BytesMut::with_capacity(4 + group.len());
    out.put_i16(GROUP_METADATA_KEY_VERSION);
    put_string(&mut out, group)?;
    Ok(out.freeze())
}

pub fn encode_offset_commit_value(value: &OffsetCommitValue) -> Result<Bytes, RecordError> {
    let mut out = BytesMut::with_capacity(32 + value.metadata.len());
    match value.expire_timestamp_ms {
        Some(expire_timestamp_ms) => {
            out.put_i16(OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRY);
            out.put_i64(value.offset);
            put_string(&mut out, &value.metadata)?;
            out.put_i64(value.commit_timestamp_ms);
            out.put_i64(expire_timestamp_ms);
        }
        None => {
            out.put_i16(OFFSET_COMMIT_VALUE_VERSION);
            out.put_i64(value.offset);
            out.put_i32(value.leader_epoch);
            put_string(&mut out, &value.metadata)?;
            out.put_i64(value.commit_timestamp_ms);
        }
    }
    Ok(out.freeze())
}

pub fn encode_group_metadata_value(value: &GroupMetadataValue) -> Result<Bytes, RecordError> {
    let members_bytes: usize = value
        .members
        .iter()
        .map(|m| {
            64 + m.member_id.len()
                + m.client_id.len()
                + m.client_host.len()
                + m.subscription.len()
                + m.assignment.len()
        })
        .sum();
    let mut out = BytesMut::with_capacity(64 + value.protocol_type.len() + members_bytes);
    out.put_i16(GROUP_METADATA_VALUE_VERSION);
    put_string(&mut out, &value.protocol_type)?;
    out.put_i32(value.generation);
    put_nullable_string(&mut out, value.protocol.as_deref())?;
    put_nullable_string(&mut out, value.leader.as_deref())?;
    out.put_i64(value.current_state_timestamp_ms);
    put_count(&mut out, value.members.len())?;
    for member in &value.members {
        put_string(&mut out, &member.member_id)?;
        put_nullable_string(&mut out, member.group_instance_id.as_deref())?;
        put_string(&mut out, &member.client_id)?;
        put_string(&mut out, &member.client_host)?;
        out.put_i32(member.rebalance_timeout_ms);
        out.put_i32(member.session_timeout_ms);
        put_bytes(&mut out, &member.subscription)?;
        put_bytes(&mut out, &member.assignment)?;
    }
    Ok(out.freeze())
}

fn put_string(out: &mut BytesMut, value: &str) -> Result<(), RecordError> {
    let length = i16::try_from(value.len()).map_err(|_| RecordError::StringTooLong(value.len()))?;
    out.put_i16(length);
    out.put_slice(value.as_bytes());
    Ok(())
}

fn put_nullable_string(out: &mut BytesMut, value: Option<&str>) -> Result<(), RecordError> {
    match value {
        Some(value) => put_string(out, value),
        None => {
            out.put_i16(-1);
            Ok(())
        }
    }
}

fn put_bytes(out: &mut BytesMut, value: &[u8]) -> Result<(), RecordError> {
    let length = i32::try_from(value.len()).map_err(|_| RecordError::InvalidLength {
        at: out.len(),
        length: value.len() as i64,
    })?;
    out.put_i32(length);
    out.put_slice(value);
    Ok(())
}

fn put_count(out: &mut BytesMut, count: usize) -> Result<(), RecordError> {
    let count = i32::try_from(count).map_err(|_| RecordError::InvalidLength {
        at: out.len(),
        length: count as i64,
    })?;
    out.put_i32(count);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Decoding

pub fn decode_key(bytes: &[u8]) -> Result<RecordKey, RecordError> {
    let mut reader = Reader::new(bytes);
    let version = reader.i16()?;
    let key = match version {
        0 | 1 => RecordKey::OffsetCommit {
            group: reader.string()?,
            topic: reader.string()?,
            partition: reader.i32()?,
        },
        2 => RecordKey::GroupMetadata {
            group: reader.string()?,
        },
        // Newer record types carry their own schemas; their bytes are not ours to check.
        other if other > 2 => return Ok(RecordKey::Other(other)),
        other => {
            return Err(RecordError::UnsupportedVersion {
                what: "key",
                version: other,
            })
        }
    };
    reader.finish()?;
    Ok(key)
}

pub fn decode_offset_commit_value(bytes: &[u8]) -> Result<OffsetCommitValue, RecordError> {
    let mut reader = Reader::new(bytes);
    let version = reader.i16()?;
    if !(0..=4).contains(&version) {
        return Err(RecordError::UnsupportedVersion {
            what: "offset commit value",
            version,
        });
    }
    reader.flexible = version >= 4;
    let offset = reader.i64()?;
    let leader_epoch = if version >= 3 { reader.i32()? } else { -1 };
    let metadata = reader.string()?;
    let commit_timestamp_ms = reader.i64()?;
    let expire_timestamp_ms = if version == 1 {
        Some(reader.i64()?)
    } else {
        None
    };
    reader.skip_tagged_fields()?;
    reader.finish()?;
    Ok(OffsetCommitValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
        expire_timestamp_ms,
    })
}

pub fn decode_group_metadata_value(bytes: &[u8]) -> Result<GroupMetadataValue, RecordError> {
    let mut reader = Reader::new(bytes);
    let version = reader.i16()?;
    if !(0..=4).contains(&version) {
        return Err(RecordError::UnsupportedVersion {
            what: "group metadata value",
            version,
        });
    }
    reader.flexible = version >= 4;
    let protocol_type = reader.string()?;
    let generation = reader.i32()?;
    let protocol = reader.nullable_string()?;
    let leader = reader.nullable_string()?;
    let current_state_timestamp_ms = if version >= 2 { reader.i64()? } else { -1 };
    let count = reader.count()?;
    // Each member takes at least 20 bytes, so a count the remaining bytes cannot hold is corrupt;
    // this also bounds the allocation below by the record's size.
    let mut members = Vec::with_capacity(count.min(reader.remaining() / 20));
    for _ in 0..count {
        let member_id = reader.string()?;
        let group_instance_id = if version >= 3 {
            reader.nullable_string()?
        } else {
            None
        };
        let client_id = reader.string()?;
        let client_host = reader.string()?;
        let rebalance_timeout_ms = if version >= 1 {
            Some(reader.i32()?)
        } else {
            None
        };
        let session_timeout_ms = reader.i32()?;
        let subscription = reader.bytes()?;
        let assignment = reader.bytes()?;
        reader.skip_tagged_fields()?;
        members.push(MemberMetadataValue {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms: rebalance_timeout_ms.unwrap_or(session_timeout_ms),
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    reader.skip_tagged_fields()?;
    reader.finish()?;
    Ok(GroupMetadataValue {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp_ms,
        members,
    })
}

/// A bounds-checked big-endian cursor: every read checks the remaining length first.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    flexible: bool,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader {
            bytes,
            at: 0,
            flexible: false,
        }
    }

    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.at)
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8], RecordError> {
        let end = self
            .at
            .checked_add(count)
            .filter(|end| *end <= self.bytes.len());
        let Some(end) = end else {
            return Err(RecordError::Truncated {
                at: self.at,
                needed: count - self.remaining().min(count),
            });
        };
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RecordError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn i16(&mut self) -> Result<i16, RecordError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    fn i32(&mut self) -> Result<i32, RecordError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, RecordError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    fn unsigned_varint(&mut self) -> Result<u64, RecordError> {
        let mut value = 0u64;
        for shift in (0..35).step_by(7) {
            let [byte] = self.array::<1>()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(RecordError::InvalidLength {
            at: self.at,
            length: -1,
        })
    }

    /// The length of a string/bytes/array field; `None` for null.
    fn length(&mut self, wide: bool) -> Result<Option<usize>, RecordError> {
        let at = self.at;
        let length = if self.flexible {
            i64::try_from(self.unsigned_varint()?).unwrap_or(i64::MAX) - 1
        } else if wide {
            i64::from(self.i32()?)
        } else {
            i64::from(self.i16()?)
        };
        match length {
            -1 => Ok(None),
            length if length < -1 => Err(RecordError::InvalidLength { at, length }),
            length => usize::try_from(length)
                .map(Some)
                .map_err(|_| RecordError::InvalidLength { at, length }),
        }
    }

    fn nullable_string(&mut self) -> Result<Option<String>, RecordError> {
        let Some(length) = self.length(false)? else {
            return Ok(None);
        };
        let at = self.at;
        let raw = self.take(length)?;
        std::str::from_utf8(raw)
            .map(|text| Some(text.to_owned()))
            .map_err(|_| RecordError::NotUtf8(at))
    }

    fn string(&mut self) -> Result<String, RecordError> {
        let at = self.at;
        self.nullable_string()?
            .ok_or(RecordError::UnexpectedNull(at))
    }

    fn bytes(&mut self) -> Result<Bytes, RecordError> {
        let at = self.at;
        let length = self.length(true)?.ok_or(RecordError::UnexpectedNull(at))?;
        Ok(Bytes::copy_from_slice(self.take(length)?))
    }

    fn count(&mut self) -> Result<usize, RecordError> {
        let at = self.at;
        self.length(true)?.ok_or(RecordError::UnexpectedNull(at))
    }

    fn skip_tagged_fields(&mut self) -> Result<(), RecordError> {
        if !self.flexible {
            return Ok(());
        }
        let count = self.unsigned_varint()?;
        for _ in 0..count {
            let _tag = self.unsigned_varint()?;
            let size = self.unsigned_varint()?;
            let size = usize::try_from(size).map_err(|_| RecordError::InvalidLength {
                at: self.at,
                length: -1,
            })?;
            self.take(size)?;
        }
        Ok(())
    }

    fn finish(&self) -> Result<(), RecordError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(RecordError::TrailingBytes(extra)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn offset_commit_key_bytes() {
        let key = encode_offset_commit_key("g", "ab", 5).unwrap();
        // version 1 | "g" | "ab" | partition 5
        assert_eq!(
            hex(&key),
            "0001".to_owned() + "000167" + "00026162" + "00000005"
        );
        assert_eq!(
            decode_key(&key).unwrap(),
            RecordKey::OffsetCommit {
                group: "g".into(),
                topic: "ab".into(),
                partition: 5
            }
        );
        // Version 0 keys (Kafka < 0.10) have the same layout.
        let mut v0 = key.to_vec();
        v0[1] = 0;
        assert!(matches!(
            decode_key(&v0).unwrap(),
            RecordKey::OffsetCommit { .. }
        ));
    }

    #[test]
    fn group_metadata_key_bytes() {
        let key = encode_group_metadata_key("grp").unwrap();
        assert_eq!(hex(&key), "0002".to_owned() + "0003677270");
        assert_eq!(
            decode_key(&key).unwrap(),
            RecordKey::GroupMetadata {
                group: "grp".into()
            }
        );
        assert_eq!(decode_key(&[0, 3, 1, 2]).unwrap(), RecordKey::Other(3));
    }

    #[test]
    fn offset_commit_value_v3_bytes() {
        let value = OffsetCommitValue {
            offset: 42,
            leader_epoch: 7,
            metadata: "m".into(),
            commit_timestamp_ms: 1000,
            expire_timestamp_ms: None,
        };
        let bytes = encode_offset_commit_value(&value).unwrap();
        let expected = "0003".to_owned()
            + "000000000000002a" // offset 42
            + "00000007" // leader epoch 7
            + "00016d" // "m"
            + "00000000000003e8"; // commit timestamp 1000
        assert_eq!(hex(&bytes), expected);
        assert_eq!(decode_offset_commit_value(&bytes).unwrap(), value);
    }

    #[test]
    fn offset_commit_value_v1_with_expiry_bytes() {
        let value = OffsetCommitValue {
            offset: 1,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: 2,
            expire_timestamp_ms: Some(3),
        };
        let bytes = encode_offset_commit_value(&value).unwrap();
        let expected = "0001".to_owned()
            + "0000000000000001"
            + "0000"
            + "0000000000000002"
            + "0000000000000003";
        assert_eq!(hex(&bytes), expected);
        assert_eq!(decode_offset_commit_value(&bytes).unwrap(), value);
    }

    #[test]
    fn offset_commit_value_old_and_flexible_versions_decode() {
        // v0: offset, metadata, commit timestamp.
        let v0 = [
            &[0u8, 0][..],
            &9i64.to_be_bytes(),
            &[0, 2, b'h', b'i'],
            &5i64.to_be_bytes(),
        ]
        .concat();
        let decoded = decode_offset_commit_value(&v0).unwrap();
        assert_eq!((decoded.offset, decoded.leader_epoch), (9, -1));
        assert_eq!(decoded.metadata, "hi");
        // v2 is v0's layout under a new number.
        let mut v2 = v0.clone();
        v2[1] = 2;
        assert_eq!(
            decode_offset_commit_value(&v2).unwrap().commit_timestamp_ms,
            5
        );
        // v4: compact string (length + 1 as varint) and an empty tagged-field section, plus
        // one unknown tagged field that must be skipped.
        let v4 = [
            &[0u8, 4][..],
            &9i64.to_be_bytes(),
            &3i32.to_be_bytes(),
            &[3, b'h', b'i'],
            &5i64.to_be_bytes(),
            &[1, 0, 2, 0xaa, 0xbb],
        ]
        .concat();
        let decoded = decode_offset_commit_value(&v4).unwrap();
        assert_eq!((decoded.offset, decoded.leader_epoch), (9, 3));
        assert_eq!(decoded.metadata, "hi");
    }

    fn sample_group() -> GroupMetadataValue {
        GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 3,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            current_state_timestamp_ms: 77,
            members: vec![MemberMetadataValue {
                member_id: "m1".into(),
                group_instance_id: Some("i".into()),
                client_id: "c".into(),
                client_host: "/h".into(),
                rebalance_timeout_ms: 300,
                session_timeout_ms: 100,
                subscription: Bytes::from_static(&[1, 2]),
                assignment: Bytes::from_static(&[3]),
            }],
        }
    }

    #[test]
    fn group_metadata_value_v3_bytes() {
        let bytes = encode_group_metadata_value(&sample_group()).unwrap();
        let expected = "0003".to_owned()
            + "0008" + &hex(b"consumer")
            + "00000003" // generation
            + "0005" + &hex(b"range")
            + "0002" + &hex(b"m1") // leader
            + "000000000000004d" // state timestamp 77
            + "00000001" // one member
            + "0002" + &hex(b"m1")
            + "000169" // instance id "i"
            + "000163" // client id "c"
            + "00022f68" // host "/h"
            + "0000012c" // rebalance timeout 300
            + "00000064" // session timeout 100
            + "000000020102" // subscription
            + "0000000103"; // assignment
        assert_eq!(hex(&bytes), expected);
        assert_eq!(decode_group_metadata_value(&bytes).unwrap(), sample_group());
    }

    #[test]
    fn empty_group_value_has_null_protocol_and_leader() {
        let value = GroupMetadataValue {
            protocol_type: String::new(),
            generation: 0,
            protocol: None,
            leader: None,
            current_state_timestamp_ms: 5,
            members: vec![],
        };
        let bytes = encode_group_metadata_value(&value).unwrap();
        let expected = "0003".to_owned()
            + "0000"
            + "00000000"
            + "ffff"
            + "ffff"
            + "0000000000000005"
            + "00000000";
        assert_eq!(hex(&bytes), expected);
        assert_eq!(decode_group_metadata_value(&bytes).unwrap(), value);
    }

    #[test]
    fn group_metadata_value_v0_uses_session_timeout_as_rebalance_timeout() {
        let v0 = [
            &[0u8, 0][..],
            &[0, 1, b'x'],
            &1i32.to_be_bytes(),
            &[0, 1, b'p'],
            &[0, 1, b'a'],
            &1i32.to_be_bytes(),
            &[0, 1, b'a'],
            &[0, 1, b'c'],
            &[0, 1, b'h'],
            &500i32.to_be_bytes(),
            &0i32.to_be_bytes(),
            &(-1i32).to_be_bytes(),
        ]
        .concat();
        // A null assignment is a schema violation: bytes are not nullable.
        assert!(matches!(
            decode_group_metadata_value(&v0),
            Err(RecordError::UnexpectedNull(_))
        ));
        let v0 = [&v0[..v0.len() - 4], &0i32.to_be_bytes()].concat();
        let decoded = decode_group_metadata_value(&v0).unwrap();
        assert_eq!(decoded.members[0].rebalance_timeout_ms, 500);
        assert_eq!(decoded.current_state_timestamp_ms, -1);
        assert_eq!(decoded.members[0].group_instance_id, None);
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        let bytes = encode_group_metadata_value(&sample_group()).unwrap();
        for cut in 0..bytes.len() {
            assert!(decode_group_metadata_value(&bytes[..cut]).is_err());
        }
        let mut huge_count = bytes.to_vec();
        // Member count → i32::MAX: must fail on truncation without allocating for it.
        let count_at = 2 + 10 + 4 + 7 + 4 + 8;
        huge_count[count_at..count_at + 4].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(decode_group_metadata_value(&huge_count).is_err());
        assert!(decode_key(&[0, 9]).is_ok());
        assert!(decode_key(&[0xff, 0xff]).is_err());
        assert!(decode_offset_commit_value(&[0, 5]).is_err());
        let mut trailing = encode_group_metadata_key("g").unwrap().to_vec();
        trailing.push(0);
        assert_eq!(decode_key(&trailing), Err(RecordError::TrailingBytes(1)));
    }

    fn arb_string() -> impl Strategy<Value = String> {
        "\\PC{0,12}"
    }

    fn arb_member() -> impl Strategy<Value = MemberMetadataValue> {
        (
            arb_string(),
            proptest::option::of(arb_string()),
            arb_string(),
            arb_string(),
            any::<i32>(),
            any::<i32>(),
            proptest::collection::vec(any::<u8>(), 0..16),
            proptest::collection::vec(any::<u8>(), 0..16),
        )
            .prop_map(
                |(
                    member_id,
                    group_instance_id,
                    client_id,
                    client_host,
                    rebalance,
                    session,
                    sub,
                    assign,
                )| {
                    MemberMetadataValue {
                        member_id,
                        group_instance_id,
                        client_id,
                        client_host,
                        rebalance_timeout_ms: rebalance,
                        session_timeout_ms: session,
                        subscription: Bytes::from(sub),
                        assignment: Bytes::from(assign),
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn offset_key_round_trips(group in arb_string(), topic in arb_string(), partition in any::<i32>()) {
            let bytes = encode_offset_commit_key(&group, &topic, partition).unwrap();
            prop_assert_eq!(decode_key(&bytes).unwrap(), RecordKey::OffsetCommit { group, topic, partition });
        }

        #[test]
        fn group_key_round_trips(group in arb_string()) {
            let bytes = encode_group_metadata_key(&group).unwrap();
            prop_assert_eq!(decode_key(&bytes).unwrap(), RecordKey::GroupMetadata { group });
        }

        #[test]
        fn offset_value_round_trips(
            offset in any::<i64>(),
            leader_epoch in any::<i32>(),
            metadata in arb_string(),
            commit_timestamp_ms in any::<i64>(),
            expire_timestamp_ms in proptest::option::of(any::<i64>()),
        ) {
            let value = OffsetCommitValue {
                offset,
                // v1 (with expiry) has no leader epoch: it reads back as -1.
                leader_epoch: if expire_timestamp_ms.is_some() { -1 } else { leader_epoch },
                metadata,
                commit_timestamp_ms,
                expire_timestamp_ms,
            };
            let bytes = encode_offset_commit_value(&value).unwrap();
            prop_assert_eq!(decode_offset_commit_value(&bytes).unwrap(), value);
        }

        #[test]
        fn group_value_round_trips(
            protocol_type in arb_string(),
            generation in any::<i32>(),
            protocol in proptest::option::of(arb_string()),
            leader in proptest::option::of(arb_string()),
            current_state_timestamp_ms in any::<i64>(),
            members in proptest::collection::vec(arb_member(), 0..4),
        ) {
            let value = GroupMetadataValue { protocol_type, generation, protocol, leader, current_state_timestamp_ms, members };
            let bytes = encode_group_metadata_value(&value).unwrap();
            prop_assert_eq!(decode_group_metadata_value(&bytes).unwrap(), value);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_key(&bytes);
            let _ = decode_offset_commit_value(&bytes);
            let _ = decode_group_metadata_value(&bytes);
        }
    }
}
