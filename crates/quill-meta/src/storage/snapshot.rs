//! Snapshots: the image written as the records that rebuild it.
//!
//! Writing the image as records (like KRaft) means a snapshot is replayed through the same
//! validating state machine as the log, so there is one decoder and one set of invariants. The
//! round trip `restore(snapshot_records(image)) == image` is tested, including for random histories.

use std::io::Read;
use std::path::Path;

use quill_fs::{Fs, OpenOptions};

use serde::{Deserialize, Serialize};

use super::frame::{self, FrameRead};
use crate::state_machine::{apply_in_place, initial_partition_state};
use crate::{MetaError, MetadataImage, MetadataRecord, PartitionAssignment};

pub const SNAPSHOT_FORMAT_VERSION: u32 = 1;
/// Upper bound on a snapshot payload; far above what a million-partition cluster needs.
pub const MAX_SNAPSHOT_BYTES: usize = 1 << 30;

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSnapshot {
    pub version: u32,
    pub cluster_id: String,
    /// Index of the last entry included; the image offset after restoring.
    pub last_index: u64,
    pub records: Vec<MetadataRecord>,
}

/// Records that rebuild `image` from an empty image: finalized features, brokers, broker configs, topics, then partition leadership that
/// differs from the initial state.
pub fn snapshot_records(image: &MetadataImage) -> Vec<MetadataRecord> {
    let mut records = Vec::new();
    for (name, level) in &image.features {
        records.push(MetadataRecord::FeatureLevel {
            name: name.clone(),
            level: *level,
        });
    }
    for broker in image.brokers.values() {
        records.push(MetadataRecord::RegisterBroker {
            node_id: broker.node_id,
            host: broker.host.clone(),
            port: broker.port,
            rack: broker.rack.clone(),
            incarnation_id: broker.incarnation_id,
        });
        if broker.fenced {
            records.push(MetadataRecord::FenceBroker {
                node_id: broker.node_id,
            });
        }
        if broker.in_controlled_shutdown {
            records.push(MetadataRecord::BeginControlledShutdown {
                node_id: broker.node_id,
            });
        }
    }
    for (node_id, configs) in &image.broker_configs {
        records.push(MetadataRecord::AlterBrokerConfigs {
            node_id: *node_id,
            set: configs.clone(),
            delete: Vec::new(),
        });
    }
    for (group_id, configs) in &image.group_configs {
        records.push(MetadataRecord::AlterGroupConfigs {
            group_id: group_id.clone(),
            set: configs.clone(),
            delete: Vec::new(),
        });
    }
    if image.next_producer_id > 0 {
        // Only the high-water mark is state; which broker asked last is not kept.
        records.push(MetadataRecord::AllocateProducerIds {
            node_id: 0,
            next_producer_id: image.next_producer_id,
        });
    }
    for topic in image.topics.values() {
        records.push(MetadataRecord::CreateTopic {
            name: topic.name.clone(),
            topic_id: topic.topic_id,
            partitions: topic
                .partitions
                .iter()
                .map(|partition| PartitionAssignment {
                    partition: partition.partition,
                    replicas: partition.replicas.clone(),
                })
                .collect(),
            configs: topic.configs.clone(),
        });
    }
    for topic in image.topics.values() {
        for partition in &topic.partitions {
            let initial = initial_partition_state(&PartitionAssignment {
                partition: partition.partition,
                replicas: partition.replicas.clone(),
            });
            if partition != &initial {
                records.push(MetadataRecord::SetPartitionLeader {
                    topic_id: topic.topic_id,
                    partition: partition.partition,
                    leader: partition.leader,
                    isr: partition.isr.clone(),
                    leader_epoch: partition.leader_epoch,
                    partition_epoch: Some(partition.partition_epoch),
                });
            }
        }
    }
    records
}

/// Rebuilds an image from snapshot records; any failure means the snapshot cannot be trusted.
pub fn restore(
    cluster_id: &str,
    last_index: u64,
    records: &[MetadataRecord],
) -> Result<MetadataImage, MetaError> {
    let mut image = MetadataImage::empty(cluster_id);
    for record in records {
        apply_in_place(&mut image, record).map_err(|error| {
            MetaError::Corrupt(format!(
                "snapshot record {} does not apply: {error}",
                record.kind()
            ))
        })?;
    }
    image.offset = last_index;
    image
        .check_invariants()
        .map_err(|violation| MetaError::Corrupt(format!("snapshot image invalid: {violation}")))?;
    Ok(image)
}

