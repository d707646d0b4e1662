//! Helpers shared by the crash tests (`crash.rs`) and the SIGKILL test (`sigkill.rs`).
#![allow(dead_code)]

use std::path::Path;

use quill_log::{AppendContext, BatchHeader, GroupCommitter, Log, LogConfig};

pub fn context() -> AppendContext {
    AppendContext {
        now_ms: 0,
        leader_epoch: 0,
    }
}

pub fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 8192,
        index_interval_bytes: 512,
        ..LogConfig::default()
    }
}

pub fn open(dir: &Path) -> Log {
    Log::open(dir, config(), GroupCommitter::start().unwrap()).unwrap()
}

pub fn all_batches(log: &Log) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let read = log.read(offset, 1 << 20, i64::MAX).unwrap();
        let mut position = 0;
        while position < read.bytes.len() {
            let header = BatchHeader::parse(&read.bytes[position..]).unwrap();
            out.push((
                header.base_offset,
                read.bytes[position..position + header.size_bytes].to_vec(),
            ));
            position += header.size_bytes;
        }
        offset = read.next_offset;
    }
    out
}
