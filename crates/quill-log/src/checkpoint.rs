//! Small per-partition state files, written atomically (temp file, fsync, rename, fsync dir)
//! and protected by a CRC so a torn or foreign file reads as absent, never as wrong numbers.
//!
//! - `quill-log.checkpoint`: log start offset, recovery point (everything below it was
//!   fsynced when the file was written) and, since format version 2, the high watermark the
//!   broker recorded (Kafka's replication-offset-checkpoint, kept per log; -1 when unknown).
//!   Version 1 files (no high watermark) still read.
//! - `.clean-shutdown`: written last by a clean close, removed on open. It names the active
//!   segment and its size so a stale marker cannot vouch for data written after it.
//! - `cleaner.checkpoint`: the log cleaner's position (first dirty offset) and the mark below
//!   which segments may have been cleaned (and so may skip offsets).

use std::io;
use std::path::Path;

use quill_fs::Fs;

pub const CHECKPOINT_FILE: &str = "quill-log.checkpoint";
pub const CLEAN_SHUTDOWN_FILE: &str = ".clean-shutdown";
const CHECKPOINT_MAGIC: &[u8; 4] = b"QLCP";
const CLEAN_MAGIC: &[u8; 4] = b"QLCS";
pub const CLEANER_CHECKPOINT_FILE: &str = "cleaner.checkpoint";
const CLEANER_MAGIC: &[u8; 4] = b"QLCC";
const FORMAT_VERSION: u16 = 1;
/// `quill-log.checkpoint` with the high watermark.
const CHECKPOINT_VERSION: u16 = 2;
/// No high watermark recorded.
pub const UNKNOWN_HIGH_WATERMARK: i64 = -1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub log_start_offset: i64,
    pub recovery_point: i64,
    /// [`UNKNOWN_HIGH_WATERMARK`] when none was recorded (or the file predates it).
    pub high_watermark: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CleanShutdown {
    pub log_end_offset: i64,
    pub active_base_offset: i64,
    pub active_size_bytes: u64,
}

pub fn write_checkpoint(fs: &Fs, dir: &Path, checkpoint: Checkpoint) -> io::Result<()> {
    let mut body = Vec::with_capacity(24);
    body.extend_from_slice(&checkpoint.log_start_offset.to_be_bytes());
    body.extend_from_slice(&checkpoint.recovery_point.to_be_bytes());
    body.extend_from_slice(&checkpoint.high_watermark.to_be_bytes());
    let bytes = frame_version(CHECKPOINT_MAGIC, CHECKPOINT_VERSION, &body);
    fs.write_atomically(dir, CHECKPOINT_FILE, &bytes)
}

/// The one writer of a log's `quill-log.checkpoint`. Checkpoints are stamped in order under
/// the log's lock but may be written after it is released (maintenance fsyncs without holding
/// it), so a write never replaces a newer checkpoint with an older one: each carries its stamp,
/// and one stamped before the last written is skipped (the newer one already says more).
#[derive(Debug)]
pub struct CheckpointWriter {
    fs: Fs,
    dir: std::path::PathBuf,
    /// The last stamp handed out (taken under the log's lock, so stamps follow the log's state).
    last_stamp: std::sync::atomic::AtomicU64,
    /// The stamp of the checkpoint on disk; held while writing, so writes never interleave.
    written_stamp: std::sync::Mutex<u64>,
}

impl CheckpointWriter {
    pub fn new(fs: Fs, dir: &Path) -> CheckpointWriter {
        CheckpointWriter {
            fs,
            dir: dir.to_path_buf(),
            last_stamp: std::sync::atomic::AtomicU64::new(0),
            written_stamp: std::sync::Mutex::new(0),
        }
    }

    /// Orders a checkpoint taken now (under the log's lock) after every one taken before.
    pub fn stamp(&self) -> u64 {
        self.last_stamp
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel)
            .saturating_add(1)
    }

    /// Writes `checkpoint` (temp file, fsync, rename, directory fsync) unless a checkpoint
    /// stamped later is already written. Returns whether it wrote.
    pub fn write(&self, stamp: u64, checkpoint: Checkpoint) -> io::Result<bool> {
        let mut written = self
            .written_stamp
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *written > stamp {
            return Ok(false);
        }
        write_checkpoint(&self.fs, &self.dir, checkpoint)?;
        *written = stamp;
        Ok(true)
    }
}

