//! Log cleaner throughput: MB/s of dirty log cleaned, next to a raw sequential read + write of
//! the same number of bytes on the same disk, and the produce throughput of another log on that
//! disk while the cleaner runs, with and without `log.cleaner.io.max.bytes.per.second`.
//!
//! `cargo bench -p quill-log --bench cleaner_throughput`
//!
//! Environment: `QUILL_BENCH_DIR` (default `target/bench-data`), `QUILL_BENCH_MIB` (dirty data
//! per scenario, default 256), `QUILL_BENCH_KEYS` (distinct keys, default 100000),
//! `QUILL_BENCH_THROTTLE_MIB` (throttle of the last scenario in MiB/s, default 50).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use quill_log::records::{encode_batch, encode_record, BatchFields};
use quill_log::testing::build_simple_batch;
use quill_log::{
    AppendContext, CleanStats, CleanerConfig, CleanupPolicy, CompactionConfig, Compression,
    CompressionLevels, FlushPolicy, GroupCommitter, Log, LogCleaner, LogConfig, Throttler,
};

const VALUE_BYTES: usize = 200;
const RECORDS_PER_BATCH: usize = 50;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn bench_dir() -> PathBuf {
    std::env::var("QUILL_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-data"))
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = bench_dir().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 64 << 20,
        cleanup_policy: CleanupPolicy::COMPACT,
        compaction: CompactionConfig::default(),
        flush: FlushPolicy::OS_MANAGED,
        ..LogConfig::default()
    }
}

/// A log of `total_bytes` of keyed updates (keys cycling through `keys`), all rolled.
fn dirty_log(dir: &Path, total_bytes: u64, keys: u64, compression: Compression) -> Log {
    let mut log = Log::open(dir, config(), GroupCommitter::start().unwrap()).unwrap();
    let mut next_key = 0u64;
    let mut random = 0x9E37_79B9_7F4A_7C15u64;
    let mut value = vec![0u8; VALUE_BYTES];
    while log.size_bytes() < total_bytes {
        let mut section = Vec::new();
        for delta in 0..RECORDS_PER_BATCH {
            let key = format!("key-{:08}", next_key % keys);
            next_key += 1;
            // Hex digits of a xorshift stream: compresses about 2:1, like typical payloads.
            for byte in value.iter_mut() {
                random ^= random << 13;
                random ^= random >> 7;
                random ^= random << 17;
                *byte = b"0123456789abcdef"[(random >> 60) as usize];
            }
            encode_record(
                &mut section,
                0,
                delta as i32,
                Some(key.as_bytes()),
                Some(&value),
                &[],
            );
        }
        let now = now_ms();
        let batch = encode_batch(
            &BatchFields::producer(now, now),
            RECORDS_PER_BATCH as i32,
            &section,
            compression,
            CompressionLevels::default(),
        )
        .unwrap();
        log.append(
            &batch,
            AppendContext {
                now_ms: now,
                leader_epoch: 0,
            },
        )
        .unwrap();
    }
    log.roll().unwrap();
    log.flush().unwrap();
    log
}

/// Cleans until nothing is left to clean; returns the totals (bytes read count both the mapping
/// pass and the cleaning pass) and the time taken.
fn clean(log: &RwLock<Log>, throttle_bytes_per_second: f64) -> (CleanStats, Duration) {
    let mut cleaner = LogCleaner::new(
        CleanerConfig {
            dedupe_buffer_bytes: 128 << 20,
            dedupe_buffer_load_factor: 0.9,
        },
        Arc::new(Throttler::new(throttle_bytes_per_second)),
    );
    let started = Instant::now();
    let mut total = CleanStats::default();
    while let Some(stats) = cleaner.clean(log, now_ms()).unwrap() {
        total.bytes_read += stats.bytes_read;
        total.bytes_written += stats.bytes_written;
        total.records_read += stats.records_read;
        total.records_retained += stats.records_retained;
        total.end_offset = stats.end_offset;
    }
    (total, started.elapsed())
}

