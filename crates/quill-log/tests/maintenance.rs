//! Maintenance (retention's deletes and renames, the recovery-point checkpoint's fsyncs) never
//! holds the log's lock while it does file work, so producers are never stalled behind it
//! (issue 11). The simulated disk calls a hook at every mutating call; the hook asks whether
//! the lock the broker keeps its partition behind could be taken right then.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use quill_fs::sim::SimDisk;
use quill_log::testing::build_simple_batch;
use quill_log::{AppendContext, FlushPolicy, GroupCommitter, Log, LogConfig};

const DIR: &str = "/data/topic-0";
const NOW_MS: i64 = 1_000_000;

/// Counts the mutating calls made while the lock was free and while it was held.
#[derive(Default)]
struct LockProbe {
    free: AtomicUsize,
    held: AtomicUsize,
}

fn open_log(disk: &SimDisk, config: LogConfig) -> Log {
    let fs = disk.mount();
    fs.create_dir_all(Path::new("/data")).unwrap();
    let committer = GroupCommitter::start().unwrap();
    Log::open_in(&fs, Path::new(DIR), config, committer).unwrap()
}

fn append(log: &mut Log, now_ms: i64) {
    let batch = build_simple_batch(now_ms, 4, 200);
    log.append(
        &batch,
        AppendContext {
            now_ms,
            leader_epoch: 0,
        },
    )
    .unwrap();
    log.wait_durable(log.log_end_offset()).unwrap();
}

/// Runs one maintenance pass with the probe installed; returns (free, held) counts.
fn maintain_probed(
    disk: &SimDisk,
    lock: &Arc<RwLock<Option<Log>>>,
    now_ms: i64,
    checkpoint: bool,
) -> (usize, usize, u64) {
    let probe = Arc::new(LockProbe::default());
    let hook = {
        let probe = Arc::clone(&probe);
        let lock = Arc::clone(lock);
        Arc::new(move || {
            // The maintenance thread itself asks: if it held the lock, this fails.
            let counter = if lock.try_write().is_ok() {
                &probe.free
            } else {
                &probe.held
            };
            counter.fetch_add(1, Ordering::Relaxed);
        })
    };
    disk.set_mutation_hook(Some(hook));
    let deleted = quill_log::run_maintenance(lock, now_ms, i64::MAX, checkpoint, |_, _| {})
        .expect("log is open")
        .unwrap();
    disk.set_mutation_hook(None);
    (
        probe.free.load(Ordering::Relaxed),
        probe.held.load(Ordering::Relaxed),
        deleted,
    )
}

fn segment_files(disk: &SimDisk) -> Vec<String> {
    let mut names: Vec<String> = disk
        .mount()
        .list_dir(Path::new(DIR))
        .unwrap()
        .into_iter()
        .filter_map(|path| path.file_name().map(|n| n.to_string_lossy().to_string()))
        .filter(|name| name.ends_with(".log") || name.ends_with(".deleted"))
        .collect();
    names.sort();
    names
}