pub fn read_checkpoint(fs: &Fs, dir: &Path) -> io::Result<Option<Checkpoint>> {
    let path = dir.join(CHECKPOINT_FILE);
    let versions = [(FORMAT_VERSION, 16), (CHECKPOINT_VERSION, 24)];
    let Some(body) = read_framed_versions(fs, &path, CHECKPOINT_MAGIC, &versions)? else {
        return Ok(None);
    };
    let high_watermark = if body.len() >= 24 {
        be_i64(&body, 16)
    } else {
        UNKNOWN_HIGH_WATERMARK
    };
    Ok(Some(Checkpoint {
        log_start_offset: be_i64(&body, 0),
        recovery_point: be_i64(&body, 8),
        high_watermark,
    }))
}

/// The cleaner's persistent state for one partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CleanerCheckpoint {
    /// Kafka's cleaner checkpoint: everything below was cleaned by the last finished round.
    pub first_dirty_offset: i64,
    /// Segments whose base offset is below this may have been rewritten by the cleaner, so
    /// their batches may skip offsets. Raised (and made durable) before a cleaned segment is
    /// swapped in; never lowered.
    pub cleaned_below: i64,
}

pub fn write_cleaner_checkpoint(fs: &Fs, dir: &Path, state: CleanerCheckpoint) -> io::Result<()> {
    let mut body = Vec::with_capacity(16);
    body.extend_from_slice(&state.first_dirty_offset.to_be_bytes());
    body.extend_from_slice(&state.cleaned_below.to_be_bytes());
    fs.write_atomically(dir, CLEANER_CHECKPOINT_FILE, &frame(CLEANER_MAGIC, &body))
}

pub fn read_cleaner_checkpoint(fs: &Fs, dir: &Path) -> io::Result<Option<CleanerCheckpoint>> {
    let path = dir.join(CLEANER_CHECKPOINT_FILE);
    Ok(
        read_framed(fs, &path, CLEANER_MAGIC, 16)?.map(|body| CleanerCheckpoint {
            first_dirty_offset: be_i64(&body, 0),
            cleaned_below: be_i64(&body, 8),
        }),
    )
}

pub fn write_clean_shutdown(fs: &Fs, dir: &Path, state: CleanShutdown) -> io::Result<()> {
    let mut body = Vec::with_capacity(24);
    body.extend_from_slice(&state.log_end_offset.to_be_bytes());
    body.extend_from_slice(&state.active_base_offset.to_be_bytes());
    body.extend_from_slice(&state.active_size_bytes.to_be_bytes());
    fs.write_atomically(dir, CLEAN_SHUTDOWN_FILE, &frame(CLEAN_MAGIC, &body))
}

/// Reads and removes the clean-shutdown marker.
pub fn take_clean_shutdown(fs: &Fs, dir: &Path) -> io::Result<Option<CleanShutdown>> {
    let path = dir.join(CLEAN_SHUTDOWN_FILE);
    let state = read_framed(fs, &path, CLEAN_MAGIC, 24)?.map(|body| CleanShutdown {
        log_end_offset: be_i64(&body, 0),
        active_base_offset: be_i64(&body, 8),
        active_size_bytes: be_i64(&body, 16) as u64,
    });
    fs.remove_file_if_exists(&path)?;
    Ok(state)
}

fn frame(magic: &[u8; 4], body: &[u8]) -> Vec<u8> {
    frame_version(magic, FORMAT_VERSION, body)
}

fn frame_version(magic: &[u8; 4], version: u16, body: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(10 + body.len());
    bytes.extend_from_slice(magic);
    bytes.extend_from_slice(&version.to_be_bytes());
    bytes.extend_from_slice(body);
    let crc = crc32c::crc32c(&bytes);
    bytes.extend_from_slice(&crc.to_be_bytes());
    bytes
}

