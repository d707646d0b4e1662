#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The leader-epoch cache of a log (KIP-101/KIP-279): assigned from every appended batch,
//! stored as Kafka's `leader-epoch-checkpoint`, truncated with the log at both ends, rebuilt
//! when the file is missing or damaged, and answering OffsetsForLeaderEpoch as Kafka does.

use std::path::Path;

use quill_log::testing::build_simple_batch;
use quill_log::{
    AppendContext, BatchHeader, ControlMarker, EpochEntry, GroupCommitter, Log, LogConfig,
    LEADER_EPOCH_FILE,
};

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 256,
        retention_ms: -1,
        ..LogConfig::default()
    }
}

fn open(dir: &Path) -> Log {
    Log::open(dir, config(), GroupCommitter::start().unwrap()).unwrap()
}

fn append(log: &mut Log, leader_epoch: i32, records: usize) -> i64 {
    let info = log
        .append(
            &build_simple_batch(100, records, 40),
            AppendContext {
                now_ms: 10,
                leader_epoch,
            },
        )
        .unwrap();
    info.base_offset
}

fn entries(log: &Log) -> Vec<(i32, i64)> {
    log.epoch_entries()
        .iter()
        .map(|e| (e.epoch, e.start_offset))
        .collect()
}

fn file(dir: &Path) -> String {
    String::from_utf8(std::fs::read(dir.join(LEADER_EPOCH_FILE)).unwrap()).unwrap()
}

/// Epoch 0 at 0..5, epoch 2 at 6..14, epoch 5 at 15..20 (segments of 1 KiB roll often).
fn history(log: &mut Log) {
    for _ in 0..2 {
        append(log, 0, 3);
    }
    for _ in 0..3 {
        append(log, 2, 3);
    }
    for _ in 0..2 {
        append(log, 5, 3);
    }
}

#[test]
fn epochs_come_from_the_batches_and_are_stored_in_kafkas_format() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    assert_eq!(log.latest_epoch(), None);
    assert_eq!(log.end_offset_for_epoch(0), None);
    history(&mut log);
    assert_eq!(entries(&log), [(0, 0), (2, 6), (5, 15)]);
    assert_eq!(file(dir.path()), "0\n3\n0 0\n2 6\n5 15\n");
    assert_eq!(log.latest_epoch(), Some(5));
    // Kafka's endOffsetFor answers.
    assert_eq!(log.end_offset_for_epoch(0), Some((0, 6)));
    assert_eq!(log.end_offset_for_epoch(1), Some((0, 6)));
    assert_eq!(log.end_offset_for_epoch(2), Some((2, 15)));
    assert_eq!(log.end_offset_for_epoch(4), Some((2, 15)));
    assert_eq!(log.end_offset_for_epoch(5), Some((5, 21)));
    assert_eq!(log.end_offset_for_epoch(6), None);
    assert_eq!(log.end_offset_for_epoch(-1), None);
    // Markers carry the current epoch too, and it survives a restart.
    log.append_control(9, 0, ControlMarker::Commit, 1, 10)
        .unwrap();
    let marker = log.read(21, 1 << 10, 22).unwrap();
    assert_eq!(
        BatchHeader::parse(&marker.bytes)
            .unwrap()
            .partition_leader_epoch,
        5
    );
    log.close().unwrap();
    let mut log = open(dir.path());
    assert_eq!(entries(&log), [(0, 0), (2, 6), (5, 15)]);
    log.append_control(9, 0, ControlMarker::Abort, 1, 10)
        .unwrap();
    let marker = log.read(22, 1 << 10, 23).unwrap();
    assert_eq!(
        BatchHeader::parse(&marker.bytes)
            .unwrap()
            .partition_leader_epoch,
        5,
        "markers after a restart carry the latest epoch, not -1"
    );
}

#[test]
fn a_new_leader_epoch_starts_at_the_log_end_before_anything_is_appended() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    history(&mut log);
    log.start_leader_epoch(7).unwrap();
    assert_eq!(entries(&log), [(0, 0), (2, 6), (5, 15), (7, 21)]);
    // Again: nothing changes. Older (stale metadata): refused, the history stays.
    log.start_leader_epoch(7).unwrap();
    let stale = log.start_leader_epoch(6).unwrap_err();
    assert_eq!(stale.kafka_error_code(), 74);
    assert_eq!(entries(&log), [(0, 0), (2, 6), (5, 15), (7, 21)]);
    // The old epoch now ends where the new one starts.
    assert_eq!(log.end_offset_for_epoch(5), Some((5, 21)));
    assert_eq!(log.end_offset_for_epoch(7), Some((7, 21)));
    let marker = log
        .append_control(9, 0, ControlMarker::Commit, 1, 10)
        .unwrap();
    let read = log.read(marker.base_offset, 1 << 10, 22).unwrap();
    assert_eq!(
        BatchHeader::parse(&read.bytes)
            .unwrap()
            .partition_leader_epoch,
        7
    );
    drop(log);
    let log = open(dir.path());
    assert_eq!(entries(&log), [(0, 0), (2, 6), (5, 15), (7, 21)]);
}

