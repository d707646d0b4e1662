//! The transaction coordinator: Kafka's `TransactionCoordinator` + `TransactionStateManager`
//! over a [`TxnStore`], writing markers through [`TxnMarkers`].
//!
//! Concurrency: transactional ids live in one map per `__transaction_state` partition behind a
//! `Mutex` held only for in-memory work, never across an `.await`. A state change is *issued*
//! under that lock (the store fixes its log position before `append` returns, and the entry is
//! marked pending so conflicting requests answer CONCURRENT_TRANSACTIONS, as Kafka's
//! `pendingState` does) and *applied* after the write is durable. Markers are written by a
//! spawned task per ending transaction, retried with backoff until every partition has its
//! marker; only then is CompleteCommit/CompleteAbort written.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::TxnConfig;
use crate::error::TxnError;
use crate::partitioner::{java_string_hash_partition, CONSUMER_OFFSETS_TOPIC};
use crate::records;
use crate::state::{TxnMetadata, TxnState};
use crate::store::{
    BoxFuture, MarkerRequest, ProducerIdSource, TxnMarkers, TxnRecord, TxnResult, TxnStore,
};

/// The coordinator epoch of a partition loaded without a leader epoch (`load_all_partitions`:
/// a coordinator that owns every partition and never changes, as in unit tests).
pub const COORDINATOR_EPOCH: i32 = 0;
/// First wait before retrying a failed marker or completion write; doubles up to the maximum.
const RETRY_BACKOFF_MIN: Duration = Duration::from_millis(50);
const RETRY_BACKOFF_MAX: Duration = Duration::from_millis(1000);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitProducerIdRequest {
    pub transactional_id: Option<String>,
    pub transaction_timeout_ms: i32,
    /// KIP-360: the producer id and epoch the client has (-1/-1 when it has none).
    pub producer_id: i64,
    pub producer_epoch: i16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdAndEpoch {
    pub producer_id: i64,
    pub producer_epoch: i16,
}

/// DescribeTransactions' view of one transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnDescription {
    pub transactional_id: String,
    pub state: TxnState,
    pub timeout_ms: i32,
    pub start_timestamp_ms: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub partitions: Vec<(String, i32)>,
}

/// ListTransactions' view of one transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnListing {
    pub transactional_id: String,
    pub producer_id: i64,
    pub state: TxnState,
}

/// Milliseconds since the Unix epoch, advanced by tokio's clock so paused-time tests move it.
#[derive(Debug, Clone, Copy)]
struct Clock {
    base_wall_ms: i64,
    base_instant: Instant,
}

