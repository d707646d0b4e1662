#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Power loss at every step of a cleaning round (quill-fs's simulated disk): whatever the
//! crash point, the reopened log is valid, holds only records it held before, keeps the latest
//! record of every key and its end offset, and a full cleaning then gives exactly what an
//! uninterrupted one gives.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::RwLock;

use common::*;
use quill_fs::sim::{CrashMode, SimDisk};
use quill_log::records::Compression;
use quill_log::{GroupCommitter, Log, LogConfig};

const NOW: i64 = 5_000_000;

fn config() -> LogConfig {
    // Small segments: a round cleans several groups, so several swaps can be cut.
    compact_config(1500, 86_400_000)
}

fn open_on(disk: &SimDisk) -> Log {
    Log::open_in(
        &disk.mount(),
        Path::new("/t-0"),
        config(),
        GroupCommitter::start().unwrap(),
    )
    .unwrap()
}

/// A disk holding a closed log with updates and tombstones over several segments.
fn prepared_disk() -> SimDisk {
    let disk = SimDisk::new();
    let mut log = open_on(&disk);
    for i in 0..120 {
        let key = format!("key-{}", i % 11);
        let value = (i % 13 != 0).then(|| format!("value-{i}"));
        let batch = keyed_batch(&[record(&key, value.as_deref())], NOW, Compression::None);
        log.append(&batch, context(NOW)).unwrap();
    }
    log.roll().unwrap();
    log.close().unwrap();
    disk
}

fn latest_per_key(records: &[ReadRecord]) -> BTreeMap<Vec<u8>, ReadRecord> {
    records
        .iter()
        .map(|r| (r.key.clone().unwrap(), r.clone()))
        .collect()
}

#[test]
fn a_crash_at_any_step_of_cleaning_leaves_a_valid_log_with_the_same_content() {
    let reference_disk = prepared_disk();
    let (original, end) = {
        let log = open_on(&reference_disk);
        (read_all(&log).1, log.log_end_offset())
    };
    let expected_cleaned = {
        let handle = RwLock::new(open_on(&reference_disk));
        let before = reference_disk.mutating_calls();
        clean_fully(&mut cleaner(1 << 20), &handle, NOW);
        let calls = reference_disk.mutating_calls() - before;
        assert!(calls > 10, "a round should take many steps, took {calls}");
        let log = handle.into_inner().unwrap();
        read_all(&log).1
    };
    assert!(expected_cleaned.len() < original.len());
    assert_eq!(latest_per_key(&expected_cleaned), latest_per_key(&original));

    let modes = [
        CrashMode::LoseUnsynced,
        CrashMode::Partial { seed: 1 },
        CrashMode::Partial { seed: 7 },
    ];
    let mut crash_point = 0;
    let mut completed_without_crash = 0;
    while completed_without_crash < modes.len() {
        for mode in modes {
            let disk = prepared_disk();
            let handle = RwLock::new(open_on(&disk));
            disk.power_loss_after(crash_point, mode);
            let outcome = cleaner(1 << 20).clean(&handle, NOW);
            if disk.crash_pending() {
                // The round finished before the crash point: nothing more to cut.
                assert!(outcome.unwrap().is_some());
                completed_without_crash += 1;
                continue;
            }
            drop(handle);
            let recovered = open_on(&disk);
            let (_, records) = read_all(&recovered);
            assert_eq!(
                recovered.log_end_offset(),
                end,
                "crash at {crash_point} {mode:?}"
            );
            assert!(
                records.windows(2).all(|w| w[0].offset < w[1].offset),
                "offsets must increase (crash at {crash_point} {mode:?})"
            );
            for record in &records {
                assert!(
                    original.contains(record),
                    "{record:?} was never written (crash at {crash_point} {mode:?})"
                );
            }
            assert_eq!(
                latest_per_key(&records),
                latest_per_key(&original),
                "crash at {crash_point} {mode:?}"
            );
            // Cleaning the recovered log converges on the uninterrupted result.
            let handle = RwLock::new(recovered);
            clean_fully(&mut cleaner(1 << 20), &handle, NOW);
            let log = handle.into_inner().unwrap();
            assert_eq!(
                read_all(&log).1,
                expected_cleaned,
                "crash at {crash_point} {mode:?}"
            );
        }
        crash_point += 1;
        assert!(crash_point < 10_000, "cleaning never completed");
    }
}
