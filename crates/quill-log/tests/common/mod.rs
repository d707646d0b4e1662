#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]
//! Helpers for the cleaner tests: keyed batches, reading a whole log back record by record.

use std::path::Path;
use std::sync::{Arc, RwLock};

use quill_log::records::{
    self, BatchFields, Compression, CompressionLevels, MAX_DECOMPRESSED_BATCH_BYTES,
};
use quill_log::{
    AppendContext, BatchHeader, CleanStats, CleanerConfig, CleanupPolicy, CompactionConfig,
    GroupCommitter, Log, LogCleaner, LogConfig, Throttler,
};

pub fn context(now_ms: i64) -> AppendContext {
    AppendContext {
        now_ms,
        leader_epoch: 0,
    }
}

pub fn compact_config(segment_bytes: u64, delete_retention_ms: i64) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 256,
        cleanup_policy: CleanupPolicy::COMPACT,
        compaction: CompactionConfig {
            delete_retention_ms,
            ..CompactionConfig::default()
        },
        ..LogConfig::default()
    }
}

pub fn open(dir: &Path, config: LogConfig) -> Log {
    Log::open(dir, config, GroupCommitter::start().unwrap()).unwrap()
}

/// One record to write: key and value (`None` = tombstone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyedRecord {
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

pub fn record(key: &str, value: Option<&str>) -> KeyedRecord {
    KeyedRecord {
        key: key.as_bytes().to_vec(),
        value: value.map(|v| v.as_bytes().to_vec()),
    }
}

/// A producer batch of keyed records, in `compression`, timestamps `timestamp_ms`.
pub fn keyed_batch(
    records: &[KeyedRecord],
    timestamp_ms: i64,
    compression: Compression,
) -> Vec<u8> {
    let mut section = Vec::new();
    for (delta, record) in records.iter().enumerate() {
        records::encode_record(
            &mut section,
            0,
            delta as i32,
            Some(&record.key),
            record.value.as_deref(),
            &[],
        );
    }
    let fields = BatchFields::producer(timestamp_ms, timestamp_ms);
    records::encode_batch(
        &fields,
        records.len() as i32,
        &section,
        compression,
        CompressionLevels::default(),
    )
    .unwrap()
}

/// A record as read back: offset, key, value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadRecord {
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp_ms: i64,
}

/// Every batch header and data record from the log start to the log end.
pub fn read_all(log: &Log) -> (Vec<BatchHeader>, Vec<ReadRecord>) {
    let mut headers = Vec::new();
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    let end = log.log_end_offset();
    while offset < end {
        let result = log.read(offset, 1 << 20, end).unwrap();
        if result.bytes.is_empty() {
            break;
        }
        let bytes = &result.bytes[..];
        let mut position = 0;
        while position < bytes.len() {
            let header = BatchHeader::parse(&bytes[position..]).unwrap();
            let batch = &bytes[position..position + header.size_bytes];
            if !header.is_control() {
                records::for_each_record(batch, &header, MAX_DECOMPRESSED_BATCH_BYTES, |_, r| {
                    out.push(ReadRecord {
                        offset: header.base_offset + i64::from(r.offset_delta),
                        key: r.key.map(<[u8]>::to_vec),
                        value: r.value.map(<[u8]>::to_vec),
                        timestamp_ms: r.timestamp_ms(&header),
                    });
                    Ok(())
                })
                .unwrap();
            }
            headers.push(header);
            position += header.size_bytes;
        }
        assert!(result.next_offset > offset, "reads must advance");
        offset = result.next_offset;
    }
    (headers, out)
}

pub fn cleaner(dedupe_buffer_bytes: u64) -> LogCleaner {
    LogCleaner::new(
        CleanerConfig {
            dedupe_buffer_bytes,
            dedupe_buffer_load_factor: 0.9,
        },
        Arc::new(Throttler::new(f64::MAX)),
    )
}

/// Runs cleaning rounds until one finds nothing to do (bounded), returning the rounds' stats.
pub fn clean_fully(cleaner: &mut LogCleaner, log: &RwLock<Log>, now_ms: i64) -> Vec<CleanStats> {
    let mut rounds = Vec::new();
    for _ in 0..1000 {
        match cleaner.clean(log, now_ms).unwrap() {
            Some(stats) => rounds.push(stats),
            None => return rounds,
        }
    }
    panic!("cleaning never finished");
}
