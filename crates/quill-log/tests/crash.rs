#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Crash recovery: files cut at random bytes, flipped bytes, damaged indexes. After each, the
//! log must hold exactly a valid prefix with dense offsets, and appends must continue from the
//! right offset. (A writer killed with SIGKILL is in `sigkill.rs`.)

use std::path::{Path, PathBuf};

mod crash_support;

use crash_support::{all_batches, context, open};
use proptest::prelude::*;
use quill_log::testing::build_simple_batch;
use quill_log::BatchHeader;

/// Writes `batches` batches (batch i has i % 5 + 1 records) and returns, per batch, its
/// (base offset, raw bytes as read back).
fn populate(dir: &Path, batches: usize, close_cleanly: bool) -> Vec<(i64, Vec<u8>)> {
    let mut log = open(dir);
    for i in 0..batches {
        log.append(
            &build_simple_batch(i as i64, i % 5 + 1, 40 + i % 7 * 30),
            context(),
        )
        .unwrap();
    }
    let written = all_batches(&log);
    if close_cleanly {
        log.close().unwrap();
    }
    written
}

fn segment_files(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    files
}

/// The recovered log must be a prefix of what was written (byte for byte), with dense offsets
/// and at least `min_batches` batches; then an append continues at the end.
fn assert_valid_prefix(dir: &Path, written: &[(i64, Vec<u8>)], min_batches: usize) {
    let mut log = open(dir);
    let recovered = all_batches(&log);
    assert!(
        recovered.len() >= min_batches,
        "lost batches: {} < {min_batches}",
        recovered.len()
    );
    assert!(recovered.len() <= written.len());
    for (got, expected) in recovered.iter().zip(written) {
        // The partition leader epoch (bytes 12..16) lies outside the v2 CRC, so a flipped bit
        // there is undetectable by design of the format; compare everything else.
        assert_eq!(got.0, expected.0);
        assert_eq!(
            without_epoch(&got.1),
            without_epoch(&expected.1),
            "recovered batch differs"
        );
    }
    let end = recovered.last().map_or(0, |(base, bytes)| {
        BatchHeader::parse(bytes).unwrap().last_offset_delta as i64 + base + 1
    });
    assert_eq!(log.log_end_offset(), end);
    let appended = log
        .append(&build_simple_batch(0, 2, 10), context())
        .unwrap();
    assert_eq!(appended.base_offset, end);
    drop(log);
    // And the repaired log reopens to the same state plus the new batch.
    let log = open(dir);
    assert_eq!(log.log_end_offset(), end + 2);
}

fn without_epoch(batch: &[u8]) -> Vec<u8> {
    let mut copy = batch.to_vec();
    copy[12..16].fill(0);
    copy
}

/// How many leading batches lie entirely within the first `cut` bytes of the last segment,
/// counting every earlier segment's batches.
fn batches_before_cut(written: &[(i64, Vec<u8>)], dir: &Path, cut: u64) -> usize {
    let last = segment_files(dir, "log").pop().unwrap();
    let base: i64 = last.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    let mut count = written.iter().filter(|(b, _)| *b < base).count();
    let mut position = 0u64;
    for (_, bytes) in written.iter().filter(|(b, _)| *b >= base) {
        position += bytes.len() as u64;
        if position > cut {
            break;
        }
        count += 1;
    }
    count
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn cutting_the_last_segment_anywhere_keeps_a_valid_prefix(cut_fraction in 0.0f64..1.0, clean in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let written = populate(dir.path(), 60, clean);
        let last = segment_files(dir.path(), "log").pop().unwrap();
        let length = std::fs::metadata(&last).unwrap().len();
        let cut = (length as f64 * cut_fraction) as u64;
        std::fs::OpenOptions::new().write(true).open(&last).unwrap().set_len(cut).unwrap();
        let expected = batches_before_cut(&written, dir.path(), cut);
        assert_valid_prefix(dir.path(), &written, expected);
        let recovered = all_batches(&open(dir.path()));
        prop_assert_eq!(recovered.len(), expected + 1);
    }

    #[test]
    fn flipped_bytes_in_the_last_segment_cut_the_log_there(position_fraction in 0.0f64..1.0, mask in 1u8..=255) {
        let dir = tempfile::tempdir().unwrap();
        let written = populate(dir.path(), 60, false);
        let last = segment_files(dir.path(), "log").pop().unwrap();
        let mut bytes = std::fs::read(&last).unwrap();
        let position = ((bytes.len() as f64 * position_fraction) as usize).min(bytes.len() - 1);
        bytes[position] ^= mask;
        std::fs::write(&last, &bytes).unwrap();
        // Batches wholly before the flipped byte must survive; the damaged one must not.
        let intact = batches_before_cut(&written, dir.path(), position as u64);
        assert_valid_prefix(dir.path(), &written, intact);
    }

    #[test]
    fn damaged_or_missing_indexes_are_rebuilt(which in 0usize..3, cut_fraction in 0.0f64..1.0, clean in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let written = populate(dir.path(), 60, clean);
        for extension in ["index", "timeindex"] {
            let files = segment_files(dir.path(), extension);
            let file = &files[files.len() / 2];
            match which {
                0 => std::fs::remove_file(file).unwrap(),
                1 => {
                    let length = std::fs::metadata(file).unwrap().len();
                    let cut = (length as f64 * cut_fraction) as u64;
                    std::fs::OpenOptions::new().write(true).open(file).unwrap().set_len(cut).unwrap();
                }
                _ => std::fs::write(file, vec![0xAB; 96]).unwrap(),
            }
        }
        assert_valid_prefix(dir.path(), &written, written.len());
        let log = open(dir.path());
        for (base, bytes) in &written {
            let read = log.read(*base, 1, i64::MAX).unwrap();
            prop_assert_eq!(&read.bytes[..], &bytes[..]);
        }
    }
}

