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

/// This broker's share of replication, counted over every hosted partition (Kafka's
/// `ReplicaManager` gauges) and, on the active controller, over the whole image (Kafka's
/// `KafkaController` gauges).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct ReplicationSummary {
    /// Partitions with a replica here (their log open or not).
    pub(super) partition_count: u64,
    pub(super) leader_count: u64,
    /// Led here, ISR smaller than the replica set.
    pub(super) under_replicated: u64,
    /// Led here, ISR smaller than the effective `min.insync.replicas`.
    pub(super) under_min_isr: u64,
    /// Led here, ISR exactly the effective `min.insync.replicas`.
    pub(super) at_min_isr: u64,
    /// Replicas here whose log is not open (failed to open, or closed after a fault).
    pub(super) offline_replicas: u64,
    pub(super) active_controller: bool,
    /// What only the active controller reports (zero elsewhere, as in Kafka).
    pub(super) controller: ControllerSummary,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct ControllerSummary {
    /// Partitions without a leader.
    pub(super) offline_partitions: u64,
    pub(super) global_topics: u64,
    pub(super) global_partitions: u64,
    pub(super) active_brokers: u64,
    pub(super) fenced_brokers: u64,
}

/// How far one follower is behind this leader: the leader's log end − the follower's last
/// fetch offset.
pub(super) struct ReplicaLagRow {
    pub(super) topic: String,
    pub(super) partition: i32,
    pub(super) replica: i32,
    pub(super) lag: i64,
}

