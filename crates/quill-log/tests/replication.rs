#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Replication at the log level: a follower appends what the leader's `read` returned
//! (`Log::append_as_follower`) and ends up with the leader's bytes and producer state; bad
//! input is refused with nothing written; power loss keeps the durable prefix.

mod common;

use std::path::Path;

use quill_fs::sim::{CrashMode, SimDisk};
use quill_log::records::Compression;
use quill_log::testing::{build_simple_batch, fix_crc, with_producer};
use quill_log::{
    AppendContext, BatchHeader, ControlMarker, GroupCommitter, Log, LogConfig, LogError,
    TimestampType,
};

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

fn open(dir: &Path, config: LogConfig) -> Log {
    Log::open(dir, config, GroupCommitter::start().unwrap()).unwrap()
}

fn at(now_ms: i64, leader_epoch: i32) -> AppendContext {
    AppendContext {
        now_ms,
        leader_epoch,
    }
}

fn idempotent(producer_id: i64, epoch: i16, sequence: i32, records: usize) -> Vec<u8> {
    with_producer(
        build_simple_batch(1_000, records, 20),
        producer_id,
        epoch,
        sequence,
        false,
    )
}

fn transactional(producer_id: i64, epoch: i16, sequence: i32, records: usize) -> Vec<u8> {
    with_producer(
        build_simple_batch(1_000, records, 20),
        producer_id,
        epoch,
        sequence,
        true,
    )
}

/// Every byte of the log from its start to its end, as reads return it.
fn all_bytes(log: &Log) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let read = log.read(offset, 1 << 20, log.log_end_offset()).unwrap();
        assert!(read.next_offset > offset, "reads must advance");
        out.extend_from_slice(&read.bytes);
        offset = read.next_offset;
    }
    out
}

/// Fetches from the leader at the follower's log end until it has everything, `max_bytes` at a
/// time (at least one batch), as a replica fetcher does.
fn replicate(leader: &Log, follower: &mut Log, max_bytes: usize, now_ms: i64) {
    while follower.log_end_offset() < leader.log_end_offset() {
        let read = leader
            .read(
                follower.log_end_offset(),
                max_bytes,
                leader.log_end_offset(),
            )
            .unwrap();
        let info = follower.append_as_follower(&read.bytes, now_ms).unwrap();
        assert_eq!(info.log_end_offset, read.next_offset);
        assert_eq!(info.bytes, read.bytes.len() as u64);
    }
}

fn assert_same_state(leader: &Log, follower: &Log) {
    assert_eq!(follower.log_start_offset(), leader.log_start_offset());
    assert_eq!(follower.log_end_offset(), leader.log_end_offset());
    assert_eq!(all_bytes(follower), all_bytes(leader));
    assert_eq!(follower.producers(), leader.producers());
    let end = leader.log_end_offset();
    assert_eq!(
        follower.aborted_transactions(0, end),
        leader.aborted_transactions(0, end)
    );
    assert_eq!(
        follower.first_unstable_offset(),
        leader.first_unstable_offset()
    );
}

/// A leader history with everything a follower must carry: plain, idempotent, transactional
/// (committed, aborted and still open) and compressed batches, markers, epochs that change,
/// enough bytes to roll several segments.
fn write_leader_history(leader: &mut Log) {
    leader
        .append(&build_simple_batch(500, 3, 30), at(10, 0))
        .unwrap();
    leader.append(&idempotent(1, 0, 0, 2), at(11, 0)).unwrap();
    leader.append(&idempotent(1, 0, 2, 3), at(12, 0)).unwrap();
    leader
        .append(&transactional(2, 0, 0, 2), at(13, 1))
        .unwrap();
    leader
        .append(&transactional(3, 0, 0, 1), at(14, 1))
        .unwrap();
    leader
        .append_control(2, 0, ControlMarker::Abort, 5, 15)
        .unwrap();
    let keyed = [common::record("k1", Some("v1")), common::record("k2", None)];
    for compression in [Compression::Gzip, Compression::Zstd, Compression::Lz4] {
        leader
            .append(&common::keyed_batch(&keyed, 16, compression), at(16, 3))
            .unwrap();
    }
    leader
        .append_control(3, 0, ControlMarker::Commit, 5, 17)
        .unwrap();
    for i in 0..12 {
        leader
            .append(&idempotent(4, 1, i * 2, 2), at(18 + i64::from(i), 3))
            .unwrap();
    }
    // Left open: the follower must know it (first unstable offset, a later marker).
    leader
        .append(&transactional(5, 2, 0, 2), at(40, 3))
        .unwrap();
    assert!(leader.segment_count() > 2, "the history must span segments");
}

