//! The producer: records are appended to a per-partition open batch; a batch closes when it
//! reaches `batch.size` or has waited `linger.ms`, and one sender task turns closed batches into
//! Produce requests, one per leader broker. The sender writes requests in order, keeps up to
//! `max.in.flight.requests.per.connection` per broker awaiting responses, and requeues a batch
//! that failed with a retriable error after an exponential backoff (`retry.backoff.ms` doubling
//! up to `retry.backoff.max.ms`, refreshing metadata first) until `retries` or
//! `delivery.timeout.ms` runs out, the Java client's defaults: retry for two minutes.
//!
//! A batch waiting out a retry backoff holds back its partition's later batches. Without
//! idempotence a batch that fails while later batches of its partition are already in flight
//! may still land after them, exactly as with the Java client's `enable.idempotence=false`.
//! With `idempotent`, InitProducerId gives a producer id and every batch carries per-partition
//! sequence numbers fixed at its first send: the broker drops duplicates of a resend
//! (DUPLICATE_SEQUENCE_NUMBER counts as success) and rejects a batch that overtook a failed one
//! (OUT_OF_ORDER_SEQUENCE_NUMBER, resent after it). Not handled yet: the epoch bump the Java
//! client does after a batch fails for good, so later batches of that partition fail too.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    InitProducerIdRequest, ProduceRequest, ProduceResponse, ProducerId,
};
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
    /// `retry.backoff.ms`: wait before the first resend; doubles per attempt.
    pub retry_backoff: Duration,
    /// `retry.backoff.max.ms`: the longest wait between resends.
    pub retry_backoff_max: Duration,
    /// `delivery.timeout.ms`: a record not acknowledged this long after `send` fails (also the
    /// longest wait for a topic's metadata).
    pub delivery_timeout: Duration,
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
    /// `enable.idempotence`: a producer id from InitProducerId and a sequence number per
    /// partition let the broker drop resent duplicates and reject gaps, so retries neither
    /// duplicate nor reorder records. Needs acks=all and at most 5 requests in flight.
    pub idempotent: bool,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::All,
            linger: Duration::from_millis(5),
            batch_size_bytes: 16 * 1024,
            compression: Compression::None,
            retries: u32::MAX,
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
            delivery_timeout: Duration::from_secs(120),
            max_in_flight_per_broker: 5,
            buffer_memory_bytes: 32 * 1024 * 1024,
            max_request_size_bytes: 1024 * 1024,
            ack_timeout: Duration::from_secs(30),
            allow_auto_topic_creation: true,
            idempotent: false,
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
    /// Idempotence: the sequence number of the first record, fixed at the first send so a
    /// resend carries the same numbers; -1 until then (and without idempotence).
    base_sequence: i32,
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
            base_sequence: -1,
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

/// The producer id/epoch (from InitProducerId) and the next sequence number per partition.
struct IdempotenceState {
    identity: ProducerIdentity,
    next_sequence: HashMap<TopicPartition, i32>,
}

impl Default for IdempotenceState {
    fn default() -> Self {
        IdempotenceState {
            identity: ProducerIdentity::NONE,
            next_sequence: HashMap::new(),
        }
    }
}

struct Shared {
    client: Client,
    config: ProducerConfig,
    idempotence: Mutex<IdempotenceState>,
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

