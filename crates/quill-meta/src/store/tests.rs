use std::collections::BTreeMap;
use std::fs;

use proptest::prelude::*;
use uuid::Uuid;

use super::*;
use crate::storage::snapshot::{restore, snapshot_records};
use crate::{PartitionAssignment, NO_LEADER};

fn register(node_id: i32) -> MetadataRecord {
    MetadataRecord::RegisterBroker {
        node_id,
        host: "localhost".into(),
        port: 9092,
        rack: None,
        incarnation_id: None,
    }
}

fn create(name: &str, id: u128, partitions: i32) -> MetadataRecord {
    MetadataRecord::CreateTopic {
        name: name.into(),
        topic_id: Uuid::from_u128(id),
        partitions: (0..partitions)
            .map(|partition| PartitionAssignment {
                partition,
                replicas: vec![1],
            })
            .collect(),
        configs: BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]),
    }
}

fn options(snapshot_interval_entries: u64) -> StoreOptions {
    StoreOptions {
        snapshot_interval_entries,
        ..StoreOptions::default()
    }
}

/// A varied history: brokers, topics, configs, leadership, deletion.
fn history() -> Vec<Vec<MetadataRecord>> {
    vec![
        vec![
            MetadataRecord::FeatureLevel {
                name: "metadata.version".into(),
                level: 25,
            },
            register(1),
            register(2),
        ],
        vec![create("orders", 1, 2)],
        vec![create("payments", 2, 1), create("audit.log", 3, 3)],
        vec![MetadataRecord::AlterBrokerConfigs {
            node_id: None,
            set: BTreeMap::from([("log.retention.hours".into(), "24".into())]),
            delete: vec![],
        }],
        vec![MetadataRecord::CreatePartitions {
            topic_id: Uuid::from_u128(1),
            new_partitions: vec![PartitionAssignment {
                partition: 2,
                replicas: vec![2],
            }],
        }],
        vec![MetadataRecord::SetPartitionLeader {
            topic_id: Uuid::from_u128(1),
            partition: 0,
            leader: NO_LEADER,
            isr: vec![],
            leader_epoch: 4,
            partition_epoch: None,
        }],
        vec![MetadataRecord::DeleteTopic {
            topic_id: Uuid::from_u128(2),
        }],
        vec![MetadataRecord::AllocateProducerIds {
            node_id: 1,
            next_producer_id: 2000,
        }],
        vec![MetadataRecord::AlterTopicConfigs {
            topic_id: Uuid::from_u128(3),
            set: BTreeMap::from([("cleanup.policy".into(), "compact".into())]),
            delete: vec!["retention.ms".into()],
        }],
    ]
}

/// Appends `history()`, returning the image after each entry (index 0 = empty).
fn append_history(store: &mut MetadataStore) -> Vec<Arc<MetadataImage>> {
    let mut images = vec![store.image()];
    for records in history() {
        images.push(store.append(records).unwrap());
    }
    images
}

fn reopen(dir: &Path) -> MetadataStore {
    MetadataStore::open_with_options(dir, options(u64::MAX)).unwrap()
}

/// Byte offsets of frame boundaries in a log file: 0, end of frame 1, end of frame 2, ...
fn frame_boundaries(log_bytes: &[u8]) -> Vec<usize> {
    let mut boundaries = vec![0];
    let mut position = 0;
    while position + frame::FRAME_HEADER_BYTES <= log_bytes.len() {
        let len_bytes: [u8; 4] = log_bytes[position..position + 4].try_into().unwrap();
        position += frame::FRAME_HEADER_BYTES + u32::from_le_bytes(len_bytes) as usize;
        boundaries.push(position);
    }
    boundaries
}

fn copy_dir_with_log(from: &Path, to: &Path, log_bytes: &[u8]) {
    fs::create_dir_all(to).unwrap();
    for name in [PROPERTIES_FILE, SNAPSHOT_FILE] {
        if from.join(name).exists() {
            fs::copy(from.join(name), to.join(name)).unwrap();
        }
    }
    fs::write(to.join(LOG_FILE), log_bytes).unwrap();
}

#[test]
fn first_open_creates_a_persistent_cluster_id() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("__cluster_metadata");
    let store = MetadataStore::open(&dir).unwrap();
    let cluster_id = store.cluster_id().to_string();
    assert_eq!(cluster_id.len(), 22);
    assert!(store.recovery_report().created);
    assert_eq!(store.image().offset, 0);
    drop(store);
    let reopened = MetadataStore::open(&dir).unwrap();
    assert_eq!(reopened.cluster_id(), cluster_id);
    assert!(!reopened.recovery_report().created);
}