#[test]
fn a_follower_holds_the_leaders_bytes_and_producer_state() {
    for timestamp_type in [TimestampType::CreateTime, TimestampType::LogAppendTime] {
        let config = LogConfig {
            timestamp_type,
            ..config()
        };
        let dirs = [(); 3].map(|_| tempfile::tempdir().unwrap());
        let mut leader = open(dirs[0].path(), config.clone());
        write_leader_history(&mut leader);
        // One batch per fetch, and whole segments per fetch.
        for (dir, max_bytes) in [(&dirs[1], 1), (&dirs[2], 1 << 20)] {
            let mut follower = open(dir.path(), config.clone());
            replicate(&leader, &mut follower, max_bytes, 50);
            assert_same_state(&leader, &follower);
            follower.close().unwrap();
            let follower = open(dir.path(), config.clone());
            assert_same_state(&leader, &follower);
            // Unclean: the state comes back from replay alone.
            drop(follower);
            let follower = open(dir.path(), config.clone());
            assert_same_state(&leader, &follower);
        }
    }
}

#[test]
fn a_follower_that_becomes_leader_knows_retries_and_transactions() {
    let dirs = [(); 2].map(|_| tempfile::tempdir().unwrap());
    let mut leader = open(dirs[0].path(), config());
    write_leader_history(&mut leader);
    let mut follower = open(dirs[1].path(), config());
    replicate(&leader, &mut follower, 700, 50);
    let mut new_leader = follower;
    // A retry of producer 4's last batch (sequences 22..23) gets the leader's offsets back.
    let original = leader.append(&idempotent(4, 1, 22, 2), at(60, 3)).unwrap();
    assert!(original.duplicate);
    let retry = new_leader
        .append(&idempotent(4, 1, 22, 2), at(60, 4))
        .unwrap();
    assert!(retry.duplicate);
    assert_eq!(
        (retry.base_offset, retry.last_offset),
        (original.base_offset, original.last_offset)
    );
    // Gaps and zombies are refused as the old leader would.
    let gap = new_leader
        .append(&idempotent(4, 1, 30, 1), at(60, 4))
        .unwrap_err();
    assert_eq!(gap.kafka_error_code(), 45);
    let zombie = new_leader
        .append(&idempotent(4, 0, 24, 1), at(60, 4))
        .unwrap_err();
    assert_eq!(zombie.kafka_error_code(), 47);
    let next = new_leader
        .append(&idempotent(4, 1, 24, 1), at(60, 4))
        .unwrap();
    assert!(!next.duplicate);
    // Producer 5's transaction is open here too: a non-transactional write is refused, the
    // marker closes it and moves the first unstable offset to the end.
    let open_at = new_leader.first_unstable_offset();
    assert!(open_at < new_leader.log_end_offset());
    let mixed = new_leader
        .append(&idempotent(5, 2, 2, 1), at(60, 4))
        .unwrap_err();
    assert_eq!(mixed.kafka_error_code(), 48);
    new_leader
        .append_control(5, 2, ControlMarker::Commit, 5, 61)
        .unwrap();
    assert_eq!(
        new_leader.first_unstable_offset(),
        new_leader.log_end_offset()
    );
    // An older coordinator epoch is fenced: the follower learned epoch 5 from the markers.
    let fenced = new_leader
        .append_control(3, 0, ControlMarker::Commit, 4, 62)
        .unwrap_err();
    assert_eq!(fenced.kafka_error_code(), 52);
}

