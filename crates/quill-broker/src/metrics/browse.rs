//! The console's message browser (`/console/topics/<name>/messages`): a partition's records
//! from an offset, from a timestamp, or the latest N, read through the partition's own read
//! path (never above the high watermark, like a read_uncommitted consumer; control batches are
//! not shown) and decoded with quill-log's record codec.
//!
//! Bounded whatever the log holds: at most [`MAX_BROWSE_RECORDS`] records, at most
//! [`MAX_BROWSE_READ_BYTES`] of batches read per page, and at most [`MAX_SHOWN_BYTES`] of each
//! key, value and header kept (the rest is only counted); decompression is streamed and runs on
//! the blocking pool.

use std::sync::Arc;

use quill_log::records::{for_each_record, MAX_DECOMPRESSED_BATCH_BYTES};
use quill_log::BatchHeader;

use crate::partitions::Partition;

/// Records on one page.
pub const MAX_BROWSE_RECORDS: usize = 100;
pub const DEFAULT_BROWSE_RECORDS: usize = 20;
/// Batch bytes read for one page (a page of huge batches shows fewer records).
pub const MAX_BROWSE_READ_BYTES: usize = 8 * 1024 * 1024;
/// Bytes of one key, value or header value kept for display.
pub const MAX_SHOWN_BYTES: usize = 4096;
const READ_CHUNK_BYTES: usize = 1024 * 1024;

/// Where a page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The last `limit` records below the high watermark.
    Latest,
    Offset(i64),
    /// The first record whose timestamp is at or after this (ms since the epoch).
    Timestamp(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrowseQuery {
    pub partition: i32,
    pub start: Start,
    pub limit: usize,
}

/// Parses `partition=P&offset=O` / `&timestamp=T` / neither (latest) `&limit=N`. Empty values
/// (an empty form field) count as absent; anything else malformed is refused with a sentence.
pub fn parse_query(query: Option<&str>) -> Result<BrowseQuery, String> {
    let mut parsed = BrowseQuery {
        partition: 0,
        start: Start::Latest,
        limit: DEFAULT_BROWSE_RECORDS,
    };
    let mut offset = None;
    let mut timestamp = None;
    for pair in query
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
    {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if value.is_empty() {
            continue;
        }
        let number = |what: &str| -> Result<i64, String> {
            value
                .parse::<i64>()
                .map_err(|_| format!("{what} must be a whole number"))
        };
        match name {
            "partition" => {
                parsed.partition = i32::try_from(number("partition")?)
                    .map_err(|_| "partition is out of range".to_string())?
            }
            "offset" => offset = Some(number("offset")?),
            "timestamp" => timestamp = Some(number("timestamp")?),
            "limit" => {
                let limit = number("limit")?;
                if !(1..=MAX_BROWSE_RECORDS as i64).contains(&limit) {
                    return Err(format!("limit must be between 1 and {MAX_BROWSE_RECORDS}"));
                }
                parsed.limit = limit as usize;
            }
            // Unknown parameters are ignored, as a form may carry a submit button's name.
            _ => {}
        }
    }
    parsed.start = match (offset, timestamp) {
        (Some(_), Some(_)) => return Err("give an offset or a timestamp, not both".to_string()),
        (Some(offset), None) => Start::Offset(offset),
        (None, Some(timestamp)) => Start::Timestamp(timestamp),
        (None, None) => Start::Latest,
    };
    Ok(parsed)
}

/// At most [`MAX_SHOWN_BYTES`] of a field, and its full length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub bytes: Vec<u8>,
    pub full_len: usize,
}

