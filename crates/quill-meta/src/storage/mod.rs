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

use std::path::Path;

use quill_fs::{Fs, OpenOptions};

pub const PROPERTIES_FILE: &str = "meta.properties";
pub const LOG_FILE: &str = "metadata.log";
pub const SNAPSHOT_FILE: &str = "metadata.snapshot";
const TEMP_SUFFIX: &str = ".tmp";

/// Removes temp files left by a crash during `Fs::write_atomically` (which names them
/// `{name}.tmp`).
pub fn remove_temp_files(fs: &Fs, dir: &Path) -> std::io::Result<()> {
    for name in [PROPERTIES_FILE, SNAPSHOT_FILE] {
        let temp_path = dir.join(format!("{name}{TEMP_SUFFIX}"));
        match fs.remove_file(&temp_path) {
            Ok(()) => tracing::info!(path = %temp_path.display(), "removed leftover temp file"),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// A human-readable listing of a metadata directory (properties, snapshot summary, one JSON line
/// per log entry), for debugging. Read-only: it neither repairs nor truncates anything.
pub fn dump(dir: &Path) -> Result<String, crate::MetaError> {
    use std::fmt::Write as _;

    let fs = Fs::default();
    let mut out = String::new();
    let properties = properties::MetaProperties::read(&fs, &dir.join(PROPERTIES_FILE))?;
    let _ = writeln!(out, "cluster.id={}", properties.cluster_id);
    let snapshot_path = dir.join(SNAPSHOT_FILE);
    if snapshot_path.exists() {
        let image = snapshot::read_snapshot(&fs, &snapshot_path, &properties.cluster_id)?;
        let _ = writeln!(
            out,
            "snapshot: offset={} brokers={} topics={}",
            image.offset,
            image.brokers.len(),
            image.topics.len()
        );
    }
    let log = fs.open(&dir.join(LOG_FILE), OpenOptions::READ)?;
    let mut reader = std::io::BufReader::new(log);
    loop {
        match frame::read_frame(&mut reader, crate::store::DEFAULT_MAX_ENTRY_BYTES)? {
            frame::FrameRead::Frame(payload) => {
                let _ = writeln!(out, "{}", String::from_utf8_lossy(&payload));
            }
            frame::FrameRead::End => break,
            frame::FrameRead::Invalid(reason) => {
                let _ = writeln!(out, "invalid tail: {reason}");
                break;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn dump_lists_snapshot_entries_and_torn_tail() {
        let temp = tempfile::tempdir().unwrap();
        let mut store = crate::MetadataStore::open(temp.path()).unwrap();
        let register = |node_id| crate::MetadataRecord::RegisterBroker {
            node_id,
            host: "h".into(),
            port: 1,
            rack: None,
            incarnation_id: None,
        };
        store.append(vec![register(1)]).unwrap();
        store.snapshot().unwrap();
        store.append(vec![register(2)]).unwrap();
        drop(store);
        let mut log = std::fs::OpenOptions::new()
            .append(true)
            .open(temp.path().join(LOG_FILE))
            .unwrap();
        log.write_all(&[1, 2, 3]).unwrap();

        let text = dump(temp.path()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("cluster.id="));
        assert_eq!(lines[1], "snapshot: offset=1 brokers=1 topics=0");
        assert!(lines[2].contains(r#""index":2"#), "{}", lines[2]);
        assert!(lines[3].starts_with("invalid tail:"));
        assert_eq!(lines.len(), 4);
    }
}
