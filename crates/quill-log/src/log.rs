//! One partition: an ordered list of segments, the last one active.

use std::io::IoSlice;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use quill_fs::{Fs, OpenOptions};

use crate::batch::{self, BatchHeader, HEADER_BYTES};
use crate::checkpoint::{self, Checkpoint, CheckpointWriter, CleanShutdown, CleanerCheckpoint};
use crate::cleaner::{swap, CleaningLease};
use crate::commit::{DurabilityCallback, GroupCommitter, SyncTarget};
use crate::config::{FlushPolicy, LogConfig, TimestampType};
use crate::error::LogError;
use crate::leader_epoch::LeaderEpochCache;
use crate::producer::{BatchCheck, ControlMarker, ProducerSnapshot, ProducerState};
use crate::producer_snapshot;
use crate::segment::{PlacedBatch, Segment};
use crate::validate::{validate_append, ValidBatch, ValidatedAppend};

/// A single read never returns more than this, except one whole batch (KIP-74).
pub const MAX_READ_BYTES: usize = 64 * 1024 * 1024;

/// What the broker owns when it appends a batch.
#[derive(Clone, Copy, Debug)]
pub struct AppendContext {
    pub now_ms: i64,
    pub leader_epoch: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The time stamped into the batches under `LogAppendTime`, else -1.
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
    pub record_count: u32,
    pub bytes: u64,
    /// The batch was a retry of one already in the log (same producer id, epoch and sequence
    /// range): nothing was written and the offsets are the original ones.
    pub duplicate: bool,
}

/// An aborted transaction overlapping a fetched range: `read_committed` clients drop this
/// producer's records from `first_offset` until its ABORT marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbortedTransaction {
    pub producer_id: i64,
    pub first_offset: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadResult {
    /// Whole batches; empty when nothing is readable at `from_offset` below the upper bound.
    pub bytes: Bytes,
    /// The offset after the last returned batch (the requested offset if nothing was returned).
    pub next_offset: i64,
}

/// A read located by [`Log::plan_read`], to be performed (without the log's lock) by
/// [`PlannedRead::execute`].
#[derive(Debug)]
pub struct PlannedRead {
    from_offset: i64,
    upper: i64,
    source: Option<crate::segment::SegmentRange>,
}

