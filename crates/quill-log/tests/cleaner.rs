#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The log cleaner through the public API: what survives a cleaning, offsets, tombstones and
//! their delete horizon, several passes with a small offset map, compressed batches,
//! transactions and producer state, reopening cleaned logs.

mod common;

use std::collections::BTreeMap;
use std::sync::RwLock;

use common::*;
use quill_log::records::Compression;
use quill_log::testing::with_producer;
use quill_log::{ControlMarker, Log};

const NOW: i64 = 1_000_000;
const DAY: i64 = 86_400_000;

/// Appends `(key, value)` pairs one batch each, rolling every `per_segment` batches.
fn write(log: &mut Log, pairs: &[(&str, Option<&str>)], per_segment: usize) {
    for (i, (key, value)) in pairs.iter().enumerate() {
        let batch = keyed_batch(&[record(key, *value)], NOW, Compression::None);
        log.append(&batch, context(NOW)).unwrap();
        if (i + 1) % per_segment == 0 {
            log.roll().unwrap();
        }
    }
    log.flush().unwrap();
}

/// The latest record per key among `records` at offsets below `below`.
fn latest_per_key(records: &[ReadRecord]) -> BTreeMap<Vec<u8>, ReadRecord> {
    let mut latest = BTreeMap::new();
    for record in records {
        latest.insert(record.key.clone().unwrap(), record.clone());
    }
    latest
}

#[test]
fn cleaning_keeps_the_latest_value_per_key_at_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), compact_config(1 << 20, DAY));
    let pairs: Vec<(String, String)> = (0..60)
        .map(|i| (format!("k{}", i % 7), format!("v{i}")))
        .collect();
    let refs: Vec<(&str, Option<&str>)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), Some(v.as_str())))
        .collect();
    write(&mut log, &refs, 10);
    log.roll().unwrap();
    let (_, before) = read_all(&log);
    let expected = latest_per_key(&before);
    let end = log.log_end_offset();
    let handle = RwLock::new(log);
    let rounds = clean_fully(&mut cleaner(1 << 20), &handle, NOW);
    assert_eq!(rounds.len(), 1);
    assert_eq!(rounds[0].end_offset, end);
    let log = handle.into_inner().unwrap();
    let (_, after) = read_all(&log);
    let survivors: Vec<ReadRecord> = expected.into_values().collect();
    let mut sorted = survivors.clone();
    sorted.sort_by_key(|r| r.offset);
    assert_eq!(after, sorted);
    assert_eq!(log.log_end_offset(), end);
    assert_eq!(log.cleaner_checkpoint_offset(), end);
    // Segments were merged into one (they all fit in segment.bytes), plus the active one.
    assert_eq!(log.segment_count(), 2);
    // Reading from an offset inside a removed range returns the next surviving batch.
    let from_gap = log.read(1, 1 << 20, end).unwrap();
    assert!(!from_gap.bytes.is_empty());
}

#[test]
fn the_active_segment_and_uncleanable_data_are_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), compact_config(1 << 20, DAY));
    write(
        &mut log,
        &[("a", Some("1")), ("a", Some("2")), ("a", Some("3"))],
        100,
    );
    // Nothing rolled: everything is in the active segment.
    let handle = RwLock::new(log);
    assert!(cleaner(1 << 20).clean(&handle, NOW).unwrap().is_none());
    let log = handle.into_inner().unwrap();
    assert_eq!(read_all(&log).1.len(), 3);
}

#[test]
fn tombstones_stay_until_the_delete_horizon_then_go() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), compact_config(1 << 20, 1000));
    write(
        &mut log,
        &[
            ("a", Some("1")),
            ("b", Some("1")),
            ("a", None),
            ("c", Some("1")),
        ],
        100,
    );
    log.roll().unwrap();
    let handle = RwLock::new(log);
    let mut cleaner = cleaner(1 << 20);
    cleaner.clean(&handle, NOW).unwrap().unwrap();
    {
        let log = handle.read().unwrap();
        let (_, records) = read_all(&log);
        let keys: Vec<(i64, Option<Vec<u8>>)> = records
            .iter()
            .map(|r| (r.offset, r.value.clone()))
            .collect();
        assert_eq!(
            keys,
            vec![
                (1, Some(b"1".to_vec())),
                (2, None),
                (3, Some(b"1".to_vec()))
            ]
        );
        // Timestamps survive the rewrite with a delete horizon.
        assert!(records.iter().all(|r| r.timestamp_ms == NOW));
    }
    // More dirty data so another round runs; before the horizon the tombstone stays.
    {
        let mut log = handle.write().unwrap();
        write(&mut log, &[("d", Some("1"))], 100);
        log.roll().unwrap();
    }
    cleaner.clean(&handle, NOW + 999).unwrap().unwrap();
    assert!(read_all(&handle.read().unwrap())
        .1
        .iter()
        .any(|r| r.value.is_none()));
    {
        let mut log = handle.write().unwrap();
        write(&mut log, &[("e", Some("1"))], 100);
        log.roll().unwrap();
    }
    cleaner.clean(&handle, NOW + 1000).unwrap().unwrap();
    let log = handle.into_inner().unwrap();
    let offsets: Vec<i64> = read_all(&log).1.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![1, 3, 4, 5]);
}

