//! `quill_group::OffsetsStore` over the `__consumer_offsets` partition logs.
//!
//! Ordering contract: `append` pushes onto the partition's bounded writer queue before it
//! returns, and one writer task per partition appends jobs in queue order, so the log order is
//! the order in which the coordinator decided its writes. Durability contract: the returned
//! future resolves once `Partition::wait_durable` says the batch is durable; the writer does
//! not wait for that before appending the next job (group commit).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use quill_group::{BoxFuture, OffsetsStore, StoreError, StoredRecord};
use tokio::sync::{mpsc, oneshot};

use crate::clock;
use crate::partitions::{PartitionError, PartitionManager};

/// Kafka's name for the internal topic holding group metadata and committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Appends queued per partition before `append` answers COORDINATOR_NOT_AVAILABLE.
const WRITER_QUEUE_LENGTH: usize = 1024;
/// Bytes per read while loading a partition.
const LOAD_READ_BYTES: usize = 1024 * 1024;

type Job = (Bytes, oneshot::Sender<Result<(), StoreError>>);

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
        PartitionError::Gone => StoreError::NotLeader(partition),
        PartitionError::Task(reason) => StoreError::Unavailable(reason),
        PartitionError::Log(error) => StoreError::Failed(error.to_string()),
    }
}

/// Appends jobs in queue order; completes each job once its batch is durable.
async fn run_writer(
    partitions: Arc<PartitionManager>,
    topic: &'static str,
    partition_index: i32,
    mut jobs: mpsc::Receiver<Job>,
) {
    while let Some((batch, done)) = jobs.recv().await {
        let Some(partition) = partitions.get(topic, partition_index) else {
            let _ = done.send(Err(StoreError::NotLeader(partition_index)));
            continue;
        };
        match partition.append(batch, clock::now_ms(), 0).await {
            Err(error) => {
                let _ = done.send(Err(store_error(partition_index, error)));
            }
            Ok(appended) => {
                tokio::spawn(async move {
                    let durable = partition
                        .wait_durable(appended.last_offset + 1)
                        .await
                        .map_err(|error| store_error(partition_index, error));
                    let _ = done.send(durable);
                });
            }
        }
    }
}

impl OffsetsStore for LogOffsetsStore {
    fn append(
        &self,
        partition: i32,
        records: Vec<StoredRecord>,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        let queued = quill_group::batch::encode_batch(&records, clock::now_ms())
            .map_err(|error| StoreError::Failed(error.to_string()))
            .and_then(|batch| {
                let (done_tx, done_rx) = oneshot::channel();
                self.writer(partition)
                    .try_send((batch, done_tx))
                    .map_err(|_| StoreError::Unavailable("offsets writer queue is full".into()))?;
                Ok(done_rx)
            });
        Box::pin(async move {
            match queued?.await {
                Ok(result) => result,
                Err(_) => Err(StoreError::Unavailable("offsets writer stopped".into())),
            }
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
            while next_offset < offsets.high_watermark {
                let read = partition
                    .read(next_offset, LOAD_READ_BYTES)
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