impl PlannedRead {
    /// Reads the planned bytes and keeps the whole batches below the upper bound.
    pub fn execute(self) -> Result<ReadResult, LogError> {
        let Some(source) = self.source else {
            return Ok(ReadResult {
                bytes: Bytes::new(),
                next_offset: self.from_offset,
            });
        };
        let mut buffer = source.read()?;
        let (cut, next_offset) = whole_batches_below(&buffer, self.upper);
        if cut == 0 {
            return Err(LogError::CorruptRecord(format!(
                "unreadable batch at offset {} in {}",
                self.from_offset,
                source.describe()
            )));
        }
        buffer.truncate(cut);
        Ok(ReadResult {
            bytes: Bytes::from(buffer),
            next_offset,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimestampOffset {
    pub offset: i64,
    pub timestamp_ms: i64,
}

/// One partition's log. Appends need `&mut self`; reads take `&self`, so a `RwLock` lets many
/// readers proceed between appends.
pub struct Log {
    pub(crate) fs: Fs,
    pub(crate) dir: PathBuf,
    pub(crate) config: LogConfig,
    /// Sorted by base offset, never empty; the last one takes appends.
    pub(crate) segments: Vec<Segment>,
    pub(crate) log_start_offset: i64,
    committer: GroupCommitter,
    pub(crate) sync_target: Arc<SyncTarget>,
    /// When `flush_if_due` last asked for a sync (`flush.ms`).
    last_flush_ms: i64,
    /// Records appended since the last sync was asked for (`flush.messages`).
    unflushed_messages: u64,
    last_checkpoint: Option<Checkpoint>,
    checkpoints: Arc<CheckpointWriter>,
    /// Held by [`Maintenance::execute`] while it works on this log's files without the log's
    /// lock, and by `close`/`delete`, which set it: a maintenance planned before them then
    /// touches nothing (a topic deleted and created again reuses the directory's names).
    file_work: Arc<std::sync::Mutex<Retired>>,
    pub(crate) producers: ProducerState,
    /// The cleaner's position and the mark below which segments may have offset gaps.
    pub(crate) cleaner_checkpoint: CleanerCheckpoint,
    /// Lets `close`/`delete` stop a cleaner working on this log and wait for it.
    pub(crate) cleaning: Arc<CleaningLease>,
    /// The high watermark the broker recorded ([`Log::record_high_watermark`], or loaded from
    /// the checkpoint), -1 while none is known; kept in `quill-log.checkpoint`.
    high_watermark: std::sync::atomic::AtomicI64,
    /// What [`Log::checkpointed_high_watermark`] answers: the high watermark as of open.
    checkpointed_high_watermark: i64,
    /// The leader epoch of the last append, stamped on transaction markers too.
    pub(crate) leader_epoch: i32,
    /// Where each partition leader epoch in the log starts (`leader-epoch-checkpoint`).
    pub(crate) epochs: LeaderEpochCache,
    /// `epochs` changed in ways not yet written (log start moves, truncations): harmless if
    /// lost, as open truncates the loaded cache to the log's range again. Additions are
    /// written before their batches, so the file never misses an epoch the log holds.
    pub(crate) epochs_dirty: bool,
    /// Random draw of the active segment, fixing its share of `segment.jitter.ms`.
    roll_jitter_seed: u64,
    /// Files renamed `*.deleted`, with the time (ms) they are due for deletion.
    deferred_deletes: Vec<(i64, Vec<PathBuf>)>,
    /// Held (flock) for the log's lifetime: a second process, or a second `Log` in this one,
    /// must not write the same partition.
    _lock: quill_fs::File,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.dir)
            .field("log_start_offset", &self.log_start_offset)
            .field("log_end_offset", &self.log_end_offset())
            .field("segments", &self.segments.len())
            .finish()
    }
}

impl Log {
    /// Opens (or creates) the log in `dir`. After a clean close only the last few batches are
    /// read; otherwise every batch from the recovery point on is validated and a torn tail cut.
    pub fn open(dir: &Path, config: LogConfig, committer: GroupCommitter) -> Result<Log, LogError> {
        Log::open_in(&Fs::default(), dir, config, committer)
    }

    /// `open` on the given file system (tests pass a simulated disk, see `quill_fs::sim`).
    pub fn open_in(
        fs: &Fs,
        dir: &Path,
        config: LogConfig,
        committer: GroupCommitter,
    ) -> Result<Log, LogError> {
        create_dir_durably(fs, dir)?;
        let lock = lock_dir(fs, dir)?;
        // A crash in the middle of a cleaner swap: finish it or discard it before anything
        // looks at the segment files.
        swap::recover(fs, dir)?;
        let cleaner_checkpoint = checkpoint::read_cleaner_checkpoint(fs, dir)?.unwrap_or_default();
        let base_offsets = list_segments(fs, dir)?;
        let stored = checkpoint::read_checkpoint(fs, dir)?;
        let clean = checkpoint::take_clean_shutdown(fs, dir)?;
        let (segments, was_clean) = open_segments(
            fs,
            dir,
            &config,
            &base_offsets,
            stored,
            clean,
            cleaner_checkpoint.cleaned_below,
        )?;
        let mut log = Log::assemble(fs, dir, config, committer, segments, stored, lock)?;
        log.cleaner_checkpoint = cleaner_checkpoint;
        log.recover_producer_state()?;
        log.load_leader_epochs()?;
        // Before any checkpoint is written, so that one keeps the stored high watermark.
        log.load_high_watermark(stored);
        if !was_clean {
            log.make_recovered_data_durable(stored)?;
        }
        Ok(log)
    }

    /// After an unclean stop the durable end starts at the log end, so everything the log
    /// holds must really be on disk: what survived a process crash may sit only in the page
    /// cache — data in any segment written since the recovery point (rolled ones too), a
    /// truncation (which sets the recovery point to the new end, so `>=`), names of files
    /// created or deleted since. Syncs those segments and the directory (the checkpoint write
    /// does that), then records the new recovery point.
    fn make_recovered_data_durable(&mut self, stored: Option<Checkpoint>) -> Result<(), LogError> {
        let recovery_point = stored.map_or(i64::MIN, |c| c.recovery_point);
        for segment in self
            .segments
            .iter()
            .filter(|s| s.next_offset >= recovery_point)
        {
            segment.sync()?;
        }
        if let Err(error) = self.write_checkpoint() {
            // A full disk must not keep the log from opening: a stale checkpoint only makes the
            // next open validate more. The names must be durable all the same (a directory
            // fsync needs no space).
            self.fs.sync_dir(&self.dir)?;
            tracing::warn!(dir = %self.dir.display(), %error, "could not record the recovery point; the next open validates from the previous one");
        }
        Ok(())
    }

    fn assemble(
        fs: &Fs,
        dir: &Path,
        config: LogConfig,
        committer: GroupCommitter,
        mut segments: Vec<Segment>,
        stored: Option<Checkpoint>,
        lock: quill_fs::File,
    ) -> Result<Log, LogError> {
        if segments.is_empty() {
            // Its name becomes durable with the checkpoint `open_in` writes next (a log without
            // segments never opens clean), before anything can be appended to it.
            let base = stored.map_or(0, |c| c.log_start_offset.max(0));
            segments.push(Segment::create(fs, dir, base)?);
        }
        let first_base = segments.first().map_or(0, |s| s.base_offset);
        let end = segments.last().map_or(0, |s| s.next_offset);
        let log_start_offset = stored
            .map_or(first_base, |c| c.log_start_offset)
            .clamp(first_base, end);
        let active_file = segments
            .last()
            .map(|s| Arc::clone(s.file()))
            .ok_or_else(|| LogError::Offline("log has no segment".to_string()))?;
        Ok(Log {
            fs: fs.clone(),
            dir: dir.to_path_buf(),
            config,
            segments,
            log_start_offset,
            committer,
            sync_target: Arc::new(SyncTarget::new(active_file, end)),
            last_flush_ms: 0,
            unflushed_messages: 0,
            last_checkpoint: stored,
            checkpoints: Arc::new(CheckpointWriter::new(fs.clone(), dir)),
            file_work: Arc::default(),
            producers: ProducerState::default(),
            cleaner_checkpoint: CleanerCheckpoint::default(),
            cleaning: Arc::new(CleaningLease::default()),
            high_watermark: std::sync::atomic::AtomicI64::new(checkpoint::UNKNOWN_HIGH_WATERMARK),
            checkpointed_high_watermark: checkpoint::UNKNOWN_HIGH_WATERMARK,
            leader_epoch: -1,
            epochs: LeaderEpochCache::default(),
            epochs_dirty: false,
            roll_jitter_seed: random_seed(),
            deferred_deletes: Vec::new(),
            _lock: lock,
        })
    }

    pub(crate) fn active(&self) -> &Segment {
        // `segments` is never empty (see `assemble` and `apply_retention`).
        &self.segments[self.segments.len() - 1]
    }

    pub(crate) fn active_mut(&mut self) -> &mut Segment {
        let last = self.segments.len() - 1;
        &mut self.segments[last]
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset
    }

    /// Every offset below this is on disk (fsynced).
    pub fn durable_end_offset(&self) -> i64 {
        self.sync_target.durable_end()
    }

    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size_bytes).sum()
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Validates and appends the raw bytes of one or more v2 batches, assigning offsets.
    /// On any error nothing was written. The broker validates first, outside the lock, with
    /// [`validate_append`] and calls [`Log::append_validated`].
    pub fn append(
        &mut self,
        batches: &[u8],
        context: AppendContext,
    ) -> Result<AppendInfo, LogError> {
        if let Some(failure) = self.sync_target.failure() {
            return Err(LogError::Offline(failure));
        }
        let topic_partition = self.topic_partition_name();
        let validated = validate_append(batches, &self.config, &topic_partition, context.now_ms)?;
        self.append_validated(&validated, context)
    }

    /// `topic-partition` as Kafka names it: the directory name.
    pub fn topic_partition_name(&self) -> String {
        self.dir
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// [`Self::append_validated`] for a transactional batch whose producer was not verified
    /// with its transaction coordinator: written only if it continues its producer's open
    /// transaction here at the same epoch (checked under the same `&mut self` as the append, so
    /// no marker can end the transaction in between), else `TransactionNotOpen` and nothing is
    /// written. This is the guard that lets a leader skip KIP-890 verification, as Kafka's does.
    pub fn append_validated_continuing_transaction(
        &mut self,
        validated: &ValidatedAppend<'_>,
        context: AppendContext,
    ) -> Result<AppendInfo, LogError> {
        let [ValidBatch { header, .. }] = validated.batches() else {
            return Err(LogError::InvalidRecord(
                "a transactional append must carry exactly one batch".to_string(),
            ));
        };
        if !header.is_transactional()
            || !self
                .producers
                .continues_open_transaction(header.producer_id, header.producer_epoch)
        {
            return Err(LogError::TransactionNotOpen {
                producer_id: header.producer_id,
                producer_epoch: header.producer_epoch,
            });
        }
        self.append_validated(validated, context)
    }

    /// Appends batches that [`validate_append`] accepted, assigning offsets. On any error
    /// nothing was written.
    pub fn append_validated(
        &mut self,
        validated: &ValidatedAppend<'_>,
        context: AppendContext,
    ) -> Result<AppendInfo, LogError> {
        if let Some(failure) = self.sync_target.failure() {
            return Err(LogError::Offline(failure));
        }
        let batches = validated.bytes();
        let valid = validated.batches();
        if batches.len() as u64 > self.config.segment_bytes {
            return Err(LogError::RecordTooLarge {
                size_bytes: batches.len() as u64,
                limit_bytes: self.config.segment_bytes,
                setting: "segment.bytes",
            });
        }
        let record_count = validated.record_count();
        if let Some(duplicate) = self.check_producer(valid, record_count)? {
            return Ok(duplicate);
        }
        self.maybe_roll(batches.len() as u64, record_count, context.now_ms)?;

        let log_append_time_ms =
            (self.config.timestamp_type == TimestampType::LogAppendTime).then_some(context.now_ms);
        let base_offset = self.log_end_offset();
        let mut next_offset = base_offset;
        let mut patched_headers = Vec::with_capacity(valid.len());
        let mut placed = Vec::with_capacity(valid.len());
        for batch in valid {
            let header = &batch.header;
            let batch_bytes = &batches[batch.position..batch.position + header.size_bytes];
            let mut patched = [0u8; HEADER_BYTES];
            patched.copy_from_slice(&batch_bytes[..HEADER_BYTES]);
            let body = &batch_bytes[HEADER_BYTES..];
            let timestamp = match log_append_time_ms {
                Some(append_time_ms) => batch::HeaderTimestamp::LogAppendTime(append_time_ms),
                None => batch::HeaderTimestamp::CreateTime(batch.max_timestamp_ms),
            };
            batch::patch_header(
                &mut patched,
                body,
                next_offset,
                context.leader_epoch,
                timestamp,
            );
            let last_offset = next_offset + i64::from(header.last_offset_delta);
            placed.push(PlacedBatch {
                base_offset: next_offset,
                last_offset,
                max_timestamp_ms: log_append_time_ms.unwrap_or(batch.max_timestamp_ms),
                size_bytes: header.size_bytes as u64,
            });
            patched_headers.push(patched);
            next_offset = last_offset + 1;
        }
        // Zero-copy: only the 61-byte headers were copied; bodies go straight from the input
        // (or from the rebuilt batch when `compression.type` asked for another codec).
        let mut slices = Vec::with_capacity(valid.len() * 2);
        for (batch, patched) in valid.iter().zip(&patched_headers) {
            slices.push(IoSlice::new(patched));
            slices.push(IoSlice::new(
                &batches[batch.position + HEADER_BYTES..batch.position + batch.header.size_bytes],
            ));
        }
        let previous_epochs = self.assign_epochs(&[(context.leader_epoch, base_offset)])?;
        let interval = self.config.index_interval_bytes;
        if let Err(error) = self
            .active_mut()
            .append(&mut slices, &placed, interval, context.now_ms)
        {
            self.restore_epochs(previous_epochs);
            return Err(error);
        }
        self.sync_target.written(next_offset);
        self.count_unflushed(record_count.unsigned_abs());
        self.leader_epoch = context.leader_epoch;
        for (batch, placed) in valid.iter().zip(&placed) {
            self.producers.apply_data_batch(
                &batch.header,
                placed.base_offset,
                placed.last_offset,
                placed.max_timestamp_ms,
            );
        }
        Ok(AppendInfo {
            base_offset,
            last_offset: next_offset - 1,
            log_append_time_ms: log_append_time_ms.unwrap_or(-1),
            log_start_offset: self.log_start_offset,
            record_count: u32::try_from(record_count).unwrap_or(u32::MAX),
            bytes: batches.len() as u64,
            duplicate: false,
        })
    }

    /// Kafka's producer checks for idempotent and transactional input. Returns the original
    /// offsets when the batch is a retry of one already in the log.
    fn check_producer(
        &self,
        batches: &[ValidBatch],
        record_count: i64,
    ) -> Result<Option<AppendInfo>, LogError> {
        let from_producer = batches
            .iter()
            .any(|b| b.header.producer_id >= 0 || b.header.is_transactional());
        if !from_producer {
            return Ok(None);
        }
        let [ValidBatch { header, .. }] = batches else {
            return Err(LogError::InvalidRecord(
                "an idempotent or transactional append must carry exactly one batch".to_string(),
            ));
        };
        if header.producer_id < 0 {
            return Err(LogError::InvalidRecord(
                "a transactional batch needs a producer id".to_string(),
            ));
        }
        match self.producers.check_batch(header)? {
            BatchCheck::Append => Ok(None),
            BatchCheck::Duplicate {
                first_offset,
                last_offset,
            } => Ok(Some(AppendInfo {
                base_offset: first_offset,
                last_offset,
                log_append_time_ms: -1,
                log_start_offset: self.log_start_offset,
                record_count: u32::try_from(record_count).unwrap_or(u32::MAX),
                bytes: 0,
                duplicate: true,
            })),
        }
    }

    /// Writes a transaction marker (COMMIT or ABORT control batch) for `producer_id`, ending its
    /// open transaction on this partition. A marker for a producer without an open transaction
    /// is written too (the coordinator may retry), changing nothing else.
    pub fn append_control(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        marker: ControlMarker,
        coordinator_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        if let Some(failure) = self.sync_target.failure() {
            return Err(LogError::Offline(failure));
        }
        self.producers
            .check_marker(producer_id, producer_epoch, coordinator_epoch)?;
        let batch = batch::build_control_batch(
            producer_id,
            producer_epoch,
            marker.type_id(),
            coordinator_epoch,
            now_ms,
        );
        self.maybe_roll(batch.len() as u64, 1, now_ms)?;
        let offset = self.log_end_offset();
        let mut header = [0u8; HEADER_BYTES];
        header.copy_from_slice(&batch[..HEADER_BYTES]);
        batch::patch_header(
            &mut header,
            &[],
            offset,
            self.leader_epoch,
            batch::HeaderTimestamp::Unchanged,
        );
        let placed = [PlacedBatch {
            base_offset: offset,
            last_offset: offset,
            max_timestamp_ms: now_ms,
            size_bytes: batch.len() as u64,
        }];
        let mut slices = [IoSlice::new(&header), IoSlice::new(&batch[HEADER_BYTES..])];
        let previous_epochs = self.assign_epochs(&[(self.leader_epoch, offset)])?;
        let interval = self.config.index_interval_bytes;
        if let Err(error) = self
            .active_mut()
            .append(&mut slices, &placed, interval, now_ms)
        {
            self.restore_epochs(previous_epochs);
            return Err(error);
        }
        self.sync_target.written(offset + 1);
        self.count_unflushed(1);
        self.producers.apply_marker(
            producer_id,
            producer_epoch,
            marker,
            coordinator_epoch,
            offset,
            now_ms,
        );
        Ok(AppendInfo {
            base_offset: offset,
            last_offset: offset,
            log_append_time_ms: -1,
            log_start_offset: self.log_start_offset,
            record_count: 1,
            bytes: batch.len() as u64,
            duplicate: false,
        })
    }

    /// The first offset of the oldest open transaction, or the log end offset if none; the
    /// last stable offset is this, capped by the high watermark.
    pub fn first_unstable_offset(&self) -> i64 {
        self.producers
            .first_open_transaction_offset()
            .unwrap_or_else(|| self.log_end_offset())
    }

    /// Aborted transactions whose data overlaps [from_offset, upper_bound).
    pub fn aborted_transactions(
        &self,
        from_offset: i64,
        upper_bound: i64,
    ) -> Vec<AbortedTransaction> {
        self.producers
            .aborted_overlapping(from_offset, upper_bound)
            .into_iter()
            .map(|a| AbortedTransaction {
                producer_id: a.producer_id,
                first_offset: a.first_offset,
            })
            .collect()
    }

    /// The producers this partition knows (DescribeProducers).
    pub fn producers(&self) -> Vec<ProducerSnapshot> {
        self.producers.snapshots()
    }

    /// Forgets producers idle longer than `expiration_ms` (`producer.id.expiration.ms`) that
    /// have no open transaction; returns how many.
    pub fn expire_producers(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        self.producers.expire(now_ms, expiration_ms)
    }

    /// Rebuilds the producer state: the newest snapshot at or below the log end, then every
    /// producer batch after it.
    fn recover_producer_state(&mut self) -> Result<(), LogError> {
        let end = self.log_end_offset();
        producer_snapshot::delete_snapshots_above(&self.fs, &self.dir, end)?;
        let (from_offset, state) = producer_snapshot::load_latest(&self.fs, &self.dir, end)?
            .unwrap_or_else(|| (0, ProducerState::default()));
        self.producers = state;
        let producers = &mut self.producers;
        let mut visit = |header: &BatchHeader, control: Option<(i16, i32)>| {
            producers.apply_logged_batch(header, control);
        };
        for segment in &self.segments {
            if segment.next_offset > from_offset {
                segment.for_each_producer_batch(from_offset, &mut visit)?;
            }
        }
        self.producers.log_start_advanced(self.log_start_offset);
        self.forget_cleaned_aborts()?;
        Ok(())
    }

    /// Aborted transactions whose ABORT marker the cleaner removed are forgotten: their data is
    /// gone, and a `read_committed` client told about one would skip that producer's later
    /// records while waiting for a marker that no longer exists. (A snapshot taken before the
    /// cleaning may still list them; this check runs after every state rebuild.)
    fn forget_cleaned_aborts(&mut self) -> Result<(), LogError> {
        let cleaned_below = self.cleaner_checkpoint.cleaned_below;
        if cleaned_below <= self.log_start_offset {
            return Ok(());
        }
        let mut kept = Vec::with_capacity(self.producers.aborted.len());
        for entry in &self.producers.aborted {
            if entry.last_offset >= cleaned_below || self.abort_marker_at(entry.last_offset)? {
                kept.push(*entry);
            }
        }
        self.producers.aborted = kept;
        Ok(())
    }

    /// Whether a control batch with its marker record still stands at `offset`.
    fn abort_marker_at(&self, offset: i64) -> Result<bool, LogError> {
        let Some(segment) = self.segment_for(offset) else {
            return Ok(false);
        };
        Ok(segment.find_position(offset)?.is_some_and(|(_, header)| {
            header.base_offset == offset && header.is_control() && header.records_count > 0
        }))
    }

    pub(crate) fn maybe_roll(
        &mut self,
        incoming_bytes: u64,
        record_count: i64,
        now_ms: i64,
    ) -> Result<(), LogError> {
        let active = self.active();
        if active.size_bytes == 0 {
            return Ok(());
        }
        let too_big = active.size_bytes + incoming_bytes > self.config.segment_bytes;
        // The jitter is drawn below `segment.ms` (as Kafka's `randomSegmentJitter`) and taken
        // off whichever bound applies.
        let roll_after_ms = self.config.max_segment_ms() - self.roll_jitter_ms();
        let too_old = active
            .first_append_ms
            .is_some_and(|first| now_ms.saturating_sub(first) >= roll_after_ms);
        let index_full = active.is_index_full(self.config.segment_index_bytes);
        // Index entries hold offsets relative to the segment base as 32-bit values.
        let offsets_exhausted =
            active.next_offset + record_count - active.base_offset > i64::from(i32::MAX);
        if too_big || too_old || index_full || offsets_exhausted {
            self.roll()?;
        }
        Ok(())
    }

    /// How much earlier than `segment.ms` the active segment rolls: drawn per segment in
    /// `[0, min(segment.jitter.ms, segment.ms))`, as Kafka does.
    pub fn roll_jitter_ms(&self) -> i64 {
        let bound = self.config.segment_jitter_ms.min(self.config.segment_ms);
        let Ok(bound) = u64::try_from(bound) else {
            return 0;
        };
        if bound == 0 {
            return 0;
        }
        i64::try_from(self.roll_jitter_seed % bound).unwrap_or(0)
    }

    /// Removes a segment's files: at once when `file.delete.delay.ms` is 0, else renamed
    /// `*.deleted` now and deleted by [`Log::delete_due_files`] once the delay has passed.
    fn delete_segment(&mut self, segment: Segment, now_ms: i64) -> Result<(), LogError> {
        if self.config.file_delete_delay_ms <= 0 {
            return segment.delete_files();
        }
        let renamed = segment.rename_for_deletion()?;
        let due_ms = now_ms.saturating_add(self.config.file_delete_delay_ms);
        self.deferred_deletes.push((due_ms, renamed));
        Ok(())
    }

    /// Deletes the `*.deleted` files whose `file.delete.delay.ms` has passed; returns how many
    /// segments' files were deleted. Runs with retention.
    pub fn delete_due_files(&mut self, now_ms: i64) -> Result<usize, LogError> {
        let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.deferred_deletes)
            .into_iter()
            .partition(|(due_ms, _)| *due_ms <= now_ms);
        self.deferred_deletes = waiting;
        for (_, paths) in &due {
            for path in paths {
                self.fs.remove_file_if_exists(path)?;
            }
        }
        Ok(due.len())
    }

    /// Seals the active segment and starts a new one at the log end.
    pub fn roll(&mut self) -> Result<(), LogError> {
        self.roll_at(self.log_end_offset())
    }

    /// [`Log::roll`] to a new segment based at `new_base`, at or above the log end: above it
    /// only for a follower whose next batch starts after a gap too wide for the active
    /// segment's 32-bit relative offsets (Kafka names a rolled segment after the next offset
    /// appended). An empty active segment is replaced rather than sealed.
    pub(crate) fn roll_at(&mut self, new_base: i64) -> Result<(), LogError> {
        debug_assert!(new_base >= self.log_end_offset());
        let active = self.active_mut();
        let replaces_empty = active.size_bytes == 0;
        if replaces_empty && active.base_offset == new_base {
            return Ok(());
        }
        if !replaces_empty {
            active.seal_time_index();
            active.persist_indexes(true)?;
        }
        let segment = Segment::create(&self.fs, &self.dir, new_base)?;
        // Writing the snapshot syncs the directory: the new segment's name (and the index files
        // just created) are durable before anything is appended to it.
        producer_snapshot::write_snapshot(&self.fs, &self.dir, new_base, &self.producers)?;
        self.sync_target.rolled(Arc::clone(segment.file()));
        self.segments.push(segment);
        if replaces_empty {
            let empty = self.segments.remove(self.segments.len() - 2);
            self.delete_segment(empty, wall_clock_ms())?;
            if self.segments.len() == 1 {
                // Nothing below the new segment exists (as an open would conclude too).
                self.log_start_offset = self.log_start_offset.max(new_base);
                self.clamp_high_watermark();
            }
        }
        self.roll_jitter_seed = random_seed();
        if self.config.flush != FlushPolicy::EveryAppend {
            // As Kafka does, a rolled segment is flushed (in the background); the sync also
            // releases the handle the sync target keeps for it.
            self.request_background_sync();
        }
        self.write_checkpoint()?;
        tracing::debug!(dir = %self.dir.display(), base_offset = new_base, "rolled segment");
        Ok(())
    }

    /// Reads whole batches, starting with the one that contains `from_offset`, up to
    /// `max_bytes` (but at least one batch), never including a batch that reaches
    /// `upper_bound`. Reads stay within one segment.
    pub fn read(
        &self,
        from_offset: i64,
        max_bytes: usize,
        upper_bound: i64,
    ) -> Result<ReadResult, LogError> {
        self.plan_read(from_offset, max_bytes, upper_bound, true)?
            .execute()
    }

    /// Like [`Log::read`], but `max_bytes` is a hard limit: when the first batch is bigger,
    /// nothing is read. This is what Fetch gives every partition after the first one that
    /// returned data (KIP-74: only one batch in the whole response may exceed the limits).
    pub fn read_within(
        &self,
        from_offset: i64,
        max_bytes: usize,
        upper_bound: i64,
    ) -> Result<ReadResult, LogError> {
        self.plan_read(from_offset, max_bytes, upper_bound, false)?
            .execute()
    }

    /// [`Log::read`] (`min_one_batch`) or [`Log::read_within`] in two steps, so the caller can
    /// do the disk read without holding whatever lock guards this `Log`: this step validates
    /// the offset and locates the bytes (index lookup and a few headers);
    /// [`PlannedRead::execute`] reads them. Safe because bytes below `upper_bound` (at most the
    /// log end) are never rewritten in place: the planned file handle keeps a segment deleted
    /// meanwhile readable, and a failed append is only ever cut back past the planned range.
    pub fn plan_read(
        &self,
        from_offset: i64,
        max_bytes: usize,
        upper_bound: i64,
        min_one_batch: bool,
    ) -> Result<PlannedRead, LogError> {
        let end = self.log_end_offset();
        if from_offset < self.log_start_offset || from_offset > end {
            return Err(LogError::OffsetOutOfRange {
                offset: from_offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: end,
            });
        }
        let empty = PlannedRead {
            from_offset,
            upper: from_offset,
            source: None,
        };
        let upper = upper_bound.min(end);
        if from_offset >= upper {
            return Ok(empty);
        }
        let Some(segment) = self.segment_for(from_offset) else {
            return Ok(empty);
        };
        let Some((position, first)) = segment.find_position(from_offset)? else {
            return Ok(empty);
        };
        if first.last_offset() >= upper || (!min_one_batch && first.size_bytes > max_bytes) {
            return Ok(empty);
        }
        let wanted = max_bytes.min(MAX_READ_BYTES).max(first.size_bytes);
        Ok(PlannedRead {
            from_offset,
            upper,
            source: Some(segment.planned_read(position, wanted, &self.dir)),
        })
    }

    /// The segment holding `offset`, skipping empty segments.
    /// (A segment the cleaner emptied keeps its base offset but holds no batch: it is skipped
    /// like one that ends before `offset`.)
    fn segment_for(&self, offset: i64) -> Option<&Segment> {
        let after = self.segments.partition_point(|s| s.base_offset <= offset);
        self.segments[after.saturating_sub(1)..]
            .iter()
            .find(|s| s.next_offset > offset && s.size_bytes > 0)
    }

    /// The first offset (at or after the log start) whose timestamp is ≥ `timestamp_ms`.
    pub fn offset_for_timestamp(
        &self,
        timestamp_ms: i64,
    ) -> Result<Option<TimestampOffset>, LogError> {
        for segment in &self.segments {
            if segment.next_offset <= self.log_start_offset {
                continue;
            }
            let found = segment.offset_for_timestamp(timestamp_ms, self.log_start_offset)?;
            if let Some((offset, found_ms)) = found {
                return Ok(Some(TimestampOffset {
                    offset,
                    timestamp_ms: found_ms,
                }));
            }
        }
        Ok(None)
    }

    /// The record with the largest timestamp (ListOffsets `MAX_TIMESTAMP`).
    pub fn max_timestamp_offset(&self) -> Result<Option<TimestampOffset>, LogError> {
        let best = self
            .segments
            .iter()
            .filter(|s| s.next_offset > self.log_start_offset)
            .fold(None::<&Segment>, |best, s| match best {
                Some(b) if b.max_timestamp_ms >= s.max_timestamp_ms => Some(b),
                _ => Some(s),
            });
        let Some(segment) = best else {
            return Ok(None);
        };
        Ok(segment
            .max_timestamp_record(self.log_start_offset)?
            .map(|(offset, timestamp_ms)| TimestampOffset {
                offset,
                timestamp_ms,
            }))
    }

    /// Calls `callback` once every offset below `through_offset` is durable as the flush policy
    /// promises: after a shared fdatasync for `EveryAppend`, at once otherwise.
    pub fn on_durable(&self, through_offset: i64, callback: DurabilityCallback) {
        let needs_sync = self.config.flush == FlushPolicy::EveryAppend
            && through_offset > self.sync_target.durable_end();
        if !needs_sync {
            callback(Ok(()));
            return;
        }
        self.committer
            .request(Arc::clone(&self.sync_target), through_offset, callback);
    }

    /// Blocks until `through_offset` is durable (convenience over `on_durable`).
    pub fn wait_durable(&self, through_offset: i64) -> Result<(), LogError> {
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        self.on_durable(
            through_offset,
            Box::new(move |result| {
                let _ = sender.send(result);
            }),
        );
        receiver
            .recv()
            .map_err(|_| LogError::Offline("durability request was dropped".to_string()))?
    }

    /// Forces everything written so far to disk now.
    pub fn flush(&mut self) -> Result<(), LogError> {
        self.unflushed_messages = 0;
        // With `&mut self` no truncation can run during this sync: it always publishes.
        self.sync_target
            .sync_now()
            .map(|_| ())
            .map_err(LogError::Offline)
    }

    /// `flush.ms`: asks the group-commit thread for a sync if `interval_ms` passed since the
    /// last one and something is unsynced. Returns at once (the sync runs in the background).
    pub fn flush_if_due(&mut self, now_ms: i64) {
        let FlushPolicy::Periodic {
            interval_ms: Some(interval_ms),
            ..
        } = self.config.flush
        else {
            return;
        };
        let elapsed_ms = now_ms.saturating_sub(self.last_flush_ms);
        if elapsed_ms >= i64::try_from(interval_ms).unwrap_or(i64::MAX) {
            self.last_flush_ms = now_ms;
            self.request_background_sync();
        }
    }

    /// `flush.messages`: counts appended records and asks for a sync once there are enough.
    pub(crate) fn count_unflushed(&mut self, records: u64) {
        let FlushPolicy::Periodic {
            messages: Some(messages),
            ..
        } = self.config.flush
        else {
            return;
        };
        self.unflushed_messages = self.unflushed_messages.saturating_add(records);
        if self.unflushed_messages >= messages {
            self.request_background_sync();
        }
    }

    fn request_background_sync(&mut self) {
        self.unflushed_messages = 0;
        let end = self.log_end_offset();
        if end <= self.durable_end_offset() {
            return;
        }
        // A failed sync takes the log offline (see `SyncTarget`); nobody waits for this one.
        self.committer
            .request(Arc::clone(&self.sync_target), end, Box::new(|_| {}));
    }

    fn current_checkpoint(&self) -> Checkpoint {
        let high_watermark = match self.recorded_high_watermark() {
            Some(high_watermark) => high_watermark.min(self.log_end_offset()),
            None => checkpoint::UNKNOWN_HIGH_WATERMARK,
        };
        Checkpoint {
            log_start_offset: self.log_start_offset,
            recovery_point: self.durable_end_offset(),
            high_watermark,
        }
    }

    /// After open: the high watermark stored in the checkpoint (a recorded one, clamped to the
    /// log's range), or, when none was recorded (or the checkpoint predates the field), the
    /// recovery point — everything the log holds after open, as a single broker uses it.
    fn load_high_watermark(&mut self, stored: Option<Checkpoint>) {
        let recorded = stored
            .map(|c| c.high_watermark)
            .filter(|hw| *hw >= 0)
            .map(|hw| hw.clamp(self.log_start_offset, self.log_end_offset()));
        if let Some(high_watermark) = recorded {
            self.high_watermark
                .store(high_watermark, std::sync::atomic::Ordering::Release);
        }
        self.checkpointed_high_watermark = recorded.unwrap_or_else(|| self.durable_end_offset());
    }

    /// Records the partition's high watermark (the broker's, over the ISR) so a restart starts
    /// from it (Kafka's replication-offset-checkpoint, kept per log). Capped at the log end;
    /// it only moves up (a truncation lowers it). Written with the checkpoint by the maintenance
    /// path ([`Log::checkpoint_if_changed`], [`run_maintenance`]) and at close.
    pub fn record_high_watermark(&self, offset: i64) {
        let capped = offset.min(self.log_end_offset());
        if capped >= 0 {
            self.high_watermark
                .fetch_max(capped, std::sync::atomic::Ordering::AcqRel);
        }
    }

    /// The high watermark last recorded (or loaded from the checkpoint), if any.
    pub fn recorded_high_watermark(&self) -> Option<i64> {
        let high_watermark = self
            .high_watermark
            .load(std::sync::atomic::Ordering::Acquire);
        (high_watermark >= 0).then_some(high_watermark)
    }

    /// The high watermark as of open: the checkpointed one (never above the log end, never
    /// below the log start), or the recovery point when none was recorded.
    pub fn checkpointed_high_watermark(&self) -> i64 {
        self.checkpointed_high_watermark
    }

    /// Keeps a recorded high watermark within [log start, log end] after either moved.
    fn clamp_high_watermark(&mut self) {
        let (start, end) = (self.log_start_offset, self.log_end_offset());
        let high_watermark = self.high_watermark.get_mut();
        if *high_watermark >= 0 {
            *high_watermark = (*high_watermark).clamp(start, end);
        }
    }

    /// Persists the log start offset and the recovery point (the durable end), so that a
    /// restart after a crash validates only what may not have reached the disk.
    pub fn write_checkpoint(&mut self) -> Result<(), LogError> {
        self.write_epochs_if_dirty()?;
        let checkpoint = self.current_checkpoint();
        let stamp = self.checkpoints.stamp();
        self.checkpoints.write(stamp, checkpoint)?;
        self.last_checkpoint = Some(checkpoint);
        Ok(())
    }

    /// Writes the checkpoint only if the recovery point or log start moved since the last one
    /// (for a periodic task: it costs two fsyncs when it writes).
    pub fn checkpoint_if_changed(&mut self) -> Result<(), LogError> {
        if self.last_checkpoint == Some(self.current_checkpoint()) && !self.epochs_dirty {
            return Ok(());
        }
        self.write_checkpoint()
    }

    /// Deletes whole segments past `retention.ms` (by their max timestamp), while the log is
    /// over `retention.bytes` (both only when `cleanup.policy` includes `delete`), or entirely
    /// below the log start offset. Never the active segment. (Holding `&mut self` throughout;
    /// [`run_maintenance`] does the file work without the caller's lock.)
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<u64, LogError> {
        let work = self.plan_maintenance(now_ms, false);
        let done = work.execute();
        self.finish_maintenance(done)
    }

    /// Retention's and the checkpoint's bookkeeping, under the caller's lock: takes the
    /// segments retention removes (and the `*.deleted` files now due) out of the log, moves the
    /// log start offset, and stamps the checkpoint to write. The file work is left to
    /// [`Maintenance::execute`], which needs no lock; [`Log::finish_maintenance`] records what
    /// it did.
    pub fn plan_maintenance(&mut self, now_ms: i64, checkpoint: bool) -> Maintenance {
        let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.deferred_deletes)
            .into_iter()
            .partition(|(due_ms, _)| *due_ms <= now_ms);
        self.deferred_deletes = waiting;
        let mut removed = Vec::new();
        let deletes = self.config.cleanup_policy.delete;
        while self.segments.len() > 1 {
            let oldest = &self.segments[0];
            let newest_ms = if oldest.max_timestamp_ms >= 0 {
                oldest.max_timestamp_ms
            } else {
                oldest.modified_ms().unwrap_or(now_ms)
            };
            let expired = deletes
                && self.config.retention_ms >= 0
                && now_ms.saturating_sub(newest_ms) > self.config.retention_ms;
            let oversized = deletes
                && self.config.retention_bytes >= 0
                && self.size_bytes() - oldest.size_bytes >= self.config.retention_bytes as u64;
            let below_start = self.segments[1].base_offset <= self.log_start_offset;
            // Time and size retention delete only what lies below a recorded high watermark
            // (Kafka's deletableSegments): data not yet replicated stays.
            let replicated = self
                .recorded_high_watermark()
                .is_none_or(|hw| self.segments[1].base_offset <= hw);
            if !(below_start || ((expired || oversized) && replicated)) {
                break;
            }
            removed.push(self.segments.remove(0));
        }
        if !removed.is_empty() {
            self.log_start_offset = self.log_start_offset.max(self.segments[0].base_offset);
            self.producers.log_start_advanced(self.log_start_offset);
            // Written with the next checkpoint taken under the lock (roll, close...): a stale
            // first entry is harmless, open truncates the cache to the log start again.
            self.epochs_dirty |= self.epochs.truncate_from_start(self.log_start_offset);
            self.clamp_high_watermark();
        }
        let current = self.current_checkpoint();
        // Retention moved the log start: the checkpoint must say so, periodic or not.
        let checkpoint = (!removed.is_empty()
            || (checkpoint && self.last_checkpoint != Some(current)))
        .then(|| (self.checkpoints.stamp(), current));
        Maintenance {
            now_ms,
            delete_delay_ms: self.config.file_delete_delay_ms,
            removed,
            due_files: due.into_iter().flat_map(|(_, paths)| paths).collect(),
            fs: self.fs.clone(),
            checkpoints: Arc::clone(&self.checkpoints),
            checkpoint,
            file_work: Arc::clone(&self.file_work),
        }
    }

