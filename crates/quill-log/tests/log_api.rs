#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Behaviour of `Log` through its public API: offsets, reads, limits, error paths, rolling,
//! timestamps, retention, reopening.

use std::path::Path;

use quill_log::testing::{build_batch, build_simple_batch, fix_crc, TestRecord};
use quill_log::{
    AppendContext, BatchHeader, CleanupPolicy, CompactionConfig, FlushPolicy, GroupCommitter, Log,
    LogConfig, LogError, TimestampType,
};

fn context(now_ms: i64) -> AppendContext {
    AppendContext {
        now_ms,
        leader_epoch: 3,
    }
}

fn open(dir: &Path, config: LogConfig) -> Log {
    Log::open(dir, config, GroupCommitter::start().unwrap()).unwrap()
}

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

/// Parses the batches of a read result: (base offset, last offset).
fn batch_ranges(bytes: &[u8]) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut position = 0;
    while position < bytes.len() {
        let header = BatchHeader::parse(&bytes[position..]).unwrap();
        out.push((header.base_offset, header.last_offset()));
        position += header.size_bytes;
    }
    out
}

#[test]
fn appends_assign_dense_offsets_and_reads_return_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    let first = log
        .append(&build_simple_batch(1000, 3, 10), context(5))
        .unwrap();
    assert_eq!((first.base_offset, first.last_offset), (0, 2));
    assert_eq!(first.log_append_time_ms, -1);
    assert_eq!(first.record_count, 3);
    let mut two = build_simple_batch(2000, 2, 10);
    two.extend(build_simple_batch(3000, 4, 10));
    let second = log.append(&two, context(6)).unwrap();
    assert_eq!((second.base_offset, second.last_offset), (3, 8));
    assert_eq!(log.log_end_offset(), 9);

    let all = log.read(0, 1 << 20, i64::MAX).unwrap();
    assert_eq!(batch_ranges(&all.bytes), vec![(0, 2), (3, 4), (5, 8)]);
    assert_eq!(all.next_offset, 9);
    let header = BatchHeader::parse(&all.bytes).unwrap();
    assert_eq!(header.partition_leader_epoch, 3);

    // A read inside a batch starts at that batch, as in Kafka.
    let middle = log.read(4, 1 << 20, i64::MAX).unwrap();
    assert_eq!(batch_ranges(&middle.bytes), vec![(3, 4), (5, 8)]);
    // At the end: empty, not an error.
    let at_end = log.read(9, 1 << 20, i64::MAX).unwrap();
    assert!(at_end.bytes.is_empty());
    assert_eq!(at_end.next_offset, 9);
}

#[test]
fn read_returns_at_least_one_batch_and_respects_the_upper_bound() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    for i in 0..3 {
        log.append(&build_simple_batch(i, 5, 100), context(0))
            .unwrap();
    }
    let one = log.read(0, 1, i64::MAX).unwrap();
    assert_eq!(
        batch_ranges(&one.bytes),
        vec![(0, 4)],
        "KIP-74: one whole batch"
    );
    let bounded = log.read(0, 1 << 20, 10).unwrap();
    assert_eq!(batch_ranges(&bounded.bytes), vec![(0, 4), (5, 9)]);
    // A batch straddling the bound is withheld entirely.
    let straddle = log.read(0, 1 << 20, 7).unwrap();
    assert_eq!(batch_ranges(&straddle.bytes), vec![(0, 4)]);
    let nothing = log.read(5, 1 << 20, 7).unwrap();
    assert!(nothing.bytes.is_empty());
}

