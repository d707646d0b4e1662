#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Idempotent producers and transactions at the log level: duplicate detection, fencing,
//! markers, the first unstable offset, aborted transactions, and all of it surviving reopen.

use std::path::Path;

use quill_log::testing::{build_simple_batch, with_producer};
use quill_log::{
    AbortedTransaction, AppendContext, BatchHeader, ControlMarker, GroupCommitter, Log, LogConfig,
    LogError,
};

fn context() -> AppendContext {
    AppendContext {
        now_ms: 1_000,
        leader_epoch: 4,
    }
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        ..LogConfig::default()
    }
}

fn open(dir: &Path) -> Log {
    Log::open(dir, config(), GroupCommitter::start().unwrap()).unwrap()
}

fn idempotent(producer_id: i64, epoch: i16, sequence: i32, records: usize) -> Vec<u8> {
    with_producer(
        build_simple_batch(0, records, 20),
        producer_id,
        epoch,
        sequence,
        false,
    )
}

fn transactional(producer_id: i64, epoch: i16, sequence: i32, records: usize) -> Vec<u8> {
    with_producer(
        build_simple_batch(0, records, 20),
        producer_id,
        epoch,
        sequence,
        true,
    )
}

#[test]
fn a_retried_batch_gets_its_original_offsets_and_is_not_written_twice() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    let first = log.append(&idempotent(1, 0, 0, 3), context()).unwrap();
    log.append(&build_simple_batch(0, 2, 10), context())
        .unwrap();
    let size = log.size_bytes();
    let retry = log.append(&idempotent(1, 0, 0, 3), context()).unwrap();
    assert!(retry.duplicate);
    assert_eq!(
        (retry.base_offset, retry.last_offset),
        (first.base_offset, first.last_offset)
    );
    assert_eq!(log.size_bytes(), size);
    assert_eq!(log.log_end_offset(), 5);
    let next = log.append(&idempotent(1, 0, 3, 1), context()).unwrap();
    assert!(!next.duplicate);
    assert_eq!(next.base_offset, 5);
}

#[test]
fn gaps_and_zombies_are_refused_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    log.append(&idempotent(1, 2, 0, 1), context()).unwrap();
    let size = log.size_bytes();
    let gap = log.append(&idempotent(1, 2, 5, 1), context()).unwrap_err();
    assert_eq!(gap.kafka_error_code(), 45);
    let zombie = log.append(&idempotent(1, 1, 1, 1), context()).unwrap_err();
    assert_eq!(zombie.kafka_error_code(), 47);
    let mut two = idempotent(1, 2, 1, 1);
    two.extend(idempotent(1, 2, 2, 1));
    assert!(matches!(
        log.append(&two, context()),
        Err(LogError::InvalidRecord(_))
    ));
    let no_id = with_producer(build_simple_batch(0, 1, 1), -1, -1, -1, true);
    assert!(matches!(
        log.append(&no_id, context()),
        Err(LogError::InvalidRecord(_))
    ));
    assert_eq!(log.size_bytes(), size);
}

#[test]
fn markers_close_transactions_and_aborts_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    log.append(&build_simple_batch(0, 2, 10), context())
        .unwrap(); // 0..1
    log.append(&transactional(7, 0, 0, 2), context()).unwrap(); // 2..3
    log.append(&transactional(8, 0, 0, 1), context()).unwrap(); // 4
    assert_eq!(log.first_unstable_offset(), 2);
    // A non-transactional write from a producer inside a transaction is refused.
    let error = log.append(&idempotent(7, 0, 2, 1), context()).unwrap_err();
    assert_eq!(error.kafka_error_code(), 48);
    let abort = log
        .append_control(7, 0, ControlMarker::Abort, 3, 2_000)
        .unwrap();
    assert_eq!(abort.base_offset, 5);
    assert_eq!(log.first_unstable_offset(), 4);
    log.append_control(8, 0, ControlMarker::Commit, 3, 2_000)
        .unwrap(); // 6
    assert_eq!(log.first_unstable_offset(), log.log_end_offset());
    assert_eq!(
        log.aborted_transactions(0, 100),
        vec![AbortedTransaction {
            producer_id: 7,
            first_offset: 2
        }]
    );
    assert!(log.aborted_transactions(6, 100).is_empty());
    // The marker is a real control batch in the log, with the leader epoch stamped.
    let read = log.read(5, 1, i64::MAX).unwrap();
    let header = BatchHeader::parse(&read.bytes).unwrap();
    assert!(header.is_control());
    assert_eq!((header.base_offset, header.partition_leader_epoch), (5, 4));
    quill_log::validate_producer_batch(&read.bytes, 1 << 20).unwrap_err();
    // Fenced coordinator and zombie markers.
    assert_eq!(
        log.append_control(7, 0, ControlMarker::Commit, 2, 0)
            .unwrap_err()
            .kafka_error_code(),
        52
    );
    let producers = log.producers();
    assert_eq!(producers.len(), 2);
    assert_eq!(producers[0].coordinator_epoch, 3);
}

