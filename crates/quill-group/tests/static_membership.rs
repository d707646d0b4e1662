//! KIP-345 static membership: restarts keep assignments without a rebalance, stale
//! incarnations are fenced, and absent static members wait for their session timeout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use quill_group::*;
use tokio::time::Instant;

fn static_join(instance: &str, member_id: &str) -> JoinGroupRequest {
    let mut request = join_request(GROUP, member_id);
    request.group_instance_id = Some(instance.to_owned());
    request
}

/// Two static members, Stable; returns (leader id, follower id, leader instance, follower
/// instance, generation).
async fn static_pair(c: &GroupCoordinator) -> (String, String, String, String, i32) {
    // Static members skip the MEMBER_ID_REQUIRED step: their instance id already names them.
    let (j1, j2) = (
        spawn_join(c, static_join("i1", "")),
        spawn_join(c, static_join("i2", "")),
    );
    let responses = vec![j1.await.unwrap(), j2.await.unwrap()];
    let instance_of = |id: &str| if id.starts_with("i1-") { "i1" } else { "i2" };
    let (ids, generation) = complete_sync(c, GROUP, responses).await;
    let (leader, follower) = (ids[0].clone(), ids[1].clone());
    let (li, fi) = (
        instance_of(&leader).to_owned(),
        instance_of(&follower).to_owned(),
    );
    (leader, follower, li, fi, generation)
}

#[tokio::test(start_paused = true)]
async fn a_restarted_static_follower_gets_its_assignment_back_without_a_rebalance() {
    let h = test_harness().await;
    let c = &h.coordinator;
    let (leader, follower, _, follower_instance, generation) = static_pair(c).await;
    let started = Instant::now();
    let rejoined = c.join_group(static_join(&follower_instance, "")).await;
    assert_eq!(started.elapsed(), Duration::ZERO, "no rebalance, no delay");
    assert_eq!(rejoined.error, None);
    assert_ne!(
        rejoined.member_id, follower,
        "a new member id replaces the old one"
    );
    assert_eq!(rejoined.generation_id, generation);
    assert_eq!(rejoined.leader, leader);
    assert!(rejoined.members.is_empty());
    assert_eq!(state(c, GROUP), GroupState::Stable);
    let mut sync = sync_request(GROUP, &rejoined.member_id, generation);
    sync.group_instance_id = Some(follower_instance.clone());
    assert_eq!(
        c.sync_group(sync).await.assignment,
        assignment_for(&follower)
    );
    // The leader never noticed.
    assert_eq!(c.heartbeat(heartbeat(GROUP, &leader, generation)), Ok(()));
    // The old incarnation is fenced.
    let mut stale = heartbeat(GROUP, &follower, generation);
    stale.group_instance_id = Some(follower_instance.clone());
    assert_eq!(c.heartbeat(stale), Err(GroupError::FencedInstanceId));
    let stale_join = c
        .join_group(static_join(&follower_instance, &follower))
        .await;
    assert_eq!(stale_join.error, Some(GroupError::FencedInstanceId));
    let mut stale_commit = commit(GROUP, &follower, generation, &[("t", 0, 1)]);
    stale_commit.group_instance_id = Some(follower_instance);
    let results = c.commit_offsets(stale_commit).await;
    assert_eq!(results[0].error, Some(GroupError::FencedInstanceId));
}

#[tokio::test(start_paused = true)]
async fn a_restarted_static_leader_is_not_told_it_leads() {
    let h = test_harness().await;
    let c = &h.coordinator;
    let (leader, _, leader_instance, _, generation) = static_pair(c).await;
    let rejoined = c.join_group(static_join(&leader_instance, "")).await;
    assert_eq!(rejoined.generation_id, generation);
    // The old leader id comes back, so the restarted leader does not compute an assignment a
    // Stable group would never distribute; its member list is empty.
    assert_eq!(rejoined.leader, leader);
    assert_ne!(rejoined.member_id, leader);
    assert!(rejoined.members.is_empty());
    let mut sync = sync_request(GROUP, &rejoined.member_id, generation);
    sync.group_instance_id = Some(leader_instance);
    assert_eq!(c.sync_group(sync).await.assignment, assignment_for(&leader));
    assert_eq!(state(c, GROUP), GroupState::Stable);
    // The replacement was stored: a GroupMetadata record naming the new member id.
    let records = h.store.records(c.partition_for(GROUP));
    let last = records.last().unwrap();
    let value = records::decode_group_metadata_value(last.value.as_deref().unwrap()).unwrap();
    assert!(value
        .members
        .iter()
        .any(|m| m.member_id == rejoined.member_id));
}

#[tokio::test(start_paused = true)]
async fn a_restarted_static_leader_on_v9_leads_but_skips_the_assignment() {
    let h = test_harness().await;
    let c = &h.coordinator;
    let (leader, follower, leader_instance, _, generation) = static_pair(c).await;
    let mut request = static_join(&leader_instance, "");
    request.supports_skip_assignment = true;
    let rejoined = c.join_group(request).await;
    assert_eq!(rejoined.generation_id, generation);
    assert_eq!(
        rejoined.leader, rejoined.member_id,
        "KIP-814: it is told it leads …"
    );
    assert!(rejoined.skip_assignment, "… but not to assign");
    let members: Vec<&str> = rejoined
        .members
        .iter()
        .map(|m| m.member_id.as_str())
        .collect();
    assert!(members.contains(&follower.as_str()) && members.contains(&rejoined.member_id.as_str()));
    let mut sync = sync_request(GROUP, &rejoined.member_id, generation);
    sync.group_instance_id = Some(leader_instance);
    assert_eq!(c.sync_group(sync).await.assignment, assignment_for(&leader));
    assert_eq!(state(c, GROUP), GroupState::Stable);
}