#[test]
fn read_within_never_exceeds_max_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    for i in 0..3 {
        log.append(&build_simple_batch(i, 5, 100), context(0))
            .unwrap();
    }
    let batch_bytes = log.read(0, 1, i64::MAX).unwrap().bytes.len();
    // The first batch does not fit: nothing, where `read` would give the whole batch.
    let none = log.read_within(0, batch_bytes - 1, i64::MAX).unwrap();
    assert!(none.bytes.is_empty());
    assert_eq!(none.next_offset, 0);
    let one = log.read_within(0, 2 * batch_bytes - 1, i64::MAX).unwrap();
    assert_eq!(batch_ranges(&one.bytes), vec![(0, 4)]);
    let two = log.read_within(0, 2 * batch_bytes, i64::MAX).unwrap();
    assert_eq!(batch_ranges(&two.bytes), vec![(0, 4), (5, 9)]);
    assert!(log.read_within(0, 0, i64::MAX).unwrap().bytes.is_empty());
}

#[test]
fn offsets_outside_the_log_are_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    log.append(&build_simple_batch(0, 5, 10), context(0))
        .unwrap();
    let above = log.read(6, 100, i64::MAX).unwrap_err();
    assert!(matches!(
        above,
        LogError::OffsetOutOfRange { offset: 6, .. }
    ));
    assert_eq!(above.kafka_error_code(), 1);
    log.delete_records_before(3).unwrap();
    let below = log.read(2, 100, i64::MAX).unwrap_err();
    assert!(matches!(
        below,
        LogError::OffsetOutOfRange { offset: 2, .. }
    ));
    assert!(log.read(-1, 100, i64::MAX).is_err());
}

#[test]
fn invalid_input_is_rejected_and_leaves_the_log_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        max_message_bytes: 2000,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    log.append(&build_simple_batch(0, 1, 10), context(0))
        .unwrap();
    let size_before = log.size_bytes();

    let mut corrupt = build_simple_batch(0, 2, 10);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x55;
    let mut bad_magic = build_simple_batch(0, 1, 10);
    bad_magic[16] = 1;
    let good = build_simple_batch(0, 1, 10);
    let truncated = good[..good.len() - 3].to_vec();
    let mut bad_count = build_simple_batch(0, 2, 10);
    bad_count[57..61].copy_from_slice(&7i32.to_be_bytes());
    fix_crc(&mut bad_count);
    // A valid batch followed by a corrupt one: nothing of the request may be written.
    let mut mixed = build_simple_batch(0, 1, 10);
    mixed.extend_from_slice(&corrupt);

    let cases: Vec<(&str, Vec<u8>, i16)> = vec![
        ("corrupt crc", corrupt, 2),
        ("bad magic", bad_magic, 87),
        ("truncated", truncated, 2),
        ("too short for a header", good[..20].to_vec(), 2),
        ("count mismatch", bad_count, 87),
        ("oversized", build_simple_batch(0, 1, 3000), 10),
        ("valid then corrupt", mixed, 2),
        ("empty", Vec::new(), 87),
    ];
    for (name, input, code) in cases {
        let error = log.append(&input, context(0)).unwrap_err();
        assert_eq!(error.kafka_error_code(), code, "{name}: {error}");
        assert_eq!(log.log_end_offset(), 1, "{name}");
        assert_eq!(log.size_bytes(), size_before, "{name}");
    }
    assert!(matches!(
        log.append(&build_simple_batch(0, 1, 3000), context(0)),
        Err(LogError::RecordTooLarge { .. })
    ));
    // And the log still works.
    let next = log
        .append(&build_simple_batch(0, 1, 10), context(0))
        .unwrap();
    assert_eq!(next.base_offset, 1);
}

#[test]
fn log_append_time_rewrites_the_timestamp_and_keeps_the_crc_valid() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    let info = log
        .append(&build_simple_batch(5, 2, 10), context(777_000))
        .unwrap();
    assert_eq!(info.log_append_time_ms, 777_000);
    let read = log.read(0, 1 << 20, i64::MAX).unwrap();
    let header = quill_log::validate_producer_batch(&read.bytes, 1 << 20).unwrap();
    assert_eq!(header.max_timestamp_ms, 777_000);
    assert!(header.is_log_append_time());
    let found = log.offset_for_timestamp(700_000).unwrap().unwrap();
    assert_eq!(found.offset, 0);
}

