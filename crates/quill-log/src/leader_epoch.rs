//! The leader-epoch cache (KIP-101/KIP-279): for each partition leader epoch found in the log,
//! the offset of its first batch. It answers OffsetsForLeaderEpoch (where an epoch ends), which
//! is how a follower finds the point where its log diverges from a new leader's.
//!
//! The rules are Kafka's `LeaderEpochFileCache`: epochs and start offsets both strictly
//! increase; assigning an epoch removes the entries that would break that (a higher or equal
//! epoch, a start at or after the new one); truncating the log removes the entries that start at
//! or after the new end; moving the log start drops the entries wholly below it and moves the
//! first one's start up. The file is Kafka's `leader-epoch-checkpoint`: a version line (0), an
//! entry count, then `epoch startOffset` lines.

use std::io;
use std::path::Path;

use quill_fs::Fs;

pub const LEADER_EPOCH_FILE: &str = "leader-epoch-checkpoint";
const FILE_VERSION: &str = "0";
/// A file larger than this is not a leader-epoch checkpoint we wrote (an entry line is at most
/// 31 bytes, and a log holds far fewer epochs): it is ignored and the cache rebuilt.
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// OffsetsForLeaderEpoch's UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET.
pub const UNDEFINED_EPOCH: i32 = -1;
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;

/// One epoch and the offset of its first batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LeaderEpochCache {
    /// Epochs and start offsets both strictly increasing.
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|entry| entry.epoch)
    }

    /// Whether [`LeaderEpochCache::assign`] would change anything.
    pub fn needs_update(&self, epoch: i32, start_offset: i64) -> bool {
        epoch >= 0
            && start_offset >= 0
            && self
                .entries
                .last()
                .is_none_or(|latest| latest.epoch != epoch || start_offset < latest.start_offset)
    }

    /// Records that `epoch` starts at `start_offset` (Kafka's `assign`); returns whether the
    /// cache changed. A negative epoch (a batch from a producer that set none) changes nothing;
    /// the same epoch again at a later offset neither.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if !self.needs_update(epoch, start_offset) {
            return false;
        }
        // Entries that would break monotonicity go (Kafka's maybeTruncateNonMonotonicEntries).
        while self
            .entries
            .last()
            .is_some_and(|last| last.epoch >= epoch || last.start_offset >= start_offset)
        {
            self.entries.pop();
        }
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        true
    }

    /// The log was truncated to `end_offset`: entries starting at or after it go.
    pub fn truncate_from_end(&mut self, end_offset: i64) -> bool {
        let before = self.entries.len();
        while self
            .entries
            .last()
            .is_some_and(|last| last.start_offset >= end_offset)
        {
            self.entries.pop();
        }
        self.entries.len() != before
    }

    /// The log start moved to `start_offset`: entries starting at or below it go, and the last
    /// of them comes back starting at `start_offset` (Kafka's truncateFromStart).
    pub fn truncate_from_start(&mut self, start_offset: i64) -> bool {
        let below = self
            .entries
            .partition_point(|entry| entry.start_offset <= start_offset);
        let Some(last_below) = below.checked_sub(1).map(|i| self.entries[i]) else {
            return false;
        };
        let moved = EpochEntry {
            epoch: last_below.epoch,
            start_offset,
        };
        if below == 1 && self.entries[0] == moved {
            return false;
        }
        self.entries.splice(..below, [moved]);
        true
    }

    /// Kafka's `endOffsetFor`: the largest epoch at or below `requested` and where it ends (the
    /// next higher epoch's start, or `log_end_offset` for the latest epoch). A request below
    /// the first epoch gets (`requested`, the first start offset); UNDEFINED_EPOCH, an epoch
    /// above the latest or an empty cache get (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET).
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> (i32, i64) {
        const UNDEFINED: (i32, i64) = (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        if requested == UNDEFINED_EPOCH {
            return UNDEFINED;
        }
        if self.latest_epoch() == Some(requested) {
            return (requested, log_end_offset);
        }
        let higher = self
            .entries
            .partition_point(|entry| entry.epoch <= requested);
        let Some(next) = self.entries.get(higher) else {
            return UNDEFINED;
        };
        match higher.checked_sub(1).map(|i| self.entries[i]) {
            Some(floor) => (floor.epoch, next.start_offset),
            None => (requested, next.start_offset),
        }
    }

    /// Kafka's file format.
    pub fn encode(&self) -> Vec<u8> {
        let mut text = format!("{FILE_VERSION}\n{}\n", self.entries.len());
        for entry in &self.entries {
            text.push_str(&format!("{} {}\n", entry.epoch, entry.start_offset));
        }
        text.into_bytes()
    }

    /// Parses Kafka's file format; `None` for anything else (wrong version, count, a line that
    /// is not two numbers, entries that do not increase).
    pub fn decode(bytes: &[u8]) -> Option<LeaderEpochCache> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut lines = text.lines();
        if lines.next()?.trim() != FILE_VERSION {
            return None;
        }
        let count: usize = lines.next()?.trim().parse().ok()?;
        let mut cache = LeaderEpochCache::default();
        for line in lines.by_ref().take(count) {
            let mut fields = line.split_whitespace();
            let epoch: i32 = fields.next()?.parse().ok()?;
            let start_offset: i64 = fields.next()?.parse().ok()?;
            if fields.next().is_some() || epoch < 0 || start_offset < 0 {
                return None;
            }
            let increases = cache
                .entries
                .last()
                .is_none_or(|last| epoch > last.epoch && start_offset > last.start_offset);
            if !increases {
                return None;
            }
            cache.entries.push(EpochEntry {
                epoch,
                start_offset,
            });
        }
        if cache.entries.len() != count || lines.any(|line| !line.trim().is_empty()) {
            return None;
        }
        Some(cache)
    }
}

