//! Broker metrics: counters updated on the hot path with relaxed atomics (no lock per
//! record), and a scrape (`collect`) that reads them together with state the broker already
//! keeps (logs, high watermarks, the group coordinator's committed offsets) and renders
//! Prometheus text. Served over HTTP by `http` when `metrics.listen` is set.
//!
//! Names follow Kafka's JMX metrics as the Prometheus JMX exporter spells them (and, for
//! consumer lag, kafka_exporter's), so existing dashboards map easily: see docs/metrics.md.
//!
//! Every family labelled by something a client chooses (topics, groups) is bounded by a named
//! limit; what exceeds it is dropped and counted (`quill_metrics_series_dropped_total`).

pub mod browse;
pub mod collect;
pub mod console;
pub mod history;
pub mod http;
mod process;
pub mod reset;
pub mod text;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Instant;

use kafka_protocol::messages::ApiKey;
use quill_log::stats::Histogram;

use crate::protocol::SUPPORTED_APIS;

/// Topics with their own byte/record counters. Beyond it, updates of further topics are
/// dropped (the broker-wide totals still count them) and counted. Deleted topics are pruned
/// at each scrape, so the limit bounds live topics, not topics ever seen.
pub const MAX_TOPIC_SERIES: usize = 2_000;
/// Partitions exposed with log size, segment count and offsets in one scrape.
pub const MAX_PARTITION_SERIES: usize = 10_000;
/// Group × topic × partition committed-offset (and lag) series in one scrape.
pub const MAX_LAG_SERIES: usize = 10_000;

/// Request latency bounds in microseconds: 100 µs to 30 s (JoinGroup may wait out a
/// rebalance; Fetch long-polls up to its max wait).
const LATENCY_MICROS_BOUNDS: &[u64] = &[
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000, 30_000_000,
];

/// Kafka's `BrokerTopicMetrics` for one topic (or all of them).
#[derive(Debug, Default)]
pub struct TopicStats {
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub messages_in: AtomicU64,
}

/// Kafka's `RequestMetrics` for one API.
pub struct ApiStats {
    pub total_micros: Histogram,
    pub queue_micros: Histogram,
}

/// A map of per-key series that holds at most `max_series` keys. Lookups of known keys take
/// a shared read lock (one per request and topic, never per record); a key beyond the limit is
/// refused and counted.
pub struct BoundedSeries<V> {
    entries: RwLock<HashMap<String, Arc<V>>>,
    max_series: usize,
    dropped: AtomicU64,
}

impl<V: Default> BoundedSeries<V> {
    pub fn new(max_series: usize) -> BoundedSeries<V> {
        BoundedSeries {
            entries: RwLock::new(HashMap::new()),
            max_series,
            dropped: AtomicU64::new(0),
        }
    }

    /// The series for `key`, created if there is room; `None` (and counted) otherwise.
    pub fn get_or_create(&self, key: &str) -> Option<Arc<V>> {
        if let Some(existing) = self.read().get(key) {
            return Some(existing.clone());
        }
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if let Some(existing) = entries.get(key) {
            return Some(existing.clone());
        }
        if entries.len() >= self.max_series {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let created = Arc::new(V::default());
        entries.insert(key.to_string(), created.clone());
        Some(created)
    }

    /// Forgets keys for which `keep` is false (deleted topics).
    pub fn retain(&self, mut keep: impl FnMut(&str) -> bool) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        entries.retain(|key, _| keep(key));
    }