#[test]
fn replay_after_reopen_equals_the_image_before() {
    let temp = tempfile::tempdir().unwrap();
    let mut store = reopen(temp.path());
    let images = append_history(&mut store);
    let last = images.last().unwrap().clone();
    assert_eq!(last.offset, history().len() as u64);
    last.check_invariants().unwrap();
    drop(store);
    let reopened = reopen(temp.path());
    assert_eq!(reopened.image(), last);
    assert_eq!(
        reopened.recovery_report().replayed_entries,
        history().len() as u64
    );
}

#[test]
fn validation_failure_writes_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let mut store = reopen(temp.path());
    append_history(&mut store);
    let before = store.image();
    let log_len = fs::metadata(temp.path().join(LOG_FILE)).unwrap().len();
    let error = store
        .append(vec![create("fresh", 99, 1), create("orders", 98, 1)])
        .unwrap_err();
    assert_eq!(error.kafka_error_code(), 36);
    assert_eq!(store.image(), before);
    assert_eq!(
        fs::metadata(temp.path().join(LOG_FILE)).unwrap().len(),
        log_len
    );
    assert!(store.append(vec![]).is_ok(), "empty batch is a no-op");
    assert_eq!(store.image(), before);
}

#[test]
fn oversized_entry_is_rejected_before_writing() {
    let temp = tempfile::tempdir().unwrap();
    let small = StoreOptions {
        max_entry_bytes: 200,
        ..options(u64::MAX)
    };
    let mut store = MetadataStore::open_with_options(temp.path(), small).unwrap();
    store.append(vec![register(1)]).unwrap();
    let error = store.append(vec![create("big", 1, 20)]).unwrap_err();
    assert!(
        matches!(error, MetaError::EntryTooLarge { .. }),
        "{error:?}"
    );
    assert_eq!(store.image().offset, 1);
}

#[test]
fn reader_follows_appends() {
    let temp = tempfile::tempdir().unwrap();
    let mut store = reopen(temp.path());
    let reader = store.reader();
    assert_eq!(reader.image().offset, 0);
    let after = store.append(vec![register(1)]).unwrap();
    assert_eq!(reader.image(), after);
    assert!(store.append(vec![create("t", 0, 1)]).is_err());
    assert_eq!(reader.image(), after);
    let from_thread = std::thread::spawn(move || reader.image().offset)
        .join()
        .unwrap();
    assert_eq!(from_thread, 1);
}

/// /dev/full accepts opens and fails every write with ENOSPC: a real failed write. The store
/// refuses changes cleanly while the condition lasts and accepts them again once it clears,
/// without a restart, and what it then holds is what a restart replays.
#[cfg(target_os = "linux")]
#[test]
fn a_failed_write_fails_cleanly_until_the_disk_recovers() {
    let temp = tempfile::tempdir().unwrap();
    let mut healthy = reopen(temp.path());
    healthy.append(vec![register(1)]).unwrap();
    // Entry 1 lives in the snapshot, so the store opens at offset 1 with the log on /dev/full.
    healthy.snapshot().unwrap();
    drop(healthy);
    let log_path = temp.path().join(LOG_FILE);
    let durable_log = fs::read(&log_path).unwrap();
    fs::remove_file(&log_path).unwrap();
    std::os::unix::fs::symlink("/dev/full", &log_path).unwrap();
    let mut store = reopen(temp.path());
    assert_eq!(store.image().offset, 1);

    let error = store.append(vec![create("t", 1, 1)]).unwrap_err();
    assert!(matches!(error, MetaError::Io(_)), "{error:?}");
    assert_eq!(
        store.image().offset,
        1,
        "nothing published after a failed write"
    );
    // Still failing: every attempt errors, none hangs or publishes.
    for _ in 0..3 {
        assert!(store.append(vec![create("t", 1, 1)]).is_err());
        assert!(store.snapshot().is_err());
        assert_eq!(store.image().offset, 1);
    }
    assert_eq!(
        MetaError::Io(std::io::Error::other("x")).kafka_error_code(),
        56
    );

    // The disk recovers (the log is a regular file again, holding what was durable).
    fs::remove_file(&log_path).unwrap();
    fs::write(&log_path, &durable_log).unwrap();
    let image = store.append(vec![create("t", 1, 1)]).unwrap();
    assert_eq!(image.offset, 2);
    assert!(image.topic("t").is_some());
    drop(store);
    assert_eq!(reopen(temp.path()).image(), image);
}

