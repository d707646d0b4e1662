//! `quill_group::OffsetsStore` over the `__consumer_offsets` partition logs.
//!
//! Ordering contract: `append` pushes onto the partition's bounded writer queue before it
//! returns, and one writer task per partition appends jobs in queue order, so the log order is
//! the order in which the coordinator decided its writes. Durability contract: the returned
//! future resolves once `Partition::wait_committed` says the batch is durable here and on
//! every ISR member (below the high watermark: Kafka's coordinators append with acks=all);
//! the writer does not wait for that before appending the next job (group commit). Loading
//! reads up to the log end, as Kafka's coordinators do: only a leader loads, and its log is
//! the partition's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use quill_group::{BoxFuture, LoadedRecords, OffsetsStore, StoreError, StoredRecord};
use tokio::sync::{mpsc, oneshot};

use crate::clock;
use crate::partitions::{PartitionError, PartitionManager};

/// Kafka's name for the internal topic holding group metadata and committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Appends queued per partition before `append` answers COORDINATOR_NOT_AVAILABLE.
const WRITER_QUEUE_LENGTH: usize = 1024;
/// Bytes per read while loading a partition.
const LOAD_READ_BYTES: usize = 1024 * 1024;

/// What a writer appends: an encoded batch, or TxnOffsetCommit records to encode as a
/// transactional batch once the writer knows the producer's next sequence number.
enum Payload {
    Batch(Bytes),
    Transactional {
        producer_id: i64,
        producer_epoch: i16,
        records: Vec<StoredRecord>,
    },
}

type Job = (Payload, oneshot::Sender<Result<(), StoreError>>);

pub struct LogOffsetsStore {
    partitions: Arc<PartitionManager>,
    /// `__consumer_offsets`, or `__transaction_state` when the transaction coordinator's store
    /// reuses this writer (same contracts, same record batches).
    topic: &'static str,
    writers: Mutex<HashMap<i32, mpsc::Sender<Job>>>,
}

impl LogOffsetsStore {
    pub fn new(partitions: Arc<PartitionManager>) -> LogOffsetsStore {
        LogOffsetsStore::for_topic(partitions, OFFSETS_TOPIC)
    }

    pub fn for_topic(partitions: Arc<PartitionManager>, topic: &'static str) -> LogOffsetsStore {
        LogOffsetsStore {
            partitions,
            topic,
            writers: Mutex::new(HashMap::new()),
        }
    }

    /// The writer queue of `partition`, starting its task on first use.
    fn writer(&self, partition: i32) -> mpsc::Sender<Job> {
        let mut writers = self
            .writers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        writers
            .entry(partition)
            .or_insert_with(|| {
                let (sender, receiver) = mpsc::channel(WRITER_QUEUE_LENGTH);
                tokio::spawn(run_writer(
                    self.partitions.clone(),
                    self.topic,
                    partition,
                    receiver,
                ));
                sender
            })
            .clone()
    }
}

fn store_error(partition: i32, error: PartitionError) -> StoreError {
    match error {
        PartitionError::Gone | PartitionError::NotLeader => StoreError::NotLeader(partition),
        PartitionError::Task(reason) => StoreError::Unavailable(reason),
        PartitionError::Log(error) => StoreError::Failed(error.to_string()),
    }
}

/// Producers whose next transactional-offset sequence a writer caches.
const MAX_CACHED_SEQUENCES: usize = 1024;

/// Appends jobs in queue order; completes each job once its batch is durable.
async fn run_writer(
    partitions: Arc<PartitionManager>,
    topic: &'static str,
    partition_index: i32,
    mut jobs: mpsc::Receiver<Job>,
) {
    // Next sequence per producer for transactional batches: this writer is the only one that
    // writes producer batches to the partition, so it continues what the log knows.
    let mut sequences: HashMap<i64, (i16, i32)> = HashMap::new();
    while let Some((payload, done)) = jobs.recv().await {
        let Some(partition) = partitions.get(topic, partition_index) else {
            let _ = done.send(Err(StoreError::NotLeader(partition_index)));
            continue;
        };
        let (batch, advance) = match payload {
            Payload::Batch(batch) => (batch, None),
            Payload::Transactional {
                producer_id,
                producer_epoch,
                records,
            } => {
                let sequence =
                    next_sequence(&partition, &mut sequences, producer_id, producer_epoch).await;
                let producer = quill_group::batch::TransactionalProducer {
                    producer_id,
                    producer_epoch,
                    base_sequence: sequence,
                };
                let count = i32::try_from(records.len()).unwrap_or(i32::MAX);
                match quill_group::batch::encode_transactional_batch(
                    &records,
                    clock::now_ms(),
                    producer,
                ) {
                    Ok(batch) => (batch, Some((producer_id, producer_epoch, sequence, count))),
                    Err(error) => {
                        let _ = done.send(Err(StoreError::Failed(error.to_string())));
                        continue;
                    }
                }
            }
        };
        match partition.append(batch, clock::now_ms()).await {
            Err(error) => {
                // The log's view of the producer is the truth again after a refusal.
                if let Some((producer_id, ..)) = advance {
                    sequences.remove(&producer_id);
                }
                let _ = done.send(Err(store_error(partition_index, error)));
            }
            Ok(appended) => {
                if let Some((producer_id, producer_epoch, sequence, count)) = advance {
                    let next = sequence.checked_add(count).unwrap_or(0);
                    // Producer ids come from clients' InitProducerId calls: bound the cache.
                    // It only saves a lookup; the log's producer state answers after a clear.
                    if sequences.len() >= MAX_CACHED_SEQUENCES
                        && !sequences.contains_key(&producer_id)
                    {
                        sequences.clear();
                    }
                    sequences.insert(producer_id, (producer_epoch, next));
                }
                tokio::spawn(async move {
                    let durable = partition
                        .wait_committed(appended.last_offset + 1)
                        .await
                        .map_err(|error| store_error(partition_index, error));
                    let _ = done.send(durable);
                });
            }
        }
    }
}

