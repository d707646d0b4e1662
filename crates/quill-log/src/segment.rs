//! One segment: a `.log` file of whole v2 batches plus its two sparse indexes.

use std::io::IoSlice;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use quill_fs::{File, Fs, OpenOptions};

use crate::batch::{self, BatchHeader, HEADER_BYTES};
use crate::error::LogError;
use crate::index::{Index, OffsetEntry, TimeEntry};

/// Sees a producer batch's header and, for a control batch, its (marker type, coordinator epoch).
pub type ProducerBatchVisitor<'a> = dyn FnMut(&BatchHeader, Option<(i16, i32)>) + 'a;

/// Batches on disk larger than this are treated as corrupt (it also caps `max.message.bytes`).
pub const MAX_BATCH_BYTES: u32 = 64 * 1024 * 1024;
/// How much a scan reads from the file at a time.
const SCAN_CHUNK_BYTES: usize = 256 * 1024;
/// How much a lookup (offset or timestamp) reads at a time.
const LOOKUP_CHUNK_BYTES: usize = 16 * 1024;

pub fn segment_file_name(base_offset: i64, extension: &str) -> String {
    format!("{base_offset:020}.{extension}")
}

/// A batch as the segment records it after the log assigned its offsets.
#[derive(Clone, Copy, Debug)]
pub struct PlacedBatch {
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp_ms: i64,
    pub size_bytes: u64,
}

/// Bytes of a segment file located under the log's lock and read without it.
#[derive(Debug)]
pub struct SegmentRange {
    file: Arc<File>,
    position: u64,
    length: usize,
    dir: PathBuf,
}

impl SegmentRange {
    pub fn read(&self) -> Result<Vec<u8>, LogError> {
        let mut buffer = vec![0u8; self.length];
        self.file.read_exact_at(&mut buffer, self.position)?;
        Ok(buffer)
    }

    pub fn describe(&self) -> String {
        self.dir.display().to_string()
    }
}

#[derive(Debug)]
pub struct Segment {
    pub base_offset: i64,
    /// The offset after the last batch in this segment.
    pub next_offset: i64,
    pub size_bytes: u64,
    /// Largest batch max timestamp seen, or -1; and the base offset of that batch.
    pub max_timestamp_ms: i64,
    pub offset_of_max_timestamp: i64,
    /// Wall-clock time of the first append into this segment (for `segment.ms`).
    pub first_append_ms: Option<i64>,
    /// A cleaned segment (below the cleaner's mark) may skip offsets between batches: the
    /// cleaner removed the records in between. Elsewhere offsets must be dense.
    gaps_allowed: bool,
    /// Appended to all three file names ("" for a segment of the log).
    file_suffix: &'static str,
    bytes_since_index_entry: u64,
    fs: Fs,
    file: Arc<File>,
    log_path: PathBuf,
    offset_index: Index<OffsetEntry>,
    time_index: Index<TimeEntry>,
}

/// The result of walking a segment's batches.
pub struct ScanOutcome {
    /// Where the valid prefix ends; the file is cut here if it is longer.
    pub valid_bytes: u64,
    pub truncated: bool,
}

impl Segment {
    pub fn create(fs: &Fs, dir: &Path, base_offset: i64) -> Result<Segment, LogError> {
        Segment::create_with_suffix(fs, dir, base_offset, "")
    }

    /// A new segment whose three files carry `suffix` after their usual names (the cleaner
    /// writes `<base>.log.cleaned` etc. before swapping them in).
    pub fn create_with_suffix(
        fs: &Fs,
        dir: &Path,
        base_offset: i64,
        suffix: &'static str,
    ) -> Result<Segment, LogError> {
        let log_path = dir.join(format!("{}{suffix}", segment_file_name(base_offset, "log")));
        let file = fs.open(
            &log_path,
            OpenOptions {
                create: true,
                read: true,
                append: true,
                ..OpenOptions::default()
            },
        )?;
        // A leftover file of the same name holds nothing we trust (append mode cannot truncate).
        file.set_len(0)?;
        for extension in ["index", "timeindex"] {
            let name = format!("{}{suffix}", segment_file_name(base_offset, extension));
            fs.remove_file_if_exists(&dir.join(name))?;
        }
        let mut segment = Segment::empty(fs, base_offset, Arc::new(file), log_path);
        segment.file_suffix = suffix;
        Ok(segment)
    }