    /// Every series, sorted by key (a stable exposition order).
    pub fn snapshot(&self) -> Vec<(String, Arc<V>)> {
        let mut all: Vec<(String, Arc<V>)> = self
            .read()
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Updates refused because the limit was reached.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<V>>> {
        self.entries.read().unwrap_or_else(|p| p.into_inner())
    }
}

/// Every counter the broker updates as it works. Shared through `BrokerState`.
pub struct BrokerMetrics {
    pub all_topics: TopicStats,
    pub topics: BoundedSeries<TopicStats>,
    /// Parallel to `SUPPORTED_APIS`.
    apis: Vec<ApiStats>,
    /// Produce requests appended and waiting for durability (and their turn to answer).
    pub produce_waiting: AtomicI64,
    /// Fetch requests long-polling for data.
    pub fetch_waiting: AtomicI64,
    pub started: std::time::SystemTime,
    /// Recent broker-wide throughput, sampled while the web console is served.
    pub history: history::ThroughputHistory,
    /// Recent total lag per consumer group, sampled while the web console is served.
    pub lag_history: history::LagHistory,
    /// ISR changes this broker made as leader (`isr.rs`), counted once the controller
    /// committed them (Kafka's `ReplicaManager` IsrShrinksPerSec / IsrExpandsPerSec) or refused
    /// them (FailedIsrUpdatesPerSec).
    pub isr_changes: IsrChanges,
}

/// Kafka's ReplicaManager ISR-change meters, as counters.
#[derive(Debug, Default)]
pub struct IsrChanges {
    pub shrinks: AtomicU64,
    pub expands: AtomicU64,
    pub failed_updates: AtomicU64,
}

impl IsrChanges {
    /// One committed AlterPartition: a shrink if it removed members, an expand if it added
    /// some (one change may do both).
    pub fn committed(&self, removed_members: usize, added_members: usize) {
        if removed_members > 0 {
            self.shrinks.fetch_add(1, Ordering::Relaxed);
        }
        if added_members > 0 {
            self.expands.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One AlterPartition the controller refused (or that could not reach it).
    pub fn failed(&self) {
        self.failed_updates.fetch_add(1, Ordering::Relaxed);
    }
}

impl Default for BrokerMetrics {
    fn default() -> Self {
        BrokerMetrics {
            all_topics: TopicStats::default(),
            topics: BoundedSeries::new(MAX_TOPIC_SERIES),
            apis: SUPPORTED_APIS
                .iter()
                .map(|_| ApiStats {
                    total_micros: Histogram::new(LATENCY_MICROS_BOUNDS),
                    queue_micros: Histogram::new(LATENCY_MICROS_BOUNDS),
                })
                .collect(),
            produce_waiting: AtomicI64::new(0),
            fetch_waiting: AtomicI64::new(0),
            started: std::time::SystemTime::now(),
            history: history::ThroughputHistory::default(),
            lag_history: history::LagHistory::default(),
            isr_changes: IsrChanges::default(),
        }
    }
}

/// One request's clock: when its frame was read, and which API it is.
#[derive(Debug, Clone, Copy)]
pub struct RequestTimer {
    api_index: Option<usize>,
    received: Instant,
}

impl RequestTimer {
    pub fn start(api_key: ApiKey, received: Instant) -> RequestTimer {
        RequestTimer {
            api_index: SUPPORTED_APIS.iter().position(|api| api.key == api_key),
            received,
        }
    }
}

fn micros_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)
}

impl BrokerMetrics {
    /// Bytes and records a Produce appended to `topic`.
    pub fn record_produced(&self, topic: &str, bytes: u64, records: u64) {
        for stats in
            std::iter::once(&self.all_topics).chain(self.topics.get_or_create(topic).as_deref())
        {
            stats.bytes_in.fetch_add(bytes, Ordering::Relaxed);
            stats.messages_in.fetch_add(records, Ordering::Relaxed);
        }
    }

