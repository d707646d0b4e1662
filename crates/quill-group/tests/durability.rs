//! Durability: the `__consumer_offsets` records written by one coordinator, stored as v2 batches
//! (as the broker will), rebuild the same state in another; loading and unloading partitions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use quill_group::*;
use tokio::sync::Notify;

/// Stores each append as one v2 batch and decodes them on read, like the broker's log-backed
/// store; `gate_reads` makes `read_all` wait (a slow load).
#[derive(Clone, Default)]
struct BatchStore {
    batches: Arc<Mutex<HashMap<i32, Vec<Bytes>>>>,
    read_gate: Arc<Mutex<Option<Arc<Notify>>>>,
}

impl BatchStore {
    fn gate_reads(&self) -> Arc<Notify> {
        let notify = Arc::new(Notify::new());
        *self.read_gate.lock().unwrap() = Some(notify.clone());
        notify
    }

    fn records(&self, partition: i32) -> Vec<StoredRecord> {
        let batches = self.batches.lock().unwrap();
        let bytes: Vec<u8> = batches
            .get(&partition)
            .into_iter()
            .flatten()
            .flat_map(|b| b.to_vec())
            .collect();
        batch::decode_batches(&bytes).unwrap()
    }
}

impl OffsetsStore for BatchStore {
    fn append(
        &self,
        partition: i32,
        records: Vec<StoredRecord>,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        let encoded = batch::encode_batch(&records, 1_700_000_000_000).unwrap();
        quill_log::validate_producer_batch(&encoded, 1 << 24).unwrap();
        self.batches
            .lock()
            .unwrap()
            .entry(partition)
            .or_default()
            .push(encoded);
        Box::pin(async { Ok(()) })
    }

    fn read_all(
        &self,
        partition: i32,
    ) -> BoxFuture<'static, Result<Vec<StoredRecord>, StoreError>> {
        let gate = self.read_gate.lock().unwrap().clone();
        let store = self.clone();
        Box::pin(async move {
            if let Some(gate) = gate {
                gate.notified().await;
            }
            Ok(store.records(partition))
        })
    }
}

async fn coordinator_on(store: &BatchStore) -> GroupCoordinator {
    let coordinator = GroupCoordinator::new(GroupConfig::for_tests(), Arc::new(store.clone()));
    coordinator.load_all_partitions().await.unwrap();
    coordinator
}

