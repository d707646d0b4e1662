//! Encoding of one metadata log entry: a batch of records applied atomically, with its index.

use serde::{Deserialize, Serialize};

use crate::{MetaError, MetadataRecord};

pub const ENTRY_FORMAT_VERSION: u32 = 1;

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEntry {
    pub version: u32,
    /// 1-based, consecutive; equals the image offset after applying the entry.
    pub index: u64,
    pub records: Vec<MetadataRecord>,
}

#[derive(Serialize)]
struct StoredEntryRef<'a> {
    version: u32,
    index: u64,
    records: &'a [MetadataRecord],
}

pub fn encode_entry(index: u64, records: &[MetadataRecord]) -> Result<Vec<u8>, MetaError> {
    serde_json::to_vec(&StoredEntryRef {
        version: ENTRY_FORMAT_VERSION,
        index,
        records,
    })
    .map_err(|error| MetaError::Corrupt(format!("cannot encode metadata entry {index}: {error}")))
}

/// Decodes a payload whose checksum already matched: failure here means the bytes are what some
/// writer wrote but this code cannot read them, which is corruption (or a newer format), not a
/// torn write.
pub fn decode_entry(payload: &[u8]) -> Result<StoredEntry, MetaError> {
    let entry: StoredEntry = serde_json::from_slice(payload)
        .map_err(|error| MetaError::Corrupt(format!("undecodable metadata entry: {error}")))?;
    if entry.version != ENTRY_FORMAT_VERSION {
        return Err(MetaError::Corrupt(format!(
            "metadata entry {} has unsupported format version {}",
            entry.index, entry.version
        )));
    }
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_version_check() {
        let records = vec![MetadataRecord::DeleteTopic {
            topic_id: uuid::Uuid::from_u128(3),
        }];
        let payload = encode_entry(9, &records).unwrap();
        let entry = decode_entry(&payload).unwrap();
        assert_eq!((entry.version, entry.index, entry.records), (1, 9, records));

        let future = br#"{"version":2,"index":1,"records":[]}"#;
        assert!(matches!(decode_entry(future), Err(MetaError::Corrupt(_))));
        assert!(matches!(decode_entry(b"{"), Err(MetaError::Corrupt(_))));
    }
}