    /// Record bytes a Fetch response carries for `topic`.
    pub fn record_fetched(&self, topic: &str, bytes: u64) {
        for stats in
            std::iter::once(&self.all_topics).chain(self.topics.get_or_create(topic).as_deref())
        {
            stats.bytes_out.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// The request left the connection's queue and its handling begins.
    pub fn request_dequeued(&self, timer: &RequestTimer) {
        if let Some(stats) = timer.api_index.and_then(|index| self.apis.get(index)) {
            stats.queue_micros.record(micros_since(timer.received));
        }
    }

    /// The request's response was written (or it had none).
    pub fn request_completed(&self, timer: &RequestTimer) {
        if let Some(stats) = timer.api_index.and_then(|index| self.apis.get(index)) {
            stats.total_micros.record(micros_since(timer.received));
        }
    }

    /// Per API: its Kafka request name and its stats.
    pub fn apis(&self) -> impl Iterator<Item = (&'static str, &ApiStats)> {
        api_names().iter().map(String::as_str).zip(self.apis.iter())
    }

    /// Counts one waiting request of `gauge` until the returned guard drops.
    pub fn waiting(self: &Arc<Self>, gauge: Waiting) -> WaitingGuard {
        self.gauge(gauge).fetch_add(1, Ordering::Relaxed);
        WaitingGuard {
            metrics: self.clone(),
            gauge,
        }
    }

    fn gauge(&self, gauge: Waiting) -> &AtomicI64 {
        match gauge {
            Waiting::Produce => &self.produce_waiting,
            Waiting::Fetch => &self.fetch_waiting,
        }
    }
}

/// Kafka's delayed-operation purgatories.
#[derive(Debug, Clone, Copy)]
pub enum Waiting {
    Produce,
    Fetch,
}

pub struct WaitingGuard {
    metrics: Arc<BrokerMetrics>,
    gauge: Waiting,
}

impl Drop for WaitingGuard {
    fn drop(&mut self) {
        self.metrics
            .gauge(self.gauge)
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// Kafka's request names (the `request` tag of its RequestMetrics), parallel to
/// `SUPPORTED_APIS`.
pub fn api_names() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    // kafka-protocol's variant names are Kafka's request names ("Produce", "ListOffsets", …).
    NAMES.get_or_init(|| {
        SUPPORTED_APIS
            .iter()
            .map(|api| format!("{:?}", api.key))
            .collect()
    })
}

/// Kafka's name of an API, for log lines and labels ("Produce", "ListOffsets", …).
pub fn api_name(key: ApiKey) -> &'static str {
    SUPPORTED_APIS
        .iter()
        .position(|api| api.key == key)
        .and_then(|index| api_names().get(index))
        .map(String::as_str)
        .unwrap_or("Unknown")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn topic_series_beyond_the_limit_are_dropped_and_counted() {
        let series: BoundedSeries<TopicStats> = BoundedSeries::new(2);
        assert!(series.get_or_create("a").is_some());
        assert!(series.get_or_create("b").is_some());
        assert!(series.get_or_create("c").is_none());
        assert!(series.get_or_create("d").is_none());
        // Known keys still resolve at the limit.
        assert!(series.get_or_create("a").is_some());
        assert_eq!(series.dropped(), 2);
        let keys: Vec<String> = series.snapshot().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a", "b"]);
        // Pruning makes room again.
        series.retain(|key| key != "a");
        assert!(series.get_or_create("c").is_some());
        assert_eq!(series.snapshot().len(), 2);
    }

    #[test]
    fn broker_totals_count_what_per_topic_series_drop() {
        let metrics = BrokerMetrics {
            topics: BoundedSeries::new(1),
            ..BrokerMetrics::default()
        };
        metrics.record_produced("a", 100, 2);
        metrics.record_produced("b", 50, 1);
        metrics.record_fetched("b", 7);
        assert_eq!(metrics.all_topics.bytes_in.load(Ordering::Relaxed), 150);
        assert_eq!(metrics.all_topics.messages_in.load(Ordering::Relaxed), 3);
        assert_eq!(metrics.all_topics.bytes_out.load(Ordering::Relaxed), 7);
        let topics = metrics.topics.snapshot();
        assert_eq!(topics.len(), 1);
        assert_eq!(topics[0].1.bytes_in.load(Ordering::Relaxed), 100);
        assert_eq!(metrics.topics.dropped(), 2);
    }

    #[test]
    fn api_names_are_kafkas_request_names() {
        assert_eq!(api_name(ApiKey::Produce), "Produce");
        assert_eq!(api_name(ApiKey::ListOffsets), "ListOffsets");
        assert_eq!(api_names().len(), SUPPORTED_APIS.len());
    }

    #[test]
    fn waiting_guards_count_while_alive() {
        let metrics = Arc::new(BrokerMetrics::default());
        let first = metrics.waiting(Waiting::Fetch);
        let second = metrics.waiting(Waiting::Fetch);
        assert_eq!(metrics.fetch_waiting.load(Ordering::Relaxed), 2);
        drop((first, second));
        assert_eq!(metrics.fetch_waiting.load(Ordering::Relaxed), 0);
    }
}