/// Reads `read_bytes` of the files in `dir` sequentially and writes `write_bytes` to a new
/// file, fsynced: what cleaning would cost with no work between the I/O.
fn raw_read_write(dir: &Path, read_bytes: u64, write_bytes: u64) -> Duration {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    let out_path = dir.join("raw.out");
    let started = Instant::now();
    let mut buffer = vec![0u8; 1 << 20];
    let mut read = 0u64;
    'files: for path in files.iter().cycle().take(files.len() * 8) {
        let mut file = File::open(path).unwrap();
        loop {
            let n = file.read(&mut buffer).unwrap();
            if n == 0 {
                break;
            }
            read += n as u64;
            if read >= read_bytes {
                break 'files;
            }
        }
    }
    let mut out = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&out_path)
        .unwrap();
    let mut written = 0u64;
    while written < write_bytes {
        let n = buffer.len().min((write_bytes - written) as usize);
        out.write_all(&buffer[..n]).unwrap();
        written += n as u64;
    }
    out.sync_all().unwrap();
    let elapsed = started.elapsed();
    std::fs::remove_file(out_path).unwrap();
    elapsed
}

fn mib_per_second(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / (1u64 << 20) as f64 / elapsed.as_secs_f64()
}

/// Appends 64 KiB batches to a fresh delete-policy log for `duration`; MiB/s.
fn produce_for(dir: &Path, duration: Duration) -> f64 {
    let mut log = Log::open(
        dir,
        LogConfig {
            flush: FlushPolicy::OS_MANAGED,
            ..LogConfig::default()
        },
        GroupCommitter::start().unwrap(),
    )
    .unwrap();
    let now = now_ms();
    let batch = build_simple_batch(now, 64, 1000);
    let started = Instant::now();
    let mut bytes = 0u64;
    while started.elapsed() < duration {
        log.append(
            &batch,
            AppendContext {
                now_ms: now,
                leader_epoch: 0,
            },
        )
        .unwrap();
        bytes += batch.len() as u64;
    }
    log.flush().unwrap();
    mib_per_second(bytes, started.elapsed())
}

/// Produce throughput while a cleaner (throttled or not) cleans another log on the disk.
fn produce_while_cleaning(total_bytes: u64, keys: u64, throttle: f64, name: &str) -> (f64, f64) {
    let log_dir = fresh_dir(&format!("cleaner-{name}"));
    let log = RwLock::new(dirty_log(&log_dir, total_bytes, keys, Compression::None));
    let produce_dir = fresh_dir(&format!("produce-{name}"));
    let dirty_bytes = log.read().unwrap().size_bytes();
    let done = Arc::new(AtomicBool::new(false));
    let cleaning = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let (_, elapsed) = clean(&log, throttle);
            done.store(true, Ordering::Release);
            mib_per_second(dirty_bytes, elapsed)
        })
    };
    let mut rates = Vec::new();
    while !done.load(Ordering::Acquire) {
        rates.push(produce_for(&produce_dir, Duration::from_millis(500)));
    }
    let cleaner_rate = cleaning.join().unwrap();
    let produce_rate = rates.iter().sum::<f64>() / rates.len().max(1) as f64;
    (produce_rate, cleaner_rate)
}

/// Reads a log from its start to its end and decodes every record (what loading a
/// `__consumer_offsets` partition does before applying the records); returns records and time.
fn replay(log: &Log) -> (u64, Duration) {
    let started = Instant::now();
    let mut records = 0u64;
    let mut offset = log.log_start_offset();
    let end = log.log_end_offset();
    while offset < end {
        let result = log.read(offset, 1 << 20, end).unwrap();
        if result.bytes.is_empty() {
            break;
        }
        let mut position = 0;
        while position < result.bytes.len() {
            let header = quill_log::BatchHeader::parse(&result.bytes[position..]).unwrap();
            let batch = &result.bytes[position..position + header.size_bytes];
            quill_log::records::for_each_record(
                batch,
                &header,
                quill_log::MAX_DECOMPRESSED_BATCH_BYTES,
                |_, _| {
                    records += 1;
                    Ok(())
                },
            )
            .unwrap();
            position += header.size_bytes;
        }
        offset = result.next_offset;
    }
    (records, started.elapsed())
}

