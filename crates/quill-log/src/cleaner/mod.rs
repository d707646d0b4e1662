//! Log compaction (Kafka's log cleaner) for `cleanup.policy=compact` partitions.
//!
//! A cleaning round of one log, as in Kafka's `Cleaner.doClean`:
//! 1. **Plan** (shared lock, no bulk I/O): the dirty section is `[first dirty offset, first
//!    uncleanable offset)`, where the first dirty offset is where the last round stopped and the
//!    uncleanable one is the lowest of the active segment's base, the last stable offset (which
//!    is capped by the high watermark) and the first segment younger than
//!    `min.compaction.lag.ms`. The plan holds the segment files (shared handles), the last batch
//!    of every live producer and the aborted transactions.
//! 2. **Map** (no lock): the keys of the dirty section go into an [`OffsetMap`] of fixed size
//!    (`log.cleaner.dedupe.buffer.size`). When it fills up the round stops at the last mapped
//!    offset; the rest is left for the next round (several passes).
//! 3. **Clean** (no lock): every segment from the start of the log up to the mapped end, in
//!    groups of at most `segment.bytes` (Kafka's `groupSegmentsBySize`), is rewritten into one
//!    staged segment. A record survives if no later record has its key (its offset is the
//!    mapped one, or past the mapped end); a tombstone survives until `delete.retention.ms`
//!    after the round that first kept it (the "delete horizon", stored in the batch as in
//!    KIP-534); records of aborted transactions go, and transaction markers go once no record of
//!    their transaction is left and their own delete horizon has passed. Keyless records go.
//!    Every surviving record keeps its offset; a batch keeps its base and last offset (so the
//!    producer's sequence range is intact) and its codec (a changed batch is re-encoded and
//!    recompressed with it). The last batch of every live producer, and the batch ending the
//!    round, are kept even when emptied.
//! 4. **Swap** (exclusive lock, only renames): see [`swap`]. A swap is refused if a segment it
//!    replaces changed meanwhile (retention, truncation, deletion).
//!
//! The active segment is never cleaned. Offsets of cleaned segments may have gaps; the log
//! records how far cleaned segments reach (`cleaned_below`) before the first swap, so recovery
//! knows where gaps are legitimate.

mod offset_map;
pub(crate) mod swap;
mod throttle;
mod txn;

use std::collections::HashMap;
use std::io::IoSlice;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::Instant;

pub use offset_map::OffsetMap;
pub use throttle::Throttler;

use crate::batch::{self, BatchHeader, CONTROL_FLAG, TIMESTAMP_TYPE_FLAG, TRANSACTIONAL_FLAG};
use crate::checkpoint::{self, CleanerCheckpoint};
use crate::config::LogConfig;
use crate::error::LogError;
use crate::log::Log;
use crate::producer::{AbortedEntry, ControlMarker};
use crate::records::{self, BatchFields, Compression, CompressionLevels, RecordHeader};
use crate::segment::{ChunkReader, PlacedBatch, Segment};

use quill_fs::{File, Fs};

/// Attribute bit 6 of a v2 batch: its base timestamp is the delete horizon (KIP-534).
pub const DELETE_HORIZON_FLAG: i16 = 0x40;
/// Kafka's default `log.cleaner.dedupe.buffer.size` (shared by all cleaner threads).
pub const DEFAULT_DEDUPE_BUFFER_BYTES: u64 = 128 * 1024 * 1024;
/// Kafka's `log.cleaner.io.buffer.load.factor`.
pub const DEFAULT_DEDUPE_BUFFER_LOAD_FACTOR: f64 = 0.9;
/// Output is written to the staged segment in chunks of about this size.
const WRITE_CHUNK_BYTES: usize = 1024 * 1024;

/// One cleaner's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CleanerConfig {
    /// This cleaner's share of `log.cleaner.dedupe.buffer.size`.
    pub dedupe_buffer_bytes: u64,
    /// How full the offset map may get before a round stops mapping.
    pub dedupe_buffer_load_factor: f64,
}

impl Default for CleanerConfig {
    fn default() -> Self {
        CleanerConfig {
            dedupe_buffer_bytes: DEFAULT_DEDUPE_BUFFER_BYTES,
            dedupe_buffer_load_factor: DEFAULT_DEDUPE_BUFFER_LOAD_FACTOR,
        }
    }
}

/// How dirty a compacted log is (Kafka's `LogToClean`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CleanableStats {
    /// Where the last cleaning round stopped (the cleaner's position).
    pub first_dirty_offset: i64,
    /// The cleaner may not go past this offset now.
    pub first_uncleanable_offset: i64,
    /// Bytes of the segments below the first dirty offset.
    pub clean_bytes: u64,
    /// Bytes of the segments from the first dirty offset up to the first uncleanable segment.
    pub cleanable_bytes: u64,
    /// How long past `max.compaction.lag.ms` the oldest dirty record is (0 if not).
    pub compaction_delay_ms: i64,
}

impl CleanableStats {
    pub fn total_bytes(&self) -> u64 {
        self.clean_bytes + self.cleanable_bytes
    }

    /// Dirty bytes over all bytes (`min.cleanable.dirty.ratio` is compared with it).
    pub fn dirty_ratio(&self) -> f64 {
        match self.total_bytes() {
            0 => 0.0,
            total => self.cleanable_bytes as f64 / total as f64,
        }
    }

