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

/// A callback waiting for its offsets, kept by the log's [`SyncTarget`] (not by the thread), so
/// that a truncation can answer the ones it cuts at once.
struct PendingCallback {
    through_offset: i64,
    callback: DurabilityCallback,
}

impl std::fmt::Debug for PendingCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingCallback")
            .field("through_offset", &self.through_offset)
            .finish_non_exhaustive()
    }
}

/// Handle to the shared fsync thread. Cloning is cheap; the thread ends when every handle (and
/// every log holding one) is dropped.
#[derive(Clone, Debug)]
pub struct GroupCommitter {
    /// Wakes the thread for a log with callbacks waiting.
    sender: Sender<Arc<SyncTarget>>,
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

    /// Queues `callback` on `target` until every offset below `through_offset` is synced (or a
    /// truncation cuts it, or a sync fails), and wakes the thread.
    pub(crate) fn request(
        &self,
        target: Arc<SyncTarget>,
        through_offset: i64,
        callback: DurabilityCallback,
    ) {
        if let Err(callback) = target.add_pending(through_offset, callback) {
            callback(Err(LogError::Offline(
                "the log went offline after a failed fsync".to_string(),
            )));
            return;
        }
        if let Err(mpsc::SendError(target)) = self.sender.send(target) {
            for pending in target.take_all_pending() {
                (pending.callback)(Err(LogError::Offline(
                    "the group commit thread has stopped".to_string(),
                )));
            }
        }
    }
}

fn run(receiver: Receiver<Arc<SyncTarget>>, stats: &CommitStats) {
    while let Ok(first) = receiver.recv() {
        let mut woken = vec![first];
        woken.extend(receiver.try_iter());
        stats.batch_requests.record(woken.len() as u64);
        let mut targets: Vec<Arc<SyncTarget>> = Vec::with_capacity(woken.len());
        for target in woken {
            if !targets.iter().any(|t| Arc::ptr_eq(t, &target)) {
                targets.push(target);
            }
        }
        for target in targets {
            serve(&target, stats);
        }
    }
}

/// Syncs `target` once for the callbacks waiting on it: one sync answers every one whose data
/// was written before it began (those added since sent their own wake-up, served next round,
/// so one busy log cannot keep the thread from the others). A sync during which a truncation
/// ran publishes nothing (the truncation answered the callbacks it cut): the others get
/// another sync at once.
fn serve(target: &SyncTarget, stats: &CommitStats) {
    while target.has_pending() {
        let started = Instant::now();
        let result = target.sync_now();
        let elapsed_micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        stats.fsync_micros.record(elapsed_micros);
        match result {
            Err(message) => {
                stats.fsync_failures.fetch_add(1, Ordering::Relaxed);
                for pending in target.take_all_pending() {
                    (pending.callback)(Err(LogError::Offline(message.clone())));
                }
                return;
            }
            Ok(Published::Yes) => return,
            Ok(Published::No) => {}
        }
    }
}

/// Whether a sync published the end it synced (no truncation ran meanwhile).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Published {
    Yes,
    No,
}

/// What one log shares with the committer: the files that may hold unsynced data and how far
/// the log has been written and synced.
pub(crate) struct SyncTarget {
    state: Mutex<SyncState>,
    /// Held for a whole `sync_now`: a second sync (the committer and `Log::flush`, say) must not
    /// publish its end while rolled files the first one took off the list are still syncing.
    syncing: Mutex<()>,
    durable_end: AtomicI64,
    /// Runs after a sync's fsyncs, before it publishes (tests stop a sync there).
    #[cfg(test)]
    pub(crate) after_fsync_hook: Mutex<Option<Box<dyn Fn() + Send>>>,
}

