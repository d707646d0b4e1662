//! The partition manager: one `quill_log::Log` per hosted partition, opened, re-configured and
//! deleted to match the metadata image, with async wrappers that run the blocking log I/O on
//! tokio's blocking pool.
//!
//! Architecture invariants:
//! - Log I/O (append, read, fsync, open, delete) never runs on an async worker thread.
//! - Appends to one partition are serialized by the log's write lock; offsets are dense.
//!   Record-level validation (decompression included) runs before that lock is taken; at most
//!   `MAX_COMPRESSED_DECODES` appends decode compressed batches at once.
//! - The high watermark is the minimum over the ISR of each member's durable end offset as the
//!   flush policy defines it (`replication.rs`; with one replica, this broker's own): data
//!   becomes visible to consumers (Fetch, ListOffsets latest) and acknowledges acks=all only
//!   once every ISR member has it as durably as the policy promises. Under the default
//!   (`flush.messages=1`) that is fsynced, so a crash can never take back an offset a consumer
//!   has seen; under the other policies it is at once (as in Kafka), and a machine crash can.
//!   It only moves forward; moving it publishes on a watch, which is what wakes Fetch
//!   long-polls and acks=all produces (no sleeping in a loop). Followers' fetches read up to
//!   the log end and wait on a log-end watch.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use quill_log::{
    AbortedTransaction, AppendContext, AppendInfo, CleanableStats, CleanupPolicy, CompactionConfig,
    Compression, CompressionLevels, ControlMarker, FlushPolicy, GroupCommitter, Log, LogConfig,
    LogError, ProducerSnapshot, ReadResult, TimestampOffset, TimestampType,
};
use quill_meta::topic_config::{self, BrokerConfigLayers};
use quill_meta::{MetadataImage, PartitionInfo, TopicInfo, Uuid};
use tokio::sync::{oneshot, watch};

use crate::config::BrokerConfig;
use crate::partition_marker;
use crate::rate_limit::{WarnLimiter, WARNING_INTERVAL};
pub use crate::replication::{Assignment, ReplicaState, Role};

/// Errors of partition operations, each with the Kafka error code to answer with.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    #[error(transparent)]
    Log(#[from] LogError),
    /// The partition was deleted (or the broker is shutting down) while the request ran.
    #[error("partition is no longer hosted here")]
    Gone,
    #[error("blocking task failed: {0}")]
    Task(String),
    /// This broker stopped leading the partition before the data was committed (in the ISR).
    #[error("this broker no longer leads the partition")]
    NotLeader,
}

impl PartitionError {
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            PartitionError::Log(error) => error.kafka_error_code(),
            PartitionError::Gone => 3, // UNKNOWN_TOPIC_OR_PARTITION
            PartitionError::Task(_) => -1,
            PartitionError::NotLeader => 6, // NOT_LEADER_OR_FOLLOWER
        }
    }
}

/// This broker no longer leads the partition in the epoch a wait started in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this broker no longer leads the partition")]
pub struct NotLeader;

/// Offsets a Fetch/ListOffsets response reports, read without touching the log lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    pub log_start_offset: i64,
    /// Everything below is durable per the flush policy; consumers read only below it.
    pub high_watermark: i64,
    /// Next offset to be assigned (>= high watermark).
    pub log_end_offset: i64,
    /// `min(first unstable offset, high watermark)`: read_committed consumers read below it.
    pub last_stable_offset: i64,
}

/// One hosted partition.
pub struct Partition {
    pub topic: String,
    pub topic_id: Uuid,
    pub partition: i32,
    /// `None` once the log was closed or deleted.
    log: RwLock<Option<Log>>,
    log_start_offset: AtomicI64,
    log_end_offset: AtomicI64,
    /// First offset of the oldest open transaction, or the log end offset (published after
    /// every append and marker, so Fetch reads it without the log lock).
    first_unstable_offset: AtomicI64,
    /// Role, ISR, followers' durable ends and the high watermark (see `replication.rs`).
    replicated: Arc<Replicated>,
    /// The log end offset as a watch: wakes replica fetches (followers read up to it).
    log_end: watch::Sender<i64>,
    /// The topic's effective `min.insync.replicas`, kept current by reconciliation.
    min_insync_replicas: AtomicI32,
    /// `compression.type` names a codec, so appends may re-encode (and need a decode permit
    /// even for uncompressed batches); kept current by reconciliation, read without the lock.
    reencodes: std::sync::atomic::AtomicBool,
    /// The topic's `compression.type` is zstd: Fetch below v10 is refused (KIP-110).
    compression_type_zstd: AtomicBool,
}

/// The replication half of a partition, shared with the durability callbacks that run on the
/// group-commit thread.
struct Replicated {
    state: Mutex<ReplicaState>,
    /// High watermark; moves forward when the ISR has made more durable, and wakes fetchers
    /// and acks=all produces.
    high_watermark: watch::Sender<i64>,
    /// (role, leader epoch): changes end waits that only a leader may finish.
    leadership: watch::Sender<(Role, i32)>,
}

impl Replicated {
    fn lock(&self) -> std::sync::MutexGuard<'_, ReplicaState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Moves the published high watermark up to what `state` supports (never back: a
    /// consumer may have read below it).
    fn publish_high_watermark(&self, state: &ReplicaState) {
        if let Some(candidate) = state.high_watermark() {
            self.high_watermark.send_if_modified(|current| {
                let moved = candidate > *current;
                *current = (*current).max(candidate);
                moved
            });
        }
    }

    fn local_data_durable(&self, through_offset: i64) {
        let mut state = self.lock();
        state.local_durable_end_offset = state.local_durable_end_offset.max(through_offset);
        self.publish_high_watermark(&state);
    }
}

impl Partition {
    fn new(
        topic: &str,
        topic_id: Uuid,
        partition: i32,
        log: Log,
        node_id: i32,
        replicated: bool,
    ) -> Partition {
        let log_start_offset = AtomicI64::new(log.log_start_offset());
        let log_end_offset = AtomicI64::new(log.log_end_offset());
        let first_unstable_offset = AtomicI64::new(log.first_unstable_offset());
        // Whatever survived recovery on disk is the durable prefix. An unreplicated log's high
        // watermark is exactly that; a replicated one's is what the ISR had in common, which
        // the log recorded (Kafka's replication-offset-checkpoint; the recovery point if it
        // never recorded one) and followers' fetches move on from.
        let initial_high_watermark = if replicated {
            log.checkpointed_high_watermark()
        } else {
            log.log_end_offset()
        };
        let (high_watermark, _) = watch::channel(initial_high_watermark);
        let replicated = Arc::new(Replicated {
            state: Mutex::new(ReplicaState::new(node_id, log.log_end_offset())),
            high_watermark,
            leadership: watch::channel((Role::Offline, -1)).0,
        });
        let (log_end, _) = watch::channel(log.log_end_offset());
        let reencodes = std::sync::atomic::AtomicBool::new(log.config().compression_type.is_some());
        let compression_type_zstd =
            AtomicBool::new(log.config().compression_type == Some(quill_log::Compression::Zstd));
        Partition {
            topic: topic.to_string(),
            topic_id,
            partition,
            log: RwLock::new(Some(log)),
            log_start_offset,
            log_end_offset,
            first_unstable_offset,
            replicated,
            log_end,
            min_insync_replicas: AtomicI32::new(1),
            reencodes,
            compression_type_zstd,
        }
    }

    /// The topic's effective `min.insync.replicas` (what an acks=-1 produce needs in the ISR).
    pub fn min_insync_replicas(&self) -> i32 {
        self.min_insync_replicas.load(Ordering::Acquire)
    }

    /// Whether the topic's effective `compression.type` is zstd (then every batch is stored in
    /// zstd, which a Fetch below v10 cannot promise to read: Kafka refuses it).
    pub fn compression_type_is_zstd(&self) -> bool {
        self.compression_type_zstd.load(Ordering::Acquire)
    }