#[test]
fn a_small_offset_map_cleans_in_several_passes() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), compact_config(4096, DAY));
    let pairs: Vec<(String, String)> = (0..400)
        .map(|i| (format!("key-{}", i % 50), format!("value-{i}")))
        .collect();
    let refs: Vec<(&str, Option<&str>)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), Some(v.as_str())))
        .collect();
    write(&mut log, &refs, 25);
    log.roll().unwrap();
    let (_, before) = read_all(&log);
    let mut expected: Vec<ReadRecord> = latest_per_key(&before).into_values().collect();
    expected.sort_by_key(|r| r.offset);
    let handle = RwLock::new(log);
    // 24 bytes per slot: 30 slots, 27 usable: fewer than the 50 keys.
    let rounds = clean_fully(&mut cleaner(24 * 30), &handle, NOW);
    assert!(rounds.len() > 1, "expected several passes, got {rounds:?}");
    assert!(rounds.iter().all(|r| r.map_utilization <= 0.9 + 1e-9));
    let log = handle.into_inner().unwrap();
    assert_eq!(read_all(&log).1, expected);
}

#[test]
fn compressed_batches_are_rewritten_in_their_codec() {
    for compression in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), compact_config(1 << 20, DAY));
        let batch = keyed_batch(
            &[
                record("a", Some("1")),
                record("b", Some("1")),
                record("a", Some("2")),
                record("c", None),
            ],
            NOW,
            compression,
        );
        log.append(&batch, context(NOW)).unwrap();
        log.append(
            &keyed_batch(&[record("b", Some("2"))], NOW, compression),
            context(NOW),
        )
        .unwrap();
        log.roll().unwrap();
        log.flush().unwrap();
        let handle = RwLock::new(log);
        cleaner(1 << 20).clean(&handle, NOW).unwrap().unwrap();
        let log = handle.into_inner().unwrap();
        let (headers, records) = read_all(&log);
        let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![2, 3, 4], "{compression:?}");
        assert_eq!(headers[0].base_offset, 0, "the batch keeps its base offset");
        assert_eq!(headers[0].last_offset(), 3, "and its last offset");
        assert_eq!(headers[0].compression_codec(), compression.id());
    }
}

#[test]
fn cleaned_logs_reopen_with_their_gaps_and_the_same_content() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), compact_config(2048, DAY));
    let pairs: Vec<(String, String)> = (0..200)
        .map(|i| (format!("k{}", i % 9), format!("v{i}")))
        .collect();
    let refs: Vec<(&str, Option<&str>)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), Some(v.as_str())))
        .collect();
    write(&mut log, &refs, 20);
    log.roll().unwrap();
    let handle = RwLock::new(log);
    clean_fully(&mut cleaner(1 << 20), &handle, NOW);
    let log = handle.into_inner().unwrap();
    let (_, cleaned) = read_all(&log);
    let end = log.log_end_offset();
    log.close().unwrap();
    let reopened = open(dir.path(), compact_config(2048, DAY));
    assert_eq!(read_all(&reopened).1, cleaned);
    assert_eq!(reopened.log_end_offset(), end);
    drop(reopened);
    // Without the clean-shutdown marker every segment is validated: gaps are accepted in
    // cleaned segments.
    std::fs::remove_file(dir.path().join("quill-log.checkpoint")).unwrap();
    let recovered = open(dir.path(), compact_config(2048, DAY));
    assert_eq!(read_all(&recovered).1, cleaned);
    assert_eq!(recovered.log_end_offset(), end);
}

#[test]
fn the_last_batch_of_a_live_producer_survives_emptied() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), compact_config(1 << 20, DAY));
    let idempotent = with_producer(
        keyed_batch(&[record("a", Some("1"))], NOW, Compression::None),
        42,
        0,
        0,
        false,
    );
    log.append(&idempotent, context(NOW)).unwrap();
    write(&mut log, &[("a", Some("2"))], 100);
    log.roll().unwrap();
    let producers_before = log.producers();
    let handle = RwLock::new(log);
    cleaner(1 << 20).clean(&handle, NOW).unwrap().unwrap();
    let log = handle.into_inner().unwrap();
    let (headers, records) = read_all(&log);
    assert_eq!(records.len(), 1);
    assert_eq!(headers[0].producer_id, 42);
    assert_eq!(headers[0].records_count, 0);
    assert_eq!(log.producers(), producers_before);
    // A retry of the producer's batch is still recognised after a restart.
    log.close().unwrap();
    let mut reopened = open(dir.path(), compact_config(1 << 20, DAY));
    assert_eq!(reopened.producers(), producers_before);
    let retry = reopened.append(&idempotent, context(NOW)).unwrap();
    assert!(retry.duplicate);
}