    /// Kafka's rule: dirty enough, or dirty data older than `max.compaction.lag.ms`.
    pub fn should_clean(&self, min_cleanable_dirty_ratio: f64) -> bool {
        self.cleanable_bytes > 0
            && (self.compaction_delay_ms > 0 || self.dirty_ratio() > min_cleanable_dirty_ratio)
    }
}

/// What one cleaning round did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CleanStats {
    /// The new first dirty offset.
    pub end_offset: i64,
    pub segments_cleaned: usize,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub records_read: u64,
    pub records_retained: u64,
    pub map_utilization: f64,
}

/// Access to a log that lives behind the owner's lock: the cleaner takes it shared to plan and
/// exclusively only to swap, never while reading or writing segment data.
pub trait LogHandle {
    /// Runs `f` with shared access; false if the log is gone.
    fn with_log(&self, f: &mut dyn FnMut(&Log)) -> bool;
    /// Runs `f` with exclusive access; false if the log is gone.
    fn with_log_mut(&self, f: &mut dyn FnMut(&mut Log)) -> bool;
}

impl LogHandle for RwLock<Log> {
    fn with_log(&self, f: &mut dyn FnMut(&Log)) -> bool {
        f(&self.read().unwrap_or_else(|p| p.into_inner()));
        true
    }

    fn with_log_mut(&self, f: &mut dyn FnMut(&mut Log)) -> bool {
        f(&mut self.write().unwrap_or_else(|p| p.into_inner()));
        true
    }
}

impl LogHandle for RwLock<Option<Log>> {
    fn with_log(&self, f: &mut dyn FnMut(&Log)) -> bool {
        match self.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
            Some(log) => {
                f(log);
                true
            }
            None => false,
        }
    }

    fn with_log_mut(&self, f: &mut dyn FnMut(&mut Log)) -> bool {
        match self.write().unwrap_or_else(|p| p.into_inner()).as_mut() {
            Some(log) => {
                f(log);
                true
            }
            None => false,
        }
    }
}

/// At most one cleaner works on a log; `close`/`delete` ask it to stop and wait for it
/// (Kafka's `abortAndPauseCleaning`).
#[derive(Debug, Default)]
pub struct CleaningLease {
    busy: Mutex<bool>,
    idle: Condvar,
    aborted: AtomicBool,
}

impl CleaningLease {
    fn try_acquire(self: &Arc<Self>) -> Option<LeaseGuard> {
        if self.aborted.load(Ordering::Acquire) {
            return None;
        }
        let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        if *busy {
            return None;
        }
        *busy = true;
        Some(LeaseGuard(Arc::clone(self)))
    }

    /// Stops any cleaning of this log for good and waits until a running one has let go.
    pub(crate) fn abort_and_wait(&self) {
        self.aborted.store(true, Ordering::Release);
        let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        while *busy {
            busy = self.idle.wait(busy).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::Acquire)
    }
}

#[derive(Debug)]
struct LeaseGuard(Arc<CleaningLease>);

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        *self.0.busy.lock().unwrap_or_else(|p| p.into_inner()) = false;
        self.0.idle.notify_all();
    }
}

/// The last batch a live producer has in the log (Kafka's `LastRecord`).
#[derive(Clone, Copy, Debug)]
struct LastRecord {
    last_data_offset: Option<i64>,
    producer_epoch: i16,
}

/// A segment as the plan saw it.
#[derive(Debug)]
struct PlannedSegment {
    base_offset: i64,
    next_offset: i64,
    size_bytes: u64,
    file: Arc<File>,
    modified_ms: i64,
    index_bytes: (u64, u64),
    /// Where mapping starts in this segment (the batch holding the first dirty offset).
    dirty_start_position: u64,
}

/// Everything a round needs from the log, taken under the shared lock.
#[derive(Debug)]
struct CleaningPlan {
    fs: Fs,
    dir: PathBuf,
    config: LogConfig,
    now_ms: i64,
    first_dirty_offset: i64,
    first_uncleanable_offset: i64,
    /// Non-active segments with a base below the first uncleanable offset.
    segments: Vec<PlannedSegment>,
    producers: HashMap<i64, LastRecord>,
    aborted: Vec<AbortedEntry>,
    lease: LeaseGuard,
}

/// A cleaned segment, complete and fsynced in the staging directory.
#[derive(Debug)]
pub(crate) struct StagedSegment {
    base_offset: i64,
    /// The segments it replaces: base offset and the file handle the plan saw.
    replaced: Vec<(i64, Arc<File>)>,
    /// Offsets of ABORT markers whose record was removed.
    removed_abort_markers: Vec<i64>,
    round_end_offset: i64,
}

