//! Storage throughput, printed as a table next to the raw speed of the same disk.
//!
//! `cargo bench -p quill-log --bench log_throughput`
//!
//! Environment: `QUILL_BENCH_DIR` (default: a temp dir under `target/`), `QUILL_BENCH_MIB`
//! (data per scenario, default 1024), `QUILL_BENCH_SECONDS` (time cap per scenario, default 5),
//! `QUILL_BENCH_REOPEN_GIB` (size of the log reopened after a clean close, default 2; the
//! target is stated for 10).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quill_log::testing::build_simple_batch;
use quill_log::{AppendContext, FlushPolicy, GroupCommitter, Log, LogConfig};

const RECORD_BYTES: usize = 1024;

struct Settings {
    dir: PathBuf,
    total_bytes: u64,
    time_cap: Duration,
    reopen_bytes: u64,
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn settings() -> Settings {
    let dir = std::env::var("QUILL_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-data"));
    Settings {
        dir,
        total_bytes: env_u64("QUILL_BENCH_MIB", 1024) << 20,
        time_cap: Duration::from_secs(env_u64("QUILL_BENCH_SECONDS", 5)),
        reopen_bytes: env_u64("QUILL_BENCH_REOPEN_GIB", 2) << 30,
    }
}

/// A batch of 1 KiB records adding up to about `batch_bytes`.
fn batch(batch_bytes: usize) -> Vec<u8> {
    build_simple_batch(
        1_700_000_000_000,
        (batch_bytes / (RECORD_BYTES + 8)).max(1),
        RECORD_BYTES - 10,
    )
}

/// An empty directory for a scenario. Whatever an earlier run left there is synced first, so
/// its write-back does not throttle the scenario being measured.
fn fresh_dir(settings: &Settings, name: &str) -> PathBuf {
    let dir = settings.dir.join(name);
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            if let Ok(file) = File::open(entry.path()) {
                let _ = file.sync_all();
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn mb_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64()
}

/// Runs `step` (which reports bytes done) until the byte budget or the time cap is reached.
fn run_until(settings: &Settings, mut step: impl FnMut() -> u64) -> (u64, Duration) {
    let start = Instant::now();
    let mut bytes = 0;
    while bytes < settings.total_bytes && start.elapsed() < settings.time_cap {
        bytes += step();
    }
    (bytes, start.elapsed())
}

fn raw_write(settings: &Settings, chunk: &[u8], sync_each: bool) -> f64 {
    let dir = fresh_dir(settings, "raw");
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("raw"))
        .unwrap();
    let (bytes, elapsed) = run_until(settings, || {
        file.write_all(chunk).unwrap();
        if sync_each {
            file.sync_data().unwrap();
        }
        chunk.len() as u64
    });
    mb_per_s(bytes, elapsed)
}

fn open_log(dir: &Path, flush: FlushPolicy) -> Log {
    let config = LogConfig {
        flush,
        ..LogConfig::default()
    };
    Log::open(dir, config, GroupCommitter::start().unwrap()).unwrap()
}

fn context() -> AppendContext {
    AppendContext {
        now_ms: 1_700_000_000_000,
        leader_epoch: 0,
    }
}

fn append(settings: &Settings, input: &[u8], flush: FlushPolicy, wait: bool) -> f64 {
    let dir = fresh_dir(settings, "append");
    let mut log = open_log(&dir, flush);
    let (bytes, elapsed) = run_until(settings, || {
        let info = log.append(input, context()).unwrap();
        if wait {
            log.wait_durable(info.last_offset + 1).unwrap();
        }
        input.len() as u64
    });
    mb_per_s(bytes, elapsed)
}

fn group_commit(settings: &Settings, input: &[u8], writers: usize) -> (f64, f64) {
    let dir = fresh_dir(settings, "group");
    let log = Arc::new(Mutex::new(open_log(&dir, FlushPolicy::EveryAppend)));
    let deadline = Instant::now() + settings.time_cap;
    let budget_per_writer = settings.total_bytes / writers as u64;
    let start = Instant::now();
    let handles: Vec<_> = (0..writers)
        .map(|_| {
            let log = Arc::clone(&log);
            let input = input.to_vec();
            std::thread::spawn(move || {
                let mut bytes = 0u64;
                let mut appends = 0u64;
                while bytes < budget_per_writer && Instant::now() < deadline {
                    let (sender, receiver) = std::sync::mpsc::sync_channel(1);
                    {
                        let mut log = log.lock().unwrap();
                        let info = log.append(&input, context()).unwrap();
                        log.on_durable(
                            info.last_offset + 1,
                            Box::new(move |r| {
                                let _ = sender.send(r);
                            }),
                        );
                    }
                    receiver.recv().unwrap().unwrap();
                    bytes += input.len() as u64;
                    appends += 1;
                }
                (bytes, appends)
            })
        })
        .collect();
    let (bytes, appends) = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .fold((0, 0), |(b, a), (b2, a2)| (b + b2, a + a2));
    let elapsed = start.elapsed();
    (
        mb_per_s(bytes, elapsed),
        appends as f64 / elapsed.as_secs_f64(),
    )
}

/// Fills a log with `bytes` of data through the fast path and returns it closed.
fn fill(dir: &Path, input: &[u8], bytes: u64) {
    let mut log = open_log(dir, FlushPolicy::OS_MANAGED);
    let mut written = 0;
    let mut now = context();
    while written < bytes {
        now.now_ms += 1;
        log.append(input, now).unwrap();
        written += input.len() as u64;
    }
    log.close().unwrap();
}

