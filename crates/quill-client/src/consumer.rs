//! The consumer over explicitly assigned partitions. One Fetch per leader broker is in flight at
//! a time, and the next one is sent as soon as a response is decoded, before the caller has
//! looked at the records (pipelining: the broker's long-poll overlaps the caller's work).
//! Positions advance when a response is decoded; a response to a fetch from an offset that is no
//! longer the position (the caller seeked meanwhile) is discarded.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
use kafka_protocol::records::TimestampType;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::admin::{list_offsets, topic_name, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use crate::client::Client;
use crate::error::{ClientError, Result};
use crate::records::{decode_fetched, AbortedTransaction};
use crate::TopicPartition;

/// Fetch v12 is the newest version that names topics (v13 uses topic ids).
const FETCH_MAX_VERSION: i16 = 12;
/// No fetch session (KIP-227): every fetch is a full fetch.
const NO_SESSION_EPOCH: i32 = -1;
/// New fetches stop while this many records wait to be polled.
const MAX_BUFFERED_RECORDS: usize = 100_000;

/// Where to start reading a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    Earliest,
    Latest,
    /// An absolute offset.
    Offset(i64),
    /// This many records before the end (clamped to the start).
    FromEnd(i64),
    /// The first record with a timestamp at or after this one (milliseconds since the epoch);
    /// the end if there is none.
    Timestamp(i64),
}

/// What to do when the position falls outside the log (`auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    Earliest,
    Latest,
    Fail,
}

#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// `fetch.max.wait.ms`.
    pub max_wait: Duration,
    /// `fetch.min.bytes`.
    pub min_bytes: i32,
    /// `fetch.max.bytes`.
    pub max_bytes: i32,
    /// `max.partition.fetch.bytes`.
    pub partition_max_bytes: i32,
    /// 0 = read_uncommitted, 1 = read_committed.
    pub isolation_level: i8,
    pub offset_reset: OffsetReset,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            max_wait: Duration::from_millis(500),
            min_bytes: 1,
            max_bytes: 50 * 1024 * 1024,
            partition_max_bytes: 1024 * 1024,
            isolation_level: 0,
            offset_reset: OffsetReset::Latest,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: i64,
    pub timestamp_type: TimestampType,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

struct FetchOutcome {
    broker: i32,
    requested: Vec<(TopicPartition, i64)>,
    response: Result<FetchResponse>,
}

pub struct Consumer {
    client: Client,
    config: ConsumerConfig,
    positions: BTreeMap<TopicPartition, i64>,
    high_watermarks: BTreeMap<TopicPartition, i64>,
    in_flight: JoinSet<FetchOutcome>,
    brokers_in_flight: HashSet<i32>,
    buffered: VecDeque<ConsumerRecord>,
    metadata_stale: bool,
}

impl Consumer {
    pub fn new(client: Client, config: ConsumerConfig) -> Consumer {
        Consumer {
            client,
            config,
            positions: BTreeMap::new(),
            high_watermarks: BTreeMap::new(),
            in_flight: JoinSet::new(),
            brokers_in_flight: HashSet::new(),
            buffered: VecDeque::new(),
            metadata_stale: false,
        }
    }

    /// Every partition of `topic`, per fresh metadata.
    pub async fn partitions_of(&self, topic: &str) -> Result<Vec<TopicPartition>> {
        let metadata = self.client.topic_metadata(topic, false).await?;
        Ok(metadata
            .partitions
            .iter()
            .map(|partition| TopicPartition::new(topic, partition.partition))
            .collect())
    }

    /// Replaces the assignment; each partition starts at its `OffsetSpec`.
    pub async fn assign(&mut self, partitions: Vec<(TopicPartition, OffsetSpec)>) -> Result<()> {
        self.positions.clear();
        self.buffered.clear();
        for (partition, spec) in partitions {
            let offset = self.resolve(&partition, spec).await?;
            self.positions.insert(partition, offset);
        }
        Ok(())
    }

    /// Adds partitions to the assignment, each starting at its `OffsetSpec`; the partitions
    /// already assigned keep their positions and buffered records (cooperative rebalancing).
    pub async fn add_partitions(
        &mut self,
        partitions: Vec<(TopicPartition, OffsetSpec)>,
    ) -> Result<()> {
        for (partition, spec) in partitions {
            let offset = self.resolve(&partition, spec).await?;
            self.positions.insert(partition, offset);
        }
        Ok(())
    }

    /// Removes partitions from the assignment (and their buffered records); the others are
    /// left untouched.
    pub fn remove_partitions(&mut self, partitions: &[TopicPartition]) {
        let removed: HashSet<&TopicPartition> = partitions.iter().collect();
        self.positions
            .retain(|partition, _| !removed.contains(partition));
        self.high_watermarks
            .retain(|partition, _| !removed.contains(partition));
        self.buffered.retain(|record| {
            !removed.contains(&TopicPartition::new(
                record.topic.as_str(),
                record.partition,
            ))
        });
    }

