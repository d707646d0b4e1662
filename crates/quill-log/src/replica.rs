//! A follower's side of replication: appending the leader's batches as they are (Kafka's
//! `UnifiedLog.appendAsFollower`). The leader assigned offsets, partition leader epochs and
//! timestamps, and validated every record; the follower checks what it needs to stay a valid
//! log (headers, CRCs, offsets that continue the log and increase), never re-encodes, and
//! updates producer state as replay does, so that it can become the leader at any batch.

use std::io::IoSlice;

use crate::batch::{self, BatchHeader};
use crate::checkpoint::{self, CleanerCheckpoint};
use crate::error::LogError;
use crate::leader_epoch::{self, EpochEntry, LeaderEpochCache};
use crate::log::Log;
use crate::segment::{PlacedBatch, MAX_BATCH_BYTES};

/// What [`Log::append_as_follower`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FollowerAppendInfo {
    /// The first batch's base offset (the log end offset when nothing was given).
    pub first_offset: i64,
    /// The last batch's last offset (`first_offset - 1` when nothing was given).
    pub last_offset: i64,
    pub batch_count: u32,
    pub bytes: u64,
    /// The largest batch max timestamp, or -1.
    pub max_timestamp_ms: i64,
    /// The last batch's partition leader epoch, or -1 when nothing was given.
    pub last_leader_epoch: i32,
    /// The log end offset after the append.
    pub log_end_offset: i64,
}

/// One checked batch of a follower append.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReplicatedBatch {
    pub header: BatchHeader,
    /// (marker type, coordinator epoch) of a control batch with a readable marker record.
    pub control: Option<(i16, i32)>,
}

/// Splits `bytes` into whole v2 batches and checks each as Kafka's follower append does
/// (`analyzeAndValidateRecords` for the REPLICATION origin, `ignoreRecordSize`): header, magic,
/// CRC, offsets increasing from `log_end_offset` on. Batches may leave gaps between them (the
/// leader's cleaner removed records); none may start below where the log (or the batch
/// before) ends. Control batches are allowed: the leader wrote them.
pub(crate) fn check_replicated_batches(
    bytes: &[u8],
    log_end_offset: i64,
) -> Result<Vec<ReplicatedBatch>, LogError> {
    let mut batches = Vec::new();
    let mut position = 0;
    let mut expected_offset = log_end_offset;
    while position < bytes.len() {
        let rest = &bytes[position..];
        let header = BatchHeader::parse(rest)?;
        if header.size_bytes > MAX_BATCH_BYTES as usize {
            return Err(LogError::CorruptRecord(format!(
                "replicated batch of {} bytes exceeds the {MAX_BATCH_BYTES}-byte limit",
                header.size_bytes
            )));
        }
        let Some(whole) = rest.get(..header.size_bytes) else {
            return Err(LogError::CorruptRecord(format!(
                "replicated batch length {} runs past the end of the {} bytes given",
                header.size_bytes,
                rest.len()
            )));
        };
        batch::validate_batch(whole, &header, false)?;
        check_replicated_header(&header)?;
        if header.base_offset < expected_offset {
            return Err(LogError::OffsetOutOfOrder {
                offset: header.base_offset,
                expected_offset,
            });
        }
        let control = if header.is_control() {
            batch::parse_control_record(whole)
        } else {
            None
        };
        batches.push(ReplicatedBatch { header, control });
        expected_offset = header.next_offset();
        position += header.size_bytes;
    }
    Ok(batches)
}

/// The header rules every batch in a log meets (what reads, recovery and the cleaner rely on),
/// beyond the CRC: a non-negative offset range holding at most one record per offset, and a
/// known codec.
fn check_replicated_header(header: &BatchHeader) -> Result<(), LogError> {
    if header.base_offset < 0 || header.last_offset_delta < 0 {
        return Err(LogError::CorruptRecord(format!(
            "replicated batch has base offset {} and lastOffsetDelta {}",
            header.base_offset, header.last_offset_delta
        )));
    }
    if header
        .base_offset
        .checked_add(i64::from(header.last_offset_delta) + 1)
        .is_none()
    {
        return Err(LogError::CorruptRecord(format!(
            "replicated batch offsets overflow: base offset {} and lastOffsetDelta {}",
            header.base_offset, header.last_offset_delta
        )));
    }
    if header.records_count < 0
        || i64::from(header.records_count) > i64::from(header.last_offset_delta) + 1
    {
        return Err(LogError::CorruptRecord(format!(
            "replicated batch holds {} records for lastOffsetDelta {}",
            header.records_count, header.last_offset_delta
        )));
    }
    if header.compression_codec() > 4 {
        return Err(LogError::CorruptRecord(format!(
            "replicated batch uses unknown compression codec id {}",
            header.compression_codec()
        )));
    }
    Ok(())
}