fn sequential_read(settings: &Settings, input: &[u8]) -> f64 {
    let dir = fresh_dir(settings, "read");
    let bytes = settings.total_bytes.min(1 << 30);
    fill(&dir, input, bytes);
    let log = open_log(&dir, FlushPolicy::OS_MANAGED);
    // The best of three passes: the first also warms the page cache.
    let mut best = 0.0f64;
    for _pass in 0..3 {
        let start = Instant::now();
        let mut offset = 0;
        let mut read_bytes = 0u64;
        while offset < log.log_end_offset() {
            let read = log.read(offset, 1 << 20, i64::MAX).unwrap();
            read_bytes += read.bytes.len() as u64;
            offset = read.next_offset;
        }
        best = best.max(mb_per_s(read_bytes, start.elapsed()));
    }
    best
}

fn timestamp_lookups(settings: &Settings) -> f64 {
    let dir = fresh_dir(settings, "timestamps");
    let records_per_batch = 16;
    let batches = (settings.total_bytes.min(256 << 20) / (16 * 1024)) as i64;
    let first_ms = 1_700_000_000_000i64;
    let mut log = open_log(&dir, FlushPolicy::OS_MANAGED);
    for i in 0..batches {
        // Record j of batch i has timestamp first + 100 i + j.
        let input = build_simple_batch(first_ms + 100 * i, records_per_batch, RECORD_BYTES - 10);
        log.append(&input, context()).unwrap();
    }
    let lookups = 20_000;
    let start = Instant::now();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..lookups {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let target = first_ms + (state % (100 * (batches as u64 - 1) + 16)) as i64;
        assert!(log.offset_for_timestamp(target).unwrap().is_some());
    }
    lookups as f64 / start.elapsed().as_secs_f64()
}

fn reopen(settings: &Settings) -> (u64, Duration) {
    let dir = settings.dir.join("reopen");
    let marker = dir.join(format!("filled-{}", settings.reopen_bytes));
    if !marker.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        fill(&dir, &batch(1 << 20), settings.reopen_bytes);
        File::create(&marker).unwrap();
    }
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        let log = open_log(&dir, FlushPolicy::OS_MANAGED);
        best = best.min(start.elapsed());
        log.close().unwrap();
    }
    (settings.reopen_bytes, best)
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied().unwrap_or(0.0)
}

fn main() {
    // `cargo test --benches` runs bench targets with `--bench`-less args; do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let settings = settings();
    println!(
        "quill-log throughput, 1 KiB records; data in {}",
        settings.dir.display()
    );
    println!("{:<58} {:>12} {:>10}", "scenario", "result", "vs raw");
    let rounds = env_u64("QUILL_BENCH_ROUNDS", 3) as usize;
    for (label, batch_bytes) in [("16 KiB", 16 * 1024), ("1 MiB", 1 << 20)] {
        let input = batch(batch_bytes);
        // Shared virtual disks drift a lot: interleave the scenarios and report medians.
        let mut samples: [Vec<f64>; 6] = Default::default();
        for _ in 0..rounds {
            samples[0].push(raw_write(&settings, &input, false));
            samples[1].push(raw_write(&settings, &input, true));
            samples[2].push(append(&settings, &input, FlushPolicy::OS_MANAGED, false));
            samples[3].push(append(&settings, &input, FlushPolicy::EveryAppend, true));
            let (group, appends_per_s) = group_commit(&settings, &input, 16);
            samples[4].push(group);
            samples[5].push(appends_per_s);
        }
        let [raw, raw_sync, os, fsync_each, group, appends_per_s] = samples.map(median);
        let row = |name: String, value: f64, unit: &str, base: Option<f64>| {
            let ratio = base.map_or(String::new(), |b| format!("{:>9.0}%", 100.0 * value / b));
            println!("{name:<58} {value:>9.0} {unit:<4} {ratio}");
        };
        row(format!("raw write, {label} chunks"), raw, "MB/s", None);
        row(
            format!("raw write + fdatasync per {label} chunk"),
            raw_sync,
            "MB/s",
            None,
        );
        row(
            format!("append, OS-managed flush, {label} batches"),
            os,
            "MB/s",
            Some(raw),
        );
        row(
            format!("append + fsync each, 1 writer, {label} batches"),
            fsync_each,
            "MB/s",
            Some(raw_sync),
        );
        row(
            format!("append, group commit, 16 writers, {label} batches"),
            group,
            "MB/s",
            Some(raw_sync),
        );
        row(
            format!("  durable appends/s with group commit, {label}"),
            appends_per_s,
            "/s",
            None,
        );
        row(
            format!("sequential read (page cache), {label} batches"),
            sequential_read(&settings, &input),
            "MB/s",
            None,
        );
    }
    println!(
        "{:<58} {:>9.0} /s",
        "offset_for_timestamp lookups (256 MiB log)",
        timestamp_lookups(&settings)
    );
    let (bytes, elapsed) = reopen(&settings);
    println!(
        "{:<58} {:>9.1} ms",
        format!("reopen after clean close, {} GiB log", bytes >> 30),
        elapsed.as_secs_f64() * 1000.0
    );
    let _ = std::fs::remove_dir_all(settings.dir.join("raw"));
    let _ = std::fs::remove_dir_all(settings.dir.join("append"));
    let _ = std::fs::remove_dir_all(settings.dir.join("group"));
}