#[test]
fn snapshot_plus_tail_replays_to_the_same_image() {
    let temp = tempfile::tempdir().unwrap();
    let mut store = reopen(temp.path());
    let records = history();
    let (head, tail) = records.split_at(4);
    for entry in head {
        store.append(entry.clone()).unwrap();
    }
    store.snapshot().unwrap();
    assert_eq!(fs::metadata(temp.path().join(LOG_FILE)).unwrap().len(), 0);
    for entry in tail {
        store.append(entry.clone()).unwrap();
    }
    let last = store.image();
    drop(store);
    let reopened = reopen(temp.path());
    assert_eq!(reopened.image(), last);
    assert_eq!(reopened.recovery_report().snapshot_index, Some(4));
    assert_eq!(
        reopened.recovery_report().replayed_entries,
        tail.len() as u64
    );
}

#[test]
fn automatic_snapshots_every_n_entries() {
    let temp = tempfile::tempdir().unwrap();
    let interval = 4;
    let mut store = MetadataStore::open_with_options(temp.path(), options(interval)).unwrap();
    let images = append_history(&mut store);
    let entries = history().len() as u64;
    assert!(
        !entries.is_multiple_of(interval),
        "history must leave a tail after the last snapshot"
    );
    let reopened = reopen(temp.path());
    let snapshot_index = entries / interval * interval;
    assert_eq!(
        reopened.recovery_report().snapshot_index,
        Some(snapshot_index)
    );
    assert_eq!(
        reopened.recovery_report().replayed_entries,
        entries - snapshot_index
    );
    assert_eq!(reopened.image(), *images.last().unwrap());
}

#[test]
fn crash_between_snapshot_and_log_truncation_is_harmless() {
    let temp = tempfile::tempdir().unwrap();
    let mut store = reopen(temp.path());
    let images = append_history(&mut store);
    let full_log = fs::read(temp.path().join(LOG_FILE)).unwrap();
    store.snapshot().unwrap();
    drop(store);
    // As if the crash hit after the snapshot rename but before the log was emptied.
    fs::write(temp.path().join(LOG_FILE), &full_log).unwrap();
    let mut reopened = reopen(temp.path());
    assert_eq!(reopened.image(), *images.last().unwrap());
    assert_eq!(reopened.recovery_report().replayed_entries, 0);
    let next = reopened.append(vec![register(3)]).unwrap();
    drop(reopened);
    assert_eq!(reopen(temp.path()).image(), next);
}

#[test]
fn torn_tail_at_every_byte_recovers_the_valid_prefix() {
    let temp = tempfile::tempdir().unwrap();
    let source = temp.path().join("source");
    let mut store = reopen(&source);
    let images = append_history(&mut store);
    drop(store);
    let log_bytes = fs::read(source.join(LOG_FILE)).unwrap();
    let boundaries = frame_boundaries(&log_bytes);
    assert_eq!(boundaries.len(), images.len());
    assert_eq!(*boundaries.last().unwrap(), log_bytes.len());

    for cut in 0..=log_bytes.len() {
        let dir = temp.path().join(format!("cut-{cut}"));
        copy_dir_with_log(&source, &dir, &log_bytes[..cut]);
        let whole_frames = boundaries.iter().filter(|end| **end <= cut).count() - 1;
        let mut store = reopen(&dir);
        assert_eq!(store.image(), images[whole_frames], "cut at {cut}");
        assert_eq!(
            fs::metadata(dir.join(LOG_FILE)).unwrap().len(),
            boundaries[whole_frames] as u64,
            "cut at {cut}"
        );
        // The repaired log accepts appends, and they survive a reopen.
        let after = store.append(vec![register(7)]).unwrap();
        drop(store);
        assert_eq!(reopen(&dir).image(), after, "cut at {cut}");
        fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn flipped_byte_recovers_the_prefix_before_the_damaged_entry() {
    let temp = tempfile::tempdir().unwrap();
    let source = temp.path().join("source");
    let mut store = reopen(&source);
    let images = append_history(&mut store);
    drop(store);
    let log_bytes = fs::read(source.join(LOG_FILE)).unwrap();
    let boundaries = frame_boundaries(&log_bytes);

    for position in 0..log_bytes.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut damaged = log_bytes.clone();
            damaged[position] ^= flip;
            let dir = temp.path().join(format!("flip-{position}-{flip}"));
            copy_dir_with_log(&source, &dir, &damaged);
            let damaged_frame = boundaries.iter().filter(|end| **end <= position).count() - 1;
            let store = reopen(&dir);
            assert_eq!(
                store.image(),
                images[damaged_frame],
                "flip {flip:#x} at {position}"
            );
            drop(store);
            fs::remove_dir_all(&dir).unwrap();
        }
    }
}