/// The leader's batches from `from_offset` on, one read.
fn leader_bytes(leader: &Log, from_offset: i64) -> Vec<u8> {
    leader
        .read(from_offset, 1 << 20, leader.log_end_offset())
        .unwrap()
        .bytes
        .to_vec()
}

fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    // The base offset is outside the CRC's range.
    batch[..8].copy_from_slice(&base_offset.to_be_bytes());
}

#[test]
fn bad_replicated_input_is_refused_with_nothing_written() {
    let dirs = [(); 2].map(|_| tempfile::tempdir().unwrap());
    let mut leader = open(dirs[0].path(), config());
    for i in 0..4 {
        leader
            .append(&build_simple_batch(100, 2, 10), at(i, 0))
            .unwrap();
    }
    let mut follower = open(dirs[1].path(), config());
    let first = leader.read(0, 1, leader.log_end_offset()).unwrap();
    follower.append_as_follower(&first.bytes, 1).unwrap();
    assert_eq!(follower.log_end_offset(), 2);
    let rest = leader_bytes(&leader, 2);
    let header = BatchHeader::parse(&rest).unwrap();
    let one = &rest[..header.size_bytes];

    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut bad_crc = rest.clone();
    *bad_crc.last_mut().unwrap() ^= 1;
    cases.push(("CRC of the last batch", bad_crc));
    let mut bad_magic = one.to_vec();
    bad_magic[16] = 1;
    cases.push(("magic 1", bad_magic));
    cases.push(("a batch cut short", rest[..rest.len() - 1].to_vec()));
    cases.push(("a header cut short", rest[..one.len() + 30].to_vec()));
    let mut below_end = one.to_vec();
    set_base_offset(&mut below_end, 1);
    cases.push(("first batch below the log end", below_end));
    let mut repeated = one.to_vec();
    repeated.extend_from_slice(one);
    cases.push(("the same offsets twice", repeated));
    let mut negative_delta = one.to_vec();
    negative_delta[23..27].copy_from_slice(&(-1i32).to_be_bytes());
    fix_crc(&mut negative_delta);
    cases.push(("negative lastOffsetDelta", negative_delta));
    let mut too_many_records = one.to_vec();
    too_many_records[57..61].copy_from_slice(&3i32.to_be_bytes());
    fix_crc(&mut too_many_records);
    cases.push(("more records than offsets", too_many_records));
    let mut bad_codec = one.to_vec();
    bad_codec[22] |= 7;
    fix_crc(&mut bad_codec);
    cases.push(("unknown codec", bad_codec));
    let mut short_length = one.to_vec();
    short_length[8..12].copy_from_slice(&10i32.to_be_bytes());
    cases.push(("length below the header", short_length));
    let mut overflowing = one.to_vec();
    set_base_offset(&mut overflowing, i64::MAX - 1);
    cases.push(("offsets past i64::MAX", overflowing));
    let mut huge = Vec::new();
    while huge.len() as u64 <= config().segment_bytes {
        huge.extend_from_slice(&build_simple_batch(100, 1, 100));
    }
    cases.push(("more than segment.bytes", huge));

    let before = all_bytes(&follower);
    let size = follower.size_bytes();
    for (name, bytes) in &cases {
        let error = follower.append_as_follower(bytes, 2).unwrap_err();
        assert_eq!(follower.log_end_offset(), 2, "{name}: {error}");
        assert_eq!(follower.size_bytes(), size, "{name}");
        assert_eq!(all_bytes(&follower), before, "{name}");
    }
    let error = follower.append_as_follower(&cases[4].1, 2).unwrap_err();
    assert!(
        matches!(
            error,
            LogError::OffsetOutOfOrder {
                offset: 1,
                expected_offset: 2
            }
        ),
        "{error}"
    );
    let error = follower.append_as_follower(&cases[5].1, 2).unwrap_err();
    assert!(
        matches!(
            error,
            LogError::OffsetOutOfOrder {
                offset: 2,
                expected_offset: 4
            }
        ),
        "{error}"
    );
    // Nothing given, nothing written; then the good bytes go in.
    let empty = follower.append_as_follower(&[], 2).unwrap();
    assert_eq!((empty.batch_count, empty.log_end_offset), (0, 2));
    follower.append_as_follower(&rest, 2).unwrap();
    assert_eq!(all_bytes(&follower), all_bytes(&leader));
}

