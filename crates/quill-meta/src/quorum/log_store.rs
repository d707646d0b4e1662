//! The Raft log of the metadata quorum: entries, vote, purge point, all through `quill_fs::Fs`.
//!
//! Files in the quorum directory:
//! - `quorum.log`: frames (`storage::frame`, checksummed) of JSON openraft entries, each with
//!   its term and index, consecutive. A torn tail is cut on open; a gap or an undecodable
//!   checksummed frame refuses to open.
//! - `quorum.vote`: the last vote (term, candidate, committed flag), replaced atomically and
//!   durably before openraft acts on it (a voter must never vote twice in a term).
//! - `quorum.purged`: the last purged log id, replaced atomically before the log file is
//!   rewritten without the purged prefix.
//! - `quorum.committed`: a hint of the last committed log id, written without fsync (a stale
//!   or unreadable hint only means more entries are re-applied from the leader). A sole voter
//!   needs no hint: every entry in its log is committed (there is no other log to overwrite
//!   it, and its next term commits them all), so it reports its last entry as committed and a
//!   restart applies the whole log before any election.
//!
//! Every change is durable (fsync) before openraft is told it is, so an acknowledged append
//! survives power loss. A failed write returns a storage error, which stops the Raft node
//! (openraft treats storage errors as fatal; `supervisor` starts a new one over the files).
//! A failed append first cuts the file back to its durable length, so bytes whose fsync failed
//! (their state in the page cache is unknown) are not read back as entries after a restart;
//! reopening also cuts a torn tail back to whole frames.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::Write;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    AnyError, Entry, LogId, LogState, RaftLogReader, StorageError, StorageIOError, Vote,
};
use quill_fs::{File, Fs, OpenOptions};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{MetaRaftConfig, NodeId};
use crate::storage::frame::{self, FrameRead};
use crate::MetaError;

pub const LOG_FILE: &str = "quorum.log";
pub const VOTE_FILE: &str = "quorum.vote";
pub const PURGED_FILE: &str = "quorum.purged";
pub const COMMITTED_FILE: &str = "quorum.committed";
/// Small JSON files (vote, purge point, committed hint) are never larger than this.
const MAX_SMALL_FILE_BYTES: usize = 64 * 1024;
/// Room for an entry's term, index and JSON framing around its records.
const ENTRY_OVERHEAD_BYTES: usize = 4096;

type MetaEntry = Entry<MetaRaftConfig>;
type Result<T> = std::result::Result<T, StorageError<NodeId>>;

struct StoredEntry {
    entry: MetaEntry,
    /// Byte position of the entry's frame in the log file (truncation cuts there).
    position: u64,
}

/// The files, locked (on the blocking pool) across every write and fsync.
struct LogInner {
    fs: Fs,
    dir: PathBuf,
    file: File,
    file_len_bytes: u64,
    /// What openraft reads, under a lock of its own that is never held across I/O: a reader
    /// on a runtime worker never waits for an fsync. Lock order: `LogInner`, then this.
    state: Arc<Mutex<MemoryState>>,
    max_frame_bytes: usize,
    /// How far the state machine's durable snapshot reaches (`None` in tests of the log
    /// alone: purges are written at once).
    durable_snapshot: Option<Arc<DurableSnapshot>>,
    /// A purge openraft asked for (already out of `entries` and `last_purged`) that is not on
    /// disk yet, because no durable snapshot covers it yet (see `purge`).
    pending_purge: Option<LogId<NodeId>>,
}

/// The log as openraft sees it.
struct MemoryState {
    /// The retained log: every entry after the purge point, by index.
    entries: BTreeMap<u64, StoredEntry>,
    last_purged: Option<LogId<NodeId>>,
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
    /// This member is the only voter: its whole log is committed (see the module doc).
    sole_voter: bool,
}

impl LogInner {
    fn state(&self) -> MutexGuard<'_, MemoryState> {
        lock_state(&self.state)
    }
}

/// The index the state machine's latest durable snapshot covers, shared with the log store:
/// the log may forget on disk only what a durable snapshot holds.
#[derive(Debug, Default)]
pub struct DurableSnapshot {
    /// The snapshot's last index plus one; 0 while there is none.
    covered_plus_one: std::sync::atomic::AtomicU64,
}