#[test]
fn damaged_snapshot_refuses_to_open() {
    let temp = tempfile::tempdir().unwrap();
    let mut store = reopen(temp.path());
    append_history(&mut store);
    store.snapshot().unwrap();
    drop(store);
    let path = temp.path().join(SNAPSHOT_FILE);
    let good = fs::read(&path).unwrap();
    for position in [0, 5, 9, good.len() / 2, good.len() - 1] {
        let mut damaged = good.clone();
        damaged[position] ^= 0x10;
        fs::write(&path, &damaged).unwrap();
        let error = MetadataStore::open(temp.path()).err().unwrap();
        assert!(
            matches!(error, MetaError::Corrupt(_)),
            "{position}: {error:?}"
        );
    }
    let mut trailing = good.clone();
    trailing.push(0);
    fs::write(&path, &trailing).unwrap();
    assert!(matches!(
        MetadataStore::open(temp.path()),
        Err(MetaError::Corrupt(_))
    ));
    fs::write(&path, &good[..good.len() - 1]).unwrap();
    assert!(matches!(
        MetadataStore::open(temp.path()),
        Err(MetaError::Corrupt(_))
    ));
    fs::write(&path, &good).unwrap();
    MetadataStore::open(temp.path()).unwrap();
}

#[test]
fn snapshot_of_another_cluster_refuses_to_open() {
    let temp = tempfile::tempdir().unwrap();
    let mut store = reopen(temp.path());
    store.append(vec![register(1)]).unwrap();
    store.snapshot().unwrap();
    drop(store);
    let properties = MetaProperties {
        cluster_id: "someone-else".into(),
    };
    fs::write(temp.path().join(PROPERTIES_FILE), properties.to_text()).unwrap();
    let error = MetadataStore::open(temp.path()).err().unwrap();
    assert!(error.to_string().contains("someone-else"), "{error}");
}

#[test]
fn metadata_without_properties_refuses_to_open() {
    let temp = tempfile::tempdir().unwrap();
    let mut store = reopen(temp.path());
    store.append(vec![register(1)]).unwrap();
    drop(store);
    fs::remove_file(temp.path().join(PROPERTIES_FILE)).unwrap();
    assert!(matches!(
        MetadataStore::open(temp.path()),
        Err(MetaError::Corrupt(_))
    ));
}

fn write_entries(dir: &Path, entries: &[(u64, Vec<MetadataRecord>)]) {
    let mut bytes = Vec::new();
    for (index, records) in entries {
        let payload = entry::encode_entry(*index, records).unwrap();
        bytes.extend(frame::encode_frame(&payload).unwrap());
    }
    fs::write(dir.join(LOG_FILE), bytes).unwrap();
}

#[test]
fn index_gap_or_regression_is_corruption() {
    let temp = tempfile::tempdir().unwrap();
    drop(reopen(temp.path()));
    write_entries(
        temp.path(),
        &[(1, vec![register(1)]), (3, vec![register(2)])],
    );
    assert!(matches!(
        MetadataStore::open(temp.path()),
        Err(MetaError::Corrupt(_))
    ));
    write_entries(
        temp.path(),
        &[
            (1, vec![register(1)]),
            (2, vec![register(2)]),
            (1, vec![register(3)]),
        ],
    );
    assert!(matches!(
        MetadataStore::open(temp.path()),
        Err(MetaError::Corrupt(_))
    ));
    write_entries(temp.path(), &[(2, vec![register(1)])]);
    assert!(matches!(
        MetadataStore::open(temp.path()),
        Err(MetaError::Corrupt(_))
    ));
}