/// Everything observable about a coordinator's groups.
fn snapshot(c: &GroupCoordinator) -> Vec<(DescribedGroup, Vec<FetchedOffset>)> {
    c.list_groups(&[], &[])
        .groups
        .into_iter()
        .map(|g| {
            (
                c.describe_group(&g.group_id),
                c.fetch_offsets(&g.group_id, None, false).unwrap(),
            )
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn replaying_the_records_rebuilds_the_same_state() {
    let store = BatchStore::default();
    let a = coordinator_on(&store).await;
    // A stable consumer group with offsets, one of them later deleted.
    let subscription = consumer_protocol::encode_subscription(&["orders"]);
    let mut request = join_request(GROUP, "");
    request.protocols = protocols(&[("range", &subscription)]);
    let (ids, generation) = {
        let first = a.join_group(JoinGroupRequest {
            group_instance_id: Some("static-1".into()),
            ..request.clone()
        });
        let second_id = member_id_for(&a, &request).await;
        let second = a.join_group(JoinGroupRequest {
            member_id: second_id,
            ..request.clone()
        });
        let (r1, r2) = tokio::join!(first, second);
        complete_sync(&a, GROUP, vec![r1, r2]).await
    };
    let commits = commit(
        GROUP,
        &ids[0],
        generation,
        &[("orders", 0, 100), ("orders", 1, 200), ("old", 0, 5)],
    );
    assert!(all_ok(&a.commit_offsets(commits).await));
    assert!(all_ok(
        &a.commit_offsets(commit(GROUP, &ids[1], generation, &[("orders", 1, 250)]))
            .await
    ));
    a.delete_offsets(GROUP, vec![TopicPartition::new("old", 0)])
        .await
        .unwrap();
    // A simple consumer's offsets, an emptied group, a deleted group.
    assert!(all_ok(
        &a.commit_offsets(commit("simple", "", -1, &[("t", 3, 33)]))
            .await
    ));
    stable_group(&a, "emptied", 1).await;
    let emptied = a.describe_group("emptied").members[0].member_id.clone();
    a.leave_group(
        "emptied",
        vec![LeavingMember {
            member_id: emptied,
            group_instance_id: None,
        }],
    );
    a.commit_offsets(commit("doomed", "", -1, &[("t", 0, 1)]))
        .await;
    a.delete_groups(vec!["doomed".into()]).await;
    settle().await;
    let before = snapshot(&a);
    assert_eq!(before.len(), 3);

    // Records sit in the partition Kafka's hash picks for their group.
    for group in [GROUP, "simple", "emptied", "doomed"] {
        let partition = partition_for_group(group, 50);
        let keys: Vec<records::RecordKey> = store
            .records(partition)
            .iter()
            .map(|r| records::decode_key(&r.key).unwrap())
            .collect();
        assert!(
            keys.iter().any(|k| k.group() == Some(group)),
            "{group} in partition {partition}"
        );
    }

    let b = coordinator_on(&store).await;
    assert_eq!(snapshot(&b), before);
    // The loaded group knows its subscriptions again (from the stored member metadata).
    let refused = b
        .delete_offsets(GROUP, vec![TopicPartition::new("orders", 0)])
        .await
        .unwrap();
    assert_eq!(refused[0].error, Some(GroupError::GroupSubscribedToTopic));
    // The loaded members carry on in the stored generation …
    assert_eq!(b.heartbeat(heartbeat(GROUP, &ids[1], generation)), Ok(()));
    // … the static member mapping survived (a restart gets its assignment back) …
    let static_id = ids
        .iter()
        .find(|id| id.starts_with("static-1-"))
        .unwrap()
        .clone();
    let rejoined = b
        .join_group(JoinGroupRequest {
            group_instance_id: Some("static-1".into()),
            ..request.clone()
        })
        .await;
    assert_eq!(rejoined.generation_id, generation);
    let mut sync = sync_request(GROUP, &rejoined.member_id, generation);
    sync.group_instance_id = Some("static-1".into());
    assert_eq!(
        b.sync_group(sync).await.assignment,
        assignment_for(&static_id)
    );
    // … and loaded members that never heartbeat expire after their session timeout.
    tokio::time::sleep(Duration::from_millis(SESSION_TIMEOUT_MS as u64 + 1)).await;
    assert_ne!(b.describe_group(GROUP).state, GroupState::Stable);
}

#[tokio::test(start_paused = true)]
async fn requests_during_a_load_are_told_to_retry() {
    let store = BatchStore::default();
    let first = coordinator_on(&store).await;
    first
        .commit_offsets(commit("simple", "", -1, &[("t", 0, 8)]))
        .await;
    let gate = store.gate_reads();
    let c = GroupCoordinator::new(GroupConfig::for_tests(), Arc::new(store.clone()));
    let partition = c.partition_for("simple");
    // Not owned yet: NOT_COORDINATOR.
    assert_eq!(
        c.fetch_offsets("simple", None, false),
        Err(GroupError::NotCoordinator)
    );
    let loading = {
        let c = c.clone();
        tokio::spawn(async move { c.load_partition(partition).await })
    };
    settle().await;
    assert_eq!(
        c.fetch_offsets("simple", None, false),
        Err(GroupError::CoordinatorLoadInProgress)
    );
    let join = c.join_group(join_request("simple", "")).await;
    assert_eq!(join.error, Some(GroupError::CoordinatorLoadInProgress));
    assert_eq!(
        c.heartbeat(heartbeat("simple", "m", 1)),
        Ok(()),
        "Kafka answers NONE while loading"
    );
    assert_eq!(
        c.list_groups(&[], &[]).error,
        Some(GroupError::CoordinatorLoadInProgress)
    );
    gate.notify_one();
    loading.await.unwrap().unwrap();
    assert_eq!(c.fetch_offsets("simple", None, false).unwrap()[0].offset, 8);
}

#[tokio::test(start_paused = true)]
async fn partitions_marked_loading_answer_load_in_progress_until_loaded() {
    let store = BatchStore::default();
    let first = coordinator_on(&store).await;
    first
        .commit_offsets(commit("simple", "", -1, &[("t", 0, 8)]))
        .await;
    let gate = store.gate_reads();
    let c = GroupCoordinator::new(GroupConfig::for_tests(), Arc::new(store.clone()));
    // What the broker does before it serves after a restart: nothing read yet, but no request
    // may answer NOT_COORDINATOR (clients would go looking for another coordinator).
    c.begin_loading_all();
    assert_eq!(
        c.fetch_offsets("simple", None, false),
        Err(GroupError::CoordinatorLoadInProgress)
    );
    let loading = {
        let c = c.clone();
        tokio::spawn(async move { c.load_all_partitions().await })
    };
    settle().await;
    assert_eq!(
        c.fetch_offsets("simple", None, false),
        Err(GroupError::CoordinatorLoadInProgress)
    );
    // Partitions load concurrently: every partition's read is waiting at once, and one
    // wake-up of all waiters completes the load (a sequential load would still be stuck).
    gate.notify_waiters();
    loading.await.unwrap().unwrap();
    assert_eq!(c.fetch_offsets("simple", None, false).unwrap()[0].offset, 8);
}

#[tokio::test(start_paused = true)]
async fn unloading_answers_parked_requests_not_coordinator() {
    let store = BatchStore::default();
    let c = coordinator_on(&store).await;
    let (ids, generation) = stable_group(&c, GROUP, 2).await;
    let join = spawn_join(&c, join_request(GROUP, &ids[0]));
    settle().await;
    assert!(!join.is_finished());
    c.unload_partition(c.partition_for(GROUP));
    assert_eq!(join.await.unwrap().error, Some(GroupError::NotCoordinator));
    assert_eq!(
        c.heartbeat(heartbeat(GROUP, &ids[1], generation)),
        Err(GroupError::NotCoordinator)
    );
    // Becoming coordinator again reloads the stored generation.
    c.load_partition(c.partition_for(GROUP)).await.unwrap();
    assert_eq!(c.heartbeat(heartbeat(GROUP, &ids[1], generation)), Ok(()));
}

#[tokio::test(start_paused = true)]
async fn undecodable_records_are_skipped_on_load() {
    let store = MemoryStore::new();
    let partition = partition_for_group("simple", 50);
    store
        .append(
            partition,
            vec![
                StoredRecord {
                    key: Bytes::from_static(b"\x7f"),
                    value: None,
                },
                StoredRecord {
                    key: records::encode_offset_commit_key("simple", "t", 0).unwrap(),
                    value: Some(Bytes::from_static(b"\x00\x03garbage")),
                },
                StoredRecord {
                    key: records::encode_offset_commit_key("simple", "t", 1).unwrap(),
                    value: Some(
                        records::encode_offset_commit_value(&records::OffsetCommitValue {
                            offset: 4,
                            leader_epoch: -1,
                            metadata: String::new(),
                            commit_timestamp_ms: 0,
                            expire_timestamp_ms: None,
                        })
                        .unwrap(),
                    ),
                },
            ],
        )
        .await
        .unwrap();
    let c = GroupCoordinator::new(GroupConfig::for_tests(), Arc::new(store));
    c.load_all_partitions().await.unwrap();
    let fetched = c.fetch_offsets("simple", None, false).unwrap();
    assert_eq!(
        fetched
            .iter()
            .map(|f| (f.partition, f.offset))
            .collect::<Vec<_>>(),
        vec![(1, 4)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_compacted_partition_loads_the_same_state_as_the_full_log() {
    let store = MemoryStore::new();
    let a = GroupCoordinator::new(GroupConfig::for_tests(), Arc::new(store.clone()));
    a.load_all_partitions().await.unwrap();
    let (ids, generation) = stable_group(&a, GROUP, 2).await;
    for round in 0..10 {
        let commits = commit(
            GROUP,
            &ids[0],
            generation,
            &[("t", 0, round), ("t", 1, round * 2), ("u", 0, round)],
        );
        assert!(all_ok(&a.commit_offsets(commits).await));
    }
    let mut explicit_retention = commit("simple", "", -1, &[("t", 0, 1)]);
    explicit_retention.retention_time_ms = Some(86_400_000);
    a.commit_offsets(explicit_retention).await;
    a.commit_offsets(commit("simple", "", -1, &[("t", 0, 2), ("t", 1, 3)]))
        .await;
    // A rebalance in progress: the generation in memory has not been stored.
    let rejoin = spawn_join(&a, join_request(GROUP, &ids[0]));
    let follower = spawn_join(&a, join_request(GROUP, &ids[1]));
    let (_, _) = (rejoin.await.unwrap(), follower.await.unwrap());
    assert_eq!(
        a.describe_group(GROUP).state,
        GroupState::CompletingRebalance
    );

    let replayed_from_full_log = {
        let b = GroupCoordinator::new(GroupConfig::for_tests(), Arc::new(store.clone()));
        b.load_all_partitions().await.unwrap();
        snapshot(&b)
    };
    let partitions = store.partitions();
    let before: usize = partitions.iter().map(|p| store.records(*p).len()).sum();
    for partition in &partitions {
        store.compact(*partition);
    }
    let after: usize = partitions.iter().map(|p| store.records(*p).len()).sum();
    assert_eq!(
        after,
        1 + 3 + 2,
        "GROUP's record and 3 offsets, simple's 2 offsets"
    );
    assert!(after < before);
    let c = GroupCoordinator::new(GroupConfig::for_tests(), Arc::new(store.clone()));
    c.load_all_partitions().await.unwrap();
    assert_eq!(snapshot(&c), replayed_from_full_log);
    let simple = c.fetch_offsets("simple", None, false).unwrap();
    assert_eq!(
        simple.iter().map(|o| o.offset).collect::<Vec<_>>(),
        vec![2, 3]
    );
}
