//! Sparse per-segment indexes, kept in memory and mirrored to files in Kafka's layout:
//! `.index` holds (relative offset u32, file position u32) and `.timeindex` holds
//! (max timestamp i64, relative offset u32), all big-endian.
//!
//! Index files are an optimisation, never a source of truth: a missing, torn or inconsistent
//! file is rebuilt from the segment's batches.

use std::io::{self, Read, Write};
use std::path::Path;

use quill_fs::{Fs, OpenOptions};

/// Index files larger than this are treated as corrupt and rebuilt rather than read.
pub const MAX_INDEX_FILE_BYTES: u64 = 256 * 1024 * 1024;

pub trait IndexEntry: Copy + std::fmt::Debug + PartialEq {
    const SIZE_BYTES: usize;
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(bytes: &[u8]) -> Self;
    /// Whether `next` may follow `self` in a valid index.
    fn may_precede(&self, next: &Self) -> bool;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeEntry {
    pub timestamp_ms: i64,
    pub relative_offset: u32,
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    let mut out = [0u8; 4];
    if let Some(slice) = bytes.get(at..at + 4) {
        out.copy_from_slice(slice);
    }
    u32::from_be_bytes(out)
}

impl IndexEntry for OffsetEntry {
    const SIZE_BYTES: usize = 8;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
        out.extend_from_slice(&self.position.to_be_bytes());
    }
    fn decode(bytes: &[u8]) -> Self {
        OffsetEntry {
            relative_offset: be_u32(bytes, 0),
            position: be_u32(bytes, 4),
        }
    }
    fn may_precede(&self, next: &Self) -> bool {
        self.relative_offset < next.relative_offset && self.position < next.position
    }
}

impl IndexEntry for TimeEntry {
    const SIZE_BYTES: usize = 12;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
    }
    fn decode(bytes: &[u8]) -> Self {
        let mut ts = [0u8; 8];
        if let Some(slice) = bytes.get(..8) {
            ts.copy_from_slice(slice);
        }
        TimeEntry {
            timestamp_ms: i64::from_be_bytes(ts),
            relative_offset: be_u32(bytes, 8),
        }
    }
    fn may_precede(&self, next: &Self) -> bool {
        self.timestamp_ms < next.timestamp_ms && self.relative_offset <= next.relative_offset
    }
}

/// Entries in memory, plus how many of them are already in the file.
#[derive(Debug)]
pub struct Index<E: IndexEntry> {
    entries: Vec<E>,
    persisted: usize,
    /// The file holds entries memory no longer has (or was never written by us): rewrite it.
    needs_rewrite: bool,
}

impl<E: IndexEntry> Default for Index<E> {
    fn default() -> Self {
        Index {
            entries: Vec::new(),
            persisted: 0,
            needs_rewrite: true,
        }
    }
}

