//! Producer-state snapshots: `{offset:020}.snapshot` holds the producer state as of `offset`
//! (a batch boundary), so opening a log replays only the batches after the newest snapshot.
//! Written atomically at every roll and at close; a damaged snapshot reads as absent and the
//! state is rebuilt from an older one (or from the start of the log).

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};

use quill_fs::Fs;

use crate::producer::{AbortedEntry, BatchMetadata, ProducerEntry, ProducerState};

const MAGIC: &[u8; 4] = b"QLPS";
const FORMAT_VERSION: u16 = 1;
/// Snapshots larger than this are treated as damaged rather than read.
pub const MAX_PRODUCER_SNAPSHOT_BYTES: u64 = 256 * 1024 * 1024;
/// Older snapshots beyond this many are deleted.
const SNAPSHOTS_KEPT: usize = 2;

pub fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!("{offset:020}.snapshot"))
}

/// Offsets of the snapshot files in `dir`, ascending.
pub fn list_snapshots(fs: &Fs, dir: &Path) -> io::Result<Vec<i64>> {
    let mut offsets = Vec::new();
    for path in fs.list_dir(dir)? {
        if path.extension().is_some_and(|e| e == "snapshot") {
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            if let Ok(offset) = stem.parse::<i64>() {
                offsets.push(offset);
            }
        }
    }
    offsets.sort_unstable();
    Ok(offsets)
}

pub fn write_snapshot(fs: &Fs, dir: &Path, offset: i64, state: &ProducerState) -> io::Result<()> {
    let bytes = encode(offset, state);
    let name = format!("{offset:020}.snapshot");
    fs.write_atomically(dir, &name, &bytes)?;
    let offsets = list_snapshots(fs, dir)?;
    let excess = offsets.len().saturating_sub(SNAPSHOTS_KEPT);
    for old in &offsets[..excess] {
        fs.remove_file_if_exists(&snapshot_path(dir, *old))?;
    }
    Ok(())
}

/// Deletes snapshots taken above `offset` (after a truncation they describe data that is gone).
pub fn delete_snapshots_above(fs: &Fs, dir: &Path, offset: i64) -> io::Result<()> {
    for snapshot in list_snapshots(fs, dir)? {
        if snapshot > offset {
            fs.remove_file_if_exists(&snapshot_path(dir, snapshot))?;
        }
    }
    Ok(())
}

/// The newest readable snapshot at or below `max_offset`, with its offset.
pub fn load_latest(
    fs: &Fs,
    dir: &Path,
    max_offset: i64,
) -> io::Result<Option<(i64, ProducerState)>> {
    for offset in list_snapshots(fs, dir)?.into_iter().rev() {
        if offset > max_offset {
            continue;
        }
        let path = snapshot_path(dir, offset);
        if fs.file_len(&path)? > MAX_PRODUCER_SNAPSHOT_BYTES {
            continue;
        }
        match decode(&fs.read(&path)?) {
            Some((stored_offset, state)) if stored_offset == offset => {
                return Ok(Some((offset, state)))
            }
            _ => tracing::warn!(path = %path.display(), "ignoring damaged producer snapshot"),
        }
    }
    Ok(None)
}

fn encode(offset: i64, state: &ProducerState) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    out.extend_from_slice(&offset.to_be_bytes());
    let mut producers: Vec<_> = state.producers.iter().collect();
    producers.sort_by_key(|(id, _)| **id);
    out.extend_from_slice(&(producers.len() as u32).to_be_bytes());
    for (producer_id, entry) in producers {
        out.extend_from_slice(&producer_id.to_be_bytes());
        out.extend_from_slice(&entry.epoch.to_be_bytes());
        out.extend_from_slice(&entry.coordinator_epoch.to_be_bytes());
        out.extend_from_slice(&entry.last_timestamp_ms.to_be_bytes());
        out.extend_from_slice(&entry.transaction_first_offset.unwrap_or(-1).to_be_bytes());
        out.push(entry.batches.len() as u8);
        for batch in &entry.batches {
            out.extend_from_slice(&batch.first_sequence.to_be_bytes());
            out.extend_from_slice(&batch.last_sequence.to_be_bytes());
            out.extend_from_slice(&batch.first_offset.to_be_bytes());
            out.extend_from_slice(&batch.last_offset.to_be_bytes());
        }
    }
    out.extend_from_slice(&(state.aborted.len() as u32).to_be_bytes());
    for aborted in &state.aborted {
        out.extend_from_slice(&aborted.producer_id.to_be_bytes());
        out.extend_from_slice(&aborted.first_offset.to_be_bytes());
        out.extend_from_slice(&aborted.last_offset.to_be_bytes());
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// Reads fields front to back; every read is bounds-checked.
struct Cursor<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl Cursor<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let slice = self
            .bytes
            .get(self.position..self.position.checked_add(N)?)?;
        self.position += N;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Some(out)
    }
    fn i16(&mut self) -> Option<i16> {
        self.take().map(i16::from_be_bytes)
    }
    fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_be_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_be_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_be_bytes)
    }
    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.position)
    }
}