    /// Moves `partition`'s position; records buffered for it are dropped.
    pub async fn seek(&mut self, partition: &TopicPartition, spec: OffsetSpec) -> Result<()> {
        let offset = self.resolve(partition, spec).await?;
        self.buffered.retain(|record| {
            record.topic != partition.topic || record.partition != partition.partition
        });
        self.positions.insert(partition.clone(), offset);
        Ok(())
    }

    /// The next offset to be returned for each assigned partition.
    pub fn positions(&self) -> &BTreeMap<TopicPartition, i64> {
        &self.positions
    }

    /// High watermarks seen in the latest fetch responses.
    pub fn high_watermarks(&self) -> &BTreeMap<TopicPartition, i64> {
        &self.high_watermarks
    }

    /// Current end offsets of `partitions`: the high watermark, or under read_committed the
    /// last stable offset.
    pub async fn end_offsets(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        let offsets = list_offsets(
            &self.client,
            partitions,
            LATEST_TIMESTAMP,
            self.config.isolation_level,
        )
        .await?;
        Ok(offsets
            .into_iter()
            .map(|(partition, answer)| (partition, answer.offset))
            .collect())
    }

    async fn resolve(&self, partition: &TopicPartition, spec: OffsetSpec) -> Result<i64> {
        let list = |timestamp_ms: i64| async move {
            let offsets = list_offsets(
                &self.client,
                std::slice::from_ref(partition),
                timestamp_ms,
                self.config.isolation_level,
            )
            .await?;
            offsets
                .get(partition)
                .map(|answer| answer.offset)
                .ok_or_else(|| ClientError::UnknownPartition {
                    topic: partition.topic.clone(),
                    partition: partition.partition,
                })
        };
        match spec {
            OffsetSpec::Offset(offset) => Ok(offset),
            OffsetSpec::Earliest => list(EARLIEST_TIMESTAMP).await,
            OffsetSpec::Latest => list(LATEST_TIMESTAMP).await,
            OffsetSpec::FromEnd(count) => {
                let start = list(EARLIEST_TIMESTAMP).await?;
                let end = list(LATEST_TIMESTAMP).await?;
                Ok(end.saturating_sub(count).max(start))
            }
            OffsetSpec::Timestamp(timestamp_ms) => match list(timestamp_ms).await? {
                offset if offset >= 0 => Ok(offset),
                _ => list(LATEST_TIMESTAMP).await,
            },
        }
    }

