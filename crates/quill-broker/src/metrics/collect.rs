//! A scrape: reads the hot-path counters, the group-commit stats, every hosted log and the
//! group coordinator's committed offsets, and renders them as Prometheus text.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use quill_group::GroupState;

use super::text::{Kind, Labels, TextEncoder};
use super::{process, BrokerMetrics, MAX_LAG_SERIES, MAX_PARTITION_SERIES};
use crate::state::BrokerState;

/// Microseconds per second: recorded µs are exposed in seconds.
const MICROS: f64 = 1e6;

/// A family's name, help text and how to read its value from a row.
type GaugeFamily<Row, Value> = (&'static str, &'static str, fn(&Row) -> Value);

/// One hosted partition's log, read on the blocking pool.
pub(super) struct PartitionRow {
    pub(super) topic: String,
    pub(super) partition: i32,
    pub(super) size_bytes: u64,
    pub(super) segments: usize,
    pub(super) log_start_offset: i64,
    pub(super) log_end_offset: i64,
    pub(super) high_watermark: i64,
    /// For a compacted log: the cleaner's position and the dirty ratio it compares with
    /// `min.cleanable.dirty.ratio`.
    pub(super) cleaner: Option<CleanerRow>,
}

pub(super) struct CleanerRow {
    pub(super) first_dirty_offset: i64,
    pub(super) dirty_ratio: f64,
}

/// One committed offset with the lag the broker computes for it.
pub(super) struct LagRow {
    pub(super) group: String,
    pub(super) topic: String,
    pub(super) partition: i32,
    pub(super) committed: i64,
    /// `None` when the partition is not hosted here (deleted topic).
    pub(super) lag: Option<i64>,
}

/// One loaded consumer group.
pub(super) struct GroupRow {
    pub(super) group: String,
    pub(super) state: &'static str,
}

pub(super) struct Gathered {
    pub(super) partitions: Vec<PartitionRow>,
    pub(super) partitions_omitted: usize,
    pub(super) groups_by_state: BTreeMap<&'static str, u64>,
    /// Sorted by group id.
    pub(super) groups: Vec<GroupRow>,
    pub(super) lags: Vec<LagRow>,
    pub(super) lags_omitted: usize,
    pub(super) process: process::ProcessStats,
    /// Recent broker-wide rates (the console's sparklines), oldest first.
    pub(super) throughput: Vec<super::history::Rates>,
}

/// Renders the whole exposition. Log sizes, offsets and /proc are read on the blocking pool
/// (a log's lock may be held by an append).
pub async fn render(state: Arc<BrokerState>) -> String {
    let image = state.image();
    state
        .metrics
        .topics
        .retain(|topic| image.topic(topic).is_some());
    let gathering_state = state.clone();
    let gathered = tokio::task::spawn_blocking(move || gather(&gathering_state)).await;
    let mut encoder = TextEncoder::new();
    encode_counters(&mut encoder, &state.metrics);
    encode_commit_stats(&mut encoder, state.partitions.commit_stats());
    match gathered {
        Ok(gathered) => encode_gathered(&mut encoder, &gathered),
        Err(error) => tracing::warn!(%error, "metrics scrape could not read the logs"),
    }
    encoder.finish()
}

