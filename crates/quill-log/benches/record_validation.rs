//! Cost of record-level validation on the append path, per codec: 1 KiB records in 16 KiB
//! (uncompressed) batches, appended to a log with OS-managed flush, in three variants run in
//! interleaved rounds (median reported):
//! - `before`: what the append path checked before record-level validation — header parse and
//!   CRC-32C — then the write (`Log::append_validated` of input validated once, up front);
//! - `after`: `Log::append`, which now decodes (decompresses) and checks every record;
//! - `validate only`: `validate_append` alone, no write (the CPU the broker now spends per
//!   batch on a blocking thread, outside the partition lock).
//!
//! `cargo bench -p quill-log --bench record_validation`
//!
//! Environment: `QUILL_BENCH_DIR` (default `target/bench-data`), `QUILL_BENCH_SECONDS` (time per
//! scenario and round, default 2), `QUILL_BENCH_ROUNDS` (default 3).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use quill_log::{
    validate_append, AppendContext, BatchEncoder, BatchFields, BatchHeader, Compression,
    CompressionLevels, FlushPolicy, GroupCommitter, Log, LogConfig,
};

const RECORD_BYTES: usize = 1024;
const RECORDS_PER_BATCH: usize = 16;
const NOW_MS: i64 = 1_700_000_000_000;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Text-like values (words from a small vocabulary, pseudo-random order): compressible about
/// as much as JSON logs, not as trivially as repeated bytes.
fn value(seed: &mut u64) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "user", "click", "view", "\"id\":", "42", "session", "checkout", "cart", "{", "}", "price",
        "9.99", "EUR", "ok", "true", "null",
    ];
    let mut out = Vec::with_capacity(RECORD_BYTES);
    while out.len() < RECORD_BYTES - 16 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        out.extend_from_slice(WORDS[(*seed % 16) as usize].as_bytes());
        out.push(b' ');
        if (*seed).is_multiple_of(5) {
            out.extend_from_slice(format!("{}", *seed % 100_000).as_bytes());
        }
    }
    out
}

fn batch(codec: Compression) -> Vec<u8> {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut encoder = BatchEncoder::new(BatchFields::producer(NOW_MS, NOW_MS));
    for i in 0..RECORDS_PER_BATCH {
        let key = format!("key-{i}");
        encoder.push_fields(
            0,
            0,
            i as i32,
            Some(key.as_bytes()),
            Some(&value(&mut seed)),
            &[],
        );
    }
    encoder.finish(codec, CompressionLevels::default()).unwrap()
}

fn context() -> AppendContext {
    AppendContext {
        now_ms: NOW_MS,
        leader_epoch: 0,
    }
}

fn fresh_log(root: &Path, name: &str) -> (PathBuf, Log) {
    let dir = root.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = LogConfig {
        flush: FlushPolicy::OS_MANAGED,
        ..LogConfig::default()
    };
    let log = Log::open(&dir, config, GroupCommitter::start().unwrap()).unwrap();
    (dir, log)
}

/// Batches per second for `time`.
fn rate(time: Duration, mut step: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut batches = 0u64;
    while start.elapsed() < time {
        step();
        batches += 1;
    }
    batches as f64 / start.elapsed().as_secs_f64()
}

fn before(root: &Path, input: &[u8], time: Duration) -> f64 {
    let (dir, mut log) = fresh_log(root, "validation-before");
    let validated = validate_append(input, log.config(), "bench-0", NOW_MS).unwrap();
    let result = rate(time, || {
        let header = BatchHeader::parse(input).unwrap();
        assert_eq!(crc32c::crc32c(&input[21..header.size_bytes]), header.crc);
        log.append_validated(&validated, context()).unwrap();
    });
    log.delete().unwrap();
    let _ = std::fs::remove_dir_all(dir);
    result
}

fn after(root: &Path, input: &[u8], time: Duration) -> f64 {
    let (dir, mut log) = fresh_log(root, "validation-after");
    let result = rate(time, || {
        log.append(input, context()).unwrap();
    });
    log.delete().unwrap();
    let _ = std::fs::remove_dir_all(dir);
    result
}

fn validate_only(input: &[u8], time: Duration) -> f64 {
    let config = LogConfig::default();
    rate(time, || {
        validate_append(input, &config, "bench-0", NOW_MS).unwrap();
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let root = std::env::var("QUILL_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-data"));
    let time = Duration::from_secs(env_u64("QUILL_BENCH_SECONDS", 2));
    let rounds = env_u64("QUILL_BENCH_ROUNDS", 3).max(1);
    let record_mb = (RECORDS_PER_BATCH * RECORD_BYTES) as f64 / 1e6;
    println!(
        "1 KiB records, {RECORDS_PER_BATCH} per batch; {rounds} rounds of {}s; MB/s of record \
         bytes (uncompressed)",
        time.as_secs()
    );
    println!("| codec | batch on the wire | before (header + CRC) | after (every record) | change | validate only |");
    println!("|---|---:|---:|---:|---:|---:|");
    for codec in [
        Compression::Lz4,
        Compression::Zstd,
        Compression::Gzip,
        Compression::Snappy,
        Compression::None,
    ] {
        let input = batch(codec);
        let (mut b, mut a, mut v) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            b.push(before(&root, &input, time));
            a.push(after(&root, &input, time));
            v.push(validate_only(&input, time));
        }
        let (b, a, v) = (median(b), median(a), median(v));
        println!(
            "| {} | {} B | {:.0} MB/s | {:.0} MB/s | {:+.0} % | {:.0} MB/s |",
            codec.name(),
            input.len(),
            b * record_mb,
            a * record_mb,
            (a / b - 1.0) * 100.0,
            v * record_mb
        );
    }
}
