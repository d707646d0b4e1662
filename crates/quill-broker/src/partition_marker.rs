//! `partition.metadata` in each partition directory (as in Kafka): the id of the topic the data
//! belongs to. Without it, a topic deleted while the broker was down (or crashed between the
//! metadata append and the directory removal) would leave a directory that a later topic of
//! the same name would silently adopt, serving the old topic's records.

use std::fs;
use std::path::Path;

use quill_meta::Uuid;

pub const FILE_NAME: &str = "partition.metadata";

/// The topic id recorded in `dir`, if the marker exists and parses.
pub fn read(dir: &Path) -> Option<Uuid> {
    let text = fs::read_to_string(dir.join(FILE_NAME)).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("topic_id: "))
        .and_then(|id| Uuid::parse_str(id.trim()).ok())
}

/// Writes the marker durably (temp file, fsync, rename, fsync the directory).
pub fn write(dir: &Path, topic_id: Uuid) -> std::io::Result<()> {
    let content = format!("version: 0\ntopic_id: {topic_id}\n");
    quill_log::Fs::default().write_atomically(dir, FILE_NAME, content.as_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_tolerates_absence() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()), None);
        let id = Uuid::from_u128(0xfeed);
        write(dir.path(), id).unwrap();
        assert_eq!(read(dir.path()), Some(id));
    }
}