impl Log {
    /// How dirty this log is for the cleaner, or `None` if `cleanup.policy` has no `compact`.
    pub fn cleanable_stats(&self, now_ms: i64) -> Option<CleanableStats> {
        if !self.config.cleanup_policy.compact {
            return None;
        }
        let log_start = self.log_start_offset;
        let end = self.log_end_offset();
        let checkpoint = self.cleaner_checkpoint.first_dirty_offset;
        // A checkpoint outside the log (truncation, or records deleted below it) restarts from
        // the log start, as in Kafka.
        let first_dirty = if checkpoint < log_start || checkpoint > end {
            log_start
        } else {
            checkpoint
        };
        // Nothing at or above the high watermark is cleaned (Kafka: the last stable offset is
        // capped by it): the broker's recorded one, and always the durable end.
        let high_watermark = self
            .recorded_high_watermark()
            .map_or(self.durable_end_offset(), |hw| {
                hw.min(self.durable_end_offset())
            });
        let last_stable = self.first_unstable_offset().min(high_watermark);
        let active_base = self.segments.last().map_or(end, |s| s.base_offset);
        let mut first_uncleanable = last_stable.min(active_base);
        let lag_ms = self.config.compaction.min_compaction_lag_ms.max(0);
        let non_active = &self.segments[..self.segments.len().saturating_sub(1)];
        if lag_ms > 0 {
            let youngest_allowed_ms = now_ms.saturating_sub(lag_ms);
            if let Some(young) = non_active
                .iter()
                .filter(|s| s.next_offset > first_dirty)
                .find(|s| s.max_timestamp_ms > youngest_allowed_ms)
            {
                first_uncleanable = first_uncleanable.min(young.base_offset);
            }
        }
        let first_uncleanable = first_uncleanable.max(first_dirty);
        // Bytes are counted by whole segments, as in Kafka's `calculateCleanableBytes`.
        let first_uncleanable_base = non_active
            .iter()
            .find(|s| s.next_offset > first_uncleanable || s.base_offset >= first_uncleanable)
            .map_or(active_base, |s| s.base_offset);
        let mut clean_bytes = 0;
        let mut cleanable_bytes = 0;
        for (i, segment) in self.segments.iter().enumerate() {
            let next_base = self.segments.get(i + 1).map_or(i64::MAX, |s| s.base_offset);
            if next_base <= log_start {
                continue;
            }
            if segment.base_offset >= first_uncleanable_base {
                break;
            }
            if next_base <= first_dirty {
                clean_bytes += segment.size_bytes;
            } else {
                cleanable_bytes += segment.size_bytes;
            }
        }
        Some(CleanableStats {
            first_dirty_offset: first_dirty,
            first_uncleanable_offset: first_uncleanable,
            clean_bytes,
            cleanable_bytes,
            compaction_delay_ms: self.compaction_delay_ms(first_dirty, now_ms),
        })
    }

    /// How far past `max.compaction.lag.ms` the oldest dirty batch is (Kafka measures it from
    /// the first batch timestamp of each dirty non-active segment).
    fn compaction_delay_ms(&self, first_dirty: i64, now_ms: i64) -> i64 {
        let max_lag_ms = self.config.compaction.max_compaction_lag_ms.max(0);
        if max_lag_ms == i64::MAX {
            return 0;
        }
        let clean_until_ms = now_ms.saturating_sub(max_lag_ms);
        let non_active = &self.segments[..self.segments.len().saturating_sub(1)];
        let earliest = non_active
            .iter()
            .filter(|s| s.next_offset > first_dirty)
            .filter_map(|s| s.first_batch_timestamp_ms().ok().flatten())
            .filter(|&ts| ts > 0)
            .min();
        match earliest {
            Some(earliest) if earliest < clean_until_ms => clean_until_ms - earliest,
            _ => 0,
        }
    }

    /// The cleaner's position (Kafka's cleaner checkpoint) as last recorded.
    pub fn cleaner_checkpoint_offset(&self) -> i64 {
        self.cleaner_checkpoint.first_dirty_offset
    }

    fn plan_cleaning(&self, now_ms: i64) -> Option<CleaningPlan> {
        let stats = self.cleanable_stats(now_ms)?;
        if stats.first_uncleanable_offset <= stats.first_dirty_offset {
            return None;
        }
        let lease = self.cleaning.try_acquire()?;
        let non_active = &self.segments[..self.segments.len().saturating_sub(1)];
        let mut segments = Vec::new();
        for segment in non_active {
            if segment.base_offset >= stats.first_uncleanable_offset {
                break;
            }
            let holds_first_dirty = segment.base_offset <= stats.first_dirty_offset
                && segment.next_offset > stats.first_dirty_offset;
            let dirty_start_position = if holds_first_dirty {
                match segment.find_position(stats.first_dirty_offset) {
                    Ok(found) => found.map_or(0, |(position, _)| position),
                    Err(error) => {
                        tracing::warn!(dir = %self.dir.display(), %error, "cleaner could not look up the first dirty offset");
                        0
                    }
                }
            } else {
                0
            };
            segments.push(PlannedSegment {
                base_offset: segment.base_offset,
                next_offset: segment.next_offset,
                size_bytes: segment.size_bytes,
                file: Arc::clone(segment.file()),
                modified_ms: segment.modified_ms().unwrap_or(now_ms),
                index_bytes: segment.index_bytes(),
                dirty_start_position,
            });
        }
        let producers = self
            .producers
            .producers
            .iter()
            .map(|(&producer_id, entry)| {
                let last = LastRecord {
                    last_data_offset: entry.batches.back().map(|b| b.last_offset),
                    producer_epoch: entry.epoch,
                };
                (producer_id, last)
            })
            .collect();
        Some(CleaningPlan {
            fs: self.fs.clone(),
            dir: self.dir.clone(),
            config: self.config.clone(),
            now_ms,
            first_dirty_offset: stats.first_dirty_offset,
            first_uncleanable_offset: stats.first_uncleanable_offset,
            segments,
            producers,
            aborted: self.producers.aborted.clone(),
            lease,
        })
    }