#[test]
fn checksummed_entry_that_does_not_apply_is_corruption() {
    let temp = tempfile::tempdir().unwrap();
    drop(reopen(temp.path()));
    write_entries(temp.path(), &[(1, vec![create("orphan", 1, 1)])]);
    let error = MetadataStore::open(temp.path()).err().unwrap();
    assert!(error.to_string().contains("does not apply"), "{error}");

    let garbage = frame::encode_frame(b"not json").unwrap();
    fs::write(temp.path().join(LOG_FILE), garbage).unwrap();
    assert!(matches!(
        MetadataStore::open(temp.path()),
        Err(MetaError::Corrupt(_))
    ));
}

#[test]
fn leftover_temp_files_are_removed() {
    let temp = tempfile::tempdir().unwrap();
    drop(reopen(temp.path()));
    let leftover = temp.path().join(format!("{SNAPSHOT_FILE}.tmp"));
    fs::write(&leftover, b"half a snapshot").unwrap();
    drop(reopen(temp.path()));
    assert!(!leftover.exists());
}

// ---- property test: random histories, applied in memory vs. appended and replayed from disk ----

fn arb_config() -> impl Strategy<Value = (String, String)> {
    prop::sample::select(vec![
        ("retention.ms", "1000"),
        ("retention.ms", "-1"),
        ("retention.ms", "soon"),
        ("cleanup.policy", "compact,delete"),
        ("segment.bytes", "100"),
        ("min.insync.replicas", "2"),
        ("no.such.config", "1"),
    ])
    .prop_map(|(name, value)| (name.to_string(), value.to_string()))
}

fn arb_topic_id() -> impl Strategy<Value = Uuid> {
    (0u128..5).prop_map(Uuid::from_u128)
}

fn arb_replicas() -> impl Strategy<Value = Vec<i32>> {
    prop::collection::vec(0i32..4, 0..3)
}

fn arb_record() -> impl Strategy<Value = MetadataRecord> {
    let name = prop::sample::select(vec!["a", "b", "a.b", "a_b", "bad name"]);
    prop_oneof![
        (0i32..4, 0u16..3).prop_map(|(node_id, port)| MetadataRecord::RegisterBroker {
            node_id,
            host: format!("h{node_id}"),
            port,
            rack: None,
            incarnation_id: None,
        }),
        (
            name,
            arb_topic_id(),
            prop::collection::vec(arb_replicas(), 0..3),
            prop::collection::btree_map("[a-z.]{1,3}", "[0-9]{1,2}", 0..1),
            prop::collection::vec(arb_config(), 0..2)
        )
            .prop_map(|(name, topic_id, replica_lists, _, configs)| {
                MetadataRecord::CreateTopic {
                    name: name.to_string(),
                    topic_id,
                    partitions: (0..)
                        .zip(replica_lists)
                        .map(|(partition, replicas)| PartitionAssignment {
                            partition,
                            replicas,
                        })
                        .collect(),
                    configs: configs.into_iter().collect(),
                }
            }),
        (arb_topic_id(), 0i32..4, arb_replicas()).prop_map(|(topic_id, first, replicas)| {
            MetadataRecord::CreatePartitions {
                topic_id,
                new_partitions: vec![PartitionAssignment {
                    partition: first,
                    replicas,
                }],
            }
        }),
        arb_topic_id().prop_map(|topic_id| MetadataRecord::DeleteTopic { topic_id }),
        (0i32..3, 0i64..5000).prop_map(|(node_id, next_producer_id)| {
            MetadataRecord::AllocateProducerIds {
                node_id,
                next_producer_id,
            }
        }),
        (
            prop::sample::select(vec!["metadata.version", "group.version", ""]),
            -1i16..3
        )
            .prop_map(|(name, level)| MetadataRecord::FeatureLevel {
                name: name.to_string(),
                level,
            }),
        (
            arb_topic_id(),
            prop::collection::vec(arb_config(), 0..3),
            any::<bool>()
        )
            .prop_map(|(topic_id, set, delete_retention)| {
                MetadataRecord::AlterTopicConfigs {
                    topic_id,
                    set: set.into_iter().collect(),
                    delete: if delete_retention {
                        vec!["retention.ms".into()]
                    } else {
                        vec![]
                    },
                }
            }),
        (prop::option::of(0i32..3), any::<bool>()).prop_map(|(node_id, set)| {
            MetadataRecord::AlterBrokerConfigs {
                node_id,
                set: if set {
                    BTreeMap::from([("log.retention.hours".into(), "1".into())])
                } else {
                    BTreeMap::new()
                },
                delete: if set {
                    vec![]
                } else {
                    vec!["log.retention.hours".into()]
                },
            }
        }),
        (
            prop::sample::select(vec!["", "g1", "g2"]),
            prop::sample::select(vec!["44000", "46000", "x"]),
            any::<bool>()
        )
            .prop_map(|(group_id, session_ms, set)| {
                MetadataRecord::AlterGroupConfigs {
                    group_id: group_id.to_string(),
                    set: if set {
                        BTreeMap::from([(
                            "consumer.session.timeout.ms".into(),
                            session_ms.to_string(),
                        )])
                    } else {
                        BTreeMap::new()
                    },
                    delete: if set {
                        vec![]
                    } else {
                        vec!["consumer.session.timeout.ms".into()]
                    },
                }
            }),
        (arb_topic_id(), 0i32..3, -1i32..4, arb_replicas(), 0i32..4).prop_map(
            |(topic_id, partition, leader, isr, leader_epoch)| MetadataRecord::SetPartitionLeader {
                topic_id,
                partition,
                leader,
                isr,
                leader_epoch,
                partition_epoch: None,
            }
        ),
    ]
}