    /// Records available within `timeout`: buffered ones at once, otherwise whatever the
    /// first fetch response brings (possibly none).
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        let deadline = Instant::now() + timeout;
        loop {
            if !self.buffered.is_empty() {
                self.send_fetches().await?;
                return Ok(self.buffered.drain(..).collect());
            }
            self.send_fetches().await?;
            if self.in_flight.is_empty() {
                tokio::time::sleep_until(deadline).await;
                return Ok(Vec::new());
            }
            let outcome = match tokio::time::timeout_at(deadline, self.in_flight.join_next()).await
            {
                Err(_) | Ok(None) => return Ok(Vec::new()),
                Ok(Some(Err(join_error))) => {
                    tracing::debug!(%join_error, "fetch task ended abnormally");
                    self.brokers_in_flight.clear();
                    continue;
                }
                Ok(Some(Ok(outcome))) => outcome,
            };
            self.brokers_in_flight.remove(&outcome.broker);
            self.handle_outcome(outcome).await?;
            if Instant::now() >= deadline && self.buffered.is_empty() {
                return Ok(Vec::new());
            }
        }
    }

    /// Sends a fetch to every leader of an assigned partition that has none in flight.
    async fn send_fetches(&mut self) -> Result<()> {
        if self.buffered.len() >= MAX_BUFFERED_RECORDS {
            return Ok(());
        }
        if self.metadata_stale {
            self.metadata_stale = false;
            let topics: Vec<String> = self.positions.keys().map(|p| p.topic.clone()).collect();
            if let Err(error) = self.client.refresh_metadata(Some(&topics), false).await {
                tracing::debug!(%error, "consumer metadata refresh failed");
            }
        }
        let mut by_leader: BTreeMap<i32, Vec<(TopicPartition, i64)>> = BTreeMap::new();
        for (partition, &offset) in &self.positions {
            if self.client.cached_topic(&partition.topic).is_none() {
                self.metadata_stale = true;
                continue;
            }
            match self.client.leader_of(&partition.topic, partition.partition) {
                Ok(leader) if !self.brokers_in_flight.contains(&leader) => {
                    by_leader
                        .entry(leader)
                        .or_default()
                        .push((partition.clone(), offset));
                }
                Ok(_) => {}
                Err(ClientError::UnknownPartition { topic, partition }) => {
                    return Err(ClientError::UnknownPartition { topic, partition })
                }
                Err(_) => self.metadata_stale = true,
            }
        }
        for (broker, requested) in by_leader {
            let request = self.fetch_request(&requested);
            let client = self.client.clone();
            let max_wait = self.config.max_wait;
            self.brokers_in_flight.insert(broker);
            self.in_flight.spawn(async move {
                let response = match client.connection_to_broker(broker).await {
                    Ok(connection) => connection
                        .call(&request, FETCH_MAX_VERSION, max_wait)
                        .await
                        .map(|(_, response)| response),
                    Err(error) => Err(error),
                };
                FetchOutcome {
                    broker,
                    requested,
                    response,
                }
            });
        }
        Ok(())
    }

    fn fetch_request(&self, requested: &[(TopicPartition, i64)]) -> FetchRequest {
        let mut by_topic: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
        for (partition, offset) in requested {
            by_topic.entry(partition.topic.as_str()).or_default().push(
                FetchPartition::default()
                    .with_partition(partition.partition)
                    .with_current_leader_epoch(-1)
                    .with_fetch_offset(*offset)
                    .with_last_fetched_epoch(-1)
                    .with_log_start_offset(-1)
                    .with_partition_max_bytes(self.config.partition_max_bytes),
            );
        }
        let max_wait_ms = i32::try_from(self.config.max_wait.as_millis()).unwrap_or(i32::MAX);
        FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(max_wait_ms)
            .with_min_bytes(self.config.min_bytes)
            .with_max_bytes(self.config.max_bytes)
            .with_isolation_level(self.config.isolation_level)
            .with_session_id(0)
            .with_session_epoch(NO_SESSION_EPOCH)
            .with_topics(
                by_topic
                    .into_iter()
                    .map(|(topic, partitions)| {
                        FetchTopic::default()
                            .with_topic(topic_name(topic))
                            .with_partitions(partitions)
                    })
                    .collect(),
            )
    }

    async fn handle_outcome(&mut self, outcome: FetchOutcome) -> Result<()> {
        let response = match outcome.response {
            Ok(response) => response,
            Err(error) if error.is_retriable() => {
                tracing::debug!(%error, broker = outcome.broker, "fetch failed; will retry");
                self.metadata_stale = true;
                tokio::time::sleep(Duration::from_millis(100)).await;
                return Ok(());
            }
            Err(error) => return Err(error),
        };
        crate::error::check_code(response.error_code, || "fetch".to_string(), None)?;
        let requested: BTreeMap<TopicPartition, i64> = outcome.requested.into_iter().collect();
        for topic in response.responses {
            let topic_name = topic.topic.0.to_string();
            for data in topic.partitions {
                let partition = TopicPartition::new(topic_name.as_str(), data.partition_index);
                let Some(&fetched_from) = requested.get(&partition) else {
                    continue;
                };
                if self.positions.get(&partition) != Some(&fetched_from) {
                    continue; // Seeked or unassigned while the fetch was in flight.
                }
                match ResponseError::try_from_code(data.error_code) {
                    None => {}
                    Some(ResponseError::OffsetOutOfRange) => {
                        self.reset_out_of_range(&partition, fetched_from).await?;
                        continue;
                    }
                    Some(error) if error.is_retriable() => {
                        self.metadata_stale = true;
                        continue;
                    }
                    Some(error) => {
                        return Err(ClientError::broker(
                            format!("fetch from {partition}"),
                            error,
                            None,
                        ))
                    }
                }
                self.high_watermarks
                    .insert(partition.clone(), data.high_watermark);
                let Some(records) = data.records else {
                    continue;
                };
                let aborted: Vec<AbortedTransaction> = data
                    .aborted_transactions
                    .iter()
                    .flatten()
                    .map(|abort| AbortedTransaction {
                        producer_id: abort.producer_id.0,
                        first_offset: abort.first_offset,
                    })
                    .collect();
                let decoded =
                    decode_fetched(records, fetched_from, &aborted).map_err(|message| {
                        ClientError::CorruptBatch {
                            topic: partition.topic.clone(),
                            partition: partition.partition,
                            message,
                        }
                    })?;
                self.buffered
                    .extend(decoded.records.into_iter().map(|record| ConsumerRecord {
                        topic: partition.topic.clone(),
                        partition: partition.partition,
                        offset: record.offset,
                        timestamp_ms: record.timestamp_ms,
                        timestamp_type: record.timestamp_type,
                        key: record.key,
                        value: record.value,
                        headers: record.headers,
                    }));
                self.positions.insert(partition, decoded.next_offset);
            }
        }
        Ok(())
    }

    async fn reset_out_of_range(&mut self, partition: &TopicPartition, offset: i64) -> Result<()> {
        let spec = match self.config.offset_reset {
            OffsetReset::Earliest => OffsetSpec::Earliest,
            OffsetReset::Latest => OffsetSpec::Latest,
            OffsetReset::Fail => {
                return Err(ClientError::broker(
                    format!("fetch from {partition} at offset {offset}"),
                    ResponseError::OffsetOutOfRange,
                    None,
                ))
            }
        };
        self.seek(partition, spec).await
    }
}