#[test]
fn retention_deletes_and_checkpoint_fsyncs_run_without_the_log_lock() {
    for file_delete_delay_ms in [0, 60_000] {
        let disk = SimDisk::new();
        let config = LogConfig {
            segment_bytes: 2048,
            retention_ms: 10_000,
            retention_bytes: -1,
            file_delete_delay_ms,
            flush: FlushPolicy::EveryAppend,
            ..LogConfig::default()
        };
        let mut log = open_log(&disk, config);
        // Old segments (timestamps far behind NOW_MS), then a few new records.
        for _ in 0..12 {
            append(&mut log, NOW_MS - 100_000);
        }
        append(&mut log, NOW_MS);
        let segments_before = log.segment_count();
        assert!(segments_before > 2, "{segments_before} segments");
        let lock = Arc::new(RwLock::new(Some(log)));

        let (free, held, deleted) = maintain_probed(&disk, &lock, NOW_MS, true);
        assert!(deleted > 0, "retention deleted nothing");
        // Each deleted segment: its files removed or renamed; and the checkpoint written
        // (temp file write, fsync, rename, directory fsync): all while the lock was free.
        assert!(free >= deleted as usize * 2 + 3, "only {free} calls");
        assert_eq!(held, 0, "{held} file operations ran under the log lock");
        let guard = lock.read().unwrap();
        let log = guard.as_ref().unwrap();
        assert_eq!(log.segment_count() as u64, segments_before as u64 - deleted);
        let files = segment_files(&disk);
        let renamed = files.iter().filter(|f| f.ends_with(".deleted")).count();
        if file_delete_delay_ms == 0 {
            assert_eq!(renamed, 0, "{files:?}");
        } else {
            assert!(renamed > 0, "{files:?}");
        }
        drop(guard);

        // The renamed files are deleted once due, also without the lock.
        let later = NOW_MS + file_delete_delay_ms + 1;
        let (_, held, _) = maintain_probed(&disk, &lock, later, true);
        assert_eq!(held, 0);
        assert!(segment_files(&disk)
            .iter()
            .all(|f| !f.ends_with(".deleted")));
    }
}

/// The recovery point in `quill-log.checkpoint` (magic, version u16, log start i64, recovery
/// point i64, CRC).
fn recovery_point_on_disk(disk: &SimDisk) -> i64 {
    let bytes = disk
        .mount()
        .read(&Path::new(DIR).join("quill-log.checkpoint"))
        .unwrap();
    i64::from_be_bytes(bytes[14..22].try_into().unwrap())
}

#[test]
fn a_checkpoint_written_after_the_lock_is_released_never_replaces_a_newer_one() {
    let disk = SimDisk::new();
    let config = LogConfig {
        segment_bytes: 1 << 20,
        retention_ms: -1,
        retention_bytes: -1,
        ..LogConfig::default()
    };
    let mut log = open_log(&disk, config);
    append(&mut log, NOW_MS);
    // Planned (stamped) first, written last: by then the log has moved on and written a newer
    // checkpoint, which must stay.
    let planned = log.plan_maintenance(NOW_MS, true);
    append(&mut log, NOW_MS);
    log.write_checkpoint().unwrap();
    let newer = log.durable_end_offset();
    assert_eq!(recovery_point_on_disk(&disk), newer);
    let done = planned.execute();
    log.finish_maintenance(done).unwrap();
    assert_eq!(recovery_point_on_disk(&disk), newer);
}

/// A maintenance planned before its log was deleted, and run after a new log took the same
/// directory (a topic deleted and created again), must not touch the new log's files.
#[test]
fn maintenance_planned_before_a_delete_touches_nothing_of_the_next_log() {
    let disk = SimDisk::new();
    let config = LogConfig {
        segment_bytes: 2048,
        retention_ms: 10_000,
        retention_bytes: -1,
        file_delete_delay_ms: 0,
        ..LogConfig::default()
    };
    let mut old = open_log(&disk, config.clone());
    for _ in 0..8 {
        append(&mut old, NOW_MS - 100_000);
    }
    append(&mut old, NOW_MS);
    let planned = old.plan_maintenance(NOW_MS, true);
    assert!(planned.removes_segments());
    old.delete().unwrap();

    let mut new = open_log(&disk, config);
    for _ in 0..8 {
        append(&mut new, NOW_MS);
    }
    let files_before = segment_files(&disk);
    let checkpoint_before = recovery_point_on_disk(&disk);
    let done = planned.execute();
    assert_eq!(segment_files(&disk), files_before);
    assert_eq!(recovery_point_on_disk(&disk), checkpoint_before);
    // Recorded on the new log, the outcome of the old one's maintenance changes nothing.
    assert_eq!(new.finish_maintenance(done).unwrap(), 0);
    assert_eq!(new.log_start_offset(), 0);
}