#[test]
fn segments_roll_by_size_time_and_index_space() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_segments());
    for _ in 0..20 {
        log.append(&build_simple_batch(0, 4, 200), context(0))
            .unwrap();
    }
    assert!(log.segment_count() >= 4, "{}", log.segment_count());
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.contains(&"00000000000000000000.log".to_string()));
    assert!(names.iter().any(|n| n.ends_with(".timeindex")));
    let all = log.read(0, 1 << 20, i64::MAX).unwrap();
    assert_eq!(batch_ranges(&all.bytes)[0], (0, 3));
    // Every offset is readable across segments.
    for offset in 0..80 {
        let read = log.read(offset, 1, i64::MAX).unwrap();
        let (base, last) = batch_ranges(&read.bytes)[0];
        assert!(base <= offset && offset <= last);
    }

    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_ms: 1000,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    log.append(&build_simple_batch(0, 1, 10), context(10_000))
        .unwrap();
    log.append(&build_simple_batch(0, 1, 10), context(10_500))
        .unwrap();
    assert_eq!(log.segment_count(), 1);
    log.append(&build_simple_batch(0, 1, 10), context(11_000))
        .unwrap();
    assert_eq!(log.segment_count(), 2);

    // A compacted log rolls by max.compaction.lag.ms when it is below segment.ms, so its
    // records become cleanable within that lag (Kafka's maxSegmentMs).
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        cleanup_policy: CleanupPolicy::COMPACT,
        compaction: CompactionConfig {
            max_compaction_lag_ms: 100,
            ..CompactionConfig::default()
        },
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    let keyed = build_batch(
        0,
        &[TestRecord {
            timestamp_delta: 0,
            key: Some(b"k"),
            value: Some(b"v"),
        }],
    );
    log.append(&keyed, context(10_000)).unwrap();
    log.append(&keyed, context(10_050)).unwrap();
    assert_eq!(log.segment_count(), 1);
    log.append(&keyed, context(10_100)).unwrap();
    assert_eq!(log.segment_count(), 2);

    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        index_interval_bytes: 1,
        segment_index_bytes: 48,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    for _ in 0..12 {
        log.append(&build_simple_batch(0, 1, 10), context(0))
            .unwrap();
    }
    assert_eq!(
        log.segment_count(),
        2,
        "6 offset index entries fill 48 bytes"
    );
}

#[test]
fn offset_for_timestamp_finds_the_first_record_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_segments());
    // Batch i holds 4 records with timestamps 1000*i + 0..3.
    for i in 0..30 {
        log.append(&build_simple_batch(1000 * i, 4, 100), context(0))
            .unwrap();
    }
    assert!(log.segment_count() > 2);
    let exact = log.offset_for_timestamp(5002).unwrap().unwrap();
    assert_eq!((exact.offset, exact.timestamp_ms), (22, 5002));
    let between = log.offset_for_timestamp(5010).unwrap().unwrap();
    assert_eq!((between.offset, between.timestamp_ms), (24, 6000));
    let first = log.offset_for_timestamp(-5).unwrap().unwrap();
    assert_eq!(first.offset, 0);
    assert_eq!(log.offset_for_timestamp(29_004).unwrap(), None);
    let max = log.max_timestamp_offset().unwrap().unwrap();
    assert_eq!((max.offset, max.timestamp_ms), (119, 29_003));

    // Out-of-order timestamps: the first offset whose timestamp reaches the target wins.
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    let records = [
        TestRecord {
            timestamp_delta: 50,
            key: None,
            value: Some(b"a"),
        },
        TestRecord {
            timestamp_delta: 10,
            key: None,
            value: Some(b"b"),
        },
        TestRecord {
            timestamp_delta: 90,
            key: Some(b"k"),
            value: None,
        },
    ];
    log.append(&build_batch(100, &records), context(0)).unwrap();
    assert_eq!(log.offset_for_timestamp(140).unwrap().unwrap().offset, 0);
    assert_eq!(log.offset_for_timestamp(160).unwrap().unwrap().offset, 2);
    assert_eq!(log.max_timestamp_offset().unwrap().unwrap().offset, 2);
}