    /// Records what [`Maintenance::execute`] did; returns how many segments retention deleted,
    /// or the first error (the segments stay out of the log either way, as a failed delete
    /// always left them: their files are retried at the next open).
    pub fn finish_maintenance(&mut self, done: MaintenanceDone) -> Result<u64, LogError> {
        self.deferred_deletes.extend(done.deferred);
        if let Some(checkpoint) = done.checkpoint_written {
            self.last_checkpoint = Some(checkpoint);
        }
        if done.deleted_segments > 0 {
            tracing::info!(dir = %self.dir.display(), deleted = done.deleted_segments, log_start_offset = self.log_start_offset, "retention deleted segments");
        }
        match done.error {
            Some(error) => Err(error),
            None => Ok(done.deleted_segments),
        }
    }

    /// Advances the log start offset (DeleteRecords) and drops segments wholly below it.
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64, LogError> {
        let end = self.log_end_offset();
        if offset < 0 || offset > end {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: end,
            });
        }
        if offset <= self.log_start_offset {
            return Ok(self.log_start_offset);
        }
        self.log_start_offset = offset;
        self.producers.log_start_advanced(offset);
        self.epochs_dirty |= self.epochs.truncate_from_start(offset);
        self.clamp_high_watermark();
        self.write_checkpoint()?;
        while self.segments.len() > 1 && self.segments[1].base_offset <= offset {
            let removed = self.segments.remove(0);
            self.delete_segment(removed, wall_clock_ms())?;
        }
        Ok(self.log_start_offset)
    }

    /// Removes everything at or after `offset` (a follower diverging from its leader; Kafka's
    /// `truncateTo`): the batch holding `offset` and all after it are cut, the cut is made
    /// durable (a power loss must not bring back data the leader-epoch cache no longer
    /// describes), the durable end and recovery point are lowered, the producer state is
    /// rebuilt and the leader-epoch cache truncated. It first waits for a sync in progress (the
    /// group-commit thread's) and keeps others out until it is done, so no sync acknowledges
    /// offsets while they are being cut. Every `on_durable` callback still waiting for an
    /// offset above the new end is answered with [`LogError::Truncated`] before this returns,
    /// never with success: a deposed leader must not acknowledge data it cut, even once other
    /// data fills those offsets again.
    pub fn truncate_to(&mut self, offset: i64) -> Result<(), LogError> {
        if offset >= self.log_end_offset() {
            return Ok(());
        }
        let offset = offset.max(self.log_start_offset);
        let sync_target = Arc::clone(&self.sync_target);
        let _no_sync_meanwhile = sync_target.exclude_syncs();
        while self.segments.len() > 1 && self.active().base_offset >= offset {
            if let Some(removed) = self.segments.pop() {
                self.delete_segment(removed, wall_clock_ms())?;
            }
        }
        let interval = self.config.index_interval_bytes;
        let cut = self.active_mut().truncate_to(offset, interval);
        let active_file = Arc::clone(self.active().file());
        self.sync_target.rolled(active_file);
        let new_end = self.log_end_offset();
        // Durability follows the new end even if the cut failed half way (the segment then
        // reflects what its file holds).
        self.fail_truncated_callbacks(new_end);
        cut?;
        // Cutting the batch that holds the log start leaves nothing readable: start at the end.
        self.log_start_offset = self.log_start_offset.min(new_end);
        self.clamp_high_watermark();
        self.epochs_dirty |= self.epochs.truncate_from_end(new_end);
        self.recover_producer_state()?;
        self.active().sync()?;
        // The recovery point must not vouch for offsets that will be written again: a restart
        // after a crash validates (and an unclean open syncs) from the new end on. Writing it
        // also makes the removed segments' names durable (directory fsync).
        self.write_checkpoint()
    }

    /// Deletes every segment and restarts the log, empty, at `offset` (Kafka's
    /// `truncateFullyAndStartAt`): what a follower does when its log end is below the leader's
    /// log start (the leader answered OFFSET_OUT_OF_RANGE) or a truncation point lies below its
    /// own log start. The log start and end become `offset`; producer state, its snapshots and
    /// the leader-epoch cache are cleared; every waiting `on_durable` callback is answered with
    /// [`LogError::Truncated`]. Like [`Log::truncate_to`] it excludes the group-commit thread's
    /// syncs while it works.
    pub fn truncate_fully_and_start_at(&mut self, offset: i64) -> Result<(), LogError> {
        if offset < 0 {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.log_end_offset(),
            });
        }
        let sync_target = Arc::clone(&self.sync_target);
        let _no_sync_meanwhile = sync_target.exclude_syncs();
        let old_end = self.log_end_offset();
        // The segment list is never empty: the new (empty) segment is in place before the old
        // ones go. One already based at `offset` is emptied rather than created again (same
        // file names).
        let interval = self.config.index_interval_bytes;
        let restarted = match self.segments.iter().position(|s| s.base_offset == offset) {
            Some(index) => {
                self.segments[index].truncate_to(offset, interval)?;
                self.segments.remove(index)
            }
            None => Segment::create(&self.fs, &self.dir, offset)?,
        };
        restarted.sync()?;
        let active_file = Arc::clone(restarted.file());
        let old_segments = std::mem::replace(&mut self.segments, vec![restarted]);
        for (through_offset, callback) in self.sync_target.restarted(active_file, offset) {
            callback(Err(LogError::Truncated {
                offset: through_offset,
                log_end_offset: offset,
            }));
        }
        self.log_start_offset = offset;
        self.clamp_high_watermark();
        self.producers = ProducerState::default();
        self.epochs = LeaderEpochCache::default();
        self.epochs_dirty = true;
        self.roll_jitter_seed = random_seed();
        let now_ms = wall_clock_ms();
        for removed in old_segments {
            self.delete_segment(removed, now_ms)?;
        }
        producer_snapshot::delete_snapshots_above(&self.fs, &self.dir, i64::MIN)?;
        tracing::info!(dir = %self.dir.display(), old_end, start_offset = offset, "truncated the log fully");
        // Also makes the new segment's name and the removals durable (directory fsync).
        self.write_checkpoint()
    }

    /// Lowers the durable end to `new_end` and fails the callbacks waiting above it.
    fn fail_truncated_callbacks(&mut self, new_end: i64) {
        for (through_offset, callback) in self.sync_target.truncated(new_end) {
            callback(Err(LogError::Truncated {
                offset: through_offset,
                log_end_offset: new_end,
            }));
        }
    }

    /// Flushes data and indexes and leaves the clean-shutdown marker, so the next open reads
    /// almost nothing. A cleaner working on this log is stopped first (and waited for).
    pub fn close(mut self) -> Result<(), LogError> {
        self.cleaning.abort_and_wait();
        let file_work = Arc::clone(&self.file_work);
        let mut retired = lock_file_work(&file_work);
        retired.0 = true;
        let active = self.active_mut();
        active.seal_time_index();
        active.persist_indexes(true)?;
        self.flush()?;
        self.write_checkpoint()?;
        producer_snapshot::write_snapshot(
            &self.fs,
            &self.dir,
            self.log_end_offset(),
            &self.producers,
        )?;
        let active = self.active();
        checkpoint::write_clean_shutdown(
            &self.fs,
            &self.dir,
            CleanShutdown {
                log_end_offset: active.next_offset,
                active_base_offset: active.base_offset,
                active_size_bytes: active.size_bytes,
            },
        )?;
        Ok(())
    }

    /// Removes the partition's directory and everything in it.
    pub fn delete(self) -> Result<(), LogError> {
        self.cleaning.abort_and_wait();
        let file_work = Arc::clone(&self.file_work);
        let mut retired = lock_file_work(&file_work);
        retired.0 = true;
        let (fs, dir) = (self.fs.clone(), self.dir.clone());
        drop(self);
        fs.remove_dir_all(&dir)?;
        Ok(())
    }
}

