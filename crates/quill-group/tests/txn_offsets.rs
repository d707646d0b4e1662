//! TxnOffsetCommit: pending offsets are invisible until the transaction's marker; abort drops them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use quill_group::*;

fn txn_commit(
    group: &str,
    producer_id: i64,
    entries: &[(&str, i32, i64)],
) -> TxnOffsetCommitRequest {
    TxnOffsetCommitRequest {
        group_id: group.to_owned(),
        producer_id,
        producer_epoch: 0,
        generation_id: -1,
        member_id: String::new(),
        group_instance_id: None,
        partitions: entries
            .iter()
            .map(|(topic, partition, offset)| PartitionCommit {
                topic: (*topic).to_owned(),
                partition: *partition,
                offset: *offset,
                leader_epoch: -1,
                metadata: Some("m".into()),
            })
            .collect(),
    }
}

fn offset_of(c: &GroupCoordinator, group: &str, stable: bool) -> (i64, Option<GroupError>) {
    let fetched = c
        .fetch_offsets(group, Some(vec![TopicPartition::new("in", 0)]), stable)
        .unwrap();
    (fetched[0].offset, fetched[0].error.clone())
}

#[tokio::test(start_paused = true)]
async fn committed_transaction_publishes_offsets_durably() {
    let h = test_harness().await;
    let c = &h.coordinator;
    assert!(all_ok(
        &c.commit_offsets(commit("g", "", -1, &[("in", 0, 5)])).await
    ));
    let results = c
        .txn_commit_offsets(txn_commit("g", 77, &[("in", 0, 10)]))
        .await;
    assert!(results.iter().all(|r| r.error.is_none()));
    assert_eq!(offset_of(c, "g", false), (5, None));
    assert_eq!(
        offset_of(c, "g", true),
        (-1, Some(GroupError::UnstableOffsetCommit))
    );
    let partition = c.partition_for("g");
    // The offsets are in the log already, as the producer's open transaction.
    let stored_before = h.store.records(partition).len();
    // A marker for another producer or partition changes nothing.
    c.complete_transaction(partition, 78, true).await.unwrap();
    assert_eq!(offset_of(c, "g", false), (5, None));
    h.store.write_marker(partition, 77, true);
    c.complete_transaction(partition, 77, true).await.unwrap();
    assert_eq!(offset_of(c, "g", true), (10, None));
    assert_eq!(h.store.records(partition).len(), stored_before + 1);
    // A retried marker is harmless.
    c.complete_transaction(partition, 77, true).await.unwrap();
    assert_eq!(offset_of(c, "g", false), (10, None));
}

#[tokio::test(start_paused = true)]
async fn aborted_transaction_drops_offsets() {
    let h = test_harness().await;
    let c = &h.coordinator;
    c.txn_commit_offsets(txn_commit("g", 77, &[("in", 0, 10)]))
        .await;
    let partition = c.partition_for("g");
    h.store.write_marker(partition, 77, false);
    c.complete_transaction(partition, 77, false).await.unwrap();
    assert_eq!(offset_of(c, "g", true), (-1, None));
    assert!(h.store.records(partition).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_failed_store_write_refuses_the_commit() {
    let h = test_harness().await;
    let c = &h.coordinator;
    h.store
        .fail_appends(Some(StoreError::Unavailable("down".into())));
    let results = c
        .txn_commit_offsets(txn_commit("g", 77, &[("in", 0, 10)]))
        .await;
    assert!(results[0].error.is_some());
    assert_eq!(offset_of(c, "g", true), (-1, None));
}

#[tokio::test(start_paused = true)]
async fn pending_offsets_survive_a_restart_until_the_marker() {
    let h = test_harness().await;
    let c = &h.coordinator;
    assert!(all_ok(
        &c.commit_offsets(commit("g", "", -1, &[("in", 0, 5)])).await
    ));
    c.txn_commit_offsets(txn_commit("g", 77, &[("in", 0, 10)]))
        .await;
    c.txn_commit_offsets(txn_commit("other", 78, &[("in", 0, 3)]))
        .await;
    let restarted = GroupCoordinator::new(
        GroupConfig::for_tests(),
        std::sync::Arc::new(h.store.clone()),
    );
    restarted.load_all_partitions().await.unwrap();
    assert_eq!(offset_of(&restarted, "g", false), (5, None));
    assert_eq!(
        offset_of(&restarted, "g", true).1,
        Some(GroupError::UnstableOffsetCommit)
    );
    assert_eq!(
        offset_of(&restarted, "other", true).1,
        Some(GroupError::UnstableOffsetCommit)
    );
    let partition = restarted.partition_for("g");
    h.store.write_marker(partition, 77, true);
    restarted
        .complete_transaction(partition, 77, true)
        .await
        .unwrap();
    assert_eq!(offset_of(&restarted, "g", true), (10, None));
    let other_partition = restarted.partition_for("other");
    h.store.write_marker(other_partition, 78, false);
    restarted
        .complete_transaction(other_partition, 78, false)
        .await
        .unwrap();
    assert_eq!(offset_of(&restarted, "other", true), (-1, None));
    // And once more from the log alone.
    let again = GroupCoordinator::new(
        GroupConfig::for_tests(),
        std::sync::Arc::new(h.store.clone()),
    );
    again.load_all_partitions().await.unwrap();
    assert_eq!(offset_of(&again, "g", true), (10, None));
    assert_eq!(offset_of(&again, "other", true), (-1, None));
}

#[tokio::test(start_paused = true)]
async fn membership_is_checked_when_claimed() {
    let h = test_harness().await;
    let c = &h.coordinator;
    let mut request = txn_commit("g", 77, &[("in", 0, 10)]);
    request.generation_id = 3;
    request.member_id = "ghost".into();
    let results = c.txn_commit_offsets(request).await;
    assert_eq!(results[0].error, Some(GroupError::UnknownMemberId));
    let mut big = txn_commit("g", 77, &[("in", 0, 10)]);
    big.partitions[0].metadata = Some("x".repeat(10_000));
    assert!(matches!(
        c.txn_commit_offsets(big).await[0].error,
        Some(GroupError::OffsetMetadataTooLarge { .. })
    ));
}