#[test]
fn clean_reopen_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_segments());
    for i in 0..40 {
        log.append(&build_simple_batch(i * 10, 3, 150), context(0))
            .unwrap();
    }
    let before = log.read(0, 1 << 20, i64::MAX).unwrap();
    let segments = log.segment_count();
    log.close().unwrap();
    let mut log = open(dir.path(), small_segments());
    assert_eq!(log.log_end_offset(), 120);
    assert_eq!(log.segment_count(), segments);
    assert_eq!(log.read(0, 1 << 20, i64::MAX).unwrap(), before);
    assert_eq!(log.offset_for_timestamp(201).unwrap().unwrap().offset, 61);
    assert_eq!(log.offset_for_timestamp(205).unwrap().unwrap().offset, 63);
    assert_eq!(
        log.max_timestamp_offset().unwrap().unwrap().timestamp_ms,
        392
    );
    let next = log
        .append(&build_simple_batch(0, 1, 10), context(0))
        .unwrap();
    assert_eq!(next.base_offset, 120);
}

#[test]
fn retention_deletes_old_segments_but_never_the_active_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_ms: 10_000,
        ..small_segments()
    };
    let mut log = open(dir.path(), config.clone());
    for i in 0..20 {
        log.append(&build_simple_batch(i * 1000, 4, 200), context(0))
            .unwrap();
    }
    let segments = log.segment_count();
    assert_eq!(log.apply_retention(1_000).unwrap(), 0);
    let deleted = log.apply_retention(24_000).unwrap();
    assert!(deleted > 0 && (deleted as usize) < segments);
    let start = log.log_start_offset();
    assert!(start > 0);
    assert!(matches!(
        log.read(0, 100, i64::MAX),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert!(log.read(start, 100, i64::MAX).is_ok());
    // Everything expired: only the active segment stays.
    log.apply_retention(1_000_000).unwrap();
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.log_end_offset(), 80);

    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_bytes: 8192,
        retention_ms: -1,
        ..small_segments()
    };
    let mut log = open(dir.path(), config);
    for _ in 0..40 {
        log.append(&build_simple_batch(0, 4, 200), context(0))
            .unwrap();
    }
    log.apply_retention(0).unwrap();
    assert!(log.size_bytes() <= 8192 + 4096, "{}", log.size_bytes());
    assert!(log.size_bytes() >= 8192 - 4096);
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// `file.delete.delay.ms`: removed segments are renamed `*.deleted` and their files deleted
/// only once the delay has passed (at once with 0); leftovers are removed on open.
#[test]
fn removed_segments_wait_out_file_delete_delay_ms() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_ms: 10_000,
        file_delete_delay_ms: 5_000,
        ..small_segments()
    };
    let mut log = open(dir.path(), config.clone());
    for i in 0..20 {
        log.append(&build_simple_batch(i * 1000, 4, 200), context(0))
            .unwrap();
    }
    assert!(log.apply_retention(100_000).unwrap() > 0);
    let waiting: Vec<String> = file_names(dir.path())
        .into_iter()
        .filter(|name| name.ends_with(".deleted"))
        .collect();
    assert!(waiting.contains(&"00000000000000000000.log.deleted".to_string()));
    assert!(!file_names(dir.path()).contains(&"00000000000000000000.log".to_string()));
    log.apply_retention(104_999).unwrap();
    assert_eq!(
        file_names(dir.path())
            .iter()
            .filter(|name| name.ends_with(".deleted"))
            .count(),
        waiting.len()
    );
    log.apply_retention(105_000).unwrap();
    assert!(!file_names(dir.path())
        .iter()
        .any(|name| name.ends_with(".deleted")));

    // DeleteRecords defers too; a restart removes what was still waiting.
    let start = log.log_end_offset();
    for _ in 0..20 {
        log.append(&build_simple_batch(0, 4, 200), context(0))
            .unwrap();
    }
    log.delete_records_before(start + 60).unwrap();
    assert!(file_names(dir.path())
        .iter()
        .any(|name| name.ends_with(".log.deleted")));
    log.close().unwrap();
    let log = open(dir.path(), config);
    assert!(!file_names(dir.path())
        .iter()
        .any(|name| name.ends_with(".deleted")));
    assert_eq!(log.log_start_offset(), start + 60);

    // With 0 the files go at once.
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_ms: 10_000,
        file_delete_delay_ms: 0,
        ..small_segments()
    };
    let mut log = open(dir.path(), config);
    for i in 0..20 {
        log.append(&build_simple_batch(i * 1000, 4, 200), context(0))
            .unwrap();
    }
    assert!(log.apply_retention(100_000).unwrap() > 0);
    let names = file_names(dir.path());
    assert!(!names.iter().any(|name| name.ends_with(".deleted")));
    assert!(!names.contains(&"00000000000000000000.log".to_string()));
}