    pub fn offsets(&self) -> PartitionOffsets {
        let high_watermark = *self.replicated.high_watermark.borrow();
        PartitionOffsets {
            log_start_offset: self.log_start_offset.load(Ordering::Acquire),
            high_watermark,
            log_end_offset: self.log_end_offset.load(Ordering::Acquire),
            last_stable_offset: self
                .first_unstable_offset
                .load(Ordering::Acquire)
                .min(high_watermark),
        }
    }

    /// A receiver that changes whenever the high watermark moves.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.replicated.high_watermark.subscribe()
    }

    /// A receiver that changes whenever the log end offset moves (replica fetches wait on it).
    pub fn subscribe_log_end(&self) -> watch::Receiver<i64> {
        self.log_end.subscribe()
    }

    /// A receiver of (role, leader epoch), changed by every new leadership.
    pub fn subscribe_leadership(&self) -> watch::Receiver<(Role, i32)> {
        self.replicated.leadership.subscribe()
    }

    /// A copy of the replication state (role, ISR, followers).
    pub fn replica_state(&self) -> ReplicaState {
        self.replicated.lock().clone()
    }

    /// Applies the image's leader, epoch, replicas and ISR. True when the leadership changed
    /// (a new role or leader epoch).
    pub fn apply_assignment(&self, assignment: &Assignment, now_ms: i64) -> bool {
        let mut state = self.replicated.lock();
        let changed = state.apply_assignment(assignment, now_ms);
        if changed && state.is_leader() {
            state.leader_epoch_start_offset = self.log_end_offset.load(Ordering::Acquire);
        }
        self.replicated.publish_high_watermark(&state);
        let leadership = (state.role, state.leader_epoch);
        drop(state);
        self.replicated.leadership.send_if_modified(|current| {
            let moved = *current != leadership;
            *current = leadership;
            moved
        });
        changed
    }

    /// Blocking, brief: a new leader's epoch starts at its log end (Kafka's `makeLeader`), so
    /// OffsetForLeaderEpoch answers for it before anything is appended and followers of an
    /// older epoch find where they diverge.
    fn start_leader_epoch_if_leading(&self, assignment: &Assignment) {
        if !self.replicated.lock().is_leader() {
            return;
        }
        if let Some(log) = self.write_log().as_mut() {
            if let Err(error) = log.start_leader_epoch(assignment.leader_epoch) {
                tracing::warn!(topic = %self.topic, partition = self.partition, %error, "cannot record the new leader epoch");
            }
        }
    }

    /// The leader's record of a replica Fetch (`fetch_offset` is durable on `replica`, by
    /// Quill's rule); may move the high watermark. False when `replica` is no follower here.
    pub fn record_follower_fetch(&self, replica: i32, fetch_offset: i64, now_ms: i64) -> bool {
        let leader_end_offset = self.log_end_offset.load(Ordering::Acquire);
        let mut state = self.replicated.lock();
        if !state.record_follower_fetch(replica, fetch_offset, leader_end_offset, now_ms) {
            return false;
        }
        self.replicated.publish_high_watermark(&state);
        true
    }

    /// A follower's record of the leader's high watermark from a fetch response.
    pub fn record_leader_high_watermark(&self, high_watermark: i64) {
        let mut state = self.replicated.lock();
        state.record_leader_high_watermark(high_watermark);
        self.replicated.publish_high_watermark(&state);
    }

    /// Records an ISR this leader asked the controller for, until the image commits (or
    /// replaces) it: the high watermark counts both meanwhile (KIP-497).
    pub fn set_pending_isr(&self, pending: Option<Vec<i32>>) {
        let mut state = self.replicated.lock();
        state.pending_isr = pending;
        self.replicated.publish_high_watermark(&state);
    }

    fn read_log(&self) -> RwLockReadGuard<'_, Option<Log>> {
        self.log
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `read` with the log under its read lock, on the blocking pool.
    async fn read_on_blocking_pool<T: Send + 'static>(
        self: &Arc<Self>,
        read: impl FnOnce(&Log) -> Result<T, PartitionError> + Send + 'static,
    ) -> Result<T, PartitionError> {
        let partition = self.clone();
        run_blocking(move || {
            let guard = partition.read_log();
            read(guard.as_ref().ok_or(PartitionError::Gone)?)
        })
        .await
    }

    fn write_log(&self) -> RwLockWriteGuard<'_, Option<Log>> {
        self.log
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn publish_offsets(&self, log: &Log) {
        self.log_start_offset
            .store(log.log_start_offset(), Ordering::Release);
        self.log_end_offset
            .store(log.log_end_offset(), Ordering::Release);
        self.first_unstable_offset
            .store(log.first_unstable_offset(), Ordering::Release);
        let log_end_offset = log.log_end_offset();
        self.log_end.send_if_modified(|current| {
            let moved = *current != log_end_offset;
            *current = log_end_offset;
            moved
        });
    }

    /// Records this broker's durable end as `log_end_offset` once everything below it is
    /// durable (at once for the interval/OS flush policies), which may move the high
    /// watermark. Runs the callback on the committer thread.
    fn advance_high_watermark_when_durable(&self, log: &Log) {
        let through_offset = log.log_end_offset();
        let replicated = Arc::clone(&self.replicated);
        log.on_durable(
            through_offset,
            Box::new(move |result| {
                if result.is_ok() {
                    replicated.local_data_durable(through_offset);
                }
            }),
        );
    }

    /// A coordinator's append (blocking pool), stamped with the leader epoch this broker leads
    /// the partition in. Returns once the data is in the log (page cache), not yet durable:
    /// see [`Partition::wait_committed`].
    pub async fn append(
        self: &Arc<Self>,
        batches: Bytes,
        now_ms: i64,
    ) -> Result<AppendInfo, PartitionError> {
        let leader_epoch = self.replica_state().leader_epoch.max(0);
        self.append_as(batches, now_ms, leader_epoch, false).await
    }

    /// Only the leader writes leader batches: a broker that lost the leadership (a coordinator
    /// that has not unloaded yet, a request racing the change) is refused, so a follower's log
    /// only ever holds what its leader wrote.
    fn check_leader(&self) -> Result<(), PartitionError> {
        if self.replicated.lock().is_leader() {
            Ok(())
        } else {
            Err(PartitionError::NotLeader)
        }
    }

    /// [`Partition::append`]; with `continuing_transaction_only` a transactional batch is
    /// written only if it continues its producer's open transaction here
    /// (`Log::append_validated_continuing_transaction`), else `LogError::TransactionNotOpen`.
    pub async fn append_as(
        self: &Arc<Self>,
        batches: Bytes,
        now_ms: i64,
        leader_epoch: i32,
        continuing_transaction_only: bool,
    ) -> Result<AppendInfo, PartitionError> {
        // Decoding compressed batches is CPU-bound: only a few run at once, so hostile
        // batches cannot occupy the blocking pool (their memory is reserved below).
        let mut decoding =
            if holds_compressed_batch(&batches) || self.reencodes.load(Ordering::Acquire) {
                Some(acquire_decode_permit().await?)
            } else {
                None
            };
        let partition = self.clone();
        run_blocking(move || {
            // Decoding every record (decompressing) is the expensive part: it runs here on the
            // blocking pool before the write lock, so other appends and reads are not held up.
            let config = {
                let guard = partition.read_log();
                guard.as_ref().ok_or(PartitionError::Gone)?.config().clone()
            };
            let topic_partition = format!("{}-{}", partition.topic, partition.partition);
            // Held until the append is written: a re-encoded request's new bytes count too.
            let (validated, _decode_memory) = validate_within_decode_budget(
                &batches,
                &config,
                &topic_partition,
                now_ms,
                &mut decoding,
            )?;
            let mut guard = partition.write_log();
            let log = guard.as_mut().ok_or(PartitionError::Gone)?;
            partition.check_leader()?;
            let context = AppendContext {
                now_ms,
                leader_epoch,
            };
            let info = if continuing_transaction_only {
                log.append_validated_continuing_transaction(&validated, context)?
            } else {
                log.append_validated(&validated, context)?
            };
            partition.publish_offsets(log);
            partition.advance_high_watermark_when_durable(log);
            Ok(info)
        })
        .await
    }

    /// Completes once every offset below `through_offset` is durable per the flush policy.
    /// The log's committer thread fires a oneshot, so no runtime thread blocks on fsync. The
    /// registration needs the log lock: taken without waiting when free, else (an append or
    /// maintenance holds it) on the blocking pool, never blocking a runtime worker.
    pub async fn wait_durable(self: &Arc<Self>, through_offset: i64) -> Result<(), PartitionError> {
        let (done_tx, done_rx) = oneshot::channel();
        let notify: quill_log::DurabilityCallback = Box::new(move |result| {
            let _ = done_tx.send(result);
        });
        if let Some(notify) = self.try_on_durable(through_offset, notify)? {
            let partition = self.clone();
            run_blocking(move || {
                let guard = partition.read_log();
                let log = guard.as_ref().ok_or(PartitionError::Gone)?;
                log.on_durable(through_offset, notify);
                Ok(())
            })
            .await?;
        }
        match done_rx.await {
            Ok(result) => result.map_err(PartitionError::from),
            Err(_) => Err(PartitionError::Gone),
        }
    }

    /// acks=all (Kafka's DelayedProduce): completes once the high watermark reaches
    /// `through_offset`, i.e. every member of the (maximal) ISR has it durably, and returns the
    /// maximal ISR's size then (for `min.insync.replicas`). `Err(NotLeader)` when this broker
    /// stops leading in `leader_epoch` first: the records may never be committed.
    pub async fn wait_replicated(
        &self,
        through_offset: i64,
        leader_epoch: i32,
    ) -> Result<usize, NotLeader> {
        let mut high_watermark = self.replicated.high_watermark.subscribe();
        let mut leadership = self.replicated.leadership.subscribe();
        loop {
            if *leadership.borrow_and_update() != (Role::Leader, leader_epoch) {
                return Err(NotLeader);
            }
            if *high_watermark.borrow_and_update() >= through_offset {
                return Ok(self.replicated.lock().maximal_isr().len());
            }
            tokio::select! {
                changed = high_watermark.changed() => if changed.is_err() { return Err(NotLeader) },
                changed = leadership.changed() => if changed.is_err() { return Err(NotLeader) },
            }
        }
    }

    /// A coordinator's or a marker's wait (Kafka appends them with acks=all): durable here,
    /// then committed — below the high watermark, so on every ISR member — while this broker
    /// leads in the epoch it leads in now. No deadline of its own: the ISR shrinks within
    /// `replica.lag.time.max.ms` when a member stops, which lets the high watermark move.
    pub async fn wait_committed(
        self: &Arc<Self>,
        through_offset: i64,
    ) -> Result<(), PartitionError> {
        self.wait_durable(through_offset).await?;
        let leader_epoch = self.replica_state().leader_epoch;
        self.wait_replicated(through_offset, leader_epoch)
            .await
            .map(|_| ())
            .map_err(|NotLeader| PartitionError::NotLeader)
    }

    /// Registers `notify` if the log lock is free right now; hands it back if it is not.
    fn try_on_durable(
        &self,
        through_offset: i64,
        notify: quill_log::DurabilityCallback,
    ) -> Result<Option<quill_log::DurabilityCallback>, PartitionError> {
        let guard = match self.log.try_read() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return Ok(Some(notify)),
        };
        let log = guard.as_ref().ok_or(PartitionError::Gone)?;
        log.on_durable(through_offset, notify);
        Ok(None)
    }

    /// Reads whole batches from `from_offset` (blocking pool), never above the high watermark.
    /// At least one batch when `min_one_batch` (KIP-74), else never more than `max_bytes`.
    /// The read is located under the log lock and done after releasing it, so a cold read of
    /// many megabytes never holds up this partition's appends.
    pub async fn read(
        self: &Arc<Self>,
        from_offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> Result<ReadResult, PartitionError> {
        let partition = self.clone();
        run_blocking(move || {
            let planned = {
                let guard = partition.read_log();
                let log = guard.as_ref().ok_or(PartitionError::Gone)?;
                let high_watermark = *partition.replicated.high_watermark.borrow();
                log.plan_read(from_offset, max_bytes, high_watermark, min_one_batch)?
            };
            Ok(planned.execute()?)
        })
        .await
    }

    /// A replica Fetch's read: whole batches from `from_offset` up to the log end (followers
    /// replicate what the leader has, not only what is committed), as [`Partition::read`].
    pub async fn read_to_log_end(
        self: &Arc<Self>,
        from_offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> Result<ReadResult, PartitionError> {
        let partition = self.clone();
        run_blocking(move || {
            let planned = {
                let guard = partition.read_log();
                let log = guard.as_ref().ok_or(PartitionError::Gone)?;
                log.plan_read(from_offset, max_bytes, log.log_end_offset(), min_one_batch)?
            };
            Ok(planned.execute()?)
        })
        .await
    }

    /// read_committed: whole batches from `from_offset` below the last stable offset, and the
    /// aborted transactions overlapping what was read (clients drop their records).
    pub async fn read_committed(
        self: &Arc<Self>,
        from_offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> Result<(ReadResult, Vec<AbortedTransaction>), PartitionError> {
        let partition = self.clone();
        run_blocking(move || {
            let planned = {
                let guard = partition.read_log();
                let log = guard.as_ref().ok_or(PartitionError::Gone)?;
                let high_watermark = *partition.replicated.high_watermark.borrow();
                let last_stable_offset = log.first_unstable_offset().min(high_watermark);
                log.plan_read(from_offset, max_bytes, last_stable_offset, min_one_batch)?
            };
            // The disk read happens without the lock (see `read`).
            let read = planned.execute()?;
            let aborted = if read.bytes.is_empty() {
                Vec::new()
            } else {
                let guard = partition.read_log();
                let log = guard.as_ref().ok_or(PartitionError::Gone)?;
                log.aborted_transactions(from_offset, read.next_offset)
            };
            Ok((read, aborted))
        })
        .await
    }

    /// A follower's append of the leader's batches as they are (offsets, epochs, producer
    /// fields; `Log::append_as_follower`, blocking pool). Durable later, as a leader append:
    /// see [`Partition::wait_durable`].
    pub async fn append_as_follower(
        self: &Arc<Self>,
        batches: Bytes,
    ) -> Result<(), PartitionError> {
        let partition = self.clone();
        run_blocking(move || {
            let mut guard = partition.write_log();
            let log = guard.as_mut().ok_or(PartitionError::Gone)?;
            log.append_as_follower(&batches, crate::clock::now_ms())?;
            partition.publish_offsets(log);
            partition.advance_high_watermark_when_durable(log);
            Ok(())
        })
        .await
    }

    /// Cuts the log back to `offset` (a follower's truncation to the divergence point; nothing
    /// at or above `offset` survives). The durable end and the high watermark follow it down:
    /// a follower's high watermark only mirrors the leader's, and no consumer reads here.
    pub async fn truncate_to(self: &Arc<Self>, offset: i64) -> Result<(), PartitionError> {
        let partition = self.clone();
        run_blocking(move || {
            let mut guard = partition.write_log();
            let log = guard.as_mut().ok_or(PartitionError::Gone)?;
            if offset < log.log_start_offset() {
                // Kafka: a truncation point below the log start empties the log there.
                log.truncate_fully_and_start_at(offset)?;
            } else if offset < log.log_end_offset() {
                log.truncate_to(offset)?;
            }
            partition.publish_offsets(log);
            let end = log.log_end_offset();
            let mut state = partition.replicated.lock();
            state.local_durable_end_offset = state.local_durable_end_offset.min(end);
            partition
                .replicated
                .high_watermark
                .send_if_modified(|current| {
                    let moved = *current > end;
                    *current = (*current).min(end);
                    moved
                });
            Ok(())
        })
        .await
    }

    /// A follower whose log ends below the leader's log start (the leader deleted what it
    /// needs next): empties the log and starts it at `offset` (Kafka's
    /// `truncateFullyAndStartAt`), so it can fetch on from there.
    pub async fn truncate_fully_and_start_at(
        self: &Arc<Self>,
        offset: i64,
    ) -> Result<(), PartitionError> {
        let partition = self.clone();
        run_blocking(move || {
            let mut guard = partition.write_log();
            let log = guard.as_mut().ok_or(PartitionError::Gone)?;
            log.truncate_fully_and_start_at(offset)?;
            partition.publish_offsets(log);
            let mut state = partition.replicated.lock();
            state.local_durable_end_offset = offset;
            // The high watermark of an emptied follower is where it starts again.
            partition.replicated.high_watermark.send_replace(offset);
            Ok(())
        })
        .await
    }

    /// The latest leader epoch in the log (`None` before any batch with an epoch).
    pub async fn latest_epoch(self: &Arc<Self>) -> Result<Option<i32>, PartitionError> {
        self.read_on_blocking_pool(move |log| Ok(log.latest_epoch()))
            .await
    }

    /// Kafka's `endOffsetFor(epoch)`: the largest epoch at or below `epoch` in the log and
    /// where it ends (the next epoch's start, or the log end for the latest); `None` when the
    /// log knows no such epoch.
    pub async fn end_offset_for_epoch(
        self: &Arc<Self>,
        epoch: i32,
    ) -> Result<Option<(i32, i64)>, PartitionError> {
        self.read_on_blocking_pool(move |log| Ok(log.end_offset_for_epoch(epoch)))
            .await
    }

    /// Writes a COMMIT/ABORT marker (blocking pool); returns once it is in the log, not yet
    /// durable (see [`Partition::wait_durable`]).
    pub async fn append_control(
        self: &Arc<Self>,
        producer_id: i64,
        producer_epoch: i16,
        marker: ControlMarker,
        coordinator_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, PartitionError> {
        let partition = self.clone();
        run_blocking(move || {
            let mut guard = partition.write_log();
            let log = guard.as_mut().ok_or(PartitionError::Gone)?;
            partition.check_leader()?;
            let info = log.append_control(
                producer_id,
                producer_epoch,
                marker,
                coordinator_epoch,
                now_ms,
            )?;
            partition.publish_offsets(log);
            partition.advance_high_watermark_when_durable(log);
            Ok(info)
        })
        .await
    }

    /// DescribeProducers: the producers this partition knows.
    pub async fn producers(self: &Arc<Self>) -> Result<Vec<ProducerSnapshot>, PartitionError> {
        self.read_on_blocking_pool(move |log| Ok(log.producers()))
            .await
    }

    pub async fn offset_for_timestamp(
        self: &Arc<Self>,
        timestamp_ms: i64,
    ) -> Result<Option<TimestampOffset>, PartitionError> {
        self.read_on_blocking_pool(move |log| Ok(log.offset_for_timestamp(timestamp_ms)?))
            .await
    }

    pub async fn max_timestamp_offset(
        self: &Arc<Self>,
    ) -> Result<Option<TimestampOffset>, PartitionError> {
        self.read_on_blocking_pool(move |log| Ok(log.max_timestamp_offset()?))
            .await
    }

    /// DeleteRecords: moves the log start offset up to `offset`; returns the new start.
    pub async fn delete_records_before(
        self: &Arc<Self>,
        offset: i64,
    ) -> Result<i64, PartitionError> {
        let partition = self.clone();
        run_blocking(move || {
            let mut guard = partition.write_log();
            let log = guard.as_mut().ok_or(PartitionError::Gone)?;
            let new_start = log.delete_records_before(offset)?;
            partition.publish_offsets(log);
            Ok(new_start)
        })
        .await
    }

    /// The lock the cleaner plans and swaps under (`quill_log::LogHandle`).
    pub fn log_handle(&self) -> &RwLock<Option<Log>> {
        &self.log
    }

    /// Whether the log was closed or deleted.
    pub fn is_closed(&self) -> bool {
        self.read_log().is_none()
    }

    /// Blocking (brief read lock): how dirty a compacted log is, with its
    /// `min.cleanable.dirty.ratio`; `None` unless `cleanup.policy` includes `compact`.
    pub fn cleanable_stats(&self, now_ms: i64) -> Option<(CleanableStats, f64)> {
        let guard = self.read_log();
        let log = guard.as_ref()?;
        let stats = log.cleanable_stats(now_ms)?;
        Some((stats, log.config().compaction.min_cleanable_dirty_ratio))
    }

    pub fn size_bytes(&self) -> u64 {
        self.read_log().as_ref().map_or(0, Log::size_bytes)
    }

    /// Blocking, brief: `flush.ms` (the sync itself runs on the group-commit thread).
    fn request_due_flush(&self, now_ms: i64) {
        if let Some(log) = self.write_log().as_mut() {
            log.flush_if_due(now_ms);
        }
    }

    /// Blocking (takes the log's read lock), for metrics.
    pub fn segment_count(&self) -> usize {
        self.read_log().as_ref().map_or(0, Log::segment_count)
    }

    /// Blocking: retention, producer expiry and the recovery-point checkpoint. The partition's
    /// lock is held only to plan and to record the outcome: segment deletes and the checkpoint's
    /// fsyncs run without it, so producers and fetchers never wait for them.
    fn run_maintenance(&self, now_ms: i64, producer_id_expiration_ms: i64, checkpoint: bool) {
        self.record_high_watermark();
        // `checkpoint`: records how far the log is known to be on disk, so a restart after a
        // crash validates only the tail written since (Kafka:
        // log.flush.offset.checkpoint.interval.ms).
        let outcome = quill_log::run_maintenance(
            &self.log,
            now_ms,
            producer_id_expiration_ms,
            checkpoint,
            |log, work| {
                if work.removes_segments() {
                    self.publish_offsets(log);
                }
            },
        );
        match outcome {
            None | Some(Ok(0)) => {}
            Some(Ok(deleted)) => {
                tracing::info!(topic = %self.topic, partition = self.partition, segments = deleted, "retention deleted segments");
            }
            Some(Err(error)) => {
                crate::warn_limited!(MAINTENANCE_WARNINGS, topic = %self.topic, partition = self.partition, %error, "retention or recovery-point checkpoint failed")
            }
        }
    }

    /// Blocking, brief: hands the high watermark to the log, which checkpoints it (a restart
    /// starts from it) and keeps retention and the cleaner below it.
    fn record_high_watermark(&self) {
        let high_watermark = *self.replicated.high_watermark.borrow();
        if let Some(log) = self.read_log().as_ref() {
            log.record_high_watermark(high_watermark);
        }
    }

    /// Blocking: takes the log out so no request can use it any more.
    fn take_log(&self) -> Option<Log> {
        self.write_log().take()
    }
}

/// Runs blocking log work on tokio's blocking pool.
async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, PartitionError> + Send + 'static,
) -> Result<T, PartitionError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| PartitionError::Task(error.to_string()))?
}