    /// Replaces the segments a staged one was made from, unless one of them changed since the
    /// plan. Returns whether the swap happened.
    fn swap_cleaned(&mut self, staged: &StagedSegment) -> Result<bool, LogError> {
        let Some(start) = self
            .segments
            .iter()
            .position(|s| s.base_offset == staged.base_offset)
        else {
            swap::discard_cleaned(&self.fs, &self.dir)?;
            return Ok(false);
        };
        let end = start + staged.replaced.len();
        let unchanged = end < self.segments.len()
            && self.segments[start..end].iter().zip(&staged.replaced).all(
                |(segment, (base, file))| {
                    segment.base_offset == *base && Arc::ptr_eq(segment.file(), file)
                },
            );
        if !unchanged {
            tracing::info!(dir = %self.dir.display(), base_offset = staged.base_offset, "segments changed while cleaning; dropping the cleaned copy");
            swap::discard_cleaned(&self.fs, &self.dir)?;
            return Ok(false);
        }
        if self.cleaner_checkpoint.cleaned_below < staged.round_end_offset {
            // Recovery must know that segments below this may skip offsets before any does.
            let raised = CleanerCheckpoint {
                cleaned_below: staged.round_end_offset,
                ..self.cleaner_checkpoint
            };
            checkpoint::write_cleaner_checkpoint(&self.fs, &self.dir, raised)?;
            self.cleaner_checkpoint = raised;
        }
        let manifest = swap::SwapManifest {
            new_base_offset: staged.base_offset,
            replaced: staged.replaced.iter().map(|(base, _)| *base).collect(),
        };
        swap::commit(&self.fs, &self.dir, &manifest)?;
        let (segment, _) = Segment::open(
            &self.fs,
            &self.dir,
            staged.base_offset,
            self.config.index_interval_bytes,
            None,
            true,
        )?;
        self.segments.splice(start..end, [segment]);
        if !staged.removed_abort_markers.is_empty() {
            self.producers
                .aborted
                .retain(|a| !staged.removed_abort_markers.contains(&a.last_offset));
        }
        Ok(true)
    }

    /// Records a finished round: the next one starts at `end_offset`.
    fn finish_cleaning(&mut self, end_offset: i64) -> Result<(), LogError> {
        let finished = CleanerCheckpoint {
            first_dirty_offset: end_offset,
            cleaned_below: self.cleaner_checkpoint.cleaned_below.max(end_offset),
        };
        checkpoint::write_cleaner_checkpoint(&self.fs, &self.dir, finished)?;
        self.cleaner_checkpoint = finished;
        Ok(())
    }
}

/// How a batch fares in a cleaning (Kafka's `BatchRetention`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BatchRetention {
    Delete,
    RetainEmpty,
    DeleteEmpty,
}

/// One cleaner thread's state: its offset map (allocated on first use) and the shared throttle.
#[derive(Debug)]
pub struct LogCleaner {
    config: CleanerConfig,
    map: Option<OffsetMap>,
    throttler: Arc<Throttler>,
}

/// Output of one group, buffered before it is written.
struct GroupOutput {
    segment: Segment,
    buffer: Vec<u8>,
    placed: Vec<PlacedBatch>,
    index_interval_bytes: u32,
    now_ms: i64,
    bytes_written: u64,
}

impl GroupOutput {
    fn push(&mut self, batch: &[u8], header: &BatchHeader) -> Result<(), LogError> {
        self.placed.push(PlacedBatch {
            base_offset: header.base_offset,
            last_offset: header.last_offset(),
            max_timestamp_ms: header.max_timestamp_ms,
            size_bytes: batch.len() as u64,
        });
        self.buffer.extend_from_slice(batch);
        if self.buffer.len() >= WRITE_CHUNK_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), LogError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let mut slices = [IoSlice::new(&self.buffer)];
        self.segment.append(
            &mut slices,
            &self.placed,
            self.index_interval_bytes,
            self.now_ms,
        )?;
        self.bytes_written += self.buffer.len() as u64;
        self.buffer.clear();
        self.placed.clear();
        Ok(())
    }
}

/// A record-level outcome for one batch.
struct FilteredBatch {
    retained: usize,
    read: usize,
    contains_tombstones: bool,
}

impl LogCleaner {
    pub fn new(config: CleanerConfig, throttler: Arc<Throttler>) -> LogCleaner {
        LogCleaner {
            config,
            map: None,
            throttler,
        }
    }

    /// Runs one cleaning round on the log if it has anything cleanable. Returns `None` when
    /// there was nothing to do or the round was abandoned (log closed, deleted or changed).
    pub fn clean(
        &mut self,
        log: &dyn LogHandle,
        now_ms: i64,
    ) -> Result<Option<CleanStats>, LogError> {
        let mut plan = None;
        if !log.with_log(&mut |log| plan = log.plan_cleaning(now_ms)) {
            return Ok(None);
        }
        let Some(plan) = plan else {
            return Ok(None);
        };
        let started = Instant::now();
        let result = self.clean_planned(log, &plan);
        if result.is_err() {
            // Whatever was staged is useless now; the log itself was not touched.
            if let Err(error) = swap::discard_cleaned(&plan.fs, &plan.dir) {
                tracing::warn!(dir = %plan.dir.display(), %error, "could not remove the cleaner's unfinished files");
            }
        }
        if let Ok(Some(stats)) = &result {
            tracing::info!(
                dir = %plan.dir.display(),
                end_offset = stats.end_offset,
                segments = stats.segments_cleaned,
                bytes_read = stats.bytes_read,
                bytes_written = stats.bytes_written,
                records_read = stats.records_read,
                records_retained = stats.records_retained,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "cleaned log"
            );
        }
        result
    }