/// `segment.jitter.ms`: each segment rolls `roll_jitter_ms` before `segment.ms`, a draw in
/// `[0, min(segment.jitter.ms, segment.ms))` made per segment.
#[test]
fn segment_jitter_ms_rolls_each_segment_early_by_its_draw() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_ms: 1000,
        segment_jitter_ms: 1_000_000,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    let mut draws = std::collections::BTreeSet::new();
    let mut now = 10_000;
    for segment in 1..=20 {
        let jitter = log.roll_jitter_ms();
        assert!((0..1000).contains(&jitter), "{jitter}");
        draws.insert(jitter);
        log.append(&build_simple_batch(0, 1, 10), context(now))
            .unwrap();
        let due = now + 1000 - jitter;
        log.append(&build_simple_batch(0, 1, 10), context(due - 1))
            .unwrap();
        assert_eq!(
            log.segment_count(),
            segment,
            "no roll before the jittered time"
        );
        log.append(&build_simple_batch(0, 1, 10), context(due))
            .unwrap();
        assert_eq!(
            log.segment_count(),
            segment + 1,
            "rolled at segment.ms - jitter"
        );
        now = due;
    }
    assert!(
        draws.len() > 1,
        "the draw differs between segments: {draws:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(log.roll_jitter_ms(), 0, "no jitter by default");
}

