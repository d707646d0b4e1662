//! The log cleaner service: `log.cleaner.threads` plain OS threads (never async workers) that
//! compact partitions with `cleanup.policy=compact`, dirtiest first (Kafka's
//! `grabFilthiestCompactedLog`).
//!
//! A thread takes a partition's log lock only briefly: shared to measure and plan, exclusive to
//! swap a cleaned segment in (see `quill_log::cleaner`); reading and writing segment data
//! happens without it, so produce and fetch carry on. The threads share one I/O throttle
//! (`log.cleaner.io.max.bytes.per.second`) and split `log.cleaner.dedupe.buffer.size`. When no
//! log is dirty enough a thread sleeps `log.cleaner.backoff.ms` (woken early by shutdown).

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use quill_log::cleaner::DEFAULT_DEDUPE_BUFFER_LOAD_FACTOR;
use quill_log::{CleanerConfig, LogCleaner, Throttler};

use crate::config::{CleanerSettings, MIN_DEDUPE_BUFFER_PER_THREAD};
use crate::partitions::{Partition, PartitionManager};

/// By topic id, so a topic deleted and created again under the same name starts afresh.
type PartitionKey = (quill_meta::Uuid, i32);

/// Shared by the cleaner threads.
struct Shared {
    partitions: Arc<PartitionManager>,
    backoff: Duration,
    /// Partitions a thread is cleaning now (two threads never pick the same one).
    in_progress: Mutex<HashSet<PartitionKey>>,
    /// Partitions whose cleaning failed unexpectedly; skipped until restart (Kafka's
    /// "uncleanable partitions"). Bounded by the number of hosted partitions.
    uncleanable: Mutex<HashSet<PartitionKey>>,
    stopping: Mutex<bool>,
    wake: Condvar,
}

/// Running cleaner threads; `stop` ends them.
pub struct CleanerService {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl CleanerService {
    /// Starts the threads, or nothing when `log.cleaner.enable` is false or there are no
    /// threads. Fails when the dedupe buffer is too small to split between the threads.
    pub fn start(
        settings: &CleanerSettings,
        partitions: Arc<PartitionManager>,
    ) -> Result<Option<CleanerService>, String> {
        if !settings.enable || settings.threads == 0 {
            tracing::info!("log cleaner disabled: compacted topics will not be compacted");
            return Ok(None);
        }
        let per_thread = settings.dedupe_buffer_size / settings.threads as u64;
        if per_thread < MIN_DEDUPE_BUFFER_PER_THREAD {
            return Err(format!(
                "log.cleaner.dedupe.buffer.size {} split between {} log.cleaner.threads leaves {per_thread} bytes each; at least {MIN_DEDUPE_BUFFER_PER_THREAD} are needed",
                settings.dedupe_buffer_size, settings.threads
            ));
        }
        let shared = Arc::new(Shared {
            partitions,
            backoff: Duration::from_millis(settings.backoff_ms),
            in_progress: Mutex::new(HashSet::new()),
            uncleanable: Mutex::new(HashSet::new()),
            stopping: Mutex::new(false),
            wake: Condvar::new(),
        });
        let throttler = Arc::new(Throttler::new(settings.io_max_bytes_per_second));
        let config = CleanerConfig {
            dedupe_buffer_bytes: per_thread,
            dedupe_buffer_load_factor: DEFAULT_DEDUPE_BUFFER_LOAD_FACTOR,
        };
        let mut threads = Vec::with_capacity(settings.threads);
        for index in 0..settings.threads {
            let shared = Arc::clone(&shared);
            let cleaner = LogCleaner::new(config, Arc::clone(&throttler));
            let thread = std::thread::Builder::new()
                .name(format!("quill-log-cleaner-{index}"))
                .spawn(move || run(&shared, cleaner))
                .map_err(|error| format!("cannot start a log cleaner thread: {error}"))?;
            threads.push(thread);
        }
        Ok(Some(CleanerService { shared, threads }))
    }

    /// No new cleaning rounds start after this (a running one ends when its log is closed).
    pub fn request_stop(&self) {
        *lock(&self.shared.stopping) = true;
        self.shared.wake.notify_all();
    }

    /// Stops the threads and waits for them. Close the logs first (after `request_stop`) so a
    /// round in progress is abandoned at its next batch instead of finishing.
    pub fn stop(mut self) {
        self.request_stop();
        for thread in std::mem::take(&mut self.threads) {
            if thread.join().is_err() {
                tracing::error!("a log cleaner thread panicked");
            }
        }
    }
}

impl Drop for CleanerService {
    /// A broker dropped without `run` (tests) must not leave threads looking at its logs.
    fn drop(&mut self) {
        self.request_stop();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn run(shared: &Shared, mut cleaner: LogCleaner) {
    while !*lock(&shared.stopping) {
        let now_ms = crate::clock::now_ms();
        let Some(partition) = grab_filthiest(shared, now_ms) else {
            let stopping = lock(&shared.stopping);
            if !*stopping {
                // Spurious or early wake-ups just mean an earlier look at the logs.
                let _ = shared.wake.wait_timeout(stopping, shared.backoff);
            }
            continue;
        };
        let key = (partition.topic_id, partition.partition);
        let mut idle = false;
        match cleaner.clean(partition.log_handle(), now_ms) {
            Ok(Some(_)) => {}
            // Nothing to do after all, or the round was given up (segments changed under it):
            // look again after the backoff rather than at once.
            Ok(None) => idle = true,
            Err(error) if partition.is_closed() => {
                tracing::debug!(topic = %partition.topic, partition = partition.partition, %error, "cleaning stopped: the log was closed");
            }
            Err(error) => {
                tracing::error!(topic = %partition.topic, partition = partition.partition, %error, "log cleaning failed; the partition will not be cleaned again until restart");
                lock(&shared.uncleanable).insert(key);
            }
        }
        lock(&shared.in_progress).remove(&key);
        if idle {
            let stopping = lock(&shared.stopping);
            if !*stopping {
                let _ = shared.wake.wait_timeout(stopping, shared.backoff);
            }
        }
    }
}

/// The compacted partition with the highest dirty ratio among those that should be cleaned
/// now, marked in progress.
fn grab_filthiest(shared: &Shared, now_ms: i64) -> Option<Arc<Partition>> {
    let uncleanable = lock(&shared.uncleanable).clone();
    let mut in_progress = lock(&shared.in_progress);
    let mut best: Option<(f64, Arc<Partition>)> = None;
    for partition in shared.partitions.all() {
        let key = (partition.topic_id, partition.partition);
        if in_progress.contains(&key) || uncleanable.contains(&key) {
            continue;
        }
        let Some((stats, min_ratio)) = partition.cleanable_stats(now_ms) else {
            continue;
        };
        if !stats.should_clean(min_ratio) {
            continue;
        }
        let ratio = stats.dirty_ratio();
        if best
            .as_ref()
            .is_none_or(|(best_ratio, _)| ratio > *best_ratio)
        {
            best = Some((ratio, partition));
        }
    }
    let (_, partition) = best?;
    in_progress.insert((partition.topic_id, partition.partition));
    Some(partition)
}