/// Maintenance's file work, planned by [`Log::plan_maintenance`] under the log's lock and done
/// by [`Maintenance::execute`] without it: deleting (or renaming `*.deleted`) the segments
/// retention removed, deleting the due `*.deleted` files, and writing the checkpoint.
#[derive(Debug)]
pub struct Maintenance {
    fs: Fs,
    now_ms: i64,
    delete_delay_ms: i64,
    removed: Vec<Segment>,
    due_files: Vec<PathBuf>,
    checkpoints: Arc<CheckpointWriter>,
    checkpoint: Option<(u64, Checkpoint)>,
    file_work: Arc<std::sync::Mutex<Retired>>,
}

/// Whether the log was closed or deleted (see `Log::file_work`).
#[derive(Debug, Default)]
struct Retired(bool);

fn lock_file_work(file_work: &std::sync::Mutex<Retired>) -> std::sync::MutexGuard<'_, Retired> {
    file_work
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What [`Maintenance::execute`] did, for [`Log::finish_maintenance`].
#[derive(Debug)]
pub struct MaintenanceDone {
    deferred: Vec<(i64, Vec<PathBuf>)>,
    deleted_segments: u64,
    checkpoint_written: Option<Checkpoint>,
    error: Option<LogError>,
}

impl Maintenance {
    /// Whether retention removed segments (the log start offset may have moved).
    pub fn removes_segments(&self) -> bool {
        !self.removed.is_empty()
    }