impl Log {
    /// Appends batches fetched from the leader, keeping the leader's offsets, partition leader
    /// epochs, timestamps and producer fields byte for byte (no offset assignment, no
    /// re-encoding). The first batch must start at or after the log end offset (after it only
    /// when the leader's cleaner removed the records in between) and offsets must increase,
    /// else [`LogError::OffsetOutOfOrder`]; headers and CRCs are checked; control batches
    /// (transaction markers) are accepted. Producer state (sequences, epochs, open and aborted
    /// transactions) is updated as replay updates it, without the leader's checks (Kafka skips
    /// them for replication too). All or nothing: on any error nothing was written. Durability
    /// through [`Log::on_durable`], rolling as for leader appends. `now_ms` is the broker's
    /// clock (`segment.ms`). An empty `batches` appends nothing. An empty log whose start lies
    /// inside the first batch (a follower that started its log at a leader's log start that is
    /// not batch aligned) restarts at that batch's base offset first, as Kafka's Partition does.
    pub fn append_as_follower(
        &mut self,
        batches: &[u8],
        now_ms: i64,
    ) -> Result<FollowerAppendInfo, LogError> {
        if let Some(failure) = self.sync_target.failure() {
            return Err(LogError::Offline(failure));
        }
        if batches.len() as u64 > self.config.segment_bytes {
            return Err(LogError::RecordTooLarge {
                size_bytes: batches.len() as u64,
                limit_bytes: self.config.segment_bytes,
                setting: "segment.bytes",
            });
        }
        let mut log_end_offset = self.log_end_offset();
        if let Some(first_offset) = self.straddled_log_start(batches) {
            // An empty log that starts inside the leader's first batch (the leader's log start
            // is not batch aligned after DeleteRecords, and this follower started its log
            // there): as Kafka's Partition does, the log restarts at the batch's base offset,
            // once the batches are known to be good. The caller moves the log start up to the
            // leader's again (`delete_records_before`).
            check_replicated_batches(batches, first_offset)?;
            self.truncate_fully_and_start_at(first_offset)?;
            log_end_offset = first_offset;
        }
        let checked = check_replicated_batches(batches, log_end_offset)?;
        let (Some(first), Some(last)) = (checked.first(), checked.last()) else {
            return Ok(FollowerAppendInfo {
                first_offset: log_end_offset,
                last_offset: log_end_offset - 1,
                batch_count: 0,
                bytes: 0,
                max_timestamp_ms: -1,
                last_leader_epoch: -1,
                log_end_offset,
            });
        };
        let (first_offset, new_end) = (first.header.base_offset, last.header.next_offset());
        let max_relative = i64::from(i32::MAX);
        if new_end - first_offset > max_relative {
            // A leader's read stays within one of its segments, whose relative offsets fit.
            return Err(LogError::CorruptRecord(format!(
                "replicated batches span offsets {first_offset}..{new_end}, more than one \
                 segment can index"
            )));
        }
        self.maybe_roll(batches.len() as u64, new_end - log_end_offset, now_ms)?;
        if new_end - self.active().base_offset > max_relative {
            self.roll_at(first_offset)?;
        }
        let has_gaps = checked
            .windows(2)
            .any(|pair| pair[0].header.next_offset() != pair[1].header.base_offset)
            || first_offset != log_end_offset;
        if has_gaps {
            self.allow_gaps_in_active_segment(new_end)?;
        }
        let placed: Vec<PlacedBatch> = checked
            .iter()
            .map(|batch| PlacedBatch {
                base_offset: batch.header.base_offset,
                last_offset: batch.header.last_offset(),
                max_timestamp_ms: batch.header.max_timestamp_ms,
                size_bytes: batch.header.size_bytes as u64,
            })
            .collect();
        let assignments: Vec<(i32, i64)> = checked
            .iter()
            .map(|batch| {
                (
                    batch.header.partition_leader_epoch,
                    batch.header.base_offset,
                )
            })
            .collect();
        let previous_epochs = self.assign_epochs(&assignments)?;
        let mut slices = [IoSlice::new(batches)];
        let interval = self.config.index_interval_bytes;
        if let Err(error) = self
            .active_mut()
            .append(&mut slices, &placed, interval, now_ms)
        {
            self.restore_epochs(previous_epochs);
            return Err(error);
        }
        self.sync_target.written(new_end);
        let record_count: u64 = checked
            .iter()
            .map(|batch| u64::try_from(batch.header.records_count).unwrap_or(0))
            .sum();
        self.count_unflushed(record_count);
        for batch in &checked {
            self.producers
                .apply_logged_batch(&batch.header, batch.control);
        }
        self.leader_epoch = last.header.partition_leader_epoch;
        Ok(FollowerAppendInfo {
            first_offset,
            last_offset: new_end - 1,
            batch_count: u32::try_from(checked.len()).unwrap_or(u32::MAX),
            bytes: batches.len() as u64,
            max_timestamp_ms: placed
                .iter()
                .map(|p| p.max_timestamp_ms)
                .max()
                .unwrap_or(-1),
            last_leader_epoch: last.header.partition_leader_epoch,
            log_end_offset: new_end,
        })
    }