pub(super) struct Gathered {
    pub(super) replication: ReplicationSummary,
    /// Per follower of a partition led here, in (topic, partition, replica) order.
    pub(super) replica_lags: Vec<ReplicaLagRow>,
    pub(super) replica_lags_omitted: usize,
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
    let (replication, mut replica_lags) = gather_replication(state, &hosted);
    let replica_lags_omitted = replica_lags.len().saturating_sub(MAX_PARTITION_SERIES);
    replica_lags.truncate(MAX_PARTITION_SERIES);
    Gathered {
        replication,
        replica_lags,
        replica_lags_omitted,
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

/// Counts leaderships, ISR health and offline replicas over every hosted partition (`hosted`
/// sorted by topic and partition), and each follower's lag behind the partitions led here.
fn gather_replication(
    state: &BrokerState,
    hosted: &[Arc<crate::partitions::Partition>],
) -> (ReplicationSummary, Vec<ReplicaLagRow>) {
    let offline_replicas = state.partitions.failed_open_count()
        + hosted
            .iter()
            .filter(|partition| partition.is_closed())
            .count();
    let mut summary = ReplicationSummary {
        partition_count: (hosted.len() + state.partitions.failed_open_count()) as u64,
        offline_replicas: offline_replicas as u64,
        active_controller: state.metadata.is_active_controller(),
        ..ReplicationSummary::default()
    };
    let mut lags = Vec::new();
    for partition in hosted {
        let replica_state = partition.replica_state();
        if !replica_state.is_leader() {
            continue;
        }
        summary.leader_count += 1;
        let isr_size = replica_state.isr.len();
        let min_isr = usize::try_from(partition.min_insync_replicas()).unwrap_or(1);
        if isr_size < replica_state.replicas.len() {
            summary.under_replicated += 1;
        }
        if isr_size < min_isr {
            summary.under_min_isr += 1;
        } else if isr_size == min_isr {
            summary.at_min_isr += 1;
        }
        let log_end_offset = partition.offsets().log_end_offset;
        for replica in &replica_state.replicas {
            // A follower that has not fetched in this leader epoch has no known position.
            let Some(follower) = replica_state
                .follower(*replica)
                .filter(|follower| follower.durable_end_offset >= 0)
            else {
                continue;
            };
            lags.push(ReplicaLagRow {
                topic: partition.topic.clone(),
                partition: partition.partition,
                replica: *replica,
                lag: (log_end_offset - follower.durable_end_offset).max(0),
            });
        }
    }
    if summary.active_controller {
        summary.controller = controller_summary(&state.image());
    }
    (summary, lags)
}

/// The cluster-wide counts Kafka's active controller reports.
fn controller_summary(image: &quill_meta::MetadataImage) -> ControllerSummary {
    let partitions = image
        .topics
        .values()
        .flat_map(|topic| topic.partitions.iter());
    let (mut global_partitions, mut offline_partitions) = (0, 0);
    for partition in partitions {
        global_partitions += 1;
        if partition.leader < 0 {
            offline_partitions += 1;
        }
    }
    let active_brokers = image
        .brokers
        .values()
        .filter(|broker| !broker.fenced)
        .count() as u64;
    ControllerSummary {
        offline_partitions,
        global_topics: image.topics.len() as u64,
        global_partitions,
        active_brokers,
        fenced_brokers: image.brokers.len() as u64 - active_brokers,
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

    let isr_families: [GaugeFamily<super::IsrChanges, u64>; 3] = [
        (
            "kafka_server_replicamanager_isrshrinks_total",
            "ISR shrinks this broker made as leader, once committed by the controller (IsrShrinksPerSec)",
            |changes| changes.shrinks.load(Ordering::Relaxed),
        ),
        (
            "kafka_server_replicamanager_isrexpands_total",
            "ISR expansions this broker made as leader, once committed by the controller (IsrExpandsPerSec)",
            |changes| changes.expands.load(Ordering::Relaxed),
        ),
        (
            "kafka_server_replicamanager_failedisrupdates_total",
            "ISR changes this broker asked for that the controller refused or did not answer (FailedIsrUpdatesPerSec)",
            |changes| changes.failed_updates.load(Ordering::Relaxed),
        ),
    ];
    for (name, help, read) in isr_families {
        encoder.family(name, Kind::Counter, help);
        encoder.sample_u64(name, &[], read(&metrics.isr_changes));
    }

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
    encode_replication(encoder, &gathered.replication, &gathered.replica_lags);

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
        "Series left out of this scrape by MAX_PARTITION_SERIES (partition, replica) and MAX_LAG_SERIES (consumergroup)",
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
    encoder.sample_u64(
        name,
        &[("family", "replica")],
        gathered.replica_lags_omitted as u64,
    );

    encode_process(encoder, &gathered.process);
}

fn encode_replication(
    encoder: &mut TextEncoder,
    summary: &ReplicationSummary,
    lags: &[ReplicaLagRow],
) {
    let gauges: [GaugeFamily<ReplicationSummary, u64>; 12] = [
        (
            "kafka_server_replicamanager_partitioncount",
            "Partitions with a replica on this broker (ReplicaManager.PartitionCount)",
            |s| s.partition_count,
        ),
        (
            "kafka_server_replicamanager_leadercount",
            "Partitions this broker leads (ReplicaManager.LeaderCount)",
            |s| s.leader_count,
        ),
        (
            "kafka_server_replicamanager_underreplicatedpartitions",
            "Partitions led here whose ISR is smaller than their replica set (ReplicaManager.UnderReplicatedPartitions)",
            |s| s.under_replicated,
        ),
        (
            "kafka_server_replicamanager_underminisrpartitioncount",
            "Partitions led here whose ISR is smaller than min.insync.replicas: acks=all produces fail (ReplicaManager.UnderMinIsrPartitionCount)",
            |s| s.under_min_isr,
        ),
        (
            "kafka_server_replicamanager_atminisrpartitioncount",
            "Partitions led here whose ISR is exactly min.insync.replicas (ReplicaManager.AtMinIsrPartitionCount)",
            |s| s.at_min_isr,
        ),
        (
            "kafka_server_replicamanager_offlinereplicacount",
            "Replicas on this broker whose log is not open (ReplicaManager.OfflineReplicaCount)",
            |s| s.offline_replicas,
        ),
        (
            "kafka_controller_kafkacontroller_activecontrollercount",
            "1 on the active controller, 0 elsewhere (KafkaController.ActiveControllerCount)",
            |s| u64::from(s.active_controller),
        ),
        (
            "kafka_controller_kafkacontroller_offlinepartitionscount",
            "Partitions without a leader; reported by the active controller, 0 elsewhere (KafkaController.OfflinePartitionsCount)",
            |s| s.controller.offline_partitions,
        ),
        (
            "kafka_controller_kafkacontroller_globaltopiccount",
            "Topics in the cluster; reported by the active controller (KafkaController.GlobalTopicCount)",
            |s| s.controller.global_topics,
        ),
        (
            "kafka_controller_kafkacontroller_globalpartitioncount",
            "Partitions in the cluster; reported by the active controller (KafkaController.GlobalPartitionCount)",
            |s| s.controller.global_partitions,
        ),
        (
            "kafka_controller_kafkacontroller_activebrokercount",
            "Registered unfenced brokers; reported by the active controller (KafkaController.ActiveBrokerCount)",
            |s| s.controller.active_brokers,
        ),
        (
            "kafka_controller_kafkacontroller_fencedbrokercount",
            "Registered fenced brokers; reported by the active controller (KafkaController.FencedBrokerCount)",
            |s| s.controller.fenced_brokers,
        ),
    ];
    for (name, help, read) in gauges {
        encoder.family(name, Kind::Gauge, help);
        encoder.sample_u64(name, &[], read(summary));
    }
    let name = "kafka_server_fetcherlagmetrics_consumerlag";
    encoder.family(
        name,
        Kind::Gauge,
        "Records a follower is behind: this leader's log end minus the follower's last fetch offset (as FetcherLagMetrics.ConsumerLag, measured on the leader)",
    );
    for row in lags {
        let partition = row.partition.to_string();
        let replica = row.replica.to_string();
        encoder.sample_i64(
            name,
            &[
                ("topic", &row.topic),
                ("partition", &partition),
                ("replica", &replica),
            ],
            row.lag,
        );
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use quill_meta::{BrokerInfo, MetadataImage, PartitionInfo, TopicInfo};

    fn broker(node_id: i32, fenced: bool) -> BrokerInfo {
        BrokerInfo {
            node_id,
            host: "127.0.0.1".to_string(),
            port: 9092,
            rack: None,
            fenced,
            incarnation_id: None,
            in_controlled_shutdown: false,
        }
    }

    fn partition(partition: i32, leader: i32) -> PartitionInfo {
        PartitionInfo {
            partition,
            leader,
            leader_epoch: 0,
            partition_epoch: 0,
            replicas: vec![1, 2],
            isr: if leader < 0 { vec![] } else { vec![leader] },
        }
    }

    #[test]
    fn the_controller_counts_leaderless_partitions_and_fenced_brokers() {
        let mut image = MetadataImage::empty("c");
        image.brokers.insert(1, broker(1, false));
        image.brokers.insert(2, broker(2, true));
        for (name, partitions) in [
            ("a", vec![partition(0, 1), partition(1, -1)]),
            ("b", vec![partition(0, -1)]),
        ] {
            image.topics.insert(
                name.to_string(),
                Arc::new(TopicInfo {
                    name: name.to_string(),
                    topic_id: quill_meta::Uuid::from_u128(u128::from(name.as_bytes()[0])),
                    partitions,
                    configs: BTreeMap::new(),
                }),
            );
        }
        assert_eq!(
            controller_summary(&image),
            ControllerSummary {
                offline_partitions: 2,
                global_topics: 2,
                global_partitions: 3,
                active_brokers: 1,
                fenced_brokers: 1,
            }
        );
    }

    #[test]
    fn replication_gauges_and_follower_lag_render_with_their_labels() {
        let summary = ReplicationSummary {
            partition_count: 4,
            leader_count: 2,
            under_replicated: 1,
            under_min_isr: 0,
            at_min_isr: 1,
            offline_replicas: 0,
            active_controller: true,
            controller: ControllerSummary {
                offline_partitions: 3,
                ..ControllerSummary::default()
            },
        };
        let lags = [ReplicaLagRow {
            topic: "orders".to_string(),
            partition: 2,
            replica: 3,
            lag: 7,
        }];
        let mut encoder = TextEncoder::new();
        encode_replication(&mut encoder, &summary, &lags);
        let text = encoder.finish();
        for line in [
            "kafka_server_replicamanager_partitioncount 4",
            "kafka_server_replicamanager_leadercount 2",
            "kafka_server_replicamanager_underreplicatedpartitions 1",
            "kafka_server_replicamanager_atminisrpartitioncount 1",
            "kafka_controller_kafkacontroller_activecontrollercount 1",
            "kafka_controller_kafkacontroller_offlinepartitionscount 3",
            "kafka_server_fetcherlagmetrics_consumerlag{topic=\"orders\",partition=\"2\",replica=\"3\"} 7",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
}