/// Reads every hosted log and the group coordinator (blocking: takes logs' read locks).
pub(super) fn gather(state: &BrokerState) -> Gathered {
    let now_ms = crate::clock::now_ms();
    let mut hosted = state.partitions.all();
    hosted.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    let partitions_omitted = hosted.len().saturating_sub(MAX_PARTITION_SERIES);
    let partitions = hosted
        .iter()
        .take(MAX_PARTITION_SERIES)
        .map(|partition| {
            let offsets = partition.offsets();
            PartitionRow {
                topic: partition.topic.clone(),
                partition: partition.partition,
                size_bytes: partition.size_bytes(),
                segments: partition.segment_count(),
                log_start_offset: offsets.log_start_offset,
                log_end_offset: offsets.log_end_offset,
                high_watermark: offsets.high_watermark,
                cleaner: partition
                    .cleanable_stats(now_ms)
                    .map(|(stats, _)| CleanerRow {
                        first_dirty_offset: stats.first_dirty_offset,
                        dirty_ratio: stats.dirty_ratio(),
                    }),
            }
        })
        .collect();

    let snapshot = state.groups.snapshot_groups(MAX_LAG_SERIES);
    let mut groups_by_state: BTreeMap<&'static str, u64> = [
        GroupState::Empty,
        GroupState::PreparingRebalance,
        GroupState::CompletingRebalance,
        GroupState::Stable,
    ]
    .into_iter()
    .map(|group_state| (group_state.as_str(), 0))
    .collect();
    let mut lags = Vec::new();
    let mut groups = Vec::with_capacity(snapshot.groups.len());
    for group in snapshot.groups {
        *groups_by_state.entry(group.state.as_str()).or_insert(0) += 1;
        groups.push(GroupRow {
            group: group.group_id.clone(),
            state: group.state.as_str(),
        });
        for (tp, committed) in group.offsets {
            // Lag as Kafka's tools compute it: the high watermark (what a consumer can read)
            // minus the committed offset (the next record the group will consume).
            let lag = state
                .partitions
                .get(&tp.topic, tp.partition)
                .map(|partition| partition.offsets().high_watermark - committed);
            lags.push(LagRow {
                group: group.group_id.clone(),
                topic: tp.topic,
                partition: tp.partition,
                committed,
                lag,
            });
        }
    }
    lags.sort_by(|a, b| (&a.group, &a.topic, a.partition).cmp(&(&b.group, &b.topic, b.partition)));
    groups.sort_by(|a, b| a.group.cmp(&b.group));
    Gathered {
        partitions,
        partitions_omitted,
        groups_by_state,
        groups,
        lags,
        lags_omitted: snapshot.omitted_offsets,
        process: process::read(),
        throughput: state.metrics.history.rates(),
    }
}

fn encode_counters(encoder: &mut TextEncoder, metrics: &BrokerMetrics) {
    let topics = metrics.topics.snapshot();
    let families: [GaugeFamily<super::TopicStats, u64>; 3] = [
        (
            "kafka_server_brokertopicmetrics_bytesin_total",
            "Record batch bytes appended by Produce (BytesInPerSec); without a topic label: all topics",
            |stats| stats.bytes_in.load(Ordering::Relaxed),
        ),
        (
            "kafka_server_brokertopicmetrics_bytesout_total",
            "Record batch bytes returned by Fetch (BytesOutPerSec); without a topic label: all topics",
            |stats| stats.bytes_out.load(Ordering::Relaxed),
        ),
        (
            "kafka_server_brokertopicmetrics_messagesin_total",
            "Records appended by Produce (MessagesInPerSec); without a topic label: all topics",
            |stats| stats.messages_in.load(Ordering::Relaxed),
        ),
    ];
    for (name, help, read) in families {
        encoder.family(name, Kind::Counter, help);
        encoder.sample_u64(name, &[], read(&metrics.all_topics));
        for (topic, stats) in &topics {
            encoder.sample_u64(name, &[("topic", topic)], read(stats));
        }
    }

    let name = "kafka_network_requestmetrics_requests_total";
    encoder.family(
        name,
        Kind::Counter,
        "Requests answered, per API (RequestsPerSec)",
    );
    for (api, stats) in metrics.apis() {
        encoder.sample_u64(
            name,
            &[("request", api)],
            stats.total_micros.snapshot().count,
        );
    }
    let name = "kafka_network_requestmetrics_totaltime_seconds";
    encoder.family(
        name,
        Kind::Histogram,
        "From the request read off the socket to its response written (TotalTimeMs)",
    );
    for (api, stats) in metrics.apis() {
        let snapshot = stats.total_micros.snapshot();
        encoder.histogram(name, &[("request", api)], &snapshot, MICROS);
    }
    let name = "kafka_network_requestmetrics_requestqueuetime_seconds";
    encoder.family(
        name,
        Kind::Histogram,
        "From the request read off the socket to its handling started, behind the connection's earlier requests (RequestQueueTimeMs)",
    );
    for (api, stats) in metrics.apis() {
        let snapshot = stats.queue_micros.snapshot();
        encoder.histogram(name, &[("request", api)], &snapshot, MICROS);
    }

    let name = "kafka_server_delayedoperationpurgatory_purgatorysize";
    encoder.family(
        name,
        Kind::Gauge,
        "Requests waiting: Produce for durability (acks=-1), Fetch for data (long poll)",
    );
    encoder.sample_i64(
        name,
        &[("delayed_operation", "Produce")],
        metrics.produce_waiting.load(Ordering::Relaxed),
    );
    encoder.sample_i64(
        name,
        &[("delayed_operation", "Fetch")],
        metrics.fetch_waiting.load(Ordering::Relaxed),
    );

    let name = "quill_metrics_series_dropped_total";
    encoder.family(
        name,
        Kind::Counter,
        "Per-topic counter updates refused because MAX_TOPIC_SERIES topics already have series",
    );
    encoder.sample_u64(name, &[("family", "topic")], metrics.topics.dropped());

    let name = "process_start_time_seconds";
    encoder.family(
        name,
        Kind::Gauge,
        "Start time of the process since the Unix epoch",
    );
    let started = metrics
        .started
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64());
    encoder.sample_f64(name, &[], started);
}