impl Clock {
    fn new() -> Clock {
        let base_wall_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| {
                i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
            });
        Clock {
            base_wall_ms,
            base_instant: Instant::now(),
        }
    }

    fn now_ms(&self) -> i64 {
        let elapsed_ms = i64::try_from(self.base_instant.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.base_wall_ms.saturating_add(elapsed_ms)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    NotOwned,
    Loading,
    Owned,
}

struct Entry {
    metadata: TxnMetadata,
    /// A write for this id is in flight: conflicting requests answer CONCURRENT_TRANSACTIONS.
    pending: bool,
    /// Inserted by a write not yet durable (a new id): removed again if that write fails.
    fresh: bool,
}

struct Slot {
    state: SlotState,
    /// Bumped by every load/unload so late completions of an older ownership do nothing.
    epoch: u64,
    /// Kafka's coordinatorEpoch: the leader epoch of the `__transaction_state` partition when
    /// this broker became its coordinator. Markers carry it, so partition leaders refuse
    /// markers of a coordinator that was since replaced (TRANSACTION_COORDINATOR_FENCED).
    coordinator_epoch: i32,
    txns: HashMap<String, Entry>,
}

struct Shared {
    config: TxnConfig,
    store: Arc<dyn TxnStore>,
    markers: Arc<dyn TxnMarkers>,
    producer_ids: Arc<dyn ProducerIdSource>,
    id_block: tokio::sync::Mutex<Range<i64>>,
    clock: Clock,
    slots: Vec<Mutex<Slot>>,
}

/// The coordinator for every transactional id whose `__transaction_state` partition this broker
/// leads. Cheap to clone (an `Arc`).
#[derive(Clone)]
pub struct TransactionCoordinator {
    shared: Arc<Shared>,
}

enum InitDecision {
    Respond(ProducerIdAndEpoch),
    NeedProducerId,
    Write(TxnMetadata),
    /// An ongoing transaction of an older producer must be aborted first (epoch bumped);
    /// the caller answers CONCURRENT_TRANSACTIONS and the client retries.
    FenceOngoing(TxnMetadata),
}

impl TransactionCoordinator {
    /// Must be called inside a tokio runtime. Owns no partition until `load_partition`.
    pub fn new(
        config: TxnConfig,
        store: Arc<dyn TxnStore>,
        markers: Arc<dyn TxnMarkers>,
        producer_ids: Arc<dyn ProducerIdSource>,
    ) -> TransactionCoordinator {
        let slots = (0..config.transaction_state_partitions.max(1))
            .map(|_| {
                Mutex::new(Slot {
                    state: SlotState::NotOwned,
                    epoch: 0,
                    coordinator_epoch: COORDINATOR_EPOCH,
                    txns: HashMap::new(),
                })
            })
            .collect();
        TransactionCoordinator {
            shared: Arc::new(Shared {
                config,
                store,
                markers,
                producer_ids,
                id_block: tokio::sync::Mutex::new(0..0),
                clock: Clock::new(),
                slots,
            }),
        }
    }

    pub fn config(&self) -> &TxnConfig {
        &self.shared.config
    }

    /// The `__transaction_state` partition of a transactional id (Kafka:
    /// `Utils.abs(transactionalId.hashCode) % transaction.state.log.num.partitions`).
    pub fn partition_for(&self, transactional_id: &str) -> i32 {
        java_string_hash_partition(
            transactional_id,
            self.shared.config.transaction_state_partitions,
        )
    }

    /// Loads every partition concurrently (each marked loading first, so no request answers
    /// NOT_COORDINATOR meanwhile). Returns the first error; a partition that failed stays
    /// loading (see [`Self::load_partition`]).
    pub async fn load_all_partitions(&self) -> Result<(), TxnError> {
        self.begin_loading_all();
        let mut loads = tokio::task::JoinSet::new();
        for partition in 0..self.shared.config.transaction_state_partitions {
            let coordinator = self.clone();
            loads.spawn(async move {
                coordinator
                    .load_partition(partition, COORDINATOR_EPOCH)
                    .await
            });
        }
        let mut first_error = None;
        while let Some(joined) = loads.join_next().await {
            let outcome =
                joined.unwrap_or_else(|error| Err(TxnError::UnknownServerError(error.to_string())));
            if let Err(error) = outcome {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Marks every partition not coordinated yet as loading without reading anything: its ids
    /// answer COORDINATOR_LOAD_IN_PROGRESS (retried by clients) instead of NOT_COORDINATOR.
    /// The broker calls it before it serves, then loads in the background.
    pub fn begin_loading_all(&self) {
        for slot in &self.shared.slots {
            mark_loading(&mut lock(slot));
        }
    }

    /// [`Self::begin_loading_all`] for the given partitions only (those this broker leads).
    pub fn begin_loading(&self, partitions: impl IntoIterator<Item = i32>) {
        for partition in partitions {
            let Some(slot) = usize::try_from(partition)
                .ok()
                .and_then(|index| self.shared.slots.get(index))
            else {
                continue;
            };
            mark_loading(&mut lock(slot));
        }
    }

    /// Becomes coordinator of `partition`: replays its records (last value per key wins, a
    /// tombstone deletes), then resumes every transaction that was between Prepare and Complete
    /// (its markers may not all have been written before the stop). If the records cannot be
    /// read the partition stays loading: call this again (the broker retries with backoff).
    /// `coordinator_epoch` is the partition's leader epoch (Kafka's coordinatorEpoch), carried
    /// by every marker this ownership writes.
    pub async fn load_partition(
        &self,
        partition: i32,
        coordinator_epoch: i32,
    ) -> Result<(), TxnError> {
        let epoch = {
            let mut slot = self.shared.slot(partition)?;
            slot.state = SlotState::Loading;
            slot.epoch += 1;
            slot.coordinator_epoch = coordinator_epoch;
            slot.txns.clear();
            slot.epoch
        };
        let records = self.shared.store.read_all(partition).await?;
        let txns = replay(&records);
        let mut to_complete = Vec::new();
        {
            let mut slot = self.shared.slot(partition)?;
            if slot.epoch != epoch {
                return Ok(());
            }
            for (id, metadata) in txns {
                if matches!(
                    metadata.state,
                    TxnState::PrepareCommit | TxnState::PrepareAbort
                ) {
                    to_complete.push(id.clone());
                }
                slot.txns.insert(
                    id,
                    Entry {
                        metadata,
                        pending: false,
                        fresh: false,
                    },
                );
            }
            slot.state = SlotState::Owned;
        }
        for transactional_id in to_complete {
            tracing::info!(%transactional_id, "resuming transaction markers after load");
            spawn_completion(self.shared.clone(), partition, transactional_id, epoch);
        }
        Ok(())
    }

    /// Stops answering for every partition (shutdown).
    pub fn unload_all(&self) {
        for slot in &self.shared.slots {
            unload(&mut lock(slot));
        }
    }

    /// Stops coordinating `partition` (its leadership moved, or it was deleted): its ids answer
    /// NOT_COORDINATOR, their state is dropped (the new leader replays it from the log), and
    /// in-flight completions and timers of this ownership do nothing more.
    pub fn unload_partition(&self, partition: i32) {
        if let Some(slot) = usize::try_from(partition)
            .ok()
            .and_then(|index| self.shared.slots.get(index))
        {
            unload(&mut lock(slot));
        }
    }

    // -----------------------------------------------------------------------------------------
    // InitProducerId

    pub async fn init_producer_id(
        &self,
        request: InitProducerIdRequest,
    ) -> Result<ProducerIdAndEpoch, TxnError> {
        let Some(transactional_id) = request.transactional_id.clone() else {
            // Idempotent producers (KIP-360 recovery included) always get a fresh id, as in Kafka.
            let producer_id = self.shared.next_producer_id().await?;
            return Ok(ProducerIdAndEpoch {
                producer_id,
                producer_epoch: 0,
            });
        };
        self.check_transactional_id(&transactional_id)?;
        let max_ms = self.shared.config.transaction_max_timeout_ms;
        if request.transaction_timeout_ms <= 0 || request.transaction_timeout_ms > max_ms {
            return Err(TxnError::InvalidTransactionTimeout {
                timeout_ms: request.transaction_timeout_ms,
                max_ms,
            });
        }
        let partition = self.partition_for(&transactional_id);
        let expected =
            (request.producer_id >= 0).then_some((request.producer_id, request.producer_epoch));
        let mut spare_producer_id = None;
        // At most two rounds: the second one has a fresh producer id in hand.
        for _ in 0..2 {
            let (decision, write) = {
                let mut slot = self.shared.owned_slot(partition)?;
                let now_ms = self.shared.clock.now_ms();
                let decision = decide_init(
                    slot.txns.get(&transactional_id),
                    &transactional_id,
                    request.transaction_timeout_ms,
                    expected,
                    spare_producer_id,
                    now_ms,
                )?;
                let write = match &decision {
                    InitDecision::Write(next) | InitDecision::FenceOngoing(next) => Some(
                        self.shared
                            .issue(&mut slot, partition, &transactional_id, next.clone()),
                    ),
                    _ => None,
                };
                (decision, write.map(|future| (future, slot.epoch)))
            };
            match decision {
                InitDecision::Respond(ids) => return Ok(ids),
                InitDecision::NeedProducerId => {
                    spare_producer_id = Some(self.shared.next_producer_id().await?);
                }
                InitDecision::Write(next) => {
                    let (future, epoch) = write.ok_or(TxnError::CoordinatorNotAvailable)?;
                    let ids = ProducerIdAndEpoch {
                        producer_id: next.producer_id,
                        producer_epoch: next.producer_epoch,
                    };
                    self.shared
                        .finish(partition, &transactional_id, epoch, Some(next), future)
                        .await?;
                    return Ok(ids);
                }
                InitDecision::FenceOngoing(next) => {
                    let (future, epoch) = write.ok_or(TxnError::CoordinatorNotAvailable)?;
                    self.shared
                        .finish(partition, &transactional_id, epoch, Some(next), future)
                        .await?;
                    spawn_completion(self.shared.clone(), partition, transactional_id, epoch);
                    return Err(TxnError::ConcurrentTransactions);
                }
            }
        }
        Err(TxnError::ConcurrentTransactions)
    }

    fn check_transactional_id(&self, transactional_id: &str) -> Result<(), TxnError> {
        if transactional_id.is_empty() {
            return Err(TxnError::InvalidRequest("empty transactional id".into()));
        }
        let limit = self.shared.config.transactional_id_max_bytes;
        if transactional_id.len() > limit {
            return Err(TxnError::InvalidRequest(format!(
                "transactional id of {} bytes is longer than transactional.id.max.bytes = {limit}",
                transactional_id.len()
            )));
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // AddPartitionsToTxn, AddOffsetsToTxn, verification (KIP-890)

    pub async fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<(), TxnError> {
        self.check_transactional_id(transactional_id)?;
        let partition = self.partition_for(transactional_id);
        let (future, epoch, next) = {
            let mut slot = self.shared.owned_slot(partition)?;
            let now_ms = self.shared.clock.now_ms();
            let entry = slot
                .txns
                .get(transactional_id)
                .ok_or(TxnError::InvalidProducerIdMapping)?;
            entry.metadata.check_producer(producer_id, producer_epoch)?;
            if entry.pending {
                return Err(TxnError::ConcurrentTransactions);
            }
            let max = self.shared.config.max_partitions_per_transaction;
            let Some(next) = entry.metadata.add_partitions(partitions, max, now_ms)? else {
                return Ok(());
            };
            let future = self
                .shared
                .issue(&mut slot, partition, transactional_id, next.clone());
            (future, slot.epoch, next)
        };
        self.shared
            .finish(partition, transactional_id, epoch, Some(next), future)
            .await
    }

    /// AddPartitionsToTxn v4+ `verify_only`, and the check before a transactional Produce:
    /// every partition must already be in this producer's ongoing transaction. A partition
    /// being added right now counts (Kafka lets verification through a pending Ongoing write).
    pub fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<(), TxnError> {
        let partition = self.partition_for(transactional_id);
        let slot = self.shared.owned_slot(partition)?;
        let entry = slot
            .txns
            .get(transactional_id)
            .ok_or(TxnError::InvalidProducerIdMapping)?;
        entry.metadata.check_producer(producer_id, producer_epoch)?;
        let all_added = entry.metadata.state == TxnState::Ongoing
            && partitions
                .iter()
                .all(|tp| entry.metadata.partitions.contains(tp));
        if all_added {
            Ok(())
        } else {
            Err(TxnError::InvalidTxnState(
                "Partition was not added to the transaction".into(),
            ))
        }
    }

    /// AddOffsetsToTxn: adds the group's `__consumer_offsets` partition to the transaction, so
    /// the commit marker there publishes the transaction's offsets.
    pub async fn add_offsets(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        group_id: &str,
    ) -> Result<(), TxnError> {
        let offsets_partition =
            java_string_hash_partition(group_id, self.shared.config.offsets_topic_partitions);
        self.add_partitions(
            transactional_id,
            producer_id,
            producer_epoch,
            &[(CONSUMER_OFFSETS_TOPIC.to_string(), offsets_partition)],
        )
        .await
    }

    // -----------------------------------------------------------------------------------------
    // EndTxn

    /// Answers once PrepareCommit/PrepareAbort is durable (the decision is then final); the
    /// markers and CompleteCommit/CompleteAbort follow in the background, as in Kafka.
    pub async fn end_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Result<(), TxnError> {
        self.check_transactional_id(transactional_id)?;
        let partition = self.partition_for(transactional_id);
        let (future, epoch, next) = {
            let mut slot = self.shared.owned_slot(partition)?;
            let now_ms = self.shared.clock.now_ms();
            let entry = slot
                .txns
                .get(transactional_id)
                .ok_or(TxnError::InvalidProducerIdMapping)?;
            entry.metadata.check_producer(producer_id, producer_epoch)?;
            if entry.pending {
                return Err(TxnError::ConcurrentTransactions);
            }
            let Some(next) = entry.metadata.end(commit, now_ms)? else {
                return Ok(());
            };
            let future = self
                .shared
                .issue(&mut slot, partition, transactional_id, next.clone());
            (future, slot.epoch, next)
        };
        self.prepare_then_complete(partition, transactional_id, epoch, next, future)
            .await
    }

    // -----------------------------------------------------------------------------------------
    // Admin views

    pub fn describe(&self, transactional_id: &str) -> Result<TxnDescription, TxnError> {
        let partition = self.partition_for(transactional_id);
        let slot = self.shared.owned_slot(partition)?;
        let metadata = &slot
            .txns
            .get(transactional_id)
            .ok_or(TxnError::TransactionalIdNotFound)?
            .metadata;
        Ok(TxnDescription {
            transactional_id: transactional_id.to_string(),
            state: metadata.state,
            timeout_ms: metadata.timeout_ms,
            start_timestamp_ms: metadata.start_timestamp_ms,
            producer_id: metadata.producer_id,
            producer_epoch: metadata.producer_epoch,
            partitions: metadata.partitions.iter().cloned().collect(),
        })
    }

    /// Empty filters match everything; `min_duration_ms < 0` disables the duration filter.
    pub fn list(
        &self,
        states: &[TxnState],
        producer_ids: &[i64],
        min_duration_ms: i64,
    ) -> Vec<TxnListing> {
        let now_ms = self.shared.clock.now_ms();
        let mut listed = Vec::new();
        for slot in &self.shared.slots {
            let slot = lock(slot);
            if slot.state != SlotState::Owned {
                continue;
            }
            for entry in slot.txns.values() {
                let metadata = &entry.metadata;
                let state_ok = states.is_empty() || states.contains(&metadata.state);
                let producer_ok =
                    producer_ids.is_empty() || producer_ids.contains(&metadata.producer_id);
                let duration_ok = min_duration_ms < 0
                    || (metadata.start_timestamp_ms >= 0
                        && now_ms.saturating_sub(metadata.start_timestamp_ms) >= min_duration_ms);
                if state_ok && producer_ok && duration_ok {
                    listed.push(TxnListing {
                        transactional_id: metadata.transactional_id.clone(),
                        producer_id: metadata.producer_id,
                        state: metadata.state,
                    });
                }
            }
        }
        listed.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        listed
    }

    // -----------------------------------------------------------------------------------------
    // Timers

    /// Aborts every ongoing transaction older than its timeout: the epoch is bumped first so
    /// the producer that let it time out is fenced (Kafka's `abortTimedOutTransactions`).
    pub async fn abort_timed_out(&self) -> usize {
        let mut aborted = 0;
        for partition in 0..self.shared.config.transaction_state_partitions {
            let now_ms = self.shared.clock.now_ms();
            let timed_out: Vec<String> = match self.shared.owned_slot(partition) {
                Ok(slot) => slot
                    .txns
                    .values()
                    .filter(|entry| !entry.pending && entry.metadata.has_timed_out(now_ms))
                    .map(|entry| entry.metadata.transactional_id.clone())
                    .collect(),
                Err(_) => continue,
            };
            for transactional_id in timed_out {
                if self.abort_one(partition, &transactional_id).await.is_ok() {
                    aborted += 1;
                }
            }
        }
        aborted
    }

    /// Waits until the PrepareCommit/PrepareAbort record is durable (the decision is final from
    /// then on), then writes the markers and the Complete* record in the background.
    async fn prepare_then_complete(
        &self,
        partition: i32,
        transactional_id: &str,
        epoch: u64,
        prepared: TxnMetadata,
        write: BoxFuture<'static, Result<(), crate::error::StoreError>>,
    ) -> Result<(), TxnError> {
        self.shared
            .finish(partition, transactional_id, epoch, Some(prepared), write)
            .await?;
        spawn_completion(
            self.shared.clone(),
            partition,
            transactional_id.to_string(),
            epoch,
        );
        Ok(())
    }

    async fn abort_one(&self, partition: i32, transactional_id: &str) -> Result<(), TxnError> {
        let (future, epoch, next) = {
            let mut slot = self.shared.owned_slot(partition)?;
            let now_ms = self.shared.clock.now_ms();
            let entry = slot
                .txns
                .get(transactional_id)
                .ok_or(TxnError::TransactionalIdNotFound)?;
            if entry.pending || !entry.metadata.has_timed_out(now_ms) {
                return Err(TxnError::ConcurrentTransactions);
            }
            let mut next = entry.metadata.clone();
            next.producer_epoch = next.producer_epoch.saturating_add(1);
            next.state = TxnState::PrepareAbort;
            next.last_update_timestamp_ms = now_ms;
            tracing::info!(
                %transactional_id,
                producer_id = next.producer_id,
                "aborting a transaction that exceeded its timeout"
            );
            let future = self
                .shared
                .issue(&mut slot, partition, transactional_id, next.clone());
            (future, slot.epoch, next)
        };
        self.prepare_then_complete(partition, transactional_id, epoch, next, future)
            .await
    }

    /// Removes transactional ids idle (no ongoing transaction) for longer than
    /// `transactional.id.expiration.ms`, writing a tombstone for each.
    pub async fn expire_transactional_ids(&self) -> usize {
        let expiration_ms = self.shared.config.transactional_id_expiration_ms;
        let mut expired = 0;
        for partition in 0..self.shared.config.transaction_state_partitions {
            let now_ms = self.shared.clock.now_ms();
            let writes: Vec<_> = match self.shared.owned_slot(partition) {
                Ok(mut slot) => {
                    let ids: Vec<String> = slot
                        .txns
                        .values()
                        .filter(|entry| {
                            !entry.pending
                                && entry.metadata.state.is_idle()
                                && now_ms.saturating_sub(entry.metadata.last_update_timestamp_ms)
                                    > expiration_ms
                        })
                        .map(|entry| entry.metadata.transactional_id.clone())
                        .collect();
                    let epoch = slot.epoch;
                    ids.into_iter()
                        .map(|id| {
                            let future = self.shared.issue_tombstone(&mut slot, partition, &id);
                            (id, future, epoch)
                        })
                        .collect()
                }
                Err(_) => continue,
            };
            for (id, future, epoch) in writes {
                if self
                    .shared
                    .finish(partition, &id, epoch, None, future)
                    .await
                    .is_ok()
                {
                    expired += 1;
                }
            }
        }
        expired
    }

    /// Runs timeouts and expiry every `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub fn spawn_timers(&self) -> JoinHandle<()> {
        let coordinator = self.clone();
        let interval_ms = self
            .shared
            .config
            .abort_timed_out_transaction_cleanup_interval_ms;
        tokio::spawn(async move {
            let period = Duration::from_millis(interval_ms.max(1));
            let mut ticker = tokio::time::interval_at(Instant::now() + period, period);
            loop {
                ticker.tick().await;
                coordinator.abort_timed_out().await;
                coordinator.expire_transactional_ids().await;
            }
        })
    }
}

fn decide_init(
    entry: Option<&Entry>,
    transactional_id: &str,
    timeout_ms: i32,
    expected: Option<(i64, i16)>,
    spare_producer_id: Option<i64>,
    now_ms: i64,
) -> Result<InitDecision, TxnError> {
    let Some(entry) = entry else {
        return Ok(match spare_producer_id {
            None => InitDecision::NeedProducerId,
            Some(producer_id) => InitDecision::Write(TxnMetadata::new(
                transactional_id,
                producer_id,
                timeout_ms,
                now_ms,
            )),
        });
    };
    if entry.pending {
        return Err(TxnError::ConcurrentTransactions);
    }
    let current = &entry.metadata;
    if let Some((producer_id, producer_epoch)) = expected {
        let is_current =
            producer_id == current.producer_id && producer_epoch == current.producer_epoch;
        // A retry of a bump that already succeeded (the response was lost): same answer again.
        let is_retry = producer_id == current.producer_id
            && producer_epoch == current.last_producer_epoch
            && current.state == TxnState::Empty;
        if is_retry {
            return Ok(InitDecision::Respond(ProducerIdAndEpoch {
                producer_id: current.producer_id,
                producer_epoch: current.producer_epoch,
            }));
        }
        if !is_current {
            return Err(TxnError::ProducerFenced);
        }
    }
    match current.state {
        TxnState::PrepareCommit
        | TxnState::PrepareAbort
        | TxnState::PrepareEpochFence
        | TxnState::Dead => Err(TxnError::ConcurrentTransactions),
        TxnState::Ongoing => {
            let mut next = current.clone();
            next.producer_epoch = next.producer_epoch.saturating_add(1);
            next.state = TxnState::PrepareAbort;
            next.last_update_timestamp_ms = now_ms;
            Ok(InitDecision::FenceOngoing(next))
        }
        TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
            let (producer_id, producer_epoch) = match current.bumped_epoch() {
                Some(epoch) => (current.producer_id, epoch),
                None => match spare_producer_id {
                    Some(producer_id) => (producer_id, 0),
                    None => return Ok(InitDecision::NeedProducerId),
                },
            };
            let mut next = current.clone();
            // Only the instance that held the current epoch may later retry this bump (KIP-360,
            // `is_retry` above); a new instance (no producer id in its request) leaves no
            // previous epoch, or the instance it fenced could take over the new epoch.
            next.last_producer_epoch = if expected.is_some() {
                current.producer_epoch
            } else {
                -1
            };
            next.producer_id = producer_id;
            next.producer_epoch = producer_epoch;
            next.timeout_ms = timeout_ms;
            next.state = TxnState::Empty;
            next.partitions.clear();
            next.start_timestamp_ms = -1;
            next.last_update_timestamp_ms = now_ms;
            Ok(InitDecision::Write(next))
        }
    }
}

/// Last value per transactional id; tombstones delete; undecodable records are skipped.
fn replay(records: &[TxnRecord]) -> HashMap<String, TxnMetadata> {
    let mut txns = HashMap::new();
    for record in records {
        let id = match records::decode_key(&record.key) {
            Ok(id) => id,
            Err(error) => {
                tracing::warn!(%error, "skipping an undecodable __transaction_state key");
                continue;
            }
        };
        match &record.value {
            None => {
                txns.remove(&id);
            }
            Some(value) => match records::decode_value(value) {
                Ok(value) => {
                    let metadata = TxnMetadata::from_stored(&id, &value);
                    txns.insert(id, metadata);
                }
                Err(error) => {
                    tracing::warn!(%error, transactional_id = %id, "skipping an undecodable __transaction_state value");
                }
            },
        }
    }
    txns
}

impl Shared {
    fn slot(&self, partition: i32) -> Result<MutexGuard<'_, Slot>, TxnError> {
        let index = usize::try_from(partition).map_err(|_| TxnError::NotCoordinator)?;
        self.slots
            .get(index)
            .map(lock)
            .ok_or(TxnError::NotCoordinator)
    }

    fn owned_slot(&self, partition: i32) -> Result<MutexGuard<'_, Slot>, TxnError> {
        let slot = self.slot(partition)?;
        match slot.state {
            SlotState::Owned => Ok(slot),
            SlotState::Loading => Err(TxnError::CoordinatorLoadInProgress),
            SlotState::NotOwned => Err(TxnError::NotCoordinator),
        }
    }

    async fn next_producer_id(&self) -> Result<i64, TxnError> {
        let mut block = self.id_block.lock().await;
        if block.is_empty() {
            *block = self.producer_ids.allocate_block().await?;
        }
        let producer_id = block.start;
        if block.is_empty() {
            return Err(TxnError::UnknownServerError(
                "empty producer id block".into(),
            ));
        }
        block.start += 1;
        Ok(producer_id)
    }

    /// Under the slot lock: marks the id pending and hands the record to the store (which fixes
    /// its log position now). The caller awaits the returned future through [`Shared::finish`].
    fn issue(
        &self,
        slot: &mut Slot,
        partition: i32,
        transactional_id: &str,
        next: TxnMetadata,
    ) -> BoxFuture<'static, Result<(), crate::error::StoreError>> {
        let record = TxnRecord {
            key: records::encode_key(transactional_id),
            value: Some(records::encode_value(&next.to_stored())),
        };
        self.mark_pending(slot, transactional_id, next);
        self.store.append(partition, vec![record])
    }

    fn issue_tombstone(
        &self,
        slot: &mut Slot,
        partition: i32,
        transactional_id: &str,
    ) -> BoxFuture<'static, Result<(), crate::error::StoreError>> {
        if let Some(entry) = slot.txns.get_mut(transactional_id) {
            entry.pending = true;
        }
        let record = TxnRecord {
            key: records::encode_key(transactional_id),
            value: None,
        };
        self.store.append(partition, vec![record])
    }

    fn mark_pending(&self, slot: &mut Slot, transactional_id: &str, next: TxnMetadata) {
        match slot.txns.get_mut(transactional_id) {
            Some(entry) => entry.pending = true,
            None => {
                // A new id: present (pending) so a concurrent InitProducerId waits for this one.
                slot.txns.insert(
                    transactional_id.to_string(),
                    Entry {
                        metadata: next,
                        pending: true,
                        fresh: true,
                    },
                );
            }
        }
    }

    /// Awaits a store write and applies its result: the new state on success, the old one (or
    /// nothing, for an id the write would have created) on failure.
    async fn finish(
        &self,
        partition: i32,
        transactional_id: &str,
        epoch: u64,
        next: Option<TxnMetadata>,
        write: BoxFuture<'static, Result<(), crate::error::StoreError>>,
    ) -> Result<(), TxnError> {
        let result = write.await;
        let mut slot = self.slot(partition)?;
        if slot.epoch != epoch {
            return Err(TxnError::NotCoordinator);
        }
        match (result, next) {
            (Ok(()), Some(metadata)) => {
                slot.txns.insert(
                    transactional_id.to_string(),
                    Entry {
                        metadata,
                        pending: false,
                        fresh: false,
                    },
                );
                Ok(())
            }
            (Ok(()), None) => {
                slot.txns.remove(transactional_id);
                Ok(())
            }
            (Err(error), _) => {
                let created_by_write = slot
                    .txns
                    .get(transactional_id)
                    .is_some_and(|entry| entry.fresh);
                if created_by_write {
                    slot.txns.remove(transactional_id);
                } else if let Some(entry) = slot.txns.get_mut(transactional_id) {
                    entry.pending = false;
                }
                tracing::warn!(%error, %transactional_id, "__transaction_state write failed");
                Err(error.into())
            }
        }
    }
}

