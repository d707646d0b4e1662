//! Disk full while appending: the producer gets KAFKA_STORAGE_ERROR, everything acknowledged
//! before stays readable and uncorrupted, and the broker keeps serving.
//!
//! Needs to mount a small tmpfs (root in a container or CI VM); skipped with a message when the
//! mount is not permitted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const KAFKA_STORAGE_ERROR: i16 = 56;

/// A tmpfs of `size` mounted for the test's lifetime.
struct SmallFilesystem {
    mount_point: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallFilesystem {
    fn mount(size: &str) -> Option<SmallFilesystem> {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| SmallFilesystem {
            mount_point: dir.path().to_path_buf(),
            _dir: dir,
        })
    }

    fn path(&self) -> &Path {
        &self.mount_point
    }
}

impl Drop for SmallFilesystem {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount_point).status();
    }
}

#[test]
fn disk_full_is_a_storage_error_and_the_partition_stays_readable() {
    let Some(filesystem) = SmallFilesystem::mount("3m") else {
        eprintln!("skipping: cannot mount a tmpfs here (needs root)");
        return;
    };
    let data_dir = filesystem.path().join("data");
    let mut broker = BrokerProcess::start(&data_dir, &["--set", "log.segment.bytes=1048576"]);
    let mut client = broker.connect();
    let create = create_topic_request("full", 1, 1, &[("segment.index.bytes", "4096")]);
    assert_eq!(client.call(&create, 5).topics[0].error_code, 0);

    let value = "x".repeat(60_000);
    let mut acknowledged = 0i64;
    let mut storage_error = false;
    for _ in 0..200 {
        let response = client.produce("full", 0, &[value.as_str()]);
        let partition = &response.responses[0].partition_responses[0];
        if partition.error_code == 0 {
            assert_eq!(partition.base_offset, acknowledged);
            acknowledged += 1;
            continue;
        }
        assert_eq!(partition.error_code, KAFKA_STORAGE_ERROR, "{partition:?}");
        storage_error = true;
        break;
    }
    assert!(storage_error, "the 3 MiB filesystem never filled up");
    assert!(acknowledged > 0);

    // Every acknowledged record is still readable, at its offset.
    let mut offset = 0;
    while offset < acknowledged {
        let fetched = client.fetch("full", 0, offset);
        let data = &fetched.responses[0].partitions[0];
        assert_eq!(data.error_code, 0, "{data:?}");
        let values = decode_values(data.records.as_ref().unwrap());
        assert!(!values.is_empty());
        for (record_offset, record_value) in values {
            if record_offset >= offset {
                assert_eq!(record_offset, offset);
                assert_eq!(record_value.len(), value.len());
                offset += 1;
            }
        }
    }
    // The broker still answers other requests.
    let metadata = client.call(
        &kafka_protocol::messages::MetadataRequest::default().with_topics(None),
        9,
    );
    assert_eq!(metadata.topics.len(), 1);
    broker.stop_with("KILL");
}