    fn idempotence(&self) -> std::sync::MutexGuard<'_, IdempotenceState> {
        self.idempotence
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
        if config.idempotent && (config.acks != Acks::All || config.max_in_flight_per_broker > 5) {
            return Err(ClientError::InvalidConfig(
                "idempotence needs acks=all and at most 5 requests in flight".into(),
            ));
        }
        let buffer_permits = config.buffer_memory_bytes.min(Semaphore::MAX_PERMITS);
        let shared = Arc::new(Shared {
            client,
            idempotence: Mutex::new(IdempotenceState::default()),
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
        let policy = RetryPolicy::of(&self.shared.config);
        let started = Instant::now();
        let mut attempts = 0;
        let count = loop {
            let metadata = client
                .topic_metadata(topic, self.shared.config.allow_auto_topic_creation)
                .await;
            let error = match metadata {
                Ok(metadata) if !metadata.partitions.is_empty() => {
                    break metadata.partitions.len() as i32
                }
                // Just auto-created: partitions appear once leaders are elected.
                Ok(_) => ClientError::NoLeader {
                    topic: topic.to_string(),
                    partition: 0,
                },
                Err(error) => error,
            };
            match decide_retry(error, attempts, started.elapsed(), &policy) {
                RetryDecision::Fail(error) => return Err(error),
                RetryDecision::Retry {
                    attempt,
                    backoff,
                    error,
                } => {
                    tracing::debug!(topic, attempt, %error, "waiting for topic metadata");
                    attempts = attempt;
                    tokio::time::sleep(backoff).await;
                }
            }
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
        let batches = ensure_producer_id(&shared, batches).await;
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

/// With idempotence, obtains the producer id before the first send; if that fails, the
/// batches go back for a retry (and are returned empty here).
async fn ensure_producer_id(shared: &Shared, batches: Vec<Batch>) -> Vec<Batch> {
    let needed = shared.config.idempotent
        && !batches.is_empty()
        && shared.idempotence().identity == ProducerIdentity::NONE;
    if !needed {
        return batches;
    }
    match init_producer_id(shared).await {
        Ok(identity) => {
            tracing::debug!(
                producer_id = identity.producer_id,
                epoch = identity.producer_epoch,
                "idempotent producer"
            );
            shared.idempotence().identity = identity;
            batches
        }
        Err(error) => {
            fail_all_retriable(shared, batches, &error);
            Vec::new()
        }
    }
}

async fn init_producer_id(shared: &Shared) -> Result<ProducerIdentity> {
    let connection = shared.client.any_connection().await?;
    let request = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let (_, response) = connection.call(&request, 4, Duration::ZERO).await?;
    crate::error::check_code(response.error_code, || "InitProducerId".to_string(), None)?;
    Ok(ProducerIdentity {
        producer_id: response.producer_id.0,
        producer_epoch: response.producer_epoch,
    })
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
    let due = take_due(&mut accumulator.ready, now);
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

/// Takes the batches that may be sent at `now`, in queue order. A partition's batches leave in
/// order: one waiting out a retry backoff holds back the partition's later batches (as the Java
/// client's per-partition queue does).
fn take_due(ready: &mut VecDeque<Batch>, now: Instant) -> Vec<Batch> {
    let mut due = Vec::new();
    let mut waiting = VecDeque::new();
    let mut held_back: HashSet<TopicPartition> = HashSet::new();
    while let Some(batch) = ready.pop_front() {
        let backing_off = batch.not_before.is_some_and(|not_before| not_before > now);
        if backing_off || held_back.contains(&batch.partition) {
            held_back.insert(batch.partition.clone());
            waiting.push_back(batch);
        } else {
            due.push(batch);
        }
    }
    *ready = waiting;
    due
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

/// Gives each batch sent for the first time the next sequence numbers of its partition (a
/// resent batch keeps its own); returns the identity to write into the batches.
fn assign_sequences(shared: &Shared, batches: &mut [Batch]) -> ProducerIdentity {
    if !shared.config.idempotent {
        return ProducerIdentity::NONE;
    }
    let mut state = shared.idempotence();
    for batch in batches.iter_mut().filter(|batch| batch.base_sequence < 0) {
        let next = state
            .next_sequence
            .entry(batch.partition.clone())
            .or_insert(0);
        batch.base_sequence = *next;
        *next = next.wrapping_add(batch.records.len() as i32) & i32::MAX;
    }
    state.identity
}

fn build_request(
    shared: &Shared,
    mut batches: Vec<Batch>,
) -> Result<(ProduceRequest, Vec<Batch>), BuildError> {
    let identity = assign_sequences(shared, &mut batches);
    let mut by_topic: BTreeMap<String, Vec<PartitionProduceData>> = BTreeMap::new();
    for batch in &batches {
        let encoded = encode_batch(
            &batch.records,
            shared.config.compression,
            identity,
            batch.base_sequence,
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
            // The broker already has this batch (a resend after a lost response).
            Some(ResponseError::DuplicateSequenceNumber) => {
                complete(shared, batch, result.base_offset, result.log_append_time_ms)
            }
            // An earlier batch of the partition failed and will be resent first; this one
            // follows it.
            Some(ResponseError::OutOfOrderSequenceNumber) if shared.config.idempotent => {
                let error = ClientError::DeliveryFailed {
                    partition: batch.partition.to_string(),
                    reason: "out of order sequence number".into(),
                    kafka_error: Some(ResponseError::OutOfOrderSequenceNumber),
                    retriable: true,
                };
                retry_or_fail(shared, batch, error);
            }
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
    let policy = RetryPolicy::of(&shared.config);
    match decide_retry(error, batch.attempts, batch.created.elapsed(), &policy) {
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

/// The retry settings of a [`ProducerConfig`].
#[derive(Debug, Clone, Copy)]
struct RetryPolicy {
    retries: u32,
    backoff: Duration,
    backoff_max: Duration,
    delivery_timeout: Duration,
}

impl RetryPolicy {
    fn of(config: &ProducerConfig) -> RetryPolicy {
        RetryPolicy {
            retries: config.retries,
            backoff: config.retry_backoff,
            backoff_max: config.retry_backoff_max,
            delivery_timeout: config.delivery_timeout,
        }
    }
}

/// What to do after a failure with `error`, `attempts_so_far` retries and `age` after the first
/// send: retry retriable errors with exponential backoff while both `retries` and
/// `delivery.timeout.ms` allow (the wait must end before the timeout does); otherwise fail,
/// naming the limit that was reached.
fn decide_retry(
    error: ClientError,
    attempts_so_far: u32,
    age: Duration,
    policy: &RetryPolicy,
) -> RetryDecision {
    if !error.is_retriable() {
        return RetryDecision::Fail(error);
    }
    if attempts_so_far >= policy.retries {
        return RetryDecision::Fail(ClientError::RetriesExhausted {
            attempts: attempts_so_far + 1,
            last: Box::new(error),
        });
    }
    let attempt = attempts_so_far + 1;
    let backoff = retry_backoff(policy.backoff, policy.backoff_max, attempt);
    if age + backoff >= policy.delivery_timeout {
        return RetryDecision::Fail(ClientError::DeliveryTimeout {
            timeout: policy.delivery_timeout,
            last: Box::new(error),
        });
    }
    RetryDecision::Retry {
        attempt,
        backoff,
        error,
    }
}

/// `base` doubled per attempt after the first, capped at `max`.
pub fn retry_backoff(base: Duration, max: Duration, attempt: u32) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(16);
    base.saturating_mul(factor).min(max)
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

    fn policy(retries: u32, delivery_timeout_ms: u64) -> RetryPolicy {
        RetryPolicy {
            retries,
            backoff: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
            delivery_timeout: Duration::from_millis(delivery_timeout_ms),
        }
    }

    #[test]
    fn retries_stop_at_the_delivery_timeout() {
        let not_leader =
            || ClientError::broker("produce", ResponseError::NotLeaderOrFollower, None);
        let young = decide_retry(
            not_leader(),
            7,
            Duration::from_secs(5),
            &policy(u32::MAX, 120_000),
        );
        assert!(
            matches!(young, RetryDecision::Retry { attempt: 8, backoff, .. } if backoff == Duration::from_secs(1))
        );
        // The next wait would end past the timeout: fail now, saying why.
        match decide_retry(
            not_leader(),
            7,
            Duration::from_millis(119_500),
            &policy(u32::MAX, 120_000),
        ) {
            RetryDecision::Fail(error) => {
                assert!(
                    matches!(error, ClientError::DeliveryTimeout { .. }),
                    "{error}"
                );
                assert_eq!(
                    error.kafka_error(),
                    Some(ResponseError::NotLeaderOrFollower)
                );
                assert!(error.to_string().contains("120000 ms"), "{error}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn retriable_errors_are_retried_until_the_limit() {
        let base = Duration::from_millis(100);
        let not_leader =
            || ClientError::broker("produce", ResponseError::NotLeaderOrFollower, None);
        match decide_retry(not_leader(), 0, Duration::ZERO, &policy(3, 120_000)) {
            RetryDecision::Retry {
                attempt, backoff, ..
            } => {
                assert_eq!((attempt, backoff), (1, base));
            }
            other => panic!("{other:?}"),
        }
        match decide_retry(not_leader(), 2, Duration::ZERO, &policy(3, 120_000)) {
            RetryDecision::Retry {
                attempt, backoff, ..
            } => {
                assert_eq!((attempt, backoff), (3, base * 4));
            }
            other => panic!("{other:?}"),
        }
        match decide_retry(not_leader(), 3, Duration::ZERO, &policy(3, 120_000)) {
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
            decide_retry(closed, 0, Duration::ZERO, &policy(1, 120_000)),
            RetryDecision::Retry { .. }
        ));
    }

    #[test]
    fn fatal_errors_fail_at_once() {
        let too_large = ClientError::broker("produce", ResponseError::MessageTooLarge, None);
        match decide_retry(too_large, 0, Duration::ZERO, &policy(10, 120_000)) {
            RetryDecision::Fail(error) => {
                assert_eq!(error.kafka_error(), Some(ResponseError::MessageTooLarge))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_batch_in_backoff_holds_back_its_partition_only() {
        let now = Instant::now();
        let mut ready = VecDeque::new();
        let mut retrying = batch_for(1, 0);
        retrying.not_before = Some(now + Duration::from_secs(1));
        ready.push_back(retrying);
        ready.push_back(batch_for(2, 0));
        ready.push_back(batch_for(3, 1));
        let due: Vec<usize> = take_due(&mut ready, now)
            .iter()
            .map(|b| b.size_bytes)
            .collect();
        assert_eq!(due, [3]);
        let still_waiting: Vec<usize> = ready.iter().map(|b| b.size_bytes).collect();
        assert_eq!(still_waiting, [1, 2]);
        let due: Vec<usize> = take_due(&mut ready, now + Duration::from_secs(2))
            .iter()
            .map(|b| b.size_bytes)
            .collect();
        assert_eq!(due, [1, 2]);
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
        let (base, max) = (Duration::from_millis(100), Duration::from_secs(1));
        assert_eq!(retry_backoff(base, max, 1), Duration::from_millis(100));
        assert_eq!(retry_backoff(base, max, 2), Duration::from_millis(200));
        assert_eq!(retry_backoff(base, max, 3), Duration::from_millis(400));
        assert_eq!(retry_backoff(base, max, 5), Duration::from_secs(1));
        assert_eq!(retry_backoff(base, max, u32::MAX), Duration::from_secs(1));
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