    fn empty(fs: &Fs, base_offset: i64, file: Arc<File>, log_path: PathBuf) -> Segment {
        Segment {
            base_offset,
            next_offset: base_offset,
            size_bytes: 0,
            max_timestamp_ms: -1,
            offset_of_max_timestamp: base_offset,
            first_append_ms: None,
            gaps_allowed: false,
            file_suffix: "",
            bytes_since_index_entry: 0,
            fs: fs.clone(),
            file,
            log_path,
            offset_index: Index::default(),
            time_index: Index::default(),
        }
    }

    /// Opens an existing segment. Consistent index files are trusted for the part of the
    /// segment before `recover_from` (all of it when `None`); every batch from there to the end
    /// is validated (header, CRC, dense offsets unless `gaps_allowed`) and a torn or corrupt
    /// tail is cut. Missing or inconsistent index files are rebuilt by a full validating scan.
    pub fn open(
        fs: &Fs,
        dir: &Path,
        base_offset: i64,
        index_interval_bytes: u32,
        recover_from: Option<i64>,
        gaps_allowed: bool,
    ) -> Result<(Segment, ScanOutcome), LogError> {
        let log_path = dir.join(segment_file_name(base_offset, "log"));
        let file = fs.open(
            &log_path,
            OpenOptions {
                read: true,
                append: true,
                ..OpenOptions::default()
            },
        )?;
        let size_bytes = file.size_bytes()?;
        let mut segment = Segment::empty(fs, base_offset, Arc::new(file), log_path);
        segment.size_bytes = size_bytes;
        segment.gaps_allowed = gaps_allowed;
        if !segment.load_indexes()? {
            let outcome = segment.rebuild(index_interval_bytes)?;
            return Ok((segment, outcome));
        }
        if let Some(offset) = recover_from {
            segment.forget_index_entries_after(offset);
        }
        let outcome = segment.scan_tail(index_interval_bytes)?;
        Ok((segment, outcome))
    }

    fn index_path(&self, extension: &str) -> PathBuf {
        let name = segment_file_name(self.base_offset, extension);
        self.log_path
            .with_file_name(format!("{name}{}", self.file_suffix))
    }

    fn load_indexes(&mut self) -> Result<bool, LogError> {
        let size = self.size_bytes;
        let Some(offset_index) =
            Index::<OffsetEntry>::load(&self.fs, &self.index_path("index"), |e| {
                u64::from(e.position) < size
            })?
        else {
            return Ok(false);
        };
        let Some(time_index) =
            Index::<TimeEntry>::load(&self.fs, &self.index_path("timeindex"), |_| true)?
        else {
            return Ok(false);
        };
        self.offset_index = offset_index;
        self.time_index = time_index;
        self.max_timestamp_from_time_index();
        Ok(true)
    }

    fn max_timestamp_from_time_index(&mut self) {
        (self.max_timestamp_ms, self.offset_of_max_timestamp) = match self.time_index.last() {
            Some(last) => (
                last.timestamp_ms,
                self.base_offset + i64::from(last.relative_offset),
            ),
            None => (-1, self.base_offset),
        };
    }

    /// Keeps only index entries that describe data before `offset`, so that a scan re-validates
    /// (and re-indexes) everything from there.
    fn forget_index_entries_after(&mut self, offset: i64) {
        let relative = offset.saturating_sub(self.base_offset).max(0);
        self.offset_index
            .truncate_while(|e| i64::from(e.relative_offset) > relative);
        let scan_start = self.offset_index.last().map_or(0, |e| e.relative_offset);
        self.time_index
            .truncate_while(|e| e.relative_offset >= scan_start);
        self.max_timestamp_from_time_index();
    }