    fn clean_planned(
        &mut self,
        log: &dyn LogHandle,
        plan: &CleaningPlan,
    ) -> Result<Option<CleanStats>, LogError> {
        let mut stats = CleanStats::default();
        let map = self.map.get_or_insert_with(|| {
            OffsetMap::new(
                self.config.dedupe_buffer_bytes,
                self.config.dedupe_buffer_load_factor,
            )
        });
        let Some(end_offset) = build_offset_map(map, plan, &self.throttler, &mut stats)? else {
            return Ok(None);
        };
        stats.end_offset = end_offset;
        stats.map_utilization = map.utilization();
        let to_clean: Vec<&PlannedSegment> = plan
            .segments
            .iter()
            .filter(|s| s.base_offset < end_offset)
            .collect();
        let groups = group_segments_by_size(
            &to_clean,
            plan.config.segment_bytes,
            u64::from(plan.config.segment_index_bytes),
            end_offset,
        );
        let walk_start = to_clean.first().map_or(end_offset, |s| s.base_offset);
        let mut transactions = txn::CleanedTransactions::new(aborted_from(plan, walk_start));
        for group in groups {
            let staged = clean_group(
                map,
                plan,
                &group,
                &mut transactions,
                end_offset,
                &self.throttler,
                &mut stats,
            )?;
            let mut outcome = Ok(false);
            let present = log.with_log_mut(&mut |log| outcome = log.swap_cleaned(&staged));
            if !present || !outcome? {
                return Ok(None);
            }
            stats.segments_cleaned += group.len();
        }
        let mut outcome = Ok(());
        if !log.with_log_mut(&mut |log| outcome = log.finish_cleaning(end_offset)) {
            return Ok(None);
        }
        outcome?;
        Ok(Some(stats))
    }
}

fn aborted_from(plan: &CleaningPlan, offset: i64) -> Vec<AbortedEntry> {
    plan.aborted
        .iter()
        .filter(|a| a.last_offset >= offset)
        .copied()
        .collect()
}

fn aborted_error() -> LogError {
    LogError::Offline("cleaning was aborted: the log is closing".to_string())
}

/// Maps the keys of the dirty section; returns the round's end offset (exclusive), or `None`
/// when there is nothing to clean.
fn build_offset_map(
    map: &mut OffsetMap,
    plan: &CleaningPlan,
    throttler: &Throttler,
    stats: &mut CleanStats,
) -> Result<Option<i64>, LogError> {
    map.clear();
    let start = plan.first_dirty_offset;
    let end = plan.first_uncleanable_offset;
    // Only transactions whose ABORT marker lies in the walked range matter (Kafka collects the
    // aborted transactions overlapping it); an older one would never see its marker.
    let mut transactions = txn::CleanedTransactions::new(aborted_from(plan, start));
    let dirty: Vec<&PlannedSegment> = plan
        .segments
        .iter()
        .filter(|s| s.next_offset > start && s.base_offset < end)
        .collect();
    for (i, segment) in dirty.iter().enumerate() {
        let next_start = dirty.get(i + 1).map_or(end, |s| s.base_offset).min(end);
        let full = map_segment(map, plan, segment, &mut transactions, throttler, stats)?;
        if full {
            break;
        }
        // Offsets skipped at the end of a segment are covered too.
        map.update_latest_offset(next_start - 1);
    }
    let end_offset = (map.latest_offset() + 1).min(end);
    Ok((end_offset > start).then_some(end_offset))
}

/// Adds one segment's keys to the map; true if the map filled up.
fn map_segment(
    map: &mut OffsetMap,
    plan: &CleaningPlan,
    segment: &PlannedSegment,
    transactions: &mut txn::CleanedTransactions,
    throttler: &Throttler,
    stats: &mut CleanStats,
) -> Result<bool, LogError> {
    let start = plan.first_dirty_offset;
    let end = plan.first_uncleanable_offset;
    let mut reader = ChunkReader::new(&segment.file, segment.size_bytes);
    let mut position = segment.dirty_start_position;
    while position < segment.size_bytes {
        if plan.lease.0.is_aborted() {
            return Err(aborted_error());
        }
        let header = read_header(&mut reader, position, segment)?;
        if header.base_offset >= end {
            break;
        }
        let bytes = read_batch(&mut reader, position, &header, segment)?;
        throttler.maybe_throttle(header.size_bytes as u64);
        stats.bytes_read += header.size_bytes as u64;
        if header.is_control() {
            let marker = control_marker(bytes);
            transactions.on_control_batch(&header, marker);
        } else if !transactions.on_data_batch(&header) {
            let mut full = false;
            records::for_each_record(
                bytes,
                &header,
                records::MAX_DECOMPRESSED_BATCH_BYTES,
                |_, record| {
                    let offset = header.base_offset + i64::from(record.offset_delta);
                    if full || offset < start || offset >= end {
                        return Ok(());
                    }
                    if let Some(key) = record.key {
                        if !map.put(key, offset) {
                            full = true;
                        }
                    }
                    Ok(())
                },
            )?;
            if full {
                return Ok(true);
            }
        }
        if header.last_offset() >= start {
            map.update_latest_offset(header.last_offset().min(end - 1));
        }
        position += header.size_bytes as u64;
    }
    Ok(false)
}