    /// Does the file work (blocking I/O, no lock needed). Segments are deleted before the
    /// checkpoint that moves the log start is written, as when it all ran under the lock.
    pub fn execute(self) -> MaintenanceDone {
        let mut done = MaintenanceDone {
            deferred: Vec::new(),
            deleted_segments: 0,
            checkpoint_written: None,
            error: None,
        };
        let file_work = Arc::clone(&self.file_work);
        let retired = lock_file_work(&file_work);
        if retired.0 {
            // Closed (the next open deletes what lies below the log start) or deleted.
            return done;
        }
        for path in &self.due_files {
            if let Err(error) = self.fs.remove_file_if_exists(path) {
                done.error.get_or_insert(error.into());
            }
        }
        for segment in self.removed {
            let deleted = if self.delete_delay_ms <= 0 {
                segment.delete_files()
            } else {
                segment.rename_for_deletion().map(|renamed| {
                    let due_ms = self.now_ms.saturating_add(self.delete_delay_ms);
                    done.deferred.push((due_ms, renamed));
                })
            };
            match deleted {
                Ok(()) => done.deleted_segments += 1,
                Err(error) => {
                    done.error.get_or_insert(error);
                }
            }
        }
        if let Some((stamp, checkpoint)) = self.checkpoint {
            match self.checkpoints.write(stamp, checkpoint) {
                Ok(true) => done.checkpoint_written = Some(checkpoint),
                Ok(false) => {}
                Err(error) => {
                    done.error.get_or_insert(error.into());
                }
            }
        }
        done
    }
}