/// A step of a random history: either a fully random record (mostly invalid, exercising
/// rejections) or a record aimed at the current model image (mostly valid, exercising state).
#[derive(Clone, Debug)]
enum Step {
    Raw(MetadataRecord),
    ChangeLeader {
        seed: usize,
        drop_from_isr: bool,
        offline: bool,
    },
    GrowTopic {
        seed: usize,
        broker: i32,
    },
    DeleteTopic {
        seed: usize,
    },
    AlterTopicConfigs {
        seed: usize,
        set: Vec<(String, String)>,
        delete_retention: bool,
    },
    CreateTopic {
        name_seed: usize,
        topic_id: Uuid,
        partitions: i32,
        replication_factor: usize,
    },
}

fn arb_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => arb_record().prop_map(Step::Raw),
        2 => (any::<usize>(), any::<bool>(), any::<bool>()).prop_map(|(seed, drop_from_isr, offline)| Step::ChangeLeader { seed, drop_from_isr, offline }),
        1 => (any::<usize>(), 0i32..3).prop_map(|(seed, broker)| Step::GrowTopic { seed, broker }),
        1 => any::<usize>().prop_map(|seed| Step::DeleteTopic { seed }),
        1 => (any::<usize>(), prop::collection::vec(arb_config(), 0..2), any::<bool>()).prop_map(
            |(seed, set, delete_retention)| Step::AlterTopicConfigs { seed, set, delete_retention }
        ),
        2 => (any::<usize>(), 1u128..1000, 1i32..4, 1usize..4).prop_map(|(name_seed, id, partitions, replication_factor)| Step::CreateTopic { name_seed, topic_id: Uuid::from_u128(id), partitions, replication_factor }),
    ]
}

fn pick_topic(image: &MetadataImage, seed: usize) -> Option<&crate::TopicInfo> {
    let count = image.topics.len();
    if count == 0 {
        return None;
    }
    image.topics.values().nth(seed % count).map(Arc::as_ref)
}

fn resolve(step: Step, image: &MetadataImage) -> MetadataRecord {
    let nothing = MetadataRecord::DeleteTopic {
        topic_id: Uuid::nil(),
    };
    match step {
        Step::Raw(record) => record,
        Step::ChangeLeader {
            seed,
            drop_from_isr,
            offline,
        } => {
            let Some(topic) = pick_topic(image, seed) else {
                return nothing;
            };
            let partition = &topic.partitions[seed % topic.partitions.len()];
            let mut isr = partition.replicas.clone();
            let shift = seed % isr.len();
            isr.rotate_left(shift);
            if drop_from_isr && isr.len() > 1 {
                isr.pop();
            }
            let leader = if offline { NO_LEADER } else { isr[0] };
            MetadataRecord::SetPartitionLeader {
                topic_id: topic.topic_id,
                partition: partition.partition,
                leader,
                isr,
                leader_epoch: partition.leader_epoch + 1,
                partition_epoch: None,
            }
        }
        Step::GrowTopic { seed, broker } => {
            let Some(topic) = pick_topic(image, seed) else {
                return nothing;
            };
            let factor = topic.partitions[0].replicas.len();
            MetadataRecord::CreatePartitions {
                topic_id: topic.topic_id,
                new_partitions: vec![PartitionAssignment {
                    partition: topic.partitions.len() as i32,
                    replicas: (0..factor as i32)
                        .map(|offset| (broker + offset) % 3)
                        .collect(),
                }],
            }
        }
        Step::DeleteTopic { seed } => match pick_topic(image, seed) {
            Some(topic) => MetadataRecord::DeleteTopic {
                topic_id: topic.topic_id,
            },
            None => nothing,
        },
        Step::AlterTopicConfigs {
            seed,
            set,
            delete_retention,
        } => match pick_topic(image, seed) {
            Some(topic) => MetadataRecord::AlterTopicConfigs {
                topic_id: topic.topic_id,
                set: set.into_iter().collect(),
                delete: if delete_retention {
                    vec!["retention.ms".into()]
                } else {
                    vec![]
                },
            },
            None => nothing,
        },
        Step::CreateTopic {
            name_seed,
            topic_id,
            partitions,
            replication_factor,
        } => {
            let names = ["t0", "t1", "t.2", "t_2", "t3"];
            MetadataRecord::CreateTopic {
                name: names[name_seed % names.len()].to_string(),
                topic_id,
                partitions: (0..partitions)
                    .map(|partition| PartitionAssignment {
                        partition,
                        replicas: (0..replication_factor as i32)
                            .map(|offset| (partition + offset) % 3)
                            .collect(),
                    })
                    .collect(),
                configs: BTreeMap::new(),
            }
        }
    }
}