fn read_header(
    reader: &mut ChunkReader<'_>,
    position: u64,
    segment: &PlannedSegment,
) -> Result<BatchHeader, LogError> {
    reader.header_at(position)?.ok_or_else(|| {
        LogError::CorruptRecord(format!(
            "cleaner: unreadable batch at position {position} of segment {}",
            segment.base_offset
        ))
    })
}

fn read_batch<'r>(
    reader: &'r mut ChunkReader<'_>,
    position: u64,
    header: &BatchHeader,
    segment: &PlannedSegment,
) -> Result<&'r [u8], LogError> {
    reader
        .bytes_at(position, header.size_bytes)?
        .ok_or_else(|| {
            LogError::CorruptRecord(format!(
                "cleaner: batch at position {position} of segment {} runs past its end",
                segment.base_offset
            ))
        })
}

fn control_marker(batch_bytes: &[u8]) -> Option<ControlMarker> {
    batch::parse_control_record(batch_bytes).and_then(|(kind, _)| ControlMarker::from_type_id(kind))
}

fn delete_horizon_ms(header: &BatchHeader) -> Option<i64> {
    (header.attributes & DELETE_HORIZON_FLAG != 0).then_some(header.base_timestamp_ms)
}

/// Kafka's `groupSegmentsBySize`: consecutive segments whose data and indexes together fit in
/// one segment (and whose offsets fit the index's 32-bit relative offsets) are cleaned into one.
fn group_segments_by_size<'a>(
    segments: &[&'a PlannedSegment],
    max_bytes: u64,
    max_index_bytes: u64,
    end_offset: i64,
) -> Vec<Vec<&'a PlannedSegment>> {
    let mut groups = Vec::new();
    let mut rest = segments;
    while let Some((first, tail)) = rest.split_first() {
        let mut group = vec![*first];
        let mut log_bytes = first.size_bytes;
        let (mut offset_index_bytes, mut time_index_bytes) = first.index_bytes;
        rest = tail;
        while let Some((next, tail)) = rest.split_first() {
            let upper = tail.first().map_or(end_offset, |s| s.base_offset) - 1;
            let fits = log_bytes + next.size_bytes <= max_bytes
                && offset_index_bytes + next.index_bytes.0 <= max_index_bytes
                && time_index_bytes + next.index_bytes.1 <= max_index_bytes
                && (next.size_bytes == 0
                    || upper.max(next.next_offset - 1) - first.base_offset <= i64::from(i32::MAX));
            if !fits {
                break;
            }
            group.push(*next);
            log_bytes += next.size_bytes;
            offset_index_bytes += next.index_bytes.0;
            time_index_bytes += next.index_bytes.1;
            rest = tail;
        }
        groups.push(group);
    }
    groups
}

/// Cleans one group of segments into a staged segment.
fn clean_group(
    map: &mut OffsetMap,
    plan: &CleaningPlan,
    group: &[&PlannedSegment],
    transactions: &mut txn::CleanedTransactions,
    end_offset: i64,
    throttler: &Throttler,
    stats: &mut CleanStats,
) -> Result<StagedSegment, LogError> {
    swap::discard_cleaned(&plan.fs, &plan.dir)?;
    let base_offset = group.first().map_or(0, |s| s.base_offset);
    let mut output = GroupOutput {
        segment: Segment::create_with_suffix(
            &plan.fs,
            &plan.dir,
            base_offset,
            swap::CLEANED_SUFFIX,
        )?,
        buffer: Vec::with_capacity(WRITE_CHUNK_BYTES + WRITE_CHUNK_BYTES / 4),
        placed: Vec::new(),
        index_interval_bytes: plan.config.index_interval_bytes,
        now_ms: plan.now_ms,
        bytes_written: 0,
    };
    let mut removed_abort_markers = Vec::new();
    for segment in group {
        clean_segment_into(
            map,
            plan,
            segment,
            transactions,
            end_offset,
            throttler,
            stats,
            &mut output,
            &mut removed_abort_markers,
        )?;
    }
    output.flush()?;
    throttler.maybe_throttle(output.bytes_written);
    stats.bytes_written += output.bytes_written;
    let mut segment = output.segment;
    segment.seal_time_index();
    segment.persist_indexes(true)?;
    // Time retention of a segment without timestamps falls back on the file time: keep the
    // originals' (Kafka keeps the last one's).
    let modified_ms = group
        .iter()
        .map(|s| s.modified_ms)
        .max()
        .unwrap_or(plan.now_ms);
    segment.set_modified_ms(modified_ms)?;
    segment.file().sync_all()?;
    drop(segment);
    plan.fs.sync_dir(&plan.dir)?;
    Ok(StagedSegment {
        base_offset,
        replaced: group
            .iter()
            .map(|s| (s.base_offset, Arc::clone(&s.file)))
            .collect(),
        removed_abort_markers,
        round_end_offset: end_offset,
    })
}