impl<E: IndexEntry> Index<E> {
    /// Reads an index file; `None` when it is missing or fails the consistency checks
    /// (`accept` sees each entry and rejects ones that point outside the segment).
    pub fn load(fs: &Fs, path: &Path, accept: impl Fn(&E) -> bool) -> io::Result<Option<Self>> {
        let mut file = match fs.open(path, OpenOptions::READ) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error),
        };
        let length = file.size_bytes()?;
        if length > MAX_INDEX_FILE_BYTES || length % E::SIZE_BYTES as u64 != 0 {
            return Ok(None);
        }
        let mut bytes = Vec::with_capacity(length as usize);
        file.read_to_end(&mut bytes)?;
        if bytes.len() as u64 != length {
            return Ok(None);
        }
        let entries: Vec<E> = bytes.chunks_exact(E::SIZE_BYTES).map(E::decode).collect();
        let ordered = entries.windows(2).all(|pair| pair[0].may_precede(&pair[1]));
        if !ordered || !entries.iter().all(accept) {
            return Ok(None);
        }
        let persisted = entries.len();
        Ok(Some(Index {
            entries,
            persisted,
            needs_rewrite: false,
        }))
    }

    #[cfg(test)]
    pub fn entries(&self) -> &[E] {
        &self.entries
    }

    pub fn last(&self) -> Option<&E> {
        self.entries.last()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn push(&mut self, entry: E) {
        self.entries.push(entry);
    }

    /// The last entry for which `is_at_or_before` holds (entries are sorted by that key).
    pub fn floor(&self, is_at_or_before: impl Fn(&E) -> bool) -> Option<&E> {
        let count = self.entries.partition_point(is_at_or_before);
        count.checked_sub(1).and_then(|i| self.entries.get(i))
    }

    /// Drops entries matching `drop` from the tail (after a truncation).
    pub fn truncate_while(&mut self, drop: impl Fn(&E) -> bool) {
        while self.entries.last().is_some_and(&drop) {
            self.entries.pop();
        }
        if self.persisted > self.entries.len() {
            self.needs_rewrite = true;
        }
    }

    /// Makes the next [`Index::persist`] rewrite the whole file (after a failed write left
    /// it in an unknown state).
    pub fn rewrite_at_next_persist(&mut self) {
        self.needs_rewrite = true;
    }

    /// Brings the file up to date with memory: appends new entries, or rewrites the file if it
    /// holds entries that were dropped.
    pub fn persist(&mut self, fs: &Fs, path: &Path, sync: bool) -> io::Result<()> {
        let rewrite = self.needs_rewrite;
        if !rewrite && self.persisted == self.entries.len() && !sync {
            return Ok(());
        }
        let start = if rewrite { 0 } else { self.persisted };
        let mut bytes = Vec::with_capacity((self.entries.len() - start) * E::SIZE_BYTES);
        for entry in &self.entries[start..] {
            entry.encode(&mut bytes);
        }
        let mut file = fs.open(
            path,
            OpenOptions {
                create: true,
                write: true,
                append: !rewrite,
                truncate: rewrite,
                read: false,
            },
        )?;
        file.write_all(&bytes)?;
        if sync {
            file.sync_data()?;
        }
        self.persisted = self.entries.len();
        self.needs_rewrite = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offset_entry(relative_offset: u32, position: u32) -> OffsetEntry {
        OffsetEntry {
            relative_offset,
            position,
        }
    }

    #[test]
    fn persist_and_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut index = Index::default();
        index.push(offset_entry(0, 0));
        index.push(offset_entry(5, 4096));
        index.persist(&Fs::default(), &path, false).unwrap();
        index.push(offset_entry(9, 8200));
        index.persist(&Fs::default(), &path, true).unwrap();
        let loaded = Index::<OffsetEntry>::load(&Fs::default(), &path, |_| true)
            .unwrap()
            .unwrap();
        assert_eq!(loaded.entries(), index.entries());
        assert_eq!(
            loaded.floor(|e| e.relative_offset <= 6),
            Some(&offset_entry(5, 4096))
        );
        assert_eq!(
            loaded.floor(|e| e.relative_offset < 5).map(|e| e.position),
            Some(0)
        );
    }

    #[test]
    fn torn_or_unordered_files_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        std::fs::write(&path, [0u8; 11]).unwrap();
        assert!(Index::<OffsetEntry>::load(&Fs::default(), &path, |_| true)
            .unwrap()
            .is_none());
        // Two zeroed entries (what a crash can leave after a file was extended) are unordered.
        std::fs::write(&path, [0u8; 16]).unwrap();
        assert!(Index::<OffsetEntry>::load(&Fs::default(), &path, |_| true)
            .unwrap()
            .is_none());
        assert!(
            Index::<OffsetEntry>::load(&Fs::default(), &dir.path().join("missing"), |_| true)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn truncation_rewrites_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.timeindex");
        let mut index = Index::default();
        for i in 0..4u32 {
            index.push(TimeEntry {
                timestamp_ms: i64::from(i) * 10,
                relative_offset: i,
            });
        }
        index.persist(&Fs::default(), &path, false).unwrap();
        index.truncate_while(|e| e.relative_offset >= 2);
        index.persist(&Fs::default(), &path, false).unwrap();
        let loaded = Index::<TimeEntry>::load(&Fs::default(), &path, |_| true)
            .unwrap()
            .unwrap();
        assert_eq!(loaded.len(), 2);
    }
}