pub type PartitionKey = (String, i32);

/// All partitions hosted by this broker.
pub struct PartitionManager {
    data_dir: PathBuf,
    node_id: i32,
    committer: GroupCommitter,
    partitions: RwLock<HashMap<PartitionKey, Arc<Partition>>>,
    /// Hosted partitions whose log could not be opened, with when to try again. Keyed by
    /// partitions of the image only (entries of partitions no longer hosted are dropped).
    failed_opens: Mutex<HashMap<PartitionKey, OpenRetry>>,
}

/// Backoff for a partition log that failed to open (full disk, no file descriptors): retried
/// by later reconciles and by maintenance, first after `FIRST_OPEN_RETRY`, doubling.
#[derive(Debug, Clone, Copy)]
struct OpenRetry {
    next_attempt: Instant,
    backoff: Duration,
}

const FIRST_OPEN_RETRY: Duration = Duration::from_secs(1);
const MAX_OPEN_RETRY: Duration = Duration::from_secs(60);

static LOG_OPEN_WARNINGS: WarnLimiter = WarnLimiter::new(WARNING_INTERVAL);
/// Maintenance failures repeat per partition and tick while a disk is full.
static MAINTENANCE_WARNINGS: WarnLimiter = WarnLimiter::new(WARNING_INTERVAL);