fn encode_commit_stats(encoder: &mut TextEncoder, stats: &quill_log::stats::CommitStats) {
    let name = "kafka_log_logflushstats_logflush_seconds";
    encoder.family(
        name,
        Kind::Histogram,
        "fdatasync latency of one log in a group-commit round (LogFlushRateAndTimeMs)",
    );
    encoder.histogram(name, &[], &stats.fsync_micros.snapshot(), MICROS);
    let name = "quill_log_group_commit_batch_requests";
    encoder.family(
        name,
        Kind::Histogram,
        "Durability requests (acks=-1 appends, offset commits) served by one group-commit round",
    );
    encoder.histogram(name, &[], &stats.batch_requests.snapshot(), 1.0);
    let name = "quill_log_fsync_failures_total";
    encoder.family(
        name,
        Kind::Counter,
        "Group-commit fsyncs that failed (the log went offline)",
    );
    encoder.sample_u64(name, &[], stats.fsync_failures.load(Ordering::Relaxed));
}

fn encode_gathered(encoder: &mut TextEncoder, gathered: &Gathered) {
    let partition_families: [GaugeFamily<PartitionRow, i64>; 5] = [
        (
            "kafka_log_log_size",
            "Bytes of the partition's log segments (Log.Size)",
            |row| i64::try_from(row.size_bytes).unwrap_or(i64::MAX),
        ),
        (
            "kafka_log_log_numlogsegments",
            "Segments of the partition's log (Log.NumLogSegments)",
            |row| i64::try_from(row.segments).unwrap_or(i64::MAX),
        ),
        (
            "kafka_log_log_logstartoffset",
            "First offset of the partition's log (Log.LogStartOffset)",
            |row| row.log_start_offset,
        ),
        (
            "kafka_log_log_logendoffset",
            "Next offset to be assigned (Log.LogEndOffset)",
            |row| row.log_end_offset,
        ),
        (
            "kafka_cluster_partition_highwatermark",
            "Durable end offset: consumers read below it (Partition high watermark)",
            |row| row.high_watermark,
        ),
    ];
    for (name, help, read) in partition_families {
        encoder.family(name, Kind::Gauge, help);
        for row in &gathered.partitions {
            let partition = row.partition.to_string();
            encoder.sample_i64(
                name,
                &[("topic", &row.topic), ("partition", &partition)],
                read(row),
            );
        }
    }

    encode_cleaner(encoder, &gathered.partitions);

    let name = "kafka_coordinator_group_groupmetadatamanager_numgroups";
    encoder.family(
        name,
        Kind::Gauge,
        "Consumer groups loaded by this coordinator, by state (NumGroups<State>)",
    );
    for (group_state, count) in &gathered.groups_by_state {
        encoder.sample_u64(name, &[("state", group_state)], *count);
    }

    let name = "kafka_consumergroup_current_offset";
    encoder.family(
        name,
        Kind::Gauge,
        "Committed offset of a group for a partition (kafka_exporter's name)",
    );
    for row in &gathered.lags {
        let partition = row.partition.to_string();
        encoder.sample_i64(
            name,
            &[
                ("consumergroup", &row.group),
                ("topic", &row.topic),
                ("partition", &partition),
            ],
            row.committed,
        );
    }
    let name = "kafka_consumergroup_lag";
    encoder.family(
        name,
        Kind::Gauge,
        "High watermark minus the group's committed offset, computed by the broker (kafka_exporter's name)",
    );
    for row in &gathered.lags {
        let Some(lag) = row.lag else { continue };
        let partition = row.partition.to_string();
        encoder.sample_i64(
            name,
            &[
                ("consumergroup", &row.group),
                ("topic", &row.topic),
                ("partition", &partition),
            ],
            lag,
        );
    }

    let name = "quill_metrics_series_omitted";
    encoder.family(
        name,
        Kind::Gauge,
        "Series left out of this scrape by MAX_PARTITION_SERIES (partition) and MAX_LAG_SERIES (consumergroup)",
    );
    encoder.sample_u64(
        name,
        &[("family", "partition")],
        gathered.partitions_omitted as u64,
    );
    encoder.sample_u64(
        name,
        &[("family", "consumergroup")],
        gathered.lags_omitted as u64,
    );

    encode_process(encoder, &gathered.process);
}