#[test]
fn batches_the_leaders_cleaner_left_gaps_between_are_kept_across_restarts() {
    let dirs = [(); 2].map(|_| tempfile::tempdir().unwrap());
    let mut leader = open(dirs[0].path(), config());
    for i in 0..3 {
        leader
            .append(&build_simple_batch(100, 2, 10), at(i, 0))
            .unwrap();
    }
    let bytes = leader_bytes(&leader, 0);
    let mut batches = Vec::new();
    let mut position = 0;
    while position < bytes.len() {
        let header = BatchHeader::parse(&bytes[position..]).unwrap();
        batches.push(bytes[position..position + header.size_bytes].to_vec());
        position += header.size_bytes;
    }
    // As the leader's cleaner could leave them: 0..1, then 10..11 and 20..21.
    set_base_offset(&mut batches[1], 10);
    set_base_offset(&mut batches[2], 20);
    let mut follower = open(dirs[1].path(), config());
    follower.append_as_follower(&batches[0], 1).unwrap();
    let mut gapped = batches[1].clone();
    gapped.extend_from_slice(&batches[2]);
    let info = follower.append_as_follower(&gapped, 1).unwrap();
    assert_eq!((info.first_offset, info.log_end_offset), (10, 22));
    let expected = all_bytes(&follower);
    assert_eq!(expected, batches.concat());
    // After a crash every batch is validated again, gaps and all.
    drop(follower);
    let mut follower = open(dirs[1].path(), config());
    assert_eq!(follower.log_end_offset(), 22);
    assert_eq!(all_bytes(&follower), expected);
    assert_eq!(
        follower.read(5, 1 << 20, 22).unwrap().bytes.len(),
        batches[1].len() * 2
    );
    follower
        .append(&build_simple_batch(100, 1, 10), at(3, 0))
        .unwrap();
    follower.close().unwrap();
    let follower = open(dirs[1].path(), config());
    assert_eq!(follower.log_end_offset(), 23);
}

const SIM_DIR: &str = "/data/topic-0";

#[test]
fn power_loss_keeps_the_durable_prefix_of_replicated_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut leader = open(dir.path(), config());
    write_leader_history(&mut leader);
    let everything = all_bytes(&leader);
    let modes = [
        CrashMode::LoseUnsynced,
        CrashMode::Partial { seed: 1 },
        CrashMode::Partial { seed: 7 },
        CrashMode::Partial { seed: 99 },
    ];
    for mode in modes {
        let disk = SimDisk::new();
        let fs = disk.mount();
        fs.create_dir_all(Path::new("/data")).unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        let committer = GroupCommitter::start().unwrap();
        let mut follower =
            Log::open_in(&fs, Path::new(SIM_DIR), config(), committer.clone()).unwrap();
        let mut durable_end = 0;
        let mut round = 0;
        while follower.log_end_offset() < leader.log_end_offset() {
            let read = leader
                .read(follower.log_end_offset(), 300, leader.log_end_offset())
                .unwrap();
            let info = follower.append_as_follower(&read.bytes, 50).unwrap();
            if round % 2 == 0 {
                follower.wait_durable(info.log_end_offset).unwrap();
                durable_end = info.log_end_offset;
            }
            round += 1;
        }
        disk.power_loss(mode);
        drop(follower);
        let follower =
            Log::open_in(&disk.mount(), Path::new(SIM_DIR), config(), committer).unwrap();
        assert!(follower.log_end_offset() >= durable_end, "{mode:?}");
        let kept = all_bytes(&follower);
        assert_eq!(kept[..], everything[..kept.len()], "{mode:?}");
        // The producer state is the leader's as of the surviving prefix: replay agrees.
        let first_unstable = follower.first_unstable_offset();
        assert!(first_unstable <= follower.log_end_offset());
    }
}