    /// Walks (and validates) the batches from the last offset index entry to the end, to find
    /// the end offset and the timestamps not yet in the time index.
    fn scan_tail(&mut self, index_interval_bytes: u32) -> Result<ScanOutcome, LogError> {
        let Some(last) = self.offset_index.last().copied() else {
            return self.rebuild(index_interval_bytes);
        };
        self.next_offset = self.base_offset + i64::from(last.relative_offset);
        let outcome = self.scan_from(u64::from(last.position), index_interval_bytes, false)?;
        if outcome.valid_bytes <= u64::from(last.position) {
            // No valid batch where the index points: the index cannot be trusted, and neither
            // can the place it points to as a cut (a stale index that survived a power loss
            // while the data was rewritten after a truncation points anywhere).
            return self.rebuild(index_interval_bytes);
        }
        self.cut_invalid_tail(outcome.valid_bytes)?;
        Ok(outcome)
    }

    /// Drops the indexes and rebuilds them from a full, validating scan.
    fn rebuild(&mut self, index_interval_bytes: u32) -> Result<ScanOutcome, LogError> {
        // Fresh indexes rewrite their files on the next persist.
        self.offset_index = Index::default();
        self.time_index = Index::default();
        self.bytes_since_index_entry = 0;
        self.next_offset = self.base_offset;
        self.max_timestamp_ms = -1;
        self.offset_of_max_timestamp = self.base_offset;
        let outcome = self.scan_from(0, index_interval_bytes, true)?;
        self.cut_invalid_tail(outcome.valid_bytes)?;
        // The files are trusted by the next open, which may scan only after the last offset
        // entry: they must hold the max timestamp (without it a timestamp between the two was
        // lost: two unclean reopens, then offset_for_timestamp answered None). Synced: a stale
        // index file that a power loss brings back would describe other data.
        self.seal_time_index();
        if let Err(error) = self.persist_indexes(true) {
            // A full disk must not keep the log from opening: the indexes are complete in
            // memory. The files that could not be written are removed (which needs no space),
            // so no stale one is trusted later, and rewritten whole at the next persist.
            self.offset_index.rewrite_at_next_persist();
            self.time_index.rewrite_at_next_persist();
            for kind in ["index", "timeindex"] {
                if let Err(error) = self.fs.remove_file_if_exists(&self.index_path(kind)) {
                    tracing::warn!(path = %self.log_path.display(), %error, "could not remove a stale index file");
                }
            }
            tracing::warn!(path = %self.log_path.display(), %error, "could not write the rebuilt indexes; they are rewritten at the next persist");
        }
        Ok(outcome)
    }

    /// Validates every batch from `position`: header, size, CRC and dense (or, in a cleaned
    /// segment, increasing) offsets, up to the first batch that fails (the caller cuts there).
    /// `add_index_entries` is false when the indexes already cover the batch at `position`.
    fn scan_from(
        &mut self,
        mut position: u64,
        index_interval_bytes: u32,
        add_index_entries: bool,
    ) -> Result<ScanOutcome, LogError> {
        let file = Arc::clone(&self.file);
        let mut reader = ChunkReader::new(&file, self.size_bytes);
        let mut first = true;
        while position < self.size_bytes {
            let Some(header) = reader.header_at(position)? else {
                break;
            };
            let Some(whole) = reader.bytes_at(position, header.size_bytes)? else {
                break;
            };
            let in_order = if self.gaps_allowed {
                header.base_offset >= self.next_offset
            } else {
                header.base_offset == self.next_offset
            };
            if !in_order
                || header.last_offset_delta < 0
                || batch::validate_batch(whole, &header, false).is_err()
            {
                break;
            }
            let placed = PlacedBatch {
                base_offset: header.base_offset,
                last_offset: header.last_offset(),
                max_timestamp_ms: header.max_timestamp_ms,
                size_bytes: header.size_bytes as u64,
            };
            // The batch at an existing index entry is already indexed: only account for it.
            let may_index = add_index_entries || !first;
            self.record_batch(position, &placed, index_interval_bytes, may_index);
            first = false;
            position += header.size_bytes as u64;
        }
        Ok(ScanOutcome {
            valid_bytes: position,
            truncated: position < self.size_bytes,
        })
    }

