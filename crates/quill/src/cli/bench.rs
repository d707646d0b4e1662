//! `quill bench produce|consume`: kafka-producer-perf-test / kafka-consumer-perf-test over the
//! wire protocol, so the same command measures Quill and Apache Kafka. A progress line goes to
//! stderr every few seconds; the summary (or `--json`) to stdout. Latency is send → ack per
//! record, kept exactly (every sample, sorted at the end) rather than in an approximate
//! histogram: a million records cost 4 MB.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Args, Subcommand};
use quill_client::admin::NewTopic;
use quill_client::{
    Acks, Admin, Compression, Consumer, ConsumerConfig, OffsetSpec, Producer, ProducerConfig,
    ProducerRecord, ResponseError, TopicPartition,
};

use super::{parse_acks, parse_compression, ConnectionArgs};

const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);
const BYTES_PER_MB: f64 = 1024.0 * 1024.0;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Produce N records of a fixed size as fast as allowed; report throughput and latency.
    #[command(after_help = "Examples:
  quill bench produce --topic bench --records 1000000 --record-size 1024 --acks 1
  quill bench produce --topic bench6 --partitions 6 --producers 4 --acks all
  quill bench produce --topic bench --throughput 10000 --compression zstd --json")]
    Produce(ProduceBenchArgs),
    /// Read a topic from the beginning to its current end; report throughput.
    #[command(after_help = "Examples:
  quill bench consume --topic bench
  quill bench consume --topic bench --records 500000 --json
  quill bench consume --topic bench6 --consumers 3")]
    Consume(ConsumeBenchArgs),
    /// Produce at a fixed rate while consuming; report produce-to-consume latency.
    #[command(after_help = "Examples:
  quill bench e2e --topic e2e --records 20000 --throughput 2000
  quill bench e2e --topic e2e --partitions 6 --acks all --json")]
    E2e(EndToEndBenchArgs),
}

#[derive(Args, Debug)]
pub struct EndToEndBenchArgs {
    /// Topic (created with --partitions if missing); read from its end
    #[arg(long, default_value = "quill-bench-e2e")]
    topic: String,
    /// Records to produce
    #[arg(long, default_value_t = 10_000)]
    records: u64,
    /// Value size in bytes (at least 8: the send time travels in the value)
    #[arg(long, default_value_t = 1024, value_name = "BYTES")]
    record_size: usize,
    /// Partitions of the topic when it is created
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    /// 0, 1 or all (-1)
    #[arg(long, default_value = "1", value_parser = parse_acks)]
    acks: Acks,
    /// Records per second (end-to-end latency is only meaningful below saturation)
    #[arg(long, default_value_t = 1000, value_name = "RECORDS_PER_S")]
    throughput: u64,
    /// Print the summary as JSON
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connection: ConnectionArgs,
}

#[derive(Args, Debug)]
pub struct ProduceBenchArgs {
    /// Topic (created with --partitions if missing)
    #[arg(long, default_value = "quill-bench")]
    topic: String,
    /// Records to produce in total
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Value size of each record in bytes
    #[arg(long, default_value_t = 1024, value_name = "BYTES")]
    record_size: usize,
    /// Partitions of the topic when it is created
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    /// Concurrent producers, each with its own connections
    #[arg(long, default_value_t = 1)]
    producers: u32,
    /// 0, 1 or all (-1)
    #[arg(long, default_value = "1", value_parser = parse_acks)]
    acks: Acks,
    /// none, gzip, snappy, lz4 or zstd
    #[arg(long, default_value = "none", value_parser = parse_compression)]
    compression: Compression,
    /// batch.size in bytes
    #[arg(long, default_value_t = 16384, value_name = "BYTES")]
    batch_size: usize,
    /// linger.ms
    #[arg(long, default_value_t = 5, value_name = "MS")]
    linger_ms: u64,
    /// Idempotent producers (enable.idempotence; needs --acks all)
    #[arg(long)]
    idempotent: bool,
    /// Cap on records per second across producers (-1: no cap)
    #[arg(long, default_value_t = -1, allow_hyphen_values = true, value_name = "RECORDS_PER_S")]
    throughput: i64,
    /// Print the summary as JSON
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connection: ConnectionArgs,
}

#[derive(Args, Debug)]
pub struct ConsumeBenchArgs {
    #[arg(long, default_value = "quill-bench")]
    topic: String,
    /// Stop after this many records [default: the topic's current end]
    #[arg(long)]
    records: Option<u64>,
    /// Concurrent consumers, each with its own connections; partitions are dealt among them
    #[arg(long, default_value_t = 1)]
    consumers: u32,
    /// Print the summary as JSON
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connection: ConnectionArgs,
}

pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Produce(args) => bench_produce(args).await,
        BenchCommand::Consume(args) => bench_consume(args).await,
        BenchCommand::E2e(args) => bench_end_to_end(args).await,
    }
}

/// Counters shared by the producers, the progress line and the summary.
#[derive(Default)]
struct Progress {
    acknowledged: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    latencies_us: Mutex<Vec<u32>>,
    first_error: Mutex<Option<String>>,
    stop: AtomicBool,
}

async fn bench_produce(args: ProduceBenchArgs) -> anyhow::Result<()> {
    let mut interrupt = super::interrupt::Interrupt::listen()?;
    if args.producers == 0 || args.record_size == 0 {
        anyhow::bail!("--producers and --record-size must be positive");
    }
    let admin = Admin::new(args.connection.connect().await?);
    ensure_topic(&admin, &args.topic, args.partitions).await?;
    let payload = random_payload(args.record_size);
    let progress = Arc::new(Progress::default());
    let started = Instant::now();
    let mut producers = tokio::task::JoinSet::new();
    for index in 0..args.producers {
        let share = args.records / u64::from(args.producers)
            + u64::from(u64::from(index) < args.records % u64::from(args.producers));
        let rate =
            (args.throughput > 0).then(|| args.throughput as f64 / f64::from(args.producers));
        producers.spawn(run_producer(
            args.connection.clone(),
            producer_config(&args),
            args.topic.clone(),
            payload.clone(),
            share,
            rate,
            progress.clone(),
        ));
    }
    let reporter = tokio::spawn(report_progress(progress.clone(), args.record_size));
    loop {
        tokio::select! {
            () = interrupt.received(), if !progress.stop.load(Ordering::Acquire) => {
                progress.stop.store(true, Ordering::Release);
            }
            joined = producers.join_next() => match joined {
                None => break,
                Some(Ok(result)) => result?,
                Some(Err(join_error)) => anyhow::bail!("a producer task failed: {join_error}"),
            },
        }
    }
    reporter.abort();
    let elapsed = started.elapsed();
    let summary = ProduceSummary::from_progress(&progress, elapsed, args.record_size);
    print_produce_summary(&summary, args.json);
    if let Some(error) = progress
        .first_error
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_deref()
    {
        anyhow::bail!("{} records failed: {error}", summary.errors);
    }
    Ok(())
}

fn producer_config(args: &ProduceBenchArgs) -> ProducerConfig {
    ProducerConfig {
        acks: args.acks,
        compression: args.compression,
        batch_size_bytes: args.batch_size.max(1),
        linger: Duration::from_millis(args.linger_ms),
        allow_auto_topic_creation: false,
        idempotent: args.idempotent,
        ..ProducerConfig::default()
    }
}

async fn ensure_topic(admin: &Admin, topic: &str, partitions: i32) -> anyhow::Result<()> {
    let new_topic = NewTopic {
        name: topic.to_string(),
        partitions,
        replication_factor: -1,
        configs: Vec::new(),
    };
    match admin.create_topics(&[new_topic]).await {
        Err(error) if error.kafka_error() != Some(ResponseError::TopicAlreadyExists) => {
            Err(error.into())
        }
        _ => Ok(()),
    }
}