#[test]
fn a_truncation_is_durable_when_it_returns() {
    let disk = SimDisk::new();
    let fs = disk.mount();
    fs.create_dir_all(Path::new("/data")).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    let committer = GroupCommitter::start().unwrap();
    let mut log = Log::open_in(&fs, Path::new(SIM_DIR), config(), committer.clone()).unwrap();
    for epoch in [0, 0, 3, 3] {
        log.append(&build_simple_batch(100, 2, 10), at(1, epoch))
            .unwrap();
    }
    log.wait_durable(8).unwrap();
    log.truncate_to(4).unwrap();
    // Nothing unsynced survives: the cut must have been synced, or the epoch-3 batches (which
    // the leader-epoch cache no longer lists) would come back.
    disk.power_loss(CrashMode::LoseUnsynced);
    drop(log);
    let log = Log::open_in(&disk.mount(), Path::new(SIM_DIR), config(), committer).unwrap();
    assert_eq!(log.log_end_offset(), 4);
    assert_eq!(log.latest_epoch(), Some(0));
    assert_eq!(log.end_offset_for_epoch(0), Some((0, 4)));
}

#[test]
fn a_follower_behind_the_leaders_log_start_restarts_its_log_there() {
    let dirs = [(); 2].map(|_| tempfile::tempdir().unwrap());
    let mut leader = open(dirs[0].path(), config());
    write_leader_history(&mut leader);
    let leader_start = leader.log_end_offset() - 6;
    leader.delete_records_before(leader_start).unwrap();
    let delayed = LogConfig {
        file_delete_delay_ms: 60_000,
        ..config()
    };
    for (start, config) in [(leader_start, config()), (0, config()), (0, delayed)] {
        let mut follower = open(dirs[1].path(), config.clone());
        follower.truncate_fully_and_start_at(0).unwrap();
        follower.append(&idempotent(9, 0, 0, 2), at(1, 0)).unwrap();
        for _ in 0..6 {
            follower
                .append(&build_simple_batch(1, 10, 20), at(1, 0))
                .unwrap();
        }
        assert!(follower.segment_count() > 1);
        follower.truncate_fully_and_start_at(start).unwrap();
        assert_eq!(follower.log_start_offset(), start);
        assert_eq!(follower.log_end_offset(), start);
        assert_eq!(follower.segment_count(), 1);
        assert!(follower.producers().is_empty());
        assert!(follower.epoch_entries().is_empty());
        assert_eq!(follower.durable_end_offset(), start);
        let read = leader
            .read(leader_start, 1 << 20, leader.log_end_offset())
            .unwrap();
        if start == leader_start {
            follower.append_as_follower(&read.bytes, 2).unwrap();
            assert_eq!(follower.log_end_offset(), leader.log_end_offset());
            assert_eq!(all_bytes(&follower), all_bytes(&leader));
            assert_eq!(follower.epoch_entries(), leader.epoch_entries());
        }
        let end = follower.log_end_offset();
        drop(follower);
        let follower = open(dirs[1].path(), config.clone());
        assert_eq!(
            (follower.log_start_offset(), follower.log_end_offset()),
            (start, end)
        );
        follower.close().unwrap();
    }
}