/// One maintenance pass over a log behind its owner's lock (the broker's partition lock):
/// expires idle producers (`producer.id.expiration.ms`) and plans retention and the checkpoint
/// under the write lock, calling `planned` there (to publish a moved log start), then deletes
/// files and fsyncs the checkpoint with the lock released, so appends and reads never wait for
/// that I/O, and takes the lock again only to record the outcome. `None` if the log is gone.
pub fn run_maintenance(
    lock: &std::sync::RwLock<Option<Log>>,
    now_ms: i64,
    producer_id_expiration_ms: i64,
    checkpoint: bool,
    planned: impl FnOnce(&Log, &Maintenance),
) -> Option<Result<u64, LogError>> {
    let work = {
        let mut guard = lock.write().unwrap_or_else(|p| p.into_inner());
        let log = guard.as_mut()?;
        log.expire_producers(now_ms, producer_id_expiration_ms);
        let work = log.plan_maintenance(now_ms, checkpoint);
        planned(log, &work);
        work
    };
    let done = work.execute();
    let mut guard = lock.write().unwrap_or_else(|p| p.into_inner());
    match guard.as_mut() {
        Some(log) => Some(log.finish_maintenance(done)),
        // Closed or deleted meanwhile: nothing to record.
        None => Some(done.error.map_or(Ok(done.deleted_segments), Err)),
    }
}