impl DurableSnapshot {
    pub fn set(&self, last_index: Option<u64>) {
        let value = last_index.map_or(0, |index| index.saturating_add(1));
        self.covered_plus_one
            .fetch_max(value, std::sync::atomic::Ordering::SeqCst);
    }

    fn covers(&self, index: u64) -> bool {
        self.covered_plus_one
            .load(std::sync::atomic::Ordering::SeqCst)
            > index
    }
}

/// openraft's log storage; clones share one log (the reader handed to replication is a clone).
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Mutex<LogInner>>,
    state: Arc<Mutex<MemoryState>>,
}

impl LogStore {
    pub fn open(
        fs: &Fs,
        dir: &Path,
        max_entry_bytes: usize,
        sole_voter: bool,
    ) -> std::result::Result<Self, MetaError> {
        create_dir_durably(fs, dir)?;
        remove_temp_file(fs, dir, VOTE_FILE)?;
        remove_temp_file(fs, dir, PURGED_FILE)?;
        remove_temp_file(fs, dir, LOG_FILE)?;
        let vote: Option<Vote<NodeId>> = read_small_json(fs, &dir.join(VOTE_FILE))?;
        let last_purged: Option<LogId<NodeId>> = read_small_json(fs, &dir.join(PURGED_FILE))?;
        // The hint is written without fsync: anything unreadable is simply no hint.
        let committed: Option<LogId<NodeId>> =
            read_small_json(fs, &dir.join(COMMITTED_FILE)).unwrap_or_default();
        let max_frame_bytes = max_entry_bytes.saturating_add(ENTRY_OVERHEAD_BYTES);
        let file = fs.open(
            &dir.join(LOG_FILE),
            OpenOptions {
                read: true,
                append: true,
                create: true,
                ..OpenOptions::default()
            },
        )?;
        fs.sync_dir(dir)?;
        let (entries, valid_len_bytes) = read_entries(fs, dir, last_purged, max_frame_bytes)?;
        let file_len_bytes = file.size_bytes()?;
        if valid_len_bytes < file_len_bytes {
            tracing::warn!(
                dir = %dir.display(),
                cut_bytes = file_len_bytes - valid_len_bytes,
                "quorum log ends with a torn or damaged frame; cutting it"
            );
            file.set_len(valid_len_bytes)?;
            file.sync_all()?;
        }
        // A committed hint beyond the log (the log was cut) is no longer a safe hint.
        let last_index = entries
            .keys()
            .next_back()
            .copied()
            .or(last_purged.map(|id| id.index));
        let committed = committed.filter(|id| Some(id.index) <= last_index);
        let state = Arc::new(Mutex::new(MemoryState {
            entries,
            last_purged,
            vote,
            committed,
            sole_voter,
        }));
        Ok(LogStore {
            inner: Arc::new(Mutex::new(LogInner {
                fs: fs.clone(),
                dir: dir.to_path_buf(),
                file,
                file_len_bytes: valid_len_bytes,
                state: Arc::clone(&state),
                max_frame_bytes,
                durable_snapshot: None,
                pending_purge: None,
            })),
            state,
        })
    }

    /// Purges reach the disk only once `snapshot` covers them (see `purge`).
    pub fn guarded_by(self, snapshot: Arc<DurableSnapshot>) -> LogStore {
        lock_inner(&self.inner).durable_snapshot = Some(snapshot);
        self
    }

    /// Runs `work` with the log locked on the blocking pool: every method that writes or
    /// fsyncs goes through here, so no async runtime worker waits for the disk.
    async fn with_disk<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut LogInner) -> T + Send + 'static,
    ) -> std::result::Result<T, StorageError<NodeId>> {
        let shared = Arc::clone(&self.inner);
        super::runtime::run_blocking(move || {
            let mut inner = lock_inner(&shared);
            work(&mut inner)
        })
        .await
        .map_err(|error| StorageIOError::write_logs(AnyError::error(error)).into())
    }

    /// What openraft reads (never held across I/O).
    fn lock(&self) -> MutexGuard<'_, MemoryState> {
        lock_state(&self.state)
    }
}