#[test]
fn delete_records_moves_the_log_start_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_segments());
    for _ in 0..30 {
        log.append(&build_simple_batch(0, 4, 200), context(0))
            .unwrap();
    }
    let segments = log.segment_count();
    assert_eq!(log.delete_records_before(50).unwrap(), 50);
    assert!(log.segment_count() < segments);
    assert!(matches!(
        log.delete_records_before(121),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_eq!(
        log.delete_records_before(10).unwrap(),
        50,
        "never moves back"
    );
    // Reading at the new start returns the batch holding it.
    let read = log.read(50, 1, i64::MAX).unwrap();
    assert_eq!(batch_ranges(&read.bytes), vec![(48, 51)]);
    drop(log); // unclean
    let log = open(dir.path(), small_segments());
    assert_eq!(log.log_start_offset(), 50);
    assert_eq!(log.log_end_offset(), 120);
}

#[test]
fn group_commit_makes_concurrent_appends_durable() {
    let dir = tempfile::tempdir().unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(open(
        dir.path(),
        LogConfig::default(),
    )));
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let log = log.clone();
            std::thread::spawn(move || {
                for _ in 0..20 {
                    let (sender, receiver) = std::sync::mpsc::channel();
                    {
                        let mut log = log.lock().unwrap();
                        let info = log
                            .append(&build_simple_batch(0, 2, 50), context(0))
                            .unwrap();
                        log.on_durable(
                            info.last_offset + 1,
                            Box::new(move |r| sender.send(r).unwrap()),
                        );
                    }
                    receiver.recv().unwrap().unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let log = log.lock().unwrap();
    assert_eq!(log.log_end_offset(), 16 * 20 * 2);
    assert_eq!(log.durable_end_offset(), 16 * 20 * 2);
}

/// The background syncs of the `Periodic` policies: waits (bounded) until `offset` is durable.
fn wait_until_durable(log: &Log, offset: i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while log.durable_end_offset() < offset {
        assert!(
            std::time::Instant::now() < deadline,
            "offset {offset} never became durable"
        );
        // The Periodic policy's background sync notifies no one the test can wait on: poll,
        // bounded by the deadline above.
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

#[test]
fn kafka_flush_configs_select_the_policy() {
    assert_eq!(
        FlushPolicy::from_kafka(1, i64::MAX),
        FlushPolicy::EveryAppend
    );
    assert_eq!(FlushPolicy::from_kafka(1, 10), FlushPolicy::EveryAppend);
    assert_eq!(
        FlushPolicy::from_kafka(i64::MAX, i64::MAX),
        FlushPolicy::OS_MANAGED
    );
    assert_eq!(
        FlushPolicy::from_kafka(1000, 5000),
        FlushPolicy::Periodic {
            messages: Some(1000),
            interval_ms: Some(5000)
        }
    );
    assert_eq!(
        FlushPolicy::from_kafka(i64::MAX, 0),
        FlushPolicy::Periodic {
            messages: None,
            interval_ms: Some(0)
        }
    );
}

#[test]
fn flush_messages_syncs_after_that_many_records_without_holding_acknowledgements() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        flush: FlushPolicy::from_kafka(5, i64::MAX),
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    let info = log
        .append(&build_simple_batch(0, 2, 50), context(0))
        .unwrap();
    // Acknowledged at once, though nothing was synced (no sync was even asked for).
    log.wait_durable(info.last_offset + 1).unwrap();
    log.flush_if_due(i64::MAX);
    assert_eq!(log.durable_end_offset(), 0);
    log.append(&build_simple_batch(0, 3, 50), context(0))
        .unwrap();
    wait_until_durable(&log, 5);
}

#[test]
fn flush_ms_syncs_once_the_interval_passed() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        flush: FlushPolicy::from_kafka(i64::MAX, 100),
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    log.flush_if_due(1_000); // nothing written: nothing to sync
    log.append(&build_simple_batch(0, 2, 50), context(0))
        .unwrap();
    log.flush_if_due(1_050);
    assert_eq!(log.durable_end_offset(), 0, "not due 50 ms after the last");
    log.flush_if_due(1_100);
    wait_until_durable(&log, 2);
}

#[test]
fn os_managed_flushes_only_at_roll_and_close() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        flush: FlushPolicy::OS_MANAGED,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config.clone());
    log.append(&build_simple_batch(0, 2, 50), context(0))
        .unwrap();
    log.flush_if_due(i64::MAX);
    assert_eq!(log.durable_end_offset(), 0);
    log.roll().unwrap();
    wait_until_durable(&log, 2);
    log.append(&build_simple_batch(0, 1, 50), context(0))
        .unwrap();
    assert_eq!(log.durable_end_offset(), 2);
    log.close().unwrap();
    assert_eq!(open(dir.path(), config).durable_end_offset(), 3);
}

#[test]
fn delete_removes_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("topic-0");
    let mut log = open(&path, LogConfig::default());
    log.append(&build_simple_batch(0, 2, 50), context(0))
        .unwrap();
    log.delete().unwrap();
    assert!(!path.exists());
}