/// A fresh random number (std's per-instance random hasher keys; no extra dependency).
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// How many leading bytes of `buffer` are whole batches whose last offset is below `upper`, and
/// the offset after them.
fn whole_batches_below(buffer: &[u8], upper: i64) -> (usize, i64) {
    let mut cut = 0;
    let mut next_offset = 0;
    while let Some(rest) = buffer.get(cut..) {
        let Ok(header) = BatchHeader::parse(rest) else {
            break;
        };
        if header.size_bytes > rest.len() || header.last_offset() >= upper {
            break;
        }
        cut += header.size_bytes;
        next_offset = header.next_offset();
    }
    (cut, next_offset)
}

/// Base offsets of the `.log` files in `dir`, sorted; removes leftovers of interrupted work.
fn list_segments(fs: &Fs, dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut base_offsets = Vec::new();
    let mut index_files = Vec::new();
    for path in fs.list_dir(dir)? {
        let (Some(stem), Some(extension)) = (
            path.file_stem().and_then(|s| s.to_str()),
            path.extension().and_then(|s| s.to_str()),
        ) else {
            continue;
        };
        match extension {
            "log" => match stem.parse::<i64>() {
                Ok(base) if base >= 0 && stem.len() == 20 => base_offsets.push(base),
                _ => tracing::warn!(path = %path.display(), "ignoring unexpected file"),
            },
            "index" | "timeindex" => index_files.push((stem.to_string(), path)),
            // Files that were waiting out file.delete.delay.ms when the broker stopped.
            "tmp" | "deleted" => fs.remove_file(&path)?,
            _ => {}
        }
    }
    for (stem, path) in index_files {
        if !stem.parse::<i64>().is_ok_and(|b| base_offsets.contains(&b)) {
            fs.remove_file(&path)?;
        }
    }
    base_offsets.sort_unstable();
    Ok(base_offsets)
}

