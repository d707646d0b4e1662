//! How a cleaned segment replaces the segments it was made from, safely against a crash at any
//! point (our own protocol; Kafka's `.cleaned` → `.swap` renames serve the same purpose).
//!
//! 1. The cleaned segment is written next to the log as `<base>.index.cleaned`,
//!    `<base>.timeindex.cleaned` and `<base>.log.cleaned`; every file is fsynced, then the
//!    directory.
//! 2. The manifest `cleaner.swap` (new base offset, replaced base offsets, CRC) is written
//!    atomically (temp file, fsync, rename, directory fsync). **This is the commit point.**
//! 3. The `.cleaned` files are renamed over `<base>.*` (indexes first, `.log` last) and the
//!    other replaced segments' files are deleted; the directory is fsynced.
//! 4. The manifest is deleted and the directory fsynced (so a stale manifest can never come back
//!    and replay over the files of a later cleaning).
//!
//! Recovery (`recover`, run by `Log::open` before listing segments): a manifest present means the
//! swap committed, so step 3 is redone (idempotent: files already renamed are skipped, files
//! already deleted stay deleted) and step 4 finished; without a manifest any `.cleaned` file is
//! an unfinished cleaning and is deleted. Either way the log holds the same records: the old
//! segments, or the complete cleaned one. Because the `.log` file moves last, a redo never pairs
//! the new log with the replaced segment's index.

use std::io;
use std::path::Path;

use quill_fs::Fs;

use crate::segment::segment_file_name;

pub const CLEANED_SUFFIX: &str = ".cleaned";
pub const MANIFEST_FILE: &str = "cleaner.swap";
const MANIFEST_MAGIC: &[u8; 4] = b"QLSW";
const MANIFEST_VERSION: u16 = 1;
/// A group never holds more segments than this (bounds what a manifest may claim).
pub const MAX_REPLACED_SEGMENTS: usize = 1 << 20;
/// Indexes before the log: see the module docs.
const SEGMENT_EXTENSIONS: [&str; 3] = ["index", "timeindex", "log"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwapManifest {
    pub new_base_offset: i64,
    /// Base offsets of the segments being replaced (the first equals `new_base_offset`).
    pub replaced: Vec<i64>,
}

fn cleaned_name(base_offset: i64, extension: &str) -> String {
    format!(
        "{}{CLEANED_SUFFIX}",
        segment_file_name(base_offset, extension)
    )
}

/// Deletes every `.cleaned` file (an abandoned cleaning, or leftovers before a new one).
pub fn discard_cleaned(fs: &Fs, dir: &Path) -> io::Result<()> {
    let mut removed = false;
    for path in fs.list_dir(dir)? {
        let is_cleaned = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(CLEANED_SUFFIX));
        if is_cleaned {
            fs.remove_file_if_exists(&path)?;
            removed = true;
        }
    }
    if removed {
        fs.sync_dir(dir)?;
    }
    Ok(())
}

fn encode(manifest: &SwapManifest) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(22 + manifest.replaced.len() * 8);
    bytes.extend_from_slice(MANIFEST_MAGIC);
    bytes.extend_from_slice(&MANIFEST_VERSION.to_be_bytes());
    bytes.extend_from_slice(&manifest.new_base_offset.to_be_bytes());
    bytes.extend_from_slice(&(manifest.replaced.len() as u32).to_be_bytes());
    for base in &manifest.replaced {
        bytes.extend_from_slice(&base.to_be_bytes());
    }
    let crc = crc32c::crc32c(&bytes);
    bytes.extend_from_slice(&crc.to_be_bytes());
    bytes
}