/// Uppercase letters, like kafka-producer-perf-test's payload: compressible about as much as
/// text, not as much as zeros.
fn random_payload(size: usize) -> Bytes {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b'A' + (state % 26) as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

async fn run_producer(
    connection: ConnectionArgs,
    config: ProducerConfig,
    topic: String,
    payload: Bytes,
    records: u64,
    rate_per_s: Option<f64>,
    progress: Arc<Progress>,
) -> anyhow::Result<()> {
    let producer = Producer::new(connection.connect().await?, config)?;
    let started = Instant::now();
    for sent in 0..records {
        if progress.stop.load(Ordering::Acquire) {
            break;
        }
        if let Some(rate) = rate_per_s {
            let due = Duration::from_secs_f64(sent as f64 / rate);
            let elapsed = started.elapsed();
            if due > elapsed + Duration::from_millis(1) {
                tokio::time::sleep(due - elapsed).await;
            }
        }
        let record = ProducerRecord {
            topic: topic.clone(),
            value: Some(payload.clone()),
            ..ProducerRecord::default()
        };
        let send_time = Instant::now();
        let progress_for_callback = progress.clone();
        let size = payload.len() as u64;
        producer
            .send_with_callback(record, move |result| {
                let progress = progress_for_callback;
                match result {
                    Ok(_) => {
                        let latency_us =
                            u32::try_from(send_time.elapsed().as_micros()).unwrap_or(u32::MAX);
                        progress
                            .latencies_us
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(latency_us);
                        progress.acknowledged.fetch_add(1, Ordering::Relaxed);
                        progress.bytes.fetch_add(size, Ordering::Relaxed);
                    }
                    Err(error) => {
                        progress.errors.fetch_add(1, Ordering::Relaxed);
                        progress
                            .first_error
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .get_or_insert_with(|| error.to_string());
                    }
                }
            })
            .await?;
    }
    producer.close().await;
    Ok(())
}

async fn report_progress(progress: Arc<Progress>, record_size: usize) {
    let mut last_count = 0u64;
    let mut last_time = Instant::now();
    loop {
        tokio::time::sleep(PROGRESS_INTERVAL).await;
        let count = progress.acknowledged.load(Ordering::Relaxed);
        let now = Instant::now();
        let seconds = now.duration_since(last_time).as_secs_f64().max(1e-9);
        let rate = (count - last_count) as f64 / seconds;
        eprintln!(
            "{count} records acknowledged, {rate:.1} records/s ({:.2} MB/s)",
            rate * record_size as f64 / BYTES_PER_MB
        );
        last_count = count;
        last_time = now;
    }
}

struct ProduceSummary {
    records: u64,
    errors: u64,
    elapsed: Duration,
    records_per_s: f64,
    mb_per_s: f64,
    latency_ms: LatencySummary,
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct LatencySummary {
    avg: f64,
    p50: f64,
    p95: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

impl LatencySummary {
    /// From unsorted samples in microseconds; percentiles by nearest rank.
    fn from_samples_us(mut samples: Vec<u32>) -> LatencySummary {
        if samples.is_empty() {
            return LatencySummary::default();
        }
        samples.sort_unstable();
        let at = |quantile: f64| {
            let rank = ((quantile * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            f64::from(samples[rank - 1]) / 1000.0
        };
        let total_us: u64 = samples.iter().map(|&sample| u64::from(sample)).sum();
        LatencySummary {
            avg: total_us as f64 / samples.len() as f64 / 1000.0,
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            p999: at(0.999),
            max: at(1.0),
        }
    }
}

impl ProduceSummary {
    fn from_progress(progress: &Progress, elapsed: Duration, record_size: usize) -> ProduceSummary {
        let records = progress.acknowledged.load(Ordering::Relaxed);
        let samples = std::mem::take(
            &mut *progress
                .latencies_us
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        let seconds = elapsed.as_secs_f64().max(1e-9);
        ProduceSummary {
            records,
            errors: progress.errors.load(Ordering::Relaxed),
            elapsed,
            records_per_s: records as f64 / seconds,
            mb_per_s: records as f64 * record_size as f64 / BYTES_PER_MB / seconds,
            latency_ms: LatencySummary::from_samples_us(samples),
        }
    }
}

fn print_produce_summary(summary: &ProduceSummary, json: bool) {
    let latency = summary.latency_ms;
    if json {
        let document = serde_json::json!({
            "records": summary.records,
            "errors": summary.errors,
            "elapsed_s": summary.elapsed.as_secs_f64(),
            "records_per_s": summary.records_per_s,
            "mb_per_s": summary.mb_per_s,
            "latency_ms": {
                "avg": latency.avg, "p50": latency.p50, "p95": latency.p95,
                "p99": latency.p99, "p999": latency.p999, "max": latency.max,
            },
        });
        out!("{document}");
        return;
    }
    out!(
        "{} records sent in {:.2} s: {:.1} records/s ({:.2} MB/s), {} errors",
        summary.records,
        summary.elapsed.as_secs_f64(),
        summary.records_per_s,
        summary.mb_per_s,
        summary.errors
    );
    out!(
        "latency ms: avg {:.2}, p50 {:.2}, p95 {:.2}, p99 {:.2}, p99.9 {:.2}, max {:.2}",
        latency.avg,
        latency.p50,
        latency.p95,
        latency.p99,
        latency.p999,
        latency.max
    );
}

async fn bench_consume(args: ConsumeBenchArgs) -> anyhow::Result<()> {
    let mut interrupt = super::interrupt::Interrupt::listen()?;
    if args.consumers == 0 {
        anyhow::bail!("--consumers must be positive");
    }
    let client = args.connection.connect().await?;
    let probe = Consumer::new(client, ConsumerConfig::default());
    let partitions = probe.partitions_of(&args.topic).await?;
    let ends = probe.end_offsets(&partitions).await?;
    let starts = Admin::new(args.connection.connect().await?)
        .list_offsets(&partitions, quill_client::admin::EARLIEST_TIMESTAMP)
        .await?;
    let available: i64 = ends
        .iter()
        .map(|(partition, end)| end - starts.get(partition).map_or(0, |answer| answer.offset))
        .sum();
    let target = args.records.unwrap_or(available.max(0) as u64);
    let progress = Arc::new(Progress::default());
    let started = Instant::now();
    let mut consumers = tokio::task::JoinSet::new();
    for index in 0..args.consumers as usize {
        let share: Vec<TopicPartition> = partitions
            .iter()
            .skip(index)
            .step_by(args.consumers as usize)
            .cloned()
            .collect();
        if share.is_empty() {
            continue;
        }
        let share_ends = share
            .iter()
            .map(|p| (p.clone(), ends.get(p).copied().unwrap_or(0)))
            .collect();
        consumers.spawn(run_consumer(
            args.connection.clone(),
            share,
            share_ends,
            target,
            progress.clone(),
        ));
    }
    let reporter = tokio::spawn(report_consumed(progress.clone()));
    loop {
        tokio::select! {
            () = interrupt.received(), if !progress.stop.load(Ordering::Acquire) => {
                progress.stop.store(true, Ordering::Release);
            }
            joined = consumers.join_next() => match joined {
                None => break,
                Some(Ok(result)) => result?,
                Some(Err(join_error)) => anyhow::bail!("a consumer task failed: {join_error}"),
            },
        }
    }
    reporter.abort();
    let records = progress.acknowledged.load(Ordering::Relaxed);
    let bytes = progress.bytes.load(Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    let records_per_s = records as f64 / seconds;
    let mb_per_s = bytes as f64 / BYTES_PER_MB / seconds;
    if args.json {
        let document = serde_json::json!({
            "records": records, "bytes": bytes, "elapsed_s": seconds,
            "records_per_s": records_per_s, "mb_per_s": mb_per_s, "consumers": args.consumers,
        });
        out!("{document}");
    } else {
        out!(
            "{records} records ({:.1} MB) consumed in {seconds:.2} s: {records_per_s:.1} records/s ({mb_per_s:.2} MB/s)",
            bytes as f64 / BYTES_PER_MB
        );
    }
    Ok(())
}

/// Reads `partitions` from their start until each reaches its end in `ends`, the shared count
/// reaches `target`, or the run is stopped.
async fn run_consumer(
    connection: ConnectionArgs,
    partitions: Vec<TopicPartition>,
    ends: BTreeMap<TopicPartition, i64>,
    target: u64,
    progress: Arc<Progress>,
) -> anyhow::Result<()> {
    let mut consumer = Consumer::new(connection.connect().await?, ConsumerConfig::default());
    consumer
        .assign(
            partitions
                .into_iter()
                .map(|p| (p, OffsetSpec::Earliest))
                .collect(),
        )
        .await?;
    let at_end = |consumer: &Consumer| {
        ends.iter()
            .all(|(p, end)| consumer.positions().get(p).is_some_and(|pos| pos >= end))
    };
    while !at_end(&consumer)
        && progress.acknowledged.load(Ordering::Relaxed) < target
        && !progress.stop.load(Ordering::Acquire)
    {
        for record in consumer.poll(Duration::from_millis(500)).await? {
            progress.acknowledged.fetch_add(1, Ordering::Relaxed);
            let size = record.value.as_ref().map_or(0, |v| v.len())
                + record.key.as_ref().map_or(0, |k| k.len());
            progress.bytes.fetch_add(size as u64, Ordering::Relaxed);
        }
    }
    Ok(())
}

async fn report_consumed(progress: Arc<Progress>) {
    loop {
        tokio::time::sleep(PROGRESS_INTERVAL).await;
        eprintln!(
            "{} records consumed",
            progress.acknowledged.load(Ordering::Relaxed)
        );
    }
}

/// How long the consumer keeps waiting for the last records after the producer finished.
const END_TO_END_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

async fn bench_end_to_end(args: EndToEndBenchArgs) -> anyhow::Result<()> {
    if args.record_size < 8 || args.throughput == 0 {
        anyhow::bail!("--record-size must be at least 8 and --throughput positive");
    }
    let client = args.connection.connect().await?;
    ensure_topic(&Admin::new(client.clone()), &args.topic, args.partitions).await?;
    let mut consumer = Consumer::new(
        client.clone(),
        ConsumerConfig {
            max_wait: Duration::from_millis(100),
            ..ConsumerConfig::default()
        },
    );
    let partitions = consumer.partitions_of(&args.topic).await?;
    consumer
        .assign(
            partitions
                .iter()
                .map(|p| (p.clone(), OffsetSpec::Latest))
                .collect(),
        )
        .await?;
    let started = Instant::now();
    let producer_config = ProducerConfig {
        acks: args.acks,
        linger: Duration::ZERO,
        allow_auto_topic_creation: false,
        ..ProducerConfig::default()
    };
    let producer = Producer::new(client, producer_config)?;
    let payload = random_payload(args.record_size);
    let (topic, records, rate) = (args.topic.clone(), args.records, args.throughput as f64);
    let sending = tokio::spawn(async move {
        for sent in 0..records {
            let due = Duration::from_secs_f64(sent as f64 / rate);
            let elapsed = started.elapsed();
            if due > elapsed {
                tokio::time::sleep(due - elapsed).await;
            }
            let mut value = payload.to_vec();
            let sent_at_us = started.elapsed().as_micros() as u64;
            value[..8].copy_from_slice(&sent_at_us.to_be_bytes());
            let record = ProducerRecord {
                topic: topic.clone(),
                value: Some(Bytes::from(value)),
                ..ProducerRecord::default()
            };
            producer.send_with_callback(record, |_| {}).await?;
        }
        producer.close().await;
        anyhow::Ok(())
    });
    let mut latencies_us = Vec::with_capacity(args.records as usize);
    let mut producer_done_at: Option<Instant> = None;
    let mut sending = Some(sending);
    while (latencies_us.len() as u64) < args.records {
        if let Some(done_at) = producer_done_at {
            if done_at.elapsed() > END_TO_END_DRAIN_TIMEOUT {
                break;
            }
        }
        for record in consumer.poll(Duration::from_millis(200)).await? {
            let Some(sent_at_us) = record.value.as_deref().and_then(|v| v.get(..8)) else {
                continue;
            };
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(sent_at_us);
            let received_at_us = started.elapsed().as_micros() as u64;
            let latency_us = received_at_us.saturating_sub(u64::from_be_bytes(bytes));
            latencies_us.push(u32::try_from(latency_us).unwrap_or(u32::MAX));
        }
        if sending.as_ref().is_some_and(|task| task.is_finished()) {
            if let Some(task) = sending.take() {
                task.await??;
            }
            producer_done_at = Some(Instant::now());
        }
    }
    let received = latencies_us.len() as u64;
    let latency = LatencySummary::from_samples_us(latencies_us);
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    if args.json {
        let document = serde_json::json!({
            "records_sent": args.records, "records_received": received, "elapsed_s": seconds,
            "end_to_end_latency_ms": {
                "avg": latency.avg, "p50": latency.p50, "p95": latency.p95,
                "p99": latency.p99, "p999": latency.p999, "max": latency.max,
            },
        });
        out!("{document}");
    } else {
        out!(
            "{received} of {} records received in {seconds:.2} s",
            args.records
        );
        out!(
            "end-to-end latency ms: avg {:.2}, p50 {:.2}, p95 {:.2}, p99 {:.2}, p99.9 {:.2}, max {:.2}",
            latency.avg, latency.p50, latency.p95, latency.p99, latency.p999, latency.max
        );
    }
    if received < args.records {
        anyhow::bail!(
            "{} records did not arrive within {} s",
            args.records - received,
            END_TO_END_DRAIN_TIMEOUT.as_secs()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let samples: Vec<u32> = (1..=1000).map(|ms| ms * 1000).collect();
        let summary = LatencySummary::from_samples_us(samples);
        assert_eq!(summary.p50, 500.0);
        assert_eq!(summary.p99, 990.0);
        assert_eq!(summary.p999, 999.0);
        assert_eq!(summary.max, 1000.0);
        assert_eq!(summary.avg, 500.5);
        assert_eq!(
            LatencySummary::from_samples_us(Vec::new()),
            LatencySummary::default()
        );
    }

    #[test]
    fn payload_is_letters_of_the_requested_size() {
        let payload = random_payload(1024);
        assert_eq!(payload.len(), 1024);
        assert!(payload.iter().all(u8::is_ascii_uppercase));
    }
}
