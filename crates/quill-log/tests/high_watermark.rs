#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The high watermark a log keeps for its broker (Kafka's replication-offset-checkpoint, per
//! log): recorded, monotonic, capped at the log end, lowered by truncation, written with the
//! checkpoint by maintenance and close, and read back after a restart.

use std::path::Path;
use std::sync::RwLock;

use quill_log::testing::build_simple_batch;
use quill_log::{run_maintenance, AppendContext, GroupCommitter, Log, LogConfig};

fn open(dir: &Path) -> Log {
    let config = LogConfig {
        segment_bytes: 1024,
        ..LogConfig::default()
    };
    Log::open(dir, config, GroupCommitter::start().unwrap()).unwrap()
}

fn append(log: &mut Log, records: usize) {
    let context = AppendContext {
        now_ms: 0,
        leader_epoch: 0,
    };
    log.append(&build_simple_batch(0, records, 10), context)
        .unwrap();
}

const CHECKPOINT_FILE: &str = "quill-log.checkpoint";

#[test]
fn recorded_high_watermarks_only_rise_and_stay_below_the_log_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    assert_eq!(log.checkpointed_high_watermark(), 0);
    assert_eq!(log.recorded_high_watermark(), None);
    for _ in 0..5 {
        append(&mut log, 2);
    }
    log.record_high_watermark(4);
    log.record_high_watermark(3);
    assert_eq!(log.recorded_high_watermark(), Some(4));
    log.record_high_watermark(100);
    assert_eq!(log.recorded_high_watermark(), Some(10));
    // A truncation lowers it; a log start above it raises it.
    log.truncate_to(6).unwrap();
    assert_eq!(log.recorded_high_watermark(), Some(6));
    log.delete_records_before(2).unwrap();
    assert_eq!(log.recorded_high_watermark(), Some(6));
    append(&mut log, 4);
    log.delete_records_before(8).unwrap();
    assert_eq!(log.recorded_high_watermark(), Some(8));
    log.truncate_fully_and_start_at(50).unwrap();
    assert_eq!(log.recorded_high_watermark(), Some(50));
}

#[test]
fn the_checkpoint_keeps_it_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    for _ in 0..5 {
        append(&mut log, 2);
    }
    log.record_high_watermark(6);
    // The periodic path writes it (and only when it changed).
    let lock = RwLock::new(Some(log));
    run_maintenance(&lock, 0, i64::MAX, true, |_, _| {})
        .unwrap()
        .unwrap();
    let written = std::fs::read(dir.path().join(CHECKPOINT_FILE)).unwrap();
    let mut log = lock.into_inner().unwrap().unwrap();
    log.checkpoint_if_changed().unwrap();
    assert_eq!(
        std::fs::read(dir.path().join(CHECKPOINT_FILE)).unwrap(),
        written
    );
    // An unclean stop: the checkpointed value, not the log end, comes back.
    drop(log);
    let log = open(dir.path());
    assert_eq!(log.log_end_offset(), 10);
    assert_eq!(log.checkpointed_high_watermark(), 6);
    assert_eq!(log.recorded_high_watermark(), Some(6));
    // A clean close writes the latest.
    log.record_high_watermark(9);
    log.close().unwrap();
    let mut log = open(dir.path());
    assert_eq!(log.checkpointed_high_watermark(), 9);
    // A truncation writes its lowered value at once.
    log.truncate_to(4).unwrap();
    drop(log);
    let log = open(dir.path());
    assert_eq!(log.checkpointed_high_watermark(), 4);
}

#[test]
fn without_a_recorded_high_watermark_the_recovery_point_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    for _ in 0..3 {
        append(&mut log, 2);
    }
    log.write_checkpoint().unwrap();
    drop(log);
    let log = open(dir.path());
    assert_eq!(log.recorded_high_watermark(), None);
    assert_eq!(log.checkpointed_high_watermark(), 6);
    drop(log);
    // A checkpoint written before the field existed (format version 1) still opens.
    let mut v1 = b"QLCP".to_vec();
    v1.extend_from_slice(&1u16.to_be_bytes());
    v1.extend_from_slice(&0i64.to_be_bytes());
    v1.extend_from_slice(&4i64.to_be_bytes());
    let crc = crc32c::crc32c(&v1);
    v1.extend_from_slice(&crc.to_be_bytes());
    std::fs::write(dir.path().join(CHECKPOINT_FILE), v1).unwrap();
    let log = open(dir.path());
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(log.recorded_high_watermark(), None);
    assert_eq!(log.checkpointed_high_watermark(), 6);
}

#[test]
fn retention_and_the_cleaner_stay_below_a_recorded_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    for _ in 0..40 {
        append(&mut log, 4);
    }
    log.roll().unwrap();
    assert!(log.segment_count() > 4);
    let end = log.log_end_offset();
    log.record_high_watermark(end / 2);
    let mut config = log.config().clone();
    config.retention_ms = 0;
    config.cleanup_policy = quill_log::CleanupPolicy::COMPACT_DELETE;
    log.set_config(config);
    // The cleaner's range ends at the high watermark, not at the (durable) log end.
    let stats = log.cleanable_stats(1_000).unwrap();
    assert!(stats.first_uncleanable_offset <= end / 2, "{stats:?}");
    // Every segment is past retention.ms, but only those below the high watermark go.
    log.apply_retention(1_000).unwrap();
    let start = log.log_start_offset();
    assert!(start > 0 && start <= end / 2, "log start {start}");
    log.record_high_watermark(end);
    log.apply_retention(1_000).unwrap();
    assert_eq!(log.log_start_offset(), end);
}