/// The base sequence for the producer's next batch: after its last one at the same epoch, 0
/// for a new epoch or a producer the partition does not know.
async fn next_sequence(
    partition: &Arc<crate::partitions::Partition>,
    sequences: &mut HashMap<i64, (i16, i32)>,
    producer_id: i64,
    producer_epoch: i16,
) -> i32 {
    if let Some((epoch, next)) = sequences.get(&producer_id) {
        if *epoch == producer_epoch {
            return *next;
        }
    }
    let known = partition.producers().await.unwrap_or_default();
    known
        .iter()
        .find(|p| p.producer_id == producer_id && p.producer_epoch == producer_epoch)
        .and_then(|p| p.last_sequence.checked_add(1))
        .unwrap_or(0)
}

impl LogOffsetsStore {
    fn enqueue(
        &self,
        partition: i32,
        payload: Payload,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        let (done_tx, done_rx) = oneshot::channel();
        let queued = self
            .writer(partition)
            .try_send((payload, done_tx))
            .map_err(|_| StoreError::Unavailable("offsets writer queue is full".into()));
        Box::pin(async move {
            queued?;
            match done_rx.await {
                Ok(result) => result,
                Err(_) => Err(StoreError::Unavailable("offsets writer stopped".into())),
            }
        })
    }
}

impl OffsetsStore for LogOffsetsStore {
    fn append(
        &self,
        partition: i32,
        records: Vec<StoredRecord>,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        match quill_group::batch::encode_batch(&records, clock::now_ms()) {
            Ok(batch) => self.enqueue(partition, Payload::Batch(batch)),
            Err(error) => Box::pin(async move { Err(StoreError::Failed(error.to_string())) }),
        }
    }

    fn append_transactional(
        &self,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        records: Vec<StoredRecord>,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        self.enqueue(
            partition,
            Payload::Transactional {
                producer_id,
                producer_epoch,
                records,
            },
        )
    }

    fn read_all_resolved(
        &self,
        partition_index: i32,
    ) -> BoxFuture<'static, Result<LoadedRecords, StoreError>> {
        let partitions = self.partitions.clone();
        let topic = self.topic;
        Box::pin(async move {
            let partition = partitions
                .get(topic, partition_index)
                .ok_or(StoreError::NotLeader(partition_index))?;
            let offsets = partition.offsets();
            let mut next_offset = offsets.log_start_offset;
            let mut resolver = quill_group::batch::TxnResolver::default();
            let mut records = Vec::new();
            while next_offset < offsets.log_end_offset {
                let read = partition
                    .read_to_log_end(next_offset, LOAD_READ_BYTES, true)
                    .await
                    .map_err(|error| store_error(partition_index, error))?;
                if read.bytes.is_empty() || read.next_offset <= next_offset {
                    break;
                }
                let visible = resolver
                    .feed(&read.bytes)
                    .map_err(|error| StoreError::Failed(error.to_string()))?;
                records.extend(visible);
                next_offset = read.next_offset;
            }
            Ok(LoadedRecords {
                records,
                pending: resolver.into_pending(),
            })
        })
    }

    fn read_all(
        &self,
        partition_index: i32,
    ) -> BoxFuture<'static, Result<Vec<StoredRecord>, StoreError>> {
        let partitions = self.partitions.clone();
        let topic = self.topic;
        Box::pin(async move {
            let partition = partitions
                .get(topic, partition_index)
                .ok_or(StoreError::NotLeader(partition_index))?;
            let offsets = partition.offsets();
            let mut next_offset = offsets.log_start_offset;
            let mut records = Vec::new();
            while next_offset < offsets.log_end_offset {
                let read = partition
                    .read_to_log_end(next_offset, LOAD_READ_BYTES, true)
                    .await
                    .map_err(|error| store_error(partition_index, error))?;
                if read.bytes.is_empty() || read.next_offset <= next_offset {
                    break;
                }
                let decoded = quill_group::batch::decode_batches(&read.bytes)
                    .map_err(|error| StoreError::Failed(error.to_string()))?;
                records.extend(decoded);
                next_offset = read.next_offset;
            }
            Ok(records)
        })
    }
}