#[tokio::test(start_paused = true)]
async fn a_static_member_rejoining_with_other_protocols_triggers_a_rebalance() {
    let h = test_harness().await;
    let c = &h.coordinator;
    let (leader, follower, leader_instance, follower_instance, generation) = static_pair(c).await;
    let mut changed = static_join(&follower_instance, "");
    changed.protocols = protocols(&[("roundrobin", b""), ("range", b"")]);
    let rejoin = spawn_join(c, changed);
    settle().await;
    // Votes: range (leader) vs roundrobin (follower): a tie broken by the leader's order keeps
    // range, so the protocol would not change … unless the leader also prefers roundrobin.
    let first = rejoin.await.unwrap();
    assert_eq!(
        first.generation_id, generation,
        "selected protocol unchanged: no rebalance"
    );
    let mut leader_changes = static_join(&leader_instance, &leader);
    leader_changes.protocols = protocols(&[("roundrobin", b""), ("range", b"")]);
    let lj = spawn_join(c, leader_changes);
    settle().await;
    assert_eq!(state(c, GROUP), GroupState::PreparingRebalance);
    let mut follower_again = static_join(&follower_instance, &first.member_id);
    follower_again.protocols = protocols(&[("roundrobin", b""), ("range", b"")]);
    let fj = spawn_join(c, follower_again);
    let (rl, rf) = (lj.await.unwrap(), fj.await.unwrap());
    assert_eq!(rl.generation_id, generation + 1);
    assert_eq!(rl.protocol_name.as_deref(), Some("roundrobin"));
    assert_eq!(rf.generation_id, generation + 1);
    let _ = follower;
}

#[tokio::test(start_paused = true)]
async fn absent_static_members_survive_the_rebalance_timeout_but_not_their_session() {
    let h = test_harness().await;
    let c = &h.coordinator;
    let config = GroupConfig::for_tests();
    assert!(config.min_session_timeout_ms <= 1000);
    let mut long_session = static_join("i1", "");
    long_session.session_timeout_ms = 60_000;
    long_session.rebalance_timeout_ms = 5_000;
    let mut short_rebalance = static_join("i2", "");
    short_rebalance.rebalance_timeout_ms = 5_000;
    let (j1, j2) = (spawn_join(c, long_session), spawn_join(c, short_rebalance));
    let responses = vec![j1.await.unwrap(), j2.await.unwrap()];
    let (ids, generation) = complete_sync(c, GROUP, responses).await;
    let i2_member = ids.iter().find(|id| id.starts_with("i2-")).unwrap().clone();
    let i1_member = ids.iter().find(|id| id.starts_with("i1-")).unwrap().clone();
    // i2 rejoins (a leader would force a rebalance; a changed protocol list does too).
    let mut rejoin = static_join("i2", &i2_member);
    rejoin.protocols = protocols(&[("range", b"changed")]);
    rejoin.rebalance_timeout_ms = 5_000;
    let started = Instant::now();
    let response = c.join_group(rejoin).await;
    // Dynamic members would be evicted at the rebalance timeout; a static one is kept in the
    // new generation (the leader assigns to it) …
    assert_eq!(started.elapsed(), Duration::from_millis(5_000));
    assert_eq!(response.generation_id, generation + 1);
    assert_eq!(response.leader, i2_member, "the member that rejoined leads");
    assert_eq!(response.members.len(), 2);
    let mut sync = sync_request(GROUP, &i2_member, generation + 1);
    sync.assignments = vec![(i1_member.clone(), Bytes::from_static(b"kept"))];
    assert_eq!(c.sync_group(sync).await.error, None);
    assert_eq!(state(c, GROUP), GroupState::Stable);
    // … until it fails to sync within the rebalance timeout: then it is removed and the group
    // rebalances without it.
    tokio::time::sleep(Duration::from_millis(5_100)).await;
    assert_eq!(
        c.heartbeat(heartbeat(GROUP, &i2_member, generation + 1)),
        Err(GroupError::RebalanceInProgress)
    );
    assert!(c
        .describe_group(GROUP)
        .members
        .iter()
        .all(|m| m.member_id != i1_member));
}

#[tokio::test(start_paused = true)]
async fn a_dynamic_join_with_an_unknown_instance_id_is_unknown_member() {
    let h = test_harness().await;
    let c = &h.coordinator;
    let (ids, _) = stable_group(c, GROUP, 1).await;
    let mut request = join_request(GROUP, &ids[0]);
    request.group_instance_id = Some("never-registered".into());
    assert_eq!(
        c.join_group(request).await.error,
        Some(GroupError::UnknownMemberId)
    );
    let _ = Bytes::new();
}