fn arb_history() -> impl Strategy<Value = Vec<Vec<Step>>> {
    prop::collection::vec(prop::collection::vec(arb_step(), 1..3), 1..40)
}

/// Keeps the generator honest: across sampled histories every record kind must be accepted
/// at least once (and rejected at least once), or the property test proves little.
#[test]
fn random_histories_exercise_every_record_kind() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use std::collections::BTreeSet;

    let mut runner = TestRunner::deterministic();
    let mut accepted_kinds = BTreeSet::new();
    let mut rejected_entries = 0;
    for _ in 0..60 {
        let history = arb_history().new_tree(&mut runner).unwrap().current();
        let brokers = [register(0), register(1), register(2)];
        let mut model = apply_entry(&MetadataImage::empty("c"), 1, &brokers).unwrap();
        for steps in history {
            let records: Vec<_> = steps
                .into_iter()
                .map(|step| resolve(step, &model))
                .collect();
            match apply_entry(&model, model.offset + 1, &records) {
                Ok(next) => {
                    accepted_kinds.extend(records.iter().map(MetadataRecord::kind));
                    model = next;
                }
                Err(_) => rejected_entries += 1,
            }
        }
    }
    assert_eq!(accepted_kinds.len(), 10, "accepted only {accepted_kinds:?}");
    assert!(rejected_entries > 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn random_histories_replay_from_disk_to_the_same_image(
        entries in arb_history(),
        snapshot_interval_entries in 1u64..8,
    ) {
        let temp = tempfile::tempdir().unwrap();
        let mut store = MetadataStore::open_with_options(temp.path(), options(snapshot_interval_entries)).unwrap();
        // Start with brokers so that many topic records are valid.
        let mut model = store.append(vec![register(0), register(1), register(2)]).unwrap().as_ref().clone();
        let mut accepted = 0;
        for steps in entries {
            let records: Vec<_> = steps.into_iter().map(|step| resolve(step, &model)).collect();
            let expected = apply_entry(&model, model.offset + 1, &records);
            let actual = store.append(records);
            match (expected, actual) {
                (Ok(expected), Ok(actual)) => {
                    prop_assert_eq!(&expected, actual.as_ref());
                    expected.check_invariants().map_err(TestCaseError::fail)?;
                    model = expected;
                    accepted += 1;
                }
                (Err(expected), Err(actual)) => {
                    prop_assert!(actual.is_validation_error());
                    prop_assert_eq!(expected.kafka_error_code(), actual.kafka_error_code());
                    let current = store.image();
                    prop_assert_eq!(current.as_ref(), &model);
                }
                (expected, actual) => {
                    return Err(TestCaseError::fail(format!("model {expected:?} vs store {actual:?}")));
                }
            }
        }
        prop_assert!(accepted <= model.offset as usize);
        let restored = restore(&model.cluster_id, model.offset, &snapshot_records(&model)).unwrap();
        prop_assert_eq!(&restored, &model);
        drop(store);
        let reopened = MetadataStore::open_with_options(temp.path(), options(snapshot_interval_entries)).unwrap();
        let replayed = reopened.image();
        prop_assert_eq!(replayed.as_ref(), &model);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever bytes the log holds, open never panics: it recovers (cutting the invalid part)
    /// or reports corruption, and a recovered store accepts appends.
    #[test]
    fn arbitrary_log_bytes_never_panic(
        garbage in prop::collection::vec(any::<u8>(), 0..512),
        keep_valid_prefix in any::<bool>(),
    ) {
        let temp = tempfile::tempdir().unwrap();
        let mut store = reopen(temp.path());
        if keep_valid_prefix {
            store.append(vec![register(1)]).unwrap();
        }
        drop(store);
        let mut log = fs::read(temp.path().join(LOG_FILE)).unwrap();
        log.extend(&garbage);
        fs::write(temp.path().join(LOG_FILE), &log).unwrap();
        match MetadataStore::open_with_options(temp.path(), options(u64::MAX)) {
            Ok(mut store) => {
                let expected_offset = u64::from(keep_valid_prefix);
                prop_assert!(store.image().offset >= expected_offset);
                prop_assert!(store.append(vec![register(9)]).is_ok());
            }
            Err(error) => prop_assert!(matches!(error, MetaError::Corrupt(_)), "{error:?}"),
        }
    }

    #[test]
    fn arbitrary_properties_text_never_panics(text in "\\PC{0,200}") {
        let _ = MetaProperties::parse(&text);
    }
}

// ---- process crash: SIGKILL a writer at random moments, check every acknowledged entry ----

const CHILD_DIR_ENV: &str = "QUILL_META_SIGKILL_CHILD_DIR";
const CHILD_SNAPSHOT_INTERVAL_ENTRIES: u64 = 7;

/// Entry `index` of the writer's deterministic history: register broker `index`.
fn child_entry(index: u64) -> Vec<MetadataRecord> {
    vec![MetadataRecord::RegisterBroker {
        node_id: i32::try_from(index).unwrap(),
        host: format!("host-{index}"),
        port: 9092,
        rack: None,
        incarnation_id: None,
    }]
}

/// Not a test on its own: the writer process `sigkill_loses_no_acknowledged_entry` spawns.
/// It appends forever, printing each acknowledged index after `append` returns.
#[test]
#[ignore = "child process of sigkill_loses_no_acknowledged_entry"]
fn sigkill_writer_child() {
    use std::io::Write as _;
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let mut store =
        MetadataStore::open_with_options(Path::new(&dir), options(CHILD_SNAPSHOT_INTERVAL_ENTRIES))
            .unwrap();
    let mut stdout = std::io::stdout();
    loop {
        let index = store.image().offset + 1;
        store.append(child_entry(index)).unwrap();
        writeln!(stdout, "acked {index}").unwrap();
        stdout.flush().unwrap();
    }
}

#[cfg(unix)]
#[test]
fn sigkill_loses_no_acknowledged_entry() {
    use std::io::BufRead as _;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let temp = tempfile::tempdir().unwrap();
    let mut highest_acked = 0;
    for round in 0..6u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "store::tests::sigkill_writer_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR_ENV, temp.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        // Read acknowledgements on a thread so the kill time does not depend on output.
        let reader = std::thread::spawn(move || {
            let mut acked = Vec::new();
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(index) = line.strip_prefix("acked ") {
                    acked.push(index.parse::<u64>().unwrap());
                }
            }
            acked
        });
        let run_for = Duration::from_millis(150 + 70 * round);
        let started = Instant::now();
        while started.elapsed() < run_for {
            std::thread::sleep(Duration::from_millis(10));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let acked = reader.join().unwrap();
        highest_acked = acked
            .last()
            .copied()
            .unwrap_or(highest_acked)
            .max(highest_acked);

        let store = reopen(temp.path());
        let image = store.image();
        assert!(
            image.offset >= highest_acked,
            "round {round}: acknowledged entry {highest_acked} lost (recovered offset {})",
            image.offset
        );
        // The recovered image is exactly the first `offset` entries of the writer's history.
        let expected = (1..=image.offset)
            .fold(MetadataImage::empty(store.cluster_id()), |model, index| {
                apply_entry(&model, index, &child_entry(index)).unwrap()
            });
        assert_eq!(image.as_ref(), &expected, "round {round}");
        highest_acked = image.offset;
    }
    assert!(highest_acked > 0, "the writer never acknowledged anything");
    eprintln!("sigkill: {highest_acked} entries acknowledged over 6 kills");
}