#[test]
fn a_truncated_middle_segment_drops_the_segments_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let written = populate(dir.path(), 60, false);
    let logs = segment_files(dir.path(), "log");
    assert!(logs.len() >= 3);
    let middle = &logs[1];
    let length = std::fs::metadata(middle).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(middle)
        .unwrap()
        .set_len(length - 10)
        .unwrap();
    // Make the log scan from the start: no checkpoint.
    std::fs::remove_file(dir.path().join("quill-log.checkpoint")).unwrap();
    let first_base: i64 = logs[1]
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let before_middle = written.iter().filter(|(b, _)| *b < first_base).count();
    assert_valid_prefix(dir.path(), &written, before_middle);
    assert_eq!(segment_files(dir.path(), "log").len(), 2);
}

#[test]
fn garbage_appended_after_a_clean_close_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let written = populate(dir.path(), 30, true);
    let last = segment_files(dir.path(), "log").pop().unwrap();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&last)
        .unwrap();
    std::io::Write::write_all(&mut file, &[0u8; 100]).unwrap();
    assert_valid_prefix(dir.path(), &written, written.len());
}

#[test]
fn checkpoint_if_changed_writes_only_when_the_recovery_point_moved() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    for i in 0..5 {
        log.append(&build_simple_batch(i, 2, 50), context())
            .unwrap();
    }
    log.flush().unwrap();
    log.checkpoint_if_changed().unwrap();
    let checkpoint = std::fs::read(dir.path().join("quill-log.checkpoint")).unwrap();
    log.checkpoint_if_changed().unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("quill-log.checkpoint")).unwrap(),
        checkpoint,
        "unchanged state rewrites nothing"
    );
    log.append(&build_simple_batch(9, 2, 50), context())
        .unwrap();
    log.flush().unwrap();
    log.checkpoint_if_changed().unwrap();
    assert_ne!(
        std::fs::read(dir.path().join("quill-log.checkpoint")).unwrap(),
        checkpoint,
        "a new durable end is recorded"
    );
    drop(log);
    let log = open(dir.path());
    assert_eq!(log.log_end_offset(), 12);
}

/// An index rebuilt by an unclean open is trusted by the next one, which scans only after its
/// last offset entry: the max timestamp must be in it (found by the model test).
#[test]
fn timestamp_lookup_survives_two_unclean_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    for (records, value_bytes, timestamp_ms) in [
        (1, 0, 0),
        (1, 126, 0),
        (2, 26, 8782),
        (1, 135, 0),
        (1, 0, 0),
    ] {
        log.append(
            &build_simple_batch(timestamp_ms, records, value_bytes),
            context(),
        )
        .unwrap();
    }
    for _ in 0..2 {
        drop(log);
        log = open(dir.path());
    }
    let found = log.offset_for_timestamp(1).unwrap().unwrap();
    assert_eq!((found.offset, found.timestamp_ms), (2, 8782));
}