fn encode_process(encoder: &mut TextEncoder, stats: &process::ProcessStats) {
    let float_families = [(
        "process_cpu_seconds_total",
        Kind::Counter,
        "User and system CPU time spent, in seconds",
        stats.cpu_seconds,
    )];
    for (name, kind, help, value) in float_families {
        if let Some(value) = value {
            encoder.family(name, kind, help);
            encoder.sample_f64(name, &[], value);
        }
    }
    let integer_families = [
        (
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            stats.resident_memory_bytes,
        ),
        (
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            stats.virtual_memory_bytes,
        ),
        ("process_open_fds", "Open file descriptors", stats.open_fds),
        (
            "process_max_fds",
            "Maximum number of open file descriptors (soft limit)",
            stats.max_fds,
        ),
        (
            "process_threads",
            "OS threads of the process",
            stats.threads,
        ),
    ];
    for (name, help, value) in integer_families {
        if let Some(value) = value {
            encoder.family(name, Kind::Gauge, help);
            encoder.sample_u64(name, &[], value);
        }
    }
}

/// Writes one cleaner sample of a partition.
type CleanerSample = fn(&mut TextEncoder, &str, Labels<'_>, &CleanerRow);

/// The log cleaner's view of each compacted partition, and the broker-wide maximum as Kafka's
/// `LogCleanerManager.max-dirty-percent`.
fn encode_cleaner(encoder: &mut TextEncoder, partitions: &[PartitionRow]) {
    let compacted: Vec<(&PartitionRow, &CleanerRow)> = partitions
        .iter()
        .filter_map(|row| row.cleaner.as_ref().map(|cleaner| (row, cleaner)))
        .collect();
    let per_partition: [(&str, &str, CleanerSample); 2] = [
        (
            "quill_log_cleaner_first_dirty_offset",
            "Where the cleaner resumes in a compacted partition: records below it are cleaned",
            |encoder, name, labels, cleaner| {
                encoder.sample_i64(name, labels, cleaner.first_dirty_offset)
            },
        ),
        (
            "quill_log_cleaner_dirty_ratio",
            "Dirty bytes over all cleanable-range bytes of a compacted partition (compared with min.cleanable.dirty.ratio)",
            |encoder, name, labels, cleaner| encoder.sample_f64(name, labels, cleaner.dirty_ratio),
        ),
    ];
    for (name, help, sample) in per_partition {
        encoder.family(name, Kind::Gauge, help);
        for (row, cleaner) in &compacted {
            let partition = row.partition.to_string();
            sample(
                encoder,
                name,
                &[("topic", &row.topic), ("partition", &partition)],
                cleaner,
            );
        }
    }
    let name = "kafka_log_logcleanermanager_max_dirty_percent";
    encoder.family(
        name,
        Kind::Gauge,
        "Highest dirty ratio of any compacted partition, in percent (LogCleanerManager.max-dirty-percent)",
    );
    let max_percent = compacted
        .iter()
        .map(|(_, cleaner)| cleaner.dirty_ratio * 100.0)
        .fold(0.0, f64::max);
    encoder.sample_f64(name, &[], max_percent);
}