/// 1 000 000 single-record commits of 100 groups × 10 partitions into a compacted log, replayed
/// before and after cleaning.
fn offsets_topic_replay() {
    let dir = fresh_dir("offsets-replay");
    let mut log = Log::open(
        &dir,
        LogConfig {
            segment_bytes: 16 << 20,
            ..config()
        },
        GroupCommitter::start().unwrap(),
    )
    .unwrap();
    let value = [7u8; 28]; // an OffsetCommit value v3 is about this size
    for commit in 0..1_000_000u64 {
        let key = format!("g-{:03}/topic/{}", commit % 100, (commit / 100) % 10);
        let mut section = Vec::new();
        encode_record(&mut section, 0, 0, Some(key.as_bytes()), Some(&value), &[]);
        let now = now_ms();
        let batch = encode_batch(
            &BatchFields::producer(now, now),
            1,
            &section,
            Compression::None,
            CompressionLevels::default(),
        )
        .unwrap();
        log.append(
            &batch,
            AppendContext {
                now_ms: now,
                leader_epoch: 0,
            },
        )
        .unwrap();
    }
    log.roll().unwrap();
    log.flush().unwrap();
    let size_before = log.size_bytes();
    let (records_before, before) = replay(&log);
    let log = RwLock::new(log);
    let (_, cleaning) = clean(&log, f64::MAX);
    let log = log.into_inner().unwrap();
    let (records_after, after) = replay(&log);
    println!();
    println!("| `__consumer_offsets`-like partition, 1 000 000 commits of 100 groups | records replayed | bytes | replay time |");
    println!("|---|---:|---:|---:|");
    println!(
        "| before cleaning | {records_before} | {} MiB | {:.0} ms |",
        size_before >> 20,
        before.as_secs_f64() * 1000.0
    );
    println!(
        "| after cleaning ({:.1} s) | {records_after} | {} KiB | {:.1} ms |",
        cleaning.as_secs_f64(),
        log.size_bytes() >> 10,
        after.as_secs_f64() * 1000.0
    );
}

fn main() {
    let total_bytes = env_u64("QUILL_BENCH_MIB", 256) << 20;
    let keys = env_u64("QUILL_BENCH_KEYS", 100_000);
    let throttle = env_u64("QUILL_BENCH_THROTTLE_MIB", 50) as f64 * (1u64 << 20) as f64;
    println!(
        "dirty data {} MiB, {keys} keys, {VALUE_BYTES}-byte values, {RECORDS_PER_BATCH} records per batch, dir {}",
        total_bytes >> 20,
        bench_dir().display()
    );
    println!("| scenario | dirty log cleaned | records/s | raw read+write of the same I/O | records kept |");
    println!("|---|---|---|---|---|");
    for (name, compression) in [
        ("uncompressed", Compression::None),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
    ] {
        let dir = fresh_dir(&format!("cleaner-{name}"));
        let log = RwLock::new(dirty_log(&dir, total_bytes, keys, compression));
        let dirty_bytes = log.read().unwrap().size_bytes();
        let (stats, elapsed) = clean(&log, f64::MAX);
        let raw = raw_read_write(&dir, stats.bytes_read, stats.bytes_written);
        println!(
            "| {name} | {:.0} MiB/s ({} MiB in {:.2} s) | {:.0}k | {:.2} s ({:.0} MiB/s of dirty log) | {} of {} |",
            mib_per_second(dirty_bytes, elapsed),
            dirty_bytes >> 20,
            elapsed.as_secs_f64(),
            stats.records_read as f64 / elapsed.as_secs_f64() / 1000.0,
            raw.as_secs_f64(),
            mib_per_second(dirty_bytes, raw),
            stats.records_retained,
            stats.records_read
        );
    }
    let baseline = produce_for(&fresh_dir("produce-alone"), Duration::from_secs(3));
    println!();
    println!("| produce (64 KiB batches, OS flush) | MiB/s | cleaner MiB/s meanwhile |");
    println!("|---|---|---|");
    println!("| alone | {baseline:.0} | - |");
    let (produce, cleaner) = produce_while_cleaning(total_bytes, keys, f64::MAX, "unthrottled");
    println!("| while cleaning, unthrottled | {produce:.0} | {cleaner:.0} |");
    let (produce, cleaner) = produce_while_cleaning(total_bytes, keys, throttle, "throttled");
    println!(
        "| while cleaning, log.cleaner.io.max.bytes.per.second = {} MiB/s | {produce:.0} | {cleaner:.0} |",
        throttle as u64 >> 20
    );
    offsets_topic_replay();
    let _ = std::fs::remove_dir_all(bench_dir());
}