    fn cut_invalid_tail(&mut self, valid_bytes: u64) -> Result<(), LogError> {
        if valid_bytes < self.size_bytes {
            tracing::warn!(
                segment = %self.log_path.display(),
                valid_bytes,
                file_bytes = self.size_bytes,
                "truncating invalid tail of segment"
            );
            self.file.set_len(valid_bytes)?;
            self.size_bytes = valid_bytes;
        }
        Ok(())
    }

    /// Updates end offset, timestamps and indexes for a batch written at `position`.
    fn record_batch(
        &mut self,
        position: u64,
        placed: &PlacedBatch,
        index_interval_bytes: u32,
        may_index: bool,
    ) {
        let relative_offset = (placed.base_offset - self.base_offset) as u32;
        if may_index
            && (self.offset_index.is_empty()
                || self.bytes_since_index_entry >= u64::from(index_interval_bytes))
        {
            self.offset_index.push(OffsetEntry {
                relative_offset,
                position: position as u32,
            });
            self.bytes_since_index_entry = 0;
        }
        self.bytes_since_index_entry += placed.size_bytes;
        if placed.max_timestamp_ms > self.max_timestamp_ms {
            self.max_timestamp_ms = placed.max_timestamp_ms;
            self.offset_of_max_timestamp = placed.base_offset;
            let time_entry_due =
                self.time_index.is_empty() || self.bytes_since_index_entry == placed.size_bytes;
            if may_index && time_entry_due {
                self.time_index.push(TimeEntry {
                    timestamp_ms: placed.max_timestamp_ms,
                    relative_offset,
                });
            }
        }
        self.next_offset = placed.last_offset + 1;
    }