#[allow(clippy::too_many_arguments)]
fn clean_segment_into(
    map: &mut OffsetMap,
    plan: &CleaningPlan,
    segment: &PlannedSegment,
    transactions: &mut txn::CleanedTransactions,
    end_offset: i64,
    throttler: &Throttler,
    stats: &mut CleanStats,
    output: &mut GroupOutput,
    removed_abort_markers: &mut Vec<i64>,
) -> Result<(), LogError> {
    let mut reader = ChunkReader::new(&segment.file, segment.size_bytes);
    let mut position = 0;
    while position < segment.size_bytes {
        if plan.lease.0.is_aborted() {
            return Err(aborted_error());
        }
        let header = read_header(&mut reader, position, segment)?;
        let bytes = read_batch(&mut reader, position, &header, segment)?;
        throttler.maybe_throttle(header.size_bytes as u64);
        stats.bytes_read += header.size_bytes as u64;
        position += header.size_bytes as u64;
        let marker = if header.is_control() {
            control_marker(bytes)
        } else {
            None
        };
        let can_discard = if header.is_control() {
            transactions.on_control_batch(&header, marker)
        } else {
            transactions.on_data_batch(&header)
        };
        let horizon_ms = delete_horizon_ms(&header);
        let discard_records = if header.is_control() {
            can_discard && horizon_ms.is_some_and(|h| h <= plan.now_ms)
        } else {
            can_discard
        };
        let last_of_producer = header.producer_id >= 0
            && plan.producers.get(&header.producer_id).is_some_and(|last| {
                match last.last_data_offset {
                    Some(offset) => header.last_offset() == offset,
                    None => header.is_control() && header.producer_epoch == last.producer_epoch,
                }
            });
        let retention = if last_of_producer || header.next_offset() == end_offset {
            // The producer's sequence state (or the round's last offset) must survive.
            BatchRetention::RetainEmpty
        } else if discard_records {
            BatchRetention::Delete
        } else {
            BatchRetention::DeleteEmpty
        };
        let marker_for_empty_transaction = can_discard && header.is_control();
        if retention == BatchRetention::Delete {
            stats.records_read += u64::try_from(header.records_count).unwrap_or(0);
            if marker == Some(ControlMarker::Abort) {
                removed_abort_markers.push(header.base_offset);
            }
            continue;
        }
        let (filtered, _) = filter_batch(map, plan, bytes, &header, discard_records, None)?;
        stats.records_read += filtered.read as u64;
        stats.records_retained += filtered.retained as u64;
        if marker == Some(ControlMarker::Abort) && filtered.retained == 0 {
            removed_abort_markers.push(header.base_offset);
        }
        if filtered.retained == 0 {
            if retention == BatchRetention::RetainEmpty {
                let empty = empty_batch(&header)?;
                output.push(&empty, &BatchHeader::parse(&empty)?)?;
            }
            continue;
        }
        let needs_horizon =
            (filtered.contains_tombstones || marker_for_empty_transaction) && horizon_ms.is_none();
        if filtered.retained == filtered.read && !needs_horizon {
            output.push(bytes, &header)?;
            continue;
        }
        let horizon = if needs_horizon {
            Some(
                plan.now_ms
                    .saturating_add(plan.config.compaction.delete_retention_ms.max(0)),
            )
        } else {
            horizon_ms
        };
        let (_, rebuilt) = filter_batch(map, plan, bytes, &header, discard_records, Some(horizon))?;
        if let Some(rebuilt) = rebuilt {
            output.push(&rebuilt, &BatchHeader::parse(&rebuilt)?)?;
        }
    }
    Ok(())
}

/// Decides which records of a batch survive (Kafka's `shouldRetainRecord`). With
/// `rebuild_with_horizon`, also encodes the survivors as a new batch with that delete horizon
/// (`None` keeps the batch's base timestamp), in the batch's own codec.
fn filter_batch(
    map: &mut OffsetMap,
    plan: &CleaningPlan,
    bytes: &[u8],
    header: &BatchHeader,
    discard_records: bool,
    rebuild_with_horizon: Option<Option<i64>>,
) -> Result<(FilteredBatch, Option<Vec<u8>>), LogError> {
    let retain_tombstones = delete_horizon_ms(header).is_none_or(|h| plan.now_ms < h);
    let latest_mapped = map.latest_offset();
    let new_horizon = rebuild_with_horizon.flatten();
    let base_timestamp_ms = new_horizon.unwrap_or(header.base_timestamp_ms);
    let mut result = FilteredBatch {
        retained: 0,
        read: 0,
        contains_tombstones: false,
    };
    let mut records_section = Vec::new();
    let mut max_timestamp_ms = i64::MIN;
    records::for_each_record(
        bytes,
        header,
        records::MAX_DECOMPRESSED_BATCH_BYTES,
        |_, record| {
            result.read += 1;
            let offset = header.base_offset + i64::from(record.offset_delta);
            let keep = if discard_records {
                false
            } else if header.is_control() || offset > latest_mapped {
                true
            } else {
                match record.key {
                    // Keyless records have no place in a compacted log (Kafka drops them too).
                    None => false,
                    Some(key) => {
                        let newest = map.get(key).is_none_or(|mapped| offset >= mapped);
                        newest && (record.value.is_some() || retain_tombstones)
                    }
                }
            };
            if !keep {
                return Ok(());
            }
            result.retained += 1;
            if record.value.is_none() && !header.is_control() {
                result.contains_tombstones = true;
            }
            if rebuild_with_horizon.is_some() {
                let timestamp_ms = header
                    .base_timestamp_ms
                    .wrapping_add(record.timestamp_delta);
                max_timestamp_ms = max_timestamp_ms.max(timestamp_ms);
                let headers: Vec<RecordHeader<'_>> = record.headers().collect();
                records::encode_record(
                    &mut records_section,
                    timestamp_ms.wrapping_sub(base_timestamp_ms),
                    record.offset_delta,
                    record.key,
                    record.value,
                    &headers,
                );
            }
            Ok(())
        },
    )?;
    if rebuild_with_horizon.is_none() {
        return Ok((result, None));
    }
    let mut attributes = header.attributes & !DELETE_HORIZON_FLAG;
    if new_horizon.is_some() {
        attributes |= DELETE_HORIZON_FLAG;
    }
    let max_timestamp_ms = if header.is_log_append_time() || result.retained == 0 {
        header.max_timestamp_ms
    } else {
        max_timestamp_ms
    };
    let fields = BatchFields {
        attributes,
        base_timestamp_ms,
        max_timestamp_ms,
        last_offset_delta: Some(header.last_offset_delta),
        ..BatchFields::from_header(header)
    };
    let rebuilt = records::encode_batch(
        &fields,
        i32::try_from(result.retained).unwrap_or(i32::MAX),
        &records_section,
        Compression::from_attributes(header.attributes)?,
        CompressionLevels::default(),
    )?;
    Ok((result, Some(rebuilt)))
}

