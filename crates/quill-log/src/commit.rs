//! Group commit: appends that must be durable before they are acknowledged hand a request to
//! one background thread, which drains every request that is waiting and issues one
//! `fdatasync` per file for all of them. While it syncs, new requests queue up and share the
//! next round, so the number of syncs per second is bounded by the disk, not by the producers.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use quill_fs::File;

use crate::error::LogError;
use crate::stats::CommitStats;

/// Runs once the requested offsets are durable, or with the error that prevents it. It runs on
/// the committer thread (or the caller's, if already durable): keep it short, e.g. send on a
/// channel.
pub type DurabilityCallback = Box<dyn FnOnce(Result<(), LogError>) + Send>;

struct SyncRequest {
    target: Arc<SyncTarget>,
    through_offset: i64,
    callback: DurabilityCallback,
}

/// Handle to the shared fsync thread. Cloning is cheap; the thread ends when every handle (and
/// every log holding one) is dropped.
#[derive(Clone, Debug)]
pub struct GroupCommitter {
    sender: Sender<SyncRequest>,
    stats: Arc<CommitStats>,
}

impl GroupCommitter {
    pub fn start() -> Result<GroupCommitter, LogError> {
        let (sender, receiver) = mpsc::channel();
        let stats = Arc::new(CommitStats::default());
        let thread_stats = Arc::clone(&stats);
        std::thread::Builder::new()
            .name("quill-group-commit".to_string())
            .spawn(move || run(receiver, &thread_stats))?;
        Ok(GroupCommitter { sender, stats })
    }

    /// fsync latencies and batch sizes so far (read by the broker's metrics).
    pub fn stats(&self) -> &CommitStats {
        &self.stats
    }

    pub(crate) fn request(
        &self,
        target: Arc<SyncTarget>,
        through_offset: i64,
        callback: DurabilityCallback,
    ) {
        let request = SyncRequest {
            target,
            through_offset,
            callback,
        };
        if let Err(mpsc::SendError(request)) = self.sender.send(request) {
            (request.callback)(Err(LogError::Offline(
                "the group commit thread has stopped".to_string(),
            )));
        }
    }
}

fn run(receiver: Receiver<SyncRequest>, stats: &CommitStats) {
    while let Ok(first) = receiver.recv() {
        let mut pending = vec![first];
        pending.extend(receiver.try_iter());
        stats.batch_requests.record(pending.len() as u64);
        for (target, requests) in group_by_target(pending) {
            let started = Instant::now();
            let result = target.sync_now();
            let elapsed_micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            stats.fsync_micros.record(elapsed_micros);
            if result.is_err() {
                stats.fsync_failures.fetch_add(1, Ordering::Relaxed);
            }
            for request in requests {
                let outcome = match &result {
                    Err(message) => Err(LogError::Offline(message.clone())),
                    Ok(()) if target.durable_end() >= request.through_offset => Ok(()),
                    // Only possible if the log was truncated under us.
                    Ok(()) => Err(LogError::Offline(format!(
                        "offset {} is no longer in the log",
                        request.through_offset
                    ))),
                };
                (request.callback)(outcome);
            }
        }
    }
}

fn group_by_target(requests: Vec<SyncRequest>) -> Vec<(Arc<SyncTarget>, Vec<SyncRequest>)> {
    let mut groups: Vec<(Arc<SyncTarget>, Vec<SyncRequest>)> = Vec::new();
    for request in requests {
        match groups
            .iter_mut()
            .find(|(target, _)| Arc::ptr_eq(target, &request.target))
        {
            Some((_, list)) => list.push(request),
            None => groups.push((Arc::clone(&request.target), vec![request])),
        }
    }
    groups
}

/// What one log shares with the committer: the files that may hold unsynced data and how far
/// the log has been written and synced.
#[derive(Debug)]
pub(crate) struct SyncTarget {
    state: Mutex<SyncState>,
    /// Held for a whole `sync_now`: a second sync (the committer and `Log::flush`, say) must not
    /// publish its end while rolled files the first one took off the list are still syncing.
    syncing: Mutex<()>,
    durable_end: AtomicI64,
}

#[derive(Debug)]
struct SyncState {
    active: Arc<File>,
    /// Segments rolled since the last sync; they may still hold unsynced data.
    rolled: Vec<Arc<File>>,
    written_end: i64,
    /// Counts truncations: a sync that started before one must not publish the end it saw, as
    /// the offsets between the new end and that one are being written again.
    truncations: u64,
    /// After a failed fsync the page cache may have dropped dirty data (the kernel does not
    /// retry), so nothing written since can be called durable again: the log goes offline.
    failure: Option<String>,
}

impl SyncTarget {
    pub(crate) fn new(active: Arc<File>, durable_end: i64) -> SyncTarget {
        SyncTarget {
            state: Mutex::new(SyncState {
                active,
                rolled: Vec::new(),
                written_end: durable_end,
                truncations: 0,
                failure: None,
            }),
            syncing: Mutex::new(()),
            durable_end: AtomicI64::new(durable_end),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SyncState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn durable_end(&self) -> i64 {
        self.durable_end.load(Ordering::Acquire)
    }

    pub(crate) fn failure(&self) -> Option<String> {
        self.lock().failure.clone()
    }

    pub(crate) fn written(&self, end_offset: i64) {
        self.lock().written_end = end_offset;
    }

    pub(crate) fn rolled(&self, new_active: Arc<File>) {
        let mut state = self.lock();
        let old = std::mem::replace(&mut state.active, new_active);
        state.rolled.push(old);
    }

    /// After a truncation the log end moves back; durability follows it.
    pub(crate) fn truncated(&self, end_offset: i64) {
        let mut state = self.lock();
        state.written_end = end_offset;
        state.truncations += 1;
        self.durable_end.fetch_min(end_offset, Ordering::AcqRel);
    }

    /// Syncs every file that may hold unsynced data, then publishes the end offset that was
    /// written before the sync began.
    pub(crate) fn sync_now(&self) -> Result<(), String> {
        let _one_at_a_time = self.syncing.lock().unwrap_or_else(PoisonError::into_inner);
        let (files, written_end, truncations) = {
            let mut state = self.lock();
            if let Some(failure) = &state.failure {
                return Err(failure.clone());
            }
            let mut files = std::mem::take(&mut state.rolled);
            files.push(Arc::clone(&state.active));
            (files, state.written_end, state.truncations)
        };
        for file in &files {
            if let Err(error) = file.sync_data() {
                let message = format!("fdatasync failed: {error}");
                tracing::error!(%message, "log is going offline");
                self.lock().failure = Some(message.clone());
                return Err(message);
            }
        }
        let state = self.lock();
        if state.truncations == truncations {
            self.durable_end.fetch_max(written_end, Ordering::AcqRel);
        }
        Ok(())
    }
}