fn decode(bytes: &[u8]) -> Option<SwapManifest> {
    let (content, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
    if u32::from_be_bytes(crc.try_into().ok()?) != crc32c::crc32c(content) {
        return None;
    }
    if content.get(..4)? != MANIFEST_MAGIC
        || u16::from_be_bytes(content.get(4..6)?.try_into().ok()?) != MANIFEST_VERSION
    {
        return None;
    }
    let new_base_offset = i64::from_be_bytes(content.get(6..14)?.try_into().ok()?);
    let count = u32::from_be_bytes(content.get(14..18)?.try_into().ok()?) as usize;
    if count == 0 || count > MAX_REPLACED_SEGMENTS || content.len() != 18 + count * 8 {
        return None;
    }
    let replaced = content[18..]
        .chunks_exact(8)
        .map(|chunk| i64::from_be_bytes(chunk.try_into().unwrap_or_default()))
        .collect::<Vec<_>>();
    (replaced.first() == Some(&new_base_offset) && new_base_offset >= 0).then_some(SwapManifest {
        new_base_offset,
        replaced,
    })
}

/// Steps 2–4 for a segment already complete and fsynced as `.cleaned` files.
pub fn commit(fs: &Fs, dir: &Path, manifest: &SwapManifest) -> io::Result<()> {
    fs.write_atomically(dir, MANIFEST_FILE, &encode(manifest))?;
    apply(fs, dir, manifest)?;
    fs.remove_file_if_exists(&dir.join(MANIFEST_FILE))?;
    fs.sync_dir(dir)
}

/// Step 3, idempotent.
fn apply(fs: &Fs, dir: &Path, manifest: &SwapManifest) -> io::Result<()> {
    let new_base = manifest.new_base_offset;
    for extension in SEGMENT_EXTENSIONS {
        let staged = dir.join(cleaned_name(new_base, extension));
        if fs.exists(&staged) {
            fs.rename(&staged, &dir.join(segment_file_name(new_base, extension)))?;
        }
    }
    for &base in manifest.replaced.iter().filter(|&&b| b != new_base) {
        for extension in SEGMENT_EXTENSIONS {
            fs.remove_file_if_exists(&dir.join(segment_file_name(base, extension)))?;
        }
    }
    fs.sync_dir(dir)
}

/// Finishes a committed swap or discards an uncommitted one (see the module docs).
pub fn recover(fs: &Fs, dir: &Path) -> io::Result<()> {
    let manifest_path = dir.join(MANIFEST_FILE);
    match fs.read(&manifest_path) {
        Ok(bytes) => {
            match decode(&bytes) {
                Some(manifest) => {
                    tracing::info!(dir = %dir.display(), new_base_offset = manifest.new_base_offset, replaced = manifest.replaced.len(), "finishing an interrupted cleaner swap");
                    apply(fs, dir, &manifest)?;
                }
                None => {
                    tracing::warn!(dir = %dir.display(), "ignoring a malformed cleaner swap manifest")
                }
            }
            fs.remove_file_if_exists(&manifest_path)?;
            fs.sync_dir(dir)?;
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    discard_cleaned(fs, dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips_and_rejects_damage() {
        let manifest = SwapManifest {
            new_base_offset: 5,
            replaced: vec![5, 9, 20],
        };
        let bytes = encode(&manifest);
        assert_eq!(decode(&bytes), Some(manifest.clone()));
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut]), None);
        }
        let mut flipped = bytes.clone();
        flipped[10] ^= 1;
        assert_eq!(decode(&flipped), None);
        let wrong_first = SwapManifest {
            new_base_offset: 6,
            replaced: vec![5],
        };
        assert_eq!(decode(&encode(&wrong_first)), None);
    }

    #[test]
    fn recovery_finishes_a_committed_swap_and_discards_an_uncommitted_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        let fs = Fs::default();
        let read = |name: String| std::fs::read_to_string(path.join(name)).unwrap();
        for base in [0i64, 10, 20] {
            std::fs::write(
                path.join(segment_file_name(base, "log")),
                format!("old {base}"),
            )
            .unwrap();
        }
        std::fs::write(path.join(cleaned_name(0, "log")), "cleaned").unwrap();
        // Uncommitted: the cleaned file is dropped, the old segments stay.
        recover(&fs, path).unwrap();
        assert!(!path.join(cleaned_name(0, "log")).exists());
        assert_eq!(read(segment_file_name(0, "log")), "old 0");
        // Committed but not applied: recovery applies it.
        std::fs::write(path.join(cleaned_name(0, "log")), "cleaned").unwrap();
        let manifest = SwapManifest {
            new_base_offset: 0,
            replaced: vec![0, 10],
        };
        fs.write_atomically(path, MANIFEST_FILE, &encode(&manifest))
            .unwrap();
        recover(&fs, path).unwrap();
        assert_eq!(read(segment_file_name(0, "log")), "cleaned");
        assert!(!path.join(segment_file_name(10, "log")).exists());
        assert!(path.join(segment_file_name(20, "log")).exists());
        assert!(!path.join(MANIFEST_FILE).exists());
        // Applying again changes nothing.
        apply(&fs, path, &manifest).unwrap();
        assert_eq!(read(segment_file_name(0, "log")), "cleaned");
    }
}