pub fn encode_snapshot(image: &MetadataImage) -> Result<Vec<u8>, MetaError> {
    let snapshot = StoredSnapshot {
        version: SNAPSHOT_FORMAT_VERSION,
        cluster_id: image.cluster_id.clone(),
        last_index: image.offset,
        records: snapshot_records(image),
    };
    let payload = serde_json::to_vec(&snapshot)
        .map_err(|error| MetaError::Corrupt(format!("cannot encode snapshot: {error}")))?;
    if payload.len() > MAX_SNAPSHOT_BYTES {
        return Err(MetaError::EntryTooLarge {
            size_bytes: payload.len(),
            limit_bytes: MAX_SNAPSHOT_BYTES,
        });
    }
    frame::encode_frame(&payload)
}

/// Reads and restores a snapshot file. The file was written atomically, so unlike the log tail
/// any damage is corruption and is reported, never skipped.
pub fn read_snapshot(
    fs: &Fs,
    path: &Path,
    expected_cluster_id: &str,
) -> Result<MetadataImage, MetaError> {
    let mut file = fs.open(path, OpenOptions::READ)?;
    // Bound the allocation by what the file can hold, so a damaged length cannot ask for 1 GiB.
    let file_len_bytes = usize::try_from(file.size_bytes()?).unwrap_or(usize::MAX);
    let max_payload_bytes = file_len_bytes
        .saturating_sub(frame::FRAME_HEADER_BYTES)
        .min(MAX_SNAPSHOT_BYTES);
    let payload = match frame::read_frame(&mut file, max_payload_bytes)? {
        FrameRead::Frame(payload) => payload,
        FrameRead::End => return Err(MetaError::Corrupt("snapshot file is empty".to_string())),
        FrameRead::Invalid(reason) => {
            return Err(MetaError::Corrupt(format!("snapshot file: {reason}")))
        }
    };
    let mut trailing = [0u8; 1];
    if file.read(&mut trailing)? != 0 {
        return Err(MetaError::Corrupt(
            "snapshot file has bytes after its frame".to_string(),
        ));
    }
    decode_snapshot_payload(&payload, expected_cluster_id)
}

/// Decodes a whole framed snapshot held in memory (as `encode_snapshot` made it): the metadata
/// quorum ships snapshots between controllers in this format.
pub fn decode_snapshot(
    framed: &[u8],
    expected_cluster_id: &str,
) -> Result<MetadataImage, MetaError> {
    let mut reader = framed;
    let max_payload_bytes = framed
        .len()
        .saturating_sub(frame::FRAME_HEADER_BYTES)
        .min(MAX_SNAPSHOT_BYTES);
    let payload = match frame::read_frame(&mut reader, max_payload_bytes)? {
        FrameRead::Frame(payload) => payload,
        FrameRead::End => return Err(MetaError::Corrupt("snapshot is empty".to_string())),
        FrameRead::Invalid(reason) => {
            return Err(MetaError::Corrupt(format!("snapshot: {reason}")))
        }
    };
    if !reader.is_empty() {
        return Err(MetaError::Corrupt(
            "snapshot has bytes after its frame".to_string(),
        ));
    }
    decode_snapshot_payload(&payload, expected_cluster_id)
}

fn decode_snapshot_payload(
    payload: &[u8],
    expected_cluster_id: &str,
) -> Result<MetadataImage, MetaError> {
    let snapshot: StoredSnapshot = serde_json::from_slice(payload)
        .map_err(|error| MetaError::Corrupt(format!("undecodable snapshot: {error}")))?;
    if snapshot.version != SNAPSHOT_FORMAT_VERSION {
        return Err(MetaError::Corrupt(format!(
            "snapshot has unsupported format version {}",
            snapshot.version
        )));
    }
    if snapshot.cluster_id != expected_cluster_id {
        return Err(MetaError::Corrupt(format!(
            "snapshot belongs to cluster {}, not {expected_cluster_id}",
            snapshot.cluster_id
        )));
    }
    restore(&snapshot.cluster_id, snapshot.last_index, &snapshot.records)
}