#[test]
fn aborted_transactions_are_removed_and_unneeded_markers_go_after_the_horizon() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), compact_config(1 << 20, 1000));
    let aborted = with_producer(
        keyed_batch(&[record("x", Some("aborted"))], NOW, Compression::None),
        7,
        0,
        0,
        true,
    );
    log.append(&aborted, context(NOW)).unwrap();
    log.append_control(7, 0, ControlMarker::Abort, 0, NOW)
        .unwrap();
    let committed = with_producer(
        keyed_batch(&[record("y", Some("committed"))], NOW, Compression::None),
        8,
        0,
        0,
        true,
    );
    log.append(&committed, context(NOW)).unwrap();
    log.append_control(8, 0, ControlMarker::Commit, 0, NOW)
        .unwrap();
    // Another producer's later writes make the markers' producers' last batches old news.
    write(&mut log, &[("z", Some("1"))], 100);
    log.roll().unwrap();
    assert_eq!(log.aborted_transactions(0, 10).len(), 1);
    let handle = RwLock::new(log);
    let mut cleaner = cleaner(1 << 20);
    cleaner.clean(&handle, NOW).unwrap().unwrap();
    {
        let log = handle.read().unwrap();
        let values: Vec<Option<Vec<u8>>> = read_all(&log).1.into_iter().map(|r| r.value).collect();
        assert_eq!(
            values,
            vec![Some(b"committed".to_vec()), Some(b"1".to_vec())],
            "the aborted record is gone"
        );
    }
    // Expire the producers so their markers are no longer their last batches, then clean past
    // the horizon twice (once to stamp it, once to pass it).
    for round in 0..3 {
        let mut log = handle.write().unwrap();
        log.expire_producers(NOW + 10 * DAY, 1);
        write(&mut log, &[("w", Some("1"))], 100);
        log.roll().unwrap();
        drop(log);
        cleaner
            .clean(&handle, NOW + 5000 * (round + 1))
            .unwrap()
            .unwrap();
    }
    let log = handle.into_inner().unwrap();
    let (headers, _) = read_all(&log);
    let markers: Vec<i64> = headers
        .iter()
        .filter(|h| h.is_control())
        .map(|h| h.producer_id)
        .collect();
    // The ABORT marker went once no record of its transaction was left (and its horizon
    // passed); the COMMIT marker stays while its transaction's record does.
    assert_eq!(markers, vec![8], "{headers:?}");
    assert!(log.aborted_transactions(0, log.log_end_offset()).is_empty());
}

#[test]
fn min_compaction_lag_keeps_young_segments_dirty_and_max_lag_forces_cleaning() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = compact_config(1 << 20, DAY);
    config.compaction.min_compaction_lag_ms = 1000;
    let mut log = open(dir.path(), config.clone());
    write(&mut log, &[("a", Some("1")), ("a", Some("2"))], 100);
    log.roll().unwrap();
    // Records written at NOW are younger than the lag at NOW + 999: nothing is cleanable.
    let stats = log.cleanable_stats(NOW + 999).unwrap();
    assert_eq!(stats.cleanable_bytes, 0);
    let handle = RwLock::new(log);
    assert!(cleaner(1 << 20)
        .clean(&handle, NOW + 999)
        .unwrap()
        .is_none());
    let stats = handle.read().unwrap().cleanable_stats(NOW + 1001).unwrap();
    assert!(stats.cleanable_bytes > 0);
    assert!(stats.should_clean(0.5));
    assert_eq!(stats.compaction_delay_ms, 0);
    // A ratio the log can never reach: only max.compaction.lag.ms makes it due.
    assert!(!stats.should_clean(1.0));
    let mut log = handle.into_inner().unwrap();
    config.compaction.max_compaction_lag_ms = 5000;
    log.set_config(config);
    let overdue = log.cleanable_stats(NOW + 6000).unwrap();
    assert_eq!(overdue.compaction_delay_ms, 1000);
    assert!(overdue.should_clean(1.0));
}

#[test]
fn retention_applies_to_compact_delete_but_not_to_compact() {
    for (policy, expect_deleted) in [
        (quill_log::CleanupPolicy::COMPACT, false),
        (quill_log::CleanupPolicy::COMPACT_DELETE, true),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = compact_config(1 << 20, DAY);
        config.cleanup_policy = policy;
        config.retention_ms = 1000;
        let mut log = open(dir.path(), config);
        write(&mut log, &[("a", Some("1")), ("b", Some("1"))], 1);
        let deleted = log.apply_retention(NOW + 10 * DAY).unwrap();
        assert_eq!(deleted > 0, expect_deleted, "{policy:?}");
        let handle = RwLock::new(log);
        // Cleaning works the same after retention moved the log start.
        let _ = cleaner(1 << 20).clean(&handle, NOW + 10 * DAY).unwrap();
        let log = handle.into_inner().unwrap();
        let (_, records) = read_all(&log);
        assert_eq!(
            records.is_empty(),
            expect_deleted,
            "{policy:?}: {records:?}"
        );
    }
}
