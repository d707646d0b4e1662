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

/// Fills the filesystem holding `path` with a file of zeros until the write fails with ENOSPC.
struct Filler {
    path: PathBuf,
}

impl Filler {
    fn fill(path: PathBuf) -> Filler {
        use std::io::Write;
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(error) if error.raw_os_error() == Some(28) => break, // ENOSPC
                Err(error) => panic!("filling the disk: {error}"),
            }
        }
        // Whatever is left is less than one page: take that too.
        let _ = file.write(&[0u8; 4096]);
        let _ = file.write(&[0u8; 1]);
        Filler { path }
    }

    fn free(self) {
        std::fs::remove_file(&self.path).unwrap();
    }
}

fn commit_offset(client: &mut TestClient, group: &str, offset: i64) -> i16 {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    let commit = kafka_protocol::messages::OffsetCommitRequest::default()
        .with_group_id(kafka_protocol::messages::GroupId(
            kafka_protocol::protocol::StrBytes::from_string(group.to_string()),
        ))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name("t"))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)
                // Near offset.metadata.max.bytes, so a few commits need new pages on disk.
                .with_committed_metadata(Some(
                    kafka_protocol::protocol::StrBytes::from_string("m".repeat(4000)),
                ))])]);
    client.call(&commit, 2).topics[0].partitions[0].error_code
}

fn find_coordinator(client: &mut TestClient, group: &str) -> i16 {
    let find = kafka_protocol::messages::FindCoordinatorRequest::default().with_key(
        kafka_protocol::protocol::StrBytes::from_string(group.to_string()),
    );
    client.call(&find, 2).error_code
}

fn topic_exists(client: &mut TestClient, name: &str) -> bool {
    let metadata = client.call(
        &kafka_protocol::messages::MetadataRequest::default().with_topics(None),
        9,
    );
    metadata
        .topics
        .iter()
        .any(|topic| topic.name.as_ref().is_some_and(|n| n.0.as_str() == name))
}

fn produce_code(client: &mut TestClient, value: &str) -> i16 {
    client.produce("t", 0, &[value]).responses[0].partition_responses[0].error_code
}

/// Issue 11: while the disk is full, appends, topic creation and offset commits fail cleanly
/// (an error answer, nothing half-created, nothing hanging); once space returns they succeed
/// again without a restart; a clean shutdown and a start-up on a full disk both work.
#[test]
fn a_full_disk_refuses_changes_cleanly_and_recovers_without_a_restart() {
    let Some(filesystem) = SmallFilesystem::mount("24m") else {
        eprintln!("skipping: cannot mount a tmpfs here (needs root)");
        return;
    };
    let data_dir = filesystem.path().join("data");
    let mut broker = BrokerProcess::start(
        &data_dir,
        &[
            "--set",
            "log.segment.bytes=1048576",
            "--set",
            "log.index.size.max.bytes=4096",
            "--set",
            "offsets.topic.num.partitions=3",
        ],
    );
    let mut client = broker.connect();
    client.create_topic("t", 1);
    assert_eq!(produce_code(&mut client, "before"), 0);
    assert_eq!(find_coordinator(&mut client, "g"), 0);
    assert_eq!(commit_offset(&mut client, "g", 1), 0);

    let filler = Filler::fill(filesystem.path().join("filler"));
    // Appends: KAFKA_STORAGE_ERROR, every time, none hanging.
    let mut acknowledged = 1;
    for _ in 0..3 {
        match produce_code(&mut client, &"x".repeat(20_000)) {
            0 => acknowledged += 1, // fitted in a page the log already had
            code => assert_eq!(code, KAFKA_STORAGE_ERROR),
        }
    }
    // Topic creation: an error, and nothing created (no topic, no directory).
    let create = client.call(&create_topic_request("u", 4, 1, &[]), 5);
    assert_ne!(create.topics[0].error_code, 0, "created on a full disk");
    assert!(!topic_exists(&mut client, "u"));
    assert!(!data_dir.join("u-0").exists());
    // Offset commits answer (an error) instead of waiting.
    let mut commit_errors = 0;
    for offset in 2..6 {
        if commit_offset(&mut client, "g", offset) != 0 {
            commit_errors += 1;
        }
    }
    assert!(commit_errors > 0, "every commit fitted on a full disk");

    // Space returns: everything works again, without a restart.
    filler.free();
    assert_eq!(produce_code(&mut client, "after"), 0);
    acknowledged += 1;
    let create = client.call(&create_topic_request("u", 4, 1, &[]), 5);
    assert_eq!(create.topics[0].error_code, 0, "{create:?}");
    assert!(topic_exists(&mut client, "u"));
    assert_eq!(commit_offset(&mut client, "g", 7), 0);

    // A clean shutdown on a full disk, then a start-up on it.
    let filler = Filler::fill(filesystem.path().join("filler"));
    drop(client);
    assert_eq!(broker.stop_with("TERM"), Some(0), "{}", broker.log_text());
    broker.restart();
    let mut client = broker.connect();
    let fetched = client.fetch("t", 0, 0);
    let data = &fetched.responses[0].partitions[0];
    assert_eq!(data.error_code, 0, "{data:?}\n{}", broker.log_text());
    let values = decode_values(data.records.as_ref().unwrap());
    assert_eq!(values.len() as i64, acknowledged, "{values:?}");
    assert!(topic_exists(&mut client, "u"));
    filler.free();
    assert_eq!(produce_code(&mut client, "after restart"), 0);
    broker.stop_with("KILL");
}
