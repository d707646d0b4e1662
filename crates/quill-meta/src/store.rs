//! The durable, single-node metadata log: validate, append + fsync, apply, snapshot, replay.

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use quill_fs::{File, Fs, OpenOptions};

use crate::storage::frame::{self, FrameRead};
use crate::storage::properties::MetaProperties;
use crate::storage::{entry, snapshot, LOG_FILE, PROPERTIES_FILE, SNAPSHOT_FILE};
use crate::{apply_entry, storage, MetaError, MetadataImage, MetadataRecord};

/// Default upper bound on one encoded log entry.
pub const DEFAULT_MAX_ENTRY_BYTES: usize = 8 * 1024 * 1024;
/// Default number of entries appended between automatic snapshots.
pub const DEFAULT_SNAPSHOT_INTERVAL_ENTRIES: u64 = 1000;

#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Take a snapshot (and empty the log) after this many appended entries.
    pub snapshot_interval_entries: u64,
    /// Largest encoded entry accepted by `append` and read back on replay.
    pub max_entry_bytes: usize,
    /// The cluster id a fresh directory is formatted with (Kafka's `kafka-storage.sh format
    /// --cluster-id`); `None` mints a random one. An existing directory keeps its own.
    pub cluster_id: Option<String>,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            snapshot_interval_entries: DEFAULT_SNAPSHOT_INTERVAL_ENTRIES,
            max_entry_bytes: DEFAULT_MAX_ENTRY_BYTES,
            cluster_id: None,
        }
    }
}

/// What `open` found and repaired; for logging and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub created: bool,
    pub snapshot_index: Option<u64>,
    pub replayed_entries: u64,
    /// Bytes cut from the end of the log because they were not a whole valid frame.
    pub truncated_bytes: u64,
}

/// A cloneable, `Send + Sync` view of the store's current image for readers that must not wait
/// for an append's fsync (the writer holds the store's lock during it).
#[derive(Clone, Debug)]
pub struct ImageReader {
    current: Arc<RwLock<Arc<MetadataImage>>>,
}

impl ImageReader {
    fn new(image: Arc<MetadataImage>) -> ImageReader {
        ImageReader {
            current: Arc::new(RwLock::new(image)),
        }
    }