    /// The base offset of the first batch in `batches` when this log is empty and its start
    /// (and end) lies inside that batch.
    fn straddled_log_start(&self, batches: &[u8]) -> Option<i64> {
        let end = self.log_end_offset();
        let first = BatchHeader::parse(batches).ok()?;
        // Unchecked input: no arithmetic that could overflow.
        let last_offset = first
            .base_offset
            .checked_add(i64::from(first.last_offset_delta))?;
        let straddles = end == self.log_start_offset
            && first.base_offset < end
            && last_offset >= end
            && first.base_offset >= 0;
        straddles.then_some(first.base_offset)
    }

    /// Before batches that skip offsets are written to the active segment: recovery must know
    /// that this segment may hold gaps, so the cleaner checkpoint's `cleaned_below` mark (the
    /// segments below it may skip offsets) is raised past it durably first.
    fn allow_gaps_in_active_segment(&mut self, new_end: i64) -> Result<(), LogError> {
        if self.cleaner_checkpoint.cleaned_below < new_end {
            let raised = CleanerCheckpoint {
                cleaned_below: new_end,
                ..self.cleaner_checkpoint
            };
            checkpoint::write_cleaner_checkpoint(&self.fs, &self.dir, raised)?;
            self.cleaner_checkpoint = raised;
        }
        self.active_mut().allow_gaps();
        Ok(())
    }
}