#[test]
fn truncation_removes_the_epochs_it_cuts_and_the_file_follows() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    history(&mut log);
    log.truncate_to(16).unwrap();
    // The batch 15..17 holding offset 16 is cut: epoch 5 no longer has data.
    assert_eq!(log.log_end_offset(), 15);
    assert_eq!(entries(&log), [(0, 0), (2, 6)]);
    assert_eq!(file(dir.path()), "0\n2\n0 0\n2 6\n");
    assert_eq!(log.end_offset_for_epoch(2), Some((2, 15)));
    assert_eq!(log.end_offset_for_epoch(5), None);
    // A new epoch's data then starts at the new end.
    append(&mut log, 6, 2);
    assert_eq!(entries(&log), [(0, 0), (2, 6), (6, 15)]);
    assert_eq!(log.end_offset_for_epoch(5), Some((2, 15)));
    drop(log);
    let log = open(dir.path());
    assert_eq!(entries(&log), [(0, 0), (2, 6), (6, 15)]);
}

#[test]
fn moving_the_log_start_moves_the_first_epoch_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    history(&mut log);
    log.delete_records_before(8).unwrap();
    assert_eq!(entries(&log), [(2, 8), (5, 15)]);
    assert_eq!(file(dir.path()), "0\n2\n2 8\n5 15\n");
    assert_eq!(log.end_offset_for_epoch(0), Some((0, 8)));
    // Retention: whole segments go, the log start moves to the first one kept (here the
    // empty active segment at the log end).
    log.roll().unwrap();
    let mut limited = config();
    limited.retention_ms = 0;
    log.set_config(limited);
    log.apply_retention(1_000).unwrap();
    let start = log.log_start_offset();
    assert_eq!(start, 21);
    let expected = vec![(5, 21)];
    assert_eq!(entries(&log), expected);
    assert_eq!(log.end_offset_for_epoch(5), Some((5, 21)));
    assert_eq!(log.end_offset_for_epoch(2), Some((2, 21)));
    // Not written yet (it needs no fsync under the lock): open truncates the file's entries.
    drop(log);
    let log = open(dir.path());
    assert_eq!(log.log_start_offset(), start);
    assert_eq!(entries(&log), expected);
}

#[test]
fn a_missing_or_damaged_file_is_rebuilt_from_the_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    history(&mut log);
    log.close().unwrap();
    let path = dir.path().join(LEADER_EPOCH_FILE);
    let written = std::fs::read(&path).unwrap();
    let damaged: [&[u8]; 4] = [b"", b"0\n3\n0 0\n", b"garbage", b"1\n0\n"];
    for bytes in damaged {
        std::fs::write(&path, bytes).unwrap();
        let log = open(dir.path());
        assert_eq!(entries(&log), [(0, 0), (2, 6), (5, 15)], "{bytes:?}");
        log.close().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), written);
    }
    std::fs::remove_file(&path).unwrap();
    let log = open(dir.path());
    assert_eq!(entries(&log), [(0, 0), (2, 6), (5, 15)]);
    drop(log);
    // Entries past the log end (an append that failed, a truncation not yet written) go.
    std::fs::write(&path, b"0\n4\n0 0\n2 6\n5 15\n8 40\n").unwrap();
    let log = open(dir.path());
    assert_eq!(entries(&log), [(0, 0), (2, 6), (5, 15)]);
}

#[test]
fn a_follower_learns_the_epochs_from_the_leaders_batches() {
    let dirs = [(); 2].map(|_| tempfile::tempdir().unwrap());
    let mut leader = open(dirs[0].path());
    history(&mut leader);
    leader.start_leader_epoch(8).unwrap();
    append(&mut leader, 8, 2);
    let mut follower = open(dirs[1].path());
    while follower.log_end_offset() < leader.log_end_offset() {
        let read = leader
            .read(follower.log_end_offset(), 400, leader.log_end_offset())
            .unwrap();
        follower.append_as_follower(&read.bytes, 10).unwrap();
    }
    assert_eq!(follower.epoch_entries(), leader.epoch_entries());
    assert_eq!(
        follower.epoch_entries().last(),
        Some(&EpochEntry {
            epoch: 8,
            start_offset: 21
        })
    );
    for epoch in -1..10 {
        assert_eq!(
            follower.end_offset_for_epoch(epoch),
            leader.end_offset_for_epoch(epoch),
            "epoch {epoch}"
        );
    }
}

#[test]
fn a_rebuild_reads_a_few_headers_per_segment_not_the_whole_log() {
    use quill_fs::sim::SimDisk;
    let disk = SimDisk::new();
    let fs = disk.mount();
    fs.create_dir_all(Path::new("/data")).unwrap();
    let dir = Path::new("/data/topic-0");
    let committer = GroupCommitter::start().unwrap();
    let config = LogConfig {
        segment_bytes: 64 * 1024,
        index_interval_bytes: 4096,
        ..LogConfig::default()
    };
    let mut log = Log::open_in(&fs, dir, config.clone(), committer.clone()).unwrap();
    let mut expected = Vec::new();
    for epoch in 0..4 {
        expected.push((epoch, log.log_end_offset()));
        for _ in 0..1200 {
            let context = AppendContext {
                now_ms: 10,
                leader_epoch: epoch,
            };
            log.append(&build_simple_batch(100, 1, 500), context)
                .unwrap();
        }
    }
    let (segments, size_bytes) = (log.segment_count() as u64, log.size_bytes());
    assert!(segments >= 10, "{segments} segments");
    log.close().unwrap();
    fs.remove_file(&dir.join(LEADER_EPOCH_FILE)).unwrap();
    let before = disk.bytes_read();
    let log = Log::open_in(&disk.mount(), dir, config, committer).unwrap();
    let read_bytes = disk.bytes_read() - before;
    assert_eq!(entries(&log), expected);
    assert!(
        read_bytes < size_bytes / 4,
        "the rebuild read {read_bytes} bytes of a {size_bytes}-byte log in {segments} segments"
    );
}
