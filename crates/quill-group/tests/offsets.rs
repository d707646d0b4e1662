//! OffsetCommit / OffsetFetch / OffsetDelete, ListGroups, DeleteGroups and offset retention.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use quill_group::*;

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

#[tokio::test(start_paused = true)]
async fn a_simple_consumer_commits_and_fetches_with_metadata_round_tripping() {
    let h = test_harness().await;
    let c = &h.coordinator;
    let mut request = commit("simple", "", -1, &[("t", 0, 42), ("t", 1, 7)]);
    request.partitions[0].metadata = Some("ünïcode ✓ metadata".into());
    request.partitions[1].metadata = None;
    assert!(all_ok(&c.commit_offsets(request).await));
    let fetched = c
        .fetch_offsets(
            "simple",
            Some(vec![tp("t", 0), tp("t", 1), tp("t", 2)]),
            false,
        )
        .unwrap();
    assert_eq!((fetched[0].offset, fetched[0].leader_epoch), (42, 3));
    assert_eq!(fetched[0].metadata, "ünïcode ✓ metadata");
    assert_eq!((fetched[1].offset, fetched[1].metadata.as_str()), (7, ""));
    assert_eq!(
        (
            fetched[2].offset,
            fetched[2].leader_epoch,
            fetched[2].metadata.as_str()
        ),
        (-1, -1, "")
    );
    assert!(fetched.iter().all(|f| f.error.is_none()));
    // All offsets of the group (OffsetFetch with null topics).
    let all = c.fetch_offsets("simple", None, true).unwrap();
    assert_eq!(
        all.iter()
            .map(|f| (f.partition, f.offset))
            .collect::<Vec<_>>(),
        vec![(0, 42), (1, 7)]
    );
    // The simple group is listed, Empty, with no protocol type.
    let listed = c.list_groups(&[], &[]);
    assert_eq!(listed.groups[0].group_id, "simple");
    assert_eq!(listed.groups[0].protocol_type, "");
    assert_eq!(listed.groups[0].state, GroupState::Empty);
    // The empty group id is valid for the offset APIs, as in Kafka.
    assert!(all_ok(
        &c.commit_offsets(commit("", "", -1, &[("t", 0, 1)])).await
    ));
}