#[test]
fn a_follower_starting_inside_the_leaders_first_batch_restarts_at_its_base() {
    let dirs = [(); 2].map(|_| tempfile::tempdir().unwrap());
    let mut leader = open(dirs[0].path(), config());
    for _ in 0..3 {
        leader
            .append(&build_simple_batch(100, 4, 10), at(1, 2))
            .unwrap();
    }
    // DeleteRecords in the middle of the second batch (4..7).
    leader.delete_records_before(6).unwrap();
    let mut follower = open(dirs[1].path(), config());
    follower.truncate_fully_and_start_at(6).unwrap();
    let read = leader.read(6, 1 << 20, leader.log_end_offset()).unwrap();
    let info = follower.append_as_follower(&read.bytes, 2).unwrap();
    assert_eq!((info.first_offset, info.log_end_offset), (4, 12));
    assert_eq!(follower.log_start_offset(), 4);
    follower
        .delete_records_before(leader.log_start_offset())
        .unwrap();
    assert_eq!(follower.log_start_offset(), 6);
    assert_eq!(all_bytes(&follower), all_bytes(&leader));
    assert_eq!(follower.epoch_entries(), leader.epoch_entries());
    // Only an empty log restarts: one holding data refuses a batch below its end.
    let again = follower.append_as_follower(&read.bytes, 2).unwrap_err();
    assert!(matches!(
        again,
        LogError::OffsetOutOfOrder {
            offset: 4,
            expected_offset: 12
        }
    ));
}

#[test]
fn a_gap_wider_than_a_segment_can_index_starts_a_new_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut follower = open(dir.path(), config());
    let mut first = build_simple_batch(100, 2, 10);
    follower.append_as_follower(&first, 1).unwrap();
    // The next surviving batch of a cleaned leader, 2^32 offsets later.
    let far = (1i64 << 32) + 7;
    set_base_offset(&mut first, far);
    let info = follower.append_as_follower(&first, 1).unwrap();
    assert_eq!(info.log_end_offset, far + 2);
    assert_eq!(follower.segment_count(), 2);
    let bytes = all_bytes(&follower);
    assert_eq!(
        follower.read(5, 1 << 20, far + 2).unwrap().next_offset,
        far + 2
    );
    let mut next = build_simple_batch(100, 1, 10);
    set_base_offset(&mut next, far + 2);
    follower.append_as_follower(&next, 1).unwrap();
    for clean in [false, true] {
        let end = follower.log_end_offset();
        if clean {
            follower.close().unwrap();
        } else {
            drop(follower);
        }
        follower = open(dir.path(), config());
        assert_eq!(follower.log_end_offset(), end);
        assert_eq!(all_bytes(&follower)[..bytes.len()], bytes[..]);
    }
    // An empty log's empty segment is replaced by one at the far batch.
    let empty_dir = tempfile::tempdir().unwrap();
    let mut follower = open(empty_dir.path(), config());
    follower.append_as_follower(&first, 1).unwrap();
    assert_eq!(follower.segment_count(), 1);
    assert_eq!(
        (follower.log_start_offset(), follower.log_end_offset()),
        (far, far + 2)
    );
    drop(follower);
    let follower = open(empty_dir.path(), config());
    assert_eq!(
        (follower.log_start_offset(), follower.log_end_offset()),
        (far, far + 2)
    );
}

/// One change to the leader's bytes before a follower appends them.
#[derive(Clone, Debug)]
enum Mutation {
    BaseOffset {
        batch: usize,
        value: i64,
    },
    Length {
        batch: usize,
        value: i32,
    },
    Epoch {
        batch: usize,
        value: i32,
    },
    Magic {
        batch: usize,
        value: u8,
    },
    /// A header field inside the CRC's range, CRC fixed (at 23: lastOffsetDelta, 57: count).
    CoveredField {
        batch: usize,
        at: usize,
        value: i32,
    },
    Cut {
        keep: usize,
    },
    Junk {
        bytes: Vec<u8>,
    },
}

fn mutation() -> impl proptest::strategy::Strategy<Value = Mutation> {
    use proptest::prelude::*;
    let offset = prop_oneof![
        -3i64..40,
        Just(i64::MAX),
        Just(i64::MAX - 3),
        Just(i64::MIN),
        Just((1i64 << 31) + 3),
        Just(1i64 << 40),
    ];
    let field = prop_oneof![-2i32..12, Just(i32::MAX), Just(i32::MIN)];
    prop_oneof![
        (0usize..4, offset).prop_map(|(batch, value)| Mutation::BaseOffset { batch, value }),
        (0usize..4, field.clone()).prop_map(|(batch, value)| Mutation::Length { batch, value }),
        (0usize..4, field.clone()).prop_map(|(batch, value)| Mutation::Epoch { batch, value }),
        (0usize..4, 0u8..4).prop_map(|(batch, value)| Mutation::Magic { batch, value }),
        (0usize..4, prop_oneof![Just(23usize), Just(57usize)], field)
            .prop_map(|(batch, at, value)| Mutation::CoveredField { batch, at, value }),
        (0usize..2000).prop_map(|keep| Mutation::Cut { keep }),
        proptest::collection::vec(any::<u8>(), 1..80).prop_map(|bytes| Mutation::Junk { bytes }),
    ]
}

