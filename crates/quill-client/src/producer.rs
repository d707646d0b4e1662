//! The producer: records are appended to a per-partition open batch; a batch closes when it
//! reaches `batch.size` or has waited `linger.ms`, and one sender task turns closed batches into
//! Produce requests, one per leader broker. The sender writes requests in order, keeps up to
//! `max.in.flight.requests.per.connection` per broker awaiting responses, and requeues a batch
//! that failed with a retriable error after `retry.backoff.ms` (refreshing metadata first), up to
//! `retries` times.
//!
//! Without idempotence (not wired yet; see [`ProducerIdentity`]) a retried batch may land after
//! a later batch of the same partition, exactly as with the Java client's
//! `enable.idempotence=false`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::records::Compression;
use tokio::sync::{oneshot, watch, Notify, OwnedSemaphorePermit, Semaphore};

use crate::admin::topic_name;
use crate::client::Client;
use crate::error::{ClientError, Result};
use crate::partitioner::{partition_for_key, StickyPartitioner};
use crate::records::{encode_batch, OutgoingRecord, ProducerIdentity};
use crate::TopicPartition;

/// Produce v12 is the newest version that names topics (v13 uses topic ids).
const PRODUCE_MAX_VERSION: i16 = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// acks=0: the broker sends no response; offsets are unknown (-1).
    None,
    /// acks=1: the leader has appended.
    Leader,
    /// acks=all (-1): every in-sync replica has the record (and, on Quill, it is durable per
    /// the partition's flush policy).
    All,
}

impl Acks {
    pub fn code(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }

    /// Parses Kafka's spellings: `0`, `1`, `-1`, `all`.
    pub fn parse(text: &str) -> Option<Acks> {
        match text {
            "0" => Some(Acks::None),
            "1" => Some(Acks::Leader),
            "-1" | "all" => Some(Acks::All),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ProducerConfig {
    pub acks: Acks,
    /// `linger.ms`: how long an open batch waits for more records.
    pub linger: Duration,
    /// `batch.size`: a batch closes once its records reach this many bytes.
    pub batch_size_bytes: usize,
    pub compression: Compression,
    /// `retries`: how often a batch is resent after a retriable error.
    pub retries: u32,
    /// `retry.backoff.ms`: wait before resending a failed batch.
    pub retry_backoff: Duration,
    /// `max.in.flight.requests.per.connection`.
    pub max_in_flight_per_broker: usize,
    /// `buffer.memory`: `send` waits while this many record bytes are unacknowledged.
    pub buffer_memory_bytes: usize,
    /// `max.request.size`: the largest record accepted.
    pub max_request_size_bytes: usize,
    /// Broker-side wait for acks=all, sent in the Produce request.
    pub ack_timeout: Duration,
    /// Whether metadata lookups may auto-create a topic (the Java client's default: yes).
    pub allow_auto_topic_creation: bool,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::All,
            linger: Duration::from_millis(5),
            batch_size_bytes: 16 * 1024,
            compression: Compression::None,
            retries: 5,
            retry_backoff: Duration::from_millis(100),
            max_in_flight_per_broker: 5,
            buffer_memory_bytes: 32 * 1024 * 1024,
            max_request_size_bytes: 1024 * 1024,
            ack_timeout: Duration::from_secs(30),
            allow_auto_topic_creation: true,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ProducerRecord {
    pub topic: String,
    /// `None`: chosen by the partitioner (murmur2 of the key, or sticky without a key).
    pub partition: Option<i32>,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    /// `None`: now.
    pub timestamp_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMetadata {
    pub partition: i32,
    /// -1 with acks=0.
    pub offset: i64,
    pub timestamp_ms: i64,
}

type DeliveryCallback = Box<dyn FnOnce(Result<RecordMetadata>) + Send>;

/// Resolves when the record is acknowledged (or has failed for good).
pub struct DeliveryFuture {
    receiver: oneshot::Receiver<Result<RecordMetadata>>,
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.receiver)
            .poll(context)
            .map(|received| received.unwrap_or(Err(ClientError::ProducerClosed)))
    }
}

struct Batch {
    partition: TopicPartition,
    records: Vec<OutgoingRecord>,
    callbacks: Vec<DeliveryCallback>,
    size_bytes: usize,
    created: Instant,
    attempts: u32,
    not_before: Option<Instant>,
    /// Buffer-memory bytes held until the batch completes.
    _permit: Option<OwnedSemaphorePermit>,
}

impl Batch {
    fn new(partition: TopicPartition, now: Instant) -> Batch {
        Batch {
            partition,
            records: Vec::new(),
            callbacks: Vec::new(),
            size_bytes: 0,
            created: now,
            attempts: 0,
            not_before: None,
            _permit: None,
        }
    }

    fn push(
        &mut self,
        record: OutgoingRecord,
        callback: DeliveryCallback,
        permit: OwnedSemaphorePermit,
    ) {
        self.size_bytes += record.estimated_size_bytes();
        self.records.push(record);
        self.callbacks.push(callback);
        match &mut self._permit {
            Some(held) => held.merge(permit),
            None => self._permit = Some(permit),
        }
    }

    fn complete(self, base_offset: i64, log_append_time_ms: i64) {
        for (index, (record, callback)) in self.records.iter().zip(self.callbacks).enumerate() {
            let offset = if base_offset < 0 {
                -1
            } else {
                base_offset + index as i64
            };
            let timestamp_ms = if log_append_time_ms >= 0 {
                log_append_time_ms
            } else {
                record.timestamp_ms
            };
            callback(Ok(RecordMetadata {
                partition: self.partition.partition,
                offset,
                timestamp_ms,
            }));
        }
    }

    fn fail(self, error: &ClientError) {
        let reason = error.to_string();
        let kafka_error = error.kafka_error();
        for callback in self.callbacks {
            callback(Err(ClientError::DeliveryFailed {
                partition: self.partition.to_string(),
                reason: reason.clone(),
                kafka_error,
                retriable: false,
            }));
        }
    }
}

#[derive(Default)]
struct Accumulator {
    open: HashMap<TopicPartition, Batch>,
    ready: VecDeque<Batch>,
    sticky: StickyPartitioner,
    partition_counts: HashMap<String, i32>,
}

impl Accumulator {
    fn close(&mut self, partition: &TopicPartition) {
        let Some(batch) = self.open.remove(partition) else {
            return;
        };
        if let Some(&count) = self.partition_counts.get(&partition.topic) {
            self.sticky
                .on_batch_closed(&partition.topic, partition.partition, count);
        }
        self.ready.push_back(batch);
    }

    fn is_empty(&self) -> bool {
        self.open.is_empty() && self.ready.is_empty()
    }
}

struct Shared {
    client: Client,
    config: ProducerConfig,
    identity: ProducerIdentity,
    accumulator: Mutex<Accumulator>,
    wake: Notify,
    buffer: Arc<Semaphore>,
    /// Records sent but not yet completed; `flush` waits for zero.
    outstanding: watch::Sender<usize>,
    flushing: watch::Sender<usize>,
    metadata_stale: AtomicBool,
    closed: AtomicBool,
}

impl Shared {
    fn accumulator(&self) -> std::sync::MutexGuard<'_, Accumulator> {
        self.accumulator
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn record_done(&self, count: usize) {
        self.outstanding
            .send_modify(|outstanding| *outstanding = outstanding.saturating_sub(count));
    }
}

pub struct Producer {
    shared: Arc<Shared>,
    sender: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.wake.notify_one();
    }
}

impl Producer {
    pub fn new(client: Client, config: ProducerConfig) -> Result<Producer> {
        if config.batch_size_bytes == 0 || config.max_in_flight_per_broker == 0 {
            return Err(ClientError::InvalidConfig(
                "batch.size and max.in.flight must be positive".into(),
            ));
        }
        let buffer_permits = config.buffer_memory_bytes.min(Semaphore::MAX_PERMITS);
        let shared = Arc::new(Shared {
            client,
            identity: ProducerIdentity::NONE,
            accumulator: Mutex::new(Accumulator::default()),
            wake: Notify::new(),
            buffer: Arc::new(Semaphore::new(buffer_permits)),
            outstanding: watch::channel(0).0,
            flushing: watch::channel(0).0,
            metadata_stale: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            config,
        });
        let sender = tokio::spawn(run_sender(shared.clone()));
        Ok(Producer {
            shared,
            sender: Some(sender),
        })
    }

    pub fn config(&self) -> &ProducerConfig {
        &self.shared.config
    }

    /// Queues `record`; the returned future resolves when it is acknowledged.
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        let (sender, receiver) = oneshot::channel();
        self.send_with_callback(record, move |result| {
            let _ = sender.send(result);
        })
        .await?;
        Ok(DeliveryFuture { receiver })
    }

    /// Queues `record` and calls `callback` (on the producer's task; keep it short) when it
    /// is acknowledged or has failed for good. Waits while `buffer.memory` is full.
    pub async fn send_with_callback(
        &self,
        record: ProducerRecord,
        callback: impl FnOnce(Result<RecordMetadata>) + Send + 'static,
    ) -> Result<()> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(ClientError::ProducerClosed);
        }
        let outgoing = OutgoingRecord {
            key: record.key,
            value: record.value,
            headers: record.headers,
            timestamp_ms: record.timestamp_ms.unwrap_or_else(now_ms),
        };
        let size_bytes = outgoing.estimated_size_bytes();
        let limit_bytes = self
            .shared
            .config
            .max_request_size_bytes
            .min(self.shared.config.buffer_memory_bytes);
        if size_bytes > limit_bytes {
            return Err(ClientError::RecordTooLarge {
                size_bytes,
                limit_bytes,
            });
        }
        let permit = self
            .shared
            .buffer
            .clone()
            .acquire_many_owned(size_bytes as u32)
            .await
            .map_err(|_| ClientError::ProducerClosed)?;
        let partition_count = self.partition_count(&record.topic).await?;
        let partition = self.choose_partition(
            &record.topic,
            record.partition,
            outgoing.key.as_deref(),
            partition_count,
        )?;
        self.shared
            .outstanding
            .send_modify(|outstanding| *outstanding += 1);
        let wake_sender = self.append(
            TopicPartition::new(record.topic, partition),
            outgoing,
            Box::new(callback),
            permit,
        );
        if wake_sender {
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    /// Appends to the partition's open batch; true when the sender should look (a batch
    /// closed, or a new one started its linger clock).
    fn append(
        &self,
        partition: TopicPartition,
        record: OutgoingRecord,
        callback: DeliveryCallback,
        permit: OwnedSemaphorePermit,
    ) -> bool {
        let batch_size_bytes = self.shared.config.batch_size_bytes;
        let record_bytes = record.estimated_size_bytes();
        let mut accumulator = self.shared.accumulator();
        let mut wake = false;
        let would_overflow = accumulator
            .open
            .get(&partition)
            .is_some_and(|batch| batch.size_bytes + record_bytes > batch_size_bytes);
        if would_overflow {
            accumulator.close(&partition);
            wake = true;
        }
        let now = Instant::now();
        let batch = accumulator
            .open
            .entry(partition.clone())
            .or_insert_with(|| {
                wake = true;
                Batch::new(partition.clone(), now)
            });
        batch.push(record, callback, permit);
        if batch.size_bytes >= batch_size_bytes {
            accumulator.close(&partition);
            wake = true;
        }
        wake
    }

    async fn partition_count(&self, topic: &str) -> Result<i32> {
        if let Some(&count) = self.shared.accumulator().partition_counts.get(topic) {
            return Ok(count);
        }
        let client = &self.shared.client;
        let mut attempts = 0;
        let count = loop {
            let metadata = client
                .topic_metadata(topic, self.shared.config.allow_auto_topic_creation)
                .await;
            let retriable = match &metadata {
                Ok(metadata) if !metadata.partitions.is_empty() => {
                    break metadata.partitions.len() as i32
                }
                // Just auto-created: partitions appear once leaders are elected.
                Ok(_) => true,
                Err(error) => error.is_retriable(),
            };
            attempts += 1;
            if !retriable || attempts > self.shared.config.retries {
                return Err(metadata
                    .err()
                    .unwrap_or(ClientError::UnknownTopic(topic.to_string())));
            }
            tokio::time::sleep(self.shared.config.retry_backoff).await;
        };
        self.shared
            .accumulator()
            .partition_counts
            .insert(topic.to_string(), count);
        Ok(count)
    }

    fn choose_partition(
        &self,
        topic: &str,
        explicit: Option<i32>,
        key: Option<&[u8]>,
        partition_count: i32,
    ) -> Result<i32> {
        if let Some(partition) = explicit {
            if partition < 0 || partition >= partition_count {
                return Err(ClientError::UnknownPartition {
                    topic: topic.to_string(),
                    partition,
                });
            }
            return Ok(partition);
        }
        if let Some(key) = key {
            return Ok(partition_for_key(key, partition_count));
        }
        Ok(self
            .shared
            .accumulator()
            .sticky
            .partition(topic, partition_count))
    }

    /// Sends every queued record now and waits until all are acknowledged or failed.
    pub async fn flush(&self) {
        self.shared.flushing.send_modify(|flushing| *flushing += 1);
        self.shared.wake.notify_one();
        let mut outstanding = self.shared.outstanding.subscribe();
        let _ = outstanding.wait_for(|count| *count == 0).await;
        self.shared
            .flushing
            .send_modify(|flushing| *flushing = flushing.saturating_sub(1));
    }

    /// Flushes, then stops the sender task.
    pub async fn close(mut self) {
        self.flush().await;
        self.shared.closed.store(true, Ordering::Release);
        self.shared.wake.notify_one();
        if let Some(sender) = self.sender.take() {
            let _ = sender.await;
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

async fn run_sender(shared: Arc<Shared>) {
    let mut in_flight: tokio::task::JoinSet<()> = tokio::task::JoinSet::new();
    let mut broker_slots: HashMap<i32, Arc<Semaphore>> = HashMap::new();
    loop {
        if shared.metadata_stale.swap(false, Ordering::AcqRel) {
            refresh_metadata(&shared).await;
        }
        let force = *shared.flushing.borrow() > 0 || shared.closed.load(Ordering::Acquire);
        let (batches, next_wake) = drain(&shared, Instant::now(), force);
        tracing::trace!(
            batches = batches.len(),
            force,
            in_flight = in_flight.len(),
            "sender woke"
        );
        // Reap finished requests before deciding to stop: a finished but unjoined task still
        // counts in `in_flight`, and reaping it after this check would leave the loop waiting
        // for a wake-up that never comes.
        while in_flight.try_join_next().is_some() {}
        let closing = shared.closed.load(Ordering::Acquire);
        if batches.is_empty() && closing && shared.accumulator().is_empty() && in_flight.is_empty()
        {
            break;
        }
        for (leader, batches) in group_by_leader(&shared, batches) {
            let slots = broker_slots
                .entry(leader)
                .or_insert_with(|| Arc::new(Semaphore::new(shared.config.max_in_flight_per_broker)))
                .clone();
            send_to_broker(&shared, leader, batches, slots, &mut in_flight).await;
        }
        let sleep = async {
            match next_wake {
                Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = sleep => {}
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
        }
    }
}

async fn refresh_metadata(shared: &Shared) {
    let topics: Vec<String> = shared
        .accumulator()
        .partition_counts
        .keys()
        .cloned()
        .collect();
    if let Err(error) = shared.client.refresh_metadata(Some(&topics), false).await {
        tracing::debug!(%error, "producer metadata refresh failed");
    }
}

/// Closes open batches whose linger expired (all of them when `force`), and takes the batches
/// whose backoff has passed. Returns them with the next instant something becomes due.
fn drain(shared: &Shared, now: Instant, force: bool) -> (Vec<Batch>, Option<Instant>) {
    let linger = shared.config.linger;
    let mut accumulator = shared.accumulator();
    let expired: Vec<TopicPartition> = accumulator
        .open
        .iter()
        .filter(|(_, batch)| force || now >= batch.created + linger)
        .map(|(partition, _)| partition.clone())
        .collect();
    for partition in &expired {
        accumulator.close(partition);
    }
    let mut due = Vec::new();
    let mut waiting = VecDeque::new();
    while let Some(batch) = accumulator.ready.pop_front() {
        match batch.not_before {
            Some(not_before) if not_before > now => waiting.push_back(batch),
            _ => due.push(batch),
        }
    }
    accumulator.ready = waiting;
    let next_linger = accumulator
        .open
        .values()
        .map(|batch| batch.created + linger)
        .min();
    let next_retry = accumulator
        .ready
        .iter()
        .filter_map(|batch| batch.not_before)
        .min();
    let next_wake = match (next_linger, next_retry) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    (due, next_wake)
}

/// Groups batches by their partition's leader; batches without a known leader go back for a
/// retry after a metadata refresh.
fn group_by_leader(shared: &Shared, batches: Vec<Batch>) -> BTreeMap<i32, Vec<Batch>> {
    let mut by_leader: BTreeMap<i32, Vec<Batch>> = BTreeMap::new();
    for batch in batches {
        match shared
            .client
            .leader_of(&batch.partition.topic, batch.partition.partition)
        {
            Ok(leader) => by_leader.entry(leader).or_default().push(batch),
            Err(error) => retry_or_fail(shared, batch, error),
        }
    }
    by_leader
}

/// Writes one Produce request per `max.request.size` worth of batches to `leader`, waiting for
/// a free in-flight slot first, and spawns the wait for each response.
async fn send_to_broker(
    shared: &Arc<Shared>,
    leader: i32,
    batches: Vec<Batch>,
    slots: Arc<Semaphore>,
    in_flight: &mut tokio::task::JoinSet<()>,
) {
    let connection = match shared.client.connection_to_broker(leader).await {
        Ok(connection) => connection,
        Err(error) => {
            fail_all_retriable(shared, batches, &error);
            return;
        }
    };
    for request_batches in split_by_request_size(batches, shared.config.max_request_size_bytes) {
        let (request, request_batches) = match build_request(shared, request_batches) {
            Ok(built) => built,
            Err((error, batches)) => {
                for batch in batches {
                    batch_failed(shared, batch, &error);
                }
                continue;
            }
        };
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        if shared.config.acks == Acks::None {
            let sent = connection
                .send_without_response(&request, PRODUCE_MAX_VERSION)
                .await;
            match sent {
                Ok(()) => request_batches
                    .into_iter()
                    .for_each(|batch| complete(shared, batch, -1, -1)),
                Err(error) => fail_all_retriable(shared, request_batches, &error),
            }
            drop(slot);
            continue;
        }
        let version = match connection.version_for::<ProduceRequest>(PRODUCE_MAX_VERSION) {
            Ok(version) => version,
            Err(error) => {
                fail_all_retriable(shared, request_batches, &error);
                continue;
            }
        };
        let pending = match connection.start_call(&request, version).await {
            Ok(pending) => pending,
            Err(error) => {
                fail_all_retriable(shared, request_batches, &error);
                continue;
            }
        };
        let shared = shared.clone();
        let ack_wait = shared.config.ack_timeout;
        in_flight.spawn(async move {
            let response = pending.wait(ack_wait).await;
            handle_response(&shared, request_batches, response);
            drop(slot);
        });
    }
}

/// Packs batches into requests of at most `max_request_bytes` (a single larger batch gets a
/// request of its own) with at most one batch per partition per request, as Kafka requires.
/// A partition's later batch always goes to a later request, so the write order on the
/// connection keeps each partition's batch order.
fn split_by_request_size(batches: Vec<Batch>, max_request_bytes: usize) -> Vec<Vec<Batch>> {
    let mut requests: Vec<(usize, Vec<Batch>)> = Vec::new();
    let mut last_request_of: HashMap<TopicPartition, usize> = HashMap::new();
    for batch in batches {
        let earliest = last_request_of
            .get(&batch.partition)
            .map_or(0, |index| index + 1);
        let fits = (earliest..requests.len()).find(|&index| {
            let (bytes, _) = &requests[index];
            *bytes + batch.size_bytes <= max_request_bytes
        });
        let index = match fits {
            Some(index) => index,
            None => {
                requests.push((0, Vec::new()));
                requests.len() - 1
            }
        };
        last_request_of.insert(batch.partition.clone(), index);
        if let Some((bytes, request)) = requests.get_mut(index) {
            *bytes += batch.size_bytes;
            request.push(batch);
        }
    }
    requests.into_iter().map(|(_, request)| request).collect()
}

type BuildError = (ClientError, Vec<Batch>);

fn build_request(
    shared: &Shared,
    batches: Vec<Batch>,
) -> Result<(ProduceRequest, Vec<Batch>), BuildError> {
    let mut by_topic: BTreeMap<String, Vec<PartitionProduceData>> = BTreeMap::new();
    for batch in &batches {
        let encoded = encode_batch(
            &batch.records,
            shared.config.compression,
            shared.identity,
            -1,
        );
        let records = match encoded {
            Ok(records) => records,
            Err(message) => {
                let error = ClientError::Encode {
                    api: "Produce",
                    message,
                };
                return Err((error, batches));
            }
        };
        by_topic
            .entry(batch.partition.topic.clone())
            .or_default()
            .push(
                PartitionProduceData::default()
                    .with_index(batch.partition.partition)
                    .with_records(Some(records)),
            );
    }
    let ack_timeout_ms = i32::try_from(shared.config.ack_timeout.as_millis()).unwrap_or(i32::MAX);
    let request = ProduceRequest::default()
        .with_acks(shared.config.acks.code())
        .with_timeout_ms(ack_timeout_ms)
        .with_topic_data(
            by_topic
                .into_iter()
                .map(|(topic, partitions)| {
                    TopicProduceData::default()
                        .with_name(topic_name(&topic))
                        .with_partition_data(partitions)
                })
                .collect(),
        );
    Ok((request, batches))
}

struct PartitionResult {
    error_code: i16,
    base_offset: i64,
    log_append_time_ms: i64,
    error_message: Option<String>,
}

fn handle_response(shared: &Shared, batches: Vec<Batch>, response: Result<ProduceResponse>) {
    let response = match response {
        Ok(response) => response,
        Err(error) => {
            fail_all_retriable(shared, batches, &error);
            return;
        }
    };
    let mut results: HashMap<(String, i32), PartitionResult> = HashMap::new();
    for topic in response.responses {
        for partition in topic.partition_responses {
            results.insert(
                (topic.name.0.to_string(), partition.index),
                PartitionResult {
                    error_code: partition.error_code,
                    base_offset: partition.base_offset,
                    log_append_time_ms: partition.log_append_time_ms,
                    error_message: partition.error_message.map(|message| message.to_string()),
                },
            );
        }
    }
    for batch in batches {
        let key = (batch.partition.topic.clone(), batch.partition.partition);
        let Some(result) = results.remove(&key) else {
            let error = ClientError::Decode {
                api: "Produce",
                address: "the leader".into(),
                message: format!("no result for partition {}", batch.partition),
            };
            batch_failed(shared, batch, &error);
            continue;
        };
        match ResponseError::try_from_code(result.error_code) {
            None => complete(shared, batch, result.base_offset, result.log_append_time_ms),
            Some(kafka_error) => {
                let error = ClientError::broker(
                    format!("produce to {}", batch.partition),
                    kafka_error,
                    result.error_message,
                );
                retry_or_fail(shared, batch, error);
            }
        }
    }
    shared.wake.notify_one();
}

fn complete(shared: &Shared, batch: Batch, base_offset: i64, log_append_time_ms: i64) {
    let count = batch.records.len();
    batch.complete(base_offset, log_append_time_ms);
    shared.record_done(count);
}

fn batch_failed(shared: &Shared, batch: Batch, error: &ClientError) {
    let count = batch.records.len();
    batch.fail(error);
    shared.record_done(count);
}

/// Fails (or retries, when the error allows) every batch of a request that got no usable
/// response.
fn fail_all_retriable(shared: &Shared, batches: Vec<Batch>, error: &ClientError) {
    for batch in batches {
        let copy = ClientError::DeliveryFailed {
            partition: batch.partition.to_string(),
            reason: error.to_string(),
            kafka_error: error.kafka_error(),
            retriable: error.is_retriable(),
        };
        retry_or_fail(shared, batch, copy);
    }
}

/// Requeues `batch` after the backoff if `error` is retriable and attempts remain; fails it
/// otherwise.
fn retry_or_fail(shared: &Shared, mut batch: Batch, error: ClientError) {
    let config = &shared.config;
    match decide_retry(error, batch.attempts, config.retries, config.retry_backoff) {
        RetryDecision::Fail(error) => batch_failed(shared, batch, &error),
        RetryDecision::Retry {
            attempt,
            backoff,
            error,
        } => {
            tracing::debug!(partition = %batch.partition, attempt, %error, "retrying batch");
            batch.attempts = attempt;
            batch.not_before = Some(Instant::now() + backoff);
            shared.metadata_stale.store(true, Ordering::Release);
            requeue(&mut shared.accumulator().ready, batch);
            shared.wake.notify_one();
        }
    }
}

/// Puts a retried batch back in creation order, so two failed batches of one partition are
/// resent in the order they were first sent.
fn requeue(ready: &mut VecDeque<Batch>, batch: Batch) {
    let position = ready
        .iter()
        .position(|queued| queued.created > batch.created)
        .unwrap_or(ready.len());
    ready.insert(position, batch);
}

#[derive(Debug)]
enum RetryDecision {
    Retry {
        attempt: u32,
        backoff: Duration,
        error: ClientError,
    },
    Fail(ClientError),
}

/// What to do with a batch that failed with `error` after `attempts_so_far` retries: retry
/// retriable errors while `retries` allows, with exponential backoff; otherwise fail, saying
/// how many attempts were made when the limit was the reason.
fn decide_retry(
    error: ClientError,
    attempts_so_far: u32,
    retries: u32,
    base_backoff: Duration,
) -> RetryDecision {
    if !error.is_retriable() {
        return RetryDecision::Fail(error);
    }
    if attempts_so_far >= retries {
        return RetryDecision::Fail(ClientError::RetriesExhausted {
            attempts: attempts_so_far + 1,
            last: Box::new(error),
        });
    }
    let attempt = attempts_so_far + 1;
    RetryDecision::Retry {
        attempt,
        backoff: retry_backoff(base_backoff, attempt),
        error,
    }
}

/// Exponential backoff from `base`, doubling per attempt, capped at 32× (like the Java
/// client's `retry.backoff.max.ms` default of 1 s over 100 ms… ×10; close enough, and bounded).
pub fn retry_backoff(base: Duration, attempt: u32) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(5);
    base.saturating_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_parse_kafka_spellings() {
        assert_eq!(Acks::parse("all"), Some(Acks::All));
        assert_eq!(Acks::parse("-1").map(Acks::code), Some(-1));
        assert_eq!(Acks::parse("1").map(Acks::code), Some(1));
        assert_eq!(Acks::parse("0").map(Acks::code), Some(0));
        assert_eq!(Acks::parse("2"), None);
    }

    #[test]
    fn retriable_errors_are_retried_until_the_limit() {
        let base = Duration::from_millis(100);
        let not_leader =
            || ClientError::broker("produce", ResponseError::NotLeaderOrFollower, None);
        match decide_retry(not_leader(), 0, 3, base) {
            RetryDecision::Retry {
                attempt, backoff, ..
            } => {
                assert_eq!((attempt, backoff), (1, base));
            }
            other => panic!("{other:?}"),
        }
        match decide_retry(not_leader(), 2, 3, base) {
            RetryDecision::Retry {
                attempt, backoff, ..
            } => {
                assert_eq!((attempt, backoff), (3, base * 4));
            }
            other => panic!("{other:?}"),
        }
        match decide_retry(not_leader(), 3, 3, base) {
            RetryDecision::Fail(error) => {
                assert!(matches!(
                    error,
                    ClientError::RetriesExhausted { attempts: 4, .. }
                ));
                assert_eq!(
                    error.kafka_error(),
                    Some(ResponseError::NotLeaderOrFollower)
                );
            }
            other => panic!("{other:?}"),
        }
        let closed = ClientError::ConnectionClosed {
            address: "a".into(),
        };
        assert!(matches!(
            decide_retry(closed, 0, 1, base),
            RetryDecision::Retry { .. }
        ));
    }

    #[test]
    fn fatal_errors_fail_at_once() {
        let too_large = ClientError::broker("produce", ResponseError::MessageTooLarge, None);
        match decide_retry(too_large, 0, 10, Duration::from_millis(1)) {
            RetryDecision::Fail(error) => {
                assert_eq!(error.kafka_error(), Some(ResponseError::MessageTooLarge))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn requeued_batches_keep_creation_order() {
        let start = Instant::now();
        let at = |millis: u64, partition: i32| {
            let mut batch = Batch::new(
                TopicPartition::new("t", partition),
                start + Duration::from_millis(millis),
            );
            batch.size_bytes = millis as usize;
            batch
        };
        let mut ready = VecDeque::new();
        ready.push_back(at(30, 1));
        requeue(&mut ready, at(20, 0));
        requeue(&mut ready, at(10, 0));
        requeue(&mut ready, at(40, 0));
        let order: Vec<usize> = ready.iter().map(|batch| batch.size_bytes).collect();
        assert_eq!(order, [10, 20, 30, 40]);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let base = Duration::from_millis(100);
        assert_eq!(retry_backoff(base, 1), Duration::from_millis(100));
        assert_eq!(retry_backoff(base, 2), Duration::from_millis(200));
        assert_eq!(retry_backoff(base, 3), Duration::from_millis(400));
        assert_eq!(retry_backoff(base, 40), Duration::from_millis(3200));
    }

    fn batch_for(bytes: usize, partition: i32) -> Batch {
        let mut batch = Batch::new(TopicPartition::new("t", partition), Instant::now());
        batch.size_bytes = bytes;
        batch
    }

    #[test]
    fn a_partition_appears_once_per_request_and_keeps_its_order() {
        let batches = vec![
            batch_for(10, 0),
            batch_for(11, 0),
            batch_for(12, 1),
            batch_for(13, 0),
        ];
        let requests = split_by_request_size(batches, 1000);
        let layout: Vec<Vec<(i32, usize)>> = requests
            .iter()
            .map(|request| {
                request
                    .iter()
                    .map(|b| (b.partition.partition, b.size_bytes))
                    .collect()
            })
            .collect();
        assert_eq!(
            layout,
            vec![vec![(0, 10), (1, 12)], vec![(0, 11)], vec![(0, 13)]]
        );
    }

    #[test]
    fn requests_are_split_at_the_size_limit() {
        let requests = split_by_request_size(
            vec![
                batch_for(600, 0),
                batch_for(300, 1),
                batch_for(200, 2),
                batch_for(900, 3),
            ],
            1000,
        );
        let sizes: Vec<Vec<usize>> = requests
            .iter()
            .map(|request| request.iter().map(|batch| batch.size_bytes).collect())
            .collect();
        assert_eq!(sizes, vec![vec![600, 300], vec![200], vec![900]]);
    }
}