    /// Writes the given slices (whole batches) at the end of the file. On failure the file is cut
    /// back to its previous size so the segment is exactly as before.
    pub fn append(
        &mut self,
        slices: &mut [IoSlice<'_>],
        placed: &[PlacedBatch],
        index_interval_bytes: u32,
        now_ms: i64,
    ) -> Result<(), LogError> {
        let start = self.size_bytes;
        if let Err(error) = self.file.write_all_vectored(slices) {
            if let Err(cut_error) = self.file.set_len(start) {
                tracing::error!(segment = %self.log_path.display(), %cut_error, "could not undo a failed append");
            }
            return Err(error.into());
        }
        let mut position = start;
        for batch in placed {
            self.record_batch(position, batch, index_interval_bytes, true);
            position += batch.size_bytes;
        }
        self.size_bytes = position;
        self.first_append_ms.get_or_insert(now_ms);
        Ok(())
    }

    /// Position of the batch containing `offset` (or the first batch after it), if any.
    pub fn find_position(&self, offset: i64) -> Result<Option<(u64, BatchHeader)>, LogError> {
        if offset >= self.next_offset {
            return Ok(None);
        }
        let relative = offset.saturating_sub(self.base_offset).max(0);
        let mut position = self
            .offset_index
            .floor(|e| i64::from(e.relative_offset) <= relative)
            .map_or(0, |e| u64::from(e.position));
        let mut reader = ChunkReader::with_chunk(&self.file, self.size_bytes, LOOKUP_CHUNK_BYTES);
        while position < self.size_bytes {
            let Some(header) = reader.header_at(position)? else {
                return Err(LogError::CorruptRecord(format!(
                    "unreadable batch header at position {position} of {}",
                    self.log_path.display()
                )));
            };
            if header.last_offset() >= offset {
                return Ok(Some((position, header)));
            }
            position += header.size_bytes as u64;
        }
        Ok(None)
    }

    /// A range of this segment's file to read later, bounded by the segment's current size.
    pub fn planned_read(&self, position: u64, length: usize, dir: &Path) -> SegmentRange {
        let available = self.size_bytes.saturating_sub(position);
        SegmentRange {
            file: Arc::clone(&self.file),
            position,
            length: length.min(usize::try_from(available).unwrap_or(usize::MAX)),
            dir: dir.to_path_buf(),
        }
    }

    /// The first record at or after `min_offset` whose timestamp is at least `timestamp_ms`,
    /// as (offset, timestamp). Exact for uncompressed batches; for compressed ones (whose records
    /// are not decompressed here) the batch's first offset and max timestamp.
    pub fn offset_for_timestamp(
        &self,
        timestamp_ms: i64,
        min_offset: i64,
    ) -> Result<Option<(i64, i64)>, LogError> {
        if self.max_timestamp_ms < timestamp_ms || min_offset >= self.next_offset {
            return Ok(None);
        }
        let indexed_start = self
            .time_index
            .floor(|e| e.timestamp_ms < timestamp_ms)
            .map_or(self.base_offset, |e| {
                self.base_offset + i64::from(e.relative_offset)
            });
        let Some((mut position, _)) = self.find_position(indexed_start.max(min_offset))? else {
            return Ok(None);
        };
        // Lookups touch a few batches past an index entry: a small window reads less.
        let mut reader = ChunkReader::with_chunk(&self.file, self.size_bytes, LOOKUP_CHUNK_BYTES);
        while position < self.size_bytes {
            let Some(header) = reader.header_at(position)? else {
                break;
            };
            if header.max_timestamp_ms >= timestamp_ms {
                let found = self.first_record_in_batch(
                    &mut reader,
                    position,
                    &header,
                    min_offset,
                    timestamp_ms,
                )?;
                if let Some(found) = found {
                    return Ok(Some(found));
                }
            }
            position += header.size_bytes as u64;
        }
        Ok(None)
    }

    /// The offset and timestamp of the first record at or after `min_offset` holding this
    /// segment's max timestamp.
    pub fn max_timestamp_record(&self, min_offset: i64) -> Result<Option<(i64, i64)>, LogError> {
        if self.max_timestamp_ms < 0 || self.size_bytes == 0 {
            return Ok(None);
        }
        self.offset_for_timestamp(self.max_timestamp_ms, min_offset)
    }

    /// The first record of a batch at or after `min_offset` with a timestamp of at least
    /// `timestamp_ms`. Records of compressed batches are not read: the batch stands for them
    /// with its first offset (at least `min_offset`) and max timestamp.
    fn first_record_in_batch(
        &self,
        reader: &mut ChunkReader<'_>,
        position: u64,
        header: &BatchHeader,
        min_offset: i64,
        timestamp_ms: i64,
    ) -> Result<Option<(i64, i64)>, LogError> {
        if header.is_log_append_time() || header.compression_codec() != 0 {
            let offset = header.base_offset.max(min_offset);
            let matches = offset <= header.last_offset() && header.max_timestamp_ms >= timestamp_ms;
            return Ok(matches.then_some((offset, header.max_timestamp_ms)));
        }
        let Some(bytes) = reader.bytes_at(position, header.size_bytes)? else {
            return Ok(None);
        };
        let records = batch::record_timestamps(bytes, header).unwrap_or_default();
        Ok(records
            .into_iter()
            .map(|(ts, delta)| (header.base_offset + delta, ts))
            .find(|(offset, ts)| *offset >= min_offset && *ts >= timestamp_ms))
    }

    /// Calls `visit` for every batch starting at or after `from_offset` that has a producer id,
    /// with the (marker type, coordinator epoch) of control batches.
    pub fn for_each_producer_batch(
        &self,
        from_offset: i64,
        visit: &mut ProducerBatchVisitor<'_>,
    ) -> Result<(), LogError> {
        let Some((mut position, _)) = self.find_position(from_offset)? else {
            return Ok(());
        };
        let mut reader = ChunkReader::new(&self.file, self.size_bytes);
        while position < self.size_bytes {
            let Some(header) = reader.header_at(position)? else {
                break;
            };
            if header.base_offset >= from_offset && header.producer_id >= 0 {
                let control = if header.is_control() {
                    reader
                        .bytes_at(position, header.size_bytes)?
                        .and_then(batch::parse_control_record)
                } else {
                    None
                };
                visit(&header, control);
            }
            position += header.size_bytes as u64;
        }
        Ok(())
    }

    /// The headers of the first and the last batch, if the segment holds one (a few small
    /// reads: the last is found through the offset index).
    pub fn first_and_last_headers(&self) -> Result<Option<(BatchHeader, BatchHeader)>, LogError> {
        let mut reader = ChunkReader::with_chunk(&self.file, self.size_bytes, HEADER_BYTES);
        let Some(first) = reader.header_at(0)? else {
            return Ok(None);
        };
        let last = match self.find_position(self.next_offset - 1)? {
            Some((_, last)) => last,
            None => first,
        };
        Ok(Some((first, last)))
    }

    /// Calls `visit` with the header of every batch from the one holding `from_offset` on
    /// (headers only: one chunked pass over the file).
    pub fn for_each_header(
        &self,
        from_offset: i64,
        visit: &mut dyn FnMut(&BatchHeader),
    ) -> Result<(), LogError> {
        let Some((mut position, _)) = self.find_position(from_offset)? else {
            return Ok(());
        };
        let mut reader = ChunkReader::new(&self.file, self.size_bytes);
        while position < self.size_bytes {
            let Some(header) = reader.header_at(position)? else {
                break;
            };
            visit(&header);
            position += header.size_bytes as u64;
        }
        Ok(())
    }

    /// Cuts the segment just before the batch containing `offset`.
    pub fn truncate_to(&mut self, offset: i64, index_interval_bytes: u32) -> Result<(), LogError> {
        if offset >= self.next_offset {
            return Ok(());
        }
        let position = self
            .find_position(offset)?
            .map_or(self.size_bytes, |(position, _)| position);
        self.file.set_len(position)?;
        self.size_bytes = position;
        // Re-derive everything from the remaining data.
        self.rebuild(index_interval_bytes)?;
        Ok(())
    }

    pub fn persist_indexes(&mut self, sync: bool) -> Result<(), LogError> {
        self.offset_index
            .persist(&self.fs, &self.index_path("index"), sync)?;
        self.time_index
            .persist(&self.fs, &self.index_path("timeindex"), sync)?;
        Ok(())
    }

    /// Records the final max timestamp in the time index, as Kafka does when a segment is sealed,
    /// so reopening knows it without scanning.
    pub fn seal_time_index(&mut self) {
        let relative = (self.offset_of_max_timestamp - self.base_offset) as u32;
        let missing = self
            .time_index
            .last()
            .is_none_or(|last| last.timestamp_ms < self.max_timestamp_ms);
        if self.max_timestamp_ms >= 0 && missing {
            self.time_index.push(TimeEntry {
                timestamp_ms: self.max_timestamp_ms,
                relative_offset: relative,
            });
        }
    }

    pub fn is_index_full(&self, segment_index_bytes: u32) -> bool {
        let limit = segment_index_bytes as usize;
        self.offset_index.len() * 8 + 8 > limit || self.time_index.len() * 12 + 12 > limit
    }

    pub fn file(&self) -> &Arc<File> {
        &self.file
    }

    pub fn sync(&self) -> Result<(), LogError> {
        self.file.sync_data()?;
        Ok(())
    }

    /// The base timestamp of the first batch (`max.compaction.lag.ms` measures dirty data's age
    /// from it), if the segment holds a batch.
    pub fn first_batch_timestamp_ms(&self) -> Result<Option<i64>, LogError> {
        let mut reader = ChunkReader::with_chunk(&self.file, self.size_bytes, HEADER_BYTES);
        Ok(reader.header_at(0)?.map(|h| h.base_timestamp_ms))
    }

    pub fn gaps_allowed(&self) -> bool {
        self.gaps_allowed
    }

    /// From now on batches may skip offsets here (a follower appended the leader's cleaned
    /// batches; the cleaner checkpoint's mark was raised past this segment first).
    pub fn allow_gaps(&mut self) {
        self.gaps_allowed = true;
    }

    /// Sets the file's modification time (a cleaned segment keeps its originals' time, which
    /// time retention falls back on when a segment holds no timestamp).
    pub fn set_modified_ms(&self, modified_ms: i64) -> Result<(), LogError> {
        self.file.set_modified_ms(modified_ms)?;
        Ok(())
    }

    pub fn index_bytes(&self) -> (u64, u64) {
        (
            self.offset_index.len() as u64 * 8,
            self.time_index.len() as u64 * 12,
        )
    }

    pub fn modified_ms(&self) -> Option<i64> {
        self.file.modified_ms()
    }

    /// Renames the segment's files to `<name>.deleted`, Kafka's mark for files that wait
    /// out `file.delete.delay.ms`; returns the new paths. `Log::open` removes leftovers.
    pub fn rename_for_deletion(&self) -> Result<Vec<PathBuf>, LogError> {
        let mut renamed = Vec::new();
        for path in [
            self.log_path.clone(),
            self.index_path("index"),
            self.index_path("timeindex"),
        ] {
            let mut target = path.clone().into_os_string();
            target.push(DELETED_SUFFIX);
            let target = PathBuf::from(target);
            match self.fs.rename(&path, &target) {
                Ok(()) => renamed.push(target),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(renamed)
    }

    pub fn delete_files(&self) -> Result<(), LogError> {
        self.fs.remove_file_if_exists(&self.log_path)?;
        self.fs.remove_file_if_exists(&self.index_path("index"))?;
        self.fs
            .remove_file_if_exists(&self.index_path("timeindex"))?;
        Ok(())
    }
}

/// Suffix of segment files waiting for `file.delete.delay.ms` (as in Kafka).
pub const DELETED_SUFFIX: &str = ".deleted";

/// Reads a file through a window so that walking many small batches costs few syscalls.
/// Every read is bounded by the file end and by `MAX_BATCH_BYTES`.
pub struct ChunkReader<'a> {
    file: &'a File,
    end: u64,
    chunk_bytes: usize,
    window_start: u64,
    window: Vec<u8>,
}

impl<'a> ChunkReader<'a> {
    pub fn new(file: &'a File, end: u64) -> Self {
        Self::with_chunk(file, end, SCAN_CHUNK_BYTES)
    }

    pub fn with_chunk(file: &'a File, end: u64, chunk_bytes: usize) -> Self {
        ChunkReader {
            file,
            end,
            chunk_bytes,
            window_start: 0,
            window: Vec::new(),
        }
    }

    /// The header at `position`, or `None` if the file ends inside it or the header is invalid.
    pub fn header_at(&mut self, position: u64) -> Result<Option<BatchHeader>, LogError> {
        let Some(bytes) = self.bytes_at(position, HEADER_BYTES)? else {
            return Ok(None);
        };
        let Ok(header) = BatchHeader::parse(bytes) else {
            return Ok(None);
        };
        let fits = position.saturating_add(header.size_bytes as u64) <= self.end;
        if !fits || header.size_bytes > MAX_BATCH_BYTES as usize {
            return Ok(None);
        }
        Ok(Some(header))
    }

    /// `length` bytes at `position`, or `None` if they run past the end of the file.
    pub fn bytes_at(&mut self, position: u64, length: usize) -> Result<Option<&[u8]>, LogError> {
        let wanted_end = position.saturating_add(length as u64);
        if wanted_end > self.end {
            return Ok(None);
        }
        let window_end = self.window_start + self.window.len() as u64;
        if position < self.window_start || wanted_end > window_end {
            let read_length =
                (self.end - position).min(length.max(self.chunk_bytes) as u64) as usize;
            self.window.resize(read_length, 0);
            self.file.read_exact_at(&mut self.window, position)?;
            self.window_start = position;
        }
        let from = (position - self.window_start) as usize;
        Ok(self.window.get(from..from + length))
    }
}