    /// The latest image: everything in it is durable on disk.
    pub fn image(&self) -> Arc<MetadataImage> {
        // A panic while publishing cannot leave a half-written Arc; the value is always whole.
        match self.current.read() {
            Ok(current) => Arc::clone(&current),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn publish(&self, image: Arc<MetadataImage>) {
        match self.current.write() {
            Ok(mut current) => *current = image,
            Err(poisoned) => *poisoned.into_inner() = image,
        }
    }
}

/// Single writer of the metadata log. Wrap it in a `Mutex` for writers; readers use `image()` or
/// an [`ImageReader`] and never see an image before it is durable.
///
/// Architecture invariant: the image held here is always exactly the replay of the snapshot plus
/// the log entries on disk, so a restart yields the image last returned by `append` (after a
/// failed write, once [`MetadataStore::recover`] has cut the log back to its durable entries).
pub struct MetadataStore {
    fs: Fs,
    dir: PathBuf,
    log: File,
    log_len_bytes: u64,
    image: Arc<MetadataImage>,
    reader: ImageReader,
    entries_since_snapshot: u64,
    options: StoreOptions,
    /// Set after a failed write, fsync or truncation: the file's tail is unknown, so the next
    /// append or snapshot first re-establishes a known-good state ([`Self::recover`]).
    needs_recovery: bool,
    recovery: RecoveryReport,
}

impl MetadataStore {
    pub fn open(dir: &Path) -> Result<MetadataStore, MetaError> {
        MetadataStore::open_with_options(dir, StoreOptions::default())
    }

    pub fn open_with_options(
        dir: &Path,
        options: StoreOptions,
    ) -> Result<MetadataStore, MetaError> {
        MetadataStore::open_in(&Fs::default(), dir, options)
    }

    /// `open_with_options` on the given file system (tests pass a simulated disk, see
    /// `quill_fs::sim`).
    pub fn open_in(fs: &Fs, dir: &Path, options: StoreOptions) -> Result<MetadataStore, MetaError> {
        create_dir_durably(fs, dir)?;
        storage::remove_temp_files(fs, dir)?;
        let mut recovery = RecoveryReport::default();
        let properties =
            load_or_create_properties(fs, dir, options.cluster_id.as_deref(), &mut recovery)?;

        let snapshot_path = dir.join(SNAPSHOT_FILE);
        let mut image = if fs.exists(&snapshot_path) {
            let image = snapshot::read_snapshot(fs, &snapshot_path, &properties.cluster_id)?;
            recovery.snapshot_index = Some(image.offset);
            image
        } else {
            MetadataImage::empty(properties.cluster_id.clone())
        };

        let (log, scan) = open_and_repair_log(fs, dir, &mut image, &options, &mut recovery)?;
        image.check_invariants().map_err(|violation| {
            MetaError::Corrupt(format!("replayed metadata image is invalid: {violation}"))
        })?;
        tracing::info!(
            dir = %dir.display(),
            cluster_id = %image.cluster_id,
            offset = image.offset,
            ?recovery,
            "metadata store opened"
        );
        let image = Arc::new(image);
        Ok(MetadataStore {
            fs: fs.clone(),
            dir: dir.to_path_buf(),
            log,
            log_len_bytes: scan.valid_len_bytes,
            reader: ImageReader::new(Arc::clone(&image)),
            image,
            entries_since_snapshot: scan.replayed_entries,
            options,
            needs_recovery: false,
            recovery,
        })
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        Arc::clone(&self.image)
    }

    /// A handle that follows this store's image without locking the store.
    pub fn reader(&self) -> ImageReader {
        self.reader.clone()
    }

    pub fn cluster_id(&self) -> &str {
        &self.image.cluster_id
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// Validates `records` against the current image exactly as the state machine will apply
    /// them, appends them as one entry, fsyncs, applies, and returns the new image. A validation
    /// error returns before anything is written. An empty batch changes nothing.
    pub fn append(
        &mut self,
        records: Vec<MetadataRecord>,
    ) -> Result<Arc<MetadataImage>, MetaError> {
        if self.needs_recovery {
            self.recover()?;
        }
        if records.is_empty() {
            return Ok(self.image());
        }
        let index = self.image.offset + 1;
        let next_image = apply_entry(&self.image, index, &records)?;
        let payload = entry::encode_entry(index, &records)?;
        if payload.len() > self.options.max_entry_bytes {
            return Err(MetaError::EntryTooLarge {
                size_bytes: payload.len(),
                limit_bytes: self.options.max_entry_bytes,
            });
        }
        let framed = frame::encode_frame(&payload)?;
        self.append_durably(&framed)?;
        self.image = Arc::new(next_image);
        self.reader.publish(Arc::clone(&self.image));
        self.entries_since_snapshot += 1;
        if self.entries_since_snapshot >= self.options.snapshot_interval_entries {
            // The entry is already durable in the log, so a failed snapshot loses nothing; it is
            // retried at the next append.
            if let Err(error) = self.snapshot() {
                tracing::warn!(%error, "automatic metadata snapshot failed");
            }
        }
        Ok(self.image())
    }

    fn append_durably(&mut self, framed: &[u8]) -> Result<(), MetaError> {
        let written = (&self.log)
            .write_all(framed)
            .and_then(|()| self.log.sync_data());
        if let Err(error) = written {
            self.needs_recovery = true;
            tracing::error!(%error, "metadata log write failed; the change is refused and the log is cut back to its last durable entry before the next one");
            return Err(MetaError::Io(error));
        }
        self.log_len_bytes += framed.len() as u64;
        Ok(())
    }

    /// Writes a snapshot of the current image atomically, then empties the log.
    pub fn snapshot(&mut self) -> Result<(), MetaError> {
        if self.needs_recovery {
            self.recover()?;
        }
        let framed = snapshot::encode_snapshot(&self.image)?;
        self.fs
            .write_atomically(&self.dir, SNAPSHOT_FILE, &framed)?;
        // From here the snapshot covers every log entry, so the truncation needs no fsync of its
        // own: if a power loss undoes it, replay skips entries at or below the snapshot index,
        // and the next entry's fdatasync makes it durable with that entry.
        if let Err(error) = self.log.set_len(0) {
            self.needs_recovery = true;
            return Err(MetaError::Io(error));
        }
        self.log_len_bytes = 0;
        self.entries_since_snapshot = 0;
        tracing::debug!(offset = self.image.offset, "metadata snapshot written");
        Ok(())
    }
}

impl MetadataStore {
    /// Re-establishes a known-good state after a failed write, fsync or truncation, without a
    /// restart. After a failed fsync the page cache may hold bytes that never reached the disk,
    /// or may have dropped them, and retrying the fsync proves nothing (the error is reported
    /// once). What is known durable is every frame whose fsync succeeded: the first
    /// `log_len_bytes` (or, after a snapshot, the snapshot file, which was fsynced and renamed
    /// durably before the log was emptied). So: open the log afresh (a new file description,
    /// which does not inherit the old one's reported error), cut it back to `log_len_bytes`,
    /// fsync the cut, then replay snapshot + log from the files exactly as a restart would and
    /// require the result to equal the image already published. Only then are appends allowed
    /// again; on any failure the store stays in this state and the next call tries again.
    fn recover(&mut self) -> Result<(), MetaError> {
        let log = self.fs.open(
            &self.dir.join(LOG_FILE),
            OpenOptions {
                read: true,
                append: true,
                ..OpenOptions::default()
            },
        )?;
        log.set_len(self.log_len_bytes)?;
        log.sync_all()?;
        drop(log);
        let reopened = MetadataStore::open_in(&self.fs, &self.dir, self.options.clone())?;
        if *reopened.image != *self.image {
            return Err(MetaError::Corrupt(format!(
                "after a failed write the metadata on disk replays to offset {}, not {}",
                reopened.image.offset, self.image.offset
            )));
        }
        tracing::info!(
            offset = self.image.offset,
            "metadata log recovered after a failed write; appends resume"
        );
        self.log = reopened.log;
        self.log_len_bytes = reopened.log_len_bytes;
        self.entries_since_snapshot = reopened.entries_since_snapshot;
        self.needs_recovery = false;
        Ok(())
    }
}

/// Opens (creating if needed) the log, replays it onto `image`, and cuts an invalid tail.
fn open_and_repair_log(
    fs: &Fs,
    dir: &Path,
    image: &mut MetadataImage,
    options: &StoreOptions,
    recovery: &mut RecoveryReport,
) -> Result<(File, LogScan), MetaError> {
    let log = fs.open(
        &dir.join(LOG_FILE),
        OpenOptions {
            read: true,
            append: true,
            create: true,
            ..OpenOptions::default()
        },
    )?;
    // fdatasync on the log does not persist its directory entry; a new log file must be.
    fs.sync_dir(dir)?;
    let scan = replay_log(&log, image, options.max_entry_bytes)?;
    recovery.replayed_entries = scan.replayed_entries;
    let file_len_bytes = log.size_bytes()?;
    if scan.valid_len_bytes < file_len_bytes {
        recovery.truncated_bytes = file_len_bytes - scan.valid_len_bytes;
        tracing::warn!(
            dir = %dir.display(),
            valid_len_bytes = scan.valid_len_bytes,
            truncated_bytes = recovery.truncated_bytes,
            reason = scan.invalid_reason.as_deref().unwrap_or(""),
            "metadata log ends with an invalid frame (torn write or damage); truncating to the last valid entry"
        );
        log.set_len(scan.valid_len_bytes)?;
    }
    // After a process crash the replayed entries may sit only in the page cache (the writer died
    // between its write and its fdatasync): the image built from them is published as durable,
    // so they must be made durable first. (An empty log holds nothing to lose.)
    if file_len_bytes > 0 {
        log.sync_data()?;
    }
    Ok((log, scan))
}

/// Creates `dir` (and parents) so that the new directory entries survive a crash.
fn create_dir_durably(fs: &Fs, dir: &Path) -> Result<(), MetaError> {
    if fs.is_dir(dir) {
        return Ok(());
    }
    fs.create_dir_all(dir)?;
    if let Some(parent) = dir.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        fs.sync_dir(parent)?;
    }
    Ok(())
}

fn load_or_create_properties(
    fs: &Fs,
    dir: &Path,
    cluster_id: Option<&str>,
    recovery: &mut RecoveryReport,
) -> Result<MetaProperties, MetaError> {
    let path = dir.join(PROPERTIES_FILE);
    if fs.exists(&path) {
        return MetaProperties::read(fs, &path);
    }
    // Never mint a new cluster id next to existing metadata: that would silently fork history.
    let log_has_entries = fs.file_len(&dir.join(LOG_FILE)).is_ok_and(|len| len > 0);
    if log_has_entries || fs.exists(&dir.join(SNAPSHOT_FILE)) {
        return Err(MetaError::Corrupt(format!(
            "{} has metadata but no {PROPERTIES_FILE}",
            dir.display()
        )));
    }
    let properties = match cluster_id {
        Some(cluster_id) => MetaProperties {
            cluster_id: cluster_id.to_string(),
        },
        None => MetaProperties::generate(),
    };
    fs.write_atomically(dir, PROPERTIES_FILE, properties.to_text().as_bytes())?;
    recovery.created = true;
    Ok(properties)
}

struct LogScan {
    valid_len_bytes: u64,
    replayed_entries: u64,
    invalid_reason: Option<String>,
}

/// Applies every whole, valid entry after the image's offset. Stops at the first invalid frame
/// (the caller truncates there). A valid frame that does not decode or apply, or an index gap,
/// is corruption and fails the open.
fn replay_log(
    log: &File,
    image: &mut MetadataImage,
    max_entry_bytes: usize,
) -> Result<LogScan, MetaError> {
    let mut reader = BufReader::new(log);
    let mut scan = LogScan {
        valid_len_bytes: 0,
        replayed_entries: 0,
        invalid_reason: None,
    };
    let mut previous_index: Option<u64> = None;
    loop {
        let payload = match frame::read_frame(&mut reader, max_entry_bytes)? {
            FrameRead::Frame(payload) => payload,
            FrameRead::End => return Ok(scan),
            FrameRead::Invalid(reason) => {
                scan.invalid_reason = Some(reason);
                return Ok(scan);
            }
        };
        let stored = entry::decode_entry(&payload)?;
        if let Some(previous) = previous_index.filter(|previous| stored.index != previous + 1) {
            return Err(MetaError::Corrupt(format!(
                "metadata log jumps from index {previous} to {}",
                stored.index
            )));
        }
        previous_index = Some(stored.index);
        if stored.index > image.offset {
            if stored.index != image.offset + 1 {
                return Err(MetaError::Corrupt(format!(
                    "metadata log jumps from index {} to {}",
                    image.offset, stored.index
                )));
            }
            *image = apply_entry(image, stored.index, &stored.records).map_err(|error| {
                MetaError::Corrupt(format!(
                    "metadata entry {} does not apply: {error}",
                    stored.index
                ))
            })?;
            scan.replayed_entries += 1;
        }
        scan.valid_len_bytes += (frame::FRAME_HEADER_BYTES + payload.len()) as u64;
    }
}

#[cfg(test)]
mod tests;