/// Opens every segment, validating from the recovery point on unless the last close was clean.
/// A segment that had to be cut, or that does not continue its predecessor's offsets, ends the
/// log: later segments cannot follow a hole and are deleted.
fn open_segments(
    fs: &Fs,
    dir: &Path,
    config: &LogConfig,
    base_offsets: &[i64],
    stored: Option<Checkpoint>,
    clean: Option<CleanShutdown>,
    cleaned_below: i64,
) -> Result<(Vec<Segment>, bool), LogError> {
    let clean = clean.filter(|marker| {
        let active_base = base_offsets.last().copied();
        let active_len = active_base.and_then(|base| {
            fs.file_len(&dir.join(crate::segment::segment_file_name(base, "log")))
                .ok()
        });
        active_base == Some(marker.active_base_offset)
            && active_len == Some(marker.active_size_bytes)
    });
    let recovery_point = match (clean, stored) {
        (Some(_), _) => i64::MAX,
        (None, Some(checkpoint)) => checkpoint.recovery_point,
        (None, None) => 0,
    };
    if clean.is_none() && !base_offsets.is_empty() {
        tracing::info!(dir = %dir.display(), recovery_point, "recovering log after unclean shutdown");
    }
    let mut segments: Vec<Segment> = Vec::with_capacity(base_offsets.len());
    for (i, &base) in base_offsets.iter().enumerate() {
        let next_base = base_offsets.get(i + 1).copied();
        let recover_from = match next_base {
            Some(next) if next <= recovery_point => None,
            _ if recovery_point == i64::MAX => None,
            _ => Some(recovery_point.max(base)),
        };
        // The cleaner may have removed records anywhere below its mark, the last batches of a
        // segment included.
        let gaps_allowed = base < cleaned_below;
        let (segment, outcome) = Segment::open(
            fs,
            dir,
            base,
            config.index_interval_bytes,
            recover_from,
            gaps_allowed,
        )?;
        let continues = segments.last().is_none_or(|prev| {
            if prev.gaps_allowed() {
                prev.next_offset <= base
            } else {
                prev.next_offset == base
            }
        });
        if !continues {
            tracing::warn!(dir = %dir.display(), base, "segment does not continue the log; deleting it and later segments");
            drop(segment);
            delete_segment_files(fs, dir, &base_offsets[i..])?;
            break;
        }
        let ends_early = !gaps_allowed && next_base.is_some_and(|next| segment.next_offset != next);
        segments.push(segment);
        if outcome.truncated || ends_early {
            if let Some(later) = base_offsets.get(i + 1..).filter(|l| !l.is_empty()) {
                tracing::warn!(dir = %dir.display(), "log ends inside segment {base}; deleting {} later segments", later.len());
                delete_segment_files(fs, dir, later)?;
            }
            break;
        }
    }
    Ok((segments, clean.is_some()))
}

pub const LOCK_FILE: &str = ".lock";

fn lock_dir(fs: &Fs, dir: &Path) -> Result<quill_fs::File, LogError> {
    let file = fs.open(
        &dir.join(LOCK_FILE),
        OpenOptions {
            create: true,
            write: true,
            ..OpenOptions::default()
        },
    )?;
    if file.try_lock()? {
        Ok(file)
    } else {
        Err(LogError::Locked(dir.display().to_string()))
    }
}

/// Creates the log's directory; a new one is made durable in its parent, so that data synced
/// into it cannot vanish with its name after a power loss.
fn create_dir_durably(fs: &Fs, dir: &Path) -> Result<(), LogError> {
    if fs.is_dir(dir) {
        return Ok(());
    }
    fs.create_dir_all(dir)?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs.sync_dir(parent)?;
    }
    Ok(())
}

fn delete_segment_files(fs: &Fs, dir: &Path, bases: &[i64]) -> Result<(), LogError> {
    for &base in bases {
        for extension in ["log", "index", "timeindex"] {
            fs.remove_file_if_exists(
                &dir.join(crate::segment::segment_file_name(base, extension)),
            )?;
        }
    }
    Ok(())
}