#[test]
fn truncate_to_cuts_the_tail_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_segments());
    for _ in 0..30 {
        log.append(&build_simple_batch(0, 4, 200), context(0))
            .unwrap();
    }
    log.truncate_to(52).unwrap();
    assert_eq!(log.log_end_offset(), 52);
    let next = log
        .append(&build_simple_batch(0, 1, 10), context(0))
        .unwrap();
    assert_eq!(next.base_offset, 52);
    log.close().unwrap();
    let log = open(dir.path(), small_segments());
    assert_eq!(log.log_end_offset(), 53);
}

#[test]
fn a_second_open_of_the_same_directory_is_refused_until_the_first_closes() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    let second = Log::open(
        dir.path(),
        LogConfig::default(),
        GroupCommitter::start().unwrap(),
    );
    let error = second.unwrap_err();
    assert!(matches!(error, LogError::Locked(_)), "{error}");
    assert_eq!(error.kafka_error_code(), 56);
    log.close().unwrap();
    open(dir.path(), LogConfig::default());
}

#[test]
fn an_append_larger_than_a_segment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 1024,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    let mut input = build_simple_batch(0, 2, 300);
    input.extend(build_simple_batch(0, 2, 300));
    let error = log.append(&input, context(0)).unwrap_err();
    assert!(
        matches!(
            error,
            LogError::RecordTooLarge {
                setting: "segment.bytes",
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(error.kafka_error_code(), 10);
    assert_eq!(log.size_bytes(), 0);
}

/// A read planned under the caller's lock and executed after it returns the same bytes as a
/// plain read, even when appends and retention (deleting the planned segment) happen between.
#[test]
fn a_planned_read_survives_appends_and_retention_in_between() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_bytes: 4096,
        retention_ms: -1,
        ..small_segments()
    };
    let mut log = open(dir.path(), config);
    for _ in 0..20 {
        log.append(&build_simple_batch(0, 4, 200), context(0))
            .unwrap();
    }
    let expected = log.read(0, 1 << 20, i64::MAX).unwrap();
    let planned = log.plan_read(0, 1 << 20, i64::MAX, true).unwrap();
    for _ in 0..20 {
        log.append(&build_simple_batch(0, 4, 200), context(0))
            .unwrap();
    }
    assert!(
        log.apply_retention(0).unwrap() > 0,
        "the planned segment is deleted"
    );
    assert!(log.log_start_offset() > 0);
    assert_eq!(planned.execute().unwrap(), expected);
    // Past the log end: the same error as a read.
    assert!(matches!(
        log.plan_read(log.log_end_offset() + 1, 1024, i64::MAX, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
}

/// Regression (model test): a segment whose indexes were rebuilt by an unclean open and then
/// reopened uncleanly again kept its max timestamp only if the rebuilt time index recorded it.
#[test]
fn timestamps_survive_two_unclean_reopens() {
    let config = LogConfig {
        segment_bytes: 6000,
        index_interval_bytes: 400,
        retention_bytes: -1,
        retention_ms: -1,
        ..LogConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), config.clone());
    log.append(&build_simple_batch(0, 1, 0), context(0))
        .unwrap();
    log.append(&build_simple_batch(0, 1, 0), context(0))
        .unwrap();
    log.append(&build_simple_batch(4024, 1, 15), context(0))
        .unwrap();
    let mut three = build_simple_batch(0, 1, 33);
    three.extend(build_simple_batch(0, 1, 12));
    three.extend(build_simple_batch(0, 1, 0));
    log.append(&three, context(0)).unwrap();
    let expected = log.offset_for_timestamp(1).unwrap();
    assert_eq!(expected.map(|found| found.offset), Some(2));
    for _ in 0..2 {
        drop(log); // no close: an unclean stop
        log = open(dir.path(), config.clone());
        assert_eq!(log.offset_for_timestamp(1).unwrap(), expected);
        assert_eq!(log.max_timestamp_offset().unwrap(), expected);
    }
}