/// Reads every whole entry frame after the purge point; returns them and the valid byte length.
fn read_entries(
    fs: &Fs,
    dir: &Path,
    last_purged: Option<LogId<NodeId>>,
    max_frame_bytes: usize,
) -> std::result::Result<(BTreeMap<u64, StoredEntry>, u64), MetaError> {
    let file = fs.open(&dir.join(LOG_FILE), OpenOptions::READ)?;
    let mut reader = std::io::BufReader::new(file);
    let mut entries = BTreeMap::new();
    let mut position = 0u64;
    let mut previous: Option<u64> = last_purged.map(|id| id.index);
    loop {
        let payload = match frame::read_frame(&mut reader, max_frame_bytes)? {
            FrameRead::Frame(payload) => payload,
            FrameRead::End | FrameRead::Invalid(_) => return Ok((entries, position)),
        };
        let entry: MetaEntry = serde_json::from_slice(&payload).map_err(|error| {
            MetaError::Corrupt(format!("undecodable quorum log entry: {error}"))
        })?;
        let index = entry.log_id.index;
        let frame_bytes = (frame::FRAME_HEADER_BYTES + payload.len()) as u64;
        // Entries at or below the purge point may remain if a crash hit between writing the
        // purge point and rewriting the log; they are dropped.
        if previous.is_some_and(|previous| index <= previous) && entries.is_empty() {
            position += frame_bytes;
            continue;
        }
        if let Some(previous) = previous.filter(|previous| index != previous + 1) {
            return Err(MetaError::Corrupt(format!(
                "quorum log jumps from index {previous} to {index}"
            )));
        }
        previous = Some(index);
        entries.insert(index, StoredEntry { entry, position });
        position += frame_bytes;
    }
}

impl RaftLogReader<MetaRaftConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<MetaEntry>> {
        let inner = self.lock();
        Ok(inner
            .entries
            .range(range)
            .map(|(_, stored)| stored.entry.clone())
            .collect())
    }
}