/// Leader epochs (KIP-101/KIP-279): see `leader_epoch.rs` for the rules.
impl Log {
    /// The latest partition leader epoch in the cache (the log's batches, or one started by
    /// [`Log::start_leader_epoch`]).
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.latest_epoch()
    }

    /// OffsetsForLeaderEpoch for this log, exactly Kafka's `LeaderEpochFileCache.endOffsetFor`:
    /// `(epoch, end offset)` where `epoch` is the largest known epoch at or below the requested
    /// one and its end is the start of the next higher epoch, or the log end offset for the
    /// latest; for a requested epoch below the first known one, (requested, first start
    /// offset). `None` stands for (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET): the requested epoch
    /// is -1 or above the latest, or the cache is empty.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        let answer = self.epochs.end_offset_for(epoch, self.log_end_offset());
        (answer
            != (
                leader_epoch::UNDEFINED_EPOCH,
                leader_epoch::UNDEFINED_EPOCH_OFFSET,
            ))
            .then_some(answer)
    }

    /// The cache's entries, oldest first (tests, metrics).
    pub fn epoch_entries(&self) -> Vec<EpochEntry> {
        self.epochs.entries().to_vec()
    }

    /// This replica became the leader at `epoch`: the epoch starts at the log end offset (so
    /// OffsetsForLeaderEpoch answers for it before anything is appended, as Kafka's
    /// `makeLeader` assigns it) and transaction markers are stamped with it. The same epoch
    /// again changes nothing; an older one than the log holds is refused
    /// ([`LogError::FencedLeaderEpoch`]: assigning it would erase the newer epochs' history).
    pub fn start_leader_epoch(&mut self, epoch: i32) -> Result<(), LogError> {
        if let Some(failure) = self.sync_target.failure() {
            return Err(LogError::Offline(failure));
        }
        if let Some(latest_epoch) = self.epochs.latest_epoch().filter(|latest| epoch < *latest) {
            return Err(LogError::FencedLeaderEpoch {
                epoch,
                latest_epoch,
            });
        }
        self.assign_epochs(&[(epoch, self.log_end_offset())])?;
        self.leader_epoch = epoch;
        Ok(())
    }

    /// Assigns each (epoch, start offset) in turn and, if the cache changed, writes the file
    /// before the batches are written (so it never misses an epoch the log holds). Returns the
    /// cache as it was, for [`Log::restore_epochs`] if the write of the batches fails.
    pub(crate) fn assign_epochs(
        &mut self,
        assignments: &[(i32, i64)],
    ) -> Result<Option<LeaderEpochCache>, LogError> {
        let mut updated: Option<LeaderEpochCache> = None;
        for &(epoch, start_offset) in assignments {
            match updated.as_mut() {
                Some(cache) => {
                    cache.assign(epoch, start_offset);
                }
                // The common case (the same epoch again) copies nothing.
                None if self.epochs.needs_update(epoch, start_offset) => {
                    let mut cache = self.epochs.clone();
                    cache.assign(epoch, start_offset);
                    updated = Some(cache);
                }
                None => {}
            }
        }
        let Some(updated) = updated else {
            return Ok(None);
        };
        leader_epoch::write(&self.fs, &self.dir, &updated)?;
        self.epochs_dirty = false;
        Ok(Some(std::mem::replace(&mut self.epochs, updated)))
    }

    /// Undoes [`Log::assign_epochs`] after the batches could not be written. The file may list
    /// the undone epochs until the next write; open truncates them away (they start at or
    /// after the log end).
    pub(crate) fn restore_epochs(&mut self, previous: Option<LeaderEpochCache>) {
        if let Some(previous) = previous {
            self.epochs = previous;
            self.epochs_dirty = true;
        }
    }

    pub(crate) fn write_epochs_if_dirty(&mut self) -> Result<(), LogError> {
        if self.epochs_dirty {
            leader_epoch::write(&self.fs, &self.dir, &self.epochs)?;
            self.epochs_dirty = false;
        }
        Ok(())
    }

    /// On open: the cache from `leader-epoch-checkpoint`, truncated to the log's range; rebuilt
    /// from the batch headers when the file is missing or unreadable (Kafka assigns the epochs
    /// of recovered batches the same way: only increasing ones).
    pub(crate) fn load_leader_epochs(&mut self) -> Result<(), LogError> {
        match leader_epoch::read(&self.fs, &self.dir)? {
            Some(cache) => {
                self.epochs = cache;
                // Kafka's order (LogLoader): the end first, then the start, so an entry moved
                // up to a log start equal to the log end stays.
                let end = self.epochs.truncate_from_end(self.log_end_offset());
                let start = self.epochs.truncate_from_start(self.log_start_offset);
                self.epochs_dirty = start || end;
            }
            None => {
                self.epochs = self.rebuild_leader_epochs()?;
                self.epochs_dirty = true;
            }
        }
        if let Err(error) = self.write_epochs_if_dirty() {
            // A full disk must not keep the log from opening: the cache is right in memory and
            // is written with the next checkpoint.
            tracing::warn!(dir = %self.dir.display(), %error, "could not write the leader-epoch checkpoint");
        }
        if let Some(latest) = self.epochs.latest_epoch() {
            self.leader_epoch = latest;
        }
        Ok(())
    }

    fn rebuild_leader_epochs(&self) -> Result<LeaderEpochCache, LogError> {
        let mut cache = LeaderEpochCache::default();
        let mut visit = |header: &BatchHeader| {
            let epoch = header.partition_leader_epoch;
            if cache.latest_epoch().is_none_or(|latest| epoch > latest) {
                cache.assign(epoch, header.base_offset);
            }
        };
        for segment in &self.segments {
            if segment.next_offset <= self.log_start_offset || segment.size_bytes == 0 {
                continue;
            }
            // Epochs never decrease along a log: a segment that starts and ends in the same
            // epoch holds only that one, and its first batch says all there is to say (so a
            // rebuild reads a few headers per segment, not the whole log).
            match segment.first_and_last_headers()? {
                Some((first, last))
                    if first.partition_leader_epoch == last.partition_leader_epoch =>
                {
                    visit(&first);
                }
                _ => segment.for_each_header(self.log_start_offset, &mut visit)?,
            }
        }
        cache.truncate_from_start(self.log_start_offset);
        Ok(cache)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc::{self, Receiver, Sender};
    use std::sync::Mutex;

    use crate::batch::testing::build_simple_batch;
    use crate::{AppendContext, GroupCommitter, Log, LogConfig, LogError};

    fn open(dir: &Path, committer: &GroupCommitter) -> Log {
        Log::open(dir, LogConfig::default(), committer.clone()).unwrap()
    }

    fn append(log: &mut Log, records: usize) {
        let context = AppendContext {
            now_ms: 0,
            leader_epoch: 0,
        };
        log.append(&build_simple_batch(0, records, 10), context)
            .unwrap();
    }

    fn when_durable(log: &Log, through_offset: i64) -> Receiver<Result<(), LogError>> {
        let (sender, receiver) = mpsc::channel();
        log.on_durable(
            through_offset,
            Box::new(move |result| {
                let _ = sender.send(result);
            }),
        );
        receiver
    }

    /// Stops the next sync of `log` after its fsyncs, before it publishes: the first receiver
    /// says it got there, the sender lets it go on.
    fn stop_next_sync(log: &Log) -> (Receiver<()>, Sender<()>) {
        let (entered_tx, entered_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Mutex::new(release_rx);
        let entered_tx = Mutex::new(entered_tx);
        let stopped = AtomicBool::new(false);
        *log.sync_target.after_fsync_hook.lock().unwrap() = Some(Box::new(move || {
            if !stopped.swap(true, Ordering::AcqRel) {
                let _ = entered_tx.lock().unwrap().send(());
                let _ = release_rx.lock().unwrap().recv();
            }
        }));
        (entered_rx, release_tx)
    }

    /// The old race: a durability request queued behind a busy committer, its offsets cut by a
    /// truncation and written again with other data, was answered with success by the sync
    /// that covered the new data.
    #[test]
    fn a_truncation_fails_the_waits_it_cuts_even_once_the_offsets_are_written_again() {
        let dirs = [(); 2].map(|_| tempfile::tempdir().unwrap());
        let committer = GroupCommitter::start().unwrap();
        let mut busy = open(dirs[0].path(), &committer);
        let mut log = open(dirs[1].path(), &committer);
        append(&mut busy, 2);
        let (entered, release) = stop_next_sync(&busy);
        let busy_durable = when_durable(&busy, 2);
        entered.recv().unwrap();
        // The committer is stuck in the other log's sync: this request waits.
        for _ in 0..3 {
            append(&mut log, 2);
        }
        let cut_wait = when_durable(&log, 6);
        log.truncate_to(2).unwrap();
        // Answered by the truncation itself, before it returned.
        let answer = cut_wait.try_recv().expect("answered by truncate_to");
        assert!(
            matches!(
                answer,
                Err(LogError::Truncated {
                    offset: 6,
                    log_end_offset: 2
                })
            ),
            "{answer:?}"
        );
        assert_eq!(answer.unwrap_err().kafka_error_code(), 6);
        for _ in 0..2 {
            append(&mut log, 2);
        }
        let new_wait = when_durable(&log, 6);
        release.send(()).unwrap();
        busy_durable.recv().unwrap().unwrap();
        new_wait.recv().unwrap().unwrap();
        assert_eq!(log.durable_end_offset(), 6);
        assert!(cut_wait.try_recv().is_err(), "answered once");
    }

    #[test]
    fn restarting_the_log_fails_every_wait() {
        let dirs = [(); 2].map(|_| tempfile::tempdir().unwrap());
        let committer = GroupCommitter::start().unwrap();
        let mut busy = open(dirs[0].path(), &committer);
        let mut log = open(dirs[1].path(), &committer);
        append(&mut busy, 2);
        let (entered, release) = stop_next_sync(&busy);
        let busy_durable = when_durable(&busy, 2);
        entered.recv().unwrap();
        append(&mut log, 3);
        let wait = when_durable(&log, 3);
        log.truncate_fully_and_start_at(100).unwrap();
        let answer = wait.try_recv().expect("answered by the restart");
        assert!(
            matches!(
                answer,
                Err(LogError::Truncated {
                    offset: 3,
                    log_end_offset: 100
                })
            ),
            "{answer:?}"
        );
        release.send(()).unwrap();
        busy_durable.recv().unwrap().unwrap();
        append(&mut log, 1);
        log.wait_durable(101).unwrap();
        assert_eq!(log.durable_end_offset(), 101);
    }

    #[test]
    fn a_truncation_waits_for_a_sync_in_progress_and_lowers_what_it_published() {
        let dir = tempfile::tempdir().unwrap();
        let committer = GroupCommitter::start().unwrap();
        let mut log = open(dir.path(), &committer);
        for _ in 0..3 {
            append(&mut log, 2);
        }
        let (entered, release) = stop_next_sync(&log);
        let synced_wait = when_durable(&log, 6);
        entered.recv().unwrap();
        let truncation = std::thread::spawn(move || {
            log.truncate_to(2).unwrap();
            log
        });
        // The sync already fsynced everything below 6: it publishes and answers first, then the
        // truncation (which waited for it) lowers the durable end.
        assert!(synced_wait.try_recv().is_err(), "not published yet");
        release.send(()).unwrap();
        synced_wait.recv().unwrap().unwrap();
        let log = truncation.join().unwrap();
        assert_eq!(log.log_end_offset(), 2);
        assert_eq!(log.durable_end_offset(), 2);
    }
}