/// Writes the markers of a prepared transaction (retrying each failing partition with backoff)
/// and then CompleteCommit/CompleteAbort. Stops if the partition is unloaded meanwhile: the next
/// owner resumes from the Prepare record.
fn spawn_completion(shared: Arc<Shared>, partition: i32, transactional_id: String, epoch: u64) {
    tokio::spawn(async move {
        let Some(mut request) = marker_request(&shared, partition, &transactional_id, epoch) else {
            return;
        };
        let mut backoff = RETRY_BACKOFF_MIN;
        while !request.partitions.is_empty() {
            let results = shared.markers.write_markers(request.clone()).await;
            request.partitions = results
                .into_iter()
                .filter_map(|(tp, result)| match result {
                    Err(crate::error::MarkerError::Retriable(reason)) => {
                        tracing::debug!(%reason, topic = %tp.0, partition = tp.1, "marker write failed; retrying");
                        Some(tp)
                    }
                    _ => None,
                })
                .collect();
            if request.partitions.is_empty() {
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(RETRY_BACKOFF_MAX);
            if !still_owned(&shared, partition, epoch) {
                return;
            }
        }
        let mut backoff = RETRY_BACKOFF_MIN;
        loop {
            let issued = {
                let Ok(mut slot) = shared.owned_slot(partition) else {
                    return;
                };
                if slot.epoch != epoch {
                    return;
                }
                let Some(entry) = slot.txns.get(&transactional_id) else {
                    return;
                };
                if !matches!(
                    entry.metadata.state,
                    TxnState::PrepareCommit | TxnState::PrepareAbort
                ) {
                    return;
                }
                if entry.pending {
                    None
                } else {
                    let next = entry.metadata.completed(shared.clock.now_ms());
                    let future =
                        shared.issue(&mut slot, partition, &transactional_id, next.clone());
                    Some((future, next))
                }
            };
            if let Some((future, next)) = issued {
                if shared
                    .finish(partition, &transactional_id, epoch, Some(next), future)
                    .await
                    .is_ok()
                {
                    return;
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(RETRY_BACKOFF_MAX);
        }
    });
}

fn marker_request(
    shared: &Shared,
    partition: i32,
    transactional_id: &str,
    epoch: u64,
) -> Option<MarkerRequest> {
    let slot = shared.owned_slot(partition).ok()?;
    if slot.epoch != epoch {
        return None;
    }
    let metadata = &slot.txns.get(transactional_id)?.metadata;
    let result = match metadata.state {
        TxnState::PrepareCommit => TxnResult::Commit,
        TxnState::PrepareAbort => TxnResult::Abort,
        _ => return None,
    };
    Some(MarkerRequest {
        producer_id: metadata.producer_id,
        producer_epoch: metadata.producer_epoch,
        coordinator_epoch: slot.coordinator_epoch,
        result,
        partitions: metadata.partitions.iter().cloned().collect(),
    })
}

fn still_owned(shared: &Shared, partition: i32, epoch: u64) -> bool {
    shared
        .owned_slot(partition)
        .is_ok_and(|slot| slot.epoch == epoch)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn unload(slot: &mut Slot) {
    slot.state = SlotState::NotOwned;
    slot.epoch += 1;
    slot.txns.clear();
}

/// Marks a partition not coordinated yet as loading (see `begin_loading_all`).
fn mark_loading(slot: &mut Slot) {
    if slot.state == SlotState::NotOwned {
        slot.state = SlotState::Loading;
        slot.epoch += 1;
    }
}