impl RaftLogStorage<MetaRaftConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<MetaRaftConfig>> {
        let inner = self.lock();
        let last_log_id = inner
            .entries
            .values()
            .next_back()
            .map(|stored| stored.entry.log_id)
            .or(inner.last_purged);
        Ok(LogState {
            last_purged_log_id: inner.last_purged,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<()> {
        let vote = *vote;
        self.with_disk(move |inner| {
            write_small_json(&inner.fs, &inner.dir, VOTE_FILE, &vote)?;
            inner.state().vote = Some(vote);
            Ok::<(), MetaError>(())
        })
        .await?
        .map_err(|error| StorageIOError::write_vote(AnyError::new(&error)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>> {
        Ok(self.lock().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<()> {
        self.with_disk(move |inner| {
            if let Some(committed) = committed {
                // Not fsynced on purpose (see the module doc); a failure is only logged.
                if let Err(error) = write_hint(&inner.fs, &inner.dir, &committed) {
                    tracing::debug!(%error, "quorum committed hint not written");
                }
            }
            inner.state().committed = committed;
        })
        .await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>> {
        let inner = self.lock();
        if inner.sole_voter {
            let last = inner
                .entries
                .values()
                .next_back()
                .map(|stored| stored.entry.log_id)
                .or(inner.last_purged);
            return Ok(last.max(inner.committed));
        }
        Ok(inner.committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<MetaRaftConfig>) -> Result<()>
    where
        I: IntoIterator<Item = MetaEntry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<MetaEntry> = entries.into_iter().collect();
        match self
            .with_disk(move |inner| {
                if let Err(error) = write_pending_purge(inner) {
                    return Err(AppendFailure::Write(std::io::Error::other(
                        error.to_string(),
                    )));
                }
                append_now(inner, entries)
            })
            .await?
        {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(AppendFailure::Encode { log_id, reason }) => {
                Err(StorageIOError::write_log_entry(log_id, AnyError::error(reason)).into())
            }
            Err(AppendFailure::Write(error)) => {
                let storage_error = StorageIOError::write_logs(AnyError::new(&error));
                callback.log_io_completed(Err(error));
                Err(storage_error.into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<()> {
        self.with_disk(move |inner| {
            let Some(cut_at) = inner
                .state()
                .entries
                .get(&log_id.index)
                .map(|stored| stored.position)
            else {
                return Ok(());
            };
            inner
                .file
                .set_len(cut_at)
                .and_then(|()| inner.file.sync_all())?;
            inner.file_len_bytes = cut_at;
            inner.state().entries.split_off(&log_id.index);
            Ok::<(), std::io::Error>(())
        })
        .await?
        .map_err(|error| StorageIOError::write_logs(AnyError::new(&error)).into())
    }

    /// openraft 0.9 asks to purge up to an installed snapshot without waiting for the state
    /// machine to have made that snapshot durable (the purge command has no condition). Were
    /// the purge written first, a crash in between would leave a log purged beyond the durable
    /// snapshot: entries this member may have acknowledged lost, and openraft refusing to
    /// start. So a purge takes effect in memory at once and reaches the disk only once a
    /// durable snapshot covers it (at the next append or purge).
    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<()> {
        self.with_disk(move |inner| {
            {
                let mut state = inner.state();
                state.last_purged = Some(log_id);
                let kept = state.entries.split_off(&(log_id.index + 1));
                state.entries = kept;
            }
            inner.pending_purge = Some(log_id);
            write_pending_purge(inner)
        })
        .await?
        .map_err(|error| StorageIOError::write_logs(AnyError::new(&error)).into())
    }
}

fn lock_state(state: &Mutex<MemoryState>) -> MutexGuard<'_, MemoryState> {
    // Every mutation leaves the map consistent before any fallible step that could panic,
    // so a poisoned lock still guards whole data.
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn lock_inner(shared: &Mutex<LogInner>) -> MutexGuard<'_, LogInner> {
    // Every mutation leaves the maps consistent before any fallible step that could panic,
    // so a poisoned lock still guards whole data.
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Writes the pending purge (marker, then the log rewritten without the purged entries) if a
/// durable snapshot covers it; otherwise leaves it pending.
fn write_pending_purge(inner: &mut LogInner) -> std::result::Result<(), MetaError> {
    let Some(log_id) = inner.pending_purge else {
        return Ok(());
    };
    let covered = inner
        .durable_snapshot
        .as_ref()
        .is_none_or(|snapshot| snapshot.covers(log_id.index));
    if !covered {
        return Ok(());
    }
    write_small_json(&inner.fs, &inner.dir, PURGED_FILE, &log_id)?;
    rewrite_log(inner)?;
    inner.pending_purge = None;
    Ok(())
}

/// Why an append failed: before anything was written (an entry cannot be encoded), or in the
/// write or its fsync (openraft is told through the flush callback too).
enum AppendFailure {
    Encode {
        log_id: LogId<NodeId>,
        reason: String,
    },
    Write(std::io::Error),
}

/// Encodes `entries`, writes them and fsyncs; blocking (see `LogStore::with_disk`).
fn append_now(
    inner: &mut LogInner,
    entries: Vec<MetaEntry>,
) -> std::result::Result<(), AppendFailure> {
    let encode_error = |log_id, error: &dyn std::error::Error| AppendFailure::Encode {
        log_id,
        reason: error.to_string(),
    };
    let mut bytes = Vec::new();
    let mut staged = Vec::new();
    let mut position = inner.file_len_bytes;
    for entry in entries {
        let payload =
            serde_json::to_vec(&entry).map_err(|error| encode_error(entry.log_id, &error))?;
        if payload.len() > inner.max_frame_bytes {
            let error = MetaError::EntryTooLarge {
                size_bytes: payload.len(),
                limit_bytes: inner.max_frame_bytes,
            };
            return Err(encode_error(entry.log_id, &error));
        }
        let framed =
            frame::encode_frame(&payload).map_err(|error| encode_error(entry.log_id, &error))?;
        staged.push(StoredEntry { entry, position });
        position += framed.len() as u64;
        bytes.extend_from_slice(&framed);
    }
    let written = (&inner.file)
        .write_all(&bytes)
        .and_then(|()| inner.file.sync_data());
    if let Err(error) = written {
        // Best effort: if even the cut fails, a restart may read back entries whose fsync
        // failed; they were never acknowledged, so committing them then is still safe.
        if let Err(cut_error) = inner.file.set_len(inner.file_len_bytes) {
            tracing::warn!(%cut_error, "cannot cut the quorum log back after a failed append");
        }
        return Err(AppendFailure::Write(error));
    }
    inner.file_len_bytes = position;
    let mut state = inner.state();
    for stored in staged {
        debug_assert!(state
            .entries
            .keys()
            .next_back()
            .is_none_or(|last| *last + 1 == stored.entry.log_id.index));
        state.entries.insert(stored.entry.log_id.index, stored);
    }
    Ok(())
}

/// Rewrites the log file with only the retained entries (atomically: temp file, fsync, rename,
/// fsync dir) and reopens it for appending.
fn rewrite_log(inner: &mut LogInner) -> std::result::Result<(), MetaError> {
    let mut bytes = Vec::new();
    let mut positions = Vec::new();
    for stored in inner.state().entries.values() {
        let payload = serde_json::to_vec(&stored.entry)
            .map_err(|error| MetaError::Corrupt(format!("cannot encode quorum entry: {error}")))?;
        positions.push(bytes.len() as u64);
        bytes.extend_from_slice(&frame::encode_frame(&payload)?);
    }
    // Only holders of `LogInner` change the entries: they are the ones just encoded.
    inner.fs.write_atomically(&inner.dir, LOG_FILE, &bytes)?;
    let file = inner.fs.open(
        &inner.dir.join(LOG_FILE),
        OpenOptions {
            read: true,
            append: true,
            ..OpenOptions::default()
        },
    )?;
    for (stored, position) in inner.state().entries.values_mut().zip(positions) {
        stored.position = position;
    }
    inner.file = file;
    inner.file_len_bytes = bytes.len() as u64;
    Ok(())
}

/// True while nothing but a migration can have been written: no vote (a voter votes for itself
/// before it appends anything) and an empty log.
pub(crate) fn is_unused(fs: &Fs, dir: &Path) -> std::result::Result<bool, MetaError> {
    if fs.exists(&dir.join(VOTE_FILE)) {
        return Ok(false);
    }
    match fs.file_len(&dir.join(LOG_FILE)) {
        Ok(len_bytes) => Ok(len_bytes == 0),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(error) => Err(error.into()),
    }
}

/// Marks the log purged up to `log_id` (used when a snapshot stands in for the log's start).
pub(crate) fn write_purged(
    fs: &Fs,
    dir: &Path,
    log_id: &LogId<NodeId>,
) -> std::result::Result<(), MetaError> {
    write_small_json(fs, dir, PURGED_FILE, log_id)
}

fn write_small_json<T: Serialize>(
    fs: &Fs,
    dir: &Path,
    name: &str,
    value: &T,
) -> std::result::Result<(), MetaError> {
    let payload = serde_json::to_vec(value)
        .map_err(|error| MetaError::Corrupt(format!("cannot encode {name}: {error}")))?;
    fs.write_atomically(dir, name, &frame::encode_frame(&payload)?)?;
    Ok(())
}

fn write_hint<T: Serialize>(fs: &Fs, dir: &Path, value: &T) -> std::result::Result<(), MetaError> {
    let payload = serde_json::to_vec(value)
        .map_err(|error| MetaError::Corrupt(format!("cannot encode hint: {error}")))?;
    let file = fs.open(
        &dir.join(COMMITTED_FILE),
        OpenOptions {
            write: true,
            create: true,
            truncate: true,
            ..OpenOptions::default()
        },
    )?;
    (&file).write_all(&frame::encode_frame(&payload)?)?;
    Ok(())
}

/// Reads a file written by `write_small_json`; a missing file is `None`. These files are
/// replaced atomically, so a bad checksum is corruption, not a torn write.
fn read_small_json<T: DeserializeOwned>(
    fs: &Fs,
    path: &Path,
) -> std::result::Result<Option<T>, MetaError> {
    if !fs.exists(path) {
        return Ok(None);
    }
    let bytes = fs.read(path)?;
    let mut reader = bytes.as_slice();
    match frame::read_frame(&mut reader, MAX_SMALL_FILE_BYTES)? {
        FrameRead::Frame(payload) => serde_json::from_slice(&payload).map(Some).map_err(|error| {
            MetaError::Corrupt(format!("undecodable {}: {error}", path.display()))
        }),
        FrameRead::End => Err(MetaError::Corrupt(format!("{} is empty", path.display()))),
        FrameRead::Invalid(reason) => {
            Err(MetaError::Corrupt(format!("{}: {reason}", path.display())))
        }
    }
}

fn remove_temp_file(fs: &Fs, dir: &Path, name: &str) -> std::io::Result<()> {
    fs.remove_file_if_exists(&dir.join(format!("{name}.tmp")))
}

pub(crate) fn create_dir_durably(fs: &Fs, dir: &Path) -> std::result::Result<(), MetaError> {
    if fs.is_dir(dir) {
        return Ok(());
    }
    fs.create_dir_all(dir)?;
    if let Some(parent) = dir.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        fs.sync_dir(parent)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use openraft::storage::RaftLogStorageExt;
    use openraft::{CommittedLeaderId, EntryPayload};
    use quill_fs::sim::{CrashMode, SimDisk};

    use super::*;

    fn blank(term: u64, index: u64) -> MetaEntry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
            payload: EntryPayload::Blank,
        }
    }

    fn fresh(dir: &Path) -> (SimDisk, Fs) {
        let disk = SimDisk::new();
        let fs = disk.mount();
        fs.create_dir_all(dir).unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        (disk, fs)
    }

    /// What openraft reads is never locked while the log writes or fsyncs: at every mutating
    /// disk call of appends, votes, truncations and purges, the read side is free.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn readers_never_wait_for_a_write_or_an_fsync() {
        let dir = Path::new("/quorum");
        let (disk, fs) = fresh(dir);
        let mut log = LogStore::open(&fs, dir, 1 << 20, false).unwrap();
        let state = Arc::clone(&log.state);
        let (calls, blocked) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        {
            let (calls, blocked) = (Arc::clone(&calls), Arc::clone(&blocked));
            disk.set_mutation_hook(Some(Arc::new(move || {
                calls.fetch_add(1, Ordering::SeqCst);
                if state.try_lock().is_err() {
                    blocked.fetch_add(1, Ordering::SeqCst);
                }
            })));
        }
        log.save_vote(&Vote::new(1, 1)).await.unwrap();
        log.blocking_append((1..=10).map(|index| blank(1, index)))
            .await
            .unwrap();
        log.truncate(blank(1, 9).log_id).await.unwrap();
        log.purge(blank(1, 4).log_id).await.unwrap();
        disk.set_mutation_hook(None);
        assert!(calls.load(Ordering::SeqCst) > 5);
        assert_eq!(blocked.load(Ordering::SeqCst), 0);
    }

    /// A purge beyond the durable snapshot stays in memory only (a crash keeps the entries on
    /// disk); once a snapshot covers it, the next append writes it.
    #[tokio::test]
    async fn a_purge_reaches_the_disk_only_behind_a_durable_snapshot() {
        let dir = Path::new("/quorum");
        let (disk, fs) = fresh(dir);
        let snapshot = Arc::new(DurableSnapshot::default());
        let mut log = LogStore::open(&fs, dir, 1 << 20, false)
            .unwrap()
            .guarded_by(Arc::clone(&snapshot));
        log.blocking_append((1..=6).map(|index| blank(1, index)))
            .await
            .unwrap();
        log.purge(blank(1, 4).log_id).await.unwrap();
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(blank(1, 4).log_id));
        assert!(!fs.exists(&dir.join(PURGED_FILE)));
        drop(log);
        disk.power_loss(CrashMode::LoseUnsynced);
        let fs = disk.mount();
        let mut log = LogStore::open(&fs, dir, 1 << 20, false)
            .unwrap()
            .guarded_by(Arc::clone(&snapshot));
        assert_eq!(log.get_log_state().await.unwrap().last_purged_log_id, None);
        assert_eq!(log.try_get_log_entries(0..100).await.unwrap().len(), 6);

        log.purge(blank(1, 4).log_id).await.unwrap();
        snapshot.set(Some(5));
        log.blocking_append([blank(1, 7)]).await.unwrap();
        drop(log);
        disk.power_loss(CrashMode::LoseUnsynced);
        let fs = disk.mount();
        let mut log = LogStore::open(&fs, dir, 1 << 20, false).unwrap();
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(blank(1, 4).log_id));
        let indexes: Vec<u64> = log
            .try_get_log_entries(0..100)
            .await
            .unwrap()
            .iter()
            .map(|entry| entry.log_id.index)
            .collect();
        assert_eq!(indexes, vec![5, 6, 7]);
    }
}