fn read_framed(
    fs: &Fs,
    path: &Path,
    magic: &[u8; 4],
    body_bytes: usize,
) -> io::Result<Option<Vec<u8>>> {
    read_framed_versions(fs, path, magic, &[(FORMAT_VERSION, body_bytes)])
}

/// The body of a framed state file whose (version, body length) is one of `versions`.
fn read_framed_versions(
    fs: &Fs,
    path: &Path,
    magic: &[u8; 4],
    versions: &[(u16, usize)],
) -> io::Result<Option<Vec<u8>>> {
    let bytes = match fs.read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let known_length = versions
        .iter()
        .any(|&(_, body)| bytes.len() == 4 + 2 + body + 4);
    if !known_length || &bytes[..4] != magic {
        tracing::warn!(path = %path.display(), "ignoring malformed state file");
        return Ok(None);
    }
    let (content, crc) = bytes.split_at(bytes.len() - 4);
    let stored_crc = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let version = u16::from_be_bytes([content[4], content[5]]);
    let version_matches = versions.contains(&(version, content.len() - 6));
    if stored_crc != crc32c::crc32c(content) || !version_matches {
        tracing::warn!(path = %path.display(), "ignoring state file with a bad CRC or version");
        return Ok(None);
    }
    Ok(Some(content[6..].to_vec()))
}

fn be_i64(bytes: &[u8], at: usize) -> i64 {
    let mut out = [0u8; 8];
    if let Some(slice) = bytes.get(at..at + 8) {
        out.copy_from_slice(slice);
    }
    i64::from_be_bytes(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn std_fs() -> Fs {
        Fs::default()
    }

    #[test]
    fn checkpoint_round_trips_and_rejects_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_checkpoint(&std_fs(), dir.path()).unwrap(), None);
        let checkpoint = Checkpoint {
            log_start_offset: 7,
            recovery_point: 42,
            high_watermark: 40,
        };
        write_checkpoint(&std_fs(), dir.path(), checkpoint).unwrap();
        assert_eq!(
            read_checkpoint(&std_fs(), dir.path()).unwrap(),
            Some(checkpoint)
        );
        let path = dir.path().join(CHECKPOINT_FILE);
        let mut bytes = fs::read(&path).unwrap();
        bytes[8] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert_eq!(read_checkpoint(&std_fs(), dir.path()).unwrap(), None);
        fs::write(&path, &bytes[..5]).unwrap();
        assert_eq!(read_checkpoint(&std_fs(), dir.path()).unwrap(), None);
    }

    #[test]
    fn a_version_1_checkpoint_reads_with_an_unknown_high_watermark() {
        let dir = tempfile::tempdir().unwrap();
        let mut body = Vec::new();
        body.extend_from_slice(&7i64.to_be_bytes());
        body.extend_from_slice(&42i64.to_be_bytes());
        fs::write(
            dir.path().join(CHECKPOINT_FILE),
            frame(CHECKPOINT_MAGIC, &body),
        )
        .unwrap();
        assert_eq!(
            read_checkpoint(&std_fs(), dir.path()).unwrap(),
            Some(Checkpoint {
                log_start_offset: 7,
                recovery_point: 42,
                high_watermark: UNKNOWN_HIGH_WATERMARK,
            })
        );
        // A version 2 length with version 1 in it is damage, not a checkpoint.
        body.extend_from_slice(&40i64.to_be_bytes());
        fs::write(
            dir.path().join(CHECKPOINT_FILE),
            frame(CHECKPOINT_MAGIC, &body),
        )
        .unwrap();
        assert_eq!(read_checkpoint(&std_fs(), dir.path()).unwrap(), None);
    }

    #[test]
    fn clean_marker_is_consumed_by_reading() {
        let dir = tempfile::tempdir().unwrap();
        let state = CleanShutdown {
            log_end_offset: 10,
            active_base_offset: 5,
            active_size_bytes: 999,
        };
        write_clean_shutdown(&std_fs(), dir.path(), state).unwrap();
        assert_eq!(
            take_clean_shutdown(&std_fs(), dir.path()).unwrap(),
            Some(state)
        );
        assert_eq!(take_clean_shutdown(&std_fs(), dir.path()).unwrap(), None);
    }
}