impl PartitionManager {
    pub fn new(data_dir: &Path, node_id: i32) -> Result<PartitionManager, LogError> {
        Ok(PartitionManager {
            data_dir: data_dir.to_path_buf(),
            node_id,
            committer: GroupCommitter::start()?,
            partitions: RwLock::new(HashMap::new()),
            failed_opens: Mutex::new(HashMap::new()),
        })
    }

    /// fsync latencies and group-commit batch sizes (for metrics).
    pub fn commit_stats(&self) -> &quill_log::stats::CommitStats {
        self.committer.stats()
    }

    pub fn get(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        let partitions = self
            .partitions
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        partitions.get(&(topic.to_string(), partition)).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Partition>> {
        let partitions = self
            .partitions
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        partitions.values().cloned().collect()
    }

    /// Kafka's layout: `<data-dir>/<topic>-<partition>/`.
    pub fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.data_dir.join(format!("{topic}-{partition}"))
    }

    /// Blocking. Makes the hosted logs match `image`: deletes logs of topics that are gone (or
    /// were re-created under a new id), opens logs for new partitions led here, and applies
    /// changed topic configs. Returns the first error but keeps reconciling the rest.
    pub fn reconcile(
        &self,
        image: &MetadataImage,
        broker_config: &BrokerConfig,
    ) -> Result<(), LogError> {
        let mut first_error = None;
        for partition in self.remove_stale(image) {
            let Some(log) = partition.take_log() else {
                continue;
            };
            tracing::info!(topic = %partition.topic, partition = partition.partition, "deleting partition log");
            if let Err(error) = log.delete() {
                tracing::error!(topic = %partition.topic, partition = partition.partition, %error, "could not delete partition log");
                first_error.get_or_insert(error);
            }
        }
        let static_settings = broker_config.static_settings();
        let layers = BrokerConfigLayers::from_image(image, self.node_id, &static_settings);
        let now = Instant::now();
        self.forget_failed_opens_not_in(image);
        for topic in image.topics.values() {
            let config = log_config_for(topic, &layers);
            let min_insync_replicas =
                topic_config::effective_topic_configs(&topic.configs, &layers)
                    .get("min.insync.replicas")
                    .and_then(|value| value.trim().parse::<i32>().ok())
                    .unwrap_or(1);
            for info in &topic.partitions {
                if !info.replicas.contains(&self.node_id) {
                    continue;
                }
                let key = (topic.name.clone(), info.partition);
                if self.open_retry_pending(&key, now) {
                    continue; // failed recently: retried once its backoff has passed
                }
                let opened = self.ensure_open(topic, info, &config);
                if let Some(partition) = self.get(&topic.name, info.partition) {
                    partition
                        .min_insync_replicas
                        .store(min_insync_replicas, Ordering::Release);
                    partition
                        .reencodes
                        .store(config.compression_type.is_some(), Ordering::Release);
                    partition.compression_type_zstd.store(
                        config.compression_type == Some(quill_log::Compression::Zstd),
                        Ordering::Release,
                    );
                }
                match opened {
                    Ok(()) => self.forget_failed_open(&key),
                    Err(error) => {
                        let retry_in = self.note_failed_open(key, now);
                        crate::warn_limited!(LOG_OPEN_WARNINGS, topic = %topic.name, partition = info.partition, %error, retry_in_ms = retry_in.as_millis(), "could not open partition log");
                        // Report a real fault (corruption) before a passing shortage.
                        if first_error.as_ref().is_none_or(is_resource_exhaustion) {
                            first_error = Some(error);
                        }
                    }
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// True while some hosted partition has no open log (maintenance then reconciles again).
    pub fn has_failed_opens(&self) -> bool {
        !self.lock_failed_opens().is_empty()
    }

    /// Partitions hosted here whose log could not be opened (Kafka's offline replicas).
    pub fn failed_open_count(&self) -> usize {
        self.lock_failed_opens().len()
    }

    fn lock_failed_opens(&self) -> std::sync::MutexGuard<'_, HashMap<PartitionKey, OpenRetry>> {
        self.failed_opens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn open_retry_pending(&self, key: &PartitionKey, now: Instant) -> bool {
        self.lock_failed_opens()
            .get(key)
            .is_some_and(|retry| now < retry.next_attempt)
    }

    /// Records a failed open and returns how long until the next attempt.
    fn note_failed_open(&self, key: PartitionKey, now: Instant) -> Duration {
        let mut failed = self.lock_failed_opens();
        let backoff = failed.get(&key).map_or(FIRST_OPEN_RETRY, |retry| {
            (retry.backoff * 2).min(MAX_OPEN_RETRY)
        });
        failed.insert(
            key,
            OpenRetry {
                next_attempt: now + backoff,
                backoff,
            },
        );
        backoff
    }

    fn forget_failed_open(&self, key: &PartitionKey) {
        self.lock_failed_opens().remove(key);
    }

    fn forget_failed_opens_not_in(&self, image: &MetadataImage) {
        self.lock_failed_opens().retain(|(topic, partition), _| {
            image
                .topic(topic)
                .and_then(|topic| topic.partition(*partition))
                .is_some_and(|info| info.replicas.contains(&self.node_id))
        });
    }

    /// Blocking. Opens the logs of partitions that `next` hosts here and `current` does not
    /// (new topics, added partitions) *before* that metadata change is appended, so a change
    /// whose logs cannot be created (full disk, no file descriptors) is refused and creates
    /// nothing. On error every log opened here is deleted again. Returns what it opened, for
    /// [`Self::discard`] if the append then fails.
    pub fn open_new_partitions(
        &self,
        current: &MetadataImage,
        next: &MetadataImage,
        broker_config: &BrokerConfig,
    ) -> Result<Vec<PartitionKey>, LogError> {
        let static_settings = broker_config.static_settings();
        let layers = BrokerConfigLayers::from_image(next, self.node_id, &static_settings);
        let mut opened = Vec::new();
        for topic in next.topics.values() {
            let existing = current
                .topic(&topic.name)
                .filter(|existing| existing.topic_id == topic.topic_id);
            let config = log_config_for(topic, &layers);
            for info in &topic.partitions {
                let is_new =
                    existing.is_none_or(|existing| existing.partition(info.partition).is_none());
                if !is_new || !info.replicas.contains(&self.node_id) {
                    continue;
                }
                let dir = self.partition_dir(&topic.name, info.partition);
                let dir_existed = dir.exists();
                if let Err(error) = self.ensure_open(topic, info, &config) {
                    self.discard(opened);
                    if !dir_existed {
                        let _ = std::fs::remove_dir_all(&dir);
                    }
                    return Err(error);
                }
                opened.push((topic.name.clone(), info.partition));
            }
        }
        Ok(opened)
    }

    /// Blocking: deletes logs opened by [`Self::open_new_partitions`] for a change that was not
    /// appended after all.
    pub fn discard(&self, keys: Vec<PartitionKey>) {
        for key in keys {
            let removed = self
                .partitions
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .remove(&key);
            let Some(log) = removed.and_then(|partition| partition.take_log()) else {
                continue;
            };
            if let Err(error) = log.delete() {
                tracing::error!(topic = %key.0, partition = key.1, %error, "could not delete the log of a refused change (removed at the next start)");
            }
        }
    }

    fn remove_stale(&self, image: &MetadataImage) -> Vec<Arc<Partition>> {
        let mut partitions = self
            .partitions
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let stale: Vec<PartitionKey> = partitions
            .iter()
            .filter(|(_, partition)| {
                let still_hosted = image
                    .topic(&partition.topic)
                    .filter(|topic| topic.topic_id == partition.topic_id)
                    .and_then(|topic| topic.partition(partition.partition))
                    .is_some_and(|info| info.replicas.contains(&self.node_id));
                !still_hosted
            })
            .map(|(key, _)| key.clone())
            .collect();
        stale
            .into_iter()
            .filter_map(|key| partitions.remove(&key))
            .collect()
    }

    /// Opens (or re-configures) the log of a partition hosted here and applies the image's
    /// leader, epoch, replicas and ISR to it.
    fn ensure_open(
        &self,
        topic: &TopicInfo,
        info: &PartitionInfo,
        config: &LogConfig,
    ) -> Result<(), LogError> {
        let partition = info.partition;
        let assignment = Assignment {
            leader: info.leader,
            leader_epoch: info.leader_epoch,
            replicas: info.replicas.clone(),
            isr: info.isr.clone(),
        };
        if let Some(existing) = self.get(&topic.name, partition) {
            {
                let mut guard = existing.write_log();
                if let Some(log) = guard.as_mut() {
                    if log.config() != config {
                        log.set_config(config.clone());
                    }
                }
            }
            if existing.apply_assignment(&assignment, crate::clock::monotonic_ms()) {
                existing.start_leader_epoch_if_leading(&assignment);
            }
            return Ok(());
        }
        let dir = self.partition_dir(&topic.name, partition);
        match partition_marker::read(&dir) {
            Some(owner) if owner != topic.topic_id => {
                tracing::warn!(dir = %dir.display(), stale_topic_id = %owner, "removing data of a deleted topic with the same name");
                std::fs::remove_dir_all(&dir)?;
            }
            _ => {}
        }
        let log = Log::open(&dir, config.clone(), self.committer.clone())?;
        if partition_marker::read(&dir) != Some(topic.topic_id) {
            partition_marker::write(&dir, topic.topic_id)?;
        }
        let partition_state = Arc::new(Partition::new(
            &topic.name,
            topic.topic_id,
            partition,
            log,
            self.node_id,
            info.replicas.len() > 1,
        ));
        if partition_state.apply_assignment(&assignment, crate::clock::monotonic_ms()) {
            partition_state.start_leader_epoch_if_leading(&assignment);
        }
        let mut partitions = self
            .partitions
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        partitions.insert((topic.name.clone(), partition), partition_state);
        Ok(())
    }

    /// Blocking, at start-up: deletes partition directories whose `partition.metadata` names a
    /// topic that no longer exists (deleted while the broker was down, or a crash between the
    /// metadata append and the directory removal). Directories without a marker are left alone:
    /// they are not provably ours.
    pub fn remove_orphaned_dirs(&self, image: &MetadataImage) {
        let Ok(entries) = std::fs::read_dir(&self.data_dir) else {
            return;
        };
        for entry in entries.flatten() {
            let dir = entry.path();
            let Some(owner) = partition_marker::read(&dir) else {
                continue;
            };
            if image.topic_by_id(&owner).is_some() {
                continue;
            }
            tracing::warn!(dir = %dir.display(), topic_id = %owner, "removing the partition directory of a deleted topic");
            if let Err(error) = std::fs::remove_dir_all(&dir) {
                tracing::error!(dir = %dir.display(), %error, "could not remove orphaned partition directory");
            }
        }
    }

    /// Blocking, brief: asks every log whose `flush.ms` has passed for a background sync.
    pub fn request_due_flushes(&self, now_ms: i64) {
        for partition in self.all() {
            partition.request_due_flush(now_ms);
        }
    }

    /// Blocking: retention, expiry of idle producers (`producer.id.expiration.ms`) and (when
    /// `checkpoint`) the recovery-point checkpoint of every partition.
    pub fn run_maintenance(
        &self,
        now_ms: i64,
        producer_id_expiration_ms: i64,
        checkpoint: bool,
        threads: usize,
    ) {
        run_on_workers(&self.all(), threads, |partition| {
            partition.run_maintenance(now_ms, producer_id_expiration_ms, checkpoint);
        });
    }

    /// Blocking: closes every log cleanly (flush + clean-shutdown marker).
    pub fn close_all(&self) {
        let partitions: Vec<Arc<Partition>> = {
            let mut partitions = self
                .partitions
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            partitions.drain().map(|(_, partition)| partition).collect()
        };
        for partition in partitions {
            partition.record_high_watermark();
            let Some(log) = partition.take_log() else {
                continue;
            };
            if let Err(error) = log.close() {
                tracing::error!(topic = %partition.topic, partition = partition.partition, %error, "could not close partition log cleanly");
            }
        }
    }
}

/// How many appends may decode compressed (or re-encode) batches at once: decoding is
/// CPU-bound, so more would not help. Their memory is reserved from the decode budget.
const MAX_COMPRESSED_DECODES: usize = 4;
static COMPRESSED_DECODES: tokio::sync::Semaphore =
    tokio::sync::Semaphore::const_new(MAX_COMPRESSED_DECODES);

type DecodePermit = tokio::sync::SemaphorePermit<'static>;

async fn acquire_decode_permit() -> Result<DecodePermit, PartitionError> {
    COMPRESSED_DECODES
        .acquire()
        .await
        .map_err(|_| PartitionError::Task("decode permits closed".to_string()))
}

/// The decompressed-size limit of a request's first validation: most batches decompress to
/// less than 16 times their size, so they are decoded once with a small reservation; a batch
/// that decompresses to more is validated again with `MAX_DECOMPRESSED_BATCH_BYTES` reserved.
fn first_decode_limit_bytes(request_bytes: usize) -> usize {
    request_bytes
        .saturating_mul(16)
        .clamp(1024 * 1024, quill_log::MAX_DECOMPRESSED_BATCH_BYTES)
}

/// Blocking: validates `batches` with the memory its decoding may hold
/// (`quill_log::decode_memory_bytes`) reserved from the broker's decode budget, and returns
/// the reservation with the result. Takes a decode permit first if the request needs decoding
/// and holds none (`compression.type` set since the append started: waits on this thread).
fn validate_within_decode_budget<'a>(
    batches: &'a [u8],
    config: &LogConfig,
    topic_partition: &str,
    now_ms: i64,
    permit: &mut Option<DecodePermit>,
) -> Result<
    (
        quill_log::ValidatedAppend<'a>,
        Option<crate::budget::DecodeReservation>,
    ),
    PartitionError,
> {
    let mut limit_bytes = first_decode_limit_bytes(batches.len());
    loop {
        let charge_bytes = quill_log::decode_memory_bytes(batches, config, limit_bytes);
        let reservation = if charge_bytes == 0 {
            None
        } else {
            if permit.is_none() {
                let runtime = tokio::runtime::Handle::try_current()
                    .map_err(|error| PartitionError::Task(error.to_string()))?;
                *permit = Some(runtime.block_on(acquire_decode_permit())?);
            }
            Some(
                crate::budget::reserve_decode_memory_blocking(charge_bytes)
                    .ok_or_else(|| PartitionError::Task("decode budget unavailable".to_string()))?,
            )
        };
        match quill_log::validate_append_within(
            batches,
            config,
            topic_partition,
            now_ms,
            limit_bytes,
        ) {
            Err(LogError::RecordTooLarge { setting, .. })
                if setting == quill_log::DECOMPRESSED_LIMIT_SETTING
                    && limit_bytes < quill_log::MAX_DECOMPRESSED_BATCH_BYTES =>
            {
                // Released before the larger reservation is waited for, so no append ever
                // holds part of the pool while waiting for more.
                drop(reservation);
                limit_bytes = quill_log::MAX_DECOMPRESSED_BATCH_BYTES;
            }
            result => return Ok((result?, reservation)),
        }
    }
}

/// Whether any batch in a Produce partition's records is compressed (headers only; a malformed
/// one is left to the validation, which refuses it).
fn holds_compressed_batch(batches: &[u8]) -> bool {
    let mut rest = batches;
    while let Ok(header) = quill_log::BatchHeader::parse(rest) {
        if header.compression_codec() != 0 {
            return true;
        }
        match rest.get(header.size_bytes..) {
            Some(next) if !next.is_empty() => rest = next,
            _ => return false,
        }
    }
    false
}

/// Runs `work` once for each item on at most `workers` threads (`background.threads`), each
/// taking the next item when it is done with one, so a slow partition (a cold retention
/// delete, an fsync) holds up only its own thread. Returns when every item is done.
fn run_on_workers<T: Sync>(items: &[T], workers: usize, work: impl Fn(&T) + Sync) {
    let workers = workers.clamp(1, items.len().max(1));
    if workers == 1 {
        items.iter().for_each(work);
        return;
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let drain = || {
        while let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) {
            work(item);
        }
    };
    std::thread::scope(|scope| {
        // The calling thread is one of the workers, so the work gets done even when no
        // thread can be started (thread limits are a resource like any other).
        for _ in 1..workers {
            let started = std::thread::Builder::new()
                .name("quill-maintenance".to_string())
                .spawn_scoped(scope, drain);
            if let Err(error) = started {
                crate::warn_limited!(MAINTENANCE_WARNINGS, %error, "could not start a maintenance thread");
                break;
            }
        }
        drain();
    });
}

/// True for errors that last only while a resource is short (full disk or quota, no file
/// descriptors): the broker keeps running, refuses what needs the resource, and retries.
pub fn is_resource_exhaustion(error: &LogError) -> bool {
    const ENFILE: i32 = 23;
    const EMFILE: i32 = 24;
    const ENOSPC: i32 = 28;
    const EDQUOT: i32 = 122;
    matches!(error, LogError::Io(io) if matches!(io.raw_os_error(), Some(ENFILE | EMFILE | ENOSPC | EDQUOT)))
}

/// The log settings of a topic: its explicit configs, else dynamic/static broker configs, else
/// Kafka's defaults (quill-meta resolves the precedence).
pub fn log_config_for(topic: &TopicInfo, layers: &BrokerConfigLayers<'_>) -> LogConfig {
    let effective = topic_config::effective_topic_configs(&topic.configs, layers);
    let defaults = LogConfig::default();
    let number = |name: &str| -> Option<i64> {
        effective
            .get(name)
            .and_then(|value| value.trim().parse::<i64>().ok())
    };
    let level = |name: &str, default: i32| -> i32 {
        number(name)
            .and_then(|value| i32::try_from(value).ok())
            .unwrap_or(default)
    };
    let timestamp_type = match effective.get("message.timestamp.type").map(String::as_str) {
        Some("LogAppendTime") => TimestampType::LogAppendTime,
        _ => TimestampType::CreateTime,
    };
    LogConfig {
        // Kafka's internal.segment.bytes, when a topic sets it, replaces segment.bytes (a
        // negative value acts as 0, as in Kafka: every batch is then too large).
        segment_bytes: match number(topic_config::INTERNAL_SEGMENT_BYTES) {
            Some(internal) => u64::try_from(internal).unwrap_or(0),
            None => number("segment.bytes")
                .and_then(|value| u64::try_from(value).ok())
                .unwrap_or(defaults.segment_bytes),
        },
        segment_ms: number("segment.ms").unwrap_or(defaults.segment_ms),
        index_interval_bytes: number("index.interval.bytes")
            .and_then(|value| u32::try_from(value).ok())
            .unwrap_or(defaults.index_interval_bytes),
        segment_index_bytes: number("segment.index.bytes")
            .and_then(|value| u32::try_from(value).ok())
            .unwrap_or(defaults.segment_index_bytes),
        max_message_bytes: number("max.message.bytes")
            .and_then(|value| u32::try_from(value).ok())
            .unwrap_or(defaults.max_message_bytes),
        timestamp_type,
        retention_ms: number("retention.ms").unwrap_or(defaults.retention_ms),
        retention_bytes: number("retention.bytes").unwrap_or(defaults.retention_bytes),
        segment_jitter_ms: number("segment.jitter.ms").unwrap_or(defaults.segment_jitter_ms),
        file_delete_delay_ms: number("file.delete.delay.ms")
            .unwrap_or(defaults.file_delete_delay_ms),
        cleanup_policy: effective
            .get("cleanup.policy")
            .and_then(|value| CleanupPolicy::parse(value))
            .unwrap_or(defaults.cleanup_policy),
        timestamp_before_max_ms: number("message.timestamp.before.max.ms")
            .unwrap_or(defaults.timestamp_before_max_ms),
        timestamp_after_max_ms: number("message.timestamp.after.max.ms")
            .unwrap_or(defaults.timestamp_after_max_ms),
        compression_type: match effective.get("compression.type").map(|v| v.trim()) {
            Some("uncompressed") => Some(Compression::None),
            Some("gzip") => Some(Compression::Gzip),
            Some("snappy") => Some(Compression::Snappy),
            Some("lz4") => Some(Compression::Lz4),
            Some("zstd") => Some(Compression::Zstd),
            // `producer`; quill-meta refuses anything else before it is stored.
            _ => None,
        },
        compression_levels: CompressionLevels {
            gzip: level("compression.gzip.level", defaults.compression_levels.gzip),
            lz4: level("compression.lz4.level", defaults.compression_levels.lz4),
            zstd: level("compression.zstd.level", defaults.compression_levels.zstd),
        },
        compaction: CompactionConfig {
            min_cleanable_dirty_ratio: effective
                .get("min.cleanable.dirty.ratio")
                .and_then(|value| value.trim().parse::<f64>().ok())
                .filter(|ratio| ratio.is_finite())
                .unwrap_or(defaults.compaction.min_cleanable_dirty_ratio),
            min_compaction_lag_ms: number("min.compaction.lag.ms")
                .unwrap_or(defaults.compaction.min_compaction_lag_ms),
            max_compaction_lag_ms: number("max.compaction.lag.ms")
                .unwrap_or(defaults.compaction.max_compaction_lag_ms),
            delete_retention_ms: number("delete.retention.ms")
                .unwrap_or(defaults.compaction.delete_retention_ms),
        },
        flush: FlushPolicy::from_kafka(
            number("flush.messages").unwrap_or(1),
            number("flush.ms").unwrap_or(i64::MAX),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Only appends holding a compressed batch take a decode permit.
    #[test]
    fn compressed_batches_are_recognized_among_the_request_batches() {
        use quill_log::testing::build_simple_batch;
        use quill_log::{BatchEncoder, BatchFields, Compression, CompressionLevels};

        let plain = build_simple_batch(0, 3, 10);
        assert!(!holds_compressed_batch(&plain));
        let mut encoder = BatchEncoder::new(BatchFields::producer(0, 0));
        encoder.push_fields(0, 0, 0, Some(b"k"), Some(b"v"), &[]);
        let lz4 = encoder
            .finish(Compression::Lz4, CompressionLevels::default())
            .unwrap();
        assert!(holds_compressed_batch(&lz4));
        let both = [plain.clone(), lz4].concat();
        assert!(holds_compressed_batch(&both), "the second batch counts too");
        assert!(!holds_compressed_batch(b"not a batch"));
        assert!(!holds_compressed_batch(&plain[..20]));
    }

    /// `background.threads`: maintenance work is spread over that many threads, each item
    /// done exactly once; one thread means the calling thread alone.
    #[test]
    fn maintenance_runs_each_partition_once_on_at_most_background_threads() {
        use std::collections::HashSet;
        use std::sync::atomic::AtomicUsize;
        use std::sync::{Condvar, Mutex};

        let items: Vec<usize> = (0..40).collect();
        let done = Mutex::new(Vec::new());
        let threads = Mutex::new(HashSet::new());
        // The first three items each wait (bounded) until three run at once: only true
        // concurrency lets all three pass.
        let running = AtomicUsize::new(0);
        let gate = (Mutex::new(0usize), Condvar::new());
        let met = AtomicUsize::new(0);
        run_on_workers(&items, 3, |item| {
            threads.lock().unwrap().insert(std::thread::current().id());
            if *item < 3 {
                running.fetch_add(1, Ordering::SeqCst);
                let (count, wake) = &gate;
                let mut arrived = count.lock().unwrap();
                *arrived += 1;
                wake.notify_all();
                let (arrived, timeout) = wake
                    .wait_timeout_while(arrived, Duration::from_secs(20), |n| *n < 3)
                    .unwrap();
                if !timeout.timed_out() && *arrived >= 3 {
                    met.fetch_add(1, Ordering::SeqCst);
                }
            }
            done.lock().unwrap().push(*item);
        });
        let mut done = done.into_inner().unwrap();
        done.sort_unstable();
        assert_eq!(done, items, "every partition exactly once");
        assert_eq!(met.load(Ordering::SeqCst), 3, "three ran at the same time");
        assert!(threads.lock().unwrap().len() <= 3);

        let caller = std::thread::current().id();
        let seen = Mutex::new(HashSet::new());
        run_on_workers(&items, 1, |_| {
            seen.lock().unwrap().insert(std::thread::current().id());
        });
        assert_eq!(seen.into_inner().unwrap(), HashSet::from([caller]));
    }

    /// Every topic config that shapes the log reaches `LogConfig` (quill-log's tests prove
    /// each one's effect).
    #[test]
    fn log_config_carries_every_log_setting() {
        let configs = [
            ("segment.bytes", "2097152"),
            ("segment.ms", "5000"),
            ("segment.jitter.ms", "700"),
            ("index.interval.bytes", "100"),
            ("segment.index.bytes", "4096"),
            ("max.message.bytes", "2000"),
            ("message.timestamp.type", "LogAppendTime"),
            ("retention.ms", "9000"),
            ("retention.bytes", "123456"),
            ("file.delete.delay.ms", "0"),
        ];
        let topic = TopicInfo {
            name: "t".to_string(),
            topic_id: Uuid::from_u128(7),
            partitions: Vec::new(),
            configs: configs
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        };
        let image = MetadataImage::empty("c");
        let broker_config = BrokerConfig::default();
        let static_settings = broker_config.static_settings();
        let layers = BrokerConfigLayers::from_image(&image, 1, &static_settings);
        let config = log_config_for(&topic, &layers);
        assert_eq!(config.segment_bytes, 2_097_152);
        assert_eq!(config.segment_ms, 5000);
        assert_eq!(config.segment_jitter_ms, 700);
        assert_eq!(config.index_interval_bytes, 100);
        assert_eq!(config.segment_index_bytes, 4096);
        assert_eq!(config.max_message_bytes, 2000);
        assert_eq!(config.timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(config.retention_ms, 9000);
        assert_eq!(config.retention_bytes, 123_456);
        assert_eq!(config.file_delete_delay_ms, 0);

        let defaults = TopicInfo {
            configs: std::collections::BTreeMap::new(),
            ..topic
        };
        let config = log_config_for(&defaults, &layers);
        assert_eq!(config.segment_jitter_ms, 0);
        assert_eq!(config.file_delete_delay_ms, 60_000);

        // Kafka's internal.segment.bytes replaces segment.bytes, below its 1 MiB minimum too.
        let with_internal = |value: &str| TopicInfo {
            configs: [
                ("segment.bytes", "2097152"),
                ("internal.segment.bytes", value),
            ]
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect(),
            ..defaults.clone()
        };
        assert_eq!(
            log_config_for(&with_internal("10000"), &layers).segment_bytes,
            10_000
        );
        assert_eq!(
            log_config_for(&with_internal("-5"), &layers).segment_bytes,
            0
        );
    }

    fn flush_policy(
        topic_configs: &[(&str, &str)],
        dynamic_broker: &[(&str, &str)],
        static_broker: &[(&str, &str)],
    ) -> FlushPolicy {
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let topic = TopicInfo {
            name: "t".to_string(),
            topic_id: Uuid::from_u128(1),
            partitions: Vec::new(),
            configs: map(topic_configs),
        };
        let (dynamic_broker, static_broker) = (map(dynamic_broker), map(static_broker));
        let layers = BrokerConfigLayers {
            dynamic_broker: Some(&dynamic_broker),
            dynamic_default: None,
            static_broker: Some(&static_broker),
        };
        log_config_for(&topic, &layers).flush
    }

    const NEVER: &str = "9223372036854775807";

    #[test]
    fn kafka_flush_settings_select_the_log_flush_policy() {
        // Quill's default: fsync before acknowledging.
        assert_eq!(flush_policy(&[], &[], &[]), FlushPolicy::EveryAppend);
        // flush.ms alone changes nothing while flush.messages is 1 (both are triggers).
        assert_eq!(
            flush_policy(&[("flush.ms", "100")], &[], &[]),
            FlushPolicy::EveryAppend
        );
        assert_eq!(
            flush_policy(&[("flush.messages", "1000")], &[], &[]),
            FlushPolicy::Periodic {
                messages: Some(1000),
                interval_ms: None
            }
        );
        // Kafka's defaults, selected explicitly: OS-managed.
        assert_eq!(
            flush_policy(&[("flush.messages", NEVER), ("flush.ms", NEVER)], &[], &[]),
            FlushPolicy::OS_MANAGED
        );
        // Broker settings are the topics' defaults; a topic config wins over them.
        assert_eq!(
            flush_policy(
                &[],
                &[],
                &[
                    ("log.flush.interval.messages", NEVER),
                    ("log.flush.interval.ms", "200")
                ]
            ),
            FlushPolicy::Periodic {
                messages: None,
                interval_ms: Some(200)
            }
        );
        assert_eq!(
            flush_policy(
                &[("flush.messages", "1")],
                &[],
                &[("log.flush.interval.messages", NEVER)]
            ),
            FlushPolicy::EveryAppend
        );
        // flush.ms falls back to log.flush.scheduler.interval.ms, as in Kafka.
        assert_eq!(
            flush_policy(
                &[],
                &[],
                &[
                    ("log.flush.interval.messages", NEVER),
                    ("log.flush.scheduler.interval.ms", "300")
                ]
            ),
            FlushPolicy::Periodic {
                messages: None,
                interval_ms: Some(300)
            }
        );
        // A dynamic broker config (AlterConfigs) overrides the static one.
        assert_eq!(
            flush_policy(
                &[],
                &[("log.flush.interval.messages", "50")],
                &[("log.flush.interval.messages", NEVER)]
            ),
            FlushPolicy::Periodic {
                messages: Some(50),
                interval_ms: None
            }
        );
    }
}