impl Shown {
    fn of(bytes: &[u8]) -> Shown {
        Shown {
            bytes: bytes[..bytes.len().min(MAX_SHOWN_BYTES)].to_vec(),
            full_len: bytes.len(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub offset: i64,
    pub timestamp_ms: i64,
    pub key: Option<Shown>,
    pub value: Option<Shown>,
    pub headers: Vec<(Shown, Option<Shown>)>,
}

/// What a page shows: the records, where the read started, and the partition's bounds.
#[derive(Debug)]
pub struct Browsed {
    pub start_offset: i64,
    pub messages: Vec<Message>,
    pub log_start_offset: i64,
    pub high_watermark: i64,
    /// The offset after the last record read (where "next" continues).
    pub next_offset: i64,
}

/// Reads one page of `partition`.
pub async fn browse(partition: &Arc<Partition>, query: &BrowseQuery) -> Result<Browsed, String> {
    let offsets = partition.offsets();
    let high_watermark = offsets.high_watermark;
    let log_start_offset = offsets.log_start_offset;
    let start_offset = match query.start {
        Start::Latest => (high_watermark - query.limit as i64).max(log_start_offset),
        Start::Offset(offset) => offset.clamp(log_start_offset, high_watermark),
        Start::Timestamp(timestamp) => partition
            .offset_for_timestamp(timestamp)
            .await
            .map_err(|error| format!("cannot look up the timestamp: {error}"))?
            .map_or(high_watermark, |found| found.offset),
    };
    let mut messages = Vec::new();
    let mut offset = start_offset;
    let mut budget = MAX_BROWSE_READ_BYTES;
    while messages.len() < query.limit && offset < high_watermark && budget > 0 {
        let read = partition
            .read(offset, READ_CHUNK_BYTES.min(budget), true)
            .await
            .map_err(|error| format!("cannot read the partition: {error}"))?;
        if read.bytes.is_empty() {
            break;
        }
        budget = budget.saturating_sub(read.bytes.len());
        let wanted = query.limit - messages.len();
        let from = offset;
        let bytes = read.bytes.clone();
        let decoded = tokio::task::spawn_blocking(move || decode(&bytes, from, wanted))
            .await
            .map_err(|error| format!("cannot decode the records: {error}"))??;
        messages.extend(decoded);
        if read.next_offset <= offset {
            break;
        }
        offset = read.next_offset;
    }
    let next_offset = messages.last().map_or(offset, |last| last.offset + 1);
    Ok(Browsed {
        start_offset,
        messages,
        log_start_offset,
        high_watermark,
        next_offset,
    })
}

/// Decodes up to `wanted` records at or after `from` out of whole batches (control batches
/// skipped).
pub fn decode(mut bytes: &[u8], from: i64, wanted: usize) -> Result<Vec<Message>, String> {
    let mut messages = Vec::new();
    while !bytes.is_empty() && messages.len() < wanted {
        let header = BatchHeader::parse(bytes).map_err(|error| error.to_string())?;
        let batch = bytes
            .get(..header.size_bytes)
            .ok_or_else(|| "a batch is cut short".to_string())?;
        bytes = &bytes[header.size_bytes..];
        if header.is_control() || header.last_offset() < from {
            continue;
        }
        for_each_record(batch, &header, MAX_DECOMPRESSED_BATCH_BYTES, |_, record| {
            let offset = header.base_offset + i64::from(record.offset_delta);
            if offset >= from && messages.len() < wanted {
                messages.push(Message {
                    offset,
                    timestamp_ms: record.timestamp_ms(&header),
                    key: record.key.map(Shown::of),
                    value: record.value.map(Shown::of),
                    headers: record
                        .headers()
                        .map(|h| (Shown::of(h.key), h.value.map(Shown::of)))
                        .collect(),
                });
            }
            Ok(())
        })
        .map_err(|error| error.to_string())?;
    }
    Ok(messages)
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS.mmm UTC` (proleptic Gregorian).
pub fn utc_timestamp(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03} UTC",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use quill_log::testing::{build_batch, TestRecord};

    #[test]
    fn queries_parse_with_defaults_and_refusals() {
        assert_eq!(
            parse_query(None),
            Ok(BrowseQuery {
                partition: 0,
                start: Start::Latest,
                limit: DEFAULT_BROWSE_RECORDS
            })
        );
        assert_eq!(
            parse_query(Some("partition=2&offset=15&timestamp=&limit=5&show=")),
            Ok(BrowseQuery {
                partition: 2,
                start: Start::Offset(15),
                limit: 5
            })
        );
        assert_eq!(
            parse_query(Some("timestamp=1700000000000")).map(|q| q.start),
            Ok(Start::Timestamp(1_700_000_000_000))
        );
        assert!(parse_query(Some("offset=1&timestamp=2")).is_err());
        assert!(parse_query(Some("limit=0")).is_err());
        assert!(parse_query(Some("limit=101")).is_err());
        assert!(parse_query(Some("offset=abc")).is_err());
        assert!(parse_query(Some("partition=99999999999")).is_err());
    }

    #[test]
    fn decode_keeps_records_from_the_offset_and_bounds_each_field() {
        let big = vec![b'x'; MAX_SHOWN_BYTES + 10];
        let mut batch = build_batch(
            1000,
            &[
                TestRecord {
                    timestamp_delta: 0,
                    key: Some(b"k0"),
                    value: Some(b"v0"),
                },
                TestRecord {
                    timestamp_delta: 5,
                    key: None,
                    value: Some(&big),
                },
                TestRecord {
                    timestamp_delta: 7,
                    key: Some(b"k2"),
                    value: None,
                },
            ],
        );
        // Base offset 10.
        batch[..8].copy_from_slice(&10i64.to_be_bytes());
        let messages = decode(&batch, 11, 5).unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].offset, 11);
        assert_eq!(messages[0].timestamp_ms, 1005);
        assert_eq!(messages[0].key, None);
        let value = messages[0].value.as_ref().unwrap();
        assert_eq!(
            (value.bytes.len(), value.full_len),
            (MAX_SHOWN_BYTES, MAX_SHOWN_BYTES + 10)
        );
        assert_eq!(messages[1].value, None);
        assert_eq!(decode(&batch, 10, 1).unwrap().len(), 1);
        assert!(decode(&batch[..30], 10, 1).is_err());
    }

    #[test]
    fn timestamps_in_utc() {
        assert_eq!(utc_timestamp(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(
            utc_timestamp(1_700_000_000_123),
            "2023-11-14 22:13:20.123 UTC"
        );
        assert_eq!(
            utc_timestamp(951_782_400_000),
            "2000-02-29 00:00:00.000 UTC"
        );
        assert_eq!(utc_timestamp(-1), "1969-12-31 23:59:59.999 UTC");
    }
}