#[tokio::test(start_paused = true)]
async fn unknown_groups_have_no_offsets() {
    let h = test_harness().await;
    let c = &h.coordinator;
    let fetched = c
        .fetch_offsets("nobody", Some(vec![tp("t", 0)]), false)
        .unwrap();
    assert_eq!((fetched[0].offset, fetched[0].error.clone()), (-1, None));
    assert!(c.fetch_offsets("nobody", None, false).unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn group_members_commit_with_their_generation() {
    let h = test_harness().await;
    let c = &h.coordinator;
    let (ids, generation) = stable_group(c, GROUP, 2).await;
    let a = ids[0].clone();
    assert!(all_ok(
        &c.commit_offsets(commit(GROUP, &a, generation, &[("t", 0, 10)]))
            .await
    ));
    let error_of = |results: Vec<PartitionResult>| results[0].error.clone();
    assert_eq!(
        error_of(
            c.commit_offsets(commit(GROUP, &a, generation - 1, &[("t", 0, 11)]))
                .await
        ),
        Some(GroupError::IllegalGeneration)
    );
    assert_eq!(
        error_of(
            c.commit_offsets(commit(GROUP, "stranger", generation, &[("t", 0, 11)]))
                .await
        ),
        Some(GroupError::UnknownMemberId)
    );
    // A simple-consumer commit into a group with members is refused.
    assert_eq!(
        error_of(
            c.commit_offsets(commit(GROUP, "", -1, &[("t", 0, 11)]))
                .await
        ),
        Some(GroupError::UnknownMemberId)
    );
    // A commit naming a generation for a group that does not exist: ILLEGAL_GENERATION.
    assert_eq!(
        error_of(
            c.commit_offsets(commit("nope", "m", 3, &[("t", 0, 1)]))
                .await
        ),
        Some(GroupError::IllegalGeneration)
    );
    // During PreparingRebalance commits are still accepted …
    let rejoin = spawn_join(c, join_request(GROUP, &a));
    settle().await;
    assert_eq!(state(c, GROUP), GroupState::PreparingRebalance);
    assert!(all_ok(
        &c.commit_offsets(commit(GROUP, &ids[1], generation, &[("t", 1, 5)]))
            .await
    ));
    // … but not in CompletingRebalance, between JoinGroup and SyncGroup.
    let join_b = spawn_join(c, join_request(GROUP, &ids[1]));
    let (ra, _) = (rejoin.await.unwrap(), join_b.await.unwrap());
    assert_eq!(state(c, GROUP), GroupState::CompletingRebalance);
    assert_eq!(
        error_of(
            c.commit_offsets(commit(GROUP, &a, ra.generation_id, &[("t", 0, 12)]))
                .await
        ),
        Some(GroupError::RebalanceInProgress)
    );
    let fetched = c
        .fetch_offsets(GROUP, Some(vec![tp("t", 0), tp("t", 1)]), false)
        .unwrap();
    assert_eq!((fetched[0].offset, fetched[1].offset), (10, 5));
}

#[tokio::test(start_paused = true)]
async fn oversized_metadata_fails_only_its_partition() {
    let h = test_harness().await;
    let c = &h.coordinator;
    let mut request = commit("simple", "", -1, &[("t", 0, 1), ("t", 1, 2)]);
    request.partitions[1].metadata = Some("x".repeat(4097));
    let results = c.commit_offsets(request).await;
    assert_eq!(results[0].error, None);
    assert_eq!(
        results[1].error.as_ref().map(GroupError::kafka_error_code),
        Some(12)
    );
    let fetched = c
        .fetch_offsets("simple", Some(vec![tp("t", 0), tp("t", 1)]), false)
        .unwrap();
    assert_eq!((fetched[0].offset, fetched[1].offset), (1, -1));
}

#[tokio::test(start_paused = true)]
async fn a_commit_is_acknowledged_only_once_durable_and_not_applied_if_the_write_fails() {
    let h = test_harness().await;
    let c = &h.coordinator;
    h.store.hold_durability(true);
    let pending = {
        let c = c.clone();
        tokio::spawn(async move { c.commit_offsets(commit("g2", "", -1, &[("t", 0, 5)])).await })
    };
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(
        !pending.is_finished(),
        "not acknowledged before the store says durable"
    );
    assert_eq!(
        c.fetch_offsets("g2", Some(vec![tp("t", 0)]), false)
            .unwrap()[0]
            .offset,
        -1
    );
    h.store.hold_durability(false);
    assert!(all_ok(&pending.await.unwrap()));
    assert_eq!(
        c.fetch_offsets("g2", Some(vec![tp("t", 0)]), false)
            .unwrap()[0]
            .offset,
        5
    );

    h.store.fail_appends(Some(StoreError::NotLeader(1)));
    let results = c.commit_offsets(commit("g2", "", -1, &[("t", 0, 6)])).await;
    assert_eq!(results[0].error, Some(GroupError::NotCoordinator));
    h.store
        .fail_appends(Some(StoreError::Unavailable("disk busy".into())));
    let results = c.commit_offsets(commit("g2", "", -1, &[("t", 0, 6)])).await;
    assert_eq!(results[0].error, Some(GroupError::CoordinatorNotAvailable));
    h.store.fail_appends(None);
    assert_eq!(
        c.fetch_offsets("g2", Some(vec![tp("t", 0)]), false)
            .unwrap()[0]
            .offset,
        5
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_assignment_write_sends_members_back_to_rejoin() {
    let h = test_harness().await;
    let c = &h.coordinator;
    let a = member_id_for(c, &join_request(GROUP, "")).await;
    let joined = c.join_group(join_request(GROUP, &a)).await;
    h.store.fail_appends(Some(StoreError::NotLeader(0)));
    let mut sync = sync_request(GROUP, &a, joined.generation_id);
    sync.assignments = vec![(a.clone(), assignment_for(&a))];
    assert_eq!(
        c.sync_group(sync).await.error,
        Some(GroupError::NotCoordinator)
    );
    assert_eq!(state(c, GROUP), GroupState::PreparingRebalance);
    h.store.fail_appends(None);
    let rejoined = c.join_group(join_request(GROUP, &a)).await;
    assert_eq!(rejoined.generation_id, joined.generation_id + 1);
}

#[tokio::test(start_paused = true)]
async fn offset_delete_refuses_subscribed_topics() {
    let h = test_harness().await;
    let c = &h.coordinator;
    let subscription = consumer_protocol::encode_subscription(&["orders"]);
    let mut request = join_request(GROUP, "");
    request.protocols = protocols(&[("range", &subscription)]);
    request.member_id = member_id_for(c, &request).await;
    let joined = c.join_group(request).await;
    let (ids, generation) = complete_sync(c, GROUP, vec![joined]).await;
    let commits = commit(
        GROUP,
        &ids[0],
        generation,
        &[("orders", 0, 1), ("old-topic", 0, 2)],
    );
    assert!(all_ok(&c.commit_offsets(commits).await));
    let results = c
        .delete_offsets(
            GROUP,
            vec![tp("orders", 0), tp("old-topic", 0), tp("never", 0)],
        )
        .await
        .unwrap();
    let errors: Vec<Option<GroupError>> = results.into_iter().map(|r| r.error).collect();
    assert_eq!(
        errors,
        vec![Some(GroupError::GroupSubscribedToTopic), None, None]
    );
    let fetched = c.fetch_offsets(GROUP, None, false).unwrap();
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].topic, "orders");
    assert_eq!(
        c.delete_offsets("nope", vec![tp("t", 0)]).await,
        Err(GroupError::GroupIdNotFound)
    );
}

#[tokio::test(start_paused = true)]
async fn offset_delete_in_a_non_consumer_group_with_members_is_non_empty_group() {
    let h = test_harness().await;
    let c = &h.coordinator;
    let mut request = join_request(GROUP, "");
    request.protocol_type = "connect".into();
    request.member_id = member_id_for(c, &request).await;
    c.join_group(request).await;
    assert_eq!(
        c.delete_offsets(GROUP, vec![tp("t", 0)]).await,
        Err(GroupError::NonEmptyGroup)
    );
}

#[tokio::test(start_paused = true)]
async fn list_groups_filters_by_state_and_type() {
    let h = test_harness().await;
    let c = &h.coordinator;
    stable_group(c, "stable-one", 1).await;
    c.commit_offsets(commit("empty-one", "", -1, &[("t", 0, 1)]))
        .await;
    let names = |response: ListGroupsResponse| {
        response
            .groups
            .into_iter()
            .map(|g| g.group_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(c.list_groups(&[], &[])),
        vec!["empty-one", "stable-one"]
    );
    assert_eq!(
        names(c.list_groups(&["stable".into()], &[])),
        vec!["stable-one"]
    );
    assert_eq!(
        names(c.list_groups(&["Empty".into(), "Dead".into()], &[])),
        vec!["empty-one"]
    );
    assert_eq!(names(c.list_groups(&[], &["Classic".into()])).len(), 2);
    assert!(names(c.list_groups(&[], &["consumer".into()])).is_empty());
    let listed = c.list_groups(&[], &[]);
    assert_eq!(listed.error, None);
    assert_eq!(listed.groups[1].protocol_type, "consumer");
    assert_eq!(listed.groups[1].group_type, "classic");
}

#[tokio::test(start_paused = true)]
async fn delete_groups_only_when_empty() {
    let h = test_harness().await;
    let c = &h.coordinator;
    let (ids, generation) = stable_group(c, GROUP, 1).await;
    assert!(all_ok(
        &c.commit_offsets(commit(GROUP, &ids[0], generation, &[("t", 0, 9)]))
            .await
    ));
    c.commit_offsets(commit("simple", "", -1, &[("t", 0, 1)]))
        .await;
    let results = c
        .delete_groups(vec![GROUP.into(), "simple".into(), "missing".into()])
        .await;
    assert_eq!(
        results,
        vec![
            (GROUP.to_owned(), Some(GroupError::NonEmptyGroup)),
            ("simple".to_owned(), None),
            ("missing".to_owned(), Some(GroupError::GroupIdNotFound)),
        ]
    );
    assert!(c.fetch_offsets("simple", None, false).unwrap().is_empty());
    assert!(!c.describe_group("simple").exists);
    // Tombstones were written: the offset key and the group key with null values.
    let records = h.store.records(c.partition_for("simple"));
    let tombstones: Vec<_> = records.iter().rev().take(2).collect();
    assert!(tombstones.iter().all(|r| r.value.is_none()));
    // After the member leaves, the group can be deleted.
    c.leave_group(
        GROUP,
        vec![LeavingMember {
            member_id: ids[0].clone(),
            group_instance_id: None,
        }],
    );
    settle().await;
    assert_eq!(
        c.delete_groups(vec![GROUP.into()]).await,
        vec![(GROUP.to_owned(), None)]
    );
    assert_eq!(
        c.fetch_offsets(GROUP, Some(vec![tp("t", 0)]), false)
            .unwrap()[0]
            .offset,
        -1
    );
}

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

#[tokio::test(start_paused = true)]
async fn offsets_of_an_empty_group_expire_after_the_retention_and_the_group_goes() {
    let h = test_harness().await;
    let c = &h.coordinator;
    let (ids, generation) = stable_group(c, GROUP, 1).await;
    assert!(all_ok(
        &c.commit_offsets(commit(GROUP, &ids[0], generation, &[("t", 0, 9)]))
            .await
    ));
    tokio::time::sleep(Duration::from_millis(8 * DAY_MS)).await;
    // The member was evicted by its session timeout long ago; the group has been Empty since.
    assert_eq!(state(c, GROUP), GroupState::Empty);
    // Empty since ~10 s after the start: 8 days later the retention (7 days) has passed.
    assert_eq!(c.expire_offsets().await, 1);
    assert!(!c.describe_group(GROUP).exists);
    let records = h.store.records(c.partition_for(GROUP));
    assert!(records.iter().rev().take(2).all(|r| r.value.is_none()));
}

#[tokio::test(start_paused = true)]
async fn a_stable_consumer_group_keeps_offsets_of_subscribed_topics() {
    let config = GroupConfig {
        offsets_retention_ms: 60_000,
        ..GroupConfig::for_tests()
    };
    let h = harness(config).await;
    let c = &h.coordinator;
    let subscription = consumer_protocol::encode_subscription(&["live"]);
    let mut request = join_request(GROUP, "");
    request.protocols = protocols(&[("range", &subscription)]);
    request.member_id = member_id_for(c, &request).await;
    let (ids, generation) = complete_sync(c, GROUP, vec![c.join_group(request).await]).await;
    let commits = commit(
        GROUP,
        &ids[0],
        generation,
        &[("live", 0, 1), ("gone", 0, 2)],
    );
    assert!(all_ok(&c.commit_offsets(commits).await));
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(3000)).await;
        assert_eq!(c.heartbeat(heartbeat(GROUP, &ids[0], generation)), Ok(()));
    }
    assert_eq!(c.expire_offsets().await, 1);
    let left: Vec<String> = c
        .fetch_offsets(GROUP, None, false)
        .unwrap()
        .into_iter()
        .map(|f| f.topic)
        .collect();
    assert_eq!(left, vec!["live"]);
}

#[tokio::test(start_paused = true)]
async fn simple_consumer_offsets_expire_by_commit_time_or_explicit_retention() {
    let h = test_harness().await;
    let c = &h.coordinator;
    let mut short = commit("simple", "", -1, &[("t", 1, 1)]);
    short.retention_time_ms = Some(1000);
    c.commit_offsets(short).await;
    c.commit_offsets(commit("simple", "", -1, &[("t", 0, 1)]))
        .await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(
        c.expire_offsets().await,
        1,
        "only the commit with its own 1 s retention"
    );
    tokio::time::sleep(Duration::from_millis(7 * DAY_MS)).await;
    assert_eq!(c.expire_offsets().await, 1);
    assert!(!c.describe_group("simple").exists);
}

#[tokio::test(start_paused = true)]
async fn the_expiration_task_runs_on_its_interval() {
    let config = GroupConfig {
        offsets_retention_ms: 1000,
        offsets_retention_check_interval_ms: 5000,
        ..GroupConfig::for_tests()
    };
    let h = harness(config).await;
    let c = &h.coordinator;
    c.commit_offsets(commit("simple", "", -1, &[("t", 0, 1)]))
        .await;
    let task = c.spawn_offset_expiration();
    tokio::time::sleep(Duration::from_millis(4000)).await;
    assert!(c.describe_group("simple").exists);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(!c.describe_group("simple").exists);
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn unknown_partitions_are_split_off_before_the_commit() {
    let h = test_harness().await;
    let mut request = commit(
        "simple",
        "",
        -1,
        &[("known", 0, 1), ("gone", 0, 2), ("known", 9, 3)],
    );
    let unknown =
        request.take_unknown_partitions(|topic, partition| topic == "known" && partition < 3);
    assert_eq!(unknown.len(), 2);
    assert!(unknown
        .iter()
        .all(|r| r.error.as_ref().map(GroupError::kafka_error_code) == Some(3)));
    let results = h.coordinator.commit_offsets(request).await;
    assert_eq!(results.len(), 1);
    assert!(all_ok(&results));
}

#[tokio::test(start_paused = true)]
async fn the_metrics_snapshot_copies_at_most_its_limit_of_offsets_and_counts_the_rest() {
    let h = test_harness().await;
    let c = &h.coordinator;
    assert!(all_ok(
        &c.commit_offsets(commit("billing", "", -1, &[("t", 0, 5), ("t", 1, 6)]))
            .await
    ));
    assert!(all_ok(
        &c.commit_offsets(commit("audit", "", -1, &[("t", 0, 9)]))
            .await
    ));
    let all = c.snapshot_groups(10);
    assert_eq!(all.omitted_offsets, 0);
    let mut offsets: Vec<(String, i32, i64)> = all
        .groups
        .iter()
        .flat_map(|group| {
            assert_eq!(group.state, GroupState::Empty);
            group
                .offsets
                .iter()
                .map(|(tp, offset)| (group.group_id.clone(), tp.partition, *offset))
        })
        .collect();
    offsets.sort();
    assert_eq!(
        offsets,
        vec![
            ("audit".to_string(), 0, 9),
            ("billing".to_string(), 0, 5),
            ("billing".to_string(), 1, 6)
        ]
    );
    let capped = c.snapshot_groups(2);
    let copied: usize = capped.groups.iter().map(|group| group.offsets.len()).sum();
    assert_eq!((copied, capped.omitted_offsets), (2, 1));
    // Groups are still all listed (their states count), only offsets are capped.
    assert_eq!(capped.groups.len(), 2);
}
