//! On-disk layout of a metadata directory:
//!
//! - `meta.properties`: format version and cluster id, written once, atomically.
//! - `metadata.log`: append-only frames ([`frame`]), one per entry ([`entry`]).
//! - `metadata.snapshot`: one frame holding the image as records ([`snapshot`]), replaced
//!   atomically; log entries at or below its index are redundant.

pub mod entry;
pub mod frame;
pub mod properties;
pub mod snapshot;

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

pub const PROPERTIES_FILE: &str = "meta.properties";
pub const LOG_FILE: &str = "metadata.log";
pub const SNAPSHOT_FILE: &str = "metadata.snapshot";
const TEMP_SUFFIX: &str = ".tmp";

/// Replaces `dir/name` with `bytes` so that after a crash the file holds either the old or the
/// new content: write a temp file, fsync it, rename over, fsync the directory.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let temp_path = dir.join(format!("{name}{TEMP_SUFFIX}"));
    let mut temp = File::create(&temp_path)?;
    temp.write_all(bytes)?;
    temp.sync_all()?;
    drop(temp);
    fs::rename(&temp_path, dir.join(name))?;
    sync_dir(dir)
}

/// Makes renames and file creations in `dir` durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Removes temp files left by a crash during `write_atomically`.
pub fn remove_temp_files(dir: &Path) -> std::io::Result<()> {
    for name in [PROPERTIES_FILE, SNAPSHOT_FILE] {
        let temp_path = dir.join(format!("{name}{TEMP_SUFFIX}"));
        match fs::remove_file(&temp_path) {
            Ok(()) => tracing::info!(path = %temp_path.display(), "removed leftover temp file"),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}