impl std::fmt::Debug for SyncTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncTarget")
            .field("durable_end", &self.durable_end())
            .finish_non_exhaustive()
    }
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
    /// Callbacks waiting for a sync, answered under this lock's protection: a truncation takes
    /// out (and fails) those above its new end, a sync those at or below the end it published.
    pending: Vec<PendingCallback>,
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
                pending: Vec::new(),
            }),
            syncing: Mutex::new(()),
            durable_end: AtomicI64::new(durable_end),
            #[cfg(test)]
            after_fsync_hook: Mutex::new(None),
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

    /// Adds a waiting callback; hands it back if the log is offline.
    fn add_pending(
        &self,
        through_offset: i64,
        callback: DurabilityCallback,
    ) -> Result<(), DurabilityCallback> {
        let mut state = self.lock();
        if state.failure.is_some() {
            return Err(callback);
        }
        state.pending.push(PendingCallback {
            through_offset,
            callback,
        });
        Ok(())
    }

    fn has_pending(&self) -> bool {
        !self.lock().pending.is_empty()
    }

    fn take_all_pending(&self) -> Vec<PendingCallback> {
        std::mem::take(&mut self.lock().pending)
    }

    /// Waits for a sync in progress to finish and keeps new ones from starting while the guard
    /// lives: a truncation holds it, so no sync can publish (and acknowledge) offsets in the
    /// middle of being cut.
    pub(crate) fn exclude_syncs(&self) -> MutexGuard<'_, ()> {
        self.syncing.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// After a truncation the log end moves back; durability follows it. Returns the waiting
    /// callbacks for offsets above the new end, which must be failed: what they waited for was
    /// cut, and whatever is written at those offsets next is other data.
    pub(crate) fn truncated(&self, end_offset: i64) -> Vec<(i64, DurabilityCallback)> {
        let mut state = self.lock();
        state.written_end = end_offset;
        state.truncations += 1;
        self.durable_end.fetch_min(end_offset, Ordering::AcqRel);
        let (cut, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut state.pending)
            .into_iter()
            .partition(|pending| pending.through_offset > end_offset);
        state.pending = kept;
        cut.into_iter()
            .map(|pending| (pending.through_offset, pending.callback))
            .collect()
    }

    /// The log was emptied and restarts at `start_offset` on `active` (a follower behind its
    /// leader's log start): nothing below is held, so nothing is owed a sync. Returns every
    /// waiting callback, all for data that is gone.
    pub(crate) fn restarted(
        &self,
        active: Arc<File>,
        start_offset: i64,
    ) -> Vec<(i64, DurabilityCallback)> {
        let mut state = self.lock();
        let old = std::mem::replace(&mut state.active, active);
        state.rolled.push(old);
        state.written_end = start_offset;
        state.truncations += 1;
        self.durable_end.store(start_offset, Ordering::Release);
        std::mem::take(&mut state.pending)
            .into_iter()
            .map(|pending| (pending.through_offset, pending.callback))
            .collect()
    }

    /// Syncs every file that may hold unsynced data, then publishes the end offset that was
    /// written before the sync began — unless a truncation ran meanwhile — and answers the
    /// callbacks that end covers (callbacks added since wait for the next sync).
    pub(crate) fn sync_now(&self) -> Result<Published, String> {
        let one_at_a_time = self.syncing.lock().unwrap_or_else(PoisonError::into_inner);
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
        #[cfg(test)]
        if let Some(hook) = self
            .after_fsync_hook
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            hook();
        }
        let ready = {
            let mut state = self.lock();
            if state.truncations != truncations {
                return Ok(Published::No);
            }
            self.durable_end.fetch_max(written_end, Ordering::AcqRel);
            let durable_end = self.durable_end();
            let written_end = state.written_end;
            let mut ready = Vec::new();
            let mut waiting = Vec::new();
            for pending in std::mem::take(&mut state.pending) {
                if pending.through_offset <= durable_end {
                    ready.push((pending, Ok(())));
                } else if pending.through_offset > written_end {
                    // Never written (a caller's mistake): answered rather than waited for
                    // forever.
                    let message = format!(
                        "offset {} was never written to the log",
                        pending.through_offset
                    );
                    ready.push((pending, Err(LogError::Offline(message))));
                } else {
                    waiting.push(pending);
                }
            }
            state.pending = waiting;
            ready
        };
        // Callbacks run with no lock of ours held.
        drop(one_at_a_time);
        for (pending, outcome) in ready {
            (pending.callback)(outcome);
        }
        Ok(Published::Yes)
    }
}