/// Writes the cache as `leader-epoch-checkpoint` (temp file, fsync, rename, directory fsync).
pub(crate) fn write(fs: &Fs, dir: &Path, cache: &LeaderEpochCache) -> io::Result<()> {
    fs.write_atomically(dir, LEADER_EPOCH_FILE, &cache.encode())
}

/// The cache in `dir`'s `leader-epoch-checkpoint`, or `None` when the file is missing or is not
/// a readable leader-epoch checkpoint (the caller rebuilds it from the batches).
pub(crate) fn read(fs: &Fs, dir: &Path) -> io::Result<Option<LeaderEpochCache>> {
    let path = dir.join(LEADER_EPOCH_FILE);
    match fs.file_len(&path) {
        Ok(len) if len > MAX_FILE_BYTES => {
            tracing::warn!(path = %path.display(), len, "ignoring an oversized leader-epoch checkpoint");
            return Ok(None);
        }
        Ok(_) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    }
    let bytes = match fs.read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let cache = LeaderEpochCache::decode(&bytes);
    if cache.is_none() {
        tracing::warn!(path = %path.display(), "ignoring an unreadable leader-epoch checkpoint");
    }
    Ok(cache)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> LeaderEpochCache {
        let mut cache = LeaderEpochCache::default();
        for &(epoch, start_offset) in entries {
            assert!(cache.assign(epoch, start_offset));
        }
        cache
    }

    fn pairs(cache: &LeaderEpochCache) -> Vec<(i32, i64)> {
        cache
            .entries()
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect()
    }

    #[test]
    fn assign_keeps_epochs_and_offsets_increasing() {
        let mut cache = LeaderEpochCache::default();
        assert!(!cache.assign(-1, 0), "no epoch, no entry");
        assert!(cache.assign(0, 0));
        assert!(!cache.assign(0, 5), "the same epoch later changes nothing");
        assert!(cache.assign(2, 10));
        assert!(cache.assign(4, 20));
        assert_eq!(pairs(&cache), [(0, 0), (2, 10), (4, 20)]);
        // The same epoch earlier moves its start back.
        assert!(cache.assign(4, 15));
        assert_eq!(pairs(&cache), [(0, 0), (2, 10), (4, 15)]);
        // A new epoch at the same offset replaces one that holds no data.
        assert!(cache.assign(5, 15));
        assert_eq!(pairs(&cache), [(0, 0), (2, 10), (5, 15)]);
        // A lower epoch removes every entry at or above it (non-monotonic input).
        assert!(cache.assign(3, 30));
        assert_eq!(pairs(&cache), [(0, 0), (2, 10), (3, 30)]);
        // A start below existing ones removes them too.
        assert!(cache.assign(7, 5));
        assert_eq!(pairs(&cache), [(0, 0), (7, 5)]);
    }

    #[test]
    fn end_offset_for_answers_as_kafka() {
        let cache = cache(&[(2, 10), (4, 20), (7, 35)]);
        let end = 50;
        assert_eq!(cache.end_offset_for(UNDEFINED_EPOCH, end), (-1, -1));
        // The latest epoch ends at the log end.
        assert_eq!(cache.end_offset_for(7, end), (7, 50));
        // Known epochs end where the next one starts.
        assert_eq!(cache.end_offset_for(2, end), (2, 20));
        assert_eq!(cache.end_offset_for(4, end), (4, 35));
        // An unknown epoch between two: the largest below it, ending where the next starts.
        assert_eq!(cache.end_offset_for(3, end), (2, 20));
        assert_eq!(cache.end_offset_for(6, end), (4, 35));
        // Below the first: the requested epoch, ending at the first start.
        assert_eq!(cache.end_offset_for(1, end), (1, 10));
        assert_eq!(cache.end_offset_for(0, end), (0, 10));
        // Above the latest: undefined.
        assert_eq!(cache.end_offset_for(8, end), (-1, -1));
        assert_eq!(LeaderEpochCache::default().end_offset_for(0, end), (-1, -1));
    }

    #[test]
    fn truncation_from_the_end_and_from_the_start() {
        let mut cache = cache(&[(2, 10), (4, 20), (7, 35)]);
        assert!(!cache.truncate_from_end(36));
        assert!(cache.truncate_from_end(35));
        assert_eq!(pairs(&cache), [(2, 10), (4, 20)]);
        assert!(cache.truncate_from_end(15));
        assert_eq!(pairs(&cache), [(2, 10)]);
        let mut cache = self::cache(&[(2, 10), (4, 20), (7, 35)]);
        assert!(!cache.truncate_from_start(5), "nothing below");
        assert!(!cache.truncate_from_start(10), "already starts there");
        assert!(cache.truncate_from_start(25));
        assert_eq!(pairs(&cache), [(4, 25), (7, 35)]);
        // Exclusive: an entry starting exactly at the new start stays as it is.
        assert!(cache.truncate_from_start(35));
        assert_eq!(pairs(&cache), [(7, 35)]);
        assert!(cache.truncate_from_start(40));
        assert_eq!(pairs(&cache), [(7, 40)]);
    }

    #[test]
    fn the_file_is_kafkas_format_and_damage_reads_as_absent() {
        let cache = cache(&[(0, 0), (3, 120)]);
        let bytes = cache.encode();
        assert_eq!(bytes, b"0\n2\n0 0\n3 120\n");
        assert_eq!(LeaderEpochCache::decode(&bytes), Some(cache));
        assert_eq!(
            LeaderEpochCache::decode(b"0\n0\n"),
            Some(LeaderEpochCache::default())
        );
        for bad in [
            &b"1\n1\n0 0\n"[..],
            b"0\n2\n0 0\n",
            b"0\n1\n0 0\n1 5\n",
            b"0\n1\n0\n",
            b"0\n1\n0 0 0\n",
            b"0\n2\n3 0\n2 5\n",
            b"0\n2\n1 5\n2 5\n",
            b"0\n1\n-1 0\n",
            b"0\n1\nx 0\n",
            b"",
            b"\xff\xfe",
        ] {
            assert_eq!(LeaderEpochCache::decode(bad), None, "{bad:?}");
        }
    }
}