fn batch_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut position = 0;
    while let Some(Ok(header)) = bytes.get(position..).map(BatchHeader::parse) {
        starts.push(position);
        position += header.size_bytes;
    }
    starts
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    let starts = batch_starts(bytes);
    let start = |batch: usize| starts[batch % starts.len()];
    match mutation {
        Mutation::BaseOffset { batch, value } => {
            let at = start(*batch);
            bytes[at..at + 8].copy_from_slice(&value.to_be_bytes());
        }
        Mutation::Length { batch, value } => {
            let at = start(*batch) + 8;
            bytes[at..at + 4].copy_from_slice(&value.to_be_bytes());
        }
        Mutation::Epoch { batch, value } => {
            let at = start(*batch) + 12;
            bytes[at..at + 4].copy_from_slice(&value.to_be_bytes());
        }
        Mutation::Magic { batch, value } => bytes[start(*batch) + 16] = *value,
        Mutation::CoveredField { batch, at, value } => {
            let begin = start(*batch);
            let header = BatchHeader::parse(&bytes[begin..]).unwrap();
            let field = begin + at;
            bytes[field..field + 4].copy_from_slice(&value.to_be_bytes());
            if let Some(whole) = bytes.get_mut(begin..begin.saturating_add(header.size_bytes)) {
                fix_crc(whole);
            }
        }
        Mutation::Cut { keep } => bytes.truncate(*keep),
        Mutation::Junk { bytes: junk } => bytes.extend_from_slice(junk),
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, failure_persistence: None, .. Default::default() })]

    /// Whatever the leader's bytes turn into, a follower append never panics, refuses with
    /// nothing written, or writes what a restart then finds again.
    #[test]
    fn damaged_replicated_input_is_refused_or_kept_whole(
        mutations in proptest::collection::vec(mutation(), 1..3),
        prefix_batches in 0usize..3,
    ) {
        let dirs = [(); 2].map(|_| tempfile::tempdir().unwrap());
        let mut leader = open(dirs[0].path(), config());
        for i in 0..6 {
            leader.append(&idempotent(3, 0, i * 2, 2), at(1, 1)).unwrap();
        }
        let mut follower = open(dirs[1].path(), config());
        let prefix_end = 2 * prefix_batches as i64;
        if prefix_end > 0 {
            follower.append_as_follower(&leader_bytes_below(&leader, prefix_end), 1).unwrap();
        }
        let mut bytes = leader.read(prefix_end, 4 * 150, leader.log_end_offset()).unwrap().bytes.to_vec();
        for mutation in &mutations {
            if !bytes.is_empty() && BatchHeader::parse(&bytes).is_ok() {
                apply(&mut bytes, mutation);
            }
        }
        let (end, size) = (follower.log_end_offset(), follower.size_bytes());
        let before = all_bytes(&follower);
        match follower.append_as_follower(&bytes, 2) {
            Err(_) => {
                assert_eq!(follower.log_end_offset(), end);
                assert_eq!(follower.size_bytes(), size);
                assert_eq!(all_bytes(&follower), before);
            }
            Ok(info) => {
                let after = all_bytes(&follower);
                drop(follower);
                let follower = open(dirs[1].path(), config());
                assert_eq!(follower.log_end_offset(), info.log_end_offset);
                assert_eq!(all_bytes(&follower), after);
            }
        }
    }
}

fn leader_bytes_below(leader: &Log, end: i64) -> Vec<u8> {
    leader.read(0, 1 << 20, end).unwrap().bytes.to_vec()
}