fn busy_log(dir: &Path) -> Log {
    let mut log = open(dir);
    for i in 0..30 {
        log.append(&transactional(1, 0, i * 2, 2), context())
            .unwrap();
        log.append(&idempotent(2, 0, i, 1), context()).unwrap();
        if i % 3 == 2 {
            let marker = if i % 2 == 0 {
                ControlMarker::Abort
            } else {
                ControlMarker::Commit
            };
            log.append_control(1, 0, marker, 1, 0).unwrap();
        }
    }
    // Leave one transaction open.
    log.append(&transactional(1, 0, 60, 1), context()).unwrap();
    assert!(log.segment_count() > 3, "segments: {}", log.segment_count());
    log
}

fn state_of(
    log: &Log,
) -> (
    i64,
    Vec<AbortedTransaction>,
    Vec<quill_log::ProducerSnapshot>,
) {
    (
        log.first_unstable_offset(),
        log.aborted_transactions(0, i64::MAX),
        log.producers(),
    )
}

#[test]
fn producer_state_survives_clean_and_unclean_reopen() {
    for clean in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let log = busy_log(dir.path());
        let before = state_of(&log);
        assert!(!before.1.is_empty());
        if clean {
            log.close().unwrap();
        } else {
            drop(log);
        }
        let mut log = open(dir.path());
        assert_eq!(state_of(&log), before, "clean: {clean}");
        // And dedup still works after reopen.
        let retry = log.append(&idempotent(2, 0, 29, 1), context()).unwrap();
        assert!(retry.duplicate, "clean: {clean}");
    }
}

#[test]
fn producer_state_is_rebuilt_without_snapshots_and_after_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let log = busy_log(dir.path());
    let before = state_of(&log);
    drop(log);
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "snapshot") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let mut log = open(dir.path());
    assert_eq!(state_of(&log), before);
    // Truncating below the last abort forgets it and reopens the transaction it closed.
    let last_abort = before.1.last().unwrap().first_offset;
    // (its first batch holds two records, so last_abort + 2 is the next batch boundary)
    log.truncate_to(last_abort + 2).unwrap();
    assert_eq!(log.log_end_offset(), last_abort + 2);
    assert!(log.aborted_transactions(0, i64::MAX).len() < before.1.len());
    assert_eq!(
        log.first_unstable_offset(),
        last_abort,
        "the transaction is open again"
    );
}

#[test]
fn an_unverified_append_only_continues_an_open_transaction_of_the_same_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    let continuing = |log: &mut Log, bytes: &[u8]| {
        let validated = quill_log::validate_append(bytes, &config(), "t-0", 1_000).unwrap();
        log.append_validated_continuing_transaction(&validated, context())
    };
    // No transaction open yet: refused, nothing written.
    let refused = continuing(&mut log, &transactional(7, 0, 0, 1)).unwrap_err();
    assert!(
        matches!(refused, LogError::TransactionNotOpen { .. }),
        "{refused}"
    );
    assert_eq!(log.log_end_offset(), 0);
    // Once a (verified) batch opened it, later batches continue it.
    log.append(&transactional(7, 0, 0, 1), context()).unwrap();
    assert_eq!(
        continuing(&mut log, &transactional(7, 0, 1, 1))
            .unwrap()
            .base_offset,
        1
    );
    // Another epoch does not continue it (a bumped epoch goes through verification).
    assert!(matches!(
        continuing(&mut log, &transactional(7, 1, 0, 1)).unwrap_err(),
        LogError::TransactionNotOpen { .. }
    ));
    // A marker ends it: the next transaction's first batch needs verification again.
    log.append_control(7, 0, ControlMarker::Commit, 0, 2_000)
        .unwrap();
    assert!(matches!(
        continuing(&mut log, &transactional(7, 0, 2, 1)).unwrap_err(),
        LogError::TransactionNotOpen { .. }
    ));
    assert_eq!(log.log_end_offset(), 3);
}