fn decode(bytes: &[u8]) -> Option<(i64, ProducerState)> {
    let body_length = bytes.len().checked_sub(4)?;
    let (body, crc) = bytes.split_at(body_length);
    if u32::from_be_bytes(crc.try_into().ok()?) != crc32c::crc32c(body) {
        return None;
    }
    let mut cursor = Cursor {
        bytes: body,
        position: 0,
    };
    if &cursor.take::<4>()? != MAGIC || cursor.take::<2>()? != FORMAT_VERSION.to_be_bytes() {
        return None;
    }
    let offset = cursor.i64()?;
    let mut state = ProducerState::default();
    let producer_count = cursor.u32()? as usize;
    // Each producer takes at least 31 bytes: a count beyond that is damage, not a reason to
    // allocate.
    if producer_count > cursor.remaining() / 31 {
        return None;
    }
    for _ in 0..producer_count {
        let (producer_id, entry) = decode_producer(&mut cursor)?;
        if let Some(first_offset) = entry.transaction_first_offset {
            state.open_transactions.insert(first_offset, producer_id);
        }
        state.producers.insert(producer_id, entry);
    }
    let aborted_count = cursor.u32()? as usize;
    if aborted_count > cursor.remaining() / 24 {
        return None;
    }
    for _ in 0..aborted_count {
        state.aborted.push(AbortedEntry {
            producer_id: cursor.i64()?,
            first_offset: cursor.i64()?,
            last_offset: cursor.i64()?,
        });
    }
    (cursor.remaining() == 0).then_some((offset, state))
}

fn decode_producer(cursor: &mut Cursor<'_>) -> Option<(i64, ProducerEntry)> {
    let producer_id = cursor.i64()?;
    let epoch = cursor.i16()?;
    let coordinator_epoch = cursor.i32()?;
    let last_timestamp_ms = cursor.i64()?;
    let transaction_first_offset = Some(cursor.i64()?).filter(|o| *o >= 0);
    let batch_count = usize::from(cursor.take::<1>()?[0]);
    let mut batches = VecDeque::with_capacity(batch_count.min(8));
    for _ in 0..batch_count {
        batches.push_back(BatchMetadata {
            first_sequence: cursor.i32()?,
            last_sequence: cursor.i32()?,
            first_offset: cursor.i64()?,
            last_offset: cursor.i64()?,
        });
    }
    Some((
        producer_id,
        ProducerEntry {
            epoch,
            coordinator_epoch,
            last_timestamp_ms,
            batches,
            transaction_first_offset,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{testing::build_simple_batch, BatchHeader, TRANSACTIONAL_FLAG};
    use crate::producer::ControlMarker;
    use std::fs;

    fn sample_state() -> ProducerState {
        let mut state = ProducerState::default();
        let mut header = BatchHeader::parse(&build_simple_batch(0, 2, 1)).unwrap();
        header.producer_id = 11;
        header.producer_epoch = 2;
        header.base_sequence = 0;
        state.apply_data_batch(&header, 0, 1, 500);
        header.producer_id = 12;
        header.attributes |= TRANSACTIONAL_FLAG;
        state.apply_data_batch(&header, 2, 3, 600);
        header.producer_id = 13;
        state.apply_data_batch(&header, 4, 5, 700);
        state.apply_marker(13, 2, ControlMarker::Abort, 4, 6, 800);
        state
    }

    #[test]
    fn snapshots_round_trip_and_keep_the_newest_two() {
        let dir = tempfile::tempdir().unwrap();
        let state = sample_state();
        for offset in [7, 20, 30] {
            write_snapshot(&Fs::default(), dir.path(), offset, &state).unwrap();
        }
        assert_eq!(
            list_snapshots(&Fs::default(), dir.path()).unwrap(),
            vec![20, 30]
        );
        let (offset, loaded) = load_latest(&Fs::default(), dir.path(), i64::MAX)
            .unwrap()
            .unwrap();
        assert_eq!(offset, 30);
        assert_eq!(loaded, state);
        assert_eq!(
            load_latest(&Fs::default(), dir.path(), 25)
                .unwrap()
                .unwrap()
                .0,
            20
        );
        assert!(load_latest(&Fs::default(), dir.path(), 10)
            .unwrap()
            .is_none());
        delete_snapshots_above(&Fs::default(), dir.path(), 20).unwrap();
        assert_eq!(
            list_snapshots(&Fs::default(), dir.path()).unwrap(),
            vec![20]
        );
    }

    #[test]
    fn damaged_snapshots_are_skipped_never_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let state = sample_state();
        write_snapshot(&Fs::default(), dir.path(), 5, &state).unwrap();
        write_snapshot(&Fs::default(), dir.path(), 9, &state).unwrap();
        let newest = snapshot_path(dir.path(), 9);
        let bytes = fs::read(&newest).unwrap();
        for cut in [0, 3, bytes.len() / 2, bytes.len() - 1] {
            fs::write(&newest, &bytes[..cut]).unwrap();
            assert_eq!(
                load_latest(&Fs::default(), dir.path(), 100)
                    .unwrap()
                    .unwrap()
                    .0,
                5,
                "cut at {cut}"
            );
        }
        let mut flipped = bytes.clone();
        flipped[20] ^= 0x40;
        fs::write(&newest, &flipped).unwrap();
        assert_eq!(
            load_latest(&Fs::default(), dir.path(), 100)
                .unwrap()
                .unwrap()
                .0,
            5
        );
        // A huge count with a valid CRC is refused without allocating.
        let mut huge = bytes[..14].to_vec();
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        let crc = crc32c::crc32c(&huge);
        huge.extend_from_slice(&crc.to_be_bytes());
        assert!(decode(&huge).is_none());
    }
}