/// A batch with no records that keeps the original's offsets and producer fields (Kafka's
/// `writeEmptyHeader`).
fn empty_batch(header: &BatchHeader) -> Result<Vec<u8>, LogError> {
    let fields = BatchFields {
        attributes: header.attributes & (TIMESTAMP_TYPE_FLAG | TRANSACTIONAL_FLAG | CONTROL_FLAG),
        base_timestamp_ms: header.max_timestamp_ms,
        max_timestamp_ms: header.max_timestamp_ms,
        last_offset_delta: Some(header.last_offset_delta),
        ..BatchFields::from_header(header)
    };
    records::encode_batch(
        &fields,
        0,
        &[],
        Compression::None,
        CompressionLevels::default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_file() -> File {
        let dir = tempfile::tempdir().unwrap();
        let options = quill_fs::OpenOptions {
            create: true,
            read: true,
            write: true,
            ..quill_fs::OpenOptions::default()
        };
        Fs::default().open(&dir.path().join("f"), options).unwrap()
    }

    fn planned(base_offset: i64, next_offset: i64, size_bytes: u64) -> PlannedSegment {
        PlannedSegment {
            base_offset,
            next_offset,
            size_bytes,
            file: Arc::new(test_file()),
            modified_ms: 0,
            index_bytes: (8, 12),
            dirty_start_position: 0,
        }
    }

    #[test]
    fn groups_respect_size_and_relative_offsets() {
        let segments = [
            planned(0, 10, 400),
            planned(10, 20, 400),
            planned(20, 30, 400),
            planned(30, 40, 0),
        ];
        let refs: Vec<&PlannedSegment> = segments.iter().collect();
        let groups = group_segments_by_size(&refs, 1000, 1 << 20, 40);
        let bases: Vec<Vec<i64>> = groups
            .iter()
            .map(|g| g.iter().map(|s| s.base_offset).collect())
            .collect();
        assert_eq!(bases, vec![vec![0, 10], vec![20, 30]]);
        let far = [
            planned(0, 10, 1),
            planned(i64::from(i32::MAX), i64::from(i32::MAX) + 5, 1),
        ];
        let refs: Vec<&PlannedSegment> = far.iter().collect();
        assert_eq!(
            group_segments_by_size(&refs, 1000, 1 << 20, i64::MAX).len(),
            2
        );
    }

    #[test]
    fn dirty_ratio_and_should_clean() {
        let stats = CleanableStats {
            first_dirty_offset: 0,
            first_uncleanable_offset: 10,
            clean_bytes: 100,
            cleanable_bytes: 100,
            compaction_delay_ms: 0,
        };
        assert_eq!(stats.dirty_ratio(), 0.5);
        assert!(!stats.should_clean(0.5));
        assert!(stats.should_clean(0.4));
        let overdue = CleanableStats {
            compaction_delay_ms: 5,
            ..stats
        };
        assert!(overdue.should_clean(0.9));
        let nothing = CleanableStats {
            cleanable_bytes: 0,
            compaction_delay_ms: 5,
            ..stats
        };
        assert!(!nothing.should_clean(0.0));
    }

    #[test]
    fn lease_is_exclusive_and_abort_waits_for_release() {
        let lease = Arc::new(CleaningLease::default());
        let guard = lease.try_acquire().unwrap();
        assert!(lease.try_acquire().is_none());
        let waiter = {
            let lease = Arc::clone(&lease);
            std::thread::spawn(move || lease.abort_and_wait())
        };
        // The aborting side sets the flag before waiting; the holder sees it and lets go.
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while !guard.0.is_aborted() {
            assert!(Instant::now() < deadline, "abort flag never set");
            std::thread::yield_now();
        }
        drop(guard);
        waiter.join().unwrap();
        assert!(
            lease.try_acquire().is_none(),
            "an aborted log is never cleaned again"
        );
    }
}
